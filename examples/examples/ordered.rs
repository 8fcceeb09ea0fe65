//! Ordered messages: every message with the same sharding key lands on the same queue (Java's hash, so Rust
//! and Java producers agree), and `send_with_selector` for a custom choice.
//!
//! `cargo run -p rmq-examples --example ordered`

use rmq::prelude::*;

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
    // Java's SelectMessageQueueByHash with a typed argument (any closure over the queues works too).
    let r = producer.send_with_selector(
        &Message::new("OrderedTopic", "by selector"),
        select_by_hash,
        "customer-7",
    )?;
    println!("selector -> {} queue {}", r.broker_name, r.queue_id);
    producer.shutdown();
    Ok(())
}
