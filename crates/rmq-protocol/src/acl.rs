//! ACL request signing, as Java's `AclClientRPCHook` does it, and reading an ACL refusal from a response.
//!
//! Signing (ACL 1.0 on 4.x brokers and ACL 2.0 on 5.x: the same fields): the request gets ext fields
//! `AccessKey` (and `SecurityToken` when set); then every ext field but `Signature` is taken in key order
//! (Java's `TreeMap`: UTF-16 code units), their values concatenated, the body appended, and
//! `Signature = Base64(HmacSHA1(secret key, that))` added. A broker rebuilds the same text from the fields
//! it received, so signing must be the last change to a request. Name servers check nothing; signing
//! their requests is harmless, and the Java client does it too.
//!
//! ```
//! use rmq_protocol::acl::{Credentials, sign};
//! use rmq_protocol::{RemotingCommand, RequestCode};
//! let creds = Credentials::new("ak", "sk").unwrap();
//! let mut req = RemotingCommand::request(RequestCode::GET_ROUTEINFO_BY_TOPIC);
//! req.ext_fields.insert("topic", "TopicTest");
//! sign(&mut req, &creds);
//! assert_eq!(req.ext_fields.get("Signature"), Some("bUNDfLxxr02vTlIhHg73lpRhduQ="));
//! assert!(!format!("{creds:?}").contains("sk"));
//! ```

use std::fmt;

use base64::Engine as _;
use hmac::{KeyInit, Mac};
use smallvec::SmallVec;

use crate::code::ResponseCode;
use crate::command::RemotingCommand;
use crate::map::StringMap;

/// Ext field naming the access key.
pub const ACCESS_KEY: &str = "AccessKey";
/// Ext field carrying the signature.
pub const SIGNATURE: &str = "Signature";
/// Ext field carrying the optional security token.
pub const SECURITY_TOKEN: &str = "SecurityToken";

type HmacSha1 = hmac::Hmac<sha1::Sha1>;

/// An access key, its secret key and an optional security token. `Debug` shows the access key only; the
/// secret and the token are never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    access_key: String,
    secret_key: String,
    security_token: Option<String>,
}

/// Why credentials were refused before any request was made.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CredentialsError {
    /// The access key is empty.
    #[error("the access key is empty")]
    EmptyAccessKey,
    /// The secret key is empty.
    #[error("the secret key is empty")]
    EmptySecretKey,
    /// The security token is empty (leave it out instead): a binary header would carry it as null and
    /// the broker's signature would differ.
    #[error("the security token is empty; leave it unset instead")]
    EmptySecurityToken,
}

impl Credentials {
    /// Credentials of `access_key` (a 5.x user name) and `secret_key` (its password).
    pub fn new(
        access_key: impl Into<String>,
        secret_key: impl Into<String>,
    ) -> Result<Credentials, CredentialsError> {
        let (access_key, secret_key) = (access_key.into(), secret_key.into());
        if access_key.is_empty() {
            return Err(CredentialsError::EmptyAccessKey);
        }
        if secret_key.is_empty() {
            return Err(CredentialsError::EmptySecretKey);
        }
        Ok(Credentials {
            access_key,
            secret_key,
            security_token: None,
        })
    }

    /// The same credentials with a security token (sent and signed; Apache brokers do not check it).
    pub fn with_security_token(
        mut self,
        token: impl Into<String>,
    ) -> Result<Credentials, CredentialsError> {
        let token = token.into();
        if token.is_empty() {
            return Err(CredentialsError::EmptySecurityToken);
        }
        self.security_token = Some(token);
        Ok(self)
    }

    /// The same credentials without a security token.
    pub fn without_security_token(mut self) -> Credentials {
        self.security_token = None;
        self
    }

    /// These credentials with the access key and/or the secret key replaced (`None`: kept); the token is
    /// kept.
    pub fn replaced(
        &self,
        access_key: Option<String>,
        secret_key: Option<String>,
    ) -> Result<Credentials, CredentialsError> {
        let mut c = Credentials::new(
            access_key.unwrap_or_else(|| self.access_key.clone()),
            secret_key.unwrap_or_else(|| self.secret_key.clone()),
        )?;
        c.security_token = self.security_token.clone();
        Ok(c)
    }

    /// The access key.
    pub fn access_key(&self) -> &str {
        &self.access_key
    }

    /// Whether a security token is set.
    pub fn has_security_token(&self) -> bool {
        self.security_token.is_some()
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key", &self.access_key)
            .field("secret_key", &"<redacted>")
            .field(
                "security_token",
                &self.security_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// Adds `AccessKey`, `SecurityToken` (when set) and `Signature` to `request`, replacing earlier ones.
pub fn sign(request: &mut RemotingCommand, credentials: &Credentials) {
    let ext = &mut request.ext_fields;
    ext.insert(ACCESS_KEY, &credentials.access_key);
    if let Some(t) = &credentials.security_token {
        ext.insert(SECURITY_TOKEN, t);
    }
    let s = signature(ext, &request.body, &credentials.secret_key);
    request.ext_fields.insert(SIGNATURE, &s);
}

/// The signature of `ext` (its `Signature` field left out) and `body` with `secret_key`.
pub fn signature(ext: &StringMap, body: &[u8], secret_key: &str) -> String {
    let mut fields: SmallVec<[(&str, &str); 24]> =
        ext.iter().filter(|(k, _)| *k != SIGNATURE).collect();
    // Java's TreeMap<String, _> orders by UTF-16 code units; for ASCII keys that is byte order.
    fields.sort_unstable_by(|a, b| {
        if a.0.is_ascii() && b.0.is_ascii() {
            a.0.cmp(b.0)
        } else {
            a.0.encode_utf16().cmp(b.0.encode_utf16())
        }
    });
    // HMAC takes a key of any length; `new_from_slice` cannot fail for it.
    let Ok(mut mac) = HmacSha1::new_from_slice(secret_key.as_bytes()) else {
        return String::new();
    };
    for (_, v) in &fields {
        mac.update(v.as_bytes());
    }
    mac.update(body);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// What an ACL refusal says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Refusal {
    /// The broker did not accept who the client is: no access key, an unknown one, a wrong signature, a
    /// disabled user.
    Authentication,
    /// The client is known but may not do this (publish to this topic).
    Permission,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Refusal::Authentication => "authentication failed",
            Refusal::Permission => "permission denied",
        })
    }
}

/// Whether a response is an ACL refusal, and which kind. 5.x (ACL 2.0) answers code 16 NO_PERMISSION with
/// the bare message; 4.x (ACL 1.0) answers code 1 SYSTEM_ERROR with a remark that starts with
/// `org.apache.rocketmq.acl.common.AclException`. Other codes and remarks are not refusals.
pub fn refusal(code: ResponseCode, remark: Option<&str>) -> Option<Refusal> {
    let remark = remark.unwrap_or("");
    let permission = |r: &str| {
        r.contains("has no permission")
            || r.contains("No default permission")
            || r.contains("No permission for")
    };
    if code == ResponseCode::SYSTEM_ERROR {
        let r = remark.strip_prefix("org.apache.rocketmq.acl.common.AclException")?;
        return Some(if permission(r) {
            Refusal::Permission
        } else {
            Refusal::Authentication
        });
    }
    if code != ResponseCode::NO_PERMISSION {
        return None;
    }
    const AUTHENTICATION: [&str; 5] = [
        "username cannot be null",
        "is not found",
        "check signature failed",
        "is disabled",
        "authenticationMetadataProvider",
    ];
    if AUTHENTICATION.iter().any(|m| remark.contains(m)) {
        Some(Refusal::Authentication)
    } else {
        // Code 16 is also a broker's answer to a topic it does not let anyone write (a read-only topic,
        // `brokerPermission`): a permission refusal all the same.
        Some(Refusal::Permission)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::code::RequestCode;

    fn route_request() -> RemotingCommand {
        let mut r = RemotingCommand::request(RequestCode::GET_ROUTEINFO_BY_TOPIC);
        r.ext_fields.insert("topic", "TopicTest");
        r
    }

    #[test]
    fn signing_again_replaces_the_signature() {
        // The Java vectors are checked in tests/java_vectors.rs; here: a command signed twice (a retry
        // of the same request) carries the same signature, the old one left out of the text.
        let creds = Credentials::new("ak", "sk").unwrap();
        let mut r = route_request().with_body(bytes::Bytes::from_static(b"Hello"));
        sign(&mut r, &creds);
        let first = r.ext_fields.get(SIGNATURE).unwrap().to_owned();
        sign(&mut r, &creds);
        assert_eq!(r.ext_fields.get(SIGNATURE), Some(first.as_str()));
        assert_eq!(r.ext_fields.get(ACCESS_KEY), Some("ak"));
    }

    #[test]
    fn keys_sort_as_java_strings() {
        // Upper case before lower case; a token is signed in its place ("SecurityToken" < "Signature"...
        // never signed itself) and "AccessKey" comes first.
        let creds = Credentials::new("ak", "sk")
            .unwrap()
            .with_security_token("tok")
            .unwrap();
        let mut r = route_request();
        sign(&mut r, &creds);
        let mut m = StringMap::new();
        m.insert("k", "ak" /* AccessKey */);
        m.insert("l", "tok" /* SecurityToken */);
        m.insert("m", "TopicTest" /* topic */);
        assert_eq!(
            r.ext_fields.get(SIGNATURE),
            Some(signature(&m, b"", "sk").as_str())
        );
        // Non-ASCII keys: UTF-16 order puts U+1F600 (surrogates from 0xD83D) before U+FF5E; UTF-8 byte
        // order would put it after.
        let mut a = StringMap::new();
        a.insert("\u{1F600}", "1");
        a.insert("\u{FF5E}", "2");
        let mut b = StringMap::new();
        b.insert("p", "1");
        b.insert("q", "2");
        assert_eq!(signature(&a, b"", "k"), signature(&b, b"", "k"));
    }

    #[test]
    fn secrets_never_print() {
        let c = Credentials::new("visible-ak", "hidden-secret")
            .unwrap()
            .with_security_token("hidden-token")
            .unwrap();
        let d = format!("{c:?}");
        assert!(d.contains("visible-ak"));
        assert!(!d.contains("hidden"), "{d}");
        assert_eq!(
            Credentials::new("", "s"),
            Err(CredentialsError::EmptyAccessKey)
        );
        assert_eq!(
            Credentials::new("a", ""),
            Err(CredentialsError::EmptySecretKey)
        );
        assert!(c.with_security_token("").is_err());
    }

    #[test]
    fn refusals_of_both_acl_versions() {
        use Refusal::*;
        let v1 = |m: &str| {
            refusal(
                ResponseCode::SYSTEM_ERROR,
                Some(&format!(
                    "org.apache.rocketmq.acl.common.AclException: {m}, org.apache.rocketmq.acl.plain.PlainPermissionManager.validate(PlainPermissionManager.java:683)"
                )),
            )
        };
        assert_eq!(
            v1("Check signature failed for accessKey=producer1"),
            Some(Authentication)
        );
        assert_eq!(v1("No accessKey is configured"), Some(Authentication));
        assert_eq!(v1("No acl config for nobody12"), Some(Authentication));
        assert_eq!(
            v1("No default permission for topic:TopicOther"),
            Some(Permission)
        );
        let v2 = |m: &str| refusal(ResponseCode::NO_PERMISSION, Some(m));
        assert_eq!(v2("username cannot be null."), Some(Authentication));
        assert_eq!(v2("User:nobody is not found."), Some(Authentication));
        assert_eq!(v2("check signature failed."), Some(Authentication));
        assert_eq!(
            v2(
                "User:producer1 has no permission to access Topic:TopicOther from 127.0.0.1, the decision is deny."
            ),
            Some(Permission)
        );
        assert_eq!(
            refusal(ResponseCode::SYSTEM_ERROR, Some("store error")),
            None
        );
        assert_eq!(refusal(ResponseCode::SYSTEM_ERROR, None), None);
        assert_eq!(refusal(ResponseCode::SUCCESS, None), None);
    }
}
