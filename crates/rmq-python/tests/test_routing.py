"""Routing without a producer (python-api.md, "Routing"): TopicBrokerMapping, MessageRouter, strategies,
broker health and stats, selectors."""

import json

import pytest

from rmq import Message
from rmq.errors import BrokerError, TimeoutError
from rmq.queue_selectors import MessageHashSelector, RandomSelector, RoundRobinSelector
from rmq.router import BrokerState, MessageRouter, RoutingStrategy, TopicBrokerMapping

ROUTE = {
    "brokerDatas": [
        {"brokerName": "broker-a", "cluster": "C", "brokerAddrs": {"0": "127.0.0.1:10911"}},
        {"brokerName": "broker-b", "cluster": "C", "brokerAddrs": {"0": "127.0.0.1:10921"}},
    ],
    "queueDatas": [
        {"brokerName": "broker-a", "perm": 6, "readQueueNums": 4, "writeQueueNums": 4},
        {"brokerName": "broker-b", "perm": 6, "readQueueNums": 4, "writeQueueNums": 4},
    ],
}


def mapping():
    m = TopicBrokerMapping()
    assert m.update_route_info("T", ROUTE) is True
    return m


def test_mapping_queues_and_expiry():
    m = mapping()
    pairs = m.get_available_queues("T")
    assert len(pairs) == 8
    q, b = pairs[0]
    assert q.topic == "T" and q.full_name == f"T@{q.broker_name}@{q.queue_id}"
    assert b.broker_name == q.broker_name and b.master_addr.startswith("127.0.0.1:")
    assert m.update_route_info("T", json.dumps(ROUTE)) is False  # unchanged
    assert m.get_available_queues("nope") == []
    assert m.clear_expired_routes(3600) == 0
    assert m.clear_expired_routes(0) == 1 and m.get_available_queues("T") == []
    with pytest.raises(ValueError):
        m.update_route_info("T", "{not json")


def test_router_strategies_stats_and_health():
    r = MessageRouter(mapping())
    seen = {r.route_message("T").message_queue.full_name for _ in range(8)}
    assert len(seen) == 8, "round robin visits every queue"
    res = r.route_message("T", strategy=RoutingStrategy.RANDOM)
    assert res.success and res.routing_strategy == "random" and res.broker_address
    m = Message("T", b"x")
    m.set_property("SHARDING_KEY", "user-7")
    picks = {r.route_message("T", m, RoutingStrategy.MESSAGE_HASH).message_queue for _ in range(5)}
    assert len(picks) == 1
    # The selector of rmq.queue_selectors picks the queue the router's MESSAGE_HASH picks.
    chosen = mapping().select_queue("T", m, MessageHashSelector())
    assert chosen.success and chosen.message_queue == next(iter(picks))
    missing = r.route_message("nope")
    assert not missing.success and missing.error is not None
    r.report_routing_result(res, latency_ms=3.5)
    for _ in range(6):
        r.report_routing_failure("broker-a", TimeoutError("slow"))
    assert r.get_broker_state("broker-a") in (BrokerState.DEGRADED, BrokerState.UNHEALTHY)
    r.report_routing_failure("broker-b", BrokerError("code 14", code=14))
    r.force_recover("broker-a")
    assert r.get_broker_state("broker-a") == BrokerState.HEALTHY
    r.suspend_broker("broker-b")
    assert r.get_broker_state("broker-b") == "SUSPENDED"
    assert all(r.route_message("T").message_queue.broker_name == "broker-a" for _ in range(8))
    stats = r.get_routing_stats()
    assert stats["total_routing"] >= 23 and stats["successful_routing"] >= 22
    assert stats["strategy_usage"]["round_robin"] >= 16 and stats["strategy_usage"]["random"] == 1
    health = stats["broker_health"]
    assert health["broker-b"]["status"] == "SUSPENDED"
    assert 0.0 <= health["broker-a"]["success_rate"] <= 1.0 and health["broker-a"]["avg_latency"] >= 0


def test_selectors_and_user_selectors():
    m = mapping()
    msg = Message("T", b"x")
    rr = RoundRobinSelector()
    names = [m.select_queue("T", msg, rr).message_queue.full_name for _ in range(8)]
    assert len(set(names)) == 8
    assert m.select_queue("T", msg, RandomSelector()).success
    last = m.select_queue("T", msg, lambda queues, message, arg: queues[-1])
    assert last.success and last.message_queue == m.get_available_queues("T")[-1][0]
    assert m.select_queue("T", msg, lambda q, m_, a: 3).message_queue == m.get_available_queues("T")[3][0]

    def broken(queues, message, arg):
        raise RuntimeError("boom")

    res = m.select_queue("T", msg, broken)
    assert not res.success and isinstance(res.error.__cause__, RuntimeError)
    assert not m.select_queue("T", msg, lambda q, m_, a: 99).success
    # Java's SelectMessageQueueByHash on an int argument: abs(hash % n).
    queues = [q for q, _ in m.get_available_queues("T")]
    assert MessageHashSelector().select(queues, msg, 13) == 5
    assert MessageHashSelector().select(queues, msg, -13) == 5
    # Beyond 32 bits Java's argument is a Long: hashCode (int)(v ^ v >>> 32) = 705032705 for 5,000,000,000.
    assert MessageHashSelector().select(queues, msg, 5_000_000_000) == 705032705 % 8


def test_bad_latencies_are_value_errors_not_panics():
    r = MessageRouter(mapping())
    res = r.route_message("T")
    for bad in [float("inf"), float("nan"), -1.0, 1e300]:
        with pytest.raises(ValueError):
            r.report_routing_result(res, latency_ms=bad)
        with pytest.raises(ValueError):
            r.report_routing_failure("broker-a", None, latency_ms=bad)
