//! One chaos scenario against the running Java cluster (two brokers; `scripts/chaos` starts it): sends
//! `--sends` messages (three synchronous threads and one asynchronous pump, at `--rate` in all) while the
//! scenario breaks and repairs the cluster, then reads the topic back with the official Java consumer and
//! accounts for every send. Prints one JSON line; exits 1 when an acknowledged message is missing or an
//! outcome was never delivered.
//!
//! `chaos SCENARIO [--sends N] [--rate PER_SECOND] [--outage SECONDS] [--auto-batch]` (`--auto-batch`: the
//! asynchronous sends go through auto-batch, issue 23)
//!
//! Scenarios: `kill-restart` (kill -9 broker-b, start it again after the outage), `pause` (SIGSTOP broker-b
//! for the outage, then SIGCONT), `namesrv-down` (stop the name server for the outage), `async-restart`
//! (only the asynchronous pump, unpaced with 1,000 in flight; kill -9 broker-b once 900 are in flight, start
//! it again after the outage), `shutdown` (1,000 asynchronous sends, then `shutdown()` at once: every
//! outcome delivered, every success read back), `master-killed` (needs `scripts/cluster up --slave`: kill -9
//! broker-a's master, which has a SLAVE; no send may be stored by broker-a while its master is down, sends go
//! on to broker-b; the master is started again after the outage), `proxy-killed` and `proxy-drained` (need
//! `scripts/cluster up --proxy 2`: the producer is given the two RocketMQ 5 proxies as its name servers;
//! the proxy its route goes through is killed with -9, or stopped with TERM, and started again after the
//! outage). Every scenario reports the longest time with no successful send from one second before the
//! break on (`longest_no_success_s`).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rmq_it::{Cluster, unique_topic};
use rmq_producer::{Producer, ProducerConfig, ProducerError, SendResult};
use rmq_protocol::{Message, MsgId, Name};

/// What became of one send.
struct Outcome {
    /// Milliseconds since the start when it ended.
    at_ms: u64,
    /// `Ok`: the broker, the UNIQ_KEY and whether it was flagged possibly duplicated; `Err`: whether it
    /// was possibly stored.
    result: Result<(Name, MsgId, bool), bool>,
}

fn record(out: &Mutex<Vec<Outcome>>, t0: Instant, r: &Result<SendResult, ProducerError>) {
    let result = match r {
        Ok(r) => Ok((
            r.broker_name.clone(),
            r.msg_id.clone(),
            r.possibly_duplicated,
        )),
        Err(e) => Err(e.possibly_stored()),
    };
    let at_ms = t0.elapsed().as_millis() as u64;
    if let Ok(mut v) = out.lock() {
        v.push(Outcome { at_ms, result });
    }
}

fn arg(args: &[String], name: &str, default: u64) -> u64 {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn pid_of(name: &str) -> Option<String> {
    let dir = std::env::var("RMQ_CLUSTER_DIR").ok()?;
    std::fs::read_to_string(format!("{dir}/pids/{name}.pid"))
        .ok()
        .map(|s| s.trim().to_owned())
}

fn signal(sig: &str, name: &str) -> Result<(), String> {
    let pid = pid_of(name).ok_or_else(|| format!("no pid for {name}"))?;
    let ok = std::process::Command::new("kill")
        .args([sig, &pid])
        .status()
        .map_err(|e| e.to_string())?
        .success();
    ok.then_some(())
        .ok_or_else(|| format!("kill {sig} {pid} failed"))
}

fn main() {
    if let Err(e) = run() {
        eprintln!("chaos: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let scenario = args.first().cloned().unwrap_or_default();
    const SCENARIOS: [&str; 8] = [
        "kill-restart",
        "pause",
        "namesrv-down",
        "async-restart",
        "shutdown",
        "master-killed",
        "proxy-killed",
        "proxy-drained",
    ];
    if !SCENARIOS.contains(&scenario.as_str()) {
        return Err(format!(
            "usage: chaos {} [--sends N] [--rate R] [--outage S] [--auto-batch]",
            SCENARIOS.join("|")
        ));
    }
    let pump_only = matches!(scenario.as_str(), "async-restart" | "shutdown");
    let sends = if scenario == "shutdown" {
        1000
    } else {
        arg(&args, "--sends", 100_000)
    };
    let rate = arg(&args, "--rate", 1500).max(1);
    let outage = Duration::from_secs(arg(&args, "--outage", 10));
    let c = Cluster::from_env("chaos").ok_or("no cluster (RMQ_NAMESRV unset)")?;
    if c.brokers < 2 {
        return Err("needs a cluster with 2 brokers".into());
    }
    let via_proxy = scenario.starts_with("proxy-");
    if via_proxy && c.proxies.len() < 2 {
        return Err(format!(
            "{scenario} needs two proxies (scripts/cluster up --proxy 2)"
        ));
    }
    if scenario == "master-killed" && std::env::var("RMQ_SLAVES").as_deref() != Ok("1") {
        return Err("master-killed needs a slave of broker-a (scripts/cluster up --slave)".into());
    }
    // The broker the scenario takes away and brings back.
    let victim = if scenario == "master-killed" {
        "broker-a"
    } else {
        "broker-b"
    };
    let namesrv = if via_proxy {
        let list: Vec<String> = c.proxies.iter().map(|a| a.to_string()).collect();
        list.join(";")
    } else {
        c.namesrv.to_string()
    };
    // `--auto-batch`: the asynchronous sends go through auto-batch (the synchronous ones never do).
    let auto_batch = args.iter().any(|a| a == "--auto-batch");
    let p = Producer::new(ProducerConfig {
        async_send_semaphore: 1000,
        auto_batch,
        ..ProducerConfig::new("rmq_chaos", namesrv)
    })
    .map_err(|e| e.to_string())?;
    p.start().map_err(|e| e.to_string())?;
    let topic = unique_topic(&format!("chaos_{}", scenario.replace('-', "_")));
    if via_proxy {
        // A proxy refuses messages whose type the topic does not declare (code 13).
        c.control(&["topic", &topic, "NORMAL"])?;
    }
    // The topic on both brokers before the clock starts.
    for i in 0..40 {
        p.send_sync(&Message::new(topic.clone(), format!("warm {i}")))
            .map_err(|e| e.to_string())?;
    }
    let warm = 40u64;

    let out = Arc::new(Mutex::new(Vec::with_capacity(sends as usize)));
    let issued = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let t0 = Instant::now();
    // Each of the 4 senders paces itself to rate / 4; the pump alone is not paced.
    let senders = if pump_only { 1 } else { 4 };
    let per = if pump_only {
        Duration::ZERO
    } else {
        Duration::from_secs_f64(4.0 / rate as f64)
    };
    let mut workers = Vec::new();
    for w in 0..senders {
        let (p, out, issued, stop, topic) = (
            p.clone(),
            out.clone(),
            issued.clone(),
            stop.clone(),
            topic.clone(),
        );
        workers.push(std::thread::spawn(move || {
            let mut next = Instant::now();
            loop {
                let i = issued.fetch_add(1, Ordering::SeqCst);
                if i >= sends || stop.load(Ordering::Relaxed) {
                    issued.fetch_sub(1, Ordering::SeqCst);
                    return;
                }
                let msg = Message::new(topic.clone(), format!("chaos {i}"));
                if w == 0 {
                    // The asynchronous pump: bounded by the producer's in-flight limit.
                    let (out2, t) = (out.clone(), t0);
                    p.send_async_callback(&msg, move |r| record(&out2, t, &r));
                } else {
                    let r = p.send_sync(&msg);
                    record(&out, t0, &r);
                }
                next += per;
                if let Some(d) = next.checked_duration_since(Instant::now()) {
                    std::thread::sleep(d);
                }
            }
        }));
    }

    // The scenario: break (at 5 s, or once 900 async sends are in flight), repair after the outage.
    let broke_ms;
    let back_ms;
    // The proxy taken down (1-based), for the proxy scenarios.
    let mut proxy_down = None;
    // When the repair was started (the victim may take sends before it shows as registered again).
    let restart_ms;
    if scenario == "shutdown" {
        while issued.load(Ordering::SeqCst) < sends && t0.elapsed() < Duration::from_secs(30) {
            std::thread::sleep(Duration::from_millis(1));
        }
        broke_ms = t0.elapsed().as_millis() as u64;
        eprintln!(
            "chaos: {} async sends in flight at shutdown",
            p.get_stats().in_flight
        );
        p.shutdown();
        back_ms = broke_ms;
        restart_ms = broke_ms;
    } else {
        if scenario == "async-restart" {
            while p.get_stats().in_flight < 900 && t0.elapsed() < Duration::from_secs(10) {
                std::thread::sleep(Duration::from_millis(1));
            }
            eprintln!(
                "chaos: {} async sends in flight at the kill",
                p.get_stats().in_flight
            );
        } else {
            std::thread::sleep(Duration::from_secs(5));
        }
        broke_ms = t0.elapsed().as_millis() as u64;
        match scenario.as_str() {
            "kill-restart" | "async-restart" | "master-killed" => {
                c.control(&["kill-broker", victim])?
            }
            "pause" => signal("-STOP", "broker-b")?,
            "proxy-killed" | "proxy-drained" => {
                let n = proxy_in_use(&p, &topic, &c.proxies)?;
                let how = if scenario == "proxy-killed" {
                    "kill-proxy"
                } else {
                    "stop-proxy"
                };
                eprintln!("chaos: {how} {n} (the proxy the route goes through)");
                proxy_down = Some(n);
                c.control(&[how, &n.to_string()])?
            }
            _ => c.control(&["stop-namesrv"])?,
        }
        std::thread::sleep(outage);
        restart_ms = t0.elapsed().as_millis() as u64;
        match scenario.as_str() {
            "kill-restart" | "async-restart" | "master-killed" => {
                c.control(&["start-broker", victim])?
            }
            "pause" => signal("-CONT", "broker-b")?,
            "proxy-killed" | "proxy-drained" => {
                let n = proxy_down.ok_or("no proxy was taken down")?;
                c.control(&["start-proxy", &n.to_string()])?
            }
            _ => c.control(&["start-namesrv"])?,
        }
        c.wait_for_masters(2, Duration::from_secs(90))?;
        back_ms = t0.elapsed().as_millis() as u64;
    }

    for w in workers {
        let _ = w.join();
    }
    let open = p.flush(Instant::now() + Duration::from_secs(30));
    let stats = p.get_stats();
    p.shutdown();
    stop.store(true, Ordering::Relaxed);
    let issued = issued.load(Ordering::SeqCst);
    let outcomes = std::mem::take(&mut *out.lock().map_err(|_| "poisoned")?);

    // Account for every send.
    let acked: HashMap<&str, bool> = outcomes
        .iter()
        .filter_map(|o| o.result.as_ref().ok())
        .map(|(_, id, dup)| (id.as_str(), *dup))
        .collect();
    let flagged = acked.values().filter(|d| **d).count();
    let errors = outcomes.iter().filter(|o| o.result.is_err()).count();
    let possibly = outcomes.iter().filter(|o| o.result == Err(true)).count();
    let undelivered = issued as usize - outcomes.len();
    let want = acked.len() as u64 + warm;
    let got = c.read_back(&topic, Duration::from_secs(120), |m| m.len() as u64 >= want);
    let got = got.unwrap_or_else(|e| {
        eprintln!("chaos: read-back incomplete: {e}");
        Vec::new()
    });
    let mut seen: HashMap<String, usize> = HashMap::new();
    for m in &got {
        if let Some(id) = m["uniqKey"].as_str() {
            *seen.entry(id.to_owned()).or_default() += 1;
        }
    }
    let missing = acked.keys().filter(|id| !seen.contains_key(**id)).count();
    let duplicates: usize = seen.values().map(|n| n - 1).sum();
    // Every duplicate must come from a send whose result said it might be one.
    let unflagged = seen
        .iter()
        .filter(|(id, n)| **n > 1 && acked.get(id.as_str()) == Some(&false))
        .count();

    // While the victim was away (from half a second after the break until its restart began) nothing may
    // be stored by it: for master-killed, a success from broker-a then would have come from its slave.
    let stored_by_victim_while_away = outcomes
        .iter()
        .filter(|o| o.at_ms > broke_ms + 500 && o.at_ms < restart_ms)
        .filter(|o| matches!(&o.result, Ok((b, _, _)) if b == victim))
        .count();
    // The longest time with no successful send, from a second before the break until the senders stopped.
    let mut ok_at: Vec<u64> = outcomes
        .iter()
        .filter(|o| o.result.is_ok())
        .map(|o| o.at_ms)
        .collect();
    ok_at.sort_unstable();
    let last_ms = outcomes.iter().map(|o| o.at_ms).max().unwrap_or(0);
    let from = broke_ms.saturating_sub(1000);
    let mut longest_gap = 0u64;
    let mut prev = from;
    for t in ok_at.iter().copied().filter(|t| *t >= from) {
        longest_gap = longest_gap.max(t - prev);
        prev = t;
    }
    longest_gap = longest_gap.max(last_ms.saturating_sub(prev));

    // Recovery: from the moment both masters were registered again, the first second in which the victim
    // took at least 40% of the acknowledged sends.
    let mut per_second: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
    for o in &outcomes {
        if let Ok((b, _, _)) = &o.result {
            let e = per_second.entry(o.at_ms / 1000).or_default();
            e.0 += 1;
            e.1 += u64::from(b == victim);
        }
    }
    let recovered = per_second
        .range(back_ms / 1000..)
        .find(|(_, (all, b))| *all >= 10 && *b * 10 >= *all * 4)
        .map(|(s, _)| (s * 1000).saturating_sub(back_ms) as f64 / 1000.0);

    println!(
        "{{\"scenario\":\"{scenario}{}\",\"sent\":{issued},\"acknowledged\":{},\"acknowledged_missing\":{missing},\"duplicates\":{duplicates},\"flagged_possibly_duplicated\":{flagged},\"duplicates_unflagged\":{unflagged},\"errors\":{errors},\"errors_possibly_stored\":{possibly},\"undelivered\":{undelivered},\"stored_by_victim_while_away\":{stored_by_victim_while_away},\"open_at_flush\":{},\"read_back\":{},\"retries\":{},\"broke_at_s\":{:.1},\"repaired_at_s\":{:.1},\"recovery_s\":{},\"longest_no_success_s\":{:.2},\"seconds\":{:.1}}}",
        if auto_batch { "+auto-batch" } else { "" },
        acked.len(),
        open.len(),
        got.len(),
        stats.retries,
        broke_ms as f64 / 1000.0,
        back_ms as f64 / 1000.0,
        recovered.map_or("null".to_owned(), |r| format!("{r:.1}")),
        longest_gap as f64 / 1000.0,
        t0.elapsed().as_secs_f64()
    );
    // A paused broker cannot answer either, so the same holds for it.
    let down = matches!(
        scenario.as_str(),
        "kill-restart" | "async-restart" | "master-killed" | "pause"
    );
    if down && stored_by_victim_while_away > 0 {
        return Err(format!(
            "{stored_by_victim_while_away} sends stored by {victim} while it was down"
        ));
    }
    // Failover across proxies: at most a second without a successful send (issue 20).
    if via_proxy && longest_gap > 1000 {
        return Err(format!(
            "{:.2} s with no successful send after the proxy went down (at most 1 s allowed)",
            longest_gap as f64 / 1000.0
        ));
    }
    if missing > 0 || undelivered > 0 || unflagged > 0 {
        return Err(format!(
            "{missing} acknowledged messages missing, {undelivered} outcomes never delivered, {unflagged} duplicates not flagged"
        ));
    }
    Ok(())
}

/// The proxy (1-based, in `RMQ_PROXIES` order) that `topic`'s cached route goes through.
fn proxy_in_use(
    p: &Producer,
    topic: &str,
    proxies: &[std::net::SocketAddr],
) -> Result<usize, String> {
    let (route, _) = p.topic_route(topic).map_err(|e| e.to_string())?;
    let addr = route
        .broker_datas
        .iter()
        .find_map(|b| b.broker_addrs.get(&0).cloned())
        .ok_or("the route names no master")?;
    proxies
        .iter()
        .position(|a| a.to_string() == addr)
        .map(|i| i + 1)
        .ok_or_else(|| format!("the route goes through {addr}, not a proxy"))
}
