//! One TCP connection: requests multiplexed by opaque, a reader thread that completes them, its
//! [`Writer`], and poisoning on any read, write or framing error.
//!
//! The connection's state is one value under one lock, [`ConnState`]: `Open` with the pending requests,
//! or `Dead` with the reason. A request is registered only while it is `Open`, in the same critical
//! section that checks it, so nothing can register on a dead connection and be missed by the poisoning.
//!
//! Lock order (never hold two at once): `state` alone; the writer's lock alone; a `Slot`'s lock is taken
//! only after `state` was released.

use std::collections::HashMap;
use std::io::Read;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use parking_lot::Mutex;
use rmq_protocol::{FrameDecoder, RemotingCommand, ResponseCode};
use tracing::{debug, warn};

use crate::completion::{Owner, Slot};
use crate::error::{RemotingError, decode_reason, lost};
use crate::flow::InFlight;
use crate::handler::Handlers;
use crate::transport::{Dialer, ReadHalf};
use crate::writer::{WriteOwner, Writer};

/// Tables (pending requests) above this capacity are shrunk by the timer when mostly empty.
const SHRINK_ABOVE: usize = 1024;

/// A fault-injection hook of the tests (see `ConnInner::before_register`).
#[cfg(test)]
type FaultHook = Box<dyn Fn(&ConnInner) + Send + Sync>;

/// Whether a connection takes requests: the one place its liveness is decided.
enum ConnState {
    /// Live, with its pending requests by opaque.
    Open(HashMap<i32, Arc<Slot>>),
    /// Dead, and why: nothing registers any more.
    Dead(String),
}

/// The shared state of one connection.
pub(crate) struct ConnInner {
    pub(crate) addr: String,
    writer: Writer,
    state: Mutex<ConnState>,
    /// `state` is `Dead`: a lock-free copy for the hot checks (the pool's, the writer thread's), written
    /// only under the `state` lock, right after the state turned `Dead`.
    dead: AtomicBool,
    /// The server answered GO_AWAY (it is shutting down): new requests go to a new connection; this one
    /// keeps its pending requests until they end (the client retires it).
    going_away: AtomicBool,
    in_flight: Arc<InFlight>,
    handlers: Arc<Handlers>,
    /// A request or response since the timer last looked ([`ConnInner::idle_for`]).
    used: AtomicBool,
    /// When the timer last found the connection used.
    last_seen_used: Mutex<Instant>,
    reader: Mutex<Option<JoinHandle<()>>>,
    /// Fault injection for tests: runs just before a request is registered, where a poisoning by the
    /// reader thread could race with the send.
    #[cfg(test)]
    before_register: Mutex<Option<FaultHook>>,
}

impl std::fmt::Debug for ConnInner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("addr", &self.addr)
            .field("dead", &self.is_dead())
            .finish()
    }
}

fn resolve(addr: &str) -> Result<SocketAddr, RemotingError> {
    let err = |reason: String| RemotingError::Connect {
        addr: addr.to_owned(),
        reason,
    };
    addr.to_socket_addrs()
        .map_err(|e| err(format!("bad address: {e}")))?
        .next()
        .ok_or_else(|| err("address resolves to nothing".into()))
}

impl ConnInner {
    /// Connects and starts the reader thread.
    pub(crate) fn connect(
        addr: &str,
        dialer: &Dialer,
        (timeout, write_timeout): (Duration, Duration),
        max_frame: usize,
        in_flight: Arc<InFlight>,
        handlers: Arc<Handlers>,
    ) -> Result<Arc<ConnInner>, RemotingError> {
        let sock = resolve(addr)?;
        let err = |reason: String| RemotingError::Connect {
            addr: addr.to_owned(),
            reason,
        };
        let (stream, read_half) = dialer
            .dial(addr, sock, Instant::now() + timeout)
            .map_err(err)?;
        stream
            .set_write_timeout(write_timeout)
            .map_err(|e| err(format!("cannot set the write timeout: {e}")))?;
        let tls = stream.is_tls();
        let conn = Arc::new(ConnInner {
            addr: addr.to_owned(),
            writer: Writer::new(addr, stream),
            state: Mutex::new(ConnState::Open(HashMap::new())),
            dead: AtomicBool::new(false),
            going_away: AtomicBool::new(false),
            in_flight,
            handlers,
            used: AtomicBool::new(false),
            last_seen_used: Mutex::new(Instant::now()),
            reader: Mutex::new(None),
            #[cfg(test)]
            before_register: Mutex::new(None),
        });
        let weak = Arc::downgrade(&conn);
        let handle = std::thread::Builder::new()
            .name(format!("rmq-reader-{addr}"))
            .spawn(move || reader_loop(weak, read_half, max_frame, tls))
            .map_err(|e| err(format!("cannot start reader thread: {e}")))?;
        *conn.reader.lock() = Some(handle);
        debug!(addr, "connected");
        Ok(conn)
    }

    pub(crate) fn is_dead(&self) -> bool {
        self.dead.load(Ordering::Acquire)
    }

    /// Whether the server said GO_AWAY on this connection: no new request should use it.
    pub(crate) fn is_going_away(&self) -> bool {
        self.going_away.load(Ordering::Acquire)
    }

    /// Whether a new request may use this connection.
    pub(crate) fn is_usable(&self) -> bool {
        !self.is_dead() && !self.is_going_away()
    }

    /// The error of a request the dead connection (dead for `reason`) never wrote (nothing was sent: a
    /// retry cannot duplicate it), after completing its slot with it.
    fn not_written(
        &self,
        cmd: &RemotingCommand,
        slot: Option<&Arc<Slot>>,
        reason: &str,
    ) -> RemotingError {
        let e = RemotingError::Connect {
            addr: self.addr.clone(),
            reason: format!(
                "the connection died before request {} was written ({reason})",
                cmd.opaque
            ),
        };
        if let Some(slot) = slot {
            self.finish(slot, Err(e.clone()));
        }
        e
    }

    /// Notes a request or response, without reading the clock (the timer does that, once per tick).
    fn touch(&self) {
        if !self.used.load(Ordering::Relaxed) {
            self.used.store(true, Ordering::Relaxed);
        }
    }

    /// Time since the connection was last seen used, measured by the caller's ticks: the timer calls it
    /// once per tick with its `now`, so idleness is known to within a tick.
    pub(crate) fn idle_for(&self, now: Instant) -> Duration {
        let mut seen = self.last_seen_used.lock();
        if self.used.swap(false, Ordering::Relaxed) {
            *seen = now;
        }
        now.saturating_duration_since(*seen)
    }

    /// Whether a synchronous waiter should poll briefly before sleeping: only when at most one other
    /// request is in flight on the whole client.
    fn spin_worthwhile_now(&self) -> bool {
        self.in_flight.current().0 <= 2
    }

    pub(crate) fn pending_len(&self) -> usize {
        match &*self.state.lock() {
            ConnState::Open(pending) => pending.len(),
            ConnState::Dead(_) => 0,
        }
    }

    /// Completes `slot` with `result` and releases its permit, once.
    fn finish(&self, slot: &Slot, result: Result<RemotingCommand, RemotingError>) {
        slot.complete(result, || self.in_flight.release(slot.permit));
    }

    /// Gives up on a pending request (timeout or dropped handle).
    pub(crate) fn abandon_pending(&self, opaque: i32, slot: &Arc<Slot>, err: RemotingError) {
        if let ConnState::Open(pending) = &mut *self.state.lock()
            && pending.get(&opaque).is_some_and(|s| Arc::ptr_eq(s, slot))
        {
            pending.remove(&opaque);
        }
        self.finish(slot, Err(err));
    }

    /// Registers `slot` under `cmd.opaque` (when given) and writes the frame: at once, or, when
    /// `pipelined` (its caller does not wait for the answer), possibly later with others
    /// ([`Writer::write_pipelined`]).
    pub(crate) fn send(
        &self,
        cmd: &RemotingCommand,
        slot: Option<&Arc<Slot>>,
        pipelined: bool,
    ) -> Result<(), RemotingError> {
        // Every failure completes the slot, so no waiter or callback is ever left hanging.
        #[cfg(test)]
        if let Some(hook) = self.before_register.lock().as_ref() {
            hook(self);
        }
        let mut awaited = 0;
        {
            let mut state = self.state.lock();
            match &mut *state {
                ConnState::Open(pending) => {
                    if let Some(slot) = slot {
                        pending.insert(cmd.opaque, slot.clone());
                        awaited = pending.len();
                    }
                }
                ConnState::Dead(reason) => {
                    let reason = reason.clone();
                    drop(state);
                    return Err(self.not_written(cmd, slot, &reason));
                }
            }
        }
        self.touch();
        let result = if pipelined {
            self.writer.write_pipelined(cmd, awaited, self)
        } else {
            self.writer.write_frame(cmd, self)
        };
        if let (Err(e), Some(slot)) = (&result, slot) {
            self.abandon_pending(cmd.opaque, slot, e.clone());
        }
        result
    }

    /// Marks the connection dead, closes the socket and fails every pending request at once.
    pub(crate) fn poison(&self, reason: &str) {
        self.fail_all(reason, |addr| lost(addr, reason));
    }

    /// Like [`ConnInner::poison`], failing pending requests with `make(addr)`.
    pub(crate) fn fail_all(&self, reason: &str, make: impl Fn(&str) -> RemotingError) {
        let pending = {
            let mut state = self.state.lock();
            let ConnState::Open(pending) = &mut *state else {
                return;
            };
            let pending = std::mem::take(pending);
            *state = ConnState::Dead(reason.to_owned());
            self.dead.store(true, Ordering::Release);
            pending
        };
        self.writer.close();
        let drained: Vec<Arc<Slot>> = pending.into_values().collect();
        if !drained.is_empty() {
            warn!(addr = %self.addr, reason, failed = drained.len(), "connection lost with requests pending");
        }
        for slot in drained {
            self.finish(&slot, Err(make(&self.addr)));
        }
    }

    /// Fails pending requests whose deadline has passed.
    pub(crate) fn sweep(&self, now: Instant) {
        let expired: Vec<(i32, Arc<Slot>)> = {
            let mut state = self.state.lock();
            let ConnState::Open(pending) = &mut *state else {
                return;
            };
            let ids: Vec<i32> = pending
                .iter()
                .filter(|(_, s)| s.deadline <= now)
                .map(|(id, _)| *id)
                .collect();
            let expired = ids
                .into_iter()
                .filter_map(|id| pending.remove(&id).map(|s| (id, s)))
                .collect();
            // After a burst the table keeps its largest size: give most of it back.
            if pending.capacity() > SHRINK_ABOVE && pending.len() * 4 < pending.capacity() {
                let keep = pending.len() * 2;
                pending.shrink_to(keep);
            }
            expired
        };
        for (opaque, slot) in expired {
            let err = RemotingError::Timeout {
                addr: self.addr.clone(),
                opaque,
                after: slot.timeout,
            };
            self.finish(&slot, Err(err));
        }
    }

    /// The timer's flush of frames left behind ([`Writer::flush_stale`]).
    pub(crate) fn flush_stale(self: &Arc<Self>) {
        self.writer.flush_stale(self);
    }

    /// Joins the reader thread and the writer thread, if one runs (after the connection is dead).
    pub(crate) fn join(&self) {
        let reader = self.reader.lock().take();
        let writer = self.writer.take_thread();
        for h in [reader, writer].into_iter().flatten() {
            if h.thread().id() != std::thread::current().id() {
                let _ = h.join();
            }
        }
    }

    fn on_frame(&self, cmd: RemotingCommand) {
        self.touch();
        if cmd.is_response() {
            if cmd.response_code() == ResponseCode::GO_AWAY && !self.is_going_away() {
                // The server shuts down: it did not process this request and takes no new ones here.
                debug!(addr = %self.addr, "the server said GO_AWAY; new requests will use a new connection");
                self.going_away.store(true, Ordering::Release);
            }
            let slot = match &mut *self.state.lock() {
                ConnState::Open(pending) => pending.remove(&cmd.opaque),
                ConnState::Dead(_) => None,
            };
            match slot {
                Some(slot) => self.finish(&slot, Ok(cmd)),
                None => {
                    debug!(opaque = cmd.opaque, addr = %self.addr, "response for unknown request (late after a timeout?)")
                }
            }
            return;
        }
        let oneway = cmd.is_oneway();
        let opaque = cmd.opaque;
        let ty = cmd.serialize_type;
        let code = cmd.code;
        let response = match self.handlers.get(cmd.code) {
            // A panicking handler answers SYSTEM_ERROR; the reader thread goes on.
            Some(h) => crate::guard::run_user_code("request handler", || h.handle(&self.addr, cmd))
                .unwrap_or_else(|| {
                    Some(RemotingCommand::response(
                        ResponseCode::SYSTEM_ERROR,
                        Some(format!("the client's handler of request {code} failed")),
                    ))
                }),
            None => {
                debug!(code = cmd.code, addr = %self.addr, "no handler for server request");
                Some(RemotingCommand::response(
                    ResponseCode::REQUEST_CODE_NOT_SUPPORTED,
                    Some(format!(" request type {} not supported", cmd.code)),
                ))
            }
        };
        if let Some(mut resp) = response.filter(|_| !oneway) {
            resp.opaque = opaque;
            resp.mark_response();
            resp.serialize_type = ty;
            // Over plain TCP the answer waits for the reader's flush, which never blocks.
            if let Err(e) = self.writer.write_pipelined(&resp, 0, self) {
                debug!(addr = %self.addr, error = %e, "cannot answer a server request");
            }
        }
    }
}

fn reader_loop(conn: Weak<ConnInner>, mut stream: ReadHalf, max_frame: usize, tls: bool) {
    crate::writer::mark_reader_thread();
    let decoder = FrameDecoder::new(max_frame);
    let mut answered = false;
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut chunk = vec![0u8; 64 * 1024];
    // Over plain TCP the reader writes what pipelining callers left between two reads; a TLS reader
    // never writes.
    let flushes = !tls;
    loop {
        {
            let Some(c) = conn.upgrade() else { return };
            loop {
                match decoder.decode(&mut buf) {
                    Ok(Some(cmd)) => {
                        answered = true;
                        c.on_frame(cmd);
                    }
                    Ok(None) => break,
                    Err(e) => {
                        c.poison(&decode_reason(&e));
                        return;
                    }
                }
            }
            if flushes {
                c.writer.reader_flush(&c);
            }
        }
        match stream.read(&mut chunk) {
            Ok(0) => {
                if let Some(c) = conn.upgrade() {
                    // A server that enforces TLS closes a plaintext connection without a word.
                    c.poison(if answered || tls {
                        "closed by peer"
                    } else {
                        "closed by peer before any answer (a server that enforces TLS does this to a plaintext client: enable TLS)"
                    });
                }
                return;
            }
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                if flushes && let Some(c) = conn.upgrade() {
                    c.writer.on_read();
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                if let Some(c) = conn.upgrade() {
                    c.poison(&format!("read failed: {e}"));
                }
                return;
            }
        }
    }
}

impl WriteOwner for ConnInner {
    fn writer(&self) -> &Writer {
        &self.writer
    }

    fn is_dead(&self) -> bool {
        ConnInner::is_dead(self)
    }

    fn write_failed(&self, reason: &str) {
        self.poison(reason);
    }
}

impl Owner for ConnInner {
    fn addr(&self) -> &str {
        &self.addr
    }

    fn spin_worthwhile(&self) -> bool {
        self.spin_worthwhile_now()
    }

    fn abandon(&self, opaque: i32, slot: &Arc<Slot>, err: RemotingError) {
        self.abandon_pending(opaque, slot, err);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::flow::OverloadPolicy;
    use rmq_protocol::RequestCode;

    /// A connection to a listener of its own (kept alive by the caller), and its in-flight accounting.
    fn live_connection() -> (std::net::TcpListener, Arc<ConnInner>, Arc<InFlight>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let in_flight = Arc::new(InFlight::new(16, 1 << 20, OverloadPolicy::Fail));
        let conn = ConnInner::connect(
            &addr,
            &Dialer::default(),
            (Duration::from_secs(1), Duration::from_secs(3)),
            1 << 20,
            in_flight.clone(),
            Arc::new(Handlers::default()),
        )
        .unwrap();
        (listener, conn, in_flight)
    }

    /// Before: a burst of pending requests left the table at its largest size for the connection's life.
    #[test]
    fn the_pending_table_shrinks_after_a_burst() {
        let (_listener, conn, _) = live_connection();
        let far = Instant::now() + Duration::from_secs(60);
        {
            let mut state = conn.state.lock();
            let ConnState::Open(p) = &mut *state else {
                unreachable!()
            };
            for i in 0..20_000 {
                p.insert(
                    i,
                    Slot::new(far, Duration::from_secs(60), Default::default(), None),
                );
            }
            p.retain(|k, _| *k < 10);
        }
        conn.sweep(Instant::now());
        let state = conn.state.lock();
        let ConnState::Open(p) = &*state else {
            unreachable!()
        };
        assert_eq!(p.len(), 10);
        assert!(p.capacity() <= SHRINK_ABOVE, "{}", p.capacity());
    }

    /// A request handed to a connection that died after the pool gave it out: its slot completes at
    /// once with a not-sent error (it used to stay pending until its timeout, then read as possibly
    /// stored).
    #[test]
    fn a_request_on_a_dead_connection_completes_its_slot_as_not_sent() {
        let (_listener, conn, in_flight) = live_connection();
        conn.poison("injected");
        for opaque in [7, 8] {
            let permit = in_flight
                .acquire(10, Instant::now() + Duration::from_secs(1))
                .unwrap();
            let slot = Slot::new(
                Instant::now() + Duration::from_secs(30),
                Duration::from_secs(30),
                permit,
                None,
            );
            let mut cmd = RemotingCommand::request(RequestCode::SEND_MESSAGE_V2);
            cmd.opaque = opaque;
            let e = conn.send(&cmd, Some(&slot), false).unwrap_err();
            assert!(e.is_not_sent(), "{e}");
            assert!(
                slot.is_complete(),
                "the slot is completed, not left to its timeout"
            );
        }
        assert_eq!(conn.pending_len(), 0);
        assert_eq!(in_flight.current(), (0, 0), "permits released");
        conn.join();
    }

    /// The race: the reader thread poisons the connection just before the request is registered (once,
    /// after `send` had checked it alive, so the poisoning's sweep of pending requests missed it: the
    /// request stayed pending until its timeout, its callback unrun and its permit held). Made to happen
    /// through the fault-injection hook; the request must complete at once, as not sent. With the state
    /// one value under one lock, the check and the registration are one step.
    #[test]
    fn a_poisoning_between_the_check_and_the_registration_completes_the_request() {
        let (_listener, conn, in_flight) = live_connection();
        *conn.before_register.lock() = Some(Box::new(|c: &ConnInner| c.poison("injected")));
        let permit = in_flight
            .acquire(10, Instant::now() + Duration::from_secs(1))
            .unwrap();
        let ran = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let r2 = ran.clone();
        let slot = Slot::new(
            Instant::now() + Duration::from_secs(30),
            Duration::from_secs(30),
            permit,
            Some(Box::new(
                move |r: Result<RemotingCommand, RemotingError>| {
                    assert!(r.unwrap_err().is_not_sent());
                    r2.store(true, Ordering::SeqCst);
                },
            )),
        );
        let mut cmd = RemotingCommand::request(RequestCode::SEND_MESSAGE_V2);
        cmd.opaque = 9;
        let e = conn.send(&cmd, Some(&slot), false).unwrap_err();
        assert!(e.is_not_sent(), "{e}");
        assert!(slot.is_complete());
        assert!(ran.load(Ordering::SeqCst), "the callback ran");
        assert_eq!(conn.pending_len(), 0);
        assert_eq!(in_flight.current(), (0, 0), "permit released");
        conn.join();
    }
}
