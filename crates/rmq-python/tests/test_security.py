"""ACL and TLS settings against servers that enforce them (scripts/test runs `-k acl` on the ACL clusters,
5.5.0 with ACL 2.0 and 4.9.7 with ACL 1.0, and `-k tls` on the TLS cluster, with RMQ_PY_REQUIRE_SECURITY
set so a cluster without the feature fails the run instead of skipping)."""

import os
import time

import pytest

import rmq
from rmq import Message, create_producer

from conftest import unique_topic


def needs(cluster, feature):
    has = cluster.acl if feature == "acl" else cluster.tls_ca
    if not has:
        why = f"the cluster does not enforce {feature.upper()} (scripts/cluster up --{feature})"
        if os.environ.get("RMQ_PY_REQUIRE_SECURITY") == feature:
            pytest.fail(why)
        pytest.skip(why)


def test_acl_the_right_keys_send_and_wrong_ones_are_refused(cluster):
    needs(cluster, "acl")
    ak, sk = os.environ["RMQ_ACL_PRODUCER_AK"], os.environ["RMQ_ACL_PRODUCER_SK"]
    topic = os.environ["RMQ_ACL_TOPIC"]
    run = f"py{int(time.time() * 1000)}"
    p = create_producer(unique_topic("py_acl"), cluster.namesrv, access_key=ak, secret_key=sk)
    p.start()
    try:
        want = set()
        for i in range(3):
            p.send_sync(Message(topic, b"signed", tags=run, keys=[f"{run}-sync-{i}"]))
            p.send_oneway(Message(topic, b"signed", tags=run, keys=[f"{run}-oneway-{i}"]))
            want |= {f"{run}-sync-{i}", f"{run}-oneway-{i}"}
        import asyncio

        async def one():
            return await p.send_async(Message(topic, b"signed", tags=run, keys=[f"{run}-async"]))

        assert asyncio.run(one()).success
        want.add(f"{run}-async")
        got = cluster.read_back(topic, lambda ms: want <= {m.get("keys") for m in ms if m.get("tags") == run})
        assert want <= {m.get("keys") for m in got}
    finally:
        p.shutdown()
    secret = "not-the-secret-" + run
    bad = create_producer(unique_topic("py_acl_bad"), cluster.namesrv, access_key=ak, secret_key=secret)
    bad.start()
    try:
        with pytest.raises(rmq.AccessDeniedError) as e:
            bad.send_sync(Message(topic, b"refused"))
        assert not e.value.retryable and not e.value.possibly_stored and e.value.code is not None
        assert secret not in str(e.value) and secret not in repr(bad.config)
    finally:
        bad.shutdown()


def test_tls_sends_are_read_back_and_plain_tcp_is_refused(cluster):
    needs(cluster, "tls")
    topic = unique_topic("rmq_py_tls")
    p = create_producer(unique_topic("py_tls"), cluster.namesrv, tls_ca_file=cluster.tls_ca)
    assert p.config.tls is True and p.config.tls_ca_file == cluster.tls_ca
    p.start()
    try:
        ids = {p.send_sync(Message(topic, b"x" * 6000)).message_id for _ in range(3)}
        p.send_oneway(Message(topic, b"oneway over tls"))
        got = cluster.read_back(topic, lambda ms: len(ms) >= 4)
        assert ids <= {m["uniqKey"] for m in got}
    finally:
        p.shutdown()
    # RMQ_TLS_CA in the environment (scripts/cluster env sets it) turns TLS on by itself, as for the CLI.
    assert create_producer(unique_topic("py_env"), cluster.namesrv).config.tls is (os.environ.get("RMQ_TLS_CA") is not None)
    plain = create_producer(unique_topic("py_plain"), cluster.namesrv, tls=False, send_msg_timeout=2000,
                            mq_client_api_timeout=1000)
    assert plain.config.tls is False
    plain.start()
    try:
        with pytest.raises(rmq.ProducerError):
            plain.send_sync(Message(topic, b"never over plain TCP"))
    finally:
        plain.shutdown()
