//! Backpressure: a bound on requests (and bytes, for async and oneway sends) in flight across a client.

use std::time::Instant;

use parking_lot::{Condvar, Mutex};

use crate::error::RemotingError;

/// What completing a request hands back to the in-flight accounting.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Permit {
    pub(crate) bytes: usize,
}

/// What to do when the in-flight bound is reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum OverloadPolicy {
    /// Block the caller until room frees up or its deadline passes, then fail with `Overloaded`.
    #[default]
    Block,
    /// Fail at once with `Overloaded`.
    Fail,
}

#[derive(Debug)]
pub(crate) struct InFlight {
    state: Mutex<(usize, usize)>,
    cond: Condvar,
    max: usize,
    max_bytes: usize,
    policy: OverloadPolicy,
}

impl InFlight {
    pub(crate) fn new(max: usize, max_bytes: usize, policy: OverloadPolicy) -> Self {
        InFlight {
            state: Mutex::new((0, 0)),
            cond: Condvar::new(),
            max,
            max_bytes,
            policy,
        }
    }

    /// Takes room for one request of `bytes` bytes (0 for sync calls), waiting until `deadline` under
    /// [`OverloadPolicy::Block`]. A single request larger than the byte limit is let through alone.
    pub(crate) fn acquire(&self, bytes: usize, deadline: Instant) -> Result<Permit, RemotingError> {
        let mut st = self.state.lock();
        loop {
            let fits_bytes = st.1 == 0 || st.1 + bytes <= self.max_bytes;
            if st.0 < self.max && fits_bytes {
                st.0 += 1;
                st.1 += bytes;
                return Ok(Permit { bytes });
            }
            let err = RemotingError::Overloaded {
                in_flight: st.0,
                in_flight_bytes: st.1,
                max: self.max,
                max_bytes: self.max_bytes,
            };
            if self.policy == OverloadPolicy::Fail
                || self.cond.wait_until(&mut st, deadline).timed_out()
            {
                // One last look: room may have freed exactly at the deadline.
                if st.0 < self.max && (st.1 == 0 || st.1 + bytes <= self.max_bytes) {
                    continue;
                }
                return Err(err);
            }
        }
    }

    pub(crate) fn release(&self, permit: Permit) {
        let mut st = self.state.lock();
        st.0 = st.0.saturating_sub(1);
        st.1 = st.1.saturating_sub(permit.bytes);
        drop(st);
        self.cond.notify_one();
    }

    /// Requests and bytes in flight.
    pub(crate) fn current(&self) -> (usize, usize) {
        *self.state.lock()
    }
}
