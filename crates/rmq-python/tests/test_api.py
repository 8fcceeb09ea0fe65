"""The API of ../shared/docs/python-api.md that needs no broker: names, messages, configuration,
templates, the environment, the exception tree, lifecycle errors, Ctrl-C during a blocking send."""

import builtins
import gc
import os
import signal
import socket
import threading
import time

import pytest

import rmq
from rmq import (
    DEFAULT_CONFIG,
    HIGH_PERFORMANCE_CONFIG,
    Message,
    Producer,
    ProducerConfig,
    create_custom_config,
    create_producer,
    get_config,
)
from rmq.errors import (
    ConfigError,
    MessageValidationError,
    ProducerError,
    ProducerStartError,
    ProducerStateError,
)


def test_modules_have_pyrocketmqs_names():
    from rmq.config import (  # noqa: F401
        DEVELOPMENT_CONFIG,
        PRODUCTION_CONFIG,
        TESTING_CONFIG,
        ProducerConfig,
        create_custom_config,
        get_config,
    )
    from rmq.errors import (  # noqa: F401
        BrokerNotAvailableError,
        MessageSendError,
        ProducerError,
        ProducerStartError,
        ProducerStateError,
        QueueNotAvailableError,
        RouteNotFoundError,
        TimeoutError,
    )
    from rmq.producer import Message, Producer, SendResult, create_producer  # noqa: F401
    from rmq.router import RoutingStrategy

    assert RoutingStrategy.MESSAGE_HASH == "message_hash"
    assert isinstance(rmq.__version__, str)


def test_message_fields_and_setters():
    m = Message(topic="OrderTopic", body=b"order 42")
    m.set_property("SHARDING_KEY", "user-42")
    m.set_keys("order-42", "user-42")
    m.set_tags("paid")
    m.set_property("origin", "pytest")
    assert (m.topic, m.body, m.tags, m.keys) == ("OrderTopic", b"order 42", "paid", ["order-42", "user-42"])
    assert m.get_property("SHARDING_KEY") == "user-42"
    assert m.properties["KEYS"] == "order-42 user-42"
    assert m.properties["origin"] == "pytest"
    assert Message("T", "text body").body == b"text body"
    assert Message("T", bytearray(b"ab")).body == b"ab"
    m.set_delay_time_level(3)
    assert m.properties["DELAY"] == "3"
    with pytest.raises(MessageValidationError):
        m.set_property("UNIQ_KEY", "x")  # reserved by RocketMQ
    with pytest.raises(ValueError):  # MessageValidationError is a ValueError too
        m.set_property("bad", "a\x01b")
    with pytest.raises(MessageValidationError):
        Message("T", 42)


def test_priority_and_lite_topic_setters_and_their_refusals():
    m = Message("T", b"x")
    assert (m.priority, m.lite_topic) == (None, None)
    m.set_priority(3)
    assert m.priority == 3 and m.properties["_SYS_MSG_PRIORITY_"] == "3"
    lite = Message("T", b"x")
    lite.set_lite_topic("orders-1")
    assert lite.lite_topic == "orders-1"
    with pytest.raises((ValueError, OverflowError)):  # a priority is a non-negative integer
        m.set_priority(-1)
    with pytest.raises(MessageValidationError):
        m.set_property("_SYS_MSG_PRIORITY_", "1")  # reserved: only the setter writes it
    # What a broker would drop is refused before any I/O (no broker needed: the producer is not started,
    # and validation comes first).
    p = create_producer(producer_group="py_types", namesrv_addr="127.0.0.1:1")
    m.set_delay_time_level(2)
    bad_name = Message("T", b"x")
    bad_name.set_lite_topic("no$dollars")
    p.start()
    try:
        for msg in (m, bad_name):
            with pytest.raises(MessageValidationError):
                p.send_sync(msg)
    finally:
        p.shutdown()


def test_config_fields_units_and_templates():
    c = ProducerConfig(producer_group="G", send_msg_timeout=1500.5, retry_times=4)
    assert c.producer_group == "G"
    assert c.send_msg_timeout == 1500.5
    assert c.retry_times == 4
    assert DEFAULT_CONFIG.send_msg_timeout == 3000
    assert DEFAULT_CONFIG.heartbeat_broker_interval == 30000
    for name in ["default", "development", "production", "high_performance", "testing"]:
        assert isinstance(get_config(name), ProducerConfig)
    assert get_config("production").retry_times == 3
    assert HIGH_PERFORMANCE_CONFIG.routing_strategy == "random"
    assert HIGH_PERFORMANCE_CONFIG.async_send_semaphore == 50000
    assert get_config("testing").producer_group == "TEST_PRODUCER"
    with pytest.raises(ConfigError):
        get_config("staging")
    custom = create_custom_config(producer_group="orders", batch_size=7, routing_strategy=rmq.RoutingStrategy.MESSAGE_HASH)
    assert (custom.batch_size, custom.routing_strategy, custom.retry_times) == (7, "message_hash", 2)
    c.batch_size = 9
    assert c.batch_size == 9
    assert c.copy(batch_size=3).batch_size == 3 and c.batch_size == 9


def test_every_setting_is_an_attribute_a_kwarg_and_a_variable():
    settings = rmq.config.settings()
    names = {s["name"] for s in settings}
    assert {"producer_group", "namesrv_addr", "send_msg_timeout", "retry_times", "max_message_size",
            "poll_name_server_interval", "update_topic_route_info_interval", "heartbeat_broker_interval",
            "batch_size", "async_send_semaphore", "send_latency_enable", "client_id"} <= names
    d = DEFAULT_CONFIG.to_dict()
    assert set(d) == names
    assert set(dir(DEFAULT_CONFIG)) >= names
    for s in settings:
        assert s["env"].startswith("RMQ_"), s
        assert d[s["name"]] == s["default"], s
    # The stub users' editors read lists every setting.
    stub = (rmq.__file__.rsplit("/", 1)[0]) + "/_rmq.pyi"
    text = open(stub).read()
    for n in names:
        assert f"    {n}:" in text, f"_rmq.pyi lacks the setting {n}"


def test_bad_settings_are_typed_errors():
    with pytest.raises(ConfigError) as e:
        ProducerConfig(no_such_setting=1)
    assert "no_such_setting" in str(e.value)
    for kwargs in [{"retry_times": -1}, {"retry_times": 1.5}, {"send_msg_timeout": "soon"},
                   {"routing_strategy": "hash"}, {"send_latency_enable": "maybe"}]:
        with pytest.raises(ConfigError):
            ProducerConfig(**kwargs)
    with pytest.raises(AttributeError):
        ProducerConfig().no_such_setting  # noqa: B018
    with pytest.raises(ValueError):  # ConfigError is a ValueError too
        ProducerConfig(batch_size="many")


def test_secrets_are_never_shown():
    c = ProducerConfig(producer_group="G", secret_key="very-secret", access_key="ak")
    assert c.access_key == "ak"
    assert c.secret_key is None
    assert "very-secret" not in repr(c) and "very-secret" not in str(c.to_dict())
    with pytest.raises(ConfigError) as e:
        ProducerConfig(secret_key="very-secret")
    assert "very-secret" not in str(e.value)


def test_the_environment_overrides_templates(monkeypatch):
    monkeypatch.setenv("RMQ_RETRY_TIMES", "7")
    monkeypatch.setenv("RMQ_SEND_MSG_TIMEOUT", "1234")
    assert get_config("production").retry_times == 7
    c = create_custom_config(producer_group="G", send_msg_timeout=99)
    assert (c.retry_times, c.send_msg_timeout) == (7, 99)  # kwargs win over the environment
    assert Producer().config.retry_times == 7
    monkeypatch.setenv("RMQ_RETRY_TIMES", "lots")
    with pytest.raises(ConfigError) as e:
        create_custom_config()
    assert "RMQ_RETRY_TIMES" in str(e.value)


def test_exception_tree():
    assert issubclass(rmq.TimeoutError, ProducerError)
    assert issubclass(rmq.TimeoutError, builtins.TimeoutError)
    assert issubclass(rmq.RequestTimeoutError, builtins.TimeoutError)
    for cls in [ProducerStartError, ProducerStateError, ConfigError, MessageValidationError,
                rmq.MessageSendError, rmq.RouteNotFoundError, rmq.BrokerNotAvailableError,
                rmq.QueueNotAvailableError, rmq.BrokerError, rmq.OverloadedError]:
        assert issubclass(cls, ProducerError), cls
    e = rmq.BrokerError("x", retryable=True, possibly_stored=False, code=17, broker_name="b")
    assert (e.retryable, e.possibly_stored, e.code, e.broker_name) == (True, False, 17, "b")


def test_lifecycle_errors():
    p = Producer(ProducerConfig(producer_group="G"))
    assert not p.running
    assert p.get_stats()["running"] is False
    with pytest.raises(ProducerStateError):
        p.send_sync(Message("T", b"x"))
    p.shutdown()
    p.shutdown()  # idempotent
    with pytest.raises(ProducerStartError):
        Producer(ProducerConfig(producer_group="")).start()
    with pytest.raises(ProducerStartError):
        Producer(ProducerConfig(producer_group="G", compression_level=99)).start()


class SilentServer:
    """A name server that accepts connections and never answers."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.conns = []
        self.addr = "127.0.0.1:%d" % self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)

    def close(self) -> None:
        self.sock.close()
        for c in self.conns:
            c.close()


def test_no_route_is_route_not_found_retryable_and_never_stored():
    server = SilentServer()
    try:
        p = create_producer("G", server.addr, send_msg_timeout=500, mq_client_api_timeout=300)
        p.start()
        t0 = time.monotonic()
        with pytest.raises(rmq.RouteNotFoundError) as e:
            p.send_sync(Message("T", b"x"))
        assert time.monotonic() - t0 < 5
        # Nothing reached a broker: worth retrying, never stored.
        assert e.value.retryable is True and e.value.possibly_stored is False
        stats = p.get_stats()
        assert stats["total_failed"] == 1 and stats["total_sent"] == 0
        p.shutdown()
    finally:
        server.close()


def test_ctrl_c_interrupts_a_blocking_send():
    server = SilentServer()
    try:
        p = create_producer("G", server.addr, send_msg_timeout=10000, mq_client_api_timeout=10000)
        p.start()
        threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
        t0 = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            p.send_sync(Message("T", b"x"))
        took = time.monotonic() - t0
        assert took < 3, f"the interrupt took {took:.1f} s"
        # The send goes on in rmq; dropping the producer does not wait for it with the GIL held.
        t0 = time.monotonic()
        del p
        gc.collect()
        assert time.monotonic() - t0 < 1
    finally:
        server.close()


def test_memoryview_bodies():
    assert Message("T", memoryview(b"abc")).body == b"abc"
