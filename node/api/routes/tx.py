"""Transactions: submit (JSON or msgpack, optionally waiting for commit), batch submit, status and receipt,
encode (JSON -> canonical bytes to sign) and dry-run (reason codes from the contracts layer)."""

from __future__ import annotations

import asyncio
from typing import Any

import msgpack

from contracts.dryrun import check, check_operations
from ledger import codes
from ledger.codec import CodecError, encode, record_type
from ledger.context import BlockContext
from ledger.events import Receipt, decode_receipt
from ledger.jsonform import body_from_json, from_json
from ledger.schema import ACCOUNT_ID, MAX_OPS_PER_TX, MAX_SIGNERS, MAX_TX_BYTES
from ledger.transaction import (
    ENVELOPE,
    Signature,
    SignedTransaction,
    TxEnvelope,
    decode_transaction,
    encode_body,
    tx_id_of,
)
from ledger.transaction import signing_message as make_signing_message
from node.api import errors as e
from node.api.context import Call
from node.api.errors import ApiError, api_error
from node.api.routes.common import TX_ID_PARAM, hex_bytes, need_dict
from node.api.routing import SIGNED, Param, Route
from node.api.schemas import ref
from node.api.views import receipt_view
from node.chain.protocol import OPERATIONS, node_protocol

MSGPACK = "application/msgpack"
SIGNATURE = record_type(Signature)


def _signatures(items: Any) -> tuple[Signature, ...]:
    if not isinstance(items, list):
        raise ApiError(e.INVALID_JSON, "signatures must be an array")
    try:
        return tuple(from_json(SIGNATURE, s) for s in items)
    except CodecError as exc:
        raise api_error(exc) from None


def _envelope(body_json: Any, sigs_json: Any) -> bytes:
    try:
        body_bytes = encode_body(body_from_json(body_json, operations=OPERATIONS), operations=OPERATIONS)
    except CodecError as exc:
        raise api_error(exc) from None
    sigs = _signatures(sigs_json)
    try:
        return encode(ENVELOPE, TxEnvelope(body_bytes, sigs))
    except CodecError as exc:
        raise api_error(exc) from None


def _tx_from_json(obj: Any) -> bytes:
    if isinstance(obj, dict) and "tx" in obj:
        need_dict(obj, {"tx"})
        return hex_bytes(obj["tx"], "tx", MAX_TX_BYTES)
    need_dict(obj, {"body", "signatures"})
    return _envelope(obj["body"], obj["signatures"])


def _decode(raw: bytes) -> SignedTransaction:
    try:
        return decode_transaction(raw, operations=OPERATIONS)
    except CodecError as exc:
        raise api_error(exc) from None


def _submitted_bytes(call: Call) -> bytes:
    if call.content_type == MSGPACK:
        if not call.body:
            raise ApiError(e.INVALID_JSON, "empty body")
        return call.body
    if call.content_type not in ("application/json", ""):
        raise ApiError(e.UNSUPPORTED_MEDIA_TYPE, details={"accepted": ["application/json", MSGPACK]})
    return _tx_from_json(call.json())


# Admission refusals that mean "busy, retry" rather than "this transaction is wrong".
RETRY_LATER = frozenset({"MEMPOOL_FULL"})
# Refusals that mean "not at this node": 503 without Retry-After (another node can take it).
NOT_HERE = frozenset({"NODE_HALTED", "NO_VALIDATOR_REACHABLE"})


def _refusal(code: int, message: str, tx_id: bytes) -> ApiError:
    entry = codes.describe(code)
    if entry is None or code == 0:
        return ApiError(e.TX_NOT_ADMITTED, message, {"tx_id": tx_id.hex(), "reason_code": code})
    if entry.name in RETRY_LATER:
        return ApiError(code, message or entry.message, {"tx_id": tx_id.hex()}, status=503,
                        headers={"Retry-After": "1"})
    if entry.name in NOT_HERE:
        return ApiError(code, message or entry.message, {"tx_id": tx_id.hex()}, status=503)
    return ApiError(code, message or entry.message, {"tx_id": tx_id.hex()}, status=422)


def _result(tx_id: bytes, receipt: Receipt | None, duplicate: bool) -> dict[str, Any]:
    if receipt is None:
        status = "pending"
    else:
        status = "committed" if receipt.executed else "rejected"
    return {
        "tx_id": tx_id.hex(),
        "status": status,
        "duplicate": duplicate,
        "receipt": None if receipt is None else receipt_view(receipt),
    }


async def submit(call: Call) -> Any:
    tx = _decode(_submitted_bytes(call))
    ctx = call.ctx
    wait = call.params["wait"] == "commit"
    timeout = call.params["timeout"]
    timeout = ctx.limits.wait_commit_default if timeout is None else min(timeout, ctx.limits.wait_commit_max)
    stored = ctx.store.get_receipt(tx.tx_id)
    if stored is not None:  # already committed: submission is idempotent
        return 200, _result(tx.tx_id, decode_receipt(stored, operations=OPERATIONS), True)
    fut = ctx.hub.expect(tx.tx_id) if wait else None
    try:
        adm = await ctx.facade.submit(tx)
        if not adm.admitted:
            stored = ctx.store.get_receipt(tx.tx_id)  # committed while we were admitting it
            if stored is not None:
                return 200, _result(tx.tx_id, decode_receipt(stored, operations=OPERATIONS), True)
            raise _refusal(adm.code, adm.message, tx.tx_id)
        if fut is None:
            return 202, _result(tx.tx_id, None, adm.duplicate)
        try:
            receipt = await asyncio.wait_for(asyncio.shield(fut), timeout)
        except TimeoutError:
            return 202, _result(tx.tx_id, None, adm.duplicate)
        return 200, _result(tx.tx_id, receipt, adm.duplicate)
    finally:
        if fut is not None:
            ctx.hub.forget(tx.tx_id, fut)
            if not fut.done():
                fut.cancel()


async def submit_batch(call: Call) -> Any:
    limits = call.ctx.limits
    if call.content_type == MSGPACK:
        try:
            items = msgpack.unpackb(call.body, raw=False, max_array_len=limits.max_batch + 1,
                                    max_bin_len=MAX_TX_BYTES, max_str_len=0, max_map_len=0)
        except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError):
            raise ApiError(e.INVALID_JSON, "body is not a msgpack array of transactions") from None
        if not isinstance(items, list) or not all(isinstance(x, bytes) for x in items):
            raise ApiError(e.INVALID_JSON, "body must be a msgpack array of bin")
        raws: list[bytes] = items
    else:
        obj = need_dict(call.json(), {"txs"})
        if not isinstance(obj["txs"], list):
            raise ApiError(e.INVALID_JSON, "txs must be an array")
        if len(obj["txs"]) > limits.max_batch:
            raise ApiError(e.BATCH_TOO_LARGE, details={"max_batch": limits.max_batch})
        raws = [hex_bytes(x, "txs[]", MAX_TX_BYTES) for x in obj["txs"]]
    if len(raws) > limits.max_batch:
        raise ApiError(e.BATCH_TOO_LARGE, details={"max_batch": limits.max_batch})
    if not raws:
        raise ApiError(e.INVALID_JSON, "empty batch")
    results: list[dict[str, Any] | None] = [None] * len(raws)
    decoded: list[tuple[int, SignedTransaction]] = []
    for i, raw in enumerate(raws):
        try:
            decoded.append((i, decode_transaction(raw, operations=OPERATIONS)))
        except CodecError as exc:
            results[i] = _batch_item(None, exc.code, exc.message, False)
    submit_many = getattr(call.ctx.facade, "submit_many", None)
    if submit_many is not None:
        # The whole batch goes to the mempool at once: its signatures are verified in one pool round.
        admissions = await submit_many([tx for _, tx in decoded]) if decoded else []
        assert len(admissions) == len(decoded)
    else:
        admissions = [await call.ctx.facade.submit(tx) for _, tx in decoded]
    for (i, tx), adm in zip(decoded, admissions, strict=True):
        results[i] = _batch_item(tx.tx_id, adm.code, adm.message, adm.duplicate)
    return {"results": results}


def _batch_item(tx_id: bytes | None, code: int, message: str, duplicate: bool) -> dict[str, Any]:
    entry = codes.describe(code)
    return {
        "tx_id": None if tx_id is None else tx_id.hex(),
        "code": code,
        "name": entry.name if entry is not None else "UNKNOWN",
        "message": message or codes.message_for(code),
        "duplicate": duplicate,
    }


async def tx_status(call: Call) -> Any:
    tx_id = bytes.fromhex(call.params["tx_id"])
    store = call.ctx.store
    found = store.get_tx(tx_id)
    if found is not None:
        height, index, tx_bytes = found
        raw = store.get_receipt(tx_id)
        receipt = None if raw is None else decode_receipt(raw, operations=OPERATIONS)
        return {
            "tx_id": tx_id.hex(),
            "status": "committed" if receipt is None or receipt.executed else "rejected",
            "height": height,
            "index": index,
            "tx": tx_bytes.hex(),
            "receipt": None if receipt is None else receipt_view(receipt),
        }
    if call.ctx.facade.tx_pending(tx_id):
        return {"tx_id": tx_id.hex(), "status": "pending", "height": None, "index": None, "tx": None,
                "receipt": None}
    raise ApiError(e.TX_NOT_FOUND, details={"tx_id": tx_id.hex()})


async def encode_tx(call: Call) -> Any:
    obj = need_dict(call.json(), {"body"}, {"signatures"})
    try:
        body = body_from_json(obj["body"], operations=OPERATIONS)
        body_bytes = encode_body(body, operations=OPERATIONS)
    except CodecError as exc:
        raise api_error(exc) from None
    tx_hex = None
    if "signatures" in obj:
        tx_hex = _envelope(obj["body"], obj["signatures"]).hex()
    return {
        "tx_id": tx_id_of(body_bytes).hex(),
        "body": body_bytes.hex(),
        "signing_message": make_signing_message(body.chain_id, body_bytes).hex(),
        "tx": tx_hex,
    }


def _next_block(call: Call) -> BlockContext:
    ctx = call.ctx
    meta = ctx.chain_meta()
    now = int(ctx.config.clock())
    return BlockContext(meta.chain_id, meta.height + 1, max(meta.time, now))


async def dry_run(call: Call) -> Any:
    ctx = call.ctx
    obj = call.json()
    if isinstance(obj, dict) and "tx" in obj:
        raw = hex_bytes(need_dict(obj, {"tx"})["tx"], "tx", MAX_TX_BYTES)
        tx = _decode(raw)
        result = check(ctx.store, _next_block(call), tx, node_protocol(ctx.facade.engine))
    else:
        obj = need_dict(obj, {"signers", "operations"})
        signers, ops = obj["signers"], obj["operations"]
        if not isinstance(signers, list) or not 1 <= len(signers) <= MAX_SIGNERS:
            raise ApiError(e.INVALID_JSON, f"signers must be an array of 1..{MAX_SIGNERS} account ids")
        if not isinstance(ops, list) or not 1 <= len(ops) <= MAX_OPS_PER_TX:
            raise ApiError(e.INVALID_JSON, f"operations must be an array of 1..{MAX_OPS_PER_TX} operations")
        try:
            signer_ids = [from_json(ACCOUNT_ID, s) for s in signers]
            operations = [from_json(OPERATIONS.variant, op) for op in ops]
        except CodecError as exc:
            raise api_error(exc) from None
        # Unsigned operations reveal balances and eligibility of the signers: only who may see them asks.
        vis = ctx.visibility
        for s in signer_ids:
            vis.require(vis.sees_account(call.who, s), call.who)
        result = check_operations(ctx.store, _next_block(call), frozenset(signer_ids), operations,
                                  node_protocol(ctx.facade.engine))
    return {
        "allowed": result.allowed,
        "code": result.code,
        "name": result.name,
        "message": result.message,
        "failed_op": result.failed_op,
        "detail": result.detail,
        "height": _next_block(call).height,
    }


# A request the document describes whose transaction does not decode: the ledger's decoding code, 422.
DECODING_ERRORS = tuple(sorted(c for c in codes.REASONS if 1 <= c < 100))

WAIT = Param("wait", "query", {"type": "string", "enum": ["none", "commit"], "default": "none"},
             "`commit`: wait for the transaction's block to commit (up to `timeout`) and return its receipt")
TIMEOUT = Param("timeout", "query", {"type": "integer", "minimum": 1, "maximum": 25},
                "seconds to wait with `wait=commit` (default 10); on timeout the answer is 202 `pending`")

ROUTES: tuple[Route, ...] = (
    Route("POST", "/v1/tx", "submitTransaction", "Submit a signed transaction", "transactions", submit,
          params=(WAIT, TIMEOUT), body=ref("SubmitRequest"), body_types=("application/json", MSGPACK),
          response=ref("SubmitResult"), extra_status={202: "admitted, not yet committed"},
          errors=(e.INVALID_JSON, e.UNSUPPORTED_MEDIA_TYPE, e.BODY_TOO_LARGE, e.TX_NOT_ADMITTED, *DECODING_ERRORS),
          description="JSON: `{\"tx\": hex}` (the canonical signed bytes) or `{\"body\": TxBody, \"signatures\": "
                      "[...]}`; or the raw bytes with `Content-Type: application/msgpack`. A transaction that does "
                      "not decode answers 422 with its ledger code (1-99); a mempool refusal answers 422 with the "
                      "refusal's code."),
    Route("POST", "/v1/tx/batch", "submitBatch", "Submit up to 256 signed transactions", "transactions",
          submit_batch, body=ref("BatchRequest"), body_types=("application/json", MSGPACK),
          response=ref("BatchResult"), errors=(e.INVALID_JSON, e.BATCH_TOO_LARGE, e.BODY_TOO_LARGE),
          description="JSON `{\"txs\": [hex, ...]}` or a msgpack array of bin. One result per transaction, in "
                      "order: code 0 = admitted."),
    Route("GET", "/v1/tx/{tx_id}", "getTransaction", "Transaction status, bytes and receipt", "transactions",
          tx_status, params=(TX_ID_PARAM,), response=ref("TxStatus"), errors=(e.TX_NOT_FOUND,),
          description="`committed`: in a block and executed (receipt code 0, or a refusal >= 200 that changed "
                      "nothing). `rejected`: in a block and rejected for good (receipt code WRONG_CHAIN, TX_EXPIRED "
                      "or SIGNER_CLOSED; docs/protocol.md §4.2): it changed nothing and can never execute. "
                      "`pending`: in this node's mempool. 404: unknown here (never seen, dropped, or rejected in a "
                      "block for a reason a later block may not share, such as a bad signature)."),
    Route("POST", "/v1/tx/encode", "encodeTransaction", "Encode a JSON body: the bytes to sign, their id",
          "transactions", encode_tx, body=ref("EncodeRequest"), response=ref("EncodeResult"),
          errors=(e.INVALID_JSON, *DECODING_ERRORS),
          description="A client in any language builds the JSON body, calls this, signs `signing_message` with "
                      "Ed25519 and submits `{body, signatures}` (or `tx` from a second call with signatures). "
                      "Check `tx_id` = SHA-256(`body`) and the signing message prefix locally (docs/protocol.md)."),
    Route("POST", "/v1/tx/dry-run", "dryRun", "Could this transaction happen now? (reason code)",
          "transactions", dry_run, access=SIGNED, body=ref("DryRunRequest"), response=ref("DryRunResult"),
          errors=(e.INVALID_JSON, e.AUTH_REQUIRED, e.NOT_VISIBLE, *DECODING_ERRORS),
          description="`{\"tx\": hex}`: a signed transaction, checked exactly as execution in the next block would "
                      "(public). `{\"signers\", \"operations\"}`: unsigned operations as if the signers had signed; "
                      "this reveals the signers' positions, so it needs a signed request by an account that sees "
                      "every signer (docs/api.md 1.4)."),
)
