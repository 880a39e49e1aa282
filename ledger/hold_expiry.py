"""The hold expiry queue: every hold is released by the first block whose time reaches its expiry, with no
transaction (docs/protocol.md §4.7).

A hold expires by block time (`expires_at`, seconds). Block times are not known in advance, so a hold cannot be
filed under the height at which it will expire; the queue orders the holds by (expires_at, hold id) instead, as a
binary min-heap in the authenticated state:

    'Q'              HoldQueue(size)                      absent when the queue is empty
    'q' u64be(i)     HoldQueueEntry(expires_at, hold)     for i in 0 .. size - 1; no entry is greater than its
                                                          children 2i + 1 and 2i + 2

`schedule` files a hold when it is created: O(log n) reads and writes. `take_due(state, time, limit)` removes and
returns, smallest first, the entries whose expires_at is at or before `time`, at most `limit` of them: one read when
none is due, O(k log n) for k due ones. A hold executed or released before its expiry keeps its entry; the block
that reaches the expiry finds it no longer ordered and skips it. The order is total (hold ids are unique), so every
node releases the same holds in the same order.
"""

from __future__ import annotations

from ledger.records import HoldQueue, HoldQueueEntry
from ledger.state import Overlay
from ledger.state_keys import HOLD_QUEUE_KEY, hold_queue_entry_key

__all__ = ["schedule", "size", "take_due"]


def _order(entry: HoldQueueEntry) -> tuple[int, str]:
    return entry.expires_at, entry.hold


def _entry(state: Overlay, position: int) -> HoldQueueEntry:
    entry: HoldQueueEntry | None = state.get(hold_queue_entry_key(position))
    assert entry is not None, f"hold expiry queue has no entry at {position}"
    return entry


def size(state: Overlay) -> int:
    queue: HoldQueue | None = state.get(HOLD_QUEUE_KEY)
    return 0 if queue is None else queue.size


def schedule(state: Overlay, expires_at: int, hold_id: str) -> None:
    """File a new hold: it is due at the first block whose time is at least `expires_at`."""
    entry = HoldQueueEntry(expires_at, hold_id)
    n = size(state)
    position = n
    while position > 0:  # sift up
        parent = (position - 1) // 2
        above = _entry(state, parent)
        if _order(above) <= _order(entry):
            break
        state.put(hold_queue_entry_key(position), above)
        position = parent
    state.put(hold_queue_entry_key(position), entry)
    state.put(HOLD_QUEUE_KEY, HoldQueue(n + 1))


def take_due(state: Overlay, time: int, limit: int) -> list[HoldQueueEntry]:
    """Remove and return the entries due at `time` (expires_at <= time), smallest first, at most `limit`."""
    n = size(state)
    due: list[HoldQueueEntry] = []
    while n and len(due) < limit:
        top = _entry(state, 0)
        if top.expires_at > time:
            break
        due.append(top)
        n -= 1
        last = _entry(state, n)
        state.put(hold_queue_entry_key(n), None)
        if n:
            _sift_down(state, last, n)
    if due:
        state.put(HOLD_QUEUE_KEY, HoldQueue(n) if n else None)
    return due


def _sift_down(state: Overlay, entry: HoldQueueEntry, n: int) -> None:
    """Place `entry` at the root of a heap of `n` entries and move it down to where it belongs."""
    position = 0
    while True:
        child = 2 * position + 1
        if child >= n:
            break
        below = _entry(state, child)
        if child + 1 < n:
            right = _entry(state, child + 1)
            if _order(right) < _order(below):
                child, below = child + 1, right
        if _order(entry) <= _order(below):
            break
        state.put(hold_queue_entry_key(position), below)
        position = child
    state.put(hold_queue_entry_key(position), entry)
