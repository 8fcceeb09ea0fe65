//! Route data from GET_ROUTEINFO_BY_TOPIC: [`TopicRouteData`], [`QueueData`], [`BrokerData`], and
//! [`perm`] bits.
//!
//! Name servers answer in two dialects. From 4.9.4 on (request version ≥ 401, or `acceptStandardJsonOnly`)
//! the body is standard JSON. Before that, fastjson writes the integer keys of `brokerAddrs` unquoted:
//! `{"brokerAddrs":{0:"127.0.0.1:10911"}}`. [`TopicRouteData::decode`] reads both: it parses with
//! serde_json and, only if that fails, quotes bare integer object keys in a small pre-pass and parses again.
//! It also accepts `topicSynFlag` (the pre-4.9.0 spelling), unknown members, `null` for absent members, and
//! `\uXXXX` escapes.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

use crate::error::DecodeError;

/// Permission bits of a queue (`PermName`).
pub mod perm {
    /// Priority (bit 3).
    pub const PRIORITY: i32 = 0x8;
    /// Readable (bit 2).
    pub const READ: i32 = 0x4;
    /// Writable (bit 1).
    pub const WRITE: i32 = 0x2;
    /// Inherit: may serve as a template for auto-created topics (bit 0).
    pub const INHERIT: i32 = 0x1;

    /// Whether `perm` allows writes.
    pub fn is_writeable(perm: i32) -> bool {
        perm & WRITE == WRITE
    }

    /// Whether `perm` allows reads.
    pub fn is_readable(perm: i32) -> bool {
        perm & READ == READ
    }

    /// Whether `perm` is inheritable.
    pub fn is_inherited(perm: i32) -> bool {
        perm & INHERIT == INHERIT
    }

    /// `perm` as Java's `PermName.perm2String`: `RWX` style, `-` for a missing bit (`R`, `W`, `X` for
    /// inherit).
    pub fn to_string(perm: i32) -> String {
        let mut s = String::with_capacity(3);
        s.push(if is_readable(perm) { 'R' } else { '-' });
        s.push(if is_writeable(perm) { 'W' } else { '-' });
        s.push(if is_inherited(perm) { 'X' } else { '-' });
        s
    }
}

/// The id of a master in [`BrokerData::broker_addrs`].
pub const MASTER_ID: i64 = 0;

/// Treats `null` like an absent member.
fn null_default<'de, D: Deserializer<'de>, T: Default + Deserialize<'de>>(
    d: D,
) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A topic's route: which brokers hold it, how many queues each, and their addresses.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TopicRouteData {
    /// Brokers holding the topic.
    #[serde(rename = "brokerDatas", default, deserialize_with = "null_default")]
    pub broker_datas: Vec<BrokerData>,
    /// Filter servers by broker address (legacy; usually empty).
    #[serde(
        rename = "filterServerTable",
        default,
        deserialize_with = "null_default"
    )]
    pub filter_server_table: BTreeMap<String, Vec<String>>,
    /// Ordered-topic layout `"brokerA:4;brokerB:8"`, when the name server keeps one.
    #[serde(
        rename = "orderTopicConf",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub order_topic_conf: Option<String>,
    /// Queues per broker.
    #[serde(rename = "queueDatas", default, deserialize_with = "null_default")]
    pub queue_datas: Vec<QueueData>,
    /// Static-topic logical queue mapping (kept as raw JSON).
    #[serde(
        rename = "topicQueueMappingByBroker",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub topic_queue_mapping_by_broker: Option<serde_json::Value>,
}

/// Queues of a topic on one broker.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct QueueData {
    /// Broker name.
    #[serde(rename = "brokerName", default, deserialize_with = "null_default")]
    pub broker_name: String,
    /// Permission bits ([`perm`]).
    #[serde(default, deserialize_with = "null_default")]
    pub perm: i32,
    /// Readable queue count.
    #[serde(rename = "readQueueNums", default, deserialize_with = "null_default")]
    pub read_queue_nums: i32,
    /// Topic system flag (`topicSynFlag` before 4.9.0).
    #[serde(
        rename = "topicSysFlag",
        alias = "topicSynFlag",
        default,
        deserialize_with = "null_default"
    )]
    pub topic_sys_flag: i32,
    /// Writable queue count.
    #[serde(rename = "writeQueueNums", default, deserialize_with = "null_default")]
    pub write_queue_nums: i32,
}

/// One broker group: its name, cluster, and addresses by broker id (0 = master).
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct BrokerData {
    /// Addresses by broker id; id [`MASTER_ID`] is the master.
    #[serde(rename = "brokerAddrs", default, deserialize_with = "null_default")]
    pub broker_addrs: BTreeMap<i64, String>,
    /// Broker name.
    #[serde(rename = "brokerName", default, deserialize_with = "null_default")]
    pub broker_name: String,
    /// Cluster name.
    #[serde(default, deserialize_with = "null_default")]
    pub cluster: String,
    /// Whether a slave may act as master (5.0+).
    #[serde(
        rename = "enableActingMaster",
        default,
        deserialize_with = "null_default"
    )]
    pub enable_acting_master: bool,
    /// Zone (5.0+).
    #[serde(rename = "zoneName", default, skip_serializing_if = "Option::is_none")]
    pub zone_name: Option<String>,
}

impl BrokerData {
    /// The master's address, if the broker group has one.
    pub fn master_addr(&self) -> Option<&str> {
        self.broker_addrs.get(&MASTER_ID).map(String::as_str)
    }
}

impl TopicRouteData {
    /// Parses a route body in either dialect (see the module docs).
    ///
    /// Queue counts are checked: each at most [`MAX_QUEUE_NUMS`], all together at most
    /// [`MAX_ROUTE_QUEUES`] (a buggy or hostile server's `writeQueueNums` of 2^31 would otherwise make the
    /// producer build two billion publish queues).
    pub fn decode(body: &[u8]) -> Result<Self, DecodeError> {
        let route: TopicRouteData = match serde_json::from_slice(body) {
            Ok(r) => r,
            Err(first) => {
                let fixed = quote_integer_keys(body);
                serde_json::from_slice(&fixed).map_err(|_| DecodeError::Json {
                    what: "TopicRouteData",
                    message: first.to_string(),
                })?
            }
        };
        route.check_sizes()?;
        Ok(route)
    }

    /// Refuses queue counts above [`MAX_QUEUE_NUMS`] each or [`MAX_ROUTE_QUEUES`] in all (negative
    /// counts mean no queues, as in Java).
    pub fn check_sizes(&self) -> Result<(), DecodeError> {
        // Publish queues come from `orderTopicConf` when it is set, else from the queue data (Java's
        // `topicRouteData2TopicPublishInfo`): each source is bounded alone.
        let mut total: i64 = 0;
        for q in &self.queue_datas {
            for (what, n) in [
                ("writeQueueNums", q.write_queue_nums),
                ("readQueueNums", q.read_queue_nums),
            ] {
                if n > MAX_QUEUE_NUMS {
                    return Err(DecodeError::InvalidLength {
                        what,
                        length: i64::from(n),
                    });
                }
            }
            total += i64::from(q.write_queue_nums.max(0));
        }
        let mut ordered: i64 = 0;
        let order_conf = self.order_topic_conf.as_deref().unwrap_or("");
        for item in order_conf.split(';') {
            if let Some(n) = item
                .split_once(':')
                .and_then(|(_, n)| n.trim().parse::<i64>().ok())
            {
                if n > i64::from(MAX_QUEUE_NUMS) {
                    return Err(DecodeError::InvalidLength {
                        what: "orderTopicConf queue count",
                        length: n,
                    });
                }
                ordered += n.max(0);
            }
        }
        let total = total.max(ordered);
        if total > MAX_ROUTE_QUEUES as i64 {
            return Err(DecodeError::InvalidLength {
                what: "publish queues of a route",
                length: total,
            });
        }
        Ok(())
    }

    /// Standard JSON, members and map keys sorted, as 4.9.4+ name servers write it.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The broker group named `broker_name`.
    pub fn broker(&self, broker_name: &str) -> Option<&BrokerData> {
        self.broker_datas
            .iter()
            .find(|b| b.broker_name == broker_name)
    }
}

/// Most queues one broker may declare for a topic in a route (`writeQueueNums`, `readQueueNums`, a count in
/// `orderTopicConf`). Real topics have up to a few hundred.
pub const MAX_QUEUE_NUMS: i32 = 65_536;

/// Most publish queues one route may add up to.
pub const MAX_ROUTE_QUEUES: usize = 262_144;

/// Copies a JSON text, quoting object keys that are bare integers (`{0:"a",-1:"b"}` becomes
/// `{"0":"a","-1":"b"}`). Text inside strings is left alone. Everything else is copied unchanged, so the
/// result is valid JSON exactly when the input was JSON apart from such keys.
pub fn quote_integer_keys(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + 16);
    let mut in_string = false;
    let mut escaped = false;
    // Whether the last significant byte outside strings was `{` or `,` (a key may start here).
    let mut key_position = false;
    let mut i = 0;
    while i < text.len() {
        let b = text[i];
        if in_string {
            out.push(b);
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            i += 1;
            continue;
        }
        if key_position && (b.is_ascii_digit() || b == b'-') {
            let start = i;
            let mut end = i + 1;
            while end < text.len() && text[end].is_ascii_digit() {
                end += 1;
            }
            let mut after = end;
            while after < text.len() && text[after].is_ascii_whitespace() {
                after += 1;
            }
            if after < text.len() && text[after] == b':' {
                out.push(b'"');
                out.extend_from_slice(&text[start..end]);
                out.push(b'"');
            } else {
                out.extend_from_slice(&text[start..end]);
            }
            key_position = false;
            i = end;
            continue;
        }
        match b {
            b'"' => {
                in_string = true;
                key_position = false;
            }
            b'{' | b',' => key_position = true,
            _ if b.is_ascii_whitespace() => {}
            _ => key_position = false,
        }
        out.push(b);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Before: a `writeQueueNums` of 2^31 - 1 was accepted and the producer aborted building the queues.
    #[test]
    fn oversized_queue_counts_are_refused() {
        let route = |w: i64, conf: &str| {
            format!(
                r#"{{"orderTopicConf":{conf},"brokerDatas":[{{"brokerName":"a","brokerAddrs":{{"0":"127.0.0.1:1"}}}}],"queueDatas":[{{"brokerName":"a","perm":6,"readQueueNums":4,"writeQueueNums":{w}}}]}}"#
            )
        };
        let e = TopicRouteData::decode(route(2_147_483_647, "null").as_bytes()).unwrap_err();
        assert!(
            matches!(
                e,
                DecodeError::InvalidLength {
                    what: "writeQueueNums",
                    ..
                }
            ),
            "{e}"
        );
        assert!(TopicRouteData::decode(route(65_536, "null").as_bytes()).is_ok());
        assert!(TopicRouteData::decode(route(-1, "null").as_bytes()).is_ok());
        let e = TopicRouteData::decode(route(8, r#""a:99999999""#).as_bytes()).unwrap_err();
        assert!(matches!(e, DecodeError::InvalidLength { .. }), "{e}");
        let many: Vec<String> = (0..5)
            .map(|i| {
                format!(
                    r#"{{"brokerName":"b{i}","perm":6,"readQueueNums":1,"writeQueueNums":65536}}"#
                )
            })
            .collect();
        let body = format!(r#"{{"brokerDatas":[],"queueDatas":[{}]}}"#, many.join(","));
        let e = TopicRouteData::decode(body.as_bytes()).unwrap_err();
        assert!(
            matches!(
                e,
                DecodeError::InvalidLength {
                    what: "publish queues of a route",
                    ..
                }
            ),
            "{e}"
        );
    }

    /// Found by the route fuzz target: a huge integer in the raw-JSON member came back one ulp off after
    /// a round trip (serde_json's fast float parsing); float_roundtrip makes it exact.
    #[test]
    fn raw_json_numbers_survive_a_round_trip() {
        let input = b"[[],{\n},\"\",[],[999920999999992709999999998]]";
        let r = TopicRouteData::decode(input).unwrap();
        assert_eq!(TopicRouteData::decode(&r.encode()).unwrap(), r);
    }

    const NON_STANDARD: &str = r#"{"brokerDatas":[{"brokerAddrs":{0:"127.0.0.1:10911",1:"127.0.0.1:10921"},"brokerName":"broker-a","cluster":"DefaultCluster","enableActingMaster":false}],"filterServerTable":{},"queueDatas":[{"brokerName":"broker-a","perm":6,"readQueueNums":4,"topicSysFlag":0,"writeQueueNums":4}]}"#;

    #[test]
    fn parses_fastjson_unquoted_keys() {
        let r = TopicRouteData::decode(NON_STANDARD.as_bytes()).unwrap();
        assert_eq!(r.broker_datas.len(), 1);
        let b = &r.broker_datas[0];
        assert_eq!(b.master_addr(), Some("127.0.0.1:10911"));
        assert_eq!(
            b.broker_addrs.get(&1).map(String::as_str),
            Some("127.0.0.1:10921")
        );
        assert_eq!(r.queue_datas[0].write_queue_nums, 4);
        assert_eq!(r.queue_datas[0].perm, 6);
    }

    #[test]
    fn standard_and_non_standard_agree() {
        let std_json = NON_STANDARD
            .replace("{0:", "{\"0\":")
            .replace(",1:", ",\"1\":");
        let a = TopicRouteData::decode(std_json.as_bytes()).unwrap();
        let b = TopicRouteData::decode(NON_STANDARD.as_bytes()).unwrap();
        assert_eq!(a, b);
        assert_eq!(TopicRouteData::decode(&a.encode()).unwrap(), a);
    }

    #[test]
    fn old_spelling_unknown_members_nulls_and_escapes() {
        let text = r#"{ "brokerDatas" : [ { "brokerAddrs" : { 0 : "127.0.0.1:10911" } ,
            "brokerName":"br\u006fker-\u00e9", "cluster":null, "future":{"x":[1,2,{3:4}]} } ],
            "filterServerTable":null, "orderTopicConf":"broker-a:4",
            "queueDatas":[{"brokerName":"broker-a","perm":7,"readQueueNums":8,"topicSynFlag":3,"writeQueueNums":8,"extra":true}],
            "topicQueueMappingByBroker":null }"#;
        let r = TopicRouteData::decode(text.as_bytes()).unwrap();
        assert_eq!(r.broker_datas[0].broker_name, "broker-é");
        assert_eq!(r.broker_datas[0].cluster, "");
        assert_eq!(r.queue_datas[0].topic_sys_flag, 3);
        assert_eq!(r.order_topic_conf.as_deref(), Some("broker-a:4"));
        assert!(r.topic_queue_mapping_by_broker.is_none());
    }

    #[test]
    fn strings_that_look_like_keys_are_untouched() {
        let text = br#"{"a":"{0:\"x\",1:2}","b":[1,2, 3],"c":{-1:"neg"}}"#;
        let fixed = quote_integer_keys(text);
        let v: serde_json::Value = serde_json::from_slice(&fixed).unwrap();
        assert_eq!(v["a"], "{0:\"x\",1:2}");
        assert_eq!(v["b"], serde_json::json!([1, 2, 3]));
        assert_eq!(v["c"]["-1"], "neg");
    }

    #[test]
    fn garbage_is_a_typed_error() {
        for bad in [
            &b""[..],
            b"{",
            b"[1,2]",
            b"{\"brokerDatas\":5}",
            b"\xff\xfe",
        ] {
            assert!(matches!(
                TopicRouteData::decode(bad),
                Err(DecodeError::Json { .. })
            ));
        }
    }

    #[test]
    fn perm_bits() {
        assert!(perm::is_writeable(6) && perm::is_readable(6) && !perm::is_inherited(6));
        assert!(perm::is_inherited(7));
        assert!(!perm::is_writeable(4));
        assert_eq!(perm::to_string(7), "RWX");
        assert_eq!(perm::to_string(4), "R--");
    }
}
