//! Request-reply: the replies brokers push (PUSH_REPLY_MESSAGE_TO_CLIENT, 326) matched to their waiters
//! by `CORRELATION_ID`. The push arrives on a connection's reader thread; matching only completes the
//! waiter's cell. A reply whose waiter gave up (or never existed) is dropped and counted. A waiter that
//! nobody answers ends with [`ProducerError::RequestTimeout`] at its deadline, also as a future: the
//! producer's timer calls [`Replies::expire`] then.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rmq_protocol::compress::{CompressionType, decompress};
use rmq_protocol::message::{decode_properties, property};
use rmq_protocol::{Message, RemotingCommand, ResponseCode};
use rmq_remoting::Completion;
use tracing::{debug, warn};

use crate::error::ProducerError;

/// How a request ended.
type Outcome = Result<Message, ProducerError>;

/// A registered waiter: the cell its outcome goes to.
struct Waiter {
    slot: Arc<Completion<Outcome>>,
    timeout: Duration,
}

/// The replies a producer waits for.
#[derive(Default)]
pub(crate) struct Replies {
    waiting: Mutex<HashMap<String, Waiter>>,
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
        let slot = Arc::new(Completion::new());
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
        }
    }

    /// Ends the wait for `correlation_id` with `r` (a send that failed, a deadline).
    pub(crate) fn fail(&self, correlation_id: &str, r: ProducerError) {
        let entry = self.waiting.lock().remove(correlation_id);
        if let Some(w) = entry {
            w.slot.complete(Err(r), || {});
        }
    }

    /// Ends the wait for `correlation_id` with a timeout, if it still waits (its deadline passed).
    pub(crate) fn expire(&self, correlation_id: &str) {
        let entry = self.waiting.lock().remove(correlation_id);
        if let Some(w) = entry {
            w.slot.complete(
                Err(Replies::timeout_error(correlation_id, w.timeout)),
                || {},
            );
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
                let entry = self.waiting.lock().remove(&id);
                match entry {
                    Some(w) => {
                        self.received.fetch_add(1, Ordering::Relaxed);
                        w.slot.complete(Ok(msg), || {});
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
    slot: Arc<Completion<Outcome>>,
    deadline: Instant,
    timeout: Duration,
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
        let slot = Arc::new(Completion::new());
        slot.complete(r, || {});
        ReplyFuture {
            replies: Weak::new(),
            correlation_id: String::new(),
            slot,
            deadline: Instant::now(),
            timeout: Duration::ZERO,
        }
    }

    /// When the wait ends at the latest.
    pub(crate) fn deadline(&self) -> Instant {
        self.deadline
    }

    /// The correlation id of the request.
    pub fn correlation_id(&self) -> &str {
        &self.correlation_id
    }

    /// Blocks until the reply arrives or the request's timeout passes.
    pub fn wait(self) -> Outcome {
        let mut waited = self.slot.wait_until(Some(self.deadline));
        if waited.is_pending() {
            if let Some(r) = self.replies.upgrade() {
                r.expire(&self.correlation_id);
            }
            // The timeout just delivered, or a reply that won the race.
            waited = self.slot.wait_until(Some(Instant::now()));
        }
        match waited {
            Poll::Ready(Some(r)) => r,
            _ => Err(Replies::timeout_error(&self.correlation_id, self.timeout)),
        }
    }
}

impl Future for ReplyFuture {
    type Output = Outcome;

    /// The producer's timer ends the wait at the deadline, so this waker is always called.
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.slot.poll_take(cx).map(|r| {
            r.unwrap_or_else(|| Err(Replies::timeout_error(&self.correlation_id, self.timeout)))
        })
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
