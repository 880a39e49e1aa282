"""The API application factory: `create_app(facade, config)` -> aiohttp Application.

Middlewares, outermost first: CORS (when origins are configured), the error middleware (every failure becomes
`{code, name, message, details}`; nothing unexpected leaks), per-client token-bucket rate limits, request
timeouts. The router is built from the route table, which also generates /openapi.json and /docs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from node.api import errors as e
from node.api.context import DOCS_KEY, OPENAPI_KEY, ApiConfig, ApiContext, Call
from node.api.errors import ApiError, error_middleware
from node.api.explorer import explorer_routes
from node.api.facade import NodeFacade
from node.api.limits import (
    TokenBuckets,
    cors_middleware,
    rate_limit_middleware,
    target_length_middleware,
    timeout_middleware,
)
from node.api.openapi import build_openapi, docs_html
from node.api.routes import ALL_ROUTES
from node.api.routing import SIGNED, Route, parse_params
from node.api.tls import client_member_middleware, require_member

__all__ = ["CTX_KEY", "create_app"]

CTX_KEY: web.AppKey[ApiContext] = web.AppKey("ledger_api", ApiContext)
RATE_EXEMPT = frozenset({"/health", "/metrics"})
STREAM_PREFIXES = ("/v1/events",)


def _handler(route: Route, ctx: ApiContext) -> Callable[[web.Request], Any]:
    handler = route.handler
    assert handler is not None
    accepts_body = route.body is not None

    async def handle(request: web.Request) -> web.StreamResponse:
        params = parse_params(route, request)
        body = await request.read() if request.body_exists else b""
        if accepts_body and request.content_type not in route.body_types:
            raise ApiError(e.UNSUPPORTED_MEDIA_TYPE, details={"accepted": list(route.body_types)})
        who = None
        if route.access == SIGNED:
            who = ctx.auth.authenticate(
                request.method, request.path, request.rel_url.raw_query_string, body, request.headers
            )
            require_member(request, who)
        result = await handler(Call(ctx, request, params, body, who))
        if isinstance(result, web.StreamResponse):
            return result
        status = 200
        if isinstance(result, tuple):
            status, result = result
        return web.json_response(result, status=status)

    return handle


def _method_not_allowed(allowed: list[str]) -> Callable[[web.Request], Any]:
    """Any other method on a documented path: 405 with `Allow` naming exactly the documented methods of that path
    (aiohttp's own 405 would also count the methods of a parameterised path the request happens to match, such as
    GET /v1/tx/{tx_id} for /v1/tx/batch)."""

    async def handle(request: web.Request) -> web.StreamResponse:
        raise ApiError(e.METHOD_NOT_ALLOWED, details={"allowed": allowed}, headers={"Allow": ", ".join(allowed)})

    return handle


def create_app(facade: NodeFacade, config: ApiConfig | None = None) -> web.Application:
    """The API over `facade`. Start it with aiohttp (web.AppRunner / web.run_app); the event hub subscribes to
    commits on startup and closes every stream on shutdown."""
    config = config or ApiConfig()
    limits = config.limits
    ctx = ApiContext(facade, config)
    middlewares: list[Any] = []
    if config.cors_origins:
        middlewares.append(cors_middleware(config.cors_origins))
    middlewares.append(error_middleware)
    middlewares.append(target_length_middleware(limits.max_target_bytes))
    if config.client_members is not None:
        middlewares.append(client_member_middleware(config.client_members))
    middlewares += [
        rate_limit_middleware(TokenBuckets(limits.rate_per_second, limits.rate_burst, limits.max_clients_tracked),
                              RATE_EXEMPT),
        timeout_middleware(limits.request_timeout, STREAM_PREFIXES),
    ]
    app = web.Application(client_max_size=limits.max_body_bytes, middlewares=middlewares)
    app[CTX_KEY] = ctx
    spec = build_openapi(ALL_ROUTES)
    app[OPENAPI_KEY] = spec
    app[DOCS_KEY] = docs_html(spec)
    methods: dict[str, list[str]] = {}
    for route in ALL_ROUTES:
        app.router.add_route(route.method, route.path, _handler(route, ctx))
        methods.setdefault(route.path, []).append(route.method)
    for path, allowed in methods.items():
        app.router.add_route("*", path, _method_not_allowed(sorted(allowed)))
    for path, handler in explorer_routes():  # the block explorer at `/` (node/api/explorer/)
        app.router.add_get(path, handler)

    async def on_startup(_app: web.Application) -> None:
        ctx.hub.start()

    async def on_shutdown(_app: web.Application) -> None:
        ctx.hub.stop()

    app.on_startup.append(on_startup)
    app.on_shutdown.append(on_shutdown)
    return app
