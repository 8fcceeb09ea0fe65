//! # rmq-python
//!
//! The native part (`rmq._rmq`) of the `rmq` Python package: pyrocketmq's producer API on rmq's Rust
//! core. The Python side (`python/rmq/`) adds the modules users import (`rmq.producer`, `rmq.config`,
//! `rmq.errors`, …), the exception tree and the asyncio methods; this crate holds what needs Rust:
//! messages, configuration (through the one settings table, `rmq::producer::SETTINGS`), the producer and
//! its sends, and the bridge that hands finished asynchronous sends to an event loop without a thread
//! per send and without taking the GIL on rmq's threads.
//!
//! Rules every method here keeps: the GIL is released while a call waits (a blocking send waits in
//! slices and checks for signals between them, so Ctrl-C interrupts it); nothing from Python or the
//! network panics (errors become the exceptions of `rmq.errors`); every class is safe to share across
//! Python threads.

#![forbid(unsafe_code)]

mod bridge;
mod config;
mod errors;
mod message;
mod producer;
mod result;
mod routing;
mod transaction;

use pyo3::prelude::*;

/// The native module `rmq._rmq`.
#[pymodule]
fn _rmq(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<message::PyMessage>()?;
    m.add_class::<config::PyConfig>()?;
    m.add_class::<result::PySendResult>()?;
    m.add_class::<producer::PyProducer>()?;
    m.add_class::<bridge::Bridge>()?;
    m.add_class::<routing::PyMessageQueue>()?;
    m.add_class::<routing::PyBrokerData>()?;
    m.add_class::<routing::PyMapping>()?;
    m.add_class::<routing::PyRouter>()?;
    m.add_class::<routing::PyRoutingResult>()?;
    m.add_class::<transaction::PyTransactionProducer>()?;
    m.add_class::<transaction::PyTransactionSendResult>()?;
    m.add_function(wrap_pyfunction!(routing::hash_index, m)?)?;
    m.add_function(wrap_pyfunction!(config::get_config, m)?)?;
    m.add_function(wrap_pyfunction!(config::settings, m)?)?;
    m.add_function(wrap_pyfunction!(config::template_names, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
