"""Corporate actions: allocation math, record-height snapshots, and a coupon paid batch by batch.

Until the ledger has the corporate-action operations, the tests announce and commit through the contracts state
directly and make each batch's payments as a real signed transfer from the payer (so the cash asset's rules,
the balances and the supply check all run through apply_block)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from contracts import actions, snapshots
from contracts import codes as cc
from contracts.actions import KIND_DISTRIBUTION, KIND_MATURITY, ActionPlan, ActionSpec
from contracts.modules.base import DISTRIBUTION, MATURITY_REDEMPTION
from contracts.state import Distribution
from ledger import codes
from ledger import operations as o
from tests.contracts.chain import AGENT, ESCROW, ISSUER, KYC, PAYER, T0, A, B, C, Chain, D, contract_write, define, spec

BOND, CASH = "BOND-A", "CASH-T"


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


def coupon(record_height: int, num: int = 7, den: int = 200, remainder: str = ESCROW) -> Distribution:
    return actions.record_for(ActionSpec(KIND_DISTRIBUTION, BOND, CASH, PAYER, remainder, record_height, num, den))


def pay_batch(chain: Chain, action_id: str, max_holders: int) -> ActionPlan | tuple[int, str]:
    """One batch: plan at the next height, pay it as a signed transfer from the payer, commit the progress."""
    height = chain.height + 1
    plan = contract_write(chain, lambda rs: chain.engine.plan_action(rs, action_id, height, max_holders))
    if not isinstance(plan, ActionPlan):
        return plan
    assert all(m.kind == DISTRIBUTION and m.sender == PAYER and not m.frozen for m in plan.movements)
    if plan.movements:
        legs = tuple(o.TransferLeg(m.recipient, m.amount) for m in plan.movements if m.recipient is not None)
        chain.ok(o.Transfer(PAYER, CASH, legs))
    else:
        chain.block([])
    contract_write(chain, lambda rs: chain.engine.commit_action(rs, action_id, plan))
    return plan


def coupon_chain() -> Chain:
    chain = Chain()
    chain.ok(define(BOND, (spec("eligibility", providers=KYC),)))
    chain.ok(define(CASH, ()))
    for who in (A, B, C):
        chain.verify(who, "SG", T0 + 10**8)
    chain.ok(o.Issue(ISSUER, CASH, PAYER, 1_000_000_00))
    chain.ok(o.Issue(ISSUER, BOND, A, 1000_20))
    chain.ok(o.Issue(ISSUER, BOND, B, 500_20))
    return chain


def test_coupon_at_record_height() -> None:
    chain = coupon_chain()
    record = chain.height + 1
    spec = ActionSpec(KIND_DISTRIBUTION, BOND, CASH, PAYER, ESCROW, record, 7, 200)
    assert contract_write(chain, lambda rs: chain.engine.announce_action(rs, "cpn-1", spec, chain.height + 1)) == (
        0,
        "",
    )
    chain.ok(o.Transfer(A, BOND, (o.TransferLeg(B, 100_00),)))  # block R: counts
    assert chain.height == record
    # After R: A sells everything to C, the buyer after R.
    chain.ok(o.Transfer(A, BOND, (o.TransferLeg(C, 900_20),)))
    chain.ok(o.Transfer(B, BOND, (o.TransferLeg(C, 1_00),)))
    rs = chain.rule_state()
    assert snapshots.balance_at(rs, BOND, A, record, chain.height + 1) == 900_20
    assert snapshots.balance_at(rs, BOND, B, record, chain.height + 1) == 600_20
    assert snapshots.balance_at(rs, BOND, C, record, chain.height + 1) == 0
    assert snapshots.supply_at(rs, BOND, record, chain.height + 1) == 1500_40
    payer_before = chain.balance(CASH, PAYER).available
    first = pay_batch(chain, "cpn-1", 1)
    assert isinstance(first, ActionPlan) and not first.done
    second = pay_batch(chain, "cpn-1", 5)
    assert isinstance(second, ActionPlan) and second.done
    due = 1500_40 * 7 // 200
    a_pay, b_pay = 900_20 * 7 // 200, 600_20 * 7 // 200
    assert chain.balance(CASH, A).available == a_pay
    assert chain.balance(CASH, B).available == b_pay
    assert chain.balance(CASH, C).available == 0
    assert chain.balance(CASH, ESCROW).available == due - a_pay - b_pay == 1
    assert payer_before - chain.balance(CASH, PAYER).available == due
    assert second.progress.paid == due and second.progress.units == 1500_40
    # Never twice.
    assert pay_batch(chain, "cpn-1", 5) == (cc.ACTION_COMPLETED, "corporate action cpn-1 is complete")
    assert chain.audit()[CASH] == 1_000_000_00


def test_announce_and_pay_refusals() -> None:
    chain = coupon_chain()
    h = chain.height + 1
    assert contract_write(chain, lambda rs: actions.announce(rs, "c", coupon(h - 1), h))[0] == cc.RECORD_HEIGHT_PASSED
    assert contract_write(chain, lambda rs: actions.announce(rs, "c", coupon(h + 5), h)) == (codes.OK, "")
    assert contract_write(chain, lambda rs: actions.announce(rs, "c", coupon(h + 5), h))[0] == cc.ACTION_EXISTS
    bad = Distribution(KIND_DISTRIBUTION, BOND, BOND, PAYER, ESCROW, h + 5, 1, 1, 0, 0, 0, False)
    assert contract_write(chain, lambda rs: actions.announce(rs, "d", bad, h))[0] == cc.SAME_ASSET
    assert pay_batch(chain, "c", 5)[0] == cc.RECORD_HEIGHT_NOT_REACHED
    assert pay_batch(chain, "nope", 5)[0] == cc.ACTION_NOT_FOUND


def test_holder_who_left_before_record_and_returned() -> None:
    chain = coupon_chain()
    chain.ok(o.Transfer(B, BOND, (o.TransferLeg(A, 500_20),)))  # B leaves
    record = chain.height + 2
    assert contract_write(chain, lambda rs: actions.announce(rs, "c", coupon(record, 1, 100), chain.height + 1))[0] == 0
    chain.block([])
    chain.block([])
    assert chain.height == record
    chain.ok(o.Transfer(A, BOND, (o.TransferLeg(B, 1_00),)))  # B returns after R
    while True:
        plan = pay_batch(chain, "c", 1)
        assert isinstance(plan, ActionPlan)
        if plan.done:
            break
    assert chain.balance(CASH, B).available == 0
    assert chain.balance(CASH, A).available == 1500_40 // 100


@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from((A, B, C, D)), st.sampled_from((A, B, C, D)), st.integers(1, 300), st.booleans()),
        min_size=1,
        max_size=12,
    ),
    st.integers(0, 11),
)
def test_snapshot_equals_naive_history(moves: list[tuple[str, str, int, bool]], record_at: int) -> None:
    """balance_at(R) equals the balances really held after block R, whatever happens before and after R."""
    chain = Chain()
    chain.ok(define(BOND, ()))
    chain.ok(define(CASH, ()))
    for who in (A, B, C, D):
        chain.ok(o.Issue(ISSUER, BOND, who, 500))
    record = chain.height + 1 + record_at
    assert contract_write(chain, lambda rs: actions.announce(rs, "c", coupon(record), chain.height + 1)) == (0, "")
    truth: dict[str, int] | None = None
    for i, (src, dst, amount, redeem) in enumerate(moves):
        if redeem:
            chain.run(o.Redeem(src, BOND, amount))
        elif src != dst:
            chain.run(o.Transfer(src, BOND, (o.TransferLeg(dst, amount),)))
        else:
            chain.run(o.Issue(ISSUER, BOND, dst, amount))
        if chain.height == record:
            truth = {w: chain.balance(BOND, w).total for w in (A, B, C, D)}
        del i
    while chain.height <= record:
        chain.block([])
        if chain.height == record:
            truth = {w: chain.balance(BOND, w).total for w in (A, B, C, D)}
    assert truth is not None
    rs = chain.rule_state()
    for w in (A, B, C, D):
        assert snapshots.balance_at(rs, BOND, w, record, chain.height + 1) == truth[w]
    assert snapshots.supply_at(rs, BOND, record, chain.height + 1) == sum(truth.values())


def test_maturity_plan_burns_everything_and_pays_frozen_part_frozen() -> None:
    chain = coupon_chain()
    chain.ok(o.FreezeAmount(AGENT, BOND, B, 100_00, "court order"))
    record = chain.height + 1
    maturity = Distribution(KIND_MATURITY, BOND, CASH, PAYER, ESCROW, record, 1, 1, 0, 0, 0, False)
    assert contract_write(chain, lambda rs: actions.announce(rs, "mat", maturity, chain.height + 1)) == (0, "")
    chain.block([])
    # Matured: voluntary movements refused, forced ones allowed.
    assert chain.run(o.Transfer(A, BOND, (o.TransferLeg(B, 1),))).code == cc.ASSET_MATURED
    chain.ok(o.ForcedTransfer(AGENT, BOND, A, D, 1_00, False, "estate"))
    plan = contract_write(chain, lambda rs: actions.plan_batch(rs, "mat", chain.height + 1, 64))
    assert isinstance(plan, ActionPlan) and plan.done
    burns = {(m.sender, m.frozen): m.amount for m in plan.movements if m.kind == MATURITY_REDEMPTION}
    pays = {(m.recipient, m.frozen): m.amount for m in plan.movements if m.kind == DISTRIBUTION}
    assert burns == {(A, False): 999_20, (B, False): 400_20, (B, True): 100_00, (D, False): 1_00}
    assert pays == {(A, False): 999_20, (B, False): 400_20, (B, True): 100_00, (D, False): 1_00}
    assert plan.progress.units == 1500_40 and plan.progress.paid == 1500_40


@settings(max_examples=20, deadline=None)
@given(
    initial=st.lists(st.integers(0, 10**6), min_size=4, max_size=4),
    before=st.lists(
        st.tuples(st.sampled_from((A, B, C, D)), st.sampled_from((A, B, C, D)), st.integers(1, 10**5)), max_size=5
    ),
    after=st.lists(
        st.tuples(st.sampled_from((A, B, C, D)), st.sampled_from((A, B, C, D)), st.integers(1, 10**5)), max_size=5
    ),
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
    people = (A, B, C, D)
    chain = Chain()
    chain.ok(define(BOND, ()))
    chain.ok(define(CASH, ()))
    chain.ok(o.Issue(ISSUER, CASH, PAYER, 10**15))
    for who, units in zip(people, initial):
        if units:
            chain.ok(o.Issue(ISSUER, BOND, who, units))
    record = chain.height + 1 + len(before)
    spec_ = ActionSpec(KIND_DISTRIBUTION, BOND, CASH, PAYER, ESCROW, record, num, den)
    assert contract_write(chain, lambda rs: chain.engine.announce_action(rs, "d", spec_, chain.height + 1)) == (0, "")
    for src, dst, n in before:
        chain.run(o.Transfer(src, BOND, (o.TransferLeg(dst, n),)) if src != dst else o.Redeem(src, BOND, n))
    while chain.height < record:
        chain.block([])
    at_record = {w: chain.balance(BOND, w).total for w in people}
    for src, dst, n in after:
        chain.run(o.Transfer(src, BOND, (o.TransferLeg(dst, n),)) if src != dst else o.Issue(ISSUER, BOND, dst, n))
    payer_before = chain.balance(CASH, PAYER).available
    batches = 0
    while True:
        plan = pay_batch(chain, "d", batch)
        assert isinstance(plan, ActionPlan)
        batches += 1
        if plan.done:
            break
    assert pay_batch(chain, "d", batch)[0] == cc.ACTION_COMPLETED
    due = sum(at_record.values()) * num // den
    for w in people:
        assert chain.balance(CASH, w).available == at_record[w] * num // den
    assert payer_before - chain.balance(CASH, PAYER).available == due
    assert chain.balance(CASH, ESCROW).available == due - sum(at_record[w] * num // den for w in people)
    assert batches <= len(people) // batch + 2
