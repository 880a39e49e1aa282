"""Shared fixtures for consensus tests: deterministic keys, a validator set, and a synchronous cluster harness."""

from __future__ import annotations

import collections
import hashlib

from consensus import bls
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
from consensus.certificates import SignatureVerifier
from consensus.messages import (
    Block,
    BlockHeader,
    Proposal,
    QuorumCert,
    Vote,
    encode_message,
    genesis_block,
    genesis_qc,
    payload_hash,
    proposal_message,
    vote_message,
)
from consensus.replica import Replica, ReplicaConfig
from consensus.simulator import _secret_key as secret_key
from consensus.simulator import execute_payload, shared_verifier, simulated_validator_set

CHAIN = b"test-chain"
ROOT0 = hashlib.sha256(b"genesis root").digest()


def validator_set(n: int = 4):
    return simulated_validator_set(n)


def verifier() -> SignatureVerifier:
    return shared_verifier()


def genesis():
    g = genesis_block(CHAIN, 0)
    return g, genesis_qc(g, ROOT0)


def make_replica(index: int, n: int = 4, **kw) -> Replica:
    g, gqc = genesis()
    vs = validator_set(n)
    cfg = kw.pop("config", ReplicaConfig(chain_id=CHAIN, base_timeout_ms=100))
    return Replica(cfg, vs, me=vs.validators[index].id, secret_key=secret_key(index), anchor=kw.pop("anchor", g),
                   anchor_qc=kw.pop("anchor_qc", gqc), verifier=verifier(), **kw)


def sign_vote(index: int, round_: int, block_id: bytes, state_root: bytes, epoch: int = 0) -> Vote:
    sig = bls.get_backend().sign(secret_key(index), vote_message(CHAIN, epoch, round_, block_id, state_root))
    return Vote(epoch, round_, block_id, state_root, index, sig)


def make_qc(signers: list[int], round_: int, block_id: bytes, state_root: bytes, n: int = 4) -> QuorumCert:
    vs = validator_set(n)
    sigs = [sign_vote(i, round_, block_id, state_root).signature for i in signers]
    return QuorumCert(0, round_, block_id, state_root, vs.bitmap(signers), bls.get_backend().aggregate(sigs))


def make_block(parent: Block, round_: int, qc: QuorumCert, payload: bytes = b"p", n: int = 4) -> Block:
    vs = validator_set(n)
    header = BlockHeader(CHAIN, 0, round_, parent.header.height + 1, parent.id, vs.leader(round_),
                         payload_hash(payload), qc)
    return Block(header, payload)


def sign_proposal(block: Block, tc=None) -> Proposal:
    h = block.header
    sig = bls.get_backend().sign(secret_key(h.proposer), proposal_message(CHAIN, h.epoch, h.round, block.id))
    return Proposal(block, tc, sig)


def vid(i: int) -> bytes:
    return b"v%d" % i


class Cluster:
    """Replicas wired together with instant, lossless delivery (unless a node is isolated)."""

    def __init__(self, n: int = 4) -> None:
        self.n = n
        self.replicas = [make_replica(i, n) for i in range(n)]
        self.queue: collections.deque = collections.deque()
        self.commits: dict[int, list[Commit]] = {i: [] for i in range(n)}
        self.persisted: dict[int, list[PersistSafety]] = {i: [] for i in range(n)}
        self.evidence: list[ReportEvidence] = []
        self.timers: dict[int, int] = {}
        self.isolated: set[int] = set()
        self.log: dict[int, list] = {i: [] for i in range(n)}
        for i, r in enumerate(self.replicas):
            self.handle(i, r.start())

    def handle(self, i: int, actions: list) -> None:
        pending = list(actions)
        while pending:
            follow = []
            for a in pending:
                self.log[i].append(a)
                if isinstance(a, Send):
                    self.queue.append((i, int(a.to[1:]), encode_message(a.message)))
                elif isinstance(a, SyncBlocks):
                    self.queue.append((i, int(a.to[1:]), encode_message(a.request)))
                elif isinstance(a, Broadcast):
                    data = encode_message(a.message)
                    for j in range(self.n):
                        if j != i:
                            self.queue.append((i, j, data))
                elif isinstance(a, PersistSafety):
                    self.persisted[i].append(a)
                elif isinstance(a, SetTimer):
                    self.timers[i] = a.round
                elif isinstance(a, RequestPayload):
                    follow.append((a.round, b"payload-%d" % a.round, "payload"))
                elif isinstance(a, Execute):
                    follow.append((a.block.id, execute_payload(a.parent_state_root, a.block.payload), "exec"))
                elif isinstance(a, Commit):
                    self.commits[i].append(a)
                elif isinstance(a, ReportEvidence):
                    self.evidence.append(a)
            pending = []
            r = self.replicas[i]
            for x, y, kind in follow:
                pending.extend(r.on_payload(x, y) if kind == "payload" else r.on_executed(x, y))

    def run(self, max_steps: int = 100000) -> None:
        steps = 0
        while self.queue and steps < max_steps:
            src, dst, data = self.queue.popleft()
            steps += 1
            if src in self.isolated or dst in self.isolated:
                continue
            self.handle(dst, self.replicas[dst].on_bytes(vid(src), data))

    def fire_timers(self) -> None:
        for i in range(self.n):
            if i not in self.isolated:
                self.handle(i, self.replicas[i].on_timeout(self.timers[i]))

    def heights(self) -> list[int]:
        return [r.committed_height for r in self.replicas]
