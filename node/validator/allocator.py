"""The C allocator's settings for a long-running node (glibc only; elsewhere nothing changes).

    tune_allocator() -> AllocatorTuning      once, when `node run` starts (before the node's threads start)

Why (docs/benchmarks.md, "Issue 14, target 7"): under load a node allocates many short-lived buffers of 128 KiB to a
few MiB (block payloads, peer frames, API request bodies, LevelDB's memtable). glibc serves a buffer above its mmap
threshold with a mapping of its own and unmaps it when freed, but the threshold is *dynamic*: each freed mapping
raises it to that buffer's size (up to 32 MiB), so after the first few blocks every payload lands on the heap, whose
free space is only returned from its top. A node measured this way held 50-60 MB of free heap (mallinfo2 fordblks)
in its resident set at the end of a 60 s load. Fixing the threshold keeps big buffers in mappings of their own; the
trim threshold returns free heap top above 128 KiB at once; two arenas per process bound the per-thread arenas (the
node runs an execution thread, libsodium verifier threads and LevelDB's compaction thread) that each keep their own
free space. An operator's own MALLOC_* environment settings are left alone.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import sys
from dataclasses import dataclass
from typing import Final

__all__ = ["ARENA_MAX", "MMAP_THRESHOLD_BYTES", "TRIM_THRESHOLD_BYTES", "AllocatorTuning", "tune_allocator"]

log = logging.getLogger("node.validator.allocator")

MMAP_THRESHOLD_BYTES: Final = 128 * 1024  # allocations at least this large get a mapping of their own (fixed)
TRIM_THRESHOLD_BYTES: Final = 128 * 1024  # free space above the heap's top beyond this goes back to the system
ARENA_MAX: Final = 2  # malloc arenas per process

# mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD: Final = -1
_M_MMAP_THRESHOLD: Final = -3
_M_ARENA_MAX: Final = -8
_SETTINGS: Final = (
    ("MALLOC_MMAP_THRESHOLD_", _M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES),
    ("MALLOC_TRIM_THRESHOLD_", _M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES),
    ("MALLOC_ARENA_MAX", _M_ARENA_MAX, ARENA_MAX),
)


@dataclass(frozen=True, slots=True)
class AllocatorTuning:
    applied: tuple[str, ...]  # the settings changed (their environment variable names)
    skipped: str | None  # why nothing or not everything was changed, or None


def _glibc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    name = ctypes.util.find_library("c") or "libc.so.6"
    try:
        libc = ctypes.CDLL(name)
    except OSError:
        return None
    if not hasattr(libc, "mallopt") or not hasattr(libc, "gnu_get_libc_version"):
        return None  # not glibc (musl has no mallopt)
    return libc


def tune_allocator(environ: dict[str, str] | None = None) -> AllocatorTuning:
    """Apply the settings above to this process's C allocator, except those the environment already sets."""
    env = os.environ if environ is None else environ
    libc = _glibc()
    if libc is None:
        return AllocatorTuning((), "not glibc")
    applied: list[str] = []
    refused: list[str] = []
    for variable, param, value in _SETTINGS:
        if variable in env:
            continue
        if libc.mallopt(ctypes.c_int(param), ctypes.c_int(value)) == 1:
            applied.append(variable)
        else:
            refused.append(variable)
    skipped = None
    if refused or len(applied) < len(_SETTINGS):
        kept = [v for v, _, _ in _SETTINGS if v in env]
        skipped = ", ".join(
            filter(
                None,
                [
                    f"refused: {' '.join(refused)}" if refused else "",
                    f"set by the environment: {' '.join(kept)}" if kept else "",
                ],
            )
        )
    log.info("allocator_tuned applied=%s skipped=%s", ",".join(applied) or "-", skipped or "-")
    return AllocatorTuning(tuple(applied), skipped)
