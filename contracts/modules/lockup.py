"""`lockup`: units issued are locked for `seconds` from their issuance (one lot per issue).

Parameter: seconds (1 .. 100 years). At most one lockup rule per asset; lots are recorded from the moment the
rule is attached.

Semantics (docs/contracts.md, "Lock-up"):
- A holder's locked amount is the sum of its lots whose unlock time is after the block time (capped at its total).
- A voluntary outgoing movement (transfer, settlement leg, hold creation, redemption, distribution payment) may
  take at most total − held − locked units: units in holds were unlocked when the hold was created, and a partial
  freeze overlaps locked units first (the ledger separately limits the movement to the active balance).
- Units leave an account in unlock order (FIFO): free units first, then lots by ascending unlock time. A lot
  that is still locked when it leaves (only possible in forced transfers, migrations, or hold executions after an
  agent action) travels with its units: the recipient gets a lot with the same unlock time. Units received by an
  ordinary transfer were unlocked when they left, so they arrive free.
- Units redeemed simply disappear with their lots.
- Expired lots are dropped whenever the account's lots are rewritten. If a recipient would exceed MAX_LOTS, its
  earliest-unlocking lot is merged into the next one (those units then unlock later, never earlier).
"""

from __future__ import annotations

from typing import ClassVar

from contracts import codes as cc
from contracts.modules.base import ALLOWED, SENDER_DECREASES, VOLUNTARY_OUT, RuleContext
from contracts.params import Params
from contracts.state import MAX_LOTS, Lot, Lots, lots_key, read, write
from ledger import rules as r
from ledger.operations import RuleSpec
from ledger.rules import RuleState

MAX_LOCK_SECONDS = 100 * 366 * 86_400


def read_lots(state: RuleState, asset: str, account: str, now: int) -> list[Lot]:
    """The account's lots still locked at `now`, ascending by unlock time."""
    lots = read(state, lots_key(asset, account), Lots)
    return [] if lots is None else [lot for lot in lots.lots if lot.unlock_at > now]


def locked_amount(state: RuleState, asset: str, account: str, now: int, total: int) -> int:
    return min(total, sum(lot.amount for lot in read_lots(state, asset, account, now)))


def _merge(lots: list[Lot]) -> list[Lot]:
    by_time: dict[int, int] = {}
    for lot in lots:
        by_time[lot.unlock_at] = by_time.get(lot.unlock_at, 0) + lot.amount
    merged = [Lot(t, a) for t, a in sorted(by_time.items())]
    while len(merged) > MAX_LOTS:
        first, second = merged[0], merged[1]
        merged[:2] = [Lot(second.unlock_at, first.amount + second.amount)]
    return merged


def _store(state: RuleState, asset: str, account: str, lots: list[Lot]) -> None:
    write(state, lots_key(asset, account), Lots(tuple(lots)) if lots else None)


def take_fifo(lots: list[Lot], free: int, amount: int) -> tuple[list[Lot], list[Lot]]:
    """Take `amount` units: first from `free` untracked units, then lots in ascending unlock order.
    Returns (remaining lots, lots taken)."""
    need = max(0, amount - free)
    remaining: list[Lot] = []
    taken: list[Lot] = []
    for lot in lots:
        if need == 0:
            remaining.append(lot)
        elif lot.amount <= need:
            taken.append(lot)
            need -= lot.amount
        else:
            taken.append(Lot(lot.unlock_at, need))
            remaining.append(Lot(lot.unlock_at, lot.amount - need))
            need = 0
    return remaining, taken


class Lockup:
    NAME: ClassVar[str] = "lockup"
    SINGLE: ClassVar[bool] = True
    __slots__ = ("seconds",)

    def __init__(self, seconds: int) -> None:
        self.seconds = seconds

    @classmethod
    def parse(cls, spec: RuleSpec, rule_id: bytes) -> Lockup:
        p = Params(spec)
        out = cls(p.int("seconds", None, 1, MAX_LOCK_SECONDS))
        p.finish()
        return out

    def check(self, ctx: RuleContext) -> tuple[int, str]:
        mv = ctx.mv
        if mv.kind == r.ISSUE:
            assert mv.recipient is not None
            lots = read_lots(ctx.state, mv.asset_id, mv.recipient, mv.time)
            unlock = mv.time + self.seconds
            if len(lots) >= MAX_LOTS and all(lot.unlock_at != unlock for lot in lots):
                return cc.LOCKUP_LOT_LIMIT, f"{mv.recipient} has {MAX_LOTS} locked lots of {mv.asset_id}"
            return ALLOWED
        if mv.sender is None or mv.kind not in VOLUNTARY_OUT:
            return ALLOWED
        bal = ctx.balance(mv.sender)
        locked = locked_amount(ctx.state, mv.asset_id, mv.sender, mv.time, bal.total)
        movable = max(0, bal.total - bal.held - locked)
        if mv.amount > movable and locked:
            lots = read_lots(ctx.state, mv.asset_id, mv.sender, mv.time)
            return (
                cc.UNITS_LOCKED,
                (
                    f"{mv.sender}: {locked} {mv.asset_id} locked (next unlock at {lots[0].unlock_at}), "
                    f"{movable} movable, {mv.amount} requested"
                ),
            )
        return ALLOWED

    def on_success(self, ctx: RuleContext) -> None:
        mv = ctx.mv
        if mv.kind == r.ISSUE:
            assert mv.recipient is not None
            lots = read_lots(ctx.state, mv.asset_id, mv.recipient, mv.time)
            lots.append(Lot(mv.time + self.seconds, mv.amount))
            _store(ctx.state, mv.asset_id, mv.recipient, _merge(lots))
            return
        if mv.sender is None or mv.kind not in SENDER_DECREASES:
            return
        lots = read_lots(ctx.state, mv.asset_id, mv.sender, mv.time)
        if not lots:
            return
        before = ctx.total(mv.sender) + mv.amount
        free = max(0, before - sum(lot.amount for lot in lots))
        remaining, taken = take_fifo(lots, free, mv.amount)
        _store(ctx.state, mv.asset_id, mv.sender, remaining)
        if taken and mv.recipient is not None:
            theirs = read_lots(ctx.state, mv.asset_id, mv.recipient, mv.time)
            _store(ctx.state, mv.asset_id, mv.recipient, _merge(theirs + taken))
