"""mmfast._core.clock: manual mode (exact) and realtime mode on asyncio and uvloop."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
import warnings
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
import uvloop
from hypothesis import given, settings
from hypothesis import strategies as st

from mmfast._core.clock import LATENESS_RING, Clock, Timer, monotonic_ns, wall_ms

MS = 1_000_000

LOOPS: dict[str, Callable[[Coroutine[Any, Any, Any]], Any]] = {
    "asyncio": asyncio.run,
    "uvloop": uvloop.run,
}


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coro)


@pytest.fixture(params=sorted(LOOPS))
def run_on(request: pytest.FixtureRequest) -> Callable[[Coroutine[Any, Any, Any]], Any]:
    runner = LOOPS[request.param]

    def _run(coro: Coroutine[Any, Any, Any]) -> Any:
        # Bounded: a broken scheduler fails the test instead of hanging the suite.
        async def bounded() -> Any:
            return await asyncio.wait_for(coro, timeout=10.0)

        return runner(bounded())

    return _run


# --- module functions -----------------------------------------------------------------------


def test_monotonic_ns_is_clock_monotonic() -> None:
    a = time.monotonic_ns()
    b = monotonic_ns()
    c = time.monotonic_ns()
    assert a <= b <= c


def test_wall_ms_is_epoch_ms() -> None:
    a = time.time_ns() // MS
    b = wall_ms()
    c = time.time_ns() // MS
    assert a <= b <= c


# --- construction -------------------------------------------------------------------------


def test_interval_and_start_validation() -> None:
    assert Clock(1000).interval_ns == 1000 * MS
    assert Clock(0.5).interval_ns == 500_000
    for bad in (0, -1, float("nan")):
        with pytest.raises(ValueError):
            Clock(bad)
    with pytest.raises(ValueError):
        Clock(10, manual=True, start_ns=-1)
    with pytest.raises(ValueError):
        Clock(10, start_ns=5)  # start_ns is manual-only
    with pytest.raises(ValueError):
        Clock(10, lead_ns=-1)


def test_manual_now_starts_at_start_ns() -> None:
    c = Clock(10, manual=True, start_ns=5 * MS)
    assert c.now_ns() == 5 * MS
    assert c.now_ms() == 5
    assert not c.running
    assert c.last_deadline_ns == -1


def test_iterator_registration_rules() -> None:
    c = Clock(10, manual=True)

    def f(now_ms: int) -> None:
        pass

    c.add_iterator(f)
    with pytest.raises(ValueError):
        c.add_iterator(f)
    with pytest.raises(TypeError):
        c.add_iterator(42)  # type: ignore[arg-type]
    assert c.iterators == (f,)
    c.remove_iterator(f)
    assert c.iterators == ()
    with pytest.raises(ValueError):
        c.remove_iterator(f)


# --- manual mode ----------------------------------------------------------------------------


def test_manual_ticks_in_registration_order_with_deadline_ms() -> None:
    c = Clock(100, manual=True, start_ns=1_000 * MS)
    seen: list[tuple[str, int, int]] = []
    c.add_iterator(lambda ms: seen.append(("a", ms, c.now_ns())))
    c.add_iterator(lambda ms: seen.append(("b", ms, c.now_ns())))
    c.start()
    run(c.advance(250))
    assert seen == [
        ("a", 1000, 1000 * MS),
        ("b", 1000, 1000 * MS),
        ("a", 1100, 1100 * MS),
        ("b", 1100, 1100 * MS),
        ("a", 1200, 1200 * MS),
        ("b", 1200, 1200 * MS),
    ]
    assert c.now_ns() == 1250 * MS
    assert c.tick_count == 3
    assert c.start_ns == 1000 * MS
    assert c.last_deadline_ns == 1200 * MS


def test_manual_awaitable_awaited_before_next_iterator() -> None:
    c = Clock(10, manual=True)
    order: list[str] = []

    async def slow(now_ms: int) -> None:
        order.append(f"slow-begin@{now_ms}")
        for _ in range(3):
            await asyncio.sleep(0)
        order.append(f"slow-end@{now_ms}")

    c.add_iterator(slow)
    c.add_iterator(lambda ms: order.append(f"sync@{ms}"))
    c.start()
    run(c.advance(10))
    assert order == [
        "slow-begin@0",
        "slow-end@0",
        "sync@0",
        "slow-begin@10",
        "slow-end@10",
        "sync@10",
    ]


def test_manual_advance_across_many_intervals() -> None:
    c = Clock(7, manual=True)
    ticks: list[int] = []
    c.add_iterator(ticks.append)
    c.start()
    run(c.advance(1000))
    assert ticks == list(range(0, 1001, 7))
    assert c.tick_count == len(ticks) == 143
    assert c.missed_ticks == 0
    # Advancing in odd steps lands on the same grid: deadlines never drift.
    run(c.advance_ns(3 * MS + 1))
    run(c.advance_ns(3 * MS))
    run(c.advance_ns(16 * MS))  # now 1022 ms + 1 ns
    assert ticks[143:] == [1001, 1008, 1015, 1022]


def test_manual_fractional_interval_deadlines_exact() -> None:
    c = Clock(0.3, manual=True)  # 300_000 ns
    deadlines: list[int] = []
    c.add_iterator(lambda ms: deadlines.append(c.last_deadline_ns))
    c.start()
    run(c.advance_ns(3 * MS))
    assert deadlines == [k * 300_000 for k in range(11)]


def test_manual_timers_fire_in_deadline_order_with_fifo_ties() -> None:
    c = Clock(1000, manual=True)
    fired: list[tuple[str, int]] = []

    def rec(name: str) -> None:
        fired.append((name, c.now_ns()))

    c.call_later(30, rec, "t30")
    c.call_later(10, rec, "t10a")
    c.call_later(20, rec, "t20")
    c.call_later(10, rec, "t10b")
    cancelled = c.call_later(15, rec, "t15")
    assert isinstance(cancelled, Timer)
    assert c.pending_timers == 5
    cancelled.cancel()
    cancelled.cancel()  # idempotent
    assert cancelled.cancelled and not cancelled.fired and not cancelled.pending
    assert c.pending_timers == 4
    run(c.advance(25))
    assert fired == [("t10a", 10 * MS), ("t10b", 10 * MS), ("t20", 20 * MS)]
    run(c.advance(5))
    assert fired[-1] == ("t30", 30 * MS)
    assert c.pending_timers == 0


def test_manual_timer_args_and_timer_state() -> None:
    c = Clock(1000, manual=True)
    got: list[tuple[int, str]] = []
    t = c.call_later(5, lambda a, b: got.append((a, b)), 1, "x")
    assert t.deadline_ns == 5 * MS and t.pending
    run(c.advance(5))
    assert got == [(1, "x")]
    assert t.fired and not t.pending
    t.cancel()  # after firing: no effect
    assert not t.cancelled


def test_manual_timers_before_tick_at_equal_deadline() -> None:
    c = Clock(50, manual=True)
    events: list[str] = []
    c.add_iterator(lambda ms: events.append(f"tick@{ms}"))
    c.start()
    c.call_later(50, lambda: events.append("timer@50"))
    run(c.advance(50))
    assert events == ["tick@0", "timer@50", "tick@50"]


def test_manual_timer_scheduled_from_tick_runs_within_same_advance() -> None:
    c = Clock(100, manual=True)
    events: list[tuple[str, int]] = []

    def it(now_ms: int) -> None:
        events.append(("tick", now_ms))
        if now_ms == 0:
            c.call_later(30, lambda: events.append(("check", c.now_ms())))

    c.add_iterator(it)
    c.start()
    run(c.advance(100))
    assert events == [("tick", 0), ("check", 30), ("tick", 100)]


def test_manual_many_timers_with_cancellations_keep_order() -> None:
    # Deterministic pseudo-random delays; every other timer cancelled (exercises heap compaction).
    c = Clock(1000, manual=True)
    fired: list[int] = []
    timers = []
    x = 12345
    for i in range(400):
        x = (x * 1103515245 + 12345) % (1 << 31)
        delay = x % 997
        timers.append((delay, i, c.call_later(delay, fired.append, i)))
    for _delay, i, t in timers:
        if i % 2:
            t.cancel()
    run(c.advance(1000))
    expected = [i for delay, i, _ in sorted(timers) if i % 2 == 0]
    assert fired == expected
    assert c.pending_timers == 0


def test_manual_exceptions_isolated_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    c = Clock(10, manual=True)
    seen: list[str] = []

    def bad(now_ms: int) -> None:
        raise ValueError("boom")

    async def bad_async(now_ms: int) -> None:
        await asyncio.sleep(0)
        raise KeyError("async boom")

    c.add_iterator(bad)
    c.add_iterator(bad_async)
    c.add_iterator(lambda ms: seen.append(f"ok@{ms}"))
    c.call_later(5, lambda: 1 / 0)
    c.call_later(6, lambda: seen.append("timer-ok"))
    c.start()
    with caplog.at_level(logging.ERROR, logger="mmfast.clock"):
        run(c.advance(20))
    assert seen == ["ok@0", "timer-ok", "ok@10", "ok@20"]
    assert c.iterator_errors == 6
    assert c.timer_errors == 1
    assert c.running
    msgs = [r for r in caplog.records if r.name == "mmfast.clock"]
    assert len(msgs) == 7
    assert any("boom" in r.exc_text for r in msgs if r.exc_text)


def test_manual_non_awaitable_result_counts_as_error() -> None:
    c = Clock(10, manual=True)
    c.add_iterator(lambda ms: 42)
    c.start()
    run(c.advance(0))
    assert c.iterator_errors == 1


def test_timer_returning_coroutine_is_closed_and_counted() -> None:
    c = Clock(10, manual=True)

    async def not_allowed() -> None:
        pass

    c.call_later(1, not_allowed)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run(c.advance(1))
        gc.collect()
    assert c.timer_errors == 1
    assert not [w for w in caught if "never awaited" in str(w.message)]


def test_manual_reentrant_advance_is_an_error() -> None:
    c = Clock(10, manual=True)

    async def reenter(now_ms: int) -> None:
        await c.advance(1)

    c.add_iterator(reenter)
    c.start()
    run(c.advance(0))
    assert c.iterator_errors == 1  # RuntimeError raised inside the iterator, logged and counted


def test_manual_advance_rejects_negative_and_realtime() -> None:
    with pytest.raises(ValueError):
        run(Clock(10, manual=True).advance_ns(-1))
    with pytest.raises(RuntimeError):
        run(Clock(10).advance(1))


def test_manual_start_twice_is_an_error_and_stop_halts() -> None:
    c = Clock(10, manual=True)
    ticks: list[int] = []
    c.add_iterator(ticks.append)
    c.start()
    with pytest.raises(RuntimeError):
        c.start()
    run(c.advance(20))
    assert ticks == [0, 10, 20]
    t = c.call_later(5, ticks.append, -1)
    c.stop()
    c.stop()  # idempotent
    assert not c.running
    assert t.cancelled
    run(c.advance(100))
    assert ticks == [0, 10, 20]
    assert c.now_ms() == 120
    # Restart re-anchors the grid at the current time.
    c.start()
    run(c.advance(15))
    assert ticks == [0, 10, 20, 120, 130]


def test_manual_wait_stopped() -> None:
    c = Clock(10, manual=True)
    c.start()
    with pytest.raises(RuntimeError):
        run(c.wait_stopped())
    c.stop()
    assert run(c.wait_stopped()) is True


def test_iterator_changes_during_tick_apply_next_tick() -> None:
    c = Clock(10, manual=True)
    seen: list[str] = []

    def late(now_ms: int) -> None:
        seen.append(f"late@{now_ms}")

    def first(now_ms: int) -> None:
        seen.append(f"first@{now_ms}")
        if now_ms == 0:
            c.add_iterator(late)
        if now_ms == 10:
            c.remove_iterator(first)

    c.add_iterator(first)
    c.start()
    run(c.advance(20))
    assert seen == ["first@0", "first@10", "late@10", "late@20"]


def test_stop_from_inside_a_tick() -> None:
    c = Clock(10, manual=True)
    ticks: list[int] = []

    def it(now_ms: int) -> None:
        ticks.append(now_ms)
        if now_ms == 20:
            c.stop()

    c.add_iterator(it)
    c.start()
    run(c.advance(100))
    assert ticks == [0, 10, 20]
    assert not c.running


# --- realtime mode --------------------------------------------------------------------------


def test_realtime_start_needs_running_loop() -> None:
    c = Clock(10)
    with pytest.raises(RuntimeError):
        c.start()
    with pytest.raises(RuntimeError):
        c.call_later(1, print)


def test_realtime_ticks_on_drift_free_grid(run_on: Callable[..., Any]) -> None:
    interval_ms = 20
    n = 10

    async def main() -> tuple[Clock, list[tuple[int, int, int]]]:
        c = Clock(interval_ms)
        done = asyncio.get_running_loop().create_future()
        fires: list[tuple[int, int, int]] = []

        async def it(now_ms: int) -> None:
            fires.append((monotonic_ns(), c.last_deadline_ns, now_ms))
            await asyncio.sleep(0)
            if len(fires) == n and not done.done():
                done.set_result(None)

        c.add_iterator(it)
        c.start()
        with pytest.raises(RuntimeError):
            c.start()  # start twice: an error
        await done
        c.stop()
        assert await c.wait_stopped() is True
        return c, fires

    c, fires = run_on(main())
    interval_ns = interval_ms * MS
    assert c.tick_count == n
    assert not c.running
    deadlines = [d for _, d, _ in fires]
    # Every deadline sits exactly on the grid start + k * interval; skipped grid points (a busy
    # machine) are exactly the ones counted in missed_ticks.
    ks = [(d - c.start_ns) // interval_ns for d in deadlines]
    assert all(d == c.start_ns + k * interval_ns for d, k in zip(deadlines, ks, strict=True))
    assert ks[0] == 0
    assert ks == sorted(set(ks))
    assert ks[-1] + 1 == c.tick_count + c.missed_ticks
    # Nothing fires before its deadline; now_ms is the deadline in whole ms.
    for fire, d, now_ms in fires:
        assert fire >= d
        assert now_ms == d // MS
    lateness = c.tick_lateness_ns()
    assert len(lateness) == n == c.lateness_recorded
    assert all(0 <= x < interval_ns for x in lateness)
    c.reset_lateness()
    assert c.tick_lateness_ns() == []


def test_lead_is_capped_at_a_tenth_of_the_interval() -> None:
    assert Clock(1000).lead_ns == 1_000_000  # default
    assert Clock(5).lead_ns == 500_000
    assert Clock(1000, lead_ns=0).lead_ns == 0
    assert Clock(1000, lead_ns=300_000).lead_ns == 300_000


@pytest.mark.parametrize("lead_ns", [0, 1_000_000], ids=["lead0", "lead1ms"])
def test_realtime_lead_keeps_deadlines(run_on: Callable[..., Any], lead_ns: int) -> None:
    # With or without the lead-time yields, ticks run on the grid and never before the deadline.
    async def main() -> tuple[Clock, list[tuple[int, int]]]:
        c = Clock(12, lead_ns=lead_ns)
        fires: list[tuple[int, int]] = []
        c.add_iterator(lambda ms: fires.append((monotonic_ns(), c.last_deadline_ns)))
        c.start()
        while c.tick_count < 5:
            await asyncio.sleep(0.005)
        c.stop()
        await c.wait_stopped()
        return c, fires

    c, fires = run_on(main())
    assert len(fires) >= 5
    assert all(f >= d and (d - c.start_ns) % c.interval_ns == 0 for f, d in fires)
    assert all(0 <= x < c.interval_ns for x in c.tick_lateness_ns())


def test_realtime_timers_in_due_order_never_early(run_on: Callable[..., Any]) -> None:
    async def main() -> list[tuple[int, int, int]]:
        c = Clock(1000)
        fired: list[tuple[int, int, int]] = []
        done = asyncio.get_running_loop().create_future()
        timers: dict[int, Timer] = {}

        def cb(i: int) -> None:
            fired.append((i, monotonic_ns(), timers[i].deadline_ns))
            if len(fired) == 5 and not done.done():
                done.set_result(None)

        for i, delay in enumerate([9.0, 3.0, 6.5, 1.0, 12.0, 4.0]):
            timers[i] = c.call_later(delay, cb, i)
        timers[5].cancel()
        await done
        await asyncio.sleep(0.01)  # the cancelled one (4 ms) would have fired by now
        assert c.pending_timers == 0
        return fired

    fired = run_on(main())
    assert [i for i, _, _ in fired] == [3, 1, 2, 0, 4]
    assert all(now >= deadline for _, now, deadline in fired)


def test_realtime_stop_halts_ticking_and_timers(run_on: Callable[..., Any]) -> None:
    async def main() -> tuple[int, int, list[str]]:
        c = Clock(10)
        hits: list[str] = []
        c.add_iterator(lambda ms: hits.append("tick"))
        c.start()
        while c.tick_count < 3:
            await asyncio.sleep(0.005)
        t = c.call_later(15, hits.append, "timer")
        c.stop()
        assert await c.wait_stopped() is True
        after_stop = c.tick_count
        await asyncio.sleep(0.05)  # five intervals
        assert t.cancelled
        return after_stop, c.tick_count, hits

    after_stop, final, hits = run_on(main())
    assert after_stop == final >= 3
    assert "timer" not in hits


def test_realtime_restart_after_stop(run_on: Callable[..., Any]) -> None:
    async def main() -> tuple[int, int, int]:
        c = Clock(10)
        c.add_iterator(lambda ms: None)
        c.start()
        first_start = c.start_ns
        await asyncio.sleep(0.015)
        c.stop()
        await c.wait_stopped()
        c.start()
        second_start = c.start_ns
        await asyncio.sleep(0.015)
        c.stop()
        await c.wait_stopped()
        return first_start, second_start, c.tick_count

    first, second, ticks = run_on(main())
    assert second > first
    assert ticks >= 2


def test_realtime_missed_ticks_skipped_not_burst(run_on: Callable[..., Any]) -> None:
    interval_ms = 10

    async def main() -> tuple[Clock, list[int]]:
        c = Clock(interval_ms)
        deadlines: list[int] = []

        def it(now_ms: int) -> None:
            deadlines.append(c.last_deadline_ns)
            if len(deadlines) == 1:
                time.sleep(3.5 * interval_ms / 1000)  # block the loop for 3.5 intervals

        c.add_iterator(it)
        c.start()
        while c.tick_count < 3:
            await asyncio.sleep(0.005)
        c.stop()
        await c.wait_stopped()
        return c, deadlines

    c, deadlines = run_on(main())
    interval_ns = interval_ms * MS
    ks = [(d - c.start_ns) // interval_ns for d in deadlines]
    assert ks[0] == 0
    assert ks[1] >= 3  # grid points 1 and 2 were skipped, not run late in a burst
    assert c.missed_ticks >= 2
    assert ks[-1] + 1 == c.tick_count + c.missed_ticks
    assert all(0 <= x < interval_ns for x in c.tick_lateness_ns())


def test_realtime_iterator_errors_isolated(run_on: Callable[..., Any]) -> None:
    async def main() -> tuple[Clock, list[int]]:
        c = Clock(5)
        ok: list[int] = []

        def bad(now_ms: int) -> None:
            raise RuntimeError("tick failure")

        c.add_iterator(bad)
        c.add_iterator(ok.append)
        c.start()
        while c.tick_count < 3:
            await asyncio.sleep(0.005)
        c.stop()
        await c.wait_stopped()
        return c, ok

    c, ok = run_on(main())
    assert len(ok) == c.tick_count
    assert c.iterator_errors == c.tick_count


def test_realtime_wait_stopped_timeout_cancels_hung_tick(run_on: Callable[..., Any]) -> None:
    async def main() -> tuple[bool, bool, bool]:
        c = Clock(10)
        entered = asyncio.Event()
        cancelled = []

        async def hang(now_ms: int) -> None:
            entered.set()
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                cancelled.append(True)
                raise

        c.add_iterator(hang)
        c.start()
        await entered.wait()
        c.stop()
        clean = await c.wait_stopped(timeout_s=0.02)
        return clean, bool(cancelled), c.running

    clean, was_cancelled, running = run_on(main())
    assert clean is False
    assert was_cancelled
    assert running is False


def test_realtime_stop_from_inside_tick(run_on: Callable[..., Any]) -> None:
    async def main() -> tuple[int, bool]:
        c = Clock(5)
        results: list[bool] = []

        async def it(now_ms: int) -> None:
            if c.tick_count == 2:
                c.stop()
                results.append(await c.wait_stopped())

        c.add_iterator(it)
        c.start()
        while c.running:
            await asyncio.sleep(0.005)
        await asyncio.sleep(0.02)
        assert await c.wait_stopped() is True
        return c.tick_count, results[0]

    ticks, inner = run_on(main())
    assert ticks == 2
    assert inner is True


def test_lateness_ring_keeps_last_entries(run_on: Callable[..., Any]) -> None:
    # A short interval so the ring wraps quickly; the clock never records negative lateness.
    async def main() -> Clock:
        c = Clock(0.05)
        c.add_iterator(lambda ms: None)
        c.start()
        while c.lateness_recorded <= LATENESS_RING + 10:
            await asyncio.sleep(0.01)
        c.stop()
        await c.wait_stopped()
        return c

    c = run_on(main())
    lat = c.tick_lateness_ns()
    assert len(lat) == LATENESS_RING
    assert c.lateness_recorded > LATENESS_RING
    assert all(0 <= x < c.interval_ns for x in lat)


def test_realtime_timers_follow_the_callers_loop() -> None:
    # Timers armed on a loop that has since finished are void; a new loop gets fresh timers.
    c = Clock(1000)
    fired: list[str] = []

    async def arm_and_leave() -> None:
        c.call_later(50, fired.append, "old")

    asyncio.run(arm_and_leave())

    async def second() -> None:
        done = asyncio.get_running_loop().create_future()
        c.call_later(1, done.set_result, None)
        await done

    asyncio.run(asyncio.wait_for(second(), 5.0))
    assert fired == []
    assert c.pending_timers == 0


# --- manual mode against a pure-Python reference model ---------------------------------------

_ops = st.lists(
    st.one_of(
        st.tuples(st.just("timer"), st.integers(0, 200)),
        st.tuples(st.just("cancel"), st.integers(0, 50)),
        st.tuples(st.just("advance"), st.integers(0, 120)),
    ),
    max_size=40,
)


@settings(derandomize=True, max_examples=150, deadline=None)
@given(interval_ms=st.integers(1, 60), ops=_ops)
def test_manual_mode_matches_reference_model(interval_ms: int, ops: list[tuple[str, int]]) -> None:
    # Reference: at each advance, every live timer and grid tick due up to the target, sorted by
    # (deadline, timers before ticks, creation order).
    interval = interval_ms * MS
    c = Clock(interval_ms, manual=True)
    got: list[tuple[str, int, int]] = []
    c.add_iterator(lambda ms: got.append(("tick", c.last_deadline_ns, -1)))
    c.start()
    timers: list[Timer] = []
    model_timers: list[list[int]] = []  # [deadline, seq, alive]
    now = 0
    next_tick = 0
    want: list[tuple[str, int, int]] = []
    for op, arg in ops:
        if op == "timer":
            seq = len(timers)
            timers.append(c.call_later(arg, lambda s=seq: got.append(("timer", c.now_ns(), s))))
            model_timers.append([now + arg * MS, seq, 1])
        elif op == "cancel" and timers:
            i = arg % len(timers)
            timers[i].cancel()
            model_timers[i][2] = 0
        elif op == "advance":
            target = now + arg * MS
            due: list[tuple[int, int, int]] = []
            for t in model_timers:
                if t[2] and t[0] <= target:
                    due.append((t[0], 0, t[1]))
                    t[2] = 0
            while next_tick <= target:
                due.append((next_tick, 1, -1))
                next_tick += interval
            want.extend(("timer" if k == 0 else "tick", d, s) for d, k, s in sorted(due))
            run(c.advance(arg))
            now = target
            assert c.now_ns() == now
    assert got == want
    assert c.pending_timers == sum(t[2] for t in model_timers)


def test_uninitialised_clock_refuses_to_start() -> None:
    c = Clock.__new__(Clock)
    with pytest.raises(RuntimeError):
        c.start()
