//! [`StringMap`]: the small string-to-string map behind a command's ext fields and a message's properties.
//!
//! Java uses a `HashMap<String, String>` for both, whose order means nothing. Here every entry lives in one
//! contiguous text buffer with an index of ranges kept inline up to 16 entries: building or decoding a
//! SEND_MESSAGE_V2 header or a send response costs one allocation instead of two per field, lookups are a short linear scan (these maps hold a handful to a few dozen
//! entries), and iteration follows insertion order so encoding is deterministic. Equality ignores order.

use std::fmt;
use std::ops::Range;

use smallvec::SmallVec;

/// An insertion-ordered map from string keys to string values, stored in one buffer.
///
/// Inserting an existing key replaces its value (the later value wins, as in Java's `HashMap`).
///
/// ```
/// use rmq_protocol::StringMap;
/// let mut m = StringMap::new();
/// m.insert("topic", "TopicTest");
/// m.insert_int("queueId", 3);
/// m.insert("topic", "Other");
/// assert_eq!(m.get("topic"), Some("Other"));
/// assert_eq!(m.get("queueId"), Some("3"));
/// assert_eq!(m.len(), 2);
/// ```
#[derive(Clone, Default)]
pub struct StringMap {
    buf: String,
    /// Inline up to [`INLINE_ENTRIES`]: a V2 send header has 14 fields, a send response about 8.
    entries: SmallVec<[Entry; INLINE_ENTRIES]>,
    /// One bit per [`key_bit`] of every live key: a clear bit proves a key absent without a scan, which
    /// makes building a header (distinct keys, one insert each) linear instead of quadratic.
    key_bits: u64,
}

/// Entries a map indexes without a heap allocation of its own.
const INLINE_ENTRIES: usize = 16;

/// One entry's place in the buffer: the key is `start..key_end`, the value `key_end..end`.
#[derive(Clone, Copy, Debug)]
struct Entry {
    start: usize,
    key_end: usize,
    end: usize,
}

impl Entry {
    fn key(self) -> Range<usize> {
        self.start..self.key_end
    }

    fn value(self) -> Range<usize> {
        self.key_end..self.end
    }
}

/// A cheap 6-bit digest of a key for [`StringMap::key_bits`]. Odd multipliers keep single-character keys
/// (`a`..`n` of the V2 send header) on distinct bits.
fn key_bit(key: &str) -> u64 {
    let b = key.as_bytes();
    let (first, last) = (
        b.first().copied().unwrap_or(0),
        b.last().copied().unwrap_or(0),
    );
    let h = u32::from(first)
        .wrapping_mul(13)
        .wrapping_add(u32::from(last).wrapping_mul(29))
        .wrapping_add((b.len() as u32).wrapping_mul(7));
    1u64 << (h % 64)
}

impl StringMap {
    /// An empty map. Does not allocate.
    pub const fn new() -> Self {
        StringMap {
            buf: String::new(),
            entries: SmallVec::new_const(),
            key_bits: 0,
        }
    }

    /// An empty map with room for `entries` entries totalling `text_bytes` bytes of keys and values.
    pub fn with_capacity(entries: usize, text_bytes: usize) -> Self {
        StringMap {
            buf: String::with_capacity(text_bytes),
            entries: SmallVec::with_capacity(entries),
            key_bits: 0,
        }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the map has no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn position(&self, key: &str) -> Option<usize> {
        if self.key_bits & key_bit(key) == 0 {
            return None;
        }
        let (buf, key) = (self.buf.as_bytes(), key.as_bytes());
        self.entries.iter().position(|e| &buf[e.key()] == key)
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.position(key)
            .map(|i| &self.buf[self.entries[i].value()])
    }

    /// Whether `key` is present.
    pub fn contains_key(&self, key: &str) -> bool {
        self.position(key).is_some()
    }

    fn drop_key(&mut self, key: &str) {
        if let Some(i) = self.position(key) {
            self.remove_at(i);
            self.maybe_compact();
        }
    }

    fn remove_at(&mut self, i: usize) -> Range<usize> {
        let removed = self.entries.remove(i);
        let buf = &self.buf;
        self.key_bits = self
            .entries
            .iter()
            .fold(0, |bits, e| bits | key_bit(&buf[e.key()]));
        removed.value()
    }

    /// Appends `key` and `value` as a new entry; the caller has removed any earlier `key`.
    fn push_entry(&mut self, key: &str, value: &str) {
        let start = self.buf.len();
        self.buf.push_str(key);
        let key_end = self.buf.len();
        self.buf.push_str(value);
        self.entries.push(Entry {
            start,
            key_end,
            end: self.buf.len(),
        });
        self.key_bits |= key_bit(key);
    }

    /// Appends `key` and `value` without looking for an earlier `key`: a decoder's step, linear in the
    /// fields it reads however many there are (an [`StringMap::insert`] per field scans the map, which a
    /// hostile peer sending 100,000 fields turns quadratic). The decoder calls
    /// [`StringMap::dedup_last_wins`] after the last field.
    pub(crate) fn append_unchecked(&mut self, key: &str, value: &str) {
        self.push_entry(key, value);
    }

    /// After [`StringMap::append_unchecked`]: keeps the last value of each key, where the last one was
    /// appended, as a run of [`StringMap::insert`] calls would have (Java's `HashMap.put`: later wins).
    /// Linear: small maps compare pairwise, larger ones through a hash set.
    pub(crate) fn dedup_last_wins(&mut self) {
        let n = self.entries.len();
        let buf = self.buf.as_bytes();
        let key = |e: &Entry| &buf[e.key()];
        let dup = if n <= INLINE_ENTRIES {
            (1..n).any(|i| (0..i).any(|j| key(&self.entries[i]) == key(&self.entries[j])))
        } else {
            let mut seen = std::collections::HashSet::with_capacity(n);
            !self.entries.iter().all(|e| seen.insert(key(e)))
        };
        if !dup {
            return;
        }
        // Walk from the end: the first sighting of a key is its last occurrence, the one kept.
        let mut seen = std::collections::HashSet::with_capacity(n);
        let mut keep: Vec<Entry> = self
            .entries
            .iter()
            .rev()
            .filter(|e| seen.insert(key(e)))
            .copied()
            .collect();
        keep.reverse();
        let mut fresh = StringMap::with_capacity(keep.len(), self.text_len());
        for e in keep {
            fresh.push_entry(&self.buf[e.key()], &self.buf[e.value()]);
        }
        *self = fresh;
    }

    /// Sets `key` to `value`, replacing an earlier value.
    pub fn insert(&mut self, key: &str, value: &str) {
        self.drop_key(key);
        self.push_entry(key, value);
    }

    /// Sets `key` to the decimal text of `value`, without an intermediate allocation.
    pub fn insert_int(&mut self, key: &str, value: i64) {
        self.drop_key(key);
        self.push_entry(key, decimal(value, &mut [0; 20]));
    }

    /// Sets `key` to `"true"` or `"false"`, as Java's `Boolean.toString`.
    pub fn insert_bool(&mut self, key: &str, value: bool) {
        self.insert(key, if value { "true" } else { "false" });
    }

    /// Removes `key`, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<String> {
        let i = self.position(key)?;
        let v = self.remove_at(i);
        let value = self.buf[v].to_owned();
        self.maybe_compact();
        Some(value)
    }

    /// Removes every entry, keeping the allocations.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.entries.clear();
        self.key_bits = 0;
    }

    /// The entries in insertion order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &str)> + '_ {
        self.entries
            .iter()
            .map(|e| (&self.buf[e.key()], &self.buf[e.value()]))
    }

    /// The entries as bytes, in insertion order (no UTF-8 boundary checks; for encoders).
    pub(crate) fn iter_bytes(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        let buf = self.buf.as_bytes();
        self.entries
            .iter()
            .map(move |e| (&buf[e.key()], &buf[e.value()]))
    }

    /// Total bytes of live keys and values.
    pub fn text_len(&self) -> usize {
        self.entries.iter().map(|e| e.end - e.start).sum()
    }

    /// Replaced and removed entries leave their text behind; rebuild once that garbage dominates.
    fn maybe_compact(&mut self) {
        let live = self.text_len();
        if self.buf.len() > 256 && self.buf.len() > 2 * live {
            let mut fresh = StringMap::with_capacity(self.entries.len(), live);
            for (k, v) in self.iter() {
                fresh.push_entry(k, v);
            }
            *self = fresh;
        }
    }
}

/// Formats `v` in decimal into `out`, returning the digits (with sign) as text.
pub(crate) fn decimal(v: i64, out: &mut [u8; 20]) -> &str {
    let mut n = v.unsigned_abs();
    let mut i = out.len();
    loop {
        i -= 1;
        out[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if v < 0 {
        i -= 1;
        out[i] = b'-';
    }
    // ASCII digits and '-' are always UTF-8.
    std::str::from_utf8(&out[i..]).unwrap_or_default()
}

impl PartialEq for StringMap {
    /// Maps are equal when they hold the same entries, in any order.
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().all(|(k, v)| other.get(k) == Some(v))
    }
}

impl Eq for StringMap {}

impl fmt::Debug for StringMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<K: AsRef<str>, V: AsRef<str>> FromIterator<(K, V)> for StringMap {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut m = StringMap::new();
        m.extend(iter);
        m
    }
}

impl<K: AsRef<str>, V: AsRef<str>> Extend<(K, V)> for StringMap {
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, iter: I) {
        for (k, v) in iter {
            self.insert(k.as_ref(), v.as_ref());
        }
    }
}

/// Deserializes a JSON object leniently: string values as they are, numbers and booleans as their text,
/// `null` values skipped (Java's maps drop them too), and a `null` object as an empty map.
impl<'de> serde::Deserialize<'de> for StringMap {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = StringMap;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of strings")
            }
            fn visit_unit<E>(self) -> Result<StringMap, E> {
                Ok(StringMap::new())
            }
            fn visit_none<E>(self) -> Result<StringMap, E> {
                Ok(StringMap::new())
            }
            fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<StringMap, D::Error> {
                d.deserialize_map(V)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<StringMap, A::Error> {
                let mut m = StringMap::with_capacity(a.size_hint().unwrap_or(8).min(64), 128);
                while let Some(k) = a.next_key::<std::borrow::Cow<'de, str>>()? {
                    match a.next_value::<Scalar<'de>>()? {
                        Scalar::Str(v) => m.append_unchecked(&k, &v),
                        Scalar::Text(v) => m.append_unchecked(&k, &v),
                        Scalar::Null => {}
                    }
                }
                m.dedup_last_wins();
                Ok(m)
            }
        }
        d.deserialize_option(V)
    }
}

/// A JSON scalar read as text.
enum Scalar<'a> {
    Str(std::borrow::Cow<'a, str>),
    Text(String),
    Null,
}

impl<'de> serde::Deserialize<'de> for Scalar<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Scalar<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, number, boolean or null")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Str(std::borrow::Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Text(v.to_owned()))
            }
            fn visit_string<E>(self, v: String) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Text(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Text(v.to_string()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Text(v.to_string()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Text(v.to_string()))
            }
            fn visit_bool<E>(self, v: bool) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Text(v.to_string()))
            }
            fn visit_unit<E>(self) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Null)
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_replace_remove() {
        let mut m = StringMap::new();
        m.insert("a", "1");
        m.insert_int("b", -42);
        m.insert_bool("c", true);
        m.insert("a", "2");
        assert_eq!(m.len(), 3);
        assert_eq!(m.get("a"), Some("2"));
        assert_eq!(m.get("b"), Some("-42"));
        assert_eq!(m.get("c"), Some("true"));
        assert_eq!(m.remove("b").as_deref(), Some("-42"));
        assert_eq!(m.get("b"), None);
        assert_eq!(
            m.iter().collect::<Vec<_>>(),
            vec![("c", "true"), ("a", "2")]
        );
    }

    #[test]
    fn decimal_text_matches_std() {
        for v in [0, 1, -1, 9, 10, i64::MAX, i64::MIN, 1_700_000_000_000] {
            assert_eq!(decimal(v, &mut [0; 20]), v.to_string());
        }
    }

    #[test]
    fn equality_ignores_order() {
        let a: StringMap = [("x", "1"), ("y", "2")].into_iter().collect();
        let b: StringMap = [("y", "2"), ("x", "1")].into_iter().collect();
        let c: StringMap = [("y", "2"), ("x", "3")].into_iter().collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn compaction_keeps_entries() {
        let mut m = StringMap::new();
        for i in 0..1000 {
            m.insert("k", &format!("value-{i:04}"));
            m.insert_int("n", i);
        }
        assert_eq!(m.len(), 2);
        assert_eq!(m.get("k"), Some("value-0999"));
        assert!(m.buf.len() < 1024, "buffer grew to {}", m.buf.len());
    }

    #[test]
    fn lenient_json() {
        let m: StringMap =
            serde_json::from_str(r#"{"a":"x","b":3,"c":true,"d":null,"e":"\u0001"}"#).unwrap();
        assert_eq!(m.get("a"), Some("x"));
        assert_eq!(m.get("b"), Some("3"));
        assert_eq!(m.get("c"), Some("true"));
        assert_eq!(m.get("d"), None);
        assert_eq!(m.get("e"), Some("\u{1}"));
        let n: StringMap = serde_json::from_str("null").unwrap();
        assert!(n.is_empty());
        assert!(serde_json::from_str::<StringMap>(r#"{"a":[1]}"#).is_err());
    }

    /// Appending then deduplicating gives the map a run of inserts gives, small or large, with or
    /// without repeated keys.
    #[test]
    fn dedup_after_append_is_insert() {
        let cases: Vec<Vec<(String, String)>> = vec![
            vec![],
            vec![
                ("a".into(), "1".into()),
                ("b".into(), "2".into()),
                ("a".into(), "3".into()),
            ],
            (0..100)
                .map(|i| (format!("k{}", i % 37), format!("v{i}")))
                .collect(),
            (0..100)
                .map(|i| (format!("k{i}"), format!("v{i}")))
                .collect(),
        ];
        for pairs in cases {
            let mut bulk = StringMap::new();
            let mut one_by_one = StringMap::new();
            for (k, v) in &pairs {
                bulk.append_unchecked(k, v);
                one_by_one.insert(k, v);
            }
            bulk.dedup_last_wins();
            let order = |m: &StringMap| {
                m.iter()
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect::<Vec<_>>()
            };
            assert_eq!(order(&bulk), order(&one_by_one));
        }
    }
}
