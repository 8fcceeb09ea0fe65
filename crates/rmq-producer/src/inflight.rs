//! The asynchronous sends in flight: the bound on their number (`async_send_semaphore`) and what each one
//! is, so [`crate::Producer::flush`] and shutdown can wait for them and say which are still open.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::error::ProducerError;

/// An asynchronous send that had not completed when [`crate::Producer::flush`] returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingSend {
    /// The message's UNIQ_KEY (a batch: its keys, comma-separated).
    pub msg_id: String,
    /// Its topic.
    pub topic: String,
    /// How long it had been in flight.
    pub age: Duration,
}

/// A message id kept without allocating when it fits (a UNIQ_KEY is 32 characters).
#[derive(Debug)]
enum Id {
    Inline(u8, [u8; 32]),
    Long(String),
}

impl Id {
    fn new(id: &str) -> Id {
        match <[u8; 32]>::try_from(id.as_bytes()) {
            Ok(b) => Id::Inline(32, b),
            Err(_) if id.len() < 32 => {
                let mut b = [0u8; 32];
                b[..id.len()].copy_from_slice(id.as_bytes());
                Id::Inline(id.len() as u8, b)
            }
            Err(_) => Id::Long(id.to_owned()),
        }
    }

    fn to_owned_string(&self) -> String {
        match self {
            Id::Inline(n, b) => String::from_utf8_lossy(&b[..usize::from(*n)]).into_owned(),
            Id::Long(s) => s.clone(),
        }
    }
}

#[derive(Debug)]
struct Open {
    msg_id: Id,
    topic: Arc<str>,
    started: Instant,
}

#[derive(Debug, Default)]
struct Table {
    next: u64,
    open: HashMap<u64, Open>,
    /// Topic names shared by the entries (one allocation per topic, not per send).
    topics: HashMap<Box<str>, Arc<str>>,
}

impl Table {
    fn topic(&mut self, topic: &str) -> Arc<str> {
        if let Some(t) = self.topics.get(topic) {
            return t.clone();
        }
        if self.topics.len() >= 4096 {
            // Bounded: a producer writing to ever new topics must not grow this without end.
            self.topics.clear();
        }
        let t: Arc<str> = Arc::from(topic);
        self.topics.insert(topic.into(), t.clone());
        t
    }
}

/// A place in the table, given back with [`InFlight::release`].
#[derive(Debug)]
pub(crate) struct Ticket(u64);

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
        msg_id: &str,
        topic: &str,
        started: Instant,
        deadline: Option<Instant>,
    ) -> Result<Ticket, ProducerError> {
        let mut t = self.table.lock();
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
        let topic = t.topic(topic);
        t.open.insert(
            id,
            Open {
                msg_id: Id::new(msg_id),
                topic,
                started,
            },
        );
        Ok(Ticket(id))
    }

    /// Gives a place back (the send completed).
    pub(crate) fn release(&self, ticket: Ticket) {
        self.table.lock().open.remove(&ticket.0);
        self.cond.notify_all();
    }

    /// Sends in flight.
    pub(crate) fn len(&self) -> usize {
        self.table.lock().open.len()
    }

    /// Waits until nothing is in flight or `deadline` passes; returns the sends still open, oldest first.
    pub(crate) fn wait_idle(&self, deadline: Instant) -> Vec<PendingSend> {
        let mut t = self.table.lock();
        while !t.open.is_empty() {
            if self.cond.wait_until(&mut t, deadline).timed_out() {
                break;
            }
        }
        let now = Instant::now();
        let mut open: Vec<PendingSend> = t
            .open
            .values()
            .map(|o| PendingSend {
                msg_id: o.msg_id.to_owned_string(),
                topic: o.topic.to_string(),
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

    #[test]
    fn bound_list_and_wait() {
        let f = InFlight::new(2);
        let now = Instant::now();
        let a = f.acquire("A", "T", now, None).unwrap();
        let _b = f.acquire("B", "T", now, None).unwrap();
        assert!(matches!(
            f.acquire("C", "T", now, None),
            Err(ProducerError::Overloaded {
                in_flight: 2,
                max: 2
            })
        ));
        let t0 = Instant::now();
        assert!(
            f.acquire("C", "T", now, Some(t0 + Duration::from_millis(30)))
                .is_err()
        );
        assert!(t0.elapsed() >= Duration::from_millis(30));
        f.release(a);
        let open = f.wait_idle(Instant::now() + Duration::from_millis(10));
        assert_eq!(open.len(), 1);
        assert_eq!(open[0].msg_id, "B");
        assert_eq!(f.len(), 1);
        // Ids of every length come back as given (32 characters and shorter are kept inline).
        let long = "K".repeat(40);
        let exact = "0123456789ABCDEF0123456789ABCDEF";
        let ids = |f: &InFlight| {
            let mut v: Vec<String> = f
                .wait_idle(Instant::now())
                .into_iter()
                .map(|p| p.msg_id)
                .collect();
            v.sort();
            v
        };
        let l = f.acquire(&long, "U", now, None).unwrap();
        assert_eq!(ids(&f), ["B".to_owned(), long.clone()]);
        assert!(
            f.acquire(exact, "U", now, Some(now)).is_err(),
            "still bounded at 2"
        );
        f.release(l);
        let _e = f.acquire(exact, "U", now, None).unwrap();
        assert_eq!(ids(&f), [exact.to_owned(), "B".to_owned()]);
    }
}
