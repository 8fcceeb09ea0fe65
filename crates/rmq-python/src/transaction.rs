//! Transactional messages with a Python listener: `TransactionProducer(config, listener)`. The listener's
//! `execute_local_transaction(message, transaction_id, arg)` runs on one of rmq's local-transaction
//! threads while the caller waits (GIL released, Ctrl-C checked); `check_local_transaction(message,
//! transaction_id)` answers a broker's check-back on one of rmq's check threads. Both take the GIL only
//! for the call. An exception (or an answer that is not a state) counts as UNKNOW: the broker checks back
//! later; it is reported through `sys.unraisablehook` and counted, and never reaches a Rust thread.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use rmq::producer::{
    LocalTransactionState, ProducerConfig, SendResult, TransactionListener, TransactionProducer,
};
use rmq::protocol::{Message, MessageExt};

use crate::config::PyConfig;
use crate::errors;
use crate::message::PyMessage;
use crate::producer::{install, shut_down_elsewhere, start_detached, stats, wait};
use crate::result::PySendResult;

/// The Python listener as rmq's.
struct Listener {
    listener: Py<PyAny>,
    /// Listener calls that raised or answered something that is not a state.
    errors: Arc<AtomicU64>,
}

fn state_name(s: LocalTransactionState) -> &'static str {
    match s {
        LocalTransactionState::Commit => "COMMIT_MESSAGE",
        LocalTransactionState::Rollback => "ROLLBACK_MESSAGE",
        LocalTransactionState::Unknown => "UNKNOW",
    }
}

impl Listener {
    /// Calls `method` and reads its answer: a `LocalTransactionState` (or its name, any case; also
    /// COMMIT / ROLLBACK / UNKNOWN).
    fn call(
        &self,
        method: &str,
        args: impl for<'py> FnOnce(Python<'py>) -> PyResult<Bound<'py, pyo3::types::PyTuple>>,
    ) -> LocalTransactionState {
        Python::attach(|py| {
            let answer = args(py).and_then(|args| {
                let listener = self.listener.bind(py);
                listener.call_method1(method, args)
            });
            let state = answer.and_then(|a| {
                let name = a.str()?.to_cow()?.to_ascii_uppercase();
                let name = name.rsplit('.').next().unwrap_or_default().to_owned();
                Ok(match name.as_str() {
                    "COMMIT_MESSAGE" | "COMMIT" => Some(LocalTransactionState::Commit),
                    "ROLLBACK_MESSAGE" | "ROLLBACK" => Some(LocalTransactionState::Rollback),
                    "UNKNOW" | "UNKNOWN" => Some(LocalTransactionState::Unknown),
                    _ => None,
                })
            });
            match state {
                Ok(Some(s)) => s,
                Ok(None) => {
                    self.errors.fetch_add(1, Ordering::Relaxed);
                    pyo3::exceptions::PyValueError::new_err(format!(
                        "{method} answered something that is not a LocalTransactionState; taken as UNKNOW"
                    ))
                    .write_unraisable(py, Some(self.listener.bind(py)));
                    LocalTransactionState::Unknown
                }
                Err(e) => {
                    self.errors.fetch_add(1, Ordering::Relaxed);
                    e.write_unraisable(py, Some(self.listener.bind(py)));
                    LocalTransactionState::Unknown
                }
            }
        })
    }
}

impl TransactionListener for Listener {
    type Arg = Py<PyAny>;

    fn execute(
        &self,
        message: &Message,
        half: &SendResult,
        arg: &Py<PyAny>,
    ) -> LocalTransactionState {
        let id = half.msg_id.as_str().to_owned();
        self.call("execute_local_transaction", |py| {
            let m = Py::new(
                py,
                PyMessage {
                    inner: message.clone(),
                },
            )?;
            pyo3::types::PyTuple::new(
                py,
                [
                    m.into_any(),
                    id.into_pyobject(py)?.into_any().unbind(),
                    arg.clone_ref(py),
                ],
            )
        })
    }

    fn check(&self, message: &MessageExt) -> LocalTransactionState {
        let mut m = Message::new(message.topic.clone(), message.body.clone());
        m.flag = message.flag;
        m.properties = message.properties.clone();
        let id = m.uniq_key().unwrap_or_default().to_owned();
        self.call("check_local_transaction", |py| {
            let m = Py::new(py, PyMessage { inner: m })?;
            pyo3::types::PyTuple::new(
                py,
                [m.into_any(), id.into_pyobject(py)?.into_any().unbind()],
            )
        })
    }
}

/// A transactional message's outcome: the half message's send and what the local transaction decided.
#[pyclass(module = "rmq._rmq", name = "TransactionSendResult", frozen, get_all)]
pub(crate) struct PyTransactionSendResult {
    /// The half message's `SendResult`.
    send_result: Py<PySendResult>,
    /// COMMIT_MESSAGE, ROLLBACK_MESSAGE or UNKNOW.
    local_transaction_state: &'static str,
    /// The id the listener saw (the message id).
    transaction_id: String,
    /// Why the end of the transaction could not be told to the broker (it then checks back), or None.
    end_error: Option<String>,
}

/// A producer of transactional messages with a Python listener (an object with
/// `execute_local_transaction(message, transaction_id, arg)` and `check_local_transaction(message,
/// transaction_id)`, each answering a `LocalTransactionState`).
#[pyclass(module = "rmq._rmq", name = "TransactionProducer", frozen, subclass)]
pub(crate) struct PyTransactionProducer {
    config: ProducerConfig,
    listener: Py<PyAny>,
    inner: Mutex<Option<Arc<TransactionProducer<Listener>>>>,
    errors: Arc<AtomicU64>,
}

impl PyTransactionProducer {
    fn producer(&self, py: Python<'_>) -> PyResult<Arc<TransactionProducer<Listener>>> {
        match &*self.inner.lock() {
            Some(p) if p.producer().is_running() => Ok(p.clone()),
            _ => Err(errors::state(
                py,
                "the producer is not running; call start() first",
            )),
        }
    }
}

#[pymethods]
impl PyTransactionProducer {
    #[new]
    #[pyo3(signature = (config, listener))]
    fn new(config: PyRef<'_, PyConfig>, listener: Py<PyAny>) -> Self {
        PyTransactionProducer {
            config: config.inner.clone(),
            listener,
            inner: Mutex::new(None),
            errors: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Whether the producer is running.
    #[getter]
    fn running(&self) -> bool {
        self.inner
            .lock()
            .as_ref()
            .is_some_and(|p| p.producer().is_running())
    }

    /// Listener calls that raised or answered something that is not a state (each taken as UNKNOW).
    #[getter]
    fn listener_errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    /// Check-backs answered so far.
    #[getter]
    fn checks_answered(&self) -> u64 {
        self.inner
            .lock()
            .as_ref()
            .map_or(0, |p| p.checks_answered())
    }

    /// Starts the producer and its check-back handling (idempotent). Raises `ProducerStartError`. No lock
    /// is held while it starts.
    fn start(&self, py: Python<'_>) -> PyResult<()> {
        if self.running() {
            return Ok(());
        }
        let listener = Listener {
            listener: self.listener.clone_ref(py),
            errors: self.errors.clone(),
        };
        let config = self.config.clone();
        let p = start_detached(py, move || {
            let p = Arc::new(TransactionProducer::new(config, listener)?);
            p.start().map(|()| p)
        })?;
        install(&self.inner, p, |p| p.producer().is_running());
        Ok(())
    }

    /// Shuts the producer down (idempotent).
    fn shutdown(&self, py: Python<'_>) {
        let p = self.inner.lock().clone();
        if let Some(p) = p {
            py.detach(move || p.shutdown());
        }
    }

    /// Sends `message` as a half message, runs the listener's local transaction with `arg` once it is
    /// stored, and tells the broker the outcome.
    #[pyo3(signature = (message, arg=None))]
    fn send_message_in_transaction(
        &self,
        py: Python<'_>,
        message: PyRef<'_, PyMessage>,
        arg: Option<Py<PyAny>>,
    ) -> PyResult<PyTransactionSendResult> {
        let p = self.producer(py)?;
        let arg = Arc::new(arg.unwrap_or_else(|| py.None()));
        let pending = p.send_message_in_transaction_async(&message.inner, arg);
        drop(message);
        let r = wait(py, pending)?;
        Ok(PyTransactionSendResult {
            transaction_id: r.half.msg_id.as_str().to_owned(),
            send_result: Py::new(py, PySendResult::from(&r.half))?,
            local_transaction_state: state_name(r.state),
            end_error: r.end_error.map(|e| e.to_string()),
        })
    }

    /// What the producer has done (as `Producer.get_stats()`), with `checks_answered` and
    /// `listener_errors`.
    fn get_stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let p = self.inner.lock().clone();
        let d = stats(py, p.as_ref().map(|p| p.producer()))?;
        d.set_item("checks_answered", self.checks_answered())?;
        d.set_item("listener_errors", self.listener_errors())?;
        Ok(d)
    }
}

impl Drop for PyTransactionProducer {
    fn drop(&mut self) {
        // Its check threads may be waiting for the GIL to call the listener: shut down elsewhere.
        if let Some(p) = self.inner.get_mut().take() {
            shut_down_elsewhere(p);
        }
    }
}
