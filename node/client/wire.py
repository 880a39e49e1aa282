"""The client's HTTP exchanges without I/O: building requests (paths, queries, bodies, read signatures) and turning
responses into values or typed errors. The sync and async clients only move these bytes.

Read signing follows docs/api.md section 1.2 exactly (a signed read names the node it is addressed to) (implemented here independently of the server; the tests check
both implementations against each other).
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import parse_qsl, quote, unquote

from node.client.errors import ApiError, ClientError
from node.client.keys import AccountKey

__all__ = [
    "READ_DOMAIN",
    "NodeName",
    "Request",
    "canonical_query",
    "canonical_request",
    "decode_response",
    "signed_headers",
]

READ_DOMAIN: Final = "CONSORTIUM-LEDGER/READ/v2"
UNRESERVED: Final = "-._~"
MAX_RESPONSE_BYTES: Final = 256 << 20
JSON_TYPE: Final = "application/json"
MSGPACK_TYPE: Final = "application/msgpack"


def canonical_query(raw_query: str) -> str:
    """docs/api.md 1.2 line 5: decode the pairs, sort by (name, value) bytes, re-encode (unreserved kept, %XX)."""
    pairs = parse_qsl(raw_query, keep_blank_values=True)
    pairs.sort(key=lambda kv: (kv[0].encode("utf-8"), kv[1].encode("utf-8")))
    return "&".join(f"{quote(k, safe=UNRESERVED)}={quote(v, safe=UNRESERVED)}" for k, v in pairs)


def canonical_request(chain_id: str, node_id: str, method: str, path: str, raw_query: str, body: bytes,
                      timestamp: str, nonce: str, account: str, public_key_hex: str) -> bytes:
    """The eleven LF-joined lines a signed read signs (no trailing LF); `node_id` is the node addressed, `path`
    percent-decoded."""
    return "\n".join(
        (READ_DOMAIN, chain_id, node_id, method.upper(), unquote(path), canonical_query(raw_query),
         hashlib.sha256(body).hexdigest(), timestamp, nonce, account, public_key_hex)
    ).encode("utf-8")


def signed_headers(key: AccountKey, *, chain_id: str, node_id: str, method: str, path: str, raw_query: str,
                   body: bytes, timestamp: int, nonce: str | None = None) -> dict[str, str]:
    """The six X-Ledger-* headers of a read signed for node `node_id`. A fresh random nonce unless one is given."""
    ts = str(timestamp)
    nonce = secrets.token_hex(16) if nonce is None else nonce
    pub = key.public_key.hex()
    message = canonical_request(chain_id, node_id, method, path, raw_query, body, ts, nonce, key.account, pub)
    return {
        "X-Ledger-Node": node_id,
        "X-Ledger-Account": key.account,
        "X-Ledger-Key": pub,
        "X-Ledger-Timestamp": ts,
        "X-Ledger-Nonce": nonce,
        "X-Ledger-Signature": key.sign(message).hex(),
    }


def path_of(*segments: str | int) -> str:
    """/v1/<segments>, each percent-encoded as a path segment ('@' and ':' stay literal)."""
    return "/v1/" + "/".join(quote(str(s), safe="@:" + UNRESERVED) for s in segments)


def query_of(params: Mapping[str, Any] | Iterable[tuple[str, Any]]) -> str:
    """A raw query string; None values are left out; booleans as true/false."""
    items = params.items() if isinstance(params, Mapping) else params
    out = []
    for k, v in items:
        if v is None:
            continue
        if isinstance(v, bool):
            v = "true" if v else "false"
        out.append(f"{quote(k, safe=UNRESERVED)}={quote(str(v), safe=UNRESERVED)}")
    return "&".join(out)


@dataclass(frozen=True, slots=True)
class NodeName:
    """Who a signed read is addressed to: the node's chain id and node id (`GET /v1/status`)."""

    chain_id: str
    node_id: str


@dataclass(frozen=True, slots=True)
class Request:
    """One HTTP request: `signed` requests get the X-Ledger-* headers when the client has a key."""

    method: str
    path: str
    query: str = ""
    body: bytes = b""
    content_type: str | None = None
    signed: bool = False

    @property
    def target(self) -> str:
        return self.path + ("?" + self.query if self.query else "")

    @staticmethod
    def get(path: str, query: str = "", *, signed: bool = False) -> Request:
        return Request("GET", path, query, signed=signed)

    @staticmethod
    def post_json(path: str, obj: Any, query: str = "", *, signed: bool = False) -> Request:
        body = json.dumps(obj, separators=(",", ":")).encode()
        return Request("POST", path, query, body, JSON_TYPE, signed)

    @staticmethod
    def post_bytes(path: str, data: bytes, query: str = "") -> Request:
        return Request("POST", path, query, data, MSGPACK_TYPE)

    def headers(self, key: AccountKey | None, node: NodeName | None, now: int) -> dict[str, str]:
        """The request's headers; a signed request (with a key) is signed for `node` (its chain and node id)."""
        h = {"Accept": JSON_TYPE}
        if self.content_type is not None:
            h["Content-Type"] = self.content_type
        if self.signed and key is not None:
            assert node is not None, "signing needs the chain id and node id"
            h.update(signed_headers(key, chain_id=node.chain_id, node_id=node.node_id, method=self.method,
                                    path=self.path, raw_query=self.query, body=self.body, timestamp=now))
        return h


def decode_response(status: int, content_type: str, body: bytes) -> Any:
    """The JSON value of a 2xx answer; ApiError for the node's error form; ClientError for anything else."""
    if len(body) > MAX_RESPONSE_BYTES:
        raise ClientError("bad_response", f"response larger than {MAX_RESPONSE_BYTES} bytes")
    value: Any = None
    parsed = False
    if body and "json" in content_type:
        try:
            value = json.loads(body)
            parsed = True
        except (ValueError, UnicodeDecodeError):
            parsed = False
    if 200 <= status < 300:
        if not body:
            return None
        if not parsed:
            raise ClientError("bad_response", f"HTTP {status} with a non-JSON body ({content_type})")
        return value
    if parsed and isinstance(value, dict) and type(value.get("code")) is int:
        details = value.get("details")
        return _raise(ApiError(status, value["code"], str(value.get("message", "")),
                               details if isinstance(details, dict) else {}, str(value.get("name", ""))))
    text = body[:200].decode("utf-8", "replace")
    raise ClientError("bad_response", f"HTTP {status} without an error body: {text}", {"status": status})


def _raise(err: Exception) -> Any:
    raise err
