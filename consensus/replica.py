"""A Jolteon (DiemBFT v4) replica without I/O.

Inputs:  on_message / on_bytes (a peer's message), on_timeout (the round timer fired), on_payload (the application's
         answer to RequestPayload), on_executed (the application's answer to Execute), start (once, after creation).
Outputs: each input returns a list of actions (consensus/actions.py), to be performed in order.

The protocol, its rules and why it is safe: docs/consensus.md. Names follow the DiemBFT v4 report: highest_vote_round,
highest_qc_round, high QC, TC with the signers' high QC rounds, two-chain commit.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from consensus import bls, leaders, recovery
from consensus.actions import (
    Action,
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
from consensus.certificates import (
    EpochChainError,
    SignatureVerifier,
    default_verifier,
    make_proposal_evidence,
    make_vote_evidence,
    proposal_signature_ok,
    qc_ok,
    tc_ok,
    timeout_signature_ok,
    verify_epoch_change,
    vote_signature_ok,
)
from consensus.codec import CodecError
from consensus.messages import (
    MAX_COMMIT_HEADERS,
    MAX_MESSAGE_BYTES,
    MAX_PAYLOAD_BYTES,
    MAX_SYNC_BLOCKS,
    Block,
    BlockHeader,
    CommitCertificate,
    EpochChange,
    EpochChangeProof,
    Message,
    Proposal,
    QuorumCert,
    RecoveryRequest,
    RecoveryStatement,
    SafetyState,
    SyncRequest,
    SyncResponse,
    Timeout,
    TimeoutCert,
    TimeoutGroup,
    Vote,
    decode_message,
    epoch_commitment,
    payload_hash,
    proposal_message,
    timeout_message,
    vote_message,
)
from consensus.validators import ValidatorSet, bitmap_indexes

MAX_PENDING_QCS: Final = 64
MAX_SYNC_TARGETS: Final = 64
# Sync requests answered per peer per round (a peer cannot make us stream the chain at it in a loop).
MAX_SYNC_ANSWERS_PER_ROUND: Final = 8
MAX_SYNC_PEERS_TRACKED: Final = 1024
# A peer in an ended epoch gets an EpochChange for its first message of that epoch and every this many afterwards.
EPOCH_ANSWER_EVERY: Final = 16
# Rounds whose elected leader is remembered (the table is cleared when a commit may change the answers).
MAX_LEADER_CACHE: Final = 256
# How leaders are elected: "reputation" (consensus/leaders.py) or "round_robin" (every validator in turn). Every
# validator of a chain must use the same rule; round-robin is kept to compare the two in the simulator.
LEADER_ELECTIONS: Final = ("reputation", "round_robin")
# A validator is presumed down by this replica when nothing shows it alive (a message from it, its signature in a
# QC or TC) since a round that ended in a timeout certificate (every live validator broadcasts its timeout then), or
# for more than n + SILENT_ROUNDS rounds. Rounds it leads, or whose votes go to it, wait only
# base_timeout_ms // SILENT_TIMEOUT_DIVISOR and do not double the next timeout. A local judgement: it only shortens
# this replica's timers, which safety never depends on.
SILENT_ROUNDS: Final = 2
SILENT_TIMEOUT_DIVISOR: Final = 4


@dataclass(frozen=True, slots=True)
class ReplicaConfig:
    chain_id: bytes
    base_timeout_ms: int = 1000
    max_backoff_exponent: int = 6
    max_payload_bytes: int = MAX_PAYLOAD_BYTES
    max_message_bytes: int = MAX_MESSAGE_BYTES
    # Votes and timeouts for rounds up to this far ahead of the current round are buffered; further ones dropped.
    round_window: int = 64
    max_pending_proposals: int = 32
    max_sync_blocks: int = 64
    # Committed blocks kept in memory to answer sync requests (and read by leader election: keep it at least
    # leaders.WINDOW_BLOCKS + leaders.EXCLUDE_ROUNDS, or replicas may read different windows).
    committed_window: int = 256
    # Uncommitted blocks kept; more are refused (a healthy chain has a handful).
    max_tree_blocks: int = 1000
    leader_election: str = "reputation"

    def __post_init__(self) -> None:
        assert self.leader_election in LEADER_ELECTIONS
        assert 1 <= len(self.chain_id) <= 64
        assert self.base_timeout_ms >= 1 and 0 <= self.max_backoff_exponent <= 20
        assert 0 < self.max_payload_bytes <= MAX_PAYLOAD_BYTES
        assert 1 <= self.max_sync_blocks <= MAX_SYNC_BLOCKS
        assert self.max_tree_blocks < MAX_COMMIT_HEADERS


class _Entry:
    __slots__ = ("block", "header", "next_vs", "no_vote", "qc", "state_root", "suffix_of")

    def __init__(self, block: Block) -> None:
        self.block = block
        self.header = block.header
        self.state_root: bytes | None = None
        self.qc: QuorumCert | None = None
        # Set when the application declared this block epoch-ending (on_executed with next_validators).
        self.next_vs: ValidatorSet | None = None
        # For a block of the reconfiguration suffix: the epoch-ending ancestor's entry.
        self.suffix_of: _Entry | None = None
        # The application executed the block but asked this replica not to vote for it (on_executed vote=False).
        self.no_vote = False


class Replica:
    """One validator's consensus state machine (or an observer's, with me=None)."""

    def __init__(self, config: ReplicaConfig, validator_set: ValidatorSet, *, me: bytes | None,
                 secret_key: bytes | None, anchor: Block, anchor_qc: QuorumCert,
                 safety: SafetyState | None = None, stored_blocks: Sequence[Block] = (),
                 history: Sequence[tuple[Block, CommitCertificate]] = (),
                 verifier: SignatureVerifier | None = None, epoch_proofs: Sequence[EpochChangeProof] = (),
                 safety_lost: bool = False, recovery_nonce: bytes | None = None) -> None:
        """`anchor` is the last committed block (the genesis block on first start) and `anchor_qc` the certificate
        binding its state root (`genesis_qc(...)` for genesis, else `commit_certificate.headers[1].qc`).
        `safety` and `stored_blocks` are what earlier PersistSafety actions wrote (None / () on first start).
        `history` optionally holds recent committed blocks below the anchor with their commit certificates
        (ascending, ending just below the anchor), so this replica can serve them to peers that are behind.
        `epoch_proofs` optionally holds the proofs that ended earlier epochs (consecutive, the last one ending epoch
        `validator_set.epoch - 1`), sent to peers still in an ended epoch.
        `safety_lost=True` says this validator may already have signed in this epoch but its safety state is gone
        (consensus directory lost, wiped node rejoining; `safety` must then be None): the replica follows, syncs and
        commits but signs no vote, timeout or proposal for the rest of the epoch (docs/consensus.md, §10 "Lost
        safety state"). A replica of a later epoch, built with `safety=None`, votes again.
        `recovery_nonce` (32 fresh random bytes, drawn after the loss) lets a `safety_lost` replica recover within
        the epoch instead: it asks the other validators for signed recovery statements, and once a quorum has
        answered and it holds a high enough QC it persists a safety state above every round it can have signed in
        and signs again (consensus/recovery.py; docs/consensus.md §13)."""
        assert anchor_qc.block_id == anchor.id and anchor.header.chain_id == config.chain_id
        # The anchor may end the previous epoch: then it and its QC are of an earlier epoch than the validator set.
        assert anchor.header.epoch == anchor_qc.epoch <= validator_set.epoch
        self.config = config
        self.chain_id = config.chain_id
        self.vs = validator_set
        self.verifier = verifier or default_verifier()
        self._bls: bls.BlsBackend = self.verifier.backend
        if me is not None and me not in validator_set.index_of:
            raise ValueError(f"{me!r} is not in the validator set of epoch {validator_set.epoch}")
        self.me: int | None = None if me is None else validator_set.index_of[me]
        self.my_id = me
        self._sk = secret_key
        if self.me is not None:
            assert secret_key is not None
            assert self._bls.public_key(secret_key) == validator_set.validators[self.me].public_key
        # Trusted without a signature check: the genesis QC, or the QC of our own last commit (which may be of the
        # previous epoch when this replica starts a new one). It is the parent certificate of the first blocks.
        self._anchor_qc = anchor_qc

        root = _Entry(anchor)
        root.state_root = anchor_qc.state_root
        root.qc = anchor_qc
        self._entries: dict[bytes, _Entry] = {anchor.id: root}
        self.committed_id = anchor.id
        self.committed_height = anchor.header.height
        self.committed_round = anchor.header.round
        self._committed_by_height: dict[int, bytes] = {anchor.header.height: anchor.id}
        for block, cert in list(history)[-config.committed_window:]:
            if block.header.height >= anchor.header.height or cert.block_id != block.id:
                continue
            old = _Entry(block)
            old.state_root = cert.state_root
            old.qc = cert.headers[1].qc
            self._entries[block.id] = old
            self._committed_by_height[block.header.height] = block.id
        self._commit_queue: collections.deque[tuple[Block, CommitCertificate]] = collections.deque()
        self._waiting_exec: dict[bytes, list[bytes]] = {}

        if safety_lost and safety is not None:
            raise ValueError("safety_lost=True is for a replica without a stored safety state")
        # Without its record of what it signed, this validator cannot prove that any round of this epoch is one it
        # has not voted in: a certificate it receives may be arbitrarily old (delayed or replayed), so no round
        # derived from certificates bounds its earlier votes. It therefore signs nothing until the recovery exchange
        # gives it a fresh bound from a quorum (`recovery_nonce`), or, without one, nothing more in this epoch.
        self.safety_lost = safety_lost and me is not None
        self.recovery: recovery.Recovery | None = None
        if self.safety_lost and recovery_nonce is not None and self.me is not None:
            self.recovery = recovery.Recovery(validator_set, me=self.me, nonce=recovery_nonce,
                                              anchor_round=anchor_qc.round)
        # Set when a recovery completed: the bound it resumed above.
        self.recovered_bound: int | None = None
        # Recovery statements signed per requester index: (our round then, how many in that round).
        self._recovery_answers: dict[int, tuple[int, int]] = {}
        if safety is None:
            safety = SafetyState(validator_set.epoch, 0, 0, 0, anchor_qc, None)
        assert safety.epoch == validator_set.epoch
        if anchor_qc.round > safety.high_qc.round:
            safety = dataclasses.replace(safety, high_qc=anchor_qc)
        self.safety = safety
        high_tc_round = safety.high_tc.round if safety.high_tc is not None else 0
        self.current_round = max(1, safety.highest_vote_round, safety.high_qc.round + 1, high_tc_round + 1)
        self._stored_blocks = sorted((b for b in stored_blocks if b.header.height > self.committed_height),
                                     key=lambda b: b.header.height)

        self._my_timeout: Timeout | None = None
        self._pending_vote: tuple[bytes, TimeoutCert | None] | None = None
        self._awaiting_payload = 0
        self._proposal_refused_round = 0
        self._proposals_seen: dict[int, Proposal] = {}
        self._pending_proposals: dict[bytes, tuple[bytes, Proposal]] = {}
        self._pending_qcs: dict[bytes, QuorumCert] = {}
        self._votes: dict[int, dict[int, Vote]] = {}
        self._timeouts: dict[int, dict[int, Timeout]] = {}
        self._sync_requested: dict[bytes, int] = {}
        self._evidence_reported: set[tuple[int, int, int]] = set()
        self._rejected: set[bytes] = set()
        self._sync_served: dict[bytes, tuple[int, int]] = {}
        self._unpersisted: list[Block] = []
        self._out: list[Action] = []
        self.counters: collections.Counter[str] = collections.Counter()
        self._started = False
        self._epoch_proofs = tuple(epoch_proofs)[-64:]
        assert all(p.epoch < validator_set.epoch for p in self._epoch_proofs)
        # Set when this epoch has ended: by our own commit of its epoch-ending block (`retired`), or learned from a
        # peer's EpochChange before we caught up (`learned_epoch_change`, verified against our set).
        self.epoch_change: EpochChangeProof | None = None
        self.retired = False
        self.learned_epoch_change: tuple[EpochChangeProof, ...] = ()
        self._suffix_blocks: dict[bytes, Block] = {}
        self._epoch_answers: dict[bytes, tuple[int, int]] = {}
        # Elected leaders by round: (leader index, a probe round of an inactive validator). Valid for the current
        # committed chain; `_commit` clears it.
        self._leaders: dict[int, tuple[int, bool]] = {}
        self._reputations: dict[bytes, leaders.Reputation] = {}
        # The last round in which each validator was seen alive (for the pacemaker's "presumed down").
        self._alive_at = [self.current_round] * len(validator_set)

    # ----------------------------------------------------------------------------------------------------------
    # Public inputs

    def start(self) -> list[Action]:
        """Arm the round timer, re-insert stored blocks, lead if it is our turn. Call once."""
        assert not self._started
        self._started = True
        for block in self._stored_blocks:
            if block.id not in self._entries:
                self._insert_block(block)
        self._stored_blocks = []
        self._out.append(SetTimer(self.current_round, self._round_delay(self.current_round)))
        if self.recovery is not None and self.recovery.possible:
            self._out.append(Broadcast(self.recovery.request()))
        return self._finish()

    def on_bytes(self, sender: bytes, data: bytes) -> list[Action]:
        """A peer's message as received from the wire; malformed input is counted and dropped."""
        try:
            message = decode_message(data, self.config.max_message_bytes)
        except CodecError as exc:
            self.counters[f"dropped_{exc.code}"] += 1
            return []
        return self.on_message(sender, message)

    def on_message(self, sender: bytes, message: Message) -> list[Action]:
        """A decoded message from validator `sender` (the transport authenticates it). From a peer that is not a
        validator of this epoch (an observer: a node joining, or one removed) only a SyncRequest is served, so it
        can follow the tree without signing anything, and a message naming an ended epoch is answered with an
        `EpochChange` (a validator removed at the change that missed the end of its last epoch has no other way to
        learn it: its former peers have all moved to this epoch); the driver decides which peers may connect at all."""
        if sender not in self.vs.index_of:
            if isinstance(message, SyncRequest):
                self._handle_sync_request(sender, message)
                return self._finish()
            epoch = _message_epoch(message)
            if epoch is not None and epoch < self.vs.epoch:
                self._answer_epoch_change(sender, epoch)
                return self._finish()
            self.counters["dropped_non_validator"] += 1
            return []
        index = self.vs.index_of[sender]
        self._alive_at[index] = max(self._alive_at[index], self.current_round)
        if isinstance(message, EpochChange):
            self._handle_epoch_change(sender, message)
            return self._finish()
        epoch = _message_epoch(message)
        if epoch is not None and (epoch < self.vs.epoch or (self.retired and epoch == self.vs.epoch)):
            self._answer_epoch_change(sender, epoch)
            if not isinstance(message, SyncRequest):
                return self._finish()
        if self.retired:
            if isinstance(message, SyncRequest):
                self._handle_sync_request(sender, message)
            elif isinstance(message, RecoveryRequest):
                self.counters[f"dropped_{recovery.RecoveryError.CANNOT_ANSWER}"] += 1
            else:
                self.counters["dropped_retired"] += 1
            return self._finish()
        if isinstance(message, Proposal):
            self._handle_proposal(sender, message)
        elif isinstance(message, Vote):
            self._handle_vote(sender, message)
        elif isinstance(message, Timeout):
            self._handle_timeout(sender, message)
        elif isinstance(message, SyncRequest):
            self._handle_sync_request(sender, message)
        elif isinstance(message, SyncResponse):
            self._handle_sync_response(sender, message)
        elif isinstance(message, RecoveryRequest):
            self._handle_recovery_request(index, message)
        elif isinstance(message, RecoveryStatement):
            self._handle_recovery_statement(index, message)
        else:
            self.counters["dropped_unknown_type"] += 1
        return self._finish()

    def on_timeout(self, round_: int) -> list[Action]:
        """The timer armed by SetTimer(round_) fired."""
        if round_ != self.current_round or self.retired:
            self.counters["stale_timer"] += 1
            return []
        self._local_timeout()
        self._ask_recovery()
        if self.current_round == round_:
            self._out.append(SetTimer(round_, self._round_delay(round_)))
        return self._finish()

    def on_payload(self, round_: int, payload: bytes) -> list[Action]:
        """The application's payload for the proposal of `round_` (answer to RequestPayload)."""
        if (round_ != self.current_round or self._awaiting_payload != round_ or self.me is None
                or self.safety.last_proposed_round >= round_ or self.retired or self.safety_lost):
            self.counters["stale_payload"] += 1
            return self._finish()
        self._awaiting_payload = 0
        if not isinstance(payload, bytes) or len(payload) > self.config.max_payload_bytes:
            self.counters["payload_too_large"] += 1
            return self._finish()
        self._propose(payload)
        return self._finish()

    def on_executed(self, block_id: bytes, state_root: bytes | None,
                    next_validators: ValidatorSet | None = None, *, vote: bool = True) -> list[Action]:
        """The application executed block `block_id` (answer to Execute); `state_root` is the resulting root, or
        None if the application refuses the block (invalid payload): it then gets no vote and is dropped with its
        descendants. `vote=False` (with a root) is a voting policy, not a validity verdict: the block is valid and
        kept (others may certify it, this replica extends and commits it), but this replica does not sign a vote
        for it (e.g. its time is too far ahead of the local clock). `next_validators` (epoch + 1) declares the
        block epoch-ending: its descendants in this epoch carry no payload and are not executed (they are voted with
        `epoch_commitment(...)` as state root), and the commit of this block ends the epoch (`retired`,
        `epoch_change`)."""
        if next_validators is not None and next_validators.epoch != self.vs.epoch + 1:
            raise ValueError(f"next_validators must be of epoch {self.vs.epoch + 1}")
        entry = self._entries.get(block_id)
        if entry is None or entry.state_root is not None:
            self.counters["stale_execution"] += 1
            return self._finish()
        if state_root is None:
            self.counters["block_rejected_by_application"] += 1
            if entry.header.height > self.committed_height:
                self._reject(block_id)
                return self._finish()
            # Already final: a quorum executed it, so this application diverges. Its commit still goes out
            # (with the certified root) for the application to handle.
            self.counters["state_root_mismatch"] += 1
            state_root = entry.qc.state_root if entry.qc is not None else bytes(32)
        if not isinstance(state_root, bytes) or len(state_root) != 32:
            raise ValueError("state_root must be 32 bytes or None")
        entry.next_vs = next_validators
        entry.no_vote = not vote
        self._resolve(entry, state_root)
        return self._finish()

    def _resolve(self, entry: _Entry, state_root: bytes) -> None:
        """`entry`'s state root is known: start the execution of its waiting children, vote if it was waiting."""
        entry.state_root = state_root
        if entry.qc is not None and entry.qc.state_root != state_root:
            self.counters["state_root_mismatch"] += 1
        for child_id in self._waiting_exec.pop(entry.block.id, ()):
            child = self._entries.get(child_id)
            if child is not None:
                self._begin_execution(child, entry)
        if self._pending_vote is not None and self._pending_vote[0] == entry.block.id:
            self._try_vote()

    def _begin_execution(self, entry: _Entry, parent: _Entry) -> None:
        """Ask the application to execute `entry` -- unless it belongs to a reconfiguration suffix: then it must be
        empty and its root is the epoch commitment of the epoch-ending ancestor (no Execute)."""
        assert parent.state_root is not None
        ending = parent if parent.next_vs is not None else parent.suffix_of
        if ending is None:
            self._out.append(Execute(entry.block, parent.state_root))
            return
        if entry.block.payload:
            self.counters["suffix_block_with_payload"] += 1
            self._reject(entry.block.id)
            return
        assert ending.next_vs is not None and ending.state_root is not None
        entry.suffix_of = ending
        self._resolve(entry, epoch_commitment(ending.block.id, ending.state_root, ending.next_vs.digest))

    def _evict_forks(self) -> None:
        """Tree full (a long period without commits): drop uncommitted blocks off the path to the high QC, oldest
        first. They can be fetched again by sync if a later certificate needs them."""
        keep: set[bytes] = set()
        cursor = self._entries.get(self.safety.high_qc.block_id)
        while cursor is not None and cursor.header.height > self.committed_height:
            keep.add(cursor.block.id)
            cursor = self._entries.get(cursor.header.parent_id)
        queued = {b.id for b, _ in self._commit_queue}
        candidates = sorted((e.header.round, block_id) for block_id, e in self._entries.items()
                            if e.header.height > self.committed_height and block_id not in keep
                            and block_id not in queued)
        for _, block_id in candidates[: max(1, len(candidates) // 2)]:
            self._entries.pop(block_id, None)
            self._waiting_exec.pop(block_id, None)
            self.counters["evicted_fork_block"] += 1

    def _reject(self, block_id: bytes) -> None:
        if len(self._rejected) >= MAX_PENDING_QCS:
            self._rejected.clear()
        doomed = [block_id]
        while doomed:
            current = doomed.pop()
            self._rejected.add(current)
            self._entries.pop(current, None)
            doomed.extend(self._waiting_exec.pop(current, ()))
        if self._pending_vote is not None and self._pending_vote[0] == block_id:
            self._pending_vote = None

    # ----------------------------------------------------------------------------------------------------------
    # Queries

    @property
    def high_qc(self) -> QuorumCert:
        return self.safety.high_qc

    def leader_of(self, round_: int) -> bytes:
        return self.vs.validators[self.leader_index(round_)].id

    def leader_index(self, round_: int) -> int:
        """The index of the validator that leads `round_`, elected from committed blocks only (docs/consensus.md §4
        "Leader election"): by reputation when this replica's committed chain reaches round `round_ -
        EXCLUDE_ROUNDS` (every such replica elects the same one), else round-robin."""
        return self._election(round_)[0]

    def election_anchor(self, round_: int) -> bytes | None:
        """The id of the committed block the election of `round_` reads (None: round-robin), for the simulator's
        check that replicas agree."""
        anchor = self._anchor_of(round_)
        return None if anchor is None else anchor.block.id

    def _election(self, round_: int) -> tuple[int, bool]:
        cached = self._leaders.get(round_)
        if cached is not None:
            return cached
        elected = (self.vs.leader(round_), False)
        if self.config.leader_election == "reputation":
            anchor = self._anchor_of(round_)
            if anchor is not None:
                elected = self._reputation(anchor).leader(round_)
        if len(self._leaders) >= MAX_LEADER_CACHE:
            self._leaders.clear()
        self._leaders[round_] = elected
        return elected

    def _committed_entry(self, height: int) -> _Entry | None:
        block_id = self._committed_by_height.get(height)
        entry = self._entries.get(block_id) if block_id is not None else None
        if entry is None or entry.header.epoch != self.vs.epoch or height == 0:
            return None  # before this epoch (or genesis), or older than the committed window
        return entry

    def _anchor_of(self, round_: int) -> _Entry | None:
        """The highest committed block of this epoch with round <= round_ - EXCLUDE_ROUNDS; None when there is none
        or when this replica cannot be sure of it (its committed chain does not reach that round)."""
        limit = round_ - leaders.EXCLUDE_ROUNDS
        if self.committed_round < limit:
            return None
        height = self.committed_height
        while (entry := self._committed_entry(height)) is not None:
            if entry.header.round <= limit:
                return entry
            height -= 1
        return None

    def _reputation(self, anchor: _Entry) -> leaders.Reputation:
        known = self._reputations.get(anchor.block.id)
        if known is not None:
            return known
        window: list[BlockHeader] = []
        height = anchor.header.height
        while len(window) < leaders.WINDOW_BLOCKS and (entry := self._committed_entry(height)):
            window.append(entry.header)
            height -= 1
        if len(self._reputations) >= MAX_LEADER_CACHE:
            self._reputations.clear()
        known = self._reputations[anchor.block.id] = leaders.reputation(self.vs, window)
        return known

    def block(self, block_id: bytes) -> Block | None:
        entry = self._entries.get(block_id)
        return None if entry is None else entry.block

    def tree_size(self) -> int:
        return len(self._entries)

    def status(self) -> dict[str, int]:
        """Gauges for metrics: rounds, heights, certificate rounds."""
        tc = self.safety.high_tc
        return {
            "epoch": self.vs.epoch,
            "current_round": self.current_round,
            "committed_height": self.committed_height,
            "committed_round": self.committed_round,
            "high_qc_round": self.safety.high_qc.round,
            "high_tc_round": tc.round if tc is not None else 0,
            "highest_vote_round": self.safety.highest_vote_round,
            "tree_blocks": len(self._entries),
            "safety_lost": int(self.safety_lost),
            "recovering": int(self.recovery is not None),
        }

    def buffer_sizes(self) -> dict[str, int]:
        """Sizes of every table that grows with input (for metrics and the simulator's memory-bound check)."""
        return {
            "blocks": len(self._entries),
            "vote_rounds": len(self._votes),
            "votes": sum(len(b) for b in self._votes.values()),
            "timeout_rounds": len(self._timeouts),
            "proposals_seen": len(self._proposals_seen),
            "pending_proposals": len(self._pending_proposals),
            "pending_qcs": len(self._pending_qcs),
            "sync_targets": len(self._sync_requested),
            "commit_queue": len(self._commit_queue),
            "committed_window": len(self._committed_by_height),
        }

    def buffer_limits(self) -> dict[str, int]:
        """Upper bounds of `buffer_sizes` implied by the configuration."""
        cfg = self.config
        rounds = cfg.round_window + 2
        return {
            "blocks": cfg.max_tree_blocks + cfg.committed_window + 1,
            "vote_rounds": rounds,
            "votes": rounds * len(self.vs),
            "timeout_rounds": rounds,
            "proposals_seen": rounds + 3,
            "pending_proposals": cfg.max_pending_proposals,
            "pending_qcs": MAX_PENDING_QCS,
            "sync_targets": MAX_SYNC_TARGETS + 1,
            "commit_queue": cfg.max_tree_blocks,
            "committed_window": cfg.committed_window + cfg.max_tree_blocks + 1,
        }

    # ----------------------------------------------------------------------------------------------------------
    # Internals: output

    def _finish(self) -> list[Action]:
        self._try_recover()
        self._maybe_propose()
        self._flush_commits()
        out, self._out = self._out, []
        return out

    def _persist(self) -> None:
        self._out.append(PersistSafety(self.safety, tuple(self._unpersisted)))
        self._unpersisted.clear()

    def _round_delay(self, round_: int) -> int:
        """The timer of a round: a quarter of the base timeout when its leader, or the next round's (who collects
        its votes), is presumed down; otherwise the base timeout after a QC, doubled per round without one since,
        capped -- not counting rounds that failed for a leader presumed down or probed as inactive (its failure says
        nothing about the network's delay: Jolteon's timeouts, not compounded by a dead leader)."""
        if self._leader_down(round_):
            self.counters["short_timeout_leader_down"] += 1
            return max(1, self.config.base_timeout_ms // SILENT_TIMEOUT_DIVISOR)
        cap = self.config.max_backoff_exponent
        behind = 0
        q = round_ - 1
        while q > self.safety.high_qc.round and behind < cap:
            if not self._leader_down(q) and not self._election(q)[1] and not self._election(q + 1)[1]:
                behind += 1
            q -= 1
        return self.config.base_timeout_ms << behind

    def _leader_down(self, round_: int) -> bool:
        """The leader of `round_` or of the next round is presumed down (SILENT_ROUNDS)."""
        tc = self.safety.high_tc
        failed_round = tc.round if tc is not None else 0
        silent = self.current_round - len(self.vs) - SILENT_ROUNDS
        return any(index != self.me and self._alive_at[index] < max(failed_round, silent)
                   for index in (self.leader_index(round_), self.leader_index(round_ + 1)))

    def _seen_alive(self, signers: bytes, round_: int) -> None:
        """The validators of a verified QC or TC's bitmap signed in `round_`."""
        for index in bitmap_indexes(signers):
            if index < len(self._alive_at) and self._alive_at[index] < round_:
                self._alive_at[index] = round_

    def _request_sync(self, target_id: bytes, peer: bytes | None) -> None:
        if target_id in self._entries:
            return
        if peer is None or peer == self.my_id:
            candidates = [v.id for v in self.vs.validators if v.id != self.my_id]
            if not candidates:
                return
            peer = candidates[(self.current_round + len(self._sync_requested)) % len(candidates)]
        if self._sync_requested.get(target_id) == self.current_round:
            return
        if len(self._sync_requested) >= MAX_SYNC_TARGETS:
            self._sync_requested.clear()
        self._sync_requested[target_id] = self.current_round
        start = self.committed_height + 1
        self._out.append(SyncBlocks(peer, SyncRequest(target_id, start, start)))

    def _request_range(self, peer: bytes) -> None:
        start = self.committed_height + 1
        key = b"height:%d" % start
        if self._sync_requested.get(key) == self.current_round:
            return
        self._sync_requested[key] = self.current_round
        self._out.append(SyncBlocks(peer, SyncRequest(b"", start, start + self.config.max_sync_blocks - 1)))

    # ----------------------------------------------------------------------------------------------------------
    # Internals: certificates and rounds

    def _qc_valid(self, qc: QuorumCert) -> bool:
        if qc == self._anchor_qc:
            return True
        if qc.round == 0:
            return False
        return qc_ok(self.vs, self.chain_id, qc, self.verifier)

    def _process_qc(self, qc: QuorumCert, sender: bytes | None) -> None:
        """`qc` has been verified."""
        if qc.epoch == self.vs.epoch:
            self._seen_alive(qc.signers, qc.round)
        if qc.round > self.safety.high_qc.round:
            self.safety = dataclasses.replace(self.safety, high_qc=qc)
        self._certify(qc, sender)
        if qc.round + 1 > self.current_round:
            self._enter_round(qc.round + 1)

    def _process_tc(self, tc: TimeoutCert) -> None:
        """`tc` has been verified."""
        for group in tc.groups:
            self._seen_alive(group.signers, tc.round)
        if self.safety.high_tc is None or tc.round > self.safety.high_tc.round:
            self.safety = dataclasses.replace(self.safety, high_tc=tc)
        if tc.round + 1 > self.current_round:
            self._enter_round(tc.round + 1)

    def _enter_round(self, round_: int) -> None:
        assert round_ > self.current_round, "rounds only move forward"
        self.current_round = round_
        self._pending_vote = None
        for table in (self._votes, self._timeouts):
            for r in [r for r in table if r < round_ - 1]:
                del table[r]
        for r in [r for r in self._proposals_seen if r < round_ - 2]:
            del self._proposals_seen[r]
        self._out.append(SetTimer(round_, self._round_delay(round_)))
        self._ask_recovery()

    def _certify(self, qc: QuorumCert, sender: bytes | None) -> None:
        """Attach a verified QC to its block and apply the two-chain commit rule."""
        entry = self._entries.get(qc.block_id)
        if entry is None:
            if qc.round > self.committed_round:
                if len(self._pending_qcs) >= MAX_PENDING_QCS:
                    self._pending_qcs.clear()
                self._pending_qcs[qc.block_id] = qc
                self._request_sync(qc.block_id, sender)
            return
        if entry.qc is None:
            entry.qc = qc
            if entry.state_root is not None and entry.state_root != qc.state_root:
                self.counters["state_root_mismatch"] += 1
        parent = self._entries.get(entry.header.parent_id)
        if (parent is not None and parent.header.round + 1 == entry.header.round
                and parent.header.height > self.committed_height):
            self._commit(parent, entry.header, qc)

    def _commit(self, target: _Entry, child_header: BlockHeader, qc: QuorumCert) -> None:
        chain: list[_Entry] = []
        cursor: _Entry | None = target
        while cursor is not None and cursor.header.height > self.committed_height:
            chain.append(cursor)
            cursor = self._entries.get(cursor.header.parent_id)
        if cursor is None:
            self.counters["commit_missing_ancestor"] += 1
            return
        # Safety invariant: a new commit extends the previous one.
        assert cursor.block.id == self.committed_id, "conflicting commit"
        chain.reverse()
        headers = [e.header for e in chain] + [child_header]
        for i, entry in enumerate(chain):
            cert = CommitCertificate(tuple(headers[i:]), qc)
            self._commit_queue.append((entry.block, cert))
            self._committed_by_height[entry.header.height] = entry.block.id
        self.committed_id = target.block.id
        self.committed_height = target.header.height
        self.committed_round = target.header.round
        self._leaders.clear()  # elections of later rounds may read the new commits

    def _flush_commits(self) -> None:
        flushed = False
        while self._commit_queue and not self.retired:
            block, cert = self._commit_queue[0]
            entry = self._entries.get(block.id)
            if entry is not None and entry.state_root is None:
                break
            self._commit_queue.popleft()
            self._out.append(Commit(block, cert))
            flushed = True
            if entry is not None and entry.next_vs is not None:
                self._retire(entry, cert)
        if flushed:
            self._prune()

    def _retire(self, entry: _Entry, cert: CommitCertificate) -> None:
        """The epoch-ending block is committed: this epoch is over. Its descendants (the suffix) are never
        committed; the replica only answers sync requests and tells peers of this epoch about the change."""
        assert entry.next_vs is not None and entry.state_root is not None
        # The QC that commits it was formed on a suffix block, so it certifies the next set. It can differ only if our
        # application diverged from the quorum's (then the proof will not verify; the commit itself stands).
        if cert.qc.state_root != epoch_commitment(entry.block.id, entry.state_root, entry.next_vs.digest):
            self.counters["epoch_proof_mismatch"] += 1
        self.epoch_change = EpochChangeProof(cert, entry.next_vs.entries())
        self.retired = True
        self._commit_queue.clear()
        for h in [h for h in self._committed_by_height if h > entry.header.height]:
            del self._committed_by_height[h]
        self.committed_id = entry.block.id
        self.committed_height = entry.header.height
        self.committed_round = entry.header.round
        self._leaders.clear()
        self._pending_vote = None
        self.counters["epoch_ended"] += 1

    def _answer_epoch_change(self, sender: bytes, epoch: int) -> None:
        """A peer is still in `epoch`, which has ended: send the proofs from there on (to each peer for its first
        message of that epoch and then every EPOCH_ANSWER_EVERY-th, so a peer that restarts still learns)."""
        proofs = list(self._epoch_proofs)
        if self.epoch_change is not None:
            proofs.append(self.epoch_change)
        proofs = [p for p in proofs if p.epoch >= epoch]
        if not proofs or proofs[0].epoch != epoch:
            self.counters["dropped_wrong_epoch"] += 1
            return
        last_epoch, seen = self._epoch_answers.get(sender, (-1, 0))
        seen = seen + 1 if last_epoch == epoch else 0
        if len(self._epoch_answers) > 4 * len(self.vs.validators):
            self._epoch_answers.clear()
        self._epoch_answers[sender] = (epoch, seen)
        if seen % EPOCH_ANSWER_EVERY:
            self.counters["dropped_wrong_epoch"] += 1
            return
        self.counters["epoch_change_sent"] += 1
        self._out.append(Send(sender, EpochChange(tuple(proofs))))

    def _handle_epoch_change(self, sender: bytes, message: EpochChange) -> None:
        """A peer says our epoch has ended. Verify the first proof against our set; keep the chain for the node
        (`learned_epoch_change`); fetch the epoch-ending block so that we commit it ourselves (the suffix blocks
        are empty, so their headers in the certificate are the blocks)."""
        c = self.counters
        proofs = [p for p in message.proofs if p.epoch >= self.vs.epoch]
        if self.retired or not proofs or proofs[0].epoch != self.vs.epoch or self.learned_epoch_change:
            c["dropped_epoch_change"] += 1
            return
        try:
            verify_epoch_change(self.vs, proofs[0], chain_id=self.chain_id, verifier=self.verifier)
        except EpochChainError:
            c["dropped_bad_epoch_change"] += 1
            return
        cert = proofs[0].cert
        for header in cert.headers[2:]:
            if not self._qc_valid(header.qc):
                c["dropped_bad_epoch_change"] += 1
                return
        if any(header.payload_hash != payload_hash(b"") for header in cert.headers[1:]):
            c["dropped_bad_epoch_change"] += 1
            return
        self.learned_epoch_change = tuple(proofs)
        c["epoch_change_learned"] += 1
        for header in cert.headers[1:]:
            self._suffix_blocks[header.parent_id] = Block(header, b"")
        self._pending_qcs[cert.qc.block_id] = cert.qc
        for parent_id in list(self._suffix_blocks):
            child = self._suffix_blocks.pop(parent_id, None) if parent_id in self._entries else None
            if child is not None:
                self._insert_block(child)
        if cert.block_id not in self._entries:
            self._sync_requested.pop(cert.block_id, None)
            self._request_sync(cert.block_id, sender)
        else:
            self._certify(cert.qc, sender)

    def _prune(self) -> None:
        """Drop forks below the commit and committed blocks outside the window; bound pending tables.

        Runs after every commit. A block of the committed chain inside the window (its own height maps to its id in
        `_committed_by_height`, at or above `keep_from`) is always kept, so only the other entries -- forks, blocks
        above the commit, committed blocks leaving the window: a handful -- are examined, not the whole window."""
        keep_from = self.committed_height - self.config.committed_window
        pending_heights = {b.header.height for b, _ in self._commit_queue}
        by_height = self._committed_by_height
        leaving = [h for h in by_height if h < keep_from]
        kept = set(by_height.values())
        kept.difference_update(by_height[h] for h in leaving)
        entries = self._entries
        for block_id in [b for b in entries if b not in kept]:
            entry = entries[block_id]
            h = entry.header.height
            if h in pending_heights:
                continue
            on_chain = by_height.get(h) == block_id
            below = h <= self.committed_height or entry.header.round <= self.committed_round
            if below and (not on_chain or h < keep_from):
                del entries[block_id]
                self._waiting_exec.pop(block_id, None)
        for h in leaving:
            del by_height[h]

    # ----------------------------------------------------------------------------------------------------------
    # Internals: blocks

    def _insert_block(self, block: Block) -> bool:
        """Insert a block whose header QC has been verified. False if it does not fit the tree."""
        header = block.header
        block_id = block.id
        if block_id in self._entries:
            return True
        if block_id in self._rejected:
            self.counters["dropped_rejected_block"] += 1
            return False
        parent = self._entries.get(header.parent_id)
        if parent is None:
            return False
        if header.height != parent.header.height + 1 or header.round <= parent.header.round:
            self.counters["invalid_block"] += 1
            return False
        if header.round <= self.committed_round:
            self.counters["stale_block"] += 1
            return False
        if len(self._entries) >= self.config.max_tree_blocks + self.config.committed_window:
            self._evict_forks()
            if len(self._entries) >= self.config.max_tree_blocks + self.config.committed_window:
                self.counters["tree_full"] += 1
                return False
        entry = _Entry(block)
        self._entries[block_id] = entry
        self._unpersisted.append(block)
        if parent.state_root is not None:
            self._begin_execution(entry, parent)
            if block_id not in self._entries:
                return False
        else:
            self._waiting_exec.setdefault(header.parent_id, []).append(block_id)
        self._certify(header.qc, None)
        pending_qc = self._pending_qcs.pop(block_id, None)
        if pending_qc is not None:
            self._certify(pending_qc, None)
        # Proposals that were waiting for this block.
        waiting = [p for p in self._pending_proposals.values() if p[1].block.header.parent_id == block_id]
        for sender, proposal in waiting:
            self._pending_proposals.pop(proposal.block.id, None)
            self._accept_proposal(sender, proposal)
        suffix_child = self._suffix_blocks.pop(block_id, None)
        if suffix_child is not None:
            self._insert_block(suffix_child)
        return True

    # ----------------------------------------------------------------------------------------------------------
    # Internals: proposals

    def _maybe_propose(self) -> None:
        r = self.current_round
        if self.me is None or self.leader_index(r) != self.me or self.retired:
            return
        if self.safety_lost:
            if self._proposal_refused_round != r:
                self._proposal_refused_round = r
                self.counters["proposal_refused_safety_lost"] += 1
            return
        if self.safety.last_proposed_round >= r or self._awaiting_payload == r:
            return
        qc, tc = self.safety.high_qc, self.safety.high_tc
        if qc.round + 1 != r and not (tc is not None and tc.round + 1 == r and qc.round >= tc.max_high_qc_round):
            return
        parent = self._entries.get(qc.block_id)
        if parent is None:
            self._request_sync(qc.block_id, None)
            return
        if parent.next_vs is not None or parent.suffix_of is not None:
            # Reconfiguration suffix: no payload, nothing to execute.
            self._propose(b"")
            return
        self._awaiting_payload = r
        self._out.append(RequestPayload(r, parent.header.height + 1, qc.block_id))

    def _propose(self, payload: bytes) -> None:
        assert self.me is not None and self._sk is not None and not self.retired and not self.safety_lost
        r = self.current_round
        qc, tc = self.safety.high_qc, self.safety.high_tc
        parent = self._entries.get(qc.block_id)
        if parent is None:
            return
        use_tc = tc if qc.round + 1 != r else None
        assert use_tc is None or (use_tc.round + 1 == r and qc.round >= use_tc.max_high_qc_round)
        header = BlockHeader(self.chain_id, self.vs.epoch, r, parent.header.height + 1, qc.block_id, self.me,
                             payload_hash(payload), qc)
        block = Block(header, payload)
        signature = self._bls.sign(self._sk, proposal_message(self.chain_id, self.vs.epoch, r, block.id))
        proposal = Proposal(block, use_tc, signature)
        self.safety = dataclasses.replace(self.safety, last_proposed_round=r)
        self._proposals_seen[r] = proposal
        self._persist()
        self._out.append(Broadcast(proposal))
        self._accept_proposal(self.my_id, proposal)  # type: ignore[arg-type]

    def _handle_proposal(self, sender: bytes, p: Proposal) -> None:
        header = p.block.header
        c = self.counters
        if header.chain_id != self.chain_id or header.epoch != self.vs.epoch:
            c["dropped_wrong_epoch"] += 1
            return
        if header.round == 0 or header.height == 0:
            c["dropped_bad_proposer"] += 1
            return
        if header.proposer != self.leader_index(header.round) and not self._learn_leader(sender, p):
            c["dropped_bad_proposer"] += 1
            return
        if len(p.block.payload) > self.config.max_payload_bytes:
            c["dropped_oversized"] += 1
            return
        if header.round + 2 < self.current_round:
            c["dropped_stale"] += 1
            return
        seen = self._proposals_seen.get(header.round)
        if seen is not None:
            if seen.block.id == p.block.id:
                c["dropped_duplicate"] += 1
                return
            if seen.block.header.proposer != header.proposer:
                # Two validators each elected for this round (by replicas that did not yet agree on the committed
                # blocks the election reads): not equivocation. The first one keeps the round.
                c["dropped_second_leader"] += 1
                return
            if proposal_signature_ok(self.vs, self.chain_id, p, self.verifier):
                self._report(make_proposal_evidence(seen, p))
            else:
                c["dropped_bad_signature"] += 1
            return
        if not proposal_signature_ok(self.vs, self.chain_id, p, self.verifier):
            c["dropped_bad_signature"] += 1
            return
        tc = p.tc
        if header.qc.round + 1 == header.round:
            justified = tc is None
        else:
            justified = tc is not None and tc.round + 1 == header.round and header.qc.round >= tc.max_high_qc_round
        if not justified:
            c["dropped_unjustified"] += 1
            return
        if not self._qc_valid(header.qc) or (tc is not None and not tc_ok(self.vs, self.chain_id, tc, self.verifier)):
            c["dropped_bad_certificate"] += 1
            return
        self._proposals_seen[header.round] = p
        self._process_qc(header.qc, sender)
        if tc is not None:
            self._process_tc(tc)
        self._accept_proposal(sender, p)

    def _learn_leader(self, sender: bytes, p: Proposal) -> bool:
        """A proposal from a validator we do not elect for its round. If its certificates are ahead of our
        committed chain, we may be the one behind: learn them (they may commit blocks the election reads) and elect
        again. True if the proposer is then the leader."""
        header = p.block.header
        if header.qc.round <= self.committed_round + 1 or not self._qc_valid(header.qc):
            return False
        self.counters["leader_learned_from_proposal"] += 1
        self._process_qc(header.qc, sender)
        if p.tc is not None and tc_ok(self.vs, self.chain_id, p.tc, self.verifier):
            self._process_tc(p.tc)
        return header.proposer == self.leader_index(header.round)

    def _accept_proposal(self, sender: bytes, p: Proposal) -> None:
        """A verified proposal: insert its block (or wait for the parent), vote if it is for the current round."""
        header = p.block.header
        if header.parent_id not in self._entries:
            if header.round < self.current_round:
                return
            if len(self._pending_proposals) >= self.config.max_pending_proposals:
                self._pending_proposals.pop(next(iter(self._pending_proposals)))
                self.counters["pending_proposals_evicted"] += 1
            self._pending_proposals[p.block.id] = (sender, p)
            self._request_sync(header.parent_id, sender)
            return
        if not self._insert_block(p.block):
            return
        if header.round == self.current_round:
            self._pending_vote = (p.block.id, p.tc)
            self._try_vote()

    def _report(self, evidence: object) -> None:
        key = (evidence.kind, evidence.validator, evidence.round)  # type: ignore[attr-defined]
        if key in self._evidence_reported:
            self.counters["evidence_repeated"] += 1
            return
        if len(self._evidence_reported) > 4096:
            self._evidence_reported.clear()
        self._evidence_reported.add(key)
        self.counters["evidence"] += 1
        self._out.append(ReportEvidence(evidence))  # type: ignore[arg-type]

    # ----------------------------------------------------------------------------------------------------------
    # Internals: votes

    def _try_vote(self) -> None:
        if self._pending_vote is None or self.me is None or self.retired:
            return
        block_id, tc = self._pending_vote
        entry = self._entries.get(block_id)
        if entry is None or entry.state_root is None:
            return
        self._pending_vote = None
        if self.safety_lost:
            self.counters["vote_refused_safety_lost"] += 1
            return
        if entry.no_vote:
            self.counters["vote_withheld_by_application"] += 1
            return
        header = entry.header
        r = header.round
        s = self.safety
        if r != self.current_round or r <= s.highest_vote_round:
            self.counters["vote_refused_round"] += 1
            return
        # DiemBFT v4 safe_to_vote: extend a QC of the previous round, or a TC of the previous round whose
        # highest reported QC round is not above the block's QC.
        consecutive = header.qc.round + 1 == r
        extends_tc = tc is not None and tc.round + 1 == r and header.qc.round >= tc.max_high_qc_round
        if not (consecutive or extends_tc):
            self.counters["vote_refused_unsafe"] += 1
            return
        assert self._sk is not None and not self.safety_lost
        msg = vote_message(self.chain_id, self.vs.epoch, r, block_id, entry.state_root)
        vote = Vote(self.vs.epoch, r, block_id, entry.state_root, self.me, self._bls.sign(self._sk, msg))
        self.safety = dataclasses.replace(s, highest_vote_round=r,
                                          highest_qc_round=max(s.highest_qc_round, header.qc.round))
        self._persist()
        next_leader = self.leader_of(r + 1)
        if next_leader == self.my_id:
            self._record_vote(vote)
        else:
            self._out.append(Send(next_leader, vote))

    def _handle_vote(self, sender: bytes, v: Vote) -> None:
        c = self.counters
        if v.epoch != self.vs.epoch:
            c["dropped_wrong_epoch"] += 1
            return
        if v.voter >= len(self.vs) or self.vs.validators[v.voter].id != sender:
            c["dropped_spoofed"] += 1
            return
        if v.round == 0 or self.leader_index(v.round + 1) != self.me:
            c["dropped_not_leader"] += 1
            return
        if v.round + 1 < self.current_round:
            c["dropped_stale"] += 1
            return
        if v.round > self.current_round + self.config.round_window:
            c["dropped_far_future"] += 1
            return
        self._record_vote(v)

    def _record_vote(self, v: Vote) -> None:
        c = self.counters
        bucket = self._votes.setdefault(v.round, {})
        previous = bucket.get(v.voter)
        if previous is not None:
            if previous == v:
                c["dropped_duplicate"] += 1
                return
            if not vote_signature_ok(self.vs, self.chain_id, v, self.verifier):
                c["dropped_bad_signature"] += 1
                return
            if not vote_signature_ok(self.vs, self.chain_id, previous, self.verifier):
                c["dropped_bad_signature"] += 1
                bucket[v.voter] = v
            elif (previous.block_id, previous.state_root) != (v.block_id, v.state_root):
                self._report(make_vote_evidence(previous, v))
                return
            else:
                c["dropped_duplicate"] += 1
                return
        else:
            bucket[v.voter] = v
        self._try_form_qc(v.round, v.block_id, v.state_root)

    def _try_form_qc(self, round_: int, block_id: bytes, state_root: bytes) -> None:
        if self.safety.high_qc.round >= round_:
            return
        bucket = self._votes.get(round_, {})
        for _attempt in range(2):
            voters = sorted(i for i, v in bucket.items() if v.block_id == block_id and v.state_root == state_root)
            if self.vs.power_of(voters) < self.vs.quorum_power:
                return
            msg = vote_message(self.chain_id, self.vs.epoch, round_, block_id, state_root)
            keys = tuple(self.vs.validators[i].public_key for i in voters)
            try:
                aggregate = self._bls.aggregate([bucket[i].signature for i in voters])
            except bls.BlsError:
                aggregate = b""
            if aggregate and self.verifier.verify_aggregate(keys, msg, aggregate):
                qc = QuorumCert(self.vs.epoch, round_, block_id, state_root, self.vs.bitmap(voters), aggregate)
                self._process_qc(qc, None)
                return
            # Optimistic aggregation failed: find and drop the bad votes, then try once more.
            for i in voters:
                if not vote_signature_ok(self.vs, self.chain_id, bucket[i], self.verifier):
                    self.counters["dropped_bad_signature"] += 1
                    del bucket[i]

    # ----------------------------------------------------------------------------------------------------------
    # Internals: timeouts

    def _local_timeout(self) -> None:
        if self.me is None:
            return
        r = self.current_round
        if self.safety_lost:
            self.counters["timeout_refused_safety_lost"] += 1
            return
        if self._my_timeout is not None and self._my_timeout.round == r:
            self._out.append(Broadcast(self._my_timeout))
            return
        s = self.safety
        qc, tc = s.high_qc, s.high_tc
        last_tc = tc if tc is not None and tc.round + 1 == r else None
        # DiemBFT v4 safe_to_timeout.
        if qc.round < s.highest_qc_round or r <= max(s.highest_vote_round - 1, qc.round):
            self.counters["timeout_refused"] += 1
            return
        if qc.round + 1 != r and last_tc is None:
            self.counters["timeout_refused"] += 1
            return
        assert self._sk is not None and not self.safety_lost
        signature = self._bls.sign(self._sk, timeout_message(self.chain_id, self.vs.epoch, r, qc.round))
        timeout = Timeout(self.vs.epoch, r, qc, last_tc, self.me, signature)
        self.safety = dataclasses.replace(s, highest_vote_round=max(s.highest_vote_round, r),
                                          highest_qc_round=max(s.highest_qc_round, qc.round))
        self._my_timeout = timeout
        self._pending_vote = None
        self._persist()
        self._out.append(Broadcast(timeout))
        self._record_timeout(timeout)

    def _handle_timeout(self, sender: bytes, t: Timeout) -> None:
        c = self.counters
        if t.epoch != self.vs.epoch:
            c["dropped_wrong_epoch"] += 1
            return
        if t.author >= len(self.vs) or self.vs.validators[t.author].id != sender:
            c["dropped_spoofed"] += 1
            return
        if t.round < self.current_round:
            c["dropped_stale"] += 1
            # The sender is behind: hand it our certificates so it can catch up (round synchronisation).
            if self.safety.high_qc.round >= t.round or (self.safety.high_tc is not None
                                                        and self.safety.high_tc.round >= t.round):
                self._out.append(Send(sender, SyncResponse((), self.safety.high_qc, self.safety.high_tc)))
            return
        reach = max(self.current_round, t.high_qc.round + 1, t.last_tc.round + 1 if t.last_tc else 0)
        if t.round > reach + self.config.round_window:
            c["dropped_far_future"] += 1
            return
        existing = self._timeouts.get(t.round, {}).get(t.author)
        if existing is not None:
            c["dropped_duplicate"] += 1
            return
        if not timeout_signature_ok(self.vs, self.chain_id, t, self.verifier):
            c["dropped_bad_signature"] += 1
            return
        if not self._qc_valid(t.high_qc) or (t.last_tc is not None
                                             and not tc_ok(self.vs, self.chain_id, t.last_tc, self.verifier)):
            c["dropped_bad_certificate"] += 1
            return
        self._process_qc(t.high_qc, sender)
        if t.last_tc is not None:
            self._process_tc(t.last_tc)
        if t.round < self.current_round:
            return
        self._record_timeout(t)

    def _record_timeout(self, t: Timeout) -> None:
        bucket = self._timeouts.setdefault(t.round, {})
        if t.author in bucket:
            return
        bucket[t.author] = t
        power = self.vs.power_of(bucket)
        # Bracha-style amplification: f+1 timeouts prove an honest replica gave up on this round.
        if (power >= self.vs.weak_power and t.round == self.current_round
                and (self._my_timeout is None or self._my_timeout.round != t.round)):
            self._local_timeout()
        high_tc = self.safety.high_tc
        if power >= self.vs.quorum_power and (high_tc is None or high_tc.round < t.round):
            self._process_tc(self._form_tc(t.round, bucket))

    def _form_tc(self, round_: int, bucket: dict[int, Timeout]) -> TimeoutCert:
        by_qc_round: dict[int, list[int]] = {}
        for author, t in bucket.items():
            by_qc_round.setdefault(t.high_qc.round, []).append(author)
        groups = []
        for qc_round in sorted(by_qc_round):
            authors = sorted(by_qc_round[qc_round])
            signature = self._bls.aggregate([bucket[a].signature for a in authors])
            groups.append(TimeoutGroup(qc_round, self.vs.bitmap(authors), signature))
        tc = TimeoutCert(self.vs.epoch, round_, tuple(groups))
        assert tc_ok(self.vs, self.chain_id, tc, self.verifier), "TC from verified timeouts must verify"
        return tc

    # ----------------------------------------------------------------------------------------------------------
    # Internals: recovery of a lost safety state (consensus/recovery.py, docs/consensus.md §13)

    def _ask_recovery(self) -> None:
        """While recovering, at every new round and timer expiry: ask again the validators that have not answered
        (a request or a statement may have been lost)."""
        if self.recovery is not None and self.recovery.possible and not self.retired:
            request = self.recovery.request()
            for index in self.recovery.missing():
                self._out.append(Send(self.vs.validators[index].id, request))

    def _handle_recovery_request(self, sender: int, req: RecoveryRequest) -> None:
        """Sign our statement for a validator that lost its safety state: our own highest signed round and our
        certificates, bound to its nonce. Only a replica whose safety state is intact has a bound to give."""
        c = self.counters
        if req.epoch != self.vs.epoch:
            c[f"dropped_{recovery.RecoveryError.WRONG_EPOCH}"] += 1
            return
        if req.requester != sender:
            c[f"dropped_{recovery.RecoveryError.SPOOFED}"] += 1
            return
        if self.me is None or self._sk is None or self.safety_lost or sender == self.me:
            c[f"dropped_{recovery.RecoveryError.CANNOT_ANSWER}"] += 1
            return
        answered_round, answered = self._recovery_answers.get(sender, (0, 0))
        if answered_round == self.current_round and answered >= recovery.MAX_RECOVERY_ANSWERS_PER_ROUND:
            c[f"dropped_{recovery.RecoveryError.RATE_LIMITED}"] += 1
            return
        self._recovery_answers[sender] = (self.current_round,
                                          answered + 1 if answered_round == self.current_round else 1)
        statement = recovery.make_statement(self.vs, self.chain_id, req, self.me, self.safety, self._sk, self._bls)
        c["recovery_statements_signed"] += 1
        self._out.append(Send(self.vs.validators[sender].id, statement))

    def _handle_recovery_statement(self, sender: int, statement: RecoveryStatement) -> None:
        rec = self.recovery
        if rec is None:
            self.counters[f"dropped_{recovery.RecoveryError.UNSOLICITED}"] += 1
            return
        try:
            if sender in rec.claims:
                raise recovery.RecoveryError(recovery.RecoveryError.DUPLICATE, "already answered")
            claim = recovery.check_statement(self.vs, self.chain_id, statement, sender=sender, me=rec.me,
                                             nonce=rec.nonce, anchor_qc=self._anchor_qc, verifier=self.verifier)
        except recovery.RecoveryError as exc:
            self.counters[f"dropped_{exc.code}"] += 1
            return
        rec.add(sender, claim)
        self.counters["recovery_statements_accepted"] += 1
        # Its certificates are genuine (checked above): they may lift our lock and move our round.
        if statement.high_qc.epoch == self.vs.epoch and statement.high_qc.round > 0:
            self._process_qc(statement.high_qc, self.vs.validators[sender].id)
        if statement.high_tc is not None:
            self._process_tc(statement.high_tc)

    def _try_recover(self) -> None:
        """Resume signing once a quorum has answered and our high QC restores the lock (§13)."""
        rec = self.recovery
        if rec is None or self.retired:
            return
        bound = rec.bound
        if bound is None:
            return
        if self.safety.high_qc.round < bound - 1:
            self.counters["recovery_waiting_for_qc"] += 1
            return
        self.recovery = None
        self.safety_lost = False
        self.recovered_bound = bound
        self.safety = recovery.resume_state(self.vs.epoch, bound, self.safety.high_qc, self.safety.high_tc)
        self._my_timeout = None
        self._pending_vote = None
        self.counters["recovered"] += 1
        self._persist()

    # ----------------------------------------------------------------------------------------------------------
    # Internals: block sync

    def _handle_sync_request(self, sender: bytes, req: SyncRequest) -> None:
        served_round, served = self._sync_served.get(sender, (0, 0))
        if served_round == self.current_round and served >= MAX_SYNC_ANSWERS_PER_ROUND:
            self.counters["sync_rate_limited"] += 1
            return
        if sender not in self._sync_served and len(self._sync_served) >= MAX_SYNC_PEERS_TRACKED:
            # Observers are served too, so keep the per-peer counters bounded: forget peers of earlier rounds.
            self._sync_served = {k: v for k, v in self._sync_served.items() if v[0] == self.current_round}
        self._sync_served[sender] = (self.current_round, served + 1 if served_round == self.current_round else 1)
        limit = self.config.max_sync_blocks
        blocks: list[Block] = []
        qc: QuorumCert | None = None
        if req.target_id:
            entry = self._entries.get(req.target_id)
            if entry is None:
                self.counters["sync_unknown_target"] += 1
                return
            chain = []
            while entry is not None and entry.header.height >= req.start_height and entry.header.height > 0:
                chain.append(entry)
                entry = self._entries.get(entry.header.parent_id)
            chain.reverse()
            if len(chain) > limit:
                # Send the lowest part (it connects to the requester's tree) and the QC of its last block.
                qc = chain[limit].header.qc
                chain = chain[:limit]
            else:
                qc = chain[-1].qc if chain else None
            blocks = [e.block for e in chain]
        else:
            end = min(req.end_height, req.start_height + limit - 1, self.committed_height)
            for height in range(req.start_height, end + 1):
                block_id = self._committed_by_height.get(height)
                entry = self._entries.get(block_id) if block_id else None
                if entry is None or entry.header.height == 0:
                    break
                blocks.append(entry.block)
            if blocks:
                nxt = self._committed_by_height.get(blocks[-1].header.height + 1)
                nxt_entry = self._entries.get(nxt) if nxt else None
                qc = nxt_entry.header.qc if nxt_entry else self._entries[blocks[-1].id].qc
        size = 0
        for i, block in enumerate(blocks):
            size += len(block.payload) + 1024
            if size > self.config.max_message_bytes // 2:
                qc = blocks[i].header.qc
                blocks = blocks[:i]
                break
        if not blocks:
            return
        self.counters["sync_served"] += 1
        self._out.append(Send(sender, SyncResponse(tuple(blocks), qc, None)))

    def _handle_sync_response(self, sender: bytes, resp: SyncResponse) -> None:
        c = self.counters
        if resp.qc is not None and not self._qc_valid(resp.qc):
            c["dropped_bad_certificate"] += 1
            return
        if resp.tc is not None and not tc_ok(self.vs, self.chain_id, resp.tc, self.verifier):
            c["dropped_bad_certificate"] += 1
            return
        blocks = resp.blocks
        inserted = 0
        for i, block in enumerate(blocks):
            header = block.header
            if header.chain_id != self.chain_id or header.epoch != self.vs.epoch or header.height == 0:
                c["sync_bad_block"] += 1
                break
            if block.id in self._entries:
                continue
            if len(block.payload) > self.config.max_payload_bytes:
                c["sync_bad_block"] += 1
                break
            # The block must be certified: by the next block's QC, the response QC, or one we hold.
            cert = blocks[i + 1].header.qc if i + 1 < len(blocks) else resp.qc
            if cert is None or cert.block_id != block.id:
                cert = self._pending_qcs.get(block.id)
            if cert is None or cert.block_id != block.id or cert.round != header.round or not self._qc_valid(cert):
                c["sync_uncertified_block"] += 1
                break
            if not self._qc_valid(header.qc):
                c["sync_bad_block"] += 1
                break
            if not self._insert_block(block):
                c["sync_unlinked_block"] += 1
                if header.parent_id not in self._entries:
                    # The peer's chain starts above ours: fetch the committed blocks we miss by height.
                    self._request_range(sender)
                break
            inserted += 1
            self._certify(cert, sender)
        c["sync_blocks_received"] += inserted
        if resp.qc is not None:
            self._process_qc(resp.qc, sender)
        if resp.tc is not None:
            self._process_tc(resp.tc)
        if inserted:
            # Keep fetching while a wanted block is still missing.
            for block_id in list(self._pending_qcs):
                if block_id not in self._entries:
                    self._sync_requested.pop(block_id, None)
                    self._request_sync(block_id, sender)
            for _, (s, p) in list(self._pending_proposals.items()):
                if p.block.header.parent_id not in self._entries:
                    self._sync_requested.pop(p.block.header.parent_id, None)
                    self._request_sync(p.block.header.parent_id, s)



def _message_epoch(message: Message) -> int | None:
    if isinstance(message, Proposal):
        return message.block.header.epoch
    if isinstance(message, Vote | Timeout | RecoveryRequest | RecoveryStatement):
        return message.epoch
    return None
