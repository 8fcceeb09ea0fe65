//! Test support for the real-server tests: finds the cluster that `scripts/cluster up` started through
//! the environment (`RMQ_NAMESRV`, `RMQ_IMPL`, `RMQ_BROKERS`), makes plain blocking remoting calls with
//! `rmq-protocol` and std TCP, and runs the Java interop checker.
//!
//! Nothing here starts a server. When `RMQ_NAMESRV` is unset, [`Cluster::from_env`] prints why the test is
//! skipped and returns `None`; `scripts/test` always sets it, so CI never skips.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::BytesMut;
use rmq_protocol::{FrameDecoder, RemotingCommand};

/// Which server implementation the cluster runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerImpl {
    /// Apache RocketMQ (Java).
    Java,
    /// rocketmq-rust.
    Rust,
}

/// The running cluster, as described by the environment.
#[derive(Clone, Debug)]
pub struct Cluster {
    /// Name server address (always loopback).
    pub namesrv: SocketAddr,
    /// Server implementation.
    pub server: ServerImpl,
    /// Number of master brokers.
    pub brokers: usize,
    /// The servers' version (`RMQ_SERVER_VERSION`, e.g. `5.5.0`, `4.9.7`, `1.0.0` for rocketmq-rust).
    pub version: String,
    /// The users of a cluster started with `scripts/cluster up --acl` (`RMQ_ACL=1`).
    pub acl: Option<AclUsers>,
    /// The test CA of a cluster that enforces TLS (`scripts/cluster up --tls`, `RMQ_TLS_CA`).
    pub tls_ca: Option<PathBuf>,
    /// The remoting addresses of the RocketMQ 5 proxies in front of the brokers (`scripts/cluster up
    /// --proxy N`, `RMQ_PROXIES`), proxy 1 first; empty without proxies.
    pub proxies: Vec<SocketAddr>,
    checker: PathBuf,
}

/// The ACL users `scripts/cluster up --acl` creates.
#[derive(Clone, Debug)]
pub struct AclUsers {
    /// May publish to `topic` only: (access key, secret key).
    pub producer: (String, String),
    /// May do anything (the Java reader signs with it).
    pub admin: (String, String),
    /// The one topic `producer` may publish to.
    pub topic: String,
}

/// Errors of the test helpers, as text: a test fails with the message.
pub type Result<T> = std::result::Result<T, String>;

impl Cluster {
    /// The cluster from `RMQ_NAMESRV` and friends, or `None` (with a printed reason) when unset.
    pub fn from_env(test: &str) -> Option<Cluster> {
        let Ok(ns) = std::env::var("RMQ_NAMESRV") else {
            eprintln!(
                "SKIPPED {test}: RMQ_NAMESRV is unset; start a cluster with `scripts/cluster up` and `eval $(scripts/cluster env)`, or run scripts/test"
            );
            return None;
        };
        let namesrv: SocketAddr = ns
            .parse()
            .unwrap_or_else(|_| panic!("RMQ_NAMESRV={ns} is not ip:port"));
        assert!(
            namesrv.ip().is_loopback(),
            "RMQ_NAMESRV={ns} is not a loopback address; tests only talk to 127.0.0.1"
        );
        let server = match std::env::var("RMQ_IMPL").as_deref() {
            Ok("rust") => ServerImpl::Rust,
            _ => ServerImpl::Java,
        };
        let brokers = std::env::var("RMQ_BROKERS")
            .ok()
            .and_then(|b| b.parse().ok())
            .unwrap_or(1);
        let checker = std::env::var("RMQ_CHECKER")
            .map(PathBuf::from)
            .unwrap_or_else(|_| {
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/cluster")
            });
        let version = std::env::var("RMQ_SERVER_VERSION").unwrap_or_default();
        let var = |k: &str| std::env::var(k).unwrap_or_default();
        let acl = (var("RMQ_ACL") == "1").then(|| AclUsers {
            producer: (var("RMQ_ACL_PRODUCER_AK"), var("RMQ_ACL_PRODUCER_SK")),
            admin: (var("RMQ_ACL_ADMIN_AK"), var("RMQ_ACL_ADMIN_SK")),
            topic: var("RMQ_ACL_TOPIC"),
        });
        let tls_ca = std::env::var("RMQ_TLS_CA")
            .ok()
            .filter(|p| !p.is_empty())
            .map(PathBuf::from);
        let proxies: Vec<SocketAddr> = var("RMQ_PROXIES")
            .split(';')
            .filter(|a| !a.is_empty())
            .map(|a| {
                a.parse()
                    .ok()
                    .filter(|s: &SocketAddr| s.ip().is_loopback())
                    .unwrap_or_else(|| panic!("RMQ_PROXIES names {a}: not a loopback ip:port"))
            })
            .collect();
        Some(Cluster {
            namesrv,
            server,
            brokers,
            version,
            acl,
            tls_ca,
            proxies,
            checker,
        })
    }

    /// Whether the servers are Apache RocketMQ 4.x.
    pub fn is_4x(&self) -> bool {
        self.server == ServerImpl::Java && self.version.starts_with("4.")
    }

    /// Runs `scripts/cluster ARGS` against this cluster (kill or restart a broker, stop the name server).
    pub fn control(&self, args: &[&str]) -> Result<()> {
        let out = Command::new(&self.checker)
            .args(args)
            .output()
            .map_err(|e| format!("cannot run {}: {e}", self.checker.display()))?;
        if !out.status.success() {
            return Err(format!(
                "scripts/cluster {args:?} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(())
    }

    /// A command running the Java interop checker (`scripts/cluster checker ARGS`) against this cluster,
    /// for a test to spawn (the replier of request-reply runs in the background).
    pub fn checker_command(&self, args: &[&str]) -> Command {
        let mut cmd = self.cluster_command(&["checker"]);
        cmd.args(args);
        cmd
    }

    /// A command running `scripts/cluster ARGS` against this cluster, for a test to spawn (the lite
    /// consumer of `lite-read` runs in the background).
    pub fn cluster_command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.checker);
        cmd.args(args).env("RMQ_NAMESRV", self.namesrv.to_string());
        cmd
    }

    /// Whether the servers are Apache RocketMQ `major.minor` or later (priority messages need 5.4, lite
    /// topics 5.5).
    pub fn at_least(&self, major: u32, minor: u32) -> bool {
        let mut parts = self
            .version
            .split('.')
            .map(|p| p.parse::<u32>().unwrap_or(0));
        let (ma, mi) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
        self.server == ServerImpl::Java && (ma, mi) >= (major, minor)
    }

    /// Waits until the TBW102 route lists `masters` master brokers (brokers register every 10 s).
    pub fn wait_for_masters(&self, masters: usize, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let mut req =
                RemotingCommand::request(rmq_protocol::RequestCode::GET_ROUTEINFO_BY_TOPIC)
                    .with_opaque(1);
            req.ext_fields
                .insert("topic", rmq_protocol::AUTO_CREATE_TOPIC);
            req.ext_fields.insert("acceptStandardJsonOnly", "true");
            let seen = Conn::connect(self.namesrv)
                .and_then(|mut c| c.call(&req))
                .ok()
                .and_then(|r| rmq_protocol::TopicRouteData::decode(&r.body).ok())
                .map_or(0, |r| {
                    r.broker_datas
                        .iter()
                        .filter(|b| b.master_addr().is_some())
                        .count()
                });
            if seen >= masters {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "only {seen} of {masters} masters registered after {timeout:?}"
                ));
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Reads every message of `topic` back with the official Java client, retrying until `accept` is
    /// satisfied or `timeout` passes (a new topic reaches the name server a moment after the first send;
    /// until it does, `accept` sees no messages). On a cluster with ACL, the reader signs as the admin user.
    pub fn read_back(
        &self,
        topic: &str,
        timeout: Duration,
        accept: impl Fn(&[serde_json::Value]) -> bool,
    ) -> Result<Vec<serde_json::Value>> {
        self.read_back_in(None, topic, timeout, accept)
    }

    /// [`Cluster::read_back`] with a Java consumer in `namespace` (`topic` named without it).
    pub fn read_back_in(
        &self,
        namespace: Option<&str>,
        topic: &str,
        timeout: Duration,
        accept: impl Fn(&[serde_json::Value]) -> bool,
    ) -> Result<Vec<serde_json::Value>> {
        let deadline = Instant::now() + timeout;
        let mut args = vec!["checker", "read", "--topic", topic];
        if let Some(ns) = namespace {
            args.extend(["--namespace", ns]);
        }
        if let Some(acl) = &self.acl {
            args.extend([
                "--access-key",
                acl.admin.0.as_str(),
                "--secret-key",
                acl.admin.1.as_str(),
            ]);
        }
        loop {
            let out = Command::new(&self.checker)
                .args(&args)
                .env("RMQ_NAMESRV", self.namesrv.to_string())
                .output()
                .map_err(|e| format!("cannot run the checker {}: {e}", self.checker.display()))?;
            let msgs: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter(|l| l.starts_with('{'))
                .map(|l| {
                    serde_json::from_str(l)
                        .map_err(|e| format!("checker printed bad JSON {l:?}: {e}"))
                })
                .collect::<Result<_>>()?;
            // A topic the name server has no route for yet holds nothing readable yet (a broker
            // registers an auto-created topic with some delay; rocketmq-rust's can take seconds).
            let no_route_yet = !out.status.success()
                && String::from_utf8_lossy(&out.stderr)
                    .contains("Can not find Message Queue for this topic");
            if (out.status.success() || no_route_yet) && accept(&msgs) {
                return Ok(msgs);
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "the checker did not find the messages of {topic} in time (status {}, {} messages); stderr:\n{}",
                    out.status,
                    msgs.len(),
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

/// One blocking connection: writes requests and reads the response with the same opaque.
pub struct Conn {
    stream: TcpStream,
    buf: BytesMut,
    decoder: FrameDecoder,
}

impl Conn {
    /// Connects to `addr` (must be loopback).
    pub fn connect(addr: SocketAddr) -> Result<Conn> {
        if !addr.ip().is_loopback() {
            return Err(format!("refusing to connect to non-loopback {addr}"));
        }
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(3))
            .map_err(|e| format!("connect {addr}: {e}"))?;
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(|e| e.to_string())?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        Ok(Conn {
            stream,
            buf: BytesMut::with_capacity(64 * 1024),
            decoder: FrameDecoder::default(),
        })
    }

    /// Sends `req` and returns the response with its opaque.
    pub fn call(&mut self, req: &RemotingCommand) -> Result<RemotingCommand> {
        let frame = req.to_bytes().map_err(|e| e.to_string())?;
        self.stream
            .write_all(&frame)
            .map_err(|e| format!("write: {e}"))?;
        let mut chunk = [0u8; 16 * 1024];
        loop {
            while let Some(cmd) = self
                .decoder
                .decode(&mut self.buf)
                .map_err(|e| format!("decode: {e}"))?
            {
                if cmd.is_response() && cmd.opaque == req.opaque {
                    return Ok(cmd);
                }
            }
            let n = self
                .stream
                .read(&mut chunk)
                .map_err(|e| format!("read: {e}"))?;
            if n == 0 {
                return Err("connection closed by the server".into());
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A topic name unique to this test run.
pub fn unique_topic(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}_{}_{}_{nanos}",
        std::process::id(),
        now_ms() % 1_000_000
    )
}

/// SHA-256 of `data` in lower-case hex, as the Java checker prints it.
pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}
