"""The state key layout (docs/protocol.md, "State keys").

State is a flat map from key bytes to canonical record bytes. A key is one ASCII tag byte followed by its
components; a component that is not the last is prefixed by its length (one byte), so keys are unambiguous and all
keys of one asset or one account share a prefix (LevelDB range scans for holders, statements, audits).

    tag  key                                        value
    'M'  'M'                                        ChainMeta
    'm'  'm' member_id                              Member
    'a'  'a' account_id                             Account
    'A'  'A' asset_id                               AssetDefinition
    'S'  'S' asset_id                               AssetStatus
    'B'  'B' u8(len asset) asset account_id         Balance
    'P'  'P' account_id                             Positions
    'H'  'H' hold_id                                Hold
    'Q'  'Q'                                        HoldQueue (size of the hold expiry heap)
    'q'  'q' u64be(position)                        HoldQueueEntry (the heap's entry at that position)
    'T'  'T' tx_id (32)                             TxSeen (derived: not in the state tree, see below)
    'E'  'E' u64be(expiry height)                   ReplayIndex
    'e'  'e' u64be(expiry height) u32be(chunk)      ReplayBucket
    'V'  'V'                                        EpochRecord (the current or, after an epoch-ending block,
                                                    the next epoch's validators and params)
    'G'  'G'                                        GovernanceRecord
    'g'  'g' proposal_id                            ProposalRecord
    'C'  'C' <defined by the contracts layer>       opaque bytes (rule state; the contracts layer encodes it)

All ids are ASCII (their patterns in ledger.schema), so the key bytes are the ids' bytes.

The state tree (the state root) holds every entry but the replay index `T` (protocol 3): `T` entries are derived
data, one per id listed in the replay buckets `e` (which the tree holds), with the bucket's expiry height. They make
the replay check one key lookup; the buckets authenticate the set. `tree_changes` / `tree_entries` select what the
tree holds, `replay_index_entries` derives a bucket's `T` entries (a node installing a snapshot, which carries only
the tree's entries, writes them from each bucket).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import TypeVar

from ledger.codec import Record, decode, encode_trusted, record_type
from ledger.records import (
    Account,
    AssetDefinition,
    AssetStatus,
    Balance,
    ChainMeta,
    EpochRecord,
    GovernanceRecord,
    Hold,
    HoldQueue,
    HoldQueueEntry,
    Member,
    Positions,
    ProposalRecord,
    ReplayBucket,
    ReplayIndex,
    TxSeen,
)
from ledger.schema import MAX_STATE_VALUE_BYTES

META_KEY = b"M"
EPOCH_KEY = b"V"
HOLD_QUEUE_KEY = b"Q"
GOVERNANCE_KEY = b"G"
CONTRACTS_TAG = b"C"


def member_key(member_id: str) -> bytes:
    return b"m" + member_id.encode()


def account_key(account_id: str) -> bytes:
    return b"a" + account_id.encode()


def asset_key(asset_id: str) -> bytes:
    return b"A" + asset_id.encode()


def asset_status_key(asset_id: str) -> bytes:
    return b"S" + asset_id.encode()


def balance_prefix(asset_id: str) -> bytes:
    """The prefix shared by all balances of one asset (holders scan)."""
    a = asset_id.encode()
    return b"B" + bytes((len(a),)) + a


# balance_key remembers each asset's key prefix (a pure function of the id); the table is cleared when full.
BALANCE_PREFIX_CACHE_MAX = 4_096
_BALANCE_PREFIXES: dict[str, bytes] = {}


def balance_key(asset_id: str, account_id: str) -> bytes:
    prefix = _BALANCE_PREFIXES.get(asset_id)
    if prefix is None:
        prefix = balance_prefix(asset_id)
        if len(_BALANCE_PREFIXES) >= BALANCE_PREFIX_CACHE_MAX:
            _BALANCE_PREFIXES.clear()
        _BALANCE_PREFIXES[asset_id] = prefix
    return prefix + account_id.encode()


def positions_key(account_id: str) -> bytes:
    return b"P" + account_id.encode()


def hold_key(hold_id: str) -> bytes:
    return b"H" + hold_id.encode()


def hold_queue_entry_key(position: int) -> bytes:
    return b"q" + position.to_bytes(8, "big")


def tx_seen_key(tx_id: bytes) -> bytes:
    return b"T" + tx_id


def replay_index_key(expiry_height: int) -> bytes:
    return b"E" + expiry_height.to_bytes(8, "big")


def replay_bucket_key(expiry_height: int, chunk: int) -> bytes:
    return b"e" + expiry_height.to_bytes(8, "big") + chunk.to_bytes(4, "big")


# The tag of the one derived keyspace, which the state tree does not hold.
DERIVED_TAG = ord("T")

_V = TypeVar("_V")


def in_tree(key: bytes) -> bool:
    """Whether the state tree (the state root, proofs, snapshots) holds `key`: every key but the replay index `T`."""
    return key[0] != DERIVED_TAG


def tree_changes(changes: Mapping[bytes, _V]) -> dict[bytes, _V]:
    """The part of a block's state changes the state tree holds (all but the derived `T` entries)."""
    return {k: v for k, v in changes.items() if k[0] != DERIVED_TAG}


def tree_entries(items: Iterable[tuple[bytes, _V]]) -> Iterator[tuple[bytes, _V]]:
    """The (key, value) pairs of `items` the state tree holds, in their order."""
    return ((k, v) for k, v in items if k[0] != DERIVED_TAG)


def replay_index_entries(pairs: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The derived `T` entries (key, encoded TxSeen) of the replay buckets among `pairs` (state key, canonical value
    bytes, e.g. a verified snapshot chunk); other keys are ignored. Each listed id gets its bucket's expiry height."""
    out: list[tuple[bytes, bytes]] = []
    bucket_type, seen_type = record_type(ReplayBucket), record_type(TxSeen)
    for key, raw in pairs:
        if key[:1] != b"e" or len(key) != 13:
            continue
        bucket: ReplayBucket = decode(bucket_type, raw, MAX_STATE_VALUE_BYTES)  # strict: DecodeError if malformed
        value = encode_trusted(seen_type, TxSeen(int.from_bytes(key[1:9], "big")))
        out.extend((b"T" + tx_id, value) for tx_id in bucket.tx_ids)
    return out


def proposal_key(proposal_id: str) -> bytes:
    return b"g" + proposal_id.encode()


def contracts_key(suffix: bytes) -> bytes:
    """A key in the contracts layer's namespace; its value bytes are opaque to the ledger."""
    return CONTRACTS_TAG + suffix


# The record type stored under each tag; None = opaque bytes.
RECORD_BY_TAG: dict[int, Record | None] = {
    ord("M"): record_type(ChainMeta),
    ord("m"): record_type(Member),
    ord("a"): record_type(Account),
    ord("A"): record_type(AssetDefinition),
    ord("S"): record_type(AssetStatus),
    ord("B"): record_type(Balance),
    ord("P"): record_type(Positions),
    ord("H"): record_type(Hold),
    ord("Q"): record_type(HoldQueue),
    ord("q"): record_type(HoldQueueEntry),
    ord("T"): record_type(TxSeen),
    ord("E"): record_type(ReplayIndex),
    ord("e"): record_type(ReplayBucket),
    ord("V"): record_type(EpochRecord),
    ord("G"): record_type(GovernanceRecord),
    ord("g"): record_type(ProposalRecord),
    ord("C"): None,
}


def record_type_of(key: bytes) -> Record | None:
    """The record type of the value under `key` (None: opaque bytes). KeyError for an unknown tag."""
    return RECORD_BY_TAG[key[0]]


def parse_balance_key(key: bytes) -> tuple[str, str]:
    """(asset_id, account_id) of a balance key."""
    assert key[:1] == b"B"
    n = key[1]
    return key[2 : 2 + n].decode(), key[2 + n :].decode()
