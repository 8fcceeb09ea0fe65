//! Text types of results: [`MsgId`] (a message id, inline) and [`Name`] (a shared topic or broker name).
//! Both read as `&str` and compare with `str` and `String`, so `result.topic == "T"` works.

use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::Arc;

/// `Deref<Target = str>`, `AsRef<str>`, `Borrow<str>`, `Debug` and `Display` as the text, and equality,
/// order and hash by the text, also against `str`, `&str` and `String`, for a type with `as_str`.
macro_rules! str_like {
    ($t:ty) => {
        impl Deref for $t {
            type Target = str;
            fn deref(&self) -> &str {
                self.as_str()
            }
        }

        impl AsRef<str> for $t {
            fn as_ref(&self) -> &str {
                self.as_str()
            }
        }

        impl Borrow<str> for $t {
            fn borrow(&self) -> &str {
                self.as_str()
            }
        }

        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(self.as_str(), f)
            }
        }

        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl PartialEq for $t {
            fn eq(&self, other: &$t) -> bool {
                self.as_str() == other.as_str()
            }
        }

        impl Eq for $t {}

        impl Hash for $t {
            fn hash<H: Hasher>(&self, state: &mut H) {
                self.as_str().hash(state);
            }
        }

        impl PartialOrd for $t {
            fn partial_cmp(&self, other: &$t) -> Option<std::cmp::Ordering> {
                Some(self.cmp(other))
            }
        }

        impl Ord for $t {
            fn cmp(&self, other: &$t) -> std::cmp::Ordering {
                self.as_str().cmp(other.as_str())
            }
        }

        impl PartialEq<str> for $t {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }

        impl PartialEq<&str> for $t {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl PartialEq<String> for $t {
            fn eq(&self, other: &String) -> bool {
                self.as_str() == other
            }
        }

        impl PartialEq<$t> for str {
            fn eq(&self, other: &$t) -> bool {
                self == other.as_str()
            }
        }

        impl PartialEq<$t> for &str {
            fn eq(&self, other: &$t) -> bool {
                *self == other.as_str()
            }
        }

        impl PartialEq<$t> for String {
            fn eq(&self, other: &$t) -> bool {
                self == other.as_str()
            }
        }
    };
}

/// Bytes a [`MsgId`] holds without a heap allocation: the longest id RocketMQ makes (an IPv6 UNIQ_KEY or
/// offset msgId, 56 hex characters).
pub(crate) const INLINE_ID: usize = 56;

/// The text of a message id (a UNIQ_KEY, an offset msgId, a transaction id), held inline when it is at
/// most 56 bytes long, as every id RocketMQ makes is, and on the heap otherwise (a batch's comma-separated
/// ids, a caller's own long key). Reads as a `&str` through [`Deref`]; compares with `str` and `String`.
///
/// ```
/// use rmq_protocol::MsgId;
/// let id = MsgId::new("7F00000100002A9F000000000001E240");
/// assert_eq!(id, "7F00000100002A9F000000000001E240");
/// assert_eq!(id.len(), 32);
/// assert_eq!(id.to_string(), "7F00000100002A9F000000000001E240");
/// ```
#[derive(Clone)]
pub struct MsgId(IdRepr);

#[derive(Clone)]
enum IdRepr {
    Inline { len: u8, bytes: [u8; INLINE_ID] },
    Heap(Box<str>),
}

impl MsgId {
    /// The id `text`.
    pub fn new(text: &str) -> MsgId {
        if text.len() > INLINE_ID {
            return MsgId(IdRepr::Heap(text.into()));
        }
        let mut bytes = [0u8; INLINE_ID];
        bytes[..text.len()].copy_from_slice(text.as_bytes());
        MsgId(IdRepr::Inline {
            len: text.len() as u8,
            bytes,
        })
    }

    /// An id of the first `len` bytes of `bytes` (ASCII).
    pub(crate) fn from_inline(bytes: [u8; INLINE_ID], len: usize) -> MsgId {
        MsgId(IdRepr::Inline {
            len: len.min(INLINE_ID) as u8,
            bytes,
        })
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            // Always valid: built from a `&str` or from ASCII hex digits.
            IdRepr::Inline { len, bytes } => {
                std::str::from_utf8(&bytes[..usize::from(*len)]).unwrap_or_default()
            }
            IdRepr::Heap(s) => s,
        }
    }
}

impl Default for MsgId {
    /// The empty id.
    fn default() -> Self {
        MsgId::new("")
    }
}

str_like!(MsgId);

impl From<&str> for MsgId {
    fn from(s: &str) -> MsgId {
        MsgId::new(s)
    }
}

impl From<String> for MsgId {
    /// Keeps a long `s`'s allocation instead of copying it.
    fn from(s: String) -> MsgId {
        if s.len() > INLINE_ID {
            MsgId(IdRepr::Heap(s.into_boxed_str()))
        } else {
            MsgId::new(&s)
        }
    }
}

impl From<MsgId> for String {
    fn from(id: MsgId) -> String {
        match id.0 {
            IdRepr::Heap(s) => s.into_string(),
            IdRepr::Inline { .. } => id.as_str().to_owned(),
        }
    }
}

/// A topic, broker or group name shared by reference count: cloning one copies no text. A send result's
/// names are the producer's own copies, so building a result allocates none.
///
/// ```
/// use rmq_protocol::Name;
/// let n = Name::from("broker-a");
/// assert_eq!(n, "broker-a");
/// assert!(n.starts_with("broker"));
/// ```
#[derive(Clone)]
pub struct Name(Arc<str>);

impl Name {
    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The shared text.
    pub fn as_arc(&self) -> &Arc<str> {
        &self.0
    }
}

str_like!(Name);

impl From<Arc<str>> for Name {
    fn from(s: Arc<str>) -> Name {
        Name(s)
    }
}

impl From<&Arc<str>> for Name {
    fn from(s: &Arc<str>) -> Name {
        Name(s.clone())
    }
}

impl From<&str> for Name {
    fn from(s: &str) -> Name {
        Name(Arc::from(s))
    }
}

impl From<String> for Name {
    fn from(s: String) -> Name {
        Name(Arc::from(s))
    }
}

impl From<Name> for String {
    fn from(n: Name) -> String {
        n.as_str().to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn msg_id_inline_and_heap() {
        for text in [
            "",
            "K",
            &"A".repeat(56),
            &"B".repeat(57),
            "é-ü",
            &"é".repeat(40),
        ] {
            let id = MsgId::new(text);
            assert_eq!(id, text);
            assert_eq!(MsgId::from(text.to_owned()), id);
            assert_eq!(String::from(id.clone()), text);
            assert_eq!(format!("{id:?}"), format!("{text:?}"));
        }
    }

    #[test]
    fn names_compare_as_text() {
        let n = Name::from("T");
        assert_eq!(n, "T");
        assert_eq!("T", n);
        assert_eq!(n, "T".to_owned());
        assert_eq!(n.clone(), Name::from(Arc::from("T")));
        assert_eq!(format!("{n} {n:?}"), "T \"T\"");
        assert!(Arc::ptr_eq(n.as_arc(), Name::from(n.as_arc()).as_arc()));
    }
}
