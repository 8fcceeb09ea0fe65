//! `rmq`: send messages, show routes, and benchmark producing against Apache RocketMQ.
//!
//! The name server comes from `--namesrv`, else `NAMESRV_ADDR` / `RMQ_NAMESRV_ADDR`, else 127.0.0.1:9876.
//! Credentials come from `--access-key` / `--secret-key` or `RMQ_ACCESS_KEY` / `RMQ_SECRET_KEY`; the secret
//! is never printed (not in `--help`, errors or output). Usage errors exit with 2, failed operations with 1.

use std::collections::BTreeMap;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use rmq::prelude::ProducerConfig;
use rmq::protocol::acl::Credentials;
use rmq::protocol::compress::CompressionType;
use rmq::remoting::{RemotingConfig, TlsConfig, TlsTrust};

mod bench;
mod commands;
mod plot;

/// The rmq command line.
#[derive(Parser, Debug)]
#[command(
    name = "rmq",
    version,
    about = "RocketMQ producer tool: send, route, bench"
)]
struct Cli {
    /// Name server address(es), `host:port[;host:port]`.
    #[arg(long, global = true, env = "RMQ_NAMESRV_ADDR")]
    namesrv: Option<String>,
    /// Broker addresses to dial instead of the advertised ones: `advertised=dial[;advertised=dial]`
    /// (brokers behind NAT or in containers).
    #[arg(
        long,
        global = true,
        env = "RMQ_BROKER_ADDR_OVERRIDE",
        value_name = "ADVERTISED=DIAL"
    )]
    broker_addr_override: Option<String>,
    /// ACL access key (a 5.x user name); needs `--secret-key`.
    #[arg(long, global = true, env = "RMQ_ACCESS_KEY")]
    access_key: Option<String>,
    /// ACL secret key (a 5.x user's password); needs `--access-key`. Never printed.
    #[arg(long, global = true, env = "RMQ_SECRET_KEY", hide_env_values = true, value_parser = secret)]
    secret_key: Option<Secret>,
    /// Namespace: topics and groups are sent as `NAMESPACE%name`, as Java's `setNamespace`.
    #[arg(long, global = true, env = "RMQ_NAMESPACE")]
    namespace: Option<String>,
    /// Connect with TLS, verifying servers against the system roots (or `--tls-ca` / `--tls-pin`).
    #[arg(long, global = true, env = "RMQ_TLS")]
    tls: bool,
    /// With `--tls`: trust the CAs of this PEM file instead of the system roots.
    #[arg(long, global = true, env = "RMQ_TLS_CA", value_name = "PEM")]
    tls_ca: Option<std::path::PathBuf>,
    /// With `--tls`: trust exactly the certificates of this PEM file (self-signed test servers).
    #[arg(long, global = true, conflicts_with = "tls_ca", value_name = "PEM")]
    tls_pin: Option<std::path::PathBuf>,
    /// With `--tls`: accept any server certificate (encrypts, does not authenticate; tests only).
    #[arg(long, global = true, conflicts_with_all = ["tls_ca", "tls_pin"])]
    tls_insecure: bool,
    /// Body compression for bodies of 4 KiB or more: zlib (every consumer reads it), lz4 or zstd (Java
    /// consumers 5.1+ only).
    #[arg(long, global = true, env = "RMQ_COMPRESSION", value_parser = ["zlib", "lz4", "zstd"], default_value = "zlib")]
    compression: String,
    /// Compression level (zlib 0-9, zstd 1-22).
    #[arg(
        long,
        global = true,
        env = "RMQ_COMPRESSION_LEVEL",
        default_value_t = 5
    )]
    compression_level: u32,
    #[command(subcommand)]
    command: Command,
}

/// A secret from the command line; `Debug` does not show it.
#[derive(Clone)]
struct Secret(String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

fn secret(s: &str) -> Result<Secret, String> {
    Ok(Secret(s.to_owned()))
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Send messages and print each result.
    Send(SendArgs),
    /// Show a topic's route and the publish queues rmq builds from it.
    Route {
        /// The topic.
        topic: String,
    },
    /// Benchmarks.
    Bench {
        #[command(subcommand)]
        what: BenchWhat,
    },
}

#[derive(Subcommand, Debug)]
enum BenchWhat {
    /// Produce as fast as possible (the workload of RocketMQ's producer.sh) and report once a second.
    Produce(bench::ProduceArgs),
}

/// Arguments of `rmq send`.
#[derive(Args, Debug)]
struct SendArgs {
    /// Topic.
    #[arg(long)]
    topic: String,
    /// Body text.
    #[arg(long, conflicts_with = "file")]
    body: Option<String>,
    /// Read the body from a file.
    #[arg(long, conflicts_with = "stdin")]
    file: Option<std::path::PathBuf>,
    /// Send one message per line of standard input (empty lines skipped).
    #[arg(long, conflicts_with_all = ["body", "count"])]
    stdin: bool,
    /// Keys.
    #[arg(long, num_args = 1..)]
    keys: Vec<String>,
    /// Tag.
    #[arg(long)]
    tags: Option<String>,
    /// User properties `name=value`.
    #[arg(long = "prop", value_parser = parse_prop)]
    props: Vec<(String, String)>,
    /// How many times to send it.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    count: u64,
    /// Producer group.
    #[arg(long, default_value = "rmq_cli_producer")]
    group: String,
}

fn parse_prop(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?} is not name=value"))?;
    Ok((k.to_owned(), v.to_owned()))
}

/// Where the commands' producers connect.
#[derive(Debug)]
pub(crate) struct Cluster {
    namesrv: String,
    overrides: BTreeMap<String, String>,
    credentials: Option<Credentials>,
    namespace: Option<String>,
    tls: Option<TlsConfig>,
    compression: CompressionType,
    compression_level: u32,
}

impl Cluster {
    /// A producer configuration for `group` on this cluster.
    pub(crate) fn config(&self, group: &str) -> ProducerConfig {
        ProducerConfig {
            broker_addr_override: self.overrides.clone(),
            credentials: self.credentials.clone(),
            namespace: self.namespace.clone(),
            compression: self.compression,
            compression_level: self.compression_level,
            remoting: RemotingConfig {
                tls: self.tls.clone(),
                ..RemotingConfig::default()
            },
            ..ProducerConfig::new(group, self.namesrv.clone())
        }
    }

    /// The advertised address `dialed` stands for, when an override applies.
    pub(crate) fn advertised(&self, dialed: &str) -> Option<&str> {
        self.overrides
            .iter()
            .find(|(_, to)| to.as_str() == dialed)
            .map(|(from, _)| from.as_str())
    }
}

/// The name server: the flag, else `NAMESRV_ADDR`, else the default.
fn namesrv(flag: Option<String>) -> String {
    flag.or_else(|| std::env::var("NAMESRV_ADDR").ok())
        .unwrap_or_else(|| "127.0.0.1:9876".into())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let overrides = match cli.broker_addr_override.as_deref() {
        Some(v) => match ProducerConfig::parse_broker_addr_override(v) {
            Ok(m) => m,
            Err(e) => {
                eprintln!("rmq: {e}");
                return ExitCode::from(2);
            }
        },
        None => BTreeMap::new(),
    };
    let credentials = match (cli.access_key, cli.secret_key) {
        (None, None) => None,
        (Some(ak), Some(Secret(sk))) => match Credentials::new(ak, sk) {
            Ok(c) => Some(c),
            Err(e) => {
                eprintln!("rmq: {e}");
                return ExitCode::from(2);
            }
        },
        (Some(_), None) => {
            eprintln!("rmq: --access-key needs --secret-key (or RMQ_SECRET_KEY)");
            return ExitCode::from(2);
        }
        (None, Some(_)) => {
            eprintln!("rmq: --secret-key needs --access-key (or RMQ_ACCESS_KEY)");
            return ExitCode::from(2);
        }
    };
    let trust = match (cli.tls_ca, cli.tls_pin, cli.tls_insecure) {
        (Some(ca), _, _) => TlsTrust::CaFile(ca),
        (_, Some(pin), _) => TlsTrust::Pinned(pin),
        (_, _, true) => TlsTrust::AnyCertificate,
        _ => TlsTrust::SystemRoots,
    };
    let tls = cli.tls.then(|| TlsConfig {
        trust,
        ..TlsConfig::default()
    });
    let cluster = Cluster {
        namesrv: namesrv(cli.namesrv),
        tls,
        compression: CompressionType::from_name(&cli.compression).unwrap_or(CompressionType::Zlib),
        compression_level: cli.compression_level,
        overrides,
        credentials,
        namespace: cli.namespace,
    };
    let result = match cli.command {
        Command::Send(a) => commands::send(&cluster, a),
        Command::Route { topic } => commands::route(&cluster, &topic),
        Command::Bench {
            what: BenchWhat::Produce(a),
        } => bench::produce(&cluster, a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rmq: {e}");
            ExitCode::FAILURE
        }
    }
}
