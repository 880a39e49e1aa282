"""Progress lines for work that takes more than a few seconds (`testnet up`, `simulate`, `bench`, `chaos`).

`Ticker` prints one line every `interval` seconds while a block of work runs, from a daemon thread: the elapsed time
and what `describe()` says now. It writes nothing if the work ends before the first interval, and it stops cleanly
(no line after the `with` block ends). Progress goes to stderr by default, so a command's --json stdout stays clean.
"""

from __future__ import annotations

import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from typing import Self, TextIO

__all__ = ["StartProgress", "Ticker"]

DEFAULT_INTERVAL_S = 3.0


class Ticker:
    def __init__(
        self, describe: Callable[[], str], out: TextIO | None = None, interval: float = DEFAULT_INTERVAL_S
    ) -> None:
        self._describe = describe
        self._out = out if out is not None else sys.stderr
        self._interval = interval
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="progress", daemon=True)
        self._started = 0.0

    def __enter__(self) -> Self:
        self._started = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._stop.set()
        self._thread.join(timeout=self._interval + 5.0)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                text = self._describe()
            except Exception as exc:  # noqa: BLE001 - a progress line must never break the command
                text = f"({type(exc).__name__})"
            with self._lock:
                if self._stop.is_set():
                    return
                try:
                    self._out.write(f"  ... {time.monotonic() - self._started:.0f}s {text}\n")
                    self._out.flush()
                except (OSError, ValueError):
                    return


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/v1/status", timeout=0.5) as r:
            return bool(r.status == 200)
    except (OSError, ValueError):
        return False


class StartProgress(Ticker):
    """While nodes start: how many of their APIs answer so far."""

    def __init__(self, urls: list[str], out: TextIO | None = None, interval: float = DEFAULT_INTERVAL_S) -> None:
        def describe() -> str:
            up = sum(_answers(u) for u in urls)
            return f"{up}/{len(urls)} node APIs answering; waiting for every node to connect and commit a block"

        super().__init__(describe, out, interval)
