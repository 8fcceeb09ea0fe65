//! Typed headers: structs that write themselves into a command's ext fields and read themselves back.
//!
//! Field names and which fields are required follow the Java header classes (protocol.md section 3).
//! Reading refuses a missing required field or a value that does not parse, naming the header and field.

mod client;
mod offset;
mod recall;
mod route;
mod send;
mod transaction;

pub use client::{HeartbeatData, ProducerData, UnregisterClientRequestHeader};
pub use offset::{GetMaxOffsetRequestHeader, GetMaxOffsetResponseHeader};
pub use recall::{RecallHandle, RecallMessageRequestHeader};
pub use route::GetRouteInfoRequestHeader;
pub use send::{
    SendMessageRequestHeader, SendMessageRequestHeaderV2, SendMessageRequestHeaderV2Ref,
    SendMessageResponseHeader,
};
pub use transaction::{
    CheckTransactionStateRequestHeader, EndTransactionRequestHeader, TransactionResolution,
};

use crate::code::RequestCode;
use crate::error::{HeaderError, cut};
use crate::map::StringMap;

/// A header that converts to and from ext fields.
pub trait CommandHeader: Sized {
    /// Writes the header's non-null fields into `ext`.
    fn write_fields(&self, ext: &mut StringMap);
    /// Reads the header from `ext`; a missing required or unparsable field is an error.
    fn read_fields(ext: &StringMap) -> Result<Self, HeaderError>;
}

/// A request header that knows its request code.
pub trait RequestHeader: CommandHeader {
    /// The request code this header travels with.
    const CODE: RequestCode;
}

/// Reads fields of one header type, naming it in errors.
pub(crate) struct Fields<'a> {
    ext: &'a StringMap,
    header: &'static str,
}

impl<'a> Fields<'a> {
    pub(crate) fn new(ext: &'a StringMap, header: &'static str) -> Self {
        Fields { ext, header }
    }

    pub(crate) fn opt_str(&self, field: &'static str) -> Option<String> {
        self.ext.get(field).map(str::to_owned)
    }

    pub(crate) fn str(&self, field: &'static str) -> Result<String, HeaderError> {
        self.str_ref(field).map(str::to_owned)
    }

    /// A required field, borrowed.
    pub(crate) fn str_ref(&self, field: &'static str) -> Result<&'a str, HeaderError> {
        self.ext.get(field).ok_or(HeaderError::Missing {
            header: self.header,
            field,
        })
    }

    fn parse<T: std::str::FromStr>(
        &self,
        field: &'static str,
        expected: &'static str,
    ) -> Result<Option<T>, HeaderError> {
        match self.ext.get(field) {
            None => Ok(None),
            Some(v) => v
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| HeaderError::Invalid {
                    header: self.header,
                    field,
                    value: cut(v),
                    expected,
                }),
        }
    }

    fn required<T>(&self, field: &'static str, v: Option<T>) -> Result<T, HeaderError> {
        v.ok_or(HeaderError::Missing {
            header: self.header,
            field,
        })
    }

    pub(crate) fn opt_i32(&self, field: &'static str) -> Result<Option<i32>, HeaderError> {
        self.parse(field, "32-bit integer")
    }

    pub(crate) fn i32(&self, field: &'static str) -> Result<i32, HeaderError> {
        let v = self.opt_i32(field)?;
        self.required(field, v)
    }

    pub(crate) fn opt_i64(&self, field: &'static str) -> Result<Option<i64>, HeaderError> {
        self.parse(field, "64-bit integer")
    }

    pub(crate) fn i64(&self, field: &'static str) -> Result<i64, HeaderError> {
        let v = self.opt_i64(field)?;
        self.required(field, v)
    }

    /// Booleans as Java writes them; case-insensitive like `Boolean.parseBoolean`, but text that is
    /// neither `true` nor `false` is refused rather than read as false.
    pub(crate) fn opt_bool(&self, field: &'static str) -> Result<Option<bool>, HeaderError> {
        match self.ext.get(field) {
            None => Ok(None),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(Some(true)),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(Some(false)),
            Some(v) => Err(HeaderError::Invalid {
                header: self.header,
                field,
                value: cut(v),
                expected: "boolean",
            }),
        }
    }
}

/// Inserts `value` under `key` when it is `Some`.
pub(crate) fn put_opt(ext: &mut StringMap, key: &str, value: Option<&str>) {
    if let Some(v) = value {
        ext.insert(key, v);
    }
}

/// Inserts the decimal `value` under `key` when it is `Some`.
pub(crate) fn put_opt_int(ext: &mut StringMap, key: &str, value: Option<i64>) {
    if let Some(v) = value {
        ext.insert_int(key, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_errors_name_header_and_field() {
        let ext: StringMap = [("n", "12x"), ("b", "yes")].into_iter().collect();
        let f = Fields::new(&ext, "TestHeader");
        assert_eq!(
            f.i32("missing"),
            Err(HeaderError::Missing {
                header: "TestHeader",
                field: "missing"
            })
        );
        let e = f.i64("n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "TestHeader: field `n` = \"12x\" is not a valid 64-bit integer"
        );
        assert!(f.opt_bool("b").is_err());
        let ok: StringMap = [("n", "-7"), ("b", "TRUE")].into_iter().collect();
        let f = Fields::new(&ok, "T");
        assert_eq!(f.i32("n"), Ok(-7));
        assert_eq!(f.opt_bool("b"), Ok(Some(true)));
    }
}
