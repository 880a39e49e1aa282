"""BLS module: both backends give identical bytes, accept the same inputs, and refuse the same malformed ones.

py_ecc is the reference and is slow (a verify is a few hundred ms), so tests that call into its pairing code are few
and named *_reference_*; everything exhaustive or randomised runs on blspy and on the byte-level checks both share.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import blspy
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consensus import bls
from consensus.bls import BlsError

FAST = bls.get_backend("blspy")
REF = bls.get_backend("py_ecc")
BACKENDS = [FAST, REF]
BACKEND_IDS = [b.name for b in BACKENDS]

MSG = b"vote: chain=test epoch=1 round=7 block=ab state=cd"

# Known answer, generated once with py_ecc (the reference) and cross-checked with blspy.
KAT_SEED = bytes(range(32))
KAT_MESSAGE = b"consortium-ledger/bls/known-answer/v1"
KAT_SECRET_KEY = "23360db7e337b0a32b264e06bc11c1b474d16f55665373de1ce93cf15ddb3456"
KAT_PUBLIC_KEY = "9112a0386a2340714ba0c6d2df235377a8679c3899d03e6ef04dba7a50ef49e5a1dc93105e9374e93ed301b63487e17c"
KAT_SIGNATURE = (
    "97e0e3620a05810379d6766864ff58321b2b980321029ae6002efec5e023f9ea565092c8f68d5f889701c6fb71d96f12"
    "0a09b45ac5f43becac5625a35a1edd0e405179266cf731a30c3450f80f40477b0bcfbe0e81c403301060fb3fc766eb46"
)
KAT_POP = (
    "915993b4e43e717ec8079234490be46018bdc7d70e81de1bbec515844a3754cc0a387ddf825a2faa0984fa794a96b5a2"
    "0da605161aa42c1d4028abeb3c52ffbf35d41bd26398e7110d0b6566e0b74b30b3431c4b821cc85a9d61ad5ffd3f9042"
)

# Independent vector: ethereum/bls12-381-tests v0.1.2, sign/sign_case_c82df61aa3ee60fb (same POP ciphersuite).
ETH_SECRET_KEY = "263dbd792f5b1be47ed85f8938c0f29586af0d3ac7b977f21c278fe1462040e3"
ETH_PUBLIC_KEY = "a491d1b0ecd9bb917989f0e74f0dea0422eac4a873e5e2644f368dffb9a6e20fd6e10c1b77654d067c0618f6e5a7f79a"
ETH_MESSAGE = bytes(32)
ETH_SIGNATURE = (
    "b6ed936746e01f8ecf281f020953fbf1f01debd5657c4a383940b020b26507f6076334f91e2366c96e9ab279fb515809"
    "0352ea1c5b0c9274504f4f0e7053af24802e51e4568d164fe986834f41e55c8e850ce1f98458c0cfc9ab380b55285a55"
)

P = 0x1A0111EA397FE69A4B1BA7B6434BACD764774B84F38512BF6730D2A0F6B0F6241EABFFFEB153FFFFB9FEFFFFFFFFAAAB


def seed(i: int) -> bytes:
    return i.to_bytes(4, "big") * 8


def keypair(i: int) -> tuple[bytes, bytes]:
    sk = FAST.keygen(seed(i))
    return sk, FAST.public_key(sk)


def flip_sign(point: bytes) -> bytes:
    """The negated point: the ZCash a-flag (third-highest bit) selects the sign of y."""
    return bytes([point[0] ^ 0x20]) + point[1:]


def non_canonical_public_key() -> bytes:
    """A valid key's x written as x + p (still fits in 381 bits): the same point, a non-canonical encoding."""
    for i in range(100):
        pk = keypair(i)[1]
        value = int.from_bytes(pk, "big")
        x = value & ((1 << 381) - 1)
        if x + P < (1 << 381):
            return ((value - x) | (x + P)).to_bytes(48, "big")
    raise AssertionError("no key with a small enough x")


def malformed_public_keys() -> dict[str, object]:
    _, pk = keypair(1)
    x_is_p = (P | (1 << 383)).to_bytes(48, "big")
    return {
        "empty": b"",
        "short": pk[:47],
        "long": pk + b"\x00",
        "infinity": bls.G1_INFINITY,
        "infinity_with_sign_flag": bytes([0xE0]) + bytes(47),
        "infinity_with_nonzero_x": bytes([0xC0]) + bytes(46) + b"\x01",
        "all_zero_uncompressed_flag": bytes(48),
        "compression_flag_cleared": bytes([pk[0] & 0x7F]) + pk[1:],
        "infinity_flag_set_on_point": bytes([pk[0] | 0x40]) + pk[1:],
        "x_equals_field_modulus": x_is_p,
        "x_all_ones": bytes([0x9F]) + b"\xff" * 47,
        "x_plus_p_non_canonical": non_canonical_public_key(),
        "not_on_curve_x_3": bytes([0x80]) + bytes(46) + b"\x03",
        "on_curve_not_in_subgroup_x_4": bytes([0x80]) + bytes(46) + b"\x04",
        "str": pk.hex()[:48],
        "int": 7,
        "none": None,
    }


def malformed_signatures() -> dict[str, object]:
    sk, _ = keypair(1)
    sig = FAST.sign(sk, MSG)
    return {
        "empty": b"",
        "short": sig[:95],
        "long": sig + b"\x00",
        "infinity_with_sign_flag": bytes([0xE0]) + bytes(95),
        "infinity_with_nonzero_tail": bytes([0xC0]) + bytes(94) + b"\x01",
        "all_zero_uncompressed_flag": bytes(96),
        "compression_flag_cleared": bytes([sig[0] & 0x7F]) + sig[1:],
        "infinity_flag_set_on_point": bytes([sig[0] | 0x40]) + sig[1:],
        "x1_equals_field_modulus": (P | (1 << 383)).to_bytes(48, "big") + sig[48:],
        "x0_equals_field_modulus": sig[:48] + P.to_bytes(48, "big"),
        "x0_high_bits_set": sig[:48] + bytes([sig[48] | 0xE0]) + sig[49:],
        "on_curve_not_in_subgroup": bytes([0xA0]) + bytes(94) + b"\x02",
        "str": sig.hex()[:96],
        "none": None,
    }


# --------------------------------------------------------------------------------------------------------------
# Known answers and byte-for-byte agreement


def test_keygen_is_ietf_keygen_on_both_backends() -> None:
    for i in range(8):
        s = seed(i) + bytes(i)  # lengths 32..39
        assert FAST.keygen(s) == REF.keygen(s) == bls.ietf_keygen(s)
    assert FAST.keygen(KAT_SEED).hex() == KAT_SECRET_KEY
    # blspy's own key_gen follows an older draft (unhashed salt); the module must not use it.
    assert bytes(blspy.PopSchemeMPL.key_gen(KAT_SEED)).hex() != KAT_SECRET_KEY


def test_reference_known_answer_vector_on_both_backends() -> None:
    for backend in BACKENDS:
        sk = backend.keygen(KAT_SEED)
        assert sk.hex() == KAT_SECRET_KEY
        assert backend.public_key(sk).hex() == KAT_PUBLIC_KEY
        assert backend.sign(sk, KAT_MESSAGE).hex() == KAT_SIGNATURE
        assert backend.pop_prove(sk).hex() == KAT_POP
    pk, sig, pop = bytes.fromhex(KAT_PUBLIC_KEY), bytes.fromhex(KAT_SIGNATURE), bytes.fromhex(KAT_POP)
    assert FAST.verify(pk, KAT_MESSAGE, sig)
    assert REF.verify(pk, KAT_MESSAGE, sig)
    assert FAST.pop_verify(pk, pop)
    assert REF.pop_verify(pk, pop)


def test_reference_ethereum_vector_on_both_backends() -> None:
    sk = bytes.fromhex(ETH_SECRET_KEY)
    for backend in BACKENDS:
        assert backend.public_key(sk).hex() == ETH_PUBLIC_KEY
        assert backend.sign(sk, ETH_MESSAGE).hex() == ETH_SIGNATURE
    assert FAST.verify(bytes.fromhex(ETH_PUBLIC_KEY), ETH_MESSAGE, bytes.fromhex(ETH_SIGNATURE))


def test_same_seed_same_bytes_on_both_backends() -> None:
    sk = REF.keygen(seed(42))
    assert sk == FAST.keygen(seed(42))
    assert REF.public_key(sk) == FAST.public_key(sk)
    assert REF.sign(sk, MSG) == FAST.sign(sk, MSG)


def test_reference_accepts_fast_signature_and_rejects_tampering() -> None:
    sk, pk = keypair(3)
    sig = FAST.sign(sk, MSG)
    assert REF.verify(pk, MSG, sig)
    assert not REF.verify(pk, MSG + b"!", sig)


def test_reference_aggregates_match_fast_aggregates() -> None:
    keys = [keypair(i) for i in range(4)]
    pks = [pk for _, pk in keys]
    sigs = [FAST.sign(sk, MSG) for sk, _ in keys]
    agg = FAST.aggregate(sigs)
    assert REF.aggregate(sigs) == agg
    assert REF.aggregate_public_keys(pks) == FAST.aggregate_public_keys(pks)
    assert FAST.fast_aggregate_verify(pks, MSG, agg)
    assert REF.fast_aggregate_verify(pks, MSG, agg)
    # Aggregate key + aggregate signature is an ordinary signature.
    assert FAST.verify(FAST.aggregate_public_keys(pks), MSG, agg)
    # Order does not matter; a missing or extra signer does.
    assert FAST.fast_aggregate_verify(pks[::-1], MSG, agg)
    assert not FAST.fast_aggregate_verify(pks[:3], MSG, agg)
    assert not FAST.fast_aggregate_verify([*pks, keypair(9)[1]], MSG, agg)
    assert not FAST.fast_aggregate_verify(pks, MSG + b"!", agg)
    assert not FAST.fast_aggregate_verify(pks, MSG, FAST.aggregate(sigs[:3]))


def test_reference_pop_cross_backend() -> None:
    (sk1, pk1), (sk2, pk2) = keypair(5), keypair(6)
    proof1 = FAST.pop_prove(sk1)
    assert REF.pop_verify(pk1, proof1)
    assert not REF.pop_verify(pk2, proof1)  # a proof for another key
    assert FAST.pop_verify(pk1, proof1)
    assert not FAST.pop_verify(pk2, proof1)
    assert FAST.pop_verify(pk2, FAST.pop_prove(sk2))
    # Domain separation: a signature over the key bytes under the vote DST is not a proof, and vice versa.
    assert not FAST.pop_verify(pk1, FAST.sign(sk1, pk1))
    assert not FAST.verify(pk1, pk1, proof1)


# --------------------------------------------------------------------------------------------------------------
# Rogue keys: why the certificate layer must demand proofs of possession


def admit_validator_set(members: list[tuple[bytes, bytes]]) -> list[bytes]:
    """What the certificate layer must do before using keys in fast_aggregate_verify (see consensus/bls.py)."""
    pks = [pk for pk, _ in members]
    if len(set(pks)) != len(pks):
        raise ValueError("duplicate key")
    for pk, proof in members:
        if not bls.pop_verify(pk, proof):
            raise ValueError("missing or invalid proof of possession")
    return pks


def test_rogue_key_aggregate_is_caught_by_proof_of_possession() -> None:
    honest = [keypair(10), keypair(11), keypair(12)]
    attacker_sk, _ = keypair(13)
    attacker_point = blspy.PrivateKey.from_bytes(attacker_sk).get_g1()
    honest_sum = blspy.G1Element.from_bytes(FAST.aggregate_public_keys([pk for _, pk in honest]))
    rogue_pk = bytes(attacker_point + honest_sum.negate())
    assert FAST.verify(rogue_pk, b"", FAST.sign(attacker_sk, b"")) is False  # rogue_pk's secret key is unknown
    # The attack: one party "proves" that all four validators signed.
    forged = FAST.sign(attacker_sk, MSG)
    set_pks = [pk for _, pk in honest] + [rogue_pk]
    assert FAST.fast_aggregate_verify(set_pks, MSG, forged)
    # The defence: admission demands a proof of possession for every key, which the attacker cannot make.
    honest_members = [(pk, FAST.pop_prove(sk)) for sk, pk in honest]
    with pytest.raises(ValueError, match="proof of possession"):
        admit_validator_set([*honest_members, (rogue_pk, FAST.pop_prove(attacker_sk))])
    with pytest.raises(ValueError, match="proof of possession"):
        admit_validator_set([*honest_members, (rogue_pk, forged)])
    assert not REF.pop_verify(rogue_pk, FAST.pop_prove(attacker_sk))
    assert admit_validator_set(honest_members) == [pk for _, pk in honest]
    with pytest.raises(ValueError, match="duplicate"):
        admit_validator_set([*honest_members, honest_members[0]])


def test_identity_aggregate_key_is_rejected_on_both_backends() -> None:
    _, pk = keypair(20)
    cancelling = [pk, flip_sign(pk)]  # pk + (-pk) = identity
    assert FAST.aggregate_public_keys(cancelling) == bls.G1_INFINITY
    assert REF.aggregate_public_keys(cancelling) == bls.G1_INFINITY
    for backend in BACKENDS:
        assert backend.fast_aggregate_verify(cancelling, MSG, bls.G2_INFINITY) is False


# --------------------------------------------------------------------------------------------------------------
# Tampering and malformed input


def test_tampered_message_signature_or_key_fails_on_fast_backend() -> None:
    sk, pk = keypair(30)
    _, other_pk = keypair(31)
    sig = FAST.sign(sk, MSG)
    assert FAST.verify(pk, MSG, sig)
    assert not FAST.verify(pk, MSG[:-1], sig)
    assert not FAST.verify(pk, MSG + b"\x00", sig)
    assert not FAST.verify(other_pk, MSG, sig)
    assert not FAST.verify(pk, MSG, flip_sign(sig))  # -sig: a valid point, the wrong one
    assert not FAST.verify(flip_sign(pk), MSG, sig)
    for i in (0, 1, 47, 48, 95):
        tampered = bytearray(sig)
        tampered[i] ^= 0x01
        assert not FAST.verify(pk, MSG, bytes(tampered))
    assert not FAST.verify(pk, MSG, bls.G2_INFINITY)


def test_malformed_public_keys_are_refused_identically() -> None:
    sk, good_pk = keypair(1)
    sig = FAST.sign(sk, MSG)
    proof = FAST.pop_prove(sk)
    for name, bad in malformed_public_keys().items():
        for backend in BACKENDS:
            where = f"{backend.name}/{name}"
            assert backend.verify(bad, MSG, sig) is False, where  # type: ignore[arg-type]
            assert backend.pop_verify(bad, proof) is False, where  # type: ignore[arg-type]
            assert backend.key_is_valid(bad) is False, where  # type: ignore[arg-type]
            assert backend.fast_aggregate_verify([good_pk, bad], MSG, sig) is False, where  # type: ignore[list-item]
            with pytest.raises(BlsError) as err:
                backend.aggregate_public_keys([good_pk, bad])  # type: ignore[list-item]
            assert err.value.code == BlsError.INVALID_PUBLIC_KEY, where


def test_malformed_signatures_are_refused_identically() -> None:
    _, pk = keypair(1)
    for name, bad in malformed_signatures().items():
        for backend in BACKENDS:
            where = f"{backend.name}/{name}"
            assert backend.verify(pk, MSG, bad) is False, where  # type: ignore[arg-type]
            assert backend.pop_verify(pk, bad) is False, where  # type: ignore[arg-type]
            assert backend.fast_aggregate_verify([pk], MSG, bad) is False, where  # type: ignore[arg-type]
            with pytest.raises(BlsError) as err:
                backend.aggregate([bad])  # type: ignore[list-item]
            assert err.value.code == BlsError.INVALID_SIGNATURE, where


def test_infinity_signature_aggregates_but_never_verifies() -> None:
    sk, pk = keypair(2)
    sig = FAST.sign(sk, MSG)
    for backend in BACKENDS:
        assert backend.aggregate([bls.G2_INFINITY]) == bls.G2_INFINITY
        assert backend.aggregate([sig, bls.G2_INFINITY]) == sig
    assert not FAST.verify(pk, MSG, bls.G2_INFINITY)
    assert not REF.verify(pk, MSG, bls.G2_INFINITY)


@pytest.mark.parametrize("backend", BACKENDS, ids=BACKEND_IDS)
def test_malformed_containers_and_messages_return_false(backend: bls.BlsBackend) -> None:
    sk, pk = keypair(4)
    sig = FAST.sign(sk, MSG)
    assert backend.fast_aggregate_verify([], MSG, sig) is False
    assert backend.fast_aggregate_verify(pk, MSG, sig) is False  # bytes is not a list of keys
    assert backend.fast_aggregate_verify(None, MSG, sig) is False  # type: ignore[arg-type]
    assert backend.fast_aggregate_verify([pk] * (bls.MAX_AGGREGATE_SIZE + 1), MSG, sig) is False
    assert backend.verify(pk, "text", sig) is False  # type: ignore[arg-type]
    assert backend.verify(pk, b"\x00" * (bls.MAX_MESSAGE_SIZE + 1), sig) is False
    assert backend.verify(pk, None, sig) is False  # type: ignore[arg-type]


@pytest.mark.parametrize("backend", BACKENDS, ids=BACKEND_IDS)
def test_producing_functions_raise_bls_error_with_stable_codes(backend: bls.BlsBackend) -> None:
    def code_of(call: object, *args: object) -> str:
        with pytest.raises(BlsError) as err:
            call(*args)  # type: ignore[operator]
        assert isinstance(err.value, ValueError)
        return err.value.code

    sk, pk = keypair(7)
    r = bls.CURVE_ORDER
    assert code_of(backend.keygen, bytes(31)) == BlsError.INVALID_SEED
    assert code_of(backend.keygen, "x" * 32) == BlsError.INVALID_SEED
    for bad_sk in (bytes(32), r.to_bytes(32, "big"), b"\xff" * 32, sk[:31], sk + b"\x00", None):
        assert code_of(backend.public_key, bad_sk) == BlsError.INVALID_SECRET_KEY
        assert code_of(backend.sign, bad_sk, MSG) == BlsError.INVALID_SECRET_KEY
        assert code_of(backend.pop_prove, bad_sk) == BlsError.INVALID_SECRET_KEY
    assert code_of(backend.sign, sk, "text") == BlsError.INVALID_MESSAGE
    assert code_of(backend.sign, sk, bytes(bls.MAX_MESSAGE_SIZE + 1)) == BlsError.INVALID_MESSAGE
    assert code_of(backend.aggregate, []) == BlsError.EMPTY_AGGREGATE
    assert code_of(backend.aggregate_public_keys, []) == BlsError.EMPTY_AGGREGATE
    assert code_of(backend.aggregate, [bls.G2_INFINITY] * (bls.MAX_AGGREGATE_SIZE + 1)) == BlsError.AGGREGATE_TOO_LARGE
    assert code_of(backend.aggregate_public_keys, [pk] * (bls.MAX_AGGREGATE_SIZE + 1)) == BlsError.AGGREGATE_TOO_LARGE
    assert code_of(backend.aggregate, bls.G2_INFINITY) == BlsError.INVALID_SIGNATURE
    # The largest valid secret key works.
    assert len(backend.public_key((r - 1).to_bytes(32, "big"))) == bls.PUBLIC_KEY_SIZE


def test_message_size_limit_is_enforced_even_for_genuine_signatures() -> None:
    sk, pk = keypair(9)
    largest = b"\x01" * bls.MAX_MESSAGE_SIZE
    assert FAST.verify(pk, largest, FAST.sign(sk, largest))
    oversized = largest + b"\x01"
    genuine = bytes(blspy.PopSchemeMPL.sign(blspy.PrivateKey.from_bytes(sk), oversized))
    assert blspy.PopSchemeMPL.verify(blspy.G1Element.from_bytes(pk), oversized, blspy.G2Element.from_bytes(genuine))
    assert FAST.verify(pk, oversized, genuine) is False
    assert FAST.fast_aggregate_verify([pk], oversized, genuine) is False


def test_bytes_like_inputs_are_accepted() -> None:
    sk, pk = keypair(8)
    sig = FAST.sign(bytearray(sk), memoryview(MSG))
    assert sig == FAST.sign(sk, MSG)
    assert FAST.verify(bytearray(pk), bytearray(MSG), memoryview(sig))
    assert FAST.fast_aggregate_verify((bytearray(pk),), MSG, sig)


# --------------------------------------------------------------------------------------------------------------
# Randomised checks (fast backend; a few cross-checked against the reference's KeyValidate)

_HYPOTHESIS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_HYPOTHESIS
@given(pk=st.binary(min_size=0, max_size=100), msg=st.binary(max_size=64), sig=st.binary(min_size=0, max_size=200))
def test_random_bytes_never_raise_and_never_verify(pk: bytes, msg: bytes, sig: bytes) -> None:
    assert FAST.verify(pk, msg, sig) is False
    assert FAST.pop_verify(pk, sig) is False
    assert FAST.fast_aggregate_verify([pk], msg, sig) is False


@_HYPOTHESIS
@given(
    x=st.binary(min_size=47, max_size=47),
    flags=st.sampled_from([0x80, 0xA0, 0xC0, 0xE0, 0x00, 0x20]),
    low=st.integers(0, 0x1F),
)
def test_random_compressed_keys_never_verify(x: bytes, flags: int, low: int) -> None:
    pk = bytes([flags | low]) + x
    sk, _ = keypair(1)
    assert FAST.verify(pk, MSG, FAST.sign(sk, MSG)) is False
    assert FAST.decode_public_key(pk) is None  # type: ignore[attr-defined]
    assert FAST.key_is_valid(pk) is False


@settings(max_examples=25, deadline=None)
@given(i=st.integers(0, 2**16), byte=st.integers(0, 47), bit=st.integers(0, 7))
def test_key_validation_agrees_with_reference_on_bit_flips(i: int, byte: int, bit: int) -> None:
    _, pk = keypair(i)
    flipped = bytearray(pk)
    flipped[byte] ^= 1 << bit
    for candidate in (pk, bytes(flipped)):
        assert (FAST.decode_public_key(candidate) is not None) == REF.key_is_valid(candidate)  # type: ignore[attr-defined]


@_HYPOTHESIS
@given(i=st.integers(0, 2**16), msg=st.binary(max_size=256), other=st.binary(max_size=256))
def test_sign_verify_round_trip_and_message_binding(i: int, msg: bytes, other: bytes) -> None:
    sk, pk = keypair(i)
    sig = FAST.sign(sk, msg)
    assert FAST.verify(pk, msg, sig)
    assert FAST.verify(pk, other, sig) == (other == msg)


# --------------------------------------------------------------------------------------------------------------
# Backend selection, module-level functions, key cache


def test_backend_selection(monkeypatch: pytest.MonkeyPatch) -> None:
    """The caller chooses the backend by name; without one, the fast backend when installed (it is here). The
    module reads no environment (a node resolves its choice in node/chain/protocol.py: tests/node/validator/test_bls_backend.py)."""
    assert bls.get_backend("blspy") is FAST
    assert bls.get_backend("py_ecc") is REF
    assert isinstance(FAST, bls.BlsBackend) and isinstance(REF, bls.BlsBackend)
    assert bls.available_backends() == ("blspy", "py_ecc")
    assert bls.DEFAULT is FAST and bls.get_backend() is FAST  # blspy is importable here
    monkeypatch.setenv("LEDGER_BLS_BACKEND", "py_ecc")
    assert bls.get_backend() is FAST
    with pytest.raises(BlsError) as err:
        bls.get_backend("openssl")
    assert err.value.code == BlsError.UNKNOWN_BACKEND


def test_module_functions_delegate_to_default() -> None:
    sk = bls.keygen(seed(50))
    pk = bls.public_key(sk)
    sig = bls.sign(sk, MSG)
    assert sig == FAST.sign(sk, MSG)
    assert bls.verify(pk, MSG, sig)
    assert bls.aggregate([sig]) == sig
    assert bls.aggregate_public_keys([pk]) == pk
    assert bls.fast_aggregate_verify([pk], MSG, sig)
    assert bls.pop_verify(pk, bls.pop_prove(sk))


def test_public_key_cache_is_bounded_stays_correct_and_ignores_invalid_keys() -> None:
    keys = [keypair(60 + i) for i in range(3)]
    sigs = [FAST.sign(sk, MSG) for sk, _ in keys]
    for backend in (bls.BlspyBackend(public_key_cache_size=2), bls.PyEccBackend(public_key_cache_size=2)):
        for _ in range(2):
            for (_, pk), sig in zip(keys, sigs, strict=True):
                assert backend.key_is_valid(pk)
            assert not backend.key_is_valid(bls.G1_INFINITY)
        info = backend.cache_info()
        assert info.maxsize == 2 and info.currsize == 2
        assert info.hits == 0  # three keys cycling through two slots
        before = backend.cache_info().currsize
        assert not any(backend.key_is_valid(bad) for bad in malformed_public_keys().values())  # type: ignore[arg-type]
        assert backend.cache_info().currsize == before
        assert backend.key_is_valid(keys[2][1]) and backend.cache_info().hits == 1
    fast = bls.BlspyBackend(public_key_cache_size=2)
    for (_, pk), sig in zip(keys, sigs, strict=True):
        assert fast.verify(pk, MSG, sig)
    assert not fast.verify(keys[0][1], MSG, sigs[1])
    assert fast.cache_info().currsize == 2


def test_the_environment_does_not_choose_the_backend() -> None:
    """consensus/ has no hidden inputs: LEDGER_BLS_BACKEND (read by the node, node/chain/protocol.py) changes nothing
    here, whatever its value."""
    root = Path(__file__).resolve().parents[2]
    code = "from consensus import bls; print(bls.DEFAULT.name, bls.get_backend().name)"
    for value in ("py_ecc", "blspy", "", "nonsense"):
        env = {**os.environ, "LEDGER_BLS_BACKEND": value}
        out = subprocess.run(
            [sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True, check=True
        )
        assert out.stdout.split() == ["blspy", "blspy"]
