//! Transactional messages: [`TransactionProducer`] sends a half message, runs the caller's local
//! transaction, and ends it with END_TRANSACTION (commit, rollback or unknown) to the broker that stored
//! it; brokers' check-backs for half messages whose end they never learned (CHECK_TRANSACTION_STATE) are
//! answered by the [`TransactionListener`] on a bounded pool of the producer's own threads, never on a
//! connection's reader thread.
//!
//! A check-back goes only to a connection that sent a heartbeat naming the producer group
//! (protocol-features.md §1.3): the producer greets the brokers of a topic before its first half message
//! is sent, and at start the brokers of the TBW102 route, so a producer that restarted answers checks
//! for half messages its predecessor left.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rmq_protocol::compress::decompress;
use rmq_protocol::header::{
    CheckTransactionStateRequestHeader, EndTransactionRequestHeader, TransactionResolution,
};
use rmq_protocol::message::property;
use rmq_protocol::{
    AUTO_CREATE_TOPIC, Message, MessageExt, OffsetMessageId, RemotingCommand, RequestCode,
    ValidationError,
};
use rmq_remoting::RemotingClient;
use tracing::{debug, warn};

use crate::async_send::Room;
use crate::config::ProducerConfig;
use crate::error::ProducerError;
use crate::future::Pending;
use crate::producer::Producer;
use crate::result::{SendResult, SendStatus};
use crate::workers::{Closed, Pool};

/// Check-backs waiting for a pool thread; more are dropped (the broker checks again next round), as the
/// Java client's `checkRequestHoldMax`.
const CHECK_QUEUE: usize = 2000;
/// Threads answering check-backs.
const CHECK_THREADS: usize = 2;

/// Bytes of check-back frames queued at most (bodies and ext fields), or the frame limit if larger (so
/// one frame always fits): a broker that floods check-backs with large half messages cannot grow the
/// queue past this; what does not fit is dropped and checked again later.
const CHECK_QUEUE_BYTES: usize = 64 << 20;
/// Timeout of an END_TRANSACTION write (Java: 3 s).
const END_TIMEOUT: Duration = Duration::from_secs(3);

/// What a local transaction (or the answer to a check) decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LocalTransactionState {
    /// Deliver the message.
    Commit,
    /// Discard the message.
    Rollback,
    /// Not known yet: the broker checks back later (up to its `transactionCheckMax` times).
    Unknown,
}

impl LocalTransactionState {
    fn resolution(self) -> TransactionResolution {
        match self {
            LocalTransactionState::Commit => TransactionResolution::Commit,
            LocalTransactionState::Rollback => TransactionResolution::Rollback,
            LocalTransactionState::Unknown => TransactionResolution::Unknown,
        }
    }
}

/// The application's side of transactional messages.
pub trait TransactionListener: Send + Sync + 'static {
    /// What [`TransactionProducer::send_message_in_transaction`] passes to [`TransactionListener::execute`].
    type Arg: ?Sized;

    /// Runs the local transaction of `message`, whose half message the broker stored as `half` says.
    /// Runs on the caller's thread. A panic counts as [`LocalTransactionState::Unknown`].
    fn execute(
        &self,
        message: &Message,
        half: &SendResult,
        arg: &Self::Arg,
    ) -> LocalTransactionState;

    /// Says how the local transaction of `message` ended, for a broker that did not learn it (the
    /// producer answered unknown, its END_TRANSACTION was lost, or it restarted). `message.topic` is
    /// the topic as the application names it; its `UNIQ_KEY` property is the id `execute` saw. Runs on
    /// one of the producer's check threads. A panic counts as [`LocalTransactionState::Unknown`].
    fn check(&self, message: &MessageExt) -> LocalTransactionState;
}

/// A half message sent and its local transaction run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransactionSendResult {
    /// The half message's send.
    pub half: SendResult,
    /// What the local transaction decided (rollback without running it when the half message was stored
    /// with a degraded status).
    pub state: LocalTransactionState,
    /// Why END_TRANSACTION could not be written, if it could not: the broker then checks back.
    pub end_error: Option<ProducerError>,
}

/// A producer of transactional messages: a [`Producer`] with a [`TransactionListener`].
pub struct TransactionProducer<L: TransactionListener> {
    producer: Producer,
    listener: Arc<L>,
    checks: Arc<CheckPool>,
    /// The proxy warning was logged (once per producer).
    proxy_warned: Arc<AtomicBool>,
    /// Runs the local transactions of asynchronous sends.
    pool: Arc<Pool>,
}

impl<L: TransactionListener> std::fmt::Debug for TransactionProducer<L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransactionProducer")
            .field("producer", &self.producer)
            .field("checks_answered", &self.checks_answered())
            .finish_non_exhaustive()
    }
}

impl<L: TransactionListener> TransactionProducer<L> {
    /// A transactional producer with `config` and `listener`, not started yet. Check-backs are handled
    /// from [`TransactionProducer::start`] on.
    pub fn new(config: ProducerConfig, listener: L) -> Result<Self, ProducerError> {
        let producer = Producer::new(config)?;
        let listener = Arc::new(listener);
        let core = producer.core();
        let answer = Answerer {
            remoting: core.remoting().clone(),
            group: core.config().wire_group().into_owned(),
            config: core.config().clone(),
            listener: listener.clone(),
        };
        let checks = CheckPool::start(answer)?;
        let queue = checks.clone();
        core.remoting().register_handler(
            RequestCode::CHECK_TRANSACTION_STATE,
            move |addr: &str, request: RemotingCommand| {
                queue.offer(addr, request);
                None
            },
        );
        Ok(TransactionProducer {
            producer,
            listener,
            checks,
            proxy_warned: Arc::new(AtomicBool::new(false)),
            pool: Arc::new(Pool::named("rmq-local-tx")),
        })
    }

    /// Starts the producer and registers its group with the brokers of the TBW102 route (a heartbeat
    /// each), so check-backs for half messages an earlier run of this group left reach it.
    pub fn start(&self) -> Result<(), ProducerError> {
        self.producer.start()?;
        self.pool.open();
        if let Err(e) = self.producer.ensure_route(AUTO_CREATE_TOPIC) {
            debug!(error = %e, "no TBW102 route: brokers are registered as topics are used");
        }
        self.producer.send_heartbeat_to_all_broker();
        Ok(())
    }

    /// The listener.
    pub fn listener(&self) -> &L {
        &self.listener
    }

    /// The producer underneath (for ordinary sends, stats, shutdown).
    pub fn producer(&self) -> &Producer {
        &self.producer
    }

    /// Check-backs answered so far.
    pub fn checks_answered(&self) -> u64 {
        self.checks.answered.load(Ordering::Relaxed)
    }

    /// Sends `message` as a half message (a synchronous send with retries), runs the local transaction
    /// with `arg` once it is stored, and ends it: END_TRANSACTION, oneway, to the master of the broker
    /// that stored it. A message with a delay or a delivery time is refused before anything is sent, as
    /// the 5.5.0 Java client does. A half message stored with a degraded status is rolled back without
    /// running the local transaction.
    ///
    /// Through a RocketMQ 5 proxy (5.5.0) the END_TRANSACTION is dropped by the proxy: the outcome takes
    /// effect when the broker checks back and [`TransactionListener::check`] answers (logged once).
    pub fn send_message_in_transaction(
        &self,
        message: &Message,
        arg: &L::Arg,
    ) -> Result<TransactionSendResult, ProducerError> {
        let half = half_message(&self.producer, message)?;
        // The broker checks back only over a connection that registered the group: greet the topic's
        // brokers and wait for the answers before the half message goes out.
        let config = self.producer.config();
        self.producer
            .ensure_route(&config.wire_name(&message.topic))?;
        let sent = self.producer.send_sync(&half)?;
        Ok(self.local().run(message, sent, arg))
    }

    /// [`TransactionProducer::send_message_in_transaction`] as a future that never blocks the caller:
    /// the route is made sure of and the local transaction run (it is your code, and may block) on the
    /// producer's local-transaction threads (up to 8, started on demand, apart from the threads that
    /// connect for sends); the half message goes out as [`Producer::send_async`] sends it.
    pub fn send_message_in_transaction_async(
        &self,
        message: &Message,
        arg: Arc<L::Arg>,
    ) -> Pending<TransactionSendResult>
    where
        L::Arg: Send + Sync,
    {
        let half = match half_message(&self.producer, message) {
            Ok(h) => h,
            Err(e) => return Pending::ready(Err(e)),
        };
        let (future, cell) = Pending::new();
        let (local, message) = (self.local(), message.clone());
        let pool = self.pool.clone();
        self.pool.push(Box::new(move |closed: Closed| {
            let topic = local
                .producer
                .config()
                .wire_name(&message.topic)
                .into_owned();
            let ready = if closed.0 {
                Err(ProducerError::State("shut down"))
            } else {
                local.producer.ensure_route(&topic)
            };
            if let Err(e) = ready {
                cell.complete(Err(e), || {});
                return;
            }
            let core = local.producer.core().clone();
            let timeout = core.config().send_msg_timeout;
            let then: crate::SendCallback = Box::new(move |r| match r {
                Err(e) => {
                    cell.complete(Err(e), || {});
                }
                // Not on the reader thread that delivers the result: the local transaction may block.
                Ok(sent) => pool.push(Box::new(move |closed: Closed| {
                    let r = if closed.0 {
                        // Shut down meanwhile: the half message is stored but its local transaction
                        // is not run here; the broker checks back and `check` decides.
                        Err(ProducerError::State(
                            "shut down before the local transaction ran; the broker checks back",
                        ))
                    } else {
                        Ok(local.run(&message, sent, &arg))
                    };
                    cell.complete(r, || {});
                })),
            });
            let room = Room::when_full(core.config(), Room::Queue);
            crate::auto_batch::start_callback(&core, &half, timeout, room, then);
        }));
        future
    }

    /// What running a local transaction and ending it needs, for this thread or another.
    fn local(&self) -> Local<L> {
        Local {
            producer: self.producer.clone(),
            listener: self.listener.clone(),
            proxy_warned: self.proxy_warned.clone(),
        }
    }

    /// Shuts the producer down (see [`Producer::shutdown`]) and stops the check threads and the
    /// local-transaction threads.
    pub fn shutdown(&self) {
        // Local transactions not started yet end first (their half messages are checked back); the
        // producer then drains its sends and closes.
        self.pool.close();
        self.producer.shutdown();
        self.checks.stop();
    }
}

/// The half message of `message`: refused (before anything is sent) with a delay or a delivery time,
/// as the 5.5.0 Java client does; marked prepared and named with the producer group.
fn half_message(producer: &Producer, message: &Message) -> Result<Message, ProducerError> {
    let delayed = property::DELAYS
        .iter()
        .any(|p| message.properties.contains_key(p));
    if delayed {
        return Err(ProducerError::Validation(
            ValidationError::DelayedTransaction,
        ));
    }
    let mut half = message.clone();
    half.properties
        .insert_bool(property::TRANSACTION_PREPARED, true);
    half.properties
        .insert(property::PRODUCER_GROUP, &producer.config().wire_group());
    Ok(half)
}

/// Runs a local transaction after its half message was sent, and ends it.
struct Local<L: TransactionListener> {
    producer: Producer,
    listener: Arc<L>,
    proxy_warned: Arc<AtomicBool>,
}

impl<L: TransactionListener> Local<L> {
    /// Runs the local transaction of `message`, whose half message was `sent` (rolled back without
    /// running it when stored with a degraded status), and writes END_TRANSACTION.
    fn run(&self, message: &Message, sent: SendResult, arg: &L::Arg) -> TransactionSendResult {
        let state = if sent.status == SendStatus::SendOk {
            let run = catch_unwind(AssertUnwindSafe(|| {
                self.listener.execute(message, &sent, arg)
            }));
            run.unwrap_or_else(|_| {
                warn!(msg_id = %sent.msg_id, "the local transaction panicked: ending it as unknown");
                LocalTransactionState::Unknown
            })
        } else {
            LocalTransactionState::Rollback
        };
        let end_error = self.end(message, &sent, state).err();
        let core = self.producer.core();
        if core.routes().behind_proxy() && !self.proxy_warned.swap(true, Ordering::Relaxed) {
            warn!(
                "transactions through a RocketMQ 5 proxy: the proxy (5.5.0) drops a remoting client's END_TRANSACTION (it keeps no transaction data for a half message it forwards), so commit and rollback take effect only when the broker checks back and TransactionListener::check answers"
            );
        }
        TransactionSendResult {
            half: sent,
            state,
            end_error,
        }
    }

    /// END_TRANSACTION for the half message `sent`.
    fn end(
        &self,
        message: &Message,
        sent: &SendResult,
        state: LocalTransactionState,
    ) -> Result<(), ProducerError> {
        let core = self.producer.core();
        let config = core.config();
        let topic = config.wire_name(&message.topic);
        let addr = core.routes().master_of(&topic, &sent.broker_name)?;
        let commit_log_offset = OffsetMessageId::decode(&sent.offset_msg_id)
            .or_else(|_| OffsetMessageId::decode(&sent.msg_id))
            .map(|id| id.offset)
            .map_err(|e| ProducerError::BadResponse {
                broker: sent.broker_name.to_string(),
                code: rmq_protocol::ResponseCode::SUCCESS,
                reason: format!("the half message's offset msgId cannot be read: {e}"),
            })?;
        let header = EndTransactionRequestHeader {
            topic: Some(topic.into_owned()),
            producer_group: config.wire_group().into_owned(),
            tran_state_table_offset: sent.queue_offset,
            commit_log_offset,
            commit_or_rollback: state.resolution(),
            from_transaction_check: false,
            msg_id: sent.msg_id.to_string(),
            transaction_id: Some(
                sent.transaction_id
                    .as_ref()
                    .unwrap_or(&sent.msg_id)
                    .to_string(),
            ),
            broker_name: Some(sent.broker_name.to_string()),
        };
        core.remoting()
            .invoke_oneway(
                &addr,
                RemotingCommand::with_header(RequestCode::END_TRANSACTION, &header),
                config.send_msg_timeout,
            )
            .map_err(ProducerError::from)
    }
}

impl<L: TransactionListener> Drop for TransactionProducer<L> {
    fn drop(&mut self) {
        self.checks.stop();
        self.pool.close();
    }
}

/// Answers check-backs: the listener's verdict, sent back as END_TRANSACTION.
struct Answerer {
    remoting: RemotingClient,
    group: String,
    config: ProducerConfig,
    listener: Arc<dyn CheckListener>,
}

/// The object-safe half of [`TransactionListener`], for the check threads.
trait CheckListener: Send + Sync {
    fn check(&self, message: &MessageExt) -> LocalTransactionState;
}

impl<L: TransactionListener> CheckListener for L {
    fn check(&self, message: &MessageExt) -> LocalTransactionState {
        TransactionListener::check(self, message)
    }
}

impl Answerer {
    /// Answers one check-back from the broker at `addr`.
    fn answer(&self, addr: &str, request: &RemotingCommand) -> Result<(), String> {
        let h: CheckTransactionStateRequestHeader =
            request.decode_header().map_err(|e| e.to_string())?;
        let mut msg =
            rmq_protocol::decode_store_message(&request.body).map_err(|e| e.to_string())?;
        // The broker does not inflate a compressed half message: the listener sees the body as sent.
        if rmq_protocol::compress::CompressionType::from_sys_flag(msg.sys_flag).is_some() {
            msg.body = decompress(&msg.body, msg.sys_flag, self.config.max_message_size)
                .map_err(|e| e.to_string())?
                .into();
        }
        msg.topic = self.config.user_name(&msg.topic).into_owned();
        let state = catch_unwind(AssertUnwindSafe(|| self.listener.check(&msg)))
            .unwrap_or(LocalTransactionState::Unknown);
        let uniq = msg
            .properties
            .get(property::UNIQ_CLIENT_MESSAGE_ID_KEYIDX)
            .map(str::to_owned)
            .or(h.msg_id.clone())
            .unwrap_or_else(|| msg.offset_msg_id());
        let header = EndTransactionRequestHeader {
            topic: h.topic,
            producer_group: self.group.clone(),
            tran_state_table_offset: h.tran_state_table_offset,
            commit_log_offset: h.commit_log_offset,
            commit_or_rollback: state.resolution(),
            from_transaction_check: true,
            msg_id: uniq,
            transaction_id: h.transaction_id,
            broker_name: h.broker_name,
        };
        debug!(addr, state = ?state, offset = h.commit_log_offset, "answering a transaction check");
        self.remoting
            .invoke_oneway(
                addr,
                RemotingCommand::with_header(RequestCode::END_TRANSACTION, &header),
                END_TIMEOUT,
            )
            .map_err(|e| e.to_string())
    }
}

/// The bounded queue and threads that answer check-backs.
struct CheckPool {
    queue: Mutex<Option<SyncSender<(String, RemotingCommand)>>>,
    /// Bytes of the frames queued.
    queued: ByteBudget,
    threads: Mutex<Vec<JoinHandle<()>>>,
    answered: AtomicU64,
}

impl CheckPool {
    fn start(answer: Answerer) -> Result<Arc<CheckPool>, ProducerError> {
        let (tx, rx) = sync_channel(CHECK_QUEUE);
        let pool = Arc::new(CheckPool {
            queue: Mutex::new(Some(tx)),
            queued: ByteBudget::new(CHECK_QUEUE_BYTES.max(answer.config.remoting.max_frame)),
            threads: Mutex::new(Vec::new()),
            answered: AtomicU64::new(0),
        });
        let rx = Arc::new(Mutex::new(rx));
        let answer = Arc::new(answer);
        for i in 0..CHECK_THREADS {
            let (rx, answer) = (rx.clone(), answer.clone());
            let weak = Arc::downgrade(&pool);
            let h = std::thread::Builder::new()
                .name(format!("rmq-tx-check-{i}"))
                .spawn(move || run_checks(&rx, &answer, &weak))
                .map_err(|e| ProducerError::Config {
                    field: "transaction check threads",
                    reason: e.to_string(),
                })?;
            pool.threads.lock().push(h);
        }
        Ok(pool)
    }

    /// Queues a check-back (from a reader thread: never blocks).
    fn offer(&self, addr: &str, request: RemotingCommand) {
        let Some(tx) = self.queue.lock().clone() else {
            return;
        };
        let size = frame_bytes(&request);
        if !self.queued.take(size) {
            warn!(
                addr,
                size, "transaction check queue full (bytes): dropped (the broker checks again)"
            );
            return;
        }
        match tx.try_send((addr.to_owned(), request)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.queued.give(size);
                warn!(
                    addr,
                    "transaction check queue full: dropped (the broker checks again)"
                );
            }
            Err(TrySendError::Disconnected(_)) => self.queued.give(size),
        }
    }

    /// Stops taking checks and joins the threads (not from one of them).
    fn stop(&self) {
        drop(self.queue.lock().take());
        let threads = std::mem::take(&mut *self.threads.lock());
        let me = std::thread::current().id();
        for h in threads {
            if h.thread().id() != me {
                let _ = h.join();
            }
        }
    }
}

fn run_checks(
    rx: &Mutex<Receiver<(String, RemotingCommand)>>,
    answer: &Answerer,
    pool: &std::sync::Weak<CheckPool>,
) {
    loop {
        // One thread waits on the queue at a time; the others wait for the lock.
        let next = rx.lock().recv();
        let Ok((addr, request)) = next else { return };
        if let Some(p) = pool.upgrade() {
            p.queued.give(frame_bytes(&request));
        }
        let t0 = Instant::now();
        match answer.answer(&addr, &request) {
            Ok(()) => {
                if let Some(p) = pool.upgrade() {
                    p.answered.fetch_add(1, Ordering::Relaxed);
                }
            }
            Err(e) => warn!(addr, error = %e, "cannot answer a transaction check"),
        }
        debug!(took = ?t0.elapsed(), "transaction check handled");
    }
}

/// What a queued frame holds: its body and ext fields.
fn frame_bytes(request: &RemotingCommand) -> usize {
    request.body.len() + request.ext_fields.text_len() + 64
}

/// A count of bytes with a ceiling, taken and given back without a lock.
#[derive(Debug)]
struct ByteBudget {
    used: std::sync::atomic::AtomicUsize,
    max: usize,
}

impl ByteBudget {
    fn new(max: usize) -> ByteBudget {
        ByteBudget {
            used: std::sync::atomic::AtomicUsize::new(0),
            max,
        }
    }

    /// Takes `n` bytes if they fit under the ceiling.
    fn take(&self, n: usize) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| {
                u.checked_add(n).filter(|t| *t <= self.max)
            })
            .is_ok()
    }

    /// Gives back `n` bytes taken before.
    fn give(&self, n: usize) {
        let _ = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| {
                Some(u.saturating_sub(n))
            });
    }
}

#[cfg(test)]
mod budget_tests {
    use super::ByteBudget;

    /// Before: the queue was bounded in frames only (2,000 frames of up to the frame limit each).
    #[test]
    fn the_check_queue_has_a_ceiling_in_bytes() {
        let b = ByteBudget::new(100);
        assert!(b.take(60));
        assert!(!b.take(50), "over the ceiling");
        assert!(b.take(40));
        b.give(60);
        assert!(b.take(50));
        assert!(!b.take(usize::MAX), "no overflow");
    }
}
