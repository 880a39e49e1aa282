"""The transport's interface values: its limits and timers (TransportConfig), its error, the outcome of a send, its
counters and the view of one link. node/net/transport.py uses them; docs/limits.md lists the limits.
"""

from __future__ import annotations

import enum
from collections import Counter
from dataclasses import dataclass, field

from node.errors import NodeError
from node.net.framing import DEFAULT_MAX_PAYLOAD_BYTES, HARD_MAX_PAYLOAD_BYTES

__all__ = ["LinkInfo", "SendOutcome", "TransportConfig", "TransportCounters", "TransportError"]


class TransportError(NodeError):
    """A refused call on the transport (bad config, fault injection on a production config). `code` is stable."""


class SendOutcome(enum.StrEnum):
    QUEUED = "queued"
    NOT_CONNECTED = "not_connected"
    UNKNOWN_PEER = "unknown_peer"
    TOO_LARGE = "too_large"
    BLOCKED = "blocked"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class TransportConfig:
    """Limits and timers of the transport. Times are seconds of the event loop clock."""

    listen_host: str = "127.0.0.1"
    listen_port: int = 0
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES
    send_queue_frames: int = 1024
    send_queue_bytes: int = 64 * 1024 * 1024
    receive_queue_frames: int = 4096
    max_inbound_handshakes: int = 64
    handshake_timeout_s: float = 5.0
    ping_interval_s: float = 5.0
    idle_timeout_s: float = 20.0
    reconnect_base_s: float = 0.05
    reconnect_max_s: float = 5.0
    close_flush_s: float = 1.0
    fault_injection: bool = False
    jitter_seed: int | None = None

    def __post_init__(self) -> None:
        if not 0 < self.max_payload_bytes <= HARD_MAX_PAYLOAD_BYTES:
            raise TransportError("bad_config", f"max_payload_bytes must be in 1..{HARD_MAX_PAYLOAD_BYTES}")
        if self.send_queue_frames < 1 or self.receive_queue_frames < 1 or self.max_inbound_handshakes < 1:
            raise TransportError("bad_config", "queue and connection limits must be at least 1")
        if self.send_queue_bytes < self.max_payload_bytes:
            raise TransportError("bad_config", "send_queue_bytes must hold at least one frame of max_payload_bytes")
        if not 0 <= self.listen_port < 65536:
            raise TransportError("bad_config", "listen_port must be 0..65535")
        if min(self.handshake_timeout_s, self.ping_interval_s, self.reconnect_base_s, self.close_flush_s) <= 0:
            raise TransportError("bad_config", "timeouts and intervals must be positive")
        if self.idle_timeout_s <= self.ping_interval_s or self.reconnect_max_s < self.reconnect_base_s:
            raise TransportError("bad_config", "idle_timeout_s > ping_interval_s and reconnect_max_s >= base needed")


@dataclass(slots=True)
class TransportCounters:
    """Running totals for metrics. `frames_*`/`bytes_*` count every frame on the wire (after the handshake),
    `messages_*` only data frames handed over. Reason-keyed counters use the stable codes of the errors."""

    frames_in: int = 0
    frames_out: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    messages_in: int = 0
    messages_out: int = 0
    connects: int = 0
    dial_failures: int = 0
    drops: Counter[str] = field(default_factory=Counter)
    handshake_failures: Counter[str] = field(default_factory=Counter)
    disconnects: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True, slots=True)
class LinkInfo:
    """One established connection, as status and tests see it."""

    peer_id: str
    dialer: str
    outbound: bool
    remote_address: str
