"""A schema-driven canonical msgpack codec.

Every wire and state type is a frozen dataclass whose fields carry a wire type (`wire(T)` in the field metadata).
A record is encoded as a msgpack **array** of its fields in declaration order (no field names on the wire: the order
is the schema, so an extra element is an unknown field and a missing one is a missing field). A tagged union
(`Variant`) is an array whose first element is the kind number followed by that kind's fields.

Canonical rules (docs/protocol.md, "Canonical encoding"):
- integers only, in the smallest msgpack encoding (what every conforming msgpack encoder emits); floats, ext types,
  and nil where no Optional is declared are refused;
- byte strings (msgpack bin) for hashes, keys and signatures; UTF-8 strings (msgpack str) for readable ids and text;
  the smallest str/bin/array/map header for the length;
- maps only for free-form parameters: string keys strictly sorted by their UTF-8 bytes, no duplicates;
- set-like lists are strictly sorted without duplicates;
- per-field limits (byte lengths, list lengths, integer ranges, id patterns) and a limit on the whole value.

`decode` accepts exactly the canonical bytes: it parses, checks every field against the schema, then re-encodes
the parsed value and compares byte for byte, so any non-minimal header, duplicate map key or unsorted map is caught
even when the parser would have accepted it. Every failure is a `DecodeError` with a stable code from ledger.codes;
no other exception escapes `decode`. When ledger._codec_native is built, `decode` first tries it: one C pass that
parses, checks the canonical form of every header and every field, and builds the same value; it only ever accepts,
and anything it does not accept is decided by the Python decoder described here (tests/ledger/test_codec_native.py).

The codec is generic: other layers may declare their own dataclasses with `wire(...)` fields and use it.
"""

from __future__ import annotations

import dataclasses
import itertools
import operator
import re
import threading
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import msgpack

from ledger import codes
from ledger.errors import LedgerError

__all__ = [
    "Bin",
    "Bool",
    "Choice",
    "CodecError",
    "DecodeError",
    "EncodeError",
    "Optional",
    "Record",
    "Scalar",
    "Seq",
    "Str",
    "StrMap",
    "UInt",
    "Unbound",
    "Variant",
    "Version",
    "WireType",
    "constructor",
    "decode",
    "decode_trusted",
    "encode",
    "encode_trusted",
    "record_type",
    "trusted_encoder",
    "wire",
]

T = TypeVar("T")

U8_MAX = (1 << 8) - 1
U16_MAX = (1 << 16) - 1
U32_MAX = (1 << 32) - 1
U64_MAX = (1 << 64) - 1
I64_MIN = -(1 << 63)


class CodecError(LedgerError, ValueError):
    """A value that cannot be encoded or bytes that cannot be decoded. `code` is from ledger.codes (1 – 99); `path`
    names the offending field (e.g. `body.ops[0].amount`)."""


# The strict fast path of Record decoding (generated loaders, WireType.strict_loader) is on; the generic checks are
# the specification and run whenever the fast path does not accept. Tests switch it off to decode with the generic
# checks alone and compare (tests/ledger/test_codec.py); nothing else changes it.
STRICT_FAST_PATH = True


class _Fallback(Exception):
    """Internal: the compiled fast loader met something it does not accept; rerun the generic checks."""


class DecodeError(CodecError):
    """Bytes that are not the canonical encoding of a valid value."""


class EncodeError(CodecError):
    """A Python value that does not fit its wire type (wrong type, float, out of range, too long)."""


# --------------------------------------------------------------------------------------------------------------
# Wire types


class WireType:
    """A wire type converts between a Python value and a msgpack primitive tree, checking every rule."""

    doc: str = ""

    def load(self, v: Any) -> Any:
        """Primitive (as parsed by msgpack with use_list=False, raw=False) -> Python value. Raises DecodeError."""
        raise TypeError(type(self).__name__)  # subclasses override

    def dump(self, x: Any) -> Any:
        """Python value -> primitive tree. Raises EncodeError."""
        raise TypeError(type(self).__name__)  # subclasses override

    # Trusted fast paths (values this ledger produced itself): structure only, no checks. None = identity.
    def fast_loader(self) -> Callable[[Any], Any] | None:
        return None

    def fast_dumper(self) -> Callable[[Any], Any] | None:
        return None

    # Strict fast path (decoding untrusted bytes): a function that returns exactly what `load` returns, or raises
    # _Fallback (or CodecError, ValueError, TypeError) for anything it does not accept, after which the caller
    # reruns the generic `load` for the precise error. None = no such function (use `load`).
    def strict_loader(self) -> Callable[[Any], Any] | None:
        return None


def _type_name(v: object) -> str:
    return "nil" if v is None else type(v).__name__


def _wrong(v: object, expected: str) -> DecodeError:
    if type(v) is float:
        return DecodeError(codes.FLOAT_FORBIDDEN, f"float where {expected} expected")
    return DecodeError(codes.WRONG_TYPE, f"expected {expected}, got {_type_name(v)}")


def _ewrong(x: object, expected: str) -> EncodeError:
    if type(x) is float:
        return EncodeError(codes.FLOAT_FORBIDDEN, f"float where {expected} expected")
    return EncodeError(codes.WRONG_TYPE, f"expected {expected}, got {_type_name(x)}")


class UInt(WireType):
    """An unsigned integer in [minimum, maximum] (msgpack positive fixint / uint8..uint64, smallest form)."""

    __slots__ = ("bits", "doc", "maximum", "minimum")

    def __init__(self, bits: int = 64, minimum: int = 0, maximum: int | None = None) -> None:
        assert bits in (8, 16, 32, 64)
        self.bits = bits
        self.minimum = minimum
        self.maximum = (1 << bits) - 1 if maximum is None else maximum
        assert 0 <= self.minimum <= self.maximum < (1 << bits)
        self.doc = f"uint{bits} in [{self.minimum}, {self.maximum}]"

    def load(self, v: Any) -> int:
        if type(v) is not int:
            raise _wrong(v, "integer")
        if not self.minimum <= v <= self.maximum:
            raise DecodeError(codes.INVALID_VALUE, f"integer {v} outside [{self.minimum}, {self.maximum}]")
        return v

    def dump(self, x: Any) -> int:
        if type(x) is not int:
            raise _ewrong(x, "integer")
        if not self.minimum <= x <= self.maximum:
            raise EncodeError(codes.INVALID_VALUE, f"integer {x} outside [{self.minimum}, {self.maximum}]")
        return x


class Bool(WireType):
    """msgpack true/false."""

    __slots__ = ()
    doc = "bool"

    def load(self, v: Any) -> bool:
        if type(v) is not bool:
            raise _wrong(v, "bool")
        return v

    def dump(self, x: Any) -> bool:
        if type(x) is not bool:
            raise _ewrong(x, "bool")
        return x


class Bin(WireType):
    """A byte string (msgpack bin) of min_len..max_len bytes."""

    __slots__ = ("doc", "max_len", "min_len")

    def __init__(self, min_len: int = 0, max_len: int | None = None) -> None:
        self.min_len = min_len
        self.max_len = min_len if max_len is None else max_len
        assert 0 <= self.min_len <= self.max_len
        if self.min_len == self.max_len:
            self.doc = f"bin, exactly {self.min_len} bytes"
        else:
            self.doc = f"bin, {self.min_len}..{self.max_len} bytes"

    def load(self, v: Any) -> bytes:
        if type(v) is not bytes:
            raise _wrong(v, "bin")
        if not self.min_len <= len(v) <= self.max_len:
            code = codes.LIMIT_EXCEEDED if len(v) > self.max_len else codes.INVALID_VALUE
            raise DecodeError(code, f"{len(v)} bytes, allowed {self.min_len}..{self.max_len}")
        return v

    def dump(self, x: Any) -> bytes:
        if type(x) is not bytes:
            raise _ewrong(x, "bytes")
        if not self.min_len <= len(x) <= self.max_len:
            code = codes.LIMIT_EXCEEDED if len(x) > self.max_len else codes.INVALID_VALUE
            raise EncodeError(code, f"{len(x)} bytes, allowed {self.min_len}..{self.max_len}")
        return x


class Str(WireType):
    """A UTF-8 string (msgpack str). With `pattern` (an ASCII regular expression) the whole string must match it;
    without one it is free text of at most `max_bytes` UTF-8 bytes."""

    __slots__ = ("_match", "doc", "max_bytes", "min_bytes", "pattern")

    def __init__(self, max_bytes: int, pattern: str | None = None, min_bytes: int = 0) -> None:
        self.max_bytes = max_bytes
        self.min_bytes = min_bytes
        self.pattern = pattern
        self._match: Callable[[str], Any] | None = re.compile(pattern, re.ASCII).fullmatch if pattern else None
        self.doc = f"str, {min_bytes}..{max_bytes} UTF-8 bytes" + (f", matching `{pattern}`" if pattern else "")

    def _check(self, x: str, err: type[CodecError]) -> str:
        if self._match is not None:
            if len(x) > self.max_bytes:
                raise err(codes.LIMIT_EXCEEDED, f"string longer than {self.max_bytes} bytes")
            if self._match(x) is None or len(x) < self.min_bytes:
                raise err(codes.INVALID_VALUE, f"string {x[:80]!r} does not match {self.pattern}")
            return x
        try:
            n = len(x.encode("utf-8"))
        except UnicodeEncodeError:
            raise err(codes.INVALID_VALUE, "string is not valid UTF-8 text") from None
        if n > self.max_bytes:
            raise err(codes.LIMIT_EXCEEDED, f"string longer than {self.max_bytes} bytes")
        if n < self.min_bytes:
            raise err(codes.INVALID_VALUE, f"string shorter than {self.min_bytes} bytes")
        return x

    def load(self, v: Any) -> str:
        if type(v) is not str:
            raise _wrong(v, "str")
        return self._check(v, DecodeError)

    def dump(self, x: Any) -> str:
        if type(x) is not str:
            raise _ewrong(x, "str")
        return self._check(x, EncodeError)


class Version(WireType):
    """A format version number: a uint8 that must equal `number` (else UNSUPPORTED_VERSION)."""

    __slots__ = ("doc", "number")

    def __init__(self, number: int) -> None:
        assert 0 <= number <= U8_MAX
        self.number = number
        self.doc = f"uint8, must be {number}"

    def load(self, v: Any) -> int:
        if type(v) is not int:
            raise _wrong(v, "integer version")
        if v != self.number:
            raise DecodeError(codes.UNSUPPORTED_VERSION, f"version {v}, expected {self.number}")
        return v

    def dump(self, x: Any) -> int:
        if x != self.number or type(x) is not int:
            raise EncodeError(codes.UNSUPPORTED_VERSION, f"version {x!r}, expected {self.number}")
        return x


class Choice(WireType):
    """A str that must be one of a fixed set of names (each matching `pattern`), e.g. the event kinds of an operation
    set. The set is given at construction and never changes."""

    __slots__ = ("doc", "names", "pattern")

    def __init__(self, names: tuple[str, ...], pattern: str = r"[a-z][a-z0-9_]{0,31}") -> None:
        self.pattern = re.compile(pattern, re.ASCII).fullmatch
        for n in names:
            if type(n) is not str or self.pattern(n) is None:
                raise ValueError(f"name {n!r} does not match the name pattern")
        if len(set(names)) != len(names):
            raise ValueError("names must be distinct")
        self.names: frozenset[str] = frozenset(names)
        self.doc = "str, one of a fixed set of names"

    def load(self, v: Any) -> str:
        if type(v) is not str:
            raise _wrong(v, "str")
        if v not in self.names:
            raise DecodeError(codes.INVALID_VALUE, f"unknown name {v[:40]!r}")
        return v

    def dump(self, x: Any) -> str:
        if type(x) is not str:
            raise _ewrong(x, "str")
        if x not in self.names:
            raise EncodeError(codes.INVALID_VALUE, f"unknown name {x[:40]!r}")
        return x


class Unbound(WireType):
    """The wire type of a field that a record leaves open because it depends on a value its user chooses (the
    operations of a transaction body and the kind of an event depend on the operation set). `Record.with_types`
    makes the usable record; using the open one (decode, encode, JSON form) raises TypeError: it is a program
    error, never a decoding error. `doc` is what the field holds, for the documentation tables."""

    __slots__ = ("doc", "hint")

    def __init__(self, doc: str, hint: str) -> None:
        self.doc = doc
        self.hint = hint

    def _open(self) -> TypeError:
        return TypeError(f"{self.doc!r} is not bound: {self.hint}")

    def load(self, v: Any) -> Any:
        raise self._open()

    def dump(self, x: Any) -> Any:
        raise self._open()

    def fast_loader(self) -> Callable[[Any], Any] | None:
        raise self._open()

    def fast_dumper(self) -> Callable[[Any], Any] | None:
        raise self._open()

    def strict_loader(self) -> Callable[[Any], Any] | None:
        raise self._open()


class Optional(WireType):
    """nil or the inner type."""

    __slots__ = ("doc", "inner")

    def __init__(self, inner: WireType) -> None:
        self.inner = inner
        self.doc = f"nil or {inner.doc}"

    def load(self, v: Any) -> Any:
        return None if v is None else self.inner.load(v)

    def dump(self, x: Any) -> Any:
        return None if x is None else self.inner.dump(x)

    def fast_loader(self) -> Callable[[Any], Any] | None:
        inner = self.inner.fast_loader()
        return None if inner is None else (lambda v: None if v is None else inner(v))

    def fast_dumper(self) -> Callable[[Any], Any] | None:
        inner = self.inner.fast_dumper()
        return None if inner is None else (lambda x: None if x is None else inner(x))

    def strict_loader(self) -> Callable[[Any], Any] | None:
        inner = self.inner.strict_loader() or self.inner.load
        return lambda v: None if v is None else inner(v)


def _quick_check(t: WireType) -> Callable[[Any], bool] | None:
    """A predicate that is True exactly when `t.load(x)` would accept x and return it unchanged (scalar types)."""
    tt = type(t)
    if tt is Bin:
        lo, hi = t.min_len, t.max_len  # type: ignore[attr-defined]
        return lambda x: type(x) is bytes and lo <= len(x) <= hi
    if tt is Str and t._match is not None:  # type: ignore[attr-defined]
        lo, hi, m = t.min_bytes, t.max_bytes, t._match  # type: ignore[attr-defined]
        return lambda x: type(x) is str and lo <= len(x) <= hi and m(x) is not None
    if tt is UInt:
        lo, hi = t.minimum, t.maximum  # type: ignore[attr-defined]
        return lambda x: type(x) is int and lo <= x <= hi
    return None


def _maker(cls: type) -> Callable[..., Any]:
    """constructor(cls), or cls itself for a class constructor() does not build (its own __init__ or __post_init__
    must run)."""
    try:
        return constructor(cls)
    except TypeError:
        return cls


_SCALAR_CONDITIONS: dict[type, Callable[[Any, str, str], str]] = {}
_INLINE_DEPTH = 2  # records nested deeper than this (inside inlined arrays) call their own strict loader


def _strict_lines(
    t: WireType, src: str, dst: str, ind: str, env: dict[str, Any], names: Any, depth: int
) -> list[str]:
    """Lines (indented by `ind`) of a generated strict loader that check the primitive in variable `src` against `t`
    and leave what `t.load` returns in variable `dst`, or raise _Fallback (CodecError, ValueError and TypeError
    become _Fallback in the caller)."""
    tt = type(t)
    n = next(names)
    cond: str | None = None
    if tt is UInt:
        cond = f"type({src}) is not int or not {t.minimum} <= {src} <= {t.maximum}"  # type: ignore[attr-defined]
    elif tt is Version:
        cond = f"type({src}) is not int or {src} != {t.number}"  # type: ignore[attr-defined]
    elif tt is Bool:
        cond = f"type({src}) is not bool"
    elif tt is Bin:
        cond = f"type({src}) is not bytes or not {t.min_len} <= len({src}) <= {t.max_len}"  # type: ignore[attr-defined]
    elif tt is Str and t._match is not None:  # type: ignore[attr-defined]
        env[f"m{n}"] = t._match  # type: ignore[attr-defined]
        cond = (
            f"type({src}) is not str or not {t.min_bytes} <= len({src}) <= {t.max_bytes}"  # type: ignore[attr-defined]
            f" or m{n}({src}) is None"
        )
    if cond is not None:
        out = [f"{ind}if {cond}:", f"{ind}    raise _Fallback"]
        return out if src == dst else [*out, f"{ind}{dst} = {src}"]
    item_type = type(t.item) if tt is Seq else None  # type: ignore[attr-defined]
    inline_items = item_type is Variant or (item_type is Record and t.item.n)  # type: ignore[attr-defined]
    kinds = t.item.strict_kinds() if item_type is Variant else None  # type: ignore[attr-defined]
    if tt is Seq and depth < _INLINE_DEPTH and (t._quick is not None or (inline_items and (kinds is not None or item_type is Record))):  # type: ignore[attr-defined]
        out = [
            f"{ind}if type({src}) is not tuple or not {t.min_len} <= len({src}) <= {t.max_len}:",  # type: ignore[attr-defined]
            f"{ind}    raise _Fallback",
        ]
        if t._quick is not None:  # type: ignore[attr-defined]
            env[f"q{n}"] = t._quick  # type: ignore[attr-defined]
            out += [f"{ind}if not all(map(q{n}, {src})):", f"{ind}    raise _Fallback", f"{ind}{dst} = {src}"]
        elif kinds is not None:  # a union: [kind, fields...], each kind's own strict loader from offset 1
            env[f"kinds{n}"] = kinds.get
            out += [
                f"{ind}acc{n} = []",
                f"{ind}for e{n} in {src}:",
                f"{ind}    if type(e{n}) is not tuple or not e{n} or type(e{n}[0]) is not int:",
                f"{ind}        raise _Fallback",
                f"{ind}    k{n} = kinds{n}(e{n}[0])",
                f"{ind}    if k{n} is None:",
                f"{ind}        raise _Fallback",
                f"{ind}    acc{n}.append(k{n}(e{n}, 1))",
                f"{ind}{dst} = tuple(acc{n})",
            ]
        else:
            item: Record = t.item  # type: ignore[attr-defined]
            fields = [f"f{n}_{i}" for i in range(item.n)]
            env[f"make{n}"] = _maker(item.cls)
            out += [
                f"{ind}acc{n} = []",
                f"{ind}for e{n} in {src}:",
                f"{ind}    if type(e{n}) is not tuple:",
                f"{ind}        raise _Fallback",
                f"{ind}    {', '.join(fields)}{',' if item.n == 1 else ''} = e{n}",
            ]
            for f, ft in zip(fields, item.types):
                out += _strict_lines(ft, f, f, ind + "    ", env, names, depth + 1)
            out += [f"{ind}    acc{n}.append(make{n}({', '.join(fields)}))", f"{ind}{dst} = tuple(acc{n})"]
        if t.sorted_unique:  # type: ignore[attr-defined]
            keys = dst
            if t.sort_key is not None:  # type: ignore[attr-defined]
                env[f"key{n}"] = t.sort_key  # type: ignore[attr-defined]
                keys = f"[key{n}(e) for e in {dst}]"
            env["pairwise"] = itertools.pairwise
            out += [
                f"{ind}if len({dst}) > 1:",
                f"{ind}    for a{n}, b{n} in pairwise({keys}):",
                f"{ind}        if not a{n} < b{n}:",
                f"{ind}            raise _Fallback",
            ]
        return out
    # Unions, records, optionals, maps: their own strict loader (or the generic load, whose CodecError falls back).
    env[f"l{n}"] = t.strict_loader() or t.load
    return [f"{ind}{dst} = l{n}({src})"]


class Seq(WireType):
    """A msgpack array of min_len..max_len items, decoded to a tuple. With `sorted_unique`, items must be strictly
    ascending (set semantics; items compared as Python values: ints numerically, str/bytes lexicographically)."""

    __slots__ = ("_quick", "doc", "item", "max_len", "min_len", "sort_key", "sorted_unique")

    def __init__(
        self,
        item: WireType,
        max_len: int,
        min_len: int = 0,
        sorted_unique: bool = False,
        sort_key: Callable[[Any], Any] | None = None,
    ) -> None:
        self.item = item
        self.sort_key = sort_key
        self._quick = _quick_check(item)
        self.max_len = max_len
        self.min_len = min_len
        self.sorted_unique = sorted_unique
        order = ", strictly ascending" + (" by key" if sort_key is not None else "") if sorted_unique else ""
        self.doc = f"array of {min_len}..{max_len} × ({item.doc}){order}"

    def _bounds(self, n: int, err: type[CodecError]) -> None:
        if n > self.max_len:
            raise err(codes.LIMIT_EXCEEDED, f"{n} items, at most {self.max_len} allowed")
        if n < self.min_len:
            raise err(codes.INVALID_VALUE, f"{n} items, at least {self.min_len} required")

    def load(self, v: Any) -> tuple[Any, ...]:
        if type(v) is not tuple:
            raise _wrong(v, "array")
        n = len(v)
        if n > self.max_len or n < self.min_len:
            self._bounds(n, DecodeError)
        quick = self._quick
        if quick is not None and all(map(quick, v)):
            out = v  # every item is a valid scalar of the item type: the tuple is the value
        else:
            item = self.item.load
            try:
                out = tuple(map(item, v))
            except CodecError as exc:
                for i, x in enumerate(v):
                    try:
                        item(x)
                    except CodecError:
                        raise exc.at(f"[{i}]") from None
                raise
        if self.sorted_unique and n > 1:
            keys = out if self.sort_key is None else [self.sort_key(e) for e in out]
            for a, b in itertools.pairwise(keys):
                if not a < b:
                    raise DecodeError(codes.NOT_SORTED, "items must be strictly ascending")
        return out

    def dump(self, x: Any) -> list[Any]:
        if type(x) not in (tuple, list):
            raise _ewrong(x, "tuple")
        self._bounds(len(x), EncodeError)
        if self.sorted_unique:
            keys = x if self.sort_key is None else [self.sort_key(e) for e in x]
            for a, b in itertools.pairwise(keys):
                if not a < b:
                    raise EncodeError(codes.NOT_SORTED, "items must be strictly ascending")
        item = self.item.dump
        out = []
        for i, e in enumerate(x):
            try:
                out.append(item(e))
            except CodecError as exc:
                raise exc.at(f"[{i}]") from None
        return out

    def fast_loader(self) -> Callable[[Any], Any] | None:
        inner = self.item.fast_loader()
        return None if inner is None else (lambda v: tuple(map(inner, v)))

    def strict_loader(self) -> Callable[[Any], Any] | None:
        """One function for the whole array: bounds, every item (the scalar check, or the item's own strict
        loader), the order; any failure raises _Fallback."""
        env: dict[str, Any] = {"_Fallback": _Fallback, "pairwise": itertools.pairwise, "key": self.sort_key}
        lines = [
            "def strict(v):",
            "    if type(v) is not tuple:",
            "        raise _Fallback",
            "    n = len(v)",
            f"    if n > {self.max_len} or n < {self.min_len}:",
            "        raise _Fallback",
        ]
        if self._quick is not None:
            env["quick"] = self._quick
            lines += ["    if not all(map(quick, v)):", "        raise _Fallback", "    out = v"]
        else:
            env["item"] = self.item.strict_loader() or self.item.load
            lines.append("    out = tuple(map(item, v))")
        if self.sorted_unique:
            keys = "out" if self.sort_key is None else "[key(e) for e in out]"
            lines += [
                "    if n > 1:",
                f"        for a, b in pairwise({keys}):",
                "            if not a < b:",
                "                raise _Fallback",
            ]
        lines.append("    return out")
        exec("\n".join(lines), env)  # noqa: S102 - generated from the schema only
        return env["strict"]

    def fast_dumper(self) -> Callable[[Any], Any] | None:
        inner = self.item.fast_dumper()
        return None if inner is None else (lambda x: list(map(inner, x)))


class Scalar(WireType):
    """One of: integer in [-2^63, 2^64-1], str (≤ max_bytes UTF-8 bytes), bin (≤ max_bytes). No bool, no nil."""

    __slots__ = ("doc", "max_bytes")

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.doc = f"int (int64/uint64 range) or str (≤ {max_bytes} bytes) or bin (≤ {max_bytes} bytes)"

    def _check(self, x: Any, err: type[CodecError]) -> Any:
        t = type(x)
        if t is int:
            if not I64_MIN <= x <= U64_MAX:
                raise err(codes.INVALID_VALUE, "integer outside the int64/uint64 range")
            return x
        if t is bytes:
            if len(x) > self.max_bytes:
                raise err(codes.LIMIT_EXCEEDED, f"bin longer than {self.max_bytes} bytes")
            return x
        if t is str:
            try:
                n = len(x.encode("utf-8"))
            except UnicodeEncodeError:
                raise err(codes.INVALID_VALUE, "string is not valid UTF-8 text") from None
            if n > self.max_bytes:
                raise err(codes.LIMIT_EXCEEDED, f"str longer than {self.max_bytes} bytes")
            return x
        if t is float:
            raise err(codes.FLOAT_FORBIDDEN, "float where int/str/bin expected")
        raise err(codes.WRONG_TYPE, f"expected int/str/bin, got {_type_name(x)}")

    def load(self, v: Any) -> Any:
        return self._check(v, DecodeError)

    def dump(self, x: Any) -> Any:
        return self._check(x, EncodeError)


class StrMap(WireType):
    """A msgpack map with `key` (Str) keys strictly sorted by UTF-8 bytes, decoded to a tuple of (key, value)
    pairs in that order (hashable, immutable)."""

    __slots__ = ("doc", "key", "max_len", "value")

    def __init__(self, key: Str, value: WireType, max_len: int) -> None:
        self.key = key
        self.value = value
        self.max_len = max_len
        self.doc = (
            f"map of ≤ {max_len} entries, keys ({key.doc}) strictly ascending by UTF-8 bytes, values ({value.doc})"
        )

    def load(self, v: Any) -> tuple[tuple[str, Any], ...]:
        if type(v) is not dict:
            raise _wrong(v, "map")
        if len(v) > self.max_len:
            raise DecodeError(codes.LIMIT_EXCEEDED, f"{len(v)} entries, at most {self.max_len} allowed")
        out = []
        prev: bytes | None = None
        for k, x in v.items():
            key = self.key.load(k)
            kb = key.encode("utf-8")
            if prev is not None and not prev < kb:
                raise DecodeError(codes.NOT_SORTED, "map keys must be strictly ascending")
            prev = kb
            try:
                out.append((key, self.value.load(x)))
            except CodecError as exc:
                raise exc.at(key) from None
        return tuple(out)

    def dump(self, x: Any) -> dict[str, Any]:
        if type(x) not in (tuple, list):
            raise _ewrong(x, "tuple of (key, value) pairs")
        if len(x) > self.max_len:
            raise EncodeError(codes.LIMIT_EXCEEDED, f"{len(x)} entries, at most {self.max_len} allowed")
        out: dict[str, Any] = {}
        prev: bytes | None = None
        for pair in x:
            if type(pair) not in (tuple, list) or len(pair) != 2:
                raise _ewrong(pair, "(key, value) pair")
            key = self.key.dump(pair[0])
            kb = key.encode("utf-8")
            if prev is not None and not prev < kb:
                raise EncodeError(codes.NOT_SORTED, "map keys must be strictly ascending")
            prev = kb
            try:
                out[key] = self.value.dump(pair[1])
            except CodecError as exc:
                raise exc.at(key) from None
        return out

    def fast_loader(self) -> Callable[[Any], Any] | None:
        return lambda v: tuple(v.items())

    def fast_dumper(self) -> Callable[[Any], Any] | None:
        return dict


def wire(t: WireType) -> Any:
    """Declare a dataclass field's wire type: `amount: int = wire(AMOUNT)`."""
    return dataclasses.field(metadata={"wire": t})


class Record(WireType):
    """A frozen dataclass encoded as an array of its `wire(...)` fields in declaration order. `types` replaces the
    declared wire types of some fields (see `with_types`)."""

    __slots__ = ("_compiling", "_fast", "cls", "doc", "loaders", "n", "names", "types")

    def __init__(self, cls: type, types: Mapping[str, WireType] | None = None) -> None:
        fields = dataclasses.fields(cls)
        for f in fields:
            if "wire" not in f.metadata:
                raise TypeError(f"{cls.__name__}.{f.name} has no wire type")
        given = dict(types or {})
        unknown = set(given) - {f.name for f in fields}
        if unknown:
            raise TypeError(f"{cls.__name__} has no fields {sorted(unknown)}")
        self.cls = cls
        self.names: tuple[str, ...] = tuple(f.name for f in fields)
        self.types: tuple[WireType, ...] = tuple(given.get(f.name, f.metadata["wire"]) for f in fields)
        self.loaders = tuple(t.load for t in self.types)
        self.n = len(fields)
        self.doc = f"{cls.__name__} (array of {self.n})"
        self._fast: Callable[[tuple[Any, ...], int], Any] | None = None
        self._compiling = False

    def _compile(self) -> Callable[[tuple[Any, ...], int], Any]:
        self._compiling = True
        try:
            return self._generate()
        finally:
            self._compiling = False

    def _generate(self) -> Callable[[tuple[Any, ...], int], Any]:
        """Generate one strict loader for the record: the scalar checks inlined, and so are the arrays of scalars
        and of records (loops in the same function, nested records' fields checked in place); unions and deeper
        nesting call their own strict loaders. It signals any problem with _Fallback; the generic path then
        produces the precise error (and path)."""
        env: dict[str, Any] = {"_Fallback": _Fallback, "CodecError": CodecError}
        names = itertools.count()
        xs = [f"x{i}" for i in range(self.n)]
        lines = [
            "def fast(v, offset=0):",
            "    if type(v) is not tuple:",
            "        raise _Fallback",
            "    try:",
            f"        {', '.join(xs)}{',' if self.n == 1 else ''} = v[offset:] if offset else v",
        ]
        for x, t in zip(xs, self.types):
            lines += _strict_lines(t, x, x, "        ", env, names, 0)
        lines.append("    except (CodecError, ValueError, TypeError):")
        lines.append("        raise _Fallback from None")
        env["make"] = _maker(self.cls)
        lines.append(f"    return make({', '.join(xs)})")
        exec("\n".join(lines), env)  # noqa: S102 - generated from the schema only, like dataclasses does
        return env["fast"]

    def strict_loader(self) -> Callable[[Any], Any] | None:
        if self._compiling:
            return None  # a record nested in itself: the generic load
        fast = self._fast
        if fast is None:
            fast = self._fast = self._compile()
        return fast

    def with_types(self, **types: WireType) -> Record:
        """A new record of the same dataclass with these fields' wire types replaced (e.g. an Unbound field bound to
        the operation set's types). Not cached: the caller keeps it."""
        current = dict(zip(self.names, self.types))
        current.update(types)
        return Record(self.cls, current)

    def load_fields(self, v: tuple[Any, ...], offset: int = 0) -> Any:
        fast = self._fast
        if fast is None:
            fast = self._fast = self._compile()
        if len(v) - offset == self.n and STRICT_FAST_PATH:
            try:
                return fast(v, offset)
            except _Fallback:
                pass
        n = len(v) - offset
        if n != self.n:
            code = codes.UNKNOWN_FIELD if n > self.n else codes.MISSING_FIELD
            raise DecodeError(code, f"{self.cls.__name__} has {self.n} fields, got {n}")
        loaders = self.loaders
        i = 0
        try:
            if offset:
                args = [ld(x) for ld, x in zip(loaders, v[offset:])]
            else:
                args = [ld(x) for ld, x in zip(loaders, v)]
        except CodecError as exc:
            # find the failing field for the error path (the slow path only runs on errors)
            for i, (ld, x) in enumerate(zip(loaders, v[offset:])):
                try:
                    ld(x)
                except CodecError:
                    break
            raise exc.at(self.names[i]) from None
        return self.cls(*args)

    def load(self, v: Any) -> Any:
        if type(v) is not tuple:
            raise _wrong(v, f"array ({self.cls.__name__})")
        return self.load_fields(v)

    def dump_fields(self, x: Any) -> list[Any]:
        if type(x) is not self.cls:
            raise _ewrong(x, self.cls.__name__)
        out = []
        for name, t in zip(self.names, self.types):
            try:
                out.append(t.dump(getattr(x, name)))
            except CodecError as exc:
                raise exc.at(name) from None
        return out

    def dump(self, x: Any) -> list[Any]:
        return self.dump_fields(x)

    def fast_loader(self) -> Callable[[Any], Any]:
        cls = _maker(self.cls)  # the slot-writing constructor where it applies: half the cost of cls(...)
        convs = [t.fast_loader() for t in self.types]
        if all(c is None for c in convs):
            return lambda v: cls(*v)
        # One generated function cls(v[0], c1(v[1]), ...): the state values of every transfer are loaded this way.
        env: dict[str, Any] = {"cls": cls} | {f"c{i}": c for i, c in enumerate(convs) if c is not None}
        parts = [f"v[{i}]" if c is None else f"c{i}(v[{i}])" for i, c in enumerate(convs)]
        exec(f"def load(v):\n    return cls({', '.join(parts)})", env)  # noqa: S102 - from the schema only
        return env["load"]

    def fast_dumper(self) -> Callable[[Any], Any]:
        convs = [t.fast_dumper() for t in self.types]
        names = self.names
        if all(c is None for c in convs):
            if len(names) == 1:
                name = names[0]
                return lambda x: (getattr(x, name),)
            return operator.attrgetter(*names)
        # One generated function (x.f0, c1(x.f1), ...) instead of a loop over getters: receipts and state values
        # are dumped several times per transaction.
        env: dict[str, Any] = {f"c{i}": c for i, c in enumerate(convs) if c is not None}
        parts = [f"x.{n}" if c is None else f"c{i}(x.{n})" for i, (n, c) in enumerate(zip(names, convs))]
        exec(f"def dump(x):\n    return [{', '.join(parts)}]", env)  # noqa: S102 - from the schema only
        return env["dump"]


_CONSTRUCTORS: dict[type, Callable[..., Any]] = {}


def constructor(cls: type[T]) -> Callable[..., T]:
    """A function building a `cls` from all its fields, positionally: the same object `cls(...)` builds, at a fraction
    of the cost. A frozen dataclass's own __init__ assigns each field through object.__setattr__; this one writes
    the slots directly: ledger._codec_native's maker when the extension is built (C, ~0.08 µs), else
    `python_constructor`'s generated function (~0.4-0.6 µs). Only for frozen, slotted dataclasses without
    __post_init__ or InitVar (checked: TypeError)."""
    make = _CONSTRUCTORS.get(cls)
    if make is not None:
        return make
    names = _constructor_fields(cls)
    if NATIVE_MAKERS and _native is not None:
        make = _native.maker(cls, names)
    else:
        make = _python_make(cls, names)
    _CONSTRUCTORS[cls] = make
    return make


def python_constructor(cls: type[T]) -> Callable[..., T]:
    """`constructor(cls)` as generated Python (what runs when the native extension is absent; tests compare)."""
    return _python_make(cls, _constructor_fields(cls))


def _constructor_fields(cls: type) -> tuple[str, ...]:
    params = getattr(cls, "__dataclass_params__", None)
    if params is None or not params.frozen or "__slots__" not in cls.__dict__ or hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__} is not a frozen, slotted dataclass without __post_init__")
    init = cls.__dict__.get("__init__")
    if cls.__new__ is not object.__new__ or getattr(getattr(init, "__code__", None), "co_filename", "") != "<string>":
        raise TypeError(f"{cls.__name__} has its own __init__ or __new__")  # only the dataclass-generated one
    fields = dataclasses.fields(cls)
    if any(not f.init for f in fields) or tuple(f.name for f in fields) != tuple(cls.__slots__):
        raise TypeError(f"{cls.__name__}: every field must be an init field and a slot")
    return tuple(f.name for f in fields)


def _python_make(cls: type, names: tuple[str, ...]) -> Callable[..., Any]:
    env: dict[str, Any] = {"new": object.__new__, "cls": cls}
    args = [f"a{i}" for i in range(len(names))]
    body = [f"    s{i}(o, a{i})" for i in range(len(names))]
    for i, name in enumerate(names):
        env[f"s{i}"] = cls.__dict__[name].__set__  # the slot's member descriptor
    src = f"def make({', '.join(args)}):\n    o = new(cls)\n" + "\n".join(body) + "\n    return o"
    exec(src, env)  # noqa: S102 - generated from the dataclass's own fields, like dataclasses does
    make = env["make"]
    make.__qualname__ = make.__name__ = f"make_{cls.__name__}"
    return make


_RECORDS: dict[type, Record] = {}


def record_type(cls: type) -> Record:
    """The (cached) Record wire type of a dataclass."""
    r = _RECORDS.get(cls)
    if r is None:
        r = _RECORDS[cls] = Record(cls)
    return r


class Variant(WireType):
    """A tagged union: an array [kind, field1, field2, ...] where `kind` (uint8) selects the dataclass, which
    declares it as a class variable `KIND: ClassVar[int]`. The classes are given at construction and never change
    (a larger union is a new Variant)."""

    __slots__ = ("by_cls", "by_kind", "doc", "name")

    def __init__(self, name: str, classes: list[type] | tuple[type, ...]) -> None:
        self.name = name
        self.by_kind: dict[int, Record] = {}
        self.by_cls: dict[type, tuple[int, Record]] = {}
        for cls in classes:
            self._add(cls)
        self.doc = f"{name} (array: kind, fields...)"

    def _add(self, cls: type) -> None:
        """Add a kind (a different class with a taken kind, or the same class twice, raises ValueError)."""
        kind = getattr(cls, "KIND", None)
        if not (type(kind) is int and 0 <= kind <= U8_MAX):
            raise ValueError(f"kind {kind!r} of {cls.__name__} is not a uint8")
        old = self.by_kind.get(kind)
        if old is not None:
            raise ValueError(f"{self.name} kind {kind} is already {old.cls.__name__}")
        rec = record_type(cls)
        self.by_kind[kind] = rec
        self.by_cls[cls] = (kind, rec)

    def load(self, v: Any) -> Any:
        if type(v) is not tuple:
            raise _wrong(v, f"array ({self.name})")
        if not v:
            raise DecodeError(codes.MISSING_FIELD, f"{self.name} needs a kind")
        kind = v[0]
        if type(kind) is not int:
            raise _wrong(kind, "integer kind")
        rec = self.by_kind.get(kind)
        if rec is None:
            raise DecodeError(codes.UNKNOWN_VARIANT, f"unknown {self.name} kind {kind}")
        return rec.load_fields(v, 1)

    def dump(self, x: Any) -> list[Any]:
        entry = self.by_cls.get(type(x))
        if entry is None:
            raise _ewrong(x, self.name)
        kind, rec = entry
        return [kind, *rec.dump_fields(x)]

    def fast_loader(self) -> Callable[[Any], Any]:
        loaders = {k: rec.fast_loader() for k, rec in self.by_kind.items()}
        return lambda v: loaders[v[0]](v[1:])

    def strict_kinds(self) -> dict[int, Callable[..., Any]] | None:
        """Each kind's strict loader (called with the array and offset 1), or None while one of them is being
        compiled (a union nested in one of its own kinds: the generic load)."""
        by_kind: dict[int, Callable[..., Any]] = {}
        for kind, rec in self.by_kind.items():
            fast = rec.strict_loader()
            if fast is None:
                return None
            by_kind[kind] = fast
        return by_kind

    def strict_loader(self) -> Callable[[Any], Any] | None:
        by_kind = self.strict_kinds()
        if by_kind is None:
            return None
        get = by_kind.get

        def strict(v: Any) -> Any:
            if type(v) is not tuple or not v or type(v[0]) is not int:
                raise _Fallback
            fast = get(v[0])
            if fast is None:
                raise _Fallback
            return fast(v, 1)

        return strict

    def fast_dumper(self) -> Callable[[Any], Any]:
        dumpers = {cls: (k, rec.fast_dumper()) for cls, (k, rec) in self.by_cls.items()}

        def dump(x: Any) -> list[Any]:
            kind, d = dumpers[type(x)]
            return [kind, *d(x)]

        return dump


# --------------------------------------------------------------------------------------------------------------
# Top-level encode / decode

DEFAULT_MAX_BYTES = 1 << 20


_PACKERS = threading.local()


def _pack(value: Any) -> bytes:
    """msgpack.packb(value, use_bin_type=True), made cheaper for the small values of the ledger: each thread reuses
    one Packer (creating one costs more than packing a receipt). A Packer resets its buffer after every pack, also
    when packing fails, so a failed call leaves nothing behind; it keeps the capacity its largest value needed (at
    most a value's limit, a few MiB, per thread that ever encoded one)."""
    try:
        packer = _PACKERS.packer
    except AttributeError:
        packer = _PACKERS.packer = msgpack.Packer(use_bin_type=True)
    return packer.pack(value)


def encode(t: WireType, value: Any) -> bytes:
    """The canonical bytes of `value`. Raises EncodeError for values that break the schema."""
    return _pack(t.dump(value))


def _unpack(data: bytes, max_bytes: int) -> Any:
    if type(data) is not bytes:
        if isinstance(data, bytearray | memoryview):
            data = bytes(data)
        else:
            raise DecodeError(codes.WRONG_TYPE, f"expected bytes, got {_type_name(data)}")
    if len(data) > max_bytes:
        raise DecodeError(codes.LIMIT_EXCEEDED, f"{len(data)} bytes, at most {max_bytes} allowed")
    if not data:
        raise DecodeError(codes.MALFORMED, "empty input")
    try:
        return msgpack.unpackb(
            data,
            raw=False,
            use_list=False,
            strict_map_key=True,
            timestamp=0,
        )
    except msgpack.ExtraData:
        raise DecodeError(codes.TRAILING_BYTES, "extra bytes after the value") from None
    except msgpack.OutOfData:
        raise DecodeError(codes.MALFORMED, "truncated input") from None
    except UnicodeDecodeError:
        raise DecodeError(codes.MALFORMED, "a str is not valid UTF-8") from None
    except (ValueError, RecursionError) as exc:
        # msgpack signals bad headers, the reserved byte 0xc1, too-deep nesting and non-str map keys this way.
        raise DecodeError(codes.MALFORMED, f"invalid msgpack ({type(exc).__name__})") from None


# The native fast path of `decode` (ledger/_codec_native.c, built by setup.py when a C compiler is present): one pass
# that parses canonical msgpack and checks it against the wire type, building the same value. It only ever accepts;
# on anything else it answers MISS and the Python decoder below decides (the value, or the precise DecodeError).
# Tests switch it off to compare (tests/ledger/test_codec_native.py); nothing else changes it.
try:
    from ledger import _codec_native as _native
except ImportError:  # not built: the Python decoder alone
    _native = None

NATIVE_DECODE_AVAILABLE = _native is not None
NATIVE_DECODE = True
# `constructor` hands out the native maker when the extension is built (read when a class's constructor is first
# asked for; tests build the Python one with python_constructor to compare).
NATIVE_MAKERS = True
# `trusted_encoder` / `encode_trusted` use the native encoder when the extension is built (read when a type's encoder
# is first built; tests compare with python_trusted_encoder).
NATIVE_ENCODE = True
_NATIVE_MISS: Any = None if _native is None else _native.MISS
_NATIVE_SCHEMAS: dict[int, tuple[WireType, Any]] = {}


class _NoNative(Exception):
    """A wire type the native decoder does not cover (its own subclass, an Unbound field, a recursive record)."""


def _native_spec(t: WireType, active: set[int]) -> tuple[Any, ...]:
    """The nested-tuple description of `t` that ledger._codec_native.compile takes (its codes are in the C file)."""
    tt = type(t)
    if tt is UInt:
        return (0, t.minimum, t.maximum)  # type: ignore[attr-defined]
    if tt is Version:
        return (1, t.number)  # type: ignore[attr-defined]
    if tt is Bool:
        return (2,)
    if tt is Bin:
        return (3, t.min_len, t.max_len)  # type: ignore[attr-defined]
    if tt is Str:
        return (4, t.min_bytes, t.max_bytes, t._match)  # type: ignore[attr-defined]
    if tt is Choice:
        return (5, t.names)  # type: ignore[attr-defined]
    if tt is Optional:
        return (6, _native_spec(t.inner, active))  # type: ignore[attr-defined]
    if tt is Seq:
        return (7, _native_spec(t.item, active), t.min_len, t.max_len, t.sorted_unique, t.sort_key)  # type: ignore[attr-defined]
    if tt is Record or tt is Variant:
        if id(t) in active:
            raise _NoNative  # a type nested in itself
        active.add(id(t))
        try:
            if tt is Record:
                return (8, _maker(t.cls), tuple(_native_spec(f, active) for f in t.types))  # type: ignore[attr-defined]
            return (9, tuple((k, _native_spec(rec, active)) for k, rec in t.by_kind.items()))  # type: ignore[attr-defined]
        finally:
            active.discard(id(t))
    if tt is StrMap:
        return (10, _native_spec(t.key, active), _native_spec(t.value, active), t.max_len)  # type: ignore[attr-defined]
    if tt is Scalar:
        return (11, t.max_bytes)  # type: ignore[attr-defined]
    raise _NoNative


def _native_schema(t: WireType) -> Any:
    """The compiled native schema of `t` (cached per wire type), or None when the native decoder does not cover it."""
    entry = _NATIVE_SCHEMAS.get(id(t))
    if entry is None:
        try:
            schema = _native.compile(_native_spec(t, set()))  # type: ignore[union-attr]
        except _NoNative:
            schema = None
        entry = _NATIVE_SCHEMAS[id(t)] = (t, schema)  # t kept alive: its id stays its own
    return entry[1]


def decode(t: WireType, data: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> Any:
    """Parse canonical bytes into a value of type `t`. Anything else raises DecodeError (and only DecodeError)."""
    if NATIVE_DECODE and _native is not None and type(data) is bytes:
        schema = _native_schema(t)
        if schema is not None:
            value = _native.decode(schema, data, max_bytes)
            if value is not _NATIVE_MISS:
                return value
    raw = _unpack(data, max_bytes)
    value = t.load(raw)
    try:
        again = _pack(raw)
    except (ValueError, TypeError, OverflowError):
        raise DecodeError(codes.NON_CANONICAL, "value cannot be re-encoded") from None
    if again != data:
        raise DecodeError(codes.NON_CANONICAL, "bytes are not the canonical encoding of their value")
    return value


_NOT_CACHED: Any = object()
_FAST_LOAD: dict[int, tuple[WireType, Callable[[Any], Any] | None, dict[bytes, Any]]] = {}
_FAST_DUMP: dict[int, tuple[WireType, Callable[[Any], bytes]]] = {}

# decode_trusted remembers the values it decoded from short byte strings, per wire type: a block reads the same
# accounts, balances and assets its parent wrote, and committed bytes decode to immutable values (frozen records,
# tuples, ints, str, bytes), so the same bytes can hand back the same value. Clearing a full cache changes only speed.
DECODED_CACHE_MAX = 16_384  # cached values per wire type (a few MB at most): the type's cache is cleared when full
DECODED_CACHE_MAX_BYTES = 512  # longer encodings (replay buckets, big rule sets) are decoded every time


def decode_trusted(t: WireType, data: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> Any:
    """Parse bytes this ledger wrote itself (its committed state): the structure is rebuilt without re-checking
    every field (they were checked when first decoded). Bytes of the wrong shape still raise DecodeError; use
    `decode` for anything that comes from outside. The value is shared with other callers: never mutate it."""
    entry = _LOADERS.get((id(t), max_bytes))
    return (trusted_loader(t, max_bytes) if entry is None else entry[1])(data)


# trusted_loader's functions, one per (wire type, max_bytes) -- callers pass constant bounds, so a handful --, with the
# type kept alive (its id stays its own).
_LOADERS: dict[tuple[int, int], tuple[WireType, Callable[[bytes], Any]]] = {}


def trusted_loader(t: WireType, max_bytes: int = DEFAULT_MAX_BYTES) -> Callable[[bytes], Any]:
    """`decode_trusted(t, ·, max_bytes)` as one function, for callers that decode many values of one type (the
    state overlay's first read of each key): it answers from the type's cache without looking the type up."""
    made = _LOADERS.get((id(t), max_bytes))
    if made is not None:
        return made[1]
    entry = _FAST_LOAD.get(id(t))
    if entry is None:
        entry = _FAST_LOAD[id(t)] = (t, t.fast_loader(), {})
    _t, conv, cache = entry
    cache_get = cache.get

    def load(data: bytes) -> Any:
        cacheable = type(data) is bytes and len(data) <= DECODED_CACHE_MAX_BYTES
        if cacheable:
            value = cache_get(data, _NOT_CACHED)
            if value is not _NOT_CACHED:
                return value
        try:
            raw = msgpack.unpackb(data, raw=False, use_list=False, strict_map_key=True, timestamp=0)
            value = raw if conv is None else conv(raw)
        except Exception:  # noqa: BLE001 - corrupt stored bytes: classify with the strict parser's error
            raw = _unpack(data, max_bytes)
            raise DecodeError(codes.MALFORMED, "stored value has the wrong shape") from None
        if cacheable:
            if len(cache) >= DECODED_CACHE_MAX:
                cache.clear()
            cache[data] = value
        return value

    _LOADERS[(id(t), max_bytes)] = (t, load)
    return load


def trusted_encoder(t: WireType) -> Callable[[Any], bytes]:
    """`encode_trusted(t, ·)` as one function, for loops that encode many values of one type."""
    entry = _FAST_DUMP.get(id(t))
    if entry is None:
        entry = _FAST_DUMP[id(t)] = (t, _trusted_encoder(t))
    return entry[1]


def encode_trusted(t: WireType, value: Any) -> bytes:
    """The canonical bytes of a value built by this ledger from checked inputs, without re-checking every field.
    Produces the same bytes as `encode` for any value `encode` accepts (tested)."""
    return trusted_encoder(t)(value)


def python_trusted_encoder(t: WireType) -> Callable[[Any], bytes]:
    """The Python form of `trusted_encoder(t)`: the type's fast dumper, then one msgpack pack."""
    conv = t.fast_dumper()
    if conv is None:
        return _pack
    return lambda value: _pack(conv(value))


def _trusted_encoder(t: WireType) -> Callable[[Any], bytes]:
    python = python_trusted_encoder(t)
    if not (NATIVE_ENCODE and _native is not None):
        return python
    schema = _native_schema(t)
    if schema is None:
        return python
    # ledger._codec_native's encoder: one C pass over the value along the compiled schema, which hands anything it
    # does not write exactly like `python` (see the C file) to `python` itself.
    return _native.encoder(schema, python)
