"""Blocks with their commit certificates (public)."""

from __future__ import annotations

from typing import Any

from node.api import errors as e
from node.api.context import Call
from node.api.errors import ApiError
from node.api.routes.common import MAX_HEIGHT, limit_param, require_kept
from node.api.routing import Param, Route
from node.api.schemas import ref
from node.api.views import block_view

HEIGHT_PATH = Param("height", "path", {"type": "integer", "minimum": 0, "maximum": MAX_HEIGHT}, "a block height",
                    True)
FROM = Param("from_height", "query", {"type": "integer", "minimum": 0, "maximum": MAX_HEIGHT},
             "first height of the page (default: 100 below the head)")
MAX_BLOCK_PAGE = 100


async def get_block(call: Call) -> Any:
    height = call.params["height"]
    view = call.ctx.facade.block(height)
    if view is None:
        require_kept(call.ctx.store, height)
        raise ApiError(e.BLOCK_NOT_FOUND, details={"height": height, "head": call.ctx.facade.head().height})
    return block_view(view)


async def list_blocks(call: Call) -> Any:
    facade = call.ctx.facade
    head = facade.head().height
    limit = call.params["limit"] or 20
    start = call.params["from_height"]
    if start is None:
        start = max(call.ctx.store.base_height(), head - limit + 1)
    require_kept(call.ctx.store, start)
    items = []
    height = start
    while height <= head and len(items) < limit:
        view = facade.block(height)
        if view is not None:
            items.append(block_view(view))
        height += 1
    return {"items": items, "next": str(height) if height <= head else None}


ROUTES: tuple[Route, ...] = (
    Route("GET", "/v1/blocks", "listBlocks", "Committed blocks in height order", "blocks", list_blocks,
          params=(FROM, limit_param(20, MAX_BLOCK_PAGE)), response=ref("BlockPage"), errors=(e.HEIGHT_PRUNED,),
          description="`next` is the `from_height` of the following page (null at the head). A node that prunes "
                      "(or joined by state sync) answers 410 with `details.kept_from` below the heights it keeps."),
    Route("GET", "/v1/blocks/{height}", "getBlock", "A block: header, transaction ids, commit certificate",
          "blocks", get_block, params=(HEIGHT_PATH,), response=ref("Block"), errors=(e.BLOCK_NOT_FOUND, e.HEIGHT_PRUNED),
          description="`certificate` is the hex of consensus.messages.CommitCertificate.encode() (docs/consensus.md); "
                      "it is null for the genesis block and for blocks whose certificate this node did not keep."),
)
