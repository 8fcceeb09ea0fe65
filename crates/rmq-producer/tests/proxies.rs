//! RocketMQ 5 proxies as a remoting client sees them: each answers route queries with its own address
//! for every broker, so a producer given two proxies must leave one that dies, or says GO_AWAY, for the
//! other at once instead of at the next route refresh (issue 20). Mock proxies; the real ones are in
//! `scripts/chaos` (`proxy-killed`, `proxy-drained`).

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rmq_producer::Producer;
use rmq_protocol::{Message, RemotingCommand, RequestCode, ResponseCode};
use rmq_testkit::{Action, MockServer, error, ok, route_response, send_ok};

mod common;
use common::{producer_at, route};

/// A mock proxy: routes name broker-a at its own address; sends are stored, or answered GO_AWAY while
/// `draining`.
fn proxy(draining: Arc<AtomicBool>) -> MockServer {
    let p = MockServer::start(|_r: &RemotingCommand| vec![Action::Respond(ok())]).unwrap();
    let me = p.addr();
    p.set_script(move |r: &RemotingCommand| match r.request_code() {
        RequestCode::GET_ROUTEINFO_BY_TOPIC => {
            vec![Action::Respond(route_response(&route(&[(
                "broker-a", &me,
            )])))]
        }
        RequestCode::SEND_MESSAGE_V2 if draining.load(Ordering::SeqCst) => {
            vec![Action::Respond(error(
                ResponseCode::GO_AWAY,
                "please go away",
            ))]
        }
        RequestCode::SEND_MESSAGE_V2 => vec![Action::Respond(send_ok(0, 1))],
        _ => vec![Action::Respond(ok())],
    });
    p
}

/// The proxy `topic`'s route goes through.
fn in_use(p: &Producer, topic: &str) -> String {
    let (route, _) = p.topic_route(topic).unwrap();
    route.broker_datas[0].broker_addrs[&0].clone()
}

/// Two mock proxies, each with its draining switch, and a producer given both as its name servers.
struct Pair {
    proxies: [MockServer; 2],
    draining: [Arc<AtomicBool>; 2],
    producer: Producer,
}

fn two_proxies() -> Pair {
    let draining = [
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    ];
    let proxies = [proxy(draining[0].clone()), proxy(draining[1].clone())];
    let producer = producer_at(
        &format!("{};{}", proxies[0].addr(), proxies[1].addr()),
        |_| {},
    );
    Pair {
        proxies,
        draining,
        producer,
    }
}

/// Before: the route kept naming the dead proxy until the 30 s refresh; every send in between burnt its
/// three attempts on "connection refused" in microseconds and failed.
#[test]
fn a_dead_proxy_is_left_for_the_other_at_once() {
    let Pair {
        proxies, producer, ..
    } = two_proxies();
    let msg = Message::new("T", "x");
    producer.send_sync(&msg).unwrap();
    let [p1, p2] = proxies;
    let (victim, survivor) = if in_use(&producer, "T") == p1.addr() {
        (p1, p2)
    } else {
        (p2, p1)
    };
    victim.stop();
    let t0 = Instant::now();
    let r = producer.send_sync(&msg).unwrap();
    assert!(
        t0.elapsed() < Duration::from_secs(1),
        "took {:?}",
        t0.elapsed()
    );
    assert_eq!(
        in_use(&producer, "T"),
        survivor.addr(),
        "the route was renewed"
    );
    assert_eq!(r.broker_name.as_str(), "broker-a");
    for _ in 0..20 {
        producer.send_sync(&msg).unwrap();
    }
    producer.shutdown();
}

/// A proxy that answers GO_AWAY processed nothing: the send goes on through the other proxy on its
/// second attempt, not flagged as a possible duplicate. Before: GO_AWAY was retried on the same draining
/// proxy until the attempts ran out.
#[test]
fn go_away_moves_the_send_to_the_other_proxy() {
    let Pair {
        proxies,
        draining,
        producer,
    } = two_proxies();
    let msg = Message::new("T", "x");
    producer.send_sync(&msg).unwrap();
    let used = usize::from(in_use(&producer, "T") != proxies[0].addr());
    draining[used].store(true, Ordering::SeqCst);
    let r = producer.send_sync(&msg).unwrap();
    assert!(!r.possibly_duplicated, "GO_AWAY means not processed");
    assert_eq!(r.attempts, 2);
    assert_eq!(in_use(&producer, "T"), proxies[1 - used].addr());
    producer.shutdown();
}
