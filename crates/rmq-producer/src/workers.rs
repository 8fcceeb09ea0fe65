//! Background workers: the threads a running producer owns (route refresh, heartbeats), the stop signal
//! they wait on, and joining them at shutdown; the pool the asynchronous driver hands blocking steps to,
//! and the timer that runs jobs at their time. Periodic workers hold their target weakly, so they never keep a dropped producer alive.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

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

/// A job for the pool or the timer. Its argument says whether they were closed: the job then runs on
/// the thread that pushed it (or closed them) and must only wind up (no blocking work).
pub(crate) type Job = Box<dyn FnOnce(Closed) + Send + 'static>;

/// Whether a job runs because its pool or timer was closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Closed(pub(crate) bool);

/// Most threads the pool runs at once: enough that one slow broker (a connect waiting out its timeout)
/// or one long user callback holds up only its own sends, few enough to stay out of the way.
const MAX_POOL_THREADS: usize = 8;

/// How long an idle pool thread stays before it ends.
const POOL_IDLE: Duration = Duration::from_secs(10);

struct PoolState {
    queue: VecDeque<Job>,
    /// Threads running, and how many of them wait for a job.
    threads: usize,
    idle: usize,
    open: bool,
}

/// The threads that run what the asynchronous driver may not run on a caller's, reader or timer thread:
/// route fetches and connects. Threads start on demand, up to [`MAX_POOL_THREADS`], and end after
/// [`POOL_IDLE`] without work. Closed at shutdown; a job pushed after that runs at once with
/// `Closed(true)`.
pub(crate) struct Pool {
    state: Arc<(Mutex<PoolState>, Condvar)>,
    /// Its threads' name.
    name: &'static str,
}

impl Default for Pool {
    fn default() -> Pool {
        Pool::named("rmq-async-worker")
    }
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = self.state.0.lock();
        f.debug_struct("Pool")
            .field("open", &st.open)
            .field("threads", &st.threads)
            .finish()
    }
}

impl Pool {
    /// A closed pool whose threads are called `name`.
    pub(crate) fn named(name: &'static str) -> Pool {
        Pool {
            state: Arc::new((
                Mutex::new(PoolState {
                    queue: VecDeque::new(),
                    threads: 0,
                    idle: 0,
                    open: false,
                }),
                Condvar::new(),
            )),
            name,
        }
    }

    /// Opens the pool (threads start with the first jobs).
    pub(crate) fn open(&self) {
        self.state.0.lock().open = true;
    }

    /// Runs `job` on a pool thread, or at once with `Closed(true)` when the pool is closed.
    pub(crate) fn push(&self, job: Job) {
        let (lock, cond) = &*self.state;
        let mut st = lock.lock();
        if !st.open {
            drop(st);
            return job(Closed(true));
        }
        st.queue.push_back(job);
        if st.idle >= st.queue.len() || st.threads >= MAX_POOL_THREADS {
            drop(st);
            cond.notify_one();
            return;
        }
        st.threads += 1;
        drop(st);
        let state = self.state.clone();
        let spawned = std::thread::Builder::new()
            .name(self.name.into())
            .spawn(move || pool_thread(&state));
        if spawned.is_err() {
            // No new thread: the ones running take the job; with none at all it winds up here.
            let mut st = lock.lock();
            st.threads -= 1;
            if st.threads == 0 {
                let jobs: Vec<Job> = st.queue.drain(..).collect();
                drop(st);
                for j in jobs {
                    j(Closed(true));
                }
            }
        }
    }

    /// Closes the pool: queued jobs run with `Closed(true)` here; running ones finish; threads end.
    pub(crate) fn close(&self) {
        let (lock, cond) = &*self.state;
        let jobs: Vec<Job> = {
            let mut st = lock.lock();
            st.open = false;
            st.queue.drain(..).collect()
        };
        cond.notify_all();
        for j in jobs {
            j(Closed(true));
        }
    }
}

/// Runs `job` on a pool or timer thread, which must outlive a job that panics (a bug: jobs catch user
/// code themselves); the panic is logged.
fn run_job(job: Job, closed: Closed) {
    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(closed))).is_err() {
        tracing::error!("a producer job panicked; its thread goes on");
    }
}

fn pool_thread(state: &(Mutex<PoolState>, Condvar)) {
    let (lock, cond) = state;
    let mut st = lock.lock();
    loop {
        if let Some(job) = st.queue.pop_front() {
            drop(st);
            run_job(job, Closed(false));
            st = lock.lock();
            continue;
        }
        if !st.open {
            break;
        }
        st.idle += 1;
        let timed_out = cond.wait_for(&mut st, POOL_IDLE).timed_out();
        st.idle -= 1;
        if timed_out && st.queue.is_empty() {
            break;
        }
    }
    st.threads -= 1;
}

#[derive(Default)]
struct TimerState {
    /// Jobs by due time, then by arrival.
    jobs: BTreeMap<(Instant, u64), Job>,
    next: u64,
    open: bool,
    /// Wakes the timer thread when an earlier job arrives or the timer closes.
    thread: Option<std::thread::Thread>,
}

/// Jobs run at a time: an asynchronous send's attempt after a reconnect backoff, the deadline of a send
/// waiting for room, of a flush, of a reply. One thread (started on first use) runs them in time order;
/// a job must not block (one that needs to, hands itself to the [`Pool`]). Closed at shutdown: jobs not
/// yet due run with `Closed(true)` at once.
#[derive(Default)]
pub(crate) struct Timer {
    state: Arc<Mutex<TimerState>>,
}

impl std::fmt::Debug for Timer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Timer")
            .field("jobs", &self.state.lock().jobs.len())
            .finish()
    }
}

impl Timer {
    /// Opens the timer.
    pub(crate) fn open(&self) {
        self.state.lock().open = true;
    }

    /// Runs `job` at `at` (at once on the timer thread if `at` has passed).
    pub(crate) fn at(&self, at: Instant, job: Job) {
        let mut st = self.state.lock();
        if !st.open {
            drop(st);
            return job(Closed(true));
        }
        let key = (at, st.next);
        st.next += 1;
        let earliest = st.jobs.first_key_value().is_none_or(|(k, _)| key < *k);
        st.jobs.insert(key, job);
        match &st.thread {
            Some(t) if earliest => t.unpark(),
            Some(_) => {}
            None => {
                let state = self.state.clone();
                match std::thread::Builder::new()
                    .name("rmq-timer".into())
                    .spawn(move || timer_thread(&state))
                {
                    Ok(h) => st.thread = Some(h.thread().clone()),
                    Err(_) => {
                        // No timer thread: the job cannot wait; it winds up now.
                        if let Some(job) = st.jobs.remove(&key) {
                            drop(st);
                            job(Closed(true));
                        }
                    }
                }
            }
        }
    }

    /// Closes the timer: every job not yet run runs now with `Closed(true)`; the thread ends.
    pub(crate) fn close(&self) {
        let (jobs, thread) = {
            let mut st = self.state.lock();
            st.open = false;
            let mut jobs: Vec<((Instant, u64), Job)> =
                std::mem::take(&mut st.jobs).into_iter().collect();
            // In the order they were given.
            jobs.sort_by_key(|((_, id), _)| *id);
            (jobs, st.thread.clone())
        };
        if let Some(t) = thread {
            t.unpark();
        }
        for (_, j) in jobs {
            j(Closed(true));
        }
    }
}

fn timer_thread(state: &Mutex<TimerState>) {
    loop {
        let mut st = state.lock();
        if !st.open && st.jobs.is_empty() {
            st.thread = None;
            return;
        }
        let now = Instant::now();
        let later = st.jobs.split_off(&(now, u64::MAX));
        let due = std::mem::replace(&mut st.jobs, later);
        let next = st.jobs.first_key_value().map(|((t, _), _)| *t);
        drop(st);
        if !due.is_empty() {
            for j in due.into_values() {
                run_job(j, Closed(false));
            }
            continue;
        }
        match next {
            Some(t) => std::thread::park_timeout(t.saturating_duration_since(now)),
            None => std::thread::park_timeout(Duration::from_secs(1)),
        }
    }
}
