//! rmq's metrics in Prometheus format: install a recorder (here metrics-exporter-prometheus, rendering
//! only), send a few messages, print what a Prometheus scrape would read. Needs rmq's `metrics` feature.
//!
//! `scripts/cluster up && cargo run -p rmq-examples --example prometheus`
//! (the name server comes from `RMQ_NAMESRV_ADDR` / `NAMESRV_ADDR`, default 127.0.0.1:9876).

use metrics_exporter_prometheus::PrometheusBuilder;
use rmq::prelude::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Before the producer's first send: handles are registered then.
    let prometheus = PrometheusBuilder::new().install_recorder()?;
    let mut config = ProducerConfig::from_env()?;
    config.producer_group = "prometheus_example_group".into();
    let producer = Producer::new(config)?;
    producer.start()?;
    for i in 0..5 {
        producer.send_sync(&Message::new("MetricsTopic", format!("message {i}")))?;
    }
    producer.send_oneway(&Message::new("MetricsTopic", "oneway"))?;
    producer.send_heartbeat_to_all_broker();
    print!("{}", prometheus.render());
    producer.shutdown();
    Ok(())
}
