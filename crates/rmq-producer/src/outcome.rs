//! Where an asynchronous send's outcome goes ([`Outcome`]: a future's cell or a callback), delivering it
//! exactly once, and which send callbacks the current thread is running (a shutdown started from one does
//! not wait for it).

use rmq_remoting::{Completed, Completion};

use crate::error::ProducerError;
use crate::future::Cell;
use crate::result::SendResult;
use crate::stats::Counters;

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

/// Delivers an asynchronous call's outcome; `open`: its send still holds its place in the in-flight
/// table (given back after this returns). A callback that panicked is counted.
pub(crate) fn deliver<T>(
    counters: &Counters,
    outcome: &Completion<Result<T, ProducerError>>,
    r: Result<T, ProducerError>,
    open: bool,
) {
    let _in_callback = open.then(InCallback::enter);
    if outcome.complete(r, || {}) == Completed::CallbackPanicked {
        counters.record_callback_panic();
    }
}

/// Where an asynchronous send's outcome goes.
pub(crate) enum Outcome {
    /// An answered send: its result.
    Answered(Cell<SendResult>),
    /// A oneway send: whether its frame was written.
    Oneway(Cell<()>),
}

impl Outcome {
    /// Delivers the send's end (`finish`'s result: `None` for a oneway write).
    pub(crate) fn deliver(
        &self,
        counters: &Counters,
        r: Result<Option<SendResult>, ProducerError>,
        open: bool,
    ) {
        match self {
            Outcome::Answered(c) => deliver(counters, c, answered(r), open),
            Outcome::Oneway(c) => deliver(counters, c, r.map(drop), open),
        }
    }

    /// Whether the broker answers (an answered send) or not (oneway).
    pub(crate) fn is_oneway(&self) -> bool {
        matches!(self, Outcome::Oneway(_))
    }
}

/// The result of an answered send from `SendJob::finish` (`None` is a oneway write's, never an answered
/// send's).
pub(crate) fn answered(
    r: Result<Option<SendResult>, ProducerError>,
) -> Result<SendResult, ProducerError> {
    r?.ok_or(ProducerError::State(
        "a oneway outcome for an answered send",
    ))
}
