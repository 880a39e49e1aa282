"""The commit feed keeps a bounded number of receipts in memory (RECENT_TXS), whatever the block size."""

from __future__ import annotations

import pytest

from ledger.events import Receipt
from ledger.store import LedgerStore
from node.chain.commit_feed import RECENT_BLOCKS, RECENT_TXS, CommitFeed, SubscriptionClosed
from node.chain.execution import CommittedBlock


def _block(height: int, txs: int) -> CommittedBlock:
    receipts = tuple(
        Receipt(height.to_bytes(16, "big") + i.to_bytes(16, "big"), height, i, 0, None, "", ()) for i in range(txs)
    )
    return CommittedBlock(height, height.to_bytes(32, "big"), height, bytes(32), receipts, (), txs)


def test_recent_blocks_are_bounded_by_receipts(tmp_path) -> None:
    store = LedgerStore.open(str(tmp_path / "db"))
    try:
        feed = CommitFeed(store, 100_000, 1 << 22)
        per_block = RECENT_TXS // 4 + 1  # four such blocks are one receipt too many
        for h in range(1, 13):
            feed.publish(_block(h, per_block))
            assert feed.recent_receipts <= RECENT_TXS
        assert feed.recent_receipts == 3 * per_block
        assert feed.load(12).height == 12 and feed.load(10).height == 10  # the newest three come from memory
        with pytest.raises(SubscriptionClosed):  # older ones were dropped: the (empty) store is asked
            feed.load(9)
        # One block larger than the whole budget is still kept (the newest block always is), alone.
        feed.publish(_block(13, RECENT_TXS + 5))
        assert feed.recent_receipts == RECENT_TXS + 5 and feed.load(13).height == 13
        with pytest.raises(SubscriptionClosed):
            feed.load(12)
        # Many empty blocks: the block count bound still holds.
        for h in range(14, 14 + RECENT_BLOCKS + 10):
            feed.publish(_block(h, 0))
        assert feed.recent_receipts == 0
        with pytest.raises(SubscriptionClosed):
            feed.load(14 + 9)
        assert feed.load(14 + 10).height == 14 + 10
    finally:
        store.close()
