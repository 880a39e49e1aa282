"""Files a node's operator keeps (genesis, config): written whole or not at all."""

from __future__ import annotations

import os

__all__ = ["write_file_atomically"]


def write_file_atomically(path: str | os.PathLike[str], data: bytes, *, exclusive: bool = False) -> None:
    """Write `data` to a temporary file beside `path`, sync it, then put it in place in one step: a crash leaves the
    old file or the new one, never a part. `exclusive`: never replace an existing file (FileExistsError)."""
    tmp = f"{path}.tmp"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    if exclusive:
        try:
            os.link(tmp, path)  # atomic, and fails when `path` exists
        finally:
            os.remove(tmp)
    else:
        os.replace(tmp, path)
