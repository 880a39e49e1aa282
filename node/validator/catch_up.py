"""The validator driver's catch-up: block sync sessions, and the commit that waits for one (a commit after a gap).

A session fetches certified blocks from peers (node/chain/block_sync.py) up to the height f+1 voting power reports,
and at least a height the caller names, while the driver runs no replica (mode "syncing" or "following"); the host
applies each fetched batch (ApplyBlocks) through the driver's one commit path, and the next batch is fetched while
one is applied. When the session ends, what comes next is consensus (a new replica from the head) or, after a gap,
the commit that waited for it.

    catch_up.begin(at_least, then)      leave consensus and fetch up to max(f+1 height, at_least); then "consensus"
                                        or "gap" (the waiting commit, then consensus)
    catch_up.commit_after_gap(b, c)     a replica's Commit above head + 1: stop the replica, fetch the missing
                                        heights (for at most GAP_SYNC_TIMEOUT_MS), commit `b`, start consensus again
    catch_up.on_blocks(peer, msg)       a BLOCKS answer (an empty one: the peer has nothing more, or pruned it)
    catch_up.apply_synced_group(...)    consecutive blocks of an ApplyBlocks batch, committed with one synced write
                                        per run within an epoch: how many, and why the batch stops after them
    catch_up.applying(peer, id)         whether the host should go on with that batch (not cancelled, node running)
    catch_up.import_certified(b, c)     verify a certified block against the head's epoch and commit it
    catch_up.batch_done(...)            the host finished a batch: the batch fetched ahead goes next, or a new request
    catch_up.undeliverable(peer)        a request could not be queued: another peer is asked
    catch_up.check_timeout(now) / deadline()   a request that went unanswered: another peer is asked
    catch_up.gap_timer()                the driver's "gap" deadline: fetch again what the gap still misses
    catch_up.follow_soon()              a following node (it signs nothing) learnt of a higher head: a session now,
                                        or FOLLOW_INTERVAL_MS after the last one started
    catch_up.abandon() / close()        the driver gives up (retry later) / halts: the session ends

The catch-up reaches the driver only through what it is given at construction (DriverHooks: queue an effect, leave
and start consensus, commit, halt, run a guarded step, set its "gap" and "follow" deadlines, and what it reads; the
driver's BlockSync, PeerReports, metrics and counters); it keeps the state of the one session (the batch being
applied, what follows), of the one waiting commit, and when the last follow session started. Each is bounded: one
batch applied and one fetched ahead (node/chain/block_sync.py), one waiting commit.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

from consensus.certificates import CommitCertificateError
from consensus.messages import Block, CommitCertificate
from ledger.store import MAX_GROUP_COMMIT_BLOCKS
from node.chain.block_sync import BlockSync, SyncRefused
from node.chain.execution import ChainHead
from node.errors import NodeError
from node.net.messages import Blocks, GetBlocks, encode_node_message
from node.validator.effects import ApplyBlocks, Clock, Effect, SendTo
from node.validator.membership import PeerReports
from node.validator.metrics import NodeMetrics

__all__ = ["FOLLOW_INTERVAL_MS", "GAP_RETRY_MS", "GAP_SYNC_TIMEOUT_MS", "SYNC_LAG", "CatchUp", "CertifiedChain",
           "DriverHooks"]

log = logging.getLogger("node.validator.driver")  # the session logs as the driver it belongs to

# Behind the height f+1 voting power reports by more than this many blocks: leave consensus and catch up by block sync.
SYNC_LAG: Final = 12
# A commit above head + 1 is preceded by block sync of the missing heights for at most this long.
GAP_SYNC_TIMEOUT_MS: Final = 30_000
GAP_RETRY_MS: Final = 100
# A following node starts a block sync session at most this often (several blocks then come in one request): at most
# 10 GET_BLOCKS a second, well under what a peer serves (MAX_SERVED_PER_SECOND), whatever the block rate.
FOLLOW_INTERVAL_MS: Final = 100


class CertifiedChain(Protocol):
    """What the session reads of the chain (node/chain/application.py's Application)."""

    @property
    def head(self) -> ChainHead: ...

    def check_certificate(self, cert: CommitCertificate) -> None: ...

    def ends_epoch(self, block: Block, cert: CommitCertificate) -> bool: ...


@dataclass(frozen=True, slots=True)
class DriverHooks:
    """All the session may ask of the driver that runs it."""

    emit: Callable[[Effect], None]  # queue an effect for the host
    peer_ids: Callable[[], Sequence[str]]  # the peers that may be asked for blocks
    signs: Callable[[], bool]  # this node signs in the current epoch (it does not merely follow)
    target_height: Callable[[], int]  # the height f+1 voting power reports (ValidatorDriver.sync_target_height)
    running: Callable[[], bool]  # the node is neither halted nor stopped
    leave_consensus: Callable[[], None]  # stop the replica; the driver is "syncing"
    start_consensus: Callable[[], None]  # a new replica from the head (or following)
    commit: Callable[[Block, CommitCertificate], None]  # the one commit path (raises as it does)
    # the same for consecutive blocks written in one synced batch (only the last may end an epoch)
    commit_group: Callable[[Sequence[tuple[Block, CommitCertificate]]], None]
    halt: Callable[[str, str], None]  # (code, message): a fatal inconsistency
    storage_failed: Callable[[OSError], None]  # a store's read or write failed: the node stops
    guarded: Callable[..., None]  # guarded(what, step, *args): a failure is logged and retried, never raised
    retry_gap_at: Callable[[int], None]  # set the driver's "gap" deadline (monotonic ms): it then calls gap_timer()
    follow_at: Callable[[int], None]  # the driver's "follow" deadline, unless one is set: it calls follow_soon()


class CatchUp:
    """Block sync sessions of one driver and the commit that waits for one (module docstring)."""

    def __init__(self, sync: BlockSync, chain: CertifiedChain, clock: Clock, reports: PeerReports,
                 metrics: NodeMetrics, counters: collections.Counter[str], hooks: DriverHooks, node_id: str) -> None:
        """`sync` is the driver's BlockSync (it also serves peers' GET_BLOCKS from it); `counters` the driver's."""
        self.sync = sync
        self._chain = chain
        self._clock = clock
        self._reports = reports
        self._metrics = metrics
        self._counters = counters
        self._hooks = hooks
        self._node_id = node_id
        self._then = "consensus"  # what follows the session: "consensus" or "gap"
        self._applying: tuple[str, int] | None = None  # (peer, request id) of the batch the host applies
        self._applying_to = 0  # the height that batch ends at
        self._gap: tuple[Block, CommitCertificate, int] | None = None  # a commit above head + 1, its deadline
        self._follow_started: int | None = None  # monotonic ms of the last follow session's start

    @property
    def active(self) -> bool:
        """A session is under way."""
        return self.sync.active

    def deadline(self) -> int | None:
        """The monotonic ms at which the request in flight expires (`check_timeout`), or None."""
        return self.sync.deadline()

    def check_timeout(self, now: int) -> None:
        """The request in flight went unanswered past its deadline: ask another peer."""
        deadline = self.sync.deadline()
        if deadline is not None and now >= deadline:
            peer = self.sync.timed_out(now)
            if peer is not None:
                self.sync.failed(peer, now, self._hooks.peer_ids())
                self._hooks.guarded("sync", self._step)

    def begin(self, at_least: int, then: str) -> None:
        """Start a block sync session (up to the f+1 height and at least `at_least`); `then` ("consensus" or "gap")
        says what follows when it ends."""
        self._hooks.leave_consensus()
        if self.sync.active:
            return
        self._then = then
        self.sync.begin(at_least, self._clock.monotonic_ms())
        self._step()

    def _step(self) -> None:
        if not self.sync.active or self.sync.waiting or self.sync.holding:
            return
        # While the host applies a batch, the next one is fetched from where it ends (one batch ahead).
        head = self._chain.head.height if self._applying is None else self._applying_to
        target = max(self._hooks.target_height(), self.sync.at_least)
        reported = {p: h for p, (h, _) in self._reports.heights.items()}
        request = self.sync.next_request(head, target, reported, self._hooks.peer_ids(), self._clock.monotonic_ms())
        if request is None:
            if self._applying is None:
                self._done()
            return
        self._hooks.emit(SendTo(request.peer, encode_node_message(
            GetBlocks(request.request_id, request.start, request.max_count)), sync_request=True))

    def undeliverable(self, peer: str) -> None:
        """A sync request to `peer` could not be queued (not connected): ask another peer."""
        if self.sync.active and self.sync.waiting:
            self.sync.failed(peer, self._clock.monotonic_ms(), self._hooks.peer_ids())
            self._hooks.guarded("sync", self._step)

    def on_blocks(self, peer: str, msg: Blocks) -> None:
        """A BLOCKS answer: verified against the request, then applied by the host (or held while a batch is)."""
        try:
            batch = self.sync.accept(peer, msg.request_id, msg.items)
        except SyncRefused as refused:
            if refused.code == "unsolicited":
                self._metrics.rejected_message("unsolicited")
                return
            log.warning("sync_bad_batch peer=%s: %s", peer, refused)
            self.sync.failed(peer, self._clock.monotonic_ms(), self._hooks.peer_ids())
            self._hooks.guarded("sync", self._step)
            return
        if not batch:  # the peer has nothing more for us
            self.sync.succeeded(peer, 0)
            self._hooks.guarded("sync", self._step)
        elif self._applying is not None:  # fetched ahead: it waits for the batch being applied
            self.sync.hold(peer, msg.request_id, batch)
        else:
            self._apply_batch(peer, msg.request_id, batch)

    def _apply_batch(self, peer: str, request_id: int, batch: list[tuple[Block, CommitCertificate]]) -> None:
        self._applying, self._applying_to = (peer, request_id), batch[-1][0].header.height
        self._hooks.emit(ApplyBlocks(peer, request_id, tuple(batch)))
        self._hooks.guarded("sync", self._step)  # fetch the next batch while this one is applied

    def apply_synced_group(self, peer: str, request_id: int,
                           certified: Sequence[tuple[Block, CommitCertificate]]) -> tuple[int, str | None]:
        """Consecutive blocks of the ApplyBlocks batch (peer, request_id), committed with one synced write per run of
        blocks within an epoch (an epoch-ending block ends a run: the certificates after it are checked under the
        next set, which its commit installs): how many were committed, and None or why the batch stops after them."""
        if self._applying != (peer, request_id):
            return 0, "cancelled"
        error = None
        run: list[tuple[Block, CommitCertificate]] = []
        start = self._chain.head
        height, parent = start.height, start.block_id
        try:
            for block, cert in certified:
                if not self._hooks.running():
                    error = "stopped"
                    break
                if block.header.height != height + 1 or block.header.parent_id != parent:
                    error = f"block at {block.header.height} does not extend head {height}"
                    break
                try:
                    self._chain.check_certificate(cert)
                except CommitCertificateError as exc:
                    error = f"certificate at {block.header.height}: {exc}"
                    break
                run.append((block, cert))
                height, parent = block.header.height, block.id
                if len(run) >= MAX_GROUP_COMMIT_BLOCKS or self._chain.ends_epoch(block, cert):
                    self._hooks.commit_group(run)
                    run = []
            if run:
                self._hooks.commit_group(run)
        except NodeError as exc:
            self._hooks.halt(exc.code, exc.message)
            error = "halted"
        except OSError as exc:
            self._hooks.storage_failed(exc)
            error = "halted"
        # Counted from the head: a failure after a write (or part of a run kept before a block that disagrees)
        # still counts what is durable.
        applied = self._chain.head.height - start.height
        if applied:
            self._metrics.sync_applied(applied)
        return applied, error

    def applying(self, peer: str, request_id: int) -> bool:
        """The host should go on with the ApplyBlocks batch (peer, request_id): it is still the one being applied
        and the node runs (not halted, stopped or retrying later)."""
        return self._applying == (peer, request_id) and self._hooks.running()

    def import_certified(self, block: Block, cert: CommitCertificate) -> str | None:
        """Commit a certified block that extends the head, its certificate verified against the set of the head's
        epoch: None, or why not (nothing changed). A block that does not execute to its certified root halts."""
        if not self._hooks.running():
            return "stopped"
        head = self._chain.head
        if block.header.height != head.height + 1 or block.header.parent_id != head.block_id:
            return f"block at {block.header.height} does not extend head {head.height}"
        try:
            self._chain.check_certificate(cert)
        except CommitCertificateError as exc:
            return f"certificate at {block.header.height}: {exc}"
        try:
            self._hooks.commit(block, cert)
        except NodeError as exc:
            self._hooks.halt(exc.code, exc.message)
            return "halted"
        except OSError as exc:
            self._hooks.storage_failed(exc)
            return "halted"
        self._metrics.sync_applied(1)
        return None

    def batch_done(self, peer: str, request_id: int, applied: int, error: str | None) -> None:
        """The host applied `applied` blocks of the batch (peer, request_id), then stopped at `error` (or None)."""
        if self._applying != (peer, request_id):
            return
        self._applying = None
        if not self._hooks.running():
            return
        held = self.sync.take_held()
        if error is None:
            self.sync.succeeded(peer, applied)
        else:
            log.warning("sync_bad_batch peer=%s applied=%d: %s", peer, applied, error)
            self.sync.failed(peer, self._clock.monotonic_ms(), self._hooks.peer_ids(), applied)
            self.sync.cancel()  # what was fetched ahead no longer follows the head
            held = None
        if held is not None and held[2][0][0].header.height == self._chain.head.height + 1:
            self._apply_batch(*held)
            return
        self._hooks.guarded("sync", self._step)

    def _done(self) -> None:
        now = self._clock.monotonic_ms()
        applied = self.sync.end(now)
        # A follower fetches every block or two as it is committed: only a real catch-up is worth a line.
        if applied and (applied > SYNC_LAG or self._hooks.signs()):
            log.info("sync_done node=%s blocks=%d blocks_per_s=%.0f height=%d", self._node_id, applied,
                     self.sync.last_rate, self._chain.head.height)
        if self._then == "gap":
            self._after_gap_sync()
        else:
            self._hooks.start_consensus()

    def follow_soon(self) -> None:
        """This node follows and a peer reported a height above the head: fetch it now, or at FOLLOW_INTERVAL_MS
        after the last fetch."""
        now = self._clock.monotonic_ms()
        due = now if self._follow_started is None else self._follow_started + FOLLOW_INTERVAL_MS
        if now < due:
            self._hooks.follow_at(due)
            return
        self._follow_started = now
        self._hooks.guarded("follow", self.begin, 0, "consensus")

    def commit_after_gap(self, block: Block, cert: CommitCertificate) -> None:
        """A Commit above head + 1. The replica's view and the store disagree, so the replica stops (the rest of
        its action list is dropped with it), the missing certified blocks are fetched and applied by block sync,
        `block` is applied if it then extends the head, and a new replica starts from the store's head."""
        log.warning("commit_gap node=%s height=%d head=%d: catching up by block sync before applying it",
                    self._node_id, block.header.height, self._chain.head.height)
        self._counters["commit_gaps"] += 1
        self._hooks.leave_consensus()
        self._gap = (block, cert, self._clock.monotonic_ms() + GAP_SYNC_TIMEOUT_MS)
        self.begin(block.header.height - 1, "gap")

    def gap_timer(self) -> None:
        """The "gap" deadline: the last session left heights missing below the waiting commit; fetch them again."""
        if self._gap is not None:
            self._hooks.guarded("gap_fill", self.begin, self._gap[0].header.height - 1, "gap")

    def _after_gap_sync(self) -> None:
        assert self._gap is not None
        block, cert, deadline = self._gap
        target = block.header.height
        head = self._chain.head
        if head.height < target - 1 and self._clock.monotonic_ms() <= deadline:
            self._hooks.retry_gap_at(self._clock.monotonic_ms() + GAP_RETRY_MS)
            return
        self._gap = None
        if head.height == target - 1 and block.header.parent_id == head.block_id:
            try:
                self._chain.check_certificate(cert)
            except CommitCertificateError as exc:  # a replica only commits certified blocks: an invariant broke
                self._hooks.halt("commit_uncertified", f"the commit of height {target} does not verify: {exc}")
                return
            self._hooks.commit(block, cert)
        elif head.height < target - 1:
            log.warning("commit_gap_unfilled node=%s height=%d head=%d: consensus restarts from the head",
                        self._node_id, target, head.height)
        self._hooks.start_consensus()

    def abandon(self) -> None:
        """The driver gives this session up (it retries later): the session ends, a batch being applied is
        cancelled (its remaining blocks answer "cancelled"). A commit waiting for a gap is kept."""
        if self.sync.active:
            self.sync.end(self._clock.monotonic_ms())
        self._applying = None

    def close(self) -> None:
        """The node halts: the session ends and the waiting commit is dropped."""
        self.abandon()
        self._gap = None
