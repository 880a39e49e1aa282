"""Block sync: a node that is behind fetches certified blocks from its peers in batches and applies them.

Messages (node channel 0x02, msgpack):
    GET_BLOCKS [2, request_id, from_height, max_count]      ask a peer for committed blocks from `from_height`
    BLOCKS     [3, request_id, [[block_bytes, cert_bytes], ...]]   consecutive blocks with their commit certificates

Every block's commit certificate is verified against the validator set of the ledger state it extends: the
EpochRecord of the state at height h - 1 certifies height h (BLS, through the node's verifier, whose cache makes one
aggregate check per block in practice). Blocks are applied in height order, and applying an epoch-ending block
switches the node's set (Validator._adopt_epoch), so the next certificate is checked with the next epoch's set; the
epoch-ending block's EpochChangeProof (its certificate and the next set) is stored with it, after checking that the
certificate's QC commits to exactly the next set this node computed. Its parent must be the current head, and
executing it must give the certified state root. Blocks are applied without the speculative path: execute, then one synced
BlockCommit each. Nothing waits for a network round trip per block: a batch of up to MAX_BATCH blocks (bounded by
MAX_RESPONSE_BYTES) travels in one message and the next batch is requested as soon as one is applied.
A peer that answers with an invalid block or certificate is skipped for the rest of the catch-up.

Catch-up goes no higher than a height f+1 voting power reports (Validator.sync_target_height) or a certified
height the caller holds (`at_least`), so one lying peer cannot send the node chasing a height nobody has. A peer
that fails to serve (timeout, send failure, invalid batch) is not asked again before a backoff that doubles with
each consecutive failure (SYNC_BACKOFF_BASE_S .. SYNC_BACKOFF_MAX_S), remembered across catch-ups; one good batch
clears it. The map is keyed by validator id, so it is bounded by the validator set.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from typing import TYPE_CHECKING, Any, Final

from consensus.certificates import CommitCertificateError
from consensus.codec import CodecError
from consensus.messages import CommitCertificate, decode_block
from node.chain.execution import ExecutionError, cert_key
from node.chain.payload import PayloadError, decode_payload

if TYPE_CHECKING:
    from node.validator.node import Validator

log = logging.getLogger("node.chain.block_sync")

MSG_GET_BLOCKS: Final = 2
MSG_BLOCKS: Final = 3
MAX_BATCH: Final = 128
MAX_RESPONSE_BYTES: Final = 3 << 20
REQUEST_TIMEOUT_S: Final = 5.0
# Served GET_BLOCKS per peer per second (a peer cannot make us stream the chain at it in a loop).
MAX_SERVED_PER_SECOND: Final = 20
# A peer that failed to serve is not asked again for BASE * 2^(failures - 1) seconds, at most MAX.
SYNC_BACKOFF_BASE_S: Final = 2.0
SYNC_BACKOFF_MAX_S: Final = 120.0


class BlockSync:
    def __init__(self, node: Validator) -> None:
        self.node = node
        self.running = False
        self._ids = itertools.count(1)
        self._waiting: dict[int, tuple[str, asyncio.Future[list[Any]]]] = {}
        self._served: dict[str, tuple[int, int]] = {}
        # validator id -> (consecutive failures to serve, monotonic time before which it is not asked)
        self.backoff: dict[str, tuple[int, float]] = {}
        self.blocks_applied = 0
        self.last_rate = 0.0

    # -- serving ------------------------------------------------------------------------------------------------

    def on_message(self, peer: str, msg: list[Any]) -> None:
        metrics = self.node.metrics
        if msg[0] == MSG_GET_BLOCKS and len(msg) == 4 and all(type(x) is int for x in msg[1:]):
            second = int(time.monotonic())
            at, count = self._served.get(peer, (second, 0))
            if at == second and count >= MAX_SERVED_PER_SECOND:
                metrics.rejected_message("sync_rate")
                return
            self._served[peer] = (second, count + 1 if at == second else 1)
            self._serve(peer, msg[1], msg[2], msg[3])
        elif msg[0] == MSG_BLOCKS and len(msg) == 3 and type(msg[1]) is int and isinstance(msg[2], list):
            waiting = self._waiting.get(msg[1])
            if waiting is None or waiting[0] != peer or waiting[1].done():
                metrics.rejected_message("unsolicited")
                return
            waiting[1].set_result(msg[2])
        else:
            metrics.rejected_message("malformed")

    def _serve(self, peer: str, request_id: int, start: int, max_count: int) -> None:
        store = self.node.store
        head = store.head()
        if head is None or start < 1:
            return
        items: list[list[bytes]] = []
        size = 0
        for height in range(start, min(head.height, start + min(max_count, MAX_BATCH) - 1) + 1):
            raw, cert = store.get_block(height), store.get_extra(cert_key(height))
            if raw is None or cert is None:
                break
            if items and size + len(raw) + len(cert) > MAX_RESPONSE_BYTES:
                break
            items.append([raw, cert])
            size += len(raw) + len(cert)
        self.node.send_node_message(peer, [MSG_BLOCKS, request_id, items])

    # -- fetching -----------------------------------------------------------------------------------------------

    async def catch_up(self, at_least: int = 0) -> int:
        """Fetch and apply blocks up to the height f+1 voting power reports (rechecked after every batch) and at
        least `at_least`, while some peer not backed off can serve. Returns the number of blocks applied.
        `at_least`: a height known to be certified (a commit the replica made): every peer is asked up to it even
        when its last STATUS reported less."""
        if self.running:
            return 0
        self.running = True
        self.node.mode = "syncing"
        applied = 0
        bad: set[str] = set()
        started = time.monotonic()
        try:
            while True:
                head = self.node.executor.head.height
                target = max(self.node.sync_target_height(), at_least)
                if target <= head:
                    break
                now = time.monotonic()
                reported = {p: h for p, (h, _) in self.node.peer_heights.items()}
                # Highest useful height first; among equals, the peer that failed least often.
                candidates = [(min(max(reported.get(p, 0), at_least), target), -self.backoff.get(p, (0, 0.0))[0], p)
                              for p in self.node.peer_ids
                              if p not in bad and self.backoff.get(p, (0, 0.0))[1] <= now
                              and max(reported.get(p, 0), at_least) > head]
                if not candidates:
                    break
                _, _, peer = max(candidates)
                got = await self._fetch(peer, head + 1)
                if got is None:
                    self._failed(peer)
                    bad.add(peer)
                    continue
                try:
                    applied += await self._apply(got)
                except (CodecError, CommitCertificateError, ValueError) as exc:
                    log.warning("sync_bad_batch peer=%s: %s", peer, exc)
                    self._failed(peer)
                    bad.add(peer)
                    continue
                if got:
                    self.backoff.pop(peer, None)
                else:
                    bad.add(peer)
        except ExecutionError as exc:
            self.node._fail(exc.code, exc.message)
        finally:
            self.running = False
        seconds = time.monotonic() - started
        if applied:
            self.last_rate = applied / max(seconds, 1e-6)
            log.info("sync_done node=%s blocks=%d seconds=%.2f blocks_per_s=%.0f height=%d", self.node.node_id,
                     applied, seconds, self.last_rate, self.node.executor.head.height)
            self.node.feed.reset_height(self.node.executor.head.height)
        return applied

    def _failed(self, peer: str) -> None:
        if peer not in self.node.peer_ids:
            return
        for gone in [p for p in self.backoff if p not in self.node.peer_ids]:  # left the peer set (epoch change)
            del self.backoff[gone]
        failures = self.backoff.get(peer, (0, 0.0))[0] + 1
        delay = min(SYNC_BACKOFF_BASE_S * (1 << min(failures - 1, 16)), SYNC_BACKOFF_MAX_S)
        self.backoff[peer] = (failures, time.monotonic() + delay)
        assert len(self.backoff) <= len(self.node.peer_ids)
        log.info("sync_peer_backoff peer=%s failures=%d retry_in_s=%.0f", peer, failures, delay)

    async def _fetch(self, peer: str, start: int) -> list[Any] | None:
        request_id = next(self._ids)
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = (peer, future)
        try:
            if not self.node.send_node_message(peer, [MSG_GET_BLOCKS, request_id, start, MAX_BATCH]):
                return None
            return await asyncio.wait_for(future, REQUEST_TIMEOUT_S)
        except TimeoutError:
            log.info("sync_request_timeout peer=%s from=%d", peer, start)
            return None
        finally:
            self._waiting.pop(request_id, None)

    async def _apply(self, items: list[Any]) -> int:
        """Verify and apply a batch. The signatures of block i+1 are checked on the verifier's worker processes
        while block i executes here, so execution skips them (node.chain.mempool.Mempool.preverify / is_verified)."""
        from node.validator.node import verify_certified

        node = self.node
        decoded = []
        for item in items:
            if not (isinstance(item, list) and len(item) == 2 and all(isinstance(x, bytes) for x in item)):
                raise ValueError("a BLOCKS item is [block_bytes, cert_bytes]")
            block = decode_block(item[0])
            cert = CommitCertificate.decode(item[1])
            if cert.block_id != block.id:
                raise ValueError("certificate names another block")
            decoded.append((block, cert))
        applied = 0
        pending = self._preverify(decoded[0][0]) if decoded else None
        for i, (block, cert) in enumerate(decoded):
            head = node.executor.head
            if block.header.height != head.height + 1 or block.header.parent_id != head.block_id:
                raise ValueError(f"block at {block.header.height} does not extend head {head.height}")
            verify_certified(node, cert)
            if pending is not None:
                await pending
            pending = self._preverify(decoded[i + 1][0]) if i + 1 < len(decoded) else None
            committed = node.executor.commit(block, cert)
            node._after_commit(committed)
            applied += 1
            self.blocks_applied += 1
            node.metrics.sync_applied(1)
            await asyncio.sleep(0)
        if pending is not None:
            pending.cancel()
        return applied

    def _preverify(self, block: Any) -> asyncio.Task[int] | None:
        try:
            payload = decode_payload(block.payload, self.node.params.max_block_txs, self.node.params.max_block_bytes)
        except PayloadError:
            return None  # execution refuses it and the node halts: the block is certified
        return asyncio.get_running_loop().create_task(self.node.pool.preverify(payload.txs))
