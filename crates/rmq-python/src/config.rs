//! `ProducerConfig`: the Rust configuration, read and written by setting name through the one settings
//! table (`rmq::producer::SETTINGS`), so every Python keyword argument is a setting of the table and
//! every setting of the table is a keyword argument.

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString};
use rmq::producer::{ProducerConfig, SETTINGS, SettingKind, SettingValue, TEMPLATES};

use crate::errors;

/// A Python value as a setting's value: None, bool, int, float, str, a dict (`advertised: dial`, for
/// `broker_addr_override`) or a path (`os.PathLike`). Anything else (bytes included) is refused rather
/// than turned into its `str()`.
fn to_value(v: &Bound<'_, PyAny>) -> PyResult<SettingValue> {
    Ok(if v.is_none() {
        SettingValue::Null
    } else if let Ok(b) = v.cast::<PyBool>() {
        SettingValue::Bool(b.is_true())
    } else if v.is_instance_of::<PyInt>() {
        SettingValue::Int(v.extract()?)
    } else if v.is_instance_of::<PyFloat>() {
        SettingValue::Float(v.extract()?)
    } else if let Ok(s) = v.cast::<PyString>() {
        SettingValue::Text(s.to_cow()?.into_owned())
    } else if let Ok(d) = v.cast::<PyDict>() {
        let mut pairs = Vec::new();
        for (k, v) in d.iter() {
            pairs.push(format!("{}={}", k.str()?, v.str()?));
        }
        SettingValue::Text(pairs.join(";"))
    } else if v.hasattr("__fspath__")? {
        let path = v.py().import("os")?.getattr("fspath")?.call1((v,))?;
        SettingValue::Text(path.str()?.to_cow()?.into_owned())
    } else {
        return Err(errors::to_py(
            v.py(),
            &rmq::producer::ProducerError::Config {
                field: "setting",
                reason: format!(
                    "a {} is not a setting value (None, bool, int, float, str, dict or path)",
                    v.get_type().name()?
                ),
            },
        ));
    })
}

fn to_py(py: Python<'_>, v: SettingValue) -> PyResult<Py<PyAny>> {
    Ok(match v {
        SettingValue::Null => py.None(),
        SettingValue::Bool(b) => PyBool::new(py, b).to_owned().into_any().unbind(),
        SettingValue::Int(n) => n.into_pyobject(py)?.into_any().unbind(),
        SettingValue::Float(f) => f.into_pyobject(py)?.into_any().unbind(),
        SettingValue::Text(s) => s.into_pyobject(py)?.into_any().unbind(),
    })
}

/// The producer's configuration. `ProducerConfig(**settings)` starts from the defaults; every setting
/// is an attribute (durations in milliseconds); `rmq.config.settings()` lists them.
#[pyclass(module = "rmq._rmq", name = "ProducerConfig", subclass)]
#[derive(Clone)]
pub(crate) struct PyConfig {
    pub(crate) inner: ProducerConfig,
}

impl PyConfig {
    /// Applies keyword arguments (credentials together, whatever their order).
    pub(crate) fn apply(
        &mut self,
        py: Python<'_>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<()> {
        let Some(kwargs) = kwargs else { return Ok(()) };
        let mut values = Vec::new();
        for (k, v) in kwargs.iter() {
            values.push((k.extract::<String>()?, to_value(&v)?));
        }
        self.inner
            .set_all(values.iter().map(|(k, v)| (k.as_str(), v.clone())))
            .map_err(|e| errors::to_py(py, &e))
    }
}

#[pymethods]
impl PyConfig {
    #[new]
    #[pyo3(signature = (**kwargs))]
    fn new(py: Python<'_>, kwargs: Option<&Bound<'_, PyDict>>) -> PyResult<Self> {
        let mut c = PyConfig {
            inner: ProducerConfig::default(),
        };
        c.apply(py, kwargs)?;
        Ok(c)
    }

    /// The default configuration with the `RMQ_*` environment applied, then `kwargs`.
    #[staticmethod]
    #[pyo3(signature = (**kwargs))]
    fn from_env(py: Python<'_>, kwargs: Option<&Bound<'_, PyDict>>) -> PyResult<Self> {
        let mut c = PyConfig {
            inner: ProducerConfig::from_env().map_err(|e| errors::to_py(py, &e))?,
        };
        c.apply(py, kwargs)?;
        Ok(c)
    }

    /// Applies the `RMQ_*` environment to this configuration (each variable set overrides its setting).
    fn apply_env(&mut self, py: Python<'_>) -> PyResult<()> {
        self.inner.apply_env().map_err(|e| errors::to_py(py, &e))
    }

    fn __getattr__(&self, py: Python<'_>, name: &str) -> PyResult<Py<PyAny>> {
        match self.inner.get(name) {
            Some(v) => to_py(py, v),
            None => Err(pyo3::exceptions::PyAttributeError::new_err(format!(
                "ProducerConfig has no setting {name:?}"
            ))),
        }
    }

    fn __setattr__(
        &mut self,
        py: Python<'_>,
        name: &str,
        value: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        if rmq::producer::setting(name).is_none() {
            return Err(pyo3::exceptions::PyAttributeError::new_err(format!(
                "ProducerConfig has no setting {name:?}"
            )));
        }
        self.inner
            .set(name, to_value(value)?)
            .map_err(|e| errors::to_py(py, &e))
    }

    fn __dir__(&self) -> Vec<&'static str> {
        SETTINGS.iter().map(|s| s.name).collect()
    }

    /// Checks every setting together (the checks `Producer.start()` makes); raises `ConfigError`.
    fn validate(&self, py: Python<'_>) -> PyResult<()> {
        self.inner.validate().map_err(|e| errors::to_py(py, &e))
    }

    /// A copy with `kwargs` changed.
    #[pyo3(signature = (**kwargs))]
    fn copy(&self, py: Python<'_>, kwargs: Option<&Bound<'_, PyDict>>) -> PyResult<Self> {
        let mut c = self.clone();
        c.apply(py, kwargs)?;
        Ok(c)
    }

    /// Every setting and its value (secrets as None).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for s in SETTINGS {
            d.set_item(
                s.name,
                to_py(py, self.inner.get(s.name).unwrap_or(SettingValue::Null))?,
            )?;
        }
        Ok(d)
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other
            .cast::<PyConfig>()
            .is_ok_and(|o| o.borrow().inner == self.inner)
    }

    fn __repr__(&self) -> String {
        // Debug of the Rust config never shows a secret.
        format!(
            "ProducerConfig(producer_group={:?}, namesrv_addr={:?}, send_msg_timeout={}ms, retry_times={})",
            self.inner.producer_group,
            self.inner.namesrv_addr,
            self.inner.send_msg_timeout.as_millis(),
            self.inner.retry_times
        )
    }
}

/// The template `name` (`default`, `development`, `production`, `high_performance`, `testing`).
#[pyfunction]
pub(crate) fn get_config(py: Python<'_>, name: &str) -> PyResult<PyConfig> {
    rmq::producer::get_config(name)
        .map(|inner| PyConfig { inner })
        .map_err(|e| errors::to_py(py, &e))
}

/// The template names.
#[pyfunction]
pub(crate) fn template_names() -> Vec<&'static str> {
    TEMPLATES.to_vec()
}

/// Every setting as a dict: `name`, `env`, `kind`, `doc`, `default`.
#[pyfunction]
pub(crate) fn settings<'py>(py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
    let defaults = ProducerConfig::default();
    let out = PyList::empty(py);
    for s in SETTINGS {
        let d = PyDict::new(py);
        d.set_item("name", s.name)?;
        d.set_item("env", s.env)?;
        let kind = match s.kind {
            SettingKind::Text => "text",
            SettingKind::OptionalText => "optional_text",
            SettingKind::Secret => "secret",
            SettingKind::Count => "count",
            SettingKind::Bytes => "bytes",
            SettingKind::Millis => "milliseconds",
            SettingKind::Bool => "bool",
            SettingKind::Choice(_) => "choice",
        };
        d.set_item("kind", kind)?;
        if let SettingKind::Choice(names) = s.kind {
            d.set_item("choices", names.to_vec())?;
        }
        d.set_item("doc", s.doc)?;
        d.set_item(
            "default",
            to_py(py, defaults.get(s.name).unwrap_or(SettingValue::Null))?,
        )?;
        out.append(d)?;
    }
    Ok(out)
}
