//! Auto-batch gathering: which messages wait together, and when a gathering is due to go. No I/O and
//! no clock: time is passed in, and the caller sends what comes out (see `auto_batch`).
//!
//! Messages gather by [`Key`] (topic, `WAIT`, oneway or answered, timeout). A gathering goes when the
//! next message would take it past its limits (it goes at once, and the message opens the next one):
//! `max_body` bytes of bodies (as Java's `batchMaxBytes` counts) and `max_record` bytes of records (the
//! request's body, within what a broker stores); when it reaches them; or when it is due (its linger, or
//! earlier when a member must be sent sooner; the caller's timer asks with [`Gatherer::take`]). The
//! producer's gatherings hold [`Member`]s: an accepted message with its outcome and its place.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::inflight::Ticket;
use crate::outcome::Outcome;
use crate::request::Prepared;

/// What messages must share to go in one batch request.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Key {
    /// The topic as sent (in the namespace, if any).
    pub(crate) topic: Arc<str>,
    /// The messages' `WAIT` (the batch carries one).
    pub(crate) wait: bool,
    /// Oneway sends (answered and oneway sends never share a request).
    pub(crate) oneway: bool,
    /// The sends' timeout: the batch gets the time of its earliest member, so a send with a shorter
    /// timeout than the others' never cuts theirs.
    pub(crate) timeout: Duration,
}

/// A message's size in a gathering.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Size {
    /// Its body, which the limit of a gathering counts (as Java's `batchMaxBytes`).
    pub(crate) body: usize,
    /// Its record in the batch request (body, properties, framing), kept within the request limit.
    pub(crate) record: usize,
}

/// Messages waiting to go together.
#[derive(Debug)]
pub(crate) struct Gathering<T> {
    /// What they share.
    pub(crate) key: Key,
    /// Tells this gathering from the later ones of the same key (a timer names the one it was set
    /// for).
    pub(crate) id: u64,
    /// When it goes at the latest: its linger's end, or earlier when a member must go sooner.
    pub(crate) due: Instant,
    /// Their bodies' bytes.
    pub(crate) body_bytes: usize,
    /// Their records' bytes: the batch request's body.
    pub(crate) record_bytes: usize,
    /// The messages, in the order they came.
    pub(crate) items: Vec<T>,
}

impl<T> Gathering<T> {
    fn fits(&self, size: Size, limits: &Limits) -> bool {
        self.body_bytes + size.body <= limits.max_body
            && self.record_bytes + size.record <= limits.max_record
    }

    fn is_full(&self, limits: &Limits) -> bool {
        self.body_bytes >= limits.max_body || self.record_bytes >= limits.max_record
    }
}

/// What [`Gatherer::add`] asks the caller to do.
#[derive(Debug)]
pub(crate) struct Added<T> {
    /// Gatherings to send now, in this order (full, or displaced by a message that did not fit).
    pub(crate) ready: Vec<Gathering<T>>,
    /// A gathering was opened or is due earlier: ask [`Gatherer::take`] for it (its key and this id) at
    /// this time.
    pub(crate) timer: Option<(u64, Instant)>,
}

/// How long a gathering waits, and how much it holds.
#[derive(Clone, Copy, Debug)]
struct Limits {
    linger: Duration,
    max_body: usize,
    max_record: usize,
}

/// The open gatherings, one per key.
#[derive(Debug)]
pub(crate) struct Gatherer<T> {
    limits: Limits,
    open: HashMap<Key, Gathering<T>>,
    next_id: u64,
}

impl<T> Gatherer<T> {
    /// Gatherings that wait at most `linger`, and hold at most `max_body` bytes of bodies in at most
    /// `max_record` bytes of records.
    pub(crate) fn new(linger: Duration, max_body: usize, max_record: usize) -> Gatherer<T> {
        Gatherer {
            limits: Limits {
                linger,
                max_body,
                max_record,
            },
            open: HashMap::new(),
            next_id: 0,
        }
    }

    /// Adds `item` (of `size`, to be sent by `latest` at the latest) to the gathering of `key` at `now`.
    pub(crate) fn add(
        &mut self,
        key: Key,
        item: T,
        size: Size,
        now: Instant,
        latest: Instant,
    ) -> Added<T> {
        let limits = self.limits;
        let mut ready = Vec::new();
        if let Some(g) = self.open.get_mut(&key) {
            if g.fits(size, &limits) {
                g.body_bytes += size.body;
                g.record_bytes += size.record;
                g.items.push(item);
                let mut timer = None;
                if g.is_full(&limits) {
                    ready.extend(self.open.remove(&key));
                } else if latest < g.due {
                    // A member with less time: the gathering goes earlier.
                    g.due = latest;
                    timer = Some((g.id, latest));
                }
                return Added { ready, timer };
            }
            // It would not fit: the gathering goes, and this message opens the next.
            ready.extend(self.open.remove(&key));
        }
        let id = self.next_id;
        self.next_id += 1;
        let due = now.checked_add(limits.linger).unwrap_or(now).min(latest);
        let g = Gathering {
            key: key.clone(),
            id,
            due,
            body_bytes: size.body,
            record_bytes: size.record,
            items: vec![item],
        };
        if g.is_full(&limits) {
            // Alone it fills a gathering: it goes at once, after the one it displaced.
            ready.push(g);
            return Added { ready, timer: None };
        }
        self.open.insert(key, g);
        Added {
            ready,
            timer: Some((id, due)),
        }
    }

    /// The gathering of `key` opened with `id`, if it is still open (its linger ended).
    pub(crate) fn take(&mut self, key: &Key, id: u64) -> Option<Gathering<T>> {
        match self.open.get(key) {
            Some(g) if g.id == id => self.open.remove(key),
            _ => None,
        }
    }

    /// Every open gathering (a flush or a shutdown sends them now).
    pub(crate) fn drain(&mut self) -> Vec<Gathering<T>> {
        let mut all: Vec<Gathering<T>> = self.open.drain().map(|(_, g)| g).collect();
        all.sort_by_key(|g| g.id);
        all
    }

    /// Messages waiting in open gatherings.
    #[cfg(test)]
    pub(crate) fn waiting(&self) -> usize {
        self.open.values().map(|g| g.items.len()).sum()
    }
}

/// One caller's message waiting in (or sent with) an auto-batch.
pub(crate) struct Member {
    /// The message, prepared alone (its UNIQ_KEY, properties, body).
    pub(crate) prepared: Prepared,
    /// Where its outcome goes.
    pub(crate) outcome: Outcome,
    /// Its place in the in-flight table.
    pub(crate) ticket: Ticket,
    /// When it was accepted.
    pub(crate) started: Instant,
    /// When it must be over.
    pub(crate) deadline: Instant,
}

impl std::fmt::Debug for Member {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Member")
            .field("msg_id", self.prepared.uniq_key())
            .field("started", &self.started)
            .finish_non_exhaustive()
    }
}

/// The producer's open gatherings.
pub(crate) type Gatherings = Mutex<Gatherer<Member>>;

/// The gatherings of a producer configured with `auto_batch` (none without).
pub(crate) fn gatherings(config: &crate::ProducerConfig) -> Option<Gatherings> {
    config.auto_batch.then(|| {
        Mutex::new(Gatherer::new(
            config.auto_batch_linger,
            config.auto_batch_max_bytes,
            config.max_message_size,
        ))
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn key(topic: &str) -> Key {
        Key {
            topic: Arc::from(topic),
            wait: true,
            oneway: false,
            timeout: Duration::from_secs(3),
        }
    }

    const MS: Duration = Duration::from_millis(1);

    /// Members with all the time they want.
    fn far() -> Instant {
        Instant::now() + Duration::from_secs(3600)
    }

    /// A message whose record is its body plus 10 bytes.
    fn size(body: usize) -> Size {
        Size {
            body,
            record: body + 10,
        }
    }

    fn items<T: Clone>(ready: &[Gathering<T>]) -> Vec<Vec<T>> {
        ready.iter().map(|g| g.items.clone()).collect()
    }

    #[test]
    fn a_gathering_opens_with_its_linger_and_is_taken_once() {
        let t0 = Instant::now();
        let mut g = Gatherer::new(5 * MS, 100, 1000);
        let a = g.add(key("T"), 1, size(10), t0, far());
        assert!(a.ready.is_empty());
        let (id, due) = a.timer.unwrap();
        assert_eq!(due, t0 + 5 * MS);
        let b = g.add(key("T"), 2, size(10), t0 + MS, far());
        assert!(b.ready.is_empty() && b.timer.is_none());
        let taken = g.take(&key("T"), id).unwrap();
        assert_eq!(taken.items, vec![1, 2]);
        assert_eq!((taken.body_bytes, taken.record_bytes), (20, 40));
        assert!(g.take(&key("T"), id).is_none());
        assert_eq!(g.waiting(), 0);
    }

    #[test]
    fn keys_gather_apart() {
        let t0 = Instant::now();
        let mut g = Gatherer::new(5 * MS, 100, 1000);
        let mut oneway = key("T");
        oneway.oneway = true;
        let mut unwaited = key("T");
        unwaited.wait = false;
        let mut shorter = key("T");
        shorter.timeout = Duration::from_millis(500);
        for (i, k) in [key("T"), key("U"), oneway, unwaited, shorter]
            .into_iter()
            .enumerate()
        {
            assert!(g.add(k, i, size(10), t0, far()).timer.is_some());
        }
        assert_eq!(g.waiting(), 5);
        assert_eq!(g.drain().len(), 5);
    }

    #[test]
    fn a_message_that_would_not_fit_sends_the_gathering_and_opens_the_next() {
        let t0 = Instant::now();
        let mut g = Gatherer::new(5 * MS, 100, 1000);
        let (first, _) = g.add(key("T"), 1, size(60), t0, far()).timer.unwrap();
        let a = g.add(key("T"), 2, size(60), t0 + MS, far());
        assert_eq!(items(&a.ready), vec![vec![1]]);
        assert_eq!(a.ready[0].id, first);
        let (second, due) = a.timer.unwrap();
        assert_ne!(second, first);
        assert_eq!(due, t0 + 6 * MS);
        // The old timer finds nothing; the new one finds message 2.
        assert!(g.take(&key("T"), first).is_none());
        assert_eq!(g.take(&key("T"), second).unwrap().items, vec![2]);
    }

    #[test]
    fn a_full_gathering_goes_at_once_by_bodies_or_by_records() {
        let t0 = Instant::now();
        let mut g = Gatherer::new(5 * MS, 100, 1000);
        g.add(key("T"), 1, size(50), t0, far());
        let a = g.add(key("T"), 2, size(50), t0, far());
        assert_eq!(items(&a.ready), vec![vec![1, 2]]);
        assert!(a.timer.is_none());
        assert_eq!(g.waiting(), 0);
        // A message as large as the limit goes alone at once.
        let b = g.add(key("T"), 3, size(100), t0, far());
        assert_eq!(items(&b.ready), vec![vec![3]]);
        assert_eq!(g.waiting(), 0);
        // Records (large properties) fill a request before bodies do.
        let mut g = Gatherer::new(5 * MS, 100, 300);
        let big = Size {
            body: 10,
            record: 200,
        };
        g.add(key("T"), 4, big, t0, far());
        let c = g.add(key("T"), 5, big, t0, far());
        assert_eq!(
            items(&c.ready),
            vec![vec![4]],
            "400 bytes of records do not fit in 300"
        );
    }

    #[test]
    fn a_full_message_behind_a_gathering_goes_after_it() {
        let t0 = Instant::now();
        let mut g = Gatherer::new(5 * MS, 100, 1000);
        g.add(key("T"), 1, size(10), t0, far());
        let a = g.add(key("T"), 2, size(100), t0 + MS, far());
        assert_eq!(items(&a.ready), vec![vec![1], vec![2]], "in the order sent");
        assert!(a.timer.is_none());
        assert_eq!(g.waiting(), 0);
    }

    #[test]
    fn a_member_with_less_time_brings_the_gathering_forward() {
        let t0 = Instant::now();
        let mut g = Gatherer::new(50 * MS, 100, 1000);
        let (id, due) = g.add(key("T"), 1, size(10), t0, far()).timer.unwrap();
        assert_eq!(due, t0 + 50 * MS);
        // One with more time changes nothing; one due sooner sets an earlier timer for the same id.
        assert!(
            g.add(key("T"), 2, size(10), t0, t0 + 60 * MS)
                .timer
                .is_none()
        );
        assert_eq!(
            g.add(key("T"), 3, size(10), t0, t0 + 20 * MS).timer,
            Some((id, t0 + 20 * MS))
        );
        // A first member with little time opens a gathering due then.
        let (_, due) = g.add(key("U"), 4, size(10), t0, t0 + 5 * MS).timer.unwrap();
        assert_eq!(due, t0 + 5 * MS);
    }

    #[test]
    fn drain_gives_every_gathering_in_opening_order() {
        let t0 = Instant::now();
        let mut g = Gatherer::new(5 * MS, 100, 1000);
        for (i, t) in ["C", "A", "B"].into_iter().enumerate() {
            g.add(key(t), i, size(10), t0, far());
        }
        let order: Vec<usize> = g.drain().into_iter().map(|g| g.items[0]).collect();
        assert_eq!(order, vec![0, 1, 2]);
        assert_eq!(g.waiting(), 0);
    }
}
