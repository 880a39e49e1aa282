"""The event stream: filters, replay and resume from a height, visibility, slow-consumer disconnect with the
height to resume from (and a resume that loses nothing), SSE."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import WSMsgType

from ledger import operations as o
from node.api import ApiConfig, ApiLimits
from node.api import errors as e
from node.api.routes.events import WS_CLOSE_OTHER, WS_CLOSE_SLOW_CONSUMER
from tests.node.api.api_world import (
    ALICE,
    BOB,
    DAVE,
    ISSUER,
    ApiHarness,
    MirrorWorld,
    new_tx,
    populated_world,
    signed_headers,
)

OPEN = ApiConfig(open_reads=True)


@pytest.fixture
def world(tmp_path: Path) -> MirrorWorld:
    return populated_world(str(tmp_path / "db"))


def run(world: MirrorWorld, body: Callable[[ApiHarness], Awaitable[None]], config: ApiConfig = OPEN) -> None:
    async def main() -> None:
        async with ApiHarness(world, config) as h:
            await asyncio.wait_for(body(h), 20)

    asyncio.run(main())


async def take(ws: Any, n: int) -> list[dict[str, Any]]:
    out = []
    while len(out) < n:
        msg = await ws.receive()
        assert msg.type == WSMsgType.TEXT, msg
        m = json.loads(msg.data)
        if m["type"] != "heartbeat":
            out.append(m)
    return out


async def until_block(ws: Any, height: int) -> list[dict[str, Any]]:
    out = []
    while True:
        (m,) = await take(ws, 1)
        out.append(m)
        if m["type"] == "block" and m["height"] == height:
            return out


def test_replay_from_height_then_live_with_filters(world: MirrorWorld) -> None:
    async def body(h: ApiHarness) -> None:
        head = world.store.head().height
        async with h.client.ws_connect("/v1/events?from_height=1&kind=issued") as ws:
            msgs = await until_block(ws, head)
            events = [m for m in msgs if m["type"] == "event"]
            assert [(m["event"]["attrs"]["recipient"], m["event"]["attrs"]["amount"]) for m in events] == [
                (ALICE, 50_000), (DAVE, 100_000), (BOB, 7_000)]
            blocks = [m["height"] for m in msgs if m["type"] == "block"]
            assert blocks == list(range(1, head + 1))  # every height, in order, once
            t = new_tx(world, ISSUER, o.Issue(ISSUER, "CASH-T", ALICE, 5))
            s, _ = await h.post("/v1/tx", {"tx": t.to_bytes().hex()})
            assert s == 202
            live = await until_block(ws, head + 1)
            assert [m["event"]["tx_id"] for m in live if m["type"] == "event"] == [t.tx_id.hex()]
        async with h.client.ws_connect("/v1/events?from_height=1&asset=CASH-T&account=bob@bank-b") as ws:
            msgs = await until_block(ws, head + 1)
            evs = [m["event"] for m in msgs if m["type"] == "event"]
            assert evs and all(ev["attrs"]["asset"] == "CASH-T" and BOB in ev["attrs"].values() for ev in evs)

    run(world, body)


def test_slow_consumer_is_disconnected_with_resume_height_and_loses_nothing(world: MirrorWorld) -> None:
    config = ApiConfig(open_reads=True, limits=ApiLimits(stream_buffer=4))

    async def body(h: ApiHarness) -> None:
        start = world.store.head().height + 1
        async with h.client.ws_connect("/v1/events") as ws:
            await asyncio.sleep(0.05)  # the subscription is live
            for i in range(10):  # ten commits in one go: the consumer cannot keep up with a 4-message buffer
                world.ok(ALICE, o.Transfer(ALICE, "BOND-A", (o.TransferLeg(BOB, i + 1),)))
            got: list[dict[str, Any]] = []
            while True:
                msg = await ws.receive()
                if msg.type != WSMsgType.TEXT:
                    break
                got.append(json.loads(msg.data))
            assert msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.CLOSING)
            assert ws.close_code == WS_CLOSE_SLOW_CONSUMER
            final = got[-1]
            assert final["type"] == "error" and final["code"] == e.SLOW_CONSUMER
            delivered = [m["height"] for m in got if m["type"] == "block"]
            assert final["resume_from"] == (delivered[-1] + 1 if delivered else start)
        head = world.store.head().height
        async with h.client.ws_connect(f"/v1/events?from_height={final['resume_from']}") as ws:
            rest = await until_block(ws, head)
        heights = delivered + [m["height"] for m in rest if m["type"] == "block"]
        assert heights == list(range(start, head + 1))  # no gap, no repeat
        amounts = [m["event"]["attrs"]["amount"] for m in got + rest if m["type"] == "event"]
        assert sorted(amounts) == list(range(1, 11))

    run(world, body, config)


def test_stream_respects_visibility(world: MirrorWorld) -> None:
    async def body(h: ApiHarness) -> None:
        head = world.store.head().height
        query = "from_height=1&kind=issued"
        hdrs = signed_headers(ALICE, "GET", "/v1/events", query)
        async with h.client.ws_connect(f"/v1/events?{query}", headers=hdrs) as ws:
            msgs = await until_block(ws, head)
        recipients = [m["event"]["attrs"]["recipient"] for m in msgs if m["type"] == "event"]
        assert recipients == [ALICE]
        async with h.client.ws_connect(f"/v1/events?{query}") as ws:  # unsigned: blocks only
            msgs = await until_block(ws, head)
        assert [m for m in msgs if m["type"] == "event"] == []
        bad = signed_headers(ALICE, "GET", "/v1/events", "kind=issued")
        async with h.client.get(f"/v1/events?{query}", headers=bad) as r:
            assert r.status == 401 and (await r.json())["code"] == e.AUTH_BAD_SIGNATURE

    run(world, body, ApiConfig())


def test_bad_filters_are_refused(world: MirrorWorld) -> None:
    async def body(h: ApiHarness) -> None:
        s, b = await h.get("/v1/events", query="kind=no_such_kind")
        assert (s, b["code"]) == (400, e.BAD_REQUEST)
        s, b = await h.get("/v1/events", query="account=NOT VALID")
        assert (s, b["code"]) == (400, e.BAD_REQUEST)
        s, b = await h.get("/v1/events", query="kind=" + ",".join(["transferred"] * 17))
        assert (s, b["code"]) == (400, e.BAD_REQUEST)

    run(world, body)


def test_plain_http_on_the_websocket_path_gets_the_sse_stream(world: MirrorWorld) -> None:
    """GET /v1/events without the upgrade headers is the same stream as /v1/events/sse (the document describes
    one request, so a plain client gets an answer, not a refusal)."""

    async def body(h: ApiHarness) -> None:
        head = world.store.head().height
        async with h.client.get("/v1/events", params={"from_height": str(head)}) as r:
            assert r.status == 200 and r.headers["Content-Type"].startswith("text/event-stream")
            lines: list[str] = []
            while f"id: {head}" not in lines:
                lines.append((await r.content.readline()).decode().rstrip("\n"))
            lines += [(await r.content.readline()).decode().rstrip("\n") for _ in range(2)]
        assert lines[-2] == "event: block", lines
        message = json.loads(lines[-1][len("data: "):])
        assert (message["type"], message["height"]) == ("block", head)

    run(world, body)


def test_sse_replays_and_marks_block_ids(world: MirrorWorld) -> None:
    async def body(h: ApiHarness) -> None:
        head = world.store.head().height
        async with h.client.get("/v1/events/sse", params={"from_height": str(head - 1)}) as r:
            assert r.status == 200 and r.headers["Content-Type"].startswith("text/event-stream")
            seen: list[str] = []
            while True:
                line = (await r.content.readline()).decode().rstrip("\n")
                seen.append(line)
                if line == f"id: {head}":
                    break
        assert f"id: {head - 1}" in seen and "event: block" in seen
        datas = [json.loads(x[6:]) for x in seen if x.startswith("data: ")]
        assert [d["height"] for d in datas if d["type"] == "block"] == [head - 1]

    run(world, body)


def test_stream_limit(world: MirrorWorld) -> None:
    config = ApiConfig(open_reads=True, limits=ApiLimits(max_streams=1))

    async def body(h: ApiHarness) -> None:
        async with h.client.ws_connect("/v1/events"):
            await asyncio.sleep(0.05)
            async with h.client.get("/v1/events", headers={"Connection": "Upgrade", "Upgrade": "websocket",
                                                           "Sec-WebSocket-Version": "13",
                                                           "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}) as r:
                assert r.status == 503 and (await r.json())["code"] == e.TOO_MANY_STREAMS
        await asyncio.sleep(0.05)
        async with h.client.ws_connect("/v1/events"):  # the slot was released
            pass

    run(world, body, config)


def test_stream_failure_closes_with_a_code_and_resume_height(world: MirrorWorld) -> None:
    async def body(h: ApiHarness) -> None:
        h.facade.block = lambda height: None  # type: ignore[method-assign]  # the store lost its blocks
        async with h.client.ws_connect("/v1/events?from_height=1") as ws:
            msg = await ws.receive()
            m = json.loads(msg.data)
            assert m == {"type": "error", "code": e.BLOCK_NOT_FOUND, "message": m["message"], "resume_from": 1}
            assert (await ws.receive()).type in (WSMsgType.CLOSE, WSMsgType.CLOSED)
            assert ws.close_code == WS_CLOSE_OTHER

    run(world, body)
