"""The `mmfast` command. Subcommands register themselves in `_COMMANDS`.

Signals before a subcommand has its own handlers (imports, config, start-up): SIGINT, SIGTERM
and SIGHUP end the command quietly with 128 + the signal's number (nothing has been sent yet:
every subcommand that trades installs its own handlers before it connects)."""

from __future__ import annotations

# Only what the early signal handlers need is imported with the module: main() installs them
# before anything heavier is imported.
import signal
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Sequence


def _add_sim(sub: argparse._SubParsersAction) -> None:
    from mmfast.sim.config import DEFAULT_ACCOUNT_INDEX, DEFAULT_CHAIN_ID

    p = sub.add_parser("sim", help="run the Lighter-compatible simulator on 127.0.0.1")
    p.add_argument("--host", default="127.0.0.1", help="loopback address to bind (default: "
                   "127.0.0.1; any other address is refused)")
    p.add_argument("--port", type=int, default=0, help="TCP port (default 0: any free port)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--account-index", type=int, default=DEFAULT_ACCOUNT_INDEX,
                   help=f"index of the funded account (default {DEFAULT_ACCOUNT_INDEX})")
    p.add_argument("--chain-id", type=int, default=DEFAULT_CHAIN_ID,
                   help=f"the simulator's chain id (default {DEFAULT_CHAIN_ID})")
    p.add_argument("--tier", choices=("premium", "standard"), default="premium",
                   help="account tier: speed bumps and rate limits (default premium)")
    p.add_argument("--no-flow", dest="flow", action="store_false",
                   help="no synthetic market flow (default: seeded flow keeps the books alive)")
    p.add_argument("--no-speed-bumps", dest="speed_bumps", action="store_false",
                   help="execute txs right after acceptance")
    p.add_argument("--no-rate-limits", dest="rate_limits", action="store_false",
                   help="do not enforce the venue's request limits")
    p.add_argument("--time-scale", type=float, default=1.0,
                   help="simulated seconds per real second (default 1.0)")
    p.set_defaults(func=_run_sim)


async def _serve_sim(args: argparse.Namespace) -> int:
    import asyncio

    from mmfast.core.timesource import REAL_TIME, ScaledTime
    from mmfast.sim.config import FlowConfig, SimConfig
    from mmfast.sim.server import Simulator

    cfg = SimConfig(host=args.host, port=args.port, seed=args.seed,
                    account_index=args.account_index, chain_id=args.chain_id,
                    tier=args.tier, speed_bumps=args.speed_bumps, rate_limits=args.rate_limits,
                    flow=FlowConfig() if args.flow else None)
    time_source = REAL_TIME if args.time_scale == 1.0 else ScaledTime(args.time_scale)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, stop.set)
    async with Simulator(cfg, time_source) as sim:
        print(f"rest: {sim.rest_url}", flush=True)
        print(f"ws: {sim.ws_url}", flush=True)
        print(f"control: {sim.control_url}", flush=True)
        print(f"account: {cfg.account_index}  chain_id: {cfg.chain_id}  "
              f"markets: {', '.join(f'{m.market_id}={m.symbol}' for m in cfg.markets)}",
              flush=True)
        await stop.wait()
    return 0


def _run_sim(args: argparse.Namespace) -> int:
    import asyncio

    from mmfast.sim.config import LOOPBACK_HOSTS

    if args.host not in LOOPBACK_HOSTS:
        print(f"mmfast sim: refusing to bind {args.host!r}: loopback only "
              f"({', '.join(sorted(LOOPBACK_HOSTS))})", file=sys.stderr)
        return 2
    try:
        return asyncio.run(_serve_sim(args))
    except ValueError as exc:
        print(f"mmfast sim: {exc}", file=sys.stderr)
        return 2


def _add_run(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run the bot (default: the built-in simulator and the "
                       "market_making strategy)")
    p.add_argument("--config", metavar="FILE", default=None,
                   help="TOML config (default: the shipped sim.toml; see docs/config.md)")
    p.add_argument("--strategy", choices=("market_making", "trend_ladder"), default=None,
                   help="strategy to run (default: the config's strategy.name)")
    p.add_argument("--duration", metavar="SECONDS", type=float, default=None,
                   help="stop by itself after this many seconds (default: run until SIGINT)")
    p.add_argument("--quiet", action="store_true",
                   help="no live status (the summary still prints at exit)")
    p.add_argument("--log-json", action="store_true", help="JSON log lines on stderr")
    p.add_argument("--live", action="store_true",
                   help="allow mainnet (the config must also say venue.allow_mainnet = true)")
    p.add_argument("--journal", metavar="FILE", default=None,
                   help="JSONL journal path (default: the config's run.journal_path)")
    p.add_argument("--seed", type=int, default=1,
                   help="sim mode: the simulator's random seed (default 1)")
    p.add_argument("--time-scale", type=float, default=1.0,
                   help="sim mode: simulated seconds per real second (default 1.0)")
    p.add_argument("--control-port", type=int, default=None, metavar="PORT",
                   help="serve the control/metrics endpoint on this port (0: any free port; "
                   "default: off); mutations need MMFAST_CONTROL_TOKEN")
    p.add_argument("--control-host", default="127.0.0.1",
                   help="address of the control endpoint (default 127.0.0.1; anything else "
                   "needs MMFAST_CONTROL_TOKEN)")
    p.set_defaults(func=_run_bot)


def _run_bot(args: argparse.Namespace) -> int:
    from mmfast.run.runner import run_from_args

    return run_from_args(args)


def _add_diagnose(sub: argparse._SubParsersAction) -> None:
    from mmfast.diagnostics.tp import add_diagnose_parsers

    p = sub.add_parser("diagnose", help="read-only operator checks (tp-mismatch, "
                       "tp-side-vs-ro); exit 0 consistent, 1 differences, 2 error")
    add_diagnose_parsers(p)


def _add_bench(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="run the benchmark suite (= python -m bench, from the "
                       "repository root; --help for its options)", add_help=False,
                       prefix_chars="+")  # every argument goes to python -m bench as is
    p.add_argument("bench_args", nargs="*",
                   help="arguments of python -m bench (--quick, --out DIR, --pin, --only ...)")
    p.set_defaults(func=_run_bench)


def _run_bench(args: argparse.Namespace) -> int:
    import os

    # The suite lives in the repository's bench/ folder, not in the installed package.
    if os.path.isfile(os.path.join("bench", "__main__.py")) and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        from bench.__main__ import main as bench_main
    except ImportError:
        print("mmfast bench: the bench/ folder is not importable; run it from the repository "
              "root (pip install -e .[bench] for the peers and the PNG)", file=sys.stderr)
        return 2
    return bench_main(list(args.bench_args))


# name -> function adding the subcommand's parser
_COMMANDS: dict[str, Callable[[Any], None]] = {
    "sim": _add_sim,
    "diagnose": _add_diagnose,
    "run": _add_run,
    "bench": _add_bench,
}


def build_parser() -> argparse.ArgumentParser:
    import argparse

    parser = argparse.ArgumentParser(prog="mmfast", description="Low-latency market making "
                                     "for Lighter, with a local simulator.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in _COMMANDS.values():
        add(sub)
    return parser


# A closed terminal or SSH session (SIGHUP) stops like SIGTERM: cancel, confirm, summary.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Interrupted(BaseException):
    """A stop signal before the command had its own handlers."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _early(signum: int, frame: object) -> None:
    raise Interrupted(signum)


def main(argv: Sequence[str] | None = None) -> int:
    previous = {sig: signal.signal(sig, _early) for sig in STOP_SIGNALS}
    try:
        args = build_parser().parse_args(argv)
        return int(args.func(args))
    except (Interrupted, KeyboardInterrupt) as exc:
        signum = exc.signum if isinstance(exc, Interrupted) else int(signal.SIGINT)
        print(f"mmfast: stopped by {signal.Signals(signum).name} before it started; nothing "
              f"was sent", file=sys.stderr)
        return 128 + signum
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


if __name__ == "__main__":
    sys.exit(main())
