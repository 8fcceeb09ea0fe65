//! Model-based property tests: random sequences of route updates, results, failures, time steps and routing
//! calls, checked against a plain model of the specification.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use rmq_protocol::Message;
use rmq_protocol::route::{BrokerData, QueueData, TopicRouteData, perm};
use rmq_routing::health::not_available_duration;
use rmq_routing::{
    FailureKind, HealthPolicy, HealthRegistry, HealthState, MessageRouter, RouterConfig,
    RoutingStrategy, TopicBrokerMapping,
};

const BROKERS: [&str; 3] = ["broker-a", "broker-b", "broker-c"];

#[derive(Clone, Debug)]
struct BrokerSpec {
    master: bool,
    writable: bool,
    queues: i32,
}

#[derive(Clone, Debug)]
enum Op {
    Update(Vec<BrokerSpec>),
    Success(usize, u64),
    Failure(usize, FailureKind),
    Advance(u64),
    Suspend(usize),
    Recover(usize),
    Route {
        strategy: RoutingStrategy,
        key: Option<u8>,
        last: Option<usize>,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let spec = (
        prop::bool::weighted(0.85),
        prop::bool::weighted(0.85),
        0i32..6,
    )
        .prop_map(|(master, writable, queues)| BrokerSpec {
            master,
            writable,
            queues,
        });
    let kind = prop_oneof![
        Just(FailureKind::Connection),
        Just(FailureKind::Timeout),
        Just(FailureKind::Broker),
        Just(FailureKind::Client)
    ];
    let strategy = prop_oneof![
        Just(RoutingStrategy::RoundRobin),
        Just(RoutingStrategy::Random),
        Just(RoutingStrategy::MessageHash)
    ];
    prop_oneof![
        1 => prop::collection::vec(spec, 3).prop_map(Op::Update),
        4 => (0usize..3, 0u64..2000).prop_map(|(b, l)| Op::Success(b, l)),
        4 => (0usize..3, kind).prop_map(|(b, k)| Op::Failure(b, k)),
        2 => (0u64..15_000).prop_map(Op::Advance),
        1 => (15_000u64..40_000).prop_map(Op::Advance),
        1 => (0usize..3).prop_map(Op::Suspend),
        1 => (0usize..3).prop_map(Op::Recover),
        8 => (strategy, proptest::option::of(0u8..6), proptest::option::of(0usize..3))
            .prop_map(|(strategy, key, last)| Op::Route { strategy, key, last }),
    ]
}

fn route_of(specs: &[BrokerSpec]) -> TopicRouteData {
    let mut r = TopicRouteData::default();
    for (i, s) in specs.iter().enumerate() {
        let mut b = BrokerData {
            broker_name: BROKERS[i].into(),
            cluster: "C".into(),
            ..Default::default()
        };
        b.broker_addrs.insert(1, format!("127.0.0.1:{}", 20000 + i));
        if s.master {
            b.broker_addrs.insert(0, format!("127.0.0.1:{}", 10000 + i));
        }
        r.broker_datas.push(b);
        r.queue_datas.push(QueueData {
            broker_name: BROKERS[i].into(),
            perm: if s.writable {
                perm::READ | perm::WRITE
            } else {
                perm::READ
            },
            read_queue_nums: s.queues,
            write_queue_nums: s.queues,
            topic_sys_flag: 0,
        });
    }
    // Shuffle-proofing: the builder must sort by name whatever order the name server used.
    r.queue_datas.reverse();
    r
}

/// The specification, written plainly.
#[derive(Clone, Debug)]
struct ModelBroker {
    state: HealthState,
    fails: u32,
    oks: u32,
    isolated_until: Option<Instant>,
    /// Failures since HEALTHY that opened the breaker, and until when it is open.
    trips: u32,
    open_until: Option<Instant>,
    last_failure: Option<Instant>,
}

/// The breaker's period on the `trips`-th failure: 1 s doubling, at most 30 s.
fn period(trips: u32) -> Duration {
    Duration::from_secs(1 << trips.min(5)).min(Duration::from_secs(30))
}

impl ModelBroker {
    fn new() -> Self {
        ModelBroker {
            state: HealthState::Healthy,
            fails: 0,
            oks: 0,
            isolated_until: None,
            trips: 0,
            open_until: None,
            last_failure: None,
        }
    }

    fn open(&self, now: Instant) -> bool {
        self.open_until.is_some_and(|u| u > now)
    }

    fn isolate(&mut self, now: Instant, latency_ms: u64, on: bool) {
        let d = not_available_duration(latency_ms);
        if on && d > Duration::ZERO {
            let until = now + d;
            self.isolated_until = Some(self.isolated_until.map_or(until, |u| u.max(until)));
        }
    }

    fn tier(&self, now: Instant, fault: bool) -> u8 {
        let isolated = fault && self.isolated_until.is_some_and(|u| u > now);
        match self.state {
            HealthState::Suspended => 4,
            HealthState::Unhealthy if self.open(now) => 3,
            _ if isolated => 2,
            HealthState::Degraded if self.open(now) => 1,
            // Healthy, or half-open.
            _ => 0,
        }
    }
}

proptest! {
    // Integration tests have no lib.rs beside them, so name the regression file outright (the working
    // directory of `cargo test` is the crate root). Committed seeds replay first on every run.
    #![proptest_config(ProptestConfig {
        cases: 200,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct("proptest-regressions/model.txt"))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn router_follows_the_specification(ops in prop::collection::vec(op(), 1..120), fault in any::<bool>()) {
        let t0 = Instant::now();
        let mut now = t0;
        let mapping = Arc::new(TopicBrokerMapping::new(t0));
        let policy = HealthPolicy { latency_fault_tolerance: fault, ..HealthPolicy::default() };
        let health = Arc::new(HealthRegistry::new(policy, t0));
        let router = MessageRouter::new(mapping.clone(), health.clone(), RouterConfig::default());
        let mut model: Vec<ModelBroker> = vec![ModelBroker::new(); 3];
        let mut specs: Option<Vec<BrokerSpec>> = None;
        let mut route_version = 0u32;
        let mut key_to_queue: HashMap<u8, (u32, String, i32)> = HashMap::new();

        for op in ops {
            match op {
                Op::Update(s) => {
                    if mapping.update_route_info("T", route_of(&s), now) {
                        route_version += 1;
                    }
                    specs = Some(s);
                }
                Op::Success(b, l) => {
                    router.report_result(BROKERS[b], Duration::from_millis(l), now);
                    let m = &mut model[b];
                    m.fails = 0;
                    m.oks += 1;
                    if matches!(m.state, HealthState::Degraded | HealthState::Unhealthy)
                        && (m.oks >= 5 || !m.open(now))
                    {
                        m.state = HealthState::Healthy;
                        m.trips = 0;
                        m.open_until = None;
                    }
                    m.isolate(now, l, fault);
                }
                Op::Failure(b, k) => {
                    router.report_failure(BROKERS[b], k, Duration::from_millis(10), now);
                    let m = &mut model[b];
                    m.oks = 0;
                    m.fails += 1;
                    m.state = match m.state {
                        HealthState::Suspended => HealthState::Suspended,
                        _ if m.fails >= 5 => HealthState::Unhealthy,
                        HealthState::Healthy if m.fails >= 3 => HealthState::Degraded,
                        s => s,
                    };
                    if matches!(m.state, HealthState::Degraded | HealthState::Unhealthy) && !m.open(now) {
                        m.open_until = Some(now + period(m.trips));
                        m.trips += 1;
                    }
                    m.last_failure = Some(now);
                    m.isolate(now, if k == FailureKind::Client { 10 } else { 10_000 }, fault);
                }
                Op::Advance(ms) => now += Duration::from_millis(ms),
                Op::Suspend(b) => {
                    health.force_suspend(BROKERS[b]);
                    model[b].state = HealthState::Suspended;
                }
                Op::Recover(b) => {
                    health.force_recover(BROKERS[b]);
                    model[b] = ModelBroker { last_failure: model[b].last_failure, ..ModelBroker::new() };
                }
                Op::Route { strategy, key, last } => {
                    let mut msg = Message::new("T", "x");
                    if let Some(k) = key {
                        msg.set_keys([format!("key-{k}")]);
                    }
                    let last_name = last.map(|b| BROKERS[b]);
                    let got = router.route_retry("T", &msg, strategy, last_name, now);
                    let Some(specs) = &specs else {
                        prop_assert!(got.is_err(), "no route yet");
                        continue;
                    };
                    // Brokers that can take writes, per the route.
                    let candidates: Vec<usize> = (0..3)
                        .filter(|&i| specs[i].master && specs[i].writable && specs[i].queues > 0)
                        .collect();
                    if candidates.is_empty() {
                        prop_assert!(got.is_err(), "nothing writable, yet routed: {got:?}");
                        continue;
                    }
                    let r = got.unwrap();
                    let b = BROKERS.iter().position(|n| *n == r.broker_name()).unwrap();
                    // Never a non-writable queue or a broker without master.
                    prop_assert!(candidates.contains(&b), "routed to {b} outside {candidates:?}");
                    prop_assert!(r.queue_id() < specs[b].queues);
                    prop_assert_eq!(r.broker_addr(), format!("127.0.0.1:{}", 10000 + b));

                    if strategy == RoutingStrategy::MessageHash && key.is_some() {
                        // The same key maps to the same queue while the route is unchanged, whatever the health.
                        let k = key.unwrap();
                        let here = (route_version, r.broker_name().to_string(), r.queue_id());
                        if let Some(prev) = key_to_queue.get(&k) && prev.0 == route_version {
                            prop_assert_eq!(prev, &here);
                        }
                        key_to_queue.insert(k, here);
                        continue;
                    }
                    // Otherwise: the chosen broker has the best tier, and among equals it is not the last
                    // failed broker when another exists.
                    let tiers: Vec<(usize, u8)> = candidates.iter().map(|&i| (i, model[i].tier(now, fault))).collect();
                    let best = tiers.iter().map(|t| t.1).min().unwrap();
                    prop_assert_eq!(model[b].tier(now, fault), best, "tiers {:?} chose {}", tiers, b);
                    prop_assert_eq!(r.healthy_choice, best <= 1);
                    let others_best = tiers.iter().any(|&(i, t)| t == best && Some(i) != last);
                    if others_best {
                        prop_assert_ne!(Some(b), last, "chose the last failed broker although {:?}", tiers);
                    }
                }
            }
            // State transitions exactly as specified, isolation windows as Java's tables.
            let snapshot = health.snapshot(now);
            for (i, m) in model.iter().enumerate() {
                prop_assert_eq!(health.state(BROKERS[i]), m.state, "broker {}", i);
                let want = if fault { m.isolated_until.filter(|u| *u > now) } else { None };
                prop_assert_eq!(health.next_probe_at(BROKERS[i], now), want, "probe of broker {}", i);
                let open = snapshot.iter().find(|s| s.broker == BROKERS[i]).and_then(|s| s.open_until);
                prop_assert_eq!(open, m.open_until.filter(|u| *u > now), "breaker of broker {}", i);
                // Recovery is bounded: 30 s after its last failure a broker's breaker is never open, so its
                // health no longer keeps it out (suspension by hand and Java's latency isolation, which a
                // slow success can also start, are separate).
                if m.last_failure.is_some_and(|f| now >= f + Duration::from_secs(30)) {
                    prop_assert!(open.is_none(), "broker {} still kept out 30 s after its last failure", i);
                    if m.state != HealthState::Suspended {
                        prop_assert!(!matches!(m.tier(now, fault), 1 | 3), "broker {} not back: {:?}", i, m);
                    }
                }
            }
        }
    }

    #[test]
    fn round_robin_spreads_evenly(queues in prop::collection::vec(1i32..6, 1..4), k in 1usize..6) {
        let t = Instant::now();
        let specs: Vec<BrokerSpec> = queues.iter().map(|&q| BrokerSpec { master: true, writable: true, queues: q }).collect();
        let mapping = Arc::new(TopicBrokerMapping::new(t));
        mapping.update_route_info("T", route_of(&specs), t);
        let router = MessageRouter::new(mapping, Arc::new(HealthRegistry::new(HealthPolicy::default(), t)), RouterConfig::default());
        let n: usize = queues.iter().map(|q| *q as usize).sum();
        let mut counts: HashMap<(String, i32), usize> = HashMap::new();
        let msg = Message::new("T", "x");
        for _ in 0..k * n {
            let r = router.route_message("T", &msg, RoutingStrategy::RoundRobin, t).unwrap();
            *counts.entry((r.broker_name().to_string(), r.queue_id())).or_default() += 1;
        }
        prop_assert_eq!(counts.len(), n);
        for c in counts.values() {
            prop_assert!(c.abs_diff(k) <= 1, "counts {:?}", counts);
        }
    }
}

/// Topic "T" on `brokers` identical brokers (master, writable, `queues` queues each), routed with `policy`.
fn router_for(
    brokers: usize,
    queues: i32,
    policy: HealthPolicy,
    t: Instant,
) -> (MessageRouter, Arc<HealthRegistry>, Arc<TopicBrokerMapping>) {
    let specs = vec![
        BrokerSpec {
            master: true,
            writable: true,
            queues
        };
        brokers
    ];
    let mapping = Arc::new(TopicBrokerMapping::new(t));
    mapping.update_route_info("T", route_of(&specs), t);
    let health = Arc::new(HealthRegistry::new(policy, t));
    let router = MessageRouter::new(mapping.clone(), health.clone(), RouterConfig::default());
    (router, health, mapping)
}

#[test]
fn isolated_broker_returns_after_its_window() {
    let t = Instant::now();
    let policy = HealthPolicy {
        latency_fault_tolerance: true,
        ..HealthPolicy::default()
    };
    let (router, _, _) = router_for(2, 4, policy, t);
    router.report_failure(
        "broker-a",
        FailureKind::Connection,
        Duration::from_millis(3),
        t,
    );
    let msg = Message::new("T", "x");
    for _ in 0..20 {
        let r = router
            .route_message(
                "T",
                &msg,
                RoutingStrategy::RoundRobin,
                t + Duration::from_secs(9),
            )
            .unwrap();
        assert_eq!(r.broker_name(), "broker-b");
    }
    let after = t + Duration::from_secs(10);
    let brokers: std::collections::HashSet<String> = (0..8)
        .map(|_| {
            router
                .route_message("T", &msg, RoutingStrategy::RoundRobin, after)
                .unwrap()
                .broker_name()
                .to_string()
        })
        .collect();
    assert_eq!(brokers.len(), 2, "broker-a is back after 10 s");
    let stats = router.stats(after);
    assert_eq!(stats.total, 28);
    assert_eq!(stats.errors, 0);
    assert_eq!(stats.by_strategy[0], (RoutingStrategy::RoundRobin, 28));
}

#[test]
fn all_bad_falls_back_to_the_least_bad() {
    let t = Instant::now();
    let (router, health, _) = router_for(2, 2, HealthPolicy::default(), t);
    health.force_suspend("broker-a");
    for _ in 0..5 {
        router.report_failure("broker-b", FailureKind::Timeout, Duration::from_secs(3), t);
    }
    let r = router
        .route_message("T", &Message::new("T", "x"), RoutingStrategy::Random, t)
        .unwrap();
    assert_eq!(r.broker_name(), "broker-b", "UNHEALTHY beats SUSPENDED");
    assert!(!r.healthy_choice);
    assert_eq!(router.stats(t).least_bad, 1);
}

#[test]
fn routers_with_separate_registries_share_a_route_cache() {
    let t = Instant::now();
    let (first, _, mapping) = router_for(2, 2, HealthPolicy::default(), t);
    let second_health = Arc::new(HealthRegistry::new(HealthPolicy::default(), t));
    let second = MessageRouter::new(mapping, second_health.clone(), RouterConfig::default());
    let msg = Message::new("T", "x");
    first
        .route_message("T", &msg, RoutingStrategy::RoundRobin, t)
        .unwrap(); // the list now caches first's cells
    second_health.force_suspend("broker-a");
    for _ in 0..8 {
        let r = second
            .route_message("T", &msg, RoutingStrategy::RoundRobin, t)
            .unwrap();
        assert_eq!(
            r.broker_name(),
            "broker-b",
            "second router must see its own registry"
        );
        let r = first
            .route_message("T", &msg, RoutingStrategy::RoundRobin, t)
            .unwrap();
        assert!(r.healthy_choice);
    }
    let brokers: std::collections::HashSet<String> = (0..4)
        .map(|_| {
            first
                .route_message("T", &msg, RoutingStrategy::RoundRobin, t)
                .unwrap()
                .broker_name()
                .to_string()
        })
        .collect();
    assert_eq!(brokers.len(), 2);
}
