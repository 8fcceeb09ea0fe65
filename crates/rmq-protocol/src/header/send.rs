//! SEND_MESSAGE (10), SEND_MESSAGE_V2 (310), SEND_BATCH_MESSAGE (320) headers and the send response.

use super::{CommandHeader, Fields, RequestHeader, put_opt, put_opt_int};
use crate::code::RequestCode;
use crate::error::HeaderError;
use crate::map::StringMap;
use crate::text::MsgId;

/// `SendMessageRequestHeader` (V1 field names). [`SendMessageRequestHeaderV2`] carries the same fields
/// under one-letter keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendMessageRequestHeader {
    /// `producerGroup` / `a`.
    pub producer_group: String,
    /// `topic` / `b`.
    pub topic: String,
    /// `defaultTopic` / `c`: the template topic for auto-creation, normally `TBW102`.
    pub default_topic: String,
    /// `defaultTopicQueueNums` / `d`: queues of an auto-created topic (Java: 4).
    pub default_topic_queue_nums: i32,
    /// `queueId` / `e`: the chosen queue; negative lets the broker pick.
    pub queue_id: i32,
    /// `sysFlag` / `f`: compression and transaction bits.
    pub sys_flag: i32,
    /// `bornTimestamp` / `g`: milliseconds since the Unix epoch.
    pub born_timestamp: i64,
    /// `flag` / `h`: the message's user flag.
    pub flag: i32,
    /// `properties` / `i`: the encoded properties.
    pub properties: Option<String>,
    /// `reconsumeTimes` / `j`: the producer sends 0.
    pub reconsume_times: Option<i32>,
    /// `unitMode` / `k`.
    pub unit_mode: bool,
    /// `batch` / `m`: the body is a batch.
    pub batch: bool,
    /// `maxReconsumeTimes` / `l`: only for retry topics.
    pub max_reconsume_times: Option<i32>,
    /// `bname` / `n`: the destination broker's name (`n` since 5.1.0).
    pub broker_name: Option<String>,
}

impl Default for SendMessageRequestHeader {
    fn default() -> Self {
        SendMessageRequestHeader {
            producer_group: String::new(),
            topic: String::new(),
            default_topic: "TBW102".to_owned(),
            default_topic_queue_nums: 4,
            queue_id: 0,
            sys_flag: 0,
            born_timestamp: 0,
            flag: 0,
            properties: None,
            reconsume_times: Some(0),
            unit_mode: false,
            batch: false,
            max_reconsume_times: None,
            broker_name: None,
        }
    }
}

impl CommandHeader for SendMessageRequestHeader {
    fn write_fields(&self, ext: &mut StringMap) {
        ext.insert("producerGroup", &self.producer_group);
        ext.insert("topic", &self.topic);
        ext.insert("defaultTopic", &self.default_topic);
        ext.insert_int(
            "defaultTopicQueueNums",
            self.default_topic_queue_nums.into(),
        );
        ext.insert_int("queueId", self.queue_id.into());
        ext.insert_int("sysFlag", self.sys_flag.into());
        ext.insert_int("bornTimestamp", self.born_timestamp);
        ext.insert_int("flag", self.flag.into());
        put_opt(ext, "properties", self.properties.as_deref());
        put_opt_int(ext, "reconsumeTimes", self.reconsume_times.map(i64::from));
        ext.insert_bool("unitMode", self.unit_mode);
        ext.insert_bool("batch", self.batch);
        put_opt_int(
            ext,
            "maxReconsumeTimes",
            self.max_reconsume_times.map(i64::from),
        );
        put_opt(ext, "bname", self.broker_name.as_deref());
    }

    fn read_fields(ext: &StringMap) -> Result<Self, HeaderError> {
        read(ext, "SendMessageRequestHeader", &V1_KEYS)
    }
}

impl RequestHeader for SendMessageRequestHeader {
    const CODE: RequestCode = RequestCode::SEND_MESSAGE;
}

/// Key names in field order: producer group, topic, default topic, default queue count, queue id, sysFlag,
/// born timestamp, flag, properties, reconsume times, unit mode, max reconsume times, batch, broker name.
type Keys = [&'static str; 14];
const V1_KEYS: Keys = [
    "producerGroup",
    "topic",
    "defaultTopic",
    "defaultTopicQueueNums",
    "queueId",
    "sysFlag",
    "bornTimestamp",
    "flag",
    "properties",
    "reconsumeTimes",
    "unitMode",
    "maxReconsumeTimes",
    "batch",
    "bname",
];
const V2_KEYS: Keys = [
    "a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n",
];

fn read(
    ext: &StringMap,
    header: &'static str,
    k: &Keys,
) -> Result<SendMessageRequestHeader, HeaderError> {
    let f = Fields::new(ext, header);
    Ok(SendMessageRequestHeader {
        producer_group: f.str(k[0])?,
        topic: f.str(k[1])?,
        default_topic: f.str(k[2])?,
        default_topic_queue_nums: f.i32(k[3])?,
        queue_id: f.i32(k[4])?,
        sys_flag: f.i32(k[5])?,
        born_timestamp: f.i64(k[6])?,
        flag: f.i32(k[7])?,
        properties: f.opt_str(k[8]),
        reconsume_times: f.opt_i32(k[9])?,
        unit_mode: f.opt_bool(k[10])?.unwrap_or(false),
        max_reconsume_times: f.opt_i32(k[11])?,
        batch: f.opt_bool(k[12])?.unwrap_or(false),
        broker_name: f.opt_str(k[13]),
    })
}

/// `SendMessageRequestHeaderV2`: the V1 fields under the keys `a`..`n`, written in that order and skipping
/// null fields, exactly as Java's FastCodes encoder does.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct SendMessageRequestHeaderV2(pub SendMessageRequestHeader);

impl From<SendMessageRequestHeader> for SendMessageRequestHeaderV2 {
    fn from(v1: SendMessageRequestHeader) -> Self {
        SendMessageRequestHeaderV2(v1)
    }
}

impl From<SendMessageRequestHeaderV2> for SendMessageRequestHeader {
    fn from(v2: SendMessageRequestHeaderV2) -> Self {
        v2.0
    }
}

impl CommandHeader for SendMessageRequestHeaderV2 {
    fn write_fields(&self, ext: &mut StringMap) {
        self.0.as_v2_ref().write_fields(ext);
    }

    fn read_fields(ext: &StringMap) -> Result<Self, HeaderError> {
        read(ext, "SendMessageRequestHeaderV2", &V2_KEYS).map(SendMessageRequestHeaderV2)
    }
}

impl RequestHeader for SendMessageRequestHeaderV2 {
    const CODE: RequestCode = RequestCode::SEND_MESSAGE_V2;
}

impl SendMessageRequestHeader {
    /// The same header as a borrowed V2 header.
    pub fn as_v2_ref(&self) -> SendMessageRequestHeaderV2Ref<'_> {
        SendMessageRequestHeaderV2Ref {
            producer_group: &self.producer_group,
            topic: &self.topic,
            default_topic: &self.default_topic,
            default_topic_queue_nums: self.default_topic_queue_nums,
            queue_id: self.queue_id,
            sys_flag: self.sys_flag,
            born_timestamp: self.born_timestamp,
            flag: self.flag,
            properties: self.properties.as_deref(),
            reconsume_times: self.reconsume_times,
            unit_mode: self.unit_mode,
            max_reconsume_times: self.max_reconsume_times,
            batch: self.batch,
            broker_name: self.broker_name.as_deref(),
        }
    }
}

/// [`SendMessageRequestHeaderV2`] over borrowed fields, for a sender that keeps the values elsewhere: the
/// same keys, order and null rules (it is what the owned header writes through), without copying a field
/// into a header first. Fields as in [`SendMessageRequestHeader`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs)] // each field is documented on SendMessageRequestHeader
pub struct SendMessageRequestHeaderV2Ref<'a> {
    pub producer_group: &'a str,
    pub topic: &'a str,
    pub default_topic: &'a str,
    pub default_topic_queue_nums: i32,
    pub queue_id: i32,
    pub sys_flag: i32,
    pub born_timestamp: i64,
    pub flag: i32,
    pub properties: Option<&'a str>,
    pub reconsume_times: Option<i32>,
    pub unit_mode: bool,
    pub max_reconsume_times: Option<i32>,
    pub batch: bool,
    pub broker_name: Option<&'a str>,
}

impl SendMessageRequestHeaderV2Ref<'_> {
    /// Writes the fields into `ext` under the keys `a`..`n`, skipping null ones.
    pub fn write_fields(&self, ext: &mut StringMap) {
        ext.insert("a", self.producer_group);
        ext.insert("b", self.topic);
        ext.insert("c", self.default_topic);
        ext.insert_int("d", self.default_topic_queue_nums.into());
        ext.insert_int("e", self.queue_id.into());
        ext.insert_int("f", self.sys_flag.into());
        ext.insert_int("g", self.born_timestamp);
        ext.insert_int("h", self.flag.into());
        put_opt(ext, "i", self.properties);
        put_opt_int(ext, "j", self.reconsume_times.map(i64::from));
        ext.insert_bool("k", self.unit_mode);
        put_opt_int(ext, "l", self.max_reconsume_times.map(i64::from));
        ext.insert_bool("m", self.batch);
        put_opt(ext, "n", self.broker_name);
    }

    /// At least the bytes of keys and values [`Self::write_fields`] writes: room to write them without
    /// growing.
    pub fn text_len(&self) -> usize {
        const KEYS: usize = 14;
        const NUMBERS: usize = 5 * 11 + 20; // five i32 fields at most 11 digits, one i64 at most 20
        const BOOLS: usize = 2 * 5;
        KEYS + NUMBERS
            + BOOLS
            + self.producer_group.len()
            + self.topic.len()
            + self.default_topic.len()
            + self.properties.map_or(0, str::len)
            + self.broker_name.map_or(0, str::len)
    }
}

/// `SendMessageResponseHeader`, plus the `MSG_REGION` and `TRACE_ON` ext fields brokers add.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct SendMessageResponseHeader {
    /// The broker's offset msgId (comma-separated for a batch).
    pub msg_id: MsgId,
    /// The queue the broker stored into.
    pub queue_id: i32,
    /// Logical offset in that queue.
    pub queue_offset: i64,
    /// Transaction id (the message's UNIQ_KEY for half messages).
    pub transaction_id: Option<MsgId>,
    /// The batch's UNIQ_KEY for inner-batch topics.
    pub batch_uniq_id: Option<String>,
    /// Recall handle (5.3+).
    pub recall_handle: Option<String>,
    /// `MSG_REGION`: the broker's region.
    pub region: Option<String>,
    /// `TRACE_ON`: whether the broker traces.
    pub trace_on: Option<bool>,
}

impl CommandHeader for SendMessageResponseHeader {
    fn write_fields(&self, ext: &mut StringMap) {
        ext.insert("msgId", &self.msg_id);
        ext.insert_int("queueId", self.queue_id.into());
        ext.insert_int("queueOffset", self.queue_offset);
        put_opt(ext, "transactionId", self.transaction_id.as_deref());
        put_opt(ext, "batchUniqId", self.batch_uniq_id.as_deref());
        put_opt(ext, "recallHandle", self.recall_handle.as_deref());
        put_opt(ext, "MSG_REGION", self.region.as_deref());
        if let Some(t) = self.trace_on {
            ext.insert_bool("TRACE_ON", t);
        }
    }

    fn read_fields(ext: &StringMap) -> Result<Self, HeaderError> {
        let f = Fields::new(ext, "SendMessageResponseHeader");
        Ok(SendMessageResponseHeader {
            msg_id: MsgId::new(f.str_ref("msgId")?),
            queue_id: f.i32("queueId")?,
            queue_offset: f.i64("queueOffset")?,
            transaction_id: ext.get("transactionId").map(MsgId::new),
            batch_uniq_id: f.opt_str("batchUniqId"),
            recall_handle: f.opt_str("recallHandle"),
            region: f.opt_str("MSG_REGION"),
            // Java: traceOn = !"false".equals(value)
            trace_on: ext.get("TRACE_ON").map(|v| v != "false"),
        })
    }
}
