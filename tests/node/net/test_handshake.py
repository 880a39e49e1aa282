"""The handshake and the frame cipher without sockets: success, every refusal code, MITM, replay, tamper, limits,
and the test vector docs/transport.md publishes."""

from __future__ import annotations

import hashlib

import msgpack
import nacl.signing
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.net.framing import (
    BODY_OVERHEAD,
    KIND_ACCEPT,
    KIND_AUTH,
    KIND_CLOSE,
    KIND_DATA,
    LENGTH_BYTES,
    FrameError,
    FrameOpener,
    FrameSealer,
    body_length,
)
from node.net.handshake import (
    HELLO_BYTES,
    MAGIC,
    Handshake,
    HandshakeError,
    Identity,
    PeerSet,
    hkdf_sha256,
    signed_message,
    transcript_hash,
)
from tests.node.client.wire import first_sealer

CHAIN = "test-chain"
# The tests (and the published vector) run a fixed ledger protocol version, not the code's current one.
VERSION = 3


def identity(name: str) -> Identity:
    return Identity(name, nacl.signing.SigningKey(hashlib.sha256(name.encode()).digest()))


ALICE, BOB, MALLORY = identity("alice"), identity("bob"), identity("mallory")
PEERS = PeerSet.of([ALICE.as_peer(), BOB.as_peer()])


def body(frame: bytes) -> bytes:
    assert body_length(frame[:LENGTH_BYTES], 1 << 20) == len(frame) - LENGTH_BYTES
    return frame[LENGTH_BYTES:]


def run(a: Handshake, b: Handshake):
    """Both sides exchange hellos, auth frames, then verdicts; returns (session of a, session of b)."""
    auth_a = a.receive_hello(b.hello())
    auth_b = b.receive_hello(a.hello())
    session_a, session_b = a.receive_auth(body(auth_b)), b.receive_auth(body(auth_a))
    verdict_a, verdict_b = a.accept(), b.accept()
    a.receive_verdict(body(verdict_b))
    b.receive_verdict(body(verdict_a))
    return session_a, session_b


def test_handshake_succeeds_and_sessions_talk_both_ways() -> None:
    a = Handshake(ALICE, CHAIN, PEERS, expected_peer="bob", protocol_version=VERSION)
    b = Handshake(BOB, CHAIN, PEERS, protocol_version=VERSION)
    session_a, session_b = run(a, b)
    assert session_a.peer.node_id == "bob" and session_b.peer.node_id == "alice"
    assert a.keys == b.keys
    keys = a.keys
    assert keys is not None and keys.low_to_high != keys.high_to_low
    for sender, receiver in ((session_a, session_b), (session_b, session_a)):
        for n in range(3):
            frame = sender.sealer.seal(KIND_DATA, b"payload %d" % n)
            assert b"payload" not in frame
            assert receiver.opener.open(body(frame)) == (KIND_DATA, b"payload %d" % n)


def test_each_handshake_derives_fresh_keys() -> None:
    first = (Handshake(ALICE, CHAIN, PEERS, protocol_version=VERSION),
             Handshake(BOB, CHAIN, PEERS, protocol_version=VERSION))
    second = (Handshake(ALICE, CHAIN, PEERS, protocol_version=VERSION),
              Handshake(BOB, CHAIN, PEERS, protocol_version=VERSION))
    run(*first)
    run(*second)
    assert first[0].keys != second[0].keys


def test_unknown_identity_is_refused() -> None:
    a = Handshake(ALICE, CHAIN, PEERS, protocol_version=VERSION)
    m = Handshake(MALLORY, CHAIN, PEERS, protocol_version=VERSION)
    a.receive_hello(m.hello())
    with pytest.raises(HandshakeError) as refused:
        a.receive_auth(body(m.receive_hello(a.hello())))
    assert refused.value.code == "unknown_peer"


def test_known_name_with_another_key_is_refused() -> None:
    impostor = Identity("bob", MALLORY.signing_key)
    a = Handshake(ALICE, CHAIN, PEERS, protocol_version=VERSION)
    m = Handshake(impostor, CHAIN, PEERS, protocol_version=VERSION)
    a.receive_hello(m.hello())
    with pytest.raises(HandshakeError) as refused:
        a.receive_auth(body(m.receive_hello(a.hello())))
    assert refused.value.code == "unknown_key"


def test_dialled_peer_must_be_the_expected_one() -> None:
    carol = identity("carol")
    peers = PeerSet.of([ALICE.as_peer(), BOB.as_peer(), carol.as_peer()])
    a = Handshake(ALICE, CHAIN, peers, expected_peer="bob", protocol_version=VERSION)
    c = Handshake(carol, CHAIN, peers, protocol_version=VERSION)
    with pytest.raises(HandshakeError) as refused:
        run(a, c)
    assert refused.value.code == "unexpected_peer"


def test_other_chain_is_refused() -> None:
    a = Handshake(ALICE, CHAIN, PEERS, protocol_version=VERSION)
    b = Handshake(BOB, "other-chain", PEERS, protocol_version=VERSION)
    with pytest.raises(HandshakeError) as refused:
        run(a, b)
    assert refused.value.code in {"wrong_chain", "auth_decrypt_failed"}


def test_other_protocol_version_is_refused_on_both_sides() -> None:
    """A node of ledger protocol 2 and one of protocol 3, same chain, both in each other's peer set: each side reads
    the other's auth frame, verifies the signature and refuses with wrong_protocol naming both versions; neither
    admits the other, so neither sends an ACCEPT."""
    a = Handshake(ALICE, CHAIN, PEERS, expected_peer="bob", protocol_version=3)
    b = Handshake(BOB, CHAIN, PEERS, protocol_version=2)
    auth_a = a.receive_hello(b.hello())
    auth_b = b.receive_hello(a.hello())
    with pytest.raises(HandshakeError) as refused_by_a:
        a.receive_auth(body(auth_b))
    with pytest.raises(HandshakeError) as refused_by_b:
        b.receive_auth(body(auth_a))
    assert refused_by_a.value.code == refused_by_b.value.code == "wrong_protocol"
    assert "'bob' runs ledger protocol 2, this node runs 3" in refused_by_a.value.message
    assert "'alice' runs ledger protocol 3, this node runs 2" in refused_by_b.value.message
    for side in (a, b):
        with pytest.raises(AssertionError):  # not admitted: there is no ACCEPT to send
            side.accept()
    # What each sends instead is a CLOSE naming the code; a side that had got past the auth reads it as such.
    verdict = a.refusal(refused_by_a.value.code)
    assert verdict is not None and b.opener is not None
    assert b.opener.open(body(verdict)) == (KIND_CLOSE, b"wrong_protocol")


def test_equal_protocol_versions_connect_whatever_the_version() -> None:
    for version in (1, 2, VERSION, 2**32 - 1):
        session_a, session_b = run(Handshake(ALICE, CHAIN, PEERS, protocol_version=version),
                                   Handshake(BOB, CHAIN, PEERS, protocol_version=version))
        assert session_a.peer.node_id == "bob" and session_b.peer.node_id == "alice"


def test_the_protocol_version_is_signed() -> None:
    """Bob signs protocol 2 but announces 3 (what a tampered auth payload would show): the signature does not cover
    the announced version, so alice refuses with bad_signature, not by trusting the announcement."""
    a, b = Handshake(ALICE, CHAIN, PEERS, protocol_version=3), Handshake(BOB, CHAIN, PEERS, protocol_version=2)
    a.receive_hello(b.hello())
    b.receive_hello(a.hello())
    assert b.keys is not None
    signature = BOB.signing_key.sign(signed_message(b.role, b.keys, 2)).signature
    relabelled = msgpack.packb(["bob", CHAIN, 3, BOB.public_key, signature])
    with pytest.raises(HandshakeError) as refused:
        a.receive_auth(body(first_sealer(b).seal(KIND_AUTH, relabelled)))
    assert refused.value.code == "bad_signature"


def test_a_handshake_needs_a_valid_protocol_version() -> None:
    for version in (0, -1, 2**32, True, "3"):
        with pytest.raises(AssertionError):
            Handshake(ALICE, CHAIN, PEERS, protocol_version=version)  # type: ignore[arg-type]


def test_man_in_the_middle_relaying_a_signature_is_refused() -> None:
    """M runs one exchange with alice and one with bob and relays bob's auth to alice re-encrypted: bob's signature
    covers the M-bob transcript, not the alice-M one."""
    a = Handshake(ALICE, CHAIN, PEERS, expected_peer="bob", protocol_version=VERSION)
    b = Handshake(BOB, CHAIN, PEERS, protocol_version=VERSION)
    m_to_a = Handshake(MALLORY, CHAIN, PEERS, protocol_version=VERSION)
    m_to_b = Handshake(MALLORY, CHAIN, PEERS, protocol_version=VERSION)
    m_to_a.receive_hello(a.hello())
    a.receive_hello(m_to_a.hello())
    m_to_b.receive_hello(b.hello())
    auth_b = b.receive_hello(m_to_b.hello())
    assert m_to_b.opener is not None and m_to_a.sealer is not None
    kind, relayed = m_to_b.opener.open(body(auth_b))
    assert kind == KIND_AUTH
    with pytest.raises(HandshakeError) as refused:
        a.receive_auth(body(first_sealer(m_to_a).seal(KIND_AUTH, relayed)))
    assert refused.value.code == "bad_signature"


def test_signature_over_a_different_role_is_refused() -> None:
    """A valid signature by bob over the same transcript but the other role byte does not pass."""
    a = Handshake(ALICE, CHAIN, PEERS, protocol_version=VERSION)
    b = Handshake(BOB, CHAIN, PEERS, protocol_version=VERSION)
    a.receive_hello(b.hello())
    b.receive_hello(a.hello())
    assert b.keys is not None and b.sealer is not None
    wrong = BOB.signing_key.sign(signed_message(a.role, b.keys, VERSION)).signature
    forged = msgpack.packb(["bob", CHAIN, VERSION, BOB.public_key, wrong])
    with pytest.raises(HandshakeError) as refused:
        a.receive_auth(body(first_sealer(b).seal(KIND_AUTH, forged)))
    assert refused.value.code == "bad_signature"


@pytest.mark.parametrize(
    ("hello", "code"),
    [
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + bytes(13), "bad_magic"),
        (MAGIC + bytes(32), "low_order_key"),
        (MAGIC[:-1] + b"\x01" + bytes(range(32)), "bad_magic"),  # wire version 1 had no verdict frame
        (MAGIC[:-1] + b"\x02" + bytes(range(32)), "bad_magic"),  # wire version 2 had no protocol version
    ],
)
def test_bad_hellos_are_refused(hello: bytes, code: str) -> None:
    assert len(hello) == HELLO_BYTES
    with pytest.raises(HandshakeError) as refused:
        Handshake(ALICE, CHAIN, PEERS, protocol_version=VERSION).receive_hello(hello)
    assert refused.value.code == code


def test_reflected_hello_and_own_identity_are_refused() -> None:
    a = Handshake(ALICE, CHAIN, PEERS, protocol_version=VERSION)
    with pytest.raises(HandshakeError) as refused:
        a.receive_hello(a.hello())
    assert refused.value.code == "reflected_key"
    a = Handshake(ALICE, CHAIN, PEERS, protocol_version=VERSION)
    twin = Handshake(ALICE, CHAIN, PEERS, protocol_version=VERSION)
    with pytest.raises(HandshakeError) as refused:
        run(a, twin)
    assert refused.value.code == "self_connection"


def test_malformed_auth_payloads_are_refused() -> None:
    for payload in (
        b"\xc1",
        msgpack.packb(["bob", CHAIN]),
        msgpack.packb(["bob", CHAIN, VERSION, b"k" * 31, b"s" * 64]),
        msgpack.packb(["bob", CHAIN, BOB.public_key, b"s" * 64]),  # wire version 2's shape: no protocol version
        *(msgpack.packb(["bob", CHAIN, version, BOB.public_key, b"s" * 64])
          for version in (0, -1, 2**32, True, "3", 3.0, None)),
    ):
        a = Handshake(ALICE, CHAIN, PEERS, protocol_version=VERSION)
        b = Handshake(BOB, CHAIN, PEERS, protocol_version=VERSION)
        a.receive_hello(b.hello())
        b.receive_hello(a.hello())
        assert b.sealer is not None
        with pytest.raises(HandshakeError) as refused:
            a.receive_auth(body(first_sealer(b).seal(KIND_AUTH, payload)))
        assert refused.value.code == "malformed_auth"


def test_a_refused_side_reads_the_reason_in_the_verdict_and_never_sees_the_link_up() -> None:
    """Bob does not admit Alice's key, Alice admits Bob: Alice's check of Bob's auth passes, so only the verdict
    frame tells her that Bob hangs up, and why."""
    impostor = Identity("alice", nacl.signing.SigningKey(hashlib.sha256(b"not alice").digest()))
    a = Handshake(impostor, CHAIN, PeerSet.of([impostor.as_peer(), BOB.as_peer()]), expected_peer="bob",
                  protocol_version=VERSION)
    b = Handshake(BOB, CHAIN, PEERS, protocol_version=VERSION)
    auth_a = a.receive_hello(b.hello())
    auth_b = b.receive_hello(a.hello())
    a.receive_auth(body(auth_b))
    with pytest.raises(HandshakeError) as refused:
        b.receive_auth(body(auth_a))
    assert refused.value.code == "unknown_key"
    verdict = b.refusal(refused.value.code)
    assert verdict is not None
    with pytest.raises(HandshakeError) as told:
        a.receive_verdict(body(verdict))
    assert told.value.code == "refused_by_peer" and "unknown_key" in told.value.message


def test_a_side_without_keys_has_no_verdict_to_send() -> None:
    assert Handshake(ALICE, CHAIN, PEERS, protocol_version=VERSION).refusal("bad_magic") is None


def test_a_verdict_other_than_accept_or_close_is_refused() -> None:
    def admitted_pair() -> tuple[Handshake, Handshake]:
        a = Handshake(ALICE, CHAIN, PEERS, protocol_version=VERSION)
        b = Handshake(BOB, CHAIN, PEERS, protocol_version=VERSION)
        auth_a = a.receive_hello(b.hello())
        auth_b = b.receive_hello(a.hello())
        a.receive_auth(body(auth_b))
        b.receive_auth(body(auth_a))
        return a, b

    a, b = admitted_pair()
    assert b.sealer is not None
    with pytest.raises(HandshakeError) as refused:  # data before the verdict
        a.receive_verdict(body(b.sealer.seal(KIND_DATA, b"early")))
    assert refused.value.code == "malformed_verdict"
    a, b = admitted_pair()
    assert b.sealer is not None
    with pytest.raises(HandshakeError) as refused:  # an ACCEPT must be empty
        a.receive_verdict(body(b.sealer.seal(KIND_ACCEPT, b"x")))
    assert refused.value.code == "malformed_verdict"
    a, b = admitted_pair()
    tampered = bytearray(b.accept())
    tampered[-1] ^= 1
    with pytest.raises(HandshakeError) as refused:
        a.receive_verdict(body(bytes(tampered)))
    assert refused.value.code == "verdict_decrypt_failed"


def test_replayed_reordered_and_tampered_frames_are_refused() -> None:
    sealer, opener = FrameSealer(bytes(range(32))), FrameOpener(bytes(range(32)))
    frames = [sealer.seal(KIND_DATA, b"m%d" % n) for n in range(4)]
    assert opener.open(body(frames[0])) == (KIND_DATA, b"m0")
    with pytest.raises(FrameError) as refused:
        opener.open(body(frames[0]))
    assert refused.value.code == "replayed_frame"
    with pytest.raises(FrameError) as refused:
        opener.open(body(frames[2]))
    assert refused.value.code == "out_of_order_frame"
    tampered = bytearray(frames[1])
    tampered[-1] ^= 1
    with pytest.raises(FrameError) as refused:
        opener.open(body(bytes(tampered)))
    assert refused.value.code == "decrypt_failed"
    # A forged counter in the header fails the tag too: the counter is part of the nonce and the aad.
    forged = bytearray(frames[2])
    forged[LENGTH_BYTES : LENGTH_BYTES + 8] = (1).to_bytes(8, "big")
    with pytest.raises(FrameError) as refused:
        opener.open(body(bytes(forged)))
    assert refused.value.code == "decrypt_failed"
    assert opener.expected == 1
    assert opener.open(body(frames[1])) == (KIND_DATA, b"m1")


def test_frame_limit_is_checked_on_the_prefix_alone() -> None:
    limit = 1000
    assert body_length((limit + BODY_OVERHEAD).to_bytes(4, "big"), limit) == limit + BODY_OVERHEAD
    for announced, code in ((limit + BODY_OVERHEAD + 1, "frame_too_large"), (2**32 - 1, "frame_too_large"),
                            (BODY_OVERHEAD - 1, "frame_too_short")):
        with pytest.raises(FrameError) as refused:
            body_length(announced.to_bytes(4, "big"), limit)
        assert refused.value.code == code


def test_hkdf_matches_rfc5869_case_1() -> None:
    okm = hkdf_sha256(bytes.fromhex("0b" * 22), bytes.fromhex("000102030405060708090a0b0c"),
                      bytes.fromhex("f0f1f2f3f4f5f6f7f8f9"), 42)
    assert okm.hex() == (
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
    )


# The vector docs/transport.md publishes: identity seeds sha256(name), ephemeral secrets 0x01*32 (alice) and
# 0x02*32 (bob), chain "test-chain", ledger protocol version 3.
VECTOR = {
    "alice_ephemeral": "a4e09292b651c278b9772c569f5fa9bb13d906b46ab68c9df9dc2b4409f8a209",
    "bob_ephemeral": "ce8d3ad1ccb633ec7b70c17814a5c76ecd029685050d344745ba05870e587d59",
}


def test_vector_is_reproducible() -> None:
    a = Handshake(ALICE, CHAIN, PEERS, ephemeral_secret=bytes([1]) * 32, protocol_version=VERSION)
    b = Handshake(BOB, CHAIN, PEERS, ephemeral_secret=bytes([2]) * 32, protocol_version=VERSION)
    assert a.ephemeral_public.hex() == VECTOR["alice_ephemeral"]
    assert b.ephemeral_public.hex() == VECTOR["bob_ephemeral"]
    assert a.hello().hex() == "434c503250000003" + VECTOR["alice_ephemeral"]
    assert b.hello().hex() == "434c503250000003" + VECTOR["bob_ephemeral"]
    auth_a = a.receive_hello(b.hello())
    auth_b = b.receive_hello(a.hello())
    keys = a.keys
    assert keys is not None
    assert keys.transcript == transcript_hash(CHAIN, b.ephemeral_public, a.ephemeral_public)
    assert keys.transcript.hex() == VECTOR_KEYS["transcript"]
    assert keys.low_to_high.hex() == VECTOR_KEYS["low_to_high"]
    assert keys.high_to_low.hex() == VECTOR_KEYS["high_to_low"]
    assert keys.challenge.hex() == VECTOR_KEYS["challenge"]
    assert auth_a.hex() == VECTOR_KEYS["alice_auth_frame"]
    message = signed_message(a.role, keys, VERSION)
    assert message.hex() == (
        "636f6e736f727469756d2d6c65646765722f7032702f312061757468" + "00" + "00000003"
        + VECTOR_KEYS["transcript"] + VECTOR_KEYS["challenge"]
    )
    signature = ALICE.signing_key.sign(message).signature
    assert a.role == 0 and signature.hex() == VECTOR_KEYS["alice_signature"]
    assert a.opener is not None and b.opener is not None
    assert b.opener.open(body(auth_a)) == (
        KIND_AUTH, msgpack.packb(["alice", CHAIN, VERSION, ALICE.public_key, signature])
    )
    session = a.receive_auth(body(auth_b))
    assert a.accept().hex() == VECTOR_KEYS["alice_accept_frame_1"]
    assert session.sealer.seal(KIND_DATA, b"hello").hex() == VECTOR_KEYS["alice_data_frame_2"]


VECTOR_KEYS = {
    "alice_signature": (
        "a9f675567c4d00f1fbfdc77f400ef98b1d8b2337b6c1de7415289817b7a4fe30"
        "16754aa80ff2f98a14695cbf32db7a21f5cbf0b66f478a6f1e4715d261407a0c"
    ),
    "alice_accept_frame_1": "0000001900000000000000014fc8ac1fb45f7c52204eaebadb6fc695c4",
    "alice_data_frame_2": "0000001e00000000000000024ca44ecf7918899d67665b9e9f8c96737b410059aa32",
    "transcript": "c523ff49c42277a9a5c44ea06ed78ddfc85e6a5f466412d513cc6eda3e761bd5",
    "low_to_high": "b355df9f8dff404b798536ed579215590184c6d2e4e63a99c5b4885ce2bf8057",
    "high_to_low": "a39de05ffb651c538ac50cdb9daa8a870f8c233312a43de246cef72f54b6d74f",
    "challenge": "0359f738aa797b242aaff720526a91b36684d611fa82af91490de509016b9839",
    "alice_auth_frame": (
        "0000009000000000000000007cf50004d75d743e3a6134d3639208f537691242c582893c9a2d204634e3c439cdd9706c5595f848"
        "0aa5cdb84828bf0273603064e934cb04b597502b91401f9054bfacb198e25bf3362ba5bd376dd6f4cd92ea0055d49d3bd65c1305"
        "b25c0c0d88ddc476f8a35cff3e4755bafcecc5df39b030f8803396c797fee6769172f0560e57880f71745285"
    ),
}


@settings(max_examples=60, deadline=None)
@given(payloads=st.lists(st.binary(max_size=2048), min_size=1, max_size=6), pick=st.integers(min_value=0))
def test_frames_round_trip_and_any_flipped_bit_is_refused(payloads: list[bytes], pick: int) -> None:
    key = hashlib.sha256(b"property").digest()
    sealer, opener = FrameSealer(key), FrameOpener(key)
    frames = [sealer.seal(KIND_DATA, payload) for payload in payloads]
    victim = pick % len(frames)
    for index in range(victim):
        assert opener.open(body(frames[index])) == (KIND_DATA, payloads[index])
    frame = bytearray(frames[victim])
    bit = (pick // len(frames)) % ((len(frame) - LENGTH_BYTES) * 8)
    frame[LENGTH_BYTES + bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(FrameError) as refused:
        opener.open(bytes(frame[LENGTH_BYTES:]))
    assert refused.value.code in {"decrypt_failed", "replayed_frame", "out_of_order_frame"}
    # The intact frame is still accepted afterwards: a refused frame does not advance the counter.
    assert opener.open(body(frames[victim])) == (KIND_DATA, payloads[victim])


def test_a_rotated_peer_is_admitted_with_its_previous_key_and_its_new_one_but_no_other() -> None:
    import dataclasses

    new_bob = Identity("bob", nacl.signing.SigningKey(hashlib.sha256(b"bob, rotated").digest()))
    rotating = PeerSet.of([ALICE.as_peer(), dataclasses.replace(new_bob.as_peer(), previous_key=BOB.public_key)])
    for bob in (BOB, new_bob):
        session_a, _ = run(Handshake(ALICE, CHAIN, rotating, protocol_version=VERSION),
                           Handshake(bob, CHAIN, PEERS if bob is BOB else rotating, protocol_version=VERSION))
        assert session_a.peer.node_id == "bob" and session_a.key == bob.public_key
    mallory_as_bob = Identity("bob", MALLORY.signing_key)
    with pytest.raises(HandshakeError) as err:
        run(Handshake(ALICE, CHAIN, rotating, protocol_version=VERSION),
            Handshake(mallory_as_bob, CHAIN, rotating, protocol_version=VERSION))
    assert err.value.code == "unknown_key"
    with pytest.raises(AssertionError):  # a key may not serve two nodes, not even as a previous key
        PeerSet.of([ALICE.as_peer(), dataclasses.replace(new_bob.as_peer(), previous_key=ALICE.public_key)])
