//! Delayed messages on real brokers: a delay level 2 message (5 s) and a 3 s timer message are not
//! readable before their time and are readable after it; the time each became readable (its store
//! time on the real topic) is printed. Timer messages need a 5.x broker with the timer wheel on
//! (scripts/cluster turns it on, 100 ms precision); 4.9.7 stores TIMER_* as plain properties and delivers
//! at once, so the timer test is skipped there (and on rocketmq-rust), saying why.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::time::Duration;

use rmq_it::{Cluster, ServerImpl, now_ms, unique_topic};
use rmq_producer::{Producer, ProducerConfig};
use rmq_protocol::Message;

fn producer(c: &Cluster) -> Producer {
    let p = Producer::new(ProducerConfig::new("rmq_it_delay", c.namesrv.to_string())).unwrap();
    p.start().unwrap();
    p
}

/// Sends `m`, checks it is not readable right away, then that it becomes readable no earlier than
/// `delay` (less `early`, the broker's rounding) and within `delay + 5 s`. Returns when it became readable.
fn delayed(c: &Cluster, p: &Producer, m: &Message, delay: Duration, early: Duration) -> Duration {
    let sent_ms = now_ms();
    p.send_sync(m).unwrap();
    let now = c
        .read_back(&m.topic, Duration::from_secs(5), |_| true)
        .unwrap();
    let read_at = now_ms() - sent_ms;
    if (read_at as u128) < delay.as_millis() {
        assert!(now.is_empty(), "readable after {read_at} ms: {now:?}");
    }
    let got = c
        .read_back(&m.topic, delay + Duration::from_secs(10), |m| m.len() == 1)
        .unwrap();
    let stored = got[0]["storeTimestamp"].as_i64().unwrap() - sent_ms;
    let after = Duration::from_millis(u64::try_from(stored).unwrap_or(0));
    assert!(
        after + early >= delay,
        "readable after {after:?}, asked {delay:?}"
    );
    assert!(
        after <= delay + Duration::from_secs(5),
        "readable after {after:?}, asked {delay:?}"
    );
    after
}

#[test]
fn a_delay_level_holds_the_message_back() {
    let Some(c) = Cluster::from_env("a_delay_level_holds_the_message_back") else {
        return;
    };
    let p = producer(&c);
    let mut m = Message::new(unique_topic("rmq_delay"), "level 2");
    m.set_delay_level(2);
    let after = delayed(&c, &p, &m, Duration::from_secs(5), Duration::ZERO);
    println!(
        "delay level 2 (5 s) on {:?} {}: readable after {after:?}",
        c.server, c.version
    );
    p.shutdown();
}

#[test]
fn a_timer_holds_the_message_back() {
    let Some(c) = Cluster::from_env("a_timer_holds_the_message_back") else {
        return;
    };
    if c.server == ServerImpl::Rust || c.is_4x() {
        eprintln!(
            "SKIPPED a_timer_holds_the_message_back: timer messages need an Apache RocketMQ 5.x broker"
        );
        return;
    }
    let p = producer(&c);
    let mut m = Message::new(unique_topic("rmq_timer"), "timer 3 s");
    m.set_delay_time_sec(3);
    // The wheel rounds the delivery time down to its precision (100 ms here).
    let after = delayed(
        &c,
        &p,
        &m,
        Duration::from_secs(3),
        Duration::from_millis(100),
    );
    println!("timer 3 s on {}: readable after {after:?}", c.version);
    p.shutdown();
}

#[test]
fn a_recalled_timer_message_is_never_delivered() {
    let Some(c) = Cluster::from_env("a_recalled_timer_message_is_never_delivered") else {
        return;
    };
    if c.server == ServerImpl::Rust || c.is_4x() {
        eprintln!(
            "SKIPPED a_recalled_timer_message_is_never_delivered: recall needs Apache RocketMQ 5.3.2+"
        );
        return;
    }
    let p = producer(&c);
    let topic = unique_topic("rmq_recall");
    let timer = |key: &str| {
        let mut m = Message::new(topic.clone(), key.to_owned());
        m.set_keys([key]);
        m.set_delay_time_sec(10);
        m
    };
    let kept = p.send_sync(&timer("kept")).unwrap();
    let recalled = p.send_sync(&timer("recalled")).unwrap();
    let handle = recalled
        .recall_handle
        .clone()
        .expect("a timer message's send returns a recall handle");
    assert!(kept.recall_handle.is_some());
    let id = p.recall(&topic, &handle).unwrap();
    assert_eq!(id, recalled.msg_id.as_str());
    // The sibling with the same delay arrives; a second later the recalled one still has not.
    let got = c
        .read_back(&topic, Duration::from_secs(25), |m| !m.is_empty())
        .unwrap();
    std::thread::sleep(Duration::from_secs(1));
    let again = c
        .read_back(&topic, Duration::from_secs(5), |_| true)
        .unwrap();
    let keys: Vec<&str> = again.iter().filter_map(|m| m["keys"].as_str()).collect();
    assert_eq!(keys, ["kept"], "first read {got:?}");
    // A handle of another topic is refused before anything is sent.
    assert!(p.recall("OtherTopic", &handle).is_err());
    println!(
        "recall on {}: the recalled 10 s timer message was never delivered, its sibling was",
        c.version
    );
    p.shutdown();
}
