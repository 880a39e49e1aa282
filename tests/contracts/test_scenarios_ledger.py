"""Scenarios 3-5 with asset rules attached (dry-run is compared with execution on every transaction)."""

from __future__ import annotations

from contracts import claims, holders
from contracts import codes as cc
from ledger import codes
from ledger import operations as o
from tests.contracts.chain import ADMIN, AGENT, DAY, ESCROW, ISSUER, KYC, T0, A, B, C, Chain, define, spec

BOND, CASH = "BOND-A", "CASH-T"
LATER = T0 + 400 * DAY
A2 = "alice2@bank-b"


def chain3() -> Chain:
    chain = Chain(extra_accounts=(A2,))
    chain.ok(define(BOND, (spec("eligibility", providers=KYC), spec("lockup", seconds=30 * DAY))))
    chain.ok(define(CASH, ()))
    for who in (A, B):
        chain.verify(who, "SG", LATER)
    chain.ok(o.Issue(ISSUER, BOND, A, 1000_00), time=T0)
    chain.ok(o.Issue(ISSUER, CASH, B, 100_000_00), o.Issue(ISSUER, CASH, C, 100_000_00), time=T0)
    return chain


def dvp(chain: Chain, buyer: str, expiry: int, amount: int = 100_00) -> o.Settle:
    legs = (o.SettlementLeg(BOND, A, buyer, amount), o.SettlementLeg(CASH, buyer, A, amount * 10))
    return o.Settle(A, f"dvp-{chain.nonce}", expiry, legs)


def test_scenario_3_delivery_versus_payment() -> None:
    chain = chain3()
    # Inside the lock-up the delivery leg is refused.
    assert chain.run(dvp(chain, B, chain.height + 5), signers=(B,), time=T0 + DAY).code == cc.UNITS_LOCKED
    day40 = T0 + 40 * DAY
    # Buyer C is not eligible for BOND-A: nothing moves, the code says why.
    r = chain.run(dvp(chain, C, chain.height + 5), signers=(C,), time=day40)
    assert r.code == cc.RECIPIENT_NOT_ELIGIBLE and r.failed_op == 0
    assert chain.balance(CASH, C).available == 100_000_00
    # Missing the buyer's signature.
    assert chain.run(dvp(chain, B, chain.height + 5), time=day40).code == codes.LEG_SENDER_NOT_SIGNER
    # Expired.
    assert chain.run(dvp(chain, B, chain.height), signers=(B,), time=day40).code == codes.SETTLEMENT_EXPIRED
    chain.ok(dvp(chain, B, chain.height + 5), signers=(B,), time=day40)
    assert chain.balance(BOND, B).available == 100_00 and chain.balance(CASH, A).available == 1000_00


def test_scenario_4_court_order_freeze() -> None:
    chain = chain3()
    day40 = T0 + 40 * DAY
    chain.ok(o.FreezeAmount(AGENT, BOND, A, 300_00, "court order 2026/17"), time=day40)
    r = chain.run(o.Transfer(A, BOND, (o.TransferLeg(B, 700_01),)), time=day40)
    assert r.code == codes.INSUFFICIENT_ACTIVE_BALANCE
    forced = chain.ok(o.ForcedTransfer(AGENT, BOND, A, ESCROW, 300_00, True, "court order 2026/17"), time=day40)
    (event,) = [e for e in forced.events if e.kind == "forced_transfer"]
    assert event.attr("forced") == 1 and event.attr("actor") == AGENT and event.attr("reason") == "court order 2026/17"
    assert chain.balance(BOND, ESCROW).total == 300_00  # escrow holds without KYC: forced transfers are exempt
    chain.ok(o.FreezeAmount(AGENT, BOND, A, 100_00, "second order"), time=day40)
    chain.ok(o.UnfreezeAmount(AGENT, BOND, A, 100_00, "lifted"), time=day40)
    chain.ok(o.Transfer(A, BOND, (o.TransferLeg(B, 700_00),)), time=day40)
    assert holders.head(chain.rule_state(), BOND).holders == 2  # A left; B and escrow hold


def test_scenario_5_lost_key_recovery_keeps_lots_and_claims() -> None:
    chain = chain3()
    # A non-agent cannot migrate A.
    assert chain.run(o.MigrateAccount(B, A, A2, "lost keys")).code == codes.UNAUTHORIZED
    chain.ok(o.FreezeAmount(AGENT, BOND, A, 10_00, "order"), time=T0 + DAY)
    chain.ok(o.MigrateAccount(ADMIN, A, A2, "lost keys, ticket 89"), time=T0 + DAY)
    assert chain.balance(BOND, A2).available == 990_00 and chain.balance(BOND, A2).frozen == 10_00
    assert claims.account_claims(chain.rule_state(), A2)  # the holder's identity claims follow
    # The lock-up lot travelled with the units: still locked on day 10, free on day 31.
    send = o.Transfer(A2, BOND, (o.TransferLeg(B, 1_00),))
    assert chain.run(send, time=T0 + 10 * DAY).code == cc.UNITS_LOCKED
    chain.ok(send, time=T0 + 31 * DAY)
    assert chain.run(o.Transfer(A, BOND, (o.TransferLeg(B, 1),))).code == codes.SIGNER_CLOSED
    assert holders.head(chain.rule_state(), BOND).holders == 2
