"""JSON renderings of ledger values for API responses (the JSON form of docs/protocol.md, plus derived fields)."""

from __future__ import annotations

from typing import Any

from ledger.codec import record_type
from ledger.events import Event, Receipt
from ledger.jsonform import to_json
from ledger.records import HOLD_STATUS_NAMES, Account, Balance, Hold
from ledger.schema import role_names
from node.api.facade import BlockView

__all__ = ["account_view", "balance_view", "block_view", "event_view", "hold_view", "receipt_view", "record_view"]


def record_view(value: Any) -> Any:
    """Any ledger record in its JSON form."""
    return to_json(record_type(type(value)), value)


def _scalar(v: int | str | bytes) -> Any:
    return {"bin": v.hex()} if type(v) is bytes else v


def event_view(event: Event) -> dict[str, Any]:
    """The JSON form of an event (ledger.jsonform rules: bytes as hex, parameter bytes as {"bin": hex})."""
    return {
        "tx_id": event.tx_id.hex(),
        "op_index": event.op_index,
        "kind": event.kind,
        "attrs": {k: _scalar(v) for k, v in event.attrs},
    }


def receipt_view(receipt: Receipt) -> dict[str, Any]:
    return {
        "tx_id": receipt.tx_id.hex(),
        "height": receipt.height,
        "index": receipt.index,
        "code": receipt.code,
        "failed_op": receipt.failed_op,
        "detail": receipt.detail,
        "events": [event_view(ev) for ev in receipt.events],
    }


def balance_view(asset: str, account: str, b: Balance) -> dict[str, Any]:
    return {
        "asset": asset,
        "account": account,
        "available": b.available,
        "held": b.held,
        "frozen": b.frozen,
        "total": b.total,
    }


def account_view(account_id: str, a: Account, height: int) -> dict[str, Any]:
    return {
        "account_id": account_id,
        "member": a.member,
        "keys": [k.hex() for k in a.keys],
        "threshold": a.threshold,
        "roles": list(role_names(a.roles)),
        "custodian": a.custodian,
        "frozen": a.frozen,
        "closed_to": a.closed_to,
        "height": height,
    }


def hold_view(hold_id: str, h: Hold) -> dict[str, Any]:
    return {"hold_id": hold_id, "status_name": HOLD_STATUS_NAMES[h.status], "hold": record_view(h)}


def block_view(b: BlockView) -> dict[str, Any]:
    return {
        "height": b.height,
        "block_hash": b.block_hash.hex(),
        "time": b.time,
        "state_root": b.state_root.hex(),
        "tx_ids": [t.hex() for t in b.tx_ids],
        "header": dict(b.header),
        "certificate": None if b.certificate is None else b.certificate.hex(),
    }
