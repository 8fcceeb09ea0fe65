//! Rust errors as the exceptions of `rmq.errors` (defined in Python, so `TimeoutError` can subclass both
//! `ProducerError` and the builtin). Each carries `retryable`, `possibly_stored` and, where there is one,
//! the broker's `code` and `broker_name`.

use pyo3::prelude::*;
use pyo3::types::PyDict;
use rmq::producer::ProducerError;

/// The class of `rmq.errors` an error is raised as.
fn class_of(e: &ProducerError) -> &'static str {
    match e {
        ProducerError::Config { .. } => "ConfigError",
        ProducerError::State(_) => "ProducerStateError",
        ProducerError::Validation(_) | ProducerError::QueueTopicMismatch { .. } => {
            "MessageValidationError"
        }
        ProducerError::RouteNotFound { .. } => "RouteNotFoundError",
        ProducerError::Route(rmq::routing::RouteError::NoRoute(_)) => "RouteNotFoundError",
        ProducerError::Route(_) => "QueueNotAvailableError",
        ProducerError::Broker { .. } | ProducerError::BadResponse { .. } => "BrokerError",
        ProducerError::Denied { .. } => "AccessDeniedError",
        ProducerError::MessageTypeMismatch { .. } => "MessageTypeMismatchError",
        ProducerError::NotThroughProxy { .. } => "NotSupportedError",
        ProducerError::RequestTimeout { .. } => "RequestTimeoutError",
        ProducerError::Overloaded { .. } => "OverloadedError",
        ProducerError::AttemptsExhausted { last, .. } => match class_of(last) {
            "BrokerError" | "AccessDeniedError" | "MessageTypeMismatchError" => class_of(last),
            _ if e.is_timeout() => "TimeoutError",
            "BrokerNotAvailableError" => "BrokerNotAvailableError",
            _ => "MessageSendError",
        },
        ProducerError::Remoting(_) if e.is_timeout() => "TimeoutError",
        ProducerError::Remoting(_) => "BrokerNotAvailableError",
        _ => "ProducerError",
    }
}

/// The broker's code and name, when the error has them.
fn broker_details(e: &ProducerError) -> (Option<i32>, Option<String>) {
    match e {
        ProducerError::Broker { broker, code, .. }
        | ProducerError::BadResponse { broker, code, .. } => {
            (Some(code.0), Some(broker.to_string()))
        }
        ProducerError::Denied { broker, code, .. } => (Some(code.0), Some(broker.to_string())),
        ProducerError::AttemptsExhausted { last, .. } => broker_details(last),
        _ => (None, None),
    }
}

/// `e` as an instance of its `rmq.errors` class (`ProducerStartError` when `starting`).
fn build(py: Python<'_>, e: &ProducerError, class: &str) -> PyResult<PyErr> {
    let module = py.import("rmq.errors")?;
    let cls = module.getattr(class)?;
    let kwargs = PyDict::new(py);
    kwargs.set_item("retryable", e.is_retryable())?;
    kwargs.set_item("possibly_stored", e.possibly_stored())?;
    let (code, broker) = broker_details(e);
    kwargs.set_item("code", code)?;
    kwargs.set_item("broker_name", broker)?;
    let instance = cls.call((e.to_string(),), Some(&kwargs))?;
    Ok(PyErr::from_value(instance))
}

/// `e` as the exception Python code catches.
pub(crate) fn to_py(py: Python<'_>, e: &ProducerError) -> PyErr {
    build(py, e, class_of(e)).unwrap_or_else(|import_failed| import_failed)
}

/// A failed `start()`: `ProducerStartError`, whatever the cause.
pub(crate) fn start_failed(py: Python<'_>, e: &ProducerError) -> PyErr {
    build(py, e, "ProducerStartError").unwrap_or_else(|import_failed| import_failed)
}

/// A `ProducerStateError` with `message` (a producer not started).
pub(crate) fn state(py: Python<'_>, message: &'static str) -> PyErr {
    to_py(py, &ProducerError::State(message))
}

/// A `MessageValidationError` for a message refused before any I/O.
pub(crate) fn validation(py: Python<'_>, message: &str) -> PyErr {
    let made = py.import("rmq.errors").and_then(|m| {
        let kwargs = PyDict::new(py);
        kwargs.set_item("retryable", false)?;
        m.getattr("MessageValidationError")?
            .call((message,), Some(&kwargs))
    });
    match made {
        Ok(instance) => PyErr::from_value(instance),
        Err(import_failed) => import_failed,
    }
}
