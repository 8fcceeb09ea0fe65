"""The exceptions of rmq, rooted at :class:`ProducerError`.

Every exception carries ``retryable`` (sending the same message again may succeed) and
``possibly_stored`` (the message may have reached a broker although the call failed, so a resend may
duplicate it); errors a broker answered with carry its ``code`` and ``broker_name``.
``except TimeoutError`` (the builtin) catches a send timeout too.
"""

import builtins
from typing import Optional

__all__ = [
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
    "SelectorError",
]


class ProducerError(Exception):
    """The base of every error rmq raises."""

    def __init__(
        self,
        message: str = "",
        *,
        retryable: bool = False,
        possibly_stored: bool = False,
        code: Optional[int] = None,
        broker_name: Optional[str] = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        #: Whether sending the same message again may succeed.
        self.retryable = retryable
        #: Whether the message may have been stored although the call failed.
        self.possibly_stored = possibly_stored
        #: The broker's response code, when a broker answered.
        self.code = code
        #: The broker that answered, when one did.
        self.broker_name = broker_name


class ProducerStartError(ProducerError):
    """``start()`` failed: a bad configuration, or the producer could not start."""


class ProducerStateError(ProducerError):
    """The producer is not running (not started, or shut down)."""


class ConfigError(ProducerError, ValueError):
    """A setting is unknown or its value is invalid."""


class MessageValidationError(ProducerError, ValueError):
    """The message was refused before anything was sent (topic, body size, properties)."""


class MessageSendError(ProducerError):
    """A send failed after its attempts."""


class BrokerError(MessageSendError):
    """A broker answered with an error code (``code``, ``broker_name``)."""


class AccessDeniedError(BrokerError):
    """The broker refused the request on ACL grounds (authentication or permission)."""


class MessageTypeMismatchError(BrokerError):
    """A RocketMQ 5 proxy refused the message: its type is not the topic's."""


class BrokerNotAvailableError(MessageSendError):
    """No connection to the broker (refused, closed, unreachable)."""


class RouteNotFoundError(ProducerError):
    """No route for the topic on the name servers."""


class QueueNotAvailableError(ProducerError):
    """The route has no usable queue."""


class TimeoutError(MessageSendError, builtins.TimeoutError):  # noqa: A001 (pyrocketmq's name)
    """The send did not finish within its timeout (``possibly_stored`` tells whether it may have)."""


class RequestTimeoutError(TimeoutError):
    """No reply to a request within its timeout."""


class OverloadedError(MessageSendError):
    """Too many asynchronous sends in flight (``async_send_semaphore``); nothing was sent."""


class NotSupportedError(ProducerError):
    """What was asked cannot work through this endpoint (request-reply through a RocketMQ 5 proxy)."""


class SelectorError(ProducerError):
    """A queue selector raised (the original is ``__cause__``) or chose no valid queue; nothing was sent."""
