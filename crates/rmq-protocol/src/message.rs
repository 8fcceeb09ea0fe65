//! The message model: [`Message`], its properties codec, [`property`] names and [`sys_flag`] bits.

use bytes::Bytes;

use crate::map::StringMap;

/// System property names (`MessageConst`).
pub mod property {
    /// Keys, space-separated.
    pub const KEYS: &str = "KEYS";
    /// Tag.
    pub const TAGS: &str = "TAGS";
    /// Wait until stored (`"true"`/`"false"`; absent counts as true).
    pub const WAIT_STORE_MSG_OK: &str = "WAIT";
    /// Delay level.
    pub const DELAY_TIME_LEVEL: &str = "DELAY";
    /// Delay in seconds (timer messages).
    pub const TIMER_DELAY_SEC: &str = "TIMER_DELAY_SEC";
    /// Delay in milliseconds (timer messages).
    pub const TIMER_DELAY_MS: &str = "TIMER_DELAY_MS";
    /// Absolute delivery time in ms since the epoch (timer messages).
    pub const TIMER_DELIVER_MS: &str = "TIMER_DELIVER_MS";
    /// Legacy start-delivery time.
    pub const START_DELIVER_TIME: &str = "__STARTDELIVERTIME";
    /// The client-side unique message id.
    pub const UNIQ_CLIENT_MESSAGE_ID_KEYIDX: &str = "UNIQ_KEY";
    /// Marks a half (prepared) transaction message.
    pub const TRANSACTION_PREPARED: &str = "TRAN_MSG";
    /// Producer group of a transactional message.
    pub const PRODUCER_GROUP: &str = "PGROUP";
    /// Transaction id.
    pub const TRANSACTION_ID: &str = "__transactionId__";
    /// Transaction check immunity.
    pub const CHECK_IMMUNITY_TIME_IN_SECONDS: &str = "CHECK_IMMUNITY_TIME_IN_SECONDS";
    /// Half-queue offset.
    pub const TRANSACTION_PREPARED_QUEUE_OFFSET: &str = "TRAN_PREPARED_QUEUE_OFFSET";
    /// Transaction check count.
    pub const TRANSACTION_CHECK_TIMES: &str = "TRANSACTION_CHECK_TIMES";
    /// Sharding key for ordered messages.
    pub const SHARDING_KEY: &str = "__SHARDINGKEY";
    /// Region.
    pub const MSG_REGION: &str = "MSG_REGION";
    /// Trace switch.
    pub const TRACE_SWITCH: &str = "TRACE_ON";
    /// Namespace instance id.
    pub const INSTANCE_ID: &str = "INSTANCE_ID";
    /// Request/reply correlation id.
    pub const CORRELATION_ID: &str = "CORRELATION_ID";
    /// Request/reply: the requesting client.
    pub const MESSAGE_REPLY_TO_CLIENT: &str = "REPLY_TO_CLIENT";
    /// Request/reply: time to live in ms.
    pub const MESSAGE_TTL: &str = "TTL";
    /// Message type (`"reply"` marks a reply).
    pub const MESSAGE_TYPE: &str = "MSG_TYPE";
    /// Cluster (added by the broker).
    pub const CLUSTER: &str = "CLUSTER";
    /// Reply arrival time.
    pub const REPLY_MESSAGE_ARRIVE_TIME: &str = "ARRIVE_TIME";
    /// Reply push time.
    pub const PUSH_REPLY_TIME: &str = "PUSH_REPLY_TIME";
    /// Reconsume count.
    pub const RECONSUME_TIME: &str = "RECONSUME_TIME";
    /// Max reconsume count.
    pub const MAX_RECONSUME_TIMES: &str = "MAX_RECONSUME_TIMES";
    /// Real topic (broker-internal).
    pub const REAL_TOPIC: &str = "REAL_TOPIC";
    /// Real queue id (broker-internal).
    pub const REAL_QUEUE_ID: &str = "REAL_QID";
    /// Retry topic (broker-internal).
    pub const RETRY_TOPIC: &str = "RETRY_TOPIC";
    /// Prefix of transient properties.
    pub const TRANSIENT_PREFIX: &str = "__RMQ.TRANSIENT.";
    /// The properties that hold a message back: a delay level and the three timer forms (every one a
    /// batch refuses, and a transaction, a priority or a lite topic cannot go with).
    pub const DELAYS: &[&str] = &[
        DELAY_TIME_LEVEL,
        TIMER_DELAY_SEC,
        TIMER_DELAY_MS,
        TIMER_DELIVER_MS,
    ];
    /// Priority on a PRIORITY topic (RocketMQ 5.4+, RIP-80): a non-negative integer; the broker stores
    /// the message in queue `min(priority, queues - 1)` of the broker it reaches.
    pub const PRIORITY: &str = "_SYS_MSG_PRIORITY_";
    /// The lite topic of a message sent to a LITE parent topic (RocketMQ 5.5, RIP-83): the broker also
    /// files it under `%LMQ%$parent$lite`.
    pub const LITE_TOPIC: &str = "__LITE_TOPIC";

    /// Every name in Java's `MessageConst.STRING_HASH_SET`: reserved, refused as user property names.
    pub const RESERVED: &[&str] = &[
        "TRACE_ON",
        "MSG_REGION",
        "KEYS",
        "TAGS",
        "WAIT",
        "DELAY",
        "RETRY_TOPIC",
        "REAL_TOPIC",
        "REAL_QID",
        "TRAN_MSG",
        "PGROUP",
        "MIN_OFFSET",
        "MAX_OFFSET",
        "BUYER_ID",
        "ORIGIN_MESSAGE_ID",
        "TRANSFER_FLAG",
        "CORRECTION_FLAG",
        "MQ2_FLAG",
        "RECONSUME_TIME",
        "UNIQ_KEY",
        "MAX_RECONSUME_TIMES",
        "CONSUME_START_TIME",
        "POP_CK",
        "POP_CK_OFFSET",
        "1ST_POP_TIME",
        "TRAN_PREPARED_QUEUE_OFFSET",
        "DUP_INFO",
        "EXTEND_UNIQ_INFO",
        "INSTANCE_ID",
        "CORRELATION_ID",
        "REPLY_TO_CLIENT",
        "TTL",
        "ARRIVE_TIME",
        "PUSH_REPLY_TIME",
        "CLUSTER",
        "MSG_TYPE",
        "INNER_MULTI_QUEUE_OFFSET",
        "TRACE_CONTEXT",
        "TIMER_DELAY_SEC",
        "TIMER_DELIVER_MS",
        "__BORNHOST",
        "BORN_TIMESTAMP",
        "DLQ_ORIGIN_TOPIC",
        "DLQ_ORIGIN_MESSAGE_ID",
        "__CRC32#",
        "TIMER_DELAY_MS",
        "TIMER_ENQUEUE_MS",
        "TIMER_DEQUEUE_MS",
        "TIMER_ROLL_TIMES",
        "TIMER_OUT_MS",
        "TIMER_DEL_UNIQKEY",
        "TIMER_DELAY_LEVEL",
        "INNER_NUM",
        "INNER_BASE",
        "INNER_MULTI_DISPATCH",
        "__SHARDINGKEY",
        "__transactionId__",
        "CHECK_IMMUNITY_TIME_IN_SECONDS",
        "TRANSACTION_CHECK_TIMES",
        "PROPERTY_FORWARD_QUEUE_ID",
        "REDIRECT",
        "__STARTDELIVERTIME",
        "_SYS_MSG_PRIORITY_",
        "__LITE_TOPIC",
    ];

    /// Whether `name` is reserved by RocketMQ.
    pub fn is_reserved(name: &str) -> bool {
        RESERVED.contains(&name)
    }
}

/// `MessageSysFlag` bits carried in the send header's sysFlag.
pub mod sys_flag {
    /// The body is compressed.
    pub const COMPRESSED: i32 = 0x1;
    /// Multiple tags (set by brokers).
    pub const MULTI_TAGS: i32 = 0x2;
    /// Not a transaction message.
    pub const TRANSACTION_NOT_TYPE: i32 = 0;
    /// Half (prepared) transaction message.
    pub const TRANSACTION_PREPARED_TYPE: i32 = 0x4;
    /// Committed transaction message.
    pub const TRANSACTION_COMMIT_TYPE: i32 = 0x8;
    /// Rolled-back transaction message.
    pub const TRANSACTION_ROLLBACK_TYPE: i32 = 0xC;
    /// Born host is IPv6.
    pub const BORNHOST_V6: i32 = 0x10;
    /// Store host is IPv6.
    pub const STOREHOST_V6: i32 = 0x20;
    /// Needs unwrapping.
    pub const NEED_UNWRAP: i32 = 0x40;
    /// Inner batch.
    pub const INNER_BATCH: i32 = 0x80;
    /// LZ4 compression type.
    pub const COMPRESSION_LZ4: i32 = 0x100;
    /// Zstandard compression type.
    pub const COMPRESSION_ZSTD: i32 = 0x200;
    /// zlib compression type.
    pub const COMPRESSION_ZLIB: i32 = 0x300;
    /// Mask of the compression type bits.
    pub const COMPRESSION_TYPE_MASK: i32 = 0x700;
    /// Mask of the transaction type bits.
    pub const TRANSACTION_TYPE_MASK: i32 = 0xC;
}

/// Separator between a property's name and value.
pub const NAME_VALUE_SEPARATOR: char = '\u{1}';
/// Terminator after each property.
pub const PROPERTY_SEPARATOR: char = '\u{2}';

/// Encodes properties as Java's `messageProperties2String`: `name \x01 value \x02` for each entry.
pub fn encode_properties(props: &StringMap, out: &mut String) {
    out.reserve(props.text_len() + 2 * props.len());
    for (k, v) in props.iter() {
        out.push_str(k);
        out.push(NAME_VALUE_SEPARATOR);
        out.push_str(v);
        out.push(PROPERTY_SEPARATOR);
    }
}

/// The length [`encode_properties`] would produce.
pub fn encoded_properties_len(props: &StringMap) -> usize {
    props.text_len() + 2 * props.len()
}

/// Decodes properties with the tolerance of Java's `string2messageProperties`: segments are split on
/// `\x02`; a segment counts only if it has a `\x01` after a non-empty name and before a non-empty value
/// (the first `\x01` splits, later ones belong to the value); a missing final `\x02` is fine; later
/// duplicates win.
pub fn decode_properties(s: &str) -> StringMap {
    let mut map = StringMap::with_capacity(8, s.len());
    for seg in s.split(PROPERTY_SEPARATOR) {
        if let Some(i) = seg.find(NAME_VALUE_SEPARATOR)
            && i > 0
            && i + 1 < seg.len()
        {
            map.append_unchecked(&seg[..i], &seg[i + 1..]);
        }
    }
    map.dedup_last_wins();
    map
}

/// A message to send: topic, body, user flag and properties.
///
/// ```
/// use rmq_protocol::Message;
/// let mut m = Message::new("TopicTest", "Hello");
/// m.set_tags("TagA");
/// m.set_keys(["order-1", "user-7"]);
/// assert_eq!(m.keys().collect::<Vec<_>>(), ["order-1", "user-7"]);
/// assert!(m.wait_store_ok());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Message {
    /// Topic.
    pub topic: String,
    /// Body (uncompressed).
    pub body: Bytes,
    /// User flag, carried as is.
    pub flag: i32,
    /// Properties: system ones set through the helpers, user ones through [`Message::put_user_property`].
    pub properties: StringMap,
}

impl Message {
    /// A message with `topic` and `body`, no properties.
    pub fn new(topic: impl Into<String>, body: impl Into<Bytes>) -> Self {
        Message {
            topic: topic.into(),
            body: body.into(),
            flag: 0,
            properties: StringMap::new(),
        }
    }

    /// A property by name.
    pub fn property(&self, name: &str) -> Option<&str> {
        self.properties.get(name)
    }

    /// The tag.
    pub fn tags(&self) -> Option<&str> {
        self.property(property::TAGS)
    }

    /// Sets the tag.
    pub fn set_tags(&mut self, tags: &str) {
        self.properties.insert(property::TAGS, tags);
    }

    /// The keys (the `KEYS` property split on spaces).
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.property(property::KEYS)
            .unwrap_or("")
            .split(' ')
            .filter(|k| !k.is_empty())
    }

    /// Sets the keys, joined with one space as Java does. A key containing a space becomes two keys.
    pub fn set_keys<I: IntoIterator<Item = S>, S: AsRef<str>>(&mut self, keys: I) {
        let mut joined = String::new();
        for k in keys {
            if !joined.is_empty() {
                joined.push(' ');
            }
            joined.push_str(k.as_ref());
        }
        self.properties.insert(property::KEYS, &joined);
    }

    /// The sharding key, used by ordered (message-hash) routing.
    pub fn sharding_key(&self) -> Option<&str> {
        self.property(property::SHARDING_KEY)
    }

    /// Sets the sharding key.
    pub fn set_sharding_key(&mut self, key: &str) {
        self.properties.insert(property::SHARDING_KEY, key);
    }

    /// The priority (RocketMQ 5.4+ PRIORITY topics), if set and a non-negative integer.
    pub fn priority(&self) -> Option<u32> {
        self.property(property::PRIORITY)?.parse().ok()
    }

    /// Sets the priority for a PRIORITY topic (RocketMQ 5.4+, RIP-80): a 5.4+ broker stores the message
    /// in queue `min(priority, queues - 1)` of the broker it reaches, whatever queue the producer chose,
    /// and the result names that queue; consumers take higher queues first (0 is the lowest). A send
    /// refuses a priority together with a delay, a timer, a sharding key, a lite topic or a
    /// transaction (brokers drop it then), and in a batch (brokers ignore it there). Brokers before 5.4
    /// keep it as an ordinary property.
    pub fn set_priority(&mut self, priority: u32) {
        self.properties
            .insert_int(property::PRIORITY, priority.into());
    }

    /// The lite topic, if set.
    pub fn lite_topic(&self) -> Option<&str> {
        self.property(property::LITE_TOPIC)
    }

    /// Sends the message to lite topic `lite` of its topic, which must be a LITE parent topic (RocketMQ
    /// 5.5, RIP-83; brokers need `enableLmq` and `enableMultiDispatch`). A lite consumer subscribed to
    /// `lite` receives it. The name is checked on send: 1 to 64 bytes of `a-zA-Z0-9_-`. Every message of
    /// a lite topic goes to the same queue (Java's consistent hash of the name over the topic's
    /// queues, as the 5.5 proxy chooses, so it lands on the broker that owns the lite topic). A send
    /// refuses a lite topic together with a delay, a timer, a sharding key, a priority or a
    /// transaction, and in a batch (brokers do not file batches under lite topics).
    pub fn set_lite_topic(&mut self, lite: &str) {
        self.properties.insert(property::LITE_TOPIC, lite);
    }

    /// The delay level, if set and numeric.
    pub fn delay_level(&self) -> Option<i32> {
        self.property(property::DELAY_TIME_LEVEL)?.parse().ok()
    }

    /// Sets the delay level (1..=18 on a default broker).
    pub fn set_delay_level(&mut self, level: i32) {
        self.properties
            .insert_int(property::DELAY_TIME_LEVEL, level.into());
    }

    /// The absolute delivery time in ms since the epoch (timer messages, 5.x brokers).
    pub fn deliver_time_ms(&self) -> Option<i64> {
        self.property(property::TIMER_DELIVER_MS)?.parse().ok()
    }

    /// Sets the absolute delivery time in ms since the epoch.
    pub fn set_deliver_time_ms(&mut self, ms: i64) {
        self.properties.insert_int(property::TIMER_DELIVER_MS, ms);
    }

    /// Sets a relative delay in ms (timer messages, 5.x brokers).
    pub fn set_delay_time_ms(&mut self, ms: i64) {
        self.properties.insert_int(property::TIMER_DELAY_MS, ms);
    }

    /// Sets a relative delay in seconds (timer messages, 5.x brokers). Brokers read it before
    /// `TIMER_DELAY_MS` and `TIMER_DELIVER_MS`, and ignore all three when a delay level is set.
    pub fn set_delay_time_sec(&mut self, secs: i64) {
        self.properties.insert_int(property::TIMER_DELAY_SEC, secs);
    }

    /// Whether the broker should answer only once the message is stored (absent counts as true).
    pub fn wait_store_ok(&self) -> bool {
        self.property(property::WAIT_STORE_MSG_OK) != Some("false")
    }

    /// Sets `WAIT`.
    pub fn set_wait_store_ok(&mut self, wait: bool) {
        self.properties
            .insert_bool(property::WAIT_STORE_MSG_OK, wait);
    }

    /// The client message id (UNIQ_KEY), once set.
    pub fn uniq_key(&self) -> Option<&str> {
        self.property(property::UNIQ_CLIENT_MESSAGE_ID_KEYIDX)
    }

    /// The encoded properties string.
    pub fn encoded_properties(&self) -> String {
        let mut s = String::new();
        encode_properties(&self.properties, &mut s);
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// protocol.md 10.1: `string2messageProperties` cases, `=` for \x01 and `;` for \x02.
    #[test]
    fn java_decoder_cases() {
        let cases: &[(&str, &[(&str, &str)])] = &[
            ("k1=v1", &[("k1", "v1")]),
            ("", &[]),
            (" ", &[]),
            ("aaa", &[]),
            ("k1=", &[]),
            ("=v1", &[]),
            ("k1=v1;", &[("k1", "v1")]),
            ("k1=v1;k2=v2", &[("k1", "v1"), ("k2", "v2")]),
            ("k1=v1;=v2", &[("k1", "v1")]),
            ("k1=v1;k2=", &[("k1", "v1")]),
            ("=v1;k2=v2", &[("k2", "v2")]),
            ("k1=;k2=v2", &[("k2", "v2")]),
            ("1=1;2=2", &[("1", "1"), ("2", "2")]),
            ("1=;2=2", &[("2", "2")]),
            ("=1;2=2", &[("2", "2")]),
            ("1=1;2=", &[("1", "1")]),
            ("1=1;=2", &[("1", "1")]),
        ];
        for (input, want) in cases {
            let wire = input.replace('=', "\u{1}").replace(';', "\u{2}");
            let got = decode_properties(&wire);
            let want: StringMap = want.iter().copied().collect();
            assert_eq!(got, want, "case {input:?}");
        }
    }

    #[test]
    fn value_keeps_later_separators_and_duplicates_take_the_last() {
        let got = decode_properties("a\u{1}b\u{1}c\u{2}a\u{1}z\u{2}");
        assert_eq!(got.get("a"), Some("z"));
        let got = decode_properties("a\u{1}b\u{1}c\u{2}");
        assert_eq!(got.get("a"), Some("b\u{1}c"));
    }

    #[test]
    fn java_properties_vector() {
        // java_vectors.txt "props example": WAIT=true;TAGS=TagA;
        let mut m = Message::new("TopicTest", "x");
        m.set_wait_store_ok(true);
        m.set_tags("TagA");
        assert_eq!(
            hex::encode(m.encoded_properties()),
            "5741495401747275650254414753015461674102"
        );
        assert_eq!(decode_properties(&m.encoded_properties()), m.properties);
        assert_eq!(
            encoded_properties_len(&m.properties),
            m.encoded_properties().len()
        );
    }

    #[test]
    fn helpers() {
        let mut m = Message::new("T", "b");
        assert!(m.wait_store_ok());
        m.set_wait_store_ok(false);
        assert!(!m.wait_store_ok());
        m.set_keys(["a", "b c"]);
        assert_eq!(m.keys().collect::<Vec<_>>(), ["a", "b", "c"]);
        m.set_sharding_key("user-1");
        assert_eq!(m.sharding_key(), Some("user-1"));
        m.set_delay_level(3);
        assert_eq!(m.delay_level(), Some(3));
        m.set_deliver_time_ms(1_700_000_000_000);
        assert_eq!(m.deliver_time_ms(), Some(1_700_000_000_000));
        assert!(m.put_user_property("KEYS", "x").is_err());
        assert!(m.put_user_property("mine", "a\u{2}b").is_err());
        m.put_user_property("mine", "v").unwrap();
        assert_eq!(m.property("mine"), Some("v"));
    }
}
