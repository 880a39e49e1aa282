"""Signed transactions: body, id, signing message, signatures (docs/protocol.md, "Transactions").

- The body is a canonical msgpack array: [version=1, chain_id, signers, nonce, expiry_height, operations].
- The signed transaction on the wire is [body_bytes (bin), signatures]; carrying the body as bytes means the id and
  the signing message are computed over exactly the bytes received, with no re-encoding.
- tx id = SHA-256(body_bytes). Signatures are outside the body, so they cannot change the id (no malleability);
  Ed25519 as implemented by libsodium also rejects non-canonical signature encodings.
- signing message = TX_DOMAIN || u8(len(chain_id)) || chain_id (ASCII) || body_bytes.
- A signature is [account, public_key, signature]; the list is strictly sorted by (account, public_key). Whether the
  key belongs to the account (and the M-of-N threshold) is checked against state when the transaction executes.

Which operation kinds a body may hold is the chain's operation set (ledger.operation_set.OperationSet): every
function that encodes or decodes a body takes it (`operations=`), and `TxBody`'s own record leaves its operations
open (`operations.body` is the record of a body of that set).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from ledger.codec import Bin, Record, Seq, Unbound, Version, constructor, decode, encode, record_type, wire
from ledger.operations import Operation
from ledger.schema import (
    ACCOUNT_ID,
    CHAIN_ID,
    HEIGHT,
    MAX_BODY_BYTES,
    MAX_OPS_PER_TX,
    MAX_SIGNATURES,
    MAX_SIGNERS,
    MAX_TX_BYTES,
    PUBLIC_KEY,
    SIGNATURE,
    U64,
)


class BodyRecords(Protocol):
    """What encoding and decoding a body needs of an operation set (ledger.operation_set.OperationSet): the record
    of a body whose operations are the set's."""

    @property
    def body(self) -> Record: ...

__all__ = [
    "TX_DOMAIN",
    "Signature",
    "SignedTransaction",
    "TxBody",
    "decode_body",
    "decode_transaction",
    "encode_body",
    "sign_transaction",
    "signing_message",
    "tx_id_of",
    "verify_signature",
]

TX_DOMAIN = b"CONSORTIUM-LEDGER/TX/v1\x00"
TX_VERSION = 1

# The operation union of a body is the operation set's (OperationSet.body binds it).
OPERATION_OF_THE_SET = Unbound("operation (array: kind, fields...)", "encode and decode bodies with an OperationSet")


@dataclass(frozen=True, slots=True)
class TxBody:
    version: int = wire(Version(TX_VERSION))
    chain_id: str = wire(CHAIN_ID)
    signers: tuple[str, ...] = wire(Seq(ACCOUNT_ID, MAX_SIGNERS, min_len=1, sorted_unique=True))
    nonce: int = wire(U64)
    expiry_height: int = wire(HEIGHT)
    operations: tuple[Operation, ...] = wire(Seq(OPERATION_OF_THE_SET, MAX_OPS_PER_TX, min_len=1))


@dataclass(frozen=True, slots=True)
class Signature:
    account: str = wire(ACCOUNT_ID)
    public_key: bytes = wire(PUBLIC_KEY)
    signature: bytes = wire(SIGNATURE)


@dataclass(frozen=True, slots=True)
class TxEnvelope:
    """The wire form of a signed transaction."""

    body: bytes = wire(Bin(1, MAX_BODY_BYTES))
    signatures: tuple[Signature, ...] = wire(
        Seq(
            record_type(Signature),
            MAX_SIGNATURES,
            min_len=1,
            sorted_unique=True,
            sort_key=lambda s: (s.account, s.public_key),
        )
    )


ENVELOPE: Record = record_type(TxEnvelope)


@dataclass(frozen=True, slots=True)
class SignedTransaction:
    """A decoded signed transaction with its exact body bytes and id. `envelope`: its wire bytes when known (kept by
    decode_transaction, so a transaction received as bytes is never encoded again)."""

    body: TxBody
    body_bytes: bytes
    signatures: tuple[Signature, ...]
    tx_id: bytes
    envelope: bytes | None = field(default=None, compare=False, repr=False)

    def to_bytes(self) -> bytes:
        if self.envelope is not None:
            return self.envelope
        return encode(ENVELOPE, TxEnvelope(self.body_bytes, self.signatures))

    @property
    def signing_message(self) -> bytes:
        return signing_message(self.body.chain_id, self.body_bytes)


_make_signed = constructor(SignedTransaction)
_sha256 = hashlib.sha256


def encode_body(body: TxBody, *, operations: BodyRecords) -> bytes:
    """The canonical bytes of `body`; an operation outside `operations` raises EncodeError."""
    return encode(operations.body, body)


def decode_body(data: bytes, *, operations: BodyRecords) -> TxBody:
    return decode(operations.body, data, MAX_BODY_BYTES)


def tx_id_of(body_bytes: bytes) -> bytes:
    return hashlib.sha256(body_bytes).digest()


# signing_message remembers the prefix (domain, length, chain id) per chain id; the table is cleared when full.
SIGNING_PREFIX_CACHE_MAX = 64
_SIGNING_PREFIXES: dict[str, bytes] = {}


def signing_message(chain_id: str, body_bytes: bytes) -> bytes:
    prefix = _SIGNING_PREFIXES.get(chain_id)
    if prefix is None:
        chain = chain_id.encode("ascii")
        prefix = TX_DOMAIN + bytes((len(chain),)) + chain
        if len(_SIGNING_PREFIXES) >= SIGNING_PREFIX_CACHE_MAX:
            _SIGNING_PREFIXES.clear()
        _SIGNING_PREFIXES[chain_id] = prefix
    return prefix + body_bytes


def decode_transaction(data: bytes, *, operations: BodyRecords) -> SignedTransaction:
    """Decode a signed transaction whose operations belong to `operations`; any malformed or non-canonical input
    (or an operation kind outside the set: UNKNOWN_VARIANT) raises DecodeError."""
    env: TxEnvelope = decode(ENVELOPE, data, MAX_TX_BYTES)
    body_bytes = env.body
    body = decode(operations.body, body_bytes, MAX_BODY_BYTES)  # decode_body
    # Decoding is strict (the bytes re-encode to themselves), so `data` is the canonical envelope.
    wire_bytes = data if type(data) is bytes else bytes(data)
    return _make_signed(body, body_bytes, env.signatures, _sha256(body_bytes).digest(), wire_bytes)


def sign_transaction(
    body: TxBody, signers: Iterable[tuple[str, SigningKey]], *, operations: BodyRecords
) -> SignedTransaction:
    """Encode `body` (its operations from `operations`) and sign it with each (account, key); signatures are put in
    canonical order."""
    body_bytes = encode_body(body, operations=operations)
    message = signing_message(body.chain_id, body_bytes)
    sigs = sorted(
        (Signature(account, bytes(key.verify_key), key.sign(message).signature) for account, key in signers),
        key=lambda s: (s.account, s.public_key),
    )
    return SignedTransaction(body, body_bytes, tuple(sigs), tx_id_of(body_bytes))


_VERIFY_KEYS: dict[bytes, VerifyKey] = {}
_VERIFY_KEY_CACHE_MAX = 65_536


def verify_signature(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """Ed25519 verification (libsodium via pynacl). Pure; caches parsed public keys (bounded)."""
    vk = _VERIFY_KEYS.get(public_key)
    if vk is None:
        try:
            vk = VerifyKey(public_key)
        except (ValueError, TypeError):
            return False
        if len(_VERIFY_KEYS) >= _VERIFY_KEY_CACHE_MAX:
            _VERIFY_KEYS.clear()
        _VERIFY_KEYS[public_key] = vk
    try:
        vk.verify(message, signature)
    except BadSignatureError:
        return False
    return True
