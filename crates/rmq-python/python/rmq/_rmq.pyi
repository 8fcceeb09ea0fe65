"""Types of the native module rmq._rmq (the classes rmq re-exports)."""

from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

_Body = Union[bytes, bytearray, memoryview, str]

__version__: str

class Message:
    """A message: topic, body, tags, keys and properties."""

    topic: str
    body: bytes
    flag: int
    def __init__(
        self,
        topic: str,
        body: Optional[_Body] = None,
        tags: Optional[str] = None,
        keys: Union[str, Sequence[str], None] = None,
        properties: Optional[Dict[str, str]] = None,
    ) -> None: ...
    @property
    def tags(self) -> Optional[str]: ...
    @property
    def keys(self) -> List[str]: ...
    @property
    def properties(self) -> Dict[str, str]: ...
    def set_property(self, key: str, value: str) -> None:
        """Sets a property; SHARDING_KEY, KEYS and TAGS set the sharding key, keys and tag."""
    def get_property(self, key: str) -> Optional[str]: ...
    def set_keys(self, *keys: str) -> None: ...
    def set_tags(self, tags: str) -> None: ...
    def set_sharding_key(self, key: str) -> None: ...
    def set_delay_time_level(self, level: int) -> None: ...
    def set_delay_time_ms(self, ms: int) -> None: ...
    def set_delay_time_sec(self, secs: int) -> None: ...
    def set_deliver_time_ms(self, ms: int) -> None: ...
    def set_wait_store_ok(self, wait: bool) -> None: ...
    def set_priority(self, priority: int) -> None:
        """Priority on a PRIORITY topic (RocketMQ 5.4+): stored in queue min(priority, queues - 1)."""
    def set_lite_topic(self, lite: str) -> None:
        """Lite topic of a LITE parent topic (RocketMQ 5.5); 1-64 characters of a-zA-Z0-9_-."""
    @property
    def priority(self) -> Optional[int]: ...
    @property
    def lite_topic(self) -> Optional[str]: ...

class SendResult:
    """The outcome of a stored message (a failed send raises)."""

    success: bool
    message_id: Optional[str]
    topic: Optional[str]
    broker_name: Optional[str]
    queue_id: Optional[int]
    error: Optional[Exception]
    send_timestamp: Optional[float]
    offset_msg_id: Optional[str]
    queue_offset: Optional[int]
    status: str
    attempts: int
    possibly_duplicated: bool
    transaction_id: Optional[str]
    recall_handle: Optional[str]

class ProducerConfig:
    """Every setting of the producer (rmq.config.settings() lists them). Durations: milliseconds."""

    producer_group: str
    """Producer group (required; not DEFAULT_PRODUCER). Environment: RMQ_PRODUCER_GROUP."""
    client_id: Optional[str]
    """Client id in heartbeats; none builds Java's form ip@pid#nanos. Environment: RMQ_CLIENT_ID."""
    client_ip: str
    """Address the client id and message ids name. Environment: RMQ_CLIENT_IP."""
    namesrv_addr: str
    """Name servers, host:port;host:port (NAMESRV_ADDR is read too when RMQ_NAMESRV_ADDR is unset). Environment: RMQ_NAMESRV_ADDR."""
    send_msg_timeout: float
    """Total time of a send, retries included. Environment: RMQ_SEND_MSG_TIMEOUT."""
    retry_times: int
    """Extra attempts after a failed send, on another broker when possible. Environment: RMQ_RETRY_TIMES."""
    max_message_size: int
    """Largest body before compression. 4 MiB by default. Environment: RMQ_MAX_MESSAGE_SIZE."""
    poll_name_server_interval: float
    """How often cached routes are looked at. Environment: RMQ_POLL_NAME_SERVER_INTERVAL."""
    update_topic_route_info_interval: float
    """A route older than this is fetched again. Environment: RMQ_UPDATE_TOPIC_ROUTE_INFO_INTERVAL."""
    heartbeat_broker_interval: float
    """Heartbeat period to every master broker. Environment: RMQ_HEARTBEAT_BROKER_INTERVAL."""
    mq_client_api_timeout: float
    """Timeout of name server and heartbeat calls. Environment: RMQ_MQ_CLIENT_API_TIMEOUT."""
    send_latency_enable: bool
    """Java's latency fault tolerance. Environment: RMQ_SEND_LATENCY_ENABLE."""
    compress_msg_body_over: int
    """Bodies of at least this many bytes are compressed. Environment: RMQ_COMPRESS_MSG_BODY_OVER."""
    compression: str
    """Codec of compressed bodies (lz4 and zstd need the crate features and 5.1+ consumers). Environment: RMQ_COMPRESSION."""
    compression_level: int
    """zlib 0-9, zstd 1-22. Environment: RMQ_COMPRESSION_LEVEL."""
    retry_another_broker_when_not_store_ok: bool
    """Retry when a broker stored with a degraded status (may duplicate). Environment: RMQ_RETRY_ANOTHER_BROKER_WHEN_NOT_STORE_OK."""
    default_topic_queue_nums: int
    """Queues of a topic created on first send. Environment: RMQ_DEFAULT_TOPIC_QUEUE_NUMS."""
    routing_strategy: str
    """How queues are chosen. Environment: RMQ_ROUTING_STRATEGY."""
    batch_size: int
    """Most messages in one batch request of send_batch. Environment: RMQ_BATCH_SIZE."""
    async_send_semaphore: int
    """Most asynchronous sends in flight. Environment: RMQ_ASYNC_SEND_SEMAPHORE."""
    async_send_block: bool
    """At the bound, wait for room up to the send's timeout (true) or fail with Overloaded (false). Environment: RMQ_ASYNC_SEND_BLOCK."""
    auto_batch: bool
    """Asynchronous sends that can share a request wait up to auto_batch_linger and go as one batch; each caller keeps its own outcome. Environment: RMQ_AUTO_BATCH."""
    auto_batch_linger: float
    """How long an auto-batched message waits for others (at most 30 s), in milliseconds. Environment: RMQ_AUTO_BATCH_LINGER."""
    auto_batch_max_bytes: int
    """Most body bytes in one auto-batch request (as Java's batchMaxBytes counts); a full one goes at once. Environment: RMQ_AUTO_BATCH_MAX_BYTES."""
    broker_addr_override: str
    """Broker addresses to dial instead of the advertised ones: advertised=dial;advertised=dial. Environment: RMQ_BROKER_ADDR_OVERRIDE."""
    namespace: Optional[str]
    """Namespace topics and the group are wrapped in. Environment: RMQ_NAMESPACE."""
    trace: bool
    """Message trace (Java's enableMsgTrace). Environment: RMQ_TRACE."""
    trace_topic: str
    """Where trace records go. Environment: RMQ_TRACE_TOPIC."""
    access_key: Optional[str]
    """ACL access key (with secret_key). Environment: RMQ_ACCESS_KEY."""
    secret_key: Optional[str]
    """ACL secret key (with access_key); never shown. Environment: RMQ_SECRET_KEY."""
    security_token: Optional[str]
    """ACL security token (with the keys); never shown. Environment: RMQ_SECURITY_TOKEN."""
    connect_timeout: float
    """TCP (and TLS) connect timeout. Environment: RMQ_CONNECT_TIMEOUT."""
    connections_per_addr: int
    """Connections kept to each broker. Environment: RMQ_CONNECTIONS_PER_ADDR."""
    tls: bool
    """TLS on every connection, trusting the system roots unless tls_ca_file is set (needs the tls feature). Environment: RMQ_TLS."""
    tls_ca_file: Optional[str]
    """PEM file of the CAs to trust; setting it turns TLS on (none: the system roots). Environment: RMQ_TLS_CA_FILE."""
    tls_server_name: Optional[str]
    """Name the server certificate must hold; setting it turns TLS on (none: the host dialed). Environment: RMQ_TLS_SERVER_NAME."""
    def __init__(self, **settings: Any) -> None: ...
    @staticmethod
    def from_env(**settings: Any) -> "ProducerConfig": ...
    def apply_env(self) -> None: ...
    def validate(self) -> None: ...
    def copy(self, **settings: Any) -> "ProducerConfig": ...
    def to_dict(self) -> Dict[str, Any]: ...

class Bridge:
    """The native end of an event loop's bridge (internal)."""

    def fileno(self) -> int: ...
    def drain(self) -> List[Tuple[int, bool, Any]]: ...

class Producer:
    """The native producer (rmq.Producer adds the asyncio methods)."""

    def __init__(self, config: Optional[ProducerConfig] = None) -> None: ...
    @property
    def config(self) -> ProducerConfig: ...
    @property
    def running(self) -> bool: ...
    @property
    def client_id(self) -> Optional[str]: ...
    def start(self) -> None: ...
    def shutdown(self) -> None: ...
    def send_sync(self, message: Message) -> SendResult: ...
    def send_oneway(self, message: Message) -> None: ...
    def send_batch(self, *messages: Message) -> List[SendResult]: ...
    def oneway_batch(self, *messages: Message) -> None: ...
    def send_heartbeat_to_all_broker(self) -> None: ...
    def force_recover(self, broker_name: str) -> None: ...
    def get_stats(self) -> Dict[str, Any]: ...
    def fetch_publish_queues(self, topic: str) -> List["MessageQueue"]: ...
    def send_to_queue(self, message: Message, queue: "MessageQueue") -> SendResult: ...
    def request(self, message: Message, timeout: Optional[float] = None) -> Message: ...
    def _submit(
        self,
        kind: str,
        messages: List[Message],
        bridge: Bridge,
        queue: Optional["MessageQueue"] = None,
        timeout: Optional[float] = None,
    ) -> int: ...

class MessageQueue:
    """A queue of a topic on one broker."""

    topic: str
    broker_name: str
    queue_id: int
    def __init__(self, topic: str, broker_name: str, queue_id: int) -> None: ...
    @property
    def full_name(self) -> str: ...

class BrokerData:
    """A broker of a route."""

    broker_name: str
    cluster: str
    broker_addrs: Dict[int, str]
    @property
    def master_addr(self) -> Optional[str]: ...

class TopicBrokerMapping:
    """The route cache."""

    def __init__(self) -> None: ...
    def update_route_info(self, topic: str, topic_route_data: Union[str, bytes]) -> bool: ...
    def get_available_queues(self, topic: str) -> List[Tuple[MessageQueue, Optional[BrokerData]]]: ...
    def get_broker_data(self, topic: str, broker_name: str) -> Optional[BrokerData]: ...
    def clear_expired_routes(self, timeout: Optional[float] = None) -> int: ...
    def topics(self) -> List[str]: ...
    def __len__(self) -> int: ...

class RoutingResult:
    """Where route_message sent a message."""

    success: bool
    message_queue: Optional[MessageQueue]
    broker_data: Optional[BrokerData]
    broker_address: Optional[str]
    error: Optional[Exception]
    routing_strategy: str
    healthy_choice: bool

class MessageRouter:
    """Routes over a mapping's queues with a strategy and broker health."""

    def __init__(self, mapping: Optional[TopicBrokerMapping] = None, strategy: Any = None) -> None: ...
    @property
    def mapping(self) -> TopicBrokerMapping: ...
    def route_message(self, topic: str, message: Optional[Message] = None, strategy: Any = None) -> RoutingResult: ...
    def report_routing_result(self, result: RoutingResult, latency_ms: Optional[float] = None) -> None: ...
    def report_routing_failure(
        self, broker_name: str, error: Optional[BaseException] = None, latency_ms: Optional[float] = None
    ) -> None: ...
    def get_broker_state(self, broker_name: str) -> str: ...
    def suspend_broker(self, broker_name: str) -> None: ...
    def force_recover(self, broker_name: str) -> None: ...
    def get_routing_stats(self) -> Dict[str, Any]: ...

class TransactionSendResult:
    """A transactional message's outcome."""

    send_result: SendResult
    local_transaction_state: str
    transaction_id: str
    end_error: Optional[str]

class TransactionProducer:
    """A producer of transactional messages with a Python listener."""

    def __init__(self, config: ProducerConfig, listener: Any) -> None: ...
    @property
    def running(self) -> bool: ...
    @property
    def listener_errors(self) -> int: ...
    @property
    def checks_answered(self) -> int: ...
    def start(self) -> None: ...
    def shutdown(self) -> None: ...
    def send_message_in_transaction(self, message: Message, arg: Any = None) -> TransactionSendResult: ...
    def get_stats(self) -> Dict[str, Any]: ...

def hash_index(arg: Union[str, int], n: int) -> int: ...

def get_config(name: str) -> ProducerConfig: ...
def settings() -> List[Dict[str, Any]]: ...
def template_names() -> List[str]: ...
