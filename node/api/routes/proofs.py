"""State proofs for any key at a height (docs/state-proofs.md). Keys of private records need visibility."""

from __future__ import annotations

from typing import Any

from ledger.records import Hold
from ledger.state import decode_value
from ledger.state_keys import RECORD_BY_TAG, hold_key, in_tree, parse_balance_key
from ledger.store import PrunedHeightError, UnknownHeightError
from node.api import errors as e
from node.api.context import Call
from node.api.errors import ApiError
from node.api.routes.common import HEIGHT_QUERY, PRIVATE_ERRORS, require_kept
from node.api.routing import SIGNED, Param, Route
from node.api.schemas import ref
from node.api.views import record_view

KEY = Param("key", "query", {"type": "string", "pattern": "^(?:[0-9a-f]{2}){1,256}$"},
            "the state key, lowercase hex (docs/protocol.md, \"State keys\")", True)
PUBLIC_TAGS = frozenset(b"MmaAST" + b"Ee")


def _require_visible(call: Call, key: bytes, height: int) -> None:
    vis = call.ctx.visibility
    who = call.who
    tag = key[0]
    if tag in PUBLIC_TAGS:
        return
    if tag == ord("B"):
        try:
            asset, account = parse_balance_key(key)
        except (UnicodeDecodeError, IndexError):
            vis.require(vis.everything(who), who)
            return
        vis.require(vis.sees_position(who, account, asset), who)
    elif tag == ord("P"):
        vis.require(vis.sees_account(who, key[1:].decode("ascii", "replace")), who)
    elif tag == ord("H"):
        hold: Hold | None = call.ctx.record_at(hold_key(key[1:].decode("ascii", "replace")), height)[0] \
            if key[1:].isascii() else None
        if hold is None:
            vis.require(vis.everything(who), who)
        else:
            vis.require(vis.sees_any(who, (hold.sender, hold.recipient, hold.notary), (hold.asset,)), who)
    else:
        vis.require(vis.everything(who), who)


async def get_proof(call: Call) -> Any:
    ctx = call.ctx
    key = bytes.fromhex(call.params["key"])
    head = ctx.facade.head().height
    height = head if call.params["height"] is None else call.params["height"]
    if height > head:
        raise ApiError(e.HEIGHT_UNKNOWN, details={"height": height, "head": head})
    if not in_tree(key):
        raise ApiError(e.BAD_REQUEST, "the replay index (tag T) is derived, not in the state tree: prove the id's "
                       "replay bucket (tag e, docs/state-proofs.md)", {"reason": "key_not_in_state_tree"})
    _require_visible(call, key, height)
    try:
        value, proof = ctx.store.prove(key, height)
    except PrunedHeightError:
        require_kept(ctx.store, height)
        raise ApiError(e.HEIGHT_PRUNED, details={"height": height}) from None
    except UnknownHeightError:
        raise ApiError(e.HEIGHT_UNKNOWN, details={"height": height}) from None
    root = ctx.store.state_root_at(height)
    assert root is not None
    record = None
    if value is not None and RECORD_BY_TAG.get(key[0]) is not None:
        record = record_view(decode_value(key, value))
    return {
        "key": key.hex(),
        "height": height,
        "state_root": root.hex(),
        "value": None if value is None else value.hex(),
        "record": record,
        "proof": proof.to_json(),
    }


ROUTES: tuple[Route, ...] = (
    Route("GET", "/v1/proofs", "getProof", "Value and Merkle proof of a state key at a height", "proofs",
          get_proof, access=SIGNED, params=(KEY, HEIGHT_QUERY), response=ref("Proof"),
          errors=(e.BAD_REQUEST, e.HEIGHT_UNKNOWN, e.HEIGHT_PRUNED, *PRIVATE_ERRORS),
          description="Verify with ledger.smt.verify_proof against `state_root`, and the state root against the "
                      "block's commit certificate (GET /v1/blocks/{height}). Chain meta, members, accounts, asset "
                      "definitions and status and the replay buckets (E, e) are public (the derived replay index T is "
                      "not in the tree: 400 with reason key_not_in_state_tree); balances, positions and holds follow "
                      "the visibility rules; contracts-layer records need an auditor."),
)
