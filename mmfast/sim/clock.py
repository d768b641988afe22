"""Clocks for the simulator: one object gives monotonic ns and wall-clock ms.

Everything in `mmfast.sim` takes a clock by injection so that tests can drive time by hand and
a later simulated clock can run faster than real time.
"""

from __future__ import annotations

import time
from typing import Protocol


class SimClock(Protocol):
    """What the simulator needs from a clock."""

    def monotonic_ns(self) -> int:
        """Monotonic nanoseconds; used for ordering, timers and request windows."""
        ...

    def wall_ms(self) -> int:
        """Wall-clock epoch milliseconds; used only where the venue speaks wall time."""
        ...


class RealClock:
    """The machine's clocks."""

    def monotonic_ns(self) -> int:
        return time.monotonic_ns()

    def wall_ms(self) -> int:
        return time.time_ns() // 1_000_000


class ManualClock:
    """A clock that only moves when told to (tests).

    Monotonic and wall time advance together, so expiry windows and timers stay consistent.
    """

    def __init__(self, wall_ms: int = 1_790_000_000_000, monotonic_ns: int = 1_000_000_000) -> None:
        self._wall_ms = wall_ms
        self._mono_ns = monotonic_ns

    def monotonic_ns(self) -> int:
        return self._mono_ns

    def wall_ms(self) -> int:
        return self._wall_ms

    def advance_ms(self, ms: int) -> None:
        """Move both clocks forward by `ms` milliseconds."""
        if ms < 0:
            raise ValueError("a clock never goes back")
        self._wall_ms += ms
        self._mono_ns += ms * 1_000_000

    def advance_ns(self, ns: int) -> None:
        """Move both clocks forward by `ns` nanoseconds (wall time keeps whole ms)."""
        if ns < 0:
            raise ValueError("a clock never goes back")
        before = self._mono_ns // 1_000_000
        self._mono_ns += ns
        self._wall_ms += self._mono_ns // 1_000_000 - before
