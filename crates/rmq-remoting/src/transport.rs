//! The bytes under a connection: a TCP stream, or (feature `tls`) TLS over one. The writer side writes
//! whole buffers; the reader side is a [`Read`] for the reader thread. A plain stream is written and read
//! directly, so plaintext pays one `match` for TLS.
//!
//! With TLS, the session state is shared by the writer (encrypts, then writes to the socket) and the
//! reader thread (reads the socket without holding the session, then decrypts). The reader never writes:
//! what a received record asks to send (a key update) goes out with the next write.

use std::io::{IoSlice, Read, Write};
use std::net::{Shutdown, TcpStream};
#[cfg(feature = "tls")]
use std::sync::Arc;
use std::time::Instant;

#[cfg(feature = "tls")]
use parking_lot::Mutex;

/// Makes connections: TCP connect, then the TLS handshake when TLS is configured.
#[derive(Debug, Default)]
pub(crate) struct Dialer {
    #[cfg(feature = "tls")]
    tls: Option<crate::tls::Tls>,
}

impl Dialer {
    /// A dialer for `tls` (none: plain TCP). An error when TLS is asked for but not built in, or its
    /// files cannot be used.
    pub(crate) fn new(tls: Option<&crate::tls::TlsConfig>) -> Result<Dialer, String> {
        match tls {
            None => Ok(Dialer::default()),
            #[cfg(feature = "tls")]
            Some(c) => Ok(Dialer {
                tls: Some(crate::tls::Tls::new(c)?),
            }),
            #[cfg(not(feature = "tls"))]
            Some(_) => {
                Err("TLS is configured but rmq-remoting was built without its `tls` feature".into())
            }
        }
    }

    /// Connects to `sock` (named `addr`) by `deadline`, handshake included.
    pub(crate) fn dial(
        &self,
        addr: &str,
        sock: std::net::SocketAddr,
        deadline: Instant,
    ) -> Result<(Transport, ReadHalf), String> {
        let left = deadline.saturating_duration_since(Instant::now());
        let stream =
            TcpStream::connect_timeout(&sock, left.max(std::time::Duration::from_millis(1)))
                .map_err(|e| e.to_string())?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        #[cfg(feature = "tls")]
        if let Some(tls) = &self.tls {
            let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
            let host = host.trim_start_matches('[').trim_end_matches(']');
            return Transport::tls(stream, tls.session(host)?, deadline);
        }
        let _ = addr;
        Transport::plain(stream).map_err(|e| e.to_string())
    }
}

/// The write side of a connection.
pub(crate) enum Transport {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP.
    #[cfg(feature = "tls")]
    Tls(Arc<TlsShared>),
}

/// The read side of a connection, owned by its reader thread.
pub(crate) enum ReadHalf {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP.
    #[cfg(feature = "tls")]
    Tls(TlsReader),
}

/// A TLS session and its socket.
#[cfg(feature = "tls")]
pub(crate) struct TlsShared {
    session: Mutex<rustls::ClientConnection>,
    sock: TcpStream,
}

/// Decrypts what the socket delivers.
#[cfg(feature = "tls")]
pub(crate) struct TlsReader {
    shared: Arc<TlsShared>,
    raw: Vec<u8>,
    start: usize,
    end: usize,
}

impl Transport {
    /// A plain transport over `stream` and its read half.
    pub(crate) fn plain(stream: TcpStream) -> std::io::Result<(Transport, ReadHalf)> {
        let read = stream.try_clone()?;
        Ok((Transport::Plain(stream), ReadHalf::Plain(read)))
    }

    /// Completes a TLS handshake of `session` over `stream` by `deadline`, then splits it.
    #[cfg(feature = "tls")]
    pub(crate) fn tls(
        mut stream: TcpStream,
        mut session: rustls::ClientConnection,
        deadline: Instant,
    ) -> Result<(Transport, ReadHalf), String> {
        while session.is_handshaking() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err("the TLS handshake did not finish within the connect timeout".into());
            }
            let set = stream
                .set_read_timeout(Some(left))
                .and_then(|()| stream.set_write_timeout(Some(left)));
            set.map_err(|e| e.to_string())?;
            match session.complete_io(&mut stream) {
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err(
                        "the TLS handshake did not finish within the connect timeout".into(),
                    );
                }
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    return Err("the server closed the connection during the TLS handshake (does it accept TLS?)".into());
                }
                Err(e) => return Err(format!("TLS handshake failed: {e}")),
            }
        }
        let clear = stream
            .set_read_timeout(None)
            .and_then(|()| stream.set_write_timeout(None));
        clear.map_err(|e| e.to_string())?;
        let sock = stream.try_clone().map_err(|e| e.to_string())?;
        let shared = Arc::new(TlsShared {
            session: Mutex::new(session),
            sock,
        });
        Ok((
            Transport::Tls(shared.clone()),
            ReadHalf::Tls(TlsReader {
                shared,
                raw: vec![0; 32 * 1024],
                start: 0,
                end: 0,
            }),
        ))
    }

    /// Writes all of `slices`, in order.
    pub(crate) fn write_all_vectored(&self, slices: &mut [IoSlice<'_>]) -> std::io::Result<()> {
        match self {
            Transport::Plain(stream) => {
                let mut stream = stream;
                let mut left = slices;
                while !left.is_empty() {
                    match stream.write_vectored(left) {
                        Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
                        Ok(n) => IoSlice::advance_slices(&mut left, n),
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
                Ok(())
            }
            #[cfg(feature = "tls")]
            Transport::Tls(t) => {
                for s in slices.iter() {
                    t.write_all(s)?;
                }
                Ok(())
            }
        }
    }

    /// Writes as much of `slices` as the socket takes without waiting; returns the bytes written. For
    /// the reader thread, which must never block on a write. The socket is non-blocking only during
    /// the call: its caller must be the one thread using it meanwhile (the reader, holding the write
    /// turn). Over TLS (whose reader never writes) it writes everything, as `write_all_vectored`.
    pub(crate) fn try_write_vectored(&self, slices: &mut [IoSlice<'_>]) -> std::io::Result<usize> {
        match self {
            Transport::Plain(stream) => {
                stream.set_nonblocking(true)?;
                let mut stream_ref = stream;
                let mut written = 0;
                let mut left = slices;
                let r = loop {
                    if left.is_empty() {
                        break Ok(written);
                    }
                    match stream_ref.write_vectored(left) {
                        Ok(0) => break Err(std::io::ErrorKind::WriteZero.into()),
                        Ok(n) => {
                            written += n;
                            IoSlice::advance_slices(&mut left, n);
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break Ok(written),
                        Err(e) => break Err(e),
                    }
                };
                stream.set_nonblocking(false)?;
                r
            }
            #[cfg(feature = "tls")]
            Transport::Tls(_) => {
                let total = slices.iter().map(|s| s.len()).sum();
                self.write_all_vectored(slices)?;
                Ok(total)
            }
        }
    }

    /// Closes both directions (wakes the reader thread).
    #[allow(clippy::infallible_destructuring_match)] // two variants with the `tls` feature
    pub(crate) fn shutdown(&self) {
        let sock = match self {
            Transport::Plain(s) => s,
            #[cfg(feature = "tls")]
            Transport::Tls(t) => &t.sock,
        };
        let _ = sock.shutdown(Shutdown::Both);
    }

    /// Makes a blocking write that makes no progress for `limit` fail (SO_SNDTIMEO on the socket), so a
    /// server that stops reading cannot hold a writer forever.
    pub(crate) fn set_write_timeout(&self, limit: std::time::Duration) -> std::io::Result<()> {
        match self {
            Transport::Plain(s) => s.set_write_timeout(Some(limit)),
            #[cfg(feature = "tls")]
            Transport::Tls(t) => t.sock.set_write_timeout(Some(limit)),
        }
    }

    /// Whether this is a TLS connection.
    pub(crate) fn is_tls(&self) -> bool {
        !matches!(self, Transport::Plain(_))
    }
}

#[cfg(feature = "tls")]
impl TlsShared {
    /// Encrypts `data` and writes the records. The session is locked only to encrypt; the records are
    /// written to the socket after it is released, so the reader thread is never kept from the session
    /// by a slow socket. Writers are serialized by the connection's combining writer.
    fn write_all(&self, mut data: &[u8]) -> std::io::Result<()> {
        let mut records = Vec::new();
        while !data.is_empty() || !records.is_empty() {
            {
                let mut s = self.session.lock();
                if !data.is_empty() {
                    let n = s.writer().write(data)?;
                    data = &data[n..];
                }
                while s.wants_write() {
                    s.write_tls(&mut records)?;
                }
            }
            (&self.sock).write_all(&records)?;
            records.clear();
        }
        Ok(())
    }
}

impl Read for ReadHalf {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        match self {
            ReadHalf::Plain(s) => s.read(out),
            #[cfg(feature = "tls")]
            ReadHalf::Tls(t) => t.read(out),
        }
    }
}

#[cfg(feature = "tls")]
impl Read for TlsReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        loop {
            {
                let mut s = self.shared.session.lock();
                match s.reader().read(out) {
                    // Ok(0): the server sent close_notify.
                    Ok(n) => return Ok(n),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
                if self.start < self.end {
                    let mut rd = &self.raw[self.start..self.end];
                    let n = s.read_tls(&mut rd)?;
                    self.start += n;
                    s.process_new_packets()
                        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
                    continue;
                }
            }
            let n = (&self.shared.sock).read(&mut self.raw)?;
            if n == 0 {
                return Ok(0);
            }
            (self.start, self.end) = (0, n);
        }
    }
}
