"""Fault injection on the transport, for `ledger testnet partition|heal|slow`: blocked peers and delayed frames.

It exists only when the config enables it and the chain id starts with `testnet-`; a production chain refuses it
(docs/transport.md, "Fault injection"). The transport asks `blocks(peer)` before it sends or delivers a data frame
and `delay_for(peer)` for how long to hold one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from node.net.transport_config import TransportConfig, TransportCounters, TransportError

__all__ = ["TESTNET_CHAIN_PREFIX", "FaultInjector"]

# Fault injection is refused on any chain whose id does not start with this, whatever the config says: a production
# chain cannot be partitioned or slowed through its own nodes.
TESTNET_CHAIN_PREFIX = "testnet-"

Log = Callable[..., None]


class FaultInjector:
    """The blocked peers and frame delays of one transport."""

    __slots__ = ("_config", "_counters", "_delay_all_ms", "_delay_ms", "_log", "blocked")

    def __init__(self, config: TransportConfig, chain_id: str, counters: TransportCounters, log: Log) -> None:
        if config.fault_injection and not chain_id.startswith(TESTNET_CHAIN_PREFIX):
            raise TransportError(
                "fault_injection_not_testnet",
                f"fault injection needs a testnet chain id ({TESTNET_CHAIN_PREFIX}...), not {chain_id!r}",
            )
        self._config = config
        self._counters = counters
        self._log = log
        self.blocked: set[str] = set()
        self._delay_ms: dict[str, int] = {}
        self._delay_all_ms = 0

    def block(self, peer_ids: Iterable[str]) -> None:
        self._require_fault_injection()
        ids = set(peer_ids)
        self.blocked |= ids
        self._counters.faults["block"] += 1
        self._log(logging.WARNING, "fault_block", peers=",".join(sorted(ids)))

    def unblock(self, peer_ids: Iterable[str] | None = None) -> None:
        self._require_fault_injection()
        if peer_ids is None:
            self.blocked.clear()
        else:
            self.blocked -= set(peer_ids)
        self._counters.faults["unblock"] += 1
        self._log(logging.WARNING, "fault_unblock", blocked=",".join(sorted(self.blocked)))

    def set_delay(self, peer_id: str | None, ms: int) -> None:
        self._require_fault_injection()
        if not isinstance(ms, int) or ms < 0:
            raise TransportError("bad_delay", "delay must be a non-negative integer of milliseconds")
        if peer_id is None:
            self._delay_all_ms = ms
        elif ms == 0:
            self._delay_ms.pop(peer_id, None)
        else:
            self._delay_ms[peer_id] = ms
        self._counters.faults["set_delay"] += 1
        self._log(logging.WARNING, "fault_delay", peer=peer_id or "*", ms=ms)

    def state(self) -> dict[str, object]:
        return {"blocked": sorted(self.blocked), "delay_ms": dict(self._delay_ms), "delay_all_ms": self._delay_all_ms}

    def forget(self, peer_id: str) -> None:
        """A peer left the peer set: its block and delay go with it."""
        self.blocked.discard(peer_id)
        self._delay_ms.pop(peer_id, None)

    def delay_for(self, peer_id: str) -> int:
        if not self._config.fault_injection:
            return 0
        return self._delay_ms.get(peer_id, self._delay_all_ms)

    def _require_fault_injection(self) -> None:
        if not self._config.fault_injection:
            raise TransportError("fault_injection_disabled", "fault injection exists only on testnet configs")
