"""The event hub: fans committed blocks out to event-stream subscribers and to `wait=commit` waiters.

Never a silent drop: every subscriber has a bounded buffer; when a block's messages do not fit, the subscriber is
marked overflowed with the first height it has not fully received, and its connection is closed with code
API_SLOW_CONSUMER and that height (the client reconnects with `from_height`). Replay from the store uses the same
message format, so a consumer sees one gap-free sequence: per block, its matching events, then a `block` message
that acts as the checkpoint ("everything up to this height was delivered").
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ledger.events import Event, Receipt, decode_receipt
from node.api import errors as e
from node.api.auth import SignedBy, Visibility
from node.api.errors import ApiError
from node.api.facade import CommitNotice, NodeFacade
from node.api.limits import ApiLimits
from node.api.views import event_view
from node.chain.certified import block_events_key
from node.chain.protocol import OPERATIONS
from node.chain.pruning import pruned_details

__all__ = ["EventFilter", "EventHub", "Subscription"]

log = logging.getLogger("node.api")

MAX_WAITERS = 10_000
VISIBILITY_CACHE = 4096


@dataclass(frozen=True, slots=True)
class EventFilter:
    accounts: frozenset[str] = frozenset()
    assets: frozenset[str] = frozenset()
    kinds: frozenset[str] = frozenset()

    def matches(self, ev: Event) -> bool:
        if self.kinds and ev.kind not in self.kinds:
            return False
        if self.assets and ev.attr("asset") not in self.assets:
            return False
        return not self.accounts or any(a in self.accounts for a in ev.accounts())


class Subscription:
    """One consumer: a filter, who it is, a bounded buffer of messages and the height it has fully received."""

    def __init__(self, hub: EventHub, flt: EventFilter, who: SignedBy | None, from_height: int, capacity: int):
        self.hub = hub
        self.filter = flt
        self.who = who
        self.capacity = capacity
        self.buffer: deque[dict[str, Any]] = deque()
        self.next_height = from_height  # the first height not yet queued or sent
        self.delivered = from_height - 1  # the last height whose checkpoint reached the consumer's socket
        self.overflow_at: int | None = None  # set when the buffer overflowed: resume from this height
        self.wakeup = asyncio.Event()
        self._visible: dict[tuple[str, str], bool] = {}

    def _sees(self, ev: Event) -> bool:
        vis = self.hub.visibility
        if vis.everything(self.who):
            return True
        asset = ev.attr("asset")
        key = (",".join(ev.accounts()), asset if isinstance(asset, str) else "")
        got = self._visible.get(key)
        if got is None:
            got = vis.sees_any(self.who, ev.accounts(), (key[1],) if key[1] else ())
            if len(self._visible) >= VISIBILITY_CACHE:
                self._visible.clear()
            self._visible[key] = got
        return got

    def messages_for(self, height: int, block_hash: bytes, time: int, events: Iterator[Event]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = [
            {"type": "event", "height": height, "event": event_view(ev)}
            for ev in events
            if self.filter.matches(ev) and self._sees(ev)
        ]
        out.append({"type": "block", "height": height, "block_hash": block_hash.hex(), "time": time})
        return out

    def offer(self, block: CommitNotice) -> None:
        """Queue a live block (called by the hub on commit); never blocks. A block that is not the next height
        (the pump is still replaying from the store) is left to the replay, which reads it from the store."""
        if self.overflow_at is None and block.height == self.next_height:
            msgs = self.messages_for(block.height, block.block_hash, block.time,
                                     _events(block.block_events, block.receipts))
            if len(self.buffer) + len(msgs) > self.capacity:
                self.overflow_at = self.delivered + 1
            else:
                self.buffer.extend(msgs)
                self.next_height = block.height + 1
        self.wakeup.set()


def _events(own: tuple[Event, ...], receipts: tuple[Receipt, ...] | list[Receipt]) -> Iterator[Event]:
    """A block's events in order: its own (holds released on expiry), then those of its transactions."""
    yield from own
    for r in receipts:
        yield from r.events


class EventHub:
    """Commits in, event streams and commit waiters out. `facade`: the node; `visibility`: what each signer may see;
    `limits`: the stream and waiter bounds."""

    def __init__(self, facade: NodeFacade, visibility: Visibility, limits: ApiLimits) -> None:
        self.facade = facade
        self.visibility = visibility
        self.limits = limits
        self.subscribers: set[Subscription] = set()
        self.waiters: dict[bytes, list[asyncio.Future[Receipt]]] = {}
        self._n_waiters = 0
        self._unlisten: Callable[[], None] | None = None
        self.closing = False

    # -- lifecycle ---------------------------------------------------------------------------------------------

    def start(self) -> None:
        if self._unlisten is None:
            self._unlisten = self.facade.add_commit_listener(self.on_commit)

    def stop(self) -> None:
        self.closing = True
        if self._unlisten is not None:
            self._unlisten()
            self._unlisten = None
        for sub in list(self.subscribers):
            sub.wakeup.set()
        for futures in self.waiters.values():
            for f in futures:
                if not f.done():
                    f.cancel()
        self.waiters.clear()

    # -- commits -----------------------------------------------------------------------------------------------

    def on_commit(self, block: CommitNotice) -> None:
        for r in block.receipts:
            futures = self.waiters.pop(r.tx_id, None)
            if futures:
                self._n_waiters -= len(futures)
                for f in futures:
                    if not f.done():
                        f.set_result(r)
        for sub in list(self.subscribers):
            sub.offer(block)

    # -- wait=commit ---------------------------------------------------------------------------------------------

    def expect(self, tx_id: bytes) -> asyncio.Future[Receipt]:
        """A future resolved with the tx's receipt when a block containing it commits. Register before submitting."""
        if self._n_waiters >= MAX_WAITERS:
            raise ApiError(e.UNAVAILABLE, "too many clients waiting for commits", {"max_waiters": MAX_WAITERS})
        fut: asyncio.Future[Receipt] = asyncio.get_running_loop().create_future()
        self.waiters.setdefault(tx_id, []).append(fut)
        self._n_waiters += 1
        return fut

    def forget(self, tx_id: bytes, fut: asyncio.Future[Receipt]) -> None:
        futures = self.waiters.get(tx_id)
        if futures and fut in futures:
            futures.remove(fut)
            self._n_waiters -= 1
            if not futures:
                del self.waiters[tx_id]

    # -- streams -----------------------------------------------------------------------------------------------

    def subscribe(self, flt: EventFilter, who: SignedBy | None, from_height: int | None) -> Subscription:
        limits = self.limits
        if len(self.subscribers) >= limits.max_streams:
            raise ApiError(e.TOO_MANY_STREAMS, details={"max_streams": limits.max_streams})
        head = self.facade.head().height
        start = head + 1 if from_height is None else from_height
        pruned = pruned_details(self.facade.store, start)
        if pruned is not None:  # below what this node keeps: say so (and from where) instead of a missing block
            raise ApiError(e.HEIGHT_PRUNED, details=pruned)
        sub = Subscription(self, flt, who, start, limits.stream_buffer)
        self.subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self.subscribers.discard(sub)

    def stored_messages(self, sub: Subscription, height: int) -> list[dict[str, Any]]:
        """The messages of a committed height, read from the store (replay)."""
        view = self.facade.block(height)
        if view is None:
            raise ApiError(e.BLOCK_NOT_FOUND, details={"height": height})
        store = self.facade.store
        receipts = []
        for tx_id in view.tx_ids:
            raw = store.get_receipt(tx_id)
            if raw is not None:
                receipts.append(decode_receipt(raw, operations=OPERATIONS))
        raw = store.get_extra(block_events_key(height))
        own = () if raw is None else decode_receipt(raw, operations=OPERATIONS).events
        return sub.messages_for(height, view.block_hash, view.time, _events(own, receipts))

    async def pump(
        self, sub: Subscription, send: Callable[[dict[str, Any]], Awaitable[None]], heartbeat: float = 15.0
    ) -> dict[str, Any]:
        """Deliver to `send` until the consumer overflows or the hub closes; returns the closing message (never
        raises for a stream-side failure: the message then carries its code and the height to resume from).

        Buffered live messages go first; when the buffer is empty and the store holds heights the subscription
        has not seen (resume from a past height, or a commit the listener did not report), they are replayed from
        the store one height at a time, paced by `send`."""
        try:
            await self._deliver(sub, send, heartbeat)
        except ApiError as err:
            return _closing(err.code, err.message, sub)
        except (ConnectionError, asyncio.CancelledError):
            raise
        except Exception:
            log.exception("event stream failed")
            return _closing(e.INTERNAL_ERROR, "internal error; resume later", sub)
        if sub.overflow_at is not None:
            return _closing(e.SLOW_CONSUMER, "event consumer too slow for its buffer; reconnect with from_height",
                            sub)
        return _closing(e.STREAM_SHUTDOWN, "node shutting down", sub)

    async def _deliver(
        self, sub: Subscription, send: Callable[[dict[str, Any]], Awaitable[None]], heartbeat: float
    ) -> None:
        while not self.closing:
            if sub.buffer:
                m = sub.buffer.popleft()
                await send(m)
                if m["type"] == "block":
                    sub.delivered = m["height"]
                continue
            if sub.overflow_at is not None:
                return
            if sub.next_height <= self.facade.head().height:
                height = sub.next_height
                msgs = self.stored_messages(sub, height)
                sub.next_height = height + 1
                for m in msgs:
                    await send(m)
                sub.delivered = height
                continue
            sub.wakeup.clear()
            try:
                await asyncio.wait_for(sub.wakeup.wait(), heartbeat)
            except TimeoutError:
                await send({"type": "heartbeat", "height": sub.delivered})


def _closing(code: int, message: str, sub: Subscription) -> dict[str, Any]:
    return {"type": "error", "code": code, "message": message, "resume_from": sub.delivered + 1}
