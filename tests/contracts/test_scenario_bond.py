"""Scenario 1: bond issuance to eligible investors with a lock-up (through apply_block, signed transactions)."""

from __future__ import annotations

from contracts import codes as cc
from ledger import codes
from ledger import operations as o
from tests.contracts.chain import AGENT, DAY, ESCROW, ISSUER, KYC, T0, A, B, C, Chain, D, define, spec

BOND = "BOND-A"
CAP = 1_000_000_00  # 1,000,000.00 with 2 decimals
BOND_RULES = (
    spec("eligibility", providers=KYC),
    spec("countries", allow="CN,HK,SG"),
    spec("lockup", seconds=180 * DAY),
)


def bond_chain() -> Chain:
    chain = Chain()
    chain.ok(define(BOND, BOND_RULES, cap=CAP))
    chain.verify(A, "CN", T0 + 400 * DAY)
    chain.verify(B, "HK", T0 + 400 * DAY)
    return chain


def test_bond_issuance_eligibility_lockup_cap() -> None:
    chain = bond_chain()
    chain.ok(o.Issue(ISSUER, BOND, A, 1000_00), time=T0)
    chain.ok(o.Issue(ISSUER, BOND, B, 500_00), time=T0)
    assert chain.run(o.Issue(ISSUER, BOND, C, 10_00)).code == cc.RECIPIENT_NOT_ELIGIBLE
    chain.verify(D, "US", T0 + 400 * DAY)
    assert chain.run(o.Issue(ISSUER, BOND, D, 10_00)).code == cc.COUNTRY_NOT_ALLOWED
    # Day 10: A's units are locked.
    r = chain.run(o.Transfer(A, BOND, (o.TransferLeg(B, 100_00),)), time=T0 + 10 * DAY)
    assert r.code == cc.UNITS_LOCKED and r.failed_op == 0
    # Day 181: unlocked.
    chain.ok(o.Transfer(A, BOND, (o.TransferLeg(B, 100_00),)), time=T0 + 181 * DAY)
    assert chain.balance(BOND, A).available == 900_00
    assert chain.balance(BOND, B).available == 600_00
    # Above the cap.
    r = chain.run(o.Issue(ISSUER, BOND, A, CAP - 1500_00 + 1))
    assert r.code == codes.SUPPLY_CAP_EXCEEDED
    chain.ok(o.Issue(ISSUER, BOND, A, CAP - 1500_00))
    assert chain.audit()[BOND] == CAP


def test_transfer_to_unverified_or_expired_claim_refused() -> None:
    chain = bond_chain()
    chain.ok(o.Issue(ISSUER, BOND, A, 1000_00), time=T0)
    later = T0 + 200 * DAY
    assert chain.run(o.Transfer(A, BOND, (o.TransferLeg(C, 1_00),)), time=later).code == cc.RECIPIENT_NOT_ELIGIBLE
    chain.verify(C, "SG", later + DAY)
    chain.ok(o.Transfer(A, BOND, (o.TransferLeg(C, 1_00),)), time=later)
    r = chain.run(o.Transfer(A, BOND, (o.TransferLeg(C, 1_00),)), time=later + 2 * DAY)
    assert r.code == cc.RECIPIENT_CLAIM_EXPIRED


def test_lots_unlock_separately_fifo() -> None:
    chain = bond_chain()
    chain.ok(o.Issue(ISSUER, BOND, A, 100_00), time=T0)
    chain.ok(o.Issue(ISSUER, BOND, A, 50_00), time=T0 + 30 * DAY)
    day181 = T0 + 181 * DAY
    # First lot (100.00) is free on day 181, the second (50.00) only on day 211.
    assert chain.run(o.Transfer(A, BOND, (o.TransferLeg(B, 100_01),)), time=day181).code == cc.UNITS_LOCKED
    chain.ok(o.Transfer(A, BOND, (o.TransferLeg(B, 100_00),)), time=day181)
    assert chain.run(o.Transfer(A, BOND, (o.TransferLeg(B, 1),)), time=day181 + DAY).code == cc.UNITS_LOCKED
    # B received free units by transfer: B can pass them on at once.
    chain.ok(o.Transfer(B, BOND, (o.TransferLeg(A, 100_00),)), time=day181 + DAY)
    chain.ok(o.Transfer(A, BOND, (o.TransferLeg(B, 150_00),)), time=T0 + 211 * DAY)


def test_settlement_leg_under_rules_dvp() -> None:
    chain = bond_chain()
    chain.ok(define("CASH-T", ()))
    chain.ok(o.Issue(ISSUER, BOND, A, 100_00), time=T0)
    chain.ok(o.Issue(ISSUER, "CASH-T", B, 1000_00), time=T0)
    chain.ok(o.Issue(ISSUER, "CASH-T", C, 1000_00), time=T0)
    day200 = T0 + 200 * DAY
    dvp_c = o.Settle(
        A,
        "dvp-1",
        chain.height + 10,
        (
            o.SettlementLeg(BOND, A, C, 10_00),
            o.SettlementLeg("CASH-T", C, A, 100_00),
        ),
    )
    r = chain.run(dvp_c, time=day200, signers=(C,))
    assert r.code == cc.RECIPIENT_NOT_ELIGIBLE
    assert chain.balance("CASH-T", C).available == 1000_00
    dvp_b = o.Settle(
        A,
        "dvp-2",
        chain.height + 10,
        (
            o.SettlementLeg(BOND, A, B, 10_00),
            o.SettlementLeg("CASH-T", B, A, 100_00),
        ),
    )
    chain.ok(dvp_b, time=day200, signers=(B,))
    assert chain.balance(BOND, B).available == 10_00 and chain.balance("CASH-T", A).available == 100_00


def test_freeze_and_lockup_interplay() -> None:
    chain = bond_chain()
    chain.ok(o.Issue(ISSUER, BOND, A, 400_00), time=T0)
    chain.ok(o.Issue(ISSUER, BOND, A, 600_00), time=T0 + 100 * DAY)
    day181 = T0 + 181 * DAY  # 400.00 free, 600.00 locked until day 280
    # Court order: 300.00 frozen. The freeze overlaps the locked units first, so A may still move its 400.00 free
    # units: the ledger limits it to the active balance (700.00), the lock-up to total - held - locked (400.00).
    chain.ok(o.FreezeAmount(AGENT, BOND, A, 300_00, "court order 1"), time=day181)
    assert chain.run(o.Transfer(A, BOND, (o.TransferLeg(B, 400_01),)), time=day181).code == cc.UNITS_LOCKED
    chain.ok(o.Transfer(A, BOND, (o.TransferLeg(B, 400_00),)), time=day181)
    # Now A: total 600.00 (300.00 frozen, 300.00 active), all locked until day 280.
    assert chain.run(o.Transfer(A, BOND, (o.TransferLeg(B, 1),)), time=day181).code == cc.UNITS_LOCKED
    # The agent forces the frozen amount to escrow: exempt from the lock-up; the lot travels with the units.
    chain.ok(o.ForcedTransfer(AGENT, BOND, A, ESCROW, 300_00, True, "court order 1"), time=day181)
    assert chain.balance(BOND, ESCROW).available == 300_00
    assert chain.run(o.Transfer(ESCROW, BOND, (o.TransferLeg(B, 1),)), time=day181).code == cc.UNITS_LOCKED
    # Day 281: everything unlocked; the unfrozen remainder of A moves.
    day281 = T0 + 281 * DAY
    chain.ok(o.Transfer(A, BOND, (o.TransferLeg(B, 300_00),)), time=day281)
    chain.ok(o.Transfer(ESCROW, BOND, (o.TransferLeg(B, 300_00),)), time=day281)
    assert chain.balance(BOND, B).available == 1000_00
    assert chain.audit()[BOND] == 1000_00


def test_frozen_account_refused_with_ledger_code() -> None:
    chain = bond_chain()
    chain.ok(o.Issue(ISSUER, BOND, A, 100_00), time=T0)
    chain.ok(o.FreezeAccount(AGENT, A, "investigation"))
    day181 = T0 + 181 * DAY
    assert chain.run(o.Transfer(A, BOND, (o.TransferLeg(B, 1_00),)), time=day181).code == codes.SENDER_FROZEN
    assert chain.run(o.Issue(ISSUER, BOND, A, 1_00)).code == codes.RECEIVER_FROZEN
    chain.ok(o.UnfreezeAccount(AGENT, A, "cleared"))
    chain.ok(o.Transfer(A, BOND, (o.TransferLeg(B, 1_00),)), time=day181)
