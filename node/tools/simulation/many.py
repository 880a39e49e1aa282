"""Many seeds of the node simulator, summarised like the consensus simulator's runs (same keys) plus the invariant
counters summed over the runs; `ledger simulate --app` prints it.

    summary = run_many(100, seed_start=0, byzantine=1)
    merged = merge(parts, seconds)       summaries of disjoint seed ranges (worker processes)
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from typing import Any

from consensus.simulator import SUMMED_KEYS, merge_summaries
from node.tools.simulation.run import NodeSimConfig, NodeSimResult, run_seed

__all__ = ["merge", "run_many"]


@contextlib.contextmanager
def quiet_logs() -> Iterator[None]:
    """A run logs every fault it injects (crashes, refused peers, lost safety state): the summary says what happened."""
    previous = logging.root.manager.disable
    logging.disable(logging.CRITICAL)
    try:
        yield
    finally:
        logging.disable(previous)


def run_many(seeds: int, *, seed_start: int = 0, all_restart: bool | None = None,
             on_result: Callable[[NodeSimResult], None] | None = None,
             clock: Callable[[], float] | None = None, **options: Any) -> dict[str, Any]:
    """Run seeds seed_start .. seed_start + seeds - 1. With all_restart=None every fourth seed powers every machine
    off at once. `options`: NodeSimConfig fields. `clock` (e.g. time.perf_counter) only measures."""
    with quiet_logs():
        return _run_many(seeds, seed_start, all_restart, on_result, clock, options)


def _run_many(seeds: int, seed_start: int, all_restart: bool | None, on_result: Callable[[NodeSimResult], None] | None,
              clock: Callable[[], float] | None, options: dict[str, Any]) -> dict[str, Any]:
    started = clock() if clock else 0.0
    summary: dict[str, Any] = {key: 0 for key in SUMMED_KEYS} | {"failed_seeds": [], "failures": [], "counters": {}}
    for seed in range(seed_start, seed_start + seeds):
        restart_all = (seed % 4 == 3) if all_restart is None else all_restart
        config = NodeSimConfig(seed=seed, all_restart=restart_all, **options)
        result = run_seed(config)
        summary["runs"] += 1
        for key in ("commits", "rounds", "messages", "evidence", "epoch_changes"):
            summary[key] += getattr(result, key)
        summary["safety_violations"] += int(bool(result.safety_violations))
        summary["liveness_failures"] += int(bool(result.liveness_failures))
        for name, value in result.counters.items():
            summary["counters"][name] = summary["counters"].get(name, 0) + value
        if not result.ok:
            summary["failed_seeds"].append(seed)
            summary["failures"].append({"seed": seed, "replay": config.command(),
                                        "byzantine": {str(k): v for k, v in result.byzantine.items()},
                                        "safety": result.safety_violations[:5],
                                        "liveness": result.liveness_failures[:2]})
        if on_result is not None:
            on_result(result)
    summary["seconds"] = round((clock() - started) if clock else 0.0, 3)
    if clock and summary["seconds"] > 0:
        summary["seeds_per_second"] = round(summary["runs"] / summary["seconds"], 3)
    return summary


def merge(parts: list[dict[str, Any]], seconds: float) -> dict[str, Any]:
    merged = merge_summaries(parts, seconds)
    counters: dict[str, int] = {}
    for part in parts:
        for name, value in part["counters"].items():
            counters[name] = counters.get(name, 0) + value
    merged["counters"] = dict(sorted(counters.items()))
    merged.pop("rounds_per_second", None)
    return merged

