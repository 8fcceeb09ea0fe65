//! Checks run before anything is sent, with Java's rules (`Validators`, `TopicValidator`) plus the ones
//! Java lacks: properties that would corrupt the encoding or exceed what the broker stores are refused
//! here instead of failing later or silently.

use crate::error::{ValidationError, cut};
use crate::message::{Message, encoded_properties_len, property};

/// Longest topic name.
pub const TOPIC_MAX_LEN: usize = 127;
/// Longest producer group name (Java 5.x).
pub const GROUP_MAX_LEN: usize = 120;
/// Default largest body: 4 MiB, the Java client's and the broker's default `maxMessageSize`.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 4 * 1024 * 1024;
/// Largest encoded properties the broker stores.
pub const PROPERTIES_MAX_LEN: usize = i16::MAX as usize;

/// System topics a client may not send to (`TopicValidator.NOT_ALLOWED_SEND_TOPIC_SET`).
pub const FORBIDDEN_TOPICS: &[&str] = &[
    "SCHEDULE_TOPIC_XXXX",
    "RMQ_SYS_TRANS_HALF_TOPIC",
    "RMQ_SYS_TRANS_OP_HALF_TOPIC",
    "TRANS_CHECK_MAX_TIME_TOPIC",
    "SELF_TEST_TOPIC",
    "OFFSET_MOVED_EVENT",
];

/// Groups a producer may not use.
pub const RESERVED_GROUPS: &[&str] = &["DEFAULT_PRODUCER", "CLIENT_INNER_PRODUCER"];

fn legal_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '%' | '|' | '_' | '-')
}

/// Checks a topic name: not blank, at most 127 characters of `%|a-zA-Z0-9_-`, not a forbidden system
/// topic.
pub fn topic(topic: &str) -> Result<(), ValidationError> {
    if topic.trim().is_empty() {
        return Err(ValidationError::BlankTopic);
    }
    if topic.len() > TOPIC_MAX_LEN {
        return Err(ValidationError::TopicTooLong {
            topic: cut(topic),
            len: topic.chars().count(),
            max: TOPIC_MAX_LEN,
        });
    }
    if let Some(ch) = topic.chars().find(|c| !legal_char(*c)) {
        return Err(ValidationError::TopicIllegalChar {
            topic: cut(topic),
            ch,
        });
    }
    if FORBIDDEN_TOPICS.contains(&topic) {
        return Err(ValidationError::TopicForbidden(topic.to_owned()));
    }
    Ok(())
}

/// Checks a producer group: not blank, at most 120 characters of `%|a-zA-Z0-9_-`, not reserved.
pub fn producer_group(group: &str) -> Result<(), ValidationError> {
    if group.trim().is_empty() {
        return Err(ValidationError::BlankGroup);
    }
    if group.len() > GROUP_MAX_LEN {
        return Err(ValidationError::GroupTooLong {
            group: cut(group),
            len: group.chars().count(),
            max: GROUP_MAX_LEN,
        });
    }
    if let Some(ch) = group.chars().find(|c| !legal_char(*c)) {
        return Err(ValidationError::GroupIllegalChar {
            group: cut(group),
            ch,
        });
    }
    if RESERVED_GROUPS.contains(&group) {
        return Err(ValidationError::GroupReserved(group.to_owned()));
    }
    Ok(())
}

fn separators(name: &str, part: &'static str, text: &str) -> Result<(), ValidationError> {
    match text.bytes().find(|b| *b == 1 || *b == 2) {
        Some(byte) => Err(ValidationError::PropertySeparator {
            name: cut(name),
            part,
            byte,
        }),
        None => Ok(()),
    }
}

/// Checks one property's name and value for the separators `\x01`/`\x02`.
pub fn property_text(name: &str, value: &str) -> Result<(), ValidationError> {
    separators(name, "name", name)?;
    separators(name, "value", value)
}

/// Checks a user property: name and value not blank, no separators, name not reserved.
pub fn user_property(name: &str, value: &str) -> Result<(), ValidationError> {
    if name.trim().is_empty() {
        return Err(ValidationError::BlankPropertyName);
    }
    if value.trim().is_empty() {
        return Err(ValidationError::BlankPropertyValue(cut(name)));
    }
    property_text(name, value)?;
    if property::is_reserved(name) {
        return Err(ValidationError::ReservedPropertyName(name.to_owned()));
    }
    Ok(())
}

/// Checks a message before sending: topic, body not empty and at most `max_body` bytes (uncompressed), every
/// property free of separators, encoded properties within what the broker stores. `extra_properties_len`
/// is room the producer will still add (for `UNIQ_KEY`, say).
pub fn message(
    msg: &Message,
    max_body: usize,
    extra_properties_len: usize,
) -> Result<(), ValidationError> {
    topic(&msg.topic)?;
    if msg.body.is_empty() {
        return Err(ValidationError::EmptyBody);
    }
    if msg.body.len() > max_body {
        return Err(ValidationError::BodyTooLarge {
            len: msg.body.len(),
            max: max_body,
        });
    }
    for (k, v) in msg.properties.iter() {
        property_text(k, v)?;
    }
    delays(msg)?;
    kinds(msg)?;
    let len = encoded_properties_len(&msg.properties) + extra_properties_len;
    if len > PROPERTIES_MAX_LEN {
        return Err(ValidationError::PropertiesTooLarge {
            len,
            max: PROPERTIES_MAX_LEN,
        });
    }
    Ok(())
}

/// Checks the delay properties a broker parses as numbers: `DELAY` (an int; a level above the broker's
/// highest is clamped to it, 0 or less means none) and `TIMER_DELAY_SEC`, `TIMER_DELAY_MS`,
/// `TIMER_DELIVER_MS` (longs; a 5.x broker answers code 13 for anything else, 4.x ignores them).
fn delays(msg: &Message) -> Result<(), ValidationError> {
    let bad = |property: &'static str, value: &str| ValidationError::DelayValue {
        property,
        value: cut(value),
    };
    if let Some(v) = msg.properties.get(property::DELAY_TIME_LEVEL)
        && v.parse::<i32>().is_err()
    {
        return Err(bad(property::DELAY_TIME_LEVEL, v));
    }
    for p in [
        property::TIMER_DELAY_SEC,
        property::TIMER_DELAY_MS,
        property::TIMER_DELIVER_MS,
    ] {
        if let Some(v) = msg.properties.get(p)
            && v.parse::<i64>().is_err()
        {
            return Err(bad(p, v));
        }
    }
    Ok(())
}

/// Longest lite topic name, in bytes (the 5.5 proxy's `maxLiteTopicSize`).
pub const LITE_TOPIC_MAX_LEN: usize = 64;

/// Checks a lite topic name as the 5.5 gRPC proxy does (the broker checks nothing, and `$`, `,` or `/`
/// would break its `%LMQ%$parent$lite` queue): not blank, at most 64 bytes, only `a-zA-Z0-9_-`.
pub fn lite_topic(name: &str) -> Result<(), ValidationError> {
    let bad = |reason| ValidationError::LiteTopic {
        name: cut(name),
        reason,
    };
    if name.trim().is_empty() {
        return Err(bad("it is blank"));
    }
    if name.len() > LITE_TOPIC_MAX_LEN {
        return Err(bad("it is longer than 64 bytes"));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(bad("only the characters a-zA-Z0-9_- are allowed"));
    }
    Ok(())
}

/// Checks the priority and the lite topic, and that a message asks for one kind of delivery only: the
/// broker decides a message's type in the order transaction, delay/timer, sharding key (FIFO), priority,
/// lite, and drops what comes later (RocketMQ 5.5.0 `SendMessageProcessor`).
fn kinds(msg: &Message) -> Result<(), ValidationError> {
    let has = |p: &&str| msg.properties.get(p).is_some();
    let priority = msg.properties.get(property::PRIORITY);
    let lite = msg.properties.get(property::LITE_TOPIC);
    if priority.is_none() && lite.is_none() {
        return Ok(());
    }
    // The broker reads it as a Java int (anything else, or a negative one, is ignored).
    if let Some(p) = priority
        && p.parse::<i32>().map_or(true, |n| n < 0)
    {
        return Err(ValidationError::Priority(cut(p)));
    }
    if let Some(l) = lite {
        lite_topic(l)?;
    }
    // As the broker reads them: `Boolean.parseBoolean`, any sharding key at all (an empty one too).
    let transaction = msg
        .properties
        .get(property::TRANSACTION_PREPARED)
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let delayed = property::DELAYS.iter().any(has);
    let ordered = has(&property::SHARDING_KEY);
    let first = if priority.is_some() {
        "a priority message"
    } else {
        "a lite-topic message"
    };
    let second = if transaction {
        Some("transactional")
    } else if delayed {
        Some("delayed")
    } else if ordered {
        Some("ordered (sharding key)")
    } else if priority.is_some() && lite.is_some() {
        return Err(ValidationError::Conflict {
            first: "a lite-topic message",
            second: "a priority message",
        });
    } else {
        None
    };
    match second {
        Some(second) => Err(ValidationError::Conflict { first, second }),
        None => Ok(()),
    }
}

/// Checks that `messages` can travel as one batch (`MessageBatch.generateFromList`): not empty, one topic,
/// not a retry topic, no delay level, the same `WAIT`.
pub fn batch(messages: &[Message]) -> Result<(), ValidationError> {
    let Some(first) = messages.first() else {
        return Err(ValidationError::Batch("a batch needs at least one message"));
    };
    if first.topic.starts_with("%RETRY%") {
        return Err(ValidationError::Batch(
            "retry topics cannot be sent in a batch",
        ));
    }
    for m in messages {
        if m.topic != first.topic {
            return Err(ValidationError::Batch(
                "all messages of a batch must have the same topic",
            ));
        }
        if m.wait_store_ok() != first.wait_store_ok() {
            return Err(ValidationError::Batch(
                "all messages of a batch must have the same WAIT setting",
            ));
        }
        if m.delay_level().is_some_and(|l| l > 0) {
            return Err(ValidationError::Batch(
                "delayed messages cannot be sent in a batch",
            ));
        }
        if m.properties.get(property::PRIORITY).is_some() {
            return Err(ValidationError::Batch(
                "priority messages cannot be sent in a batch (brokers ignore the priority there)",
            ));
        }
        if m.properties.get(property::LITE_TOPIC).is_some() {
            return Err(ValidationError::Batch(
                "lite-topic messages cannot be sent in a batch (brokers do not file batches under lite topics)",
            ));
        }
    }
    Ok(())
}

impl Message {
    /// Sets a user property after checking it ([`user_property`]): the name must not be reserved, and
    /// neither part may be blank or contain the separators `\x01`/`\x02`.
    pub fn put_user_property(&mut self, name: &str, value: &str) -> Result<(), ValidationError> {
        user_property(name, value)?;
        self.properties.insert(name, value);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_properties_must_be_numbers() {
        let mut m = Message::new("T", "x");
        m.set_delay_level(2);
        m.set_delay_time_sec(3);
        m.set_delay_time_ms(-5);
        m.set_deliver_time_ms(1_800_000_000_000);
        assert!(message(&m, 1024, 0).is_ok());
        for p in [
            property::DELAY_TIME_LEVEL,
            property::TIMER_DELAY_SEC,
            property::TIMER_DELAY_MS,
            property::TIMER_DELIVER_MS,
        ] {
            let mut bad = m.clone();
            bad.properties.insert(p, "abc");
            assert_eq!(
                message(&bad, 1024, 0),
                Err(ValidationError::DelayValue {
                    property: p,
                    value: "abc".into()
                })
            );
        }
        let mut big = Message::new("T", "x");
        big.properties
            .insert(property::DELAY_TIME_LEVEL, "99999999999");
        assert!(message(&big, 1024, 0).is_err(), "not an int");
    }

    // ValidatorsTest (protocol.md 10.1) and section 5.5.
    #[test]
    fn topics() {
        for ok in [
            "Hello",
            "%RETRY%Hello",
            "_%RETRY%Hello",
            "-%RETRY%Hello",
            "223-%RETRY%Hello",
            "a|b",
            "TBW102",
        ] {
            topic(ok).unwrap();
        }
        assert_eq!(topic(""), Err(ValidationError::BlankTopic));
        assert_eq!(topic("   "), Err(ValidationError::BlankTopic));
        assert!(matches!(
            topic("TOPIC&*^"),
            Err(ValidationError::TopicIllegalChar { ch: '&', .. })
        ));
        assert!(matches!(
            topic("caf\u{e9}"),
            Err(ValidationError::TopicIllegalChar { .. })
        ));
        topic(&"t".repeat(127)).unwrap();
        assert!(matches!(
            topic(&"t".repeat(128)),
            Err(ValidationError::TopicTooLong { len: 128, .. })
        ));
        for f in FORBIDDEN_TOPICS {
            assert!(matches!(topic(f), Err(ValidationError::TopicForbidden(_))));
        }
    }

    #[test]
    fn groups() {
        producer_group("PG-1_a%b|c").unwrap();
        assert_eq!(producer_group(" "), Err(ValidationError::BlankGroup));
        assert!(matches!(
            producer_group("a b"),
            Err(ValidationError::GroupIllegalChar { ch: ' ', .. })
        ));
        assert!(matches!(
            producer_group(&"g".repeat(121)),
            Err(ValidationError::GroupTooLong { .. })
        ));
        producer_group(&"g".repeat(120)).unwrap();
        assert!(matches!(
            producer_group("DEFAULT_PRODUCER"),
            Err(ValidationError::GroupReserved(_))
        ));
        assert!(matches!(
            producer_group("CLIENT_INNER_PRODUCER"),
            Err(ValidationError::GroupReserved(_))
        ));
    }

    #[test]
    fn bodies() {
        let m = Message::new("T", "");
        assert_eq!(message(&m, 10, 0), Err(ValidationError::EmptyBody));
        let m = Message::new("T", vec![0u8; 11]);
        assert_eq!(
            message(&m, 10, 0),
            Err(ValidationError::BodyTooLarge { len: 11, max: 10 })
        );
        message(&Message::new("T", vec![0u8; 10]), 10, 0).unwrap();
        assert!(matches!(
            message(&Message::new("bad topic", "x"), 10, 0),
            Err(ValidationError::TopicIllegalChar { .. })
        ));
    }

    #[test]
    fn properties() {
        let mut m = Message::new("T", "x");
        m.properties
            .insert("big", &"v".repeat(PROPERTIES_MAX_LEN - 5));
        message(&m, 10, 0).unwrap();
        assert!(matches!(
            message(&m, 10, 1),
            Err(ValidationError::PropertiesTooLarge { .. })
        ));
        let mut m = Message::new("T", "x");
        m.set_tags("a\u{1}b");
        assert!(matches!(
            message(&m, 10, 0),
            Err(ValidationError::PropertySeparator {
                part: "value",
                byte: 1,
                ..
            })
        ));
        assert!(matches!(
            user_property("k\u{2}", "v"),
            Err(ValidationError::PropertySeparator {
                part: "name",
                byte: 2,
                ..
            })
        ));
        assert_eq!(
            user_property("", "v"),
            Err(ValidationError::BlankPropertyName)
        );
        assert!(matches!(
            user_property("k", " "),
            Err(ValidationError::BlankPropertyValue(_))
        ));
        assert!(matches!(
            user_property("UNIQ_KEY", "v"),
            Err(ValidationError::ReservedPropertyName(_))
        ));
        assert!(matches!(
            user_property("__SHARDINGKEY", "v"),
            Err(ValidationError::ReservedPropertyName(_))
        ));
        user_property("orderId", "42").unwrap();
    }

    // MessageBatchTest (protocol.md 10.1).
    #[test]
    fn batches() {
        let a = Message::new("T", "a");
        batch(&[a.clone(), a.clone()]).unwrap();
        assert!(batch(&[]).is_err());
        assert!(batch(&[a.clone(), Message::new("U", "b")]).is_err());
        let mut w = a.clone();
        w.set_wait_store_ok(false);
        assert!(batch(&[a.clone(), w]).is_err());
        let mut d = a.clone();
        d.set_delay_level(2);
        assert!(batch(&[a.clone(), d]).is_err());
        assert!(batch(&[Message::new("%RETRY%G", "x")]).is_err());
    }

    #[test]
    fn priority_and_lite_topic_are_checked_and_never_mixed_with_what_brokers_drop() {
        let ok = |m: &Message| message(m, 1 << 20, 0);
        let mut m = Message::new("T", "x");
        m.set_priority(3);
        assert_eq!(m.priority(), Some(3));
        ok(&m).unwrap();
        m.properties.insert(property::PRIORITY, "-1");
        assert_eq!(ok(&m), Err(ValidationError::Priority("-1".into())));
        for (what, set) in [
            (
                "delayed",
                (|m: &mut Message| m.set_delay_level(2)) as fn(&mut Message),
            ),
            ("delayed", |m| m.set_delay_time_ms(500)),
            ("ordered (sharding key)", |m| m.set_sharding_key("k")),
            ("transactional", |m| {
                m.properties
                    .insert_bool(property::TRANSACTION_PREPARED, true)
            }),
        ] {
            for kind in ["a priority message", "a lite-topic message"] {
                let mut m = Message::new("T", "x");
                if kind == "a priority message" {
                    m.set_priority(1);
                } else {
                    m.set_lite_topic("lite-1");
                }
                set(&mut m);
                assert_eq!(
                    ok(&m),
                    Err(ValidationError::Conflict {
                        first: kind,
                        second: what
                    }),
                    "{kind} + {what}"
                );
            }
        }
        // As brokers read them: an empty sharding key is FIFO too, TRAN_MSG=false is no transaction, and
        // a priority beyond a Java int is none.
        let mut empty_key = Message::new("T", "x");
        empty_key.set_priority(1);
        empty_key.set_sharding_key("");
        assert!(matches!(
            ok(&empty_key),
            Err(ValidationError::Conflict { .. })
        ));
        let mut not_tx = Message::new("T", "x");
        not_tx.set_priority(1);
        not_tx
            .properties
            .insert(property::TRANSACTION_PREPARED, "false");
        ok(&not_tx).unwrap();
        let mut huge = Message::new("T", "x");
        huge.set_priority(u32::MAX);
        assert!(matches!(ok(&huge), Err(ValidationError::Priority(_))));
        let mut both = Message::new("T", "x");
        both.set_priority(1);
        both.set_lite_topic("l");
        assert!(matches!(ok(&both), Err(ValidationError::Conflict { .. })));
        // Reserved: only the setters write them.
        assert!(
            Message::new("T", "x")
                .put_user_property(property::PRIORITY, "1")
                .is_err()
        );
        assert!(
            Message::new("T", "x")
                .put_user_property(property::LITE_TOPIC, "l")
                .is_err()
        );
        // Neither goes in a batch.
        let mut lite = Message::new("T", "x");
        lite.set_lite_topic("l");
        let mut p = Message::new("T", "x");
        p.set_priority(0);
        for m in [lite, p] {
            assert!(matches!(
                batch(&[Message::new("T", "y"), m]),
                Err(ValidationError::Batch(_))
            ));
        }
    }

    #[test]
    fn lite_topic_names_follow_the_proxy_rules() {
        for good in ["a", "lite-topic_1", &"x".repeat(64)] {
            lite_topic(good).unwrap();
        }
        for bad in ["", "  ", &"x".repeat(65), "a$b", "a,b", "a/b", "a b", "ü"] {
            assert!(
                matches!(lite_topic(bad), Err(ValidationError::LiteTopic { .. })),
                "{bad:?}"
            );
        }
        let mut m = Message::new("T", "x");
        m.set_lite_topic("bad$name");
        assert!(matches!(
            message(&m, 1 << 20, 0),
            Err(ValidationError::LiteTopic { .. })
        ));
    }
}
