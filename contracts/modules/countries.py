"""`countries`: the recipient's country (from its identity claims, see contracts.claims) must be on the allow-list
and not on the block-list.

Parameters: allow = "CN,HK,SG" and/or block = "KP,IR" (at least one). With an allow-list, a recipient without a
valid claim stating a country is refused (COUNTRY_UNKNOWN). Applies to receiving movements and the hold payee;
forced transfers and migrations are exempt.
"""

from __future__ import annotations

from typing import ClassVar

from contracts import codes as cc
from contracts.modules.base import ALLOWED, RECEIVING, RuleContext
from contracts.params import Params, RuleConfigError
from ledger import rules as r
from ledger.operations import RuleSpec


class Countries:
    NAME: ClassVar[str] = "countries"
    SINGLE: ClassVar[bool] = False
    __slots__ = ("allow", "block")

    def __init__(self, allow: frozenset[str] | None, block: frozenset[str]) -> None:
        self.allow = allow
        self.block = block

    @classmethod
    def parse(cls, spec: RuleSpec, rule_id: bytes) -> Countries:
        p = Params(spec)
        allow = p.countries("allow")
        block = p.countries("block")
        p.finish()
        if not allow and not block:
            raise RuleConfigError(cc.RULE_PARAM_INVALID, "rule countries: needs an allow or a block list")
        return cls(frozenset(allow) if allow else None, frozenset(block))

    def check(self, ctx: RuleContext) -> tuple[int, str]:
        mv = ctx.mv
        if mv.recipient is None or not (mv.kind in RECEIVING or mv.kind == r.HOLD_CREATE):
            return ALLOWED
        country = ctx.country(mv.recipient)
        if country in self.block:
            return cc.COUNTRY_BLOCKED, f"recipient {mv.recipient}: country {country} is blocked for {mv.asset_id}"
        if self.allow is not None:
            if not country:
                return cc.COUNTRY_UNKNOWN, f"recipient {mv.recipient} has no valid claim stating a country"
            if country not in self.allow:
                return cc.COUNTRY_NOT_ALLOWED, f"recipient {mv.recipient}: country {country} is not allowed"
        return ALLOWED

    def on_success(self, ctx: RuleContext) -> None:
        return None
