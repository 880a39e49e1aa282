"""Serving the API: `await start_api(facade, host, port, config)` -> ApiServer (stop with `await server.stop()`).

This is what the node runtime calls to put the API on its configured `api_listen` address."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from node.api.app import create_app
from node.api.context import ApiConfig
from node.api.facade import NodeFacade

__all__ = ["ApiServer", "start_api"]


@dataclass(slots=True)
class ApiServer:
    runner: web.AppRunner
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def stop(self) -> None:
        """Close every event stream (with its resume height), finish in-flight requests, release the port."""
        await self.runner.cleanup()


async def start_api(facade: NodeFacade, host: str = "127.0.0.1", port: int = 8100,
                    config: ApiConfig | None = None) -> ApiServer:
    """Listen on host:port (port 0: any free port, see `.port`)."""
    runner = web.AppRunner(create_app(facade, config), access_log=None, shutdown_timeout=5.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = runner.addresses[0][1] if port == 0 else port
    return ApiServer(runner, host, bound)
