//! What the producer reports about itself: sends, retries, routes and their age, broker health.
//!
//! `cargo run -p rmq-examples --example stats`

use rmq::prelude::*;

fn main() -> Result<(), ProducerError> {
    let mut config = ProducerConfig::from_env()?;
    config.producer_group = "stats_group".into();
    let producer = Producer::new(config)?;
    producer.start()?;
    for i in 0..50 {
        producer.send_sync(&Message::new("StatsTopic", format!("m{i}")))?;
    }
    let s = producer.get_stats();
    println!(
        "sent {} failed {} retries {} success rate {:.3} avg {:?}",
        s.sent, s.failed, s.retries, s.success_rate, s.avg_send_time
    );
    for r in &s.routes {
        println!(
            "route {}: {} queues on {} brokers, age {:?}, stale {}",
            r.topic, r.queues, r.brokers, r.age, r.stale
        );
    }
    for b in &s.router.brokers {
        println!(
            "broker {}: {:?}, {} ok / {} failed, avg {:?} max {:?}",
            b.broker, b.state, b.successes, b.failures, b.avg_latency, b.max_latency
        );
    }
    producer.shutdown();
    Ok(())
}
