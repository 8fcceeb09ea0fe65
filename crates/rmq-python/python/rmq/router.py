"""Routing, usable without a producer: the route cache (:class:`TopicBrokerMapping`), the router with
its strategies and broker health (:class:`MessageRouter`), and the strategy and state names."""

import json
from dataclasses import dataclass
from enum import Enum
from typing import Any, List, Optional, Tuple, Union

from . import _rmq
from ._rmq import BrokerData, Message, MessageQueue, RoutingResult
from .queue_selectors import choose

__all__ = [
    "RoutingStrategy",
    "BrokerState",
    "TopicBrokerMapping",
    "MessageRouter",
    "RoutingResult",
    "SelectionResult",
    "MessageQueue",
    "BrokerData",
]


class RoutingStrategy(str, Enum):
    """The ``routing_strategy`` setting's values (a member is accepted wherever the text is)."""

    #: Rotate through the queues (the default).
    ROUND_ROBIN = "round_robin"
    #: A random queue.
    RANDOM = "random"
    #: The queue given by the hash of the sharding key (``set_property("SHARDING_KEY", k)``), else the
    #: first key; the same key always lands on the same queue while the route is unchanged.
    MESSAGE_HASH = "message_hash"

    def __str__(self) -> str:
        return self.value


class BrokerState(str, Enum):
    """A broker's health: HEALTHY, DEGRADED (used after healthy ones), UNHEALTHY (skipped while another
    is usable), SUSPENDED (out until ``force_recover``)."""

    HEALTHY = "HEALTHY"
    DEGRADED = "DEGRADED"
    UNHEALTHY = "UNHEALTHY"
    SUSPENDED = "SUSPENDED"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class SelectionResult:
    """What ``TopicBrokerMapping.select_queue`` chose."""

    success: bool
    message_queue: Optional[MessageQueue] = None
    broker_data: Optional[BrokerData] = None
    error: Optional[Exception] = None


class TopicBrokerMapping(_rmq.TopicBrokerMapping):
    """The route cache: ``update_route_info(topic, route)`` with the name server's route (JSON text,
    bytes or a dict), ``get_available_queues(topic)``, ``clear_expired_routes(timeout)`` (seconds),
    ``select_queue(topic, message, selector)``."""

    def update_route_info(self, topic: str, topic_route_data: Union[str, bytes, dict]) -> bool:
        if isinstance(topic_route_data, dict):
            topic_route_data = json.dumps(topic_route_data)
        return super().update_route_info(topic, topic_route_data)

    def select_queue(self, topic: str, message: Message, selector: Any) -> SelectionResult:
        """The queue ``selector`` chooses among ``topic``'s available queues (never raises for a missing
        route or a failing selector: ``success`` is False and ``error`` says why)."""
        from .errors import QueueNotAvailableError, ProducerError

        pairs: List[Tuple[MessageQueue, Optional[BrokerData]]] = self.get_available_queues(topic)
        if not pairs:
            return SelectionResult(False, error=QueueNotAvailableError(f"no route for topic {topic!r}"))
        queues = [q for q, _ in pairs]
        try:
            q = choose(selector, queues, message)
        except ProducerError as e:
            return SelectionResult(False, error=e)
        if q is None:
            return SelectionResult(False, error=QueueNotAvailableError("the selector chose no queue"))
        return SelectionResult(True, q, dict(pairs)[q])


class MessageRouter(_rmq.MessageRouter):
    """Chooses queues with a strategy and broker health. ``MessageRouter(mapping=None, strategy=None)``;
    ``route_message(topic, message=None, strategy=None)``, ``report_routing_result(result, latency_ms)``,
    ``report_routing_failure(broker_name, error)``, ``get_routing_stats()``, ``force_recover(broker)``."""
