//! `MessageRouter::route_message` on a 16-queue topic (2 brokers × 8 queues) for each strategy, with 1 and
//! with 1,000 cached topics. `cargo bench -p rmq-benches --bench routing`

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use rmq_protocol::Message;
use rmq_protocol::route::{BrokerData, QueueData, TopicRouteData};
use rmq_routing::{
    FailureKind, HealthPolicy, HealthRegistry, MessageRouter, RouterConfig, RoutingStrategy,
    SelectByHash, TopicBrokerMapping,
};

fn route() -> TopicRouteData {
    let mut r = TopicRouteData::default();
    for i in 0..2 {
        let name = format!("broker-{i}");
        let mut b = BrokerData {
            broker_name: name.clone(),
            ..Default::default()
        };
        b.broker_addrs
            .insert(0, format!("127.0.0.1:{}", 10911 + 100 * i));
        r.broker_datas.push(b);
        r.queue_datas.push(QueueData {
            broker_name: name,
            perm: 6,
            read_queue_nums: 8,
            write_queue_nums: 8,
            topic_sys_flag: 0,
        });
    }
    r
}

fn router(topics: usize, t: Instant) -> MessageRouter {
    let mapping = Arc::new(TopicBrokerMapping::new(t));
    for i in 0..topics {
        mapping.update_route_info(&format!("topic-{i}"), route(), t);
    }
    let policy = HealthPolicy {
        latency_fault_tolerance: true,
        ..HealthPolicy::default()
    };
    let r = MessageRouter::new(
        mapping,
        Arc::new(HealthRegistry::new(policy, t)),
        RouterConfig::default(),
    );
    r.report_result("broker-0", Duration::from_millis(1), t);
    r.report_failure(
        "broker-1",
        FailureKind::Broker,
        Duration::from_millis(1),
        t - Duration::from_secs(60),
    );
    r
}

fn bench_route(c: &mut Criterion) {
    let t = Instant::now() + Duration::from_secs(120);
    let plain = Message::new("topic-0", "x");
    let mut keyed = Message::new("topic-0", "x");
    keyed.set_sharding_key("user-42");
    for topics in [1usize, 1000] {
        let r = router(topics, t);
        let topic = format!("topic-{}", topics / 2);
        let mut g = c.benchmark_group(format!("route_message_16q_{topics}_topics"));
        for (name, msg, strategy) in [
            ("round_robin", &plain, RoutingStrategy::RoundRobin),
            ("random", &plain, RoutingStrategy::Random),
            ("message_hash", &keyed, RoutingStrategy::MessageHash),
        ] {
            g.bench_function(name, |b| {
                b.iter(|| {
                    black_box(
                        r.route_message(black_box(&topic), msg, strategy, t)
                            .expect("routes"),
                    )
                })
            });
        }
        g.bench_function("retry_avoiding_last_broker", |b| {
            b.iter(|| {
                black_box(
                    r.route_retry(
                        &topic,
                        &plain,
                        RoutingStrategy::RoundRobin,
                        Some("broker-0"),
                        t,
                    )
                    .expect("routes"),
                )
            })
        });
        g.bench_function("selector_by_hash", |b| {
            b.iter(|| {
                black_box(
                    r.route_with_selector(&topic, &keyed, &SelectByHash, None, t)
                        .expect("routes"),
                )
            })
        });
        g.finish();
    }
}

#[allow(missing_docs)]
mod groups {
    use super::*;
    criterion_group!(benches, bench_route);
}
criterion_main!(groups::benches);
