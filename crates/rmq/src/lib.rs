//! # rmq
//!
//! A RocketMQ producer for Rust that speaks Apache RocketMQ's TCP remoting protocol (the protocol of the
//! classic Java client, not the v5 gRPC proxy), byte-compatible with the Java classes it mirrors.
//!
//! ```no_run
//! use rmq::prelude::*;
//!
//! let producer = Producer::new(ProducerConfig::new("my_group", "127.0.0.1:9876"))?;
//! producer.start()?;
//! let mut msg = Message::new("TopicTest", "Hello, RocketMQ!");
//! msg.set_tags("TagA");
//! let result = producer.send_sync(&msg)?;          // retries on another broker within one deadline
//! println!("{} stored in queue {}", result.msg_id, result.queue_id);
//! let pending = producer.send_async(&msg);         // wait() it, or .await it on any executor
//! pending.wait()?;
//! producer.shutdown();                             // drains async sends, unregisters from brokers
//! # Ok::<(), rmq::producer::ProducerError>(())
//! ```
//!
//! The layers, each its own crate and re-exported here:
//! - [`producer`] (`rmq-producer`): lifecycle, sync / async / oneway / ordered sends, retries, heartbeats,
//!   route refresh, configuration templates and environment overrides, stats.
//! - [`routing`] (`rmq-routing`): route cache, queue selectors, broker health, router. Pure logic.
//! - [`remoting`] (`rmq-remoting`): requests multiplexed over one connection per broker, futures, pool.
//! - [`protocol`] (`rmq-protocol`): the sans-I/O wire format.
//!
//! The README's status table says what works at each commit.

#![forbid(unsafe_code)]

pub use rmq_producer as producer;
pub use rmq_protocol as protocol;
pub use rmq_remoting as remoting;
pub use rmq_routing as routing;

/// The types most programs use.
pub mod prelude {
    pub use rmq_producer::{
        LocalTransactionState, MessageQueue, Producer, ProducerConfig, ProducerError, SendFuture,
        SendResult, SendStatus, TransactionListener, TransactionProducer, TransactionSendResult,
    };
    pub use rmq_protocol::acl::Credentials;
    pub use rmq_protocol::{Message, MessageExt};
    pub use rmq_routing::{PublishQueue, RoutingStrategy, select_by_hash};
}
