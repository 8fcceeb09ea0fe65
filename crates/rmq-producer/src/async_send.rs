//! The asynchronous driver: a send's steps run on the caller's thread only while they cannot block (a
//! route in the cache, a live connection); route fetches, connects and retries run on the producer's
//! async worker thread, never on a connection's reader thread. Each send completes its [`SendFuture`] (or
//! callback) exactly once.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use rmq_protocol::Message;
use rmq_routing::RoutingStrategy;

use crate::core::Core;
use crate::error::ProducerError;
use crate::inflight::Ticket;
use crate::machine::Policy;
use crate::result::SendResult;
use crate::send::{Attempt, Mode, Plan, SendJob, Target, refused, strategy_for};
use crate::workers::Closed;

/// A callback run once with a send's outcome. It runs on a connection's reader thread (or its writer
/// thread, or the remoting timer, when the connection fails or the attempt times out), the producer's
/// async worker or the sender's thread: it must not block.
pub type SendCallback = Box<dyn FnOnce(Result<SendResult, ProducerError>) + Send + 'static>;

#[derive(Default)]
struct State {
    result: Option<Result<SendResult, ProducerError>>,
    done: bool,
    waker: Option<Waker>,
    callback: Option<SendCallback>,
}

/// Where one asynchronous send's outcome lands.
struct Outcome {
    state: Mutex<State>,
    cond: Condvar,
}

impl Outcome {
    fn new(callback: Option<SendCallback>) -> Arc<Outcome> {
        Arc::new(Outcome {
            state: Mutex::new(State {
                callback,
                ..State::default()
            }),
            cond: Condvar::new(),
        })
    }

    /// Delivers `result` once; `open`: the send still holds its place in the in-flight table (given back
    /// after this returns). Returns false when the callback panicked (caught and logged).
    fn complete(&self, result: Result<SendResult, ProducerError>, open: bool) -> bool {
        let mut st = self.state.lock();
        if st.done {
            return true;
        }
        st.done = true;
        if let Some(cb) = st.callback.take() {
            drop(st);
            let _in_callback = open.then(InCallback::enter);
            return rmq_remoting::run_user_code("send callback", || cb(result)).is_some();
        }
        st.result = Some(result);
        let waker = st.waker.take();
        drop(st);
        self.cond.notify_all();
        if let Some(w) = waker {
            w.wake();
        }
        true
    }
}

thread_local! {
    /// Send callbacks running on this thread whose sends are still open in the in-flight table (a
    /// callback may send again, and its send's callback may run at once on the same thread).
    static CALLBACKS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Marks the current thread as running a send callback while it lives.
struct InCallback;

impl InCallback {
    fn enter() -> InCallback {
        CALLBACKS.with(|c| c.set(c.get() + 1));
        InCallback
    }
}

impl Drop for InCallback {
    fn drop(&mut self) {
        CALLBACKS.with(|c| c.set(c.get().saturating_sub(1)));
    }
}

/// How many send callbacks the current thread is running: their sends are still open (each gives its
/// place back once its callback returns), so a shutdown they start does not wait for them.
pub(crate) fn callbacks_running_here() -> usize {
    CALLBACKS.with(std::cell::Cell::get)
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
    /// Blocks until the send is over (at most about its timeout after it started).
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
        let deadline = rmq_remoting::deadline_after(Instant::now(), limit);
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
struct AsyncSend {
    /// Boxed: a job is over a kilobyte, and a send moves through several closures.
    job: Box<SendJob<'static>>,
    outcome: Arc<Outcome>,
    ticket: Ticket,
}

/// Hands `send` to the async worker, which runs `then` with it; when the worker is closed (shutdown),
/// the send ends at once with a shutdown error instead.
fn hand_off(
    core: &Arc<Core>,
    send: AsyncSend,
    then: impl FnOnce(&Arc<Core>, AsyncSend) + Send + 'static,
) {
    let c = core.clone();
    core.jobs().push(Box::new(move |closed: Closed| {
        let mut send = send;
        if closed.0 {
            send.job.abort(ProducerError::State("shut down"));
            step(&c, send, Thread::NonBlocking, Instant::now());
        } else {
            then(&c, send);
        }
    }));
}

/// Which thread runs a step: what the caller's thread and reader threads may not do goes to the worker.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Thread {
    /// The sender's thread or a reader thread: nothing that blocks.
    NonBlocking,
    /// The async worker: may fetch routes and connect.
    Worker,
}

/// Starts an asynchronous send of `message` within `timeout`. `wait_for_room`: block while the in-flight
/// bound is reached (up to the timeout) instead of failing with `Overloaded` at once.
pub(crate) fn start(
    core: &Arc<Core>,
    message: &Message,
    timeout: Duration,
    wait_for_room: bool,
    callback: Option<SendCallback>,
) -> SendFuture {
    let outcome = Outcome::new(callback);
    let future = SendFuture {
        outcome: outcome.clone(),
    };
    let started = Instant::now();
    let accepted = core.check_running().and_then(|()| {
        let prepared = core.requests().prepare(message)?;
        let ticket = core.in_flight().acquire(
            prepared.uniq_key(),
            prepared.user_topic(),
            started,
            wait_for_room.then(|| rmq_remoting::deadline_after(started, timeout)),
        )?;
        Ok((prepared, ticket))
    });
    match accepted {
        Ok((prepared, ticket)) => {
            let strategy = strategy_for(message, core.config().routing_strategy);
            let job = SendJob::new(
                prepared,
                routing_key(message, strategy),
                Target::Strategy(strategy),
                Mode::Answered,
                Policy::retrying(
                    core.config().retry_times,
                    core.config().retry_another_broker_when_not_store_ok,
                ),
                started,
                timeout,
            );
            // A send that waited for room reads the clock again: its attempt's time is what is left.
            let now = if ticket.waited() {
                Instant::now()
            } else {
                started
            };
            let send = AsyncSend {
                job: Box::new(job),
                outcome,
                ticket,
            };
            step(core, send, Thread::NonBlocking, now);
        }
        Err(e) => deliver(core, &outcome, Err(refused(core, Mode::Answered, e)), false),
    }
    future
}

/// Delivers an asynchronous send's outcome ([`Outcome::complete`]), counting a callback that panicked.
fn deliver(core: &Core, outcome: &Outcome, r: Result<SendResult, ProducerError>, open: bool) {
    if !outcome.complete(r, open) {
        core.counters().record_callback_panic();
    }
}

/// What an asynchronous send keeps for routing its attempts: the message itself only when the strategy
/// reads it (message hash); the other strategies never look at it, so no copy is made.
fn routing_key(message: &Message, strategy: RoutingStrategy) -> Cow<'static, Message> {
    static UNREAD: std::sync::OnceLock<Message> = std::sync::OnceLock::new();
    match strategy {
        RoutingStrategy::MessageHash => Cow::Owned(message.clone()),
        _ => Cow::Borrowed(UNREAD.get_or_init(Message::default)),
    }
}

/// Carries `send` on as far as `thread` may from `now`, then hands it to a connection or the worker.
fn step(core: &Arc<Core>, mut send: AsyncSend, thread: Thread, now: Instant) {
    let blocking_ok = thread == Thread::Worker;
    match send.job.plan(core, now) {
        Plan::Fetch(fetch) if blocking_ok => {
            send.job.fetch_route(core, fetch);
            step(core, send, thread, Instant::now());
        }
        Plan::Fetch(fetch) => hand_off(core, send, move |c, mut send| {
            send.job.fetch_route(c, fetch);
            step(c, send, Thread::Worker, Instant::now());
        }),
        Plan::Attempt(a)
            if !blocking_ok && !core.remoting().is_connected(a.routing.broker_addr()) =>
        {
            hand_off(core, send, move |c, send| {
                let a = wait_out_backoff(c, a);
                launch(c, send, a, Instant::now());
            });
        }
        Plan::Attempt(a) if blocking_ok => {
            let a = wait_out_backoff(core, a);
            launch(core, send, a, Instant::now());
        }
        Plan::Attempt(a) => launch(core, send, a, now),
        Plan::Done(r) => {
            let AsyncSend {
                job,
                outcome,
                ticket,
            } = send;
            let r = (*job)
                .finish(core, r, now)
                .and_then(|r| r.ok_or(ProducerError::State("no result for an async send")));
            // The outcome is delivered before the place is given back, so a flush that returns empty
            // means every outcome has been delivered.
            deliver(core, &outcome, r, true);
            core.in_flight().release(ticket);
        }
    }
}

/// On the worker, before an attempt: when its broker is in its reconnect backoff and the backoff ends
/// within the attempt's time, waits for it (and gives the attempt what is left), so a retry is not burned
/// on a backoff in microseconds. Only the worker may block; the caller's thread never gets here with an
/// address that is not connected.
fn wait_out_backoff(core: &Core, mut a: Attempt) -> Attempt {
    if let Some(wait) = core.remoting().backoff_left(a.routing.broker_addr())
        && wait < a.timeout
    {
        std::thread::sleep(wait);
        a.timeout -= wait;
    }
    a
}

/// Sends one attempt, begun at `sent_at`; its outcome comes back on a reader thread (or the timer's, or
/// a writer thread's when a write fails).
fn launch(core: &Arc<Core>, send: AsyncSend, a: Attempt, sent_at: Instant) {
    let Attempt {
        routing,
        request,
        timeout,
    } = a;
    let c = core.clone();
    let at = routing.clone();
    core.remoting().invoke_async_callback(
        routing.broker_addr(),
        request,
        timeout,
        move |outcome| {
            let mut send = send;
            let now = Instant::now();
            send.job.on_response(&c, &at, (sent_at, now), outcome);
            if send.job.is_over() {
                step(&c, send, Thread::NonBlocking, now);
            } else {
                // A retry may need a route fetch or a connect: never on a reader thread.
                hand_off(&c, send, |c, send| {
                    step(c, send, Thread::Worker, Instant::now())
                });
            }
        },
    );
}
