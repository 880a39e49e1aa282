"""`ledger bench apply`: a tiny run prints the report a reader of docs/benchmarks.md relies on, with the collector
settings a node runs with (or the operator's override)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

ARGS = ["bench", "apply", "--txs", "120", "--accounts", "40", "--block-size", "50", "--root-growth", "none"]


def _bench(env_extra: dict[str, str]) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "LEDGER_GC_THRESHOLDS"} | env_extra
    run = subprocess.run([sys.executable, "-m", "node.cli", *ARGS], capture_output=True, text=True, env=env,
                         timeout=120, check=False)
    assert run.returncode == 0, run.stderr[-2000:]
    return json.loads(run.stdout)


def test_bench_apply_reports_rates_breakdown_and_the_collector() -> None:
    report = _bench({})
    assert report["txs"] == 120 and report["blocks"] == 3
    assert 0 < report["succeeded"] <= 120
    assert report["tx_per_s"] > 0 and report["verify_per_s"] > 0
    assert report["ratio"] == pytest.approx(report["tx_per_s"] / report["verify_per_s"], abs=0.002)
    assert set(report["breakdown_us"]) == {"verify", "state_root", "decode", "execution"}
    assert len(bytes.fromhex(report["state_root"])) == 32
    assert report["gc"]["thresholds"] == [20_000, 20, 20] and report["gc"]["source"] == "ledger"
    assert len(report["gc"]["collections"]) == 3 and all(n >= 0 for n in report["gc"]["collections"])
    again = _bench({"LEDGER_GC_THRESHOLDS": "700,10,10"})
    assert again["gc"]["thresholds"] == [700, 10, 10] and again["gc"]["source"] == "environment"
    assert again["state_root"] == report["state_root"]  # the collector changes timing, never the result


def test_a_malformed_collector_override_is_a_clear_error() -> None:
    env = dict(os.environ, LEDGER_GC_THRESHOLDS="700,10")
    run = subprocess.run([sys.executable, "-m", "node.cli", *ARGS], capture_output=True, text=True, env=env,
                         timeout=60, check=False)
    assert run.returncode == 2 and run.stdout == ""
    assert "error: LEDGER_GC_THRESHOLDS must be three positive integers" in run.stderr
