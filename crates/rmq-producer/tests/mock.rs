//! The producer against mock name servers and brokers: retries, deadlines, validation, lifecycle.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::sync::Arc;
use std::time::{Duration, Instant};

use rmq_producer::{Producer, ProducerConfig, ProducerError, SendStatus};
use rmq_protocol::header::{HeartbeatData, SendMessageRequestHeaderV2};
use rmq_protocol::{Message, RemotingCommand, RequestCode, ResponseCode, ValidationError};
use rmq_testkit::{Action, MockServer, block_on, error, ok, send_ok};

mod common;
use common::{broker, namesrv, producer, route};

#[test]
fn retries_on_another_broker_after_a_retryable_code() {
    let busy = broker(|_| {
        vec![Action::Respond(error(
            ResponseCode::SYSTEM_BUSY,
            "[REJECTREQUEST]system busy",
        ))]
    });
    let good = broker(|_| vec![Action::Respond(send_ok(1, 42))]);
    let ns = namesrv(route(&[
        ("broker-a", &busy.addr()),
        ("broker-b", &good.addr()),
    ]));
    let p = producer(&ns, |_| {});
    for _ in 0..6 {
        let r = p.send_sync(&Message::new("T", "hello")).unwrap();
        assert_eq!(r.broker_name, "broker-b");
        assert_eq!(r.status, SendStatus::SendOk);
        assert_eq!(r.queue_offset, 42);
        assert_eq!(r.msg_id.len(), 32);
    }
    let s = p.get_stats();
    assert_eq!(s.sent, 6);
    assert!(
        s.retries >= 1,
        "some sends went to the busy broker first: {s:?}"
    );
    assert_eq!(good.received_count(RequestCode::SEND_MESSAGE_V2.0), 6);
    p.shutdown();
}

#[test]
fn non_retryable_codes_fail_at_once_with_the_remark() {
    let illegal = broker(|_| {
        vec![Action::Respond(error(
            ResponseCode::MESSAGE_ILLEGAL,
            "too big for me",
        ))]
    });
    let ns = namesrv(route(&[("broker-a", &illegal.addr())]));
    let p = producer(&ns, |_| {});
    let e = p.send_sync(&Message::new("T", "x")).unwrap_err();
    match &e {
        ProducerError::Broker { code, remark, .. } => {
            assert_eq!(*code, ResponseCode::MESSAGE_ILLEGAL);
            assert_eq!(remark.as_deref(), Some("too big for me"));
        }
        other => panic!("{other}"),
    }
    assert!(!e.is_retryable() && !e.possibly_stored());
    assert_eq!(illegal.received_count(RequestCode::SEND_MESSAGE_V2.0), 1);
}

#[test]
fn a_silent_broker_leaves_time_for_the_retry() {
    let silent = broker(|_| vec![Action::Never]);
    let good = broker(|_| vec![Action::Respond(send_ok(0, 7))]);
    let ns = namesrv(route(&[
        ("broker-a", &silent.addr()),
        ("broker-b", &good.addr()),
    ]));
    let p = producer(&ns, |c| c.send_msg_timeout = Duration::from_millis(900));
    for _ in 0..4 {
        let started = Instant::now();
        let r = p.send_sync(&Message::new("T", "x")).unwrap();
        assert_eq!(r.broker_name, "broker-b");
        // After a timed-out attempt the silent broker may have stored it too: the result says so.
        assert_eq!(r.possibly_duplicated, r.attempts > 1, "{r:?}");
        assert!(
            started.elapsed() < Duration::from_millis(900),
            "within the one deadline: {:?}",
            started.elapsed()
        );
    }
    // Every broker silent: one error after the deadline, flagged as possibly stored.
    let silent_b = broker(|_| vec![Action::Never]);
    let ns2 = namesrv(route(&[
        ("broker-a", &silent.addr()),
        ("broker-b", &silent_b.addr()),
    ]));
    let p2 = producer(&ns2, |c| c.send_msg_timeout = Duration::from_millis(600));
    let started = Instant::now();
    let e = p2.send_sync(&Message::new("T", "x")).unwrap_err();
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    assert!(e.is_timeout() && e.possibly_stored(), "{e}");
    assert!(
        matches!(e, ProducerError::AttemptsExhausted { attempts: 3, .. }),
        "{e}"
    );
}

#[test]
fn the_send_request_carries_what_java_sends() {
    let seen = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let s2 = seen.clone();
    let b = broker(move |r| {
        s2.lock().push(r.clone());
        vec![Action::Respond(send_ok(0, 1))]
    });
    let ns = namesrv(route(&[("broker-a", &b.addr())]));
    let p = producer(&ns, |_| {});
    let mut m = Message::new("T", vec![b'z'; 5000]);
    m.set_tags("TagA");
    m.set_keys(["k1"]);
    m.flag = 9;
    let r = p.send_sync(&m).unwrap();
    let req = seen.lock()[0].clone();
    let h: SendMessageRequestHeaderV2 = req.decode_header().unwrap();
    assert_eq!(h.0.producer_group, "rmq_test_group");
    assert_eq!(h.0.topic, "T");
    assert_eq!(h.0.default_topic, "TBW102");
    assert_eq!(h.0.default_topic_queue_nums, 4);
    assert_eq!(
        h.0.sys_flag, 0x301,
        "5000 bytes of one letter are compressed"
    );
    assert_eq!(h.0.flag, 9);
    assert_eq!(h.0.broker_name.as_deref(), Some("broker-a"));
    let props = rmq_protocol::message::decode_properties(h.0.properties.as_deref().unwrap());
    assert_eq!(props.get("UNIQ_KEY"), Some(r.msg_id.as_str()));
    assert_eq!(props.get("TAGS"), Some("TagA"));
    assert_eq!(props.get("KEYS"), Some("k1"));
    assert!(req.body.len() < 5000);
    assert_eq!(
        rmq_protocol::compress::decompress(&req.body, 0x301, 5000).unwrap(),
        vec![b'z'; 5000]
    );
    assert_eq!(m.uniq_key(), None, "the caller's message is not modified");
}

#[test]
fn validation_and_state_errors_come_before_any_network_io() {
    let b = broker(|_| vec![Action::Respond(send_ok(0, 1))]);
    let ns = namesrv(route(&[("broker-a", &b.addr())]));
    let cfg = ProducerConfig::new("rmq_test_group", ns.addr());
    let p = Producer::new(cfg).unwrap();
    assert_eq!(
        p.send_sync(&Message::new("T", "x")).unwrap_err(),
        ProducerError::State("not started")
    );
    p.start().unwrap();
    p.start().unwrap(); // idempotent
    let cases = [
        (Message::new("T", ""), ValidationError::EmptyBody),
        (Message::new("", "x"), ValidationError::BlankTopic),
        (
            Message::new("T", vec![0u8; 4 * 1024 * 1024 + 1]),
            ValidationError::BodyTooLarge {
                len: 4 * 1024 * 1024 + 1,
                max: 4 * 1024 * 1024,
            },
        ),
    ];
    for (m, want) in cases {
        assert_eq!(
            p.send_sync(&m).unwrap_err(),
            ProducerError::Validation(want.clone())
        );
        assert_eq!(
            p.send_oneway(&m).unwrap_err(),
            ProducerError::Validation(want)
        );
    }
    let mut sep = Message::new("T", "x");
    sep.set_tags("a\u{1}b");
    assert!(matches!(
        p.send_sync(&sep),
        Err(ProducerError::Validation(
            ValidationError::PropertySeparator { .. }
        ))
    ));
    assert_eq!(ns.received().len(), 0, "nothing reached the name server");
    assert_eq!(b.received_count(RequestCode::SEND_MESSAGE_V2.0), 0);
    p.shutdown();
    p.shutdown();
    assert_eq!(
        p.send_sync(&Message::new("T", "x")).unwrap_err(),
        ProducerError::State("shut down")
    );
    assert_eq!(p.start().unwrap_err(), ProducerError::State("shut down"));
    assert!(matches!(
        Producer::new(ProducerConfig::new("bad group", "127.0.0.1:9876")),
        Err(ProducerError::Config {
            field: "producer_group",
            ..
        })
    ));
}

#[test]
fn missing_topics_route_through_tbw102() {
    let b = broker(|_| vec![Action::Respond(send_ok(3, 0))]);
    let ns = namesrv(route(&[("broker-a", &b.addr())]));
    let p = producer(&ns, |_| {});
    let r = p.send_sync(&Message::new("Missing", "x")).unwrap();
    assert_eq!(r.topic, "Missing");
    let asked: Vec<_> = ns
        .received()
        .iter()
        .map(|r| r.ext_fields.get("topic").unwrap_or("").to_owned())
        .collect();
    assert_eq!(asked, ["Missing", "TBW102"]);
    assert!(
        p.get_stats()
            .routes
            .iter()
            .any(|s| s.topic == "Missing" && s.from_default_topic)
    );
}

#[test]
fn heartbeats_and_unregister_reach_every_broker() {
    let a = broker(|_| vec![Action::Respond(send_ok(0, 1))]);
    let b = broker(|_| vec![Action::Respond(send_ok(0, 1))]);
    let ns = namesrv(route(&[("broker-a", &a.addr()), ("broker-b", &b.addr())]));
    let p = producer(&ns, |_| {});
    p.send_sync(&Message::new("T", "x")).unwrap();
    assert_eq!(p.send_heartbeat_to_all_broker(), (2, 0));
    let hb = a
        .received()
        .into_iter()
        .find(|r| r.request_code() == RequestCode::HEART_BEAT)
        .unwrap();
    let data = HeartbeatData::decode(&hb.body).unwrap();
    assert_eq!(data.client_id, p.client_id());
    assert_eq!(data.producer_data_set[0].group_name, "rmq_test_group");
    p.shutdown();
    for s in [&a, &b] {
        assert_eq!(s.received_count(RequestCode::UNREGISTER_CLIENT.0), 1);
    }
    let stats = p.get_stats();
    assert!(!stats.running);
    // Each broker was greeted when the route named it, then heartbeated by the explicit round.
    assert_eq!(stats.heartbeats_ok, 4);
}

#[test]
fn a_failing_name_server_falls_over_to_the_next_and_keeps_cached_routes() {
    let b = broker(|_| vec![Action::Respond(send_ok(0, 1))]);
    let good = namesrv(route(&[("broker-a", &b.addr())]));
    let dead = MockServer::start(|_: &RemotingCommand| vec![Action::Close]).unwrap();
    let cfg = ProducerConfig {
        poll_name_server_interval: Duration::from_millis(50),
        update_topic_route_info_interval: Duration::from_millis(50),
        ..ProducerConfig::new("rmq_test_group", format!("{};{}", dead.addr(), good.addr()))
    };
    let p = Producer::new(cfg).unwrap();
    p.start().unwrap();
    p.send_sync(&Message::new("T", "x")).unwrap();
    good.stop();
    dead.stop();
    std::thread::sleep(Duration::from_millis(300)); // refreshes fail
    let r = p.send_sync(&Message::new("T", "y")).unwrap();
    assert_eq!(r.broker_name, "broker-a");
    let s = p.get_stats();
    let t = s.routes.iter().find(|r| r.topic == "T").unwrap();
    assert!(t.stale && t.last_error.is_some(), "{t:?}");
    p.shutdown();
}

#[test]
fn async_sends_retry_like_sync_ones() {
    let busy = broker(|_| vec![Action::Respond(error(ResponseCode::SYSTEM_BUSY, "busy"))]);
    let good = broker(|r| {
        vec![Action::RespondAfter(
            Duration::from_millis(u64::from(r.opaque as u8 % 5)),
            send_ok(0, 1),
        )]
    });
    let ns = namesrv(route(&[
        ("broker-a", &busy.addr()),
        ("broker-b", &good.addr()),
    ]));
    let p = producer(&ns, |_| {});
    let futures: Vec<_> = (0..50)
        .map(|i| p.send_async(&Message::new("T", format!("m{i}"))))
        .collect();
    for f in futures {
        assert_eq!(f.wait().unwrap().broker_name, "broker-b");
    }
    assert_eq!(
        block_on(p.send_async(&Message::new("T", "x")))
            .unwrap()
            .broker_name,
        "broker-b"
    );
    let (tx, rx) = std::sync::mpsc::channel();
    for _ in 0..10 {
        let tx = tx.clone();
        p.send_async_callback(&Message::new("T", "cb"), move |r| {
            tx.send(r.map(|r| r.broker_name)).unwrap()
        });
    }
    for _ in 0..10 {
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(5)).unwrap().unwrap(),
            "broker-b"
        );
    }
    // An outcome is delivered before its place is given back: flush waits for the places.
    assert!(p.flush(Instant::now() + Duration::from_secs(5)).is_empty());
    let s = p.get_stats();
    assert_eq!(s.sent, 61);
    assert_eq!(s.in_flight, 0);
    // Refusals complete at once, through the same channels.
    assert!(matches!(
        p.send_async(&Message::new("T", "")).wait(),
        Err(ProducerError::Validation(_))
    ));
    p.shutdown();
    assert_eq!(
        p.send_async(&Message::new("T", "x")).wait().unwrap_err(),
        ProducerError::State("shut down")
    );
}

#[test]
fn async_backpressure_fails_or_blocks() {
    let silent = broker(|_| vec![Action::Never]);
    let ns = namesrv(route(&[("broker-a", &silent.addr())]));
    let p = producer(&ns, |c| {
        c.async_send_semaphore = 2;
        c.async_send_block = false;
        c.retry_times = 0;
        c.send_msg_timeout = Duration::from_millis(300);
    });
    let a = p.send_async(&Message::new("T", "a"));
    let b = p.send_async(&Message::new("T", "b"));
    let e = p.send_async(&Message::new("T", "c")).wait().unwrap_err();
    assert_eq!(
        e,
        ProducerError::Overloaded {
            in_flight: 2,
            max: 2
        }
    );
    assert!(a.wait().unwrap_err().is_timeout());
    assert!(b.wait().unwrap_err().is_timeout());
    let blocking = producer(&ns, |c| {
        c.async_send_semaphore = 1;
        c.retry_times = 0;
        c.send_msg_timeout = Duration::from_millis(200);
    });
    let first = blocking.send_async(&Message::new("T", "a"));
    let started = Instant::now();
    // The future waits for room inside itself: the call returns at once.
    let second = blocking.send_async(&Message::new("T", "b"));
    assert!(
        started.elapsed() < Duration::from_millis(50),
        "{:?}",
        started.elapsed()
    );
    assert!(!second.is_done());
    // The callback form blocks its thread instead (backpressure for a sending loop), behind `second`.
    let (tx, rx) = std::sync::mpsc::channel();
    blocking.send_async_callback(&Message::new("T", "c"), move |r| {
        let _ = tx.send(r);
    });
    assert!(
        started.elapsed() >= Duration::from_millis(100),
        "{:?}",
        started.elapsed()
    );
    assert!(first.wait().unwrap_err().is_timeout());
    assert!(second.wait().is_err());
    assert!(rx.recv().unwrap().is_err());
    assert!(
        blocking
            .flush(Instant::now() + Duration::from_secs(1))
            .is_empty()
    );
}

#[test]
fn shutdown_delivers_every_outcome_of_1000_async_sends() {
    let silent = broker(|_| vec![Action::Never]);
    let ns = namesrv(route(&[("broker-a", &silent.addr())]));
    let p = producer(&ns, |c| c.send_msg_timeout = Duration::from_secs(30));
    let delivered = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let futures: Vec<_> = (0..500)
        .map(|i| p.send_async(&Message::new("T", format!("f{i}"))))
        .collect();
    for i in 0..500 {
        let d = delivered.clone();
        p.send_async_callback(&Message::new("T", format!("c{i}")), move |r| {
            assert!(r.is_err());
            d.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        });
    }
    assert_eq!(p.get_stats().in_flight, 1000);
    let started = Instant::now();
    p.shutdown_timeout(Duration::from_millis(200));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    for f in futures {
        let e = f.wait().unwrap_err();
        assert!(
            !e.is_timeout(),
            "failed by the shutdown, not by the 30 s deadline: {e}"
        );
    }
    assert_eq!(delivered.load(std::sync::atomic::Ordering::SeqCst), 500);
    assert_eq!(silent.received_count(RequestCode::UNREGISTER_CLIENT.0), 1);
    let s = p.get_stats();
    assert_eq!((s.failed, s.in_flight), (1000, 0));
}

#[test]
fn ordered_sends_stay_on_their_queue() {
    let seen = Arc::new(parking_lot::Mutex::new(Vec::<(String, i32)>::new()));
    let mk = |name: &'static str, seen: Arc<parking_lot::Mutex<Vec<(String, i32)>>>| {
        broker(move |r| {
            let h: SendMessageRequestHeaderV2 = r.decode_header().unwrap();
            seen.lock().push((name.to_owned(), h.0.queue_id));
            vec![Action::Respond(send_ok(h.0.queue_id, 1))]
        })
    };
    let a = mk("broker-a", seen.clone());
    let b = mk("broker-b", seen.clone());
    let ns = namesrv(route(&[("broker-a", &a.addr()), ("broker-b", &b.addr())]));
    let p = producer(&ns, |_| {});
    // A sharding key routes by Java's hash, whatever the configured strategy.
    for _ in 0..5 {
        let mut m = Message::new("T", "x");
        m.set_sharding_key("user-42");
        p.send_sync(&m).unwrap();
    }
    let first = seen.lock()[0].clone();
    assert!(seen.lock().iter().all(|q| *q == first), "{:?}", seen.lock());
    seen.lock().clear();

    let queues = p.fetch_publish_queues("T").unwrap();
    assert_eq!(queues.len(), 4);
    for q in &queues {
        let r = p.send_to_queue(&Message::new("T", "x"), q).unwrap();
        assert_eq!(
            (r.broker_name.as_str(), r.queue_id),
            (q.broker_name.as_str(), q.queue_id)
        );
    }
    assert_eq!(seen.lock().len(), 4);
    let r = p
        .send_with_selector(&Message::new("T", "x"), rmq_routing::select_by_hash, &3i32)
        .unwrap();
    assert_eq!(
        (r.broker_name.as_str(), r.queue_id),
        ("broker-b", 1),
        "index 3 of [a0, a1, b0, b1]"
    );
}

#[test]
fn selector_sends_do_not_move_to_another_broker() {
    let busy = broker(|_| vec![Action::Respond(error(ResponseCode::SYSTEM_BUSY, "busy"))]);
    let good = broker(|_| vec![Action::Respond(send_ok(0, 1))]);
    let ns = namesrv(route(&[
        ("broker-a", &busy.addr()),
        ("broker-b", &good.addr()),
    ]));
    let p = producer(&ns, |_| {});
    let first = |_: &[rmq_routing::PublishQueue], _: &Message, _: &()| Some(0);
    let e = p
        .send_with_selector(&Message::new("T", "x"), first, &())
        .unwrap_err();
    assert!(
        matches!(e, ProducerError::AttemptsExhausted { attempts: 1, .. }),
        "{e}"
    );
    assert_eq!(good.received_count(RequestCode::SEND_MESSAGE_V2.0), 0);
}

#[test]
fn batches_are_split_by_count_and_size() {
    let sizes = Arc::new(parking_lot::Mutex::new(Vec::<usize>::new()));
    let s2 = sizes.clone();
    let batch_broker = MockServer::start(move |r: &RemotingCommand| {
        if r.request_code() == RequestCode::SEND_BATCH_MESSAGE {
            let h: SendMessageRequestHeaderV2 = r.decode_header().unwrap();
            assert!(h.0.batch);
            assert_eq!(h.0.sys_flag, 0, "batches are not compressed");
            let msgs = rmq_protocol::batch::decode_batch(&h.0.topic, &r.body).unwrap();
            assert!(msgs.iter().all(|m| m.uniq_key().is_some()));
            s2.lock().push(msgs.len());
            return vec![Action::Respond(send_ok(0, 1))];
        }
        vec![Action::Respond(ok())]
    })
    .unwrap();
    let ns = namesrv(route(&[("broker-a", &batch_broker.addr())]));
    let p = producer(&ns, |c| {
        c.batch_size = 32;
        c.max_message_size = 64 * 1024;
    });
    let msgs: Vec<Message> = (0..100)
        .map(|i| Message::new("T", format!("m{i}")))
        .collect();
    let results = p.send_batch(&msgs).unwrap();
    assert_eq!(*sizes.lock(), vec![32, 32, 32, 4]);
    assert_eq!(results.len(), 4);
    assert_eq!(results[0].msg_id.split(',').count(), 32);
    sizes.lock().clear();
    // 10 bodies of 20 KiB: at most three fit under the 64 KiB limit.
    let big: Vec<Message> = (0..10)
        .map(|_| Message::new("T", vec![b'b'; 20 * 1024]))
        .collect();
    p.send_batch(&big).unwrap();
    assert_eq!(*sizes.lock(), vec![3, 3, 3, 1]);
    // Batch rules are checked before anything is sent.
    let mixed = [Message::new("T", "a"), Message::new("U", "b")];
    assert!(matches!(
        p.send_batch(&mixed),
        Err(ProducerError::Validation(ValidationError::Batch(_)))
    ));
    assert!(matches!(
        p.send_batch(&[]),
        Err(ProducerError::Validation(ValidationError::Batch(_)))
    ));
}
