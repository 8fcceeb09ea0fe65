//! Byte-for-byte checks against `data/java_vectors.txt` (output of the real Java classes; a copy of
//! shared/vectors) and `data/derived_vectors.txt`.

#![allow(clippy::unwrap_used)] // test helpers: a panic is the failure report

use bytes::{Bytes, BytesMut};
use rmq_protocol::batch::{decode_batch, encode_batch};
use rmq_protocol::header::{
    CommandHeader, EndTransactionRequestHeader, GetMaxOffsetRequestHeader,
    GetRouteInfoRequestHeader, SendMessageRequestHeader, SendMessageRequestHeaderV2,
    TransactionResolution, UnregisterClientRequestHeader,
};
use rmq_protocol::message::{decode_properties, sys_flag};
use rmq_protocol::{
    FrameDecoder, LanguageCode, Message, MqVersion, OffsetMessageId, RemotingCommand, RequestCode,
    SerializeType, StringMap,
};

const JAVA: &str = include_str!("data/java_vectors.txt");
const DERIVED: &str = include_str!("data/derived_vectors.txt");

/// The hex after `prefix ... : ` on the line starting with `prefix`.
fn hex_of(text: &str, prefix: &str) -> Vec<u8> {
    let line = text
        .lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no vector line starting with {prefix:?}"));
    let hex = line.rsplit(": ").next().unwrap().trim();
    hex::decode(hex).unwrap()
}

/// The `{k=v, ...}` map printed by Java on the line starting with `prefix`. Values holding the properties
/// separators were printed raw, so they are compared separately.
fn java_map(text: &str, prefix: &str) -> Vec<(String, String)> {
    let line = text.lines().find(|l| l.starts_with(prefix)).unwrap();
    let inner = &line[line.find('{').unwrap() + 1..line.rfind('}').unwrap()];
    if inner.is_empty() {
        return Vec::new();
    }
    let mut v: Vec<(String, String)> = inner
        .split(", ")
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap();
            (k.to_owned(), v.to_owned())
        })
        .collect();
    v.sort();
    v
}

fn sorted(m: &StringMap) -> Vec<(String, String)> {
    let mut v: Vec<_> = m
        .iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    v.sort();
    v
}

fn java_cmd(code: RequestCode, opaque: i32, ty: SerializeType) -> RemotingCommand {
    let mut c = RemotingCommand::request(code)
        .with_opaque(opaque)
        .with_serialize_type(ty);
    c.language = LanguageCode::JAVA;
    c.version = MqVersion(479);
    c
}

fn roundtrip(frame: &[u8]) -> RemotingCommand {
    let mut buf = BytesMut::from(frame);
    let cmd = FrameDecoder::default().decode(&mut buf).unwrap().unwrap();
    assert!(buf.is_empty());
    cmd
}

#[test]
fn route_request_binary_frame() {
    let want = hex_of(JAVA, "V1 GET_ROUTEINFO_BY_TOPIC ROCKETMQ frame (49 bytes)");
    let header = GetRouteInfoRequestHeader {
        topic: "TopicTest".into(),
        accept_standard_json_only: None,
    };
    let mut cmd = java_cmd(
        RequestCode::GET_ROUTEINFO_BY_TOPIC,
        1,
        SerializeType::ROCKETMQ,
    );
    header.write_fields(&mut cmd.ext_fields);
    assert_eq!(hex::encode(cmd.to_bytes().unwrap()), hex::encode(&want));
    let back = roundtrip(&want);
    assert_eq!(back, cmd);
    assert_eq!(
        back.decode_header::<GetRouteInfoRequestHeader>().unwrap(),
        header
    );
}

fn v2_vector_header() -> SendMessageRequestHeader {
    SendMessageRequestHeader {
        producer_group: "PG".into(),
        topic: "TopicTest".into(),
        default_topic: "TBW102".into(),
        default_topic_queue_nums: 4,
        queue_id: 0,
        sys_flag: 0,
        born_timestamp: 1_700_000_000_000,
        flag: 0,
        properties: Some("WAIT\u{1}true\u{2}TAGS\u{1}TagA\u{2}".into()),
        reconsume_times: Some(0),
        unit_mode: false,
        batch: false,
        max_reconsume_times: None,
        broker_name: Some("broker-a".into()),
    }
}

#[test]
fn send_message_v2_binary_frame() {
    let want = hex_of(JAVA, "V2 SEND_MESSAGE_V2 ROCKETMQ frame (198 bytes)");
    let header = SendMessageRequestHeaderV2(v2_vector_header());
    let mut cmd =
        java_cmd(RequestCode::SEND_MESSAGE_V2, 2, SerializeType::ROCKETMQ).with_body(&b"Hello"[..]);
    header.write_fields(&mut cmd.ext_fields);
    assert_eq!(hex::encode(cmd.to_bytes().unwrap()), hex::encode(&want));
    let back = roundtrip(&want);
    assert_eq!(back.body, Bytes::from_static(b"Hello"));
    assert_eq!(
        back.decode_header::<SendMessageRequestHeaderV2>().unwrap(),
        header
    );
    // The key set Java's makeCustomHeaderToNet produces.
    let keys: Vec<_> = back.ext_fields.iter().map(|(k, _)| k).collect();
    assert_eq!(
        keys,
        [
            "a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "m", "n"
        ]
    );
}

#[test]
fn send_message_v1_key_set_and_conversion() {
    let mut ext = StringMap::new();
    v2_vector_header().write_fields(&mut ext);
    let mut got = sorted(&ext);
    let props = got.iter_mut().find(|(k, _)| k == "properties").unwrap();
    assert_eq!(props.1, "WAIT\u{1}true\u{2}TAGS\u{1}TagA\u{2}");
    props.1 = "WAITtrueTAGSTagA".into(); // Java printed the separators invisibly
    let want = java_map(JAVA, "V1 SEND_MESSAGE extFields");
    let want: Vec<_> = want
        .into_iter()
        .map(|(k, v)| (k, v.replace(['\u{1}', '\u{2}'], "")))
        .collect();
    assert_eq!(got, want);
    let v1 = SendMessageRequestHeader::read_fields(&ext).unwrap();
    let v2: SendMessageRequestHeaderV2 = v1.clone().into();
    let mut ext2 = StringMap::new();
    v2.write_fields(&mut ext2);
    assert_eq!(
        SendMessageRequestHeader::from(SendMessageRequestHeaderV2::read_fields(&ext2).unwrap()),
        v1
    );
}

#[test]
fn heartbeat_binary_frame() {
    let want = hex_of(
        JAVA,
        "V3 HEART_BEAT no header no body ROCKETMQ frame (29 bytes)",
    );
    let cmd = java_cmd(RequestCode::HEART_BEAT, 3, SerializeType::ROCKETMQ);
    assert_eq!(hex::encode(cmd.to_bytes().unwrap()), hex::encode(&want));
    assert_eq!(roundtrip(&want), cmd);
}

#[test]
fn route_request_json_frame() {
    let line = DERIVED.lines().find(|l| l.starts_with("00000087")).unwrap();
    let want = hex::decode(line.trim()).unwrap();
    let mut cmd = java_cmd(RequestCode::GET_ROUTEINFO_BY_TOPIC, 1, SerializeType::JSON);
    cmd.ext_fields.insert("topic", "TopicTest");
    assert_eq!(hex::encode(cmd.to_bytes().unwrap()), hex::encode(&want));
    assert_eq!(want.len(), 139);
    assert_eq!(roundtrip(&want), cmd);
}

#[test]
fn other_header_key_sets() {
    let mut ext = StringMap::new();
    EndTransactionRequestHeader {
        topic: Some("TopicTest".into()),
        producer_group: "PG".into(),
        tran_state_table_offset: 5,
        commit_log_offset: 123_456,
        commit_or_rollback: TransactionResolution::Commit,
        from_transaction_check: false,
        msg_id: "C0A80001303912345678001122330001".into(),
        transaction_id: Some("C0A80001303912345678001122330001".into()),
        broker_name: Some("broker-a".into()),
    }
    .write_fields(&mut ext);
    assert_eq!(
        sorted(&ext),
        java_map(JAVA, "END_TRANSACTION (code 37) extFields")
    );
    assert_eq!(
        EndTransactionRequestHeader::read_fields(&ext)
            .unwrap()
            .commit_or_rollback
            .code(),
        8
    );

    let mut ext = StringMap::new();
    UnregisterClientRequestHeader {
        client_id: "192.168.0.1@12345#1".into(),
        producer_group: Some("PG".into()),
        consumer_group: None,
    }
    .write_fields(&mut ext);
    assert_eq!(
        sorted(&ext),
        java_map(JAVA, "UNREGISTER_CLIENT (code 35) extFields")
    );

    let mut ext = StringMap::new();
    GetMaxOffsetRequestHeader {
        topic: "TopicTest".into(),
        queue_id: 1,
        committed: true,
        broker_name: Some("broker-a".into()),
    }
    .write_fields(&mut ext);
    assert_eq!(
        sorted(&ext),
        java_map(JAVA, "GET_MAX_OFFSET (code 30) extFields")
    );

    assert!(java_map(JAVA, "HEART_BEAT (code 34) extFields").is_empty());
}

#[test]
fn batch_body() {
    let want = hex_of(JAVA, "MessageBatch.encode([m1,m2]) (158 bytes)");
    let msg = |body: &str, uniq: &str| {
        let mut m = Message::new("TopicTest", body.to_owned());
        m.properties.insert("UNIQ_KEY", uniq);
        m.properties.insert("WAIT", "true");
        m
    };
    let msgs = [
        msg("Hello", "C0A80001303912345678001122330001"),
        msg("World", "C0A80001303912345678001122330002"),
    ];
    assert_eq!(
        hex::encode(encode_batch(&msgs).unwrap()),
        hex::encode(&want)
    );
    assert_eq!(decode_batch("TopicTest", &Bytes::from(want)).unwrap(), msgs);
    let props = hex_of(JAVA, "m1 properties string (hex)");
    assert_eq!(
        decode_properties(std::str::from_utf8(&props).unwrap()),
        msgs[0].properties
    );
}

#[test]
fn properties_of_a_java_message() {
    // Message("TopicTest","TagA","k1 k2","Hi") -> KEYS=k1 k2;WAIT=true;TAGS=TagA;
    let line = JAVA
        .lines()
        .find(|l| l.starts_with("Message(topic,TagA"))
        .unwrap();
    let printed = line.split(" properties: ").nth(1).unwrap();
    assert_eq!(printed, "KEYS=k1 k2;WAIT=true;TAGS=TagA;");
    let mut m = Message::new("TopicTest", "Hi");
    m.set_keys(["k1", "k2"]);
    m.set_wait_store_ok(true);
    m.set_tags("TagA");
    let shown = m
        .encoded_properties()
        .replace('\u{1}', "=")
        .replace('\u{2}', ";");
    assert_eq!(shown, printed);
}

#[test]
fn offset_msg_id_and_flags() {
    let line = JAVA
        .lines()
        .find(|l| l.starts_with("offset msgId decode test"))
        .unwrap();
    let id = line.rsplit(": ").next().unwrap();
    let d = OffsetMessageId::decode(id).unwrap();
    assert_eq!(d.addr, "127.0.0.1:10911".parse().unwrap());
    assert_eq!(d.offset, 123_456);
    assert_eq!(d.encode(), id);
    assert!(JAVA.contains("COMPRESSED|ZLIB = 769"));
    assert_eq!(sys_flag::COMPRESSED | sys_flag::COMPRESSION_ZLIB, 769);
    assert!(JAVA.contains("TRANSACTION_NOT_TYPE=0 PREPARED=4 COMMIT=8 ROLLBACK=12"));
    assert_eq!(
        (
            sys_flag::TRANSACTION_NOT_TYPE,
            sys_flag::TRANSACTION_PREPARED_TYPE,
            sys_flag::TRANSACTION_COMMIT_TYPE,
            sys_flag::TRANSACTION_ROLLBACK_TYPE
        ),
        (0, 4, 8, 12)
    );
}

#[test]
fn flags_of_responses_and_oneway() {
    assert!(JAVA.contains("response flag=1"));
    assert!(JAVA.contains("oneway request flag=2"));
    let mut c = RemotingCommand::request(RequestCode::END_TRANSACTION);
    c.mark_oneway();
    assert_eq!(c.flag, 2);
    c = RemotingCommand::response_to(&c, rmq_protocol::ResponseCode::SUCCESS, None);
    assert_eq!(c.flag, 1);
}

/// The text after the last `=` or `: ` of the line starting with `prefix`.
fn value_of(text: &str, prefix: &str) -> String {
    let line = text
        .lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no vector line starting with {prefix:?}"));
    let after = line.rsplit("Signature=").next().unwrap();
    after.rsplit(": ").next().unwrap().trim().to_owned()
}

#[test]
fn acl_signatures_match_aclsigner() {
    use rmq_protocol::acl::{Credentials, sign, signature};
    let mut m = StringMap::new();
    m.insert("content", "RocketMQ");
    assert_eq!(
        signature(&m, b"", "12345678"),
        value_of(JAVA, "AclSignerTest vector")
    );
    let creds = Credentials::new("ak", "sk").unwrap();
    let route = |body: &'static [u8]| {
        let mut r = RemotingCommand::request(RequestCode::GET_ROUTEINFO_BY_TOPIC)
            .with_body(Bytes::from_static(body));
        r.ext_fields.insert("topic", "TopicTest");
        sign(&mut r, &creds);
        r.ext_fields.get("Signature").unwrap().to_owned()
    };
    assert_eq!(
        route(b""),
        value_of(JAVA, "ACL content string for route request")
    );
    assert_eq!(route(b"Hello"), value_of(JAVA, "ACL same fields + body"));
}
