"""Events and receipts (docs/protocol.md, "Receipts and events").

An event is emitted by an operation for audit and the event stream: the transaction id, the operation's index in
the body, a kind (from EVENT_KINDS) and attributes (a canonical map of int/str/bin). Account-valued attributes use
the names in ACCOUNT_ATTRS, which is how the per-account history index finds the accounts a transaction touched.

A receipt records the outcome of one transaction in a block: code 0 with the events, or the refusal code, the index
of the failing operation (nil when the refusal is not tied to an operation) and a detail message, with no events.
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger.codec import Choice, Optional, Scalar, Seq, StrMap, UInt, decode, encode_trusted, record_type, wire
from ledger.schema import HASH32, HEIGHT, MAX_OPS_PER_TX, PARAM_KEY, TEXT, U16

__all__ = [
    "ACCOUNT_ATTRS",
    "EVENT_KINDS",
    "Event",
    "Receipt",
    "decode_receipt",
    "encode_receipt",
    "register_event_kind",
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

MAX_EVENT_ATTRS = 24
MAX_EVENT_ATTR_BYTES = 4096  # e.g. the comma-joined rule names of an asset (32 x 64 bytes)
MAX_EVENTS_PER_TX = 4096  # a transaction that would emit more is refused (TX_TOO_COMPLEX)
MAX_RECEIPT_BYTES = 16 << 20

EVENT_KIND = Choice(EVENT_KINDS)


def register_event_kind(name: str) -> str:
    """Add an event kind (the contracts layer registers its own at import: `[a-z][a-z0-9_]{0,31}`)."""
    EVENT_KIND.add(name)
    return name


@dataclass(frozen=True, slots=True)
class Event:
    tx_id: bytes = wire(HASH32)
    op_index: int = wire(UInt(16, maximum=MAX_OPS_PER_TX - 1))
    kind: str = wire(EVENT_KIND)
    attrs: tuple[tuple[str, int | str | bytes], ...] = wire(
        StrMap(PARAM_KEY, Scalar(MAX_EVENT_ATTR_BYTES), MAX_EVENT_ATTRS)
    )

    def attr(self, name: str) -> int | str | bytes | None:
        for k, v in self.attrs:
            if k == name:
                return v
        return None

    def accounts(self) -> tuple[str, ...]:
        return tuple(v for k, v in self.attrs if k in ACCOUNT_ATTRS and type(v) is str)


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


EVENT = record_type(Event)
RECEIPT = record_type(Receipt)


def encode_receipt(receipt: Receipt) -> bytes:
    """Receipts are built by the ledger from checked values: the trusted encoder gives the canonical bytes."""
    return encode_trusted(RECEIPT, receipt)


def decode_receipt(data: bytes) -> Receipt:
    return decode(RECEIPT, data, MAX_RECEIPT_BYTES)


def make_event(tx_id: bytes, op_index: int, kind: str, attrs: dict[str, int | str | bytes]) -> Event:
    """An event with its attributes in canonical (sorted) order; None-valued attributes are left out."""
    assert kind in EVENT_KIND.names, f"unregistered event kind {kind}"
    return Event(tx_id, op_index, kind, tuple(sorted([kv for kv in attrs.items() if kv[1] is not None])))
