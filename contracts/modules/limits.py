"""`max_balance` and `transfer_amount`: per-holder position limit and per-movement amount limits.

max_balance (parameter max): an account that receives units in a transaction (a receiving movement) may not hold
more than `max` in total (active + held + frozen) at the transaction's end. It is decided on the end state (an
EndStateRule), so a transaction that passes units through an account gets the same verdict whatever the order of
its operations. transfer_amount (parameters min and/or max): the amount of a transfer, settlement leg or hold must be
within [min, max]. Issues, redemptions, forced transfers and migrations are not limited by transfer_amount.
"""

from __future__ import annotations

from typing import ClassVar

from contracts import codes as cc
from contracts.modules.base import ALLOWED, END_ALLOWED, RECEIVING, RuleContext
from contracts.params import Params, RuleConfigError
from ledger import rules as r
from ledger.operations import RuleSpec
from ledger.rules import Movement, RuleState

AMOUNT_KINDS = frozenset({r.TRANSFER, r.SETTLEMENT_LEG, r.HOLD_CREATE})


class MaxBalance:
    NAME: ClassVar[str] = "max_balance"
    SINGLE: ClassVar[bool] = False
    __slots__ = ("max",)

    def __init__(self, maximum: int) -> None:
        self.max = maximum

    @classmethod
    def parse(cls, spec: RuleSpec, rule_id: bytes) -> MaxBalance:
        p = Params(spec)
        out = cls(p.int("max", None, 1))
        p.finish()
        return out

    def check(self, ctx: RuleContext) -> tuple[int, str]:
        return ALLOWED

    def check_end(self, asset_id: str, movements: tuple[Movement, ...], state: RuleState) -> tuple[int, str, int]:
        checked: set[str] = set()
        for mv in movements:
            account = mv.recipient
            if account is None or mv.kind not in RECEIVING or account in checked:
                continue
            checked.add(account)
            bal = state.balance(asset_id, account)
            total = 0 if bal is None else bal.total
            if total > self.max:
                return cc.MAX_BALANCE_EXCEEDED, f"{account} would hold {total} {asset_id} > {self.max}", mv.op_index
        return END_ALLOWED

    def on_success(self, ctx: RuleContext) -> None:
        return None


class TransferAmount:
    NAME: ClassVar[str] = "transfer_amount"
    SINGLE: ClassVar[bool] = False
    __slots__ = ("max", "min")

    def __init__(self, minimum: int | None, maximum: int | None) -> None:
        self.min = minimum
        self.max = maximum

    @classmethod
    def parse(cls, spec: RuleSpec, rule_id: bytes) -> TransferAmount:
        p = Params(spec)
        lo = p.opt_int("min", 1)
        hi = p.opt_int("max", 1)
        p.finish()
        if lo is None and hi is None:
            raise RuleConfigError(cc.RULE_PARAM_INVALID, "rule transfer_amount: needs min and/or max")
        if lo is not None and hi is not None and lo > hi:
            raise RuleConfigError(cc.RULE_PARAM_INVALID, "rule transfer_amount: min > max")
        return cls(lo, hi)

    def check(self, ctx: RuleContext) -> tuple[int, str]:
        mv = ctx.mv
        if mv.kind not in AMOUNT_KINDS:
            return ALLOWED
        if self.min is not None and mv.amount < self.min:
            return cc.AMOUNT_BELOW_MINIMUM, f"amount {mv.amount} < minimum {self.min}"
        if self.max is not None and mv.amount > self.max:
            return cc.AMOUNT_ABOVE_MAXIMUM, f"amount {mv.amount} > maximum {self.max}"
        return ALLOWED

    def on_success(self, ctx: RuleContext) -> None:
        return None
