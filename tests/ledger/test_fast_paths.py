"""The execution fast paths give exactly what the plain code gives.

- Strict decoding: the generated loaders (Record's compiled loader with the nested WireType.strict_loader of its
  arrays, unions and records) accept exactly the inputs the generic checks accept, with an equal value; a refusal
  is the generic checks' own (same code, same message). Differential: each input decoded with the fast path on and
  off (codec.STRICT_FAST_PATH), over structural mutations of valid encodings (wrong types, out-of-range integers,
  bad ids, unsorted or duplicated set items, missing and extra fields, unknown kinds, non-canonical bytes).
- `codec.constructor(cls)` builds the same object as `cls(...)`, and refuses classes it cannot build.
- `TxContext.emit_canonical` (the transfer's event) records the event `make_event` builds from the same attributes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger import codec
from ledger import operations as o
from ledger.codec import DecodeError, constructor, decode, encode, record_type, wire
from ledger.events import Event, Receipt, make_event
from ledger.records import Balance
from ledger.rules import Movement
from ledger.schema import U64
from ledger.state_keys import RECORD_BY_TAG
from ledger.transaction import ENVELOPE, TxBody, decode_transaction, sign_transaction
from ledger.transition import TxOutcome
from tests.ledger.test_fuzz import SAMPLE_RECEIPT, SAMPLE_TX
from tests.ledger.world import CHAIN, OPS, World, key_for, standard_world

A, B = "alice@bank-a", "bob@bank-b"


def transfer_tx() -> bytes:
    body = TxBody(1, CHAIN, (A,), 3, 50, (o.Transfer(A, "CASH-T", (o.TransferLeg(B, 7), o.TransferLeg("c@bank-c", 1))),))
    return sign_transaction(body, [(A, key_for(A))], operations=OPS).to_bytes()


TRANSFER_TX = transfer_tx()
BASES: list[tuple[Any, bytes]] = [
    (ENVELOPE, SAMPLE_TX),
    (OPS.body, msgpack.unpackb(SAMPLE_TX)[0]),
    (ENVELOPE, TRANSFER_TX),
    (OPS.body, msgpack.unpackb(TRANSFER_TX)[0]),
    (OPS.receipt, SAMPLE_RECEIPT),
]


def outcome(t: Any, data: bytes, fast: bool, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, ...]:
    monkeypatch.setattr(codec, "NATIVE_DECODE", False)  # the two Python paths (the native one: test_codec_native)
    monkeypatch.setattr(codec, "STRICT_FAST_PATH", fast)
    try:
        return ("ok", decode(t, data))
    except DecodeError as exc:
        return ("refused", exc.code, str(exc))


def tx_outcome(data: bytes, fast: bool, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, ...]:
    monkeypatch.setattr(codec, "NATIVE_DECODE", False)  # the two Python paths (the native one: test_codec_native)
    monkeypatch.setattr(codec, "STRICT_FAST_PATH", fast)
    try:
        tx = decode_transaction(data, operations=OPS)
    except DecodeError as exc:
        return ("refused", exc.code, str(exc))
    return ("ok", tx.body, tx.signatures, tx.tx_id)


def tree(data: bytes) -> Any:
    """The msgpack value with arrays as lists (mutable), maps as dicts."""
    return msgpack.unpackb(data, raw=False, use_list=True, strict_map_key=False)


def paths(value: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [at]
    if isinstance(value, list):
        for i, x in enumerate(value):
            out += paths(x, (*at, i))
    elif isinstance(value, dict):
        for k, x in value.items():
            out += paths(x, (*at, k))
    return out


SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from([0, 1, 2, 255, 256, 2**16, 2**32, 2**63, 2**64 - 1, -1, -(2**63)]),
    st.floats(allow_nan=False),
    st.sampled_from(["", "x", "alice@bank-a", "bob@bank-b", "Alice@bank-a", "a" * 200, "é@bank-a", "CASH-T", "c@bank-c"]),
    st.sampled_from([b"", b"\x00", b"\x01" * 32, b"\x02" * 64, b"\x03" * 33]),
)


@st.composite
def mutation(draw: st.DrawFn, base: bytes) -> bytes:
    value = tree(base)
    for _ in range(draw(st.integers(1, 3))):
        where = draw(st.sampled_from(paths(value)))
        if not where:
            continue
        parent = value
        for step in where[:-1]:
            parent = parent[step]
        last = where[-1]
        old = parent[last]
        kind = draw(st.integers(0, 6))
        if kind == 0:
            new: Any = draw(SCALARS)
        elif kind == 1 and type(old) is int and not isinstance(old, bool):
            new = old + draw(st.sampled_from([-1, 1, 2**8, 2**32, -(2**40)]))
            new = max(-(2**63), min(2**64 - 1, new))
        elif kind == 2 and isinstance(old, list) and old:
            new = list(old)
            op = draw(st.integers(0, 3))
            i = draw(st.integers(0, len(new) - 1))
            if op == 0:
                del new[i]
            elif op == 1:
                new.insert(i, new[i])  # a duplicate (breaks strict order)
            elif op == 2:
                new.reverse()
            else:
                new.append(draw(SCALARS))
        elif kind == 3 and isinstance(old, str):
            new = draw(st.sampled_from([old + "x", old.upper(), old[:-1], old + "@", " " + old, old * 9]))
        elif kind == 4 and isinstance(old, bytes):
            new = draw(st.sampled_from([old[:-1], old + b"\x00", b""]))
        elif kind == 5:
            new = [old]  # wrapped in an array
        else:
            new = {"k": old} if draw(st.booleans()) else list(old) if isinstance(old, list) else old
        if isinstance(parent, list):
            parent[last] = new
        else:
            parent[last] = new
    packed = msgpack.packb(value, use_bin_type=True)
    if draw(st.integers(0, 9)) == 0 and packed[:1] == b"\x96":  # a non-canonical array header for the same value
        packed = b"\xdc\x00\x06" + packed[1:]
    return packed


DIFF = settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@DIFF
@given(case=st.sampled_from(range(len(BASES))).flatmap(lambda i: st.tuples(st.just(i), mutation(BASES[i][1]))))
def test_strict_fast_path_decodes_like_the_generic_checks(case: tuple[int, bytes], monkeypatch: pytest.MonkeyPatch) -> None:
    t = BASES[case[0]][0]
    data = case[1]
    assert outcome(t, data, True, monkeypatch) == outcome(t, data, False, monkeypatch)


@DIFF
@given(data=st.sampled_from([SAMPLE_TX, TRANSFER_TX]).flatmap(mutation))
def test_strict_fast_path_decodes_transactions_like_the_generic_checks(
    data: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert tx_outcome(data, True, monkeypatch) == tx_outcome(data, False, monkeypatch)


BODIES = [msgpack.unpackb(SAMPLE_TX)[0], msgpack.unpackb(TRANSFER_TX)[0]]


@DIFF
@given(body=st.sampled_from(BODIES).flatmap(mutation))
def test_mutated_body_inside_a_valid_envelope(body: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    envelope = tree(TRANSFER_TX)
    envelope[0] = body
    data = msgpack.packb(envelope, use_bin_type=True)
    assert tx_outcome(data, True, monkeypatch) == tx_outcome(data, False, monkeypatch)


def test_the_differential_compares_two_code_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    """The strict loader itself accepts a valid body (so the fast path is what decodes it) and refuses an invalid
    one (so the generic checks decide it): the tests above compare two different code paths."""
    strict = OPS.body.strict_loader()
    assert strict is not None
    body_bytes = msgpack.unpackb(TRANSFER_TX)[0]
    assert strict(msgpack.unpackb(body_bytes, use_list=False)) == decode_transaction(TRANSFER_TX, operations=OPS).body
    unsorted = tree(body_bytes)
    unsorted[2] = [B, A]  # signers out of order
    with pytest.raises(Exception):  # noqa: B017 - the loader's internal fallback signal
        strict(msgpack.unpackb(msgpack.packb(unsorted, use_bin_type=True), use_list=False))
    envelope = tree(TRANSFER_TX)
    envelope[0] = msgpack.packb(unsorted, use_bin_type=True)
    data = msgpack.packb(envelope, use_bin_type=True)
    fast, generic = tx_outcome(data, True, monkeypatch), tx_outcome(data, False, monkeypatch)
    assert fast == generic and fast[0] == "refused"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rt=st.sampled_from([rt for rt in RECORD_BY_TAG.values() if rt is not None]), fields=st.lists(SCALARS, max_size=8))
def test_state_records_decode_like_the_generic_checks(rt: Any, fields: list[Any], monkeypatch: pytest.MonkeyPatch) -> None:
    data = msgpack.packb(fields, use_bin_type=True)
    assert outcome(rt, data, True, monkeypatch) == outcome(rt, data, False, monkeypatch)


# -- constructor -----------------------------------------------------------------------------------------------


def test_constructor_builds_the_same_objects() -> None:
    cases: list[tuple[type, tuple[Any, ...]]] = [
        (Balance, (1, 2, 3)),
        (Event, (b"\x01" * 32, 0, "transferred", (("amount", 5),))),
        (Receipt, (b"\x01" * 32, 4, 0, 0, None, "", ())),
        (Movement, ("transfer", "X", None, A, B, 5, A, 3, 4, b"\x00" * 32, 0, (A,), False)),
        (TxOutcome, (None, None, (A,), True, ())),
        (o.TransferLeg, (B, 5)),
    ]
    for cls, args in cases:
        made = constructor(cls)(*args)
        plain = cls(*args)
        assert type(made) is cls and made == plain and repr(made) == repr(plain) and hash(made) == hash(plain)
        with pytest.raises(AttributeError):
            made.__setattr__(cls.__slots__[0], None)  # still frozen
    with pytest.raises(TypeError):
        constructor(Balance)(1, 2)


def test_constructor_refuses_what_it_cannot_build() -> None:
    @dataclass(slots=True)
    class Mutable:
        a: int = wire(U64)

    @dataclass(frozen=True)
    class NoSlots:
        a: int = wire(U64)

    @dataclass(frozen=True, slots=True)
    class Checked:
        a: int = wire(U64)

        def __post_init__(self) -> None:
            assert self.a > 0

    @dataclass(frozen=True, slots=True, init=False)
    class OwnInit:
        a: int = wire(U64)

        def __init__(self, a: int) -> None:
            object.__setattr__(self, "a", a + 1)

    for cls in (Mutable, NoSlots, Checked, OwnInit):
        with pytest.raises(TypeError):
            constructor(cls)
    # a record with __post_init__ still decodes through its own constructor (the check runs)
    rt = record_type(Checked)
    assert decode(rt, encode(rt, Checked(5))) == Checked(5)
    with pytest.raises(AssertionError):
        decode(rt, msgpack.packb([0]))


# -- the transfer's event --------------------------------------------------------------------------------------


def test_transfer_events_are_the_events_make_event_builds() -> None:
    w: World = standard_world()
    issuer = "treasury@issuer-co"
    w.ok(issuer, o.Issue(issuer, "CASH-T", A, 1_000))
    r = w.ok(A, o.Transfer(A, "CASH-T", (o.TransferLeg(B, 300), o.TransferLeg("dave@bank-a", 200))))
    expected = tuple(
        make_event(r.tx_id, 0, "transferred", {"asset": "CASH-T", "sender": A, "recipient": to, "amount": n, "leg": i})
        for i, (to, n) in enumerate(((B, 300), ("dave@bank-a", 200)))
    )
    assert r.events == expected
