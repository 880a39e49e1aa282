"""node.validator.allocator: the C allocator settings `node run` applies, and the ones it leaves to the environment."""

from __future__ import annotations

import sys

import pytest

from node.validator.allocator import tune_allocator


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_settings_applied_except_those_the_environment_sets() -> None:
    everything = tune_allocator(environ={})
    if everything.skipped == "not glibc":
        pytest.skip("not glibc")
    assert everything.applied == ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_ARENA_MAX")
    assert everything.skipped is None
    partly = tune_allocator(environ={"MALLOC_ARENA_MAX": "4"})
    assert partly.applied == ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")
    assert partly.skipped == "set by the environment: MALLOC_ARENA_MAX"
