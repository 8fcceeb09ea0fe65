//! GET_MAX_OFFSET (30): the Java client's broker reachability probe.

use super::{CommandHeader, Fields, RequestHeader, put_opt};
use crate::code::RequestCode;
use crate::error::HeaderError;
use crate::map::StringMap;

/// `GetMaxOffsetRequestHeader`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GetMaxOffsetRequestHeader {
    /// Topic.
    pub topic: String,
    /// Queue id.
    pub queue_id: i32,
    /// Only count committed messages (Java's default: true).
    pub committed: bool,
    /// Broker name (`bname`).
    pub broker_name: Option<String>,
}

impl CommandHeader for GetMaxOffsetRequestHeader {
    fn write_fields(&self, ext: &mut StringMap) {
        ext.insert("topic", &self.topic);
        ext.insert_int("queueId", self.queue_id.into());
        ext.insert_bool("committed", self.committed);
        put_opt(ext, "bname", self.broker_name.as_deref());
    }

    fn read_fields(ext: &StringMap) -> Result<Self, HeaderError> {
        let f = Fields::new(ext, "GetMaxOffsetRequestHeader");
        Ok(GetMaxOffsetRequestHeader {
            topic: f.str("topic")?,
            queue_id: f.i32("queueId")?,
            committed: f.opt_bool("committed")?.unwrap_or(true),
            broker_name: f.opt_str("bname"),
        })
    }
}

impl RequestHeader for GetMaxOffsetRequestHeader {
    const CODE: RequestCode = RequestCode::GET_MAX_OFFSET;
}

/// `GetMaxOffsetResponseHeader`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GetMaxOffsetResponseHeader {
    /// The queue's max offset.
    pub offset: i64,
}

impl CommandHeader for GetMaxOffsetResponseHeader {
    fn write_fields(&self, ext: &mut StringMap) {
        ext.insert_int("offset", self.offset);
    }

    fn read_fields(ext: &StringMap) -> Result<Self, HeaderError> {
        let f = Fields::new(ext, "GetMaxOffsetResponseHeader");
        Ok(GetMaxOffsetResponseHeader {
            offset: f.i64("offset")?,
        })
    }
}
