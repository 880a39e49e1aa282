"""Property tests: random operations against assets with random rule sets.

For every transaction: dry-run gives exactly the code (and failing operation) of real execution; a refused
transaction changes no state except the chain meta and replay entries; the supply check holds after every block (Chain.block audits);
replaying the same blocks into a fresh ledger gives the same state root."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts.operations import AnnounceAction, PayAction, RevokeClaim, SetClaim
from ledger import operations as o
from tests.contracts.chain import AGENT, DAY, ESCROW, ISSUER, KYC, PAYER, T0, A, B, C, Chain, D, define, spec

X, CASH = "BOND-X", "CASH-T"
PEOPLE = (A, B, C, D, ESCROW)
RULE_POOL = (
    spec("eligibility", providers=KYC),
    spec("countries", allow="CN,HK,SG"),
    spec("countries", block="US"),
    spec("max_holders", total=3),
    spec("max_holders", per_country="CN=1,HK=2"),
    spec("max_balance", max=4000),
    spec("transfer_amount", min=2, max=3000),
    spec("lockup", seconds=5 * DAY),
    spec("window_limit", seconds=3 * DAY, max_amount=2500, max_count=4),
    spec("cosign_threshold", threshold=2000),
    spec("cel", expr="forced || kind == 'issue' || recipient.balance + amount != 1234"),
)

people = st.sampled_from(PEOPLE)
assets = st.sampled_from((X, X, CASH))
amounts = st.integers(1, 3500)

op_strategy = st.one_of(
    st.builds(lambda a, w, n: o.Issue(ISSUER, a, w, n), assets, people, amounts),
    st.builds(lambda a, s, r, n: o.Transfer(s, a, (o.TransferLeg(r, n),)), assets, people, people, amounts),
    st.builds(
        lambda s, r, n, m: o.Transfer(s, X, (o.TransferLeg(r, n), o.TransferLeg(ESCROW, m))),
        people,
        people,
        amounts,
        amounts,
    ),
    st.builds(lambda a, s, n: o.Redeem(s, a, n), assets, people, amounts),
    st.builds(lambda s, n: o.FreezeAmount(AGENT, X, s, n, "order"), people, amounts),
    st.builds(lambda s, n: o.UnfreezeAmount(AGENT, X, s, n, "lifted"), people, amounts),
    st.builds(lambda s: o.FreezeAccount(AGENT, s, "order"), people),
    st.builds(lambda s: o.UnfreezeAccount(AGENT, s, "lifted"), people),
    st.builds(
        lambda s, r, n, f: o.ForcedTransfer(AGENT, X, s, r, n, f, "order"), people, people, amounts, st.booleans()
    ),
    st.builds(lambda: o.PauseAsset(ISSUER, X, "event")),
    st.builds(lambda: o.UnpauseAsset(ISSUER, X, "done")),
    st.builds(lambda s, r, n, m: ("settle", s, r, n, m), people, people, amounts, amounts),
    st.builds(lambda i, s, r, n: ("hold", i, s, r, n), st.integers(0, 3), people, people, amounts),
    st.builds(lambda i: o.ExecuteHold(AGENT, f"h{i}"), st.integers(0, 3)),
    st.builds(lambda i: o.ReleaseHold(AGENT, f"h{i}"), st.integers(0, 3)),
    st.builds(lambda w, c: SetClaim(KYC, w, c, 1, T0 + 400 * DAY), people, st.sampled_from(("CN", "HK", "SG", "US"))),
    st.builds(lambda w: RevokeClaim(KYC, w), people),
    st.builds(
        lambda i, k, dh, n, d: ("announce", i, k, dh, n, d),
        st.integers(0, 2),
        st.sampled_from((1, 1, 1, 2)),
        st.integers(0, 3),
        st.integers(1, 50),
        st.integers(1, 50),
    ),
    st.builds(lambda i, n: PayAction(ISSUER, f"a{i}", n), st.integers(0, 2), st.integers(1, 3)),
)


def materialize(chain: Chain, op: Any) -> tuple[Any, tuple[str, ...]]:
    """(operation, extra signers) for a drawn item."""
    if isinstance(op, tuple) and op[0] == "settle":
        _, seller, buyer, n, m = op
        legs = (o.SettlementLeg(X, seller, buyer, n), o.SettlementLeg(CASH, buyer, seller, m))
        return o.Settle(seller, f"s{chain.nonce}", chain.height + 5, legs), (buyer,)
    if isinstance(op, tuple) and op[0] == "announce":
        _, i, kind, dh, num, den = op
        return AnnounceAction(ISSUER, f"a{i}", kind, X, CASH, PAYER, ESCROW, chain.height + dh, num, den), (PAYER,)
    if isinstance(op, PayAction):
        return op, (PAYER,)
    if isinstance(op, tuple) and op[0] == "hold":
        _, i, sender, payee, n = op
        return o.CreateHold(sender, f"h{i}", X, sender, payee, AGENT, n, chain.time + 10 * DAY), ()
    return op, ()


def semantic_state(chain: Chain) -> dict[bytes, bytes]:
    """All state except the chain meta and the replay-protection entries (an included transaction is remembered
    as seen whether or not its operations were refused)."""
    return {k: v for k, v in chain.ledger.state.items() if k[:1] not in (b"M", b"T", b"E", b"e")}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rules=st.lists(st.sampled_from(RULE_POOL), max_size=5, unique=True),
    cash_rules=st.lists(st.sampled_from(RULE_POOL[:3]), max_size=1),
    countries=st.lists(st.sampled_from(("CN", "HK", "SG", "US")), min_size=3, max_size=3),
    steps=st.lists(st.tuples(op_strategy, st.integers(0, 3 * DAY)), min_size=1, max_size=20),
)
def test_random_operations_dry_run_equals_execution(
    rules: list[Any], cash_rules: list[Any], countries: list[str], steps: list[tuple[Any, int]]
) -> None:
    chain = Chain()
    singles = {r.name for r in rules if r.name in ("eligibility", "lockup")}
    rules = [r for r in rules if r.name not in singles] + [r for r in RULE_POOL if r.name in singles]
    blocks: list[tuple[list[Any], int]] = []

    def apply(op: Any, extra: tuple[str, ...], time: int) -> None:
        t = chain.tx(op, signers=extra)
        predicted = chain.ledger.dry_run(t, time)
        before = semantic_state(chain)
        (receipt,) = chain.block([t], time)
        blocks.append(([t], time))
        assert (predicted.code, predicted.failed_op, predicted.detail) == (
            receipt.code,
            receipt.failed_op,
            receipt.detail,
        )
        if receipt.code != 0:
            after = semantic_state(chain)
            assert after == before, f"refused tx (code {receipt.code}) changed state"

    claims = [*zip((A, B, C), countries), (PAYER, "SG")]
    for who, country in claims:
        chain.verify(who, country, T0 + 400 * DAY)
    apply(define(X, tuple(rules)), (), T0)
    apply(define(CASH, tuple(cash_rules)), (), T0)
    for who in (A, B, C):
        apply(o.Issue(ISSUER, X, who, 1000), (), T0)
        apply(o.Issue(ISSUER, CASH, who, 5000), (), T0)
    apply(o.Issue(ISSUER, CASH, PAYER, 10**9), (), T0)
    time = T0
    for item, dt in steps:
        time += dt
        op, extra = materialize(chain, item)
        apply(op, extra, time)
    # Determinism: the same blocks on a fresh ledger give the same state root.
    again = Chain()
    for who, country in claims:
        again.verify(who, country, T0 + 400 * DAY)
    for txs, t in blocks:
        again.ledger.apply(txs, t)
    assert again.ledger.root == chain.ledger.root
