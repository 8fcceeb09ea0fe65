"""The API of ../shared/docs/python-api.md against a real cluster (5.5.0 and 4.9.7 in scripts/test), every
message read back by the official Java consumer."""

import threading
from collections import defaultdict

import pytest

import rmq
from rmq import Message, create_producer
from rmq.router import RoutingStrategy

from conftest import by_uniq_key, sha256_hex, unique_topic


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


def test_a_delay_level_is_read_back_after_its_delay(cluster, producer, topic):
    m = Message(topic, b"delayed")
    m.set_delay_time_level(1)  # 1 s
    r = producer.send_sync(m)
    got = by_uniq_key(cluster.read_back(topic, lambda ms: len(ms) >= 1))
    g = got[r.message_id]
    assert g["properties"].get("DELAY") == "1" or "REAL_TOPIC" in g["properties"]
