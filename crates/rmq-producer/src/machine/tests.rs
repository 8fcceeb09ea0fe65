//! Model-based property test of the send machine: random policies, timeouts and scripts of what each
//! attempt meets (stored, degraded, refused, timed out, connection lost, unroutable, route fetch failed),
//! run through the machine and compared with a plain model of the specification, step by step. A second
//! test switches on each deliberate defect ([`Mutant`]) and shows that the property catches it.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use rmq_protocol::{RemotingCommand, ResponseCode};
use rmq_remoting::RemotingError;
use rmq_routing::{FailureKind, RouteError};
use rmq_testkit::{error, send_ok};

use super::{Health, MIN_ATTEMPT, Mutant, Policy, Receipt, SendMachine, Step};
use crate::error::ProducerError;
use crate::result::SendStatus;

/// What one attempt meets.
#[derive(Clone, Debug)]
enum Event {
    /// The broker stored it with this status.
    Stored(SendStatus, u64),
    /// SUCCESS with a header that cannot be read.
    BadHeader(u64),
    /// A code Java retries on (SYSTEM_BUSY).
    Retryable(u64),
    /// A code no retry fixes (MESSAGE_ILLEGAL).
    Fatal(u64),
    /// An ACL refusal (code 16 on 5.x, or code 1 with an AclException on 4.x; both retryable codes to
    /// Java).
    Denied(bool),
    /// No answer within the attempt's time.
    Timeout,
    /// The connection died after the request was written.
    Lost(u64),
    /// The connect was refused (nothing written).
    Refused(u64),
    /// The server answered GO_AWAY (shutting down; the request was not processed).
    GoAway(u64),
    /// The client shut down under the attempt.
    Shutdown,
    /// No queue could be chosen; `missing`: because the route is missing (a fetch is due), which then
    /// succeeds (`Some(ms)`) or fails (`None`).
    Unroutable { missing: bool, fetch: Option<u64> },
}

fn event() -> impl Strategy<Value = Event> {
    let status = prop_oneof![
        3 => Just(SendStatus::SendOk),
        1 => Just(SendStatus::FlushDiskTimeout),
        1 => Just(SendStatus::SlaveNotAvailable),
    ];
    let ms = 0u64..400;
    prop_oneof![
        4 => (status, ms.clone()).prop_map(|(s, l)| Event::Stored(s, l)),
        1 => ms.clone().prop_map(Event::BadHeader),
        4 => ms.clone().prop_map(Event::Retryable),
        1 => ms.clone().prop_map(Event::Fatal),
        1 => any::<bool>().prop_map(Event::Denied),
        3 => Just(Event::Timeout),
        2 => ms.clone().prop_map(Event::Lost),
        2 => ms.clone().prop_map(Event::Refused),
        1 => ms.clone().prop_map(Event::GoAway),
        1 => Just(Event::Shutdown),
        2 => (any::<bool>(), proptest::option::weighted(0.8, ms)).prop_map(|(missing, fetch)| {
            Event::Unroutable { missing, fetch }
        }),
    ]
}

#[derive(Clone, Debug)]
struct Case {
    policy: Policy,
    timeout: Duration,
    events: Vec<Event>,
}

fn case() -> impl Strategy<Value = Case> {
    (
        1u32..5,
        any::<bool>(),
        prop_oneof![50u64..400, 400u64..5000],
        prop::collection::vec(event(), 12),
    )
        .prop_map(|(attempts, retry_not_stored_ok, timeout, events)| Case {
            policy: Policy {
                attempts,
                retry_not_stored_ok,
            },
            timeout: Duration::from_millis(timeout),
            events,
        })
}

/// How the model says a send ends.
#[derive(Debug, PartialEq, Eq)]
enum End {
    Stored {
        attempts: u32,
        possibly_duplicated: bool,
    },
    /// A failure no retry fixes: the error at the bottom of the result.
    Fatal {
        kind: &'static str,
        sent: u32,
        possibly_stored: bool,
    },
    Exhausted {
        sent: u32,
        possibly_stored: bool,
    },
}

/// One observed interaction, in order.
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    Fetch,
    Renew,
    Attempt { timeout: Duration },
    Health(Health),
    End(End),
}

/// The specification, written plainly: a loop over the events.
fn model(c: &Case) -> Vec<Seen> {
    let mut seen = Vec::new();
    let (mut t, deadline) = (Duration::ZERO, c.timeout);
    let (mut sent, mut fetched, mut ps, mut renew) = (0u32, false, false, false);
    let mut events = c.events.iter();
    let end = loop {
        // A connection failure renews the route first, while time is left, attempts left or not.
        if renew && t < deadline {
            renew = false;
            seen.push(Seen::Renew);
        }
        if t >= deadline || sent >= c.policy.attempts {
            break End::Exhausted {
                sent,
                possibly_stored: ps,
            };
        }
        let remaining = deadline - t;
        let left = c.policy.attempts - sent;
        let timeout = (remaining / left).max(MIN_ATTEMPT).min(remaining);
        seen.push(Seen::Attempt { timeout });
        let Some(ev) = events.next() else {
            unreachable!("12 events cover 4 attempts and a fetch")
        };
        let lat = |ms: &u64| Duration::from_millis(*ms).min(timeout);
        let fatal = |kind, sent, ps| End::Fatal {
            kind,
            sent,
            possibly_stored: ps,
        };
        match ev {
            Event::Unroutable { missing, fetch } => {
                if !*missing || fetched {
                    break fatal("route", sent, ps);
                }
                fetched = true;
                if t >= deadline {
                    break End::Exhausted {
                        sent,
                        possibly_stored: ps,
                    };
                }
                seen.push(Seen::Fetch);
                match fetch {
                    Some(ms) => t += Duration::from_millis(*ms).min(deadline - t),
                    None => break fatal("route-not-found", sent, ps),
                }
                continue;
            }
            _ => sent += 1,
        }
        match ev {
            Event::Stored(status, ms) => {
                seen.push(Seen::Health(Health::Success(lat(ms))));
                t += lat(ms);
                if *status != SendStatus::SendOk
                    && c.policy.retry_not_stored_ok
                    && sent < c.policy.attempts
                {
                    ps = true;
                    continue;
                }
                break End::Stored {
                    attempts: sent,
                    possibly_duplicated: ps,
                };
            }
            Event::BadHeader(ms) => {
                seen.push(Seen::Health(Health::Success(lat(ms))));
                break fatal("bad-response", sent, true);
            }
            Event::Retryable(ms) => {
                seen.push(Seen::Health(Health::Failure(FailureKind::Broker, lat(ms))));
                t += lat(ms);
            }
            Event::Fatal(_) => {
                seen.push(Seen::Health(Health::Nothing));
                break fatal("broker", sent, ps);
            }
            Event::Denied(_) => {
                // Not retried, not the broker's ill health.
                seen.push(Seen::Health(Health::Nothing));
                break fatal("denied", sent, ps);
            }
            Event::Timeout => {
                seen.push(Seen::Health(Health::Failure(FailureKind::Timeout, timeout)));
                t += timeout;
                ps = true;
            }
            Event::Lost(ms) => {
                seen.push(Seen::Health(Health::Failure(
                    FailureKind::Connection,
                    lat(ms),
                )));
                t += lat(ms);
                ps = true;
                renew = true;
            }
            Event::Refused(ms) => {
                seen.push(Seen::Health(Health::Failure(
                    FailureKind::Connection,
                    lat(ms),
                )));
                t += lat(ms);
                renew = true;
            }
            Event::GoAway(ms) => {
                // Not processed (not possibly stored); a connection failure to health; retried after a
                // renewal.
                seen.push(Seen::Health(Health::Failure(
                    FailureKind::Connection,
                    lat(ms),
                )));
                t += lat(ms);
                renew = true;
            }
            Event::Shutdown => {
                seen.push(Seen::Health(Health::Nothing));
                break fatal("shutdown", sent, true);
            }
            Event::Unroutable { .. } => unreachable!("handled above"),
        }
    };
    seen.push(Seen::End(end));
    seen
}

fn response(ev: &Event) -> Result<RemotingCommand, RemotingError> {
    let addr = String::from("127.0.0.1:1");
    match ev {
        Event::Stored(status, _) => {
            let mut r = send_ok(1, 7);
            r.code = match status {
                SendStatus::SendOk => ResponseCode::SUCCESS,
                SendStatus::FlushDiskTimeout => ResponseCode::FLUSH_DISK_TIMEOUT,
                SendStatus::FlushSlaveTimeout => ResponseCode::FLUSH_SLAVE_TIMEOUT,
                SendStatus::SlaveNotAvailable => ResponseCode::SLAVE_NOT_AVAILABLE,
            }
            .0;
            Ok(r)
        }
        Event::BadHeader(_) => Ok(error(ResponseCode::SUCCESS, "no header")),
        Event::Retryable(_) => Ok(error(ResponseCode::SYSTEM_BUSY, "busy")),
        Event::Fatal(_) => Ok(error(ResponseCode::MESSAGE_ILLEGAL, "illegal")),
        Event::Denied(true) => Ok(error(
            ResponseCode::NO_PERMISSION,
            "check signature failed.",
        )),
        Event::Denied(false) => Ok(error(
            ResponseCode::SYSTEM_ERROR,
            "org.apache.rocketmq.acl.common.AclException: No default permission for topic:T, x.y(Z.java:1)",
        )),
        Event::Timeout => Err(RemotingError::Timeout {
            addr,
            opaque: 1,
            after: Duration::ZERO,
        }),
        Event::Lost(_) => Err(RemotingError::ConnectionLost {
            addr,
            reason: "EOF".into(),
        }),
        Event::Refused(_) => Err(RemotingError::Connect {
            addr,
            reason: "refused".into(),
        }),
        Event::GoAway(_) => Ok(error(ResponseCode::GO_AWAY, "please go away")),
        Event::Shutdown => Err(RemotingError::Shutdown),
        Event::Unroutable { .. } => unreachable!("not a response"),
    }
}

/// The error at the bottom of a result, by kind ("retry": one a later attempt may not meet).
fn kind(e: &ProducerError) -> &'static str {
    match e {
        ProducerError::AttemptsExhausted { last, .. } => kind(last),
        ProducerError::Broker { code, .. }
            if code.is_java_retryable() || SendStatus::from_code(*code).is_some() =>
        {
            "retry"
        }
        ProducerError::Broker { .. } => "broker",
        ProducerError::BadResponse { .. } => "bad-response",
        ProducerError::Denied { .. } => "denied",
        ProducerError::RouteNotFound { .. } => "route-not-found",
        ProducerError::Route(_) => "route",
        ProducerError::Remoting(RemotingError::Shutdown) => "shutdown",
        ProducerError::Remoting(_) => "retry",
        _ => "other",
    }
}

/// Runs the machine through `c`, recording what it does in the model's terms and checking what the model
/// does not say: the broker a retry avoids, and that the send stays over once over.
fn run(c: &Case, mutant: Option<Mutant>) -> Result<Vec<Seen>, TestCaseError> {
    let t0 = Instant::now();
    let mut m = SendMachine::new(c.policy, t0, c.timeout);
    m.mutant = mutant;
    let mut now = t0;
    let mut seen = Vec::new();
    let mut events = c.events.iter();
    let mut last: Option<&Event> = None;
    for round in 0..64 {
        match m.next(now) {
            Step::FetchRoute {
                timeout,
                renew: true,
            } => {
                // A renewal takes no time here and never fails the send.
                prop_assert_eq!(timeout, (t0 + c.timeout).saturating_duration_since(now));
                seen.push(Seen::Renew);
                m.on_route_fetched(Ok(()));
            }
            Step::FetchRoute {
                timeout,
                renew: false,
            } => {
                prop_assert_eq!(timeout, (t0 + c.timeout).saturating_duration_since(now));
                seen.push(Seen::Fetch);
                let Some(Event::Unroutable { fetch, .. }) = last else {
                    return Err(TestCaseError::fail("a fetch nobody asked for"));
                };
                match fetch {
                    Some(ms) => {
                        now += Duration::from_millis(*ms).min(timeout);
                        m.on_route_fetched(Ok(()));
                    }
                    None => m.on_route_fetched(Err(ProducerError::RouteNotFound {
                        topic: "T".into(),
                        reason: "name server down".into(),
                    })),
                }
            }
            Step::Attempt { timeout } => {
                seen.push(Seen::Attempt { timeout });
                let Some(ev) = events.next() else {
                    return Err(TestCaseError::fail(format!(
                        "attempt past the script ({round})"
                    )));
                };
                last = Some(ev);
                if let Event::Unroutable { missing, .. } = ev {
                    // NoRoute is what a fetch can fix; a selector's refusal is not.
                    m.on_unroutable(if *missing {
                        RouteError::NoRoute("T".into())
                    } else {
                        RouteError::SelectorRefused {
                            topic: "T".into(),
                            queues: 2,
                        }
                    });
                    continue;
                }
                let broker: std::sync::Arc<str> = format!("broker-{round}").into();
                let latency = match ev {
                    Event::Timeout => timeout,
                    Event::Stored(_, ms)
                    | Event::BadHeader(ms)
                    | Event::Retryable(ms)
                    | Event::Fatal(ms)
                    | Event::Lost(ms)
                    | Event::Refused(ms)
                    | Event::GoAway(ms) => Duration::from_millis(*ms).min(timeout),
                    _ => Duration::ZERO,
                };
                now += latency;
                let health = m.on_response(&broker, latency, response(ev));
                seen.push(Seen::Health(health));
                if let Health::Failure(..) = health
                    && !m.is_over()
                {
                    prop_assert_eq!(m.avoid(), Some(&*broker), "a retry avoids {}", broker);
                }
            }
            Step::Done(r) => {
                let end = match r {
                    Ok(Receipt::Stored {
                        attempts,
                        possibly_duplicated,
                        ..
                    }) => End::Stored {
                        attempts,
                        possibly_duplicated,
                    },
                    Ok(Receipt::Written) => return Err(TestCaseError::fail("written?")),
                    Err(e) if kind(&e) == "retry" => match e {
                        ProducerError::AttemptsExhausted {
                            attempts,
                            possibly_stored,
                            ..
                        } => End::Exhausted {
                            sent: attempts,
                            possibly_stored,
                        },
                        e => return Err(TestCaseError::fail(format!("bare {e}"))),
                    },
                    Err(e) => End::Fatal {
                        kind: kind(&e),
                        sent: m.made(),
                        possibly_stored: e.possibly_stored(),
                    },
                };
                seen.push(Seen::End(end));
                prop_assert!(
                    matches!(m.next(now), Step::Done(Err(ProducerError::State(_)))),
                    "over means over"
                );
                return Ok(seen);
            }
        }
    }
    Err(TestCaseError::fail("no end within 64 steps"))
}

fn check(c: &Case, mutant: Option<Mutant>) -> Result<(), TestCaseError> {
    let got = run(c, mutant)?;
    prop_assert_eq!(got, model(c));
    Ok(())
}

proptest! {
    #![proptest_config(Config { cases: 2000, failure_persistence: None, ..Config::default() })]

    #[test]
    fn the_machine_follows_the_model(c in case()) {
        check(&c, None)?;
    }
}

#[test]
fn the_model_test_catches_every_mutant() {
    for mutant in [
        Mutant::IgnoreDeadline,
        Mutant::ExtraAttempt,
        Mutant::WholeDeadlineEachAttempt,
        Mutant::RetryFatal,
        Mutant::ForgetPossiblyStored,
        Mutant::NoAvoid,
        Mutant::RetryDenied,
        Mutant::NoRenew,
    ] {
        let mut runner = TestRunner::new(Config {
            cases: 2000,
            failure_persistence: None,
            ..Config::default()
        });
        let caught = runner.run(&case(), |c| check(&c, Some(mutant)));
        assert!(caught.is_err(), "{mutant:?} went unnoticed");
    }
}
