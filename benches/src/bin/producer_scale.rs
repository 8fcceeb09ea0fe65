//! One producer against a fleet of mock brokers in another process (`mock-fleet`): how long from `start`
//! until every topic's route is fetched and one heartbeat round is done, how long a heartbeat round takes,
//! the producer's resident memory, the CPU of one route-refresh cycle, and the memory with 10,000
//! asynchronous 1 KiB sends in flight. Run by `scripts/bench-scale`; prints one `key value` line per figure.
//!
//! `producer_scale MOCK_FLEET_BINARY [BROKERS] [TOPICS]` (defaults 256 and 1000).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rmq_producer::{Producer, ProducerConfig, ProducerError};
use rmq_protocol::Message;

/// This process's resident set in KiB, from /proc/self/status.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() -> Result<(), ProducerError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(fleet_bin) = args.first() else {
        eprintln!("usage: producer_scale MOCK_FLEET_BINARY [BROKERS] [TOPICS]");
        std::process::exit(2);
    };
    let brokers: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(256);
    let topics: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1000);
    let mut fleet = Command::new(fleet_bin)
        .args([brokers.to_string(), topics.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| ProducerError::Config {
            field: "mock-fleet",
            reason: e.to_string(),
        })?;
    let mut line = String::new();
    if let Some(out) = fleet.stdout.take() {
        let _ = BufReader::new(out).read_line(&mut line);
    }
    let namesrv = line
        .trim()
        .strip_prefix("namesrv ")
        .unwrap_or("")
        .to_owned();
    println!("brokers {brokers}");
    println!("topics {topics}");
    println!("rss_before_start_kib {}", rss_kib());

    let config = ProducerConfig {
        // Refresh every second (each cycle fetches every route again) so a few cycles fit the window.
        poll_name_server_interval: Duration::from_secs(1),
        update_topic_route_info_interval: Duration::from_millis(500),
        heartbeat_broker_interval: Duration::from_secs(3600),
        send_msg_timeout: Duration::from_secs(60),
        async_send_semaphore: 20_000,
        ..ProducerConfig::new("scale_group", namesrv)
    };
    let p = Producer::new(config)?;
    let t0 = Instant::now();
    p.start()?;
    for i in 0..topics {
        p.topic_route(&format!("S{i}"))?;
    }
    let fetched = t0.elapsed();
    let (ok, failed) = p.send_heartbeat_to_all_broker();
    let ready = t0.elapsed();
    println!("routes_fetched_ms {:.1}", fetched.as_secs_f64() * 1e3);
    println!(
        "start_to_routes_and_heartbeat_ms {:.1}",
        ready.as_secs_f64() * 1e3
    );
    println!("heartbeat_ok {ok}");
    println!("heartbeat_failed {failed}");
    let rounds: Vec<Duration> = (0..5)
        .map(|_| {
            let t = Instant::now();
            p.send_heartbeat_to_all_broker();
            t.elapsed()
        })
        .collect();
    println!(
        "heartbeat_round_median_ms {:.1}",
        median(rounds.clone()).as_secs_f64() * 1e3
    );
    println!(
        "heartbeat_round_max_ms {:.1}",
        rounds
            .iter()
            .max()
            .copied()
            .unwrap_or_default()
            .as_secs_f64()
            * 1e3
    );
    println!("connections_and_routes_rss_kib {}", rss_kib());

    // Route refresh: over a window with nothing else going on, the CPU per refresh cycle.
    let window = Duration::from_secs(6);
    let c0 = rmq_benches::process_cpu();
    std::thread::sleep(window);
    let used = rmq_benches::process_cpu().saturating_sub(c0);
    let cycles = window.as_secs_f64();
    println!(
        "refresh_cpu_ms_per_cycle {:.1}",
        used.as_secs_f64() * 1e3 / cycles
    );
    println!(
        "refresh_cpu_ms_per_topic {:.3}",
        used.as_secs_f64() * 1e3 / cycles / topics as f64
    );

    // 10,000 asynchronous 1 KiB sends that the silent broker never answers.
    let body = vec![b'x'; 1024];
    let futures: Vec<_> = (0..10_000)
        .map(|_| p.send_async(&Message::new("Silent", body.clone())))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    while p.get_stats().in_flight < 10_000 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(200));
    println!("async_in_flight {}", p.get_stats().in_flight);
    println!("async_10k_in_flight_rss_kib {}", rss_kib());
    p.shutdown_timeout(Duration::ZERO);
    let failed = futures
        .into_iter()
        .filter(|f| {
            f.wait_timeout(Duration::from_secs(5))
                .is_some_and(|r| r.is_err())
        })
        .count();
    println!("async_failed_at_shutdown {failed}");
    drop(fleet.stdin.take());
    let _ = fleet.wait();
    Ok(())
}
