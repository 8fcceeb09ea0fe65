//! One send as every driver runs it: the job (the machine, the prepared message, how to route), routing
//! an attempt, fetching a route, feeding an attempt's outcome back (broker health is told here), and the
//! one exit point where the result is built and counted. The drivers (`sync_send`, `async_send`) only
//! decide on which thread each step runs.

use std::borrow::Cow;
use std::time::{Duration, Instant};

use rmq_protocol::{Message, RemotingCommand};
use rmq_remoting::RemotingError;
use rmq_routing::{QueueSelector, RouteError, RoutingResult, RoutingStrategy};

use crate::core::Core;
use crate::error::ProducerError;
use crate::machine::{Health, Policy, Receipt, SendMachine, Step};
use crate::request::{Prepared, send_result};
use crate::result::SendResult;
use crate::trace::{Stored, Tracer, pub_record};

/// How an attempt's queue is chosen.
pub(crate) enum Target<'a> {
    /// By strategy, moving away from the broker of a failed attempt.
    Strategy(RoutingStrategy),
    /// By the caller's selector (ordered sends); never moved.
    Selector(&'a dyn QueueSelector),
    /// By a selector the send owns (asynchronous ordered sends); never moved.
    Owned(Box<dyn QueueSelector>),
}

/// Whether the broker answers attempts or they are oneway writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// The broker answers; the send ends with a [`SendResult`].
    Answered,
    /// Oneway: the send ends when the frame is written.
    Oneway,
}

/// One attempt ready to go.
pub(crate) struct Attempt {
    /// Where it goes.
    pub(crate) routing: RoutingResult,
    /// What is sent.
    pub(crate) request: RemotingCommand,
    /// How long it may take, connecting included.
    pub(crate) timeout: Duration,
}

/// A route fetch a send asks for: within `timeout`; `renew`: after a connection failure (see
/// [`crate::machine::Step::FetchRoute`]).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Fetch {
    timeout: Duration,
    renew: bool,
}

/// What a driver does next with a job.
#[allow(clippy::large_enum_variant)] // lives for one step on the stack; a box would cost an allocation per send
pub(crate) enum Plan {
    /// Fetch (or renew) the route ([`SendJob::fetch_route`]).
    Fetch(Fetch),
    /// Send this attempt, then [`SendJob::on_response`] / [`SendJob::on_written`].
    Attempt(Attempt),
    /// Over: pass this to [`SendJob::finish`].
    Done(Result<Receipt, ProducerError>),
}

/// One send in progress.
pub(crate) struct SendJob<'a> {
    machine: SendMachine,
    prepared: Prepared,
    /// What routing looks at (the sharding key and keys of the caller's message).
    key: Cow<'a, Message>,
    target: Target<'a>,
    mode: Mode,
    /// The address whose connection failed, while a renewal of the route is due or going on.
    failed_addr: Option<String>,
    /// `rmq.send` (debug level): topic, then per attempt broker, queue and attempt, and the outcome.
    span: tracing::Span,
}

/// The routing strategy for `message`: message hash when it has a sharding key (ordering), else `default`.
pub(crate) fn strategy_for(message: &Message, default: RoutingStrategy) -> RoutingStrategy {
    if message.sharding_key().is_some_and(|k| !k.is_empty()) {
        RoutingStrategy::MessageHash
    } else {
        default
    }
}

/// Where a send by strategy goes: a lite-topic message to its lite topic's queue (the broker that owns
/// it; see [`rmq_routing::LiteTopicSelector`]), any other by [`strategy_for`].
pub(crate) fn target_for(message: &Message, default: RoutingStrategy) -> Target<'static> {
    static LITE: rmq_routing::LiteTopicSelector = rmq_routing::LiteTopicSelector;
    if message.lite_topic().is_some() {
        Target::Selector(&LITE)
    } else {
        Target::Strategy(strategy_for(message, default))
    }
}

/// The policy of sends that retry on another broker (sync, async, batch) under `config`.
pub(crate) fn retrying(config: &crate::ProducerConfig) -> Policy {
    Policy::retrying(
        config.retry_times,
        config.retry_another_broker_when_not_store_ok,
    )
}

/// The policy of a send by strategy as `mode`: answered sends retry, oneway sends are made once.
pub(crate) fn policy_for(config: &crate::ProducerConfig, mode: Mode) -> Policy {
    match mode {
        Mode::Answered => retrying(config),
        Mode::Oneway => Policy::once(),
    }
}

impl<'a> SendJob<'a> {
    /// The one way a send begins: accepted now if the producer runs and `prepare` makes its request
    /// (else the refusal is counted and returned), routed as `key` by `target`, as `mode` under
    /// `policy`, to end within `timeout`.
    pub(crate) fn accept(
        core: &Core,
        prepare: impl FnOnce(&crate::request::Requests) -> Result<Prepared, ProducerError>,
        key: Cow<'a, Message>,
        target: Target<'a>,
        mode: Mode,
        policy: Policy,
        timeout: Duration,
    ) -> Result<SendJob<'a>, ProducerError> {
        let started = Instant::now();
        let prepared = core
            .check_running()
            .and_then(|()| prepare(core.requests()))
            .map_err(|e| refused(core, mode, e))?;
        Ok(SendJob::new(
            prepared, key, target, mode, policy, started, timeout,
        ))
    }

    /// A send of `prepared`, routed as `key` by `target`, that started at `started` and must end within
    /// `timeout`. Only for what was accepted already (and its refusals counted): the messages of an
    /// auto-batch, accepted one by one as they came; every other send begins with [`SendJob::accept`].
    pub(crate) fn new(
        prepared: Prepared,
        key: Cow<'a, Message>,
        target: Target<'a>,
        mode: Mode,
        policy: Policy,
        started: Instant,
        timeout: Duration,
    ) -> SendJob<'a> {
        let span = tracing::debug_span!(
            "rmq.send",
            topic = &**prepared.user_topic(),
            broker = tracing::field::Empty,
            queue = tracing::field::Empty,
            attempt = tracing::field::Empty,
            outcome = tracing::field::Empty,
        );
        SendJob {
            machine: SendMachine::new(policy, started, timeout),
            prepared,
            key,
            target,
            mode,
            failed_addr: None,
            span,
        }
    }

    pub(crate) fn mode(&self) -> Mode {
        self.mode
    }

    /// When the send was accepted.
    pub(crate) fn started(&self) -> Instant {
        self.machine.started()
    }

    /// When it must be over.
    pub(crate) fn deadline(&self) -> Instant {
        self.machine.deadline()
    }

    /// The message's UNIQ_KEY (a batch: its keys).
    pub(crate) fn uniq_key(&self) -> &rmq_protocol::MsgId {
        self.prepared.uniq_key()
    }

    /// The topic as the user named it.
    pub(crate) fn user_topic(&self) -> &std::sync::Arc<str> {
        self.prepared.user_topic()
    }

    /// Attempts made so far.
    pub(crate) fn attempts(&self) -> u32 {
        self.machine.made()
    }

    /// Whether the send is over (the next plan is `Done`).
    pub(crate) fn is_over(&self) -> bool {
        self.machine.is_over()
    }

    /// Ends the send with `e` at its next plan (shutdown).
    pub(crate) fn abort(&mut self, e: ProducerError) {
        self.machine.abort(e);
    }

    /// The next thing to do, at `now`.
    pub(crate) fn plan(&mut self, core: &Core, now: Instant) -> Plan {
        loop {
            match self.machine.next(now) {
                Step::FetchRoute { timeout, renew } => {
                    return Plan::Fetch(Fetch { timeout, renew });
                }
                Step::Done(r) => return Plan::Done(r),
                Step::Attempt { timeout } => match self.route(core, now) {
                    Ok(routing) => {
                        if !self.span.is_disabled() {
                            self.span.record("broker", routing.broker_name());
                            self.span.record("queue", routing.queue_id());
                            self.span.record("attempt", self.machine.made() + 1);
                        }
                        let request = core.requests().request(&self.prepared, &routing);
                        return Plan::Attempt(Attempt {
                            routing,
                            request,
                            timeout,
                        });
                    }
                    Err(e) => self.machine.on_unroutable(e),
                },
            }
        }
    }

    fn route(&self, core: &Core, now: Instant) -> Result<RoutingResult, RouteError> {
        let topic = self.prepared.topic();
        match &self.target {
            Target::Strategy(s) => {
                core.router()
                    .route_retry(topic, &self.key, *s, self.machine.avoid(), now)
            }
            Target::Selector(sel) => core
                .router()
                .route_with_selector(topic, &self.key, *sel, None, now),
            Target::Owned(sel) => {
                // It may run on a reader, pool or timer thread: a panic there is caught and counted,
                // and refuses the send as a selector returning no queue does.
                let guarded =
                    |qs: &[rmq_routing::PublishQueue],
                     m: &Message,
                     a: Option<&(dyn std::any::Any + Send + Sync)>| {
                        rmq_remoting::run_user_code("queue selector", || sel.select(qs, m, a))
                            .flatten()
                    };
                core.router()
                    .route_with_selector(topic, &self.key, &guarded, None, now)
            }
        }
    }

    /// Fetches the route (blocking), or renews it after a connection failure to the address the failed
    /// attempt went to; greets brokers it names for the first time.
    pub(crate) fn fetch_route(&mut self, core: &Core, fetch: Fetch) {
        let (topic, deadline) = (
            self.prepared.topic(),
            rmq_remoting::deadline_after(Instant::now(), fetch.timeout),
        );
        let failed = self.failed_addr.take();
        let r = match (fetch.renew, failed) {
            (true, Some(failed)) => {
                core.routes()
                    .renew(core.remoting(), topic, &failed, deadline);
                Ok(())
            }
            (true, None) => Ok(()),
            (false, _) => core.routes().ensure(core.remoting(), topic, deadline),
        };
        if r.is_ok() {
            core.greet_brokers_of(self.prepared.topic());
        }
        self.machine.on_route_fetched(r);
    }

    /// The broker answered (at `now`) the attempt to `routing` sent at `sent_at` (or failed to).
    pub(crate) fn on_response(
        &mut self,
        core: &Core,
        routing: &RoutingResult,
        (sent_at, now): (Instant, Instant),
        outcome: Result<RemotingCommand, RemotingError>,
    ) {
        let latency = now.saturating_duration_since(sent_at);
        let health = self
            .machine
            .on_response(routing.shared_broker_name(), latency, outcome);
        self.note_failed_addr(routing);
        report(core, routing.broker_name(), health, now);
    }

    /// The oneway attempt to `routing` begun at `sent_at` was written (or not) by `now`.
    pub(crate) fn on_written(
        &mut self,
        core: &Core,
        routing: &RoutingResult,
        (sent_at, now): (Instant, Instant),
        outcome: Result<(), RemotingError>,
    ) {
        let latency = now.saturating_duration_since(sent_at);
        let health = self
            .machine
            .on_written(routing.broker_name(), latency, outcome);
        self.note_failed_addr(routing);
        report(core, routing.broker_name(), health, now);
    }

    /// Keeps the attempt's address for the renewal the machine asks for after a connection failure.
    fn note_failed_addr(&mut self, routing: &RoutingResult) {
        if self.machine.wants_renew() {
            self.failed_addr = Some(routing.broker_addr().to_owned());
        }
    }

    /// The one exit of every send, at `now`: builds the result and counts it. `Ok(None)`: a oneway
    /// write.
    pub(crate) fn finish(
        self,
        core: &Core,
        r: Result<Receipt, ProducerError>,
        now: Instant,
    ) -> Result<Option<SendResult>, ProducerError> {
        let attempts = self.machine.made();
        let ok = r.is_ok();
        let took = now.saturating_duration_since(self.machine.started());
        if !self.prepared.is_internal() {
            count(
                core,
                self.prepared.user_topic(),
                self.mode,
                ok,
                attempts,
                took,
            );
        }
        if !self.span.is_disabled() {
            let outcome = match &r {
                Ok(_) => "ok".to_owned(),
                Err(e) => e.to_string(),
            };
            self.span.record("outcome", outcome.as_str());
        }
        if let (Ok(receipt), Some(tracer)) = (&r, core.tracer()) {
            trace(core, tracer, &self.prepared, receipt);
        }
        r.map(|receipt| send_result(self.prepared, receipt))
    }
}

/// Counts the end of one send to `topic` (the caller's name) as `mode`, in the counters and metrics.
pub(crate) fn count(
    core: &Core,
    topic: &std::sync::Arc<str>,
    mode: Mode,
    ok: bool,
    attempts: u32,
    took: Duration,
) {
    match mode {
        Mode::Answered => core.counters().record_send(ok, attempts, took),
        Mode::Oneway => core.counters().record_oneway(ok, attempts),
    }
    core.metrics()
        .send(topic, mode == Mode::Oneway, ok, attempts, took);
}

/// Queues the trace record of a stored message (one that is traced).
fn trace(core: &Core, tracer: &Tracer, p: &Prepared, receipt: &Receipt) {
    let (Some(facts), Receipt::Stored { status, header, .. }) = (p.trace(), receipt) else {
        return;
    };
    let config = core.config();
    let stored = Stored {
        group: &config.producer_group,
        topic: p.user_topic(),
        msg_id: p.uniq_key(),
        body_len: p.body_len(),
        status: *status,
        header,
        now_ms: crate::request::now_ms(),
    };
    if let Some(record) = pub_record(facts, &stored) {
        tracer.submit(record, p.uniq_key(), facts.keys());
    }
}

/// Tells broker health what an attempt showed at `now`.
fn report(core: &Core, broker: &str, health: Health, now: Instant) {
    match health {
        Health::Success(latency) => core.router().report_result(broker, latency, now),
        Health::Failure(kind, latency) => {
            core.router().report_failure(broker, kind, latency, now);
        }
        Health::Nothing => {}
    }
}

/// Counts a send refused before it became a job (not running, invalid message, overloaded).
pub(crate) fn refused(core: &Core, mode: Mode, e: ProducerError) -> ProducerError {
    match mode {
        Mode::Answered => core.counters().record_send(false, 0, Duration::ZERO),
        Mode::Oneway => core.counters().record_oneway(false, 0),
    }
    e
}
