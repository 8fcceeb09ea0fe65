//! Careless callers never stop the producer (issue 20): a send callback that panics, and one that drops
//! the last handle of the producer. Each test failed on the code before its fix.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::sync::mpsc;
use std::time::{Duration, Instant};

use rmq_protocol::Message;
use rmq_testkit::{Action, send_ok};

mod common;
use common::{broker, namesrv, producer, route};

/// Before: the panic unwound through the connection's reader thread, which died; every later send on that
/// connection waited for its timeout.
#[test]
fn a_panicking_send_callback_is_caught_and_counted() {
    let b = broker(|_| vec![Action::Respond(send_ok(0, 1))]);
    let ns = namesrv(route(&[("broker-a", &b.addr())]));
    let p = producer(&ns, |_| {});
    let msg = Message::new("T", "x");
    p.send_sync(&msg).unwrap(); // connected: the callback below runs on the reader thread
    p.send_async_callback(&msg, |_| panic!("a careless callback"));
    for _ in 0..5 {
        let t0 = Instant::now();
        p.send_async(&msg)
            .wait_timeout(Duration::from_secs(2))
            .expect("later sends complete")
            .unwrap();
        assert!(t0.elapsed() < Duration::from_secs(1));
        p.send_sync(&msg).unwrap();
    }
    assert_eq!(p.get_stats().callback_panics, 1);
    p.shutdown();
}

/// Before: shutdown (run by dropping the last handle) waited for the send whose callback was running to
/// finish, which it could not do before shutdown returned: the callback's thread hung for the drain time
/// and sends sharing it with the callback stalled.
#[test]
fn dropping_the_last_handle_inside_a_callback_does_not_hang() {
    let b = broker(|_| vec![Action::Respond(send_ok(0, 1))]);
    let ns = namesrv(route(&[("broker-a", &b.addr())]));
    let p = producer(&ns, |c| c.send_msg_timeout = Duration::from_secs(10));
    let msg = Message::new("T", "x");
    p.send_sync(&msg).unwrap();
    let (tx, rx) = mpsc::channel();
    let last = p.clone();
    p.send_async_callback(&msg, move |r| {
        let t0 = Instant::now();
        drop(last);
        tx.send((r.is_ok(), t0.elapsed())).unwrap();
    });
    drop(p);
    let (ok, took) = rx.recv_timeout(Duration::from_secs(20)).unwrap();
    assert!(ok);
    assert!(
        took < Duration::from_secs(2),
        "shutdown in the callback took {took:?}"
    );
}

/// Before: a per-call timeout of `Duration::MAX` panicked (instant overflow). It means "no limit".
#[test]
fn duration_max_timeouts_saturate() {
    let b = broker(|_| vec![Action::Respond(send_ok(0, 1))]);
    let ns = namesrv(route(&[("broker-a", &b.addr())]));
    let p = producer(&ns, |_| {});
    let msg = Message::new("T", "x");
    p.send_sync_timeout(&msg, Duration::MAX).unwrap();
    p.send_async_timeout(&msg, Duration::MAX)
        .wait_timeout(Duration::MAX)
        .unwrap()
        .unwrap();
    assert!(p.flush(Instant::now() + Duration::from_secs(5)).is_empty());
    p.shutdown_timeout(Duration::MAX);
}

/// A shutdown begun in a callback finishes on a thread of its own; a `shutdown` from another thread
/// meanwhile waits for it to finish (before, it returned at once, possibly before the producer had
/// unregistered and failed its open sends).
#[test]
fn a_second_shutdown_waits_for_the_one_begun_in_a_callback() {
    let b = broker(|_| vec![Action::Respond(send_ok(0, 1))]);
    let ns = namesrv(route(&[("broker-a", &b.addr())]));
    let p = producer(&ns, |_| {});
    let msg = Message::new("T", "x");
    p.send_sync(&msg).unwrap();
    let (tx, rx) = mpsc::channel();
    let inner = p.clone();
    p.send_async_callback(&msg, move |_| {
        inner.shutdown();
        tx.send(()).unwrap();
    });
    rx.recv_timeout(Duration::from_secs(5)).unwrap();
    p.shutdown();
    assert_eq!(
        b.received_count(rmq_protocol::RequestCode::UNREGISTER_CLIENT.0),
        1,
        "unregistered by the time shutdown returned"
    );
    assert!(!p.is_running());
}
