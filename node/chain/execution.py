"""Speculative execution of proposed blocks on top of uncommitted parents, and the commit of executed blocks.

The replica asks (Execute) for the state root of every block it accepts, parent first. A block is executed on a
layered view: the store's latest committed state, under the changes of its uncommitted ancestors (newest first);
its tree is read through the ancestors' new nodes (ledger.smt.OverlayNodes). Nothing is written until the block
commits. When a block commits, its outcome becomes one `BlockCommit` (one synced LevelDB batch), and every executed
block at or below its height (the committed one and the losing forks) is forgotten.

Execution reads no clock: the block's time is the proposer's `time_ms` from the payload (node/chain/payload.py).
The voter-side clock bound (a vote-time check, not an execution input) is `check_proposal_time`.

Epochs (docs/consensus.md §10). Every block's header names the epoch of the EpochRecord in its parent's state (the
set that certifies it); execution checks that. A block whose execution schedules an epoch change (the ledger's
`BlockOutcome.next_epoch`) is epoch-ending: its commit writes, in the same synced batch as the block, the
EpochChangeProof that ends its epoch under `epoch_proof_key(epoch)`: its commit certificate and the next set's
entries. The certificate's QC (formed on a block of the reconfiguration suffix) must carry the epoch commitment of
exactly that set, else this node's ledger disagrees with the quorum's and the commit is refused.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from consensus.messages import Block, CommitCertificate, EpochChangeProof, decode_block, encode_block, epoch_commitment
from consensus.validators import ValidatorSet
from ledger.context import BlockContext
from ledger.events import Event, Receipt
from ledger.governance import current_epoch, validator_set_entries
from ledger.keys import EPOCH_KEY
from ledger.records import EpochRecord
from ledger.rules import RuleEngine
from ledger.smt import OverlayNodes, SparseMerkleTree
from ledger.state import encode_value
from ledger.store import BlockCommit, LedgerStore
from ledger.transaction import SignedTransaction
from ledger.transition import apply_block
from node.chain.genesis import MAX_BLOCK_BYTES, MAX_BLOCK_TXS, ChainParams, Genesis, GenesisState
from node.chain.payload import PayloadError, decode_payload
from node.chain.protocol import node_protocol

log = logging.getLogger("node.chain.execution")

CERT_PREFIX: Final = b"cert/"
EPOCH_PROOF_PREFIX: Final = b"epoch-proof/"
GENESIS_KEY: Final = b"genesis_hash"
# Executed, uncommitted blocks kept at most (forks included); the replica's tree is bounded similarly.
MAX_EXECUTED_BLOCKS: Final = 2048


def cert_key(height: int) -> bytes:
    return CERT_PREFIX + height.to_bytes(8, "big")


def epoch_proof_key(epoch: int) -> bytes:
    """Store extra key of the EpochChangeProof that ENDS `epoch` (written with the epoch-ending block)."""
    assert epoch >= 0
    return EPOCH_PROOF_PREFIX + b"%020d" % epoch


def epoch_record_key(epoch: int) -> bytes:
    """Store extra key of the EpochRecord of an ended epoch, written with the block that ends it."""
    assert epoch >= 0
    return b"epoch-record/%020d" % epoch


def load_epoch_proofs(store: LedgerStore, upto_epoch: int) -> list[EpochChangeProof]:
    """The proofs ending epochs 0 .. upto_epoch - 1, oldest first (what a light client follows from the genesis set
    to the set of `upto_epoch`). ExecutionError if one is missing: this store has not committed that far."""
    proofs = []
    for epoch in range(upto_epoch):
        raw = store.get_extra(epoch_proof_key(epoch))
        if raw is None:
            raise ExecutionError("epoch_proof_missing", f"no proof of the end of epoch {epoch} in {store.path}")
        proof = EpochChangeProof.decode(raw)
        assert proof.epoch == epoch
        proofs.append(proof)
    return proofs


def epoch_change_proof(cert: CommitCertificate, next_epoch: EpochRecord) -> EpochChangeProof:
    """The proof that the block certified by `cert` ended its epoch and that `next_epoch` follows."""
    assert next_epoch.epoch == cert.epoch + 1
    return EpochChangeProof(cert, validator_set_entries(next_epoch))


class ExecutionError(Exception):
    """The node's state contradicts the certified chain: it must stop (a wrong binary, a corrupt store)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class ExecutedBlock:
    block_id: bytes
    parent_id: bytes
    height: int
    time_ms: int
    state_root: bytes
    txs: tuple[bytes, ...]
    receipts: tuple[Receipt, ...]
    events: tuple[Event, ...]
    executed: tuple[tuple[bytes, bytes, bytes], ...]
    history: tuple[tuple[str, bytes], ...]
    changes: Mapping[bytes, bytes | None]
    smt_nodes: Mapping[bytes, bytes]
    # Set when this block is epoch-ending: the record of the epoch that starts at height + 1.
    next_epoch: EpochRecord | None = None


@dataclass(frozen=True, slots=True)
class CommittedBlock:
    """What a commit produced, for events and the mempool."""

    height: int
    block_id: bytes
    time_ms: int
    state_root: bytes
    receipts: tuple[Receipt, ...]
    events: tuple[Event, ...]
    tx_count: int
    certificate: CommitCertificate | None = field(default=None, compare=False)
    # The epoch that starts at height + 1 when this block ended its epoch (its proof is stored with it).
    next_epoch: EpochRecord | None = field(default=None, compare=False)


class _LayeredState:
    """StateReader: the changes of uncommitted ancestors (newest first) over the committed store."""

    __slots__ = ("_base", "_layers")

    def __init__(self, base: LedgerStore, layers: Sequence[Mapping[bytes, bytes | None]]) -> None:
        self._base = base
        self._layers = layers

    def get_state(self, key: bytes) -> bytes | None:
        for layer in self._layers:
            if key in layer:
                return layer[key]
        return self._base.get_state(key)


@dataclass(slots=True)
class Head:
    block_id: bytes
    height: int
    time_ms: int
    state_root: bytes


def bootstrap_store(store: LedgerStore, genesis: Genesis, state: GenesisState) -> None:
    """Write the genesis block (height 0) into an empty store, or check that the store belongs to `genesis`."""
    head = store.head()
    if head is None:
        store.commit_block(BlockCommit(0, state.block.id, encode_block(state.block), state.state_root, (), (),
                                       state.changes, state.smt_nodes, (), {GENESIS_KEY: genesis.hash}))
        return
    stored = store.get_extra(GENESIS_KEY)
    if stored != genesis.hash or store.state_root_at(0) != state.state_root:
        raise ExecutionError("genesis_mismatch",
                             f"the store at {store.path} was created from genesis "
                             f"{stored.hex() if stored else '?'}, the genesis file has hash {genesis.hash.hex()}; "
                             "use the matching genesis file or an empty data directory")


class Executor:
    def __init__(self, store: LedgerStore, genesis: Genesis, engine: RuleEngine, params: ChainParams,
                 signatures_verified: Callable[[bytes], bool] | None = None) -> None:
        """`signatures_verified(tx_bytes)`: True when these exact bytes' signatures were already verified here (the
        mempool's cache), so execution skips the cryptographic check (the outcome is the same either way)."""
        self.signatures_verified = signatures_verified
        # `lookup(tx_bytes)`: the decoded transaction when these exact bytes are pooled (and so verified) here.
        self.lookup: Callable[[bytes], SignedTransaction | None] | None = None
        self.store = store
        self.genesis = genesis
        self.engine = engine
        self.params = params
        self.executed: dict[bytes, ExecutedBlock] = {}
        # Builds (and caches, in the runtime) the ValidatorSet of an EpochRecord; constructing one checks its PoPs.
        self.validator_set_of: Callable[[EpochRecord], ValidatorSet] = _validator_set
        # Called with the next epoch number before an epoch-ending block is written (the runtime marks its safety
        # store: nothing signed in that epoch yet).
        self.before_epoch_commit: Callable[[int], None] | None = None
        self.head = self._read_head()
        self.blocks_executed = 0
        self.txs_executed = 0

    # -- head ---------------------------------------------------------------------------------------------------

    def _read_head(self) -> Head:
        h = self.store.head()
        assert h is not None, "bootstrap the store first"
        if h.height == 0:
            return Head(h.block_hash, 0, self.genesis.genesis_time * 1000, h.state_root)
        raw = self.store.get_block(h.height)
        assert raw is not None
        block = decode_block(raw)
        # A committed block obeyed the limits of its own epoch, which may be wider than the current ones.
        payload = decode_payload(block.payload, MAX_BLOCK_TXS, MAX_BLOCK_BYTES)
        return Head(h.block_hash, h.height, payload.time_ms, h.state_root)

    def current_epoch(self) -> EpochRecord:
        """The EpochRecord of the committed head state: the epoch that certifies height head + 1."""
        return current_epoch(self.store)

    def reload_head(self) -> None:
        """After block sync wrote blocks directly: forget speculation and re-read the head."""
        self.executed.clear()
        self.head = self._read_head()

    def time_of(self, block_id: bytes) -> int | None:
        if block_id == self.head.block_id:
            return self.head.time_ms
        e = self.executed.get(block_id)
        return None if e is None else e.time_ms

    # -- execution ----------------------------------------------------------------------------------------------

    def check_proposal_time(self, block: Block, now_ms: int) -> str | None:
        """Why a voter must not vote for this block's time (None: fine)."""
        try:
            payload = decode_payload(block.payload, self.params.max_block_txs, self.params.max_block_bytes)
        except PayloadError as exc:
            return exc.code
        if payload.time_ms > now_ms + self.params.max_clock_drift_ms:
            return "block_time_in_future"
        return None

    def execute(self, block: Block, parent_state_root: bytes) -> ExecutedBlock | None:
        """Execute `block` on top of its (executed or committed) parent. None: the block is invalid."""
        known = self.executed.get(block.id)
        if known is not None:
            return known
        header = block.header
        layers: list[Mapping[bytes, bytes | None]] = []
        node_layers: list[Mapping[bytes, bytes]] = []
        cursor = header.parent_id
        parent_time = parent_root = None
        while True:
            if cursor == self.head.block_id:
                if parent_time is None:
                    parent_time, parent_root = self.head.time_ms, self.head.state_root
                break
            ancestor = self.executed.get(cursor)
            if ancestor is None:
                log.warning("execute_unknown_ancestor height=%d block=%s", header.height, block.id.hex()[:16])
                return None
            if parent_time is None:
                parent_time, parent_root = ancestor.time_ms, ancestor.state_root
            layers.append(ancestor.changes)
            node_layers.append(ancestor.smt_nodes)
            cursor = ancestor.parent_id
        if parent_root != parent_state_root:
            log.error("execute_parent_root_mismatch height=%d", header.height)
            return None
        try:
            payload = decode_payload(block.payload, self.params.max_block_txs, self.params.max_block_bytes)
        except PayloadError as exc:
            log.warning("block_payload_refused height=%d code=%s", header.height, exc.code)
            return None
        if payload.time_ms < parent_time:
            log.warning("block_time_regressed height=%d", header.height)
            return None
        if len(self.executed) >= MAX_EXECUTED_BLOCKS:
            log.warning("execution_table_full")
            return None
        state = _LayeredState(self.store, layers)
        epoch = current_epoch(state)
        if header.epoch != epoch.epoch or header.height < epoch.start_height:
            log.error("block_wrong_epoch height=%d epoch=%d ledger_epoch=%d start_height=%d", header.height,
                      header.epoch, epoch.epoch, epoch.start_height)
            return None
        tree = SparseMerkleTree(OverlayNodes(self.store, *node_layers), parent_root)
        context = BlockContext(self.genesis.chain_id, header.height, payload.time_ms // 1000)
        items: list[SignedTransaction | bytes] = list(payload.txs)
        if self.lookup is not None:
            # Transactions pooled here are already decoded and their signatures verified: execute those objects.
            for i, raw in enumerate(payload.txs):
                tx = self.lookup(raw)
                if tx is not None:
                    items[i] = tx
        outcome = apply_block(state, context, items, tree=tree, protocol=node_protocol(self.engine),
                              signatures_verified=self._verified)
        next_epoch = outcome.next_epoch
        if next_epoch is not None:
            # Invariant (ledger): one epoch change at a time, starting right after this block.
            assert next_epoch.epoch == epoch.epoch + 1 and next_epoch.start_height == header.height + 1
        executed = ExecutedBlock(block.id, header.parent_id, header.height, payload.time_ms, outcome.state_root,
                                 payload.txs, outcome.receipts, outcome.events, outcome.executed, outcome.history,
                                 outcome.changes, outcome.smt_nodes, next_epoch)
        self.executed[block.id] = executed
        self.blocks_executed += 1
        self.txs_executed += len(payload.txs)
        return executed

    def _verified(self, item: SignedTransaction | bytes) -> bool:
        if isinstance(item, SignedTransaction):
            return True  # came from self.lookup: pooled, hence verified
        return self.signatures_verified is not None and self.signatures_verified(item)

    # -- commit -------------------------------------------------------------------------------------------------

    def commit(self, block: Block, cert: CommitCertificate) -> CommittedBlock:
        """Write the executed `block` with its certificate in one synced batch; forget it and its losing forks."""
        e = self.executed.get(block.id)
        if e is None:
            parent_root = self.head.state_root
            e = self.execute(block, parent_root)
            if e is None:
                raise ExecutionError("commit_unexecutable", f"the certified block at {block.header.height} "
                                                            "does not execute on this node")
        if e.height != self.head.height + 1 or e.parent_id != self.head.block_id:
            raise ExecutionError("commit_out_of_order", f"commit of height {e.height} on head {self.head.height}")
        if e.state_root != cert.state_root:
            raise ExecutionError("state_root_mismatch",
                                 f"height {e.height}: this node computed {e.state_root.hex()}, the validators "
                                 f"certified {cert.state_root.hex()}")
        extras = {cert_key(e.height): cert.encode()}
        if e.next_epoch is not None:
            next_set = self.validator_set_of(e.next_epoch)
            if cert.qc.state_root != epoch_commitment(block.id, e.state_root, next_set.digest):
                raise ExecutionError("epoch_change_mismatch",
                                     f"height {e.height} ends epoch {cert.epoch} here, but the certificate's QC does "
                                     "not commit to the next validator set this node computed")
            extras[epoch_proof_key(cert.epoch)] = epoch_change_proof(cert, e.next_epoch).encode()
            # The record of the epoch ending here (the peer set keeps its validators for one more epoch).
            ending = current_epoch(self.store)
            assert ending.epoch == cert.epoch
            extras[epoch_record_key(ending.epoch)] = encode_value(EPOCH_KEY, ending)
            if self.before_epoch_commit is not None:
                self.before_epoch_commit(e.next_epoch.epoch)
        self.store.commit_block(BlockCommit(
            e.height, block.id, encode_block(block), e.state_root,
            [(tx_id, tx) for tx_id, tx, _ in e.executed], [(tx_id, r) for tx_id, _, r in e.executed],
            e.changes, e.smt_nodes, e.history, extras))
        self.head = Head(block.id, e.height, e.time_ms, e.state_root)
        for block_id in [b for b, x in self.executed.items() if x.height <= e.height]:
            del self.executed[block_id]
        return CommittedBlock(e.height, block.id, e.time_ms, e.state_root, e.receipts, e.events, len(e.txs), cert,
                              e.next_epoch)


def _validator_set(rec: EpochRecord) -> ValidatorSet:
    return ValidatorSet(rec.epoch, validator_set_entries(rec))


def now_ms() -> int:
    """The local wall clock, for proposing and for the voter's drift check only (never for execution)."""
    return time.time_ns() // 1_000_000
