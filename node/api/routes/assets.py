"""Assets: definition, rules and supply (public); holders with pagination (issuer, agents, auditors)."""

from __future__ import annotations

from typing import Any

from ledger.records import AssetDefinition, AssetStatus, Balance
from ledger.state import decode_value
from ledger.state_keys import asset_key, asset_status_key, balance_prefix, parse_balance_key
from node.api import errors as e
from node.api.context import Call
from node.api.errors import ApiError
from node.api.routes.common import HEIGHT_QUERY, PRIVATE_ERRORS, asset_param, cursor_param, limit_param
from node.api.routing import SIGNED, Route
from node.api.schemas import ref
from node.api.views import balance_view, record_view


async def get_asset(call: Call) -> Any:
    ctx = call.ctx
    asset_id = call.params["asset_id"]
    definition: AssetDefinition | None
    definition, at = ctx.record_at(asset_key(asset_id), call.params["height"])
    if definition is None:
        raise ApiError(e.ASSET_NOT_FOUND, details={"asset": asset_id})
    status: AssetStatus | None = ctx.record_at(asset_status_key(asset_id), at)[0]
    assert status is not None, "asset without status"
    return {
        "asset_id": asset_id,
        "definition": record_view(definition),
        "status": record_view(status),
        "outstanding": status.outstanding,
        "height": at,
    }


async def get_holders(call: Call) -> Any:
    ctx = call.ctx
    asset_id = call.params["asset_id"]
    if ctx.record(asset_key(asset_id)) is None:
        raise ApiError(e.ASSET_NOT_FOUND, details={"asset": asset_id})
    ctx.visibility.require(ctx.visibility.manages_asset(call.who, asset_id), call.who)
    limit = call.params["limit"] or ctx.limits.page_default
    prefix = balance_prefix(asset_id)
    after = call.params["after"]
    items: list[dict[str, Any]] = []
    it = ctx.store.iter_state(prefix, after=prefix + after.encode() if after else None)
    try:
        for key, raw in it:
            _, account = parse_balance_key(key)
            bal: Balance = decode_value(key, raw)
            items.append(balance_view(asset_id, account, bal))
            if len(items) == limit:
                break
    finally:
        it.close()
    return {"items": items, "next": items[-1]["account"] if len(items) == limit else None}


ROUTES: tuple[Route, ...] = (
    Route("GET", "/v1/assets/{asset_id}", "getAsset", "Asset definition, rules and supply", "assets", get_asset,
          params=(asset_param(), HEIGHT_QUERY), response=ref("Asset"),
          errors=(e.ASSET_NOT_FOUND, e.HEIGHT_UNKNOWN, e.HEIGHT_PRUNED)),
    Route("GET", "/v1/assets/{asset_id}/holders", "getHolders", "Holders of an asset with their balances",
          "assets", get_holders, access=SIGNED,
          params=(asset_param(), cursor_param("the `next` of the previous page (an account id)"),
                  limit_param(100, 1000)),
          response=ref("BalancePage"), errors=(e.ASSET_NOT_FOUND, *PRIVATE_ERRORS),
          description="In account-id order, at the head. Visible to the asset's issuer and agents and auditors."),
)
