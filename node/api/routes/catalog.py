"""Catalogue reads (public): every asset and every account by id, an asset's corporate actions, a committed
transaction decoded into its JSON form, and blocks by hash (or hash prefix).

These are what a browser (the block explorer, node/api/explorer/) needs to click through the chain without knowing
ids in advance; each is a bounded, paginated range scan of one state prefix.
"""

from __future__ import annotations

from typing import Any, Final

from contracts.state import Distribution, action_key
from ledger.codec import CodecError, decode_trusted, record_type
from ledger.jsonform import body_to_json, to_json
from ledger.records import AssetStatus
from ledger.schema import ACCOUNT_PATTERN, ASSET_PATTERN, HOLD_PATTERN, MAX_ACCOUNT_ID_BYTES
from ledger.state import decode_value
from ledger.state_keys import CONTRACTS_TAG, account_key, asset_key, asset_status_key
from ledger.transaction import Signature, decode_transaction
from node.api import errors as e
from node.api.context import Call
from node.api.errors import ApiError
from node.api.routes.common import TX_ID_PARAM, asset_param, limit_param
from node.api.routing import Param, Route
from node.api.schemas import HASH, HEIGHT, INT, ref
from node.api.views import account_view
from node.chain.protocol import OPERATIONS

__all__ = ["ACTION_SCAN_MAX", "BLOCK_HASH_MATCHES_MAX", "ROUTES"]

# Corporate-action records scanned per request of GET /v1/assets/{id}/actions (docs/limits.md).
ACTION_SCAN_MAX: Final = 10_000
# Blocks listed per answer of GET /v1/blocks/by-hash/{prefix} (docs/limits.md).
BLOCK_HASH_MATCHES_MAX: Final = 10
ACTION_KINDS: Final = {1: "distribution", 2: "maturity_redemption"}
_ACTIONS_PREFIX: Final = CONTRACTS_TAG + action_key("x")[:1]
SIGNATURE = record_type(Signature)

AFTER_ASSET = Param(
    "after",
    "query",
    {"type": "string", "pattern": f"^(?:{ASSET_PATTERN})$", "maxLength": 32},
    "the `next` of the previous page (an asset id)",
)
AFTER_ACCOUNT = Param(
    "after",
    "query",
    {"type": "string", "pattern": f"^(?:{ACCOUNT_PATTERN})$", "maxLength": MAX_ACCOUNT_ID_BYTES},
    "the `next` of the previous page (an account id)",
)
AFTER_ACTION = Param(
    "after",
    "query",
    {"type": "string", "pattern": f"^(?:{HOLD_PATTERN})$", "maxLength": 64},
    "the `next` of the previous page (a corporate-action id)",
)

BLOCK_HASH_PREFIX = Param(
    "block_hash",
    "path",
    {"type": "string", "pattern": "^[0-9a-f]{8,64}$"},
    "a block hash, or its first 8 or more lowercase hex digits",
    True,
)


def _scan(ctx: Any, prefix: bytes, after: str | None, limit: int) -> list[tuple[str, bytes, bytes]]:
    """(id, key, value) of up to `limit` records under `prefix` whose id sorts after `after`."""
    out: list[tuple[str, bytes, bytes]] = []
    it = ctx.store.iter_state(prefix, after=prefix + after.encode() if after else None)
    try:
        for key, raw in it:
            out.append((key[len(prefix) :].decode("ascii"), key, raw))
            if len(out) == limit:
                break
    finally:
        it.close()
    return out


async def list_assets(call: Call) -> Any:
    ctx = call.ctx
    limit = call.params["limit"]
    items = []
    for asset_id, key, raw in _scan(ctx, asset_key(""), call.params["after"], limit):
        definition = decode_value(key, raw)
        status: AssetStatus | None = ctx.record(asset_status_key(asset_id))
        assert status is not None, "asset without status"
        items.append(
            {
                "asset_id": asset_id,
                "name": definition.name,
                "isin": definition.isin,
                "issuer": definition.issuer,
                "decimals": definition.decimals,
                "supply_cap": definition.supply_cap,
                "outstanding": status.outstanding,
                "paused": status.paused,
                "rules": len(definition.rules),
            }
        )
    return {
        "items": items,
        "next": items[-1]["asset_id"] if len(items) == limit else None,
        "height": ctx.facade.head().height,
    }


async def list_accounts(call: Call) -> Any:
    ctx = call.ctx
    limit = call.params["limit"]
    head = ctx.facade.head().height
    items = [
        account_view(account_id, decode_value(key, raw), head)
        for account_id, key, raw in _scan(ctx, account_key(""), call.params["after"], limit)
    ]
    return {"items": items, "next": items[-1]["account_id"] if len(items) == limit else None, "height": head}


def action_view(action_id: str, d: Distribution) -> dict[str, Any]:
    return {
        "action_id": action_id,
        "kind": ACTION_KINDS[d.kind],
        "asset": d.asset,
        "pay_asset": d.pay_asset,
        "payer": d.payer,
        "remainder_account": d.remainder_account,
        "record_height": d.record_height,
        "rate_num": d.rate_num,
        "rate_den": d.rate_den,
        "units_paid_for": d.units,
        "paid": d.paid,
        "done": d.done,
    }


async def asset_actions(call: Call) -> Any:
    """The corporate actions (coupons, dividends, maturity redemptions) that pay holders of the asset or pay in
    it: a bounded scan of the action records in id order. The state keys action records by action id only
    (contracts/state.py `action_key`; `maturity_key` names one action per asset, the maturity redemption), so a
    per-asset lookup would need a new key space, a change of the state layout and root: hence the scan."""
    ctx = call.ctx
    asset_id = call.params["asset_id"]
    if ctx.record(asset_key(asset_id)) is None:
        raise ApiError(e.ASSET_NOT_FOUND, details={"asset": asset_id})
    limit = call.params["limit"]
    after = call.params["after"]
    rtype = record_type(Distribution)
    items: list[dict[str, Any]] = []
    scanned = 0
    last: str | None = None
    exhausted = True
    it = ctx.store.iter_state(_ACTIONS_PREFIX, after=_ACTIONS_PREFIX + after.encode() if after else None)
    try:
        for key, raw in it:
            scanned += 1
            action_id = key[len(_ACTIONS_PREFIX) :].decode("ascii")
            last = action_id
            d: Distribution = decode_trusted(rtype, raw)
            if asset_id in (d.asset, d.pay_asset):
                items.append(action_view(action_id, d))
            if len(items) >= limit or scanned >= ACTION_SCAN_MAX:
                exhausted = False
                break
    finally:
        it.close()
    return {"items": items, "next": None if exhausted else last, "scanned": scanned, "height": ctx.facade.head().height}


async def tx_body(call: Call) -> Any:
    tx_id = bytes.fromhex(call.params["tx_id"])
    found = call.ctx.store.get_tx(tx_id)
    if found is None:
        raise ApiError(e.TX_NOT_FOUND, details={"tx_id": tx_id.hex()})
    height, index, raw = found
    try:
        tx = decode_transaction(raw, operations=OPERATIONS)
    except CodecError:
        raise ApiError(e.INTERNAL_ERROR, "a stored transaction does not decode", {"tx_id": tx_id.hex()}) from None
    return {
        "tx_id": tx_id.hex(),
        "height": height,
        "index": index,
        "body": body_to_json(tx.body, operations=OPERATIONS),
        "signatures": [to_json(SIGNATURE, s) for s in tx.signatures],
    }


async def blocks_by_hash(call: Call) -> Any:
    """The blocks whose hash starts with the given hex digits, in hash order: one seek in the store's block-hash
    index, at most BLOCK_HASH_MATCHES_MAX (+1 to tell whether there are more)."""
    prefix: str = call.params["block_hash"]
    start = bytes.fromhex(prefix + "0" * (len(prefix) % 2))  # the smallest hash with these digits
    found = call.ctx.store.block_hashes_from(start, BLOCK_HASH_MATCHES_MAX + 1)
    matches = [(h, height) for h, height in found if h.hex().startswith(prefix)]
    if not matches:
        raise ApiError(e.BLOCK_NOT_FOUND, "no block has a hash starting with these digits", {"block_hash": prefix})
    items = [{"height": height, "block_hash": h.hex()} for h, height in matches[:BLOCK_HASH_MATCHES_MAX]]
    return {"items": items, "more": len(matches) > BLOCK_HASH_MATCHES_MAX}


def _page(item: dict[str, Any], scanned: bool = False) -> dict[str, Any]:
    props: dict[str, Any] = {
        "items": {"type": "array", "items": item},
        "next": {"type": ["string", "null"]},
        "height": HEIGHT,
    }
    if scanned:
        props["scanned"] = INT
    return {"type": "object", "properties": props, "required": list(props), "additionalProperties": False}


def _obj(props: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": list(props), "additionalProperties": False}


_STR = {"type": "string"}
_ASSET_SUMMARY = _obj(
    {
        "asset_id": _STR,
        "name": _STR,
        "isin": _STR,
        "issuer": _STR,
        "decimals": INT,
        "supply_cap": INT,
        "outstanding": INT,
        "paused": {"type": "boolean"},
        "rules": INT,
    }
)
_ACTION = _obj(
    {
        "action_id": _STR,
        "kind": {"enum": list(ACTION_KINDS.values())},
        "asset": _STR,
        "pay_asset": _STR,
        "payer": _STR,
        "remainder_account": _STR,
        "record_height": HEIGHT,
        "rate_num": INT,
        "rate_den": INT,
        "units_paid_for": INT,
        "paid": INT,
        "done": {"type": "boolean"},
    }
)
_TX_BODY = _obj(
    {
        "tx_id": HASH,
        "height": HEIGHT,
        "index": INT,
        "body": ref("TxBody"),
        "signatures": {"type": "array", "items": ref("Signature")},
    }
)

_BLOCK_MATCHES = _obj(
    {
        "items": {
            "type": "array",
            "items": _obj({"height": HEIGHT, "block_hash": HASH}),
            "minItems": 1,
            "maxItems": BLOCK_HASH_MATCHES_MAX,
        },
        "more": {"type": "boolean"},
    }
)

ROUTES: tuple[Route, ...] = (
    Route(
        "GET",
        "/v1/blocks/by-hash/{block_hash}",
        "findBlocksByHash",
        "Blocks by hash, or by a hash prefix of 8 or more hex digits",
        "blocks",
        blocks_by_hash,
        params=(BLOCK_HASH_PREFIX,),
        response=_BLOCK_MATCHES,
        errors=(e.BLOCK_NOT_FOUND,),
        description="The height and full hash of each matching block, in hash order, at most 10 (`more`: there are "
        "others; give more digits). A full hash matches one block. `GET /v1/blocks/{height}` has the block.",
    ),
    Route(
        "GET",
        "/v1/assets",
        "listAssets",
        "Every asset by id: name, issuer, decimals, supply",
        "assets",
        list_assets,
        params=(AFTER_ASSET, limit_param(100, 1000)),
        response=_page(_ASSET_SUMMARY),
        description="In asset-id order, at the head. `rules` is the number of rules; `GET /v1/assets/{id}` has them.",
    ),
    Route(
        "GET",
        "/v1/accounts",
        "listAccounts",
        "Every account by id: member, keys, roles, flags",
        "accounts",
        list_accounts,
        params=(AFTER_ACCOUNT, limit_param(100, 1000)),
        response=_page(ref("Account")),
        description="In account-id order, at the head. Account records are public; balances are not.",
    ),
    Route(
        "GET",
        "/v1/assets/{asset_id}/actions",
        "listAssetActions",
        "Corporate actions (coupons, dividends, maturity redemptions) of an asset or paid in it",
        "assets",
        asset_actions,
        params=(asset_param(), AFTER_ACTION, limit_param(100, 1000)),
        response=_page(_ACTION, scanned=True),
        errors=(e.ASSET_NOT_FOUND,),
        description="Scans at most 10,000 action records per page, in action-id order; `next` is null when the "
        "scan is complete. `rate_num / rate_den` units of `pay_asset` per unit of `asset`; "
        "`units_paid_for` and `paid` are the progress, `done` once every holder was paid.",
    ),
    Route(
        "GET",
        "/v1/tx/{tx_id}/body",
        "getTransactionBody",
        "A committed transaction decoded: its body (JSON form) and signatures",
        "transactions",
        tx_body,
        params=(TX_ID_PARAM,),
        response=_TX_BODY,
        errors=(e.TX_NOT_FOUND,),
        description="The JSON form of docs/protocol.md. Only committed (or rejected-in-a-block) transactions; "
        "a pending one answers 404 until its block commits.",
    ),
)
