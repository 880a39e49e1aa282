"""A validator's own keys across epochs: the key file's keys plus the next keys written by `ledger keys rotate`.

    ring = KeyRing(keys, next_keys, load_next_keys)
    ring.for_epoch(record) -> NodeKeys | None     the identity and BLS keys the epoch's record names for this node

In each epoch the node signs with the BLS key and connects with the identity key that the EpochRecord names for it;
after a partial rotation the two may come from different files. When a record names keys the ring does not hold,
`refresh()` asks `load_next_keys()` again (next keys written while the node runs) and keeps at most MAX_NEXT_KEYS
of them besides the key file's.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Final

from ledger.records import EpochRecord, ValidatorInfo
from node.validator.keyfile import KeyFileError, NodeKeys

__all__ = ["MAX_NEXT_KEYS", "KeyRing"]

log = logging.getLogger("node.validator.keyring")

MAX_NEXT_KEYS: Final = 7


class KeyRing:
    def __init__(self, keys: NodeKeys, next_keys: Sequence[NodeKeys] = (),
                 load_next_keys: Callable[[], Sequence[NodeKeys]] | None = None) -> None:
        """`load_next_keys()` may raise KeyFileError (logged; the ring keeps what it has)."""
        if any(k.node_id != keys.node_id for k in next_keys):
            raise ValueError("next keys must belong to the same node id")
        self.node_id = keys.node_id
        self.keys = keys
        self._candidates: tuple[NodeKeys, ...] = (keys, *next_keys)
        self._load_next_keys = load_next_keys

    def entry(self, record: EpochRecord) -> ValidatorInfo | None:
        """This node's entry in `record` (None: not a validator of that epoch)."""
        return next((v for v in record.validators if v.node_id == self.node_id), None)

    def for_epoch(self, record: EpochRecord) -> NodeKeys | None:
        """This node's keys as `record` names them, or None when it is not in the set or holds no matching keys."""
        entry = self.entry(record)
        if entry is None:
            return None
        identity = next((k for k in self._candidates if k.identity_key == entry.identity_key), None)
        bls_keys = next((k for k in self._candidates if k.bls_public_key == entry.bls_key), None)
        if identity is None or bls_keys is None:
            return None
        return NodeKeys(self.node_id, identity.identity_seed, bls_keys.bls_secret)

    def refresh(self) -> None:
        """Load next keys written since the node started."""
        if self._load_next_keys is None:
            return
        try:
            fresh = [k for k in self._load_next_keys() if k.node_id == self.node_id]
        except KeyFileError as exc:
            log.error("next_keys_unreadable node=%s: %s", self.node_id, exc)
            return
        merged = list(dict.fromkeys((*self._candidates, *fresh)))
        self._candidates = (merged[0], *merged[1:][-MAX_NEXT_KEYS:])  # the key file's keys, at most 7 others
