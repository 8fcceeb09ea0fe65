//! Routing a message allocates nothing: counted with a global allocator wrapper. This file holds one test
//! so no other test thread allocates while it counts.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rmq_protocol::Message;
use rmq_protocol::route::{BrokerData, QueueData, TopicRouteData};
use rmq_routing::{
    FailureKind, HealthPolicy, HealthRegistry, MessageRouter, RouterConfig, RoutingStrategy,
    SelectByHash, TopicBrokerMapping,
};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call to the system allocator unchanged; only counts allocations.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn route(brokers: usize, queues: i32) -> TopicRouteData {
    let mut r = TopicRouteData::default();
    for i in 0..brokers {
        let name = format!("broker-{i}");
        let mut b = BrokerData {
            broker_name: name.clone(),
            ..Default::default()
        };
        b.broker_addrs.insert(0, format!("127.0.0.1:{}", 10911 + i));
        r.broker_datas.push(b);
        r.queue_datas.push(QueueData {
            broker_name: name,
            perm: 6,
            read_queue_nums: queues,
            write_queue_nums: queues,
            topic_sys_flag: 0,
        });
    }
    r
}

#[test]
fn routing_allocates_nothing() {
    let t = Instant::now();
    let mapping = Arc::new(TopicBrokerMapping::new(t));
    for i in 0..1000 {
        mapping.update_route_info(&format!("topic-{i}"), route(2, 8), t);
    }
    let policy = HealthPolicy {
        latency_fault_tolerance: true,
        ..HealthPolicy::default()
    };
    let router = MessageRouter::new(
        mapping,
        Arc::new(HealthRegistry::new(policy, t)),
        RouterConfig::default(),
    );
    // Health cells exist once a broker has been reported; create them before counting.
    router.report_failure(
        "broker-0",
        FailureKind::Timeout,
        Duration::from_millis(5),
        t,
    );
    router.report_result("broker-1", Duration::from_millis(1), t);
    let mut keyed = Message::new("topic-500", "x");
    keyed.set_sharding_key("user-42");
    let plain = Message::new("topic-500", "x");

    // The first call on a publish list resolves its brokers' health cells once (one allocation per route
    // version, not per call).
    router
        .route_message("topic-500", &plain, RoutingStrategy::RoundRobin, t)
        .unwrap();

    let before = ALLOCATIONS.load(Ordering::Relaxed);
    let mut sink = 0usize;
    for i in 0..10_000 {
        let now = t + Duration::from_micros(i);
        for (msg, strategy) in [
            (&plain, RoutingStrategy::RoundRobin),
            (&plain, RoutingStrategy::Random),
            (&keyed, RoutingStrategy::MessageHash),
        ] {
            let r = router
                .route_retry("topic-500", msg, strategy, Some("broker-1"), now)
                .unwrap();
            sink += r.queue_id() as usize;
        }
        let r = router
            .route_with_selector("topic-500", &keyed, &SelectByHash, None, now)
            .unwrap();
        sink += r.queue_id() as usize;
    }
    let allocations = ALLOCATIONS.load(Ordering::Relaxed) - before;
    assert!(sink > 0);
    assert_eq!(
        allocations, 0,
        "40,000 routing calls allocated {allocations} times"
    );
}
