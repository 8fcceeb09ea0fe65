//! Request-reply against a mock broker that pushes replies: the reply reaches its waiter (blocking and as
//! a future on a minimal executor), the request carries CORRELATION_ID / REPLY_TO_CLIENT / TTL, a reply
//! nobody waits for is answered SUCCESS and counted as late, and an unanswered request ends with the typed
//! timeout, also as a future (the sweeper wakes it). Real brokers: crates/rmq-it/tests/request_reply.rs.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::time::{Duration, Instant};

use rmq_producer::ProducerError;
use rmq_protocol::header::SendMessageRequestHeaderV2;
use rmq_protocol::message::decode_properties;
use rmq_protocol::{Message, RemotingCommand, RequestCode, ResponseCode};
use rmq_testkit::{Action, MockServer, block_on, send_ok};

mod common;
use common::{broker, namesrv, producer, route};

/// The CORRELATION_ID of the newest request `b` received, once it has one.
fn correlation_id(b: &MockServer, seen: usize) -> (String, String, String) {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let sends: Vec<RemotingCommand> = b
            .received()
            .into_iter()
            .filter(|r| r.request_code() == RequestCode::SEND_MESSAGE_V2)
            .collect();
        if sends.len() > seen {
            let h: SendMessageRequestHeaderV2 = sends[seen].decode_header().unwrap();
            let p = decode_properties(h.0.properties.as_deref().unwrap_or_default());
            let get = |k: &str| p.get(k).unwrap_or_default().to_owned();
            return (get("CORRELATION_ID"), get("REPLY_TO_CLIENT"), get("TTL"));
        }
        assert!(Instant::now() < deadline, "no request reached the broker");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn push_reply(b: &MockServer, id: &str, body: &str) {
    let mut cmd = RemotingCommand::request(RequestCode::PUSH_REPLY_MESSAGE_TO_CLIENT)
        .with_body(bytes::Bytes::from(body.as_bytes().to_vec()));
    cmd.opaque = 4242;
    cmd.ext_fields.insert("topic", "DefaultCluster_REPLY_TOPIC");
    cmd.ext_fields.insert("sysFlag", "0");
    cmd.ext_fields.insert(
        "properties",
        &format!("CORRELATION_ID\u{1}{id}\u{2}MSG_TYPE\u{1}reply\u{2}"),
    );
    b.push_request(&cmd);
}

#[test]
fn replies_reach_their_waiters_and_late_ones_are_counted() {
    let b = broker(|_| vec![Action::Respond(send_ok(0, 1))]);
    let ns = namesrv(route(&[("broker-a", &b.addr())]));
    let p = producer(&ns, |_| {});
    let f = p.request_async(&Message::new("T", "ping"), Duration::from_secs(3));
    let (id, reply_to, ttl) = correlation_id(&b, 0);
    assert_eq!(f.correlation_id(), id);
    assert_eq!((reply_to.as_str(), ttl.as_str()), (p.client_id(), "3000"));
    push_reply(&b, &id, "pong");
    let reply = block_on(f).unwrap();
    assert_eq!(&reply.body[..], b"pong");
    assert_eq!(reply.property("MSG_TYPE"), Some("reply"));
    // The same reply again: nobody waits any more.
    push_reply(&b, &id, "pong again");
    let deadline = Instant::now() + Duration::from_secs(2);
    while p.get_stats().late_replies == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let s = p.get_stats();
    assert_eq!((s.replies, s.late_replies), (1, 1));
    // The answer to the second push is written after the count: wait for it.
    while b.client_responses().len() < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let answers = b.client_responses();
    assert_eq!(answers.len(), 2, "every push is answered");
    assert!(
        answers
            .iter()
            .all(|r| r.code == ResponseCode::SUCCESS.0 && r.opaque == 4242)
    );
    // Blocking form.
    let waiter = {
        let p = p.clone();
        std::thread::spawn(move || p.request(&Message::new("T", "ping 2"), Duration::from_secs(3)))
    };
    let (id2, _, _) = correlation_id(&b, 1);
    push_reply(&b, &id2, "pong 2");
    assert_eq!(&waiter.join().unwrap().unwrap().body[..], b"pong 2");
    p.shutdown();
}

#[test]
fn an_unanswered_request_times_out_typed_also_as_a_future() {
    let b = broker(|_| vec![Action::Respond(send_ok(0, 1))]);
    let ns = namesrv(route(&[("broker-a", &b.addr())]));
    let p = producer(&ns, |_| {});
    let t0 = Instant::now();
    let e = block_on(p.request_async(&Message::new("T", "anyone?"), Duration::from_millis(300)))
        .unwrap_err();
    assert!(matches!(e, ProducerError::RequestTimeout { .. }), "{e}");
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(2),
        "{took:?}"
    );
    let e = p
        .request(&Message::new("T", "anyone?"), Duration::from_millis(200))
        .unwrap_err();
    assert!(e.is_timeout(), "{e}");
    assert!(matches!(
        p.request(&Message::new("T", "x"), Duration::ZERO),
        Err(ProducerError::Config { .. })
    ));
    p.shutdown();
}
