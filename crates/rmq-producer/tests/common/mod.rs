//! Helpers shared by the producer's mock-broker tests.

#![allow(dead_code, unreachable_pub)] // each test binary uses a part
#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

pub mod capture;

use rmq_producer::{Producer, ProducerConfig};
use rmq_protocol::route::{BrokerData, QueueData, TopicRouteData};
use rmq_protocol::{RemotingCommand, RequestCode, ResponseCode};
use rmq_testkit::{Action, MockServer, error, ok, route_response};

pub fn route(brokers: &[(&str, &str)]) -> TopicRouteData {
    let mut r = TopicRouteData::default();
    for (name, addr) in brokers {
        let mut b = BrokerData {
            broker_name: (*name).into(),
            cluster: "C".into(),
            ..Default::default()
        };
        b.broker_addrs.insert(0, (*addr).into());
        r.broker_datas.push(b);
        r.queue_datas.push(QueueData {
            broker_name: (*name).into(),
            perm: 6,
            read_queue_nums: 2,
            write_queue_nums: 2,
            topic_sys_flag: 0,
        });
    }
    r
}

/// A broker answering sends with `send`, and heartbeats and unregisters with SUCCESS.
pub fn broker(
    send: impl Fn(&RemotingCommand) -> Vec<Action> + Send + Sync + 'static,
) -> MockServer {
    MockServer::start(move |r: &RemotingCommand| match r.request_code() {
        RequestCode::SEND_MESSAGE_V2 => send(r),
        _ => vec![Action::Respond(ok())],
    })
    .unwrap()
}

pub fn namesrv(route: TopicRouteData) -> MockServer {
    namesrv_after(route, std::time::Duration::ZERO)
}

/// A name server answering `route` (TOPIC_NOT_EXIST for topic `Missing`) after `delay`.
pub fn namesrv_after(route: TopicRouteData, delay: std::time::Duration) -> MockServer {
    MockServer::start(move |r: &RemotingCommand| {
        let answer = if r.ext_fields.get("topic") == Some("Missing") {
            error(ResponseCode::TOPIC_NOT_EXIST, "No topic route info")
        } else {
            route_response(&route)
        };
        vec![Action::RespondAfter(delay, answer)]
    })
    .unwrap()
}

pub fn producer(ns: &MockServer, tweak: impl FnOnce(&mut ProducerConfig)) -> Producer {
    producer_at(&ns.addr(), tweak)
}

/// A started producer whose name server is at `ns` (which may not be listening yet).
pub fn producer_at(ns: &str, tweak: impl FnOnce(&mut ProducerConfig)) -> Producer {
    let mut cfg = ProducerConfig::new("rmq_test_group", ns);
    tweak(&mut cfg);
    let p = Producer::new(cfg).unwrap();
    p.start().unwrap();
    p
}
