//! The connection layer against the scriptable mock server: one test per acceptance point.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use bytes::Bytes;
use proptest::prelude::*;
use rmq_protocol::{RemotingCommand, RequestCode, ResponseCode, SerializeType};
use rmq_remoting::{OverloadPolicy, RemotingClient, RemotingConfig, RemotingError, RpcHook};
use rmq_testkit::{Action, MockServer, block_on, error, ok};

const SEC: Duration = Duration::from_secs(1);

fn client() -> RemotingClient {
    RemotingClient::new(RemotingConfig::default()).unwrap()
}

fn req(body: impl Into<Bytes>) -> RemotingCommand {
    RemotingCommand::request(RequestCode::SEND_MESSAGE_V2).with_body(body)
}

/// Echoes the request body, after a delay read from its first byte (milliseconds).
fn echo_with_delay(r: &RemotingCommand) -> Vec<Action> {
    let delay = Duration::from_millis(u64::from(r.body.first().copied().unwrap_or(0) % 20));
    vec![Action::RespondAfter(delay, ok().with_body(r.body.clone()))]
}

#[test]
fn pipelined_callers_share_one_connection_with_responses_out_of_order() {
    let server = MockServer::start(echo_with_delay).unwrap();
    let c = client();
    let addr = server.addr();
    let threads: Vec<_> = (0..16u8)
        .map(|t| {
            let (c, addr) = (c.clone(), addr.clone());
            std::thread::spawn(move || {
                for i in 0..40u8 {
                    let body = vec![i.wrapping_mul(7).wrapping_add(t), t, i];
                    let resp = c.invoke_sync(&addr, req(body.clone()), 5 * SEC).unwrap();
                    assert_eq!(
                        &resp.body[..],
                        &body[..],
                        "each caller gets its own response"
                    );
                }
            })
        })
        .collect();
    // Async handles in flight at the same time, collected in reverse order.
    let futures: Vec<_> = (0..50u8)
        .map(|i| (i, c.invoke_async(&addr, req(vec![19 - i % 20, i]), 5 * SEC)))
        .collect();
    for (i, f) in futures.into_iter().rev() {
        assert_eq!(f.wait().unwrap().body[1], i);
    }
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(server.connections_accepted(), 1);
    assert_eq!(c.connection_count(), 1);
    assert_eq!(c.in_flight(), (0, 0), "every permit released");
    c.shutdown();
}

/// Long bodies go out from their own buffers (a vectored write) between short frames copied into the shared
/// buffer; every frame arrives whole and in one piece, whatever the interleaving.
#[test]
fn long_and_short_bodies_interleave_intact() {
    let server = MockServer::start(echo_with_delay).unwrap();
    let c = client();
    let addr = server.addr();
    let threads: Vec<_> = (0..8u8)
        .map(|t| {
            let (c, addr) = (c.clone(), addr.clone());
            std::thread::spawn(move || {
                for i in 0..30usize {
                    // 3 bytes, 4095 (copied), 4096 and 70,000 (written from their own buffers).
                    let len = [3, 4095, 4096, 70_000][(i + usize::from(t)) % 4];
                    let body: Vec<u8> = (0..len)
                        .map(|k| (k as u8).wrapping_mul(31).wrapping_add(t))
                        .collect();
                    let mut b = body.clone();
                    b[0] = 0; // no echo delay
                    let resp = c.invoke_sync(&addr, req(b.clone()), 5 * SEC).unwrap();
                    assert_eq!(resp.body.len(), len);
                    assert!(
                        resp.body[..] == b[..],
                        "thread {t} frame {i} of {len} bytes"
                    );
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(server.connections_accepted(), 1);
    c.shutdown();
}

#[test]
fn timeout_then_late_response_is_dropped() {
    let server = MockServer::start(|r: &RemotingCommand| {
        if r.body.as_ref() == b"slow" {
            vec![Action::RespondAfter(
                Duration::from_millis(300),
                ok().with_body("late"),
            )]
        } else {
            vec![Action::Respond(ok().with_body("fast"))]
        }
    })
    .unwrap();
    let c = client();
    let started = Instant::now();
    let e = c
        .invoke_sync(&server.addr(), req("slow"), Duration::from_millis(50))
        .unwrap_err();
    assert!(e.is_timeout(), "{e}");
    assert!(started.elapsed() < Duration::from_millis(250));
    // The async form times out through the timer thread.
    let f = c.invoke_async(&server.addr(), req("slow"), Duration::from_millis(50));
    assert!(f.wait().unwrap_err().is_timeout());
    std::thread::sleep(Duration::from_millis(400)); // the late responses arrive and are discarded
    assert_eq!(
        &c.invoke_sync(&server.addr(), req("x"), SEC).unwrap().body[..],
        b"fast"
    );
    assert_eq!(c.in_flight(), (0, 0));
}

#[test]
fn poisoning_fails_every_waiter_at_once() {
    let server = MockServer::start(|_: &RemotingCommand| vec![Action::Never]).unwrap();
    let c = client();
    let futures: Vec<_> = (0..20)
        .map(|_| c.invoke_async(&server.addr(), req("x"), 30 * SEC))
        .collect();
    let waiter = {
        let (c, addr) = (c.clone(), server.addr());
        std::thread::spawn(move || c.invoke_sync(&addr, req("y"), 30 * SEC))
    };
    std::thread::sleep(Duration::from_millis(100));
    let started = Instant::now();
    server.close_connections();
    for f in futures {
        let e = f.wait().unwrap_err();
        assert!(matches!(e, RemotingError::ConnectionLost { .. }), "{e}");
    }
    assert!(matches!(
        waiter.join().unwrap(),
        Err(RemotingError::ConnectionLost { .. })
    ));
    assert!(
        started.elapsed() < SEC,
        "nobody waited for the 30 s timeout"
    );
    assert_eq!(c.in_flight(), (0, 0));
}

#[test]
fn garbage_and_truncated_frames_poison_the_connection() {
    let server = MockServer::start(|r: &RemotingCommand| match r.body.as_ref() {
        b"garbage" => vec![Action::Raw(vec![0, 0, 0, 8, 9, 0, 0, 0, 1, 2, 3, 4])],
        b"huge" => vec![Action::Raw(vec![0x7f, 0xff, 0xff, 0xff])],
        b"half" => vec![Action::CloseMidFrame(ok().with_body(vec![1u8; 100]))],
        _ => vec![Action::Respond(ok())],
    })
    .unwrap();
    let c = client();
    for (body, reason) in [
        ("garbage", "malformed frame"),
        ("huge", "frame too large"),
        ("half", "closed by peer"),
    ] {
        let e = c
            .invoke_sync(&server.addr(), req(body), 5 * SEC)
            .unwrap_err();
        match &e {
            RemotingError::ConnectionLost { reason: r, .. } => {
                assert!(r.contains(reason), "{body}: {e}")
            }
            other => panic!("{body}: {other}"),
        }
        // The next call opens a fresh connection.
        c.invoke_sync(&server.addr(), req("x"), 5 * SEC).unwrap();
    }
}

#[test]
fn error_codes_are_responses_not_transport_errors() {
    let server = MockServer::start(|_: &RemotingCommand| {
        vec![Action::Respond(error(
            ResponseCode::SYSTEM_BUSY,
            "[REJECTREQUEST]system busy",
        ))]
    })
    .unwrap();
    let r = client().invoke_sync(&server.addr(), req("x"), SEC).unwrap();
    assert_eq!(r.response_code(), ResponseCode::SYSTEM_BUSY);
    assert_eq!(r.remark.as_deref(), Some("[REJECTREQUEST]system busy"));
}

#[test]
fn reconnects_after_the_server_restarts() {
    let server = MockServer::start(|_: &RemotingCommand| vec![Action::Respond(ok())]).unwrap();
    let addr = server.addr();
    let c = RemotingClient::new(RemotingConfig {
        reconnect_backoff: Duration::from_millis(50),
        ..Default::default()
    })
    .unwrap();
    c.invoke_sync(&addr, req("x"), SEC).unwrap();
    server.stop();
    let e = c.invoke_sync(&addr, req("x"), SEC).unwrap_err();
    assert!(e.is_connection(), "{e}");
    // While the server is down, callers fail fast instead of storming it.
    let _ = c.invoke_sync(&addr, req("x"), SEC);
    let e = c.invoke_sync(&addr, req("x"), SEC).unwrap_err();
    assert!(
        matches!(
            e,
            RemotingError::Backoff { .. } | RemotingError::Connect { .. }
        ),
        "{e}"
    );
    let server = MockServer::start_on(&addr, |_: &RemotingCommand| {
        vec![Action::Respond(ok().with_body("again"))]
    })
    .unwrap();
    let deadline = Instant::now() + 5 * SEC;
    loop {
        match c.invoke_sync(&addr, req("x"), SEC) {
            Ok(r) => {
                assert_eq!(&r.body[..], b"again");
                break;
            }
            Err(e) if Instant::now() < deadline && e.is_connection() => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Err(e) => panic!("did not reconnect: {e}"),
        }
    }
    assert_eq!(server.connections_accepted(), 1);
}

#[test]
fn connect_is_single_flight() {
    let server = MockServer::start(|_: &RemotingCommand| vec![Action::Respond(ok())]).unwrap();
    let c = client();
    let barrier = Arc::new(Barrier::new(24));
    let threads: Vec<_> = (0..24)
        .map(|_| {
            let (c, addr, b) = (c.clone(), server.addr(), barrier.clone());
            std::thread::spawn(move || {
                b.wait();
                c.invoke_sync(&addr, req("x"), 5 * SEC).unwrap();
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(server.connections_accepted(), 1);
}

#[test]
fn backpressure_fail_mode() {
    let server = MockServer::start(|_: &RemotingCommand| vec![Action::Never]).unwrap();
    let cfg = RemotingConfig {
        max_in_flight: 2,
        overload: OverloadPolicy::Fail,
        ..Default::default()
    };
    let c = RemotingClient::new(cfg).unwrap();
    let a = c.invoke_async(&server.addr(), req("a"), 10 * SEC);
    let b = c.invoke_async(&server.addr(), req("b"), 10 * SEC);
    let started = Instant::now();
    let e = c
        .invoke_async(&server.addr(), req("c"), 10 * SEC)
        .wait()
        .unwrap_err();
    assert!(
        matches!(
            e,
            RemotingError::Overloaded {
                in_flight: 2,
                max: 2,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.is_not_sent());
    assert!(started.elapsed() < Duration::from_millis(200));
    drop(a); // abandoning a request frees its room
    c.invoke_async(&server.addr(), req("d"), 10 * SEC)
        .wait_timeout(Duration::from_millis(20))
        .unwrap_err();
    drop(b);
    assert_eq!(c.in_flight(), (0, 0));
}

#[test]
fn backpressure_block_mode() {
    let server = MockServer::start(|r: &RemotingCommand| {
        if r.body.as_ref() == b"slow" {
            vec![Action::RespondAfter(Duration::from_millis(200), ok())]
        } else {
            vec![Action::Respond(ok())]
        }
    })
    .unwrap();
    let cfg = RemotingConfig {
        max_in_flight: 1,
        ..Default::default()
    };
    let c = RemotingClient::new(cfg).unwrap();
    let slow = c.invoke_async(&server.addr(), req("slow"), 10 * SEC);
    // Blocks until the slow one completes, then goes through.
    let started = Instant::now();
    c.invoke_sync(&server.addr(), req("x"), 5 * SEC).unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(150),
        "waited for room"
    );
    slow.wait().unwrap();
    // Blocking gives up at the caller's deadline.
    let hog = c.invoke_async(&server.addr(), req("slow"), 10 * SEC);
    let e = c
        .invoke_sync(&server.addr(), req("x"), Duration::from_millis(50))
        .unwrap_err();
    assert!(matches!(e, RemotingError::Overloaded { .. }), "{e}");
    hog.wait().unwrap();
}

#[test]
fn server_requests_are_dispatched_or_refused() {
    let server = MockServer::start(|_: &RemotingCommand| vec![Action::Respond(ok())]).unwrap();
    let c = client();
    let seen = Arc::new(AtomicUsize::new(0));
    let s2 = seen.clone();
    c.register_handler(
        RequestCode::CHECK_TRANSACTION_STATE,
        move |_addr: &str, r: RemotingCommand| {
            s2.fetch_add(1, Ordering::SeqCst);
            assert!(r.is_oneway());
            None
        },
    );
    c.register_handler(
        RequestCode::PUSH_REPLY_MESSAGE_TO_CLIENT,
        |_addr: &str, _r: RemotingCommand| Some(ok().with_body("got it")),
    );
    c.invoke_sync(&server.addr(), req("hello"), SEC).unwrap(); // opens the connection

    let mut check = RemotingCommand::request(RequestCode::CHECK_TRANSACTION_STATE).with_opaque(501);
    check.mark_oneway();
    server.push_request(&check);
    server.push_request(
        &RemotingCommand::request(RequestCode::PUSH_REPLY_MESSAGE_TO_CLIENT).with_opaque(502),
    );
    server.push_request(&RemotingCommand::request(RequestCode(999)).with_opaque(503));
    let mut unknown_oneway = RemotingCommand::request(RequestCode(998)).with_opaque(504);
    unknown_oneway.mark_oneway();
    server.push_request(&unknown_oneway);

    let deadline = Instant::now() + 5 * SEC;
    while server.client_responses().len() < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(100)); // room for a wrong extra answer to arrive
    let mut responses = server.client_responses();
    responses.sort_by_key(|r| r.opaque);
    assert_eq!(responses.len(), 2, "{responses:?}");
    assert_eq!(
        (
            responses[0].opaque,
            responses[0].code,
            &responses[0].body[..]
        ),
        (502, 0, &b"got it"[..])
    );
    assert_eq!(responses[1].opaque, 503);
    assert_eq!(
        responses[1].response_code(),
        ResponseCode::REQUEST_CODE_NOT_SUPPORTED
    );
    assert_eq!(
        responses[1].remark.as_deref(),
        Some(" request type 999 not supported")
    );
    assert!(responses.iter().all(|r| r.is_response()));
    assert_eq!(seen.load(Ordering::SeqCst), 1);
}

#[test]
fn oneway_expects_no_response() {
    let server = MockServer::start(|_: &RemotingCommand| vec![Action::Never]).unwrap();
    let c = client();
    for _ in 0..10 {
        c.invoke_oneway(&server.addr(), req("fire"), SEC).unwrap();
    }
    let deadline = Instant::now() + 5 * SEC;
    while server.received().len() < 10 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let got = server.received();
    assert_eq!(got.len(), 10);
    assert!(got.iter().all(|r| r.is_oneway() && !r.is_response()));
    assert_eq!(c.in_flight(), (0, 0), "oneway keeps nothing pending");
}

#[test]
fn shutdown_fails_pending_requests_and_never_hangs() {
    let server = MockServer::start(|_: &RemotingCommand| vec![Action::Never]).unwrap();
    let c = client();
    let futures: Vec<_> = (0..10)
        .map(|_| c.invoke_async(&server.addr(), req("x"), 60 * SEC))
        .collect();
    let done = Arc::new(AtomicUsize::new(0));
    let d2 = done.clone();
    c.invoke_async_callback(&server.addr(), req("cb"), 60 * SEC, move |r| {
        assert!(matches!(r, Err(RemotingError::Shutdown)));
        d2.fetch_add(1, Ordering::SeqCst);
    });
    let started = Instant::now();
    c.shutdown();
    c.shutdown(); // idempotent
    assert!(started.elapsed() < 2 * SEC);
    for f in futures {
        assert_eq!(f.wait().unwrap_err(), RemotingError::Shutdown);
    }
    assert_eq!(done.load(Ordering::SeqCst), 1, "the callback ran once");
    assert_eq!(
        c.invoke_sync(&server.addr(), req("x"), SEC).unwrap_err(),
        RemotingError::Shutdown
    );
}

#[test]
fn futures_work_on_any_executor() {
    let server = MockServer::start(echo_with_delay).unwrap();
    let c = client();
    let r = block_on(c.invoke_async(&server.addr(), req(vec![15u8, 1]), 5 * SEC)).unwrap();
    assert_eq!(&r.body[..], &[15, 1]);
    let silent = MockServer::start(|_: &RemotingCommand| vec![Action::Never]).unwrap();
    let e =
        block_on(c.invoke_async(&silent.addr(), req("x"), Duration::from_millis(50))).unwrap_err();
    assert!(
        e.is_timeout(),
        "the timer wakes a pending future at its deadline: {e}"
    );
}

#[test]
fn callbacks_run_once_with_the_response() {
    let server = MockServer::start(echo_with_delay).unwrap();
    let c = client();
    let (tx, rx) = std::sync::mpsc::channel();
    for i in 0..10u8 {
        let tx = tx.clone();
        c.invoke_async_callback(&server.addr(), req(vec![i, i]), 5 * SEC, move |r| {
            tx.send(r.unwrap().body[1]).unwrap()
        });
    }
    let mut got: Vec<u8> = (0..10).map(|_| rx.recv_timeout(5 * SEC).unwrap()).collect();
    got.sort();
    assert_eq!(got, (0..10).collect::<Vec<_>>());
    // Unreachable address: the callback still runs, with the error.
    let (tx, rx) = std::sync::mpsc::channel();
    c.invoke_async_callback("127.0.0.1:1", req("x"), SEC, move |r| {
        tx.send(r.is_err()).unwrap()
    });
    assert!(rx.recv_timeout(5 * SEC).unwrap());
}

#[test]
fn hooks_and_header_type_apply_to_every_request() {
    struct Stamp;
    impl RpcHook for Stamp {
        fn before_request(&self, _addr: &str, r: &mut RemotingCommand) {
            r.ext_fields.insert("stamped", "yes");
        }
    }
    let server = MockServer::start(|_: &RemotingCommand| vec![Action::Respond(ok())]).unwrap();
    let c = RemotingClient::new(RemotingConfig {
        serialize_type: SerializeType::ROCKETMQ,
        ..Default::default()
    })
    .unwrap();
    c.add_hook(Arc::new(Stamp));
    c.invoke_sync(&server.addr(), req("x"), SEC).unwrap();
    c.invoke_oneway(&server.addr(), req("y"), SEC).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let got = server.received();
    assert_eq!(got.len(), 2);
    for r in got {
        assert_eq!(r.ext_fields.get("stamped"), Some("yes"));
        assert_eq!(r.serialize_type, SerializeType::ROCKETMQ);
    }
}

#[test]
fn idle_connections_are_closed() {
    let server = MockServer::start(|_: &RemotingCommand| vec![Action::Respond(ok())]).unwrap();
    let c = RemotingClient::new(RemotingConfig {
        idle_timeout: Duration::from_millis(100),
        ..Default::default()
    })
    .unwrap();
    c.invoke_sync(&server.addr(), req("x"), SEC).unwrap();
    assert_eq!(c.connection_count(), 1);
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(c.connection_count(), 0);
    c.invoke_sync(&server.addr(), req("x"), SEC).unwrap();
    assert_eq!(server.connections_accepted(), 2);
}

#[test]
fn dropped_handles_leave_nothing_behind() {
    let server = MockServer::start(|_: &RemotingCommand| {
        vec![Action::RespondAfter(Duration::from_millis(50), ok())]
    })
    .unwrap();
    let c = client();
    for _ in 0..100 {
        drop(c.invoke_async(&server.addr(), req("x"), 10 * SEC));
    }
    assert_eq!(c.in_flight(), (0, 0));
    std::thread::sleep(Duration::from_millis(150)); // the late answers are discarded
    c.invoke_sync(&server.addr(), req("x"), SEC).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Whatever bytes a server sends back, the client neither panics nor hangs: the call ends with a
    /// response or an error, and the client keeps working.
    #[test]
    fn random_bytes_from_the_socket_never_panic(garbage in prop::collection::vec(any::<u8>(), 0..200), prefix in any::<bool>()) {
        let mut bytes = garbage.clone();
        if prefix {
            // A plausible length prefix, so the decoder reaches the header parsers.
            let mut framed = ((garbage.len() + 4) as u32).to_be_bytes().to_vec();
            framed.extend_from_slice(&((garbage.len().min(0xFFFFFF)) as u32 & 0x00FF_FFFF).to_be_bytes());
            framed.extend_from_slice(&garbage);
            bytes = framed;
        }
        let server = MockServer::start(move |_: &RemotingCommand| vec![Action::Raw(bytes.clone()), Action::Close]).unwrap();
        let c = client();
        let _ = c.invoke_sync(&server.addr(), req("x"), Duration::from_millis(500));
        c.shutdown();
    }
}

#[test]
fn several_connections_per_address_share_the_load() {
    let server = MockServer::start(echo_with_delay).unwrap();
    let c = RemotingClient::new(RemotingConfig {
        connections_per_addr: 3,
        ..Default::default()
    })
    .unwrap();
    for i in 0..30u8 {
        assert_eq!(
            c.invoke_sync(&server.addr(), req(vec![0, i]), SEC)
                .unwrap()
                .body[1],
            i
        );
    }
    assert_eq!(server.connections_accepted(), 3);
    assert_eq!(c.connection_count(), 3);
    c.close_connection(&server.addr());
    assert_eq!(c.connection_count(), 0);
    c.invoke_sync(&server.addr(), req(vec![0, 1]), SEC).unwrap();
    c.shutdown();
}

/// A callback the timer thread runs (the request timed out) may shut the client down: the timer thread is
/// not joined from itself.
#[test]
fn a_callback_on_the_timer_thread_may_shut_the_client_down() {
    let server = MockServer::start(|_: &RemotingCommand| vec![Action::Never]).unwrap();
    let c = client();
    let (tx, rx) = std::sync::mpsc::channel();
    let c2 = c.clone();
    c.invoke_async_callback(
        &server.addr(),
        req(vec![1]),
        Duration::from_millis(50),
        move |r| {
            let thread = std::thread::current().name().map(str::to_owned);
            c2.shutdown();
            tx.send((r.map(|_| ()), thread)).unwrap();
        },
    );
    let (r, thread) = rx.recv_timeout(5 * SEC).unwrap();
    assert!(r.unwrap_err().is_timeout());
    assert_eq!(thread.as_deref(), Some("rmq-remoting-timer"));
}

/// A synchronous call to an address in its reconnect backoff waits for the backoff to end (within its
/// timeout) and connects, instead of failing at once with `Backoff` (which burned a producer's retries
/// in microseconds).
#[test]
fn a_sync_call_waits_out_the_reconnect_backoff_within_its_timeout() {
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let c = client();
    let e = c.invoke_sync(&addr, req(vec![1]), SEC).unwrap_err();
    assert!(matches!(e, RemotingError::Connect { .. }), "{e}");
    let server = MockServer::start_on(&addr, echo_with_delay).unwrap();
    let started = Instant::now();
    let resp = c.invoke_sync(&addr, req(vec![0, 7]), 2 * SEC).unwrap();
    assert_eq!(&resp.body[..], &[0, 7]);
    assert!(started.elapsed() < 2 * SEC);
    // A backoff longer than the call's timeout still fails at once, saying so.
    drop(server);
    let c2 = client();
    let gone = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let _ = c2.invoke_sync(&gone, req(vec![1]), SEC).unwrap_err();
    let started = Instant::now();
    let e = c2
        .invoke_sync(&gone, req(vec![1]), Duration::from_millis(20))
        .unwrap_err();
    assert!(matches!(e, RemotingError::Backoff { .. }), "{e}");
    assert!(started.elapsed() < Duration::from_millis(20));
    c.shutdown();
    c2.shutdown();
}

/// A pipelined frame left for the reader right after an answer (answers were flowing), when no answer
/// follows: the reader, asleep, would never write it, so the timer must (within a few ticks, not at the
/// request's timeout).
#[test]
fn a_frame_left_behind_unanswered_requests_is_written_by_the_timer() {
    let server = MockServer::start(|r: &RemotingCommand| match r.body.first() {
        Some(0) => vec![Action::Never],
        _ => vec![Action::Respond(ok().with_body(r.body.clone()))],
    })
    .unwrap();
    let c = client();
    let addr = server.addr();
    let silent: Vec<_> = (0..6)
        .map(|_| c.invoke_async(&addr, req(vec![0u8]), 30 * SEC))
        .collect();
    // An answer, then (while it counts as recent) a pipelined request behind the six silent ones: it is
    // left for the reader, which has already gone back to reading.
    c.invoke_sync(&addr, req(vec![2u8]), 5 * SEC).unwrap();
    std::thread::sleep(Duration::from_micros(200));
    let started = Instant::now();
    let answered = c.invoke_async(&addr, req(vec![1u8, 7]), 30 * SEC);
    let r = answered
        .wait_timeout(2 * SEC)
        .expect("answered within 2 s, not left unwritten until its 30 s timeout");
    assert_eq!(&r.body[..], &[1, 7]);
    assert!(started.elapsed() < 2 * SEC);
    // The writer thread that wrote it ends with the connection at once, not at its idle timeout.
    let stopping = Instant::now();
    c.shutdown();
    assert!(
        stopping.elapsed() < SEC / 2,
        "shutdown took {:?}",
        stopping.elapsed()
    );
    for f in silent {
        assert!(matches!(f.wait(), Err(RemotingError::Shutdown)));
    }
}

/// The reader thread writes what pipelining callers leave, but never blocks on a full socket: a server
/// that stops reading while it still answers must get its answers read. Here a callback (on the reader
/// thread) queues 48 MiB while the server reads nothing for 1.4 s, more than the socket buffers
/// hold; the two answers the server sends at 0.7 s must arrive before it reads again.
#[test]
fn the_reader_never_blocks_on_a_full_socket() {
    use rmq_protocol::FrameDecoder;
    use std::io::{Read, Write};

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let big = 48usize;
    let total = 3 + big;
    let resumed_at = Arc::new(parking_lot::Mutex::new(None::<Instant>));
    let resumed = resumed_at.clone();
    let server = std::thread::spawn(move || {
        let (mut sock, _) = listener.accept().unwrap();
        let decoder = FrameDecoder::new(1 << 30);
        let mut buf = bytes::BytesMut::new();
        let mut chunk = vec![0u8; 1 << 16];
        let mut next = |sock: &mut std::net::TcpStream, buf: &mut bytes::BytesMut| loop {
            if let Some(cmd) = decoder.decode(buf).unwrap() {
                return cmd;
            }
            let n = sock.read(&mut chunk).unwrap();
            assert!(n > 0, "client closed");
            buf.extend_from_slice(&chunk[..n]);
        };
        let answer = |sock: &mut std::net::TcpStream, req: &RemotingCommand| {
            let mut resp = ok();
            resp.opaque = req.opaque;
            resp.mark_response();
            let mut out = bytes::BytesMut::new();
            resp.encode(&mut out).unwrap();
            sock.write_all(&out).unwrap();
        };
        let first: Vec<RemotingCommand> = (0..3).map(|_| next(&mut sock, &mut buf)).collect();
        answer(&mut sock, &first[0]);
        std::thread::sleep(Duration::from_millis(700));
        answer(&mut sock, &first[1]);
        answer(&mut sock, &first[2]);
        std::thread::sleep(Duration::from_millis(700));
        *resumed.lock() = Some(Instant::now());
        for _ in 3..total {
            let r = next(&mut sock, &mut buf);
            answer(&mut sock, &r);
        }
    });
    let c = client();
    let (tx, rx) = std::sync::mpsc::channel::<(usize, Instant, bool)>();
    let (c2, addr2, tx2) = (c.clone(), addr.clone(), tx.clone());
    let body = Bytes::from(vec![9u8; 1 << 20]);
    c.invoke_async_callback(&addr, req("a"), 30 * SEC, move |r| {
        // On the reader thread: queue many large frames (quickly: within a timer tick).
        for i in 0..big {
            let tx = tx2.clone();
            c2.invoke_async_callback(&addr2, req(body.clone()), 30 * SEC, move |r| {
                tx.send((3 + i, Instant::now(), r.is_ok())).unwrap()
            });
        }
        tx2.send((0, Instant::now(), r.is_ok())).unwrap();
    });
    for k in 1..3 {
        let tx = tx.clone();
        c.invoke_async_callback(&addr, req("b"), 30 * SEC, move |r| {
            tx.send((k, Instant::now(), r.is_ok())).unwrap()
        });
    }
    let mut done = Vec::new();
    while done.len() < total {
        done.push(
            rx.recv_timeout(20 * SEC)
                .expect("every request is answered"),
        );
    }
    server.join().unwrap();
    assert!(done.iter().all(|d| d.2), "every answer is a success");
    let resumed = resumed_at.lock().unwrap();
    for k in 1..3 {
        let at = done.iter().find(|d| d.0 == k).unwrap().1;
        assert!(
            at < resumed,
            "answer {k} was read {:?} after the server resumed reading: the reader was blocked",
            at - resumed
        );
    }
    c.shutdown();
}

/// A pipelined frame behind slow answers is written at once, not held for the next answer: only while
/// answers flow densely does a frame wait for the reader. Here every answer takes 300 ms and the timer
/// (which would write a held frame) ticks once a second; the sixth request must reach the server in
/// well under 300 ms.
#[test]
fn a_frame_behind_slow_answers_is_not_held_for_them() {
    let received = Arc::new(parking_lot::Mutex::new(Vec::<(u8, Instant)>::new()));
    let seen = received.clone();
    let server = MockServer::start(move |r: &RemotingCommand| {
        seen.lock()
            .push((r.body.first().copied().unwrap_or(0), Instant::now()));
        vec![Action::RespondAfter(Duration::from_millis(300), ok())]
    })
    .unwrap();
    let c = RemotingClient::new(RemotingConfig {
        timer_tick: SEC,
        ..RemotingConfig::default()
    })
    .unwrap();
    let addr = server.addr();
    // One answered exchange first, so the connection has read something (long before the sends below).
    c.invoke_sync(&addr, req(vec![0u8]), 5 * SEC).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let mut sent = Vec::new();
    let futures: Vec<_> = (1..=8u8)
        .map(|i| {
            sent.push((i, Instant::now()));
            c.invoke_async(&addr, req(vec![i]), 5 * SEC)
        })
        .collect();
    let deadline = Instant::now() + 2 * SEC;
    while received.lock().len() < 9 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let got = received.lock().clone();
    for (i, at) in sent {
        let arrived = got.iter().find(|(b, _)| *b == i).map(|(_, t)| *t);
        let arrived = arrived.unwrap_or_else(|| panic!("request {i} never reached the server"));
        assert!(
            arrived.saturating_duration_since(at) < Duration::from_millis(150),
            "request {i} reached the server {:?} after it was sent: held for an answer",
            arrived.saturating_duration_since(at)
        );
    }
    for f in futures {
        f.wait().unwrap();
    }
    c.shutdown();
}

/// A server shutting down answers GO_AWAY (code 1500) and takes no new requests on that connection: the
/// next request dials a new one, as Java's client does (the old one is closed by the timer once nothing
/// is pending on it). Before: every later request went to the draining connection.
#[test]
fn go_away_moves_new_requests_to_a_new_connection() {
    let answered = Arc::new(AtomicUsize::new(0));
    let n = answered.clone();
    let server = MockServer::start(move |_r: &RemotingCommand| {
        if n.fetch_add(1, Ordering::SeqCst) == 0 {
            vec![Action::Respond(error(
                ResponseCode::GO_AWAY,
                "please go away",
            ))]
        } else {
            vec![Action::Respond(ok())]
        }
    })
    .unwrap();
    let c = client();
    let addr = server.addr();
    let first = c.invoke_sync(&addr, req("a"), SEC).unwrap();
    assert_eq!(first.response_code(), ResponseCode::GO_AWAY);
    assert!(
        !c.is_connected(&addr),
        "a connection that went away takes no new request"
    );
    let second = c.invoke_sync(&addr, req("b"), SEC).unwrap();
    assert_eq!(second.response_code(), ResponseCode::SUCCESS);
    assert_eq!(
        server.connections_accepted(),
        2,
        "the second request dialled anew"
    );
    assert_eq!(c.connection_count(), 1);
    c.shutdown();
}

/// Before: a callback that panicked unwound through the connection's reader thread, which died with it;
/// every later request on that connection waited for its timeout. Now the panic is caught and counted.
#[test]
fn a_panicking_callback_does_not_kill_the_reader_thread() {
    let server = MockServer::start(|_: &RemotingCommand| vec![Action::Respond(ok())]).unwrap();
    let c = client();
    let addr = server.addr();
    c.invoke_sync(&addr, req("open"), SEC).unwrap();
    let before = rmq_remoting::user_code_panics();
    c.invoke_async_callback(&addr, req("x"), SEC, |_| panic!("a careless callback"));
    for _ in 0..3 {
        let r = c.invoke_sync(&addr, req("after"), SEC);
        assert_eq!(r.unwrap().response_code(), ResponseCode::SUCCESS);
    }
    assert!(rmq_remoting::user_code_panics() > before);
    c.shutdown();
}

/// Before: a request handler that panicked killed the reader thread the same way. Now the server gets
/// SYSTEM_ERROR and the connection goes on.
#[test]
fn a_panicking_handler_answers_an_error_and_the_connection_goes_on() {
    let server = MockServer::start(|_: &RemotingCommand| vec![Action::Respond(ok())]).unwrap();
    let c = client();
    let addr = server.addr();
    c.register_handler(
        RequestCode::PUSH_REPLY_MESSAGE_TO_CLIENT,
        |_addr: &str, _r: RemotingCommand| -> Option<RemotingCommand> {
            panic!("a careless handler")
        },
    );
    c.invoke_sync(&addr, req("open"), SEC).unwrap();
    server.push_request(
        &RemotingCommand::request(RequestCode::PUSH_REPLY_MESSAGE_TO_CLIENT).with_opaque(77),
    );
    let deadline = Instant::now() + 5 * SEC;
    while server.client_responses().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let answers = server.client_responses();
    assert_eq!(answers.len(), 1);
    assert_eq!(answers[0].response_code(), ResponseCode::SYSTEM_ERROR);
    assert_eq!(
        c.invoke_sync(&addr, req("after"), SEC)
            .unwrap()
            .response_code(),
        ResponseCode::SUCCESS
    );
    c.shutdown();
}

/// Before: a hook that panicked unwound through the caller, which for a retried async send is the
/// producer's worker thread. Now the request fails, not sent, with a typed error.
#[test]
fn a_panicking_hook_fails_the_request_unsent() {
    struct Bad;
    impl RpcHook for Bad {
        fn before_request(&self, _addr: &str, _request: &mut RemotingCommand) {
            panic!("a careless hook")
        }
    }
    let server = MockServer::start(|_: &RemotingCommand| vec![Action::Respond(ok())]).unwrap();
    let c = client();
    c.add_hook(Arc::new(Bad));
    let e = c.invoke_sync(&server.addr(), req("x"), SEC).unwrap_err();
    assert_eq!(e, RemotingError::HookPanicked);
    assert!(e.is_not_sent());
    let (tx, rx) = std::sync::mpsc::channel();
    c.invoke_async_callback(&server.addr(), req("y"), SEC, move |r| {
        tx.send(r).unwrap();
    });
    assert_eq!(
        rx.recv_timeout(SEC).unwrap().unwrap_err(),
        RemotingError::HookPanicked
    );
    assert_eq!(c.in_flight(), (0, 0), "permits released");
    assert!(
        server
            .received()
            .iter()
            .all(|r| &r.body[..] != b"x" && &r.body[..] != b"y")
    );
    c.shutdown();
}

/// Before: `Instant::now() + Duration::MAX` panicked in the caller. A timeout of `Duration::MAX` means "no
/// limit" and saturates.
#[test]
fn duration_max_timeouts_saturate() {
    let server = MockServer::start(|_: &RemotingCommand| vec![Action::Respond(ok())]).unwrap();
    let c = client();
    let addr = server.addr();
    let f = c.invoke_async(&addr, req("a"), Duration::MAX);
    assert_eq!(
        f.wait_timeout(Duration::MAX).unwrap().response_code(),
        ResponseCode::SUCCESS
    );
    c.invoke_sync(&addr, req("b"), Duration::MAX).unwrap();
    c.invoke_oneway(&addr, req("c"), Duration::MAX).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    c.invoke_async_callback(&addr, req("d"), Duration::MAX, move |r| {
        tx.send(r.is_ok()).unwrap();
    });
    assert_eq!(rx.recv_timeout(SEC), Ok(true));
    c.shutdown();
}

/// Before: dropping the last handle without `shutdown` dropped the pending requests with their callbacks
/// uncalled (and futures waiting until their own timeout).
#[test]
fn dropping_the_client_completes_every_pending_request() {
    let server = MockServer::start(|_: &RemotingCommand| vec![Action::Never]).unwrap();
    let c = client();
    let (tx, rx) = std::sync::mpsc::channel();
    c.invoke_async_callback(&server.addr(), req("x"), 60 * SEC, move |r| {
        tx.send(r.map(|_| ())).unwrap();
    });
    let f = c.invoke_async(&server.addr(), req("y"), 60 * SEC);
    drop(c);
    assert_eq!(rx.recv_timeout(SEC), Ok(Err(RemotingError::Shutdown)));
    assert_eq!(f.wait_timeout(SEC).unwrap_err(), RemotingError::Shutdown);
}

/// Before: a server that accepted the connection and then read nothing held the caller in `write` for as
/// long as it liked (a send with a 300 ms timeout stayed blocked over 4 s). Now a write that makes no
/// progress for `write_timeout` fails the connection and the request.
#[test]
fn a_server_that_stops_reading_fails_the_write() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let held = std::thread::spawn(move || {
        let (s, _) = listener.accept().unwrap();
        std::thread::sleep(10 * SEC); // reads nothing
        drop(s);
    });
    let c = RemotingClient::new(RemotingConfig {
        write_timeout: Duration::from_millis(300),
        ..RemotingConfig::default()
    })
    .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let (c2, a2) = (c.clone(), addr.clone());
    std::thread::spawn(move || {
        let t0 = Instant::now();
        // Far more than the socket buffers hold.
        let r = c2.invoke_sync(&a2, req(vec![7u8; 64 << 20]), Duration::from_millis(300));
        tx.send((r, t0.elapsed())).unwrap();
    });
    let (r, took) = rx
        .recv_timeout(5 * SEC)
        .expect("the write is still blocked after 5 s");
    // The request's own timeout (the timer) or the failed write, whichever came first.
    let e = r.unwrap_err();
    assert!(e.is_timeout() || e.is_connection(), "{e}");
    assert!(took < 2 * SEC, "{took:?}");
    assert_eq!(c.connection_count(), 0, "the connection was failed");
    c.shutdown();
    drop(held);
}

/// The calls that never connect (for callers that must not block): with no live connection the request
/// comes back unsent, the callback unrun, and no connection is made; with one they send as usual.
#[test]
fn calls_that_never_connect_hand_the_request_back() {
    let server = MockServer::start(|_: &RemotingCommand| vec![Action::Respond(ok())]).unwrap();
    let c = client();
    let ran = Arc::new(AtomicUsize::new(0));
    let r = ran.clone();
    let back = c.invoke_async_callback_connected(&server.addr(), req("x"), SEC, 7, move |_, _| {
        r.fetch_add(1, Ordering::SeqCst);
    });
    assert_eq!(
        back.map_err(|(r, s)| (r.body, s)),
        Err((Bytes::from("x"), 7))
    );
    assert!(
        c.invoke_oneway_connected(&server.addr(), req("y"), SEC)
            .is_err()
    );
    assert_eq!(c.connection_count(), 0);
    assert_eq!(server.connections_accepted(), 0);
    c.invoke_sync(&server.addr(), req("connect"), SEC).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    assert!(
        c.invoke_async_callback_connected(&server.addr(), req("z"), SEC, 9, move |s, r| {
            tx.send(r.map(|_| s)).unwrap();
        })
        .is_ok()
    );
    assert_eq!(rx.recv_timeout(SEC), Ok(Ok(9)));
    assert!(matches!(
        c.invoke_oneway_connected(&server.addr(), req("w"), SEC),
        Ok(Ok(()))
    ));
    assert_eq!(ran.load(Ordering::SeqCst), 0);
}
