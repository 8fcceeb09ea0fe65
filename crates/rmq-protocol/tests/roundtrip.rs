//! Property tests: every codec round-trips, and decoders never panic or over-allocate on arbitrary bytes.

#![allow(clippy::unwrap_used)] // test helpers: a panic is the failure report

use std::net::{IpAddr, SocketAddr};

use bytes::{BufMut, Bytes, BytesMut};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use rmq_protocol::batch::{decode_batch, encode_batch};
use rmq_protocol::compress::{CompressionType, compress, decompress};
use rmq_protocol::header::{
    CheckTransactionStateRequestHeader, CommandHeader, EndTransactionRequestHeader,
    GetMaxOffsetRequestHeader, GetRouteInfoRequestHeader, HeartbeatData, SendMessageRequestHeader,
    SendMessageRequestHeaderV2, SendMessageResponseHeader, TransactionResolution,
    UnregisterClientRequestHeader,
};
use rmq_protocol::id::UniqIdParts;
use rmq_protocol::message::{decode_properties, encode_properties};
use rmq_protocol::route::{BrokerData, QueueData, quote_integer_keys};
use rmq_protocol::store::{MessageExt, decode_store_message, encode_store_message};
use rmq_protocol::{
    FrameDecoder, LanguageCode, Message, MqVersion, OffsetMessageId, RemotingCommand,
    SerializeType, StringMap, TopicRouteData, UniqIdGenerator,
};

/// Text without the property separators: anything a valid property may hold.
fn text() -> impl Strategy<Value = String> {
    "[^\u{1}\u{2}]{0,12}"
}

fn nonempty_text() -> impl Strategy<Value = String> {
    "[^\u{1}\u{2}]{1,12}"
}

fn string_map(nonempty: bool) -> impl Strategy<Value = StringMap> {
    let v = if nonempty {
        nonempty_text().boxed()
    } else {
        text().boxed()
    };
    proptest::collection::vec((nonempty_text(), v), 0..8).prop_map(|kv| kv.into_iter().collect())
}

fn known_language() -> impl Strategy<Value = LanguageCode> {
    (0u8..=13).prop_map(LanguageCode)
}

prop_compose! {
    fn command(binary: bool)(
        code in if binary { (i16::MIN as i32..=i16::MAX as i32).boxed() } else { any::<i32>().boxed() },
        language in if binary { any::<u8>().prop_map(LanguageCode).boxed() } else { known_language().boxed() },
        version in if binary { (i16::MIN as i32..=i16::MAX as i32).boxed() } else { any::<i32>().boxed() },
        opaque in any::<i32>(),
        flag in any::<i32>(),
        // The binary header reads an empty remark as null.
        remark in proptest::option::of(if binary { "\\PC{1,20}".boxed() } else { "\\PC{0,20}".boxed() }),
        ext in string_map(binary),
        body in proptest::collection::vec(any::<u8>(), 0..64),
    ) -> RemotingCommand {
        RemotingCommand {
            code,
            language,
            version: MqVersion(version),
            opaque,
            flag,
            remark,
            ext_fields: ext,
            body: Bytes::from(body),
            serialize_type: if binary { SerializeType::ROCKETMQ } else { SerializeType::JSON },
        }
    }
}

fn decode_one(frame: &[u8]) -> RemotingCommand {
    let mut buf = BytesMut::from(frame);
    let cmd = FrameDecoder::default().decode(&mut buf).unwrap().unwrap();
    assert!(buf.is_empty());
    cmd
}

fn header_roundtrip<H: CommandHeader + PartialEq + std::fmt::Debug>(h: &H) {
    let mut ext = StringMap::new();
    h.write_fields(&mut ext);
    assert_eq!(&H::read_fields(&ext).unwrap(), h);
}

fn opt_text() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(nonempty_text())
}

prop_compose! {
    fn send_header()(
        strings in (nonempty_text(), nonempty_text(), nonempty_text(), opt_text(), opt_text()),
        ints in (any::<i32>(), any::<i32>(), any::<i32>(), any::<i64>(), any::<i32>()),
        opts in (proptest::option::of(any::<i32>()), proptest::option::of(any::<i32>())),
        bools in (any::<bool>(), any::<bool>()),
    ) -> SendMessageRequestHeader {
        SendMessageRequestHeader {
            producer_group: strings.0,
            topic: strings.1,
            default_topic: strings.2,
            properties: strings.3,
            broker_name: strings.4,
            default_topic_queue_nums: ints.0,
            queue_id: ints.1,
            sys_flag: ints.2,
            born_timestamp: ints.3,
            flag: ints.4,
            reconsume_times: opts.0,
            max_reconsume_times: opts.1,
            unit_mode: bools.0,
            batch: bools.1,
        }
    }
}

fn socket_addr() -> impl Strategy<Value = SocketAddr> {
    prop_oneof![
        (any::<[u8; 4]>(), any::<u16>()).prop_map(|(ip, p)| SocketAddr::new(IpAddr::from(ip), p)),
        (any::<[u8; 16]>(), any::<u16>()).prop_map(|(ip, p)| SocketAddr::new(IpAddr::from(ip), p)),
    ]
}

fn message(topic: String) -> impl Strategy<Value = Message> {
    (
        proptest::collection::vec(any::<u8>(), 0..200),
        any::<i32>(),
        string_map(true),
    )
        .prop_map(move |(body, flag, properties)| Message {
            topic: topic.clone(),
            body: Bytes::from(body),
            flag,
            properties,
        })
}

fn route() -> impl Strategy<Value = TopicRouteData> {
    let broker = (
        proptest::collection::btree_map(-2i64..5, "[0-9.:]{1,21}", 0..3),
        "\\PC{0,12}",
        "\\PC{0,12}",
        any::<bool>(),
        proptest::option::of("\\PC{0,8}"),
    )
        .prop_map(
            |(broker_addrs, broker_name, cluster, enable_acting_master, zone_name)| BrokerData {
                broker_addrs,
                broker_name,
                cluster,
                enable_acting_master,
                zone_name,
            },
        );
    let queue = ("\\PC{0,12}", 0i32..16, 0i32..64, any::<i32>(), 0i32..64).prop_map(
        |(broker_name, perm, read_queue_nums, topic_sys_flag, write_queue_nums)| QueueData {
            broker_name,
            perm,
            read_queue_nums,
            topic_sys_flag,
            write_queue_nums,
        },
    );
    (
        proptest::collection::vec(broker, 0..4),
        proptest::collection::vec(queue, 0..4),
        proptest::option::of("[a-z:;0-9-]{0,20}"),
    )
        .prop_map(
            |(broker_datas, queue_datas, order_topic_conf)| TopicRouteData {
                broker_datas,
                queue_datas,
                order_topic_conf,
                ..Default::default()
            },
        )
}

proptest! {
    // Integration tests have no lib.rs beside them, so name the regression file outright (the working
    // directory of `cargo test` is the crate root). Committed seeds replay first on every run.
    #![proptest_config(ProptestConfig {
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct("proptest-regressions/roundtrip.txt"))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn json_frames_round_trip(cmd in command(false)) {
        prop_assert_eq!(decode_one(&cmd.to_bytes().unwrap()), cmd);
    }

    #[test]
    fn binary_frames_round_trip(cmd in command(true)) {
        prop_assert_eq!(decode_one(&cmd.to_bytes().unwrap()), cmd);
    }

    #[test]
    fn frames_split_anywhere_decode_the_same(cmd in command(true), cut in 0usize..400) {
        let frame = cmd.to_bytes().unwrap();
        let cut = cut.min(frame.len());
        let dec = FrameDecoder::default();
        let mut buf = BytesMut::from(&frame[..cut]);
        let first = dec.decode(&mut buf).unwrap();
        if cut < frame.len() {
            prop_assert!(first.is_none());
            buf.put_slice(&frame[cut..]);
            prop_assert_eq!(dec.decode(&mut buf).unwrap().unwrap(), cmd);
        } else {
            prop_assert_eq!(first.unwrap(), cmd);
        }
    }

    #[test]
    fn properties_round_trip(props in string_map(true)) {
        let mut s = String::new();
        encode_properties(&props, &mut s);
        prop_assert_eq!(decode_properties(&s), props);
    }

    #[test]
    fn send_headers_round_trip(h in send_header()) {
        header_roundtrip(&h);
        header_roundtrip(&SendMessageRequestHeaderV2(h));
    }

    #[test]
    fn other_headers_round_trip(
        s in (nonempty_text(), nonempty_text(), opt_text(), opt_text(), opt_text(), opt_text()),
        n in (any::<i32>(), any::<i64>(), any::<i64>(), any::<bool>(), proptest::option::of(any::<bool>())),
        res in prop_oneof![Just(TransactionResolution::Unknown), Just(TransactionResolution::Commit), Just(TransactionResolution::Rollback)],
    ) {
        header_roundtrip(&GetRouteInfoRequestHeader { topic: s.0.clone(), accept_standard_json_only: n.4 });
        header_roundtrip(&SendMessageResponseHeader {
            msg_id: s.0.as_str().into(), queue_id: n.0, queue_offset: n.1, transaction_id: s.2.as_deref().map(Into::into),
            batch_uniq_id: s.3.clone(), recall_handle: s.4.clone(), region: s.5.clone(), trace_on: n.4,
        });
        header_roundtrip(&UnregisterClientRequestHeader { client_id: s.0.clone(), producer_group: s.2.clone(), consumer_group: s.3.clone() });
        header_roundtrip(&EndTransactionRequestHeader {
            topic: s.2.clone(), producer_group: s.0.clone(), tran_state_table_offset: n.1, commit_log_offset: n.2,
            commit_or_rollback: res, from_transaction_check: n.3, msg_id: s.1.clone(),
            transaction_id: s.3.clone(), broker_name: s.4.clone(),
        });
        header_roundtrip(&CheckTransactionStateRequestHeader {
            topic: s.2.clone(), tran_state_table_offset: n.1, commit_log_offset: n.2, msg_id: s.3.clone(),
            transaction_id: s.4.clone(), offset_msg_id: s.5.clone(), broker_name: Some(s.1.clone()),
        });
        header_roundtrip(&GetMaxOffsetRequestHeader { topic: s.0.clone(), queue_id: n.0, committed: n.3, broker_name: s.2.clone() });
    }

    #[test]
    fn heartbeat_round_trips(id in "\\PC{0,20}", groups in proptest::collection::vec("\\PC{0,20}", 0..4)) {
        let h = HeartbeatData::producer(id, groups);
        prop_assert_eq!(HeartbeatData::decode(&h.encode()).unwrap(), h);
    }

    #[test]
    fn routes_round_trip_in_both_dialects(r in route()) {
        let std_json = r.encode();
        prop_assert_eq!(&TopicRouteData::decode(&std_json).unwrap(), &r);
        // fastjson's dialect: the same document with the brokerAddrs keys unquoted.
        let text = String::from_utf8(std_json).unwrap();
        let mut unquoted = String::new();
        let mut rest = text.as_str();
        while let Some(i) = rest.find("\"brokerAddrs\":{") {
            let (head, tail) = rest.split_at(i + "\"brokerAddrs\":{".len());
            unquoted.push_str(head);
            let end = tail.find('}').unwrap();
            let inner = &tail[..end];
            let re: Vec<String> = if inner.is_empty() { vec![] } else {
                inner.split(',').map(|kv| {
                    let (k, v) = kv.split_once(':').unwrap();
                    format!("{}:{}", k.trim_matches('"'), v)
                }).collect()
            };
            unquoted.push_str(&re.join(","));
            rest = &tail[end..];
        }
        unquoted.push_str(rest);
        prop_assert_eq!(TopicRouteData::decode(unquoted.as_bytes()).unwrap(), r);
    }

    #[test]
    fn quoting_keeps_valid_json_unchanged(v in proptest::collection::vec(("\\PC{0,6}", any::<i64>()), 0..5)) {
        let obj: serde_json::Map<String, serde_json::Value> =
            v.into_iter().map(|(k, n)| (k, serde_json::Value::from(n))).collect();
        let text = serde_json::to_vec(&serde_json::Value::Object(obj)).unwrap();
        prop_assert_eq!(quote_integer_keys(&text), text);
    }

    #[test]
    fn batches_round_trip(topic in "[a-zA-Z0-9_-]{1,20}", n in 1usize..5, seed in any::<u64>()) {
        let msgs: Vec<Message> = (0..n).map(|i| {
            let mut m = Message::new(topic.clone(), format!("body-{seed}-{i}"));
            m.flag = i as i32;
            m.properties.insert("UNIQ_KEY", &format!("{seed:016X}{i:016X}"));
            m
        }).collect();
        let body = encode_batch(&msgs).unwrap();
        prop_assert_eq!(decode_batch(&topic, &body).unwrap(), msgs);
    }

    #[test]
    fn arbitrary_batch_messages_round_trip(msgs in proptest::collection::vec(message("T".into()), 0..4)) {
        let body = encode_batch(&msgs).unwrap();
        prop_assert_eq!(decode_batch("T", &body).unwrap(), msgs);
    }

    #[test]
    fn store_messages_round_trip(
        m in message("t".into()),
        topic in "[a-z]{1,300}",
        nums in (any::<i32>(), any::<i64>(), any::<i64>(), any::<i64>(), any::<i64>(), any::<i32>(), any::<i64>(), any::<i32>()),
        sys in any::<i32>(),
        hosts in (socket_addr(), socket_addr()),
    ) {
        let ext = MessageExt {
            topic, body: m.body, flag: m.flag, properties: m.properties,
            queue_id: nums.0, queue_offset: nums.1, commit_log_offset: nums.2, sys_flag: sys & !0x30
                | if hosts.0.is_ipv6() { 0x10 } else { 0 } | if hosts.1.is_ipv6() { 0x20 } else { 0 },
            born_timestamp: nums.3, born_host: hosts.0, store_timestamp: nums.4, store_host: hosts.1,
            reconsume_times: nums.5, prepared_transaction_offset: nums.6, body_crc: nums.7,
        };
        let b = encode_store_message(&ext).unwrap();
        prop_assert_eq!(decode_store_message(&b).unwrap(), ext);
    }

    #[test]
    fn offset_ids_round_trip(addr in socket_addr(), offset in any::<i64>()) {
        let id = OffsetMessageId { addr, offset };
        prop_assert_eq!(OffsetMessageId::decode(&id.encode()).unwrap(), id);
        prop_assert_eq!(OffsetMessageId::decode(&id.encode().to_lowercase()).unwrap(), id);
    }

    #[test]
    fn uniq_ids_carry_their_parts(ip in any::<[u8; 4]>(), pid in any::<u32>(), hash in any::<u32>(), now in 0i64..4_000_000_000_000) {
        let g = UniqIdGenerator::new(IpAddr::from(ip), pid, hash);
        let p = UniqIdParts::parse(&g.next_id(now)).unwrap();
        prop_assert_eq!(p.ip, IpAddr::from(ip));
        prop_assert_eq!(p.pid, pid as u16);
        prop_assert_eq!(p.instance_hash, hash);
        // Like Java, the 32-bit field wraps after about 24.8 days into the month.
        prop_assert!(i64::from(p.time_diff as u32) < 31 * 86_400_000);
        prop_assert_eq!(p.counter, 0);
    }

    #[test]
    fn zlib_round_trips(body in proptest::collection::vec(any::<u8>(), 0..3000), level in 0u32..10) {
        let (z, bits) = compress(&body, CompressionType::Zlib, level).unwrap();
        prop_assert_eq!(decompress(&z, bits, body.len()).unwrap(), body);
    }

    // --- hostile input: never a panic, never an allocation beyond the limit ---

    #[test]
    fn frame_decoder_survives_garbage(data in proptest::collection::vec(any::<u8>(), 0..600), limit in 0usize..2048) {
        let dec = FrameDecoder::new(limit);
        let mut buf = BytesMut::with_capacity(data.len());
        buf.put_slice(&data);
        let cap = buf.capacity();
        while let Ok(Some(_)) = dec.decode(&mut buf) {}
        prop_assert!(buf.capacity() <= cap.max(limit + 4), "capacity {} > limit {}", buf.capacity(), limit);
    }

    #[test]
    fn frame_decoder_survives_mutated_frames(cmd in command(true), json in any::<bool>(), flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6)) {
        let cmd = if json { cmd.with_serialize_type(SerializeType::JSON) } else { cmd };
        let mut frame = cmd.to_bytes().unwrap().to_vec();
        for (i, b) in flips {
            let n = frame.len();
            frame[i % n] = b;
        }
        let mut buf = BytesMut::from(&frame[..]);
        let _ = FrameDecoder::new(4096).decode(&mut buf);
    }

    #[test]
    fn other_decoders_survive_garbage(data in proptest::collection::vec(any::<u8>(), 0..300)) {
        let bytes = Bytes::from(data.clone());
        let _ = TopicRouteData::decode(&data);
        let _ = HeartbeatData::decode(&data);
        let _ = decode_batch("T", &bytes);
        let _ = decode_store_message(&bytes);
        let text = String::from_utf8_lossy(&data);
        let _ = decode_properties(&text);
        let _ = OffsetMessageId::decode(&text);
        let _ = UniqIdParts::parse(&text);
        for flag in [0x301, 0x101, 0x201, 0x1] {
            let r = decompress(&data, flag, 1024);
            if let Ok(out) = r { prop_assert!(out.len() <= 1024 || flag & 1 == 0); }
        }
    }
}

/// One operation on a [`StringMap`] in the model test.
#[derive(Clone, Debug)]
enum MapOp {
    Insert(String, String),
    InsertInt(String, i64),
    Remove(String),
    Clear,
}

fn map_op() -> impl Strategy<Value = MapOp> {
    // Few distinct keys, so replacements and removals hit existing entries often.
    let key = "[a-c]{1,2}|UNIQ_KEY|TAGS";
    prop_oneof![
        6 => (key, "\\PC{0,8}").prop_map(|(k, v)| MapOp::Insert(k, v)),
        2 => (key, any::<i64>()).prop_map(|(k, v)| MapOp::InsertInt(k, v)),
        3 => key.prop_map(MapOp::Remove),
        1 => Just(MapOp::Clear),
    ]
}

proptest! {
    /// StringMap behaves like a map with last-write-wins, whatever sequence of operations it sees.
    #[test]
    fn string_map_matches_a_btreemap(ops in proptest::collection::vec(map_op(), 0..200)) {
        let mut m = StringMap::new();
        let mut model = std::collections::BTreeMap::<String, String>::new();
        for op in ops {
            match op {
                MapOp::Insert(k, v) => { m.insert(&k, &v); model.insert(k, v); }
                MapOp::InsertInt(k, v) => { m.insert_int(&k, v); model.insert(k, v.to_string()); }
                MapOp::Remove(k) => prop_assert_eq!(m.remove(&k), model.remove(&k)),
                MapOp::Clear => { m.clear(); model.clear(); }
            }
            prop_assert_eq!(m.len(), model.len());
            for (k, v) in &model {
                prop_assert_eq!(m.get(k), Some(v.as_str()));
            }
        }
        let mut got: Vec<_> = m.iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
        got.sort();
        prop_assert_eq!(got, model.into_iter().collect::<Vec<_>>());
    }
}
