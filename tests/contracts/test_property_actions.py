"""Property test: corporate actions complete whatever happens to holders after the record height.

Random sequences of announce / issue / transfer / redeem / freeze (accounts and amounts) / hold / migrate / recover /
pay, one transaction per block (Chain.run checks dry-run against execution, Chain.block audits supply). Then every
announced action is paid to completion and:
- no payment batch is ever refused because of a holder (closed, migrated, frozen);
- a distribution pays each account that held at its record height R exactly floor(units(R) × rate), at the open end
  of its migration chain, into the frozen balance when that account is frozen, and the rounding remainder to the
  remainder account: exactly floor(supply(R) × rate) leaves the payer;
- a redemption at maturity burns exactly each holder's units at R (at its successor) and pays, with the remainder,
  exactly floor(supply(R) × rate);
- the supply of both assets is conserved after every block.

CI runs a few examples (seconds); CORP_ACTIONS_EXAMPLES=500 runs more.
"""

from __future__ import annotations

import os
from collections import defaultdict
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts import codes as cc
from contracts.operations import AnnounceAction, PayAction
from ledger import operations as o
from ledger.events import Receipt
from tests.contracts.chain import ADMIN, AGENT, DAY, ESCROW, ISSUER, PAYER, A, B, C, Chain, D, define, key_of

BOND, CASH = "BOND-P", "CASH-P"
PEOPLE = (A, B, C, D)
SPARES = tuple(f"spare-{i}@bank-b" for i in range(6))  # successors for migrations
CASH_ISSUED = 10**15
EXAMPLES = int(os.environ.get("CORP_ACTIONS_EXAMPLES", "30"))
# A pay batch may be refused only for reasons of the action itself, never because of a holder.
PAY_REFUSALS = {cc.ACTION_NOT_FOUND, cc.ACTION_COMPLETED, cc.RECORD_HEIGHT_NOT_REACHED}

who = st.integers(0, len(PEOPLE) - 1)
amounts = st.integers(1, 400)
announce = st.tuples(
    st.just("announce"),
    st.integers(0, 2),
    st.sampled_from((1, 1, 2)),
    st.integers(0, 8),
    st.integers(1, 50),
    st.integers(1, 50),
)
hold = st.tuples(st.just("hold"), st.integers(0, 2), who, who, amounts)
transfer = st.tuples(st.just("transfer"), who, who, amounts)
migrate = st.tuples(st.just("migrate"), who)
step = st.one_of(
    announce,
    st.tuples(st.just("issue"), who, amounts),
    transfer,
    transfer,
    st.tuples(st.just("redeem"), who, amounts),
    st.tuples(st.just("freeze"), who),
    st.tuples(st.just("unfreeze"), who),
    st.tuples(st.just("freeze_amount"), who, amounts),
    hold,
    hold,
    st.tuples(st.just("release"), st.integers(0, 2)),
    migrate,
    migrate,
    st.tuples(st.just("recover"), who),
    st.tuples(st.just("pay"), st.integers(0, 2), st.integers(1, 3)),
)


class World:
    """The chain plus what the test knows independently of the contracts code: who became whom, balances after
    every block, every payment event."""

    def __init__(self) -> None:
        self.chain = Chain(extra_accounts=SPARES)
        self.current = list(PEOPLE)  # person -> its open account now
        self.migrated_to: dict[str, str] = {}
        self.spares = list(SPARES)
        self.history: dict[int, dict[str, int]] = {}
        self.announced: dict[str, tuple[int, int, int, int]] = {}  # action -> (kind, R, num, den)
        self.paid: dict[str, list[Any]] = defaultdict(list)  # action -> distribution_paid / maturity_redeemed events
        self.chain.ok(define(BOND, ()))
        self.chain.ok(define(CASH, ()))
        self.chain.ok(o.Issue(ISSUER, CASH, PAYER, CASH_ISSUED))
        for person in PEOPLE:
            self.chain.ok(o.Issue(ISSUER, BOND, person, 1000))
        self.record()

    def record(self) -> None:
        accounts = (*PEOPLE, *SPARES)
        self.history[self.chain.height] = {a: self.chain.balance(BOND, a).total for a in accounts}
        assert self.chain.audit()[CASH] == CASH_ISSUED

    def successor(self, account: str) -> str:
        while account in self.migrated_to:
            account = self.migrated_to[account]
        return account

    def run(self, op: Any, signers: tuple[str, ...] = ()) -> Receipt:
        receipt = self.chain.run(op, signers=signers)
        self.record()
        return receipt

    def pay(self, action: str, max_holders: int) -> Receipt:
        receipt = self.run(PayAction(ISSUER, action, max_holders), (PAYER,))
        assert receipt.code == 0 or receipt.code in PAY_REFUSALS, receipt
        rs = self.chain.rule_state()
        for event in receipt.events:
            if event.kind == "distribution_paid":
                recipient = event.attr("recipient")
                entitled = recipient if event.attr("entitled") is None else event.attr("entitled")
                assert recipient == self.successor(entitled) and not event.attr("escrowed")
                account = rs.account(recipient)
                assert account is not None and account.closed_to is None
                if account.frozen:
                    assert event.attr("frozen") == 1  # paid into the frozen balance, the freeze untouched
                self.paid[action].append(event)
            elif event.kind == "maturity_redeemed":
                self.paid[action].append(event)
        return receipt

    def apply(self, item: tuple[Any, ...]) -> None:
        chain, name = self.chain, item[0]
        if name == "announce":
            _, i, kind, dh, num, den = item
            record = chain.height + 1 + dh
            op = AnnounceAction(ISSUER, f"a{i}", kind, BOND, CASH, PAYER, ESCROW, record, num, den)
            if self.run(op, (PAYER,)).code == 0:
                self.announced[f"a{i}"] = (kind, record, num, den)
        elif name == "issue":
            self.run(o.Issue(ISSUER, BOND, self.current[item[1]], item[2]))
        elif name == "transfer":
            _, s, r, n = item
            if s != r:
                self.run(o.Transfer(self.current[s], BOND, (o.TransferLeg(self.current[r], n),)))
        elif name == "redeem":
            self.run(o.Redeem(self.current[item[1]], BOND, item[2]))
        elif name == "freeze":
            self.run(o.FreezeAccount(AGENT, self.current[item[1]], "order"))
        elif name == "unfreeze":
            self.run(o.UnfreezeAccount(AGENT, self.current[item[1]], "lifted"))
        elif name == "freeze_amount":
            self.run(o.FreezeAmount(AGENT, BOND, self.current[item[1]], item[2], "lien"))
        elif name == "hold":
            _, i, s, r, n = item
            sender = self.current[s]
            self.run(o.CreateHold(sender, f"h{i}", BOND, sender, self.current[r], AGENT, n, chain.time + DAY))
        elif name == "release":
            self.run(o.ReleaseHold(AGENT, f"h{item[1]}"))
        elif name == "migrate":
            old = self.current[item[1]]
            if self.spares and self.run(o.MigrateAccount(ADMIN, old, self.spares[0], "lost keys")).code == 0:
                self.migrated_to[old] = self.current[item[1]] = self.spares.pop(0)
        elif name == "recover":
            account = self.current[item[1]]
            self.run(o.RecoverKeys(ADMIN, account, (bytes(key_of(account).verify_key),), 1, "lost device"))
        else:
            _, i, n = item
            self.pay(f"a{i}", n)

    def pay_to_completion(self, action: str) -> None:
        if self.announced[action][0] == 2:
            # Two batches walk every holder-index slot (fewer than 64 here) from wherever the cursor was: every
            # unit not promised under a hold is redeemed, whoever holds it. The held units wait for their holds.
            for _ in range(2):
                if self.pay(action, 64).code == cc.ACTION_COMPLETED:
                    return
            status = self.chain.rule_state().asset_status(BOND)
            assert status is not None
            assert status.outstanding == sum(self.chain.balance(BOND, a).held for a in (*PEOPLE, *SPARES))
            for i in range(3):
                self.run(o.ReleaseHold(AGENT, f"h{i}"))
        for _ in range(50):
            receipt = self.pay(action, 64)
            if receipt.code == cc.ACTION_COMPLETED:
                return
            assert receipt.code == 0, receipt
        raise AssertionError(f"{action} never completed")

    def check(self, action: str) -> None:
        kind, record, num, den = self.announced[action]
        at_record = self.history[record]
        supply = sum(at_record.values())
        due = supply * num // den
        events = self.paid[action]
        payments = [e for e in events if e.kind == "distribution_paid"]
        assert sum(e.attr("amount") for e in payments) == due  # the payer is never a holder here
        to_remainder = [e for e in payments if (e.attr("entitled") or e.attr("recipient")) == ESCROW]
        assert len(to_remainder) <= 1
        for_holders: dict[str, int] = defaultdict(int)
        for e in payments:
            if e not in to_remainder:
                for_holders[e.attr("entitled") or e.attr("recipient")] += e.attr("amount")
        if kind == 1:
            assert dict(for_holders) == {a: u * num // den for a, u in at_record.items() if u * num // den}
            return
        # Maturity: the units each holder had at R were burned (wherever its migrations took them), and it was paid
        # floor(units × rate) per part (active, frozen, released from holds later): at most two units less than
        # floor(units(R) × rate).
        burned: dict[str, int] = defaultdict(int)
        for e in events:
            if e.kind == "maturity_redeemed":
                burned[self.successor(e.attr("sender"))] += e.attr("amount")
        owed: dict[str, int] = defaultdict(int)
        for account, units in at_record.items():
            if units:
                owed[self.successor(account)] += units
        assert dict(burned) == dict(owed)
        received: dict[str, int] = defaultdict(int)
        for account, amount in for_holders.items():
            received[self.successor(account)] += amount
        for account, units in owed.items():
            assert units * num // den - 2 <= received[account] <= units * num // den


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    first=st.lists(st.one_of(announce, hold), min_size=1, max_size=4), steps=st.lists(step, min_size=10, max_size=30)
)
def test_every_announced_action_completes_with_exact_entitlements(
    first: list[tuple[Any, ...]], steps: list[tuple[Any, ...]]
) -> None:
    world = World()
    for item in (*first, *steps):
        world.apply(item)
    last_record = max((r for _, r, _, _ in world.announced.values()), default=0)
    while world.chain.height <= last_record:
        world.chain.block([])
        world.record()
    for action in sorted(world.announced):
        world.pay_to_completion(action)
        world.check(action)
    assert world.chain.audit()[CASH] == CASH_ISSUED
    issued_bond = world.chain.rule_state().asset_status(BOND)
    assert issued_bond is not None and world.chain.audit().get(BOND, 0) == issued_bond.outstanding
