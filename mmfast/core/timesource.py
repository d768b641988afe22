"""Time sources shared by the bot and the simulator.

Everything that waits or stamps time outside the compiled tick scheduler (connector timeouts,
reconnect backoff, ping idleness, simulator timers and speed bumps) takes a ``TimeSource`` by
injection. ``RealTime`` is the machine's clocks. ``ScaledTime`` runs ``scale`` times faster than
real time: a test hands the same instance to the simulator and to the bot, so a scenario of
minutes takes seconds and every time-based figure is asserted in that shared simulated time.

Monotonic nanoseconds order events and measure intervals; wall-clock milliseconds exist only for
what the venue reads (order expiry, tx deadlines, auth tokens). A monotonic value never reaches
the venue.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

__all__ = ["REAL_TIME", "RealTime", "ScaledTime", "TimeSource"]


@runtime_checkable
class TimeSource(Protocol):
    """Clocks and waits in one time base."""

    @property
    def scale(self) -> float:
        """Source seconds per real second (1.0 for real time)."""
        ...

    def monotonic_ns(self) -> int:
        """Monotonic nanoseconds in this time base."""
        ...

    def wall_ms(self) -> int:
        """Wall-clock epoch milliseconds in this time base (venue-facing only)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of this time base."""
        ...

    def call_later(
        self, seconds: float, callback: Callable[..., Any], *args: Any
    ) -> asyncio.TimerHandle:
        """Run ``callback(*args)`` on the running loop after ``seconds`` of this time base."""
        ...


class RealTime:
    """The machine's clocks; waits are the event loop's."""

    __slots__ = ()

    @property
    def scale(self) -> float:
        return 1.0

    def monotonic_ns(self) -> int:
        return time.monotonic_ns()

    def wall_ms(self) -> int:
        return time.time_ns() // 1_000_000

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    def call_later(
        self, seconds: float, callback: Callable[..., Any], *args: Any
    ) -> asyncio.TimerHandle:
        return asyncio.get_running_loop().call_later(seconds, callback, *args)

    def __repr__(self) -> str:
        return "RealTime()"


REAL_TIME = RealTime()


class ScaledTime:
    """Time that runs ``scale`` times faster than real time, anchored when created.

    Source time = anchor + (real elapsed) * scale, for both clocks; waits of ``s`` source seconds
    take ``s / scale`` real seconds. Event-loop timers have ~1 ms real resolution, so at scale
    ``k`` a wait is accurate to about ``k`` ms of source time: choose the scale for the precision
    the scenario needs.
    """

    __slots__ = ("_mono0", "_real0", "_scale", "_wall0")

    def __init__(
        self, scale: float, *, start_wall_ms: int | None = None, start_monotonic_ns: int = 0
    ) -> None:
        if not (scale > 0.0 and scale < float("inf")):
            raise ValueError(f"scale must be a positive finite number, got {scale!r}")
        self._scale = float(scale)
        self._real0 = time.monotonic_ns()
        self._mono0 = int(start_monotonic_ns)
        self._wall0 = time.time_ns() // 1_000_000 if start_wall_ms is None else int(start_wall_ms)

    @property
    def scale(self) -> float:
        return self._scale

    def monotonic_ns(self) -> int:
        return self._mono0 + int((time.monotonic_ns() - self._real0) * self._scale)

    def wall_ms(self) -> int:
        return self._wall0 + (self.monotonic_ns() - self._mono0) // 1_000_000

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) / self._scale)

    def call_later(
        self, seconds: float, callback: Callable[..., Any], *args: Any
    ) -> asyncio.TimerHandle:
        loop = asyncio.get_running_loop()
        return loop.call_later(max(0.0, seconds) / self._scale, callback, *args)

    def __repr__(self) -> str:
        return f"ScaledTime(scale={self._scale})"
