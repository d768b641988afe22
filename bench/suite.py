"""The whole benchmark suite in one run: every metric with a target (bench/README.md), the
baselines and the peers, written to a results folder (JSON, Markdown, PNG)."""

from __future__ import annotations

import os
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from typing import Any

from bench.l2stream import L2Stream, StreamConfig, generate
from bench.micro import (
    Metric,
    Profile,
    book_apply,
    call_floor,
    parse_apply,
    parse_only,
    plan,
    quote,
)

__all__ = ["ORDER", "TARGET_METRICS", "run_suite"]

# The metrics with a target (bench/README.md's suite table), in the table's order.
TARGET_METRICS = (
    "book_apply",
    "parse_apply",
    "quote",
    "step_internal",
    "step_signed",
    "wire_to_wire",
    "sign",
    "tick_to_trade",
    "feed_throughput",
    "book_memory",
    "scheduler_jitter",
    "loop_lag",
    "backtest",
)
# Reference figures run beside them (no target of their own).
EXTRA_METRICS = (
    "sign_parts",
    "plan",
    "peers_parse_apply",
    "peers_book_apply",
    "ws_echo",
    "feed_loopback",
    "parse_only",
    "call_floor",
)
ORDER = TARGET_METRICS + EXTRA_METRICS


def _runners() -> dict[str, Callable[..., Metric]]:
    from bench import backtest, latency, loops, peers, signing, wire

    def micro(fn: Callable[[L2Stream, Profile], Metric]) -> Callable[..., Metric]:
        def run(stream: L2Stream, profile: Profile, pin: bool = False) -> Metric:
            m = fn(stream, profile)
            m.placement = (
                "one process, no threads ("
                + (
                    "pinned to CPU 1"
                    if pin
                    else f"affinity {sorted(os.sched_getaffinity(0))}, not pinned"
                )
                + ")"
            )
            return m

        return run

    def micro_placed(fn: Callable[..., Metric]) -> Callable[..., Metric]:
        def run(stream: L2Stream, profile: Profile, pin: bool = False) -> Metric:
            m = fn(stream, profile, pin)
            m.placement = (
                "one process; the calls on this thread, no pool thread ("
                + (
                    "pinned to CPU 1"
                    if pin
                    else f"affinity {sorted(os.sched_getaffinity(0))}, not pinned"
                )
                + ")"
            )
            return m

        return run

    return {
        "book_apply": micro(book_apply),
        "parse_apply": micro(parse_apply),
        "quote": micro(quote),
        "plan": micro(plan),
        "step_internal": latency.step_internal,  # runs a venue process: places itself
        "step_signed": latency.step_signed,  # two venue processes: places itself
        "wire_to_wire": wire.wire_to_wire,
        "sign": signing.sign,
        "sign_parts": micro_placed(signing.sign_parts),
        "tick_to_trade": wire.tick_to_trade,
        "feed_throughput": micro(latency.feed_throughput),
        "book_memory": micro(latency.book_memory),
        "scheduler_jitter": loops.scheduler_jitter,
        "loop_lag": loops.loop_lag,
        "backtest": backtest.backtest,  # its own process
        "peers_parse_apply": micro(peers.peers_parse_apply),
        "peers_book_apply": micro(peers.peers_book_apply),
        "ws_echo": loops.echo,
        "feed_loopback": loops.feed_loopback,
        "parse_only": micro(parse_only),
        "call_floor": micro(call_floor),
    }


def run_suite(
    profile: Profile,
    *,
    only: Sequence[str] | None = None,
    pin: bool = False,
    progress: Callable[[str], Any] | None = None,
) -> tuple[L2Stream, list[Metric], dict[str, float]]:
    """Generate the shared stream once, run the metrics (all, or ``only``) in ORDER.

    A metric that fails is reported as not available with the error; the others still run.
    Returns the stream, the metrics and each metric's wall time in seconds."""
    stream = generate(StreamConfig(seed=profile.seed, n_deltas=profile.n_deltas))
    runners = _runners()
    out: list[Metric] = []
    took: dict[str, float] = {}
    for name in ORDER:
        if only and name not in only:
            continue
        if progress is not None:
            progress(name)
        t0 = time.perf_counter()
        try:
            m = runners[name](stream, profile, pin)
        except Exception as exc:
            tb = traceback.format_exc(limit=3)
            print(tb, file=sys.stderr)
            m = Metric(
                name=name, unit="", definition="", unavailable=f"{type(exc).__name__}: {exc}"
            )
        took[name] = time.perf_counter() - t0
        m.figures["wall_s"] = round(took[name], 2)
        out.append(m)
    return stream, out, took
