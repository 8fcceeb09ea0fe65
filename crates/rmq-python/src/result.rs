//! `SendResult`: a stored message's outcome with pyrocketmq's field names.

use std::time::{SystemTime, UNIX_EPOCH};

use pyo3::prelude::*;
use rmq::producer::{SendResult, SendStatus};

/// The outcome of a stored message (a failed send raises instead).
#[pyclass(module = "rmq._rmq", name = "SendResult", frozen, get_all)]
pub(crate) struct PySendResult {
    /// True when the broker stored the message with status SEND_OK.
    success: bool,
    /// The client message id (UNIQ_KEY); for a batch, its messages' ids, comma-separated.
    message_id: Option<String>,
    /// The topic (without the namespace).
    topic: Option<String>,
    /// The broker that stored it.
    broker_name: Option<String>,
    /// The queue.
    queue_id: Option<i32>,
    /// Always None here: a failed send raises; kept for pyrocketmq code that reads it.
    error: Option<Py<PyAny>>,
    /// When the result was made, seconds since the epoch.
    send_timestamp: Option<f64>,
    /// The broker's offset message id.
    offset_msg_id: Option<String>,
    /// Offset in the queue.
    queue_offset: Option<i64>,
    /// SEND_OK, FLUSH_DISK_TIMEOUT, FLUSH_SLAVE_TIMEOUT or SLAVE_NOT_AVAILABLE.
    status: &'static str,
    /// Attempts it took (1 = no retry).
    attempts: u32,
    /// Whether an earlier attempt may have stored the message too (a consumer may see it twice).
    possibly_duplicated: bool,
    /// The transaction id, when the broker gives one.
    transaction_id: Option<String>,
    /// For a timer message on a 5.3.2+ broker: the handle `recall` takes.
    recall_handle: Option<String>,
}

impl From<&SendResult> for PySendResult {
    fn from(r: &SendResult) -> Self {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        PySendResult {
            success: r.status == SendStatus::SendOk,
            message_id: Some(r.msg_id.as_str().to_owned()),
            topic: Some(r.topic.as_str().to_owned()),
            broker_name: Some(r.broker_name.as_str().to_owned()),
            queue_id: Some(r.queue_id),
            error: None,
            send_timestamp: Some(now),
            offset_msg_id: Some(r.offset_msg_id.as_str().to_owned()),
            queue_offset: Some(r.queue_offset),
            status: match r.status {
                SendStatus::SendOk => "SEND_OK",
                SendStatus::FlushDiskTimeout => "FLUSH_DISK_TIMEOUT",
                SendStatus::FlushSlaveTimeout => "FLUSH_SLAVE_TIMEOUT",
                SendStatus::SlaveNotAvailable => "SLAVE_NOT_AVAILABLE",
            },
            attempts: r.attempts,
            possibly_duplicated: r.possibly_duplicated,
            transaction_id: r.transaction_id.as_ref().map(|t| t.as_str().to_owned()),
            recall_handle: r.recall_handle.clone(),
        }
    }
}

#[pymethods]
impl PySendResult {
    fn __repr__(&self) -> String {
        format!(
            "SendResult(success={}, status={}, message_id={:?}, topic={:?}, broker_name={:?}, queue_id={:?}, queue_offset={:?})",
            if self.success { "True" } else { "False" },
            self.status,
            self.message_id.as_deref().unwrap_or(""),
            self.topic.as_deref().unwrap_or(""),
            self.broker_name.as_deref().unwrap_or(""),
            self.queue_id.unwrap_or(-1),
            self.queue_offset.unwrap_or(-1),
        )
    }
}
