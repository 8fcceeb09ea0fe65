//! Message trace against a mock broker that refuses every send to the trace topic: the user's sends all
//! succeed, the trace records are counted as dropped, and the trace messages stay out of the user's send
//! counters. The Java decoder's view of real records: crates/rmq-it/tests/trace.rs.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::time::{Duration, Instant};

use rmq_protocol::header::SendMessageRequestHeaderV2;
use rmq_protocol::{Message, RequestCode, ResponseCode};
use rmq_testkit::{Action, error, send_ok};

mod common;
use common::{broker, namesrv, producer, route};

#[test]
fn an_unwritable_trace_topic_never_fails_a_send() {
    let b = broker(|r| {
        let h: SendMessageRequestHeaderV2 = r.decode_header().unwrap();
        if h.0.topic == "RMQ_SYS_TRACE_TOPIC" {
            vec![Action::Respond(error(
                ResponseCode::NO_PERMISSION,
                "no permission to write the trace topic",
            ))]
        } else {
            vec![Action::Respond(send_ok(0, 1))]
        }
    });
    let ns = namesrv(route(&[("broker-a", &b.addr())]));
    let p = producer(&ns, |c| c.trace = true);
    for i in 0..12 {
        p.send_sync(&Message::new("T", format!("m{i}"))).unwrap();
    }
    // Ten records make a batch: the trace thread sends it at once, and the broker refuses it.
    let deadline = Instant::now() + Duration::from_secs(3);
    while p.get_stats().traces_dropped < 10 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let s = p.get_stats();
    assert_eq!(
        (s.sent, s.failed),
        (12, 0),
        "trace messages are not counted as the user's: {s:?}"
    );
    assert_eq!((s.traces_sent, s.traces_dropped), (0, 10), "{s:?}");
    let traced = b
        .received()
        .iter()
        .filter(|r| r.request_code() == RequestCode::SEND_MESSAGE_V2)
        .filter(|r| r.ext_fields.get("b") == Some("RMQ_SYS_TRACE_TOPIC"))
        .count();
    assert!(traced >= 1, "a trace message was attempted");
    // The last two go out at shutdown, and are refused too.
    p.shutdown();
    let s = p.get_stats();
    assert_eq!((s.sent, s.failed, s.traces_dropped), (12, 0, 12), "{s:?}");
}
