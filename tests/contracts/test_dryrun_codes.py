"""Dry-run API and the reason-code table."""

from __future__ import annotations

import re
from pathlib import Path

from contracts import OPERATIONS, dryrun
from contracts import codes as cc
from ledger import codes
from ledger import operations as o
from tests.contracts.chain import ISSUER, KYC, T0, A, B, C, Chain, define, spec

X = "TOKEN-X"
DOC = Path(__file__).resolve().parents[2] / "docs" / "contracts.md"


def test_dry_run_reports_codes_and_changes_nothing() -> None:
    chain = Chain()
    chain.ok(define(X, (spec("eligibility", providers=KYC), spec("transfer_amount", max=100))))
    chain.verify(A, "SG", T0 + 10**8)
    chain.verify(B, "SG", T0 + 10**8)
    chain.ok(o.Issue(ISSUER, X, A, 1000))
    before = dict(chain.ledger.state.items())
    block = chain.ledger.next_block()
    for legs, code in (
        ((o.TransferLeg(B, 100),), codes.OK),
        ((o.TransferLeg(B, 101),), cc.AMOUNT_ABOVE_MAXIMUM),
        ((o.TransferLeg(B, 50), o.TransferLeg(C, 50)), cc.RECIPIENT_NOT_ELIGIBLE),
    ):
        op = o.Transfer(A, X, legs)
        signed = dryrun.check(chain.ledger.state, block, chain.tx(op), chain.protocol)
        unsigned = dryrun.check_operations(chain.ledger.state, block, frozenset({A}), [op], chain.protocol)
        assert signed.code == unsigned.code == code
        assert signed.allowed == (code == 0)
        if code:
            assert signed.failed_op == unsigned.failed_op == 0
            assert signed.name == codes.describe(code).name
    assert dict(chain.ledger.state.items()) == before
    # The unsigned variant still checks authority: B cannot move A's units.
    steal = dryrun.check_operations(
        chain.ledger.state, block, frozenset({B}), [o.Transfer(A, X, (o.TransferLeg(B, 1),))], chain.protocol
    )
    assert steal.code == codes.ACTOR_NOT_SIGNER


def test_contract_codes_are_in_range_and_documented() -> None:
    table = {}
    for line in DOC.read_text().splitlines():
        m = re.fullmatch(r"\| (\d+) \| `([A-Z_0-9]+)` \| (.+) \|", line)
        if m and 1000 <= int(m.group(1)) < 3000:
            table[int(m.group(1))] = (m.group(2), m.group(3))
    ours = {c: (r.name, r.message) for c, r in codes.REASONS.items() if r.layer == "contracts"}
    assert ours and table == ours
    assert all(1000 <= c < 3000 for c in ours)
    assert cc.UNITS_LOCKED == 1150 and cc.RECIPIENT_NOT_ELIGIBLE == 1100  # published numbers never change


def test_operations_documented() -> None:
    """Every contracts operation's field table in docs/contracts.md is exactly what its schema says."""
    from contracts.operations import CONTRACT_OPERATIONS
    from tests.ledger.test_docs import operation_section

    text = DOC.read_text()
    for cls in CONTRACT_OPERATIONS:
        assert operation_section(cls) in text, cls.__name__


def test_operations_round_trip_wire_and_json() -> None:
    """The contracts operations decode, encode and have a JSON form like core operations."""
    from contracts.operations import AnnounceAction, PayAction, RevokeClaim, SetClaim
    from ledger.jsonform import body_from_json, body_to_json
    from ledger.transaction import decode_transaction

    chain = Chain()
    ops = (
        SetClaim(KYC, A, "SG", 2, T0 + 10**6),
        RevokeClaim(KYC, A),
        AnnounceAction(ISSUER, "BOND-A:cpn-1", 1, "BOND-A", "CASH-T", ISSUER, ISSUER, 10, 7, 200),
        PayAction(ISSUER, "BOND-A:cpn-1", 64),
    )
    tx = chain.tx(*ops)
    assert decode_transaction(tx.to_bytes(), operations=OPERATIONS) == tx
    as_json = body_to_json(tx.body, operations=OPERATIONS)
    assert [op["kind"] for op in as_json["operations"]] == [
        "set_claim",
        "revoke_claim",
        "announce_action",
        "pay_action",
    ]
    assert body_from_json(as_json, operations=OPERATIONS) == tx.body
