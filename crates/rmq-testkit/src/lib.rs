//! An in-process, scriptable mock RocketMQ server (broker or name server) on `127.0.0.1:0`, for fault
//! injection in tests. Real-server behaviour is tested against real servers (`scripts/cluster`); this
//! mock exists to produce what real servers rarely do on demand: delays, answers out of order, silence,
//! error codes, garbage, connections closed mid-frame.
//!
//! ```
//! use rmq_testkit::{Action, MockServer};
//! use rmq_protocol::{RemotingCommand, ResponseCode};
//!
//! let server = MockServer::start(|req: &RemotingCommand| {
//!     vec![Action::Respond(RemotingCommand::response(ResponseCode::SUCCESS, None))]
//! }).unwrap();
//! assert!(server.addr().starts_with("127.0.0.1:"));
//! ```

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::BytesMut;
use parking_lot::{Mutex, RwLock};
use rmq_protocol::header::{CommandHeader, SendMessageResponseHeader};
use rmq_protocol::{FrameDecoder, RemotingCommand, ResponseCode, TopicRouteData};

/// What the mock does with one request. Responses get the request's opaque and the response flag.
#[derive(Clone, Debug)]
pub enum Action {
    /// Answer now.
    Respond(RemotingCommand),
    /// Answer after a delay (later requests may be answered first: out of order).
    RespondAfter(Duration, RemotingCommand),
    /// Never answer.
    Never,
    /// Write these bytes as they are.
    Raw(Vec<u8>),
    /// Write the first half of this response's frame, then close the connection.
    CloseMidFrame(RemotingCommand),
    /// Close the connection.
    Close,
}

/// Decides the actions for each request.
pub type Script = dyn Fn(&RemotingCommand) -> Vec<Action> + Send + Sync;

struct Inner {
    script: RwLock<Arc<Script>>,
    received: Mutex<Vec<RemotingCommand>>,
    client_responses: Mutex<Vec<RemotingCommand>>,
    conns: Mutex<Vec<Arc<Mutex<TcpStream>>>>,
    stop: AtomicBool,
}

/// A running mock server. Stops when dropped.
pub struct MockServer {
    addr: SocketAddr,
    inner: Arc<Inner>,
    accept: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for MockServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockServer")
            .field("addr", &self.addr)
            .finish()
    }
}

impl MockServer {
    /// Starts on a free loopback port.
    pub fn start(
        script: impl Fn(&RemotingCommand) -> Vec<Action> + Send + Sync + 'static,
    ) -> std::io::Result<Self> {
        Self::start_on("127.0.0.1:0", script)
    }

    /// Starts on `addr` (a loopback address; use the old address to "restart" a server).
    pub fn start_on(
        addr: &str,
        script: impl Fn(&RemotingCommand) -> Vec<Action> + Send + Sync + 'static,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        assert!(addr.ip().is_loopback(), "the mock only listens on loopback");
        let inner = Arc::new(Inner {
            script: RwLock::new(Arc::new(script)),
            received: Mutex::new(Vec::new()),
            client_responses: Mutex::new(Vec::new()),
            conns: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
        });
        let i2 = inner.clone();
        let accept = std::thread::Builder::new()
            .name("mock-accept".into())
            .spawn(move || {
                for stream in listener.incoming() {
                    if i2.stop.load(Ordering::Acquire) {
                        return;
                    }
                    let Ok(stream) = stream else { continue };
                    let _ = stream.set_nodelay(true);
                    let Ok(read) = stream.try_clone() else {
                        continue;
                    };
                    let write = Arc::new(Mutex::new(stream));
                    i2.conns.lock().push(write.clone());
                    let i3 = i2.clone();
                    let _ = std::thread::Builder::new()
                        .name("mock-conn".into())
                        .spawn(move || serve(i3, read, write));
                }
            })?;
        Ok(MockServer {
            addr,
            inner,
            accept: Some(accept),
        })
    }

    /// `ip:port`.
    pub fn addr(&self) -> String {
        self.addr.to_string()
    }

    /// Replaces the script.
    pub fn set_script(
        &self,
        script: impl Fn(&RemotingCommand) -> Vec<Action> + Send + Sync + 'static,
    ) {
        *self.inner.script.write() = Arc::new(script);
    }

    /// Every request received so far.
    pub fn received(&self) -> Vec<RemotingCommand> {
        self.inner.received.lock().clone()
    }

    /// Requests received with `code`.
    pub fn received_count(&self, code: i32) -> usize {
        self.inner
            .received
            .lock()
            .iter()
            .filter(|c| c.code == code)
            .count()
    }

    /// Responses clients sent to requests pushed with [`MockServer::push_request`].
    pub fn client_responses(&self) -> Vec<RemotingCommand> {
        self.inner.client_responses.lock().clone()
    }

    /// Number of client connections accepted (open or closed).
    pub fn connections_accepted(&self) -> usize {
        self.inner.conns.lock().len()
    }

    /// Sends a server-initiated request on every open connection.
    pub fn push_request(&self, cmd: &RemotingCommand) {
        let frame = cmd.to_bytes().expect("mock request encodes");
        for c in self.inner.conns.lock().iter() {
            let _ = c.lock().write_all(&frame);
        }
    }

    /// Closes every client connection.
    pub fn close_connections(&self) {
        for c in self.inner.conns.lock().iter() {
            let _ = c.lock().shutdown(Shutdown::Both);
        }
    }

    /// Stops accepting and closes every connection; the port is free afterwards.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if self.inner.stop.swap(true, Ordering::AcqRel) {
            return;
        }
        self.close_connections();
        // Wake the accept loop.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn write_response(
    out: &Mutex<TcpStream>,
    req: &RemotingCommand,
    mut resp: RemotingCommand,
) -> std::io::Result<()> {
    resp.opaque = req.opaque;
    resp.mark_response();
    let frame = resp.to_bytes().expect("mock response encodes");
    out.lock().write_all(&frame)
}

fn serve(inner: Arc<Inner>, mut read: TcpStream, write: Arc<Mutex<TcpStream>>) {
    let decoder = FrameDecoder::default();
    let mut buf = BytesMut::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = match read.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        loop {
            let cmd = match decoder.decode(&mut buf) {
                Ok(Some(c)) => c,
                Ok(None) => break,
                Err(_) => {
                    let _ = write.lock().shutdown(Shutdown::Both);
                    return;
                }
            };
            if cmd.is_response() {
                inner.client_responses.lock().push(cmd);
                continue;
            }
            inner.received.lock().push(cmd.clone());
            let script = inner.script.read().clone();
            for action in script(&cmd) {
                match action {
                    Action::Respond(r) => {
                        let _ = write_response(&write, &cmd, r);
                    }
                    Action::RespondAfter(d, r) => {
                        let (w, req) = (write.clone(), cmd.clone());
                        std::thread::spawn(move || {
                            std::thread::sleep(d);
                            let _ = write_response(&w, &req, r);
                        });
                    }
                    Action::Never => {}
                    Action::Raw(bytes) => {
                        let _ = write.lock().write_all(&bytes);
                    }
                    Action::CloseMidFrame(mut r) => {
                        r.opaque = cmd.opaque;
                        r.mark_response();
                        let frame = r.to_bytes().expect("mock response encodes");
                        let mut w = write.lock();
                        let _ = w.write_all(&frame[..frame.len() / 2]);
                        let _ = w.shutdown(Shutdown::Both);
                        return;
                    }
                    Action::Close => {
                        let _ = write.lock().shutdown(Shutdown::Both);
                        return;
                    }
                }
            }
        }
    }
}

/// A SUCCESS response.
pub fn ok() -> RemotingCommand {
    RemotingCommand::response(ResponseCode::SUCCESS, None)
}

/// A response with an error code and remark.
pub fn error(code: ResponseCode, remark: &str) -> RemotingCommand {
    RemotingCommand::response(code, Some(remark.to_owned()))
}

/// A name server's answer carrying `route`.
pub fn route_response(route: &TopicRouteData) -> RemotingCommand {
    ok().with_body(route.encode())
}

/// A broker's SUCCESS answer to a send, storing in `queue_id` at `queue_offset`.
pub fn send_ok(queue_id: i32, queue_offset: i64) -> RemotingCommand {
    let mut r = ok();
    SendMessageResponseHeader {
        msg_id: format!("7F00000100002A9F{queue_offset:016X}").into(),
        queue_id,
        queue_offset,
        region: Some("DefaultRegion".into()),
        trace_on: Some(true),
        ..Default::default()
    }
    .write_fields(&mut r.ext_fields);
    r
}

/// A minimal executor for tests: polls one future on this thread, parking between wake-ups. It proves a
/// future works without any async runtime.
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let mut f = std::pin::pin!(f);
    let waker = std::task::Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = std::task::Context::from_waker(&waker);
    loop {
        if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}
