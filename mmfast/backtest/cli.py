"""Entry point of ``mmfast backtest`` (the argparse namespace from ``mmfast.cli``)."""

from __future__ import annotations

import sys
from typing import Any

from mmfast.signals import pending_stop, stopped_early

__all__ = ["run_backtest_cli"]


def run_backtest_cli(args: Any) -> int:
    """Exit 0 when the run was clean, 1 when it failed or left orders open (or the tape
    broke midway), 2 for bad options, config or tape (nothing ran), 3 when the kill switch
    stopped it."""
    from mmfast.backtest.run import EXIT_USAGE, BacktestOptions, run_backtest

    try:
        opts = BacktestOptions(
            tape=tuple(args.tape),
            config=args.config,
            seed=args.seed,
            speed=args.speed,
            out_dir=args.out,
            queue_model=args.queue_model,
            queue_power=args.queue_power,
            price_decimals=args.price_decimals,
            size_decimals=args.size_decimals,
            progress=args.progress,
        )
    except ValueError as exc:
        print(f"mmfast backtest: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if pending_stop() is not None:
        return stopped_early("mmfast backtest")
    return run_backtest(opts).exit_code
