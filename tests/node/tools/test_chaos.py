"""`ledger testnet chaos`: random kills, restarts, partitions and slow links under load on real node processes,
with the continuous checks (no fork, equal state roots, no halted node, every acknowledged transaction on every
node) and recovery at the end. The CI run is short; the 10-minute run is behind the soak marker."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from node.cli import main
from node.tools.chaos import ChaosConfig, ChaosReport, run_chaos, summary, supply_at
from node.tools.testnet import Testnet
from tests.node.tools.test_testnet import node_processes


@pytest.fixture
def chaos_dir(tmp_path: Path) -> Iterator[str]:
    directory = str(tmp_path / "chaos")
    try:
        yield directory
    finally:
        if os.path.exists(os.path.join(directory, "testnet.json")):
            Testnet.open(directory).kill_all()
        assert node_processes(directory) == []


def test_short_chaos_run_finds_no_violation(chaos_dir: str) -> None:
    out = io.StringIO()
    report = run_chaos(chaos_dir, ChaosConfig(duration_s=20, seed=2024, rate=30, interval_s=3.0, recovery_s=30),
                       nodes=4, out=out)
    assert sum(report.faults.values()) >= 4, out.getvalue()
    assert report.accepted > 0 and report.acknowledged > 0
    assert report.final_height > 0 and report.blocks_checked >= 4 * report.final_height
    assert report.ok, summary(report) + "\n" + out.getvalue()
    assert node_processes(chaos_dir) == []


def test_a_violation_fails_the_run() -> None:
    report = ChaosReport(seed=1, recovered=True)
    assert report.ok
    report.violations.append("fork at height 3")
    assert not report.ok
    assert "VIOLATIONS" in summary(report) and report.to_json()["ok"] is False


def test_supply_check_through_the_api_adds_up_every_holder(tmp_path: Path) -> None:
    from node.client import AccountKey
    from node.tools.localnet import ADMIN_ACCOUNT, CASH_ASSET, load_accounts

    net = Testnet.create(str(tmp_path / "net"), 1, users=2, open_reads=False, in_process=True)
    try:
        net.up(60)
        keys = load_accounts(net.accounts_path)
        auditor = AccountKey.from_seed(ADMIN_ACCOUNT, bytes(keys[ADMIN_ACCOUNT]))
        [(asset, height, outstanding, total)] = supply_at(net.api_url(0), auditor, keys, [CASH_ASSET])
    finally:
        net.close()
    assert asset == CASH_ASSET and height >= 0
    assert outstanding == total == 2 * 1_000_000_00  # two test accounts with the genesis balance each


@pytest.mark.soak
def test_ten_minute_chaos_soak(chaos_dir: str, tmp_path: Path) -> None:
    out = tmp_path / "soak.json"
    code = main(["testnet", "chaos", "--dir", chaos_dir, "--duration", "600", "--rate", "50", "--json", str(out)])
    doc = json.loads(out.read_text())
    assert code == 0 and doc["ok"], doc["violations"]
