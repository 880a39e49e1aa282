"""The holder index of every asset, kept by the engine after each successful movement (whatever the asset's rules).

- `HolderHead.holders`: accounts whose total (active + held + frozen) is non-zero now — what max_holders counts.
- Per-country counts of current holders, under the country an account had when it became a holder (so it leaves
  the same bucket it entered even if its claims change meanwhile).
- An append-only index of every account that ever held the asset (slot i -> account, first height). Corporate
  actions walk it in slot order; slots never move, so a payment cursor stays valid while holders come and go.
"""

from __future__ import annotations

from contracts.state import (
    Count,
    HolderEntry,
    HolderHead,
    HolderSlot,
    country_count_key,
    holder_entry_key,
    holder_head_key,
    holder_slot_key,
    read,
    write,
)
from ledger.rules import RuleState

__all__ = ["country_count", "entry", "head", "join", "leave", "slot"]

_EMPTY = HolderHead(0, 0)
MAX_SLOTS = 1 << 32


def head(state: RuleState, asset: str) -> HolderHead:
    h = read(state, holder_head_key(asset), HolderHead)
    return _EMPTY if h is None else h


def entry(state: RuleState, asset: str, account: str) -> HolderEntry | None:
    return read(state, holder_entry_key(asset, account), HolderEntry)


def slot(state: RuleState, asset: str, index: int) -> HolderSlot | None:
    return read(state, holder_slot_key(asset, index), HolderSlot)


def country_count(state: RuleState, asset: str, country: str) -> int:
    if not country:
        return 0
    c = read(state, country_count_key(asset, country), Count)
    return 0 if c is None else c.value


def _bump(state: RuleState, asset: str, country: str, delta: int) -> None:
    if not country:
        return
    n = country_count(state, asset, country) + delta
    assert n >= 0, "negative per-country holder count"
    write(state, country_count_key(asset, country), Count(n) if n else None)


def join(state: RuleState, asset: str, account: str, country: str, height: int) -> None:
    """`account`'s total went from zero to non-zero."""
    h = head(state, asset)
    e = entry(state, asset, account)
    assert e is None or not e.holding, "joining holder already counted"
    if e is None:
        assert h.slots < MAX_SLOTS
        write(state, holder_slot_key(asset, h.slots), HolderSlot(account, height))
        write(state, holder_entry_key(asset, account), HolderEntry(h.slots, country, True))
        h = HolderHead(h.holders + 1, h.slots + 1)
    else:
        write(state, holder_entry_key(asset, account), HolderEntry(e.index, country, True))
        h = HolderHead(h.holders + 1, h.slots)
    write(state, holder_head_key(asset), h)
    _bump(state, asset, country, 1)


def leave(state: RuleState, asset: str, account: str) -> None:
    """`account`'s total went from non-zero to zero."""
    h = head(state, asset)
    e = entry(state, asset, account)
    assert e is not None and e.holding and h.holders > 0, "leaving holder was not counted"
    write(state, holder_entry_key(asset, account), HolderEntry(e.index, "", False))
    write(state, holder_head_key(asset), HolderHead(h.holders - 1, h.slots))
    _bump(state, asset, e.country, -1)
