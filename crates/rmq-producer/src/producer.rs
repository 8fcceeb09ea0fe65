//! [`Producer`]: the handle users hold, its lifecycle (start, shutdown, drop), and the public send API.
//! Each send builds a job (`send.rs`) and hands it to a driver (`sync_send.rs`, `async_send.rs`).

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rmq_protocol::{Message, TopicRouteData};
use rmq_remoting::Completion;
use rmq_routing::PublishQueue;
use tracing::warn;

use crate::async_send::{self, Room, SendFuture};
use crate::config::ProducerConfig;
use crate::core::Core;
use crate::error::ProducerError;
use crate::future::Pending;
use crate::inflight::PendingSend;
use crate::machine::Policy;
use crate::outcome::{self, Outcome};
use crate::reply::ReplyFuture;
use crate::result::{MessageQueue, SendResult};
use crate::send::{Mode, SendJob, Target, refused, target_for};
use crate::stats::ProducerStats;
use crate::sync_send;
use crate::trace::{SendTrace, Tracer};

/// A RocketMQ producer. Cheap to clone and share across threads; every method takes `&self`. Dropping the
/// last clone shuts it down as [`Producer::shutdown`] does.
///
/// ```no_run
/// use rmq_producer::{Producer, ProducerConfig};
/// use rmq_protocol::Message;
///
/// let producer = Producer::new(ProducerConfig::new("my_group", "127.0.0.1:9876"))?;
/// producer.start()?;
/// let result = producer.send_sync(&Message::new("TopicTest", "hello"))?;
/// println!("stored as {} in queue {}", result.msg_id, result.queue_id);
/// producer.shutdown();
/// # Ok::<(), rmq_producer::ProducerError>(())
/// ```
#[derive(Clone)]
pub struct Producer {
    handle: Arc<Handle>,
}

/// Owned only by [`Producer`] clones: when the last one goes, the producer shuts down.
struct Handle {
    core: Arc<Core>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        shutdown(&self.core, self.core.config().send_msg_timeout);
    }
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let core = self.core();
        f.debug_struct("Producer")
            .field("group", &core.config().producer_group)
            .field("client_id", &core.client_id())
            .field("state", &core.state_name())
            .finish()
    }
}

/// Stops `core`: see [`Producer::shutdown_timeout`].
fn shutdown(core: &Arc<Core>, drain: Duration) {
    // The last trace records go out while the producer still sends (they drain with the rest below).
    if core.is_running()
        && let Some(t) = core.tracer()
    {
        t.stop();
    }
    if !core.mark_stopped() {
        // Another call is shutting down (perhaps on a thread of its own, started from a callback): wait
        // for it to finish, unless this call comes from a callback of a send that is still open.
        if outcome::callbacks_running_here() == 0 {
            let bound = drain
                .saturating_add(core.config().mq_client_api_timeout)
                .saturating_add(Duration::from_secs(5));
            core.wait_stopped(rmq_remoting::deadline_after(Instant::now(), bound));
        }
        return;
    }
    // Run from a send callback (the last handle dropped there): the callback's own send stays open until
    // it returns, and on a reader thread the unregister's answer could not be read until then. The rest
    // runs on a thread of its own; new sends are refused from here on already.
    if outcome::callbacks_running_here() > 0 {
        let c = core.clone();
        let spawned = std::thread::Builder::new()
            .name("rmq-shutdown".into())
            .spawn(move || stop(&c, drain, 0));
        if spawned.is_ok() {
            return;
        }
    }
    stop(core, drain, outcome::callbacks_running_here());
}

/// The stopping part of [`shutdown`]: drains the asynchronous sends (all but `own`, those whose callbacks
/// run on this thread), unregisters, fails what is left, joins the workers.
fn stop(core: &Arc<Core>, drain: Duration, own: usize) {
    // Messages waiting in auto-batch gatherings go now, and drain with the rest.
    crate::auto_batch::send_all(core);
    let left = core
        .in_flight()
        .wait_idle_but(own, rmq_remoting::deadline_after(Instant::now(), drain));
    if left.len() > own {
        warn!(
            left = left.len(),
            "asynchronous sends still open at the shutdown deadline; failing them"
        );
    }
    // From here on waits for room, backoff waits and retries end with a shutdown error.
    core.close_async();
    core.unregister_all();
    // Fails whatever is still pending; their callbacks complete the open sends with errors.
    core.remoting().shutdown();
    core.workers().stop_and_join();
    core.set_stopped();
}

impl Producer {
    /// A producer with `config`, validated here (it cannot change afterwards). Nothing connects yet.
    pub fn new(config: ProducerConfig) -> Result<Producer, ProducerError> {
        Ok(Producer {
            handle: Arc::new(Handle {
                core: Arc::new(Core::new(config)?),
            }),
        })
    }

    pub(crate) fn core(&self) -> &Arc<Core> {
        &self.handle.core
    }

    /// The client id brokers know this producer by.
    pub fn client_id(&self) -> &str {
        self.core().client_id()
    }

    /// The configuration.
    pub fn config(&self) -> &ProducerConfig {
        self.core().config()
    }

    /// Starts the background threads (route refresh, heartbeats; the pool and timer of asynchronous
    /// sends start on first use). Idempotent while
    /// running; a producer that was shut down cannot start again.
    pub fn start(&self) -> Result<(), ProducerError> {
        let core = self.core();
        if !core.mark_running()? {
            return Ok(());
        }
        let c = core.config();
        core.open_async();
        if let Some(t) = core.tracer() {
            let weak = Arc::downgrade(core);
            let send: SendTrace = Box::new(move |m, done| match weak.upgrade() {
                Some(c) => {
                    let timeout = c.config().send_msg_timeout;
                    crate::auto_batch::start_callback(
                        &c,
                        &m,
                        timeout,
                        Room::Fail,
                        Box::new(move |r| done(r.is_ok())),
                    );
                }
                None => done(false),
            });
            t.start(send).map_err(|e| ProducerError::Config {
                field: "trace",
                reason: format!("cannot start the trace thread: {e}"),
            })?;
        }
        let weak = Arc::downgrade(core);
        core.workers().spawn_periodic(
            "rmq-route-refresh",
            weak.clone(),
            c.poll_name_server_interval,
            false,
            Core::refresh_routes,
        )?;
        // Brokers named by a route are greeted when the route is fetched; this keeps them informed.
        core.workers().spawn_periodic(
            "rmq-heartbeat",
            weak,
            c.heartbeat_broker_interval,
            false,
            |core: &Core| {
                core.heartbeat_round();
            },
        )
    }

    /// Whether the producer is running.
    pub fn is_running(&self) -> bool {
        self.core().is_running()
    }

    /// [`Producer::shutdown_timeout`] with `send_msg_timeout` for the asynchronous sends in flight.
    pub fn shutdown(&self) {
        self.shutdown_timeout(self.config().send_msg_timeout);
    }

    /// Stops accepting sends, lets asynchronous sends in flight finish (retries included) for up to
    /// `drain`, completes every one still open with an error (none is dropped silently), tells every
    /// broker the client leaves (UNREGISTER_CLIENT), closes the connections and joins the background
    /// threads (the pool and timer threads of asynchronous sends end on their own). Idempotent. Called from a send callback (or by dropping the last handle there), it
    /// refuses new sends at once and does the rest on a thread of its own, so the callback returns.
    pub fn shutdown_timeout(&self, drain: Duration) {
        shutdown(self.core(), drain);
    }

    /// Waits until every asynchronous send accepted so far has delivered its outcome, or until
    /// `deadline` (messages waiting in auto-batch gatherings are sent at once). Returns the sends still
    /// open then (empty: all delivered); they go on and still deliver their outcomes.
    pub fn flush(&self, deadline: Instant) -> Vec<PendingSend> {
        crate::auto_batch::send_all(self.core());
        self.core().in_flight().wait_idle(deadline)
    }

    /// [`Producer::flush`] as a future: complete when every asynchronous send accepted so far has
    /// delivered its outcome, or at `deadline`, with the sends still open then. Never blocks.
    pub fn flush_async(&self, deadline: Instant) -> Pending<Vec<PendingSend>> {
        let core = self.core();
        crate::auto_batch::send_all(core);
        let (future, cell) = Pending::new();
        let weak = Arc::downgrade(core);
        // Whichever comes first completes it: the table going idle, or the deadline on the timer.
        let done = Arc::new(Completion::with_callback("flush", move |()| {
            let open = weak.upgrade().map(|c| c.in_flight().pending());
            cell.complete(Ok(open.unwrap_or_default()), || {});
        }));
        core.in_flight().when_idle(done.clone());
        core.timer().at(
            deadline,
            Box::new(move |_| {
                done.complete((), || {});
            }),
        );
        future
    }

    /// Sends heartbeats to every master broker of the cached routes now, concurrently. Returns
    /// `(succeeded, failed)`.
    pub fn send_heartbeat_to_all_broker(&self) -> (usize, usize) {
        self.core().heartbeat_round()
    }

    /// A job for `message` accepted now ([`SendJob::accept`]), sent to `target` as `mode` under
    /// `policy` within `timeout`.
    fn job<'a>(
        &self,
        message: &'a Message,
        target: Target<'a>,
        mode: Mode,
        policy: Policy,
        timeout: Duration,
    ) -> Result<SendJob<'a>, ProducerError> {
        SendJob::accept(
            self.core(),
            |r| r.prepare(message),
            Cow::Borrowed(message),
            target,
            mode,
            policy,
            timeout,
        )
    }

    /// The target of a send routed by strategy (message hash when it has a sharding key).
    fn by_strategy(&self, message: &Message) -> Target<'static> {
        target_for(message, self.config().routing_strategy)
    }

    /// Sends `message` and waits until it is stored, retrying on another broker (up to `retry_times`
    /// more attempts) for connection errors, timeouts and the broker codes Java retries on, all within
    /// `send_msg_timeout` (route fetch and connect included). Each attempt gets an equal share of the
    /// time left (at least 100 ms), so a slow first attempt cannot starve the retries. The message is
    /// not modified; its UNIQ_KEY is in the result.
    pub fn send_sync(&self, message: &Message) -> Result<SendResult, ProducerError> {
        self.send_sync_timeout(message, self.config().send_msg_timeout)
    }

    /// [`Producer::send_sync`] within `timeout` instead of `send_msg_timeout`.
    pub fn send_sync_timeout(
        &self,
        message: &Message,
        timeout: Duration,
    ) -> Result<SendResult, ProducerError> {
        let job = self.job(
            message,
            self.by_strategy(message),
            Mode::Answered,
            crate::send::retrying(self.config()),
            timeout,
        )?;
        sync_send::run_answered(self.core(), job)
    }

    /// How a future-returning send waits for room: in its queue, or not at all.
    fn queue_or_fail(&self) -> Room {
        Room::when_full(self.config(), Room::Queue)
    }

    /// Sends `message` asynchronously with the same attempts, retries and deadline as
    /// [`Producer::send_sync`]; `.await` the future on any executor or [`Pending::wait`] for it.
    /// **Never blocks the calling thread**: a route fetch or a connect runs on the producer's pool, a
    /// reconnect backoff is waited out on its timer, and while `async_send_semaphore` sends are in
    /// flight the send waits in a queue (first come, first served) inside the future, up to its
    /// deadline, then ends with `Overloaded` (at once when `async_send_block` is false). With
    /// [`ProducerConfig::auto_batch`] it may wait up to `auto_batch_linger` to share a batch request
    /// with other sends; the future still ends with this message's own result.
    pub fn send_async(&self, message: &Message) -> SendFuture {
        self.send_async_timeout(message, self.config().send_msg_timeout)
    }

    /// [`Producer::send_async`] within `timeout` instead of `send_msg_timeout`.
    pub fn send_async_timeout(&self, message: &Message, timeout: Duration) -> SendFuture {
        let room = self.queue_or_fail();
        crate::auto_batch::start_future(self.core(), message, timeout, room)
    }

    /// [`Producer::send_async`] that does not wait for room: when `async_send_semaphore` sends are in
    /// flight the future is already complete with [`ProducerError::Overloaded`].
    pub fn try_send_async(&self, message: &Message) -> SendFuture {
        let timeout = self.config().send_msg_timeout;
        crate::auto_batch::start_future(self.core(), message, timeout, Room::Fail)
    }

    /// [`Producer::send_async`] with a callback run once with the outcome (on a connection's reader
    /// thread, a producer pool or timer thread, or this thread: it must not block). For threads
    /// that send in a loop: while `async_send_semaphore` sends are in flight it **blocks** this thread
    /// (in the same first-come queue as the futures) up to `send_msg_timeout`, which keeps a loop from
    /// queueing without bound; on an executor use [`Producer::send_async`] and `.await` instead.
    pub fn send_async_callback(
        &self,
        message: &Message,
        callback: impl FnOnce(Result<SendResult, ProducerError>) + Send + 'static,
    ) {
        let room = Room::when_full(self.config(), Room::Block);
        let timeout = self.config().send_msg_timeout;
        crate::auto_batch::start_callback(self.core(), message, timeout, room, Box::new(callback));
    }

    /// Sends `messages` (one topic, same `WAIT`, no delay, not a retry topic) as batches: at most
    /// `batch_size` messages each, split further so no batch body exceeds `max_message_size`. Each batch is
    /// sent like [`Producer::send_sync`] (retries inside one deadline per batch). Returns one result per
    /// batch, in order; `msg_id` lists the UNIQ_KEYs of its messages, comma-separated. On an error, the
    /// batches before it were stored and those after it were not sent.
    pub fn send_batch(&self, messages: &[Message]) -> Result<Vec<SendResult>, ProducerError> {
        let core = self.core();
        let chunks = crate::batch::split(core, messages)?;
        let mut results = Vec::with_capacity(chunks.len());
        for chunk in chunks {
            let job = crate::batch::job(core, &messages[chunk])?;
            results.push(sync_send::run_answered(core, job)?);
        }
        Ok(results)
    }

    /// [`Producer::send_batch`] as a future that never blocks: the batches go one after another as
    /// asynchronous sends (each waits for room like [`Producer::send_async`]); on an error the batches
    /// before it were stored and those after it are not sent.
    pub fn send_batch_async(&self, messages: &[Message]) -> Pending<Vec<SendResult>> {
        crate::batch::send_async(self.core(), messages, self.queue_or_fail())
    }
    /// Makes sure `topic`'s route is cached (see [`Core::ensure_route`]).
    pub(crate) fn ensure_route(&self, topic: &str) -> Result<(), ProducerError> {
        self.core().ensure_route(topic)
    }

    /// The route of `topic` as the name server gave it (fetched if needed; broker addresses after
    /// `broker_addr_override`), and whether it is the TBW102 route standing in for a topic the broker
    /// will create on the first send.
    pub fn topic_route(&self, topic: &str) -> Result<(Arc<TopicRouteData>, bool), ProducerError> {
        let topic = &*self.config().wire_name(topic);
        self.ensure_route(topic)?;
        let mapping = self.core().router().mapping();
        let route = mapping
            .route(topic)
            .ok_or_else(|| ProducerError::RouteNotFound {
                topic: topic.to_owned(),
                reason: "route expired".into(),
            })?;
        let derived = mapping
            .with_available_queues(topic, Instant::now(), |i| i.from_default_topic)
            .unwrap_or(false);
        Ok((route, derived))
    }

    /// The queues `topic` can be sent to (fetching its route if needed), for [`Producer::send_to_queue`].
    pub fn fetch_publish_queues(&self, topic: &str) -> Result<Vec<MessageQueue>, ProducerError> {
        let wire = self.config().wire_name(topic);
        self.ensure_route(&wire)?;
        let queues =
            self.core()
                .router()
                .mapping()
                .with_available_queues(&wire, Instant::now(), |info| {
                    info.queues
                        .iter()
                        .map(|q| MessageQueue {
                            topic: topic.to_owned(),
                            broker_name: q.broker_name.to_string(),
                            queue_id: q.queue_id,
                        })
                        .collect()
                });
        Ok(queues.unwrap_or_default())
    }

    /// One attempt to the queue `select` picks, within `send_msg_timeout` (route fetch included).
    fn send_ordered(
        &self,
        message: &Message,
        select: &(dyn Fn(&[PublishQueue], &Message) -> Option<usize> + Sync),
    ) -> Result<SendResult, ProducerError> {
        let selector =
            |qs: &[PublishQueue], m: &Message, _: Option<&(dyn std::any::Any + Send + Sync)>| {
                select(qs, m)
            };
        let job = self.job(
            message,
            Target::Selector(&selector),
            Mode::Answered,
            Policy::once(),
            self.config().send_msg_timeout,
        )?;
        sync_send::run_answered(self.core(), job)
    }

    /// Sends `message` to `queue`, once (no move to another broker, as Java's `send(msg, mq)`). The
    /// queue must be of the message's topic.
    pub fn send_to_queue(
        &self,
        message: &Message,
        queue: &MessageQueue,
    ) -> Result<SendResult, ProducerError> {
        self.check_queue(message, queue)?;
        self.send_ordered(message, &|qs, _| position_of(qs, queue))
    }

    /// Refuses (and counts) a send to a queue of another topic.
    fn check_queue(&self, message: &Message, queue: &MessageQueue) -> Result<(), ProducerError> {
        if queue.topic != message.topic {
            let e = ProducerError::QueueTopicMismatch {
                message_topic: message.topic.clone(),
                queue_topic: queue.topic.clone(),
            };
            return Err(refused(self.core(), Mode::Answered, e));
        }
        Ok(())
    }

    /// [`Producer::send_to_queue`] as a future that never blocks (waiting for room as
    /// [`Producer::send_async`] does).
    pub fn send_to_queue_async(&self, message: &Message, queue: &MessageQueue) -> SendFuture {
        if let Err(e) = self.check_queue(message, queue) {
            return Pending::ready(Err(e));
        }
        let queue = queue.clone();
        self.send_with_selector_async(message, move |qs, _| position_of(qs, &queue))
    }

    /// [`Producer::send_with_selector`] as a future that never blocks: `selector` (owning what it
    /// needs of its argument) picks the queue, once the route is known; the send is made once.
    pub fn send_with_selector_async(
        &self,
        message: &Message,
        selector: impl Fn(&[PublishQueue], &Message) -> Option<usize> + Send + Sync + 'static,
    ) -> SendFuture {
        let core = self.core();
        let (future, cell) = Pending::new();
        let target = Target::Owned(Box::new(
            move |qs: &[PublishQueue],
                  m: &Message,
                  _: Option<&(dyn std::any::Any + Send + Sync)>| { selector(qs, m) },
        ));
        let job = SendJob::accept(
            core,
            |r| r.prepare(message),
            async_send::routing_key(message, None),
            target,
            Mode::Answered,
            Policy::once(),
            self.config().send_msg_timeout,
        );
        match job {
            Ok(job) => async_send::begin(core, job, Outcome::Answered(cell), self.queue_or_fail()),
            Err(e) => outcome::deliver(core.counters(), &cell, Err(e), false),
        }
        future
    }

    /// Sends `message` to the queue `selector` picks with `arg` (Java's `send(msg, selector, arg)`), once:
    /// ordered sends never move to another queue. `selector` returns an index into the queues, or `None`
    /// to refuse the send.
    pub fn send_with_selector<A: ?Sized + Sync>(
        &self,
        message: &Message,
        selector: impl Fn(&[PublishQueue], &Message, &A) -> Option<usize> + Sync,
        arg: &A,
    ) -> Result<SendResult, ProducerError> {
        self.send_ordered(message, &|qs, m| selector(qs, m, arg))
    }

    /// Sends `message` once without waiting for the broker (oneway), within `send_msg_timeout` (route
    /// fetch and connect included). Returns when the frame is written; nothing tells whether the broker
    /// stored it. A failure to write counts against the broker's health.
    pub fn send_oneway(&self, message: &Message) -> Result<(), ProducerError> {
        let job = self.job(
            message,
            self.by_strategy(message),
            Mode::Oneway,
            Policy::once(),
            self.config().send_msg_timeout,
        )?;
        sync_send::run(self.core(), job).map(drop)
    }

    /// [`Producer::send_oneway`] as a future that never blocks: complete when the frame is written
    /// (waiting for room, a route and a connection as [`Producer::send_async`] does).
    pub fn send_oneway_async(&self, message: &Message) -> Pending<()> {
        let (future, cell) = Pending::new();
        let timeout = self.config().send_msg_timeout;
        let room = self.queue_or_fail();
        crate::auto_batch::start(
            self.core(),
            message,
            timeout,
            Mode::Oneway,
            room,
            Outcome::Oneway(cell),
        );
        future
    }

    /// Sends `message` as a request and waits for its reply (request-reply): the message gets
    /// `CORRELATION_ID`, `REPLY_TO_CLIENT` (this producer's client id) and `TTL` (`timeout` in ms); a
    /// consumer answers it with a reply message, which the broker pushes to this producer. No reply within
    /// `timeout` (send included) is [`ProducerError::RequestTimeout`]; a reply arriving later is dropped
    /// and counted (`ProducerStats::late_replies`).
    pub fn request(&self, message: &Message, timeout: Duration) -> Result<Message, ProducerError> {
        self.request_async(message, timeout).wait()
    }

    /// [`Producer::request`] as a [`ReplyFuture`] (wait on it or poll it from any executor). The request
    /// is sent as [`Producer::send_async`] sends: no blocking network I/O on this thread.
    pub fn request_async(&self, message: &Message, timeout: Duration) -> ReplyFuture {
        use rmq_protocol::message::property;
        let core = self.core();
        if timeout.is_zero() {
            return ReplyFuture::done(Err(ProducerError::Config {
                field: "request timeout",
                reason: "must be more than zero".into(),
            }));
        }
        if let Err(e) = core.check_running() {
            return ReplyFuture::done(Err(e));
        }
        if core.routes().behind_proxy() {
            return ReplyFuture::done(Err(not_through_proxy()));
        }
        let id = core.requests().correlation_id();
        let mut request = message.clone();
        request.properties.insert(property::CORRELATION_ID, &id);
        request
            .properties
            .insert(property::MESSAGE_REPLY_TO_CLIENT, core.client_id());
        request.properties.insert_int(
            property::MESSAGE_TTL,
            i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX),
        );
        let reply = core.replies().wait_for(&id, timeout);
        let replies = Arc::downgrade(core.replies());
        let expiring = id.clone();
        core.timer().at(
            reply.deadline(),
            Box::new(move |closed| match (replies.upgrade(), closed.0) {
                (Some(r), false) => r.expire(&expiring),
                (Some(r), true) => r.fail(&expiring, ProducerError::State("shut down")),
                (None, _) => {}
            }),
        );
        let replies = Arc::downgrade(core.replies());
        let weak_core = Arc::downgrade(core);
        let room = self.queue_or_fail();
        crate::auto_batch::start_callback(
            core,
            &request,
            timeout,
            room,
            Box::new(move |r: Result<SendResult, ProducerError>| {
                let Some(replies) = replies.upgrade() else {
                    return;
                };
                match r {
                    Err(e) => replies.fail(&id, e),
                    // The first route showed a proxy only now: the request is stored, its reply
                    // will never come; say so instead of waiting out the timeout.
                    Ok(_)
                        if weak_core
                            .upgrade()
                            .is_some_and(|c| c.routes().behind_proxy()) =>
                    {
                        replies.fail(&id, not_through_proxy())
                    }
                    Ok(_) => {}
                }
            }),
        );
        reply
    }

    /// Withdraws a timer message before its time (RECALL_MESSAGE, Apache RocketMQ 5.3.2+ with
    /// `recallMessageEnable=true`): `handle` is the [`SendResult::recall_handle`] of its send, `topic`
    /// its topic. Returns the recalled message's UNIQ_KEY. A broker that does not know recall answers
    /// REQUEST_CODE_NOT_SUPPORTED (4.x) and one with recall off NO_PERMISSION; both come back as
    /// [`ProducerError::Broker`]. Recalling twice succeeds twice.
    pub fn recall(&self, topic: &str, handle: &str) -> Result<String, ProducerError> {
        crate::recall::recall(self.core(), topic, handle)
    }

    /// [`Producer::recall`] as a future that never blocks: the handle is checked here; the request goes
    /// out at once when the broker's route and connection are there, else from the producer's pool.
    pub fn recall_async(&self, topic: &str, handle: &str) -> Pending<String> {
        crate::recall::recall_async(self.core(), topic, handle)
    }

    /// Puts `broker` (a broker name) back in rotation as HEALTHY now, clearing its failures, its breaker and
    /// any latency isolation. Health also recovers by itself: see [`ProducerConfig::health`].
    pub fn force_recover(&self, broker: &str) {
        self.core().router().health().force_recover(broker);
    }

    /// A snapshot of the producer's counters, routes and broker health.
    pub fn get_stats(&self) -> ProducerStats {
        let core = self.core();
        core.counters().snapshot(
            core.is_running(),
            core.in_flight().len(),
            core.replies().counts(),
            core.tracer().map_or((0, 0), Tracer::counts),
            core.router(),
        )
    }
}

/// The index of `queue` among `queues` (a send to one queue).
fn position_of(queues: &[PublishQueue], queue: &MessageQueue) -> Option<usize> {
    queues
        .iter()
        .position(|q| *q.broker_name == *queue.broker_name && q.queue_id == queue.queue_id)
}

/// Request-reply through a RocketMQ 5 proxy: it relays the request, never the reply.
fn not_through_proxy() -> ProducerError {
    ProducerError::NotThroughProxy {
        feature: "request-reply",
        advice: "the proxy relays the request but not the reply the broker pushes back (PUSH_REPLY_MESSAGE_TO_CLIENT); give the producer the name servers (and reach the brokers) directly, or use RocketMQ's gRPC client",
    }
}
