//! Background workers: the threads a running producer owns (route refresh, heartbeats, the job queue the
//! asynchronous driver hands blocking steps to), the stop signal they wait on, and joining them at
//! shutdown. Periodic workers hold their target weakly, so they never keep a dropped producer alive.

use std::sync::mpsc::Sender;
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use crate::error::ProducerError;

/// Set once at shutdown; periodic workers wait on it between runs.
#[derive(Debug, Default)]
pub(crate) struct StopSignal {
    stopped: Mutex<bool>,
    cond: Condvar,
}

impl StopSignal {
    /// Waits up to `period`; true when the producer is stopping.
    fn wait(&self, period: Duration) -> bool {
        let mut stopped = self.stopped.lock();
        if !*stopped {
            self.cond.wait_for(&mut stopped, period);
        }
        *stopped
    }

    fn stop(&self) {
        *self.stopped.lock() = true;
        self.cond.notify_all();
    }
}

/// The producer's threads.
#[derive(Debug, Default)]
pub(crate) struct Workers {
    signal: Arc<StopSignal>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Workers {
    /// Runs `body` on a new thread named `name`, joined at [`Workers::stop_and_join`].
    pub(crate) fn spawn(
        &self,
        name: &str,
        body: impl FnOnce() + Send + 'static,
    ) -> Result<(), ProducerError> {
        let handle = std::thread::Builder::new()
            .name(name.into())
            .spawn(body)
            .map_err(|e| ProducerError::Config {
                field: "threads",
                reason: format!("cannot start {name}: {e}"),
            })?;
        self.threads.lock().push(handle);
        Ok(())
    }

    /// Runs `job` on `target` every `period` (first at once when `at_start`) until the stop signal or
    /// until `target` is gone.
    pub(crate) fn spawn_periodic<T: Send + Sync + 'static>(
        &self,
        name: &str,
        target: Weak<T>,
        period: Duration,
        at_start: bool,
        job: fn(&T),
    ) -> Result<(), ProducerError> {
        let signal = self.signal.clone();
        self.spawn(name, move || {
            let mut first = at_start;
            loop {
                if !first && signal.wait(period) {
                    return;
                }
                first = false;
                match target.upgrade() {
                    Some(t) => job(&t),
                    None => return,
                }
            }
        })
    }

    /// Signals every worker to stop and joins them (except the calling thread, when it is one of them).
    pub(crate) fn stop_and_join(&self) {
        self.signal.stop();
        let me = std::thread::current().id();
        let threads: Vec<_> = self.threads.lock().drain(..).collect();
        for h in threads {
            if h.thread().id() != me {
                let _ = h.join();
            }
        }
    }
}

/// A job for the queue's thread. Its argument says whether the queue was closed: the job then runs on the
/// thread that pushed it and must only wind up (no blocking work).
pub(crate) type Job = Box<dyn FnOnce(Closed) + Send + 'static>;

/// Whether a job runs because its queue was closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Closed(pub(crate) bool);

/// Jobs run one after another on one worker thread (the asynchronous driver's route fetches, connects and
/// retries). Closed at shutdown; a job pushed after that runs at once with `Closed(true)`.
#[derive(Default)]
pub(crate) struct JobQueue {
    tx: Mutex<Option<Sender<Job>>>,
}

impl std::fmt::Debug for JobQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobQueue")
            .field("open", &self.tx.lock().is_some())
            .finish()
    }
}

impl JobQueue {
    /// Starts the queue's thread, named `name`, among `workers`.
    pub(crate) fn open(&self, workers: &Workers, name: &str) -> Result<(), ProducerError> {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        *self.tx.lock() = Some(tx);
        workers.spawn(name, move || {
            while let Ok(job) = rx.recv() {
                job(Closed(false));
            }
        })
    }

    /// Runs `job` on the queue's thread, or at once with `Closed(true)` when the queue is closed.
    pub(crate) fn push(&self, job: Job) {
        let tx = self.tx.lock().clone();
        let back = match tx {
            Some(tx) => match tx.send(job) {
                Ok(()) => return,
                Err(back) => back.0,
            },
            None => job,
        };
        back(Closed(true));
    }

    /// Closes the queue; its thread ends once the jobs already queued have run.
    pub(crate) fn close(&self) {
        self.tx.lock().take();
    }
}
