"""Entry point of ``mmfast record`` (the argparse namespace from ``mmfast.cli``)."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path
from typing import Any

from mmfast.signals import STOP_SIGNALS, pending_stop, stopped_early

__all__ = ["record_options", "run_record"]

EXIT_OK = 0
EXIT_FAILED = 1  # the stream gave up, or the venue could not be read
EXIT_USAGE = 2  # bad arguments: nothing was recorded


def record_options(args: Any) -> Any:
    """``RecordOptions`` from the command line; ValueError naming the problem."""
    from mmfast.conf.load import LIGHTER_ENDPOINTS
    from mmfast.tape.record import RecordOptions, check_out_path, sim_urls

    if args.rest_url is not None or args.ws_url is not None:
        if args.rest_url is None or args.ws_url is None:
            raise ValueError("--rest-url and --ws-url go together")
        rest, ws = args.rest_url, args.ws_url
    elif args.sim is not None:
        rest, ws = sim_urls(args.sim)
    else:
        rest, ws = LIGHTER_ENDPOINTS[args.venue or "mainnet"][:2]
    markets = tuple(m.strip() for m in args.markets.split(",") if m.strip())
    out = Path(args.out)
    why = check_out_path(out)
    if why:
        raise ValueError(why)
    return RecordOptions(
        rest_url=rest, ws_url=ws, markets=markets, out=out, duration_s=args.duration
    )


async def _record(opts: Any) -> int:
    from mmfast.core.errors import ExchangeError
    from mmfast.tape.record import Recorder, open_error

    rec = Recorder(opts)
    loop = asyncio.get_running_loop()
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, rec.request_stop, signal.Signals(sig).name)
    early = pending_stop()
    if early is not None:
        return stopped_early("mmfast record")
    try:
        await rec.open()
    except (ExchangeError, OSError, TimeoutError, ValueError) as exc:
        print(f"mmfast record: {open_error(exc)}", file=sys.stderr)
        return EXIT_USAGE if isinstance(exc, ValueError) else EXIT_FAILED
    names = ", ".join(f"{m.symbol} ({m.market_id})" for m in rec.markets)
    print(f"recording {names} from {opts.ws_url} into {opts.out}", flush=True)
    res = await rec.run()
    print(
        f"tape {res.path}: {res.messages} messages, {res.gaps} gaps, "
        f"{res.duration_s:.1f} s, stopped: {res.reason}",
        flush=True,
    )
    if res.error:
        print(f"mmfast record: {res.error}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def run_record(args: Any) -> int:
    """``mmfast record``: exit 0 when stopped (duration, SIGINT, SIGTERM), 1 when the stream
    gave up or the venue could not be read, 2 for bad arguments (nothing is written)."""
    try:
        opts = record_options(args)
    except ValueError as exc:
        print(f"mmfast record: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency
        return asyncio.run(_record(opts))
    return uvloop.run(_record(opts))
