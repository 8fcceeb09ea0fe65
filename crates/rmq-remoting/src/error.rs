//! Errors of the connection layer.

use std::time::Duration;

use rmq_protocol::{DecodeError, EncodeError};
use thiserror::Error;

/// Why a remoting call failed. Each variant says whether the request may have reached the server.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RemotingError {
    /// No connection could be made (nothing was sent).
    #[error("cannot connect to {addr}: {reason}")]
    Connect {
        /// The address.
        addr: String,
        /// What failed.
        reason: String,
    },
    /// A recent connect to this address failed; the pool waits before trying again (nothing was sent).
    #[error(
        "not connecting to {addr} for another {retry_in:?}: the last attempt failed ({reason})"
    )]
    Backoff {
        /// The address.
        addr: String,
        /// Time until the next attempt is allowed.
        retry_in: Duration,
        /// The last failure.
        reason: String,
    },
    /// No response within the deadline (the request may have been processed).
    #[error("no response from {addr} within {after:?} (opaque {opaque})")]
    Timeout {
        /// The address.
        addr: String,
        /// The request's opaque.
        opaque: i32,
        /// The timeout that passed.
        after: Duration,
    },
    /// The connection died while the request was pending or being written (it may have been processed).
    #[error("connection to {addr} lost: {reason}")]
    ConnectionLost {
        /// The address.
        addr: String,
        /// Why (EOF, read error, malformed frame, closed by us).
        reason: String,
    },
    /// Too many requests in flight and the caller chose not to wait, or waited until its deadline
    /// (nothing was sent).
    #[error(
        "overloaded: {in_flight} requests / {in_flight_bytes} bytes in flight (limits {max} / {max_bytes})"
    )]
    Overloaded {
        /// Requests in flight.
        in_flight: usize,
        /// Bytes in flight.
        in_flight_bytes: usize,
        /// Request limit.
        max: usize,
        /// Byte limit.
        max_bytes: usize,
    },
    /// The request could not be encoded (nothing was sent).
    #[error("cannot encode request: {0}")]
    Encode(#[from] EncodeError),
    /// The client's configuration cannot be used (a TLS file unreadable, TLS not built in); nothing was
    /// sent.
    #[error("invalid remoting configuration: {0}")]
    Config(String),
    /// An [`crate::RpcHook`] panicked while preparing the request; nothing was sent (the panic was caught
    /// and logged).
    #[error("an RpcHook panicked preparing the request; it was not sent")]
    HookPanicked,
    /// The client was shut down (pending requests may have been processed).
    #[error("remoting client is shut down")]
    Shutdown,
}

impl RemotingError {
    /// Whether this is a timeout.
    pub fn is_timeout(&self) -> bool {
        matches!(self, RemotingError::Timeout { .. })
    }

    /// Whether the request certainly did not reach the server, so resending cannot duplicate it.
    pub fn is_not_sent(&self) -> bool {
        matches!(
            self,
            RemotingError::Connect { .. }
                | RemotingError::Backoff { .. }
                | RemotingError::Overloaded { .. }
                | RemotingError::Encode(_)
                | RemotingError::Config(_)
                | RemotingError::HookPanicked
        )
    }

    /// Whether the failure concerns the connection (connect, backoff, lost), as opposed to a slow answer.
    pub fn is_connection(&self) -> bool {
        matches!(
            self,
            RemotingError::Connect { .. }
                | RemotingError::Backoff { .. }
                | RemotingError::ConnectionLost { .. }
        )
    }
}

pub(crate) fn lost(addr: &str, reason: impl Into<String>) -> RemotingError {
    RemotingError::ConnectionLost {
        addr: addr.to_owned(),
        reason: reason.into(),
    }
}

pub(crate) fn decode_reason(e: &DecodeError) -> String {
    format!("malformed frame: {e}")
}
