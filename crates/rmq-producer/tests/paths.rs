//! The send paths agree: each test here pins a way they once drifted apart (deadline, stats, health,
//! `possibly_stored`, threads) and fails on the code before the send machine; then the API that came with
//! it (per-call timeout, try_send_async, flush, address override, drop).

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rmq_producer::{MessageQueue, ProducerError};
use rmq_protocol::{Message, RequestCode, ResponseCode};
use rmq_routing::PublishQueue;
use rmq_testkit::{Action, MockServer, error, send_ok};

mod common;
use common::{broker, namesrv, namesrv_after, producer, producer_at, route};

fn within(started: Instant, limit: Duration) {
    assert!(
        started.elapsed() < limit,
        "took {:?}, limit {limit:?}",
        started.elapsed()
    );
}

/// Ordered sends gave their one attempt the whole send_msg_timeout after a route fetch of its own.
#[test]
fn an_ordered_send_ends_within_its_deadline_route_fetch_included() {
    let silent = broker(|_| vec![Action::Never]);
    let ns = namesrv_after(
        route(&[("broker-a", &silent.addr())]),
        Duration::from_millis(800),
    );
    let p = producer(&ns, |c| c.send_msg_timeout = Duration::from_millis(1000));
    let started = Instant::now();
    let e = p
        .send_with_selector(
            &Message::new("T", "x"),
            |_: &[PublishQueue], _: &Message, _: &()| Some(0),
            &(),
        )
        .unwrap_err();
    // Before: the fetch (800 ms) and then the whole 1,000 ms for the attempt.
    within(started, Duration::from_millis(1400));
    assert!(e.is_timeout() && e.possibly_stored(), "{e}");
}

/// The route fetch ran outside the deadline: a slow name server stretched a send past it.
#[test]
fn a_slow_name_server_counts_against_the_send() {
    let good = broker(|_| vec![Action::Respond(send_ok(0, 1))]);
    let ns = namesrv_after(
        route(&[("broker-a", &good.addr())]),
        Duration::from_millis(800),
    );
    let p = producer(&ns, |c| c.send_msg_timeout = Duration::from_millis(400));
    let started = Instant::now();
    let e = p.send_sync(&Message::new("T", "x")).unwrap_err();
    within(started, Duration::from_millis(750));
    assert!(matches!(e, ProducerError::RouteNotFound { .. }), "{e}");
    assert!(!e.possibly_stored());
    assert_eq!(good.received_count(RequestCode::SEND_MESSAGE_V2.0), 0);
}

/// Ordered sends returned early without counting the failure.
#[test]
fn every_ordered_send_is_counted() {
    let good = broker(|_| vec![Action::Respond(send_ok(0, 1))]);
    let ns = namesrv(route(&[("broker-a", &good.addr())]));
    let p = producer(&ns, |_| {});
    let refuse = |_: &[PublishQueue], _: &Message, _: &()| None;
    let e = p
        .send_with_selector(&Message::new("T", "x"), refuse, &())
        .unwrap_err();
    assert!(matches!(e, ProducerError::Route(_)), "{e}");
    let q = MessageQueue {
        topic: "T".into(),
        broker_name: "broker-a".into(),
        queue_id: 1,
    };
    p.send_to_queue(&Message::new("T", "x"), &q).unwrap();
    let s = p.get_stats();
    assert_eq!((s.sent, s.failed), (1, 1), "{s:?}");
}

/// send_to_queue ignored the queue's topic and sent to the message's.
#[test]
fn a_queue_of_another_topic_is_refused_before_any_io() {
    let good = broker(|_| vec![Action::Respond(send_ok(0, 1))]);
    let ns = namesrv(route(&[("broker-a", &good.addr())]));
    let p = producer(&ns, |_| {});
    let q = MessageQueue {
        topic: "Other".into(),
        broker_name: "broker-a".into(),
        queue_id: 0,
    };
    let e = p.send_to_queue(&Message::new("T", "x"), &q).unwrap_err();
    assert!(matches!(e, ProducerError::QueueTopicMismatch { .. }), "{e}");
    assert_eq!(ns.received().len(), 0);
    assert_eq!(p.get_stats().failed, 1);
}

/// Oneway sends told broker health nothing and counted only successes.
#[test]
fn a_failed_oneway_send_reaches_health_and_stats() {
    let gone = MockServer::start(|_: &rmq_protocol::RemotingCommand| vec![]).unwrap();
    let addr = gone.addr();
    gone.stop(); // nothing listens there now: connects are refused
    let ns = namesrv(route(&[("broker-a", &addr)]));
    let p = producer(&ns, |_| {});
    let e = p.send_oneway(&Message::new("T", "x")).unwrap_err();
    assert!(!e.possibly_stored(), "{e}");
    let s = p.get_stats();
    assert_eq!((s.oneway, s.oneway_failed), (0, 1));
    let a = s.router.brokers.iter().find(|b| b.broker == "broker-a");
    assert_eq!(a.map(|b| b.failures), Some(1), "{:?}", s.router.brokers);
}

/// A non-retryable code after a timed-out attempt lost `possibly_stored`.
#[test]
fn possibly_stored_survives_a_refusal_after_a_timeout() {
    let silent = broker(|_| vec![Action::Never]);
    let illegal = broker(|_| vec![Action::Respond(error(ResponseCode::MESSAGE_ILLEGAL, "no"))]);
    let ns = namesrv(route(&[
        ("broker-a", &silent.addr()),
        ("broker-b", &illegal.addr()),
    ]));
    let p = producer(&ns, |c| c.send_msg_timeout = Duration::from_millis(600));
    let mut after_timeout = 0;
    for _ in 0..6 {
        match p.send_sync(&Message::new("T", "x")).unwrap_err() {
            e @ ProducerError::AttemptsExhausted { attempts: 2, .. } => {
                assert!(e.possibly_stored(), "{e}");
                assert!(
                    e.to_string().contains("MESSAGE_ILLEGAL") || e.to_string().contains("13"),
                    "{e}"
                );
                after_timeout += 1;
            }
            e @ ProducerError::Broker { .. } => assert!(!e.possibly_stored()),
            e => panic!("{e}"),
        }
    }
    assert!(
        after_timeout > 0,
        "round robin starts on broker-a at least once in 6 sends"
    );
}

/// A SUCCESS whose header could not be read was reported as not stored.
#[test]
fn a_stored_message_with_an_unreadable_answer_is_possibly_stored_and_not_resent() {
    let odd = broker(|_| vec![Action::Respond(error(ResponseCode::SUCCESS, "no header"))]);
    let ns = namesrv(route(&[("broker-a", &odd.addr())]));
    let p = producer(&ns, |_| {});
    let e = p.send_sync(&Message::new("T", "x")).unwrap_err();
    assert!(matches!(e, ProducerError::BadResponse { .. }), "{e}");
    assert!(e.possibly_stored());
    assert_eq!(odd.received_count(RequestCode::SEND_MESSAGE_V2.0), 1);
}

/// send_async fetched a missing route on the caller's thread.
#[test]
fn send_async_does_no_network_io_on_the_callers_thread() {
    let good = broker(|_| vec![Action::Respond(send_ok(0, 1))]);
    let ns = namesrv_after(
        route(&[("broker-a", &good.addr())]),
        Duration::from_millis(600),
    );
    let p = producer(&ns, |_| {});
    let started = Instant::now();
    let f = p.send_async(&Message::new("T", "x"));
    within(started, Duration::from_millis(300));
    assert_eq!(f.wait().unwrap().broker_name, "broker-a");
    assert!(started.elapsed() >= Duration::from_millis(600));
}

/// The first heartbeat ran before any route was known, so brokers learnt the group one interval late.
#[test]
fn a_broker_is_greeted_as_soon_as_a_route_names_it() {
    let good = broker(|_| vec![Action::Respond(send_ok(0, 1))]);
    let ns = namesrv(route(&[("broker-a", &good.addr())]));
    let p = producer(&ns, |c| {
        c.heartbeat_broker_interval = Duration::from_secs(60)
    });
    p.send_sync(&Message::new("T", "x")).unwrap();
    let started = Instant::now();
    while good.received_count(RequestCode::HEART_BEAT.0) == 0 {
        assert!(started.elapsed() < Duration::from_secs(2), "no heartbeat");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(good.received_count(RequestCode::HEART_BEAT.0), 1);
}

/// A producer dropped without shutdown kept its threads and connections, and never unregistered.
#[test]
fn dropping_the_last_handle_shuts_the_producer_down() {
    let good = broker(|_| vec![Action::Respond(send_ok(0, 1))]);
    let ns = namesrv(route(&[("broker-a", &good.addr())]));
    let p = producer(&ns, |_| {});
    let clone = p.clone();
    p.send_sync(&Message::new("T", "x")).unwrap();
    drop(p);
    assert_eq!(good.received_count(RequestCode::UNREGISTER_CLIENT.0), 0);
    let delivered = Arc::new(AtomicUsize::new(0));
    let d = delivered.clone();
    clone.send_async_callback(&Message::new("T", "y"), move |r| {
        assert!(r.is_ok());
        d.fetch_add(1, Ordering::SeqCst);
    });
    drop(clone);
    assert_eq!(
        delivered.load(Ordering::SeqCst),
        1,
        "drained before closing"
    );
    assert_eq!(good.received_count(RequestCode::UNREGISTER_CLIENT.0), 1);
}

#[test]
fn a_per_call_timeout_bounds_one_send() {
    let silent = broker(|_| vec![Action::Never]);
    let ns = namesrv(route(&[("broker-a", &silent.addr())]));
    let p = producer(&ns, |_| {});
    p.fetch_publish_queues("T").unwrap();
    let started = Instant::now();
    let e = p
        .send_sync_timeout(&Message::new("T", "x"), Duration::from_millis(250))
        .unwrap_err();
    within(started, Duration::from_millis(600));
    assert!(e.is_timeout(), "{e}");
    let started = Instant::now();
    let e = p
        .send_async_timeout(&Message::new("T", "x"), Duration::from_millis(250))
        .wait()
        .unwrap_err();
    within(started, Duration::from_millis(600));
    assert!(e.is_timeout(), "{e}");
}

#[test]
fn try_send_async_never_blocks_and_flush_names_what_is_open() {
    let silent = broker(|_| vec![Action::Never]);
    let ns = namesrv(route(&[("broker-a", &silent.addr())]));
    let p = producer(&ns, |c| {
        c.async_send_semaphore = 2;
        c.retry_times = 0;
        c.send_msg_timeout = Duration::from_millis(600);
    });
    let a = p.send_async(&Message::new("T", "a"));
    let b = p.send_async(&Message::new("T", "b"));
    let started = Instant::now();
    let e = p
        .try_send_async(&Message::new("T", "c"))
        .wait()
        .unwrap_err();
    within(started, Duration::from_millis(50));
    assert!(
        matches!(
            e,
            ProducerError::Overloaded {
                in_flight: 2,
                max: 2
            }
        ),
        "{e}"
    );
    let open = p.flush(Instant::now() + Duration::from_millis(100));
    assert_eq!(open.len(), 2, "{open:?}");
    assert!(open.iter().all(|o| o.topic == "T" && o.msg_id.len() == 32));
    assert!(p.flush(Instant::now() + Duration::from_secs(2)).is_empty());
    assert!(a.wait().unwrap_err().is_timeout());
    assert!(b.wait().unwrap_err().is_timeout());
}

#[test]
fn advertised_broker_addresses_can_be_overridden() {
    let good = broker(|_| vec![Action::Respond(send_ok(0, 1))]);
    // The broker advertises a loopback port nothing listens on; the override dials the mock instead.
    let advertised = "127.0.0.1:1";
    let ns = namesrv(route(&[("broker-a", advertised)]));
    let p = producer(&ns, |c| {
        c.broker_addr_override
            .insert(advertised.into(), good.addr());
    });
    p.send_sync(&Message::new("T", "x")).unwrap();
    let (route, _) = p.topic_route("T").unwrap();
    assert_eq!(route.broker_datas[0].broker_addrs[&0], good.addr());
    assert_eq!(good.received_count(RequestCode::SEND_MESSAGE_V2.0), 1);
}

/// The last handle may be dropped inside a send callback (here on the async worker, after the attempt
/// timed out): the callback returns at once and the producer shuts down on a thread of its own.
#[test]
fn the_last_handle_dropped_inside_a_callback_shuts_down_cleanly() {
    let silent = broker(|_| vec![Action::Never]);
    let ns = namesrv(route(&[("broker-a", &silent.addr())]));
    let p = producer(&ns, |c| {
        c.send_msg_timeout = Duration::from_millis(200);
        c.retry_times = 0;
    });
    p.fetch_publish_queues("T").unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let sender = p.clone();
    sender.send_async_callback(&Message::new("T", "x"), move |r| {
        drop(p); // the last handle but `sender`, dropped just below
        tx.send(r.is_err()).unwrap();
    });
    drop(sender);
    assert_eq!(rx.recv_timeout(Duration::from_secs(5)), Ok(true));
    // The shutdown finishes on a thread of its own once the callback has returned.
    let t0 = Instant::now();
    while silent.received_count(RequestCode::UNREGISTER_CLIENT.0) == 0
        && t0.elapsed() < Duration::from_secs(5)
    {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(silent.received_count(RequestCode::UNREGISTER_CLIENT.0), 1);
}

/// With the name server down and no cached route, a send burned its attempts inside the reconnect backoff
/// in microseconds (issue 11); now it waits, within its deadline, for the name server to come back.
#[test]
fn a_send_waits_within_its_deadline_for_a_name_server_that_comes_back() {
    let good = broker(|_| vec![Action::Respond(send_ok(0, 1))]);
    // Reserve a port, then free it: the name server is down when the send starts.
    let ns_addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let p = producer_at(&ns_addr, |c| c.send_msg_timeout = Duration::from_secs(3));
    let r = route(&[("broker-a", &good.addr())]);
    let starter = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(500));
        MockServer::start_on(&ns_addr, move |_: &rmq_protocol::RemotingCommand| {
            vec![Action::Respond(rmq_testkit::route_response(&r))]
        })
        .unwrap()
    });
    let started = Instant::now();
    let sent = p.send_sync(&Message::new("T", "x"));
    let _ns = starter.join().unwrap();
    let r = sent.unwrap();
    assert_eq!(r.broker_name, "broker-a");
    assert!(started.elapsed() >= Duration::from_millis(500));
    within(started, Duration::from_secs(3));
}

/// An asynchronous send to a broker that just refused a connect waits out the reconnect backoff on the
/// async worker instead of burning its retries on it in microseconds (issue 11): the broker comes up
/// 150 ms into the send, which then succeeds.
#[test]
fn an_async_send_waits_out_a_brokers_reconnect_backoff() {
    let broker_addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let ns = namesrv(route(&[("broker-a", &broker_addr)]));
    let p = producer(&ns, |c| c.send_msg_timeout = Duration::from_secs(3));
    let addr = broker_addr.clone();
    let starter = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(150));
        MockServer::start_on(&addr, |r: &rmq_protocol::RemotingCommand| {
            if r.request_code() == RequestCode::SEND_MESSAGE_V2 {
                vec![Action::Respond(send_ok(0, 1))]
            } else {
                vec![Action::Respond(rmq_testkit::ok())]
            }
        })
        .unwrap()
    });
    let r = p.send_async(&Message::new("T", "x")).wait();
    let _broker = starter.join().unwrap();
    let r = r.unwrap();
    assert_eq!(r.broker_name, "broker-a");
    assert!(r.attempts >= 2, "{r:?}");
}

/// An async send that waited for room in the in-flight bound keeps its deadline: its attempt gets what is
/// left of its timeout, not all of it again (the drivers pass the time of each step on; this one must be
/// read after the wait).
#[test]
fn an_async_send_that_waited_for_room_keeps_its_deadline() {
    let slow = broker(|r: &rmq_protocol::RemotingCommand| {
        if r.body.first() == Some(&b'a') {
            vec![Action::RespondAfter(
                Duration::from_millis(400),
                send_ok(0, 1),
            )]
        } else {
            vec![Action::Never]
        }
    });
    let ns = namesrv(route(&[("broker-a", &slow.addr())]));
    let p = producer(&ns, |c| {
        c.async_send_semaphore = 1;
        c.retry_times = 0;
    });
    p.fetch_publish_queues("T").unwrap();
    let first = p.send_async(&Message::new("T", "a"));
    let started = Instant::now();
    // Waits about 400 ms for the first send's place, then is never answered.
    let e = p
        .send_async_timeout(&Message::new("T", "b"), Duration::from_secs(1))
        .wait()
        .unwrap_err();
    assert!(e.is_timeout(), "{e}");
    let took = started.elapsed();
    assert!(
        took < Duration::from_millis(1250),
        "ended {took:?} after it started, timeout 1 s: its attempt was given the whole timeout after the wait"
    );
    first.wait().unwrap();
}
