"""Simulator seeds on both cores: the deterministic consensus simulator's seeds (consensus/simulator.py) run in worker
processes of a fork server, as `ledger simulate --jobs N` runs them, and their summaries are merged the same way
(merge_summaries). A seed's run depends on nothing but its configuration, so the summary is the one run_many gives
in the test's process; the simulator tests are CPU-bound and the test process uses one core.

Runs that plant a bug with monkeypatch stay in the test's own process: a worker would not see the patch."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

from consensus.simulator import merge_summaries, run_many

JOBS = 2
# Seeds per task: small enough that two workers share a range evenly (runs of one seed range from 0.1 to 2 s).
CHUNK = 2


class SimPool:
    def __init__(self, jobs: int = JOBS) -> None:
        # A fork server: workers are never forked from the test process, which runs threads.
        self._pool = ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("forkserver"))

    def submit(self, seeds: int, *, seed_start: int, **options: Any) -> list[Future[dict[str, object]]]:
        """Start run_many(seeds, seed_start=..., **options) in chunks of seeds; `merged` waits for them."""
        return [self._pool.submit(run_many, min(CHUNK, seed_start + seeds - start), seed_start=start, **options)
                for start in range(seed_start, seed_start + seeds, CHUNK)]

    def run_many(self, seeds: int, *, seed_start: int, **options: Any) -> dict[str, object]:
        """What run_many(seeds, seed_start=..., **options) returns (its `seconds` aside), computed by the workers."""
        return merged(self.submit(seeds, seed_start=seed_start, **options))

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def merged(futures: list[Future[dict[str, object]]]) -> dict[str, object]:
    return merge_summaries([f.result() for f in futures], 0.0)
