"""The validator driver: runs this node's replica of the consensus protocol over the Application, without I/O.

It owns the replica, the safety store and its timers; its CatchUp (node/validator/catch_up.py) runs the block sync
sessions and a commit after a gap; its StatusExchange (node/validator/status.py) sends this node's STATUS and decides
from the heights peers report (startup, following, falling behind); this node's keys and peers are its Membership,
what peers report its PeerReports; the Application owns the rest (mempool, execution, commits, epochs, feed). It reads
time from an injected Clock and never touches a socket or an event loop: every input returns after queueing effects
(node/validator/effects.py) that the host takes with `take()` and performs in order -- the asyncio host
(node/validator/node.py) or the deterministic simulator (node/tools/simulation/).

    input                      what the driver does
    start()                    a dev chain starts its replica; a networked node waits up to STARTUP_WAIT_MS for its
                               peers' heights, and catches up first when far behind
    on_message(peer, data)     consensus -> replica; STATUS -> the status exchange; GET_BLOCKS -> served;
                               BLOCKS -> the catch-up (ApplyBlocks); gossiped transactions -> SubmitGossip
    on_admitted()              new transactions: a leader waiting for work proposes
    on_peer_connected(peer)    a link came up: this node's STATUS to that peer at once
    handle_timer()             at next_deadline(): round timeouts, the payload wait, STATUS, startup, sync, retries
    apply_synced_group(), sync_batch_wanted(), sync_batch_done(), sync_undeliverable(), import_certified()
                               block sync: to the catch-up

    replica action   what the driver does
    PersistSafety    SafetyStore.persist (one synced batch) BEFORE the next action of the list
    Send, Broadcast  SendTo / Broadcast on channel 0x01 (SyncBlocks: SendTo of the request)
    SetTimer         the "round" deadline -> replica.on_timeout(round)
    RequestPayload   wait while the parent executes, at most params.empty_block_interval_ms for work in the
                     mempool, and MIN_BLOCK_INTERVAL_MS after the previous proposal unless a full block waits, then
                     Application.propose (on a branch not executed here: at once, a block without transactions)
    Execute          Application.execute (the wall clock only for the voting policy) -> replica.on_executed
    Commit           the one commit path; a Commit above head + 1 never halts the node: the catch-up stops the
                     replica, fetches the missing heights, commits, and a new replica starts. Pipelined, commits
                     wait while a block executes and run when the execution thread is idle (node/validator/pipeline.py),
                     and the executing block is staged in the safety store meanwhile
    ReportEvidence   Application.record_evidence, logged

The one commit path, for the replica's commits, a commit after a gap and block sync alike: Application.finalize;
when the block ends an epoch, mark the safety store for the next epoch if this node can show its consensus directory
was continuous; Application.commit (one synced batch); then switch keys, safety store, peers and replica
(docs/consensus.md §10). Modes: "starting", "syncing" (no replica: certified blocks are fetched and applied),
"consensus", "following" (a node that signs nothing in this epoch -- a full node, a removed validator, a validator
before its epoch -- runs no replica: a peer's STATUS above its head starts block sync, every certificate verified
against its epoch's set; validators send their STATUS to full nodes after every commit, so they follow at once),
"halted", "stopped". Consensus messages from a peer admitted as a full node are refused (NOT_A_VALIDATOR, logged
once per peer). A node leaves consensus when f+1 voting power reports heights more than SYNC_LAG
above its own, or above it at all while its head stood still for STUCK_BEHIND_MS (node/validator/status.py). An unexpected error stops the replica and catches up before a new one starts; a NodeError halts; an
OSError (a store's read or write failed: disk full, read-only, failing) stops the node at once, logged once, and
queues StorageFailed: it never writes again (node/validator/storage_failure.py says why).
"""

from __future__ import annotations

import collections
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from consensus.actions import Broadcast as BroadcastAction
from consensus.actions import Commit, Execute, PersistSafety, ReportEvidence, RequestPayload, Send, SetTimer, SyncBlocks
from consensus.messages import Block, CommitCertificate, Proposal, Vote, encode_message
from consensus.replica import Replica, ReplicaConfig
from ledger.transition import BlockOutcome
from node.chain.application import Application, CommitResult, Execution, PendingExecution
from node.chain.block_sync import BlockSync
from node.chain.epochs import EpochSwitch
from node.errors import NodeError
from node.net.messages import (
    CH_CONSENSUS,
    CH_NODE,
    CH_TXS,
    Blocks,
    GetBlocks,
    MessageRefused,
    Pruned,
    Status,
    decode_gossip,
    decode_node_message,
    encode_node_message,
)
from node.validator import byzantine
from node.validator import round_timeline as tl
from node.validator.catch_up import SYNC_LAG, CatchUp, DriverHooks
from node.validator.effects import (
    Broadcast,
    Clock,
    Effect,
    Halted,
    RunExecution,
    SendTo,
    StorageFailed,
    SubmitGossip,
)
from node.validator.keyring import KeyRing
from node.validator.membership import Membership, PeerReports
from node.validator.metrics import NodeMetrics
from node.validator.pipeline import ExecutionPipeline
from node.validator.proposing import PayloadWait
from node.validator.replica_start import start_replica
from node.validator.safety_store import SafetyStore
from node.validator.status import STATUS_INTERVAL_MS, StatusExchange, StatusHooks
from node.validator.storage_failure import StorageFailure

__all__ = ["NOT_A_VALIDATOR", "STATUS_INTERVAL_MS", "SYNC_LAG", "ValidatorDriver"]

log = logging.getLogger("node.validator.driver")

# Validators named by open add_validator proposals that are admitted as (non-voting) peers ahead of their epoch.
MAX_PROSPECTIVE_PEERS: Final = 16
# After an unexpected failure: catch up and restart consensus after this long.
RETRY_AFTER_FAILURE_MS: Final = 1_000
RETRY_AFTER_ACTION_FAILURE_MS: Final = 500
# Safety store pending blocks and prospective peers are refreshed every this many heights.
HOUSEKEEPING_HEIGHTS: Final = 64
# A consensus message (proposal, vote, timeout, sync request) from a peer admitted as a full node.
NOT_A_VALIDATOR: Final = "not_a_validator"
# Full-node peers whose refused consensus messages were logged (once each), remembered at most.
MAX_REFUSED_LOGGED: Final = 1024


class ValidatorDriver:
    def __init__(self, app: Application, safety_store: SafetyStore, keyring: KeyRing, clock: Clock,
                 metrics: NodeMetrics, *, peer_addresses: Mapping[str, tuple[str, int]] | None = None,
                 peer_keys: Mapping[str, bytes] | None = None, byzantine_mode: str | None = None,
                 pipelined: bool = False, full_nodes: Mapping[str, bytes] | None = None,
                 full_only: bool = False, entropy: Callable[[int], bytes] = os.urandom) -> None:
        """`peer_addresses` override where peers are dialed; `peer_keys` are identity keys the operator configured
        for peers (admitted besides the ledger's). `byzantine_mode` ("equivocate"): testnet fault injection.
        `pipelined`: blocks execute on the host's execution thread (RunExecution effects) while the driver goes on
        (node/validator/pipeline.py); otherwise within the call that asks for them. `full_nodes`: node id -> identity key
        of the full nodes this node admits (`[p2p.full_nodes]`); `full_only`: this node is a full node (never signs).
        `entropy(n)`: n random bytes (the nonce of a recovery of lost safety state; the simulation passes a seeded
        source)."""
        self.app = app
        self.genesis = app.genesis
        self.node_id = keyring.node_id
        self.safety_store = safety_store
        self.clock = clock
        self.metrics = metrics
        self.byzantine_mode = byzantine_mode
        self.members = Membership(app.epochs, keyring, head_height=app.head.height,
                                  peer_addresses=peer_addresses or {},
                                  peer_keys=peer_keys or {},
                                  prospective=app.prospective_validators(MAX_PROSPECTIVE_PEERS),
                                  full_nodes=full_nodes, full_only=full_only)
        self._refused_logged: set[str] = set()
        self._following_logged = -1  # the epoch in which "following" was last logged
        self.reports = PeerReports(self.genesis.hash)
        self.replica_config = self._replica_config()
        self.replica: Replica | None = None
        self.sync = BlockSync()  # serves peers' GET_BLOCKS here; the catch-up's sessions fetch through it
        self.mode = "starting"
        self.fatal: str | None = None  # "code: message" once halted
        self.fatal_report: dict[str, str] | None = None  # {"code", "message"} (+ "path", "cause" for storage)
        self.counters: collections.Counter[str] = collections.Counter()
        self._out: list[Effect] = []
        self._deadlines: dict[str, int] = {}
        self._round_timer: tuple[Replica, int] | None = None
        self._payload = PayloadWait()
        self.pipelined = pipelined
        self._entropy = entropy
        self._recovery_logged: Replica | None = None  # the replica whose recovery was logged
        self._pipe = ExecutionPipeline()
        self._commit_due = False  # a waiting commit is being performed (_run_commits)
        self._round_deferred: tuple[Replica, int] | None = None  # a round timeout that fired while executing
        self._deferred_round = -1  # the last round whose timeout was deferred (at most once per round)
        self._metric_round = 0
        self._epoch_switch = False
        self._epoch_mark_ok = True
        self._tl = metrics.timeline  # the round timeline (node/validator/round_timeline.py), None: not kept
        self.catch_up = CatchUp(self.sync, app, clock, self.reports, metrics, self.counters, DriverHooks(
            emit=lambda effect: self._out.append(effect), peer_ids=lambda: self.members.peer_ids,
            signs=lambda: self.members.signing_keys is not None, target_height=self.sync_target_height,
            running=lambda: self.mode not in ("halted", "stopped"), leave_consensus=self._leave_consensus,
            start_consensus=self._start_consensus, commit=self._commit, commit_group=self._commit_group, halt=self._halt,
            storage_failed=self._storage_failed, guarded=self._guarded, retry_gap_at=self._retry_gap_at,
            follow_at=self._follow_at), self.node_id)
        status_hooks = StatusHooks(
            emit=lambda effect: self._out.append(effect), mode=lambda: self.mode,
            has_replica=lambda: self.replica is not None, catching_up=lambda: self.catch_up.active,
            start_consensus=self._start_consensus, stop_consensus=self._stop_consensus, catch_up=self.catch_up.begin,
            follow_soon=self.catch_up.follow_soon, guarded=self._guarded,
            status_at=lambda at_ms: self._deadlines.update(status=at_ms),
            startup_at=lambda at_ms: self._deadlines.update(startup=at_ms),
            cancel_startup=lambda: self._deadlines.pop("startup", None))
        self.status_exchange = StatusExchange(app, self.genesis.hash, clock, self.members, self.reports, self.counters,
                                              status_hooks, self.node_id)

    # ------------------------------------------------------------------------------------------------- interface

    @property
    def networked(self) -> bool:
        """Whether this node has peers (a one-validator dev chain has none and runs without a transport)."""
        return bool(self.members.peer_ids)

    @property
    def role(self) -> str:
        return self.members.role

    def take(self) -> list[Effect]:
        """The effects queued since the last call, in order."""
        out, self._out = self._out, []
        return out

    def next_deadline(self) -> int | None:
        """The monotonic ms at which `handle_timer` has work, or None."""
        deadlines = list(self._deadlines.values())
        sync_deadline = self.catch_up.deadline()
        if sync_deadline is not None:
            deadlines.append(sync_deadline)
        return min(deadlines, default=None)

    def start(self) -> None:
        if self.networked:
            self.mode = "starting"
            self.status_exchange.start()
            self.handle_timer()
        else:
            self._guarded("startup", self._start_consensus)
        log.info("node_started node=%s chain=%s genesis=%s height=%d epoch=%d validators=%d role=%s", self.node_id,
                 self.genesis.chain_id, self.genesis.hash.hex()[:16], self.app.head.height,
                 self.app.epochs.epoch, len(self.app.epochs.validator_set), self.role)

    def stop(self) -> None:
        """No more inputs will come (the host shuts down)."""
        self._stop_consensus()
        self._deadlines.clear()
        if self.mode != "halted":
            self.mode = "stopped"

    def on_message(self, peer: str, data: bytes) -> None:
        if self.mode in ("halted", "stopped"):
            return
        try:
            self._on_message(peer, data)
        except NodeError as exc:
            self._halt(exc.code, exc.message)
        except OSError as exc:
            self._storage_failed(exc)
        except Exception:
            log.exception("peer_message_failed peer=%s", peer)
            self.metrics.rejected_message("internal")

    def on_admitted(self) -> None:
        """The mempool admitted new transactions (a leader waiting for work may propose)."""
        if self._payload.pending is not None and self.mode not in ("halted", "stopped"):
            self._guarded("propose", self._try_propose)

    def on_peer_connected(self, peer: str) -> None:
        """A link to `peer` came up: send it this node's STATUS at once. A starting node waits for every peer's
        STATUS, and one behind learns of it, so neither waits for the peer's next periodic one (STATUS_INTERVAL_MS)."""
        if self.mode in ("halted", "stopped"):
            return
        self.status_exchange.send_to(peer)

    def handle_timer(self) -> None:
        if self.mode not in ("halted", "stopped"):
            self._guarded("timer", self._handle_timer)

    def _handle_timer(self) -> None:
        now = self.clock.monotonic_ms()
        self.catch_up.check_timeout(now)
        for name, at in sorted(self._deadlines.items(), key=lambda kv: (kv[1], kv[0])):
            if at > now or self._deadlines.get(name) != at:
                continue
            del self._deadlines[name]
            getattr(self, f"_timer_{name}")()

    # -------------------------------------------------------------------------------------------------- messages

    def _on_message(self, peer: str, data: bytes) -> None:
        if not data:
            self.metrics.rejected_message("empty")
            return
        channel, body = data[0], data[1:]
        if channel == CH_NODE:
            self._on_node_message(peer, body)
            return
        if peer in self.reports.mismatched:
            self.metrics.rejected_message("genesis_mismatch")
            return
        if channel == CH_CONSENSUS:
            if peer in self.members.full_peer_ids:
                self._refuse_full_node(peer)
                return
            if self.replica is None:
                self.metrics.rejected_message("following" if self.mode == "following" else "syncing")
                return
            if self._tl is not None:
                tl.note_incoming(self._tl, body)
            self._run(self.replica.on_bytes(peer.encode(), body))
        elif channel == CH_TXS:
            try:
                txs = decode_gossip(body)
            except MessageRefused as refused:
                self.metrics.rejected_message(refused.code)
                return
            if txs:
                self._out.append(SubmitGossip(peer, tuple(txs)))
        else:
            self.metrics.rejected_message("unknown_channel")

    def _refuse_full_node(self, peer: str) -> None:
        """A full node sent a consensus message: refused, nothing written; logged once per peer."""
        self.metrics.rejected_message(NOT_A_VALIDATOR)
        self.counters[NOT_A_VALIDATOR] += 1
        if peer not in self._refused_logged and len(self._refused_logged) < MAX_REFUSED_LOGGED:
            self._refused_logged.add(peer)
            log.warning("consensus_message_refused code=%s peer=%s: the peer is admitted as a full node; it may "
                        "follow the chain but never propose or vote", NOT_A_VALIDATOR, peer)

    def _on_node_message(self, peer: str, body: bytes) -> None:
        try:
            msg = decode_node_message(body)
        except MessageRefused as refused:
            self.metrics.rejected_message(refused.code)
            return
        if isinstance(msg, Status):
            self.status_exchange.on_status(peer, msg)
            return
        if peer in self.reports.mismatched:
            self.metrics.rejected_message("genesis_mismatch")
            return
        if isinstance(msg, GetBlocks) and msg.start < self.app.store.base_height():
            # Pruned here (or below the snapshot this node joined from): say so, with the lowest height kept.
            self._out.append(SendTo(peer, encode_node_message(Pruned(msg.request_id, self.app.store.base_height()))))
        elif isinstance(msg, GetBlocks):
            items = self.sync.serve(peer, msg.start, msg.max_count, self.app, self.clock.monotonic_ms())
            if items is None:
                self.metrics.rejected_message("sync_rate")
            else:
                self._out.append(SendTo(peer, encode_node_message(Blocks(msg.request_id, items))))
        elif isinstance(msg, Pruned):
            log.info("sync_peer_pruned peer=%s kept_from=%d: it no longer keeps the blocks asked for", peer,
                     msg.kept_from)
            self.catch_up.on_blocks(peer, Blocks(msg.request_id, []))
        else:
            assert isinstance(msg, Blocks)
            self.catch_up.on_blocks(peer, msg)

    def _timer_status(self) -> None:
        self.status_exchange.status_timer()

    def best_peer_height(self) -> int:
        """The highest height any peer claims (StatusExchange.best_height: informational)."""
        return self.status_exchange.best_height()

    def sync_target_height(self) -> int:
        """The height peers holding f + 1 voting power report (StatusExchange.target_height)."""
        return self.status_exchange.target_height()

    # ---------------------------------------------------------------------------------------------- start, sync

    def _timer_startup(self) -> None:
        self.status_exchange.startup_timer()

    def _timer_retry(self) -> None:
        self._guarded("resync", self.catch_up.begin, 0, "consensus")

    def _leave_consensus(self) -> None:
        """For a block sync session (node/validator/catch_up.py): no replica while blocks are fetched."""
        self._stop_consensus()
        self.mode = "syncing"

    def sync_undeliverable(self, peer: str) -> None:
        """A sync request to `peer` could not be queued (not connected): ask another peer."""
        self.catch_up.undeliverable(peer)

    def apply_synced_group(self, peer: str, request_id: int,
                           certified: Sequence[tuple[Block, CommitCertificate]]) -> tuple[int, str | None]:
        """Consecutive blocks of the ApplyBlocks batch (peer, request_id), committed in one synced write (only the
        last may end an epoch): how many were committed, and None or why the batch stops after them."""
        return self.catch_up.apply_synced_group(peer, request_id, certified)

    def sync_batch_wanted(self, peer: str, request_id: int) -> bool:
        """Whether the host should go on executing the ApplyBlocks batch (peer, request_id) (CatchUp.applying)."""
        return self.catch_up.applying(peer, request_id)

    def sync_batch_done(self, peer: str, request_id: int, applied: int, error: str | None) -> None:
        """The host applied `applied` blocks of the ApplyBlocks batch (peer, request_id), then stopped at `error`."""
        self.catch_up.batch_done(peer, request_id, applied, error)

    def import_certified(self, block: Block, cert: CommitCertificate) -> str | None:
        """Commit a certified block that extends the head (CatchUp.import_certified): None, or why not."""
        return self.catch_up.import_certified(block, cert)

    def _timer_gap(self) -> None:
        self.catch_up.gap_timer()

    def _retry_gap_at(self, at_ms: int) -> None:
        self._deadlines["gap"] = at_ms

    def _guarded(self, what: str, step: Callable[..., None], *args: Any) -> None:
        """Run a step of the paths that end by starting consensus (startup, resync, gap fill, sync): an
        inconsistency with the certified chain halts the node; any other failure is logged and retried by block
        sync, so the node never sits in "syncing" without a deadline that will bring consensus back. A storage
        failure stops the node instead (`_storage_failed`)."""
        try:
            step(*args)
        except NodeError as exc:
            self._halt(exc.code, exc.message)
        except OSError as exc:
            self._storage_failed(exc)
        except Exception:
            log.exception("%s_failed node=%s: retrying by block sync in %d ms", what, self.node_id,
                          RETRY_AFTER_FAILURE_MS)
            self.counters[f"{what}_failures"] += 1
            self._retry_later(RETRY_AFTER_FAILURE_MS)

    def _retry_later(self, delay_ms: int) -> None:
        self._stop_consensus()
        self.catch_up.abandon()
        self.mode = "syncing"
        self._deadlines["retry"] = self.clock.monotonic_ms() + delay_ms

    def _halt(self, code: str, message: str) -> None:
        """A fatal inconsistency: stop rather than continue on a diverged state."""
        if self.mode == "halted":
            return
        log.critical("node_halted code=%s %s", code, message)
        self._stop(code, message, {"code": code, "message": message})
        self._out.append(Halted(code, message))

    def _storage_failed(self, exc: OSError) -> None:
        """A store's read or write failed. Stop at once: no replica (nothing more is signed), no timers, no sync,
        and no further write from this process (node/validator/storage_failure.py: a write after a failed one can
        be lost at reopen). Logged once, with the file and the operating system's text, no traceback."""
        if self.mode in ("halted", "stopped"):
            return
        failure = StorageFailure.from_error(exc)
        log.critical("node_halted code=%s path=%s cause=%s height=%d: %s", failure.code, failure.path or "-",
                     failure.cause, self.app.head.height, failure.message)
        self._stop(failure.code, failure.message, failure.report())
        self._out.append(StorageFailed(failure))

    def _stop(self, code: str, message: str, report: dict[str, str]) -> None:
        self.fatal = f"{code}: {message}"
        self.fatal_report = report
        self.metrics.fatal(code)
        self._stop_consensus()
        self._deadlines.clear()
        self.catch_up.close()
        self.mode = "halted"

    # ------------------------------------------------------------------------------------------------- consensus

    def _start_consensus(self) -> None:
        if self.replica is not None or self.mode in ("halted", "stopped"):
            return
        if self.members.signing_keys is None:
            self._follow()
            return
        self.replica, lost = start_replica(self.app, self.safety_store, self.members.signing_keys,
                                           self.replica_config, self.node_id, entropy=self._entropy)
        self.mode = "consensus"
        head, epoch = self.app.head, self.replica.vs.epoch
        if lost:
            log.warning("safety_state_lost node=%s epoch=%d height=%d: this node may have signed in this epoch "
                        "before its consensus directory was lost; it follows without signing until a quorum's "
                        "recovery statements bound what it signed (docs/consensus.md §13)",
                        self.node_id, epoch, head.height)
        log.info("consensus_started node=%s height=%d round=%d epoch=%d role=%s", self.node_id, head.height,
                 self.replica.current_round, epoch, self.role)
        self._run(self.replica.start())

    def _follow(self) -> None:
        """This node signs nothing in this epoch: no replica; a peer's STATUS above the head starts block sync."""
        if self._following_logged != self.app.epochs.epoch:
            self._following_logged = self.app.epochs.epoch
            log.info("following node=%s height=%d epoch=%d role=%s: no replica, blocks fetched by block sync",
                     self.node_id, self.app.head.height, self.app.epochs.epoch, self.role)
        self.mode = "following"

    def _timer_follow(self) -> None:
        if self.mode == "following" and self.sync_target_height() > self.app.head.height:
            self.catch_up.follow_soon()

    def _follow_at(self, at_ms: int) -> None:
        self._deadlines.setdefault("follow", at_ms)

    def set_full_nodes(self, full_nodes: Mapping[str, bytes]) -> None:
        """The operator's full nodes changed (its config was reloaded): admit exactly these from now on."""
        changed = self.members.set_full_nodes(full_nodes)
        if changed is not None:
            self._out.append(changed)
            self.reports.keep_only(self.members.peers)

    def _stop_consensus(self) -> None:
        self.replica = None
        self._round_timer = None
        self._deadlines.pop("round", None)
        self._payload.cancel()
        self._deadlines.pop("payload", None)
        self._pipe.clear()
        self._round_deferred = None
        self._deferred_round = -1

    def _run(self, actions: list[Any]) -> None:
        """Perform actions in order; answers (payload, execution) are fed back and their actions run next."""
        pending = collections.deque(actions)
        while pending and self.replica is not None:
            replica = self.replica
            action = pending.popleft()
            try:
                follow = self._perform(replica, action)
            except NodeError as exc:
                self._halt(exc.code, exc.message)
                return
            except OSError as exc:
                self._storage_failed(exc)
                return
            except Exception:
                # The replica counts every action of its list as performed: losing the rest of the list (commits
                # among them) would leave it ahead of the store. Restart it from the store's head instead.
                log.exception("replica_action_failed node=%s action=%s: consensus restarts from the head",
                              self.node_id, type(action).__name__)
                self.counters["replica_restarts"] += 1
                self._retry_later(RETRY_AFTER_ACTION_FAILURE_MS)
                return
            if self._epoch_switch:
                # The epoch-ending block committed: the retired replica's remaining actions are dropped (it signs
                # nothing more; messages may be lost anyway) and the next epoch's replica starts from the head.
                self._epoch_switch = False
                if replica.epoch_change is None:
                    log.warning("epoch_end_without_retirement node=%s epoch=%d", self.node_id, replica.vs.epoch)
                self._stop_consensus()
                self._start_consensus()
                return
            if follow:
                # Answers (on_executed) are inputs: their actions come after the rest of the current list, which
                # may already hold earlier commits (actions of one list are performed in list order).
                pending.extend(follow)

    def _perform(self, replica: Replica, action: Any) -> list[Any] | None:
        if isinstance(action, PersistSafety):
            timeline = self._tl
            started = 0 if timeline is None else timeline.now_us()
            written = self.safety_store.persist(action.state, action.blocks, self.app.head.height)
            if timeline is not None:
                timeline.note(tl.PERSIST, self.app.head.height, action.state.highest_vote_round,
                              timeline.now_us() - started, written)
            if replica.recovered_bound is not None and self._recovery_logged is not replica:
                self._recovery_logged = replica
                log.warning("safety_state_recovered node=%s epoch=%d bound=%d: a quorum's statements bound every "
                            "round this node signed in before; it signs again above round %d", self.node_id,
                            replica.vs.epoch, replica.recovered_bound, replica.recovered_bound + 1)
        elif isinstance(action, Send):
            self._send_consensus(action.to.decode(), encode_message(action.message))
            if self._tl is not None and isinstance(action.message, Vote):
                self._tl.note(tl.VOTE_OUT, self.app.head.height, action.message.round)
            if self.byzantine_mode is not None and isinstance(action.message, Vote):
                self._send_consensus(action.to.decode(), encode_message(self._twin(action.message)))
        elif isinstance(action, BroadcastAction):
            self._out.append(Broadcast(bytes((CH_CONSENSUS,)) + encode_message(action.message)))
            if self._tl is not None and isinstance(action.message, Proposal):
                header = action.message.block.header
                self._tl.note(tl.PROPOSAL_OUT, header.height, header.round, len(action.message.block.payload))
            if self.byzantine_mode is not None and isinstance(action.message, Proposal):
                self._out.append(Broadcast(bytes((CH_CONSENSUS,)) + encode_message(self._twin(action.message))))
        elif isinstance(action, SyncBlocks):
            self._send_consensus(action.to.decode(), encode_message(action.request))
        elif isinstance(action, SetTimer):
            if action.round != self._metric_round:
                if replica.safety.high_qc.round + 1 != action.round:
                    self.metrics.view_change()
                self._metric_round = action.round
                self.metrics.set_round(action.round)
                if self._tl is not None:
                    self._tl.note(tl.ROUND, self.app.head.height, action.round,
                                  int(replica.safety.high_qc.round + 1 == action.round))
            self._round_timer = (replica, action.round)
            self._deadlines["round"] = self.clock.monotonic_ms() + action.delay_ms
        elif isinstance(action, RequestPayload):
            if self._tl is not None:
                self._tl.note(tl.PAYLOAD_ASKED, action.height, action.round)
            self._payload.request(replica, action, self.clock.monotonic_ms())
            self._deadlines.pop("payload", None)
            self._try_propose()
        elif isinstance(action, Execute):
            if self._tl is not None:
                self._tl.note(tl.EXEC_ASKED, action.block.header.height, action.block.header.round,
                              len(action.block.payload))
            if not self.pipelined:
                return self._execute(replica, action)
            if self._pipe.should_queue_execute():
                self._pipe.queue_execute(replica, action)
                return None
            return self._begin_execution(replica, action)
        elif isinstance(action, Commit):
            if self.pipelined and not self._commit_due and (self._pipe.busy or self._pipe.has_commits()):
                # While a block executes (or waits to), or behind a waiting commit: the commit runs once the
                # execution thread is idle, after the host has sent what this call queued (_run_commits).
                self._pipe.queue_commit(replica, action)
                self._deadlines["soon"] = self.clock.monotonic_ms()
                return None
            if action.block.header.height > self.app.head.height + 1:
                # The replica committed a block whose ancestors are not applied here: catch them up by block sync
                # (certificates verified) instead of halting, then apply this commit.
                self.catch_up.commit_after_gap(action.block, action.certificate)
                return None
            self._commit(action.block, action.certificate)
        elif isinstance(action, ReportEvidence):
            ev = action.evidence
            self.app.record_evidence(ev)
            self.counters["evidence"] += 1
            named = replica.vs.validators[ev.validator].id.decode() if ev.validator < len(replica.vs) else "?"
            log.warning("equivocation_evidence validator=%s epoch=%d round=%d kind=%s", named, ev.epoch, ev.round,
                        "proposal" if ev.kind == ev.KIND_PROPOSAL else "vote")
        else:
            raise TypeError(f"unknown action {action!r}")
        return None

    def _twin(self, message: Any) -> Any:
        keys = self.members.signing_keys
        assert keys is not None
        return byzantine.twin(message, keys.bls_secret, self.genesis.consensus_chain_id,
                              self.app.bls.backend, self.clock.wall_ms())

    def _send_consensus(self, peer: str, data: bytes) -> None:
        if peer != self.node_id:
            self._out.append(SendTo(peer, bytes((CH_CONSENSUS,)) + data))

    def _timer_round(self) -> None:
        token = self._round_timer
        self._round_timer = None
        if token is not None and token[0] is self.replica and self._pipe.busy and self._deferred_round != token[1]:
            # Never let a round time out because this node is busy executing: the timeout waits for the execution
            # to end (_after_execution re-arms it), once per round.
            self._deferred_round = token[1]
            self._round_deferred = token
            return
        if token is not None and token[0] is self.replica:
            replica, round_ = token
            self.metrics.local_timeout()
            if self._tl is not None:
                self._tl.note(tl.TIMEOUT, self.app.head.height, round_)
            log.info("round_timeout node=%s round=%d height=%d", self.node_id, round_, self.app.head.height)
            self._run(replica.on_timeout(round_))

    def _execute(self, replica: Replica, action: Execute) -> list[Any]:
        block = action.block
        voting = block.header.height > replica.committed_height
        timeline = self._tl
        started = 0 if timeline is None else timeline.now_us()
        result = self.app.execute(block, action.parent_state_root, self.clock.wall_ms() if voting else None)
        if timeline is not None:
            spent = timeline.now_us() - started
            timeline.note(tl.EXEC_DONE, block.header.height, block.header.round, spent, spent)
        return self._executed(replica, block, result)

    def _begin_execution(self, replica: Replica, action: Execute) -> list[Any] | None:
        """Pipelined: answer at once when the cheap checks decide, else hand the block to the host (RunExecution)."""
        block = action.block
        voting = block.header.height > replica.committed_height
        started = self.app.begin_execution(block, action.parent_state_root,
                                           self.clock.wall_ms() if voting else None)
        if isinstance(started, Execution):
            return self._executed(replica, block, started)
        self._pipe.start(replica, action, started, self.clock.monotonic_ms())
        self._out.append(RunExecution(started))
        # Write the block to the safety store while it executes: the vote after it then writes only the safety state.
        self._pipe.stage_later(replica, block)
        self._deadlines["soon"] = self.clock.monotonic_ms()
        return None

    def _timer_soon(self) -> None:
        """Runs once the host has performed the effects queued before (node/validator/pipeline.py): the executing
        block's write to the safety store (staged), then the waiting commits if the execution thread is idle."""
        blocks = self._pipe.take_staged(self.replica)
        if blocks:
            timeline = self._tl
            started = 0 if timeline is None else timeline.now_us()
            if self.safety_store.stage(blocks, self.app.head.height) and timeline is not None:
                timeline.note(tl.STAGED, blocks[-1].header.height, blocks[-1].header.round,
                              timeline.now_us() - started, sum(len(b.payload) for b in blocks))
        self._run_commits()

    def _run_commits(self) -> None:
        """Run the waiting commits whose blocks have executed -- when no execution runs or waits (a commit on the
        loop competes with it for the interpreter and delays the vote), or when MAX_COMMITS_WAITING wait."""
        while self.replica is not None and self._pipe.commits_due():
            ready = self._pipe.ready_commit(self.replica)
            if ready is None:
                break
            self._commit_due = True
            try:
                self._run([ready[1]])
            finally:
                self._commit_due = False

    def execution_done(self, pending: PendingExecution, outcome: BlockOutcome | None,
                       cost_ms: int | None = None) -> None:
        """The host ran a RunExecution (costing `cost_ms` of CPU, when it measured it): answer the replica, then
        what waited for it."""
        if self.mode in ("halted", "stopped"):
            return
        self._guarded("execution", self._execution_done, pending, outcome, cost_ms)

    def execution_failed(self, pending: PendingExecution, error: BaseException) -> None:
        """A RunExecution raised (not an invalid block): a store read failed (OSError) -- the node stops as for any
        storage failure -- or a bug: like a failed action, consensus restarts from the head."""
        if self.mode in ("halted", "stopped") or self._pipe.running is None or self._pipe.running.pending is not pending:
            return
        if isinstance(error, OSError):  # a store read failed on the execution thread
            self._storage_failed(error)
            return
        log.error("execution_failed node=%s height=%d: %r: consensus restarts from the head", self.node_id,
                  pending.block.header.height, error)
        self.counters["replica_restarts"] += 1
        self._retry_later(RETRY_AFTER_ACTION_FAILURE_MS)

    def _execution_done(self, pending: PendingExecution, outcome: BlockOutcome | None, cost_ms: int | None) -> None:
        running = self._pipe.finish(pending, self.clock.monotonic_ms(), cost_ms)
        result = self.app.end_execution(pending, outcome)  # kept even for a stopped replica: a new one may ask
        if running is not None and running.replica is self.replica:
            self._run(self._executed(running.replica, pending.block, result))
        self._after_execution()

    def _after_execution(self) -> None:
        """Run what waited for an execution: the next execution, a proposal on it, a round timeout that fired
        meanwhile; the waiting commits run at the "soon" deadline, after the host has sent the vote."""
        while self.replica is not None:
            queued = self._pipe.next_execute(self.replica)
            if queued is None:
                break
            follow = self._begin_execution(*queued)
            if follow:
                self._run(follow)
        if self._pipe.has_commits():
            self._deadlines["soon"] = self.clock.monotonic_ms()  # after the host has sent the vote
        if self._payload.pending is not None:
            self._try_propose()
        deferred = self._round_deferred
        if deferred is not None and not self._pipe.busy:
            self._round_deferred = None
            if deferred[0] is self.replica and self._round_timer is None:
                # The round timed out while this node executed: give the round (its votes, a QC) a little time.
                self._round_timer = deferred
                self._deadlines["round"] = self.clock.monotonic_ms() + self.app.epochs.params.base_timeout_ms // 4

    def _executed(self, replica: Replica, block: Block, result: Execution) -> list[Any]:
        if result.reason == "block_time_in_future":
            log.warning("vote_withheld height=%d round=%d reason=%s", block.header.height, block.header.round,
                        result.reason)
            self.metrics.rejected_message(f"vote_withheld_{result.reason}")
        elif result.state_root is None and result.reason != "invalid":
            log.warning("block_refused height=%d round=%d reason=%s", block.header.height, block.header.round,
                        result.reason)
            self.metrics.rejected_message(f"block_{result.reason}")
        return replica.on_executed(block.id, result.state_root, result.next_validators, vote=result.vote)

    def _try_propose(self) -> None:
        """Propose once the payload wait is over (node/validator/proposing.py)."""
        pending = self._payload.pending
        if pending is not None and self._pipe.executing(pending.action.parent_id):
            return  # the proposer must know what its branch carries: _after_execution asks again
        ready, deadline = self._payload.check(self.app, self.replica, self.clock.monotonic_ms())
        if not ready:
            if deadline is None:
                self._deadlines.pop("payload", None)
            else:
                self._deadlines["payload"] = deadline
            return
        assert pending is not None
        self._deadlines.pop("payload", None)
        params = self.app.epochs.params
        budget = self._pipe.block_budget(params.base_timeout_ms, params.max_block_txs)
        timeline = self._tl
        started = 0 if timeline is None else timeline.now_us()
        payload = self.app.propose(pending.action.parent_id, self.clock.wall_ms(), budget)
        if timeline is not None:
            timeline.note(tl.PROPOSED, pending.action.height, pending.action.round, len(payload),
                          timeline.now_us() - started)
        self._run(pending.replica.on_payload(pending.action.round, payload))

    def _timer_payload(self) -> None:
        self._try_propose()

    # --------------------------------------------------------------------------------------------------- commits

    def _commit(self, block: Block, cert: CommitCertificate) -> None:
        """The one commit path (replica commits, a commit after a gap, block sync)."""
        timeline = self._tl
        started = 0 if timeline is None else timeline.now_us()
        finalized = self.app.finalize(block, cert)
        if finalized.next_epoch is not None:
            self._mark_epoch(finalized.next_epoch.epoch)
        result = self.app.commit(finalized)
        if timeline is not None:
            timeline.note(tl.COMMIT, block.header.height, block.header.round, timeline.now_us() - started,
                          result.block.tx_count)
        self._after_commit(result)

    def _commit_group(self, certified: Sequence[tuple[Block, CommitCertificate]]) -> None:
        """The commit path for consecutive certified blocks written in one synced batch (block sync): the same steps
        as `_commit`, with one write for all of them; only the last may end an epoch."""
        timeline = self._tl
        started = 0 if timeline is None else timeline.now_us()
        try:
            finalized = self.app.finalize_group(certified)
        except NodeError:
            if len(certified) == 1:
                raise
            # A block disagrees with its certificate (the node halts on it): commit those before it first, one by
            # one, as they would have been, so the store keeps them; the one that disagrees raises again.
            for block, cert in certified:
                self._commit(block, cert)
            raise
        ending = finalized[-1].next_epoch
        if ending is not None:
            self._mark_epoch(ending.epoch)
        results = self.app.commit_group(finalized)
        if timeline is not None:
            last = certified[-1][0].header
            timeline.note(tl.COMMIT, last.height, last.round, timeline.now_us() - started,
                          sum(r.block.tx_count for r in results))
        for result in results:
            self._after_commit(result)

    def _after_commit(self, result: CommitResult) -> None:
        committed = result.block
        # Transactions made final: a block can carry a transaction again after an ancestor committed it (its receipt
        # is TX_REPLAYED); counting the block's length would count it twice.
        took_effect = committed.newly_final_txs
        self.metrics.committed(took_effect, list(result.pool_ages))
        self.counters["committed_txs"] += took_effect
        self.counters["committed_blocks"] += 1
        self.metrics.set_height(committed.height)
        if committed.height % HOUSEKEEPING_HEIGHTS == 0:
            self.safety_store.prune(committed.height)
        if self.mode == "consensus":
            self.status_exchange.announce_head()
        if result.epoch is not None:
            self._adopt_epoch(result.epoch)
            return
        if committed.height % HOUSEKEEPING_HEIGHTS == 0 or result.proposals_changed:
            changed = self.members.refresh_prospective(self.app.prospective_validators(MAX_PROSPECTIVE_PEERS))
            if changed is not None:
                self._out.append(changed)
        identity_switch = self.members.committed(committed.height)
        if identity_switch is not None:
            self._out.append(identity_switch)

    def _mark_epoch(self, epoch: int) -> None:
        """Before the block that starts `epoch` is committed: mark the safety store (nothing signed in it yet) when
        this node can show that, i.e. its consensus directory has been continuous up to here:
          - it holds a safety state (of an older epoch: a signature in `epoch` would have replaced it), or the mark of
            the ending epoch (the marks chain back to the directory's creation by keys that never signed);
          - or its replica is live at this boundary (it commits the epoch-ending block through consensus, so `epoch`
            has not begun for it and it cannot have signed in it).
        Otherwise (a node whose data directory was wiped and that is crossing the boundary by block sync) it may
        have signed in `epoch` before the wipe: no mark, so it starts that epoch with its safety state lost and signs
        again from the next one (docs/consensus.md §10, "Epochs in the node")."""
        mark = self.safety_store.epoch_mark()
        continuous = (self.safety_store.has_state() or mark == epoch - 1
                      or (self.replica is not None and self.mode == "consensus"))
        self._epoch_mark_ok = continuous
        if continuous:
            self.safety_store.mark_epoch(epoch)
        else:
            log.warning("epoch_mark_withheld node=%s epoch=%d: the consensus directory shows no continuity up to this "
                        "epoch (wiped and catching up?); this node will not sign in it", self.node_id, epoch)

    def _adopt_epoch(self, switch: EpochSwitch) -> None:
        """The block that ends the current epoch committed (its proof is stored with it): switch to the next."""
        self.replica_config = self._replica_config()
        self._out.extend(self.members.enter_epoch(switch, self.app.prospective_validators(MAX_PROSPECTIVE_PEERS)))
        self.safety_store.begin_epoch(switch.started.epoch, mark=self._epoch_mark_ok)
        self._epoch_mark_ok = True
        self.reports.keep_only(self.members.peers)
        if self.replica is not None:
            self._epoch_switch = True
        self.counters["epoch_changes"] += 1

    # ----------------------------------------------------------------------------------------------------- peers

    def _replica_config(self) -> ReplicaConfig:
        params = self.app.epochs.params
        return ReplicaConfig(chain_id=self.genesis.consensus_chain_id, base_timeout_ms=params.base_timeout_ms,
                             max_backoff_exponent=params.max_backoff_exponent,
                             max_payload_bytes=params.max_block_bytes)
