"""The first program of a pyrocketmq user, unchanged but for the import (python-api.md).

    RMQ_NAMESRV_ADDR=127.0.0.1:9876 target/python/venv/bin/python examples/python/quickstart.py
"""

import os

from rmq import Message, create_producer

p = create_producer(producer_group="orders", namesrv_addr=os.environ.get("RMQ_NAMESRV_ADDR", "127.0.0.1:9876"))
p.start()
m = Message(topic="OrderTopic", body=b"order 42")
m.set_property("SHARDING_KEY", "user-42")
m.set_keys("order-42")
m.set_tags("paid")
r = p.send_sync(m)
print(r.success, r.message_id, r.broker_name, r.queue_id)
print(p.get_stats()["success_rate"])
p.shutdown()
