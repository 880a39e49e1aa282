"""`ledger bench --down N`: a real 4-validator network under a closed-loop load, healthy, with one validator killed,
and with it restarted; the report holds the three phases side by side. Numbers are not asserted beyond "the network
kept committing": no timing assertions."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from node.cli import main


def test_bench_down_one_of_four_reports_the_phases_side_by_side(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "down.json"
    before = set(os.listdir("/tmp"))
    code = main(["bench", "--nodes", "4", "--down", "1", "--duration", "4", "--warmup", "1", "--clients", "4",
                 "--json", str(out)])
    assert code == 0, capsys.readouterr().err
    doc = json.loads(out.read_text())
    assert doc["validators"] == 4 and doc["down"] == 1 and doc["killed"] == [3]
    for phase in ("healthy", "degraded", "recovered"):
        for key in ("tps", "blocks_per_s", "committed", "p50_ms", "p99_ms", "max_ms", "blocks_each_second"):
            assert key in doc[phase], (phase, key)
    # One validator of four down does not stop the consortium.
    assert doc["healthy"]["committed"] > 0 and doc["degraded"]["committed"] > 0
    assert doc["degraded"]["blocks_per_s"] > 0
    assert set(doc["degraded_vs_healthy"]) == {"tps", "blocks_per_s"}
    assert doc["rejoined_head_s"] is not None
    assert doc["command"].startswith("ledger bench --nodes 4 --down 1")
    created = [d for d in set(os.listdir("/tmp")) - before if d.startswith("ledger-bench-down-")]
    assert created == []


def test_bench_down_refuses_more_than_f(capsys: pytest.CaptureFixture[str]) -> None:
    before = set(os.listdir("/tmp"))
    assert main(["bench", "--nodes", "4", "--down", "2", "--duration", "1"]) == 1
    assert "--down must be 1..f = 1" in capsys.readouterr().err
    assert not [d for d in set(os.listdir("/tmp")) - before if d.startswith("ledger-bench-down-")]
