//! The synchronous driver: runs a send's steps on the calling thread, blocking on each.

use std::time::Instant;

use crate::core::Core;
use crate::error::ProducerError;
use crate::result::SendResult;
use crate::send::{Mode, Plan, SendJob};

/// Runs `job` to its end. `Ok(None)`: a oneway frame was written.
pub(crate) fn run(core: &Core, mut job: SendJob<'_>) -> Result<Option<SendResult>, ProducerError> {
    // The clock is read once per step: the end of one is the start of the next.
    let mut now = Instant::now();
    loop {
        match job.plan(core, now) {
            Plan::Fetch(fetch) => {
                job.fetch_route(core, fetch);
                now = Instant::now();
            }
            Plan::Attempt(a) => {
                let sent_at = now;
                let addr = a.routing.broker_addr();
                match job.mode() {
                    Mode::Answered => {
                        let r = core.remoting().invoke_sync(addr, a.request, a.timeout);
                        now = Instant::now();
                        job.on_response(core, &a.routing, (sent_at, now), r);
                    }
                    Mode::Oneway => {
                        let r = core.remoting().invoke_oneway(addr, a.request, a.timeout);
                        now = Instant::now();
                        job.on_written(core, &a.routing, (sent_at, now), r);
                    }
                }
            }
            Plan::Done(r) => return job.finish(core, r, now),
        }
    }
}

/// [`run`] for a send that ends with a result.
pub(crate) fn run_answered(core: &Core, job: SendJob<'_>) -> Result<SendResult, ProducerError> {
    crate::outcome::answered(run(core, job))
}
