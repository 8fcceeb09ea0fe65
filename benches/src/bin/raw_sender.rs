//! The floor for an asynchronous producer: SEND_MESSAGE_V2 frames encoded before the clock starts (what
//! rmq would send: UNIQ_KEY and WAIT properties, zlib for bodies of 4096 bytes or more, JSON headers as
//! rmq's default or binary ones with `--header binary`),
//! pipelined over one plain `TcpStream` to one broker with `--window` in flight. A frame is re-sent from
//! its slot as soon as its answer arrives; a reader thread reads answers by their fixed binary layout. No
//! routing, no retries, no futures: only what any client must do on the wire. `scripts/bench-compare` runs
//! it beside the producers; it prints one JSON line in `rmq bench produce --json`'s format.
//!
//! `raw_sender --broker ADDR --topic T --window W --count N --size BYTES [--warmup N] [--header json|binary]`

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::mpsc::channel;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;
use rmq_protocol::compress::{CompressionType, DEFAULT_COMPRESS_LEVEL, compress, should_compress};
use rmq_protocol::header::SendMessageRequestHeaderV2Ref;
use rmq_protocol::{RemotingCommand, RequestCode, SerializeType};

struct Args {
    broker: String,
    topic: String,
    window: usize,
    count: usize,
    size: usize,
    warmup: usize,
    header: SerializeType,
}

fn args() -> Args {
    let mut a = Args {
        broker: String::new(),
        topic: "raw_bench".into(),
        window: 1000,
        count: 40_000,
        size: 1024,
        warmup: 1000,
        header: SerializeType::JSON,
    };
    let v: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < v.len() {
        let val = v.get(i + 1).cloned().unwrap_or_default();
        let n = || val.parse::<usize>().unwrap_or(0);
        match v[i].as_str() {
            "--broker" => a.broker = val.clone(),
            "--topic" => a.topic = val.clone(),
            "--window" => a.window = n().max(1),
            "--count" => a.count = n(),
            "--size" => a.size = n(),
            "--warmup" => a.warmup = n(),
            "--header" => {
                a.header = match val.as_str() {
                    "json" => SerializeType::JSON,
                    "binary" => SerializeType::ROCKETMQ,
                    other => {
                        eprintln!("raw_sender: --header json|binary, not {other}");
                        std::process::exit(2);
                    }
                }
            }
            // Accepted for the same command line as the producers; ignored.
            "--mode" | "--threads" | "--namesrv" => {}
            "--json" => {
                i += 1;
                continue;
            }
            other => {
                eprintln!("raw_sender: unknown argument {other}");
                std::process::exit(2);
            }
        }
        i += 2;
    }
    if a.broker.is_empty() {
        eprintln!("usage: raw_sender --broker ADDR --topic T --window W --count N --size BYTES");
        std::process::exit(2);
    }
    a
}

/// The frame of slot `slot` (its opaque is `slot + 1`).
fn frame(a: &Args, slot: usize, body: &Bytes, sys_flag: i32) -> Vec<u8> {
    let properties = format!("UNIQ_KEY\u{1}7F0000010000{slot:020X}\u{2}WAIT\u{1}true\u{2}");
    let header = SendMessageRequestHeaderV2Ref {
        producer_group: "raw_group",
        topic: &a.topic,
        default_topic: "TBW102",
        default_topic_queue_nums: 4,
        queue_id: (slot % 4) as i32,
        sys_flag,
        born_timestamp: 0,
        flag: 0,
        properties: Some(&properties),
        reconsume_times: Some(0),
        unit_mode: false,
        max_reconsume_times: None,
        batch: false,
        broker_name: None,
    };
    let mut cmd = header
        .to_request(RequestCode::SEND_MESSAGE_V2)
        .with_body(body.clone());
    cmd.opaque = slot as i32 + 1;
    cmd.serialize_type = a.header;
    let mut out = BytesMut::new();
    if let Err(e) = cmd.encode(&mut out) {
        eprintln!("raw_sender: cannot encode: {e}");
        std::process::exit(1);
    }
    out.to_vec()
}

/// Code and opaque of an answer frame (`frame` is what follows the length prefix).
fn code_and_opaque(frame: &[u8]) -> Option<(i32, i32)> {
    let header_len =
        u32::from_be_bytes([0, *frame.get(1)?, *frame.get(2)?, *frame.get(3)?]) as usize;
    let header = frame.get(4..4 + header_len)?;
    if frame[0] == 1 {
        let code = i16::from_be_bytes([header[0], header[1]]);
        let opaque = i32::from_be_bytes(header.get(5..9)?.try_into().ok()?);
        return Some((i32::from(code), opaque));
    }
    let full = RemotingCommand::decode_frame(Bytes::copy_from_slice(frame)).ok()?;
    Some((full.code, full.opaque))
}

struct Totals {
    latencies: Vec<Duration>,
    failed: u64,
}

/// Sends `n` messages with `window` in flight; returns the latencies and failures.
fn run(a: &Args, frames: &[Vec<u8>], n: usize) -> Totals {
    let mut stream = TcpStream::connect(&a.broker).unwrap_or_else(|e| {
        eprintln!("raw_sender: cannot connect to {}: {e}", a.broker);
        std::process::exit(1);
    });
    let _ = stream.set_nodelay(true);
    let mut reader = stream.try_clone().unwrap_or_else(|e| {
        eprintln!("raw_sender: {e}");
        std::process::exit(1);
    });
    let window = frames.len();
    let sent_at = Arc::new(Mutex::new(vec![Instant::now(); window]));
    let (free_tx, free_rx) = channel::<usize>();
    let sa = sent_at.clone();
    let reading = std::thread::spawn(move || {
        let mut t = Totals {
            latencies: Vec::with_capacity(n),
            failed: 0,
        };
        let mut buf = vec![0u8; 1 << 20];
        while t.latencies.len() < n {
            let mut len = [0u8; 4];
            if reader.read_exact(&mut len).is_err() {
                break;
            }
            let total = u32::from_be_bytes(len) as usize;
            if total > buf.len() {
                buf.resize(total, 0);
            }
            if reader.read_exact(&mut buf[..total]).is_err() {
                break;
            }
            let Some((code, opaque)) = code_and_opaque(&buf[..total]) else {
                break;
            };
            let slot = (opaque - 1) as usize;
            if slot >= window {
                continue;
            }
            t.latencies.push(sa.lock()[slot].elapsed());
            if !(code == 0 || (10..=12).contains(&code)) {
                t.failed += 1;
            }
            let _ = free_tx.send(slot);
        }
        t
    });
    let mut issued = 0;
    let mut out = Vec::with_capacity(frames.iter().map(Vec::len).sum());
    let mut ready: Vec<usize> = (0..window.min(n)).collect();
    loop {
        out.clear();
        {
            let now = Instant::now();
            let mut at = sent_at.lock();
            for &slot in &ready {
                if issued == n {
                    break;
                }
                at[slot] = now;
                out.extend_from_slice(&frames[slot]);
                issued += 1;
            }
        }
        if !out.is_empty() && stream.write_all(&out).is_err() {
            break;
        }
        if issued == n {
            break;
        }
        ready.clear();
        match free_rx.recv() {
            Ok(slot) => ready.push(slot),
            Err(_) => break,
        }
        ready.extend(free_rx.try_iter());
    }
    reading.join().unwrap_or(Totals {
        latencies: Vec::new(),
        failed: n as u64,
    })
}

fn main() {
    let a = args();
    let raw_body = Bytes::from(vec![b'x'; a.size]);
    let (body, sys_flag) = if should_compress(a.size, 4096) {
        match compress(&raw_body, CompressionType::Zlib, DEFAULT_COMPRESS_LEVEL) {
            Ok((z, bits)) if z.len() < a.size => (Bytes::from(z), bits),
            _ => (raw_body, 0),
        }
    } else {
        (raw_body, 0)
    };
    let frames: Vec<Vec<u8>> = (0..a.window)
        .map(|slot| frame(&a, slot, &body, sys_flag))
        .collect();
    if a.warmup > 0 {
        run(&a, &frames, a.warmup);
    }
    let cpu0 = rmq_benches::process_cpu().as_secs_f64();
    let started = Instant::now();
    let mut t = run(&a, &frames, a.count);
    let secs = started.elapsed().as_secs_f64();
    let cpu = rmq_benches::process_cpu().as_secs_f64() - cpu0;
    let done = t.latencies.len();
    let missing = a.count.saturating_sub(done) as u64;
    t.latencies.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let avg = if done == 0 {
        0.0
    } else {
        t.latencies.iter().map(|d| ms(*d)).sum::<f64>() / done as f64
    };
    let p99 = t
        .latencies
        .get((done * 99 / 100).min(done.saturating_sub(1)))
        .map_or(0.0, |d| ms(*d));
    let max = t.latencies.last().map_or(0.0, |d| ms(*d));
    println!(
        "{{\"avg_ms\":{avg},\"client\":\"raw\",\"count\":{done},\"cpu_s\":{cpu},\"failed\":{},\"max_ms\":{max},\"mode\":\"async\",\"p99_ms\":{p99},\"seconds\":{secs},\"threads\":{},\"tps\":{}}}",
        t.failed + missing,
        a.window,
        done as f64 / secs
    );
}
