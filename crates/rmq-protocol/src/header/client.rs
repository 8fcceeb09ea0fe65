//! HEART_BEAT (34) body and UNREGISTER_CLIENT (35) header.

use serde::{Deserialize, Serialize};

use super::{CommandHeader, Fields, RequestHeader, put_opt};
use crate::code::RequestCode;
use crate::error::{DecodeError, HeaderError};
use crate::map::StringMap;

/// One producer group in a heartbeat.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProducerData {
    /// The producer group.
    #[serde(rename = "groupName")]
    pub group_name: String,
}

/// `HeartbeatData`, the JSON body of HEART_BEAT. Members are declared in fastjson's sorted order, so the
/// output matches Java's member order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HeartbeatData {
    /// The client id (`ip@instance`).
    #[serde(rename = "clientID")]
    pub client_id: String,
    /// Consumer groups; a producer sends an empty list. Kept as raw JSON.
    #[serde(rename = "consumerDataSet", default)]
    pub consumer_data_set: Vec<serde_json::Value>,
    /// Heartbeat-V2 fingerprint; 0 keeps brokers on the V1 path.
    #[serde(rename = "heartbeatFingerprint", default)]
    pub heartbeat_fingerprint: i64,
    /// Producer groups.
    #[serde(rename = "producerDataSet", default)]
    pub producer_data_set: Vec<ProducerData>,
    /// Whether consumer subscriptions are left out (V2).
    #[serde(rename = "withoutSub", default)]
    pub without_sub: bool,
}

impl HeartbeatData {
    /// A producer heartbeat for `client_id` listing `groups`.
    pub fn producer(
        client_id: impl Into<String>,
        groups: impl IntoIterator<Item = String>,
    ) -> Self {
        HeartbeatData {
            client_id: client_id.into(),
            consumer_data_set: Vec::new(),
            heartbeat_fingerprint: 0,
            producer_data_set: groups
                .into_iter()
                .map(|group_name| ProducerData { group_name })
                .collect(),
            without_sub: false,
        }
    }

    /// The JSON body.
    pub fn encode(&self) -> Vec<u8> {
        // Serializing plain strings, numbers and already-valid JSON values into a Vec cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Parses a heartbeat body leniently (unknown members ignored, lists may be missing).
    pub fn decode(body: &[u8]) -> Result<Self, DecodeError> {
        serde_json::from_slice(body).map_err(|e| DecodeError::Json {
            what: "HeartbeatData",
            message: e.to_string(),
        })
    }
}

/// `UnregisterClientRequestHeader`, sent to every broker on shutdown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnregisterClientRequestHeader {
    /// The client id.
    pub client_id: String,
    /// The producer group leaving.
    pub producer_group: Option<String>,
    /// The consumer group leaving.
    pub consumer_group: Option<String>,
}

impl CommandHeader for UnregisterClientRequestHeader {
    fn write_fields(&self, ext: &mut StringMap) {
        ext.insert("clientID", &self.client_id);
        put_opt(ext, "producerGroup", self.producer_group.as_deref());
        put_opt(ext, "consumerGroup", self.consumer_group.as_deref());
    }

    fn read_fields(ext: &StringMap) -> Result<Self, HeaderError> {
        let f = Fields::new(ext, "UnregisterClientRequestHeader");
        Ok(UnregisterClientRequestHeader {
            client_id: f.str("clientID")?,
            producer_group: f.opt_str("producerGroup"),
            consumer_group: f.opt_str("consumerGroup"),
        })
    }
}

impl RequestHeader for UnregisterClientRequestHeader {
    const CODE: RequestCode = RequestCode::UNREGISTER_CLIENT;
}
