"""A virtual clock for driving a ValidatorDriver by hand (node/validator/effects.py's Clock): time moves only when the
test sets `now` (ms)."""

from __future__ import annotations


class VirtualClock:
    def __init__(self, wall_base_ms: int = 1_800_000_000_000) -> None:
        self.now = 0
        self.wall_base_ms = wall_base_ms

    def monotonic_ms(self) -> int:
        return self.now

    def wall_ms(self) -> int:
        return self.wall_base_ms + self.now
