"""Transactional messages: :class:`TransactionProducer` with a listener that runs the local transaction
and answers the broker's check-backs."""

from enum import Enum
from typing import Any

from . import _rmq
from ._rmq import Message, TransactionSendResult

__all__ = ["LocalTransactionState", "TransactionListener", "TransactionProducer", "TransactionSendResult",
           "create_transaction_producer"]


class LocalTransactionState(str, Enum):
    """What a local transaction decided (the names of RocketMQ's Java enum)."""

    #: Deliver the message.
    COMMIT_MESSAGE = "COMMIT_MESSAGE"
    #: Discard the message.
    ROLLBACK_MESSAGE = "ROLLBACK_MESSAGE"
    #: Not known yet: the broker checks back later.
    UNKNOW = "UNKNOW"

    def __str__(self) -> str:
        return self.value


class TransactionListener:
    """The listener protocol (subclassing it is optional). Each method answers a
    :class:`LocalTransactionState`; raising, or answering anything else, counts as UNKNOW (reported
    through ``sys.unraisablehook`` and counted in ``listener_errors``)."""

    def execute_local_transaction(self, message: Message, transaction_id: str, arg: Any) -> LocalTransactionState:
        """Runs the local transaction of ``message``, whose half message the broker stored. Runs on one
        of rmq's threads while ``send_message_in_transaction`` waits."""
        raise NotImplementedError

    def check_local_transaction(self, message: Message, transaction_id: str) -> LocalTransactionState:
        """Says how the local transaction of ``message`` ended, for a broker that did not learn it. Runs on
        one of rmq's check threads."""
        raise NotImplementedError


class TransactionProducer(_rmq.TransactionProducer):
    """``TransactionProducer(config, listener)``: ``start()``, ``send_message_in_transaction(message,
    arg=None)``, ``shutdown()``; also a context manager."""

    def __enter__(self) -> "TransactionProducer":
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.shutdown()


def create_transaction_producer(producer_group: str, namesrv_addr: str, listener: Any, **kwargs: Any) -> TransactionProducer:
    """A transactional producer (not started); ``kwargs`` are settings, over the ``RMQ_*`` environment."""
    from .config import create_custom_config

    return TransactionProducer(create_custom_config(producer_group=producer_group, namesrv_addr=namesrv_addr, **kwargs), listener)
