//! Batch sends: checking a list of messages, splitting it into batches that fit, the job of one batch,
//! and the asynchronous chain that sends the batches one after another.

use std::borrow::Cow;
use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;
use rmq_protocol::Message;
use rmq_remoting::Completion;

use crate::async_send::{self, Room};
use crate::core::Core;
use crate::error::ProducerError;
use crate::future::{Cell, Pending};
use crate::outcome::Outcome;
use crate::request::UNIQ_ROOM;
use crate::result::SendResult;
use crate::send::{Mode, SendJob, Target, refused, retrying};

/// Checks `messages` (running producer, one topic, same `WAIT`, no delay, each fitting alone with its
/// UNIQ_KEY; a refusal is counted) and splits them into batches of at most `batch_size` messages whose
/// bodies stay within `max_message_size`.
pub(crate) fn split(core: &Core, messages: &[Message]) -> Result<Vec<Range<usize>>, ProducerError> {
    let c = core.config();
    let checked = core.check_running().and_then(|()| {
        rmq_protocol::validate::batch(messages)?;
        for m in messages {
            rmq_protocol::validate::message(m, c.max_message_size, UNIQ_ROOM)?;
        }
        Ok(())
    });
    checked.map_err(|e| refused(core, Mode::Answered, e))?;
    let mut chunks = Vec::new();
    let mut start = 0;
    while start < messages.len() {
        let mut end = start;
        let mut bytes = 0;
        while end < messages.len() && end - start < c.batch_size {
            // Record size plus the UNIQ_KEY the batch adds to each message.
            let size = rmq_protocol::batch::batch_record_len(&messages[end]) + UNIQ_ROOM;
            if end > start && bytes + size > c.max_message_size {
                break;
            }
            bytes += size;
            end += 1;
        }
        chunks.push(start..end);
        start = end;
    }
    Ok(chunks)
}

/// The send of one batch, accepted now, retried like a single message within `send_msg_timeout`.
pub(crate) fn job(core: &Core, chunk: &[Message]) -> Result<SendJob<'static>, ProducerError> {
    let config = core.config();
    // Routing reads only the topic of a batch.
    let key = chunk
        .first()
        .map(|m| Message::new(m.topic.clone(), Bytes::new()))
        .unwrap_or_default();
    SendJob::accept(
        core,
        |r| r.prepare_batch(chunk),
        Cow::Owned(key),
        Target::Strategy(config.routing_strategy),
        Mode::Answered,
        retrying(config),
        config.send_msg_timeout,
    )
}

/// An asynchronous batch send in progress: the messages, their batches, the results so far.
struct Chain {
    core: Arc<Core>,
    messages: Vec<Message>,
    chunks: Vec<Range<usize>>,
    results: Mutex<Vec<SendResult>>,
    room: Room,
    done: Cell<Vec<SendResult>>,
}

/// [`crate::Producer::send_batch_async`]: the batches go one after another, each as an asynchronous send
/// started when the one before it is stored; the first error ends the chain (so does a shutdown: the
/// batches not started yet are refused).
pub(crate) fn send_async(
    core: &Arc<Core>,
    messages: &[Message],
    room: Room,
) -> Pending<Vec<SendResult>> {
    let (future, done) = Pending::new();
    match split(core, messages) {
        Ok(chunks) => next(Arc::new(Chain {
            core: core.clone(),
            messages: messages.to_vec(),
            results: Mutex::new(Vec::with_capacity(chunks.len())),
            chunks,
            room,
            done,
        })),
        Err(e) => {
            done.complete(Err(e), || {});
        }
    }
    future
}

/// Sends the chain's next batch, or completes it.
fn next(chain: Arc<Chain>) {
    let i = chain.results.lock().len();
    let Some(range) = chain.chunks.get(i).cloned() else {
        let results = std::mem::take(&mut *chain.results.lock());
        chain.done.complete(Ok(results), || {});
        return;
    };
    let job = match job(&chain.core, &chain.messages[range]) {
        Ok(job) => job,
        Err(e) => {
            chain.done.complete(Err(e), || {});
            return;
        }
    };
    // The first batch waits for room as the caller asked; the ones after it continue a call already
    // accepted, and wait (the place of the one before is given back only after its outcome).
    let room = if i == 0 { chain.room } else { Room::Queue };
    let core = chain.core.clone();
    let then = Arc::new(Completion::with_callback(
        "batch chain",
        move |r: Result<SendResult, ProducerError>| match r {
            Ok(result) => {
                chain.results.lock().push(result);
                next(chain);
            }
            Err(e) => {
                chain.done.complete(Err(e), || {});
            }
        },
    ));
    async_send::begin(&core, job, Outcome::Answered(then), room);
}
