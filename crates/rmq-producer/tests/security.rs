//! Credentials and namespaces on the wire, against mock servers: every request the producer makes (route,
//! heartbeat, send, unregister) is signed so that the signature recomputed from what the server received
//! matches; a namespaced producer sends `ns%topic` and `ns%group` with INSTANCE_ID and reports the topic
//! without the namespace. The real-server proofs are in crates/rmq-it/tests/{acl,namespace}.rs.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use rmq_protocol::acl::{Credentials, signature};
use rmq_protocol::header::{HeartbeatData, SendMessageRequestHeaderV2};
use rmq_protocol::message::decode_properties;
use rmq_protocol::{Message, RemotingCommand, RequestCode};
use rmq_testkit::{Action, send_ok};

mod common;
use common::{broker, namesrv, producer, route};

fn assert_signed(r: &RemotingCommand, ak: &str, sk: &str) {
    assert_eq!(r.ext_fields.get("AccessKey"), Some(ak), "{r:?}");
    let sent = r.ext_fields.get("Signature").unwrap_or_default();
    assert!(!sent.is_empty(), "unsigned: {r:?}");
    assert_eq!(
        sent,
        signature(&r.ext_fields, &r.body, sk),
        "the signature does not match what was received: {r:?}"
    );
}

#[test]
fn every_request_is_signed_with_the_credentials() {
    let b = broker(|_| vec![Action::Respond(send_ok(0, 1))]);
    let ns = namesrv(route(&[("broker-a", &b.addr())]));
    let p = producer(&ns, |c| {
        c.credentials = Some(
            Credentials::new("ak-1", "sk-secret")
                .unwrap()
                .with_security_token("tok")
                .unwrap(),
        );
    });
    p.send_sync(&Message::new("T", "signed")).unwrap();
    p.send_async(&Message::new("T", vec![b'z'; 8192]))
        .wait()
        .unwrap();
    p.send_oneway(&Message::new("T", "oneway")).unwrap();
    p.send_batch(&[Message::new("T", "b1"), Message::new("T", "b2")])
        .ok();
    assert!(!format!("{:?}", p.config()).contains("sk-secret"));
    p.shutdown();
    let (mut routes, mut others) = (0, 0);
    for r in ns.received() {
        assert_signed(&r, "ak-1", "sk-secret");
        assert_eq!(r.ext_fields.get("SecurityToken"), Some("tok"));
        routes += 1;
    }
    for r in b.received() {
        assert_signed(&r, "ak-1", "sk-secret");
        others += 1;
    }
    assert!(
        routes >= 1 && others >= 5,
        "{routes} route requests, {others} broker requests"
    );
    for code in [
        RequestCode::HEART_BEAT,
        RequestCode::SEND_MESSAGE_V2,
        RequestCode::UNREGISTER_CLIENT,
    ] {
        assert!(b.received_count(code.0) >= 1, "no {code:?}");
    }
}

#[test]
fn a_namespace_wraps_topic_and_group_and_results_unwrap_them() {
    let b = broker(|_| vec![Action::Respond(send_ok(0, 1))]);
    let ns = namesrv(route(&[("broker-a", &b.addr())]));
    let p = producer(&ns, |c| c.namespace = Some("nsA".into()));
    let r = p.send_sync(&Message::new("T", "in nsA")).unwrap();
    assert_eq!(r.topic, "T");
    let mut m = Message::new("T", "caller's INSTANCE_ID is replaced");
    m.put_user_property("INSTANCE_ID", "other").ok();
    p.send_sync(&m).unwrap();
    assert!(p.topic_route("T").is_ok());
    p.shutdown();
    let asked: Vec<_> = ns
        .received()
        .iter()
        .filter_map(|r| r.ext_fields.get("topic").map(str::to_owned))
        .collect();
    assert!(
        asked.iter().all(|t| t == "nsA%T" || t == "TBW102"),
        "{asked:?}"
    );
    let sends: Vec<_> = b
        .received()
        .into_iter()
        .filter(|r| r.request_code() == RequestCode::SEND_MESSAGE_V2)
        .collect();
    assert_eq!(sends.len(), 2);
    for s in &sends {
        let h: SendMessageRequestHeaderV2 = s.decode_header().unwrap();
        assert_eq!(h.0.topic, "nsA%T");
        assert_eq!(h.0.producer_group, "nsA%rmq_test_group");
        let props = decode_properties(h.0.properties.as_deref().unwrap_or_default());
        assert_eq!(props.get("INSTANCE_ID"), Some("nsA"), "{props:?}");
    }
    let hb = b
        .received()
        .into_iter()
        .find(|r| r.request_code() == RequestCode::HEART_BEAT)
        .unwrap();
    let data = HeartbeatData::decode(&hb.body).unwrap();
    assert_eq!(data.producer_data_set[0].group_name, "nsA%rmq_test_group");
}
