//! The producer benchmark workload, identical to the Java checker's `bench` command: `--count` messages of
//! `--size` bytes after a warm-up of 1,000; `--mode sync` from `--threads` threads, or `--mode async` with
//! `--window` sends in flight. Prints one JSON line (throughput and latency).
//!
//! `cargo run --release -p rmq-examples --example bench_produce -- --namesrv 127.0.0.1:9876 --topic T --mode sync --threads 16`
//! (`scripts/bench-producer` runs it beside the Java producer.)

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use rmq::prelude::*;

struct Args {
    namesrv: String,
    topic: String,
    mode: String,
    threads: usize,
    count: usize,
    size: usize,
    window: usize,
}

fn args() -> Result<Args, String> {
    let mut a = Args {
        namesrv: std::env::var("RMQ_NAMESRV_ADDR").unwrap_or_else(|_| "127.0.0.1:9876".into()),
        topic: "BenchmarkTopic".into(),
        mode: "sync".into(),
        threads: 1,
        count: 10_000,
        size: 1024,
        window: 1000,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let num = |v: &str| {
            v.parse::<usize>()
                .map_err(|_| format!("{flag}: {v:?} is not a number"))
        };
        match flag.as_str() {
            "--namesrv" => a.namesrv = value,
            "--topic" => a.topic = value,
            "--mode" if value == "sync" || value == "async" => a.mode = value,
            "--threads" => a.threads = num(&value)?.max(1),
            "--count" => a.count = num(&value)?.max(1),
            "--size" => a.size = num(&value)?.max(1),
            "--window" => a.window = num(&value)?.max(1),
            _ => return Err(format!("unknown argument {flag} {value}")),
        }
    }
    Ok(a)
}

fn main() {
    let a = match args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("bench_produce: {e}");
            std::process::exit(2);
        }
    };
    let mut config = ProducerConfig::new("rmq_bench_rust", a.namesrv.clone());
    config.compress_msg_body_over = usize::MAX; // as the Java side: no compression
    config.async_send_semaphore = a.window.max(1);
    let producer = Producer::new(config).expect("config");
    producer.start().expect("start");
    let body = bytes::Bytes::from(vec![b'x'; a.size]);
    let msg = Message::new(a.topic.clone(), body);
    for _ in 0..1000 {
        producer.send_sync(&msg).expect("warm-up send");
    }
    let lat: Arc<Vec<std::sync::atomic::AtomicU64>> = Arc::new(
        (0..a.count)
            .map(|_| std::sync::atomic::AtomicU64::new(0))
            .collect(),
    );
    let failed = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    if a.mode == "sync" {
        let next = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..a.threads)
            .map(|_| {
                let (p, m, next, lat, failed, count) = (
                    producer.clone(),
                    msg.clone(),
                    next.clone(),
                    lat.clone(),
                    failed.clone(),
                    a.count,
                );
                std::thread::spawn(move || {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= count {
                            return;
                        }
                        let t = Instant::now();
                        if p.send_sync(&m).is_err() {
                            failed.fetch_add(1, Ordering::Relaxed);
                        }
                        lat[i].store(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("sender thread");
        }
    } else {
        // The producer's async_send_semaphore (= window) blocks the loop while `window` sends are open.
        let done = Arc::new((Mutex::new(0usize), Condvar::new()));
        for i in 0..a.count {
            let (lat, failed, done) = (lat.clone(), failed.clone(), done.clone());
            let t = Instant::now();
            producer.send_async_callback(&msg, move |r| {
                if r.is_err() {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
                lat[i].store(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
                let (m, c) = &*done;
                *m.lock().expect("lock") += 1;
                c.notify_one();
            });
        }
        let (m, c) = &*done;
        let mut n = m.lock().expect("lock");
        while *n < a.count {
            n = c.wait_timeout(n, Duration::from_secs(1)).expect("wait").0;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let mut l: Vec<u64> = lat.iter().map(|x| x.load(Ordering::Relaxed)).collect();
    l.sort_unstable();
    let avg = l.iter().sum::<u64>() as f64 / a.count as f64 / 1e6;
    let p99 = l[((a.count as f64 * 0.99) as usize).min(a.count - 1)] as f64 / 1e6;
    let max = l[a.count - 1] as f64 / 1e6;
    println!(
        "{{\"avg_ms\":{avg},\"client\":\"rmq\",\"count\":{},\"failed\":{},\"max_ms\":{max},\"mode\":\"{}\",\"p99_ms\":{p99},\"seconds\":{secs},\"threads\":{},\"tps\":{}}}",
        a.count,
        failed.load(Ordering::Relaxed),
        a.mode,
        if a.mode == "sync" {
            a.threads
        } else {
            a.window
        },
        a.count as f64 / secs
    );
    producer.shutdown();
}
