"""Snapshots a node takes of its state, keeps on disk and serves to admitted peers joining by state sync
(docs/operations.md, "State sync, snapshots and pruning"; the format: ledger/snapshot.py).

    snapshots = SnapshotStore(os.path.join(data_dir, "snapshots"), keep=2)
    taker = SnapshotTaker(app.store, snapshots, interval=1000, epoch_of=lambda: app.epochs.epoch)
    app.add_commit_listener(taker.on_commit)           every height divisible by `interval`: a snapshot, built on
                                                       a thread from a frozen view of the state (commits go on)
    server = SnapshotServer(snapshots)
    reply = server.answer(peer, message, now_ms)       the answer to a snapshot-channel request, or None

Which heights: every multiple of `interval` (deterministic: every node with the same interval snapshots the same
heights, so a joining node finds the same snapshot, chunk for chunk, at several peers). One build at a time; a
height reached while one runs is skipped. On disk, one directory per height, written under a temporary name and
renamed when complete (a crash leaves no half snapshot to serve); only the `keep` newest are kept.

    snapshots/<height %020d>/manifest      the manifest (ledger.snapshot.SnapshotManifest.encode)
    snapshots/<height %020d>/head          msgpack [block bytes, commit certificate bytes, [epoch-change proofs]]
    snapshots/<height %020d>/<index %06d>  chunk `index`

The chunk hashes in the manifest are read from the node's stored tree at that height (a few node reads per chunk),
the pairs from the frozen view: a chunk that disagreed with the tree would be refused by every joiner, so the
serving node checks its manifest against the certified root before publishing it.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from collections.abc import Callable
from typing import Final

import msgpack

from ledger.smt import EMPTY_HASH, INTERNAL_TAG, PATH_BITS
from ledger.snapshot import (
    CHUNK_TARGET_BYTES,
    SnapshotError,
    SnapshotManifest,
    build_manifest,
    encode_chunk,
    plan_chunks,
    sorted_leaves,
)
from ledger.state_keys import tree_entries
from ledger.store import LedgerStore, StateView
from node.chain.certified import cert_key, load_epoch_proofs
from node.chain.execution import CommittedBlock
from node.errors import NodeError
from node.net.snapshot_messages import (
    MAX_OFFERS,
    Chunk,
    GetChunk,
    GetSnapshot,
    ListSnapshots,
    SnapshotHead,
    SnapshotMessage,
    Snapshots,
)

__all__ = [
    "DEFAULT_SNAPSHOT_INTERVAL",
    "DEFAULT_SNAPSHOT_KEEP",
    "MAX_SNAPSHOT_KEEP",
    "MAX_SNAPSHOT_REQUESTS_PER_SECOND",
    "SnapshotServer",
    "SnapshotStore",
    "SnapshotTaker",
]

log = logging.getLogger("node.chain.snapshots")

DEFAULT_SNAPSHOT_INTERVAL: Final = 1000
DEFAULT_SNAPSHOT_KEEP: Final = 2
MAX_SNAPSHOT_KEEP: Final = MAX_OFFERS
# Snapshot-channel requests served per peer per second (a chunk is up to MAX_CHUNK_BYTES read from disk).
MAX_SNAPSHOT_REQUESTS_PER_SECOND: Final = 50


def _dir_name(height: int) -> str:
    return f"{height:020d}"


class SnapshotStore:
    """The snapshots on disk: at most `keep`, newest first when listed."""

    def __init__(self, directory: str, keep: int = DEFAULT_SNAPSHOT_KEEP) -> None:
        if not 1 <= keep <= MAX_SNAPSHOT_KEEP:
            raise NodeError("config_bad_field", f"snapshots are kept 1..{MAX_SNAPSHOT_KEEP} at a time")
        self.directory = directory
        self.keep = keep
        os.makedirs(directory, exist_ok=True)
        for name in os.listdir(directory):
            if name.startswith("tmp-"):  # a build a crash interrupted
                shutil.rmtree(os.path.join(directory, name), ignore_errors=True)
        self._offers: dict[int, tuple[bytes, int]] = {}
        self._lock = threading.Lock()
        for height in self.heights():
            try:
                with open(os.path.join(self._path(height), "manifest"), "rb") as f:
                    manifest = SnapshotManifest.decode(f.read())
                self._offers[height] = (manifest.digest, len(manifest.chunks))
            except (OSError, SnapshotError):
                log.warning("snapshot_unreadable height=%d: removed", height)
                shutil.rmtree(self._path(height), ignore_errors=True)

    def _path(self, height: int) -> str:
        return os.path.join(self.directory, _dir_name(height))

    def heights(self) -> list[int]:
        return sorted((int(n) for n in os.listdir(self.directory) if n.isdigit() and len(n) == 20), reverse=True)

    def offers(self) -> list[tuple[int, bytes, int]]:
        """(height, manifest digest, chunks) of the kept snapshots, newest first."""
        with self._lock:
            return [(h, d, n) for h, (d, n) in sorted(self._offers.items(), reverse=True)]

    def write(self, manifest: SnapshotManifest, head: bytes, chunks: list[bytes]) -> None:
        """Publish a complete snapshot (atomically: a rename), then drop the oldest beyond `keep`."""
        tmp = os.path.join(self.directory, f"tmp-{_dir_name(manifest.height)}")
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(tmp)
        for name, data in (
            ("manifest", manifest.encode()),
            ("head", head),
            *((f"{i:06d}", c) for i, c in enumerate(chunks)),
        ):
            with open(os.path.join(tmp, name), "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        final = self._path(manifest.height)
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        with self._lock:
            self._offers[manifest.height] = (manifest.digest, len(manifest.chunks))
            for old in sorted(self._offers)[: -self.keep]:
                del self._offers[old]
                shutil.rmtree(self._path(old), ignore_errors=True)

    def read(self, height: int, name: str) -> bytes | None:
        with self._lock:
            if height not in self._offers:
                return None
        try:
            with open(os.path.join(self._path(height), name), "rb") as f:
                return f.read()
        except OSError:
            return None


def subtree_hash_at(store: LedgerStore, root: bytes, depth: int, prefix: int) -> bytes:
    """The hash of the subtree of the paths starting with `prefix` (its first `depth` bits) in the stored tree of
    `root`: a walk down; a lone leaf met higher up is that subtree's hash when its path has the prefix."""
    h = root
    for d in range(depth):
        if h == EMPTY_HASH:
            return EMPTY_HASH
        node = store.get_node(h)
        if node is None:
            raise NodeError("snapshot_missing_node", f"tree node {h.hex()} is not stored (pruned?)")
        if node[0] != INTERNAL_TAG:
            path = int.from_bytes(node[1:33], "big")
            return h if path >> (PATH_BITS - depth) == prefix else EMPTY_HASH
        bit = (prefix >> (depth - 1 - d)) & 1
        h = node[33:65] if bit else node[1:33]
    return h


class SnapshotTaker:
    """Takes a snapshot at every multiple of `interval` (a commit listener), one at a time, on its own thread."""

    def __init__(
        self,
        store: LedgerStore,
        snapshots: SnapshotStore,
        interval: int,
        epoch_of: Callable[[], int],
        target_bytes: int = CHUNK_TARGET_BYTES,
    ) -> None:
        if interval < 1:
            raise NodeError("config_bad_field", "sync.snapshot_interval must be at least 1 (0 disables snapshots)")
        self.store = store
        self.snapshots = snapshots
        self.interval = interval
        self._epoch_of = epoch_of
        self._target = target_bytes
        self._thread: threading.Thread | None = None
        self.taken = 0
        self.skipped = 0

    @property
    def busy(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def takes(self, height: int) -> bool:
        """A snapshot is taken after the block at `height`, from the store as that block's commit leaves it: a host
        that commits several blocks in one write (block sync's group commit) ends a group there."""
        return height % self.interval == 0

    def on_commit(self, committed: CommittedBlock) -> None:
        if not self.takes(committed.height):
            return
        if self.busy:
            self.skipped += 1
            log.warning("snapshot_skipped height=%d: the previous snapshot is still being built", committed.height)
            return
        view = self.store.state_view()  # the state after exactly this block: later commits do not show through
        if view.head is None or view.head.height != committed.height:
            view.close()
            return
        epoch = self._epoch_of()
        self._thread = threading.Thread(
            target=self._build_logged, args=(view, epoch), daemon=True, name=f"snapshot-{committed.height}"
        )
        self._thread.start()

    def wait(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def _build_logged(self, view: StateView, epoch: int) -> None:
        try:
            self.build(view, epoch)
        except Exception:  # a snapshot that cannot be built is logged and skipped; the chain goes on
            log.exception("snapshot_failed height=%d", view.head.height if view.head else -1)
        finally:
            view.close()

    def build(self, view: StateView, epoch: int) -> SnapshotManifest:
        """Build, check and publish the snapshot of `view` (the state after block view.head.height)."""
        assert view.head is not None
        started = time.monotonic()
        height, root = view.head.height, view.head.state_root
        leaves = sorted_leaves(tree_entries(view.iter_state()))  # what the root holds: the `T` index is derived
        plan = plan_chunks(leaves, self._target)
        manifest = build_manifest(
            height, root, leaves, plan, lambda depth, prefix, lo, hi: subtree_hash_at(self.store, root, depth, prefix)
        )
        manifest.verify(root)
        block, cert = self.store.get_block(height), view.get_extra(cert_key(height))
        if block is None or cert is None:
            raise NodeError("snapshot_no_certificate", f"block {height} or its certificate is not stored")
        proofs = [p.encode() for p in load_epoch_proofs(self.store, epoch)]
        head = msgpack.packb([block, cert, proofs], use_bin_type=True)
        chunks = [encode_chunk(i, leaves, lo, hi) for i, (_, _, lo, hi) in enumerate(plan)]
        self.snapshots.write(manifest, head, chunks)
        self.taken += 1
        log.info(
            "snapshot_taken height=%d keys=%d chunks=%d seconds=%.1f",
            height,
            len(leaves),
            len(chunks),
            time.monotonic() - started,
        )
        return manifest


class SnapshotServer:
    """Answers snapshot-channel requests from the snapshots on disk, at most MAX_SNAPSHOT_REQUESTS_PER_SECOND per
    peer. `corrupt` (testnet fault injection, `[testing] byzantine = "corrupt_chunks"`) flips a byte of every chunk
    it serves: joiners must catch it and fetch the chunk elsewhere."""

    def __init__(self, snapshots: SnapshotStore, corrupt: bool = False) -> None:
        self.snapshots = snapshots
        self.corrupt = corrupt
        self._served: dict[str, tuple[int, int]] = {}
        self.refused = 0

    def answer(self, peer: str, msg: SnapshotMessage, now_ms: int) -> SnapshotMessage | None:
        """The answer to a request (None: not a request, or the peer asks too often)."""
        if not isinstance(msg, ListSnapshots | GetSnapshot | GetChunk):
            return None
        second = now_ms // 1000
        at, count = self._served.get(peer, (second, 0))
        if at == second and count >= MAX_SNAPSHOT_REQUESTS_PER_SECOND:
            self.refused += 1
            return None
        if len(self._served) > 4096:
            self._served.clear()
        self._served[peer] = (second, count + 1 if at == second else 1)
        if isinstance(msg, ListSnapshots):
            return Snapshots(msg.request_id, tuple(self.snapshots.offers()[:MAX_OFFERS]))
        if isinstance(msg, GetSnapshot):
            manifest = self.snapshots.read(msg.height, "manifest")
            raw_head = self.snapshots.read(msg.height, "head")
            if manifest is None or raw_head is None:
                return SnapshotHead(msg.request_id, msg.height, b"", b"", b"", ())
            block, cert, proofs = msgpack.unpackb(raw_head)
            return SnapshotHead(msg.request_id, msg.height, manifest, block, cert, tuple(proofs))
        data = self.snapshots.read(msg.height, f"{msg.index:06d}") if msg.index < 1 << 20 else None
        if data is None:
            return Chunk(msg.request_id, msg.height, msg.index, b"")
        if self.corrupt and len(data) > 8:
            data = data[:-1] + bytes((data[-1] ^ 0x01,))
            log.warning("byzantine_corrupt_chunk peer=%s height=%d index=%d", peer, msg.height, msg.index)
        return Chunk(msg.request_id, msg.height, msg.index, data)
