"""What the API needs from a node: the `NodeFacade` protocol and the plain values it exchanges.

The API never touches consensus, the mempool or sockets directly; it reads the store, asks the facade to admit
transactions, and listens to commits. node/validator/node.py implements this for a real validator; tests use an
in-process single-validator chain (tests/node/api/api_world.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from ledger.events import Event, Receipt
from ledger.rules import RuleEngine
from ledger.store import LedgerStore
from ledger.transaction import SignedTransaction

__all__ = [
    "AdmissionView",
    "BlockView",
    "CommitNotice",
    "HeadInfo",
    "NodeFacade",
    "PeerView",
    "ValidatorView",
]


@dataclass(frozen=True, slots=True)
class HeadInfo:
    """The last committed block."""

    height: int
    block_hash: bytes
    state_root: bytes
    time: int  # seconds, from the block header (ChainMeta.time)


@dataclass(frozen=True, slots=True)
class AdmissionView:
    """The mempool's answer to a submitted transaction. code 0 = admitted (or already known: `duplicate`)."""

    tx_id: bytes
    code: int
    message: str = ""
    duplicate: bool = False

    @property
    def admitted(self) -> bool:
        return self.code == 0


@dataclass(frozen=True, slots=True)
class CommitNotice:
    """What a commit tells listeners: the block and every receipt of it, in block order (rejected ones included),
    and the block's own events (holds released on expiry; they come before those of its transactions)."""

    height: int
    block_hash: bytes
    time: int
    state_root: bytes
    receipts: tuple[Receipt, ...]
    block_events: tuple[Event, ...] = ()


@dataclass(frozen=True, slots=True)
class BlockView:
    """A committed block as the API shows it. `header` is JSON-ready (the consensus header fields);
    `certificate` is the encoded commit certificate (consensus.messages.CommitCertificate.encode) when known."""

    height: int
    block_hash: bytes
    time: int
    state_root: bytes
    tx_ids: tuple[bytes, ...]
    header: Mapping[str, Any]
    certificate: bytes | None


@dataclass(frozen=True, slots=True)
class ValidatorView:
    index: int
    name: str
    public_key: bytes  # BLS public key (48 bytes)
    power: int


@dataclass(frozen=True, slots=True)
class PeerView:
    name: str
    address: str
    connected: bool
    height: int | None


@runtime_checkable
class NodeFacade(Protocol):
    """The node as the API sees it. Reads are synchronous and cheap (LevelDB gets); `submit` may wait for the
    mempool. Listeners are called on the event loop thread after each block is committed to the store, in height
    order, with no gaps; a listener must not block."""

    @property
    def chain_id(self) -> str: ...

    @property
    def node_id(self) -> str: ...  # this node's id: a signed read names the node it is addressed to (docs/api.md 1.2)

    @property
    def store(self) -> LedgerStore: ...

    @property
    def engine(self) -> RuleEngine: ...

    def head(self) -> HeadInfo: ...

    async def submit(self, tx: SignedTransaction) -> AdmissionView: ...

    def tx_pending(self, tx_id: bytes) -> bool: ...

    def block(self, height: int) -> BlockView | None: ...

    def validators(self) -> tuple[int, tuple[ValidatorView, ...]]: ...  # (epoch, validators)

    def peers(self) -> tuple[PeerView, ...]: ...

    def status(self) -> Mapping[str, Any]: ...  # node-specific JSON-ready fields (role, syncing, mempool size...)

    def add_commit_listener(self, listener: Callable[[CommitNotice], None]) -> Callable[[], None]: ...

    def metrics_text(self) -> str: ...  # Prometheus text exposition format

    def statement(self, account_id: str, height: int) -> Mapping[str, Any]: ...  # a custody statement (JSON)
