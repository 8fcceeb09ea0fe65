//! Every send runs in an `rmq.send` tracing span (debug level) that names its topic and records, per
//! attempt, the broker, queue and attempt number, and at the end the outcome. One test in this file: the
//! capturing subscriber is global.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use rmq_protocol::{Message, ResponseCode};
use rmq_testkit::{Action, error, send_ok};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

mod common;
use common::{broker, namesrv, producer, route};

/// Writes each span's name and fields, and every later record, into one string.
struct Capture(Arc<Mutex<String>>);

struct Text<'a>(&'a mut String);

impl Visit for Text<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let _ = write!(self.0, " {}={:?}", field.name(), value);
    }
}

impl Subscriber for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let mut s = self.0.lock().unwrap();
        let _ = write!(s, "\nspan {}", span.metadata().name());
        span.record(&mut Text(&mut s));
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, values: &Record<'_>) {
        values.record(&mut Text(&mut self.0.lock().unwrap()));
    }
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, _: &Event<'_>) {}
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

#[test]
fn a_send_span_names_topic_broker_queue_attempt_and_outcome() {
    let text = Arc::new(Mutex::new(String::new()));
    tracing::subscriber::set_global_default(Capture(text.clone())).unwrap();
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
