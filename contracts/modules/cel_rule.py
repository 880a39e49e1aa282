"""`cel`: a custom rule, a CEL expression over the movement's context that must evaluate to true.

Parameter: expr (the expression, compiled and checked when attached; see contracts.cel and docs/contracts.md
"Custom rules in CEL" for the variables). Applies to every movement kind; the expression can test `kind` and
`forced` itself.
"""

from __future__ import annotations

from typing import Any, ClassVar

from contracts import codes as cc
from contracts import holders
from contracts.cel import RANGE_BOUNDS, Compiled, compile_expression, decide, plain
from contracts.claims import valid_claim
from contracts.modules.base import ALLOWED, MATURITY_REDEMPTION, RuleContext
from contracts.params import Params
from ledger.operations import RuleSpec


def _side(ctx: RuleContext, account: str | None) -> dict[str, Any]:
    if account is None:
        return {
            "id": "",
            "exists": False,
            "balance": 0,
            "available": 0,
            "held": 0,
            "frozen": 0,
            "account_frozen": False,
            "verified": False,
            "country": "",
            "level": 0,
        }
    bal = ctx.balance(account)
    acct = ctx.state.account(account)
    claim, _ = valid_claim(ctx.claims(account), ctx.providers, ctx.mv.time)
    return {
        "id": account,
        "exists": acct is not None,
        "balance": bal.total,
        "available": bal.available,
        "held": bal.held,
        "frozen": bal.frozen,
        "account_frozen": bool(acct is not None and acct.frozen),
        "verified": claim is not None,
        "country": "" if claim is None else claim.country,
        "level": 0 if claim is None else claim.level,
    }


def _asset(ctx: RuleContext) -> dict[str, Any]:
    mv = ctx.mv
    status = ctx.state.asset_status(mv.asset_id)
    return {
        "id": mv.asset_id,
        "issuer": mv.asset.issuer,
        "decimals": mv.asset.decimals,
        "outstanding": 0 if status is None else status.outstanding,
        "holders": holders.head(ctx.state, mv.asset_id).holders,
        "agents": list(mv.asset.agents),
    }


def variable(ctx: RuleContext, name: str) -> Any:
    """One CEL context variable for this movement (docs/contracts.md), as a plain value."""
    mv = ctx.mv
    if name == "sender":
        return _side(ctx, mv.sender)
    if name == "recipient":
        return _side(ctx, mv.recipient)
    if name == "asset":
        return _asset(ctx)
    if name == "forced":
        return mv.forced or mv.kind == MATURITY_REDEMPTION
    if name == "actor":
        return mv.actor
    return {"kind": mv.kind, "amount": mv.amount, "height": mv.height, "time": mv.time}[name]


def _assert_range_bounds(name: str, value: Any) -> None:
    """The attach-time cost bound (contracts.cel.RANGE_BOUNDS) relies on these sizes."""
    for path, bound in RANGE_BOUNDS.items():
        if path[0] == name:
            inner = value
            for key in path[1:]:
                inner = inner[key]
            assert len(inner) <= bound, f"CEL context {'.'.join(path)} has {len(inner)} elements > {bound}"


def activation(ctx: RuleContext, names: frozenset[str]) -> dict[str, Any]:
    """The context values of `names` (checked plain values, contracts.cel.plain), built once per movement and shared
    by all CEL rules of the asset."""
    cache = ctx.cel_activation
    if cache is None:
        cache = ctx.cel_activation = {}
    for name in sorted(names):  # a fixed order: with two bad values, every node reports the same one
        if name not in cache:
            value = variable(ctx, name)
            _assert_range_bounds(name, value)
            cache[name] = plain(value)
    return {name: cache[name] for name in names}


class CelRule:
    NAME: ClassVar[str] = "cel"
    SINGLE: ClassVar[bool] = False
    __slots__ = ("compiled", "expr")

    def __init__(self, expr: str, compiled: Compiled) -> None:
        self.expr = expr
        self.compiled = compiled

    @classmethod
    def parse(cls, spec: RuleSpec, rule_id: bytes) -> CelRule:
        p = Params(spec)
        expr = p.str("expr")
        p.finish()
        return cls(expr, compile_expression(expr))

    def check(self, ctx: RuleContext) -> tuple[int, str]:
        try:
            act = activation(ctx, self.compiled.names)
        except ValueError as exc:
            return cc.CEL_EVAL_ERROR, f"custom rule context: {exc}"
        ok, why = decide(self.compiled, act)  # MemoryError / RecursionError propagate (not a denial)
        if ok is None:
            return cc.CEL_EVAL_ERROR, f"custom rule {self.expr[:60]!r}: {why}"
        if not ok:
            return cc.CEL_DENIED, f"custom rule {self.expr[:80]!r} is false"
        return ALLOWED

    def on_success(self, ctx: RuleContext) -> None:
        return None
