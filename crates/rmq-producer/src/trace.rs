//! Message trace (opt-in, [`crate::ProducerConfig::trace`]): one Pub record per stored message in the
//! Java client's text format (protocol-features.md §4), sent in batches to the trace topic by the
//! `rmq-trace` thread: when 10 records wait, 5 s after the last batch, or at shutdown. A user's send never
//! waits for its trace and never fails because of it: records beyond 2,048 waiting are dropped, and trace
//! messages go out as try-sends whose failures are only counted.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use rmq_protocol::header::SendMessageResponseHeader;
use rmq_protocol::message::property;
use rmq_protocol::{Message, OffsetMessageId};
use tracing::debug;

use crate::result::SendStatus;

/// Records per batch (Java 5.x `traceMsgBatchNum`).
const BATCH: usize = 10;
/// Longest wait before waiting records are sent.
const FLUSH_EVERY: Duration = Duration::from_secs(5);
/// Records held at most; more are dropped.
const QUEUE: usize = 2048;
/// Largest trace message body (Java's trace producer `maxMessageSize`).
const MAX_BODY: usize = 128_000;
const FIELD: char = '\u{1}';
const END: char = '\u{2}';

/// What a trace record needs from the message, taken when it is prepared (only with tracing on).
#[derive(Debug, Clone)]
pub(crate) struct TraceFacts {
    tags: Option<String>,
    keys: Option<String>,
    msg_type: u8,
    started_ms: i64,
}

impl TraceFacts {
    /// The message's keys (space-separated), if any.
    pub(crate) fn keys(&self) -> Option<&str> {
        self.keys.as_deref()
    }

    /// The facts of `message`, whose send starts at `now_ms`.
    pub(crate) fn of(message: &Message, now_ms: i64) -> TraceFacts {
        let p = &message.properties;
        let delayed = [
            property::DELAY_TIME_LEVEL,
            property::TIMER_DELAY_SEC,
            property::TIMER_DELAY_MS,
            property::TIMER_DELIVER_MS,
            property::START_DELIVER_TIME,
        ]
        .iter()
        .any(|k| p.contains_key(k));
        // Java's MessageType ordinals: Normal_Msg 0, Trans_Msg_Half 1, Delay_Msg 3.
        let msg_type = if p.get(property::TRANSACTION_PREPARED) == Some("true") {
            1
        } else if delayed {
            3
        } else {
            0
        };
        TraceFacts {
            tags: p.get(property::TAGS).map(str::to_owned),
            keys: p.get(property::KEYS).map(str::to_owned),
            msg_type,
            started_ms: now_ms,
        }
    }
}

/// One stored message, as traced.
pub(crate) struct Stored<'a> {
    pub(crate) group: &'a str,
    pub(crate) topic: &'a str,
    pub(crate) msg_id: &'a str,
    pub(crate) body_len: usize,
    pub(crate) status: SendStatus,
    pub(crate) header: &'a SendMessageResponseHeader,
    pub(crate) now_ms: i64,
}

/// The Pub record of `s` (`Pub␁timeStamp␁region␁group␁topic␁msgId␁tags␁keys␁storeHost␁bodyLength␁
/// costTime␁msgType␁offsetMsgId␁success␂`), or `None` when the broker asks for no trace (no region, or
/// `TRACE_ON=false`), as Java decides.
pub(crate) fn pub_record(f: &TraceFacts, s: &Stored<'_>) -> Option<String> {
    let region = s.header.region.as_deref()?;
    if s.header.trace_on == Some(false) {
        return None;
    }
    let store_host = OffsetMessageId::decode(&s.header.msg_id)
        .map(|id| id.addr.to_string())
        .unwrap_or_default();
    // Java appends a missing tag or key as the text "null".
    let fields = [
        "Pub".to_owned(),
        f.started_ms.to_string(),
        region.to_owned(),
        s.group.to_owned(),
        s.topic.to_owned(),
        s.msg_id.to_owned(),
        f.tags.clone().unwrap_or_else(|| "null".into()),
        f.keys.clone().unwrap_or_else(|| "null".into()),
        store_host,
        s.body_len.to_string(),
        (s.now_ms - f.started_ms).max(0).to_string(),
        f.msg_type.to_string(),
        s.header.msg_id.to_string(),
        (s.status == SendStatus::SendOk).to_string(),
    ];
    let mut r = fields.join(&FIELD.to_string());
    r.push(END);
    Some(r)
}

/// A record waiting to be sent, with the keys its trace message gets.
struct Pending {
    text: String,
    keys: Vec<String>,
}

#[derive(Default)]
struct Queue {
    records: Vec<Pending>,
    stop: bool,
}

/// How the trace thread sends a trace message: asynchronously, calling back with whether it was stored.
pub(crate) type SendTrace = Box<dyn Fn(Message, Box<dyn FnOnce(bool) + Send>) + Send + Sync>;

/// What the producer and the trace thread share.
#[derive(Default)]
struct Shared {
    queue: Mutex<Queue>,
    cond: Condvar,
    sent: AtomicU64,
    dropped: AtomicU64,
}

/// The records waiting and the thread that sends them to `topic`.
#[derive(Default)]
pub(crate) struct Tracer {
    topic: String,
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Tracer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracer")
            .field("topic", &self.topic)
            .field("counts", &self.counts())
            .finish()
    }
}

impl Tracer {
    /// A tracer sending to `topic` (started by [`Tracer::start`]).
    pub(crate) fn new(topic: &str) -> Tracer {
        Tracer {
            topic: topic.to_owned(),
            ..Tracer::default()
        }
    }

    /// Queues the record of a stored message with `msg_id` and the user's `keys` (never blocks).
    pub(crate) fn submit(&self, record: String, msg_id: &str, keys: Option<&str>) {
        let sh = &self.shared;
        let mut q = sh.queue.lock();
        if q.records.len() >= QUEUE || q.stop {
            sh.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let mut k = vec![msg_id.to_owned()];
        k.extend(
            keys.unwrap_or_default()
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
        );
        q.records.push(Pending {
            text: record,
            keys: k,
        });
        if q.records.len() >= BATCH {
            sh.cond.notify_all();
        }
    }

    /// Trace records in trace messages that were stored, and records dropped (queue full, or their trace
    /// message could not be sent).
    pub(crate) fn counts(&self) -> (u64, u64) {
        (
            self.shared.sent.load(Ordering::Relaxed),
            self.shared.dropped.load(Ordering::Relaxed),
        )
    }

    /// Starts the `rmq-trace` thread, which sends through `send`.
    pub(crate) fn start(&self, send: SendTrace) -> std::io::Result<()> {
        let (shared, topic) = (self.shared.clone(), self.topic.clone());
        let h = std::thread::Builder::new()
            .name("rmq-trace".into())
            .spawn(move || run(&shared, &topic, &send))?;
        *self.thread.lock() = Some(h);
        Ok(())
    }

    /// Sends what waits and stops the thread (at shutdown, while the producer can still send).
    pub(crate) fn stop(&self) {
        self.shared.queue.lock().stop = true;
        self.shared.cond.notify_all();
        let h = self.thread.lock().take();
        if let Some(h) = h
            && h.thread().id() != std::thread::current().id()
        {
            let _ = h.join();
        }
    }
}

fn run(shared: &Arc<Shared>, topic: &str, send: &SendTrace) {
    let mut last = Instant::now();
    loop {
        let (batch, stop) = {
            let mut q = shared.queue.lock();
            while !q.stop && q.records.len() < BATCH {
                if shared
                    .cond
                    .wait_until(&mut q, last + FLUSH_EVERY)
                    .timed_out()
                {
                    break;
                }
            }
            (std::mem::take(&mut q.records), q.stop)
        };
        last = Instant::now();
        if !batch.is_empty() {
            send_batch(shared, topic, send, batch);
        }
        if stop {
            return;
        }
    }
}

/// Sends `batch` as trace messages of at most [`MAX_BODY`] bytes each; each record is counted as sent or
/// dropped when its message's send ends.
fn send_batch(shared: &Arc<Shared>, topic: &str, send: &SendTrace, batch: Vec<Pending>) {
    let mut body = String::new();
    let mut keys = BTreeSet::new();
    let mut count = 0u64;
    let flush = |body: &mut String, keys: &mut BTreeSet<String>, count: &mut u64| {
        if body.is_empty() {
            return;
        }
        let mut m = Message::new(topic, std::mem::take(body));
        m.set_keys(std::mem::take(keys));
        let (n, shared) = (std::mem::take(count), shared.clone());
        send(
            m,
            Box::new(move |stored| {
                let counter = if stored {
                    &shared.sent
                } else {
                    &shared.dropped
                };
                counter.fetch_add(n, Ordering::Relaxed);
                if !stored {
                    debug!(records = n, "trace message not stored: records dropped");
                }
            }),
        );
    };
    for p in batch {
        if !body.is_empty() && body.len() + p.text.len() > MAX_BODY {
            flush(&mut body, &mut keys, &mut count);
        }
        body.push_str(&p.text);
        keys.extend(p.keys);
        count += 1;
    }
    flush(&mut body, &mut keys, &mut count);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pub_record_is_the_one_java_wrote() {
        // protocol-features.md §4.2, observed from the 5.5.0 Java client (its msgId shortened here).
        let mut m = Message::new("PfxTrace84075", "1234567");
        m.set_tags("TagT");
        m.set_keys(["k1", "k2"]);
        let facts = TraceFacts::of(&m, 1_795_594_986_864);
        let header = SendMessageResponseHeader {
            msg_id: "7F000001000078BF0000000000003408".into(),
            region: Some("DefaultRegion".into()),
            trace_on: Some(true),
            ..SendMessageResponseHeader::default()
        };
        let stored = Stored {
            group: "pfx_trace_pg",
            topic: "PfxTrace84075",
            msg_id: "FD000000",
            body_len: 7,
            status: SendStatus::SendOk,
            header: &header,
            now_ms: 1_795_594_986_864 + 76,
        };
        assert_eq!(
            pub_record(&facts, &stored).unwrap(),
            "Pub\u{1}1795594986864\u{1}DefaultRegion\u{1}pfx_trace_pg\u{1}PfxTrace84075\u{1}FD000000\u{1}TagT\u{1}k1 k2\u{1}127.0.0.1:30911\u{1}7\u{1}76\u{1}0\u{1}7F000001000078BF0000000000003408\u{1}true\u{2}"
        );
        // No region, or TRACE_ON=false: no record, as Java decides. Missing tags and keys: "null".
        let no_region = SendMessageResponseHeader {
            region: None,
            ..header.clone()
        };
        assert!(
            pub_record(
                &facts,
                &Stored {
                    header: &no_region,
                    ..stored
                }
            )
            .is_none()
        );
        let off = SendMessageResponseHeader {
            trace_on: Some(false),
            ..header.clone()
        };
        assert!(
            pub_record(
                &facts,
                &Stored {
                    header: &off,
                    ..stored
                }
            )
            .is_none()
        );
        let bare = TraceFacts::of(&Message::new("T", "x"), 0);
        let r = pub_record(&bare, &stored).unwrap();
        assert!(r.contains("\u{1}null\u{1}null\u{1}"), "{r:?}");
        let mut delayed = Message::new("T", "x");
        delayed.set_delay_level(1);
        assert_eq!(TraceFacts::of(&delayed, 0).msg_type, 3);
    }
}
