"""`max_holders`: at most `total` accounts hold the asset at once, and at most N per country.

Parameters: total (optional), per_country = "CN=100,HK=50" (optional; countries not listed are unlimited; at least
one of the two). A holder is an account with a non-zero total (active + held + frozen). The rule is decided on the
transaction's end state (an EndStateRule), not leg by leg: when a receiving movement of the transaction made an
account a holder (it held nothing when the transaction began and holds units at its end), the asset's holder count
(and that account's country count) at the end may not exceed the limit. So a transfer of a sender's whole position
to a new holder does not change the count, and the verdict is the same whatever the order of the legs. Counts come
from the engine's holder index (contracts.holders), kept for every asset whether or not this rule is attached.
Forced transfers and migrations are exempt (they are not receiving movements).
"""

from __future__ import annotations

from typing import ClassVar

from contracts import codes as cc
from contracts import holders
from contracts.modules.base import ALLOWED, END_ALLOWED, RECEIVING, RuleContext
from contracts.params import Params, RuleConfigError
from ledger.operations import RuleSpec
from ledger.rules import Movement, RuleState


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
        return ALLOWED

    def check_end(self, asset_id: str, movements: tuple[Movement, ...], state: RuleState) -> tuple[int, str, int]:
        joined: dict[str, int] = {}  # account that became a holder -> the operation of its first receipt
        for mv in movements:
            account = mv.recipient
            if account is None or mv.kind not in RECEIVING or account in joined:
                continue
            before, after = state.balance_before(asset_id, account), state.balance(asset_id, account)
            if (before is None or before.total == 0) and after is not None and after.total != 0:
                joined[account] = mv.op_index
        if not joined:
            return END_ALLOWED
        if self.total is not None:
            count = holders.head(state, asset_id).holders
            if count > self.total:
                return cc.MAX_HOLDERS_REACHED, f"{asset_id} would have {count} holders > {self.total}", min(
                    joined.values()
                )
        for account, op_index in joined.items():
            e = holders.entry(state, asset_id, account)
            assert e is not None and e.holding, "a new holder is in the holder index"
            limit = self.per_country.get(e.country)
            if limit is not None:
                count = holders.country_count(state, asset_id, e.country)
                if count > limit:
                    return (
                        cc.MAX_HOLDERS_PER_COUNTRY_REACHED,
                        f"{asset_id} would have {count} holders in {e.country} > {limit}",
                        op_index,
                    )
        return END_ALLOWED

    def on_success(self, ctx: RuleContext) -> None:
        return None
