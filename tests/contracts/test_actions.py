"""Corporate actions through their operations (AnnounceAction, PayAction): scenario 2 (coupon at a record height),
redemption at maturity, record-height snapshots, and the allocation math."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from contracts import actions, snapshots
from contracts import codes as cc
from contracts.operations import AnnounceAction, PayAction
from ledger import codes
from ledger import operations as o
from ledger.events import Receipt
from ledger.records import Balance
from tests.contracts.chain import AGENT, ESCROW, ISSUER, KYC, PAYER, T0, A, B, C, Chain, D, define, spec

BOND, CASH = "BOND-A", "CASH-T"
LATER = T0 + 10**8


@given(
    units=st.lists(st.integers(0, 10**12), min_size=1, max_size=50),
    num=st.integers(1, 10**6),
    den=st.integers(1, 10**6),
)
def test_allocation_conserves_and_bounds_remainder(units: list[int], num: int, den: int) -> None:
    amounts, due, remainder = actions.allocate(units, sum(units), num, den)
    assert sum(amounts) + remainder == due == sum(units) * num // den
    assert 0 <= remainder < len(units) or remainder == 0
    for u, a in zip(units, amounts):
        assert a * den <= u * num < (a + 1) * den


def announce(chain: Chain, action: str, record: int, num: int = 7, den: int = 200, kind: int = 1) -> Receipt:
    op = AnnounceAction(ISSUER, action, kind, BOND, CASH, PAYER, ESCROW, record, num, den)
    return chain.run(op, signers=(PAYER,))


def pay(chain: Chain, action: str, max_holders: int = 64, actor: str = ISSUER) -> Receipt:
    return chain.run(PayAction(actor, action, max_holders), signers=(PAYER,))


def done(receipt: Receipt) -> bool:
    assert receipt.code == 0, receipt
    return receipt.events[-1].kind == "action_paid" and receipt.events[-1].attr("done") == 1


def coupon_chain() -> Chain:
    chain = Chain()
    chain.ok(define(BOND, (spec("eligibility", providers=KYC),)))
    chain.ok(define(CASH, ()))
    for who in (A, B, C):
        chain.verify(who, "SG", LATER)
    chain.ok(o.Issue(ISSUER, CASH, PAYER, 1_000_000_00))
    chain.ok(o.Issue(ISSUER, BOND, A, 1000_20), o.Issue(ISSUER, BOND, B, 500_20))
    return chain


def test_scenario_2_coupon_at_record_height() -> None:
    chain = coupon_chain()
    h0 = chain.height
    record = h0 + 5
    op = AnnounceAction(ISSUER, "cpn-1", 1, BOND, CASH, PAYER, ESCROW, record, 7, 200)
    assert chain.run(op).code == codes.ACTOR_NOT_SIGNER  # the payer must sign (block h0 + 1)
    assert chain.run(
        AnnounceAction(A, "cpn-1", 1, BOND, CASH, PAYER, ESCROW, record, 7, 200), signers=(PAYER,)
    ).code == (codes.NOT_ASSET_CONTROLLER)
    assert announce(chain, "cpn-1", record).code == 0  # h0 + 3
    assert pay(chain, "cpn-1").code == cc.RECORD_HEIGHT_NOT_REACHED  # h0 + 4
    chain.ok(o.Transfer(A, BOND, (o.TransferLeg(B, 100_00),)))  # h0 + 5 = R: counts
    assert chain.height == record
    chain.ok(o.Transfer(A, BOND, (o.TransferLeg(C, 900_20),)))  # C buys everything A had, after R
    chain.ok(o.Transfer(B, BOND, (o.TransferLeg(C, 1_00),)))
    rs = chain.rule_state()
    assert snapshots.balance_at(rs, BOND, A, record, chain.height + 1) == 900_20
    assert snapshots.balance_at(rs, BOND, B, record, chain.height + 1) == 600_20
    assert snapshots.balance_at(rs, BOND, C, record, chain.height + 1) == 0
    assert snapshots.supply_at(rs, BOND, record, chain.height + 1) == 1500_40
    assert pay(chain, "cpn-1", actor=A).code == codes.NOT_ASSET_CONTROLLER
    payer_before = chain.balance(CASH, PAYER).available
    assert not done(pay(chain, "cpn-1", 1))
    assert done(pay(chain, "cpn-1", 64, actor=AGENT))
    a_pay, b_pay, due = 900_20 * 7 // 200, 600_20 * 7 // 200, 1500_40 * 7 // 200
    assert chain.balance(CASH, A).available == a_pay
    assert chain.balance(CASH, B).available == b_pay
    assert chain.balance(CASH, C).available == 0  # the buyer after R gets nothing
    assert chain.balance(CASH, ESCROW).available == due - a_pay - b_pay == 1  # the rounding remainder
    assert payer_before - chain.balance(CASH, PAYER).available == due
    assert pay(chain, "cpn-1").code == cc.ACTION_COMPLETED  # never twice
    assert chain.audit()[CASH] == 1_000_000_00


def test_announce_refusals() -> None:
    chain = coupon_chain()
    assert announce(chain, "c", chain.height).code == cc.RECORD_HEIGHT_PASSED
    assert announce(chain, "c", chain.height + 5).code == 0
    assert announce(chain, "c", chain.height + 5).code == cc.ACTION_EXISTS
    same = AnnounceAction(ISSUER, "d", 1, BOND, BOND, PAYER, ESCROW, chain.height + 5, 1, 1)
    assert chain.run(same, signers=(PAYER,)).code == cc.SAME_ASSET
    assert pay(chain, "nope").code == cc.ACTION_NOT_FOUND


def test_holder_who_left_before_record_and_returned() -> None:
    chain = coupon_chain()
    chain.ok(o.Transfer(B, BOND, (o.TransferLeg(A, 500_20),)))  # B leaves
    record = chain.height + 2
    assert announce(chain, "c", record, 1, 100).code == 0
    chain.block([])
    assert chain.height == record
    chain.ok(o.Transfer(A, BOND, (o.TransferLeg(B, 1_00),)))  # B returns after R
    while not done(pay(chain, "c", 1)):
        pass
    assert chain.balance(CASH, B).available == 0
    assert chain.balance(CASH, A).available == 1500_40 // 100


def test_payment_refused_by_the_pay_assets_rules_moves_nothing() -> None:
    chain = coupon_chain()
    record = chain.height + 1
    assert announce(chain, "c", record).code == 0
    chain.ok(o.SetAssetRules(ISSUER, CASH, (spec("max_balance", max=20_00),)))  # A's coupon is 35_00
    before = chain.balance(CASH, PAYER).available
    r = pay(chain, "c")
    assert r.code == cc.MAX_BALANCE_EXCEEDED
    assert chain.balance(CASH, PAYER).available == before and chain.balance(CASH, A).available == 0
    chain.ok(o.SetAssetRules(ISSUER, CASH, ()))
    assert done(pay(chain, "c"))


def test_maturity_redemption() -> None:
    chain = coupon_chain()
    chain.ok(o.FreezeAmount(AGENT, BOND, B, 100_00, "court order"))
    record = chain.height + 1
    assert announce(chain, "mat", record, 101, 100, kind=2).code == 0
    assert chain.height == record
    # Matured: voluntary movements refused, an agent's forced transfer still moves.
    assert chain.run(o.Transfer(A, BOND, (o.TransferLeg(C, 1),))).code == cc.ASSET_MATURED
    chain.ok(o.ForcedTransfer(AGENT, BOND, A, D, 1_00, False, "estate"))
    chain.ok(o.PauseAsset(ISSUER, BOND, "matured"))  # the redemption burns anyway (issuer-forced)
    assert not done(pay(chain, "mat", 2))
    assert done(pay(chain, "mat", 64))
    assert chain.audit().get(BOND, 0) == 0
    assert chain.balance(CASH, A).available == 999_20 * 101 // 100
    assert chain.balance(CASH, B).available == 400_20 * 101 // 100
    assert chain.balance(CASH, B).frozen == 100_00 * 101 // 100  # the frozen part is paid frozen
    assert chain.balance(CASH, D).available == 1_00 * 101 // 100
    paid = sum(chain.balance(CASH, w).total for w in (A, B, C, D, ESCROW))
    assert paid == 1500_40 * 101 // 100
    assert pay(chain, "mat").code == cc.ACTION_COMPLETED


def test_maturity_pays_everyone_while_units_wait_in_holds() -> None:
    """Units in an active hold are promised to its payee: they wait for the hold to end, and hold up nobody else's
    redemption, not even the rest of the same holder's position."""
    chain = coupon_chain()
    chain.ok(o.CreateHold(A, "h1", BOND, A, B, AGENT, 10_00, chain.time + 10**6))
    record = chain.height + 1
    assert announce(chain, "mat", record, 1, 1, kind=2).code == 0
    first = pay(chain, "mat")
    assert not done(first) and first.events[-1].attr("held") == 10_00
    assert chain.balance(CASH, B).available == 500_20 and chain.balance(CASH, A).available == 990_20
    assert chain.balance(BOND, A) == Balance(0, 10_00, 0) and chain.audit()[BOND] == 10_00
    assert chain.run(o.ExecuteHold(AGENT, "h1")).code == cc.ASSET_MATURED  # a matured asset's hold only ends
    again = pay(chain, "mat")  # the walk starts again; still held
    assert not done(again) and again.events[-1].attr("held") == 10_00
    chain.ok(o.ReleaseHold(AGENT, "h1"))
    assert done(pay(chain, "mat"))
    assert chain.audit().get(BOND, 0) == 0 and chain.balance(CASH, A).available == 1000_20


PEOPLE = (A, B, C, D)
moves = st.lists(st.tuples(st.sampled_from(PEOPLE), st.sampled_from(PEOPLE), st.integers(1, 10**5)), max_size=5)


@settings(max_examples=20, deadline=None)
@given(
    initial=st.lists(st.integers(0, 10**6), min_size=4, max_size=4),
    before=moves,
    after=moves,
    num=st.integers(1, 10**4),
    den=st.integers(1, 10**4),
    batch=st.integers(1, 3),
)
def test_distribution_pays_exactly_the_record_height_holdings(
    initial: list[int],
    before: list[tuple[str, str, int]],
    after: list[tuple[str, str, int]],
    num: int,
    den: int,
    batch: int,
) -> None:
    chain = Chain()
    chain.ok(define(BOND, ()))
    chain.ok(define(CASH, ()))
    chain.ok(o.Issue(ISSUER, CASH, PAYER, 10**15))
    for who, units in zip(PEOPLE, initial):
        if units:
            chain.ok(o.Issue(ISSUER, BOND, who, units))
    record = chain.height + 1 + len(before)
    assert announce(chain, "d", record, num, den).code == 0
    for src, dst, n in before:  # a transfer, or a redemption when src == dst
        chain.run(o.Transfer(src, BOND, (o.TransferLeg(dst, n),)) if src != dst else o.Redeem(src, BOND, n))
    while chain.height < record:
        chain.block([])
    at_record = {w: chain.balance(BOND, w).total for w in PEOPLE}
    for src, dst, n in after:  # a transfer, or an issue when src == dst
        chain.run(o.Transfer(src, BOND, (o.TransferLeg(dst, n),)) if src != dst else o.Issue(ISSUER, BOND, dst, n))
    payer_before = chain.balance(CASH, PAYER).available
    batches = 1
    while not done(pay(chain, "d", batch)):
        batches += 1
    assert pay(chain, "d", batch).code == cc.ACTION_COMPLETED
    due = sum(at_record.values()) * num // den
    for w in PEOPLE:
        assert chain.balance(CASH, w).available == at_record[w] * num // den
    assert payer_before - chain.balance(CASH, PAYER).available == due
    assert chain.balance(CASH, ESCROW).available == due - sum(at_record[w] * num // den for w in PEOPLE)
    assert batches <= len(PEOPLE) // batch + 1


@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(PEOPLE), st.sampled_from(PEOPLE), st.integers(1, 300), st.booleans()),
        min_size=1,
        max_size=12,
    ),
    st.integers(0, 11),
)
def test_snapshot_equals_naive_history(moves_: list[tuple[str, str, int, bool]], record_at: int) -> None:
    """balance_at(R) equals the balances really held after block R, whatever happens before and after R."""
    chain = Chain()
    chain.ok(define(BOND, ()))
    chain.ok(define(CASH, ()))
    for who in PEOPLE:
        chain.ok(o.Issue(ISSUER, BOND, who, 500))
    record = chain.height + 2 + record_at  # the announcement is block height + 1
    assert announce(chain, "c", record).code == 0
    truth: dict[str, int] | None = None
    for src, dst, amount, redeem in moves_:
        if redeem:
            chain.run(o.Redeem(src, BOND, amount))
        elif src != dst:
            chain.run(o.Transfer(src, BOND, (o.TransferLeg(dst, amount),)))
        else:
            chain.run(o.Issue(ISSUER, BOND, dst, amount))
        if chain.height == record:
            truth = {w: chain.balance(BOND, w).total for w in PEOPLE}
    while chain.height <= record:
        chain.block([])
        if chain.height == record:
            truth = {w: chain.balance(BOND, w).total for w in PEOPLE}
    assert truth is not None
    rs = chain.rule_state()
    for w in PEOPLE:
        assert snapshots.balance_at(rs, BOND, w, record, chain.height + 1) == truth[w]
    assert snapshots.supply_at(rs, BOND, record, chain.height + 1) == sum(truth.values())
