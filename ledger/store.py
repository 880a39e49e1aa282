"""LevelDB storage for the ledger: blocks, transactions, receipts, state, history and the state tree's nodes.

Every block is committed as ONE plyvel WriteBatch written with sync=True, so after a crash (even kill -9 or a power
loss) the store reopens at the last complete block: LevelDB replays its log and drops a torn final record. Block sync
writes a run of consecutive certified blocks the same way, all in one synced WriteBatch (commit_blocks): the store
then holds all of them or none, never a gap.
The key layout (one prefix byte per keyspace) and the format version are documented in docs/state-proofs.md,
section "Storage layout".
"""

from __future__ import annotations

import itertools
import os
import struct
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Self

import msgpack
import plyvel

from ledger import codes
from ledger.codec import DecodeError
from ledger.errors import LedgerError
from ledger.schema import MAX_BLOCK_TXS
from ledger.smt import EMPTY_ROOT, INTERNAL_TAG, MemoryNodes, SparseMerkleTree, StateProof
from ledger.state_keys import in_tree, replay_index_entries, tree_entries

__all__ = [
    "FORMAT_VERSION",
    "MAX_GROUP_COMMIT_BLOCKS",
    "BlockCommit",
    "BlockPruneReport",
    "Head",
    "HistoryEntry",
    "InvalidCommitError",
    "LedgerStore",
    "PruneReport",
    "PrunedHeightError",
    "SnapshotInstall",
    "StateView",
    "StoreCorruptError",
    "StoreError",
    "StoreOpenError",
    "StoreVersionError",
    "UnknownHeightError",
]

# 2: protocol 3's state (the tree leaves out the derived replay index `T`; replay buckets of 256 ids). A store of
# format 1 holds another protocol's chain and is refused (StoreVersionError), never reinterpreted.
FORMAT_VERSION = 2

# Keyspaces: one prefix byte each. Heights are 8-byte big-endian so LevelDB's byte order is height order.
P_META = b"\x00"  # b"\x00" + name -> value
P_BLOCK = b"\x01"  # height(8) -> block bytes
P_BLOCK_HASH = b"\x02"  # block_hash -> height(8)
P_TX = b"\x03"  # tx_id -> msgpack [height, index, tx_bytes]
P_RECEIPT = b"\x04"  # tx_id -> receipt bytes
P_STATE = b"\x05"  # state key -> latest value
P_NODE = b"\x06"  # node hash(32) -> node bytes
P_HISTORY = b"\x07"  # len(account)(2) || account utf-8 || height(8) || position(4) -> tx_id
P_ROOT = b"\x08"  # height(8) -> state root(32)
P_EXTRA = b"\x09"  # key -> value (node layer: consensus safety state, commit certificates, ...)

META_VERSION = P_META + b"format_version"
META_HEAD = P_META + b"head"
META_PRUNED_BELOW = P_META + b"pruned_below"  # u64: tree nodes of heights below it may be deleted
META_BASE = P_META + b"base_height"  # u64: no block below it is stored (state sync, block pruning)
META_INSTALL = P_META + b"snapshot_install"  # u64: a snapshot install began and has not finished

MAX_HEIGHT = (1 << 63) - 1
# Storage bounds of the history index and the transaction keys (not protocol limits: ledger.schema has those).
MAX_HISTORY_ACCOUNT_BYTES = 256  # the account part of a history key
MAX_HISTORY_PAGE = 1000
MAX_TX_ID_BYTES = 64
# Blocks written by one commit_blocks call (one WriteBatch held in memory until it is written).
MAX_GROUP_COMMIT_BLOCKS = 256
# Tree nodes kept in memory (written or read recently): about 260 bytes each (key, node and dict slot, measured), so
# 2^17 hold ~34 MB: the newest 6 blocks of 4,000 transfers (~5 new nodes each), whose nodes the next blocks read,
# and the top 17 levels of a tree. 2^20 (~270 MB) made it the largest structure of a node under load. Trimmed in
# steps of NODE_CACHE_SLACK to keep reads cheap; a miss is one LevelDB read (its block cache: BLOCK_CACHE_BYTES).
NODE_CACHE_ENTRIES = 1 << 17
NODE_CACHE_SLACK = 1 << 14
PRUNE_BATCH = 10_000
# LevelDB's memtable: a node holds up to two (one being written to disk) in native memory. 32 MiB cost ~60 MB of
# RSS under load (block payloads are large values); at 8 MiB a memtable still takes ~3 s of commits at 1,000 tx/s.
WRITE_BUFFER_BYTES = 8 << 20
BLOCK_CACHE_BYTES = 64 << 20
# No block compression: what the store holds is hashes, keys, signatures and encoded transactions, which snappy
# barely shrinks, while compressing every table block LevelDB writes (at each flush and again at each compaction)
# and decompressing every one it reads cost CPU on the validator's cores (docs/benchmarks.md, "The ledger store
# without compression"). Blocks written compressed by an earlier version stay readable (the type is per block).
BLOCK_COMPRESSION = None

_U64 = struct.Struct(">Q")
_U32 = struct.Struct(">I")
_U16 = struct.Struct(">H")


class StoreError(LedgerError):
    """An error of the storage layer (codes 700 – 719; STORE_INVALID_ARGUMENT: a call with a bad argument)."""


class StoreVersionError(StoreError):
    """The directory holds another format version (STORE_FORMAT_VERSION)."""


class StoreOpenError(StoreError):
    """LevelDB could not open the directory: held by another process, unreadable, corrupt beyond repair
    (STORE_OPEN_FAILED)."""


class StoreCorruptError(StoreError):
    """The stored data contradicts itself, e.g. the head names a block that is not stored (STORE_CORRUPT)."""


class UnknownHeightError(StoreError):
    """No block is stored at the height (UNKNOWN_HEIGHT)."""


class PrunedHeightError(StoreError):
    """The block is stored but the state tree of that height was pruned: prune_state_history (HEIGHT_PRUNED)."""


class InvalidCommitError(StoreError):
    """A BlockCommit that breaks the store's invariants: non-consecutive height, duplicate ids, ...
    (INVALID_BLOCK_COMMIT)."""


@dataclass(frozen=True, slots=True)
class Head:
    height: int
    block_hash: bytes
    state_root: bytes


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One line of an account's history. `cursor` is what to pass as `after=` to get the next (older) page."""

    height: int
    position: int
    tx_id: bytes

    @property
    def cursor(self) -> tuple[int, int]:
        return (self.height, self.position)


@dataclass(frozen=True, slots=True)
class PruneReport:
    keep_from: int
    live_nodes: int
    deleted_nodes: int


@dataclass(frozen=True, slots=True)
class BlockPruneReport:
    kept_from: int
    blocks: int
    transactions: int


@dataclass(frozen=True, slots=True)
class SnapshotInstall:
    """The last piece of a state-sync install (LedgerStore.finish_snapshot_install): the certified block the state
    belongs to, the genesis state root, and node-layer records (certificate, epoch proofs, genesis binding)."""

    height: int
    block_hash: bytes
    block_bytes: bytes
    state_root: bytes
    genesis_root: bytes
    smt_nodes: Mapping[bytes, bytes]  # the tree's nodes above the chunks
    extra: Mapping[bytes, bytes]


class StateView:
    """The latest state as of one moment (a LevelDB snapshot): later commits do not show through. Close it."""

    def __init__(self, snapshot: Any, head: Head | None) -> None:
        self._snapshot = snapshot
        self.head = head

    def iter_state(self) -> Iterator[tuple[bytes, bytes]]:
        n = len(P_STATE)
        with self._snapshot.iterator(prefix=P_STATE) as it:
            for k, v in it:
                yield k[n:], v

    def get_extra(self, key: bytes) -> bytes | None:
        return self._snapshot.get(P_EXTRA + key)

    def close(self) -> None:
        self._snapshot.close()


@dataclass(frozen=True, slots=True)
class BlockCommit:
    """Everything one block writes, committed atomically by LedgerStore.commit_block."""

    height: int
    block_hash: bytes
    block_bytes: bytes
    state_root: bytes
    txs: Sequence[tuple[bytes, bytes]]  # (tx_id, tx_bytes), in block order
    receipts: Sequence[tuple[bytes, bytes]]  # (tx_id, receipt_bytes)
    state_changes: Mapping[bytes, bytes | None]  # None deletes
    smt_nodes: Mapping[bytes, bytes]  # from SparseMerkleTree.update(state_changes).nodes
    history: Sequence[tuple[str, bytes]]  # (account_id, tx_id), in block order
    extra: Mapping[bytes, bytes] = field(default_factory=lambda: MappingProxyType({}))


def _require_in_tree(key: bytes) -> None:
    if not _is_bytes(key) or not key:
        raise StoreError(codes.STORE_INVALID_ARGUMENT, "a state key is non-empty bytes")
    if not in_tree(key):
        raise StoreError(codes.STORE_INVALID_ARGUMENT,
                         "the replay index (tag T) is not in the state tree: prove the id's replay bucket (tag e)")


def _height_key(prefix: bytes, height: int) -> bytes:
    return prefix + _U64.pack(height)


def _account_prefix(account_id: str) -> bytes:
    raw = account_id.encode("utf-8")
    if not 0 < len(raw) <= MAX_HISTORY_ACCOUNT_BYTES:
        raise InvalidCommitError(codes.INVALID_BLOCK_COMMIT, f"account id must be 1..{MAX_HISTORY_ACCOUNT_BYTES} utf-8 bytes")
    return P_HISTORY + _U16.pack(len(raw)) + raw

def _put_commit(wb: Any, c: BlockCommit) -> None:
    """Put everything block commit `c` writes, its head last, into WriteBatch `wb` (TypeError: a non-bytes key or
    value, refused by plyvel)."""
    hkey = _U64.pack(c.height)
    wb.put(P_BLOCK + hkey, c.block_bytes)
    wb.put(P_BLOCK_HASH + c.block_hash, hkey)
    wb.put(P_ROOT + hkey, c.state_root)
    for index, (tx_id, tx_bytes) in enumerate(c.txs):
        wb.put(P_TX + tx_id, msgpack.packb([c.height, index, tx_bytes], use_bin_type=True))
    for tx_id, receipt in c.receipts:
        wb.put(P_RECEIPT + tx_id, receipt)
    for key, value in c.state_changes.items():
        if value is None:
            wb.delete(P_STATE + key)
        else:
            wb.put(P_STATE + key, value)
    for h, node in c.smt_nodes.items():
        wb.put(P_NODE + h, node)
    for position, (account_id, tx_id) in enumerate(c.history):
        wb.put(_history_key(account_id, c.height, position), tx_id)
    for key, value in c.extra.items():
        wb.put(P_EXTRA + key, value)
    wb.put(META_HEAD, msgpack.packb([c.height, c.block_hash, c.state_root], use_bin_type=True))


class _Group:
    """What the earlier commits of one commit_blocks call write that later ones must not repeat or may refer to."""

    __slots__ = ("block_hashes", "smt_nodes", "tx_ids")

    def __init__(self) -> None:
        self.block_hashes: set[bytes] = set()
        self.tx_ids: set[bytes] = set()
        self.smt_nodes: list[Mapping[bytes, bytes]] = []

    def add(self, c: BlockCommit) -> None:
        self.block_hashes.add(c.block_hash)
        self.tx_ids.update(tx_id for tx_id, _ in c.txs)
        self.smt_nodes.append(c.smt_nodes)



def _history_key(account_id: str, height: int, position: int) -> bytes:
    return _account_prefix(account_id) + _U64.pack(height) + _U32.pack(position)


def _prefix_end(prefix: bytes) -> bytes:
    """The smallest key greater than every key starting with `prefix` (prefix starts with a keyspace byte < 0xff)."""
    stripped = prefix.rstrip(b"\xff")
    assert stripped, "keyspace prefixes are below 0xff"
    return stripped[:-1] + bytes((stripped[-1] + 1,))


def _is_bytes(x: object, max_len: int | None = None, exact: int | None = None) -> bool:
    if not isinstance(x, bytes):
        return False
    if exact is not None and len(x) != exact:
        return False
    return max_len is None or len(x) <= max_len


class LedgerStore:
    """The node's LevelDB store. Open with LedgerStore.open(path); one process at a time (LevelDB's lock)."""

    def __init__(self, db: Any, path: str) -> None:
        self._db = db
        self.path = path
        self._head = self._read_head()
        # Tree nodes are immutable and content-addressed, so caching them is always correct. The cache keeps the
        # newest nodes (each block rewrites the upper levels, which every update and proof reads).
        self._node_cache: dict[bytes, bytes] = {}
        # Serializes the writers of tree nodes: commit_block and prune_state_history.
        self._write_lock = threading.Lock()
        raw = db.get(META_PRUNED_BELOW)
        self._pruned_below = 0 if raw is None else _U64.unpack(raw)[0]
        raw = db.get(META_BASE)
        self._base = 0 if raw is None else _U64.unpack(raw)[0]

    @classmethod
    def open(cls, path: str, *, allow_unfinished_install: bool = False) -> LedgerStore:
        """Open (or create) the store at `path`. A store whose snapshot install did not finish is refused
        (StoreCorruptError) unless `allow_unfinished_install` (state sync, which starts the install over)."""
        try:
            os.makedirs(path, exist_ok=True)
            db = plyvel.DB(
                path,
                create_if_missing=True,
                bloom_filter_bits=10,
                write_buffer_size=WRITE_BUFFER_BYTES,
                lru_cache_size=BLOCK_CACHE_BYTES,
                compression=BLOCK_COMPRESSION,
            )
        except (plyvel.Error, OSError) as exc:
            raise StoreOpenError(codes.STORE_OPEN_FAILED, f"cannot open the ledger store at {path}: {exc}") from exc
        try:
            version = db.get(META_VERSION)
            if version is None:
                with db.iterator(include_value=False) as it:
                    empty = next(it, None) is None
                if not empty:
                    raise StoreVersionError(codes.STORE_FORMAT_VERSION, f"{path} holds data without a format version: not a ledger store")
                db.put(META_VERSION, _U32.pack(FORMAT_VERSION), sync=True)
            elif len(version) != 4 or _U32.unpack(version)[0] != FORMAT_VERSION:
                found = _U32.unpack(version)[0] if len(version) == 4 else version.hex()
                raise StoreVersionError(
                    codes.STORE_FORMAT_VERSION, f"{path} has store format version {found}, this node reads version {FORMAT_VERSION}; "
                    "use a matching node version or resync into an empty directory"
                )
            store = cls(db, path)
            store._check_head(allow_unfinished_install)
            return store
        except BaseException:
            db.close()
            raise

    def close(self) -> None:
        if not self._db.closed:
            self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- head ---------------------------------------------------------------------------------------------------

    def _read_head(self) -> Head | None:
        raw = self._db.get(META_HEAD)
        if raw is None:
            return None
        try:
            height, block_hash, state_root = msgpack.unpackb(raw)
        except (ValueError, TypeError, msgpack.UnpackException) as exc:
            raise StoreCorruptError(codes.STORE_CORRUPT, f"{self.path}: the head record is unreadable") from exc
        if not (type(height) is int and _is_bytes(block_hash, exact=32) and _is_bytes(state_root, exact=32)):
            raise StoreCorruptError(codes.STORE_CORRUPT, f"{self.path}: the head record is malformed")
        return Head(height, block_hash, state_root)

    def _check_head(self, allow_unfinished_install: bool = False) -> None:
        head = self._head
        if head is None and self._db.get(META_INSTALL) is not None and not allow_unfinished_install:
            raise StoreCorruptError(codes.STORE_CORRUPT, f"{self.path}: a snapshot install did not finish; start the "
                                    "node with state sync again (it starts over) or use an empty data directory")
        if head is None:
            installing = self._db.get(META_INSTALL) is not None
            if not installing and (self._db.get(_height_key(P_BLOCK, 0)) is not None
                                   or self._db.get(_height_key(P_BLOCK, 1)) is not None):
                raise StoreCorruptError(codes.STORE_CORRUPT, f"{self.path}: blocks are stored but there is no head")
            return
        if self.get_block(head.height) is None or self.get_block(head.height + 1) is not None:
            raise StoreCorruptError(codes.STORE_CORRUPT, f"{self.path}: the head (height {head.height}) is not the last stored block")
        if self.get_block_height(head.block_hash) != head.height or self.state_root_at(head.height) != head.state_root:
            raise StoreCorruptError(codes.STORE_CORRUPT, f"{self.path}: the head disagrees with the stored block {head.height}")
        if head.state_root != EMPTY_ROOT and self.get_node(head.state_root) is None:
            raise StoreCorruptError(codes.STORE_CORRUPT, f"{self.path}: the head's state root node is missing")

    def head(self) -> Head | None:
        """The last committed block, or None for an empty store."""
        return self._head

    # -- commit -------------------------------------------------------------------------------------------------

    def _check_commit(self, c: BlockCommit, head: Head | None, group: _Group) -> None:
        """Refuse a commit that does not follow `head` or repeats what the store, or an earlier commit of the same
        `group`, holds."""
        if type(c.height) is not int or not 0 <= c.height <= MAX_HEIGHT:
            raise InvalidCommitError(codes.INVALID_BLOCK_COMMIT, "height must be a non-negative integer")
        if head is None:
            if c.height not in (0, 1):
                raise InvalidCommitError(codes.INVALID_BLOCK_COMMIT, f"the first block must have height 0 or 1, got {c.height}")
        elif c.height != head.height + 1:
            raise InvalidCommitError(codes.INVALID_BLOCK_COMMIT, f"block height {c.height} does not follow head {head.height}")
        if not _is_bytes(c.block_hash, exact=32) or not _is_bytes(c.state_root, exact=32):
            raise InvalidCommitError(codes.INVALID_BLOCK_COMMIT, "block_hash and state_root must be 32 bytes")
        if not _is_bytes(c.block_bytes):
            raise InvalidCommitError(codes.INVALID_BLOCK_COMMIT, "block_bytes must be bytes")
        if c.block_hash in group.block_hashes or self._db.get(P_BLOCK_HASH + c.block_hash) is not None:
            raise InvalidCommitError(codes.INVALID_BLOCK_COMMIT, f"block hash {c.block_hash.hex()} is already stored")
        if len(c.txs) > MAX_BLOCK_TXS:
            raise InvalidCommitError(codes.INVALID_BLOCK_COMMIT, f"at most {MAX_BLOCK_TXS} transactions per block")
        seen: set[bytes] = set()
        for tx_id, tx_bytes in c.txs:
            if not _is_bytes(tx_id, max_len=MAX_TX_ID_BYTES) or not tx_id or not _is_bytes(tx_bytes):
                raise InvalidCommitError(codes.INVALID_BLOCK_COMMIT, "tx ids are 1..64 bytes and tx bytes are bytes")
            if tx_id in seen or tx_id in group.tx_ids or self._db.get(P_TX + tx_id) is not None:
                raise InvalidCommitError(codes.INVALID_BLOCK_COMMIT, f"transaction {tx_id.hex()} is already stored")
            seen.add(tx_id)
        for tx_id, receipt in c.receipts:
            if tx_id not in seen or not _is_bytes(receipt):
                raise InvalidCommitError(codes.INVALID_BLOCK_COMMIT, "every receipt must belong to a transaction of this block")
        # Keys and values of state_changes, smt_nodes and extra must be bytes: plyvel refuses anything else while
        # the batch is built, and commit_block turns that into InvalidCommitError before anything is written.
        if any(len(h) != 32 for h in c.smt_nodes):
            raise InvalidCommitError(codes.INVALID_BLOCK_COMMIT, "smt nodes are keyed by 32-byte hashes")
        if (c.state_root != EMPTY_ROOT and c.state_root not in c.smt_nodes
                and not any(c.state_root in nodes for nodes in group.smt_nodes)
                and self.get_node(c.state_root) is None):
            raise InvalidCommitError(codes.INVALID_BLOCK_COMMIT, "state_root is neither among the new nodes nor stored")
        for account_id, tx_id in c.history:
            if not isinstance(account_id, str) or tx_id not in seen:
                raise InvalidCommitError(codes.INVALID_BLOCK_COMMIT, "history entries are (account_id str, tx_id of this block)")
            _account_prefix(account_id)

    def commit_block(self, commit: BlockCommit) -> None:
        """Write a whole block atomically (one WriteBatch, sync=True).

        Heights: the first block of a store has height 0 (a genesis block) or 1; every later block head.height+1.
        """
        self.commit_blocks((commit,))

    def commit_blocks(self, commits: Sequence[BlockCommit]) -> None:
        """Write consecutive blocks atomically, all in ONE WriteBatch written with sync=True: after a crash the store
        holds all of them or none (a group commit: one fsync for the group instead of one per block). Each commit
        is checked as commit_block checks it, against the head the group's earlier commits make; InvalidCommitError
        on the first refused one, and nothing is written. At most MAX_GROUP_COMMIT_BLOCKS commits."""
        if not commits:
            return
        if len(commits) > MAX_GROUP_COMMIT_BLOCKS:
            raise InvalidCommitError(codes.INVALID_BLOCK_COMMIT,
                                     f"at most {MAX_GROUP_COMMIT_BLOCKS} blocks are committed in one batch")
        with self._write_lock:
            group = _Group()
            head = self._head
            for i, c in enumerate(commits):
                self._check_commit(c, head, group)
                head = Head(c.height, c.block_hash, c.state_root)
                if i + 1 < len(commits):  # what the later ones must not repeat (nothing to index after the last)
                    group.add(c)
            wb = self._db.write_batch(sync=True)
            try:
                for c in commits:
                    _put_commit(wb, c)
            except TypeError as exc:
                wb.clear()
                raise InvalidCommitError(codes.INVALID_BLOCK_COMMIT,
                                         f"block commit holds a non-bytes key or value: {exc}") from exc
            except BaseException:
                wb.clear()
                raise
            wb.write()
            self._head = head
            for c in commits:
                self._cache_nodes(c.smt_nodes)

    def _cache_nodes(self, nodes: Mapping[bytes, bytes]) -> None:
        self._node_cache.update(nodes)
        if len(self._node_cache) > NODE_CACHE_ENTRIES:
            self._trim_cache()

    def _trim_cache(self) -> None:
        """Drop the oldest entries down to NODE_CACHE_ENTRIES (insertion order: oldest written or read first)."""
        cache = self._node_cache
        excess = len(cache) - NODE_CACHE_ENTRIES
        if excess > 0:
            # Readers on other threads (a node executes blocks off its loop) may trim at the same time: pop.
            for h in list(itertools.islice(cache, excess)):
                cache.pop(h, None)

    # -- reads --------------------------------------------------------------------------------------------------

    def get_state(self, key: bytes) -> bytes | None:
        """The latest committed value of a state key (flat keyspace, no tree walk)."""
        return self._db.get(P_STATE + key)

    def iter_state(self, prefix: bytes = b"", *, after: bytes | None = None) -> Iterator[tuple[bytes, bytes]]:
        """The latest (key, value) pairs whose key starts with `prefix`, in key order; with `after`, only keys
        strictly greater than it (pagination: pass the last key seen). Close the generator when stopping early."""
        n = len(P_STATE)
        if after is None or after < prefix:
            it = self._db.iterator(prefix=P_STATE + prefix)
        else:
            it = self._db.iterator(start=P_STATE + after, include_start=False, stop=_prefix_end(P_STATE + prefix))
        with it:
            for k, v in it:
                yield k[n:], v

    def recompute_state_root(self) -> bytes:
        """The root of the latest-state keyspace, rebuilt from scratch in memory (an integrity check: it must equal
        head().state_root). The derived replay index `T` is left out, as the tree leaves it out
        (ledger.state_keys.tree_entries). Costs one bulk tree build: about 10 s and 1 GB per million keys."""
        changes: dict[bytes, bytes | None] = dict(tree_entries(self.iter_state()))
        return SparseMerkleTree(MemoryNodes()).update(changes).root

    def get_node(self, h: bytes) -> bytes | None:
        """A state-tree node by hash: makes the store a node reader for SparseMerkleTree."""
        node = self._node_cache.get(h)
        if node is None:
            node = self._db.get(P_NODE + h)
            if node is not None:
                self._node_cache[h] = node
                if len(self._node_cache) > NODE_CACHE_ENTRIES + NODE_CACHE_SLACK:
                    self._trim_cache()
        return node

    def get_block(self, height: int) -> bytes | None:
        if type(height) is not int or not 0 <= height <= MAX_HEIGHT:
            return None
        return self._db.get(_height_key(P_BLOCK, height))

    def get_block_height(self, block_hash: bytes) -> int | None:
        raw = self._db.get(P_BLOCK_HASH + block_hash)
        return None if raw is None else _U64.unpack(raw)[0]

    def block_hashes_from(self, start: bytes, limit: int) -> list[tuple[bytes, int]]:
        """Up to `limit` (block_hash, height) pairs whose hash is >= `start`, in hash order: one seek in the
        block-hash index (a lookup by hash prefix reads the matches from the front of this list)."""
        out: list[tuple[bytes, int]] = []
        if limit <= 0:
            return out
        with self._db.iterator(start=P_BLOCK_HASH + start, stop=_prefix_end(P_BLOCK_HASH)) as it:
            for key, raw in it:
                out.append((key[len(P_BLOCK_HASH) :], _U64.unpack(raw)[0]))
                if len(out) == limit:
                    break
        return out

    def get_tx(self, tx_id: bytes) -> tuple[int, int, bytes] | None:
        """(height, index in block, tx bytes) or None."""
        raw = self._db.get(P_TX + tx_id)
        if raw is None:
            return None
        height, index, tx_bytes = msgpack.unpackb(raw)
        return height, index, tx_bytes

    def get_receipt(self, tx_id: bytes) -> bytes | None:
        return self._db.get(P_RECEIPT + tx_id)

    def account_history(
        self, account_id: str, *, after: tuple[int, int] | None = None, limit: int
    ) -> list[HistoryEntry]:
        """An account's history, newest first. Pass the last entry's `.cursor` as `after` for the next page.

        `after=(height, position)` returns entries strictly older than that cursor. limit: 1..1000.
        """
        if type(limit) is not int or not 1 <= limit <= MAX_HISTORY_PAGE:
            raise StoreError(codes.STORE_INVALID_ARGUMENT, f"limit must be an integer in 1..{MAX_HISTORY_PAGE}")
        prefix = _account_prefix(account_id)
        if after is None:
            it = self._db.iterator(prefix=prefix, reverse=True)
        else:
            if not (isinstance(after, tuple) and len(after) == 2 and all(type(x) is int for x in after)):
                raise StoreError(codes.STORE_INVALID_ARGUMENT, "cursor must be a (height, position) tuple of integers")
            height, position = after
            if not (0 <= height <= MAX_HEIGHT and 0 <= position < 1 << 32):
                raise StoreError(codes.STORE_INVALID_ARGUMENT, "cursor out of range")
            stop = prefix + _U64.pack(height) + _U32.pack(position)
            it = self._db.iterator(start=prefix, stop=stop, reverse=True)
        out: list[HistoryEntry] = []
        n = len(prefix)
        with it:
            for k, tx_id in it:
                out.append(HistoryEntry(_U64.unpack_from(k, n)[0], _U32.unpack_from(k, n + 8)[0], tx_id))
                if len(out) == limit:
                    break
        return out

    def state_root_at(self, height: int) -> bytes | None:
        if type(height) is not int or not 0 <= height <= MAX_HEIGHT:
            return None
        return self._db.get(_height_key(P_ROOT, height))

    def _root_at(self, height: int) -> bytes:
        if type(height) is int and 0 <= height < self._base:
            raise PrunedHeightError(codes.HEIGHT_PRUNED, f"height {height} was pruned (kept from {self._base})")
        root = self.state_root_at(height)
        if root is None:
            raise UnknownHeightError(codes.UNKNOWN_HEIGHT, f"no block at height {height}")
        if height < self._pruned_below:
            raise PrunedHeightError(codes.HEIGHT_PRUNED, f"the state of height {height} was pruned (kept from {self._pruned_below})")
        return root

    def base_height(self) -> int:
        """The lowest height whose block is stored (0: all of them). Above it everything is kept; below it nothing
        (a store installed from a snapshot at that height, or blocks pruned by prune_blocks)."""
        return self._base

    # -- state sync: installing a snapshot -----------------------------------------------------------------------

    def state_view(self) -> StateView:
        """The latest state as of now, unaffected by later commits (what a snapshot is taken from)."""
        with self._write_lock:
            return StateView(self._db.snapshot(), self._head)

    def begin_snapshot_install(self, height: int) -> None:
        """Start installing a snapshot of `height` into an empty store (or one whose earlier install did not finish:
        its partial state is deleted first). Until finish_snapshot_install the store refuses to open normally."""
        if self._head is not None:
            raise StoreError(codes.STORE_INVALID_ARGUMENT, "a snapshot is installed only into an empty store")
        if type(height) is not int or not 1 <= height <= MAX_HEIGHT:
            raise StoreError(codes.STORE_INVALID_ARGUMENT, "a snapshot height is 1..2^63-1")
        with self._write_lock:
            for prefix in (P_STATE, P_NODE, P_EXTRA, P_BLOCK, P_BLOCK_HASH, P_ROOT):
                wb = self._db.write_batch()
                with self._db.iterator(prefix=prefix, include_value=False) as it:
                    for k in it:
                        wb.delete(k)
                wb.write()
            self._db.put(META_INSTALL, _U64.pack(height), sync=True)
            self._node_cache = {}

    def install_chunk(self, pairs: Sequence[tuple[bytes, bytes]], smt_nodes: Mapping[bytes, bytes]) -> None:
        """Write one verified chunk: its latest values, the replay index `T` its replay buckets derive (a snapshot
        carries only what the tree holds: ledger.state_keys.replay_index_entries) and its tree nodes (not synced: the
        finish is). A replay bucket that does not decode writes nothing: StoreError STORE_INVALID_ARGUMENT."""
        if self._db.get(META_INSTALL) is None:
            raise StoreError(codes.STORE_INVALID_ARGUMENT, "no snapshot install in progress")
        try:
            derived = replay_index_entries(pairs)
        except DecodeError as exc:
            raise StoreError(codes.STORE_INVALID_ARGUMENT, f"a replay bucket of the chunk does not decode: {exc}") from None
        with self._write_lock:
            wb = self._db.write_batch()
            for key, value in pairs:
                wb.put(P_STATE + key, value)
            for key, value in derived:
                wb.put(P_STATE + key, value)
            for h, node in smt_nodes.items():
                wb.put(P_NODE + h, node)
            wb.write()

    def finish_snapshot_install(self, s: SnapshotInstall) -> None:
        """Make the installed state the store's head at `s.height`, in one synced batch: the block, its state root,
        the genesis root, the records in `s.extra`; heights below become pruned (base_height)."""
        raw = self._db.get(META_INSTALL)
        if raw is None or _U64.unpack(raw)[0] != s.height:
            raise StoreError(codes.STORE_INVALID_ARGUMENT, f"no snapshot install of height {s.height} in progress")
        with self._write_lock:
            wb = self._db.write_batch(sync=True)
            for h, node in s.smt_nodes.items():
                wb.put(P_NODE + h, node)
            if s.state_root != EMPTY_ROOT and s.state_root not in s.smt_nodes \
                    and self._db.get(P_NODE + s.state_root) is None:
                wb.clear()
                raise StoreError(codes.STORE_INVALID_ARGUMENT, "the installed state lacks its root node")
            hkey = _U64.pack(s.height)
            wb.put(P_BLOCK + hkey, s.block_bytes)
            wb.put(P_BLOCK_HASH + s.block_hash, hkey)
            wb.put(P_ROOT + hkey, s.state_root)
            wb.put(_height_key(P_ROOT, 0), s.genesis_root)
            for key, value in s.extra.items():
                wb.put(P_EXTRA + key, value)
            wb.put(META_PRUNED_BELOW, hkey)
            wb.put(META_BASE, hkey)
            wb.delete(META_INSTALL)
            head = Head(s.height, s.block_hash, s.state_root)
            wb.put(META_HEAD, msgpack.packb([head.height, head.block_hash, head.state_root], use_bin_type=True))
            wb.write()
            self._head = head
            self._base = self._pruned_below = s.height

    # -- pruning blocks ------------------------------------------------------------------------------------------

    def prune_blocks(self, keep_from: int, extra_prefixes: Sequence[bytes] = ()) -> BlockPruneReport:
        """Delete the blocks below `keep_from` with their hash index, transactions, receipts, history entries, state
        roots and the node-layer records keyed `prefix + height (u64)` for each of `extra_prefixes`; reads below
        it then raise PrunedHeightError. The head is always kept. The new base is stored (synced) first, so a crash
        mid-way leaves only garbage that the next run removes. Cost: one scan of the kept transactions and history."""
        with self._write_lock:
            head = self._head
            if head is None or type(keep_from) is not int or not keep_from <= head.height:
                raise StoreError(codes.STORE_INVALID_ARGUMENT, "keep_from must not exceed the head height")
            old = self._base
            if keep_from <= old:
                return BlockPruneReport(old, 0, 0)
            self._db.put(META_BASE, _U64.pack(keep_from), sync=True)
            self._base = keep_from
            if self._pruned_below < keep_from:
                self._db.put(META_PRUNED_BELOW, _U64.pack(keep_from), sync=True)
                self._pruned_below = keep_from
            stop = _U64.pack(keep_from)
            blocks = txs = 0
            wb = self._db.write_batch()
            with self._db.iterator(start=P_BLOCK, stop=P_BLOCK + stop, include_value=False) as it:
                for k in it:
                    wb.delete(k)
                    blocks += 1
            with self._db.iterator(start=P_ROOT + _U64.pack(1), stop=P_ROOT + stop, include_value=False) as it:
                for k in it:  # the genesis root (height 0) stays: it binds the store to its genesis
                    wb.delete(k)
            for prefix in extra_prefixes:
                with self._db.iterator(start=P_EXTRA + prefix, stop=P_EXTRA + prefix + stop,
                                       include_value=False) as it:
                    for k in it:
                        wb.delete(k)
            with self._db.iterator(prefix=P_BLOCK_HASH) as it:
                for k, v in it:
                    if _U64.unpack(v)[0] < keep_from:
                        wb.delete(k)
            wb.write()
            wb = self._db.write_batch()
            with self._db.iterator(prefix=P_TX) as it:
                for k, v in it:
                    if msgpack.unpackb(v)[0] < keep_from:
                        wb.delete(k)
                        wb.delete(P_RECEIPT + k[1:])
                        txs += 1
                        if txs % PRUNE_BATCH == 0:
                            wb.write()
                            wb = self._db.write_batch()
            wb.write()
            wb = self._db.write_batch()
            with self._db.iterator(prefix=P_HISTORY, include_value=False) as it:
                for k in it:
                    n = 3 + _U16.unpack_from(k, 1)[0]
                    if _U64.unpack_from(k, n)[0] < keep_from:
                        wb.delete(k)
            wb.write()
            return BlockPruneReport(keep_from, blocks, txs)

    def pruned_below(self) -> int:
        """Heights below this have no state tree any more (0: nothing pruned). Blocks, txs and roots stay."""
        return self._pruned_below

    def prune_state_history(self, keep_from: int) -> PruneReport:
        """Delete the tree nodes that only the states of heights below `keep_from` use (mark and sweep).

        Afterwards get_state_at/prove refuse those heights (PrunedHeightError); blocks, transactions, receipts,
        history and state roots are kept. Commits wait while it runs; memory: one set of the live node hashes.
        Crash-safe: the new lower bound is stored (synced) before anything is deleted, and running it again
        finishes the job.
        """
        with self._write_lock:
            head = self._head
            if head is None or type(keep_from) is not int or not self._pruned_below <= keep_from <= head.height:
                raise StoreError(codes.STORE_INVALID_ARGUMENT, "keep_from must lie between pruned_below() and the head height")
            self._db.put(META_PRUNED_BELOW, _U64.pack(keep_from), sync=True)
            self._pruned_below = keep_from
            live: set[bytes] = set()
            stack: list[bytes] = []
            for height in range(keep_from, head.height + 1):
                root = self.state_root_at(height)
                if root is None:
                    raise StoreCorruptError(codes.STORE_CORRUPT, f"{self.path}: no state root for stored height {height}")
                if root != EMPTY_ROOT:
                    stack.append(root)
            get = self._db.get
            while stack:
                h = stack.pop()
                if h in live:
                    continue
                node = get(P_NODE + h)
                if node is None:
                    raise StoreCorruptError(codes.STORE_CORRUPT, f"{self.path}: tree node {h.hex()} of a kept height is missing")
                live.add(h)
                if node[0] == INTERNAL_TAG:
                    for child in (node[1:33], node[33:65]):
                        if child != EMPTY_ROOT and child not in live:
                            stack.append(child)
            deleted = 0
            wb = self._db.write_batch()
            with self._db.iterator(prefix=P_NODE, include_value=False) as it:
                for k in it:
                    if k[1:] not in live:
                        wb.delete(k)
                        deleted += 1
                        if deleted % PRUNE_BATCH == 0:
                            wb.write()
                            wb = self._db.write_batch()
            wb.write()
            self._node_cache = {h: n for h, n in list(self._node_cache.items()) if h in live}
            return PruneReport(keep_from, len(live), deleted)

    def get_state_at(self, key: bytes, height: int) -> bytes | None:
        """The value of `key` after block `height`, read through the state tree. Unknown height: UnknownHeightError;
        a key the tree does not hold (the derived replay index `T`): StoreError STORE_INVALID_ARGUMENT."""
        _require_in_tree(key)
        return SparseMerkleTree(self, self._root_at(height)).get(key)

    def prove(self, key: bytes, height: int) -> tuple[bytes | None, StateProof]:
        """(value or None, proof) for `key` against state_root_at(height). Unknown height: UnknownHeightError; a key
        the tree does not hold (the derived replay index `T`, whose ids the replay buckets `e` prove): StoreError
        STORE_INVALID_ARGUMENT, never a proof of absence."""
        _require_in_tree(key)
        return SparseMerkleTree(self, self._root_at(height)).get_with_proof(key)

    def get_extra(self, key: bytes) -> bytes | None:
        return self._db.get(P_EXTRA + key)

    def put_extra(self, key: bytes, value: bytes, sync: bool = True) -> None:
        if not _is_bytes(key) or not _is_bytes(value):
            raise StoreError(codes.STORE_INVALID_ARGUMENT, "extra keys and values are bytes")
        self._db.put(P_EXTRA + key, value, sync=sync)
