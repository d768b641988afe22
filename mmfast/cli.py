"""The `mmfast` command. Subcommands register themselves in `_COMMANDS`.

Its first statement takes over the stop signals until a subcommand installs its own
(``mmfast.signals``): one that arrives meanwhile is noted and acted on there."""

from __future__ import annotations

# Only what the early signal handlers need is imported with the module: main() installs them
# before anything heavier is imported.
import signal
import sys
from typing import TYPE_CHECKING, Any

from mmfast.signals import (
    STOP_SIGNALS,
    install_early,
    note,
    pending_stop,
    stopped_early,
)

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Sequence

    _Sub = argparse._SubParsersAction[argparse.ArgumentParser]


def _add_sim(sub: _Sub) -> None:
    from mmfast.sim.config import DEFAULT_ACCOUNT_INDEX, DEFAULT_CHAIN_ID, DEFAULT_TIER, TIERS

    p = sub.add_parser("sim", help="run the Lighter-compatible simulator on 127.0.0.1")
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="loopback address to bind (default: 127.0.0.1; any other address is refused)",
    )
    p.add_argument("--port", type=int, default=0, help="TCP port (default 0: any free port)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument(
        "--account-index",
        type=int,
        default=DEFAULT_ACCOUNT_INDEX,
        help=f"index of the funded account (default {DEFAULT_ACCOUNT_INDEX})",
    )
    p.add_argument(
        "--chain-id",
        type=int,
        default=DEFAULT_CHAIN_ID,
        help=f"the simulator's chain id (default {DEFAULT_CHAIN_ID})",
    )
    p.add_argument(
        "--tier",
        choices=tuple(TIERS),
        default=DEFAULT_TIER,
        help=f"account tier: speed bumps, rate limits and volume quota (default {DEFAULT_TIER})",
    )
    p.add_argument(
        "--no-flow",
        dest="flow",
        action="store_false",
        help="no synthetic market flow (default: seeded flow keeps the books alive)",
    )
    p.add_argument(
        "--no-speed-bumps",
        dest="speed_bumps",
        action="store_false",
        help="execute txs right after acceptance",
    )
    p.add_argument(
        "--no-rate-limits",
        dest="rate_limits",
        action="store_false",
        help="do not enforce the venue's request limits",
    )
    p.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="simulated seconds per real second (default 1.0)",
    )
    p.add_argument(
        "--book-history",
        type=int,
        default=0,
        metavar="N",
        help="keep the aggregated book at each of the last N book nonces per "
        "market, served by GET /_sim/truth/book?market=M&nonce=X (default 0: off)",
    )
    p.add_argument(
        "--stop-on-stdin-eof",
        dest="stdin_eof",
        action="store_true",
        help="stop (as on SIGTERM) when standard input reaches end of file: a "
        "parent holding the pipe's other end takes the simulator with it when it "
        "exits or is killed (mmfast run starts its simulator so)",
    )
    p.set_defaults(func=_run_sim)


async def _serve_sim(args: argparse.Namespace) -> int:
    import asyncio

    from mmfast.core.timesource import REAL_TIME, ScaledTime
    from mmfast.sim.config import FlowConfig, SimConfig
    from mmfast.sim.server import Simulator

    cfg = SimConfig(
        host=args.host,
        port=args.port,
        seed=args.seed,
        account_index=args.account_index,
        chain_id=args.chain_id,
        tier=args.tier,
        speed_bumps=args.speed_bumps,
        rate_limits=args.rate_limits,
        flow=FlowConfig() if args.flow else None,
        book_history=args.book_history,
    )
    time_source = REAL_TIME if args.time_scale == 1.0 else ScaledTime(args.time_scale)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, stop.set)
    if args.stdin_eof:
        _stop_at_eof(loop, stop)
    if pending_stop() is not None:
        return stopped_early("mmfast sim")
    async with Simulator(cfg, time_source) as sim:
        print(f"rest: {sim.rest_url}", flush=True)
        print(f"ws: {sim.ws_url}", flush=True)
        print(f"control: {sim.control_url}", flush=True)
        print(
            f"account: {cfg.account_index}  chain_id: {cfg.chain_id}  "
            f"markets: {', '.join(f'{m.market_id}={m.symbol}' for m in cfg.markets)}",
            flush=True,
        )
        # The funded account's L1 (Ethereum) key, a throwaway derived from the seed: clients
        # that register their API key as on the venue (ccxt) sign the ChangePubKey with it.
        print(f"l1_address: {sim.l1_address}  l1_private_key: {sim.l1_private_key}", flush=True)
        await stop.wait()
    return 0


def _stop_at_eof(loop: Any, stop: Any) -> None:
    """Set ``stop`` once stdin reaches end of file (its writer, the parent, is gone or done).
    Whatever is written to it is read and ignored."""
    import os

    fd = sys.stdin.fileno()

    def readable() -> None:
        try:
            data = os.read(fd, 4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            loop.remove_reader(fd)
            stop.set()

    try:
        os.set_blocking(fd, False)
        loop.add_reader(fd, readable)
    except (OSError, ValueError):  # a regular file or a closed stdin: nothing to wait on
        raise ValueError(
            "--stop-on-stdin-eof needs standard input to be a pipe or a terminal"
        ) from None


def _run_sim(args: argparse.Namespace) -> int:
    import asyncio

    from mmfast.sim.config import LOOPBACK_HOSTS

    if args.host not in LOOPBACK_HOSTS:
        print(
            f"mmfast sim: refusing to bind {args.host!r}: loopback only "
            f"({', '.join(sorted(LOOPBACK_HOSTS))})",
            file=sys.stderr,
        )
        return 2
    try:
        return asyncio.run(_serve_sim(args))
    except ValueError as exc:
        print(f"mmfast sim: {exc}", file=sys.stderr)
        return 2


def _add_run(sub: _Sub) -> None:
    p = sub.add_parser(
        "run", help="run the bot (default: the built-in simulator and the market_making strategy)"
    )
    p.add_argument(
        "--config",
        metavar="FILE",
        default=None,
        help="TOML config (default: the shipped sim.toml; see docs/config.md)",
    )
    p.add_argument(
        "--strategy",
        choices=("market_making", "trend_ladder"),
        default=None,
        help="strategy to run (default: the config's strategy.name)",
    )
    p.add_argument(
        "--duration",
        metavar="SECONDS",
        type=float,
        default=None,
        help="stop by itself after this many seconds (default: run until SIGINT)",
    )
    p.add_argument(
        "--quiet", action="store_true", help="no live status (the summary still prints at exit)"
    )
    p.add_argument("--log-json", action="store_true", help="JSON log lines on stderr")
    p.add_argument(
        "--live",
        action="store_true",
        help="allow mainnet (the config must also say venue.allow_mainnet = true)",
    )
    p.add_argument(
        "--journal",
        metavar="FILE",
        default=None,
        help="JSONL journal path (default: the config's run.journal_path)",
    )
    p.add_argument(
        "--seed", type=int, default=1, help="sim mode: the simulator's random seed (default 1)"
    )
    p.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="sim mode: simulated seconds per real second (default 1.0)",
    )
    p.add_argument(
        "--control-port",
        type=int,
        default=None,
        metavar="PORT",
        help="serve the control/metrics endpoint on this port (0: any free port; "
        "default: off); mutations need MMFAST_CONTROL_TOKEN",
    )
    p.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        metavar="PORT",
        help="serve Prometheus metrics on 127.0.0.1:PORT/metrics (0: any free port; default: off)",
    )
    p.add_argument(
        "--control-host",
        default="127.0.0.1",
        help="address of the control endpoint (default 127.0.0.1; anything else "
        "needs MMFAST_CONTROL_TOKEN)",
    )
    p.set_defaults(func=_run_bot)


def _run_bot(args: argparse.Namespace) -> int:
    from mmfast.run.runner import run_from_args

    return run_from_args(args)


def _add_record(sub: _Sub) -> None:
    p = sub.add_parser(
        "record",
        help="record the venue's public streams of some markets into a tape (docs/backtest.md)",
    )
    p.add_argument(
        "--markets",
        required=True,
        metavar="M[,M...]",
        help="markets by symbol or id, comma-separated (ETH,BTC or 0,1)",
    )
    src = p.add_mutually_exclusive_group()
    src.add_argument("--sim", metavar="URL", help="an mmfast sim's base URL (its rest: line)")
    src.add_argument(
        "--venue",
        choices=("mainnet", "testnet"),
        default=None,
        help="Lighter's public endpoints (default: mainnet, unless --sim or --rest-url/--ws-url)",
    )
    src.add_argument("--rest-url", metavar="URL", help="REST base URL (with --ws-url)")
    p.add_argument("--ws-url", metavar="URL", help="WebSocket URL (with --rest-url)")
    p.add_argument(
        "--duration",
        metavar="SECONDS",
        type=float,
        default=None,
        help="stop after this many seconds (default: until SIGINT/SIGTERM)",
    )
    p.add_argument(
        "-o", "--out", required=True, metavar="FILE", help="the tape to write (must not exist)"
    )
    p.set_defaults(func=_run_record)


def _run_record(args: argparse.Namespace) -> int:
    from mmfast.tape.cli import run_record

    return run_record(args)


def _add_backtest(sub: _Sub) -> None:
    p = sub.add_parser(
        "backtest",
        help="run the bot against the simulator replaying a tape, "
        "faster than real time (docs/backtest.md)",
    )
    p.add_argument(
        "tape",
        nargs="+",
        metavar="TAPE",
        help="an mmfast tape (mmfast record), or Tardis CSVs: one "
        "incremental_book_L2 file and optionally one trades file (plain or .gz)",
    )
    p.add_argument(
        "--config",
        metavar="FILE",
        default=None,
        help="the bot's TOML config (default: the shipped sim.toml); its [venue] "
        "becomes the backtest's simulator",
    )
    p.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    pace = p.add_mutually_exclusive_group()
    pace.add_argument(
        "--speed",
        type=float,
        default=None,
        metavar="X",
        help="at most X simulated seconds per real second",
    )
    pace.add_argument("--max-speed", action="store_true", help="as fast as it goes (the default)")
    p.add_argument(
        "-o",
        "--out",
        metavar="DIR",
        default=None,
        help="directory for the journal, fills.csv, backtest.json and the report "
        "(default: a new temporary directory)",
    )
    p.add_argument(
        "--queue-model",
        choices=("risk_averse", "power"),
        default="risk_averse",
        help="how our resting orders advance in their queue (default risk_averse: "
        "only trades advance them)",
    )
    p.add_argument(
        "--queue-power",
        type=float,
        default=2.0,
        metavar="N",
        help="n of the power queue model (default 2)",
    )
    p.add_argument(
        "--price-decimals",
        type=int,
        default=None,
        metavar="D",
        help="Tardis tapes: the market's price decimals (default: inferred)",
    )
    p.add_argument(
        "--size-decimals",
        type=int,
        default=None,
        metavar="D",
        help="Tardis tapes: the market's size decimals (default: inferred)",
    )
    p.add_argument(
        "--no-progress", dest="progress", action="store_false", help="no progress lines on stderr"
    )
    p.set_defaults(func=_run_backtest)


def _run_backtest(args: argparse.Namespace) -> int:
    from mmfast.backtest.cli import run_backtest_cli

    return run_backtest_cli(args)


def _add_guard(sub: _Sub) -> None:
    p = sub.add_parser(
        "guard",
        help="watch one bot and cancel its orders when it cannot "
        "(mmfast run starts one; docs/guard.md)",
    )
    p.add_argument("--rest-url", required=True, help="the venue's REST base URL")
    p.add_argument("--chain-id", type=int, required=True, help="chain id signed into its txs")
    p.add_argument("--account-index", type=int, required=True, help="the bot's account")
    p.add_argument(
        "--api-key-index",
        type=int,
        required=True,
        help="the guard's own API key index (not the bot's)",
    )
    p.add_argument(
        "--market",
        type=int,
        action="append",
        required=True,
        dest="markets",
        help="a market of the bot (repeat for each)",
    )
    p.add_argument("--heartbeat", required=True, help="the bot's heartbeat file")
    p.add_argument("--bot-pid", type=int, required=True, help="the bot's process id")
    p.add_argument("--journal", required=True, help="the guard's JSONL journal")
    p.add_argument(
        "--max-silence-ms",
        type=int,
        default=1500,
        help="act when the bot's heartbeat is older than this (default 1500)",
    )
    p.add_argument(
        "--no-scheduled-cancel-all",
        dest="scheduled",
        action="store_false",
        help="do not keep the venue's scheduled cancel-all armed",
    )
    p.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="sim mode: simulated seconds per real second (default 1.0; the "
        "guard's clock then starts where the simulator's is)",
    )
    p.add_argument(
        "--signer-checked",
        dest="check_signer",
        action="store_false",
        help="skip the start-up comparison of the native signer with the official "
        "one (the bot that starts this guard has just run it on the same build)",
    )
    p.set_defaults(func=_run_guard)


def _run_guard(args: argparse.Namespace) -> int:
    import asyncio
    import os
    from pathlib import Path

    from mmfast.connector.lighter.secret import SecretError, load_api_key
    from mmfast.core.log import SDK_LOGGERS, configure_logging
    from mmfast.core.timesource import REAL_TIME
    from mmfast.run.guard import ENV_GUARD_KEY, Guard, GuardOptions

    if not 0 <= args.api_key_index <= 254 or not 200 <= args.max_silence_ms <= 60_000:
        print(
            "mmfast guard: --api-key-index must be 0..254 and --max-silence-ms 200..60000",
            file=sys.stderr,
        )
        return 2
    try:
        key = load_api_key(env_var=ENV_GUARD_KEY, environ=os.environ)
    except SecretError as exc:
        print(f"mmfast guard: {exc}", file=sys.stderr)
        return 2
    os.environ.pop(ENV_GUARD_KEY, None)  # read once; not passed on to anything it starts
    configure_logging("INFO", quiet=SDK_LOGGERS)
    opts = GuardOptions(
        rest_url=args.rest_url,
        chain_id=args.chain_id,
        account_index=args.account_index,
        api_key_index=args.api_key_index,
        markets=tuple(args.markets),
        heartbeat=Path(args.heartbeat),
        journal=Path(args.journal),
        bot_pid=args.bot_pid,
        max_silence_ms=args.max_silence_ms,
        scheduled_cancel_all=args.scheduled,
        check_signer=args.check_signer,
    )
    time_source: Any = REAL_TIME
    if args.time_scale != 1.0:  # a simulator's: the guard's clock starts where its clock is
        from mmfast.sim.keys import anchored_clock

        try:
            time_source = asyncio.run(anchored_clock(args.rest_url, args.time_scale))
        except RuntimeError as exc:
            print(f"mmfast guard: {exc}", file=sys.stderr)
            return 1
    if pending_stop() is not None:
        return stopped_early("mmfast guard")
    return asyncio.run(Guard(opts, key, time=time_source).run())


def _add_diagnose(sub: _Sub) -> None:
    from mmfast.diagnostics.tp import add_diagnose_parsers

    p = sub.add_parser(
        "diagnose",
        help="read-only operator checks (tp-mismatch, "
        "tp-side-vs-ro); exit 0 consistent, 1 differences, 2 error",
    )
    add_diagnose_parsers(p)


def _add_bench(sub: _Sub) -> None:
    p = sub.add_parser(
        "bench",
        help="run the benchmark suite (= python -m bench, from the "
        "repository root; --help for its options)",
        add_help=False,
        prefix_chars="+",
    )  # every argument goes to python -m bench as is
    p.add_argument(
        "bench_args",
        nargs="*",
        help="arguments of python -m bench (--quick, --out DIR, --pin, --only ...)",
    )
    p.set_defaults(func=_run_bench)


def _run_bench(args: argparse.Namespace) -> int:
    import os

    # The suite lives in the repository's bench/ folder, not in the installed package.
    if os.path.isfile(os.path.join("bench", "__main__.py")) and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        from bench.__main__ import main as bench_main
    except ImportError:
        print(
            "mmfast bench: the bench/ folder is not importable; run it from the repository "
            "root (pip install -e .[bench] for the peers and the PNG)",
            file=sys.stderr,
        )
        return 2
    code: int = bench_main(list(args.bench_args))
    return code


def _add_report(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from mmfast.report.command import add_parser

    add_parser(sub)


# name -> function adding the subcommand's parser
_COMMANDS: dict[str, Callable[[Any], None]] = {
    "sim": _add_sim,
    "diagnose": _add_diagnose,
    "run": _add_run,
    "record": _add_record,
    "backtest": _add_backtest,
    "guard": _add_guard,
    "bench": _add_bench,
    "report": _add_report,
}


def version_text() -> str:
    """mmfast's version, the Python it runs on and the versions of what it is built against
    (picows: the compiled listener; lighter-sdk: the official signer)."""
    import platform
    from importlib import metadata

    from mmfast import __version__

    parts = [f"Python {platform.python_version()}"]
    for dist in ("picows", "uvloop", "lighter-sdk"):
        try:
            parts.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            parts.append(f"{dist} missing")
    return f"mmfast {__version__} ({', '.join(parts)})"


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole parser; with ``command``, only that subcommand's options (the others by name):
    some parsers import their modules for defaults and help, and ``mmfast guard``, started
    beside every bot, must not pay for the simulator's and diagnostics' imports."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="mmfast", description="Low-latency market making for Lighter, with a local simulator."
    )

    class VersionAction(argparse.Action):
        """``--version``: the text is made only when asked (no imports on every start)."""

        def __call__(
            self,
            parser: argparse.ArgumentParser,
            namespace: argparse.Namespace,
            values: Any,
            option_string: str | None = None,
        ) -> None:
            print(version_text())
            parser.exit()

    parser.add_argument(
        "--version",
        action=VersionAction,
        nargs=0,
        help="print mmfast's version and what it runs on, then exit",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, add in _COMMANDS.items():
        if command is None or name == command:
            add(sub)
        else:
            sub.add_parser(name)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    previous = install_early()
    try:
        args_in = sys.argv[1:] if argv is None else list(argv)
        command = args_in[0] if args_in and args_in[0] in _COMMANDS else None
        args = build_parser(command).parse_args(args_in)
        if pending_stop() is not None:
            return stopped_early()
        return int(args.func(args))
    except KeyboardInterrupt:  # a SIGINT before main() took it over
        note(int(signal.SIGINT))
        return stopped_early()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


if __name__ == "__main__":
    sys.exit(main())
