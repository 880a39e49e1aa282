"""Signed reads (docs/api.md, section 1): the canonical request string, signature checks, the replay cache and the
visibility rules.

`canonical_request` is the reference for clients; `Authenticator.authenticate` runs the checks in the documented
order and returns the requesting account (or None for an unsigned request), raising ApiError with a stable code.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote

from ledger.records import Account, AssetDefinition
from ledger.schema import ACCOUNT_PATTERN, NODE_ID_PATTERN, ROLE_BITS
from ledger.state import StateReader, decode_value
from ledger.state_keys import account_key, asset_key
from ledger.transaction import verify_signature
from node.api import errors as e
from node.api.errors import ApiError

__all__ = [
    "AUTH_HEADERS",
    "READ_DOMAIN",
    "Authenticator",
    "ReplayCache",
    "Visibility",
    "canonical_query",
    "canonical_request",
    "sign_request_headers",
]

READ_DOMAIN = "CONSORTIUM-LEDGER/READ/v2"
H_NODE = "X-Ledger-Node"
H_ACCOUNT = "X-Ledger-Account"
H_KEY = "X-Ledger-Key"
H_TIMESTAMP = "X-Ledger-Timestamp"
H_NONCE = "X-Ledger-Nonce"
H_SIGNATURE = "X-Ledger-Signature"
AUTH_HEADERS = (H_NODE, H_ACCOUNT, H_KEY, H_TIMESTAMP, H_NONCE, H_SIGNATURE)

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
_UNRESERVED = "-._~"
_HEX64 = re.compile(r"[0-9a-f]{64}")
_HEX128 = re.compile(r"[0-9a-f]{128}")
_DIGITS = re.compile(r"0|[1-9][0-9]{0,18}")
_NONCE = re.compile(r"[A-Za-z0-9_-]{8,64}")
_ACCOUNT = re.compile(ACCOUNT_PATTERN)
_NODE_ID = re.compile(NODE_ID_PATTERN)
AUDITOR_BIT = ROLE_BITS["auditor"]


def canonical_query(raw_query: str) -> str:
    """The canonical form of a raw query string (docs/api.md 1.2, line 5)."""
    pairs = parse_qsl(raw_query, keep_blank_values=True)
    pairs.sort(key=lambda kv: (kv[0].encode("utf-8"), kv[1].encode("utf-8")))
    return "&".join(f"{quote(k, safe=_UNRESERVED)}={quote(v, safe=_UNRESERVED)}" for k, v in pairs)


def canonical_request(
    chain_id: str,
    node_id: str,
    method: str,
    path: str,
    raw_query: str,
    body: bytes,
    timestamp: str,
    nonce: str,
    account: str,
    public_key_hex: str,
) -> bytes:
    """The bytes a signed read signs: eleven lines joined by LF, no trailing LF. `node_id` is the node the request
    is addressed to (so no other node accepts it); `path` is percent-decoded."""
    lines = (
        READ_DOMAIN,
        chain_id,
        node_id,
        method.upper(),
        path,
        canonical_query(raw_query),
        hashlib.sha256(body).hexdigest(),
        timestamp,
        nonce,
        account,
        public_key_hex,
    )
    return "\n".join(lines).encode("utf-8")


def sign_request_headers(
    sign: Callable[[bytes], bytes],
    public_key: bytes,
    *,
    chain_id: str,
    node_id: str,
    account: str,
    method: str,
    path: str,
    raw_query: str = "",
    body: bytes = b"",
    timestamp: int,
    nonce: str,
) -> dict[str, str]:
    """The six X-Ledger-* headers for a request to node `node_id` (client side; `sign` is Ed25519 signing returning
    64 bytes)."""
    ts = str(timestamp)
    message = canonical_request(chain_id, node_id, method, path, raw_query, body, ts, nonce, account,
                                public_key.hex())
    return {
        H_NODE: node_id,
        H_ACCOUNT: account,
        H_KEY: public_key.hex(),
        H_TIMESTAMP: ts,
        H_NONCE: nonce,
        H_SIGNATURE: sign(message).hex(),
    }


class ReplayCache:
    """The digests of accepted canonical strings, each kept until its timestamp leaves the window. Bounded: when
    full of unexpired entries, new signed requests are refused (AUTH_BUSY) rather than forgetting live ones."""

    def __init__(self, capacity: int) -> None:
        assert capacity > 0
        self.capacity = capacity
        self._entries: OrderedDict[bytes, float] = OrderedDict()  # digest -> expiry, in insertion order

    def __len__(self) -> int:
        return len(self._entries)

    def _evict(self, now: float) -> None:
        # Expiries are nearly in insertion order (timestamp + window, timestamps within the window of the clock):
        # drop expired entries from the front; `add` sweeps everything when the cache is full.
        entries = self._entries
        while entries:
            expiry = next(iter(entries.values()))
            if expiry > now:
                break
            entries.popitem(last=False)

    def _full_sweep(self, now: float) -> None:
        for digest in [d for d, exp in self._entries.items() if exp <= now]:
            del self._entries[digest]

    def add(self, digest: bytes, expiry: float, now: float) -> int:
        """0 when remembered; AUTH_REPLAYED if already present; AUTH_BUSY if full."""
        self._evict(now)
        old = self._entries.get(digest)
        if old is not None and old > now:
            return e.AUTH_REPLAYED
        if len(self._entries) >= self.capacity:
            self._full_sweep(now)
            if len(self._entries) >= self.capacity:
                return e.AUTH_BUSY
        self._entries[digest] = expiry
        return 0


@dataclass(frozen=True, slots=True)
class SignedBy:
    """The account that signed a request (after every check passed)."""

    account: str
    record: Account

    @property
    def auditor(self) -> bool:
        return bool(self.record.roles & AUDITOR_BIT)


class Authenticator:
    """Checks the X-Ledger-* headers of a request to node `node_id` against state at head (docs/api.md 1.3)."""

    def __init__(
        self,
        chain_id: str,
        node_id: str,
        state: StateReader,
        *,
        window: int = 60,
        replay_capacity: int = 100_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        assert window > 0
        assert _NODE_ID.fullmatch(node_id), node_id
        self.chain_id = chain_id
        self.node_id = node_id
        self.state = state
        self.window = window
        self.clock = clock
        self.replay = ReplayCache(replay_capacity)

    def authenticate(
        self, method: str, path: str, raw_query: str, body: bytes, headers: dict[str, str]
    ) -> SignedBy | None:
        present = [h for h in AUTH_HEADERS if h in headers]
        if not present:
            return None
        if len(present) != len(AUTH_HEADERS):
            missing = [h for h in AUTH_HEADERS if h not in headers]
            raise ApiError(e.AUTH_MALFORMED, f"missing headers: {', '.join(missing)}")
        node_id = headers[H_NODE]
        account = headers[H_ACCOUNT]
        key_hex = headers[H_KEY]
        ts = headers[H_TIMESTAMP]
        nonce = headers[H_NONCE]
        sig_hex = headers[H_SIGNATURE]
        if _NODE_ID.fullmatch(node_id) is None:
            raise ApiError(e.AUTH_MALFORMED, f"{H_NODE} is not a node id")
        if _ACCOUNT.fullmatch(account) is None:
            raise ApiError(e.AUTH_MALFORMED, f"{H_ACCOUNT} is not an account id")
        if _HEX64.fullmatch(key_hex) is None:
            raise ApiError(e.AUTH_MALFORMED, f"{H_KEY} must be 64 lowercase hex digits")
        if _DIGITS.fullmatch(ts) is None:
            raise ApiError(e.AUTH_MALFORMED, f"{H_TIMESTAMP} must be decimal Unix seconds")
        if _NONCE.fullmatch(nonce) is None:
            raise ApiError(e.AUTH_MALFORMED, f"{H_NONCE} must be 8-64 characters of [A-Za-z0-9_-]")
        if _HEX128.fullmatch(sig_hex) is None:
            raise ApiError(e.AUTH_MALFORMED, f"{H_SIGNATURE} must be 128 lowercase hex digits")
        if node_id != self.node_id:
            raise ApiError(e.AUTH_WRONG_NODE, f"this request is signed for {node_id}; this node is {self.node_id}",
                           {"node_id": self.node_id})
        now = self.clock()
        stamp = int(ts)
        if abs(now - stamp) > self.window:
            raise ApiError(e.AUTH_STALE, details={"server_time": int(now), "window": self.window})
        raw = self.state.get_state(account_key(account))
        record: Account | None = None if raw is None else decode_value(account_key(account), raw)
        public_key = bytes.fromhex(key_hex)
        if record is None or public_key not in record.keys:
            raise ApiError(e.AUTH_UNKNOWN_KEY)
        message = canonical_request(self.chain_id, self.node_id, method, path, raw_query, body, ts, nonce, account,
                                    key_hex)
        if not verify_signature(public_key, message, bytes.fromhex(sig_hex)):
            raise ApiError(e.AUTH_BAD_SIGNATURE)
        refused = self.replay.add(hashlib.sha256(message).digest(), stamp + self.window, now)
        if refused:
            raise ApiError(refused)
        return SignedBy(account, record)


class Visibility:
    """Who may see what (docs/api.md 1.4), evaluated against state at head. `open_reads` grants everything."""

    def __init__(self, state: StateReader, open_reads: bool) -> None:
        self.state = state
        self.open_reads = open_reads

    def _account(self, account_id: str) -> Account | None:
        raw = self.state.get_state(account_key(account_id))
        return None if raw is None else decode_value(account_key(account_id), raw)

    def _asset(self, asset_id: str) -> AssetDefinition | None:
        raw = self.state.get_state(asset_key(asset_id))
        return None if raw is None else decode_value(asset_key(asset_id), raw)

    def everything(self, who: SignedBy | None) -> bool:
        return self.open_reads or (who is not None and who.auditor)

    def sees_account(self, who: SignedBy | None, subject: str) -> bool:
        """Self, custodian, auditor (or open reads): the whole of the subject account's private state."""
        if self.everything(who):
            return True
        if who is None:
            return False
        if who.account == subject:
            return True
        acct = self._account(subject)
        return acct is not None and acct.custodian == who.account

    def manages_asset(self, who: SignedBy | None, asset_id: str) -> bool:
        """Issuer or agent of the asset (or auditor / open reads): its holders' positions in it."""
        if self.everything(who):
            return True
        if who is None:
            return False
        asset = self._asset(asset_id)
        return asset is not None and (asset.issuer == who.account or who.account in asset.agents)

    def sees_position(self, who: SignedBy | None, subject: str, asset_id: str) -> bool:
        return self.sees_account(who, subject) or self.manages_asset(who, asset_id)

    def sees_any(self, who: SignedBy | None, subjects: Iterable[str], assets: Iterable[str]) -> bool:
        """For an item that involves several accounts and assets (a hold, a history entry): any of them."""
        return any(self.sees_account(who, s) for s in subjects) or any(self.manages_asset(who, a) for a in assets)

    def require(self, allowed: bool, who: SignedBy | None) -> None:
        if allowed:
            return
        if who is None:
            raise ApiError(e.AUTH_REQUIRED)
        raise ApiError(e.NOT_VISIBLE)
