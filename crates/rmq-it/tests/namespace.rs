//! Namespaces on a real cluster: rmq in namespace `nsA` sends to topic T; the Java consumer in the same
//! namespace reads T, a consumer without one finds the messages stored under `nsA%T`, and the results
//! name T.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::time::Duration;

use rmq_it::{Cluster, unique_topic};
use rmq_producer::{Producer, ProducerConfig};
use rmq_protocol::Message;

#[test]
fn a_namespaced_producer_is_read_by_a_java_consumer_in_the_namespace() {
    let Some(c) =
        Cluster::from_env("a_namespaced_producer_is_read_by_a_java_consumer_in_the_namespace")
    else {
        return;
    };
    if c.acl.is_some() {
        eprintln!(
            "SKIPPED: runs on clusters without ACL (the ACL user may publish to one topic only)"
        );
        return;
    }
    let p = Producer::new(ProducerConfig {
        namespace: Some("nsA".into()),
        ..ProducerConfig::new("rmq_it_ns_producer", c.namesrv.to_string())
    })
    .unwrap();
    p.start().unwrap();
    let topic = unique_topic("rmq_ns");
    let mut keys = Vec::new();
    for i in 0..3 {
        let mut m = Message::new(topic.clone(), format!("in nsA {i}"));
        m.set_keys([format!("ns-{i}")]);
        let r = p.send_sync(&m).unwrap();
        assert_eq!(
            r.topic, topic,
            "results name the topic without the namespace"
        );
        keys.push(format!("ns-{i}"));
    }
    let r = p
        .send_async(&Message::new(topic.clone(), "async in nsA"))
        .wait()
        .unwrap();
    assert_eq!(r.topic, topic);
    let queues = p.fetch_publish_queues(&topic).unwrap();
    assert!(queues.iter().all(|q| q.topic == topic), "{queues:?}");
    let found = |msgs: &[serde_json::Value]| msgs.len() == 4;
    let in_ns = c
        .read_back_in(Some("nsA"), &topic, Duration::from_secs(30), found)
        .unwrap();
    let stored = format!("nsA%{topic}");
    let raw = c
        .read_back(&stored, Duration::from_secs(30), found)
        .unwrap();
    for m in in_ns.iter().chain(&raw) {
        assert_eq!(m["properties"]["INSTANCE_ID"], "nsA", "{m}");
    }
    println!(
        "namespace nsA: 4 messages read by the Java consumer in nsA (topic {:?}) and stored as {:?}",
        in_ns[0]["topic"], raw[0]["topic"]
    );
    assert_eq!(raw[0]["topic"], stored.as_str());
}
