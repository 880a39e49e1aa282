"""One established connection to a peer and its I/O: the peer's bounded send queue, the writer that seals queued
frames into batched socket writes, the reader that opens frames (a length is checked before its body is read), and
delivery into the transport's bounded inbox, through the fault injector's blocks and delay line (testnets only).

The transport (node/net/transport.py) creates the links, decides which connection to keep and closes them; `LinkIO`
runs their loops. Limits: docs/limits.md.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable

from node.net.faults import FaultInjector
from node.net.framing import (
    KIND_CLOSE,
    KIND_DATA,
    KIND_PING,
    KIND_PONG,
    LENGTH_BYTES,
    FrameError,
    FrameOpener,
    FrameSealer,
    body_length,
)
from node.net.handshake import Peer
from node.net.transport_config import TransportConfig, TransportCounters

__all__ = ["READ_BUFFER_BYTES", "Link", "LinkIO", "PeerState", "SendQueue", "remote_address"]

# StreamReader buffer per connection (asyncio pauses reading above twice this).
READ_BUFFER_BYTES = 256 * 1024
READ_CHUNK_BYTES = 64 * 1024
MAX_CLOSE_REASON_BYTES = 64
# The writer seals up to this many queued frames (or bytes) into one socket write.
WRITE_BATCH_FRAMES = 64
WRITE_BATCH_BYTES = 256 * 1024


class SendQueue:
    """The frames queued for one peer, bounded by `send_queue_frames` and `send_queue_bytes` (oldest dropped)."""

    __slots__ = ("bytes", "event", "items")

    def __init__(self) -> None:
        self.items: deque[tuple[int, bytes, float]] = deque()
        self.bytes = 0
        self.event = asyncio.Event()

    def clear(self) -> int:
        dropped = len(self.items)
        self.items.clear()
        self.bytes = 0
        return dropped


class Link:
    """One authenticated connection: its stream, frame keys, tasks, timestamps and (testnets) delay line."""

    __slots__ = (
        "closed",
        "delay_line",
        "deliver_task",
        "dialer",
        "draining",
        "key",
        "last_received",
        "last_sent",
        "opener",
        "outbound",
        "peer_id",
        "reader",
        "reader_task",
        "remote",
        "sealer",
        "writer",
        "writer_task",
    )

    def __init__(
        self,
        peer_id: str,
        dialer: str,
        outbound: bool,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        sealer: FrameSealer,
        opener: FrameOpener,
        now: float,
    ) -> None:
        self.peer_id = peer_id
        # The identity key the peer authenticated with on this link.
        self.key = b""
        self.dialer = dialer
        self.outbound = outbound
        self.remote = remote_address(writer)
        self.reader = reader
        self.writer = writer
        self.sealer = sealer
        self.opener = opener
        self.reader_task: asyncio.Task[None] | None = None
        self.writer_task: asyncio.Task[None] | None = None
        self.deliver_task: asyncio.Task[None] | None = None
        self.delay_line: deque[tuple[float, bytes]] = deque()
        self.last_received = now
        self.last_sent = now
        self.closed = False
        self.draining = False


class PeerState:
    """A peer of the set: its entry, its send queue (kept across a replaced link), its link and its dialler."""

    __slots__ = ("dial_task", "down", "link", "peer", "queue")

    def __init__(self, peer: Peer) -> None:
        self.peer = peer
        self.queue = SendQueue()
        self.link: Link | None = None
        self.down = asyncio.Event()
        self.down.set()
        self.dial_task: asyncio.Task[None] | None = None


def remote_address(writer: asyncio.StreamWriter) -> str:
    name = writer.get_extra_info("peername")
    if isinstance(name, tuple) and len(name) >= 2:
        return f"{name[0]}:{name[1]}"
    return str(name)


class LinkIO:
    """The loops of every link of one transport: they share its config, counters, inbox and fault injector, and
    close a link through `drop_link(link, reason, notify=...)` (the transport's, which also updates its peer table)."""

    def __init__(
        self,
        config: TransportConfig,
        counters: TransportCounters,
        inbox: asyncio.Queue[tuple[str, bytes]],
        faults: FaultInjector,
        drop_link: Callable[..., None],
        log: Callable[..., None],
    ) -> None:
        self._config = config
        self.counters = counters
        self._inbox = inbox
        self._faults = faults
        self._drop_link = drop_link
        self._log = log

    def enqueue(self, state: PeerState, kind: int, payload: bytes) -> None:
        queue = state.queue
        cfg = self._config
        queue.items.append((kind, payload, asyncio.get_running_loop().time()))
        queue.bytes += len(payload)
        while len(queue.items) > cfg.send_queue_frames or queue.bytes > cfg.send_queue_bytes:
            _, dropped, _ = queue.items.popleft()
            queue.bytes -= len(dropped)
            self.counters.drops["send_queue_full"] += 1
        assert queue.items and queue.bytes >= 0
        queue.event.set()

    async def write_loop(self, state: PeerState, link: Link) -> None:
        """Seals queued frames and writes them in batches (one write and one drain per batch). Sealing and writing
        happen without an await in between, so frame counters reach the socket in order."""
        queue = state.queue
        writer = link.writer
        sealer = link.sealer
        loop = asyncio.get_running_loop()
        counters = self.counters
        batch: list[bytes] = []
        try:
            while True:
                if not queue.items:
                    await writer.drain()
                    if link.draining:
                        return
                    queue.event.clear()
                    await queue.event.wait()
                    continue
                batch_bytes = 0
                while queue.items and len(batch) < WRITE_BATCH_FRAMES and batch_bytes < WRITE_BATCH_BYTES:
                    kind, payload, enqueued = queue.items.popleft()
                    queue.bytes -= len(payload)
                    delay_ms = self._faults.delay_for(link.peer_id)
                    if delay_ms:
                        wait = enqueued + delay_ms / 1000 - loop.time()
                        if wait > 0:
                            if batch:
                                writer.write(b"".join(batch))
                                batch.clear()
                            counters.faults["delayed_send"] += 1
                            await asyncio.sleep(wait)
                    frame = sealer.seal(kind, payload)
                    batch.append(frame)
                    batch_bytes += len(frame)
                    counters.frames_out += 1
                    counters.bytes_out += len(frame)
                    if kind == KIND_DATA:
                        counters.messages_out += 1
                if batch:
                    writer.write(b"".join(batch) if len(batch) > 1 else batch[0])
                    batch.clear()
                link.last_sent = loop.time()
                await writer.drain()
        except (ConnectionError, OSError):
            self._drop_link(link, "connection_lost", notify=False)

    async def read_loop(self, state: PeerState, link: Link) -> None:
        reader = link.reader
        opener = link.opener
        max_payload = self._config.max_payload_bytes
        loop = asyncio.get_running_loop()
        counters = self.counters
        notify = False
        # Bytes read but not yet parsed are buffer[offset:]: one read() usually brings many small frames.
        buffer = b""
        offset = 0
        try:
            while True:
                if len(buffer) - offset < LENGTH_BYTES:
                    chunk = await reader.read(READ_CHUNK_BYTES)
                    if not chunk:
                        raise asyncio.IncompleteReadError(buffer[offset:], None)
                    buffer = buffer[offset:] + chunk
                    offset = 0
                    continue
                length = body_length(buffer[offset : offset + LENGTH_BYTES], max_payload)
                end = offset + LENGTH_BYTES + length
                if len(buffer) < end:
                    # Only now, with the length accepted, is the rest of the frame read.
                    rest = await reader.readexactly(end - len(buffer))
                    buffer = buffer[offset:] + rest
                    offset = 0
                    end = LENGTH_BYTES + length
                body = buffer[offset + LENGTH_BYTES : end]
                offset = end
                kind, payload = opener.open(body)
                link.last_received = loop.time()
                counters.frames_in += 1
                counters.bytes_in += LENGTH_BYTES + length
                if kind == KIND_DATA:
                    await self.deliver(state, link, payload)
                elif kind == KIND_PING:
                    self.enqueue(state, KIND_PONG, b"")
                elif kind == KIND_CLOSE:
                    remote_reason = payload[:MAX_CLOSE_REASON_BYTES].decode("utf-8", "replace")
                    self._log(logging.INFO, "peer_said_goodbye", peer=link.peer_id, reason=remote_reason)
                    reason = "remote_closed"
                    break
                elif kind != KIND_PONG:
                    raise FrameError("unexpected_kind", f"frame kind {kind} after the handshake")
        except FrameError as error:
            reason, notify = error.code, True
            self._log(logging.WARNING, "frame_refused", peer=link.peer_id, reason=error.code, detail=error.message)
        except asyncio.IncompleteReadError:
            reason = "eof"
        except (ConnectionError, OSError):
            reason = "connection_lost"
        self._drop_link(link, reason, notify=notify)

    async def deliver(self, state: PeerState, link: Link, payload: bytes) -> None:
        peer_id = link.peer_id
        if peer_id in self._faults.blocked:
            self.counters.faults["blocked_receive"] += 1
            return
        delay_ms = self._faults.delay_for(peer_id)
        if delay_ms == 0 and not link.delay_line:
            await self._inbox.put((peer_id, payload))
            self.counters.messages_in += 1
            link.last_received = asyncio.get_running_loop().time()
            return
        if len(link.delay_line) >= self._config.receive_queue_frames:
            self.counters.drops["delay_line_full"] += 1
            return
        release = asyncio.get_running_loop().time() + delay_ms / 1000
        link.delay_line.append((release, payload))
        self.counters.faults["delayed_receive"] += 1
        if link.deliver_task is None or link.deliver_task.done():
            link.deliver_task = asyncio.create_task(self.deliver_delayed(link))

    async def deliver_delayed(self, link: Link) -> None:
        """Releases delayed frames in arrival order; the head stays in the line until handed over, so the reader
        never overtakes it."""
        loop = asyncio.get_running_loop()
        while link.delay_line:
            release, payload = link.delay_line[0]
            wait = release - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if link.peer_id in self._faults.blocked:
                self.counters.faults["blocked_receive"] += 1
            else:
                await self._inbox.put((link.peer_id, payload))
                self.counters.messages_in += 1
            link.delay_line.popleft()
