//! The demo `scripts/demo` runs: five messages to the topic named on the command line (sync, async and
//! oneway), each result, then the producer's stats.
//!
//! `cargo run -p rmq-examples --example demo -- TOPIC`

use rmq::prelude::*;

fn main() -> Result<(), ProducerError> {
    let topic = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "DemoTopic".into());
    let mut config = ProducerConfig::from_env()?;
    config.producer_group = "demo_group".into();
    let producer = Producer::new(config)?;
    producer.start()?;
    for i in 0..3 {
        let r = producer.send_sync(&Message::new(
            topic.clone(),
            format!("hello {i} from rmq (sync)"),
        ))?;
        println!(
            "sync  {i}: {:?} {} on {} queue {} offset {}",
            r.status, r.msg_id, r.broker_name, r.queue_id, r.queue_offset
        );
    }
    let r = producer
        .send_async(&Message::new(topic.clone(), "hello 3 from rmq (async)"))
        .wait()?;
    println!(
        "async 3: {:?} {} on {} queue {} offset {}",
        r.status, r.msg_id, r.broker_name, r.queue_id, r.queue_offset
    );
    producer.send_oneway(&Message::new(topic.clone(), "hello 4 from rmq (oneway)"))?;
    println!("oneway 4: written");
    let s = producer.get_stats();
    println!(
        "stats: sent {} failed {} retries {} oneway {} avg send {:?}, heartbeats {} ok",
        s.sent, s.failed, s.retries, s.oneway, s.avg_send_time, s.heartbeats_ok
    );
    for b in &s.router.brokers {
        println!(
            "broker {}: {:?}, {} ok / {} failed, avg {:?}",
            b.broker, b.state, b.successes, b.failures, b.avg_latency
        );
    }
    producer.shutdown();
    Ok(())
}
