//! [`Core`]: what one producer shares between its handle, its send drivers and its workers. Each part
//! belongs to its own room (routes, requests, stats, in-flight table, heartbeats, workers, the pool and
//! the timer of asynchronous sends); this file only builds them and hands them out.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use rmq_protocol::acl::Credentials;
use rmq_protocol::{RemotingCommand, RequestCode, UniqIdGenerator};
use rmq_remoting::{RemotingClient, RpcHook};
use rmq_routing::{HealthPolicy, HealthRegistry, MessageRouter, RouterConfig, TopicBrokerMapping};

use crate::config::ProducerConfig;
use crate::error::ProducerError;
use crate::heartbeat::Heartbeats;
use crate::inflight::InFlight;
use crate::metrics::Metrics;
use crate::reply::Replies;
use crate::request::Requests;
use crate::routes::Routes;
use crate::stats::Counters;
use crate::trace::Tracer;
use crate::workers::{Pool, Timer, Workers};

const CREATED: u8 = 0;
const RUNNING: u8 = 1;
const STOPPED: u8 = 2;

/// Signs every request with the producer's credentials. It is the only hook a producer adds, so nothing
/// changes a request after it is signed.
struct Signer(Credentials);

impl RpcHook for Signer {
    fn before_request(&self, _addr: &str, request: &mut RemotingCommand) {
        rmq_protocol::acl::sign(request, &self.0);
    }
}

/// The shared state of one producer.
#[derive(Debug)]
pub(crate) struct Core {
    config: ProducerConfig,
    client_id: String,
    state: AtomicU8,
    remoting: RemotingClient,
    routes: Routes,
    requests: Requests,
    counters: Arc<Counters>,
    in_flight: InFlight,
    heartbeats: Heartbeats,
    replies: Arc<Replies>,
    tracer: Option<Tracer>,
    workers: Workers,
    pool: Pool,
    timer: Timer,
    /// Auto-batch's open gatherings (with `auto_batch` on).
    gatherings: Option<crate::gather::Gatherings>,
    /// Set when a shutdown has finished (its threads joined).
    stopped: (parking_lot::Mutex<bool>, parking_lot::Condvar),
}

impl Core {
    /// Builds every part from a validated `config`. Nothing connects.
    pub(crate) fn new(config: ProducerConfig) -> Result<Core, ProducerError> {
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
        let remoting = RemotingClient::new(config.remoting.clone())?;
        if let Some(credentials) = &config.credentials {
            remoting.add_hook(Arc::new(Signer(credentials.clone())));
        }
        let replies = Arc::new(Replies::default());
        let (pushed, max_body) = (Arc::downgrade(&replies), config.max_message_size);
        remoting.register_handler(
            RequestCode::PUSH_REPLY_MESSAGE_TO_CLIENT,
            move |addr: &str, request: RemotingCommand| {
                pushed
                    .upgrade()
                    .map(|r| r.on_push(addr, &request, max_body))
            },
        );
        let health = HealthRegistry::new(
            HealthPolicy {
                latency_fault_tolerance: config.send_latency_enable,
                ..config.health.clone()
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
        let counters = Arc::new(Counters::default());
        Ok(Core {
            routes: Routes::new(&config, router, nanos),
            requests: Requests::new(
                &config,
                UniqIdGenerator::new(config.client_ip, pid, instance_hash),
            ),
            in_flight: InFlight::new(config.async_send_semaphore),
            heartbeats: Heartbeats::new(
                &client_id,
                &config.wire_group(),
                config.mq_client_api_timeout,
                counters.clone(),
            ),
            counters,
            replies,
            tracer: config.trace.then(|| Tracer::new(&config.trace_topic)),
            workers: Workers::default(),
            pool: Pool::default(),
            timer: Timer::default(),
            gatherings: crate::gather::gatherings(&config),
            stopped: Default::default(),
            state: AtomicU8::new(CREATED),
            remoting,
            client_id,
            config,
        })
    }

    pub(crate) fn config(&self) -> &ProducerConfig {
        &self.config
    }

    pub(crate) fn client_id(&self) -> &str {
        &self.client_id
    }

    pub(crate) fn remoting(&self) -> &RemotingClient {
        &self.remoting
    }

    pub(crate) fn routes(&self) -> &Routes {
        &self.routes
    }

    pub(crate) fn router(&self) -> &MessageRouter {
        self.routes.router()
    }

    pub(crate) fn requests(&self) -> &Requests {
        &self.requests
    }

    /// The metric handles (empty without the `metrics` feature).
    pub(crate) fn metrics(&self) -> &Metrics {
        self.counters.metrics()
    }

    /// The message tracer, when tracing is on.
    pub(crate) fn tracer(&self) -> Option<&Tracer> {
        self.tracer.as_ref()
    }

    pub(crate) fn replies(&self) -> &Arc<Replies> {
        &self.replies
    }

    pub(crate) fn counters(&self) -> &Arc<Counters> {
        &self.counters
    }

    pub(crate) fn in_flight(&self) -> &InFlight {
        &self.in_flight
    }

    /// Sends a heartbeat to every master broker now and waits: `(succeeded, failed)`.
    pub(crate) fn heartbeat_round(&self) -> (usize, usize) {
        self.heartbeats.round(&self.remoting, &self.routes)
    }

    /// Greets the master brokers of `topic`'s route that no heartbeat has reached yet, without waiting.
    pub(crate) fn greet_brokers_of(&self, topic: &str) {
        self.heartbeats
            .greet_new(&self.remoting, self.routes.master_addrs(topic));
    }

    /// Refreshes every cached route that is due, then greets the brokers a changed route brought in.
    pub(crate) fn refresh_routes(&self) {
        self.routes.refresh(&self.remoting);
        self.heartbeats
            .greet_new(&self.remoting, self.routes.broker_addrs(true));
    }

    /// Tells every broker the producer leaves.
    pub(crate) fn unregister_all(&self) {
        self.heartbeats.unregister_all(&self.remoting, &self.routes);
    }

    pub(crate) fn workers(&self) -> &Workers {
        &self.workers
    }

    /// Makes sure `topic`'s route is cached, fetching it within `mq_client_api_timeout` if needed, and
    /// greets the brokers it names.
    pub(crate) fn ensure_route(&self, topic: &str) -> Result<(), ProducerError> {
        self.check_running()?;
        let deadline =
            rmq_remoting::deadline_after(Instant::now(), self.config.mq_client_api_timeout);
        self.routes().ensure(self.remoting(), topic, deadline)?;
        self.greet_brokers_of(topic);
        Ok(())
    }

    /// The threads that fetch routes and connect for asynchronous sends.
    pub(crate) fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Auto-batch's open gatherings (`None` without `auto_batch`).
    pub(crate) fn gatherings(&self) -> Option<&crate::gather::Gatherings> {
        self.gatherings.as_ref()
    }

    /// Runs jobs at their time (backoff waits, deadlines of waits for room, flushes, replies, auto-batch
    /// lingers).
    pub(crate) fn timer(&self) -> &Timer {
        &self.timer
    }

    /// Opens the pool and the timer, and lets the in-flight table's deadlines run on the timer.
    pub(crate) fn open_async(self: &Arc<Self>) {
        self.pool.open();
        self.timer.open();
        let weak = Arc::downgrade(self);
        self.in_flight.set_scheduler(move |at| {
            if let Some(core) = weak.upgrade() {
                let w = Arc::downgrade(&core);
                core.timer.at(
                    at,
                    Box::new(move |closed| {
                        if let (false, Some(core)) = (closed.0, w.upgrade()) {
                            core.in_flight.expire(Instant::now());
                        }
                    }),
                );
            }
        });
    }

    /// Ends every wait for room, then closes the timer and the pool: what waited in them ends with a
    /// shutdown error.
    pub(crate) fn close_async(&self) {
        self.in_flight.close();
        self.timer.close();
        self.pool.close();
    }

    /// CREATED → RUNNING. `Ok(false)` when it was running already.
    pub(crate) fn mark_running(&self) -> Result<bool, ProducerError> {
        match self
            .state
            .compare_exchange(CREATED, RUNNING, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => Ok(true),
            Err(RUNNING) => Ok(false),
            Err(_) => Err(ProducerError::State("shut down")),
        }
    }

    /// → STOPPED. False when it was stopped already.
    pub(crate) fn mark_stopped(&self) -> bool {
        self.state.swap(STOPPED, Ordering::AcqRel) != STOPPED
    }

    /// A shutdown has finished.
    pub(crate) fn set_stopped(&self) {
        *self.stopped.0.lock() = true;
        self.stopped.1.notify_all();
    }

    /// Waits until a shutdown has finished, or `deadline`.
    pub(crate) fn wait_stopped(&self, deadline: Instant) {
        let mut done = self.stopped.0.lock();
        while !*done {
            if self.stopped.1.wait_until(&mut done, deadline).timed_out() {
                return;
            }
        }
    }

    pub(crate) fn is_running(&self) -> bool {
        self.state.load(Ordering::Acquire) == RUNNING
    }

    /// Refuses calls on a producer that is not running.
    pub(crate) fn check_running(&self) -> Result<(), ProducerError> {
        match self.state.load(Ordering::Acquire) {
            RUNNING => Ok(()),
            CREATED => Err(ProducerError::State("not started")),
            _ => Err(ProducerError::State("shut down")),
        }
    }

    pub(crate) fn state_name(&self) -> &'static str {
        match self.state.load(Ordering::Relaxed) {
            CREATED => "created",
            RUNNING => "running",
            _ => "stopped",
        }
    }
}
