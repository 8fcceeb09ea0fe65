//! `Message`: a message to send, as pyrocketmq users build it.

use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyDict, PyMemoryView, PyString};
use rmq::protocol::Message;

use crate::errors;

/// `Message(topic, body)`: topic, body (bytes, or str sent as UTF-8), tags, keys, properties.
#[pyclass(module = "rmq._rmq", name = "Message", subclass)]
#[derive(Clone)]
pub(crate) struct PyMessage {
    pub(crate) inner: Message,
}

/// The bytes of a body given as bytes, bytearray, memoryview or str.
fn body_bytes(body: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    if let Ok(b) = body.cast::<PyBytes>() {
        return Ok(b.as_bytes().to_vec());
    }
    if let Ok(s) = body.cast::<PyString>() {
        return Ok(s.to_cow()?.as_bytes().to_vec());
    }
    if let Ok(b) = body.cast::<PyByteArray>() {
        return Ok(b.to_vec());
    }
    if body.is_instance_of::<PyMemoryView>()
        && let Ok(b) = body.call_method0("tobytes")
        && let Ok(b) = b.cast::<PyBytes>()
    {
        return Ok(b.as_bytes().to_vec());
    }
    Err(errors::validation(
        body.py(),
        "body must be bytes, bytearray, memoryview or str",
    ))
}

#[pymethods]
impl PyMessage {
    #[new]
    #[pyo3(signature = (topic, body=None, tags=None, keys=None, properties=None))]
    fn new(
        py: Python<'_>,
        topic: String,
        body: Option<&Bound<'_, PyAny>>,
        tags: Option<&str>,
        keys: Option<&Bound<'_, PyAny>>,
        properties: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        let body = body.map(body_bytes).transpose()?.unwrap_or_default();
        let mut m = PyMessage {
            inner: Message::new(topic, body),
        };
        if let Some(t) = tags {
            m.inner.set_tags(t);
        }
        if let Some(k) = keys {
            let keys: Vec<String> = match k.extract::<String>() {
                Ok(one) => vec![one],
                Err(_) => k.extract()?,
            };
            m.inner.set_keys(keys);
        }
        if let Some(props) = properties {
            for (k, v) in props.iter() {
                m.set_property(py, &k.extract::<String>()?, &v.extract::<String>()?)?;
            }
        }
        Ok(m)
    }

    /// The topic.
    #[getter]
    fn topic(&self) -> &str {
        &self.inner.topic
    }

    #[setter]
    fn set_topic(&mut self, topic: String) {
        self.inner.topic = topic;
    }

    /// The body (bytes).
    #[getter]
    fn body<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.body)
    }

    #[setter(body)]
    fn set_body_attr(&mut self, body: &Bound<'_, PyAny>) -> PyResult<()> {
        self.inner.body = body_bytes(body)?.into();
        Ok(())
    }

    /// The user flag.
    #[getter]
    fn flag(&self) -> i32 {
        self.inner.flag
    }

    #[setter]
    fn set_flag(&mut self, flag: i32) {
        self.inner.flag = flag;
    }

    /// The tag, or None.
    #[getter]
    fn tags(&self) -> Option<&str> {
        self.inner.tags()
    }

    /// The keys.
    #[getter]
    fn keys(&self) -> Vec<String> {
        self.inner.keys().map(str::to_owned).collect()
    }

    /// Every property (system and user) as a dict.
    #[getter]
    fn properties<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for (k, v) in self.inner.properties.iter() {
            d.set_item(k, v)?;
        }
        Ok(d)
    }

    /// Sets a property. `SHARDING_KEY` sets the sharding key (hash routing), `KEYS` the keys and `TAGS`
    /// the tag, as pyrocketmq reads them; other names are user properties (RocketMQ's reserved names and
    /// the separators of its encoding are refused with `MessageValidationError`).
    fn set_property(&mut self, py: Python<'_>, key: &str, value: &str) -> PyResult<()> {
        match key {
            "SHARDING_KEY" => self.inner.set_sharding_key(value),
            "KEYS" => self.inner.set_keys(value.split(' ')),
            "TAGS" => self.inner.set_tags(value),
            _ => self
                .inner
                .put_user_property(key, value)
                .map_err(|e| errors::validation(py, &e.to_string()))?,
        }
        Ok(())
    }

    /// A property, or None.
    fn get_property(&self, key: &str) -> Option<String> {
        let key = if key == "SHARDING_KEY" {
            rmq::protocol::message::property::SHARDING_KEY
        } else {
            key
        };
        self.inner.property(key).map(str::to_owned)
    }

    /// Sets the keys (joined with a space, RocketMQ's KEYS property).
    #[pyo3(signature = (*keys))]
    fn set_keys(&mut self, keys: Vec<String>) {
        self.inner.set_keys(keys);
    }

    /// Sets the tag.
    fn set_tags(&mut self, tags: &str) {
        self.inner.set_tags(tags);
    }

    /// Sets the sharding key (message-hash routing; ordered sends).
    fn set_sharding_key(&mut self, key: &str) {
        self.inner.set_sharding_key(key);
    }

    /// Sets the delay level (1-18 on a default broker: 1s 5s 10s 30s 1m 2m ... 2h).
    fn set_delay_time_level(&mut self, level: i32) {
        self.inner.set_delay_level(level);
    }

    /// Delivers the message `ms` milliseconds from now (timer message, 5.x brokers).
    fn set_delay_time_ms(&mut self, ms: i64) {
        self.inner.set_delay_time_ms(ms);
    }

    /// Delivers the message `secs` seconds from now (timer message, 5.x brokers).
    fn set_delay_time_sec(&mut self, secs: i64) {
        self.inner.set_delay_time_sec(secs);
    }

    /// Delivers the message at `ms` milliseconds since the epoch (timer message, 5.x brokers).
    fn set_deliver_time_ms(&mut self, ms: i64) {
        self.inner.set_deliver_time_ms(ms);
    }

    /// Sets the priority for a PRIORITY topic (RocketMQ 5.4+): the broker stores the message in queue
    /// min(priority, queues - 1). Sending refuses it together with a delay, a timer, a sharding key or a
    /// lite topic.
    fn set_priority(&mut self, priority: u32) {
        self.inner.set_priority(priority);
    }

    /// Sends the message to lite topic `lite` of its topic, a LITE parent topic (RocketMQ 5.5). The name
    /// is checked on send: 1 to 64 characters of a-zA-Z0-9_-.
    fn set_lite_topic(&mut self, lite: &str) {
        self.inner.set_lite_topic(lite);
    }

    /// The priority, if set.
    #[getter]
    fn priority(&self) -> Option<u32> {
        self.inner.priority()
    }

    /// The lite topic, if set.
    #[getter]
    fn lite_topic(&self) -> Option<&str> {
        self.inner.lite_topic()
    }

    /// Whether the broker answers only once the message is stored (default True).
    fn set_wait_store_ok(&mut self, wait: bool) {
        self.inner.set_wait_store_ok(wait);
    }

    fn __repr__(&self) -> String {
        format!(
            "Message(topic={:?}, body=<{} bytes>, tags={:?}, keys={:?})",
            self.inner.topic,
            self.inner.body.len(),
            self.inner.tags(),
            self.inner.keys().collect::<Vec<_>>()
        )
    }
}
