//! JSON header (serialize type 0), as Java writes it with fastjson's default features: members sorted by
//! name, enums by name, null members omitted.
//!
//! `{"code":105,"extFields":{"topic":"TopicTest"},"flag":0,"language":"JAVA","opaque":1,"serializeTypeCurrentRPC":"JSON","version":479}`
//!
//! Encoding is hand-written (no intermediate tree, no allocation beyond the output). Decoding is lenient
//! like fastjson: unknown members are ignored, `extFields` may be `null` or missing, and every member but
//! the object itself may be absent. It first tries [`decode_plain`], a scanner for the shape every Java
//! server writes (the header's own members, plain values); anything else goes to serde_json, which
//! decides. The two agree wherever the scanner answers (a differential proptest below).

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
    match decode_plain(header) {
        Some(cmd) => Ok(cmd),
        None => decode_serde(header),
    }
}

/// Reads any header serde_json can: the general path behind [`decode_plain`].
fn decode_serde(header: &[u8]) -> Result<RemotingCommand, DecodeError> {
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

/// Reads a header of the shape Java servers write without serde: an object of the header's members
/// (`code`, `opaque`, `flag`, `version`, `language`, `remark`, `extFields`, `serializeTypeCurrentRPC`),
/// each at most once, with integers, strings without escapes or `null`, and `extFields` an object of
/// such strings (or `null`s). `None` for anything else (an escape, another member or value type, a
/// repeated member, malformed JSON): serde_json then reads it, with the same result where both can.
fn decode_plain(header: &[u8]) -> Option<RemotingCommand> {
    let mut s = Scan { b: header, i: 0 };
    let mut cmd = RemotingCommand {
        language: LanguageCode::JAVA,
        version: MqVersion(0),
        ..RemotingCommand::default()
    };
    let mut seen = 0u8;
    s.ws();
    s.object(|s, key| {
        let bit = match key {
            "code" => 1,
            "opaque" => 2,
            "flag" => 4,
            "version" => 8,
            "language" => 16,
            "remark" => 32,
            "extFields" => 64,
            "serializeTypeCurrentRPC" => 128,
            _ => return None,
        };
        if seen & bit != 0 {
            return None;
        }
        seen |= bit;
        match bit {
            1 => cmd.code = s.int32()?,
            2 => cmd.opaque = s.int32()?,
            4 => cmd.flag = s.int32()?,
            8 => cmd.version = MqVersion(if s.null() { 0 } else { s.int32()? }),
            16 if !s.null() => {
                let name = s.plain_str()?;
                cmd.language = LanguageCode::from_name(name).unwrap_or(LanguageCode::OTHER);
            }
            32 if !s.null() => cmd.remark = Some(s.plain_str()?.to_owned()),
            64 if !s.null() => cmd.ext_fields = s.plain_map()?,
            128 if !s.null() => {
                s.plain_str()?;
            }
            _ => {}
        }
        Some(())
    })?;
    s.ws();
    (s.i == s.b.len()).then_some(cmd)
}

/// A cursor over JSON text for [`decode_plain`]; every method answers `None` where it cannot go on.
struct Scan<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Scan<'a> {
    /// Skips JSON whitespace (space, tab, line feed, carriage return).
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    fn eat(&mut self, byte: u8) -> Option<()> {
        (self.b.get(self.i) == Some(&byte)).then(|| self.i += 1)
    }

    /// Consumes `null` if it is next.
    fn null(&mut self) -> bool {
        let found = self.b.get(self.i..self.i + 4) == Some(b"null");
        if found {
            self.i += 4;
        }
        found
    }

    /// A string without escapes or control characters, valid UTF-8.
    fn plain_str(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let start = self.i;
        let len = self.b[start..].iter().position(|&c| c == b'"')?;
        let raw = &self.b[start..start + len];
        if raw.iter().any(|&c| c == b'\\' || c < 0x20) {
            return None;
        }
        self.i = start + len + 1;
        std::str::from_utf8(raw).ok()
    }

    /// A JSON integer (no fraction or exponent) that fits an `i32`.
    fn int32(&mut self) -> Option<i32> {
        let negative = self.eat(b'-').is_some();
        let digits = self.b[self.i..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count();
        let text = &self.b[self.i..self.i + digits];
        // JSON has no leading zeros; a fraction or an exponent makes it a float, and so does `-0` for
        // serde_json (which then refuses it as an i32).
        if digits == 0
            || (text[0] == b'0' && (digits > 1 || negative))
            || matches!(self.b.get(self.i + digits), Some(b'.' | b'e' | b'E'))
            || digits > 10
        {
            return None;
        }
        self.i += digits;
        let magnitude = text.iter().fold(0i64, |v, &c| v * 10 + i64::from(c - b'0'));
        i32::try_from(if negative { -magnitude } else { magnitude }).ok()
    }

    /// An object: `{`, then for each member its key (a plain string) and `:`, after which `member`
    /// reads the value; members separated by `,`, then `}`.
    fn object(&mut self, mut member: impl FnMut(&mut Self, &'a str) -> Option<()>) -> Option<()> {
        self.eat(b'{')?;
        self.ws();
        if self.eat(b'}').is_some() {
            return Some(());
        }
        loop {
            self.ws();
            let key = self.plain_str()?;
            self.ws();
            self.eat(b':')?;
            self.ws();
            member(self, key)?;
            self.ws();
            if self.eat(b',').is_none() {
                return self.eat(b'}');
            }
        }
    }

    /// `{}` or an object of plain strings; `null` values are skipped, as serde's reading does.
    fn plain_map(&mut self) -> Option<StringMap> {
        let mut m = StringMap::with_capacity(8, 128);
        self.object(|s, key| {
            if !s.null() {
                m.append_unchecked(key, s.plain_str()?);
            }
            Some(())
        })?;
        m.dedup_last_wins();
        Some(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

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

    /// Where the scanner answers, serde answers the same.
    fn paths_agree(h: &[u8]) -> Result<(), TestCaseError> {
        if let Some(fast) = decode_plain(h) {
            let slow = decode_serde(h);
            prop_assert!(
                slow.as_ref() == Ok(&fast),
                "{:?}: scanner {fast:?}, serde {slow:?}",
                String::from_utf8_lossy(h)
            );
        }
        Ok(())
    }

    fn any_command() -> impl Strategy<Value = RemotingCommand> {
        let text = prop_oneof![
            "[a-zA-Z0-9_]{0,12}",
            "[ -~]{0,12}",
            any::<String>().prop_map(|s| s.chars().take(12).collect()),
        ];
        (
            any::<i32>(),
            any::<i32>(),
            any::<i32>(),
            any::<i32>(),
            prop::sample::select(vec![
                LanguageCode::JAVA,
                LanguageCode::GO,
                LanguageCode::RUST,
                LanguageCode(99),
            ]),
            prop::option::of(text.clone()),
            prop::collection::vec((text.clone(), text), 0..10),
        )
            .prop_map(|(code, opaque, flag, version, language, remark, ext)| {
                let mut c = RemotingCommand {
                    code,
                    opaque,
                    flag,
                    version: MqVersion(version),
                    language,
                    remark,
                    ..RemotingCommand::default()
                };
                for (k, v) in ext {
                    c.ext_fields.insert(&k, &v);
                }
                c
            })
    }

    proptest! {
        #[test]
        fn the_scanner_agrees_with_serde_on_encoded_headers(c in any_command()) {
            let mut b = BytesMut::new();
            encode(&c, &mut b);
            paths_agree(&b)?;
            // What we encode, we decode (through whichever path takes it).
            let back = decode(&b).unwrap();
            prop_assert_eq!(back.code, c.code);
            prop_assert_eq!(&back.ext_fields, &c.ext_fields);
            prop_assert_eq!(back.remark, c.remark);
        }

        #[test]
        fn the_scanner_agrees_with_serde_on_damaged_headers(
            c in any_command(),
            edits in prop::collection::vec(
                (any::<prop::sample::Index>(), 0u8..3, prop::sample::select(
                    b" \t\n\r\x0c\"\\{}[],:-+.eE0159nultrfa".to_vec())),
                1..4,
            ),
        ) {
            let mut b = BytesMut::new();
            encode(&c, &mut b);
            let mut h = b.to_vec();
            for (at, op, byte) in edits {
                let i = at.index(h.len() + 1);
                match op {
                    0 => h.insert(i, byte),
                    1 if i < h.len() => { h.remove(i); }
                    _ if i < h.len() => h[i] = byte,
                    _ => h.push(byte),
                }
            }
            paths_agree(&h)?;
        }
    }

    #[test]
    fn the_scanner_takes_what_java_writes_and_leaves_the_rest_to_serde() {
        let java = br#"{"code":0,"extFields":{"queueId":"0","msgId":"0A02DFA500002A9F0000000163E60ADB","queueOffset":"37","MSG_REGION":"DefaultRegion","TRACE_ON":"true"},"flag":1,"language":"JAVA","opaque":3,"serializeTypeCurrentRPC":"JSON","version":503}"#;
        let c = decode_plain(java).expect("the common shape");
        assert_eq!(
            (c.code, c.flag, c.opaque, c.version),
            (0, 1, 3, MqVersion(503))
        );
        assert_eq!(c.ext_fields.get("queueOffset"), Some("37"));
        assert_eq!(c.language, LanguageCode::JAVA);
        for plain in [
            &b"{}"[..],
            b" { \"code\" : -1 , \"remark\" : null , \"extFields\" : null }\n",
            br#"{"language":null,"version":null,"extFields":{"a":null,"b":"x"}}"#,
            br#"{"code":2147483647,"opaque":-2147483648}"#,
        ] {
            assert!(
                decode_plain(plain).is_some(),
                "{}",
                String::from_utf8_lossy(plain)
            );
            paths_agree(plain).unwrap();
        }
        for general in [
            &br#"{"remark":"a\"b"}"#[..],
            br#"{"code":1,"code":2}"#,
            br#"{"code":1.0}"#,
            br#"{"code":01}"#,
            br#"{"code":-0}"#,
            br#"{"code":2147483648}"#,
            br#"{"code":null}"#,
            br#"{"extFields":{"n":5,"b":false}}"#,
            br#"{"whatever":[1,2]}"#,
            br#"{"code":1,}"#,
            b"{\"code\":1}\x0c",
            br#"{"code":1} x"#,
        ] {
            assert!(
                decode_plain(general).is_none(),
                "{}",
                String::from_utf8_lossy(general)
            );
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
