"""API errors: the node/API reason codes, the typed exception handlers raise, the mapping of every layer's errors,
and the error middleware.

Every error leaves the API as `{"code": int, "message": str, "details": object}` with the HTTP status of its code.
`code` is a number of the shared reason-code table (ledger.codes): the API's own codes are 3100-3299; a transaction
that fails to decode is answered with the decoding code itself (1-99). `api_error` is the one place where an error of
another layer (ledger.errors.LedgerError, consensus.errors.ConsensusError, node.errors.NodeError) becomes that form.
The middleware turns any unexpected exception into 503 INTERNAL_ERROR (logged with an incident id, never a stack
trace on the wire).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from consensus.errors import ConsensusError
from ledger import codes
from ledger.errors import LedgerError
from node.errors import NodeError

__all__ = [
    "DECODING_STATUS",
    "HTTP_STATUS",
    "ApiError",
    "api_error",
    "error_body",
    "error_middleware",
    "error_response",
]

log = logging.getLogger("node.api")

_N = "node"

# Requests -----------------------------------------------------------------------------------------------------
BAD_REQUEST = codes.define(3100, "API_BAD_REQUEST", "malformed request parameter", _N)
ROUTE_NOT_FOUND = codes.define(3101, "API_ROUTE_NOT_FOUND", "no such endpoint", _N)
METHOD_NOT_ALLOWED = codes.define(3102, "API_METHOD_NOT_ALLOWED", "method not allowed on this endpoint", _N)
BODY_TOO_LARGE = codes.define(3103, "API_BODY_TOO_LARGE", "request body too large", _N)
UNSUPPORTED_MEDIA_TYPE = codes.define(3104, "API_UNSUPPORTED_MEDIA_TYPE", "unsupported content type", _N)
INVALID_JSON = codes.define(3105, "API_INVALID_JSON", "request body is not valid JSON of the expected shape", _N)
RATE_LIMITED = codes.define(3106, "API_RATE_LIMITED", "too many requests; retry later", _N)
REQUEST_TIMEOUT = codes.define(3107, "API_REQUEST_TIMEOUT", "the request took too long", _N)
INTERNAL_ERROR = codes.define(3108, "API_INTERNAL_ERROR", "internal error; the incident was logged", _N)
UNAVAILABLE = codes.define(3109, "API_UNAVAILABLE", "the node cannot serve this request now", _N)
# Lookups ------------------------------------------------------------------------------------------------------
TX_NOT_FOUND = codes.define(3110, "API_TX_NOT_FOUND", "unknown transaction", _N)
ACCOUNT_NOT_FOUND = codes.define(3111, "API_ACCOUNT_NOT_FOUND", "unknown account", _N)
ASSET_NOT_FOUND = codes.define(3112, "API_ASSET_NOT_FOUND", "unknown asset", _N)
HOLD_NOT_FOUND = codes.define(3113, "API_HOLD_NOT_FOUND", "unknown hold", _N)
BLOCK_NOT_FOUND = codes.define(3114, "API_BLOCK_NOT_FOUND", "no block at this height", _N)
HEIGHT_PRUNED = codes.define(3115, "API_HEIGHT_PRUNED", "the state of this height was pruned", _N)
HEIGHT_UNKNOWN = codes.define(3116, "API_HEIGHT_UNKNOWN", "no committed state at this height", _N)
NOT_AVAILABLE = codes.define(3117, "API_NOT_AVAILABLE", "this node does not provide this data", _N)
# Submission ---------------------------------------------------------------------------------------------------
TX_NOT_ADMITTED = codes.define(3120, "API_TX_NOT_ADMITTED", "the transaction was not admitted", _N)
BATCH_TOO_LARGE = codes.define(3121, "API_BATCH_TOO_LARGE", "too many transactions in one batch", _N)
# Event stream -------------------------------------------------------------------------------------------------
SLOW_CONSUMER = codes.define(3130, "API_SLOW_CONSUMER", "event consumer too slow; resume from the given height", _N)
TOO_MANY_STREAMS = codes.define(3131, "API_TOO_MANY_STREAMS", "too many open event streams", _N)
STREAM_SHUTDOWN = codes.define(3132, "API_STREAM_SHUTDOWN", "the node is shutting down; resume later", _N)
# Authenticated reads (docs/api.md section 1) -----------------------------------------------------------------
AUTH_REQUIRED = codes.define(3200, "AUTH_REQUIRED", "this read needs a signed request", _N)
AUTH_MALFORMED = codes.define(3201, "AUTH_MALFORMED", "malformed request-signing headers", _N)
AUTH_BAD_SIGNATURE = codes.define(3202, "AUTH_BAD_SIGNATURE", "the request signature does not verify", _N)
AUTH_STALE = codes.define(3203, "AUTH_STALE", "the request timestamp is outside the accepted window", _N)
AUTH_REPLAYED = codes.define(3204, "AUTH_REPLAYED", "this signed request was already used", _N)
AUTH_UNKNOWN_KEY = codes.define(3205, "AUTH_UNKNOWN_KEY", "unknown account or key not of the account", _N)
NOT_VISIBLE = codes.define(3206, "NOT_VISIBLE", "the requesting account may not see this data", _N)
AUTH_BUSY = codes.define(3207, "AUTH_BUSY", "too many signed requests in the window; retry later", _N)
AUTH_WRONG_NODE = codes.define(3208, "AUTH_WRONG_NODE", "this signed request is addressed to another node", _N)
# Mutual TLS (docs/operations.md, "TLS on the API"; node/api/tls.py) -------------------------------------------
TLS_CLIENT_UNKNOWN = codes.define(3209, "TLS_CLIENT_UNKNOWN", "the client certificate is not mapped to a member", _N)
AUTH_MEMBER_MISMATCH = codes.define(3210, "AUTH_MEMBER_MISMATCH",
                                    "the signing account is not of the client certificate's member", _N)

HTTP_STATUS: dict[int, int] = {
    BAD_REQUEST: 400,
    ROUTE_NOT_FOUND: 404,
    METHOD_NOT_ALLOWED: 405,
    BODY_TOO_LARGE: 413,
    UNSUPPORTED_MEDIA_TYPE: 415,
    INVALID_JSON: 400,
    RATE_LIMITED: 429,
    REQUEST_TIMEOUT: 504,
    INTERNAL_ERROR: 503,
    UNAVAILABLE: 503,
    TX_NOT_FOUND: 404,
    ACCOUNT_NOT_FOUND: 404,
    ASSET_NOT_FOUND: 404,
    HOLD_NOT_FOUND: 404,
    BLOCK_NOT_FOUND: 404,
    HEIGHT_PRUNED: 410,
    HEIGHT_UNKNOWN: 404,
    NOT_AVAILABLE: 404,
    TX_NOT_ADMITTED: 422,
    BATCH_TOO_LARGE: 413,
    SLOW_CONSUMER: 409,
    TOO_MANY_STREAMS: 503,
    STREAM_SHUTDOWN: 503,
    AUTH_REQUIRED: 401,
    AUTH_MALFORMED: 401,
    AUTH_BAD_SIGNATURE: 401,
    AUTH_STALE: 401,
    AUTH_REPLAYED: 401,
    AUTH_UNKNOWN_KEY: 401,
    NOT_VISIBLE: 403,
    AUTH_BUSY: 503,
    AUTH_WRONG_NODE: 401,
    TLS_CLIENT_UNKNOWN: 403,
    AUTH_MEMBER_MISMATCH: 403,
}

API_CODES: tuple[int, ...] = tuple(sorted(HTTP_STATUS))


# A request that is well formed (it matches the OpenAPI document) but whose transaction does not decode: the
# decoding codes 1-99. JSON Schema cannot say "these bytes are a canonical signed transaction", so the document
# keeps 400 for requests it does not describe and 422 for contents it cannot check (docs/api.md section 2).
DECODING_STATUS = 422


def status_for(code: int) -> int:
    """The HTTP status of an error code: the API's own table; the decoding codes 1-99 are 422 (DECODING_STATUS);
    other codes of the ledger and contracts tables are client errors (400)."""
    if code < 100:
        return DECODING_STATUS
    return HTTP_STATUS.get(code, 400)


class ApiError(Exception):
    """An error a client caused (or a condition it must handle): a reason code, a message, JSON details."""

    def __init__(
        self,
        code: int,
        message: str = "",
        details: dict[str, Any] | None = None,
        *,
        status: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        assert codes.describe(code) is not None, f"unregistered API error code {code}"
        super().__init__(code, message)
        self.code = code
        self.message = message or codes.message_for(code)
        self.details: dict[str, Any] = details or {}
        self.status = status_for(code) if status is None else status
        self.headers = headers
        assert 400 <= self.status <= 599


# The store's errors a client can cause by the height it asks for, answered with the API's own code and message.
_LEDGER_CODES: dict[int, int] = {
    codes.UNKNOWN_HEIGHT: HEIGHT_UNKNOWN,
    codes.HEIGHT_PRUNED: HEIGHT_PRUNED,
}
# Node errors (a custody statement that cannot be built) by their code; any other: NOT_AVAILABLE.
_NODE_CODES: dict[str, int] = {
    "unknown_height": HEIGHT_UNKNOWN,
    "statement_bad_height": HEIGHT_UNKNOWN,
    "account_not_found": ACCOUNT_NOT_FOUND,
    "height_pruned": HEIGHT_PRUNED,
}


def api_error(exc: LedgerError | ConsensusError | NodeError, details: dict[str, Any] | None = None) -> ApiError:
    """The API form of another layer's error, with the handler's `details`:

    - ledger: a decoding error (1-99) keeps its code, with the offending field's `path`; the store's unknown or
      pruned height becomes API_HEIGHT_UNKNOWN / API_HEIGHT_PRUNED; any other store error (a bad page or cursor)
      API_BAD_REQUEST; any other ledger or contracts error keeps its code (400);
    - node: by its code (a custody statement: unknown height, pruned, account not found), else API_NOT_AVAILABLE,
      with the node's code as `reason`;
    - consensus: API_BAD_REQUEST with the consensus code as `reason`."""
    details = dict(details or {})
    if isinstance(exc, LedgerError):
        if exc.code < 100:
            return ApiError(exc.code, exc.message, {**details, "path": exc.path} if exc.path else details)
        api_code = _LEDGER_CODES.get(exc.code)
        if api_code is not None:
            return ApiError(api_code, details=details)
        if 700 <= exc.code < 720:
            return ApiError(BAD_REQUEST, exc.message, details)
        return ApiError(exc.code, exc.message, details)
    if isinstance(exc, NodeError):
        return ApiError(_NODE_CODES.get(exc.code, NOT_AVAILABLE), exc.message, {**details, "reason": exc.code})
    return ApiError(BAD_REQUEST, exc.message, {**details, "reason": exc.code})


def error_body(code: int, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    entry = codes.describe(code)
    return {
        "code": code,
        "name": entry.name if entry is not None else "UNKNOWN",
        "message": message,
        "details": details or {},
    }


def error_response(err: ApiError, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(error_body(err.code, err.message, err.details), status=err.status, headers=headers)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_HTTP_TO_CODE: dict[int, int] = {
    400: BAD_REQUEST,
    404: ROUTE_NOT_FOUND,
    405: METHOD_NOT_ALLOWED,
    413: BODY_TOO_LARGE,
    415: UNSUPPORTED_MEDIA_TYPE,
}


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Outermost middleware: every failure becomes the JSON error form; nothing unexpected leaks."""
    try:
        return await handler(request)
    except ApiError as err:
        return error_response(err, err.headers)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _HTTP_TO_CODE.get(exc.status, BAD_REQUEST if exc.status < 500 else INTERNAL_ERROR)
        details: dict[str, Any] = {}
        headers: dict[str, str] | None = None
        if code == METHOD_NOT_ALLOWED and isinstance(exc, web.HTTPMethodNotAllowed):
            details["allowed"] = sorted(exc.allowed_methods)
            headers = {"Allow": ", ".join(details["allowed"])}  # RFC 9110 15.5.6: a 405 lists what is allowed
        return error_response(ApiError(code, details=details), headers)
    except Exception:
        incident = secrets.token_hex(8)
        log.exception("internal error on %s %s (incident %s)", request.method, request.path, incident)
        return error_response(ApiError(INTERNAL_ERROR, details={"incident": incident}))
