//! `Producer` and `SendResult`: pyrocketmq's producer on rmq's. Every call that waits releases the GIL
//! and waits in slices, checking for signals between them (Ctrl-C interrupts the wait; the send itself
//! goes on and still ends in the stats).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use parking_lot::Mutex;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use rmq::producer::{Pending, Producer, ProducerConfig, ProducerError};
use rmq::protocol::Message;

use crate::bridge::{Bridge, Outcome};
use crate::config::PyConfig;
use crate::errors;
use crate::message::PyMessage;
use crate::result::PySendResult;
use crate::routing::{PyMessageQueue, broker_health};

/// How long a blocking call waits between checks for signals.
const SIGNAL_CHECK: Duration = Duration::from_millis(50);

/// Wakes the thread waiting in [`wait`].
struct Unpark(std::thread::Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// Waits for `future` (a send's `Pending`, a request's `ReplyFuture`) without the GIL, checking for
/// signals between slices of at most 50 ms: Ctrl-C raises `KeyboardInterrupt` here while the call goes
/// on in rmq and still ends in the stats.
pub(crate) fn wait<T: Send, F>(py: Python<'_>, mut future: F) -> PyResult<T>
where
    F: Future<Output = Result<T, ProducerError>> + Unpin + Send,
{
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    loop {
        let polled = py.detach(|| {
            let mut cx = Context::from_waker(&waker);
            match Pin::new(&mut future).poll(&mut cx) {
                Poll::Ready(r) => Some(r),
                Poll::Pending => {
                    std::thread::park_timeout(SIGNAL_CHECK);
                    match Pin::new(&mut future).poll(&mut cx) {
                        Poll::Ready(r) => Some(r),
                        Poll::Pending => None,
                    }
                }
            }
        });
        if let Some(r) = polled {
            return r.map_err(|e| errors::to_py(py, &e));
        }
        py.check_signals()?;
    }
}

/// A request's timeout: `timeout` milliseconds, or the producer's `send_msg_timeout`.
fn request_timeout(py: Python<'_>, p: &Producer, timeout: Option<f64>) -> PyResult<Duration> {
    match timeout {
        None => Ok(p.config().send_msg_timeout),
        Some(ms) => Duration::try_from_secs_f64(ms / 1000.0).map_err(|_| {
            errors::to_py(
                py,
                &ProducerError::Config {
                    field: "timeout",
                    reason: format!("{ms} is not a number of milliseconds"),
                },
            )
        }),
    }
}

/// The messages of a batch call.
fn messages(batch: &[PyRef<'_, PyMessage>]) -> Vec<Message> {
    batch.iter().map(|m| m.inner.clone()).collect()
}

/// A producer. `Producer(config=None)`: the default configuration with the `RMQ_*` environment when none
/// is given. `start()` and `shutdown()` may be called any number of times; a producer shut down can be
/// started again (a new Rust producer, fresh stats).
#[pyclass(module = "rmq._rmq", name = "Producer", subclass, frozen)]
pub(crate) struct PyProducer {
    /// Fixed at construction: every start builds its producer from it.
    config: ProducerConfig,
    inner: Mutex<Option<Arc<Producer>>>,
}

impl PyProducer {
    fn producer(&self, py: Python<'_>) -> PyResult<Arc<Producer>> {
        match &*self.inner.lock() {
            Some(p) if p.is_running() => Ok(p.clone()),
            _ => Err(errors::state(
                py,
                "the producer is not running; call start() first",
            )),
        }
    }
}

#[pymethods]
impl PyProducer {
    #[new]
    #[pyo3(signature = (config=None))]
    fn new(py: Python<'_>, config: Option<PyRef<'_, PyConfig>>) -> PyResult<Self> {
        let config = match config {
            Some(c) => c.inner.clone(),
            None => ProducerConfig::from_env().map_err(|e| errors::to_py(py, &e))?,
        };
        Ok(PyProducer {
            config,
            inner: Mutex::new(None),
        })
    }

    /// A copy of the configuration.
    #[getter]
    fn config(&self) -> PyConfig {
        PyConfig {
            inner: self.config.clone(),
        }
    }

    /// Whether the producer is running.
    #[getter]
    fn running(&self) -> bool {
        self.inner.lock().as_ref().is_some_and(|p| p.is_running())
    }

    /// The client id (after `start()`), else None.
    #[getter]
    fn client_id(&self) -> Option<String> {
        self.inner.lock().as_ref().map(|p| p.client_id().to_owned())
    }

    /// Starts the producer (idempotent). Raises `ProducerStartError`. No lock is held while it starts,
    /// so other threads' calls on this producer go on (and fail with `ProducerStateError` until it runs).
    fn start(&self, py: Python<'_>) -> PyResult<()> {
        if self.running() {
            return Ok(());
        }
        let config = self.config.clone();
        let p = start_detached(py, move || {
            let p = Arc::new(Producer::new(config)?);
            p.start().map(|()| p)
        })?;
        install(&self.inner, p, |p| p.is_running());
        Ok(())
    }

    /// Shuts the producer down (idempotent): waits for asynchronous sends (up to their timeouts), then
    /// unregisters from the brokers.
    fn shutdown(&self, py: Python<'_>) {
        let p = self.inner.lock().clone();
        if let Some(p) = p {
            py.detach(move || p.shutdown());
        }
    }

    /// Sends `message` and waits for the broker: the `SendResult`, or an exception of `rmq.errors`.
    fn send_sync(&self, py: Python<'_>, message: PyRef<'_, PyMessage>) -> PyResult<PySendResult> {
        let pending = self.producer(py)?.send_async(&message.inner);
        drop(message);
        wait(py, pending).map(|r| PySendResult::from(&r))
    }

    /// Sends `message` without waiting for the broker's answer (returns once it is written).
    fn send_oneway(&self, py: Python<'_>, message: PyRef<'_, PyMessage>) -> PyResult<()> {
        let pending = self.producer(py)?.send_oneway_async(&message.inner);
        drop(message);
        wait(py, pending)
    }

    /// Sends `messages` (one topic) in batch requests of at most `batch_size`: one `SendResult` per
    /// request.
    #[pyo3(signature = (*messages))]
    fn send_batch(
        &self,
        py: Python<'_>,
        messages: Vec<PyRef<'_, PyMessage>>,
    ) -> PyResult<Vec<PySendResult>> {
        let batch = self::messages(&messages);
        drop(messages);
        let pending = self.producer(py)?.send_batch_async(&batch);
        wait(py, pending).map(|rs| rs.iter().map(PySendResult::from).collect())
    }

    /// Sends each of `messages` oneway (rmq has no oneway batch request: each is its own frame).
    #[pyo3(signature = (*messages))]
    fn oneway_batch(&self, py: Python<'_>, messages: Vec<PyRef<'_, PyMessage>>) -> PyResult<()> {
        let p = self.producer(py)?;
        let pending: Vec<Pending<()>> = messages
            .iter()
            .map(|m| p.send_oneway_async(&m.inner))
            .collect();
        drop(messages);
        for one in pending {
            wait(py, one)?;
        }
        Ok(())
    }

    /// Sends a heartbeat to every master broker now.
    fn send_heartbeat_to_all_broker(&self, py: Python<'_>) -> PyResult<()> {
        let p = self.producer(py)?;
        py.detach(move || p.send_heartbeat_to_all_broker());
        Ok(())
    }

    /// Brings a broker taken out of rotation (SUSPENDED, or isolated after failures) back at once.
    fn force_recover(&self, py: Python<'_>, broker_name: &str) -> PyResult<()> {
        self.producer(py)?.force_recover(broker_name);
        Ok(())
    }

    /// The queues `topic` can be sent to (its route fetched if needed), for `send_to_queue` and selectors.
    fn fetch_publish_queues(&self, py: Python<'_>, topic: &str) -> PyResult<Vec<PyMessageQueue>> {
        let p = self.producer(py)?;
        let topic = topic.to_owned();
        let queues = py
            .detach(move || p.fetch_publish_queues(&topic))
            .map_err(|e| errors::to_py(py, &e))?;
        Ok(queues.into_iter().map(PyMessageQueue::from).collect())
    }

    /// Sends `message` to `queue` (an ordered send: no retry on another queue).
    fn send_to_queue(
        &self,
        py: Python<'_>,
        message: PyRef<'_, PyMessage>,
        queue: PyRef<'_, PyMessageQueue>,
    ) -> PyResult<PySendResult> {
        let pending = self
            .producer(py)?
            .send_to_queue_async(&message.inner, &queue.to_rust());
        drop((message, queue));
        wait(py, pending).map(|r| PySendResult::from(&r))
    }

    /// Sends `message` as a request and waits for its reply (a `Message`) up to `timeout` milliseconds
    /// (default `send_msg_timeout`); `RequestTimeoutError` (a `TimeoutError`) when none comes.
    #[pyo3(signature = (message, timeout=None))]
    fn request(
        &self,
        py: Python<'_>,
        message: PyRef<'_, PyMessage>,
        timeout: Option<f64>,
    ) -> PyResult<PyMessage> {
        let p = self.producer(py)?;
        let timeout = request_timeout(py, &p, timeout)?;
        let pending = p.request_async(&message.inner, timeout);
        drop(message);
        wait(py, pending).map(|inner| PyMessage { inner })
    }

    /// Starts an asynchronous call whose outcome `bridge` hands to its loop under `id` (the asyncio
    /// methods of `rmq.Producer` call this). `kind` is `send`, `oneway` or `batch`.
    #[pyo3(signature = (kind, messages, bridge, queue=None, timeout=None))]
    fn _submit(
        &self,
        py: Python<'_>,
        kind: &str,
        messages: Vec<PyRef<'_, PyMessage>>,
        bridge: PyRef<'_, Bridge>,
        queue: Option<PyRef<'_, PyMessageQueue>>,
        timeout: Option<f64>,
    ) -> PyResult<u64> {
        let p = self.producer(py)?;
        Ok(match (kind, messages.as_slice()) {
            ("queue", [m]) => {
                let Some(q) = queue else {
                    return Err(pyo3::exceptions::PyValueError::new_err(
                        "_submit(queue) without a queue",
                    ));
                };
                bridge.watch(p.send_to_queue_async(&m.inner, &q.to_rust()), Outcome::Send)
            }
            ("request", [m]) => {
                let timeout = request_timeout(py, &p, timeout)?;
                bridge.watch(p.request_async(&m.inner, timeout), Outcome::Reply)
            }
            ("send", [m]) => bridge.watch(p.send_async(&m.inner), Outcome::Send),
            ("oneway", [m]) => bridge.watch(p.send_oneway_async(&m.inner), Outcome::Oneway),
            ("batch", ms) => bridge.watch(p.send_batch_async(&self::messages(ms)), Outcome::Batch),
            _ => {
                return Err(pyo3::exceptions::PyValueError::new_err(format!(
                    "_submit({kind:?}) with {} messages",
                    messages.len()
                )));
            }
        })
    }

    /// What the producer has done: `running`, `total_sent`, `total_failed`, `success_rate`, and more
    /// (`brokers`: per broker `status`, `success_rate`, `avg_latency` in ms, ...).
    fn get_stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let p = self.inner.lock().clone();
        stats(py, p.as_deref())
    }

    fn __repr__(&self) -> String {
        let c = &self.config;
        format!(
            "Producer(producer_group={:?}, namesrv_addr={:?}, running={})",
            c.producer_group,
            c.namesrv_addr,
            if self.running() { "True" } else { "False" }
        )
    }
}

impl Drop for PyProducer {
    fn drop(&mut self) {
        if let Some(p) = self.inner.get_mut().take() {
            shut_down_elsewhere(p);
        }
    }
}

/// Drops the last handle of a producer (which shuts a running one down, waiting for its asynchronous sends
/// up to their timeouts) on a thread of its own: Python drops objects with the GIL held, and no Python
/// thread may stall behind a garbage collection, nor deadlock with one of rmq's threads that waits for the
/// GIL to call a listener. When no thread can be had, it is dropped here.
pub(crate) fn shut_down_elsewhere<T: Send + 'static>(producer: T) {
    let _ = std::thread::Builder::new()
        .name("rmq-py-drop".into())
        .spawn(move || drop(producer));
}

/// Builds and starts a producer without the GIL (a start fetches routes and greets brokers).
pub(crate) fn start_detached<P: Send>(
    py: Python<'_>,
    start: impl FnOnce() -> Result<P, ProducerError> + Send,
) -> PyResult<P> {
    py.detach(start).map_err(|e| errors::start_failed(py, &e))
}

/// Puts a started producer in `slot`, unless another thread's start got there first (then this one is
/// shut down elsewhere and the running one kept).
pub(crate) fn install<P: Send + Sync + 'static>(
    slot: &Mutex<Option<Arc<P>>>,
    started: Arc<P>,
    running: impl Fn(&P) -> bool,
) {
    let mut slot = slot.lock();
    if slot.as_deref().is_some_and(&running) {
        drop(slot);
        shut_down_elsewhere(started);
    } else if let Some(old) = slot.replace(started) {
        shut_down_elsewhere(old);
    }
}

/// The stats dict of `Producer.get_stats()` (and `TransactionProducer.get_stats()`): a producer never
/// started reads as not running with zeros.
pub(crate) fn stats<'py>(py: Python<'py>, p: Option<&Producer>) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    let Some(p) = p else {
        d.set_item("running", false)?;
        for k in ["total_sent", "total_failed", "retries", "in_flight"] {
            d.set_item(k, 0)?;
        }
        d.set_item("success_rate", 1.0)?;
        d.set_item("brokers", PyDict::new(py))?;
        return Ok(d);
    };
    let s = p.get_stats();
    d.set_item("running", s.running)?;
    d.set_item("total_sent", s.sent + s.oneway)?;
    d.set_item("total_failed", s.failed + s.oneway_failed)?;
    d.set_item("success_rate", s.success_rate)?;
    d.set_item("sent", s.sent)?;
    d.set_item("failed", s.failed)?;
    d.set_item("oneway", s.oneway)?;
    d.set_item("oneway_failed", s.oneway_failed)?;
    d.set_item("retries", s.retries)?;
    d.set_item("in_flight", s.in_flight)?;
    d.set_item("avg_send_time_ms", s.avg_send_time.as_secs_f64() * 1000.0)?;
    d.set_item("heartbeats_ok", s.heartbeats_ok)?;
    d.set_item("heartbeats_failed", s.heartbeats_failed)?;
    d.set_item("callback_panics", s.callback_panics)?;
    d.set_item("replies", s.replies)?;
    d.set_item("late_replies", s.late_replies)?;
    d.set_item("total_routing", s.router.total)?;
    d.set_item("successful_routing", s.router.routed)?;
    d.set_item("brokers", broker_health(py, &s.router.brokers)?)?;
    Ok(d)
}
