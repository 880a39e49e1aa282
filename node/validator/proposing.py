"""When a leader proposes: the payload wait between the replica's RequestPayload and Application.propose.

    waiting = PayloadWait()
    waiting.request(replica, action, now_ms)          the replica asked for a payload (a new request replaces one)
    ready, deadline = waiting.check(app, replica, now_ms)   True: propose now; else ask again at `deadline`
                                                            (or when transactions arrive), None: nothing to wait for

A leader fills its block only on a branch it has executed (Application.branch_executed: its parent and every uncommitted
ancestor down to the committed head); otherwise it cannot tell which of its pooled transactions those blocks already
carry, and proposed them again (every copy a TX_REPLAYED receipt). The driver waits while the parent executes or
waits on the execution thread (node/validator/pipeline.py), as before. A parent that the replica itself holds back
(certified by the other validators' votes while its own parent still executes here: the replica asks for a block's
execution only once its parent's has answered), or that is never executed (a block of a reconfiguration suffix,
known as such only once its epoch-ending ancestor executed), gets a block without transactions at once
(Application.propose), the wait for work and MIN_BLOCK_INTERVAL_MS skipped: nothing could be added to it, and the QC
it carries must not wait (the leader may hold the only QC that commits an epoch-ending block, and leave the epoch the
moment that block commits here).

A leader with nothing to propose waits up to the epoch's `empty_block_interval_ms` for transactions (or for its
uncommitted ancestors, whose commit a child carries forward), and never proposes sooner than MIN_BLOCK_INTERVAL_MS
after its previous proposal unless a full block is waiting, so blocks batch transactions instead of carrying one
each. A local choice, not part of the protocol.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from consensus.actions import RequestPayload
from consensus.replica import Replica
from node.chain.application import Application

__all__ = ["MIN_BLOCK_INTERVAL_MS", "PayloadWait"]

MIN_BLOCK_INTERVAL_MS: Final = 40


@dataclass(slots=True)
class _Request:
    replica: Replica
    action: RequestPayload
    since_ms: int
    waited_for_work: bool = False


class PayloadWait:
    def __init__(self) -> None:
        self.pending: _Request | None = None
        self._last_proposal_ms = -MIN_BLOCK_INTERVAL_MS

    def request(self, replica: Replica, action: RequestPayload, now_ms: int) -> None:
        self.pending = _Request(replica, action, now_ms)

    def cancel(self) -> None:
        self.pending = None

    def check(self, app: Application, replica: Replica | None, now_ms: int) -> tuple[bool, int | None]:
        """(propose now, else the deadline to check again at). A request of another replica or a past round is
        dropped: (False, None)."""
        pending = self.pending
        if pending is None:
            return False, None
        if pending.replica is not replica or pending.replica.current_round != pending.action.round:
            self.pending = None
            return False, None
        params = app.epochs.params
        parent = pending.action.parent_id
        if not app.branch_executed(parent):
            return self._ready(now_ms)  # a branch not executed here: a block without transactions, at once
        if not pending.waited_for_work:
            until = pending.since_ms + params.empty_block_interval_ms
            if now_ms < until and not app.has_work(parent):
                return False, until
            pending.waited_for_work = True
        until = self._last_proposal_ms + MIN_BLOCK_INTERVAL_MS
        if now_ms < until and app.pending_beyond(parent) < params.max_block_txs:
            return False, until
        return self._ready(now_ms)

    def _ready(self, now_ms: int) -> tuple[bool, int | None]:
        self.pending = None
        self._last_proposal_ms = now_ms
        return True, None
