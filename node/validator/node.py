"""The validator: wires the replica, the peer transport, the mempool, speculative execution and the stores.

One asyncio event loop drives everything; the replica, the executor and the stores are called only from it.

    replica actions        what the runtime does
    ---------------        -----------------------------------------------------------------------------------
    PersistSafety          SafetyStore.persist (one synced batch) BEFORE the next action of the list
    Send / Broadcast       transport.send / broadcast (channel byte 0x01 + the consensus message)
    SyncBlocks             transport.send of the request
    SetTimer               loop.call_later -> replica.on_timeout(round)
    RequestPayload         reap the mempool (count/byte limits, minus txs of uncommitted ancestors); with nothing
                           to propose wait up to params.empty_block_interval_ms for a transaction
    Execute                Executor.execute on the parent's overlay; the voter's clock-drift check
    Commit                 Executor.commit (BlockCommit + commit certificate: one synced batch), then listeners,
                           the commit feed and mempool cleanup. A Commit above head + 1 (ancestors not applied
                           here) never halts the node: the replica stops, block sync fetches and applies the missing
                           certified heights, the commit is applied, and a new replica starts from the head
    ReportEvidence         stored under extra key "evidence/<epoch>/<round>/<validator>/<kind>" and logged

Node-level messages (channel 0x02, msgpack): STATUS [1, genesis_hash, height, block_id] every second (the hello:
a peer with another genesis hash is logged as `genesis_mismatch` and ignored), and block sync (node/chain/block_sync.py).
Transaction gossip: channel 0x03, a msgpack list of signed transaction bytes.

Modes: SYNCING (no replica: certified blocks are fetched in batches and applied) and CONSENSUS (the replica runs).
A node starts SYNCING when a peer reports a height well above its own, and falls back to it when it falls behind
by more than SYNC_LAG blocks.

Epochs (docs/consensus.md §10). The validator set, the chain params and the transport's peer set always come from the
EpochRecord of the committed head state (`ledger.governance.current_epoch`): at start, and again after every commit
of an epoch-ending block, whichever path committed it (the replica's Commit, a commit after a gap, block sync).
Executing a block whose outcome schedules the next epoch answers the replica with that epoch's ValidatorSet; its
commit stores the EpochChangeProof with the block (node/chain/execution.py) and then:
    vs, params (replica timeouts, payload limits), signing keys, peer set   <- the new EpochRecord
    safety store                                    reset for the new epoch (one synced write)
    replica                                         the next one: anchor = the epoch-ending block, its QC, fresh
                                                    safety, every stored proof; an observer (me=None) when this node
                                                    is not in the new set (it follows and serves, signs nothing)
A node's own keys: the key file's keys plus `next_keys` (from `ledger keys rotate`); in each epoch the node signs
with the BLS key and connects with the identity key that the record names for it (a rotated identity reconnects).
The peer set is the current epoch's validators plus those of the epoch just ended (a removed validator can finish
that epoch and follow the next one as an observer; it is disconnected at the following change).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import hashlib
import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping, Sequence
from typing import Any, Final

import msgpack

from consensus.actions import (
    Broadcast,
    Commit,
    Execute,
    PersistSafety,
    ReportEvidence,
    RequestPayload,
    Send,
    SetTimer,
    SyncBlocks,
)
from consensus.bls import BlsBackend
from consensus.certificates import (
    CommitCertificateError,
    SignatureVerifier,
    check_commit_certificate,
)
from consensus.messages import (
    Block,
    CommitCertificate,
    EpochChangeProof,
    Proposal,
    Vote,
    decode_block,
    encode_message,
    payload_hash,
    proposal_message,
    vote_message,
)
from consensus.replica import Replica, ReplicaConfig
from consensus.validators import ValidatorSet, ValidatorSetError
from ledger.events import Receipt
from ledger.governance import validator_set_entries
from ledger.keys import EPOCH_KEY
from ledger.operations import AddValidator
from ledger.records import EpochRecord, ProposalStatus
from ledger.rules import RuleEngine
from ledger.schema import MAX_TX_BYTES
from ledger.state import decode_value
from ledger.store import LedgerStore
from ledger.transaction import SignedTransaction
from node.chain.block_sync import BlockSync
from node.chain.commit_feed import CommitFeed
from node.chain.execution import (
    CommittedBlock,
    ExecutionError,
    Executor,
    bootstrap_store,
    cert_key,
    epoch_proof_key,
    epoch_record_key,
    load_epoch_proofs,
    now_ms,
)
from node.chain.genesis import (
    MAX_BLOCK_BYTES,
    MAX_BLOCK_TXS,
    ChainParams,
    Genesis,
    GenesisError,
    genesis_state,
    parse_address,
)
from node.chain.mempool import TX_ALREADY_PENDING, Mempool, MempoolLimits
from node.chain.payload import encode_payload
from node.chain.protocol import bls_backend as node_bls_backend
from node.chain.protocol import default_engine
from node.chain.sigverify import Ed25519Verifier
from node.net.handshake import Peer, PeerSet
from node.net.transport import Transport, TransportConfig
from node.validator.keyfile import KeyFileError, NodeKeys
from node.validator.metrics import NodeMetrics
from node.validator.safety_store import LOST, RESUME, SafetyStore, SafetyStoreError, safety_decision

log = logging.getLogger("node.validator.node")

CH_CONSENSUS: Final = 1
CH_NODE: Final = 2
CH_TXS: Final = 3
MSG_STATUS: Final = 1
STATUS_INTERVAL_S: Final = 1.0
# Behind the height f+1 voting power reports by more than this many blocks: leave consensus and catch up by block sync.
SYNC_LAG: Final = 12
# Committed blocks handed to a new replica so it can answer its peers' consensus-level sync requests.
REPLICA_HISTORY: Final = 64
GOSSIP_BATCH: Final = 512
GOSSIP_FLUSH_S: Final = 0.01
MAX_GOSSIP_TASKS: Final = 64
# A leader with fewer transactions than a full block waits until this long after its previous proposal, so blocks
# batch transactions instead of carrying one each (a local choice: not part of the protocol).
MIN_BLOCK_INTERVAL_MS: Final = 40
# Validators named by open add_validator proposals that are admitted as (non-voting) peers ahead of their epoch.
MAX_PROSPECTIVE_PEERS: Final = 16
PROPOSAL_EVENTS: Final = frozenset({"proposal_created", "proposal_executed", "proposal_cancelled"})
# A commit above head + 1 is preceded by block sync of the missing heights for at most this long.
GAP_SYNC_TIMEOUT_S: Final = 30.0
# Validator sets built from EpochRecords (each construction verifies every PoP) kept at most.
MAX_CACHED_SETS: Final = 16


class Validator:
    """One validator node (also the single-validator dev chain). Implements the API's NodeFacade."""

    def __init__(self, genesis: Genesis, keys: NodeKeys, data_dir: str, *,
                 listen: tuple[str, int] = ("127.0.0.1", 0),
                 peer_addresses: Mapping[str, tuple[str, int]] | None = None,
                 peer_keys: Mapping[str, bytes] | None = None,
                 fault_injection: bool = False, mempool_max_txs: int = 50_000,
                 mempool_max_bytes: int = 64 << 20, engine: RuleEngine | None = None,
                 bls_backend: BlsBackend | None = None,
                 sig_verifier: Ed25519Verifier | None = None, byzantine: str | None = None,
                 next_keys: Sequence[NodeKeys] = (),
                 load_next_keys: Callable[[], Sequence[NodeKeys]] | None = None) -> None:
        """`keys`: this node's keys. Its id need not be in the genesis file: a validator added later by governance
        starts from genesis, follows as an observer and votes from the epoch whose record names it. `next_keys`:
        further keys of the same node (`ledger keys rotate`), used from the epoch whose record names them.
        `load_next_keys()` is asked again when an epoch names keys the node does not hold (next keys written while
        the node runs); it may raise KeyFileError."""
        if any(k.node_id != keys.node_id for k in next_keys):
            raise ValueError("next keys must belong to the same node id")
        if byzantine is not None and not (fault_injection and genesis.chain_id.startswith("testnet-")):
            raise ValueError("a Byzantine test mode needs a testnet-... chain with fault injection enabled")
        self.byzantine = byzantine
        self.genesis = genesis
        self.keys = keys
        self._key_candidates = (keys, *next_keys)
        self._load_next_keys = load_next_keys
        self.node_id = keys.node_id
        self._peer_addresses = dict(peer_addresses or {})
        self._peer_keys = dict(peer_keys or {})
        self._engine = engine or default_engine()
        self.verifier = SignatureVerifier(bls_backend or node_bls_backend())
        self._sets: dict[tuple[int, tuple[tuple[bytes, bytes, bytes, int], ...]], ValidatorSet] = {}
        self._past_sets: dict[int, ValidatorSet] = {}  # validator_set_at_epoch
        os.makedirs(data_dir, exist_ok=True)
        self.data_dir = data_dir
        self._store = LedgerStore.open(os.path.join(data_dir, "ledger"))
        try:
            bootstrap_store(self._store, genesis, genesis_state(genesis, self._engine))
            self.safety_store = SafetyStore(os.path.join(data_dir, "consensus"))
            self.safety_store.bind_genesis(genesis.hash)
        except BaseException:
            self._store.close()
            raise
        self.executor = Executor(self._store, genesis, self._engine, genesis.params)
        self.executor.validator_set_of = self.validator_set_of
        self.executor.before_epoch_commit = self._before_epoch_commit
        # The epoch of the committed head: vs, params, signing keys, peer set (also on every epoch change).
        self.epoch_record: EpochRecord = self.executor.current_epoch()
        # Set by _before_epoch_commit: whether the safety store may be marked for the epoch being entered.
        self._epoch_mark_ok = True
        self._previous_record: EpochRecord | None = None
        if self.epoch_record.epoch > 0:
            raw = self._store.get_extra(epoch_record_key(self.epoch_record.epoch - 1))
            self._previous_record = None if raw is None else decode_value(EPOCH_KEY, raw)
        self.vs: ValidatorSet = self.validator_set_of(self.epoch_record)
        self.params: ChainParams = params_of(self.epoch_record)
        self.executor.params = self.params
        self.signing_keys: NodeKeys | None = self._keys_for(self.epoch_record)
        mine = self._record_entry(self.epoch_record)
        if mine is not None and self.signing_keys is None:
            self._store.close()
            self.safety_store.close()
            raise ValueError(f"the keys of {keys.node_id!r} do not match its entry in the validator set of epoch "
                             f"{self.epoch_record.epoch} (key file and next keys)")
        # Committed blocks obeyed the limits of their own epoch: the feed decodes them with the hard maxima.
        self.feed = CommitFeed(self._store, MAX_BLOCK_TXS, MAX_BLOCK_BYTES)
        self._own_sig_verifier = sig_verifier is None
        self.sig_verifier = sig_verifier or Ed25519Verifier()
        self.pool = Mempool(genesis.chain_id, self._store, self.executor.head.height, self.sig_verifier,
                            MempoolLimits(max_txs=mempool_max_txs, max_bytes=mempool_max_bytes,
                                          max_txs_per_account=min(2_000, mempool_max_txs)),
                            on_admitted=self._on_admitted)
        self.executor.signatures_verified = self.pool.is_verified
        self.executor.lookup = self.pool.lookup
        self.replica_config = self._replica_config()
        # Nodes that open proposals would add as validators: admitted as peers (not dialed, no voting power) so a
        # joining node can sync before its addition executes and is caught up when its epoch begins.
        self._prospective: dict[str, bytes] = self._prospective_validators()
        peer_set = self._peer_set()
        self.peer_ids = sorted(p for p in peer_set.ids() if p != self.node_id and p not in self._prospective)
        self._power = {v.node_id: v.power for v in self.epoch_record.validators if v.node_id != self.node_id}
        self.transport: Transport | None = None
        self._epoch_switch = False
        # (identity, height): a rotated transport identity to adopt once that height commits (see _adopt_epoch).
        self._pending_identity: tuple[Any, int] | None = None
        if self.peer_ids:
            try:
                identity = (self.signing_keys or keys).identity()
                self.transport = Transport(identity, genesis.chain_id, peer_set,
                                           TransportConfig(listen_host=listen[0], listen_port=listen[1],
                                                           fault_injection=fault_injection))
            except BaseException:
                self.safety_store.close()
                self._store.close()
                if self._own_sig_verifier:
                    self.sig_verifier.close()
                raise
        self.replica: Replica | None = None
        self.sync = BlockSync(self)
        self.metrics = NodeMetrics()
        self.counters: collections.Counter[str] = collections.Counter()
        self._replica_dropped: collections.Counter[str] = collections.Counter()
        self.peer_heights: dict[str, tuple[int, float]] = {}
        self._bad_genesis_peers: set[str] = set()
        self._listeners: list[Callable[[Any], None]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._payload_task: asyncio.Task[None] | None = None
        self._gossip_out: list[bytes] = []
        self._gossip_task: asyncio.Task[None] | None = None
        self._gossip_in: set[asyncio.Task[Any]] = set()
        self._last_proposal = 0.0
        self._stopped = asyncio.Event()
        self._fatal: str | None = None
        self.mode = "starting"
        self.started_at = time.monotonic()

    # ------------------------------------------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        await asyncio.to_thread(self.sig_verifier.warm_up)
        if self.transport is not None:
            await self.transport.start()
            self._spawn(self._receive_loop(), name="receive")
            self._spawn(self._status_loop(), name="status")
            self._spawn(self._startup(), name="startup")
        else:
            self._start_consensus()
        log.info("node_started node=%s chain=%s genesis=%s height=%d epoch=%d validators=%d role=%s", self.node_id,
                 self.genesis.chain_id, self.genesis.hash.hex()[:16], self.executor.head.height, self.vs.epoch,
                 len(self.vs), self.role)

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str | None = None) -> asyncio.Task[Any]:
        """A background task of the node: cancelled by stop(), forgotten as soon as it finishes."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _startup(self) -> None:
        """Give peers a moment to report their heights; catch up first if we are far behind."""
        async with self._recovering("startup"):
            deadline = time.monotonic() + 3.0
            while time.monotonic() < deadline and len(self.peer_heights) < len(self.peer_ids):
                await asyncio.sleep(0.05)
            if self.sync_target_height() > self.executor.head.height + 2:
                await self.sync.catch_up()
            if not self._stopped.is_set():
                self._start_consensus()

    @contextlib.asynccontextmanager
    async def _recovering(self, what: str) -> AsyncIterator[None]:
        """Around the background paths that end by starting consensus (startup, resync, gap fill): an inconsistency
        with the certified chain halts the node; any other failure is logged and retried by block sync, so the node
        never sits in "syncing" without a task that will bring consensus back."""
        try:
            yield
        except ExecutionError as exc:
            self._fail(exc.code, exc.message)
        except Exception:
            if self._stopped.is_set():
                return
            log.exception("%s_failed node=%s: retrying by block sync in 1 s", what, self.node_id)
            self.counters[f"{what}_failures"] += 1
            self._stop_consensus()
            self.mode = "syncing"
            self._spawn(self._resync(delay_s=1.0), name="resync")

    async def stop(self) -> None:
        """Graceful shutdown: stop consensus, close the transport, close the stores."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        self._stop_consensus()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in (self._payload_task, self._gossip_task, *self._gossip_in):
            if task is not None:
                task.cancel()
        await asyncio.gather(*tasks, *self._gossip_in, return_exceptions=True)
        if self.transport is not None:
            await self.transport.close()
        self.safety_store.close()
        self._store.close()
        if self._own_sig_verifier:
            self.sig_verifier.close()
        log.info("node_stopped node=%s height=%d", self.node_id, self.executor.head.height)

    async def wait_stopped(self) -> str | None:
        await self._stopped.wait()
        return self._fatal

    def _fail(self, code: str, message: str) -> None:
        """A fatal inconsistency: stop the node rather than continue on a diverged state."""
        log.critical("node_halted code=%s %s", code, message)
        self._fatal = f"{code}: {message}"
        self._stop_consensus()
        asyncio.get_running_loop().create_task(self.stop())

    # ------------------------------------------------------------------------------------------------- consensus

    def _start_consensus(self) -> None:
        if self.replica is not None or self._stopped.is_set():
            return
        self.executor.reload_head()
        head = self.executor.head
        if head.height == 0:
            anchor, anchor_qc = self.genesis.block(), genesis_state_qc(self)
        else:
            anchor = decode_block(self._store.get_block(head.height))  # type: ignore[arg-type]
            cert = CommitCertificate.decode(self._store.get_extra(cert_key(head.height)))  # type: ignore[arg-type]
            anchor_qc = cert.headers[1].qc
        epoch = self.vs.epoch
        assert head.height + 1 >= self.epoch_record.start_height
        keys = self.signing_keys
        safety, blocks, lost = self._safety_for_epoch(epoch, head.height) if keys is not None else (None, [], False)
        history = []
        for h in range(max(1, head.height - REPLICA_HISTORY), head.height):
            raw, cert_raw = self._store.get_block(h), self._store.get_extra(cert_key(h))
            if raw is not None and cert_raw is not None:
                history.append((decode_block(raw), CommitCertificate.decode(cert_raw)))
        self.replica = Replica(self.replica_config, self.vs, me=None if keys is None else self.node_id.encode(),
                               secret_key=None if keys is None else keys.bls_secret,
                               anchor=anchor, anchor_qc=anchor_qc, safety=safety,
                               stored_blocks=[b for b in blocks if b.header.height > head.height
                                              and b.header.epoch == epoch],
                               history=history, verifier=self.verifier,
                               epoch_proofs=self.epoch_proofs(),
                               # This node may have signed in this epoch before its safety state was lost (wiped or
                               # damaged consensus directory): it signs nothing more in this epoch
                               # (docs/consensus.md §10, "Lost safety state").
                               safety_lost=lost)
        self.mode = "consensus"
        if lost:
            log.warning("safety_state_lost node=%s epoch=%d height=%d: this node may have signed in this epoch "
                        "before its consensus directory was lost; it follows without signing until the epoch ends",
                        self.node_id, epoch, head.height)
        log.info("consensus_started node=%s height=%d round=%d epoch=%d role=%s", self.node_id, head.height,
                 self.replica.current_round, epoch, self.role)
        self._run(self.replica.start())

    def _safety_for_epoch(self, epoch: int, head_height: int) -> tuple[Any, list[Block], bool]:
        """(safety state, pending blocks, lost) for a signing replica of `epoch`: node.validator.safety_store.safety_decision.
        Sound because every signature is preceded by a synced PersistSafety of the replica's epoch, and the store
        is marked for an epoch before the block that starts it commits (Executor.before_epoch_commit)."""
        safety, blocks = self.safety_store.load()
        try:
            decision = safety_decision(None if safety is None else safety.epoch, self.safety_store.epoch_mark(),
                                       epoch, head_height)
        except SafetyStoreError as exc:
            raise ExecutionError(exc.code, exc.message) from None
        if decision == RESUME:
            return safety, blocks, False
        if safety is not None:
            self.safety_store.begin_epoch(epoch)  # drop the older epoch's state before this replica persists
        return None, [], decision == LOST

    def _stop_consensus(self) -> None:
        self.replica = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._payload_task is not None:
            self._payload_task.cancel()
            self._payload_task = None

    def _run(self, actions: list[Any]) -> None:
        """Perform actions in order; answers (payload, execution) are fed back and their actions run next."""
        pending = collections.deque(actions)
        while pending and self.replica is not None:
            replica = self.replica
            action = pending.popleft()
            try:
                follow = self._perform(replica, action)
            except ExecutionError as exc:
                self._fail(exc.code, exc.message)
                return
            except Exception:
                # The replica counts every action of its list as performed: losing the rest of the list (commits
                # among them) would leave it ahead of the store. Restart it from the store's head instead.
                log.exception("replica_action_failed node=%s action=%s: consensus restarts from the head",
                              self.node_id, type(action).__name__)
                self.counters["replica_restarts"] += 1
                self._stop_consensus()
                self.mode = "syncing"
                self._spawn(self._resync(delay_s=0.5))
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
            self.safety_store.persist(action.state, action.blocks, self.executor.head.height)
        elif isinstance(action, Send):
            self._send_consensus(action.to.decode(), encode_message(action.message))
            if self.byzantine is not None and isinstance(action.message, Vote):
                self._send_consensus(action.to.decode(), encode_message(self._twin_vote(action.message)))
        elif isinstance(action, Broadcast):
            if self.transport is not None:
                self.transport.broadcast(bytes((CH_CONSENSUS,)) + encode_message(action.message))
                if self.byzantine is not None and isinstance(action.message, Proposal):
                    twin = self._twin_proposal(action.message)
                    self.transport.broadcast(bytes((CH_CONSENSUS,)) + encode_message(twin))
        elif isinstance(action, SyncBlocks):
            self._send_consensus(action.to.decode(), encode_message(action.request))
        elif isinstance(action, SetTimer):
            if self._timer is not None:
                self._timer.cancel()
            if action.round != getattr(self, "_metric_round", 0):
                if replica.safety.high_qc.round + 1 != action.round:
                    self.metrics.view_change()
                self._metric_round = action.round
                self.metrics.set_round(action.round)
            self._timer = asyncio.get_running_loop().call_later(action.delay_ms / 1000, self._on_timer, replica,
                                                                action.round)
        elif isinstance(action, RequestPayload):
            if self._payload_task is not None:
                self._payload_task.cancel()
            self._payload_task = asyncio.get_running_loop().create_task(self._build_payload(replica, action))
        elif isinstance(action, Execute):
            return self._execute(replica, action)
        elif isinstance(action, Commit):
            if action.block.header.height > self.executor.head.height + 1:
                # The replica committed a block whose ancestors are not applied here: catch them up by block sync
                # (certificates verified) instead of halting, then apply this commit.
                self._commit_after_gap(action.block, action.certificate)
                return None
            self._commit(action.block, action.certificate)
        elif isinstance(action, ReportEvidence):
            ev = action.evidence
            kind = "proposal" if ev.kind == ev.KIND_PROPOSAL else "vote"
            key = f"evidence/{ev.epoch}/{ev.round}/{ev.validator}/{kind}".encode()
            self._store.put_extra(key, ev.encode())
            self.counters["evidence"] += 1
            named = replica.vs.validators[ev.validator].id.decode() if ev.validator < len(replica.vs) else "?"
            log.warning("equivocation_evidence validator=%s epoch=%d round=%d kind=%s", named, ev.epoch, ev.round,
                        kind)
        else:
            raise TypeError(f"unknown action {action!r}")
        return None

    def _twin_proposal(self, p: Proposal) -> Proposal:
        """Testnet Byzantine mode: a second, conflicting proposal for the same round (equivocation)."""
        payload = encode_payload(now_ms() + 1, [])
        header = dataclasses.replace(p.block.header, payload_hash=payload_hash(payload))
        block = Block(header, payload)
        assert self.signing_keys is not None
        signature = self.verifier.backend.sign(self.signing_keys.bls_secret, proposal_message(
            self.genesis.consensus_chain_id, header.epoch, header.round, block.id))
        log.warning("byzantine_equivocation round=%d kind=proposal", header.round)
        return Proposal(block, p.tc, signature)

    def _twin_vote(self, v: Vote) -> Vote:
        """Testnet Byzantine mode: a second vote in the same round for another block."""
        other = hashlib.sha256(b"twin" + v.block_id).digest()
        assert self.signing_keys is not None
        signature = self.verifier.backend.sign(self.signing_keys.bls_secret, vote_message(
            self.genesis.consensus_chain_id, v.epoch, v.round, other, v.state_root))
        log.warning("byzantine_equivocation round=%d kind=vote", v.round)
        return Vote(v.epoch, v.round, other, v.state_root, v.voter, signature)

    def _send_consensus(self, peer: str, data: bytes) -> None:
        if self.transport is not None and peer != self.node_id:
            self.transport.send(peer, bytes((CH_CONSENSUS,)) + data)

    def _on_timer(self, replica: Replica, round_: int) -> None:
        if self.replica is replica:
            self.metrics.local_timeout()
            log.info("round_timeout node=%s round=%d height=%d", self.node_id, round_, self.executor.head.height)
            self._run(replica.on_timeout(round_))

    def _execute(self, replica: Replica, action: Execute) -> list[Any]:
        block = action.block
        e = self.executor.execute(block, action.parent_state_root)
        root = None if e is None else e.state_root
        vote = True
        if e is not None and block.header.height > replica.committed_height:
            why = self.executor.check_proposal_time(block, now_ms())
            if why == "block_time_in_future":
                # A voting policy, not a validity rule: the block stays (a quorum may certify it and this node
                # must then follow), only this validator's vote is withheld.
                log.warning("vote_withheld height=%d round=%d reason=%s", block.header.height, block.header.round,
                            why)
                self.metrics.rejected_message(f"vote_withheld_{why}")
                vote = False
            elif why is not None:
                log.warning("block_refused height=%d round=%d reason=%s", block.header.height, block.header.round, why)
                self.metrics.rejected_message(f"block_{why}")
                self.executor.executed.pop(block.id, None)
                root = None
        next_validators = None
        if e is not None and root is not None and e.next_epoch is not None:
            # An epoch-ending block: the replica votes for its suffix with the commitment to this set.
            next_validators = self.validator_set_of(e.next_epoch)
        return replica.on_executed(block.id, root, next_validators, vote=vote)

    async def _build_payload(self, replica: Replica, request: RequestPayload) -> None:
        """Fill a proposal from the pool; with nothing to do, wait a little for transactions first."""
        exclude = self._in_flight(request.parent_id)
        if not self._has_work(exclude):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.pool.added.wait(), self.params.empty_block_interval_ms / 1000)
            exclude = self._in_flight(request.parent_id)
        wait_s = self._last_proposal + MIN_BLOCK_INTERVAL_MS / 1000 - time.monotonic()
        if wait_s > 0 and len(self.pool) - len(exclude) < self.params.max_block_txs:
            await asyncio.sleep(wait_s)
            exclude = self._in_flight(request.parent_id)
        self._last_proposal = time.monotonic()
        if self.replica is not replica or replica.current_round != request.round:
            return
        parent_time = self.executor.time_of(request.parent_id)
        time_ms = max(now_ms(), parent_time or 0)
        txs = self.pool.reap(self.params.max_block_txs, self.params.max_block_bytes - 64, exclude, overhead_per_tx=3)
        payload = encode_payload(time_ms, txs)
        assert len(payload) <= self.params.max_block_bytes
        self._payload_task = None
        self._run(replica.on_payload(request.round, payload))

    def _in_flight(self, parent_id: bytes) -> set[bytes]:
        """Ids of transactions in the uncommitted ancestors of a new block (they must not be proposed again)."""
        out: set[bytes] = set()
        cursor = parent_id
        while cursor != self.executor.head.block_id:
            e = self.executor.executed.get(cursor)
            if e is None:
                break
            out.update(r.tx_id for r in e.receipts)
            cursor = e.parent_id
        return out

    def _has_work(self, exclude: set[bytes]) -> bool:
        """Propose now if the pool has new transactions or uncommitted blocks wait for their commit."""
        return len(self.pool) > len(exclude) or bool(exclude)

    def _commit_after_gap(self, block: Block, cert: CommitCertificate) -> None:
        """A Commit above head + 1. The replica's view and the store disagree, so the replica stops (the rest of
        its action list is dropped with it), the missing certified blocks are fetched and applied by block sync,
        `block` is applied if it then extends the head, and a new replica starts from the store's head."""
        head = self.executor.head
        log.warning("commit_gap node=%s height=%d head=%d: catching up by block sync before applying it",
                    self.node_id, block.header.height, head.height)
        self.counters["commit_gaps"] += 1
        self._stop_consensus()
        self.mode = "syncing"
        self._spawn(self._fill_gap(block, cert))

    async def _fill_gap(self, block: Block, cert: CommitCertificate) -> None:
        async with self._recovering("gap_fill"):
            await self._fill_gap_steps(block, cert)

    async def _fill_gap_steps(self, block: Block, cert: CommitCertificate) -> None:
        target = block.header.height
        deadline = time.monotonic() + GAP_SYNC_TIMEOUT_S
        while not self._stopped.is_set() and self.executor.head.height < target - 1:
            await self.sync.catch_up(at_least=target - 1)
            if self.executor.head.height >= target - 1 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
        if self._stopped.is_set():
            return
        head = self.executor.head
        if head.height == target - 1 and block.header.parent_id == head.block_id:
            try:
                verify_certified(self, cert)
            except CommitCertificateError as exc:  # a replica only commits certified blocks: an invariant broke
                self._fail("commit_uncertified", f"the commit of height {target} does not verify: {exc}")
                return
            try:
                self._commit(block, cert)
            except ExecutionError as exc:
                self._fail(exc.code, exc.message)
                return
        elif head.height < target - 1:
            log.warning("commit_gap_unfilled node=%s height=%d head=%d: consensus restarts from the head",
                        self.node_id, target, head.height)
        self._start_consensus()

    def _commit(self, block: Block, cert: CommitCertificate) -> None:
        committed = self.executor.commit(block, cert)
        self._after_commit(committed)

    def _after_commit(self, committed: CommittedBlock) -> None:
        ages = self.pool.remove_committed([r.tx_id for r in committed.receipts])
        self.pool.prune_expired(committed.height)
        self.metrics.committed(committed.tx_count, ages)
        self.counters["committed_txs"] += committed.tx_count
        self.counters["committed_blocks"] += 1
        self.metrics.set_height(committed.height)
        self.feed.publish(committed)
        view = _api_committed(committed) if self._listeners else None
        for listener in list(self._listeners):
            try:
                listener(view)
            except Exception:  # a listener's bug must not stop the chain
                log.exception("commit_listener_failed")
        if committed.height % 64 == 0:
            self.safety_store.prune(committed.height)
        if committed.next_epoch is not None:
            self._prospective = self._prospective_validators()
            self._adopt_epoch(committed)
            return
        if committed.height % 64 == 0 or any(ev.kind in PROPOSAL_EVENTS for ev in committed.events):
            self._refresh_prospective()
        if self._pending_identity is not None and committed.height >= self._pending_identity[1]:
            identity = self._pending_identity[0]
            self._pending_identity = None
            assert self.transport is not None
            log.info("identity_rotated node=%s epoch=%d height=%d: reconnecting with the new identity key",
                     self.node_id, self.vs.epoch, committed.height)
            self.transport.update_peer_set(self._peer_set(), identity)

    # ------------------------------------------------------------------------------------------------- epochs

    def validator_set_of(self, rec: EpochRecord) -> ValidatorSet:
        """The ValidatorSet of an EpochRecord (cached: building one verifies every proof of possession)."""
        entries = validator_set_entries(rec)
        key = (rec.epoch, entries)
        vs = self._sets.get(key)
        if vs is None:
            try:
                vs = ValidatorSet(rec.epoch, entries, backend=self.verifier.backend)
            except ValidatorSetError as exc:
                # The ledger admitted this set (it checks PoPs and sizes): a node disagreeing must stop.
                raise ExecutionError("bad_validator_set", f"epoch {rec.epoch}: {exc}") from None
            if len(self._sets) >= MAX_CACHED_SETS:
                self._sets.pop(next(iter(self._sets)))
            self._sets[key] = vs
        return vs

    def epoch_proofs(self) -> list[EpochChangeProof]:
        """The proofs of every ended epoch, oldest first: from the genesis set to the current one."""
        return load_epoch_proofs(self._store, self.vs.epoch)

    def validator_set_at_epoch(self, epoch: int) -> ValidatorSet:
        """The validator set of `epoch` (<= the current one): the genesis set, or the next set of the stored proof
        that ended epoch - 1 (checked when that block committed: its QC commits to exactly this set). Cached, so a
        statement request about a past epoch costs no proof-of-possession checks after the first."""
        if epoch == self.vs.epoch:
            return self.vs
        if not 0 <= epoch < self.vs.epoch:
            raise KeyError(f"epoch {epoch} has not started")
        vs = self._past_sets.get(epoch)
        if vs is None:
            if epoch == 0:
                vs = self.genesis.validator_set(self.verifier.backend)
            else:
                raw = self._store.get_extra(epoch_proof_key(epoch - 1))
                if raw is None:
                    raise KeyError(f"no stored proof of the end of epoch {epoch - 1}")
                vs = ValidatorSet(epoch, EpochChangeProof.decode(raw).next_validators, backend=self.verifier.backend)
            if len(self._past_sets) >= MAX_CACHED_SETS:
                self._past_sets.pop(next(iter(self._past_sets)))
            self._past_sets[epoch] = vs
        return vs

    @property
    def role(self) -> str:
        """"validator" when this node signs in the current epoch, else "observer"."""
        return "validator" if self.signing_keys is not None else "observer"

    def _record_entry(self, rec: EpochRecord) -> Any:
        return next((v for v in rec.validators if v.node_id == self.node_id), None)

    def _keys_for(self, rec: EpochRecord) -> NodeKeys | None:
        """This node's keys as `rec` names them (identity and BLS key may come from different candidate files after
        a partial rotation), or None when the node is not in the set or holds no matching keys."""
        entry = self._record_entry(rec)
        if entry is None:
            return None
        identity = next((k for k in self._key_candidates if k.identity_key == entry.identity_key), None)
        bls_keys = next((k for k in self._key_candidates if k.bls_public_key == entry.bls_key), None)
        if identity is None or bls_keys is None:
            return None
        return NodeKeys(self.node_id, identity.identity_seed, bls_keys.bls_secret)

    def _replica_config(self) -> ReplicaConfig:
        return ReplicaConfig(chain_id=self.genesis.consensus_chain_id, base_timeout_ms=self.params.base_timeout_ms,
                             max_backoff_exponent=self.params.max_backoff_exponent,
                             max_payload_bytes=self.params.max_block_bytes)

    def _peer_set(self) -> PeerSet:
        """The validators of the current epoch and of the one just ended. A validator whose identity key rotated at
        this epoch change is admitted with its previous key too (it may not have switched yet: a node switches
        after committing the epoch-ending block)."""
        old = {} if self._previous_record is None else {v.node_id: v for v in self._previous_record.validators}
        # A node switches its identity one block into the epoch that rotated it; if that epoch ended with its first
        # block, the node may still hold the key of the epoch before it, so that key stays admitted too.
        older_record = self._record_before_previous()
        older = {} if older_record is None else {v.node_id: v for v in older_record.validators}
        peers: dict[str, Peer] = {}
        keys_seen: set[bytes] = set()
        current_keys = {v.identity_key for v in self.epoch_record.validators}
        for v in self.epoch_record.validators:
            # A previous key that another validator now holds (one proposal moved it) is not admitted twice.
            candidates = [r.identity_key for r in (old.get(v.node_id), older.get(v.node_id)) if r is not None]
            previous = next((k for k in candidates if k not in current_keys), None)
            peers[v.node_id] = Peer(v.node_id, v.identity_key, self._address_of(v.node_id, v.address), previous)
        for peer in peers.values():
            keys_seen.update(peer.identity_keys())
        for v in old.values():
            if v.node_id not in peers and v.identity_key not in keys_seen:
                peers[v.node_id] = Peer(v.node_id, v.identity_key, self._address_of(v.node_id, v.address))
                keys_seen.add(v.identity_key)
        # Keys the operator configured ("<key>@host:port"): a node that has not yet applied a peer's rotation or
        # addition (joining from genesis, or far behind) reaches it with them; the ledger's key stays admitted.
        for node_id, key in sorted(self._peer_keys.items()):
            if node_id == self.node_id or key in keys_seen:
                continue
            known = peers.get(node_id)
            if known is None:
                peers[node_id] = Peer(node_id, key, self._address_of(node_id, ""))
            else:
                if known.previous_key is not None:
                    keys_seen.discard(known.previous_key)
                peers[node_id] = Peer(node_id, key, known.address, known.public_key)
            keys_seen.add(key)
        for node_id, key in sorted(self._prospective.items()):
            if node_id != self.node_id and node_id not in peers and key not in keys_seen:
                peers[node_id] = Peer(node_id, key, None)  # it dials us; we never dial it
                keys_seen.add(key)
        return PeerSet.of(peers.values())

    def _prospective_validators(self) -> dict[str, bytes]:
        """node id -> identity key of the validators that open, unexpired proposals would add (at most
        MAX_PROSPECTIVE_PEERS, in proposal id order). Proposals are only made by governors, and such a peer gets no
        voting power: the replica drops its consensus messages; it can only sync and gossip."""
        height = self.executor.head.height
        out: dict[str, bytes] = {}
        for key, raw in self._store.iter_state(b"g"):
            rec = decode_value(key, raw)
            if rec.status != ProposalStatus.OPEN or rec.expiry_height <= height:
                continue
            for action in rec.actions:
                if isinstance(action, AddValidator) and len(out) < MAX_PROSPECTIVE_PEERS:
                    out.setdefault(action.node_id, action.identity_key)
        return out

    def _refresh_prospective(self) -> bool:
        """Recompute the prospective validators after a governance event; update the peer set if they changed."""
        fresh = self._prospective_validators()
        if fresh == self._prospective:
            return False
        self._prospective = fresh
        if self.transport is not None:
            self.transport.update_peer_set(self._peer_set())
        log.info("prospective_peers node=%s peers=%s", self.node_id, ",".join(sorted(fresh)) or "-")
        return True

    def _record_before_previous(self) -> EpochRecord | None:
        """The record of epoch e - 2 when epoch e - 1 lasted a single block (else None)."""
        prev = self._previous_record
        if prev is None or prev.epoch == 0 or self.epoch_record.start_height - prev.start_height > 1:
            return None
        raw = self._store.get_extra(epoch_record_key(prev.epoch - 1))
        return None if raw is None else decode_value(EPOCH_KEY, raw)

    def _address_of(self, node_id: str, address: str) -> tuple[str, int] | None:
        override = self._peer_addresses.get(node_id)
        if override is not None:
            return override
        if not address:
            return None
        try:
            return parse_address(address)
        except GenesisError:
            log.warning("peer_address_invalid peer=%s address=%r", node_id, address)
            return None

    def _before_epoch_commit(self, epoch: int) -> None:
        """Before the block that starts `epoch` is committed: mark the safety store (nothing signed in it yet) when
        this node can show that, i.e. its consensus directory has been continuous up to here:
          - it holds a safety state (of an older epoch: a signature in `epoch` would have replaced it), or the mark of
            the ending epoch;
          - or its replica is live at this boundary (it commits the epoch-ending block through consensus, so `epoch`
            has not begun for it and it cannot have signed in it);
          - or it is not a validator of the ending epoch (a joining node's keys enter the set only now).
        Otherwise (a validator whose data directory was wiped and that is crossing the boundary by block sync) it
        may have signed in `epoch` before the wipe: no mark, so it starts that epoch with its safety state lost and
        signs again from the next one (docs/consensus.md §10, "Epochs in the node")."""
        ending = self.executor.current_epoch()
        mark = self.safety_store.epoch_mark()
        continuous = (self.safety_store.has_state() or mark == epoch - 1
                      or (self.replica is not None and self.mode == "consensus")
                      or self._record_entry(ending) is None)
        self._epoch_mark_ok = continuous
        if continuous:
            self.safety_store.mark_epoch(epoch)
        else:
            log.warning("epoch_mark_withheld node=%s epoch=%d: the consensus directory shows no continuity up to this "
                        "epoch (wiped and catching up?); this node will not sign in it", self.node_id, epoch)

    def _adopt_epoch(self, committed: CommittedBlock) -> None:
        """The block that ends the current epoch committed (its proof is stored with it): switch to the next."""
        old = self.epoch_record
        rec = self.executor.current_epoch()
        assert committed.next_epoch is not None and rec == committed.next_epoch
        assert rec.epoch == old.epoch + 1 and rec.start_height == committed.height + 1
        self._previous_record = old
        self.epoch_record = rec
        self.vs = self.validator_set_of(rec)
        self.params = params_of(rec)
        self.executor.params = self.params
        self.replica_config = self._replica_config()
        was = self.signing_keys
        self.signing_keys = self._keys_for(rec)
        if self._record_entry(rec) is not None and self.signing_keys is None and self._load_next_keys is not None:
            try:
                fresh = [k for k in self._load_next_keys() if k.node_id == self.node_id]
            except KeyFileError as exc:
                log.error("next_keys_unreadable node=%s: %s", self.node_id, exc)
                fresh = []
            merged = list(dict.fromkeys((*self._key_candidates, *fresh)))
            self._key_candidates = (merged[0], *merged[1:][-7:])  # the key file's keys, at most 7 others
            self.signing_keys = self._keys_for(rec)
        if self._record_entry(rec) is not None and self.signing_keys is None:
            log.error("epoch_keys_missing node=%s epoch=%d: the validator set names keys for this node that neither "
                      "the key file nor the next keys hold; it follows as an observer", self.node_id, rec.epoch)
        self.safety_store.begin_epoch(rec.epoch, mark=self._epoch_mark_ok)
        self._epoch_mark_ok = True
        self._power = {v.node_id: v.power for v in rec.validators if v.node_id != self.node_id}
        peer_set = self._peer_set()
        self.peer_ids = sorted(p for p in peer_set.ids() if p != self.node_id and p not in self._prospective)
        for peer in [p for p in self.peer_heights if p not in peer_set]:
            del self.peer_heights[peer]
        if self.transport is not None:
            # An observer (removed, or holding no keys the set names) keeps the identity it has: after a rotation
            # that is the rotated key its peers know, not the one of the original key file.
            identity = None if self.signing_keys is None else self.signing_keys.identity()
            self._pending_identity = None
            own = peer_set.get(self.node_id)
            if identity is None or identity.public_key == self.transport.identity_key:
                self.transport.update_peer_set(peer_set)
            elif own is not None and own.accepts(self.transport.identity_key):
                # Peers admit both our keys during this epoch, but peers still in the old one only the old key: keep
                # it until a quorum of the new epoch has certified a block (then enough peers have switched to tell
                # the others about the epoch change), then reconnect with the new one.
                self._pending_identity = (identity, rec.start_height + 1)
                self.transport.update_peer_set(peer_set)
            else:
                # The epoch that rotated our key ended before we switched (it lasted one block): peers of this
                # epoch no longer admit the old key, while peers still in the previous one admit both. Switch now.
                log.info("identity_rotated node=%s epoch=%d: reconnecting with the new identity key at once",
                         self.node_id, rec.epoch)
                self.transport.update_peer_set(peer_set, identity)
        if self.replica is not None:
            self._epoch_switch = True
        self.counters["epoch_changes"] += 1
        joined = [v.node_id for v in rec.validators if v.node_id not in {w.node_id for w in old.validators}]
        left = [v.node_id for v in old.validators if v.node_id not in {w.node_id for w in rec.validators}]
        log.info("epoch_started node=%s epoch=%d start_height=%d validators=%d joined=%s left=%s role=%s%s",
                 self.node_id, rec.epoch, rec.start_height, len(rec.validators), ",".join(joined) or "-",
                 ",".join(left) or "-", self.role,
                 " keys_rotated" if was is not None and self.signing_keys is not None and was != self.signing_keys
                 else "")
        if self.signing_keys is None and was is not None:
            log.warning("validator_removed node=%s epoch=%d: not in the new validator set; following as an observer "
                        "(signs nothing)", self.node_id, rec.epoch)

    # ------------------------------------------------------------------------------------------------- network

    async def _receive_loop(self) -> None:
        assert self.transport is not None
        while True:
            peer, data = await self.transport.receive()
            try:
                self._on_peer_bytes(peer, data)
            except ExecutionError as exc:
                self._fail(exc.code, exc.message)
            except Exception:
                log.exception("peer_message_failed peer=%s", peer)
                self.metrics.rejected_message("internal")
            await asyncio.sleep(0)

    def _on_peer_bytes(self, peer: str, data: bytes) -> None:
        if not data:
            self.metrics.rejected_message("empty")
            return
        channel, body = data[0], data[1:]
        if channel == CH_NODE:
            self._on_node_message(peer, body)
            return
        if peer in self._bad_genesis_peers:
            self.metrics.rejected_message("genesis_mismatch")
            return
        if channel == CH_CONSENSUS:
            if self.replica is None:
                self.metrics.rejected_message("syncing")
                return
            self._run(self.replica.on_bytes(peer.encode(), body))
        elif channel == CH_TXS:
            self._on_gossip(peer, body)
        else:
            self.metrics.rejected_message("unknown_channel")

    def _on_node_message(self, peer: str, body: bytes) -> None:
        try:
            msg = msgpack.unpackb(body, raw=False, strict_map_key=True, max_bin_len=64 << 20,
                                  max_array_len=1 << 16, max_map_len=0)
        except (ValueError, TypeError, msgpack.UnpackException):
            self.metrics.rejected_message("malformed")
            return
        if not isinstance(msg, list) or not msg or type(msg[0]) is not int:
            self.metrics.rejected_message("malformed")
            return
        if msg[0] == MSG_STATUS:
            if len(msg) != 4 or not isinstance(msg[1], bytes) or type(msg[2]) is not int:
                self.metrics.rejected_message("malformed")
                return
            if msg[1] != self.genesis.hash:
                if peer not in self._bad_genesis_peers:
                    log.error("genesis_mismatch peer=%s peer_genesis=%s our_genesis=%s: the peer runs another "
                              "chain; its messages are ignored", peer, msg[1].hex(), self.genesis.hash.hex())
                self._bad_genesis_peers.add(peer)
                return
            self._bad_genesis_peers.discard(peer)
            self.peer_heights[peer] = (msg[2], time.monotonic())
            self._maybe_fall_behind()
            return
        if peer in self._bad_genesis_peers:
            self.metrics.rejected_message("genesis_mismatch")
            return
        self.sync.on_message(peer, msg)

    async def _status_loop(self) -> None:
        while True:
            self._send_status()
            self._refresh_gauges()
            await asyncio.sleep(STATUS_INTERVAL_S)

    def _send_status(self) -> None:
        if self.transport is not None:
            head = self.executor.head
            self.transport.broadcast(bytes((CH_NODE,)) + msgpack.packb(
                [MSG_STATUS, self.genesis.hash, head.height, head.block_id], use_bin_type=True))

    def send_node_message(self, peer: str, msg: list[Any]) -> bool:
        if self.transport is None:
            return False
        outcome = self.transport.send(peer, bytes((CH_NODE,)) + msgpack.packb(msg, use_bin_type=True))
        return outcome == "queued"

    def _fresh_peer_heights(self) -> list[tuple[int, str]]:
        now = time.monotonic()
        return [(h, p) for p, (h, seen) in self.peer_heights.items()
                if now - seen < 10 * STATUS_INTERVAL_S and p not in self._bad_genesis_peers]

    def best_peer_height(self) -> int:
        """The highest height any peer claims (one peer's word: informational, never a reason to act)."""
        return max((h for h, _ in self._fresh_peer_heights()), default=0)

    def sync_target_height(self) -> int:
        """The highest height reported by peers holding at least f + 1 voting power together (with equal powers:
        the (f+1)-th highest report). At most f power lies, so some honest validator has reached this height."""
        power = 0
        for height, peer in sorted(self._fresh_peer_heights(), reverse=True):
            power += self._power.get(peer, 0)
            if power >= self.vs.weak_power:
                return height
        return 0

    def _maybe_fall_behind(self) -> None:
        if self.replica is None or self.sync.running or self._stopped.is_set():
            return
        target = self.sync_target_height()
        if target > self.executor.head.height + SYNC_LAG:
            log.warning("fell_behind node=%s height=%d target=%d: f+1 validators are ahead, switching to block sync",
                        self.node_id, self.executor.head.height, target)
            self.counters["fell_behind"] += 1
            self._stop_consensus()
            self.mode = "syncing"
            self._spawn(self._resync())

    async def _resync(self, delay_s: float = 0.0) -> None:
        if delay_s > 0:
            await asyncio.sleep(delay_s)
        async with self._recovering("resync"):
            await self.sync.catch_up()
            self._start_consensus()

    def _on_gossip(self, peer: str, body: bytes) -> None:
        try:
            txs = msgpack.unpackb(body, raw=True, max_bin_len=MAX_TX_BYTES, max_array_len=GOSSIP_BATCH,
                                  max_map_len=0, max_str_len=0)
        except (ValueError, TypeError, msgpack.UnpackException):
            self.metrics.rejected_message("malformed")
            return
        if not isinstance(txs, list) or not all(type(raw) is bytes for raw in txs):
            self.metrics.rejected_message("malformed")
            return
        if len(self._gossip_in) >= MAX_GOSSIP_TASKS:
            self.metrics.rejected_message("gossip_overload")
            return
        task = asyncio.get_running_loop().create_task(self.pool.submit_many(txs, origin=peer))
        self._gossip_in.add(task)
        task.add_done_callback(self._gossip_in.discard)

    def _on_admitted(self, tx_id: bytes, raw: bytes, origin: str | None) -> None:
        """Mempool hook: gossip what clients submitted here (peers gossip their own clients' transactions)."""
        if origin is None and self.transport is not None:
            self._gossip_out.append(raw)
            if self._gossip_task is None:
                self._gossip_task = asyncio.get_running_loop().create_task(self._flush_gossip())

    async def _flush_gossip(self) -> None:
        await asyncio.sleep(GOSSIP_FLUSH_S)
        self._gossip_task = None
        out, self._gossip_out = self._gossip_out, []
        assert self.transport is not None
        for i in range(0, len(out), GOSSIP_BATCH):
            self.transport.broadcast(bytes((CH_TXS,)) + msgpack.packb(out[i:i + GOSSIP_BATCH], use_bin_type=True))

    # ------------------------------------------------------------------------------------------------- facade

    @property
    def chain_id(self) -> str:
        return self.genesis.chain_id

    @property
    def store(self) -> LedgerStore:
        return self._store

    @property
    def engine(self) -> RuleEngine:
        return self._engine

    def head(self) -> Any:
        from node.api.facade import HeadInfo

        h = self.executor.head
        return HeadInfo(h.height, h.block_id, h.state_root, h.time_ms // 1000)

    async def admit(self, raw: bytes) -> tuple[bytes, int, str]:
        """Admit signed transaction bytes to the mempool: (tx_id, code, message); code 0 or TX_ALREADY_PENDING
        mean the transaction is pending. Admitted ones are gossiped to the peers."""
        result = await self.pool.submit(raw)
        self.metrics.admission(result)
        tx_id = result.tx_id if result.tx_id is not None else hashlib.sha256(raw).digest()
        return tx_id, result.code, result.message

    async def submit(self, tx: SignedTransaction | bytes) -> Any:
        """NodeFacade.submit: an API Admission (code 0, duplicate=True when it was already pending)."""
        from node.api.facade import Admission

        raw = tx.to_bytes() if isinstance(tx, SignedTransaction) else bytes(tx)
        tx_id, code, message = await self.admit(raw)
        if code == TX_ALREADY_PENDING:
            return Admission(tx_id, 0, message, duplicate=True)
        return Admission(tx_id, code, message)

    async def submit_many(self, txs: Sequence[SignedTransaction | bytes]) -> list[Any]:
        """Batch NodeFacade.submit: one API Admission per transaction, in order, verified in one pool round per
        `Mempool.limits.max_batch` transactions (the API's batch route and the admin socket use it)."""
        from node.api.facade import Admission

        raws = [tx.to_bytes() if isinstance(tx, SignedTransaction) else bytes(tx) for tx in txs]
        out: list[Any] = []
        step = self.pool.limits.max_batch
        for i in range(0, len(raws), step):
            chunk = raws[i:i + step]
            for raw, result in zip(chunk, await self.pool.submit_many(chunk), strict=True):
                self.metrics.admission(result)
                tx_id = result.tx_id if result.tx_id is not None else hashlib.sha256(raw).digest()
                if result.code == TX_ALREADY_PENDING:
                    out.append(Admission(tx_id, 0, result.message, duplicate=True))
                else:
                    out.append(Admission(tx_id, result.code, result.message))
        return out

    def tx_pending(self, tx_id: bytes) -> bool:
        return self.pool.contains(tx_id)

    def block(self, height: int) -> Any:
        from node.api.facade import BlockView

        raw = self._store.get_block(height)
        root = self._store.state_root_at(height)
        if raw is None or root is None:
            return None
        block = decode_block(raw)
        h = block.header
        committed = self.feed.load(height) if height > 0 else None
        header = {"chain_id": h.chain_id.hex(), "epoch": h.epoch, "round": h.round, "height": h.height,
                  "parent_id": h.parent_id.hex(), "proposer": h.proposer, "payload_hash": h.payload_hash.hex(),
                  "qc": {"epoch": h.qc.epoch, "round": h.qc.round, "block_id": h.qc.block_id.hex(),
                         "state_root": h.qc.state_root.hex(), "signers": h.qc.signers.hex(),
                         "signature": h.qc.signature.hex()}}
        time_s = self.genesis.genesis_time if committed is None else committed.time_ms // 1000
        tx_ids = () if committed is None else tuple(r.tx_id for r in committed.receipts)
        return BlockView(height, block.id, time_s, root, tx_ids, header, self._store.get_extra(cert_key(height)))

    def certificate(self, height: int) -> CommitCertificate | None:
        raw = self._store.get_extra(cert_key(height))
        return None if raw is None else CommitCertificate.decode(raw)

    def validators(self) -> tuple[int, tuple[Any, ...]]:
        from node.api.facade import ValidatorView

        return self.vs.epoch, tuple(ValidatorView(i, v.id.decode(), v.public_key, v.power)
                                    for i, v in enumerate(self.vs.validators))

    def peers(self) -> tuple[Any, ...]:
        from node.api.facade import PeerView

        connected = self.transport.connected_peers() if self.transport is not None else frozenset()
        out = []
        for peer in self._peer_set().peers:
            if peer.node_id == self.node_id:
                continue
            address = "" if peer.address is None else f"{peer.address[0]}:{peer.address[1]}"
            seen = self.peer_heights.get(peer.node_id)
            out.append(PeerView(peer.node_id, address, peer.node_id in connected, None if seen is None else seen[0]))
        return tuple(out)

    def status(self) -> dict[str, Any]:
        head = self.executor.head
        replica = self.replica
        return {
            "node_id": self.node_id,
            "chain_id": self.genesis.chain_id,
            "genesis_hash": self.genesis.hash.hex(),
            "mode": self.mode,
            "height": head.height,
            "block_id": head.block_id.hex(),
            "state_root": head.state_root.hex(),
            "round": None if replica is None else replica.current_round,
            "epoch": self.vs.epoch,
            "role": self.role,
            "safety_lost": replica is not None and replica.safety_lost,
            "mempool": len(self.pool),
            "peers_connected": 0 if self.transport is None else len(self.transport.connected_peers()),
            "best_peer_height": self.best_peer_height(),
            "committed_tps": round(self.metrics.committed_tps(), 1),
            "evidence": self.counters["evidence"],
            "committed_txs": self.counters["committed_txs"],
            "sync_blocks_per_s": round(self.sync.last_rate, 1),
            "fatal": self._fatal,
        }

    def add_commit_listener(self, listener: Callable[[Any], None]) -> Callable[[], None]:
        self._listeners.append(listener)

        def remove() -> None:
            with contextlib.suppress(ValueError):
                self._listeners.remove(listener)

        return remove

    def statement(self, account_id: str, height: int) -> Mapping[str, Any]:
        from node.chain.statement import build_statement

        cert = self.certificate(height)
        if cert is None:
            raise KeyError(f"no commit certificate at height {height}")
        return build_statement(self._store, account_id, height, chain_id=self.genesis.chain_id, certificate=cert,
                               validator_set=self.validator_set_at_epoch(cert.epoch),
                               epoch_proofs=load_epoch_proofs(self._store, cert.epoch))

    def metrics_text(self) -> str:
        """Prometheus text exposition (node.validator.metrics)."""
        self._refresh_gauges()
        return self.metrics.render()

    def _refresh_gauges(self) -> None:
        self.metrics.set_mempool(self.pool.stats())
        self.metrics.set_peers(0 if self.transport is None else len(self.transport.connected_peers()))
        replica = self.replica
        if replica is not None:
            for name, value in replica.counters.items():
                if name.startswith("dropped_"):
                    seen = self._replica_dropped[name]
                    for _ in range(min(value - seen, 10_000)):
                        self.metrics.rejected_message(name.removeprefix("dropped_"))
                    self._replica_dropped[name] = value

    # ------------------------------------------------------------------------------------------------- helpers

    async def wait_for_height(self, height: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.executor.head.height < height:
            if time.monotonic() > deadline or self._stopped.is_set():
                return False
            await asyncio.sleep(0.02)
        return True


def params_of(rec: EpochRecord) -> ChainParams:
    """The node's ChainParams from an EpochRecord's params (same names and bounds)."""
    params = ChainParams(**{name: getattr(rec.params, name) for name in ChainParams.__dataclass_fields__})
    params.check()
    return params


def genesis_state_qc(node: Validator) -> Any:
    from consensus.messages import genesis_qc

    root = node.store.state_root_at(0)
    assert root is not None
    return genesis_qc(node.genesis.block(), root)


def verify_certified(node: Validator, cert: CommitCertificate) -> None:
    """Raise CommitCertificateError unless `cert` verifies against this node's validator set and chain. The set is
    the one of the committed head state, i.e. the set that certifies height head + 1: callers verify the next
    height only (block sync applies in order, switching sets at epoch-ending blocks)."""
    check_commit_certificate(node.vs, cert, chain_id=node.genesis.consensus_chain_id, verifier=node.verifier)


def _api_committed(block: CommittedBlock) -> Any:
    from node.api.facade import CommittedBlock as ApiCommittedBlock

    receipts: tuple[Receipt, ...] = block.receipts
    return ApiCommittedBlock(block.height, block.block_id, block.time_ms // 1000, block.state_root, receipts)
