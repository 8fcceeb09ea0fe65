//! [`ProducerStats`]: what the producer has done, as a plain snapshot.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rmq_routing::MessageRouter;
use rmq_routing::{RouteSummary, RouterStats};

use crate::metrics::Metrics;

/// The producer's counters; every send ends in exactly one `record_*` call.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    sent: AtomicU64,
    failed: AtomicU64,
    retries: AtomicU64,
    oneway: AtomicU64,
    oneway_failed: AtomicU64,
    heartbeats_ok: AtomicU64,
    heartbeats_failed: AtomicU64,
    send_micros: AtomicU64,
    callback_panics: AtomicU64,
    /// The same events for a metrics recorder (feature `metrics`).
    metrics: Metrics,
}

impl Counters {
    /// A send (sync, async, batch or ordered) ended, successfully or not, after `took`; it made
    /// `attempts` attempts.
    pub(crate) fn record_send(&self, ok: bool, attempts: u32, took: Duration) {
        let c = if ok { &self.sent } else { &self.failed };
        c.fetch_add(1, Ordering::Relaxed);
        self.count_retries(attempts);
        self.send_micros
            .fetch_add(took.as_micros() as u64, Ordering::Relaxed);
    }

    /// A oneway send ended: written, or not.
    pub(crate) fn record_oneway(&self, ok: bool, attempts: u32) {
        let c = if ok {
            &self.oneway
        } else {
            &self.oneway_failed
        };
        c.fetch_add(1, Ordering::Relaxed);
        self.count_retries(attempts);
    }

    fn count_retries(&self, attempts: u32) {
        if attempts > 1 {
            self.retries
                .fetch_add(u64::from(attempts - 1), Ordering::Relaxed);
        }
    }

    /// A send callback panicked (caught; the thread it ran on went on).
    pub(crate) fn record_callback_panic(&self) {
        self.callback_panics.fetch_add(1, Ordering::Relaxed);
    }

    /// The metric handles.
    pub(crate) fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// A heartbeat round (or a single heartbeat) ended.
    pub(crate) fn record_heartbeats(&self, ok: usize, failed: usize) {
        self.metrics.heartbeats(ok, failed);
        self.heartbeats_ok.fetch_add(ok as u64, Ordering::Relaxed);
        self.heartbeats_failed
            .fetch_add(failed as u64, Ordering::Relaxed);
    }

    /// A snapshot with the producer's other live figures.
    pub(crate) fn snapshot(
        &self,
        running: bool,
        in_flight: usize,
        (replies, late_replies): (u64, u64),
        (traces_sent, traces_dropped): (u64, u64),
        router: &MessageRouter,
    ) -> ProducerStats {
        let (sent, failed) = (
            self.sent.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        );
        let total = sent + failed;
        let now = Instant::now();
        ProducerStats {
            running,
            sent,
            failed,
            success_rate: if total == 0 {
                1.0
            } else {
                sent as f64 / total as f64
            },
            retries: self.retries.load(Ordering::Relaxed),
            oneway: self.oneway.load(Ordering::Relaxed),
            oneway_failed: self.oneway_failed.load(Ordering::Relaxed),
            in_flight,
            avg_send_time: Duration::from_micros(
                self.send_micros.load(Ordering::Relaxed) / total.max(1),
            ),
            heartbeats_ok: self.heartbeats_ok.load(Ordering::Relaxed),
            heartbeats_failed: self.heartbeats_failed.load(Ordering::Relaxed),
            replies,
            late_replies,
            callback_panics: self.callback_panics.load(Ordering::Relaxed),
            traces_sent,
            traces_dropped,
            routes: router.mapping().summary(now),
            router: router.stats(now),
        }
    }
}

/// A snapshot of the producer's activity.
#[derive(Clone, Debug, PartialEq)]
pub struct ProducerStats {
    /// Whether the producer is running.
    pub running: bool,
    /// Sends with an answer (sync, async, batch, ordered) that succeeded.
    pub sent: u64,
    /// Sends with an answer that failed, refusals before any attempt included.
    pub failed: u64,
    /// `sent / (sent + failed)`, 1.0 before any send.
    pub success_rate: f64,
    /// Attempts beyond the first.
    pub retries: u64,
    /// Oneway sends written.
    pub oneway: u64,
    /// Oneway sends that could not be written (or were refused before that).
    pub oneway_failed: u64,
    /// Asynchronous sends in flight.
    pub in_flight: usize,
    /// Mean time of a send with an answer, retries included.
    pub avg_send_time: Duration,
    /// Heartbeats answered with SUCCESS.
    pub heartbeats_ok: u64,
    /// Heartbeats that failed.
    pub heartbeats_failed: u64,
    /// Replies to requests ([`crate::Producer::request`]) matched to their waiters.
    pub replies: u64,
    /// Replies that arrived after their request gave up (or for no request of this producer): dropped.
    pub late_replies: u64,
    /// Send callbacks that panicked: each panic was caught and logged, its send counted once as it
    /// ended, and the thread it ran on went on.
    pub callback_panics: u64,
    /// Trace records in trace messages that were stored ([`crate::ProducerConfig::trace`]).
    pub traces_sent: u64,
    /// Trace records dropped: too many waiting, or their trace message failed (the user's send did not).
    pub traces_dropped: u64,
    /// Cached routes with their age and staleness.
    pub routes: Vec<RouteSummary>,
    /// Routing counters and per-broker health (attempt counts, average and max latency).
    pub router: RouterStats,
}
