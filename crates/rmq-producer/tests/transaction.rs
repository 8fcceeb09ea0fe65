//! Transactional sends against a mock broker: what the half message and END_TRANSACTION carry, a delayed
//! message refused before anything is sent, and a check-back answered on a check thread (not the
//! connection's reader) with the check's offsets echoed. Real brokers: crates/rmq-it/tests/transaction.rs.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::sync::Mutex;
use std::time::{Duration, Instant};

use rmq_producer::{
    LocalTransactionState, ProducerConfig, ProducerError, SendResult, TransactionListener,
    TransactionProducer,
};
use rmq_protocol::header::{
    CheckTransactionStateRequestHeader, EndTransactionRequestHeader, SendMessageRequestHeaderV2,
    TransactionResolution,
};
use rmq_protocol::message::{decode_properties, sys_flag};
use rmq_protocol::store::encode_store_message;
use rmq_protocol::{Message, MessageExt, RemotingCommand, RequestCode, ValidationError};
use rmq_testkit::{Action, send_ok};

mod common;
use common::{broker, namesrv, route};

#[derive(Default)]
struct Listener {
    checked_on: Mutex<Vec<(String, String)>>,
}

impl TransactionListener for Listener {
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
        let thread = std::thread::current().name().unwrap_or_default().to_owned();
        self.checked_on
            .lock()
            .unwrap()
            .push((m.topic.clone(), thread));
        LocalTransactionState::Commit
    }
}

fn ends(b: &rmq_testkit::MockServer) -> Vec<RemotingCommand> {
    b.received()
        .into_iter()
        .filter(|r| r.request_code() == RequestCode::END_TRANSACTION)
        .collect()
}

#[test]
fn half_message_then_end_transaction() {
    let b = broker(|_| vec![Action::Respond(send_ok(0, 5))]);
    let ns = namesrv(route(&[("broker-a", &b.addr())]));
    let p = TransactionProducer::new(
        ProducerConfig::new("tx_group", ns.addr()),
        Listener::default(),
    )
    .unwrap();
    p.start().unwrap();
    let r = p
        .send_message_in_transaction(&Message::new("T", "x"), &LocalTransactionState::Commit)
        .unwrap();
    assert_eq!(
        (r.state, r.end_error.clone()),
        (LocalTransactionState::Commit, None)
    );
    let deadline = Instant::now() + Duration::from_secs(2);
    while ends(&b).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let half = b
        .received()
        .into_iter()
        .find(|r| r.request_code() == RequestCode::SEND_MESSAGE_V2)
        .unwrap();
    let h: SendMessageRequestHeaderV2 = half.decode_header().unwrap();
    let props = decode_properties(h.0.properties.as_deref().unwrap_or_default());
    assert_eq!(props.get("TRAN_MSG"), Some("true"));
    assert_eq!(props.get("PGROUP"), Some("tx_group"));
    assert_eq!(
        h.0.sys_flag & sys_flag::TRANSACTION_PREPARED_TYPE,
        sys_flag::TRANSACTION_PREPARED_TYPE
    );
    let end = &ends(&b)[0];
    assert!(end.is_oneway());
    let e: EndTransactionRequestHeader = end.decode_header().unwrap();
    assert_eq!(e.commit_or_rollback, TransactionResolution::Commit);
    assert_eq!((e.tran_state_table_offset, e.commit_log_offset), (5, 5));
    assert_eq!(e.msg_id, r.half.msg_id.as_str());
    assert!(!e.from_transaction_check);
    assert_eq!(e.producer_group, "tx_group");
    assert_eq!(e.broker_name.as_deref(), Some("broker-a"));

    // Delayed delivery is refused before anything is sent.
    let sends = b.received_count(RequestCode::SEND_MESSAGE_V2.0);
    let mut delayed = Message::new("T", "x");
    delayed.set_delay_level(2);
    let err = p
        .send_message_in_transaction(&delayed, &LocalTransactionState::Commit)
        .unwrap_err();
    assert!(
        matches!(
            err,
            ProducerError::Validation(ValidationError::DelayedTransaction)
        ),
        "{err}"
    );
    assert_eq!(b.received_count(RequestCode::SEND_MESSAGE_V2.0), sends);
    p.shutdown();
}

#[test]
fn a_check_back_is_answered_on_a_check_thread_with_its_offsets() {
    let b = broker(|_| vec![Action::Respond(send_ok(0, 5))]);
    let ns = namesrv(route(&[("broker-a", &b.addr())]));
    let p = TransactionProducer::new(
        ProducerConfig {
            namespace: Some("nsA".into()),
            ..ProducerConfig::new("tx_group", ns.addr())
        },
        Listener::default(),
    )
    .unwrap();
    p.start().unwrap();
    // A connection to the broker exists (the start greeted it): push a check on it.
    let host: std::net::SocketAddr = "127.0.0.1:10911".parse().unwrap();
    let mut ext = MessageExt {
        topic: "nsA%T".into(),
        body: bytes::Bytes::from_static(b"half"),
        flag: 0,
        properties: rmq_protocol::StringMap::new(),
        queue_id: 0,
        queue_offset: 77,
        commit_log_offset: 4242,
        sys_flag: 0,
        born_timestamp: 1,
        born_host: host,
        store_timestamp: 2,
        store_host: host,
        reconsume_times: 0,
        prepared_transaction_offset: 0,
        body_crc: 0,
    };
    ext.properties.insert("UNIQ_KEY", "ABCDEF");
    let mut check = RemotingCommand::with_header(
        RequestCode::CHECK_TRANSACTION_STATE,
        &CheckTransactionStateRequestHeader {
            topic: Some("RMQ_SYS_TRANS_HALF_TOPIC".into()),
            tran_state_table_offset: 77,
            commit_log_offset: 4242,
            msg_id: Some("ABCDEF".into()),
            transaction_id: Some("ABCDEF".into()),
            offset_msg_id: None,
            broker_name: Some("broker-a".into()),
        },
    )
    .with_body(encode_store_message(&ext).unwrap());
    check.opaque = 9;
    check.mark_oneway();
    let deadline = Instant::now() + Duration::from_secs(3);
    while b.connections_accepted() == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    b.push_request(&check);
    while ends(&b).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let end = ends(&b)
        .pop()
        .expect("an END_TRANSACTION answering the check");
    let e: EndTransactionRequestHeader = end.decode_header().unwrap();
    assert!(e.from_transaction_check);
    assert_eq!((e.tran_state_table_offset, e.commit_log_offset), (77, 4242));
    assert_eq!(e.commit_or_rollback, TransactionResolution::Commit);
    assert_eq!(e.msg_id, "ABCDEF");
    assert_eq!(e.topic.as_deref(), Some("RMQ_SYS_TRANS_HALF_TOPIC"));
    assert_eq!(e.producer_group, "nsA%tx_group");
    let seen = p.listener().checked_on.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].0, "T",
        "the listener sees the topic without the namespace"
    );
    assert!(
        seen[0].1.starts_with("rmq-tx-check-"),
        "ran on {:?}",
        seen[0].1
    );
    assert_eq!(p.checks_answered(), 1);
    // Oneway: nothing answers the check itself.
    assert!(b.client_responses().is_empty());
    p.shutdown();
}

/// The future form: the half message, the local transaction (on a `rmq-local-tx` thread, not the
/// caller's or a reader's) and END_TRANSACTION, as the blocking form does; a delayed message refused
/// before anything is sent.
#[test]
fn the_async_form_sends_the_half_message_runs_the_local_transaction_and_ends_it() {
    struct Where(Mutex<Vec<String>>);
    impl TransactionListener for Where {
        type Arg = LocalTransactionState;
        fn execute(&self, _: &Message, _: &SendResult, arg: &Self::Arg) -> LocalTransactionState {
            let name = std::thread::current().name().unwrap_or_default().to_owned();
            self.0.lock().unwrap().push(name);
            *arg
        }
        fn check(&self, _: &MessageExt) -> LocalTransactionState {
            LocalTransactionState::Commit
        }
    }
    let b = broker(|_| vec![Action::Respond(send_ok(0, 5))]);
    let ns = namesrv(route(&[("broker-a", &b.addr())]));
    let p = TransactionProducer::new(
        ProducerConfig::new("tx_group", ns.addr()),
        Where(Mutex::new(Vec::new())),
    )
    .unwrap();
    p.start().unwrap();
    let arg = std::sync::Arc::new(LocalTransactionState::Rollback);
    let r = futures::executor::block_on(
        p.send_message_in_transaction_async(&Message::new("T", "x"), arg.clone()),
    )
    .unwrap();
    assert_eq!(
        (r.state, r.end_error.clone()),
        (LocalTransactionState::Rollback, None)
    );
    assert_eq!(*p.listener().0.lock().unwrap(), ["rmq-local-tx"]);
    let deadline = Instant::now() + Duration::from_secs(2);
    while ends(&b).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let e: EndTransactionRequestHeader = ends(&b)[0].decode_header().unwrap();
    assert_eq!(e.commit_or_rollback, TransactionResolution::Rollback);
    assert_eq!(e.msg_id, r.half.msg_id.as_str());
    let mut delayed = Message::new("T", "x");
    delayed.set_delay_level(2);
    assert!(matches!(
        futures::executor::block_on(p.send_message_in_transaction_async(&delayed, arg)),
        Err(ProducerError::Validation(
            ValidationError::DelayedTransaction
        ))
    ));
    p.shutdown();
}
