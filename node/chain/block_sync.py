"""Block sync without I/O: a node that is behind fetches certified blocks from its peers in batches; a node serves
the blocks it has (messages: node/net/messages.py, GET_BLOCKS and BLOCKS).

    sync = BlockSync()
    sync.begin(at_least, now_ms)                       a catch-up session starts
    request = sync.next_request(head, target, reported, peers, now_ms)   -> BlockRequest, or None: done
    batch = sync.accept(peer, request_id, items)       -> [(Block, CommitCertificate)], or SyncRefused
    ... the caller verifies and commits each block (through the Application), then:
    sync.succeeded(peer, applied) / sync.failed(peer, now_ms, peers)
    while a batch is applied, the next one is fetched ahead (next_request from the height it ends at): an answer
    that arrives before the batch is done waits in sync.hold(...) / sync.take_held(); sync.cancel() drops both when
    the batch stops short (its blocks no longer fit)
    sync.timed_out(now_ms) -> peer whose request expired, or None
    rate = sync.end(now_ms)
    items = sync.serve(peer, start, max_count, app, now_ms) -> [[block_bytes, cert_bytes], ...] or None (rate-limited)

Which height and which peer: the session goes no higher than a height f+1 voting power reports, or a certified
height the caller holds (`at_least`, a commit its replica made), so one lying peer cannot send the node chasing a
height nobody has. Among the peers that reported a useful height, the highest first and, among equals, the one that
failed least often. A peer that fails to serve (timeout, send failure, invalid batch) is skipped for the rest of the
session and not asked again before a backoff that doubles with each consecutive failure (SYNC_BACKOFF_BASE_S ..
SYNC_BACKOFF_MAX_S), remembered across sessions; one good batch clears it. The backoff map is keyed by peer id and
pruned to the current peers, so it is bounded by the validator set.

Fetching ahead: the batch after the one being applied is requested at once, so the serving peer reads, encodes and
sends it while this node executes, and the node never waits a round trip between batches. At most one request is in
flight and at most one answer waits (`hold`: one BLOCKS answer, MAX_RESPONSE_BYTES at most), as before.

Every block's commit certificate is verified by the caller against the validator set of the state it extends
(Application.check_certificate), in height order, so a batch that crosses an epoch boundary is checked with each
epoch's set; the epoch-ending block's commit stores its EpochChangeProof (node/chain/execution.py).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Mapping, Sequence
from typing import Any, Final, NamedTuple, Protocol

from consensus.codec import CodecError
from consensus.messages import Block, CommitCertificate, decode_block
from node.errors import NodeError

__all__ = [
    "MAX_AHEAD",
    "MAX_BATCH",
    "MAX_RESPONSE_BYTES",
    "MAX_SERVED_PER_SECOND",
    "REQUEST_TIMEOUT_MS",
    "BlockRequest",
    "BlockSync",
    "SyncRefused",
]

log = logging.getLogger("node.chain.block_sync")

MAX_BATCH: Final = 128
MAX_RESPONSE_BYTES: Final = 3 << 20
# Answers fetched ahead of the batch being applied that may wait for it (held).
MAX_AHEAD: Final = 1
REQUEST_TIMEOUT_MS: Final = 5_000
# Served GET_BLOCKS per peer per second (a peer cannot make us stream the chain at it in a loop).
MAX_SERVED_PER_SECOND: Final = 20
# A peer that failed to serve is not asked again for BASE * 2^(failures - 1) seconds, at most MAX.
SYNC_BACKOFF_BASE_S: Final = 2.0
SYNC_BACKOFF_MAX_S: Final = 120.0


class SyncRefused(NodeError, ValueError):
    """A BLOCKS answer this node does not use: code "unsolicited" (nobody asked) or "bad_batch" (malformed)."""


class BlockRequest(NamedTuple):
    peer: str
    request_id: int
    start: int
    max_count: int


class CertifiedSource(Protocol):
    def certified_raw(self, start: int, max_count: int, max_bytes: int) -> list[list[bytes]]: ...


class BlockSync:
    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self.active = False
        self.at_least = 0
        self._bad: set[str] = set()
        self._request: tuple[str, int, int] | None = None  # (peer, request id, deadline ms)
        # (peer, request id, batch) fetched ahead, waiting for the batch before it to be applied
        self._held: tuple[str, int, list[tuple[Block, CommitCertificate]]] | None = None
        self._served: dict[str, tuple[int, int]] = {}  # peer -> (second, requests served in it)
        # peer -> (consecutive failures to serve, monotonic ms before which it is not asked)
        self.backoff: dict[str, tuple[int, int]] = {}
        self.blocks_applied = 0
        self.last_rate = 0.0
        self._session_started = 0
        self._session_applied = 0

    # -- serving ------------------------------------------------------------------------------------------------

    def serve(self, peer: str, start: int, max_count: int, source: CertifiedSource,
              now_ms: int) -> list[list[bytes]] | None:
        """The items answering a peer's GET_BLOCKS, or None when it asks too often (MAX_SERVED_PER_SECOND)."""
        second = now_ms // 1000
        at, count = self._served.get(peer, (second, 0))
        if at == second and count >= MAX_SERVED_PER_SECOND:
            return None
        if len(self._served) > 4096:  # bounded: peer ids come from the admitted peer set, but stay safe
            self._served.clear()
        self._served[peer] = (second, count + 1 if at == second else 1)
        if start < 1 or max_count < 1:
            return []
        return source.certified_raw(start, min(max_count, MAX_BATCH), MAX_RESPONSE_BYTES)

    # -- fetching -----------------------------------------------------------------------------------------------

    def begin(self, at_least: int, now_ms: int) -> None:
        assert not self.active, "one catch-up session at a time"
        self.active = True
        self.at_least = at_least
        self._bad = set()
        self._request = None
        self._held = None
        self._session_started = now_ms
        self._session_applied = 0

    def end(self, now_ms: int) -> int:
        """Close the session; returns the number of blocks it applied (and sets last_rate, blocks per second)."""
        self.active = False
        self._request = None
        self._held = None
        applied = self._session_applied
        if applied:
            self.last_rate = applied * 1000 / max(now_ms - self._session_started, 1)
        return applied

    @property
    def waiting(self) -> bool:
        return self._request is not None

    @property
    def holding(self) -> bool:
        """A batch fetched ahead waits for the one before it to be applied."""
        return self._held is not None

    def hold(self, peer: str, request_id: int, batch: list[tuple[Block, CommitCertificate]]) -> None:
        """Keep the accepted answer to a request made ahead until the batch before it has been applied."""
        assert self._held is None and MAX_AHEAD == 1, "one batch fetched ahead at a time"
        self._held = (peer, request_id, batch)

    def take_held(self) -> tuple[str, int, list[tuple[Block, CommitCertificate]]] | None:
        held, self._held = self._held, None
        return held

    def cancel(self) -> None:
        """Drop the request in flight and the batch held, both made ahead of a batch that stopped short: their
        blocks no longer follow the head (a late answer is then unsolicited; nobody is blamed)."""
        self._request = None
        self._held = None

    def next_request(self, head: int, target: int, reported: Mapping[str, int], peers: Sequence[str],
                     now_ms: int) -> BlockRequest | None:
        """The next request of the session, or None when there is nothing (more) to fetch from anyone: `target` is
        the height to reach (the caller's f+1 rule and `at_least` already applied), `reported` the heights peers
        last reported, `peers` the peers that may be asked."""
        assert self.active and self._request is None
        if target <= head:
            return None
        at_least = self.at_least
        # Highest useful height first; among equals, the peer that failed least often.
        candidates = [(min(max(reported.get(p, 0), at_least), target), -self.backoff.get(p, (0, 0))[0], p)
                      for p in peers
                      if p not in self._bad and self.backoff.get(p, (0, 0))[1] <= now_ms
                      and max(reported.get(p, 0), at_least) > head]
        if not candidates:
            return None
        _, _, peer = max(candidates)
        request = BlockRequest(peer, next(self._ids), head + 1, MAX_BATCH)
        self._request = (peer, request.request_id, now_ms + REQUEST_TIMEOUT_MS)
        return request

    def deadline(self) -> int | None:
        return None if self._request is None else self._request[2]

    def timed_out(self, now_ms: int) -> str | None:
        """The peer whose request expired (the request is dropped), or None."""
        if self._request is None or now_ms < self._request[2]:
            return None
        peer = self._request[0]
        log.info("sync_request_timeout peer=%s", peer)
        self._request = None
        return peer

    def accept(self, peer: str, request_id: int, items: list[Any]) -> list[tuple[Block, CommitCertificate]]:
        """The decoded batch of the answer to the request in flight. SyncRefused("unsolicited") if nobody asked
        `peer` for it (the request stays in flight), SyncRefused("bad_batch") if it is malformed (the request is
        over; the caller counts it as the peer's failure)."""
        if self._request is None or self._request[:2] != (peer, request_id):
            raise SyncRefused("unsolicited", f"no request {request_id} to {peer} is in flight")
        self._request = None
        decoded = []
        try:
            for item in items:
                if not (isinstance(item, list) and len(item) == 2 and all(isinstance(x, bytes) for x in item)):
                    raise SyncRefused("bad_batch", "a BLOCKS item is [block_bytes, cert_bytes]")
                block = decode_block(item[0])
                cert = CommitCertificate.decode(item[1])
                if cert.block_id != block.id:
                    raise SyncRefused("bad_batch", "certificate names another block")
                decoded.append((block, cert))
        except CodecError as exc:
            raise SyncRefused("bad_batch", str(exc)) from None
        return decoded

    def succeeded(self, peer: str, applied: int) -> None:
        """`peer`'s batch was applied (`applied` blocks); an empty answer means it has nothing more for us."""
        self.blocks_applied += applied
        self._session_applied += applied
        if applied:
            self.backoff.pop(peer, None)
        else:
            self._bad.add(peer)

    def failed(self, peer: str, now_ms: int, peers: Sequence[str], applied: int = 0) -> None:
        """`peer` did not serve (timeout, send failure, a batch that does not verify after `applied` good blocks):
        skip it for the session and back it off across sessions."""
        self.blocks_applied += applied
        self._session_applied += applied
        self._bad.add(peer)
        if self._request is not None and self._request[0] == peer:
            self._request = None
        if peer not in peers:
            return
        for gone in [p for p in self.backoff if p not in peers]:  # left the peer set (epoch change)
            del self.backoff[gone]
        failures = self.backoff.get(peer, (0, 0))[0] + 1
        delay_s = min(SYNC_BACKOFF_BASE_S * (1 << min(failures - 1, 16)), SYNC_BACKOFF_MAX_S)
        self.backoff[peer] = (failures, now_ms + int(delay_s * 1000))
        assert len(self.backoff) <= len(peers)
        log.info("sync_peer_backoff peer=%s failures=%d retry_in_s=%.0f", peer, failures, delay_s)
