//! The producer's metrics through the `metrics` facade (feature `metrics`): whatever recorder the
//! application installs (a Prometheus exporter, StatsD, …) receives them. Handles are registered once per
//! topic, so recording allocates nothing; install the recorder before the producer's first send. Without
//! the feature, [`Metrics`] is empty and does nothing.
//!
//! | name | kind | labels |
//! |---|---|---|
//! | `rmq_producer_sends_total` | counter | `topic`, `mode` (`answered`, `oneway`), `outcome` (`ok`, `error`) |
//! | `rmq_producer_send_attempts_total` | counter | `topic` |
//! | `rmq_producer_send_duration_seconds` | histogram | `topic`, `outcome` (answered sends, retries included) |
//! | `rmq_producer_heartbeats_total` | counter | `outcome` |

use std::time::Duration;

#[cfg(feature = "metrics")]
use std::collections::HashMap;
#[cfg(feature = "metrics")]
use std::sync::Arc;

#[cfg(feature = "metrics")]
use metrics::{Counter, Histogram, counter, histogram};
#[cfg(feature = "metrics")]
use parking_lot::RwLock;

/// One topic's handles.
#[cfg(feature = "metrics")]
struct Topic {
    /// By `[oneway][ok]`.
    sends: [[Counter; 2]; 2],
    attempts: Counter,
    /// By `[ok]`.
    durations: [Histogram; 2],
}

#[cfg(feature = "metrics")]
impl Topic {
    fn new(topic: &Arc<str>) -> Topic {
        let t = || metrics::SharedString::from(topic.clone());
        let send = |mode: &'static str, outcome: &'static str| counter!("rmq_producer_sends_total", "topic" => t(), "mode" => mode, "outcome" => outcome);
        let duration = |outcome: &'static str| histogram!("rmq_producer_send_duration_seconds", "topic" => t(), "outcome" => outcome);
        Topic {
            sends: [
                [send("answered", "error"), send("answered", "ok")],
                [send("oneway", "error"), send("oneway", "ok")],
            ],
            attempts: counter!("rmq_producer_send_attempts_total", "topic" => t()),
            durations: [duration("error"), duration("ok")],
        }
    }
}

/// The producer's metric handles.
#[derive(Default)]
pub(crate) struct Metrics {
    #[cfg(feature = "metrics")]
    topics: RwLock<HashMap<Arc<str>, Topic>>,
    #[cfg(feature = "metrics")]
    heartbeats: std::sync::OnceLock<[Counter; 2]>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// One send to `topic` ended.
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    pub(crate) fn send(
        &self,
        topic: &std::sync::Arc<str>,
        oneway: bool,
        ok: bool,
        attempts: u32,
        took: Duration,
    ) {
        #[cfg(feature = "metrics")]
        {
            let record = |t: &Topic| {
                t.sends[usize::from(oneway)][usize::from(ok)].increment(1);
                t.attempts.increment(u64::from(attempts));
                if !oneway {
                    t.durations[usize::from(ok)].record(took.as_secs_f64());
                }
            };
            if let Some(t) = self.topics.read().get(topic) {
                return record(t);
            }
            let mut topics = self.topics.write();
            if topics.len() >= 4096 {
                // Bounded, as the topic names are.
                topics.clear();
            }
            record(
                topics
                    .entry(topic.clone())
                    .or_insert_with(|| Topic::new(topic)),
            );
        }
    }

    /// Heartbeats answered and failed.
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    pub(crate) fn heartbeats(&self, ok: usize, failed: usize) {
        #[cfg(feature = "metrics")]
        {
            let [okc, errc] = self.heartbeats.get_or_init(|| {
                [
                    counter!("rmq_producer_heartbeats_total", "outcome" => "ok"),
                    counter!("rmq_producer_heartbeats_total", "outcome" => "error"),
                ]
            });
            okc.increment(ok as u64);
            errc.increment(failed as u64);
        }
    }
}
