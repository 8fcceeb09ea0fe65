//! [`RemotingCommand`]: one request or response, and its frame encoding and incremental decoding.
//!
//! ```text
//! int32 totalLength = 4 + headerLength + bodyLength   (big-endian, excludes itself)
//! int32 serializeType << 24 | headerLength            (24-bit header length)
//! header (JSON text or ROCKETMQ binary)
//! body
//! ```

mod binary;
mod json;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::code::{LanguageCode, MqVersion, RequestCode, ResponseCode, SerializeType};
use crate::error::{DecodeError, EncodeError, HeaderError};
use crate::header::CommandHeader;
use crate::map::StringMap;

/// Flag bit 0: the command is a response.
pub const FLAG_RESPONSE: i32 = 1;
/// Flag bit 1: the request is oneway (no response will come).
pub const FLAG_ONEWAY: i32 = 2;
/// The default largest frame a decoder accepts: 16 MiB, as Java's `NettyDecoder`.
pub const DEFAULT_MAX_FRAME: usize = 16 * 1024 * 1024;
/// Largest header the 24-bit header-length field can describe.
pub const MAX_HEADER_LEN: usize = 0x00FF_FFFF;

/// One remoting command: a request (flag bit 0 clear) or a response (bit 0 set).
///
/// `code` is a [`RequestCode`] in requests and a [`ResponseCode`] in responses; both are kept as the raw
/// wire integer so nothing is lost. `serialize_type` is the header type the command is encoded with, and
/// after decoding, the type it arrived with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemotingCommand {
    /// Request or response code.
    pub code: i32,
    /// Language of the sender. rmq sends [`LanguageCode::RUST`].
    pub language: LanguageCode,
    /// The sender's MQVersion ordinal.
    pub version: MqVersion,
    /// Request id; a response echoes the request's.
    pub opaque: i32,
    /// Flag bits: [`FLAG_RESPONSE`], [`FLAG_ONEWAY`].
    pub flag: i32,
    /// Free text, mostly error descriptions in responses.
    pub remark: Option<String>,
    /// Header fields.
    pub ext_fields: StringMap,
    /// Body bytes; empty when there is none.
    pub body: Bytes,
    /// Header encoding used by [`RemotingCommand::encode`].
    pub serialize_type: SerializeType,
}

impl Default for RemotingCommand {
    fn default() -> Self {
        RemotingCommand {
            code: 0,
            language: LanguageCode::RUST,
            version: MqVersion::CURRENT,
            opaque: 0,
            flag: 0,
            remark: None,
            ext_fields: StringMap::new(),
            body: Bytes::new(),
            serialize_type: SerializeType::JSON,
        }
    }
}

impl RemotingCommand {
    /// A request with `code`, language RUST, version [`MqVersion::CURRENT`], JSON header, opaque 0.
    pub fn request(code: RequestCode) -> Self {
        RemotingCommand {
            code: code.0,
            ..Default::default()
        }
    }

    /// A request whose ext fields are filled from `header`.
    pub fn with_header<H: CommandHeader>(code: RequestCode, header: &H) -> Self {
        let mut cmd = Self::request(code);
        // Room for a send header (14 fields with properties) without regrowing.
        cmd.ext_fields = StringMap::with_capacity(16, 256);
        header.write_fields(&mut cmd.ext_fields);
        cmd
    }

    /// A response with `code` and `remark` (flag [`FLAG_RESPONSE`]).
    pub fn response(code: ResponseCode, remark: Option<String>) -> Self {
        RemotingCommand {
            code: code.0,
            flag: FLAG_RESPONSE,
            remark,
            ..Default::default()
        }
    }

    /// A response to `request`: echoes its opaque and header type.
    pub fn response_to(
        request: &RemotingCommand,
        code: ResponseCode,
        remark: Option<String>,
    ) -> Self {
        RemotingCommand {
            opaque: request.opaque,
            serialize_type: request.serialize_type,
            ..Self::response(code, remark)
        }
    }

    /// Sets the body.
    pub fn with_body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    /// Sets the opaque.
    pub fn with_opaque(mut self, opaque: i32) -> Self {
        self.opaque = opaque;
        self
    }

    /// Sets the header encoding.
    pub fn with_serialize_type(mut self, ty: SerializeType) -> Self {
        self.serialize_type = ty;
        self
    }

    /// The code read as a request code.
    pub fn request_code(&self) -> RequestCode {
        RequestCode(self.code)
    }

    /// The code read as a response code.
    pub fn response_code(&self) -> ResponseCode {
        ResponseCode(self.code)
    }

    /// Whether flag bit 0 (response) is set.
    pub fn is_response(&self) -> bool {
        self.flag & FLAG_RESPONSE != 0
    }

    /// Whether flag bit 1 (oneway) is set.
    pub fn is_oneway(&self) -> bool {
        self.flag & FLAG_ONEWAY != 0
    }

    /// Sets flag bit 0 (response).
    pub fn mark_response(&mut self) {
        self.flag |= FLAG_RESPONSE;
    }

    /// Sets flag bit 1 (oneway).
    pub fn mark_oneway(&mut self) {
        self.flag |= FLAG_ONEWAY;
    }

    /// Reads a typed header from the ext fields.
    pub fn decode_header<H: CommandHeader>(&self) -> Result<H, HeaderError> {
        H::read_fields(&self.ext_fields)
    }

    /// Appends the frame prefix and header, with a total length that counts the body, but not the body
    /// itself: a writer can then send the body from its own buffer without copying it.
    pub fn encode_header(&self, dst: &mut BytesMut) -> Result<(), EncodeError> {
        let start = dst.len();
        dst.reserve(8 + self.header_len_hint());
        dst.put_u64(0); // length words, patched below
        if self.serialize_type == SerializeType::ROCKETMQ
            && let Err(e) = binary::encode(self, dst)
        {
            dst.truncate(start);
            return Err(e);
        } else if self.serialize_type != SerializeType::ROCKETMQ {
            json::encode(self, dst);
        }
        let header_len = dst.len() - start - 8;
        if header_len > MAX_HEADER_LEN {
            dst.truncate(start);
            return Err(EncodeError::HeaderTooLarge(header_len));
        }
        let total = 4 + header_len + self.body.len();
        let Ok(total) = i32::try_from(total) else {
            dst.truncate(start);
            return Err(EncodeError::FrameTooLarge {
                len: total,
                limit: i32::MAX as usize,
            });
        };
        let ty = if self.serialize_type == SerializeType::ROCKETMQ {
            1u32
        } else {
            0
        };
        let word = (ty << 24) | header_len as u32;
        dst[start..start + 4].copy_from_slice(&total.to_be_bytes());
        dst[start + 4..start + 8].copy_from_slice(&word.to_be_bytes());
        Ok(())
    }

    /// Appends the whole frame (prefix, header, body) to `dst`.
    pub fn encode(&self, dst: &mut BytesMut) -> Result<(), EncodeError> {
        self.encode_header(dst)?;
        dst.extend_from_slice(&self.body);
        Ok(())
    }

    /// The whole frame as new bytes.
    pub fn to_bytes(&self) -> Result<Bytes, EncodeError> {
        let mut b = BytesMut::new();
        self.encode(&mut b)?;
        Ok(b.freeze())
    }

    fn header_len_hint(&self) -> usize {
        64 + self.remark.as_ref().map_or(0, String::len)
            + self.ext_fields.text_len()
            + 8 * self.ext_fields.len()
    }

    /// Decodes one frame whose leading length word was already removed (what Java's `decode(ByteBuf)`
    /// receives). The body is a zero-copy slice of `frame`.
    pub fn decode_frame(mut frame: Bytes) -> Result<RemotingCommand, DecodeError> {
        let length = frame.len();
        if length < 4 {
            return Err(DecodeError::FrameTooShort(length));
        }
        let word = frame.get_u32();
        let header_len = (word & 0x00FF_FFFF) as usize;
        let ty = (word >> 24) as u8;
        if header_len > frame.len() {
            return Err(DecodeError::HeaderLengthOutOfRange {
                header: header_len,
                available: frame.len(),
            });
        }
        let header = frame.split_to(header_len);
        let mut cmd = match SerializeType(ty) {
            SerializeType::JSON => json::decode(&header)?,
            SerializeType::ROCKETMQ => binary::decode(&header)?,
            other => return Err(DecodeError::UnknownSerializeType(other.0)),
        };
        cmd.body = frame;
        Ok(cmd)
    }
}

/// Incremental frame decoder with a length limit.
///
/// ```
/// use bytes::BytesMut;
/// use rmq_protocol::{FrameDecoder, RemotingCommand, RequestCode};
///
/// let frame = RemotingCommand::request(RequestCode::HEART_BEAT).to_bytes().unwrap();
/// let mut buf = BytesMut::new();
/// let decoder = FrameDecoder::default();
/// buf.extend_from_slice(&frame[..5]);
/// assert!(decoder.decode(&mut buf).unwrap().is_none()); // incomplete
/// buf.extend_from_slice(&frame[5..]);
/// let cmd = decoder.decode(&mut buf).unwrap().unwrap();
/// assert_eq!(cmd.request_code(), RequestCode::HEART_BEAT);
/// assert!(buf.is_empty());
/// ```
#[derive(Clone, Copy, Debug)]
pub struct FrameDecoder {
    max_frame: usize,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        FrameDecoder {
            max_frame: DEFAULT_MAX_FRAME,
        }
    }
}

impl FrameDecoder {
    /// A decoder refusing frames whose length word exceeds `max_frame` bytes.
    pub fn new(max_frame: usize) -> Self {
        FrameDecoder { max_frame }
    }

    /// The configured limit.
    pub fn max_frame(&self) -> usize {
        self.max_frame
    }

    /// Takes one complete frame off the front of `src`, `Ok(None)` if more bytes are needed.
    ///
    /// The length is checked against the limit before anything is reserved or allocated; at most the
    /// missing part of a frame within the limit is reserved. On error the buffer is left as it was, and the
    /// connection should be closed (the stream position is lost).
    pub fn decode(&self, src: &mut BytesMut) -> Result<Option<RemotingCommand>, DecodeError> {
        if src.len() < 4 {
            return Ok(None);
        }
        let declared = u32::from_be_bytes([src[0], src[1], src[2], src[3]]) as usize;
        if declared > self.max_frame || declared > i32::MAX as usize {
            return Err(DecodeError::FrameTooLarge {
                limit: self.max_frame,
                declared,
            });
        }
        if declared < 4 {
            return Err(DecodeError::FrameTooShort(declared));
        }
        if src.len() < 4 + declared {
            src.reserve(4 + declared - src.len());
            return Ok(None);
        }
        src.advance(4);
        let frame = src.split_to(declared).freeze();
        RemotingCommand::decode_frame(frame).map(Some)
    }
}

// Requests built from headers live here, so that headers do not depend on commands.

impl crate::header::HeartbeatData {
    /// The HEART_BEAT request carrying this body (ext fields `{}`, like Java's empty header).
    pub fn to_request(&self) -> RemotingCommand {
        RemotingCommand::request(RequestCode::HEART_BEAT).with_body(self.encode())
    }
}

impl crate::header::SendMessageRequestHeaderV2Ref<'_> {
    /// A request with `code` carrying these fields, its ext-field map allocated once at the right size.
    pub fn to_request(&self, code: RequestCode) -> RemotingCommand {
        let mut cmd = RemotingCommand::request(code);
        cmd.ext_fields = StringMap::with_capacity(14, self.text_len());
        self.write_fields(&mut cmd.ext_fields);
        cmd
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route_request(ty: SerializeType) -> RemotingCommand {
        let mut cmd = RemotingCommand::request(RequestCode::GET_ROUTEINFO_BY_TOPIC)
            .with_opaque(1)
            .with_serialize_type(ty);
        cmd.language = LanguageCode::JAVA;
        cmd.ext_fields.insert("topic", "TopicTest");
        cmd
    }

    #[test]
    fn decoder_waits_for_whole_frame_and_leaves_the_rest() {
        let a = route_request(SerializeType::JSON).to_bytes().unwrap();
        let b = route_request(SerializeType::ROCKETMQ).with_body(&b"xyz"[..]);
        let b_bytes = b.to_bytes().unwrap();
        let mut all = BytesMut::new();
        all.extend_from_slice(&a);
        all.extend_from_slice(&b_bytes);
        let dec = FrameDecoder::default();
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for byte in all.iter() {
            buf.put_u8(*byte);
            while let Some(cmd) = dec.decode(&mut buf).unwrap() {
                got.push(cmd);
            }
        }
        assert_eq!(got.len(), 2);
        assert_eq!(got[0], route_request(SerializeType::JSON));
        assert_eq!(got[1], b);
        assert!(buf.is_empty());
    }

    #[test]
    fn oversize_frame_is_refused_before_allocation() {
        let dec = FrameDecoder::new(1024);
        let mut buf = BytesMut::from(&[0x00, 0x10, 0x00, 0x00, 0, 0][..]);
        let cap_before = buf.capacity();
        assert_eq!(
            dec.decode(&mut buf),
            Err(DecodeError::FrameTooLarge {
                limit: 1024,
                declared: 0x0010_0000
            })
        );
        assert_eq!(buf.capacity(), cap_before);
        let mut neg = BytesMut::from(&[0xff, 0xff, 0xff, 0xff][..]);
        assert!(matches!(
            FrameDecoder::default().decode(&mut neg),
            Err(DecodeError::FrameTooLarge { .. })
        ));
    }

    #[test]
    fn bad_frames_are_typed_errors() {
        let dec = FrameDecoder::default();
        let mut short = BytesMut::from(&[0, 0, 0, 2, 0, 0][..]);
        assert_eq!(dec.decode(&mut short), Err(DecodeError::FrameTooShort(2)));
        // header length 100 in a 4-byte frame
        let mut hl = BytesMut::from(&[0, 0, 0, 4, 0, 0, 0, 100][..]);
        assert!(matches!(
            dec.decode(&mut hl),
            Err(DecodeError::HeaderLengthOutOfRange { header: 100, .. })
        ));
        let mut ty = BytesMut::from(&[0, 0, 0, 4, 7, 0, 0, 0][..]);
        assert_eq!(
            dec.decode(&mut ty),
            Err(DecodeError::UnknownSerializeType(7))
        );
    }

    #[test]
    fn failed_encoding_leaves_the_buffer_as_it_was() {
        let mut buf = BytesMut::from(&b"earlier"[..]);
        let bad = RemotingCommand::request(RequestCode(100_000))
            .with_serialize_type(SerializeType::ROCKETMQ);
        assert!(bad.encode(&mut buf).is_err());
        assert_eq!(&buf[..], b"earlier");
    }

    #[test]
    fn flags() {
        let mut c = RemotingCommand::request(RequestCode::SEND_MESSAGE_V2);
        assert!(!c.is_response() && !c.is_oneway());
        c.mark_oneway();
        assert_eq!(c.flag, 2);
        let r = RemotingCommand::response_to(&c, ResponseCode::SUCCESS, None);
        assert_eq!(r.flag, 1);
        assert!(r.is_response());
    }

    #[test]
    fn mark_protocol_type_vectors() {
        // RemotingCommandTest: markProtocolType(261, JSON) = {0,0,1,5};
        // markProtocolType(16777215, ROCKETMQ) = 0x01FFFFFF.
        let mut big = route_request(SerializeType::ROCKETMQ);
        big.remark = Some("r".repeat(MAX_HEADER_LEN + 1));
        assert!(matches!(
            big.to_bytes(),
            Err(EncodeError::HeaderTooLarge(_))
        ));
        let mut c = route_request(SerializeType::JSON);
        let base = c.to_bytes().unwrap().len() - 8;
        // `,"remark":""` adds 12 bytes plus the text.
        c.remark = Some("x".repeat(261 - base - 12));
        let b = c.to_bytes().unwrap();
        assert_eq!(&b[4..8], &[0, 0, 1, 5]);
    }
}
