"""Scenarios 3-6 of ../shared/context/scenarios.md at the ledger-core level (no contracts rules), each ending with
the supply check. Dry-run codes equal the real outcomes."""

from __future__ import annotations

from ledger import codes
from ledger import operations as o
from ledger.smt import verify_proof
from ledger.state_keys import balance_key
from tests.ledger.world import World, key_for, pub, standard_world

ISSUER = "treasury@issuer-co"
AGENT = "agent@issuer-co"
CUST = "custodian@custody-c"
SELLER, BUYER, H, D, ESCROW = "alice@bank-a", "bob@bank-b", "alice@bank-a", "dave@bank-a", "escrow@issuer-co"


def supply_ok(w: World) -> None:
    outstanding = w.ledger.audit()  # raises on any broken invariant
    for asset, amount in outstanding.items():
        assert w.status(asset).issued - w.status(asset).redeemed == amount


def test_scenario_3_delivery_versus_payment() -> None:
    w = standard_world()
    w.ok(ISSUER, o.Issue(ISSUER, "BOND-A", SELLER, 1_000_00))
    w.ok(ISSUER, o.Issue(ISSUER, "CASH-T", BUYER, 990_00))
    settle = o.Settle(
        SELLER,
        "trade-7",
        w.ledger.height + 3,
        (o.SettlementLeg("BOND-A", SELLER, BUYER, 1_000_00), o.SettlementLeg("CASH-T", BUYER, SELLER, 990_00)),
    )
    # missing the buyer's signature: refused, nothing moves
    only_seller = w.tx([SELLER], settle)
    assert w.dry(only_seller).code == codes.LEG_SENDER_NOT_SIGNER
    assert w.submit(only_seller)[0].code == codes.LEG_SENDER_NOT_SIGNER
    # signed by the buyer as a declared signer but without its signature: rejected
    unsigned = w.tx([BUYER, SELLER], settle, sign_with=[(SELLER, key_for(SELLER))])
    assert w.submit(unsigned)[0].code == codes.THRESHOLD_NOT_MET
    both = w.tx([BUYER, SELLER], settle)
    assert w.dry(both).code == codes.OK
    assert w.submit(both)[0].code == codes.OK
    assert w.balance("BOND-A", BUYER).available == 1_000_00 and w.balance("CASH-T", SELLER).available == 990_00
    # an expired settlement cannot execute
    late = o.Settle(SELLER, "trade-8", w.ledger.height, (o.SettlementLeg("BOND-A", BUYER, SELLER, 1),))
    tx = w.tx([BUYER, SELLER], late)
    assert w.dry(tx).code == w.submit(tx)[0].code == codes.SETTLEMENT_EXPIRED
    supply_ok(w)


def test_scenario_4_court_order_freeze() -> None:
    w = standard_world()
    w.ok(ISSUER, o.Issue(ISSUER, "BOND-A", H, 1_000_00))
    r = w.ok(AGENT, o.FreezeAmount(AGENT, "BOND-A", H, 300_00, "court order 2026/17"))
    freeze_height = r.height
    too_much = w.tx([H], o.Transfer(H, "BOND-A", (o.TransferLeg(BUYER, 700_01),)))
    assert w.dry(too_much).code == w.submit(too_much)[0].code == codes.INSUFFICIENT_ACTIVE_BALANCE
    w.ok(H, o.Transfer(H, "BOND-A", (o.TransferLeg(BUYER, 700_00),)))
    forced = w.ok(AGENT, o.ForcedTransfer(AGENT, "BOND-A", H, ESCROW, 300_00, True, "court order 2026/17: escrow"))
    ev = forced.events[0]
    assert (ev.kind, ev.attr("forced"), ev.attr("actor"), ev.attr("reason")) == (
        "forced_transfer",
        1,
        AGENT,
        "court order 2026/17: escrow",
    )
    assert forced.height > freeze_height  # who (actor), when (height), why (reason) are all in the audit trail
    assert w.balance("BOND-A", ESCROW).available == 300_00 and w.balance("BOND-A", H).total == 0
    w.ok(ISSUER, o.Issue(ISSUER, "BOND-A", H, 10_00))
    w.ok(AGENT, o.FreezeAmount(AGENT, "BOND-A", H, 10_00, "second order"))
    w.ok(AGENT, o.UnfreezeAmount(AGENT, "BOND-A", H, 10_00, "order lifted"))
    assert w.balance("BOND-A", H).available == 10_00
    supply_ok(w)


def test_scenario_5_lost_key_recovery() -> None:
    w = standard_world()
    recovery = w.account("recovery@bank-a", roles=("agent",))
    w.ok(ISSUER, o.Issue(ISSUER, "BOND-A", H, 500_00))
    w.ok(AGENT, o.FreezeAmount(AGENT, "BOND-A", H, 100_00, "order"))
    # a non-agent is refused
    bad = w.tx([BUYER], o.RecoverKeys(BUYER, H, (pub("h-new"),), 1, "lost"))
    assert w.dry(bad).code == w.submit(bad)[0].code == codes.UNAUTHORIZED
    # option 1: rotate the account to a new key set
    w.ok(recovery, o.RecoverKeys(recovery, H, (pub("h-new"),), 1, "lost phone, ticket 88"))
    old_key = w.tx([H], o.Transfer(H, "BOND-A", (o.TransferLeg(BUYER, 1),)))
    assert w.submit(old_key)[0].code == codes.UNKNOWN_SIGNING_KEY
    w.keys[H] = [key_for("h-new")]
    w.ok(H, o.Transfer(H, "BOND-A", (o.TransferLeg(BUYER, 1),)))
    # option 2: move holdings, frozen amounts and freeze status to a new account
    new = w.account("alice-new@bank-a")
    w.ok(AGENT, o.FreezeAccount(AGENT, H, "pending review"))
    w.ok(recovery, o.MigrateAccount(recovery, H, new, "keys lost again"))
    assert w.balance("BOND-A", new).available == 399_99 and w.balance("BOND-A", new).frozen == 100_00
    assert w.acct(new).frozen and w.acct(H).closed_to == new
    supply_ok(w)


def test_scenario_6_custody_hold_and_statement_proof() -> None:
    w = standard_world()
    w.ok(ISSUER, o.Issue(ISSUER, "BOND-A", D, 1_000))
    w.ok(CUST, o.CreateHold(CUST, "pending-trade-1", "BOND-A", D, BUYER, ESCROW, 1_000, w.time + 1_000))
    assert w.balance("BOND-A", D).held == 1_000
    w.ok(ESCROW, o.ReleaseHold(ESCROW, "pending-trade-1"))
    # a statement of D's holdings at this height: value + proof against the state root
    key = balance_key("BOND-A", D)
    tree = w.ledger.tree
    value = w.ledger.state.get_state(key)
    proof = tree.prove(key)
    assert verify_proof(w.ledger.root, key, value, proof)
    tampered = value[:-1] + bytes([value[-1] ^ 1])
    assert not verify_proof(w.ledger.root, key, tampered, proof)
    assert not verify_proof(w.ledger.root, balance_key("BOND-A", BUYER), value, proof)
    supply_ok(w)
