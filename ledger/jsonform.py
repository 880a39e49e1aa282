"""The JSON form of wire values (docs/protocol.md, "JSON form"), schema-driven like the codec.

Used by the test vectors, the API's `encode` endpoint (JSON operations -> canonical bytes to sign) and clients.

- record: a JSON object with exactly its field names;
- operation (variant): {"kind": "<snake_case name>", <fields>} ; the governance actions inside `propose` likewise
  ({"kind": "add_validator", "node_id": ..., ...}), names from their class names (`kind_name`);
- bin: lowercase hex string; str, int, bool, nil: themselves;
- rule/event parameter maps: a JSON object whose values are numbers, strings, or {"bin": "<hex>"} for bytes.

`from_json` is strict (exact keys, exact JSON types, every schema limit) and raises DecodeError with a code from
ledger.codes; it never raises anything else for any JSON-decoded input.

Operations, bodies and receipts have the JSON form of an operation set: pass its wire types (`ops.variant`,
`ops.body`, `ops.receipt`) to to_json / from_json, or the set itself to body_to_json / body_from_json.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from ledger import codes
from ledger.codec import (
    Bin,
    Bool,
    Choice,
    CodecError,
    DecodeError,
    EncodeError,
    Optional,
    Record,
    Scalar,
    Seq,
    Str,
    StrMap,
    UInt,
    Variant,
    Version,
    WireType,
)

if TYPE_CHECKING:
    from ledger.operation_set import OperationSet
    from ledger.transaction import TxBody

__all__ = ["body_from_json", "body_to_json", "from_json", "kind_name", "to_json"]

_HEX = re.compile(r"(?:[0-9a-f]{2})*")


def kind_name(cls: type) -> str:
    """`RegisterAccount` -> `register_account`."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", cls.__name__).lower()


def to_json(t: WireType, value: Any) -> Any:
    tt = type(t)
    if tt in (UInt, Version, Bool, Str, Choice):
        return value
    if tt is Bin:
        return value.hex()
    if tt is Optional:
        return None if value is None else to_json(t.inner, value)  # type: ignore[attr-defined]
    if tt is Seq:
        return [to_json(t.item, x) for x in value]  # type: ignore[attr-defined]
    if tt is Scalar:
        return {"bin": value.hex()} if type(value) is bytes else value
    if tt is StrMap:
        return {k: to_json(t.value, v) for k, v in value}  # type: ignore[attr-defined]
    if tt is Record:
        return {n: to_json(ft, getattr(value, n)) for n, ft in zip(t.names, t.types)}  # type: ignore[attr-defined]
    if tt is Variant:
        _kind, rec = t.by_cls[type(value)]  # type: ignore[attr-defined]
        return {"kind": kind_name(rec.cls), **to_json(rec, value)}
    raise TypeError(f"no JSON form for {tt.__name__}")


def _err(code: int, message: str) -> DecodeError:
    return DecodeError(code, message)


def _expect(v: Any, types: tuple[type, ...], what: str) -> None:
    if type(v) not in types:
        if type(v) is float:
            raise _err(codes.FLOAT_FORBIDDEN, f"float where {what} expected")
        raise _err(codes.WRONG_TYPE, f"expected {what}, got {type(v).__name__}")


def _unhex(v: Any) -> bytes:
    _expect(v, (str,), "hex string")
    if _HEX.fullmatch(v) is None:
        raise _err(codes.INVALID_VALUE, "expected lowercase hex with an even number of digits")
    return bytes.fromhex(v)


def _fields(rec: Record, obj: Any, skip: frozenset[str] = frozenset()) -> Any:
    _expect(obj, (dict,), f"object ({rec.cls.__name__})")
    keys = set(obj) - skip
    names = set(rec.names)
    if keys - names:
        raise _err(codes.UNKNOWN_FIELD, f"unknown fields {sorted(keys - names)}")
    if names - keys:
        raise _err(codes.MISSING_FIELD, f"missing fields {sorted(names - keys)}")
    args = []
    for n, ft in zip(rec.names, rec.types):
        try:
            args.append(_load(ft, obj[n]))
        except CodecError as exc:
            raise DecodeError(exc.code, exc.message, exc.at(n).path) from None
    return rec.cls(*args)


def _load(t: WireType, v: Any) -> Any:
    tt = type(t)
    if tt in (UInt, Version):
        _expect(v, (int,), "integer")
        return v
    if tt is Bool:
        _expect(v, (bool,), "bool")
        return v
    if tt is Str:
        _expect(v, (str,), "string")
        return v
    if tt is Choice:
        _expect(v, (str,), "string")
        return t.load(v)
    if tt is Bin:
        return _unhex(v)
    if tt is Optional:
        return None if v is None else _load(t.inner, v)  # type: ignore[attr-defined]
    if tt is Seq:
        _expect(v, (list,), "array")
        return tuple(_load(t.item, x) for x in v)  # type: ignore[attr-defined]
    if tt is Scalar:
        if type(v) is dict:
            if set(v) != {"bin"}:
                raise _err(codes.WRONG_TYPE, 'bytes parameters are {"bin": "<hex>"}')
            return _unhex(v["bin"])
        _expect(v, (int, str), "integer, string or {bin}")
        return v
    if tt is StrMap:
        _expect(v, (dict,), "object")
        items = [(k, _load(t.value, x)) for k, x in v.items()]  # type: ignore[attr-defined]
        return tuple(sorted(items, key=lambda kv: kv[0].encode("utf-8")))
    if tt is Record:
        return _fields(t, v)  # type: ignore[arg-type]
    if tt is Variant:
        _expect(v, (dict,), "object with a kind")
        kind = v.get("kind")
        for rec in t.by_kind.values():  # type: ignore[attr-defined]
            if kind_name(rec.cls) == kind:
                return _fields(rec, v, frozenset({"kind"}))
        raise _err(codes.UNKNOWN_VARIANT, f"unknown kind {kind!r}")
    raise TypeError(f"no JSON form for {tt.__name__}")


def from_json(t: WireType, obj: Any) -> Any:
    """The value of type `t` from its JSON form, checked against every schema rule."""
    try:
        value = _load(t, obj)
        t.dump(value)
    except EncodeError as exc:
        raise DecodeError(exc.code, exc.message, exc.path) from None
    except RecursionError:
        raise DecodeError(codes.LIMIT_EXCEEDED, "nested too deeply") from None
    return value


def body_to_json(body: TxBody, *, operations: OperationSet) -> dict[str, Any]:
    return to_json(operations.body, body)


def body_from_json(obj: Any, *, operations: OperationSet) -> TxBody:
    """A transaction body from its JSON form, its operations from `operations` (another kind: UNKNOWN_VARIANT)."""
    return from_json(operations.body, obj)
