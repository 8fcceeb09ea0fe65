//! TLS against servers that enforce it (`scripts/cluster up --tls`: name server and broker close plaintext
//! connections; a test CA signs their certificate): sync, async, oneway and batch sends over TLS are read
//! back by the Java consumer (itself over TLS); a plaintext producer gets a clear error within the
//! connect timeout; a producer that does not trust the CA is refused at the handshake. Skipped with a
//! printed reason on a cluster without TLS.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use rmq_it::{Cluster, unique_topic};
use rmq_producer::{Producer, ProducerConfig};
use rmq_protocol::Message;
use rmq_remoting::{RemotingConfig, TlsConfig, TlsTrust};

fn tls_cluster(test: &str) -> Option<(Cluster, std::path::PathBuf)> {
    let c = Cluster::from_env(test)?;
    let Some(ca) = c.tls_ca.clone() else {
        eprintln!("SKIPPED {test}: the cluster does not enforce TLS (scripts/cluster up --tls)");
        return None;
    };
    Some((c, ca))
}

fn config(c: &Cluster, tls: Option<TlsConfig>) -> ProducerConfig {
    ProducerConfig {
        remoting: RemotingConfig {
            tls,
            ..RemotingConfig::default()
        },
        ..ProducerConfig::new("rmq_it_tls_producer", c.namesrv.to_string())
    }
}

#[test]
fn sends_over_tls_are_read_back() {
    let Some((c, ca)) = tls_cluster("sends_over_tls_are_read_back") else {
        return;
    };
    let p = Producer::new(config(&c, Some(TlsConfig::with_ca_file(ca)))).unwrap();
    p.start().unwrap();
    let topic = unique_topic("rmq_tls");
    let mut want = BTreeSet::new();
    let msg = |k: String| {
        let mut m = Message::new(topic.clone(), vec![b'x'; 6000]); // compressed, several records
        m.set_keys([k]);
        m
    };
    for i in 0..3 {
        p.send_sync(&msg(format!("sync-{i}"))).unwrap();
        p.send_async(&msg(format!("async-{i}"))).wait().unwrap();
        p.send_oneway(&msg(format!("oneway-{i}"))).unwrap();
        want.extend([
            format!("sync-{i}"),
            format!("async-{i}"),
            format!("oneway-{i}"),
        ]);
    }
    let batch: Vec<Message> = (0..4).map(|i| msg(format!("batch-{i}"))).collect();
    p.send_batch(&batch).unwrap();
    want.extend((0..4).map(|i| format!("batch-{i}")));
    let keys = |msgs: &[serde_json::Value]| -> BTreeSet<String> {
        msgs.iter()
            .filter_map(|m| m["keys"].as_str().map(str::to_owned))
            .collect()
    };
    let read = c
        .read_back(&topic, Duration::from_secs(30), |m| keys(m) == want)
        .unwrap();
    assert_eq!(keys(&read), want);
    println!("TLS: {} messages sent and read back", want.len());
}

#[test]
fn a_plaintext_producer_gets_a_clear_error_within_the_connect_timeout() {
    let Some((c, _)) =
        tls_cluster("a_plaintext_producer_gets_a_clear_error_within_the_connect_timeout")
    else {
        return;
    };
    let cfg = config(&c, None);
    let limit = cfg.remoting.connect_timeout.max(cfg.send_msg_timeout);
    let p = Producer::new(cfg).unwrap();
    p.start().unwrap();
    let t0 = Instant::now();
    let e = p
        .send_sync(&Message::new(unique_topic("rmq_tls_plain"), "x"))
        .unwrap_err();
    let took = t0.elapsed();
    let text = e.to_string();
    assert!(text.contains("enforces TLS"), "{text}");
    assert!(
        took <= limit + Duration::from_millis(500),
        "{took:?} > {limit:?}"
    );
    println!("plaintext against TLS: refused in {took:?}: {text}");
}

#[test]
fn a_server_the_client_does_not_trust_is_refused_at_the_handshake() {
    let Some((c, _)) =
        tls_cluster("a_server_the_client_does_not_trust_is_refused_at_the_handshake")
    else {
        return;
    };
    // Pinned to a certificate that is not the server's (the CA's own).
    let wrong = c.tls_ca.clone().unwrap();
    let p = Producer::new(config(
        &c,
        Some(TlsConfig {
            trust: TlsTrust::Pinned(wrong),
            ..TlsConfig::default()
        }),
    ))
    .unwrap();
    p.start().unwrap();
    let e = p
        .send_sync(&Message::new(unique_topic("rmq_tls_untrusted"), "x"))
        .unwrap_err();
    assert!(e.to_string().contains("TLS handshake failed"), "{e}");
}
