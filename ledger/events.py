"""Events and receipts (docs/protocol.md, "Receipts and events").

An event is emitted by an operation for audit and the event stream: the transaction id, the operation's index in
the body, a kind (one of the operation set's event kinds: EVENT_KINDS here, the governance ones in
ledger.ops.governance, and those of extension operations) and attributes (a canonical map of int/str/bin).
Account-valued attributes use the names in ACCOUNT_ATTRS, which is how the per-account history index finds the
accounts a transaction touched.

A receipt records the outcome of one transaction in a block: code 0 with the events, or the refusal code, the index
of the failing operation (nil when the refusal is not tied to an operation) and a detail message, with no events.

Which event kinds decode is the operation set's: `encode_receipt` / `decode_receipt` take it (`operations=`), and
`Event`'s own record leaves its kind open (`operations.receipt` / `operations.event` are the bound records).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ledger.codec import (
    Optional,
    Record,
    Scalar,
    Seq,
    StrMap,
    UInt,
    Unbound,
    decode,
    encode_trusted,
    record_type,
    wire,
)
from ledger.schema import (
    HASH32,
    HEIGHT,
    MAX_EVENT_ATTR_BYTES,
    MAX_EVENT_ATTRS,
    MAX_EVENTS_PER_TX,
    MAX_OPS_PER_TX,
    MAX_RECEIPT_BYTES,
    PARAM_KEY,
    TEXT,
    U16,
)


class ReceiptRecords(Protocol):
    """What encoding and decoding a receipt needs of an operation set (ledger.operation_set.OperationSet): the
    record of a receipt whose event kinds are the set's."""

    @property
    def receipt(self) -> Record: ...

__all__ = [
    "ACCOUNT_ATTRS",
    "EVENT_KINDS",
    "Event",
    "Receipt",
    "decode_receipt",
    "encode_receipt",
]

EVENT_KINDS: tuple[str, ...] = (
    "member_registered",
    "account_registered",
    "keys_rotated",
    "role_granted",
    "role_revoked",
    "custodian_set",
    "asset_defined",
    "asset_rules_set",
    "asset_agents_set",
    "issued",
    "transferred",
    "redeemed",
    "hold_created",
    "hold_executed",
    "hold_released",
    "hold_expired",
    "account_frozen",
    "account_unfrozen",
    "amount_frozen",
    "amount_unfrozen",
    "asset_paused",
    "asset_unpaused",
    "forced_transfer",
    "keys_recovered",
    "account_migrated",
    "settlement_leg",
    "settled",
)

ACCOUNT_ATTRS: frozenset[str] = frozenset(
    {"actor", "account", "sender", "recipient", "notary", "new_account", "custodian", "issuer"}
)

# The event kinds are the operation set's (OperationSet.event / .receipt bind them).
EVENT_KIND_OF_THE_SET = Unbound("str, an event kind of the operation set", "decode receipts with an OperationSet")


@dataclass(frozen=True, slots=True)
class Event:
    tx_id: bytes = wire(HASH32)
    op_index: int = wire(UInt(16, maximum=MAX_OPS_PER_TX - 1))
    kind: str = wire(EVENT_KIND_OF_THE_SET)
    attrs: tuple[tuple[str, int | str | bytes], ...] = wire(
        StrMap(PARAM_KEY, Scalar(MAX_EVENT_ATTR_BYTES), MAX_EVENT_ATTRS)
    )

    def attr(self, name: str) -> int | str | bytes | None:
        for k, v in self.attrs:
            if k == name:
                return v
        return None

    def accounts(self) -> tuple[str, ...]:
        return tuple([v for k, v in self.attrs if k in ACCOUNT_ATTRS and type(v) is str])


@dataclass(frozen=True, slots=True)
class Receipt:
    tx_id: bytes = wire(HASH32)
    height: int = wire(HEIGHT)
    index: int = wire(UInt(32))
    code: int = wire(U16)
    failed_op: int | None = wire(Optional(U16))
    detail: str = wire(TEXT)
    events: tuple[Event, ...] = wire(Seq(record_type(Event), MAX_EVENTS_PER_TX))

    @property
    def ok(self) -> bool:
        return self.code == 0

    @property
    def executed(self) -> bool:
        """False for a rejected transaction (codes 1..199: not executed, id not consumed)."""
        return self.code == 0 or self.code >= 200


def encode_receipt(receipt: Receipt, *, operations: ReceiptRecords) -> bytes:
    """Receipts are built by the ledger from checked values: the trusted encoder gives the canonical bytes."""
    return encode_trusted(operations.receipt, receipt)


def decode_receipt(data: bytes, *, operations: ReceiptRecords) -> Receipt:
    """A receipt whose event kinds are those of `operations` (another kind: DecodeError INVALID_VALUE)."""
    return decode(operations.receipt, data, MAX_RECEIPT_BYTES)


def make_event(tx_id: bytes, op_index: int, kind: str, attrs: dict[str, int | str | bytes]) -> Event:
    """An event with its attributes in canonical (sorted) order; None-valued attributes are left out. (The kind is
    checked against the operation set by TxContext.emit.)"""
    items = sorted(attrs.items())
    if None in attrs.values():
        items = [kv for kv in items if kv[1] is not None]
    return Event(tx_id, op_index, kind, tuple(items))
