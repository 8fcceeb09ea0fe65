//! Auto-batch gathering: which messages wait together, and when a gathering is due to go. No I/O and
//! no clock: time is passed in, and the caller sends what comes out (see `auto_batch`).
//!
//! Messages gather by [`Key`] (topic, `WAIT`, oneway or answered). A gathering goes when the next
//! message would take it past `max_bytes` (it goes at once, and the message opens the next one), when
//! it reaches `max_bytes`, or when it is due (`since + linger`, or earlier when a member must be sent
//! sooner; the caller's timer asks with [`Gatherer::take`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What messages must share to go in one batch request.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Key {
    /// The topic as sent (in the namespace, if any).
    pub(crate) topic: Arc<str>,
    /// The messages' `WAIT` (the batch carries one).
    pub(crate) wait: bool,
    /// Oneway sends (answered and oneway sends never share a request).
    pub(crate) oneway: bool,
}

/// Messages waiting to go together.
#[derive(Debug)]
pub(crate) struct Gathering<T> {
    /// What they share.
    pub(crate) key: Key,
    /// Tells this gathering from the later ones of the same key (a linger timer names the one it was
    /// set for).
    pub(crate) id: u64,
    /// When its first message came.
    pub(crate) since: Instant,
    /// When it goes at the latest: its linger's end, or earlier when a member has less time.
    pub(crate) due: Instant,
    /// Their encoded size as batch records.
    pub(crate) bytes: usize,
    /// The messages, in the order they came.
    pub(crate) items: Vec<T>,
}

/// What [`Gatherer::add`] asks the caller to do.
#[derive(Debug)]
pub(crate) struct Added<T> {
    /// A gathering to send now (it was full).
    pub(crate) ready: Option<Gathering<T>>,
    /// A gathering was opened or is due earlier: ask [`Gatherer::take`] for it (its key and this id) at
    /// this time.
    pub(crate) timer: Option<(u64, Instant)>,
}

/// The open gatherings, one per key.
#[derive(Debug)]
pub(crate) struct Gatherer<T> {
    linger: Duration,
    max_bytes: usize,
    open: HashMap<Key, Gathering<T>>,
    next_id: u64,
}

impl<T> Gatherer<T> {
    /// Gatherings that wait at most `linger` and hold at most `max_bytes` of records.
    pub(crate) fn new(linger: Duration, max_bytes: usize) -> Gatherer<T> {
        Gatherer {
            linger,
            max_bytes,
            open: HashMap::new(),
            next_id: 0,
        }
    }

    /// Adds `item` (a record of `bytes`, to be sent by `latest` at the latest) to the gathering of `key`
    /// at `now`.
    pub(crate) fn add(
        &mut self,
        key: Key,
        item: T,
        bytes: usize,
        now: Instant,
        latest: Instant,
    ) -> Added<T> {
        let mut ready = None;
        if let Some(g) = self.open.get_mut(&key) {
            if g.bytes + bytes <= self.max_bytes {
                g.bytes += bytes;
                g.items.push(item);
                let mut timer = None;
                if g.bytes >= self.max_bytes {
                    ready = self.open.remove(&key);
                } else if latest < g.due {
                    // A member with less time: the gathering goes earlier.
                    g.due = latest;
                    timer = Some((g.id, latest));
                }
                return Added { ready, timer };
            }
            // It would not fit: the gathering goes, and this message opens the next.
            ready = self.open.remove(&key);
        }
        let id = self.next_id;
        self.next_id += 1;
        let due = now.checked_add(self.linger).unwrap_or(now).min(latest);
        let g = Gathering {
            key: key.clone(),
            id,
            since: now,
            due,
            bytes,
            items: vec![item],
        };
        if bytes >= self.max_bytes {
            // Alone it fills a gathering: it goes at once (after the one it displaced).
            return match ready {
                None => Added {
                    ready: Some(g),
                    timer: None,
                },
                Some(before) => {
                    // Two to send: keep this one open for the caller's timer, due now.
                    self.open.insert(key, g);
                    Added {
                        ready: Some(before),
                        timer: Some((id, now)),
                    }
                }
            };
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn key(topic: &str) -> Key {
        Key {
            topic: Arc::from(topic),
            wait: true,
            oneway: false,
        }
    }

    const MS: Duration = Duration::from_millis(1);

    /// Members with all the time they want.
    fn far() -> Instant {
        Instant::now() + Duration::from_secs(3600)
    }

    #[test]
    fn a_gathering_opens_with_its_linger_and_is_taken_once() {
        let t0 = Instant::now();
        let mut g = Gatherer::new(5 * MS, 100);
        let a = g.add(key("T"), 1, 10, t0, far());
        assert!(a.ready.is_none());
        let (id, due) = a.timer.unwrap();
        assert_eq!(due, t0 + 5 * MS);
        let b = g.add(key("T"), 2, 10, t0 + MS, far());
        assert!(b.ready.is_none() && b.timer.is_none());
        let taken = g.take(&key("T"), id).unwrap();
        assert_eq!(taken.items, vec![1, 2]);
        assert_eq!((taken.bytes, taken.since), (20, t0));
        assert!(g.take(&key("T"), id).is_none());
        assert_eq!(g.waiting(), 0);
    }

    #[test]
    fn keys_gather_apart() {
        let t0 = Instant::now();
        let mut g = Gatherer::new(5 * MS, 100);
        let mut other = key("T");
        other.oneway = true;
        let mut unwaited = key("T");
        unwaited.wait = false;
        for (i, k) in [key("T"), key("U"), other, unwaited]
            .into_iter()
            .enumerate()
        {
            assert!(g.add(k, i, 10, t0, far()).timer.is_some());
        }
        assert_eq!(g.waiting(), 4);
        assert_eq!(g.drain().len(), 4);
    }

    #[test]
    fn a_message_that_would_not_fit_sends_the_gathering_and_opens_the_next() {
        let t0 = Instant::now();
        let mut g = Gatherer::new(5 * MS, 100);
        let (first, _) = g.add(key("T"), 1, 60, t0, far()).timer.unwrap();
        let a = g.add(key("T"), 2, 60, t0 + MS, far());
        let ready = a.ready.unwrap();
        assert_eq!((ready.id, ready.items), (first, vec![1]));
        let (second, due) = a.timer.unwrap();
        assert_ne!(second, first);
        assert_eq!(due, t0 + 6 * MS);
        // The old timer finds nothing; the new one finds message 2.
        assert!(g.take(&key("T"), first).is_none());
        assert_eq!(g.take(&key("T"), second).unwrap().items, vec![2]);
    }

    #[test]
    fn a_full_gathering_goes_at_once() {
        let t0 = Instant::now();
        let mut g = Gatherer::new(5 * MS, 100);
        g.add(key("T"), 1, 50, t0, far());
        let a = g.add(key("T"), 2, 50, t0, far());
        assert_eq!(a.ready.unwrap().items, vec![1, 2]);
        assert!(a.timer.is_none());
        assert_eq!(g.waiting(), 0);
        // A message as large as the limit goes alone at once.
        let b = g.add(key("T"), 3, 100, t0, far());
        assert_eq!(b.ready.unwrap().items, vec![3]);
        assert_eq!(g.waiting(), 0);
    }

    #[test]
    fn a_full_message_behind_a_gathering_is_due_now() {
        let t0 = Instant::now();
        let mut g = Gatherer::new(5 * MS, 100);
        g.add(key("T"), 1, 10, t0, far());
        let a = g.add(key("T"), 2, 100, t0 + MS, far());
        assert_eq!(a.ready.unwrap().items, vec![1]);
        let (id, due) = a.timer.unwrap();
        assert_eq!(due, t0 + MS);
        assert_eq!(g.take(&key("T"), id).unwrap().items, vec![2]);
    }

    #[test]
    fn a_member_with_less_time_brings_the_gathering_forward() {
        let t0 = Instant::now();
        let mut g = Gatherer::new(50 * MS, 100);
        let (id, due) = g.add(key("T"), 1, 10, t0, far()).timer.unwrap();
        assert_eq!(due, t0 + 50 * MS);
        // One with more time changes nothing; one due sooner sets an earlier timer for the same id.
        assert!(g.add(key("T"), 2, 10, t0, t0 + 60 * MS).timer.is_none());
        assert_eq!(
            g.add(key("T"), 3, 10, t0, t0 + 20 * MS).timer,
            Some((id, t0 + 20 * MS))
        );
        // A first member with little time opens a gathering due then.
        let (_, due) = g.add(key("U"), 4, 10, t0, t0 + 5 * MS).timer.unwrap();
        assert_eq!(due, t0 + 5 * MS);
    }

    #[test]
    fn drain_gives_every_gathering_in_opening_order() {
        let t0 = Instant::now();
        let mut g = Gatherer::new(5 * MS, 100);
        for (i, t) in ["C", "A", "B"].into_iter().enumerate() {
            g.add(key(t), i, 10, t0, far());
        }
        let order: Vec<usize> = g.drain().into_iter().map(|g| g.items[0]).collect();
        assert_eq!(order, vec![0, 1, 2]);
        assert_eq!(g.waiting(), 0);
    }
}
