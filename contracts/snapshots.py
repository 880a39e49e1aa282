"""Balances and supply at record heights, ERC20Snapshot style.

A corporate action registers its record height R (R >= the current height) with `add_snapshot`. After that, the
first time an account's total balance of the asset changes in a block after R, the engine stores a checkpoint
(R, total before the change) — lazily, in on_success; accounts that do not move pay nothing. The asset's
outstanding supply is checkpointed the same way on issue and redemption.

The value at R is the first checkpoint at a height >= R, or, if there is none, the current value (nothing changed
since R). "At R" means after all of block R's transactions. Queries need R to be registered and final (R < the
current height).
"""

from __future__ import annotations

from bisect import bisect_left

from contracts import codes as cc
from contracts.state import (
    MAX_SNAPSHOTS,
    Checkpoint,
    Checkpoints,
    Snapshots,
    checkpoints_key,
    read,
    snapshots_key,
    supply_checkpoints_key,
    write,
)
from ledger import codes
from ledger.rules import RuleState

__all__ = ["add_snapshot", "balance_at", "heights", "on_change", "supply_at"]


def heights(state: RuleState, asset: str) -> tuple[int, ...]:
    s = read(state, snapshots_key(asset), Snapshots)
    return () if s is None else s.heights


def add_snapshot(state: RuleState, asset: str, record_height: int, current_height: int) -> tuple[int, str]:
    if record_height < current_height:
        return cc.RECORD_HEIGHT_PASSED, f"record height {record_height} < current height {current_height}"
    hs = heights(state, asset)
    if record_height in hs:
        return codes.OK, ""
    if len(hs) >= MAX_SNAPSHOTS:
        return cc.SNAPSHOT_LIMIT, f"{asset} already has {MAX_SNAPSHOTS} record heights"
    write(state, snapshots_key(asset), Snapshots(tuple(sorted((*hs, record_height)))))
    return codes.OK, ""


def _latest_past(hs: tuple[int, ...], height: int) -> int | None:
    i = bisect_left(hs, height)  # hs[:i] < height
    return hs[i - 1] if i else None


def _checkpoint(state: RuleState, key: bytes, record: int, before: int) -> None:
    cps = read(state, key, Checkpoints)
    points = () if cps is None else cps.points
    if points and points[-1].height >= record:
        return
    write(state, key, Checkpoints((*points, Checkpoint(record, before))))


def on_change(
    state: RuleState,
    asset: str,
    height: int,
    changes: tuple[tuple[str, int], ...],
    supply_before: int | None,
) -> None:
    """Record checkpoints for accounts whose total changed in a block at `height` ((account, total before) pairs)
    and, on issue/redemption, for the supply (its outstanding amount before the change)."""
    hs = heights(state, asset)
    if not hs:
        return
    record = _latest_past(hs, height)
    if record is None:
        return
    for account, before in changes:
        _checkpoint(state, checkpoints_key(asset, account), record, before)
    if supply_before is not None:
        _checkpoint(state, supply_checkpoints_key(asset), record, supply_before)


def _value_at(cps: Checkpoints | None, record: int) -> int | None:
    if cps is None:
        return None
    points = cps.points
    lo, hi = 0, len(points)
    while lo < hi:
        mid = (lo + hi) // 2
        if points[mid].height < record:
            lo = mid + 1
        else:
            hi = mid
    return points[lo].value if lo < len(points) else None


def _require_final(state: RuleState, asset: str, record: int, current_height: int) -> None:
    assert record in heights(state, asset), f"record height {record} of {asset} was never registered"
    assert record < current_height, "record height is not final"


def balance_at(state: RuleState, asset: str, account: str, record: int, current_height: int) -> int:
    """The account's total balance of `asset` after block `record`."""
    _require_final(state, asset, record, current_height)
    v = _value_at(read(state, checkpoints_key(asset, account), Checkpoints), record)
    if v is not None:
        return v
    bal = state.balance(asset, account)
    return 0 if bal is None else bal.total


def supply_at(state: RuleState, asset: str, record: int, current_height: int) -> int:
    """The outstanding supply of `asset` after block `record`."""
    _require_final(state, asset, record, current_height)
    v = _value_at(read(state, supply_checkpoints_key(asset), Checkpoints), record)
    if v is not None:
        return v
    status = state.asset_status(asset)
    return 0 if status is None else status.outstanding
