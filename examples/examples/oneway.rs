//! Fire-and-forget sends: nothing tells whether the broker stored them.
//!
//! `cargo run -p rmq-examples --example oneway`

use rmq::prelude::*;

fn main() -> Result<(), ProducerError> {
    let mut config = ProducerConfig::from_env()?;
    config.producer_group = "oneway_group".into();
    let producer = Producer::new(config)?;
    producer.start()?;
    for i in 0..10 {
        producer.send_oneway(&Message::new("OnewayTopic", format!("log line {i}")))?;
    }
    println!("10 oneway messages written");
    producer.shutdown();
    Ok(())
}
