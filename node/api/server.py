"""Serving the API: `await start_api(facade, host, port, config)` -> ApiServer (stop with `await server.stop()`).

This is what the node runtime calls to put the API on its configured `api_listen` address; with `ssl_context`
(node/api/tls.py, `ApiTls.server_context`) it serves HTTPS only."""

from __future__ import annotations

import logging
import ssl
import sys
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from node.api.app import create_app
from node.api.context import ApiConfig
from node.api.facade import NodeFacade

__all__ = ["ApiServer", "HttpServerLog", "start_api"]


class HttpServerLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """The HTTP server's logger. A request its parser refuses (a NUL or other invalid byte in a header, a line too
    long, a malformed request line) is the client's error: the server answers 400 and closes the connection, and
    the refusal is logged as one INFO line (`bad_http_request`), not as an ERROR with a traceback. Anything else
    is logged as aiohttp logs it."""

    def exception(self, msg: object, *args: Any, exc_info: Any = True, **kwargs: Any) -> None:
        exc = exc_info if isinstance(exc_info, BaseException) else sys.exc_info()[1]
        if isinstance(exc, HttpProcessingError) and 400 <= exc.code < 500:
            reason = (str(exc.message).strip().splitlines() or [""])[0].rstrip(":")
            self.info("bad_http_request status=%d reason=%r from=%s", exc.code, reason, args[0] if args else "")
            return
        super().exception(msg, *args, exc_info=exc_info, **kwargs)


@dataclass(slots=True)
class ApiServer:
    runner: web.AppRunner
    host: str
    port: int
    tls: bool = False

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    async def stop(self) -> None:
        """Close every event stream (with its resume height), finish in-flight requests, release the port."""
        await self.runner.cleanup()


async def start_api(facade: NodeFacade, host: str = "127.0.0.1", port: int = 8100,
                    config: ApiConfig | None = None, ssl_context: ssl.SSLContext | None = None) -> ApiServer:
    """Listen on host:port (port 0: any free port, see `.port`); over TLS when `ssl_context` is given."""
    config = config or ApiConfig()
    runner = web.AppRunner(create_app(facade, config), access_log=None, shutdown_timeout=5.0,
                           logger=HttpServerLog(logging.getLogger("aiohttp.server"), {}),
                           max_line_size=config.limits.parser_line_bytes)
    await runner.setup()
    site = web.TCPSite(runner, host, port, ssl_context=ssl_context)
    await site.start()
    bound = runner.addresses[0][1] if port == 0 else port
    return ApiServer(runner, host, bound, ssl_context is not None)
