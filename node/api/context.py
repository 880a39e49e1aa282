"""What every handler gets: the API's shared context (facade, config, authenticator, visibility, event hub) and
the per-request `Call` (parsed parameters, body, the signing account)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from ledger.records import ChainMeta
from ledger.state import decode_value
from ledger.state_keys import META_KEY
from node.api import errors as e
from node.api.auth import Authenticator, SignedBy, Visibility
from node.api.errors import ApiError, api_error
from node.api.facade import NodeFacade
from node.api.limits import ApiLimits
from node.api.stream import EventHub
from node.api.tls import ClientMembers

__all__ = ["DOCS_KEY", "OPENAPI_KEY", "ApiConfig", "ApiContext", "Call"]

OPENAPI_KEY: web.AppKey[dict[str, Any]] = web.AppKey("ledger_openapi", dict)
DOCS_KEY: web.AppKey[str] = web.AppKey("ledger_docs_html", str)


@dataclass(frozen=True, slots=True)
class ApiConfig:
    open_reads: bool = False  # testnet / development: every read without a signature
    auth_window: int = 60  # seconds a signed request's timestamp may differ from the node's clock
    replay_capacity: int = 100_000
    cors_origins: tuple[str, ...] = ()  # allowed browser origins; ("*",) = any
    limits: ApiLimits = field(default_factory=ApiLimits)
    clock: Callable[[], float] = time.time
    # Mutual TLS: client certificate -> member (node/api/tls.py); None: no client-certificate mapping.
    client_members: ClientMembers | None = None


class ApiContext:
    """Shared by every request of one app."""

    def __init__(self, facade: NodeFacade, config: ApiConfig) -> None:
        self.facade = facade
        self.config = config
        self.limits = config.limits
        store = facade.store
        self.auth = Authenticator(
            facade.chain_id, facade.node_id, store, window=config.auth_window,
            replay_capacity=config.replay_capacity, clock=config.clock,
        )
        self.visibility = Visibility(store, config.open_reads)
        self.hub = EventHub(facade, self.visibility, self.limits)

    @property
    def store(self) -> Any:
        return self.facade.store

    def record(self, key: bytes) -> Any:
        """The latest committed record under `key`, decoded (None when absent)."""
        raw = self.facade.store.get_state(key)
        return None if raw is None else decode_value(key, raw)

    def record_at(self, key: bytes, height: int | None) -> tuple[Any, int]:
        """(record, height) at `height` (None: the head, read from the flat keyspace)."""
        head = self.facade.head().height
        if height is None or height == head:
            return self.record(key), head
        if height > head:
            raise ApiError(e.HEIGHT_UNKNOWN, details={"height": height, "head": head})
        from ledger.store import PrunedHeightError, UnknownHeightError

        try:
            raw = self.facade.store.get_state_at(key, height)
        except PrunedHeightError as exc:
            from node.chain.pruning import pruned_details

            raise api_error(exc, pruned_details(self.facade.store, height) or {"height": height}) from None
        except UnknownHeightError as exc:
            raise api_error(exc, {"height": height, "head": head}) from None
        return (None if raw is None else decode_value(key, raw)), height

    def chain_meta(self) -> ChainMeta:
        meta = self.record(META_KEY)
        assert meta is not None, "store has no chain meta"
        return meta


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


@dataclass(slots=True)
class Call:
    """One request as a handler sees it."""

    ctx: ApiContext
    request: web.Request
    params: dict[str, Any]
    body: bytes
    who: SignedBy | None

    def json(self) -> Any:
        if not self.body:
            raise ApiError(e.INVALID_JSON, "empty body")
        try:
            return json.loads(self.body, parse_constant=_no_constant)
        except (ValueError, RecursionError):
            raise ApiError(e.INVALID_JSON) from None

    @property
    def content_type(self) -> str:
        return self.request.content_type
