"""`max_holders`: at most `total` accounts hold the asset at once, and at most N per country.

Parameters: total (optional), per_country = "CN=100,HK=50" (optional; countries not listed are unlimited; at least
one of the two). A holder is an account with a non-zero total (active + held + frozen). The count is exact for the
movement: a transfer of a sender's whole position to a new holder does not change it. Counts come from the
engine's holder index (contracts.holders), kept for every asset whether or not this rule is attached.
Forced transfers and migrations are exempt.
"""

from __future__ import annotations

from typing import ClassVar

from contracts import codes as cc
from contracts import holders
from contracts.modules.base import ALLOWED, RECEIVING, SENDER_DECREASES, RuleContext
from contracts.params import Params, RuleConfigError
from ledger.operations import RuleSpec


class MaxHolders:
    NAME: ClassVar[str] = "max_holders"
    SINGLE: ClassVar[bool] = False
    __slots__ = ("per_country", "total")

    def __init__(self, total: int | None, per_country: dict[str, int]) -> None:
        self.total = total
        self.per_country = per_country

    @classmethod
    def parse(cls, spec: RuleSpec, rule_id: bytes) -> MaxHolders:
        p = Params(spec)
        total = p.opt_int("total", 1)
        per_country = dict(p.country_limits("per_country"))
        p.finish()
        if total is None and not per_country:
            raise RuleConfigError(cc.RULE_PARAM_INVALID, "rule max_holders: needs total and/or per_country")
        return cls(total, per_country)

    def check(self, ctx: RuleContext) -> tuple[int, str]:
        mv = ctx.mv
        if mv.recipient is None or mv.kind not in RECEIVING or ctx.total(mv.recipient) != 0:
            return ALLOWED
        sender_leaves = mv.sender is not None and mv.kind in SENDER_DECREASES and ctx.total(mv.sender) == mv.amount
        if self.total is not None:
            after = holders.head(ctx.state, mv.asset_id).holders + 1 - int(sender_leaves)
            if after > self.total:
                return cc.MAX_HOLDERS_REACHED, f"{mv.asset_id} would have {after} holders > {self.total}"
        if self.per_country:
            country = ctx.country(mv.recipient)
            limit = self.per_country.get(country)
            if limit is not None:
                after = holders.country_count(ctx.state, mv.asset_id, country) + 1
                if sender_leaves:
                    assert mv.sender is not None
                    e = holders.entry(ctx.state, mv.asset_id, mv.sender)
                    if e is not None and e.country == country:
                        after -= 1
                if after > limit:
                    return (
                        cc.MAX_HOLDERS_PER_COUNTRY_REACHED,
                        f"{mv.asset_id} would have {after} holders in {country} > {limit}",
                    )
        return ALLOWED

    def on_success(self, ctx: RuleContext) -> None:
        return None
