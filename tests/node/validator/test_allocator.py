"""node.validator.allocator: the C allocator settings `node run` applies, and the ones it leaves to the environment."""

from __future__ import annotations

import platform
import sys

from node.validator.allocator import tune_allocator

GLIBC = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"


def test_settings_applied_except_those_the_environment_sets() -> None:
    everything = tune_allocator(environ={})
    if not GLIBC:  # musl, macOS: no mallopt, nothing applied, and the node says why
        assert everything.applied == () and everything.skipped == "not glibc"
        return
    assert everything.applied == ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_ARENA_MAX")
    assert everything.skipped is None
    partly = tune_allocator(environ={"MALLOC_ARENA_MAX": "4"})
    assert partly.applied == ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")
    assert partly.skipped == "set by the environment: MALLOC_ARENA_MAX"
