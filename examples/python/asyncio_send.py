"""asyncio: thousands of sends in flight from one event loop, no thread per send.

    RMQ_NAMESRV_ADDR=127.0.0.1:9876 target/python/venv/bin/python examples/python/asyncio_send.py
"""

import asyncio
import os
from typing import List

from rmq import Message, ProducerError, SendResult, create_producer


async def main() -> None:
    producer = create_producer("async_example", os.environ.get("RMQ_NAMESRV_ADDR", "127.0.0.1:9876"))
    async with producer:  # start and shut down on the loop's executor: the loop never blocks
        sends = [producer.send_async(Message("AsyncTopic", f"event {i}".encode())) for i in range(1000)]
        results: List[SendResult] = await asyncio.gather(*sends)
        print(f"{sum(r.success for r in results)} of {len(results)} stored")
        try:
            await producer.send_async(Message("bad topic", b"refused before any I/O"))
        except ProducerError as e:
            print(f"{type(e).__name__}: retryable={e.retryable}, possibly_stored={e.possibly_stored}")


asyncio.run(main())
