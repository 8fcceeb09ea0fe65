//! Ready-made configurations, a builder, and environment overrides.

use std::time::Duration;

use rmq_routing::RoutingStrategy;

use crate::config::ProducerConfig;
use crate::error::ProducerError;

/// The template names [`get_config`] knows, with their aliases.
pub const TEMPLATES: &[&str] = &[
    "default",
    "development",
    "production",
    "high_performance",
    "testing",
];

/// A named template (the seed's values, Java's defaults for everything they do not set):
///
/// | name (aliases) | what it changes from the default |
/// |---|---|
/// | `default` | nothing |
/// | `development` (`dev`) | 5 s timeout, 1 retry, batches of 16 |
/// | `production` (`prod`) | 3 retries, retry another broker on degraded stores, latency fault tolerance on |
/// | `high_performance` (`high-perf`) | 1 s timeout, 1 retry, compress from 1 MiB, 2 MiB max body, random routing, 50,000 async sends in flight, batches of 64, latency fault tolerance on |
/// | `testing` (`test`) | group `TEST_PRODUCER`, 10 s timeout, no retry, batches of 8 |
///
/// Templates leave the producer group empty (except `testing`); set it before starting. An unknown name
/// is an error rather than a silent fallback to the default.
pub fn get_config(name: &str) -> Result<ProducerConfig, ProducerError> {
    let mut c = ProducerConfig::default();
    match name.to_ascii_lowercase().as_str() {
        "default" => {}
        "development" | "dev" => {
            c.send_msg_timeout = Duration::from_secs(5);
            c.retry_times = 1;
            c.batch_size = 16;
        }
        "production" | "prod" => {
            c.send_msg_timeout = Duration::from_secs(3);
            c.retry_times = 3;
            c.retry_another_broker_when_not_store_ok = true;
            c.send_latency_enable = true;
            c.routing_strategy = RoutingStrategy::RoundRobin;
        }
        "high_performance" | "high-perf" => {
            c.send_msg_timeout = Duration::from_secs(1);
            c.retry_times = 1;
            c.compress_msg_body_over = 1024 * 1024;
            c.max_message_size = 2 * 1024 * 1024;
            c.routing_strategy = RoutingStrategy::Random;
            c.async_send_semaphore = 50_000;
            c.batch_size = 64;
            c.send_latency_enable = true;
        }
        "testing" | "test" => {
            c.producer_group = "TEST_PRODUCER".into();
            c.send_msg_timeout = Duration::from_secs(10);
            c.retry_times = 0;
            c.batch_size = 8;
        }
        other => {
            return Err(ProducerError::Config {
                field: "template",
                reason: format!(
                    "unknown template {other:?}; known: {}",
                    TEMPLATES.join(", ")
                ),
            });
        }
    }
    Ok(c)
}

/// A configuration for `group` and `namesrv_addr` with defaults for the rest (validated).
pub fn create_custom_config(
    group: &str,
    namesrv_addr: &str,
) -> Result<ProducerConfig, ProducerError> {
    let c = ProducerConfig::new(group, namesrv_addr);
    c.validate()?;
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates() {
        for name in TEMPLATES
            .iter()
            .chain(&["dev", "prod", "high-perf", "test", "PRODUCTION"])
        {
            let mut c = get_config(name).unwrap();
            if c.producer_group.is_empty() {
                c.producer_group = "G".into();
            }
            c.validate().unwrap();
        }
        let p = get_config("production").unwrap();
        assert_eq!(
            (
                p.retry_times,
                p.send_latency_enable,
                p.retry_another_broker_when_not_store_ok
            ),
            (3, true, true)
        );
        let h = get_config("high_performance").unwrap();
        assert_eq!(
            (h.routing_strategy, h.async_send_semaphore),
            (RoutingStrategy::Random, 50_000)
        );
        assert_eq!(get_config("testing").unwrap().retry_times, 0);
        assert!(matches!(
            get_config("staging"),
            Err(ProducerError::Config {
                field: "template",
                ..
            })
        ));
        assert!(create_custom_config("G", "127.0.0.1:9876").is_ok());
        assert!(create_custom_config("", "127.0.0.1:9876").is_err());
    }
}
