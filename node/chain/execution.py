"""Speculative execution of proposed blocks on top of uncommitted parents, and the commit of executed blocks.

The replica asks (Execute) for the state root of every block it accepts, parent first. A block is executed on a
layered view: the store's latest committed state, under the changes of its uncommitted ancestors (newest first);
its tree is read through the ancestors' new nodes (ledger.smt.OverlayNodes). Nothing is written until the block
commits. A certified block is committed in two steps: `finalize` checks it against this node's execution and builds
its one `BlockCommit` (one synced LevelDB batch), `write` writes it; every executed block at or below its height (the
committed one and the losing forks) is then forgotten. Between the two, the validator marks its safety store when
the block ends an epoch (node/validator/driver.py).

Execution reads no clock: the block's time is the proposer's `time_ms` from the payload (node/chain/payload.py).
The voter-side clock bound (a vote-time check, not an execution input) is `check_proposal_time`.

A block whose commit certificate this node has verified (block sync, a commit after a gap) is executed against the
certified state root: `prepare(..., certified_root=...)` runs ledger.transition.apply_certified_block, which skips
every Ed25519 check and keeps that outcome only when it gives the certified root and no transaction id occurs twice
(then it provably equals the checked outcome, receipts included); otherwise the block is executed again with every
signature checked. A block this node votes on is never executed that way (its root is what the vote asserts).

Epochs (docs/consensus.md §10). Every block's header names the epoch of the EpochRecord in its parent's state (the
set that certifies it); execution checks that. A block whose execution schedules an epoch change (the ledger's
`BlockOutcome.next_epoch`) is epoch-ending: its commit writes, in the same synced batch as the block, the
EpochChangeProof that ends its epoch under `epoch_proof_key(epoch)`: its commit certificate and the next set's
entries. The certificate's QC (formed on a block of the reconfiguration suffix) must carry the epoch commitment of
exactly that set, else this node's ledger disagrees with the quorum's and the commit is refused.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final
from typing import Protocol as Interface

from consensus.messages import Block, CommitCertificate, decode_block, encode_block, epoch_commitment
from ledger import codes
from ledger.context import BlockContext
from ledger.events import Event, Receipt, encode_receipt
from ledger.governance_state import current_epoch
from ledger.protocol import Protocol
from ledger.records import EpochRecord
from ledger.schema import MAX_BLOCK_BYTES, MAX_BLOCK_TXS, MAX_TX_LIFETIME
from ledger.smt import OverlayNodes, SparseMerkleTree
from ledger.state import encode_value
from ledger.state_keys import EPOCH_KEY
from ledger.store import BlockCommit, LedgerStore
from ledger.transaction import SignedTransaction, decode_transaction
from ledger.transition import BLOCK_EVENTS_TX_ID, BlockOutcome, apply_block, apply_certified_block
from node.chain.balance_changes import balance_changes_key, encode_balance_changes
from node.chain.certified import block_events_key, cert_key, epoch_change_proof, epoch_proof_key, epoch_record_key
from node.chain.epochs import Epochs
from node.chain.genesis import Genesis
from node.chain.payload import PayloadError, decode_payload
from node.errors import NodeError

log = logging.getLogger("node.chain.execution")

# Executed, uncommitted blocks kept at most (forks included); the replica's tree is bounded similarly.
MAX_EXECUTED_BLOCKS: Final = 2048


class KnownTransactions(Interface):
    """Transactions this node already decoded and verified (the mempool): execution reuses them."""

    def lookup(self, raw: bytes) -> SignedTransaction | None: ...  # decoded and verified: pooled here

    def is_verified(self, raw: bytes) -> bool: ...  # every signature of these exact bytes verified here


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
    rejected: tuple[tuple[bytes, bytes, bytes], ...]  # rejected for good (ledger.transition.FINAL_REJECTIONS)
    history: tuple[tuple[str, bytes], ...]
    changes: Mapping[bytes, bytes | None]
    smt_nodes: Mapping[bytes, bytes]
    # Set when this block is epoch-ending: the record of the epoch that starts at height + 1.
    next_epoch: EpochRecord | None = None
    block_events: tuple[Event, ...] = ()  # the block's own events (also first in `events`)
    # (tx_id, asset, account, Δavailable, Δheld, Δfrozen), stored for indexers (node/chain/balance_changes.py)
    balance_changes: tuple[tuple[bytes, str, str, int, int, int], ...] = ()
    # How its signatures were treated: "checked" (every one not verified at admission), "skipped" (executed against
    # a verified certificate, whose root proved the checks unnecessary), "rechecked" (executed against a
    # certificate and again with the checks: a signature that does not verify, or an id twice).
    signatures: str = "checked"


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
    block_events: tuple[Event, ...] = ()  # the block's own events (holds released on expiry; first in `events`)
    # Transactions this block made final: every receipt but TX_REPLAYED, i.e. not a transaction the block carries
    # again after an ancestor (or an earlier position of this block) committed it. What the node's committed counts
    # add up (the block's length would count such a copy twice). Counted once, when the block is built.
    newly_final_txs: int = field(init=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "newly_final_txs", sum(1 for r in self.receipts if r.code != codes.TX_REPLAYED))


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


@dataclass(frozen=True, slots=True)
class ExecutionJob:
    """The part of executing a block that takes time: `run` applies its transactions on the state it was prepared
    on. It reads only what it holds -- its ancestors' changes and tree nodes (immutable) and, below them, the store,
    whose committed keys can change while it runs only by the commit of one of those ancestors, i.e. to the values
    the job already reads from that ancestor's layer -- so a host may run it on another thread while the loop goes
    on. Its outcome is kept by `Executor.record` on the executor's thread."""

    block: Block
    time_ms: int
    parent_root: bytes
    state: _LayeredState
    nodes: OverlayNodes
    txs: tuple[bytes, ...]  # the payload's transactions
    items: tuple[SignedTransaction | bytes, ...]  # the same, decoded where this node pooled them
    verified: frozenset[bytes]  # raw transactions (not pooled here) whose signatures this node already verified
    context: BlockContext
    protocol: Protocol
    # The state root a verified commit certificate proves for this block: execute without signature checks first
    # (ledger.transition.apply_certified_block). None: check every signature not vouched for above.
    certified_root: bytes | None = None

    def run(self) -> BlockOutcome | None:
        """Apply the block. None: it is invalid (wrong epoch)."""
        header = self.block.header
        epoch = current_epoch(self.state)
        if header.epoch != epoch.epoch or header.height < epoch.start_height:
            log.error("block_wrong_epoch height=%d epoch=%d ledger_epoch=%d start_height=%d", header.height,
                      header.epoch, epoch.epoch, epoch.start_height)
            return None
        tree = SparseMerkleTree(self.nodes, self.parent_root)
        if self.certified_root is None:
            outcome = apply_block(self.state, self.context, self.items, tree=tree, protocol=self.protocol,
                                  signatures_verified=self._verified)
        else:
            outcome = apply_certified_block(self.state, self.context, self.items, tree=tree, protocol=self.protocol,
                                            certified_root=self.certified_root, signatures_verified=self._verified)
        next_epoch = outcome.next_epoch
        if next_epoch is not None:
            # Invariant (ledger): one epoch change at a time, starting right after this block.
            assert next_epoch.epoch == epoch.epoch + 1 and next_epoch.start_height == header.height + 1
        return outcome

    def _verified(self, item: SignedTransaction | bytes) -> bool:
        # A decoded item came from the known transactions (pooled or pre-verified): its signatures verified.
        return isinstance(item, SignedTransaction) or item in self.verified


@dataclass(slots=True)
class ChainHead:
    """The committed head as execution sees it (ledger.store.Head plus the block's time)."""

    block_id: bytes
    height: int
    time_ms: int
    state_root: bytes


@dataclass(frozen=True, slots=True)
class FinalizedBlock:
    """A certified block checked against this node's execution and ready to be written (Executor.write)."""

    executed: ExecutedBlock
    commit: BlockCommit
    certificate: CommitCertificate

    @property
    def next_epoch(self) -> EpochRecord | None:
        return self.executed.next_epoch


class Executor:
    """Speculative execution of proposed blocks and the commit of certified ones, over one store.

    `protocol`: what blocks execute under (operation set, rule engine, proof-of-possession check). `known`:
    transactions this node already decoded and verified (the mempool); execution takes the decoded objects and skips
    the cryptographic check of their signatures (the outcome is the same either way). `epochs`: the epoch of the head
    (its params bound payloads; its set checks epoch-ending commitments)."""

    def __init__(self, store: LedgerStore, genesis: Genesis, protocol: Protocol, epochs: Epochs,
                 known: KnownTransactions) -> None:
        self.store = store
        self.genesis = genesis
        self.protocol = protocol
        self.epochs = epochs
        self._known = known
        self.executed: dict[bytes, ExecutedBlock] = {}
        self.head = self._read_head()
        self.blocks_executed = 0
        self.txs_executed = 0
        # Certified blocks executed with no signature check, and those executed again with the checks (a transaction
        # whose signature does not verify, or an id twice: a faulty or malicious proposer's block).
        self.certified_unchecked = 0
        self.certified_rechecked = 0

    # -- head ---------------------------------------------------------------------------------------------------

    def _read_head(self) -> ChainHead:
        h = self.store.head()
        assert h is not None, "bootstrap the store first"
        if h.height == 0:
            return ChainHead(h.block_hash, 0, self.genesis.genesis_time * 1000, h.state_root)
        raw = self.store.get_block(h.height)
        assert raw is not None
        block = decode_block(raw)
        # A committed block obeyed the limits of its own epoch, which may be wider than the current ones.
        payload = decode_payload(block.payload, MAX_BLOCK_TXS, MAX_BLOCK_BYTES)
        return ChainHead(h.block_hash, h.height, payload.time_ms, h.state_root)

    def time_of(self, block_id: bytes) -> int | None:
        if block_id == self.head.block_id:
            return self.head.time_ms
        e = self.executed.get(block_id)
        return None if e is None else e.time_ms

    def height_of(self, block_id: bytes) -> int | None:
        if block_id == self.head.block_id:
            return self.head.height
        e = self.executed.get(block_id)
        return None if e is None else e.height

    def ends_epoch(self, block: Block, cert: CommitCertificate) -> bool:
        """Whether the certified `block`, whose parent is the head or executed here, ends its epoch: executed now
        (against `cert`'s root, as `finalize` would) unless it already is. False when it does not execute (its
        commit then fails). Precondition: `cert` verified."""
        e = self.executed.get(block.id)
        if e is None:
            parent = block.header.parent_id
            if parent == self.head.block_id:
                parent_root = self.head.state_root
            elif parent in self.executed:
                parent_root = self.executed[parent].state_root
            else:
                return False
            e = self.execute(block, parent_root, cert.state_root if cert.block_id == block.id else None)
        return e is not None and e.next_epoch is not None

    def forget(self) -> None:
        """Drop every speculative execution (a replica restarts from the head)."""
        self.executed.clear()

    # -- execution ----------------------------------------------------------------------------------------------

    def check_proposal_time(self, time_ms: int, now_ms: int) -> str | None:
        """Why a voter must not vote for a block of time `time_ms` (None: fine). The time comes from the payload
        `prepare` already decoded: it is not decoded again."""
        if time_ms > now_ms + self.epochs.params.max_clock_drift_ms:
            return "block_time_in_future"
        return None

    def execute(self, block: Block, parent_state_root: bytes, certified_root: bytes | None = None) -> ExecutedBlock | None:
        """Execute `block` on top of its (executed or committed) parent. None: the block is invalid."""
        job = self.prepare(block, parent_state_root, certified_root)
        return job if not isinstance(job, ExecutionJob) else self.record(job, job.run())

    def prepare(self, block: Block, parent_state_root: bytes,
                certified_root: bytes | None = None) -> ExecutionJob | ExecutedBlock | None:
        """The checks of `execute` that need this executor's tables (cheap), and the job that does the rest: an
        ExecutionJob to `run` (on any thread) and then `record`; or the answer at once (already executed, or None:
        invalid). `certified_root`: the root a commit certificate the caller verified proves for `block` (module
        docstring); never a root that is not proved, since the execution is then trusted to match it."""
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
        params = self.epochs.params
        try:
            payload = decode_payload(block.payload, params.max_block_txs, params.max_block_bytes)
        except PayloadError as exc:
            log.warning("block_payload_refused height=%d code=%s", header.height, exc.code)
            return None
        if payload.time_ms < parent_time:
            log.warning("block_time_regressed height=%d", header.height)
            return None
        if len(self.executed) >= MAX_EXECUTED_BLOCKS:
            log.warning("execution_table_full")
            return None
        items: list[SignedTransaction | bytes] = list(payload.txs)
        verified: set[bytes] = set()
        for i, raw in enumerate(payload.txs):
            tx = self._known.lookup(raw)  # pooled or pre-verified here: already decoded, signatures verified
            if tx is not None:
                items[i] = tx
            elif self._known.is_verified(raw):
                verified.add(raw)
        return ExecutionJob(block, payload.time_ms, parent_root, _LayeredState(self.store, layers),
                            OverlayNodes(self.store, *node_layers), tuple(payload.txs), tuple(items),
                            frozenset(verified),
                            BlockContext(self.genesis.chain_id, header.height, payload.time_ms // 1000),
                            self.protocol, certified_root)

    def record(self, job: ExecutionJob, outcome: BlockOutcome | None) -> ExecutedBlock | None:
        """Keep the result of a job that ran (None: the block is invalid). A job whose parent is no longer the head
        or an executed block (a commit went past it while it ran: it was on a losing fork, or the commit executed
        the block itself) is not kept: None."""
        block = job.block
        known = self.executed.get(block.id)
        if known is not None:
            return known
        parent = block.header.parent_id
        if outcome is None or (parent != self.head.block_id and parent not in self.executed):
            return None
        signatures = ("checked" if job.certified_root is None else
                      "rechecked" if outcome.signatures_checked else "skipped")
        executed = ExecutedBlock(block.id, parent, block.header.height, job.time_ms, outcome.state_root,
                                 job.txs, outcome.receipts, outcome.events, outcome.executed, outcome.rejected,
                                 outcome.history, outcome.changes, outcome.smt_nodes, outcome.next_epoch,
                                 outcome.block_events, outcome.balance_changes, signatures)
        self.executed[block.id] = executed
        self.blocks_executed += 1
        self.txs_executed += len(job.txs)
        if signatures == "skipped":
            self.certified_unchecked += 1
        elif signatures == "rechecked":
            self.certified_rechecked += 1
            log.warning("certified_block_rechecked height=%d block=%s (a signature that does not verify or a "
                        "transaction id twice: executed again with every signature checked)", block.header.height,
                        block.id.hex()[:16])
        return executed

    # -- commit -------------------------------------------------------------------------------------------------

    def finalize(self, block: Block, cert: CommitCertificate) -> FinalizedBlock:
        """Check that the certified `block` extends the head and that this node's execution of it gives the certified
        state root (and, for an epoch-ending block, the certified next validator set); build its one-batch commit.
        NodeError on any disagreement: this node's state contradicts the certified chain. Writes nothing.
        Precondition: `cert` has been verified (every caller does: block sync and a commit after a gap check it
        first, a replica builds it from QCs it verified), since a block executed here is executed against its root
        (ledger.transition.apply_certified_block)."""
        return self._finalize_on(self.head, block, cert, frozenset())

    def finalize_group(self, certified: Sequence[tuple[Block, CommitCertificate]]) -> list[FinalizedBlock]:
        """`finalize` for consecutive certified blocks that `write_group` writes together: each is checked on the
        head the ones before it make. Only the last may end an epoch (the next block's certificate is checked under
        the next set, which only its commit installs). NodeError as `finalize` raises it, for the first block that
        disagrees; writes nothing. Precondition: every certificate has been verified."""
        finalized: list[FinalizedBlock] = []
        head = self.head
        stored: set[bytes] = set()
        for i, (block, cert) in enumerate(certified):
            if finalized and finalized[-1].next_epoch is not None:
                raise NodeError("commit_out_of_order", f"height {block.header.height} follows an epoch-ending "
                                                       "block in the same group commit")
            f = self._finalize_on(head, block, cert, stored)
            finalized.append(f)
            e = f.executed
            head = ChainHead(e.block_id, e.height, e.time_ms, e.state_root)
            if i + 1 < len(certified):
                stored.update(tx_id for tx_id, _ in f.commit.txs)
        return finalized

    def _finalize_on(self, head: ChainHead, block: Block, cert: CommitCertificate,
                     stored: frozenset[bytes] | set[bytes]) -> FinalizedBlock:
        """`finalize` on `head` (the committed head, or the block before in a group commit, whose stored
        transaction ids are `stored`)."""
        e = self.executed.get(block.id)
        if e is None:
            e = self.execute(block, head.state_root, cert.state_root if cert.block_id == block.id else None)
            if e is None:
                raise NodeError("commit_unexecutable", f"the certified block at {block.header.height} "
                                                       "does not execute on this node")
        if e.height != head.height + 1 or e.parent_id != head.block_id:
            raise NodeError("commit_out_of_order", f"commit of height {e.height} on head {head.height}")
        if e.state_root != cert.state_root:
            raise NodeError("state_root_mismatch",
                            f"height {e.height}: this node computed {e.state_root.hex()}, the validators "
                            f"certified {cert.state_root.hex()}")
        extras = {cert_key(e.height): cert.encode()}
        if e.block_events:
            own = Receipt(BLOCK_EVENTS_TX_ID, e.height, len(e.txs), 0, None, "", e.block_events)
            extras[block_events_key(e.height)] = encode_receipt(own, operations=self.protocol.operations)
        if e.balance_changes:
            extras[balance_changes_key(e.height)] = encode_balance_changes(e.balance_changes)
        if e.next_epoch is not None:
            next_set = self.epochs.set_of(e.next_epoch)
            if cert.qc.state_root != epoch_commitment(block.id, e.state_root, next_set.digest):
                raise NodeError("epoch_change_mismatch",
                                f"height {e.height} ends epoch {cert.epoch} here, but the certificate's QC does "
                                "not commit to the next validator set this node computed")
            extras[epoch_proof_key(cert.epoch)] = epoch_change_proof(cert, e.next_epoch).encode()
            # The record of the epoch ending here (the peer set keeps its validators for one more epoch).
            ending = current_epoch(self.store)
            assert ending.epoch == cert.epoch
            extras[epoch_record_key(ending.epoch)] = encode_value(EPOCH_KEY, ending)
        kept = self._stored_transactions(e, stored)
        commit = BlockCommit(e.height, block.id, encode_block(block), e.state_root,
                             [(tx_id, tx) for tx_id, tx, _ in kept], [(tx_id, r) for tx_id, _, r in kept],
                             e.changes, e.smt_nodes, e.history, extras)
        return FinalizedBlock(e, commit, cert)

    def _stored_transactions(self, e: ExecutedBlock,
                             earlier: frozenset[bytes] | set[bytes]) -> list[tuple[bytes, bytes, bytes]]:
        """(tx_id, tx bytes, receipt bytes) to store for a block, in block order: every executed transaction, and
        each transaction rejected for good whose id has no stored receipt yet, in the store or among the ids
        `earlier` blocks of the same group commit store (an id keeps its first receipt: a transaction executed
        earlier and included again once expired keeps the receipt of its execution). On a store that lacks the
        blocks below its base height (state sync, block pruning), an expired transaction that may have executed in
        one of them gets no stored rejection: its first receipt is unknown here (an archive node keeps it), and a
        faulty proposer could otherwise make an old committed transaction read "rejected" on such a node."""
        stored = list(e.executed)
        ids = {tx_id for tx_id, _, _ in stored}
        stored += [x for x in e.rejected
                   if x[0] not in ids and x[0] not in earlier and self.store.get_tx(x[0]) is None
                   and not self._may_have_executed_unseen(x[1])]
        if len(stored) > len(e.executed):
            first_index: dict[bytes, int] = {}
            for r in e.receipts:
                first_index.setdefault(r.tx_id, r.index)
            stored.sort(key=lambda x: first_index[x[0]])
        return stored

    def _may_have_executed_unseen(self, tx_bytes: bytes) -> bool:
        """Whether a transaction rejected for good could have executed at or below the store's base height, whose
        transactions this store does not hold: it can execute only from its expiry height - MAX_TX_LIFETIME on."""
        base = self.store.base_height()
        if base == 0:
            return False
        expiry = decode_transaction(tx_bytes, operations=self.protocol.operations).body.expiry_height
        return expiry - MAX_TX_LIFETIME <= base

    def write_group(self, group: Sequence[FinalizedBlock]) -> list[CommittedBlock]:
        """Write blocks `finalize_group` finalized, all in one synced batch (ledger.store.LedgerStore.commit_blocks:
        all or none after a crash); forget them and their losing forks."""
        if not group:
            return []
        self._check_extends_head(group[0])
        self.store.commit_blocks([f.commit for f in group])
        return self._written(group)

    def write(self, finalized: FinalizedBlock) -> CommittedBlock:
        """Write a finalized block in one synced batch; forget it and its losing forks."""
        self._check_extends_head(finalized)
        self.store.commit_block(finalized.commit)
        return self._written((finalized,))[0]

    def _check_extends_head(self, first: FinalizedBlock) -> None:
        e = first.executed
        assert e.height == self.head.height + 1 and e.parent_id == self.head.block_id, "finalized on another head"

    def _written(self, group: Sequence[FinalizedBlock]) -> list[CommittedBlock]:
        """The head moves to the last block written; every executed block at or below it is forgotten."""
        last = group[-1].executed
        self.head = ChainHead(last.block_id, last.height, last.time_ms, last.state_root)
        for block_id in [b for b, x in self.executed.items() if x.height <= last.height]:
            del self.executed[block_id]
        return [_committed(f) for f in group]

def _committed(finalized: FinalizedBlock) -> CommittedBlock:
    e = finalized.executed
    return CommittedBlock(e.height, e.block_id, e.time_ms, e.state_root, e.receipts, e.events, len(e.txs),
                          finalized.certificate, e.next_epoch, e.block_events)
