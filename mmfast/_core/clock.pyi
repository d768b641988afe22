"""Tick scheduler: periodic ticks on a drift-free monotonic deadline grid, plus one-shot timers.

Two modes:

* **realtime** (default): runs on the running asyncio/uvloop event loop. Tick ``k`` of a run has
  the deadline ``start_ns + k * interval_ns`` on CLOCK_MONOTONIC (``start_ns`` is the moment
  ``start()`` was called, so tick 0 fires right away). Deadlines never drift: the next one is
  always the previous deadline plus the interval, never "now + interval". Every loop-timer
  wake-up re-reads the monotonic clock and re-arms for the remainder when it fired early (uvloop
  can fire up to ~0.8 ms early), so nothing runs before its deadline. When the loop falls behind
  by whole intervals the missed deadlines are skipped and counted in ``missed_ticks`` (no burst).
* **manual**: time starts at ``start_ns`` and moves only through ``await advance(ms)`` /
  ``await advance_ns(ns)``, which run every due timer and tick in deadline order.

Iterators are callables ``f(now_ms)`` (``now_ms`` = the tick's deadline in whole monotonic
milliseconds) returning None or an awaitable; they run in registration order and an awaitable is
awaited before the next iterator starts. An exception in one iterator is logged on the
``mmfast.clock`` logger and counted in ``iterator_errors``; the clock and the other iterators go on.

Timers (``call_later``) are one-shot, synchronous callbacks fired in (deadline, creation) order
against the same monotonic clock, with the same early-fire guard. At equal deadlines in manual
mode, timers run before the tick.
"""

from collections.abc import Awaitable, Callable
from typing import Any, final

LATENESS_RING: int
"""Number of recent ticks whose lateness is kept (ring buffer)."""

def monotonic_ns() -> int:
    """CLOCK_MONOTONIC in nanoseconds (the same clock as ``time.monotonic_ns``)."""

def wall_ms() -> int:
    """Wall-clock (CLOCK_REALTIME) epoch milliseconds.

    The one wall-clock function in mmfast: only for values the venue needs (order expiry, auth
    token deadlines). A monotonic value never reaches the venue, and this never orders events.
    """

@final
class Timer:
    """A one-shot timer returned by ``Clock.call_later``."""

    @property
    def deadline_ns(self) -> int:
        """Absolute deadline on the owning clock's timeline (``Clock.now_ns()``)."""
    @property
    def seq(self) -> int:
        """Creation order; breaks deadline ties first-in first-out."""
    @property
    def cancelled(self) -> bool:
        """``cancel()`` was called before the timer fired."""
    @property
    def fired(self) -> bool:
        """The callback has been called."""
    @property
    def pending(self) -> bool:
        """Neither fired nor cancelled."""
    def cancel(self) -> None:
        """Cancel the timer (no-op once fired or cancelled); drops the callback's references."""

@final
class Clock:
    """Periodic tick scheduler with one-shot timers (realtime or manual)."""

    def __init__(
        self,
        interval_ms: float,
        *,
        manual: bool = False,
        start_ns: int = 0,
        lead_ns: int = 1_000_000,
    ) -> None:
        """Create a clock ticking every ``interval_ms`` (> 0, rounded to whole ns).

        ``manual``: time moves only through ``advance``; ``start_ns`` (>= 0, manual mode only) is
        its initial time. ``lead_ns`` (0..5_000_000; realtime ticks only; capped at a tenth of
        the interval): the driver sleeps on a loop timer until ``lead_ns`` before each deadline,
        then yields one loop iteration at a time (I/O is served meanwhile, no blocking spin) until
        the deadline. Loop timers are 1 ms coarse (asyncio's epoll rounds up, uvloop rounds to
        the nearest ms and fires early), so with ``lead_ns=0`` ticks run ~0.25 ms (uvloop) to
        ~0.75 ms (asyncio) late at the median; the default 1 ms lead brings that to a few us, for
        about 1 ms of loop time per tick. Nothing ever fires before its deadline either way.
        """
    @property
    def interval_ns(self) -> int:
        """Tick period in nanoseconds."""
    @property
    def manual(self) -> bool: ...
    @property
    def lead_ns(self) -> int:
        """The lead in effect (the argument, capped at ``interval_ns // 10``)."""
    @property
    def running(self) -> bool:
        """True between ``start()`` and ``stop()`` (or the driver's exit)."""
    @property
    def start_ns(self) -> int:
        """Deadline of tick 0 of the current (or last) run: the anchor of the deadline grid."""
    @property
    def last_deadline_ns(self) -> int:
        """Deadline of the tick in progress or the last one run; -1 before the first tick."""
    @property
    def tick_count(self) -> int:
        """Ticks run since construction."""
    @property
    def missed_ticks(self) -> int:
        """Grid deadlines skipped because the loop fell behind by whole intervals."""
    @property
    def iterator_errors(self) -> int:
        """Exceptions raised by iterators (each logged on ``mmfast.clock``)."""
    @property
    def timer_errors(self) -> int:
        """Exceptions raised by timer callbacks (each logged on ``mmfast.clock``)."""
    @property
    def early_wakeups(self) -> int:
        """Realtime: wake-ups before a deadline (a loop timer firing early, lead-time yields)."""
    @property
    def iterators(self) -> tuple[Callable[[int], Awaitable[Any] | None], ...]:
        """Registered iterators in registration (= tick) order."""
    @property
    def pending_timers(self) -> int:
        """Timers neither fired nor cancelled."""
    @property
    def lateness_recorded(self) -> int:
        """Realtime ticks recorded since the last ``reset_lateness()``."""
    def now_ns(self) -> int:
        """Monotonic ns (realtime), or the manual clock's current time."""
    def now_ms(self) -> int:
        """``now_ns() // 1_000_000``."""
    def add_iterator(self, f: Callable[[int], Awaitable[Any] | None]) -> None:
        """Register ``f`` (called as ``f(now_ms)`` on each tick, after those already registered).

        Raises TypeError if ``f`` is not callable, ValueError if it is already registered.
        Changes made during a tick take effect from the next tick.
        """
    def remove_iterator(self, f: Callable[[int], Awaitable[Any] | None]) -> None:
        """Unregister ``f``; ValueError if it is not registered."""
    def start(self) -> None:
        """Start ticking; tick 0 is due at once.

        Realtime mode needs a running event loop (RuntimeError otherwise) and schedules one driver
        task. Starting a running clock raises RuntimeError (so does restarting a realtime clock
        whose previous driver has not exited yet: ``await wait_stopped()`` first). A stopped clock
        may be started again; the grid is re-anchored at the new start.
        """
    def stop(self) -> None:
        """Stop ticking and cancel every pending timer. Synchronous and idempotent.

        A tick in progress is not interrupted: it runs to the end (its awaitables included) and
        no further tick starts. Use ``await wait_stopped()`` to wait for that.
        """
    async def wait_stopped(self, timeout_s: float | None = None) -> bool:
        """After ``stop()``: wait until the realtime driver has exited.

        Returns True at once in manual mode, when the driver already exited, or when called from
        inside a tick (the driver exits after it). If ``timeout_s`` passes first, the driver (and
        the tick it is awaiting) is cancelled and False is returned. RuntimeError if still running.
        """
    def call_later(self, delay_ms: float, callback: Callable[..., object], *args: object) -> Timer:
        """Call ``callback(*args)`` once at ``now_ns() + delay_ms`` (negative delays count as 0).

        Callbacks are synchronous, like ``loop.call_later``: one that returns an awaitable is
        counted as an error (a coroutine is closed, never left un-awaited). Exceptions are logged
        and counted in ``timer_errors``. Realtime mode needs a running event loop. ``stop()``
        cancels pending timers; timers work whether or not the clock is ticking.
        """
    def tick_lateness_ns(self) -> list[int]:
        """Realtime: (fire time - deadline) in ns of the last ``LATENESS_RING`` ticks, oldest first.

        Always >= 0. Read by the benchmark suite for scheduler_jitter.
        """
    def reset_lateness(self) -> None:
        """Forget the recorded lateness."""
    async def advance(self, ms: float) -> None:
        """Manual mode: ``advance_ns(round(ms * 1e6))``."""
    async def advance_ns(self, ns: int) -> None:
        """Manual mode: move time forward ``ns`` (>= 0), running due timers and ticks in order.

        Each timer or tick runs with ``now_ns()`` equal to its deadline; tick awaitables are
        awaited. Timers scheduled meanwhile that fall due within the step run in the same call.
        RuntimeError in realtime mode or when called re-entrantly from a tick or timer.
        """
