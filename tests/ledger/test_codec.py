"""The canonical codec: exact byte forms, and every kind of non-canonical or invalid input refused with its code."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import msgpack
import pytest

from ledger import codes
from ledger.codec import (
    Bin,
    Bool,
    DecodeError,
    EncodeError,
    Optional,
    Scalar,
    Seq,
    Str,
    StrMap,
    UInt,
    Variant,
    Version,
    decode,
    decode_trusted,
    encode,
    encode_trusted,
    record_type,
    wire,
)
from ledger.records import Balance, ReplayBucket, TxSeen


@dataclass(frozen=True, slots=True)
class Sample:
    version: int = wire(Version(1))
    n: int = wire(UInt(64))
    small: int = wire(UInt(8, minimum=1))
    name: str = wire(Str(16, r"[a-z]+", min_bytes=1))
    text: str = wire(Str(8))
    blob: bytes = wire(Bin(2, 4))
    flag: bool = wire(Bool())
    maybe: str | None = wire(Optional(Str(8)))
    items: tuple[int, ...] = wire(Seq(UInt(16), 3, sorted_unique=True))
    params: tuple[tuple[str, int | str | bytes], ...] = wire(StrMap(Str(8, r"[a-z]+"), Scalar(8), 3))


SAMPLE = record_type(Sample)
GOOD = Sample(1, 300, 5, "abc", "hé", b"\x00\x01", True, None, (1, 2), (("a", -1), ("b", "x"), ("c", b"\xff")))


def raw(*fields: object) -> bytes:
    return msgpack.packb(list(fields), use_bin_type=True)


def good_fields() -> list[object]:
    return [1, 300, 5, "abc", "hé", b"\x00\x01", True, None, [1, 2], {"a": -1, "b": "x", "c": b"\xff"}]


def code_of(data: bytes) -> int:
    with pytest.raises(DecodeError) as exc:
        decode(SAMPLE, data)
    return exc.value.code


def test_round_trip_and_exact_bytes() -> None:
    data = encode(SAMPLE, GOOD)
    assert data == raw(*good_fields())
    assert decode(SAMPLE, data) == GOOD
    # smallest int encodings: 300 is uint16 (0xcd 0x01 0x2c), 5 is a positive fixint
    assert bytes.fromhex("cd012c05") in data


def test_wrong_types_and_floats() -> None:
    f = good_fields()
    f[1] = 1.0
    assert code_of(raw(*f)) == codes.FLOAT_FORBIDDEN
    f = good_fields()
    f[3] = b"abc"
    assert code_of(raw(*f)) == codes.WRONG_TYPE
    f = good_fields()
    f[6] = 1
    assert code_of(raw(*f)) == codes.WRONG_TYPE
    f = good_fields()
    f[1] = True
    assert code_of(raw(*f)) == codes.WRONG_TYPE
    f = good_fields()
    f[9] = {"a": 1.5}
    assert code_of(raw(*f)) == codes.FLOAT_FORBIDDEN


def test_limits_and_values() -> None:
    f = good_fields()
    f[2] = 0
    assert code_of(raw(*f)) == codes.INVALID_VALUE
    f = good_fields()
    f[5] = b"\x00" * 5
    assert code_of(raw(*f)) == codes.LIMIT_EXCEEDED
    f = good_fields()
    f[3] = "ABC"
    assert code_of(raw(*f)) == codes.INVALID_VALUE
    f = good_fields()
    f[4] = "ééééé"  # 10 UTF-8 bytes > 8
    assert code_of(raw(*f)) == codes.LIMIT_EXCEEDED
    f = good_fields()
    f[8] = [1, 2, 3, 4]
    assert code_of(raw(*f)) == codes.LIMIT_EXCEEDED
    f = good_fields()
    f[0] = 2
    assert code_of(raw(*f)) == codes.UNSUPPORTED_VERSION
    assert code_of(b"\x00" * (2 << 20)) == codes.LIMIT_EXCEEDED


def test_field_count() -> None:
    assert code_of(raw(*good_fields(), 1)) == codes.UNKNOWN_FIELD
    assert code_of(raw(*good_fields()[:-1])) == codes.MISSING_FIELD


def test_sorted_sets_and_maps() -> None:
    f = good_fields()
    f[8] = [2, 1]
    assert code_of(raw(*f)) == codes.NOT_SORTED
    f = good_fields()
    f[8] = [1, 1]
    assert code_of(raw(*f)) == codes.NOT_SORTED
    f = good_fields()
    f[9] = {"b": 1, "a": 2}
    assert code_of(raw(*f)) == codes.NOT_SORTED


def test_duplicate_map_key_is_non_canonical() -> None:
    data = encode(SAMPLE, GOOD)
    # rewrite the map {"a":-1,"b":"x","c":...} header+first entry so key "a" appears twice
    dup = data.replace(b"\xa1b\xa1x", b"\xa1a\xa1x")
    assert code_of(dup) in (codes.NOT_SORTED, codes.NON_CANONICAL)


def test_non_minimal_encodings_are_refused() -> None:
    data = encode(SAMPLE, GOOD)
    # 300 as uint32 instead of uint16
    assert code_of(data.replace(b"\xcd\x01\x2c", b"\xce\x00\x00\x01\x2c")) == codes.NON_CANONICAL
    # "abc" as str8 instead of fixstr
    assert code_of(data.replace(b"\xa3abc", b"\xd9\x03abc")) == codes.NON_CANONICAL
    # the outer array as array16
    assert code_of(b"\xdc\x00\x0a" + data[1:]) == codes.NON_CANONICAL


def test_malformed_and_trailing() -> None:
    data = encode(SAMPLE, GOOD)
    assert code_of(data + b"\x00") == codes.TRAILING_BYTES
    assert code_of(data[:-1]) == codes.MALFORMED
    assert code_of(b"") == codes.MALFORMED
    assert code_of(b"\xc1") == codes.MALFORMED
    assert code_of(b"\xd4\x01\x00") == codes.WRONG_TYPE  # an ext type where an array is expected
    f = good_fields()
    data = raw(*f).replace(b"\xa3abc", b"\xa3a\xffc")  # invalid UTF-8
    assert code_of(data) == codes.MALFORMED


def test_decode_rejects_non_bytes_input() -> None:
    with pytest.raises(DecodeError) as exc:
        decode(SAMPLE, "text")  # type: ignore[arg-type]
    assert exc.value.code == codes.WRONG_TYPE


def test_encode_refuses_bad_values() -> None:
    with pytest.raises(EncodeError) as exc:
        encode(SAMPLE, Sample(1, 1.5, 5, "abc", "", b"\x00\x00", True, None, (), ()))  # type: ignore[arg-type]
    assert exc.value.code == codes.FLOAT_FORBIDDEN and exc.value.path == "n"
    with pytest.raises(EncodeError) as exc:
        encode(SAMPLE, Sample(1, -1, 5, "abc", "", b"\x00\x00", True, None, (), ()))
    assert exc.value.code == codes.INVALID_VALUE
    with pytest.raises(EncodeError) as exc:
        encode(SAMPLE, Sample(1, 1, 5, "abc", "", b"\x00\x00", True, None, (2, 1), ()))
    assert exc.value.code == codes.NOT_SORTED
    with pytest.raises(EncodeError) as exc:
        encode(SAMPLE, Sample(1, 1, 5, "abc", "", b"\x00\x00", True, None, (), (("b", 1), ("a", 1))))
    assert exc.value.code == codes.NOT_SORTED


@dataclass(frozen=True, slots=True)
class KindA:
    KIND: ClassVar[int] = 1
    x: int = wire(UInt(8))


@dataclass(frozen=True, slots=True)
class KindB:
    KIND: ClassVar[int] = 2
    s: str = wire(Str(4))


def test_variant() -> None:
    v = Variant("thing", [KindA, KindB])
    assert encode(v, KindB("hi")) == msgpack.packb([2, "hi"])
    assert decode(v, msgpack.packb([1, 7])) == KindA(7)
    for bad, code in (
        ([9, 1], codes.UNKNOWN_VARIANT),
        ([], codes.MISSING_FIELD),
        ([1], codes.MISSING_FIELD),
        (["a", 1], codes.WRONG_TYPE),
        ([1, 1, 1], codes.UNKNOWN_FIELD),
    ):
        with pytest.raises(DecodeError) as exc:
            decode(v, msgpack.packb(bad))
        assert exc.value.code == code


def test_error_path_names_the_field() -> None:
    f = good_fields()
    f[9] = {"a": 1, "b": 2.5}
    with pytest.raises(DecodeError) as exc:
        decode(SAMPLE, raw(*f))
    assert exc.value.path == "params.b"


@pytest.mark.parametrize("form", ["decode_trusted", "trusted_loader"])
def test_decode_trusted_hands_back_one_value_per_short_encoding(form: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Committed bytes decode to immutable values, so equal short bytes give the very same value (a block re-reads
    what its parent wrote without decoding it again); per wire type, bounded, and only for short encodings. The
    same for `trusted_loader(t)`, the one-function form the state overlay uses (one cache per type for both)."""
    from ledger import codec

    def decode_trusted(t: Any, data: Any) -> Any:
        return codec.decode_trusted(t, data) if form == "decode_trusted" else codec.trusted_loader(t)(data)

    balance, seen = record_type(Balance), record_type(TxSeen)
    data = encode_trusted(balance, Balance(5, 0, 2))
    first = decode_trusted(balance, data)
    again = decode_trusted(balance, bytes(bytearray(data)))  # equal bytes, another object
    assert first == Balance(5, 0, 2) and again is first
    assert decode_trusted(balance, bytearray(data)) == first  # not hashable: decoded, not cached
    one_int = encode_trusted(seen, TxSeen(7))
    assert decode_trusted(seen, one_int) == TxSeen(7)  # the same bytes under another type are that type's value
    with pytest.raises(DecodeError):
        decode_trusted(balance, one_int)

    long_bucket = encode_trusted(record_type(ReplayBucket), ReplayBucket(tuple(bytes([i]) * 32 for i in range(20))))
    assert len(long_bucket) > codec.DECODED_CACHE_MAX_BYTES
    bucket_type = record_type(ReplayBucket)
    assert decode_trusted(bucket_type, long_bucket) is not decode_trusted(bucket_type, long_bucket)

    monkeypatch.setattr(codec, "DECODED_CACHE_MAX", 4)
    cached = decode_trusted(balance, encode_trusted(balance, Balance(1, 1, 1)))
    for n in range(2, 8):  # fills the type's cache: it is cleared, then filled again
        decode_trusted(balance, encode_trusted(balance, Balance(n, n, n)))
    assert decode_trusted(balance, encode_trusted(balance, Balance(1, 1, 1))) is not cached
    shared = codec.decode_trusted(balance, encode_trusted(balance, Balance(9, 9, 9)))
    assert codec.trusted_loader(balance)(encode_trusted(balance, Balance(9, 9, 9))) is shared
