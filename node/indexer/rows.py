"""A verified block as the rows of the indexer's tables (pure: no database, no network). docs/indexer.md describes
the tables; node/indexer/store.py writes these rows in one SQL transaction with the checkpoint."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ledger import codes
from node.indexer.verify import VerifiedBlock

__all__ = ["BlockRows", "block_rows", "code_name", "utc"]

BUCKETS = ("available", "held", "frozen")
FREEZE_KINDS = frozenset({"account_frozen", "account_unfrozen", "amount_frozen", "amount_unfrozen"})
PROPOSAL_KINDS = frozenset({"proposal_created", "proposal_approved", "proposal_executed", "proposal_cancelled"})


def code_name(code: int) -> str:
    entry = codes.REASONS.get(code)
    return entry.name if entry is not None else f"CODE_{code}"


def utc(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _int(v: Any) -> int | None:
    return v if type(v) is int else None


@dataclass(slots=True)
class BlockRows:
    block: tuple[Any, ...]
    transactions: list[tuple[Any, ...]] = field(default_factory=list)
    events: list[tuple[Any, ...]] = field(default_factory=list)
    movements: list[tuple[Any, ...]] = field(default_factory=list)
    assets: list[tuple[Any, ...]] = field(default_factory=list)
    holds_created: list[tuple[Any, ...]] = field(default_factory=list)
    holds_closed: list[tuple[Any, ...]] = field(default_factory=list)  # (status, how, height, tx, hold_id)
    freezes: list[tuple[Any, ...]] = field(default_factory=list)
    actions: list[tuple[Any, ...]] = field(default_factory=list)
    payments: list[tuple[Any, ...]] = field(default_factory=list)
    proposals_created: list[tuple[Any, ...]] = field(default_factory=list)
    proposal_updates: list[tuple[Any, ...]] = field(default_factory=list)  # (status|None, approvals|None, h, id)
    proposal_events: list[tuple[Any, ...]] = field(default_factory=list)


def block_rows(vb: VerifiedBlock) -> BlockRows:
    h = vb.height
    ch = vb.changes
    rows = BlockRows(
        (
            h,
            vb.block_hash,
            utc(vb.time_ms // 1000),
            vb.epoch,
            vb.round,
            vb.proposer,
            vb.state_root,
            len(vb.tx_ids),
            list(vb.signers),
            vb.signer_power,
            vb.certificate,
        )
    )
    events: list[dict[str, Any]] = list(ch["block_events"])
    for r in ch["receipts"]:
        tx_id = bytes.fromhex(r["tx_id"])
        rows.transactions.append(
            (tx_id, h, r["index"], r["code"], code_name(r["code"]), r.get("failed_op"), r.get("detail", ""))
        )
        events.extend(r["events"])
    for seq, ev in enumerate(events):
        _event(rows, h, seq, ev)
    seq = 0
    for m in ch["balance_changes"]:
        tx_id = bytes.fromhex(m["tx_id"])
        for bucket in BUCKETS:
            delta = m[bucket]
            if type(delta) is not int:
                raise ValueError("balance change delta is not an integer")
            if delta:
                rows.movements.append((h, seq, tx_id, m["asset"], m["account"], bucket, delta))
                seq += 1
    return rows


def _event(rows: BlockRows, h: int, seq: int, ev: dict[str, Any]) -> None:
    tx_id = bytes.fromhex(ev["tx_id"])
    kind = ev["kind"]
    a: dict[str, Any] = ev["attrs"]
    rows.events.append((h, seq, tx_id, ev["op_index"], kind, json.dumps(a, sort_keys=True)))
    if kind == "asset_defined":
        rows.assets.append((a.get("asset"), a.get("issuer"), h))
    elif kind == "hold_created":
        rows.holds_created.append(
            (
                a["hold"],
                a["asset"],
                a["sender"],
                a["recipient"],
                a["notary"],
                a["amount"],
                utc(a["expires_at"]),
                h,
                tx_id,
            )
        )
    elif kind == "hold_executed":
        rows.holds_closed.append(("executed", "executed", h, tx_id, a["hold"]))
    elif kind == "hold_released":
        rows.holds_closed.append(("released", a.get("status", "released"), h, tx_id, a["hold"]))
    elif kind == "hold_expired":
        rows.holds_closed.append(("expired", "expired", h, tx_id, a["hold"]))
    elif kind in FREEZE_KINDS:
        rows.freezes.append(
            (h, seq, tx_id, kind, a["account"], a.get("asset"), _int(a.get("amount")), a.get("actor"), a.get("reason"))
        )
    elif kind == "action_announced":
        rows.actions.append(
            (
                a["action"],
                a["action_kind"],
                a["asset"],
                a.get("pay_asset"),
                a.get("payer"),
                a.get("remainder_account"),
                _int(a.get("record_height")),
                _int(a.get("rate_num")),
                _int(a.get("rate_den")),
                h,
                tx_id,
            )
        )
    elif kind == "distribution_paid":
        rows.payments.append(
            (
                h,
                seq,
                tx_id,
                a["action"],
                kind,
                a["asset"],
                a.get("payer"),
                a.get("recipient"),
                a["amount"],
                bool(a.get("frozen")),
            )
        )
    elif kind == "maturity_redeemed":
        rows.payments.append(
            (h, seq, tx_id, a["action"], kind, a["asset"], a.get("sender"), None, a["amount"], bool(a.get("frozen")))
        )
    if "proposal" in a and type(a["proposal"]) is str:
        pid = a["proposal"]
        rows.proposal_events.append((h, seq, tx_id, pid, kind, json.dumps(a, sort_keys=True)))
        if kind == "proposal_created":
            rows.proposals_created.append((pid, a.get("actor"), a.get("actions", ""), a["expiry_height"], h))
        elif kind == "proposal_approved":
            rows.proposal_updates.append((None, _int(a.get("approvals")), None, pid))
        elif kind == "proposal_executed":
            rows.proposal_updates.append(("executed", None, h, pid))
        elif kind == "proposal_cancelled":
            rows.proposal_updates.append(("cancelled", None, h, pid))
