//! [`TopicBrokerMapping`]: the route cache. Topic → route, with an immutable, prebuilt publish-queue list
//! swapped whole on update, and visible staleness.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use parking_lot::RwLock;
use rmq_protocol::route::{TopicRouteData, perm};

use crate::clock::{Epoch, FastHash};
use crate::health::{BrokerCell, HealthRegistry};

/// One queue a producer may send to: broker, queue id, and the broker's master address.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PublishQueue {
    /// Broker name.
    pub broker_name: Arc<str>,
    /// Queue id on that broker.
    pub queue_id: i32,
    /// The master's address; `None` only for queues of an ordered-topic configuration whose broker has no
    /// master right now (the router never returns such a queue).
    pub broker_addr: Option<Arc<str>>,
}

/// The publish queues of one topic, built once per route and shared read-only.
#[derive(Debug)]
pub struct TopicPublishInfo {
    /// The topic.
    pub topic: Arc<str>,
    /// Queues in Java's order (see [`TopicPublishInfo::from_route`]).
    pub queues: Vec<PublishQueue>,
    /// Built from `orderTopicConf`.
    pub order_topic: bool,
    /// Built from the TBW102 route because the topic has no route of its own yet.
    pub from_default_topic: bool,
    /// Round-robin position for this route (a fresh route starts over, like Java's index reset).
    pub(crate) next_index: AtomicU32,
    /// Each queue's broker health cell, resolved once by the first router that uses this list, with the
    /// identity of its registry, so routing needs no map lookup or lock for health.
    pub(crate) cells: OnceLock<(usize, Box<[Arc<BrokerCell>]>)>,
}

impl TopicPublishInfo {
    /// The health cell of every queue, resolved once per publish list (for the registry that resolved
    /// them first; `None` for another registry).
    pub(crate) fn cells_for<'a>(
        &'a self,
        health: &HealthRegistry,
    ) -> Option<&'a [Arc<BrokerCell>]> {
        let me = health as *const HealthRegistry as usize;
        let (owner, cells) = self.cells.get_or_init(|| {
            (
                me,
                self.queues
                    .iter()
                    .map(|q| health.cell(&q.broker_name))
                    .collect(),
            )
        });
        (*owner == me).then_some(&**cells)
    }

    /// Builds the publish queues exactly as the Java client (`topicRouteData2TopicPublishInfo`), except
    /// that counts are cut to [`rmq_protocol::route::MAX_QUEUE_NUMS`] each and
    /// [`rmq_protocol::route::MAX_ROUTE_QUEUES`] in all (a route decoded from the wire was refused above
    /// them already):
    ///
    /// 1. If `orderTopicConf` is set (`"brokerA:4;brokerB:8"`), queues `0..n` of each listed broker, in that
    ///    order.
    /// 2. Otherwise the queue data sorted by broker name; for each writable one whose broker has a master
    ///    (id 0), queues `0..writeQueueNums`.
    ///
    /// Static topics (`topicQueueMappingByBroker`) are built by rule 2 from their physical queues; logical
    /// queue mapping is not supported.
    pub fn from_route(topic: &str, route: &TopicRouteData) -> TopicPublishInfo {
        let master =
            |name: &str| -> Option<Arc<str>> { route.broker(name)?.master_addr().map(Arc::from) };
        let mut queues = Vec::new();
        let order_conf = route
            .order_topic_conf
            .as_deref()
            .filter(|c| !c.trim().is_empty());
        if let Some(conf) = order_conf {
            for item in conf.split(';') {
                let Some((name, n)) = item.split_once(':') else {
                    continue;
                };
                let Ok(n) = n.trim().parse::<i32>() else {
                    continue;
                };
                let name: Arc<str> = Arc::from(name.trim());
                let addr = master(&name);
                for queue_id in 0..bounded(n, queues.len()) {
                    queues.push(PublishQueue {
                        broker_name: name.clone(),
                        queue_id,
                        broker_addr: addr.clone(),
                    });
                }
            }
        } else {
            let mut datas: Vec<_> = route.queue_datas.iter().collect();
            datas.sort_by(|a, b| a.broker_name.cmp(&b.broker_name));
            for qd in datas {
                if !perm::is_writeable(qd.perm) {
                    continue;
                }
                let Some(addr) = master(&qd.broker_name) else {
                    continue;
                };
                let name: Arc<str> = Arc::from(qd.broker_name.as_str());
                for queue_id in 0..bounded(qd.write_queue_nums, queues.len()) {
                    queues.push(PublishQueue {
                        broker_name: name.clone(),
                        queue_id,
                        broker_addr: Some(addr.clone()),
                    });
                }
            }
        }
        TopicPublishInfo {
            topic: Arc::from(topic),
            queues,
            order_topic: order_conf.is_some(),
            from_default_topic: false,
            next_index: AtomicU32::new(0),
            cells: OnceLock::new(),
        }
    }

    /// Publish queues for `topic` derived from the TBW102 route, for a topic the broker will create on the
    /// first send: every queue data's counts become `min(default_topic_queue_nums, readQueueNums)`, as Java
    /// does.
    pub fn from_default_route(
        topic: &str,
        tbw102: &TopicRouteData,
        default_topic_queue_nums: i32,
    ) -> TopicPublishInfo {
        let mut route = tbw102.clone();
        route.order_topic_conf = None;
        for qd in &mut route.queue_datas {
            let n = default_topic_queue_nums.min(qd.read_queue_nums);
            qd.read_queue_nums = n;
            qd.write_queue_nums = n;
        }
        let mut info = Self::from_route(topic, &route);
        info.from_default_topic = true;
        info
    }

    /// Whether there is at least one queue.
    pub fn ok(&self) -> bool {
        !self.queues.is_empty()
    }
}

/// Whether two routes differ in what matters, comparing queue and broker data in sorted order (Java's
/// `topicRouteDataChanged`).
pub fn route_changed(old: &TopicRouteData, new: &TopicRouteData) -> bool {
    let norm = |r: &TopicRouteData| {
        let mut r = r.clone();
        r.queue_datas
            .sort_by(|a, b| a.broker_name.cmp(&b.broker_name));
        r.broker_datas
            .sort_by(|a, b| a.broker_name.cmp(&b.broker_name));
        r
    };
    norm(old) != norm(new)
}

/// One cached route.
#[derive(Debug)]
struct Entry {
    route: Arc<TopicRouteData>,
    info: Arc<TopicPublishInfo>,
    updated: Instant,
    last_failure: Option<(Instant, String)>,
    last_used: AtomicU64,
}

/// What the cache knows about one topic, for stats and debugging.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteSummary {
    /// Topic.
    pub topic: String,
    /// Number of publish queues.
    pub queues: usize,
    /// Distinct brokers among them.
    pub brokers: usize,
    /// Time since the route was last fetched successfully.
    pub age: Duration,
    /// The last refresh failed after the last success (the route may be stale).
    pub stale: bool,
    /// The error of the last failed refresh, if it came after the last success.
    pub last_error: Option<String>,
    /// Derived from TBW102 (auto-created topic).
    pub from_default_topic: bool,
}

/// The route cache: topic → route and publish queues.
///
/// Thread-safe (a read-write lock around the map; readers never wait for a route fetch, which happens
/// outside). Publish-queue lists are immutable `Arc`s replaced whole, so a reader keeps a consistent list
/// for as long as it holds it. A failed refresh never removes a route: it stays usable and
/// [`TopicBrokerMapping::route_age`] and [`RouteSummary::stale`] show how old it is.
#[derive(Debug)]
pub struct TopicBrokerMapping {
    epoch: Epoch,
    routes: RwLock<HashMap<Arc<str>, Entry, FastHash>>,
}

impl TopicBrokerMapping {
    /// An empty cache. `now` anchors its internal clock (time is always passed in).
    pub fn new(now: Instant) -> Self {
        TopicBrokerMapping {
            epoch: Epoch::new(now),
            routes: RwLock::new(HashMap::with_hasher(FastHash)),
        }
    }

    /// The publish queues of `topic`, marking the topic as used at `now`. Does not allocate.
    pub fn get_available_queues(&self, topic: &str, now: Instant) -> Option<Arc<TopicPublishInfo>> {
        self.with_available_queues(topic, now, Arc::clone)
    }

    /// Runs `f` on the publish queues of `topic` under the cache's read lock (no reference count taken),
    /// marking the topic as used at `now`.
    pub fn with_available_queues<R>(
        &self,
        topic: &str,
        now: Instant,
        f: impl FnOnce(&Arc<TopicPublishInfo>) -> R,
    ) -> Option<R> {
        let routes = self.routes.read();
        let e = routes.get(topic)?;
        // Write the shared timestamp only when it moved by a second or more: senders on many threads would
        // otherwise fight over its cache line on every call.
        let used = self.epoch.nanos(now);
        if used.saturating_sub(e.last_used.load(Ordering::Relaxed)) >= 1_000_000_000 {
            e.last_used.store(used, Ordering::Relaxed);
        }
        Some(f(&e.info))
    }

    /// The raw route of `topic`.
    pub fn route(&self, topic: &str) -> Option<Arc<TopicRouteData>> {
        self.routes.read().get(topic).map(|e| e.route.clone())
    }

    /// Stores a freshly fetched route. Returns whether anything changed (a new topic, or a route that
    /// differs from the cached one); an unchanged route only refreshes the timestamp and keeps the same
    /// publish list (and its round-robin position).
    pub fn update_route_info(&self, topic: &str, route: TopicRouteData, now: Instant) -> bool {
        let info = TopicPublishInfo::from_route(topic, &route);
        self.store(topic, route, info, now)
    }

    /// Stores publish queues derived from the TBW102 route for a topic that has no route yet
    /// ([`TopicPublishInfo::from_default_route`]). Returns whether anything changed.
    pub fn update_from_default_route(
        &self,
        topic: &str,
        tbw102: TopicRouteData,
        default_topic_queue_nums: i32,
        now: Instant,
    ) -> bool {
        let info = TopicPublishInfo::from_default_route(topic, &tbw102, default_topic_queue_nums);
        self.store(topic, tbw102, info, now)
    }

    fn store(
        &self,
        topic: &str,
        route: TopicRouteData,
        info: TopicPublishInfo,
        now: Instant,
    ) -> bool {
        let mut routes = self.routes.write();
        if let Some(e) = routes.get_mut(topic)
            && e.info.from_default_topic == info.from_default_topic
            && !route_changed(&e.route, &route)
        {
            e.updated = now;
            e.last_failure = None;
            return false;
        }
        let used = self.epoch.nanos(now);
        routes.insert(
            Arc::from(topic),
            Entry {
                route: Arc::new(route),
                info: Arc::new(info),
                updated: now,
                last_failure: None,
                last_used: AtomicU64::new(used),
            },
        );
        true
    }

    /// Records that refreshing `topic` failed at `now`. The cached route, if any, stays in use.
    pub fn mark_refresh_failed(&self, topic: &str, error: impl Into<String>, now: Instant) {
        if let Some(e) = self.routes.write().get_mut(topic) {
            e.last_failure = Some((now, error.into()));
        }
    }

    /// Time since `topic`'s route was last fetched successfully.
    pub fn route_age(&self, topic: &str, now: Instant) -> Option<Duration> {
        self.routes
            .read()
            .get(topic)
            .map(|e| now.saturating_duration_since(e.updated))
    }

    /// Removes routes of topics not used for longer than `idle`, returning their names. Staleness never
    /// removes a route; only disuse does.
    pub fn clear_expired_routes(&self, idle: Duration, now: Instant) -> Vec<String> {
        let cutoff = self
            .epoch
            .nanos(now)
            .saturating_sub(idle.as_nanos().min(u64::MAX as u128) as u64);
        let mut removed = Vec::new();
        let mut routes = self.routes.write();
        routes.retain(|topic, e| {
            let keep = e.last_used.load(Ordering::Relaxed) >= cutoff;
            if !keep {
                removed.push(topic.to_string());
            }
            keep
        });
        // After a burst of topics the table keeps its largest size: give most of it back.
        if routes.capacity() > 64 && routes.len() * 4 < routes.capacity() {
            let keep = routes.len() * 2;
            routes.shrink_to(keep);
        }
        removed
    }

    /// Cached topics.
    pub fn topics(&self) -> Vec<String> {
        self.routes.read().keys().map(|t| t.to_string()).collect()
    }

    /// Number of cached topics.
    pub fn len(&self) -> usize {
        self.routes.read().len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.routes.read().is_empty()
    }

    /// A summary of every cached route, sorted by topic.
    pub fn summary(&self, now: Instant) -> Vec<RouteSummary> {
        let routes = self.routes.read();
        let mut out: Vec<RouteSummary> = routes
            .iter()
            .map(|(topic, e)| {
                let mut brokers: Vec<&str> =
                    e.info.queues.iter().map(|q| &*q.broker_name).collect();
                brokers.sort_unstable();
                brokers.dedup();
                let failure = e.last_failure.as_ref().filter(|(at, _)| *at >= e.updated);
                RouteSummary {
                    topic: topic.to_string(),
                    queues: e.info.queues.len(),
                    brokers: brokers.len(),
                    age: now.saturating_duration_since(e.updated),
                    stale: failure.is_some(),
                    last_error: failure.map(|(_, err)| err.clone()),
                    from_default_topic: e.info.from_default_topic,
                }
            })
            .collect();
        out.sort_by(|a, b| a.topic.cmp(&b.topic));
        out
    }
}

/// A queue count cut to the bounds of a route, given `built` queues so far.
fn bounded(n: i32, built: usize) -> i32 {
    let room = rmq_protocol::route::MAX_ROUTE_QUEUES.saturating_sub(built);
    n.clamp(0, rmq_protocol::route::MAX_QUEUE_NUMS)
        .min(i32::try_from(room).unwrap_or(i32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmq_protocol::route::{BrokerData, QueueData};

    pub(crate) fn broker(name: &str, master: Option<&str>, slave: Option<&str>) -> BrokerData {
        let mut b = BrokerData {
            broker_name: name.into(),
            cluster: "C".into(),
            ..Default::default()
        };
        if let Some(m) = master {
            b.broker_addrs.insert(0, m.into());
        }
        if let Some(s) = slave {
            b.broker_addrs.insert(1, s.into());
        }
        b
    }

    pub(crate) fn queues(name: &str, perm: i32, n: i32) -> QueueData {
        QueueData {
            broker_name: name.into(),
            perm,
            read_queue_nums: n,
            write_queue_nums: n,
            topic_sys_flag: 0,
        }
    }

    fn ids(info: &TopicPublishInfo) -> Vec<(String, i32)> {
        info.queues
            .iter()
            .map(|q| (q.broker_name.to_string(), q.queue_id))
            .collect()
    }

    #[test]
    fn brokers_sorted_by_name_writable_with_master_only() {
        let route = TopicRouteData {
            broker_datas: vec![
                broker("broker-c", Some("127.0.0.1:3"), None),
                broker("broker-a", Some("127.0.0.1:1"), Some("127.0.0.1:11")),
                broker("broker-b", None, Some("127.0.0.1:22")), // only a slave
                broker("broker-d", Some("127.0.0.1:4"), None),
            ],
            queue_datas: vec![
                queues("broker-d", perm::READ, 4), // read-only
                queues("broker-c", perm::READ | perm::WRITE, 2),
                queues("broker-b", perm::READ | perm::WRITE, 4),
                queues("broker-a", perm::READ | perm::WRITE | perm::INHERIT, 2),
                queues("broker-x", perm::READ | perm::WRITE, 2), // no broker data at all
            ],
            ..Default::default()
        };
        let info = TopicPublishInfo::from_route("T", &route);
        assert_eq!(
            ids(&info),
            [
                ("broker-a", 0),
                ("broker-a", 1),
                ("broker-c", 0),
                ("broker-c", 1)
            ]
            .map(|(b, q)| (b.to_string(), q))
        );
        assert_eq!(info.queues[0].broker_addr.as_deref(), Some("127.0.0.1:1"));
        assert!(!info.order_topic);
    }

    #[test]
    fn order_topic_conf_wins_and_keeps_its_order() {
        let route = TopicRouteData {
            broker_datas: vec![
                broker("b", Some("127.0.0.1:2"), None),
                broker("a", None, Some("127.0.0.1:1")),
            ],
            queue_datas: vec![queues("a", 6, 8), queues("b", 6, 8)],
            order_topic_conf: Some("b:2;a:1".into()),
            ..Default::default()
        };
        let info = TopicPublishInfo::from_route("T", &route);
        assert!(info.order_topic);
        assert_eq!(
            ids(&info),
            [("b", 0), ("b", 1), ("a", 0)].map(|(b, q)| (b.to_string(), q))
        );
        assert_eq!(
            info.queues[2].broker_addr, None,
            "a has no master: kept, so ordering keys do not move"
        );
    }

    #[test]
    fn default_route_uses_min_of_default_and_read_queues() {
        let tbw = TopicRouteData {
            broker_datas: vec![
                broker("a", Some("127.0.0.1:1"), None),
                broker("b", Some("127.0.0.1:2"), None),
            ],
            queue_datas: vec![queues("a", 7, 8), queues("b", 7, 2)],
            ..Default::default()
        };
        let info = TopicPublishInfo::from_default_route("New", &tbw, 4);
        assert!(info.from_default_topic);
        assert_eq!(info.queues.len(), 4 + 2);
        assert_eq!(&*info.topic, "New");
    }

    #[test]
    fn updates_failures_staleness_and_expiry() {
        let t0 = Instant::now();
        let m = TopicBrokerMapping::new(t0);
        let route = TopicRouteData {
            broker_datas: vec![broker("a", Some("127.0.0.1:1"), None)],
            queue_datas: vec![queues("a", 6, 4)],
            ..Default::default()
        };
        assert!(m.update_route_info("T", route.clone(), t0));
        let first = m.get_available_queues("T", t0).unwrap();
        assert!(!m.update_route_info("T", route.clone(), t0 + Duration::from_secs(30)));
        assert!(
            Arc::ptr_eq(&first, &m.get_available_queues("T", t0).unwrap()),
            "unchanged route keeps its list"
        );
        assert_eq!(
            m.route_age("T", t0 + Duration::from_secs(31)),
            Some(Duration::from_secs(1))
        );

        m.mark_refresh_failed("T", "name server down", t0 + Duration::from_secs(60));
        let s = &m.summary(t0 + Duration::from_secs(90))[0];
        assert!(s.stale);
        assert_eq!(s.age, Duration::from_secs(60));
        assert_eq!(s.last_error.as_deref(), Some("name server down"));
        assert!(
            m.get_available_queues("T", t0 + Duration::from_secs(90))
                .is_some(),
            "stale route still usable"
        );

        let mut changed = route.clone();
        changed.queue_datas[0].write_queue_nums = 8;
        assert!(m.update_route_info("T", changed, t0 + Duration::from_secs(100)));
        assert_eq!(
            m.get_available_queues("T", t0 + Duration::from_secs(100))
                .unwrap()
                .queues
                .len(),
            8
        );
        assert!(!m.summary(t0 + Duration::from_secs(100))[0].stale);

        assert!(m.update_route_info("Idle", route, t0));
        let removed =
            m.clear_expired_routes(Duration::from_secs(50), t0 + Duration::from_secs(120));
        assert_eq!(removed, vec!["Idle".to_string()]);
        assert_eq!(m.topics(), vec!["T".to_string()]);
    }

    /// Before: a burst of topics left the route table at its largest size after they expired.
    #[test]
    fn the_route_table_shrinks_after_a_burst() {
        let t0 = Instant::now();
        let m = TopicBrokerMapping::new(t0);
        let mut r = TopicRouteData::default();
        r.queue_datas.push(rmq_protocol::route::QueueData {
            broker_name: "a".into(),
            perm: 6,
            read_queue_nums: 1,
            write_queue_nums: 1,
            topic_sys_flag: 0,
        });
        for i in 0..5_000 {
            m.update_route_info(&format!("T{i}"), r.clone(), t0);
        }
        m.update_route_info("Kept", r, t0 + Duration::from_secs(100));
        m.clear_expired_routes(Duration::from_secs(50), t0 + Duration::from_secs(120));
        assert_eq!(m.topics(), ["Kept"]);
        assert!(
            m.routes.read().capacity() <= 64,
            "{}",
            m.routes.read().capacity()
        );
    }

    /// A route built by hand (not decoded, so not checked) with a count of 2^31 - 1: the queues are cut
    /// to the bound instead of aborting the process on allocation.
    #[test]
    fn huge_queue_counts_are_cut() {
        use rmq_protocol::route::{BrokerData, MAX_QUEUE_NUMS, QueueData};
        let mut r = TopicRouteData::default();
        let mut b = BrokerData {
            broker_name: "a".into(),
            ..Default::default()
        };
        b.broker_addrs.insert(0, "127.0.0.1:1".into());
        r.broker_datas.push(b);
        r.queue_datas.push(QueueData {
            broker_name: "a".into(),
            perm: 6,
            read_queue_nums: 1,
            write_queue_nums: i32::MAX,
            topic_sys_flag: 0,
        });
        let info = TopicPublishInfo::from_route("T", &r);
        assert_eq!(info.queues.len(), MAX_QUEUE_NUMS as usize);
    }
}
