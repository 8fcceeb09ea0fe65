//! Send one message and wait until the broker stored it.
//!
//! `scripts/cluster up && cargo run -p rmq-examples --example quickstart`
//! (the name server comes from `RMQ_NAMESRV_ADDR` / `NAMESRV_ADDR`, default 127.0.0.1:9876).

use rmq::prelude::*;

fn main() -> Result<(), ProducerError> {
    let mut config = ProducerConfig::from_env()?;
    config.producer_group = "quickstart_group".into();
    let producer = Producer::new(config)?;
    producer.start()?;

    let mut msg = Message::new("QuickstartTopic", "Hello, RocketMQ!");
    msg.set_tags("TagA");
    msg.set_keys(["order-1"]);
    let result = producer.send_sync(&msg)?;
    println!(
        "{:?}: msgId {} stored on {} queue {} at offset {}",
        result.status, result.msg_id, result.broker_name, result.queue_id, result.queue_offset
    );
    producer.shutdown();
    Ok(())
}
