//! [`Pending`]: the outcome of an asynchronous call, to wait for from a thread or to `.await` on any
//! executor (tokio, async-std, smol, `futures::executor`, a hand-written `block_on`): no runtime, no
//! thread per call. It is a handle on a [`Completion`], the one cell every outcome in rmq is delivered
//! through.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use rmq_remoting::Completion;

use crate::error::ProducerError;

/// The cell an asynchronous call's outcome is delivered through.
pub(crate) type Cell<T> = Arc<Completion<Result<T, ProducerError>>>;

/// The pending outcome of an asynchronous call ([`crate::Producer::send_async`] and the other `_async`
/// methods). Wait for it from a thread ([`Pending::wait`]) or `.await` it on any executor; polling never
/// blocks. Dropping it does not cancel the call: an accepted send goes on and its outcome still counts
/// in the stats; only nobody observes it.
#[must_use = "dropping a Pending discards the outcome (the call goes on)"]
pub struct Pending<T> {
    cell: Cell<T>,
}

impl<T> std::fmt::Debug for Pending<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending")
            .field("done", &self.cell.is_done())
            .finish()
    }
}

/// What a cell holds when its value went elsewhere (never for a handle that was not waited on twice).
fn taken() -> ProducerError {
    ProducerError::State("outcome already taken")
}

impl<T> Pending<T> {
    /// A handle on `cell` and the cell, for the side that completes it.
    pub(crate) fn new() -> (Pending<T>, Cell<T>) {
        let cell = Arc::new(Completion::new());
        (Pending { cell: cell.clone() }, cell)
    }

    /// A handle already complete with `r`.
    pub(crate) fn ready(r: Result<T, ProducerError>) -> Pending<T> {
        let (p, cell) = Pending::new();
        cell.complete(r, || {});
        p
    }

    /// Whether the outcome is known.
    pub fn is_done(&self) -> bool {
        self.cell.is_done()
    }

    /// Blocks this thread until the outcome is known (a send: at most about its timeout after it was
    /// accepted, waiting for room included; a batch: that per batch; a transaction: its send and the
    /// local transaction).
    pub fn wait(self) -> Result<T, ProducerError> {
        match self.cell.wait_until(None) {
            Poll::Ready(Some(r)) => r,
            _ => Err(taken()),
        }
    }

    /// Blocks at most `limit`; `None` if the call is still going on (it keeps going; wait again).
    pub fn wait_timeout(&self, limit: Duration) -> Option<Result<T, ProducerError>> {
        let deadline = rmq_remoting::deadline_after(Instant::now(), limit);
        match self.cell.wait_until(Some(deadline)) {
            Poll::Pending => None,
            Poll::Ready(r) => Some(r.unwrap_or_else(|| Err(taken()))),
        }
    }
}

impl<T> Future for Pending<T> {
    type Output = Result<T, ProducerError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.cell
            .poll_take(cx)
            .map(|r| r.unwrap_or_else(|| Err(taken())))
    }
}
