"""Timing harness for mmfast's micro benchmarks.

A *case* is one thing to time (ours or a baseline). Each sample runs the case's body once and times
it with ``time.perf_counter_ns``; the body performs ``ops`` operations (levels, messages, calls),
so one sample is ``elapsed / ops`` nanoseconds per operation. Percentiles are taken over samples,
i.e. over batch means: p99 says how slow a whole batch got (noise from other processes, cache
misses after a re-centre, ...), not the worst single operation.

The machine is shared and noisy, so:

- every figure is a median (p50) of many samples, with p99 and the mean beside it;
- cases of one group are interleaved in rounds (ours, baseline, ours, baseline, ...) so drift in
  machine load hits ours and the baselines alike, and ratios come from the same run;
- the garbage collector is off while sampling (collected once before), and each case warms up
  first.
"""

from __future__ import annotations

import gc
import math
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = [
    "Case",
    "Stats",
    "measure",
    "percentile",
    "pin_to_cpu",
    "placement",
    "run_group",
]


def percentile(sorted_values: list[float], q: float) -> float:
    """Percentile ``q`` (0..100) of already sorted values, linear interpolation between ranks."""
    if not sorted_values:
        return math.nan
    if len(sorted_values) == 1:
        return float(sorted_values[0])
    pos = (len(sorted_values) - 1) * (q / 100.0)
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    frac = pos - lo
    return sorted_values[lo] * (1.0 - frac) + sorted_values[hi] * frac


@dataclass(frozen=True)
class Stats:
    """Summary of one case: nanoseconds per operation over ``n`` samples of ``ops`` operations."""

    name: str
    p50_ns: float
    p99_ns: float
    mean_ns: float
    min_ns: float
    n: int
    ops: int

    @classmethod
    def from_samples(cls, name: str, per_op_ns: list[float], ops: int) -> Stats:
        values = sorted(per_op_ns)
        return cls(
            name=name,
            p50_ns=percentile(values, 50.0),
            p99_ns=percentile(values, 99.0),
            mean_ns=sum(values) / len(values) if values else math.nan,
            min_ns=values[0] if values else math.nan,
            n=len(values),
            ops=ops,
        )

    def as_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        return asdict(self)


@dataclass
class Case:
    """One timed body.

    ``body()`` is the timed region and performs ``ops`` operations. ``prepare()``, if given, runs
    untimed before every sample (e.g. reset a book once its delta stream is used up). ``setup()``
    runs once, untimed, before warmup. ``check()``, if given, runs once after sampling and may
    raise if the case produced a wrong result (a benchmark of a broken path is worthless).
    """

    name: str
    body: Callable[[], object]
    ops: int
    prepare: Callable[[], object] | None = None
    setup: Callable[[], object] | None = None
    check: Callable[[], object] | None = None
    n_samples: int | None = None  # samples of this case; None: the group's ``samples``
    samples: list[float] = field(default_factory=list, repr=False)


def _one_sample(case: Case) -> float:
    if case.prepare is not None:
        case.prepare()
    body = case.body
    t0 = time.perf_counter_ns()
    body()
    t1 = time.perf_counter_ns()
    return (t1 - t0) / case.ops


def _split(total: int, rounds: int) -> list[int]:
    return [total // rounds + (1 if r < total % rounds else 0) for r in range(rounds)]


def run_group(
    cases: list[Case],
    *,
    samples: int,
    warmup: int,
    rounds: int = 10,
) -> list[Stats]:
    """Time ``cases`` interleaved: ``rounds`` rounds, each taking its share of every case's
    samples in turn (``case.n_samples`` or ``samples``; slow cases can take fewer samples and
    still be interleaved with the fast ones). Returns one ``Stats`` per case, in order."""
    rounds = max(1, min(rounds, samples, *(c.n_samples or samples for c in cases)))
    plan = [_split(c.n_samples or samples, rounds) for c in cases]
    for case in cases:
        case.samples = []
        if case.setup is not None:
            case.setup()
        for _ in range(warmup):
            _one_sample(case)
    gc_was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        for r in range(rounds):
            for case, per_round in zip(cases, plan, strict=True):
                append = case.samples.append
                for _ in range(per_round[r]):
                    append(_one_sample(case))
    finally:
        if gc_was_enabled:
            gc.enable()
    for case in cases:
        if case.check is not None:
            case.check()
    return [Stats.from_samples(c.name, c.samples, c.ops) for c in cases]


def measure(
    name: str,
    body: Callable[[], object],
    *,
    ops: int,
    samples: int,
    warmup: int,
    prepare: Callable[[], object] | None = None,
) -> Stats:
    """Time one body on its own (see ``run_group`` for interleaved comparisons)."""
    case = Case(name=name, body=body, ops=ops, prepare=prepare)
    return run_group([case], samples=samples, warmup=warmup, rounds=1)[0]


def pin_to_cpu(cpu: int) -> set[int]:
    """Pin this process to one CPU (Linux ``sched_setaffinity``); returns the new affinity."""
    os.sched_setaffinity(0, {cpu})
    return set(os.sched_getaffinity(0))


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def placement() -> dict[str, Any]:
    """Where and how this run executed: one process, its CPU affinity, the machine, the load."""
    info: dict[str, Any] = {
        "pid": os.getpid(),
        "processes": 1,
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "perf_counter_resolution_ns": time.get_clock_info("perf_counter").resolution * 1e9,
    }
    if hasattr(os, "sched_getaffinity"):
        info["affinity"] = sorted(os.sched_getaffinity(0))
    if hasattr(os, "getloadavg"):
        info["loadavg"] = [round(x, 2) for x in os.getloadavg()]
    return info
