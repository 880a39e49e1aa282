"""Deterministic cluster simulator: n replicas in one process, virtual time, a seeded hostile network.

One run = one seed. Before GST (global stabilisation time) the network drops, duplicates, delays (heavy tail) and
reorders messages, partitions come and go, honest replicas crash (between events or in the middle of performing an
action list) and restart from their persisted safety state (or all of them at once). From GST on: no drops, bounded delays, every honest replica up. Byzantine replicas run the
honest code with their outgoing traffic rewritten (equivocating leader, double voter, silent, garbage sender,
stale-round voter).

Checked after (and during) every run:
  agreement   no two honest replicas commit different blocks at one height
  validity    every honest commit extends the previous one by one height, carries a payload some proposer produced,
              and has the state root the deterministic application computes
  certificate every commit certificate verifies against the validator set (and names the committed block)
  no-equivocation  no honest replica signs two different votes or proposals in a round, across restarts;
              equivocation evidence is verified and names a Byzantine replica only
  recovery    a replica wiped (safety state and pending blocks lost) and recovered in its epoch signs no vote,
              timeout or proposal in a round at or below the highest round it signed anything in before the wipe
              (docs/consensus.md §13); within the fault budget every wiped replica recovers before the run ends
  bounded     every replica buffer is within the bound its configuration implies
  liveness    once stable (GST, >= 2f+1 honest up), every honest replica commits `liveness_commits` new blocks
              before the highest honest round passes round_at_gst + liveness_rounds.
  leaders     replicas elect leaders from committed blocks only: two honest replicas whose committed chains both
              reach the election's anchor round (round - EXCLUDE_ROUNDS) elect the same leader for a round, and
              the same anchor always gives the same leader (checked after every step of every honest replica).
With `wipes`, some of the crashes before GST (within the budget f - Byzantine) lose the replica's safety state: it
restarts with `safety_lost` and a fresh recovery nonce and recovers (consensus/recovery.py); wiped at any moment,
in the middle of an action list too (right after persisting a vote, before sending it).
With `down` (> 0), that many honest validators go down after GST for `down_ms` (crashed, wiped = restarted with
its safety state lost, recovering it from a quorum's statements, or partitioned away), within the fault budget
(Byzantine + down <= f); the run measures the committed blocks per virtual second healthy (GST + 1 s until they go
down), degraded (while they are down) and recovered (the `RECOVERED_MS` after their return, with how soon a 1 s
window is back at 90% of the healthy rate), and checks that a crashed or partitioned validator, once back, proposes a
committed block within `RECOVERY_MS` (leader election gives it rounds again).
With `reconfig`, the seed also draws a schedule of epoch changes (add a validator, remove one, rotate a key; every
epoch keeps n >= 4 and its Byzantine members < n/3), each ending at a fixed height; additionally checked:
  epochs      every commit certificate verifies under the set of its epoch; no block above an epoch's ending height
              is committed in that epoch (two sets never both commit); every epoch-change proof, chained from the
              genesis set, leads to the scheduled set; replicas in an ended epoch catch up (EpochChange, sync).
Joining validators are given the epoch-ending block and its certificate (what block sync from genesis yields in a
node) and start in their first epoch; removed validators keep their retired replica (it answers laggards).
Nothing here reads the clock or an unseeded random source; the same seed gives the same run.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import heapq
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from consensus import bls, leaders
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
from consensus.byzantine import BEHAVIOURS, ByzantineSender
from consensus.certificates import (
    CommitCertificateError,
    EpochChainError,
    SignatureVerifier,
    check_commit_certificate,
    verify_epoch_chain,
    verify_evidence,
)
from consensus.messages import (
    Block,
    CommitCertificate,
    EpochChangeProof,
    Message,
    Proposal,
    QuorumCert,
    SafetyState,
    Timeout,
    Vote,
    encode_message,
    genesis_block,
    genesis_qc,
    payload_hash,
)
from consensus.replica import Replica, ReplicaConfig
from consensus.validators import Validator, ValidatorSet

GENESIS_ROOT: Final = hashlib.sha256(b"simulated genesis state").digest()
DOWN_MODES: Final = ("crash", "wipe", "partition")
# With `down`: healthy from GST + HEALTHY_FROM_MS until DOWN_AT_MS after GST, then down for `down_ms`; a validator
# that comes back must propose a committed block within RECOVERY_MS.
HEALTHY_FROM_MS: Final = 1000
DOWN_AT_MS: Final = 4000
RECOVERY_MS: Final = 20_000
# After the return the run goes on at least RECOVERED_MS to measure the block rate with the validators back
# (`recovered_blocks`) and how soon it is healthy again: `back_to_healthy_ms`, the start of the first
# BACK_WINDOW_MS window after the return (in BACK_STEP_MS steps) that commits at least BACK_RATIO of the healthy rate.
RECOVERED_MS: Final = 4000
BACK_WINDOW_MS: Final = 1000
BACK_STEP_MS: Final = 100
BACK_RATIO: Final = 0.9
# A returned validator too far behind for consensus-level sync is caught up by (emulated) block sync this much later.
BLOCK_SYNC_AFTER_MS: Final = 500


@dataclass(frozen=True, slots=True)
class SimConfig:
    seed: int
    nodes: int = 4
    byzantine: int = 0
    # One behaviour per Byzantine replica; empty = chosen by the seed.
    behaviours: tuple[str, ...] = ()
    # Minimum number of rounds to run (the highest honest round must reach it).
    rounds: int = 30
    crashes: bool = True
    all_restart: bool = False
    partitions: bool = True
    base_timeout_ms: int = 200
    max_backoff_exponent: int = 4
    liveness_commits: int = 3
    liveness_rounds: int = 0  # 0 = 4n + 12
    # Random epoch changes (validator set changes and key rotations) during the run.
    reconfig: bool = False
    leader_election: str = "reputation"
    # Honest validators down for down_ms after GST ("crash", "wipe" or "partition"; "" = chosen by the seed).
    down: int = 0
    down_mode: str = ""
    down_ms: int = 10_000
    # Some crashes before GST wipe the safety state (within the fault budget f - Byzantine; consensus/recovery.py).
    wipes: bool = True

    def __post_init__(self) -> None:
        assert self.nodes >= 1 and 0 <= self.byzantine and 3 * self.byzantine < self.nodes
        assert all(b in BEHAVIOURS for b in self.behaviours)
        assert self.down >= 0 and self.byzantine + self.down <= (self.nodes - 1) // 3, "beyond the fault budget"
        assert self.down_mode in ("", *DOWN_MODES) and not (self.down and self.reconfig)


@dataclass(slots=True)
class RunResult:
    seed: int
    config: SimConfig
    safety_violations: list[str] = field(default_factory=list)
    liveness_failures: list[str] = field(default_factory=list)
    commits: int = 0
    max_height: int = 0
    rounds: int = 0
    virtual_ms: int = 0
    messages: int = 0
    evidence: int = 0
    byzantine: dict[int, str] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)
    epoch_changes: int = 0
    leader_checks: int = 0
    # With `down`: blocks committed and virtual ms, healthy and degraded; ms from the return to a committed block
    # proposed by a returned validator (-1: none; a wiped one proposes again once it has recovered).
    down_mode: str = ""
    healthy_blocks: int = 0
    healthy_ms: int = 0
    degraded_blocks: int = 0
    degraded_ms: int = 0
    recovery_ms: int = -1
    # Blocks committed in the RECOVERED_MS after the return, and ms from the return to the first window at the
    # healthy rate (-1: none within RECOVERED_MS).
    recovered_blocks: int = 0
    recovered_ms: int = 0
    back_to_healthy_ms: int = -1

    @property
    def ok(self) -> bool:
        return not self.safety_violations and not self.liveness_failures


# ---------------------------------------------------------------------------------------------------------------
# Keys and validator sets are the same for every seed (so proofs of possession are checked once per process).


@functools.lru_cache(maxsize=64)
def _secret_key(index: int, version: int = 0) -> bytes:
    seed = b"simulator validator %d" % index + (b" key %d" % version if version else b"")
    return bls.get_backend().keygen(hashlib.sha256(seed).digest())


@functools.lru_cache(maxsize=256)
def _validator(index: int, version: int) -> Validator:
    backend = bls.get_backend()
    sk = _secret_key(index, version)
    return Validator(b"v%d" % index, backend.public_key(sk), backend.pop_prove(sk), 1)


@functools.lru_cache(maxsize=256)
def _epoch_set(epoch: int, members: tuple[tuple[int, int], ...]) -> ValidatorSet:
    """The set of `epoch` with members (node index, key version), in this order."""
    return ValidatorSet(epoch, [_validator(i, v) for i, v in members], backend=bls.get_backend())


@functools.lru_cache(maxsize=16)
def simulated_validator_set(n: int) -> ValidatorSet:
    backend = bls.get_backend()
    validators = []
    for i in range(n):
        sk = _secret_key(i)
        validators.append(Validator(b"v%d" % i, backend.public_key(sk), backend.pop_prove(sk), 1))
    return ValidatorSet(0, validators, backend=backend)


_VERIFIER: SignatureVerifier | None = None


def shared_verifier() -> SignatureVerifier:
    global _VERIFIER
    if _VERIFIER is None:
        _VERIFIER = SignatureVerifier(bls.get_backend())
    return _VERIFIER


def execute_payload(parent_root: bytes, payload: bytes) -> bytes:
    """The simulated application: the state root after applying `payload`."""
    return hashlib.sha256(b"state" + parent_root + payload_hash(payload)).digest()


# ---------------------------------------------------------------------------------------------------------------


class _Disk:
    """What survives a crash: the last safety state, pending blocks, the committed chain, the node's epoch and the
    proofs of the epochs it has seen end."""

    __slots__ = ("blocks", "committed", "epoch", "lost", "proofs", "safety")

    def __init__(self) -> None:
        self.safety: SafetyState | None = None
        self.blocks: dict[bytes, Block] = {}
        self.committed: list[tuple[Block, CommitCertificate | None]] = []
        self.epoch = 0
        self.proofs: list[EpochChangeProof] = []
        # The safety state of `epoch` was wiped and no new one persisted yet (the node's safety store: no state and
        # no mark of the epoch): every boot in this epoch is a lost one.
        self.lost = False


class _Node:
    __slots__ = ("behaviour", "crash_after", "disk", "id", "index", "liar", "replica", "roots", "timer_gen", "up")

    def __init__(self, index: int, behaviour: str | None) -> None:
        self.index = index
        self.id = b"v%d" % index
        self.replica: Replica | None = None
        self.disk = _Disk()
        self.up = False
        self.timer_gen = 0
        self.behaviour = behaviour
        self.roots: dict[bytes, bytes] = {}
        self.liar: ByzantineSender | None = None  # a Byzantine node's rewritten traffic
        self.crash_after: int | None = None


class Simulation:
    def __init__(self, config: SimConfig) -> None:
        self.cfg = config
        self.rng = random.Random(config.seed)
        n = config.nodes
        self.vs = simulated_validator_set(n)
        # Epoch schedule: sets by epoch and the height of each epoch's ending block (a pure function of the seed).
        self.epoch_sets: list[ValidatorSet] = [self.vs]
        self.end_heights: list[int] = []
        self.members: list[dict[int, int]] = [{i: 0 for i in range(n)}]
        spare = 2 if config.reconfig else 0
        self.verifier = shared_verifier()
        self.chain_id = b"sim-%d" % config.seed
        self.genesis = genesis_block(self.chain_id, self.vs.epoch)
        self.genesis_qc = genesis_qc(self.genesis, GENESIS_ROOT)
        self.replica_config = ReplicaConfig(chain_id=self.chain_id, base_timeout_ms=config.base_timeout_ms,
                                            max_backoff_exponent=config.max_backoff_exponent,
                                            max_payload_bytes=1 << 16, round_window=32, max_sync_blocks=32,
                                            leader_election=config.leader_election)
        byz_indexes = self.rng.sample(range(n), config.byzantine)
        behaviours = list(config.behaviours) or [self.rng.choice(BEHAVIOURS) for _ in byz_indexes]
        self.byzantine = {i: behaviours[k % len(behaviours)] for k, i in enumerate(byz_indexes)}
        if config.reconfig:
            self._draw_schedule(n, spare)
        self.nodes = [_Node(i, self.byzantine.get(i)) for i in range(n + spare)]
        self.honest = [node for node in self.nodes if node.behaviour is None]
        self.now = 0
        self._seq = 0
        self._queue: list[tuple[int, int, Callable[[], None]]] = []
        self.result = RunResult(config.seed, config, byzantine=dict(self.byzantine))
        # Network model.
        self.gst = self.rng.randint(1500, 4000)
        self.drop_p = self.rng.choice((0.0, 0.05, 0.2))
        self.dup_p = self.rng.choice((0.0, 0.05))
        self.delay_model = self.rng.choice(("uniform", "bimodal", "heavy"))
        self.stable_delay = self.rng.randint(5, 40)
        self.partition: list[set[int]] | None = None
        # Checks.
        self.committed_at: dict[int, bytes] = {}
        self.payloads: set[bytes] = set()
        self.signed_votes: dict[tuple[int, int, int], bytes] = {}
        self.signed_proposals: dict[tuple[int, int, int], bytes] = {}
        # Recovery: the highest round each honest node signed anything in, by (node, epoch); the floor a wiped one
        # must stay above in that epoch; wiped nodes (index, epoch) and those that recovered.
        self.signed_max: dict[tuple[int, int], int] = {}
        self.wiped_floor: dict[tuple[int, int], int] = {}
        self.wiped: list[tuple[int, int]] = []
        self.gst_heights: dict[int, int] = {}
        self.gst_round = 0
        self.live_at_round: int | None = None
        self.proofs: list[EpochChangeProof] = []
        self.joined: set[int] = set()
        # Leader agreement: (epoch, round, anchor id) -> leader; (epoch, round) -> leader for replicas whose
        # committed chain reaches the anchor round.
        self.elected_by_anchor: dict[tuple[int, int, bytes | None], int] = {}
        self.elected: dict[tuple[int, int], int] = {}
        # Down validators: isolated ones (partitioned even after GST), the heights committed over time.
        self.isolated: set[int] = set()
        self.down_nodes: list[int] = []
        self.down_at = self.up_at = 0
        self.height_times: list[tuple[int, int]] = []
        for node in self.nodes:
            if node.behaviour is not None:
                node.liar = ByzantineSender(node.behaviour, self.rng, sign=functools.partial(self._sign, node),
                                            chain_id=self.chain_id,
                                            max_payload=self.replica_config.max_payload_bytes,
                                            on_payload=self.payloads.add)

    def _draw_schedule(self, n: int, spare: int) -> None:
        rng = self.rng
        height = 0
        for epoch in range(1, rng.randint(2, 4)):
            members = dict(self.members[-1])
            byz = sum(1 for i in members if i in self.byzantine)
            outside = [i for i in range(n + spare) if i not in members]
            choices = ["rotate"]
            if outside:
                choices.append("add")
            if len(members) - 1 >= 4 and 3 * byz < len(members) - 1:
                choices.append("remove")
            op = rng.choice(choices)
            if op == "add":
                members[rng.choice(outside)] = 0
            elif op == "remove":
                del members[rng.choice(sorted(members))]
            else:
                target = rng.choice(sorted(members))
                members[target] += 1
            height += rng.randint(2, 6)
            self.end_heights.append(height)
            self.members.append(members)
            self.epoch_sets.append(_epoch_set(epoch, tuple(sorted(members.items()))))
            assert 3 * sum(1 for i in members if i in self.byzantine) < len(members) and len(members) >= 4

    def _member(self, node: _Node, epoch: int) -> bool:
        return node.index in self.members[epoch]

    def _next_set(self, block: Block) -> ValidatorSet | None:
        e = block.header.epoch
        if e < len(self.end_heights) and block.header.height == self.end_heights[e]:
            return self.epoch_sets[e + 1]
        return None

    # ----------------------------------------------------------------------------------------------------------
    # Event queue

    def _at(self, time: int, event: Callable[[], None]) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (time, self._seq, event))

    def violation(self, text: str) -> None:
        self.result.safety_violations.append(f"t={self.now} {text}")

    # ----------------------------------------------------------------------------------------------------------
    # Network

    def _delay(self) -> int:
        if self.now >= self.gst:
            return self.rng.randint(1, self.stable_delay)
        if self.delay_model == "uniform":
            return self.rng.randint(1, 80)
        if self.delay_model == "bimodal":
            return self.rng.choice((self.rng.randint(1, 10), self.rng.randint(100, 400)))
        return min(3000, int(self.rng.expovariate(1 / 60)) + 1)

    def _send(self, src: int, dst: int, data: bytes) -> None:
        if dst == src or src in self.isolated or dst in self.isolated:
            return
        if self.now < self.gst:
            if self.partition is not None and not any(src in p and dst in p for p in self.partition):
                return
            if self.rng.random() < self.drop_p:
                return
            copies = 2 if self.rng.random() < self.dup_p else 1
        else:
            copies = 1
        for _ in range(copies):
            self.result.messages += 1
            self._at(self.now + self._delay(), functools.partial(self._deliver, src, dst, data))

    def _deliver(self, src: int, dst: int, data: bytes) -> None:
        node = self.nodes[dst]
        if not node.up or node.replica is None:
            return
        if node.liar is not None:
            node.liar.heard(data)
        self._run(node, node.replica.on_bytes(self.nodes[src].id, data))

    # ----------------------------------------------------------------------------------------------------------
    # Driving one replica

    def _boot(self, node: _Node) -> None:
        disk = node.disk
        if not self._member(node, disk.epoch):
            return  # not (yet, or any more) a validator
        if disk.committed and disk.committed[-1][1] is not None:
            anchor, cert = disk.committed[-1]
            anchor_qc: QuorumCert = cert.headers[1].qc  # type: ignore[union-attr]
        else:
            anchor, anchor_qc = self.genesis, self.genesis_qc
        stored = [b for b in disk.blocks.values() if b.header.height > anchor.header.height]
        vs = self.epoch_sets[disk.epoch]
        node.replica = Replica(self.replica_config, vs, me=node.id,
                               secret_key=_secret_key(node.index, self.members[disk.epoch][node.index]),
                               anchor=anchor, anchor_qc=anchor_qc, safety=disk.safety, stored_blocks=stored,
                               history=[(b, c) for b, c in disk.committed[-65:-1] if c is not None],
                               verifier=self.verifier, epoch_proofs=disk.proofs,
                               safety_lost=disk.lost and disk.safety is None,
                               recovery_nonce=self.rng.randbytes(32) if disk.lost and disk.safety is None else None)
        node.roots = {anchor.id: anchor_qc.state_root}
        node.up = True
        node.timer_gen += 1
        self._run(node, node.replica.start())

    def _enter_epoch(self, node: _Node, epoch: int) -> None:
        """The node committed the block ending `epoch - 1` (its disk already says so): start its replica of the new
        epoch if it is a member; a removed validator keeps its retired replica to answer peers that are behind."""
        if not node.up or node.replica is None or node.replica.vs.epoch >= epoch:
            return
        if self._member(node, epoch):
            node.replica = None
            node.timer_gen += 1
            self._boot(node)

    def _join(self, epoch: int, block: Block, cert: CommitCertificate) -> None:
        """Validators joining at `epoch` start from the block that ended the previous epoch."""
        for node in self.nodes:
            if self._member(node, epoch) and node.disk.epoch < epoch and not self._member(node, node.disk.epoch):
                node.disk.committed = [(block, cert)]
                node.disk.epoch = epoch
                node.disk.safety = None
                node.disk.blocks = {}
                node.disk.proofs = list(self.proofs[:epoch])
                node.crash_after = None
                node.up = False
                node.replica = None
                self._boot(node)

    def _crash(self, node: _Node) -> None:
        node.crash_after = None
        node.up = False
        node.replica = None
        node.timer_gen += 1

    def _timer(self, node: _Node, gen: int, round_: int) -> None:
        if node.up and node.timer_gen == gen and node.replica is not None:
            self._run(node, node.replica.on_timeout(round_))

    def _arm_crash(self, node: _Node) -> None:
        """Crash in the middle of the node's next action list (after a random prefix of it)."""
        node.crash_after = self.rng.randint(0, 4)

    def _run(self, node: _Node, actions: list) -> None:
        pending = list(actions)
        while pending and node.up:
            replica = node.replica
            assert replica is not None
            follow: list = []
            for action in pending:
                if node.crash_after is not None:
                    if node.crash_after == 0:
                        node.crash_after = None
                        self._crash(node)
                        return
                    node.crash_after -= 1
                self._perform(node, action, follow)
            pending = []
            for call in follow:
                pending.extend(call(replica))
        if node.up and node.replica is not None and node.behaviour is None:
            self._check_leaders(node.replica)

    def _check_leaders(self, replica: Replica) -> None:
        """The leaders this replica elects for its current and next round agree with every other honest replica's
        (docs/consensus.md §4 "Leader election": committed blocks only)."""
        epoch = replica.vs.epoch
        for round_ in (replica.current_round, replica.current_round + 1):
            leader = replica.leader_index(round_)
            anchor = replica.election_anchor(round_)
            self.result.leader_checks += 1
            if self.elected_by_anchor.setdefault((epoch, round_, anchor), leader) != leader:
                self.violation(f"LEADER: the same anchor elects two leaders for round {round_} of epoch {epoch}")
            knows_anchor = replica.committed_round >= round_ - leaders.EXCLUDE_ROUNDS and not replica.retired
            if knows_anchor and self.elected.setdefault((epoch, round_), leader) != leader:
                self.violation(f"LEADER: replicas with the committed data elect two leaders for round {round_}")

    def _perform(self, node: _Node, action: object, follow: list) -> None:
        if isinstance(action, Send):
            self._outgoing(node, [int(action.to[1:])], action.message)
        elif isinstance(action, Broadcast):
            self._outgoing(node, [i for i in range(len(self.nodes)) if i != node.index], action.message)
        elif isinstance(action, SyncBlocks):
            self._outgoing(node, [int(action.to[1:])], action.request)
        elif isinstance(action, PersistSafety):
            old = node.disk.safety
            if old is not None:
                assert action.state.highest_vote_round >= old.highest_vote_round
            node.disk.safety = action.state
            node.disk.lost = False
            for block in action.blocks:
                node.disk.blocks[block.id] = block
        elif isinstance(action, SetTimer):
            node.timer_gen += 1
            self._at(self.now + action.delay_ms, functools.partial(self._timer, node, node.timer_gen, action.round))
        elif isinstance(action, RequestPayload):
            payload = self.rng.randbytes(self.rng.randint(0, 64))
            self.payloads.add(payload_hash(payload))
            follow.append(lambda r, rd=action.round, p=payload: r.on_payload(rd, p))
        elif isinstance(action, Execute):
            root = execute_payload(action.parent_state_root, action.block.payload)
            node.roots[action.block.id] = root
            nxt = self._next_set(action.block)
            follow.append(lambda r, b=action.block.id, s=root, x=nxt: r.on_executed(b, s, x))
        elif isinstance(action, Commit):
            self._on_commit(node, action.block, action.certificate)
        elif isinstance(action, ReportEvidence):
            self.result.evidence += 1
            ev = action.evidence
            ev_set = self.epoch_sets[ev.epoch] if ev.epoch < len(self.epoch_sets) else self.vs
            if not verify_evidence(ev_set, self.chain_id, ev, self.verifier):
                self.violation(f"node {node.index} reported evidence that does not verify")
            elif self.nodes[int(ev_set.validators[ev.validator].id[1:])].behaviour is None:
                self.violation(f"evidence against honest node {ev.validator}")
        else:
            raise TypeError(f"unknown action {action!r}")

    def _on_commit(self, node: _Node, block: Block, cert: CommitCertificate) -> None:
        disk = node.disk
        h = block.header
        nxt = self._next_set(block)
        if nxt is not None:
            self._on_epoch_end(node, block, cert, nxt)
        if node.behaviour is not None:
            disk.committed.append((block, cert))
            return
        prev = disk.committed[-1][0] if disk.committed else self.genesis
        if h.height != prev.header.height + 1 or h.parent_id != prev.id:
            self.violation(f"node {node.index} commit at height {h.height} does not extend its last commit")
        if h.height not in self.committed_at:
            self.height_times.append((self.now, h.height))
            if self.up_at and self.now >= self.up_at and self.result.recovery_ms < 0 and any(
                    self.epoch_sets[h.epoch].validators[h.proposer].id == self.nodes[i].id
                    for i in self.down_nodes):
                self.result.recovery_ms = self.now - self.up_at
        other = self.committed_at.setdefault(h.height, block.id)
        if other != block.id:
            self.violation(f"AGREEMENT: two blocks committed at height {h.height}")
        if h.payload_hash not in self.payloads:
            self.violation(f"node {node.index} committed a payload nobody proposed at height {h.height}")
        if h.epoch < len(self.end_heights) and h.height > self.end_heights[h.epoch]:
            self.violation(f"node {node.index} committed height {h.height} in ended epoch {h.epoch}")
        try:
            check_commit_certificate(self.epoch_sets[h.epoch], cert, chain_id=self.chain_id, verifier=self.verifier)
        except CommitCertificateError as exc:
            self.violation(f"node {node.index} commit certificate at height {h.height}: {exc.code}")
        if cert.block_id != block.id or cert.height != h.height:
            self.violation(f"node {node.index} commit certificate names another block")
        expected = node.roots.get(block.id)
        if expected is not None and expected != cert.state_root:
            self.violation(f"node {node.index} certified state root differs from execution at {h.height}")
        disk.committed.append((block, cert))
        for block_id in [b for b, blk in disk.blocks.items() if blk.header.height <= h.height]:
            del disk.blocks[block_id]
        self.result.commits += 1
        self.result.max_height = max(self.result.max_height, h.height)

    def _on_epoch_end(self, node: _Node, block: Block, cert: CommitCertificate, nxt: ValidatorSet) -> None:
        epoch = block.header.epoch
        replica = node.replica
        proof = replica.epoch_change if replica is not None else None
        if proof is None or proof.cert.block_id != block.id or not replica.retired:  # type: ignore[union-attr]
            self.violation(f"node {node.index} committed the end of epoch {epoch} without retiring")
            return
        if node.behaviour is None:
            try:
                reached = verify_epoch_chain(self.vs, [*node.disk.proofs[:epoch], proof], chain_id=self.chain_id,
                                             verifier=self.verifier)
            except EpochChainError as exc:
                self.violation(f"node {node.index} epoch-change proof of epoch {epoch}: {exc.code}")
                return
            if reached.digest != nxt.digest:
                self.violation(f"node {node.index} epoch-change proof leads to another set")
        if len(self.proofs) == epoch:
            self.proofs.append(proof)
            self.result.epoch_changes += 1
        node.disk.proofs = list(self.proofs[: epoch + 1])
        node.disk.epoch = epoch + 1
        node.disk.safety = None
        node.disk.lost = False
        node.disk.blocks = {}
        self._at(self.now, functools.partial(self._enter_epoch, node, epoch + 1))
        if len(self.proofs) == epoch + 1 and epoch + 1 not in self.joined:
            self.joined.add(epoch + 1)
            self._at(self.now, functools.partial(self._join, epoch + 1, block, cert))

    # ----------------------------------------------------------------------------------------------------------
    # Outgoing traffic, honest or rewritten by a Byzantine behaviour

    def _outgoing(self, node: _Node, targets: list[int], message: Message) -> None:
        if node.liar is None:
            self._check_honest(node, message)
            data = encode_message(message)
            for t in targets:
                self._send(node.index, t, data)
            return
        for t, data in node.liar.send(message, targets, list(range(len(self.nodes)))):
            self._send(node.index, t, data)

    def _check_honest(self, node: _Node, message: Message) -> None:
        signed = _signed_round(message)
        if signed is not None:
            key2 = (node.index, signed[0])
            floor = self.wiped_floor.get(key2)
            if floor is not None and signed[1] <= floor:
                self.violation(f"RECOVERY: honest node {node.index}, wiped in epoch {signed[0]}, signed a "
                               f"{type(message).__name__} in round {signed[1]} <= {floor}, a round it signed in "
                               f"before the wipe")
            self.signed_max[key2] = max(self.signed_max.get(key2, 0), signed[1])
        if isinstance(message, Vote):
            key = (node.index, message.epoch, message.round)
            value = message.block_id + message.state_root
            if self.signed_votes.setdefault(key, value) != value:
                self.violation(f"honest node {node.index} signed two votes in round {message.round}")
        elif isinstance(message, Proposal):
            key = (node.index, message.block.header.epoch, message.block.header.round)
            if self.signed_proposals.setdefault(key, message.block.id) != message.block.id:
                self.violation(f"honest node {node.index} proposed twice in round {key[2]}")

    def _sign(self, node: _Node, msg: bytes) -> bytes:
        return self.verifier.backend.sign(_secret_key(node.index), msg)

    # ----------------------------------------------------------------------------------------------------------
    # Fault schedule

    def _schedule_faults(self) -> None:
        rng, cfg = self.rng, self.cfg
        honest = [n.index for n in self.honest]
        if cfg.partitions and rng.random() < 0.7:
            t = rng.randint(0, self.gst // 2)
            while t < self.gst:
                self._at(t, self._random_partition)
                t += rng.randint(200, 1200)
            self._at(self.gst, self._heal)
        if cfg.crashes:
            # Validators wiped before GST recover after it only if the others make a quorum without them.
            wipe_budget = 0 if not cfg.wipes or cfg.down else (
                (1 if cfg.byzantine == 0 else 0) if cfg.reconfig else (cfg.nodes - 1) // 3 - cfg.byzantine)
            wiped: set[int] = set()
            for _ in range(rng.randint(1, 3)):
                idx = rng.choice(honest)
                down = rng.randint(0, self.gst - 200)
                up = rng.randint(down + 50, self.gst)
                crash = self._crash if rng.random() < 0.5 else self._arm_crash
                # (No draw without a budget: runs without wipes keep the random stream they always had.)
                wipe = wipe_budget > 0 and rng.random() < 0.5 and (idx in wiped or len(wiped) < wipe_budget)
                self._at(down, functools.partial(crash, self.nodes[idx]))
                if wipe:
                    wiped.add(idx)
                    self._at(up, functools.partial(self._wipe_and_restart, self.nodes[idx]))
                else:
                    self._at(up, functools.partial(self._restart_if_down, self.nodes[idx]))
        if cfg.all_restart:
            down = rng.randint(self.gst // 3, self.gst - 300)
            up = down + rng.randint(10, 250)
            for node in self.nodes:
                self._at(down, functools.partial(self._crash, node))
                self._at(up, functools.partial(self._restart_if_down, node))
        for node in self.nodes:
            self._at(self.gst, functools.partial(self._restart_if_down, node))
        if cfg.down:
            self.result.down_mode = cfg.down_mode or rng.choice(DOWN_MODES)
            self.down_nodes = rng.sample(honest, cfg.down)
            self.down_at = self.gst + DOWN_AT_MS
            self.up_at = self.down_at + cfg.down_ms
            for idx in self.down_nodes:
                self._at(self.down_at, functools.partial(self._go_down, self.nodes[idx]))
                self._at(self.up_at, functools.partial(self._come_back, self.nodes[idx]))

    def _wipe(self, node: _Node) -> None:
        """(Down) its safety state and pending blocks are gone; it boots with the safety state lost and recovers."""
        assert not node.up
        disk = node.disk
        disk.safety = None
        disk.blocks = {}
        disk.lost = True
        key = (node.index, disk.epoch)
        self.wiped_floor[key] = max(self.wiped_floor.get(key, 0), self.signed_max.get(key, 0))
        self.wiped.append(key)
        self.result.counters["wipes"] = self.result.counters.get("wipes", 0) + 1

    def _wipe_and_restart(self, node: _Node) -> None:
        node.crash_after = None
        if node.up:
            return  # the armed crash never happened
        self._wipe(node)
        self._boot(node)

    def _go_down(self, node: _Node) -> None:
        mode = self.result.down_mode
        if mode == "partition":
            self.isolated.add(node.index)
            return
        self._crash(node)
        if mode == "wipe":
            # Its safety state is gone: back at up_at, it follows and commits, and signs again once it has recovered.
            self._wipe(node)

    def _come_back(self, node: _Node) -> None:
        self.isolated.discard(node.index)
        self._restart_if_down(node)
        self._at(self.now + BLOCK_SYNC_AFTER_MS, functools.partial(self._block_sync, node))

    def _block_sync(self, node: _Node) -> None:
        """A validator back after a long absence may be further behind than its peers keep committed blocks in
        memory (consensus-level sync serves only those): the node layer's block sync then applies the committed
        chain from a peer's store and starts a new replica at the head (node/validator/driver.py). So here."""
        source = max((n for n in self.honest if n.up and n is not node), key=lambda n: len(n.disk.committed))
        if len(source.disk.committed) - len(node.disk.committed) < self.replica_config.committed_window // 2:
            return
        assert source.disk.epoch == node.disk.epoch, "down runs have no epoch changes"
        node.disk.committed = list(source.disk.committed)
        node.disk.blocks = {}
        self._crash(node)
        self._boot(node)

    def _random_partition(self) -> None:
        indexes = list(range(len(self.nodes)))
        self.rng.shuffle(indexes)
        cut = self.rng.randint(1, len(indexes) - 1) if len(indexes) > 1 else 1
        self.partition = [set(indexes[:cut]), set(indexes[cut:])]

    def _heal(self) -> None:
        self.partition = None

    def _restart_if_down(self, node: _Node) -> None:
        node.crash_after = None  # an armed crash that has not happened yet is called off
        if not node.up:
            self._boot(node)

    def _on_gst(self) -> None:
        self.partition = None
        self.gst_heights = {n.index: len(n.disk.committed) for n in self.honest if n.up}
        self.gst_round = max(n.replica.current_round for n in self.honest if n.replica is not None)

    # ----------------------------------------------------------------------------------------------------------

    def run(self) -> RunResult:
        cfg = self.cfg
        live_rounds = cfg.liveness_rounds or 4 * cfg.nodes + 12
        for node in self.nodes:
            self._boot(node)
        self._schedule_faults()
        self._at(self.gst, self._on_gst)
        max_delay = cfg.base_timeout_ms << cfg.max_backoff_exponent
        deadline = self.gst + (live_rounds + cfg.rounds) * (max_delay + 200)
        # With `down`, run until a returned validator proposed a committed block and RECOVERED_MS passed since the
        # return (or RECOVERY_MS passed).
        finish_at = self.up_at + RECOVERY_MS
        measured_at = self.up_at + RECOVERED_MS
        if cfg.down:
            deadline = max(deadline, finish_at + max_delay)
        stop_reason = ""
        while self._queue:
            time, _, event = heapq.heappop(self._queue)
            self.now = time
            event()
            if self.now < self.gst:
                continue
            top = max(n.replica.current_round for n in self.honest if n.replica is not None)
            if self.live_at_round is None and all(
                    len(n.disk.committed) - self.gst_heights.get(n.index, 0) >= cfg.liveness_commits
                    for n in self.honest if self._member(n, n.disk.epoch)):
                self.live_at_round = top
            if self.live_at_round is None and top > self.gst_round + live_rounds:
                stop_reason = f"no commits within {live_rounds} rounds after GST (round {self.gst_round})"
                break
            if self.live_at_round is not None and top >= cfg.rounds and not self._recovering() and (
                    not cfg.down or self.now >= finish_at or (self.result.recovery_ms >= 0
                                                                 and self.now >= measured_at)):
                break
            if self.now > deadline:
                stop_reason = "virtual time limit"
                break
            if self.result.safety_violations:
                break
        if self.live_at_round is None and not self.result.safety_violations:
            self.result.liveness_failures.append(stop_reason or "event queue drained")
        self._check_recovered()
        if cfg.down:
            self._measure_down()
        self.result.virtual_ms = self.now
        self.result.rounds = max((n.replica.current_round for n in self.honest if n.replica is not None), default=0)
        for node in self.nodes:
            if node.replica is not None:
                limits = node.replica.buffer_limits()
                for name, size in node.replica.buffer_sizes().items():
                    if size > limits[name]:
                        self.violation(f"node {node.index} buffer {name} holds {size} > bound {limits[name]}")
                for key, value in node.replica.counters.items():
                    self.result.counters[key] = self.result.counters.get(key, 0) + value
        return self.result


    def _recovering(self) -> bool:
        """A wiped replica, up and still in the epoch it was wiped in, has not recovered yet."""
        return any(self.nodes[i].up and (r := self.nodes[i].replica) is not None and r.vs.epoch == epoch
                   and not r.retired and r.safety_lost for i, epoch in self.wiped)

    def _check_recovered(self) -> None:
        """Every wiped replica still in its epoch and up at the end has recovered (liveness of the recovery: the
        others answer, a QC above its bound forms)."""
        recovered = 0
        for index, epoch in sorted(set(self.wiped)):
            node = self.nodes[index]
            replica = node.replica
            if replica is None or replica.vs.epoch != epoch or replica.retired or not node.up:
                continue
            if replica.safety_lost:
                if not self.result.safety_violations and not self.result.liveness_failures:
                    self.result.liveness_failures.append(f"wiped node {index} did not recover in epoch {epoch}")
            else:
                recovered += 1
        self.result.counters["wiped_recovered_in_epoch"] = recovered

    def _measure_down(self) -> None:
        r = self.result
        healthy_from = self.gst + HEALTHY_FROM_MS
        r.healthy_ms, r.degraded_ms = self.down_at - healthy_from, self.up_at - self.down_at
        r.healthy_blocks = sum(1 for t, _ in self.height_times if healthy_from <= t < self.down_at)
        r.degraded_blocks = sum(1 for t, _ in self.height_times if self.down_at <= t < self.up_at)
        if r.degraded_blocks == 0:
            r.liveness_failures.append(f"no commit while {len(self.down_nodes)} validator(s) were down")
        if r.recovery_ms < 0 and not r.safety_violations:
            r.liveness_failures.append(f"no block of a returned validator committed within {RECOVERY_MS} ms")
        times = [t for t, _ in self.height_times]
        r.recovered_ms = RECOVERED_MS
        r.recovered_blocks = bisect.bisect_left(times, self.up_at + RECOVERED_MS) - bisect.bisect_left(times, self.up_at)
        if r.healthy_blocks:
            need = BACK_RATIO * r.healthy_blocks * BACK_WINDOW_MS / r.healthy_ms
            for start in range(self.up_at, self.up_at + RECOVERED_MS - BACK_WINDOW_MS + 1, BACK_STEP_MS):
                blocks = bisect.bisect_left(times, start + BACK_WINDOW_MS) - bisect.bisect_left(times, start)
                if blocks >= need:
                    r.back_to_healthy_ms = start - self.up_at
                    break


def _signed_round(message: Message) -> tuple[int, int] | None:
    """(epoch, round) of a vote, timeout or proposal: a message signed for a round."""
    if isinstance(message, Vote | Timeout):
        return message.epoch, message.round
    if isinstance(message, Proposal):
        return message.block.header.epoch, message.block.header.round
    return None


def run_seed(config: SimConfig) -> RunResult:
    return Simulation(config).run()


def run_many(seeds: int, *, seed_start: int = 0, nodes: int = 4, byzantine: int = 0, rounds: int = 30,
             behaviours: tuple[str, ...] = (), all_restart: bool | None = None, crashes: bool = True,
             partitions: bool = True, reconfig: bool = False, leader_election: str = "reputation", down: int = 0,
             down_mode: str = "", wipes: bool = True, on_result: Callable[[RunResult], None] | None = None,
             clock: Callable[[], float] | None = None) -> dict[str, object]:
    """Run seeds seed_start .. seed_start+seeds-1 and summarise. With all_restart=None every fourth seed crashes
    and restarts the whole cluster at once. `clock` (e.g. time.perf_counter) only measures; it never steers a run."""
    started = clock() if clock else 0.0
    summary: dict[str, object] = {key: 0 for key in (*SUMMED_KEYS, *RECOVERY_KEYS)}
    summary["failed_seeds"] = []
    summary["max_recovery_ms"] = -1
    summary["max_back_to_healthy_ms"] = -1
    failures: list[dict[str, object]] = []
    for seed in range(seed_start, seed_start + seeds):
        restart_all = (seed % 4 == 3) if all_restart is None else all_restart
        result = run_seed(SimConfig(seed=seed, nodes=nodes, byzantine=byzantine, rounds=rounds,
                                    behaviours=behaviours, all_restart=restart_all, crashes=crashes,
                                    partitions=partitions, reconfig=reconfig, leader_election=leader_election,
                                    down=down, down_mode=down_mode, wipes=wipes))
        summary["runs"] += 1  # type: ignore[operator]
        summary["commits"] += result.commits  # type: ignore[operator]
        summary["rounds"] += result.rounds  # type: ignore[operator]
        summary["messages"] += result.messages  # type: ignore[operator]
        summary["evidence"] += result.evidence  # type: ignore[operator]
        summary["epoch_changes"] += result.epoch_changes  # type: ignore[operator]
        summary["leader_checks"] += result.leader_checks  # type: ignore[operator]
        for key in ("wipes", "wiped_recovered_in_epoch", "recovery_statements_signed"):
            summary[f"recovery_{key}"] += result.counters.get(key, 0)  # type: ignore[operator]
        if down:
            for key in ("healthy_blocks", "healthy_ms", "degraded_blocks", "degraded_ms"):
                summary[key] += getattr(result, key)  # type: ignore[operator]
            summary["recovered"] += int(result.recovery_ms >= 0)  # type: ignore[operator]
            summary["max_recovery_ms"] = max(summary["max_recovery_ms"], result.recovery_ms)  # type: ignore[call-overload]
            summary["recovered_blocks"] += result.recovered_blocks  # type: ignore[operator]
            summary["recovered_ms"] += result.recovered_ms  # type: ignore[operator]
            summary["never_back_to_healthy"] += int(result.back_to_healthy_ms < 0)  # type: ignore[operator]
            summary["max_back_to_healthy_ms"] = max(summary["max_back_to_healthy_ms"],  # type: ignore[call-overload]
                                                    result.back_to_healthy_ms)
        if result.safety_violations:
            summary["safety_violations"] += 1  # type: ignore[operator]
        if result.liveness_failures:
            summary["liveness_failures"] += 1  # type: ignore[operator]
        if not result.ok:
            failures.append({"seed": seed, "byzantine": {str(k): v for k, v in result.byzantine.items()},
                             "all_restart": restart_all,
                             "safety": result.safety_violations[:5], "liveness": result.liveness_failures[:2]})
            summary["failed_seeds"].append(seed)  # type: ignore[union-attr]
        if on_result is not None:
            on_result(result)
    seconds = (clock() - started) if clock else 0.0
    summary["seconds"] = round(seconds, 3)
    if clock and seconds > 0:
        summary["seeds_per_second"] = round(summary["runs"] / seconds, 2)  # type: ignore[operator]
        summary["rounds_per_second"] = round(summary["rounds"] / seconds, 1)  # type: ignore[operator]
    summary["failures"] = failures
    _down_rates(summary)
    return summary


# Summed over the runs of the replica simulator only: wipes, wiped replicas that recovered in their epoch (checked
# at the end of the run), recovery statements signed.
RECOVERY_KEYS: Final = ("recovery_wipes", "recovery_wiped_recovered_in_epoch", "recovery_recovery_statements_signed")
SUMMED_KEYS: Final = ("runs", "safety_violations", "liveness_failures", "commits", "rounds", "messages", "evidence",
                      "epoch_changes", "leader_checks", "healthy_blocks", "healthy_ms", "degraded_blocks",
                      "degraded_ms", "recovered", "recovered_blocks", "recovered_ms", "never_back_to_healthy")


def _down_rates(summary: dict[str, object]) -> None:
    """Committed blocks per virtual second, healthy and with validators down, over all runs of a summary."""
    if summary["healthy_ms"] and summary["degraded_ms"]:
        healthy = 1000 * summary["healthy_blocks"] / summary["healthy_ms"]  # type: ignore[operator]
        degraded = 1000 * summary["degraded_blocks"] / summary["degraded_ms"]  # type: ignore[operator]
        summary["healthy_blocks_per_s"] = round(healthy, 2)
        summary["degraded_blocks_per_s"] = round(degraded, 2)
        summary["degraded_ratio"] = round(degraded / healthy, 3) if healthy else 0.0
    if summary["healthy_ms"] and summary["recovered_ms"]:
        healthy = 1000 * summary["healthy_blocks"] / summary["healthy_ms"]  # type: ignore[operator]
        recovered = 1000 * summary["recovered_blocks"] / summary["recovered_ms"]  # type: ignore[operator]
        summary["recovered_blocks_per_s"] = round(recovered, 2)
        summary["recovered_ratio"] = round(recovered / healthy, 3) if healthy else 0.0


def merge_summaries(parts: list[dict[str, object]], seconds: float) -> dict[str, object]:
    """Combine run_many summaries of disjoint seed ranges (e.g. from worker processes); `seconds` is wall time."""
    merged: dict[str, object] = {key: sum(int(p[key]) for p in parts) for key in SUMMED_KEYS}  # type: ignore[call-overload]
    for key in RECOVERY_KEYS:
        if any(key in p for p in parts):
            merged[key] = sum(int(p.get(key, 0)) for p in parts)  # type: ignore[call-overload]
    merged["max_recovery_ms"] = max((int(p.get("max_recovery_ms", -1)) for p in parts), default=-1)  # type: ignore[call-overload]
    merged["max_back_to_healthy_ms"] = max((int(p.get("max_back_to_healthy_ms", -1)) for p in parts),  # type: ignore[call-overload]
                                           default=-1)
    _down_rates(merged)
    merged["failed_seeds"] = sorted(s for p in parts for s in p["failed_seeds"])  # type: ignore[attr-defined]
    merged["failures"] = sorted((f for p in parts for f in p["failures"]), key=lambda f: f["seed"])  # type: ignore[attr-defined]
    merged["seconds"] = round(seconds, 3)
    if seconds > 0:
        merged["seeds_per_second"] = round(merged["runs"] / seconds, 2)  # type: ignore[operator]
        merged["rounds_per_second"] = round(merged["rounds"] / seconds, 1)  # type: ignore[operator]
    return merged
