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


def test_final_check_looks_up_acknowledged_transactions_past_their_expiry(tmp_path: Path) -> None:
    """Past a transaction's expiry height its replay entry is pruned, so submitting it again is answered TX_EXPIRED
    whether it was committed or not (a 10-minute run outlives the expiry of its first transfers): the final check
    then asks the node's own lookup, which must answer committed with the same bytes; a transaction the chain never
    held is a violation."""
    import time

    from node.tools import chaos
    from node.tools.load import signed_transfer
    from node.tools.localnet import load_accounts

    net = Testnet.create(str(tmp_path / "net"), 1, users=2, open_reads=False, in_process=True)
    try:
        net.up(60)
        keys = load_accounts(net.accounts_path)
        users = sorted(k for k in keys if k.startswith("user"))
        sender, recipient = users[0], users[1]
        key = keys[sender]
        expiry = net.height(0) + 3
        committed = signed_transfer(net.chain_id, sender, key, recipient, 1, expiry)
        never = signed_transfer(net.chain_id, sender, key, recipient, 2, expiry)
        assert net.admin(0, {"op": "submit", "tx": committed.hex()})["code"] == 0
        deadline = time.monotonic() + 30
        while net.height(0) <= expiry and time.monotonic() < deadline:
            time.sleep(0.1)
        assert net.height(0) > expiry
        answers = [net.admin(0, {"op": "submit", "tx": raw.hex()})["code"] for raw in (committed, never)]
        assert answers == [chaos.TX_EXPIRED, chaos.TX_EXPIRED]  # both refused the same way: the lookup decides
        shared = chaos._Shared(ChaosReport(seed=0))
        chaos._check_committed(net, shared, 0, [committed])
        assert shared.report.violations == []
        chaos._check_committed(net, shared, 0, [never])
        [violation] = shared.report.violations
        assert "does not have committed transaction" in violation and "expired" in violation
    finally:
        net.close()


def test_the_final_lookups_wait_out_the_api_rate_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 600 s run looks up ~1,000 expired transactions per node, past the API's per-client burst: a 429 is waited
    out and asked again (a bounded number of times), any other refusal is the answer."""
    from node.client import ApiError
    from node.tools import chaos

    monkeypatch.setattr(chaos, "LOOKUP_PACE_S", 0.0)
    monkeypatch.setattr(chaos.time, "sleep", lambda _s: None)

    class Node:
        def __init__(self, refusals: list[ApiError]) -> None:
            self.refusals = refusals
            self.asked = 0

        def tx(self, tx_id: str) -> dict:
            self.asked += 1
            if self.refusals:
                raise self.refusals.pop(0)
            return {"tx_id": tx_id, "status": "committed"}

    limited = ApiError(429, 3106, "too many requests; retry later")
    node = Node([limited, limited])
    assert chaos._lookup(node, "ab")["status"] == "committed" and node.asked == 3
    node = Node([limited] * chaos.LOOKUP_RETRIES)
    with pytest.raises(ApiError):
        chaos._lookup(node, "ab")
    assert node.asked == chaos.LOOKUP_RETRIES
    node = Node([ApiError(404, 3004, "transaction not found")])
    with pytest.raises(ApiError):
        chaos._lookup(node, "ab")
    assert node.asked == 1


@pytest.mark.soak
def test_ten_minute_chaos_soak(chaos_dir: str, tmp_path: Path) -> None:
    out = tmp_path / "soak.json"
    code = main(["testnet", "chaos", "--dir", chaos_dir, "--duration", "600", "--rate", "50", "--json", str(out)])
    doc = json.loads(out.read_text())
    assert code == 0 and doc["ok"], doc["violations"]
