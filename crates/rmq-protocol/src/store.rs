//! The store format of a message (`MessageDecoder.decode` / `encode`): what CHECK_TRANSACTION_STATE
//! bodies carry, and what brokers keep in the commit log.

use std::net::{IpAddr, SocketAddr};

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::{DecodeError, ValidationError};
use crate::id::OffsetMessageId;
use crate::map::StringMap;
use crate::message::{decode_properties, encode_properties, sys_flag};
use crate::reader::Reader;

/// Magic code of a V1 record (1-byte topic length).
pub const MESSAGE_MAGIC_CODE: u32 = 0xDAA3_20A7;
/// Magic code of a V2 record (2-byte topic length).
pub const MESSAGE_MAGIC_CODE_V2: u32 = 0xDAA3_20AB;
/// Magic code of the blank filler at a commit-log file's end.
pub const BLANK_MAGIC_CODE: u32 = 0xCBD4_3194;

/// A message as stored by a broker, with the broker's bookkeeping.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageExt {
    /// Topic.
    pub topic: String,
    /// Body as stored (still compressed when `sys_flag` says so).
    pub body: Bytes,
    /// User flag.
    pub flag: i32,
    /// Properties.
    pub properties: StringMap,
    /// Queue id.
    pub queue_id: i32,
    /// Logical offset in the queue.
    pub queue_offset: i64,
    /// Physical offset in the commit log.
    pub commit_log_offset: i64,
    /// sysFlag bits ([`sys_flag`]).
    pub sys_flag: i32,
    /// When the producer made it (ms).
    pub born_timestamp: i64,
    /// The producer's address.
    pub born_host: SocketAddr,
    /// When the broker stored it (ms).
    pub store_timestamp: i64,
    /// The broker's address.
    pub store_host: SocketAddr,
    /// How often it was consumed again.
    pub reconsume_times: i32,
    /// Offset of the prepared message (transactions).
    pub prepared_transaction_offset: i64,
    /// CRC32 of the body, as the broker computed it.
    pub body_crc: i32,
}

impl MessageExt {
    /// The offset msgId of this record (store host and commit-log offset).
    pub fn offset_msg_id(&self) -> String {
        OffsetMessageId {
            addr: self.store_host,
            offset: self.commit_log_offset,
        }
        .encode()
    }
}

fn read_host(r: &mut Reader<'_>, v6: bool, what: &'static str) -> Result<SocketAddr, DecodeError> {
    let ip: IpAddr = if v6 {
        let mut a = [0u8; 16];
        a.copy_from_slice(r.take(16, what)?);
        a.into()
    } else {
        let mut a = [0u8; 4];
        a.copy_from_slice(r.take(4, what)?);
        a.into()
    };
    let port = r.i32(what)?;
    let port = u16::try_from(port).map_err(|_| DecodeError::InvalidLength {
        what: "host port",
        length: port.into(),
    })?;
    Ok(SocketAddr::new(ip, port))
}

/// Decodes one store-format record that must fill `data` exactly. The body is a zero-copy slice.
pub fn decode_store_message(data: &Bytes) -> Result<MessageExt, DecodeError> {
    let mut r = Reader::new(data);
    let total = r.i32("store size")?;
    if usize::try_from(total).ok() != Some(data.len()) {
        return Err(DecodeError::InvalidLength {
            what: "store record size",
            length: total.into(),
        });
    }
    let magic = r.i32("magic code")? as u32;
    let wide_topic = match magic {
        MESSAGE_MAGIC_CODE => false,
        MESSAGE_MAGIC_CODE_V2 => true,
        other => return Err(DecodeError::UnknownMagicCode(other)),
    };
    let body_crc = r.i32("body CRC")?;
    let queue_id = r.i32("queue id")?;
    let flag = r.i32("flag")?;
    let queue_offset = r.i64("queue offset")?;
    let commit_log_offset = r.i64("physical offset")?;
    let sys_flag = r.i32("sysFlag")?;
    let born_timestamp = r.i64("born timestamp")?;
    let born_host = read_host(&mut r, sys_flag & sys_flag::BORNHOST_V6 != 0, "born host")?;
    let store_timestamp = r.i64("store timestamp")?;
    let store_host = read_host(&mut r, sys_flag & sys_flag::STOREHOST_V6 != 0, "store host")?;
    let reconsume_times = r.i32("reconsume times")?;
    let prepared_transaction_offset = r.i64("prepared transaction offset")?;
    let body_len = r.i32("body length")?;
    let body_start = data.len() - r.remaining();
    let body = r.sized(body_len.into(), "body")?;
    let body = data.slice(body_start..body_start + body.len());
    let topic_len: i64 = if wide_topic {
        r.i16("topic length")?.into()
    } else {
        r.u8("topic length")?.into()
    };
    let topic = r.sized(topic_len, "topic")?;
    let topic = std::str::from_utf8(topic)
        .map_err(|_| DecodeError::InvalidUtf8 { what: "topic" })?
        .to_owned();
    let props_len = r.i16("properties length")?;
    let props = r.sized(props_len.into(), "properties")?;
    if r.remaining() != 0 {
        return Err(DecodeError::TrailingBytes {
            what: "store record",
            count: r.remaining(),
        });
    }
    // Java decodes with `new String(bytes, UTF_8)`, replacing invalid sequences; so do we.
    let properties = decode_properties(&String::from_utf8_lossy(props));
    Ok(MessageExt {
        topic,
        body,
        flag,
        properties,
        queue_id,
        queue_offset,
        commit_log_offset,
        sys_flag,
        born_timestamp,
        born_host,
        store_timestamp,
        store_host,
        reconsume_times,
        prepared_transaction_offset,
        body_crc,
    })
}

fn put_host(dst: &mut BytesMut, addr: &SocketAddr) {
    match addr.ip() {
        IpAddr::V4(ip) => dst.put_slice(&ip.octets()),
        IpAddr::V6(ip) => dst.put_slice(&ip.octets()),
    }
    dst.put_i32(addr.port().into());
}

/// Encodes a store-format record as the broker does for transaction checks (V1 magic and 1-byte topic
/// length when the topic fits, V2 otherwise). The host fields follow their addresses' families and the
/// sysFlag's v6 bits are set to match.
pub fn encode_store_message(msg: &MessageExt) -> Result<Bytes, ValidationError> {
    let mut props = String::new();
    encode_properties(&msg.properties, &mut props);
    if props.len() > i16::MAX as usize {
        return Err(ValidationError::PropertiesTooLarge {
            len: props.len(),
            max: i16::MAX as usize,
        });
    }
    let wide_topic = msg.topic.len() > u8::MAX as usize;
    if msg.topic.len() > i16::MAX as usize {
        return Err(ValidationError::TopicTooLong {
            topic: crate::error::cut(&msg.topic),
            len: msg.topic.len(),
            max: i16::MAX as usize,
        });
    }
    let mut sys = msg.sys_flag & !(sys_flag::BORNHOST_V6 | sys_flag::STOREHOST_V6);
    let host_len = |a: &SocketAddr, bit: i32, sys: &mut i32| {
        if a.is_ipv6() {
            *sys |= bit;
            20
        } else {
            8
        }
    };
    let born_len = host_len(&msg.born_host, sys_flag::BORNHOST_V6, &mut sys);
    let store_len = host_len(&msg.store_host, sys_flag::STOREHOST_V6, &mut sys);
    let total = 4
        + 4
        + 4
        + 4
        + 4
        + 8
        + 8
        + 4
        + 8
        + born_len
        + 8
        + store_len
        + 4
        + 8
        + 4
        + msg.body.len()
        + if wide_topic { 2 } else { 1 }
        + msg.topic.len()
        + 2
        + props.len();
    let total_i32 = i32::try_from(total).map_err(|_| ValidationError::BodyTooLarge {
        len: msg.body.len(),
        max: i32::MAX as usize,
    })?;
    let mut dst = BytesMut::with_capacity(total);
    dst.put_i32(total_i32);
    dst.put_u32(if wide_topic {
        MESSAGE_MAGIC_CODE_V2
    } else {
        MESSAGE_MAGIC_CODE
    });
    dst.put_i32(msg.body_crc);
    dst.put_i32(msg.queue_id);
    dst.put_i32(msg.flag);
    dst.put_i64(msg.queue_offset);
    dst.put_i64(msg.commit_log_offset);
    dst.put_i32(sys);
    dst.put_i64(msg.born_timestamp);
    put_host(&mut dst, &msg.born_host);
    dst.put_i64(msg.store_timestamp);
    put_host(&mut dst, &msg.store_host);
    dst.put_i32(msg.reconsume_times);
    dst.put_i64(msg.prepared_transaction_offset);
    dst.put_i32(msg.body.len() as i32);
    dst.put_slice(&msg.body);
    if wide_topic {
        dst.put_i16(msg.topic.len() as i16);
    } else {
        dst.put_u8(msg.topic.len() as u8);
    }
    dst.put_slice(msg.topic.as_bytes());
    dst.put_i16(props.len() as i16);
    dst.put_slice(props.as_bytes());
    Ok(dst.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// MessageDecoderTest's store round trip (protocol.md 10.1).
    pub(crate) fn sample() -> MessageExt {
        MessageExt {
            topic: "abc".into(),
            body: Bytes::from_static(b"hello!q!"),
            flag: 0,
            properties: [("a", "123"), ("b", "hello"), ("c", "3.14")]
                .into_iter()
                .collect(),
            queue_id: 1,
            queue_offset: 123,
            commit_log_offset: 123_456,
            sys_flag: 0,
            born_timestamp: 1_700_000_000_000,
            born_host: "127.0.0.1:5555".parse().unwrap(),
            store_timestamp: 1_700_000_000_001,
            store_host: "127.0.0.1:10911".parse().unwrap(),
            reconsume_times: 0,
            prepared_transaction_offset: 0,
            body_crc: 0,
        }
    }

    #[test]
    fn java_decoder_test_round_trip() {
        let m = sample();
        let b = encode_store_message(&m).unwrap();
        assert_eq!(&b[4..8], &MESSAGE_MAGIC_CODE.to_be_bytes());
        let d = decode_store_message(&b).unwrap();
        assert_eq!(d, m);
        assert_eq!(d.offset_msg_id(), "7F00000100002A9F000000000001E240");
    }

    #[test]
    fn ipv6_hosts_and_long_topics() {
        let mut m = sample();
        m.born_host = "[::1]:1".parse().unwrap();
        m.topic = "t".repeat(300);
        let b = encode_store_message(&m).unwrap();
        assert_eq!(&b[4..8], &MESSAGE_MAGIC_CODE_V2.to_be_bytes());
        let d = decode_store_message(&b).unwrap();
        assert_eq!(d.sys_flag & sys_flag::BORNHOST_V6, sys_flag::BORNHOST_V6);
        assert_eq!(d.born_host, m.born_host);
        assert_eq!(d.topic, m.topic);
    }

    #[test]
    fn hostile_records_are_errors() {
        let b = encode_store_message(&sample()).unwrap();
        for cut in 0..b.len() {
            assert!(decode_store_message(&b.slice(..cut)).is_err());
        }
        let mut bad = b.to_vec();
        bad[4] = 0;
        assert!(matches!(
            decode_store_message(&Bytes::from(bad)),
            Err(DecodeError::UnknownMagicCode(_))
        ));
    }
}
