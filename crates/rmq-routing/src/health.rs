//! Broker health: a per-broker state machine (HEALTHY → DEGRADED → UNHEALTHY, SUSPENDED by hand) with
//! latency statistics, plus Java's latency fault tolerance as a switchable policy. Time is passed in.
//!
//! A DEGRADED or UNHEALTHY broker is kept out only for a while, as a circuit breaker: a failure that leaves
//! it (or keeps it) in one of those states while the breaker is closed or half-open opens the breaker for a
//! period that doubles each time, from [`HealthPolicy::open_base`] up to [`HealthPolicy::open_max`];
//! failures while it is open (requests sent earlier, failing late) do not lengthen it. When the period ends the
//! broker is half-open: the router treats it as healthy again, its first success makes it HEALTHY, its first
//! failure opens the breaker for the next, longer period. So a broker that answers again is always back in
//! rotation within `open_max`, whether or not anything was sent to it meanwhile.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};

use crate::clock::{Epoch, FastHash};

/// A broker's health state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HealthState {
    /// Working normally.
    Healthy,
    /// Several consecutive failures: still used, but after healthy brokers.
    Degraded,
    /// Many consecutive failures: skipped while any other broker is usable.
    Unhealthy,
    /// Taken out of rotation by hand; only [`HealthRegistry::force_recover`] brings it back.
    Suspended,
}

impl HealthState {
    fn to_u8(self) -> u8 {
        self as u8
    }

    fn from_u8(v: u8) -> HealthState {
        match v {
            0 => HealthState::Healthy,
            1 => HealthState::Degraded,
            2 => HealthState::Unhealthy,
            _ => HealthState::Suspended,
        }
    }
}

/// What kind of failure an attempt ended with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FailureKind {
    /// The connection could not be made or broke.
    Connection,
    /// No answer within the deadline.
    Timeout,
    /// The broker answered with an error code.
    Broker,
    /// A failure on our side before anything reached the broker.
    Client,
}

/// Thresholds of the state machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthPolicy {
    /// Consecutive failures that make a HEALTHY broker DEGRADED (default 3).
    pub degrade_after: u32,
    /// Consecutive failures that make a broker UNHEALTHY (default 5).
    pub unhealthy_after: u32,
    /// Consecutive successes that make a DEGRADED or UNHEALTHY broker HEALTHY again while its breaker is
    /// open (default 5); once the breaker is half-open, one success does.
    pub recover_after: u32,
    /// The first period a broker is kept out after turning DEGRADED or UNHEALTHY (default 1 s); each
    /// further failure doubles it.
    pub open_base: Duration,
    /// The longest period a broker is kept out (default 30 s): a broker that answers again is back in
    /// rotation at most this long after its last failure.
    pub open_max: Duration,
    /// Java's latency fault tolerance (`sendLatencyFaultEnable`, default off as in Java).
    pub latency_fault_tolerance: bool,
}

impl HealthPolicy {
    /// How long the breaker opens on the `trips`-th failure (0-based) since the broker was last HEALTHY.
    pub fn open_period(&self, trips: u32) -> Duration {
        self.open_base
            .saturating_mul(1u32 << trips.min(16))
            .min(self.open_max)
    }
}

impl Default for HealthPolicy {
    fn default() -> Self {
        HealthPolicy {
            degrade_after: 3,
            unhealthy_after: 5,
            recover_after: 5,
            open_base: Duration::from_secs(1),
            open_max: Duration::from_secs(30),
            latency_fault_tolerance: false,
        }
    }
}

/// Java 5.1.4+ `latencyMax` (ms).
pub const LATENCY_MAX_MS: [u64; 7] = [50, 100, 550, 1800, 3000, 5000, 15000];
/// Java 5.1.4+ `notAvailableDuration` (ms), paired with [`LATENCY_MAX_MS`].
pub const NOT_AVAILABLE_MS: [u64; 7] = [0, 0, 2000, 5000, 6000, 10000, 30000];
/// The latency Java charges for an isolating failure (ms), giving 10 s of unavailability.
pub const ISOLATION_LATENCY_MS: u64 = 10_000;

/// How long a broker is unavailable after an attempt of `latency_ms` (Java's
/// `computeNotAvailableDuration`).
pub fn not_available_duration(latency_ms: u64) -> Duration {
    for i in (0..LATENCY_MAX_MS.len()).rev() {
        if latency_ms >= LATENCY_MAX_MS[i] {
            return Duration::from_millis(NOT_AVAILABLE_MS[i]);
        }
    }
    Duration::ZERO
}

const WINDOW: usize = 100;

/// The mutable part of a broker's health.
#[derive(Debug)]
struct Health {
    state: HealthState,
    consecutive_failures: u32,
    consecutive_successes: u32,
    successes: u64,
    failures: u64,
    latencies_us: [u64; WINDOW],
    next: usize,
    filled: usize,
    reachable: bool,
    /// Failures since the broker was last HEALTHY that opened the breaker.
    trips: u32,
}

impl Health {
    fn new() -> Self {
        Health {
            state: HealthState::Healthy,
            consecutive_failures: 0,
            consecutive_successes: 0,
            successes: 0,
            failures: 0,
            latencies_us: [0; WINDOW],
            next: 0,
            filled: 0,
            reachable: true,
            trips: 0,
        }
    }

    fn sample(&mut self, latency: Duration) {
        self.latencies_us[self.next] = latency.as_micros().min(u128::from(u64::MAX)) as u64;
        self.next = (self.next + 1) % WINDOW;
        self.filled = (self.filled + 1).min(WINDOW);
    }

    fn window(&self) -> &[u64] {
        &self.latencies_us[..self.filled]
    }
}

/// One broker's cell: the locked state for updates, and atomics the router reads without locking.
#[derive(Debug)]
pub(crate) struct BrokerCell {
    health: Mutex<Health>,
    state: AtomicU8,
    /// Epoch nanos until which the broker is unavailable (fault tolerance); 0 = available.
    unavailable_until: AtomicU64,
    /// Epoch nanos until which the breaker of a DEGRADED or UNHEALTHY broker is open; 0 = closed.
    open_until: AtomicU64,
    pub(crate) routed: AtomicU64,
}

impl BrokerCell {
    fn new() -> Self {
        BrokerCell {
            health: Mutex::new(Health::new()),
            state: AtomicU8::new(0),
            unavailable_until: AtomicU64::new(0),
            open_until: AtomicU64::new(0),
            routed: AtomicU64::new(0),
        }
    }
}

/// A snapshot of one broker's health for stats.
#[derive(Clone, Debug, PartialEq)]
pub struct BrokerHealthSnapshot {
    /// Broker name.
    pub broker: String,
    /// State.
    pub state: HealthState,
    /// Successful attempts reported.
    pub successes: u64,
    /// Failed attempts reported.
    pub failures: u64,
    /// Current run of failures.
    pub consecutive_failures: u32,
    /// Current run of successes.
    pub consecutive_successes: u32,
    /// Mean latency over the last 100 samples.
    pub avg_latency: Duration,
    /// Median latency over the last 100 samples.
    pub p50_latency: Duration,
    /// 99th-percentile latency over the last 100 samples.
    pub p99_latency: Duration,
    /// Largest latency over the last 100 samples.
    pub max_latency: Duration,
    /// Until when latency fault tolerance keeps the broker out (`None` when available).
    pub isolated_until: Option<Instant>,
    /// Until when the breaker of a DEGRADED or UNHEALTHY broker keeps it out (`None` when closed or
    /// half-open).
    pub open_until: Option<Instant>,
    /// Requests routed to it.
    pub routed: u64,
}

/// How usable a broker is right now, for the router: lower is better.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Usability {
    Healthy = 0,
    Degraded = 1,
    /// Isolated by latency fault tolerance until its window ends.
    Isolated = 2,
    Unhealthy = 3,
    Suspended = 4,
}

impl Usability {
    pub(crate) fn usable(self) -> bool {
        self <= Usability::Degraded
    }
}

/// The health of every broker seen. Thread-safe; reads for routing take no per-broker lock.
#[derive(Debug)]
pub struct HealthRegistry {
    epoch: Epoch,
    policy: HealthPolicy,
    fault_tolerance: AtomicBool,
    brokers: RwLock<HashMap<Arc<str>, Arc<BrokerCell>, FastHash>>,
}

impl HealthRegistry {
    /// A registry with `policy`; `now` anchors its internal clock.
    pub fn new(policy: HealthPolicy, now: Instant) -> Self {
        HealthRegistry {
            epoch: Epoch::new(now),
            fault_tolerance: AtomicBool::new(policy.latency_fault_tolerance),
            policy,
            brokers: RwLock::new(HashMap::with_hasher(FastHash)),
        }
    }

    /// The thresholds in use.
    pub fn policy(&self) -> &HealthPolicy {
        &self.policy
    }

    /// Switches latency fault tolerance on or off.
    pub fn set_latency_fault_tolerance(&self, on: bool) {
        self.fault_tolerance.store(on, Ordering::Relaxed);
    }

    /// Whether latency fault tolerance is on.
    pub fn latency_fault_tolerance(&self) -> bool {
        self.fault_tolerance.load(Ordering::Relaxed)
    }

    /// The cell of `broker`, created on first use.
    pub(crate) fn cell(&self, broker: &str) -> Arc<BrokerCell> {
        if let Some(c) = self.brokers.read().get(broker) {
            return c.clone();
        }
        self.brokers
            .write()
            .entry(Arc::from(broker))
            .or_insert_with(|| Arc::new(BrokerCell::new()))
            .clone()
    }

    pub(crate) fn with_cells<R>(
        &self,
        f: impl FnOnce(&HashMap<Arc<str>, Arc<BrokerCell>, FastHash>) -> R,
    ) -> R {
        f(&self.brokers.read())
    }

    fn set_state(cell: &BrokerCell, h: &mut Health, state: HealthState) {
        h.state = state;
        cell.state.store(state.to_u8(), Ordering::Relaxed);
    }

    fn update_fault(&self, cell: &BrokerCell, latency_ms: u64, now: Instant) {
        if !self.latency_fault_tolerance() {
            return;
        }
        let d = not_available_duration(latency_ms);
        if d > Duration::ZERO {
            let until = self.epoch.nanos(now + d).max(1);
            cell.unavailable_until.fetch_max(until, Ordering::Relaxed);
        }
    }

    /// Records a successful attempt that took `latency`.
    pub fn report_success(&self, broker: &str, latency: Duration, now: Instant) {
        let cell = self.cell(broker);
        let mut h = cell.health.lock();
        h.successes += 1;
        h.consecutive_failures = 0;
        h.consecutive_successes = h.consecutive_successes.saturating_add(1);
        h.reachable = true;
        h.sample(latency);
        let half_open = cell.open_until.load(Ordering::Relaxed) <= self.epoch.nanos(now);
        if matches!(h.state, HealthState::Degraded | HealthState::Unhealthy)
            && (half_open || h.consecutive_successes >= self.policy.recover_after)
        {
            Self::set_state(&cell, &mut h, HealthState::Healthy);
            h.trips = 0;
            cell.open_until.store(0, Ordering::Relaxed);
        }
        drop(h);
        self.update_fault(&cell, latency.as_millis() as u64, now);
    }

    /// Records a failed attempt of `kind` that took `latency`.
    pub fn report_failure(&self, broker: &str, kind: FailureKind, latency: Duration, now: Instant) {
        let cell = self.cell(broker);
        let mut h = cell.health.lock();
        h.failures += 1;
        h.consecutive_successes = 0;
        h.consecutive_failures = h.consecutive_failures.saturating_add(1);
        h.sample(latency);
        if kind == FailureKind::Connection {
            h.reachable = false;
        }
        let next = match h.state {
            HealthState::Suspended => HealthState::Suspended,
            _ if h.consecutive_failures >= self.policy.unhealthy_after => HealthState::Unhealthy,
            HealthState::Healthy if h.consecutive_failures >= self.policy.degrade_after => {
                HealthState::Degraded
            }
            s => s,
        };
        Self::set_state(&cell, &mut h, next);
        // A failure while the breaker is already open (a request sent before it opened, failing late)
        // changes nothing: each period grows once per probe, not once per request in flight.
        let open = cell.open_until.load(Ordering::Relaxed) > self.epoch.nanos(now);
        if matches!(next, HealthState::Degraded | HealthState::Unhealthy) && !open {
            let period = self.policy.open_period(h.trips);
            h.trips = h.trips.saturating_add(1);
            cell.open_until
                .store(self.epoch.nanos(now + period).max(1), Ordering::Relaxed);
        }
        drop(h);
        // Java isolates on every remoting or broker error (10 s with the 5.1.4+ tables); client-side
        // failures count their latency only.
        let charged = match kind {
            FailureKind::Client => latency.as_millis() as u64,
            _ => ISOLATION_LATENCY_MS,
        };
        self.update_fault(&cell, charged, now);
    }

    /// Takes `broker` out of rotation until [`HealthRegistry::force_recover`].
    pub fn force_suspend(&self, broker: &str) {
        let cell = self.cell(broker);
        let mut h = cell.health.lock();
        Self::set_state(&cell, &mut h, HealthState::Suspended);
    }

    /// Puts `broker` back as HEALTHY, clearing its failure run and any isolation.
    pub fn force_recover(&self, broker: &str) {
        let cell = self.cell(broker);
        let mut h = cell.health.lock();
        h.consecutive_failures = 0;
        h.consecutive_successes = 0;
        h.reachable = true;
        h.trips = 0;
        Self::set_state(&cell, &mut h, HealthState::Healthy);
        cell.unavailable_until.store(0, Ordering::Relaxed);
        cell.open_until.store(0, Ordering::Relaxed);
    }

    /// Evidence that `broker` answers again (a heartbeat went through, or a route shows it registered
    /// again): an open breaker turns half-open now, so the next send decides. A closed one is untouched.
    pub fn report_reachable(&self, broker: &str, now: Instant) {
        let Some(cell) = self.brokers.read().get(broker).cloned() else {
            return;
        };
        let mut h = cell.health.lock();
        h.reachable = true;
        let now_n = self.epoch.nanos(now).max(1);
        if matches!(h.state, HealthState::Degraded | HealthState::Unhealthy)
            && cell.open_until.load(Ordering::Relaxed) > now_n
        {
            cell.open_until.store(now_n, Ordering::Relaxed);
        }
    }

    /// The state of `broker` (HEALTHY if never reported).
    pub fn state(&self, broker: &str) -> HealthState {
        self.brokers
            .read()
            .get(broker)
            .map_or(HealthState::Healthy, |c| {
                HealthState::from_u8(c.state.load(Ordering::Relaxed))
            })
    }

    /// When an isolated broker may be tried again (half-open); `None` if it is not isolated at `now`.
    pub fn next_probe_at(&self, broker: &str, now: Instant) -> Option<Instant> {
        let brokers = self.brokers.read();
        let until = brokers
            .get(broker)?
            .unavailable_until
            .load(Ordering::Relaxed);
        (self.latency_fault_tolerance() && until > self.epoch.nanos(now))
            .then(|| self.epoch.instant(until))
    }

    pub(crate) fn usability_of(&self, cell: Option<&BrokerCell>, now_nanos: u64) -> Usability {
        let Some(cell) = cell else {
            return Usability::Healthy;
        };
        let isolated = || {
            self.latency_fault_tolerance()
                && cell.unavailable_until.load(Ordering::Relaxed) > now_nanos
        };
        let open = || cell.open_until.load(Ordering::Relaxed) > now_nanos;
        match HealthState::from_u8(cell.state.load(Ordering::Relaxed)) {
            HealthState::Suspended => Usability::Suspended,
            HealthState::Unhealthy if open() => Usability::Unhealthy,
            HealthState::Degraded if open() && !isolated() => Usability::Degraded,
            // Healthy, or half-open: the breaker's period is over.
            _ if isolated() => Usability::Isolated,
            _ => Usability::Healthy,
        }
    }

    pub(crate) fn now_nanos(&self, now: Instant) -> u64 {
        self.epoch.nanos(now)
    }

    /// A snapshot of every broker, sorted by name.
    pub fn snapshot(&self, now: Instant) -> Vec<BrokerHealthSnapshot> {
        let now_n = self.epoch.nanos(now);
        let mut out: Vec<_> = self
            .brokers
            .read()
            .iter()
            .map(|(name, cell)| {
                let h = cell.health.lock();
                let w = h.window();
                let mut sorted = w.to_vec();
                sorted.sort_unstable();
                let pct = |p: usize| {
                    let i = (sorted.len() * p / 100).min(sorted.len().saturating_sub(1));
                    sorted.get(i).copied().unwrap_or(0)
                };
                let avg = if w.is_empty() {
                    0
                } else {
                    w.iter().sum::<u64>() / w.len() as u64
                };
                let until = cell.unavailable_until.load(Ordering::Relaxed);
                let open = cell.open_until.load(Ordering::Relaxed);
                BrokerHealthSnapshot {
                    broker: name.to_string(),
                    state: h.state,
                    successes: h.successes,
                    failures: h.failures,
                    consecutive_failures: h.consecutive_failures,
                    consecutive_successes: h.consecutive_successes,
                    avg_latency: Duration::from_micros(avg),
                    p50_latency: Duration::from_micros(pct(50)),
                    p99_latency: Duration::from_micros(pct(99)),
                    max_latency: Duration::from_micros(w.iter().copied().max().unwrap_or(0)),
                    isolated_until: (self.latency_fault_tolerance() && until > now_n)
                        .then(|| self.epoch.instant(until)),
                    open_until: (open > now_n).then(|| self.epoch.instant(open)),
                    routed: cell.routed.load(Ordering::Relaxed),
                }
            })
            .collect();
        out.sort_by(|a, b| a.broker.cmp(&b.broker));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn transitions_as_specified() {
        let t = Instant::now();
        let r = HealthRegistry::new(HealthPolicy::default(), t);
        let fail = |n| (0..n).for_each(|_| r.report_failure("b", FailureKind::Timeout, MS, t));
        let ok = |n| (0..n).for_each(|_| r.report_success("b", MS, t));
        fail(2);
        assert_eq!(r.state("b"), HealthState::Healthy);
        fail(1);
        assert_eq!(r.state("b"), HealthState::Degraded);
        fail(1);
        assert_eq!(r.state("b"), HealthState::Degraded);
        fail(1);
        assert_eq!(r.state("b"), HealthState::Unhealthy);
        ok(4);
        assert_eq!(r.state("b"), HealthState::Unhealthy);
        ok(1);
        assert_eq!(r.state("b"), HealthState::Healthy);
        fail(3);
        ok(1);
        fail(1); // the run restarted: 1 failure, still DEGRADED
        assert_eq!(r.state("b"), HealthState::Degraded);
        r.force_suspend("b");
        ok(10);
        assert_eq!(r.state("b"), HealthState::Suspended);
        fail(10);
        assert_eq!(r.state("b"), HealthState::Suspended);
        r.force_recover("b");
        assert_eq!(r.state("b"), HealthState::Healthy);
        assert_eq!(r.state("never-seen"), HealthState::Healthy);
    }

    /// The breaker: periods double from 1 s to 30 s; half-open after a period; one success then closes it;
    /// evidence of reachability (a heartbeat) makes it half-open at once.
    #[test]
    fn the_breaker_reopens_longer_and_always_closes() {
        let t = Instant::now();
        let r = HealthRegistry::new(HealthPolicy::default(), t);
        let at = |ms: u64| t + Duration::from_millis(ms);
        let usable =
            |now| r.usability_of(r.brokers.read().get("b").map(|c| &**c), r.now_nanos(now));
        let open_for = |now| r.snapshot(now)[0].open_until.map(|u| u.duration_since(now));
        for _ in 0..5 {
            r.report_failure("b", FailureKind::Connection, MS, t);
        }
        assert_eq!(r.state("b"), HealthState::Unhealthy);
        // The third failure opened it for 1 s; the fourth and fifth came while it was open.
        assert_eq!(open_for(t), Some(Duration::from_secs(1)));
        assert_eq!(usable(at(999)), Usability::Unhealthy);
        assert_eq!(usable(at(1_000)), Usability::Healthy, "half-open");
        // Each failure while half-open opens it again, longer: 2, 4, 8, 16, 30, 30 s; late failures of
        // requests sent earlier do not lengthen it.
        let mut now = at(1_000);
        for want in [2, 4, 8, 16, 30, 30] {
            r.report_failure("b", FailureKind::Timeout, MS, now);
            r.report_failure("b", FailureKind::Timeout, MS, now + MS);
            assert_eq!(open_for(now), Some(Duration::from_secs(want)));
            now += Duration::from_secs(want);
        }
        // Half-open: one success closes it.
        r.report_success("b", MS, now);
        assert_eq!(r.state("b"), HealthState::Healthy);
        assert_eq!(open_for(now), None);
        // Opened again from the start (1 s), then made half-open early by a heartbeat.
        for _ in 0..3 {
            r.report_failure("b", FailureKind::Connection, MS, now);
        }
        assert_eq!(open_for(now), Some(Duration::from_secs(1)));
        assert_eq!(usable(now), Usability::Degraded);
        r.report_reachable("b", now);
        assert_eq!(usable(now), Usability::Healthy);
        assert_eq!(r.state("b"), HealthState::Degraded, "until a send succeeds");
        r.report_success("b", MS, now);
        assert_eq!(r.state("b"), HealthState::Healthy);
        // A success while the breaker is still open needs the full run of 5.
        for _ in 0..3 {
            r.report_failure("b", FailureKind::Connection, MS, now);
        }
        for _ in 0..4 {
            r.report_success("b", MS, now);
        }
        assert_eq!(r.state("b"), HealthState::Degraded);
        r.report_success("b", MS, now);
        assert_eq!(r.state("b"), HealthState::Healthy);
    }

    #[test]
    fn latency_window_keeps_the_last_100() {
        let t = Instant::now();
        let r = HealthRegistry::new(HealthPolicy::default(), t);
        r.report_success("b", Duration::from_millis(500), t);
        for _ in 0..100 {
            r.report_success("b", Duration::from_millis(10), t);
        }
        let s = &r.snapshot(t)[0];
        assert_eq!(s.avg_latency, Duration::from_millis(10));
        assert_eq!(s.max_latency, Duration::from_millis(10));
        for i in 1..=100 {
            r.report_success("p", Duration::from_millis(i), t);
        }
        let p = r.snapshot(t).into_iter().find(|s| s.broker == "p").unwrap();
        assert_eq!(
            (p.p50_latency, p.p99_latency, p.max_latency),
            (
                Duration::from_millis(51),
                Duration::from_millis(100),
                Duration::from_millis(100)
            )
        );
        assert_eq!(s.successes, 101);
    }

    #[test]
    fn java_latency_tables() {
        assert_eq!(not_available_duration(0), Duration::ZERO);
        assert_eq!(not_available_duration(100), Duration::ZERO);
        assert_eq!(not_available_duration(549), Duration::ZERO);
        assert_eq!(not_available_duration(550), Duration::from_secs(2));
        assert_eq!(not_available_duration(1800), Duration::from_secs(5));
        assert_eq!(not_available_duration(3000), Duration::from_secs(6));
        assert_eq!(
            not_available_duration(ISOLATION_LATENCY_MS),
            Duration::from_secs(10)
        );
        assert_eq!(not_available_duration(15000), Duration::from_secs(30));
    }

    #[test]
    fn isolation_window_and_probe_moment() {
        let t = Instant::now();
        let r = HealthRegistry::new(
            HealthPolicy {
                latency_fault_tolerance: true,
                ..Default::default()
            },
            t,
        );
        r.report_failure("b", FailureKind::Connection, MS, t);
        assert_eq!(r.next_probe_at("b", t), Some(t + Duration::from_secs(10)));
        let now = r.now_nanos(t + Duration::from_secs(9));
        r.with_cells(|c| {
            assert_eq!(
                r.usability_of(c.get("b").map(|a| &**a), now),
                Usability::Isolated
            )
        });
        let later = r.now_nanos(t + Duration::from_secs(10));
        r.with_cells(|c| {
            assert_eq!(
                r.usability_of(c.get("b").map(|a| &**a), later),
                Usability::Healthy
            )
        });
        assert_eq!(r.next_probe_at("b", t + Duration::from_secs(10)), None);
        // A slow success isolates too (2 s for >= 550 ms).
        r.report_success("c", Duration::from_millis(600), t);
        assert_eq!(r.next_probe_at("c", t), Some(t + Duration::from_secs(2)));
        // Switched off: no isolation.
        r.set_latency_fault_tolerance(false);
        assert_eq!(r.next_probe_at("b", t), None);
    }
}
