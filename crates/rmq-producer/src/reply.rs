//! Request-reply: the replies brokers push (PUSH_REPLY_MESSAGE_TO_CLIENT, 326) matched to their waiters
//! by `CORRELATION_ID`. The push arrives on a connection's reader thread; matching only fills a slot and
//! wakes its waiter. A reply whose waiter gave up (or never existed) is dropped and counted. A waiter
//! that nobody answers ends with [`ProducerError::RequestTimeout`] at its deadline, also as a future: a
//! sweeper thread, started with the first asynchronous request, completes expired waiters.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use rmq_protocol::compress::{CompressionType, decompress};
use rmq_protocol::message::{decode_properties, property};
use rmq_protocol::{Message, RemotingCommand, ResponseCode};
use tracing::{debug, warn};

use crate::error::ProducerError;

/// How a request ended.
type Outcome = Result<Message, ProducerError>;

/// One request waiting for its reply: the outcome once known, and the task to wake then.
#[derive(Default)]
struct Slot {
    state: Mutex<SlotState>,
    cond: Condvar,
}

#[derive(Default)]
struct SlotState {
    outcome: Option<Outcome>,
    waker: Option<Waker>,
}

/// A registered waiter.
struct Waiter {
    slot: Arc<Slot>,
    timeout: Duration,
}

impl Slot {
    fn complete(&self, r: Outcome) {
        let waker = {
            let mut st = self.state.lock();
            if st.outcome.is_some() {
                return;
            }
            st.outcome = Some(r);
            st.waker.take()
        };
        self.cond.notify_all();
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// The replies a producer waits for.
#[derive(Default)]
pub(crate) struct Replies {
    waiting: Mutex<HashMap<String, Waiter>>,
    /// Deadlines of asynchronous waiters, for the sweeper.
    deadlines: Mutex<BTreeMap<(Instant, u64), String>>,
    sweeper: Mutex<Option<std::thread::JoinHandle<()>>>,
    wake_sweeper: Condvar,
    seq: AtomicU64,
    received: AtomicU64,
    late: AtomicU64,
}

impl std::fmt::Debug for Replies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replies")
            .field("waiting", &self.waiting.lock().len())
            .field("late", &self.late.load(Ordering::Relaxed))
            .finish()
    }
}

impl Replies {
    /// Replies matched to a waiter so far, and replies dropped because none waited.
    pub(crate) fn counts(&self) -> (u64, u64) {
        (
            self.received.load(Ordering::Relaxed),
            self.late.load(Ordering::Relaxed),
        )
    }

    /// Registers a waiter for `correlation_id` until `deadline` (the request's `timeout` after now).
    pub(crate) fn wait_for(
        self: &Arc<Self>,
        correlation_id: &str,
        timeout: Duration,
    ) -> ReplyFuture {
        let slot = Arc::new(Slot::default());
        let deadline = rmq_remoting::deadline_after(Instant::now(), timeout);
        self.waiting.lock().insert(
            correlation_id.to_owned(),
            Waiter {
                slot: slot.clone(),
                timeout,
            },
        );
        ReplyFuture {
            replies: Arc::downgrade(self),
            correlation_id: correlation_id.to_owned(),
            slot,
            deadline,
            timeout,
            swept: false,
        }
    }

    /// Ends the wait for `correlation_id` with `r` (a send that failed, a deadline).
    pub(crate) fn fail(&self, correlation_id: &str, r: ProducerError) {
        if let Some(w) = self.waiting.lock().remove(correlation_id) {
            w.slot.complete(Err(r));
        }
    }

    fn timeout_error(correlation_id: &str, after: Duration) -> ProducerError {
        ProducerError::RequestTimeout {
            correlation_id: correlation_id.to_owned(),
            after,
        }
    }

    /// Handles a pushed reply: matches it to its waiter; answers SUCCESS either way, as Java does.
    pub(crate) fn on_push(
        &self,
        addr: &str,
        request: &RemotingCommand,
        max_body: usize,
    ) -> RemotingCommand {
        match reply_message(request, max_body) {
            Ok(msg) => {
                let id = msg
                    .properties
                    .get(property::CORRELATION_ID)
                    .unwrap_or_default()
                    .to_owned();
                match self.waiting.lock().remove(&id) {
                    Some(w) => {
                        self.received.fetch_add(1, Ordering::Relaxed);
                        w.slot.complete(Ok(msg));
                    }
                    None => {
                        self.late.fetch_add(1, Ordering::Relaxed);
                        debug!(addr, correlation_id = %id, "a reply nobody waits for (late?): dropped");
                    }
                }
                RemotingCommand::response(ResponseCode::SUCCESS, None)
            }
            Err(e) => {
                warn!(addr, error = %e, "unreadable reply message");
                RemotingCommand::response(
                    ResponseCode::SYSTEM_ERROR,
                    Some("process reply message fail".into()),
                )
            }
        }
    }

    /// Makes sure the sweeper runs and knows `f`'s deadline (asynchronous waiters only: a blocking
    /// waiter times out by itself).
    fn schedule(self: &Arc<Self>, correlation_id: &str, deadline: Instant) {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        self.deadlines
            .lock()
            .insert((deadline, seq), correlation_id.to_owned());
        let mut sweeper = self.sweeper.lock();
        if sweeper.is_none() {
            let weak = Arc::downgrade(self);
            *sweeper = std::thread::Builder::new()
                .name("rmq-reply-sweeper".into())
                .spawn(move || sweep(&weak))
                .ok();
        }
        drop(sweeper);
        self.wake_sweeper.notify_all();
    }
}

/// Fails asynchronous waiters at their deadlines; ends when the producer is gone.
fn sweep(replies: &Weak<Replies>) {
    loop {
        let Some(r) = replies.upgrade() else { return };
        let mut deadlines = r.deadlines.lock();
        let now = Instant::now();
        let due: Vec<String> = {
            let later = deadlines.split_off(&(now, u64::MAX));
            let due = std::mem::replace(&mut *deadlines, later);
            due.into_values().collect()
        };
        if due.is_empty() {
            let next = deadlines
                .keys()
                .next()
                .map_or(now + Duration::from_secs(1), |k| k.0);
            let _ = r
                .wake_sweeper
                .wait_until(&mut deadlines, next.min(now + Duration::from_secs(1)));
            continue;
        }
        drop(deadlines);
        for id in due {
            let entry = r.waiting.lock().remove(&id);
            if let Some(w) = entry {
                w.slot.complete(Err(Replies::timeout_error(&id, w.timeout)));
            }
        }
    }
}

/// The reply message a push carries: topic, properties, flag and (inflated) body.
fn reply_message(request: &RemotingCommand, max_body: usize) -> Result<Message, String> {
    let ext = &request.ext_fields;
    let topic = ext.get("topic").unwrap_or_default();
    let sys_flag: i32 = ext
        .get("sysFlag")
        .map_or(Ok(0), str::parse)
        .map_err(|_| "bad sysFlag".to_owned())?;
    let body = if CompressionType::from_sys_flag(sys_flag).is_some() {
        decompress(&request.body, sys_flag, max_body)
            .map_err(|e| e.to_string())?
            .into()
    } else {
        request.body.clone()
    };
    let mut msg = Message::new(topic, body);
    msg.flag = ext.get("flag").and_then(|f| f.parse().ok()).unwrap_or(0);
    msg.properties = decode_properties(ext.get("properties").unwrap_or_default());
    Ok(msg)
}

/// A reply on its way: [`ReplyFuture::wait`] blocks, or poll it as a [`Future`] from any executor.
pub struct ReplyFuture {
    replies: Weak<Replies>,
    correlation_id: String,
    slot: Arc<Slot>,
    deadline: Instant,
    timeout: Duration,
    swept: bool,
}

impl std::fmt::Debug for ReplyFuture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplyFuture")
            .field("correlation_id", &self.correlation_id)
            .finish_non_exhaustive()
    }
}

impl ReplyFuture {
    /// A future that is already over.
    pub(crate) fn done(r: Outcome) -> ReplyFuture {
        let slot = Arc::new(Slot::default());
        slot.complete(r);
        ReplyFuture {
            replies: Weak::new(),
            correlation_id: String::new(),
            slot,
            deadline: Instant::now(),
            timeout: Duration::ZERO,
            swept: true,
        }
    }

    /// The correlation id of the request.
    pub fn correlation_id(&self) -> &str {
        &self.correlation_id
    }

    /// Blocks until the reply arrives or the request's timeout passes.
    pub fn wait(self) -> Outcome {
        let mut st = self.slot.state.lock();
        while st.outcome.is_none() {
            if self
                .slot
                .cond
                .wait_until(&mut st, self.deadline)
                .timed_out()
                && st.outcome.is_none()
            {
                drop(st);
                if let Some(r) = self.replies.upgrade() {
                    r.fail(
                        &self.correlation_id,
                        Replies::timeout_error(&self.correlation_id, self.timeout),
                    );
                }
                st = self.slot.state.lock();
                if st.outcome.is_none() {
                    return Err(Replies::timeout_error(&self.correlation_id, self.timeout));
                }
            }
        }
        st.outcome
            .take()
            .unwrap_or_else(|| Err(Replies::timeout_error(&self.correlation_id, self.timeout)))
    }
}

impl Future for ReplyFuture {
    type Output = Outcome;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        {
            let mut st = this.slot.state.lock();
            if let Some(r) = st.outcome.take() {
                return Poll::Ready(r);
            }
            st.waker = Some(cx.waker().clone());
        }
        if !this.swept {
            this.swept = true;
            match this.replies.upgrade() {
                Some(r) => r.schedule(&this.correlation_id, this.deadline),
                None => {
                    return Poll::Ready(Err(ProducerError::State("shut down")));
                }
            }
        }
        Poll::Pending
    }
}

impl Drop for ReplyFuture {
    fn drop(&mut self) {
        // A waiter given up: a reply arriving later is counted as late.
        if let Some(r) = self.replies.upgrade() {
            r.waiting.lock().remove(&self.correlation_id);
        }
    }
}
