"""BLS signatures for votes and certificates: one ciphersuite, two interchangeable backends.

Ciphersuite (IETF draft-irtf-cfrg-bls-signature-05, proof-of-possession scheme, minimal-pubkey-size variant):

    signatures        BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_
    possession proofs BLS_POP_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_

    secret key  32 bytes, big-endian integer in [1, r-1]
    public key  48 bytes, compressed G1 point (ZCash encoding)
    signature   96 bytes, compressed G2 point (ZCash encoding)

Backends:
    "py_ecc"  py_ecc.bls.G2ProofOfPossession, pure Python, the reference (a verify takes 250-450 ms).
    "blspy"   blspy.PopSchemeMPL (Chia's C++ library), the fast path (a verify takes about 1.5 ms).
    benchmarks/bls_bench.py measures both.

Both backends produce identical bytes and accept exactly the same inputs; tests/consensus/test_bls.py proves it on
known-answer vectors, on cross-backend signatures and aggregates, and on a corpus of malformed encodings.

Rules shared by both backends:
- keygen, public_key, sign, aggregate, aggregate_public_keys and pop_prove raise BlsError (a ValueError with a stable
  `code`) on invalid input.  They never raise anything else for inputs of the right Python types.
- verify, fast_aggregate_verify and pop_verify never raise: any malformed input (wrong type or length, a point that
  is not on the curve or not in the prime-order subgroup, a non-canonical encoding, the identity as a public key, an
  empty key list, too many keys, an oversized message) makes them return False.
- Public keys are checked with KeyValidate (decodes, not the identity, in the subgroup) everywhere they are used;
  key_is_valid(pk) exposes that check.  Keys that pass are remembered in a bounded LRU cache per backend (validator
  keys repeat); keys that fail are never cached, so garbage cannot evict the validator set.
- aggregate accepts only signatures that decode to points of the G2 subgroup (the identity included) and
  aggregate_public_keys only keys that pass KeyValidate; both refuse more than MAX_AGGREGATE_SIZE inputs.
- fast_aggregate_verify refuses an aggregate key equal to the identity (as the reference does).
- keygen is the IETF KeyGen of draft 05 (salt = H("BLS-SIG-KEYGEN-SALT-"), repeated while SK == 0, key_info empty).
  blspy's own key_gen implements an older draft (unhashed salt) and gives different keys, so the blspy backend does
  not use it.

Rogue-key attacks and how certificates must use this module:
    fast_aggregate_verify is only sound when every public key in the list has been shown to belong to a party that
    knows its secret key.  Without that, an attacker who sees honest keys pk_1..pk_k can publish
    pk_rogue = sk_a*G1 - (pk_1 + ... + pk_k) and alone forge an "aggregate" signature that the whole set appears to
    have signed.  Therefore the certificate layer MUST, when it admits a validator set (genesis or an epoch change):
      1. require a possession proof for every BLS key in the set and call pop_verify(pk, proof) on each; reject the
         whole set if any proof fails;
      2. reject duplicate public keys within the set;
      3. only then use the keys in fast_aggregate_verify, selecting them by the certificate's signer bitmap.
    Possession proofs are signed under their own DST (BLS_POP_...), so a vote signature can never double as a proof.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from collections.abc import Callable, Sequence
from typing import Final, Protocol, runtime_checkable

from consensus.errors import ConsensusError

__all__ = [
    "BACKEND_NAMES",
    "CURVE_ORDER",
    "DEFAULT",
    "MAX_AGGREGATE_SIZE",
    "MAX_MESSAGE_SIZE",
    "MIN_SEED_SIZE",
    "POP_CIPHERSUITE",
    "PUBLIC_KEY_SIZE",
    "SECRET_KEY_SIZE",
    "SIGNATURE_CIPHERSUITE",
    "SIGNATURE_SIZE",
    "BlsBackend",
    "BlsError",
    "aggregate",
    "aggregate_public_keys",
    "available_backends",
    "fast_aggregate_verify",
    "get_backend",
    "key_is_valid",
    "keygen",
    "pop_prove",
    "pop_verify",
    "public_key",
    "sign",
    "verify",
]

SIGNATURE_CIPHERSUITE: Final = b"BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_"
POP_CIPHERSUITE: Final = b"BLS_POP_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_"

SECRET_KEY_SIZE: Final = 32
PUBLIC_KEY_SIZE: Final = 48
SIGNATURE_SIZE: Final = 96
MIN_SEED_SIZE: Final = 32
# Limits: votes sign short domain-separated digests; validator sets are small (tens, at most hundreds).
MAX_MESSAGE_SIZE: Final = 1 << 16
MAX_AGGREGATE_SIZE: Final = 4096
PUBLIC_KEY_CACHE_SIZE: Final = 4096

# Order r of the G1/G2 subgroups of BLS12-381.
CURVE_ORDER: Final = 0x73EDA753299D7D483339D80809A1D80553BDA402FFFE5BFEFFFFFFFF00000001
# Compressed encoding of the point at infinity (ZCash flags 0b110, all other bits zero).
G1_INFINITY: Final = bytes([0xC0]) + bytes(PUBLIC_KEY_SIZE - 1)
G2_INFINITY: Final = bytes([0xC0]) + bytes(SIGNATURE_SIZE - 1)

BACKEND_NAMES: Final = ("blspy", "py_ecc")

_KEYGEN_SALT: Final = b"BLS-SIG-KEYGEN-SALT-"
# L = ceil((3 * ceil(log2(r))) / 16) = 48
_KEYGEN_OKM_SIZE: Final = 48


class _RejectedKeyError(Exception):
    """Internal: a public key failed KeyValidate (raised so that the LRU caches never store failures)."""


class BlsError(ConsensusError):
    """Invalid input to a BLS operation that produces bytes.  `code` is stable and meant for programs."""

    INVALID_SEED: Final = "bls_invalid_seed"
    INVALID_SECRET_KEY: Final = "bls_invalid_secret_key"
    INVALID_PUBLIC_KEY: Final = "bls_invalid_public_key"
    INVALID_SIGNATURE: Final = "bls_invalid_signature"
    INVALID_MESSAGE: Final = "bls_invalid_message"
    EMPTY_AGGREGATE: Final = "bls_empty_aggregate"
    AGGREGATE_TOO_LARGE: Final = "bls_aggregate_too_large"
    UNKNOWN_BACKEND: Final = "bls_unknown_backend"
    BACKEND_UNAVAILABLE: Final = "bls_backend_unavailable"


@runtime_checkable
class BlsBackend(Protocol):
    name: str

    def keygen(self, seed: bytes) -> bytes: ...
    def key_is_valid(self, pk: bytes) -> bool: ...
    def public_key(self, sk: bytes) -> bytes: ...
    def sign(self, sk: bytes, msg: bytes) -> bytes: ...
    def verify(self, pk: bytes, msg: bytes, sig: bytes) -> bool: ...
    def aggregate(self, sigs: Sequence[bytes]) -> bytes: ...
    def aggregate_public_keys(self, pks: Sequence[bytes]) -> bytes: ...
    def fast_aggregate_verify(self, pks: Sequence[bytes], msg: bytes, sig: bytes) -> bool: ...
    def pop_prove(self, sk: bytes) -> bytes: ...
    def pop_verify(self, pk: bytes, proof: bytes) -> bool: ...


# ---------------------------------------------------------------------------------------------------------------
# Input checks shared by both backends (pure byte-level; curve checks are done by each backend).


def _as_bytes(value: object) -> bytes | None:
    if isinstance(value, bytes):
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    return None


def _secret_key_scalar(sk: object) -> int:
    raw = _as_bytes(sk)
    if raw is None or len(raw) != SECRET_KEY_SIZE:
        raise BlsError(BlsError.INVALID_SECRET_KEY, f"secret key must be {SECRET_KEY_SIZE} bytes")
    scalar = int.from_bytes(raw, "big")
    if not 0 < scalar < CURVE_ORDER:
        raise BlsError(BlsError.INVALID_SECRET_KEY, "secret key must be in [1, r-1]")
    return scalar


def _message_for_signing(msg: object) -> bytes:
    raw = _as_bytes(msg)
    if raw is None:
        raise BlsError(BlsError.INVALID_MESSAGE, "message must be bytes")
    if len(raw) > MAX_MESSAGE_SIZE:
        raise BlsError(BlsError.INVALID_MESSAGE, f"message longer than {MAX_MESSAGE_SIZE} bytes")
    return raw


def _message_for_verifying(msg: object) -> bytes | None:
    raw = _as_bytes(msg)
    if raw is None or len(raw) > MAX_MESSAGE_SIZE:
        return None
    return raw


def _sized(value: object, size: int) -> bytes | None:
    raw = _as_bytes(value)
    if raw is None or len(raw) != size:
        return None
    return raw


def _sequence_of(values: object, size: int) -> list[bytes] | None:
    """The items as bytes of the given size, or None if the container or any item is malformed or too long."""
    if isinstance(values, (bytes, bytearray, memoryview, str)) or not isinstance(values, Sequence):
        return None
    if len(values) > MAX_AGGREGATE_SIZE:
        return None
    out: list[bytes] = []
    for value in values:
        raw = _sized(value, size)
        if raw is None:
            return None
        out.append(raw)
    return out


def _aggregate_inputs(values: object, size: int, error_code: str, what: str) -> list[bytes]:
    if isinstance(values, (bytes, bytearray, memoryview, str)) or not isinstance(values, Sequence):
        raise BlsError(error_code, f"{what}s must be a sequence of bytes")
    if len(values) == 0:
        raise BlsError(BlsError.EMPTY_AGGREGATE, f"cannot aggregate an empty list of {what}s")
    if len(values) > MAX_AGGREGATE_SIZE:
        raise BlsError(BlsError.AGGREGATE_TOO_LARGE, f"more than {MAX_AGGREGATE_SIZE} {what}s")
    items = _sequence_of(values, size)
    if items is None:
        raise BlsError(error_code, f"every {what} must be {size} bytes")
    return items


def ietf_keygen(seed: bytes) -> bytes:
    """IETF BLS KeyGen (draft 05, key_info empty) with SHA-256: 32-byte big-endian secret key from a >= 32-byte seed."""
    raw = _as_bytes(seed)
    if raw is None or len(raw) < MIN_SEED_SIZE:
        raise BlsError(BlsError.INVALID_SEED, f"seed must be at least {MIN_SEED_SIZE} bytes")
    salt = _KEYGEN_SALT
    scalar = 0
    while scalar == 0:
        salt = hashlib.sha256(salt).digest()
        prk = hmac.new(salt, raw + b"\x00", hashlib.sha256).digest()  # HKDF-Extract
        info = _KEYGEN_OKM_SIZE.to_bytes(2, "big")  # key_info || I2OSP(L, 2)
        okm = b""
        block = b""
        counter = 1
        while len(okm) < _KEYGEN_OKM_SIZE:  # HKDF-Expand
            block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
            okm += block
            counter += 1
        scalar = int.from_bytes(okm[:_KEYGEN_OKM_SIZE], "big") % CURVE_ORDER
    assert 0 < scalar < CURVE_ORDER
    return scalar.to_bytes(SECRET_KEY_SIZE, "big")


# ---------------------------------------------------------------------------------------------------------------
# py_ecc: the reference backend.


class PyEccBackend:
    """py_ecc.bls.G2ProofOfPossession.  Slow (pure Python pairings); used as the reference and as a fallback."""

    name = "py_ecc"

    def __init__(self, public_key_cache_size: int = PUBLIC_KEY_CACHE_SIZE) -> None:
        from py_ecc.bls import G2ProofOfPossession
        from py_ecc.bls.g2_primitives import signature_to_G2, subgroup_check

        self._scheme = G2ProofOfPossession
        self._signature_to_g2 = signature_to_G2
        self._subgroup_check = subgroup_check
        assert G2ProofOfPossession.DST == SIGNATURE_CIPHERSUITE
        assert G2ProofOfPossession.POP_TAG == POP_CIPHERSUITE
        # KeyValidate costs a G1 scalar multiplication; validator keys repeat, so remember keys that pass.  Keys that
        # fail raise inside the cached function and so are never stored: garbage cannot evict the validator set.
        self._validated_key: Callable[[bytes], bytes] = functools.lru_cache(maxsize=public_key_cache_size)(
            self._validate_key_uncached
        )

    def _validate_key_uncached(self, pk: bytes) -> bytes:
        if not self._scheme.KeyValidate(pk):
            raise _RejectedKeyError
        return pk

    def key_is_valid(self, pk: bytes) -> bool:
        """KeyValidate: `pk` is 48 bytes encoding (canonically) a G1 subgroup point other than the identity."""
        raw = _sized(pk, PUBLIC_KEY_SIZE)
        if raw is None:
            return False
        try:
            self._validated_key(raw)
        except _RejectedKeyError:
            return False
        return True

    def cache_info(self) -> functools._CacheInfo:
        return self._validated_key.cache_info()  # type: ignore[attr-defined]

    def _signature_is_valid(self, sig: bytes) -> bool:
        try:
            point = self._signature_to_g2(sig)
        except (ValueError, AssertionError):
            return False
        return bool(self._subgroup_check(point))

    def keygen(self, seed: bytes) -> bytes:
        raw = _as_bytes(seed)
        if raw is None or len(raw) < MIN_SEED_SIZE:
            raise BlsError(BlsError.INVALID_SEED, f"seed must be at least {MIN_SEED_SIZE} bytes")
        scalar = self._scheme.KeyGen(raw)
        assert 0 < scalar < CURVE_ORDER
        return scalar.to_bytes(SECRET_KEY_SIZE, "big")

    def public_key(self, sk: bytes) -> bytes:
        pk = bytes(self._scheme.SkToPk(_secret_key_scalar(sk)))
        assert len(pk) == PUBLIC_KEY_SIZE
        return pk

    def sign(self, sk: bytes, msg: bytes) -> bytes:
        sig = bytes(self._scheme.Sign(_secret_key_scalar(sk), _message_for_signing(msg)))
        assert len(sig) == SIGNATURE_SIZE
        return sig

    def verify(self, pk: bytes, msg: bytes, sig: bytes) -> bool:
        pk_raw = _sized(pk, PUBLIC_KEY_SIZE)
        sig_raw = _sized(sig, SIGNATURE_SIZE)
        msg_raw = _message_for_verifying(msg)
        if pk_raw is None or sig_raw is None or msg_raw is None or not self.key_is_valid(pk_raw):
            return False
        return bool(self._scheme.Verify(pk_raw, msg_raw, sig_raw))

    def aggregate(self, sigs: Sequence[bytes]) -> bytes:
        items = _aggregate_inputs(sigs, SIGNATURE_SIZE, BlsError.INVALID_SIGNATURE, "signature")
        for sig in items:
            if not self._signature_is_valid(sig):
                raise BlsError(BlsError.INVALID_SIGNATURE, "signature is not a point of the G2 subgroup")
        out = bytes(self._scheme.Aggregate(items))
        assert len(out) == SIGNATURE_SIZE
        return out

    def aggregate_public_keys(self, pks: Sequence[bytes]) -> bytes:
        items = _aggregate_inputs(pks, PUBLIC_KEY_SIZE, BlsError.INVALID_PUBLIC_KEY, "public key")
        for pk in items:
            if not self.key_is_valid(pk):
                raise BlsError(BlsError.INVALID_PUBLIC_KEY, "public key fails KeyValidate")
        out = bytes(self._scheme._AggregatePKs(items))
        assert len(out) == PUBLIC_KEY_SIZE
        return out

    def fast_aggregate_verify(self, pks: Sequence[bytes], msg: bytes, sig: bytes) -> bool:
        items = _sequence_of(pks, PUBLIC_KEY_SIZE)
        sig_raw = _sized(sig, SIGNATURE_SIZE)
        msg_raw = _message_for_verifying(msg)
        if not items or sig_raw is None or msg_raw is None:
            return False
        if not all(self.key_is_valid(pk) for pk in items):
            return False
        # Same steps as G2ProofOfPossession.FastAggregateVerify, with the per-key KeyValidate served from the cache.
        # Verify re-checks the aggregate key, so an aggregate equal to the identity is rejected.
        aggregate_pk = self._scheme._AggregatePKs(items)
        return bool(self._scheme.Verify(aggregate_pk, msg_raw, sig_raw))

    def pop_prove(self, sk: bytes) -> bytes:
        proof = bytes(self._scheme.PopProve(_secret_key_scalar(sk)))
        assert len(proof) == SIGNATURE_SIZE
        return proof

    def pop_verify(self, pk: bytes, proof: bytes) -> bool:
        pk_raw = _sized(pk, PUBLIC_KEY_SIZE)
        proof_raw = _sized(proof, SIGNATURE_SIZE)
        if pk_raw is None or proof_raw is None or not self.key_is_valid(pk_raw):
            return False
        return bool(self._scheme.PopVerify(pk_raw, proof_raw))


# ---------------------------------------------------------------------------------------------------------------
# blspy: the fast backend.


class BlspyBackend:
    """blspy.PopSchemeMPL.  Decoded, validated public keys are kept in a bounded LRU cache."""

    name = "blspy"

    def __init__(self, public_key_cache_size: int = PUBLIC_KEY_CACHE_SIZE) -> None:
        import blspy

        self._blspy = blspy
        self._scheme = blspy.PopSchemeMPL
        # bytes -> G1Element for keys that pass KeyValidate.  Keys that fail raise inside the cached function and so
        # are never stored: garbage cannot evict the validator set from the cache.
        self._decoded_key: Callable[[bytes], object] = functools.lru_cache(maxsize=public_key_cache_size)(
            self._decode_key_uncached
        )

    def _decode_key_uncached(self, pk: bytes) -> object:
        # G1Element.from_bytes checks the encoding flags, canonical x < p, the curve equation and the subgroup;
        # it accepts the identity, which KeyValidate forbids.
        if pk == G1_INFINITY:
            raise _RejectedKeyError
        try:
            return self._blspy.G1Element.from_bytes(pk)
        except (ValueError, RuntimeError, TypeError, IndexError) as exc:  # how pybind11 maps C++ errors
            raise _RejectedKeyError from exc

    def decode_public_key(self, pk: bytes) -> object | None:
        """The G1Element of a 48-byte key that passes KeyValidate, else None."""
        raw = _sized(pk, PUBLIC_KEY_SIZE)
        if raw is None:
            return None
        try:
            return self._decoded_key(raw)
        except _RejectedKeyError:
            return None

    def key_is_valid(self, pk: bytes) -> bool:
        """KeyValidate: `pk` is 48 bytes encoding (canonically) a G1 subgroup point other than the identity."""
        return self.decode_public_key(pk) is not None

    def cache_info(self) -> functools._CacheInfo:
        return self._decoded_key.cache_info()  # type: ignore[attr-defined]

    def _decode_signature(self, sig: bytes) -> object | None:
        try:
            return self._blspy.G2Element.from_bytes(sig)
        except (ValueError, RuntimeError, TypeError, IndexError):  # how pybind11 maps C++ errors
            return None

    def _private_key(self, sk: bytes) -> object:
        _secret_key_scalar(sk)
        return self._blspy.PrivateKey.from_bytes(bytes(sk))

    def keygen(self, seed: bytes) -> bytes:
        return ietf_keygen(seed)

    def public_key(self, sk: bytes) -> bytes:
        pk = bytes(self._private_key(sk).get_g1())
        assert len(pk) == PUBLIC_KEY_SIZE
        return pk

    def sign(self, sk: bytes, msg: bytes) -> bytes:
        private_key = self._private_key(sk)
        sig = bytes(self._scheme.sign(private_key, _message_for_signing(msg)))
        assert len(sig) == SIGNATURE_SIZE
        return sig

    def verify(self, pk: bytes, msg: bytes, sig: bytes) -> bool:
        pk_raw = _sized(pk, PUBLIC_KEY_SIZE)
        sig_raw = _sized(sig, SIGNATURE_SIZE)
        msg_raw = _message_for_verifying(msg)
        if pk_raw is None or sig_raw is None or msg_raw is None:
            return False
        pk_point = self.decode_public_key(pk_raw)
        sig_point = self._decode_signature(sig_raw)
        if pk_point is None or sig_point is None:
            return False
        return bool(self._scheme.verify(pk_point, msg_raw, sig_point))

    def aggregate(self, sigs: Sequence[bytes]) -> bytes:
        items = _aggregate_inputs(sigs, SIGNATURE_SIZE, BlsError.INVALID_SIGNATURE, "signature")
        points = []
        for sig in items:
            point = self._decode_signature(sig)
            if point is None:
                raise BlsError(BlsError.INVALID_SIGNATURE, "signature is not a point of the G2 subgroup")
            points.append(point)
        out = bytes(self._scheme.aggregate(points))
        assert len(out) == SIGNATURE_SIZE
        return out

    def _sum_public_keys(self, items: list[bytes]) -> object | None:
        total = self._blspy.G1Element()
        for pk in items:
            point = self.decode_public_key(pk)
            if point is None:
                return None
            total = total + point
        return total

    def aggregate_public_keys(self, pks: Sequence[bytes]) -> bytes:
        items = _aggregate_inputs(pks, PUBLIC_KEY_SIZE, BlsError.INVALID_PUBLIC_KEY, "public key")
        total = self._sum_public_keys(items)
        if total is None:
            raise BlsError(BlsError.INVALID_PUBLIC_KEY, "public key fails KeyValidate")
        out = bytes(total)
        assert len(out) == PUBLIC_KEY_SIZE
        return out

    def fast_aggregate_verify(self, pks: Sequence[bytes], msg: bytes, sig: bytes) -> bool:
        items = _sequence_of(pks, PUBLIC_KEY_SIZE)
        sig_raw = _sized(sig, SIGNATURE_SIZE)
        msg_raw = _message_for_verifying(msg)
        if not items or sig_raw is None or msg_raw is None:
            return False
        total = self._sum_public_keys(items)
        sig_point = self._decode_signature(sig_raw)
        # The identity as the aggregate key is rejected, as the reference's Verify(aggregate) does.
        if total is None or sig_point is None or total == self._blspy.G1Element():
            return False
        return bool(self._scheme.verify(total, msg_raw, sig_point))

    def pop_prove(self, sk: bytes) -> bytes:
        proof = bytes(self._scheme.pop_prove(self._private_key(sk)))
        assert len(proof) == SIGNATURE_SIZE
        return proof

    def pop_verify(self, pk: bytes, proof: bytes) -> bool:
        pk_raw = _sized(pk, PUBLIC_KEY_SIZE)
        proof_raw = _sized(proof, SIGNATURE_SIZE)
        if pk_raw is None or proof_raw is None:
            return False
        pk_point = self.decode_public_key(pk_raw)
        proof_point = self._decode_signature(proof_raw)
        if pk_point is None or proof_point is None:
            return False
        return bool(self._scheme.pop_verify(pk_point, proof_point))


# ---------------------------------------------------------------------------------------------------------------
# Backend selection.

_BACKEND_TYPES: Final[dict[str, type[PyEccBackend | BlspyBackend]]] = {
    "blspy": BlspyBackend,
    "py_ecc": PyEccBackend,
}
_instances: dict[str, BlsBackend] = {}


def _instantiate(name: str) -> BlsBackend:
    backend = _instances.get(name)
    if backend is None:
        backend_type = _BACKEND_TYPES.get(name)
        if backend_type is None:
            raise BlsError(BlsError.UNKNOWN_BACKEND, f"unknown BLS backend {name!r}; expected one of {BACKEND_NAMES}")
        try:
            backend = backend_type()
        except ImportError as exc:
            raise BlsError(BlsError.BACKEND_UNAVAILABLE, f"BLS backend {name!r} cannot be imported: {exc}") from exc
        _instances[name] = backend
    return backend


def available_backends() -> tuple[str, ...]:
    """Names of the backends that can be imported here, fastest first."""
    names = []
    for name in BACKEND_NAMES:
        try:
            _instantiate(name)
        except BlsError:
            continue
        names.append(name)
    return tuple(names)


def get_backend(name: str | None = None) -> BlsBackend:
    """The backend called `name` ("blspy" or "py_ecc").

    With name=None: blspy when it can be imported, otherwise py_ecc.  The caller chooses: this module reads no
    environment or configuration (a node resolves its choice in node/chain/protocol.py, `bls_backend`).
    Raises BlsError (bls_unknown_backend, bls_backend_unavailable) when the requested backend cannot be used.
    Backends are singletons per name, so their public-key caches are shared.
    """
    if name is not None:
        return _instantiate(name)
    try:
        return _instantiate("blspy")
    except BlsError:
        return _instantiate("py_ecc")


DEFAULT: BlsBackend = get_backend()


def keygen(seed: bytes) -> bytes:
    return DEFAULT.keygen(seed)


def public_key(sk: bytes) -> bytes:
    return DEFAULT.public_key(sk)


def key_is_valid(pk: bytes) -> bool:
    return DEFAULT.key_is_valid(pk)


def sign(sk: bytes, msg: bytes) -> bytes:
    return DEFAULT.sign(sk, msg)


def verify(pk: bytes, msg: bytes, sig: bytes) -> bool:
    return DEFAULT.verify(pk, msg, sig)


def aggregate(sigs: Sequence[bytes]) -> bytes:
    return DEFAULT.aggregate(sigs)


def aggregate_public_keys(pks: Sequence[bytes]) -> bytes:
    return DEFAULT.aggregate_public_keys(pks)


def fast_aggregate_verify(pks: Sequence[bytes], msg: bytes, sig: bytes) -> bool:
    return DEFAULT.fast_aggregate_verify(pks, msg, sig)


def pop_prove(sk: bytes) -> bytes:
    return DEFAULT.pop_prove(sk)


def pop_verify(pk: bytes, proof: bytes) -> bool:
    return DEFAULT.pop_verify(pk, proof)
