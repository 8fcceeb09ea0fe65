//! A transactional message: the half message is stored, the local transaction runs, and the message is
//! committed (or rolled back). A broker that never learned the outcome asks `check`.
//!
//! `scripts/cluster up && cargo run -p rmq-examples --example transaction`
//! (the name server comes from `RMQ_NAMESRV_ADDR` / `NAMESRV_ADDR`, default 127.0.0.1:9876).

use rmq::prelude::*;

/// Orders: the local transaction is "write the order row"; a check looks the order up.
struct Orders;

impl TransactionListener for Orders {
    /// The order id the caller passes.
    type Arg = u64;

    fn execute(&self, _msg: &Message, half: &SendResult, order: &u64) -> LocalTransactionState {
        println!("half message {} stored; writing order {order}", half.msg_id);
        // A real application commits its database transaction here and reports how it ended.
        LocalTransactionState::Commit
    }

    fn check(&self, msg: &MessageExt) -> LocalTransactionState {
        println!(
            "broker asks about {:?}",
            msg.properties.get("UNIQ_KEY").unwrap_or_default()
        );
        // Look the order up; unknown keeps the broker asking (up to its transactionCheckMax).
        LocalTransactionState::Commit
    }
}

fn main() -> Result<(), ProducerError> {
    let mut config = ProducerConfig::from_env()?;
    config.producer_group = "transaction_example_group".into();
    let producer = TransactionProducer::new(config, Orders)?;
    producer.start()?;
    let r =
        producer.send_message_in_transaction(&Message::new("TransactionTopic", "order 42"), &42)?;
    println!(
        "{:?}: local transaction {:?}, END_TRANSACTION {}",
        r.half.status,
        r.state,
        match &r.end_error {
            None => "sent".to_owned(),
            Some(e) => format!("failed ({e}); the broker will check back"),
        }
    );
    producer.shutdown();
    Ok(())
}
