//! Wire codes as open enums: request codes, response codes, language codes, serialize types and the
//! MQVersion ordinal.
//!
//! Each type is a transparent newtype over the wire integer with associated constants for the known values,
//! so a code this crate has never heard of still decodes, compares and re-encodes unchanged. `Debug` and
//! `Display` print the Java constant name when known and the number otherwise.

use std::fmt;

/// Declares an open enum: a newtype over an integer with named constants and a `name()` lookup.
macro_rules! open_enum {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident($inner:ty) {
            $( $(#[$cmeta:meta])* $const:ident = $value:expr, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
        $vis struct $name(pub $inner);

        impl $name {
            $( $(#[$cmeta])* pub const $const: $name = $name($value); )*

            /// The Java constant name of this value, or `None` for a value this crate does not know.
            pub fn name(self) -> Option<&'static str> {
                match self.0 {
                    $( $value => Some(stringify!($const)), )*
                    _ => None,
                }
            }

            /// The value whose Java constant name is `name`, if known.
            pub fn from_name(name: &str) -> Option<Self> {
                match name {
                    $( stringify!($const) => Some(Self::$const), )*
                    _ => None,
                }
            }

            /// Whether this value has a named constant here.
            pub fn is_known(self) -> bool {
                self.name().is_some()
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.name() {
                    Some(n) => write!(f, "{}({})", n, self.0),
                    None => write!(f, "{}({})", stringify!($name), self.0),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.name() {
                    Some(n) => f.write_str(n),
                    None => write!(f, "{}", self.0),
                }
            }
        }

        impl From<$inner> for $name {
            fn from(v: $inner) -> Self {
                $name(v)
            }
        }

        impl From<$name> for $inner {
            fn from(v: $name) -> Self {
                v.0
            }
        }
    };
}

open_enum! {
    /// A request code (`RequestCode.java`): what a request asks the other side to do.
    pub struct RequestCode(i32) {
        /// Send one message with the V1 header (only when Java's `sendSmartMsg=false`).
        SEND_MESSAGE = 10,
        /// Pull messages (consumer).
        PULL_MESSAGE = 11,
        /// Query messages by key.
        QUERY_MESSAGE = 12,
        /// Query a consumer offset.
        QUERY_CONSUMER_OFFSET = 14,
        /// Update a consumer offset.
        UPDATE_CONSUMER_OFFSET = 15,
        /// Admin: create or update a topic.
        UPDATE_AND_CREATE_TOPIC = 17,
        /// Max offset of a queue; the Java client's latency detector probes with it.
        GET_MAX_OFFSET = 30,
        /// Min offset of a queue.
        GET_MIN_OFFSET = 31,
        /// View a message by its offset msgId.
        VIEW_MESSAGE_BY_ID = 33,
        /// Client heartbeat to a broker (JSON `HeartbeatData` body).
        HEART_BEAT = 34,
        /// Client leaves a broker.
        UNREGISTER_CLIENT = 35,
        /// Consumer sends a message back for retry.
        CONSUMER_SEND_MSG_BACK = 36,
        /// Commit or roll back a half message (oneway).
        END_TRANSACTION = 37,
        /// Consumers of a group.
        GET_CONSUMER_LIST_BY_GROUP = 38,
        /// Broker asks a producer for a transaction's state (oneway, broker to client).
        CHECK_TRANSACTION_STATE = 39,
        /// Broker tells consumers that the group changed.
        NOTIFY_CONSUMER_IDS_CHANGED = 40,
        /// Broker registers at a name server.
        REGISTER_BROKER = 103,
        /// Broker leaves a name server.
        UNREGISTER_BROKER = 104,
        /// Route of a topic, from a name server.
        GET_ROUTEINFO_BY_TOPIC = 105,
        /// Cluster information, from a name server.
        GET_BROKER_CLUSTER_INFO = 106,
        /// Reset a consumer's offsets (broker to client).
        RESET_CONSUMER_CLIENT_OFFSET = 220,
        /// Consumer status (broker to client).
        GET_CONSUMER_STATUS_FROM_CLIENT = 221,
        /// Consumer running info (broker to client).
        GET_CONSUMER_RUNNING_INFO = 307,
        /// Consume one message directly (broker to client).
        CONSUME_MESSAGE_DIRECTLY = 309,
        /// Send one message with the V2 (short-name) header: the default send.
        SEND_MESSAGE_V2 = 310,
        /// Send a batch of messages (V2 header, batch body).
        SEND_BATCH_MESSAGE = 320,
        /// Send a reply message (V1 header).
        SEND_REPLY_MESSAGE = 324,
        /// Send a reply message (V2 header).
        SEND_REPLY_MESSAGE_V2 = 325,
        /// Broker pushes a reply to the requesting client.
        PUSH_REPLY_MESSAGE_TO_CLIENT = 326,
        /// Recall a delayed message (5.3.2+).
        RECALL_MESSAGE = 370,
    }
}

open_enum! {
    /// A response code (`RemotingSysResponseCode.java`, `ResponseCode.java`).
    pub struct ResponseCode(i32) {
        /// Success.
        SUCCESS = 0,
        /// Generic server error. Java retries sends on it.
        SYSTEM_ERROR = 1,
        /// The server is busy (flow control). Java retries sends on it.
        SYSTEM_BUSY = 2,
        /// The server has no processor for the request code.
        REQUEST_CODE_NOT_SUPPORTED = 3,
        /// Transaction failed.
        TRANSACTION_FAILED = 4,
        /// Stored, but flushing to disk timed out (degraded success).
        FLUSH_DISK_TIMEOUT = 10,
        /// Stored, but no slave is available (degraded success).
        SLAVE_NOT_AVAILABLE = 11,
        /// Stored, but replication to the slave timed out (degraded success).
        FLUSH_SLAVE_TIMEOUT = 12,
        /// The message was refused (size, properties, topic).
        MESSAGE_ILLEGAL = 13,
        /// The broker does not take writes now. Java retries sends on it.
        SERVICE_NOT_AVAILABLE = 14,
        /// Version not supported.
        VERSION_NOT_SUPPORTED = 15,
        /// No permission (topic not writable, forbidden topic). Java retries sends on it.
        NO_PERMISSION = 16,
        /// The topic does not exist. Java retries sends on it.
        TOPIC_NOT_EXIST = 17,
        /// The topic exists already.
        TOPIC_EXIST_ALREADY = 18,
        /// Pull: nothing found.
        PULL_NOT_FOUND = 19,
        /// Pull: retry at once.
        PULL_RETRY_IMMEDIATELY = 20,
        /// Pull: offset moved.
        PULL_OFFSET_MOVED = 21,
        /// Query: nothing found.
        QUERY_NOT_FOUND = 22,
        /// Invalid request parameter.
        INVALID_PARAMETER = 29,
        /// Transaction should commit.
        TRANSACTION_SHOULD_COMMIT = 200,
        /// Transaction should roll back.
        TRANSACTION_SHOULD_ROLLBACK = 201,
        /// Transaction state unknown.
        TRANSACTION_STATE_UNKNOW = 202,
        /// Transaction check from the wrong group.
        TRANSACTION_STATE_GROUP_WRONG = 203,
        /// No buyer id. Java retries sends on it.
        NO_BUYER_ID = 204,
        /// Not in the current unit. Java retries sends on it.
        NOT_IN_CURRENT_UNIT = 205,
        /// Consumer not online.
        CONSUMER_NOT_ONLINE = 206,
        /// Consume timed out.
        CONSUME_MSG_TIMEOUT = 207,
        /// No message.
        NO_MESSAGE = 208,
        /// The broker does not exist.
        BROKER_NOT_EXIST = 211,
        /// Flow control.
        FLOW_CONTROL = 215,
        /// Not the leader for the queue.
        NOT_LEADER_FOR_QUEUE = 501,
        /// Illegal operation.
        ILLEGAL_OPERATION = 604,
        /// The server is shutting down; go elsewhere. Java retries sends on it.
        GO_AWAY = 1500,
    }
}

impl ResponseCode {
    /// The codes on which the Java producer (5.x) retries a SYNC send on another broker
    /// (`DefaultMQProducer.retryResponseCodes`).
    pub const JAVA_RETRYABLE: [ResponseCode; 8] = [
        ResponseCode::TOPIC_NOT_EXIST,
        ResponseCode::SERVICE_NOT_AVAILABLE,
        ResponseCode::SYSTEM_ERROR,
        ResponseCode::SYSTEM_BUSY,
        ResponseCode::NO_PERMISSION,
        ResponseCode::NO_BUYER_ID,
        ResponseCode::NOT_IN_CURRENT_UNIT,
        ResponseCode::GO_AWAY,
    ];

    /// Whether the Java producer retries a send that got this code.
    pub fn is_java_retryable(self) -> bool {
        Self::JAVA_RETRYABLE.contains(&self)
    }

    /// Whether a send answered with this code stored the message although flushing or replication is
    /// degraded (10, 11, 12).
    pub fn is_degraded_success(self) -> bool {
        matches!(
            self,
            ResponseCode::FLUSH_DISK_TIMEOUT
                | ResponseCode::SLAVE_NOT_AVAILABLE
                | ResponseCode::FLUSH_SLAVE_TIMEOUT
        )
    }
}

open_enum! {
    /// The language of the peer (`LanguageCode.java`). JSON headers carry the name, binary headers the byte.
    pub struct LanguageCode(u8) {
        /// Java.
        JAVA = 0,
        /// C++.
        CPP = 1,
        /// .NET.
        DOTNET = 2,
        /// Python.
        PYTHON = 3,
        /// Delphi.
        DELPHI = 4,
        /// Erlang.
        ERLANG = 5,
        /// Ruby.
        RUBY = 6,
        /// Other.
        OTHER = 7,
        /// HTTP.
        HTTP = 8,
        /// Go.
        GO = 9,
        /// PHP.
        PHP = 10,
        /// OMS.
        OMS = 11,
        /// Rust (known to servers since 4.9.4). What rmq sends.
        RUST = 12,
        /// Node.js (5.3.2+).
        NODE_JS = 13,
    }
}

open_enum! {
    /// How a frame's header is serialized (the high byte of the frame's second word).
    pub struct SerializeType(u8) {
        /// fastjson JSON text (Java's default).
        JSON = 0,
        /// RocketMQ's compact binary header.
        ROCKETMQ = 1,
    }
}

open_enum! {
    /// An `MQVersion.Version` ordinal, carried in every command's `version` field.
    ///
    /// Only a few ordinals have constants; [`MqVersion::release`] computes the rest of 4.x and 5.x.
    pub struct MqVersion(i32) {
        /// 4.5.2, what rocketmq-client-go v2 sends.
        V4_5_2 = 317,
        /// 4.9.3: the last version whose route requests get fastjson's non-standard JSON.
        V4_9_3 = 399,
        /// 4.9.4: name servers answer route requests from this version on with standard JSON.
        V4_9_4 = 401,
        /// 5.0.0.
        V5_0_0 = 413,
        /// 5.1.0 (the V2 send header gains `n`, the broker name).
        V5_1_0 = 433,
        /// 5.1.4.
        V5_1_4 = 441,
        /// 5.2.0.
        V5_2_0 = 453,
        /// 5.3.0.
        V5_3_0 = 473,
        /// 5.3.1: servers answer GO_AWAY only to versions above this one.
        V5_3_1 = 475,
        /// 5.3.2.
        V5_3_2 = 477,
        /// 5.3.3.
        V5_3_3 = 479,
    }
}

impl MqVersion {
    /// The version rmq advertises: 5.3.3. It is at least [`MqVersion::V4_9_4`], so name servers answer
    /// route requests with standard JSON, and above [`MqVersion::V5_3_1`], so a closing server says GO_AWAY.
    pub const CURRENT: MqVersion = MqVersion::V5_3_3;

    /// The ordinal of release `major.minor.patch` for 4.x and 5.x (each digit 0..=9), following the enum's
    /// layout where every release follows its `_SNAPSHOT`: `V4_x_y = 213 + 2*(10x+y)`,
    /// `V5_x_y = 413 + 2*(10x+y)`. `None` outside that range.
    pub const fn release(major: u8, minor: u8, patch: u8) -> Option<MqVersion> {
        if minor > 9 || patch > 9 {
            return None;
        }
        let step = 2 * (10 * minor as i32 + patch as i32);
        match major {
            4 => Some(MqVersion(213 + step)),
            5 => Some(MqVersion(413 + step)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_codes_round_trip_and_print_numbers() {
        let c = RequestCode(4242);
        assert!(!c.is_known());
        assert_eq!(i32::from(c), 4242);
        assert_eq!(format!("{c:?}"), "RequestCode(4242)");
        assert_eq!(
            format!("{}", RequestCode::SEND_MESSAGE_V2),
            "SEND_MESSAGE_V2"
        );
        assert_eq!(format!("{:?}", ResponseCode::GO_AWAY), "GO_AWAY(1500)");
        assert_eq!(LanguageCode::from_name("RUST"), Some(LanguageCode(12)));
        assert_eq!(LanguageCode::from_name("COBOL"), None);
    }

    #[test]
    fn release_ordinals_match_the_java_enum() {
        // Values from shared/vectors/mqversion_ordinals.txt.
        assert_eq!(MqVersion::release(4, 0, 0), Some(MqVersion(213)));
        assert_eq!(MqVersion::release(4, 5, 2), Some(MqVersion::V4_5_2));
        assert_eq!(MqVersion::release(4, 9, 4), Some(MqVersion::V4_9_4));
        assert_eq!(MqVersion::release(5, 1, 4), Some(MqVersion::V5_1_4));
        assert_eq!(MqVersion::release(5, 3, 3), Some(MqVersion::V5_3_3));
        assert_eq!(MqVersion::release(5, 9, 9), Some(MqVersion(611)));
        assert_eq!(MqVersion::release(3, 0, 0), None);
        assert!(MqVersion::CURRENT >= MqVersion::V4_9_4);
    }

    #[test]
    fn retry_and_degraded_sets() {
        for c in [1, 2, 14, 16, 17, 204, 205, 1500] {
            assert!(ResponseCode(c).is_java_retryable(), "{c}");
        }
        for c in [0, 3, 10, 11, 12, 13, 29] {
            assert!(!ResponseCode(c).is_java_retryable(), "{c}");
        }
        for c in [10, 11, 12] {
            assert!(ResponseCode(c).is_degraded_success());
        }
        assert!(!ResponseCode::SUCCESS.is_degraded_success());
    }
}
