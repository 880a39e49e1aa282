"""Canonical encoding: round trips, strictness, and fuzzed decoders that only ever raise CodecError."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consensus.certificates import Evidence
from consensus.codec import CodecError, unpack
from consensus.messages import (
    CommitCertificate,
    SafetyState,
    SyncRequest,
    SyncResponse,
    Timeout,
    decode_block,
    decode_message,
    encode_block,
    encode_message,
)
from tests.consensus.helpers import Cluster, genesis, make_qc, sign_vote
from tests.consensus.test_replica import _tc_for_round, chain_of


@pytest.fixture(scope="module")
def samples() -> list[bytes]:
    """Encodings of every message type, taken from a real cluster run plus hand-made ones."""
    c = Cluster(4)
    c.run(max_steps=60)
    out = []
    for log in c.log.values():
        for a in log:
            msg = getattr(a, "message", None) or getattr(a, "request", None)
            if msg is not None:
                out.append(encode_message(msg))
    blocks, _roots, qc = chain_of(2)
    _g, _gqc = genesis()
    tc = _tc_for_round(3, high_qc_round=2)
    out.append(encode_message(Timeout(0, 4, qc, None, 1, sign_vote(1, 4, b"\0" * 32, b"\0" * 32).signature)))
    out.append(encode_message(Timeout(0, 4, qc, tc, 1, sign_vote(1, 4, b"\0" * 32, b"\0" * 32).signature)))
    out.append(encode_message(SyncRequest(b"", 1, 5)))
    out.append(encode_message(SyncResponse(tuple(blocks[1:]), qc, tc)))
    return out


def test_round_trip_all_messages(samples):
    kinds = set()
    for data in samples:
        msg = decode_message(data)
        kinds.add(type(msg).__name__)
        assert encode_message(msg) == data
    assert kinds == {"Proposal", "Vote", "Timeout", "SyncRequest", "SyncResponse"}


def test_block_commit_certificate_safety_state_round_trip():
    c = Cluster(4)
    c.run(max_steps=200)
    commit = c.commits[0][0]
    assert CommitCertificate.decode(commit.certificate.encode()) == commit.certificate
    assert decode_block(encode_block(commit.block)) == commit.block
    state = c.persisted[0][-1].state
    assert SafetyState.decode(state.encode()) == state


def test_non_canonical_encodings_rejected():
    vote = sign_vote(0, 1, b"\1" * 32, b"\2" * 32)
    items = vote.to_list()
    # Integer 1 written as uint64: same value, different bytes.
    packer = msgpack.Packer(use_bin_type=True)
    body = b"".join(packer.pack(x) for x in items[2:])
    wide = b"\x97" + b"\xcf" + (2).to_bytes(8, "big") + packer.pack(items[1]) + body
    with pytest.raises(CodecError) as exc:
        decode_message(wide)
    assert exc.value.code == CodecError.NOT_CANONICAL
    # A text string instead of bytes; a map; a float; a boolean; trailing bytes.
    bad_values = [
        msgpack.packb([2, 0, 1, "x" * 32, b"\0" * 32, 0, b"\0" * 96], use_bin_type=True),
        msgpack.packb({1: 2}),
        msgpack.packb([2, 0.5, 1, b"\0" * 32, b"\0" * 32, 0, b"\0" * 96], use_bin_type=True),
        msgpack.packb([2, True, 1, b"\0" * 32, b"\0" * 32, 0, b"\0" * 96], use_bin_type=True),
        encode_message(vote) + b"\x00",
    ]
    for data in bad_values:
        with pytest.raises(CodecError):
            decode_message(data)


def test_field_checks():
    ok = sign_vote(0, 1, b"\1" * 32, b"\2" * 32).to_list()
    for index, value in [(3, b"\1" * 31), (6, b"\0" * 95), (5, 5000), (2, -1), (0, 99)]:
        items = list(ok)
        items[index] = value
        with pytest.raises(CodecError):
            decode_message(msgpack.packb(items, use_bin_type=True))
    with pytest.raises(CodecError) as exc:
        decode_message(b"\x91" + b"\xc6" + (1 << 20).to_bytes(4, "big") + b"\0" * (1 << 20), max_bytes=1 << 19)
    assert exc.value.code == CodecError.TOO_LARGE


def test_qc_with_round_zero_cannot_carry_signatures():
    qc = make_qc([0, 1, 2], 1, b"\1" * 32, b"\2" * 32)
    items = qc.to_list()
    items[1] = 0
    from consensus.messages import QuorumCert

    with pytest.raises(CodecError):
        QuorumCert.from_list(items)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=400))
def test_fuzz_random_bytes(data):
    for decoder in (decode_message, CommitCertificate.decode, SafetyState.decode, Evidence.decode, decode_block):
        try:
            decoder(data)
        except CodecError:
            pass


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pick=st.integers(min_value=0, max_value=10_000), flips=st.lists(st.tuples(st.integers(0, 1 << 20),
                                                                                  st.integers(0, 7)), max_size=4),
       cut=st.integers(min_value=0, max_value=1 << 20))
def test_fuzz_mutated_valid_messages(samples, pick, flips, cut):
    data = bytearray(samples[pick % len(samples)])
    for pos, bit in flips:
        data[pos % len(data)] ^= 1 << bit
    for candidate in (bytes(data), bytes(data[: cut % (len(data) + 1)])):
        try:
            msg = decode_message(candidate)
        except CodecError:
            continue
        assert encode_message(msg) == candidate, "a decoded message re-encodes to its exact bytes"


@settings(max_examples=200, deadline=None)
@given(value=st.recursive(st.none() | st.integers(-(1 << 70), 1 << 70) | st.binary(max_size=40) | st.booleans()
                          | st.text(max_size=5) | st.floats(allow_nan=False),
                          lambda inner: st.lists(inner, max_size=6), max_leaves=30))
def test_fuzz_structured_values(value):
    try:
        data = msgpack.packb([value] if not isinstance(value, list) else value, use_bin_type=True)
    except (OverflowError, ValueError, TypeError):
        return
    for decoder in (decode_message, CommitCertificate.decode, SafetyState.decode, Evidence.decode, unpack):
        try:
            decoder(data)
        except CodecError:
            pass


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pick=st.integers(min_value=0, max_value=10_000), pos=st.integers(0, 1 << 20), bit=st.integers(0, 7),
       sender=st.integers(0, 3))
def test_replica_survives_mutated_input(samples, pick, pos, bit, sender):
    """A replica fed bit-flipped real messages never raises; everything rejected is counted."""
    from tests.consensus.helpers import make_replica, vid

    replica = make_replica(2)
    replica.start()
    data = bytearray(samples[pick % len(samples)])
    data[pos % len(data)] ^= 1 << bit
    before = sum(replica.counters.values())
    actions = replica.on_bytes(vid(sender), bytes(data))
    assert isinstance(actions, list)
    assert sum(replica.counters.values()) >= before
