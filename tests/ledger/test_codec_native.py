"""ledger._codec_native, the native fast path of `codec.decode`: it may only accept bytes the Python decoder accepts,
with an equal value; everything else it hands back (MISS) and the Python decoder decides. Differential: each input
decoded with the native path on and off (codec.NATIVE_DECODE) must give the same value or the same refusal (code
and message), over

- every kind of wire type in one synthetic record (ints at each header boundary, patterned and free text, bin,
  choice, optional, sorted sets with and without a key, a union, a map, scalars of every kind), drawn by hypothesis
  and packed by a deliberately loose encoder that picks any legal msgpack header for each item, often a wider one
  than the canonical form (a wider header must be refused: the bytes are not canonical);
- structural mutations of real transactions, bodies and receipts (tests/ledger/test_fast_paths's `mutation`);
- random bytes, truncations and trailing bytes;
- every state record type and every operation kind, whose schemas must compile (nothing silently left to Python).

The tests fail, rather than skip, when the extension is not built.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, ClassVar

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger import codec
from ledger.codec import (
    Bin,
    Bool,
    Choice,
    DecodeError,
    Optional,
    Record,
    Scalar,
    Seq,
    Str,
    StrMap,
    UInt,
    Variant,
    Version,
    decode,
    encode,
    record_type,
    wire,
)
from ledger.state_keys import RECORD_BY_TAG
from ledger.transaction import ENVELOPE, decode_transaction
from tests.ledger.test_fast_paths import BASES, SAMPLE_TX, TRANSFER_TX, mutation
from tests.ledger.world import OPS


def test_the_native_decoder_is_built() -> None:
    """`pip install -e .` builds it (a C compiler and the Python headers, which .ci/run installs); these tests fail,
    rather than skip, when it is missing."""
    assert codec.NATIVE_DECODE_AVAILABLE, "ledger._codec_native is not built: see README.md, Install"


@dataclass(frozen=True, slots=True)
class Leg:
    KIND: ClassVar[int] = 3
    to: str = wire(Str(16, r"[a-z]{1,16}", min_bytes=1))
    amount: int = wire(UInt(64, minimum=1))


@dataclass(frozen=True, slots=True)
class Note:
    KIND: ClassVar[int] = 200
    text: str = wire(Str(40))


@dataclass(frozen=True, slots=True)
class Doc:
    name: str = wire(Str(8, r"[a-z]+", min_bytes=1))
    digest: bytes = wire(Bin(4))


@dataclass(frozen=True, slots=True)
class Everything:
    version: int = wire(Version(2))
    small: int = wire(UInt(8))
    mid: int = wire(UInt(32, minimum=100, maximum=70_000))
    big: int = wire(UInt(64))
    flag: bool = wire(Bool())
    blob: bytes = wire(Bin(0, 300))
    ident: str = wire(Str(40, r"[a-z][a-z0-9-]*@[a-z]+", min_bytes=3))
    text: str = wire(Str(300))
    colour: str = wire(Choice(("red", "green", "blue")))
    maybe: int | None = wire(Optional(UInt(16)))
    tags: tuple[int, ...] = wire(Seq(UInt(32), 20, sorted_unique=True))
    names: tuple[str, ...] = wire(Seq(Str(300), 20, min_len=1))
    docs: tuple[Doc, ...] = wire(Seq(record_type(Doc), 5, sorted_unique=True, sort_key=lambda d: d.name))
    items: tuple[Any, ...] = wire(Seq(Variant("item", [Leg, Note]), 20))
    params: tuple[tuple[str, Any], ...] = wire(StrMap(Str(8, r"[a-z]+", min_bytes=1), Scalar(300), 20))


EVERYTHING = Record(Everything)

WORDS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=8)
INTS = st.one_of(
    st.sampled_from([0, 1, 31, 32, 127, 128, 255, 256, 65_535, 65_536, 2**32 - 1, 2**32, 2**63, 2**64 - 1]),
    st.integers(0, 2**64 - 1),
)
SIGNED = st.one_of(
    st.sampled_from([-1, -32, -33, -128, -129, -32_768, -32_769, -(2**31), -(2**31) - 1, -(2**63)]),
    st.integers(-(2**63), 2**64 - 1),
)
TEXT = st.one_of(
    st.text(max_size=40).filter(lambda x: len(x.encode("utf-8", "surrogatepass")) <= 300),
    st.text(alphabet="abc xyz", min_size=250, max_size=300),
    st.sampled_from(["", "é" * 150, "a" * 31, "b" * 32, "c" * 255, "d" * 256]),
)


@st.composite
def everything_values(draw: st.DrawFn) -> list[Any]:
    """The msgpack value of an Everything: usually valid, sometimes one field out of its schema."""
    docs = sorted({draw(WORDS): draw(st.binary(min_size=4, max_size=4)) for _ in range(draw(st.integers(0, 5)))}.items())
    params = sorted(
        {draw(WORDS): draw(st.one_of(SIGNED, TEXT, st.binary(max_size=300))) for _ in range(draw(st.integers(0, 20)))}.items()
    )
    value = [
        2,
        draw(st.integers(0, 255)),
        draw(st.integers(100, 70_000)),
        draw(INTS),
        draw(st.booleans()),
        draw(st.binary(max_size=300)),
        draw(WORDS) + "@" + draw(WORDS),
        draw(TEXT),
        draw(st.sampled_from(["red", "green", "blue"])),
        draw(st.one_of(st.none(), st.integers(0, 65_535))),
        sorted(set(draw(st.lists(st.integers(0, 2**32 - 1), max_size=20)))),
        draw(st.lists(TEXT, min_size=1, max_size=20)),
        [[name, digest] for name, digest in docs],
        draw(st.lists(st.one_of(st.tuples(st.just(3), WORDS, st.integers(1, 2**64 - 1)).map(list),
                                st.tuples(st.just(200), st.text(max_size=10)).map(list)), max_size=20)),
        dict(params),
    ]
    if draw(st.integers(0, 7)) == 0:  # break one field
        i = draw(st.integers(0, len(value) - 1))
        value[i] = draw(st.one_of(st.none(), SIGNED, TEXT, st.binary(max_size=8), st.just([]), st.just(["x"]),
                                  st.just({"a": 1}), st.floats(allow_nan=False)))
    return value


def _int_forms(v: int) -> list[bytes]:
    forms = []
    if 0 <= v <= 0x7F:
        forms.append(bytes([v]))
    if -32 <= v < 0:
        forms.append(struct.pack(">b", v))
    for fmt, lo, hi, head in ((">B", 0, 2**8 - 1, 0xCC), (">H", 0, 2**16 - 1, 0xCD), (">I", 0, 2**32 - 1, 0xCE),
                              (">Q", 0, 2**64 - 1, 0xCF), (">b", -(2**7), 2**7 - 1, 0xD0), (">h", -(2**15), 2**15 - 1, 0xD1),
                              (">i", -(2**31), 2**31 - 1, 0xD2), (">q", -(2**63), 2**63 - 1, 0xD3)):
        if lo <= v <= hi:
            forms.append(bytes([head]) + struct.pack(fmt, v))
    return forms


def _len_forms(n: int, fix: int | None, fix_max: int, heads: tuple[int | None, int, int]) -> list[bytes]:
    forms = []
    if fix is not None and n <= fix_max:
        forms.append(bytes([fix | n]))
    h8, h16, h32 = heads
    if h8 is not None and n <= 0xFF:
        forms.append(bytes([h8, n]))
    if n <= 0xFFFF:
        forms.append(bytes([h16]) + struct.pack(">H", n))
    forms.append(bytes([h32]) + struct.pack(">I", n))
    return forms


def loose_pack(value: Any, choose: Any) -> bytes:
    """msgpack of `value` with every header picked by `choose(forms)` among the legal ones (forms[0] is canonical)."""
    if value is None:
        return b"\xc0"
    if value is True or value is False:
        return b"\xc3" if value else b"\xc2"
    if isinstance(value, int):
        return choose(_int_forms(value))
    if isinstance(value, float):
        return msgpack.packb(value)
    if isinstance(value, str):
        data = value.encode("utf-8")
        return choose(_len_forms(len(data), 0xA0, 31, (0xD9, 0xDA, 0xDB))) + data
    if isinstance(value, bytes):
        return choose(_len_forms(len(value), None, 0, (0xC4, 0xC5, 0xC6))) + value
    if isinstance(value, list | tuple):
        return choose(_len_forms(len(value), 0x90, 15, (None, 0xDC, 0xDD))) + b"".join(loose_pack(x, choose) for x in value)
    if isinstance(value, dict):
        head = choose(_len_forms(len(value), 0x80, 15, (None, 0xDE, 0xDF)))
        return head + b"".join(loose_pack(k, choose) + loose_pack(x, choose) for k, x in value.items())
    raise TypeError(type(value))


def both(t: Any, data: bytes, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any]:
    """(native outcome, Python outcome) of decoding `data` as `t`; an outcome is ("ok", value) or ("refused", code,
    message)."""
    out = []
    for native in (True, False):
        monkeypatch.setattr(codec, "NATIVE_DECODE", native)
        try:
            out.append(("ok", decode(t, data)))
        except DecodeError as exc:
            out.append(("refused", exc.code, str(exc)))
    return out[0], out[1]


SETTINGS = settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@SETTINGS
@given(value=everything_values(), data=st.data())
def test_every_wire_type_with_any_header_form_decodes_as_in_python(value: list[Any], data: st.DataObject, monkeypatch: pytest.MonkeyPatch) -> None:
    # At most one header (the `widen`-th written) takes a wider form than the canonical one, so that it alone
    # decides whether the bytes are canonical.
    widen = data.draw(st.integers(-1, 80))
    count = [0]

    def choose(forms: list[bytes]) -> bytes:
        count[0] += 1
        if count[0] - 1 != widen or len(forms) == 1:
            return forms[0]
        return data.draw(st.sampled_from(forms[1:]))

    packed = loose_pack(value, choose)
    native, python = both(EVERYTHING, packed, monkeypatch)
    assert native == python
    if packed == msgpack.packb(value, use_bin_type=True) and python[0] == "ok":
        # what the native path accepted itself (not through its fallback): the differential compares two paths
        schema = codec._native_schema(EVERYTHING)
        assert codec._native.decode(schema, packed, 1 << 20) is not codec._NATIVE_MISS


RICH = [
    2, 200, 70_000, 2**64 - 1, True, b"\x01" * 256, "a1-b@bank", "é" * 20 + "x" * 200, "green", 65_535,
    [0, 127, 128, 255, 256, 65_535, 65_536, 2**32 - 1],
    ["", "a" * 31, "b" * 32, "c" * 255, "d" * 256],
    [["ab", b"\x00" * 4], ["b", b"\x01" * 4]],
    [[3, "abc", 1], [200, "note"], [3, "z", 2**63]],
    {"a": -1, "ab": -32, "b": -33, "c": -128, "d": -129, "e": -32_768, "f": -32_769, "g": -(2**31),
     "h": -(2**31) - 1, "i": -(2**63), "j": 2**64 - 1, "k": "é" * 150, "l": b"\x02" * 300, "m": 0, "n": 127, "o": 128},
]


def _widened(value: Any, at: int, pick: int) -> tuple[bytes, list[int]]:
    """`value` packed canonically except for the `at`-th header, which takes form `pick`; and the number of forms
    of every header."""
    counts: list[int] = []

    def choose(forms: list[bytes]) -> bytes:
        counts.append(len(forms))
        return forms[pick] if len(counts) - 1 == at and pick < len(forms) else forms[0]

    return loose_pack(value, choose), counts


def test_every_single_wider_header_is_refused_as_in_python(monkeypatch: pytest.MonkeyPatch) -> None:
    """Exhaustive over one value that uses every header kind at its boundaries: canonical, it is decoded by the
    native path itself; with any one header in any wider form, both paths refuse it the same way."""
    canonical, counts = _widened(RICH, -1, 0)
    assert canonical == msgpack.packb(RICH, use_bin_type=True)
    assert codec._native.decode(codec._native_schema(EVERYTHING), canonical, 1 << 20) is not codec._NATIVE_MISS
    native, python = both(EVERYTHING, canonical, monkeypatch)
    assert native == python and native[0] == "ok"
    tried = 0
    for at, n in enumerate(counts):
        for pick in range(1, n):
            data, _ = _widened(RICH, at, pick)
            native, python = both(EVERYTHING, data, monkeypatch)
            assert native == python and python[0] == "refused", (at, pick, data.hex())
            tried += 1
    assert tried > 200


@pytest.mark.parametrize(
    "params, accepted",
    [
        ({"a": 1, "b": 2}, True),
        ({"b": 1, "a": 2}, False),  # unsorted
        ({"ab": 1, "a": 2}, False),  # a prefix sorts first
        ({"a": 1, "ab": 2}, True),
        ({"a": "x" * 301}, False),  # a scalar str over its bound
        ({"a": b"x" * 301}, False),  # a scalar bin over its bound
        ({"a": "é" * 151}, False),  # 302 UTF-8 bytes, 151 characters
        ({"a": None}, False),
        ({"a": True}, False),
        ({"a": 1.5}, False),
        ({"A": 1}, False),  # the key's pattern
    ],
)
def test_maps_and_scalars_decode_as_in_python(params: dict[str, Any], accepted: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    value = list(RICH)
    value[-1] = params
    native, python = both(EVERYTHING, msgpack.packb(value, use_bin_type=True), monkeypatch)
    assert native == python and (python[0] == "ok") == accepted


@pytest.mark.parametrize(
    "field, value, accepted",
    [
        (7, "x" * 300, True),  # free text: a bound on UTF-8 bytes
        (7, "x" * 301, False),
        (7, "é" * 150, True),
        (7, "é" * 151, False),  # 302 bytes, 151 characters
        (6, "a" * 36 + "@bcd", True),  # a pattern's bound: 40 characters
        (6, "a" * 37 + "@bcd", False),
        (6, "A@b", False),
        (8, "purple", False),
        (9, 65_536, False),
        (2, 99, False),
        (2, 70_001, False),
        (0, 3, False),
        (4, 1, False),
        (5, b"\x00" * 301, False),
        (10, [2, 1], False),
        (10, [1, 1], False),
        (11, [], False),
        (12, [["b", b"\x00" * 4], ["a", b"\x00" * 4]], False),  # sorted by a key
        (12, [["a", b"\x00" * 3]], False),
        (13, [[4, "abc", 1]], False),  # an unknown kind
        (13, [[3, "abc", 0]], False),
        (13, [[3, "abc"]], False),
        (13, [[200, "x" * 41]], False),
    ],
)
def test_fields_at_their_bounds_decode_as_in_python(field: int, value: Any, accepted: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    data = list(RICH)
    data[field] = value
    native, python = both(EVERYTHING, msgpack.packb(data, use_bin_type=True), monkeypatch)
    assert native == python and (python[0] == "ok") == accepted


ITEM = Variant("item", [Leg, Note])
LEG = record_type(Leg)


@dataclass(frozen=True, slots=True)
class Holder:
    item: Any = wire(ITEM)  # noqa: RUF009 - wire() returns field metadata, no shared value
    leg: Leg = wire(LEG)  # noqa: RUF009 - wire() returns field metadata, no shared value


@pytest.mark.parametrize(
    "value, tail",
    [
        ([[3, "abc", 1], ["x", 2]], b""),
        ([[3, "abc"], 1], msgpack.packb(["x", 2])),  # a kind missing a field, the bytes after it lined up to fill it
        ([[3, "abc", 1, 5], ["x", 2]], b""),  # a kind with a field too many
        ([[3, "abc", 1], ["x"]], b"\x02"),  # a record missing a field
        ([[3, "abc", 1], ["x", 2, 3]], b""),
    ],
)
def test_field_counts_are_exact_as_in_python(value: list[Any], tail: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    native, python = both(Record(Holder), msgpack.packb(value, use_bin_type=True) + tail, monkeypatch)
    assert native == python and (python[0] == "ok") == (value == [[3, "abc", 1], ["x", 2]])


def test_a_duplicated_map_key_is_refused_as_in_python(monkeypatch: pytest.MonkeyPatch) -> None:
    value = list(RICH)
    value[-1] = {"a": 1}
    data = msgpack.packb(value, use_bin_type=True)
    one = msgpack.packb({"a": 1}, use_bin_type=True)
    dup = bytes([0x82]) + one[1:] + one[1:]  # {"a": 1, "a": 1}
    data = data[: -len(one)] + dup
    native, python = both(EVERYTHING, data, monkeypatch)
    assert native == python and python[0] == "refused"


@SETTINGS
@given(case=st.sampled_from(range(len(BASES))).flatmap(lambda i: st.tuples(st.just(i), mutation(BASES[i][1]))))
def test_mutated_transactions_bodies_and_receipts_decode_as_in_python(case: tuple[int, bytes], monkeypatch: pytest.MonkeyPatch) -> None:
    t, data = BASES[case[0]][0], case[1]
    native, python = both(t, data, monkeypatch)
    assert native == python


@SETTINGS
@given(data=st.one_of(st.binary(max_size=64), st.sampled_from([SAMPLE_TX, TRANSFER_TX]).flatmap(
    lambda tx: st.one_of(st.integers(0, len(tx) - 1).map(lambda n: tx[:n]), st.binary(min_size=1, max_size=3).map(lambda x: tx + x)))))
def test_random_truncated_and_extended_bytes_decode_as_in_python(data: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    native, python = both(ENVELOPE, data, monkeypatch)
    assert native == python
    assert python[0] == "refused" or data in (SAMPLE_TX, TRANSFER_TX)


def test_valid_transactions_are_decoded_by_the_native_path(monkeypatch: pytest.MonkeyPatch) -> None:
    for raw in (SAMPLE_TX, TRANSFER_TX):
        envelope = codec._native.decode(codec._native_schema(ENVELOPE), raw, 1 << 20)
        assert envelope is not codec._NATIVE_MISS
        body = codec._native.decode(codec._native_schema(OPS.body), envelope.body, 1 << 20)
        assert body is not codec._NATIVE_MISS
        monkeypatch.setattr(codec, "NATIVE_DECODE", False)
        assert decode_transaction(raw, operations=OPS).body == body
        monkeypatch.setattr(codec, "NATIVE_DECODE", True)


def test_the_limit_on_the_whole_value_and_exotic_inputs_fall_back(monkeypatch: pytest.MonkeyPatch) -> None:
    schema = codec._native_schema(ENVELOPE)
    assert codec._native.decode(schema, TRANSFER_TX, len(TRANSFER_TX) - 1) is codec._NATIVE_MISS
    assert codec._native.decode(schema, b"", 1 << 20) is codec._NATIVE_MISS
    native, python = both(ENVELOPE, TRANSFER_TX, monkeypatch)
    assert native == python and native[0] == "ok"
    with pytest.raises(DecodeError) as exc:
        decode(ENVELOPE, TRANSFER_TX, len(TRANSFER_TX) - 1)
    assert exc.value.code == codec.codes.LIMIT_EXCEEDED


def test_a_record_whose_constructor_refuses_falls_back_to_python(monkeypatch: pytest.MonkeyPatch) -> None:
    """A class with its own checks (__post_init__) is built by calling it; whatever it raises, the Python decoder
    raises the same."""

    @dataclass(frozen=True)
    class Checked:
        a: int = wire(UInt(8))

        def __post_init__(self) -> None:
            if self.a == 13:
                raise ValueError("unlucky")

    rt = Record(Checked)
    assert decode(rt, encode(rt, Checked(12))) == Checked(12)
    data = msgpack.packb([13])
    for native in (True, False):
        monkeypatch.setattr(codec, "NATIVE_DECODE", native)
        with pytest.raises(ValueError, match="unlucky"):
            decode(rt, data)


def test_every_state_record_and_operation_kind_has_a_native_schema() -> None:
    types = [rt for rt in RECORD_BY_TAG.values() if rt is not None]
    types += [ENVELOPE, OPS.body, OPS.receipt]
    types += [record_type(cls) for cls in OPS.body.types[-1].item.by_cls]  # every operation kind
    for t in types:
        assert codec._native_schema(t) is not None, t.doc


def test_a_record_nested_in_itself_is_left_to_python() -> None:
    @dataclass(frozen=True, slots=True)
    class Tree:
        label: int = wire(UInt(8))
        children: tuple[Any, ...] = wire(codec.Unbound("children", "bound below"))

    rt = Record(Tree)
    assert codec._native_schema(rt) is None  # an Unbound field: not covered
    cyclic = Record(Tree)
    cyclic.types = (UInt(8), Seq(cyclic, 4))
    assert codec._native_schema(cyclic) is None


def test_the_reused_packer_leaves_nothing_behind_after_a_failure() -> None:
    """codec._pack reuses one msgpack Packer per thread: a value that fails to pack must not leave bytes that the
    next value's encoding would carry, and threads encoding at once must each get their own bytes."""
    import threading

    with pytest.raises((TypeError, ValueError, OverflowError)):
        codec._pack([1, 2, object()])
    with pytest.raises(OverflowError):
        codec._pack([1, 2**70])
    assert codec._pack([1, "x"]) == msgpack.packb([1, "x"], use_bin_type=True)
    values = [[i, "v" * (i % 50), b"\x00" * (i % 70)] for i in range(2_000)]
    results: dict[int, list[bytes]] = {}

    def work(n: int) -> None:
        results[n] = [codec._pack(v) for v in values]

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    want = [msgpack.packb(v, use_bin_type=True) for v in values]
    assert all(results[n] == want for n in range(4))


# -- record makers: codec.constructor's native form ----------------------------------------------------------------


def _constructible_classes() -> list[type]:
    """Every frozen, slotted record class the ledger builds with `constructor`, or could: the state records, the
    operation kinds, and the execution values built on the hot path."""
    from ledger.context import BlockContext
    from ledger.events import Event, Receipt
    from ledger.rules import Movement
    from ledger.transaction import Signature, SignedTransaction, TxBody
    from ledger.transition import TxOutcome

    classes = {rt.cls for rt in RECORD_BY_TAG.values() if rt is not None}
    classes |= set(OPS.body.types[-1].item.by_cls)
    classes |= {Event, Receipt, Movement, TxOutcome, SignedTransaction, Signature, TxBody, BlockContext}
    out = []
    for cls in sorted(classes, key=lambda c: c.__qualname__):
        try:
            codec.python_constructor(cls)
        except TypeError:
            continue
        out.append(cls)
    return out


CONSTRUCTIBLE = _constructible_classes()


def test_constructor_hands_out_the_native_maker() -> None:
    from ledger.records import Balance

    make = codec.constructor(Balance)
    assert type(make).__name__ == "Maker" and repr(make) == "<native make_Balance>"
    assert codec.constructor(Balance) is make  # one per class
    assert len(CONSTRUCTIBLE) >= 20  # the set the next test covers is not accidentally empty


@pytest.mark.parametrize("cls", CONSTRUCTIBLE, ids=lambda c: c.__qualname__)
def test_the_native_maker_builds_what_the_python_constructor_builds(cls: type) -> None:
    """Same type, fields, equality, hash, repr, frozenness and collector tracking, for arbitrary field values (the
    maker stores what it is given, as the Python one does: it checks nothing)."""
    import dataclasses
    import gc

    n = len(dataclasses.fields(cls))
    native = codec._native.maker(cls, tuple(f.name for f in dataclasses.fields(cls)))
    python = codec.python_constructor(cls)
    for args in [tuple(range(n)), tuple(f"v{i}" for i in range(n)), tuple((i, b"x") for i in range(n))]:
        a, b = native(*args), python(*args)
        assert type(a) is cls and a == b and repr(a) == repr(b) and hash(a) == hash(b)
        assert tuple(getattr(a, f.name) for f in dataclasses.fields(cls)) == args
        assert gc.is_tracked(a) == gc.is_tracked(b)
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(a, dataclasses.fields(cls)[0].name, None)
    with pytest.raises(TypeError, match="takes"):
        native(*range(n + 1))
    if n:
        with pytest.raises(TypeError, match="takes"):
            native(*range(n - 1))
        with pytest.raises(TypeError, match="positional"):
            native(*range(n - 1), **{dataclasses.fields(cls)[-1].name: 0})


def test_the_native_maker_holds_its_fields_and_releases_them() -> None:
    """One reference per stored field, dropped with the object (a leak or an early release would show here)."""
    import sys

    from ledger.records import Balance

    make = codec.constructor(Balance)
    payload = object()
    before = sys.getrefcount(payload)
    objs = [make(payload, payload, 0) for _ in range(100)]
    assert sys.getrefcount(payload) == before + 200
    assert all(o.available is payload and o.held is payload for o in objs)
    del objs
    assert sys.getrefcount(payload) == before


def test_the_native_maker_refuses_what_it_cannot_build() -> None:
    @dataclass(frozen=True, slots=True)
    class Slotted:
        a: int = wire(UInt(8))

        @property
        def doubled(self) -> int:
            return 2 * self.a

    class OwnNew:
        __slots__ = ("a",)

        def __new__(cls) -> Any:  # its own __new__: not what object.__new__ builds
            return object.__new__(cls)

    make = codec._native.maker
    assert make(Slotted, ("a",))(3) == Slotted(3)
    for args in [(Slotted, ["a"]), (Slotted(1), ("a",)), (Slotted, ("b",)), (Slotted, ("doubled",)),
                 (Slotted, ("__init__",)), (Slotted, (1,)), (OwnNew, ("a",)), (int, ())]:
        with pytest.raises(TypeError):
            make(*args)
    with pytest.raises(TypeError):
        make(Slotted)


# -- trusted encoding: codec.trusted_encoder's native form ---------------------------------------------------------


def _encoders(t: Any) -> tuple[Any, Any]:
    native = codec.trusted_encoder(t)
    assert type(native).__name__ == "Encoder", "the native encoder is what trusted_encoder hands out"
    return native, codec.python_trusted_encoder(t)


def _answer(encode: Any, value: Any) -> tuple[Any, ...]:
    """("ok", bytes) or ("raised", exception type, message): what an encoder answers for `value`."""
    try:
        return ("ok", encode(value))
    except Exception as exc:  # noqa: BLE001 - the comparison is the point
        return ("raised", type(exc), str(exc))


def _native_only(t: Any, value: Any) -> bytes:
    """The native encoder's own bytes: with a fallback that fails, so a value it hands over cannot pass unseen."""

    def refuse(_value: Any) -> bytes:
        raise AssertionError("the native encoder handed the value to its fallback")

    return codec._native.encoder(codec._native_schema(t), refuse)(value)


@SETTINGS
@given(value=everything_values())
def test_every_wire_type_encodes_as_in_python(value: list[Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """Any valid value of the every-type record (decoded from its canonical bytes) encodes back to those bytes,
    natively and in Python."""
    data = msgpack.packb(value, use_bin_type=True)
    try:
        decoded = decode(EVERYTHING, data)
    except DecodeError:
        return  # a broken field: not a value the ledger would hold
    native, python = _encoders(EVERYTHING)
    assert _native_only(EVERYTHING, decoded) == native(decoded) == python(decoded) == data


def test_every_header_boundary_encodes_as_in_python() -> None:
    """RICH uses every header kind at its boundaries; longer lengths take the 16- and 32-bit forms and the output
    buffer grows past its first 512 bytes."""
    value = decode(EVERYTHING, msgpack.packb(RICH, use_bin_type=True))
    _native, python = _encoders(EVERYTHING)
    assert _native_only(EVERYTHING, value) == python(value) == msgpack.packb(RICH, use_bin_type=True)
    from dataclasses import replace

    for n in (15, 16, 31, 32, 255, 256, 65_535, 65_536):  # each side of every length header's boundaries
        for big in [replace(value, text="y" * n), replace(value, blob=b"\x07" * n), replace(value, names=("n",) * n),
                    replace(value, params=tuple((f"k{i:05}", -i) for i in range(n)))]:
            assert _native_only(EVERYTHING, big) == python(big)


def test_ledger_values_encode_as_in_python() -> None:
    """Every committed state value of a world with members, accounts, assets, balances, positions and replay
    records; receipts with events; the bodies and envelopes of real transactions."""
    from ledger import operations as o
    from ledger.state_keys import record_type_of
    from tests.ledger.test_fuzz import SAMPLE_RECEIPT
    from tests.ledger.world import standard_world

    w = standard_world()
    receipts = [w.ok("treasury@issuer-co", o.Issue("treasury@issuer-co", "BOND-A", "alice@bank-a", 5_000)),
                w.ok("alice@bank-a", o.Transfer("alice@bank-a", "BOND-A", (o.TransferLeg("bob@bank-b", 1_200),
                                                                           o.TransferLeg("dave@bank-a", 3))))]
    for receipt in receipts:
        assert receipt.events and _native_only(OPS.receipt, receipt) == codec.python_trusted_encoder(OPS.receipt)(receipt)
    checked = 0
    for key, raw in w.ledger.state.items():
        rt = record_type_of(key)
        if rt is None:
            continue
        value = codec.decode_trusted(rt, raw)
        native, python = _encoders(rt)
        assert _native_only(rt, value) == native(value) == python(value) == raw
        checked += 1
    assert checked > 20
    for t, data in [*BASES, (OPS.receipt, SAMPLE_RECEIPT)]:  # envelopes, bodies (issue, transfer), a receipt
        assert _native_only(t, decode(t, data)) == data
    for data in (SAMPLE_TX, TRANSFER_TX):
        assert _native_only(OPS.body, decode_transaction(data, operations=OPS).body) == msgpack.unpackb(data)[0]


class Wide(int):
    pass


def test_what_the_native_encoder_cannot_write_exactly_goes_to_python() -> None:
    """An int subclass, a bool where an int is declared, an int outside 64 bits, a str subclass, a lone surrogate,
    bytearray, a float, an unsorted or duplicated map, a malformed pair, a record of another class: the encoder's
    answer is the Python path's, bytes or exception."""
    from dataclasses import replace

    value = decode(EVERYTHING, msgpack.packb(RICH, use_bin_type=True))
    native, python = _encoders(EVERYTHING)

    class Text(str):
        pass

    cases = [
        replace(value, big=Wide(5)), replace(value, big=True), replace(value, big=2**64), replace(value, big=-1),
        replace(value, text=Text("x")), replace(value, text="\ud800"), replace(value, blob=bytearray(b"ab")),
        replace(value, big=1.5), replace(value, params=(("b", 1), ("a", 2))), replace(value, params=(("a", 1), ("a", 2))),
        replace(value, params=(("a", 1, 2),)), replace(value, params=(["a", 1],)), replace(value, params=(("a", 2**64),)),
        replace(value, params=(("a", -(2**63) - 1),)),
        replace(value, docs=(Leg("x", 1),)), replace(value, items=(Doc("a", b"1234"),)), replace(value, flag=1),
        replace(value, maybe=Wide(3)), "not a record", None,
    ]
    for case in cases:
        assert _answer(native, case) == _answer(python, case), case
        with pytest.raises(AssertionError, match="fallback"):
            _native_only(EVERYTHING, case)


def test_the_native_encoder_is_used_only_where_it_may_be(monkeypatch: pytest.MonkeyPatch) -> None:
    """Switched off, or for a type without a native schema, trusted_encoder is the Python path."""
    monkeypatch.setattr(codec, "NATIVE_ENCODE", False)
    assert type(codec._trusted_encoder(EVERYTHING)).__name__ != "Encoder"
    monkeypatch.setattr(codec, "NATIVE_ENCODE", True)
    assert type(codec._trusted_encoder(EVERYTHING)).__name__ == "Encoder"
    assert type(codec._trusted_encoder(Record(Doc))).__name__ == "Encoder"
    with pytest.raises(TypeError):
        codec._native.encoder(codec._native_schema(EVERYTHING))
    with pytest.raises(TypeError):
        codec._native.encoder(codec._native_schema(EVERYTHING), "not callable")
    with pytest.raises(TypeError):
        codec.trusted_encoder(EVERYTHING)()


@dataclass(frozen=True, slots=True)
class Wide17:
    """More fields than a fixarray holds (16-bit array header), with an optional record, an optional variant and a
    sequence of sequences."""

    f0: int = wire(UInt(64))
    f1: int = wire(UInt(64))
    f2: int = wire(UInt(64))
    f3: int = wire(UInt(64))
    f4: int = wire(UInt(64))
    f5: int = wire(UInt(64))
    f6: int = wire(UInt(64))
    f7: int = wire(UInt(64))
    f8: int = wire(UInt(64))
    f9: int = wire(UInt(64))
    f10: int = wire(UInt(64))
    f11: int = wire(UInt(64))
    f12: int = wire(UInt(64))
    f13: int = wire(UInt(64))
    doc: Doc | None = wire(Optional(record_type(Doc)))
    item: Any = wire(Optional(Variant("wide-item", [Leg, Note])))
    grid: tuple[tuple[int, ...], ...] = wire(Seq(Seq(UInt(8), 20), 20))


WIDE = Record(Wide17)


@dataclass(frozen=True, slots=True)
class Wide16:
    """Exactly 16 fields: the first record size that needs the 16-bit array header."""

    f0: int = wire(UInt(8))
    f1: int = wire(UInt(8))
    f2: int = wire(UInt(8))
    f3: int = wire(UInt(8))
    f4: int = wire(UInt(8))
    f5: int = wire(UInt(8))
    f6: int = wire(UInt(8))
    f7: int = wire(UInt(8))
    f8: int = wire(UInt(8))
    f9: int = wire(UInt(8))
    f10: int = wire(UInt(8))
    f11: int = wire(UInt(8))
    f12: int = wire(UInt(8))
    f13: int = wire(UInt(8))
    f14: int = wire(UInt(8))
    f15: str = wire(Str(8))


def test_wide_records_optional_records_and_nested_sequences_encode_as_in_python() -> None:
    native, python = _encoders(WIDE)
    values = [
        Wide17(*range(14), None, None, ()),
        Wide17(*(2**64 - 1 - i for i in range(14)), Doc("ab", b"1234"), Leg("x", 5), ((1, 2), (), (255,) * 20)),
        Wide17(*range(100, 114), None, Note("é"), ((0,),) * 20),
    ]
    for value in values:
        data = _native_only(WIDE, value)
        assert data == python(value) == native(value)
        assert data[0] == 0xDC and decode(WIDE, data) == value  # array16 header, and the bytes decode back
    sixteen = Wide16(*range(15), "x")
    assert _native_only(Record(Wide16), sixteen) == codec.python_trusted_encoder(Record(Wide16))(sixteen)
    assert _native_only(Record(Wide16), sixteen)[:3] == b"\xdc\x00\x10"
    import dataclasses

    fields = tuple(getattr(values[1], f.name) for f in dataclasses.fields(Wide17))
    assert codec.constructor(Wide17)(*fields) == values[1]  # a maker of 17 fields


def test_a_map_whose_values_the_python_path_does_not_convert_goes_to_python() -> None:
    """StrMap's fast dumper is `dict`: its values are packed as they are. A map of record values is not encodable
    by the Python path (msgpack cannot pack the record), so the native encoder must not encode it either."""

    @dataclass(frozen=True, slots=True)
    class Holder:
        params: tuple[tuple[str, Any], ...] = wire(StrMap(Str(8, r"[a-z]+", min_bytes=1), record_type(Doc), 4))

    rt = Record(Holder)
    native, python = _encoders(rt)
    value = Holder((("a", Doc("x", b"1234")),))
    with pytest.raises(TypeError):
        python(value)
    with pytest.raises(TypeError):
        native(value)
    with pytest.raises(AssertionError, match="fallback"):
        _native_only(rt, value)
    plain = Holder((("a", 1), ("b", None), ("c", True), ("d", "é"), ("e", b"\x00"), ("f", -5)))
    assert _native_only(rt, plain) == python(plain)  # plain values are written as msgpack writes them
    for odd in [Holder((("a", 1.5),)), Holder((("a", (1, 2)),)), Holder((("\ud800", 1),)), Holder(((Wide(1), 1),))]:
        assert _answer(native, odd) == _answer(python, odd)
        with pytest.raises(AssertionError, match="fallback"):
            _native_only(rt, odd)


def test_the_native_encoder_holds_no_references() -> None:
    """Encoding (and handing over to the fallback) leaves every field's reference count as it was."""
    import sys
    from dataclasses import replace

    value = decode(EVERYTHING, msgpack.packb(RICH, use_bin_type=True))
    native, _python = _encoders(EVERYTHING)
    bad = replace(value, params=(("b", 1), ("a", 2)))  # unsorted: the fallback encodes it
    fields = [value.text, value.blob, value.names, value.params, value.items, value.docs, bad.params]
    before = [sys.getrefcount(f) for f in fields]
    for _ in range(200):
        native(value)
    for _ in range(200):
        native(bad)
    assert [sys.getrefcount(f) for f in fields] == before


def test_maker_layout_and_stricter_checks() -> None:
    import sys

    from ledger.records import Balance

    make = codec.constructor(Balance)
    assert 0 < make.__sizeof__() == sys.getsizeof(make) < 256  # a sane size (its field count is its ob_size)

    @dataclass(frozen=True, slots=True)
    class Two:
        a: int = wire(UInt(8))
        b: int = wire(UInt(8))

    @dataclass(frozen=True, slots=True)
    class Other:
        x: int = wire(UInt(8))

    with pytest.raises(TypeError, match="twice"):
        codec._native.maker(Two, ("a", "a"))
    Two.borrowed = Other.__dict__["x"]  # type: ignore[attr-defined]  # another class's slot
    with pytest.raises(TypeError):
        codec._native.maker(Two, ("a", "borrowed"))
