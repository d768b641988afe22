"""Virtual time for a backtest: an event loop whose clock jumps to its next timer when idle.

``VirtualTimeLoop`` is the stdlib selector loop with its own clock. Time stands still while
anything is ready to run (callbacks, readable or writable sockets, a thread's result on its
way back through ``run_in_executor``) and jumps to the next timer's deadline when nothing is:
the code on the loop takes no simulated time, and the idle gaps between events take no real
time. Every socket of a backtest is loopback inside this process (the bot and the simulator
share the loop), so a byte written is readable at once: "nothing readable" really means
"nothing in flight". The run is then a pure function of its inputs: the same tape, config
and seed give the same sequence of callbacks at the same simulated times.

- ``LoopTime`` is the ``TimeSource`` (mmfast.core.timesource) that reads this clock: the bot
  and the simulator both get it, so the venue's timestamps and the bot's agree.
- ``LoopClock`` is the tick scheduler of the trading core (``mmfast._core.clock.Clock``, in
  its manual mode) moved forward by the loop, for ``TradingCore(clock_factory=...)``: the
  realtime Clock reads CLOCK_MONOTONIC, which a virtual clock does not move.

uvloop cannot be given another clock, hence the stdlib loop (docs/backtest.md).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import heapq
import math
import selectors
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, TypeVarTuple, Unpack

from mmfast._core.clock import Clock, Timer

__all__ = ["LoopClock", "LoopTime", "VirtualTimeLoop"]

_T = TypeVar("_T")
_Ts = TypeVarTuple("_Ts")

_NS = 1_000_000_000
_PACE_SLACK_NS = 250_000_000  # how far behind a paced run may be before it starts again


class _IdleJumpSelector(selectors.BaseSelector):
    """A real selector whose blocking ``select`` becomes a jump of the loop's clock.

    ``select(timeout)`` polls the real selector without waiting first; only when nothing is
    ready does it either wait for real (thread work in flight, or no timer at all) or move
    the loop's clock by ``timeout`` (the time to the next timer) and return nothing, so the
    loop runs that timer at once.
    """

    def __init__(self, loop: VirtualTimeLoop, real: selectors.BaseSelector) -> None:
        self._loop = loop
        self._real = real

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._real.register(fileobj, events, data)

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        return self._real.unregister(fileobj)

    def modify(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._real.modify(fileobj, events, data)

    def get_key(self, fileobj: Any) -> selectors.SelectorKey:
        return self._real.get_key(fileobj)

    def get_map(self) -> Any:
        return self._real.get_map()

    def close(self) -> None:
        self._real.close()

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        events = self._real.select(0)
        if events or timeout == 0:
            return events
        loop = self._loop
        if loop._threads or timeout is None:
            # A thread's result is on its way (it takes no simulated time: wait for it in real
            # time), or there is no timer at all (only a signal or another thread can wake
            # the loop). Bounded, so a stuck thread shows up as a loop that keeps turning.
            return self._real.select(1.0)
        wait = loop._pace_wait()
        if wait > 0:
            # Paced: the next timer's simulated time is not due in real time yet. Only the
            # outside (a signal) can bring events meanwhile; the clock does not move for them.
            events = self._real.select(min(wait, 1.0))
            if events or wait > 1.0:
                return events
        loop._jump_to_next_timer()
        return []


class _OrderedTimer(asyncio.TimerHandle):
    """A timer that, at an equal deadline, runs after the ones scheduled before it.

    The stdlib orders timers by deadline only, so equal deadlines come off its heap in an
    order that depends on everything else in the heap, including timers a library sets on
    the host's clock (picows' keepalive): in virtual time equal deadlines are common (a tick
    and a tape event on the same millisecond), and their order must not depend on that."""

    __slots__ = ("_seq",)

    def __init__(
        self,
        when: float,
        callback: Callable[..., Any],
        args: tuple[Any, ...],
        loop: asyncio.AbstractEventLoop,
        context: Any,
        seq: int,
    ) -> None:
        super().__init__(when, callback, args, loop, context)
        self._seq = seq

    def __lt__(self, other: object) -> bool:
        if isinstance(other, _OrderedTimer):
            return (self.when(), self._seq) < (other.when(), other._seq)
        return super().__lt__(other)  # type: ignore[operator]

    def __le__(self, other: object) -> bool:
        if isinstance(other, _OrderedTimer):
            return (self.when(), self._seq) <= (other.when(), other._seq)
        return super().__le__(other)  # type: ignore[operator]

    def __gt__(self, other: object) -> bool:
        if isinstance(other, _OrderedTimer):
            return (self.when(), self._seq) > (other.when(), other._seq)
        return super().__gt__(other)  # type: ignore[operator]

    def __ge__(self, other: object) -> bool:
        if isinstance(other, _OrderedTimer):
            return (self.when(), self._seq) >= (other.when(), other._seq)
        return super().__ge__(other)  # type: ignore[operator]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, _OrderedTimer):
            return self._seq == other._seq and super().__eq__(other)
        return super().__eq__(other)

    __hash__ = asyncio.TimerHandle.__hash__


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """The stdlib event loop on a virtual clock (see the module doc).

    ``start_s`` is the loop's time at creation (seconds, as ``loop.time()`` reports it).
    ``pace``: simulated seconds per real second at most (None: as fast as it goes); the
    jumps wait for real time to catch up, which changes nothing of what runs when.
    """

    def __init__(self, start_s: float = 1_000.0, pace: float | None = None) -> None:
        real = selectors.DefaultSelector()
        self._now_ns = round(start_s * _NS)
        self._pace = pace
        self._v0 = self._now_ns  # the virtual and real times pacing counts from
        self._r0: float = time.monotonic_ns()
        self._threads = 0  # run_in_executor jobs not finished yet
        self._timer_seq = 0  # timers scheduled so far (orders equal deadlines)
        self.jumps = 0  # times the clock moved to a timer because the loop was idle
        self.jumped_ns = 0  # simulated time skipped that way
        super().__init__(_IdleJumpSelector(self, real))
        # Timers are due when their deadline is reached exactly (no early firing window).
        self._clock_resolution = 1e-9
        if pace is not None and not (pace > 0 and math.isfinite(pace)):
            self.close()
            raise ValueError(f"pace must be a positive number, got {pace!r}")

    def time(self) -> float:
        return self._now_ns / _NS

    def now_ns(self) -> int:
        """The loop's clock in integer nanoseconds (exact; ``time()`` is this / 1e9)."""
        return self._now_ns

    def _next_timer_ns(self) -> int:
        # The deadline of the timer that bounded the wait (the head of the timer heap: the
        # loop dropped the cancelled ones before it asked), to the nearest ns: a deadline
        # computed in ns and written as float seconds comes back exact (due within the loop's
        # 1 ns resolution), and the clock always moves.
        head: asyncio.TimerHandle = self._scheduled[0]  # type: ignore[attr-defined]
        return max(self._now_ns + 1, round(head.when() * _NS))

    def _pace_wait(self) -> float:
        """Real seconds to wait before the next timer's time, at the pace (0: none). Behind
        the pace by more than a quarter of a second (slow code, the run's set-up), it starts
        again from now: the run does not race to make up for it."""
        if self._pace is None:
            return 0.0
        ahead = (self._next_timer_ns() - self._v0) / self._pace
        now = time.monotonic_ns()
        due_real = self._r0 + ahead
        if due_real < now - _PACE_SLACK_NS:
            self._r0 = now - _PACE_SLACK_NS - ahead
            return 0.0
        return max(0.0, (due_real - now) / _NS)

    def _jump_to_next_timer(self) -> None:
        # To the next timer's deadline: a function of that deadline alone, not of the path
        # to it, so how many idle jumps lead there (a timer a library sets on the host's
        # clock may add one) changes nothing.
        target = self._next_timer_ns()
        if target > self._now_ns:
            self.jumped_ns += target - self._now_ns
            self._now_ns = target
        self.jumps += 1

    def call_at(
        self,
        when: float,
        callback: Callable[[Unpack[_Ts]], object],
        *args: *_Ts,
        context: contextvars.Context | None = None,
    ) -> asyncio.TimerHandle:
        """As the stdlib loop's, with timers of equal deadlines run in the order they were
        scheduled (``_OrderedTimer``)."""
        if when is None:
            raise TypeError("when cannot be None")
        self._check_closed()  # type: ignore[attr-defined]
        self._timer_seq += 1
        timer = _OrderedTimer(when, callback, args, self, context, self._timer_seq)
        heapq.heappush(self._scheduled, timer)  # type: ignore[attr-defined]
        timer._scheduled = True  # type: ignore[attr-defined]
        return timer

    def run_in_executor(
        self,
        executor: concurrent.futures.Executor | None,
        func: Callable[[Unpack[_Ts]], _T],
        *args: *_Ts,
    ) -> asyncio.Future[_T]:
        """As the stdlib loop's, with the job counted: while it runs the clock stands still
        (its result arrives at the simulated time it was asked for)."""
        fut = super().run_in_executor(executor, func, *args)
        self._threads += 1
        fut.add_done_callback(self._thread_done)
        return fut

    def _thread_done(self, _fut: asyncio.Future[Any]) -> None:
        self._threads -= 1


class LoopTime:
    """A ``TimeSource`` on a ``VirtualTimeLoop``'s clock.

    Monotonic time is the loop's clock in ns (its start value is arbitrary); wall time is
    ``start_wall_ms`` at the moment of creation plus the simulated time elapsed since. Waits
    are the loop's own (``scale`` 1: a simulated second is a loop second).
    """

    __slots__ = ("_loop", "_mono0", "_wall0")

    def __init__(self, loop: VirtualTimeLoop, start_wall_ms: int) -> None:
        self._loop = loop
        self._mono0 = loop.now_ns()
        self._wall0 = int(start_wall_ms)

    @property
    def scale(self) -> float:
        return 1.0

    @property
    def virtual(self) -> bool:
        """Not the host's clock, nor paced by it: what times itself on the host's clock
        (picows' idle pings) is off on it."""
        return True

    @property
    def loop(self) -> VirtualTimeLoop:
        return self._loop

    def monotonic_ns(self) -> int:
        return self._loop.now_ns()

    def wall_ms(self) -> int:
        return self._wall0 + (self._loop.now_ns() - self._mono0) // 1_000_000

    def wall_ns(self) -> int:
        """Wall-clock epoch nanoseconds (the tape's time scale)."""
        return self._wall0 * 1_000_000 + (self._loop.now_ns() - self._mono0)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    def call_later(
        self, seconds: float, callback: Callable[..., Any], *args: Any
    ) -> asyncio.TimerHandle:
        return asyncio.get_running_loop().call_later(max(0.0, seconds), callback, *args)

    def __repr__(self) -> str:
        return f"LoopTime(wall0_ms={self._wall0})"


class LoopClock:
    """``mmfast._core.clock.Clock`` in manual mode, its time moved by the event loop.

    Has the interface ``TradingCore`` and the strategies use (start/stop, iterators, one-shot
    timers, ``now_ns``). A driver task sleeps on the loop until the next tick or timer
    deadline, then advances the compiled clock to the loop's time, which runs every tick and
    timer due in deadline order with ``now`` equal to its deadline (the compiled clock's own
    manual-mode semantics). ``make(time)`` gives the ``clock_factory``.
    """

    def __init__(self, interval_ms: float, time: LoopTime) -> None:
        self._time = time
        self._clock = Clock(interval_ms, manual=True, start_ns=time.monotonic_ns())
        self._timers: list[tuple[int, int, Timer]] = []  # (deadline, seq, timer), ours
        self._seq = 0
        self._wake: asyncio.Future[None] | None = None  # the driver's sleep
        self._task: asyncio.Task[None] | None = None

    @staticmethod
    def make(time: LoopTime) -> Callable[[float], Any]:
        """A ``clock_factory`` for ``TradingCore``."""
        return lambda interval_ms: LoopClock(interval_ms, time)

    # ------------------------------------------------------------------ the Clock interface
    @property
    def interval_ns(self) -> int:
        return self._clock.interval_ns

    @property
    def manual(self) -> bool:
        return False  # driven by the loop, as a realtime clock is

    @property
    def running(self) -> bool:
        return self._clock.running

    @property
    def start_ns(self) -> int:
        return self._clock.start_ns

    @property
    def last_deadline_ns(self) -> int:
        return self._clock.last_deadline_ns

    @property
    def tick_count(self) -> int:
        return self._clock.tick_count

    @property
    def missed_ticks(self) -> int:
        return self._clock.missed_ticks

    @property
    def iterator_errors(self) -> int:
        return self._clock.iterator_errors

    @property
    def timer_errors(self) -> int:
        return self._clock.timer_errors

    @property
    def iterators(self) -> tuple[Callable[[int], Awaitable[Any] | None], ...]:
        return self._clock.iterators

    @property
    def pending_timers(self) -> int:
        return self._clock.pending_timers

    def now_ns(self) -> int:
        return self._time.monotonic_ns()

    def now_ms(self) -> int:
        return self.now_ns() // 1_000_000

    def add_iterator(self, f: Callable[[int], Awaitable[Any] | None]) -> None:
        self._clock.add_iterator(f)

    def remove_iterator(self, f: Callable[[int], Awaitable[Any] | None]) -> None:
        self._clock.remove_iterator(f)

    def start(self) -> None:
        self._catch_up()
        self._clock.start()  # tick 0 at the loop's now
        self._ensure_driver()
        self._poke()

    def stop(self) -> None:
        self._clock.stop()  # cancels the timers too
        self._timers.clear()
        self._poke()

    async def wait_stopped(self, timeout_s: float | None = None) -> bool:
        task = self._task
        if task is None or task.done() or task is asyncio.current_task():
            return True
        done, _ = await asyncio.wait({task}, timeout=timeout_s)
        if not done:
            task.cancel()
            await asyncio.wait({task})
            return False
        return True

    def call_later(self, delay_ms: float, callback: Callable[..., object], *args: object) -> Timer:
        # The compiled clock counts from its own time, which may trail the loop's until the
        # driver next advances it: the difference is added so the deadline is loop now + delay.
        lag_ms = (self._time.monotonic_ns() - self._clock.now_ns()) / 1e6
        t = self._clock.call_later(max(0.0, delay_ms) + lag_ms, callback, *args)
        self._seq += 1
        heapq.heappush(self._timers, (t.deadline_ns, self._seq, t))
        self._ensure_driver()
        self._poke()
        return t

    # ------------------------------------------------------------------ driving
    def _catch_up(self) -> None:
        """Before it ticks: move the compiled clock to the loop's time, synchronously. With no
        tick to run, its advance never awaits (timers are plain callbacks: those due fire
        now, in deadline order)."""
        lag = self._time.monotonic_ns() - self._clock.now_ns()
        if lag <= 0:
            return
        if self._clock.running:
            raise RuntimeError("LoopClock: catch-up while ticking")
        coro = self._clock.advance_ns(lag)
        try:
            coro.send(None)
        except StopIteration:
            return
        coro.close()  # pragma: no cover - no tick to await, so it cannot have awaited
        raise RuntimeError("LoopClock: catch-up awaited")

    def _next_timer(self) -> int | None:
        while self._timers and not self._timers[0][2].pending:
            heapq.heappop(self._timers)
        return self._timers[0][0] if self._timers else None

    def _next_due(self) -> int | None:
        due = self._next_timer()
        c = self._clock
        if c.running:
            tick = c.start_ns if c.last_deadline_ns < 0 else c.last_deadline_ns + c.interval_ns
            due = tick if due is None else min(due, tick)
        return due

    def _ensure_driver(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(
                self._drive(), name="mmfast-loop-clock"
            )

    def _poke(self) -> None:
        w = self._wake
        if w is not None and not w.done():
            w.set_result(None)

    async def _drive(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due = self._next_due()
            if due is None:
                return  # neither ticking nor a timer pending: start/call_later restart it
            now = self._time.monotonic_ns()
            if due > now:
                self._wake = fut = loop.create_future()
                handle = loop.call_at(due / _NS, self._poke)  # the loop's time is ns / 1e9
                try:
                    await fut
                finally:
                    handle.cancel()
                    self._wake = None
                continue
            await self._clock.advance_ns(now - self._clock.now_ns())
