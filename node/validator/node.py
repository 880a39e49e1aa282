"""A validator node: the Application, the validator driver and the peer transport, assembled and run on one asyncio
event loop. This module is the only place where they meet I/O:

    node = ValidatorNode(genesis, keys, data_dir, listen=..., peer_addresses=...)
    await node.start(); ...; await node.stop()

- the ledger store (LevelDB, data/ledger) and the safety store (data/consensus) are opened here;
- the Application (node/chain/application.py) owns execution, the mempool, commits and epochs; the driver
  (node/validator/driver.py) owns the replica, block sync and the timers, and performs no I/O: this host feeds it the
  transport's messages and one timer (at `driver.next_deadline()`), and performs its effects after every input;
- block sync batches are applied here in height order: their blocks executed one after another on the execution
  thread against their commit certificates (no signature check where the certified root proves it unnecessary), and
  committed in groups of consecutive blocks, one synced write each, while the next block executes;
- transactions from clients (`submit`, `submit_many`) and from peers (gossip) are admitted through the Application,
  signatures checked on the worker processes; newly admitted client transactions are gossiped in batches of
  GOSSIP_BATCH every GOSSIP_FLUSH_MS (peers gossip their own clients' transactions).

The node as the HTTP API and the admin socket see it is `node.view` (node/validator/view.py).

A failed disk read or write (full, read-only, failing: the driver's StorageFailed) stops the node without ending the
process: the transport closes (peers see it gone; it signs nothing more), the stores are never written again,
submissions are refused (NODE_HALTED), and reads of the committed state, /v1/status, /health (503) and /metrics keep
answering with the failure until the operator stops the node; `ledger node run` then exits with code 4
(docs/operations.md, "A failing disk").

A node that signs nothing in the current epoch (configured `role = "full"`, a removed validator, a validator before
its epoch) follows by block sync (the driver's "following" mode) and serves the same API. Transactions submitted to
it are admitted to its mempool and forwarded (gossiped) to its validator peers; when none is connected it refuses
them (NO_VALIDATOR_REACHABLE) and keeps nothing. `reload_full_nodes()` re-reads `[p2p.full_nodes]` from the config
file: the full nodes a validator admits change with no restart (docs/operations.md, "Node roles").

Limits: at most MAX_GOSSIP_TASKS gossip admissions in flight (more are dropped and counted); everything else is
bounded by the transport, the mempool and block sync (docs/mempool.md, docs/transport.md).
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import logging
import os
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any, Final

from consensus.bls import BlsBackend
from consensus.certificates import SignatureVerifier
from consensus.messages import Block, CommitCertificate
from ledger.protocol import PROTOCOL_VERSION, Protocol
from ledger.snapshot import CHUNK_TARGET_BYTES
from ledger.store import LedgerStore
from ledger.transaction import SignedTransaction
from ledger.transition import BlockOutcome
from node.chain.application import Application, PendingExecution
from node.chain.execution import CommittedBlock
from node.chain.genesis import Genesis, load_genesis
from node.chain.mempool import NO_VALIDATOR_REACHABLE, NODE_HALTED, TX_ALREADY_PENDING, Admission, MempoolLimits
from node.chain.protocol import bls_backend as node_bls_backend
from node.chain.protocol import node_protocol
from node.chain.pruning import BlockPruner
from node.chain.sigverify import Ed25519Verifier
from node.chain.snapshots import DEFAULT_SNAPSHOT_KEEP, SnapshotServer, SnapshotStore, SnapshotTaker
from node.net.messages import GOSSIP_BATCH, MessageRefused, encode_gossip
from node.net.snapshot_messages import CH_SNAPSHOTS, decode_snapshot_message, encode_snapshot_message
from node.net.transport import Transport, TransportConfig
from node.validator.byzantine import BYZANTINE_MODES
from node.validator.config import ConfigError, NodeConfig, load_config
from node.validator.driver import ValidatorDriver
from node.validator.effects import (
    ApplyBlocks,
    Broadcast,
    Clock,
    Halted,
    PeersChanged,
    RunExecution,
    SendTo,
    StorageFailed,
    SubmitGossip,
    SystemClock,
)
from node.validator.keyfile import NodeKeys, load_keys, load_next_keys, never_signed_path
from node.validator.keyring import KeyRing
from node.validator.metrics import NodeMetrics
from node.validator.round_timeline import EXEC_DONE
from node.validator.safety_store import SafetyStore
from node.validator.storage_failure import StorageFailure
from node.validator.view import NodeView

__all__ = ["SYNC_GROUP_BLOCKS", "SYNC_GROUP_BYTES", "ValidatorNode", "sync_group_ends"]

log = logging.getLogger("node.validator.node")

GOSSIP_FLUSH_MS: Final = 10
COMMIT_TIMES_KEPT: Final = 16_384
MAX_GOSSIP_TASKS: Final = 64
# Block sync commits the blocks of a batch in groups, one synced write each (ValidatorNode._apply_blocks): a group
# holds at most this many blocks, and ends at the first block that brings its payloads to this many bytes (~4,000
# transfers; the write batch is built in memory before the write).
SYNC_GROUP_BLOCKS: Final = 64
SYNC_GROUP_BYTES: Final = 1 << 20


def _timed_run(pending: PendingExecution) -> tuple[BlockOutcome | None, int, int]:
    """Run an execution on this thread: its outcome, the CPU microseconds it took (this thread's time only) and the
    wall microseconds."""
    started, wall = time.thread_time_ns(), time.monotonic_ns()
    outcome = pending.run()
    return outcome, (time.thread_time_ns() - started) // 1_000, (time.monotonic_ns() - wall) // 1_000


def sync_group_ends(blocks: int, payload_bytes: int, height: int, snapshots: SnapshotTaker | None) -> bool:
    """Whether block sync's group commit ends with the block at `height`, the group then holding `blocks` blocks
    of `payload_bytes` (ValidatorNode._apply_blocks; the group also ends at the batch's end and where the next block
    cannot be executed ahead, e.g. after an epoch-ending block): at the bounds, and where a snapshot is taken (it
    reads the store as that block's commit leaves it)."""
    return (blocks >= SYNC_GROUP_BLOCKS or payload_bytes >= SYNC_GROUP_BYTES
            or (snapshots is not None and snapshots.takes(height)))


class ValidatorNode:
    """One validator node (also the single-validator dev chain, and a node that only follows: an observer)."""

    def __init__(self, genesis: Genesis, keys: NodeKeys, data_dir: str, *,
                 listen: tuple[str, int] = ("127.0.0.1", 0),
                 peer_addresses: Mapping[str, tuple[str, int]] | None = None,
                 peer_keys: Mapping[str, bytes] | None = None,
                 fault_injection: bool = False, mempool_max_txs: int = 20_000,
                 mempool_max_bytes: int = 64 << 20, protocol: Protocol | None = None,
                 sig_verifier: Ed25519Verifier | None = None, byzantine: str | None = None,
                 next_keys: Sequence[NodeKeys] = (),
                 load_next_keys: Callable[[], Sequence[NodeKeys]] | None = None,
                 bls_backend: BlsBackend | None = None, clock: Clock | None = None,
                 never_signed: bool = False, pipelined: bool = True, snapshot_interval: int = 0,
                 snapshot_keep: int = DEFAULT_SNAPSHOT_KEEP, snapshot_chunk_bytes: int = CHUNK_TARGET_BYTES,
                 keep_blocks: int = 0, full_nodes: Mapping[str, bytes] | None = None, full_only: bool = False,
                 config_path: str | None = None) -> None:
        """`keys`: this node's keys. Its id need not be in the genesis file: a validator added later by governance
        starts from genesis, follows as a full node and votes from the epoch whose record names it. `next_keys`:
        further keys of the same node (`ledger keys rotate`), used from the epoch whose record names them.
        `load_next_keys()` is asked again when an epoch names keys the node does not hold (next keys written while
        the node runs); it may raise KeyFileError. `sig_verifier`: a shared Ed25519 verifier (closed by its owner);
        by default the node starts its own process pool. `never_signed`: these keys have never signed (a new node's
        first start): a consensus directory created now may sign in the current epoch; without it, a new directory
        may replace one lost after the node signed, so the node first recovers a bound on what it signed from a
        quorum of validators (consensus/recovery.py, docs/consensus.md §13) and votes again only above it. `pipelined`: blocks execute on
        the node's execution thread while the loop goes on (False: on the loop, as a one-thread reference).
        `snapshot_interval`: take a snapshot every that many heights and serve it to peers joining by state sync
        (0: none); `snapshot_keep` of them are kept. `keep_blocks`: keep only that many recent blocks (0: all).
        `full_nodes`: node id -> identity key of the full nodes this node admits; `full_only`: this node is a full
        node (it never signs); `config_path`: the config file `reload_full_nodes()` reads again."""
        if byzantine is not None and not (fault_injection and genesis.chain_id.startswith("testnet-")
                                          and byzantine in BYZANTINE_MODES):
            raise ValueError("a Byzantine test mode needs a testnet-... chain with fault injection enabled")
        keyring = KeyRing(keys, next_keys, load_next_keys)
        self.genesis = genesis
        self.node_id = keys.node_id
        self.data_dir = data_dir
        self.clock = clock or SystemClock()
        self.metrics = NodeMetrics(data_dir=data_dir, round_timeline=True)
        self._own_sig_verifier = sig_verifier is None
        self.sig_verifier = sig_verifier or Ed25519Verifier()
        os.makedirs(data_dir, exist_ok=True)
        store = safety = None
        try:
            store = LedgerStore.open(os.path.join(data_dir, "ledger"))
            self.app = Application(store, genesis, protocol=protocol or node_protocol(),
                                   tx_verifier=self.sig_verifier, bls=SignatureVerifier(bls_backend or node_bls_backend()),
                                   mempool_limits=MempoolLimits(max_txs=mempool_max_txs, max_bytes=mempool_max_bytes,
                                                                max_txs_per_account=min(2_000, mempool_max_txs)),
                                   clock=time.monotonic)
            safety = SafetyStore(os.path.join(data_dir, "consensus"))
            safety.bind_genesis(genesis.hash, never_signed_epoch=self.app.epochs.epoch if never_signed else None)
            self.safety_store = safety
            self.driver = ValidatorDriver(self.app, safety, keyring, self.clock, self.metrics,
                                          peer_addresses=peer_addresses, peer_keys=peer_keys,
                                          byzantine_mode=byzantine if byzantine == "equivocate" else None,
                                          pipelined=pipelined, full_nodes=full_nodes, full_only=full_only)
            self.transport: Transport | None = None
            if self.driver.networked:
                self.transport = Transport(self.driver.members.identity(), genesis.chain_id, self.driver.members.peers,
                                           TransportConfig(listen_host=listen[0], listen_port=listen[1],
                                                           fault_injection=fault_injection),
                                           on_link_up=self._on_link_up, protocol_version=PROTOCOL_VERSION,
                                           genesis_hash=genesis.hash)
        except BaseException:
            for opened in (safety, store):
                if opened is not None:
                    opened.close()
            if self._own_sig_verifier:
                self.sig_verifier.close()
            raise
        self.view = NodeView(self.app, self.driver, self.metrics, self.transport, self.submit_many,
                             self.sig_verifier)
        self._timer: asyncio.TimerHandle | None = None
        self._timer_deadline: int | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._gossip_out: list[bytes] = []
        self._gossip_task: asyncio.Task[None] | None = None
        self._gossip_in = 0
        self._stopped = asyncio.Event()  # stopping: set first thing by stop()
        self._closed = asyncio.Event()  # stopped: set when stop() has closed everything
        # One thread executes blocks, one at a time, parent first (the driver asks for one at a time).
        self._execution_thread = concurrent.futures.ThreadPoolExecutor(max_workers=1,
                                                                       thread_name_prefix="execution")
        # One thread verifies block sync's commit certificates ahead of their blocks (Application.certificate_warmer).
        self._certificate_thread = concurrent.futures.ThreadPoolExecutor(max_workers=1,
                                                                         thread_name_prefix="certificates")
        self._storage_failure: StorageFailure | None = None
        # (height, monotonic s, transactions) of the last COMMIT_TIMES_KEPT commits: when each block became durable
        # here, on the machine's monotonic clock (benchmarks on the same machine match their submit times to it).
        self.commit_times: collections.deque[tuple[int, float, int]] = collections.deque(maxlen=COMMIT_TIMES_KEPT)
        self.app.add_commit_listener(self._note_commit_time)
        # State sync: the snapshots this node takes and serves; pruning (node/chain/snapshots.py, pruning.py).
        self.snapshots = SnapshotStore(os.path.join(data_dir, "snapshots"), snapshot_keep)
        self.snapshot_server = SnapshotServer(self.snapshots, corrupt=byzantine == "corrupt_chunks")
        self.snapshot_taker: SnapshotTaker | None = None
        if snapshot_interval:
            self.snapshot_taker = SnapshotTaker(self.app.store, self.snapshots, snapshot_interval,
                                                lambda: self.app.epochs.epoch, snapshot_chunk_bytes)
            self.app.add_commit_listener(self.snapshot_taker.on_commit)
        self.pruner: BlockPruner | None = None
        if keep_blocks:
            self.pruner = BlockPruner(self.app.store, keep_blocks)
            self.app.add_commit_listener(self.pruner.on_commit)
        self.started_at = time.monotonic()
        self.config_path = config_path

    @classmethod
    def from_config(cls, config: NodeConfig, *, sig_verifier: Ed25519Verifier | None = None,
                    passphrase: bytes | None = None) -> ValidatorNode:
        """The node `ledger node run` starts: genesis, keys and next keys from the files the config names
        (`passphrase` opens sealed key files: docs/operations.md, "Keys at rest").
        ConfigError when the key file belongs to another node."""
        genesis = load_genesis(config.genesis_file)
        keys = load_keys(config.keys_file, passphrase)
        if keys.node_id != config.node_id:
            raise ConfigError("config_key_mismatch", f"the key file is for {keys.node_id!r}, the config for "
                                                     f"{config.node_id!r}")
        marker = never_signed_path(config.keys_file)
        node = cls(genesis, keys, config.data_dir, listen=config.p2p_listen, peer_addresses=config.peer_addresses,
                   peer_keys=config.peer_keys, fault_injection=config.fault_injection,
                   mempool_max_txs=config.mempool_max_txs, mempool_max_bytes=config.mempool_max_bytes,
                   sig_verifier=sig_verifier, byzantine=config.byzantine,
                   next_keys=load_next_keys(config.keys_file, passphrase),
                   load_next_keys=lambda: load_next_keys(config.keys_file, passphrase),
                   never_signed=os.path.exists(marker),
                   bls_backend=node_bls_backend(config.bls_backend), snapshot_interval=config.snapshot_interval,
                   snapshot_keep=config.snapshot_keep, snapshot_chunk_bytes=config.snapshot_chunk_bytes,
                   keep_blocks=config.keep_blocks,
                   full_nodes=config.full_nodes, full_only=config.role == "full", config_path=config.path)
        with contextlib.suppress(FileNotFoundError):
            os.remove(marker)  # the consensus directory exists now: a later one must not look like a first start
        return node

    # ------------------------------------------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        await asyncio.to_thread(self.sig_verifier.warm_up)
        if self.transport is not None:
            await self.transport.start()
            self._spawn(self._receive_loop(), name="receive")
        self.driver.start()
        self._perform()

    @property
    def fatal(self) -> str | None:
        return self.driver.fatal

    def _note_commit_time(self, committed: CommittedBlock) -> None:
        # Transactions made final, not the block's length: a copy of an already committed transaction a block carries
        # again is not counted twice (ledger bench matches its load against these counts).
        self.commit_times.append((committed.height, time.monotonic(), committed.newly_final_txs))

    @property
    def storage_failure(self) -> StorageFailure | None:
        """The disk failure this node stopped on (it keeps serving reads until stopped), or None."""
        return self._storage_failure

    @property
    def stopped(self) -> bool:
        return self._stopped.is_set()

    async def stop(self) -> None:
        """Graceful shutdown: stop consensus, close the transport, close the stores. A second call (a signal during
        a halt, the CLI after wait_stopped) returns when the first one has finished."""
        if self._stopped.is_set():
            await self._closed.wait()
            return
        self._stopped.set()
        try:
            self.driver.stop()
            if self._timer is not None:
                self._timer.cancel()
            tasks = [t for t in (*self._tasks, self._gossip_task) if t is not None and t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if self.transport is not None:
                await self.transport.close()
            # An execution still running reads the store: let it end before the store closes.
            await asyncio.to_thread(self._execution_thread.shutdown, wait=True, cancel_futures=True)
            await asyncio.to_thread(self._certificate_thread.shutdown, wait=True, cancel_futures=True)
            for background in (self.snapshot_taker, self.pruner):  # they read and write the store: let them end
                if background is not None:
                    await asyncio.to_thread(background.wait)
            self.safety_store.close()
            self.app.store.close()
            if self._own_sig_verifier:
                self.sig_verifier.close()
            log.info("node_stopped node=%s height=%d", self.node_id, self.app.head.height)
        finally:
            self._closed.set()

    async def wait_stopped(self) -> str | None:
        """Until the node has stopped (stores closed); its fatal error, if it halted."""
        await self._closed.wait()
        return self.driver.fatal

    async def wait_for_height(self, height: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.app.head.height < height:
            if time.monotonic() > deadline or self._stopped.is_set():
                return False
            await asyncio.sleep(0.02)
        return True

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str | None = None) -> asyncio.Task[Any]:
        """A background task of the node: cancelled by stop(), forgotten as soon as it finishes."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # --------------------------------------------------------------------------------------------------- effects

    def _on_link_up(self, peer: str) -> None:
        # Called inside the transport's registration of the link: the greeting is sent from the loop's next turn.
        asyncio.get_running_loop().call_soon(self._greet, peer)

    def _greet(self, peer: str) -> None:
        if self._stopped.is_set():
            return
        self.driver.on_peer_connected(peer)
        self._perform()

    def _perform(self) -> None:
        """Perform the driver's effects (performing one may queue more), then arm the timer for its next deadline."""
        if self._stopped.is_set():
            return
        while effects := self.driver.take():
            for effect in effects:
                if isinstance(effect, SendTo):
                    if self.transport is None:
                        continue
                    if self.transport.send(effect.peer, effect.data) != "queued" and effect.sync_request:
                        self.driver.sync_undeliverable(effect.peer)
                elif isinstance(effect, Broadcast):
                    if self.transport is not None:
                        self.transport.broadcast(effect.data, effect.audience)
                elif isinstance(effect, PeersChanged):
                    if self.transport is not None:
                        self.transport.update_peer_set(effect.peers, effect.identity)
                elif isinstance(effect, ApplyBlocks):
                    self._spawn(self._apply_blocks(effect), name="block_sync")
                elif isinstance(effect, RunExecution):
                    self._spawn(self._run_execution(effect.pending), name="execution")
                elif isinstance(effect, SubmitGossip):
                    self._admit_gossip(effect)
                elif isinstance(effect, Halted):
                    asyncio.get_running_loop().create_task(self.stop())
                    return
                elif isinstance(effect, StorageFailed):
                    self._on_storage_failed(effect.failure)
                    return
        self._arm_timer()

    def _on_storage_failed(self, failure: StorageFailure) -> None:
        """The driver stopped on a disk failure: leave the network, keep answering reads (module docstring)."""
        self._storage_failure = failure
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_deadline = None
        self._gossip_out.clear()
        if self.transport is not None:
            self._spawn(self.transport.close(), name="leave_network")

    def _arm_timer(self) -> None:
        """One loop timer at the driver's next deadline (re-armed only when the deadline moved)."""
        deadline = self.driver.next_deadline()
        if deadline == self._timer_deadline and (self._timer is not None or deadline is None):
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_deadline = deadline
        if deadline is not None:
            delay_s = max(0, deadline - self.clock.monotonic_ms()) / 1000
            self._timer = asyncio.get_running_loop().call_later(delay_s, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_deadline = None
        self.driver.handle_timer()
        self._perform()

    async def _receive_loop(self) -> None:
        assert self.transport is not None
        while True:
            peer, data = await self.transport.receive()
            if data and data[0] == CH_SNAPSHOTS:
                self._serve_snapshot(peer, data)
                continue
            self.driver.on_message(peer, data)
            self._perform()
            await asyncio.sleep(0)

    def _serve_snapshot(self, peer: str, data: bytes) -> None:
        """A snapshot-channel request of an admitted peer joining by state sync (node/chain/snapshots.py)."""
        try:
            msg = decode_snapshot_message(data[1:])
        except MessageRefused as refused:
            self.metrics.rejected_message(refused.code)
            return
        reply = self.snapshot_server.answer(peer, msg, self.clock.monotonic_ms())
        if reply is not None and self.transport is not None:
            self.transport.send(peer, encode_snapshot_message(reply))

    async def _run_execution(self, pending: PendingExecution) -> None:
        try:
            outcome, cpu_us, wall_us = await asyncio.get_running_loop().run_in_executor(self._execution_thread,
                                                                                       _timed_run, pending)
        except Exception as exc:  # noqa: BLE001 -- a broken store or a bug, handed to the driver (an invalid block is an outcome of None)
            self.driver.execution_failed(pending, exc)
        else:
            timeline = self.metrics.timeline
            if timeline is not None:
                header = pending.block.header
                timeline.note(EXEC_DONE, header.height, header.round, wall_us, cpu_us)
            self.driver.execution_done(pending, outcome, cpu_us // 1_000)
        self._perform()

    async def _apply_blocks(self, batch: ApplyBlocks) -> None:
        """Apply a block sync batch in order: execute its blocks one after another on the execution thread, and
        commit them in groups, each group in one synced write (all or none after a crash: one fsync per group, not
        per block, which is what bounds catching up on small blocks). A group ends where `sync_group_ends` says, at
        an epoch-ending block (the certificates after it are checked under the next set) and at the batch's end;
        while one is committed here, the block after it executes on the thread (the synced write releases the
        interpreter). Each block is executed with its commit certificate, so once that
        verifies its transactions' signatures are not checked when the certified root proves that changes nothing
        (Application.begin_execution); the certificates themselves are verified meanwhile on the certificate thread
        (Application.certificate_warmer), so the checks made here hit the BLS verifier's memo. An executed block is
        speculative (nothing is written) until its group's certificates are checked and the group commits; the head
        moves only then. No block is executed ahead of an epoch-ending one: it is executed under the next epoch's
        limits and set, after the switch."""
        blocks = batch.blocks
        loop = asyncio.get_running_loop()
        # The batch's certificates are verified on their own thread meanwhile: the checks below then hit the memo.
        warming = loop.run_in_executor(self._certificate_thread,
                                       self.app.certificate_warmer([cert for _, cert in blocks]))
        applied, error = 0, None
        group: list[tuple[Block, CommitCertificate]] = []
        group_bytes = 0
        parent_root = self.app.head.state_root
        ahead: tuple[PendingExecution, asyncio.Future[BlockOutcome | None]] | None = None
        try:
            for i, (block, cert) in enumerate(blocks):
                if not self.driver.sync_batch_wanted(batch.peer, batch.request_id):
                    error = "cancelled"  # abandoned, or the node halted or is stopping: execute no further
                    break
                executed = None
                try:
                    if ahead is not None:
                        pending, running = ahead
                        ahead = None
                        executed = self.app.end_execution(pending, await running)
                        if executed.state_root is not None:
                            self.metrics.sync_executed_ahead()
                    else:
                        executed = self.app.execute(block, parent_root, None, cert)
                    if executed.signatures != "checked":
                        self.metrics.certified_execution(executed.signatures)
                    if i + 1 < len(blocks) and executed.state_root is not None and executed.next_validators is None:
                        after, after_cert = blocks[i + 1]
                        job = self.app.begin_execution(after, executed.state_root, None, after_cert)
                        if isinstance(job, PendingExecution):
                            ahead = (job, loop.run_in_executor(self._execution_thread, job.run))
                except Exception:  # e.g. a failed store read: the commit below executes again and handles it
                    log.warning("sync_execute_ahead_failed height=%d", block.header.height, exc_info=True)
                group.append((block, cert))
                group_bytes += len(block.payload)
                if executed is not None and executed.state_root is not None:
                    parent_root = executed.state_root
                if (i + 1 == len(blocks) or ahead is None
                        or sync_group_ends(len(group), group_bytes, block.header.height, self.snapshot_taker)):
                    done, error = self.driver.apply_synced_group(batch.peer, batch.request_id, group)
                    self._perform()
                    applied += done
                    group, group_bytes = [], 0
                    parent_root = self.app.head.state_root
                    if error is not None:
                        break
                await asyncio.sleep(0)
        finally:
            # Stopped short: let the execution end (its result is not kept). The warm-up is awaited too (it is
            # ahead of this loop but for the last blocks): one at a time, so its thread's queue stays bounded.
            await asyncio.wait([f for f in (warming, None if ahead is None else ahead[1]) if f is not None])
        self.driver.sync_batch_done(batch.peer, batch.request_id, applied, error)
        self._perform()

    # ------------------------------------------------------------------------------------------------ admission

    def _admit_gossip(self, effect: SubmitGossip) -> None:
        if self._gossip_in >= MAX_GOSSIP_TASKS:
            self.metrics.rejected_message("gossip_overload")
            return
        self._gossip_in += 1
        self._spawn(self._admit_from_peer(effect.peer, list(effect.txs)), name="gossip_in")

    async def _admit_from_peer(self, peer: str, txs: list[bytes]) -> None:
        try:
            results = await self.app.admit(txs, origin=peer)
        finally:
            self._gossip_in -= 1
        if any(r.ok for r in results):
            self.driver.on_admitted()
            self._perform()

    async def submit_many(self, txs: Sequence[bytes | SignedTransaction]) -> list[Admission]:
        """Admit signed transactions from clients (bytes, or decoded by the API: not decoded again), one mempool
        verification round per `max_batch` of them; one Admission each, in order. Newly admitted ones are gossiped
        to the peers, and so are ones already pending here: a client submitting again says its transaction is not
        getting committed (the validators that pooled it may all be ones whose proposals fail), so every peer gets
        another chance to propose it."""
        if self.driver.mode == "halted":
            refused = Admission(NODE_HALTED, f"this node stopped: {self.driver.fatal}")
            for _ in txs:
                self.metrics.admission(refused)
            return [refused] * len(txs)
        if self.driver.members.signing_keys is None and not self._validator_reachable():
            # A node that does not validate only forwards: with no validator to forward to, keep nothing.
            refused = Admission(NO_VALIDATOR_REACHABLE, "this node does not validate and no validator peer is "
                                                        "connected: retry later or submit to another node")
            for _ in txs:
                self.metrics.admission(refused)
            return [refused] * len(txs)
        out: list[Admission] = []
        step = self.app.mempool.limits.max_batch
        for i in range(0, len(txs), step):
            chunk = list(txs[i:i + step])
            results = await self.app.admit(chunk)
            fresh = []
            for tx, result in zip(chunk, results, strict=True):
                self.metrics.admission(result)
                if result.ok or result.code == TX_ALREADY_PENDING:
                    fresh.append(tx.to_bytes() if isinstance(tx, SignedTransaction) else bytes(tx))
            if fresh:
                self._gossip(fresh)
                self.driver.on_admitted()
                self._perform()
            out.extend(results)
        return out

    def _validator_reachable(self) -> bool:
        """Whether a peer that is not a full node (a validator, or one about to be) is connected."""
        if self.transport is None:
            return False
        full = self.driver.members.full_peer_ids
        return any(p not in full for p in self.transport.connected_peers())

    def reload_full_nodes(self) -> list[str]:
        """Read `[p2p.full_nodes]` from the config file again and admit exactly those full nodes (no restart);
        the node ids admitted. ConfigError when the file cannot be read or is invalid (nothing changes)."""
        if self.config_path is None:
            raise ConfigError("config_unreadable", "this node was not started from a config file")
        full_nodes = load_config(self.config_path).full_nodes
        self.driver.set_full_nodes(full_nodes)
        self._perform()
        return sorted(full_nodes)

    def _gossip(self, raws: list[bytes]) -> None:
        if self.transport is None:
            return
        self._gossip_out.extend(raws)
        if self._gossip_task is None:
            self._gossip_task = asyncio.get_running_loop().create_task(self._flush_gossip())

    async def _flush_gossip(self) -> None:
        await asyncio.sleep(GOSSIP_FLUSH_MS / 1000)
        self._gossip_task = None
        out, self._gossip_out = self._gossip_out, []
        assert self.transport is not None
        for i in range(0, len(out), GOSSIP_BATCH):
            self.transport.broadcast(encode_gossip(out[i:i + GOSSIP_BATCH]))
