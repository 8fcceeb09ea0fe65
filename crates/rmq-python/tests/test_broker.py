"""The API of ../shared/docs/python-api.md against a real cluster (5.5.0 and 4.9.7 in scripts/test), every
message read back by the official Java consumer."""

import threading
from collections import defaultdict

import pytest

import rmq
from rmq import Message, create_producer
from rmq.router import RoutingStrategy

from conftest import by_uniq_key, sha256_hex, unique_topic  # noqa: E402


def test_a_users_first_program(cluster, topic):
    # python-api.md, "A user's first program", with the cluster's name server and a fresh topic.
    p = create_producer(producer_group=unique_topic("orders"), namesrv_addr=cluster.namesrv)
    p.start()
    m = Message(topic=topic, body=b"order 42")
    m.set_property("SHARDING_KEY", "user-42")
    m.set_keys("order-42")
    m.set_tags("paid")
    r = p.send_sync(m)
    assert r.success and r.message_id and r.broker_name and r.queue_id is not None
    assert r.topic == topic and r.status == "SEND_OK" and r.error is None
    assert r.offset_msg_id and r.queue_offset is not None and r.send_timestamp > 1.7e9
    assert p.get_stats()["success_rate"] == 1.0
    p.shutdown()
    got = by_uniq_key(cluster.read_back(topic, lambda ms: len(ms) >= 1))
    g = got[r.message_id]
    assert g["bodySha256"] == sha256_hex(b"order 42")
    assert g["tags"] == "paid"
    assert g["properties"]["KEYS"] == "order-42"
    assert g["properties"]["__SHARDINGKEY"] == "user-42"
    assert g["queueId"] == r.queue_id


def test_sync_oneway_batch_and_aliases_are_read_back(cluster, producer, topic):
    sent = {}
    for i in range(3):
        m = Message(topic, f"sync {i}".encode(), tags="TagS", keys=[f"k{i}"])
        m.set_property("origin", "pytest")
        sent[producer.send_sync(m).message_id] = m
    m = Message(topic, b"via send")
    sent[producer.send(m).message_id] = m
    producer.send_oneway(Message(topic, b"oneway 1", tags="TagO"))
    producer.oneway(Message(topic, b"oneway 2", tags="TagO"))
    batch = [Message(topic, f"batch {i}".encode(), tags="TagB") for i in range(5)]
    results = producer.send_batch(*batch)
    assert len(results) == 1 and results[0].success
    producer.oneway_batch(Message(topic, b"ob 1", tags="TagOB"), Message(topic, b"ob 2", tags="TagOB"))
    got = cluster.read_back(topic, lambda ms: len(ms) >= 13)
    assert len(got) == 13
    keyed = by_uniq_key(got)
    for uniq, m in sent.items():
        assert keyed[uniq]["bodySha256"] == sha256_hex(m.body)
        for k, v in m.properties.items():
            assert keyed[uniq]["properties"][k] == v, k
    assert sorted(g["tags"] for g in got if g["tags"] in ("TagO", "TagOB")) == ["TagO"] * 2 + ["TagOB"] * 2
    assert {g["bodySha256"] for g in got if g["tags"] == "TagB"} == {sha256_hex(m.body) for m in batch}
    stats = producer.get_stats()
    assert stats["total_sent"] == 4 + 1 + 4  # 4 sync and 1 batch with answers, 4 oneway
    assert stats["total_failed"] == 0 and stats["running"] is True
    assert stats["brokers"], stats
    for b in stats["brokers"].values():
        assert b["status"] == "HEALTHY" and 0.0 <= b["success_rate"] <= 1.0 and b["avg_latency"] >= 0


def test_sharding_key_keeps_each_key_on_one_queue_in_order(cluster, topic):
    p = create_producer(
        unique_topic("py_ordered"), cluster.namesrv, routing_strategy=RoutingStrategy.MESSAGE_HASH
    )
    p.start()
    queues = defaultdict(set)
    order = defaultdict(list)
    for i in range(30):
        key = f"user-{i % 3}"
        m = Message(topic, f"{key} step {i}".encode())
        m.set_property("SHARDING_KEY", key)
        r = p.send_sync(m)
        queues[key].add((r.broker_name, r.queue_id))
        order[key].append(r.message_id)
    p.shutdown()
    assert all(len(q) == 1 for q in queues.values()), queues
    got = cluster.read_back(topic, lambda ms: len(ms) >= 30)
    for key, ids in order.items():
        mine = sorted((g for g in got if g["uniqKey"] in ids), key=lambda g: g["queueOffset"])
        assert [g["uniqKey"] for g in mine] == ids, key


def test_heartbeat_and_stats(cluster, producer, topic):
    producer.send_sync(Message(topic, b"warm up: a route and a connection"))
    before = producer.get_stats()["heartbeats_ok"]
    producer.send_heartbeat_to_all_broker()
    stats = producer.get_stats()
    assert stats["heartbeats_ok"] > before
    for key in ["running", "total_sent", "total_failed", "success_rate"]:
        assert key in stats


def test_threads_share_one_producer(cluster, producer, topic):
    errors = []
    ids = []
    lock = threading.Lock()

    def work(n):
        try:
            for i in range(25):
                r = producer.send_sync(Message(topic, f"thread {n} msg {i}".encode()))
                with lock:
                    ids.append(r.message_id)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert len(set(ids)) == 400
    got = cluster.read_back(topic, lambda ms: len(ms) >= 400)
    assert {g["uniqKey"] for g in got} == set(ids)


def test_refusals_before_any_io_are_typed(cluster, producer):
    with pytest.raises(rmq.MessageValidationError):
        producer.send_sync(Message("bad topic with spaces", b"x"))
    with pytest.raises(rmq.MessageValidationError):
        producer.send_sync(Message(unique_topic("rmq_py"), b"x" * (4 * 1024 * 1024 + 1)))
    stats = producer.get_stats()
    assert stats["total_failed"] == 2


def held_back(cluster, producer, message, seconds):
    """Sends `message`, checks the Java consumer cannot read it at once, then that the broker stored it for
    delivery no earlier than `seconds` (less 0.5 s of the broker's rounding) after the send."""
    import time

    sent_ms = time.time() * 1000
    r = producer.send_sync(message)
    assert cluster.read_back(message.topic, lambda ms: True, timeout=5) == [], "readable before its time"
    got = by_uniq_key(cluster.read_back(message.topic, lambda ms: len(ms) >= 1, timeout=30))
    stored_after = got[r.message_id]["storeTimestamp"] - sent_ms
    assert stored_after >= seconds * 1000 - 500, f"delivered {stored_after:.0f} ms after the send, asked {seconds} s"


def test_a_delay_level_holds_the_message_back(cluster, producer, topic):
    m = Message(topic, b"delayed")
    m.set_delay_time_level(2)  # 5 s on a default broker
    held_back(cluster, producer, m, 5)


def test_a_timer_holds_the_message_back(cluster, producer, topic):
    if cluster.is_4x or cluster.impl != "java":
        pytest.skip("timer messages need Apache RocketMQ 5.x's timer wheel (4.9.7 delivers them at once)")
    m = Message(topic, b"timer")
    m.set_delay_time_sec(5)
    held_back(cluster, producer, m, 5)


def test_ordered_sends_with_a_python_selector(cluster, producer, topic):
    from rmq.errors import SelectorError
    from rmq.queue_selectors import MessageHashSelector

    producer.send_sync(Message(topic, b"create the topic"))
    queues = producer.fetch_publish_queues(topic)
    assert len(queues) >= 4
    results = [producer.send_with_selector(Message(topic, f"o{i}".encode()), MessageHashSelector(), "order-1")
               for i in range(5)]
    assert len({(r.broker_name, r.queue_id) for r in results}) == 1
    target = queues[-1]
    r = producer.send_to_queue(Message(topic, b"to the last queue"), target)
    assert (r.broker_name, r.queue_id) == (target.broker_name, target.queue_id)

    def broken(queues, message, arg):
        raise RuntimeError("selector bug")

    before = producer.get_stats()["total_sent"]
    with pytest.raises(SelectorError) as e:
        producer.send_with_selector(Message(topic, b"never sent"), broken)
    assert isinstance(e.value.__cause__, RuntimeError)
    assert producer.get_stats()["total_sent"] == before
    got = cluster.read_back(topic, lambda ms: len(ms) >= 7)
    assert not any(g["bodySha256"] == sha256_hex(b"never sent") for g in got)


def test_request_reply_with_the_java_replier(cluster, producer, topic):
    import subprocess
    import time

    if cluster.impl != "java":
        pytest.skip("tested on the Apache RocketMQ brokers")
    producer.send_sync(Message(topic, b"create"))
    replier = subprocess.Popen(
        [cluster.checker, "checker", "reply", "--topic", topic, "--seconds", "90"],
        env={**__import__("os").environ, "RMQ_NAMESRV": cluster.namesrv},
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        for line in replier.stdout:
            if line.strip() == "ready":
                break
        deadline = time.monotonic() + 40
        while True:  # until the replier's consumer has its queues, requests may go unanswered
            try:
                reply = producer.request(Message(topic, b"ping-0"), timeout=3000)
                break
            except rmq.RequestTimeoutError:
                assert time.monotonic() < deadline, "the Java replier never answered"
        assert reply.body == b"reply:ping-0"
        for i in range(1, 4):
            assert producer.request(Message(topic, f"ping-{i}".encode()), timeout=5000).body == f"reply:ping-{i}".encode()

        import asyncio

        async def main():
            return await producer.request_async(Message(topic, b"ping-async"), timeout=5000)

        assert asyncio.run(main()).body == b"reply:ping-async"
    finally:
        replier.kill()
        replier.wait()
    silent = unique_topic("rmq_py_silent")
    producer.send_sync(Message(silent, b"create"))
    with pytest.raises(TimeoutError):  # the builtin catches it
        producer.request(Message(silent, b"nobody answers"), timeout=500)


class Listener:
    def __init__(self):
        self.executed = []

    def execute_local_transaction(self, message, transaction_id, arg):
        self.executed.append(transaction_id)
        if arg == "raise":
            raise RuntimeError("local transaction bug")
        return arg

    def check_local_transaction(self, message, transaction_id):
        from rmq import LocalTransactionState

        return LocalTransactionState.COMMIT_MESSAGE if message.keys == ["checked"] else LocalTransactionState.ROLLBACK_MESSAGE


def test_transactions_commit_rollback_and_check_back(cluster, topic):
    import sys

    from rmq import LocalTransactionState, create_transaction_producer

    if cluster.impl != "java":
        pytest.skip("rocketmq-rust's transaction check interval is not shortened by scripts/cluster")
    unraisable = []
    old_hook = sys.unraisablehook
    sys.unraisablehook = unraisable.append
    listener = Listener()
    p = create_transaction_producer(unique_topic("py_tx"), cluster.namesrv, listener)
    p.start()
    try:
        states = {}
        for key, arg in [("committed", LocalTransactionState.COMMIT_MESSAGE),
                         ("rolled-back", LocalTransactionState.ROLLBACK_MESSAGE),
                         ("checked", LocalTransactionState.UNKNOW),
                         ("raised", "raise")]:
            r = p.send_message_in_transaction(Message(topic, f"tx {key}".encode(), keys=[key]), arg)
            states[key] = r.local_transaction_state
            assert r.send_result.success
            # The listener ran for this message, with the id the result names.
            assert listener.executed[-1] == r.transaction_id
        assert states == {"committed": "COMMIT_MESSAGE", "rolled-back": "ROLLBACK_MESSAGE",
                          "checked": "UNKNOW", "raised": "UNKNOW"}
        assert p.listener_errors == 1 and len(unraisable) == 1
        assert isinstance(unraisable[0].exc_value, RuntimeError)
        got = cluster.read_back(topic, lambda ms: {"committed", "checked"} <= {m.get("keys") for m in ms}, timeout=90)
        keys = sorted(m.get("keys") for m in got)
        assert "rolled-back" not in keys and "raised" not in keys, keys
        assert p.checks_answered >= 1
    finally:
        sys.unraisablehook = old_hook
        p.shutdown()


def test_start_does_not_hold_other_threads(cluster, topic):
    import threading
    import time

    p = create_producer(unique_topic("py_race"), cluster.namesrv)
    calls = [0]
    stop = threading.Event()

    def poke():
        while not stop.is_set():
            p.running, p.client_id, p.get_stats(), repr(p)
            calls[0] += 1

    pokers = [threading.Thread(target=poke, daemon=True) for _ in range(2)]
    for t in pokers:
        t.start()
    starters = [threading.Thread(target=p.start, daemon=True) for _ in range(3)]
    for t in starters:
        t.start()
    for t in starters:
        t.join(30)
    stop.set()
    for t in pokers:
        t.join(30)
    assert not any(t.is_alive() for t in starters + pokers), "a start and other calls deadlocked"
    assert p.running and calls[0] > 0
    assert p.send_sync(Message(topic, b"after the race")).success
    p.shutdown()
