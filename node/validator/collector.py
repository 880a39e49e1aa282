"""CPython's cyclic garbage collector in a long-running node: thresholds, a frozen startup heap, pause accounting.

    tuning = tune_collector()     once, when `node run` starts (before the node opens its state)
    freeze_startup_heap()         once the node has started: what startup left alive is never scanned again
    totals = collector_totals()   collections and pause seconds per generation since tune_collector (for /metrics)

Why (docs/benchmarks.md, "The cyclic collector"): CPython runs a generation-0 collection every 700 net allocations
of container objects, a generation-1 one every 10 of those and a full one every 10 generation-1 collections (when
the objects awaiting it are a quarter of the long-lived ones). Executing a block allocates several container objects
per transfer (decoded records, state reads and writes, events, receipts), so at 700 the collector runs every few
transfers and its full collections walk the whole heap: caches, the mempool and the consensus state. Measured on
`ledger bench apply` (which calls tune_collector too, so it measures what a node does), GC_THRESHOLDS raise the
ratio by about 12 %. Full collections still happen (after 20 generation-1 collections, under the same quarter
rule), so reference cycles cannot accumulate without bound. An operator's LEDGER_GC_THRESHOLDS
("700,10,10" gives CPython's defaults) wins over ours.

Pause accounting: a `gc.callbacks` hook (installed by tune_collector, not at import) adds each collection's wall
time to its generation's total; the node exports them as ledger_gc_collections_total and
ledger_gc_pause_seconds_total. The hook runs on whichever thread triggered the collection, under the GIL.
"""

from __future__ import annotations

import gc
import logging
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

__all__ = ["ENV_THRESHOLDS", "GC_THRESHOLDS", "CollectorTotals", "CollectorTuning", "collector_totals",
           "freeze_startup_heap", "parse_thresholds", "tune_collector"]

log = logging.getLogger("node.validator.collector")

GC_THRESHOLDS: Final = (20_000, 20, 20)
ENV_THRESHOLDS: Final = "LEDGER_GC_THRESHOLDS"
MAX_THRESHOLD: Final = 10_000_000  # a larger value would in effect turn the collector off: refused


@dataclass(frozen=True, slots=True)
class CollectorTuning:
    thresholds: tuple[int, int, int]  # in force after the call
    source: str  # "ledger" (GC_THRESHOLDS) or "environment" (LEDGER_GC_THRESHOLDS)


@dataclass(frozen=True, slots=True)
class CollectorTotals:
    collections: tuple[int, int, int]  # per generation 0, 1, 2
    pause_seconds: tuple[float, float, float]


class _PauseClock:
    """The gc.callbacks hook: start and stop of every collection, totals per generation."""

    __slots__ = ("_lock", "_started", "collections", "seconds")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._started: dict[int, float] = {}  # thread id -> start of its collection in progress
        self.collections = [0, 0, 0]
        self.seconds = [0.0, 0.0, 0.0]

    def __call__(self, phase: str, info: Mapping[str, Any]) -> None:
        ident = threading.get_ident()
        if phase == "start":
            self._started[ident] = time.perf_counter()
            return
        started = self._started.pop(ident, None)
        generation = info.get("generation", 2)
        if started is None or not 0 <= generation <= 2:
            return
        with self._lock:
            self.collections[generation] += 1
            self.seconds[generation] += time.perf_counter() - started

    def totals(self) -> CollectorTotals:
        with self._lock:
            return CollectorTotals(tuple(self.collections), tuple(self.seconds))  # type: ignore[arg-type]


_clock: _PauseClock | None = None


def parse_thresholds(text: str) -> tuple[int, int, int]:
    """ "a,b,c" -> (a, b, c): three integers, 1 <= each <= MAX_THRESHOLD (ValueError otherwise)."""
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise ValueError(f"{ENV_THRESHOLDS} must be three positive integers like 700,10,10, not {text!r}")
    values = tuple(int(p) for p in parts)
    if not all(1 <= v <= MAX_THRESHOLD for v in values):
        raise ValueError(f"{ENV_THRESHOLDS} values must be between 1 and {MAX_THRESHOLD}, not {text!r}")
    return values  # type: ignore[return-value]


def tune_collector(environ: Mapping[str, str] | None = None) -> CollectorTuning:
    """Set the thresholds (ours, or the environment's) and start the pause accounting (once per process).
    A malformed LEDGER_GC_THRESHOLDS is a ValueError: `node run` refuses to start rather than guess."""
    global _clock
    env = os.environ if environ is None else environ
    raw = env.get(ENV_THRESHOLDS)
    thresholds, source = (GC_THRESHOLDS, "ledger") if raw is None else (parse_thresholds(raw), "environment")
    gc.set_threshold(*thresholds)
    if _clock is None:
        _clock = _PauseClock()
        gc.callbacks.append(_clock)
    log.info("collector_tuned thresholds=%s source=%s", ",".join(map(str, thresholds)), source)
    return CollectorTuning(thresholds, source)


def freeze_startup_heap() -> int:
    """Collect once, then move every object still alive to the permanent generation (gc.freeze): the modules,
    the genesis and what opening the state built are never walked by a later collection. Returns how many
    objects were frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def collector_totals() -> CollectorTotals | None:
    """Collections and pause seconds per generation since tune_collector; None if it was not called."""
    return None if _clock is None else _clock.totals()
