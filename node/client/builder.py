"""Building and signing transactions on the client: every operation from its JSON-form fields, bodies with sensible
defaults, signatures, and the JSON/hex forms the API and the CLI exchange.

    op = operation("transfer", actor="alice@bank-a", asset="BOND-A",
                   legs=[{"recipient": "bob@bank-b", "amount": 300}])
    body = make_body([op], chain_id="testnet", expiry_height=head + 100)
    tx = sign(body, [alice_key])                 # ledger.transaction.SignedTransaction
    tx.to_bytes()                                # the canonical bytes to submit

Operation fields are those of docs/protocol.md section 5, in the JSON form of section 8 (bin as lowercase hex; Python
bytes are accepted for bin fields too). Everything is checked against the schema here, with the same codes as the
node uses (ledger.codes), and against the node's operation set (node.chain.protocol.OPERATIONS: the core kinds and
the contracts layer's), so a transaction the builder accepts decodes on the node.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ledger.codec import Bin, DecodeError, Optional, Record, Seq, WireType
from ledger.jsonform import body_from_json, body_to_json, from_json, kind_name, to_json
from ledger.operations import Operation, Settle
from ledger.schema import MAX_TX_LIFETIME
from ledger.transaction import SignedTransaction, TxBody, decode_transaction, sign_transaction
from node.chain.protocol import OPERATIONS
from node.client.errors import ClientError
from node.client.keys import AccountKey

__all__ = [
    "OPERATION_KINDS",
    "make_body",
    "operation",
    "operation_fields",
    "operation_from_json",
    "operation_to_json",
    "required_signers",
    "sign",
    "tx_from_bytes",
    "tx_to_json",
]

# kind name -> record type, in kind-number order: "register_member", ..., "settle", then the contracts layer's
# extension kinds ("set_claim", "revoke_claim", "announce_action", "pay_action")
OPERATION_KINDS: dict[str, Record] = {
    kind_name(rec.cls): rec for _, rec in sorted(OPERATIONS.variant.by_kind.items())
}


def operation_fields(kind: str) -> tuple[tuple[str, WireType], ...]:
    """The (name, wire type) of each field of an operation kind, in order (the CLI builds its flags from them)."""
    rec = OPERATION_KINDS.get(kind)
    if rec is None:
        raise ClientError("bad_input", f"unknown operation kind {kind!r}; one of {', '.join(OPERATION_KINDS)}")
    return tuple(zip(rec.names, rec.types))


def _jsonable(t: WireType, v: Any) -> Any:
    """Accept Python conveniences (bytes for bin, tuples for arrays, op dataclasses) on top of the JSON form."""
    tt = type(t)
    if tt is Bin and isinstance(v, bytes | bytearray):
        return bytes(v).hex()
    if tt is Optional:
        return None if v is None else _jsonable(t.inner, v)  # type: ignore[attr-defined]
    if tt is Seq and isinstance(v, list | tuple):
        return [_jsonable(t.item, x) for x in v]  # type: ignore[attr-defined]
    if tt is Record:
        if isinstance(v, t.cls):  # type: ignore[attr-defined]
            return to_json(t, v)
        if isinstance(v, Mapping):
            fields = dict(zip(t.names, t.types))  # type: ignore[attr-defined]
            return {k: _jsonable(fields[k], x) if k in fields else x for k, x in v.items()}
    return v


def operation(kind: str, **fields: Any) -> Operation:
    """One operation from its fields; ClientError("bad_input") naming the field and the ledger code when invalid."""
    rec = OPERATION_KINDS.get(kind)
    if rec is None:
        raise ClientError("bad_input", f"unknown operation kind {kind!r}; one of {', '.join(OPERATION_KINDS)}")
    types = dict(zip(rec.names, rec.types))
    obj = {"kind": kind, **{k: _jsonable(types[k], v) if k in types else v for k, v in fields.items()}}
    return operation_from_json(obj)


def operation_from_json(obj: Any) -> Operation:
    try:
        return from_json(OPERATIONS.variant, obj)
    except DecodeError as exc:
        raise ClientError("bad_input", str(exc), {"ledger_code": exc.code, "path": exc.path}) from None


def operation_to_json(op: Operation) -> dict[str, Any]:
    return to_json(OPERATIONS.variant, op)


def required_signers(ops: Iterable[Operation]) -> tuple[str, ...]:
    """The accounts that must sign, as far as the operations name them: every operation's actor, every settlement
    leg's sender, and the payer of an announced corporate action. (A pay_action must also be signed by the payer
    named in the announced action, which is in state: declare it with `signers=`.)"""
    out: set[str] = set()
    for op in ops:
        out.add(op.actor)
        if isinstance(op, Settle):
            out.update(leg.sender for leg in op.legs)
        payer = getattr(op, "payer", None)
        if isinstance(payer, str):
            out.add(payer)
    return tuple(sorted(out))


def make_body(
    ops: Sequence[Operation],
    *,
    chain_id: str,
    expiry_height: int,
    signers: Iterable[str] | None = None,
    nonce: int | None = None,
) -> TxBody:
    """A transaction body. signers default to required_signers(ops); nonce to a random 63-bit number (ids differ
    for otherwise identical transactions). expiry_height: the last height at which it may be included (at most
    MAX_TX_LIFETIME blocks ahead of the including block)."""
    if not ops:
        raise ClientError("bad_input", "a transaction needs at least one operation")
    signer_list = sorted(set(required_signers(ops) if signers is None else signers))
    obj = {
        "version": 1,
        "chain_id": chain_id,
        "signers": signer_list,
        "nonce": secrets.randbits(63) if nonce is None else nonce,
        "expiry_height": expiry_height,
        "operations": [operation_to_json(op) for op in ops],
    }
    try:
        return body_from_json(obj, operations=OPERATIONS)
    except DecodeError as exc:
        raise ClientError("bad_input", str(exc), {"ledger_code": exc.code, "path": exc.path}) from None


def default_expiry(head_height: int, lifetime: int = 100) -> int:
    """An expiry `lifetime` blocks after the head (clamped to what the ledger accepts)."""
    return head_height + max(1, min(lifetime, MAX_TX_LIFETIME))


def sign(body: TxBody, keys: Iterable[AccountKey]) -> SignedTransaction:
    """Sign `body` with each key (several keys of one account for an M-of-N account). Every key must be of a
    declared signer."""
    pairs = [(k.account, k.signing_key) for k in keys]
    if not pairs:
        raise ClientError("bad_input", "no key to sign with")
    stray = sorted({a for a, _ in pairs} - set(body.signers))
    if stray:
        raise ClientError("bad_input", f"keys of {', '.join(stray)}, not declared signers {list(body.signers)}")
    if len({(a, bytes(k.verify_key)) for a, k in pairs}) != len(pairs):
        raise ClientError("bad_input", "the same key given twice")
    return sign_transaction(body, pairs, operations=OPERATIONS)


def tx_from_bytes(data: bytes) -> SignedTransaction:
    try:
        return decode_transaction(data, operations=OPERATIONS)
    except DecodeError as exc:
        raise ClientError("bad_input", f"not a signed transaction: {exc}", {"ledger_code": exc.code}) from None


def tx_to_json(tx: SignedTransaction) -> dict[str, Any]:
    """A readable form of a signed transaction: id, body (JSON form), signatures, and the exact bytes (hex)."""
    return {
        "tx_id": tx.tx_id.hex(),
        "body": body_to_json(tx.body, operations=OPERATIONS),
        "signatures": [
            {"account": s.account, "public_key": s.public_key.hex(), "signature": s.signature.hex()}
            for s in tx.signatures
        ],
        "signed_tx_hex": tx.to_bytes().hex(),
    }
