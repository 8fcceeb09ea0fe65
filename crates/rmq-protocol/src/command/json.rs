//! JSON header (serialize type 0), as Java writes it with fastjson's default features: members sorted by
//! name, enums by name, null members omitted.
//!
//! `{"code":105,"extFields":{"topic":"TopicTest"},"flag":0,"language":"JAVA","opaque":1,"serializeTypeCurrentRPC":"JSON","version":479}`
//!
//! Encoding is hand-written (no intermediate tree, no allocation beyond the output); decoding uses
//! serde_json and is lenient like fastjson: unknown members are ignored, `extFields` may be `null` or
//! missing, and every member but the object itself may be absent.

use std::borrow::Cow;

use bytes::{BufMut, BytesMut};
use serde::Deserialize;

use super::RemotingCommand;
use crate::code::{LanguageCode, MqVersion, SerializeType};
use crate::error::DecodeError;
use crate::map::{StringMap, decimal};

pub(crate) fn encode(cmd: &RemotingCommand, dst: &mut BytesMut) {
    let mut digits = [0u8; 20];
    let mut int = |dst: &mut BytesMut, v: i64| dst.put_slice(decimal(v, &mut digits).as_bytes());
    dst.put_slice(b"{\"code\":");
    int(dst, cmd.code.into());
    if !cmd.ext_fields.is_empty() {
        dst.put_slice(b",\"extFields\":{");
        for (i, (k, v)) in cmd.ext_fields.iter().enumerate() {
            if i > 0 {
                dst.put_u8(b',');
            }
            put_json_str(dst, k);
            dst.put_u8(b':');
            put_json_str(dst, v);
        }
        dst.put_u8(b'}');
    }
    dst.put_slice(b",\"flag\":");
    int(dst, cmd.flag.into());
    dst.put_slice(b",\"language\":\"");
    dst.put_slice(cmd.language.name().unwrap_or("OTHER").as_bytes());
    dst.put_slice(b"\",\"opaque\":");
    int(dst, cmd.opaque.into());
    if let Some(remark) = &cmd.remark {
        dst.put_slice(b",\"remark\":");
        put_json_str(dst, remark);
    }
    dst.put_slice(b",\"serializeTypeCurrentRPC\":\"JSON\",\"version\":");
    int(dst, cmd.version.0.into());
    dst.put_u8(b'}');
}

/// Bytes that need an escape inside a JSON string.
const NEEDS_ESCAPE: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = true;
        i += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

/// Writes `s` as a JSON string: quotes, backslashes and control characters escaped.
pub(crate) fn put_json_str(dst: &mut BytesMut, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    dst.put_u8(b'"');
    let mut rest = s.as_bytes();
    while let Some(i) = rest.iter().position(|&b| NEEDS_ESCAPE[b as usize]) {
        dst.put_slice(&rest[..i]);
        let b = rest[i];
        match b {
            b'"' => dst.put_slice(b"\\\""),
            b'\\' => dst.put_slice(b"\\\\"),
            b'\n' => dst.put_slice(b"\\n"),
            b'\r' => dst.put_slice(b"\\r"),
            b'\t' => dst.put_slice(b"\\t"),
            0x08 => dst.put_slice(b"\\b"),
            0x0c => dst.put_slice(b"\\f"),
            _ => dst.put_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[(b >> 4) as usize],
                HEX[(b & 15) as usize],
            ]),
        }
        rest = &rest[i + 1..];
    }
    dst.put_slice(rest);
    dst.put_u8(b'"');
}

#[derive(Deserialize)]
struct JsonHeader<'a> {
    #[serde(default)]
    code: i32,
    #[serde(default, borrow)]
    language: Option<Cow<'a, str>>,
    #[serde(default)]
    version: Option<i32>,
    #[serde(default)]
    opaque: i32,
    #[serde(default)]
    flag: i32,
    #[serde(default)]
    remark: Option<String>,
    #[serde(default, rename = "extFields")]
    ext_fields: StringMap,
}

pub(crate) fn decode(header: &[u8]) -> Result<RemotingCommand, DecodeError> {
    // serde would also read a struct from an array; a header is always an object.
    if header.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(DecodeError::Json {
            what: "JSON command header",
            message: "expected a JSON object".to_owned(),
        });
    }
    let h: JsonHeader<'_> = serde_json::from_slice(header).map_err(|e| DecodeError::Json {
        what: "JSON command header",
        message: e.to_string(),
    })?;
    Ok(RemotingCommand {
        code: h.code,
        // Java maps an unknown name to null; OTHER is the closest non-null value.
        language: h.language.as_deref().map_or(LanguageCode::JAVA, |n| {
            LanguageCode::from_name(n).unwrap_or(LanguageCode::OTHER)
        }),
        version: MqVersion(h.version.unwrap_or(0)),
        opaque: h.opaque,
        flag: h.flag,
        remark: h.remark,
        ext_fields: h.ext_fields,
        body: bytes::Bytes::new(),
        serialize_type: SerializeType::JSON,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &str) -> Result<RemotingCommand, DecodeError> {
        decode(s.as_bytes())
    }

    #[test]
    fn lenient_decoding() {
        let c = dec(r#"{"code":0,"extFields":null,"flag":1,"language":"GO","opaque":7,"remark":"","whatever":[1,2,{"x":null}]}"#)
            .unwrap();
        assert_eq!(c.code, 0);
        assert!(c.ext_fields.is_empty());
        assert_eq!(c.language, LanguageCode::GO);
        assert_eq!(c.opaque, 7);
        assert_eq!(c.remark.as_deref(), Some(""));
        assert_eq!(c.version, MqVersion(0));

        let minimal = dec("{}").unwrap();
        assert_eq!(minimal.code, 0);
        assert_eq!(minimal.language, LanguageCode::JAVA);

        let odd = dec(r#"{"language":"KLINGON","extFields":{"n":5,"b":false}}"#).unwrap();
        assert_eq!(odd.language, LanguageCode::OTHER);
        assert_eq!(odd.ext_fields.get("n"), Some("5"));
        assert_eq!(odd.ext_fields.get("b"), Some("false"));
    }

    #[test]
    fn malformed_json_is_a_typed_error() {
        for bad in [
            "",
            "{",
            "[]",
            "null",
            r#"{"code":"x"}"#,
            r#"{"code":99999999999}"#,
            "{\"a\":\"\u{0}\"}",
        ] {
            assert!(matches!(dec(bad), Err(DecodeError::Json { .. })), "{bad:?}");
        }
    }

    #[test]
    fn escaping_round_trips() {
        let mut cmd = RemotingCommand::request(crate::RequestCode::SEND_MESSAGE_V2);
        cmd.ext_fields
            .insert("i", "WAIT\u{1}true\u{2}\"q\"\\\n\t\u{7f}é😀");
        cmd.remark = Some("line\r\nnext\u{0}".into());
        let mut b = BytesMut::new();
        encode(&cmd, &mut b);
        let text = std::str::from_utf8(&b).unwrap();
        assert!(text.contains("WAIT\\u0001true\\u0002"), "{text}");
        let back = decode(&b).unwrap();
        assert_eq!(back.ext_fields, cmd.ext_fields);
        assert_eq!(back.remark, cmd.remark);
    }
}
