//! The combining writer of one connection: frames appended to one buffer and written by whoever finds no
//! write in progress (concurrent callers share syscalls), pipelined frames left to the reader thread
//! between two reads, a writer thread for what a full socket did not take, and the timer's flush of
//! frames nobody wrote. It knows nothing of pending requests: a failed write is reported through
//! [`WriteOwner`], which the connection implements (so this module does not depend on that one).
//!
//! Lock order: `state` alone.

use std::io::IoSlice;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use parking_lot::{Condvar, Mutex, MutexGuard};
use rmq_protocol::RemotingCommand;

use crate::error::{RemotingError, lost};
use crate::transport::Transport;

/// What a [`Writer`] needs from the connection it writes for.
pub(crate) trait WriteOwner: Send + Sync + 'static {
    /// The connection's writer.
    fn writer(&self) -> &Writer;
    /// Whether the connection is dead (a writer thread then ends).
    fn is_dead(&self) -> bool;
    /// A write failed (or a writer thread could not start): the connection must fail, with `reason`.
    fn write_failed(&self, reason: &str);
}

/// Bodies at least this long are written from their own buffer (a vectored write) instead of being copied
/// into the shared one; shorter ones are cheaper to copy than to give a slice of their own.
const COPY_BODY_BELOW: usize = 4096;

thread_local! {
    /// Where a writer encodes its frame's header before taking the write lock.
    static HEADER_SCRATCH: std::cell::RefCell<BytesMut> =
        std::cell::RefCell::new(BytesMut::with_capacity(1024));
}

/// What waits to be written: `buf` (headers and short bodies) with long bodies in between, each after the
/// first `at` bytes of `buf`.
#[derive(Default)]
struct Pending {
    buf: BytesMut,
    bodies: Vec<(usize, Bytes)>,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.buf.is_empty() && self.bodies.is_empty()
    }

    fn clear(&mut self) {
        self.buf.clear();
        self.bodies.clear();
    }

    /// Moves `later`'s frames after this one's.
    fn append(&mut self, later: Pending) {
        let base = self.buf.len();
        self.buf.extend_from_slice(&later.buf);
        self.bodies
            .extend(later.bodies.into_iter().map(|(at, b)| (base + at, b)));
    }

    /// The pieces to write, in order: `buf` with long bodies in between.
    fn slices(&self) -> Vec<IoSlice<'_>> {
        let mut slices = Vec::with_capacity(2 * self.bodies.len() + 1);
        let mut from = 0;
        for (at, body) in &self.bodies {
            if *at > from {
                slices.push(IoSlice::new(&self.buf[from..*at]));
            }
            slices.push(IoSlice::new(body));
            from = *at;
        }
        if from < self.buf.len() {
            slices.push(IoSlice::new(&self.buf[from..]));
        }
        slices
    }

    /// Writes everything to `stream`, long bodies straight from their buffers.
    fn write_to(&self, stream: &Transport) -> std::io::Result<()> {
        if self.bodies.is_empty() {
            return stream.write_all_vectored(&mut [IoSlice::new(&self.buf)]);
        }
        stream.write_all_vectored(&mut self.slices())
    }

    /// Writes what `stream` takes without waiting; `Some`: what it did not take (copied; a full socket
    /// is rare).
    fn try_write_to(&self, stream: &Transport) -> std::io::Result<Option<Pending>> {
        let mut slices = self.slices();
        let total: usize = slices.iter().map(|s| s.len()).sum();
        let mut skip = stream.try_write_vectored(&mut slices)?;
        if skip >= total {
            return Ok(None);
        }
        let mut rest = Pending::default();
        for s in self.slices() {
            if skip >= s.len() {
                skip -= s.len();
            } else {
                rest.buf.extend_from_slice(&s[skip..]);
                skip = 0;
            }
        }
        Ok(Some(rest))
    }
}

#[derive(Default)]
struct WriteState {
    pending: Pending,
    flushing: bool,
    /// The reader thread is between two reads: it writes what is pending before it reads again
    /// ([`Writer::reader_flush`]).
    reader_awake: bool,
    /// The timer found frames pending and no write in progress at its last tick; cleared by every
    /// write ([`Writer::flush_stale`]).
    stale: bool,
    /// The writer thread was asked to write what is pending.
    wake: bool,
    /// The writer thread, while one runs.
    writer: Option<JoinHandle<()>>,
}

/// A pipelined frame is left to the reader thread when more than this many other requests of its
/// connection await answers and answers are flowing ([`Writer::write_pipelined`]).
const DEFER_BEHIND: usize = 4;

/// Answers are flowing when the reader last read less than this long ago. In a steady stream, more
/// than [`DEFER_BEHIND`] answers awaited means answers come more often than every quarter of their
/// latency (Little's law), so a frame left to the reader waits less than a quarter of its own round
/// trip; this gate keeps a frame from waiting for answers that stopped or only come in rare bursts.
/// 1 ms let a third of the frames of 1,000 async sends in flight go out one by one (their reads come
/// in batches up to a few milliseconds apart); 5 ms batches nearly all of them.
const ANSWERS_FLOWING: Duration = Duration::from_millis(5);

/// A writer thread with nothing to write for this long ends.
const WRITER_IDLE: Duration = Duration::from_secs(1);

thread_local! {
    /// Set on connections' reader threads, which must never block on a socket.
    static ON_READER: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Marks the calling thread as a connection's reader thread (for its whole life).
pub(crate) fn mark_reader_thread() {
    ON_READER.with(|r| r.set(true));
}

/// The write side of one connection.
pub(crate) struct Writer {
    addr: String,
    stream: Transport,
    state: Mutex<WriteState>,
    /// Wakes the writer thread.
    cv: Condvar,
    /// The reader thread writes what pipelining callers left (plain TCP; not over TLS).
    reader_flushes: bool,
    created: Instant,
    /// When the reader last read, in microseconds since `created` ([`Writer::answers_flowing`]).
    last_read_us: AtomicU64,
}

impl Writer {
    /// The writer of the connection to `addr` over `stream`.
    pub(crate) fn new(addr: &str, stream: Transport) -> Writer {
        Writer {
            addr: addr.to_owned(),
            reader_flushes: !stream.is_tls(),
            stream,
            state: Mutex::new(WriteState::default()),
            cv: Condvar::new(),
            created: Instant::now(),
            last_read_us: AtomicU64::new(0),
        }
    }

    /// Closes the socket (the reader thread wakes) and wakes the writer thread so it sees the connection
    /// dead. Called once the owner reports itself dead.
    pub(crate) fn close(&self) {
        self.stream.shutdown();
        // Under the state lock, so a writer thread between its liveness check and its wait sees it.
        let _st = self.state.lock();
        self.cv.notify_all();
    }

    /// The writer thread's handle, for joining it (once).
    pub(crate) fn take_thread(&self) -> Option<JoinHandle<()>> {
        self.state.lock().writer.take()
    }

    /// Appends the frame to the shared buffer; the first writer to find no flush in progress writes
    /// everything buffered (its own frame and those appended meanwhile), so concurrent callers share
    /// syscalls instead of queueing on the socket. The header is encoded before the lock is taken; a long
    /// body is not copied at all but written from its own buffer.
    pub(crate) fn write_frame<O: WriteOwner + ?Sized>(
        &self,
        cmd: &RemotingCommand,
        owner: &O,
    ) -> Result<(), RemotingError> {
        let mut st = self.append(cmd)?;
        if st.flushing {
            return Ok(());
        }
        st.flushing = true;
        self.flush_here(st, owner)
    }

    /// Appends the frame of a pipelined request (one whose caller does not wait for it; `awaited`
    /// requests of the connection, its own included, await answers) and leaves its write to the write
    /// in progress, or to the reader thread, which writes what is pending before it next waits for the
    /// socket ([`Writer::reader_flush`]): when the reader is awake, or when more than
    /// [`DEFER_BEHIND`] other answers are awaited and the reader read less than [`ANSWERS_FLOWING`]
    /// ago, so the next answer that wakes it is due soon. A pipelining caller then
    /// pays a buffer append instead of a syscall, and frames leave in batches, as from a raw sender.
    /// Otherwise (answers slow or rare: a frame must not wait for them) the caller writes, as
    /// [`Writer::write_frame`] does. Over TLS the caller always writes (that reader never writes).
    /// Should no answer come after all, the timer writes what is left ([`Writer::flush_stale`]).
    pub(crate) fn write_pipelined<O: WriteOwner + ?Sized>(
        &self,
        cmd: &RemotingCommand,
        awaited: usize,
        owner: &O,
    ) -> Result<(), RemotingError> {
        let mut st = self.append(cmd)?;
        if st.flushing
            || (self.reader_flushes
                && (st.reader_awake || (awaited > DEFER_BEHIND && self.answers_flowing())))
        {
            return Ok(());
        }
        st.flushing = true;
        self.flush_here(st, owner)
    }

    /// Writes what is pending from the calling thread, which set `flushing`. A reader thread (this
    /// connection's or another's: a callback or a send carried on there) never blocks on a socket:
    /// what it does not take at once stays pending for the next writer, or the timer's
    /// [`Writer::flush_stale`], which hands it to this connection's writer thread. Plain TCP only:
    /// over TLS a reader that sends writes as any caller does.
    fn flush_here<'a, O: WriteOwner + ?Sized>(
        &'a self,
        st: MutexGuard<'a, WriteState>,
        owner: &O,
    ) -> Result<(), RemotingError> {
        if self.reader_flushes && ON_READER.with(std::cell::Cell::get) {
            return self
                .drain(st, |out| out.try_write_to(&self.stream), owner)
                .map(drop);
        }
        self.flush(st, owner)
    }

    /// Whether the reader read less than [`ANSWERS_FLOWING`] ago.
    fn answers_flowing(&self) -> bool {
        // 0: nothing read yet (the reader starts after `created`).
        let last = self.last_read_us.load(Ordering::Relaxed);
        last != 0
            && (self.created.elapsed().as_micros() as u64).saturating_sub(last)
                < ANSWERS_FLOWING.as_micros() as u64
    }

    /// The reader thread, after a read: it flushes before it reads again.
    pub(crate) fn on_read(&self) {
        let at = (self.created.elapsed().as_micros() as u64).max(1);
        self.last_read_us.store(at, Ordering::Relaxed);
        self.state.lock().reader_awake = true;
    }

    /// The reader thread, before it reads again: from now on callers write their frames themselves; what
    /// they left pending is written now, without blocking (a reader blocked on a full socket could not
    /// read the answers a server may be waiting to send before it reads again). What the socket does not
    /// take at once goes to the connection's writer thread. Plain TCP only.
    pub(crate) fn reader_flush<O: WriteOwner>(&self, owner: &Arc<O>) {
        let mut st = self.state.lock();
        st.reader_awake = false;
        if st.flushing || st.pending.is_empty() {
            return;
        }
        st.flushing = true;
        if let Ok(Some(st)) = self.drain(st, |out| out.try_write_to(&self.stream), &**owner) {
            // The socket is full: the writer thread writes the rest.
            self.wake_writer(st, owner);
        }
    }

    /// The timer, each tick: frames pending through two ticks with no write in between were left for a
    /// reader that no answer woke (every awaited request timed out, or a race with its last flush): they
    /// go to the writer thread.
    pub(crate) fn flush_stale<O: WriteOwner>(&self, owner: &Arc<O>) {
        let mut st = self.state.lock();
        if st.flushing || st.pending.is_empty() || owner.is_dead() {
            st.stale = false;
        } else if st.stale {
            st.stale = false;
            self.wake_writer(st, owner);
        } else {
            st.stale = true;
        }
    }

    /// Asks the connection's writer thread (started on first use) to write what is pending; it may
    /// block where the reader thread must not.
    fn wake_writer<O: WriteOwner>(&self, mut st: MutexGuard<'_, WriteState>, owner: &Arc<O>) {
        if st.wake {
            return;
        }
        st.wake = true;
        if st.writer.is_some() {
            self.cv.notify_one();
            return;
        }
        let weak = Arc::downgrade(owner);
        match std::thread::Builder::new()
            .name(format!("rmq-writer-{}", self.addr))
            .spawn(move || writer_loop(weak))
        {
            Ok(handle) => st.writer = Some(handle),
            Err(e) => {
                st.wake = false;
                drop(st);
                owner.write_failed(&format!("cannot start a writer thread: {e}"));
            }
        }
    }

    /// Encodes `cmd`'s header outside the lock, then appends the frame; returns the write state, locked.
    fn append(&self, cmd: &RemotingCommand) -> Result<MutexGuard<'_, WriteState>, RemotingError> {
        HEADER_SCRATCH.with(|scratch| {
            let mut header = scratch.borrow_mut();
            header.clear();
            cmd.encode_header(&mut header)?;
            let mut st = self.state.lock();
            st.pending.buf.extend_from_slice(&header);
            if cmd.body.len() >= COPY_BODY_BELOW {
                let at = st.pending.buf.len();
                st.pending.bodies.push((at, cmd.body.clone()));
            } else {
                st.pending.buf.extend_from_slice(&cmd.body);
            }
            Ok(st)
        })
    }

    /// Writes until nothing is pending; the caller has set `flushing` under the lock it hands over.
    /// A failed write poisons the connection.
    fn flush<'a, O: WriteOwner + ?Sized>(
        &'a self,
        st: MutexGuard<'a, WriteState>,
        owner: &O,
    ) -> Result<(), RemotingError> {
        self.drain(st, |out| out.write_to(&self.stream).map(|()| None), owner)
            .map(|_| ())
    }

    /// Writes what is pending with `write` until nothing is (`Ok(None)`), each round outside the lock
    /// (frames appended meanwhile go in the next round); the caller has set `flushing` under the lock it
    /// hands over. When `write` leaves a rest (a full socket), the rest goes back in front of what was
    /// appended meanwhile, `flushing` is cleared and the lock is handed back (`Ok(Some)`). A failed write
    /// poisons the connection.
    fn drain<'a, O: WriteOwner + ?Sized>(
        &'a self,
        mut st: MutexGuard<'a, WriteState>,
        write: impl Fn(&Pending) -> std::io::Result<Option<Pending>>,
        owner: &O,
    ) -> Result<Option<MutexGuard<'a, WriteState>>, RemotingError> {
        let mut out = Pending::default();
        loop {
            std::mem::swap(&mut out, &mut st.pending);
            st.stale = false;
            drop(st);
            let r = write(&out);
            out.clear();
            st = self.state.lock();
            match r {
                Err(e) => {
                    st.flushing = false;
                    st.pending.clear();
                    drop(st);
                    let reason = if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) {
                        "write made no progress within the write timeout: the server does not read"
                            .to_owned()
                    } else {
                        format!("write failed: {e}")
                    };
                    owner.write_failed(&reason);
                    return Err(lost(&self.addr, reason));
                }
                Ok(Some(rest)) => {
                    let appended = std::mem::replace(&mut st.pending, rest);
                    st.pending.append(appended);
                    st.flushing = false;
                    return Ok(Some(st));
                }
                Ok(None) if st.pending.is_empty() => {
                    st.flushing = false;
                    // Keep the larger allocation for the next round.
                    if out.buf.capacity() > st.pending.buf.capacity() {
                        std::mem::swap(&mut out, &mut st.pending);
                    }
                    return Ok(None);
                }
                Ok(None) => {}
            }
        }
    }
}

/// A connection's writer thread ([`Writer::wake_writer`]): writes what is pending each time it is
/// woken. Ends when the connection dies or is dropped, or after [`WRITER_IDLE`] without work (the next
/// deferred write starts a new one).
fn writer_loop<O: WriteOwner>(conn: Weak<O>) {
    loop {
        let Some(c) = conn.upgrade() else { return };
        let w = c.writer();
        let mut st = w.state.lock();
        loop {
            // Checked under the write lock, which `Writer::close` takes to notify: no wake-up is missed.
            if c.is_dead() {
                st.writer = None;
                return;
            }
            if st.wake {
                break;
            }
            let idle = w.cv.wait_for(&mut st, WRITER_IDLE).timed_out();
            if idle && !st.wake {
                // Detach: the handle is dropped here, not joined (`join` skips the current thread).
                st.writer = None;
                return;
            }
        }
        st.wake = false;
        if st.flushing || st.pending.is_empty() {
            continue;
        }
        st.flushing = true;
        // A failure poisons the connection; the next round sees it dead and ends.
        let _ = w.flush(st, &*c);
    }
}
