"""The block explorer every node serves at `/`: plain ES modules and CSS (no build step, no CDN) that read this
node's HTTP API from the browser. `explorer_routes()` is what the API application registers; the files are package
data under node/api/explorer/static/."""

from __future__ import annotations

from node.api.explorer.assets import STATIC_PREFIX, explorer_routes

__all__ = ["STATIC_PREFIX", "explorer_routes"]
