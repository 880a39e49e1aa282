"""`window_limit`: rolling time-window limits on what one identity sends.

Parameters: seconds (window length, 1 .. 400 days), max_amount and/or max_count. The identity is the sending
account (an account is one identity on this ledger). Counted movements: transfers, settlement legs, hold
executions and distribution payments sent by the account; forced transfers and migrations are exempt and not
counted. A movement at time t is refused if the account's volume (or count) over (t − seconds, t], plus this
movement, would exceed the limit. Several window rules may be attached (e.g. daily and monthly); each keeps its own
history, keyed by the rule's id (a hash of its name and parameters — changing the parameters starts afresh).
History is bounded: entries at the same block time are merged; beyond MAX_WINDOW_ENTRIES the two oldest are merged
into the later time (they then count for longer, never shorter).
"""

from __future__ import annotations

from typing import ClassVar

from contracts import codes as cc
from contracts.modules.base import ALLOWED, DISTRIBUTION, RuleContext
from contracts.params import Params, RuleConfigError
from contracts.state import MAX_WINDOW_ENTRIES, Window, WindowEntry, read, window_key, write
from ledger import rules as r
from ledger.operations import RuleSpec

COUNTED = frozenset({r.TRANSFER, r.SETTLEMENT_LEG, r.HOLD_EXECUTE, DISTRIBUTION})
MAX_WINDOW_SECONDS = 400 * 86_400


class WindowLimit:
    NAME: ClassVar[str] = "window_limit"
    SINGLE: ClassVar[bool] = False
    __slots__ = ("max_amount", "max_count", "rule_id", "seconds")

    def __init__(self, rule_id: bytes, seconds: int, max_amount: int | None, max_count: int | None) -> None:
        self.rule_id = rule_id
        self.seconds = seconds
        self.max_amount = max_amount
        self.max_count = max_count

    @classmethod
    def parse(cls, spec: RuleSpec, rule_id: bytes) -> WindowLimit:
        p = Params(spec)
        seconds = p.int("seconds", None, 1, MAX_WINDOW_SECONDS)
        max_amount = p.opt_int("max_amount", 1)
        max_count = p.opt_int("max_count", 1, 1 << 32)
        p.finish()
        if max_amount is None and max_count is None:
            raise RuleConfigError(cc.RULE_PARAM_INVALID, "rule window_limit: needs max_amount and/or max_count")
        return cls(rule_id, seconds, max_amount, max_count)

    def _entries(self, ctx: RuleContext, account: str) -> list[WindowEntry]:
        w = read(ctx.state, window_key(ctx.mv.asset_id, self.rule_id, account), Window)
        start = ctx.mv.time - self.seconds
        return [] if w is None else [e for e in w.entries if e.time > start]

    def check(self, ctx: RuleContext) -> tuple[int, str]:
        mv = ctx.mv
        if mv.sender is None or mv.kind not in COUNTED:
            return ALLOWED
        entries = self._entries(ctx, mv.sender)
        if self.max_amount is not None:
            volume = sum(e.amount for e in entries) + mv.amount
            if volume > self.max_amount:
                return (
                    cc.WINDOW_VOLUME_EXCEEDED,
                    f"{mv.sender} would send {volume} {mv.asset_id} within {self.seconds}s > {self.max_amount}",
                )
        if self.max_count is not None:
            count = sum(e.count for e in entries) + 1
            if count > self.max_count:
                return (
                    cc.WINDOW_COUNT_EXCEEDED,
                    f"{mv.sender} would make {count} transfers of {mv.asset_id} within {self.seconds}s",
                )
        return ALLOWED

    def on_success(self, ctx: RuleContext) -> None:
        mv = ctx.mv
        if mv.sender is None or mv.kind not in COUNTED:
            return
        entries = self._entries(ctx, mv.sender)
        if entries and entries[-1].time == mv.time:
            last = entries[-1]
            entries[-1] = WindowEntry(last.time, last.amount + mv.amount, last.count + 1)
        else:
            entries.append(WindowEntry(mv.time, mv.amount, 1))
        while len(entries) > MAX_WINDOW_ENTRIES:
            a, b = entries[0], entries[1]
            entries[:2] = [WindowEntry(b.time, a.amount + b.amount, a.count + b.count)]
        write(ctx.state, window_key(mv.asset_id, self.rule_id, mv.sender), Window(tuple(entries)))
