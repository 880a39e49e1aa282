"""`ledger demo` end to end: scenarios 1-4 through the HTTP API of a 4-validator network the demo starts itself,
with the reason codes each scenario expects and the supply check after each scenario."""

from __future__ import annotations

from pathlib import Path

import pytest

from node.cli import main
from node.tools.demo.story import DemoResult, describe_event, fmt, humanize_detail, units
from tests.node.cli_output import assert_no_python_repr


def test_demo_plays_scenarios_1_to_4(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["demo", "--dir", str(tmp_path / "no-testnet"), "--nodes", "4", "--lockup-seconds", "4"])
    out = capsys.readouterr().out
    assert code == 0, out
    for scenario in ("Scenario 1", "Scenario 2", "Scenario 3", "Scenario 4"):
        assert scenario in out
    # Each refusal the scenarios call for, with its stable code, as the ledger answered it.
    for answer in ("1100 RECIPIENT_NOT_ELIGIBLE", "1150 UNITS_LOCKED", "304 SUPPLY_CAP_EXCEEDED",
                   "2002 ACTION_COMPLETED", "107 THRESHOLD_NOT_MET", "500 SETTLEMENT_EXPIRED",
                   "305 INSUFFICIENT_ACTIVE_BALANCE"):
        assert f"refused as expected - ledger: {answer}" in out, answer
    assert "refused as expected - ledger would answer: 1150 UNITS_LOCKED" in out  # the dry-run agrees
    assert "ok - ledger: 0 OK" in out and "ok - ledger: 1" not in out  # "ok" only for successes
    assert "!!" not in out and "MISMATCH" not in out
    # amounts in the ledger's messages read in the asset's units, times as dates
    refusal = next(line for line in out.splitlines() if "305 INSUFFICIENT_ACTIVE_BALANCE" in line)
    assert "6,700.00" in refusal and "needs 6,701.00" in refusal, refusal
    locked = next(line for line in out.splitlines() if "ledger: 1150 UNITS_LOCKED" in line)
    assert "unlock at 20" in locked and " UTC)" in locked and "1,000.00 requested" in locked, locked
    assert_no_python_repr(out)
    assert out.count("-> conserved") == 8  # two assets after each of the four scenarios
    assert "forced=yes" in out and "reason=court order 2026/117" in out
    # Coupon: A and B paid pro rata to their holdings at the record height, the remainder is accounted for.
    assert "amount=2,571.42, asset=CASH-T" in out and "amount=1,714.28, asset=CASH-T" in out
    assert "recipient=escrow@m0" in out
    assert "steps answered as the scenarios expect; supply conserved in every check" in out


def test_amount_formatting_is_exact() -> None:
    assert fmt(30000) == "300.00" and fmt(1) == "0.01" and fmt(100_000_000) == "1,000,000.00"
    assert units("1,000,000.00") == 100_000_000 and units("0.5") == 50
    assert describe_event({"kind": "x", "attrs": {"amount": 12345, "to": "a@b"}}) == "x: amount=123.45, to=a@b"
    result = DemoResult(steps=1, as_expected=0, surprises=["step: expected 0, got 305"])
    assert not result.ok


def test_ledger_details_read_in_units_and_dates() -> None:
    assert humanize_detail("investor-a@m1 has 670000 active BOND-A, needs 670100") == \
        "investor-a@m1 has 6,700.00 active BOND-A, needs 6,701.00"
    assert humanize_detail("outstanding 1500000 + 98500001 exceeds the cap 100000000 of BOND-A") == \
        "outstanding 15,000.00 + 985,000.01 exceeds the cap 1,000,000.00 of BOND-A"
    assert humanize_detail("x: 5 BOND-A locked (next unlock at 1796223364), 0 movable, 100 requested") == \
        "x: 0.05 BOND-A locked (next unlock at 2026-12-02 14:56:04 UTC), 0.00 movable, 1.00 requested"
    assert humanize_detail("investor-a@m1 holds 670000 of BOND-A, needs 670100") == \
        "investor-a@m1 holds 6,700.00 of BOND-A, needs 6,701.00"
    # heights, blocks and signature counts are not amounts
    for text in ("settlement DVP-4 expired at height 111", "investor-d@m1 needs 1 signatures, has 0"):
        assert humanize_detail(text) == text
