//! Configuration from templates, the builder and the environment (`RMQ_*`, `NAMESRV_ADDR`).
//!
//! `RMQ_RETRY_TIMES=4 cargo run -p rmq-examples --example config_templates`

use std::time::Duration;

use rmq::prelude::*;
use rmq::producer::{SETTINGS, TEMPLATES, get_config};

fn main() -> Result<(), ProducerError> {
    for name in TEMPLATES {
        let c = get_config(name)?;
        println!(
            "{name:17} timeout {:?}, retries {}, strategy {:?}, latency fault tolerance {}",
            c.send_msg_timeout, c.retry_times, c.routing_strategy, c.send_latency_enable
        );
    }
    let mut production = get_config("production")?;
    production.producer_group = "orders".into();
    production.apply_env()?; // the environment wins over the template
    println!(
        "production + environment: retries {}",
        production.retry_times
    );

    let built = ProducerConfig::builder("orders", "127.0.0.1:9876")
        .send_msg_timeout(Duration::from_secs(2))
        .retry_times(1)
        .build()?;
    println!("built: {built:?}");
    let vars: Vec<&str> = SETTINGS.iter().map(|s| s.env).collect();
    println!("variables read: {}", vars.join(", "));
    Ok(())
}
