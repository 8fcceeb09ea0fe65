//! [`RemotingClient`]: a pool of connections, one per address, with the three ways to call.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, RwLock};
use rmq_protocol::{DEFAULT_MAX_FRAME, RemotingCommand, RequestCode, SerializeType};
use tracing::debug;

use crate::completion::{Callback, ResponseFuture, Slot};
use crate::connection::ConnInner;
use crate::error::RemotingError;
use crate::flow::{InFlight, OverloadPolicy, Permit};
use crate::handler::{Handlers, RequestHandler};
use crate::tls::TlsConfig;
use crate::transport::Dialer;

/// Runs on every outgoing request before it is encoded (ACL signing and namespace fields plug in here).
pub trait RpcHook: Send + Sync {
    /// Inspects or changes `request` about to go to `addr`.
    fn before_request(&self, addr: &str, request: &mut RemotingCommand);
}

/// Connection-layer settings. Every field has a default that suits a producer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemotingConfig {
    /// TCP connect timeout. Default 3 s.
    pub connect_timeout: Duration,
    /// Header encoding of requests. Default JSON (Java's default); responses of either type are decoded.
    pub serialize_type: SerializeType,
    /// Largest frame accepted from a server. Default 16 MiB.
    pub max_frame: usize,
    /// Most requests in flight across the client. Default 65,536.
    pub max_in_flight: usize,
    /// Most request bytes in flight for async and oneway calls. Default 256 MiB.
    pub max_in_flight_bytes: usize,
    /// Block or fail when the bounds are reached. Default block (up to the call's deadline).
    pub overload: OverloadPolicy,
    /// A connection unused this long, with nothing pending, is closed. Default 120 s.
    pub idle_timeout: Duration,
    /// Wait after a failed connect before the next attempt to the same address; doubles per failure.
    /// Default 100 ms.
    pub reconnect_backoff: Duration,
    /// Cap of the reconnect wait. Default 5 s.
    pub reconnect_backoff_max: Duration,
    /// How often the timer fails expired requests, closes idle connections (idleness is known to within a
    /// tick) and connections that went away (GO_AWAY) once nothing is pending on them, and hands pipelined
    /// frames no answer came to collect to a writer thread (after two ticks). Default 10 ms; 1 ms..=1 s
    /// in a producer's config.
    pub timer_tick: Duration,
    /// A write that makes no progress this long (the server stopped reading) fails the connection and
    /// every request on it. Default 3 s.
    pub write_timeout: Duration,
    /// Connections kept to each address; requests are spread over them in turn. Default 1 (as Java).
    pub connections_per_addr: usize,
    /// TLS for every connection (the `tls` feature builds it; without it, setting this is an error at
    /// [`RemotingClient::new`]). Default none: plain TCP.
    pub tls: Option<TlsConfig>,
}

impl Default for RemotingConfig {
    fn default() -> Self {
        RemotingConfig {
            connect_timeout: Duration::from_secs(3),
            serialize_type: SerializeType::JSON,
            max_frame: DEFAULT_MAX_FRAME,
            max_in_flight: 65_536,
            max_in_flight_bytes: 256 * 1024 * 1024,
            overload: OverloadPolicy::Block,
            idle_timeout: Duration::from_secs(120),
            reconnect_backoff: Duration::from_millis(100),
            reconnect_backoff_max: Duration::from_secs(5),
            timer_tick: Duration::from_millis(10),
            write_timeout: Duration::from_secs(3),
            connections_per_addr: 1,
            tls: None,
        }
    }
}

/// A connect in progress that other callers wait on (single flight).
struct Connecting {
    done: Mutex<Option<Result<Arc<ConnInner>, RemotingError>>>,
    cond: Condvar,
}

enum Entry {
    Empty,
    Ready(Arc<ConnInner>),
    Connecting(Arc<Connecting>),
    Failed {
        retry_at: Instant,
        failures: u32,
        reason: String,
    },
}

struct ClientInner {
    config: RemotingConfig,
    dialer: Dialer,
    /// Per address, `connections_per_addr` slots.
    conns: Mutex<HashMap<String, Vec<Entry>>>,
    /// Connections whose server said GO_AWAY, replaced in `conns` by a new one: the timer fails their
    /// expired requests and closes each once nothing is pending on it.
    retiring: Mutex<Vec<Arc<ConnInner>>>,
    next_slot: std::sync::atomic::AtomicUsize,
    in_flight: Arc<InFlight>,
    handlers: Arc<Handlers>,
    hooks: RwLock<Vec<Arc<dyn RpcHook>>>,
    next_opaque: AtomicI32,
    closed: AtomicBool,
    timer_stop: (Mutex<bool>, Condvar),
    timer: Mutex<Option<JoinHandle<()>>>,
}

/// The connection pool and request API. Cheap to clone; every method takes `&self`.
///
/// Requests to one address share one connection, multiplexed by opaque: many threads and async sends
/// proceed without waiting for each other. A background timer thread fails requests at their deadline
/// (so futures always complete) and closes idle connections.
#[derive(Clone)]
pub struct RemotingClient {
    inner: Arc<ClientInner>,
}

impl std::fmt::Debug for RemotingClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemotingClient")
            .field("connections", &self.connection_count())
            .field("closed", &self.inner.closed.load(Ordering::Relaxed))
            .finish()
    }
}

impl RemotingClient {
    /// A client with `config`; starts its timer thread.
    pub fn new(config: RemotingConfig) -> Result<RemotingClient, RemotingError> {
        let dialer = Dialer::new(config.tls.as_ref()).map_err(RemotingError::Config)?;
        let inner = Arc::new(ClientInner {
            dialer,
            in_flight: Arc::new(InFlight::new(
                config.max_in_flight,
                config.max_in_flight_bytes,
                config.overload,
            )),
            config,
            conns: Mutex::new(HashMap::new()),
            retiring: Mutex::new(Vec::new()),
            next_slot: std::sync::atomic::AtomicUsize::new(0),
            handlers: Arc::new(Handlers::default()),
            hooks: RwLock::new(Vec::new()),
            next_opaque: AtomicI32::new(1),
            closed: AtomicBool::new(false),
            timer_stop: (Mutex::new(false), Condvar::new()),
            timer: Mutex::new(None),
        });
        let weak = Arc::downgrade(&inner);
        let handle = std::thread::Builder::new()
            .name("rmq-remoting-timer".into())
            .spawn(move || timer_loop(weak))
            .map_err(|e| RemotingError::Connect {
                addr: String::new(),
                reason: format!("cannot start timer thread: {e}"),
            })?;
        *inner.timer.lock() = Some(handle);
        Ok(RemotingClient { inner })
    }

    /// Registers the handler for server-initiated requests with `code`, replacing an earlier one.
    pub fn register_handler(&self, code: RequestCode, handler: impl RequestHandler + 'static) {
        self.inner.handlers.register(code.0, Arc::new(handler));
    }

    /// Adds a hook run on every outgoing request, after the ones added before.
    pub fn add_hook(&self, hook: Arc<dyn RpcHook>) {
        self.inner.hooks.write().push(hook);
    }

    /// Sends `request` and waits for the response, at most `timeout`. When the address is in its reconnect
    /// backoff (a recent connect failed) and the backoff ends before the timeout, it waits for it and
    /// connects, instead of failing at once; the wait counts against `timeout`.
    pub fn invoke_sync(
        &self,
        addr: &str,
        request: RemotingCommand,
        timeout: Duration,
    ) -> Result<RemotingCommand, RemotingError> {
        let deadline = crate::time::deadline_after(Instant::now(), timeout);
        if let Some(wait) = self.backoff_wait(addr, timeout) {
            std::thread::sleep(wait);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        self.start(addr, request, left, 0, false)?.wait()
    }

    /// The wait worth taking before a call to `addr` that may take `time_left`: the rest of its reconnect
    /// backoff when that ends within `time_left` (a call made then connects, instead of failing at once
    /// with [`RemotingError::Backoff`]); `None` when there is no backoff, or it outlasts the call. The one
    /// rule every caller waits by: [`RemotingClient::invoke_sync`] sleeps it, the producer's asynchronous
    /// sends schedule their attempt after it.
    pub fn backoff_wait(&self, addr: &str, time_left: Duration) -> Option<Duration> {
        self.backoff_left(addr).filter(|wait| *wait < time_left)
    }

    /// How long until `addr` may be connected again, when every connection slot of it is in its reconnect
    /// backoff (a recent connect failed); `None` when a call would not wait for one.
    pub fn backoff_left(&self, addr: &str) -> Option<Duration> {
        let now = Instant::now();
        let conns = self.inner.conns.lock();
        let entries = conns.get(addr)?;
        entries
            .iter()
            .map(|e| match e {
                Entry::Failed { retry_at, .. } if *retry_at > now => Some(*retry_at - now),
                _ => None,
            })
            .collect::<Option<Vec<_>>>()
            .and_then(|waits| waits.into_iter().min())
    }

    /// Sends `request`; the returned handle completes with the response, or with an error at `timeout`.
    /// Wait on it from a thread or `.await` it on any executor. The frame may be written a little later,
    /// in a batch with others (while answers flow, by the connection's reader thread).
    pub fn invoke_async(
        &self,
        addr: &str,
        request: RemotingCommand,
        timeout: Duration,
    ) -> ResponseFuture {
        let bytes = request.body.len() + 256;
        match self.start(addr, request, timeout, bytes, true) {
            Ok(f) => f,
            Err(e) => ResponseFuture::ready(Err(e)),
        }
    }

    /// Sends `request` and runs `callback` with the outcome (on the connection's reader thread, its writer
    /// thread when a write fails, the timer thread, or the caller's when the request cannot be sent: it
    /// must not block; a long callback on the reader thread also delays the writing of other pipelined
    /// frames). The callback runs exactly once, including when the request cannot be sent.
    pub fn invoke_async_callback(
        &self,
        addr: &str,
        request: RemotingCommand,
        timeout: Duration,
        callback: impl FnOnce(Result<RemotingCommand, RemotingError>) + Send + 'static,
    ) {
        let bytes = request.body.len() + 256;
        let callback: Callback = Box::new(callback);
        // `start` consumes the callback into the slot; on an early failure it hands it back.
        if let Err((e, Some(cb))) =
            self.start_with_callback(addr, request, timeout, bytes, callback, None)
        {
            cb(Err(e));
        }
    }

    /// [`RemotingClient::invoke_async_callback`] that never connects (for a caller that must not
    /// block). When `addr` has a live connection the request is sent and `callback` runs exactly once
    /// with `state` and the outcome; when it has none, nothing runs and the request and `state` come
    /// back unsent (`Err`), so the caller can send them from a thread that may connect.
    pub fn invoke_async_callback_connected<S: Send + 'static>(
        &self,
        addr: &str,
        request: RemotingCommand,
        timeout: Duration,
        state: S,
        callback: impl FnOnce(S, Result<RemotingCommand, RemotingError>) + Send + 'static,
    ) -> Result<(), (Box<RemotingCommand>, S)> {
        let Some(live) = self.live_connection(addr) else {
            return Err((Box::new(request), state));
        };
        let bytes = request.body.len() + 256;
        let callback: Callback = Box::new(move |r| callback(state, r));
        if let Err((e, Some(cb))) =
            self.start_with_callback(addr, request, timeout, bytes, callback, Some(live))
        {
            cb(Err(e));
        }
        Ok(())
    }

    /// [`RemotingClient::invoke_oneway`] that never connects: `Err` gives the request back unsent when
    /// `addr` has no live connection; `Ok` is the oneway's outcome.
    pub fn invoke_oneway_connected(
        &self,
        addr: &str,
        request: RemotingCommand,
        timeout: Duration,
    ) -> Result<Result<(), RemotingError>, Box<RemotingCommand>> {
        match self.live_connection(addr) {
            Some(live) => Ok(self.oneway_on(addr, request, timeout, Some(live))),
            None => Err(Box::new(request)),
        }
    }

    /// The connection slot of `addr` the next call uses (round robin over `connections_per_addr`).
    fn next_slot(&self) -> usize {
        match self.inner.config.connections_per_addr.max(1) {
            1 => 0,
            n => self.inner.next_slot.fetch_add(1, Ordering::Relaxed) % n,
        }
    }

    /// The live connection the next call to `addr` would use, without connecting (`None`: there is
    /// none, it is connecting, or it is going away).
    fn live_connection(&self, addr: &str) -> Option<Arc<ConnInner>> {
        if self.inner.closed.load(Ordering::Acquire) {
            return None;
        }
        let slot = self.next_slot();
        match self.inner.conns.lock().get(addr)?.get(slot)? {
            Entry::Ready(c) if c.is_usable() => Some(c.clone()),
            _ => None,
        }
    }

    /// Sends `request` with the oneway flag; no response is expected. Returns once the frame is written
    /// or handed to the connection's writer. `timeout` bounds the wait for backpressure and connecting.
    pub fn invoke_oneway(
        &self,
        addr: &str,
        request: RemotingCommand,
        timeout: Duration,
    ) -> Result<(), RemotingError> {
        self.oneway_on(addr, request, timeout, None)
    }

    /// A oneway call on `live`, or on a connection to `addr` made if needed.
    fn oneway_on(
        &self,
        addr: &str,
        mut request: RemotingCommand,
        timeout: Duration,
        live: Option<Arc<ConnInner>>,
    ) -> Result<(), RemotingError> {
        let deadline = crate::time::deadline_after(Instant::now(), timeout);
        let permit = self
            .inner
            .in_flight
            .acquire(request.body.len() + 256, deadline)?;
        let result = (|| {
            let conn = live.map_or_else(|| self.connection(addr, deadline), Ok)?;
            request.mark_oneway();
            self.prepare(addr, &mut request)?;
            conn.send(&request, None, false)
        })();
        self.inner.in_flight.release(permit);
        result
    }

    /// Numbers `request` and runs the hooks on it. A hook that panics fails the request before it is
    /// sent (a request a hook did not finish, an unsigned one say, is not sent half-done).
    fn prepare(&self, addr: &str, request: &mut RemotingCommand) -> Result<(), RemotingError> {
        request.opaque = self.inner.next_opaque.fetch_add(1, Ordering::Relaxed);
        request.serialize_type = self.inner.config.serialize_type;
        for hook in self.inner.hooks.read().iter() {
            crate::guard::run_user_code("RpcHook::before_request", || {
                hook.before_request(addr, request)
            })
            .ok_or(RemotingError::HookPanicked)?;
        }
        Ok(())
    }

    /// `pipelined`: the caller does not wait for the answer (see `Launch::pipelined`).
    fn start(
        &self,
        addr: &str,
        request: RemotingCommand,
        timeout: Duration,
        bytes: usize,
        pipelined: bool,
    ) -> Result<ResponseFuture, RemotingError> {
        let deadline = crate::time::deadline_after(Instant::now(), timeout);
        let permit = self.inner.in_flight.acquire(bytes, deadline)?;
        let launch = Launch {
            deadline,
            timeout,
            pipelined,
        };
        match self.launch(addr, request, launch, permit, None, None) {
            Ok(f) => Ok(f),
            Err((e, _)) => Err(e),
        }
    }

    fn start_with_callback(
        &self,
        addr: &str,
        request: RemotingCommand,
        timeout: Duration,
        bytes: usize,
        callback: Callback,
        live: Option<Arc<ConnInner>>,
    ) -> Result<(), (RemotingError, Option<Callback>)> {
        let deadline = crate::time::deadline_after(Instant::now(), timeout);
        let permit = match self.inner.in_flight.acquire(bytes, deadline) {
            Ok(p) => p,
            Err(e) => return Err((e, Some(callback))),
        };
        // The callback now lives in the slot and owns the outcome; the handle is not needed.
        let launch = Launch {
            deadline,
            timeout,
            pipelined: true,
        };
        self.launch(addr, request, launch, permit, Some(callback), live)
            .map(ResponseFuture::detach)
    }

    /// Connects if needed, registers the slot and writes. On failure before the slot is registered the
    /// permit is released and the callback handed back.
    fn launch(
        &self,
        addr: &str,
        mut request: RemotingCommand,
        Launch {
            deadline,
            timeout,
            pipelined,
        }: Launch,
        permit: Permit,
        callback: Option<Callback>,
        live: Option<Arc<ConnInner>>,
    ) -> Result<ResponseFuture, (RemotingError, Option<Callback>)> {
        let conn = match live.map_or_else(|| self.connection(addr, deadline), Ok) {
            Ok(c) => c,
            Err(e) => {
                self.inner.in_flight.release(permit);
                return Err((e, callback));
            }
        };
        if let Err(e) = self.prepare(addr, &mut request) {
            self.inner.in_flight.release(permit);
            return Err((e, callback));
        }
        let slot = Slot::new(deadline, timeout, permit, callback);
        let weak = Arc::downgrade(&conn);
        let owner: std::sync::Weak<dyn crate::completion::Owner> = weak;
        let future = ResponseFuture::new(slot.clone(), owner, request.opaque);
        // A failed send completes the slot (and runs a callback) with the error; the future reports it.
        let _ = conn.send(&request, Some(&slot), pipelined);
        Ok(future)
    }

    /// Whether every connection slot of `addr` holds a live connection, so a call to it will not connect
    /// (an async caller that must not block can hand the call to another thread when this is false).
    pub fn is_connected(&self, addr: &str) -> bool {
        self.inner.conns.lock().get(addr).is_some_and(|entries| {
            entries
                .iter()
                .all(|e| matches!(e, Entry::Ready(c) if c.is_usable()))
        })
    }

    /// A live connection to `addr`, connecting (once, for all concurrent callers of a slot) if needed, by
    /// `deadline` at the latest: the connect timeout is cut to the caller's time left.
    fn connection(&self, addr: &str, deadline: Instant) -> Result<Arc<ConnInner>, RemotingError> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(RemotingError::Shutdown);
        }
        let n = self.inner.config.connections_per_addr.max(1);
        let slot = self.next_slot();
        let (w, failures) = {
            let mut conns = self.inner.conns.lock();
            if !conns.contains_key(addr) {
                conns.insert(addr.to_owned(), (0..n).map(|_| Entry::Empty).collect());
            }
            let entries = conns.get_mut(addr).ok_or(RemotingError::Shutdown)?;
            let failures = match &entries[slot] {
                Entry::Ready(c) if c.is_usable() => return Ok(c.clone()),
                Entry::Ready(c) if !c.is_dead() => {
                    // Going away: its pending requests end on it; new ones get a new connection
                    // (as Java's NettyRemotingClient re-dials the same address on GO_AWAY).
                    self.inner.retiring.lock().push(c.clone());
                    0
                }
                Entry::Connecting(w) => {
                    let w = w.clone();
                    drop(conns);
                    return wait_connect(&w, addr, deadline);
                }
                Entry::Failed {
                    retry_at, reason, ..
                } if *retry_at > Instant::now() => {
                    return Err(RemotingError::Backoff {
                        addr: addr.to_owned(),
                        retry_in: retry_at.saturating_duration_since(Instant::now()),
                        reason: reason.clone(),
                    });
                }
                Entry::Failed { failures, .. } => *failures,
                _ => 0,
            };
            let w = Arc::new(Connecting {
                done: Mutex::new(None),
                cond: Condvar::new(),
            });
            entries[slot] = Entry::Connecting(w.clone());
            (w, failures)
        };
        let cfg = &self.inner.config;
        let left = deadline.saturating_duration_since(Instant::now());
        // Cut short by the caller's deadline, a timed-out connect says nothing about the address.
        let cut_short = left < cfg.connect_timeout;
        let result = ConnInner::connect(
            addr,
            &self.inner.dialer,
            (
                cfg.connect_timeout.min(left.max(Duration::from_millis(1))),
                cfg.write_timeout,
            ),
            cfg.max_frame,
            self.inner.in_flight.clone(),
            self.inner.handlers.clone(),
        );
        {
            let mut conns = self.inner.conns.lock();
            let entry = match &result {
                Ok(c) => Entry::Ready(c.clone()),
                Err(_) if cut_short && Instant::now() >= deadline => Entry::Empty,
                Err(e) => {
                    let wait = cfg
                        .reconnect_backoff
                        .saturating_mul(1u32 << failures.min(16))
                        .min(cfg.reconnect_backoff_max);
                    debug!(addr, error = %e, retry_in = ?wait, "connect failed");
                    Entry::Failed {
                        retry_at: Instant::now() + wait,
                        failures: failures + 1,
                        reason: e.to_string(),
                    }
                }
            };
            // The slot may be gone if the connection was closed meanwhile; then nobody else waits on it.
            if let Some(entries) = conns.get_mut(addr) {
                entries[slot] = entry;
            }
        }
        *w.done.lock() = Some(result.clone());
        w.cond.notify_all();
        // A shutdown that ran while we were connecting would have missed this connection.
        if self.inner.closed.load(Ordering::Acquire)
            && let Ok(c) = &result
        {
            c.fail_all("client shut down", |_| RemotingError::Shutdown);
            return Err(RemotingError::Shutdown);
        }
        result
    }

    /// Every ready connection with its address.
    fn ready(&self) -> Vec<(String, Arc<ConnInner>)> {
        ready_connections(&self.inner)
    }

    /// Number of live connections.
    pub fn connection_count(&self) -> usize {
        self.ready().iter().filter(|(_, c)| !c.is_dead()).count()
    }

    /// Closes the connections to `addr`, failing their pending requests.
    pub fn close_connection(&self, addr: &str) {
        let entries = self.inner.conns.lock().remove(addr).unwrap_or_default();
        for e in entries {
            if let Entry::Ready(c) = e {
                c.poison("closed by the client");
                c.join();
            }
        }
    }

    /// Requests and bytes in flight across the client.
    pub fn in_flight(&self) -> (usize, usize) {
        self.inner.in_flight.current()
    }

    /// Stops the client: fails every pending request with [`RemotingError::Shutdown`], closes the
    /// connections, joins the reader and timer threads. Idempotent; never waits on the network.
    pub fn shutdown(&self) {
        self.inner.close("client shut down");
    }
}

impl ClientInner {
    /// Stops the timer, fails every pending request with [`RemotingError::Shutdown`] (callbacks run),
    /// closes the connections and joins their threads, never the current one. Once.
    fn close(&self, reason: &str) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        {
            let (lock, cond) = &self.timer_stop;
            *lock.lock() = true;
            cond.notify_all();
        }
        // A callback completed by the timer may shut the client down: never join the current thread.
        if let Some(h) = self.timer.lock().take()
            && h.thread().id() != std::thread::current().id()
        {
            let _ = h.join();
        }
        let mut conns: Vec<Arc<ConnInner>> = ready_connections(self)
            .into_iter()
            .map(|(_, c)| c)
            .collect();
        self.conns.lock().clear();
        conns.append(&mut self.retiring.lock());
        for c in &conns {
            c.fail_all(reason, |_| RemotingError::Shutdown);
        }
        for c in conns {
            c.join();
        }
    }
}

/// The last handle dropped without [`RemotingClient::shutdown`]: pending requests still end, each with
/// [`RemotingError::Shutdown`] (their callbacks run, their futures complete), and the threads stop.
impl Drop for ClientInner {
    fn drop(&mut self) {
        self.close("client dropped");
    }
}

/// How one request is launched.
struct Launch {
    /// When the call began plus `timeout`.
    deadline: Instant,
    timeout: Duration,
    /// The caller does not wait for the answer (a future or a callback): its frame may wait for a
    /// write in progress or for the reader thread to write it with others (`ConnInner::send`).
    pipelined: bool,
}

/// Waits for another caller's connect, until `deadline`.
fn wait_connect(
    w: &Connecting,
    addr: &str,
    deadline: Instant,
) -> Result<Arc<ConnInner>, RemotingError> {
    let mut done = w.done.lock();
    while done.is_none() {
        if w.cond.wait_until(&mut done, deadline).timed_out() && done.is_none() {
            return Err(RemotingError::Connect {
                addr: addr.to_owned(),
                reason: "the call's deadline passed while another caller was connecting".into(),
            });
        }
    }
    done.clone().unwrap_or(Err(RemotingError::Shutdown))
}

fn timer_loop(client: Weak<ClientInner>) {
    loop {
        let Some(c) = client.upgrade() else { return };
        {
            let (lock, cond) = &c.timer_stop;
            let mut stop = lock.lock();
            if *stop {
                return;
            }
            cond.wait_for(&mut stop, c.config.timer_tick);
            if *stop {
                return;
            }
        }
        let now = Instant::now();
        retire(&c, now);
        for (addr, conn) in ready_connections(&c) {
            conn.sweep(now);
            conn.flush_stale();
            if !conn.is_dead()
                && conn.pending_len() == 0
                && conn.idle_for(now) >= c.config.idle_timeout
            {
                debug!(addr = %addr, "closing idle connection");
                if let Some(entries) = c.conns.lock().get_mut(&addr) {
                    for e in entries.iter_mut() {
                        if matches!(e, Entry::Ready(x) if Arc::ptr_eq(x, &conn)) {
                            *e = Entry::Empty;
                        }
                    }
                }
                conn.poison("idle");
                conn.join();
            } else if conn.is_dead() {
                conn.join();
            }
        }
    }
}

/// Sweeps the connections that went away and closes those with nothing pending. Their threads are not
/// joined here: a reader may still be in the callback of the last answer, and that callback may shut the
/// client down, which joins this timer thread. They end on their own once the socket is closed.
fn retire(c: &ClientInner, now: Instant) {
    let list: Vec<Arc<ConnInner>> = {
        let mut retiring = c.retiring.lock();
        if retiring.is_empty() {
            return;
        }
        std::mem::take(&mut *retiring)
    };
    let mut keep = Vec::new();
    for conn in list {
        // A callback run here may shut the client down (`close` then finds these taken out).
        conn.sweep(now);
        conn.flush_stale();
        if conn.is_dead() || conn.pending_len() == 0 {
            conn.poison("the server said GO_AWAY");
        } else {
            keep.push(conn);
        }
    }
    c.retiring.lock().append(&mut keep);
    // `close` sets `closed` before it takes `retiring`: if it ran meanwhile, it may have missed those put
    // back; failing them again is harmless.
    if c.closed.load(Ordering::Acquire) {
        for conn in std::mem::take(&mut *c.retiring.lock()) {
            conn.fail_all("client shut down", |_| RemotingError::Shutdown);
        }
    }
}

fn ready_connections(c: &ClientInner) -> Vec<(String, Arc<ConnInner>)> {
    c.conns
        .lock()
        .iter()
        .flat_map(|(a, entries)| {
            entries.iter().filter_map(move |e| match e {
                Entry::Ready(conn) => Some((a.clone(), conn.clone())),
                _ => None,
            })
        })
        .collect()
}
