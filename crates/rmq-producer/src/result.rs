//! What a send returns: [`SendResult`], [`SendStatus`], and the [`MessageQueue`] ordered sends name.

use rmq_protocol::{MsgId, Name, ResponseCode};

/// A queue of a topic on one broker.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MessageQueue {
    /// Topic.
    pub topic: String,
    /// Broker name.
    pub broker_name: String,
    /// Queue id on that broker.
    pub queue_id: i32,
}

/// How a stored message was stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SendStatus {
    /// Stored.
    SendOk,
    /// Stored, but flushing to disk timed out.
    FlushDiskTimeout,
    /// Stored, but replication to the slave timed out.
    FlushSlaveTimeout,
    /// Stored, but no slave was available.
    SlaveNotAvailable,
}

impl SendStatus {
    /// The status a broker's response code stands for; `None` when the code means "not stored".
    pub(crate) fn from_code(code: ResponseCode) -> Option<SendStatus> {
        match code {
            ResponseCode::SUCCESS => Some(SendStatus::SendOk),
            ResponseCode::FLUSH_DISK_TIMEOUT => Some(SendStatus::FlushDiskTimeout),
            ResponseCode::FLUSH_SLAVE_TIMEOUT => Some(SendStatus::FlushSlaveTimeout),
            ResponseCode::SLAVE_NOT_AVAILABLE => Some(SendStatus::SlaveNotAvailable),
            _ => None,
        }
    }
}

/// The outcome of a successful send. Its ids are held inline and its names shared with the producer, so
/// making one allocates nothing but the region's text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendResult {
    /// How it was stored.
    pub status: SendStatus,
    /// The client message id (UNIQ_KEY); for a batch, its messages' keys, comma-separated.
    pub msg_id: MsgId,
    /// The broker's offset msgId; for a batch, comma-separated.
    pub offset_msg_id: MsgId,
    /// Topic.
    pub topic: Name,
    /// Broker that stored it.
    pub broker_name: Name,
    /// Queue id.
    pub queue_id: i32,
    /// Offset in the queue.
    pub queue_offset: i64,
    /// Transaction id, when the broker gives one.
    pub transaction_id: Option<MsgId>,
    /// For a timer message on a 5.3.2+ broker: the handle [`crate::Producer::recall`] takes to withdraw
    /// it before its time.
    pub recall_handle: Option<String>,
    /// The broker's region (shared: the results of one auto-batch hold one copy).
    pub region_id: Name,
    /// Attempts it took (1 = no retry).
    pub attempts: u32,
    /// Whether an earlier attempt of this send may have stored the message too: it timed out or lost its
    /// connection after the request was written (or, with `retry_another_broker_when_not_store_ok`, was
    /// stored with a degraded status). A consumer may then see the message twice, under the same
    /// `msg_id`. No other RocketMQ client tells its caller this.
    pub possibly_duplicated: bool,
}
