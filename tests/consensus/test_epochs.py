"""Epoch changes: epoch-ending blocks, the empty reconfiguration suffix, retiring, proofs light clients follow."""

from __future__ import annotations

import dataclasses

import pytest

from consensus.actions import Broadcast, Execute, RequestPayload
from consensus.certificates import EpochChainError, verify_commit_certificate, verify_epoch_chain
from consensus.codec import CodecError
from consensus.messages import EpochChange, EpochChangeProof, decode_message, encode_message
from consensus.replica import Replica, ReplicaConfig
from consensus.simulator import execute_payload, simulated_validator_set
from consensus.validators import ValidatorSet
from tests.consensus.helpers import CHAIN, Cluster, secret_key, validator_set, verifier, vid

END_HEIGHT = 3


class EpochCluster(Cluster):
    """The application declares the block at END_HEIGHT epoch-ending with `next_set`."""

    def __init__(self, n: int, next_set: ValidatorSet) -> None:
        self.next_set = next_set
        self.executed_heights: list[int] = []
        super().__init__(n)

    def handle(self, i: int, actions: list) -> None:
        follow = []
        for a in actions:
            r = self.replicas[i]
            if isinstance(a, Execute) and r.vs.epoch == 0:
                self.log[i].append(a)
                self.executed_heights.append(a.block.header.height)
                root = execute_payload(a.parent_state_root, a.block.payload)
                nxt = self.next_set if a.block.header.height == END_HEIGHT else None
                follow.append((r.on_executed, (a.block.id, root, nxt)))
            elif isinstance(a, RequestPayload):
                self.log[i].append(a)
                follow.append((r.on_payload, (a.round, b"payload-%d" % a.round)))
            else:
                super().handle(i, [a])
        for method, args in follow:
            self.handle(i, method(*args))


def _end_epoch(cluster: EpochCluster) -> None:
    cluster.run(max_steps=2000)
    for _ in range(10):
        if all(r.retired for i, r in enumerate(cluster.replicas) if i not in cluster.isolated):
            return
        cluster.fire_timers()
        cluster.run(max_steps=2000)


def test_epoch_ending_block_ends_the_epoch_and_its_proof_verifies():
    vs0 = validator_set(4)
    vs1 = ValidatorSet(1, simulated_validator_set(5).validators)
    c = EpochCluster(4, vs1)
    _end_epoch(c)
    proofs = [r.epoch_change for r in c.replicas]
    assert all(r.retired for r in c.replicas)
    assert all(p is not None and p.cert.height == END_HEIGHT for p in proofs)
    # Nothing after the epoch-ending block is committed or executed in the old epoch.
    for i in range(4):
        assert max(a.block.header.height for a in c.commits[i]) == END_HEIGHT
    assert max(c.executed_heights) == END_HEIGHT
    proof = proofs[0]
    for header in proof.cert.headers[1:]:
        assert header.epoch == 0
    assert verify_commit_certificate(vs0, proof.cert, chain_id=CHAIN)
    assert proof.cert.epoch == 0
    reached = verify_epoch_chain(vs0, [proof], chain_id=CHAIN, verifier=verifier())
    assert reached.digest == vs1.digest and reached.epoch == 1
    assert EpochChangeProof.decode(proof.encode()) == proof
    assert verify_epoch_chain(vs0, [], chain_id=CHAIN) is vs0
    # A retired replica does not time out or propose again.
    assert c.replicas[0].on_timeout(c.replicas[0].current_round) == []


def test_epoch_chain_refuses_tampered_proofs():
    vs0 = validator_set(4)
    vs1 = ValidatorSet(1, simulated_validator_set(5).validators)
    c = EpochCluster(4, vs1)
    _end_epoch(c)
    proof = c.replicas[0].epoch_change
    other = simulated_validator_set(6).entries()
    with pytest.raises(EpochChainError) as err:
        verify_epoch_chain(vs0, [dataclasses.replace(proof, next_validators=other)], chain_id=CHAIN)
    assert err.value.code == EpochChainError.NOT_EPOCH_ENDING
    with pytest.raises(EpochChainError) as err:
        verify_epoch_chain(vs1, [proof], chain_id=CHAIN)
    assert err.value.code == EpochChainError.WRONG_EPOCH
    bad_pop = ((vs1.validators[0].id, vs1.validators[0].public_key, vs1.validators[1].pop, 1),) + vs1.entries()[1:]
    with pytest.raises(EpochChainError) as err:
        verify_epoch_chain(vs0, [dataclasses.replace(proof, next_validators=bad_pop)], chain_id=CHAIN)
    assert err.value.code == EpochChainError.BAD_NEXT_SET
    short = dataclasses.replace(proof, cert=dataclasses.replace(proof.cert, headers=proof.cert.headers[:1]))
    with pytest.raises(EpochChainError) as err:
        verify_epoch_chain(vs0, [short], chain_id=CHAIN)
    assert err.value.code == EpochChainError.BAD_CERT
    # An ordinary commit certificate is not an epoch-change proof.
    ordinary = c.commits[0][0].certificate
    with pytest.raises(EpochChainError):
        verify_epoch_chain(vs0, [EpochChangeProof(ordinary, vs1.entries())], chain_id=CHAIN)


def test_next_epoch_commits_and_a_light_client_follows_two_changes():
    vs0 = validator_set(4)
    vs1 = ValidatorSet(1, simulated_validator_set(5).validators)
    c = EpochCluster(4, vs1)
    _end_epoch(c)
    proof0 = c.replicas[0].epoch_change
    ending = next(a for a in c.commits[0] if a.block.header.height == END_HEIGHT)
    # Epoch 1: five validators (v4 joins), started from the epoch-ending block.
    fresh = [Replica(ReplicaConfig(chain_id=CHAIN, base_timeout_ms=100), vs1, me=vid(i), secret_key=secret_key(i),
                     anchor=ending.block, anchor_qc=proof0.cert.headers[1].qc, verifier=verifier(),
                     epoch_proofs=(proof0,)) for i in range(5)]
    vs2 = ValidatorSet(2, simulated_validator_set(5).validators[1:])  # v0 leaves
    c2 = Cluster.__new__(Cluster)
    Cluster.__init__(c2, 4)
    c2.n = 5
    c2.replicas = fresh
    c2.queue.clear()
    c2.commits = {i: [] for i in range(5)}
    c2.log = {i: [] for i in range(5)}
    c2.persisted = {i: [] for i in range(5)}
    target = {}

    def handle(i: int, actions: list, base=c2.handle) -> None:
        plain = []
        for a in actions:
            if isinstance(a, Execute):
                root = execute_payload(a.parent_state_root, a.block.payload)
                h = a.block.header.height
                if not target:
                    target["h"] = h + 2
                nxt = vs2 if h == target["h"] else None
                handle(i, fresh[i].on_executed(a.block.id, root, nxt))
            elif isinstance(a, RequestPayload):
                handle(i, fresh[i].on_payload(a.round, b"payload-%d" % a.round))
            else:
                plain.append(a)
        if plain:
            base(i, plain)

    c2.handle = handle
    for i, r in enumerate(fresh):
        handle(i, r.start())
    for _ in range(4):
        c2.run(max_steps=3000)
        c2.fire_timers()
    c2.run(max_steps=3000)
    assert all(r.retired for r in fresh)
    proof1 = fresh[0].epoch_change
    assert proof1.epoch == 1 and proof1.cert.height == target["h"]
    assert verify_epoch_chain(vs0, [proof0, proof1], chain_id=CHAIN).digest == vs2.digest
    # Commits of epoch 1 verify under the set the chain leads to, not under the genesis set.
    first = c2.commits[0][0].certificate
    assert verify_commit_certificate(vs1, first, chain_id=CHAIN)
    assert not verify_commit_certificate(vs0, first, chain_id=CHAIN)
    with pytest.raises(EpochChainError):
        verify_epoch_chain(vs0, [proof1], chain_id=CHAIN)


def test_lagging_replica_learns_the_epoch_change_and_commits_the_ending_block():
    vs1 = ValidatorSet(1, simulated_validator_set(5).validators)
    c = EpochCluster(4, vs1)
    c.isolated.add(3)
    _end_epoch(c)
    assert all(r.retired for r in c.replicas[:3])
    lagging = c.replicas[3]
    assert not lagging.retired
    c.isolated.clear()
    for _ in range(3):
        c.handle(3, lagging.on_timeout(c.timers[3]))
        c.run(max_steps=2000)
    assert lagging.learned_epoch_change and lagging.learned_epoch_change[0].epoch == 0
    assert lagging.retired and lagging.epoch_change is not None
    assert lagging.committed_height == END_HEIGHT
    assert [a.block.header.height for a in c.commits[3]] == list(range(1, END_HEIGHT + 1))


def test_removed_validator_that_missed_the_end_learns_it_from_the_next_epoch():
    """v3 leaves at the change and misses the end of epoch 0; its peers all moved to epoch 1, where it is not a
    validator. Their replicas still answer its epoch-0 messages with the EpochChange (regression: they dropped them
    as from a non-validator and it stayed in the ended epoch forever, simulator seed 30011 --reconfig)."""
    members = simulated_validator_set(5).validators
    vs1 = ValidatorSet(1, [v for i, v in enumerate(members) if i != 3])  # v3 leaves, v4 joins
    c = EpochCluster(4, vs1)
    c.isolated.add(3)
    _end_epoch(c)
    proof0 = c.replicas[0].epoch_change
    ending = next(a for a in c.commits[0] if a.block.header.height == END_HEIGHT)
    # v0..v2 now run their epoch-1 replicas, started from the ending block with their recent commits (as the node
    # does); not started: only their answers to v3 matter here.
    c.replicas[:3] = [
        Replica(
            ReplicaConfig(chain_id=CHAIN, base_timeout_ms=100),
            vs1,
            me=vid(i),
            secret_key=secret_key(i),
            anchor=ending.block,
            anchor_qc=proof0.cert.headers[1].qc,
            verifier=verifier(),
            epoch_proofs=(proof0,),
            history=[(a.block, a.certificate) for a in c.commits[i][:-1]],
        )
        for i in range(3)
    ]
    lagging = c.replicas[3]
    assert not lagging.retired and vid(3) not in vs1.index_of
    c.queue.clear()
    c.isolated = {4}  # the joining validator has no replica here
    c.handle(3, lagging.on_timeout(c.timers[3]))
    c.run(max_steps=2000)
    assert sum(r.counters["epoch_change_sent"] for r in c.replicas[:3]) == 3  # one answer per peer
    assert lagging.learned_epoch_change and lagging.learned_epoch_change[0].epoch == 0
    assert lagging.retired and lagging.epoch_change is not None
    assert [a.block.header.height for a in c.commits[3]] == list(range(1, END_HEIGHT + 1))
    # Bounded: its next messages of the ended epoch are not each answered again.
    for r in c.replicas[:3]:
        r.on_message(vid(3), next(a.message for a in c.log[3] if isinstance(a, Broadcast)))
    assert sum(r.counters["epoch_change_sent"] for r in c.replicas[:3]) == 3


def test_epoch_change_message_round_trips_and_bad_proofs_are_dropped():
    vs1 = ValidatorSet(1, simulated_validator_set(5).validators)
    c = EpochCluster(4, vs1)
    c.isolated.add(3)
    _end_epoch(c)
    proof = c.replicas[0].epoch_change
    msg = EpochChange((proof,))
    assert decode_message(encode_message(msg)) == msg
    forged = EpochChange((dataclasses.replace(proof, next_validators=simulated_validator_set(6).entries()),))
    lagging = c.replicas[3]
    lagging.on_message(vid(0), forged)
    assert lagging.counters["dropped_bad_epoch_change"] == 1 and not lagging.learned_epoch_change


def test_malformed_epoch_change_messages_raise_codec_errors_only():
    vs1 = ValidatorSet(1, simulated_validator_set(5).validators)
    c = EpochCluster(4, vs1)
    _end_epoch(c)
    proof = c.replicas[0].epoch_change
    data = encode_message(EpochChange((proof,)))
    for cut in range(0, len(data), max(1, len(data) // 40)):
        with pytest.raises(CodecError):
            decode_message(data[:cut])
    with pytest.raises(CodecError):
        decode_message(encode_message(EpochChange(())))
    with pytest.raises(CodecError):  # proofs must be for consecutive epochs
        decode_message(encode_message(EpochChange((proof, proof))))
    # A retired replica answers a peer's messages of the ended epoch with the proof: not every time, but again later.
    retired = c.replicas[1]
    proposals = [a.message for a in c.log[2] if type(a).__name__ == "Broadcast" and type(a.message).__name__ == "Proposal"]
    assert proposals
    sent = retired.counters["epoch_change_sent"]
    for _ in range(3):
        retired.on_message(vid(2), proposals[-1])
    assert retired.counters["epoch_change_sent"] - sent <= 1
    for _ in range(17):
        out = retired.on_message(vid(2), proposals[-1])
        assert all(isinstance(a.message, EpochChange) for a in out)
    assert retired.counters["epoch_change_sent"] - sent >= 1
