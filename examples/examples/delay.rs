//! Delayed delivery: a delay level (every broker; level 2 is 5 s on a default broker) and a timer
//! (Apache RocketMQ 5.x with its timer wheel on: deliver after a duration or at a time; 4.x delivers timer
//! messages at once).
//!
//! `scripts/cluster up && cargo run -p rmq-examples --example delay`
//! (the name server comes from `RMQ_NAMESRV_ADDR` / `NAMESRV_ADDR`, default 127.0.0.1:9876).

use std::time::{SystemTime, UNIX_EPOCH};

use rmq::prelude::*;

fn main() -> Result<(), ProducerError> {
    let mut config = ProducerConfig::from_env()?;
    config.producer_group = "delay_example_group".into();
    let producer = Producer::new(config)?;
    producer.start()?;

    let mut level = Message::new("DelayTopic", "in 5 seconds (delay level 2)");
    level.set_delay_level(2);
    let mut after = Message::new("DelayTopic", "in 3 seconds (timer)");
    after.set_delay_time_sec(3);
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let mut at = Message::new("DelayTopic", "at a time (timer)");
    at.set_deliver_time_ms(now_ms + 10_000);
    for m in [&level, &after, &at] {
        let r = producer.send_sync(m)?;
        println!(
            "{:?}: {} ({})",
            r.status,
            r.msg_id,
            String::from_utf8_lossy(&m.body)
        );
    }
    producer.shutdown();
    Ok(())
}
