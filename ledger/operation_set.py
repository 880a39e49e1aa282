"""The operation set: which operation kinds a chain has, the processor that executes each, and the event kinds
they emit — one immutable value, and the wire types that follow from it (docs/protocol.md, "Extension operations").

    CORE_OPERATIONS                  the ledger's own 29 kinds (ledger.operations) with their processors and events
    ops.extend(pairs, event_kinds)   a NEW set: `ops` plus extension kinds 64..127, each (type, processor)
    ops.variant                      the operation union (a codec Variant) of exactly these kinds
    ops.body / .event / .receipt     the records of a transaction body, an event and a receipt of this set
    ops.dispatch[type(op)]           the processor of an operation (ledger.transition runs it)

Every node of a chain must use the same set: the set of kinds is part of the protocol. Nothing is registered
anywhere: whatever encodes, decodes or executes transactions takes the set (`operations=`, or inside the
ledger.protocol.Protocol given to apply_block). The contracts layer builds its set as a plain value
(`contracts.OPERATIONS = CORE_OPERATIONS.extend(...)`) and the node composes it (node/chain/protocol.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from ledger.codec import Choice, Record, Seq, Variant, record_type
from ledger.events import Event, Receipt
from ledger.operations import EXTENSION_KINDS
from ledger.schema import MAX_EVENT_KINDS, MAX_EVENTS_PER_TX, MAX_OPS_PER_TX
from ledger.transaction import TxBody

__all__ = ["OperationSet", "Processor"]

# A processor: (ledger.context.TxContext, the decoded operation) -> None; it refuses by raising ledger.errors.Refused.
Processor = Callable[[Any, Any], None]


@dataclass(frozen=True, slots=True)
class OperationSet:
    """Operation types with their processors (in kind order) and the event kinds their processors emit.

    Construction checks every entry: a dataclass with a uint8 `KIND` no other entry uses and `actor` as its first
    field, a callable processor; event kinds distinct names matching `[a-z][a-z0-9_]{0,31}`."""

    processors: tuple[tuple[type, Processor], ...]
    event_kinds: tuple[str, ...]
    variant: Variant = field(init=False, repr=False, compare=False)
    body: Record = field(init=False, repr=False, compare=False)
    event: Record = field(init=False, repr=False, compare=False)
    receipt: Record = field(init=False, repr=False, compare=False)
    dispatch: Mapping[type, Processor] = field(init=False, repr=False, compare=False)
    event_names: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        pairs = tuple(sorted(self.processors, key=lambda p: getattr(p[0], "KIND", -1)))
        for cls, processor in pairs:
            rec = record_type(cls)
            if not rec.names or rec.names[0] != "actor":
                raise ValueError(f"{cls.__name__}: an operation's first field must be `actor`")
            if not callable(processor):
                raise TypeError(f"{cls.__name__}: the processor must be callable")
        if len(self.event_kinds) > MAX_EVENT_KINDS:
            raise ValueError(f"at most {MAX_EVENT_KINDS} event kinds")
        variant = Variant("operation", [cls for cls, _ in pairs])  # uint8 kinds, each used once
        kind = Choice(tuple(self.event_kinds))  # distinct, well-formed names
        event = record_type(Event).with_types(kind=kind)
        receipt = record_type(Receipt).with_types(events=Seq(event, MAX_EVENTS_PER_TX))
        body = record_type(TxBody).with_types(operations=Seq(variant, MAX_OPS_PER_TX, min_len=1))
        setattr_ = object.__setattr__
        setattr_(self, "processors", pairs)
        setattr_(self, "event_kinds", tuple(self.event_kinds))
        setattr_(self, "variant", variant)
        setattr_(self, "body", body)
        setattr_(self, "event", event)
        setattr_(self, "receipt", receipt)
        setattr_(self, "dispatch", MappingProxyType(dict(pairs)))
        setattr_(self, "event_names", kind.names)

    @property
    def types(self) -> tuple[type, ...]:
        """The operation types, in kind order."""
        return tuple(cls for cls, _ in self.processors)

    def extend(self, operations: Iterable[tuple[type, Processor]], event_kinds: Iterable[str] = ()) -> OperationSet:
        """A new set: this one plus the extension operations `operations` — (type, processor) pairs; each type a
        frozen dataclass with `KIND` in 64..127 that no kind of this set uses, and `actor: str = wire(ACCOUNT_ID)`
        as its first field — and the event kinds their processors emit. This set is unchanged. A processor works
        on the transaction context like a core one (typed state, ledger.ops.assets.move_units, ctx.emit with one
        of the set's event kinds) and refuses by raising ledger.errors.Refused."""
        added = tuple(operations)
        for cls, _ in added:
            kind = getattr(cls, "KIND", None)
            if kind not in EXTENSION_KINDS:
                raise ValueError(
                    f"{cls.__name__}: extension operation kinds are {EXTENSION_KINDS.start}..{EXTENSION_KINDS.stop - 1}"
                )
            if kind in self.variant.by_kind:
                raise ValueError(f"{cls.__name__}: operation kind {kind} is already used")
        return OperationSet(self.processors + added, self.event_kinds + tuple(event_kinds))

