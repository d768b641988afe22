# cython: language_level=3
"""Tick scheduler (see clock.pxd for the fields and mmfast/_core/clock.pyi for the API docs).

Deadlines live on a grid ``start_ns + k * interval_ns`` kept against CLOCK_MONOTONIC, so ticks
never drift. Event-loop timers have 1 ms resolution and uvloop can fire early (libuv's cached loop
time lags the real clock), so every wake-up re-reads the monotonic clock and re-arms for the
remainder when early.
"""

import asyncio
import heapq
import logging
import types

from libc.stdint cimport int64_t, INT64_MAX
from posix.time cimport CLOCK_MONOTONIC, CLOCK_REALTIME, clock_gettime, timespec

cimport cython

_log = logging.getLogger("mmfast.clock")

LATENESS_RING = LATENESS_RING_SIZE  # Python-visible ring size

# Compact the timer heap when this many cancelled timers sit in it (and they are the majority).
cdef int64_t _COMPACT_MIN = 64


cpdef int64_t monotonic_ns() noexcept:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return <int64_t>ts.tv_sec * 1000000000 + <int64_t>ts.tv_nsec


cpdef int64_t wall_ms() noexcept:
    cdef timespec ts
    clock_gettime(CLOCK_REALTIME, &ts)
    return <int64_t>ts.tv_sec * 1000 + <int64_t>ts.tv_nsec // 1000000


cdef inline int64_t _ms_to_ns(double ms) except? -1:
    if ms != ms:  # NaN
        raise ValueError("time in ms must be a number, got NaN")
    if ms <= 0.0:
        return 0
    if ms > 9.2e12:  # ~292 years in ms: beyond int64 ns
        raise OverflowError(f"time in ms too large: {ms!r}")
    return <int64_t>(ms * 1e6 + 0.5)


@types.coroutine
def _yield_once():
    # A bare yield: the driver task is resumed on the next loop iteration (no future, no timer).
    yield


def _wake(fut):
    # Loop callback that ends the driver's sleep (unless stop() already did).
    if not fut.done():
        fut.set_result(None)


@cython.final
cdef class Timer:
    """One-shot timer returned by Clock.call_later()."""

    def __cinit__(self):
        self.cancelled = False
        self.fired = False

    cpdef void cancel(self) noexcept:
        if self.cancelled or self.fired:
            return
        self.cancelled = True
        self._callback = None
        self._args = None
        if self._clock is not None:
            self._clock._timer_cancelled()
            self._clock = None

    @property
    def pending(self) -> bool:
        return not (self.cancelled or self.fired)

    def __lt__(self, Timer other):
        # heapq order: by deadline, then creation order.
        if self.deadline_ns != other.deadline_ns:
            return self.deadline_ns < other.deadline_ns
        return self.seq < other.seq

    def __repr__(self):
        state = "cancelled" if self.cancelled else ("fired" if self.fired else "pending")
        return f"<Timer deadline_ns={self.deadline_ns} {state} {self._callback!r}>"


@cython.final
cdef class Clock:
    """Periodic tick scheduler with one-shot timers; realtime or manual."""

    def __init__(self, double interval_ms, *, bint manual=False, int64_t start_ns=0,
                 int64_t lead_ns=1000000):
        cdef int64_t interval_ns = _ms_to_ns(interval_ms)
        if interval_ns <= 0:
            raise ValueError(f"interval_ms must be > 0, got {interval_ms!r}")
        if start_ns < 0:
            raise ValueError(f"start_ns must be >= 0, got {start_ns}")
        if lead_ns < 0 or lead_ns > 5000000:
            raise ValueError(f"lead_ns must be in 0..5_000_000, got {lead_ns}")
        if start_ns != 0 and not manual:
            raise ValueError("start_ns applies to manual mode only")
        self.interval_ns = interval_ns
        self.manual = manual
        self.running = False
        self.start_ns = start_ns
        self.last_deadline_ns = -1
        self._next_deadline_ns = start_ns
        self._manual_now_ns = start_ns
        # Never lead by more than a tenth of the interval (bounds the time spent yielding).
        self.lead_ns = min(lead_ns, interval_ns // 10)
        self._iterators = []
        self._iter_snapshot = ()
        self._timers = []
        self._timer_seq = 0
        self._cancelled_in_heap = 0
        self._timer_armed_ns = INT64_MAX
        self._advancing = False
        self._late_count = 0

    # --- time -------------------------------------------------------------------------------

    cpdef int64_t now_ns(self) noexcept:
        if self.manual:
            return self._manual_now_ns
        return monotonic_ns()

    cpdef int64_t now_ms(self) noexcept:
        return self.now_ns() // 1000000

    # --- iterators --------------------------------------------------------------------------

    cpdef object add_iterator(self, object f):
        if not callable(f):
            raise TypeError(f"iterator must be callable, got {f!r}")
        for g in self._iterators:
            if g is f or g == f:  # bound methods compare equal, not identical
                raise ValueError(f"iterator already registered: {f!r}")
        self._iterators.append(f)
        self._iter_snapshot = tuple(self._iterators)

    cpdef object remove_iterator(self, object f):
        self._iterators.remove(f)  # ValueError when not registered, like list.remove
        self._iter_snapshot = tuple(self._iterators)

    @property
    def iterators(self) -> tuple:
        return self._iter_snapshot

    async def _tick(self, int64_t deadline):
        # Run every iterator in order; an awaitable result is awaited before the next iterator.
        cdef int64_t now_ms = deadline // 1000000
        for f in self._iter_snapshot:
            try:
                r = f(now_ms)
                if r is not None:
                    await r
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise  # the clock itself is being cancelled
                self.iterator_errors += 1
                _log.error("clock iterator %r raised CancelledError", f)
            except Exception:
                self.iterator_errors += 1
                _log.exception("clock iterator %r raised", f)

    # --- start / stop -----------------------------------------------------------------------

    cpdef object start(self):
        if self.interval_ns <= 0:  # Clock.__new__ without __init__: never divide by zero
            raise RuntimeError("Clock not initialised")
        if self.running:
            raise RuntimeError("clock already running")
        if self.manual:
            self.start_ns = self._manual_now_ns
        else:
            loop = asyncio.get_running_loop()  # RuntimeError outside a running loop
            if self._task is not None and not self._task.done():
                raise RuntimeError("previous run still stopping: await wait_stopped() first")
            self._loop = loop
            self.start_ns = monotonic_ns()
        self._next_deadline_ns = self.start_ns
        self.running = True
        if not self.manual:
            self._task = self._loop.create_task(self._drive())

    cpdef object stop(self):
        self.running = False
        if self._wake_handle is not None:
            self._wake_handle.cancel()
            self._wake_handle = None
        if self._wake_fut is not None:
            _wake(self._wake_fut)
        self._cancel_all_timers()

    async def wait_stopped(self, timeout_s=None):
        """Wait for the realtime driver to exit after stop(); see the .pyi stub."""
        if self.running:
            raise RuntimeError("clock is running: call stop() first")
        task = self._task
        if task is None:
            return True
        if task is asyncio.current_task():
            return True  # stop() called from inside a tick: the driver exits after it
        clean = True
        if not task.done():
            done, _ = await asyncio.wait({task}, timeout=timeout_s)
            if not done:
                clean = False
                task.cancel()
                await asyncio.wait({task})
        self._task = None
        if not task.cancelled() and task.exception() is not None:
            _log.error("clock driver failed", exc_info=task.exception())
            clean = False
        return clean

    async def _drive(self):
        # Realtime tick loop: sleep to the next grid deadline, skip whole missed intervals.
        cdef int64_t now, deadline, behind, remaining
        loop = self._loop
        try:
            while self.running:
                deadline = self._next_deadline_ns
                now = monotonic_ns()
                while now < deadline:
                    remaining = deadline - now
                    if remaining > self.lead_ns:
                        # Sleep on a loop timer aimed lead_ns before the deadline. It may fire
                        # early (uvloop): the monotonic clock is re-read below either way.
                        fut = loop.create_future()
                        self._wake_fut = fut
                        self._wake_handle = loop.call_later(
                            (remaining - self.lead_ns) * 1e-9, _wake, fut)
                        try:
                            await fut
                        finally:
                            self._wake_fut = None
                            self._wake_handle = None
                    else:
                        # Within lead_ns of the deadline: yield one loop iteration (I/O is
                        # served meanwhile) and look again; no timer, no blocking spin.
                        await _yield_once()
                    if not self.running:
                        return
                    now = monotonic_ns()
                    if now < deadline:
                        self.early_wakeups += 1
                behind = (now - deadline) // self.interval_ns
                if behind > 0:
                    # Fell behind by whole intervals: skip them instead of bursting.
                    self.missed_ticks += behind
                    deadline += behind * self.interval_ns
                self._record_lateness(now - deadline)
                self.last_deadline_ns = deadline
                self._next_deadline_ns = deadline + self.interval_ns
                self.tick_count += 1
                await self._tick(deadline)
        finally:
            self.running = False

    # --- lateness record ----------------------------------------------------------------------

    cdef void _record_lateness(self, int64_t late) noexcept:
        self._late_ring[self._late_count % LATENESS_RING_SIZE] = late
        self._late_count += 1

    cpdef list tick_lateness_ns(self):
        cdef int64_t n = self._late_count
        cdef int64_t first = 0
        cdef int64_t i
        if n > LATENESS_RING_SIZE:
            first = n - LATENESS_RING_SIZE
        return [self._late_ring[i % LATENESS_RING_SIZE] for i in range(first, n)]

    cpdef void reset_lateness(self) noexcept:
        self._late_count = 0

    @property
    def lateness_recorded(self) -> int:
        return self._late_count

    # --- one-shot timers ----------------------------------------------------------------------

    def call_later(self, double delay_ms, callback, *args):
        """Call ``callback(*args)`` once, ``delay_ms`` from now; returns a cancellable Timer."""
        if not callable(callback):
            raise TypeError(f"callback must be callable, got {callback!r}")
        cdef int64_t delay_ns = _ms_to_ns(delay_ms)
        if not self.manual and not self.running:
            # Not ticking: timers run on the caller's loop (RuntimeError outside a running loop).
            loop = asyncio.get_running_loop()
            if loop is not self._loop:
                self._cancel_all_timers()  # timers armed on another (finished) loop are void
                self._loop = loop
        cdef Timer t = Timer.__new__(Timer)
        t.deadline_ns = self.now_ns() + delay_ns
        t.seq = self._timer_seq
        self._timer_seq += 1
        t._callback = callback
        t._args = args
        t._clock = self
        if (self._cancelled_in_heap >= _COMPACT_MIN
                and self._cancelled_in_heap * 2 > len(self._timers)):
            self._timers = [x for x in self._timers if not (<Timer>x).cancelled]
            heapq.heapify(self._timers)
            self._cancelled_in_heap = 0
        heapq.heappush(self._timers, t)
        if not self.manual:
            self._arm_timer_handle()
        return t

    @property
    def pending_timers(self) -> int:
        return len(self._timers) - self._cancelled_in_heap

    cdef void _timer_cancelled(self) noexcept:
        self._cancelled_in_heap += 1

    cdef Timer _peek_timer(self):
        # Earliest live timer (drops cancelled ones from the top), or None.
        cdef Timer t
        while self._timers:
            t = <Timer>self._timers[0]
            if not t.cancelled:
                return t
            heapq.heappop(self._timers)
            self._cancelled_in_heap -= 1
        return None

    cdef object _fire_timer(self, Timer t):
        # Caller has popped t from the heap.
        cb = t._callback
        args = t._args
        t._callback = None
        t._args = None
        t._clock = None
        t.fired = True
        try:
            r = cb(*args)
            if r is not None and hasattr(r, "__await__"):
                if hasattr(r, "close"):
                    r.close()  # never leave an un-awaited coroutine behind
                raise TypeError("timer callbacks must be synchronous (returned an awaitable)")
        except Exception:
            self.timer_errors += 1
            _log.exception("clock timer callback %r raised", cb)

    cdef object _arm_timer_handle(self):
        # Realtime: make sure a loop timer will wake us at (or before) the earliest deadline.
        cdef Timer t = self._peek_timer()
        if t is None:
            return
        if self._timer_handle is not None and self._timer_armed_ns <= t.deadline_ns:
            return
        if self._timer_handle is not None:
            self._timer_handle.cancel()
        self._timer_armed_ns = t.deadline_ns
        cdef int64_t delay = t.deadline_ns - monotonic_ns()
        if delay < 0:
            delay = 0
        self._timer_handle = self._loop.call_later(delay * 1e-9, self._on_timer_wake)

    def _on_timer_wake(self):
        # Loop callback: fire every due timer in (deadline, seq) order, re-arm for the rest.
        cdef Timer t
        cdef int64_t now
        cdef int64_t limit_seq = self._timer_seq  # timers added by callbacks wait for the re-arm
        cdef bint fired_any = False
        self._timer_handle = None
        self._timer_armed_ns = INT64_MAX
        now = monotonic_ns()
        while True:
            t = self._peek_timer()
            if t is None:
                break
            if t.deadline_ns > now or t.seq >= limit_seq:
                break
            heapq.heappop(self._timers)
            self._fire_timer(t)
            fired_any = True
        if not fired_any and t is not None and t.deadline_ns > now:
            self.early_wakeups += 1
        self._arm_timer_handle()

    cdef int _cancel_all_timers(self) except -1:
        cdef Timer t
        for x in self._timers:
            t = <Timer>x
            if not t.cancelled:
                t.cancelled = True
                t._callback = None
                t._args = None
                t._clock = None
        self._timers = []
        self._cancelled_in_heap = 0
        if self._timer_handle is not None:
            self._timer_handle.cancel()
            self._timer_handle = None
        self._timer_armed_ns = INT64_MAX
        return 0

    # --- manual mode ------------------------------------------------------------------------

    async def advance(self, double ms):
        """Manual mode: move time forward ``ms`` milliseconds (see advance_ns)."""
        await self.advance_ns(_ms_to_ns(ms))

    async def advance_ns(self, int64_t ns):
        """Manual mode: run every due timer and tick up to now + ns in deadline order."""
        cdef int64_t target, td, kd
        cdef Timer t
        if not self.manual:
            raise RuntimeError("advance() is for manual clocks only")
        if ns < 0:
            raise ValueError(f"cannot move time backwards ({ns} ns)")
        if self._advancing:
            raise RuntimeError("advance() called re-entrantly (from a tick or timer)")
        self._advancing = True
        try:
            target = self._manual_now_ns + ns
            while True:
                t = self._peek_timer()
                td = t.deadline_ns if t is not None else INT64_MAX
                kd = self._next_deadline_ns if self.running else INT64_MAX
                if td <= target and td <= kd:  # at equal deadlines, timers before the tick
                    heapq.heappop(self._timers)
                    self._manual_now_ns = td
                    self._fire_timer(t)
                elif kd <= target:
                    self._manual_now_ns = kd
                    self.last_deadline_ns = kd
                    self._next_deadline_ns = kd + self.interval_ns
                    self.tick_count += 1
                    await self._tick(kd)
                else:
                    break
            self._manual_now_ns = target
        finally:
            self._advancing = False

    def __repr__(self):
        mode = "manual" if self.manual else "realtime"
        return (f"<Clock {mode} interval_ns={self.interval_ns} running={bool(self.running)} "
                f"ticks={self.tick_count} missed={self.missed_ticks}>")
