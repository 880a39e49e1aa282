"""Durable consensus state of one validator: the replica's SafetyState and its pending (uncommitted) blocks.

A PersistSafety action is performed as ONE LevelDB WriteBatch written with sync=True: the new safety state replaces
the old one, the new pending blocks are added, and pending blocks at or below the committed height are deleted.
The runtime performs it before the next action of the same list leaves the replica, so a vote or timeout is never
sent before the state that forbids signing a conflicting one is on disk (no double vote after kill -9).

`stage(blocks)` writes pending blocks ahead of that (one synced batch of blocks only): a pipelined node stages the
block it executes while the execution runs, and the vote's PersistSafety then writes only the small safety state, as a
block already written is never written again. Either way a block is durable before this node signs a vote for it
(docs/consensus.md §10, "What a vote waits for").

Layout (its own LevelDB directory, data/consensus):
    b"s"                          -> SafetyState.encode()
    b"g"                          -> genesis hash (32 bytes): the chain this directory belongs to
    b"e"                          -> epoch (8 bytes): "nothing signed in this epoch before a safety state of it"
                                     (written at creation by keys that never signed, and at epoch boundaries)
    b"b" || height(8) || block_id -> encode_block(block)

Epochs (docs/consensus.md §10). Before the block that ends epoch e is committed, `mark_epoch(e + 1)` records that
this node has signed nothing in e + 1 (its replica of e + 1 does not exist yet); after the commit, `begin_epoch(e + 1)`
drops the state and pending blocks of e in one synced batch. A replica of e + 1 persists a state of e + 1 before its
first signature, so at any restart: a state of the current epoch is the record to resume from; a state of an older
epoch, or none with the mark of the current epoch, proves nothing was signed in it; no state and no mark means the
directory may have been lost after the node signed, and it must not sign again in that epoch before it has
recovered a bound on what it signed (consensus/recovery.py). A directory created
by a node whose keys never signed (their marker beside the key file) is marked for the head's epoch at creation,
so a first start signs at once while a wiped and recreated directory does not.
"""

from __future__ import annotations

import bisect
import os
import struct
from collections.abc import Iterable

import plyvel

from consensus.codec import CodecError
from consensus.messages import Block, SafetyState, decode_block, encode_block
from node.errors import NodeError

KEY_SAFETY = b"s"
KEY_GENESIS = b"g"
KEY_EPOCH_MARK = b"e"
P_BLOCK = b"b"
_U64 = struct.Struct(">Q")
# Pending blocks kept at most (a healthy replica has a handful; the replica bounds its tree too).
MAX_PENDING_BLOCKS = 4096


RESUME = "resume"
FRESH = "fresh"
LOST = "lost"


def safety_decision(stored_epoch: int | None, mark: int | None, epoch: int) -> str:
    """How a signing replica of `epoch` starts, given the stored safety state's epoch (None: no state) and the epoch
    mark (docs/consensus.md §10, "Lost safety state"):
      RESUME  a state of `epoch` is stored: continue from it;
      FRESH   nothing was signed in `epoch`: a state of an older epoch is stored (the directory is intact, and a
              signature in `epoch` would have replaced it), or the store is marked for `epoch` (at its creation by
              keys that never signed, or before the block that started `epoch` committed);
      LOST    no state and no mark of `epoch`: the directory may have been lost after this node signed in `epoch`;
              it signs nothing until it has recovered its safety state from a quorum's statements
              (consensus/recovery.py, docs/consensus.md §13), or, if nobody can vouch for it, until the epoch ends."""
    if stored_epoch is not None:
        if stored_epoch > epoch:
            raise SafetyStoreError("safety_store_ahead",
                                   f"the consensus store holds a safety state of epoch {stored_epoch}, the ledger is "
                                   f"in epoch {epoch}: the two directories come from different times")
        return RESUME if stored_epoch == epoch else FRESH
    return FRESH if mark == epoch else LOST


class SafetyStoreError(NodeError):
    """The consensus directory cannot be used (unreadable, another chain's, ahead of the ledger)."""


class SafetyStore:
    def __init__(self, path: str) -> None:
        os.makedirs(path, exist_ok=True)
        try:
            self._db = plyvel.DB(path, create_if_missing=True)
        except plyvel.Error as exc:
            raise SafetyStoreError("safety_store_open_failed", f"cannot open {path}: {exc}") from exc
        self.path = path
        self.writes = 0
        # The keys of the pending blocks, ascending (as stored): pruning reads this index instead of iterating the
        # store, whose pending blocks carry whole payloads.
        with self._db.iterator(prefix=P_BLOCK, include_value=False) as it:
            self._pending: list[bytes] = list(it)
        # The same keys as a set: every one was written in a synced batch (or found at open), so it is durable.
        self._durable: set[bytes] = set(self._pending)

    def close(self) -> None:
        if not self._db.closed:
            self._db.close()

    def bind_genesis(self, genesis_hash: bytes, *, never_signed_epoch: int | None = None) -> bool:
        """Record the chain of this directory on first use (True), refuse a different one later. On first use with
        `never_signed_epoch` (the node's keys have never signed: node.validator.keyfile.never_signed_path), the
        same synced batch marks that epoch: nothing signed in it yet."""
        stored = self._db.get(KEY_GENESIS)
        if stored is None:
            with self._db.write_batch(sync=True) as wb:
                wb.put(KEY_GENESIS, genesis_hash)
                if never_signed_epoch is not None:
                    wb.put(KEY_EPOCH_MARK, _U64.pack(never_signed_epoch))
            self.writes += 1
            return True
        if stored != genesis_hash:
            raise SafetyStoreError("genesis_mismatch",
                                   f"{self.path} belongs to the chain with genesis {stored.hex()}, the genesis file "
                                   f"has hash {genesis_hash.hex()}; use the right genesis file or a fresh data_dir")
        return False

    def epoch_mark(self) -> int | None:
        """The latest epoch marked by `mark_epoch` / `begin_epoch` (None: never)."""
        raw = self._db.get(KEY_EPOCH_MARK)
        return None if raw is None else _U64.unpack(raw)[0]

    def mark_epoch(self, epoch: int) -> None:
        """Record, synced, that this node has signed nothing in `epoch` yet (written before the block that starts
        it is committed, while no replica of `epoch` exists). Leaves the current state untouched."""
        mark = self.epoch_mark()
        assert mark is None or mark <= epoch, "epoch marks never move back"
        state = self._db.get(KEY_SAFETY)
        assert state is None or SafetyState.decode(state).epoch < epoch, "a state of the marked epoch exists"
        self._db.put(KEY_EPOCH_MARK, _U64.pack(epoch), sync=True)
        self.writes += 1

    def begin_epoch(self, epoch: int, *, mark: bool = True) -> None:
        """`epoch` has started and this node's replica of it has not signed: drop the older epoch's safety state
        and pending blocks, and (with `mark`) mark `epoch` (one synced batch). `mark=False` is for a node that
        cannot show it signed nothing in `epoch` (a consensus directory recreated while the chain was past it)."""
        state = self._db.get(KEY_SAFETY)
        assert state is None or SafetyState.decode(state).epoch < epoch, "a replica of this epoch already signed"
        with self._db.write_batch(sync=True) as wb:
            wb.delete(KEY_SAFETY)
            for k in self._pending:
                wb.delete(k)
            if mark:
                wb.put(KEY_EPOCH_MARK, _U64.pack(max(epoch, self.epoch_mark() or 0)))
        self._set_pending([])
        self.writes += 1

    def has_state(self) -> bool:
        return self._db.get(KEY_SAFETY) is not None

    def load(self) -> tuple[SafetyState | None, list[Block]]:
        raw = self._db.get(KEY_SAFETY)
        try:
            state = None if raw is None else SafetyState.decode(raw)
            blocks = [decode_block(v) for _, v in self._db.iterator(prefix=P_BLOCK)]
        except CodecError as exc:
            raise SafetyStoreError("safety_store_corrupt", f"{self.path}: {exc}") from exc
        return state, blocks

    def persist(self, state: SafetyState, blocks: Iterable[Block], committed_height: int) -> int:
        """Replace the safety state, add `blocks`, drop pending blocks at or below `committed_height`; synced.
        A block already written by `stage` is durable and not written again, so a vote on a staged block writes
        only the small safety state. Returns the payload bytes of the blocks written."""
        old = self._db.get(KEY_SAFETY)
        if old is not None:
            previous = SafetyState.decode(old)
            # Invariant: the vote lock never moves back (a regression could let this node sign twice).
            assert (state.epoch, state.highest_vote_round) >= (previous.epoch, previous.highest_vote_round)
        added, written = [], 0
        with self._db.write_batch(sync=True) as wb:
            wb.put(KEY_SAFETY, state.encode())
            for block in blocks:
                key = P_BLOCK + _U64.pack(block.header.height) + block.id
                if key not in self._durable:
                    wb.put(key, encode_block(block))
                    added.append(key)
                    written += len(block.payload)
            kept = self._prune(wb, committed_height, added)
        self._set_pending(kept)
        self.writes += 1
        return written

    def stage(self, blocks: Iterable[Block], committed_height: int) -> int:
        """Write pending blocks ahead of the PersistSafety that will carry them (one synced batch; blocks at or
        below the committed height, or already written, are skipped): how many were written. The safety state is
        untouched. A node stages the block it is executing while the execution runs, so the write is off the path
        from the execution's end to the vote; the vote's PersistSafety then finds the block durable."""
        added = []
        with self._db.write_batch(sync=True) as wb:
            for block in blocks:
                key = P_BLOCK + _U64.pack(block.header.height) + block.id
                if block.header.height > committed_height and key not in self._durable and key not in added:
                    wb.put(key, encode_block(block))
                    added.append(key)
            if not added:
                return 0
            kept = self._prune(wb, committed_height, added)
        self._set_pending(kept)
        self.writes += 1
        return len(added)

    def _set_pending(self, kept: list[bytes]) -> None:
        self._pending = kept
        self._durable = set(kept)

    def prune(self, committed_height: int) -> None:
        """Drop pending blocks at or below the committed height (not synced: losing this only keeps extra blocks)."""
        with self._db.write_batch() as wb:
            kept = self._prune(wb, committed_height, ())
        self._set_pending(kept)

    def _prune(self, wb: object, committed_height: int, added: Iterable[bytes]) -> list[bytes]:
        """Delete (in `wb`) the pending blocks at or below the committed height, and the lowest beyond
        MAX_PENDING_BLOCKS (the oldest forks); returns the keys that remain once `wb` is written."""
        keys = sorted(set(self._pending).union(added))
        cut = max(bisect.bisect_left(keys, P_BLOCK + _U64.pack(committed_height + 1)), len(keys) - MAX_PENDING_BLOCKS)
        for k in keys[:cut]:
            wb.delete(k)  # type: ignore[attr-defined]
        return keys[cut:]
