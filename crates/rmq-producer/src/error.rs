//! [`ProducerError`]: why a start or a send failed, and what the caller can conclude.

use std::time::Duration;

use rmq_protocol::acl::Refusal;
use rmq_protocol::{ResponseCode, ValidationError};
use rmq_remoting::RemotingError;
use rmq_routing::RouteError;
use thiserror::Error;

/// Why a producer operation failed.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProducerError {
    /// A setting is invalid.
    #[error("invalid configuration `{field}`: {reason}")]
    Config {
        /// The field.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// The producer is not running (not started yet, or shut down).
    #[error("producer is {0}")]
    State(&'static str),
    /// The message was refused before anything was sent.
    #[error("message refused: {0}")]
    Validation(#[from] ValidationError),
    /// No route for the topic, neither its own nor TBW102's.
    #[error("no route for topic {topic:?}: {reason}")]
    RouteNotFound {
        /// The topic.
        topic: String,
        /// What the name servers said.
        reason: String,
    },
    /// Routing found no usable queue.
    #[error("cannot route: {0}")]
    Route(#[from] RouteError),
    /// The broker answered with an error code.
    #[error("broker {broker} refused the send: {code} {remark:?}")]
    Broker {
        /// The broker's name.
        broker: String,
        /// The response code.
        code: ResponseCode,
        /// The broker's remark.
        remark: Option<String>,
    },
    /// The broker refused the request on ACL grounds: authentication (no or unknown access key, a wrong
    /// signature, a disabled user) or permission (the user may not publish to this topic). Nothing was
    /// stored; the send is not retried on another broker (they share the ACL) and the broker's health is
    /// not marked down. The remark is the broker's; it never holds the secret key.
    #[error("broker {broker} refused the request: {refusal}: {}", remark.as_deref().unwrap_or("(no remark)"))]
    Denied {
        /// The broker's name.
        broker: String,
        /// Authentication or permission.
        refusal: Refusal,
        /// The response code (16 on 5.x, 1 on 4.x).
        code: ResponseCode,
        /// The broker's remark.
        remark: Option<String>,
    },
    /// A RocketMQ 5 proxy refused the message because its type (NORMAL, FIFO, DELAY, TRANSACTION) is not
    /// the topic's. Nothing was stored; no retry helps. The message says what to change.
    #[error(
        "{broker} refused the message: the topic takes {expected} messages, this one is {actual}; {}",
        type_advice(expected, actual)
    )]
    MessageTypeMismatch {
        /// The broker (behind the proxy) the send was routed to.
        broker: String,
        /// The topic's message type as the proxy names it (`UNSPECIFIED`: unknown to the proxy or
        /// created without a type, as every auto-created topic is).
        expected: String,
        /// The message's type as the proxy classified it.
        actual: String,
    },
    /// What was asked cannot work through the endpoint the producer talks to: request-reply through a
    /// RocketMQ 5 proxy, which relays requests but never the replies the broker pushes back
    /// (`PUSH_REPLY_MESSAGE_TO_CLIENT`). Refused before anything is sent once a route has shown the
    /// proxy; a request sent before that was stored, and ends with this error when it is acknowledged
    /// instead of at its timeout.
    #[error("{feature} does not work through a RocketMQ 5 proxy: {advice}")]
    NotThroughProxy {
        /// The feature.
        feature: &'static str,
        /// What to do instead.
        advice: &'static str,
    },
    /// The broker answered that it stored the message, but its answer could not be read. The message is
    /// stored ([`ProducerError::possibly_stored`] is true); a resend would duplicate it.
    #[error("broker {broker} answered {code} but the answer is unreadable: {reason}")]
    BadResponse {
        /// The broker's name.
        broker: String,
        /// The response code (a stored status).
        code: ResponseCode,
        /// What could not be read.
        reason: String,
    },
    /// An ordered send named a queue of another topic than the message's (nothing was sent).
    #[error("message topic {message_topic:?} differs from the queue's topic {queue_topic:?}")]
    QueueTopicMismatch {
        /// The message's topic.
        message_topic: String,
        /// The queue's topic.
        queue_topic: String,
    },
    /// Every attempt failed, or a later attempt failed in a way no retry fixes; the last failure is kept.
    #[error("send failed after {attempts} attempt(s) in {elapsed:?}; last: {last}")]
    AttemptsExhausted {
        /// Attempts made.
        attempts: u32,
        /// Time spent.
        elapsed: Duration,
        /// The last attempt's error.
        last: Box<ProducerError>,
        /// Whether an attempt may have stored the message (a timeout or lost connection after writing).
        possibly_stored: bool,
    },
    /// No reply to a request within its timeout (the request may have been delivered and answered late).
    #[error("no reply to request {correlation_id} within {after:?}")]
    RequestTimeout {
        /// The request's `CORRELATION_ID`.
        correlation_id: String,
        /// The request's timeout.
        after: Duration,
    },
    /// Too many asynchronous sends in flight (`async_send_semaphore`); nothing was sent.
    #[error("overloaded: {in_flight} asynchronous sends in flight (limit {max})")]
    Overloaded {
        /// Sends in flight.
        in_flight: usize,
        /// The limit.
        max: usize,
    },
    /// A connection-layer failure.
    #[error(transparent)]
    Remoting(#[from] RemotingError),
}

/// What to change after a message-type refusal.
fn type_advice(expected: &str, actual: &str) -> &'static str {
    match (expected, actual) {
        ("UNSPECIFIED", _) => {
            "the proxy does not know the topic's type (it does not exist, or was auto-created or created without one): create it with its type, e.g. `mqadmin updateTopic -t TOPIC -c CLUSTER -a +message.type=NORMAL`"
        }
        ("FIFO", "NORMAL") => {
            "a FIFO topic takes only messages with a sharding key: set one (Message::set_sharding_key)"
        }
        ("NORMAL", "FIFO") => {
            "the message has a sharding key and the topic is not FIFO: drop the key or send to a FIFO topic"
        }
        ("DELAY", _) => "a DELAY topic takes only messages with a delay level or a delivery time",
        ("TRANSACTION", _) => {
            "a TRANSACTION topic takes only half messages: send through TransactionProducer"
        }
        ("PRIORITY", _) => {
            "a PRIORITY topic takes only messages with a priority: set one (Message::set_priority)"
        }
        ("LITE", _) => {
            "a LITE topic takes only messages with a lite topic: set one (Message::set_lite_topic)"
        }
        (_, "PRIORITY") => "priority messages go to a topic of type PRIORITY",
        (_, "LITE") => "lite-topic messages go to a topic of type LITE",
        (_, "DELAY") => "delayed and timer messages go to a topic of type DELAY (or MIXED)",
        (_, "TRANSACTION") => "transactional messages go to a topic of type TRANSACTION (or MIXED)",
        _ => "send to a topic of the message's type, or change the topic's message.type",
    }
}

impl ProducerError {
    /// The ACL refusal behind this error, if it is one (also as the last failure of several attempts).
    pub fn refusal(&self) -> Option<Refusal> {
        match self {
            ProducerError::Denied { refusal, .. } => Some(*refusal),
            ProducerError::AttemptsExhausted { last, .. } => last.refusal(),
            _ => None,
        }
    }

    /// Whether the failure was a timeout (of the whole send or of its last attempt).
    pub fn is_timeout(&self) -> bool {
        match self {
            ProducerError::RequestTimeout { .. } => true,
            ProducerError::Remoting(e) => e.is_timeout(),
            ProducerError::AttemptsExhausted { last, .. } => last.is_timeout(),
            _ => false,
        }
    }

    /// Whether sending the same message again may succeed: connection problems, timeouts and the broker
    /// codes Java retries on. Validation, configuration and state errors are not retryable.
    pub fn is_retryable(&self) -> bool {
        match self {
            ProducerError::Remoting(e) => {
                !matches!(e, RemotingError::Shutdown | RemotingError::Encode(_))
            }
            ProducerError::Broker { code, .. } => code.is_java_retryable(),
            ProducerError::AttemptsExhausted { last, .. } => last.is_retryable(),
            ProducerError::RouteNotFound { .. }
            | ProducerError::Route(_)
            | ProducerError::Overloaded { .. } => true,
            _ => false,
        }
    }

    /// Whether the message may have reached a broker and been stored although the send failed (so a resend
    /// may duplicate it).
    pub fn possibly_stored(&self) -> bool {
        match self {
            ProducerError::Remoting(e) => !e.is_not_sent(),
            ProducerError::BadResponse { .. } => true,
            ProducerError::AttemptsExhausted {
                possibly_stored, ..
            } => *possibly_stored,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn predicates() {
        let t = ProducerError::Remoting(RemotingError::Timeout {
            addr: "a".into(),
            opaque: 1,
            after: Duration::ZERO,
        });
        assert!(t.is_timeout() && t.is_retryable() && t.possibly_stored());
        let c = ProducerError::Remoting(RemotingError::Connect {
            addr: "a".into(),
            reason: "refused".into(),
        });
        assert!(!c.is_timeout() && c.is_retryable() && !c.possibly_stored());
        let busy = ProducerError::Broker {
            broker: "b".into(),
            code: ResponseCode::SYSTEM_BUSY,
            remark: None,
        };
        assert!(busy.is_retryable() && !busy.possibly_stored());
        let illegal = ProducerError::Broker {
            broker: "b".into(),
            code: ResponseCode::MESSAGE_ILLEGAL,
            remark: None,
        };
        assert!(!illegal.is_retryable());
        let v = ProducerError::Validation(ValidationError::EmptyBody);
        assert!(!v.is_retryable() && !v.possibly_stored());
        let all = ProducerError::AttemptsExhausted {
            attempts: 3,
            elapsed: Duration::from_secs(3),
            last: Box::new(t),
            possibly_stored: true,
        };
        assert!(all.is_timeout() && all.possibly_stored());
    }
}
