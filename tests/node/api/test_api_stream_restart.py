"""Issue 19 item 9 as an institution's tester ran it, on a real node process: subscribe to the event stream, kill -9
the node and start it again, resume from the last height seen (no gap, no duplicate), then close the client
normally. Neither the close nor the restart is a server error: the node's log holds no error or traceback and its
access log no 5xx."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from node.tools.testnet import Testnet
from tests.node.api.live_node import one_node_testnet


@pytest.fixture
def live_node(tmp_path: Path) -> Iterator[Testnet]:
    with one_node_testnet(tmp_path, "stream", open_reads=True, empty_block_interval_ms=100, users=2) as net:
        yield net


async def _blocks(url: str, from_height: int, count: int) -> list[int]:
    """Heights of the first `count` block messages of a stream from `from_height` (inclusive), then a normal
    close."""
    heights: list[int] = []
    async with aiohttp.ClientSession() as session, session.ws_connect(
            f"{url}/v1/events?from_height={from_height}") as ws:
        while len(heights) < count:
            msg = await ws.receive_json(timeout=20)
            if msg["type"] == "block":
                heights.append(int(msg["height"]))
        await ws.close()
        assert ws.close_code == aiohttp.WSCloseCode.OK, ws.close_code
    return heights


def test_a_stream_resumed_across_a_kill_and_closed_normally_is_no_server_error(live_node: Testnet) -> None:
    url = live_node.api_url(0)
    first = asyncio.run(_blocks(url, 1, 5))
    assert first == list(range(1, 6)), first
    live_node.kill(0)
    live_node.start(0)
    live_node.wait_up(30, min_height=first[-1] + 1)
    resumed = asyncio.run(_blocks(url, first[-1] + 1, 5))
    assert resumed == list(range(first[-1] + 1, first[-1] + 6)), resumed  # no gap, no duplicate
    # Clients resuming from far behind close while the node is still sending them the backlog.
    live_node.wait_up(30, min_height=resumed[-1] + 40)
    for _ in range(10):
        assert asyncio.run(_blocks(url, 1, 1)) == [1]
    log = Path(live_node.log_path(0)).read_text()
    bad = [line for line in log.splitlines()
           if "level=error" in line or "level=critical" in line or "Traceback" in line or "internal error" in line
           or " 503 " in line or " 500 " in line]
    assert bad == [], bad[:5]
