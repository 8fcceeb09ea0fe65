//! Hot paths of rmq-protocol: encoding a SEND_MESSAGE_V2 request with a 1 KiB body (JSON and binary
//! headers), decoding a send response, parsing a 3-broker route, and zlib at Java's default level on the
//! 16 KiB body `scripts/bench-compare` sends (one repeated letter).
//!
//! `cargo bench -p rmq-benches --bench protocol`

use bytes::{Bytes, BytesMut};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rmq_protocol::header::{
    SendMessageRequestHeader, SendMessageRequestHeaderV2, SendMessageResponseHeader,
};
use rmq_protocol::{
    FrameDecoder, Message, RemotingCommand, RequestCode, ResponseCode, SerializeType,
    TopicRouteData, UniqIdGenerator,
};
use std::hint::black_box;

fn message() -> Message {
    let mut m = Message::new("BenchmarkTopic", Bytes::from(vec![b'x'; 1024]));
    m.set_tags("TagA");
    m.set_keys(["order-42"]);
    m.set_wait_store_ok(true);
    m.properties
        .insert("UNIQ_KEY", "7F0000011F9A1B2C3D4E00A1B2C30001");
    m
}

/// Everything the producer does per send after routing: header from message, command, frame bytes.
fn build_and_encode_send(m: &Message, ty: SerializeType, out: &mut BytesMut) {
    send_command(m, ty).encode(out).expect("encodes");
}

fn send_command(m: &Message, ty: SerializeType) -> RemotingCommand {
    let header = SendMessageRequestHeaderV2(SendMessageRequestHeader {
        producer_group: "BenchmarkGroup".to_owned(),
        topic: m.topic.clone(),
        queue_id: 3,
        born_timestamp: 1_700_000_000_000,
        properties: Some(m.encoded_properties()),
        broker_name: Some("broker-a".to_owned()),
        ..Default::default()
    });
    RemotingCommand::with_header(RequestCode::SEND_MESSAGE_V2, &header)
        .with_opaque(12345)
        .with_serialize_type(ty)
        .with_body(m.body.clone())
}

/// The frame encoder alone (a prepared SEND_MESSAGE_V2 command, 13 ext fields, 1 KiB body, to bytes), then
/// everything a send does after routing (header built from the message, command, frame bytes).
fn bench_encode(c: &mut Criterion) {
    let m = message();
    const TYPES: [(&str, SerializeType); 2] = [
        ("json", SerializeType::JSON),
        ("binary", SerializeType::ROCKETMQ),
    ];
    let mut g = c.benchmark_group("encode_send_v2_1k");
    g.throughput(Throughput::Elements(1));
    for (name, ty) in TYPES {
        let cmd = send_command(&m, ty);
        let mut out = BytesMut::with_capacity(4096);
        g.bench_function(name, |b| {
            b.iter(|| {
                out.clear();
                black_box(&cmd).encode(&mut out).expect("encodes");
                black_box(out.len())
            })
        });
    }
    g.finish();
    let mut g = c.benchmark_group("build_and_encode_send_v2_1k");
    g.throughput(Throughput::Elements(1));
    for (name, ty) in TYPES {
        let mut out = BytesMut::with_capacity(4096);
        g.bench_function(name, |b| {
            b.iter(|| {
                out.clear();
                build_and_encode_send(black_box(&m), ty, &mut out);
                black_box(out.len())
            })
        });
    }
    g.finish();
}

fn send_response_frame(ty: SerializeType) -> Bytes {
    let h = SendMessageResponseHeader {
        msg_id: "7F00000100002A9F000000000001E240".into(),
        queue_id: 3,
        queue_offset: 123_456,
        transaction_id: Some("7F0000011F9A1B2C3D4E00A1B2C30001".into()),
        region: Some("DefaultRegion".into()),
        trace_on: Some(true),
        ..Default::default()
    };
    let mut cmd = RemotingCommand::response(ResponseCode::SUCCESS, None)
        .with_opaque(12345)
        .with_serialize_type(ty);
    rmq_protocol::header::CommandHeader::write_fields(&h, &mut cmd.ext_fields);
    cmd.to_bytes().expect("encodes")
}

fn bench_decode(c: &mut Criterion) {
    let mut g = c.benchmark_group("decode_send_response");
    let dec = FrameDecoder::default();
    for (name, ty) in [
        ("json", SerializeType::JSON),
        ("binary", SerializeType::ROCKETMQ),
    ] {
        let frame = send_response_frame(ty);
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut buf = BytesMut::from(&frame[..]);
                let cmd = dec.decode(&mut buf).expect("valid").expect("complete");
                let h: SendMessageResponseHeader = cmd.decode_header().expect("header");
                black_box(h.queue_offset)
            })
        });
    }
    g.finish();
}

fn route_json(quoted: bool) -> String {
    let mut brokers = Vec::new();
    let mut queues = Vec::new();
    for (i, name) in ["broker-a", "broker-b", "broker-c"].iter().enumerate() {
        let port = 10911 + 100 * i;
        let (k0, k1) = if quoted {
            ("\"0\"", "\"1\"")
        } else {
            ("0", "1")
        };
        brokers.push(format!(
            r#"{{"brokerAddrs":{{{k0}:"127.0.0.1:{port}",{k1}:"127.0.0.1:{}"}},"brokerName":"{name}","cluster":"DefaultCluster","enableActingMaster":false}}"#,
            port + 10
        ));
        queues.push(format!(
            r#"{{"brokerName":"{name}","perm":6,"readQueueNums":8,"topicSysFlag":0,"writeQueueNums":8}}"#
        ));
    }
    format!(
        r#"{{"brokerDatas":[{}],"filterServerTable":{{}},"queueDatas":[{}]}}"#,
        brokers.join(","),
        queues.join(",")
    )
}

fn bench_route(c: &mut Criterion) {
    let mut g = c.benchmark_group("parse_route_3_brokers");
    for (name, quoted) in [("standard", true), ("fastjson_unquoted", false)] {
        let text = route_json(quoted);
        g.bench_function(name, |b| {
            b.iter(|| {
                black_box(TopicRouteData::decode(black_box(text.as_bytes())).expect("parses"))
            })
        });
    }
    g.finish();
}

fn bench_ids(c: &mut Criterion) {
    let g = UniqIdGenerator::new("127.0.0.1".parse().expect("ip"), 4242, 0xDEAD_BEEF);
    c.bench_function("uniq_id", |b| {
        b.iter(|| black_box(g.next_id(black_box(1_700_000_000_000))))
    });
}

fn bench_compress(c: &mut Criterion) {
    use rmq_protocol::compress::{CompressionType, DEFAULT_COMPRESS_LEVEL, compress};
    let body = vec![b'a'; 16 * 1024];
    let mut g = c.benchmark_group("compress");
    g.throughput(Throughput::Bytes(body.len() as u64));
    g.bench_function("zlib_level5_16KiB_one_letter", |b| {
        b.iter(|| {
            black_box(compress(
                black_box(&body),
                CompressionType::Zlib,
                DEFAULT_COMPRESS_LEVEL,
            ))
        })
    });
    g.finish();
}

#[allow(missing_docs)]
mod groups {
    use super::*;
    criterion_group!(
        benches,
        bench_encode,
        bench_decode,
        bench_route,
        bench_ids,
        bench_compress
    );
}
criterion_main!(groups::benches);
