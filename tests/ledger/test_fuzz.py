"""Fuzzing every decoder: arbitrary bytes and mutations of valid encodings give a value or a DecodeError with a
registered code — never another exception. A decoded value always re-encodes to exactly the input bytes."""

from __future__ import annotations

import msgpack
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger import codes
from ledger import operations as o
from ledger.codec import DecodeError, Record, decode, encode, record_type
from ledger.context import BlockContext
from ledger.events import Event, Receipt
from ledger.state import MemoryState, Overlay
from ledger.state_keys import RECORD_BY_TAG
from ledger.transaction import ENVELOPE, TxBody, decode_transaction, sign_transaction
from ledger.transition import apply_transaction
from tests.ledger.world import CHAIN, OPS, PROTOCOL, key_for

A, B = "alice@bank-a", "bob@bank-b"


def sample_tx() -> bytes:
    body = TxBody(
        1,
        CHAIN,
        (A, B),
        9,
        100,
        (
            o.Transfer(A, "BOND-A", (o.TransferLeg(B, 100), o.TransferLeg("c@bank-c", 2**64 - 1))),
            o.DefineAsset(
                A,
                "X",
                2,
                10,
                "n",
                "US0378331005",
                (o.Document("doc", b"\x01" * 32),),
                (B,),
                (o.RuleSpec("r", (("a", -5), ("b", "s"), ("c", b"\x00"))),),
            ),
            o.Settle(A, "ref", 5, (o.SettlementLeg("X", A, B, 1),)),
            o.RegisterAccount(A, "z@bank-z", (b"\x02" * 32,), 1, None),
            o.ForcedTransfer(A, "X", A, B, 3, True, "why"),
        ),
    )
    return sign_transaction(body, [(A, key_for(A)), (B, key_for(B))], operations=OPS).to_bytes()


SAMPLE_TX = sample_tx()
SAMPLE_RECEIPT = encode(
    OPS.receipt,
    Receipt(b"\x05" * 32, 7, 0, 0, None, "", (Event(b"\x05" * 32, 0, "issued", (("amount", 5), ("asset", "X"))),)),
)
DECODERS: list[tuple[str, Record]] = [("envelope", ENVELOPE), ("body", OPS.body), ("receipt", OPS.receipt)]
DECODERS += [(rt.cls.__name__, rt) for rt in RECORD_BY_TAG.values() if rt is not None]


def check(t: Record, data: bytes) -> None:
    try:
        value = decode(t, data)
    except DecodeError as exc:
        assert exc.code in codes.REASONS and 0 < exc.code < 100
        return
    assert encode(t, value) == data


def check_tx(data: bytes) -> None:
    try:
        tx = decode_transaction(data, operations=OPS)
    except DecodeError as exc:
        assert exc.code in codes.REASONS and 0 < exc.code < 100
        return
    assert tx.to_bytes() == data


@st.composite
def mutated(draw: st.DrawFn, base: bytes) -> bytes:
    data = bytearray(base)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.integers(0, 3))
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == 0 and data:
            data[pos] = draw(st.integers(0, 255))
        elif kind == 1:
            data[pos:pos] = draw(st.binary(min_size=1, max_size=4))
        elif kind == 2 and data:
            del data[pos : pos + draw(st.integers(1, 4))]
        else:
            data[pos] ^= 1 << draw(st.integers(0, 7)) if data else 0
    return bytes(data)


msgpack_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats()
    | st.text(max_size=20)
    | st.binary(max_size=40),
    lambda children: st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=30,
)

FUZZ = settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.binary(max_size=300), st.sampled_from(DECODERS))
def test_arbitrary_bytes(data: bytes, decoder: tuple[str, Record]) -> None:
    check(decoder[1], data)
    check_tx(data)


@FUZZ
@given(msgpack_values, st.sampled_from(DECODERS))
def test_arbitrary_msgpack_values(value: object, decoder: tuple[str, Record]) -> None:
    data = msgpack.packb(value, use_bin_type=True)
    check(decoder[1], data)
    check_tx(data)


@FUZZ
@given(mutated(SAMPLE_TX))
def test_mutated_transactions(data: bytes) -> None:
    check_tx(data)


@FUZZ
@given(mutated(msgpack.unpackb(SAMPLE_TX)[0]))
def test_mutated_bodies(data: bytes) -> None:
    check(OPS.body, data)


@FUZZ
@given(mutated(SAMPLE_RECEIPT))
def test_mutated_receipts(data: bytes) -> None:
    check(OPS.receipt, data)


@settings(max_examples=150, deadline=None)
@given(st.one_of(st.binary(max_size=200), mutated(SAMPLE_TX)))
def test_garbage_in_a_block_is_a_receipt(data: bytes) -> None:
    """apply_transaction turns any bytes into a receipt (here: no state, so nothing executes)."""
    out = apply_transaction(Overlay(MemoryState()), BlockContext(CHAIN, 1, 0), data, protocol=PROTOCOL)
    assert out.receipt.code in codes.REASONS and out.receipt.code != 0


def test_sample_is_valid() -> None:
    assert decode_transaction(SAMPLE_TX, operations=OPS).to_bytes() == SAMPLE_TX
    assert decode(OPS.receipt, SAMPLE_RECEIPT).events[0].kind == "issued"
    assert record_type(Event) is not None


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=6),
    max_leaves=25,
)


def _mutate_json(value: object, draw: st.DrawFn) -> object:
    if isinstance(value, dict) and value:
        key = draw(st.sampled_from(sorted(value)))
        out = dict(value)
        choice = draw(st.integers(0, 2))
        if choice == 0:
            del out[key]
        elif choice == 1:
            out[key] = draw(json_values)
        else:
            out[key] = _mutate_json(out[key], draw)
        return out
    if isinstance(value, list) and value:
        i = draw(st.integers(0, len(value) - 1))
        out_list = list(value)
        out_list[i] = _mutate_json(out_list[i], draw)
        return out_list
    return draw(json_values)


@st.composite
def mutated_json_bodies(draw: st.DrawFn) -> object:
    from ledger.jsonform import body_to_json

    body = body_to_json(decode_transaction(SAMPLE_TX, operations=OPS).body, operations=OPS)
    for _ in range(draw(st.integers(1, 3))):
        body = _mutate_json(body, draw)
    return body


@FUZZ
@given(st.one_of(json_values, mutated_json_bodies()))
def test_json_form_parser(value: object) -> None:
    from ledger.jsonform import body_from_json, body_to_json

    try:
        body = body_from_json(value, operations=OPS)
    except DecodeError as exc:
        assert exc.code in codes.REASONS and 0 < exc.code < 100
        return
    assert body_to_json(body, operations=OPS) == value
