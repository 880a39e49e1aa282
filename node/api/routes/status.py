"""Node status, health, peers, metrics, the reason-code table, the OpenAPI document and docs page."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ledger import codes
from node.api.context import DOCS_KEY, OPENAPI_KEY, Call
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
    return {"ok": True, "height": call.ctx.facade.head().height}


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
    Route("GET", "/health", "getHealth", "Liveness: the node answers and has a head", "node", get_health,
          response=ref("Health")),
    Route("GET", "/metrics", "getMetrics", "Prometheus metrics (text exposition format)", "node", get_metrics,
          response={"type": "string"}, response_type="text/plain"),
    Route("GET", "/openapi.json", "getOpenApi", "This API's OpenAPI 3.1 document", "node", get_openapi,
          response={"type": "object"}),
    Route("GET", "/docs", "getDocs", "A readable page listing every endpoint", "node", get_docs,
          response={"type": "string"}, response_type="text/html"),
)
