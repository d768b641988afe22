# cython: language_level=3
# Tick scheduler: periodic ticks on a drift-free monotonic deadline grid, plus one-shot timers.
# Realtime mode runs on the event loop; manual mode moves only when a test advances it.

from libc.stdint cimport int64_t

cimport cython

# Size of the tick-lateness ring buffer (the last N ticks' firing error, for scheduler_jitter).
cdef enum:
    LATENESS_RING_SIZE = 1024


cpdef int64_t monotonic_ns() noexcept     # CLOCK_MONOTONIC in ns (time.monotonic_ns's clock)
cpdef int64_t wall_ms() noexcept          # CLOCK_REALTIME epoch ms: venue expiries, auth deadlines


@cython.final
cdef class Timer:
    cdef readonly int64_t deadline_ns     # absolute deadline on the owning clock's ns timeline
    cdef readonly int64_t seq             # creation order; breaks deadline ties first-in first-out
    cdef readonly bint cancelled          # cancel() was called before the timer fired
    cdef readonly bint fired              # the callback has been called
    cdef object _callback                 # the callable; None once fired or cancelled (frees refs)
    cdef tuple _args                      # positional arguments for the callback
    cdef Clock _clock                     # owner while pending; None once fired or cancelled

    cpdef void cancel(self) noexcept


@cython.final
cdef class Clock:
    cdef readonly int64_t interval_ns      # tick period in ns (> 0)
    cdef readonly bint manual              # True: time moves only through advance()/advance_ns()
    cdef readonly bint running             # ticking (between start() and stop())
    cdef readonly int64_t start_ns         # deadline of tick 0 of the current/last run (anchor)
    cdef readonly int64_t last_deadline_ns  # deadline of the tick in progress or last run
    cdef readonly int64_t tick_count       # ticks run since construction
    cdef readonly int64_t missed_ticks     # grid deadlines skipped because the loop fell behind
    cdef readonly int64_t iterator_errors  # exceptions raised by iterators (logged, not raised)
    cdef readonly int64_t timer_errors     # exceptions raised by timer callbacks (logged)
    cdef readonly int64_t early_wakeups    # wake-ups before a deadline (early timer, lead yields)
    cdef readonly int64_t lead_ns          # realtime: wake this long before the deadline, yield
    cdef int64_t _next_deadline_ns         # deadline of the next tick on the grid
    cdef int64_t _manual_now_ns            # manual mode: the current time
    cdef list _iterators                   # registered iterators, registration order
    cdef tuple _iter_snapshot              # immutable copy iterated by ticks (no per-tick copy)
    cdef list _timers                      # binary heap of Timer ordered by (deadline_ns, seq)
    cdef int64_t _timer_seq                # next Timer.seq
    cdef int64_t _cancelled_in_heap        # cancelled timers still in the heap (lazy deletion)
    cdef object _loop                      # realtime: event loop the clock runs on
    cdef object _task                      # realtime: the tick driver task
    cdef object _wake_fut                  # realtime: future the driver sleeps on
    cdef object _wake_handle               # realtime: loop timer that resolves _wake_fut
    cdef object _timer_handle              # realtime: loop timer armed for the earliest Timer
    cdef int64_t _timer_armed_ns           # deadline _timer_handle was armed for
    cdef bint _advancing                   # manual: inside advance_ns (re-entry is an error)
    # realtime tick lateness (fire - deadline) in ns, a ring
    cdef int64_t _late_ring[LATENESS_RING_SIZE]
    cdef int64_t _late_count               # ticks recorded into _late_ring since the last reset

    cpdef int64_t now_ns(self) noexcept
    cpdef int64_t now_ms(self) noexcept
    cpdef object add_iterator(self, object f)
    cpdef object remove_iterator(self, object f)
    cpdef object start(self)
    cpdef object stop(self)
    cpdef list tick_lateness_ns(self)
    cpdef void reset_lateness(self) noexcept
    cdef Timer _peek_timer(self)
    cdef object _fire_timer(self, Timer t)
    cdef object _arm_timer_handle(self)
    cdef void _timer_cancelled(self) noexcept
    cdef int _cancel_all_timers(self) except -1
    cdef void _record_lateness(self, int64_t late) noexcept
