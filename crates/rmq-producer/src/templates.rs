//! Ready-made configurations, a builder, and environment overrides.

use std::time::Duration;

use rmq_protocol::acl::Credentials;
use rmq_protocol::compress::CompressionType;
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

/// The environment variables [`ProducerConfig::apply_env`] reads. Durations are milliseconds.
pub const ENV_VARS: &[&str] = &[
    "RMQ_PRODUCER_GROUP",
    "RMQ_NAMESRV_ADDR",
    "NAMESRV_ADDR",
    "RMQ_CLIENT_ID",
    "RMQ_SEND_MSG_TIMEOUT",
    "RMQ_RETRY_TIMES",
    "RMQ_MAX_MESSAGE_SIZE",
    "RMQ_POLL_NAME_SERVER_INTERVAL",
    "RMQ_UPDATE_TOPIC_ROUTE_INFO_INTERVAL",
    "RMQ_HEARTBEAT_BROKER_INTERVAL",
    "RMQ_SEND_LATENCY_ENABLE",
    "RMQ_COMPRESS_MSG_BODY_OVER",
    "RMQ_RETRY_ANOTHER_BROKER_WHEN_NOT_STORE_OK",
    "RMQ_DEFAULT_TOPIC_QUEUE_NUMS",
    "RMQ_ROUTING_STRATEGY",
    "RMQ_ASYNC_SEND_SEMAPHORE",
    "RMQ_BATCH_SIZE",
    "RMQ_BROKER_ADDR_OVERRIDE",
    "RMQ_NAMESPACE",
    "RMQ_TRACE",
    "RMQ_TRACE_TOPIC",
    "RMQ_COMPRESSION",
    "RMQ_COMPRESSION_LEVEL",
    "RMQ_ACCESS_KEY",
    "RMQ_SECRET_KEY",
    "RMQ_SECURITY_TOKEN",
];

fn parse<T: std::str::FromStr>(
    var: &'static str,
    value: &str,
    what: &str,
) -> Result<T, ProducerError> {
    value.trim().parse().map_err(|_| ProducerError::Config {
        field: var,
        reason: format!("{value:?} is not {what}"),
    })
}

fn parse_bool(var: &'static str, value: &str) -> Result<bool, ProducerError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(ProducerError::Config {
            field: var,
            reason: format!("{value:?} is not true/false"),
        }),
    }
}

/// `advertised=dial;advertised=dial` into a map.
fn parse_override(
    var: &'static str,
    value: &str,
) -> Result<std::collections::BTreeMap<String, String>, ProducerError> {
    value
        .split(';')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((from, to)) if !from.trim().is_empty() && !to.trim().is_empty() => {
                Ok((from.trim().to_owned(), to.trim().to_owned()))
            }
            _ => Err(ProducerError::Config {
                field: var,
                reason: format!("{pair:?} is not advertised=dial (host:port=host:port)"),
            }),
        })
        .collect()
}

impl ProducerConfig {
    /// Parses a broker address override in the form `RMQ_BROKER_ADDR_OVERRIDE` takes:
    /// `advertised=dial;advertised=dial` (each `host:port`).
    pub fn parse_broker_addr_override(
        value: &str,
    ) -> Result<std::collections::BTreeMap<String, String>, ProducerError> {
        parse_override("broker_addr_override", value)
    }

    /// The default configuration with the environment's overrides ([`ProducerConfig::apply_env`]).
    pub fn from_env() -> Result<ProducerConfig, ProducerError> {
        let mut c = ProducerConfig::default();
        c.apply_env()?;
        Ok(c)
    }

    /// Overrides fields from the process environment ([`ENV_VARS`]). A value that does not parse is an
    /// error naming the variable, never ignored.
    pub fn apply_env(&mut self) -> Result<(), ProducerError> {
        self.apply_env_from(|k| std::env::var(k).ok())
    }

    /// [`ProducerConfig::apply_env`] reading variables through `lookup` (for tests and other sources).
    pub fn apply_env_from(
        &mut self,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<(), ProducerError> {
        self.apply_plain_env(&lookup)?;
        self.apply_credentials_env(&lookup)
    }

    /// `RMQ_ACCESS_KEY` with `RMQ_SECRET_KEY` (either alone replaces that part of credentials already
    /// set), and `RMQ_SECURITY_TOKEN`. The error never includes a value.
    fn apply_credentials_env(
        &mut self,
        lookup: &impl Fn(&str) -> Option<String>,
    ) -> Result<(), ProducerError> {
        let (ak, sk, token) = (
            lookup("RMQ_ACCESS_KEY"),
            lookup("RMQ_SECRET_KEY"),
            lookup("RMQ_SECURITY_TOKEN"),
        );
        let bad = |field: &'static str, reason: String| ProducerError::Config { field, reason };
        let creds = match (ak, sk, &self.credentials) {
            (None, None, _) => self.credentials.clone(),
            (Some(ak), Some(sk), _) => {
                Some(Credentials::new(ak, sk).map_err(|e| bad("credentials", e.to_string()))?)
            }
            (Some(_), None, None) => {
                return Err(bad("RMQ_ACCESS_KEY", "set without RMQ_SECRET_KEY".into()));
            }
            (None, Some(_), None) => {
                return Err(bad("RMQ_SECRET_KEY", "set without RMQ_ACCESS_KEY".into()));
            }
            (ak, sk, Some(old)) => Some(
                old.replaced(ak, sk)
                    .map_err(|e| bad("credentials", e.to_string()))?,
            ),
        };
        self.credentials = match (creds, token) {
            (Some(c), Some(t)) => Some(
                c.with_security_token(t)
                    .map_err(|e| bad("RMQ_SECURITY_TOKEN", e.to_string()))?,
            ),
            (None, Some(_)) => {
                return Err(bad(
                    "RMQ_SECURITY_TOKEN",
                    "set without RMQ_ACCESS_KEY and RMQ_SECRET_KEY".into(),
                ));
            }
            (c, None) => c,
        };
        Ok(())
    }

    fn apply_plain_env(
        &mut self,
        lookup: &impl Fn(&str) -> Option<String>,
    ) -> Result<(), ProducerError> {
        let ms = |var: &'static str, v: &str| {
            parse::<u64>(var, v, "a number of milliseconds").map(Duration::from_millis)
        };
        for &var in ENV_VARS {
            let Some(v) = lookup(var) else { continue };
            match var {
                "RMQ_PRODUCER_GROUP" => self.producer_group = v,
                // RMQ_NAMESRV_ADDR wins over NAMESRV_ADDR (the Java tools' variable).
                "NAMESRV_ADDR" if lookup("RMQ_NAMESRV_ADDR").is_some() => {}
                "RMQ_NAMESRV_ADDR" | "NAMESRV_ADDR" => self.namesrv_addr = v,
                "RMQ_CLIENT_ID" => self.client_id = Some(v),
                "RMQ_SEND_MSG_TIMEOUT" => self.send_msg_timeout = ms(var, &v)?,
                "RMQ_RETRY_TIMES" => self.retry_times = parse(var, &v, "a count")?,
                "RMQ_MAX_MESSAGE_SIZE" => {
                    self.max_message_size = parse(var, &v, "a number of bytes")?
                }
                "RMQ_POLL_NAME_SERVER_INTERVAL" => self.poll_name_server_interval = ms(var, &v)?,
                "RMQ_UPDATE_TOPIC_ROUTE_INFO_INTERVAL" => {
                    self.update_topic_route_info_interval = ms(var, &v)?
                }
                "RMQ_HEARTBEAT_BROKER_INTERVAL" => self.heartbeat_broker_interval = ms(var, &v)?,
                "RMQ_SEND_LATENCY_ENABLE" => self.send_latency_enable = parse_bool(var, &v)?,
                "RMQ_COMPRESS_MSG_BODY_OVER" => {
                    self.compress_msg_body_over = parse(var, &v, "a number of bytes")?
                }
                "RMQ_RETRY_ANOTHER_BROKER_WHEN_NOT_STORE_OK" => {
                    self.retry_another_broker_when_not_store_ok = parse_bool(var, &v)?;
                }
                "RMQ_DEFAULT_TOPIC_QUEUE_NUMS" => {
                    self.default_topic_queue_nums = parse(var, &v, "a count")?
                }
                "RMQ_ASYNC_SEND_SEMAPHORE" => {
                    self.async_send_semaphore = parse(var, &v, "a count")?
                }
                "RMQ_ROUTING_STRATEGY" => {
                    self.routing_strategy = match v.trim().to_ascii_lowercase().as_str() {
                        "round_robin" => RoutingStrategy::RoundRobin,
                        "random" => RoutingStrategy::Random,
                        "message_hash" => RoutingStrategy::MessageHash,
                        _ => {
                            return Err(ProducerError::Config {
                                field: "RMQ_ROUTING_STRATEGY",
                                reason: format!("{v:?} is not round_robin, random or message_hash"),
                            });
                        }
                    }
                }
                "RMQ_BATCH_SIZE" => self.batch_size = parse(var, &v, "a count")?,
                "RMQ_BROKER_ADDR_OVERRIDE" => {
                    self.broker_addr_override = parse_override(var, &v)?;
                }
                "RMQ_NAMESPACE" => self.namespace = Some(v),
                "RMQ_TRACE" => self.trace = parse_bool(var, &v)?,
                "RMQ_TRACE_TOPIC" => self.trace_topic = v,
                "RMQ_COMPRESSION" => {
                    self.compression =
                        CompressionType::from_name(&v).ok_or_else(|| ProducerError::Config {
                            field: var,
                            reason: format!("{v:?} is not zlib, lz4 or zstd"),
                        })?;
                }
                "RMQ_COMPRESSION_LEVEL" => self.compression_level = parse(var, &v, "a level")?,
                // Credentials are put together after the loop: the keys come in two variables.
                "RMQ_ACCESS_KEY" | "RMQ_SECRET_KEY" | "RMQ_SECURITY_TOKEN" => {}
                _ => {
                    return Err(ProducerError::Config {
                        field: var,
                        reason: "listed in ENV_VARS but not read (a bug in rmq)".into(),
                    });
                }
            }
        }
        Ok(())
    }

    /// A builder starting from the defaults.
    pub fn builder(
        group: impl Into<String>,
        namesrv_addr: impl Into<String>,
    ) -> ProducerConfigBuilder {
        ProducerConfigBuilder(ProducerConfig::new(group, namesrv_addr))
    }
}

/// Builds a [`ProducerConfig`]; [`ProducerConfigBuilder::build`] validates it.
#[derive(Clone, Debug)]
pub struct ProducerConfigBuilder(ProducerConfig);

impl ProducerConfigBuilder {
    /// Total time a send may take, retries included (default 3 s).
    pub fn send_msg_timeout(mut self, d: Duration) -> Self {
        self.0.send_msg_timeout = d;
        self
    }

    /// Extra attempts after a failed send (default 2).
    pub fn retry_times(mut self, n: u32) -> Self {
        self.0.retry_times = n;
        self
    }

    /// Largest body in bytes (default 4 MiB).
    pub fn max_message_size(mut self, n: usize) -> Self {
        self.0.max_message_size = n;
        self
    }

    /// Queue choice (default round robin).
    pub fn routing_strategy(mut self, s: RoutingStrategy) -> Self {
        self.0.routing_strategy = s;
        self
    }

    /// Java's latency fault tolerance (default off).
    pub fn send_latency_enable(mut self, on: bool) -> Self {
        self.0.send_latency_enable = on;
        self
    }

    /// Compression threshold in bytes (default 4096).
    pub fn compress_msg_body_over(mut self, n: usize) -> Self {
        self.0.compress_msg_body_over = n;
        self
    }

    /// Most asynchronous sends in flight (default 10,000).
    pub fn async_send_semaphore(mut self, n: usize) -> Self {
        self.0.async_send_semaphore = n;
        self
    }

    /// Heartbeat period (default 30 s).
    pub fn heartbeat_broker_interval(mut self, d: Duration) -> Self {
        self.0.heartbeat_broker_interval = d;
        self
    }

    /// Route refresh period (default 30 s).
    pub fn poll_name_server_interval(mut self, d: Duration) -> Self {
        self.0.poll_name_server_interval = d;
        self
    }

    /// Any other change.
    pub fn with(mut self, f: impl FnOnce(&mut ProducerConfig)) -> Self {
        f(&mut self.0);
        self
    }

    /// The validated configuration.
    pub fn build(self) -> Result<ProducerConfig, ProducerError> {
        self.0.validate()?;
        Ok(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

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

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn environment_overrides() {
        let mut c = ProducerConfig::default();
        c.apply_env_from(env(&[
            ("RMQ_PRODUCER_GROUP", "orders"),
            ("NAMESRV_ADDR", "127.0.0.1:1"),
            ("RMQ_SEND_MSG_TIMEOUT", "1500"),
            ("RMQ_RETRY_TIMES", "4"),
            ("RMQ_ROUTING_STRATEGY", "message_hash"),
            ("RMQ_SEND_LATENCY_ENABLE", "yes"),
        ]))
        .unwrap();
        assert_eq!(c.producer_group, "orders");
        assert_eq!(c.namesrv_addr, "127.0.0.1:1");
        assert_eq!(c.send_msg_timeout, Duration::from_millis(1500));
        assert_eq!(c.retry_times, 4);
        assert_eq!(c.routing_strategy, RoutingStrategy::MessageHash);
        assert!(c.send_latency_enable);
        c.apply_env_from(env(&[
            ("NAMESRV_ADDR", "127.0.0.1:1"),
            ("RMQ_NAMESRV_ADDR", "127.0.0.1:2"),
        ]))
        .unwrap();
        assert_eq!(c.namesrv_addr, "127.0.0.1:2", "RMQ_NAMESRV_ADDR wins");
        for (var, value) in [
            ("RMQ_SEND_MSG_TIMEOUT", "3s"),
            ("RMQ_RETRY_TIMES", "-1"),
            ("RMQ_SEND_LATENCY_ENABLE", "maybe"),
            ("RMQ_ROUTING_STRATEGY", "hash"),
        ] {
            let e = ProducerConfig::default()
                .apply_env_from(env(&[(var, value)]))
                .unwrap_err();
            assert!(
                matches!(e, ProducerError::Config { field, .. } if field == var),
                "{var}: {e}"
            );
        }
    }

    /// Every listed variable changes the configuration (`RMQ_BATCH_SIZE` was once listed and ignored).
    #[test]
    fn every_listed_variable_is_read() {
        let values = [
            ("RMQ_PRODUCER_GROUP", "orders"),
            ("RMQ_NAMESRV_ADDR", "127.0.0.1:1"),
            ("NAMESRV_ADDR", "127.0.0.1:2"),
            ("RMQ_CLIENT_ID", "me"),
            ("RMQ_SEND_MSG_TIMEOUT", "1500"),
            ("RMQ_RETRY_TIMES", "4"),
            ("RMQ_MAX_MESSAGE_SIZE", "1000"),
            ("RMQ_POLL_NAME_SERVER_INTERVAL", "1000"),
            ("RMQ_UPDATE_TOPIC_ROUTE_INFO_INTERVAL", "1000"),
            ("RMQ_HEARTBEAT_BROKER_INTERVAL", "1000"),
            ("RMQ_SEND_LATENCY_ENABLE", "true"),
            ("RMQ_COMPRESS_MSG_BODY_OVER", "10"),
            ("RMQ_RETRY_ANOTHER_BROKER_WHEN_NOT_STORE_OK", "true"),
            ("RMQ_DEFAULT_TOPIC_QUEUE_NUMS", "8"),
            ("RMQ_ROUTING_STRATEGY", "random"),
            ("RMQ_ASYNC_SEND_SEMAPHORE", "10"),
            ("RMQ_BATCH_SIZE", "7"),
            (
                "RMQ_BROKER_ADDR_OVERRIDE",
                "10.0.0.1:10911=127.0.0.1:30911; 10.0.0.2:10911=127.0.0.1:30912",
            ),
            ("RMQ_NAMESPACE", "nsA"),
            ("RMQ_TRACE", "true"),
            ("RMQ_TRACE_TOPIC", "MyTraces"),
            ("RMQ_COMPRESSION", "zstd"),
            ("RMQ_COMPRESSION_LEVEL", "3"),
            ("RMQ_ACCESS_KEY", "other-ak"),
            ("RMQ_SECRET_KEY", "other-sk"),
            ("RMQ_SECURITY_TOKEN", "tok"),
        ];
        assert_eq!(values.len(), ENV_VARS.len());
        // Credentials already set, so each credential variable alone changes them.
        let base = ProducerConfig {
            credentials: Some(Credentials::new("ak", "sk").unwrap()),
            ..ProducerConfig::default()
        };
        for (var, value) in values {
            assert!(ENV_VARS.contains(&var), "{var}");
            let mut c = base.clone();
            c.apply_env_from(env(&[(var, value)])).unwrap();
            assert_ne!(c, base, "{var} was not read");
        }
        let mut c = ProducerConfig::default();
        c.apply_env_from(env(&[("RMQ_BATCH_SIZE", "7")])).unwrap();
        assert_eq!(c.batch_size, 7);
        c.apply_env_from(env(&[values[17]])).unwrap();
        assert_eq!(
            c.broker_addr_override
                .get("10.0.0.2:10911")
                .map(String::as_str),
            Some("127.0.0.1:30912")
        );
        let e = ProducerConfig::default()
            .apply_env_from(env(&[("RMQ_BROKER_ADDR_OVERRIDE", "a:1")]))
            .unwrap_err();
        assert!(e.to_string().contains("advertised=dial"), "{e}");
    }

    #[test]
    fn credentials_from_the_environment() {
        let mut c = ProducerConfig::default();
        c.apply_env_from(env(&[
            ("RMQ_ACCESS_KEY", "ak1"),
            ("RMQ_SECRET_KEY", "very-secret"),
        ]))
        .unwrap();
        assert_eq!(
            c.credentials.as_ref().map(Credentials::access_key),
            Some("ak1")
        );
        assert!(!format!("{c:?}").contains("very-secret"));
        for (vars, field) in [
            (&[("RMQ_ACCESS_KEY", "ak")][..], "RMQ_ACCESS_KEY"),
            (&[("RMQ_SECRET_KEY", "very-secret")][..], "RMQ_SECRET_KEY"),
            (
                &[("RMQ_SECURITY_TOKEN", "very-secret")][..],
                "RMQ_SECURITY_TOKEN",
            ),
            (
                &[("RMQ_ACCESS_KEY", ""), ("RMQ_SECRET_KEY", "very-secret")][..],
                "credentials",
            ),
        ] {
            let e = ProducerConfig::default()
                .apply_env_from(env(vars))
                .unwrap_err();
            assert!(
                matches!(&e, ProducerError::Config { field: f, .. } if *f == field),
                "{e}"
            );
            assert!(!e.to_string().contains("very-secret"), "{e}");
        }
    }

    #[test]
    fn builder_validates() {
        let c = ProducerConfig::builder("G", "127.0.0.1:9876")
            .retry_times(5)
            .send_msg_timeout(Duration::from_secs(2))
            .routing_strategy(RoutingStrategy::Random)
            .with(|c| c.default_topic_queue_nums = 8)
            .build()
            .unwrap();
        assert_eq!((c.retry_times, c.default_topic_queue_nums), (5, 8));
        assert!(
            ProducerConfig::builder("G", "127.0.0.1:9876")
                .async_send_semaphore(0)
                .build()
                .is_err()
        );
    }
}
