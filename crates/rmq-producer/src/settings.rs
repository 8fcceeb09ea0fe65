//! [`SETTINGS`]: the one table of the producer's settings. Each row names a [`ProducerConfig`] setting,
//! the environment variable that overrides it, its unit, and how it is read and written. The
//! environment ([`ProducerConfig::apply_env`]), [`ProducerConfig::set`] (the builder's and the Python
//! package's keyword arguments) and the settings table in docs/configuration.md are all this table, so a
//! setting cannot exist in one and not another.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use rmq_protocol::acl::Credentials;
use rmq_protocol::compress::CompressionType;
use rmq_remoting::{TlsConfig, TlsTrust};
use rmq_routing::RoutingStrategy;

use crate::config::ProducerConfig;
use crate::error::ProducerError;

/// A setting's value as it crosses a boundary (environment text, a Python object, a builder call).
/// Setters accept the natural type or text that parses to it; durations are milliseconds.
#[derive(Clone, Debug, PartialEq)]
pub enum SettingValue {
    /// Unset (an optional setting: no client id, no namespace, no TLS).
    Null,
    /// A flag.
    Bool(bool),
    /// A count, a size in bytes or a duration in milliseconds.
    Int(i64),
    /// A duration in milliseconds with a fraction (pyrocketmq accepts floats for timeouts).
    Float(f64),
    /// Text: names, addresses, and any value in the form its environment variable takes.
    Text(String),
}

impl From<&str> for SettingValue {
    fn from(s: &str) -> Self {
        SettingValue::Text(s.to_owned())
    }
}

impl From<String> for SettingValue {
    fn from(s: String) -> Self {
        SettingValue::Text(s)
    }
}

impl From<bool> for SettingValue {
    fn from(b: bool) -> Self {
        SettingValue::Bool(b)
    }
}

macro_rules! from_int {
    ($($t:ty),*) => {$(
        impl From<$t> for SettingValue {
            fn from(n: $t) -> Self {
                SettingValue::Int(i64::try_from(n).unwrap_or(i64::MAX))
            }
        }
    )*};
}
from_int!(i32, i64, u32, u64, usize);

impl From<f64> for SettingValue {
    fn from(f: f64) -> Self {
        SettingValue::Float(f)
    }
}

impl From<Duration> for SettingValue {
    /// A duration as milliseconds.
    fn from(d: Duration) -> Self {
        ms_value(d)
    }
}

/// What kind of value a setting holds (for documentation and for bindings that convert values).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SettingKind {
    /// Text.
    Text,
    /// Text or unset.
    OptionalText,
    /// A secret (written, never read back: [`ProducerConfig::get`] gives `Null`).
    Secret,
    /// A whole number.
    Count,
    /// Bytes.
    Bytes,
    /// Milliseconds (a fraction allowed).
    Millis,
    /// true / false (also 1/0, yes/no, on/off as text).
    Bool,
    /// One of a fixed set of names.
    Choice(&'static [&'static str]),
}

type Setter = fn(&mut ProducerConfig, &SettingValue) -> Result<(), String>;
type Getter = fn(&ProducerConfig) -> SettingValue;

/// One setting: its name (the field, the keyword argument), its environment variable, its kind, what it
/// does, and how to read and write it.
pub struct Setting {
    /// The name: the [`ProducerConfig`] field (or `remoting.` field) it sets, and the keyword argument.
    pub name: &'static str,
    /// The environment variable that overrides it.
    pub env: &'static str,
    /// The kind of value.
    pub kind: SettingKind,
    /// What it does and its default, one line.
    pub doc: &'static str,
    set: Setter,
    get: Getter,
}

impl std::fmt::Debug for Setting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Setting")
            .field("name", &self.name)
            .field("env", &self.env)
            .finish_non_exhaustive()
    }
}

/// Also read for `namesrv_addr` when `RMQ_NAMESRV_ADDR` is unset (the Java tools' variable).
pub const NAMESRV_ADDR_FALLBACK: &str = "NAMESRV_ADDR";

fn text(v: &SettingValue) -> Result<String, String> {
    match v {
        SettingValue::Text(s) => Ok(s.clone()),
        // The value is not echoed: it may be a secret.
        _ => Err("is not text".into()),
    }
}

fn opt_text(v: &SettingValue) -> Result<Option<String>, String> {
    match v {
        SettingValue::Null => Ok(None),
        SettingValue::Text(s) if s.is_empty() => Ok(None),
        other => text(other).map(Some),
    }
}

fn int(v: &SettingValue, what: &str) -> Result<i64, String> {
    match v {
        SettingValue::Int(n) => Ok(*n),
        SettingValue::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(*f as i64),
        SettingValue::Text(s) => s.trim().parse().map_err(|_| format!("{s:?} is not {what}")),
        other => Err(format!("{other:?} is not {what}")),
    }
}

fn unsigned<T: TryFrom<i64>>(v: &SettingValue, what: &str) -> Result<T, String> {
    let n = int(v, what)?;
    T::try_from(n).map_err(|_| format!("{n} is not {what}"))
}

fn millis(v: &SettingValue) -> Result<Duration, String> {
    const WHAT: &str = "a number of milliseconds";
    let ms = match v {
        SettingValue::Int(n) => *n as f64,
        SettingValue::Float(f) => *f,
        SettingValue::Text(s) => s
            .trim()
            .parse::<f64>()
            .map_err(|_| format!("{s:?} is not {WHAT}"))?,
        other => return Err(format!("{other:?} is not {WHAT}")),
    };
    if !ms.is_finite() || !(0.0..=1.0e12).contains(&ms) {
        return Err(format!("{ms} is not {WHAT}"));
    }
    Ok(Duration::from_micros((ms * 1000.0).round() as u64))
}

fn flag(v: &SettingValue) -> Result<bool, String> {
    match v {
        SettingValue::Bool(b) => Ok(*b),
        SettingValue::Int(0) => Ok(false),
        SettingValue::Int(1) => Ok(true),
        SettingValue::Text(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(true),
            "false" | "0" | "no" | "off" => Ok(false),
            _ => Err(format!("{s:?} is not true/false")),
        },
        other => Err(format!("{other:?} is not true/false")),
    }
}

fn ms_value(d: Duration) -> SettingValue {
    let ms = d.as_micros();
    if ms.is_multiple_of(1000) {
        SettingValue::Int(i64::try_from(ms / 1000).unwrap_or(i64::MAX))
    } else {
        SettingValue::Float(ms as f64 / 1000.0)
    }
}

fn count_value(n: impl TryInto<i64>) -> SettingValue {
    SettingValue::Int(n.try_into().unwrap_or(i64::MAX))
}

fn opt_value(s: &Option<String>) -> SettingValue {
    s.clone().map_or(SettingValue::Null, SettingValue::Text)
}

const STRATEGIES: &[&str] = &["round_robin", "random", "message_hash"];
const CODECS: &[&str] = &["zlib", "lz4", "zstd"];

/// `advertised=dial;advertised=dial` (each `host:port`) into a map.
fn parse_override(value: &str) -> Result<BTreeMap<String, String>, String> {
    value
        .split(';')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((from, to)) if !from.trim().is_empty() && !to.trim().is_empty() => {
                Ok((from.trim().to_owned(), to.trim().to_owned()))
            }
            _ => Err(format!(
                "{pair:?} is not advertised=dial (host:port=host:port)"
            )),
        })
        .collect()
}

fn tls_mut(c: &mut ProducerConfig) -> &mut TlsConfig {
    c.remoting.tls.get_or_insert_with(TlsConfig::default)
}

/// A row of [`SETTINGS`] (a macro only to keep the table one row per setting).
macro_rules! row {
    ($name:literal, $env:literal, $kind:expr, $doc:literal, |$c:ident, $v:ident| $set:expr, |$g:ident| $get:expr) => {
        Setting {
            name: $name,
            env: $env,
            kind: $kind,
            doc: $doc,
            set: |$c, $v| {
                $set;
                Ok(())
            },
            get: |$g| $get,
        }
    };
}

use SettingKind as K;

/// Every setting of the producer: name, environment variable, kind, what it does, and its default.
/// Nested settings (`health`, most of `remoting`) are set in Rust only; the ones here are the ones a
/// deployment changes.
pub static SETTINGS: &[Setting] = &[
    row!(
        "producer_group",
        "RMQ_PRODUCER_GROUP",
        K::Text,
        "Producer group (required; not DEFAULT_PRODUCER).",
        |c, v| c.producer_group = text(v)?,
        |c| c.producer_group.clone().into()
    ),
    row!(
        "client_id",
        "RMQ_CLIENT_ID",
        K::OptionalText,
        "Client id in heartbeats; none builds Java's form ip@pid#nanos.",
        |c, v| c.client_id = opt_text(v)?,
        |c| opt_value(&c.client_id)
    ),
    row!(
        "client_ip",
        "RMQ_CLIENT_IP",
        K::Text,
        "Address the client id and message ids name.",
        |c, v| c.client_ip = text(v)?
            .trim()
            .parse()
            .map_err(|_| "not an IP address".to_owned())?,
        |c| c.client_ip.to_string().into()
    ),
    row!(
        "namesrv_addr",
        "RMQ_NAMESRV_ADDR",
        K::Text,
        "Name servers, host:port;host:port (NAMESRV_ADDR is read too when RMQ_NAMESRV_ADDR is unset).",
        |c, v| c.namesrv_addr = text(v)?,
        |c| c.namesrv_addr.clone().into()
    ),
    row!(
        "send_msg_timeout",
        "RMQ_SEND_MSG_TIMEOUT",
        K::Millis,
        "Total time of a send, retries included.",
        |c, v| c.send_msg_timeout = millis(v)?,
        |c| ms_value(c.send_msg_timeout)
    ),
    row!(
        "retry_times",
        "RMQ_RETRY_TIMES",
        K::Count,
        "Extra attempts after a failed send, on another broker when possible.",
        |c, v| c.retry_times = unsigned(v, "a count")?,
        |c| count_value(c.retry_times)
    ),
    row!(
        "max_message_size",
        "RMQ_MAX_MESSAGE_SIZE",
        K::Bytes,
        "Largest body before compression. 4 MiB by default.",
        |c, v| c.max_message_size = unsigned(v, "a number of bytes")?,
        |c| count_value(c.max_message_size)
    ),
    row!(
        "poll_name_server_interval",
        "RMQ_POLL_NAME_SERVER_INTERVAL",
        K::Millis,
        "How often cached routes are looked at.",
        |c, v| c.poll_name_server_interval = millis(v)?,
        |c| ms_value(c.poll_name_server_interval)
    ),
    row!(
        "update_topic_route_info_interval",
        "RMQ_UPDATE_TOPIC_ROUTE_INFO_INTERVAL",
        K::Millis,
        "A route older than this is fetched again.",
        |c, v| c.update_topic_route_info_interval = millis(v)?,
        |c| ms_value(c.update_topic_route_info_interval)
    ),
    row!(
        "heartbeat_broker_interval",
        "RMQ_HEARTBEAT_BROKER_INTERVAL",
        K::Millis,
        "Heartbeat period to every master broker.",
        |c, v| c.heartbeat_broker_interval = millis(v)?,
        |c| ms_value(c.heartbeat_broker_interval)
    ),
    row!(
        "mq_client_api_timeout",
        "RMQ_MQ_CLIENT_API_TIMEOUT",
        K::Millis,
        "Timeout of name server and heartbeat calls.",
        |c, v| c.mq_client_api_timeout = millis(v)?,
        |c| ms_value(c.mq_client_api_timeout)
    ),
    row!(
        "send_latency_enable",
        "RMQ_SEND_LATENCY_ENABLE",
        K::Bool,
        "Java's latency fault tolerance.",
        |c, v| c.send_latency_enable = flag(v)?,
        |c| c.send_latency_enable.into()
    ),
    row!(
        "compress_msg_body_over",
        "RMQ_COMPRESS_MSG_BODY_OVER",
        K::Bytes,
        "Bodies of at least this many bytes are compressed.",
        |c, v| c.compress_msg_body_over = unsigned(v, "a number of bytes")?,
        |c| count_value(c.compress_msg_body_over)
    ),
    row!(
        "compression",
        "RMQ_COMPRESSION",
        K::Choice(CODECS),
        "Codec of compressed bodies (lz4 and zstd need the crate features and 5.1+ consumers).",
        |c, v| c.compression =
            CompressionType::from_name(&text(v)?).ok_or("not zlib, lz4 or zstd")?,
        |c| c.compression.name().into()
    ),
    row!(
        "compression_level",
        "RMQ_COMPRESSION_LEVEL",
        K::Count,
        "zlib 0-9, zstd 1-22.",
        |c, v| c.compression_level = unsigned(v, "a level")?,
        |c| count_value(c.compression_level)
    ),
    row!(
        "retry_another_broker_when_not_store_ok",
        "RMQ_RETRY_ANOTHER_BROKER_WHEN_NOT_STORE_OK",
        K::Bool,
        "Retry when a broker stored with a degraded status (may duplicate).",
        |c, v| c.retry_another_broker_when_not_store_ok = flag(v)?,
        |c| c.retry_another_broker_when_not_store_ok.into()
    ),
    row!(
        "default_topic_queue_nums",
        "RMQ_DEFAULT_TOPIC_QUEUE_NUMS",
        K::Count,
        "Queues of a topic created on first send.",
        |c, v| c.default_topic_queue_nums = unsigned(v, "a count")?,
        |c| count_value(c.default_topic_queue_nums)
    ),
    row!(
        "routing_strategy",
        "RMQ_ROUTING_STRATEGY",
        K::Choice(STRATEGIES),
        "How queues are chosen.",
        |c, v| c.routing_strategy = RoutingStrategy::from_name(&text(v)?)
            .ok_or("not round_robin, random or message_hash")?,
        |c| c.routing_strategy.name().into()
    ),
    row!(
        "batch_size",
        "RMQ_BATCH_SIZE",
        K::Count,
        "Most messages in one batch request of send_batch.",
        |c, v| c.batch_size = unsigned(v, "a count")?,
        |c| count_value(c.batch_size)
    ),
    row!(
        "async_send_semaphore",
        "RMQ_ASYNC_SEND_SEMAPHORE",
        K::Count,
        "Most asynchronous sends in flight.",
        |c, v| c.async_send_semaphore = unsigned(v, "a count")?,
        |c| count_value(c.async_send_semaphore)
    ),
    row!(
        "async_send_block",
        "RMQ_ASYNC_SEND_BLOCK",
        K::Bool,
        "At the bound, wait for room up to the send's timeout (true) or fail with Overloaded (false).",
        |c, v| c.async_send_block = flag(v)?,
        |c| c.async_send_block.into()
    ),
    row!(
        "auto_batch",
        "RMQ_AUTO_BATCH",
        K::Bool,
        "Asynchronous sends that can share a request wait up to auto_batch_linger and go as one batch; each caller keeps its own outcome.",
        |c, v| c.auto_batch = flag(v)?,
        |c| c.auto_batch.into()
    ),
    row!(
        "auto_batch_linger",
        "RMQ_AUTO_BATCH_LINGER",
        K::Millis,
        "How long an auto-batched message waits for others (at most 30 s).",
        |c, v| c.auto_batch_linger = millis(v)?,
        |c| ms_value(c.auto_batch_linger)
    ),
    row!(
        "auto_batch_max_bytes",
        "RMQ_AUTO_BATCH_MAX_BYTES",
        K::Bytes,
        "Most body bytes in one auto-batch request (as Java's batchMaxBytes counts); a full one goes at once.",
        |c, v| c.auto_batch_max_bytes = unsigned(v, "a number of bytes")?,
        |c| count_value(c.auto_batch_max_bytes)
    ),
    row!(
        "broker_addr_override",
        "RMQ_BROKER_ADDR_OVERRIDE",
        K::Text,
        "Broker addresses to dial instead of the advertised ones: advertised=dial;advertised=dial.",
        |c, v| c.broker_addr_override = parse_override(&text(v)?)?,
        |c| c
            .broker_addr_override
            .iter()
            .map(|(a, d)| format!("{a}={d}"))
            .collect::<Vec<_>>()
            .join(";")
            .into()
    ),
    row!(
        "namespace",
        "RMQ_NAMESPACE",
        K::OptionalText,
        "Namespace topics and the group are wrapped in.",
        |c, v| c.namespace = opt_text(v)?,
        |c| opt_value(&c.namespace)
    ),
    row!(
        "trace",
        "RMQ_TRACE",
        K::Bool,
        "Message trace (Java's enableMsgTrace).",
        |c, v| c.trace = flag(v)?,
        |c| c.trace.into()
    ),
    row!(
        "trace_topic",
        "RMQ_TRACE_TOPIC",
        K::Text,
        "Where trace records go.",
        |c, v| c.trace_topic = text(v)?,
        |c| c.trace_topic.clone().into()
    ),
    row!(
        "access_key",
        "RMQ_ACCESS_KEY",
        K::OptionalText,
        "ACL access key (with secret_key).",
        |c, v| set_credentials(c, Some(v), None)?,
        |c| c
            .credentials
            .as_ref()
            .map_or(SettingValue::Null, |k| k.access_key().into())
    ),
    row!(
        "secret_key",
        "RMQ_SECRET_KEY",
        K::Secret,
        "ACL secret key (with access_key); never shown.",
        |c, v| set_credentials(c, None, Some(v))?,
        |_c| SettingValue::Null
    ),
    row!(
        "security_token",
        "RMQ_SECURITY_TOKEN",
        K::Secret,
        "ACL security token (with the keys); never shown.",
        |c, v| c.credentials = match (opt_text(v)?, &c.credentials) {
            (Some(t), Some(k)) => Some(
                k.clone()
                    .with_security_token(t)
                    .map_err(|e| e.to_string())?
            ),
            (Some(_), None) => return Err("set without access_key and secret_key".into()),
            (None, k) => k.clone().map(Credentials::without_security_token),
        },
        |_c| SettingValue::Null
    ),
    row!(
        "connect_timeout",
        "RMQ_CONNECT_TIMEOUT",
        K::Millis,
        "TCP (and TLS) connect timeout.",
        |c, v| c.remoting.connect_timeout = millis(v)?,
        |c| ms_value(c.remoting.connect_timeout)
    ),
    row!(
        "connections_per_addr",
        "RMQ_CONNECTIONS_PER_ADDR",
        K::Count,
        "Connections kept to each broker.",
        |c, v| c.remoting.connections_per_addr = unsigned(v, "a count")?,
        |c| count_value(c.remoting.connections_per_addr)
    ),
    row!(
        "tls",
        "RMQ_TLS",
        K::Bool,
        "TLS on every connection, trusting the system roots unless tls_ca_file is set (needs the tls feature).",
        |c, v| if flag(v)? {
            tls_mut(c);
        } else {
            c.remoting.tls = None
        },
        |c| c.remoting.tls.is_some().into()
    ),
    row!(
        "tls_ca_file",
        "RMQ_TLS_CA",
        K::OptionalText,
        "PEM file of the CAs to trust; setting it turns TLS on (none: the system roots).",
        |c, v| if let Some(path) = opt_text(v)? {
            tls_mut(c).trust = TlsTrust::CaFile(path.into())
        } else if let Some(t) = &mut c.remoting.tls {
            t.trust = TlsTrust::SystemRoots
        },
        |c| match c.remoting.tls.as_ref().map(|t| &t.trust) {
            Some(TlsTrust::CaFile(p)) => p.display().to_string().into(),
            _ => SettingValue::Null,
        }
    ),
    row!(
        "tls_server_name",
        "RMQ_TLS_SERVER_NAME",
        K::OptionalText,
        "Name the server certificate must hold; setting it turns TLS on (none: the host dialed).",
        |c, v| match opt_text(v)? {
            Some(n) => tls_mut(c).server_name = Some(n),
            None =>
                if let Some(t) = &mut c.remoting.tls {
                    t.server_name = None
                },
        },
        |c| c
            .remoting
            .tls
            .as_ref()
            .map_or(SettingValue::Null, |t| opt_value(&t.server_name))
    ),
];

/// Sets the keys. Both non-empty: new credentials (no token). One non-empty alone: that half of the
/// credentials already set replaced, else an error (set the two together). An empty or None key alone
/// (or both) removes the credentials. An error never names a value.
fn set_credentials(
    c: &mut ProducerConfig,
    ak: Option<&SettingValue>,
    sk: Option<&SettingValue>,
) -> Result<(), String> {
    // Outer None: not given; inner None: given empty.
    let ak = ak.map(opt_text).transpose()?;
    let sk = sk.map(opt_text).transpose()?;
    let new = match (ak, sk, &c.credentials) {
        (None, None, old) => old.clone(),
        (Some(None), None | Some(None), _) | (None, Some(None), _) => None,
        (Some(None), Some(Some(_)), _) => return Err("access_key is empty".into()),
        (Some(Some(_)), Some(None), _) => return Err("secret_key is empty".into()),
        (Some(Some(ak)), Some(Some(sk)), _) => {
            Some(Credentials::new(ak, sk).map_err(|e| e.to_string())?)
        }
        (ak, sk, Some(old)) => Some(
            old.replaced(ak.flatten(), sk.flatten())
                .map_err(|e| e.to_string())?,
        ),
        (Some(Some(_)), None, None) => {
            return Err("set without secret_key (set access_key and secret_key together)".into());
        }
        (None, Some(Some(_)), None) => {
            return Err("set without access_key (set access_key and secret_key together)".into());
        }
    };
    c.credentials = new;
    Ok(())
}

impl ProducerConfig {
    /// Parses a broker address override in the form `RMQ_BROKER_ADDR_OVERRIDE` takes:
    /// `advertised=dial;advertised=dial` (each `host:port`).
    pub fn parse_broker_addr_override(
        value: &str,
    ) -> Result<BTreeMap<String, String>, ProducerError> {
        parse_override(value).map_err(|reason| ProducerError::Config {
            field: "broker_addr_override",
            reason,
        })
    }
}

/// The row of `name`.
pub fn setting(name: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| s.name == name)
}

impl ProducerConfig {
    /// Sets the setting `name` ([`SETTINGS`]) to `value`: the keyword arguments of the builder
    /// ([`crate::ProducerConfigBuilder::set`]) and of the Python package. The error names the setting.
    pub fn set(&mut self, name: &str, value: impl Into<SettingValue>) -> Result<(), ProducerError> {
        let Some(s) = setting(name) else {
            return Err(ProducerError::Config {
                field: "setting",
                reason: format!("no setting named {name:?}"),
            });
        };
        self.set_row(s, s.name, &value.into())
    }

    /// Several settings at once. The keys go together, so `access_key` and `secret_key` may come in
    /// either order.
    pub fn set_all<'a>(
        &mut self,
        values: impl IntoIterator<Item = (&'a str, SettingValue)>,
    ) -> Result<(), ProducerError> {
        let (mut ak, mut sk, mut rest) = (None, None, Vec::new());
        for (name, value) in values {
            match name {
                "access_key" => ak = Some(value),
                "secret_key" => sk = Some(value),
                _ => rest.push((name, value)),
            }
        }
        if ak.is_some() || sk.is_some() {
            let row = setting(if ak.is_some() {
                "access_key"
            } else {
                "secret_key"
            });
            set_credentials(self, ak.as_ref(), sk.as_ref()).map_err(|reason| {
                ProducerError::Config {
                    field: row.map_or("credentials", |r| r.name),
                    reason,
                }
            })?;
        }
        rest.into_iter()
            .try_for_each(|(name, value)| self.set(name, value))
    }

    /// The value of the setting `name`, `None` for an unknown name. Secrets read as `Null`.
    pub fn get(&self, name: &str) -> Option<SettingValue> {
        setting(name).map(|s| (s.get)(self))
    }

    fn set_row(
        &mut self,
        s: &Setting,
        label: &'static str,
        value: &SettingValue,
    ) -> Result<(), ProducerError> {
        (s.set)(self, value).map_err(|reason| ProducerError::Config {
            field: label,
            reason,
        })
    }

    /// The default configuration with the environment's overrides ([`ProducerConfig::apply_env`]).
    pub fn from_env() -> Result<ProducerConfig, ProducerError> {
        let mut c = ProducerConfig::default();
        c.apply_env()?;
        Ok(c)
    }

    /// Overrides settings from the process environment (the `env` column of [`SETTINGS`]). A value that
    /// does not parse is an error naming the variable, never ignored.
    pub fn apply_env(&mut self) -> Result<(), ProducerError> {
        self.apply_env_from(|k| std::env::var(k).ok())
    }

    /// [`ProducerConfig::apply_env`] reading variables through `lookup` (for tests and other sources).
    pub fn apply_env_from(
        &mut self,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<(), ProducerError> {
        let read = |s: &Setting| {
            lookup(s.env).or_else(|| {
                (s.name == "namesrv_addr")
                    .then(|| lookup(NAMESRV_ADDR_FALLBACK))
                    .flatten()
            })
        };
        let (ak, sk) = (setting("access_key"), setting("secret_key"));
        let key = |row: Option<&Setting>| row.and_then(read).map(SettingValue::Text);
        let (ak_value, sk_value) = (key(ak), key(sk));
        set_credentials(self, ak_value.as_ref(), sk_value.as_ref()).map_err(|reason| {
            let var = match (&ak_value, &sk_value) {
                (Some(_), Some(_)) => "credentials",
                (Some(_), None) => "RMQ_ACCESS_KEY",
                _ => "RMQ_SECRET_KEY",
            };
            ProducerError::Config { field: var, reason }
        })?;
        for s in SETTINGS
            .iter()
            .filter(|s| !matches!(s.name, "access_key" | "secret_key"))
        {
            if let Some(v) = read(s) {
                self.set_row(s, s.env, &SettingValue::Text(v))?;
            }
        }
        Ok(())
    }
}

/// The settings as a Markdown table (docs/configuration.md holds exactly this; a test checks it).
pub fn settings_markdown() -> String {
    let defaults = ProducerConfig::default();
    let mut out = String::from(
        "| setting (keyword) | environment | kind | default | what it does |\n|---|---|---|---|---|\n",
    );
    for s in SETTINGS {
        let kind = match s.kind {
            K::Text => "text".to_owned(),
            K::OptionalText => "text or none".to_owned(),
            K::Secret => "secret".to_owned(),
            K::Count => "count".to_owned(),
            K::Bytes => "bytes".to_owned(),
            K::Millis => "milliseconds".to_owned(),
            K::Bool => "bool".to_owned(),
            K::Choice(names) => names.join(" / "),
        };
        let default = match (s.get)(&defaults) {
            SettingValue::Null => "none".to_owned(),
            SettingValue::Bool(b) => b.to_string(),
            SettingValue::Int(n) => n.to_string(),
            SettingValue::Float(f) => f.to_string(),
            SettingValue::Text(t) if t.is_empty() => "(empty)".to_owned(),
            SettingValue::Text(t) => t,
        };
        let _ = writeln!(
            out,
            "| `{}` | `{}` | {kind} | {default} | {} |",
            s.name, s.env, s.doc
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

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
            ("RMQ_CLIENT_IP", "localhost"),
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

    /// A value that changes each setting from its default, as its environment variable takes it.
    fn changed(s: &Setting) -> &'static str {
        match s.name {
            "client_ip" => "10.1.2.3",
            "namesrv_addr" => "127.0.0.1:1",
            "send_latency_enable"
            | "retry_another_broker_when_not_store_ok"
            | "trace"
            | "tls"
            | "auto_batch" => "true",
            "async_send_block" => "false",
            "compression" => "zstd",
            "routing_strategy" => "random",
            "broker_addr_override" => {
                "10.0.0.1:10911=127.0.0.1:30911; 10.0.0.2:10911=127.0.0.1:30912"
            }
            "tls_ca_file" => "/tmp/ca.pem",
            _ => match s.kind {
                K::Count | K::Bytes | K::Millis => "7",
                _ => "other",
            },
        }
    }

    /// Every row's variable changes the configuration, and what it set reads back through `get` (the
    /// environment, `set` and `get` are the same table; `RMQ_BATCH_SIZE` was once listed and ignored).
    #[test]
    fn every_variable_is_read_and_reads_back() {
        // Credentials already set, so each credential variable alone changes them.
        let base = ProducerConfig {
            credentials: Some(Credentials::new("ak", "sk").unwrap()),
            ..ProducerConfig::default()
        };
        for s in SETTINGS {
            let mut c = base.clone();
            c.apply_env_from(env(&[(s.env, changed(s))])).unwrap();
            assert_ne!(c, base, "{} was not read", s.env);
            let mut by_name = base.clone();
            by_name.set(s.name, changed(s)).unwrap();
            assert_eq!(by_name, c, "{}: set and the environment differ", s.name);
            if s.kind != K::Secret {
                let got = c.get(s.name).unwrap();
                let mut again = base.clone();
                again.set(s.name, got.clone()).unwrap();
                assert_eq!(
                    again, c,
                    "{}: get gave {got:?}, which does not set it back",
                    s.name
                );
            }
        }
        let mut c = ProducerConfig::default();
        c.apply_env_from(env(&[("RMQ_BROKER_ADDR_OVERRIDE", "a:1=b:2; c:3=d:4")]))
            .unwrap();
        assert_eq!(
            c.broker_addr_override.get("c:3").map(String::as_str),
            Some("d:4")
        );
        let e = ProducerConfig::default()
            .apply_env_from(env(&[("RMQ_BROKER_ADDR_OVERRIDE", "a:1")]))
            .unwrap_err();
        assert!(e.to_string().contains("advertised=dial"), "{e}");
        let names: std::collections::HashSet<_> = SETTINGS.iter().map(|s| s.name).collect();
        let vars: std::collections::HashSet<_> = SETTINGS.iter().map(|s| s.env).collect();
        assert_eq!((names.len(), vars.len()), (SETTINGS.len(), SETTINGS.len()));
    }

    /// Every top-level field of the config is a row, or one of the few set in Rust only.
    #[test]
    fn every_field_is_in_the_table() {
        let debug = format!("{:#?}", ProducerConfig::default());
        let fields: Vec<&str> = debug
            .lines()
            .filter(|l| l.starts_with("    ") && !l.starts_with("     "))
            .filter_map(|l| l.trim().split_once(':').map(|(f, _)| f))
            .collect();
        assert!(fields.len() > 20, "{fields:?}");
        for f in fields {
            let rust_only = matches!(f, "health" | "remoting" | "credentials");
            assert!(
                rust_only || setting(f).is_some(),
                "field {f} has no row in SETTINGS"
            );
        }
    }

    #[test]
    fn values_convert_as_python_and_the_environment_give_them() {
        let mut c = ProducerConfig::default();
        c.set_all([
            ("send_msg_timeout", SettingValue::Float(1500.5)),
            ("secret_key", "very-secret".into()),
            ("access_key", "ak".into()),
            ("trace", true.into()),
            ("client_id", SettingValue::Null),
        ])
        .unwrap();
        assert_eq!(c.send_msg_timeout, Duration::from_micros(1_500_500));
        assert_eq!(c.get("send_msg_timeout"), Some(SettingValue::Float(1500.5)));
        assert_eq!(c.get("access_key"), Some("ak".into()));
        assert_eq!(c.get("secret_key"), Some(SettingValue::Null));
        assert_eq!(c.get("trace"), Some(true.into()));
        assert_eq!(c.get("nope"), None);
        for (name, bad) in [
            ("retry_times", SettingValue::Float(1.5)),
            ("retry_times", SettingValue::Int(-1)),
            ("send_msg_timeout", SettingValue::Float(f64::NAN)),
            ("trace", SettingValue::Int(2)),
            ("producer_group", SettingValue::Int(2)),
        ] {
            let e = c.set(name, bad.clone()).unwrap_err();
            assert!(
                matches!(e, ProducerError::Config { field, .. } if field == name),
                "{name} {bad:?}: {e}"
            );
        }
        let e = ProducerConfig::default()
            .set("secret_key", SettingValue::Int(12345))
            .unwrap_err();
        assert!(!e.to_string().contains("12345"), "{e}");
        // A bad token leaves the credentials as they were; None removes the token, not the keys.
        c.set("security_token", "tok").unwrap();
        assert!(c.set("security_token", SettingValue::Int(1)).is_err());
        assert!(
            c.credentials
                .as_ref()
                .is_some_and(Credentials::has_security_token)
        );
        c.set("security_token", SettingValue::Null).unwrap();
        assert!(
            c.credentials
                .as_ref()
                .is_some_and(|k| !k.has_security_token())
        );
        // One key over credentials already set replaces that half; an empty key removes them.
        c.set("access_key", "ak2").unwrap();
        assert_eq!(c.get("access_key"), Some("ak2".into()));
        c.set("access_key", "").unwrap();
        assert_eq!(c.credentials, None);
        let e = c.set("access_key", "alone").unwrap_err();
        assert!(e.to_string().contains("together"), "{e}");
        // Durations too large for an i64 of milliseconds read back saturated, not wrapped.
        assert_eq!(
            SettingValue::from(Duration::from_secs(u64::MAX)),
            SettingValue::Int(i64::MAX)
        );
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

    /// docs/configuration.md holds the table this module prints (skipped where the docs are absent,
    /// as in a packaged crate).
    #[test]
    fn the_docs_hold_this_table() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/configuration.md");
        let Ok(doc) = std::fs::read_to_string(path) else {
            return;
        };
        let table = settings_markdown();
        if !doc.contains(&table) {
            let out = std::env::temp_dir().join("rmq-settings-table.md");
            let _ = std::fs::write(&out, &table);
            panic!(
                "docs/configuration.md does not hold the settings table; the current one is in {}",
                out.display()
            );
        }
    }
}
