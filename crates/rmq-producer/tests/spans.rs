//! Every send runs in an `rmq.send` tracing span (debug level) that names its topic and records, per
//! attempt, the broker, queue and attempt number, and at the end the outcome. One test in this file: the
//! capturing subscriber is global.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use rmq_protocol::{Message, ResponseCode};
use rmq_testkit::{Action, error, send_ok};

mod common;
use common::{broker, namesrv, producer, route};

#[test]
fn a_send_span_names_topic_broker_queue_attempt_and_outcome() {
    let text = common::capture::install();
    let busy = broker(|_| vec![Action::Respond(error(ResponseCode::SYSTEM_BUSY, "busy"))]);
    let good = broker(|_| vec![Action::Respond(send_ok(1, 9))]);
    let ns = namesrv(route(&[
        ("broker-a", &busy.addr()),
        ("broker-b", &good.addr()),
    ]));
    let p = producer(&ns, |_| {});
    for _ in 0..2 {
        p.send_sync(&Message::new("SpanTopic", "x")).unwrap();
    }
    p.shutdown();
    let text = text.lock().unwrap().clone();
    let sends: Vec<&str> = text
        .split("\nspan ")
        .filter(|s| s.starts_with("rmq.send"))
        .collect();
    assert_eq!(sends.len(), 2, "{text}");
    for s in &sends {
        assert!(s.contains("topic=\"SpanTopic\""), "{s}");
        assert!(s.contains("broker=\"broker-b\""), "{s}");
        assert!(s.contains("queue="), "{s}");
        assert!(s.contains("outcome=\"ok\""), "{s}");
    }
    // One of the two went to the busy broker first: its span shows attempt 2.
    assert!(sends.iter().any(|s| s.contains("attempt=2")), "{text}");
}
