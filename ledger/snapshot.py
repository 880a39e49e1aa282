"""State snapshots: the authenticated state at one height cut into chunks that each verify on their own against the
state root (docs/state-proofs.md, section 7). Pure: no I/O, no clock.

The cut. A snapshot partitions the 256-bit path space into subtrees ("chunks"): chunk i covers every key whose
path starts with `prefix_i` (its first `depth_i` bits). The **manifest** lists, in path order, each chunk's
`(depth, prefix, subtree hash, leaf count)`. Combining those subtree hashes upwards with the tree's own rules
(docs/state-proofs.md section 1: internal_hash, a lone leaf collapses upwards, an empty subtree is EMPTY) gives the
root; a manifest is accepted only if it is an exact partition (every path in exactly one chunk) and that root is
the certified state root. A **chunk** is its (key, value) pairs in path order; it is accepted only if every key's
path starts with its prefix, the number of pairs is the manifest's count and the compact subtree they build at its
depth hashes to the manifest's hash. By collision resistance, accepted chunks reassemble to exactly the certified
state, and a bad chunk is caught on its own (before anything of it is written) without trusting its sender.

    manifest = build_manifest(height, state_root, leaves, subtree_hash_of)   producer (node/chain/snapshots.py)
    chunk_bytes = encode_chunk(index, pairs)
    m = SnapshotManifest.decode(raw); nodes = m.verify(state_root)            joiner: the nodes above the chunks
    pairs, nodes = verify_chunk(m, index, chunk_bytes)                        joiner: one chunk

Every error is a SnapshotError with a ledger code: SNAPSHOT_INVALID_MANIFEST (723), SNAPSHOT_CHUNK_INVALID (724),
SNAPSHOT_CHUNK_TOO_LARGE (725).
"""

from __future__ import annotations

import hashlib
from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Final

import msgpack

from ledger import codes
from ledger.schema import MAX_STATE_KEY_BYTES, MAX_STATE_VALUE_BYTES
from ledger.smt import EMPTY_HASH, PATH_BITS, SmtError

__all__ = [
    "CHUNK_TARGET_BYTES",
    "MAX_CHUNK_BYTES",
    "MAX_MANIFEST_BYTES",
    "MAX_SNAPSHOT_CHUNKS",
    "SNAPSHOT_VERSION",
    "ChunkEntry",
    "SnapshotError",
    "SnapshotManifest",
    "build_manifest",
    "encode_chunk",
    "plan_chunks",
    "sorted_leaves",
    "subtree",
    "verify_chunk",
]

SNAPSHOT_VERSION: Final = 1
# A chunk is cut when its pairs exceed this many bytes (a single pair is never split: a chunk may hold one value
# of up to MAX_STATE_VALUE_BYTES and still be below MAX_CHUNK_BYTES).
CHUNK_TARGET_BYTES: Final = 1 << 20
# The largest chunk anyone may send or accept (encoded bytes).
MAX_CHUNK_BYTES: Final = 3 << 20
# Chunks of one snapshot, and the encoded manifest's size (32,768 entries of ~50 bytes fit in 2 MiB): a chunk
# and a manifest each fit in one transport frame (4 MiB).
MAX_SNAPSHOT_CHUNKS: Final = 1 << 15
MAX_MANIFEST_BYTES: Final = 2 << 20
# msgpack framing of one (key, value) pair in a chunk: array header and two bin headers.
_PAIR_OVERHEAD: Final = 11

_sha256 = hashlib.sha256
_LEAF = b"\x00"
_INTERNAL = b"\x01"


class SnapshotError(SmtError):
    """A manifest or chunk that does not verify, is malformed, or is too large (codes 723 - 725)."""


@dataclass(frozen=True, slots=True)
class ChunkEntry:
    """One chunk of the cut: the subtree of the paths starting with the first `depth` bits of `prefix`."""

    depth: int
    prefix: bytes  # ceil(depth / 8) bytes, bits beyond `depth` zero
    hash: bytes  # the subtree's hash (EMPTY_HASH when it holds nothing; the leaf hash when it holds one key)
    leaves: int  # keys in the chunk

    def to_list(self) -> list[object]:
        return [self.depth, self.prefix, self.hash, self.leaves]


@dataclass(frozen=True, slots=True)
class SnapshotManifest:
    height: int
    state_root: bytes
    chunks: tuple[ChunkEntry, ...]

    def encode(self) -> bytes:
        return msgpack.packb(
            [SNAPSHOT_VERSION, self.height, self.state_root, [c.to_list() for c in self.chunks]], use_bin_type=True
        )

    @property
    def digest(self) -> bytes:
        """What offers name a snapshot by (two peers offering the same digest serve the same chunks)."""
        return _sha256(self.encode()).digest()

    @property
    def keys(self) -> int:
        return sum(c.leaves for c in self.chunks)

    @classmethod
    def decode(cls, data: bytes) -> SnapshotManifest:
        """Strict decoding (canonical bytes only); SnapshotError(SNAPSHOT_INVALID_MANIFEST) otherwise."""
        bad = codes.SNAPSHOT_INVALID_MANIFEST
        if not isinstance(data, bytes) or len(data) > MAX_MANIFEST_BYTES:
            raise SnapshotError(bad, f"a manifest is at most {MAX_MANIFEST_BYTES} bytes")
        try:
            obj = msgpack.unpackb(
                data,
                raw=False,
                max_str_len=0,
                max_bin_len=64,
                max_map_len=0,
                max_array_len=MAX_SNAPSHOT_CHUNKS,
                max_ext_len=0,
            )
        except Exception as exc:  # noqa: BLE001 -- msgpack raises several types for bad input: all mean "not a manifest"
            raise SnapshotError(bad, f"the manifest is not valid msgpack: {type(exc).__name__}") from None
        if not (isinstance(obj, list) and len(obj) == 4 and obj[0] == SNAPSHOT_VERSION and type(obj[0]) is int):
            raise SnapshotError(bad, "a manifest is [version 1, height, state_root, chunks]")
        _, height, root, raw_chunks = obj
        if type(height) is not int or height < 0 or not _is_hash(root) or not isinstance(raw_chunks, list):
            raise SnapshotError(bad, "bad manifest height, root or chunk list")
        if not 1 <= len(raw_chunks) <= MAX_SNAPSHOT_CHUNKS:
            raise SnapshotError(bad, f"a manifest lists 1..{MAX_SNAPSHOT_CHUNKS} chunks")
        chunks = []
        for item in raw_chunks:
            if not (isinstance(item, list) and len(item) == 4):
                raise SnapshotError(bad, "a chunk entry is [depth, prefix, hash, leaves]")
            depth, prefix, h, leaves = item
            if (
                type(depth) is not int
                or not 0 <= depth <= PATH_BITS
                or not isinstance(prefix, bytes)
                or len(prefix) != (depth + 7) // 8
                or not _is_hash(h)
                or type(leaves) is not int
                or leaves < 0
            ):
                raise SnapshotError(bad, "bad chunk entry fields")
            if depth % 8 and prefix[-1] & ((1 << (8 - depth % 8)) - 1):
                raise SnapshotError(bad, "prefix bits beyond the depth must be zero")
            if (leaves == 0) != (h == EMPTY_HASH):
                raise SnapshotError(bad, "an empty chunk hashes to EMPTY and only an empty one")
            chunks.append(ChunkEntry(depth, prefix, h, leaves))
        manifest = cls(height, root, tuple(chunks))
        if manifest.encode() != data:
            raise SnapshotError(bad, "the manifest is not in canonical form")
        return manifest

    def verify(self, certified_root: bytes) -> dict[bytes, bytes]:
        """Check that the chunks partition the path space exactly and combine to `certified_root` (which must also
        be the manifest's own root). Returns the tree nodes above the chunks (hash -> node bytes) to store."""
        bad = codes.SNAPSHOT_INVALID_MANIFEST
        if self.state_root != certified_root:
            raise SnapshotError(bad, "the manifest names another state root than the certified one")
        nodes: dict[bytes, bytes] = {}
        cursor = [0]
        root, _kind = _combine(self.chunks, cursor, 0, 0, nodes)
        if cursor[0] != len(self.chunks):
            raise SnapshotError(bad, "the chunks do not partition the path space")
        if root != certified_root:
            raise SnapshotError(bad, "the chunks do not combine to the certified state root")
        return nodes


# Kinds of a subtree while combining: 0 empty, 1 one leaf, 2 internal.
def _kind(leaves: int) -> int:
    return min(leaves, 2)


def _prefix_int(entry: ChunkEntry) -> int:
    return int.from_bytes(entry.prefix, "big") >> (len(entry.prefix) * 8 - entry.depth) if entry.depth else 0


def _combine(
    chunks: Sequence[ChunkEntry], cursor: list[int], depth: int, prefix: int, nodes: dict[bytes, bytes]
) -> tuple[bytes, int]:
    """The subtree at (depth, prefix) from the chunks at cursor onwards (path order)."""
    i = cursor[0]
    if i >= len(chunks):
        raise SnapshotError(codes.SNAPSHOT_INVALID_MANIFEST, "the chunks do not cover the path space")
    entry = chunks[i]
    if entry.depth < depth or (_prefix_int(entry) >> (entry.depth - depth)) != prefix:
        raise SnapshotError(codes.SNAPSHOT_INVALID_MANIFEST, "the chunks do not partition the path space")
    if entry.depth == depth:
        cursor[0] = i + 1
        return entry.hash, _kind(entry.leaves)
    left, lk = _combine(chunks, cursor, depth + 1, prefix << 1, nodes)
    right, rk = _combine(chunks, cursor, depth + 1, (prefix << 1) | 1, nodes)
    return _join(left, lk, right, rk, nodes)


def _join(left: bytes, lk: int, right: bytes, rk: int, nodes: dict[bytes, bytes]) -> tuple[bytes, int]:
    if lk == 0 and rk <= 1:
        return right, rk
    if rk == 0 and lk == 1:
        return left, 1
    node = _INTERNAL + left + right
    h = _sha256(node).digest()
    nodes[h] = node
    return h, 2


def _is_hash(x: object) -> bool:
    return isinstance(x, bytes) and len(x) == 32


# ---------------------------------------------------------------------------------------------------------------
# Building: the compact subtree of sorted leaves at a depth


Leaf = tuple[int, bytes, bytes, bytes]  # (path as int, path, key, value), sorted by path


def sorted_leaves(pairs: Iterable[tuple[bytes, bytes]]) -> list[Leaf]:
    """(key, value) pairs (any order) -> leaves sorted by path."""
    out = []
    for key, value in pairs:
        path = _sha256(key).digest()
        out.append((int.from_bytes(path, "big"), path, key, value))
    out.sort()
    return out


def subtree(
    depth: int, leaves: Sequence[Leaf], lo: int, hi: int, nodes: dict[bytes, bytes] | None
) -> tuple[bytes, int]:
    """(hash, kind) of the compact subtree at `depth` holding exactly leaves[lo:hi] (sorted, distinct paths, all
    sharing their first `depth` bits); its nodes are added to `nodes` when given (same bytes as ledger/smt.py)."""
    ints = [leaf[0] for leaf in leaves[lo:hi]]
    return _subtree(depth, leaves, ints, lo, 0, hi - lo, nodes)


def _subtree(
    depth: int, leaves: Sequence[Leaf], ints: list[int], base: int, lo: int, hi: int, nodes: dict[bytes, bytes] | None
) -> tuple[bytes, int]:
    n = hi - lo
    if n == 0:
        return EMPTY_HASH, 0
    if n == 1:
        _, path, _key, value = leaves[base + lo]
        h = _sha256(_LEAF + path + _sha256(value).digest()).digest()
        if nodes is not None:
            nodes[h] = _LEAF + path + value
        return h, 1
    if depth >= PATH_BITS:
        raise SnapshotError(codes.SNAPSHOT_CHUNK_INVALID, "two keys with the same path")
    shift = PATH_BITS - depth
    mid = bisect_left(ints, ((ints[lo] >> shift) << shift) | (1 << (shift - 1)), lo, hi)
    left, _ = _subtree(depth + 1, leaves, ints, base, lo, mid, nodes)
    right, _ = _subtree(depth + 1, leaves, ints, base, mid, hi, nodes)
    node = _INTERNAL + left + right
    h = _sha256(node).digest()
    if nodes is not None:
        nodes[h] = node
    return h, 2


def _split(leaves: Sequence[Leaf], lo: int, hi: int, depth: int) -> int:
    """The first index in [lo, hi) whose path has bit `depth` set (all share the bits above)."""
    shift = PATH_BITS - 1 - depth
    a, b = lo, hi
    while a < b:
        m = (a + b) // 2
        if (leaves[m][0] >> shift) & 1:
            b = m
        else:
            a = m + 1
    return a


def plan_chunks(leaves: Sequence[Leaf], target_bytes: int = CHUNK_TARGET_BYTES) -> list[tuple[int, int, int, int]]:
    """The cut, deterministic in the leaves: (depth, prefix as int, lo, hi) per chunk in path order. A subtree is
    split while its pairs exceed `target_bytes` and it holds two or more keys."""
    sizes = [0]
    for _, _, key, value in leaves:
        sizes.append(sizes[-1] + len(key) + len(value) + _PAIR_OVERHEAD)
    out: list[tuple[int, int, int, int]] = []
    stack = [(0, 0, 0, len(leaves))]
    while stack:
        depth, prefix, lo, hi = stack.pop()
        if hi - lo <= 1 or sizes[hi] - sizes[lo] <= target_bytes:
            out.append((depth, prefix, lo, hi))
            continue
        mid = _split(leaves, lo, hi, depth)
        stack.append((depth + 1, (prefix << 1) | 1, mid, hi))  # popped after the left half: path order
        stack.append((depth + 1, prefix << 1, lo, mid))
    if len(out) > MAX_SNAPSHOT_CHUNKS:
        raise SnapshotError(codes.SNAPSHOT_INVALID_MANIFEST, f"more than {MAX_SNAPSHOT_CHUNKS} chunks")
    return out


def _prefix_bytes(depth: int, prefix: int) -> bytes:
    nbytes = (depth + 7) // 8
    return (prefix << (nbytes * 8 - depth)).to_bytes(nbytes, "big") if depth else b""


def build_manifest(
    height: int,
    state_root: bytes,
    leaves: Sequence[Leaf],
    plan: Sequence[tuple[int, int, int, int]],
    hash_of: Callable[[int, int, int, int], bytes] | None = None,
) -> SnapshotManifest:
    """The manifest of `plan` over `leaves`. `hash_of(depth, prefix, lo, hi)` gives a chunk's subtree hash (a node
    reads it from its stored tree); by default it is computed from the leaves."""
    entries = []
    for depth, prefix, lo, hi in plan:
        h = hash_of(depth, prefix, lo, hi) if hash_of is not None else subtree(depth, leaves, lo, hi, None)[0]
        entries.append(ChunkEntry(depth, _prefix_bytes(depth, prefix), h, hi - lo))
    return SnapshotManifest(height, state_root, tuple(entries))


def encode_chunk(index: int, leaves: Sequence[Leaf], lo: int, hi: int) -> bytes:
    return msgpack.packb([SNAPSHOT_VERSION, index, [[leaf[2], leaf[3]] for leaf in leaves[lo:hi]]], use_bin_type=True)


def verify_chunk(
    manifest: SnapshotManifest, index: int, data: bytes, nodes: dict[bytes, bytes] | None = None
) -> list[tuple[bytes, bytes]]:
    """The (key, value) pairs of chunk `index` if `data` is exactly that chunk of the (verified) manifest; its tree
    nodes are added to `nodes` when given. SnapshotError otherwise; nothing is returned for a bad chunk."""
    bad = codes.SNAPSHOT_CHUNK_INVALID
    if not isinstance(data, bytes) or len(data) > MAX_CHUNK_BYTES:
        raise SnapshotError(codes.SNAPSHOT_CHUNK_TOO_LARGE, f"a chunk is at most {MAX_CHUNK_BYTES} bytes")
    if not 0 <= index < len(manifest.chunks):
        raise SnapshotError(bad, f"no chunk {index} in the manifest")
    entry = manifest.chunks[index]
    try:
        obj = msgpack.unpackb(
            data,
            raw=False,
            max_str_len=0,
            max_bin_len=MAX_STATE_VALUE_BYTES,
            max_map_len=0,
            max_array_len=max(entry.leaves, 3),
            max_ext_len=0,
        )
    except Exception as exc:  # noqa: BLE001 -- any decoding failure means "not this chunk"
        raise SnapshotError(bad, f"the chunk is not valid msgpack: {type(exc).__name__}") from None
    if not (
        isinstance(obj, list)
        and len(obj) == 3
        and type(obj[0]) is int
        and obj[0] == SNAPSHOT_VERSION
        and type(obj[1]) is int
        and obj[1] == index
        and isinstance(obj[2], list)
    ):
        raise SnapshotError(bad, "a chunk is [version 1, index, pairs] of the index asked for")
    raw_pairs = obj[2]
    if len(raw_pairs) != entry.leaves:
        raise SnapshotError(bad, f"chunk {index} holds {len(raw_pairs)} keys, the manifest says {entry.leaves}")
    leaves: list[Leaf] = []
    prefix = _prefix_int(entry)
    shift = PATH_BITS - entry.depth
    last = -1
    for pair in raw_pairs:
        if not (
            isinstance(pair, list)
            and len(pair) == 2
            and isinstance(pair[0], bytes)
            and isinstance(pair[1], bytes)
            and len(pair[0]) <= MAX_STATE_KEY_BYTES
        ):
            raise SnapshotError(bad, "a chunk pair is [key bytes, value bytes]")
        path = _sha256(pair[0]).digest()
        p = int.from_bytes(path, "big")
        if p <= last:
            raise SnapshotError(bad, "chunk pairs are in strictly increasing path order")
        if entry.depth and (p >> shift) != prefix:
            raise SnapshotError(bad, f"a key of chunk {index} lies outside its subtree")
        last = p
        leaves.append((p, path, pair[0], pair[1]))
    out: dict[bytes, bytes] | None = {} if nodes is not None else None
    h, _ = subtree(entry.depth, leaves, 0, len(leaves), out)
    if h != entry.hash:
        raise SnapshotError(bad, f"chunk {index} does not hash to the manifest's subtree hash")
    if nodes is not None and out:
        nodes.update(out)
    if msgpack.packb(obj, use_bin_type=True) != data:
        raise SnapshotError(bad, "the chunk is not in canonical form")
    return [(leaf[2], leaf[3]) for leaf in leaves]
