"""``python -m bench [--quick] [--out DIR] [--pin] [--only NAME ...]`` (or ``mmfast bench``): run
mmfast's benchmark suite (every metric with a target in bench/README.md, baselines and peers)
and write results.json, results.md and latency.png to the results folder."""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

from bench.harness import Stats, pin_to_cpu, placement
from bench.micro import FULL, QUICK, Metric, Profile
from bench.report import headline_table, write_results
from bench.suite import ORDER, run_suite

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def _ns(value: float) -> str:
    if math.isnan(value):
        return "-"
    if value >= 1000:
        return f"{value / 1000:.2f} us"
    if value >= 100:
        return f"{value:.0f} ns"
    return f"{value:.1f} ns"


def _target(metric: Metric) -> str:
    if metric.target_ns is None:
        return "-"
    text = f"<= {_ns(metric.target_ns)}"
    if metric.stretch_ns is not None:
        text += f" (stretch {_ns(metric.stretch_ns)})"
    return text


def _met(metric: Metric, ours: Stats) -> str:
    if metric.target_ns is None:
        return "-"
    text = "met" if ours.p50_ns <= metric.target_ns else "NOT met"
    if metric.stretch_ns is not None:
        text += ", stretch " + ("met" if ours.p50_ns <= metric.stretch_ns else "not met")
    return text


def summary_table(metrics: list[Metric]) -> str:
    """One row per (our case, baseline): ours p50/p99 beside the baseline's, the ratio
    (baseline p50 / ours p50), the target and whether our p50 meets it."""
    rows = [
        "| metric | ours | ours p50 | ours p99 | baseline | base p50 | base p99 | ratio | target "
        "| met |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for m in metrics:
        if m.headline is None:
            rows.append(f"| {m.name} | not available: {m.unavailable} | | | | | | | | |")
            continue
        first_of_metric = True
        for ours in m.ours:
            bases: list[Stats | None] = list(m.baselines) or [None]
            for i, b in enumerate(bases):
                name = m.name if first_of_metric else ""
                first_of_metric = False
                ours_cells = (
                    f"{ours.name} | {_ns(ours.p50_ns)} | {_ns(ours.p99_ns)}" if i == 0 else " | | "
                )
                base_cells = (
                    f"{b.name} | {_ns(b.p50_ns)} | {_ns(b.p99_ns)} | {m.ratio(b, ours):.1f}x"
                    if b is not None
                    else "- | | | "
                )
                tail = f"{_target(m)} | {_met(m, ours)}" if i == 0 else " | "
                rows.append(f"| {name} | {ours_cells} | {base_cells} | {tail} |")
    return "\n".join(rows)


def detail_table(metric: Metric) -> str:
    """Every case of one metric with p50, p99, mean, min, samples, and ratio to our headline."""
    lines = [f"### {metric.name} ({metric.unit}): {metric.definition}", ""]
    if metric.unavailable:
        lines.append(f"Not available: {metric.unavailable}")
        lines.append("")
    if metric.ours or metric.baselines:
        lines.append("| case | p50 | p99 | mean | min | samples x ops | vs first row |")
        lines.append("|---|---|---|---|---|---|---|")
        head = metric.headline
        # Reference-only metrics (no target) have no "ours": label their rows neutrally.
        labels = ("ours", "baseline") if metric.target_ns is not None else ("case", "case")
        for kind, stats in zip(labels, (metric.ours, metric.baselines), strict=True):
            for s in stats:
                if head is None:
                    rel = "-"
                else:
                    rel = f"{s.p50_ns / head.p50_ns:.1f}x" if head.p50_ns > 0 else "-"
                lines.append(
                    f"| {kind}: {s.name} | {_ns(s.p50_ns)} | {_ns(s.p99_ns)} | {_ns(s.mean_ns)} "
                    f"| {_ns(s.min_ns)} | {s.n} x {s.ops} | {rel} |"
                )
    for note in metric.notes:
        lines.append(f"- {note}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short run (about a minute)")
    parser.add_argument(
        "--out",
        metavar="DIR",
        default=str(RESULTS_DIR),
        help="results folder (default: bench/results)",
    )
    parser.add_argument("--json", metavar="PATH", help="also write the JSON to PATH")
    parser.add_argument(
        "--pin",
        action="store_true",
        help="this (bot) process on CPU 1, the far end of sockets on CPU 0",
    )
    parser.add_argument("--seed", type=int, default=None, help="stream seed (default 1)")
    parser.add_argument("--only", nargs="+", choices=ORDER, help="run only these metrics")
    args = parser.parse_args(argv)

    profile: Profile = QUICK if args.quick else FULL
    if args.seed is not None:
        profile = Profile(**{**profile.__dict__, "seed": args.seed})
    if args.pin:
        pin_to_cpu(1 if (os.cpu_count() or 1) > 1 else 0)
    place = placement()
    started = time.perf_counter()
    stream, metrics, took = run_suite(
        profile,
        only=args.only,
        pin=args.pin,
        progress=lambda n: print(f"running {n} ...", file=sys.stderr, flush=True),
    )
    elapsed = time.perf_counter() - started
    intro = (
        "# mmfast benchmark suite" + (" (quick)" if args.quick else "") + "\n\n"
        f"Run {time.strftime('%Y-%m-%d %H:%M:%S')}, {elapsed:.0f} s. Bot process pid "
        f"{place['pid']}, CPU affinity {place.get('affinity')}"
        f"{' (pinned to CPU 1, far ends on CPU 0)' if args.pin else ' (not pinned)'}, "
        f"{place['cpu_count']} CPUs ({place['cpu_model']}), load {place.get('loadavg')}, "
        f"Python {place['python']}. Stream seed {profile.seed}, {profile.n_deltas} deltas. "
        "Ratio = baseline p50 / ours p50 (higher: ours faster). p50/p99 are over samples: "
        "single events for latencies, batch means for the micro metrics. Each metric says "
        "how its processes and threads were placed."
    )
    header: dict[str, Any] = {
        "placement": place,
        "pinned": args.pin,
        "profile": profile.__dict__,
        "stream": stream.stats(),
        "elapsed_s": elapsed,
        "metric_wall_s": took,
    }
    paths = write_results(Path(args.out), metrics, header, intro)
    if args.json:
        Path(args.json).write_text(paths["json"].read_text(encoding="utf-8"), encoding="utf-8")
    print(intro)
    print()
    print(headline_table(metrics))
    print()
    print("Written: " + ", ".join(str(p) for p in paths.values()))
    return 0


def _clean(obj: Any) -> Any:
    """NaN/inf (a ratio with nothing to compare) -> null, so the file is strict JSON."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    return obj


if __name__ == "__main__":
    sys.exit(main())
