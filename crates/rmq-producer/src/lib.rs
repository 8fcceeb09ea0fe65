//! # rmq-producer
//!
//! The producer of rmq, composed from `rmq-protocol`, `rmq-remoting` and `rmq-routing`.
//!
//! **Status: first slice.** [`Producer`] starts and shuts down (unregistering from brokers), fetches
//! routes once per topic (falling back to TBW102 so brokers create new topics), refreshes them and keeps
//! the last good one when the name server fails, heartbeats every master broker concurrently, and sends
//! synchronously (with retries on another broker inside one deadline, split so every attempt gets time),
//! asynchronously (the same retries; a [`SendFuture`] for threads or any executor, or a callback; bounded
//! in flight) and oneway. Selectors and batches on the producer, config templates and environment
//! overrides, and latency percentiles in the stats are not built yet.

#![forbid(unsafe_code)]

mod async_send;
mod config;
mod error;
mod producer;
mod stats;

pub use async_send::{SendCallback, SendFuture};
pub use config::ProducerConfig;
pub use error::ProducerError;
pub use producer::{Producer, SendResult, SendStatus};
pub use stats::ProducerStats;
