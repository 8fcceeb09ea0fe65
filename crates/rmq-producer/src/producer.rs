//! [`Producer`]: lifecycle, routes, the synchronous and oneway send paths, heartbeats.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::mpsc::Sender;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use parking_lot::{Condvar, Mutex};
use rmq_protocol::compress::{CompressionType, DEFAULT_COMPRESS_LEVEL, compress, should_compress};
use rmq_protocol::header::{
    GetRouteInfoRequestHeader, HeartbeatData, SendMessageRequestHeader, SendMessageRequestHeaderV2,
    SendMessageResponseHeader, UnregisterClientRequestHeader,
};
use rmq_protocol::message::property;
use rmq_protocol::{
    AUTO_CREATE_TOPIC, Message, RemotingCommand, RequestCode, ResponseCode, TopicRouteData,
    UniqIdGenerator, validate,
};
use rmq_remoting::{RemotingClient, RemotingConfig, RemotingError};
use rmq_routing::{
    FailureKind, HealthPolicy, HealthRegistry, MessageRouter, PublishQueue, QueueSelector,
    RouterConfig, RoutingResult, RoutingStrategy, TopicBrokerMapping,
};
use std::any::Any;
use tracing::{debug, warn};

use crate::async_send::{AsyncPermits, AsyncSend, Outcome, SendFuture, retry_loop};
use crate::config::ProducerConfig;
use crate::error::ProducerError;
use crate::stats::{Counters, ProducerStats};

/// A queue of a topic on one broker.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MessageQueue {
    /// Topic.
    pub topic: String,
    /// Broker name.
    pub broker_name: String,
    /// Queue id on that broker.
    pub queue_id: i32,
}

/// How a stored message was stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SendStatus {
    /// Stored.
    SendOk,
    /// Stored, but flushing to disk timed out.
    FlushDiskTimeout,
    /// Stored, but replication to the slave timed out.
    FlushSlaveTimeout,
    /// Stored, but no slave was available.
    SlaveNotAvailable,
}

impl SendStatus {
    fn from_code(code: ResponseCode) -> Option<SendStatus> {
        match code {
            ResponseCode::SUCCESS => Some(SendStatus::SendOk),
            ResponseCode::FLUSH_DISK_TIMEOUT => Some(SendStatus::FlushDiskTimeout),
            ResponseCode::FLUSH_SLAVE_TIMEOUT => Some(SendStatus::FlushSlaveTimeout),
            ResponseCode::SLAVE_NOT_AVAILABLE => Some(SendStatus::SlaveNotAvailable),
            _ => None,
        }
    }
}

/// The outcome of a successful send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendResult {
    /// How it was stored.
    pub status: SendStatus,
    /// The client message id (UNIQ_KEY).
    pub msg_id: String,
    /// The broker's offset msgId.
    pub offset_msg_id: String,
    /// Topic.
    pub topic: String,
    /// Broker that stored it.
    pub broker_name: String,
    /// Queue id.
    pub queue_id: i32,
    /// Offset in the queue.
    pub queue_offset: i64,
    /// Transaction id, when the broker gives one.
    pub transaction_id: Option<String>,
    /// The broker's region.
    pub region_id: String,
    /// Attempts it took (1 = no retry).
    pub attempts: u32,
}

const CREATED: u8 = 0;
const RUNNING: u8 = 1;
const STOPPED: u8 = 2;

pub(crate) struct Inner {
    pub(crate) config: ProducerConfig,
    client_id: String,
    state: AtomicU8,
    pub(crate) remoting: RemotingClient,
    pub(crate) router: MessageRouter,
    ids: UniqIdGenerator,
    namesrv: Vec<String>,
    namesrv_index: AtomicUsize,
    fetch_locks: Mutex<HashMap<String, Arc<Mutex<()>>>>,
    pub(crate) counters: Counters,
    stop: (Mutex<bool>, Condvar),
    threads: Mutex<Vec<JoinHandle<()>>>,
    pub(crate) async_permits: AsyncPermits,
    /// The retry thread's queue; `None` before start and after the shutdown's drain deadline.
    pub(crate) retry_tx: Mutex<Option<Sender<AsyncSend>>>,
}

/// A RocketMQ producer. Cheap to clone and share across threads; every method takes `&self`.
///
/// ```no_run
/// use rmq_producer::{Producer, ProducerConfig};
/// use rmq_protocol::Message;
///
/// let producer = Producer::new(ProducerConfig::new("my_group", "127.0.0.1:9876"))?;
/// producer.start()?;
/// let result = producer.send_sync(&Message::new("TopicTest", "hello"))?;
/// println!("stored as {} in queue {}", result.msg_id, result.queue_id);
/// producer.shutdown();
/// # Ok::<(), rmq_producer::ProducerError>(())
/// ```
#[derive(Clone)]
pub struct Producer {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer")
            .field("group", &self.inner.config.producer_group)
            .field("client_id", &self.inner.client_id)
            .field("state", &self.inner.state.load(Ordering::Relaxed))
            .finish()
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Producer {
    /// A producer with `config` (validated here and again at start). Nothing connects yet.
    pub fn new(config: ProducerConfig) -> Result<Producer, ProducerError> {
        config.validate()?;
        let now = Instant::now();
        let pid = std::process::id();
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let client_id = config
            .client_id
            .clone()
            .unwrap_or_else(|| format!("{}@{pid}#{nanos}", config.client_ip));
        let remoting = RemotingClient::new(RemotingConfig::default())?;
        let health = HealthRegistry::new(
            HealthPolicy {
                latency_fault_tolerance: config.send_latency_enable,
                ..HealthPolicy::default()
            },
            now,
        );
        let router = MessageRouter::new(
            Arc::new(TopicBrokerMapping::new(now)),
            Arc::new(health),
            RouterConfig {
                random_seed: u64::from(nanos) | 1,
                ..RouterConfig::default()
            },
        );
        let instance_hash = nanos ^ pid.rotate_left(16);
        let config_async_max = config.async_send_semaphore;
        Ok(Producer {
            inner: Arc::new(Inner {
                namesrv: config.namesrv_list(),
                ids: UniqIdGenerator::new(config.client_ip, pid, instance_hash),
                config,
                client_id,
                state: AtomicU8::new(CREATED),
                remoting,
                router,
                namesrv_index: AtomicUsize::new(0),
                fetch_locks: Mutex::new(HashMap::new()),
                counters: Counters::default(),
                stop: (Mutex::new(false), Condvar::new()),
                threads: Mutex::new(Vec::new()),
                async_permits: AsyncPermits::new(config_async_max),
                retry_tx: Mutex::new(None),
            }),
        })
    }

    /// The client id brokers know this producer by.
    pub fn client_id(&self) -> &str {
        &self.inner.client_id
    }

    /// The configuration.
    pub fn config(&self) -> &ProducerConfig {
        &self.inner.config
    }

    /// Starts the background threads (route refresh, heartbeats). Idempotent while running; a producer
    /// that was shut down cannot start again.
    pub fn start(&self) -> Result<(), ProducerError> {
        match self.inner.state.compare_exchange(
            CREATED,
            RUNNING,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => {}
            Err(RUNNING) => return Ok(()),
            Err(_) => return Err(ProducerError::State("shut down")),
        }
        self.inner.config.validate()?;
        let mut threads = self.inner.threads.lock();
        let (tx, rx) = std::sync::mpsc::channel();
        *self.inner.retry_tx.lock() = Some(tx);
        let weak = Arc::downgrade(&self.inner);
        threads.push(
            std::thread::Builder::new()
                .name("rmq-async-retry".into())
                .spawn(move || retry_loop(weak, rx))
                .map_err(|e| ProducerError::Config {
                    field: "threads",
                    reason: e.to_string(),
                })?,
        );
        for (name, job) in [
            ("rmq-route-refresh", Job::RouteRefresh),
            ("rmq-heartbeat", Job::Heartbeat),
        ] {
            let inner = self.inner.clone();
            let handle = std::thread::Builder::new()
                .name(name.into())
                .spawn(move || background(inner, job))
                .map_err(|e| ProducerError::Config {
                    field: "threads",
                    reason: e.to_string(),
                })?;
            threads.push(handle);
        }
        Ok(())
    }

    /// Whether the producer is running.
    pub fn is_running(&self) -> bool {
        self.inner.state.load(Ordering::Acquire) == RUNNING
    }

    /// [`Producer::shutdown_timeout`] with `send_msg_timeout` for the asynchronous sends in flight.
    pub fn shutdown(&self) {
        self.shutdown_timeout(self.inner.config.send_msg_timeout);
    }

    /// Stops accepting sends, lets asynchronous sends in flight finish (retries included) for up to
    /// `drain`, completes every one still open with an error (none is dropped silently), joins the
    /// background threads, tells every broker the client leaves (UNREGISTER_CLIENT), and closes the
    /// connections. Idempotent.
    pub fn shutdown_timeout(&self, drain: Duration) {
        if self.inner.state.swap(STOPPED, Ordering::AcqRel) == STOPPED {
            return;
        }
        let left = self.inner.async_permits.drain(Instant::now() + drain);
        if left > 0 {
            warn!(
                left,
                "asynchronous sends still open at the shutdown deadline; failing them"
            );
        }
        // From here on retries end with a state error; closing the retry queue lets its thread exit.
        self.inner.retry_tx.lock().take();
        {
            let (lock, cond) = &self.inner.stop;
            *lock.lock() = true;
            cond.notify_all();
        }
        let threads: Vec<_> = self.inner.threads.lock().drain(..).collect();
        let header = UnregisterClientRequestHeader {
            client_id: self.inner.client_id.clone(),
            producer_group: Some(self.inner.config.producer_group.clone()),
            consumer_group: None,
        };
        let pending: Vec<_> = self
            .inner
            .broker_addrs(false)
            .into_iter()
            .map(|addr| {
                let req = RemotingCommand::with_header(RequestCode::UNREGISTER_CLIENT, &header);
                (
                    addr.clone(),
                    self.inner.remoting.invoke_async(
                        &addr,
                        req,
                        self.inner.config.mq_client_api_timeout,
                    ),
                )
            })
            .collect();
        for (addr, f) in pending {
            if let Err(e) = f.wait() {
                debug!(broker = %addr, error = %e, "unregister failed");
            }
        }
        // Fails whatever is still pending; their callbacks complete the open sends with errors.
        self.inner.remoting.shutdown();
        for h in threads {
            let _ = h.join();
        }
    }

    fn check_running(&self) -> Result<(), ProducerError> {
        match self.inner.state.load(Ordering::Acquire) {
            RUNNING => Ok(()),
            CREATED => Err(ProducerError::State("not started")),
            _ => Err(ProducerError::State("shut down")),
        }
    }

    /// Sends heartbeats to every master broker of the cached routes now, concurrently. Returns
    /// `(succeeded, failed)`.
    pub fn send_heartbeat_to_all_broker(&self) -> (usize, usize) {
        self.inner.heartbeat()
    }

    /// Sends `message` and waits until it is stored, retrying on another broker (up to `retry_times`
    /// more attempts) for connection errors, timeouts and the broker codes Java retries on, all within
    /// `send_msg_timeout`. Each attempt gets an equal share of the time left, so a slow first attempt
    /// cannot starve the retries. The message is not modified; its UNIQ_KEY is in the result.
    pub fn send_sync(&self, message: &Message) -> Result<SendResult, ProducerError> {
        self.check_running()?;
        let started = Instant::now();
        let result = self.inner.send_with_retries(message, started);
        self.inner.counters.record(&result, started.elapsed());
        result
    }

    /// Sends `message` asynchronously with the same attempts, retries and deadline as
    /// [`Producer::send_sync`]. Validation and route lookup happen on the calling thread; the sends on
    /// the connections. Blocks (or fails, by `async_send_block`) while `async_send_semaphore` sends are
    /// in flight.
    pub fn send_async(&self, message: &Message) -> SendFuture {
        let outcome = Outcome::new(None);
        self.start_async(message, outcome.clone());
        SendFuture::new(outcome)
    }

    /// [`Producer::send_async`] with a callback run once with the outcome (on a connection's reader
    /// thread or the retry thread: it must not block).
    pub fn send_async_callback(
        &self,
        message: &Message,
        callback: impl FnOnce(Result<SendResult, ProducerError>) + Send + 'static,
    ) {
        self.start_async(message, Outcome::new(Some(Box::new(callback))));
    }

    fn start_async(&self, message: &Message, outcome: Arc<Outcome>) {
        let started = Instant::now();
        let refuse = |e: ProducerError| {
            self.inner
                .counters
                .record(&Err(e.clone()), started.elapsed());
            outcome.complete_now(Err(e));
        };
        if let Err(e) = self.check_running() {
            return refuse(e);
        }
        let deadline = started + self.inner.config.send_msg_timeout;
        if let Err(e) = self
            .inner
            .async_permits
            .acquire(deadline, self.inner.config.async_send_block)
        {
            return refuse(e);
        }
        match SendState::new(&self.inner, message, started) {
            Ok(state) => self.inner.drive(AsyncSend { state, outcome }),
            Err(e) => {
                self.inner.async_permits.release();
                refuse(e);
            }
        }
    }

    /// Sends `messages` (one topic, same `WAIT`, no delay, not a retry topic) as batches: at most
    /// `batch_size` messages each, split further so no batch body exceeds `max_message_size`. Each batch is
    /// sent like [`Producer::send_sync`] (retries inside one deadline per batch). Returns one result per
    /// batch, in order; `msg_id` lists the UNIQ_KEYs of its messages, comma-separated. On an error, the
    /// batches before it were stored and those after it were not sent.
    pub fn send_batch(&self, messages: &[Message]) -> Result<Vec<SendResult>, ProducerError> {
        self.check_running()?;
        let inner = &self.inner;
        rmq_protocol::validate::batch(messages)?;
        // Each message must fit alone; the UNIQ_KEY adds up to 66 bytes of properties.
        for m in messages {
            rmq_protocol::validate::message(m, inner.config.max_message_size, 66)?;
        }
        let mut results = Vec::new();
        let mut chunk: Vec<Message> = Vec::new();
        let mut chunk_bytes = 0;
        let flush = |chunk: &mut Vec<Message>,
                     results: &mut Vec<SendResult>|
         -> Result<(), ProducerError> {
            if chunk.is_empty() {
                return Ok(());
            }
            let started = Instant::now();
            let prepared = inner.prepare_batch(chunk)?;
            let route_as = Message::new(chunk[0].topic.clone(), Bytes::new());
            let mut st = SendState::with_prepared(inner, prepared, route_as, started);
            let result = inner.run_sync(&mut st);
            inner.counters.record(&result, started.elapsed());
            results.push(result?);
            chunk.clear();
            Ok(())
        };
        for m in messages {
            // Record size plus the UNIQ_KEY the batch adds to each message.
            let size = rmq_protocol::batch::batch_record_len(m) + 66;
            if chunk.len() >= inner.config.batch_size
                || (chunk_bytes + size > inner.config.max_message_size && !chunk.is_empty())
            {
                flush(&mut chunk, &mut results)?;
                chunk_bytes = 0;
            }
            chunk.push(m.clone());
            chunk_bytes += size;
        }
        flush(&mut chunk, &mut results)?;
        Ok(results)
    }

    /// The route of `topic` as the name server gave it (fetched if needed), and whether it is the TBW102
    /// route standing in for a topic the broker will create on the first send.
    pub fn topic_route(&self, topic: &str) -> Result<(Arc<TopicRouteData>, bool), ProducerError> {
        self.check_running()?;
        self.inner.ensure_route(topic)?;
        let mapping = self.inner.router.mapping();
        let not_found = || ProducerError::RouteNotFound {
            topic: topic.to_owned(),
            reason: "route expired".into(),
        };
        let route = mapping.route(topic).ok_or_else(not_found)?;
        let derived = mapping
            .with_available_queues(topic, Instant::now(), |i| i.from_default_topic)
            .unwrap_or(false);
        Ok((route, derived))
    }

    /// The queues `topic` can be sent to (fetching its route if needed), for [`Producer::send_to_queue`].
    pub fn fetch_publish_queues(&self, topic: &str) -> Result<Vec<MessageQueue>, ProducerError> {
        self.check_running()?;
        self.inner.ensure_route(topic)?;
        let queues =
            self.inner
                .router
                .mapping()
                .with_available_queues(topic, Instant::now(), |info| {
                    info.queues
                        .iter()
                        .map(|q| MessageQueue {
                            topic: topic.to_owned(),
                            broker_name: q.broker_name.to_string(),
                            queue_id: q.queue_id,
                        })
                        .collect()
                });
        Ok(queues.unwrap_or_default())
    }

    /// Sends `message` to `queue`, once (no move to another broker, as Java's `send(msg, mq)`).
    pub fn send_to_queue(
        &self,
        message: &Message,
        queue: &MessageQueue,
    ) -> Result<SendResult, ProducerError> {
        self.check_running()?;
        let select = |qs: &[PublishQueue], _: &Message, _: Option<&(dyn Any + Send + Sync)>| {
            qs.iter()
                .position(|q| *q.broker_name == *queue.broker_name && q.queue_id == queue.queue_id)
        };
        self.inner.send_once(message, |router, now| {
            router.route_with_selector(&message.topic, message, &select, None, now)
        })
    }

    /// Sends `message` to the queue `selector` picks (with `arg`, as Java's `send(msg, selector, arg)`),
    /// once: ordered sends never move to another queue.
    pub fn send_with_selector(
        &self,
        message: &Message,
        selector: &dyn QueueSelector,
        arg: Option<&(dyn Any + Send + Sync)>,
    ) -> Result<SendResult, ProducerError> {
        self.check_running()?;
        self.inner.send_once(message, |router, now| {
            router.route_with_selector(&message.topic, message, selector, arg, now)
        })
    }

    /// Sends `message` once without waiting for the broker (oneway). Returns when the frame is written;
    /// nothing tells whether the broker stored it.
    pub fn send_oneway(&self, message: &Message) -> Result<(), ProducerError> {
        self.check_running()?;
        let inner = &self.inner;
        let prepared = inner.prepare(message)?;
        inner.ensure_route(&message.topic)?;
        let r = inner.router.route_message(
            &message.topic,
            message,
            inner.strategy_for(message),
            Instant::now(),
        )?;
        let req = inner.request(&prepared, &r);
        inner
            .remoting
            .invoke_oneway(r.broker_addr(), req, inner.config.send_msg_timeout)?;
        inner.counters.oneway.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// A snapshot of the producer's counters, routes and broker health.
    pub fn get_stats(&self) -> ProducerStats {
        crate::stats::snapshot(&self.inner, self.is_running())
    }
}

/// One send in progress: what is being sent and how its attempts went so far.
pub(crate) struct SendState {
    pub(crate) prepared: Prepared,
    /// The caller's message (for routing by key); its properties lack the UNIQ_KEY, which is in `prepared`.
    pub(crate) message: Message,
    pub(crate) started: Instant,
    deadline: Instant,
    pub(crate) attempts: u32,
    pub(crate) made: u32,
    last_broker: Option<String>,
    last_err: Option<ProducerError>,
    possibly_stored: bool,
}

impl SendState {
    pub(crate) fn new(
        inner: &Inner,
        message: &Message,
        started: Instant,
    ) -> Result<SendState, ProducerError> {
        Ok(Self::with_prepared(
            inner,
            inner.prepare(message)?,
            message.clone(),
            started,
        ))
    }

    /// A send of `prepared`, routed as `message` would be.
    fn with_prepared(
        inner: &Inner,
        prepared: Prepared,
        message: Message,
        started: Instant,
    ) -> SendState {
        SendState {
            prepared,
            message,
            started,
            deadline: started + inner.config.send_msg_timeout,
            attempts: 1 + inner.config.retry_times,
            made: 0,
            last_broker: None,
            last_err: None,
            possibly_stored: false,
        }
    }
}

/// What a send does next.
pub(crate) enum Next {
    /// Send `request` to the routed broker with `timeout`.
    Attempt {
        /// Where.
        routing: RoutingResult,
        /// What.
        request: RemotingCommand,
        /// For how long.
        timeout: Duration,
    },
    /// The send is over.
    Done(Result<SendResult, ProducerError>),
}

/// A message ready to go: its properties with UNIQ_KEY, its (possibly compressed) body and sysFlag.
pub(crate) struct Prepared {
    uniq_key: String,
    properties: String,
    body: Bytes,
    sys_flag: i32,
    topic: String,
    flag: i32,
    /// The body is a batch of messages (SEND_BATCH_MESSAGE).
    batch: bool,
}

#[derive(Clone, Copy)]
enum Job {
    RouteRefresh,
    Heartbeat,
}

fn background(inner: Arc<Inner>, job: Job) {
    let interval = match job {
        Job::RouteRefresh => inner.config.poll_name_server_interval,
        Job::Heartbeat => inner.config.heartbeat_broker_interval,
    };
    // Heartbeats start at once (brokers learn the group before the first send); refreshes after a period.
    let mut first = matches!(job, Job::Heartbeat);
    loop {
        if !first {
            let (lock, cond) = &inner.stop;
            let mut stop = lock.lock();
            if !*stop {
                cond.wait_for(&mut stop, interval);
            }
            if *stop {
                return;
            }
        }
        first = false;
        match job {
            Job::RouteRefresh => inner.refresh_routes(),
            Job::Heartbeat => {
                inner.heartbeat();
            }
        }
    }
}

impl Inner {
    fn prepare(&self, message: &Message) -> Result<Prepared, ProducerError> {
        // 32 hex characters of UNIQ_KEY plus "UNIQ_KEY", two separators.
        const UNIQ_ROOM: usize = 8 + 2 + 56;
        validate::message(message, self.config.max_message_size, UNIQ_ROOM)?;
        let mut props = message.properties.clone();
        let uniq_key = match message.uniq_key() {
            Some(k) => k.to_owned(),
            None => {
                let k = self.ids.next_id(now_ms());
                props.insert(property::UNIQ_CLIENT_MESSAGE_ID_KEYIDX, &k);
                k
            }
        };
        let mut properties = String::new();
        rmq_protocol::message::encode_properties(&props, &mut properties);
        let mut sys_flag = 0;
        let body = if should_compress(message.body.len(), self.config.compress_msg_body_over) {
            let (z, bits) = compress(&message.body, CompressionType::Zlib, DEFAULT_COMPRESS_LEVEL)
                .map_err(|e| ProducerError::Config {
                    field: "compression",
                    reason: e.to_string(),
                })?;
            // Keep the original when compression does not help (random or already-compressed data).
            if z.len() < message.body.len() {
                sys_flag |= bits;
                Bytes::from(z)
            } else {
                message.body.clone()
            }
        } else {
            message.body.clone()
        };
        if props.get(property::TRANSACTION_PREPARED) == Some("true") {
            sys_flag |= rmq_protocol::message::sys_flag::TRANSACTION_PREPARED_TYPE;
        }
        Ok(Prepared {
            uniq_key,
            properties,
            body,
            sys_flag,
            topic: message.topic.clone(),
            flag: message.flag,
            batch: false,
        })
    }

    /// Prepares one batch: every message gets its UNIQ_KEY, the batch its own properties (WAIT and a
    /// UNIQ_KEY of its own, as Java's `MessageBatch`), no compression. The result's msg id lists the
    /// messages' UNIQ_KEYs, comma-separated.
    fn prepare_batch(&self, messages: &[Message]) -> Result<Prepared, ProducerError> {
        let mut stamped = Vec::with_capacity(messages.len());
        let mut ids = Vec::with_capacity(messages.len());
        for m in messages {
            let mut m = m.clone();
            let id = match m.uniq_key() {
                Some(k) => k.to_owned(),
                None => {
                    let k = self.ids.next_id(now_ms());
                    m.properties
                        .insert(property::UNIQ_CLIENT_MESSAGE_ID_KEYIDX, &k);
                    k
                }
            };
            ids.push(id);
            stamped.push(m);
        }
        let body = rmq_protocol::batch::encode_batch(&stamped)?;
        let mut props = rmq_protocol::StringMap::new();
        props.insert_bool(
            property::WAIT_STORE_MSG_OK,
            messages.first().is_none_or(Message::wait_store_ok),
        );
        props.insert(
            property::UNIQ_CLIENT_MESSAGE_ID_KEYIDX,
            &self.ids.next_id(now_ms()),
        );
        let mut properties = String::new();
        rmq_protocol::message::encode_properties(&props, &mut properties);
        Ok(Prepared {
            uniq_key: ids.join(","),
            properties,
            body,
            sys_flag: 0,
            topic: messages
                .first()
                .map(|m| m.topic.clone())
                .unwrap_or_default(),
            flag: 0,
            batch: true,
        })
    }

    fn request(&self, p: &Prepared, r: &RoutingResult) -> RemotingCommand {
        let header = SendMessageRequestHeaderV2(SendMessageRequestHeader {
            producer_group: self.config.producer_group.clone(),
            topic: p.topic.clone(),
            default_topic: AUTO_CREATE_TOPIC.to_owned(),
            default_topic_queue_nums: self.config.default_topic_queue_nums,
            queue_id: r.queue_id(),
            sys_flag: p.sys_flag,
            born_timestamp: now_ms(),
            flag: p.flag,
            properties: Some(p.properties.clone()),
            reconsume_times: Some(0),
            unit_mode: false,
            batch: p.batch,
            max_reconsume_times: None,
            broker_name: Some(r.broker_name().to_owned()),
        });
        let code = if p.batch {
            RequestCode::SEND_BATCH_MESSAGE
        } else {
            RequestCode::SEND_MESSAGE_V2
        };
        RemotingCommand::with_header(code, &header).with_body(p.body.clone())
    }

    /// Sends with retries on the calling thread.
    fn send_with_retries(
        &self,
        message: &Message,
        started: Instant,
    ) -> Result<SendResult, ProducerError> {
        let mut st = SendState::new(self, message, started)?;
        self.run_sync(&mut st)
    }

    /// Runs the attempts of `st` on the calling thread.
    fn run_sync(&self, st: &mut SendState) -> Result<SendResult, ProducerError> {
        loop {
            match self.next_attempt(st) {
                Next::Done(r) => return r,
                Next::Attempt {
                    routing,
                    request,
                    timeout,
                } => {
                    let sent_at = Instant::now();
                    let outcome =
                        self.remoting
                            .invoke_sync(routing.broker_addr(), request, timeout);
                    if let Some(r) = self.on_outcome(st, &routing, outcome, sent_at.elapsed()) {
                        return r;
                    }
                }
            }
        }
    }

    /// The next attempt of a send, or its end (success is never decided here; exhaustion is).
    pub(crate) fn next_attempt(&self, st: &mut SendState) -> Next {
        while st.made < st.attempts {
            let now = Instant::now();
            let remaining = st.deadline.saturating_duration_since(now);
            if remaining.is_zero() {
                break;
            }
            let attempts_left = st.attempts - st.made;
            st.made += 1;
            if let Err(e) = self.ensure_route(&st.message.topic) {
                st.last_err = Some(e);
                continue;
            }
            let routed = self.router.route_retry(
                &st.message.topic,
                &st.message,
                self.strategy_for(&st.message),
                st.last_broker.as_deref(),
                now,
            );
            match routed {
                Ok(routing) => {
                    if st.made > 1 {
                        self.counters.retries.fetch_add(1, Ordering::Relaxed);
                    }
                    // An equal share of the time left, but never less than 100 ms (or what is left).
                    let share = remaining / attempts_left;
                    let timeout = share.max(Duration::from_millis(100)).min(remaining);
                    let request = self.request(&st.prepared, &routing);
                    return Next::Attempt {
                        routing,
                        request,
                        timeout,
                    };
                }
                Err(e) => st.last_err = Some(e.into()),
            }
        }
        Next::Done(Err(self.exhausted(st)))
    }

    /// The error of a send whose attempts are used up.
    fn exhausted(&self, st: &mut SendState) -> ProducerError {
        let last = st
            .last_err
            .take()
            .unwrap_or(ProducerError::Remoting(RemotingError::Timeout {
                addr: String::new(),
                opaque: 0,
                after: self.config.send_msg_timeout,
            }));
        ProducerError::AttemptsExhausted {
            attempts: st.made,
            elapsed: st.started.elapsed(),
            last: Box::new(last),
            possibly_stored: st.possibly_stored,
        }
    }

    /// The strategy for `message`: message hash when it has a sharding key (ordering), else the configured one.
    fn strategy_for(&self, message: &Message) -> RoutingStrategy {
        if message.sharding_key().is_some_and(|k| !k.is_empty()) {
            RoutingStrategy::MessageHash
        } else {
            self.config.routing_strategy
        }
    }

    /// One attempt to a queue chosen by `pick`, without moving to another broker (ordered sends).
    fn send_once(
        &self,
        message: &Message,
        pick: impl FnOnce(&MessageRouter, Instant) -> Result<RoutingResult, rmq_routing::RouteError>,
    ) -> Result<SendResult, ProducerError> {
        let started = Instant::now();
        let mut st = SendState::new(self, message, started)?;
        st.attempts = 1;
        st.made = 1;
        self.ensure_route(&message.topic)?;
        let routing = pick(&self.router, Instant::now())?;
        let request = self.request(&st.prepared, &routing);
        let sent_at = Instant::now();
        let outcome =
            self.remoting
                .invoke_sync(routing.broker_addr(), request, self.config.send_msg_timeout);
        let result = match self.on_outcome(&mut st, &routing, outcome, sent_at.elapsed()) {
            Some(r) => r,
            None => Err(self.exhausted(&mut st)),
        };
        self.counters.record(&result, started.elapsed());
        result
    }

    /// Judges one attempt's outcome: `Some` ends the send, `None` asks for another attempt.
    pub(crate) fn on_outcome(
        &self,
        st: &mut SendState,
        r: &RoutingResult,
        outcome: Result<RemotingCommand, RemotingError>,
        latency: Duration,
    ) -> Option<Result<SendResult, ProducerError>> {
        let broker = r.broker_name();
        match outcome {
            Ok(resp) => match SendStatus::from_code(resp.response_code()) {
                Some(status) => {
                    self.router.report_result(broker, latency, Instant::now());
                    let result = self.result(&st.prepared, r, &resp, status, st.made);
                    if status != SendStatus::SendOk
                        && self.config.retry_another_broker_when_not_store_ok
                        && st.made < st.attempts
                        && result.is_ok()
                    {
                        st.possibly_stored = true;
                        st.last_broker = Some(broker.to_owned());
                        st.last_err = Some(ProducerError::Broker {
                            broker: broker.to_owned(),
                            code: resp.response_code(),
                            remark: resp.remark.clone(),
                        });
                        return None;
                    }
                    Some(result)
                }
                None => {
                    let code = resp.response_code();
                    let err = ProducerError::Broker {
                        broker: broker.to_owned(),
                        code,
                        remark: resp.remark,
                    };
                    if !code.is_java_retryable() {
                        return Some(Err(err));
                    }
                    self.router.report_failure(
                        broker,
                        FailureKind::Broker,
                        latency,
                        Instant::now(),
                    );
                    st.last_broker = Some(broker.to_owned());
                    st.last_err = Some(err);
                    None
                }
            },
            Err(e) => {
                if matches!(e, RemotingError::Shutdown) {
                    return Some(Err(e.into()));
                }
                let kind = if e.is_timeout() {
                    FailureKind::Timeout
                } else {
                    FailureKind::Connection
                };
                self.router
                    .report_failure(broker, kind, latency, Instant::now());
                st.possibly_stored |= !e.is_not_sent();
                st.last_broker = Some(broker.to_owned());
                st.last_err = Some(e.into());
                None
            }
        }
    }

    fn result(
        &self,
        p: &Prepared,
        r: &RoutingResult,
        resp: &RemotingCommand,
        status: SendStatus,
        attempts: u32,
    ) -> Result<SendResult, ProducerError> {
        let h: SendMessageResponseHeader =
            resp.decode_header().map_err(|e| ProducerError::Broker {
                broker: r.broker_name().to_owned(),
                code: resp.response_code(),
                remark: Some(format!("unreadable send response: {e}")),
            })?;
        Ok(SendResult {
            status,
            msg_id: p.uniq_key.clone(),
            offset_msg_id: h.msg_id,
            topic: p.topic.clone(),
            broker_name: r.broker_name().to_owned(),
            queue_id: h.queue_id,
            queue_offset: h.queue_offset,
            transaction_id: h.transaction_id,
            region_id: h.region.unwrap_or_else(|| "DefaultRegion".into()),
            attempts,
        })
    }

    /// Asks the name servers for `topic`'s route, trying each in turn. `Ok(None)`: the topic does not exist.
    fn fetch_route(&self, topic: &str) -> Result<Option<TopicRouteData>, ProducerError> {
        let n = self.namesrv.len();
        let start = self.namesrv_index.load(Ordering::Relaxed);
        let mut last = String::from("no name server");
        for i in 0..n {
            let idx = (start + i) % n;
            let addr = &self.namesrv[idx];
            let req = RemotingCommand::with_header(
                RequestCode::GET_ROUTEINFO_BY_TOPIC,
                &GetRouteInfoRequestHeader::new(topic),
            );
            match self
                .remoting
                .invoke_sync(addr, req, self.config.mq_client_api_timeout)
            {
                Ok(resp) if resp.response_code() == ResponseCode::SUCCESS => {
                    self.namesrv_index.store(idx, Ordering::Relaxed);
                    return TopicRouteData::decode(&resp.body).map(Some).map_err(|e| {
                        ProducerError::RouteNotFound {
                            topic: topic.to_owned(),
                            reason: format!("{addr} sent an unreadable route: {e}"),
                        }
                    });
                }
                Ok(resp) if resp.response_code() == ResponseCode::TOPIC_NOT_EXIST => {
                    self.namesrv_index.store(idx, Ordering::Relaxed);
                    return Ok(None);
                }
                Ok(resp) => {
                    last = format!("{addr} answered {} {:?}", resp.response_code(), resp.remark)
                }
                Err(e) => last = format!("{addr}: {e}"),
            }
        }
        Err(ProducerError::RouteNotFound {
            topic: topic.to_owned(),
            reason: last,
        })
    }

    /// Makes sure `topic` has publish queues: its own route, or one derived from TBW102 so the broker
    /// creates the topic on the first send. One fetch per topic at a time; concurrent callers wait for it.
    pub(crate) fn ensure_route(&self, topic: &str) -> Result<(), ProducerError> {
        let now = Instant::now();
        let mapping = self.router.mapping();
        if mapping.with_available_queues(topic, now, |i| i.ok()) == Some(true) {
            return Ok(());
        }
        let lock = self
            .fetch_locks
            .lock()
            .entry(topic.to_owned())
            .or_default()
            .clone();
        let _guard = lock.lock();
        if mapping.with_available_queues(topic, Instant::now(), |i| i.ok()) == Some(true) {
            return Ok(());
        }
        let result = match self.fetch_route(topic)? {
            Some(route) => {
                mapping.update_route_info(topic, route, Instant::now());
                Ok(())
            }
            None => match self.fetch_route(AUTO_CREATE_TOPIC)? {
                Some(tbw) => {
                    mapping.update_from_default_route(topic, tbw, self.config.default_topic_queue_nums, Instant::now());
                    Ok(())
                }
                None => Err(ProducerError::RouteNotFound {
                    topic: topic.to_owned(),
                    reason: "the topic does not exist and the name server has no TBW102 route (autoCreateTopicEnable=false?)".into(),
                }),
            },
        };
        self.fetch_locks.lock().remove(topic);
        result
    }

    fn refresh_routes(&self) {
        let now = Instant::now();
        for topic in self.router.mapping().topics() {
            let fresh = self
                .router
                .mapping()
                .route_age(&topic, now)
                .is_some_and(|age| age < self.config.update_topic_route_info_interval);
            if fresh {
                continue;
            }
            match self.fetch_route(&topic) {
                Ok(Some(route)) => {
                    if self
                        .router
                        .mapping()
                        .update_route_info(&topic, route, Instant::now())
                    {
                        debug!(topic, "route changed");
                    }
                }
                // Still not created (a TBW102-derived route stays until the broker registers the topic).
                Ok(None) => {}
                Err(e) => {
                    warn!(topic, error = %e, "route refresh failed; keeping the last known route");
                    self.router
                        .mapping()
                        .mark_refresh_failed(&topic, e.to_string(), now);
                }
            }
        }
        self.router
            .mapping()
            .clear_expired_routes(Duration::from_secs(600), Instant::now());
    }

    /// Broker addresses from the cached routes: masters only, or every address.
    fn broker_addrs(&self, masters_only: bool) -> BTreeSet<String> {
        let mapping = self.router.mapping();
        let mut out = BTreeSet::new();
        for topic in mapping.topics() {
            if let Some(route) = mapping.route(&topic) {
                for b in &route.broker_datas {
                    for (id, addr) in &b.broker_addrs {
                        if !masters_only || *id == rmq_protocol::route::MASTER_ID {
                            out.insert(addr.clone());
                        }
                    }
                }
            }
        }
        out
    }

    fn heartbeat(&self) -> (usize, usize) {
        let data =
            HeartbeatData::producer(self.client_id.clone(), [self.config.producer_group.clone()]);
        let pending: Vec<_> = self
            .broker_addrs(true)
            .into_iter()
            .map(|addr| {
                let req = data.to_request();
                let f = self
                    .remoting
                    .invoke_async(&addr, req, self.config.mq_client_api_timeout);
                (addr, f)
            })
            .collect();
        let (mut ok, mut failed) = (0, 0);
        for (addr, f) in pending {
            match f.wait() {
                Ok(r) if r.response_code() == ResponseCode::SUCCESS => ok += 1,
                Ok(r) => {
                    failed += 1;
                    warn!(broker = %addr, code = %r.response_code(), "heartbeat refused");
                }
                Err(e) => {
                    failed += 1;
                    warn!(broker = %addr, error = %e, "heartbeat failed");
                }
            }
        }
        self.counters
            .heartbeats_ok
            .fetch_add(ok as u64, Ordering::Relaxed);
        self.counters
            .heartbeats_failed
            .fetch_add(failed as u64, Ordering::Relaxed);
        (ok, failed)
    }
}
