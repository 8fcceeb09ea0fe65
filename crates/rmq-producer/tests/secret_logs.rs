//! The secret key never reaches the logs: every tracing event and span of every thread, at every level,
//! is captured as text while a producer with credentials starts, is refused by a broker (code 16), prints
//! its configuration and its errors, and shuts down. One test in this file: the subscriber is global.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use rmq_producer::ProducerError;
use rmq_protocol::acl::Credentials;
use rmq_protocol::{Message, ResponseCode};
use rmq_testkit::{Action, error};

mod common;
use common::{broker, namesrv, producer, route};

#[test]
fn the_secret_key_never_reaches_the_logs() {
    let logs = common::capture::install();
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
