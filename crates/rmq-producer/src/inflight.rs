//! The asynchronous sends in flight: the bound on their number (`async_send_semaphore`), the sends
//! waiting for room in it (first come, first served), and what each one is, so
//! [`crate::Producer::flush`] and shutdown can wait for them and say which are still open.
//!
//! Nobody waits here by blocking unless it asks to: a send that finds the bound reached leaves a
//! continuation, run with its place (on the thread that gave one back) or with `Overloaded` at its
//! deadline (by the producer's timer). A blocking caller waits on a [`Completion`] its continuation fills.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rmq_protocol::{MsgId, Name};
use rmq_remoting::Completion;

use crate::error::ProducerError;

/// An asynchronous send that had not completed when [`crate::Producer::flush`] returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingSend {
    /// The message's UNIQ_KEY (a batch: its keys, comma-separated).
    pub msg_id: MsgId,
    /// Its topic.
    pub topic: Name,
    /// How long it had been in flight (waiting for room included).
    pub age: Duration,
}

/// What a send in the table (or waiting for room) is.
#[derive(Debug, Clone)]
pub(crate) struct Open {
    msg_id: MsgId,
    topic: Arc<str>,
    started: Instant,
}

impl Open {
    /// A send of `msg_id` to `topic` accepted at `started`.
    pub(crate) fn new(msg_id: &MsgId, topic: &Arc<str>, started: Instant) -> Open {
        Open {
            msg_id: msg_id.clone(),
            topic: topic.clone(),
            started,
        }
    }
}

/// What a waiting send is given: its place, or the error that ends its wait.
pub(crate) type Grant = Box<dyn FnOnce(Result<Ticket, ProducerError>) + Send + 'static>;

struct Waiter {
    open: Open,
    deadline: Instant,
    grant: Grant,
}

#[derive(Default)]
struct Table {
    next: u64,
    open: HashMap<u64, Open>,
    /// Sends waiting for room, by arrival (their key is their future ticket id order).
    waiting: BTreeMap<u64, Waiter>,
    /// The waiters by deadline, for expiry.
    deadlines: BTreeMap<(Instant, u64), ()>,
    /// Flushes waiting for the table to empty.
    idle: Vec<Arc<Completion<()>>>,
    /// Set at shutdown: nobody waits any more.
    closed: bool,
}

impl Table {
    fn is_idle(&self) -> bool {
        self.open.is_empty() && self.waiting.is_empty()
    }

    fn take_idle(&mut self) -> Vec<Arc<Completion<()>>> {
        if self.is_idle() {
            std::mem::take(&mut self.idle)
        } else {
            Vec::new()
        }
    }
}

/// A place in the table, given back with [`InFlight::release`].
#[derive(Debug)]
pub(crate) struct Ticket {
    id: u64,
    /// The send waited for the place (time passed since it was accepted).
    waited: bool,
}

impl Ticket {
    /// The time the send goes on from, given it was accepted at `started`: then, or now if it waited
    /// for room (what is left of its time is what it has).
    pub(crate) fn resumed(&self, started: Instant) -> Instant {
        if self.waited { Instant::now() } else { started }
    }
}

/// Grants to run once the table's lock is released: places given to waiters, or their errors.
type Due = Vec<(Grant, Result<Ticket, ProducerError>)>;

thread_local! {
    /// Grants this thread is running: a grant that ends a send at once gives its place back here,
    /// and the place's next waiter is served by the outer loop instead of a deeper call.
    static RUNNING: std::cell::RefCell<Option<Due>> = const { std::cell::RefCell::new(None) };
}

/// Runs `due` (and whatever these runs give back on this thread) without nesting. Should a grant
/// unwind, the ones still queued here run as the stack unwinds, so none is left behind.
fn run_grants(due: Due) {
    if due.is_empty() {
        return;
    }
    let mut batch = Some(due);
    RUNNING.with(|r| {
        let mut r = r.borrow_mut();
        if let Some(q) = r.as_mut() {
            // An outer call on this thread runs them.
            q.extend(batch.take().into_iter().flatten());
        } else {
            *r = Some(Vec::new());
        }
    });
    let Some(batch) = batch else { return };
    Outer(batch.into()).run();
}

/// The outermost [`run_grants`] on a thread: runs its grants and those nested calls queue; when it
/// ends (also by a grant unwinding, a bug) the thread's queue is cleared, and on unwinding what is
/// left still runs, so no waiter is left holding a place nobody gives it.
struct Outer(std::collections::VecDeque<(Grant, Result<Ticket, ProducerError>)>);

impl Outer {
    fn run(&mut self) {
        loop {
            while let Some((grant, r)) = self.0.pop_front() {
                grant(r);
            }
            let more = RUNNING.with(|r| {
                r.borrow_mut()
                    .as_mut()
                    .map(std::mem::take)
                    .unwrap_or_default()
            });
            if more.is_empty() {
                return;
            }
            self.0.extend(more);
        }
    }
}

impl Drop for Outer {
    fn drop(&mut self) {
        let more = RUNNING.with(|r| r.borrow_mut().take()).unwrap_or_default();
        if std::thread::panicking() {
            for (grant, r) in self.0.drain(..).chain(more) {
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| grant(r)));
            }
        }
    }
}

/// Releases the table's lock, then runs `due` and completes the flushes waiting for an idle table.
fn finish(mut t: parking_lot::MutexGuard<'_, Table>, due: Due) {
    let idle = t.take_idle();
    drop(t);
    run_grants(due);
    for c in idle {
        c.complete((), || {});
    }
}

/// Bounds, queues and lists the asynchronous sends in flight.
pub(crate) struct InFlight {
    table: Mutex<Table>,
    max: usize,
    /// See [`InFlight::set_scheduler`].
    scheduler: std::sync::OnceLock<Box<dyn Fn(Instant) + Send + Sync>>,
}

impl std::fmt::Debug for InFlight {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let t = self.table.lock();
        f.debug_struct("InFlight")
            .field("open", &t.open.len())
            .field("waiting", &t.waiting.len())
            .field("max", &self.max)
            .finish()
    }
}

fn overloaded(in_flight: usize, max: usize) -> ProducerError {
    ProducerError::Overloaded { in_flight, max }
}

impl InFlight {
    pub(crate) fn new(max: usize) -> InFlight {
        InFlight {
            table: Mutex::new(Table::default()),
            max,
            scheduler: std::sync::OnceLock::new(),
        }
    }

    /// Sets what is told each deadline that needs an [`InFlight::expire`] run at that time (the
    /// producer's timer); once, at start.
    pub(crate) fn set_scheduler(&self, schedule: impl Fn(Instant) + Send + Sync + 'static) {
        let _ = self.scheduler.set(Box::new(schedule));
    }

    fn schedule(&self, at: Instant) {
        if let Some(s) = self.scheduler.get() {
            s(at);
        }
    }

    /// Gives `open` a place: `grant` runs exactly once with it, or with the error that ends its wait.
    /// Now, on this thread, when there is room and nobody waits before it (or with an error when the
    /// table is closed, or full and there is no `deadline`). Otherwise it joins the queue and runs
    /// later: with its place when one frees up (in arrival order, on the thread that gave it back), with
    /// `Overloaded` at the deadline (see [`InFlight::expire`]), or with a shutdown error. Returns
    /// whether it was queued.
    pub(crate) fn enter<G>(&self, open: Open, deadline: Option<Instant>, grant: G) -> bool
    where
        G: FnOnce(Result<Ticket, ProducerError>) + Send + 'static,
    {
        let mut t = self.table.lock();
        let now = if t.closed {
            Err(ProducerError::State("shut down"))
        } else if t.open.len() < self.max && t.waiting.is_empty() {
            let id = t.next;
            t.next += 1;
            t.open.insert(id, open);
            Ok(Ticket { id, waited: false })
        } else if let Some(deadline) = deadline {
            let id = t.next;
            t.next += 1;
            // A timer is needed only when this deadline comes before every other one queued.
            let earliest = t.deadlines.keys().next().is_none_or(|(d, _)| deadline < *d);
            t.waiting.insert(
                id,
                Waiter {
                    open,
                    deadline,
                    grant: Box::new(grant),
                },
            );
            t.deadlines.insert((deadline, id), ());
            drop(t);
            if earliest {
                self.schedule(deadline);
            }
            return true;
        } else {
            Err(overloaded(t.open.len(), self.max))
        };
        drop(t);
        grant(now);
        false
    }

    /// [`InFlight::enter`] for a caller that may block: waits on this thread for its place until
    /// `deadline` (first come, first served with every other waiter).
    pub(crate) fn enter_blocking(
        &self,
        open: Open,
        deadline: Instant,
    ) -> Result<Ticket, ProducerError> {
        let cell = Arc::new(Completion::new());
        let c = cell.clone();
        let queued = self.enter(open, Some(deadline), move |r| {
            c.complete(r, || {});
        });
        // The timer ends the wait at the deadline; should it be late, this thread does.
        let late = rmq_remoting::deadline_after(deadline, Duration::from_millis(100));
        let mut waited = cell.wait_until(Some(late));
        if queued && waited.is_pending() {
            self.expire(Instant::now());
            waited = cell.wait_until(None);
        }
        match waited {
            Poll::Ready(Some(r)) => r,
            _ => Err(ProducerError::State("no place given")),
        }
    }

    /// Ends the wait of every send whose deadline is `now` or earlier with `Overloaded`, and schedules
    /// the next run.
    pub(crate) fn expire(&self, now: Instant) {
        let mut t = self.table.lock();
        let mut due: Due = Vec::new();
        while let Some((&(d, id), ())) = t.deadlines.first_key_value() {
            if d > now {
                break;
            }
            t.deadlines.remove(&(d, id));
            if let Some(w) = t.waiting.remove(&id) {
                due.push((w.grant, Err(overloaded(t.open.len(), self.max))));
            }
        }
        let next = t.deadlines.keys().next().map(|(d, _)| *d);
        finish(t, due);
        if let Some(next) = next {
            self.schedule(next);
        }
    }

    /// Gives a place back (the send completed); the first waiter gets it.
    pub(crate) fn release(&self, ticket: Ticket) {
        let mut t = self.table.lock();
        t.open.remove(&ticket.id);
        let mut due: Due = Vec::new();
        while t.open.len() < self.max {
            let Some((id, w)) = t.waiting.pop_first() else {
                break;
            };
            t.deadlines.remove(&(w.deadline, id));
            t.open.insert(id, w.open);
            due.push((w.grant, Ok(Ticket { id, waited: true })));
        }
        // Idle after a burst: give the table's room back.
        if t.open.is_empty() && t.open.capacity() > 1024 {
            t.open.shrink_to(16);
        }
        finish(t, due);
    }

    /// Ends every wait with a shutdown error; later sends are refused.
    pub(crate) fn close(&self) {
        let mut t = self.table.lock();
        t.closed = true;
        t.deadlines.clear();
        let due: Due = std::mem::take(&mut t.waiting)
            .into_values()
            .map(|w| (w.grant, Err(ProducerError::State("shut down"))))
            .collect();
        finish(t, due);
    }

    /// Sends accepted and not yet complete: in flight and waiting for room.
    pub(crate) fn len(&self) -> usize {
        let t = self.table.lock();
        t.open.len() + t.waiting.len()
    }

    /// Completes `cell` once every accepted send is complete (at once if none is open).
    pub(crate) fn when_idle(&self, cell: Arc<Completion<()>>) {
        let mut t = self.table.lock();
        if t.is_idle() {
            drop(t);
            cell.complete((), || {});
        } else {
            // Flushes that gave up (their deadline passed) leave their cells: drop them here, so a
            // table that never empties does not collect them.
            t.idle.retain(|c| !c.is_done());
            t.idle.push(cell);
        }
    }

    /// Waits until nothing is in flight or `deadline` passes; returns the sends still open, oldest first.
    pub(crate) fn wait_idle(&self, deadline: Instant) -> Vec<PendingSend> {
        let idle = Arc::new(Completion::new());
        self.when_idle(idle.clone());
        let _ = idle.wait_until(Some(deadline));
        // Given up (or idle): done either way, so the table drops the cell.
        idle.complete((), || {});
        self.pending()
    }

    /// The sends accepted and not complete (in flight or waiting for room), oldest first.
    pub(crate) fn pending(&self) -> Vec<PendingSend> {
        let t = self.table.lock();
        let now = Instant::now();
        let mut open: Vec<PendingSend> = t
            .open
            .values()
            .chain(t.waiting.values().map(|w| &w.open))
            .map(|o| PendingSend {
                msg_id: o.msg_id.clone(),
                topic: Name::from(&o.topic),
                age: now.saturating_duration_since(o.started),
            })
            .collect();
        drop(t);
        open.sort_by_key(|p| std::cmp::Reverse(p.age));
        open
    }

    /// [`InFlight::wait_idle`], satisfied when at most `but` sends are open (the caller's own, whose
    /// callbacks run on its thread).
    pub(crate) fn wait_idle_but(&self, but: usize, deadline: Instant) -> Vec<PendingSend> {
        if but == 0 {
            return self.wait_idle(deadline);
        }
        // Rare (a shutdown from inside callbacks): poll.
        while self.len() > but && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        self.pending()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// Takes a place as a blocking caller (with a deadline) or not at all (without).
    fn acquire(
        f: &InFlight,
        id: &MsgId,
        topic: &Arc<str>,
        now: Instant,
        deadline: Option<Instant>,
    ) -> Result<Ticket, ProducerError> {
        let open = Open::new(id, topic, now);
        match deadline {
            Some(d) => f.enter_blocking(open, d),
            None => {
                let got = Arc::new(Mutex::new(None));
                let g = got.clone();
                assert!(!f.enter(open, None, move |r| *g.lock() = Some(r)));
                got.lock().take().unwrap()
            }
        }
    }

    /// Before: the table kept its largest size after a burst of asynchronous sends.
    #[test]
    fn the_table_shrinks_when_idle_after_a_burst() {
        let f = InFlight::new(10_000);
        let (now, t): (Instant, Arc<str>) = (Instant::now(), Arc::from("T"));
        let tickets: Vec<Ticket> = (0..5_000)
            .map(|i| acquire(&f, &MsgId::new(&format!("{i}")), &t, now, None).unwrap())
            .collect();
        for ticket in tickets {
            f.release(ticket);
        }
        assert!(f.table.lock().open.capacity() <= 1024);
    }

    #[test]
    fn bound_list_and_wait() {
        let f = InFlight::new(2);
        let now = Instant::now();
        let (t, u): (Arc<str>, Arc<str>) = (Arc::from("T"), Arc::from("U"));
        let id = MsgId::new;
        let a = acquire(&f, &id("A"), &t, now, None).unwrap();
        let _b = acquire(&f, &id("B"), &t, now, None).unwrap();
        assert!(matches!(
            acquire(&f, &id("C"), &t, now, None),
            Err(ProducerError::Overloaded {
                in_flight: 2,
                max: 2
            })
        ));
        let t0 = Instant::now();
        assert!(acquire(&f, &id("C"), &t, now, Some(t0 + Duration::from_millis(30))).is_err());
        assert!(t0.elapsed() >= Duration::from_millis(30));
        f.release(a);
        let open = f.wait_idle(Instant::now() + Duration::from_millis(10));
        assert_eq!(open.len(), 1);
        assert_eq!(open[0].msg_id, "B");
        assert_eq!(open[0].topic, "T");
        assert_eq!(f.len(), 1);
        let ids = |f: &InFlight| {
            let mut v: Vec<String> = f.pending().into_iter().map(|p| p.msg_id.into()).collect();
            v.sort();
            v
        };
        let long = "K".repeat(80);
        let l = acquire(&f, &id(&long), &u, now, None).unwrap();
        assert_eq!(ids(&f), ["B".to_owned(), long.clone()]);
        assert!(
            acquire(&f, &id("E"), &u, now, Some(now)).is_err(),
            "still bounded at 2"
        );
        f.release(l);
        let _e = acquire(&f, &id("E"), &u, now, None).unwrap();
        assert_eq!(ids(&f), ["B".to_owned(), "E".to_owned()]);
    }

    /// Sends waiting for room get it in the order they came, each on the thread that gave a place
    /// back; one that arrives while others wait queues behind them even when a place is free.
    #[test]
    fn waiting_sends_are_served_first_come_first_served() {
        let f = InFlight::new(1);
        let (now, t): (Instant, Arc<str>) = (Instant::now(), Arc::from("T"));
        let first = acquire(&f, &MsgId::new("0"), &t, now, None).unwrap();
        let order = Arc::new(Mutex::new(Vec::new()));
        let tickets = Arc::new(Mutex::new(Vec::new()));
        let later = now + Duration::from_secs(60);
        for i in 1..=3 {
            let (o, k) = (order.clone(), tickets.clone());
            let queued = f.enter(
                Open::new(&MsgId::new(&format!("{i}")), &t, now),
                Some(later),
                move |r| {
                    o.lock().push(i);
                    k.lock().push(r.unwrap());
                },
            );
            assert!(queued);
        }
        assert_eq!(f.len(), 4, "waiting sends count as accepted");
        f.release(first);
        assert_eq!(*order.lock(), [1]);
        let t1 = tickets.lock().pop().unwrap();
        assert!(t1.waited);
        f.release(t1);
        let t2 = tickets.lock().pop().unwrap();
        f.release(t2);
        assert_eq!(*order.lock(), [1, 2, 3]);
    }

    /// A waiter whose deadline passes ends with `Overloaded` when the table is expired; the scheduler
    /// is told each deadline that needs it.
    #[test]
    fn waits_end_at_their_deadline_and_at_close() {
        let f = InFlight::new(1);
        let scheduled = Arc::new(Mutex::new(Vec::new()));
        let s = scheduled.clone();
        f.set_scheduler(move |at| s.lock().push(at));
        let (now, t): (Instant, Arc<str>) = (Instant::now(), Arc::from("T"));
        let _held = acquire(&f, &MsgId::new("0"), &t, now, None).unwrap();
        let ends = Arc::new(Mutex::new(Vec::new()));
        for (i, after) in [(1, 10), (2, 5), (3, 20)] {
            let e = ends.clone();
            let d = now + Duration::from_millis(after);
            f.enter(Open::new(&MsgId::new("x"), &t, now), Some(d), move |r| {
                e.lock().push((i, r.is_err()));
            });
        }
        // 10 ms (first), 5 ms (earlier than every other); 20 ms needs none yet.
        assert_eq!(scheduled.lock().len(), 2);
        f.expire(now + Duration::from_millis(12));
        assert_eq!(*ends.lock(), [(2, true), (1, true)]);
        assert_eq!(
            scheduled.lock().last(),
            Some(&(now + Duration::from_millis(20)))
        );
        f.close();
        assert_eq!(*ends.lock(), [(2, true), (1, true), (3, true)]);
        let refused = acquire(&f, &MsgId::new("y"), &t, now, None);
        assert!(matches!(refused, Err(ProducerError::State(_))));
    }

    /// Before: a flush that gave up left its cell in the table until the table emptied; under steady
    /// load that list grew with every flush.
    #[test]
    fn flushes_that_gave_up_do_not_pile_up() {
        let f = InFlight::new(4);
        let (now, t): (Instant, Arc<str>) = (Instant::now(), Arc::from("T"));
        let _held = acquire(&f, &MsgId::new("0"), &t, now, None).unwrap();
        for _ in 0..1_000 {
            assert_eq!(f.wait_idle(Instant::now()).len(), 1);
        }
        assert!(f.table.lock().idle.len() <= 1);
    }

    /// A grant that ends its send at once gives its place back to the next waiter without nesting
    /// one call in another (a queue of 100,000 would otherwise overflow the stack).
    #[test]
    fn a_long_queue_of_sends_that_end_at_once_does_not_nest() {
        let f = Arc::new(InFlight::new(1));
        let (now, t): (Instant, Arc<str>) = (Instant::now(), Arc::from("T"));
        let first = acquire(&f, &MsgId::new("0"), &t, now, None).unwrap();
        let served = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        for _ in 0..100_000 {
            let (f2, s) = (f.clone(), served.clone());
            f.enter(
                Open::new(&MsgId::new("x"), &t, now),
                Some(now + Duration::from_secs(60)),
                move |r| {
                    s.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    f2.release(r.unwrap());
                },
            );
        }
        f.release(first);
        assert_eq!(served.load(std::sync::atomic::Ordering::Relaxed), 100_000);
        assert_eq!(f.len(), 0);
    }
}
