"""Corporate actions whatever happens to holders after the record height (issue 19, items 1 and 2): a migrated
holder is paid at its successor, a frozen holder into its frozen balance, a holder with no reachable successor into
the escrow (the remainder account); no batch is blocked, no unit created or lost."""

from __future__ import annotations

from itertools import pairwise

from contracts import actions
from contracts import codes as cc
from contracts.operations import AnnounceAction, PayAction
from ledger import operations as o
from ledger.events import Event, Receipt
from tests.contracts.chain import ADMIN, AGENT, ESCROW, ISSUER, KYC, PAYER, T0, A, B, C, Chain, define, spec

BOND, CASH = "BOND-A", "CASH-T"
LATER = T0 + 10**8
A2, A3 = "alice2@bank-b", "alice3@bank-b"
ESCROW2 = "escrow2@bank-a"
CHAIN_OF = tuple(f"alice-{i}@bank-b" for i in range(actions.MAX_SUCCESSOR_HOPS + 1))
A_UNITS, B_UNITS = 1000_20, 500_20
SUPPLY = A_UNITS + B_UNITS
CASH_ISSUED = 1_000_000_00


def bond_chain(record_in: int = 1, kind: int = 1, num: int = 7, den: int = 200) -> Chain:
    """BOND (eligibility rule) held by A and B, CASH with the payer; an action "act" announced with its record
    height `record_in` blocks ahead, and the chain moved past it."""
    chain = Chain(extra_accounts=(A2, A3, ESCROW2, *CHAIN_OF))
    chain.ok(define(BOND, (spec("eligibility", providers=KYC),)))
    chain.ok(define(CASH, ()))
    for who in (A, B, C):
        chain.verify(who, "SG", LATER)
    chain.ok(o.Issue(ISSUER, CASH, PAYER, CASH_ISSUED))
    chain.ok(o.Issue(ISSUER, BOND, A, A_UNITS), o.Issue(ISSUER, BOND, B, B_UNITS))
    record = chain.height + record_in
    op = AnnounceAction(ISSUER, "act", kind, BOND, CASH, PAYER, ESCROW, record, num, den)
    chain.ok(op, signers=(PAYER,))
    while chain.height < record:
        chain.block([])
    return chain


def pay(chain: Chain, max_holders: int = 64) -> Receipt:
    return chain.run(PayAction(ISSUER, "act", max_holders), signers=(PAYER,))


def pay_all(chain: Chain, max_holders: int = 64) -> list[Event]:
    """Pay batches until the action completes; every batch must succeed. The distribution_paid events."""
    paid: list[Event] = []
    for _ in range(100):
        receipt = pay(chain, max_holders)
        assert receipt.code == 0, receipt
        paid += [e for e in receipt.events if e.kind == "distribution_paid"]
        if receipt.events[-1].attr("done") == 1:
            assert pay(chain, max_holders).code == cc.ACTION_COMPLETED
            return paid
    raise AssertionError("the action never completed")


def coupon(units: int) -> int:
    return units * 7 // 200


def cash_conserved(chain: Chain) -> None:
    assert chain.audit()[CASH] == CASH_ISSUED


def test_migrated_holder_is_paid_at_its_successor() -> None:
    """The issue's reproduction: A migrated (lost keys) after the record height; the coupon completes, A's
    entitlement reaches A2 (same owner), B is paid, whatever the batch size."""
    for batch in (1, 64):
        chain = bond_chain()
        chain.ok(o.MigrateAccount(ADMIN, A, A2, "lost keys"))
        events = pay_all(chain, batch)
        assert chain.balance(CASH, A2).available == coupon(A_UNITS)
        assert chain.balance(CASH, B).available == coupon(B_UNITS)
        assert chain.balance(CASH, ESCROW).available == coupon(SUPPLY) - coupon(A_UNITS) - coupon(B_UNITS)
        (to_a2,) = [e for e in events if e.attr("recipient") == A2]
        assert to_a2.attr("entitled") == A and to_a2.attr("escrowed") == 0
        assert CASH_ISSUED - chain.balance(CASH, PAYER).available == coupon(SUPPLY)
        cash_conserved(chain)


def test_a_chain_of_migrations_is_followed_to_its_open_end() -> None:
    chain = bond_chain()
    chain.ok(o.MigrateAccount(ADMIN, A, A2, "lost keys"))
    chain.ok(o.MigrateAccount(ADMIN, A2, A3, "lost keys again"))
    rs = chain.rule_state()
    assert actions.successor(rs, A) == A3 and actions.successor(rs, A3) == A3
    pay_all(chain)
    assert chain.balance(CASH, A3).available == coupon(A_UNITS)
    assert chain.balance(CASH, A2).total == 0
    cash_conserved(chain)


def test_frozen_holder_is_paid_into_its_frozen_balance() -> None:
    """A frozen holder's coupon is credited frozen; the payment agent never touches the freeze."""
    chain = bond_chain()
    chain.ok(o.FreezeAccount(AGENT, B, "court order"))
    events = pay_all(chain)
    assert chain.balance(CASH, B).frozen == coupon(B_UNITS) and chain.balance(CASH, B).available == 0
    assert chain.balance(CASH, A).available == coupon(A_UNITS)
    assert [e.attr("frozen") for e in events if e.attr("recipient") == B] == [1]
    assert chain.rule_state().account(B).frozen  # still frozen: nobody lifted it
    assert chain.run(o.Transfer(B, CASH, (o.TransferLeg(A, 1),))).code != 0  # and it still holds the payment
    cash_conserved(chain)


def test_migrated_frozen_holder_is_paid_frozen_at_its_successor() -> None:
    """Migration carries the freeze: the successor is paid into its frozen balance."""
    chain = bond_chain()
    chain.ok(o.FreezeAccount(AGENT, A, "court order"))
    chain.ok(o.MigrateAccount(ADMIN, A, A2, "lost keys"))
    pay_all(chain, 1)
    assert chain.balance(CASH, A2).frozen == coupon(A_UNITS)
    assert chain.rule_state().account(A2).frozen
    cash_conserved(chain)


def test_holder_without_a_reachable_successor_is_paid_into_the_escrow() -> None:
    """A chain of migrations longer than MAX_SUCCESSOR_HOPS: the entitlement goes to the remainder account, the event
    names the holder it is owed to."""
    chain = bond_chain()
    chain.ok(o.MigrateAccount(ADMIN, A, CHAIN_OF[0], "lost keys"))
    for old, new in pairwise(CHAIN_OF):
        assert actions.successor(chain.rule_state(), A) == old  # up to MAX_SUCCESSOR_HOPS links are followed
        chain.ok(o.MigrateAccount(ADMIN, old, new, "lost keys"))
    assert actions.successor(chain.rule_state(), A) is None
    events = pay_all(chain)
    (escrowed,) = [e for e in events if e.attr("escrowed") == 1]
    assert (escrowed.attr("recipient"), escrowed.attr("entitled")) == (ESCROW, A)
    assert escrowed.attr("amount") == coupon(A_UNITS)
    assert chain.balance(CASH, ESCROW).available == coupon(SUPPLY) - coupon(B_UNITS)
    assert CASH_ISSUED - chain.balance(CASH, PAYER).available == coupon(SUPPLY)
    cash_conserved(chain)


def test_remainder_nobody_can_receive_stays_with_the_payer() -> None:
    chain = bond_chain()
    chain.ok(o.MigrateAccount(ADMIN, ESCROW, CHAIN_OF[0], "reorganisation"))  # CHAIN_OF is at bank-b: admin migrates
    for old, new in pairwise(CHAIN_OF):
        chain.ok(o.MigrateAccount(ADMIN, old, new, "reorganisation"))
    events = pay_all(chain)
    assert {e.attr("recipient") for e in events} == {A, B}
    remainder = coupon(SUPPLY) - coupon(A_UNITS) - coupon(B_UNITS)
    assert remainder > 0
    assert CASH_ISSUED - chain.balance(CASH, PAYER).available == coupon(SUPPLY) - remainder
    cash_conserved(chain)


def test_migrated_or_frozen_remainder_account_still_receives_the_remainder() -> None:
    chain = bond_chain()
    chain.ok(o.FreezeAccount(AGENT, ESCROW, "court order"))
    chain.ok(o.MigrateAccount(ADMIN, ESCROW, ESCROW2, "reorganisation"))
    pay_all(chain)
    remainder = coupon(SUPPLY) - coupon(A_UNITS) - coupon(B_UNITS)
    assert remainder > 0
    assert chain.balance(CASH, ESCROW2).frozen == remainder
    cash_conserved(chain)


def test_maturity_redemption_pays_a_frozen_holder_frozen() -> None:
    """The issue's second reproduction: one frozen holder no longer blocks the maturity for everyone."""
    chain = bond_chain(kind=2, num=101, den=100)
    chain.ok(o.FreezeAccount(AGENT, B, "court order"))
    pay_all(chain, 1)
    assert chain.audit().get(BOND, 0) == 0
    assert chain.balance(CASH, A).available == A_UNITS * 101 // 100
    assert chain.balance(CASH, B).frozen == B_UNITS * 101 // 100 and chain.balance(CASH, B).available == 0
    assert chain.rule_state().account(B).frozen
    cash_conserved(chain)


def test_maturity_redemption_after_a_migration_to_a_frozen_successor() -> None:
    chain = bond_chain(kind=2, num=3, den=2)
    chain.ok(o.FreezeAmount(AGENT, BOND, A, 100_00, "lien"))
    chain.ok(o.FreezeAccount(AGENT, A, "court order"))
    chain.ok(o.MigrateAccount(ADMIN, A, A2, "lost keys"))  # after maturity: migrations still move the asset
    pay_all(chain, 2)
    assert chain.audit().get(BOND, 0) == 0
    assert chain.balance(CASH, A2).frozen == (A_UNITS - 100_00) * 3 // 2 + 100_00 * 3 // 2
    assert chain.balance(CASH, A).total == 0
    cash_conserved(chain)
