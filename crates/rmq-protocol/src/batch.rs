//! SEND_BATCH_MESSAGE bodies: the concatenated records of `MessageDecoder.encodeMessages`.
//!
//! ```text
//! int32 totalSize = 20 + bodyLen + 2 + propertiesLen | int32 magic = 0 | int32 bodyCRC = 0 | int32 flag
//! int32 bodyLen | body | int16 propertiesLen | properties
//! ```

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::{DecodeError, ValidationError};
use crate::message::{Message, decode_properties, encode_properties, encoded_properties_len};
use crate::reader::Reader;

/// Largest encoded properties a batch record (and the broker's store) accepts.
pub const MAX_PROPERTIES_LEN: usize = i16::MAX as usize;

/// The encoded size of `msg` as one batch record.
pub fn batch_record_len(msg: &Message) -> usize {
    batch_record_len_parts(msg.body.len(), encoded_properties_len(&msg.properties))
}

/// Appends `msg` as one batch record. Its properties must already hold what the broker should store
/// (the producer sets `UNIQ_KEY` first). Refuses properties over 32767 bytes instead of letting the length
/// wrap as Java's cast does.
pub fn encode_batch_record(msg: &Message, dst: &mut BytesMut) -> Result<(), ValidationError> {
    let mut props = String::with_capacity(encoded_properties_len(&msg.properties));
    encode_properties(&msg.properties, &mut props);
    encode_batch_record_parts(msg.flag, &msg.body, &props, dst)
}

/// [`encode_batch_record`] of a message whose properties are encoded already (`properties`, in the
/// form [`encode_properties`] writes), with `flag` and `body`.
pub fn encode_batch_record_parts(
    flag: i32,
    body: &[u8],
    properties: &str,
    dst: &mut BytesMut,
) -> Result<(), ValidationError> {
    let props_len = properties.len();
    if props_len > MAX_PROPERTIES_LEN {
        return Err(ValidationError::PropertiesTooLarge {
            len: props_len,
            max: MAX_PROPERTIES_LEN,
        });
    }
    let total = batch_record_len_parts(body.len(), props_len);
    let total = i32::try_from(total).map_err(|_| ValidationError::BodyTooLarge {
        len: body.len(),
        max: i32::MAX as usize - 22 - props_len,
    })?;
    dst.reserve(total as usize);
    dst.put_i32(total);
    dst.put_i32(0); // magic code: the broker ignores it
    dst.put_i32(0); // body CRC: the broker computes it
    dst.put_i32(flag);
    dst.put_i32(body.len() as i32);
    dst.put_slice(body);
    dst.put_i16(props_len as i16);
    dst.put_slice(properties.as_bytes());
    Ok(())
}

/// The encoded size of a batch record with a body of `body_len` bytes and `properties_len` bytes of
/// encoded properties.
pub fn batch_record_len_parts(body_len: usize, properties_len: usize) -> usize {
    20 + body_len + 2 + properties_len
}

/// Encodes `messages` as a batch body.
pub fn encode_batch(messages: &[Message]) -> Result<Bytes, ValidationError> {
    let mut dst = BytesMut::with_capacity(messages.iter().map(batch_record_len).sum());
    for m in messages {
        encode_batch_record(m, &mut dst)?;
    }
    Ok(dst.freeze())
}

/// Decodes a batch body into messages whose topic is `topic`. Bodies are zero-copy slices of `body`.
pub fn decode_batch(topic: &str, body: &Bytes) -> Result<Vec<Message>, DecodeError> {
    let mut out = Vec::new();
    let mut r = Reader::new(body);
    while r.remaining() > 0 {
        let start = body.len() - r.remaining();
        let total = r.i32("batch record size")?;
        if total < 22 || total as usize > r.remaining() + 4 {
            return Err(DecodeError::InvalidLength {
                what: "batch record size",
                length: total.into(),
            });
        }
        let mut rec = Reader::new(r.take(total as usize - 4, "batch record")?);
        let _magic = rec.i32("batch magic")?;
        let _crc = rec.i32("batch body CRC")?;
        let flag = rec.i32("batch flag")?;
        let body_len = rec.i32("batch body length")?;
        let body_start = start + 20;
        let body_bytes = rec.sized(body_len.into(), "batch body")?;
        let msg_body = body.slice(body_start..body_start + body_bytes.len());
        let props_len = rec.i16("batch properties length")?;
        let props = rec.sized(props_len.into(), "batch properties")?;
        if rec.remaining() != 0 {
            return Err(DecodeError::TrailingBytes {
                what: "batch record",
                count: rec.remaining(),
            });
        }
        let props = std::str::from_utf8(props).map_err(|_| DecodeError::InvalidUtf8 {
            what: "batch properties",
        })?;
        out.push(Message {
            topic: topic.to_owned(),
            body: msg_body,
            flag,
            properties: decode_properties(props),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StringMap;

    fn java_message(body: &str, uniq: &str) -> Message {
        let mut m = Message::new("TopicTest", body.to_owned());
        // Java's HashMap put UNIQ_KEY before WAIT in this vector.
        m.properties = [("UNIQ_KEY", uniq), ("WAIT", "true")]
            .into_iter()
            .collect::<StringMap>();
        m
    }

    const BATCH_HEX: &str = "0000004f0000000000000000000000000000000548656c6c6f0034554e49515f4b455901433041383030303133303339313233343536373830303131323233333030303102574149540174727565020000004f00000000000000000000000000000005576f726c640034554e49515f4b45590143304138303030313330333931323334353637383030313132323333303030320257414954017472756502";

    #[test]
    fn java_batch_vector() {
        let a = java_message("Hello", "C0A80001303912345678001122330001");
        let b = java_message("World", "C0A80001303912345678001122330002");
        let body = encode_batch(&[a.clone(), b.clone()]).unwrap();
        assert_eq!(body.len(), 158);
        assert_eq!(hex::encode(&body), BATCH_HEX);
        assert_eq!(batch_record_len(&a), 79);
        let back = decode_batch("TopicTest", &body).unwrap();
        assert_eq!(back, vec![a, b]);
    }

    #[test]
    fn oversize_properties_are_refused() {
        let mut m = Message::new("T", "x");
        m.properties.insert("big", &"v".repeat(MAX_PROPERTIES_LEN));
        assert!(matches!(
            encode_batch(&[m]),
            Err(ValidationError::PropertiesTooLarge { .. })
        ));
    }

    #[test]
    fn hostile_batches_are_errors() {
        let body = Bytes::from(hex::decode(BATCH_HEX).unwrap());
        for cut in [1, 4, 30, 78, 80, 157] {
            assert!(
                decode_batch("T", &body.slice(..cut)).is_err(),
                "cut at {cut}"
            );
        }
        let mut bad = body.to_vec();
        bad[0..4].copy_from_slice(&(-1i32).to_be_bytes());
        assert!(decode_batch("T", &Bytes::from(bad)).is_err());
        let mut bad = body.to_vec();
        bad[16..20].copy_from_slice(&1000i32.to_be_bytes()); // body length past the record
        assert!(decode_batch("T", &Bytes::from(bad)).is_err());
    }
}
