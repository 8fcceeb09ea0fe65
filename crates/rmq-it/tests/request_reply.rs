//! Request-reply against a Java replier (the interop checker's `reply` mode: a push consumer answering with
//! `MessageUtil.createReplyMessage`, sent as the Java client sends replies): the reply body matches, the
//! round trip is measured, and a request nobody answers ends with the typed timeout. Skipped on
//! rocketmq-rust, saying why (its broker does not push replies to the requester in 1.0).

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use rmq_it::{Cluster, ServerImpl, unique_topic};
use rmq_producer::{Producer, ProducerConfig, ProducerError};
use rmq_protocol::Message;

#[test]
fn requests_are_answered_by_the_java_replier() {
    let Some(c) = Cluster::from_env("requests_are_answered_by_the_java_replier") else {
        return;
    };
    if c.server == ServerImpl::Rust {
        eprintln!(
            "SKIPPED requests_are_answered_by_the_java_replier: tested on the Apache RocketMQ brokers"
        );
        return;
    }
    let p = Producer::new(ProducerConfig::new(
        "rmq_it_requester",
        c.namesrv.to_string(),
    ))
    .unwrap();
    p.start().unwrap();
    let topic = unique_topic("rmq_request");
    // The topic must exist before the replier subscribes (created by a first send).
    p.send_sync(&Message::new(topic.clone(), "create")).unwrap();
    let mut replier = c
        .checker_command(&["reply", "--topic", &topic, "--seconds", "90"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(replier.stdout.take().unwrap()).lines();
    // Killed however the test ends (a replier left running would share nothing, but costs CPU).
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let replier = Kill(replier);
    // (The client's logging may print first.)
    assert!(
        lines.by_ref().map_while(Result::ok).any(|l| l == "ready"),
        "the replier did not start"
    );
    // What the replier answered, for the failure message.
    let answered = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let log = answered.clone();
    std::thread::spawn(move || {
        for l in lines.map_while(Result::ok) {
            log.lock().unwrap().push(l);
        }
    });
    let replied = || answered.lock().unwrap().join("\n");
    // Until the consumer has its queues, requests may go unanswered: retry the first one.
    let deadline = Instant::now() + Duration::from_secs(40);
    let first = loop {
        match p.request(
            &Message::new(topic.clone(), "ping-0"),
            Duration::from_secs(3),
        ) {
            Ok(r) => break r,
            Err(e @ ProducerError::RequestTimeout { .. }) if Instant::now() < deadline => {
                eprintln!("waiting for the replier: {e}");
            }
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(&first.body[..], b"reply:ping-0");
    assert_eq!(first.property("MSG_TYPE"), Some("reply"));
    let mut rtts = Vec::new();
    for i in 1..=10 {
        let t0 = Instant::now();
        let r = p
            .request(
                &Message::new(topic.clone(), format!("ping-{i}")),
                Duration::from_secs(5),
            )
            .unwrap_or_else(|e| panic!("{e}; the replier answered:\n{}", replied()));
        rtts.push(t0.elapsed());
        assert_eq!(r.body, format!("reply:ping-{i}").as_bytes());
    }
    // The future form, waited on.
    let f = p.request_async(
        &Message::new(topic.clone(), "ping-async"),
        Duration::from_secs(5),
    );
    assert_eq!(&f.wait().unwrap().body[..], b"reply:ping-async");
    rtts.sort();
    println!(
        "request-reply on {}: 10 round trips, median {:?} (min {:?}, max {:?})",
        c.version, rtts[5], rtts[0], rtts[9]
    );
    drop(replier);

    // A topic nobody answers: the typed timeout, on time.
    let silent = unique_topic("rmq_request_silent");
    let t0 = Instant::now();
    let e = p
        .request(
            &Message::new(silent, "anyone?"),
            Duration::from_millis(1500),
        )
        .unwrap_err();
    assert!(matches!(e, ProducerError::RequestTimeout { .. }), "{e}");
    assert!(e.is_timeout());
    assert!(
        t0.elapsed() < Duration::from_millis(3000),
        "{:?}",
        t0.elapsed()
    );
    let stats = p.get_stats();
    assert!(stats.replies >= 12, "{stats:?}");
    p.shutdown();
}
