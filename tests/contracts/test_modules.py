"""Each built-in rule module through signed transactions (dry-run is checked against execution in Chain.run)."""

from __future__ import annotations

import pytest

from contracts import codes as cc
from contracts import holders
from ledger import codes
from ledger import operations as o
from tests.contracts.chain import ADMIN, AGENT, DAY, ESCROW, ISSUER, KYC, T0, A, B, C, Chain, D, define, spec

X = "TOKEN-X"
LATER = T0 + 10**8


def chain_with(*rules: o.RuleSpec, countries: dict[str, str] | None = None) -> Chain:
    chain = Chain()
    chain.ok(define(X, rules))
    for who, country in (countries or {}).items():
        chain.verify(who, country, LATER)
    return chain


def send(src: str, dst: str, amount: int) -> o.Transfer:
    return o.Transfer(src, X, (o.TransferLeg(dst, amount),))


@pytest.mark.parametrize(
    ("rule", "code"),
    [
        (spec("nosuch"), cc.RULE_UNKNOWN),
        (spec("lockup"), cc.RULE_PARAM_INVALID),
        (spec("lockup", seconds="10"), cc.RULE_PARAM_INVALID),
        (spec("lockup", seconds=10, extra=1), cc.RULE_PARAM_INVALID),
        (spec("eligibility", providers="not an account"), cc.RULE_PARAM_INVALID),
        (spec("countries", allow="CN,cn"), cc.RULE_PARAM_INVALID),
        (spec("countries"), cc.RULE_PARAM_INVALID),
        (spec("max_holders", per_country="CN=x"), cc.RULE_PARAM_INVALID),
        (spec("transfer_amount", min=10, max=5), cc.RULE_PARAM_INVALID),
        (spec("window_limit", seconds=DAY), cc.RULE_PARAM_INVALID),
        (spec("cel", expr="amount >"), cc.CEL_SYNTAX),
        (spec("cel", expr="amount > 1.5"), cc.CEL_FORBIDDEN),
    ],
)
def test_bad_rules_refused_when_attached(rule: o.RuleSpec, code: int) -> None:
    chain = Chain()
    r = chain.run(define(X, (rule,)))
    assert r.code == code
    chain.ok(define(X, ()))
    assert chain.run(o.SetAssetRules(ISSUER, X, (rule,))).code == code


def test_single_rules_cannot_repeat() -> None:
    chain = Chain()
    rules = (spec("lockup", seconds=10), spec("lockup", seconds=20))
    assert chain.run(define(X, rules)).code == cc.RULE_DUPLICATE


def test_rules_changed_later_by_issuer_or_agent_only() -> None:
    chain = chain_with()
    chain.ok(o.Issue(ISSUER, X, A, 100))
    chain.ok(o.SetAssetRules(AGENT, X, (spec("transfer_amount", max=10),)))
    assert chain.run(send(A, B, 11)).code == cc.AMOUNT_ABOVE_MAXIMUM
    assert chain.run(o.SetAssetRules(A, X, ())).code == codes.NOT_ASSET_CONTROLLER
    chain.ok(o.SetAssetRules(ISSUER, X, ()))
    chain.ok(send(A, B, 11))


def test_transfer_amount_min_max() -> None:
    chain = chain_with(spec("transfer_amount", min=5, max=50))
    chain.ok(o.Issue(ISSUER, X, A, 1000))  # issues are not limited
    assert chain.run(send(A, B, 4)).code == cc.AMOUNT_BELOW_MINIMUM
    assert chain.run(send(A, B, 51)).code == cc.AMOUNT_ABOVE_MAXIMUM
    chain.ok(send(A, B, 50))
    # A multi-leg transfer: the second leg is refused, so nothing moves.
    r = chain.run(o.Transfer(A, X, (o.TransferLeg(B, 10), o.TransferLeg(C, 2))))
    assert r.code == cc.AMOUNT_BELOW_MINIMUM
    assert chain.balance(X, B).available == 50 and chain.balance(X, C).available == 0


def test_max_balance() -> None:
    chain = chain_with(spec("max_balance", max=100))
    chain.ok(o.Issue(ISSUER, X, A, 100))
    assert chain.run(o.Issue(ISSUER, X, A, 1)).code == cc.MAX_BALANCE_EXCEEDED
    chain.ok(o.Issue(ISSUER, X, B, 60))
    assert chain.run(send(A, B, 41)).code == cc.MAX_BALANCE_EXCEEDED
    chain.ok(send(A, B, 40))


def test_max_holders_total_is_exact() -> None:
    chain = chain_with(spec("max_holders", total=2))
    chain.ok(o.Issue(ISSUER, X, A, 100))
    chain.ok(o.Issue(ISSUER, X, B, 100))
    assert chain.run(o.Issue(ISSUER, X, C, 1)).code == cc.MAX_HOLDERS_REACHED
    assert chain.run(send(A, C, 99)).code == cc.MAX_HOLDERS_REACHED
    chain.ok(send(A, C, 100))  # A leaves as C joins: still two holders
    assert holders.head(chain.rule_state(), X).holders == 2
    chain.ok(send(C, B, 100))
    chain.ok(o.Issue(ISSUER, X, D, 1))
    assert holders.head(chain.rule_state(), X).holders == 2


def test_max_holders_per_country() -> None:
    countries = {A: "CN", B: "CN", C: "HK", D: "CN"}
    chain = chain_with(spec("eligibility", providers=KYC), spec("max_holders", per_country="CN=2"), countries=countries)
    chain.ok(o.Issue(ISSUER, X, A, 10))
    chain.ok(o.Issue(ISSUER, X, B, 10))
    assert chain.run(o.Issue(ISSUER, X, D, 10)).code == cc.MAX_HOLDERS_PER_COUNTRY_REACHED
    chain.ok(o.Issue(ISSUER, X, C, 10))  # HK is not limited
    chain.ok(send(A, D, 10))  # A (CN) leaves as D (CN) joins
    assert holders.country_count(chain.rule_state(), X, "CN") == 2
    assert holders.country_count(chain.rule_state(), X, "HK") == 1


def test_country_block_list_and_unknown() -> None:
    chain = chain_with(spec("countries", block="KP"), countries={A: "SG", B: "KP"})
    chain.ok(o.Issue(ISSUER, X, A, 10))
    assert chain.run(o.Issue(ISSUER, X, B, 10)).code == cc.COUNTRY_BLOCKED
    chain.ok(o.Issue(ISSUER, X, C, 10))  # no claim: a block-list alone does not refuse
    allow = chain_with(spec("countries", allow="SG"))
    assert allow.run(o.Issue(ISSUER, X, C, 10)).code == cc.COUNTRY_UNKNOWN


def test_eligibility_level_and_sender_check() -> None:
    chain = chain_with(spec("eligibility", providers=KYC, min_level=2, check_sender=1))
    chain.verify(A, "SG", LATER, level=2)
    chain.verify(B, "SG", LATER, level=1)
    chain.ok(o.Issue(ISSUER, X, A, 10))
    assert chain.run(o.Issue(ISSUER, X, B, 10)).code == cc.RECIPIENT_NOT_ELIGIBLE
    chain.verify(B, "SG", LATER, level=3)
    chain.ok(send(A, B, 5))
    chain.verify(A, "SG", chain.time + DAY, level=2)
    assert chain.run(send(A, B, 1), time=chain.time + 2 * DAY).code == cc.SENDER_CLAIM_EXPIRED


def test_claims_of_a_provider_whose_role_is_revoked_stop_counting() -> None:
    chain = chain_with(spec("eligibility", providers=KYC))
    chain.verify(A, "SG", LATER)
    chain.ok(o.Issue(ISSUER, X, A, 10))
    chain.ok(o.RevokeRole(ADMIN, KYC, "kyc_provider"))
    assert chain.run(o.Issue(ISSUER, X, A, 10)).code == cc.RECIPIENT_NOT_ELIGIBLE
    chain.ok(o.GrantRole(ADMIN, KYC, "kyc_provider"))
    chain.ok(o.Issue(ISSUER, X, A, 10))


def test_untrusted_provider_does_not_count() -> None:
    chain = chain_with(spec("eligibility", providers="kyc@other"))
    chain.verify(A, "SG", LATER)
    assert chain.run(o.Issue(ISSUER, X, A, 10)).code == cc.RECIPIENT_NOT_ELIGIBLE


def test_rolling_window_volume_and_count() -> None:
    chain = chain_with(
        spec("window_limit", seconds=DAY, max_amount=100), spec("window_limit", seconds=7 * DAY, max_count=3)
    )
    chain.ok(o.Issue(ISSUER, X, A, 10_000))
    t = chain.time
    chain.ok(send(A, B, 60), time=t)
    assert chain.run(send(A, B, 41), time=t + 3600).code == cc.WINDOW_VOLUME_EXCEEDED
    chain.ok(send(A, B, 40), time=t + 3600)
    chain.ok(send(A, B, 60), time=t + DAY)  # the first 60 left the 1-day window
    assert chain.run(send(A, B, 1), time=t + DAY + 1).code == cc.WINDOW_VOLUME_EXCEEDED  # 40 + 60 + 1
    assert chain.run(send(A, B, 1), time=t + DAY + 3601).code == cc.WINDOW_COUNT_EXCEEDED  # 4th in 7 days
    chain.ok(send(A, B, 1), time=t + 7 * DAY + 1)
    # Forced transfers are exempt and not counted.
    chain.ok(o.ForcedTransfer(AGENT, X, A, ESCROW, 5000, False, "order"), time=t + 7 * DAY + 1)


def test_cosignature_above_threshold() -> None:
    chain = chain_with(spec("cosign_threshold", threshold=1000))
    chain.ok(o.Issue(ISSUER, X, A, 10_000))
    chain.ok(send(A, B, 1000))
    assert chain.run(send(A, B, 1001)).code == cc.COSIGNATURE_REQUIRED
    # An agent-initiated settlement (the agent is the acting account, the holder signs its leg).
    settle = o.Settle(AGENT, "big-1", chain.height + 10, (o.SettlementLeg(X, A, B, 5000),))
    chain.ok(settle, signers=(A,))
    # The agent co-signs the holder's own transfer.
    chain.ok(send(A, B, 1001), signers=(AGENT,))
    # A co-signer that is not an agent of the asset does not count.
    assert chain.run(send(A, B, 1001), signers=(C,)).code == cc.COSIGNATURE_REQUIRED


def test_pause_and_cap_are_ledger_codes() -> None:
    chain = chain_with(spec("transfer_amount", max=10**9))
    chain.ok(o.Issue(ISSUER, X, A, 100))
    chain.ok(o.PauseAsset(AGENT, X, "corporate event"))
    assert chain.run(send(A, B, 1)).code == codes.ASSET_PAUSED
    chain.ok(o.UnpauseAsset(AGENT, X, "done"))
    chain.ok(send(A, B, 1))
    small = Chain()
    small.ok(define(X, (), cap=100))
    small.ok(o.Issue(ISSUER, X, A, 100))
    assert small.run(o.Issue(ISSUER, X, A, 1)).code == codes.SUPPLY_CAP_EXCEEDED


def test_holds_respect_lockup_and_eligibility() -> None:
    chain = chain_with(
        spec("eligibility", providers=KYC), spec("lockup", seconds=30 * DAY), countries={A: "SG", B: "SG"}
    )
    chain.ok(o.Issue(ISSUER, X, A, 100), time=T0)
    hold = o.CreateHold(A, "h1", X, A, B, AGENT, 10, T0 + 60 * DAY)
    assert chain.run(hold, time=T0 + DAY).code == cc.UNITS_LOCKED
    to_c = o.CreateHold(A, "h2", X, A, C, AGENT, 10, T0 + 60 * DAY)
    assert chain.run(to_c, time=T0 + 31 * DAY).code == cc.RECIPIENT_NOT_ELIGIBLE
    chain.ok(hold, time=T0 + 31 * DAY)
    # Held units are not movable a second time.
    assert chain.run(send(A, B, 91), time=T0 + 31 * DAY).code == codes.INSUFFICIENT_ACTIVE_BALANCE
    chain.ok(o.ExecuteHold(AGENT, "h1"), time=T0 + 32 * DAY)
    assert chain.balance(X, B).available == 10


def two_legs(src: str, *legs: tuple[str, int]) -> o.Transfer:
    return o.Transfer(src, X, tuple(o.TransferLeg(dst, amount) for dst, amount in legs))


ORDERS = ("new holder first", "existing holder first")


def test_max_holders_verdict_does_not_depend_on_leg_order() -> None:
    """At the limit, A sends its whole position: 60 to a new holder C and 50 to the existing holder B. The end state
    has as many holders as before (A leaves, C joins): accepted whichever leg is listed first. If A keeps 10, the
    end state has three holders: refused whichever leg is listed first, naming the transfer."""
    for order in ORDERS:
        for a_keeps in (0, 10):
            chain = chain_with(spec("max_holders", total=2))
            chain.ok(o.Issue(ISSUER, X, A, 110 + a_keeps))
            chain.ok(o.Issue(ISSUER, X, B, 10))
            legs = ((C, 60), (B, 50)) if order == ORDERS[0] else ((B, 50), (C, 60))
            r = chain.run(two_legs(A, *legs))
            if a_keeps:
                assert (r.code, r.failed_op) == (cc.MAX_HOLDERS_REACHED, 0), (order, r.detail)
                assert chain.balance(X, C).total == 0 and chain.balance(X, A).available == 120
            else:
                assert r.code == codes.OK, (order, r.detail)
                assert chain.balance(X, C).available == 60 and chain.balance(X, A).total == 0
            assert holders.head(chain.rule_state(), X).holders == 2


def test_max_holders_per_country_decided_on_the_end_state() -> None:
    countries = {A: "CN", B: "CN", C: "CN"}
    for order in ORDERS:
        chain = chain_with(spec("eligibility", providers=KYC), spec("max_holders", per_country="CN=2"),
                           countries=countries)
        chain.ok(o.Issue(ISSUER, X, A, 110))
        chain.ok(o.Issue(ISSUER, X, B, 10))
        legs = ((C, 60), (B, 50)) if order == ORDERS[0] else ((B, 50), (C, 60))
        assert chain.run(two_legs(A, *legs)).code == codes.OK, order
        assert holders.country_count(chain.rule_state(), X, "CN") == 2


def test_max_balance_verdict_does_not_depend_on_operation_order() -> None:
    """B holds 60 of at most 100; one transaction brings it 60 from A and takes 50 from it to C: it ends at 70,
    accepted in either order. Bringing it 50 from C and sending 10 to A ends at 110: refused in either order, naming
    the operation that brought the units in."""
    for receive_first in (True, False):
        chain = chain_with(spec("max_balance", max=100))
        chain.ok(o.Issue(ISSUER, X, A, 60))
        chain.ok(o.Issue(ISSUER, X, B, 60))
        incoming, outgoing = send(A, B, 60), send(B, C, 50)
        ops = (incoming, outgoing) if receive_first else (outgoing, incoming)
        assert chain.run(*ops, signers=[A, B]).code == codes.OK, receive_first
        assert chain.balance(X, B).available == 70
        over = (send(C, B, 50), send(B, A, 10)) if receive_first else (send(B, A, 10), send(C, B, 50))
        r = chain.run(*over, signers=[B, C])
        assert (r.code, r.failed_op) == (cc.MAX_BALANCE_EXCEEDED, 0 if receive_first else 1), receive_first
        assert chain.balance(X, B).available == 70
