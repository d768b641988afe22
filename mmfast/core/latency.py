"""Per-stage latency samples: ``LatencyStats`` and the strategy's stage names ``STAGES``.

A strategy stamps each stage of its path (book received -> quote computed -> sent -> acked ->
open, fill -> requote) into a ``LatencyStats``; the status line and the run summary show the
p50/p99 of each stage. Samples are ns, kept in bounded rings (the last ``RING`` per stage).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import Final

__all__ = ["RING", "STAGES", "LatencyStats"]

# Latency stages stamped by the strategy (names as shown by the status line).
STAGES: Final = ("book>quote", "quote>send", "send>ack", "ack>open", "book>send", "fill>requote")
RING: Final = 4096  # samples kept per stage


class LatencyStats:
    """Samples (ns) per stage in bounded rings; percentiles on demand (status, summary)."""

    __slots__ = ("_rings", "counts")

    def __init__(self, stages: Iterable[str] = STAGES) -> None:
        self._rings: dict[str, deque[int]] = {s: deque(maxlen=RING) for s in stages}
        self.counts: dict[str, int] = dict.fromkeys(self._rings, 0)  # samples ever taken

    def add(self, stage: str, ns: int) -> None:
        ring = self._rings.get(stage)
        if ring is None:
            ring = self._rings[stage] = deque(maxlen=RING)
            self.counts[stage] = 0
        ring.append(max(0, ns))
        self.counts[stage] += 1

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
                out[s] = {"n": self.counts[s], "p50_us": round(p50 / 1e3, 1),
                          "p99_us": round(p99 / 1e3, 1)}
        return out
