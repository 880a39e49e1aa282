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
    a, b = Handshake(ALICE, CHAIN, PEERS, expected_peer="bob"), Handshake(BOB, CHAIN, PEERS)
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
    first = Handshake(ALICE, CHAIN, PEERS), Handshake(BOB, CHAIN, PEERS)
    second = Handshake(ALICE, CHAIN, PEERS), Handshake(BOB, CHAIN, PEERS)
    run(*first)
    run(*second)
    assert first[0].keys != second[0].keys


def test_unknown_identity_is_refused() -> None:
    a, m = Handshake(ALICE, CHAIN, PEERS), Handshake(MALLORY, CHAIN, PEERS)
    a.receive_hello(m.hello())
    with pytest.raises(HandshakeError) as refused:
        a.receive_auth(body(m.receive_hello(a.hello())))
    assert refused.value.code == "unknown_peer"


def test_known_name_with_another_key_is_refused() -> None:
    impostor = Identity("bob", MALLORY.signing_key)
    a, m = Handshake(ALICE, CHAIN, PEERS), Handshake(impostor, CHAIN, PEERS)
    a.receive_hello(m.hello())
    with pytest.raises(HandshakeError) as refused:
        a.receive_auth(body(m.receive_hello(a.hello())))
    assert refused.value.code == "unknown_key"


def test_dialled_peer_must_be_the_expected_one() -> None:
    carol = identity("carol")
    peers = PeerSet.of([ALICE.as_peer(), BOB.as_peer(), carol.as_peer()])
    a, c = Handshake(ALICE, CHAIN, peers, expected_peer="bob"), Handshake(carol, CHAIN, peers)
    with pytest.raises(HandshakeError) as refused:
        run(a, c)
    assert refused.value.code == "unexpected_peer"


def test_other_chain_is_refused() -> None:
    a, b = Handshake(ALICE, CHAIN, PEERS), Handshake(BOB, "other-chain", PEERS)
    with pytest.raises(HandshakeError) as refused:
        run(a, b)
    assert refused.value.code in {"wrong_chain", "auth_decrypt_failed"}


def test_man_in_the_middle_relaying_a_signature_is_refused() -> None:
    """M runs one exchange with alice and one with bob and relays bob's auth to alice re-encrypted: bob's signature
    covers the M-bob transcript, not the alice-M one."""
    a, b = Handshake(ALICE, CHAIN, PEERS, expected_peer="bob"), Handshake(BOB, CHAIN, PEERS)
    m_to_a, m_to_b = Handshake(MALLORY, CHAIN, PEERS), Handshake(MALLORY, CHAIN, PEERS)
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
    a, b = Handshake(ALICE, CHAIN, PEERS), Handshake(BOB, CHAIN, PEERS)
    a.receive_hello(b.hello())
    b.receive_hello(a.hello())
    assert b.keys is not None and b.sealer is not None
    wrong = BOB.signing_key.sign(signed_message(a.role, b.keys)).signature
    forged = msgpack.packb(["bob", CHAIN, BOB.public_key, wrong])
    with pytest.raises(HandshakeError) as refused:
        a.receive_auth(body(first_sealer(b).seal(KIND_AUTH, forged)))
    assert refused.value.code == "bad_signature"


@pytest.mark.parametrize(
    ("hello", "code"),
    [
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + bytes(13), "bad_magic"),
        (MAGIC + bytes(32), "low_order_key"),
        (MAGIC[:-1] + b"\x01" + bytes(range(32)), "bad_magic"),  # wire version 1 had no verdict frame
    ],
)
def test_bad_hellos_are_refused(hello: bytes, code: str) -> None:
    assert len(hello) == HELLO_BYTES
    with pytest.raises(HandshakeError) as refused:
        Handshake(ALICE, CHAIN, PEERS).receive_hello(hello)
    assert refused.value.code == code


def test_reflected_hello_and_own_identity_are_refused() -> None:
    a = Handshake(ALICE, CHAIN, PEERS)
    with pytest.raises(HandshakeError) as refused:
        a.receive_hello(a.hello())
    assert refused.value.code == "reflected_key"
    a, twin = Handshake(ALICE, CHAIN, PEERS), Handshake(ALICE, CHAIN, PEERS)
    with pytest.raises(HandshakeError) as refused:
        run(a, twin)
    assert refused.value.code == "self_connection"


def test_malformed_auth_payloads_are_refused() -> None:
    for payload in (b"\xc1", msgpack.packb(["bob", CHAIN]), msgpack.packb(["bob", CHAIN, b"k" * 31, b"s" * 64])):
        a, b = Handshake(ALICE, CHAIN, PEERS), Handshake(BOB, CHAIN, PEERS)
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
    a = Handshake(impostor, CHAIN, PeerSet.of([impostor.as_peer(), BOB.as_peer()]), expected_peer="bob")
    b = Handshake(BOB, CHAIN, PEERS)
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
    assert Handshake(ALICE, CHAIN, PEERS).refusal("bad_magic") is None


def test_a_verdict_other_than_accept_or_close_is_refused() -> None:
    def admitted_pair() -> tuple[Handshake, Handshake]:
        a, b = Handshake(ALICE, CHAIN, PEERS), Handshake(BOB, CHAIN, PEERS)
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
# 0x02*32 (bob), chain "test-chain".
VECTOR = {
    "alice_ephemeral": "a4e09292b651c278b9772c569f5fa9bb13d906b46ab68c9df9dc2b4409f8a209",
    "bob_ephemeral": "ce8d3ad1ccb633ec7b70c17814a5c76ecd029685050d344745ba05870e587d59",
}


def test_vector_is_reproducible() -> None:
    a = Handshake(ALICE, CHAIN, PEERS, ephemeral_secret=bytes([1]) * 32)
    b = Handshake(BOB, CHAIN, PEERS, ephemeral_secret=bytes([2]) * 32)
    assert a.ephemeral_public.hex() == VECTOR["alice_ephemeral"]
    assert b.ephemeral_public.hex() == VECTOR["bob_ephemeral"]
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
    signature = ALICE.signing_key.sign(signed_message(a.role, keys)).signature
    assert a.role == 0 and signature.hex() == VECTOR_KEYS["alice_signature"]
    session = a.receive_auth(body(auth_b))
    assert a.accept().hex() == VECTOR_KEYS["alice_accept_frame_1"]
    assert session.sealer.seal(KIND_DATA, b"hello").hex() == VECTOR_KEYS["alice_data_frame_2"]


VECTOR_KEYS = {
    "alice_signature": (
        "2c5b7649fb7617743b7bb6c0133a390f14db56bb153bbe83245317866aaa8e2f"
        "669584334b5a212afaa2cf55166847ce8326772f506166dac0fe912fd0818e0b"
    ),
    "alice_accept_frame_1": "0000001900000000000000014fc8ac1fb45f7c52204eaebadb6fc695c4",
    "alice_data_frame_2": "0000001e00000000000000024ca44ecf7918899d67665b9e9f8c96737b410059aa32",
    "transcript": "c523ff49c42277a9a5c44ea06ed78ddfc85e6a5f466412d513cc6eda3e761bd5",
    "low_to_high": "b355df9f8dff404b798536ed579215590184c6d2e4e63a99c5b4885ce2bf8057",
    "high_to_low": "a39de05ffb651c538ac50cdb9daa8a870f8c233312a43de246cef72f54b6d74f",
    "challenge": "0359f738aa797b242aaff720526a91b36684d611fa82af91490de509016b9839",
    "alice_auth_frame": (
        "0000008f00000000000000007cf40004d75d743e3a6134d3639208f5376912852177e3c9efde0bb6936b777e26b7d246dc70ccb8"
        "d128b713bd538088219f1f5947344f6847176c869b1a6b5ad4f4abdde2d5ad6cf0f63d9fba128ba48badf47d48fe4c6d55ad6ae6"
        "e78fdf7d3e7bcddfa23fe85dedfb8a5cf2cd9570d9660afa60fde79d94a11f3619d2637b914497266a8628"
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
        session_a, _ = run(Handshake(ALICE, CHAIN, rotating), Handshake(bob, CHAIN, PEERS if bob is BOB else rotating))
        assert session_a.peer.node_id == "bob" and session_a.key == bob.public_key
    mallory_as_bob = Identity("bob", MALLORY.signing_key)
    with pytest.raises(HandshakeError) as err:
        run(Handshake(ALICE, CHAIN, rotating), Handshake(mallory_as_bob, CHAIN, rotating))
    assert err.value.code == "unknown_key"
    with pytest.raises(AssertionError):  # a key may not serve two nodes, not even as a previous key
        PeerSet.of([ALICE.as_peer(), dataclasses.replace(new_bob.as_peer(), previous_key=ALICE.public_key)])
