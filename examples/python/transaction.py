"""Transactional messages with a Python listener: commit, rollback, and a check-back.

    RMQ_NAMESRV_ADDR=127.0.0.1:9876 target/python/venv/bin/python examples/python/transaction.py
"""

import os
from typing import Any, Dict

from rmq import LocalTransactionState, Message, create_transaction_producer


class Orders:
    """The local transaction: store the order in the application's database (here, a dict)."""

    def __init__(self) -> None:
        self.db: Dict[str, bytes] = {}

    def execute_local_transaction(self, message: Message, transaction_id: str, arg: Any) -> LocalTransactionState:
        if arg == "fail":
            return LocalTransactionState.ROLLBACK_MESSAGE
        self.db[transaction_id] = message.body
        return LocalTransactionState.COMMIT_MESSAGE

    def check_local_transaction(self, message: Message, transaction_id: str) -> LocalTransactionState:
        stored = transaction_id in self.db
        return LocalTransactionState.COMMIT_MESSAGE if stored else LocalTransactionState.ROLLBACK_MESSAGE


producer = create_transaction_producer("tx_example", os.environ.get("RMQ_NAMESRV_ADDR", "127.0.0.1:9876"), Orders())
with producer:
    for arg in ["ok", "fail"]:
        r = producer.send_message_in_transaction(Message("TxTopic", f"order ({arg})".encode()), arg)
        print(r.transaction_id, r.local_transaction_state)
