"""What an indexer needs of one committed block, in one read: the block's bytes and commit certificate (to verify it
offline against the genesis), the receipts of its transactions with their events, the block's own events, and every
balance movement it made (node/chain/balance_changes.py). docs/indexer.md is the consumer."""

from __future__ import annotations

from typing import Any

from ledger.events import decode_receipt
from node.api import errors as e
from node.api.context import Call
from node.api.errors import ApiError
from node.api.routes.blocks import HEIGHT_PATH
from node.api.routes.common import PRIVATE_ERRORS
from node.api.routing import SIGNED, Route
from node.api.schemas import ref
from node.api.views import event_view, receipt_view
from node.chain.balance_changes import balance_changes_key, decode_balance_changes
from node.chain.certified import block_events_key, cert_key
from node.chain.protocol import OPERATIONS


async def get_block_changes(call: Call) -> Any:
    ctx = call.ctx
    vis = ctx.visibility
    vis.require(vis.everything(call.who), call.who)
    height = call.params["height"]
    store = ctx.store
    head = ctx.facade.head().height
    raw_block = store.get_block(height) if height <= head else None
    if raw_block is None:
        raise ApiError(e.BLOCK_NOT_FOUND, details={"height": height, "head": head})
    block_view = ctx.facade.block(height)
    assert block_view is not None, "a stored block has a view"
    receipts = []
    for tx_id in block_view.tx_ids:
        found = store.get_tx(tx_id)
        raw = store.get_receipt(tx_id)
        if found is not None and found[0] == height and raw is not None:
            receipts.append(receipt_view(decode_receipt(raw, operations=OPERATIONS)))
    own_raw = store.get_extra(block_events_key(height))
    own = () if own_raw is None else decode_receipt(own_raw, operations=OPERATIONS).events
    changes_raw = store.get_extra(balance_changes_key(height))
    changes = [] if changes_raw is None else decode_balance_changes(changes_raw)
    cert = store.get_extra(cert_key(height))
    return {
        "height": height,
        "block_hash": block_view.block_hash.hex(),
        "time": block_view.time,
        "block": raw_block.hex(),
        "certificate": None if cert is None else cert.hex(),
        "receipts": receipts,
        "block_events": [event_view(ev) for ev in own],
        "balance_changes": [
            {"tx_id": tx_id.hex(), "asset": asset, "account": account, "available": da, "held": dh, "frozen": df}
            for tx_id, asset, account, da, dh, df in changes
        ],
    }


ROUTES: tuple[Route, ...] = (
    Route(
        "GET",
        "/v1/blocks/{height}/changes",
        "getBlockChanges",
        "A block's bytes, certificate, receipts, events and balance movements (for indexers)",
        "blocks",
        get_block_changes,
        access=SIGNED,
        params=(HEIGHT_PATH,),
        response=ref("BlockChanges"),
        errors=(e.BLOCK_NOT_FOUND, *PRIVATE_ERRORS),
        description="Everything of one committed block an indexer records (docs/indexer.md). `block` is the hex of "
        "the stored block (consensus.messages.encode_block: header and payload), `certificate` the hex of "
        "its CommitCertificate (null for the genesis block); verify both offline from the genesis. "
        "`receipts` are those stored at this height, in block order (a transaction rejected for a "
        "reason tied to its signatures has none). `balance_changes` lists every balance write in "
        "execution order as signed deltas of the available, held and frozen buckets (tx_id 64 zeros: "
        "the block's own step, holds released on expiry); they are not hashed, so check their sums "
        "against state proofs. Needs full visibility (auditor role, or open reads).",
    ),
)
