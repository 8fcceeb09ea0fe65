"""Configuration: :class:`ProducerConfig`, the templates, and the ``RMQ_*`` environment.

Every setting is one row of rmq's settings table (``settings()`` lists them with their environment
variable, kind, default and meaning); durations are milliseconds (a float is accepted).
"""

from typing import Any

from ._rmq import ProducerConfig, settings, template_names
from ._rmq import get_config as _template

__all__ = [
    "ProducerConfig",
    "get_config",
    "create_custom_config",
    "settings",
    "template_names",
    "DEFAULT_CONFIG",
    "DEVELOPMENT_CONFIG",
    "PRODUCTION_CONFIG",
    "HIGH_PERFORMANCE_CONFIG",
    "TESTING_CONFIG",
]

#: Java's defaults.
DEFAULT_CONFIG: ProducerConfig = _template("default")
#: 5 s timeout, 1 retry, batches of 16.
DEVELOPMENT_CONFIG: ProducerConfig = _template("development")
#: 3 retries, retry another broker on degraded stores, latency fault tolerance on.
PRODUCTION_CONFIG: ProducerConfig = _template("production")
#: 1 s timeout, 1 retry, random routing, 50,000 async sends in flight, batches of 64.
HIGH_PERFORMANCE_CONFIG: ProducerConfig = _template("high_performance")
#: group TEST_PRODUCER, 10 s timeout, no retry, batches of 8.
TESTING_CONFIG: ProducerConfig = _template("testing")


def get_config(name: str) -> ProducerConfig:
    """The template ``name`` ("default", "development", "production", "high_performance", "testing")
    with the ``RMQ_*`` environment applied on top. Raises ``ConfigError`` for an unknown name."""
    config = _template(name)
    config.apply_env()
    return config


def create_custom_config(**kwargs: Any) -> ProducerConfig:
    """The default configuration, the ``RMQ_*`` environment on top, then ``kwargs`` (setting names)."""
    return ProducerConfig.from_env(**kwargs)
