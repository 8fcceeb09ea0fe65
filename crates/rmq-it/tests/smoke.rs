//! Raw smoke tests of the harness against the real servers, with nothing but `rmq-protocol` and std TCP:
//! route queries in both JSON dialects, SEND_MESSAGE_V2 with JSON and binary headers (one body compressed),
//! and a byte-for-byte read-back through the official Java client.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::net::SocketAddr;
use std::time::Duration;

use rmq_it::{Cluster, Conn, ServerImpl, now_ms, sha256_hex, unique_topic};
use rmq_protocol::compress::{CompressionType, DEFAULT_COMPRESS_LEVEL, compress};
use rmq_protocol::header::{
    GetRouteInfoRequestHeader, SendMessageRequestHeader, SendMessageRequestHeaderV2,
    SendMessageResponseHeader,
};
use rmq_protocol::{
    AUTO_CREATE_TOPIC, Message, MqVersion, OffsetMessageId, RemotingCommand, RequestCode,
    ResponseCode, SerializeType, TopicRouteData, UniqIdGenerator,
};

fn route(conn: &mut Conn, topic: &str, legacy: bool, opaque: i32) -> RemotingCommand {
    let header = GetRouteInfoRequestHeader {
        topic: topic.into(),
        accept_standard_json_only: (!legacy).then_some(true),
    };
    let mut req = RemotingCommand::with_header(RequestCode::GET_ROUTEINFO_BY_TOPIC, &header)
        .with_opaque(opaque);
    if legacy {
        req.version = MqVersion::V4_9_3;
    }
    conn.call(&req).unwrap()
}

#[test]
fn tbw102_route_in_both_dialects() {
    let Some(c) = Cluster::from_env("tbw102_route_in_both_dialects") else {
        return;
    };
    let mut conn = Conn::connect(c.namesrv).unwrap();
    let resp = route(&mut conn, AUTO_CREATE_TOPIC, false, 1);
    assert_eq!(
        resp.response_code(),
        ResponseCode::SUCCESS,
        "{:?}",
        resp.remark
    );
    let standard = TopicRouteData::decode(&resp.body).unwrap();
    assert_eq!(standard.broker_datas.len(), c.brokers, "{standard:?}");
    for b in &standard.broker_datas {
        let master: SocketAddr = b.master_addr().unwrap().parse().unwrap();
        assert!(
            master.ip().is_loopback(),
            "broker advertises {master}; brokerIP1 must be 127.0.0.1"
        );
    }

    let legacy = route(&mut conn, AUTO_CREATE_TOPIC, true, 2);
    assert_eq!(legacy.response_code(), ResponseCode::SUCCESS);
    let text = String::from_utf8_lossy(&legacy.body);
    if c.server == ServerImpl::Java {
        // The Java name server answers a pre-4.9.4 request in fastjson's dialect: unquoted integer keys,
        // which is not JSON. This is the real-server check of that parser path.
        assert!(
            text.contains("\"brokerAddrs\":{0:"),
            "expected unquoted keys, got {text}"
        );
        assert!(serde_json::from_slice::<serde_json::Value>(&legacy.body).is_err());
    }
    let parsed = TopicRouteData::decode(&legacy.body).unwrap();
    let sorted = |mut r: TopicRouteData| {
        r.broker_datas
            .sort_by(|a, b| a.broker_name.cmp(&b.broker_name));
        r.queue_datas
            .sort_by(|a, b| a.broker_name.cmp(&b.broker_name));
        r
    };
    assert_eq!(sorted(parsed), sorted(standard));
}

#[test]
fn unknown_topic_is_topic_not_exist() {
    let Some(c) = Cluster::from_env("unknown_topic_is_topic_not_exist") else {
        return;
    };
    let mut conn = Conn::connect(c.namesrv).unwrap();
    let resp = route(&mut conn, &unique_topic("rmq_never_created"), false, 7);
    assert_eq!(
        resp.response_code(),
        ResponseCode::TOPIC_NOT_EXIST,
        "{:?}",
        resp.remark
    );
}

struct Sent {
    msg: Message,
    uniq: String,
    resp: SendMessageResponseHeader,
}

/// Sends `msg` to queue 0 of the first broker of the TBW102 route (the broker creates the topic).
fn send(c: &Cluster, msg: &Message, ty: SerializeType, ids: &UniqIdGenerator, opaque: i32) -> Sent {
    let mut conn = Conn::connect(c.namesrv).unwrap();
    let r = route(&mut conn, AUTO_CREATE_TOPIC, false, opaque);
    let tbw = TopicRouteData::decode(&r.body).unwrap();
    let broker = &tbw.broker_datas[0];
    let addr: SocketAddr = broker.master_addr().unwrap().parse().unwrap();

    let mut msg = msg.clone();
    let uniq = ids.next_id(now_ms());
    msg.properties.insert("UNIQ_KEY", &uniq);
    let (body, sys_flag) = if msg.body.len() >= 4096 {
        let (z, bits) = compress(&msg.body, CompressionType::Zlib, DEFAULT_COMPRESS_LEVEL).unwrap();
        (bytes::Bytes::from(z), bits)
    } else {
        (msg.body.clone(), 0)
    };
    let header = SendMessageRequestHeaderV2(SendMessageRequestHeader {
        producer_group: "rmq_smoke_producer".into(),
        topic: msg.topic.clone(),
        queue_id: 0,
        sys_flag,
        born_timestamp: now_ms(),
        flag: msg.flag,
        properties: Some(msg.encoded_properties()),
        broker_name: Some(broker.broker_name.clone()),
        ..Default::default()
    });
    let req = RemotingCommand::with_header(RequestCode::SEND_MESSAGE_V2, &header)
        .with_opaque(opaque + 1)
        .with_serialize_type(ty)
        .with_body(body);
    let mut bconn = Conn::connect(addr).unwrap();
    let resp = bconn.call(&req).unwrap();
    assert_eq!(
        resp.response_code(),
        ResponseCode::SUCCESS,
        "send with {ty} header: {:?}",
        resp.remark
    );
    let resp: SendMessageResponseHeader = resp.decode_header().unwrap();
    let id = OffsetMessageId::decode(&resp.msg_id).unwrap();
    assert_eq!(id.addr, addr, "offset msgId names the storing broker");
    Sent {
        msg,
        uniq: uniq.into(),
        resp,
    }
}

#[test]
fn send_v2_and_read_back_with_the_java_client() {
    let Some(c) = Cluster::from_env("send_v2_and_read_back_with_the_java_client") else {
        return;
    };
    let ids = UniqIdGenerator::new("127.0.0.1".parse().unwrap(), std::process::id(), 0x5EED);
    let topic = unique_topic("rmq_smoke");

    let mut small = Message::new(topic.clone(), format!("hello from rmq at {}", now_ms()));
    small.set_tags("TagA");
    small.set_keys(["order-1", "user-7"]);
    small.set_wait_store_ok(true);
    small.flag = 42;
    small.put_user_property("rmq_smoke", "yes").unwrap();
    small
        .put_user_property("unicode", "h\u{e9}llo \u{2713}")
        .unwrap();

    let big_body: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let mut big = Message::new(topic.clone(), big_body);
    big.set_tags("TagZ");

    let sent = [
        send(&c, &small, SerializeType::JSON, &ids, 10),
        send(&c, &small, SerializeType::ROCKETMQ, &ids, 20),
        send(&c, &big, SerializeType::JSON, &ids, 30),
    ];
    let got = c
        .read_back(&topic, Duration::from_secs(30), |msgs| {
            sent.iter()
                .all(|s| msgs.iter().any(|m| m["uniqKey"] == s.uniq.as_str()))
        })
        .unwrap();
    assert_eq!(
        got.len(),
        sent.len(),
        "exactly what we sent is in the topic: {got:?}"
    );

    for s in &sent {
        let m = got
            .iter()
            .find(|m| m["uniqKey"] == s.uniq.as_str())
            .unwrap();
        // Body byte for byte (the Java consumer undoes our zlib compression).
        let sha = m["bodySha256"].as_str().unwrap();
        assert_eq!(m["bodyLength"].as_u64().unwrap() as usize, s.msg.body.len());
        assert_eq!(sha, sha256_hex(&s.msg.body), "body of {}", s.uniq);
        // Every property we sent, with the same value; the broker may add its own. Apache RocketMQ
        // 4.9.7 stores messages without WAIT (README, "Findings").
        for (k, v) in s.msg.properties.iter() {
            if k == "WAIT" && c.is_4x() {
                assert_eq!(m["properties"][k].as_str(), None, "4.9.7 drops WAIT");
                continue;
            }
            assert_eq!(
                m["properties"][k].as_str(),
                Some(v),
                "property {k} of {}",
                s.uniq
            );
        }
        assert_eq!(m["flag"].as_i64().unwrap(), i64::from(s.msg.flag));
        assert_eq!(m["queueOffset"].as_i64().unwrap(), s.resp.queue_offset);
        assert_eq!(m["offsetMsgId"].as_str().unwrap(), s.resp.msg_id);
        assert_eq!(m["tags"].as_str(), s.msg.tags());
        // The broker stored the sysFlag we sent; the Java consumer clears COMPRESSED (0x1) after inflating
        // the body but keeps the type bits, so 0x300 shows that our 0x301 arrived.
        let compressed = s.msg.body.len() >= 4096;
        let want = if compressed { 0x300 } else { 0 };
        assert_eq!(
            m["sysFlag"].as_i64().unwrap(),
            want,
            "sysFlag of {}",
            s.uniq
        );
    }
    let keys = got
        .iter()
        .find(|m| m["uniqKey"] == sent[0].uniq.as_str())
        .unwrap()["keys"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(keys, "order-1 user-7");
}
