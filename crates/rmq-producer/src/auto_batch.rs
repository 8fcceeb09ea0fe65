//! Auto-batch (`ProducerConfig::auto_batch`): asynchronous sends that can share a request are gathered
//! (see `gather`) and go as one SEND_BATCH_MESSAGE; each caller still gets its own outcome.
//!
//! A message is prepared alone when it comes (its UNIQ_KEY, properties and checks are those of a single
//! send, and a bad one is refused at once), takes its own place in the in-flight table (so the bound,
//! waiting for room and flushes treat it as any asynchronous send), then waits in its gathering. A
//! gathering goes when full, when its linger ends or half the time of a member has passed (the
//! producer's timer), or at a flush or shutdown; a
//! gathering of one goes as a single send. The batch is one send job (routing, retries and deadline of
//! the earliest member; members gather only with sends of the same timeout); its end is split among the
//! members: each gets its own [`SendResult`] (its UNIQ_KEY, its offset msgId from the broker's
//! comma-separated list, `queue_offset` of the batch plus its index) or the batch's error, and gives its
//! place back once its outcome is delivered. When the broker refuses the batch as illegal
//! (`MESSAGE_ILLEGAL`, nothing stored), each member is sent again alone, so only the message at fault
//! fails. Each member is counted as a send with the batch's attempts (a batch retried once counts a
//! retry per message).

use std::sync::Arc;
use std::time::{Duration, Instant};

use rmq_protocol::message::property;
use rmq_protocol::{Message, MsgId, ResponseCode};
use rmq_remoting::Completion;
use rmq_routing::RoutingStrategy;

use crate::async_send::{self, AsyncSend, Ends, Room, SendFuture, take_place};
use crate::core::Core;
use crate::error::ProducerError;
use crate::future::Pending;
use crate::gather::{Gathering, Key, Member, Size};
use crate::inflight::Open;
use crate::machine::Receipt;
use crate::outcome::Outcome;
use crate::request::Prepared;
use crate::result::SendResult;
use crate::send::{Mode, SendJob, Target, count, policy_for, refused};

/// Properties that keep a message out of a batch besides the delays (a batch has no per-message delay):
/// transactions, request-reply, priorities and lite topics (brokers apply neither to batches).
const ALONE: &[&str] = &[
    property::START_DELIVER_TIME,
    property::TRANSACTION_PREPARED,
    property::PRODUCER_GROUP,
    property::CORRELATION_ID,
    property::PRIORITY,
    property::LITE_TOPIC,
];

/// Whether `message` goes through auto-batch: it is on, the message is routed by round robin or random
/// (no sharding key), would not be compressed, leaves room in a gathering, is not traced, and carries
/// none of the properties a batch cannot (delay, timer, transaction, request-reply, priority, lite
/// topic), nor goes to a retry topic.
pub(crate) fn takes(core: &Core, message: &Message) -> bool {
    let c = core.config();
    c.auto_batch
        && !c.trace
        && matches!(
            crate::send::strategy_for(message, c.routing_strategy),
            RoutingStrategy::RoundRobin | RoutingStrategy::Random
        )
        && !rmq_protocol::compress::should_compress(message.body.len(), c.compress_msg_body_over)
        && message.body.len() < c.auto_batch_max_bytes
        && !message.topic.starts_with("%RETRY%")
        // One pass over the message's few properties.
        && !message
            .properties
            .iter()
            .any(|(k, _)| property::DELAYS.contains(&k) || ALONE.contains(&k))
}

/// Starts an asynchronous send of `message` within `timeout` as `mode`, delivering to `outcome`: through
/// a gathering when it may wait for others ([`takes`]), else alone (`async_send::start`). Every
/// asynchronous send by strategy starts here.
pub(crate) fn start(
    core: &Arc<Core>,
    message: &Message,
    timeout: Duration,
    mode: Mode,
    room: Room,
    outcome: Outcome,
) {
    if takes(core, message) {
        accept(core, message, timeout, mode, room, outcome);
    } else {
        async_send::start(core, message, timeout, mode, room, outcome);
    }
}

/// [`start`] of an answered send whose outcome goes to the returned future.
pub(crate) fn start_future(
    core: &Arc<Core>,
    message: &Message,
    timeout: Duration,
    room: Room,
) -> SendFuture {
    let (future, cell) = Pending::new();
    let outcome = Outcome::Answered(cell);
    start(core, message, timeout, Mode::Answered, room, outcome);
    future
}

/// [`start`] of an answered send whose outcome goes to `callback`.
pub(crate) fn start_callback(
    core: &Arc<Core>,
    message: &Message,
    timeout: Duration,
    room: Room,
    callback: crate::async_send::SendCallback,
) {
    let cell = Arc::new(Completion::with_callback("send callback", callback));
    let outcome = Outcome::Answered(cell);
    start(core, message, timeout, Mode::Answered, room, outcome);
}

/// Accepts `message` (one [`takes`] let in) as an asynchronous send within `timeout` as `mode`: prepares
/// it, takes its place as `room` says, and adds it to its gathering; its outcome goes to `outcome`.
fn accept(
    core: &Arc<Core>,
    message: &Message,
    timeout: Duration,
    mode: Mode,
    room: Room,
    outcome: Outcome,
) {
    let started = Instant::now();
    let prepared = match core
        .check_running()
        .and_then(|()| core.requests().prepare(message))
    {
        Ok(p) => p,
        Err(e) => return outcome.deliver(core.counters(), Err(refused(core, mode, e)), false),
    };
    let deadline = rmq_remoting::deadline_after(started, timeout);
    let open = Open::new(prepared.uniq_key(), prepared.user_topic(), started);
    let key = Key {
        topic: prepared.topic().clone(),
        wait: message.wait_store_ok(),
        oneway: mode == Mode::Oneway,
        timeout,
    };
    let c = core.clone();
    take_place(core, open, deadline, room, move |r| match r {
        Ok(ticket) => {
            let now = ticket.resumed(started);
            let member = Member {
                prepared,
                outcome,
                ticket,
                started,
                deadline,
            };
            gather(&c, key, member, now);
        }
        Err(e) => outcome.deliver(c.counters(), Err(refused(&c, mode, e)), false),
    });
}

/// Adds `member` to the gathering of `key` at `now`; sends the gatherings that are ready (in order), then sets
/// the timer of the one it opens (or brings forward). A member that waited for room for half its time
/// or more has none left to wait: it goes alone.
fn gather(core: &Arc<Core>, key: Key, member: Member, now: Instant) {
    let Some(gatherings) = core.gatherings() else {
        // Unreachable: only a producer with gatherings accepts. Sent alone, not lost.
        return alone(core, member);
    };
    // It waits at most half its time: the other half is the send's (retries included).
    let latest = member.started + member.deadline.saturating_duration_since(member.started) / 2;
    if latest <= now {
        return alone(core, member);
    }
    let size = Size {
        body: member.prepared.body_len(),
        record: member.prepared.record_len(),
    };
    let added = gatherings
        .lock()
        .add(key.clone(), member, size, now, latest);
    for g in added.ready {
        dispatch(core, g);
    }
    if let Some((id, due)) = added.timer {
        let c = core.clone();
        core.timer().at(
            due,
            Box::new(move |_closed| {
                // Closed (shutdown) or not, the gathering goes: a closed pool then ends it with a
                // shutdown error, one outcome per member. (The job holds the core only until then.)
                let taken = c.gatherings().and_then(|g| g.lock().take(&key, id));
                if let Some(g) = taken {
                    dispatch(&c, g);
                }
            }),
        );
    }
}

/// Sends every open gathering now (a flush, a shutdown).
pub(crate) fn send_all(core: &Arc<Core>) {
    let all = match core.gatherings() {
        Some(g) => g.lock().drain(),
        None => return,
    };
    for g in all {
        dispatch(core, g);
    }
}

/// Sends a gathering: a single message as a single send, more as one batch request.
fn dispatch(core: &Arc<Core>, g: Gathering<Member>) {
    let mut members = g.items;
    if members.len() == 1 {
        if let Some(m) = members.pop() {
            alone(core, m);
        }
        return;
    }
    let started = members.iter().map(|m| m.started).min().unwrap_or(g.due);
    let deadline = members.iter().map(|m| m.deadline).min().unwrap_or(g.due);
    let prepared = match core.requests().gathered(
        members.iter().map(|m| &m.prepared),
        g.record_bytes,
        g.key.wait,
    ) {
        Ok(p) => p,
        Err(e) => {
            // Each message was checked alone; should their records still not make a batch, they go
            // alone rather than fail.
            tracing::debug!(error = %e, "auto-batch not encoded; its messages go alone");
            return members.into_iter().for_each(|m| alone(core, m));
        }
    };
    let mode = if g.key.oneway {
        Mode::Oneway
    } else {
        Mode::Answered
    };
    let job = job(core, prepared, mode, started, deadline);
    let settle = Box::new(move |core: &Arc<Core>, job, r, now| settle(core, job, members, r, now));
    AsyncSend::new(job, Ends::Settle(settle)).go(core);
}

/// The job of an auto-batch or of one of its messages, accepted already (at `started`, to end by
/// `deadline`), routed by the producer's strategy (round robin or random: routing reads nothing of it).
fn job(
    core: &Core,
    prepared: Prepared,
    mode: Mode,
    started: Instant,
    deadline: Instant,
) -> SendJob<'static> {
    SendJob::new(
        prepared,
        crate::async_send::unread_key(),
        Target::Strategy(core.config().routing_strategy),
        mode,
        policy_for(core.config(), mode),
        started,
        deadline.saturating_duration_since(started),
    )
}

/// Sends `m` as a single asynchronous send, within what is left of its time.
fn alone(core: &Arc<Core>, m: Member) {
    let mode = if m.outcome.is_oneway() {
        Mode::Oneway
    } else {
        Mode::Answered
    };
    let job = job(core, m.prepared, mode, m.started, m.deadline);
    let ends = Ends::One {
        outcome: m.outcome,
        ticket: m.ticket,
    };
    AsyncSend::new(job, ends).go(core);
}

/// The end of an auto-batch's job (`r`, at `now`), split among its `members`: each gets its own result
/// (or the batch's error), is counted as a send of its own, and gives its place back after its outcome
/// is delivered. A batch the broker refused as illegal is sent again message by message.
fn settle(
    core: &Arc<Core>,
    job: SendJob<'static>,
    members: Vec<Member>,
    r: Result<Receipt, ProducerError>,
    now: Instant,
) {
    let (attempts, mode) = (job.attempts(), job.mode());
    let r = job.finish(core, r, now);
    if let Err(e) = &r
        && refused_as_illegal(e)
    {
        // Refused whole, nothing stored: each message again alone, so each gets its own answer.
        return members.into_iter().for_each(|m| alone(core, m));
    }
    let batch = r.as_ref().ok().and_then(Option::as_ref);
    let offset_ids: Vec<&str> =
        batch.map_or_else(Vec::new, |b| b.offset_msg_id.split(',').collect());
    // One offset msgId per message, or none for any (a broker listing another number is not trusted to
    // have listed them in order).
    let per_message = offset_ids.len() == members.len();
    if batch.is_some() && !per_message {
        tracing::debug!(
            ids = offset_ids.len(),
            messages = members.len(),
            "the broker's offset msgIds do not match the batch; results carry none"
        );
    }
    for (i, m) in members.into_iter().enumerate() {
        let took = now.saturating_duration_since(m.started);
        let mine = match &r {
            Err(e) => Err(e.clone()),
            Ok(None) => Ok(None),
            Ok(Some(b)) => {
                let offset_id = per_message.then(|| offset_ids.get(i)).flatten();
                Ok(Some(member_result(b, &m.prepared, offset_id.copied(), i)))
            }
        };
        count(
            core,
            m.prepared.user_topic(),
            mode,
            mine.is_ok(),
            attempts,
            took,
        );
        // Delivered, then its place given back: a flush that finds the table empty finds every outcome.
        m.outcome.deliver(core.counters(), mine, true);
        core.in_flight().release(m.ticket);
    }
}

/// Whether the broker refused the batch as illegal, with nothing stored by any attempt.
fn refused_as_illegal(e: &ProducerError) -> bool {
    match e {
        ProducerError::Broker { code, .. } => *code == ResponseCode::MESSAGE_ILLEGAL,
        ProducerError::AttemptsExhausted {
            last,
            possibly_stored: false,
            ..
        } => refused_as_illegal(last),
        _ => false,
    }
}

/// The result of the `i`-th message of the stored batch `b`: its own UNIQ_KEY, its offset msgId (when
/// the broker listed one per message; empty otherwise), its queue offset.
fn member_result(b: &SendResult, p: &Prepared, offset_id: Option<&str>, i: usize) -> SendResult {
    SendResult {
        msg_id: p.uniq_key().clone(),
        offset_msg_id: offset_id.map(MsgId::new).unwrap_or_default(),
        queue_offset: b
            .queue_offset
            .saturating_add(i64::try_from(i).unwrap_or(i64::MAX)),
        ..b.clone()
    }
}
