//! # rmq
//!
//! The crate RocketMQ users depend on. rmq is a RocketMQ producer client for Rust that speaks Apache
//! RocketMQ's TCP remoting protocol, byte-compatible with the Java client.
//!
//! **Status.** Today this facade re-exports the wire layer, [`protocol`] (the `rmq-protocol` crate: frames,
//! codes, headers, routes, messages, ids, validation and compression), the routing layer, [`routing`]
//! (the `rmq-routing` crate: route cache, selectors, broker health, router), and the connection layer,
//! [`remoting`] (the `rmq-remoting` crate: multiplexed connections, pool, futures), and a first slice of
//! the producer, [`producer`] (the `rmq-producer` crate: start/shutdown, sync and oneway sends with
//! retries in one deadline, routes, heartbeats). The README's status table says what works at each commit.
//!
//! ```
//! use rmq::prelude::*;
//!
//! let mut msg = Message::new("TopicTest", "Hello");
//! msg.set_tags("TagA");
//! rmq::protocol::validate::message(&msg, 4 * 1024 * 1024, 0).unwrap();
//! ```

#![forbid(unsafe_code)]

pub use rmq_producer as producer;
pub use rmq_protocol as protocol;
pub use rmq_remoting as remoting;
pub use rmq_routing as routing;

/// The types most programs use.
pub mod prelude {
    pub use rmq_protocol::{
        Message, RemotingCommand, RequestCode, ResponseCode, StringMap, TopicRouteData,
    };
}
