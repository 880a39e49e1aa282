"""Voting, locking and commit rules, persistence ordering, restore, evidence and Byzantine input of one replica."""

from __future__ import annotations

import dataclasses

import pytest

from consensus.actions import Broadcast, Commit, Execute, PersistSafety, ReportEvidence, Send, SetTimer, SyncBlocks
from consensus.certificates import verify_commit_certificate, verify_evidence
from consensus.messages import (
    Block,
    BlockHeader,
    Proposal,
    SafetyState,
    SyncRequest,
    SyncResponse,
    Timeout,
    Vote,
    encode_message,
    payload_hash,
)
from consensus.replica import Replica, ReplicaConfig
from consensus.simulator import execute_payload
from tests.consensus.helpers import (
    CHAIN,
    ROOT0,
    Cluster,
    genesis,
    make_block,
    make_qc,
    make_replica,
    secret_key,
    sign_proposal,
    sign_vote,
    validator_set,
    verifier,
    vid,
)


def answer_exec(replica, actions):
    """Answer Execute actions like the simulated application; return all actions seen."""
    seen = list(actions)
    pending = list(actions)
    while pending:
        follow = []
        for a in pending:
            if isinstance(a, Execute):
                follow.extend(replica.on_executed(a.block.id, execute_payload(a.parent_state_root, a.block.payload)))
        seen.extend(follow)
        pending = follow
    return seen


def votes_in(actions):
    return [a.message for a in actions if isinstance(a, Send) and isinstance(a.message, Vote)]


def chain_of(length: int, n: int = 4):
    """Blocks b1..b_length in consecutive rounds 1..length, each with a real QC on its parent."""
    g, gqc = genesis()
    blocks, roots = [g], [ROOT0]
    qc = gqc
    for r in range(1, length + 1):
        b = make_block(blocks[-1], r, qc, payload=b"blk%d" % r, n=n)
        root = execute_payload(roots[-1], b.payload)
        blocks.append(b)
        roots.append(root)
        qc = make_qc([0, 1, 2], r, b.id, root, n=n)
    return blocks, roots, qc


# ------------------------------------------------------------------------------------------------------------------
# Happy path and commit rule


def test_cluster_commits_same_blocks_with_valid_certificates():
    c = Cluster(4)
    c.run(max_steps=400)
    heights = c.heights()
    assert min(heights) >= 5
    vs = validator_set(4)
    reference = {a.block.header.height: a.block.id for a in c.commits[0]}
    for i in range(4):
        seen = [a.block.header.height for a in c.commits[i]]
        assert seen == list(range(1, len(seen) + 1)), "commits come once each, in height order"
        for a in c.commits[i]:
            assert reference.get(a.block.header.height, a.block.id) == a.block.id
            assert verify_commit_certificate(vs, a.certificate, chain_id=CHAIN)
            assert a.certificate.block_id == a.block.id
    # A new proposal every round: the round number tracks the height (pipelining).
    assert c.replicas[0].current_round >= max(heights)


def test_two_chain_needs_consecutive_rounds():
    blocks, roots, _ = chain_of(3)
    r = make_replica(1)
    answer_exec(r, r.start())
    # b1 (round 1) and b2 (round 2); proposal of round 4 certifies b2 but skips round 3 -> use TC-less path invalid,
    # so instead deliver b3 in round 3 carrying QC(b2): b1 commits (rounds 1,2 consecutive).
    out = []
    for b in blocks[1:4]:
        out += answer_exec(r, r.on_message(vid(b.header.proposer), sign_proposal(b)))
    commits = [a for a in out if isinstance(a, Commit)]
    assert [a.block.id for a in commits] == [blocks[1].id]
    assert commits[0].certificate.state_root == roots[1]


def test_no_commit_without_consecutive_child():
    g, gqc = genesis()
    r = make_replica(2)
    answer_exec(r, r.start())
    b1 = make_block(g, 1, gqc, b"one")
    root1 = execute_payload(ROOT0, b"one")
    qc1 = make_qc([0, 1, 2], 1, b1.id, root1)
    # Round 2 timed out (TC), b3 in round 3 extends b1; QC on b3 -> b1 and b3 not consecutive: no commit of b1.
    tc = _tc_for_round(2, high_qc_round=1)
    b3 = make_block(b1, 3, qc1, b"three")
    root3 = execute_payload(root1, b"three")
    qc3 = make_qc([0, 1, 3], 3, b3.id, root3)
    b4 = make_block(b3, 4, qc3, b"four")
    out = answer_exec(r, r.on_message(vid(1), sign_proposal(b1)))
    out += answer_exec(r, r.on_message(vid(3), sign_proposal(b3, tc)))
    out += answer_exec(r, r.on_message(vid(0), sign_proposal(b4)))
    assert not [a for a in out if isinstance(a, Commit)]
    assert r.committed_height == 0


def _tc_for_round(round_: int, high_qc_round: int, signers=(0, 1, 2)):
    from consensus import bls
    from consensus.messages import TimeoutCert, TimeoutGroup, timeout_message
    from tests.consensus.helpers import secret_key

    vs = validator_set(4)
    sigs = [bls.get_backend().sign(secret_key(i), timeout_message(CHAIN, 0, round_, high_qc_round)) for i in signers]
    return TimeoutCert(0, round_, (TimeoutGroup(high_qc_round, vs.bitmap(list(signers)), bls.get_backend()
                                                .aggregate(sigs)),))


# ------------------------------------------------------------------------------------------------------------------
# Voting rules


def test_votes_once_per_round_and_persists_first():
    blocks, _, _ = chain_of(1)
    r = make_replica(3)
    answer_exec(r, r.start())
    out = answer_exec(r, r.on_message(vid(1), sign_proposal(blocks[1])))
    idx_persist = next(i for i, a in enumerate(out) if isinstance(a, PersistSafety))
    idx_vote = next(i for i, a in enumerate(out) if isinstance(a, Send) and isinstance(a.message, Vote))
    assert idx_persist < idx_vote, "safety state must be persisted before the vote leaves"
    persisted = out[idx_persist].state
    assert persisted.highest_vote_round == 1
    assert blocks[1] in out[idx_persist].blocks
    vote = out[idx_vote].message
    assert out[idx_vote].to == r.leader_of(2)
    # A second, conflicting proposal in round 1 gets no vote and yields evidence against the leader.
    other = Block(dataclasses.replace(blocks[1].header, payload_hash=payload_hash(b"x")), b"x")
    out2 = answer_exec(r, r.on_message(vid(1), sign_proposal(other)))
    assert not votes_in(out2)
    ev = [a.evidence for a in out2 if isinstance(a, ReportEvidence)]
    assert len(ev) == 1 and ev[0].validator == 1 and verify_evidence(validator_set(4), CHAIN, ev[0])
    assert vote.block_id == blocks[1].id


def test_refuses_unjustified_proposal():
    g, gqc = genesis()
    r = make_replica(1)
    answer_exec(r, r.start())
    b1 = make_block(g, 1, gqc, b"one")
    root1 = execute_payload(ROOT0, b"one")
    qc1 = make_qc([0, 1, 2], 1, b1.id, root1)
    answer_exec(r, r.on_message(vid(1), sign_proposal(b1)))
    # Round 3 block extending QC(1) without a TC for round 2: refused.
    b3 = make_block(b1, 3, qc1, b"three")
    out = answer_exec(r, r.on_message(vid(3), sign_proposal(b3)))
    assert not votes_in(out)
    assert r.counters["dropped_unjustified"] == 1
    # TC(2) whose highest QC round (1) is <= the block's QC round: justified.
    out = answer_exec(r, r.on_message(vid(3), sign_proposal(b3, _tc_for_round(2, high_qc_round=1))))
    assert [v.round for v in votes_in(out)] == [3]


def test_tc_with_higher_qc_round_than_block_is_refused():
    """The lock: after a TC reporting a QC of round 2, a block extending only a round-1 QC gets no vote."""
    blocks, _roots, _ = chain_of(2)
    qc1 = blocks[2].header.qc
    r = make_replica(0)
    answer_exec(r, r.start())
    answer_exec(r, r.on_message(vid(1), sign_proposal(blocks[1])))
    answer_exec(r, r.on_message(vid(2), sign_proposal(blocks[2])))
    bad = make_block(blocks[1], 4, qc1, b"fork")
    out = answer_exec(r, r.on_message(vid(0), sign_proposal(bad, _tc_for_round(3, high_qc_round=2))))
    assert not votes_in(out) and r.counters["dropped_unjustified"] == 1


def test_no_vote_after_timeout_in_same_round():
    blocks, _, _ = chain_of(1)
    r = make_replica(3)
    answer_exec(r, r.start())
    out = r.on_timeout(1)
    kinds = [type(a) for a in out]
    assert PersistSafety in kinds and Broadcast in kinds
    assert kinds.index(PersistSafety) < kinds.index(Broadcast)
    timeout = next(a.message for a in out if isinstance(a, Broadcast))
    assert isinstance(timeout, Timeout) and timeout.round == 1
    out = answer_exec(r, r.on_message(vid(1), sign_proposal(blocks[1])))
    assert not votes_in(out)
    # The timer fires again in the same round: the same timeout is re-broadcast, nothing new is signed.
    again = r.on_timeout(1)
    assert [a.message for a in again if isinstance(a, Broadcast)] == [timeout]
    assert not [a for a in again if isinstance(a, PersistSafety)]


def test_restored_replica_never_signs_conflicting_vote():
    blocks, _, _ = chain_of(1)
    r = make_replica(3)
    answer_exec(r, r.start())
    out = answer_exec(r, r.on_message(vid(1), sign_proposal(blocks[1])))
    state = [a for a in out if isinstance(a, PersistSafety)][-1].state
    stored = [b for a in out if isinstance(a, PersistSafety) for b in a.blocks]
    # Crash; restart from the persisted state (round-tripped through its encoding).
    state = SafetyState.decode(state.encode())
    r2 = make_replica(3, safety=state, stored_blocks=stored)
    answer_exec(r2, r2.start())
    other = Block(dataclasses.replace(blocks[1].header, payload_hash=payload_hash(b"x")), b"x")
    out = answer_exec(r2, r2.on_message(vid(1), sign_proposal(other)))
    out += answer_exec(r2, r2.on_message(vid(1), sign_proposal(blocks[1])))
    assert not votes_in(out)
    assert r2.current_round == 1
    # Its timeout for round 1 is allowed (a timeout is not a vote for a block) and carries the right QC.
    t = next(a.message for a in r2.on_timeout(1) if isinstance(a, Broadcast))
    assert t.round == 1


def test_restored_leader_does_not_propose_twice():
    c = Cluster(4)
    leader = c.replicas[1]  # leads round 1
    log = c.log[1]
    props = [i for i, a in enumerate(log) if isinstance(a, Broadcast) and isinstance(a.message, Proposal)]
    assert len(props) == 1
    persists = [i for i, a in enumerate(log) if isinstance(a, PersistSafety) and a.state.last_proposed_round == 1]
    assert persists and persists[0] < props[0], "last_proposed_round is persisted before the proposal leaves"
    state = [a for a in c.persisted[1]][-1].state
    assert state.last_proposed_round == 1
    r2 = make_replica(1, safety=state)
    out = answer_exec(r2, r2.start())
    assert not [a for a in out if isinstance(a, Broadcast)]
    assert leader.current_round == 1


def test_all_restart_from_persisted_state_resumes():
    c = Cluster(4)
    c.run(max_steps=120)
    before = c.heights()
    assert min(before) >= 2
    c.queue.clear()
    # Everyone restarts at once from disk: safety state, stored blocks, last commit.
    fresh = []
    for i in range(4):
        state = c.persisted[i][-1].state
        stored = [b for p in c.persisted[i] for b in p.blocks]
        last = c.commits[i][-1]
        # The committed blocks below the anchor: leader election reads them (as the node hands them over).
        history = [(a.block, a.certificate) for a in c.commits[i][:-1]]
        fresh.append(make_replica(i, safety=state, stored_blocks=stored, anchor=last.block,
                                  anchor_qc=last.certificate.headers[1].qc, history=history))
    c.replicas = fresh
    for i, r in enumerate(fresh):
        c.handle(i, r.start())
    c.run(max_steps=200)
    for _ in range(3):
        c.fire_timers()
        c.run(max_steps=300)
    assert min(c.heights()) > max(before)


def _restart_after_losing_safety_state(safety_lost: bool):
    """Replica 3 votes for a few rounds, loses its safety state and restarts from its last commit (above genesis).
    It is then shown, in order, every proposal of the run, with a conflicting proposal for the last round it voted
    in placed before the genuine one. Returns (cluster, restarted replica, round it voted in, actions after restart,
    height it restarted from)."""
    c = Cluster(4)
    c.run(max_steps=120)
    voted = c.persisted[3][-1].state.highest_vote_round
    assert voted >= 3
    last = c.commits[3][-1]
    assert last.block.header.height > 0
    proposals = sorted((a.message for i in range(4) for a in c.log[i]
                        if isinstance(a, Broadcast) and isinstance(a.message, Proposal)),
                       key=lambda p: p.block.header.round)
    c.queue.clear()
    r2 = make_replica(3, anchor=last.block, anchor_qc=last.certificate.headers[1].qc, safety_lost=safety_lost)
    c.replicas[3] = r2
    mark = len(c.log[3])
    c.handle(3, r2.start())
    for p in proposals:
        h = p.block.header
        if h.round == voted:
            other = Block(dataclasses.replace(h, payload_hash=payload_hash(b"other")), b"other")
            c.handle(3, r2.on_message(vid(h.proposer), sign_proposal(other)))
        c.handle(3, r2.on_message(vid(h.proposer), p))
    return c, r2, voted, c.log[3][mark:], last.block.header.height


def _signed_by_me(actions):
    return [a for a in actions if isinstance(a, PersistSafety) or (isinstance(a, Send) and isinstance(a.message, Vote))
            or (isinstance(a, Broadcast) and isinstance(a.message, (Vote, Timeout, Proposal)))]


def test_replica_restarted_without_safety_state_can_double_vote_unless_told():
    """The defect: without its safety state (and without safety_lost) a replica votes again in a round it voted in,
    here for a conflicting block: equivocation by an honest node."""
    _, _, voted, after, _ = _restart_after_losing_safety_state(safety_lost=False)
    assert [v.round for v in votes_in(after)].count(voted) == 1


def test_replica_with_lost_safety_state_never_signs_again_in_its_epoch():
    c, r2, voted, after, height = _restart_after_losing_safety_state(safety_lost=True)
    assert r2.status()["safety_lost"] == 1
    # It reached the point of voting (the proposals were valid and executed) and refused.
    assert r2.counters["vote_refused_safety_lost"] >= 1
    assert r2.current_round > voted
    assert not _signed_by_me(after)
    # Its timer fires: no timeout is signed (a timeout is a signature in the round too).
    assert not _signed_by_me(r2.on_timeout(r2.current_round))
    assert r2.counters["timeout_refused_safety_lost"] >= 1
    # The others (a quorum of 3) keep committing; it follows them as an observer, still signing nothing, also in
    # rounds it leads (no proposal) and in rounds far above the one it voted in.
    before = c.heights()
    mark = len(c.log[3])
    c.run(max_steps=400)
    for _ in range(4):
        c.fire_timers()
        c.run(max_steps=400)
    assert min(c.heights()[:3]) > max(before[:3])
    assert r2.committed_height > height
    assert r2.current_round > voted + 4
    assert not _signed_by_me(c.log[3][mark:])
    assert r2.counters["proposal_refused_safety_lost"] >= 1


def test_replica_with_lost_safety_state_votes_again_in_the_next_epoch():
    """What resumes its voting: the replica of the next epoch (fresh safety state, every signed message names its
    epoch, so nothing it signed before can conflict)."""
    from consensus.validators import ValidatorSet

    c, _, _, _, _ = _restart_after_losing_safety_state(safety_lost=True)
    last = c.commits[0][-1]
    vs1 = ValidatorSet(1, validator_set(4).validators)
    c.replicas = [Replica(ReplicaConfig(chain_id=CHAIN, base_timeout_ms=100), vs1, me=vid(i),
                          secret_key=secret_key(i), anchor=last.block, anchor_qc=last.certificate.headers[1].qc,
                          verifier=verifier()) for i in range(4)]
    c.queue.clear()
    mark = len(c.log[3])
    for i, r in enumerate(c.replicas):
        c.handle(i, r.start())
    c.run(max_steps=300)
    assert [v for v in votes_in(c.log[3][mark:]) if v.epoch == 1]
    assert c.replicas[3].status()["safety_lost"] == 0


def test_safety_lost_flag_requires_no_stored_state():
    c = Cluster(4)
    state = c.persisted[1][-1].state
    with pytest.raises(ValueError):
        make_replica(1, safety=state, safety_lost=True)
    # The normal restart path is unchanged by the flag's existence: it defaults to off.
    assert make_replica(1, safety=state).status()["safety_lost"] == 0


# ------------------------------------------------------------------------------------------------------------------
# Votes, QCs, evidence at the leader


def test_leader_forms_qc_and_reports_double_vote():
    blocks, roots, _ = chain_of(1)
    leader = make_replica(2)  # leads round 2: collects round-1 votes
    answer_exec(leader, leader.start())
    answer_exec(leader, leader.on_message(vid(1), sign_proposal(blocks[1])))
    v0 = sign_vote(0, 1, blocks[1].id, roots[1])
    assert leader.on_message(vid(0), v0) == []
    # Double vote by validator 0: evidence.
    v0b = sign_vote(0, 1, blocks[1].id, b"\x01" * 32)
    out = leader.on_message(vid(0), v0b)
    ev = [a.evidence for a in out if isinstance(a, ReportEvidence)]
    assert len(ev) == 1 and ev[0].validator == 0 and verify_evidence(validator_set(4), CHAIN, ev[0])
    # Duplicate vote: counted, no effect.
    leader.on_message(vid(0), v0)
    assert leader.counters["dropped_duplicate"] >= 1
    # Vote from someone else's identity (spoofed): dropped.
    leader.on_message(vid(3), sign_vote(1, 1, blocks[1].id, roots[1]))
    assert leader.counters["dropped_spoofed"] == 1
    # Third matching vote (own vote + 0 + 1) forms the QC: round 2 starts and the leader asks for a payload.
    out = leader.on_message(vid(1), sign_vote(1, 1, blocks[1].id, roots[1]))
    assert leader.current_round == 2
    assert leader.high_qc.round == 1 and leader.high_qc.block_id == blocks[1].id


def test_bad_vote_signature_does_not_block_qc():
    blocks, roots, _ = chain_of(1)
    leader = make_replica(2)
    answer_exec(leader, leader.start())
    answer_exec(leader, leader.on_message(vid(1), sign_proposal(blocks[1])))
    bad = dataclasses.replace(sign_vote(0, 1, blocks[1].id, roots[1]), signature=sign_vote(0, 9, b"\0" * 32,
                                                                                            b"\0" * 32).signature)
    leader.on_message(vid(0), bad)
    leader.on_message(vid(1), sign_vote(1, 1, blocks[1].id, roots[1]))
    assert leader.current_round == 1, "a bad signature must not count toward the quorum"
    assert leader.counters["dropped_bad_signature"] == 1
    leader.on_message(vid(0), sign_vote(0, 1, blocks[1].id, roots[1]))
    assert leader.current_round == 2


# ------------------------------------------------------------------------------------------------------------------
# Byzantine input


def test_garbage_and_non_validators_are_counted_never_raise():
    r = make_replica(0)
    r.start()
    assert r.on_bytes(vid(1), b"\xff\x00garbage") == []
    assert r.on_bytes(vid(1), b"") == []
    assert r.on_bytes(b"stranger", encode_message(sign_vote(1, 1, b"\0" * 32, b"\0" * 32))) == []
    assert r.counters["dropped_non_validator"] == 1
    assert sum(v for k, v in r.counters.items() if k.startswith("dropped_codec")) == 2


def test_far_future_and_stale_votes_are_dropped_and_bounded():
    r = make_replica(2)
    r.start()
    r.on_message(vid(0), sign_vote(0, 1 + 4 * 1000, b"\1" * 32, b"\1" * 32))  # leader(4001+1)=2: far future
    assert r.counters["dropped_far_future"] == 1
    r.on_message(vid(0), sign_vote(0, 2, b"\1" * 32, b"\1" * 32))  # leader(3) = 3, not us
    assert r.counters["dropped_not_leader"] == 1


def test_oversized_payload_refused():
    g, gqc = genesis()
    cfg = ReplicaConfig(chain_id=CHAIN, max_payload_bytes=16)
    r = make_replica(0, config=cfg)
    r.start()
    big = make_block(g, 1, gqc, b"x" * 17)
    out = r.on_message(vid(1), sign_proposal(big))
    assert not votes_in(out) and r.counters["dropped_oversized"] == 1


def test_proposal_from_wrong_leader_or_bad_signature_dropped():
    g, gqc = genesis()
    r = make_replica(0)
    r.start()
    b1 = make_block(g, 1, gqc, b"one")
    wrong = Block(dataclasses.replace(b1.header, proposer=2), b1.payload)
    r.on_message(vid(2), sign_proposal(wrong))
    assert r.counters["dropped_bad_proposer"] == 1
    forged = dataclasses.replace(sign_proposal(b1), signature=sign_proposal(make_block(g, 1, gqc, b"z")).signature)
    r.on_message(vid(1), forged)
    assert r.counters["dropped_bad_signature"] == 1


def test_forged_qc_in_header_rejected():
    g, gqc = genesis()
    b1 = make_block(g, 1, gqc, b"one")
    root1 = execute_payload(ROOT0, b"one")
    weak = make_qc([0, 1], 1, b1.id, root1)  # 2 of 4: below quorum
    b2 = make_block(b1, 2, weak, b"two")
    r = make_replica(3)
    answer_exec(r, r.start())
    answer_exec(r, r.on_message(vid(1), sign_proposal(b1)))
    out = answer_exec(r, r.on_message(vid(2), sign_proposal(b2)))
    assert not votes_in(out) and r.counters["dropped_bad_certificate"] == 1


# ------------------------------------------------------------------------------------------------------------------
# Sync


def test_lagging_replica_catches_up_by_sync():
    c = Cluster(4)
    c.isolated = {3}
    for _ in range(4):
        c.run(max_steps=300)
        c.fire_timers()
    c.run(max_steps=300)
    assert c.replicas[3].committed_height == 0 and min(c.heights()[:3]) >= 4
    c.isolated = set()
    c.queue.clear()
    # Round sync: the laggard's timeout reaches the others, they hand it their certificates, it requests blocks.
    c.handle(3, c.replicas[3].on_timeout(c.timers[3]))
    c.run(max_steps=500)
    assert any(isinstance(a, SyncBlocks) for a in c.log[3])
    assert c.replicas[3].committed_height >= 3
    vs = validator_set(4)
    for a in c.commits[3]:
        assert verify_commit_certificate(vs, a.certificate, chain_id=CHAIN)
        assert a.block.id == next(x.block.id for x in c.commits[0] if x.block.header.height == a.block.header.height)


def test_sync_response_with_uncertified_or_forged_blocks_rejected():
    blocks, _roots, qc_last = chain_of(3)
    r = make_replica(0)
    answer_exec(r, r.start())
    # Last block without a QC: not accepted.
    r.on_message(vid(1), SyncResponse(tuple(blocks[1:4]), None, None))
    assert r.block(blocks[3].id) is None and r.block(blocks[2].id) is not None
    assert r.counters["sync_uncertified_block"] == 1
    # Tampered payload cannot even be expressed: Block ids bind the payload hash; a block with a forged QC is refused.
    forged = Block(BlockHeader(CHAIN, 0, 5, 4, blocks[3].id, 1, payload_hash(b""), blocks[3].header.qc), b"")
    r.on_message(vid(1), SyncResponse((blocks[3], forged), qc_last, None))
    assert r.block(forged.id) is None


def test_sync_request_served_and_bounded():
    c = Cluster(4)
    c.run(max_steps=300)
    r = c.replicas[0]
    out = r.on_message(vid(1), SyncRequest(b"", 1, 10_000))
    resp = next(a.message for a in out if isinstance(a, Send))
    assert isinstance(resp, SyncResponse)
    heights = [b.header.height for b in resp.blocks]
    assert heights == list(range(1, len(heights) + 1))
    assert len(heights) <= r.config.max_sync_blocks
    assert resp.qc is not None and resp.qc.block_id == resp.blocks[-1].id


def test_observers_are_served_sync_but_nothing_else():
    """A peer outside the validator set (a joining or removed node following as an observer) gets block sync
    answers, rate-limited like anyone, and every other message of it is dropped."""
    c = Cluster(4)
    c.run(max_steps=300)
    r = c.replicas[0]
    out = r.on_message(b"observer", SyncRequest(b"", 1, 10_000))
    sends = [a for a in out if isinstance(a, Send)]
    assert len(sends) == 1 and sends[0].to == b"observer" and isinstance(sends[0].message, SyncResponse)
    assert [b.header.height for b in sends[0].message.blocks][:3] == [1, 2, 3]
    assert r.on_message(b"observer", sign_vote(1, r.current_round, b"\0" * 32, b"\0" * 32)) == []
    assert r.counters["dropped_non_validator"] == 1
    answered = sum(1 for _ in range(20) if r.on_message(b"observer", SyncRequest(b"", 1, 5)))
    assert answered == 7 and r.counters["sync_rate_limited"] == 13


def test_timer_resets_and_backoff_is_capped():
    r = make_replica(3, config=ReplicaConfig(chain_id=CHAIN, base_timeout_ms=100, max_backoff_exponent=3))
    out = r.start()
    assert out[-1] == SetTimer(1, 100)
    assert r._round_delay(50) == 800 and r._round_delay(2) == 200


def test_block_refused_by_application_gets_no_vote():
    blocks, _roots, _ = chain_of(2)
    r = make_replica(3)
    answer_exec(r, r.start())
    out = r.on_message(vid(1), sign_proposal(blocks[1]))
    execute = [a for a in out if isinstance(a, Execute)]
    assert len(execute) == 1
    out = r.on_executed(blocks[1].id, None)
    assert not votes_in(out) and r.block(blocks[1].id) is None
    assert r.counters["block_rejected_by_application"] == 1
    # Re-delivery does not resurrect it.
    r.on_message(vid(1), sign_proposal(blocks[1]))
    assert r.block(blocks[1].id) is None


def test_block_executed_without_vote_is_kept_extended_and_committed():
    """vote=False is a voting policy: no vote for the block, but it stays; a QC on it from the others lets this
    replica vote for its child and commit it."""
    blocks, roots, _ = chain_of(3)
    r = make_replica(3)
    answer_exec(r, r.start())
    out = r.on_message(vid(blocks[1].header.proposer), sign_proposal(blocks[1]))
    assert [a.block.id for a in out if isinstance(a, Execute)] == [blocks[1].id]
    out = r.on_executed(blocks[1].id, roots[1], vote=False)
    assert not votes_in(out) and not [a for a in out if isinstance(a, PersistSafety)]
    assert r.block(blocks[1].id) is not None
    assert r.counters["vote_withheld_by_application"] == 1
    assert r.counters["block_rejected_by_application"] == 0
    assert r.safety.highest_vote_round == 0
    # Re-delivery neither drops it nor turns the withheld vote into one.
    assert not votes_in(answer_exec(r, r.on_message(vid(blocks[1].header.proposer), sign_proposal(blocks[1]))))
    assert r.block(blocks[1].id) is not None
    # The others certified b1: b2 (carrying that QC) is voted normally, with b1's root as parent root.
    out = r.on_message(vid(blocks[2].header.proposer), sign_proposal(blocks[2]))
    executes = [a for a in out if isinstance(a, Execute)]
    assert [(a.block.id, a.parent_state_root) for a in executes] == [(blocks[2].id, roots[1])]
    out = answer_exec(r, out)
    # (This replica leads round 3, so it keeps its round-2 vote instead of sending it.)
    assert r.safety.highest_vote_round == 2 and [a for a in out if isinstance(a, PersistSafety)]
    assert r.counters["vote_withheld_by_application"] == 1
    # b3 carries the QC on b2 (round 2 = round 1 + 1): b1 commits with its certified root.
    out = answer_exec(r, r.on_message(vid(blocks[3].header.proposer), sign_proposal(blocks[3])))
    commits = [a for a in out if isinstance(a, Commit)]
    assert commits and commits[0].block.id == blocks[1].id
    assert r.committed_height == 1


def test_tree_full_evicts_forks_and_keeps_accepting():
    """Without commits the block tree stays bounded; blocks off the high-QC path are evicted, not the new ones."""
    g, gqc = genesis()
    cfg = ReplicaConfig(chain_id=CHAIN, max_tree_blocks=6, committed_window=2)
    r = make_replica(3, config=cfg)
    answer_exec(r, r.start())
    # Forks: blocks at rounds 1..12 each extending genesis (justified by TCs), never committed.
    for rnd in range(1, 13):
        b = make_block(g, rnd, gqc, b"fork%d" % rnd)
        tc = None if rnd == 1 else _tc_for_round(rnd - 1, high_qc_round=0)
        answer_exec(r, r.on_message(vid(b.header.proposer), sign_proposal(b, tc)))
    assert r.tree_size() <= cfg.max_tree_blocks + cfg.committed_window
    assert r.counters["evicted_fork_block"] > 0
    assert r.block(make_block(g, 12, gqc, b"fork12").id) is not None


def test_sync_answers_rate_limited_per_peer():
    c = Cluster(4)
    c.run(max_steps=200)
    r = c.replicas[0]
    answered = sum(1 for _ in range(20) if r.on_message(vid(1), SyncRequest(b"", 1, 5)))
    assert answered == 8 and r.counters["sync_rate_limited"] == 12


def test_observer_follows_and_commits_without_signing():
    """A replica with me=None (a full node that is not a validator) verifies and commits but never signs."""
    c = Cluster(4)
    c.run(max_steps=200)
    g, gqc = genesis()
    observer = Replica(ReplicaConfig(chain_id=CHAIN), validator_set(4), me=None, secret_key=None, anchor=g,
                       anchor_qc=gqc, verifier=verifier())
    out = answer_exec(observer, observer.start())
    proposals = sorted((a.message for i in range(4) for a in c.log[i]
                        if isinstance(a, Broadcast) and isinstance(a.message, Proposal)),
                       key=lambda p: p.block.header.round)
    for p in proposals:
        out += answer_exec(observer, observer.on_message(vid(p.block.header.proposer), p))
    assert observer.committed_height >= 2
    assert not [a for a in out if isinstance(a, (Send, PersistSafety)) or
                (isinstance(a, Broadcast) and not isinstance(a.message, Proposal))]


def test_new_epoch_replicas_continue_from_last_commit():
    """Epoch hand-off: replicas of epoch 1 start from a block committed in epoch 0 and keep committing; epoch-0
    messages are dropped by them; their commit certificates verify with the epoch-1 set only."""
    from consensus.validators import ValidatorSet

    c = Cluster(4)
    c.run(max_steps=200)
    last = c.commits[0][-1]
    old_messages = [encode_message(a.message) for a in c.log[1] if isinstance(a, Broadcast)]
    vs0 = validator_set(4)
    vs1 = ValidatorSet(1, vs0.validators)
    fresh = [Replica(ReplicaConfig(chain_id=CHAIN, base_timeout_ms=100), vs1, me=vid(i), secret_key=secret_key(i),
                     anchor=last.block, anchor_qc=last.certificate.headers[1].qc, verifier=verifier())
             for i in range(4)]
    c.replicas = fresh
    c.queue.clear()
    for i, r in enumerate(fresh):
        c.handle(i, r.start())
    assert fresh[0].current_round == last.certificate.headers[1].qc.round + 1
    c.run(max_steps=300)
    for _ in range(2):
        c.fire_timers()
        c.run(max_steps=300)
    new_commits = [a for a in c.commits[0] if a.block.header.epoch == 1]
    assert len(new_commits) >= 2
    assert new_commits[0].block.header.parent_id == last.block.id
    for a in new_commits:
        assert verify_commit_certificate(vs1, a.certificate, chain_id=CHAIN)
        assert not verify_commit_certificate(vs0, a.certificate, chain_id=CHAIN)
    for data in old_messages:
        fresh[2].on_bytes(vid(1), data)
    assert fresh[2].counters["dropped_wrong_epoch"] >= 1


def test_long_catch_up_takes_several_sync_batches():
    """A replica many batches behind (max_sync_blocks=4) fetches ancestors batch by batch and commits them all."""
    cfg = ReplicaConfig(chain_id=CHAIN, base_timeout_ms=100, max_sync_blocks=4)
    c = Cluster(4)
    c.replicas = [make_replica(i, config=cfg) for i in range(4)]
    c.queue.clear()
    for i, r in enumerate(c.replicas):
        c.handle(i, r.start())
    c.isolated = {3}
    # Until the others are well ahead, but not beyond their committed window (leader election soon stops giving
    # the isolated replica rounds, so they commit a block per round).
    while min(c.heights()[:3]) < 12:
        c.run(max_steps=100)
        c.fire_timers()
    ahead = min(c.heights()[:3])
    assert 12 <= ahead < cfg.committed_window and c.replicas[3].committed_height == 0
    c.isolated = set()
    c.queue.clear()
    c.handle(3, c.replicas[3].on_timeout(c.timers[3]))
    c.run(max_steps=2000)
    # Until it has caught up it elects leaders round-robin (its committed chain does not reach the others' anchors),
    # so it may need a round or two more once the blocks are in.
    for _ in range(2):
        c.fire_timers()
        c.run(max_steps=2000)
    requests = [a for a in c.log[3] if isinstance(a, SyncBlocks)]
    assert len(requests) >= 3
    assert c.replicas[3].committed_height >= ahead - 1
    heights = [a.block.header.height for a in c.commits[3]]
    assert heights == list(range(1, len(heights) + 1))


def test_status_and_buffer_gauges():
    c = Cluster(4)
    c.run(max_steps=200)
    r = c.replicas[0]
    st = r.status()
    assert st["committed_height"] == r.committed_height >= 3
    assert st["current_round"] > st["high_qc_round"] >= st["committed_round"]
    limits = r.buffer_limits()
    assert all(size <= limits[name] for name, size in r.buffer_sizes().items())


def _prune_by_scanning_everything(r: Replica) -> None:
    """Replica._prune as it was before it skipped the committed window: every entry examined (the reference)."""
    keep_from = r.committed_height - r.config.committed_window
    pending_heights = {b.header.height for b, _ in r._commit_queue}
    for block_id, entry in list(r._entries.items()):
        h = entry.header.height
        if h in pending_heights:
            continue
        on_chain = r._committed_by_height.get(h) == block_id
        below = h <= r.committed_height or entry.header.round <= r.committed_round
        if below and (not on_chain or h < keep_from):
            del r._entries[block_id]
            r._waiting_exec.pop(block_id, None)
    for h in [h for h in r._committed_by_height if h < keep_from]:
        del r._committed_by_height[h]


def test_prune_drops_exactly_what_a_full_scan_drops(monkeypatch):
    """_prune looks only at the entries off the committed window; on runs with forks, crashes, partitions, a
    Byzantine replica and a small window (round-robin leaders: reputation reads a longer committed history) it must
    leave the same entries (in the same order), waiting executions and
    committed heights as examining every entry."""
    import consensus.simulator as sim

    real = Replica._prune
    calls = {"prunes": 0, "dropped": 0, "forks_dropped": 0}

    def checked(self: Replica) -> None:
        twin = object.__new__(Replica)
        twin._entries = dict(self._entries)
        twin._waiting_exec = dict(self._waiting_exec)
        twin._committed_by_height = dict(self._committed_by_height)
        twin._commit_queue = self._commit_queue
        twin.committed_height, twin.committed_round, twin.config = (self.committed_height, self.committed_round,
                                                                    self.config)
        _prune_by_scanning_everything(twin)
        before = set(self._entries)
        real(self)
        assert list(self._entries) == list(twin._entries)
        assert self._waiting_exec == twin._waiting_exec
        assert self._committed_by_height == twin._committed_by_height
        dropped = before - set(self._entries)
        calls["prunes"] += 1
        calls["dropped"] += len(dropped)
        committed_ids = set(twin._committed_by_height.values())
        calls["forks_dropped"] += sum(1 for b in dropped if b not in committed_ids)

    monkeypatch.setattr(Replica, "_prune", checked)
    small_window = dataclasses.replace(sim.ReplicaConfig(chain_id=b"x"), committed_window=3)
    monkeypatch.setattr(sim, "ReplicaConfig", lambda **kw: dataclasses.replace(small_window, **kw))
    for seed in range(5):
        result = sim.run_seed(sim.SimConfig(seed=7100 + seed, nodes=4, byzantine=1, leader_election="round_robin"))
        assert not result.safety_violations
    assert calls["prunes"] > 100 and calls["dropped"] > 100 and calls["forks_dropped"] > 0
