//! Errors of the protocol layer. Every refusal names what was wrong and, where it helps, the limit.

use thiserror::Error;

/// Bytes from the network (or from a file) that cannot be decoded.
///
/// Decoders return this instead of panicking, whatever the input.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// The frame's declared length exceeds the configured limit; nothing was allocated for it.
    #[error("frame too large: limit {limit} bytes, declared {declared}")]
    FrameTooLarge {
        /// The configured maximum frame length.
        limit: usize,
        /// The length the frame declared.
        declared: usize,
    },
    /// The frame's declared length cannot hold even the header-length word.
    #[error("frame length {0} is smaller than the 4-byte header-length word")]
    FrameTooShort(usize),
    /// The header length does not fit inside the frame.
    #[error("header length {header} exceeds the {available} bytes left in the frame")]
    HeaderLengthOutOfRange {
        /// Declared header length.
        header: usize,
        /// Bytes available after the header-length word.
        available: usize,
    },
    /// The serialize type byte is neither JSON (0) nor ROCKETMQ (1).
    #[error("unknown header serialize type {0}")]
    UnknownSerializeType(u8),
    /// The bytes end before a field does.
    #[error("truncated {what}: need {needed} more bytes, have {available}")]
    Truncated {
        /// What was being read.
        what: &'static str,
        /// Bytes the field needs.
        needed: usize,
        /// Bytes left.
        available: usize,
    },
    /// A length field is negative or larger than what contains it.
    #[error("invalid length {length} for {what}")]
    InvalidLength {
        /// What the length describes.
        what: &'static str,
        /// The length read.
        length: i64,
    },
    /// Text that must be UTF-8 is not.
    #[error("{what} is not valid UTF-8")]
    InvalidUtf8 {
        /// What was being read.
        what: &'static str,
    },
    /// Bytes left over after a structure that must consume everything.
    #[error("{count} trailing bytes after {what}")]
    TrailingBytes {
        /// What was decoded.
        what: &'static str,
        /// Bytes left.
        count: usize,
    },
    /// A JSON document (header, route, heartbeat) could not be parsed.
    #[error("invalid JSON in {what}: {message}")]
    Json {
        /// What was being parsed.
        what: &'static str,
        /// serde_json's description, with line and column.
        message: String,
    },
    /// A message id is not valid hex of a known length.
    #[error("invalid message id {id:?}: {reason}")]
    InvalidMessageId {
        /// The id as received (cut to 64 characters).
        id: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// A store-format record's magic code is not one of the message magic codes.
    #[error("unknown message magic code {0:#010x}")]
    UnknownMagicCode(u32),
    /// A compressed body could not be decompressed.
    #[error("cannot decompress body ({kind}): {message}")]
    Decompress {
        /// The compression type named by the sysFlag.
        kind: &'static str,
        /// What the decompressor said.
        message: String,
    },
    /// Decompression would produce more than the allowed bytes (a compression bomb, or a limit too low).
    #[error("decompressed body exceeds the limit of {limit} bytes")]
    DecompressedTooLarge {
        /// The limit that was passed in.
        limit: usize,
    },
    /// The sysFlag names a compression type this build does not support.
    #[error("unsupported compression in sysFlag {sys_flag:#x}{hint}")]
    UnsupportedCompression {
        /// The sysFlag.
        sys_flag: i32,
        /// How to enable it, if it is a feature.
        hint: &'static str,
    },
}

/// A command cannot be encoded as asked.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EncodeError {
    /// The binary header stores the code as a signed 16-bit integer.
    #[error("code {0} does not fit the ROCKETMQ binary header's 16-bit code field; use JSON")]
    CodeOutOfRange(i32),
    /// The binary header stores the version as a signed 16-bit integer.
    #[error("version {0} does not fit the ROCKETMQ binary header's 16-bit version field")]
    VersionOutOfRange(i32),
    /// A string in the binary header is longer than its length field can say.
    #[error("{what} of {len} bytes does not fit its {max}-byte length field")]
    FieldTooLong {
        /// Which string.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The most the field can hold.
        max: usize,
    },
    /// The header is larger than the 24-bit header-length field.
    #[error("header of {0} bytes exceeds the 24-bit header length field (16 MiB)")]
    HeaderTooLarge(usize),
    /// The frame is larger than the limit.
    #[error("frame of {len} bytes exceeds the limit of {limit}")]
    FrameTooLarge {
        /// The frame's length.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// A body could not be compressed.
    #[error("cannot compress body: {0}")]
    Compress(String),
}

/// A typed header cannot be read from a command's ext fields.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HeaderError {
    /// A required field is absent.
    #[error("{header}: required field `{field}` is missing")]
    Missing {
        /// The header type.
        header: &'static str,
        /// The ext field key.
        field: &'static str,
    },
    /// A field is present but does not parse as its type.
    #[error("{header}: field `{field}` = {value:?} is not a valid {expected}")]
    Invalid {
        /// The header type.
        header: &'static str,
        /// The ext field key.
        field: &'static str,
        /// The value (cut to 64 characters).
        value: String,
        /// The expected type.
        expected: &'static str,
    },
}

/// A message, topic, group or property refused before anything is sent.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ValidationError {
    /// The topic is empty or only whitespace.
    #[error("topic is blank")]
    BlankTopic,
    /// The topic is longer than 127 characters.
    #[error("topic {topic:?} is {len} characters long; the limit is {max}")]
    TopicTooLong {
        /// The topic (cut to 64 characters).
        topic: String,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The topic has a character outside `%|a-zA-Z0-9_-`.
    #[error("topic {topic:?} contains {ch:?}; only the characters %|a-zA-Z0-9_- are allowed")]
    TopicIllegalChar {
        /// The topic (cut to 64 characters).
        topic: String,
        /// The first illegal character.
        ch: char,
    },
    /// Sending to this system topic is forbidden.
    #[error("sending to topic {0:?} is forbidden: it is a broker-internal system topic")]
    TopicForbidden(String),
    /// The producer group is empty or only whitespace.
    #[error("producer group is blank")]
    BlankGroup,
    /// A delay property is not the number brokers parse it as (`DELAY` an int, `TIMER_*` a long).
    #[error("{property}={value:?} is not a number; brokers refuse or ignore it")]
    DelayValue {
        /// The property.
        property: &'static str,
        /// Its value (cut to 64 characters).
        value: String,
    },
    /// A recall handle cannot be read.
    #[error("recall handle {handle:?} is invalid: {reason}")]
    RecallHandle {
        /// The handle (cut to 64 characters).
        handle: String,
        /// Why.
        reason: &'static str,
    },
    /// A transactional message asks for delayed delivery (`DELAY` or a `TIMER_*` property), which
    /// brokers do not support for half messages.
    #[error("transactional messages do not support delayed delivery (DELAY or TIMER_* is set)")]
    DelayedTransaction,
    /// A namespace is blank, longer than 64 characters, or has a character outside `a-zA-Z0-9_-`.
    #[error("namespace {ns:?} is invalid: use 1 to 64 characters of a-zA-Z0-9_-")]
    Namespace {
        /// The namespace (cut to 64 characters).
        ns: String,
    },
    /// The producer group is longer than the limit.
    #[error("producer group {group:?} is {len} characters long; the limit is {max}")]
    GroupTooLong {
        /// The group (cut to 64 characters).
        group: String,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The producer group has a character outside `%|a-zA-Z0-9_-`.
    #[error(
        "producer group {group:?} contains {ch:?}; only the characters %|a-zA-Z0-9_- are allowed"
    )]
    GroupIllegalChar {
        /// The group (cut to 64 characters).
        group: String,
        /// The first illegal character.
        ch: char,
    },
    /// The producer group is reserved.
    #[error("producer group {0:?} is reserved; choose your own group name")]
    GroupReserved(String),
    /// The body is empty.
    #[error("message body is empty")]
    EmptyBody,
    /// The priority property is not a non-negative integer.
    #[error("priority {0:?} is not a non-negative integer")]
    Priority(String),
    /// The lite topic name is not one brokers and lite consumers accept.
    #[error("lite topic {name:?} is invalid: {reason}")]
    LiteTopic {
        /// The name (cut to 64 characters).
        name: String,
        /// Why.
        reason: &'static str,
    },
    /// The message asks for two kinds of delivery that cannot go together (a broker would keep one and
    /// silently drop the other).
    #[error(
        "a message cannot be both {first} and {second}: the broker would silently drop the {first} part"
    )]
    Conflict {
        /// The kind the broker would drop.
        first: &'static str,
        /// The kind it would keep.
        second: &'static str,
    },
    /// The body is larger than the maximum message size.
    #[error("message body is {len} bytes; the limit is {max} bytes")]
    BodyTooLarge {
        /// Body length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The encoded properties exceed 32767 bytes, which the broker refuses.
    #[error("encoded properties are {len} bytes; the broker refuses more than {max}")]
    PropertiesTooLarge {
        /// Encoded length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A property name is blank.
    #[error("property name is blank")]
    BlankPropertyName,
    /// A property value is blank (Java drops such a property on decode).
    #[error("property {0:?} has a blank value")]
    BlankPropertyValue(String),
    /// A property name or value contains the separators `\x01` or `\x02`, which would corrupt the encoding.
    #[error("property {name:?}: the {part} contains the reserved separator byte {byte:#04x}")]
    PropertySeparator {
        /// The property name (cut to 64 characters).
        name: String,
        /// `"name"` or `"value"`.
        part: &'static str,
        /// The separator found.
        byte: u8,
    },
    /// A user property uses a name reserved by RocketMQ.
    #[error(
        "property name {0:?} is reserved by RocketMQ; use the message's own setter or another name"
    )]
    ReservedPropertyName(String),
    /// Messages of a batch disagree in something a batch must share, or carry what a batch cannot.
    #[error("invalid batch: {0}")]
    Batch(&'static str),
}

/// Cuts a string for an error message.
pub(crate) fn cut(s: &str) -> String {
    const MAX: usize = 64;
    if s.len() <= MAX {
        return s.to_owned();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}
