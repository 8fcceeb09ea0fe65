//! The message types of RocketMQ 5.4 / 5.5 (issue 23) against real servers: priority messages (RIP-80) on a
//! PRIORITY topic, stored in the queue of their priority; lite topics (RIP-83) under a LITE parent topic,
//! read back by the official v5 Java client's LitePushConsumer through a proxy.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use rmq_it::{Cluster, sha256_hex, unique_topic};
use rmq_producer::{Producer, ProducerConfig, ProducerError};
use rmq_protocol::{Message, ValidationError};

fn producer(addr: String) -> Producer {
    let p = Producer::new(ProducerConfig::new("rmq_it_types", addr)).unwrap();
    p.start().unwrap();
    p
}

/// The cluster, when its servers are Apache RocketMQ `major.minor` or later.
fn at_least(test: &str, major: u32, minor: u32) -> Option<Cluster> {
    let c = Cluster::from_env(test)?;
    if !c.at_least(major, minor) {
        eprintln!(
            "SKIPPED {test}: needs Apache RocketMQ {major}.{minor}+ ({:?} {})",
            c.server, c.version
        );
        return None;
    }
    Some(c)
}

#[test]
fn priority_messages_are_stored_in_the_queue_of_their_priority() {
    let Some(c) = at_least(
        "priority_messages_are_stored_in_the_queue_of_their_priority",
        5,
        4,
    ) else {
        return;
    };
    let topic = unique_topic("rmq_priority");
    c.control(&["topic", &topic, "PRIORITY"]).unwrap(); // 4 queues on each broker
    let p = producer(c.namesrv.to_string());
    let mut sent = Vec::new();
    for (i, priority) in [0u32, 1, 2, 3, 7, 2, 0, 9].into_iter().enumerate() {
        let mut m = Message::new(topic.clone(), format!("priority {priority} #{i}"));
        m.set_priority(priority);
        let r = if i % 2 == 0 {
            p.send_sync(&m).unwrap()
        } else {
            p.send_async(&m).wait().unwrap()
        };
        // The broker puts it in queue min(priority, 3) whatever queue round robin chose; the result says
        // where it is.
        assert_eq!(r.queue_id, priority.min(3) as i32, "priority {priority}");
        sent.push((m, r));
    }
    // What brokers would drop is refused before anything is sent.
    let mut delayed = Message::new(topic.clone(), "x");
    delayed.set_priority(1);
    delayed.set_delay_level(2);
    assert!(matches!(
        p.send_sync(&delayed),
        Err(ProducerError::Validation(ValidationError::Conflict { .. }))
    ));
    let got = c
        .read_back(&topic, Duration::from_secs(30), |m| m.len() >= sent.len())
        .unwrap();
    for (m, r) in &sent {
        let g = got
            .iter()
            .find(|g| g["uniqKey"] == r.msg_id.as_str())
            .unwrap_or_else(|| panic!("{} not read back", r.msg_id));
        assert_eq!(g["bodySha256"].as_str().unwrap(), sha256_hex(&m.body));
        assert_eq!(g["queueId"].as_i64(), Some(i64::from(r.queue_id)));
        assert_eq!(g["broker"].as_str(), Some(&*r.broker_name), "{g}");
    }
    p.shutdown();
}

#[test]
fn priority_through_a_proxy_and_the_proxy_type_check() {
    let Some(c) = at_least("priority_through_a_proxy_and_the_proxy_type_check", 5, 4) else {
        return;
    };
    if c.proxies.is_empty() {
        eprintln!("SKIPPED: no proxy");
        return;
    }
    let topic = unique_topic("rmq_proxy_priority");
    c.control(&["topic", &topic, "PRIORITY"]).unwrap();
    let endpoints: Vec<String> = c.proxies.iter().map(|a| a.to_string()).collect();
    let p = producer(endpoints.join(";"));
    let mut m = Message::new(topic.clone(), "priority 2 through a proxy");
    m.set_priority(2);
    assert_eq!(p.send_sync(&m).unwrap().queue_id, 2);
    // A message without a priority is not a PRIORITY topic's type: the proxy refuses it, typed.
    match p.send_sync(&Message::new(topic.clone(), "plain")) {
        Err(ProducerError::MessageTypeMismatch {
            expected, actual, ..
        }) => assert_eq!((expected.as_str(), actual.as_str()), ("PRIORITY", "NORMAL")),
        other => panic!("{other:?}"),
    }
    p.shutdown();
}

#[test]
fn lite_topic_messages_reach_a_lite_consumer() {
    let Some(c) = at_least("lite_topic_messages_reach_a_lite_consumer", 5, 5) else {
        return;
    };
    let Some(proxy) = c.proxies.first() else {
        eprintln!("SKIPPED: the lite consumer reads through a proxy's gRPC port; no proxy");
        return;
    };
    let grpc = format!("{}:{}", proxy.ip(), proxy.port() + 1);
    let parent = unique_topic("rmq_lite");
    c.control(&["topic", &parent, "LITE"]).unwrap();
    let group = format!("{parent}_group");
    let lite = "orders-4711";
    let n = 12;
    let mut reader = c
        .cluster_command(&[
            "lite-read",
            &grpc,
            &parent,
            &group,
            lite,
            &n.to_string(),
            "90",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(reader.stdout.take().unwrap()).lines();
    // A lite subscription starts at the end of the lite topic: send once it is in place.
    loop {
        match lines.next() {
            Some(Ok(l)) if l.ends_with("ready") => break,
            Some(Ok(_)) => {}
            other => panic!("the lite consumer ended before it was ready: {other:?}"),
        }
    }
    // Straight to the brokers (not through the proxy): the producer picks the queue of the broker
    // that owns the lite topic, as the proxy would.
    let p = producer(c.namesrv.to_string());
    let mut bodies = Vec::new();
    for i in 0..n {
        let mut m = Message::new(parent.clone(), format!("lite message {i}"));
        m.set_lite_topic(lite);
        let r = if i % 2 == 0 {
            p.send_sync(&m).unwrap()
        } else {
            p.send_async(&m).wait().unwrap()
        };
        bodies.push((sha256_hex(&m.body), r));
    }
    // Every message of a lite topic goes to one queue.
    let places: std::collections::BTreeSet<_> = bodies
        .iter()
        .map(|(_, r)| (r.broker_name.to_string(), r.queue_id))
        .collect();
    assert_eq!(places.len(), 1, "{places:?}");
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(90);
    while got.len() < n && Instant::now() < deadline {
        match lines.next() {
            Some(Ok(l)) if l.starts_with('{') => {
                got.push(serde_json::from_str::<serde_json::Value>(&l).unwrap())
            }
            Some(Ok(_)) => {}
            _ => break,
        }
    }
    let _ = reader.kill();
    let _ = reader.wait();
    assert_eq!(got.len(), n, "{got:?}");
    for (sha, _) in &bodies {
        let g = got
            .iter()
            .find(|g| g["bodySha256"] == sha.as_str())
            .unwrap_or_else(|| panic!("{sha} not received: {got:?}"));
        assert_eq!(g["liteTopic"], lite);
        assert_eq!(g["topic"], parent.as_str());
    }
    // A bad lite topic name is refused before anything is sent.
    let mut bad = Message::new(parent.clone(), "x");
    bad.set_lite_topic("no$dollars");
    assert!(matches!(
        p.send_sync(&bad),
        Err(ProducerError::Validation(ValidationError::LiteTopic { .. }))
    ));
    p.shutdown();
}
