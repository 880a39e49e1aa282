"""Where block sync's group commit ends a group (node/validator/node.py, sync_group_ends): at SYNC_GROUP_BLOCKS
blocks, at SYNC_GROUP_BYTES of payloads, and at a height where a snapshot is taken (the snapshot reads the store as
that block's commit leaves it: a group going past it would leave the head beyond and the snapshot would be lost)."""

from __future__ import annotations

import pytest

from ledger.store import MAX_GROUP_COMMIT_BLOCKS, LedgerStore
from node.chain.snapshots import SnapshotStore, SnapshotTaker
from node.validator.node import SYNC_GROUP_BLOCKS, SYNC_GROUP_BYTES, sync_group_ends


@pytest.fixture
def taker(tmp_path):
    store = LedgerStore.open(str(tmp_path / "ledger"))
    try:
        yield SnapshotTaker(store, SnapshotStore(str(tmp_path / "snapshots")), 10, epoch_of=lambda: 0)
    finally:
        store.close()


def test_a_group_ends_at_its_bounds() -> None:
    assert SYNC_GROUP_BLOCKS <= MAX_GROUP_COMMIT_BLOCKS  # what the store takes in one write
    assert not sync_group_ends(1, 0, 7, None)
    assert not sync_group_ends(SYNC_GROUP_BLOCKS - 1, SYNC_GROUP_BYTES - 1, 7, None)
    assert sync_group_ends(SYNC_GROUP_BLOCKS, 0, 7, None)
    assert sync_group_ends(3, SYNC_GROUP_BYTES, 7, None)


def test_a_group_ends_where_a_snapshot_is_taken(taker) -> None:
    ends = [h for h in range(1, 41) if sync_group_ends(1, 100, h, taker)]
    assert ends == [10, 20, 30, 40]
    assert taker.takes(20) and not taker.takes(21)
