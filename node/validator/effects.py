"""What the validator driver asks its host to do (node/validator/driver.py), and the clock it reads.

The driver performs no I/O: every input returns after queueing effects, which the host takes (`driver.take()`) and
performs in order -- the node's asyncio host (node/validator/node.py) with its transport, the deterministic
simulator (node/tools/simulation/) with its simulated network.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

from consensus.messages import Block, CommitCertificate
from node.chain.application import PendingExecution
from node.net.handshake import Identity, PeerSet
from node.validator.storage_failure import StorageFailure

__all__ = ["ApplyBlocks", "Broadcast", "Clock", "Effect", "Halted", "PeersChanged", "RunExecution", "SendTo",
           "StorageFailed", "SubmitGossip", "SystemClock"]


@dataclass(frozen=True, slots=True)
class SendTo:
    """Send one transport message (channel byte included) to a peer. `sync_request`: a block sync request; if it
    cannot be queued, tell the driver (`sync_undeliverable`) so it asks another peer at once."""

    peer: str
    data: bytes
    sync_request: bool = False


@dataclass(frozen=True, slots=True)
class Broadcast:
    """Send one transport message to every connected peer of `audience` (node/net/handshake.py: "peers", every
    peer but full nodes; "full_nodes"; "all")."""

    data: bytes
    audience: str = "peers"


@dataclass(frozen=True, slots=True)
class PeersChanged:
    """Admit exactly these peers from now on; with `identity`, reconnect under that identity key."""

    peers: PeerSet
    identity: Identity | None = None


@dataclass(frozen=True, slots=True)
class ApplyBlocks:
    """A block sync batch to apply, in order: call `driver.apply_synced_group(peer, request_id, run)` for
    consecutive runs of its blocks (stop at the first error it returns; each run's blocks are written in one synced
    batch per epoch), then `driver.sync_batch_done(peer, request_id, applied, error)`. The host may execute the blocks
    of a run before it hands it over, and the next block while it commits one (each with its certificate:
    Application.begin_execution)."""

    peer: str
    request_id: int
    blocks: tuple[tuple[Block, CommitCertificate], ...]


@dataclass(frozen=True, slots=True)
class RunExecution:
    """Run `pending.run()` off the driver's thread (the host's one execution thread), then call
    `driver.execution_done(pending, outcome)` -- or `driver.execution_failed(pending, error)` if it raised. The
    driver asks for one at a time."""

    pending: PendingExecution


@dataclass(frozen=True, slots=True)
class SubmitGossip:
    """Transactions a peer gossiped: admit them to the mempool (Application.admit, origin = the peer)."""

    peer: str
    txs: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class Halted:
    """This node's state contradicts the certified chain (or its stores cannot be used): stop the node."""

    code: str
    message: str


@dataclass(frozen=True, slots=True)
class StorageFailed:
    """A read or write of this node's disk failed: the driver has stopped (it signs and writes nothing more). Stop
    talking to peers and accepting transactions; keep serving reads of the committed state, which the failure left
    intact, and report the failure until the operator restarts the node (docs/operations.md, "A failing disk")."""

    failure: StorageFailure


Effect = SendTo | Broadcast | PeersChanged | ApplyBlocks | RunExecution | SubmitGossip | Halted | StorageFailed


class Clock(Protocol):
    def monotonic_ms(self) -> int: ...  # for timers and freshness: never goes back

    def wall_ms(self) -> int: ...  # milliseconds since the Unix epoch: block times and the voter's drift check


class SystemClock:
    """The machine's clocks."""

    def monotonic_ms(self) -> int:
        return time.monotonic_ns() // 1_000_000

    def wall_ms(self) -> int:
        return time.time_ns() // 1_000_000
