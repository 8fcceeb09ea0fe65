//! The send machine: one send's attempts, retries and deadline as pure logic.
//!
//! It does no I/O and reads no clock. A driver (`sync_send`, `async_send`) asks it for the next [`Step`]
//! with the time now, carries the step out (fetch a route, route and send one attempt), and feeds what
//! happened back in. Every send path is a [`Policy`] of this one machine, so they cannot drift apart: the
//! deadline (route fetch and connect included), the time each attempt gets, which broker a retry avoids,
//! when `possibly_stored` is set, what broker health is told, and which error ends the send are decided
//! here and nowhere else.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rmq_protocol::header::SendMessageResponseHeader;
use rmq_protocol::{RemotingCommand, ResponseCode, acl};
use rmq_remoting::RemotingError;
use rmq_routing::{FailureKind, RouteError};

use crate::error::ProducerError;
use crate::result::SendStatus;

#[cfg(test)]
mod tests;

/// Least time an attempt gets while later attempts are still possible (unless less is left in all).
pub(crate) const MIN_ATTEMPT: Duration = Duration::from_millis(100);

/// What kind of send the machine runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Policy {
    /// Attempts allowed (1: never retried, as ordered and oneway sends).
    pub(crate) attempts: u32,
    /// After a stored-but-degraded status (flush or slave timeout), try another broker while attempts are
    /// left (Java's `retryAnotherBrokerWhenNotStoreOK`).
    pub(crate) retry_not_stored_ok: bool,
}

impl Policy {
    /// Retries on another broker: synchronous, asynchronous and batch sends.
    pub(crate) fn retrying(retry_times: u32, retry_not_stored_ok: bool) -> Policy {
        Policy {
            attempts: 1 + retry_times,
            retry_not_stored_ok,
        }
    }

    /// One attempt: ordered sends (the queue must not change) and oneway sends (as Java).
    pub(crate) fn once() -> Policy {
        Policy {
            attempts: 1,
            retry_not_stored_ok: false,
        }
    }
}

/// What the driver does next.
#[allow(clippy::large_enum_variant)] // lives for one step on the stack; a box would cost an allocation per send
#[derive(Debug)]
pub(crate) enum Step {
    /// The topic has no usable route (`renew` false): fetch it from the name servers within `timeout`,
    /// then call [`SendMachine::on_route_fetched`]. Or (`renew` true) the connection of the last attempt
    /// was refused, lost or told to go away: renew the route from the other endpoints (a failure keeps
    /// the old route and is not the send's), then call [`SendMachine::on_route_fetched`] with `Ok`.
    FetchRoute {
        /// Time left for the fetch.
        timeout: Duration,
        /// A renewal after a connection failure rather than a fetch of a missing route.
        renew: bool,
    },
    /// Route one attempt (avoiding [`SendMachine::avoid`]) and send it with `timeout` (connecting
    /// included), then call [`SendMachine::on_response`] or [`SendMachine::on_written`]; if it cannot be
    /// routed, [`SendMachine::on_unroutable`].
    Attempt {
        /// Time this attempt may take.
        timeout: Duration,
    },
    /// The send is over.
    Done(Result<Receipt, ProducerError>),
}

/// What a successful send produced.
#[allow(clippy::large_enum_variant)] // lives for one step on the stack; a box would cost an allocation per send
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Receipt {
    /// A broker stored the message and said so.
    Stored {
        /// How it was stored.
        status: SendStatus,
        /// The broker's answer.
        header: SendMessageResponseHeader,
        /// The broker that stored it.
        broker: Arc<str>,
        /// Attempts made.
        attempts: u32,
        /// An earlier attempt may have stored the message too (it timed out or lost its connection after
        /// writing, or stored it with a degraded status before this retry).
        possibly_duplicated: bool,
    },
    /// A oneway frame was written; nothing says whether it was stored.
    Written,
}

/// What broker health is told about one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Health {
    /// The broker answered and stored the message, after this latency.
    Success(Duration),
    /// The attempt failed for a reason that counts against the broker.
    Failure(FailureKind, Duration),
    /// Nothing to report (the client's fault, a refusal of this message, or a shutdown).
    Nothing,
}

/// How a send ended, before it is turned into a result (which needs the time).
#[derive(Debug)]
enum End {
    Ok(Receipt),
    /// A failure that no retry can fix.
    Fatal(ProducerError),
    /// `Done` was returned already.
    Reported,
}

/// One send in progress. See the module documentation.
#[derive(Debug)]
pub(crate) struct SendMachine {
    policy: Policy,
    started: Instant,
    deadline: Instant,
    /// Attempts sent (an attempt that could not be routed is given back).
    made: u32,
    /// A route fetch was asked for already (one per send).
    fetched: bool,
    want_fetch: bool,
    /// The last attempt's connection failed: renew the route before anything else.
    want_renew: bool,
    /// The broker of the last failed attempt, which a retry avoids.
    avoid: Option<String>,
    last_err: Option<ProducerError>,
    possibly_stored: bool,
    end: Option<End>,
    /// A deliberate defect, for showing that the model test catches it.
    #[cfg(test)]
    mutant: Option<Mutant>,
}

/// Deliberate defects the model test must catch (`machine/tests.rs`). Never set outside tests.
#[cfg_attr(not(test), allow(dead_code))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mutant {
    /// Attempts go on after the deadline.
    IgnoreDeadline,
    /// One attempt more than the policy allows.
    ExtraAttempt,
    /// Every attempt gets all the time left.
    WholeDeadlineEachAttempt,
    /// A non-retryable broker code is retried.
    RetryFatal,
    /// `possibly_stored` is not recorded.
    ForgetPossiblyStored,
    /// A retry does not avoid the broker that failed.
    NoAvoid,
    /// An ACL refusal is handled as the broker code it is (Java retries codes 1 and 16).
    RetryDenied,
    /// A connection failure does not renew the route.
    NoRenew,
}

/// The broker's refusal of an attempt, as the error a send may end with.
fn broker_error(broker: &str, code: ResponseCode, remark: Option<String>) -> ProducerError {
    ProducerError::Broker {
        broker: broker.to_owned(),
        code,
        remark,
    }
}

impl SendMachine {
    /// A send started at `started` that must end by `started + timeout`.
    pub(crate) fn new(policy: Policy, started: Instant, timeout: Duration) -> SendMachine {
        SendMachine {
            policy,
            started,
            deadline: rmq_remoting::deadline_after(started, timeout),
            made: 0,
            fetched: false,
            want_fetch: false,
            want_renew: false,
            avoid: None,
            last_err: None,
            possibly_stored: false,
            end: None,
            #[cfg(test)]
            mutant: None,
        }
    }

    /// Whether the deliberate defect `m` is switched on (only ever in tests).
    #[inline(always)]
    fn is(&self, m: Mutant) -> bool {
        #[cfg(test)]
        return self.mutant == Some(m);
        #[cfg(not(test))]
        {
            let _ = m;
            false
        }
    }

    /// When the send started.
    pub(crate) fn started(&self) -> Instant {
        self.started
    }

    /// When the send must be over.
    pub(crate) fn deadline(&self) -> Instant {
        self.deadline
    }

    /// The broker a retry should avoid (the last one that failed).
    pub(crate) fn avoid(&self) -> Option<&str> {
        self.avoid.as_deref()
    }

    /// Whether the next step renews the route (the last attempt's connection failed).
    pub(crate) fn wants_renew(&self) -> bool {
        self.want_renew
    }

    /// Attempts sent so far.
    pub(crate) fn made(&self) -> u32 {
        self.made
    }

    /// Whether the send has ended (the next step is `Done`).
    pub(crate) fn is_over(&self) -> bool {
        self.end.is_some()
    }

    /// The next step at `now`.
    pub(crate) fn next(&mut self, now: Instant) -> Step {
        match self.end.replace(End::Reported) {
            Some(End::Ok(receipt)) => return Step::Done(Ok(receipt)),
            Some(End::Fatal(e)) => return Step::Done(Err(self.fail(e, now))),
            Some(End::Reported) => {
                return Step::Done(Err(ProducerError::State("send already completed")));
            }
            None => self.end = None,
        }
        let remaining = self.deadline.saturating_duration_since(now);
        if remaining.is_zero() && !self.is(Mutant::IgnoreDeadline) {
            self.end = Some(End::Reported);
            return Step::Done(Err(self.exhausted(now)));
        }
        if self.want_fetch {
            self.want_fetch = false;
            return Step::FetchRoute {
                timeout: remaining,
                renew: false,
            };
        }
        // Renewed even when no attempt is left: the sends after this one find the new route.
        if self.want_renew && !self.is(Mutant::NoRenew) {
            self.want_renew = false;
            return Step::FetchRoute {
                timeout: remaining,
                renew: true,
            };
        }
        let allowed = self.policy.attempts + u32::from(self.is(Mutant::ExtraAttempt));
        if self.made >= allowed {
            self.end = Some(End::Reported);
            return Step::Done(Err(self.exhausted(now)));
        }
        let left = allowed - self.made;
        self.made += 1;
        let timeout = if self.is(Mutant::WholeDeadlineEachAttempt) {
            remaining
        } else {
            (remaining / left).max(MIN_ATTEMPT).min(remaining)
        };
        Step::Attempt { timeout }
    }

    /// The route fetch asked for by [`Step::FetchRoute`] ended.
    pub(crate) fn on_route_fetched(&mut self, result: Result<(), ProducerError>) {
        if let Err(e) = result {
            self.end = Some(End::Fatal(e));
        }
    }

    /// Ends the send with `e` (the producer is shutting down), keeping what earlier attempts showed.
    pub(crate) fn abort(&mut self, e: ProducerError) {
        if self.end.is_none() {
            self.end = Some(End::Fatal(e));
        }
    }

    /// The attempt of the last [`Step::Attempt`] could not be routed; nothing was sent.
    pub(crate) fn on_unroutable(&mut self, e: RouteError) {
        self.made -= 1;
        let missing = matches!(e, RouteError::NoRoute(_) | RouteError::NoQueue(_));
        if missing && !self.fetched {
            self.fetched = true;
            self.want_fetch = true;
        } else {
            self.end = Some(End::Fatal(e.into()));
        }
    }

    /// The broker `broker` answered (or failed to answer) the last attempt after `latency`. Returns what
    /// broker health should be told.
    pub(crate) fn on_response(
        &mut self,
        broker: &Arc<str>,
        latency: Duration,
        outcome: Result<RemotingCommand, RemotingError>,
    ) -> Health {
        let resp = match outcome {
            Ok(resp) => resp,
            Err(e) => return self.on_transport_error(broker, latency, e),
        };
        let code = resp.response_code();
        if code == ResponseCode::GO_AWAY {
            // The server is shutting down and processed nothing (NettyRemotingAbstract answers GO_AWAY
            // before it runs the request): not possibly stored; retried after the route is renewed (the
            // connection layer dials anew for the next request). Told to health as a connection failure,
            // so later sends leave a draining broker alone instead of dialling it again and again.
            self.want_renew = true;
            self.failed_attempt(broker, broker_error(broker, code, resp.remark));
            return Health::Failure(FailureKind::Connection, latency);
        }
        let Some(status) = SendStatus::from_code(code) else {
            if let Some(refusal) = acl::refusal(code, resp.remark.as_deref())
                && !self.is(Mutant::RetryDenied)
            {
                // Every broker checks the same users and ACLs: another attempt would be refused too,
                // and the broker is not ill.
                self.end = Some(End::Fatal(ProducerError::Denied {
                    broker: broker.to_string(),
                    refusal,
                    code,
                    remark: resp.remark,
                }));
                return Health::Nothing;
            }
            if let Some(m) = rmq_protocol::proxy::type_mismatch(code, resp.remark.as_deref()) {
                // A proxy's message-type check: every attempt would be refused the same way.
                self.end = Some(End::Fatal(ProducerError::MessageTypeMismatch {
                    broker: broker.to_string(),
                    expected: m.expected,
                    actual: m.actual,
                }));
                return Health::Nothing;
            }
            let err = broker_error(broker, code, resp.remark);
            if !code.is_java_retryable() && !self.is(Mutant::RetryFatal) {
                self.end = Some(End::Fatal(err));
                return Health::Nothing;
            }
            self.failed_attempt(broker, err);
            return Health::Failure(FailureKind::Broker, latency);
        };
        let header = match resp.decode_header::<SendMessageResponseHeader>() {
            Ok(h) => h,
            Err(e) => {
                // The broker says it stored the message; only its answer is unreadable. Retrying would
                // duplicate it, so the send ends here, flagged as possibly stored.
                self.possibly_stored = true;
                self.end = Some(End::Fatal(ProducerError::BadResponse {
                    broker: broker.to_string(),
                    code,
                    reason: e.to_string(),
                }));
                return Health::Success(latency);
            }
        };
        if status != SendStatus::SendOk
            && self.policy.retry_not_stored_ok
            && self.made < self.policy.attempts
        {
            self.possibly_stored = !self.is(Mutant::ForgetPossiblyStored);
            self.failed_attempt(broker, broker_error(broker, code, resp.remark));
            return Health::Success(latency);
        }
        self.end = Some(End::Ok(Receipt::Stored {
            status,
            header,
            broker: broker.clone(),
            attempts: self.made,
            possibly_duplicated: self.possibly_stored,
        }));
        Health::Success(latency)
    }

    /// The oneway frame of the last attempt was written to `broker`, or could not be.
    pub(crate) fn on_written(
        &mut self,
        broker: &str,
        latency: Duration,
        outcome: Result<(), RemotingError>,
    ) -> Health {
        match outcome {
            Ok(()) => {
                self.end = Some(End::Ok(Receipt::Written));
                Health::Nothing
            }
            Err(e) => self.on_transport_error(broker, latency, e),
        }
    }

    fn on_transport_error(&mut self, broker: &str, latency: Duration, e: RemotingError) -> Health {
        if !self.is(Mutant::ForgetPossiblyStored) {
            self.possibly_stored |= !e.is_not_sent();
        }
        if matches!(e, RemotingError::Shutdown) {
            self.end = Some(End::Fatal(e.into()));
            return Health::Nothing;
        }
        let kind = if e.is_timeout() {
            FailureKind::Timeout
        } else {
            FailureKind::Connection
        };
        // Refused, lost or in its reconnect backoff: the address may be gone for good (a proxy that
        // died); the route is asked for again from the other endpoints before the next attempt.
        self.want_renew |= e.is_connection();
        self.failed_attempt(broker, e.into());
        Health::Failure(kind, latency)
    }

    /// An attempt failed in a way another broker may not: remember it; the next step decides.
    fn failed_attempt(&mut self, broker: &str, err: ProducerError) {
        if !self.is(Mutant::NoAvoid) {
            self.avoid = Some(broker.to_owned());
        }
        self.last_err = Some(err);
    }

    /// The error ending a send on `last`: `last` itself when it is the whole story (at most one attempt,
    /// and it says as much about a possible store as the send knows), else wrapped with the attempts.
    fn fail(&mut self, last: ProducerError, now: Instant) -> ProducerError {
        if self.made <= 1 && last.possibly_stored() == self.possibly_stored {
            return last;
        }
        self.last_err = Some(last);
        self.exhausted(now)
    }

    fn exhausted(&mut self, now: Instant) -> ProducerError {
        let last =
            self.last_err
                .take()
                .unwrap_or(ProducerError::Remoting(RemotingError::Timeout {
                    addr: String::new(),
                    opaque: 0,
                    after: self.deadline.saturating_duration_since(self.started),
                }));
        ProducerError::AttemptsExhausted {
            attempts: self.made,
            elapsed: now.saturating_duration_since(self.started),
            last: Box::new(last),
            possibly_stored: self.possibly_stored,
        }
    }
}
