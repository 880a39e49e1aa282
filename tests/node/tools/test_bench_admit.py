"""`ledger bench admit` in a tiny configuration: node-0 of a 4-validator testnet (and node-1 as its gossip peer)
admitting pre-signed transfers through POST /v1/tx/batch with nothing committing. Numbers are not asserted (no
timing assertions): only that every transaction is accounted for and every CPU figure is there."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from node.cli import main
from node.tools.node_processes import process_cpu_seconds, process_tree_cpu_seconds
from tests.node.tools.test_testnet import node_processes


def test_bench_admit_tiny_run_admits_every_transaction(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "admit.json"
    code = main(
        ["bench", "admit", "--txs", "600", "--connections", "2", "--batch", "64", "--peers", "1", "--json", str(out)]
    )
    assert code == 0, capsys.readouterr().err
    doc = json.loads(out.read_text())
    assert doc == json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert doc["txs"] == 600 and doc["admitted"] == 600 and doc["refused"] == {}
    assert doc["admitted_per_s"] > 0 and doc["seconds"] > 0
    # node-0's CPU includes its verifier workers; the peer admitted node-0's gossip (decoding and verifying).
    assert doc["node_cpu_us_per_tx"] >= doc["node_main_cpu_us_per_tx"] > 0
    assert doc["peer_cpu_us_per_tx"] is not None and doc["peer_cpu_us_per_tx"] > 0
    assert doc["load_cpu_us_per_tx"] > 0
    assert doc["config"] == {"processes": 1, "connections": 2, "batch": 64, "body": "msgpack", "peers": 1}
    assert doc["command"].startswith("ledger bench admit --txs 600")
    # Its throwaway testnet is gone: no node process, no directory.
    assert doc["directory"].startswith("/tmp/ledger-bench-admit-") and not os.path.exists(doc["directory"])
    assert node_processes(doc["directory"]) == []


def test_bench_admit_refuses_bad_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "admit", "--txs", "0"]) == 2
    assert "--txs" in capsys.readouterr().err


def test_process_tree_cpu_counts_descendants() -> None:
    """A node's verifier workers are its grandchildren (through the forkserver): the tree figure counts them."""
    burn = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.3: pass\ntime.sleep(30)"
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import subprocess, sys; p = subprocess.Popen([sys.executable, '-c', {burn!r}]); p.wait()",
        ]
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            own, tree = process_cpu_seconds(child.pid), process_tree_cpu_seconds(child.pid)
            assert own is not None and tree is not None
            if tree - own >= 0.25:  # the grandchild's burn is counted, the child itself barely ran
                break
            assert time.monotonic() < deadline, (own, tree)
            time.sleep(0.1)
    finally:
        child.kill()
        child.wait()
    assert process_tree_cpu_seconds(child.pid) is None
    assert process_tree_cpu_seconds(os.getpid()) is not None
