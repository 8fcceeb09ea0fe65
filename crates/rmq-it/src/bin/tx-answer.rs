//! A transactional producer in a process of its own, answering COMMIT to every check-back for its group:
//! the "restarted producer" of crates/rmq-it/tests/transaction.rs (a new process, the same group).
//!
//! `tx-answer NAMESRV GROUP SECONDS`: prints `ready` once started (its group registered with the brokers
//! by heartbeat), then `answered N` when SECONDS have passed.

use std::time::Duration;

use rmq_producer::{
    LocalTransactionState, ProducerConfig, SendResult, TransactionListener, TransactionProducer,
};
use rmq_protocol::{Message, MessageExt};

struct CommitAll;

impl TransactionListener for CommitAll {
    type Arg = ();
    fn execute(&self, _: &Message, _: &SendResult, _: &()) -> LocalTransactionState {
        LocalTransactionState::Commit
    }
    fn check(&self, _: &MessageExt) -> LocalTransactionState {
        LocalTransactionState::Commit
    }
}

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().collect();
    let [_, namesrv, group, seconds] = &args[..] else {
        return Err("usage: tx-answer NAMESRV GROUP SECONDS".into());
    };
    let seconds: u64 = seconds.parse().map_err(|_| "SECONDS is not a number")?;
    let p = TransactionProducer::new(
        ProducerConfig::new(group.clone(), namesrv.clone()),
        CommitAll,
    )
    .map_err(|e| e.to_string())?;
    p.start().map_err(|e| e.to_string())?;
    println!("ready");
    std::thread::sleep(Duration::from_secs(seconds));
    println!("answered {}", p.checks_answered());
    p.shutdown();
    Ok(())
}
