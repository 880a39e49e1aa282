"""Authenticated state: a compact sparse Merkle tree over 256-bit paths.

The tree is specified in docs/state-proofs.md; this file is its reference implementation.

- A key's path is sha256(key): 256 bits, most significant bit of byte 0 first (bit 0 = root level).
- An empty subtree hashes to EMPTY_HASH (32 zero bytes). The empty tree's root is EMPTY_ROOT == EMPTY_HASH.
- A subtree holding exactly one leaf is that leaf ("compact"): the leaf sits at its shortest unique prefix.
  leaf_hash     = sha256(0x00 || path || sha256(value))      (does not depend on the depth, so collapsing is free)
- A subtree holding two or more leaves is an internal node with two children:
  internal_hash = sha256(0x01 || left_hash || right_hash)
- Nodes are stored content-addressed (hash -> node bytes) and never change, so every past root stays readable:
  leaf node bytes     = 0x00 || path (32) || value (the value itself, so `get` works at any root)
  internal node bytes = 0x01 || left_hash (32) || right_hash (32)

`SparseMerkleTree.update` is pure: one pass over the sorted changed paths, sharing the upper levels, returning the
new root and the new nodes for the caller to persist. Proofs list the non-empty siblings from the root down, with a
bitmap of which levels have a non-empty sibling, plus the terminal of the walk (empty subtree, the key's own leaf, or
another leaf whose path shares the walked prefix).
"""

from __future__ import annotations

import hashlib
import json
import re
from bisect import bisect_left
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import msgpack

from ledger import codes
from ledger.errors import LedgerError
from ledger.schema import MAX_PROOF_BYTES, MAX_PROOF_JSON_CHARS, MAX_STATE_KEY_BYTES, MAX_STATE_VALUE_BYTES

__all__ = [
    "EMPTY_HASH",
    "EMPTY_ROOT",
    "NATIVE_AVAILABLE",
    "PATH_BITS",
    "PROOF_VERSION",
    "MemoryNodes",
    "MissingNodeError",
    "NodeReader",
    "OverlayNodes",
    "ProofLeaf",
    "SmtError",
    "SmtUpdate",
    "SparseMerkleTree",
    "StateProof",
    "StateProofError",
    "internal_hash",
    "key_path",
    "leaf_hash",
    "value_hash",
    "verify_proof",
]

PATH_BITS = 256
HASH_BYTES = 32
EMPTY_HASH = bytes(HASH_BYTES)
EMPTY_ROOT = EMPTY_HASH
LEAF_TAG = 0x00
INTERNAL_TAG = 0x01
_LEAF_PREFIX = b"\x00"
_INTERNAL_PREFIX = b"\x01"
INTERNAL_NODE_BYTES = 1 + 2 * HASH_BYTES

# Changes in one update() call: a storage bound of the tree (a block's changes are far fewer).
MAX_CHANGES_PER_UPDATE = 4_000_000

PROOF_VERSION = 1
_LOWER_HEX = re.compile(r"(?:[0-9a-f]{2})*")

_sha256 = hashlib.sha256

# The native fast path of SparseMerkleTree.update (setup.py builds it when a C compiler and OpenSSL's headers are
# present); absent, the pure-Python reference below does the same work.
try:
    from ledger import _smt_native as _native
except ImportError:  # not built: pure Python
    _native = None

NATIVE_AVAILABLE = _native is not None


class SmtError(LedgerError, ValueError):
    """An error of the authenticated-state layer (codes 720 – 729)."""


class StateProofError(SmtError):
    """Proof bytes or JSON that are malformed or not in canonical form (INVALID_STATE_PROOF)."""


class MissingNodeError(SmtError):
    """The node reader lacks a node the root refers to: unknown root or damaged store (MISSING_SMT_NODE)."""


class InvalidStateChangeError(SmtError):
    """A key or value handed to update() breaks the limits: type, size (INVALID_STATE_CHANGE)."""


class NodeReader(Protocol):
    def get_node(self, h: bytes, /) -> bytes | None: ...


# ---------------------------------------------------------------------------------------------------------------
# Hash functions


def key_path(key: bytes) -> bytes:
    """The 256-bit path of a key: sha256(key)."""
    return _sha256(key).digest()


def value_hash(value: bytes) -> bytes:
    return _sha256(value).digest()


def leaf_hash(path: bytes, vhash: bytes) -> bytes:
    """sha256(0x00 || path || value_hash)."""
    return _sha256(_LEAF_PREFIX + path + vhash).digest()


def internal_hash(left: bytes, right: bytes) -> bytes:
    """sha256(0x01 || left || right); never called with two empty children."""
    return _sha256(_INTERNAL_PREFIX + left + right).digest()


def _path_bit(path: bytes, depth: int) -> int:
    return (path[depth >> 3] >> (7 - (depth & 7))) & 1


def _common_prefix_bits(a: bytes, b: bytes) -> int:
    x = int.from_bytes(a, "big") ^ int.from_bytes(b, "big")
    return PATH_BITS - x.bit_length()


# ---------------------------------------------------------------------------------------------------------------
# Node stores


class MemoryNodes:
    """A dict-backed node store (tests, benchmarks, a block's pending nodes)."""

    __slots__ = ("_nodes", "get_node")

    def __init__(self, nodes: Mapping[bytes, bytes] | None = None) -> None:
        self._nodes: dict[bytes, bytes] = dict(nodes) if nodes else {}
        # The dict's own lookup: a tree update reads thousands of nodes per block, without a Python frame each.
        self.get_node: Callable[[bytes], bytes | None] = self._nodes.get

    def put_nodes(self, nodes: Mapping[bytes, bytes]) -> None:
        self._nodes.update(nodes)

    def __len__(self) -> int:
        return len(self._nodes)


class OverlayNodes:
    """A node reader over pending node maps (newest first) and a base reader: reads a tree whose latest updates are
    not persisted yet (e.g. a proposed block on top of an uncommitted one)."""

    __slots__ = ("_base", "_layers")

    def __init__(self, base: NodeReader, *layers: Mapping[bytes, bytes]) -> None:
        self._base = base
        self._layers = layers

    def get_node(self, h: bytes) -> bytes | None:
        for layer in self._layers:
            node = layer.get(h)
            if node is not None:
                return node
        return self._base.get_node(h)


@dataclass(frozen=True, slots=True)
class SmtUpdate:
    """The result of a batch update: the new root and the nodes created (hash -> node bytes) to persist."""

    root: bytes
    nodes: dict[bytes, bytes]


# Kinds of a subtree hash returned by the update recursion. None = not known without reading the node.
_EMPTY = 0
_LEAF = 1
_INTERNAL = 2

# One changed or existing leaf during an update: (path as int, path bytes, value or None, known leaf hash or None).
_Item = tuple[int, bytes, "bytes | None", "bytes | None"]


class SparseMerkleTree:
    """A view of the tree at `root` over a node reader. Immutable: update() returns a new root and new nodes."""

    __slots__ = ("_nodes", "root")

    def __init__(self, nodes: NodeReader, root: bytes = EMPTY_ROOT) -> None:
        assert isinstance(root, bytes) and len(root) == HASH_BYTES, "root must be 32 bytes"
        self._nodes = nodes
        self.root = root

    # -- reads -------------------------------------------------------------------------------------------------

    def _load(self, h: bytes) -> bytes:
        node = self._nodes.get_node(h)
        if node is None:
            raise MissingNodeError(codes.MISSING_SMT_NODE, f"node {h.hex()} is not in the node store")
        if node[0] == INTERNAL_TAG:
            assert len(node) == INTERNAL_NODE_BYTES, "internal node must be 65 bytes"
        else:
            assert node[0] == LEAF_TAG and len(node) >= 1 + HASH_BYTES, "malformed leaf node"
        return node

    def get(self, key: bytes, root: bytes | None = None) -> bytes | None:
        """The value of `key` at `root` (default: this tree's root), or None when absent."""
        path = key_path(key)
        h = self.root if root is None else root
        depth = 0
        while h != EMPTY_HASH:
            node = self._load(h)
            if node[0] == LEAF_TAG:
                return node[1 + HASH_BYTES :] if node[1 : 1 + HASH_BYTES] == path else None
            assert depth < PATH_BITS, "tree deeper than the path length"
            h = node[1 + HASH_BYTES :] if _path_bit(path, depth) else node[1 : 1 + HASH_BYTES]
            depth += 1
        return None

    def prove(self, key: bytes, root: bytes | None = None) -> StateProof:
        """An inclusion proof (key present) or a non-inclusion proof (key absent) against `root`."""
        return self.get_with_proof(key, root)[1]

    def get_with_proof(self, key: bytes, root: bytes | None = None) -> tuple[bytes | None, StateProof]:
        """(value or None, proof) in one walk: what a state query at a height answers."""
        path = key_path(key)
        found: bytes | None = None
        h = self.root if root is None else root
        depth = 0
        siblings: list[bytes] = []
        bits = 0
        other: ProofLeaf | None = None
        while h != EMPTY_HASH:
            node = self._load(h)
            if node[0] == LEAF_TAG:
                leaf_path = node[1 : 1 + HASH_BYTES]
                if leaf_path != path:
                    other = ProofLeaf(leaf_path, value_hash(node[1 + HASH_BYTES :]))
                else:
                    found = node[1 + HASH_BYTES :]
                break
            assert depth < PATH_BITS, "tree deeper than the path length"
            left = node[1 : 1 + HASH_BYTES]
            right = node[1 + HASH_BYTES :]
            if _path_bit(path, depth):
                h, sibling = right, left
            else:
                h, sibling = left, right
            bits <<= 1
            if sibling != EMPTY_HASH:
                bits |= 1
                siblings.append(sibling)
            depth += 1
        nbytes = (depth + 7) // 8
        bitmap = (bits << (nbytes * 8 - depth)).to_bytes(nbytes, "big") if depth else b""
        return found, StateProof(depth=depth, bitmap=bitmap, siblings=tuple(siblings), other_leaf=other)

    # -- batch update ------------------------------------------------------------------------------------------

    def update(self, changes: Mapping[bytes, bytes | None], *, native: bool | None = None) -> SmtUpdate:
        """Apply all changes (None deletes) in one pass. Pure: returns the new root and the nodes it created.

        native=None (default) runs the native fast path (ledger._smt_native) when it is built, else this module's
        pure-Python reference; False forces the reference; True requires the native path. Both give the same root
        and the same nodes (tests/ledger/test_smt_native.py)."""
        if len(changes) > MAX_CHANGES_PER_UPDATE:
            raise InvalidStateChangeError(codes.INVALID_STATE_CHANGE, f"at most {MAX_CHANGES_PER_UPDATE} changes per update")
        pairs = list(changes.items())
        if native is None:
            native = _native is not None
        if native:
            if _native is None:
                raise RuntimeError("the native tree update (ledger._smt_native) is not built: see README.md, Install")
            try:
                root, out = _native.update(
                    self._nodes.get_node, self.root, pairs, MAX_STATE_KEY_BYTES, MAX_STATE_VALUE_BYTES
                )
            except _native.InvalidChange as exc:
                raise InvalidStateChangeError(codes.INVALID_STATE_CHANGE, str(exc)) from None
            except _native.MissingNode as exc:
                raise MissingNodeError(codes.MISSING_SMT_NODE, str(exc)) from None
            return SmtUpdate(root, out)
        for key, value in pairs:
            if not isinstance(key, bytes) or len(key) > MAX_STATE_KEY_BYTES:
                raise InvalidStateChangeError(codes.INVALID_STATE_CHANGE, f"state keys are bytes of at most {MAX_STATE_KEY_BYTES} bytes")
            if value is not None and (not isinstance(value, bytes) or len(value) > MAX_STATE_VALUE_BYTES):
                raise InvalidStateChangeError(codes.INVALID_STATE_CHANGE, f"state values are bytes of at most {MAX_STATE_VALUE_BYTES} bytes or None")
        if not pairs:
            return SmtUpdate(self.root, {})
        items: list[_Item] = []
        for key, value in pairs:
            path = _sha256(key).digest()
            items.append((int.from_bytes(path, "big"), path, value, None))
        items.sort()
        ints = [item[0] for item in items]
        out = {}
        root, _kind = self._apply(self.root, 0, items, ints, 0, len(items), out)
        return SmtUpdate(root, out)

    def _apply(
        self, h: bytes, depth: int, items: list[_Item], ints: list[int], lo: int, hi: int, out: dict[bytes, bytes]
    ) -> tuple[bytes, int | None]:
        """Apply items[lo:hi] (all sharing the first `depth` path bits) to the subtree `h` at `depth`."""
        if hi - lo == 1:
            return self._apply_one(h, depth, items[lo], out)
        if h == EMPTY_HASH:
            leaves = [item for item in items[lo:hi] if item[2] is not None]
            return self._build(depth, leaves, [item[0] for item in leaves], 0, len(leaves), out)
        node = self._load(h)
        if node[0] == LEAF_TAG:
            existing_path = node[1 : 1 + HASH_BYTES]
            existing_int = int.from_bytes(existing_path, "big")
            leaves = [item for item in items[lo:hi] if item[2] is not None]
            i = bisect_left(ints, existing_int, lo, hi)
            if i == hi or ints[i] != existing_int:
                # The existing leaf is untouched: keep its hash, insert it in path order.
                keep: _Item = (existing_int, existing_path, node[1 + HASH_BYTES :], h)
                j = bisect_left([item[0] for item in leaves], existing_int)
                leaves.insert(j, keep)
            return self._build(depth, leaves, [item[0] for item in leaves], 0, len(leaves), out)
        assert depth < PATH_BITS, "tree deeper than the path length"
        left = node[1 : 1 + HASH_BYTES]
        right = node[1 + HASH_BYTES :]
        shift = PATH_BITS - depth
        boundary = ((ints[lo] >> shift) << shift) | (1 << (shift - 1))
        mid = bisect_left(ints, boundary, lo, hi)
        left_kind: int | None = None
        right_kind: int | None = None
        if mid > lo:
            left, left_kind = self._apply(left, depth + 1, items, ints, lo, mid, out)
        if hi > mid:
            right, right_kind = self._apply(right, depth + 1, items, ints, mid, hi, out)
        return self._join(left, left_kind, right, right_kind, out)

    def _apply_one(self, h: bytes, depth: int, item: _Item, out: dict[bytes, bytes]) -> tuple[bytes, int | None]:
        """The single-change case (every key once it is alone in its subtree): walk down, then hash back up."""
        path_int, path, value, _known = item
        get_node = self._nodes.get_node
        trail: list[tuple[int, bytes]] = []  # (bit taken, sibling hash) per level below `depth`
        cur = h
        d = depth
        node = b""
        append = trail.append
        while cur != EMPTY_HASH:
            node = get_node(cur)
            if node is None:
                raise MissingNodeError(codes.MISSING_SMT_NODE, f"node {cur.hex()} is not in the node store")
            if node[0] == LEAF_TAG:
                break
            assert len(node) == INTERNAL_NODE_BYTES and d < PATH_BITS, "malformed internal node or too deep"
            if (path_int >> (255 - d)) & 1:
                append((1, node[1:33]))
                cur = node[33:]
            else:
                append((0, node[33:]))
                cur = node[1:33]
            d += 1
        # The new subtree in place of `cur` (at depth d).
        kind: int | None
        if cur == EMPTY_HASH or node[1 : 1 + HASH_BYTES] == path:
            if value is None:
                if cur == EMPTY_HASH:
                    return h, None  # deleting an absent key: nothing changes
                new, kind = EMPTY_HASH, _EMPTY
            else:
                new = _sha256(_LEAF_PREFIX + path + _sha256(value).digest()).digest()
                out[new] = _LEAF_PREFIX + path + value
                kind = _LEAF
        else:
            if value is None:
                return h, None  # another key's leaf sits where this key would be: it is absent
            other_path = node[1 : 1 + HASH_BYTES]
            other_int = int.from_bytes(other_path, "big")
            pair: list[_Item] = [(other_int, other_path, None, cur), item]
            if other_int > path_int:
                pair.reverse()
            new, kind = self._build(d, pair, [pair[0][0], pair[1][0]], 0, 2, out)
        # Hash back up, collapsing a lone leaf upwards.
        for bit, sibling in reversed(trail):
            if sibling == EMPTY_HASH:
                if kind == _LEAF or kind == _EMPTY:
                    continue  # the lone leaf (or nothing) moves up a level
            elif kind == _EMPTY and self._kind(sibling, None) == _LEAF:
                new, kind = sibling, _LEAF
                continue
            node = _INTERNAL_PREFIX + (sibling + new if bit else new + sibling)
            new = _sha256(node).digest()
            out[new] = node
            kind = _INTERNAL
        return new, kind

    def _join(
        self, left: bytes, left_kind: int | None, right: bytes, right_kind: int | None, out: dict[bytes, bytes]
    ) -> tuple[bytes, int]:
        """The parent of two subtrees, collapsing a lone leaf upwards."""
        if left == EMPTY_HASH:
            if right == EMPTY_HASH:
                return EMPTY_HASH, _EMPTY
            if self._kind(right, right_kind) == _LEAF:
                return right, _LEAF
        elif right == EMPTY_HASH and self._kind(left, left_kind) == _LEAF:
            return left, _LEAF
        node = _INTERNAL_PREFIX + left + right
        h = _sha256(node).digest()
        out[h] = node
        return h, _INTERNAL

    def _kind(self, h: bytes, known: int | None) -> int:
        if known is not None:
            return known
        if h == EMPTY_HASH:
            return _EMPTY
        return _LEAF if self._load(h)[0] == LEAF_TAG else _INTERNAL

    def _build(
        self, depth: int, leaves: list[_Item], ints: list[int], lo: int, hi: int, out: dict[bytes, bytes]
    ) -> tuple[bytes, int]:
        """A fresh subtree at `depth` holding exactly leaves[lo:hi] (sorted, distinct paths)."""
        n = hi - lo
        if n == 0:
            return EMPTY_HASH, _EMPTY
        if n == 1:
            _int, path, value, known = leaves[lo]
            if known is not None:
                return known, _LEAF
            assert value is not None
            h = _sha256(_LEAF_PREFIX + path + _sha256(value).digest()).digest()
            out[h] = _LEAF_PREFIX + path + value
            return h, _LEAF
        assert depth < PATH_BITS, "two leaves with the same path"
        shift = PATH_BITS - depth
        boundary = ((ints[lo] >> shift) << shift) | (1 << (shift - 1))
        mid = bisect_left(ints, boundary, lo, hi)
        left, _ = self._build(depth + 1, leaves, ints, lo, mid, out)
        right, _ = self._build(depth + 1, leaves, ints, mid, hi, out)
        node = _INTERNAL_PREFIX + left + right
        h = _sha256(node).digest()
        out[h] = node
        return h, _INTERNAL


# ---------------------------------------------------------------------------------------------------------------
# Proofs


@dataclass(frozen=True, slots=True)
class ProofLeaf:
    """The leaf met at the end of a non-inclusion walk: another key's path and the hash of its value."""

    path: bytes
    value_hash: bytes

    def __post_init__(self) -> None:
        if not (isinstance(self.path, bytes) and len(self.path) == HASH_BYTES):
            raise StateProofError(codes.INVALID_STATE_PROOF, "other_leaf.path must be 32 bytes")
        if not (isinstance(self.value_hash, bytes) and len(self.value_hash) == HASH_BYTES):
            raise StateProofError(codes.INVALID_STATE_PROOF, "other_leaf.value_hash must be 32 bytes")


@dataclass(frozen=True, slots=True)
class StateProof:
    """A Merkle proof for one key (see docs/state-proofs.md). Constructing a malformed one raises StateProofError.

    depth:      number of levels walked from the root to the terminal (0..256).
    bitmap:     ceil(depth/8) bytes; bit i (MSB first) is 1 when the sibling at level i is non-empty. Unused
                trailing bits are 0.
    siblings:   the non-empty sibling hashes, root level first; exactly popcount(bitmap) of them, none all-zero.
    other_leaf: None for an inclusion proof or a non-inclusion proof ending in an empty subtree; the leaf found
                instead of the key for a non-inclusion proof ending in another leaf.
    """

    depth: int
    bitmap: bytes
    siblings: tuple[bytes, ...]
    other_leaf: ProofLeaf | None = None

    def __post_init__(self) -> None:
        _check_proof_fields(self.depth, self.bitmap, self.siblings, self.other_leaf)

    def sibling_at(self, level: int) -> bytes:
        """The sibling hash at `level` (0 = child of the root), EMPTY_HASH when the bitmap bit is 0."""
        assert 0 <= level < self.depth
        if not (self.bitmap[level >> 3] >> (7 - (level & 7))) & 1:
            return EMPTY_HASH
        index = 0
        for i in range(level):
            index += (self.bitmap[i >> 3] >> (7 - (i & 7))) & 1
        return self.siblings[index]

    # -- canonical bytes (msgpack) -----------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        other = None if self.other_leaf is None else [self.other_leaf.path, self.other_leaf.value_hash]
        return msgpack.packb([PROOF_VERSION, self.depth, self.bitmap, list(self.siblings), other], use_bin_type=True)

    @classmethod
    def from_bytes(cls, data: bytes) -> StateProof:
        """Decode canonical proof bytes; anything else raises StateProofError."""
        if not isinstance(data, bytes | bytearray | memoryview):
            raise StateProofError(codes.INVALID_STATE_PROOF, "proof must be bytes")
        data = bytes(data)
        if len(data) > MAX_PROOF_BYTES:
            raise StateProofError(codes.INVALID_STATE_PROOF, f"proof longer than {MAX_PROOF_BYTES} bytes")
        try:
            obj = msgpack.unpackb(
                data,
                raw=False,
                use_list=True,
                strict_map_key=True,
                max_str_len=0,
                max_bin_len=HASH_BYTES,
                max_array_len=PATH_BITS,
                max_map_len=0,
                max_ext_len=0,
            )
        except Exception as exc:  # the decoder's own error types vary by input: all mean "not a proof"
            raise StateProofError(codes.INVALID_STATE_PROOF, f"proof is not valid msgpack: {type(exc).__name__}") from exc
        if not (isinstance(obj, list) and len(obj) == 5):
            raise StateProofError(codes.INVALID_STATE_PROOF, "proof must be an array of 5 items")
        version, depth, bitmap, siblings, other = obj
        if type(version) is not int or version != PROOF_VERSION:
            raise StateProofError(codes.INVALID_STATE_PROOF, f"unsupported proof version {version!r}")
        if not isinstance(siblings, list):
            raise StateProofError(codes.INVALID_STATE_PROOF, "siblings must be an array")
        if other is not None:
            if not (isinstance(other, list) and len(other) == 2):
                raise StateProofError(codes.INVALID_STATE_PROOF, "other_leaf must be nil or an array [path, value_hash]")
            other = ProofLeaf(other[0], other[1])
        proof = cls(depth=depth, bitmap=bitmap, siblings=tuple(siblings), other_leaf=other)
        if proof.to_bytes() != data:
            raise StateProofError(codes.INVALID_STATE_PROOF, "proof bytes are not in canonical form")
        return proof

    # -- JSON form (API) ---------------------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict; bytes as lowercase hex."""
        return {
            "version": PROOF_VERSION,
            "depth": self.depth,
            "bitmap": self.bitmap.hex(),
            "siblings": [s.hex() for s in self.siblings],
            "other_leaf": None
            if self.other_leaf is None
            else {"path": self.other_leaf.path.hex(), "value_hash": self.other_leaf.value_hash.hex()},
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any] | str) -> StateProof:
        """Decode the JSON form (a dict, or its JSON text); strict: exact fields, lowercase hex."""
        if isinstance(obj, str):
            if len(obj) > MAX_PROOF_JSON_CHARS:
                raise StateProofError(codes.INVALID_STATE_PROOF, f"proof JSON longer than {MAX_PROOF_JSON_CHARS} characters")
            try:
                obj = json.loads(obj)
            except (ValueError, RecursionError) as exc:  # deeply nested input exhausts the parser's recursion
                raise StateProofError(codes.INVALID_STATE_PROOF, "proof is not valid JSON") from exc
        if not isinstance(obj, Mapping) or set(obj) != {"version", "depth", "bitmap", "siblings", "other_leaf"}:
            raise StateProofError(codes.INVALID_STATE_PROOF, "proof JSON must have exactly: version, depth, bitmap, siblings, other_leaf")
        if type(obj["version"]) is not int or obj["version"] != PROOF_VERSION:
            raise StateProofError(codes.INVALID_STATE_PROOF, f"unsupported proof version {obj['version']!r}")
        siblings = obj["siblings"]
        if not isinstance(siblings, list) or len(siblings) > PATH_BITS:
            raise StateProofError(codes.INVALID_STATE_PROOF, "siblings must be a list of at most 256 hex strings")
        other = obj["other_leaf"]
        if other is not None:
            if not isinstance(other, Mapping) or set(other) != {"path", "value_hash"}:
                raise StateProofError(codes.INVALID_STATE_PROOF, "other_leaf must be null or {path, value_hash}")
            other = ProofLeaf(_unhex(other["path"]), _unhex(other["value_hash"]))
        return cls(
            depth=obj["depth"],
            bitmap=_unhex(obj["bitmap"]),
            siblings=tuple(_unhex(s) for s in siblings),
            other_leaf=other,
        )


def _unhex(s: object) -> bytes:
    # Exactly [0-9a-f]{2k}: bytes.fromhex alone would also accept whitespace ("ab cd"), a second spelling.
    if not isinstance(s, str) or len(s) > 2 * HASH_BYTES or _LOWER_HEX.fullmatch(s) is None:
        raise StateProofError(codes.INVALID_STATE_PROOF, "expected lowercase hex of at most 32 bytes")
    return bytes.fromhex(s)


def _check_proof_fields(depth: object, bitmap: object, siblings: object, other_leaf: object) -> None:
    if type(depth) is not int or not 0 <= depth <= PATH_BITS:
        raise StateProofError(codes.INVALID_STATE_PROOF, "depth must be an integer in 0..256")
    if not isinstance(bitmap, bytes) or len(bitmap) != (depth + 7) // 8:
        raise StateProofError(codes.INVALID_STATE_PROOF, "bitmap must be ceil(depth/8) bytes")
    if depth % 8 and bitmap[-1] & ((1 << (8 - depth % 8)) - 1):
        raise StateProofError(codes.INVALID_STATE_PROOF, "bitmap bits beyond depth must be zero")
    if not isinstance(siblings, tuple):
        raise StateProofError(codes.INVALID_STATE_PROOF, "siblings must be a tuple")
    if len(siblings) != sum(b.bit_count() for b in bitmap):
        raise StateProofError(codes.INVALID_STATE_PROOF, "number of siblings must equal the number of set bitmap bits")
    for s in siblings:
        if not (isinstance(s, bytes) and len(s) == HASH_BYTES) or s == EMPTY_HASH:
            raise StateProofError(codes.INVALID_STATE_PROOF, "each sibling must be a non-empty 32-byte hash")
    if other_leaf is not None and not isinstance(other_leaf, ProofLeaf):
        raise StateProofError(codes.INVALID_STATE_PROOF, "other_leaf must be a ProofLeaf or None")


def verify_proof(root: bytes, key: bytes, value: bytes | None, proof: StateProof) -> bool:
    """True iff `proof` shows that `key` maps to `value` (None: is absent) in the tree with `root`.

    Pure and total: any malformed input gives False, never an exception.
    """
    if not (isinstance(root, bytes) and len(root) == HASH_BYTES and isinstance(key, bytes)):
        return False
    if value is not None and not isinstance(value, bytes):
        return False
    if not isinstance(proof, StateProof):
        return False
    depth, bitmap, siblings, other = proof.depth, proof.bitmap, proof.siblings, proof.other_leaf
    try:
        _check_proof_fields(depth, bitmap, siblings, other)
        if other is not None:
            ProofLeaf.__post_init__(other)
    except StateProofError:
        return False
    path = key_path(key)
    # 1. The terminal of the walk.
    if value is not None:
        if other is not None:
            return False
        h = leaf_hash(path, value_hash(value))
    elif other is None:
        h = EMPTY_HASH
    else:
        if other.path == path or _common_prefix_bits(other.path, path) < depth:
            return False
        h = leaf_hash(other.path, other.value_hash)
    # 2. A terminal below the root has a non-empty sibling (otherwise the tree would have collapsed it upwards).
    if depth > 0 and not (bitmap[(depth - 1) >> 3] >> (7 - ((depth - 1) & 7))) & 1:
        return False
    # 3. Hash up from the terminal to the root, taking siblings from the end of the list.
    index = len(siblings)
    for level in range(depth - 1, -1, -1):
        if (bitmap[level >> 3] >> (7 - (level & 7))) & 1:
            index -= 1
            sibling = siblings[index]
        else:
            sibling = EMPTY_HASH
        if _path_bit(path, level):
            h = internal_hash(sibling, h)
        else:
            h = internal_hash(h, sibling)
    assert index == 0
    return h == root
