//! The asynchronous driver. Nothing here blocks the thread it runs on, except where a caller asked to
//! ([`Room::Block`]): a send's steps run on the caller's thread while they cannot block (a route in the
//! cache, a live connection); a send that finds the in-flight bound reached waits in its queue (first
//! come, first served) and is carried on by the thread that frees a place; route fetches and connects
//! run on the producer's pool; the rest of a reconnect backoff is waited out on its timer. Each send
//! delivers its outcome exactly once, to a [`Pending`] or a callback.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rmq_protocol::Message;
use rmq_routing::RoutingStrategy;

use crate::core::Core;
use crate::error::ProducerError;
use crate::future::Pending;
use crate::inflight::{Open, Ticket};
use crate::machine::Receipt;
use crate::outcome::Outcome;
use crate::result::SendResult;
use crate::send::{Attempt, Mode, Plan, SendJob};
use crate::workers::Closed;

/// A callback run once with a send's outcome. It runs on a connection's reader thread (or its writer
/// thread, or the remoting timer, when the connection fails or the attempt times out), a producer pool
/// or timer thread, the sender's thread, or whichever thread freed the place a waiting send took: it
/// must not block.
pub type SendCallback = Box<dyn FnOnce(Result<SendResult, ProducerError>) + Send + 'static>;

/// The pending outcome of [`crate::Producer::send_async`].
pub type SendFuture = Pending<SendResult>;

/// What a send does when the in-flight bound (`async_send_semaphore`) is reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Room {
    /// Fail at once with `Overloaded`.
    Fail,
    /// Wait in the queue without blocking anyone; the send goes on when a place frees up.
    Queue,
    /// Block the calling thread in the queue (callers on threads of their own, for backpressure).
    Block,
}

impl Room {
    /// `wait` (`Queue` or `Block`) when `async_send_block` is set, else `Fail`.
    pub(crate) fn when_full(config: &crate::ProducerConfig, wait: Room) -> Room {
        if config.async_send_block {
            wait
        } else {
            Room::Fail
        }
    }
}

/// Who a send's end is delivered to.
pub(crate) enum Ends {
    /// One caller, holding one place in the in-flight table.
    One {
        /// Where its outcome goes.
        outcome: Outcome,
        /// Its place, given back once the outcome is delivered.
        ticket: Ticket,
    },
    /// Whoever owns the send settles its end (an auto-batch: each of its callers holds its own place).
    Settle(Settle),
}

/// What settles the end of a send whose callers are its owner's to answer (an auto-batch's): the job
/// (to finish it), its end, and when.
pub(crate) type Settle =
    Box<dyn FnOnce(&Arc<Core>, SendJob<'static>, Result<Receipt, ProducerError>, Instant) + Send>;

/// One asynchronous send in progress.
pub(crate) struct AsyncSend {
    /// Boxed: a job is over a kilobyte, and a send moves through several closures.
    job: Box<SendJob<'static>>,
    ends: Ends,
}

impl AsyncSend {
    /// `job`, ending to `ends`.
    pub(crate) fn new(job: SendJob<'static>, ends: Ends) -> AsyncSend {
        AsyncSend {
            job: Box::new(job),
            ends,
        }
    }

    /// Carries the send on from the thread it is on, which must not block.
    pub(crate) fn go(self, core: &Arc<Core>) {
        step(core, self, Thread::NonBlocking, Instant::now());
    }
}

/// Takes a place in the in-flight table for a send of `open` as `room` says (blocking the caller only
/// for [`Room::Block`]); `go` runs once with the place or the error that ends the wait.
pub(crate) fn take_place(
    core: &Core,
    open: Open,
    deadline: Instant,
    room: Room,
    go: impl FnOnce(Result<Ticket, ProducerError>) + Send + 'static,
) {
    let in_flight = core.in_flight();
    match room {
        Room::Block => go(in_flight.enter_blocking(open, deadline)),
        Room::Queue => drop(in_flight.enter(open, Some(deadline), go)),
        Room::Fail => drop(in_flight.enter(open, None, go)),
    }
}

/// Starts `job` as an asynchronous send delivering to `outcome`: takes its place in the in-flight table as `room` says, then carries it on.
pub(crate) fn begin(core: &Arc<Core>, job: SendJob<'static>, outcome: Outcome, room: Room) {
    let (started, deadline) = (job.started(), job.deadline());
    let open = Open::new(job.uniq_key(), job.user_topic(), started);
    let mode = job.mode();
    let job = Box::new(job);
    let c = core.clone();
    let go = move |r: Result<Ticket, ProducerError>| match r {
        Ok(ticket) => {
            let now = ticket.resumed(started);
            let send = AsyncSend {
                job,
                ends: Ends::One { outcome, ticket },
            };
            step(&c, send, Thread::NonBlocking, now);
        }
        Err(e) => outcome.deliver(c.counters(), Err(crate::send::refused(&c, mode, e)), false),
    };
    take_place(core, open, deadline, room, go);
}

/// Hands `send` to the pool, which runs `then` with it; when the pool is closed (shutdown), the send
/// ends at once with a shutdown error instead.
fn hand_off(
    core: &Arc<Core>,
    send: AsyncSend,
    then: impl FnOnce(&Arc<Core>, AsyncSend) + Send + 'static,
) {
    let c = core.clone();
    core.pool().push(Box::new(move |closed: Closed| {
        if closed.0 {
            shut(&c, send);
        } else {
            then(&c, send);
        }
    }));
}

/// Ends `send` with a shutdown error (its pool or timer closed).
fn shut(core: &Arc<Core>, mut send: AsyncSend) {
    send.job.abort(ProducerError::State("shut down"));
    step(core, send, Thread::NonBlocking, Instant::now());
}

/// Which thread runs a step: what the caller's, reader and timer threads may not do goes to the pool.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Thread {
    /// The sender's thread, a reader or the timer: nothing that blocks.
    NonBlocking,
    /// A pool thread: may fetch routes and connect.
    Pool,
}

/// What an asynchronous send keeps for routing its attempts: the message itself only when routing
/// reads it (message hash, a selector); the other strategies never look at it, so no copy is made.
pub(crate) fn routing_key(
    message: &Message,
    strategy: Option<RoutingStrategy>,
) -> Cow<'static, Message> {
    match strategy {
        Some(RoutingStrategy::RoundRobin | RoutingStrategy::Random) => unread_key(),
        _ => Cow::Owned(message.clone()),
    }
}

/// The routing key of a send whose routing reads nothing of its message (round robin, random): one
/// shared empty message.
pub(crate) fn unread_key() -> Cow<'static, Message> {
    static UNREAD: std::sync::OnceLock<Message> = std::sync::OnceLock::new();
    Cow::Borrowed(UNREAD.get_or_init(Message::default))
}

/// Carries `send` on as far as `thread` may from `now`, then hands it to a connection, the pool or the
/// timer.
fn step(core: &Arc<Core>, mut send: AsyncSend, thread: Thread, now: Instant) {
    let on_pool = thread == Thread::Pool;
    match send.job.plan(core, now) {
        Plan::Fetch(fetch) if on_pool => {
            send.job.fetch_route(core, fetch);
            step(core, send, thread, Instant::now());
        }
        Plan::Fetch(fetch) => hand_off(core, send, move |c, mut send| {
            send.job.fetch_route(c, fetch);
            step(c, send, Thread::Pool, Instant::now());
        }),
        Plan::Attempt(mut a) if !core.remoting().is_connected(a.routing.broker_addr()) => {
            // The one backoff rule (`backoff_wait`): wait on the timer, never on a thread.
            match core
                .remoting()
                .backoff_wait(a.routing.broker_addr(), a.timeout)
            {
                Some(wait) => {
                    a.timeout -= wait;
                    let c = core.clone();
                    let at = rmq_remoting::deadline_after(Instant::now(), wait);
                    core.timer().at(
                        at,
                        Box::new(move |closed: Closed| {
                            if closed.0 {
                                shut(&c, send);
                            } else {
                                connect_and_launch(&c, send, a);
                            }
                        }),
                    );
                }
                None if on_pool => launch(core, send, a, Instant::now(), thread),
                None => connect_and_launch(core, send, a),
            }
        }
        Plan::Attempt(a) => launch(core, send, a, now, thread),
        Plan::Done(r) => match send.ends {
            Ends::One { outcome, ticket } => {
                let r = (*send.job).finish(core, r, now);
                // The outcome is delivered before the place is given back, so a flush that returns
                // empty means every outcome has been delivered.
                outcome.deliver(core.counters(), r, true);
                core.in_flight().release(ticket);
            }
            Ends::Settle(settle) => settle(core, *send.job, r, now),
        },
    }
}

/// Launches `a` from the pool, which may connect.
fn connect_and_launch(core: &Arc<Core>, send: AsyncSend, a: Attempt) {
    hand_off(core, send, move |c, send| {
        launch(c, send, a, Instant::now(), Thread::Pool);
    });
}

/// Sends one attempt, begun at `sent_at`; an answered attempt's outcome comes back on a reader thread
/// (or the remoting timer's, or a writer thread's when a write fails); a oneway attempt is over when
/// its frame is written. Off the pool it never connects: should the connection have gone since the
/// check, the attempt goes to the pool instead.
fn launch(core: &Arc<Core>, mut send: AsyncSend, a: Attempt, sent_at: Instant, thread: Thread) {
    let Attempt {
        routing,
        request,
        timeout,
    } = a;
    let remoting = core.remoting();
    let addr = routing.broker_addr();
    let unsent = if send.job.mode() == Mode::Oneway {
        let written = if thread == Thread::Pool {
            Ok(remoting.invoke_oneway(addr, request, timeout))
        } else {
            remoting.invoke_oneway_connected(addr, request, timeout)
        };
        match written {
            Ok(r) => {
                let now = Instant::now();
                send.job.on_written(core, &routing, (sent_at, now), r);
                return after_attempt(core, send, now);
            }
            Err(request) => (request, send),
        }
    } else {
        let (c, at) = (core.clone(), routing.clone());
        let on_answer = move |send, outcome| answered(&c, send, &at, sent_at, outcome);
        if thread == Thread::Pool {
            return remoting.invoke_async_callback(addr, request, timeout, move |outcome| {
                on_answer(send, outcome);
            });
        }
        match remoting.invoke_async_callback_connected(addr, request, timeout, send, on_answer) {
            Ok(()) => return,
            Err(unsent) => unsent,
        }
    };
    // The connection went away since the check: the attempt goes to the pool, which may connect.
    let (request, send) = unsent;
    let a = Attempt {
        routing,
        request: *request,
        timeout,
    };
    connect_and_launch(core, send, a);
}

/// The broker answered an attempt (or it failed): feeds the send and carries it on.
fn answered(
    core: &Arc<Core>,
    mut send: AsyncSend,
    at: &rmq_routing::RoutingResult,
    sent_at: Instant,
    outcome: Result<rmq_protocol::RemotingCommand, rmq_remoting::RemotingError>,
) {
    let now = Instant::now();
    send.job.on_response(core, at, (sent_at, now), outcome);
    after_attempt(core, send, now);
}

/// After an attempt: the send ends here, or its retry (which may need a route fetch or a connect)
/// goes on from the pool, never from a reader thread.
fn after_attempt(core: &Arc<Core>, send: AsyncSend, now: Instant) {
    if send.job.is_over() {
        step(core, send, Thread::NonBlocking, now);
    } else {
        hand_off(core, send, |c, send| {
            step(c, send, Thread::Pool, Instant::now())
        });
    }
}

/// Starts an asynchronous send of `message` alone within `timeout` as `mode`, delivering to `outcome`,
/// routed by the producer's strategy (a lite-topic message to its lite topic's queue). Senders go through
/// `auto_batch::start`, which sends here what may not wait for others.
pub(crate) fn start(
    core: &Arc<Core>,
    message: &Message,
    timeout: Duration,
    mode: Mode,
    room: Room,
    outcome: Outcome,
) {
    let target = crate::send::target_for(message, core.config().routing_strategy);
    let strategy = match &target {
        crate::send::Target::Strategy(s) => Some(*s),
        _ => None,
    };
    let job = SendJob::accept(
        core,
        |r| r.prepare(message),
        routing_key(message, strategy),
        target,
        mode,
        crate::send::policy_for(core.config(), mode),
        timeout,
    );
    match job {
        Ok(job) => begin(core, job, outcome, room),
        Err(e) => outcome.deliver(core.counters(), Err(e), false),
    }
}
