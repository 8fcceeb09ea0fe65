//! rmq's futures on a tokio runtime against a real broker. Run by `scripts/bench-async`; prints one JSON
//! line per run.
//!
//! - `ticker`: a current-thread runtime runs a 1 ms ticker task beside one task that issues `--count`
//!   `send_async` futures (in-flight bound `--bound`) and awaits them; after `--pause-after` sends are
//!   stored, the broker (`--pause-pid`) is stopped (SIGSTOP) for `--pause-secs`, then continued.
//!   Reports the ticker's worst gap between ticks (a blocked executor thread shows here), its p99,
//!   and the sends' outcomes.
//! - `await`: `--count` sends awaited by `--window` tasks on a current-thread runtime (bound =
//!   window). `callback`: the same count with `send_async_callback` from one thread (the same bound
//!   blocking it). Reports messages per second.
//!
//! `async_runtime MODE --namesrv ADDR [--topic T] [--count N] [--bound N] [--window N] [--size BYTES]
//!  [--timeout-ms MS] [--pause-pid PID --pause-secs S --pause-after N]`

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rmq_producer::{Producer, ProducerConfig, ProducerError};
use rmq_protocol::Message;

fn flag<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> T {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn signal(pid: u32, sig: &str) {
    let _ = std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status();
}

fn main() -> Result<(), ProducerError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = args.first().cloned().unwrap_or_default();
    let namesrv: String = flag(&args, "--namesrv", "127.0.0.1:9876".to_owned());
    let topic: String = flag(&args, "--topic", "AsyncRuntimeBench".to_owned());
    let count: usize = flag(&args, "--count", 100_000);
    let bound: usize = flag(&args, "--bound", 64);
    let window: usize = flag(&args, "--window", 1000);
    let size: usize = flag(&args, "--size", 1024);
    let timeout = Duration::from_millis(flag(&args, "--timeout-ms", 10_000));
    let mut config = ProducerConfig::new("async_runtime_bench", &namesrv);
    config.async_send_semaphore = if mode == "ticker" { bound } else { window };
    config.send_msg_timeout = timeout;
    let producer = Producer::new(config)?;
    producer.start()?;
    let body = bytes::Bytes::from(vec![b'x'; size]);
    let message = Message::new(topic.as_str(), body);
    // Warm-up: route, connection, broker's topic.
    for _ in 0..200 {
        producer.send_sync(&message)?;
    }
    match mode.as_str() {
        "ticker" => ticker(&producer, &message, count, &args),
        "await" => awaited(&producer, &message, count, window),
        "callback" => callback(&producer, &message, count),
        _ => {
            eprintln!("usage: async_runtime ticker|await|callback --namesrv ADDR ...");
            std::process::exit(2);
        }
    }
    producer.shutdown();
    Ok(())
}

fn ticker(producer: &Producer, message: &Message, count: usize, args: &[String]) {
    let pause_pid: u32 = flag(args, "--pause-pid", 0);
    let pause_secs: f64 = flag(args, "--pause-secs", 5.0);
    let pause_after: u64 = flag(args, "--pause-after", 10_000);
    let stored = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    // The pauser: a thread of its own, so the runtime's thread does nothing but the two tasks.
    let pauser = {
        let stored = stored.clone();
        std::thread::spawn(move || {
            if pause_pid == 0 {
                return (0.0, 0.0);
            }
            while stored.load(Ordering::Relaxed) < pause_after {
                std::thread::sleep(Duration::from_millis(1));
            }
            let t = Instant::now();
            signal(pause_pid, "-STOP");
            std::thread::sleep(Duration::from_secs_f64(pause_secs));
            signal(pause_pid, "-CONT");
            ((t - started).as_secs_f64(), t.elapsed().as_secs_f64())
        })
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a tokio runtime");
    let (gaps, worst_at, ok, failed) = rt.block_on(async {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let ticker = tokio::spawn(async move {
            let mut gaps = Vec::with_capacity(1 << 16);
            let mut last = Instant::now();
            let (mut worst, mut worst_at) = (Duration::ZERO, Duration::ZERO);
            while !s.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(1)).await;
                let now = Instant::now();
                if now - last > worst {
                    (worst, worst_at) = (now - last, now - started);
                }
                gaps.push(now - last);
                last = now;
            }
            (gaps, worst_at)
        });
        let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let mut futures = Vec::with_capacity(count);
        for i in 0..count {
            futures.push(producer.send_async(message));
            if i % 64 == 63 {
                tokio::task::yield_now().await;
            }
        }
        for (i, f) in futures.into_iter().enumerate() {
            // Outcomes that are ready return without yielding: a loop over thousands of them must give
            // the runtime back now and then, as the loop that created them did.
            if i % 64 == 63 {
                tokio::task::yield_now().await;
            }
            match f.await {
                Ok(_) => {
                    ok.fetch_add(1, Ordering::Relaxed);
                    stored.fetch_add(1, Ordering::Relaxed);
                }
                Err(_) => {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        stop.store(true, Ordering::Relaxed);
        let (gaps, worst_at) = ticker.await.unwrap_or_default();
        (
            gaps,
            worst_at,
            ok.load(Ordering::Relaxed),
            failed.load(Ordering::Relaxed),
        )
    });
    let secs = started.elapsed().as_secs_f64();
    let (paused_at, paused) = pauser.join().unwrap_or((0.0, 0.0));
    let mut sorted = gaps.clone();
    sorted.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let worst = sorted.last().copied().unwrap_or_default();
    let p99 = sorted
        .get(sorted.len() * 99 / 100)
        .copied()
        .unwrap_or_default();
    let over5 = sorted
        .iter()
        .filter(|g| **g > Duration::from_millis(5))
        .count();
    println!(
        "{{\"mode\":\"ticker\",\"count\":{count},\"ok\":{ok},\"failed\":{failed},\"secs\":{secs:.3},\"paused_at_s\":{paused_at:.3},\"paused_s\":{paused:.3},\"ticks\":{},\"worst_gap_ms\":{:.3},\"p99_gap_ms\":{:.3},\"gaps_over_5ms\":{over5},\"worst_at_s\":{:.3}}}",
        sorted.len(),
        ms(worst),
        ms(p99),
        worst_at.as_secs_f64()
    );
}

fn awaited(producer: &Producer, message: &Message, count: usize, window: usize) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a tokio runtime");
    let left = Arc::new(AtomicUsize::new(count));
    let failed = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    rt.block_on(async {
        let tasks: Vec<_> = (0..window)
            .map(|_| {
                let (p, m, left, failed) = (
                    producer.clone(),
                    message.clone(),
                    left.clone(),
                    failed.clone(),
                );
                tokio::spawn(async move {
                    while left
                        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                        .is_ok()
                    {
                        if p.send_async(&m).await.is_err() {
                            failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        for t in tasks {
            let _ = t.await;
        }
    });
    report("await", count, failed.load(Ordering::Relaxed), started);
}

fn callback(producer: &Producer, message: &Message, count: usize) {
    let failed = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    for _ in 0..count {
        let f = failed.clone();
        producer.send_async_callback(message, move |r| {
            if r.is_err() {
                f.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    let _ = producer.flush(Instant::now() + Duration::from_secs(60));
    report("callback", count, failed.load(Ordering::Relaxed), started);
}

fn report(mode: &str, count: usize, failed: usize, started: Instant) {
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{{\"mode\":\"{mode}\",\"count\":{count},\"failed\":{failed},\"secs\":{secs:.3},\"tps\":{:.0}}}",
        count as f64 / secs
    );
}
