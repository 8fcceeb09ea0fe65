"""asyncio: `await producer.send_async(msg)` (and oneway, batch) from the Rust core without a thread per
send, under the default loop and under uvloop, with every message read back by the Java consumer."""

import asyncio
import gc
import os

import pytest

import rmq
from rmq import Message, ProducerStateError

from conftest import by_uniq_key, sha256_hex, unique_topic


def run(coro, use_uvloop=False):
    if use_uvloop:
        uvloop = pytest.importorskip("uvloop")
        loop = uvloop.new_event_loop()
    else:
        loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()


@pytest.mark.parametrize("use_uvloop", [False, True], ids=["asyncio", "uvloop"])
def test_thousands_of_concurrent_awaits(cluster, producer, topic, use_uvloop):
    n = 2000

    def threads():
        return len(os.listdir("/proc/self/task"))  # every thread of the process, rmq's included

    async def main():
        threads_before = threads()
        results = await asyncio.gather(*(producer.send_async(Message(topic, f"async {i}".encode())) for i in range(n)))
        await producer.send_oneway_async(Message(topic, b"async oneway", tags="TagO"))
        batch = await producer.send_batch_async(*(Message(topic, f"ab {i}".encode(), tags="TagB") for i in range(4)))
        # No thread per send: rmq's own few threads (readers, pool, timer), not thousands.
        assert threads() - threads_before < 30, (threads_before, threads())
        return results, batch

    results, batch = run(main(), use_uvloop)
    assert len(results) == n and all(r.success for r in results)
    assert len(batch) == 1 and batch[0].success
    got = cluster.read_back(topic, lambda ms: len(ms) >= n + 5, timeout=120)
    assert len(got) == n + 5
    keyed = by_uniq_key(got)
    for i in (0, n // 2, n - 1):
        assert keyed[results[i].message_id]["bodySha256"] == sha256_hex(f"async {i}".encode())


def test_the_loop_keeps_ticking_while_sends_wait(cluster, producer, topic):
    gaps = []

    async def ticker(stop):
        loop = asyncio.get_running_loop()
        last = loop.time()
        while not stop.is_set():
            await asyncio.sleep(0.001)
            now = loop.time()
            gaps.append(now - last)
            last = now

    async def main():
        stop = asyncio.Event()
        t = asyncio.ensure_future(ticker(stop))
        for _ in range(10):
            await asyncio.gather(*(producer.send_async(Message(topic, b"x")) for _ in range(200)))
        stop.set()
        await t

    run(main())
    assert max(gaps) < 0.5, f"the loop stalled {max(gaps) * 1000:.0f} ms"


def test_errors_reach_the_awaiter_typed(cluster, producer):
    async def main():
        with pytest.raises(rmq.MessageValidationError):
            await producer.send_async(Message("bad topic", b"x"))
        p = rmq.Producer(rmq.ProducerConfig(producer_group="G"))
        with pytest.raises(ProducerStateError):
            await p.send_async(Message("T", b"x"))

    run(main())


def test_a_cancelled_await_still_counts_its_send(cluster, producer, topic):
    async def main():
        before = producer.get_stats()["total_sent"]
        tasks = [asyncio.ensure_future(producer.send_async(Message(topic, b"c"))) for _ in range(50)]
        await asyncio.sleep(0)
        for t in tasks[:25]:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        # Every send ends in the stats, cancelled awaits included.
        for _ in range(100):
            if producer.get_stats()["total_sent"] - before == 50:
                break
            await asyncio.sleep(0.05)
        assert producer.get_stats()["total_sent"] - before == 50

    run(main())


def test_two_producers_share_a_loop(cluster, topic):
    from rmq import create_producer

    a = create_producer(unique_topic("py_a"), cluster.namesrv)
    b = create_producer(unique_topic("py_b"), cluster.namesrv)

    async def main():
        async with a, b:
            ra = [a.send_async(Message(topic, f"a{i}".encode())) for i in range(200)]
            rb = [b.send_oneway_async(Message(topic, f"b{i}".encode())) for i in range(200)]
            rr = [a.send_batch_async(Message(topic, b"batch"))]
            return await asyncio.gather(*ra), await asyncio.gather(*rb), await asyncio.gather(*rr)

    sends, oneways, batches = run(main())
    # Each call got its own outcome: results for sends, None for oneway, a list for the batch.
    assert all(isinstance(r, rmq.SendResult) for r in sends) and len({r.message_id for r in sends}) == 200
    assert oneways == [None] * 200
    assert isinstance(batches[0], list) and batches[0][0].success


def test_closed_loops_leave_no_pipe_behind(cluster, producer, topic):
    def fds():
        gc.collect()
        return len(os.listdir("/proc/self/fd"))

    async def one():
        await producer.send_async(Message(topic, b"loop churn"))

    run(one())
    before = fds()
    for _ in range(100):
        run(one())
    assert fds() - before < 10, "each closed event loop left its bridge's pipe open"


def test_auto_batch_gathers_awaits_into_batches_with_their_own_results(cluster, topic):
    """Auto-batch (a setting like any other): concurrent awaits share batch requests, and each gets the
    result of its own message, as the Java consumer reads it back."""
    from rmq import create_producer

    p = create_producer(
        producer_group=unique_topic("py_group"), namesrv_addr=cluster.namesrv, auto_batch=True, auto_batch_linger=50
    )
    p.start()
    try:
        n = 300
        p.send_sync(Message(topic, b"first"))  # the topic on the broker: batches do not create it everywhere

        async def main():
            return await asyncio.gather(*(p.send_async(Message(topic, f"ab {i}".encode())) for i in range(n)))

        results = run(main())
    finally:
        p.shutdown()
    assert len({r.message_id for r in results}) == n
    # A few requests, not 300: most results share a queue (alone, round robin would spread them).
    assert len({(r.broker_name, r.queue_id) for r in results}) <= 6
    got = cluster.read_back(topic, lambda ms: len(ms) >= n + 1, timeout=120)
    keyed = by_uniq_key(got)
    for i, r in enumerate(results):
        assert keyed[r.message_id]["bodySha256"] == sha256_hex(f"ab {i}".encode())
        assert keyed[r.message_id]["queueId"] == r.queue_id
