"""examples/python: each runs against the cluster and exits 0, and mypy --strict accepts them with the
package's stubs (py.typed, _rmq.pyi) while it rejects a program that misuses the API."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

EXAMPLES = sorted((ROOT / "examples" / "python").glob("*.py"))


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.stem for e in EXAMPLES])
def test_example_runs(cluster, example):
    out = subprocess.run([sys.executable, str(example)], env={**os.environ, "RMQ_NAMESRV_ADDR": cluster.namesrv},
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr


def mypy(*paths: Path) -> subprocess.CompletedProcess:
    pytest.importorskip("mypy")
    return subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--cache-dir", os.devnull,
                           *map(str, paths)], capture_output=True, text=True, timeout=300)


def test_mypy_knows_the_api(tmp_path):
    assert len(EXAMPLES) >= 3
    ok = mypy(*EXAMPLES)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    wrong = tmp_path / "wrong.py"
    wrong.write_text(
        "from rmq import Message, create_producer\n"
        "p = create_producer('g', '127.0.0.1:9876')\n"
        "r = p.send_sync(Message('T', b'x'))\n"
        "n: int = r.message_id\n"  # Optional[str], not int
        "p.send_sync('not a message')\n"
    )
    bad = mypy(wrong)
    assert bad.returncode != 0
    assert "message_id" in bad.stdout or "incompatible" in bad.stdout.lower(), bad.stdout
    assert "send_sync" in bad.stdout, bad.stdout
