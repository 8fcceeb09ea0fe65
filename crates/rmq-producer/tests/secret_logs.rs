//! The secret key never reaches the logs: every tracing event and span of every thread, at every level,
//! is captured as text while a producer with credentials starts, is refused by a broker (code 16), prints
//! its configuration and its errors, and shuts down. One test in this file: the subscriber is global.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use rmq_producer::ProducerError;
use rmq_protocol::acl::Credentials;
use rmq_protocol::{Message, ResponseCode};
use rmq_testkit::{Action, error};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

mod common;
use common::{broker, namesrv, producer, route};

/// Writes every event's and span's fields into one string.
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
    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(tracing::level_filters::LevelFilter::TRACE)
    }
    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let mut s = self.0.lock().unwrap();
        span.record(&mut Text(&mut s));
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, values: &Record<'_>) {
        values.record(&mut Text(&mut self.0.lock().unwrap()));
    }
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut s = self.0.lock().unwrap();
        let _ = write!(s, "\n{}", event.metadata().level());
        event.record(&mut Text(&mut s));
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

#[test]
fn the_secret_key_never_reaches_the_logs() {
    let logs = Arc::new(Mutex::new(String::new()));
    tracing::subscriber::set_global_default(Capture(logs.clone())).unwrap();
    let secret = "Sup3r-Secret-Value";
    let refusing = broker(|_| {
        vec![Action::Respond(error(
            ResponseCode::NO_PERMISSION,
            "check signature failed.",
        ))]
    });
    let ns = namesrv(route(&[("broker-a", &refusing.addr())]));
    let p = producer(&ns, |c| {
        c.credentials = Some(Credentials::new("ak", secret).unwrap());
    });
    let e = p.send_sync(&Message::new("T", "x")).unwrap_err();
    assert!(matches!(e, ProducerError::Denied { .. }), "{e:?}");
    let ea = p.send_async(&Message::new("T", "x")).wait().unwrap_err();
    tracing::warn!(error = %e, debug = ?e, async_error = ?ea, config = ?p.config(), "what a user might log");
    p.send_heartbeat_to_all_broker();
    p.shutdown();
    drop(refusing);
    let logs = logs.lock().unwrap().clone();
    let events = logs.matches('\n').count();
    assert!(
        events >= 3,
        "the capture saw too little to prove anything: {logs}"
    );
    assert!(
        logs.contains("ak"),
        "the access key is logged where the config is: {logs}"
    );
    assert!(
        !logs.contains(secret),
        "the secret reached the logs: {logs}"
    );
}
