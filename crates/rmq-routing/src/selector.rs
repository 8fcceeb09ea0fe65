//! Queue selectors: round robin, random, message hash (Java-compatible), and the trait for user selectors.

use std::any::Any;
use std::sync::atomic::{AtomicU64, Ordering};

use rmq_protocol::Message;

use crate::mapping::{PublishQueue, TopicPublishInfo};

/// Picks a queue for a message. Called on every send: it **must not block** and should not allocate.
///
/// `arg` is the caller's argument of `send_with_selector(msg, selector, arg)` (Java's
/// `MessageQueueSelector`), `None` on other paths. Return an index into `queues`, or `None` to refuse.
pub trait QueueSelector: Send + Sync {
    /// The index of the chosen queue in `queues`.
    fn select(
        &self,
        queues: &[PublishQueue],
        message: &Message,
        arg: Option<&(dyn Any + Send + Sync)>,
    ) -> Option<usize>;
}

impl<F> QueueSelector for F
where
    F: Fn(&[PublishQueue], &Message, Option<&(dyn Any + Send + Sync)>) -> Option<usize>
        + Send
        + Sync,
{
    fn select(
        &self,
        queues: &[PublishQueue],
        message: &Message,
        arg: Option<&(dyn Any + Send + Sync)>,
    ) -> Option<usize> {
        self(queues, message, arg)
    }
}

/// Java's `String.hashCode`: `s[0]*31^(n-1) + ... + s[n-1]` over UTF-16 code units, wrapping.
pub fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)))
}

/// Java's `SelectMessageQueueByHash` index: `abs(hash % n)`. `n` must be positive.
pub fn java_hash_index(hash: i32, n: usize) -> usize {
    let n = i32::try_from(n).unwrap_or(i32::MAX).max(1);
    (hash % n).unsigned_abs() as usize
}

/// Guava's `Hashing.consistentHash(input, buckets)`: the bucket in `0..buckets` of `input`, moving as few
/// inputs as possible when `buckets` grows (a linear congruential walk; `buckets` must be positive).
pub fn consistent_hash(input: i64, buckets: usize) -> usize {
    let buckets = i64::try_from(buckets).unwrap_or(i64::MAX).max(1);
    let mut state = input;
    let mut candidate: i64 = 0;
    loop {
        state = state
            .wrapping_mul(2_862_933_555_777_941_757)
            .wrapping_add(1);
        // Java's int arithmetic: (int) (state >>> 33) + 1 wraps at 2^31 - 1, as Guava's does.
        let d = f64::from((((state as u64) >> 33) as i32).wrapping_add(1)) / f64::from(1u32 << 31);
        let next = ((candidate + 1) as f64 / d) as i64;
        if (0..buckets).contains(&next) {
            candidate = next;
        } else {
            return candidate as usize;
        }
    }
}

/// The queue of a lite-topic message (RocketMQ 5.5, RIP-83): Guava's consistent hash of the lite topic's
/// Java `hashCode` over the topic's writable queues, sorted by broker name, as the 5.5 proxy picks it and
/// as brokers decide which of them owns a lite topic. Refuses messages without a lite topic.
#[derive(Debug, Default, Clone, Copy)]
pub struct LiteTopicSelector;

impl QueueSelector for LiteTopicSelector {
    fn select(
        &self,
        queues: &[PublishQueue],
        message: &Message,
        _arg: Option<&(dyn Any + Send + Sync)>,
    ) -> Option<usize> {
        let lite = message.lite_topic()?;
        if queues.is_empty() {
            return None;
        }
        Some(consistent_hash(
            i64::from(java_string_hash(lite)),
            queues.len(),
        ))
    }
}

/// Round robin over a topic's queues, one counter per topic route (kept in the publish info).
#[derive(Clone, Copy, Debug, Default)]
pub struct RoundRobin;

impl RoundRobin {
    /// The next start position for `info`.
    pub fn next(info: &TopicPublishInfo) -> usize {
        if info.queues.is_empty() {
            return 0;
        }
        info.next_index.fetch_add(1, Ordering::Relaxed) as usize % info.queues.len()
    }
}

/// A seedable, lock-free random index source (xorshift64*): fast and reproducible in tests, not
/// cryptographic.
#[derive(Debug)]
pub struct RandomIndex {
    state: AtomicU64,
}

impl RandomIndex {
    /// A source seeded with `seed` (0 is replaced by a fixed odd constant).
    pub fn new(seed: u64) -> Self {
        RandomIndex {
            state: AtomicU64::new(if seed == 0 {
                0x9E37_79B9_7F4A_7C15
            } else {
                seed
            }),
        }
    }

    /// A value in `0..n` (`n` > 0).
    pub fn below(&self, n: usize) -> usize {
        let mut x = self.state.load(Ordering::Relaxed);
        loop {
            let mut y = x;
            y ^= y >> 12;
            y ^= y << 25;
            y ^= y >> 27;
            match self
                .state
                .compare_exchange_weak(x, y, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return (y.wrapping_mul(0x2545_F491_4F6C_DD1D) % n.max(1) as u64) as usize,
                Err(current) => x = current,
            }
        }
    }
}

/// The key a message-hash route uses: the sharding key, else the first of the message keys.
pub fn hash_key(message: &Message) -> Option<&str> {
    message
        .sharding_key()
        .filter(|k| !k.is_empty())
        .or_else(|| message.keys().next())
}

/// Java's `SelectMessageQueueByHash` as a [`QueueSelector`]: hashes the argument (a `String`, `&str`, `i32`
/// or `i64`, as Java's `hashCode`) or, without one, the message's [`hash_key`].
#[derive(Clone, Copy, Debug, Default)]
pub struct SelectByHash;

impl SelectByHash {
    /// Java's `hashCode` of a supported argument.
    pub fn hash_arg(arg: &(dyn Any + Send + Sync)) -> Option<i32> {
        if let Some(s) = arg.downcast_ref::<String>() {
            Some(s.java_hash_code())
        } else if let Some(s) = arg.downcast_ref::<&str>() {
            Some(s.java_hash_code())
        } else if let Some(v) = arg.downcast_ref::<i32>() {
            Some(v.java_hash_code())
        } else {
            arg.downcast_ref::<i64>().map(JavaHashCode::java_hash_code)
        }
    }
}

/// Java's `hashCode` of a value, for hashing a selector argument as the Java client does.
pub trait JavaHashCode {
    /// The value Java's `hashCode()` gives for the same value.
    fn java_hash_code(&self) -> i32;
}

impl JavaHashCode for str {
    fn java_hash_code(&self) -> i32 {
        java_string_hash(self)
    }
}

impl JavaHashCode for String {
    fn java_hash_code(&self) -> i32 {
        java_string_hash(self)
    }
}

impl JavaHashCode for i32 {
    fn java_hash_code(&self) -> i32 {
        *self
    }
}

impl JavaHashCode for i64 {
    fn java_hash_code(&self) -> i32 {
        (*self ^ (*self as u64 >> 32) as i64) as i32
    }
}

/// Java's `SelectMessageQueueByHash` with a typed argument: the queue at `|arg.hashCode()| % n`. Usable
/// as the selector of a producer's `send_with_selector(msg, select_by_hash, &arg)`.
pub fn select_by_hash<A: JavaHashCode + ?Sized>(
    queues: &[PublishQueue],
    _message: &Message,
    arg: &A,
) -> Option<usize> {
    if queues.is_empty() {
        return None;
    }
    Some(java_hash_index(arg.java_hash_code(), queues.len()))
}

impl QueueSelector for SelectByHash {
    fn select(
        &self,
        queues: &[PublishQueue],
        message: &Message,
        arg: Option<&(dyn Any + Send + Sync)>,
    ) -> Option<usize> {
        if queues.is_empty() {
            return None;
        }
        let hash = match arg {
            Some(a) => Self::hash_arg(a)?,
            None => java_string_hash(hash_key(message)?),
        };
        Some(java_hash_index(hash, queues.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consistent_hash_matches_guava() {
        // Guava 32.0.1 `Hashing.consistentHash(name.hashCode(), n)` for n = 1, 2, 4, 8, 16, printed by Java
        // on this machine (the issue 23 research).
        for (name, hash, buckets) in [
            ("lite-topic-1", 2_142_456_052, [0, 1, 2, 2, 13]),
            ("lite-topic-2", 2_142_456_053, [0, 1, 1, 1, 9]),
            ("abc", 96_354, [0, 0, 0, 7, 8]),
            ("x", 120, [0, 1, 1, 4, 12]),
            ("rmq-lite-test", -160_494_886, [0, 0, 2, 4, 9]),
        ] {
            assert_eq!(java_string_hash(name), hash, "{name}");
            for (n, want) in [1, 2, 4, 8, 16].into_iter().zip(buckets) {
                assert_eq!(consistent_hash(i64::from(hash), n), want, "{name} over {n}");
            }
        }
    }

    #[test]
    fn java_string_hash_known_values() {
        // Printed by java.lang.String.hashCode on the JDK 17 here (and Math.abs(h % 8) for the index).
        assert_eq!(java_string_hash(""), 0);
        assert_eq!(java_string_hash("a"), 97);
        assert_eq!(java_string_hash("abc"), 96354);
        assert_eq!(java_string_hash("hello"), 99_162_322);
        assert_eq!(java_string_hash("Hello World"), -862_545_276);
        assert_eq!(java_string_hash("order-42"), 1_234_255_197);
        assert_eq!(java_string_hash("é"), 233);
        assert_eq!(java_string_hash("😀"), 1_772_899); // surrogate pair D83D DE00
        assert_eq!(java_hash_index(-862_545_276, 8), 4);
        assert_eq!(
            java_hash_index(i32::MIN, 7),
            (i32::MIN % 7).unsigned_abs() as usize
        );
    }

    #[test]
    fn random_is_seedable_and_in_range() {
        let a = RandomIndex::new(42);
        let b = RandomIndex::new(42);
        let xs: Vec<_> = (0..100).map(|_| a.below(16)).collect();
        let ys: Vec<_> = (0..100).map(|_| b.below(16)).collect();
        assert_eq!(xs, ys);
        assert!(xs.iter().all(|x| *x < 16));
        let distinct: std::collections::HashSet<_> = xs.into_iter().collect();
        assert!(distinct.len() > 8);
    }

    #[test]
    fn hash_selector_uses_arg_then_keys() {
        let qs: Vec<PublishQueue> = (0..8)
            .map(|i| PublishQueue {
                broker_name: "a".into(),
                queue_id: i,
                broker_addr: Some("x".into()),
            })
            .collect();
        let mut m = Message::new("T", "b");
        assert_eq!(SelectByHash.select(&qs, &m, None), None);
        m.set_keys(["order-42", "other"]);
        assert_eq!(SelectByHash.select(&qs, &m, None), Some(1_234_255_197 % 8));
        m.set_sharding_key("abc");
        assert_eq!(SelectByHash.select(&qs, &m, None), Some(96354 % 8));
        let arg: Box<dyn Any + Send + Sync> = Box::new(13i64);
        assert_eq!(SelectByHash.select(&qs, &m, Some(&*arg)), Some(13 % 8));
        let custom = |qs: &[PublishQueue], _: &Message, _: Option<&(dyn Any + Send + Sync)>| {
            Some(qs.len() - 1)
        };
        assert_eq!(custom.select(&qs, &m, None), Some(7));
    }
}
