//! Broker health recovers: a broker that failed and answers again gets its share of the traffic back, by
//! time (the breaker's period ends) or by evidence (a heartbeat goes through), never stuck behind the
//! brokers that did not fail.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rmq_producer::Producer;
use rmq_protocol::{Message, RequestCode, ResponseCode};
use rmq_routing::HealthState;
use rmq_testkit::{Action, MockServer, error, send_ok};

mod common;
use common::{broker, namesrv, producer, route};

/// broker-a answers SYSTEM_BUSY while `down`, else stores; broker-b always stores.
fn cluster(down: Arc<AtomicBool>) -> (MockServer, MockServer, MockServer) {
    let a = broker(move |_| {
        if down.load(Ordering::SeqCst) {
            vec![Action::Respond(error(ResponseCode::SYSTEM_BUSY, "busy"))]
        } else {
            vec![Action::Respond(send_ok(0, 1))]
        }
    });
    let b = broker(|_| vec![Action::Respond(send_ok(0, 1))]);
    let ns = namesrv(route(&[("broker-a", &a.addr()), ("broker-b", &b.addr())]));
    (a, b, ns)
}

fn state_of(p: &Producer, broker: &str) -> HealthState {
    p.get_stats()
        .router
        .brokers
        .iter()
        .find(|s| s.broker == broker)
        .map_or(HealthState::Healthy, |s| s.state)
}

/// Sends until broker-a took at least 40% of the last 20 sends; returns how long that took.
fn until_a_is_back(p: &Producer, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut last: Vec<bool> = Vec::new();
    while started.elapsed() < limit {
        let r = p.send_sync(&Message::new("T", "x")).unwrap();
        last.push(r.broker_name == "broker-a");
        if last.len() > 20 {
            last.remove(0);
        }
        if last.len() == 20 && last.iter().filter(|a| **a).count() >= 8 {
            return Some(started.elapsed());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    None
}

/// Before the breaker, a broker that became UNHEALTHY was ranked below every healthy one and could earn
/// its way back only through sends it never got: 0 sends after it recovered.
#[test]
fn a_broker_that_answers_again_is_back_within_the_breaker_period() {
    let down = Arc::new(AtomicBool::new(true));
    let (_a, _b, ns) = cluster(down.clone());
    let p = producer(&ns, |c| {
        c.health.open_base = Duration::from_millis(100);
        c.health.open_max = Duration::from_millis(400);
    });
    for _ in 0..30 {
        assert_eq!(
            p.send_sync(&Message::new("T", "x")).unwrap().broker_name,
            "broker-b"
        );
    }
    assert_ne!(state_of(&p, "broker-a"), HealthState::Healthy, "kept out");
    down.store(false, Ordering::SeqCst);
    let back = until_a_is_back(&p, Duration::from_secs(3));
    assert!(back.is_some(), "broker-a never got its share back");
    assert_eq!(state_of(&p, "broker-a"), HealthState::Healthy);
    eprintln!("broker-a back after {back:?} (breaker at most 400 ms)");
}

/// A heartbeat that goes through ends the breaker's period at once (half-open): with a 30 s breaker,
/// the broker is back right after the heartbeat round instead of up to 30 s later.
#[test]
fn a_heartbeat_that_goes_through_lets_the_broker_back_at_once() {
    let down = Arc::new(AtomicBool::new(true));
    let (a, _b, ns) = cluster(down.clone());
    let p = producer(&ns, |c| {
        c.health.open_base = Duration::from_secs(30);
        c.health.open_max = Duration::from_secs(30);
    });
    for _ in 0..10 {
        p.send_sync(&Message::new("T", "x")).unwrap();
    }
    assert_ne!(state_of(&p, "broker-a"), HealthState::Healthy, "kept out");
    down.store(false, Ordering::SeqCst);
    // Still kept out: the breaker is open for 30 s.
    let sent_before = a.received_count(RequestCode::SEND_MESSAGE_V2.0);
    for _ in 0..20 {
        assert_eq!(
            p.send_sync(&Message::new("T", "x")).unwrap().broker_name,
            "broker-b"
        );
    }
    assert_eq!(
        a.received_count(RequestCode::SEND_MESSAGE_V2.0),
        sent_before
    );
    assert_eq!(p.send_heartbeat_to_all_broker(), (2, 0));
    let back = until_a_is_back(&p, Duration::from_secs(2));
    assert!(back.is_some(), "broker-a not back after a heartbeat");
    assert_eq!(state_of(&p, "broker-a"), HealthState::Healthy);
}

#[test]
fn force_recover_puts_a_broker_back_now() {
    let down = Arc::new(AtomicBool::new(true));
    let (_a, _b, ns) = cluster(down.clone());
    let p = producer(&ns, |c| c.health.open_base = Duration::from_secs(30));
    for _ in 0..10 {
        p.send_sync(&Message::new("T", "x")).unwrap();
    }
    assert_ne!(state_of(&p, "broker-a"), HealthState::Healthy, "kept out");
    down.store(false, Ordering::SeqCst);
    p.force_recover("broker-a");
    assert_eq!(state_of(&p, "broker-a"), HealthState::Healthy);
    assert!(until_a_is_back(&p, Duration::from_secs(2)).is_some());
}

/// A broker the name server lists again (it restarted and registered) is evidence too: with a 30 s breaker
/// and no heartbeat, the route refresh that shows it back lets it be tried at once.
#[test]
fn a_route_that_lists_the_broker_again_lets_it_back() {
    let down = Arc::new(AtomicBool::new(true));
    let a = {
        let down = down.clone();
        broker(move |_| {
            if down.load(Ordering::SeqCst) {
                vec![Action::Respond(error(ResponseCode::SYSTEM_BUSY, "busy"))]
            } else {
                vec![Action::Respond(send_ok(0, 1))]
            }
        })
    };
    let b = broker(|_| vec![Action::Respond(send_ok(0, 1))]);
    let with_a = route(&[("broker-a", &a.addr()), ("broker-b", &b.addr())]);
    let without_a = route(&[("broker-b", &b.addr())]);
    let listed = Arc::new(AtomicBool::new(true));
    let l2 = listed.clone();
    let ns = MockServer::start(move |_: &rmq_protocol::RemotingCommand| {
        let r = if l2.load(Ordering::SeqCst) {
            &with_a
        } else {
            &without_a
        };
        vec![Action::Respond(rmq_testkit::route_response(r))]
    })
    .unwrap();
    let p = producer(&ns, |c| {
        c.health.open_base = Duration::from_secs(30);
        c.health.open_max = Duration::from_secs(30);
        c.heartbeat_broker_interval = Duration::from_secs(3600);
        c.poll_name_server_interval = Duration::from_millis(50);
        c.update_topic_route_info_interval = Duration::from_millis(50);
    });
    for _ in 0..10 {
        p.send_sync(&Message::new("T", "x")).unwrap();
    }
    assert_ne!(state_of(&p, "broker-a"), HealthState::Healthy, "kept out");
    // broker-a "restarts": gone from the route, then registered again, now answering.
    listed.store(false, Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(300));
    down.store(false, Ordering::SeqCst);
    listed.store(true, Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        until_a_is_back(&p, Duration::from_secs(2)).is_some(),
        "broker-a not back after the route listed it again"
    );
}
