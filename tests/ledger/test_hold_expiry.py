"""The hold expiry queue (ledger.hold_expiry) against a sorted list: any interleaving of schedules and takes gives
the due entries in (expires_at, hold) order, at most the limit, and leaves exactly the others (heap order kept)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import hold_expiry
from ledger.records import HoldQueueEntry
from ledger.state import MemoryState, Overlay
from ledger.state_keys import HOLD_QUEUE_KEY, hold_queue_entry_key

steps = st.lists(
    st.one_of(
        st.tuples(st.just("schedule"), st.integers(0, 40)),
        st.tuples(st.just("take"), st.integers(0, 50), st.integers(1, 6)),
    ),
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(steps)
def test_queue_matches_a_sorted_model(ops: list[tuple]) -> None:
    state = Overlay(MemoryState())
    model: list[tuple[int, str]] = []
    for n, op in enumerate(ops):
        if op[0] == "schedule":
            hold_id = f"h{n:03d}"
            hold_expiry.schedule(state, op[1], hold_id)
            model.append((op[1], hold_id))
        else:
            _, time, limit = op
            model.sort()
            expected = [e for e in model if e[0] <= time][:limit]
            got = hold_expiry.take_due(state, time, limit)
            assert [(e.expires_at, e.hold) for e in got] == expected
            model = [e for e in model if e not in expected]
        size = hold_expiry.size(state)
        assert size == len(model)
        entries = [state.get(hold_queue_entry_key(i)) for i in range(size)]
        assert sorted((e.expires_at, e.hold) for e in entries) == sorted(model)
        for i in range(1, size):
            parent = entries[(i - 1) // 2]
            assert (parent.expires_at, parent.hold) <= (entries[i].expires_at, entries[i].hold)
        assert state.get(hold_queue_entry_key(size)) is None
    if not model:
        assert state.get(HOLD_QUEUE_KEY) is None


def test_nothing_due_reads_one_entry_and_writes_nothing() -> None:
    state = Overlay(MemoryState())
    hold_expiry.schedule(state, 100, "later")
    below = Overlay(state)
    assert hold_expiry.take_due(below, 99, 10) == []
    assert dict(below.changes()) == {}
    assert hold_expiry.take_due(below, 100, 10) == [HoldQueueEntry(100, "later")]
