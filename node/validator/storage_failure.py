"""A failed read or write of this node's disk (full, remounted read-only, failing device): what it was, for the log,
the status, /health and the metrics.

    failure = StorageFailure.from_error(exc)     # exc: the OSError a store raised (plyvel.IOError is one)
    failure.code == STORAGE_FAILED; failure.path; failure.cause; failure.report() -> {"code", "message", "path", "cause"}

LevelDB reports its I/O errors as `plyvel.IOError("IO error: <file>: <strerror>")` (its Status text, in bytes); an
OSError raised elsewhere carries `filename` and `strerror`. Either way the path and the operating system's text are
kept apart, so operators read "No space left on device" and the file it happened on.

Why a storage failure is fatal (docs/operations.md, "A failing disk"): after LevelDB fails to append a record to its
log, a later write that succeeds is acknowledged but can be dropped when the store is reopened (the torn record ends
that block of the log, and recovery skips the rest of the block). A node that kept writing after the disk came back
could therefore lose a commit it acknowledged, or a safety state it persisted before a vote, and sign a round twice
after a restart. So the node writes nothing more after the first failure; a restart recovers from what is on disk.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

__all__ = ["STORAGE_FAILED", "StorageFailure"]

STORAGE_FAILED: Final = "storage_failed"

# LevelDB's Status text for an I/O error: "IO error: <file>: <strerror>" (util/status.cc, env_posix.cc PosixError).
_LEVELDB_IO_ERROR = re.compile(r"^IO error: (?P<path>.+): (?P<cause>[^:]+)$")


@dataclass(frozen=True, slots=True)
class StorageFailure:
    path: str  # the file (or directory) the operation failed on; "" when the error names none
    cause: str  # the operating system's text: "No space left on device", "Read-only file system", ...

    code = STORAGE_FAILED

    @classmethod
    def from_error(cls, exc: OSError) -> StorageFailure:
        if exc.strerror is not None:
            return cls("" if exc.filename is None else str(exc.filename), exc.strerror)
        text = exc.args[0] if len(exc.args) == 1 else str(exc)
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        text = str(text)
        match = _LEVELDB_IO_ERROR.match(text)
        if match is None:
            return cls("", text or type(exc).__name__)
        return cls(match["path"], match["cause"])

    @property
    def message(self) -> str:
        where = f" on {self.path}" if self.path else ""
        return (f"a disk operation failed{where}: {self.cause}; this node signs and writes nothing more. Fix the "
                f"disk (free space, remount read-write) and restart it: it recovers from its stores")

    def report(self) -> dict[str, str]:
        """The form /v1/status and /health show."""
        return {"code": self.code, "message": self.message, "path": self.path, "cause": self.cause}
