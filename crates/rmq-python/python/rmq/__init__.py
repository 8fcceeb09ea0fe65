"""rmq: a RocketMQ producer for Python on a Rust core, with pyrocketmq's API.

>>> from rmq import Message, create_producer
>>> p = create_producer(producer_group="orders", namesrv_addr="127.0.0.1:9876")  # doctest: +SKIP
"""

from . import config, errors, producer, queue_selectors, router, transaction
from ._rmq import __version__
from .config import (
    DEFAULT_CONFIG,
    DEVELOPMENT_CONFIG,
    HIGH_PERFORMANCE_CONFIG,
    PRODUCTION_CONFIG,
    TESTING_CONFIG,
    ProducerConfig,
    create_custom_config,
    get_config,
)
from .errors import (
    AccessDeniedError,
    BrokerError,
    BrokerNotAvailableError,
    ConfigError,
    MessageSendError,
    MessageTypeMismatchError,
    MessageValidationError,
    NotSupportedError,
    OverloadedError,
    ProducerError,
    ProducerStartError,
    ProducerStateError,
    QueueNotAvailableError,
    RequestTimeoutError,
    RouteNotFoundError,
    SelectorError,
    TimeoutError,
)
from .producer import Message, Producer, SendResult, create_producer
from .queue_selectors import MessageHashSelector, QueueSelector, RandomSelector, RoundRobinSelector
from .router import BrokerState, MessageQueue, MessageRouter, RoutingStrategy, TopicBrokerMapping
from .transaction import (
    LocalTransactionState,
    TransactionListener,
    TransactionProducer,
    TransactionSendResult,
    create_transaction_producer,
)

__all__ = [
    "__version__",
    "config",
    "errors",
    "producer",
    "router",
    "queue_selectors",
    "transaction",
    "Message",
    "Producer",
    "SendResult",
    "create_producer",
    "ProducerConfig",
    "get_config",
    "create_custom_config",
    "DEFAULT_CONFIG",
    "DEVELOPMENT_CONFIG",
    "PRODUCTION_CONFIG",
    "HIGH_PERFORMANCE_CONFIG",
    "TESTING_CONFIG",
    "RoutingStrategy",
    "BrokerState",
    "MessageQueue",
    "MessageRouter",
    "TopicBrokerMapping",
    "QueueSelector",
    "RoundRobinSelector",
    "RandomSelector",
    "MessageHashSelector",
    "LocalTransactionState",
    "TransactionListener",
    "TransactionProducer",
    "TransactionSendResult",
    "create_transaction_producer",
    "SelectorError",
    "ProducerError",
    "ProducerStartError",
    "ProducerStateError",
    "ConfigError",
    "MessageValidationError",
    "MessageSendError",
    "BrokerError",
    "AccessDeniedError",
    "MessageTypeMismatchError",
    "BrokerNotAvailableError",
    "RouteNotFoundError",
    "QueueNotAvailableError",
    "TimeoutError",
    "RequestTimeoutError",
    "OverloadedError",
    "NotSupportedError",
]
