"""Canonical msgpack encoding for consensus messages, certificates and safety state.

Every value is a msgpack array whose items are only: unsigned integers, byte strings (bin), nested arrays and nil.
No maps, no text strings, no floats, no booleans, no extension types. msgpack already writes every integer and
length in its shortest form, so "canonical" means: decoding then re-encoding gives back the input bytes exactly.
`unpack` enforces that, plus a size limit, so two different byte strings never decode to the same value.

Errors are `CodecError` with a stable `code`; decoders raise nothing else.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import msgpack

from consensus.errors import ConsensusError

# Largest encoded value accepted by `unpack` unless a smaller limit is given.
MAX_ENCODED_BYTES: Final = 64 * 1024 * 1024
# Largest array length anywhere in a decoded value.
MAX_ARRAY_LEN: Final = 4096
MAX_UINT: Final = (1 << 64) - 1

Encodable = int | bytes | None | list["Encodable"]


class CodecError(ConsensusError):
    """A byte string that is not a valid canonical encoding of the expected type."""

    TOO_LARGE: Final = "codec_too_large"
    MALFORMED: Final = "codec_malformed"
    NOT_CANONICAL: Final = "codec_not_canonical"
    BAD_TYPE: Final = "codec_bad_type"
    BAD_FIELD: Final = "codec_bad_field"
    UNKNOWN_TAG: Final = "codec_unknown_tag"


def pack(value: Encodable) -> bytes:
    """The canonical encoding of `value` (ints, bytes, None and lists of them)."""
    return msgpack.packb(value, use_bin_type=True)


def unpack(data: bytes, max_bytes: int = MAX_ENCODED_BYTES) -> list:
    """Decode a canonical top-level array; raise CodecError for anything else."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise CodecError(CodecError.BAD_TYPE, "input must be bytes")
    data = bytes(data)
    if len(data) > max_bytes:
        raise CodecError(CodecError.TOO_LARGE, f"{len(data)} bytes exceeds the limit of {max_bytes}")
    try:
        value = msgpack.unpackb(
            data,
            raw=True,
            use_list=True,
            strict_map_key=True,
            max_bin_len=max_bytes,
            max_str_len=0,
            max_array_len=MAX_ARRAY_LEN,
            max_map_len=0,
            max_ext_len=0,
        )
    except (ValueError, TypeError, OverflowError, msgpack.exceptions.UnpackException) as exc:
        raise CodecError(CodecError.MALFORMED, f"not a msgpack value: {type(exc).__name__}") from None
    except RecursionError:
        raise CodecError(CodecError.MALFORMED, "nesting too deep") from None
    if not isinstance(value, list):
        raise CodecError(CodecError.BAD_TYPE, "top-level value must be an array")
    try:
        again = pack(value)
    except (ValueError, TypeError, OverflowError) as exc:
        raise CodecError(CodecError.BAD_TYPE, f"value has a forbidden type: {type(exc).__name__}") from None
    if again != data:
        raise CodecError(CodecError.NOT_CANONICAL, "encoding is not canonical")
    return value


class Fields:
    """Reads the items of a decoded array one by one, checking type and range; raises CodecError."""

    __slots__ = ("_items", "_pos", "_what")

    def __init__(self, items: object, count: int, what: str) -> None:
        if not isinstance(items, list):
            raise CodecError(CodecError.BAD_TYPE, f"{what}: expected an array")
        if len(items) != count:
            raise CodecError(CodecError.BAD_FIELD, f"{what}: expected {count} fields, got {len(items)}")
        self._items = items
        self._pos = 0
        self._what = what

    def _next(self) -> object:
        item = self._items[self._pos]
        self._pos += 1
        return item

    def fail(self, message: str) -> CodecError:
        return CodecError(CodecError.BAD_FIELD, f"{self._what} field {self._pos - 1}: {message}")

    def uint(self, maximum: int = MAX_UINT) -> int:
        item = self._next()
        if type(item) is not int or item < 0 or item > maximum:
            raise self.fail(f"expected an integer in [0, {maximum}]")
        return item

    def raw(self, size: int | None = None, max_size: int | None = None) -> bytes:
        item = self._next()
        if type(item) is not bytes:
            raise self.fail("expected bytes")
        if size is not None and len(item) != size:
            raise self.fail(f"expected {size} bytes, got {len(item)}")
        if max_size is not None and len(item) > max_size:
            raise self.fail(f"longer than {max_size} bytes")
        return item

    def array(self, max_len: int) -> list:
        item = self._next()
        if not isinstance(item, list):
            raise self.fail("expected an array")
        if len(item) > max_len:
            raise self.fail(f"array longer than {max_len}")
        return item

    def value(self) -> object:
        return self._next()

    def is_nil(self) -> bool:
        if self._items[self._pos] is None:
            self._pos += 1
            return True
        return False


def uint_bytes(value: int) -> bytes:
    """8-byte big-endian encoding used inside signed messages."""
    assert 0 <= value <= MAX_UINT
    return value.to_bytes(8, "big")


def length_prefixed(parts: Sequence[bytes]) -> bytes:
    out = bytearray()
    for part in parts:
        assert len(part) < 1 << 16
        out += len(part).to_bytes(2, "big")
        out += part
    return bytes(out)
