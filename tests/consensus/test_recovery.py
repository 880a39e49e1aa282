"""A validator that lost its safety state recovers within its epoch (consensus/recovery.py, docs/consensus.md §13):
it resumes above every round it can have signed in, whatever was delivered, in flight or seen by one leader only,
and refuses every bad statement without changing anything."""

from __future__ import annotations

import dataclasses
import random

import pytest

from consensus import bls
from consensus.actions import Broadcast, PersistSafety, Send
from consensus.codec import CodecError, pack
from consensus.messages import (
    MAX_RECOVERY_MESSAGE_BYTES,
    Block,
    Proposal,
    RecoveryRequest,
    RecoveryStatement,
    SafetyState,
    Timeout,
    Vote,
    decode_message,
    encode_message,
    payload_hash,
    recovery_message,
)
from consensus.recovery import (
    MAX_RECOVERY_ANSWERS_PER_ROUND,
    Recovery,
    RecoveryError,
    check_statement,
    make_statement,
    resume_state,
)
from tests.consensus.helpers import (
    CHAIN,
    Cluster,
    genesis,
    make_replica,
    secret_key,
    sign_proposal,
    validator_set,
    verifier,
    vid,
)

W = 3  # the validator that loses its safety state


def nonce(seed: int) -> bytes:
    return random.Random(seed).randbytes(32)


def signatures(actions, epoch: int = 0) -> list[tuple[str, int]]:
    """(kind, round) of every message the replica signed in these actions."""
    out = []
    for a in actions:
        m = a.message if isinstance(a, (Send, Broadcast)) else None
        if isinstance(m, Vote) and m.epoch == epoch:
            out.append(("vote", m.round))
        elif isinstance(m, Timeout) and m.epoch == epoch:
            out.append(("timeout", m.round))
        elif isinstance(m, Proposal) and m.block.header.epoch == epoch:
            out.append(("proposal", m.block.header.round))
    return out


def wipe_and_restart(c: Cluster, seed: int, *, keep_in_flight: bool = True):
    """W loses its safety state and restarts from its last commit with a recovery nonce. Messages in flight (also
    W's own, e.g. a vote on its way to the next leader) stay in flight unless `keep_in_flight` is False.
    Returns (new replica, the highest round W signed anything in before the loss, log mark)."""
    signed = [r for _, r in signatures(c.log[W])]
    last_signed = max(signed, default=0)
    commits = c.commits[W]
    g, gqc = genesis()
    anchor, anchor_qc = (commits[-1].block, commits[-1].certificate.headers[1].qc) if commits else (g, gqc)
    if not keep_in_flight:
        c.queue.clear()
    r2 = make_replica(W, anchor=anchor, anchor_qc=anchor_qc, safety_lost=True, recovery_nonce=nonce(seed))
    c.replicas[W] = r2
    mark = len(c.log[W])
    c.handle(W, r2.start())
    return r2, last_signed, mark


def drive(c: Cluster, rounds: int, until=None) -> None:
    """Deliver messages and fire timers, `rounds` times at most, stopping early once `until()` holds."""
    for _ in range(rounds):
        c.run(max_steps=400)
        if until is not None and until():
            return
        c.fire_timers()
    c.run(max_steps=400)


def test_a_wiped_validator_recovers_and_votes_again_in_its_epoch():
    c = Cluster(4)
    c.run(max_steps=150)
    r2, last_signed, mark = wipe_and_restart(c, 1)
    assert r2.status()["recovering"] == 1 and r2.safety_lost
    assert any(isinstance(a, Broadcast) and isinstance(a.message, RecoveryRequest) for a in c.log[W][mark:])
    drive(c, 6)
    assert not r2.safety_lost and r2.recovery is None and r2.counters["recovered"] == 1
    assert r2.recovered_bound is not None and r2.recovered_bound >= last_signed
    after = signatures(c.log[W][mark:])
    votes = [r for kind, r in after if kind == "vote"]
    assert votes, "it votes again in the same epoch"
    assert min(r for _, r in after) > last_signed
    # Its signatures enter certificates: the QC of a round it voted in names it.
    qc = r2.safety.high_qc
    assert qc.round > r2.recovered_bound
    # Before its first signature it persisted the resumed state (persist-before-send).
    first_signed = next(i for i, a in enumerate(c.log[W][mark:]) if signatures([a]))
    persisted = [a for a in c.log[W][mark:][:first_signed] if isinstance(a, PersistSafety)]
    assert persisted and persisted[0].state.highest_vote_round == r2.recovered_bound + 1
    # Its lock is restored from a QC at least as high as any lock it can have held before (bound - 1).
    assert persisted[0].state.highest_qc_round == persisted[0].state.high_qc.round >= r2.recovered_bound - 1
    assert min(c.heights()) > 0


@pytest.mark.parametrize("seed", range(8))
def test_recovery_bound_covers_every_lost_signature_at_any_cut(seed: int):
    """Wipe W at a random moment (mid-round, right after voting, with its vote to the next leader still in flight or
    dropped): after recovery it never signs in a round it signed in before, and never for a conflicting block."""
    rng = random.Random(seed)
    c = Cluster(4)
    c.run(max_steps=rng.randint(20, 220))
    if rng.random() < 0.5:
        c.fire_timers()
        c.run(max_steps=rng.randint(0, 40))
    before = signatures(c.log[W])
    r2, last_signed, mark = wipe_and_restart(c, seed, keep_in_flight=rng.random() < 0.7)
    if rng.random() < 0.5:
        # A Byzantine leader replays a conflicting proposal for the last round W signed in.
        for a in [
            a
            for i in range(4)
            for a in c.log[i]
            if isinstance(a, Broadcast)
            and isinstance(a.message, Proposal)
            and a.message.block.header.round == last_signed
        ]:
            h = a.message.block.header
            other = Block(dataclasses.replace(h, payload_hash=payload_hash(b"other")), b"other")
            c.handle(W, r2.on_message(vid(h.proposer), sign_proposal(other)))
    drive(c, 8, until=lambda: not r2.safety_lost and bool(signatures(c.log[W][mark:])))
    after = signatures(c.log[W][mark:])
    assert not r2.safety_lost, "recovers once the others answer and a QC forms"
    assert all(r > max((r for _, r in before), default=0) for _, r in after)
    assert r2.recovered_bound >= last_signed


def test_statements_from_a_quorum_bound_a_vote_only_the_next_leader_saw():
    """W's last vote went to the next leader only (and never arrived): no responder saw it, yet the bound covers it,
    because a quorum of responders intersects the signers of the certificate W needed to vote there."""
    c = Cluster(4)
    for _ in range(400):
        if not c.queue:
            break
        src, dst, data = c.queue.popleft()
        c.handle(dst, c.replicas[dst].on_bytes(vid(src), data))
        if src == W and isinstance(decode_message(data), Vote):
            break
    voted = c.persisted[W][-1].state.highest_vote_round
    # The vote W just sent (and any message of W in flight) is lost with it.
    c.queue = type(c.queue)(m for m in c.queue if m[0] != W)
    r2, last_signed, _ = wipe_and_restart(c, 7)
    assert last_signed >= voted
    drive(c, 6)
    assert r2.recovered_bound is not None and r2.recovered_bound >= voted


def _statement(
    responder: int,
    hvr: int,
    *,
    requester: int = W,
    n: bytes | None = None,
    epoch: int = 0,
    qc_round_lie: int | None = None,
) -> RecoveryStatement:
    """A statement signed by `responder` (with the genesis QC as its certificate unless told)."""
    _, gqc = genesis()
    state = SafetyState(0, hvr, 0, 0, gqc, None)
    req = RecoveryRequest(0, requester, n or nonce(0))
    s = make_statement(validator_set(4), CHAIN, req, responder, state, secret_key(responder), bls.get_backend())
    if epoch != 0:
        s = dataclasses.replace(s, epoch=epoch)
    return s


def _check(s: RecoveryStatement, sender: int) -> int:
    _, gqc = genesis()
    return check_statement(
        validator_set(4), CHAIN, s, sender=sender, me=W, nonce=nonce(0), anchor_qc=gqc, verifier=verifier()
    )


def test_a_claim_is_capped_by_the_certificates_shown():
    # With only the genesis QC a responder cannot claim more than round 1, whatever it says.
    assert _check(_statement(0, 50), 0) == 1
    assert _check(_statement(0, 0), 0) == 0


@pytest.mark.parametrize(
    ("mutate", "sender", "code"),
    [
        (lambda s: dataclasses.replace(s, signature=bytes(96)), 0, RecoveryError.BAD_SIGNATURE),
        (lambda s: dataclasses.replace(s, highest_vote_round=s.highest_vote_round + 1), 0, RecoveryError.BAD_SIGNATURE),
        (lambda s: dataclasses.replace(s, signature=_statement(1, 5).signature), 0, RecoveryError.BAD_SIGNATURE),
        (lambda s: s, 1, RecoveryError.SPOOFED),
        (lambda s: dataclasses.replace(s, epoch=1), 0, RecoveryError.WRONG_EPOCH),
        (lambda s: _statement(0, 5, requester=2), 0, RecoveryError.WRONG_REQUESTER),
        (lambda s: _statement(0, 5, n=nonce(99)), 0, RecoveryError.WRONG_NONCE),
    ],
)
def test_bad_statements_are_refused_with_a_stable_code(mutate, sender, code):
    with pytest.raises(RecoveryError) as err:
        _check(mutate(_statement(0, 5)), sender)
    assert err.value.code == code


def test_bad_statements_change_nothing_in_the_replica():
    r = make_replica(W, safety_lost=True, recovery_nonce=nonce(0))
    r.start()
    bad = [
        (0, dataclasses.replace(_statement(0, 5), signature=bytes(96))),
        (1, _statement(0, 5)),
        (0, _statement(0, 5, requester=2)),
        (0, _statement(0, 5, n=nonce(98))),
        (0, dataclasses.replace(_statement(0, 5), epoch=1)),
    ]
    for sender, s in bad:
        assert r.on_bytes(vid(sender), encode_message(s)) == []
    # Oversized and garbage recovery messages never reach the checks.
    assert r.on_bytes(vid(0), _oversized()) == []
    assert r.counters["dropped_codec_too_large"] == 1
    assert r.on_bytes(vid(0), encode_message(_statement(0, 5))[:-3]) == []
    assert r.recovery is not None and r.recovery.claims == {}
    assert r.safety_lost
    for code in ("bad_signature", "spoofed", "wrong_requester", "wrong_nonce"):
        assert r.counters[f"dropped_recovery_{code}"] == 1, code
    # One good statement counts once; its duplicate is refused.
    r.on_bytes(vid(0), encode_message(_statement(0, 0)))
    r.on_bytes(vid(0), encode_message(_statement(0, 0)))
    assert r.recovery.claims == {0: 0} and r.counters["dropped_recovery_duplicate"] == 1


def _oversized() -> bytes:
    """A canonical statement whose signature field is longer than MAX_RECOVERY_MESSAGE_BYTES."""
    _, gqc = genesis()
    return pack([8, 0, W, nonce(0), 0, 5, gqc.to_list(), None, bytes(MAX_RECOVERY_MESSAGE_BYTES)])


def test_oversized_recovery_message_is_refused_by_the_codec():
    assert len(encode_message(_statement(0, 5))) < 1024
    with pytest.raises(CodecError) as err:
        decode_message(_oversized())
    assert err.value.code == CodecError.TOO_LARGE
    with pytest.raises(CodecError):
        decode_message(encode_message(RecoveryRequest(0, 1, b"short")))


def test_responders_answer_bounded_and_only_with_an_intact_state():
    r0 = make_replica(0)
    r0.start()
    req = RecoveryRequest(0, W, nonce(0))
    answers = [r0.on_message(vid(W), req) for _ in range(MAX_RECOVERY_ANSWERS_PER_ROUND + 3)]
    sent = [a for out in answers for a in out if isinstance(a, Send) and isinstance(a.message, RecoveryStatement)]
    assert len(sent) == MAX_RECOVERY_ANSWERS_PER_ROUND
    assert r0.counters["dropped_recovery_rate_limited"] == 3
    assert _check(sent[0].message, 0) == 0
    # A request naming another requester than its sender, or another epoch, is refused.
    assert r0.on_message(vid(2), req) == []
    assert r0.counters["dropped_recovery_spoofed"] == 1
    assert r0.on_message(vid(W), RecoveryRequest(5, W, nonce(0))) == []
    assert r0.counters["dropped_recovery_wrong_epoch"] == 1
    # A replica that is itself recovering has no bound to give.
    lost = make_replica(1, safety_lost=True, recovery_nonce=nonce(1))
    lost.start()
    assert lost.on_message(vid(W), req) == []
    assert lost.counters["dropped_recovery_cannot_answer"] == 1
    # An unsolicited statement is dropped.
    assert r0.on_bytes(vid(1), encode_message(_statement(1, 3, requester=0))) == []
    assert r0.counters["dropped_recovery_unsolicited"] == 1


def test_quorum_arithmetic_and_resume_state():
    vs = validator_set(4)
    rec = Recovery(vs, me=W, nonce=nonce(0), anchor_round=4)
    assert rec.possible and rec.bound is None and rec.missing() == [0, 1, 2]
    rec.add(0, 9)
    rec.add(1, 2)
    assert rec.bound is None
    rec.add(2, 0)  # a Byzantine responder under-reports: it cannot lower the maximum
    assert rec.bound == 10
    with pytest.raises(RecoveryError):
        rec.add(2, 0)
    assert Recovery(vs, me=W, nonce=nonce(0), anchor_round=40).bound is None
    _, gqc = genesis()
    with pytest.raises(AssertionError):
        resume_state(0, 10, gqc, None)  # the lock must be restored from a QC of round >= bound - 1
    # One validator alone cannot be vouched for: it does not ask (it waits for the next epoch).
    solo = make_replica(0, n=1, safety_lost=True, recovery_nonce=nonce(0))
    assert solo.recovery is not None and not solo.recovery.possible
    assert not any(isinstance(a, Broadcast) for a in solo.start())


def test_recovery_message_layout():
    """The signed bytes (docs/consensus.md §3): domain, lengths, chain, then 8-byte integers and the nonce."""
    msg = recovery_message(b"test-chain", 0, 3, b"\x11" * 32, 1, 7, 6, 5)
    domain = b"LEDGER-JOLTEON-V1/RECOVERY"
    assert msg == (
        domain
        + bytes([len(domain), 10])
        + b"test-chain"
        + (0).to_bytes(8, "big")
        + (3).to_bytes(8, "big")
        + b"\x11" * 32
        + (1).to_bytes(8, "big")
        + (7).to_bytes(8, "big")
        + (6).to_bytes(8, "big")
        + (5).to_bytes(8, "big")
    )
    s = _statement(0, 5)
    assert decode_message(encode_message(s)) == s
