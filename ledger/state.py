"""State access: a reader interface over committed bytes, and layered overlays of typed records.

    StateReader   anything with get_state(key) -> bytes | None  (the LevelDB store, MemoryState, an Overlay)
    Overlay       typed reads and writes layered over a parent (a StateReader or another Overlay)

Execution stacks them: a transaction overlay on a block overlay on a base reader. A failed transaction drops its
overlay; a successful one is merged into the block overlay (`commit`). A finished block overlay is itself a
StateReader (and an Overlay parent), so the node layer can execute a proposed block on top of an uncommitted parent
and simply drop the overlays of a losing branch.

Overlays hold decoded records; bytes are produced once per block by `changes()`. Values read from the base are
decoded once per block overlay and cached.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Protocol

from ledger.codec import trusted_encoder, trusted_loader
from ledger.schema import MAX_STATE_VALUE_BYTES
from ledger.state_keys import RECORD_BY_TAG

__all__ = ["MemoryState", "Overlay", "PendingNodes", "StateReader", "decode_value", "encode_value"]


# Per key tag, the function giving a stored value's record (decode_value without the per-key lookups); None for the
# contracts namespace (opaque bytes).
_LOADER_BY_TAG: dict[int, Any] = {
    tag: None if rt is None else trusted_loader(rt, MAX_STATE_VALUE_BYTES) for tag, rt in RECORD_BY_TAG.items()
}

# Per key tag, the function giving a value's bytes (encode_value without the per-key lookups); None for the contracts
# namespace (opaque bytes, stored as they are).
_ENCODER_BY_TAG: dict[int, Any] = {
    tag: None if rt is None else trusted_encoder(rt) for tag, rt in RECORD_BY_TAG.items()
}


class StateReader(Protocol):
    def get_state(self, key: bytes, /) -> bytes | None: ...


def decode_value(key: bytes, raw: bytes) -> Any:
    """The record stored under `key` from its bytes (opaque bytes for the contracts namespace). KeyError for an
    unknown tag."""
    load = _LOADER_BY_TAG[key[0]]
    return raw if load is None else load(raw)


def encode_value(key: bytes, value: Any) -> bytes:
    encode = _ENCODER_BY_TAG[key[0]]
    if encode is None:
        assert type(value) is bytes, "contracts state values are bytes"
        return value
    return encode(value)


class MemoryState:
    """A dict of committed state bytes (tests, benchmarks, simulations)."""

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[bytes, bytes] | None = None) -> None:
        self._data: dict[bytes, bytes] = dict(data) if data else {}

    def get_state(self, key: bytes) -> bytes | None:
        return self._data.get(key)

    def apply(self, changes: Mapping[bytes, bytes | None]) -> None:
        data = self._data
        data.update(changes)  # one C-level merge; the deletions (None) are then taken out again
        for key in [key for key, value in changes.items() if value is None]:
            del data[key]

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        return iter(sorted(self._data.items()))

    def __len__(self) -> int:
        return len(self._data)


_MISSING: Any = object()

class Overlay:
    """Typed writes over a parent. `get` returns a record (or bytes for contracts keys) or None."""

    __slots__ = ("_encoded", "_parent", "_parent_overlay", "_reads", "_writes")

    def __init__(self, parent: StateReader | Overlay) -> None:
        self._parent = parent
        self._parent_overlay: Overlay | None = parent if isinstance(parent, Overlay) else None
        self._writes: dict[bytes, Any] = {}
        self._reads: dict[bytes, Any] = {}
        self._encoded: dict[bytes, bytes | None] = {}

    # -- reads -------------------------------------------------------------------------------------------------

    def get(self, key: bytes) -> Any:
        # The newest write wins, down the overlays; then the bottom overlay's decoded reads of its parent. Unrolled
        # for the usual stack (a transaction overlay on a block overlay): every state read of a block comes here.
        value = self._writes.get(key, _MISSING)
        if value is not _MISSING:
            return value
        layer = self._parent_overlay
        if layer is None:
            layer = self
        else:
            value = layer._writes.get(key, _MISSING)
            if value is not _MISSING:
                return value
            below = layer._parent_overlay
            while below is not None:
                layer = below
                value = layer._writes.get(key, _MISSING)
                if value is not _MISSING:
                    return value
                below = layer._parent_overlay
        value = layer._reads.get(key, _MISSING)
        if value is _MISSING:
            raw = layer._parent.get_state(key)
            if raw is None:
                value = None
            else:  # decode_value, inlined: the first read of each key in a block comes here
                load = _LOADER_BY_TAG[key[0]]
                value = raw if load is None else load(raw)
            layer._reads[key] = value
        return value

    def parent_value(self, key: bytes) -> Any:
        """The record under `key` as the parent sees it (ignoring this overlay's writes)."""
        po = self._parent_overlay
        if po is not None:
            return po.get(key)
        value = self._reads.get(key, _MISSING)
        if value is _MISSING:
            raw = self._parent.get_state(key)
            value = None if raw is None else decode_value(key, raw)
            self._reads[key] = value
        return value

    def get_state(self, key: bytes) -> bytes | None:
        """The bytes of `key` as seen through this overlay (StateReader protocol)."""
        if key in self._writes:
            enc = self._encoded.get(key, _MISSING)
            if enc is _MISSING:
                value = self._writes[key]
                enc = None if value is None else encode_value(key, value)
                self._encoded[key] = enc
            return enc
        return self._parent.get_state(key)

    # -- writes ------------------------------------------------------------------------------------------------

    def put(self, key: bytes, value: Any) -> None:
        """Set `key` to a record (None deletes)."""
        self._writes[key] = value
        if self._encoded:
            self._encoded.pop(key, None)

    def commit(self) -> None:
        """Merge this overlay's writes into its parent overlay."""
        po = self._parent_overlay
        assert po is not None, "only an overlay over another overlay can be committed"
        po._writes.update(self._writes)
        if po._encoded:
            for key in self._writes:
                po._encoded.pop(key, None)
        self._writes = {}

    def written_keys(self) -> Iterator[bytes]:
        return iter(self._writes)

    def written_items(self) -> Iterator[tuple[bytes, Any]]:
        """(key, value written) of this overlay's writes (None = deleted)."""
        return iter(self._writes.items())

    def changes(self) -> dict[bytes, bytes | None]:
        """Every written key with its canonical bytes (None = deleted), in key order."""
        writes = self._writes
        encoded = self._encoded
        encoders = _ENCODER_BY_TAG
        out: dict[bytes, bytes | None] = {}
        for key in sorted(writes):
            value = writes[key]
            if value is None:
                out[key] = None
                continue
            enc = encoded.get(key)
            if enc is None:
                encode = encoders[key[0]]
                if encode is None:
                    assert type(value) is bytes, "contracts state values are bytes"
                    enc = value
                else:
                    enc = encode(value)
            out[key] = enc
        return out


class PendingNodes:
    """Tree nodes of uncommitted blocks layered over a node store (get_node), for speculative execution:
    `SparseMerkleTree(PendingNodes(store, outcome.smt_nodes), outcome.state_root)` is the tree after `outcome`."""

    __slots__ = ("_new", "_parent")

    def __init__(self, parent: Any, new: Mapping[bytes, bytes]) -> None:
        self._parent = parent
        self._new = new

    def get_node(self, h: bytes) -> bytes | None:
        node = self._new.get(h)
        return node if node is not None else self._parent.get_node(h)
