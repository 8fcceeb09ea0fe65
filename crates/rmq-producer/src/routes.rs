//! Route management: fetching a topic's route from the name servers (one fetch per topic at a time, within
//! the caller's deadline, TBW102 standing in for a topic the broker will create), the periodic refresh
//! that keeps the last good route when the name servers fail, renewing a route at once when the address
//! it names stops answering (the endpoint failover a pair of RocketMQ 5 proxies needs), the broker address
//! override, and the broker addresses heartbeats and unregistering go to.
//!
//! Endpoints: the name-server list may name proxies, which answer route queries with their own address
//! for every broker. An endpoint whose connection failed is *suspect* for [`SUSPECT_FOR`]: fetches ask it
//! last, until a fetch from it succeeds or the time is up. Each producer starts at a random endpoint of
//! the list (as Java's `namesrvIndex`), so a fleet of producers spreads over the proxies it is given; after
//! a failover a producer stays with the endpoint that answered (as Java's does) until that one fails.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rmq_protocol::header::GetRouteInfoRequestHeader;
use rmq_protocol::{AUTO_CREATE_TOPIC, RemotingCommand, RequestCode, ResponseCode, TopicRouteData};
use rmq_remoting::{RemotingClient, RemotingError};
use rmq_routing::MessageRouter;
use tracing::{debug, warn};

use crate::config::ProducerConfig;
use crate::error::ProducerError;

/// How long a name server fetch waits between rounds at most, and at least.
const MAX_PAUSE: Duration = Duration::from_secs(1);
const MIN_PAUSE: Duration = Duration::from_millis(10);

/// Whether a fetch waits for name servers that are down (see [`Routes::ensure`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Patience {
    /// Try again until the deadline (a send's fetch).
    UntilDeadline,
    /// One round over the name servers (the periodic refresh).
    OneRound,
}

/// How long an endpoint whose connection failed is asked last.
const SUSPECT_FOR: Duration = Duration::from_secs(30);

/// Cached routes older than this and unused are dropped by the refresh.
const ROUTE_IDLE_EXPIRY: Duration = Duration::from_secs(600);

/// The route cache and the name servers behind it.
#[derive(Debug)]
pub(crate) struct Routes {
    router: MessageRouter,
    namesrv: Vec<String>,
    namesrv_index: AtomicUsize,
    /// Endpoints whose connection failed, since when; fetches ask them last. Removed when a fetch from
    /// one succeeds; at most one entry per endpoint of `namesrv`.
    suspect: Mutex<HashMap<String, Instant>>,
    /// A route came from a RocketMQ 5 proxy (it named the endpoint that answered for every broker).
    behind_proxy: AtomicBool,
    /// Topics being fetched, each with the lock concurrent fetchers of that topic wait on.
    fetching: Mutex<HashMap<String, Arc<Mutex<()>>>>,
    /// Advertised broker address → address to dial.
    overrides: BTreeMap<String, String>,
    api_timeout: Duration,
    refresh_after: Duration,
    default_topic_queue_nums: i32,
}

/// Removes a topic's fetch lock when its fetch ends, however it ends: only if it is still this fetch's
/// lock (a waiter on it may have started the next fetch with a lock of its own meanwhile).
struct FetchingGuard<'a> {
    routes: &'a Routes,
    topic: &'a str,
    lock: &'a Arc<Mutex<()>>,
}

impl Drop for FetchingGuard<'_> {
    fn drop(&mut self) {
        let mut fetching = self.routes.fetching.lock();
        if fetching
            .get(self.topic)
            .is_some_and(|l| Arc::ptr_eq(l, self.lock))
        {
            fetching.remove(self.topic);
        }
    }
}

impl Routes {
    /// Routes over `config`'s name servers, asking first the one `seed` picks.
    pub(crate) fn new(config: &ProducerConfig, router: MessageRouter, seed: u32) -> Routes {
        let namesrv = config.namesrv_list();
        let first = seed as usize % namesrv.len().max(1);
        Routes {
            router,
            namesrv,
            namesrv_index: AtomicUsize::new(first),
            suspect: Mutex::new(HashMap::new()),
            behind_proxy: AtomicBool::new(false),
            fetching: Mutex::new(HashMap::new()),
            overrides: config.broker_addr_override.clone(),
            api_timeout: config.mq_client_api_timeout,
            refresh_after: config.update_topic_route_info_interval,
            default_topic_queue_nums: config.default_topic_queue_nums,
        }
    }

    /// The router over the cached routes.
    pub(crate) fn router(&self) -> &MessageRouter {
        &self.router
    }

    /// Topics whose fetch is going on (their locks are removed when it ends).
    #[cfg(test)]
    pub(crate) fn fetches_in_progress(&self) -> usize {
        self.fetching.lock().len()
    }

    /// Whether `topic` has a route with publish queues.
    pub(crate) fn has_queues(&self, topic: &str, now: Instant) -> bool {
        self.router
            .mapping()
            .with_available_queues(topic, now, |i| i.ok())
            == Some(true)
    }

    /// Makes sure `topic` has publish queues, fetching its route (or TBW102's, so the broker creates the
    /// topic on the first send) by `deadline`. One fetch per topic at a time; concurrent callers wait for
    /// it, until their own deadline.
    pub(crate) fn ensure(
        &self,
        remoting: &RemotingClient,
        topic: &str,
        deadline: Instant,
    ) -> Result<(), ProducerError> {
        if self.has_queues(topic, Instant::now()) {
            return Ok(());
        }
        self.single_flight(topic, deadline, || {
            if self.has_queues(topic, Instant::now()) {
                return Ok(());
            }
            self.fetch_and_store(remoting, topic, deadline, Patience::UntilDeadline)
        })
        .unwrap_or_else(|| {
            Err(not_found(
                topic,
                "the send's deadline passed waiting for the route",
            ))
        })
    }

    /// Runs `fetch` as `topic`'s one fetch at a time: waits (until `deadline`; `None` if it passed) for a
    /// fetch of the topic in progress, and removes the topic's lock when it ends, however it ends.
    fn single_flight<R>(
        &self,
        topic: &str,
        deadline: Instant,
        fetch: impl FnOnce() -> R,
    ) -> Option<R> {
        let lock = self
            .fetching
            .lock()
            .entry(topic.to_owned())
            .or_default()
            .clone();
        let _held = lock.try_lock_until(deadline)?;
        let _guard = FetchingGuard {
            routes: self,
            topic,
            lock: &lock,
        };
        Some(fetch())
    }

    /// Fetches `topic`'s route (or TBW102's when the topic does not exist yet) and caches it. Brokers
    /// whose master it names anew (another address, or back) are told to broker health as reachable.
    fn fetch_and_store(
        &self,
        remoting: &RemotingClient,
        topic: &str,
        deadline: Instant,
        patience: Patience,
    ) -> Result<(), ProducerError> {
        let mapping = self.router.mapping();
        if let Some(route) = self.fetch_route(remoting, topic, deadline, patience)? {
            self.store(topic, route);
            return Ok(());
        }
        match self.fetch_route(remoting, AUTO_CREATE_TOPIC, deadline, patience)? {
            Some(tbw) => {
                mapping.update_from_default_route(
                    topic,
                    tbw,
                    self.default_topic_queue_nums,
                    Instant::now(),
                );
                Ok(())
            }
            None => Err(not_found(
                topic,
                "the topic does not exist and the name server has no TBW102 route (autoCreateTopicEnable=false?)",
            )),
        }
    }

    /// Caches `route` for `topic`; returns whether it changed. A broker whose master the route lists
    /// anew (restarted and registered again, or behind another proxy) is evidence that it answers, so an
    /// open breaker turns half-open.
    fn store(&self, topic: &str, route: TopicRouteData) -> bool {
        let mapping = self.router.mapping();
        let returned = registered_again(mapping.route(topic).as_deref(), &route);
        let changed = mapping.update_route_info(topic, route, Instant::now());
        for broker in returned {
            self.router
                .health()
                .report_reachable(&broker, Instant::now());
        }
        changed
    }

    /// The connection to `failed` (an address `topic`'s route names) was refused, lost or told to go
    /// away. When `failed` is a proxy ([`Routes::is_proxy`]), marks it suspect and, unless another
    /// sender did so meanwhile, fetches `topic`'s route again at once from the other endpoints, within
    /// `deadline` and `mq_client_api_timeout` (one round: no waiting for endpoints that are down); the
    /// others answer with their own address, so a renewal that works happens once per dead proxy (while
    /// every endpoint is down, each failed send tries one round, refused in microseconds). A failed
    /// renewal keeps the route as it was; it is not an error of the send that asked for it.
    ///
    /// A real broker's address is left to broker health and the periodic refresh: the name server drops
    /// a broker whose connection closed, and a route renewed then would lose the broker until the next
    /// refresh after it came back, where the kept route lets its breaker bring it back within a second
    /// or so of its return (`crates/rmq-it/tests/failover.rs`).
    pub(crate) fn renew(
        &self,
        remoting: &RemotingClient,
        topic: &str,
        failed: &str,
        deadline: Instant,
    ) {
        let is_proxy = self
            .router
            .mapping()
            .route(topic)
            .is_some_and(|r| self.is_proxy(&r, failed));
        if !is_proxy {
            return;
        }
        let now = Instant::now();
        self.mark_suspect(failed, now);
        let deadline = deadline.min(now + self.api_timeout);
        self.single_flight(topic, deadline, || {
            // Another sender renewed it meanwhile: the route no longer names the failed address.
            let names_failed = self.router.mapping().route(topic).is_some_and(|r| {
                r.broker_datas
                    .iter()
                    .any(|b| b.broker_addrs.values().any(|a| a == failed))
            });
            if !names_failed {
                return;
            }
            match self.fetch_and_store(remoting, topic, deadline, Patience::OneRound) {
                Ok(()) => debug!(topic, failed, "route renewed after a connection failure"),
                Err(e) => {
                    debug!(topic, failed, error = %e, "route renewal failed; keeping the route")
                }
            }
        });
    }

    /// Whether a route so far named a RocketMQ 5 proxy ([`Routes::is_proxy`]; a proxy's remoting port
    /// acts as name server and broker at once).
    pub(crate) fn behind_proxy(&self) -> bool {
        self.behind_proxy.load(Ordering::Relaxed)
    }

    /// Whether `addr`, named by `route`, is a RocketMQ 5 proxy: one of the endpoints (a proxy answers
    /// route queries with its own address), or an address two brokers of the route share (only a proxy
    /// stands for several brokers; it may advertise another address than the one it was given by). A
    /// proxy that advertises another address and fronts a single broker looks like a broker: give
    /// proxies by the address they advertise (`remotingAccessAddr`).
    fn is_proxy(&self, route: &TopicRouteData, addr: &str) -> bool {
        self.is_endpoint(addr)
            || route
                .broker_datas
                .iter()
                .filter(|b| b.broker_addrs.values().any(|a| a == addr))
                .count()
                >= 2
    }

    /// Whether `addr` is one of the name-server endpoints (a proxy, when a route names it).
    fn is_endpoint(&self, addr: &str) -> bool {
        self.namesrv.iter().any(|n| n == addr)
    }

    /// Marks `addr` suspect when it is one of the endpoints.
    fn mark_suspect(&self, addr: &str, now: Instant) {
        if self.is_endpoint(addr) {
            self.suspect.lock().insert(addr.to_owned(), now);
        }
    }

    /// The endpoints in the order a fetch asks them: from the last one that answered, those suspect for
    /// less than [`SUSPECT_FOR`] last.
    fn fetch_order(&self) -> Vec<usize> {
        let n = self.namesrv.len();
        let start = self.namesrv_index.load(Ordering::Relaxed);
        let mut suspect = self.suspect.lock();
        let now = Instant::now();
        suspect.retain(|_, since| now.saturating_duration_since(*since) < SUSPECT_FOR);
        let (mut good, bad): (Vec<usize>, Vec<usize>) = (0..n)
            .map(|i| (start + i) % n)
            .partition(|i| !suspect.contains_key(&self.namesrv[*i]));
        good.extend(bad);
        good
    }

    /// A fetch from endpoint `idx` succeeded: ask it first from now on, and it is no longer suspect.
    fn answered(&self, idx: usize) {
        self.namesrv_index.store(idx, Ordering::Relaxed);
        let mut suspect = self.suspect.lock();
        if !suspect.is_empty() {
            suspect.remove(&self.namesrv[idx]);
        }
    }

    /// Asks the name servers for `topic`'s route, trying each in turn until `deadline`. `Ok(None)`: the
    /// topic does not exist. With `Patience::UntilDeadline`, a round in which every name server failed is
    /// tried again when the soonest reconnect backoff ends, as long as the deadline allows (a send waits
    /// for a name server that comes back instead of failing in microseconds); with `Patience::OneRound`
    /// (the periodic refresh) it is not.
    fn fetch_route(
        &self,
        remoting: &RemotingClient,
        topic: &str,
        deadline: Instant,
        patience: Patience,
    ) -> Result<Option<TopicRouteData>, ProducerError> {
        let mut last = String::from("no name server");
        loop {
            let mut pause = MAX_PAUSE;
            for idx in self.fetch_order() {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(not_found(topic, format!("deadline passed; last: {last}")));
                }
                let addr = &self.namesrv[idx];
                let req = RemotingCommand::with_header(
                    RequestCode::GET_ROUTEINFO_BY_TOPIC,
                    &GetRouteInfoRequestHeader::new(topic),
                );
                match remoting.invoke_sync(addr, req, self.api_timeout.min(left)) {
                    Ok(resp) if resp.response_code() == ResponseCode::SUCCESS => {
                        self.answered(idx);
                        let mut route = TopicRouteData::decode(&resp.body).map_err(|e| {
                            not_found(topic, format!("{addr} sent an unreadable route: {e}"))
                        })?;
                        let proxied = route
                            .broker_datas
                            .iter()
                            .flat_map(|b| b.broker_addrs.values())
                            .any(|a| self.is_proxy(&route, a));
                        if proxied {
                            self.behind_proxy.store(true, Ordering::Relaxed);
                        }
                        self.apply_overrides(&mut route);
                        return Ok(Some(route));
                    }
                    Ok(resp) if resp.response_code() == ResponseCode::TOPIC_NOT_EXIST => {
                        self.answered(idx);
                        return Ok(None);
                    }
                    Ok(resp) => {
                        last = format!("{addr} answered {} {:?}", resp.response_code(), resp.remark)
                    }
                    Err(e) => {
                        if let RemotingError::Backoff { retry_in, .. } = &e {
                            pause = pause.min(*retry_in);
                        }
                        if e.is_connection() {
                            self.mark_suspect(addr, Instant::now());
                        }
                        last = format!("{addr}: {e}");
                    }
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if patience == Patience::OneRound || left.is_zero() {
                return Err(not_found(topic, last));
            }
            std::thread::sleep(pause.max(MIN_PAUSE).min(left));
        }
    }

    /// Replaces advertised broker addresses by the ones to dial.
    fn apply_overrides(&self, route: &mut TopicRouteData) {
        if self.overrides.is_empty() {
            return;
        }
        for b in &mut route.broker_datas {
            for addr in b.broker_addrs.values_mut() {
                if let Some(to) = self.overrides.get(addr.as_str()) {
                    *addr = to.clone();
                }
            }
        }
    }

    /// Fetches again every cached route older than `update_topic_route_info_interval`, keeping the last
    /// good one when the name servers fail, and drops routes unused for ten minutes.
    pub(crate) fn refresh(&self, remoting: &RemotingClient) {
        let mapping = self.router.mapping();
        for topic in mapping.topics() {
            let now = Instant::now();
            let fresh = mapping
                .route_age(&topic, now)
                .is_some_and(|age| age < self.refresh_after);
            if fresh {
                continue;
            }
            match self.fetch_route(remoting, &topic, now + self.api_timeout, Patience::OneRound) {
                Ok(Some(route)) => {
                    if self.store(&topic, route) {
                        debug!(topic, "route changed");
                    }
                }
                // Still not created (a TBW102-derived route stays until the broker registers the topic).
                Ok(None) => {}
                Err(e) => {
                    warn!(topic, error = %e, "route refresh failed; keeping the last known route");
                    mapping.mark_refresh_failed(&topic, e.to_string(), now);
                }
            }
        }
        mapping.clear_expired_routes(ROUTE_IDLE_EXPIRY, Instant::now());
    }

    /// Master addresses (as dialed) of `topic`'s cached route.
    pub(crate) fn master_addrs(&self, topic: &str) -> Vec<String> {
        self.router
            .mapping()
            .route(topic)
            .map(|route| {
                route
                    .broker_datas
                    .iter()
                    .filter_map(|b| b.broker_addrs.get(&rmq_protocol::route::MASTER_ID).cloned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The master address (as dialed) of broker `broker` in `topic`'s cached route.
    pub(crate) fn master_of(&self, topic: &str, broker: &str) -> Result<String, ProducerError> {
        self.router
            .mapping()
            .route(topic)
            .and_then(|route| {
                route
                    .broker_datas
                    .iter()
                    .find(|b| b.broker_name == broker)
                    .and_then(|b| b.broker_addrs.get(&rmq_protocol::route::MASTER_ID).cloned())
            })
            .ok_or_else(|| ProducerError::RouteNotFound {
                topic: topic.to_owned(),
                reason: format!("no master address for broker {broker}"),
            })
    }

    /// The master addresses (as dialed) of the cached routes, each with the names of the brokers there.
    pub(crate) fn masters(&self) -> BTreeMap<String, BTreeSet<String>> {
        let mapping = self.router.mapping();
        let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for topic in mapping.topics() {
            if let Some(route) = mapping.route(&topic) {
                for b in &route.broker_datas {
                    if let Some(addr) = b.broker_addrs.get(&rmq_protocol::route::MASTER_ID) {
                        out.entry(addr.clone())
                            .or_default()
                            .insert(b.broker_name.clone());
                    }
                }
            }
        }
        out
    }

    /// Broker addresses (as dialed) of the cached routes: masters only, or every address.
    pub(crate) fn broker_addrs(&self, masters_only: bool) -> BTreeSet<String> {
        let mapping = self.router.mapping();
        let mut out = BTreeSet::new();
        for topic in mapping.topics() {
            if let Some(route) = mapping.route(&topic) {
                for b in &route.broker_datas {
                    for (id, addr) in &b.broker_addrs {
                        if !masters_only || *id == rmq_protocol::route::MASTER_ID {
                            out.insert(addr.clone());
                        }
                    }
                }
            }
        }
        out
    }
}

/// Brokers whose master is in `new` but was not in `old` (absent, or without a master, or at another
/// address).
fn registered_again(old: Option<&TopicRouteData>, new: &TopicRouteData) -> Vec<String> {
    let master = |r: &TopicRouteData, name: &str| {
        r.broker_datas
            .iter()
            .find(|b| b.broker_name == name)
            .and_then(|b| b.broker_addrs.get(&rmq_protocol::route::MASTER_ID).cloned())
    };
    new.broker_datas
        .iter()
        .filter_map(|b| {
            let now = b.broker_addrs.get(&rmq_protocol::route::MASTER_ID)?;
            let before = old.and_then(|o| master(o, &b.broker_name));
            (before.as_ref() != Some(now)).then(|| b.broker_name.clone())
        })
        .collect()
}

fn not_found(topic: &str, reason: impl Into<String>) -> ProducerError {
    ProducerError::RouteNotFound {
        topic: topic.to_owned(),
        reason: reason.into(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use rmq_remoting::RemotingConfig;
    use rmq_routing::{HealthPolicy, HealthRegistry, RouterConfig, TopicBrokerMapping};

    fn routes(namesrv: &str) -> Routes {
        let now = Instant::now();
        let router = MessageRouter::new(
            Arc::new(TopicBrokerMapping::new(now)),
            Arc::new(HealthRegistry::new(HealthPolicy::default(), now)),
            RouterConfig::default(),
        );
        Routes::new(&ProducerConfig::new("PG", namesrv), router, 0)
    }

    /// A failed fetch used to leave its topic's lock entry behind (one per topic, forever).
    #[test]
    fn a_failed_fetch_leaves_no_lock_behind() {
        // Nothing listens on port 1 of loopback: the connect is refused at once.
        let r = routes("127.0.0.1:1");
        let remoting = RemotingClient::new(RemotingConfig::default()).unwrap();
        for t in ["A", "B", "C"] {
            let e = r
                .ensure(&remoting, t, Instant::now() + Duration::from_millis(200))
                .unwrap_err();
            assert!(matches!(e, ProducerError::RouteNotFound { .. }), "{e}");
        }
        assert_eq!(r.fetches_in_progress(), 0);
        remoting.shutdown();
    }

    #[test]
    fn a_master_listed_again_counts_as_registered_again() {
        use rmq_protocol::route::BrokerData;
        let route = |masters: &[(&str, Option<&str>)]| {
            let mut r = TopicRouteData::default();
            for (name, addr) in masters {
                let mut b = BrokerData {
                    broker_name: (*name).into(),
                    ..Default::default()
                };
                if let Some(a) = addr {
                    b.broker_addrs.insert(0, (*a).into());
                }
                b.broker_addrs.insert(1, "127.0.0.1:9".into());
                r.broker_datas.push(b);
            }
            r
        };
        let before = route(&[("a", Some("127.0.0.1:1")), ("b", None)]);
        let after = route(&[
            ("a", Some("127.0.0.1:1")),
            ("b", Some("127.0.0.1:2")),
            ("c", Some("127.0.0.1:3")),
        ]);
        assert_eq!(registered_again(Some(&before), &after), ["b", "c"]);
        assert_eq!(registered_again(None, &before), ["a"]);
        assert!(registered_again(Some(&after), &after).is_empty());
    }

    #[test]
    fn a_fetch_whose_deadline_passed_sends_nothing() {
        let r = routes("127.0.0.1:1");
        let remoting = RemotingClient::new(RemotingConfig::default()).unwrap();
        let e = r.ensure(&remoting, "T", Instant::now()).unwrap_err();
        assert!(e.to_string().contains("deadline"), "{e}");
        assert_eq!(remoting.connection_count(), 0);
        remoting.shutdown();
    }
}
