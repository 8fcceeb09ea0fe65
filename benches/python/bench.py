#!/usr/bin/env python3
"""The Python package's producer benchmark: the same workloads and JSON line as `rmq bench produce`, so
scripts/bench-python can put the two side by side in one run.

    bench.py --namesrv HOST:PORT --topic T --mode sync|async --threads N --window W --count C --size S
             [--warmup K]

sync: N threads share one producer, each calling send_sync in a loop. async: one asyncio loop (uvloop with
--uvloop) keeps W send_async calls in flight. Prints one JSON line: client, mode, threads, count, tps,
avg_ms, p99_ms, max_ms, failed, cpu_s.
"""

import argparse
import asyncio
import itertools
import json
import os
import threading
import time

from rmq import Message, create_producer


def percentile(sorted_ms, q):
    if not sorted_ms:
        return 0.0
    return sorted_ms[min(len(sorted_ms) - 1, int(len(sorted_ms) * q))]


def run_sync(p, msg, threads, count):
    ticket = itertools.count()
    lat = [[] for _ in range(threads)]
    failed = [0] * threads

    def work(i):
        mine = lat[i]
        while next(ticket) < count:
            t0 = time.perf_counter()
            try:
                p.send_sync(msg)
            except Exception:
                failed[i] += 1
            mine.append(time.perf_counter() - t0)

    ts = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    start = time.perf_counter()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return time.perf_counter() - start, [x for l in lat for x in l], sum(failed)


def run_async(p, msg, window, count, use_uvloop):
    lat = []
    failed = [0]

    async def worker(ticket):
        while next(ticket) < count:
            t0 = time.perf_counter()
            try:
                await p.send_async(msg)
            except Exception:
                failed[0] += 1
            lat.append(time.perf_counter() - t0)

    async def main():
        ticket = itertools.count()
        start = time.perf_counter()
        await asyncio.gather(*(worker(ticket) for _ in range(window)))
        return time.perf_counter() - start

    if use_uvloop:
        import uvloop

        loop = uvloop.new_event_loop()
    else:
        loop = asyncio.new_event_loop()
    try:
        secs = loop.run_until_complete(main())
    finally:
        loop.close()
    return secs, lat, failed[0]


def main():
    a = argparse.ArgumentParser()
    a.add_argument("--namesrv", required=True)
    a.add_argument("--topic", required=True)
    a.add_argument("--mode", choices=["sync", "async"], default="sync")
    a.add_argument("--threads", type=int, default=16)
    a.add_argument("--window", type=int, default=1000)
    a.add_argument("--count", type=int, default=100000)
    a.add_argument("--size", type=int, default=1024)
    a.add_argument("--warmup", type=int, default=1000)
    a.add_argument("--uvloop", action="store_true")
    args = a.parse_args()
    p = create_producer("rmq_py_bench", args.namesrv, async_send_semaphore=max(args.window, 10000))
    p.start()
    msg = Message(args.topic, b"x" * args.size)
    for _ in range(args.warmup):
        p.send_sync(msg)
    cpu0 = time.process_time()
    if args.mode == "sync":
        secs, lat, failed = run_sync(p, msg, args.threads, args.count)
    else:
        secs, lat, failed = run_async(p, msg, args.window, args.count, args.uvloop)
    cpu = time.process_time() - cpu0
    p.shutdown()
    ms = sorted(x * 1000 for x in lat)
    print(json.dumps({
        "client": "python-uvloop" if args.uvloop else "python",
        "mode": args.mode,
        "threads": args.threads if args.mode == "sync" else args.window,
        "count": args.count,
        "tps": args.count / secs,
        "avg_ms": sum(ms) / len(ms),
        "p99_ms": percentile(ms, 0.99),
        "max_ms": ms[-1],
        "failed": failed,
        "cpu_s": cpu,
        "pid": os.getpid(),
    }))


if __name__ == "__main__":
    main()
