"""Pruning: a node configured with `[pruning] keep_blocks = K` keeps only the last K blocks, with their transactions,
receipts, history entries, certificates and state trees; the current state is always whole (docs/operations.md,
"State sync, snapshots and pruning"). Archive (K = 0, nothing pruned) is the default.

    pruner = BlockPruner(app.store, keep_blocks=K)
    app.add_commit_listener(pruner.on_commit)

Every PRUNE_STEP heights beyond K (at least MIN_PRUNE_STEP), one run on a thread of its own: the blocks below
head + 1 - K (ledger.store.LedgerStore.prune_blocks) and the state trees of those heights (prune_state_history, a
mark and sweep over the kept roots). Commits wait while a run holds the store's write lock. Reads below the kept
height answer `pruned` with the lowest height kept (the API, block sync): the same mechanism as a node that joined
by state sync, whose store starts at its snapshot height.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Final

from ledger.store import LedgerStore
from node.chain.certified import BLOCK_EVENTS_PREFIX, CERT_PREFIX
from node.chain.execution import CommittedBlock
from node.errors import NodeError

__all__ = ["MIN_KEEP_BLOCKS", "MIN_PRUNE_STEP", "PRUNED", "BlockPruner", "pruned_details"]

log = logging.getLogger("node.chain.pruning")

# The fewest blocks a pruning node keeps (a replica restarts from the head's certificate; peers a little behind
# still find their next blocks here).
MIN_KEEP_BLOCKS: Final = 16
# Pruning runs once the head is this many heights (or K / 4, whichever is more) past the last run.
MIN_PRUNE_STEP: Final = 16
# The stable code of a read of pruned history (API details.reason, block sync's PRUNED answer).
PRUNED: Final = "pruned"


def pruned_details(store: LedgerStore, height: int) -> dict[str, int | str] | None:
    """{"reason": "pruned", "height": h, "kept_from": base} when `height` is below what this store keeps."""
    base = store.base_height()
    if 0 <= height < base:
        return {"reason": PRUNED, "height": height, "kept_from": base}
    return None


class BlockPruner:
    def __init__(self, store: LedgerStore, keep_blocks: int) -> None:
        if keep_blocks < MIN_KEEP_BLOCKS:
            raise NodeError("config_bad_field", f"pruning.keep_blocks is at least {MIN_KEEP_BLOCKS}")
        self.store = store
        self.keep_blocks = keep_blocks
        self.step = max(MIN_PRUNE_STEP, keep_blocks // 4)
        self._thread: threading.Thread | None = None
        self.runs = 0

    def on_commit(self, committed: CommittedBlock) -> None:
        keep_from = committed.height + 1 - self.keep_blocks
        if keep_from - self.store.base_height() < self.step:
            return
        if self._thread is not None and self._thread.is_alive():
            return
        self._thread = threading.Thread(target=self._run, args=(keep_from,), daemon=True, name="pruning")
        self._thread.start()

    def wait(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self, keep_from: int) -> None:
        started = time.monotonic()
        try:
            blocks = self.store.prune_blocks(keep_from, (CERT_PREFIX, BLOCK_EVENTS_PREFIX))
            trees = self.store.prune_state_history(max(keep_from, self.store.pruned_below()))
        except Exception:  # pruning that fails (a closed store at shutdown, a disk error) is retried later
            log.exception("pruning_failed keep_from=%d", keep_from)
            return
        self.runs += 1
        log.info(
            "pruned kept_from=%d blocks=%d transactions=%d tree_nodes=%d seconds=%.2f",
            keep_from,
            blocks.blocks,
            blocks.transactions,
            trees.deleted_nodes,
            time.monotonic() - started,
        )
