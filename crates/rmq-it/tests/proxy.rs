//! The producer pointed at a RocketMQ 5.5.0 proxy (rocketmq-proxy, cluster mode, remoting port) instead of
//! the name server: sync, async, oneway, batch, ordered (a FIFO topic with sharding keys), transactional
//! and delayed sends, read back by the official Java consumer through the name server; and the refusals
//! only a proxy makes, as typed errors (a topic with no message type, a FIFO topic without a sharding key,
//! request-reply). Needs `scripts/cluster up --proxy N` (scripts/test starts the 5.5.0 cluster with two
//! proxies); without proxies each test says it is skipped. A proxy checks each message's type against the
//! topic's, so every topic here is created with its type first (`scripts/cluster topic`).

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rmq_it::{Cluster, now_ms, sha256_hex, unique_topic};
use rmq_producer::{
    LocalTransactionState, Producer, ProducerConfig, ProducerError, SendResult, SendStatus,
    TransactionListener, TransactionProducer,
};
use rmq_protocol::{Message, MessageExt};

/// The cluster, when it has proxies.
fn proxied(test: &str) -> Option<Cluster> {
    let c = Cluster::from_env(test)?;
    if c.proxies.is_empty() {
        eprintln!("SKIPPED {test}: no proxy (scripts/cluster up --proxy N)");
        return None;
    }
    Some(c)
}

/// The producer's "name servers": every proxy.
fn endpoints(c: &Cluster) -> String {
    let list: Vec<String> = c.proxies.iter().map(|a| a.to_string()).collect();
    list.join(";")
}

fn producer(c: &Cluster) -> Producer {
    let p = Producer::new(ProducerConfig::new("rmq_it_proxy", endpoints(c))).unwrap();
    p.start().unwrap();
    p
}

/// A new topic of message type `ty`.
fn typed_topic(c: &Cluster, prefix: &str, ty: &str) -> String {
    let topic = unique_topic(prefix);
    c.control(&["topic", &topic, ty]).unwrap();
    topic
}

/// Every broker address of `topic`'s route is a proxy.
fn assert_via_proxy(c: &Cluster, p: &Producer, topic: &str) {
    let (route, _) = p.topic_route(topic).unwrap();
    for b in &route.broker_datas {
        for addr in b.broker_addrs.values() {
            assert!(
                c.proxies.iter().any(|x| x.to_string() == *addr),
                "{addr} is not a proxy"
            );
        }
    }
}

fn uniq(r: &SendResult) -> String {
    r.msg_id.as_str().to_owned()
}

#[test]
fn sync_async_oneway_and_batch_through_a_proxy_are_read_back() {
    let Some(c) = proxied("sync_async_oneway_and_batch_through_a_proxy_are_read_back") else {
        return;
    };
    let p = producer(&c);
    let topic = typed_topic(&c, "rmq_proxy_normal", "NORMAL");
    let mut m = Message::new(topic.clone(), "sync through a proxy");
    m.set_tags("TagS");
    m.set_keys(["proxy-sync"]);
    let sync = p.send_sync(&m).unwrap();
    assert_eq!(sync.status, SendStatus::SendOk);
    assert_via_proxy(&c, &p, &topic);
    let asynchronous = p
        .send_async(&Message::new(topic.clone(), "async through a proxy"))
        .wait()
        .unwrap();
    p.send_oneway(&Message::new(topic.clone(), "oneway through a proxy"))
        .unwrap();
    let batch: Vec<Message> = (0..4)
        .map(|i| Message::new(topic.clone(), format!("batch {i} through a proxy")))
        .collect();
    // One batch, one result: its msg_id lists the four UNIQ_KEYs.
    let batched = p.send_batch(&batch).unwrap();
    assert_eq!(batched.len(), 1);
    let got = c
        .read_back(&topic, Duration::from_secs(30), |m| m.len() >= 7)
        .unwrap();
    assert_eq!(got.len(), 7, "{got:?}");
    let mut ids = vec![uniq(&sync), uniq(&asynchronous)];
    ids.extend(uniq(&batched[0]).split(',').map(str::to_owned));
    assert_eq!(ids.len(), 6);
    for id in &ids {
        assert!(
            got.iter().any(|g| g["uniqKey"] == id.as_str()),
            "{id} missing"
        );
    }
    let s = got
        .iter()
        .find(|g| g["uniqKey"] == uniq(&sync).as_str())
        .unwrap();
    assert_eq!(
        s["bodySha256"].as_str().unwrap(),
        sha256_hex(b"sync through a proxy")
    );
    assert_eq!(s["tags"], "TagS");
    assert!(
        got.iter()
            .any(|g| g["bodySha256"] == sha256_hex(b"oneway through a proxy").as_str())
    );
    p.shutdown();
}

/// Auto-batch through a proxy (issue 23): the batch flag and the broker name in the header are what the
/// proxy needs to pass a batch on; each caller gets its own id, read back by the Java consumer.
#[test]
fn auto_batched_sends_through_a_proxy_are_read_back() {
    let Some(c) = proxied("auto_batched_sends_through_a_proxy_are_read_back") else {
        return;
    };
    let mut config = ProducerConfig::new("rmq_it_proxy_auto_batch", endpoints(&c));
    config.auto_batch = true;
    config.auto_batch_linger = Duration::from_millis(50);
    let p = Producer::new(config).unwrap();
    p.start().unwrap();
    let topic = typed_topic(&c, "rmq_proxy_auto_batch", "NORMAL");
    p.send_sync(&Message::new(topic.clone(), "first")).unwrap();
    assert_via_proxy(&c, &p, &topic);
    let msgs: Vec<Message> = (0..30)
        .map(|i| Message::new(topic.clone(), format!("auto-batched {i} through a proxy")))
        .collect();
    let futures: Vec<_> = msgs.iter().map(|m| p.send_async(m)).collect();
    let results: Vec<SendResult> = futures.into_iter().map(|f| f.wait().unwrap()).collect();
    let queues: std::collections::BTreeSet<_> = results
        .iter()
        .map(|r| (r.broker_name.to_string(), r.queue_id))
        .collect();
    assert!(queues.len() <= 3, "not batched: {queues:?}");
    let got = c
        .read_back(&topic, Duration::from_secs(30), |m| m.len() >= 31)
        .unwrap();
    for (r, m) in results.iter().zip(&msgs) {
        let g = got
            .iter()
            .find(|g| g["uniqKey"] == uniq(r).as_str())
            .unwrap_or_else(|| panic!("{} not read back", uniq(r)));
        assert_eq!(g["bodySha256"].as_str().unwrap(), sha256_hex(&m.body));
        assert_eq!(g["queueOffset"].as_i64(), Some(r.queue_offset), "{g}");
    }
    p.shutdown();
}

#[test]
fn ordered_sends_through_a_proxy_keep_their_queue() {
    let Some(c) = proxied("ordered_sends_through_a_proxy_keep_their_queue") else {
        return;
    };
    let p = producer(&c);
    let topic = typed_topic(&c, "rmq_proxy_fifo", "FIFO");
    let mut queues = std::collections::HashMap::new();
    for i in 0..12 {
        let key = format!("order-{}", i % 3);
        let mut m = Message::new(topic.clone(), format!("{key} step {i}"));
        m.set_sharding_key(&key);
        let r = p.send_sync(&m).unwrap();
        let q = queues
            .entry(key)
            .or_insert((r.broker_name.clone(), r.queue_id));
        assert_eq!(
            *q,
            (r.broker_name.clone(), r.queue_id),
            "one key, one queue"
        );
    }
    let got = c
        .read_back(&topic, Duration::from_secs(30), |m| m.len() >= 12)
        .unwrap();
    assert_eq!(got.len(), 12);
    // Without a sharding key a FIFO topic refuses the message: a typed error that says what to do.
    let e = p
        .send_sync(&Message::new(topic.clone(), "no key"))
        .unwrap_err();
    match &e {
        ProducerError::MessageTypeMismatch {
            expected, actual, ..
        } => assert_eq!((expected.as_str(), actual.as_str()), ("FIFO", "NORMAL")),
        e => panic!("not a type mismatch: {e:?}"),
    }
    assert!(e.to_string().contains("sharding key"), "{e}");
    assert!(!e.is_retryable() && !e.possibly_stored());
    p.shutdown();
}

#[test]
fn a_topic_without_a_message_type_is_a_typed_refusal() {
    let Some(c) = proxied("a_topic_without_a_message_type_is_a_typed_refusal") else {
        return;
    };
    let p = producer(&c);
    // Unknown to the proxy: it would be auto-created by a broker, but the proxy refuses it first.
    let topic = unique_topic("rmq_proxy_untyped");
    let e = p.send_sync(&Message::new(topic, "x")).unwrap_err();
    match &e {
        ProducerError::MessageTypeMismatch { expected, .. } => {
            assert_eq!(expected, "UNSPECIFIED")
        }
        e => panic!("not a type mismatch: {e:?}"),
    }
    assert!(e.to_string().contains("message.type=NORMAL"), "{e}");
    assert_eq!(p.get_stats().retries, 0, "not retried");
    p.shutdown();
}

#[test]
fn a_delay_level_through_a_proxy_holds_the_message_back() {
    let Some(c) = proxied("a_delay_level_through_a_proxy_holds_the_message_back") else {
        return;
    };
    let p = producer(&c);
    let topic = typed_topic(&c, "rmq_proxy_delay", "DELAY");
    let mut m = Message::new(topic.clone(), "delayed through a proxy");
    m.set_delay_level(2); // 5 s
    p.send_sync(&m).unwrap();
    let early = c
        .read_back(&topic, Duration::from_secs(2), |_| true)
        .unwrap();
    assert!(early.is_empty(), "delivered early: {early:?}");
    c.read_back(&topic, Duration::from_secs(20), |m| m.len() == 1)
        .unwrap();
    p.shutdown();
}

/// Executes with the state passed; answers a check-back by the message's key, and counts them.
#[derive(Default)]
struct Decide {
    checks: AtomicUsize,
}

impl TransactionListener for Decide {
    type Arg = LocalTransactionState;

    fn execute(
        &self,
        _: &Message,
        _: &SendResult,
        arg: &LocalTransactionState,
    ) -> LocalTransactionState {
        *arg
    }

    fn check(&self, m: &MessageExt) -> LocalTransactionState {
        self.checks.fetch_add(1, Ordering::SeqCst);
        match m.properties.get("KEYS") {
            Some("committed") => LocalTransactionState::Commit,
            _ => LocalTransactionState::Rollback,
        }
    }
}

/// The proxy (5.5.0) forwards a remoting client's half message to the broker as it is, so it keeps no
/// transaction data for it, and drops the END_TRANSACTION that follows ("cannot found transaction data",
/// answered as success): the outcome takes effect when the broker checks back, through the proxy, once
/// the proxy has registered the producer group with the broker (its heartbeat round, up to about 20 s
/// here). So the listener's check decides, and the commit is read later than without a proxy.
#[test]
fn a_transaction_through_a_proxy_commits_and_rolls_back() {
    let Some(c) = proxied("a_transaction_through_a_proxy_commits_and_rolls_back") else {
        return;
    };
    let p = TransactionProducer::new(
        ProducerConfig::new(format!("rmq_it_proxy_tx_{}", now_ms()), endpoints(&c)),
        Decide::default(),
    )
    .unwrap();
    p.start().unwrap();
    let topic = typed_topic(&c, "rmq_proxy_tx", "TRANSACTION");
    for (key, state) in [
        ("rolled-back", LocalTransactionState::Rollback),
        ("committed", LocalTransactionState::Commit),
    ] {
        let mut m = Message::new(topic.clone(), format!("tx {key}"));
        m.set_keys([key]);
        let r = p.send_message_in_transaction(&m, &state).unwrap();
        assert_eq!((r.state, r.end_error), (state, None));
    }
    let keys = |m: &[serde_json::Value]| -> Vec<String> {
        m.iter()
            .filter_map(|g| g["keys"].as_str().map(str::to_owned))
            .collect()
    };
    c.read_back(&topic, Duration::from_secs(90), |m| {
        keys(m) == ["committed"]
    })
    .unwrap();
    assert!(
        p.listener().checks.load(Ordering::SeqCst) > 0,
        "resolved by a check-back"
    );
    std::thread::sleep(Duration::from_secs(1));
    let again = c
        .read_back(&topic, Duration::from_secs(5), |_| true)
        .unwrap();
    assert_eq!(keys(&again), ["committed"]);
    p.shutdown();
}

#[test]
fn request_reply_through_a_proxy_is_refused_with_a_clear_error() {
    let Some(c) = proxied("request_reply_through_a_proxy_is_refused_with_a_clear_error") else {
        return;
    };
    let p = producer(&c);
    let topic = typed_topic(&c, "rmq_proxy_request", "NORMAL");
    // The first request learns of the proxy only from its route: it is stored, and ends with the error
    // when acknowledged, not at its 10 s timeout.
    let t0 = std::time::Instant::now();
    let e = p
        .request(
            &Message::new(topic.clone(), "ping"),
            Duration::from_secs(10),
        )
        .unwrap_err();
    assert!(matches!(e, ProducerError::NotThroughProxy { .. }), "{e:?}");
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    // Later ones are refused before anything is sent.
    let sent = p.get_stats().sent;
    let e = p
        .request(&Message::new(topic, "ping"), Duration::from_secs(10))
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("does not work through a RocketMQ 5 proxy"),
        "{e}"
    );
    assert_eq!(p.get_stats().sent, sent, "nothing sent");
    p.shutdown();
}
