"""The Application: everything a validator's consensus drives, behind one small interface in the shape of CometBFT's
ABCI. It owns the ledger store, the mempool, speculative execution, the commit feed and its listeners, and the epoch
of the committed head; it knows nothing of replicas, sockets, timers or event loops, and reads no clock. Time and
the signature verifiers come in as arguments, so a simulator can drive it exactly like the node does.

    app = Application(store, genesis, protocol=..., tx_verifier=..., bls=..., mempool_limits=...)

    admit      await app.admit(raws, origin) | app.admit_now(raws, origin) -> [Admission]         (ABCI CheckTx)
    propose    app.propose(parent_id, time_ms) -> payload bytes; app.branch_executed / has_work(parent_id)  (PrepareProposal)
    execute    app.execute(block, parent_root, now_ms) -> Execution                          (ProcessProposal)
    commit     app.finalize(block, cert) -> FinalizedBlock, then app.commit(finalized)       (FinalizeBlock, Commit)
               app.finalize_group(blocks) -> [FinalizedBlock], then app.commit_group(...)   (block sync: one write)
    query      app.head, app.epochs, app.block_view(h) / app.certificate(h) / app.statement(...), app.feed, app.store

Commit is two calls because a validator must mark its consensus safety store between them when the block ends an
epoch (node/validator/driver.py): `finalize` checks the certified block against this node's execution and writes
nothing; `commit` writes it in one synced batch, then switches the epoch (when the block ended one), removes its
transactions from the mempool, and tells the feed and the listeners. Every path that commits a block -- the
replica's Commit, a commit after a gap, block sync -- goes through these two calls; block sync through their group
form, which writes a run of consecutive certified blocks in ONE synced batch (all or none after a crash) and then
does the rest for each block in height order (only the last may end an epoch: `ends_epoch` tells where to cut).

`execute` takes `now_ms` only for the voting policy (a block too far ahead of this node's clock gets no vote, but is
executed and may be committed); execution itself depends on the block alone. `execute` is synchronous;
`begin_execution` / `end_execution` split it so that the long part (`PendingExecution.run`: reads of the store and
of immutable ancestor changes, no table of this object) runs on another thread while the host goes on -- what the
node does (node/validator/node.py), so consensus, admission and the API are never blocked by a full block.
A block that arrives with its commit certificate (block sync) is executed with `certificate=`: once the certificate
verifies, the execution skips the transactions' signature checks whenever the certified root proves that changes
nothing (node/chain/execution.py, ledger.transition.apply_certified_block).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from consensus.certificates import CommitCertificateError, Evidence, SignatureVerifier, check_commit_certificate
from consensus.messages import Block, CommitCertificate, QuorumCert, decode_block, genesis_qc
from consensus.validators import ValidatorSet
from ledger.governance_state import current_epoch
from ledger.operations import AddValidator
from ledger.protocol import Protocol
from ledger.records import ProposalStatus
from ledger.schema import MAX_BLOCK_BYTES, MAX_BLOCK_TXS
from ledger.state import decode_value
from ledger.store import LedgerStore
from ledger.transaction import SignedTransaction
from ledger.transition import BlockOutcome
from node.chain.certified import bootstrap_store, cert_key, evidence_key, load_certificate
from node.chain.commit_feed import CommitFeed
from node.chain.epochs import Epochs, EpochSwitch
from node.chain.execution import ChainHead, CommittedBlock, ExecutedBlock, ExecutionJob, Executor, FinalizedBlock
from node.chain.genesis import Genesis, genesis_state
from node.chain.mempool import Admission, Mempool, MempoolLimits
from node.chain.payload import encode_payload
from node.chain.sigverify import Ed25519Verifier

__all__ = ["PROPOSAL_EVENTS", "Application", "CommitResult", "Execution", "PendingExecution"]

log = logging.getLogger("node.chain.application")

PROPOSAL_EVENTS: Final = frozenset({"proposal_created", "proposal_executed", "proposal_cancelled"})
# Payload framing: the payload array header and time take at most this many bytes; each transaction adds 3.
PAYLOAD_OVERHEAD: Final = 64
PAYLOAD_OVERHEAD_PER_TX: Final = 3


@dataclass(frozen=True, slots=True)
class Execution:
    """The answer to a proposed block: its state root (None: invalid here, the replica rejects it), the next
    epoch's validator set when the block ends its epoch, and whether this validator votes for it."""

    state_root: bytes | None
    next_validators: ValidatorSet | None
    vote: bool
    reason: str | None = None  # why state_root is None or vote is False
    signatures: str = "checked"  # ExecutedBlock.signatures: "checked", "skipped" or "rechecked"


@dataclass(frozen=True, slots=True)
class PendingExecution:
    """A block whose execution has begun (Application.begin_execution): `run()` it, on any thread."""

    job: ExecutionJob
    vote_refusal: str | None  # why this validator will not vote for it even if it executes (its time)

    @property
    def block(self) -> Block:
        return self.job.block

    def run(self) -> BlockOutcome | None:
        return self.job.run()


@dataclass(frozen=True, slots=True)
class CommitResult:
    block: CommittedBlock
    pool_ages: tuple[float, ...]  # seconds each of its transactions spent in this node's mempool
    epoch: EpochSwitch | None  # the block ended its epoch: the one it ended and the one that starts
    proposals_changed: bool  # a governance proposal was created, executed or cancelled


class Application:
    def __init__(self, store: LedgerStore, genesis: Genesis, *, protocol: Protocol, tx_verifier: Ed25519Verifier,
                 bls: SignatureVerifier, mempool_limits: MempoolLimits,
                 clock: Callable[[], float]) -> None:
        """`store`: an open ledger store, empty (the genesis is written) or of this genesis. `protocol`: what
        transactions decode and blocks execute under (operation set, rule engine, PoP check: node/chain/protocol.py
        composes the node's). `tx_verifier` checks Ed25519 signatures at admission, `bls` certificates and validator
        sets. `clock` (seconds, monotonic) only measures how long transactions wait in the mempool."""
        self.store = store
        self.genesis = genesis
        self.protocol = protocol
        self.engine = protocol.engine
        self.bls = bls
        bootstrap_store(store, genesis, genesis_state(genesis, protocol))
        self.epochs = Epochs(store, genesis, bls.backend)
        self.mempool = Mempool(genesis.chain_id, store, store.head().height, tx_verifier,  # type: ignore[union-attr]
                               mempool_limits, clock=clock, operations=protocol.operations)
        self.executor = Executor(store, genesis, protocol, self.epochs, self.mempool)
        # Committed blocks obeyed the limits of their own epoch: the feed decodes them with the hard maxima.
        self.feed = CommitFeed(store, MAX_BLOCK_TXS, MAX_BLOCK_BYTES, operations=protocol.operations)
        self._listeners: list[Callable[[CommittedBlock], None]] = []

    # -- state -----------------------------------------------------------------------------------------------------

    @property
    def head(self) -> ChainHead:
        return self.executor.head

    @property
    def chain_id(self) -> str:
        return self.genesis.chain_id

    def anchor(self) -> tuple[Block, QuorumCert]:
        """The committed head block and the QC that certifies it: where a replica starts."""
        head = self.executor.head
        if head.height == 0:
            root = self.store.state_root_at(0)
            assert root is not None
            return self.genesis.block(), genesis_qc(self.genesis.block(), root)
        raw = self.store.get_block(head.height)
        cert = load_certificate(self.store, head.height)
        assert raw is not None and cert is not None, f"committed height {head.height} without its certificate"
        return decode_block(raw), cert.headers[1].qc

    def certified(self, height: int) -> tuple[Block, CommitCertificate] | None:
        raw, cert = self.store.get_block(height), load_certificate(self.store, height)
        return None if raw is None or cert is None else (decode_block(raw), cert)

    def certificate(self, height: int) -> CommitCertificate | None:
        return load_certificate(self.store, height)

    def certified_raw(self, start: int, max_count: int, max_bytes: int) -> list[list[bytes]]:
        """[block_bytes, cert_bytes] of consecutive committed heights from `start` (what block sync serves): at most
        `max_count` of them, and at most `max_bytes` in all unless the first alone is larger."""
        items: list[list[bytes]] = []
        size = 0
        for height in range(max(1, start), min(self.executor.head.height, start + max_count - 1) + 1):
            raw, cert = self.store.get_block(height), self.store.get_extra(cert_key(height))
            if raw is None or cert is None:
                break
            if items and size + len(raw) + len(cert) > max_bytes:
                break
            items.append([raw, cert])
            size += len(raw) + len(cert)
        return items

    def _certifies(self, cert: CommitCertificate, block: Block) -> bool:
        """True iff `cert` is a commit certificate of `block` that check_certificate accepts (block sync executes
        ahead only within the head's epoch)."""
        if cert.block_id != block.id:
            return False
        try:
            self.check_certificate(cert)
        except CommitCertificateError:
            return False
        return True

    def check_certificate(self, cert: CommitCertificate) -> None:
        """CommitCertificateError unless `cert` verifies against the set that certifies height head + 1 (block
        sync applies heights in order; the set switches at epoch-ending blocks)."""
        check_commit_certificate(self.epochs.validator_set, cert, chain_id=self.genesis.consensus_chain_id,
                                 verifier=self.bls)

    def certificate_warmer(self, certs: Sequence[CommitCertificate]) -> Callable[[], int]:
        """A job for another thread that verifies `certs` (in order, against the head's validator set as it is now)
        so that the checks block sync then makes of them on the host's thread (`check_certificate`,
        `begin_execution`) are answered by the BLS verifier's memo table: the pairings (blspy releases the
        interpreter) run beside the host's work instead of in it. Only a warm-up: nothing depends on its outcome,
        every certificate is still checked before it is used; it stops at the first one that does not verify (past
        an epoch change: checked in its turn, under the next set). The job returns how many verified."""
        validator_set, chain_id, verifier = self.epochs.validator_set, self.genesis.consensus_chain_id, self.bls
        certs = tuple(certs)

        def warm() -> int:
            for n, cert in enumerate(certs):
                try:
                    check_commit_certificate(validator_set, cert, chain_id=chain_id, verifier=verifier)
                except CommitCertificateError:
                    return n
            return len(certs)

        return warm

    def ends_epoch(self, block: Block, cert: CommitCertificate) -> bool:
        """Whether the certified `block` ends its epoch (Executor.ends_epoch: executed now if need be, as its commit
        would). Precondition: `cert` verified, as for `finalize`."""
        return self.executor.ends_epoch(block, cert)

    def record_evidence(self, evidence: Evidence) -> None:
        """Keep equivocation evidence (outside the chain; not synced: it is also logged)."""
        self.store.put_extra(evidence_key(evidence), evidence.encode(), sync=False)

    def prospective_validators(self, limit: int) -> dict[str, bytes]:
        """node id -> identity key of the validators that open, unexpired proposals would add (at most `limit`, in
        proposal id order). Proposals are made only by governors."""
        height = self.executor.head.height
        out: dict[str, bytes] = {}
        for key, raw in self.store.iter_state(b"g"):
            rec = decode_value(key, raw)
            if rec.status != ProposalStatus.OPEN or rec.expiry_height <= height:
                continue
            for action in rec.actions:
                if isinstance(action, AddValidator) and len(out) < limit:
                    out.setdefault(action.node_id, action.identity_key)
        return out

    # -- admission (CheckTx) ---------------------------------------------------------------------------------------

    async def admit(self, raws: Sequence[bytes | SignedTransaction], origin: str | None = None) -> list[Admission]:
        """Admit signed transactions (bytes, or already decoded: not decoded again) to the mempool, signatures checked
        on the verifier's worker processes. At most `mempool.limits.max_batch` per call; one Admission each."""
        return await self.mempool.submit_many(raws, origin)

    def admit_now(self, raws: Sequence[bytes | SignedTransaction], origin: str | None = None) -> list[Admission]:
        """`admit` with the signatures checked in the calling thread (same answers)."""
        return self.mempool.submit_many_now(raws, origin)

    # -- proposing (PrepareProposal) -------------------------------------------------------------------------------

    def _branch(self, parent_id: bytes) -> list[ExecutedBlock] | None:
        """The uncommitted blocks from `parent_id` down to the committed head (parent first, empty when `parent_id`
        is the head), or None when this node has not executed every one of them: it cannot know what they carry.
        That is the case while the parent executes, and while it waits behind an ancestor that executes (the replica
        asks for a block's execution only once its parent's has answered, and a leader may hold a QC for it
        already, formed from the other validators' votes)."""
        out: list[ExecutedBlock] = []
        executed = self.executor.executed
        head = self.executor.head.block_id
        cursor = parent_id
        while cursor != head:
            e = executed.get(cursor)
            if e is None:
                return None
            out.append(e)
            cursor = e.parent_id
        return out

    def branch_executed(self, parent_id: bytes) -> bool:
        """Whether this node knows what the branch a block on `parent_id` extends carries: the parent is the committed
        head, or this node has executed it and every uncommitted ancestor down to the head. Only then can a proposal
        carry transactions, leaving out theirs (propose)."""
        return self._branch(parent_id) is not None

    def in_flight(self, parent_id: bytes) -> set[bytes] | None:
        """Ids of the transactions in the uncommitted ancestors of a child of `parent_id` (not to be proposed
        again); None when this node has not executed them all (branch_executed is False)."""
        branch = self._branch(parent_id)
        if branch is None:
            return None
        out: set[bytes] = set()
        for e in branch:
            out.update(r.tx_id for r in e.receipts)
        return out

    def _in_flight_count(self, parent_id: bytes) -> int | None:
        """How many transactions the uncommitted ancestors of a child of `parent_id` carry, None as in_flight (no
        set is built: this is asked after every admission while a leader waits)."""
        branch = self._branch(parent_id)
        return None if branch is None else sum(len(e.receipts) for e in branch)

    def has_work(self, parent_id: bytes) -> bool:
        """Worth proposing now: the pool holds transactions not in uncommitted ancestors, or such ancestors wait
        for their commit (a child carries their QC towards it). False while branch_executed is False."""
        in_flight = self._in_flight_count(parent_id)
        return in_flight is not None and (in_flight > 0 or len(self.mempool) > 0)

    def pending_beyond(self, parent_id: bytes) -> int:
        """Pooled transactions not in the uncommitted ancestors of a child of `parent_id` (at least; the ancestors'
        transactions are normally still pooled); 0 while branch_executed is False."""
        in_flight = self._in_flight_count(parent_id)
        return 0 if in_flight is None else max(0, len(self.mempool) - in_flight)

    def propose(self, parent_id: bytes, time_ms: int, max_txs: int | None = None) -> bytes:
        """The payload of a block on `parent_id` at `time_ms` (raised to the parent's time: block time never goes
        back), filled from the mempool within the current epoch's limits (and at most `max_txs` transactions: the
        proposer's own execution budget), leaving out the transactions of the uncommitted ancestors. Transactions
        already expired at the height proposed are evicted from the pool first: they would only waste the block's
        room. Asked while branch_executed is False (this node has not executed the branch it would extend, so it cannot
        tell which pooled transactions those blocks already carry), the payload carries no transaction
        (node/validator/proposing.py says when a leader proposes such a block)."""
        params = self.epochs.params
        parent_time = self.executor.time_of(parent_id)
        time_ms = max(time_ms, parent_time or 0)
        in_flight = self.in_flight(parent_id)
        if in_flight is None:
            log.info("propose_on_unexecuted_branch parent=%s: a block without transactions", parent_id.hex()[:16])
            return encode_payload(time_ms, [])
        parent_height = self.executor.height_of(parent_id)
        if parent_height is not None:
            self.mempool.evict_expired(parent_height + 1)
        count = params.max_block_txs if max_txs is None else max(1, min(max_txs, params.max_block_txs))
        txs = self.mempool.reap(count, params.max_block_bytes - PAYLOAD_OVERHEAD, in_flight,
                                overhead_per_tx=PAYLOAD_OVERHEAD_PER_TX)
        payload = encode_payload(time_ms, txs)
        assert len(payload) <= params.max_block_bytes
        return payload

    # -- executing (ProcessProposal) -------------------------------------------------------------------------------

    def execute(self, block: Block, parent_root: bytes, now_ms: int | None,
                certificate: CommitCertificate | None = None) -> Execution:
        """Execute a proposed block on its parent (speculatively: nothing is written). `now_ms`: this node's clock,
        for the voting policy on block time; None for a block at or below the committed height (no vote asked).
        `certificate`: the block's commit certificate when it came with one (block sync; see begin_execution)."""
        job = self.begin_execution(block, parent_root, now_ms, certificate)
        if isinstance(job, Execution):
            return job
        return self.end_execution(job, job.run())

    def begin_execution(self, block: Block, parent_root: bytes, now_ms: int | None,
                        certificate: CommitCertificate | None = None) -> Execution | PendingExecution:
        """`execute` in two parts, so a host can run the long one on another thread while it goes on: the answer
        at once (already executed, or refused by the cheap checks), or a PendingExecution whose `run()` may be
        called on any thread, its result then given to `end_execution` on this thread. Meanwhile this thread may
        admit, propose and commit; executions of blocks that build on this one begin after it ended (parent
        first, as the replica asks for them). With the block's `certificate` (only for a block no vote is asked
        for: now_ms None), verified here against the head's epoch set, the execution skips signature checks that the
        certified root proves unnecessary; a certificate that does not verify is ignored (the commit refuses it)."""
        certified_root = None
        if certificate is not None and now_ms is None and self._certifies(certificate, block):
            certified_root = certificate.state_root
        job = self.executor.prepare(block, parent_root, certified_root)
        if job is None:
            return Execution(None, None, False, "invalid")
        reason = None if now_ms is None else self.executor.check_proposal_time(job.time_ms, now_ms)
        if isinstance(job, ExecutionJob):
            return PendingExecution(job, reason)
        return self._answer(job, reason)

    def end_execution(self, pending: PendingExecution, outcome: BlockOutcome | None) -> Execution:
        return self._answer(self.executor.record(pending.job, outcome), pending.vote_refusal)

    def _answer(self, e: ExecutedBlock | None, reason: str | None) -> Execution:
        if e is None:
            return Execution(None, None, False, "invalid")
        # A block too far ahead of this node's clock: a voting policy, not a validity rule. The block stays (a
        # quorum may certify it and this node must then follow), only this validator's vote is withheld.
        vote = reason != "block_time_in_future"
        next_set = None if e.next_epoch is None else self.epochs.set_of(e.next_epoch)
        return Execution(e.state_root, next_set, vote, reason, e.signatures)

    def forget_speculation(self) -> None:
        """Drop every speculative execution (a new replica starts from the committed head)."""
        self.executor.forget()

    # -- committing (FinalizeBlock, Commit) ------------------------------------------------------------------------

    def finalize(self, block: Block, cert: CommitCertificate) -> FinalizedBlock:
        """Check a certified block against this node's execution (executing it if needed) and prepare its commit.
        NodeError when they disagree: this node's state contradicts the certified chain. Writes nothing."""
        return self.executor.finalize(block, cert)

    def commit(self, finalized: FinalizedBlock) -> CommitResult:
        """Write a finalized block (one synced batch), then: switch the epoch if it ended one, drop its transactions
        from the mempool, publish it to the feed and the listeners."""
        return self._committed(self.executor.write(finalized))

    def finalize_group(self, certified: Sequence[tuple[Block, CommitCertificate]]) -> list[FinalizedBlock]:
        """`finalize` for consecutive certified blocks committed together by `commit_group` (block sync); only the
        last may end an epoch. Writes nothing."""
        return self.executor.finalize_group(certified)

    def commit_group(self, group: Sequence[FinalizedBlock]) -> list[CommitResult]:
        """Write blocks `finalize_group` finalized, all in one synced batch (all or none after a crash: one fsync for
        the group), then do for each, in height order, what `commit` does after its write."""
        return [self._committed(committed) for committed in self.executor.write_group(group)]

    def _committed(self, committed: CommittedBlock) -> CommitResult:
        """After a block's write: switch the epoch if it ended one, update the mempool, tell the feed and listeners."""
        switch = None
        if committed.next_epoch is not None:
            started = current_epoch(self.store)
            assert started == committed.next_epoch and started.start_height == committed.height + 1
            switch = self.epochs.advance(started)
        ages = self.mempool.remove_committed([r.tx_id for r in committed.receipts])
        self.mempool.prune_expired(committed.height)
        # The block is durable: what follows only tells readers, and a reader's failure must not stop the chain
        # (subscribers behind the feed's height read the block from the store).
        try:
            self.feed.publish(committed)
        except Exception:
            log.exception("commit_feed_failed height=%d", committed.height)
        for listener in list(self._listeners):
            try:
                listener(committed)
            except Exception:
                log.exception("commit_listener_failed height=%d", committed.height)
        changed = any(ev.kind in PROPOSAL_EVENTS for ev in committed.events)
        return CommitResult(committed, tuple(ages), switch, changed)

    def add_commit_listener(self, listener: Callable[[CommittedBlock], None]) -> Callable[[], None]:
        """Call `listener` after each commit, in height order (on the committing thread; it must not block)."""
        self._listeners.append(listener)

        def remove() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return remove

    # -- queries ---------------------------------------------------------------------------------------------------

    def statement(self, account_id: str, height: int) -> dict[str, Any]:
        """A custody statement of `account_id` at `height` (node/chain/statement.py). KeyError without a
        certificate at that height."""
        from node.chain.statement import build_statement

        cert = self.certificate(height)
        if cert is None:
            raise KeyError(f"no commit certificate at height {height}")
        return build_statement(self.store, account_id, height, chain_id=self.genesis.chain_id, certificate=cert,
                               validator_set=self.epochs.set_at(cert.epoch),
                               epoch_proofs=self.epochs.proofs(cert.epoch))
