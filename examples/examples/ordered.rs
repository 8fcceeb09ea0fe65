//! Ordered messages: every message with the same sharding key lands on the same queue (Java's hash, so Rust
//! and Java producers agree), and `send_with_selector` for a custom choice.
//!
//! `cargo run -p rmq-examples --example ordered`

use rmq::prelude::*;
use rmq::routing::SelectByHash;

fn main() -> Result<(), ProducerError> {
    let mut config = ProducerConfig::from_env()?;
    config.producer_group = "ordered_group".into();
    let producer = Producer::new(config)?;
    producer.start()?;
    for order in ["order-1", "order-2"] {
        for step in ["created", "paid", "shipped"] {
            let mut msg = Message::new("OrderedTopic", format!("{order}: {step}"));
            msg.set_sharding_key(order);
            let r = producer.send_sync(&msg)?;
            println!("{order} {step:8} -> {} queue {}", r.broker_name, r.queue_id);
        }
    }
    let arg: Box<dyn std::any::Any + Send + Sync> = Box::new(String::from("customer-7"));
    let r = producer.send_with_selector(
        &Message::new("OrderedTopic", "by selector"),
        &SelectByHash,
        Some(&*arg),
    )?;
    println!("selector -> {} queue {}", r.broker_name, r.queue_id);
    producer.shutdown();
    Ok(())
}
