"""Where the event loop runs and whether it sleeps: ``[run] cpu`` and ``[run] busy_poll``.

A frame that reaches a sleeping loop pays for the wake-up before mmfast sees it: the CPU
leaving its idle state, the scheduler, ``epoll_wait`` returning (70 us p50 measured on the
project's 2-CPU VMs, more than the whole bot step). A loop that polls without sleeping reads the
frame within one poll. And a loop that shares its CPU with anything else waits for it: on
loopback the kernel wakes a peer on the waker's CPU, so a simulator or guard on the same machine
can find itself queued behind the bot's frame callback while the other CPU idles.

``pin_loop(cpu)`` pins the calling (event-loop) thread to one CPU and moves every other thread
of the process (the signer's, the in-process simulator's, executors) to the remaining ones;
``Placement.sweep`` repeats the move for threads started later (they inherit the loop's CPU);
``Placement.keep_off(pid)`` moves another process's threads (the run's simulator child) there
too.
``BusyPoll`` keeps one callback always ready on the loop, so uvloop polls its sockets with a
zero timeout instead of sleeping: one CPU at 100% for the lowest latency. Its idle time keeps
the hot path warm (``warm_ns``, ``add_warmer``): on a shared machine a few milliseconds
between frames leave the next step's code and data out of cache, 2-5x slower.

Linux only (``sched_setaffinity`` on thread ids); elsewhere ``pin_loop`` raises.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Callable

from mmfast.core.errors import MmfastError

_log = logging.getLogger("mmfast.run.placement")

__all__ = ["BusyPoll", "Placement", "PlacementError", "allowed_cpus", "cpu_problem", "pin_loop"]

_TASKS = "/proc/self/task"


class PlacementError(MmfastError, RuntimeError):
    """The loop cannot be placed as configured (the CPU is not allowed, or no affinity API)."""


def allowed_cpus() -> set[int]:
    """The CPUs this process may run on."""
    if not hasattr(os, "sched_getaffinity"):
        raise PlacementError("CPU pinning needs Linux (os.sched_setaffinity)")
    return set(os.sched_getaffinity(0))


def cpu_problem(cpu: int) -> str:
    """Why the loop cannot be pinned to ``cpu`` ("" if it can)."""
    try:
        allowed = allowed_cpus()
    except PlacementError as exc:
        return str(exc)
    if cpu not in allowed:
        return f"[run] cpu = {cpu}: this process may run on CPUs {sorted(allowed)} only"
    return ""


class Placement:
    """The loop thread pinned to ``cpu``; the process's other threads kept off it."""

    __slots__ = ("allowed", "cpu", "loop_tid", "moved", "moved_total", "released")

    def __init__(self, cpu: int, loop_tid: int, allowed: set[int]) -> None:
        self.cpu = cpu
        self.loop_tid = loop_tid
        self.allowed = allowed  # the process's CPUs before the pinning
        self.moved: set[int] = set()  # thread ids moved off ``cpu`` (alive at the last sweep)
        self.moved_total = 0
        self.released = False

    @property
    def others(self) -> set[int]:
        """The CPUs left to the other threads (empty on a 1-CPU machine)."""
        return self.allowed - {self.cpu}

    def sweep(self) -> int:
        """Move the threads started since the last sweep off the loop's CPU; returns how many
        were moved now. Threads gone in the meantime are skipped."""
        others = self.others
        if not others or self.released:
            return 0
        try:
            tids = {int(t) for t in os.listdir(_TASKS)}
        except OSError:
            return 0
        self.moved &= tids
        n = 0
        for tid in tids - self.moved - {self.loop_tid}:
            try:
                os.sched_setaffinity(tid, others)
            except OSError:  # exited between the listing and the call
                continue
            self.moved.add(tid)
            n += 1
        self.moved_total += n
        return n

    def keep_off(self, pid: int) -> int:
        """Move every thread of another process (the run's simulator child) off the loop's
        CPU: it is started before the pinning with every CPU, and on loopback the kernel would
        wake it on the loop's. Returns how many threads were moved (0 once it is gone)."""
        others = self.others
        if not others or self.released:
            return 0
        try:
            tids = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
        except OSError:
            return 0
        n = 0
        for tid in tids:
            try:
                if os.sched_getaffinity(tid) != others:
                    os.sched_setaffinity(tid, others)
                    n += 1
            except OSError:  # exited between the listing and the call
                continue
        return n

    def release(self) -> None:
        """Give the loop thread and the moved threads every CPU they had (the process may go
        on with other work: tests, the benchmark)."""
        if self.released:
            return
        self.released = True
        for tid in (self.loop_tid, *self.moved):
            try:
                os.sched_setaffinity(tid, self.allowed)
            except OSError:  # gone
                continue
        self.moved.clear()

    def describe(self) -> str:
        rest = ",".join(map(str, sorted(self.others))) or "none"
        return f"loop on CPU {self.cpu}, {self.moved_total} other threads on CPUs {rest}"


def pin_loop(cpu: int) -> Placement:
    """Pin the calling thread (the event loop's) to ``cpu`` and move the process's other
    threads to the CPUs left."""
    why = cpu_problem(cpu)
    if why:
        raise PlacementError(why)
    allowed = allowed_cpus()
    tid = threading.get_native_id()
    # pid 0 is the calling thread here: only the loop thread is pinned.
    os.sched_setaffinity(0, {cpu})
    placement = Placement(cpu, tid, allowed)
    placement.sweep()
    return placement


class BusyPoll:
    """Keeps the running loop polling instead of sleeping: a callback that queues itself
    again each iteration (uvloop then polls with a zero timeout). ``polls`` counts the
    iterations it saw.

    Warm-up: with ``warm_ns`` > 0, the callbacks given to ``add_warmer`` run at most once per
    ``warm_ns`` from the poll (``[run] warm_us``): each reruns a hot path's reading half on
    the data it last saw and acts on nothing (the compiled step's ``warm``), so a frame after
    idle time finds that code and data in cache. A frame that arrives during one waits for it
    (a few microseconds). A warmer that raises is dropped, logged once. ``warms`` counts the
    rounds."""

    __slots__ = (
        "_handle",
        "_loop",
        "_t0",
        "_t1",
        "_warmers",
        "last_warm_ns",
        "polls",
        "warm_ns",
        "warms",
    )

    def __init__(self, warm_ns: int = 0) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._handle: asyncio.Handle | None = None
        self._t0 = self._t1 = 0.0  # monotonic start and stop
        self.polls = 0
        self.warm_ns = warm_ns
        self.warms = 0
        self.last_warm_ns = 0  # monotonic ns of the last warm-up round
        self._warmers: list[Callable[[], object]] = []

    def add_warmer(self, fn: Callable[[], object]) -> None:
        """Run ``fn()`` in the idle time (see the class doc)."""
        self._warmers.append(fn)

    def per_s(self) -> float:
        """Loop iterations a second while it ran."""
        return self._rate(self.polls)

    def warms_per_s(self) -> float:
        """Warm-up rounds a second while it ran."""
        return self._rate(self.warms)

    def _rate(self, n: int) -> float:
        end = time.monotonic() if self._handle is not None else self._t1
        return n / (end - self._t0) if end > self._t0 else 0.0

    @property
    def running(self) -> bool:
        return self._handle is not None

    def start(self) -> None:
        if self._handle is None:
            self._loop = asyncio.get_running_loop()
            self._t0 = time.monotonic()
            self._handle = self._loop.call_soon(self._poll)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
            self._t1 = time.monotonic()

    def _poll(self) -> None:
        self.polls += 1
        assert self._loop is not None
        if self._warmers and self.warm_ns > 0:
            now = time.monotonic_ns()
            if now - self.last_warm_ns >= self.warm_ns:
                self.last_warm_ns = now
                self._warm()
        self._handle = self._loop.call_soon(self._poll)

    def _warm(self) -> None:
        self.warms += 1
        for fn in self._warmers:
            try:
                fn()
            except Exception as exc:
                # Warming is an optimisation: a broken warmer must not touch the loop.
                self._warmers.remove(fn)
                _log.warning("busy poll: warm-up %r dropped: %s: %s", fn, type(exc).__name__, exc)
                return
