"""`ledger bench --nodes N --duration S --json FILE` in a tiny configuration: a real network of node processes, load
processes, the Caliper-style report and its JSON fields. Numbers are not asserted (no timing assertions): only
that the run accounts for every transaction and produces every field."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from node.cli import main
from node.tools.loadgen import estimate_latencies
from tests.node.tools.test_testnet import node_processes


@pytest.mark.parametrize("via", ["api", "admin"])
def test_bench_tiny_network_run_writes_the_json_report(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                        via: str) -> None:
    out = tmp_path / "bench.json"
    code = main(["bench", "--nodes", "1", "--duration", "2", "--rate", "100", "--processes", "1", "--via", via,
                 "--connections", "2", "--users", "4", "--verify-seconds", "0.3", "--json", str(out)]
                + (["--timeline"] if via == "admin" else []))
    assert code == 0, capsys.readouterr().err
    doc = json.loads(out.read_text())
    for key in ("tps", "p50_ms", "p99_ms", "efficiency", "validators", "committed", "failed", "submitted",
                "p90_ms", "max_ms", "cpu_per_node_percent", "verify_per_s"):
        assert key in doc, key
    assert doc["validators"] == 1 and doc["via"] == via
    assert doc["submitted"] > 0 and doc["committed"] > 0
    assert doc["committed"] + doc["failed"] >= doc["accepted"]
    assert doc["committed"] <= doc["accepted"] <= doc["submitted"]
    assert doc["tps"] > 0 and doc["verify_per_s"] > 0
    assert doc["efficiency"] == round(doc["tps"] * 1 / doc["verify_per_s"], 4)
    assert doc["p50_ms"] <= doc["p99_ms"] <= doc["max_ms"]
    # At a fixed rate latency runs from the instant the schedule made each transaction due (it cannot commit before
    # that, so never 0), and the admission (request written -> answer read) is reported beside it.
    assert doc["latency_from"] == "schedule" and doc["p50_ms"] > 0
    assert 0 < doc["admit_p50_ms"] <= doc["admit_p99_ms"]
    assert set(doc["cpu_per_node_percent"]) == {"node-0"}
    # CPU: the node with its verifier workers at least the node alone; the load processes' own cost is reported.
    assert set(doc["cpu_per_node_with_workers_percent"]) == {"node-0"}
    assert doc["cpu_per_node_with_workers_percent"]["node-0"] >= doc["cpu_per_node_percent"]["node-0"]
    assert doc["load_cpu_percent"] is not None and doc["load_cpu_us_per_tx"] > 0
    assert doc["cpu_us_per_committed_tx"] > 0
    assert doc["body"] == ("msgpack" if via == "api" else "admin lines")
    # The verify rate is measured before the load (here: before the bench's network started), and the latencies
    # are matched to the instants node-0's blocks became durable.
    assert doc["verify_phase"]["when"] == "before the network started"
    assert doc["verify_phase"]["verify_per_s"] == doc["verify_per_s"]
    assert doc["latency_resolution"] == "commit instants"
    assert doc["max_rate_tps"] is None  # a fixed rate, not --rate max
    assert set(doc["peak_rss_mb"]) == {"node-0"} and doc["peak_rss_mb"]["node-0"] > 20
    # The node's verifier processes (fork server, workers) are counted apart, not in the node's own peak.
    assert set(doc["peak_rss_workers_mb"]) == {"node-0"} and doc["peak_rss_workers_mb"]["node-0"] > 5
    if via == "admin":  # --timeline: the node's round timeline over the load window, joined into phases
        timeline = doc["round_timeline"]
        assert timeline["proposals"] > 0 and set(timeline["busy_ms_per_s"]) == {"node-0"}
        assert timeline["phases"]["commit_ms"]["n"] > 0 and timeline["phases"]["build_ms"]["n"] > 0
    else:
        assert "round_timeline" not in doc
    # Its own network is gone afterwards: no node process, no directory.
    own = doc["network"].split(", ", 1)[1]
    assert own.startswith("/tmp/ledger-bench-") and not os.path.exists(own)
    assert node_processes(own) == []


def test_latency_matching_follows_the_committed_count() -> None:
    accepted = [0.0, 0.1, 0.2, 0.3]
    samples = [(0.0, 0), (0.5, 2), (1.0, 3)]
    assert estimate_latencies(accepted, samples) == [0.5, 0.4, 0.8]


def test_bench_json_bodies_are_the_old_load(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`--body json`: the API batches as hex strings in JSON (what the load generator sent before msgpack); every
    transaction is still accounted for and the load processes' CPU is reported."""
    out = tmp_path / "bench.json"
    code = main(["bench", "--nodes", "1", "--duration", "2", "--rate", "100", "--processes", "1", "--via", "api",
                 "--body", "json", "--connections", "2", "--users", "4", "--verify-seconds", "0.3", "--json", str(out)])
    assert code == 0, capsys.readouterr().err
    doc = json.loads(out.read_text())
    assert doc["via"] == "api" and doc["body"] == "json"
    assert doc["committed"] > 0 and doc["committed"] + doc["failed"] >= doc["accepted"]
    assert doc["load_cpu_us_per_tx"] > 0 and doc["cpu_us_per_committed_tx"] > 0
