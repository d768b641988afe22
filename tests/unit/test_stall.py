"""The event loop's stall watch: a stall is reported once, by whoever meets it first, in host
time whatever the time source's scale; the skew monitor drops the backlog's venue times."""

from __future__ import annotations

import asyncio
import time as _time
from typing import Any

import pytest
from test_connector_readiness import Clock as ReadinessClock

from mmfast.connector.lighter.skew import SkewMonitor
from mmfast.connector.lighter.stall import StallWatch
from mmfast.core.market_view import MarketView
from mmfast.core.timesource import ScaledTime


class Clock(ReadinessClock):
    """The readiness tests' hand-driven clock, at a chosen scale (no loop: the watch is
    driven through ``check``)."""

    def __init__(self, scale: float = 1.0) -> None:
        super().__init__()
        self.scale = scale

    def advance(self, ms: float) -> None:  # type: ignore[override]
        self.ns += int(ms * 1_000_000)
        self.wall += int(ms)


def _watch(c: Clock, stall_ms: int = 1000) -> tuple[StallWatch, list[float]]:
    seen: list[float] = []
    return StallWatch(stall_ms, seen.append, time=c, interval_ms=100), seen  # type: ignore[arg-type]


def test_reported_once_past_the_threshold_and_not_below() -> None:
    c = Clock()
    w, seen = _watch(c)
    for _ in range(30):  # a loop that runs: stamps 100 ms apart, and one 1 s late stamp
        c.advance(100)
        assert w.check(c.ns)
    c.advance(1000)
    assert w.check(c.ns) and seen == []  # exactly the threshold: a slow loop, not a stall
    c.advance(20_000)
    assert not w.check(c.ns)
    assert seen == [20_000.0] and w.stalls == 1 and w.max_stall_ms == 20_000.0
    c.advance(1)
    assert w.check(c.ns) and w.stalls == 1  # reported once: the stamp moved on
    assert w.fresh_after_ns == c.ns - 1_000_000 + 200_000_000  # two stamps after the report
    assert w.status() == {
        "stalls": 1,
        "last_stall_ms": 20000.0,
        "max_stall_ms": 20000.0,
        "lag_samples": 0,
        "lag_p50_ms": 0.0,
        "lag_p99_ms": 0.0,
        "lag_max_ms": 0.0,
    }  # no timer ran: no lag sample


def test_threshold_is_host_time_under_a_scaled_source() -> None:
    c = Clock(scale=10.0)  # 10 source seconds per host second
    w, seen = _watch(c)
    c.advance(5_000)  # 0.5 s of host time
    assert w.check(c.ns) and seen == []
    c.advance(15_000)  # 1.5 s of host time
    assert not w.check(c.ns) and seen == [1500.0]


def test_bad_settings_are_refused() -> None:
    c = Clock()
    with pytest.raises(ValueError, match="> 0"):
        StallWatch(0, print, time=c)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="quarter"):
        StallWatch(300, print, time=c, interval_ms=100)  # type: ignore[arg-type]


def test_skew_monitor_drops_the_backlog_of_a_stall() -> None:
    c = Clock()
    flips: list[tuple[bool, str]] = []
    s = SkewMonitor(1000, c, on_change=lambda a, b: flips.append((a, b)))  # type: ignore[arg-type]
    w, _ = _watch(c)
    s.watch = w
    s.sample(c.wall + 20)
    assert s.offset_ms == 20 and flips == [(False, "")]
    c.advance(20_000)  # stopped for 20 s: the window's samples are all older than 10 s
    assert not w.check(c.ns)
    for lag in (20_000, 15_000, 5_000):  # frames queued during the stop, venue times as old
        s.sample(c.wall - lag)
    assert s.dropped == 3 and not s.skewed and flips == [(False, "")]
    c.advance(250)  # past the backlog: fresh samples count again
    s.sample(c.wall + 25)
    assert s.offset_ms == 25 and not s.skewed and s.dropped == 3
    # Without the watch the same backlog reports a skew the clocks do not have.
    c2 = Clock()
    s2 = SkewMonitor(1000, c2)  # type: ignore[arg-type]
    s2.sample(c2.wall + 20)
    c2.advance(20_000)
    s2.sample(c2.wall - 20_000)
    assert s2.skewed


def test_market_view_asks_the_watch_and_the_first_caller_reports() -> None:
    c = Clock()
    w, seen = _watch(c)
    view = MarketView(0, stall=w)
    c.advance(50)
    assert view.loop_ran(c.ns)
    c.advance(3_000)
    assert not view.loop_ran(c.ns) and seen == [3050.0]  # since the last stamp
    assert view.loop_ran(c.ns + 1)  # reported once
    assert MarketView(0).loop_ran(c.ns + 10**12)  # no watch: always


def test_timer_stamps_a_running_loop_and_reports_a_blocked_one() -> None:
    """On a real loop (scaled 10x): stamps keep a running loop fresh; a callback that blocks
    the loop for 0.3 host s (over the 0.2 s threshold) is reported by the next stamp."""
    seen: list[float] = []

    async def body() -> StallWatch:
        t = ScaledTime(10.0)
        w = StallWatch(200, seen.append, time=t, interval_ms=20)
        w.start()
        await asyncio.sleep(0.25)
        assert seen == [] and w.stalls == 0
        _time.sleep(0.3)  # the loop blocked
        await asyncio.sleep(0.1)
        w.stop()
        return w

    w: Any = asyncio.run(asyncio.wait_for(body(), 10))
    assert w.stalls == 1 and 280 <= seen[0] < 2000, seen


def test_lag_histogram_quantiles_and_bounded_memory() -> None:
    from mmfast.core.latency import LAG_MAX_MS, LagHistogram

    h = LagHistogram()
    assert h.quantile(0.99) == 0.0
    for i in range(1000):  # 0.00 .. 9.99 ms
        h.add(i / 100)
    h.add(250.0)  # beyond the buckets: the overflow, reported as the largest seen
    assert h.n == 1001 and len(h.counts) == LAG_MAX_MS * 10 + 1
    assert 4.9 <= h.quantile(0.5) <= 5.1
    assert 9.8 <= h.quantile(0.99) <= 10.0
    assert h.quantile(1.0) == 250.0 and h.max_ms == 250.0
    st = h.status()
    assert st["lag_samples"] == 1001 and st["lag_max_ms"] == 250.0


def test_the_stamp_timer_records_how_late_it_ran() -> None:
    """On a real loop at time scale 4: lag samples in host ms, a blocking call among them."""

    async def go() -> dict[str, Any]:
        w = StallWatch(1000, lambda ms: None, time=ScaledTime(4.0), interval_ms=100)
        w.start()
        await asyncio.sleep(0.35)
        _time.sleep(0.15)  # blocked 150 ms: a timer (100 ms apart) falls due inside it
        await asyncio.sleep(0.35)
        w.stop()
        return w.status()

    st = asyncio.run(go())
    assert st["lag_samples"] >= 4
    assert st["lag_max_ms"] >= 40  # host ms (not source ms: 4x that)
    assert st["lag_max_ms"] < 1000
