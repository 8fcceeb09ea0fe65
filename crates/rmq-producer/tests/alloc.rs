//! Allocations per `send_sync` of a 1 KiB message on a warm producer, counted by a global allocator
//! wrapper over the whole process: the caller's thread, the connection's reader and timer threads. The
//! broker is a raw responder written here that allocates nothing per request (a reused read buffer and a
//! pre-encoded answer with the opaque patched in), so every counted allocation is the client's. This file
//! holds one test so no other test thread allocates while it counts.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::BytesMut;
use rmq_producer::{Producer, ProducerConfig};
use rmq_protocol::{Message, SerializeType};
use rmq_testkit::{Action, MockServer, route_response, send_ok};

mod common;
use common::route;

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// Allocations made by this thread (to tell the caller's share from the reader's).
    static MINE: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

fn count() {
    ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    let _ = MINE.try_with(|c| c.set(c.get() + 1));
}

// SAFETY: forwards every call to the system allocator unchanged; only counts allocations.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The opaque of a JSON-header request frame (`"opaque":123`), found without allocating.
fn json_opaque(header: &[u8]) -> Option<i32> {
    let key = b"\"opaque\":";
    let at = header.windows(key.len()).position(|w| w == key)? + key.len();
    let mut n: i64 = 0;
    let mut neg = false;
    for (i, &c) in header[at..].iter().enumerate() {
        match c {
            b'-' if i == 0 => neg = true,
            b'0'..=b'9' => n = n * 10 + i64::from(c - b'0'),
            _ => break,
        }
    }
    i32::try_from(if neg { -n } else { n }).ok()
}

/// Answers every request on one connection with `answer` (a binary-header frame), its opaque replaced by
/// the request's. No allocation per request.
fn respond(mut s: TcpStream, mut answer: Vec<u8>) {
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let mut len = [0u8; 4];
        if s.read_exact(&mut len).is_err() {
            return;
        }
        let total = u32::from_be_bytes(len) as usize;
        if total > buf.len() || s.read_exact(&mut buf[..total]).is_err() {
            return;
        }
        let header_len = (u32::from_be_bytes([0, buf[1], buf[2], buf[3]])) as usize;
        let oneway = false;
        let Some(opaque) = json_opaque(&buf[4..4 + header_len.min(total - 4)]) else {
            return;
        };
        // Frame: total(4) | type+len(4) | code(2) language(1) version(2) opaque(4) ...
        answer[13..17].copy_from_slice(&opaque.to_be_bytes());
        if !oneway && s.write_all(&answer).is_err() {
            return;
        }
    }
}

#[test]
fn a_warm_send_sync_allocates_at_most_five_times() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let broker_addr = listener.local_addr().unwrap().to_string();
    let mut answer = BytesMut::new();
    let mut ok = send_ok(1, 42);
    ok.serialize_type = SerializeType::ROCKETMQ;
    ok.encode(&mut answer).unwrap();
    let answer = answer.to_vec();
    std::thread::spawn(move || {
        for s in listener.incoming() {
            let answer = answer.clone();
            let s = s.unwrap();
            std::thread::spawn(move || respond(s, answer));
        }
    });
    let r = route(&[("broker-a", &broker_addr)]);
    let ns = MockServer::start(move |_: &rmq_protocol::RemotingCommand| {
        vec![Action::Respond(route_response(&r))]
    })
    .unwrap();
    let p = Producer::new(ProducerConfig::new("alloc_group", ns.addr())).unwrap();
    p.start().unwrap();
    let msg = Message::new("T", vec![b'x'; 1024]);
    for _ in 0..2000 {
        p.send_sync(&msg).unwrap();
    }
    let n = 5000;
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    let mine_before = MINE.with(|c| c.get());
    for _ in 0..n {
        p.send_sync(&msg).unwrap();
    }
    let per_send = (ALLOCATIONS.load(Ordering::SeqCst) - before) as f64 / f64::from(n);
    let caller = (MINE.with(|c| c.get()) - mine_before) as f64 / f64::from(n);
    println!(
        "allocations per warm send_sync of 1 KiB: {per_send:.2} ({caller:.2} on the caller's thread)"
    );
    // The asynchronous path, measured the same way (reported, not asserted).
    for _ in 0..2000 {
        p.send_async(&msg).wait().unwrap();
    }
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    for _ in 0..n {
        p.send_async(&msg).wait().unwrap();
    }
    let per_async = (ALLOCATIONS.load(Ordering::SeqCst) - before) as f64 / f64::from(n);
    println!("allocations per warm send_async of 1 KiB (waited): {per_async:.2}");
    p.shutdown();
    // Measured 5.0 (19.0 at first, 11.0 after the borrowed send header and the copy-free properties; then
    // inline message ids, shared topic and broker names and header maps with their index inline). The
    // goal of issue 10 is 6. What is left: the properties text, the request's ext-field text, the
    // completion slot and the region's text on the caller's thread; the response's ext-field text on the
    // reader's.
    assert!(per_send <= 5.5, "{per_send:.2} allocations per send");
}
