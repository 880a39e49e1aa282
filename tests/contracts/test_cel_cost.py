"""CEL evaluation cost is bounded at attach time; machine-dependent failures never become a denial."""

from __future__ import annotations

import inspect
import sys
from typing import Any

import pytest

from contracts import cel
from contracts import codes as cc
from contracts.modules import cel_rule
from contracts.params import RuleConfigError
from ledger import operations as o
from tests.contracts.chain import AGENT, ISSUER, A, B, Chain, define, spec

X = "TOKEN-X"
DIGITS = "[0,1,2,3,4,5,6,7,8,9]"
# The review's example: 166 bytes, 10^5 body evaluations (about 30 s in cel-python) if it were ever evaluated.
NESTED = f"{DIGITS}.map(a,{DIGITS}.map(b,{DIGITS}.map(c,{DIGITS}.map(d,{DIGITS}.map(e,a+b+c+d+e))))).size()>0"


def refused(expr: str) -> int:
    with pytest.raises(RuleConfigError) as info:
        cel.compile_expression(expr)
    return info.value.code


def test_nested_comprehensions_refused_at_attach_time() -> None:
    assert len(NESTED.encode()) < cel.MAX_EXPR_BYTES
    assert refused(NESTED) == cc.CEL_FORBIDDEN
    # Through the ledger: the DefineAsset carrying the rule fails with the attach-time code.
    r = Chain().run(define(X, (spec("cel", expr=NESTED),)))
    assert r.code == cc.CEL_FORBIDDEN
    assert "may not nest" in r.detail


@pytest.mark.parametrize(
    "expr",
    [
        "[1, 2].all(x, [1].exists(y, y == x))",  # macro in a body
        "[1, 2].map(x, x).map(y, y).size() > 0",  # macro in a range (chained: values could double per link)
        "[1, 2].filter(x, x > 1).all(y, y > 0)",
        "asset.agents.exists(a, asset.agents.exists(b, a == b))",
    ],
)
def test_any_nesting_refused(expr: str) -> None:
    assert refused(expr) == cc.CEL_FORBIDDEN


@pytest.mark.parametrize(
    "expr",
    [
        "sender.id.all(c, true)",  # a string: cel-python iterates its characters
        "[[1, 2]][0].all(x, x > 0)",  # an index
        "sender.keys.all(x, true)",  # a field that is not a bounded context list
        "([1] - [1]).all(x, true)",
        "(true ? [1] : sender.id).all(x, true)",
    ],
)
def test_unbounded_ranges_refused(expr: str) -> None:
    assert refused(expr) == cc.CEL_FORBIDDEN


def literal(n: int) -> str:
    return "[" + ",".join(["7"] * n) + "]"


def test_cost_is_nodes_plus_range_size_times_body() -> None:
    def cost(n: int, body: str) -> int:
        return cel.compile_expression(f"{literal(n)}.all(x, {body})").cost

    small, big = "true", "x >= 0 && x < 9"
    step_small = cost(20, small) - cost(10, small)
    step_big = cost(20, big) - cost(10, big)
    assert cost(30, big) - cost(20, big) == step_big  # linear in the range size
    assert (step_big - step_small) % 10 == 0
    d = (step_big - step_small) // 10  # body nodes added: charged once per element
    assert d > 0
    assert cost(10, big) - cost(10, small) == 11 * d  # once as nodes, ten times as iterations
    agents = cel.compile_expression(f"asset.agents.all(x, {big})").cost
    either = cel.compile_expression(f"(amount > 0 ? {literal(10)} : asset.agents).all(x, {big})").cost
    assert cel.RANGE_BOUNDS[("asset", "agents")] == 16
    assert either > agents  # the larger branch (16 agents) is charged


def budget_expr(n: int) -> str:
    """A single macro over an n-element literal list."""
    return "[" + ",".join(["1"] * n) + "].all(x, x + x + x > 0)"


def test_budget_boundary() -> None:
    """The largest list this rule shape accepts is refused with one more element, with CEL_TOO_LARGE."""
    n = 1
    while True:
        try:
            cel.compile_expression(budget_expr(n + 1))
        except RuleConfigError as exc:
            assert exc.code == cc.CEL_TOO_LARGE
            assert str(cel.MAX_COST) in exc.message
            break
        n += 1
    assert n >= 10
    accepted = cel.compile_expression(budget_expr(n))
    assert accepted.cost <= cel.MAX_COST
    assert len(budget_expr(n + 1).encode()) < cel.MAX_EXPR_BYTES  # refused by cost, not by size
    assert cel.evaluate(accepted.runner, {}) == (True, "")


def test_single_level_macros_over_context_in_the_ledger() -> None:
    chain = Chain()
    rule = (
        "kind == 'issue' || "
        "(asset.agents.all(a, a != recipient.id) && sender.exists(k, k == 'country') && "
        "(amount <= 100 || [ 'alice@bank-b', 'carol@bank-b' ].exists_one(s, s == sender.id)))"
    )
    chain.ok(define(X, (spec("cel", expr=rule),)))
    chain.ok(o.Issue(ISSUER, X, A, 1000))
    chain.ok(o.Issue(ISSUER, X, B, 1000))
    assert chain.run(o.Transfer(A, X, (o.TransferLeg(AGENT, 1),))).code == cc.CEL_DENIED
    chain.ok(o.Transfer(A, X, (o.TransferLeg(B, 500),)))
    assert chain.run(o.Transfer(B, X, (o.TransferLeg(A, 101),))).code == cc.CEL_DENIED
    chain.ok(o.Transfer(B, X, (o.TransferLeg(A, 100),)))


def test_context_maps_match_their_declared_bounds() -> None:
    """RANGE_BOUNDS is what the cost bound trusts: the maps have exactly that many keys."""
    side = cel_rule._side(None, None)  # type: ignore[arg-type]  # an absent side reads nothing from the context
    assert len(side) == cel.RANGE_BOUNDS[("sender",)] == cel.RANGE_BOUNDS[("recipient",)]
    chain = Chain()
    n_asset = cel.RANGE_BOUNDS[("asset",)]
    chain.ok(define(X, (spec("cel", expr=f"size(asset) == {n_asset} && size(sender) == {len(side)}"),)))
    chain.ok(o.Issue(ISSUER, X, A, 10))


class Raising:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc

    def evaluate(self, activation: dict[str, Any]) -> Any:
        raise self.exc


@pytest.mark.parametrize("exc", [MemoryError(), RecursionError("maximum recursion depth exceeded")])
def test_machine_dependent_failures_propagate(exc: BaseException) -> None:
    with pytest.raises(type(exc)):
        cel.evaluate(Raising(exc), {})  # type: ignore[arg-type]


def test_expression_failures_still_deny() -> None:
    ok, why = cel.evaluate(Raising(ValueError("bad")), {})  # type: ignore[arg-type]
    assert ok is None
    assert why.startswith("ValueError")


def test_attach_does_not_depend_on_stack_depth() -> None:
    """Parsing and the checks are iterative: the deepest expression the byte limit allows is refused the same way
    with only a few frames of stack left (a RecursionError would propagate, never become a refusal)."""
    expr = "(" * 500 + "amount" + ")" * 500 + " > 0"
    assert len(expr) < cel.MAX_EXPR_BYTES

    def at_depth(k: int) -> int:
        return at_depth(k - 1) if k else refused(expr)

    free = sys.getrecursionlimit() - len(inspect.stack(0)) - 100
    assert at_depth(free) == cc.CEL_TOO_LARGE
