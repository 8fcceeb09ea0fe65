//! # rmq-remoting
//!
//! The connection layer of rmq: RocketMQ remoting requests multiplexed by `opaque` over one TCP connection
//! per broker, as the Java client does over one Netty channel, built on `rmq-protocol` and std threads (no
//! async runtime).
//!
//! - [`RemotingClient`]: a pool with one connection per address, connected lazily and once for all
//!   concurrent callers, replaced when it dies, closed when idle, with reconnect backoff.
//! - Three ways to call: [`RemotingClient::invoke_sync`], [`RemotingClient::invoke_oneway`] and
//!   [`RemotingClient::invoke_async`], whose [`ResponseFuture`] offers `wait()` / `wait_timeout()` for
//!   threads and implements `std::future::Future` for any executor; plus a callback form.
//! - Each connection has one reader thread that completes requests by opaque; writes from concurrent
//!   callers are combined into shared syscalls. EOF, a read error or a malformed frame fails every pending
//!   request at once ([`RemotingError::ConnectionLost`]); a timer thread fails requests at their deadline.
//! - Backpressure: a bound on requests (and bytes) in flight, blocking or failing by [`OverloadPolicy`].
//! - Server-initiated requests go to [`RequestHandler`]s by code; unknown codes are answered with
//!   REQUEST_CODE_NOT_SUPPORTED unless oneway. [`RpcHook`]s see every outgoing request.
//!
//! ```no_run
//! use std::time::Duration;
//! use rmq_protocol::header::GetRouteInfoRequestHeader;
//! use rmq_protocol::{RemotingCommand, RequestCode, TopicRouteData};
//! use rmq_remoting::{RemotingClient, RemotingConfig};
//!
//! let client = RemotingClient::new(RemotingConfig::default())?;
//! let req = RemotingCommand::with_header(RequestCode::GET_ROUTEINFO_BY_TOPIC, &GetRouteInfoRequestHeader::new("TBW102"));
//! let resp = client.invoke_sync("127.0.0.1:9876", req, Duration::from_secs(3))?;
//! let route = TopicRouteData::decode(&resp.body)?;
//! client.shutdown();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]

mod cell;
mod client;
mod completion;
mod connection;
mod error;
mod flow;
mod guard;
mod handler;
mod time;
mod tls;
mod transport;
mod writer;

pub use cell::{Completed, Completion};
pub use client::{RemotingClient, RemotingConfig, RpcHook};
pub use completion::{Callback, ResponseFuture};
pub use error::RemotingError;
pub use flow::OverloadPolicy;
pub use guard::{run_user_code, user_code_panics};
pub use handler::RequestHandler;
pub use time::deadline_after;
pub use tls::{ClientCert, TlsConfig, TlsTrust};
