//! rmq on tokio: `.await` every kind of send from tasks; nothing blocks the runtime's threads (a send
//! that finds the in-flight bound reached waits inside its future; route fetches and connects run on
//! the producer's own threads). Works the same on any other executor.
//!
//! `cargo run -p rmq-examples --example tokio_send` (name server from `RMQ_NAMESRV_ADDR`, default
//! 127.0.0.1:9876)

use std::time::{Duration, Instant};

use rmq::prelude::*;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), ProducerError> {
    let mut config = ProducerConfig::from_env()?;
    config.producer_group = "tokio_group".into();
    let producer = Producer::new(config)?;
    producer.start()?;

    // One send, awaited.
    let r = producer
        .send_async(&Message::new("TokioTopic", "hello from tokio"))
        .await?;
    println!(
        "stored {} in {} queue {}",
        r.msg_id, r.broker_name, r.queue_id
    );

    // A thousand concurrent tasks, each awaiting its own send.
    let tasks: Vec<_> = (0..1000)
        .map(|i| {
            let p = producer.clone();
            tokio::spawn(async move {
                p.send_async(&Message::new("TokioTopic", format!("m{i}")))
                    .await
            })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        ok += usize::from(matches!(t.await, Ok(Ok(_))));
    }
    println!("{ok} of 1000 concurrent sends stored");

    // Oneway, batch and ordered sends have futures too.
    producer
        .send_oneway_async(&Message::new("TokioTopic", "fire and forget"))
        .await?;
    let batch: Vec<Message> = (0..10)
        .map(|i| Message::new("TokioTopic", format!("b{i}")))
        .collect();
    let stored = producer.send_batch_async(&batch).await?;
    println!("batch stored as {} request(s)", stored.len());
    let mut order = Message::new("TokioTopic", "order 42: paid");
    order.set_sharding_key("order-42");
    producer.send_async(&order).await?; // one queue per sharding key

    // Wait for whatever is still in flight, then shut down off the runtime's thread (shutdown drains
    // and unregisters from the brokers: it blocks).
    let open = producer
        .flush_async(Instant::now() + Duration::from_secs(5))
        .await?;
    println!("{} sends still open after the flush", open.len());
    tokio::task::spawn_blocking(move || producer.shutdown())
        .await
        .map_err(|_| ProducerError::State("shutdown task failed"))?;
    Ok(())
}
