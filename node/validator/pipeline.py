"""The execution pipeline: which of the replica's Execute and Commit actions wait, while a block executes on the
host's execution thread (node/validator/node.py) and the driver goes on with everything else.

    pipe = ExecutionPipeline()
    pipe.should_queue_execute() / pipe.queue_execute(replica, action)   one execution at a time, parent first
    pipe.start(replica, action, pending, now_ms)                        the host runs pending.run()
    pipe.finish(pending, now_ms) -> (replica, action) | None            its result came back (None: not current)
    pipe.should_queue_commit(action) / queue_commit / ready_commits()   a commit waits for its block's execution
    pipe.stage_later(replica, block) / take_staged(current)             blocks to write while they execute
    pipe.clear()                                                        the replica stopped: drop what waits

Why the order is kept this way (the replica's contract, consensus/actions.py): Execute actions come parent first and
a block executes on its parent's result, so executions run one at a time in the order asked. A Commit must not
execute its block a second time on the loop while that block is on the execution thread, so it waits for it, and
every later commit waits behind it (commits come in height order). Every other action -- votes, timeouts,
proposals, safety writes -- goes on: none of them needs an execution that has not answered yet (a vote for a block
is an answer to its execution). A proposal on a parent still executing waits for it (the proposer must know what
its uncommitted ancestors carry; on a branch it has not executed otherwise, it proposes no transaction:
node/validator/proposing.py). A pure bookkeeping object: no clock, no I/O.

Commits wait while any block executes or waits to (unless MAX_COMMITS_WAITING wait): a commit runs on the loop and
competes with the execution thread for the interpreter, so it would delay the execution and the vote after it --
and a commit asked for in the same call as a proposal or an execution would run before the host even sends the
proposal or starts the execution. They run once the execution thread is idle, at a deadline of "now" (after the
host has performed the call's effects: the vote or proposal sent), i.e. in the wait for the next proposal. The
block an execution runs is written to the safety store meanwhile (staged, so the vote after it writes only the
safety state), at the same deadline.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass
from typing import Final

from consensus.actions import Commit, Execute
from consensus.messages import Block
from consensus.replica import Replica
from node.chain.application import PendingExecution

__all__ = ["EXECUTION_BUDGET_SHARE", "MAX_COMMITS_WAITING", "ExecutionPipeline", "Running"]

# A leader sizes its block to execute in at most this share of the round's base timeout, from the execution speed
# this node measured (the epoch's max_block_txs still bounds it).
EXECUTION_BUDGET_SHARE: Final = 4
# Commits wait while a block executes, unless this many wait (then they run beside the execution).
MAX_COMMITS_WAITING: Final = 4


@dataclass(frozen=True, slots=True)
class Running:
    replica: Replica
    action: Execute
    pending: PendingExecution
    since_ms: int


class ExecutionPipeline:
    def __init__(self) -> None:
        self.running: Running | None = None
        self._executes: collections.deque[tuple[Replica, Execute]] = collections.deque()
        self._commits: collections.deque[tuple[Replica, Commit]] = collections.deque()
        self._staged: list[tuple[Replica, Block]] = []  # bounded like the executions: one per Execute
        # Measured: execution cost per 1,000 transactions (0: not measured yet). The CPU time the host reports, not
        # the wall time, which the loop's share of the interpreter inflates under load and which would shrink the
        # blocks exactly when the chain needs them full.
        self.ms_per_ktx = 0

    @property
    def busy(self) -> bool:
        return self.running is not None or bool(self._executes)

    def executing(self, block_id: bytes) -> bool:
        """Whether `block_id` is running or waiting to run."""
        if self.running is not None and self.running.action.block.id == block_id:
            return True
        return any(a.block.id == block_id for _, a in self._executes)

    # -- executions -------------------------------------------------------------------------------------------

    def should_queue_execute(self) -> bool:
        return self.busy

    def queue_execute(self, replica: Replica, action: Execute) -> None:
        # Bounded by the replica: it asks once per block of its tree (ReplicaConfig.max_tree_blocks), and the
        # waiting commits likewise; a stopped replica's are dropped by clear().
        self._executes.append((replica, action))

    def next_execute(self, current: Replica | None) -> tuple[Replica, Execute] | None:
        """The next waiting execution of the current replica (others' are dropped), when none runs."""
        while self.running is None and self._executes:
            replica, action = self._executes.popleft()
            if replica is current:
                return replica, action
        return None

    def start(self, replica: Replica, action: Execute, pending: PendingExecution, now_ms: int) -> None:
        assert self.running is None
        self.running = Running(replica, action, pending, now_ms)

    def finish(self, pending: PendingExecution, now_ms: int, cost_ms: int | None = None) -> Running | None:
        """The host ran `pending`, which cost `cost_ms` of CPU (None: unknown, the wall time since it started
        counts): the run it ended, or None when it is not the current one (dropped by clear)."""
        running = self.running
        if running is None or running.pending is not pending:
            return None
        self.running = None
        txs = len(pending.job.txs)
        if txs >= 100:  # small blocks measure overheads, not the per-transaction cost
            spent = now_ms - running.since_ms if cost_ms is None else cost_ms
            sample = spent * 1000 // txs
            self.ms_per_ktx = sample if self.ms_per_ktx == 0 else (3 * self.ms_per_ktx + sample) // 4
        return running

    def block_budget(self, base_timeout_ms: int, max_block_txs: int) -> int:
        """How many transactions a block of this leader should carry to execute within its share of the round."""
        if self.ms_per_ktx == 0:
            return max_block_txs
        budget = base_timeout_ms // EXECUTION_BUDGET_SHARE * 1000 // self.ms_per_ktx
        return max(1, min(max_block_txs, budget))

    # -- commits ----------------------------------------------------------------------------------------------

    def should_queue_commit(self, action: Commit) -> bool:
        """A commit waits while its block executes, and behind every lower commit that waits."""
        if self._commits and self._commits[0][1].block.header.height < action.block.header.height:
            return True
        return self.executing(action.block.id)

    def queue_commit(self, replica: Replica, action: Commit) -> None:
        self._commits.append((replica, action))

    def ready_commit(self, current: Replica | None) -> tuple[Replica, Commit] | None:
        """The next waiting commit of the current replica whose block no longer executes (others' are dropped)."""
        while self._commits and not self.executing(self._commits[0][1].block.id):
            replica, action = self._commits.popleft()
            if replica is current:
                return replica, action
        return None

    def has_commits(self) -> bool:
        return bool(self._commits)

    def commits_due(self) -> bool:
        """Whether waiting commits should run now: no execution runs or waits, or too many commits wait."""
        return bool(self._commits) and (not self.busy or len(self._commits) >= MAX_COMMITS_WAITING)

    # -- staging ----------------------------------------------------------------------------------------------

    def stage_later(self, replica: Replica, block: Block) -> None:
        """Write `block` to the safety store once its execution has started (SafetyStore.stage)."""
        self._staged.append((replica, block))

    def take_staged(self, current: Replica | None) -> list[Block]:
        """The blocks to stage now, of the current replica (a stopped replica's are dropped)."""
        staged, self._staged = self._staged, []
        return [block for replica, block in staged if replica is current]

    def clear(self) -> None:
        """The replica stopped: forget what waits, and the running execution (its answer will be ignored)."""
        self.running = None
        self._executes.clear()
        self._commits.clear()
        self._staged.clear()
