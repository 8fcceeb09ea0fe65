//! [`ResponseFuture`]: one pending request's completion, usable from threads (`wait`, `wait_timeout`) and
//! from any executor (`std::future::Future`), without an async runtime.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use rmq_protocol::RemotingCommand;

use crate::cell::{Completed, Completion};
use crate::error::RemotingError;
use crate::flow::Permit;

/// A callback run once with the outcome, on the thread that completes the request (the connection's
/// reader, its writer when a write fails, the timer, or the sender's when nothing was sent). It must not
/// block.
pub type Callback = Box<dyn FnOnce(Result<RemotingCommand, RemotingError>) + Send + 'static>;

/// How long a synchronous waiter polls before sleeping.
const SPIN: Duration = Duration::from_micros(50);

/// The shared completion slot of one request: its [`Completion`] and what the connection needs to time
/// it out and give its room back.
pub(crate) struct Slot {
    cell: Completion<Result<RemotingCommand, RemotingError>>,
    pub(crate) deadline: Instant,
    pub(crate) timeout: Duration,
    pub(crate) permit: Permit,
}

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slot")
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

impl Slot {
    /// A slot that times out at `deadline`, `timeout` after its call began.
    pub(crate) fn new(
        deadline: Instant,
        timeout: Duration,
        permit: Permit,
        callback: Option<Callback>,
    ) -> Arc<Slot> {
        let cell = match callback {
            Some(cb) => Completion::with_callback("invoke_async callback", cb),
            None => Completion::new(),
        };
        Arc::new(Slot {
            cell,
            deadline,
            timeout,
            permit,
        })
    }

    /// Whether the slot has its outcome.
    #[cfg(test)]
    pub(crate) fn is_complete(&self) -> bool {
        self.cell.is_done()
    }

    /// Completes the slot once; later calls are ignored. `release` runs exactly when this call completes
    /// the slot, before any waiter, waker or callback sees the outcome (so the in-flight room is already
    /// free when the caller continues). Returns whether this call completed it.
    pub(crate) fn complete(
        &self,
        result: Result<RemotingCommand, RemotingError>,
        release: impl FnOnce(),
    ) -> bool {
        self.cell.complete(result, release) != Completed::AlreadyDone
    }
}

/// What a [`ResponseFuture`] needs from the connection its request went out on (implemented by the
/// connection; kept as a trait so this module does not depend on that one).
pub(crate) trait Owner: Send + Sync {
    /// The peer's address.
    fn addr(&self) -> &str;
    /// Whether a synchronous waiter should poll briefly before sleeping.
    fn spin_worthwhile(&self) -> bool;
    /// Gives up on the pending request `opaque` (timeout or dropped handle).
    fn abandon(&self, opaque: i32, slot: &Arc<Slot>, err: RemotingError);
}

/// The pending response to one request. Wait for it from a thread, or `.await` it on any executor.
///
/// Dropping it before completion abandons the request: its entry is removed from the connection so a late
/// response is discarded, and its in-flight permit is released.
#[must_use = "a dropped ResponseFuture abandons its request"]
pub struct ResponseFuture {
    slot: Arc<Slot>,
    /// The connection the request went out on; `None` for a future complete from the start.
    conn: Option<Weak<dyn Owner>>,
    opaque: i32,
    taken: bool,
}

impl std::fmt::Debug for ResponseFuture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("opaque", &self.opaque)
            .finish_non_exhaustive()
    }
}

impl ResponseFuture {
    pub(crate) fn new(slot: Arc<Slot>, conn: Weak<dyn Owner>, opaque: i32) -> Self {
        ResponseFuture {
            slot,
            conn: Some(conn),
            opaque,
            taken: false,
        }
    }

    /// A future that is already complete (for failures before anything was sent).
    pub(crate) fn ready(result: Result<RemotingCommand, RemotingError>) -> Self {
        let slot = Slot::new(Instant::now(), Duration::ZERO, Permit::default(), None);
        slot.complete(result, || {});
        ResponseFuture {
            slot,
            conn: None,
            opaque: 0,
            taken: false,
        }
    }

    fn owner(&self) -> Option<Arc<dyn Owner>> {
        self.conn.as_ref().and_then(Weak::upgrade)
    }

    /// Lets the request run to completion without this handle (its slot's callback owns the outcome).
    pub(crate) fn detach(mut self) {
        self.taken = true;
    }

    /// The request's opaque.
    pub fn opaque(&self) -> i32 {
        self.opaque
    }

    /// Blocks until the response, the request's timeout, or the connection's death.
    pub fn wait(mut self) -> Result<RemotingCommand, RemotingError> {
        let deadline = self.slot.deadline;
        self.wait_until(deadline)
    }

    /// Blocks at most `limit`; if nothing came by then the request is abandoned and a timeout returned.
    pub fn wait_timeout(mut self, limit: Duration) -> Result<RemotingCommand, RemotingError> {
        let deadline = crate::time::deadline_after(Instant::now(), limit).min(self.slot.deadline);
        self.wait_until(deadline)
    }

    fn wait_until(&mut self, deadline: Instant) -> Result<RemotingCommand, RemotingError> {
        // A response on loopback or a fast LAN often arrives within tens of microseconds; waiting for it
        // briefly on the CPU saves the futex sleep and wake-up of the condition variable (measured: the
        // sequential round trip drops from 1.23x to ~1.1x a raw socket). Only when few requests are in
        // flight, so busy senders never spin against each other.
        if self.owner().is_some_and(|c| c.spin_worthwhile()) {
            self.slot.cell.spin(SPIN);
        }
        let waited = self.slot.cell.wait_until(Some(deadline));
        self.taken = true;
        match waited {
            Poll::Ready(Some(r)) => r,
            // Delivered but taken: only a callback takes the value, and a slot with one has no handle.
            Poll::Ready(None) => Err(RemotingError::Shutdown),
            Poll::Pending => {
                let err = self.timeout_error();
                // Complete it ourselves so a racing response is dropped and the permit released once.
                if let Some(conn) = self.owner() {
                    conn.abandon(self.opaque, &self.slot, err.clone());
                } else {
                    self.slot.complete(Err(err.clone()), || {});
                }
                // A response that won the race is the outcome; else the timeout.
                match self.slot.cell.wait_until(Some(Instant::now())) {
                    Poll::Ready(Some(r)) => r,
                    _ => Err(err),
                }
            }
        }
    }

    fn timeout_error(&self) -> RemotingError {
        RemotingError::Timeout {
            addr: self
                .owner()
                .map(|c| c.addr().to_owned())
                .unwrap_or_default(),
            opaque: self.opaque,
            after: self.slot.timeout,
        }
    }
}

impl Future for ResponseFuture {
    type Output = Result<RemotingCommand, RemotingError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.slot.cell.poll_take(cx) {
            // The client's timer completes expired requests, so this waker is always called eventually.
            Poll::Pending => Poll::Pending,
            Poll::Ready(r) => {
                self.taken = true;
                Poll::Ready(r.unwrap_or(Err(RemotingError::Shutdown)))
            }
        }
    }
}

impl Drop for ResponseFuture {
    fn drop(&mut self) {
        if self.taken {
            return;
        }
        if let Some(conn) = self.owner() {
            conn.abandon(self.opaque, &self.slot, RemotingError::Shutdown);
        }
    }
}
