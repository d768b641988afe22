"""The virtual-time loop: idle time is jumped, busy time stands still, equal deadlines keep
their order, thread work and loopback traffic take no simulated time; the tick clock on it."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Coroutine
from typing import Any

import pytest

from mmfast.backtest.vloop import LoopClock, LoopTime, VirtualTimeLoop


def _run(coro: Coroutine[Any, Any, Any], loop: VirtualTimeLoop | None = None) -> Any:
    loop = loop or VirtualTimeLoop()
    try:
        return loop.run_until_complete(asyncio.wait_for(coro, 10_000))
    finally:
        loop.close()


def test_an_hour_of_sleep_takes_no_real_time_and_exactly_an_hour_of_loop_time() -> None:
    loop = VirtualTimeLoop(start_s=1000.0)

    async def main() -> tuple[float, float]:
        t0 = loop.time()
        await asyncio.sleep(3600)
        t1 = loop.time()
        await asyncio.sleep(0.000_001)  # a microsecond later, exactly
        return t1 - t0, loop.now_ns() - round(t1 * 1e9)

    w0 = time.monotonic()
    slept, micro_ns = _run(main(), loop)
    assert slept == 3600.0 and micro_ns == 1000
    assert time.monotonic() - w0 < 5  # not an hour (a bound on the test, not a speed figure)


def test_busy_code_takes_no_loop_time() -> None:
    loop = VirtualTimeLoop()

    async def main() -> int:
        t0 = loop.now_ns()
        sum(range(2_000_000))  # real CPU time, no await
        await asyncio.sleep(0)
        return loop.now_ns() - t0

    assert _run(main(), loop) == 0


def test_equal_deadlines_run_in_the_order_they_were_scheduled() -> None:
    loop = VirtualTimeLoop()
    order: list[str] = []

    async def main() -> None:
        when = loop.time() + 1.0
        for name in "abcdefghij":
            loop.call_at(when, order.append, name)
            loop.call_at(when - 0.5 + len(order) * 1e-3, lambda: None)  # others in the heap
        await asyncio.sleep(2)

    _run(main(), loop)
    assert order == list("abcdefghij")


def test_thread_work_takes_no_loop_time() -> None:
    loop = VirtualTimeLoop()
    fired: list[float] = []

    def job() -> float:
        time.sleep(0.2)  # real time in a thread
        return 42.0

    async def main() -> tuple[float, float]:
        t0 = loop.time()
        loop.call_later(0.05, lambda: fired.append(loop.time() - t0))  # due 50 ms later
        r = await loop.run_in_executor(None, job)
        return r, loop.time() - t0

    result, took = _run(main(), loop)
    assert (result, took) == (42.0, 0.0)  # the result came at the time it was asked for
    assert fired == []  # the 50 ms timer did not jump ahead of the thread's result


def test_loopback_round_trips_take_no_loop_time() -> None:
    loop = VirtualTimeLoop()

    async def main() -> tuple[list[bytes], int]:
        async def echo(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            while data := await r.readline():
                w.write(data)
                await w.drain()
            w.close()

        server = await asyncio.start_server(echo, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        r, w = await asyncio.open_connection("127.0.0.1", port)
        t0 = loop.now_ns()
        got = []
        for i in range(200):
            await asyncio.sleep(0.01)  # 10 ms of loop time between round trips
            w.write(b"%d\n" % i)
            got.append(await r.readline())
        took = loop.now_ns() - t0
        w.close()
        server.close()
        await server.wait_closed()
        return got, took

    got, took = _run(main(), loop)
    assert got == [b"%d\n" % i for i in range(200)]
    assert took == 200 * 10_000_000  # the sleeps, and nothing for the 200 round trips


def test_loop_time_source() -> None:
    loop = VirtualTimeLoop()
    lt = LoopTime(loop, start_wall_ms=1_790_000_000_000)
    assert lt.scale == 1.0 and lt.virtual

    async def main() -> tuple[int, int, int]:
        m0 = lt.monotonic_ns()
        await lt.sleep(2.5)
        fired: list[int] = []
        lt.call_later(0.25, lambda: fired.append(lt.monotonic_ns()))
        await asyncio.sleep(1)
        return lt.monotonic_ns() - m0, lt.wall_ms(), fired[0] - m0

    elapsed, wall, fired = _run(main(), loop)
    assert elapsed == 3_500_000_000
    assert wall == 1_790_000_000_000 + 3500
    assert fired == 2_750_000_000


def test_the_tick_clock_runs_on_the_loop() -> None:
    loop = VirtualTimeLoop()
    lt = LoopTime(loop, start_wall_ms=1_790_000_000_000)
    ticks: list[tuple[int, int]] = []
    timers: list[tuple[str, int]] = []

    async def main() -> tuple[int, bool]:
        clock = LoopClock.make(lt)(100.0)
        t0 = lt.monotonic_ns()

        async def on_tick(now_ms: int) -> None:
            ticks.append((now_ms, lt.monotonic_ns() - t0))
            await asyncio.sleep(0.01)  # a tick's await: the next one still lands on its grid

        clock.add_iterator(on_tick)
        clock.call_later(10, lambda: timers.append(("early", lt.monotonic_ns() - t0)))
        await asyncio.sleep(0.03)  # the clock made earlier than its start: it catches up
        clock.start()
        start = lt.monotonic_ns()
        clock.call_later(250, lambda: timers.append(("t250", lt.monotonic_ns() - start)))
        await asyncio.sleep(0.5)
        clock.call_later(0, lambda: timers.append(("t0", lt.monotonic_ns() - start)))
        await asyncio.sleep(0.001)
        clock.stop()
        clean = await clock.wait_stopped(1.0)
        return clock.tick_count, clean

    n, clean = _run(main(), loop)
    assert clean and n == 6  # ticks at 0, 100, ..., 500 ms after the start
    t_start = ticks[0][1]
    assert [t for _, t in ticks] == [t_start + k * 100_000_000 for k in range(6)]
    assert ticks[1][0] - ticks[0][0] == 100  # now_ms = the tick's deadline
    # A timer set before the start fired at its own time (10 ms), from the loop's timer.
    assert timers == [("early", 10_000_000), ("t250", 250_000_000), ("t0", 500_000_000)]


def test_pace_bounds() -> None:
    with pytest.raises(ValueError, match="pace"):
        VirtualTimeLoop(pace=0)
    assert threading.active_count() >= 1
