"""The simulator's time: the shared `TimeSource` (mmfast.core.timesource), plus test clocks.

One concept, one place: the simulator runs on a `TimeSource` (`REAL_TIME`, or a `ScaledTime`
shared with the bot so a scenario of minutes takes seconds). `SimClock` is the part of it the
engine reads (monotonic ns and wall ms); `ManualClock` is a `SimClock` that moves only when told
to, for the engine's unit tests. `as_time_source` turns any `SimClock` into a full `TimeSource`
(a bare clock gets the event loop's real-time waits), and `SkewedTime` adds the wall-clock offset
that the clock-skew fault sets.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from mmfast.core.timesource import REAL_TIME, RealTime, ScaledTime, TimeSource

__all__ = [
    "REAL_TIME",
    "ManualClock",
    "RealClock",
    "ScaledTime",
    "SimClock",
    "SkewedTime",
    "TimeSource",
    "as_time_source",
]


@runtime_checkable
class SimClock(Protocol):
    """What the engine needs from a clock (a subset of `TimeSource`)."""

    def monotonic_ns(self) -> int:
        """Monotonic nanoseconds; used for ordering, timers and request windows."""
        ...

    def wall_ms(self) -> int:
        """Wall-clock epoch milliseconds; used only where the venue speaks wall time."""
        ...


# The machine's clocks: the shared real time source under its historical name.
RealClock = RealTime


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


class _ClockWithLoopWaits:
    """A bare `SimClock` given the event loop's real-time waits (scale 1)."""

    __slots__ = ("_clock",)

    def __init__(self, clock: SimClock) -> None:
        self._clock = clock

    @property
    def scale(self) -> float:
        return 1.0

    def monotonic_ns(self) -> int:
        return self._clock.monotonic_ns()

    def wall_ms(self) -> int:
        return self._clock.wall_ms()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    def call_later(
        self, seconds: float, callback: Callable[..., Any], *args: Any
    ) -> asyncio.TimerHandle:
        return asyncio.get_running_loop().call_later(max(0.0, seconds), callback, *args)


def as_time_source(clock: TimeSource | SimClock | None) -> TimeSource:
    """The `TimeSource` for `clock`: itself if it is one, real time if None, else `clock` with
    the event loop's real-time waits."""
    if clock is None:
        return REAL_TIME
    if isinstance(clock, TimeSource):
        return clock
    return _ClockWithLoopWaits(clock)


class SkewedTime:
    """A `TimeSource` whose wall clock is `offset_ms` away from its base's (monotonic time and
    waits are the base's). The simulator runs on one, so a clock-skew fault moves the venue's
    wall clock relative to the bot's."""

    __slots__ = ("base", "offset_ms")

    def __init__(self, base: TimeSource, offset_ms: int = 0) -> None:
        self.base = base  # the shared time source
        self.offset_ms = offset_ms  # added to the base's wall clock

    @property
    def scale(self) -> float:
        return self.base.scale

    def monotonic_ns(self) -> int:
        return self.base.monotonic_ns()

    def wall_ms(self) -> int:
        return self.base.wall_ms() + self.offset_ms

    async def sleep(self, seconds: float) -> None:
        await self.base.sleep(seconds)

    def call_later(
        self, seconds: float, callback: Callable[..., Any], *args: Any
    ) -> asyncio.TimerHandle:
        return self.base.call_later(seconds, callback, *args)

    def __repr__(self) -> str:
        return f"SkewedTime({self.base!r}, offset_ms={self.offset_ms})"
