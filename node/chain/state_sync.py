"""Joining a chain by state sync, without I/O: which snapshot, which peer to ask for what, and the checks that keep
anything unverified out of the store (docs/operations.md, "State sync, snapshots and pruning").

    sync = StateSync(anchor, store)                      anchor: the genesis file's validator set and chain ids
    sync.on_offers(peer, offers)                         answers to LIST_SNAPSHOTS
    sync.next_requests(peers, now_ms) -> [(peer, GetSnapshot | GetChunk)]
    sync.on_head(peer, SnapshotHead, now_ms)             verified, or refused (the peer is backed off)
    sync.on_chunk(peer, Chunk, now_ms)                   verified and written, or refused (backed off; asked elsewhere)
    sync.expire(now_ms)                                  requests that timed out (their peers backed off)
    sync.done -> then sync.finish(): the store's head is the snapshot height; block sync does the rest

The snapshot. The highest height offered, among offers at least MIN_SNAPSHOT_HEIGHT; its SNAPSHOT answer (manifest,
block, commit certificate, epoch-change proofs) is accepted only when the proofs lead from the genesis validator set
(the trust anchor) to the set of the certificate's epoch, the certificate verifies under it, the block is the
certified one, and the manifest's chunks combine to the certificate's state root. Otherwise: code
`snapshot_uncertified` (or `snapshot_manifest_invalid`), the peer is backed off and another offerer is asked.

The chunks. Each chunk is asked from a peer that offered this exact manifest (by digest), one request in flight per
peer, the least-failed peers first. An answer is checked on its own against the manifest (ledger.snapshot.
verify_chunk) before its pairs and tree nodes are written; a chunk that does not verify (`snapshot_chunk_invalid`),
one over MAX_CHUNK_BYTES (`snapshot_chunk_too_large`), an empty answer or a timeout backs the peer off (doubling
from BACKOFF_BASE_MS, at most BACKOFF_MAX_MS) and the chunk goes back to be asked from another peer. Each refusal
is logged once per peer and code. A peer whose chunk does not verify, or that no longer serves the snapshot, is
not asked for that snapshot again. When no peer offers the chosen snapshot any more (its servers pruned it -- a
snapshot lives `snapshot_keep` intervals -- or the only one left sent corrupt chunks), it is abandoned
(`state_sync_abandoned`): the snapshot is chosen again from fresh offers and the partial install is deleted when the
next one begins. At the end, the installed state must hold the epoch the proofs lead to (same validator set): then
the store is finished in one synced batch.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from consensus.certificates import (
    CommitCertificateError,
    EpochChainError,
    SignatureVerifier,
    check_commit_certificate,
    verify_epoch_chain,
)
from consensus.codec import CodecError
from consensus.messages import Block, CommitCertificate, EpochChangeProof, decode_block
from consensus.validators import ValidatorSet
from ledger.codec import DecodeError
from ledger.governance_state import current_epoch, validator_set_entries
from ledger.snapshot import SnapshotError, SnapshotManifest, verify_chunk
from ledger.state_keys import replay_index_entries
from ledger.store import LedgerStore, SnapshotInstall
from node.chain.certified import GENESIS_KEY, cert_key, epoch_proof_key
from node.errors import NodeError
from node.net.snapshot_messages import Chunk, GetChunk, GetSnapshot, SnapshotHead

__all__ = [
    "BACKOFF_BASE_MS",
    "BACKOFF_MAX_MS",
    "CHUNK_TIMEOUT_MS",
    "MIN_SNAPSHOT_HEIGHT",
    "StateSync",
    "StateSyncAnchor",
    "StateSyncRefused",
    "VerifiedSnapshot",
    "verify_snapshot_head",
]

log = logging.getLogger("node.chain.state_sync")

CHUNK_TIMEOUT_MS: Final = 15_000
BACKOFF_BASE_MS: Final = 2_000
BACKOFF_MAX_MS: Final = 60_000
# A snapshot below this height is not worth a state sync (block sync from genesis is as fast).
MIN_SNAPSHOT_HEIGHT: Final = 1


class StateSyncRefused(NodeError, ValueError):
    """A snapshot answer that is not used: snapshot_uncertified, snapshot_manifest_invalid, snapshot_chunk_invalid,
    snapshot_chunk_too_large, snapshot_not_served."""


@dataclass(frozen=True, slots=True)
class StateSyncAnchor:
    """What a joining node trusts: the genesis file (its validator set, chain ids and state root)."""

    genesis_hash: bytes
    genesis_set: ValidatorSet
    consensus_chain_id: bytes
    genesis_root: bytes
    verifier: SignatureVerifier


@dataclass(frozen=True, slots=True)
class VerifiedSnapshot:
    height: int
    manifest: SnapshotManifest
    digest: bytes
    upper_nodes: dict[bytes, bytes]
    block: Block
    block_bytes: bytes
    cert: CommitCertificate
    cert_bytes: bytes
    proofs: tuple[EpochChangeProof, ...]
    last_set: ValidatorSet  # the set the proofs lead to: the one of the state's epoch


def verify_snapshot_head(anchor: StateSyncAnchor, head: SnapshotHead) -> VerifiedSnapshot:
    """Check a SNAPSHOT answer against the trust anchor; StateSyncRefused otherwise (nothing is written)."""
    try:
        manifest = SnapshotManifest.decode(head.manifest)
        cert = CommitCertificate.decode(head.cert)
        block = decode_block(head.block)
        proofs = tuple(EpochChangeProof.decode(p) for p in head.proofs)
    except (CodecError, SnapshotError) as exc:
        raise StateSyncRefused("snapshot_uncertified", f"malformed snapshot answer: {exc}") from None
    if not (manifest.height == cert.height == block.header.height == head.height) or block.id != cert.block_id:
        raise StateSyncRefused("snapshot_uncertified", "the block, certificate and manifest name different heights")
    if [p.epoch for p in proofs] != list(range(len(proofs))) or len(proofs) < cert.epoch:
        raise StateSyncRefused("snapshot_uncertified", "the epoch-change proofs do not lead to the certificate's epoch")
    try:
        cert_set = verify_epoch_chain(
            anchor.genesis_set, proofs[: cert.epoch], chain_id=anchor.consensus_chain_id, verifier=anchor.verifier
        )
        check_commit_certificate(cert_set, cert, chain_id=anchor.consensus_chain_id, verifier=anchor.verifier)
        last_set = verify_epoch_chain(
            cert_set, proofs[cert.epoch :], chain_id=anchor.consensus_chain_id, verifier=anchor.verifier
        )
    except (CommitCertificateError, EpochChainError) as exc:
        raise StateSyncRefused(
            "snapshot_uncertified", f"no valid certificate for height {head.height}: {exc.message} ({exc.code})"
        ) from None
    for proof in proofs[cert.epoch :]:  # epochs ended at or below the snapshot height only
        if proof.cert.height > cert.height:
            raise StateSyncRefused("snapshot_uncertified", "an epoch-change proof beyond the snapshot height")
    try:
        upper = manifest.verify(cert.state_root)
    except SnapshotError as exc:
        raise StateSyncRefused("snapshot_manifest_invalid", exc.message) from None
    return VerifiedSnapshot(
        head.height, manifest, manifest.digest, upper, block, head.block, cert, head.cert, proofs, last_set
    )


@dataclass(slots=True)
class _Peer:
    failures: int = 0
    retry_at: int = 0
    busy: bool = False
    logged: set[str] = field(default_factory=set)


class StateSync:
    def __init__(self, anchor: StateSyncAnchor, store: LedgerStore, *, min_height: int = MIN_SNAPSHOT_HEIGHT) -> None:
        self.anchor = anchor
        self.store = store
        self.min_height = min_height
        self._ids = iter(range(1, 1 << 62))
        self.offers: dict[str, dict[int, bytes]] = {}  # peer -> height -> manifest digest
        self.peers: dict[str, _Peer] = {}
        self.snapshot: VerifiedSnapshot | None = None
        self._head_request: tuple[str, int, int] | None = None  # (peer, request id, deadline)
        self._missing: list[int] = []
        self._inflight: dict[int, tuple[str, int, int]] = {}  # request id -> (peer, chunk index, deadline)
        self.chunks_done = 0
        self.refusals: dict[str, int] = {}
        self.keys = 0
        self.abandoned = 0  # snapshots chosen, then dropped because no peer served them any more

    # -- bookkeeping ---------------------------------------------------------------------------------------------

    def _peer(self, peer: str) -> _Peer:
        p = self.peers.get(peer)
        if p is None:
            p = self.peers[peer] = _Peer()
        return p

    def refuse(self, peer: str, code: str, message: str, now_ms: int) -> None:
        """Back `peer` off, counting and logging (once per peer and code) why."""
        p = self._peer(peer)
        p.failures += 1
        p.retry_at = now_ms + min(BACKOFF_BASE_MS << min(p.failures - 1, 16), BACKOFF_MAX_MS)
        self.refusals[code] = self.refusals.get(code, 0) + 1
        if code not in p.logged:
            p.logged.add(code)
            log.warning("state_sync_refused peer=%s code=%s: %s (backed off)", peer, code, message)

    def on_offers(self, peer: str, offers: Sequence[tuple[int, bytes, int]]) -> None:
        self.offers[peer] = {h: d for h, d, _n in offers if h >= self.min_height}
        self._peer(peer)

    def best_height(self) -> int | None:
        heights = [h for o in self.offers.values() for h in o]
        return max(heights, default=None)

    def _ready(self, peer: str, now_ms: int) -> bool:
        p = self._peer(peer)
        return not p.busy and p.retry_at <= now_ms

    @property
    def done(self) -> bool:
        return self.snapshot is not None and not self._missing and not self._inflight

    # -- requests ------------------------------------------------------------------------------------------------

    def next_requests(self, peers: Sequence[str], now_ms: int) -> list[tuple[str, GetSnapshot | GetChunk]]:
        out: list[tuple[str, GetSnapshot | GetChunk]] = []
        self._abandon_unserved()
        if self.snapshot is None:
            if self._head_request is not None:
                return out
            height = self.best_height()
            if height is None:
                return out
            candidates = sorted(
                (self._peer(p).failures, p)
                for p in peers
                if self.offers.get(p, {}).get(height) is not None and self._ready(p, now_ms)
            )
            if not candidates:
                return out
            peer = candidates[0][1]
            rid = next(self._ids)
            self._head_request = (peer, rid, now_ms + CHUNK_TIMEOUT_MS)
            self._peer(peer).busy = True
            return [(peer, GetSnapshot(rid, height))]
        snap = self.snapshot
        serving = sorted(
            (self._peer(p).failures, p) for p in peers if self.offers.get(p, {}).get(snap.height) == snap.digest
        )
        for _, peer in serving:
            if not self._missing:
                break
            if not self._ready(peer, now_ms):
                continue
            index = self._missing.pop()
            rid = next(self._ids)
            self._inflight[rid] = (peer, index, now_ms + CHUNK_TIMEOUT_MS)
            self._peer(peer).busy = True
            out.append((peer, GetChunk(rid, snap.height, index)))
        return out

    def _abandon_unserved(self) -> None:
        """Drop the chosen snapshot when no peer offers it any more: it is chosen again from the offers (which the
        host refreshes while none is chosen); the next install deletes what this one wrote."""
        snap = self.snapshot
        if snap is None or any(o.get(snap.height) == snap.digest for o in self.offers.values()):
            return
        log.warning("state_sync_abandoned height=%d chunks_written=%d: no peer serves it any more; choosing again",
                    snap.height, self.chunks_done)
        for peer, _index, _deadline in self._inflight.values():
            self._peer(peer).busy = False
        self.snapshot = None
        self._missing = []
        self._inflight = {}
        self.chunks_done = 0
        self.keys = 0
        self.abandoned += 1

    def expire(self, now_ms: int) -> list[str]:
        """Drop the requests past their deadline (their peers backed off, their chunks asked again)."""
        expired = []
        if self._head_request is not None and self._head_request[2] <= now_ms:
            peer = self._head_request[0]
            self._head_request = None
            self._peer(peer).busy = False
            self.refuse(peer, "snapshot_timeout", "no SNAPSHOT answer in time", now_ms)
            expired.append(peer)
        for rid, (peer, index, deadline) in list(self._inflight.items()):
            if deadline <= now_ms:
                del self._inflight[rid]
                self._missing.append(index)
                self._peer(peer).busy = False
                self.refuse(peer, "snapshot_timeout", f"no answer for chunk {index} in time", now_ms)
                expired.append(peer)
        return expired

    # -- answers -------------------------------------------------------------------------------------------------

    def on_head(self, peer: str, msg: SnapshotHead, now_ms: int) -> VerifiedSnapshot | None:
        if self._head_request is None or self._head_request[:2] != (peer, msg.request_id):
            return None  # unsolicited or late
        self._head_request = None
        self._peer(peer).busy = False
        if not msg.manifest:
            self.offers.get(peer, {}).pop(msg.height, None)
            self.refuse(peer, "snapshot_not_served", f"no snapshot of height {msg.height} any more", now_ms)
            return None
        try:
            snap = verify_snapshot_head(self.anchor, msg)
        except StateSyncRefused as exc:
            self.offers.pop(peer, None)  # nothing it offers is trusted any more
            self.refuse(peer, exc.code, exc.message, now_ms)
            return None
        if self.offers.get(peer, {}).get(snap.height) != snap.digest:
            self.refuse(peer, "snapshot_uncertified", "the manifest is not the one offered", now_ms)
            return None
        self.snapshot = snap
        self.keys = snap.manifest.keys
        self._missing = list(range(len(snap.manifest.chunks) - 1, -1, -1))  # popped from the end: index order
        self.store.begin_snapshot_install(snap.height)
        log.info(
            "state_sync_snapshot height=%d epoch=%d chunks=%d keys=%d from=%s",
            snap.height,
            snap.cert.epoch,
            len(snap.manifest.chunks),
            snap.manifest.keys,
            peer,
        )
        return snap

    def on_chunk(self, peer: str, msg: Chunk, now_ms: int) -> bool:
        """True when the chunk verified and was written."""
        entry = self._inflight.get(msg.request_id)
        snap = self.snapshot
        if entry is None or entry[0] != peer or snap is None or (msg.height, msg.index) != (snap.height, entry[1]):
            return False  # unsolicited or late: ignored
        del self._inflight[msg.request_id]
        self._peer(peer).busy = False
        index = entry[1]
        if not msg.data:
            self._missing.append(index)
            self.offers.get(peer, {}).pop(snap.height, None)
            self.refuse(peer, "snapshot_not_served", f"chunk {index} not served", now_ms)
            return False
        nodes: dict[bytes, bytes] = {}
        try:
            pairs = verify_chunk(snap.manifest, index, msg.data, nodes)
            # install_chunk writes the replay index `T` the chunk's buckets derive: a bucket that does not decode (a
            # snapshot of another protocol version, whose chunks verify against its own root) refuses the chunk here.
            replay_index_entries(pairs)
        except (SnapshotError, DecodeError) as exc:
            self._missing.append(index)
            self.offers.get(peer, {}).pop(snap.height, None)  # its copy is corrupt: not asked for this one again
            code = "snapshot_chunk_too_large" if exc.code == 725 else "snapshot_chunk_invalid"
            self.refuse(peer, code, f"height {snap.height} chunk {index}: {exc.message}", now_ms)
            return False
        self.store.install_chunk(pairs, nodes)
        self.chunks_done += 1
        p = self._peer(peer)
        p.failures = max(0, p.failures - 1)
        return True

    def finish(self) -> int:
        """Every chunk is written: check the state's epoch against the proofs, then make it the store's head."""
        snap = self.snapshot
        assert snap is not None and self.done
        record = current_epoch(self.store)
        if record.epoch != snap.last_set.epoch or validator_set_entries(record) != snap.last_set.entries():
            raise NodeError("snapshot_uncertified", "the snapshot's state names another epoch than its proofs")
        extra = {GENESIS_KEY: self.anchor.genesis_hash, cert_key(snap.height): snap.cert_bytes}
        for proof in snap.proofs:
            extra[epoch_proof_key(proof.epoch)] = proof.encode()
        self.store.finish_snapshot_install(
            SnapshotInstall(
                snap.height,
                snap.block.id,
                snap.block_bytes,
                snap.cert.state_root,
                self.anchor.genesis_root,
                snap.upper_nodes,
                extra,
            )
        )
        log.info("state_sync_installed height=%d keys=%d chunks=%d", snap.height, self.keys, self.chunks_done)
        return snap.height
