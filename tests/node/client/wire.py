"""Test-side tools that speak the peer protocol on real sockets: a frame-aware TCP proxy (to observe, tamper with,
replay or man-in-the-middle a connection) and a raw peer that completes the handshake and then writes any bytes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from ledger.protocol import PROTOCOL_VERSION
from node.net.framing import LENGTH_BYTES, FrameSealer
from node.net.handshake import HELLO_BYTES, Handshake, Identity, PeerSet, Session

# on_frame(direction, connection index, frame index, frame bytes) -> frames to forward instead.
# direction "up" is client -> target; frame 0 of each direction is the auth frame.
FrameHook = Callable[[str, int, int, bytes], list[bytes]]


async def _read_frame(reader: asyncio.StreamReader) -> bytes:
    prefix = await reader.readexactly(LENGTH_BYTES)
    return prefix + await reader.readexactly(int.from_bytes(prefix, "big"))


class WireProxy:
    """Forwards each accepted connection to `target`, hello verbatim, then frame by frame through `on_frame`."""

    def __init__(self, target: tuple[str, int], on_frame: FrameHook | None = None) -> None:
        self.target = target
        self.on_frame = on_frame
        self.captured = {"up": bytearray(), "down": bytearray()}
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: list[asyncio.StreamWriter] = []

    async def start(self) -> tuple[str, int]:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        host, port = self._server.sockets[0].getsockname()[:2]
        return host, port

    async def close(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._tasks:
            task.cancel()
        for writer in self._writers:
            writer.close()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        index = self.connections
        self.connections += 1
        target_reader, target_writer = await asyncio.open_connection(*self.target)
        self._writers += [client_writer, target_writer]
        for args in ((client_reader, target_writer, "up"), (target_reader, client_writer, "down")):
            task = asyncio.create_task(self._pump(*args, index))
            self._tasks.add(task)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, direction: str, index: int) -> None:
        try:
            hello = await reader.readexactly(HELLO_BYTES)
            self.captured[direction] += hello
            writer.write(hello)
            frame_index = 0
            while True:
                frame = await _read_frame(reader)
                self.captured[direction] += frame
                out = self.on_frame(direction, index, frame_index, frame) if self.on_frame else [frame]
                for item in out:
                    writer.write(item)
                await writer.drain()
                frame_index += 1
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        writer.close()


def first_sealer(handshake: Handshake) -> FrameSealer:
    """A sealer at counter 0 for the handshake's sending direction (its own already sealed its auth frame)."""
    keys = handshake.keys
    assert keys is not None
    return FrameSealer(keys.low_to_high if handshake.role == 0 else keys.high_to_low)


class MitmProxy:
    """Runs its own handshake with the client and with the target, under its own identity, and relays the target's
    auth message to the client re-encrypted: what an attacker on the path can do without the target's key."""

    def __init__(
        self, attacker: Identity, chain_id: str, peer_set: PeerSet, target: tuple[str, int],
        protocol_version: int = PROTOCOL_VERSION, *, genesis_hash: bytes,
    ) -> None:
        self.attacker, self.chain_id, self.peer_set, self.target = attacker, chain_id, peer_set, target
        self.protocol_version, self.genesis_hash = protocol_version, genesis_hash
        self.relayed = 0
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    async def start(self) -> tuple[str, int]:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        host, port = self._server.sockets[0].getsockname()[:2]
        return host, port

    async def close(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        target_reader, target_writer = await asyncio.open_connection(*self.target)
        self._writers += [client_writer, target_writer]
        with_client, with_target = (
            Handshake(self.attacker, self.chain_id, self.peer_set, protocol_version=self.protocol_version,
                      genesis_hash=self.genesis_hash)
            for _ in range(2)
        )
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError, OSError):
            client_writer.write(with_client.hello())
            target_writer.write(with_target.hello())
            with_client.receive_hello(await client_reader.readexactly(HELLO_BYTES))
            with_target.receive_hello(await target_reader.readexactly(HELLO_BYTES))
            target_auth = await _read_frame(target_reader)
            assert with_target.opener is not None
            kind, payload = with_target.opener.open(target_auth[LENGTH_BYTES:])
            client_writer.write(first_sealer(with_client).seal(kind, payload))
            self.relayed += 1
            await client_reader.read()


async def raw_peer(
    identity: Identity, chain_id: str, peer_set: PeerSet, address: tuple[str, int],
    protocol_version: int = PROTOCOL_VERSION, *, genesis_hash: bytes,
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, Session]:
    """A peer with a valid identity that completes the handshake by hand and then leaves the socket to the test."""
    reader, writer = await asyncio.open_connection(*address)
    handshake = Handshake(identity, chain_id, peer_set, protocol_version=protocol_version, genesis_hash=genesis_hash)
    writer.write(handshake.hello())
    writer.write(handshake.receive_hello(await reader.readexactly(HELLO_BYTES)))
    try:
        frame = await _read_frame(reader)
        session = handshake.receive_auth(frame[LENGTH_BYTES:])
        writer.write(handshake.accept())
        handshake.receive_verdict((await _read_frame(reader))[LENGTH_BYTES:])
    except BaseException:
        writer.close()
        raise
    return reader, writer, session


async def read_frame(reader: asyncio.StreamReader) -> bytes:
    return await _read_frame(reader)
