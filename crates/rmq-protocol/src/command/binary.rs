//! ROCKETMQ binary header (serialize type 1), as `RocketMQSerializable`:
//!
//! ```text
//! int16 code | int8 language | int16 version | int32 opaque | int32 flag
//! int32 remarkLength | remark | int32 extLength | { int16 keyLength | key | int32 valueLength | value }*
//! ```
//!
//! A zero-length string decodes as Java's `null`: a null remark is `None`, and ext entries with a null key or
//! value are dropped (Java's `extFields.get` would return null for them anyway).

use bytes::BytesMut;

use super::RemotingCommand;
use crate::code::{LanguageCode, MqVersion, SerializeType};
use crate::error::{DecodeError, EncodeError};
use crate::map::StringMap;
use crate::reader::Reader;

pub(crate) fn encode(cmd: &RemotingCommand, dst: &mut BytesMut) -> Result<(), EncodeError> {
    let code = i16::try_from(cmd.code).map_err(|_| EncodeError::CodeOutOfRange(cmd.code))?;
    let version =
        i16::try_from(cmd.version.0).map_err(|_| EncodeError::VersionOutOfRange(cmd.version.0))?;
    let remark = cmd.remark.as_deref().unwrap_or("").as_bytes();
    let remark_len = len_i32("remark", remark.len())?;
    let mut ext_len = 0usize;
    for (k, v) in cmd.ext_fields.iter_bytes() {
        if k.len() > i16::MAX as usize {
            return Err(EncodeError::FieldTooLong {
                what: "ext field key",
                len: k.len(),
                max: i16::MAX as usize,
            });
        }
        ext_len += 6 + k.len() + v.len();
    }
    let ext_len_i32 = len_i32("ext fields", ext_len)?;
    // Size the header once and fill it by slice copies: one bounds check per piece instead of a
    // capacity check and possible growth per `BufMut::put_*`.
    let total = 21 + remark.len() + ext_len;
    let start = dst.len();
    dst.resize(start + total, 0);
    let mut w = SliceWriter {
        buf: &mut dst[start..],
        pos: 0,
    };
    w.put(&code.to_be_bytes());
    w.put(&[cmd.language.0]);
    w.put(&version.to_be_bytes());
    w.put(&cmd.opaque.to_be_bytes());
    w.put(&cmd.flag.to_be_bytes());
    w.put(&remark_len.to_be_bytes());
    w.put(remark);
    w.put(&ext_len_i32.to_be_bytes());
    for (k, v) in cmd.ext_fields.iter_bytes() {
        w.put(&(k.len() as i16).to_be_bytes());
        w.put(k);
        w.put(&(v.len() as i32).to_be_bytes());
        w.put(v);
    }
    Ok(())
}

/// Writes pieces into a pre-sized slice.
struct SliceWriter<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl SliceWriter<'_> {
    fn put(&mut self, bytes: &[u8]) {
        self.buf[self.pos..self.pos + bytes.len()].copy_from_slice(bytes);
        self.pos += bytes.len();
    }
}

fn len_i32(what: &'static str, len: usize) -> Result<i32, EncodeError> {
    i32::try_from(len).map_err(|_| EncodeError::FieldTooLong {
        what,
        len,
        max: i32::MAX as usize,
    })
}

fn utf8<'a>(b: &'a [u8], what: &'static str) -> Result<&'a str, DecodeError> {
    std::str::from_utf8(b).map_err(|_| DecodeError::InvalidUtf8 { what })
}

pub(crate) fn decode(header: &[u8]) -> Result<RemotingCommand, DecodeError> {
    let mut r = Reader::new(header);
    let code = r.i16("code")?;
    let language = r.u8("language")?;
    let version = r.i16("version")?;
    let opaque = r.i32("opaque")?;
    let flag = r.i32("flag")?;
    let remark_len = r.i32("remark length")?;
    let remark = r.sized(remark_len.into(), "remark")?;
    let remark = (!remark.is_empty())
        .then(|| utf8(remark, "remark").map(str::to_owned))
        .transpose()?;
    let ext_len = r.i32("ext fields length")?;
    let ext = r.sized(ext_len.into(), "ext fields")?;
    if r.remaining() != 0 {
        return Err(DecodeError::TrailingBytes {
            what: "binary header",
            count: r.remaining(),
        });
    }
    let mut ext_fields = StringMap::with_capacity(16, ext.len());
    let mut e = Reader::new(ext);
    while e.remaining() > 0 {
        let klen = e.i16("ext key length")?;
        let k = e.sized(klen.into(), "ext key")?;
        let vlen = e.i32("ext value length")?;
        let v = e.sized(vlen.into(), "ext value")?;
        if !k.is_empty() && !v.is_empty() {
            ext_fields.append_unchecked(utf8(k, "ext key")?, utf8(v, "ext value")?);
        }
    }
    ext_fields.dedup_last_wins();
    Ok(RemotingCommand {
        code: code.into(),
        language: LanguageCode(language),
        version: MqVersion(version.into()),
        opaque,
        flag,
        remark,
        ext_fields,
        body: bytes::Bytes::new(),
        serialize_type: SerializeType::ROCKETMQ,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RequestCode;

    fn java_like(code: i32) -> RemotingCommand {
        let mut c = RemotingCommand::request(RequestCode(code))
            .with_serialize_type(SerializeType::ROCKETMQ);
        c.language = LanguageCode::JAVA;
        c.version = MqVersion(2333);
        c
    }

    fn header_bytes(c: &RemotingCommand) -> Vec<u8> {
        let mut b = BytesMut::new();
        encode(c, &mut b).unwrap();
        b.to_vec()
    }

    // RocketMQSerializableTest (protocol.md 10.1).
    #[test]
    fn java_serializable_test_sizes() {
        let plain = java_like(103);
        let b = header_bytes(&plain);
        assert_eq!(b.len(), 21);
        assert_eq!(&b[0..2], &103i16.to_be_bytes());
        assert_eq!(b[2], 0);
        assert_eq!(&b[3..5], &2333i16.to_be_bytes());
        assert_eq!(&b[13..17], &[0, 0, 0, 0]);

        let mut remark = java_like(103);
        remark.remark = Some("Sample Remark".into());
        let b = header_bytes(&remark);
        assert_eq!(b.len(), 34);
        assert_eq!(&b[13..17], &13i32.to_be_bytes());
        assert_eq!(&b[17..30], b"Sample Remark");

        let mut ext = java_like(103);
        ext.ext_fields.insert("key", "value");
        let b = header_bytes(&ext);
        assert_eq!(b.len(), 35);
        assert_eq!(&b[17..21], &14i32.to_be_bytes());
        assert_eq!(decode(&b).unwrap(), ext);
    }

    #[test]
    fn empty_strings_decode_as_null() {
        let mut c = java_like(10);
        c.remark = Some(String::new());
        c.ext_fields.insert("empty", "");
        c.ext_fields.insert("k", "v");
        let d = decode(&header_bytes(&c)).unwrap();
        assert_eq!(d.remark, None);
        assert_eq!(d.ext_fields.get("empty"), None);
        assert_eq!(d.ext_fields.get("k"), Some("v"));
    }

    #[test]
    fn out_of_range_fields_are_refused() {
        assert_eq!(
            encode(&java_like(200_050), &mut BytesMut::new()),
            Err(EncodeError::CodeOutOfRange(200_050))
        );
        let mut v = java_like(1);
        v.version = MqVersion(40_000);
        assert!(matches!(
            encode(&v, &mut BytesMut::new()),
            Err(EncodeError::VersionOutOfRange(_))
        ));
    }

    #[test]
    fn hostile_lengths_are_errors() {
        let mut b = header_bytes(&java_like(1));
        // remark length says 1 GiB
        b[13..17].copy_from_slice(&(1i32 << 30).to_be_bytes());
        assert!(matches!(
            decode(&b),
            Err(DecodeError::Truncated { what: "remark", .. })
        ));
        b[13..17].copy_from_slice(&(-5i32).to_be_bytes());
        assert!(matches!(decode(&b), Err(DecodeError::InvalidLength { .. })));
        let mut t = header_bytes(&java_like(1));
        t.push(0);
        assert!(matches!(decode(&t), Err(DecodeError::TrailingBytes { .. })));
        let mut e = java_like(1);
        e.ext_fields.insert("k", "v");
        let mut b = header_bytes(&e);
        let n = b.len();
        b[n - 5..n - 1].copy_from_slice(&100i32.to_be_bytes()); // value length beyond the map
        assert!(matches!(decode(&b), Err(DecodeError::Truncated { .. })));
    }

    /// Before: each field was inserted with a scan of the map, so a header of many fields took quadratic
    /// time inside the reader thread (10k fields 0.13 s, 40k 2.0 s, 160k 25 s). A regression guard with a
    /// wide margin, not a speed figure: 160k fields (and 160k repeats of them) must decode in seconds.
    #[test]
    fn many_ext_fields_decode_in_linear_time() {
        let mut c = RemotingCommand::request(RequestCode::SEND_MESSAGE);
        for i in 0..160_000 {
            c.ext_fields.append_unchecked(&format!("k{i}"), "v");
        }
        for i in 0..160_000 {
            c.ext_fields.append_unchecked(&format!("k{i}"), "w");
        }
        let mut header = BytesMut::new();
        encode(&c, &mut header).unwrap();
        let t0 = std::time::Instant::now();
        let back = decode(&header).unwrap();
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(5),
            "{:?}",
            t0.elapsed()
        );
        assert_eq!(back.ext_fields.len(), 160_000);
        assert_eq!(back.ext_fields.get("k7"), Some("w"));
    }
}
