//! [`MessageRouter`]: picks the queue for a message from the cached route, the strategy and broker health.

use std::any::Any;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use rmq_protocol::Message;
use thiserror::Error;

use crate::health::{BrokerCell, BrokerHealthSnapshot, FailureKind, HealthRegistry, Usability};
use crate::mapping::{PublishQueue, TopicBrokerMapping, TopicPublishInfo};
use crate::selector::{
    QueueSelector, RandomIndex, RoundRobin, hash_key, java_hash_index, java_string_hash,
};

/// How to choose among a topic's queues.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RoutingStrategy {
    /// Rotate through the queues (Java's default).
    RoundRobin,
    /// A random queue.
    Random,
    /// The queue given by Java's hash of the sharding key (else the first key): the same key always lands
    /// on the same queue while the route is unchanged. Health never moves a key (ordering beats
    /// availability); a message without a key falls back to [`RouterConfig::hash_fallback`].
    MessageHash,
    /// A caller-supplied [`QueueSelector`] (ordered sends); health never moves its choice.
    Selector,
}

/// The route has at least one queue.
fn non_empty(info: &TopicPublishInfo) -> Result<(), RouteError> {
    if info.queues.is_empty() {
        return Err(RouteError::NoQueue(info.topic.to_string()));
    }
    Ok(())
}

impl RoutingStrategy {
    fn index(self) -> usize {
        self as usize
    }

    /// The strategy's name in settings and stats: `round_robin`, `random`, `message_hash`, `selector`.
    pub fn name(self) -> &'static str {
        match self {
            RoutingStrategy::RoundRobin => "round_robin",
            RoutingStrategy::Random => "random",
            RoutingStrategy::MessageHash => "message_hash",
            RoutingStrategy::Selector => "selector",
        }
    }

    /// The strategy a setting names (any case): `round_robin`, `random` or `message_hash` (a selector is
    /// given per send, never by name).
    pub fn from_name(name: &str) -> Option<RoutingStrategy> {
        match name.trim().to_ascii_lowercase().as_str() {
            "round_robin" => Some(RoutingStrategy::RoundRobin),
            "random" => Some(RoutingStrategy::Random),
            "message_hash" => Some(RoutingStrategy::MessageHash),
            _ => None,
        }
    }
}

/// Router settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouterConfig {
    /// Strategy for [`RoutingStrategy::MessageHash`] messages that have no key (default round robin).
    pub hash_fallback: RoutingStrategy,
    /// Seed of the random strategy (the producer passes a random seed; tests a fixed one).
    pub random_seed: u64,
}

impl Default for RouterConfig {
    fn default() -> Self {
        RouterConfig {
            hash_fallback: RoutingStrategy::RoundRobin,
            random_seed: 0x5EED,
        }
    }
}

/// Where a message goes: a queue of the topic's publish list (held by one reference count).
#[derive(Clone, Debug)]
pub struct RoutingResult {
    info: Arc<TopicPublishInfo>,
    index: usize,
    /// The strategy that decided (the fallback for a key-less hash message).
    pub strategy: RoutingStrategy,
    /// Whether the chosen broker was usable (false: every broker was bad and this is the least bad).
    pub healthy_choice: bool,
}

impl RoutingResult {
    /// The chosen queue.
    pub fn queue(&self) -> &PublishQueue {
        &self.info.queues[self.index]
    }

    /// The topic.
    pub fn topic(&self) -> &str {
        &self.info.topic
    }

    /// The broker's name.
    pub fn broker_name(&self) -> &str {
        &self.queue().broker_name
    }

    /// The broker's name, shared with the route (cloning it copies no text).
    pub fn shared_broker_name(&self) -> &Arc<str> {
        &self.queue().broker_name
    }

    /// The queue id.
    pub fn queue_id(&self) -> i32 {
        self.queue().queue_id
    }

    /// The broker's master address (the router only returns queues that have one).
    pub fn broker_addr(&self) -> &str {
        self.queue().broker_addr.as_deref().unwrap_or_default()
    }

    /// The position of the queue in the publish list.
    pub fn index(&self) -> usize {
        self.index
    }

    /// The publish list the queue was chosen from.
    pub fn publish_info(&self) -> &Arc<TopicPublishInfo> {
        &self.info
    }
}

impl PartialEq for RoutingResult {
    fn eq(&self, other: &Self) -> bool {
        self.queue() == other.queue()
            && self.strategy == other.strategy
            && self.healthy_choice == other.healthy_choice
    }
}

/// Why no queue could be chosen.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RouteError {
    /// The cache has no route for the topic (fetch it first).
    #[error("no route for topic {0:?}")]
    NoRoute(String),
    /// The route has no writable queue with a master.
    #[error("topic {0:?} has no writable queue on a broker with a master")]
    NoQueue(String),
    /// The chosen queue's broker has no master (ordered topics keep such queues so keys do not move).
    #[error("topic {topic:?}: broker {broker:?} of the selected queue has no master")]
    NoBroker {
        /// Topic.
        topic: String,
        /// Broker.
        broker: String,
    },
    /// The selector returned nothing or an index out of range.
    #[error("topic {topic:?}: the selector chose no queue among {queues}")]
    SelectorRefused {
        /// Topic.
        topic: String,
        /// Number of queues offered.
        queues: usize,
    },
}

/// A snapshot of the router's counters.
#[derive(Clone, Debug, PartialEq)]
pub struct RouterStats {
    /// Routing calls.
    pub total: u64,
    /// Calls that produced a queue.
    pub routed: u64,
    /// Calls that failed.
    pub errors: u64,
    /// Calls routed by each strategy (after fallback): round robin, random, hash, selector.
    pub by_strategy: [(RoutingStrategy, u64); 4],
    /// Calls that had to settle for an unusable broker.
    pub least_bad: u64,
    /// Per-broker health and routed counts.
    pub brokers: Vec<BrokerHealthSnapshot>,
}

const STRATEGIES: [RoutingStrategy; 4] = [
    RoutingStrategy::RoundRobin,
    RoutingStrategy::Random,
    RoutingStrategy::MessageHash,
    RoutingStrategy::Selector,
];

/// Chooses queues. Shares the route cache and health registry with the rest of the producer.
///
/// For round robin and random it walks the queues from the strategy's start position and takes the first
/// whose broker is best by, in order: usable (HEALTHY before DEGRADED) and not the broker of the previous
/// failed attempt; usable; then, when no broker is usable, the least bad one (isolated, then UNHEALTHY,
/// then SUSPENDED) rather than failing. A call allocates nothing.
#[derive(Debug)]
pub struct MessageRouter {
    mapping: Arc<TopicBrokerMapping>,
    health: Arc<HealthRegistry>,
    config: RouterConfig,
    random: RandomIndex,
    errors: AtomicU64,
    least_bad: AtomicU64,
    by_strategy: [AtomicU64; 4],
}

impl MessageRouter {
    /// A router over `mapping` and `health`.
    pub fn new(
        mapping: Arc<TopicBrokerMapping>,
        health: Arc<HealthRegistry>,
        config: RouterConfig,
    ) -> Self {
        MessageRouter {
            random: RandomIndex::new(config.random_seed),
            mapping,
            health,
            config,
            errors: AtomicU64::new(0),
            least_bad: AtomicU64::new(0),
            by_strategy: Default::default(),
        }
    }

    /// The route cache.
    pub fn mapping(&self) -> &Arc<TopicBrokerMapping> {
        &self.mapping
    }

    /// The health registry.
    pub fn health(&self) -> &Arc<HealthRegistry> {
        &self.health
    }

    /// Routes a first attempt.
    pub fn route_message(
        &self,
        topic: &str,
        message: &Message,
        strategy: RoutingStrategy,
        now: Instant,
    ) -> Result<RoutingResult, RouteError> {
        self.route_retry(topic, message, strategy, None, now)
    }

    /// Routes an attempt, avoiding `last_broker` (the broker of the previous failed attempt, Java's
    /// `lastBrokerName`) while another usable broker exists.
    pub fn route_retry(
        &self,
        topic: &str,
        message: &Message,
        strategy: RoutingStrategy,
        last_broker: Option<&str>,
        now: Instant,
    ) -> Result<RoutingResult, RouteError> {
        let result = self
            .mapping
            .with_available_queues(topic, now, |info| {
                self.route_inner(info, message, strategy, last_broker, now)
            })
            .unwrap_or_else(|| Err(RouteError::NoRoute(topic.to_owned())));
        self.count(&result);
        result
    }

    /// Routes with a caller-supplied selector (Java's `send(msg, selector, arg)`): no health-based move and
    /// no retry on another queue, as in Java.
    pub fn route_with_selector(
        &self,
        topic: &str,
        message: &Message,
        selector: &dyn QueueSelector,
        arg: Option<&(dyn Any + Send + Sync)>,
        now: Instant,
    ) -> Result<RoutingResult, RouteError> {
        let result = self
            .mapping
            .with_available_queues(topic, now, |info| {
                non_empty(info)?;
                let i = selector
                    .select(&info.queues, message, arg)
                    .filter(|i| *i < info.queues.len())
                    .ok_or_else(|| RouteError::SelectorRefused {
                        topic: topic.to_owned(),
                        queues: info.queues.len(),
                    })?;
                self.fixed(info, i, RoutingStrategy::Selector, now)
            })
            .unwrap_or_else(|| Err(RouteError::NoRoute(topic.to_owned())));
        self.count(&result);
        result
    }

    fn count(&self, result: &Result<RoutingResult, RouteError>) {
        match result {
            Ok(r) => {
                self.by_strategy[r.strategy.index()].fetch_add(1, Ordering::Relaxed);
                if !r.healthy_choice {
                    self.least_bad.fetch_add(1, Ordering::Relaxed);
                }
            }
            Err(_) => {
                self.errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// The queue at `i`, whatever the health of its broker.
    fn fixed(
        &self,
        info: &Arc<TopicPublishInfo>,
        i: usize,
        strategy: RoutingStrategy,
        now: Instant,
    ) -> Result<RoutingResult, RouteError> {
        let q = &info.queues[i];
        if q.broker_addr.is_none() {
            return Err(RouteError::NoBroker {
                topic: info.topic.to_string(),
                broker: q.broker_name.to_string(),
            });
        }
        let now_n = self.health.now_nanos(now);
        let count = |cell: Option<&BrokerCell>| {
            if let Some(c) = cell {
                c.routed.fetch_add(1, Ordering::Relaxed);
            }
            self.health.usability_of(cell, now_n).usable()
        };
        let usable = match info.cells_for(&self.health) {
            Some(cells) => count(Some(&cells[i])),
            None => self
                .health
                .with_cells(|map| count(map.get(&*q.broker_name).map(|c| &**c))),
        };
        Ok(RoutingResult {
            info: info.clone(),
            index: i,
            strategy,
            healthy_choice: usable,
        })
    }

    fn route_inner(
        &self,
        info: &Arc<TopicPublishInfo>,
        message: &Message,
        strategy: RoutingStrategy,
        last_broker: Option<&str>,
        now: Instant,
    ) -> Result<RoutingResult, RouteError> {
        non_empty(info)?;
        let n = info.queues.len();
        let mut strategy = strategy;
        if strategy == RoutingStrategy::MessageHash {
            match hash_key(message) {
                Some(key) => {
                    let i = java_hash_index(java_string_hash(key), n);
                    return self.fixed(info, i, RoutingStrategy::MessageHash, now);
                }
                None => strategy = self.config.hash_fallback,
            }
        }
        let start = match strategy {
            RoutingStrategy::Random => self.random.below(n),
            _ => {
                strategy = RoutingStrategy::RoundRobin;
                RoundRobin::next(info)
            }
        };
        let now_n = self.health.now_nanos(now);
        match info.cells_for(&self.health) {
            Some(cells) => self.walk(info, start, strategy, last_broker, |i| {
                (
                    self.health.usability_of(Some(&cells[i]), now_n),
                    Some(&*cells[i]),
                )
            }),
            // A publish list first used by another registry's router: look the brokers up by name.
            None => self.health.with_cells(|map| {
                self.walk(info, start, strategy, last_broker, |i| {
                    let cell = map.get(&*info.queues[i].broker_name).map(|c| &**c);
                    (self.health.usability_of(cell, now_n), cell)
                })
            }),
        }
    }

    /// Walks the queues from `start` and takes the first with the best score: usability first, then not
    /// being `last_broker`.
    fn walk<'c>(
        &self,
        info: &Arc<TopicPublishInfo>,
        start: usize,
        strategy: RoutingStrategy,
        last_broker: Option<&str>,
        health_of: impl Fn(usize) -> (Usability, Option<&'c BrokerCell>),
    ) -> Result<RoutingResult, RouteError> {
        let n = info.queues.len();
        let mut best: Option<(usize, u8, Option<&'c BrokerCell>)> = None;
        for step in 0..n {
            let i = (start + step) % n;
            let q = &info.queues[i];
            if q.broker_addr.is_none() {
                continue;
            }
            let (usability, cell) = health_of(i);
            let is_last = last_broker.is_some_and(|b| b == &*q.broker_name);
            let score = usability as u8 * 2 + u8::from(is_last);
            if best.is_none_or(|(_, s, _)| score < s) {
                best = Some((i, score, cell));
                if score == 0 {
                    break;
                }
            }
        }
        let Some((i, score, cell)) = best else {
            return Err(RouteError::NoQueue(info.topic.to_string()));
        };
        if let Some(c) = cell {
            c.routed.fetch_add(1, Ordering::Relaxed);
        }
        Ok(RoutingResult {
            info: info.clone(),
            index: i,
            strategy,
            healthy_choice: score / 2 <= Usability::Degraded as u8,
        })
    }

    /// Reports a successful attempt on `broker`.
    pub fn report_result(&self, broker: &str, latency: std::time::Duration, now: Instant) {
        self.health.report_success(broker, latency, now);
    }

    /// Reports a failed attempt on `broker`.
    pub fn report_failure(
        &self,
        broker: &str,
        kind: FailureKind,
        latency: std::time::Duration,
        now: Instant,
    ) {
        self.health.report_failure(broker, kind, latency, now);
    }

    /// The counters and a health snapshot.
    pub fn stats(&self, now: Instant) -> RouterStats {
        let errors = self.errors.load(Ordering::Relaxed);
        let by_strategy =
            STRATEGIES.map(|s| (s, self.by_strategy[s.index()].load(Ordering::Relaxed)));
        let routed = by_strategy.iter().map(|(_, n)| n).sum::<u64>();
        RouterStats {
            total: routed + errors,
            routed,
            errors,
            by_strategy,
            least_bad: self.least_bad.load(Ordering::Relaxed),
            brokers: self.health.snapshot(now),
        }
    }
}
