"""Limits on everything a client can make the API hold: body size, request rate, request time, open streams,
page sizes (docs/limits.md). `ApiLimits` is the one table; the middlewares enforce it."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from node.api import errors as e
from node.api.errors import ApiError, Handler

__all__ = ["ApiLimits", "TokenBuckets", "client_key", "cors_middleware", "rate_limit_middleware",
           "target_length_middleware", "timeout_middleware"]


@dataclass(frozen=True, slots=True)
class ApiLimits:
    max_body_bytes: int = 2 * 1024 * 1024  # whole request body (a batch of up to max_batch transactions)
    # The request target (path and query): a longer one is answered 400 API_BAD_REQUEST, reason
    # request_line_too_long, in the API's JSON error form.
    max_target_bytes: int = 8 * 1024
    # The HTTP parser's own bound on the request line (aiohttp's max_line_size, 8,190 by default): beyond it the
    # parser answers a plain-text 400 and closes the connection before any middleware runs. Well above
    # max_target_bytes, so every target a client can reasonably send gets the JSON answer.
    parser_line_bytes: int = 64 * 1024
    max_batch: int = 256  # transactions per batch submission
    rate_per_second: int = 200  # sustained requests per client (token refill rate)
    rate_burst: int = 400  # bucket size
    max_clients_tracked: int = 10_000  # rate buckets kept (least recently used are forgotten)
    request_timeout: float = 30.0  # seconds for any request except event streams
    wait_commit_max: float = 25.0  # the longest `wait=commit` honoured (the parameter allows 1..25 s)
    wait_commit_default: float = 10.0
    page_max: int = 1000  # items per page (history, holders, blocks, holds)
    page_default: int = 100
    hold_scan_max: int = 10_000  # hold records examined per page of /v1/holds
    max_streams: int = 256  # open event streams (WebSocket + SSE)
    stream_buffer: int = 1024  # events buffered per stream before the consumer is disconnected
    replay_max_blocks: int = 100_000  # heights an event stream may replay from the store on connect

    def __post_init__(self) -> None:
        assert self.max_body_bytes >= 64 * 1024 and self.max_batch >= 1
        assert 1024 <= self.max_target_bytes < self.parser_line_bytes
        assert self.rate_per_second >= 1 and self.rate_burst >= 1
        assert 1 <= self.page_default <= self.page_max and self.stream_buffer >= 1
        assert 0 < self.wait_commit_default <= self.wait_commit_max
        assert self.wait_commit_max < self.request_timeout, "a commit wait must end before the request timeout"


class TokenBuckets:
    """One token bucket per client key; LRU-bounded so the table cannot grow without limit."""

    def __init__(self, rate: float, burst: int, max_clients: int, clock: Callable[[], float] = time.monotonic):
        self.rate = rate
        self.burst = burst
        self.max_clients = max_clients
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, last refill)

    def take(self, key: str) -> float:
        """0.0 when a token was taken; otherwise the seconds until one is available."""
        now = self.clock()
        tokens, last = self._buckets.pop(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.rate)
        wait = 0.0
        if tokens >= 1.0:
            tokens -= 1.0
        else:
            wait = (1.0 - tokens) / self.rate
        self._buckets[key] = (tokens, now)
        if len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)
        return wait


def target_length_middleware(max_bytes: int) -> Callable[..., object]:
    """Refuse a request target (path and query, as sent) longer than `max_bytes` before routing or parsing its
    parameters: 400 API_BAD_REQUEST, reason request_line_too_long."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        size = len(request.raw_path)
        if size > max_bytes:
            raise ApiError(e.BAD_REQUEST, f"the request target is {size} bytes, at most {max_bytes}",
                           {"reason": "request_line_too_long", "limit": max_bytes})
        return await handler(request)

    return middleware


def client_key(request: web.Request) -> str:
    """Rate-limit identity: the peer address (request headers are not trusted for this; a signing-account header
    could be rotated freely to dodge the limit)."""
    return request.remote or "unknown"


def rate_limit_middleware(buckets: TokenBuckets, exempt: frozenset[str]) -> Callable[..., object]:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path not in exempt:
            wait = buckets.take(client_key(request))
            if wait > 0:
                retry = max(1, int(wait + 0.999))
                raise ApiError(e.RATE_LIMITED, details={"retry_after": retry}, headers={"Retry-After": str(retry)})
        return await handler(request)

    return middleware


def timeout_middleware(seconds: float, exempt_prefixes: tuple[str, ...]) -> Callable[..., object]:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(exempt_prefixes):
            return await handler(request)
        try:
            return await asyncio.wait_for(handler(request), seconds)
        except TimeoutError:
            raise ApiError(e.REQUEST_TIMEOUT, details={"timeout_seconds": seconds}) from None

    return middleware


CORS_HEADERS = ("Content-Type, X-Ledger-Node, X-Ledger-Account, X-Ledger-Key, X-Ledger-Timestamp, X-Ledger-Nonce, "
                "X-Ledger-Signature")


def cors_middleware(origins: tuple[str, ...]) -> Callable[..., object]:
    """Allow the listed origins ("*" = any). Preflight requests are answered here with 204."""
    allow_any = "*" in origins

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        allowed = origin is not None and (allow_any or origin in origins)
        if request.method == "OPTIONS" and allowed and "Access-Control-Request-Method" in request.headers:
            resp: web.StreamResponse = web.Response(status=204)
        else:
            resp = await handler(request)
        if allowed and not resp.prepared:
            resp.headers["Access-Control-Allow-Origin"] = "*" if allow_any else origin  # type: ignore[assignment]
            resp.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
            resp.headers["Access-Control-Allow-Headers"] = CORS_HEADERS
            resp.headers["Access-Control-Max-Age"] = "600"
            if not allow_any:
                resp.headers["Vary"] = "Origin"
        return resp

    return middleware
