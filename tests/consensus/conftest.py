"""Fixtures of the consensus tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.consensus.sim_pool import SimPool


@pytest.fixture(scope="module")
def sim_pool() -> Iterator[SimPool]:
    """Worker processes for the simulator's seeds (tests/consensus/sim_pool.py), one pool per test module."""
    pool = SimPool()
    try:
        yield pool
    finally:
        pool.close()
