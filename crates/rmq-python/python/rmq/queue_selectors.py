"""Queue selectors: which of a topic's queues a message goes to.

A selector is any object with ``select(queues, message, arg=None)`` (or a callable taking the same),
returning a :class:`MessageQueue` of ``queues`` or its index. Used by
``TopicBrokerMapping.select_queue`` and ``Producer.send_with_selector``; an exception a selector raises
reaches the caller as a ``SelectorError`` (its ``__cause__`` is the original) and nothing is sent.
"""

import itertools
import random
import threading
from typing import Any, Dict, Optional, Sequence, Union

from ._rmq import Message, MessageQueue, hash_index

__all__ = ["QueueSelector", "RoundRobinSelector", "RandomSelector", "MessageHashSelector", "choose"]

Choice = Union[MessageQueue, int, None]


class QueueSelector:
    """The selector protocol (subclassing it is optional)."""

    def select(self, queues: Sequence[MessageQueue], message: Message, arg: Any = None) -> Choice:
        raise NotImplementedError


class RoundRobinSelector(QueueSelector):
    """Each topic's queues in turn."""

    def __init__(self) -> None:
        self._counters: Dict[str, "itertools.count[int]"] = {}
        self._lock = threading.Lock()

    def select(self, queues: Sequence[MessageQueue], message: Message, arg: Any = None) -> Choice:
        if not queues:
            return None
        with self._lock:
            counter = self._counters.setdefault(message.topic, itertools.count())
            return next(counter) % len(queues)


class RandomSelector(QueueSelector):
    """A random queue."""

    def select(self, queues: Sequence[MessageQueue], message: Message, arg: Any = None) -> Choice:
        return random.randrange(len(queues)) if queues else None


class MessageHashSelector(QueueSelector):
    """The queue of a key's hash, as the producer's MESSAGE_HASH routing and Java's
    ``SelectMessageQueueByHash`` choose it: ``arg`` when given (a str hashed as Java's String, an int as
    Java's Integer, or Long beyond 32 bits; anything else by its str), else the message's SHARDING_KEY,
    else its first key, else a random queue."""

    def select(self, queues: Sequence[MessageQueue], message: Message, arg: Any = None) -> Choice:
        if not queues:
            return None
        key = arg if arg is not None else (message.get_property("SHARDING_KEY") or next(iter(message.keys), None))
        if key is None:
            return random.randrange(len(queues))
        if not isinstance(key, (str, int)) or isinstance(key, bool):
            key = str(key)
        return hash_index(key, len(queues))


def choose(selector: Any, queues: Sequence[MessageQueue], message: Message, arg: Any = None) -> Optional[MessageQueue]:
    """Runs ``selector`` and returns the queue it chose (None if it chose none). Raises
    ``SelectorError`` when the selector raises or answers something that is not one of ``queues``."""
    from .errors import SelectorError

    try:
        pick = selector.select(queues, message, arg) if hasattr(selector, "select") else selector(queues, message, arg)
    except Exception as e:
        raise SelectorError(f"the queue selector raised {type(e).__name__}: {e}") from e
    if pick is None:
        return None
    if isinstance(pick, int) and not isinstance(pick, bool):
        if 0 <= pick < len(queues):
            return queues[pick]
        raise SelectorError(f"the queue selector chose index {pick} of {len(queues)} queues")
    if isinstance(pick, MessageQueue) and pick in queues:
        return pick
    raise SelectorError(f"the queue selector answered {pick!r}, not one of the {len(queues)} queues")
