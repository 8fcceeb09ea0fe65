//! Auto-batch against a mock broker (issue 23), for what a real broker does not do on demand: refuse one
//! message of a batch, die with a batch in flight. Real-broker tests are in crates/rmq-it.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rmq_producer::{Producer, ProducerError};
use rmq_protocol::header::{CommandHeader, SendMessageResponseHeader};
use rmq_protocol::{Message, RemotingCommand, RequestCode, ResponseCode};
use rmq_testkit::{Action, MockServer, error, ok, send_ok};

mod common;
use common::{namesrv, producer, route};

/// The messages of a request (one for SEND_MESSAGE_V2, the records of a SEND_BATCH_MESSAGE).
fn messages_of(r: &RemotingCommand) -> Vec<Message> {
    let topic = r
        .ext_fields
        .get("b")
        .or(r.ext_fields.get("topic"))
        .unwrap_or("");
    let body = r.body.clone();
    if r.request_code() == RequestCode::SEND_BATCH_MESSAGE {
        rmq_protocol::batch::decode_batch(topic, &body).unwrap()
    } else {
        let mut m = Message::new(topic, body);
        if let Some(p) = r.ext_fields.get("i") {
            m.properties = rmq_protocol::message::decode_properties(p);
        }
        vec![m]
    }
}

/// A broker's answer to a batch of `n` stored from `queue_offset` on: offset msgIds comma-separated, as
/// the broker lists them.
fn batch_ok(queue_id: i32, queue_offset: i64, n: usize) -> RemotingCommand {
    let ids: Vec<String> = (0..n as i64)
        .map(|i| format!("7F00000100002A9F{:016X}", queue_offset + i))
        .collect();
    let mut r = ok();
    SendMessageResponseHeader {
        msg_id: ids.join(",").into(),
        queue_id,
        queue_offset,
        region: Some("DefaultRegion".into()),
        ..Default::default()
    }
    .write_fields(&mut r.ext_fields);
    r
}

/// A broker that records every send request and answers with `answer`.
struct Broker {
    server: MockServer,
    sends: Arc<Mutex<Vec<RemotingCommand>>>,
}

fn broker(answer: impl Fn(&RemotingCommand) -> Vec<Action> + Send + Sync + 'static) -> Broker {
    let sends = Arc::new(Mutex::new(Vec::new()));
    let s = sends.clone();
    let server = MockServer::start(move |r: &RemotingCommand| match r.request_code() {
        RequestCode::SEND_MESSAGE_V2 | RequestCode::SEND_BATCH_MESSAGE => {
            s.lock().push(r.clone());
            answer(r)
        }
        _ => vec![Action::Respond(ok())],
    })
    .unwrap();
    Broker { server, sends }
}

impl Broker {
    fn requests(&self, code: RequestCode) -> Vec<RemotingCommand> {
        self.sends
            .lock()
            .iter()
            .filter(|r| r.request_code() == code)
            .cloned()
            .collect()
    }
}

/// A broker refusing, as illegal, a request that holds a message with the body `bad` (a batch whole,
/// nothing stored) and storing every other, batches and single messages.
fn refusing_bad() -> Broker {
    let offset = Arc::new(AtomicUsize::new(0));
    broker(move |r| {
        let ms = messages_of(r);
        let answer = if ms.iter().any(|m| &m.body[..] == b"bad") {
            error(ResponseCode::MESSAGE_ILLEGAL, "the message is illegal")
        } else {
            let at = offset.fetch_add(ms.len(), Ordering::Relaxed) as i64;
            if r.request_code() == RequestCode::SEND_BATCH_MESSAGE {
                batch_ok(0, at, ms.len())
            } else {
                send_ok(0, at)
            }
        };
        vec![Action::Respond(answer)]
    })
}

/// A broker storing everything, batches and single messages.
fn storing() -> Broker {
    let offset = Arc::new(AtomicUsize::new(100));
    broker(move |r| {
        let n = messages_of(r).len();
        let at = offset.fetch_add(n, Ordering::Relaxed) as i64;
        let answer = if r.request_code() == RequestCode::SEND_BATCH_MESSAGE {
            batch_ok(0, at, n)
        } else {
            send_ok(0, at)
        };
        vec![Action::Respond(answer)]
    })
}

fn auto_batching(b: &Broker, linger: Duration) -> (Producer, MockServer) {
    let ns = namesrv(route(&[("broker-a", &b.server.addr())]));
    let p = producer(&ns, |c| {
        c.auto_batch = true;
        c.auto_batch_linger = linger;
    });
    (p, ns)
}

fn msg(body: &str) -> Message {
    Message::new("T", body.to_owned())
}

#[test]
fn concurrent_async_sends_share_one_request_and_keep_their_own_results() {
    let b = storing();
    let (p, _ns) = auto_batching(&b, Duration::from_millis(300));
    let futures: Vec<_> = (0..10)
        .map(|i| p.send_async(&msg(&format!("m{i}"))))
        .collect();
    let results: Vec<_> = futures.into_iter().map(|f| f.wait().unwrap()).collect();
    let batches = b.requests(RequestCode::SEND_BATCH_MESSAGE);
    assert_eq!(batches.len(), 1, "one request for the ten");
    assert_eq!(b.requests(RequestCode::SEND_MESSAGE_V2).len(), 0);
    let stored = messages_of(&batches[0]);
    assert_eq!(stored.len(), 10);
    // The batch's own properties: WAIT only, never a UNIQ_KEY (4.9.x would give it to every message).
    let header_props = batches[0].ext_fields.get("i").unwrap();
    assert!(!header_props.contains("UNIQ_KEY"), "{header_props:?}");
    for (i, (r, m)) in results.iter().zip(&stored).enumerate() {
        assert_eq!(m.body, format!("m{i}").as_bytes(), "in the order sent");
        assert_eq!(Some(&*r.msg_id), m.uniq_key(), "each caller its own id");
        assert_eq!(r.queue_offset, 100 + i as i64);
        assert_eq!(
            &*r.offset_msg_id,
            format!("7F00000100002A9F{:016X}", 100 + i).as_str()
        );
        assert_eq!(&*r.topic, "T");
    }
    // A caller has its outcome a moment before its place is given back: flush waits for that.
    assert!(p.flush(Instant::now() + Duration::from_secs(5)).is_empty());
    let stats = p.get_stats();
    assert_eq!((stats.sent, stats.failed, stats.in_flight), (10, 0, 0));
    p.shutdown();
}

#[test]
fn one_illegal_message_fails_alone_and_the_others_are_stored() {
    // The broker refuses a batch holding the bad message whole (nothing stored), and the bad message
    // alone; it stores the rest.
    let b = refusing_bad();
    let (p, _ns) = auto_batching(&b, Duration::from_millis(300));
    let bodies = ["a", "b", "bad", "c", "d"];
    let futures: Vec<_> = bodies.iter().map(|x| p.send_async(&msg(x))).collect();
    let outcomes: Vec<_> = futures.into_iter().map(|f| f.wait()).collect();
    for (body, r) in bodies.iter().zip(&outcomes) {
        match (*body, r) {
            ("bad", Err(ProducerError::Broker { code, .. })) => {
                assert_eq!(*code, ResponseCode::MESSAGE_ILLEGAL)
            }
            ("bad", other) => panic!("the bad message: {other:?}"),
            (_, Ok(_)) => {}
            (body, Err(e)) => panic!("{body} failed: {e}"),
        }
    }
    // Stored exactly once each: the refused batch stored nothing, then each went alone.
    assert_eq!(b.requests(RequestCode::SEND_BATCH_MESSAGE).len(), 1);
    assert_eq!(b.requests(RequestCode::SEND_MESSAGE_V2).len(), 5);
    // A caller has its outcome a moment before its place is given back: flush waits for that.
    assert!(p.flush(Instant::now() + Duration::from_secs(5)).is_empty());
    let stats = p.get_stats();
    assert_eq!((stats.sent, stats.failed, stats.in_flight), (4, 1, 0));
    p.shutdown();
}

#[test]
fn a_broker_dying_with_the_batch_in_flight_fails_each_caller_once() {
    let b = broker(|_| vec![Action::Close]);
    let (p, _ns) = auto_batching(&b, Duration::from_millis(200));
    let delivered = Arc::new(AtomicUsize::new(0));
    for i in 0..8 {
        let d = delivered.clone();
        p.send_async_callback(&msg(&format!("m{i}")), move |r| {
            assert!(r.is_err());
            d.fetch_add(1, Ordering::SeqCst);
        });
    }
    let left = p.flush(Instant::now() + Duration::from_secs(10));
    assert!(left.is_empty(), "{left:?}");
    assert_eq!(delivered.load(Ordering::SeqCst), 8);
    assert!(!b.requests(RequestCode::SEND_BATCH_MESSAGE).is_empty());
    // A caller has its outcome a moment before its place is given back: flush waits for that.
    assert!(p.flush(Instant::now() + Duration::from_secs(5)).is_empty());
    let stats = p.get_stats();
    assert_eq!((stats.sent, stats.failed, stats.in_flight), (0, 8, 0));
    p.shutdown();
    assert_eq!(delivered.load(Ordering::SeqCst), 8, "exactly once");
}

#[test]
fn messages_a_batch_cannot_carry_go_alone() {
    let b = storing();
    let (p, _ns) = auto_batching(&b, Duration::from_millis(100));
    let mut delayed = msg("delayed");
    delayed.set_delay_level(2);
    let mut ordered = msg("ordered");
    ordered.set_sharding_key("user-1");
    let big = Message::new("T", vec![b'x'; 8 << 10]); // compressed: batches carry no compression
    let futures: Vec<_> = [&delayed, &ordered, &big]
        .into_iter()
        .map(|m| p.send_async(m))
        .collect();
    for f in futures {
        f.wait().unwrap();
    }
    assert_eq!(b.requests(RequestCode::SEND_MESSAGE_V2).len(), 3);
    assert!(b.requests(RequestCode::SEND_BATCH_MESSAGE).is_empty());
    p.shutdown();
}

#[test]
fn flush_and_shutdown_send_what_gathers_without_waiting_for_the_linger() {
    let b = storing();
    let (p, _ns) = auto_batching(&b, Duration::from_secs(20));
    p.send_sync(&msg("warm")).unwrap(); // route and connection ready
    let first: Vec<_> = (0..3)
        .map(|i| p.send_async(&msg(&format!("f{i}"))))
        .collect();
    let t0 = Instant::now();
    assert!(p.flush(Instant::now() + Duration::from_secs(5)).is_empty());
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    for f in first {
        f.wait().unwrap();
    }
    let second: Vec<_> = (0..3)
        .map(|i| p.send_async(&msg(&format!("s{i}"))))
        .collect();
    let t0 = Instant::now();
    p.shutdown();
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    for f in second {
        f.wait().unwrap();
    }
    assert_eq!(b.requests(RequestCode::SEND_BATCH_MESSAGE).len(), 2);
}

#[test]
fn a_full_gathering_goes_before_its_linger_and_no_member_outwaits_half_its_time() {
    let b = storing();
    let ns = namesrv(route(&[("broker-a", &b.server.addr())]));
    let p = producer(&ns, |c| {
        c.auto_batch = true;
        c.auto_batch_linger = Duration::from_secs(20);
        c.auto_batch_max_bytes = 3000;
        c.send_msg_timeout = Duration::from_secs(2);
    });
    p.send_sync(&msg("warm")).unwrap();
    let body = "y".repeat(1000);
    let t0 = Instant::now();
    // Three 1000-byte bodies fill 3000 bytes: they go at once, and the fourth opens the next gathering.
    let mut futures: Vec<_> = (0..4).map(|_| p.send_async(&msg(&body))).collect();
    let fourth = futures.pop().unwrap();
    for f in futures {
        f.wait().unwrap();
    }
    assert!(
        t0.elapsed() < Duration::from_millis(500),
        "{:?}",
        t0.elapsed()
    );
    assert_eq!(b.requests(RequestCode::SEND_BATCH_MESSAGE).len(), 1);
    // The fourth waits no longer than half its 2 s, not the 20 s linger, then goes alone.
    fourth.wait().unwrap();
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_millis(1800),
        "{took:?}"
    );
    assert_eq!(b.requests(RequestCode::SEND_MESSAGE_V2).len(), 2);
    p.shutdown();
}

#[test]
fn oneway_sends_gather_into_a_oneway_batch() {
    let b = storing();
    let (p, _ns) = auto_batching(&b, Duration::from_millis(200));
    let futures: Vec<_> = (0..5)
        .map(|i| p.send_oneway_async(&msg(&format!("o{i}"))))
        .collect();
    for f in futures {
        f.wait().unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while b.requests(RequestCode::SEND_BATCH_MESSAGE).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let batches = b.requests(RequestCode::SEND_BATCH_MESSAGE);
    assert_eq!(batches.len(), 1);
    assert!(batches[0].is_oneway());
    assert_eq!(messages_of(&batches[0]).len(), 5);
    // A caller has its outcome a moment before its place is given back: flush waits for that.
    assert!(p.flush(Instant::now() + Duration::from_secs(5)).is_empty());
    let stats = p.get_stats();
    assert_eq!((stats.oneway, stats.oneway_failed), (5, 0));
    p.shutdown();
}

#[test]
fn an_illegal_batch_after_a_retry_still_fails_only_the_message_at_fault() {
    // broker-a refuses everything with a retryable code (nothing stored); broker-b refuses a batch
    // holding the bad message, and the bad message alone, and stores the rest.
    let a = broker(|_| vec![Action::Respond(error(ResponseCode::SYSTEM_ERROR, "busy"))]);
    let b = refusing_bad();
    let ns = namesrv(route(&[
        ("broker-a", &a.server.addr()),
        ("broker-b", &b.server.addr()),
    ]));
    let p = producer(&ns, |c| {
        c.auto_batch = true;
        c.auto_batch_linger = Duration::from_millis(300);
    });
    let bodies = ["a", "bad", "b", "c"];
    let futures: Vec<_> = bodies.iter().map(|x| p.send_async(&msg(x))).collect();
    for (body, f) in bodies.iter().zip(futures) {
        assert_eq!(f.wait().is_ok(), *body != "bad", "{body}");
    }
    // A caller has its outcome a moment before its place is given back: flush waits for that.
    assert!(p.flush(Instant::now() + Duration::from_secs(5)).is_empty());
    let stats = p.get_stats();
    assert_eq!((stats.sent, stats.failed, stats.in_flight), (3, 1, 0));
    p.shutdown();
}

#[test]
fn a_send_with_a_shorter_timeout_never_cuts_the_others() {
    // Every answer takes 400 ms: a 250 ms send times out, the 3 s ones around it must not.
    let b = broker(|r| {
        let n = messages_of(r).len();
        let answer = if r.request_code() == RequestCode::SEND_BATCH_MESSAGE {
            batch_ok(0, 0, n)
        } else {
            send_ok(0, 0)
        };
        vec![Action::RespondAfter(Duration::from_millis(400), answer)]
    });
    let (p, _ns) = auto_batching(&b, Duration::from_millis(50));
    p.send_sync(&msg("warm")).unwrap();
    let before: Vec<_> = (0..3)
        .map(|i| p.send_async(&msg(&format!("b{i}"))))
        .collect();
    let short = p.send_async_timeout(&msg("short"), Duration::from_millis(250));
    let after: Vec<_> = (0..3)
        .map(|i| p.send_async(&msg(&format!("a{i}"))))
        .collect();
    assert!(short.wait().is_err());
    for f in before.into_iter().chain(after) {
        f.wait().unwrap();
    }
    p.shutdown();
}

#[test]
fn a_broker_listing_another_number_of_offset_ids_leaves_them_empty() {
    // One offset msgId for a batch of several: no member may be given another's (or the list).
    let b = broker(|r| {
        let n = messages_of(r).len();
        let answer = if r.request_code() == RequestCode::SEND_BATCH_MESSAGE {
            batch_ok(0, 10, n.min(1))
        } else {
            send_ok(0, 10)
        };
        vec![Action::Respond(answer)]
    });
    let (p, _ns) = auto_batching(&b, Duration::from_millis(200));
    let futures: Vec<_> = (0..4)
        .map(|i| p.send_async(&msg(&format!("m{i}"))))
        .collect();
    for (i, f) in futures.into_iter().enumerate() {
        let r = f.wait().unwrap();
        assert_eq!(&*r.offset_msg_id, "");
        assert_eq!(r.queue_offset, 10 + i as i64);
    }
    assert_eq!(b.requests(RequestCode::SEND_BATCH_MESSAGE).len(), 1);
    p.shutdown();
}
