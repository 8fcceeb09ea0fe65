//! Namespaces as the Java client applies them (`NamespaceUtil`): a resource `r` of namespace `ns` is named
//! `ns%r` on the wire; a retry or DLQ resource keeps its prefix in front (`%RETRY%ns%r`); system topics
//! and groups, and names already wrapped, stay as they are. Brokers do not interpret namespaces: they see
//! topic and group names with a `%` in them.
//!
//! ```
//! use rmq_protocol::namespace::{unwrap, wrap};
//! assert_eq!(wrap("nsA", "TopicTest"), "nsA%TopicTest");
//! assert_eq!(wrap("nsA", "%RETRY%GID"), "%RETRY%nsA%GID");
//! assert_eq!(wrap("nsA", "TBW102"), "TBW102");
//! assert_eq!(unwrap("nsA", "nsA%TopicTest"), "TopicTest");
//! ```

use std::borrow::Cow;

use crate::error::{ValidationError, cut};

/// Separator between namespace and name.
pub const SEPARATOR: char = '%';
/// Prefix of retry topics.
pub const RETRY_PREFIX: &str = "%RETRY%";
/// Prefix of dead-letter topics.
pub const DLQ_PREFIX: &str = "%DLQ%";

/// Topics never wrapped (`TopicValidator.isSystemTopic`, 5.5.0's set), besides any `rmq_sys_` prefix.
const SYSTEM_TOPICS: &[&str] = &[
    "TBW102",
    "SCHEDULE_TOPIC_XXXX",
    "BenchmarkTest",
    "RMQ_SYS_TRANS_HALF_TOPIC",
    "RMQ_SYS_TRACE_TOPIC",
    "RMQ_SYS_TRANS_OP_HALF_TOPIC",
    "TRANS_CHECK_MAX_TIME_TOPIC",
    "SELF_TEST_TOPIC",
    "OFFSET_MOVED_EVENT",
    "CHECKPOINT_TOPIC",
    "RMQ_SYS_ROCKSDB_TRANS_HALF_TOPIC",
    "RMQ_SYS_ROCKSDB_TRANS_OP_HALF_TOPIC",
];

/// Whether `name` is a system topic or group, which no namespace applies to.
pub fn is_system(name: &str) -> bool {
    SYSTEM_TOPICS.contains(&name)
        || name.starts_with("rmq_sys_")
        || name.starts_with("CID_RMQ_SYS_")
}

/// `name` without a retry or DLQ prefix, and that prefix.
fn split_prefix(name: &str) -> (&str, &str) {
    for p in [RETRY_PREFIX, DLQ_PREFIX] {
        if let Some(rest) = name.strip_prefix(p) {
            return (p, rest);
        }
    }
    ("", name)
}

/// `name` in namespace `ns` (unchanged when `ns` or `name` is empty, `name` is a system resource, or it
/// is already in `ns`).
pub fn wrap<'a>(ns: &str, name: &'a str) -> Cow<'a, str> {
    if ns.is_empty() || name.is_empty() || is_system(name) {
        return Cow::Borrowed(name);
    }
    let (prefix, bare) = split_prefix(name);
    if is_system(bare) || in_namespace(ns, bare) {
        return Cow::Borrowed(name);
    }
    Cow::Owned(format!("{prefix}{ns}{SEPARATOR}{bare}"))
}

/// `name` with namespace `ns` taken off (the retry or DLQ prefix kept); unchanged when it is not in `ns`.
pub fn unwrap<'a>(ns: &str, name: &'a str) -> Cow<'a, str> {
    if ns.is_empty() {
        return Cow::Borrowed(name);
    }
    let (prefix, bare) = split_prefix(name);
    match bare
        .strip_prefix(ns)
        .and_then(|r| r.strip_prefix(SEPARATOR))
    {
        Some(rest) if prefix.is_empty() => Cow::Borrowed(rest),
        Some(rest) => Cow::Owned(format!("{prefix}{rest}")),
        None => Cow::Borrowed(name),
    }
}

fn in_namespace(ns: &str, bare: &str) -> bool {
    bare.strip_prefix(ns)
        .is_some_and(|r| r.starts_with(SEPARATOR))
}

/// Checks a namespace: not blank, at most 64 characters of `a-zA-Z0-9_-` (a `%` would make wrapped names
/// ambiguous).
pub fn validate(ns: &str) -> Result<(), ValidationError> {
    let bad = || ValidationError::Namespace { ns: cut(ns) };
    if ns.trim().is_empty() || ns.len() > 64 {
        return Err(bad());
    }
    if !ns
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(bad());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_namespace_util_cases() {
        // NamespaceUtilTest.
        assert_eq!(unwrap("MQ_INST_XXX", "MQ_INST_XXX%TOPIC_XXX"), "TOPIC_XXX");
        assert_eq!(
            unwrap("MQ_INST_XXX", "%RETRY%MQ_INST_XXX%GID_XXX"),
            "%RETRY%GID_XXX"
        );
        assert_eq!(
            unwrap("MQ_INST_XXX", "%DLQ%MQ_INST_XXX%GID_XXX"),
            "%DLQ%GID_XXX"
        );
        assert_eq!(wrap("MQ_INST_XXX", "rmq_sys_topic"), "rmq_sys_topic");
        assert_eq!(wrap("MQ_INST_XXX", "TOPIC_XXX"), "MQ_INST_XXX%TOPIC_XXX");
        assert_eq!(
            wrap("MQ_INST_XXX", "%RETRY%GID_XXX"),
            "%RETRY%MQ_INST_XXX%GID_XXX"
        );
        assert_eq!(
            wrap("MQ_INST_XXX", "%DLQ%GID_XXX"),
            "%DLQ%MQ_INST_XXX%GID_XXX"
        );
    }

    #[test]
    fn left_alone() {
        assert_eq!(wrap("", "T"), "T");
        assert_eq!(wrap("ns", ""), "");
        assert_eq!(wrap("ns", "ns%T"), "ns%T");
        assert_eq!(wrap("ns", "%RETRY%ns%G"), "%RETRY%ns%G");
        assert_eq!(wrap("ns", "RMQ_SYS_TRACE_TOPIC"), "RMQ_SYS_TRACE_TOPIC");
        assert_eq!(wrap("ns", "CID_RMQ_SYS_X"), "CID_RMQ_SYS_X");
        assert_eq!(wrap("ns", "nsx%T"), "ns%nsx%T");
        assert_eq!(unwrap("ns", "other%T"), "other%T");
        assert_eq!(unwrap("ns", "nsT"), "nsT");
        assert_eq!(unwrap("", "ns%T"), "ns%T");
        for ok in ["nsA", "MQ_INST_1_x-y"] {
            assert!(validate(ok).is_ok(), "{ok}");
        }
        for bad in ["", " ", "a%b", "a|b", "é", &"n".repeat(65)] {
            assert!(validate(bad).is_err(), "{bad}");
        }
    }
}
