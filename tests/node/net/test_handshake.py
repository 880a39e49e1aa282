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
# The genesis hash the tests (and the vector) bind: any 32 bytes, the handshake only compares them.
GENESIS = hashlib.sha256(b"test-chain genesis").digest()
OTHER_GENESIS = hashlib.sha256(b"test-chain genesis, re-created").digest()


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
    a = Handshake(ALICE, CHAIN, PEERS, expected_peer="bob", protocol_version=VERSION, genesis_hash=GENESIS)
    b = Handshake(BOB, CHAIN, PEERS, protocol_version=VERSION, genesis_hash=GENESIS)
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
    first = (Handshake(ALICE, CHAIN, PEERS, protocol_version=VERSION, genesis_hash=GENESIS),
             Handshake(BOB, CHAIN, PEERS, protocol_version=VERSION, genesis_hash=GENESIS))
    second = (Handshake(ALICE, CHAIN, PEERS, protocol_version=VERSION, genesis_hash=GENESIS),
              Handshake(BOB, CHAIN, PEERS, protocol_version=VERSION, genesis_hash=GENESIS))
    run(*first)
    run(*second)
    assert first[0].keys != second[0].keys


def test_unknown_identity_is_refused() -> None:
    a = Handshake(ALICE, CHAIN, PEERS, protocol_version=VERSION, genesis_hash=GENESIS)
    m = Handshake(MALLORY, CHAIN, PEERS, protocol_version=VERSION, genesis_hash=GENESIS)
    a.receive_hello(m.hello())
    with pytest.raises(HandshakeError) as refused:
        a.receive_auth(body(m.receive_hello(a.hello())))
    assert refused.value.code == "unknown_peer"


def test_known_name_with_another_key_is_refused() -> None:
    impostor = Identity("bob", MALLORY.signing_key)
    a = Handshake(ALICE, CHAIN, PEERS, protocol_version=VERSION, genesis_hash=GENESIS)
    m = Handshake(impostor, CHAIN, PEERS, protocol_version=VERSION, genesis_hash=GENESIS)
    a.receive_hello(m.hello())
    with pytest.raises(HandshakeError) as refused:
        a.receive_auth(body(m.receive_hello(a.hello())))
    assert refused.value.code == "unknown_key"


def test_dialled_peer_must_be_the_expected_one() -> None:
    carol = identity("carol")
    peers = PeerSet.of([ALICE.as_peer(), BOB.as_peer(), carol.as_peer()])
    a = Handshake(ALICE, CHAIN, peers, expected_peer="bob", protocol_version=VERSION, genesis_hash=GENESIS)
    c = Handshake(carol, CHAIN, peers, protocol_version=VERSION, genesis_hash=GENESIS)
    with pytest.raises(HandshakeError) as refused:
        run(a, c)
    assert refused.value.code == "unexpected_peer"


def refused_on_both_sides(a: Handshake, b: Handshake) -> tuple[HandshakeError, HandshakeError]:
    """Both sides exchange hellos and auth frames and each refuses the other's auth: returns (a's error, b's error)
    after checking that neither admitted the other (no ACCEPT to send) and that each side's CLOSE carries its code."""
    auth_a = a.receive_hello(b.hello())
    auth_b = b.receive_hello(a.hello())
    with pytest.raises(HandshakeError) as refused_by_a:
        a.receive_auth(body(auth_b))
    with pytest.raises(HandshakeError) as refused_by_b:
        b.receive_auth(body(auth_a))
    for side in (a, b):
        with pytest.raises(AssertionError):  # not admitted: there is no ACCEPT to send
            side.accept()
    for side, other, error in ((a, b, refused_by_a.value), (b, a, refused_by_b.value)):
        verdict = side.refusal(error.code)
        assert verdict is not None and other.opener is not None
        assert other.opener.open(body(verdict)) == (KIND_CLOSE, error.code.encode())
    return refused_by_a.value, refused_by_b.value


def test_other_chain_is_refused_on_both_sides_with_wrong_chain() -> None:
    """The chain id is signed, not in the transcript hash: a node of another chain derives the same keys, so each
    side reads the other's auth frame and refuses it by name (before wire version 3 it was auth_decrypt_failed)."""
    a = Handshake(ALICE, CHAIN, PEERS, protocol_version=VERSION, genesis_hash=GENESIS)
    b = Handshake(BOB, "other-chain", PEERS, protocol_version=VERSION, genesis_hash=OTHER_GENESIS)
    by_a, by_b = refused_on_both_sides(a, b)
    assert by_a.code == by_b.code == "wrong_chain"
    assert by_a.message == "peer 'bob' is on chain 'other-chain', this node on 'test-chain'"
    assert by_b.message == "peer 'alice' is on chain 'test-chain', this node on 'other-chain'"


def test_other_genesis_under_the_same_chain_id_is_refused_on_both_sides() -> None:
    """Two networks created from different genesis files under one chain id (a re-created testnet whose nodes kept
    their keys): each side verifies the other's signature, then refuses with wrong_genesis naming both hash
    prefixes; neither admits the other, so neither sends an ACCEPT and no link can come up."""
    a = Handshake(ALICE, CHAIN, PEERS, expected_peer="bob", protocol_version=VERSION, genesis_hash=GENESIS)
    b = Handshake(BOB, CHAIN, PEERS, protocol_version=VERSION, genesis_hash=OTHER_GENESIS)
    by_a, by_b = refused_on_both_sides(a, b)
    assert by_a.code == by_b.code == "wrong_genesis"
    ours, theirs = GENESIS.hex()[:16], OTHER_GENESIS.hex()[:16]
    both = f"(both chain {CHAIN!r})"
    assert by_a.message == f"peer 'bob' runs genesis {theirs}…, this node runs genesis {ours}… {both}"
    assert by_b.message == f"peer 'alice' runs genesis {ours}…, this node runs genesis {theirs}… {both}"


def test_genesis_differing_in_one_bit_is_refused_and_equal_genesis_connects() -> None:
    for genesis in (GENESIS, OTHER_GENESIS, bytes(32), b"\xff" * 32):
        session_a, session_b = run(Handshake(ALICE, CHAIN, PEERS, protocol_version=VERSION, genesis_hash=genesis),
                                   Handshake(BOB, CHAIN, PEERS, protocol_version=VERSION, genesis_hash=genesis))
        assert session_a.peer.node_id == "bob" and session_b.peer.node_id == "alice"
        flipped = genesis[:31] + bytes((genesis[31] ^ 1,))
        by_a, by_b = refused_on_both_sides(
            Handshake(ALICE, CHAIN, PEERS, protocol_version=VERSION, genesis_hash=genesis),
            Handshake(BOB, CHAIN, PEERS, protocol_version=VERSION, genesis_hash=flipped),
        )
        assert by_a.code == by_b.code == "wrong_genesis"


def test_another_chain_or_genesis_is_compared_only_for_a_member_that_signed_it() -> None:
    """The comparison comes after the peer-set and signature checks: a stranger of another genesis is an unknown
    peer, and values a member did not sign are a bad signature, never a wrong_chain/wrong_genesis verdict."""
    m = Handshake(MALLORY, CHAIN, PEERS, protocol_version=VERSION, genesis_hash=OTHER_GENESIS)
    a = Handshake(ALICE, CHAIN, PEERS, protocol_version=VERSION, genesis_hash=GENESIS)
    a.receive_hello(m.hello())
    with pytest.raises(HandshakeError) as refused:
        a.receive_auth(body(m.receive_hello(a.hello())))
    assert refused.value.code == "unknown_peer"
    # Bob signs one chain and genesis and announces another (what a tampered auth payload would show).
    for signed, announced in (
        ((CHAIN, OTHER_GENESIS), (CHAIN, GENESIS)),
        ((CHAIN, GENESIS), (CHAIN, OTHER_GENESIS)),
        (("other-chain", GENESIS), (CHAIN, GENESIS)),
        ((CHAIN, GENESIS), ("other-chain", GENESIS)),
    ):
        a = Handshake(ALICE, CHAIN, PEERS, protocol_version=VERSION, genesis_hash=GENESIS)
        b = Handshake(BOB, CHAIN, PEERS, protocol_version=VERSION, genesis_hash=GENESIS)
        a.receive_hello(b.hello())
        b.receive_hello(a.hello())
        assert b.keys is not None
        signature = BOB.signing_key.sign(signed_message(b.role, b.keys, chain_id=signed[0], genesis_hash=signed[1],
                                                        protocol_version=VERSION)).signature
        relabelled = msgpack.packb(["bob", announced[0], announced[1], VERSION, BOB.public_key, signature])
        with pytest.raises(HandshakeError) as refused:
            a.receive_auth(body(first_sealer(b).seal(KIND_AUTH, relabelled)))
        assert refused.value.code == "bad_signature"


def test_a_handshake_needs_a_valid_chain_id_and_genesis_hash() -> None:
    for genesis in (bytes(31), bytes(33), b"", bytearray(32), GENESIS.hex(), None):
        with pytest.raises(AssertionError):
            Handshake(ALICE, CHAIN, PEERS, protocol_version=VERSION, genesis_hash=genesis)  # type: ignore[arg-type]
    for chain in ("", "c" * 65, "\ud800", b"test-chain"):
        with pytest.raises(AssertionError):
            Handshake(ALICE, chain, PEERS, protocol_version=VERSION, genesis_hash=GENESIS)  # type: ignore[arg-type]
    Handshake(ALICE, "c" * 64, PEERS, protocol_version=VERSION, genesis_hash=GENESIS)


def test_other_protocol_version_is_refused_on_both_sides() -> None:
    """A node of ledger protocol 2 and one of protocol 3, same chain, both in each other's peer set: each side reads
    the other's auth frame, verifies the signature and refuses with wrong_protocol naming both versions; neither
    admits the other, so neither sends an ACCEPT."""
    a = Handshake(ALICE, CHAIN, PEERS, expected_peer="bob", protocol_version=3, genesis_hash=GENESIS)
    b = Handshake(BOB, CHAIN, PEERS, protocol_version=2, genesis_hash=GENESIS)
    # Each sends a CLOSE naming the code instead of an ACCEPT (checked by refused_on_both_sides).
    by_a, by_b = refused_on_both_sides(a, b)
    assert by_a.code == by_b.code == "wrong_protocol"
    assert "'bob' runs ledger protocol 2, this node runs 3" in by_a.message
    assert "'alice' runs ledger protocol 3, this node runs 2" in by_b.message


def test_equal_protocol_versions_connect_whatever_the_version() -> None:
    for version in (1, 2, VERSION, 2**32 - 1):
        session_a, session_b = run(Handshake(ALICE, CHAIN, PEERS, protocol_version=version, genesis_hash=GENESIS),
                                   Handshake(BOB, CHAIN, PEERS, protocol_version=version, genesis_hash=GENESIS))
        assert session_a.peer.node_id == "bob" and session_b.peer.node_id == "alice"


def test_the_protocol_version_is_signed() -> None:
    """Bob signs protocol 2 but announces 3 (what a tampered auth payload would show): the signature does not cover
    the announced version, so alice refuses with bad_signature, not by trusting the announcement."""
    a = Handshake(ALICE, CHAIN, PEERS, protocol_version=3, genesis_hash=GENESIS)
    b = Handshake(BOB, CHAIN, PEERS, protocol_version=2, genesis_hash=GENESIS)
    a.receive_hello(b.hello())
    b.receive_hello(a.hello())
    assert b.keys is not None
    signature = BOB.signing_key.sign(
        signed_message(b.role, b.keys, chain_id=CHAIN, genesis_hash=GENESIS, protocol_version=2)
    ).signature
    relabelled = msgpack.packb(["bob", CHAIN, GENESIS, 3, BOB.public_key, signature])
    with pytest.raises(HandshakeError) as refused:
        a.receive_auth(body(first_sealer(b).seal(KIND_AUTH, relabelled)))
    assert refused.value.code == "bad_signature"


def test_a_handshake_needs_a_valid_protocol_version() -> None:
    for version in (0, -1, 2**32, True, "3"):
        with pytest.raises(AssertionError):
            Handshake(ALICE, CHAIN, PEERS, protocol_version=version, genesis_hash=GENESIS)  # type: ignore[arg-type]


def test_man_in_the_middle_relaying_a_signature_is_refused() -> None:
    """M runs one exchange with alice and one with bob and relays bob's auth to alice re-encrypted: bob's signature
    covers the M-bob transcript, not the alice-M one."""
    a = Handshake(ALICE, CHAIN, PEERS, expected_peer="bob", protocol_version=VERSION, genesis_hash=GENESIS)
    b = Handshake(BOB, CHAIN, PEERS, protocol_version=VERSION, genesis_hash=GENESIS)
    m_to_a = Handshake(MALLORY, CHAIN, PEERS, protocol_version=VERSION, genesis_hash=GENESIS)
    m_to_b = Handshake(MALLORY, CHAIN, PEERS, protocol_version=VERSION, genesis_hash=GENESIS)
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
    a = Handshake(ALICE, CHAIN, PEERS, protocol_version=VERSION, genesis_hash=GENESIS)
    b = Handshake(BOB, CHAIN, PEERS, protocol_version=VERSION, genesis_hash=GENESIS)
    a.receive_hello(b.hello())
    b.receive_hello(a.hello())
    assert b.keys is not None and b.sealer is not None
    wrong = BOB.signing_key.sign(
        signed_message(a.role, b.keys, chain_id=CHAIN, genesis_hash=GENESIS, protocol_version=VERSION)
    ).signature
    forged = msgpack.packb(["bob", CHAIN, GENESIS, VERSION, BOB.public_key, wrong])
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
        Handshake(ALICE, CHAIN, PEERS, protocol_version=VERSION, genesis_hash=GENESIS).receive_hello(hello)
    assert refused.value.code == code


def test_reflected_hello_and_own_identity_are_refused() -> None:
    a = Handshake(ALICE, CHAIN, PEERS, protocol_version=VERSION, genesis_hash=GENESIS)
    with pytest.raises(HandshakeError) as refused:
        a.receive_hello(a.hello())
    assert refused.value.code == "reflected_key"
    a = Handshake(ALICE, CHAIN, PEERS, protocol_version=VERSION, genesis_hash=GENESIS)
    twin = Handshake(ALICE, CHAIN, PEERS, protocol_version=VERSION, genesis_hash=GENESIS)
    with pytest.raises(HandshakeError) as refused:
        run(a, twin)
    assert refused.value.code == "self_connection"


def test_malformed_auth_payloads_are_refused() -> None:
    for payload in (
        b"\xc1",
        msgpack.packb(["bob", CHAIN]),
        msgpack.packb(["bob", CHAIN, GENESIS, VERSION, b"k" * 31, b"s" * 64]),
        msgpack.packb(["bob", CHAIN, BOB.public_key, b"s" * 64]),  # wire version 2's shape: no protocol version
        msgpack.packb(["bob", CHAIN, VERSION, BOB.public_key, b"s" * 64]),  # fbd1e26's shape: no genesis hash
        *(msgpack.packb(["bob", CHAIN, GENESIS, version, BOB.public_key, b"s" * 64])
          for version in (0, -1, 2**32, True, "3", 3.0, None)),
        *(msgpack.packb(["bob", CHAIN, genesis, VERSION, BOB.public_key, b"s" * 64])
          for genesis in (GENESIS[:31], GENESIS + b"\x00", b"", GENESIS.hex(), None, 3)),
        *(msgpack.packb(["bob", chain, GENESIS, VERSION, BOB.public_key, b"s" * 64])
          for chain in ("", "é" * 33, "c" * 65, b"test-chain", None)),
    ):
        a = Handshake(ALICE, CHAIN, PEERS, protocol_version=VERSION, genesis_hash=GENESIS)
        b = Handshake(BOB, CHAIN, PEERS, protocol_version=VERSION, genesis_hash=GENESIS)
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
                  protocol_version=VERSION, genesis_hash=GENESIS)
    b = Handshake(BOB, CHAIN, PEERS, protocol_version=VERSION, genesis_hash=GENESIS)
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
    assert Handshake(ALICE, CHAIN, PEERS, protocol_version=VERSION, genesis_hash=GENESIS).refusal("bad_magic") is None


def test_a_verdict_other_than_accept_or_close_is_refused() -> None:
    def admitted_pair() -> tuple[Handshake, Handshake]:
        a = Handshake(ALICE, CHAIN, PEERS, protocol_version=VERSION, genesis_hash=GENESIS)
        b = Handshake(BOB, CHAIN, PEERS, protocol_version=VERSION, genesis_hash=GENESIS)
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
# 0x02*32 (bob), chain "test-chain", genesis hash sha256("test-chain genesis") (GENESIS), ledger protocol version 3.
VECTOR = {
    "alice_ephemeral": "a4e09292b651c278b9772c569f5fa9bb13d906b46ab68c9df9dc2b4409f8a209",
    "bob_ephemeral": "ce8d3ad1ccb633ec7b70c17814a5c76ecd029685050d344745ba05870e587d59",
    "genesis": "e7c11eb595d836f6aed5b1500da39f4429fedd45faae2d2ec243a3551236db4a",
}


def test_vector_is_reproducible() -> None:
    a = Handshake(ALICE, CHAIN, PEERS, ephemeral_secret=bytes([1]) * 32, protocol_version=VERSION,
                  genesis_hash=GENESIS)
    b = Handshake(BOB, CHAIN, PEERS, ephemeral_secret=bytes([2]) * 32, protocol_version=VERSION,
                  genesis_hash=GENESIS)
    assert GENESIS.hex() == VECTOR["genesis"]
    assert a.ephemeral_public.hex() == VECTOR["alice_ephemeral"]
    assert b.ephemeral_public.hex() == VECTOR["bob_ephemeral"]
    assert a.hello().hex() == "434c503250000003" + VECTOR["alice_ephemeral"]
    assert b.hello().hex() == "434c503250000003" + VECTOR["bob_ephemeral"]
    auth_a = a.receive_hello(b.hello())
    auth_b = b.receive_hello(a.hello())
    keys = a.keys
    assert keys is not None
    # T covers the tag and both ephemeral keys only (lo = alice's): no chain id, genesis hash or version.
    t_input = ("17" + "636f6e736f727469756d2d6c65646765722f7032702f31"
               + VECTOR["alice_ephemeral"] + VECTOR["bob_ephemeral"])
    assert hashlib.sha256(bytes.fromhex(t_input)).hexdigest() == VECTOR_KEYS["transcript"]
    assert keys.transcript == transcript_hash(b.ephemeral_public, a.ephemeral_public)
    assert keys.transcript.hex() == VECTOR_KEYS["transcript"]
    assert keys.low_to_high.hex() == VECTOR_KEYS["low_to_high"]
    assert keys.high_to_low.hex() == VECTOR_KEYS["high_to_low"]
    assert keys.challenge.hex() == VECTOR_KEYS["challenge"]
    assert auth_a.hex() == VECTOR_KEYS["alice_auth_frame"]
    message = signed_message(a.role, keys, chain_id=CHAIN, genesis_hash=GENESIS, protocol_version=VERSION)
    assert message.hex() == (
        "636f6e736f727469756d2d6c65646765722f7032702f312061757468" + "00" + "000a" + "746573742d636861696e"
        + VECTOR["genesis"] + "00000003" + VECTOR_KEYS["transcript"] + VECTOR_KEYS["challenge"]
    )
    assert len(message) == 141
    signature = ALICE.signing_key.sign(message).signature
    assert a.role == 0 and signature.hex() == VECTOR_KEYS["alice_signature"]
    assert a.opener is not None and b.opener is not None
    payload = msgpack.packb(["alice", CHAIN, GENESIS, VERSION, ALICE.public_key, signature])
    assert payload.hex() == (
        "96" + "a5616c696365" + "aa746573742d636861696e" + "c420" + VECTOR["genesis"] + "03"
        + "c420" + ALICE.public_key.hex() + "c440" + VECTOR_KEYS["alice_signature"]
    )
    assert len(payload) == 153
    assert b.opener.open(body(auth_a)) == (KIND_AUTH, payload)
    session = a.receive_auth(body(auth_b))
    assert a.accept().hex() == VECTOR_KEYS["alice_accept_frame_1"]
    assert session.sealer.seal(KIND_DATA, b"hello").hex() == VECTOR_KEYS["alice_data_frame_2"]


VECTOR_KEYS = {
    "alice_signature": (
        "e6989834ced6002680ee001363aaf8e28a344c7caf58fce052c2b9cca87e68cf"
        "ac0106c5419dae742f4176202be37f78c4aa5b121e9f337fcbf506cccbf81d04"
    ),
    "alice_accept_frame_1": "000000190000000000000001f2ec3b80f81b092efbb5ea9263b426ebc9",
    "alice_data_frame_2": "0000001e0000000000000002d2510bde442d3f81a32bc9f46fcead3d3b3da015df97",
    "transcript": "ae5dc647424e6ef4a358acec7461a4b5426d890160f0b29ddb7d24eda1e43321",
    "low_to_high": "8ed4ab12a45b47c491f7283ab42258a9d1ea67cb0f956725dcbe13a9ce969569",
    "high_to_low": "4d4369bfcacfce0d68ee6f24c7fe1e83c6dd6f956308064ff2fbfff23296cdb5",
    "challenge": "65a993878859ed176d518ce9182ad0bbab3ba055625a4f78ea23a0ca5a64f77b",
    "alice_auth_frame": (
        "000000b200000000000000005ceaf9b5d375624d5dbe19804a659336e5ae7f4d65b1bf3291708f0dcfee81fd4b3a774158152825"
        "a2c05b3cbc9623b8684e5d2b8bdd0c04d64779442de3b653ca684352d49a0c873d1a72affabf390a397c3b1868fc7c69d5e3a735"
        "dd0a51ff289db9f2254e2da9c78fc9a85438f7c1c5c4133fb680ee0763537a43f2622472e38cdfb9388baca5c37c4a6a06354d50"
        "be7316635cc377193edf5089e28c292ae6a2dc8cc729d0d31952"
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
        session_a, _ = run(Handshake(ALICE, CHAIN, rotating, protocol_version=VERSION, genesis_hash=GENESIS),
                           Handshake(bob, CHAIN, PEERS if bob is BOB else rotating, protocol_version=VERSION,
                                     genesis_hash=GENESIS))
        assert session_a.peer.node_id == "bob" and session_a.key == bob.public_key
    mallory_as_bob = Identity("bob", MALLORY.signing_key)
    with pytest.raises(HandshakeError) as err:
        run(Handshake(ALICE, CHAIN, rotating, protocol_version=VERSION, genesis_hash=GENESIS),
            Handshake(mallory_as_bob, CHAIN, rotating, protocol_version=VERSION, genesis_hash=GENESIS))
    assert err.value.code == "unknown_key"
    with pytest.raises(AssertionError):  # a key may not serve two nodes, not even as a previous key
        PeerSet.of([ALICE.as_peer(), dataclasses.replace(new_bob.as_peer(), previous_key=ALICE.public_key)])
