"""Fixtures of the pytest suite: the real cluster `scripts/cluster up` started (described by the
environment, as for the Rust real-broker tests) and the Java consumer that reads messages back.

Without RMQ_NAMESRV the real-broker tests are skipped, saying why; `scripts/python test` run by
`scripts/test` always has a cluster, and RMQ_PY_REQUIRE_CLUSTER=1 turns a skip into a failure."""

import json
import os
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import pytest

ROOT = Path(__file__).resolve().parents[3]


class Cluster:
    def __init__(self) -> None:
        self.namesrv = os.environ["RMQ_NAMESRV"]
        host = self.namesrv.rsplit(":", 1)[0]
        assert host == "127.0.0.1", f"RMQ_NAMESRV={self.namesrv}: tests only talk to 127.0.0.1"
        self.brokers = int(os.environ.get("RMQ_BROKERS", "1"))
        self.version = os.environ.get("RMQ_SERVER_VERSION", "")
        self.impl = os.environ.get("RMQ_IMPL", "java")
        self.checker = os.environ.get("RMQ_CHECKER", str(ROOT / "scripts" / "cluster"))
        #: `scripts/cluster up --acl`: ACL enforced, users in RMQ_ACL_* (None otherwise).
        self.acl = os.environ.get("RMQ_ACL") == "1"
        #: `scripts/cluster up --tls`: TLS enforced, the test CA's PEM file (None otherwise).
        self.tls_ca = os.environ.get("RMQ_TLS_CA") or None

    @property
    def is_4x(self) -> bool:
        return self.impl == "java" and self.version.startswith("4.")

    def read_back(
        self,
        topic: str,
        accept: Callable[[List[Dict[str, Any]]], bool],
        timeout: float = 60.0,
    ) -> List[Dict[str, Any]]:
        """Every message of `topic`, read by the official Java consumer, once `accept` is satisfied."""
        deadline = time.monotonic() + timeout
        args = [self.checker, "checker", "read", "--topic", topic]
        if self.acl:  # the reader signs as the admin user of `scripts/cluster up --acl`
            args += ["--access-key", os.environ["RMQ_ACL_ADMIN_AK"], "--secret-key", os.environ["RMQ_ACL_ADMIN_SK"]]
        while True:
            out = subprocess.run(
                args,
                env={**os.environ, "RMQ_NAMESRV": self.namesrv},
                capture_output=True,
                text=True,
            )
            msgs = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
            no_route_yet = out.returncode != 0 and "Can not find Message Queue" in out.stderr
            if (out.returncode == 0 or no_route_yet) and accept(msgs):
                return msgs
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"the Java consumer did not find the messages of {topic} in time "
                    f"(status {out.returncode}, {len(msgs)} messages): {out.stderr[-2000:]}"
                )
            time.sleep(0.5)


@pytest.fixture(scope="session")
def cluster() -> Cluster:
    if not os.environ.get("RMQ_NAMESRV"):
        why = "no cluster: RMQ_NAMESRV unset (scripts/test starts one; or `source <(scripts/cluster env)`)"
        if os.environ.get("RMQ_PY_REQUIRE_CLUSTER") == "1":
            pytest.fail(why)
        pytest.skip(why)
    return Cluster()


def unique_topic(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def topic() -> str:
    return unique_topic("rmq_py")


@pytest.fixture
def producer(cluster: Cluster):
    from rmq import create_producer

    p = create_producer(
        producer_group=unique_topic("py_group"), namesrv_addr=cluster.namesrv
    )
    p.start()
    yield p
    p.shutdown()


def sha256_hex(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def by_uniq_key(msgs: List[Dict[str, Any]]) -> Dict[Optional[str], Dict[str, Any]]:
    return {m.get("uniqKey"): m for m in msgs}
