"""Validator sets, QC/TC verification, commit certificates (and tampering), evidence."""

from __future__ import annotations

import dataclasses

import pytest

from consensus import bls
from consensus.certificates import (
    CommitCertificateError,
    Evidence,
    check_commit_certificate,
    make_vote_evidence,
    qc_ok,
    tc_ok,
    verify_commit_certificate,
    verify_evidence,
)
from consensus.messages import CommitCertificate, TimeoutCert, TimeoutGroup, timeout_message
from consensus.validators import Validator, ValidatorSet, ValidatorSetError
from tests.consensus.helpers import CHAIN, Cluster, make_qc, secret_key, sign_vote, validator_set, verifier
from tests.consensus.test_replica import _tc_for_round


@pytest.mark.parametrize("n,f,quorum", [(1, 0, 1), (2, 0, 2), (3, 0, 3), (4, 1, 3), (5, 1, 4), (6, 1, 5),
                                        (7, 2, 5), (10, 3, 7), (13, 4, 9)])
def test_quorum_arithmetic(n, f, quorum):
    vs = validator_set(n)
    assert (vs.max_faulty_power, vs.quorum_power, vs.weak_power) == (f, quorum, f + 1)
    assert 2 * vs.quorum_power - vs.total_power >= vs.weak_power


def test_weighted_quorum():
    base = validator_set(4)
    vs = ValidatorSet(1, [(v.id, v.public_key, v.pop, p) for v, p in zip(base.validators, (1, 1, 1, 7), strict=True)])
    assert vs.total_power == 10 and vs.max_faulty_power == 3 and vs.quorum_power == 7
    # The heavy validator alone is a quorum here: a QC signed by it verifies.
    qc_sig = bls.sign(secret_key(3), _vote_msg(1))
    from consensus.messages import QuorumCert

    qc = QuorumCert(1, 1, b"\1" * 32, b"\2" * 32, vs.bitmap([3]), qc_sig)
    assert qc_ok(vs, CHAIN, qc, verifier())
    qc3 = QuorumCert(1, 1, b"\1" * 32, b"\2" * 32, vs.bitmap([0, 1, 2]),
                     bls.aggregate([bls.sign(secret_key(i), _vote_msg(1)) for i in range(3)]))
    assert not qc_ok(vs, CHAIN, qc3, verifier()), "power 3 of 10 is not a quorum"


def _vote_msg(epoch):
    from consensus.messages import vote_message

    return vote_message(CHAIN, epoch, 1, b"\1" * 32, b"\2" * 32)


def test_validator_set_admission_errors():
    base = validator_set(4)
    v = list(base.validators)
    cases = [
        ([], ValidatorSetError.EMPTY),
        ([v[0], v[0]], ValidatorSetError.DUPLICATE_ID),
        ([v[0], dataclasses.replace(v[1], public_key=v[0].public_key, pop=v[0].pop)], ValidatorSetError.DUPLICATE_KEY),
        ([dataclasses.replace(v[0], pop=v[1].pop)], ValidatorSetError.BAD_POP),
        ([dataclasses.replace(v[0], power=0)], ValidatorSetError.BAD_POWER),
        ([dataclasses.replace(v[0], id=b"")], ValidatorSetError.BAD_ID),
        ([dataclasses.replace(v[0], public_key=b"\0" * 47)], ValidatorSetError.BAD_KEY),
    ]
    for validators, code in cases:
        with pytest.raises(ValidatorSetError) as exc:
            ValidatorSet(0, validators)
        assert exc.value.code == code
    # A rogue key (pk_a - pk_b) has no valid proof of possession.
    with pytest.raises(ValidatorSetError):
        ValidatorSet(0, [Validator(b"x", v[0].public_key, bls.pop_prove(secret_key(1)))])


def test_qc_verification_and_tampering():
    vs = validator_set(4)
    qc = make_qc([0, 1, 3], 5, b"\1" * 32, b"\2" * 32)
    assert qc_ok(vs, CHAIN, qc, verifier())
    assert not qc_ok(vs, b"other-chain", qc, verifier())
    for change in [{"round": 6}, {"block_id": b"\3" * 32}, {"state_root": b"\3" * 32}, {"epoch": 1},
                   {"signers": vs.bitmap([0, 1, 2])}, {"signers": vs.bitmap([0, 1])}, {"signers": b"\xff"},
                   {"signers": b""}, {"signature": b"\0" * 96}]:
        assert not qc_ok(vs, CHAIN, dataclasses.replace(qc, **change), verifier()), change


def test_tc_verification():
    vs = validator_set(4)
    tc = _tc_for_round(7, high_qc_round=5)
    assert tc_ok(vs, CHAIN, tc, verifier())
    # Two groups with different reported QC rounds.
    g1 = TimeoutGroup(4, vs.bitmap([0]), bls.sign(secret_key(0), timeout_message(CHAIN, 0, 7, 4)))
    g2 = TimeoutGroup(5, vs.bitmap([1, 2]), bls.aggregate([bls.sign(secret_key(i), timeout_message(CHAIN, 0, 7, 5))
                                                            for i in (1, 2)]))
    tc2 = TimeoutCert(0, 7, (g1, g2))
    assert tc_ok(vs, CHAIN, tc2, verifier()) and tc2.max_high_qc_round == 5
    # Overlapping signers, too few signers, a lied-about QC round: rejected.
    overlap = TimeoutCert(0, 7, (g1, dataclasses.replace(g2, signers=vs.bitmap([0, 1]))))
    assert not tc_ok(vs, CHAIN, overlap, verifier())
    assert not tc_ok(vs, CHAIN, TimeoutCert(0, 7, (g2,)), verifier())
    assert not tc_ok(vs, CHAIN, TimeoutCert(0, 7, (dataclasses.replace(g1, high_qc_round=3), g2)), verifier())


@pytest.fixture(scope="module")
def committed():
    c = Cluster(4)
    c.run(max_steps=300)
    return c.commits[0]


def test_commit_certificates_verify(committed):
    vs = validator_set(4)
    assert len(committed) >= 3
    for commit in committed:
        cert = commit.certificate
        check_commit_certificate(vs, cert, chain_id=CHAIN)
        assert cert.height == commit.block.header.height and cert.block_id == commit.block.id
        decoded = CommitCertificate.decode(cert.encode())
        assert verify_commit_certificate(vs, decoded, chain_id=CHAIN)


def test_commit_certificate_tampering(committed):
    vs = validator_set(4)
    cert = committed[1].certificate
    h0, h1 = cert.headers[0], cert.headers[1]
    other_vs = ValidatorSet(0, list(validator_set(5).validators)[1:])

    def expect(bad: CommitCertificate, code: str, vset=vs, chain=CHAIN):
        with pytest.raises(CommitCertificateError) as exc:
            check_commit_certificate(vset, bad, chain_id=chain)
        assert exc.value.code == code
        assert not verify_commit_certificate(vset, bad, chain_id=chain)

    expect(dataclasses.replace(cert, headers=(h0,)), CommitCertificateError.TOO_SHORT)
    expect(dataclasses.replace(cert, headers=(dataclasses.replace(h0, height=h0.height + 1), h1)),
           CommitCertificateError.BROKEN_CHAIN)
    expect(dataclasses.replace(cert, headers=(dataclasses.replace(h0, payload_hash=b"\0" * 32), h1)),
           CommitCertificateError.BROKEN_CHAIN)
    expect(cert, CommitCertificateError.WRONG_CHAIN, chain=b"another")
    expect(cert, CommitCertificateError.BAD_QC, vset=other_vs)
    expect(dataclasses.replace(cert, qc=dataclasses.replace(cert.qc, state_root=b"\0" * 32)),
           CommitCertificateError.BAD_QC)
    # Lying about the state root: it lives in h1's QC, which is bound into the signed chain.
    fake_root_qc = dataclasses.replace(h1.qc, state_root=b"\5" * 32)
    expect(dataclasses.replace(cert, headers=(h0, dataclasses.replace(h1, qc=fake_root_qc))),
           CommitCertificateError.BAD_QC)
    # Non-consecutive last two rounds.
    expect(dataclasses.replace(cert, headers=(h0, dataclasses.replace(h1, round=h1.round + 1))),
           CommitCertificateError.NOT_CONSECUTIVE)
    # Reusing another block's QC.
    expect(dataclasses.replace(cert, qc=committed[0].certificate.qc), CommitCertificateError.BAD_QC)


def test_evidence_verification():
    vs = validator_set(4)
    a = sign_vote(2, 3, b"\1" * 32, b"\2" * 32)
    b = sign_vote(2, 3, b"\1" * 32, b"\3" * 32)
    ev = make_vote_evidence(a, b)
    assert verify_evidence(vs, CHAIN, ev, verifier())
    assert Evidence.decode(ev.encode()) == ev
    assert not verify_evidence(vs, CHAIN, make_vote_evidence(a, a), verifier())
    forged = dataclasses.replace(b, signature=a.signature)
    assert not verify_evidence(vs, CHAIN, make_vote_evidence(a, forged), verifier())
    assert not verify_evidence(vs, CHAIN, dataclasses.replace(ev, validator=1), verifier())
    other_round = sign_vote(2, 4, b"\1" * 32, b"\3" * 32)
    assert not verify_evidence(vs, CHAIN, make_vote_evidence(a, other_round), verifier())


def test_signed_message_layout_matches_docs():
    from consensus.messages import vote_message

    expected = (b"LEDGER-JOLTEON-V1/VOTE" + bytes([22, 10]) + b"test-chain" + (0).to_bytes(8, "big")
                + (1).to_bytes(8, "big") + b"\x11" * 32 + b"\x22" * 32)
    assert vote_message(b"test-chain", 0, 1, b"\x11" * 32, b"\x22" * 32) == expected
    assert expected.hex().startswith("4c45444745522d4a4f4c54454f4e2d56312f564f5445160a")


def test_commit_certificate_verifies_with_reference_backend(committed):
    """Certificates made with blspy verify with py_ecc (the pure-Python reference): same bytes, same answer."""
    from consensus.certificates import SignatureVerifier

    reference = SignatureVerifier(bls.get_backend("py_ecc"))
    cert = committed[0].certificate
    assert verify_commit_certificate(validator_set(4), cert, chain_id=CHAIN, verifier=reference)
    bad = dataclasses.replace(cert, qc=dataclasses.replace(cert.qc, signature=committed[1].certificate.qc.signature))
    assert not verify_commit_certificate(validator_set(4), bad, chain_id=CHAIN, verifier=reference)
