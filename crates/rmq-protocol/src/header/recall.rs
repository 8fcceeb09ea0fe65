//! RECALL_MESSAGE (370, brokers 5.3.2+): withdraw a timer message before its time, by the recall handle
//! its send returned (protocol-features.md §3).

use base64::Engine as _;

use super::{CommandHeader, Fields, RequestHeader, put_opt};
use crate::code::RequestCode;
use crate::error::{HeaderError, ValidationError, cut};
use crate::map::StringMap;

/// `RecallMessageRequestHeader`, sent to the master of the handle's broker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecallMessageRequestHeader {
    /// The producer group (optional).
    pub producer_group: Option<String>,
    /// The topic; must be the handle's.
    pub topic: String,
    /// The handle from the send result.
    pub recall_handle: String,
    /// The handle's broker (`bname`).
    pub broker_name: Option<String>,
}

impl CommandHeader for RecallMessageRequestHeader {
    fn write_fields(&self, ext: &mut StringMap) {
        put_opt(ext, "producerGroup", self.producer_group.as_deref());
        ext.insert("topic", &self.topic);
        ext.insert("recallHandle", &self.recall_handle);
        put_opt(ext, "bname", self.broker_name.as_deref());
    }

    fn read_fields(ext: &StringMap) -> Result<Self, HeaderError> {
        let f = Fields::new(ext, "RecallMessageRequestHeader");
        Ok(RecallMessageRequestHeader {
            producer_group: f.opt_str("producerGroup"),
            topic: f.str("topic")?,
            recall_handle: f.str("recallHandle")?,
            broker_name: f.opt_str("bname"),
        })
    }
}

impl RequestHeader for RecallMessageRequestHeader {
    const CODE: RequestCode = RequestCode::RECALL_MESSAGE;
}

/// What a recall handle names: `base64url("v1 <topic> <broker> <deliver ms + 1> <UNIQ_KEY>")`, padded
/// (Java's `Base64.getUrlEncoder()`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecallHandle {
    /// The message's topic.
    pub topic: String,
    /// The broker that holds it.
    pub broker_name: String,
    /// When it is due (ms since the epoch, plus one).
    pub timestamp_ms: i64,
    /// Its UNIQ_KEY.
    pub message_id: String,
}

impl RecallHandle {
    /// Reads `handle`; anything but a v1 handle is an error.
    pub fn decode(handle: &str) -> Result<RecallHandle, ValidationError> {
        let bad = |why: &'static str| ValidationError::RecallHandle {
            handle: cut(handle),
            reason: why,
        };
        let raw = base64::engine::general_purpose::URL_SAFE
            .decode(handle)
            .map_err(|_| bad("not base64url"))?;
        let text = String::from_utf8(raw).map_err(|_| bad("not text"))?;
        let parts: Vec<&str> = text.split(' ').collect();
        let [version, topic, broker, ts, id] = parts[..] else {
            return Err(bad("not 5 fields"));
        };
        if version != "v1" {
            return Err(bad("not a v1 handle"));
        }
        Ok(RecallHandle {
            topic: topic.to_owned(),
            broker_name: broker.to_owned(),
            timestamp_ms: ts.parse().map_err(|_| bad("bad timestamp"))?,
            message_id: id.to_owned(),
        })
    }

    /// The handle text.
    pub fn encode(&self) -> String {
        base64::engine::general_purpose::URL_SAFE.encode(format!(
            "v1 {} {} {} {}",
            self.topic, self.broker_name, self.timestamp_ms, self.message_id
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_handle_seen_on_5_5_0_decodes() {
        // protocol-features.md §3: "v1 PfxDelay6742 pfx-broker-55 1795594912001 FD0000…0004".
        let h = RecallHandle {
            topic: "PfxDelay6742".into(),
            broker_name: "pfx-broker-55".into(),
            timestamp_ms: 1_795_594_912_001,
            message_id: "FD00000000000000000000000000000000000000000000000004".into(),
        };
        let text = h.encode();
        assert!(
            text.starts_with("djEgUGZ4RGVsYXk2NzQyIHBmeC1icm9rZXItNTUg"),
            "{text}"
        );
        assert_eq!(RecallHandle::decode(&text).unwrap(), h);
        for bad in [
            "",
            "!!!",
            "djEgb25seQ==",
            &base64::engine::general_purpose::URL_SAFE.encode("v2 a b 1 c"),
        ] {
            assert!(RecallHandle::decode(bad).is_err(), "{bad}");
        }
    }
}
