"""The event stream: WebSocket /v1/events and Server-Sent Events /v1/events/sse (same messages, same filters;
/v1/events without the WebSocket upgrade headers answers as SSE too).

Messages (JSON): `{"type": "event", "height", "event"}` for each matching event, then `{"type": "block", "height",
"block_hash", "time"}` for every block (the checkpoint: all of that height was delivered), `{"type": "heartbeat"}`
when idle, and a final `{"type": "error", "code", "message", "resume_from"}` before the node closes the stream
(slow consumer: its buffer overflowed; shutdown). Reconnect with `from_height=resume_from`: nothing is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from aiohttp import WSMsgType, web

from ledger.schema import ACCOUNT_PATTERN, ASSET_PATTERN
from node.api import errors as e
from node.api.context import Call
from node.api.errors import ApiError
from node.api.routes.common import MAX_HEIGHT, PRIVATE_ERRORS
from node.api.routing import SIGNED, Param, Route
from node.api.schemas import ref
from node.api.stream import EventFilter
from node.chain.protocol import OPERATIONS

MAX_FILTER_VALUES = 16
WS_CLOSE_SLOW_CONSUMER = 4001
WS_CLOSE_OTHER = 4002  # shutdown or a failure: the message says which, with the height to resume from

FROM = Param("from_height", "query", {"type": "integer", "minimum": 0, "maximum": MAX_HEIGHT},
             "replay from this height (default: live from the next block)")


def _list_of(pattern: str) -> str:
    """A comma-separated list of 1 to MAX_FILTER_VALUES values, each matching `pattern`."""
    return f"^(?:{pattern})(?:,(?:{pattern})){{0,{MAX_FILTER_VALUES - 1}}}$"


ACCOUNTS = Param("account", "query", {"type": "string", "maxLength": 16 * 82, "pattern": _list_of(ACCOUNT_PATTERN)},
                 "only events naming one of these accounts (comma-separated, at most 16)")
ASSETS = Param("asset", "query", {"type": "string", "maxLength": 16 * 33, "pattern": _list_of(ASSET_PATTERN)},
               "only events of these assets (comma-separated, at most 16)")
KINDS = Param("kind", "query", {"type": "string", "maxLength": 16 * 33,
                                "pattern": _list_of("|".join(sorted(OPERATIONS.event_names)))},
              "only these event kinds (comma-separated, at most 16)")


def _list(call: Call, name: str, allowed: frozenset[str] | None = None) -> frozenset[str]:
    raw = call.params[name]
    if raw is None:
        return frozenset()
    values = frozenset(raw.split(","))
    if len(values) > MAX_FILTER_VALUES:
        raise ApiError(e.BAD_REQUEST, f"at most {MAX_FILTER_VALUES} values", {"parameter": name})
    if allowed is not None and not values <= allowed:
        raise ApiError(e.BAD_REQUEST, f"unknown event kinds {sorted(values - allowed)}", {"parameter": name})
    return values


def _filter(call: Call) -> EventFilter:
    return EventFilter(_list(call, "account"), _list(call, "asset"), _list(call, "kind", OPERATIONS.event_names))


async def stream_events(call: Call) -> Any:
    """GET /v1/events: a WebSocket when the request asks for the upgrade, else the same stream as SSE."""
    ws = web.WebSocketResponse(heartbeat=30.0, max_msg_size=4096)
    if not ws.can_prepare(call.request).ok:
        return await sse_events(call)
    ctx = call.ctx
    sub = ctx.hub.subscribe(_filter(call), call.who, call.params["from_height"])
    try:
        await ws.prepare(call.request)
        pump = asyncio.ensure_future(ctx.hub.pump(sub, ws.send_json))
        reader = asyncio.ensure_future(_drain(ws))
        done, _ = await asyncio.wait({pump, reader}, return_when=asyncio.FIRST_COMPLETED)
        final = _closing_message(pump) if pump in done else None
        if final is not None:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await asyncio.wait_for(ws.send_json(final), 5.0)
            close_code = WS_CLOSE_SLOW_CONSUMER if final["code"] == e.SLOW_CONSUMER else WS_CLOSE_OTHER
            reason = json.dumps({"code": final["code"], "resume_from": final["resume_from"]}).encode()
            with contextlib.suppress(ConnectionError, RuntimeError, TimeoutError):
                await asyncio.wait_for(ws.close(code=close_code, message=reason), 5.0)
        for task in (pump, reader):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError, RuntimeError):
                await task
    finally:
        ctx.hub.unsubscribe(sub)
    return ws


def _closing_message(pump: asyncio.Future[dict[str, Any]]) -> dict[str, Any] | None:
    """The pump's closing message, or None when it stopped because the client is gone (a write to a closing or
    reset connection: the client closed, or went away, while messages were being sent)."""
    exc = pump.exception()
    if exc is None:
        return pump.result()
    if isinstance(exc, ConnectionError):
        return None
    raise exc


async def _drain(ws: web.WebSocketResponse) -> None:
    """Read (and ignore) client messages so pings and the close handshake are processed."""
    async for msg in ws:
        if msg.type in (WSMsgType.ERROR, WSMsgType.CLOSE):
            break


async def sse_events(call: Call) -> Any:
    """GET /v1/events/sse (and GET /v1/events without a WebSocket upgrade)."""
    ctx = call.ctx
    flt = _filter(call)
    start = call.params["from_height"]
    last_id = call.request.headers.get("Last-Event-ID")
    if start is None and last_id is not None and last_id.isdigit() and len(last_id) <= 19:
        start = int(last_id) + 1
    sub = ctx.hub.subscribe(flt, call.who, start)
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    try:
        await resp.prepare(call.request)

        async def send(m: dict[str, Any]) -> None:
            head = f"id: {m['height']}\n" if m["type"] == "block" else ""
            await resp.write(f"{head}event: {m['type']}\ndata: {json.dumps(m)}\n\n".encode())

        with contextlib.suppress(ConnectionError):
            final = await ctx.hub.pump(sub, send)
            await send(final)
    finally:
        ctx.hub.unsubscribe(sub)
    return resp


_STREAM_ERRORS = (e.BAD_REQUEST, e.TOO_MANY_STREAMS, e.HEIGHT_PRUNED, *PRIVATE_ERRORS)

_SSE_DESCRIPTION = ("Each message is an SSE event: `event: <type>`, `data: <the JSON message>`; each `block` message "
                    "carries `id: <height>`, so `Last-Event-ID` resumes after it.")

ROUTES: tuple[Route, ...] = (
    Route("GET", "/v1/events", "streamEvents", "Event stream (WebSocket, or Server-Sent Events)", "events",
          stream_events, access=SIGNED, params=(FROM, ACCOUNTS, ASSETS, KINDS), response=ref("SseEvent"),
          response_type="text/event-stream", errors=_STREAM_ERRORS,
          extra_status={101: "switching to the WebSocket protocol (a request with the WebSocket upgrade headers); "
                             "each message is a JSON text of schema StreamMessage"},
          description="With the WebSocket upgrade headers: a WebSocket whose messages are JSON texts (schema "
                      "StreamMessage; docs/api.md, \"Event stream\"). Without them: the same stream as Server-Sent "
                      "Events (as `/v1/events/sse`). " + _SSE_DESCRIPTION + " Events are filtered by the "
                      "requester's visibility. A consumer whose buffer overflows gets an `error` message (and "
                      "WebSocket close code 4001) with `resume_from`."),
    Route("GET", "/v1/events/sse", "streamEventsSse", "Event stream (Server-Sent Events)", "events", sse_events,
          access=SIGNED, params=(FROM, ACCOUNTS, ASSETS, KINDS), response=ref("SseEvent"),
          response_type="text/event-stream", errors=_STREAM_ERRORS,
          description="The same messages as the WebSocket stream. " + _SSE_DESCRIPTION),
)
