//! # rmq-routing
//!
//! The routing brain of the rmq producer, as pure logic: the route cache with prebuilt publish queues
//! ([`TopicBrokerMapping`]), queue selectors ([`selector`]), the broker health state machine with Java's
//! latency fault tolerance ([`HealthRegistry`]), and the [`MessageRouter`] that combines them.
//!
//! **Contract.** No sockets, no threads of its own, no clock reads: every operation that needs the time
//! takes `now: Instant`, so tests drive time. It depends on `rmq-protocol` for route and message types and
//! never on `rmq-remoting`. Everything is `Send + Sync`; routing a message takes read locks only and
//! allocates nothing.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::{Duration, Instant};
//! use rmq_protocol::{Message, TopicRouteData};
//! use rmq_routing::{HealthPolicy, HealthRegistry, MessageRouter, RouterConfig, RoutingStrategy, TopicBrokerMapping};
//!
//! let now = Instant::now();
//! let mapping = Arc::new(TopicBrokerMapping::new(now));
//! let route = TopicRouteData::decode(br#"{"brokerDatas":[{"brokerAddrs":{"0":"127.0.0.1:10911"},
//!     "brokerName":"broker-a","cluster":"C"}],"queueDatas":[{"brokerName":"broker-a","perm":6,
//!     "readQueueNums":4,"writeQueueNums":4}]}"#).unwrap();
//! mapping.update_route_info("TopicTest", route, now);
//! let health = Arc::new(HealthRegistry::new(HealthPolicy::default(), now));
//! let router = MessageRouter::new(mapping, health, RouterConfig::default());
//!
//! let msg = Message::new("TopicTest", "hi");
//! let r = router.route_message("TopicTest", &msg, RoutingStrategy::RoundRobin, now).unwrap();
//! assert_eq!(r.broker_addr(), "127.0.0.1:10911");
//! router.report_result(r.broker_name(), Duration::from_millis(2), now);
//! ```

#![forbid(unsafe_code)]

mod clock;
pub mod health;
pub mod mapping;
pub mod router;
pub mod selector;

pub use health::{BrokerHealthSnapshot, FailureKind, HealthPolicy, HealthRegistry, HealthState};
pub use mapping::{PublishQueue, RouteSummary, TopicBrokerMapping, TopicPublishInfo};
pub use router::{
    MessageRouter, RouteError, RouterConfig, RouterStats, RoutingResult, RoutingStrategy,
};
pub use selector::{
    JavaHashCode, LiteTopicSelector, QueueSelector, SelectByHash, consistent_hash,
    java_string_hash, select_by_hash,
};
