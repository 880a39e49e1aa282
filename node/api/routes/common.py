"""Parameters and helpers shared by the route modules."""

from __future__ import annotations

from typing import Any

from ledger.schema import ACCOUNT_PATTERN, ASSET_PATTERN, HOLD_PATTERN, MAX_ACCOUNT_ID_BYTES
from node.api import errors as e
from node.api.errors import ApiError
from node.api.routing import Param

U64_MAX = (1 << 64) - 1
PRIVATE_ERRORS = (e.AUTH_REQUIRED, e.AUTH_MALFORMED, e.AUTH_BAD_SIGNATURE, e.AUTH_STALE, e.AUTH_REPLAYED,
                  e.AUTH_UNKNOWN_KEY, e.NOT_VISIBLE, e.AUTH_BUSY, e.AUTH_WRONG_NODE)
MAX_HEIGHT = (1 << 63) - 1


def require_kept(store: Any, height: int) -> None:
    """410 API_HEIGHT_PRUNED with details {reason: "pruned", height, kept_from} when this node no longer keeps
    `height` (pruned, or below the snapshot it joined from by state sync)."""
    from node.chain.pruning import pruned_details

    details = pruned_details(store, height)
    if details is not None:
        raise ApiError(e.HEIGHT_PRUNED, details=details)


def account_param(name: str = "account_id", where: str = "path", required: bool = True) -> Param:
    return Param(name, where, {"type": "string", "pattern": f"^(?:{ACCOUNT_PATTERN})$", "maxLength": MAX_ACCOUNT_ID_BYTES},
                 "an account id, e.g. `client-d@bank-a`", required)


def asset_param(name: str = "asset_id", where: str = "path", required: bool = True) -> Param:
    return Param(name, where, {"type": "string", "pattern": f"^(?:{ASSET_PATTERN})$", "maxLength": 32},
                 "an asset id, e.g. `BOND-A`", required)


HOLD_PARAM = Param("hold_id", "path", {"type": "string", "pattern": f"^(?:{HOLD_PATTERN})$", "maxLength": 64},
                   "a hold id", True)
TX_ID_PARAM = Param("tx_id", "path", {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                    "a transaction id (SHA-256 of the body), 64 lowercase hex digits", True)
HEIGHT_QUERY = Param("height", "query", {"type": "integer", "minimum": 0, "maximum": MAX_HEIGHT},
                     "read the state after this block (default: the head)")


def limit_param(default: int, maximum: int) -> Param:
    return Param("limit", "query", {"type": "integer", "minimum": 1, "maximum": maximum, "default": default},
                 f"page size (default {default}, at most {maximum})")


def cursor_param(description: str) -> Param:
    return Param("after", "query", {"type": "string", "maxLength": 200, "pattern": "^[A-Za-z0-9@._:-]*$"},
                 description)


def need_dict(obj: Any, keys: set[str], optional: set[str] = frozenset()) -> dict[str, Any]:  # type: ignore[assignment]
    if not isinstance(obj, dict):
        raise ApiError(e.INVALID_JSON, "expected a JSON object")
    extra = set(obj) - keys - optional
    missing = keys - set(obj)
    if extra or missing:
        raise ApiError(e.INVALID_JSON, "unexpected or missing fields",
                       {"unexpected": sorted(extra), "missing": sorted(missing)})
    return obj


def hex_bytes(value: Any, what: str, max_len: int) -> bytes:
    if not isinstance(value, str) or len(value) % 2 or len(value) > 2 * max_len:
        raise ApiError(e.INVALID_JSON, f"{what} must be lowercase hex of at most {max_len} bytes")
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raise ApiError(e.INVALID_JSON, f"{what} must be lowercase hex") from None
    if raw.hex() != value:
        raise ApiError(e.INVALID_JSON, f"{what} must be lowercase hex")
    return raw
