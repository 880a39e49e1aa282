"""JSON Schemas (OpenAPI 3.1 / JSON Schema 2020-12) of everything the API sends and accepts.

Record schemas are derived from the ledger's wire types (ledger.codec), the same single source the JSON form
(ledger.jsonform) follows, so a change to a record changes the document. Named schemas go into
`components/schemas`; `ref(name)` points at one.
"""

from __future__ import annotations

from typing import Any

from ledger.codec import Bin, Bool, Choice, Optional, Record, Scalar, Seq, Str, StrMap, UInt, Variant, Version, WireType
from ledger.codec import record_type as _record_type
from ledger.jsonform import kind_name
from ledger.operations import ACTION
from ledger.records import HOLD_STATUS_NAMES, Account, AssetDefinition, AssetStatus, Hold
from ledger.schema import (
    ACCOUNT_PATTERN,
    ASSET_PATTERN,
    CHAIN_PARAM_NAMES,
    HOLD_PATTERN,
    MAX_ACCOUNT_ID_BYTES,
    MAX_AMOUNT,
    NODE_ID_PATTERN,
)
from ledger.transaction import Signature
from node.chain.protocol import OPERATIONS

__all__ = ["COMPONENTS", "ref", "wire_schema"]

Schema = dict[str, Any]

HEX = "^(?:[0-9a-f]{2})*$"
HEX32 = "^[0-9a-f]{64}$"
U64_MAX = (1 << 64) - 1


def ref(name: str) -> Schema:
    assert name in COMPONENTS, name
    return {"$ref": f"#/components/schemas/{name}"}


def _anchored(pattern: str) -> str:
    return f"^(?:{pattern})$"


def wire_schema(t: WireType) -> Schema:
    """The JSON Schema of a wire type's JSON form (ledger.jsonform)."""
    tt = type(t)
    if tt is UInt:
        return {"type": "integer", "minimum": t.minimum, "maximum": t.maximum}  # type: ignore[attr-defined]
    if tt is Choice:  # a set of names (event kinds): the name pattern, so the document does not list them
        return {"type": "string", "pattern": "^" + t.pattern.__self__.pattern + "$"}  # type: ignore[attr-defined]
    if tt is Version:
        return {"type": "integer", "const": t.number}  # type: ignore[attr-defined]
    if tt is Bool:
        return {"type": "boolean"}
    if tt is Str:
        s: Schema = {"type": "string", "maxLength": t.max_bytes}  # type: ignore[attr-defined]
        if t.pattern:  # type: ignore[attr-defined]
            s["pattern"] = _anchored(t.pattern)  # type: ignore[attr-defined]
        if t.min_bytes:  # type: ignore[attr-defined]
            s["minLength"] = t.min_bytes  # type: ignore[attr-defined]
        return s
    if tt is Bin:
        s = {"type": "string", "pattern": HEX, "minLength": 2 * t.min_len}  # type: ignore[attr-defined]
        if t.max_len is not None:  # type: ignore[attr-defined]
            s["maxLength"] = 2 * t.max_len  # type: ignore[attr-defined]
        return s
    if tt is Optional:
        return {"anyOf": [wire_schema(t.inner), {"type": "null"}]}  # type: ignore[attr-defined]
    if tt is Seq:
        s = {"type": "array", "items": wire_schema(t.item), "maxItems": t.max_len}  # type: ignore[attr-defined]
        if t.min_len:  # type: ignore[attr-defined]
            s["minItems"] = t.min_len  # type: ignore[attr-defined]
        return s
    if tt is Scalar:
        return {
            "anyOf": [
                {"type": "integer"},
                {"type": "string"},
                {
                    "type": "object",
                    "properties": {"bin": {"type": "string", "pattern": HEX}},
                    "required": ["bin"],
                    "additionalProperties": False,
                },
            ]
        }
    if tt is StrMap:
        return {
            "type": "object",
            "additionalProperties": wire_schema(t.value),  # type: ignore[attr-defined]
            "maxProperties": t.max_len,  # type: ignore[attr-defined]
        }
    if tt is Record:
        return {
            "type": "object",
            "properties": {n: wire_schema(ft) for n, ft in zip(t.names, t.types)},  # type: ignore[attr-defined]
            "required": list(t.names),  # type: ignore[attr-defined]
            "additionalProperties": False,
        }
    if tt is Variant:
        options = []
        for rec in t.by_kind.values():  # type: ignore[attr-defined]
            body = wire_schema(rec)
            body["properties"] = {"kind": {"const": kind_name(rec.cls)}, **body["properties"]}
            body["required"] = ["kind", *body["required"]]
            options.append(body)
        return {"oneOf": options}
    raise TypeError(f"no JSON schema for {tt.__name__}")


def _obj(props: dict[str, Schema], required: list[str] | None = None, extra: bool = False) -> Schema:
    return {
        "type": "object",
        "properties": props,
        "required": list(props) if required is None else required,
        "additionalProperties": extra,
    }


def _page(item: Schema) -> Schema:
    return _obj({"items": {"type": "array", "items": item}, "next": {"type": ["string", "null"]}})


INT = {"type": "integer", "minimum": 0}
AMOUNT = {"type": "integer", "minimum": 0, "maximum": MAX_AMOUNT}
HEIGHT = {"type": "integer", "minimum": 0, "maximum": U64_MAX}
HASH = {"type": "string", "pattern": HEX32}
DELTA = {"type": "integer", "minimum": -MAX_AMOUNT, "maximum": MAX_AMOUNT}  # a signed change of an amount
ACCOUNT = {"type": "string", "pattern": _anchored(ACCOUNT_PATTERN), "maxLength": MAX_ACCOUNT_ID_BYTES}
ASSET = {"type": "string", "pattern": _anchored(ASSET_PATTERN), "maxLength": 32}
HOLD_ID = {"type": "string", "pattern": _anchored(HOLD_PATTERN), "maxLength": 64}

_BALANCE = _obj({"asset": ASSET, "account": ACCOUNT, "available": AMOUNT, "held": AMOUNT, "frozen": AMOUNT,
                 "total": {"type": "integer", "minimum": 0}})
_ACCOUNT_REC = wire_schema(_record_type(Account))
_ASSET_REC = wire_schema(_record_type(AssetDefinition))
_STATUS_REC = wire_schema(_record_type(AssetStatus))
_HOLD_REC = wire_schema(_record_type(Hold))
_RECEIPT_REC = wire_schema(OPERATIONS.receipt)
_VALIDATOR = _obj(
    {
        "index": INT,
        "name": {"type": "string"},
        "member": {"type": ["string", "null"]},
        "public_key": {"type": "string", "pattern": HEX},
        "identity_key": {"type": ["string", "null"], "pattern": HEX},
        "address": {"type": ["string", "null"]},
        "power": INT,
    }
)
_PROPOSAL = _obj(
    {
        "proposal_id": {"type": "string"},
        "height": HEIGHT,
        "status": {"enum": ["open", "executed", "cancelled", "expired"]},
        "proposer": ACCOUNT,
        "proposer_member": {"type": "string"},
        "actions": {"type": "array", "items": wire_schema(ACTION)},
        "approvals": {"type": "array", "items": {"type": "string"}},
        "threshold": INT,
        "approvals_missing": INT,
        "expiry_height": HEIGHT,
        "created_height": HEIGHT,
        "closed_height": {"type": ["integer", "null"], "minimum": 0},
    }
)
_EVENT_REC = wire_schema(OPERATIONS.event)
# The JSON form of a state proof (docs/state-proofs.md, "JSON form").
_STATE_PROOF = _obj({"version": INT, "depth": INT, "bitmap": {"type": "string", "pattern": HEX},
                     "siblings": {"type": "array", "items": HASH},
                     "other_leaf": {"oneOf": [{"type": "null"}, _obj({"path": HASH, "value_hash": HASH})]}})
# The event stream's messages (docs/api.md section 4): one JSON object per WebSocket text message or SSE `data:`.
_STREAM_EVENT = _obj({"type": {"const": "event"}, "height": HEIGHT, "event": {"$ref": "#/components/schemas/Event"}})
_STREAM_BLOCK = _obj({"type": {"const": "block"}, "height": HEIGHT, "block_hash": HASH, "time": INT})
# A heartbeat names the last height whose checkpoint was delivered: -1 before the first one.
_STREAM_HEARTBEAT = _obj({"type": {"const": "heartbeat"}, "height": {"type": "integer", "minimum": -1}})
_STREAM_ERROR = _obj({"type": {"const": "error"}, "code": {"type": "integer", "minimum": 1},
                      "message": {"type": "string"}, "resume_from": HEIGHT})

COMPONENTS: dict[str, Schema] = {
    "Error": _obj(
        {
            "code": {"type": "integer", "minimum": 1},
            "name": {"type": "string"},
            "message": {"type": "string"},
            "details": {"type": "object"},
        }
    ),
    "TxBody": wire_schema(OPERATIONS.body),
    "Operation": wire_schema(OPERATIONS.variant),
    "Signature": wire_schema(_record_type(Signature)),
    "Receipt": _RECEIPT_REC,
    "Event": _EVENT_REC,
    "AccountRecord": _ACCOUNT_REC,
    "AssetDefinition": _ASSET_REC,
    "AssetStatus": _STATUS_REC,
    "HoldRecord": _HOLD_REC,
    "Balance": _BALANCE,
    "SubmitRequest": {
        "oneOf": [
            _obj({"tx": {"type": "string", "pattern": HEX, "minLength": 2}}),
            _obj({"body": {"$ref": "#/components/schemas/TxBody"},
                  "signatures": {"type": "array", "items": {"$ref": "#/components/schemas/Signature"}}}),
        ]
    },
    "SubmitResult": _obj(
        {
            "tx_id": HASH,
            "status": {"enum": ["pending", "committed", "rejected"]},
            "duplicate": {"type": "boolean"},
            "receipt": {"anyOf": [{"$ref": "#/components/schemas/Receipt"}, {"type": "null"}]},
        }
    ),
    "BatchRequest": _obj({"txs": {"type": "array", "items": {"type": "string", "pattern": HEX}, "minItems": 1}}),
    "BatchResult": _obj(
        {
            "results": {
                "type": "array",
                "items": _obj(
                    {
                        "tx_id": {"type": ["string", "null"], "pattern": HEX32},
                        "code": INT,
                        "name": {"type": "string"},
                        "message": {"type": "string"},
                        "duplicate": {"type": "boolean"},
                    }
                ),
            }
        }
    ),
    "TxStatus": _obj(
        {
            "tx_id": HASH,
            "status": {
                "enum": ["pending", "committed", "rejected"],
                "description": "`rejected`: in a block at `height`, rejected for good; `receipt.code` is the "
                               "rejection (1-199: WRONG_CHAIN, TX_EXPIRED or SIGNER_CLOSED), `failed_op` is null, "
                               "`events` is empty, nothing changed and the id can never execute",
            },
            "height": {"type": ["integer", "null"], "minimum": 0},
            "index": {"type": ["integer", "null"], "minimum": 0},
            "tx": {"type": ["string", "null"], "pattern": HEX},
            "receipt": {"anyOf": [{"$ref": "#/components/schemas/Receipt"}, {"type": "null"}]},
        }
    ),
    "EncodeRequest": _obj(
        {"body": {"$ref": "#/components/schemas/TxBody"},
         "signatures": {"type": "array", "items": {"$ref": "#/components/schemas/Signature"}}},
        required=["body"],
    ),
    "EncodeResult": _obj(
        {
            "tx_id": HASH,
            "body": {"type": "string", "pattern": HEX},
            "signing_message": {"type": "string", "pattern": HEX},
            "tx": {"type": ["string", "null"], "pattern": HEX},
        }
    ),
    "DryRunRequest": {
        "oneOf": [
            _obj({"tx": {"type": "string", "pattern": HEX, "minLength": 2}}),
            _obj(
                {
                    "signers": {"type": "array", "items": ACCOUNT, "minItems": 1, "maxItems": 8},
                    "operations": {"type": "array", "items": {"$ref": "#/components/schemas/Operation"},
                                   "minItems": 1, "maxItems": 32},
                }
            ),
        ]
    },
    "DryRunResult": _obj(
        {
            "allowed": {"type": "boolean"},
            "code": INT,
            "name": {"type": "string"},
            "message": {"type": "string"},
            "failed_op": {"type": ["integer", "null"], "minimum": 0},
            "detail": {"type": "string"},
            "height": HEIGHT,
        }
    ),
    "Account": _obj(
        {
            "account_id": ACCOUNT,
            "member": {"type": "string"},
            "keys": {"type": "array", "items": HASH},
            "threshold": INT,
            "roles": {"type": "array", "items": {"type": "string"}},
            "custodian": {"type": ["string", "null"]},
            "frozen": {"type": "boolean"},
            "closed_to": {"type": ["string", "null"]},
            "height": HEIGHT,
        }
    ),
    "Balances": _obj({"account": ACCOUNT, "height": HEIGHT,
                      "balances": {"type": "array", "items": {"$ref": "#/components/schemas/Balance"}}}),
    "Asset": _obj(
        {
            "asset_id": ASSET,
            "definition": {"$ref": "#/components/schemas/AssetDefinition"},
            "status": {"$ref": "#/components/schemas/AssetStatus"},
            "outstanding": {"type": "integer", "minimum": 0},
            "height": HEIGHT,
        }
    ),
    "BalancePage": _page({"$ref": "#/components/schemas/Balance"}),
    "Hold": _obj({"hold_id": HOLD_ID, "status_name": {"type": "string"},
                  "hold": {"$ref": "#/components/schemas/HoldRecord"}}),
    "HoldPage": _obj(
        {
            "items": {"type": "array", "items": {"$ref": "#/components/schemas/Hold"}},
            "next": {"type": ["string", "null"]},
            "scanned": INT,
        }
    ),
    "HistoryEntry": _obj(
        {
            "height": HEIGHT,
            "position": INT,
            "tx_id": HASH,
            "code": {"type": ["integer", "null"], "minimum": 0},
            "events": {"type": "array", "items": {"$ref": "#/components/schemas/Event"}},
        }
    ),
    "HistoryPage": _page({"$ref": "#/components/schemas/HistoryEntry"}),
    "Block": _obj(
        {
            "height": HEIGHT,
            "block_hash": HASH,
            "time": INT,
            "state_root": HASH,
            "tx_ids": {"type": "array", "items": HASH},
            "header": {"type": "object"},
            "certificate": {"type": ["string", "null"], "pattern": HEX},
        }
    ),
    "BlockPage": _page({"$ref": "#/components/schemas/Block"}),
    "BlockChanges": _obj(
        {
            "height": HEIGHT,
            "block_hash": HASH,
            "time": INT,
            "block": {"type": "string", "pattern": HEX},
            "certificate": {"type": ["string", "null"], "pattern": HEX},
            "receipts": {"type": "array", "items": {"$ref": "#/components/schemas/Receipt"}},
            "block_events": {"type": "array", "items": {"$ref": "#/components/schemas/Event"}},
            "balance_changes": {"type": "array", "items": _obj({
                "tx_id": HASH, "asset": ASSET, "account": ACCOUNT, "available": DELTA, "held": DELTA,
                "frozen": DELTA,
            })},
        }
    ),
    "Validators": _obj(
        {
            "epoch": INT,
            "start_height": {"type": ["integer", "null"], "minimum": 0},
            "height": HEIGHT,
            "validators": {"type": "array", "items": _VALIDATOR},
        }
    ),
    "Governance": _obj(
        {
            "height": HEIGHT,
            "epoch": INT,
            "start_height": HEIGHT,
            "voters": {"type": "array", "items": {"type": "string"}},
            "threshold": INT,
            "params": _obj({name: INT for name in CHAIN_PARAM_NAMES}),
            "validators": INT,
        }
    ),
    "Proposal": _PROPOSAL,
    "ProposalPage": _page(_PROPOSAL),
    "Epochs": _obj(
        {
            "height": HEIGHT,
            "current_epoch": INT,
            "start_height": HEIGHT,
            "items": {"type": "array", "items": {"$ref": "#/components/schemas/EpochChange"}},
            "epochs": {"type": "array", "items": {"$ref": "#/components/schemas/EpochChange"},
                       "deprecated": True, "description": "the same list as `items` (kept for older clients)"},
            "next": {"type": ["integer", "null"], "minimum": 0},
        }
    ),
    "EpochChange": _obj(
        {
            "epoch": INT,
            "end_height": {"type": ["integer", "null"], "minimum": 0},
            "block_id": {"type": ["string", "null"], "pattern": HEX32},
            "next_epoch": INT,
            "next_start_height": {"type": ["integer", "null"], "minimum": 0},
            "next_validators": {
                "type": "array",
                "items": _obj({"name": {"type": "string"}, "public_key": {"type": "string", "pattern": HEX},
                               "power": INT}),
            },
            "proof": {"type": ["string", "null"], "pattern": HEX},
        }
    ),
    "Peers": _obj(
        {
            "peers": {
                "type": "array",
                "items": _obj({"name": {"type": "string"}, "address": {"type": "string"},
                               "connected": {"type": "boolean"}, "height": {"type": ["integer", "null"]}}),
            }
        }
    ),
    "Status": _obj(
        {
            "chain_id": {"type": "string"},
            "node_id": {"type": "string", "pattern": _anchored(NODE_ID_PATTERN)},
            "height": HEIGHT,
            "block_hash": HASH,
            "state_root": HASH,
            "time": INT,
            "open_reads": {"type": "boolean"},
            "auth_window": INT,
            "node": {"type": "object"},
        }
    ),
    "Health": _obj({"ok": {"type": "boolean"}, "height": HEIGHT}),
    "StreamMessage": {"oneOf": [_STREAM_EVENT, _STREAM_BLOCK, _STREAM_HEARTBEAT, _STREAM_ERROR]},
    "SseEvent": _obj(
        {
            "event": {"enum": ["event", "block", "heartbeat", "error"]},
            "id": {"type": "string", "pattern": "^[0-9]+$"},
            "data": {"type": "string", "contentMediaType": "application/json",
                     "contentSchema": {"$ref": "#/components/schemas/StreamMessage"}},
        },
        required=["event", "data"],
    ),
    "Proof": _obj(
        {
            "key": {"type": "string", "pattern": HEX},
            "height": HEIGHT,
            "state_root": HASH,
            "value": {"type": ["string", "null"], "pattern": HEX},
            "record": {},
            "proof": {"type": "object"},
        }
    ),
    "Statement": _obj(
        {
            "format": {"const": "ledger-custody-statement/1"},
            "chain_id": {"type": "string"},
            "genesis": {"type": "string", "pattern": HEX, "maxLength": 128,
                        "description": "the consensus chain id: the genesis hash (32 bytes) on a node's chain"},
            "account": ACCOUNT,
            "height": HEIGHT,
            "time": INT,
            "state_root": HASH,
            "block": _obj({"id": HASH, "height": HEIGHT, "epoch": INT, "round": INT}),
            "account_status": _obj({"frozen": {"type": "boolean"}, "custodian": {"type": ["string", "null"]},
                                    "closed_to": {"type": ["string", "null"]}}),
            "holdings": {"type": "array", "items": _obj({
                "asset": ASSET, "available": AMOUNT, "held": AMOUNT, "frozen": AMOUNT,
                "holds": {"type": "array", "items": _obj({
                    "hold": HOLD_ID, "recipient": ACCOUNT, "notary": ACCOUNT, "amount": AMOUNT, "expires_at": INT,
                    "created_height": HEIGHT, "status": {"enum": sorted(HOLD_STATUS_NAMES.values())}})}})},
            "proofs": {"type": "array", "items": _obj({
                "key": {"type": "string", "pattern": HEX},
                "value": {"type": ["string", "null"], "pattern": HEX},
                "proof": _STATE_PROOF})},
            "commit_certificate": {"type": "string", "pattern": HEX},
            "validator_set": _obj({"epoch": INT, "digest": HASH,
                                   "epoch_changes": {"type": "array", "items": {"type": "string", "pattern": HEX}}}),
        }
    ),
    "ReasonCodes": _obj(
        {
            "codes": {
                "type": "array",
                "items": _obj({"code": INT, "name": {"type": "string"}, "message": {"type": "string"},
                               "layer": {"type": "string"}}),
            }
        }
    ),
}
