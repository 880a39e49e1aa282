"""Accounts and their private state: balances (available, held, frozen), holds, history, custody statements."""

from __future__ import annotations

from typing import Any

from ledger.events import decode_receipt
from ledger.records import ZERO_BALANCE, Account, Balance, Hold, Positions
from ledger.schema import ROLE_BITS
from ledger.state import decode_value
from ledger.state_keys import account_key, balance_key, hold_key, positions_key
from ledger.store import StoreError
from node.api import errors as e
from node.api.context import Call
from node.api.errors import ApiError, api_error
from node.api.routes.common import (
    HEIGHT_QUERY,
    HOLD_PARAM,
    PRIVATE_ERRORS,
    account_param,
    asset_param,
    cursor_param,
    limit_param,
    require_kept,
)
from node.api.routing import SIGNED, Route
from node.api.schemas import ref
from node.api.views import account_view, balance_view, event_view, hold_view
from node.chain.protocol import OPERATIONS

ISSUER_LIKE = ROLE_BITS["issuer"] | ROLE_BITS["agent"]


def _account(call: Call, account_id: str, height: int | None = None) -> tuple[Account, int]:
    acct, at = call.ctx.record_at(account_key(account_id), height)
    if acct is None:
        raise ApiError(e.ACCOUNT_NOT_FOUND, details={"account": account_id})
    return acct, at


def _may_filter(call: Call, account_id: str) -> bool:
    """True when the requester sees the whole account; False when it may see only its own assets' entries
    (issuer / agent); refuses anyone else."""
    vis = call.ctx.visibility
    who = call.who
    if vis.sees_account(who, account_id):
        return True
    if who is not None and who.record.roles & ISSUER_LIKE:
        return False
    vis.require(False, who)
    return False


async def get_account(call: Call) -> Any:
    account_id = call.params["account_id"]
    acct, height = _account(call, account_id, call.params["height"])
    return account_view(account_id, acct, height)


async def get_balances(call: Call) -> Any:
    ctx = call.ctx
    account_id = call.params["account_id"]
    asset = call.params["asset"]
    height = call.params["height"]
    _, at = _account(call, account_id, height)
    vis = ctx.visibility
    if asset is not None:
        vis.require(vis.sees_position(call.who, account_id, asset), call.who)
        bal, _ = ctx.record_at(balance_key(asset, account_id), at)
        return {"account": account_id, "height": at,
                "balances": [balance_view(asset, account_id, bal or ZERO_BALANCE)]}
    whole = _may_filter(call, account_id)
    positions: Positions | None = ctx.record_at(positions_key(account_id), at)[0]
    out = []
    for a in () if positions is None else positions.assets:
        if not whole and not vis.manages_asset(call.who, a):
            continue
        bal: Balance | None = ctx.record_at(balance_key(a, account_id), at)[0]
        out.append(balance_view(a, account_id, bal or ZERO_BALANCE))
    return {"account": account_id, "height": at, "balances": out}


def _hold_visible(call: Call, h: Hold) -> bool:
    return call.ctx.visibility.sees_any(call.who, (h.sender, h.recipient, h.notary), (h.asset,))


async def get_hold(call: Call) -> Any:
    hold_id = call.params["hold_id"]
    h: Hold | None = call.ctx.record(hold_key(hold_id))
    if h is None:
        raise ApiError(e.HOLD_NOT_FOUND, details={"hold_id": hold_id})
    call.ctx.visibility.require(_hold_visible(call, h), call.who)
    return hold_view(hold_id, h)


async def account_holds(call: Call) -> Any:
    """The holds in which the account is sender, recipient or notary: a bounded scan of the hold records."""
    ctx = call.ctx
    account_id = call.params["account_id"]
    _account(call, account_id)
    whole = _may_filter(call, account_id)
    limit = call.params["limit"] or ctx.limits.page_default
    after = call.params["after"]
    prefix = b"H"
    items: list[dict[str, Any]] = []
    scanned = 0
    last: str | None = None
    exhausted = True
    it = ctx.store.iter_state(prefix, after=None if not after else prefix + after.encode())
    try:
        for key, raw in it:
            scanned += 1
            hold_id = key[1:].decode()
            last = hold_id
            h: Hold = decode_value(key, raw)
            if account_id in (h.sender, h.recipient, h.notary) and (
                whole or ctx.visibility.manages_asset(call.who, h.asset)
            ):
                items.append(hold_view(hold_id, h))
            if len(items) >= limit or scanned >= ctx.limits.hold_scan_max:
                exhausted = False
                break
    finally:
        it.close()
    return {"items": items, "next": None if exhausted else last, "scanned": scanned}


def _parse_cursor(raw: str | None) -> tuple[int, int] | None:
    if not raw:
        return None
    parts = raw.split(":")
    if len(parts) != 2 or not all(p.isdigit() and len(p) <= 19 for p in parts):
        raise ApiError(e.BAD_REQUEST, "cursor must be height:position", {"parameter": "after"})
    height, position = int(parts[0]), int(parts[1])
    if height >= 1 << 63 or position >= 1 << 32:
        raise ApiError(e.BAD_REQUEST, "cursor out of range", {"parameter": "after"})
    return height, position


def _entry_visible(call: Call, whole: bool, events: list[Any]) -> bool:
    if whole:
        return True
    vis = call.ctx.visibility
    return any(isinstance(ev.attr("asset"), str) and vis.manages_asset(call.who, ev.attr("asset")) for ev in events)


async def account_history(call: Call) -> Any:
    ctx = call.ctx
    account_id = call.params["account_id"]
    _account(call, account_id)
    whole = _may_filter(call, account_id)
    limit = call.params["limit"] or ctx.limits.page_default
    cursor = _parse_cursor(call.params["after"])
    try:
        entries = ctx.store.account_history(account_id, after=cursor, limit=limit)
    except StoreError as exc:
        raise api_error(exc) from None
    items = []
    for entry in entries:
        raw = ctx.store.get_receipt(entry.tx_id)
        receipt = None if raw is None else decode_receipt(raw, operations=OPERATIONS)
        events = [] if receipt is None else list(receipt.events)
        if not _entry_visible(call, whole, events):
            continue
        items.append({
            "height": entry.height,
            "position": entry.position,
            "tx_id": entry.tx_id.hex(),
            "code": None if receipt is None else receipt.code,
            "events": [event_view(ev) for ev in events],
        })
    nxt = f"{entries[-1].height}:{entries[-1].position}" if len(entries) == limit else None
    return {"items": items, "next": nxt}


async def account_statement(call: Call) -> Any:
    from node.chain.statement import StatementError

    ctx = call.ctx
    account_id = call.params["account_id"]
    _account(call, account_id)
    ctx.visibility.require(ctx.visibility.sees_account(call.who, account_id), call.who)
    head = ctx.facade.head().height
    height = head if call.params["height"] is None else call.params["height"]
    if height > head:
        raise ApiError(e.HEIGHT_UNKNOWN, details={"height": height, "head": head})
    require_kept(ctx.store, height)
    try:
        return dict(ctx.facade.statement(account_id, height))
    except KeyError:
        raise ApiError(e.NOT_AVAILABLE, "no commit certificate stored for this height",
                       {"height": height}) from None
    except StatementError as exc:
        raise api_error(exc, {"height": height}) from None


_ACCT = account_param()

ROUTES: tuple[Route, ...] = (
    Route("GET", "/v1/accounts/{account_id}", "getAccount", "An account: member, keys, roles, custodian, flags",
          "accounts", get_account, params=(_ACCT, HEIGHT_QUERY), response=ref("Account"),
          errors=(e.ACCOUNT_NOT_FOUND, e.HEIGHT_UNKNOWN, e.HEIGHT_PRUNED)),
    Route("GET", "/v1/accounts/{account_id}/balances", "getBalances",
          "Balances of an account (available, held, frozen)", "accounts", get_balances, access=SIGNED,
          params=(_ACCT, asset_param("asset", "query", False), HEIGHT_QUERY), response=ref("Balances"),
          errors=(e.ACCOUNT_NOT_FOUND, e.HEIGHT_UNKNOWN, e.HEIGHT_PRUNED, *PRIVATE_ERRORS),
          description="An issuer or agent that does not otherwise see the account gets only its own assets."),
    Route("GET", "/v1/accounts/{account_id}/holds", "getAccountHolds",
          "Holds in which the account is sender, recipient or notary", "holds", account_holds, access=SIGNED,
          params=(_ACCT, cursor_param("the `next` of the previous page (a hold id)"), limit_param(100, 1000)),
          response=ref("HoldPage"), errors=(e.ACCOUNT_NOT_FOUND, *PRIVATE_ERRORS),
          description="Scans at most 10,000 hold records per page; `next` is null when the scan is complete."),
    Route("GET", "/v1/holds/{hold_id}", "getHold", "A hold (ERC-1996 states)", "holds", get_hold, access=SIGNED,
          params=(HOLD_PARAM,), response=ref("Hold"), errors=(e.HOLD_NOT_FOUND, *PRIVATE_ERRORS),
          description="Visible to its sender, recipient and notary (and their custodians), the asset's issuer and "
                      "agents, and auditors."),
    Route("GET", "/v1/accounts/{account_id}/history", "getAccountHistory",
          "Transactions that touched the account, newest first", "history", account_history, access=SIGNED,
          params=(_ACCT, cursor_param("the `next` of the previous page (`height:position`)"),
                  limit_param(100, 1000)),
          response=ref("HistoryPage"), errors=(e.ACCOUNT_NOT_FOUND, e.BAD_REQUEST, *PRIVATE_ERRORS)),
    Route("GET", "/v1/accounts/{account_id}/statement", "getStatement",
          "Custody statement: holdings at a height with proofs and the commit certificate", "statements",
          account_statement, access=SIGNED, params=(_ACCT, HEIGHT_QUERY), response=ref("Statement"),
          errors=(e.ACCOUNT_NOT_FOUND, e.HEIGHT_UNKNOWN, e.HEIGHT_PRUNED, e.NOT_AVAILABLE, *PRIVATE_ERRORS),
          description="Verifiable offline from the genesis file (`ledger verify-statement`). Visible to the account, "
                      "its custodian and auditors."),
)
