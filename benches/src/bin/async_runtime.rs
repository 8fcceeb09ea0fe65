//! rmq's futures on a tokio runtime against a real broker. Run by `scripts/bench-async`; prints one JSON
//! line per run.
//!
//! - `ticker`: a current-thread runtime runs a 1 ms ticker task beside one task that calls
//!   `send_async` `--count` times (in-flight bound `--bound`, a yield every `--yield-every` calls,
//!   default 16) and takes the outcomes as they come (a yield every as many); after `--pause-after` sends are stored, the broker (`--pause-pid`)
//!   is stopped (SIGSTOP) for `--pause-secs`, then continued. Reports the ticker's worst gap between
//!   ticks (a blocked executor thread shows here), its p99, when the worst came, and the outcomes.
//!   `--sends-from-thread`: the control, the same sends from a thread of their own (the runtime runs
//!   only the ticker). `--pin-runtime-cpu N`: the runtime's thread alone on CPU N (start the process
//!   and the broker on the other CPUs, `taskset`), so the gaps are the thread's own, not the
//!   machine's contention. `--event-interval N`: tokio's `event_interval` (default 61: the timer is
//!   checked only every 61 task polls while tasks are always ready). `TICKER_TRACE=1` prints every
//!   gap over 5 ms and every `send_async` call over 1 ms.
//! - `await`: `--count` sends awaited by `--window` tasks on a current-thread runtime (bound =
//!   window). `callback`: the same count with `send_async_callback` from one thread (the same bound
//!   blocking it). Reports messages per second.
//!
//! `async_runtime MODE --namesrv ADDR [--topic T] [--count N] [--bound N] [--window N] [--size BYTES]
//!  [--timeout-ms MS] [--pause-pid PID --pause-secs S --pause-after N]`

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::{FutureExt, StreamExt, stream::FuturesUnordered};
use rmq_producer::{Producer, ProducerConfig, ProducerError, SendResult};
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
    let from_thread = args.iter().any(|a| a == "--sends-from-thread");
    let yield_every: usize = flag(args, "--yield-every", 16).max(1);
    let pin: Option<u32> = args
        .iter()
        .position(|a| a == "--pin-runtime-cpu")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok());
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
    if let Some(cpu) = pin {
        // Start the producer's timer first, so it is not born on the runtime's CPU (threads inherit
        // the CPUs of the thread that starts them; the pauser above is started already).
        let _ = producer
            .flush_async(Instant::now() + Duration::from_millis(1))
            .wait();
        pin_this_thread(cpu);
    }
    let mut builder = tokio::runtime::Builder::new_current_thread();
    let event_interval: u32 = flag(args, "--event-interval", 0);
    if event_interval > 0 {
        builder.event_interval(event_interval);
    }
    let rt = builder.enable_time().build().expect("a tokio runtime");
    let (mut slowest_call, mut slowest_segment) = (Duration::ZERO, Duration::ZERO);
    let steal0 = steal_ticks(pin.unwrap_or(0));
    let timed = Timed::new(started, async {
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
                if std::env::var_os("TICKER_TRACE").is_some()
                    && now - last > Duration::from_millis(5)
                {
                    eprintln!(
                        "gap {:.1} ms at {:.3} s",
                        (now - last).as_secs_f64() * 1e3,
                        (now - started).as_secs_f64()
                    );
                }
                gaps.push(now - last);
                last = now;
            }
            (gaps, worst_at)
        });
        let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        if from_thread {
            // The control: the same sends from a thread of their own; the runtime runs only the ticker.
            let (p, m, ok2, failed2, stored2) = (
                producer.clone(),
                message.clone(),
                ok.clone(),
                failed.clone(),
                stored.clone(),
            );
            let sender = std::thread::spawn(move || {
                let futures: Vec<_> = (0..count).map(|_| p.send_async(&m)).collect();
                for f in futures {
                    if f.wait().is_ok() {
                        ok2.fetch_add(1, Ordering::Relaxed);
                        stored2.fetch_add(1, Ordering::Relaxed);
                    } else {
                        failed2.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
            while !sender.is_finished() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let _ = sender.join();
            stop.store(true, Ordering::Relaxed);
            let (gaps, worst_at) = ticker.await.unwrap_or_default();
            return (
                gaps,
                worst_at,
                ok.load(Ordering::Relaxed),
                failed.load(Ordering::Relaxed),
            );
        }
        // The futures are created here, on the runtime's thread (the call must not block it), 64 at a
        // time, and awaited together (FuturesUnordered polls only those woken, 32 at most per poll
        // before it yields), outcomes taken as they come.
        let mut pending = FuturesUnordered::new();
        let tally = |r: Result<SendResult, ProducerError>| {
            if r.is_ok() {
                ok.fetch_add(1, Ordering::Relaxed);
                stored.fetch_add(1, Ordering::Relaxed);
            } else {
                failed.fetch_add(1, Ordering::Relaxed);
            }
        };
        let mut created = 0;
        while created < count {
            let segment = Instant::now();
            for _ in 0..yield_every.min(count - created) {
                let call = Instant::now();
                pending.push(producer.send_async(message));
                slowest_call = slowest_call.max(call.elapsed());
                if std::env::var_os("TICKER_TRACE").is_some()
                    && call.elapsed() > Duration::from_millis(1)
                {
                    eprintln!(
                        "call {created} took {:.2} ms at {:.3} s",
                        call.elapsed().as_secs_f64() * 1e3,
                        (call - started).as_secs_f64()
                    );
                }
                created += 1;
            }
            slowest_segment = slowest_segment.max(segment.elapsed());
            for _ in 0..yield_every {
                match pending.next().now_or_never() {
                    Some(Some(r)) => tally(r),
                    _ => break,
                }
            }
            tokio::task::yield_now().await;
        }
        // Outcomes that are ready come back without a yield (rmq's futures know no runtime's budget):
        // a loop taking thousands of them gives the runtime back now and then, as the loop above does.
        let mut taken = 0u64;
        while let Some(r) = pending.next().await {
            tally(r);
            taken += 1;
            if taken.is_multiple_of(yield_every as u64) {
                tokio::task::yield_now().await;
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
    let ((gaps, worst_at, ok, failed), longest_poll, longest_poll_at) = rt.block_on(timed);
    let steal = steal_ticks(pin.unwrap_or(0)).saturating_sub(steal0);
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
        "{{\"mode\":\"ticker\",\"sends_from_thread\":{from_thread},\"pinned\":{},\"event_interval\":{event_interval},\"count\":{count},\"ok\":{ok},\"failed\":{failed},\"secs\":{secs:.3},\"paused_at_s\":{paused_at:.3},\"paused_s\":{paused:.3},\"ticks\":{},\"worst_gap_ms\":{:.3},\"p99_gap_ms\":{:.3},\"gaps_over_5ms\":{over5},\"worst_at_s\":{:.3},\"slowest_send_async_call_ms\":{:.3},\"slowest_batch_of_calls_ms\":{:.3},\"longest_main_poll_ms\":{:.3},\"longest_main_poll_at_s\":{:.3},\"cpu_steal_ticks\":{steal}}}",
        pin.is_some(),
        sorted.len(),
        ms(worst),
        ms(p99),
        worst_at.as_secs_f64(),
        ms(slowest_call),
        ms(slowest_segment),
        ms(longest_poll),
        longest_poll_at.as_secs_f64()
    );
}

/// A future that notes its longest single poll (how long it held the runtime's thread) and when.
struct Timed<F: Future> {
    inner: std::pin::Pin<Box<F>>,
    started: Instant,
    longest: Duration,
    at: Duration,
}

impl<F: Future> Timed<F> {
    fn new(started: Instant, inner: F) -> Self {
        Timed {
            inner: Box::pin(inner),
            started,
            longest: Duration::ZERO,
            at: Duration::ZERO,
        }
    }
}

impl<F: Future> Future for Timed<F> {
    type Output = (F::Output, Duration, Duration);

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let t = Instant::now();
        let r = self.inner.as_mut().poll(cx);
        let took = t.elapsed();
        if took > self.longest {
            self.longest = took;
            self.at = t - self.started;
        }
        r.map(|o| (o, self.longest, self.at))
    }
}

/// The CPU's steal time so far (ticks of 10 ms the hypervisor ran something else while this CPU's
/// vCPU wanted to run), from /proc/stat.
fn steal_ticks(cpu: u32) -> u64 {
    let name = format!("cpu{cpu}");
    std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.split_whitespace().next() == Some(name.as_str()))
                .and_then(|l| l.split_whitespace().nth(8)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Moves the calling thread (only) to `cpu`, with `taskset` (threads it starts later inherit it).
fn pin_this_thread(cpu: u32) {
    let tid = std::fs::read_link("/proc/thread-self")
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()));
    if let Some(tid) = tid {
        let _ = std::process::Command::new("taskset")
            .args(["-p", "-c", &cpu.to_string(), &tid])
            .stdout(std::process::Stdio::null())
            .status();
    }
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
