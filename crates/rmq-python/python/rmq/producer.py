"""The producer: :class:`Producer`, :func:`create_producer`, :class:`Message`, :class:`SendResult`."""

import asyncio
import weakref
from typing import Any, Dict, List

from . import _rmq
from ._rmq import Message, MessageQueue, ProducerConfig, SendResult
from .config import create_custom_config
from .queue_selectors import choose

__all__ = ["Producer", "create_producer", "Message", "SendResult", "MessageQueue"]


class _LoopBridge:
    """One event loop's end of the native bridge: rmq's threads queue finished calls and write one
    byte per burst to a pipe; the loop reads it here and resolves the futures (no thread per send).
    It holds no reference to its loop: the loop (through its reader) holds it, and the pipe closes
    when the loop is collected."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.native = _rmq.Bridge()
        self.futures: Dict[int, "asyncio.Future[Any]"] = {}
        loop.add_reader(self.native.fileno(), self._drain)

    def _drain(self) -> None:
        for call_id, ok, value in self.native.drain():
            fut = self.futures.pop(call_id, None)
            if fut is None or fut.done():  # cancelled by its awaiter: the send went on regardless
                continue
            try:
                if ok:
                    fut.set_result(value)
                else:
                    fut.set_exception(value)
            except Exception as e:  # pragma: no cover - set_* on a pending future does not raise
                fut.get_loop().call_exception_handler({"message": "rmq: resolving a future failed", "exception": e})


_bridges: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopBridge]" = (
    weakref.WeakKeyDictionary()
)


def _bridge(loop: asyncio.AbstractEventLoop) -> _LoopBridge:
    bridge = _bridges.get(loop)
    if bridge is None:
        bridge = _bridges[loop] = _LoopBridge(loop)
    return bridge


class Producer(_rmq.Producer):
    """A RocketMQ producer. ``Producer(config=None)``: the default configuration with the ``RMQ_*``
    environment when none is given. Use it from any number of threads, and from asyncio with the
    ``*_async`` methods. Also a context manager (``with Producer(c) as p:`` starts and shuts down)."""

    #: pyrocketmq's later name of :meth:`send_sync`.
    send = _rmq.Producer.send_sync
    #: pyrocketmq's later name of :meth:`send_oneway`.
    oneway = _rmq.Producer.send_oneway

    def _call(self, kind: str, messages: List[Message], queue: Any = None, timeout: Any = None) -> "asyncio.Future[Any]":
        loop = asyncio.get_running_loop()
        bridge = _bridge(loop)
        call_id = self._submit(kind, messages, bridge.native, queue, timeout)
        fut = loop.create_future()
        bridge.futures[call_id] = fut
        return fut

    async def send_async(self, message: Message) -> SendResult:
        """Sends ``message`` and returns its ``SendResult`` when the broker answers, without blocking the
        event loop (waiting for room in ``async_send_semaphore`` included). Raises as ``send_sync``."""
        return await self._call("send", [message])

    async def send_oneway_async(self, message: Message) -> None:
        """Sends ``message`` oneway; returns once it is written."""
        await self._call("oneway", [message])

    #: pyrocketmq-style name of :meth:`send_oneway_async`.
    oneway_async = send_oneway_async

    async def send_batch_async(self, *messages: Message) -> List[SendResult]:
        """Sends ``messages`` (one topic) as batch requests; one ``SendResult`` per request."""
        return await self._call("batch", list(messages))

    async def send_to_queue_async(self, message: Message, queue: MessageQueue) -> SendResult:
        """Sends ``message`` to ``queue`` (an ordered send)."""
        return await self._call("queue", [message], queue)

    def send_with_selector(self, message: Message, selector: Any, arg: Any = None) -> SendResult:
        """An ordered send: ``selector`` (see ``rmq.queue_selectors``) chooses among the topic's queues,
        on this thread; the message goes to that queue, never retried on another. A selector that raises
        gives ``SelectorError`` and nothing is sent."""
        from .errors import QueueNotAvailableError

        queue = choose(selector, self.fetch_publish_queues(message.topic), message, arg)
        if queue is None:
            raise QueueNotAvailableError("the queue selector chose no queue")
        return self.send_to_queue(message, queue)

    async def send_with_selector_async(self, message: Message, selector: Any, arg: Any = None) -> SendResult:
        """:meth:`send_with_selector` for asyncio. The queue list is looked up on the loop's default
        executor (fetching a route blocks), the selector runs on the loop."""
        from .errors import QueueNotAvailableError

        queues = await asyncio.get_running_loop().run_in_executor(None, self.fetch_publish_queues, message.topic)
        queue = choose(selector, queues, message, arg)
        if queue is None:
            raise QueueNotAvailableError("the queue selector chose no queue")
        return await self._call("queue", [message], queue)

    async def request_async(self, message: Message, timeout: Any = None) -> Message:
        """Sends ``message`` as a request and returns the reply, waiting up to ``timeout`` ms (default
        ``send_msg_timeout``); ``RequestTimeoutError`` when none comes."""
        return await self._call("request", [message], None, timeout)

    async def start_async(self) -> None:
        """:meth:`start` on the loop's default executor (starting fetches routes and greets brokers)."""
        await asyncio.get_running_loop().run_in_executor(None, self.start)

    async def shutdown_async(self) -> None:
        """:meth:`shutdown` on the loop's default executor (it waits for asynchronous sends)."""
        await asyncio.get_running_loop().run_in_executor(None, self.shutdown)

    def __enter__(self) -> "Producer":
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.shutdown()

    async def __aenter__(self) -> "Producer":
        await self.start_async()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.shutdown_async()


def create_producer(
    producer_group: str, namesrv_addr: str, **kwargs: Any
) -> Producer:
    """A producer (not started) for ``producer_group`` at ``namesrv_addr``; ``kwargs`` are settings
    (see ``rmq.config.settings()``), applied over the ``RMQ_*`` environment."""
    config: ProducerConfig = create_custom_config(
        producer_group=producer_group, namesrv_addr=namesrv_addr, **kwargs
    )
    return Producer(config)


