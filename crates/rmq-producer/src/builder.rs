//! [`ProducerConfigBuilder`]: a [`ProducerConfig`] built call by call, validated at the end.

use std::time::Duration;

use rmq_routing::RoutingStrategy;

use crate::config::ProducerConfig;
use crate::error::ProducerError;
use crate::settings::SettingValue;

impl ProducerConfig {
    /// A builder starting from the defaults.
    pub fn builder(
        group: impl Into<String>,
        namesrv_addr: impl Into<String>,
    ) -> ProducerConfigBuilder {
        ProducerConfigBuilder {
            config: ProducerConfig::new(group, namesrv_addr),
            error: None,
        }
    }
}

/// Builds a [`ProducerConfig`]; [`ProducerConfigBuilder::build`] validates it.
#[derive(Clone, Debug)]
pub struct ProducerConfigBuilder {
    config: ProducerConfig,
    /// The first failed [`ProducerConfigBuilder::set`], returned by [`ProducerConfigBuilder::build`].
    error: Option<ProducerError>,
}

impl ProducerConfigBuilder {
    /// Total time a send may take, retries included (default 3 s).
    pub fn send_msg_timeout(mut self, d: Duration) -> Self {
        self.config.send_msg_timeout = d;
        self
    }

    /// Extra attempts after a failed send (default 2).
    pub fn retry_times(mut self, n: u32) -> Self {
        self.config.retry_times = n;
        self
    }

    /// Largest body in bytes (default 4 MiB).
    pub fn max_message_size(mut self, n: usize) -> Self {
        self.config.max_message_size = n;
        self
    }

    /// Queue choice (default round robin).
    pub fn routing_strategy(mut self, s: RoutingStrategy) -> Self {
        self.config.routing_strategy = s;
        self
    }

    /// Java's latency fault tolerance (default off).
    pub fn send_latency_enable(mut self, on: bool) -> Self {
        self.config.send_latency_enable = on;
        self
    }

    /// Compression threshold in bytes (default 4096).
    pub fn compress_msg_body_over(mut self, n: usize) -> Self {
        self.config.compress_msg_body_over = n;
        self
    }

    /// Most asynchronous sends in flight (default 10,000).
    pub fn async_send_semaphore(mut self, n: usize) -> Self {
        self.config.async_send_semaphore = n;
        self
    }

    /// Turns auto-batch on: asynchronous sends that can share a request wait up to `linger` for others
    /// and go as one batch request (see [`ProducerConfig::auto_batch`]; default off).
    pub fn auto_batch(mut self, linger: Duration) -> Self {
        self.config.auto_batch = true;
        self.config.auto_batch_linger = linger;
        self
    }

    /// Heartbeat period (default 30 s).
    pub fn heartbeat_broker_interval(mut self, d: Duration) -> Self {
        self.config.heartbeat_broker_interval = d;
        self
    }

    /// Route refresh period (default 30 s).
    pub fn poll_name_server_interval(mut self, d: Duration) -> Self {
        self.config.poll_name_server_interval = d;
        self
    }

    /// Any other change.
    pub fn with(mut self, f: impl FnOnce(&mut ProducerConfig)) -> Self {
        f(&mut self.config);
        self
    }

    /// Sets the setting `name` of [`crate::SETTINGS`] (as its environment variable or a Python keyword
    /// argument would); an unknown name or a bad value is returned by [`ProducerConfigBuilder::build`].
    pub fn set(mut self, name: &str, value: impl Into<SettingValue>) -> Self {
        if self.error.is_none() {
            self.error = self.config.set(name, value).err();
        }
        self
    }

    /// The validated configuration.
    pub fn build(self) -> Result<ProducerConfig, ProducerError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        self.config.validate()?;
        Ok(self.config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_validates() {
        let c = ProducerConfig::builder("G", "127.0.0.1:9876")
            .retry_times(5)
            .send_msg_timeout(Duration::from_secs(2))
            .routing_strategy(RoutingStrategy::Random)
            .with(|c| c.default_topic_queue_nums = 8)
            .set("batch_size", 9)
            .build()
            .unwrap();
        assert_eq!(
            (c.retry_times, c.default_topic_queue_nums, c.batch_size),
            (5, 8, 9)
        );
        assert!(
            ProducerConfig::builder("G", "127.0.0.1:9876")
                .async_send_semaphore(0)
                .build()
                .is_err()
        );
        let e = ProducerConfig::builder("G", "127.0.0.1:9876")
            .set("no_such_setting", 1)
            .set("retry_times", 2)
            .build()
            .unwrap_err();
        assert!(e.to_string().contains("no_such_setting"), "{e}");
    }
}
