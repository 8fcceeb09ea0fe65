//! ACL against a cluster that enforces it (`scripts/cluster up --acl`: ACL 2.0 on 5.x, ACL 1.0 on 4.x;
//! scripts/test runs both): the right credentials send every way and the Java consumer reads it all back;
//! a wrong secret, a topic the user may not publish to, and no credentials at all are refused after one
//! attempt with the access error, and the broker stays healthy. Skipped with a printed reason on a cluster
//! without ACL.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use rmq_it::{AclUsers, Cluster, now_ms};
use rmq_producer::{Producer, ProducerConfig, ProducerError};
use rmq_protocol::Message;
use rmq_protocol::acl::{Credentials, Refusal};
use rmq_routing::HealthState;

fn acl_cluster(test: &str) -> Option<(Cluster, AclUsers)> {
    let c = Cluster::from_env(test)?;
    let Some(acl) = c.acl.clone() else {
        eprintln!("SKIPPED {test}: the cluster does not enforce ACL (scripts/cluster up --acl)");
        return None;
    };
    Some((c, acl))
}

fn producer(c: &Cluster, creds: Option<(&str, &str)>) -> Producer {
    let config = ProducerConfig {
        credentials: creds.map(|(ak, sk)| Credentials::new(ak, sk).unwrap()),
        ..ProducerConfig::new("rmq_it_acl_producer", c.namesrv.to_string())
    };
    let p = Producer::new(config).unwrap();
    p.start().unwrap();
    p
}

#[test]
fn the_right_credentials_send_every_way_and_are_read_back() {
    let Some((c, acl)) = acl_cluster("the_right_credentials_send_every_way_and_are_read_back")
    else {
        return;
    };
    let p = producer(&c, Some((&acl.producer.0, &acl.producer.1)));
    // The topic is fixed (the only one the user may publish to): this run's messages carry a unique tag.
    let run = format!("run{}", now_ms());
    let msg = |how: &str, i: u32| {
        let mut m = Message::new(acl.topic.clone(), "signed");
        m.set_tags(&run);
        m.set_keys([format!("{run}-{how}-{i}")]);
        m
    };
    let mut want = BTreeSet::new();
    for i in 0..3 {
        p.send_sync(&msg("sync", i)).unwrap();
        want.insert(format!("{run}-sync-{i}"));
        p.send_async(&msg("async", i)).wait().unwrap();
        want.insert(format!("{run}-async-{i}"));
        p.send_oneway(&msg("oneway", i)).unwrap();
        want.insert(format!("{run}-oneway-{i}"));
    }
    let batch: Vec<Message> = (0..4).map(|i| msg("batch", i)).collect();
    let results = p.send_batch(&batch).unwrap();
    assert_eq!(results.len(), 1);
    want.extend((0..4).map(|i| format!("{run}-batch-{i}")));
    let bodies = |msgs: &[serde_json::Value]| -> BTreeSet<String> {
        msgs.iter()
            .filter(|m| m["tags"].as_str() == Some(run.as_str()))
            .filter_map(|m| m["keys"].as_str().map(str::to_owned))
            .collect()
    };
    let read = c
        .read_back(&acl.topic, Duration::from_secs(30), |m| bodies(m) == want)
        .unwrap();
    assert_eq!(bodies(&read), want);
    println!(
        "ACL ({}): {} messages sent sync, async, oneway and in a batch, all read back",
        c.version,
        want.len()
    );
}

/// Sends once to `topic` with `creds`, expecting an access error of `kind` after one attempt, with the
/// broker left healthy.
fn refused(c: &Cluster, creds: Option<(&str, &str)>, topic: &str, kind: Refusal) {
    let p = producer(c, creds);
    let t0 = Instant::now();
    let e = p
        .send_sync(&Message::new(topic, "must be refused"))
        .unwrap_err();
    let took = t0.elapsed();
    // Not AttemptsExhausted: the refusal ended the send at its first attempt.
    let ProducerError::Denied {
        refusal, remark, ..
    } = &e
    else {
        panic!("expected an access error, got {e:?}");
    };
    assert_eq!(*refusal, kind, "{e}");
    assert!(!e.possibly_stored() && !e.is_retryable());
    assert!(remark.as_deref().is_some_and(|r| !r.is_empty()), "{e}");
    if let Some((_, secret)) = creds {
        assert!(!e.to_string().contains(secret) && !format!("{e:?}").contains(secret));
    }
    // The async path ends the same way.
    let ea = p
        .send_async(&Message::new(topic, "must be refused"))
        .wait()
        .unwrap_err();
    assert_eq!(ea.refusal(), Some(kind), "{ea}");
    let stats = p.get_stats();
    assert_eq!((stats.failed, stats.retries), (2, 0), "{stats:?}");
    for b in &stats.router.brokers {
        assert_eq!(b.state, HealthState::Healthy, "{b:?}");
    }
    println!("refused ({kind}) after 1 attempt in {took:?}: {e}");
}

#[test]
fn a_wrong_secret_is_an_authentication_error_after_one_attempt() {
    let Some((c, acl)) = acl_cluster("a_wrong_secret_is_an_authentication_error_after_one_attempt")
    else {
        return;
    };
    refused(
        &c,
        Some((&acl.producer.0, "not-the-secret-1234")),
        &acl.topic,
        Refusal::Authentication,
    );
}

#[test]
fn a_topic_the_user_may_not_publish_to_is_a_permission_error() {
    let Some((c, acl)) = acl_cluster("a_topic_the_user_may_not_publish_to_is_a_permission_error")
    else {
        return;
    };
    refused(
        &c,
        Some((&acl.producer.0, &acl.producer.1)),
        "RmqAclForbidden",
        Refusal::Permission,
    );
}

#[test]
fn no_credentials_are_refused() {
    let Some((c, acl)) = acl_cluster("no_credentials_are_refused") else {
        return;
    };
    refused(&c, None, &acl.topic, Refusal::Authentication);
}
