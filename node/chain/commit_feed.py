"""The in-process stream of committed blocks: what the HTTP API's event stream (issue 6) subscribes to.

    feed.subscribe(from_height=None, max_queue=1024) -> Subscription
    await subscription.next()   -> CommittedBlock (height order, no gaps)
    subscription.close()

A subscriber starting at `from_height` first gets the older blocks (rebuilt from the store: receipts and events of
executed transactions and of transactions rejected for good, and the block's own events: holds released on
expiry), then live ones. Delivery never drops silently: a subscriber whose queue is full is closed
with reason "slow_consumer" (`next()` raises SubscriptionClosed with the height to resume from).
"""

from __future__ import annotations

import asyncio
import collections
from typing import Final

from consensus.messages import CommitCertificate, decode_block
from ledger.events import decode_receipt
from ledger.operation_set import OperationSet
from ledger.store import LedgerStore
from ledger.transaction import decode_transaction
from node.chain.certified import block_events_key, cert_key
from node.chain.execution import CommittedBlock
from node.chain.payload import decode_payload
from node.chain.protocol import OPERATIONS

MAX_SUBSCRIBERS: Final = 1024
MAX_QUEUE: Final = 65_536
RECENT_BLOCKS: Final = 256
# Receipts (one per transaction) of the recent blocks kept in memory: full blocks of thousands of transactions would
# otherwise hold every receipt and event of the last 256 blocks (about 650 bytes each: hundreds of MB under load).
# The newest block is always kept; older ones go first.
RECENT_TXS: Final = 16_384


class SubscriptionClosed(Exception):
    def __init__(self, reason: str, resume_height: int) -> None:
        super().__init__(f"{reason}: resume from height {resume_height}")
        self.reason = reason
        self.resume_height = resume_height


class Subscription:
    def __init__(self, feed: CommitFeed, next_height: int, max_queue: int) -> None:
        self._feed = feed
        self._queue: collections.deque[CommittedBlock] = collections.deque()
        self._max_queue = max_queue
        self._event = asyncio.Event()
        self.next_height = next_height  # the next height this subscriber will receive
        self.closed: str | None = None

    def offer(self, block: CommittedBlock) -> bool:
        """Queue the next block if it is the one this subscriber waits for; False when it closed (slow consumer)."""
        if self.closed is not None:
            return False
        if block.height != self.next_height + len(self._queue):
            self._event.set()  # behind the live stream: next() reads the store
            return True
        if len(self._queue) >= self._max_queue:
            self.closed = "slow_consumer"
            self._event.set()
            return False
        self._queue.append(block)
        self._event.set()
        return True

    def wake(self) -> None:
        self._event.set()

    async def next(self) -> CommittedBlock:
        while True:
            if self._queue:
                block = self._queue.popleft()
                self.next_height = block.height + 1
                return block
            if self.closed is not None:
                raise SubscriptionClosed(self.closed, self.next_height)
            if self.next_height <= self._feed.height:
                # Behind the live stream (resume): read from the store.
                self._queue.append(self._feed.load(self.next_height))
                continue
            self._event.clear()
            await self._event.wait()

    def close(self) -> None:
        if self.closed is None:
            self.closed = "closed"
            self._feed.unsubscribe(self)
            self._event.set()


class CommitFeed:
    def __init__(self, store: LedgerStore, max_block_txs: int, max_block_bytes: int, *,
                 operations: OperationSet = OPERATIONS) -> None:
        """`operations`: what the stored transactions and receipts decode with (the node's operation set)."""
        self._store = store
        self._operations = operations
        self._limits = (max_block_txs, max_block_bytes)
        head = store.head()
        self.height = 0 if head is None else head.height
        self._recent: collections.deque[CommittedBlock] = collections.deque()
        self._recent_txs = 0  # receipts held by the blocks of _recent
        self._subscribers: set[Subscription] = set()

    def subscribe(self, from_height: int | None = None, max_queue: int = 1024) -> Subscription:
        """Blocks from `from_height` (default: the next one committed) on."""
        if len(self._subscribers) >= MAX_SUBSCRIBERS:
            raise SubscriptionClosed("too_many_subscribers", from_height or self.height + 1)
        start = self.height + 1 if from_height is None else max(1, from_height)
        sub = Subscription(self, start, min(max(1, max_queue), MAX_QUEUE))
        self._subscribers.add(sub)
        return sub

    def publish(self, block: CommittedBlock) -> None:
        assert block.height == self.height + 1 or self.height == 0 or block.height > self.height
        self.height = block.height
        self._remember(block)
        for sub in list(self._subscribers):
            if not sub.offer(block):
                self._subscribers.discard(sub)

    def unsubscribe(self, sub: Subscription) -> None:
        self._subscribers.discard(sub)

    def _remember(self, block: CommittedBlock) -> None:
        """Keep `block` in memory, dropping the oldest ones beyond RECENT_BLOCKS blocks or RECENT_TXS receipts."""
        recent = self._recent
        recent.append(block)
        self._recent_txs += len(block.receipts)
        while len(recent) > 1 and (len(recent) > RECENT_BLOCKS or self._recent_txs > RECENT_TXS):
            self._recent_txs -= len(recent.popleft().receipts)
        assert len(recent) <= RECENT_BLOCKS and (len(recent) == 1 or self._recent_txs <= RECENT_TXS)

    @property
    def recent_receipts(self) -> int:
        """Receipts held in memory by the recent blocks (at most RECENT_TXS, or the newest block's own)."""
        return self._recent_txs

    def load(self, height: int) -> CommittedBlock:
        """A committed block rebuilt from the store (the recent ones come from memory)."""
        for block in self._recent:
            if block.height == height:
                return block
        raw = self._store.get_block(height)
        root = self._store.state_root_at(height)
        if raw is None or root is None:
            raise SubscriptionClosed("height_unavailable", height)
        block = decode_block(raw)
        payload = decode_payload(block.payload, *self._limits)
        receipts = []
        for tx in payload.txs:
            try:
                tx_id = decode_transaction(tx, operations=self._operations).tx_id
            except ValueError:
                continue
            found = self._store.get_tx(tx_id)
            receipt = self._store.get_receipt(tx_id)
            if found is not None and found[0] == height and receipt is not None:
                receipts.append(decode_receipt(receipt, operations=self._operations))
        cert_raw = self._store.get_extra(cert_key(height))
        cert = None if cert_raw is None else CommitCertificate.decode(cert_raw)
        own_raw = self._store.get_extra(block_events_key(height))
        own = () if own_raw is None else decode_receipt(own_raw, operations=self._operations).events
        events = own + tuple(ev for r in receipts for ev in r.events)
        return CommittedBlock(height, block.id, payload.time_ms, root, tuple(receipts), events, len(payload.txs), cert,
                              block_events=own)
