"""The backtest-speed metric: simulated seconds per wall second of ``mmfast backtest``.

A seeded synthetic tape (``mmfast.tape.synthetic``: an ETH-like book, chained deltas every
50 ms, ~8 trades/s, stats every second; 1 h, or 5 min with ``--quick``) is replayed by the
``mmfast backtest`` command in its own process, the market_making strategy quoting 3 ticks
from the mid so that the tape's trades fill it (queue and through fills, requotes, the
venue's speed bumps). The headline is the whole run's pace (simulated seconds of tape over
the run's wall time, start-up excluded); the distribution is the wall time of each 10 s of
tape (the run's checkpoints), per simulated second.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import orjson

from bench.harness import Stats
from bench.l2stream import L2Stream
from bench.micro import Metric, Profile

__all__ = ["BACKTEST_CONFIG", "backtest"]

REPO = Path(__file__).resolve().parent.parent
TARGET_X = 20.0  # simulated seconds per wall second, at least

BACKTEST_CONFIG = """
[venue]
mode = "sim"

[market]
symbol = "ETH"
market_id = 0

[strategy]
name = "market_making"

[strategy.market_making]
mode = "fixed"
bid_spread_ticks = 3
ask_spread_ticks = 3
levels = 2
level_spread_ticks = 2
order_amount_lots = 100
refresh_tolerance_ticks = 1
size_tolerance_lots = 10
filled_order_delay_s = 0.0
order_expiry_s = 305
inventory_skew_ticks = 2
min_spread_ticks = 1
reference_price = "mid"

[risk]
max_position_lots = 5000
max_order_notional_usdc = 2000
max_open_orders = 20
price_band_bps = 200
order_rate_cap = 20000
order_rate_window_s = 60.0
margin_headroom = 0.2

[risk.kill_switch]
max_drawdown_usdc = 1000.0
max_fills_per_min = 600
max_reject_rate = 0.5
reject_min_samples = 10
action = "pause"
pause_cooldown_s = 30.0
"""


def backtest(stream: L2Stream, profile: Profile, pin: bool = False) -> Metric:
    """Run ``mmfast backtest`` on a generated tape; see the module doc."""
    from mmfast.tape.synthetic import write_synthetic_tape

    seconds = 300.0 if profile.quick else 3600.0
    metric = Metric(
        name="backtest",
        unit="ns",
        definition=f"mmfast backtest of a {seconds / 60:g} min synthetic tape (market_making "
        "3 ticks from the mid, the venue's speed bumps): wall time per simulated second, "
        "per 10 s of tape",
        target_text=f">= {TARGET_X:g}x real time",
        placement="the backtest in its own process, simulator and bot on one event loop "
        "(virtual clock)",
    )
    with tempfile.TemporaryDirectory(prefix="mmfast-bench-backtest-") as tmp:
        t = Path(tmp)
        tape = t / "synthetic.tape"
        write_synthetic_tape(tape, seconds=seconds, seed=profile.seed)
        cfg = t / "bot.toml"
        cfg.write_text(BACKTEST_CONFIG)
        out = t / "out"
        env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        cmd = [
            sys.executable,
            "-m",
            "mmfast.cli",
            "backtest",
            str(tape),
            "--config",
            str(cfg),
            "-o",
            str(out),
            "--seed",
            str(profile.seed),
            "--no-progress",
        ]
        if pin:
            cmd = ["taskset", "-c", "1", *cmd]
        proc = subprocess.run(
            cmd, capture_output=True, text=True, env=env, timeout=seconds * 2 + 120
        )
        if proc.returncode != 0:
            metric.unavailable = (
                f"mmfast backtest exited {proc.returncode}: "
                f"{(proc.stderr or proc.stdout).strip()[-300:]}"
            )
            return metric
        summary: dict[str, Any] = orjson.loads((out / "backtest.json").read_bytes())
    cps = summary["checkpoints"]
    per_s = []
    prev_tape, prev_wall = 0.0, 0.0
    for tape_s, wall_s in cps:
        if tape_s > prev_tape:
            per_s.append((wall_s - prev_wall) / (tape_s - prev_tape) * 1e9)
        prev_tape, prev_wall = tape_s, wall_s
    speed = summary["speed_x"]
    metric.ours = [
        Stats.from_samples("mmfast backtest (virtual clock): wall ns per simulated s", per_s, 1)
    ]
    metric.verdict = speed >= TARGET_X
    metric.target_text = (
        f">= {TARGET_X:g}x real time (ours: {speed:.1f}x, "
        f"{summary['simulated_s']:.0f} s of tape in {summary['wall_s']:.1f} s)"
    )
    replay = summary["replay"]
    metric.figures.update(
        speed_x=round(speed, 2),
        simulated_s=summary["simulated_s"],
        run_wall_s=round(summary["wall_s"], 2),
        fills=summary["fills"],
        tape_events=replay.get("events"),
        tape_trades=replay.get("trades"),
        queue_fills=replay.get("queue_fills"),
        through_fills=replay.get("through_fills"),
    )
    metric.notes.append(
        f"{replay.get('events')} tape events ({replay.get('books')} book, "
        f"{replay.get('trades')} trades), {summary['fills']} fills of ours; the run's wall "
        "time excludes the tape's generation and the process start"
    )
    return metric
