"""What a replica asks its driver to do. Every replica input returns a list of these, in order.

Ordering contract: the driver performs the actions of one list in list order. In particular a `PersistSafety`
must be durable (written and synced) before any later action of the same list is performed; the replica always
places it before the vote or timeout it protects. Answers to `RequestPayload` and `Execute` are given later through
`Replica.on_payload` and `Replica.on_executed`.
"""

from __future__ import annotations

from dataclasses import dataclass

from consensus.certificates import Evidence
from consensus.messages import Block, CommitCertificate, Message, SafetyState, SyncRequest


@dataclass(frozen=True, slots=True)
class Send:
    """Send `message` to validator `to` (a validator id)."""

    to: bytes
    message: Message


@dataclass(frozen=True, slots=True)
class Broadcast:
    """Send `message` to every other validator of the current set."""

    message: Message


@dataclass(frozen=True, slots=True)
class PersistSafety:
    """Durably store `state` (replacing the previous one) and append `blocks` (uncommitted blocks this replica
    has accepted since the last PersistSafety) to the pending-block store, before performing the next action."""

    state: SafetyState
    blocks: tuple[Block, ...]


@dataclass(frozen=True, slots=True)
class RequestPayload:
    """This replica leads `round`: answer with `Replica.on_payload(round, payload)` (opaque bytes, may be empty)."""

    round: int
    height: int
    parent_id: bytes


@dataclass(frozen=True, slots=True)
class Execute:
    """Execute `block` on top of the state with root `parent_state_root` (speculatively: the block may lose) and
    answer with `Replica.on_executed(block.id, state_root)`. Execute actions come parent first."""

    block: Block
    parent_state_root: bytes


@dataclass(frozen=True, slots=True)
class Commit:
    """`block` is final with state root `certificate.state_root`. Commits come in height order, each once."""

    block: Block
    certificate: CommitCertificate


@dataclass(frozen=True, slots=True)
class SetTimer:
    """(Re)arm the single round timer: call `Replica.on_timeout(round)` after `delay_ms` of (virtual) time.
    A new SetTimer replaces the previous one."""

    round: int
    delay_ms: int


@dataclass(frozen=True, slots=True)
class ReportEvidence:
    evidence: Evidence


@dataclass(frozen=True, slots=True)
class SyncBlocks:
    """Send `request` to validator `to`; its SyncResponse comes back through `on_message`."""

    to: bytes
    request: SyncRequest


Action = Send | Broadcast | PersistSafety | RequestPayload | Execute | Commit | SetTimer | ReportEvidence | SyncBlocks
