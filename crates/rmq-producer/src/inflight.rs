//! The asynchronous sends in flight: the bound on their number (`async_send_semaphore`) and what each one
//! is, so [`crate::Producer::flush`] and shutdown can wait for them and say which are still open.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use rmq_protocol::{MsgId, Name};

use crate::error::ProducerError;

/// An asynchronous send that had not completed when [`crate::Producer::flush`] returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingSend {
    /// The message's UNIQ_KEY (a batch: its keys, comma-separated).
    pub msg_id: MsgId,
    /// Its topic.
    pub topic: Name,
    /// How long it had been in flight.
    pub age: Duration,
}

#[derive(Debug)]
struct Open {
    msg_id: MsgId,
    topic: Arc<str>,
    started: Instant,
}

#[derive(Debug, Default)]
struct Table {
    next: u64,
    open: HashMap<u64, Open>,
}

/// A place in the table, given back with [`InFlight::release`].
#[derive(Debug)]
pub(crate) struct Ticket {
    id: u64,
    /// [`InFlight::acquire`] waited for the place (time passed since `started`).
    waited: bool,
}

impl Ticket {
    /// Whether acquiring it waited for room.
    pub(crate) fn waited(&self) -> bool {
        self.waited
    }
}

/// Bounds and lists the asynchronous sends in flight.
#[derive(Debug)]
pub(crate) struct InFlight {
    table: Mutex<Table>,
    cond: Condvar,
    max: usize,
}

impl InFlight {
    pub(crate) fn new(max: usize) -> InFlight {
        InFlight {
            table: Mutex::new(Table::default()),
            cond: Condvar::new(),
            max,
        }
    }

    /// Takes a place for a send of `msg_id` to `topic` started at `started`, waiting while the bound is
    /// reached until `deadline` (`None`: not at all).
    pub(crate) fn acquire(
        &self,
        msg_id: &MsgId,
        topic: &Arc<str>,
        started: Instant,
        deadline: Option<Instant>,
    ) -> Result<Ticket, ProducerError> {
        let mut t = self.table.lock();
        let waited = t.open.len() >= self.max;
        while t.open.len() >= self.max {
            let gave_up = match deadline {
                None => true,
                Some(d) => self.cond.wait_until(&mut t, d).timed_out() && t.open.len() >= self.max,
            };
            if gave_up {
                return Err(ProducerError::Overloaded {
                    in_flight: t.open.len(),
                    max: self.max,
                });
            }
        }
        let id = t.next;
        t.next += 1;
        t.open.insert(
            id,
            Open {
                msg_id: msg_id.clone(),
                topic: topic.clone(),
                started,
            },
        );
        Ok(Ticket { id, waited })
    }

    /// Gives a place back (the send completed).
    pub(crate) fn release(&self, ticket: Ticket) {
        let mut t = self.table.lock();
        t.open.remove(&ticket.id);
        // Idle after a burst: give the table's room back.
        if t.open.is_empty() && t.open.capacity() > 1024 {
            t.open.shrink_to(16);
        }
        drop(t);
        self.cond.notify_all();
    }

    /// Sends in flight.
    pub(crate) fn len(&self) -> usize {
        self.table.lock().open.len()
    }

    /// Waits until nothing is in flight or `deadline` passes; returns the sends still open, oldest first.
    pub(crate) fn wait_idle(&self, deadline: Instant) -> Vec<PendingSend> {
        self.wait_idle_but(0, deadline)
    }

    /// [`InFlight::wait_idle`], satisfied when at most `but` sends are open (the caller's own).
    pub(crate) fn wait_idle_but(&self, but: usize, deadline: Instant) -> Vec<PendingSend> {
        let mut t = self.table.lock();
        while t.open.len() > but {
            if self.cond.wait_until(&mut t, deadline).timed_out() {
                break;
            }
        }
        let now = Instant::now();
        let mut open: Vec<PendingSend> = t
            .open
            .values()
            .map(|o| PendingSend {
                msg_id: o.msg_id.clone(),
                topic: Name::from(&o.topic),
                age: now.saturating_duration_since(o.started),
            })
            .collect();
        open.sort_by_key(|p| std::cmp::Reverse(p.age));
        open
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// Before: the table kept its largest size after a burst of asynchronous sends.
    #[test]
    fn the_table_shrinks_when_idle_after_a_burst() {
        let f = InFlight::new(10_000);
        let (now, t): (Instant, Arc<str>) = (Instant::now(), Arc::from("T"));
        let tickets: Vec<Ticket> = (0..5_000)
            .map(|i| {
                f.acquire(&MsgId::new(&format!("{i}")), &t, now, None)
                    .unwrap()
            })
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
        let a = f.acquire(&id("A"), &t, now, None).unwrap();
        let _b = f.acquire(&id("B"), &t, now, None).unwrap();
        assert!(matches!(
            f.acquire(&id("C"), &t, now, None),
            Err(ProducerError::Overloaded {
                in_flight: 2,
                max: 2
            })
        ));
        let t0 = Instant::now();
        assert!(
            f.acquire(&id("C"), &t, now, Some(t0 + Duration::from_millis(30)))
                .is_err()
        );
        assert!(t0.elapsed() >= Duration::from_millis(30));
        f.release(a);
        let open = f.wait_idle(Instant::now() + Duration::from_millis(10));
        assert_eq!(open.len(), 1);
        assert_eq!(open[0].msg_id, "B");
        assert_eq!(open[0].topic, "T");
        assert_eq!(f.len(), 1);
        let ids = |f: &InFlight| {
            let mut v: Vec<String> = f
                .wait_idle(Instant::now())
                .into_iter()
                .map(|p| p.msg_id.into())
                .collect();
            v.sort();
            v
        };
        let long = "K".repeat(80);
        let l = f.acquire(&id(&long), &u, now, None).unwrap();
        assert_eq!(ids(&f), ["B".to_owned(), long.clone()]);
        assert!(
            f.acquire(&id("E"), &u, now, Some(now)).is_err(),
            "still bounded at 2"
        );
        f.release(l);
        let _e = f.acquire(&id("E"), &u, now, None).unwrap();
        assert_eq!(ids(&f), ["B".to_owned(), "E".to_owned()]);
    }
}
