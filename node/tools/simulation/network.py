"""Virtual time and a seeded hostile network for the node simulator.

    queue = EventQueue();  queue.at(time_ms, callback);  time, callback = queue.pop()
    net = SimNetwork(rng, queue, gst_ms)
    net.transmit(src, dst, deliver)          -> False when the network drops it (deliver() runs later, maybe twice)
    net.partition_randomly(indexes) / net.heal()

Before GST (global stabilisation time) messages are dropped (probability drop_p), duplicated (dup_p), delayed by a
heavy-tailed, bimodal or uniform delay (reordering them), and partitions come and go. From GST on: no drops, no
partitions, delays bounded by stable_delay_ms. Everything is drawn from the run's seeded Random: the same seed gives
the same run.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable, Sequence

__all__ = ["EventQueue", "SimNetwork"]


class EventQueue:
    def __init__(self) -> None:
        self.now = 0
        self._seq = 0
        self._heap: list[tuple[int, int, Callable[[], None]]] = []

    def __len__(self) -> int:
        return len(self._heap)

    def at(self, time_ms: int, callback: Callable[[], None]) -> None:
        assert time_ms >= self.now, "events are never scheduled in the past"
        self._seq += 1
        heapq.heappush(self._heap, (time_ms, self._seq, callback))

    def pop(self) -> Callable[[], None] | None:
        if not self._heap:
            return None
        self.now, _, callback = heapq.heappop(self._heap)
        return callback


class SimNetwork:
    def __init__(self, rng: random.Random, queue: EventQueue, gst_ms: int) -> None:
        self._rng = rng
        self._queue = queue
        self.gst_ms = gst_ms
        self.drop_p = rng.choice((0.0, 0.02, 0.1))
        self.dup_p = rng.choice((0.0, 0.05))
        self.delay_model = rng.choice(("uniform", "bimodal", "heavy"))
        self.stable_delay_ms = rng.randint(2, 25)
        self.partition: list[set[int]] | None = None
        self.messages = 0
        self.dropped = 0

    @property
    def stable(self) -> bool:
        return self._queue.now >= self.gst_ms

    def delay(self) -> int:
        rng = self._rng
        if self.stable:
            return rng.randint(1, self.stable_delay_ms)
        if self.delay_model == "uniform":
            return rng.randint(1, 60)
        if self.delay_model == "bimodal":
            return rng.choice((rng.randint(1, 10), rng.randint(100, 300)))
        return min(2_000, int(rng.expovariate(1 / 40)) + 1)

    def connected(self, src: int, dst: int) -> bool:
        """No partition separates the two (drops aside)."""
        return self.partition is None or any(src in side and dst in side for side in self.partition)

    def transmit(self, src: int, dst: int, deliver: Callable[[], None]) -> bool:
        if not self.connected(src, dst):
            self.dropped += 1
            return False
        copies = 1
        if not self.stable:
            if self._rng.random() < self.drop_p:
                self.dropped += 1
                return False
            if self._rng.random() < self.dup_p:
                copies = 2
        for _ in range(copies):
            self.messages += 1
            self._queue.at(self._queue.now + self.delay(), deliver)
        return True

    def partition_randomly(self, indexes: Sequence[int]) -> None:
        order = list(indexes)
        self._rng.shuffle(order)
        cut = self._rng.randint(1, len(order) - 1) if len(order) > 1 else 1
        self.partition = [set(order[:cut]), set(order[cut:])]

    def heal(self) -> None:
        self.partition = None
