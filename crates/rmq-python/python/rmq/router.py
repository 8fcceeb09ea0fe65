"""Routing: how the producer chooses a queue for each message."""

from enum import Enum

__all__ = ["RoutingStrategy"]


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
