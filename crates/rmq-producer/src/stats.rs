//! [`ProducerStats`]: what the producer has done, as a plain snapshot.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rmq_routing::{RouteSummary, RouterStats};

use crate::error::ProducerError;
use crate::producer::{Inner, SendResult};

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) sent: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) retries: AtomicU64,
    pub(crate) oneway: AtomicU64,
    pub(crate) heartbeats_ok: AtomicU64,
    pub(crate) heartbeats_failed: AtomicU64,
    pub(crate) send_micros: AtomicU64,
}

impl Counters {
    pub(crate) fn record(&self, r: &Result<SendResult, ProducerError>, took: Duration) {
        match r {
            Ok(_) => self.sent.fetch_add(1, Ordering::Relaxed),
            Err(_) => self.failed.fetch_add(1, Ordering::Relaxed),
        };
        self.send_micros
            .fetch_add(took.as_micros() as u64, Ordering::Relaxed);
    }
}

/// A snapshot of the producer's activity.
#[derive(Clone, Debug, PartialEq)]
pub struct ProducerStats {
    /// Whether the producer is running.
    pub running: bool,
    /// Synchronous sends that succeeded.
    pub sent: u64,
    /// Synchronous sends that failed.
    pub failed: u64,
    /// `sent / (sent + failed)`, 1.0 before any send.
    pub success_rate: f64,
    /// Attempts beyond the first.
    pub retries: u64,
    /// Oneway sends written.
    pub oneway: u64,
    /// Asynchronous sends in flight.
    pub in_flight: usize,
    /// Mean time of a synchronous send, retries included.
    pub avg_send_time: Duration,
    /// Heartbeats answered with SUCCESS.
    pub heartbeats_ok: u64,
    /// Heartbeats that failed.
    pub heartbeats_failed: u64,
    /// Cached routes with their age and staleness.
    pub routes: Vec<RouteSummary>,
    /// Routing counters and per-broker health (attempt counts, average and max latency).
    pub router: RouterStats,
}

pub(crate) fn snapshot(inner: &Inner, running: bool) -> ProducerStats {
    let c = &inner.counters;
    let (sent, failed) = (
        c.sent.load(Ordering::Relaxed),
        c.failed.load(Ordering::Relaxed),
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
        retries: c.retries.load(Ordering::Relaxed),
        oneway: c.oneway.load(Ordering::Relaxed),
        in_flight: inner.async_permits.in_flight(),
        avg_send_time: Duration::from_micros(c.send_micros.load(Ordering::Relaxed) / total.max(1)),
        heartbeats_ok: c.heartbeats_ok.load(Ordering::Relaxed),
        heartbeats_failed: c.heartbeats_failed.load(Ordering::Relaxed),
        routes: inner.router.mapping().summary(now),
        router: inner.router.stats(now),
    }
}
