"""A client that goes away or sends garbage is not a server error: closing an event-stream WebSocket while the
node is sending to it ends the stream quietly (no internal error, no 5xx), and a request whose header holds a NUL
byte is answered 400 by the HTTP server without an ERROR-level traceback."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import aiohttp
import pytest

from node.api import ApiConfig
from node.api.server import start_api
from tests.node.api.api_world import ChainFacade, MirrorWorld, populated_world

OPEN = ApiConfig(open_reads=True)


@pytest.fixture
def world(tmp_path: Path) -> MirrorWorld:
    return populated_world(str(tmp_path / "db"))


def errors_in(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.levelno >= logging.ERROR]


def test_closing_a_stream_while_the_node_sends_is_not_an_internal_error(
        world: MirrorWorld, caplog: pytest.LogCaptureFixture) -> None:
    """Blocks commit back to back while clients close their streams normally: the node is writing to a socket
    whose close handshake has started (what a client sees after a node restart, when the resumed stream catches
    up). Every close is clean: the server closes with 1000 and logs no error."""
    caplog.set_level(logging.INFO)

    async def main() -> None:
        server = await start_api(ChainFacade(world), "127.0.0.1", 0, OPEN)
        stop = asyncio.Event()

        async def commit_blocks() -> None:
            while not stop.is_set():
                world.submit()  # an empty block: every subscriber gets its checkpoint message
                await asyncio.sleep(0)

        committer = asyncio.ensure_future(commit_blocks())
        try:
            async with aiohttp.ClientSession() as session:
                for _ in range(20):
                    async with session.ws_connect(server.url + "/v1/events") as ws:
                        for _ in range(3):
                            msg = await ws.receive_json()
                            assert msg["type"] in ("block", "event"), msg
                        await ws.close()
                        assert ws.close_code == aiohttp.WSCloseCode.OK, ws.close_code
        finally:
            stop.set()
            await committer
            await server.stop()

    asyncio.run(asyncio.wait_for(main(), 60))
    assert errors_in(caplog) == []


def test_a_nul_byte_in_a_header_is_a_clean_400(world: MirrorWorld, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)

    async def main() -> bytes:
        server = await start_api(ChainFacade(world), "127.0.0.1", 0, OPEN)
        try:
            reader, writer = await asyncio.open_connection(server.host, server.port)
            writer.write(b"GET /v1/status HTTP/1.1\r\nHost: node\r\nX-Probe: a\x00b\r\n\r\n")
            await writer.drain()
            answer = await reader.read()
            writer.close()
            return answer
        finally:
            await server.stop()

    answer = asyncio.run(asyncio.wait_for(main(), 20))
    assert answer.split(b" ", 2)[1] == b"400", answer[:200]
    assert errors_in(caplog) == []
    quiet = [r for r in caplog.records if r.getMessage().startswith("bad_http_request")]
    assert len(quiet) == 1 and quiet[0].levelno == logging.INFO and quiet[0].exc_info is None
