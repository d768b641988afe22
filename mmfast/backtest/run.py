"""``mmfast backtest``: the bot, unchanged, against the simulator replaying a tape.

One process, one event loop (``VirtualTimeLoop``): the simulator (``Simulator(tape=...)``,
docs/sim.md) replays the tape as its market, and ``mmfast run``'s ``Runner`` (the same
strategy, connector, compiled core, signer and journal) trades against it over loopback
sockets, both on the loop's virtual clock (``LoopTime``), so the run goes as fast as the code
on it and is a pure function of the tape, the config and the seed. It stops when the tape
ends (the bot then cancels its orders as at any stop) and prints the run's summary, then the
backtest's; ``-o DIR`` gets the journal, the fills as the venue recorded them, a JSON summary
and the report (``mmfast.report.write_report``).

What the config keeps and loses: everything but ``[venue]`` is used as written. ``[venue]``
becomes the backtest's simulator (sim mode, the native signer), keeping the settings of how
the bot trades there (``tier``, which sets the venue's speed bumps and rate limits,
``maker_only``, ``skip_nonce_recovery``, ``ws_order_frames``, the volume-quota levels). The
guard (its own process on the host's clock) and ``[run] cpu``/``busy_poll`` are off.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import hashlib
import itertools
import os
import shutil
import sys
import tempfile
import time as _time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

from mmfast.backtest.vloop import LoopClock, LoopTime, VirtualTimeLoop
from mmfast.conf import ConfigError, parse_config, read_config_toml
from mmfast.conf.schema import Config
from mmfast.tape import Tape, TapeError, TapeInfo, TapeMarket, open_tape

__all__ = ["BacktestOptions", "BacktestResult", "backtest_config", "run_backtest", "sim_config_for"]

EXIT_OK = 0
EXIT_FAILED = 1  # the run failed, orders were left open, or the tape broke midway
EXIT_USAGE = 2  # bad options, config or tape: nothing ran
CHECKPOINT_S = 10.0  # simulated seconds between the run's (tape, wall) checkpoints

# [venue] keys of the user's config that say how the bot trades (kept in a backtest).
_VENUE_KEPT = (
    "tier",
    "maker_only",
    "skip_nonce_recovery",
    "ws_order_frames",
    "volume_quota_low",
    "volume_quota_span",
)


@dataclass(frozen=True, slots=True)
class BacktestOptions:
    """``mmfast backtest``'s options."""

    tape: tuple[str, ...]  # one mmfast tape, or Tardis CSVs (book [+ trades])
    config: str | None = None  # TOML (default: the shipped sim.toml)
    seed: int = 1  # the simulator's seed (ids, speed-bump draws) and the bot's jitter
    speed: float | None = None  # simulated seconds per real second; None: as fast as it goes
    out_dir: str | None = None  # journal, fills, summary, report (default: a temp dir)
    queue_model: str = "risk_averse"
    queue_power: float = 2.0
    price_decimals: int | None = None  # Tardis tapes only
    size_decimals: int | None = None  # Tardis tapes only
    progress: bool = True  # a progress line on stderr every few seconds

    def __post_init__(self) -> None:
        if not self.tape:
            raise ValueError("no tape given")
        if self.speed is not None and not (0 < self.speed <= 1e6):
            raise ValueError("--speed must be within (0, 1e6]")
        from mmfast.sim.queue import make_model

        make_model(self.queue_model, self.queue_power)


@dataclass(slots=True)
class BacktestResult:
    """What a backtest produced (``run_backtest`` also prints it)."""

    exit_code: int
    tape: TapeInfo | None = None
    simulated_s: float = 0.0  # tape time replayed
    wall_s: float = 0.0  # real time the run took (set-up excluded)
    cpu_s: float = 0.0  # CPU time of this process over the same span (on a busy machine the
    # wall time also counts the waits for a CPU)
    fills: list[dict[str, Any]] = field(default_factory=list)  # ours, as the venue has them
    fills_digest: str = ""  # sha256 of the fills (trade id, time, side, price, size, fee)
    journal: str = ""
    out_dir: str = ""
    report: str = ""  # report.html (mmfast report's), when it was made
    replay: dict[str, Any] = field(default_factory=dict)
    tape_stats: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    jumps: int = 0  # times the virtual clock jumped to a timer
    # (tape seconds replayed, wall seconds since the start) every CHECKPOINT_S of tape
    checkpoints: list[tuple[float, float]] = field(default_factory=list)

    @property
    def speed(self) -> float:
        return self.simulated_s / self.wall_s if self.wall_s > 0 else 0.0


def backtest_config(path: str | None, state_dir: str | None = None) -> Config:
    """The bot's config for a backtest (see the module doc); ConfigError naming the key.
    ``state_dir``: where the bot's state files go (instead of the config's)."""
    p, data = read_config_toml(path)
    venue = data.get("venue")
    venue = venue if isinstance(venue, dict) else {}
    data["venue"] = {
        "mode": "sim",
        "signer": "native",
        **{k: venue[k] for k in _VENUE_KEPT if k in venue},
    }
    if state_dir is not None:
        data["venue"]["state_dir"] = state_dir
    guard = data.get("guard")
    data["guard"] = {**(guard if isinstance(guard, dict) else {}), "enabled": False}
    run = data.get("run")
    if isinstance(run, dict):
        for k in ("cpu", "busy_poll", "journal_path"):
            run.pop(k, None)
    # No key in a backtest: a throwaway one signs under the simulator's chain id.
    return parse_config(data, live=False, env={}, source=str(p))


def sim_config_for(
    cfg: Config,
    info: TapeInfo,
    seed: int,
    queue_model: str,
    queue_power: float,
    first_mid: dict[int, int],
) -> Any:
    """The simulator of a backtest: the tape's markets, the config's tier (its speed bumps
    and rate limits, as on the venue), the tape as the market."""
    from mmfast.sim.config import MarketSpec, ReplayConfig, SimConfig

    v = cfg.venue
    markets = tuple(
        MarketSpec(
            m.market_id,
            m.symbol,
            size_decimals=m.size_decimals,
            price_decimals=m.price_decimals,
            mark_price=first_mid.get(m.market_id, 1),
            min_base_amount=max(1, m.min_base_lots),
            min_quote_amount=m.min_quote_micro,
            taker_fee=m.taker_fee_1e6,
            maker_fee=m.maker_fee_1e6,
            default_initial_margin_fraction=m.default_imf_1e4,
            min_initial_margin_fraction=m.min_imf_1e4,
            maintenance_margin_fraction=m.maintenance_mf_1e4,
            closeout_margin_fraction=m.closeout_mf_1e4,
        )
        for m in info.markets
    )
    assert v.chain_id is not None and v.account_index is not None
    # book_batch_ms 0: each tape message is published at its own time (the tape's deltas are
    # the venue's batches already; batching them again would delay and merge them).
    return SimConfig(
        seed=seed,
        chain_id=v.chain_id,
        account_index=v.account_index,
        markets=markets,
        tier=v.tier or "premium",
        speed_bumps=True,
        book_batch_ms=0,
        replay=ReplayConfig(queue_model=queue_model, queue_power=queue_power),
    )


def _check_market(cfg: Config, info: TapeInfo) -> TapeMarket:
    m = cfg.market
    for tm in info.markets:
        if (m.market_id is None or m.market_id == tm.market_id) and (
            not m.symbol or m.symbol.upper() == tm.symbol.upper()
        ):
            return tm
    have = ", ".join(f"{tm.symbol} ({tm.market_id})" for tm in info.markets)
    want = " ".join(
        x for x in (m.symbol or "", f"({m.market_id})" if m.market_id is not None else "") if x
    )
    raise TapeError(
        f"the config trades {want} but the tape has {have} (set [market] to one "
        "of the tape's markets)"
    )


def _peek(tape: Tape) -> tuple[Tape, int, dict[int, int]]:
    """The tape with its first event put back, that event's time and each market's mid in
    the first book events of that time (the simulator's first mark)."""
    it = tape.events()
    first = next(it, None)
    if first is None:
        raise TapeError(f"{', '.join(tape.info.paths)}: the tape has no event")
    mids: dict[int, int] = {}
    if first.kind == "book" and first.bids and first.asks:  # type: ignore[union-attr]
        mids[first.market] = (first.bids[0][0] + first.asks[0][0]) // 2  # type: ignore[union-attr]
    return Tape(tape.info, itertools.chain([first], it), tape.stats), first.t_ns, mids


class _OurFills:
    """Our trades as the venue books them (the engine's trade hook), as rows."""

    def __init__(self, account: int, markets: tuple[TapeMarket, ...]) -> None:
        self.account = account
        self._dec = {m.market_id: m for m in markets}
        self.rows: list[dict[str, Any]] = []

    def __call__(self, t: dict[str, Any]) -> None:
        from mmfast.core.units import format_units

        acct = self.account
        maker = t["maker_account"] == acct
        if not maker and t["taker_account"] != acct:
            return
        m = self._dec[t["market_id"]]
        # The maker's side is its order's; the taker's the other one.
        sell = t["is_maker_ask"] if maker else not t["is_maker_ask"]
        self.rows.append(
            {
                "trade_id": t["trade_id"],
                "timestamp_ms": t["timestamp"],
                "market": m.market_id,
                "side": "sell" if sell else "buy",
                "price": format_units(t["price"], m.price_decimals),
                "size": format_units(t["size"], m.size_decimals),
                "fee_usdc": format_units(t["maker_fee_paid" if maker else "taker_fee_paid"], 6),
                "liquidity": "maker" if maker else "taker",
            }
        )


def _digest(rows: list[dict[str, Any]]) -> str:
    return hashlib.sha256(orjson.dumps(rows)).hexdigest()


def _write_outputs(res: BacktestResult, out_dir: Path, opts: BacktestOptions, err: IO[str]) -> None:
    with open(out_dir / "fills.csv", "w", newline="") as f:
        cols = [
            "trade_id",
            "timestamp_ms",
            "market",
            "side",
            "price",
            "size",
            "fee_usdc",
            "liquidity",
        ]
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        w.writerows(res.fills)
    info = res.tape
    summary = {
        "tape": {
            "format": info.format,
            "paths": list(info.paths),
            "markets": [m.to_json() for m in info.markets],
            "source": info.source,
        }
        if info is not None
        else None,
        "seed": opts.seed,
        "queue_model": opts.queue_model,
        "queue_power": opts.queue_power,
        "speed": opts.speed,
        "simulated_s": res.simulated_s,
        "wall_s": res.wall_s,
        "cpu_s": res.cpu_s,
        "speed_x": res.speed,
        "exit_code": res.exit_code,
        "error": res.error,
        "fills": len(res.fills),
        "fills_sha256": res.fills_digest,
        "replay": res.replay,
        "tape_read": res.tape_stats,
        "journal": res.journal,
        "checkpoints": res.checkpoints,
    }
    (out_dir / "backtest.json").write_bytes(
        orjson.dumps(summary, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS)
    )
    from mmfast.report import write_report

    try:
        res.report = str(write_report(res.journal, out_dir))
    except Exception as exc:  # the run's results stand without the report
        err.write(f"mmfast backtest: the report failed: {type(exc).__name__}: {exc}\n")


def render_backtest(res: BacktestResult, opts: BacktestOptions) -> list[str]:
    """The backtest's block after the run's summary."""
    lines = ["=== mmfast backtest ==="]
    info = res.tape
    if info is not None:
        names = ", ".join(f"{m.symbol} ({m.market_id})" for m in info.markets)
        lines.append(f"tape         {info.format}: {', '.join(info.paths)}  markets {names}")
    pace = "as fast as it goes" if opts.speed is None else f"paced at {opts.speed:g}x"
    lines.append(
        f"simulated    {res.simulated_s:.1f} s of tape in {res.wall_s:.1f} s "
        f"({res.speed:.1f}x real time, {pace}; {res.cpu_s:.1f} s of CPU), "
        f"seed {opts.seed}"
    )
    r = res.replay
    if r:
        lines.append(
            f"replay       {r['events']} events: {r['books']} book ({r['snapshots']} "
            f"snapshots), {r['trades']} trades, {r['stats']} stats, {r['gaps']} gaps"
        )
        lines.append(
            f"tape fills   queue {r['queue_fills']}  through {r['through_fills']}  "
            f"crossing {r['crossing_fills']}  (queue model {opts.queue_model}"
            f"{f' n={opts.queue_power:g}' if opts.queue_model == 'power' else ''})"
        )
    skipped = res.tape_stats.get("skipped") or {}
    if skipped or res.tape_stats.get("truncated"):
        what = ", ".join(f"{k} {v}" for k, v in skipped.items())
        lines.append(
            f"tape read    {'truncated; ' if res.tape_stats.get('truncated') else ''}"
            f"skipped: {what or 'nothing'}"
        )
    lines.append(f"fills        {len(res.fills)} (venue record sha256 {res.fills_digest[:16]})")
    if res.out_dir:
        lines.append(f"output       {res.out_dir}")
    if res.report:
        lines.append(f"report       {res.report}")
    if res.error:
        lines.append(f"error        {res.error}")
    return lines


async def _checkpoints(sim: Any, t0: int, res: BacktestResult, err: IO[str] | None) -> None:
    """Every 10 simulated seconds, (tape seconds done, wall seconds taken) into the result
    (where a run goes slower shows there); with ``err``, a progress line every ~5 s."""
    w0 = _time.perf_counter()
    last = w0
    while True:
        await asyncio.sleep(CHECKPOINT_S)  # simulated seconds (this loop's clock)
        now = _time.perf_counter()
        done = (sim.tape_now_ns - t0) / 1e9
        res.checkpoints.append((round(done, 3), round(now - w0, 4)))
        if err is not None and now - last >= 5.0:
            last = now
            err.write(f"backtest: {done:.0f} s of tape, {done / max(now - w0, 1e-9):.1f}x\n")
            err.flush()


async def _main(
    opts: BacktestOptions,
    cfg: Config,
    tape: Tape,
    t0: int,
    mids: dict[int, int],
    time: LoopTime,
    out_dir: Path,
    out: IO[str],
    err: IO[str],
    res: BacktestResult,
) -> None:
    from mmfast.run.runner import Runner, RunOptions
    from mmfast.sim.server import Simulator

    sc = sim_config_for(cfg, tape.info, opts.seed, opts.queue_model, opts.queue_power, mids)
    sim = Simulator(sc, time, tape=tape)
    assert cfg.venue.account_index is not None
    fills = _OurFills(cfg.venue.account_index, tape.info.markets)
    sim.exchange.on_trade = fills
    await sim.start()
    journal = out_dir / "journal.jsonl"
    ropts = RunOptions(config=opts.config, quiet=True, journal=str(journal), seed=opts.seed)
    runner = Runner(
        cfg,
        ropts,
        out=out,
        err=err,
        sim=sim,
        time=time,
        clock_factory=LoopClock.make(time),
        journal_timer=False,
    )
    runner.setup_logging()  # mmfast's loggers on err, the run's key redacted
    loop = asyncio.get_running_loop()

    async def stop_at_tape_end() -> None:
        await sim.replay_done.wait()
        if sim.replay_error is not None:
            res.error = f"the tape broke at {sim.tape_now_ns}: {sim.replay_error}"
            runner.request_stop("tape error")
        else:
            runner.request_stop("tape ended")

    tasks = [
        loop.create_task(stop_at_tape_end()),
        loop.create_task(_checkpoints(sim, t0, res, err if opts.progress else None)),
    ]
    w0 = _time.perf_counter()
    c0 = _time.process_time()
    try:
        res.exit_code = await runner.run()
    finally:
        res.wall_s = _time.perf_counter() - w0
        res.cpu_s = _time.process_time() - c0
        for t in tasks:
            t.cancel()
        res.simulated_s = (sim.tape_now_ns - t0) / 1e9
        res.journal = str(journal)
        res.replay = sim.replay.stats.to_json() if sim.replay is not None else {}
        res.fills = fills.rows
        res.fills_digest = _digest(res.fills)
        await sim.stop()


def _close_loop(loop: asyncio.AbstractEventLoop) -> None:
    """What asyncio.run does at the end: tasks still pending (a connector's refresh the stop
    did not wait for) cancelled and awaited, async generators closed, the loop closed."""
    try:
        pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for t in pending:
            t.cancel()
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        with contextlib.suppress(Exception):
            loop.run_until_complete(loop.shutdown_asyncgens())
    finally:
        asyncio.set_event_loop(None)
        loop.close()


def run_backtest(
    opts: BacktestOptions, *, out: IO[str] | None = None, err: IO[str] | None = None
) -> BacktestResult:
    """Run one backtest (see the module doc) and print its summary. Never raises for bad
    input: the result's exit code and error say what went wrong."""
    out = out or sys.stdout
    err = err or sys.stderr
    res = BacktestResult(EXIT_USAGE)
    state = _state_dir()
    try:
        return _run(opts, out, err, res, state)
    finally:
        shutil.rmtree(state, ignore_errors=True)


def _state_dir() -> str:
    """A fresh directory for the bot's state files (client order ids, the fill watermark),
    on a RAM filesystem when there is one: the bot fsyncs them at every fill, which costs
    milliseconds on a disk and nothing there, and a backtest's state is thrown away."""
    shm = "/dev/shm"
    base = shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else None
    return tempfile.mkdtemp(prefix="mmfast-backtest-state-", dir=base)


def _run(
    opts: BacktestOptions, out: IO[str], err: IO[str], res: BacktestResult, state: str
) -> BacktestResult:
    try:
        cfg = backtest_config(opts.config, state)
        m = cfg.market
        kw: dict[str, Any] = dict(
            market_id=m.market_id or 0,
            price_decimals=opts.price_decimals,
            size_decimals=opts.size_decimals,
        )
        res.tape = open_tape(list(opts.tape), **kw).info
        # The market the bot trades alone: the others' events would be replayed for nobody.
        tape = open_tape(list(opts.tape), only=_check_market(cfg, res.tape).market_id, **kw)
        tape, t0, mids = _peek(tape)
    except (ConfigError, TapeError, ValueError, OSError) as exc:
        res.error = str(exc)
        err.write(f"mmfast backtest: {exc}\n")
        return res
    if opts.out_dir:
        out_dir = Path(opts.out_dir)
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            res.error = f"cannot create {out_dir}: {exc.strerror}"
            err.write(f"mmfast backtest: {res.error}\n")
            return res
        if (out_dir / "journal.jsonl").exists():
            res.error = f"{out_dir} holds a backtest already (journal.jsonl): choose another -o"
            err.write(f"mmfast backtest: {res.error}\n")
            return res
    else:
        out_dir = Path(tempfile.mkdtemp(prefix="mmfast-backtest-"))
    res.out_dir = str(out_dir)
    loop = VirtualTimeLoop(pace=opts.speed)
    time = LoopTime(loop, start_wall_ms=t0 // 1_000_000)
    # The clock's ns below the tape's ms: the first event lands on the tape's exact time.
    try:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(_main(opts, cfg, tape, t0, mids, time, out_dir, out, err, res))
    except KeyboardInterrupt:
        res.exit_code = EXIT_FAILED
        res.error = res.error or "interrupted"
    finally:
        _close_loop(loop)
    res.jumps = loop.jumps
    res.tape_stats = tape.stats.to_json()
    if res.error and res.exit_code == EXIT_OK:
        res.exit_code = EXIT_FAILED
    _write_outputs(res, out_dir, opts, err)
    out.write("\n".join(render_backtest(res, opts)) + "\n")
    out.flush()
    return res
