//! Message trace on real brokers (scripts/cluster sets traceTopicEnable): rmq's Pub records, read from
//! RMQ_SYS_TRACE_TOPIC and decoded by the Java client's own `TraceDataEncoder.decoderFromTraceDataString`
//! (the checker's `trace` mode), carry what the Java client would write for the same sends. Skipped on
//! rocketmq-rust, saying why.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::process::Stdio;
use std::time::{Duration, Instant};

use rmq_it::{Cluster, ServerImpl, now_ms, unique_topic};
use rmq_producer::{Producer, ProducerConfig};
use rmq_protocol::Message;

#[test]
fn pub_records_decode_with_the_java_decoder() {
    let Some(c) = Cluster::from_env("pub_records_decode_with_the_java_decoder") else {
        return;
    };
    if c.server == ServerImpl::Rust {
        eprintln!(
            "SKIPPED pub_records_decode_with_the_java_decoder: traceTopicEnable is set on the Apache brokers only"
        );
        return;
    }
    let group = format!("rmq_it_trace_{}", now_ms());
    let p = Producer::new(ProducerConfig {
        trace: true,
        ..ProducerConfig::new(group.clone(), c.namesrv.to_string())
    })
    .unwrap();
    p.start().unwrap();
    let topic = unique_topic("rmq_traced");
    let mut sent = Vec::new();
    for i in 0..3 {
        let mut m = Message::new(topic.clone(), vec![b'x'; 100 + i]);
        m.set_tags("TagT");
        m.set_keys([format!("k{i}"), "shared".into()]);
        let r = p.send_sync(&m).unwrap();
        sent.push((r, m));
    }
    // Shutdown sends what waits.
    p.shutdown();
    let stats = p.get_stats();
    assert_eq!(
        (stats.traces_sent, stats.traces_dropped),
        (3, 0),
        "{stats:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let records = loop {
        let out = c
            .checker_command(&["trace", "--topic", "RMQ_SYS_TRACE_TOPIC"])
            .stderr(Stdio::null())
            .output()
            .unwrap();
        let records: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.starts_with('{'))
            .map(|l| serde_json::from_str(l).unwrap())
            .filter(|r: &serde_json::Value| r["group"] == group.as_str())
            .collect();
        if records.len() >= 3 || Instant::now() > deadline {
            break records;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(records.len(), 3, "{records:?}");
    for (r, m) in &sent {
        let t = records
            .iter()
            .find(|t| t["msgId"] == r.msg_id.as_str())
            .unwrap_or_else(|| panic!("no trace of {}: {records:?}", r.msg_id));
        assert_eq!(t["type"], "Pub");
        assert_eq!(t["topic"], topic.as_str());
        assert_eq!(t["tags"], "TagT");
        assert_eq!(t["keys"], m.property("KEYS").unwrap());
        assert_eq!(t["offsetMsgId"], r.offset_msg_id.as_str());
        assert_eq!(t["bodyLength"], m.body.len());
        assert_eq!(t["success"], true);
        assert_eq!(t["msgType"], "Normal_Msg");
        assert_eq!(t["region"], r.region_id.as_str());
        assert!(
            t["storeHost"]
                .as_str()
                .unwrap()
                .ends_with(&format!(":{}", port_of(r))),
            "{t}"
        );
        let keys = t["traceMessageKeys"].as_str().unwrap();
        assert!(keys.split(' ').any(|k| k == r.msg_id.as_str()), "{keys}");
    }
    println!(
        "trace on {}: 3 Pub records decoded by the Java TraceDataEncoder",
        c.version
    );
}

/// The store port named by a result's offset msgId.
fn port_of(r: &rmq_producer::SendResult) -> u16 {
    rmq_protocol::OffsetMessageId::decode(&r.offset_msg_id)
        .unwrap()
        .addr
        .port()
}
