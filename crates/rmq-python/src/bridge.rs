//! The bridge between rmq's threads and an asyncio event loop. A finished asynchronous send is pushed
//! here by whichever rmq thread completed it (a connection's reader, the producer's pool or timer),
//! **without the GIL**: a GIL taken on a reader thread would stall every connection's answers behind
//! Python. The first outcome of a burst writes one byte to a pipe the loop watches
//! (`loop.add_reader`); the loop's callback (`drain`, with the GIL, on the loop's thread) takes every
//! outcome waiting and turns it into Python objects. No thread per send, one pipe byte per burst.

use std::future::Future;
use std::io::{PipeReader, PipeWriter, Read, Write};
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll, Wake, Waker};

use parking_lot::Mutex;
use pyo3::prelude::*;
use pyo3::types::PyList;
use rmq::producer::{ProducerError, SendResult};
use rmq::protocol::Message;

use crate::errors;
use crate::message::PyMessage;
use crate::result::PySendResult;

/// What an asynchronous call ended with. Held only between completion and the loop's drain, in one
/// `Vec`: a box per send to even out the variants would be an allocation per send on rmq's threads.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Outcome {
    /// A send with an answer.
    Send(Result<SendResult, ProducerError>),
    /// A oneway send: written, or not.
    Oneway(Result<(), ProducerError>),
    /// A batch: one result per batch request.
    Batch(Result<Vec<SendResult>, ProducerError>),
    /// A request's reply.
    Reply(Result<Message, ProducerError>),
}

impl Outcome {
    /// `(ok, value)`: the result, or the exception to set.
    fn into_py(self, py: Python<'_>) -> PyResult<(bool, Py<PyAny>)> {
        let err = |e: ProducerError| -> PyResult<(bool, Py<PyAny>)> {
            Ok((false, errors::to_py(py, &e).into_value(py).into_any()))
        };
        match self {
            Outcome::Send(Ok(r)) => Ok((true, Py::new(py, PySendResult::from(&r))?.into_any())),
            Outcome::Oneway(Ok(())) => Ok((true, py.None())),
            Outcome::Batch(Ok(rs)) => {
                let list = PyList::empty(py);
                for r in &rs {
                    list.append(Py::new(py, PySendResult::from(r))?)?;
                }
                Ok((true, list.into_any().unbind()))
            }
            Outcome::Reply(Ok(m)) => Ok((true, Py::new(py, PyMessage { inner: m })?.into_any())),
            Outcome::Send(Err(e))
            | Outcome::Oneway(Err(e))
            | Outcome::Batch(Err(e))
            | Outcome::Reply(Err(e)) => err(e),
        }
    }
}

struct Shared {
    /// The id of the next call: one numbering per loop, whichever producer the call is on.
    next_id: AtomicU64,
    done: Mutex<Vec<(u64, Outcome)>>,
    /// A byte is in the pipe (or about to be) for outcomes not yet drained.
    armed: AtomicBool,
    writer: Mutex<PipeWriter>,
}

impl Shared {
    fn push(&self, id: u64, outcome: Outcome) {
        self.done.lock().push((id, outcome));
        if !self.armed.swap(true, Ordering::AcqRel) {
            // A full pipe cannot happen (one byte per drain); a failed write means the reader is gone
            // (the loop closed): the outcome stays queued and nobody is waiting for it.
            let _ = self.writer.lock().write_all(&[1]);
        }
    }
}

/// One asynchronous call, polled by the thread that completes it.
struct Task<F: Future> {
    pending: Mutex<Option<F>>,
    id: u64,
    shared: Arc<Shared>,
    wrap: fn(F::Output) -> Outcome,
}

impl<F: Future + Unpin + Send + 'static> Task<F> {
    fn poll(self: &Arc<Self>) {
        let waker = Waker::from(self.clone());
        let mut cx = Context::from_waker(&waker);
        let mut slot = self.pending.lock();
        let Some(p) = slot.as_mut() else { return };
        if let Poll::Ready(r) = Pin::new(p).poll(&mut cx) {
            *slot = None;
            drop(slot);
            self.shared.push(self.id, (self.wrap)(r));
        }
    }
}

impl<F: Future + Unpin + Send + 'static> Wake for Task<F> {
    fn wake(self: Arc<Self>) {
        self.poll();
    }
}

/// The Rust half of an event loop's bridge (`rmq.producer._LoopBridge` holds one per loop).
#[pyclass(module = "rmq._rmq", name = "Bridge", frozen)]
pub(crate) struct Bridge {
    shared: Arc<Shared>,
    reader: Mutex<PipeReader>,
    fd: i32,
}

impl Bridge {
    /// Hands `pending`'s outcome to the loop once it is known, under the id this returns (unique on this
    /// bridge, so several producers can share a loop).
    pub(crate) fn watch<F: Future + Unpin + Send + 'static>(
        &self,
        pending: F,
        wrap: fn(F::Output) -> Outcome,
    ) -> u64 {
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        let task = Arc::new(Task {
            pending: Mutex::new(Some(pending)),
            id,
            shared: self.shared.clone(),
            wrap,
        });
        task.poll();
        id
    }
}

#[pymethods]
impl Bridge {
    #[new]
    fn new() -> PyResult<Self> {
        let (reader, writer) = std::io::pipe()?;
        let fd = reader.as_raw_fd();
        Ok(Bridge {
            shared: Arc::new(Shared {
                next_id: AtomicU64::new(1),
                done: Mutex::new(Vec::new()),
                armed: AtomicBool::new(false),
                writer: Mutex::new(writer),
            }),
            reader: Mutex::new(reader),
            fd,
        })
    }

    /// The file descriptor the loop watches for readability.
    fn fileno(&self) -> i32 {
        self.fd
    }

    /// Called by the loop when the pipe is readable: every finished call as `(id, ok, value)`. No outcome
    /// taken here is lost: one whose Python objects cannot be built ends with that exception instead.
    fn drain<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let mut byte = [0u8; 1];
        // Readable, so this does not block: one byte per armed burst.
        py.detach(|| self.reader.lock().read_exact(&mut byte))?;
        self.shared.armed.store(false, Ordering::Release);
        let done = std::mem::take(&mut *self.shared.done.lock());
        let items: Vec<(u64, bool, Py<PyAny>)> = done
            .into_iter()
            .map(|(id, outcome)| {
                let (ok, value) = outcome
                    .into_py(py)
                    .unwrap_or_else(|e| (false, e.into_value(py).into_any()));
                (id, ok, value)
            })
            .collect();
        PyList::new(py, items)
    }
}
