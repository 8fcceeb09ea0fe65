//! What a RocketMQ 5.x proxy (rocketmq-proxy, remoting port) answers that a broker does not: the
//! message-type refusal of its `enableTopicMessageTypeCheck` (on by default).
//!
//! The proxy classifies each message as TRANSACTION (`TRAN_MSG=true`), DELAY (a delay level or timer
//! property), FIFO (a sharding key) or NORMAL, and refuses it with code 13 (MESSAGE_ILLEGAL) and the remark
//! `TopicMessageType validate failed, the expected type is X, but actual type is Y` when the topic's
//! `message.type` attribute says otherwise (`DefaultTopicMessageTypeValidator`). A topic the proxy does not
//! know, or one created without a type, is expected to be `UNSPECIFIED`, so the proxy refuses every message
//! to an auto-created topic.

use crate::ResponseCode;

/// A message-type refusal: the topic's type and the message's, as the proxy names them (`NORMAL`, `FIFO`,
/// `DELAY`, `TRANSACTION`, `UNSPECIFIED`, `MIXED`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeMismatch {
    /// The topic's message type (`UNSPECIFIED` for a topic the proxy does not know or that has none).
    pub expected: String,
    /// The message's type.
    pub actual: String,
}

const PREFIX: &str = "TopicMessageType validate failed, the expected type is ";
const MIDDLE: &str = ", but actual type is ";

/// The message-type refusal in a response, if it is one (code 13 with the proxy's remark).
pub fn type_mismatch(code: ResponseCode, remark: Option<&str>) -> Option<TypeMismatch> {
    if code != ResponseCode::MESSAGE_ILLEGAL {
        return None;
    }
    let rest = remark?.trim().strip_prefix(PREFIX)?;
    let (expected, actual) = rest.split_once(MIDDLE)?;
    let word = |s: &str| {
        let s = s.trim();
        (!s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
            .then(|| s.to_owned())
    };
    Some(TypeMismatch {
        expected: word(expected)?,
        actual: word(actual)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_proxy_remark_is_read() {
        // As DefaultTopicMessageTypeValidator formats it (rocketmq-proxy 5.5.0, seen here).
        let r = "TopicMessageType validate failed, the expected type is FIFO, but actual type is NORMAL";
        assert_eq!(
            type_mismatch(ResponseCode::MESSAGE_ILLEGAL, Some(r)),
            Some(TypeMismatch {
                expected: "FIFO".into(),
                actual: "NORMAL".into()
            })
        );
        assert_eq!(type_mismatch(ResponseCode::SYSTEM_ERROR, Some(r)), None);
        assert_eq!(
            type_mismatch(ResponseCode::MESSAGE_ILLEGAL, Some("body too long")),
            None
        );
        assert_eq!(type_mismatch(ResponseCode::MESSAGE_ILLEGAL, None), None);
        let odd =
            "TopicMessageType validate failed, the expected type is , but actual type is NORMAL";
        assert_eq!(
            type_mismatch(ResponseCode::MESSAGE_ILLEGAL, Some(odd)),
            None
        );
    }
}
