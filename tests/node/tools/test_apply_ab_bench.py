"""benchmarks/apply_ab_bench.py: a tiny run of each setting prints its report, and both settings of a pair execute
the blocks to the same state (the setting changes speed, never the result)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[3] / "benchmarks" / "apply_ab_bench.py"


def _run(*args: str) -> dict:
    run = subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120, check=False,
                         cwd=SCRIPT.parents[1])
    assert run.returncode == 0, run.stderr[-2000:]
    return json.loads(run.stdout)


@pytest.mark.parametrize("setting", ["prepare", "native-decode", "native-encode", "trusted-loader"])
def test_each_setting_reports_both_sides_on_the_same_blocks(setting: str) -> None:
    small = ("--txs", "300", "--reps", "1", "--accounts", "30", "--block-size", "100")
    report = _run(setting, *small)
    assert report["setting"] == setting and report["txs"] == 300 and report["verify"] is True
    assert report["a_us_per_tx"] > 0 and report["b_us_per_tx"] > 0
    assert report["b_over_a"] == pytest.approx(report["b_us_per_tx"] / report["a_us_per_tx"], abs=0.01)
    unverified = _run(setting, *small, "--no-verify")
    assert unverified["verify"] is False and unverified["state_root"] == report["state_root"]


def test_bad_arguments_are_refused() -> None:
    run = subprocess.run([sys.executable, str(SCRIPT), "prepare", "--txs", "10", "--block-size", "20"],
                         capture_output=True, text=True, timeout=60, check=False, cwd=SCRIPT.parents[1])
    assert run.returncode == 2 and "--block-size" in run.stderr
