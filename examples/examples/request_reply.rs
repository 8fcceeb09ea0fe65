//! Request-reply: send a request and wait for the reply a consumer sends back (RocketMQ's RPC mode). A
//! consumer must answer requests on the topic, e.g. the Java replier of the interop checker:
//!
//! `scripts/cluster up && scripts/cluster checker reply --topic RequestTopic &`
//! `cargo run -p rmq-examples --example request_reply`
//!
//! Without a replier the request ends with the typed timeout, which this example reports.

use std::time::Duration;

use rmq::prelude::*;

fn main() -> Result<(), ProducerError> {
    let mut config = ProducerConfig::from_env()?;
    config.producer_group = "request_example_group".into();
    let producer = Producer::new(config)?;
    producer.start()?;
    match producer.request(
        &Message::new("RequestTopic", "ping"),
        Duration::from_secs(3),
    ) {
        Ok(reply) => println!("reply: {}", String::from_utf8_lossy(&reply.body)),
        Err(e @ ProducerError::RequestTimeout { .. }) => {
            println!("{e}: is a replier consuming RequestTopic?");
        }
        Err(e) => return Err(e),
    }
    producer.shutdown();
    Ok(())
}
