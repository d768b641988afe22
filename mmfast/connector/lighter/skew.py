"""Clock skew between the venue and this machine, from venue timestamps.

Each sample is ``venue_ms - local_wall_ms`` at receipt. Transport delay only makes a sample
lower than the true offset, so the estimate is the highest sample in a recent window (the least
delayed one). Above ``max_skew_ms`` the connector is not ready. ``venue_now_ms()`` is local wall
time corrected by the estimate: auth-token deadlines and order expiries are computed from it, so
they stay within the venue's bounds even when the local clock is off.

After a stall of this process (``StallWatch``) the sockets hand over frames queued while it did
not run: their venue times are as old as the stall, so the samples taken until the watch's
``fresh_after_ns`` are dropped (they would report a skew the clocks do not have).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING

from mmfast.core.timesource import REAL_TIME, TimeSource

if TYPE_CHECKING:
    from mmfast.connector.lighter.stall import StallWatch

__all__ = ["SkewMonitor"]


class SkewMonitor:
    """Estimates ``venue - local`` wall-clock offset; reports when it crosses the threshold."""

    __slots__ = (
        "_coarse",
        "_fine",
        "_on_change",
        "_skewed",
        "_time",
        "_window_ns",
        "dropped",
        "max_skew_ms",
        "samples",
        "watch",
    )

    def __init__(
        self,
        max_skew_ms: int,
        time: TimeSource = REAL_TIME,
        *,
        window_s: float = 10.0,
        on_change: Callable[[bool, str], object] | None = None,
    ) -> None:
        self.max_skew_ms = max_skew_ms  # not ready above this |offset|
        self._time = time  # local clocks
        self._window_ns = int(window_s * 1e9)  # samples kept this long
        self._fine: deque[tuple[int, int]] = deque()  # (local mono ns, offset ms) from frames
        self._coarse: int | None = None  # offset from an HTTP Date header (1 s resolution)
        self._skewed: bool | None = None  # last reported state (None before any sample)
        self._on_change = on_change  # called (skewed, reason) when the state flips
        self.samples = 0  # samples taken
        self.dropped = 0  # samples dropped as a stall's backlog
        self.watch: StallWatch | None = None  # the loop's stall watch (None: no stalls known)

    def sample(self, venue_ms: int, local_wall_ms: int | None = None) -> None:
        """A venue timestamp (epoch ms) just received."""
        now = self._time.monotonic_ns()
        watch = self.watch
        if watch is not None and now < watch.fresh_after_ns:
            self.dropped += 1
            return
        local = self._time.wall_ms() if local_wall_ms is None else local_wall_ms
        fine = self._fine
        fine.append((now, venue_ms - local))
        edge = now - self._window_ns
        while len(fine) > 1 and fine[0][0] < edge:
            fine.popleft()
        self.samples += 1
        self._update()

    def sample_http_date(self, date_header: str, sent_wall_ms: int, recv_wall_ms: int) -> None:
        """An HTTP ``Date`` header (whole seconds): a coarse sample, used until frames come."""
        try:
            venue_s = parsedate_to_datetime(date_header).timestamp()
        except (TypeError, ValueError, IndexError):
            return
        # The server's second [D, D+1): take its middle against the middle of the round trip.
        self._coarse = int(venue_s * 1000 + 500 - (sent_wall_ms + recv_wall_ms) / 2)
        self.samples += 1
        self._update()

    @property
    def offset_ms(self) -> int | None:
        """Estimated venue minus local wall time in ms (None before any sample)."""
        if self._fine:
            return max(o for _, o in self._fine)
        return self._coarse

    @property
    def skewed(self) -> bool:
        """Above the threshold (False before any sample)."""
        return bool(self._skewed)

    def reason(self) -> str:
        off = self.offset_ms
        return f"clock skew {off} ms exceeds {self.max_skew_ms} ms" if self._skewed else ""

    def venue_now_ms(self) -> int:
        """Local wall time corrected to the venue's clock."""
        return self._time.wall_ms() + (self.offset_ms or 0)

    def venue_now_s(self) -> float:
        return self.venue_now_ms() / 1000.0

    def expiry_ms(
        self,
        lifetime_ms: int,
        min_ms: int = 5 * 60_000,
        max_ms: int = 30 * 86_400_000,
        margin_ms: int = 10_000,
    ) -> int:
        """An order expiry ``lifetime_ms`` from now in venue time, kept inside the venue's window
        [now + min, now + max] with ``margin_ms`` of slack at both ends."""
        life = min(max(lifetime_ms, min_ms + margin_ms), max_ms - margin_ms)
        return self.venue_now_ms() + life

    def _update(self) -> None:
        off = self.offset_ms
        if off is None:
            return
        skewed = abs(off) > self.max_skew_ms
        if skewed is not self._skewed:
            self._skewed = skewed
            if self._on_change is not None:
                self._on_change(skewed, self.reason())
