//! Shared names: one `Arc<str>` per topic a producer sends to, handed to every prepared message, result
//! and in-flight entry of that topic, so a send copies no topic text (and, with a namespace, one wrapped
//! name per topic).

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::RwLock;

/// How many names are kept; a producer writing to ever new topics starts over when it is reached.
const MAX_NAMES: usize = 4096;

/// Interned names, bounded by [`MAX_NAMES`].
#[derive(Debug, Default)]
pub(crate) struct Names {
    map: RwLock<HashMap<Box<str>, Arc<str>>>,
}

impl Names {
    /// The shared copy of `name` (made on first use).
    pub(crate) fn get(&self, name: &str) -> Arc<str> {
        self.get_or(name, || Arc::from(name))
    }

    /// The name kept for `key`, made by `make` on first use.
    pub(crate) fn get_or(&self, key: &str, make: impl FnOnce() -> Arc<str>) -> Arc<str> {
        if let Some(n) = self.map.read().get(key) {
            return n.clone();
        }
        let mut map = self.map.write();
        if let Some(n) = map.get(key) {
            return n.clone();
        }
        if map.len() >= MAX_NAMES {
            map.clear();
        }
        let n = make();
        map.insert(key.into(), n.clone());
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_copy_per_name_and_bounded() {
        let names = Names::default();
        let (a, b) = (names.get("T"), names.get("T"));
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(&*names.get("U"), "U");
        for i in 0..MAX_NAMES + 10 {
            names.get(&format!("t{i}"));
        }
        assert!(names.map.read().len() <= MAX_NAMES);
        assert_eq!(&*names.get("T"), "T");
    }
}
