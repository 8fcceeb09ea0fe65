//! Asynchronous sends: the same attempts and retries as `send_sync`, driven by connection callbacks and a
//! retry thread, completing a [`SendFuture`] (or a callback) exactly once.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::mpsc::Receiver;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::error::ProducerError;
use crate::producer::{Inner, Next, SendResult, SendState};

/// A callback run once with a send's outcome. It runs on a connection's reader thread or the producer's
/// retry thread: it must not block.
pub type SendCallback = Box<dyn FnOnce(Result<SendResult, ProducerError>) + Send + 'static>;

#[derive(Default)]
struct State {
    result: Option<Result<SendResult, ProducerError>>,
    done: bool,
    waker: Option<Waker>,
    callback: Option<SendCallback>,
}

/// Where one asynchronous send's outcome lands.
pub(crate) struct Outcome {
    state: Mutex<State>,
    cond: Condvar,
}

impl Outcome {
    pub(crate) fn new(callback: Option<SendCallback>) -> Arc<Outcome> {
        Arc::new(Outcome {
            state: Mutex::new(State {
                callback,
                ..State::default()
            }),
            cond: Condvar::new(),
        })
    }

    /// Completes a send refused before it started.
    pub(crate) fn complete_now(&self, result: Result<SendResult, ProducerError>) {
        self.complete(result);
    }

    fn complete(&self, result: Result<SendResult, ProducerError>) {
        let mut st = self.state.lock();
        if st.done {
            return;
        }
        st.done = true;
        if let Some(cb) = st.callback.take() {
            drop(st);
            cb(result);
            return;
        }
        st.result = Some(result);
        let waker = st.waker.take();
        drop(st);
        self.cond.notify_all();
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// The pending outcome of [`crate::Producer::send_async`]. Wait for it from a thread or `.await` it on any
/// executor. Dropping it does not cancel the send: the message was accepted and is sent; only the outcome
/// is no longer observed (it still counts in the stats).
#[must_use = "dropping a SendFuture discards the send's outcome"]
pub struct SendFuture {
    outcome: Arc<Outcome>,
}

impl std::fmt::Debug for SendFuture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendFuture")
            .field("done", &self.outcome.state.lock().done)
            .finish()
    }
}

impl SendFuture {
    pub(crate) fn new(outcome: Arc<Outcome>) -> Self {
        SendFuture { outcome }
    }

    /// Blocks until the send is over (at most about `send_msg_timeout` after it started).
    pub fn wait(self) -> Result<SendResult, ProducerError> {
        let mut st = self.outcome.state.lock();
        while !st.done {
            self.outcome.cond.wait(&mut st);
        }
        st.result
            .take()
            .unwrap_or(Err(ProducerError::State("outcome already taken")))
    }

    /// Blocks at most `limit`; `None` if the send is still going on (it keeps going).
    pub fn wait_timeout(&self, limit: Duration) -> Option<Result<SendResult, ProducerError>> {
        let deadline = Instant::now() + limit;
        let mut st = self.outcome.state.lock();
        while !st.done {
            if self.outcome.cond.wait_until(&mut st, deadline).timed_out() && !st.done {
                return None;
            }
        }
        st.result.take()
    }
}

impl Future for SendFuture {
    type Output = Result<SendResult, ProducerError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut st = self.outcome.state.lock();
        if st.done {
            return Poll::Ready(
                st.result
                    .take()
                    .unwrap_or(Err(ProducerError::State("outcome already taken"))),
            );
        }
        match &st.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => st.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

/// One asynchronous send in progress.
pub(crate) struct AsyncSend {
    pub(crate) state: SendState,
    pub(crate) outcome: Arc<Outcome>,
}

/// Bounds asynchronous sends in flight (`async_send_semaphore`).
#[derive(Debug)]
pub(crate) struct AsyncPermits {
    in_flight: Mutex<usize>,
    cond: Condvar,
    max: usize,
}

impl AsyncPermits {
    pub(crate) fn new(max: usize) -> Self {
        AsyncPermits {
            in_flight: Mutex::new(0),
            cond: Condvar::new(),
            max,
        }
    }

    /// Takes a permit, waiting until `deadline` (or not at all when `block` is false).
    pub(crate) fn acquire(&self, deadline: Instant, block: bool) -> Result<(), ProducerError> {
        let mut n = self.in_flight.lock();
        while *n >= self.max {
            if !block || self.cond.wait_until(&mut n, deadline).timed_out() && *n >= self.max {
                return Err(ProducerError::Overloaded {
                    in_flight: *n,
                    max: self.max,
                });
            }
        }
        *n += 1;
        Ok(())
    }

    pub(crate) fn release(&self) {
        let mut n = self.in_flight.lock();
        *n = n.saturating_sub(1);
        drop(n);
        self.cond.notify_all();
    }

    pub(crate) fn in_flight(&self) -> usize {
        *self.in_flight.lock()
    }

    /// Waits until nothing is in flight or `deadline` passes; returns what is left.
    pub(crate) fn drain(&self, deadline: Instant) -> usize {
        let mut n = self.in_flight.lock();
        while *n > 0 {
            if self.cond.wait_until(&mut n, deadline).timed_out() {
                break;
            }
        }
        *n
    }
}

impl Inner {
    /// Ends an asynchronous send: stats, permit, outcome.
    pub(crate) fn finish_async(&self, send: AsyncSend, result: Result<SendResult, ProducerError>) {
        self.counters.record(&result, send.state.started.elapsed());
        self.async_permits.release();
        send.outcome.complete(result);
    }

    /// Runs the next attempt of `send`. Called on the sender's thread first, then on the retry thread,
    /// never on a connection's reader thread (route fetches and connects may block).
    pub(crate) fn drive(self: &Arc<Self>, mut send: AsyncSend) {
        if self.retry_tx.lock().is_none() {
            // Past the shutdown's drain deadline.
            self.finish_async(send, Err(ProducerError::State("shut down")));
            return;
        }
        match self.next_attempt(&mut send.state) {
            Next::Done(r) => self.finish_async(send, r),
            Next::Attempt {
                routing,
                request,
                timeout,
            } => {
                let inner = self.clone();
                let addr = routing.broker_addr().to_owned();
                let sent_at = Instant::now();
                self.remoting
                    .invoke_async_callback(&addr, request, timeout, move |outcome| {
                        let mut send = send;
                        match inner.on_outcome(
                            &mut send.state,
                            &routing,
                            outcome,
                            sent_at.elapsed(),
                        ) {
                            Some(r) => inner.finish_async(send, r),
                            None => inner.retry(send),
                        }
                    });
            }
        }
    }

    fn retry(&self, send: AsyncSend) {
        let tx = self.retry_tx.lock().clone();
        match tx {
            Some(tx) => {
                if let Err(back) = tx.send(send) {
                    self.finish_async(back.0, Err(ProducerError::State("shut down")));
                }
            }
            None => self.finish_async(send, Err(ProducerError::State("shut down"))),
        }
    }
}

/// The retry thread: runs further attempts of asynchronous sends off the connections' reader threads.
pub(crate) fn retry_loop(inner: std::sync::Weak<Inner>, rx: Receiver<AsyncSend>) {
    while let Ok(send) = rx.recv() {
        match inner.upgrade() {
            Some(i) => i.drive(send),
            None => return,
        }
    }
}
