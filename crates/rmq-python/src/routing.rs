//! pyrocketmq's routing objects, usable without a producer: `TopicBrokerMapping` (the route cache),
//! `MessageRouter` (strategies, broker health, stats), `MessageQueue`, `BrokerData`, `RoutingResult`.
//! They are rmq-routing's own types; the selectors of `rmq.queue_selectors` choose among
//! `TopicBrokerMapping.get_available_queues`, in Python.

use std::sync::Arc;
use std::time::{Duration, Instant};

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString};
use rmq::producer::MessageQueue;
use rmq::protocol::TopicRouteData;
use rmq::routing::{
    BrokerHealthSnapshot, FailureKind, HealthPolicy, HealthRegistry, HealthState, JavaHashCode,
    MessageRouter, PublishQueue, RouterConfig, RoutingStrategy, TopicBrokerMapping,
};

use crate::errors;
use crate::message::PyMessage;

/// A queue of a topic on one broker.
#[pyclass(module = "rmq._rmq", name = "MessageQueue", frozen, get_all, eq, hash)]
#[derive(Clone, PartialEq, Eq, Hash)]
pub(crate) struct PyMessageQueue {
    /// Topic.
    pub(crate) topic: String,
    /// Broker name.
    pub(crate) broker_name: String,
    /// Queue id on that broker.
    pub(crate) queue_id: i32,
}

impl From<MessageQueue> for PyMessageQueue {
    fn from(q: MessageQueue) -> Self {
        PyMessageQueue {
            topic: q.topic,
            broker_name: q.broker_name,
            queue_id: q.queue_id,
        }
    }
}

impl PyMessageQueue {
    /// The producer's form of this queue.
    pub(crate) fn to_rust(&self) -> MessageQueue {
        MessageQueue {
            topic: self.topic.clone(),
            broker_name: self.broker_name.clone(),
            queue_id: self.queue_id,
        }
    }
}

#[pymethods]
impl PyMessageQueue {
    #[new]
    fn new(topic: String, broker_name: String, queue_id: i32) -> Self {
        PyMessageQueue {
            topic,
            broker_name,
            queue_id,
        }
    }

    /// `topic@broker_name@queue_id`.
    #[getter]
    fn full_name(&self) -> String {
        format!("{}@{}@{}", self.topic, self.broker_name, self.queue_id)
    }

    fn __repr__(&self) -> String {
        format!(
            "MessageQueue(topic={:?}, broker_name={:?}, queue_id={})",
            self.topic, self.broker_name, self.queue_id
        )
    }
}

/// A broker of a route: name, cluster, addresses by broker id (0 is the master).
#[pyclass(module = "rmq._rmq", name = "BrokerData", frozen, get_all)]
#[derive(Clone)]
pub(crate) struct PyBrokerData {
    /// Broker name.
    broker_name: String,
    /// Cluster.
    cluster: String,
    /// Addresses by broker id.
    broker_addrs: std::collections::BTreeMap<i64, String>,
}

#[pymethods]
impl PyBrokerData {
    /// The master's address (broker id 0), or None.
    #[getter]
    fn master_addr(&self) -> Option<String> {
        self.broker_addrs.get(&0).cloned()
    }

    fn __repr__(&self) -> String {
        format!(
            "BrokerData(broker_name={:?}, cluster={:?}, broker_addrs={:?})",
            self.broker_name, self.cluster, self.broker_addrs
        )
    }
}

/// A route as the name server's JSON (str or bytes; a dict is turned into JSON by the Python side).
fn decode_route(py: Python<'_>, route: &Bound<'_, PyAny>) -> PyResult<TopicRouteData> {
    let bytes: Vec<u8> = if let Ok(s) = route.cast::<PyString>() {
        s.to_cow()?.as_bytes().to_vec()
    } else if let Ok(b) = route.cast::<PyBytes>() {
        b.as_bytes().to_vec()
    } else {
        return Err(errors::validation(
            py,
            "topic_route_data must be JSON text, bytes or a dict",
        ));
    };
    TopicRouteData::decode(&bytes)
        .map_err(|e| errors::validation(py, &format!("topic_route_data: {e}")))
}

/// The route cache: topics, their brokers and publish queues.
#[pyclass(module = "rmq._rmq", name = "TopicBrokerMapping", frozen, subclass)]
pub(crate) struct PyMapping {
    pub(crate) inner: Arc<TopicBrokerMapping>,
}

impl PyMapping {
    fn queue(topic: &str, q: &PublishQueue) -> PyMessageQueue {
        PyMessageQueue {
            topic: topic.to_owned(),
            broker_name: q.broker_name.to_string(),
            queue_id: q.queue_id,
        }
    }

    fn broker(&self, topic: &str, name: &str) -> Option<PyBrokerData> {
        let route = self.inner.route(topic)?;
        let b = route.broker_datas.iter().find(|b| b.broker_name == name)?;
        Some(PyBrokerData {
            broker_name: b.broker_name.clone(),
            cluster: b.cluster.clone(),
            broker_addrs: b.broker_addrs.clone(),
        })
    }
}

#[pymethods]
impl PyMapping {
    #[new]
    fn new() -> Self {
        PyMapping {
            inner: Arc::new(TopicBrokerMapping::new(Instant::now())),
        }
    }

    /// Stores `topic`'s route (the name server's JSON); True when it changed the cached one.
    fn update_route_info(
        &self,
        py: Python<'_>,
        topic: &str,
        topic_route_data: &Bound<'_, PyAny>,
    ) -> PyResult<bool> {
        let route = decode_route(py, topic_route_data)?;
        Ok(self.inner.update_route_info(topic, route, Instant::now()))
    }

    /// The writable queues of `topic` with their brokers: `[(MessageQueue, BrokerData)]` (empty when
    /// the topic has no route).
    fn get_available_queues(&self, topic: &str) -> Vec<(PyMessageQueue, Option<PyBrokerData>)> {
        let Some(info) = self.inner.get_available_queues(topic, Instant::now()) else {
            return Vec::new();
        };
        info.queues
            .iter()
            .map(|q| (Self::queue(topic, q), self.broker(topic, &q.broker_name)))
            .collect()
    }

    /// The broker `broker_name` of `topic`'s route, or None.
    fn get_broker_data(&self, topic: &str, broker_name: &str) -> Option<PyBrokerData> {
        self.broker(topic, broker_name)
    }

    /// Forgets routes unused for `timeout` seconds (default 30); returns how many.
    #[pyo3(signature = (timeout=None))]
    fn clear_expired_routes(&self, timeout: Option<f64>) -> PyResult<usize> {
        let secs = timeout.unwrap_or(30.0);
        let idle = Duration::try_from_secs_f64(secs).map_err(|_| {
            pyo3::exceptions::PyValueError::new_err(format!(
                "timeout {secs} is not a number of seconds"
            ))
        })?;
        Ok(self.inner.clear_expired_routes(idle, Instant::now()).len())
    }

    /// The topics with a cached route.
    fn topics(&self) -> Vec<String> {
        self.inner.topics()
    }

    fn __len__(&self) -> usize {
        self.inner.len()
    }
}

/// Where `route_message` sent a message.
#[pyclass(module = "rmq._rmq", name = "RoutingResult", frozen, get_all)]
pub(crate) struct PyRoutingResult {
    /// Whether a queue was chosen.
    success: bool,
    /// The queue, or None.
    message_queue: Option<PyMessageQueue>,
    /// Its broker, or None.
    broker_data: Option<PyBrokerData>,
    /// The master's address, or None.
    broker_address: Option<String>,
    /// Why no queue was chosen (a `QueueNotAvailableError` or `RouteNotFoundError`), or None.
    error: Option<Py<PyAny>>,
    /// The strategy that decided: round_robin, random, message_hash.
    routing_strategy: &'static str,
    /// False when every broker was unhealthy and this is the least bad.
    healthy_choice: bool,
}

fn strategy(py: Python<'_>, s: Option<&Bound<'_, PyAny>>) -> PyResult<Option<RoutingStrategy>> {
    let Some(s) = s.filter(|s| !s.is_none()) else {
        return Ok(None);
    };
    let name = s.str()?.to_cow()?.to_ascii_lowercase();
    let name = name.trim_start_matches("routingstrategy.");
    match RoutingStrategy::from_name(name) {
        Some(s) => Ok(Some(s)),
        None => Err(errors::to_py(
            py,
            &rmq::producer::ProducerError::Config {
                field: "strategy",
                reason: format!("{name:?} is not round_robin, random or message_hash"),
            },
        )),
    }
}

/// A latency given in milliseconds (None: 0); refused when negative, infinite or not a number.
fn latency(ms: Option<f64>) -> PyResult<Duration> {
    let ms = ms.unwrap_or(0.0);
    Duration::try_from_secs_f64(ms / 1000.0).map_err(|_| {
        pyo3::exceptions::PyValueError::new_err(format!("latency_ms {ms} is not a duration"))
    })
}

/// Milliseconds of `d`, as the stats give latencies.
fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Per broker: `status`, `success_rate`, `avg_latency` / `p99_latency` / `max_latency` (ms), `successes`,
/// `failures`, `consecutive_failures`, `routed` (the producer's stats and the router's give the same).
pub(crate) fn broker_health<'py>(
    py: Python<'py>,
    brokers: &[BrokerHealthSnapshot],
) -> PyResult<Bound<'py, PyDict>> {
    let health = PyDict::new(py);
    for b in brokers {
        let e = PyDict::new(py);
        let total = b.successes + b.failures;
        e.set_item("status", state_name(b.state))?;
        e.set_item(
            "success_rate",
            if total == 0 {
                1.0
            } else {
                b.successes as f64 / total as f64
            },
        )?;
        e.set_item("avg_latency", ms(b.avg_latency))?;
        e.set_item("p99_latency", ms(b.p99_latency))?;
        e.set_item("max_latency", ms(b.max_latency))?;
        e.set_item("successes", b.successes)?;
        e.set_item("failures", b.failures)?;
        e.set_item("consecutive_failures", b.consecutive_failures)?;
        e.set_item("routed", b.routed)?;
        health.set_item(&b.broker, e)?;
    }
    Ok(health)
}

fn state_name(s: HealthState) -> &'static str {
    match s {
        HealthState::Healthy => "HEALTHY",
        HealthState::Degraded => "DEGRADED",
        HealthState::Unhealthy => "UNHEALTHY",
        HealthState::Suspended => "SUSPENDED",
    }
}

/// Routes messages over a mapping's queues with a strategy and broker health (rmq's router).
#[pyclass(module = "rmq._rmq", name = "MessageRouter", frozen, subclass)]
pub(crate) struct PyRouter {
    router: MessageRouter,
    mapping: Py<PyMapping>,
    default: RoutingStrategy,
}

#[pymethods]
impl PyRouter {
    #[new]
    #[pyo3(signature = (mapping=None, strategy=None))]
    fn new(
        py: Python<'_>,
        mapping: Option<Py<PyMapping>>,
        strategy: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let mapping = match mapping {
            Some(m) => m,
            None => Py::new(py, PyMapping::new())?,
        };
        let now = Instant::now();
        let router = MessageRouter::new(
            mapping.get().inner.clone(),
            Arc::new(HealthRegistry::new(HealthPolicy::default(), now)),
            RouterConfig::default(),
        );
        Ok(PyRouter {
            router,
            mapping,
            default: self::strategy(py, strategy)?.unwrap_or(RoutingStrategy::RoundRobin),
        })
    }

    /// The mapping routed over.
    #[getter]
    fn mapping(&self, py: Python<'_>) -> Py<PyMapping> {
        self.mapping.clone_ref(py)
    }

    /// Chooses a queue of `topic` for `message` (a message is needed for MESSAGE_HASH only) by
    /// `strategy` (default: the router's). Never raises for a missing route: `success` is False and
    /// `error` says why.
    #[pyo3(signature = (topic, message=None, strategy=None))]
    fn route_message(
        &self,
        py: Python<'_>,
        topic: &str,
        message: Option<PyRef<'_, PyMessage>>,
        strategy: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyRoutingResult> {
        let strategy = self::strategy(py, strategy)?.unwrap_or(self.default);
        let empty;
        let msg = match &message {
            Some(m) => &m.inner,
            None => {
                empty = rmq::protocol::Message::new(topic, Vec::new());
                &empty
            }
        };
        let mapping = self.mapping.get();
        Ok(
            match self
                .router
                .route_message(topic, msg, strategy, Instant::now())
            {
                Ok(r) => PyRoutingResult {
                    success: true,
                    message_queue: Some(PyMapping::queue(topic, r.queue())),
                    broker_data: mapping.broker(topic, r.broker_name()),
                    broker_address: Some(r.broker_addr().to_owned()),
                    error: None,
                    routing_strategy: r.strategy.name(),
                    healthy_choice: r.healthy_choice,
                },
                Err(e) => PyRoutingResult {
                    success: false,
                    message_queue: None,
                    broker_data: None,
                    broker_address: None,
                    error: Some(
                        errors::to_py(py, &rmq::producer::ProducerError::Route(e))
                            .into_value(py)
                            .into_any(),
                    ),
                    routing_strategy: strategy.name(),
                    healthy_choice: false,
                },
            },
        )
    }

    /// Reports that a send to `result`'s broker succeeded after `latency_ms`.
    #[pyo3(signature = (result, latency_ms=None))]
    fn report_routing_result(
        &self,
        result: PyRef<'_, PyRoutingResult>,
        latency_ms: Option<f64>,
    ) -> PyResult<()> {
        let latency = latency(latency_ms)?;
        if let Some(q) = &result.message_queue {
            self.router
                .report_result(&q.broker_name, latency, Instant::now());
        }
        Ok(())
    }

    /// Reports that a send to `broker_name` failed with `error` (a timeout, a connection error, a
    /// broker's error code, or anything else); enough failures make the broker DEGRADED, then UNHEALTHY.
    #[pyo3(signature = (broker_name, error=None, latency_ms=None))]
    fn report_routing_failure(
        &self,
        py: Python<'_>,
        broker_name: &str,
        error: Option<&Bound<'_, PyAny>>,
        latency_ms: Option<f64>,
    ) -> PyResult<()> {
        let latency = latency(latency_ms)?;
        let kind = match error {
            None => FailureKind::Connection,
            Some(e) => {
                let errors = py.import("rmq.errors")?;
                let is = |name: &str| -> PyResult<bool> {
                    e.is_instance(&py.import("builtins")?.getattr(name)?)
                };
                if is("TimeoutError")? {
                    FailureKind::Timeout
                } else if e.is_instance(&errors.getattr("BrokerError")?)? {
                    FailureKind::Broker
                } else if is("ConnectionError")?
                    || e.is_instance(&errors.getattr("BrokerNotAvailableError")?)?
                {
                    FailureKind::Connection
                } else {
                    FailureKind::Client
                }
            }
        };
        self.router
            .report_failure(broker_name, kind, latency, Instant::now());
        Ok(())
    }

    /// HEALTHY, DEGRADED, UNHEALTHY or SUSPENDED.
    fn get_broker_state(&self, broker_name: &str) -> &'static str {
        state_name(self.router.health().state(broker_name))
    }

    /// Takes `broker_name` out of rotation until `force_recover`.
    fn suspend_broker(&self, broker_name: &str) {
        self.router.health().force_suspend(broker_name);
    }

    /// Brings `broker_name` back to HEALTHY at once.
    fn force_recover(&self, broker_name: &str) {
        self.router.health().force_recover(broker_name);
    }

    /// `total_routing`, `successful_routing`, `failed_routing`, `strategy_usage` and `broker_health` (per
    /// broker: `status`, `success_rate`, `avg_latency` in ms, ...).
    fn get_routing_stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.router.stats(Instant::now());
        let d = PyDict::new(py);
        d.set_item("total_routing", s.total)?;
        d.set_item("successful_routing", s.routed)?;
        d.set_item("failed_routing", s.errors)?;
        let usage = PyDict::new(py);
        for (strategy, n) in s.by_strategy {
            usage.set_item(strategy.name(), n)?;
        }
        d.set_item("strategy_usage", usage)?;
        let health = broker_health(py, &s.brokers)?;
        d.set_item("broker_health", health)?;
        Ok(d)
    }
}

/// The index Java's `SelectMessageQueueByHash` picks among `n` queues for `arg`: `abs(hashCode % n)`,
/// with a str hashed as Java's `String`, an int in the 32-bit range as an `Integer` and a larger one as a
/// `Long` (what a Java producer with the same argument picks; MESSAGE_HASH routing hashes the key's str).
#[pyfunction]
pub(crate) fn hash_index(arg: &Bound<'_, PyAny>, n: usize) -> PyResult<usize> {
    if n == 0 {
        return Err(pyo3::exceptions::PyValueError::new_err(
            "no queues to choose from",
        ));
    }
    let hash = if let Ok(s) = arg.cast::<PyString>() {
        rmq::routing::java_string_hash(&s.to_cow()?)
    } else if let Ok(v) = arg.extract::<i64>() {
        match i32::try_from(v) {
            Ok(small) => small.java_hash_code(),
            Err(_) => v.java_hash_code(),
        }
    } else {
        return Err(pyo3::exceptions::PyValueError::new_err(
            "a hash argument is a str or an int of at most 64 bits",
        ));
    };
    Ok(rmq::routing::selector::java_hash_index(hash, n))
}
