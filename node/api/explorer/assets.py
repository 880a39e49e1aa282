"""Serving the explorer's files: `/` answers the page, `/explorer/<file>` its modules, styles and icon.

The files are read once, at application start, from the package data (importlib.resources, so an installed wheel
serves them as an editable checkout does); only names found there are served, nothing else on disk is reachable.
Every answer carries a Content-Security-Policy that allows this origin only: the page cannot load or send anything
anywhere else (no CDN, no third-party fetch), and runs no inline script.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any, Final

from aiohttp import web

from node.api import errors as e
from node.api.errors import ApiError

__all__ = ["CSP", "STATIC_PREFIX", "ExplorerFile", "explorer_routes", "load_files"]

STATIC_PREFIX: Final = "/explorer/"
CONTENT_TYPES: Final = {
    ".html": "text/html",
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
}
CSP: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
MAX_FILE_BYTES: Final = 1 << 20  # a guard on package data, far above what the files need


@dataclass(frozen=True, slots=True)
class ExplorerFile:
    body: bytes
    content_type: str


def load_files() -> Mapping[str, ExplorerFile]:
    """Every servable file of the package's static/ folder, by name."""
    out: dict[str, ExplorerFile] = {}
    for entry in resources.files("node.api.explorer").joinpath("static").iterdir():
        name = entry.name
        suffix = name[name.rfind(".") :] if "." in name else ""
        if not entry.is_file() or suffix not in CONTENT_TYPES:
            continue
        body = entry.read_bytes()
        assert len(body) <= MAX_FILE_BYTES, name
        out[name] = ExplorerFile(body, CONTENT_TYPES[suffix])
    assert "index.html" in out, "explorer package data is missing (static/index.html)"
    return out


def _response(f: ExplorerFile) -> web.Response:
    return web.Response(
        body=f.body,
        content_type=f.content_type,
        charset="utf-8",
        headers={
            "Content-Security-Policy": CSP,
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-cache",
            "Referrer-Policy": "no-referrer",
        },
    )


def explorer_routes(files: Mapping[str, ExplorerFile] | None = None) -> list[tuple[str, Callable[..., Any]]]:
    """(path, handler) of the explorer's two GET routes (HEAD answered too)."""
    table = load_files() if files is None else files
    index = table["index.html"]

    async def page(_request: web.Request) -> web.StreamResponse:
        return _response(index)

    async def static(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        f = table.get(name)
        if f is None:
            raise ApiError(e.ROUTE_NOT_FOUND, details={"path": request.path})
        return _response(f)

    return [("/", page), (STATIC_PREFIX + "{name}", static)]
