//! The asynchronous API on real executors: tokio (current-thread and multi-thread) and
//! `futures::executor`. Nothing here may block an executor thread: a ticker task on the same
//! current-thread runtime keeps ticking while sends wait for room behind a broker that stopped
//! answering; dropped futures still end in the stats and give their room back.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{broker, namesrv, producer, route};
use rmq_producer::{MessageQueue, ProducerError};
use rmq_protocol::Message;
use rmq_testkit::{Action, send_ok};

/// Held by the timing-sensitive ticker test and the CPU-heavy tests, so they do not run at once on a
/// small machine.
static HEAVY: parking_lot::Mutex<()> = parking_lot::Mutex::new(());

/// A broker that answers at once, or holds every answer while `paused` is set.
fn pausable(paused: Arc<AtomicBool>) -> rmq_testkit::MockServer {
    broker(move |_| {
        if paused.load(Ordering::SeqCst) {
            vec![Action::RespondAfter(
                Duration::from_millis(800),
                send_ok(0, 1),
            )]
        } else {
            vec![Action::Respond(send_ok(0, 1))]
        }
    })
}

/// Before: `send_async` blocked the thread while the bound was reached, so a current-thread runtime
/// froze (the issue measured 3,006 ms). Now the ticker's worst gap stays small: a ticker and 2,000
/// sends (bound 16) on one thread while the broker holds its answers for 0.8 s.
#[test]
fn a_current_thread_runtime_keeps_ticking_while_sends_wait_for_room() {
    let _heavy = HEAVY.lock();
    let paused = Arc::new(AtomicBool::new(true));
    let b = pausable(paused.clone());
    let ns = namesrv(route(&[("broker-a", &b.addr())]));
    let p = producer(&ns, |c| {
        c.async_send_semaphore = 16;
        c.send_msg_timeout = Duration::from_secs(10);
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let (worst, results) = rt.block_on(async {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let ticker = tokio::spawn(async move {
            let mut worst = Duration::ZERO;
            let mut last = Instant::now();
            while !s.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(1)).await;
                worst = worst.max(last.elapsed());
                last = Instant::now();
            }
            worst
        });
        tokio::task::yield_now().await;
        let mut futures = Vec::new();
        for i in 0..2_000 {
            futures.push(p.send_async(&Message::new("T", format!("m{i}"))));
            if i % 100 == 0 {
                tokio::task::yield_now().await;
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        paused.store(false, Ordering::SeqCst);
        let mut results = Vec::new();
        for f in futures {
            results.push(f.await);
        }
        stop.store(true, Ordering::SeqCst);
        (ticker.await.unwrap(), results)
    });
    assert!(
        results.iter().all(Result::is_ok),
        "{:?}",
        results.iter().find(|r| r.is_err())
    );
    // The benchmark (docs/benchmarks.md) measures the figure; this asserts the property with room
    // for a noisy machine: far below the 800 ms the broker held its answers.
    assert!(
        worst < Duration::from_millis(200),
        "the ticker stalled {worst:?}"
    );
    p.shutdown();
}

/// Before: creating the futures blocked (bound 4, silent broker, 300 ms each: over a minute).
/// Now 1,000 futures are created at once and dropped; each send still ends exactly once in the
/// stats, and every place in the bound comes back.
#[test]
fn dropped_futures_keep_their_outcome_in_the_stats_and_give_their_room_back() {
    let silent = broker(|_| vec![Action::Never]);
    let ns = namesrv(route(&[("broker-a", &silent.addr())]));
    let p = producer(&ns, |c| {
        c.async_send_semaphore = 4;
        c.retry_times = 0;
        c.send_msg_timeout = Duration::from_millis(300);
    });
    let t0 = Instant::now();
    for i in 0..1_000 {
        drop(p.send_async(&Message::new("T", format!("m{i}"))));
    }
    assert!(t0.elapsed() < Duration::from_secs(1), "{:?}", t0.elapsed());
    assert!(
        p.get_stats().in_flight > 4,
        "waiting sends are counted as in flight"
    );
    let open = p.flush(Instant::now() + Duration::from_secs(10));
    assert!(open.is_empty(), "{} still open", open.len());
    // A waiter ended by its deadline leaves the table before its outcome is counted (the flush race in
    // the issue 23 note): give the last ones a moment.
    let counted = Instant::now() + Duration::from_secs(2);
    while p.get_stats().sent + p.get_stats().failed < 1_000 && Instant::now() < counted {
        std::thread::sleep(Duration::from_millis(5));
    }
    let s = p.get_stats();
    assert_eq!(s.sent + s.failed, 1_000, "{s:?}");
    assert_eq!(s.in_flight, 0);
    // The room is all there: 4 sends in flight at once again.
    let again: Vec<_> = (0..4)
        .map(|_| p.try_send_async(&Message::new("T", "x")))
        .collect();
    assert!(again.iter().all(|f| !f.is_done()));
    p.shutdown();
}

/// Thousands of tasks awaiting sends at once on a multi-thread runtime, each with its outcome.
#[test]
fn five_thousand_concurrent_awaits_on_a_multi_thread_runtime() {
    let _heavy = HEAVY.lock();
    let b = broker(|_| vec![Action::Respond(send_ok(0, 1))]);
    let ns = namesrv(route(&[("broker-a", &b.addr())]));
    let p = producer(&ns, |c| c.async_send_semaphore = 256);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let ok = rt.block_on(async {
        let tasks: Vec<_> = (0..5_000)
            .map(|i| {
                let p = p.clone();
                tokio::spawn(async move { p.send_async(&Message::new("T", format!("{i}"))).await })
            })
            .collect();
        let mut ok = 0;
        for t in tasks {
            ok += usize::from(t.await.unwrap().is_ok());
        }
        ok
    });
    assert_eq!(ok, 5_000);
    assert_eq!(p.get_stats().sent, 5_000);
    p.shutdown();
}

/// Every asynchronous entry point on a second, unrelated executor (`futures::executor`).
#[test]
fn every_async_entry_point_on_the_futures_executor() {
    use rmq_protocol::RequestCode;
    let b = rmq_testkit::MockServer::start(|r: &rmq_protocol::RemotingCommand| {
        match r.request_code() {
            RequestCode::SEND_MESSAGE_V2 | RequestCode::SEND_BATCH_MESSAGE => {
                vec![Action::Respond(send_ok(3, 7))]
            }
            _ => vec![Action::Respond(rmq_testkit::ok())],
        }
    })
    .unwrap();
    let ns = namesrv(route(&[("broker-a", &b.addr())]));
    let p = producer(&ns, |_| {});
    futures::executor::block_on(async {
        let r = p.send_async(&Message::new("T", "a")).await.unwrap();
        assert_eq!(r.queue_id, 3);
        p.send_oneway_async(&Message::new("T", "b")).await.unwrap();
        let batch: Vec<Message> = (0..5).map(|i| Message::new("T", format!("{i}"))).collect();
        let results = p.send_batch_async(&batch).await.unwrap();
        assert_eq!(results.len(), 1);
        assert_eq!(results[0].msg_id.split(',').count(), 5);
        let r = p
            .send_with_selector_async(&Message::new("T", "c"), |qs, _| Some(qs.len() - 1))
            .await
            .unwrap();
        assert_eq!(r.queue_id, 3, "the broker's answer names the queue");
        let q = MessageQueue {
            topic: "T".into(),
            broker_name: "broker-a".into(),
            queue_id: 1,
        };
        p.send_to_queue_async(&Message::new("T", "d"), &q)
            .await
            .unwrap();
        let wrong = MessageQueue {
            topic: "U".into(),
            ..q
        };
        assert!(matches!(
            p.send_to_queue_async(&Message::new("T", "e"), &wrong).await,
            Err(ProducerError::QueueTopicMismatch { .. })
        ));
        // A handle that does not decode is refused before any I/O.
        assert!(p.recall_async("T", "not a handle").await.is_err());
        assert!(
            p.flush_async(Instant::now() + Duration::from_secs(5))
                .await
                .unwrap()
                .is_empty()
        );
    });
    let s = p.get_stats();
    assert_eq!((s.sent, s.oneway), (4, 1), "{s:?}");
    // Each reached the broker: 3 single sends and the oneway, and one batch.
    assert_eq!(b.received_count(RequestCode::SEND_MESSAGE_V2.0), 4);
    assert_eq!(b.received_count(RequestCode::SEND_BATCH_MESSAGE.0), 1);
    p.shutdown();
}

/// A flush future completes at its deadline with the sends still open, without blocking.
#[test]
fn a_flush_future_ends_at_its_deadline_with_the_open_sends() {
    let silent = broker(|_| vec![Action::Never]);
    let ns = namesrv(route(&[("broker-a", &silent.addr())]));
    let p = producer(&ns, |c| {
        c.retry_times = 0;
        c.send_msg_timeout = Duration::from_secs(5);
    });
    let pending = p.send_async(&Message::new("T", "x"));
    let t0 = Instant::now();
    let open =
        futures::executor::block_on(p.flush_async(Instant::now() + Duration::from_millis(200)))
            .unwrap();
    assert_eq!(open.len(), 1);
    assert!(t0.elapsed() >= Duration::from_millis(200) && t0.elapsed() < Duration::from_secs(2));
    drop(pending);
    p.shutdown();
}

/// The blocking callback form in a sending loop: the bound holds the loop back, every outcome arrives.
#[test]
fn a_callback_loop_is_held_back_by_the_bound_and_gets_every_outcome() {
    let _heavy = HEAVY.lock();
    let b = broker(|_| vec![Action::Respond(send_ok(0, 1))]);
    let ns = namesrv(route(&[("broker-a", &b.addr())]));
    let p = producer(&ns, |c| c.async_send_semaphore = 100);
    let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut most = 0;
    for i in 0..20_000 {
        most = most.max(p.get_stats().in_flight);
        let d = done.clone();
        p.send_async_callback(&Message::new("T", format!("{i}")), move |r| {
            assert!(r.is_ok(), "{r:?}");
            d.fetch_add(1, Ordering::SeqCst);
        });
    }
    assert!(p.flush(Instant::now() + Duration::from_secs(30)).is_empty());
    assert_eq!(done.load(Ordering::SeqCst), 20_000);
    // Held back: never more than the bound accepted (a queueing callback form would reach thousands).
    assert!(most <= 100, "{most} in flight");
    p.shutdown();
}

/// Review findings, each pinned: the batches after the first continue an accepted call (they wait for
/// room even when `async_send_block` is off); a selector that panics on a thread of the producer's
/// refuses its send and leaves every thread working; a request on a producer not started is refused.
#[test]
fn batches_chain_past_a_full_bound_a_panicking_selector_is_contained_requests_need_a_started_producer()
 {
    use rmq_protocol::RequestCode;
    let b = rmq_testkit::MockServer::start(|r: &rmq_protocol::RemotingCommand| {
        match r.request_code() {
            RequestCode::SEND_MESSAGE_V2 | RequestCode::SEND_BATCH_MESSAGE => {
                vec![Action::Respond(send_ok(0, 1))]
            }
            _ => vec![Action::Respond(rmq_testkit::ok())],
        }
    })
    .unwrap();
    let ns = namesrv(route(&[("broker-a", &b.addr())]));
    let p = producer(&ns, |c| {
        c.async_send_semaphore = 1;
        c.async_send_block = false;
        c.batch_size = 2;
    });
    let batch: Vec<Message> = (0..6).map(|i| Message::new("T", format!("{i}"))).collect();
    let results = futures::executor::block_on(p.send_batch_async(&batch)).unwrap();
    assert_eq!(results.len(), 3);
    // An outcome is delivered before its place is given back: with one place and no waiting, the next
    // send waits for the table to be idle first.
    assert!(p.flush(Instant::now() + Duration::from_secs(5)).is_empty());

    let panics = rmq_remoting::user_code_panics();
    let r = futures::executor::block_on(
        p.send_with_selector_async(&Message::new("T", "x"), |_, _| panic!("a selector bug")),
    );
    assert!(r.is_err());
    assert!(rmq_remoting::user_code_panics() > panics);
    // Everything still works after it.
    assert!(p.flush(Instant::now() + Duration::from_secs(5)).is_empty());
    futures::executor::block_on(p.send_async(&Message::new("T", "y"))).unwrap();
    p.shutdown();

    let idle =
        rmq_producer::Producer::new(rmq_producer::ProducerConfig::new("g", ns.addr())).unwrap();
    let e = idle
        .request(&Message::new("T", "ping"), Duration::from_secs(1))
        .unwrap_err();
    assert!(matches!(e, ProducerError::State(_)), "{e}");
}
