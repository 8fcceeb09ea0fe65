//! `rmq bench produce`: RocketMQ's producer.sh workload with per-second reports.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use rmq::prelude::*;

use crate::commands::describe;
use crate::plot::Sample;

/// How messages are sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Mode {
    /// `send_sync` from every thread.
    Sync,
    /// `send_async` with `--window` sends in flight.
    Async,
    /// `send_oneway` from every thread.
    Oneway,
}

/// Arguments of `rmq bench produce`.
#[derive(Args, Debug)]
pub(crate) struct ProduceArgs {
    /// Topic.
    #[arg(long, short = 't', default_value = "BenchmarkTest")]
    topic: String,
    /// Sending threads (sync and oneway).
    #[arg(long = "threads", short = 'w', default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=4096))]
    threads: u32,
    /// Body size in bytes.
    #[arg(long, short = 's', default_value_t = 128, value_parser = clap::value_parser!(u32).range(1..=4194304))]
    size: u32,
    /// Set a unique key on every message.
    #[arg(long, short = 'k')]
    keys: bool,
    /// Messages to send (after the warm-up); without it the run lasts `--duration`.
    #[arg(long, short = 'n')]
    count: Option<u64>,
    /// Seconds to run when no `--count` is given.
    #[arg(long, short = 'd', default_value_t = 10)]
    duration: u64,
    /// How to send.
    #[arg(long, value_enum, default_value_t = Mode::Sync)]
    mode: Mode,
    /// Asynchronous sends in flight.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    window: u32,
    /// Warm-up sends before measuring.
    #[arg(long, default_value_t = 1000)]
    warmup: u64,
    /// Producer group.
    #[arg(long, default_value = "rmq_bench_producer")]
    group: String,
    /// Print the per-second lines and the summary as JSON.
    #[arg(long)]
    json: bool,
    /// Request header encoding: `json` (Java's default) or `binary` (RocketMQ's own; brokers answer in
    /// kind, and it costs less to encode and decode).
    #[arg(long, value_enum, default_value_t = HeaderType::Json)]
    header: HeaderType,
    /// Auto-batch: asynchronous and oneway sends that can share a request go as one batch request
    /// (`--mode async`; each message keeps its own outcome and latency).
    #[arg(long)]
    auto_batch: bool,
    /// With `--auto-batch`: how long a message waits for others, in milliseconds.
    #[arg(long, default_value_t = 5, requires = "auto_batch")]
    linger_ms: u64,
    /// With `--auto-batch`: most bytes in one batch request.
    #[arg(long, default_value_t = 32 << 10, requires = "auto_batch")]
    batch_bytes: usize,
    /// Write a chart of TPS and p50 / p99 latency per second to this SVG file at the end.
    #[arg(long, value_name = "FILE.svg")]
    plot: Option<std::path::PathBuf>,
}

/// Header encodings of `--header`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum HeaderType {
    /// JSON headers (serialize type 0).
    Json,
    /// ROCKETMQ binary headers (serialize type 1).
    Binary,
}

/// Latency histogram with atomic buckets: 10 µs wide below 100 ms, 1 ms wide up to ~10 s.
struct Histogram {
    buckets: Vec<AtomicU64>,
    max_us: AtomicU64,
    sum_us: AtomicU64,
    count: AtomicU64,
}

const FINE: u64 = 10_000;

impl Histogram {
    fn new() -> Self {
        Histogram {
            buckets: (0..2 * FINE).map(|_| AtomicU64::new(0)).collect(),
            max_us: AtomicU64::new(0),
            sum_us: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    fn record(&self, d: Duration) {
        let us = d.as_micros().min(u128::from(u64::MAX)) as u64;
        let b = if us < FINE * 10 {
            us / 10
        } else {
            FINE + ((us - FINE * 10) / 1000).min(FINE - 1)
        };
        self.buckets[b as usize].fetch_add(1, Ordering::Relaxed);
        self.max_us.fetch_max(us, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// (count, avg ms, p99 ms, max ms), resetting when `take`.
    fn summary(&self, take: bool) -> (u64, f64, f64, f64) {
        let (n, avg, [_, p99], max) = self.summary_with_median(take);
        (n, avg, p99, max)
    }

    /// (count, avg ms, [p50, p99] ms, max ms), resetting when `take`.
    fn summary_with_median(&self, take: bool) -> (u64, f64, [f64; 2], f64) {
        let read = |a: &AtomicU64| {
            if take {
                a.swap(0, Ordering::Relaxed)
            } else {
                a.load(Ordering::Relaxed)
            }
        };
        let counts: Vec<u64> = self.buckets.iter().map(read).collect();
        let (n, sum, max) = (read(&self.count), read(&self.sum_us), read(&self.max_us));
        // The upper edge of the bucket holding the `q` quantile.
        let quantile_us = |q: f64| {
            let target = ((n as f64 * q).ceil() as u64).max(1);
            let mut seen = 0;
            for (i, c) in counts.iter().enumerate() {
                seen += c;
                if seen >= target {
                    let i = i as u64;
                    return if i < FINE {
                        i * 10 + 10
                    } else {
                        FINE * 10 + (i - FINE + 1) * 1000
                    };
                }
            }
            0
        };
        let (p50_us, p99_us) = (quantile_us(0.5), quantile_us(0.99));
        let avg = if n == 0 {
            0.0
        } else {
            sum as f64 / n as f64 / 1000.0
        };
        let cap = |us: u64| us.min(max.max(1)) as f64 / 1000.0;
        (n, avg, [cap(p50_us), cap(p99_us)], max as f64 / 1000.0)
    }
}

struct Shared {
    second: Histogram,
    total: Histogram,
    send_failed: AtomicU64,
    response_failed: AtomicU64,
    sent: AtomicU64,
    stop: AtomicBool,
}

impl Shared {
    fn outcome(&self, r: &Result<SendResult, ProducerError>, took: Duration) {
        match r {
            Ok(r) if r.status == SendStatus::SendOk => {}
            Ok(_) => {
                self.response_failed.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {
                self.send_failed.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.second.record(took);
        self.total.record(took);
    }
}

pub(crate) fn produce(c: &crate::Cluster, a: ProduceArgs) -> Result<(), String> {
    if a.auto_batch && a.mode != Mode::Async {
        return Err("--auto-batch batches asynchronous sends: use it with --mode async".into());
    }
    let mut config = c.config(&a.group);
    config.async_send_semaphore = a.window as usize;
    config.auto_batch = a.auto_batch;
    config.auto_batch_linger = Duration::from_millis(a.linger_ms);
    config.auto_batch_max_bytes = a.batch_bytes;
    if a.header == HeaderType::Binary {
        config.remoting.serialize_type = rmq::protocol::SerializeType::ROCKETMQ;
    }
    let producer = Producer::new(config).map_err(|e| describe(&e))?;
    producer.start().map_err(|e| describe(&e))?;
    let body = bytes::Bytes::from(vec![b'a'; a.size as usize]);
    let message = |i: u64| {
        let mut m = Message::new(a.topic.clone(), body.clone());
        if a.keys {
            m.set_keys([format!("k{i}")]);
        }
        m
    };
    for i in 0..a.warmup {
        producer
            .send_sync(&message(i))
            .map_err(|e| format!("warm-up failed: {}", describe(&e)))?;
    }
    let shared = Arc::new(Shared {
        second: Histogram::new(),
        total: Histogram::new(),
        send_failed: AtomicU64::new(0),
        response_failed: AtomicU64::new(0),
        sent: AtomicU64::new(0),
        stop: AtomicBool::new(false),
    });
    let cpu0 = process_cpu_seconds();
    let limit = a.count.unwrap_or(u64::MAX);
    let deadline = a
        .count
        .is_none()
        .then(|| Instant::now() + Duration::from_secs(a.duration));
    let started = Instant::now();
    // A live line on a terminal (stderr), redrawn four times a second; not with --json.
    let live = !a.json && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let reporter = {
        let (s, json, mode) = (shared.clone(), a.json, a.mode);
        std::thread::spawn(move || {
            let mut tick = Instant::now();
            let mut drawn = Instant::now();
            let mut last_failed = (0, 0);
            let mut samples = Vec::new();
            while !s.stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(50));
                if live && drawn.elapsed() >= Duration::from_millis(250) {
                    drawn = Instant::now();
                    let done = s.total.count.load(Ordering::Relaxed);
                    let elapsed = started.elapsed().as_secs_f64().max(1e-9);
                    let of = if limit == u64::MAX {
                        String::new()
                    } else {
                        format!("/{limit}")
                    };
                    eprint!(
                        "\r{done}{of} sent, {:.0} TPS overall, {} failed, {:.0} s   ",
                        done as f64 / elapsed,
                        s.send_failed.load(Ordering::Relaxed)
                            + s.response_failed.load(Ordering::Relaxed),
                        elapsed
                    );
                }
                if tick.elapsed() < Duration::from_secs(1) {
                    continue;
                }
                let secs = tick.elapsed().as_secs_f64();
                tick = Instant::now();
                let (n, avg, [p50, p99], max) = s.second.summary_with_median(true);
                samples.push(Sample {
                    t: started.elapsed().as_secs_f64(),
                    tps: n as f64 / secs,
                    p50,
                    p99,
                });
                if live {
                    eprint!("\r");
                }
                let failed = (
                    s.send_failed.load(Ordering::Relaxed),
                    s.response_failed.load(Ordering::Relaxed),
                );
                let (sf, rf) = (failed.0 - last_failed.0, failed.1 - last_failed.1);
                last_failed = failed;
                let tps = n as f64 / secs;
                if json {
                    println!(
                        "{{\"second\":true,\"mode\":\"{mode:?}\",\"tps\":{tps:.0},\"max_ms\":{max},\"avg_ms\":{avg},\"p99_ms\":{p99},\"send_failed\":{sf},\"response_failed\":{rf}}}"
                    );
                } else {
                    println!(
                        "Send TPS: {tps:.0} Max RT(ms): {max:.3} Average RT(ms): {avg:.3} p99 RT(ms): {p99:.3} Send Failed: {sf} Response Failed: {rf}"
                    );
                }
            }
            if live {
                eprintln!();
            }
            samples
        })
    };
    let more = move |s: &Shared| {
        !s.stop.load(Ordering::Relaxed) && deadline.is_none_or(|d| Instant::now() < d) && {
            let i = s.sent.fetch_add(1, Ordering::Relaxed);
            i < limit
        }
    };
    match a.mode {
        Mode::Sync | Mode::Oneway => {
            let threads: Vec<_> = (0..a.threads)
                .map(|_| {
                    let (p, s, mode) = (producer.clone(), shared.clone(), a.mode);
                    let msg = message(0);
                    let keyed = a.keys;
                    std::thread::spawn(move || {
                        while more(&s) {
                            let mut m = msg.clone();
                            if keyed {
                                m.set_keys([format!("k{}", s.sent.load(Ordering::Relaxed))]);
                            }
                            let t = Instant::now();
                            if mode == Mode::Sync {
                                let r = p.send_sync(&m);
                                s.outcome(&r, t.elapsed());
                            } else {
                                let r = p.send_oneway(&m);
                                if r.is_err() {
                                    s.send_failed.fetch_add(1, Ordering::Relaxed);
                                }
                                s.second.record(t.elapsed());
                                s.total.record(t.elapsed());
                            }
                        }
                    })
                })
                .collect();
            for t in threads {
                let _ = t.join();
            }
        }
        Mode::Async => {
            let mut i = 0;
            while more(&shared) {
                let s = shared.clone();
                let t = Instant::now();
                producer.send_async_callback(&message(i), move |r| s.outcome(&r, t.elapsed()));
                i += 1;
            }
            // Wait for the sends in flight.
            while producer.get_stats().in_flight > 0 {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let cpu = process_cpu_seconds() - cpu0;
    shared.stop.store(true, Ordering::Relaxed);
    let samples = reporter.join().unwrap_or_default();
    producer.shutdown();
    if let Some(path) = &a.plot {
        let title = format!(
            "rmq bench produce: {:?}, {} bytes, {} per second",
            a.mode,
            a.size,
            if samples.is_empty() {
                "no full second"
            } else {
                "sampled"
            }
        );
        std::fs::write(path, crate::plot::svg(&title, &samples))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    let (n, avg, p99, max) = shared.total.summary(false);
    let failed =
        shared.send_failed.load(Ordering::Relaxed) + shared.response_failed.load(Ordering::Relaxed);
    let parallel = if a.mode == Mode::Async {
        a.window
    } else {
        a.threads
    };
    if a.json {
        println!(
            "{{\"auto_batch\":{},\"avg_ms\":{avg},\"client\":\"rmq\",\"count\":{n},\"cpu_s\":{cpu},\"failed\":{failed},\"max_ms\":{max},\"mode\":\"{}\",\"p99_ms\":{p99},\"seconds\":{secs},\"threads\":{parallel},\"tps\":{}}}",
            a.auto_batch,
            format!("{:?}", a.mode).to_lowercase(),
            n as f64 / secs
        );
    } else {
        println!(
            "Summary: {n} messages of {} bytes in {secs:.2} s, {:?} x {parallel}: TPS {:.0}, Average RT(ms) {avg:.3}, p99 RT(ms) {p99:.3}, Max RT(ms) {max:.3}, Failed {failed}",
            a.size,
            a.mode,
            n as f64 / secs
        );
    }
    if failed > 0 {
        Err(format!("{failed} sends failed"))
    } else {
        Ok(())
    }
}

/// User plus system CPU seconds of this process, from `/proc/self/stat` (clock ticks of 1/100 s, Linux's
/// USER_HZ); 0 where that file does not exist.
fn process_cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}
