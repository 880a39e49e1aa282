"""Node status, health, peers, metrics, the reason-code table, the OpenAPI document and docs page."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ledger import codes
from node.api import errors as e
from node.api.context import DOCS_KEY, OPENAPI_KEY, Call
from node.api.errors import ApiError
from node.api.routing import Route
from node.api.schemas import ref


async def get_status(call: Call) -> Any:
    ctx = call.ctx
    head = ctx.facade.head()
    return {
        "chain_id": ctx.facade.chain_id,
        "node_id": ctx.facade.node_id,
        "height": head.height,
        "block_hash": head.block_hash.hex(),
        "state_root": head.state_root.hex(),
        "time": head.time,
        "open_reads": ctx.config.open_reads,
        "auth_window": ctx.config.auth_window,
        "node": dict(ctx.facade.status()),
    }


async def get_health(call: Call) -> Any:
    """200 while the node runs; once it has stopped on a fatal error and only serves reads, 503 API_UNAVAILABLE
    with details.fatal: code, message, and for a disk failure path and cause (docs/operations.md, "A failing
    disk")."""
    height = call.ctx.facade.head().height
    fatal = call.ctx.facade.status().get("fatal")
    if fatal:
        raise ApiError(e.UNAVAILABLE, fatal.get("message"), {"height": height, "fatal": fatal})
    return {"ok": True, "height": height}


async def get_peers(call: Call) -> Any:
    return {
        "peers": [
            {"name": p.name, "address": p.address, "connected": p.connected, "height": p.height}
            for p in call.ctx.facade.peers()
        ]
    }


async def get_metrics(call: Call) -> Any:
    return web.Response(text=call.ctx.facade.metrics_text(), content_type="text/plain", charset="utf-8",
                        headers={"X-Content-Type-Options": "nosniff"})


async def get_codes(call: Call) -> Any:
    return {
        "codes": [
            {"code": r.code, "name": r.name, "message": r.message, "layer": r.layer}
            for r in sorted(codes.REASONS.values(), key=lambda r: r.code)
        ]
    }


async def get_openapi(call: Call) -> Any:
    return web.json_response(call.request.app[OPENAPI_KEY])


async def get_docs(call: Call) -> Any:
    return web.Response(text=call.request.app[DOCS_KEY], content_type="text/html", charset="utf-8")


ROUTES: tuple[Route, ...] = (
    Route("GET", "/v1/status", "getStatus", "Chain id, head, node status", "node", get_status,
          response=ref("Status")),
    Route("GET", "/v1/peers", "getPeers", "Peers and their last known heights", "node", get_peers,
          response=ref("Peers")),
    Route("GET", "/v1/codes", "getReasonCodes", "The reason-code table (docs/reason-codes.md)", "node", get_codes,
          response=ref("ReasonCodes")),
    Route("GET", "/health", "getHealth", "Liveness: the node answers, has a head and has not stopped on a fatal error", "node", get_health,
          response=ref("Health"), errors=(e.UNAVAILABLE,),
          description="503 `API_UNAVAILABLE` once the node has stopped on a fatal error and only serves reads: "
                      "`details.fatal` = {code, message} (+ path, cause for a failed disk: docs/operations.md)."),
    Route("GET", "/metrics", "getMetrics", "Prometheus metrics (text exposition format)", "node", get_metrics,
          response={"type": "string"}, response_type="text/plain"),
    Route("GET", "/openapi.json", "getOpenApi", "This API's OpenAPI 3.1 document", "node", get_openapi,
          response={"type": "object"}),
    Route("GET", "/docs", "getDocs", "A readable page listing every endpoint", "node", get_docs,
          response={"type": "string"}, response_type="text/html"),
)
