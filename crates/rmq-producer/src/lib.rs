//! # rmq-producer
//!
//! The producer of rmq, composed from `rmq-protocol`, `rmq-remoting` and `rmq-routing`.
//!
//! [`Producer`] starts and shuts down (unregistering from brokers; dropping the last handle does the
//! same), fetches routes once per topic (falling back to TBW102 so brokers create new topics), refreshes
//! them and keeps the last good one when the name server fails, heartbeats every master broker
//! concurrently (and a broker as soon as a route names it), and sends synchronously, asynchronously
//! (a [`SendFuture`] for threads or any executor, or a callback; bounded in flight; [`Producer::flush`]),
//! oneway, in batches and in order ([`Producer::send_to_queue`], [`Producer::send_with_selector`]).
//! Configuration comes from templates ([`get_config`]), a builder, or the environment
//! ([`ProducerConfig::from_env`]), all through one table of settings ([`SETTINGS`]). Requests are signed for ACL when [`ProducerConfig::credentials`] are set,
//! names are wrapped in [`ProducerConfig::namespace`], and connections use TLS with the `tls` feature
//! (`ProducerConfig::remoting.tls`). [`TransactionProducer`] sends transactional messages and answers
//! brokers' check-backs; [`Producer::request`] sends a request and waits for its reply; timer messages
//! can be withdrawn with [`Producer::recall`].
//!
//! Inside, every send path runs one sans-I/O send machine (`machine/`): it decides the attempts, the time
//! each gets, retries, `possibly_stored` and what broker health is told; the drivers only carry its steps
//! out on the right thread. docs/architecture.md maps the files.

#![forbid(unsafe_code)]

mod async_send;
mod auto_batch;
mod batch;
mod builder;
mod config;
mod core;
mod error;
mod future;
mod gather;
mod heartbeat;
mod inflight;
mod machine;
mod metrics;
mod names;
mod outcome;
mod producer;
mod recall;
mod reply;
mod request;
mod result;
mod routes;
mod send;
mod settings;
mod stats;
mod sync_send;
mod templates;
mod trace;
mod transaction;
mod workers;

pub use async_send::{SendCallback, SendFuture};
pub use builder::ProducerConfigBuilder;
pub use config::ProducerConfig;
pub use error::ProducerError;
pub use future::Pending;
pub use inflight::PendingSend;
pub use producer::Producer;
pub use reply::ReplyFuture;
pub use result::{MessageQueue, SendResult, SendStatus};
pub use settings::{
    NAMESRV_ADDR_FALLBACK, SETTINGS, Setting, SettingKind, SettingValue, setting, settings_markdown,
};
pub use stats::ProducerStats;
pub use templates::{TEMPLATES, create_custom_config, get_config};
pub use transaction::{
    LocalTransactionState, TransactionListener, TransactionProducer, TransactionSendResult,
};

/// A producer for `group` at `namesrv_addr` with default settings, not started yet.
pub fn create_producer(group: &str, namesrv_addr: &str) -> Result<Producer, ProducerError> {
    Producer::new(create_custom_config(group, namesrv_addr)?)
}
