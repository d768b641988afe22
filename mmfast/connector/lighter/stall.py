"""``StallWatch``: the event loop notices its own stalls.

A stopped process (``SIGSTOP``, a suspended VM, a swapped-out host) or a call that blocks the
loop freezes everything the bot knows: when it runs again, the sockets hand it seconds of old
frames, its orders may have filled or been cancelled by its guard meanwhile, and the venue
timestamps in that backlog make the clock look skewed by the length of the stall. Nothing of
what the bot decided before the stall may reach the venue.

The watch stamps the loop every ``interval_ms`` (a timer of the connector's ``TimeSource``).
``check(now)`` answers whether the loop ran recently: when the last stamp is older than
``stall_ms`` (a timer cannot be that late on a loop that ran), the loop was stalled, and the
first caller to see it (a frame callback, a strategy tick, or the watch's own timer, whichever
the loop runs first after the stall) reports it once through ``on_stall(stalled_ms)`` before
acting on anything. The connector then pulls the quotes, refreshes the nonces and reconciles,
and the skew monitor ignores the backlog's venue times (``fresh_after_ns``).

Times are in the ``TimeSource``'s base; ``stall_ms`` is host time (scaled by the source's
``scale``), since a stall is the host not running the process.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from mmfast.core.latency import LagHistogram
from mmfast.core.timesource import REAL_TIME, TimeSource

__all__ = ["StallWatch"]


class StallWatch:
    """Loop-stall detection of one event loop (see the module doc)."""

    __slots__ = (
        "_due_ns",
        "_handle",
        "_interval_s",
        "_on_stall",
        "_time",
        "feeds",
        "fresh_after_ns",
        "lag",
        "last_ns",
        "last_stall_ms",
        "max_stall_ms",
        "stall_ns",
        "stalls",
    )

    def __init__(
        self,
        stall_ms: int,
        on_stall: Callable[[float], object],
        *,
        interval_ms: int = 100,
        time: TimeSource = REAL_TIME,
    ) -> None:
        if stall_ms <= 0 or interval_ms <= 0:
            raise ValueError("stall_ms and interval_ms must be > 0")
        if interval_ms * 4 > stall_ms:
            raise ValueError(
                "interval_ms must be at most a quarter of stall_ms (a late "
                "timer of a running loop must not look like a stall)"
            )
        self._time = time
        self._on_stall = on_stall  # called (stalled host ms) once per stall
        self._interval_s = interval_ms / 1000 * time.scale  # source seconds between stamps
        self.stall_ns = int(stall_ms * 1_000_000 * time.scale)  # source ns
        self.last_ns = time.monotonic_ns()  # the loop's last stamp
        self.fresh_after_ns = 0  # venue times read before this are the backlog's
        self.stalls = 0  # stalls seen
        self.last_stall_ms = 0.0  # host ms of the last one
        self.max_stall_ms = 0.0  # the longest
        self._handle: asyncio.TimerHandle | None = None
        self._due_ns = 0  # when the stamp timer should run
        self.lag = LagHistogram()  # how late it ran (host ms): the loop's lag over the run
        # Compiled listeners that check the stamp in C: each stamp sets their alive_until.
        self.feeds: list[Any] = []

    def start(self) -> None:
        """Stamp from now on (on the running loop)."""
        self.last_ns = self._time.monotonic_ns()
        self._schedule()

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _schedule(self) -> None:
        self._due_ns = self._time.monotonic_ns() + int(self._interval_s * 1e9)
        self._handle = self._time.call_later(self._interval_s, self._tick)

    def _tick(self) -> None:
        now = self._time.monotonic_ns()
        self.lag.add((now - self._due_ns) / 1e6 / self._time.scale)  # stalls included
        self.check(now)
        self._schedule()

    def check(self, now_ns: int) -> bool:
        """True when the loop ran within ``stall_ms`` of ``now_ns``; otherwise report the
        stall (once) and return False. Stamps the loop either way."""
        gap = now_ns - self.last_ns
        self.last_ns = now_ns
        for f in self.feeds:
            f.alive_until = now_ns + self.stall_ns
        if gap <= self.stall_ns:
            return True
        ms = gap / 1e6 / self._time.scale
        self.stalls += 1
        self.last_stall_ms = ms
        self.max_stall_ms = max(self.max_stall_ms, ms)
        # What arrives within the next two stamps was queued during the stall.
        self.fresh_after_ns = now_ns + int(2 * self._interval_s * 1e9)
        self._on_stall(ms)
        return False

    def status(self) -> dict[str, float | int]:
        return {
            "stalls": self.stalls,
            "last_stall_ms": round(self.last_stall_ms, 1),
            "max_stall_ms": round(self.max_stall_ms, 1),
            **self.lag.status(),
        }
