"""Time sources: real time and scaled time keep both clocks and waits in one time base."""

from __future__ import annotations

import asyncio
import time

import pytest

from mmfast.core.timesource import REAL_TIME, ScaledTime, TimeSource


def test_protocol_conformance() -> None:
    assert isinstance(REAL_TIME, TimeSource)
    assert isinstance(ScaledTime(10.0), TimeSource)


def test_real_time_matches_machine_clocks() -> None:
    before = time.monotonic_ns()
    now = REAL_TIME.monotonic_ns()
    assert before <= now <= time.monotonic_ns()
    assert abs(REAL_TIME.wall_ms() - time.time_ns() // 1_000_000) < 1_000


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_scale_must_be_positive_finite(bad: float) -> None:
    with pytest.raises(ValueError, match="scale"):
        ScaledTime(bad)


def test_scaled_clocks_advance_together_and_faster() -> None:
    ts = ScaledTime(50.0, start_wall_ms=1_800_000_000_000, start_monotonic_ns=7)
    m0, w0, r0 = ts.monotonic_ns(), ts.wall_ms(), time.monotonic_ns()
    assert m0 >= 7 and w0 >= 1_800_000_000_000
    time.sleep(0.02)
    m1, w1, r1 = ts.monotonic_ns(), ts.wall_ms(), time.monotonic_ns()
    # Source elapsed is the real elapsed times the scale (bounded by the two real readings).
    assert (m1 - m0) >= 50 * 0.9 * 20_000_000  # at least ~0.9 s of source time in 20 ms
    assert (m1 - m0) <= 50 * (r1 - r0) + 50 * 1_000_000
    # Wall time moves with the monotonic clock. Each wall read comes a little after its
    # monotonic read, and at 50x a few real microseconds are milliseconds of source time.
    assert abs((w1 - w0) - (m1 - m0) // 1_000_000) <= 50


def test_scaled_sleep_and_call_later_wait_source_time() -> None:
    async def main() -> tuple[int, int, int]:
        ts = ScaledTime(100.0)
        t0 = ts.monotonic_ns()
        await ts.sleep(1.0)  # one source second = 10 ms real
        t1 = ts.monotonic_ns()
        fired = asyncio.get_running_loop().create_future()
        ts.call_later(0.5, lambda: fired.set_result(ts.monotonic_ns()))
        t2 = await asyncio.wait_for(fired, 5.0)
        return t0, t1, t2

    t0, t1, t2 = asyncio.run(main())
    # Never early in source time (the event loop may fire up to ~1 ms real early: 0.1 s here).
    assert t1 - t0 >= 900_000_000
    assert t2 - t1 >= 400_000_000
