//! [`ProducerConfig`]: every setting of the producer, its default, and its validation.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::Duration;

use rmq_protocol::acl::Credentials;
use rmq_protocol::compress::CompressionType;
use rmq_protocol::{namespace, validate};
use rmq_remoting::RemotingConfig;
use rmq_routing::{HealthPolicy, RoutingStrategy};

use crate::error::ProducerError;

/// The Java client's default trace topic.
const DEFAULT_TRACE_TOPIC: &str = "RMQ_SYS_TRACE_TOPIC";

/// Producer settings. `Default` gives Java's defaults; [`ProducerConfig::validate`] is the one place that
/// checks them (called by [`crate::Producer::new`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProducerConfig {
    /// Producer group (required; not `DEFAULT_PRODUCER`).
    pub producer_group: String,
    /// Client id sent in heartbeats; `None` builds Java's form `ip@pid#nanos`.
    pub client_id: Option<String>,
    /// Address the client id and message ids name. Default 127.0.0.1 (rmq does not probe interfaces).
    pub client_ip: std::net::IpAddr,
    /// Name servers, `"host:port;host:port"`; tried in turn when one fails.
    pub namesrv_addr: String,
    /// Total time a send may take, all retries included. Default 3 s.
    pub send_msg_timeout: Duration,
    /// Extra attempts (on another broker when possible) after a failed synchronous send. Default 2.
    pub retry_times: u32,
    /// Largest body, before compression. Default 4 MiB.
    pub max_message_size: usize,
    /// How often the refresh thread wakes to look at the cached routes. Default 30 s.
    pub poll_name_server_interval: Duration,
    /// A cached route older than this is fetched again when the refresh thread wakes. Default 30 s.
    pub update_topic_route_info_interval: Duration,
    /// How often heartbeats go to every master broker. Default 30 s.
    pub heartbeat_broker_interval: Duration,
    /// Timeout of name server and heartbeat calls. Default 3 s.
    pub mq_client_api_timeout: Duration,
    /// Java's latency fault tolerance. Default off, as in Java. (It sets
    /// `health.latency_fault_tolerance`, which is not read.)
    pub send_latency_enable: bool,
    /// Broker health thresholds: failures before DEGRADED / UNHEALTHY, successes to recover, and the
    /// breaker's periods (a failing broker is kept out for 1 s doubling to 30 s, then tried again).
    pub health: HealthPolicy,
    /// Bodies of at least this many bytes are compressed with `compression`. Default 4096.
    pub compress_msg_body_over: usize,
    /// How bodies are compressed: zlib (default; every RocketMQ consumer reads it), lz4 or zstd (features
    /// `lz4` / `zstd`; read by the Java consumer from 5.1 on, not by 4.x consumers or most other clients).
    pub compression: CompressionType,
    /// Compression level: zlib 0–9 (default 5, as Java), zstd 1–22; lz4 has none.
    pub compression_level: u32,
    /// Retry on another broker when a broker stored the message with a degraded status (10/11/12).
    /// Default false, as in Java (a retry may duplicate the message).
    pub retry_another_broker_when_not_store_ok: bool,
    /// Queues of a topic created automatically on first send. Default 4.
    pub default_topic_queue_nums: i32,
    /// How queues are chosen. Default round robin.
    pub routing_strategy: RoutingStrategy,
    /// Most messages in one batch of [`crate::Producer::send_batch`]. Default 32.
    pub batch_size: usize,
    /// Most asynchronous sends in flight. Default 10,000 (Java's `backPressureForAsyncSendNum`).
    pub async_send_semaphore: usize,
    /// When the bound is reached, wait for room up to the send's timeout (true, default: inside the
    /// future of a future-returning send, on the caller's thread for `send_async_callback`), or fail at
    /// once with `Overloaded` (false).
    pub async_send_block: bool,
    /// Auto-batch: asynchronous and oneway-async sends that may share a request (same topic, `WAIT` and
    /// timeout, routed by round robin or random, no delay, timer, transaction, sharding key, priority,
    /// lite topic or compression, tracing off) wait up to `auto_batch_linger` (at most half their
    /// timeout) for others and go as one batch request; each caller still gets its own outcome and
    /// message id. Synchronous sends never wait. Default off.
    pub auto_batch: bool,
    /// How long a message waits for others with `auto_batch`. Default 5 ms (0: a gathering is due at
    /// once; only messages added before the producer's timer takes it share its request).
    pub auto_batch_linger: Duration,
    /// Most body bytes in one auto-batch request, counted as Java's `batchMaxBytes` counts them (bodies
    /// only; the request itself is kept within `max_message_size`); a full one goes at once. Default
    /// 32 KiB, as Java's.
    pub auto_batch_max_bytes: usize,
    /// Connection settings: header serialization, frame limit, connections per address, connect timeout
    /// and the rest of [`RemotingConfig`].
    pub remoting: RemotingConfig,
    /// Broker addresses to dial instead of the ones the brokers advertise (`advertised → dial`), for
    /// brokers behind NAT or in containers. Applied to every route fetched, so sends, heartbeats and
    /// [`crate::Producer::topic_route`] all use the dialed address. Default empty.
    pub broker_addr_override: BTreeMap<String, String>,
    /// ACL credentials: every request (to brokers and name servers) is signed with them as the Java
    /// client's `AclClientRPCHook` signs, which ACL 1.0 (4.x brokers with `aclEnable`) and ACL 2.0 (5.x
    /// with `authenticationEnabled`) both check. Default none. `Debug` shows the access key only.
    pub credentials: Option<Credentials>,
    /// Namespace: topics and the producer group go on the wire as `namespace%name` (system topics left
    /// alone), every message carries `INSTANCE_ID`, and results name the topic without it, as the Java
    /// client's `setNamespace`. Default none.
    pub namespace: Option<String>,
    /// Message trace, as the Java client's `enableMsgTrace`: a Pub record per stored message, sent in
    /// batches to `trace_topic` by a thread of the producer, never blocking or failing a send.
    /// Default off.
    pub trace: bool,
    /// Where trace records go. Default `RMQ_SYS_TRACE_TOPIC`.
    pub trace_topic: String,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        ProducerConfig {
            producer_group: String::new(),
            client_id: None,
            client_ip: std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
            namesrv_addr: "127.0.0.1:9876".into(),
            send_msg_timeout: Duration::from_secs(3),
            retry_times: 2,
            max_message_size: validate::DEFAULT_MAX_MESSAGE_SIZE,
            poll_name_server_interval: Duration::from_secs(30),
            update_topic_route_info_interval: Duration::from_secs(30),
            heartbeat_broker_interval: Duration::from_secs(30),
            mq_client_api_timeout: Duration::from_secs(3),
            send_latency_enable: false,
            health: HealthPolicy::default(),
            compress_msg_body_over: rmq_protocol::compress::DEFAULT_COMPRESS_THRESHOLD,
            compression: CompressionType::Zlib,
            compression_level: rmq_protocol::compress::DEFAULT_COMPRESS_LEVEL,
            retry_another_broker_when_not_store_ok: false,
            default_topic_queue_nums: 4,
            routing_strategy: RoutingStrategy::RoundRobin,
            batch_size: 32,
            async_send_semaphore: 10_000,
            async_send_block: true,
            auto_batch: false,
            auto_batch_linger: Duration::from_millis(5),
            auto_batch_max_bytes: 32 << 10,
            remoting: RemotingConfig::default(),
            broker_addr_override: BTreeMap::new(),
            credentials: None,
            namespace: None,
            trace: false,
            trace_topic: DEFAULT_TRACE_TOPIC.into(),
        }
    }
}

impl ProducerConfig {
    /// A configuration for `group` and `namesrv_addr`, everything else default.
    pub fn new(group: impl Into<String>, namesrv_addr: impl Into<String>) -> Self {
        ProducerConfig {
            producer_group: group.into(),
            namesrv_addr: namesrv_addr.into(),
            ..Default::default()
        }
    }

    /// The name server addresses.
    pub fn namesrv_list(&self) -> Vec<String> {
        self.namesrv_addr
            .split(';')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// `name` (a topic or group) as it goes on the wire: in [`ProducerConfig::namespace`] when one is set.
    pub fn wire_name<'a>(&self, name: &'a str) -> Cow<'a, str> {
        match &self.namespace {
            Some(ns) => namespace::wrap(ns, name),
            None => Cow::Borrowed(name),
        }
    }

    /// The producer group as it goes on the wire (in the namespace, if any).
    pub fn wire_group(&self) -> Cow<'_, str> {
        self.wire_name(&self.producer_group)
    }

    /// `name` as the caller knows it: without [`ProducerConfig::namespace`].
    pub fn user_name<'a>(&self, name: &'a str) -> Cow<'a, str> {
        match &self.namespace {
            Some(ns) => namespace::unwrap(ns, name),
            None => Cow::Borrowed(name),
        }
    }

    /// Checks every setting; the error names the field and why.
    pub fn validate(&self) -> Result<(), ProducerError> {
        let bad =
            |field: &'static str, why: String| Err(ProducerError::Config { field, reason: why });
        let max_level = match self.compression {
            CompressionType::Zlib => 9,
            CompressionType::Zstd => 22,
            _ => u32::MAX,
        };
        if self.compression_level > max_level {
            return bad(
                "compression_level",
                format!(
                    "{} for {} (at most {max_level})",
                    self.compression_level,
                    self.compression.name()
                ),
            );
        }
        // Refuses a codec this build lacks now, not at the first large message.
        if let Err(e) =
            rmq_protocol::compress::compress(b"probe", self.compression, self.compression_level)
        {
            return bad("compression", e.to_string());
        }
        if self.trace {
            validate::topic(&self.trace_topic).map_err(|e| ProducerError::Config {
                field: "trace_topic",
                reason: e.to_string(),
            })?;
        }
        if let Some(ns) = &self.namespace {
            namespace::validate(ns).map_err(|e| ProducerError::Config {
                field: "namespace",
                reason: e.to_string(),
            })?;
        }
        validate::producer_group(&self.wire_group()).map_err(|e| ProducerError::Config {
            field: "producer_group",
            reason: e.to_string(),
        })?;
        let list = self.namesrv_list();
        if list.is_empty() {
            return bad("namesrv_addr", "no name server address given".into());
        }
        let host_port = |a: &str| {
            a.rsplit_once(':')
                .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0))
        };
        for a in &list {
            if !host_port(a) {
                return bad("namesrv_addr", format!("{a:?} is not host:port"));
            }
        }
        for (from, to) in &self.broker_addr_override {
            if !host_port(from) || !host_port(to) {
                return bad(
                    "broker_addr_override",
                    format!("{from:?} -> {to:?}: both must be host:port"),
                );
            }
        }
        let r = &self.remoting;
        if r.connections_per_addr == 0 || r.connections_per_addr > 64 {
            return bad(
                "remoting.connections_per_addr",
                format!("{} is outside 1..=64", r.connections_per_addr),
            );
        }
        for (field, n, lo, hi) in [
            ("remoting.max_frame", r.max_frame, 64 << 10, 1 << 30),
            ("remoting.max_in_flight", r.max_in_flight, 1, 1 << 24),
            (
                "remoting.max_in_flight_bytes",
                r.max_in_flight_bytes,
                64 << 10,
                1 << 36,
            ),
            ("max_message_size", self.max_message_size, 1, 128 << 20),
            ("batch_size", self.batch_size, 1, 100_000),
            (
                "auto_batch_max_bytes",
                self.auto_batch_max_bytes,
                1 << 10,
                self.max_message_size.max(1 << 10),
            ),
            (
                "async_send_semaphore",
                self.async_send_semaphore,
                1,
                1 << 20,
            ),
        ] {
            if !(lo..=hi).contains(&n) {
                return bad(field, format!("{n} is outside {lo}..={hi}"));
            }
        }
        // Every duration: at least its floor (a busy loop or a timeout nobody can meet below it), at most
        // a day (a deadline that far is a mistake, and sums of them must not overflow).
        const MS: Duration = Duration::from_millis(1);
        const DAY: Duration = Duration::from_secs(86_400);
        for (field, d, lo) in [
            ("send_msg_timeout", self.send_msg_timeout, MS),
            ("mq_client_api_timeout", self.mq_client_api_timeout, 10 * MS),
            (
                "poll_name_server_interval",
                self.poll_name_server_interval,
                10 * MS,
            ),
            (
                "update_topic_route_info_interval",
                self.update_topic_route_info_interval,
                10 * MS,
            ),
            (
                "heartbeat_broker_interval",
                self.heartbeat_broker_interval,
                10 * MS,
            ),
            ("remoting.connect_timeout", r.connect_timeout, 10 * MS),
            ("remoting.write_timeout", r.write_timeout, 10 * MS),
            ("remoting.idle_timeout", r.idle_timeout, 10 * MS),
            ("remoting.reconnect_backoff", r.reconnect_backoff, MS),
            (
                "remoting.reconnect_backoff_max",
                r.reconnect_backoff_max,
                r.reconnect_backoff,
            ),
            ("health.open_base", self.health.open_base, MS),
            (
                "health.open_max",
                self.health.open_max,
                self.health.open_base,
            ),
        ] {
            if d < lo || d > DAY {
                return bad(field, format!("{d:?} is outside {lo:?}..={DAY:?}"));
            }
        }
        if r.timer_tick < MS || r.timer_tick > Duration::from_secs(1) {
            return bad(
                "remoting.timer_tick",
                format!("{:?} is outside 1 ms..=1 s", r.timer_tick),
            );
        }
        if self.auto_batch_linger > Duration::from_secs(30) {
            return bad(
                "auto_batch_linger",
                format!("{:?} is more than 30 s", self.auto_batch_linger),
            );
        }
        if let Some(id) = &self.client_id
            && (id.is_empty() || id.len() > 255 || id.chars().any(char::is_control))
        {
            return bad(
                "client_id",
                "must be 1..=255 bytes without control characters".into(),
            );
        }
        if self.retry_times > 16 {
            return bad(
                "retry_times",
                format!("{} is more than 16", self.retry_times),
            );
        }
        let h = &self.health;
        if h.degrade_after == 0
            || h.unhealthy_after < h.degrade_after
            || h.recover_after == 0
            || h.unhealthy_after > 1_000_000
            || h.recover_after > 1_000_000
        {
            return bad(
                "health",
                format!(
                    "thresholds degrade_after {} / unhealthy_after {} / recover_after {}: need 1 <= degrade <= unhealthy <= 1,000,000 and 1 <= recover <= 1,000,000",
                    h.degrade_after, h.unhealthy_after, h.recover_after
                ),
            );
        }
        if !(1..=1024).contains(&self.default_topic_queue_nums) {
            return bad(
                "default_topic_queue_nums",
                format!("{} is outside 1..=1024", self.default_topic_queue_nums),
            );
        }
        if self.routing_strategy == RoutingStrategy::Selector {
            return bad(
                "routing_strategy",
                "Selector is chosen per call with send_with_selector".into(),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err_field(c: &ProducerConfig) -> &'static str {
        match c.validate() {
            Err(ProducerError::Config { field, .. }) => field,
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn the_codec_and_level_are_checked() {
        let base = ProducerConfig::new("PG", "127.0.0.1:9876");
        let with = |compression, compression_level| ProducerConfig {
            compression,
            compression_level,
            ..base.clone()
        };
        assert_eq!(
            err_field(&with(CompressionType::Zlib, 10)),
            "compression_level"
        );
        assert!(with(CompressionType::Zlib, 9).validate().is_ok());
        for codec in [CompressionType::Lz4, CompressionType::Zstd] {
            let built = rmq_protocol::compress::compress(b"x", codec, 3).is_ok();
            let r = with(codec, 3).validate();
            assert_eq!(r.is_ok(), built, "{codec:?}: {r:?}");
            if !built {
                assert_eq!(err_field(&with(codec, 3)), "compression");
            }
        }
    }

    #[test]
    fn every_rule_names_its_field() {
        let ok = ProducerConfig::new("PG", "127.0.0.1:9876;127.0.0.1:9877");
        ok.validate().unwrap();
        assert_eq!(ok.namesrv_list().len(), 2);
        assert_eq!(
            err_field(&ProducerConfig::new("", "127.0.0.1:9876")),
            "producer_group"
        );
        assert_eq!(
            err_field(&ProducerConfig::new("DEFAULT_PRODUCER", "127.0.0.1:9876")),
            "producer_group"
        );
        assert_eq!(err_field(&ProducerConfig::new("PG", " ; ")), "namesrv_addr");
        assert_eq!(
            err_field(&ProducerConfig::new("PG", "localhost")),
            "namesrv_addr"
        );
        assert_eq!(
            err_field(&ProducerConfig::new("PG", "127.0.0.1:0")),
            "namesrv_addr"
        );
        let mut c = ok.clone();
        c.send_msg_timeout = Duration::ZERO;
        assert_eq!(err_field(&c), "send_msg_timeout");
        let mut c = ok.clone();
        c.retry_times = 100;
        assert_eq!(err_field(&c), "retry_times");
        let mut c = ok.clone();
        c.max_message_size = 0;
        assert_eq!(err_field(&c), "max_message_size");
        let mut c = ok.clone();
        c.heartbeat_broker_interval = Duration::from_millis(1);
        assert_eq!(err_field(&c), "heartbeat_broker_interval");
        let mut c = ok.clone();
        c.default_topic_queue_nums = 0;
        assert_eq!(err_field(&c), "default_topic_queue_nums");
        let mut c = ok.clone();
        c.async_send_semaphore = 0;
        assert_eq!(err_field(&c), "async_send_semaphore");
        let mut c = ok.clone();
        c.health.open_max = Duration::from_millis(10);
        assert_eq!(err_field(&c), "health.open_max");
        let mut c = ok.clone();
        c.health.unhealthy_after = 1;
        assert_eq!(err_field(&c), "health");
        let mut c = ok.clone();
        c.remoting.connections_per_addr = 0;
        assert_eq!(err_field(&c), "remoting.connections_per_addr");
        let mut c = ok.clone();
        c.broker_addr_override
            .insert("10.0.0.1:10911".into(), "nowhere".into());
        assert_eq!(err_field(&c), "broker_addr_override");
        let mut c = ok;
        c.routing_strategy = RoutingStrategy::Selector;
        assert_eq!(err_field(&c), "routing_strategy");
    }

    /// Before: only lower bounds, and some fields not at all: `Duration::MAX` timeouts, a zero timer tick,
    /// a billion in-flight sends were all accepted.
    #[test]
    fn every_field_has_upper_bounds_too() {
        let ok = ProducerConfig::new("PG", "127.0.0.1:9876");
        type Case = (&'static str, fn(&mut ProducerConfig));
        let cases: [Case; 14] = [
            ("send_msg_timeout", |c| c.send_msg_timeout = Duration::MAX),
            ("mq_client_api_timeout", |c| {
                c.mq_client_api_timeout = Duration::MAX
            }),
            ("heartbeat_broker_interval", |c| {
                c.heartbeat_broker_interval = Duration::from_secs(90_000)
            }),
            ("remoting.timer_tick", |c| {
                c.remoting.timer_tick = Duration::ZERO
            }),
            ("remoting.timer_tick", |c| {
                c.remoting.timer_tick = Duration::from_secs(5)
            }),
            ("remoting.write_timeout", |c| {
                c.remoting.write_timeout = Duration::ZERO
            }),
            ("remoting.idle_timeout", |c| {
                c.remoting.idle_timeout = Duration::MAX
            }),
            ("remoting.reconnect_backoff_max", |c| {
                c.remoting.reconnect_backoff_max = Duration::from_micros(1)
            }),
            ("remoting.max_in_flight", |c| c.remoting.max_in_flight = 0),
            ("remoting.max_frame", |c| c.remoting.max_frame = usize::MAX),
            ("batch_size", |c| c.batch_size = usize::MAX),
            ("async_send_semaphore", |c| c.async_send_semaphore = 1 << 30),
            ("health", |c| c.health.unhealthy_after = u32::MAX),
            ("client_id", |c| c.client_id = Some("a\nb".into())),
        ];
        for (field, set) in cases {
            let mut c = ok.clone();
            set(&mut c);
            assert_eq!(err_field(&c), field);
        }
    }
}
