"""Per-stage latency samples: ``LatencyStats`` and the strategy's stage names ``STAGES``.

A strategy stamps each stage of its path (book received -> quote computed -> sent -> acked ->
open, fill -> requote) into a ``LatencyStats``; the status line and the run summary show the
p50/p99 of each stage. Samples are ns, kept in bounded rings (the last ``RING`` per stage).
``LagHistogram`` and ``LoopLagProbe``: an event loop's lag (how late its timers run) over a
whole run, in constant memory.
"""

from __future__ import annotations

import asyncio
from bisect import bisect_left
from collections import deque
from collections.abc import Iterable
from typing import Final

__all__ = [
    "HIST_BOUNDS_NS",
    "LAG_MAX_MS",
    "RING",
    "STAGES",
    "LagHistogram",
    "LatencyStats",
    "LoopLagProbe",
    "StageHistograms",
]

# Latency stages stamped by the strategy (names as shown by the status line).
STAGES: Final = ("book>quote", "quote>send", "send>ack", "ack>open", "book>send", "fill>requote")
RING: Final = 4096  # samples kept per stage


# Upper bounds of the cumulative histograms (ns): 1 us .. 1 s, then +Inf.
HIST_BOUNDS_NS: Final = tuple(
    int(us * 1000)
    for us in (
        1,
        2,
        5,
        10,
        20,
        50,
        100,
        200,
        500,
        1_000,
        2_000,
        5_000,
        10_000,
        50_000,
        100_000,
        1_000_000,
    )
)


class StageHistograms:
    """Every sample ever taken, per stage, in fixed buckets (``HIST_BOUNDS_NS``, the last one
    +Inf) with their sum: what a metrics scrape reads (the rings keep only recent samples)."""

    __slots__ = ("buckets", "sums")

    def __init__(self) -> None:
        self.buckets: dict[str, list[int]] = {}  # stage -> count per bucket (not cumulative)
        self.sums: dict[str, int] = {}  # stage -> sum of the samples (ns)

    def observe(self, stage: str, ns: int) -> None:
        b = self.buckets.get(stage)
        if b is None:
            b = self.buckets[stage] = [0] * (len(HIST_BOUNDS_NS) + 1)
            self.sums[stage] = 0
        b[bisect_left(HIST_BOUNDS_NS, ns)] += 1
        self.sums[stage] += ns


class LatencyStats:
    """Samples (ns) per stage in bounded rings; percentiles on demand (status, summary)."""

    __slots__ = ("_rings", "counts", "hist")

    def __init__(self, stages: Iterable[str] = STAGES) -> None:
        self._rings: dict[str, deque[int]] = {s: deque(maxlen=RING) for s in stages}
        self.counts: dict[str, int] = dict.fromkeys(self._rings, 0)  # samples ever taken
        self.hist = StageHistograms()

    def add(self, stage: str, ns: int) -> None:
        ring = self._rings.get(stage)
        if ring is None:
            ring = self._rings[stage] = deque(maxlen=RING)
            self.counts[stage] = 0
        ns = max(0, ns)
        ring.append(ns)
        self.counts[stage] += 1
        self.hist.observe(stage, ns)

    def percentiles(self, stage: str, qs: tuple[float, ...] = (0.5, 0.99)) -> tuple[int, ...]:
        """Nearest-rank percentiles of the ring (ns); zeros when empty."""
        ring = self._rings.get(stage)
        if not ring:
            return tuple(0 for _ in qs)
        data = sorted(ring)
        n = len(data)
        return tuple(data[min(n - 1, max(0, int(q * n + 0.999999) - 1))] for q in qs)

    def summary(self) -> dict[str, dict[str, float]]:
        """stage -> {n, p50_us, p99_us} for stages with samples."""
        out: dict[str, dict[str, float]] = {}
        for s, ring in self._rings.items():
            if ring:
                p50, p99 = self.percentiles(s)
                out[s] = {
                    "n": self.counts[s],
                    "p50_us": round(p50 / 1e3, 1),
                    "p99_us": round(p99 / 1e3, 1),
                }
        return out


LAG_MAX_MS: Final = 100
_LAG_BUCKETS: Final = LAG_MAX_MS * 10


class LagHistogram:
    """How late a periodic loop timer ran (host ms), over a whole run: 0.1 ms buckets up to
    ``LAG_MAX_MS``, the rest in one overflow bucket (reported as the largest seen). Constant
    memory whatever the run's length (a soak reads p99 over hours)."""

    __slots__ = ("counts", "max_ms", "n")

    def __init__(self) -> None:
        self.counts = [0] * (_LAG_BUCKETS + 1)
        self.n = 0
        self.max_ms = 0.0

    def add(self, ms: float) -> None:
        ms = max(0.0, ms)
        self.counts[min(int(ms * 10), _LAG_BUCKETS)] += 1
        self.n += 1
        if ms > self.max_ms:
            self.max_ms = ms

    def quantile(self, q: float) -> float:
        """Nearest-rank quantile (ms, the bucket's upper edge); 0.0 when empty."""
        if not self.n:
            return 0.0
        rank = max(1, -(-int(q * self.n * 1000) // 1000))
        seen = 0
        for i, c in enumerate(self.counts):
            seen += c
            if seen >= rank:
                return self.max_ms if i == _LAG_BUCKETS else min((i + 1) / 10, self.max_ms)
        return self.max_ms

    def status(self) -> dict[str, float | int]:
        return {
            "lag_samples": self.n,
            "lag_p50_ms": round(self.quantile(0.5), 1),
            "lag_p99_ms": round(self.quantile(0.99), 1),
            "lag_max_ms": round(self.max_ms, 1),
        }


class LoopLagProbe:
    """A timer every ``interval_s`` (host seconds) on the running loop, recording into
    ``lag`` how late each one ran (for a loop without a ``StallWatch``: the simulator's)."""

    __slots__ = ("_due", "_handle", "_interval_s", "lag")

    def __init__(self, interval_s: float = 0.1) -> None:
        self._interval_s = interval_s
        self._due = 0.0
        self._handle: asyncio.TimerHandle | None = None
        self.lag = LagHistogram()

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._due = loop.time() + self._interval_s
        self._handle = loop.call_at(self._due, self._tick)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        self.lag.add((now - self._due) * 1000)
        self._due = now + self._interval_s
        self._handle = loop.call_at(self._due, self._tick)
