//! Request building and result mapping: a message made ready to send ([`Prepared`]: UNIQ_KEY, properties,
//! compression), the SEND_MESSAGE_V2 / SEND_BATCH_MESSAGE request for a routed attempt, and the
//! [`SendResult`] of a stored one. No I/O.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use rmq_protocol::batch::{batch_record_len_parts, encode_batch_record_parts};
use rmq_protocol::compress::{CompressionType, compress, should_compress};
use rmq_protocol::header::SendMessageRequestHeaderV2Ref;
use rmq_protocol::message::{
    NAME_VALUE_SEPARATOR, PROPERTY_SEPARATOR, encode_properties, encoded_properties_len, property,
};
use rmq_protocol::{
    AUTO_CREATE_TOPIC, Message, MsgId, Name, RemotingCommand, RequestCode, StringMap,
    UniqIdGenerator, validate,
};
use rmq_routing::RoutingResult;

use crate::config::ProducerConfig;
use crate::error::ProducerError;
use crate::machine::Receipt;
use crate::names::Names;
use crate::result::SendResult;
use crate::trace::TraceFacts;

/// Room a UNIQ_KEY takes in the properties: 32 hex characters, the name, two separators.
pub(crate) const UNIQ_ROOM: usize = 8 + 2 + 56;

/// A message ready to go: its properties with UNIQ_KEY, its (possibly compressed) body and sysFlag.
#[derive(Debug)]
pub(crate) struct Prepared {
    uniq_key: MsgId,
    properties: String,
    body: Bytes,
    sys_flag: i32,
    /// The topic on the wire (in the namespace, if any).
    topic: Arc<str>,
    /// The topic as the caller named it.
    user_topic: Arc<str>,
    flag: i32,
    /// The body is a batch of messages (SEND_BATCH_MESSAGE).
    batch: bool,
    /// What its trace record needs, when tracing is on.
    trace: Option<TraceFacts>,
    /// Kept out of the send counters: a trace message (a send to the trace topic while tracing is on),
    /// the producer's own, as Java's separate trace producer is; or an auto-batch, whose messages are
    /// counted one by one.
    internal: bool,
}

impl Prepared {
    /// The topic it goes to, as sent (in the namespace, if any).
    pub(crate) fn topic(&self) -> &Arc<str> {
        &self.topic
    }

    /// The topic as the caller named it.
    pub(crate) fn user_topic(&self) -> &Arc<str> {
        &self.user_topic
    }

    /// Its trace facts, when it is traced.
    pub(crate) fn trace(&self) -> Option<&TraceFacts> {
        self.trace.as_ref()
    }

    /// Whether it is kept out of the send counters (a trace message of the producer's own, or an
    /// auto-batch, whose messages are counted one by one).
    pub(crate) fn is_internal(&self) -> bool {
        self.internal
    }

    /// Its size as one record of a batch request.
    pub(crate) fn record_len(&self) -> usize {
        batch_record_len_parts(self.body.len(), self.properties.len())
    }

    /// Body length as sent (after compression).
    pub(crate) fn body_len(&self) -> usize {
        self.body.len()
    }

    /// Its UNIQ_KEY (a batch of `send_batch`: its messages' keys, comma-separated; an auto-batch: its
    /// first message's, each member keeping its own).
    pub(crate) fn uniq_key(&self) -> &MsgId {
        &self.uniq_key
    }
}

/// Builds requests the same way for every send path.
#[derive(Debug)]
pub(crate) struct Requests {
    ids: UniqIdGenerator,
    /// Topic names shared by prepared messages and results, as the caller names them.
    topics: Names,
    /// The caller's topic names → the names on the wire (used only with a namespace).
    wire_topics: Names,
    namespace: Option<String>,
    /// Trace messages of topics other than this one (`None`: tracing off).
    trace_topic: Option<String>,
    group: String,
    default_topic_queue_nums: i32,
    compress_over: usize,
    compression: CompressionType,
    compression_level: u32,
    max_message_size: usize,
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Requests {
    pub(crate) fn new(config: &ProducerConfig, ids: UniqIdGenerator) -> Requests {
        Requests {
            ids,
            topics: Names::default(),
            wire_topics: Names::default(),
            namespace: config.namespace.clone(),
            trace_topic: config.trace.then(|| config.trace_topic.clone()),
            group: config.wire_group().into_owned(),
            default_topic_queue_nums: config.default_topic_queue_nums,
            compress_over: config.compress_msg_body_over,
            compression: config.compression,
            compression_level: config.compression_level,
            max_message_size: config.max_message_size,
        }
    }

    /// A correlation id for a request-reply request: unique per producer (a UNIQ_KEY-style id).
    pub(crate) fn correlation_id(&self) -> String {
        String::from(self.ids.next_id(now_ms()))
    }

    /// The caller's `topic` and its name on the wire (the same name without a namespace), shared.
    fn topic_names(&self, topic: &str) -> Result<(Arc<str>, Arc<str>), ProducerError> {
        let user = self.topics.get(topic);
        let Some(ns) = &self.namespace else {
            return Ok((user.clone(), user));
        };
        let wire = self.wire_topics.get_or(topic, || {
            Arc::from(&*rmq_protocol::namespace::wrap(ns, topic))
        });
        validate::topic(&wire)?;
        Ok((wire, user))
    }

    /// Room the namespace's `INSTANCE_ID` property takes in the properties.
    fn instance_room(&self) -> usize {
        self.namespace
            .as_ref()
            .map_or(0, |ns| property::INSTANCE_ID.len() + ns.len() + 2)
    }

    /// Validates `message` and makes it ready: UNIQ_KEY added unless it has one (and `INSTANCE_ID` with
    /// a namespace), body compressed when large enough and when that helps.
    pub(crate) fn prepare(&self, message: &Message) -> Result<Prepared, ProducerError> {
        let extra = UNIQ_ROOM + self.instance_room();
        validate::message(message, self.max_message_size, extra)?;
        let (topic, user_topic) = self.topic_names(&message.topic)?;
        // The caller's properties, then UNIQ_KEY when they lack one: what encoding a copy with the key
        // inserted would give, without the copy.
        let mut properties =
            String::with_capacity(encoded_properties_len(&message.properties) + extra);
        // Java sets INSTANCE_ID on every message of a namespaced producer, replacing the caller's: appended
        // like UNIQ_KEY below, copying the properties only when the caller set another value.
        match (
            &self.namespace,
            message.properties.get(property::INSTANCE_ID),
        ) {
            (Some(ns), Some(v)) if v != ns => {
                let mut props = message.properties.clone();
                props.insert(property::INSTANCE_ID, ns);
                encode_properties(&props, &mut properties);
            }
            (Some(ns), None) => {
                encode_properties(&message.properties, &mut properties);
                properties.push_str(property::INSTANCE_ID);
                properties.push(NAME_VALUE_SEPARATOR);
                properties.push_str(ns);
                properties.push(PROPERTY_SEPARATOR);
            }
            _ => encode_properties(&message.properties, &mut properties),
        }
        let uniq_key = match message.uniq_key() {
            Some(k) => MsgId::new(k),
            None => {
                let k = self.ids.next_id(now_ms());
                properties.push_str(property::UNIQ_CLIENT_MESSAGE_ID_KEYIDX);
                properties.push(NAME_VALUE_SEPARATOR);
                properties.push_str(&k);
                properties.push(PROPERTY_SEPARATOR);
                k
            }
        };
        let mut sys_flag = 0;
        let mut body = message.body.clone();
        if should_compress(message.body.len(), self.compress_over) {
            let (z, bits) = compress(&message.body, self.compression, self.compression_level)
                .map_err(|e| ProducerError::Config {
                    field: "compression",
                    reason: e.to_string(),
                })?;
            // Keep the original when compression does not help (random or already-compressed data).
            if z.len() < message.body.len() {
                sys_flag |= bits;
                body = Bytes::from(z);
            }
        }
        if message.properties.get(property::TRANSACTION_PREPARED) == Some("true") {
            sys_flag |= rmq_protocol::message::sys_flag::TRANSACTION_PREPARED_TYPE;
        }
        Ok(Prepared {
            uniq_key,
            properties,
            body,
            sys_flag,
            trace: self
                .trace_topic
                .as_ref()
                .filter(|t| **t != message.topic)
                .map(|_| TraceFacts::of(message, now_ms())),
            internal: self.trace_topic.as_deref() == Some(message.topic.as_str()),
            topic,
            user_topic,
            flag: message.flag,
            batch: false,
        })
    }

    /// Prepares one batch: every message gets its UNIQ_KEY, the batch its own properties (WAIT only), no
    /// compression. The result's msg id lists the messages' UNIQ_KEYs, comma-separated.
    ///
    /// Unlike Java's `MessageBatch`, the batch gets no UNIQ_KEY of its own: brokers up to 5.3.x (4.9.7
    /// checked) append the batch's properties to every message, so every message would be stored under
    /// the batch's UNIQ_KEY and lose its own. Ordinary batches have no other use for it.
    pub(crate) fn prepare_batch(&self, messages: &[Message]) -> Result<Prepared, ProducerError> {
        let (topic, user_topic) =
            self.topic_names(messages.first().map_or("", |m| m.topic.as_str()))?;
        let mut stamped = Vec::with_capacity(messages.len());
        let mut ids = Vec::with_capacity(messages.len());
        for m in messages {
            let mut m = m.clone();
            m.topic = topic.to_string();
            let id = match m.uniq_key() {
                Some(k) => k.to_owned(),
                None => {
                    let k = String::from(self.ids.next_id(now_ms()));
                    m.properties
                        .insert(property::UNIQ_CLIENT_MESSAGE_ID_KEYIDX, &k);
                    k
                }
            };
            ids.push(id);
            stamped.push(m);
        }
        let body = rmq_protocol::batch::encode_batch(&stamped)?;
        Ok(Prepared {
            uniq_key: MsgId::from(ids.join(",")),
            properties: self.batch_properties(messages.first().is_none_or(Message::wait_store_ok)),
            body,
            sys_flag: 0,
            topic,
            user_topic,
            flag: 0,
            batch: true,
            // Batches are not traced (one record would stand for many messages).
            trace: None,
            internal: false,
        })
    }

    /// The properties of a batch request: `WAIT` only (and `INSTANCE_ID` with a namespace); see
    /// [`Requests::prepare_batch`] for why no UNIQ_KEY, KEYS or TAGS.
    fn batch_properties(&self, wait: bool) -> String {
        let mut props = StringMap::new();
        props.insert_bool(property::WAIT_STORE_MSG_OK, wait);
        if let Some(ns) = &self.namespace {
            props.insert(property::INSTANCE_ID, ns);
        }
        let mut properties = String::new();
        rmq_protocol::message::encode_properties(&props, &mut properties);
        properties
    }

    /// One auto-batch request of `members` (each prepared alone by [`Requests::prepare`], uncompressed,
    /// all to one topic with the same `WAIT`; `record_bytes` of records in all): their records as they
    /// are, the batch's properties as
    /// [`Requests::prepare_batch`] makes them. Not counted as a send (its messages are).
    pub(crate) fn gathered<'p>(
        &self,
        members: impl Iterator<Item = &'p Prepared>,
        record_bytes: usize,
        wait: bool,
    ) -> Result<Prepared, ProducerError> {
        let mut body = bytes::BytesMut::with_capacity(record_bytes);
        let mut first = None;
        for p in members {
            encode_batch_record_parts(p.flag, &p.body, &p.properties, &mut body)?;
            first.get_or_insert(p);
        }
        let first = first.ok_or(ProducerError::State("an empty auto-batch"))?;
        Ok(Prepared {
            uniq_key: first.uniq_key.clone(),
            properties: self.batch_properties(wait),
            body: body.freeze(),
            sys_flag: 0,
            topic: first.topic.clone(),
            user_topic: first.user_topic.clone(),
            flag: 0,
            batch: true,
            trace: None,
            internal: true,
        })
    }

    /// The request of one attempt of `p` to the queue `r`.
    pub(crate) fn request(&self, p: &Prepared, r: &RoutingResult) -> RemotingCommand {
        let header = SendMessageRequestHeaderV2Ref {
            producer_group: &self.group,
            topic: &p.topic,
            default_topic: AUTO_CREATE_TOPIC,
            default_topic_queue_nums: self.default_topic_queue_nums,
            queue_id: r.queue_id(),
            sys_flag: p.sys_flag,
            born_timestamp: now_ms(),
            flag: p.flag,
            properties: Some(&p.properties),
            reconsume_times: Some(0),
            unit_mode: false,
            batch: p.batch,
            max_reconsume_times: None,
            broker_name: Some(r.broker_name()),
        };
        let code = if p.batch {
            RequestCode::SEND_BATCH_MESSAGE
        } else {
            RequestCode::SEND_MESSAGE_V2
        };
        header.to_request(code).with_body(p.body.clone())
    }
}

/// The region of a result whose broker names none (`MSG_REGION` absent), as the Java client says.
const DEFAULT_REGION: &str = "DefaultRegion";

/// The region a broker named (or none): the usual one shared, so a result costs no allocation for it.
fn region(named: Option<String>) -> Name {
    static DEFAULT: std::sync::OnceLock<Name> = std::sync::OnceLock::new();
    match named {
        Some(r) if r != DEFAULT_REGION => Name::from(r),
        _ => DEFAULT.get_or_init(|| Name::from(DEFAULT_REGION)).clone(),
    }
}

/// The result of `p` stored as `receipt` says; `None` for a oneway write.
pub(crate) fn send_result(p: Prepared, receipt: Receipt) -> Option<SendResult> {
    match receipt {
        Receipt::Written => None,
        Receipt::Stored {
            status,
            header: h,
            broker,
            attempts,
            possibly_duplicated,
        } => Some(SendResult {
            status,
            msg_id: p.uniq_key,
            offset_msg_id: h.msg_id,
            topic: Name::from(p.user_topic),
            broker_name: Name::from(broker),
            queue_id: h.queue_id,
            queue_offset: h.queue_offset,
            transaction_id: h.transaction_id,
            recall_handle: h.recall_handle,
            region_id: region(h.region),
            attempts,
            possibly_duplicated,
        }),
    }
}
