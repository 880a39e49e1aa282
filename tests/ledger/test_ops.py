"""Each operation: its effect, its events, and each of its refusal codes (with no state change on refusal)."""

from __future__ import annotations

import pytest

from ledger import codes, hold_expiry
from ledger import operations as o
from ledger.ops import holds as ledger_holds
from ledger.records import Balance, HoldStatus
from ledger.state import Overlay
from ledger.state_keys import member_key
from ledger.transition import BLOCK_EVENTS_TX_ID
from tests.ledger.world import ADMIN, World, pub, standard_world

ISSUER = "treasury@issuer-co"
AGENT = "agent@issuer-co"
CUST = "custodian@custody-c"
A, B, D, ESCROW = "alice@bank-a", "bob@bank-b", "dave@bank-a", "escrow@issuer-co"


def refused(w: World, signer: str, op: object, code: int) -> None:
    """The op is refused with `code`, and the state (root) does not change beyond the replay record."""
    before = w.ledger.audit()
    r = w.run(signer, op)
    assert r.code == code, (codes.REASONS[r.code].name, r.detail)
    assert r.failed_op == 0 and r.events == ()
    assert w.ledger.audit() == before


@pytest.fixture
def w() -> World:
    w = standard_world()
    w.ok(ISSUER, o.Issue(ISSUER, "BOND-A", A, 1_000))
    w.ok(ISSUER, o.Issue(ISSUER, "CASH-T", B, 50_000))
    return w


# -- identity ----------------------------------------------------------------------------------------------------


def test_register_member(w: World) -> None:
    r = w.ok(ADMIN, o.RegisterMember(ADMIN, "bank-z", "Bank Z"))
    assert r.events[0].kind == "member_registered"
    assert w.ledger.get(member_key("bank-z")).name == "Bank Z"
    refused(w, ADMIN, o.RegisterMember(ADMIN, "bank-z", "again"), codes.MEMBER_EXISTS)
    refused(w, A, o.RegisterMember(A, "bank-y", "Y"), codes.UNAUTHORIZED)


def test_register_account(w: World) -> None:
    w.ok(ADMIN, o.RegisterAccount(ADMIN, "carol@bank-b", (pub("carol"),), 1, None))
    assert w.acct("carol@bank-b").member == "bank-b"
    refused(w, ADMIN, o.RegisterAccount(ADMIN, "carol@bank-b", (pub("c"),), 1, None), codes.ACCOUNT_EXISTS)
    refused(w, ADMIN, o.RegisterAccount(ADMIN, "x@nowhere", (pub("x"),), 1, None), codes.MEMBER_NOT_FOUND)
    refused(w, ADMIN, o.RegisterAccount(ADMIN, "y@bank-b", (pub("y"),), 2, None), codes.INVALID_KEY_SET)
    refused(w, ADMIN, o.RegisterAccount(ADMIN, "y@bank-b", (pub("y"),), 1, A), codes.NOT_A_CUSTODIAN)
    refused(w, ADMIN, o.RegisterAccount(ADMIN, "y@bank-b", (pub("y"),), 1, "ghost@bank-b"), codes.ACCOUNT_NOT_FOUND)
    refused(w, A, o.RegisterAccount(A, "y@bank-a", (pub("y"),), 1, None), codes.UNAUTHORIZED)
    # a member-role account opens accounts at its own institution only
    w.ok(ADMIN, o.GrantRole(ADMIN, A, "member"))
    w.ok(A, o.RegisterAccount(A, "ops@bank-a", (pub("ops"),), 1, CUST))
    assert w.acct("ops@bank-a").custodian == CUST
    refused(w, A, o.RegisterAccount(A, "ops@bank-b", (pub("ops"),), 1, None), codes.UNAUTHORIZED)


def test_rotate_keys_and_multisig(w: World) -> None:
    k1, k2, k3 = pub(A, 1), pub(A, 2), pub(A, 3)
    from tests.ledger.world import key_for

    w.ok(A, o.RotateKeys(A, tuple(sorted((k1, k2, k3))), 2))
    w.keys[A] = [key_for(A, 1), key_for(A, 2), key_for(A, 3)]
    assert w.acct(A).threshold == 2
    # one signature of three is below the 2-of-3 threshold
    t = w.tx([A], o.Transfer(A, "BOND-A", (o.TransferLeg(B, 1),)), sign_with=[(A, key_for(A, 1))])
    assert w.submit(t)[0].code == codes.THRESHOLD_NOT_MET
    t = w.tx([A], o.Transfer(A, "BOND-A", (o.TransferLeg(B, 1),)), sign_with=[(A, key_for(A, 1)), (A, key_for(A, 3))])
    assert w.submit(t)[0].code == codes.OK
    # the old key no longer signs
    t = w.tx([A], o.Transfer(A, "BOND-A", (o.TransferLeg(B, 1),)), sign_with=[(A, key_for(A, 0)), (A, key_for(A, 1))])
    assert w.submit(t)[0].code == codes.UNKNOWN_SIGNING_KEY
    refused(w, A, o.RotateKeys(A, (k1,), 2), codes.INVALID_KEY_SET)


def test_roles(w: World) -> None:
    r = w.ok(ADMIN, o.GrantRole(ADMIN, A, "auditor"))
    assert r.events[0].attr("role") == "auditor"
    refused(w, ADMIN, o.GrantRole(ADMIN, A, "auditor"), codes.ROLE_ALREADY_GRANTED)
    refused(w, A, o.GrantRole(A, B, "auditor"), codes.UNAUTHORIZED)
    refused(w, ADMIN, o.GrantRole(ADMIN, "ghost@bank-a", "auditor"), codes.ACCOUNT_NOT_FOUND)
    w.ok(ADMIN, o.RevokeRole(ADMIN, A, "auditor"))
    refused(w, ADMIN, o.RevokeRole(ADMIN, A, "auditor"), codes.ROLE_NOT_GRANTED)
    refused(w, ADMIN, o.RevokeRole(ADMIN, ADMIN, "admin"), codes.SELF_ADMIN_REVOKE)


def test_set_custodian(w: World) -> None:
    w.ok(A, o.SetCustodian(A, A, CUST))
    assert w.acct(A).custodian == CUST
    refused(w, A, o.SetCustodian(A, A, B), codes.NOT_A_CUSTODIAN)
    refused(w, B, o.SetCustodian(B, A, None), codes.UNAUTHORIZED)
    w.ok(ADMIN, o.SetCustodian(ADMIN, A, None))
    assert w.acct(A).custodian is None


def test_actor_must_sign(w: World) -> None:
    refused(w, B, o.Transfer(A, "BOND-A", (o.TransferLeg(B, 1),)), codes.ACTOR_NOT_SIGNER)


# -- assets ------------------------------------------------------------------------------------------------------


def test_define_asset(w: World) -> None:
    doc = o.Document("prospectus", b"\x11" * 32)
    r = w.ok(
        ISSUER,
        o.DefineAsset(
            ISSUER,
            "FUND-X",
            4,
            10**9,
            "Fund X",
            "US0378331005",
            (doc,),
            (AGENT,),
            (o.RuleSpec("max_holders", (("limit", 100),)),),
        ),
    )
    ev = r.events[0]
    assert ev.kind == "asset_defined" and ev.attr("isin") == "US0378331005" and ev.attr("rules") == "max_holders"
    assert w.status("FUND-X").issued == 0
    refused(w, ISSUER, o.DefineAsset(ISSUER, "FUND-X", 0, 1, "", "", (), (), ()), codes.ASSET_EXISTS)
    refused(w, A, o.DefineAsset(A, "FUND-Y", 0, 1, "", "", (), (), ()), codes.UNAUTHORIZED)
    refused(w, ISSUER, o.DefineAsset(ISSUER, "FUND-Y", 0, 1, "", "", (), (A,), ()), codes.INVALID_ASSET_DEFINITION)


def test_set_asset_rules_and_agents(w: World) -> None:
    rules = (o.RuleSpec("country_allow", (("countries", "CN,HK,SG"),)),)
    w.ok(AGENT, o.SetAssetRules(AGENT, "BOND-A", rules))
    refused(w, A, o.SetAssetRules(A, "BOND-A", ()), codes.NOT_ASSET_CONTROLLER)
    refused(w, ISSUER, o.SetAssetRules(ISSUER, "NOPE", ()), codes.ASSET_NOT_FOUND)
    refused(w, AGENT, o.SetAssetAgents(AGENT, "BOND-A", ()), codes.NOT_ASSET_CONTROLLER)
    w.ok(ISSUER, o.SetAssetAgents(ISSUER, "BOND-A", ()))
    refused(w, AGENT, o.PauseAsset(AGENT, "BOND-A", "x"), codes.NOT_ASSET_CONTROLLER)


def test_issue(w: World) -> None:
    r = w.ok(AGENT, o.Issue(AGENT, "BOND-A", B, 500))
    assert r.events[0].kind == "issued" and r.events[0].attr("amount") == 500
    assert w.balance("BOND-A", B).available == 500 and w.status("BOND-A").issued == 1_500
    refused(w, A, o.Issue(A, "BOND-A", A, 1), codes.NOT_ASSET_CONTROLLER)
    refused(w, ISSUER, o.Issue(ISSUER, "BOND-A", A, 100_000_000), codes.SUPPLY_CAP_EXCEEDED)
    refused(w, ISSUER, o.Issue(ISSUER, "BOND-A", "ghost@bank-a", 1), codes.ACCOUNT_NOT_FOUND)
    refused(w, ISSUER, o.Issue(ISSUER, "NOPE", A, 1), codes.ASSET_NOT_FOUND)
    w.ok(ISSUER, o.Issue(ISSUER, "BOND-A", A, 100_000_000 - 1_500))  # exactly the cap
    assert w.status("BOND-A").outstanding == 100_000_000


def test_transfer_multi_leg_atomic(w: World) -> None:
    legs = (o.TransferLeg(B, 300), o.TransferLeg(D, 200), o.TransferLeg(B, 100))
    r = w.ok(A, o.Transfer(A, "BOND-A", legs))
    assert [e.attr("leg") for e in r.events] == [0, 1, 2]
    assert w.balance("BOND-A", A).available == 400 and w.balance("BOND-A", B).available == 400
    # the third leg fails: nothing of the first two moves
    refused(
        w,
        A,
        o.Transfer(A, "BOND-A", (o.TransferLeg(B, 100), o.TransferLeg(D, 100), o.TransferLeg(B, 300))),
        codes.INSUFFICIENT_ACTIVE_BALANCE,
    )
    assert w.balance("BOND-A", A).available == 400
    refused(w, A, o.Transfer(A, "BOND-A", (o.TransferLeg(A, 1),)), codes.SELF_TRANSFER)
    refused(w, A, o.Transfer(A, "BOND-A", (o.TransferLeg("ghost@bank-b", 1),)), codes.ACCOUNT_NOT_FOUND)
    refused(w, A, o.Transfer(A, "NOPE", (o.TransferLeg(B, 1),)), codes.ASSET_NOT_FOUND)


def test_balance_deleted_when_zero_and_positions(w: World) -> None:
    from ledger.state_keys import balance_key, positions_key

    w.ok(A, o.Transfer(A, "BOND-A", (o.TransferLeg(B, 1_000),)))
    assert w.ledger.get(balance_key("BOND-A", A)) is None
    assert w.ledger.get(positions_key(A)) is None
    assert w.ledger.get(positions_key(B)).assets == ("BOND-A", "CASH-T")


def test_redeem(w: World) -> None:
    r = w.ok(A, o.Redeem(A, "BOND-A", 400))
    assert r.events[0].kind == "redeemed"
    assert w.status("BOND-A").redeemed == 400 and w.status("BOND-A").outstanding == 600
    refused(w, A, o.Redeem(A, "BOND-A", 601), codes.INSUFFICIENT_ACTIVE_BALANCE)
    # after redemption the cap has room again
    w.ok(ISSUER, o.Issue(ISSUER, "BOND-A", A, 100_000_000 - 600))


# -- holds -------------------------------------------------------------------------------------------------------


def hold(
    hid: str,
    sender: str = A,
    amount: int = 300,
    expires: int | None = None,
    actor: str | None = None,
    notary: str = ESCROW,
    recipient: str = B,
    w: World | None = None,
) -> o.CreateHold:
    exp = expires if expires is not None else (w.time + 100 if w else 0)
    return o.CreateHold(actor or sender, hid, "BOND-A", sender, recipient, notary, amount, exp)


def test_hold_execute(w: World) -> None:
    r = w.ok(A, hold("h1", w=w))
    assert r.events[0].kind == "hold_created"
    assert w.balance("BOND-A", A) == type(w.balance("BOND-A", A))(700, 300, 0)
    refused(w, A, o.Transfer(A, "BOND-A", (o.TransferLeg(B, 701),)), codes.INSUFFICIENT_ACTIVE_BALANCE)
    refused(w, B, o.ExecuteHold(B, "h1"), codes.NOT_HOLD_NOTARY)
    w.ok(ESCROW, o.ExecuteHold(ESCROW, "h1"))
    assert w.hold("h1").status == HoldStatus.EXECUTED
    assert w.balance("BOND-A", A).held == 0 and w.balance("BOND-A", B).available == 300
    refused(w, ESCROW, o.ExecuteHold(ESCROW, "h1"), codes.HOLD_NOT_ACTIVE)
    refused(w, ESCROW, o.ExecuteHold(ESCROW, "h9"), codes.HOLD_NOT_FOUND)


def test_hold_refusals(w: World) -> None:
    w.ok(A, hold("h1", w=w))
    refused(w, A, hold("h1", w=w), codes.HOLD_EXISTS)
    refused(w, A, hold("h2", expires=w.time), codes.INVALID_HOLD_EXPIRY)
    refused(w, B, hold("h2", w=w, actor=B), codes.UNAUTHORIZED)
    refused(w, A, hold("h2", w=w, amount=701), codes.INSUFFICIENT_ACTIVE_BALANCE)
    refused(w, A, hold("h2", w=w, recipient=A), codes.SELF_TRANSFER)
    refused(w, A, hold("h2", w=w, notary="ghost@bank-a"), codes.ACCOUNT_NOT_FOUND)


def test_hold_release_and_expire(w: World) -> None:
    w.ok(A, hold("h1", w=w, amount=100))
    w.ok(A, hold("h2", w=w, amount=100))
    w.ok(A, hold("h3", w=w, amount=100, expires=w.time + 50))
    r = w.ok(ESCROW, o.ReleaseHold(ESCROW, "h1"))
    assert r.events[0].attr("status") == "released_by_notary"
    w.ok(B, o.ReleaseHold(B, "h2"))
    assert w.hold("h2").status == HoldStatus.RELEASED_BY_PAYEE
    refused(w, D, o.ReleaseHold(D, "h3"), codes.NOT_HOLD_NOTARY)
    refused(w, A, o.ExpireHold(A, "h3"), codes.HOLD_NOT_EXPIRED)
    w.time += 100
    # The block whose time reaches the expiry released h3 before its transactions ran.
    refused(w, ESCROW, o.ExecuteHold(ESCROW, "h3"), codes.HOLD_NOT_ACTIVE)
    assert w.hold("h3").status == HoldStatus.RELEASED_ON_EXPIRATION
    assert w.balance("BOND-A", A).available == 1_000 and w.balance("BOND-A", A).held == 0
    # expire_hold stays accepted: nothing left to do, nothing changes, no event.
    before = w.ledger.audit()
    assert w.ok(D, o.ExpireHold(D, "h3")).events == ()
    assert w.ledger.audit() == before
    refused(w, A, o.ExpireHold(A, "h1"), codes.HOLD_NOT_ACTIVE)


def test_an_expired_hold_is_released_by_the_block_that_reaches_its_expiry(w: World) -> None:
    """No transaction is needed to get units back from an expired hold: the first block whose time reaches the
    expiry releases it before its transactions run (so they can spend the units), with a hold_expired event."""
    t = w.time
    w.ok(A, hold("h1", amount=300, expires=t + 50))
    w.ok(A, hold("h2", amount=200, expires=t + 80))
    assert w.balance("BOND-A", A) == Balance(500, 500, 0)
    assert w.ledger.apply([], time=t + 49).block_events == ()
    spend = w.tx([A], o.Transfer(A, "BOND-A", (o.TransferLeg(B, 800),)))
    w.time = t + 50  # the block's time is h1's expires_at
    outcome = w.ledger.apply([spend], time=w.time)
    assert outcome.receipts[0].code == codes.OK, outcome.receipts[0].detail
    [ev] = outcome.block_events
    assert (ev.tx_id, ev.op_index, ev.kind) == (BLOCK_EVENTS_TX_ID, 0, "hold_expired")
    assert dict(ev.attrs) == {"hold": "h1", "asset": "BOND-A", "sender": A, "amount": 300, "expires_at": t + 50}
    assert outcome.events[0] == ev and outcome.receipts[0].events[0] in outcome.events[1:]
    assert w.hold("h1").status == HoldStatus.RELEASED_ON_EXPIRATION and w.hold("h2").status == HoldStatus.ORDERED
    assert w.balance("BOND-A", A) == Balance(0, 200, 0) and w.balance("BOND-A", B).available == 800
    assert hold_expiry.size(Overlay(w.ledger.state)) == 1
    w.time += 1
    assert w.ledger.apply([], time=w.time).block_events == ()  # h2 is not due yet


def test_holds_expire_in_order_and_settled_ones_are_skipped(w: World) -> None:
    """Several holds fall due in one block (earliest expiry first, then hold id); one executed before its expiry is
    skipped without an event; the queue is left with exactly the holds not yet due."""
    t = w.time
    for hid, expires in (("h5", t + 30), ("h1", t + 20), ("h4", t + 20), ("h2", t + 90), ("h3", t + 10)):
        w.ok(A, hold(hid, amount=100, expires=expires))
    w.ok(ESCROW, o.ExecuteHold(ESCROW, "h1"))
    w.time = t + 40
    outcome = w.ledger.apply([], time=w.time)
    assert [ev.attr("hold") for ev in outcome.block_events] == ["h3", "h4", "h5"]
    assert hold_expiry.size(Overlay(w.ledger.state)) == 1
    assert w.balance("BOND-A", A) == Balance(800, 100, 0)
    assert w.ledger.audit()


def test_beyond_the_per_block_hold_expiry_limit_the_next_blocks_release_the_rest(
    w: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At most MAX_HOLD_EXPIRIES_PER_BLOCK holds are released per block; a hold left for the next block can no
    longer be executed, and expire_hold releases it at once."""
    monkeypatch.setattr(ledger_holds, "MAX_HOLD_EXPIRIES_PER_BLOCK", 1)
    t = w.time
    for hid in ("h1", "h2", "h3", "h4"):
        w.ok(A, hold(hid, amount=100, expires=t + 10))
    w.time = t + 20
    assert [ev.attr("hold") for ev in w.ledger.apply([], time=w.time).block_events] == ["h1"]
    refused(w, ESCROW, o.ExecuteHold(ESCROW, "h4"), codes.HOLD_EXPIRED)  # its block released h2
    r = w.ok(D, o.ExpireHold(D, "h4"))  # its block released h3
    assert [(ev.kind, ev.attr("actor")) for ev in r.events] == [("hold_expired", D)]
    assert [w.hold(h).status for h in ("h2", "h3", "h4")] == [HoldStatus.RELEASED_ON_EXPIRATION] * 3
    assert w.balance("BOND-A", A) == Balance(1_000, 0, 0)
    assert hold_expiry.size(Overlay(w.ledger.state)) == 1  # h4's entry: skipped when its turn comes
    assert w.ledger.apply([], time=w.time + 1).block_events == ()
    assert hold_expiry.size(Overlay(w.ledger.state)) == 0


def test_dry_run_sees_the_holds_its_block_would_release(w: World) -> None:
    w.ok(A, hold("h1", w=w, amount=300, expires=w.time + 5))
    spend = w.tx([A], o.Transfer(A, "BOND-A", (o.TransferLeg(B, 1_000),)))
    assert w.ledger.dry_run(spend, time=w.time + 1).code == codes.INSUFFICIENT_ACTIVE_BALANCE
    assert w.ledger.dry_run(spend, time=w.time + 5).code == codes.OK


def test_custodian_acts_on_holds(w: World) -> None:
    w.ok(ISSUER, o.Issue(ISSUER, "BOND-A", D, 1_000))
    w.ok(CUST, hold("hd", sender=D, actor=CUST, amount=1_000, w=w))
    assert w.balance("BOND-A", D).held == 1_000
    w.ok(ESCROW, o.ReleaseHold(ESCROW, "hd"))
    refused(w, CUST, hold("ha", sender=A, actor=CUST, w=w), codes.UNAUTHORIZED)


# -- enforcement -------------------------------------------------------------------------------------------------


def test_freeze_account(w: World) -> None:
    r = w.ok(AGENT, o.FreezeAccount(AGENT, A, "court order 17"))
    assert r.events[0].attr("reason") == "court order 17"
    refused(w, A, o.Transfer(A, "BOND-A", (o.TransferLeg(B, 1),)), codes.SENDER_FROZEN)
    refused(w, ISSUER, o.Issue(ISSUER, "BOND-A", A, 1), codes.RECEIVER_FROZEN)
    refused(w, AGENT, o.FreezeAccount(AGENT, A, "again"), codes.ACCOUNT_ALREADY_FROZEN)
    refused(w, B, o.FreezeAccount(B, A, "x"), codes.UNAUTHORIZED)
    w.ok(AGENT, o.UnfreezeAccount(AGENT, A, "lifted"))
    refused(w, AGENT, o.UnfreezeAccount(AGENT, A, "lifted"), codes.ACCOUNT_NOT_FROZEN)
    w.ok(A, o.Transfer(A, "BOND-A", (o.TransferLeg(B, 1),)))


def test_freeze_amount_and_forced_transfer(w: World) -> None:
    w.ok(AGENT, o.FreezeAmount(AGENT, "BOND-A", A, 300, "court order"))
    assert w.balance("BOND-A", A) == type(w.balance("BOND-A", A))(700, 0, 300)
    refused(w, A, o.Transfer(A, "BOND-A", (o.TransferLeg(B, 701),)), codes.INSUFFICIENT_ACTIVE_BALANCE)
    refused(w, AGENT, o.FreezeAmount(AGENT, "BOND-A", A, 701, "x"), codes.INSUFFICIENT_ACTIVE_BALANCE)
    refused(w, A, o.FreezeAmount(A, "BOND-A", A, 1, "x"), codes.NOT_ASSET_CONTROLLER)
    refused(w, AGENT, o.UnfreezeAmount(AGENT, "BOND-A", A, 301, "x"), codes.INSUFFICIENT_FROZEN_BALANCE)
    refused(w, AGENT, o.ForcedTransfer(AGENT, "BOND-A", A, ESCROW, 301, True, "x"), codes.INSUFFICIENT_FROZEN_BALANCE)
    refused(w, B, o.ForcedTransfer(B, "BOND-A", A, B, 1, False, "x"), codes.NOT_ASSET_CONTROLLER)
    refused(w, AGENT, o.ForcedTransfer(AGENT, "BOND-A", A, A, 1, False, "x"), codes.SELF_TRANSFER)
    r = w.ok(AGENT, o.ForcedTransfer(AGENT, "BOND-A", A, ESCROW, 300, True, "court order 17"))
    ev = r.events[0]
    assert ev.kind == "forced_transfer" and ev.attr("forced") == 1 and ev.attr("actor") == AGENT
    assert ev.attr("reason") == "court order 17"
    assert w.balance("BOND-A", ESCROW).available == 300 and w.balance("BOND-A", A).frozen == 0
    w.ok(AGENT, o.FreezeAmount(AGENT, "BOND-A", A, 100, "x"))
    w.ok(AGENT, o.UnfreezeAmount(AGENT, "BOND-A", A, 100, "released"))
    assert w.balance("BOND-A", A).available == 700


def test_forced_transfer_ignores_freeze_and_pause(w: World) -> None:
    w.ok(AGENT, o.FreezeAccount(AGENT, A, "x"))
    w.ok(ISSUER, o.PauseAsset(ISSUER, "BOND-A", "x"))
    w.ok(AGENT, o.ForcedTransfer(AGENT, "BOND-A", A, ESCROW, 10, False, "x"))


def test_pause(w: World) -> None:
    w.ok(AGENT, o.PauseAsset(AGENT, "BOND-A", "corporate action"))
    refused(w, A, o.Transfer(A, "BOND-A", (o.TransferLeg(B, 1),)), codes.ASSET_PAUSED)
    refused(w, ISSUER, o.Issue(ISSUER, "BOND-A", A, 1), codes.ASSET_PAUSED)
    refused(w, A, o.Redeem(A, "BOND-A", 1), codes.ASSET_PAUSED)
    refused(w, ISSUER, o.PauseAsset(ISSUER, "BOND-A", "x"), codes.ASSET_ALREADY_PAUSED)
    refused(w, A, o.PauseAsset(A, "BOND-A", "x"), codes.NOT_ASSET_CONTROLLER)
    w.ok(ISSUER, o.UnpauseAsset(ISSUER, "BOND-A", "done"))
    refused(w, ISSUER, o.UnpauseAsset(ISSUER, "BOND-A", "x"), codes.ASSET_NOT_PAUSED)


def test_recover_keys(w: World) -> None:
    rec = w.account("recovery@bank-a", roles=("agent",))
    refused(w, B, o.RecoverKeys(B, A, (pub("new-a"),), 1, "lost"), codes.UNAUTHORIZED)
    refused(w, AGENT, o.RecoverKeys(AGENT, A, (pub("new-a"),), 1, "lost"), codes.UNAUTHORIZED)  # other member
    refused(w, rec, o.RecoverKeys(rec, A, (pub("new-a"),), 2, "lost"), codes.INVALID_KEY_SET)
    r = w.ok(rec, o.RecoverKeys(rec, A, (pub("new-a"),), 1, "lost phone"))
    assert r.events[0].kind == "keys_recovered"
    assert w.acct(A).keys == (pub("new-a"),)
    from tests.ledger.world import key_for

    w.keys[A] = [key_for("new-a")]
    w.ok(A, o.Transfer(A, "BOND-A", (o.TransferLeg(B, 1),)))
    assert w.balance("BOND-A", A).available == 999


def test_migrate_account(w: World) -> None:
    rec = w.account("recovery@bank-a", roles=("agent",))
    new = w.account("alice2@bank-a")
    w.ok(AGENT, o.FreezeAmount(AGENT, "BOND-A", A, 100, "x"))
    w.ok(AGENT, o.FreezeAccount(AGENT, A, "x"))
    w.ok(ADMIN, o.GrantRole(ADMIN, A, "auditor"))
    refused(w, rec, o.MigrateAccount(rec, A, A, "x"), codes.SELF_TRANSFER)
    refused(w, B, o.MigrateAccount(B, A, new, "x"), codes.UNAUTHORIZED)
    w.ok(ISSUER, o.Issue(ISSUER, "BOND-A", D, 5))
    refused(w, rec, o.MigrateAccount(rec, A, D, "x"), codes.POSITION_NOT_EMPTY)
    r = w.ok(rec, o.MigrateAccount(rec, A, new, "lost keys"))
    assert [e.kind for e in r.events] == ["account_migrated", "account_migrated"]
    assert w.balance("BOND-A", new) == type(w.balance("BOND-A", new))(900, 0, 100)
    assert w.balance("BOND-A", A).total == 0
    assert w.acct(new).frozen and w.acct(new).roles == w.acct(new).roles | 32
    assert w.acct(A).closed_to == new
    # the closed account can neither sign nor receive
    t = w.tx([A], o.Transfer(A, "BOND-A", (o.TransferLeg(B, 1),)))
    assert w.submit(t)[0].code == codes.SIGNER_CLOSED
    refused(w, ISSUER, o.Issue(ISSUER, "BOND-A", A, 1), codes.ACCOUNT_CLOSED)


def test_migrate_refused_with_active_holds(w: World) -> None:
    rec = w.account("recovery@bank-a", roles=("agent",))
    new = w.account("alice2@bank-a")
    w.ok(A, hold("h1", w=w))
    refused(w, rec, o.MigrateAccount(rec, A, new, "x"), codes.HOLDS_PENDING)


# -- settlement --------------------------------------------------------------------------------------------------


def dvp(w: World, amount_bond: int = 100, amount_cash: int = 10_000, expiry: int | None = None) -> o.Settle:
    return o.Settle(
        A,
        "trade-1",
        w.ledger.height + 5 if expiry is None else expiry,
        (o.SettlementLeg("BOND-A", A, B, amount_bond), o.SettlementLeg("CASH-T", B, A, amount_cash)),
    )


def test_settlement_dvp(w: World) -> None:
    r = w.submit(w.tx([A, B], dvp(w)))[0]
    assert r.code == 0, r.detail
    assert [e.kind for e in r.events] == ["settlement_leg", "settlement_leg", "settled"]
    assert w.balance("BOND-A", B).available == 100 and w.balance("CASH-T", A).available == 10_000


def test_settlement_refusals(w: World) -> None:
    before = w.ledger.audit()
    r = w.submit(w.tx([A], dvp(w)))[0]
    assert r.code == codes.LEG_SENDER_NOT_SIGNER
    r = w.submit(w.tx([A, B], dvp(w, amount_cash=60_000)))[0]
    assert r.code == codes.INSUFFICIENT_ACTIVE_BALANCE and r.failed_op == 0
    assert w.balance("BOND-A", B).available == 0  # the first leg did not move either
    r = w.submit(w.tx([A, B], dvp(w, expiry=w.ledger.height)))[0]
    assert r.code == codes.SETTLEMENT_EXPIRED
    w.ok(AGENT, o.FreezeAccount(AGENT, B, "x"))
    r = w.submit(w.tx([A, B], dvp(w)))[0]
    assert r.code == codes.RECEIVER_FROZEN and r.failed_op == 0
    assert w.ledger.audit() == before


def test_two_operations_atomic(w: World) -> None:
    """A transaction whose second operation fails leaves the first one undone."""
    t = w.tx([A], o.Transfer(A, "BOND-A", (o.TransferLeg(B, 10),)), o.Redeem(A, "BOND-A", 10_000))
    r = w.submit(t)[0]
    assert r.code == codes.INSUFFICIENT_ACTIVE_BALANCE and r.failed_op == 1
    assert w.balance("BOND-A", B).available == 0


def test_amount_overflow_of_total_issued(w: World) -> None:
    max_u64 = (1 << 64) - 1
    w.asset("BIG", ISSUER, cap=max_u64)
    w.ok(ISSUER, o.Issue(ISSUER, "BIG", A, max_u64))
    w.ok(A, o.Redeem(A, "BIG", 10))
    # outstanding has room again, but the total ever issued would pass 2^64-1
    refused(w, ISSUER, o.Issue(ISSUER, "BIG", A, 10), codes.AMOUNT_OVERFLOW)


def test_position_limit(w: World, monkeypatch: pytest.MonkeyPatch) -> None:
    import ledger.context

    monkeypatch.setattr(ledger.context, "MAX_POSITIONS", 2)  # A already holds BOND-A; B holds CASH-T
    w.ok(ISSUER, o.Issue(ISSUER, "CASH-T", A, 5))
    w.asset("THIRD", ISSUER)
    refused(w, ISSUER, o.Issue(ISSUER, "THIRD", A, 1), codes.POSITION_LIMIT)
    # dropping to zero in one asset frees a slot
    w.ok(A, o.Transfer(A, "CASH-T", (o.TransferLeg(B, 5),)))
    w.ok(ISSUER, o.Issue(ISSUER, "THIRD", A, 1))


def test_too_many_events(w: World, monkeypatch: pytest.MonkeyPatch) -> None:
    import ledger.context

    monkeypatch.setattr(ledger.context, "MAX_EVENTS_PER_TX", 2)
    legs = (o.TransferLeg(B, 1), o.TransferLeg(D, 1), o.TransferLeg(ESCROW, 1))
    refused(w, A, o.Transfer(A, "BOND-A", legs), codes.TX_TOO_COMPLEX)
