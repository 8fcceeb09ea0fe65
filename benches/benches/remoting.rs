//! rmq-remoting over loopback against an echo server, each beside a raw baseline in the same run:
//!
//! - `round_trip/*`: one request at a time. rmq's `invoke_sync` vs a plain `TcpStream` writing a
//!   pre-encoded frame and reading the answer (goal: rmq ≤ 1.2× raw).
//! - `pipelined_32/*`: 32 requests in flight on one connection. rmq with 32 threads calling `invoke_sync`
//!   vs a raw writer thread and reader thread pair keeping 32 pre-encoded frames in flight (goal: rmq ≥
//!   0.85× the raw rate).
//!
//! Both use the binary header and the same server, which decodes every request and answers with a
//! pre-encoded response carrying the request's opaque. `cargo bench -p rmq-benches --bench remoting`

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Barrier, Condvar, Mutex};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rmq_protocol::{FrameDecoder, RemotingCommand, RequestCode, ResponseCode, SerializeType};
use rmq_remoting::{RemotingClient, RemotingConfig};

/// Starts the echo server; returns its address.
fn server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            std::thread::spawn(move || serve(stream));
        }
    });
    addr
}

fn serve(mut stream: TcpStream) {
    stream.set_nodelay(true).expect("nodelay");
    let template = RemotingCommand::response(ResponseCode::SUCCESS, None)
        .with_serialize_type(SerializeType::ROCKETMQ)
        .to_bytes()
        .expect("encodes");
    let dec = FrameDecoder::default();
    let mut buf = BytesMut::with_capacity(1 << 16);
    let mut chunk = vec![0u8; 1 << 16];
    let mut out = Vec::with_capacity(1 << 16);
    loop {
        let n = match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        while let Ok(Some(req)) = dec.decode(&mut buf) {
            let start = out.len();
            out.extend_from_slice(&template);
            // Binary header: 4 length + 4 type/len + code 2 + lang 1 + version 2, then the opaque.
            out[start + 13..start + 17].copy_from_slice(&req.opaque.to_be_bytes());
        }
        if !out.is_empty() {
            if stream.write_all(&out).is_err() {
                return;
            }
            out.clear();
        }
    }
}

fn request() -> RemotingCommand {
    let mut r = RemotingCommand::request(RequestCode::GET_MAX_OFFSET)
        .with_serialize_type(SerializeType::ROCKETMQ);
    r.ext_fields.insert("topic", "BenchmarkTopic");
    r.ext_fields.insert("queueId", "0");
    r
}

/// Reads one whole frame from a blocking stream into `buf`.
fn read_frame(stream: &mut TcpStream, buf: &mut Vec<u8>) {
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).expect("length");
    let n = u32::from_be_bytes(len) as usize;
    buf.resize(n, 0);
    stream.read_exact(buf).expect("frame");
}

fn bench_round_trip(c: &mut Criterion) {
    let addr = server();
    let mut g = c.benchmark_group("round_trip");
    g.throughput(Throughput::Elements(1));
    let frame = request().with_opaque(7).to_bytes().expect("encodes");
    let mut raw = TcpStream::connect(&addr).expect("connect");
    raw.set_nodelay(true).expect("nodelay");
    let mut rbuf = Vec::new();
    g.bench_function("raw_tcpstream", |b| {
        b.iter(|| {
            raw.write_all(&frame).expect("write");
            read_frame(&mut raw, &mut rbuf);
        })
    });
    let client = RemotingClient::new(RemotingConfig {
        serialize_type: SerializeType::ROCKETMQ,
        ..Default::default()
    })
    .expect("client");
    let req = request();
    g.bench_function("rmq_invoke_sync", |b| {
        b.iter(|| {
            client
                .invoke_sync(&addr, req.clone(), Duration::from_secs(5))
                .expect("response")
        })
    });
    g.finish();
    client.shutdown();
}

const WINDOW: usize = 32;

/// Raw pipelining: one writer keeps WINDOW pre-encoded frames in flight, one reader takes the answers.
fn raw_pipelined(addr: &str, n: usize) -> Duration {
    let stream = TcpStream::connect(addr).expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let mut reader = stream.try_clone().expect("clone");
    let mut writer = stream;
    let frame = request().with_opaque(9).to_bytes().expect("encodes");
    let room = Arc::new((Mutex::new(WINDOW), Condvar::new()));
    let started = Instant::now();
    let r2 = room.clone();
    let reading = std::thread::spawn(move || {
        let mut buf = Vec::new();
        for _ in 0..n {
            read_frame(&mut reader, &mut buf);
            let (m, cv) = &*r2;
            *m.lock().expect("lock") += 1;
            cv.notify_one();
        }
    });
    for _ in 0..n {
        let (m, cv) = &*room;
        let mut free = m.lock().expect("lock");
        while *free == 0 {
            free = cv.wait(free).expect("wait");
        }
        *free -= 1;
        drop(free);
        writer.write_all(&frame).expect("write");
    }
    reading.join().expect("reader");
    started.elapsed()
}

/// rmq pipelining: WINDOW threads calling invoke_sync on one shared connection.
fn rmq_pipelined(client: &RemotingClient, addr: &str, n: usize) -> Duration {
    let barrier = Arc::new(Barrier::new(WINDOW + 1));
    let threads: Vec<_> = (0..WINDOW)
        .map(|_| {
            let (client, addr, barrier) = (client.clone(), addr.to_owned(), barrier.clone());
            std::thread::spawn(move || {
                let req = request();
                barrier.wait();
                for _ in 0..n / WINDOW {
                    client
                        .invoke_sync(&addr, req.clone(), Duration::from_secs(10))
                        .expect("response");
                }
            })
        })
        .collect();
    barrier.wait();
    let started = Instant::now();
    for t in threads {
        t.join().expect("thread");
    }
    started.elapsed()
}

fn bench_pipelined(c: &mut Criterion) {
    let addr = server();
    let client = RemotingClient::new(RemotingConfig {
        serialize_type: SerializeType::ROCKETMQ,
        ..Default::default()
    })
    .expect("client");
    client
        .invoke_sync(&addr, request(), Duration::from_secs(5))
        .expect("warm");
    const BATCH: usize = WINDOW * 200;
    let mut g = c.benchmark_group("pipelined_32");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.sample_size(20);
    g.bench_function("raw_writer_reader_pair", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| raw_pipelined(&addr, BATCH)).sum())
    });
    g.bench_function("rmq_32_threads_invoke_sync", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| rmq_pipelined(&client, &addr, BATCH))
                .sum()
        })
    });
    g.finish();
    client.shutdown();
}

#[allow(missing_docs)]
mod groups {
    use super::*;
    criterion_group!(benches, bench_round_trip, bench_pipelined);
}
criterion_main!(groups::benches);
