"""The validator driver's STATUS exchange: this node's head told to its peers, and what the heights they report decide.

A node broadcasts its STATUS (genesis, committed head) to every peer each STATUS_INTERVAL_MS, sends it to a peer at
once when a link comes up, and, in consensus, after every commit to the nodes that follow by block sync (full nodes,
removed validators, validators before their epoch), so they fetch the new block at once. What the peers report (the
driver's PeerReports) decides when a starting node starts (every peer reported, or STARTUP_WAIT_MS passed: it catches
up first when more than 2 blocks behind), when a following node fetches (a report above its head), and when a node
leaves consensus for block sync: f+1 voting power reports heights more than SYNC_LAG above its head, or above it at
all while the head has not moved for STUCK_BEHIND_MS (a node a block or two behind an epoch change its replica cannot
learn of, while the others wait for it, would otherwise wait forever). One peer's word is a reason to act only for a
following node: it signs nothing, may reach a single member's validators, and verifies every block it fetches.

    status_exchange.start()              a networked node starts: STATUS now, the startup decision at STARTUP_WAIT_MS
    status_exchange.on_status(peer, m)   a peer's STATUS: recorded (refused for another genesis), then the startup
                                         decision, a follow session, or falling behind
    status_exchange.status_timer()       the driver's "status" deadline: broadcast(), and again in STATUS_INTERVAL_MS
    status_exchange.startup_timer()      the driver's "startup" deadline: the startup decision, whoever reported
    status_exchange.send_to(peer)        a link to `peer` came up: this node's STATUS to it
    status_exchange.announce_head()      a commit through consensus: STATUS to full nodes and followers (if any)
    status_exchange.best_height()        the highest height any peer claims (informational)
    status_exchange.target_height()      the height f+1 voting power reports (a following node: the best height)
    status_exchange.maybe_fall_behind()  in consensus, far or stuck behind that height: leave it for block sync

The exchange reaches the driver only through what it is given at construction (StatusHooks: queue an effect, read
the mode and whether a replica or a block sync session runs, start and stop consensus, begin a catch-up or a follow
session, run a guarded step, set its "status" and "startup" deadlines; and what it reads: the chain's head and
validator set, the driver's Membership, PeerReports and counters). It keeps one state of its own, since when the
head has stood below the f+1 height; the heights are the driver's PeerReports (one per admitted peer). What it sends
is bounded: one broadcast per STATUS_INTERVAL_MS, one STATUS per link that comes up, and after a commit one
broadcast to full nodes and one STATUS per follower.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Protocol

from node.chain.epochs import Epochs
from node.chain.execution import ChainHead
from node.net.handshake import AUDIENCE_ALL, AUDIENCE_FULL
from node.net.messages import Status, encode_node_message
from node.validator.catch_up import SYNC_LAG
from node.validator.effects import Broadcast, Clock, Effect, SendTo
from node.validator.membership import Membership, PeerReports

__all__ = ["STARTUP_WAIT_MS", "STATUS_INTERVAL_MS", "STUCK_BEHIND_MS", "LocalChain", "StatusExchange", "StatusHooks"]

log = logging.getLogger("node.validator.driver")  # the exchange logs as the driver it belongs to

STATUS_INTERVAL_MS: Final = 1_000
# At start, wait this long for every peer's STATUS before deciding whether to catch up first.
STARTUP_WAIT_MS: Final = 3_000
# Behind the f+1 height at all, with the head unmoved for this long: catch up by block sync too.
STUCK_BEHIND_MS: Final = 3 * STATUS_INTERVAL_MS


class LocalChain(Protocol):
    """What the exchange reads of this node's chain (node/chain/application.py's Application)."""

    @property
    def head(self) -> ChainHead: ...

    @property
    def epochs(self) -> Epochs: ...


@dataclass(frozen=True, slots=True)
class StatusHooks:
    """All the exchange may ask of the driver that runs it."""

    emit: Callable[[Effect], None]  # queue an effect for the host
    mode: Callable[[], str]  # the driver's mode ("starting", "syncing", "consensus", "following", ...)
    has_replica: Callable[[], bool]  # a replica runs
    catching_up: Callable[[], bool]  # a block sync session is under way (CatchUp.active)
    start_consensus: Callable[[], None]  # a new replica from the head (or following)
    stop_consensus: Callable[[], None]  # stop the replica
    catch_up: Callable[[int, str], None]  # CatchUp.begin(at_least, then): leave consensus and fetch
    follow_soon: Callable[[], None]  # CatchUp.follow_soon: a following node learnt of a higher head
    guarded: Callable[..., None]  # guarded(what, step, *args): a failure is logged and retried, never raised
    status_at: Callable[[int], None]  # set the driver's "status" deadline (monotonic ms): it calls status_timer()
    startup_at: Callable[[int], None]  # the driver's "startup" deadline: it calls startup_timer()
    cancel_startup: Callable[[], None]  # drop the "startup" deadline (every peer reported)


class StatusExchange:
    """The STATUS messages of one driver and the decisions peers' heights make (module docstring)."""

    def __init__(self, chain: LocalChain, genesis_hash: bytes, clock: Clock, members: Membership,
                 reports: PeerReports, counters: collections.Counter[str], hooks: StatusHooks, node_id: str) -> None:
        """`members`, `reports` and `counters` are the driver's."""
        self._chain = chain
        self._genesis_hash = genesis_hash
        self._clock = clock
        self._members = members
        self._reports = reports
        self._counters = counters
        self._hooks = hooks
        self._node_id = node_id
        self._behind: tuple[int, int] | None = None  # (head height, since when) while f+1 report a higher one

    def start(self) -> None:
        """A networked node starts: its STATUS at once, the startup decision after STARTUP_WAIT_MS at the latest."""
        now = self._clock.monotonic_ms()
        self._hooks.status_at(now)
        self._hooks.startup_at(now + STARTUP_WAIT_MS)

    def on_status(self, peer: str, msg: Status) -> None:
        """A peer's STATUS: recorded, then what it decides in the driver's mode."""
        if not self._reports.status(peer, msg, self._clock.monotonic_ms()):
            return
        mode = self._hooks.mode()
        if mode == "starting" and all(p in self._reports.heights for p in self._members.peer_ids):
            self._hooks.cancel_startup()
            self._startup_done()
        elif mode == "following" and msg.height > self._chain.head.height:
            self._hooks.follow_soon()
        else:
            self.maybe_fall_behind()

    def status_timer(self) -> None:
        """The "status" deadline: this node's STATUS to every peer, and again in STATUS_INTERVAL_MS."""
        self.broadcast()
        self._hooks.status_at(self._clock.monotonic_ms() + STATUS_INTERVAL_MS)

    def broadcast(self) -> None:
        """This node's STATUS to every connected peer, full nodes included."""
        self._hooks.emit(Broadcast(self._message(), AUDIENCE_ALL))

    def send_to(self, peer: str) -> None:
        """This node's STATUS to `peer` (its link just came up)."""
        self._hooks.emit(SendTo(peer, self._message()))

    def announce_head(self) -> None:
        """Nodes that follow by block sync (full nodes, removed validators, validators before their epoch): tell them
        at once that there is a new block to fetch (one STATUS each, after every commit through consensus)."""
        full, followers = bool(self._members.full_peer_ids), self._members.followers()
        if not full and not followers:
            return  # nobody follows: nothing to encode (the common case of a validator of a stable set)
        status = self._message()
        if full:
            self._hooks.emit(Broadcast(status, AUDIENCE_FULL))
        for peer in followers:
            self._hooks.emit(SendTo(peer, status))

    def _message(self) -> bytes:
        """This node's STATUS (genesis, committed head), encoded."""
        head = self._chain.head
        return encode_node_message(Status(self._genesis_hash, head.height, head.block_id))

    def best_height(self) -> int:
        """The highest height any peer claims (one peer's word: informational, never a reason to act)."""
        return self._reports.best_height(self._clock.monotonic_ms())

    def target_height(self) -> int:
        """The highest height peers holding f + 1 voting power report (some honest validator has reached it). A node
        that signs nothing in this epoch (it follows: it may reach a single member's validators) takes the highest
        height any peer reports: every block it fetches is verified against its certificate, so a peer claiming a
        height it does not have costs one request."""
        if self._members.signing_keys is None:
            return self._reports.best_height(self._clock.monotonic_ms())
        return self._reports.target_height(self._members.power, self._chain.epochs.validator_set.weak_power,
                                           self._clock.monotonic_ms())

    def startup_timer(self) -> None:
        """The "startup" deadline: the peers that were to report have had STARTUP_WAIT_MS."""
        self._startup_done()

    def _startup_done(self) -> None:
        """Peers had a moment to report their heights: catch up first if we are far behind."""
        if self.target_height() > self._chain.head.height + 2:
            self._hooks.guarded("startup", self._hooks.catch_up, 0, "consensus")
        else:
            self._hooks.guarded("startup", self._hooks.start_consensus)

    def maybe_fall_behind(self) -> None:
        """Leave consensus for block sync when f+1 voting power reports heights more than SYNC_LAG above ours, or
        above ours at all while our head has not moved for STUCK_BEHIND_MS (a node a block or two behind an epoch
        change its replica cannot learn of, while the others wait for it, would otherwise wait forever)."""
        if not self._hooks.has_replica() or self._hooks.catching_up() or self._hooks.mode() != "consensus":
            return
        head, now = self._chain.head.height, self._clock.monotonic_ms()
        target = self.target_height()
        if self._behind is None or self._behind[0] != head or target <= head:
            self._behind = (head, now) if target > head else None
        stuck = self._behind is not None and now - self._behind[1] >= STUCK_BEHIND_MS
        if target > head + SYNC_LAG or stuck:
            log.warning("fell_behind node=%s height=%d target=%d stuck=%s: f+1 validators are ahead, switching to "
                        "block sync", self._node_id, head, target, stuck)
            self._counters["fell_behind"] += 1
            self._behind = None
            self._hooks.stop_consensus()
            self._hooks.guarded("resync", self._hooks.catch_up, 0, "consensus")
