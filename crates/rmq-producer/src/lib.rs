//! # rmq-producer
//!
//! The producer of rmq, composed from `rmq-protocol`, `rmq-remoting` and `rmq-routing`.
//!
//! **Status: first slice.** [`Producer`] starts and shuts down (unregistering from brokers), fetches
//! routes once per topic (falling back to TBW102 so brokers create new topics), refreshes them and keeps
//! the last good one when the name server fails, heartbeats every master broker concurrently, and sends
//! synchronously (with retries on another broker inside one deadline, split so every attempt gets time),
//! asynchronously (the same retries; a [`SendFuture`] for threads or any executor, or a callback; bounded
//! in flight) and oneway. Configuration comes from templates ([`get_config`]), a builder, or the
//! environment ([`ProducerConfig::from_env`]). Ordered sends go to one queue: by sharding key (message
//! hash), [`Producer::send_to_queue`] or [`Producer::send_with_selector`]. [`Producer::send_batch`]
//! splits batches by count and size. Transactions, request-reply, ACL and namespaces are not built yet.

#![forbid(unsafe_code)]

mod async_send;
mod config;
mod error;
mod producer;
mod stats;
mod templates;

pub use async_send::{SendCallback, SendFuture};
pub use config::ProducerConfig;
pub use error::ProducerError;
pub use producer::{MessageQueue, Producer, SendResult, SendStatus};
pub use stats::ProducerStats;
pub use templates::{ENV_VARS, ProducerConfigBuilder, TEMPLATES, create_custom_config, get_config};

/// A producer for `group` at `namesrv_addr` with default settings, not started yet.
pub fn create_producer(group: &str, namesrv_addr: &str) -> Result<Producer, ProducerError> {
    Producer::new(create_custom_config(group, namesrv_addr)?)
}
