"""``mmfast run``: config -> (simulator) -> connector -> core -> strategy -> risk -> status/journal.

Order of things, so that a bad config never touches the network:

1. Load and validate the config (``--strategy`` is applied before validation, so the chosen
   strategy's cross-field rules are checked). An error names the key; exit 2.
2. Logging (``--log-json``), with a redacting filter holding the run's key.
3. Sim mode without URLs: start the built-in simulator WITH market flow on 127.0.0.1 (a child
   ``mmfast sim`` process by default, ``[run] sim = "thread"`` for a thread of this one), make
   a throwaway API key, sign under the simulator's chain id (a real key was already refused by
   the config). Other modes: the key from the environment or the 0600 key file.
4. Signer thread, ``LighterConnector`` with order entry, the strategy (risk gate and kill switch
   built from ``[risk]``), ``TradingCore``; SIGINT/SIGTERM/SIGHUP and ``--duration`` set the
   stop.
5. Status every ``run.status_interval_s`` (unless ``--quiet``), journal flushed with it.
6. Stop: the core stops the strategy, cancels all of the market's orders and waits for the venue
   to confirm none is left (REST), then the connector, the guard, and last the simulator this
   run started; the summary prints. Exit 0 when clean, 1 when orders remain open (or their
   count is unknown) or the run failed (its simulator process exiting early included), 3 when
   the kill switch stopped the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import sys
import time as _time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from mmfast.conf import ConfigError, parse_config, read_config_toml
from mmfast.conf.schema import Config
from mmfast.connector.lighter.secret import ApiKey, RedactingFilter, Redactor, Secret
from mmfast.core.errors import ExchangeError, MmfastError
from mmfast.core.log import SDK_LOGGERS, TerminalFormatter, configure_logging, get_logger
from mmfast.core.timesource import REAL_TIME, ScaledTime, TimeSource
from mmfast.signals import STOP_SIGNALS, pending_stop, stopped_early

__all__ = [
    "EXIT_CONFIG",
    "EXIT_KILL_STOP",
    "EXIT_OK",
    "EXIT_ORDERS_LEFT",
    "RunOptions",
    "Runner",
    "load_run_config",
    "placement_problem",
    "run_from_args",
]

EXIT_OK = 0
EXIT_ORDERS_LEFT = 1  # orders still open at exit (or unknown), or the run failed
EXIT_CONFIG = 2  # bad config or options: nothing was started
EXIT_KILL_STOP = 3  # the kill switch stopped the run (orders cancelled)

_log = get_logger("run")

# Start-up reads (market metadata) retried on rate limits and venue errors this long.
_STARTUP_DEADLINE_S = 30.0


# The simulator child's exit is looked for this often (real seconds) while the bot runs.
_SIM_WATCH_S = 0.1


@dataclass(frozen=True, slots=True)
class RunOptions:
    """Command-line options of ``mmfast run``."""

    config: str | None = None  # TOML path (None: the shipped sim.toml)
    strategy: str | None = None  # overrides strategy.name
    duration_s: float | None = None  # stop by itself after this many (real) seconds
    quiet: bool = False  # no live status (the summary still prints)
    log_json: bool = False  # JSON log lines
    live: bool = False  # --live (mainnet)
    journal: str | None = None  # JSONL path (None: run.journal_path)
    seed: int = 1  # sim mode: the simulator's seed
    time_scale: float = 1.0  # sim mode: simulated seconds per real second
    control_port: int | None = None  # control/metrics endpoint port (None: off; 0: any)
    control_host: str = "127.0.0.1"  # its address (non-loopback needs a token)
    metrics_port: int | None = None  # Prometheus metrics on 127.0.0.1 (None: off; 0: any)


def load_run_config(opts: RunOptions, env: dict[str, str] | None = None) -> Config:
    """Read and validate the config with the command-line overrides; ConfigError on any
    problem (before any network I/O)."""
    path, data = read_config_toml(opts.config)
    if opts.strategy:
        strat = data.setdefault("strategy", {})
        if isinstance(strat, dict):
            strat["name"] = opts.strategy
    return parse_config(data, live=opts.live, env=env, source=str(path))


class Runner:
    """One run of the bot (see the module doc). For tests: ``key`` may be injected in sim mode
    only (to prove a key never leaks); ``sim`` is a ``SimThread`` to use instead of starting
    one (the caller starts and stops it, so its truth outlives the run), with its ``time``.

    For benchmarks, sim mode only: ``signer`` is an object with ``SignerWorker``'s interface
    used instead of the SignerWorker made from the key (started and stopped by the run), and
    ``tier`` the connector's ``RateTier`` instead of the premium tier.

    For a backtest (``mmfast backtest``, sim mode, the simulator on this run's loop):
    ``clock_factory`` makes the trading core's tick clock (one that follows the loop's
    virtual time), and ``journal_timer=False`` leaves the journal without its flush/fsync
    timer (lines reach the OS as they are written, in simulated 50 ms steps, and the disk
    at the end: an fsync every 100 ms of simulated time would cost more than the run)."""

    def __init__(
        self,
        cfg: Config,
        opts: RunOptions,
        *,
        out: IO[str] | None = None,
        err: IO[str] | None = None,
        key: ApiKey | None = None,
        sim: Any = None,
        time: TimeSource | None = None,
        control_token: Secret | None = None,
        signer: Any = None,
        tier: Any = None,
        clock_factory: Any = None,
        journal_timer: bool = True,
    ) -> None:
        if key is not None and cfg.venue.mode != "sim":
            raise ValueError("an injected key is for sim mode only")
        # A stand-in signer or raised rate limits never go near a real venue.
        if (signer is not None or tier is not None) and cfg.venue.mode != "sim":
            raise ValueError("an injected signer or rate tier is for sim mode only")
        if (clock_factory is not None or not journal_timer) and cfg.venue.mode != "sim":
            raise ValueError("a backtest's clock and journal settings are for sim mode only")
        self._signer_in = signer
        self._tier_in = tier
        self._clock_factory = clock_factory
        self._journal_timer = journal_timer
        self.cfg = cfg
        self.opts = opts
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self._key = key
        self._own_sim = sim is None  # started (and stopped) here
        self._control_token = control_token
        self.control: Any = None  # ControlServer when --control-port is given
        self.metrics: Any = None  # MetricsServer when --metrics-port is given
        self.time: TimeSource = time or (
            REAL_TIME if opts.time_scale == 1.0 else ScaledTime(opts.time_scale)
        )
        self._own_time = time is None  # anchored to an external simulator's clock in run()
        self.redactor = Redactor()
        if control_token is not None:
            self.redactor.add(control_token)
        self.sim: Any = sim  # SimThread: the simulator on a thread of this process
        self.sim_proc: Any = None  # SimProcess: the simulator as this run's child process
        self.sim_lost: int | None = None  # its exit code when it exited while the bot ran
        self._sim_watch: asyncio.TimerHandle | None = None
        self.signer: Any = None
        self.connector: Any = None
        self.strategy: Any = None
        self.core: Any = None
        self.journal: Any = None
        self.market = cfg.market.market_id
        self.symbol = cfg.market.symbol or ""
        self.price_decimals = 2
        self.size_decimals = 4
        self.stop_reason = ""
        self.orders_left: int | None = None
        self.exit_code = EXIT_OK
        self._stop: asyncio.Event | None = None
        self._t0 = 0.0
        self._tmp_state: str | None = None
        self.guard: Any = None  # GuardLink: the guard process and the heartbeat
        self._log_handler: logging.Handler | None = None  # set by setup_logging
        self.placement: Any = None  # Placement: [run] cpu, once applied
        self.busy_poll: Any = None  # BusyPoll: [run] busy_poll, while trading

    # ------------------------------------------------------------------ stop requests
    def request_stop(self, reason: str) -> None:
        if not self.stop_reason:
            self.stop_reason = reason
        if self._stop is not None:
            self._stop.set()

    # ------------------------------------------------------------------ setup
    def setup_logging(self) -> None:
        """mmfast's loggers on ``err`` (JSON with --log-json), SDK loggers quiet, redacted."""
        run = self.cfg.run
        handler = configure_logging(
            run.log_level.upper(),
            json=self.opts.log_json or run.log_json,
            stream=self.err,
            quiet=SDK_LOGGERS,
            others=True,
        )
        if not (self.opts.log_json or run.log_json) and _isatty(self.err):
            # A person reads it (beside the status): the compact form, each record wrapped
            # under its message column rather than at the terminal's edge.
            from rich.console import Console

            from mmfast.run.status import ConsoleLog

            handler.setFormatter(TerminalFormatter())
            assert isinstance(handler, logging.StreamHandler)
            handler.setStream(ConsoleLog.for_handler(Console(file=self.err), handler))
        self._filter: RedactingFilter | None = RedactingFilter([])
        handler.addFilter(self._filter)
        self._log_handler = handler  # printed above the status panel while it is up
        if self._control_token is not None:
            self._filter.add(self._control_token)

    def _add_secret(self, key: ApiKey) -> None:
        self.redactor.add(key)
        f = getattr(self, "_filter", None)
        if f is not None:
            f.add(key)

    def _start_sim(self) -> tuple[str, str]:
        """The built-in simulator on a thread of this process (``[run] sim = "thread"``, or
        the one a test injected), on this run's clock."""
        from mmfast.sim.config import FlowConfig, SimConfig
        from mmfast.sim.thread import SimThread

        if self.sim is None:
            v = self.cfg.venue
            # What `mmfast sim` runs by default (its flow, rate limits), on the configured tier
            # (the one the connector's budget keeps to), without speed bumps: the same market
            # whether the simulator runs here, as this run's child or on its own.
            assert v.chain_id is not None and v.account_index is not None
            sc = SimConfig(
                seed=self.opts.seed,
                chain_id=v.chain_id,
                account_index=v.account_index,
                flow=FlowConfig(),
                speed_bumps=False,
                tier=v.tier or "premium",
            )
            self.sim = SimThread(sc, self.time)
            self.sim.start()
        return self.sim.rest_url, self.sim.ws_url

    async def _start_sim_process(self) -> tuple[str, str]:
        """The built-in simulator as this run's child process (``[run] sim = "process"``):
        ``mmfast sim`` with the settings the thread gets, its stderr in ``sim.log`` beside the
        journal. At a time scale, this run's clock is then anchored to the child's (which
        started its own clock when it started)."""
        from mmfast.sim.process import SimProcess

        v = self.cfg.venue
        assert v.chain_id is not None and v.account_index is not None
        self.sim_proc = SimProcess(
            seed=self.opts.seed,
            chain_id=v.chain_id,
            account_index=v.account_index,
            tier=v.tier or "premium",
            speed_bumps=False,
            time_scale=self.opts.time_scale,
            log_path=self._journal_path().parent / "sim.log",
        )
        # Its start (an interpreter and the simulator's imports, ~1 s) off the loop: a stop
        # signal meanwhile is noted and acted on after it.
        await asyncio.to_thread(self.sim_proc.start)
        _log.info("simulator: child process %d at %s", self.sim_proc.pid, self.sim_proc.rest_url)
        self._watch_sim()
        if self._own_time and self.opts.time_scale != 1.0:
            await self._anchor_to_sim(self.sim_proc.rest_url)
        return self.sim_proc.rest_url, self.sim_proc.ws_url

    def _watch_sim(self) -> None:
        """Every _SIM_WATCH_S: the simulator child exiting before the stop ends the run (exit
        1, the stop reason and the error naming it, with the end of its stderr)."""
        proc = self.sim_proc
        if proc is None or proc.stopped:
            return
        code = proc.poll()
        if code is None:
            self._sim_watch = asyncio.get_running_loop().call_later(_SIM_WATCH_S, self._watch_sim)
            return
        from mmfast.sim.process import exit_text

        self.sim_lost = code
        said = proc.tail()
        _log.error(
            "the simulator (pid %d) exited %s while the bot ran; stopping (its log: %s)%s",
            proc.pid,
            exit_text(code),
            proc.log_path,
            f"; it said:\n{said}" if said else "",
        )
        self.request_stop(f"simulator exited {exit_text(code)}")

    async def _anchor_to_sim(self, rest_url: str) -> None:
        """An external simulator at a time scale: this run's clock starts where the
        simulator's is now, at the same scale (which must be this run's)."""
        from mmfast.sim.keys import anchored_clock

        self.time = await anchored_clock(rest_url, self.opts.time_scale)

    async def _register_sim_key(
        self,
        key: ApiKey,
        rest_url: str,
        api_key_index: int | None = None,
        maker_only: bool | None = None,
    ) -> None:
        """The simulator verifies every signature, as the venue does: register this run's
        public key for (account, API key; default the bot's) before trading, in process or
        through the simulator's loopback control endpoint."""
        from mmfast._core.signer import public_key
        from mmfast.sim.keys import register_api_key_http

        v = self.cfg.venue
        index = v.api_key_index if api_key_index is None else api_key_index
        # Maker-only as configured (default the bot's flag): the simulator then refuses what
        # the venue would refuse such a key.
        mo = v.maker_only if maker_only is None else maker_only
        assert v.account_index is not None and index is not None
        pk = public_key(key.reveal())
        if self.sim is not None:  # on a thread of this process
            self.sim.register_api_key(v.account_index, index, pk.hex(), maker_only=mo)
        else:
            await register_api_key_http(rest_url, v.account_index, index, pk, maker_only=mo)

    def _make_key(self) -> ApiKey:
        v = self.cfg.venue
        if v.mode == "sim":
            if self._key is not None:
                return self._key
            return self._throwaway_key()
        if v.private_key is None:
            raise RuntimeError(
                f"{v.mode} needs the API private key (MMFAST_API_PRIVATE_KEY or venue.key_file)"
            )
        return v.private_key

    @staticmethod
    def _throwaway_key() -> ApiKey:
        from mmfast.connector.lighter.signer_lib import create_api_key

        priv, _pub, err = create_api_key()
        if err:
            raise RuntimeError("could not make a throwaway key for the simulator")
        return ApiKey(priv)

    async def _resolve_market(self, rest_url: str) -> None:
        """Market id and decimals from orderBookDetails (also checks symbol vs id), retried
        on rate limits and venue errors for up to _STARTUP_DEADLINE_S."""
        from mmfast.connector.lighter.budget import PREMIUM
        from mmfast.connector.lighter.rest import fetch_markets

        markets = await fetch_markets(rest_url, PREMIUM, _STARTUP_DEADLINE_S, time=self.time)
        m = self.cfg.market
        if m.market_id is not None:
            info = markets.get(m.market_id)
            if info is None:
                raise RuntimeError(f"market.market_id {m.market_id} is not listed by the venue")
            if m.symbol and info.symbol != m.symbol:
                raise RuntimeError(
                    f"market.symbol {m.symbol!r} is not market {m.market_id} ({info.symbol!r})"
                )
        else:
            found = [i for i in markets.values() if i.symbol == m.symbol]
            if not found:
                raise RuntimeError(f"market.symbol {m.symbol!r} is not listed by the venue")
            info = found[0]
        self.market = info.market_id
        self.symbol = info.symbol
        self.price_decimals = info.price_decimals
        self.size_decimals = info.size_decimals

    def _state_dir(self) -> Path:
        """Where the client-order-id state and the fill watermark live. Persistent whenever
        the venue outlives the bot (testnet, mainnet, an external simulator: a restart must
        reuse no id and count no fill twice); only the simulator embedded in this run gets
        throwaway state (it restarts trade ids and knows no old orders), in a folder named by
        this process, whose leftovers from runs that crashed are removed here."""
        v = self.cfg.venue
        assert v.state_dir is not None
        v.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        if v.mode == "sim" and (self.sim is not None or self.sim_proc is not None):
            # A simulator of this run (a thread, or the child that dies with it).
            from mmfast.run.heartbeat import pid_alive

            runs = v.state_dir / "sim-runs"
            runs.mkdir(exist_ok=True, mode=0o700)
            for d in runs.iterdir():
                if d.name.isdigit() and not pid_alive(int(d.name)):
                    shutil.rmtree(d, ignore_errors=True)  # a crashed run's
            mine = runs / str(os.getpid())
            shutil.rmtree(mine, ignore_errors=True)
            mine.mkdir(mode=0o700)
            self._tmp_state = str(mine)
            return mine
        return v.state_dir

    def _environment(self) -> str:
        """Names the per-key state files: the mode, and for an external simulator its address
        too (another simulator is another venue: its ids and trades start over)."""
        v = self.cfg.venue
        if v.mode == "sim" and v.rest_url is not None:
            parts = urlsplit(v.rest_url)
            return f"sim-{parts.hostname}-{parts.port or 80}"
        return v.mode

    def _journal_path(self) -> Path:
        if self.opts.journal:
            return Path(self.opts.journal)
        jp = self.cfg.run.journal_path
        assert jp is not None
        return jp

    def _build(self, rest_url: str, ws_url: str, key: ApiKey, state_dir: Path) -> None:
        from mmfast.connector.lighter.budget import RATE_TIERS
        from mmfast.connector.lighter.config import LighterConfig
        from mmfast.connector.lighter.connector import LighterConnector
        from mmfast.connector.lighter.native_signer import InlineSigner
        from mmfast.connector.lighter.orders import OrderEntryConfig
        from mmfast.connector.lighter.signer import SignerWorker
        from mmfast.core.trading_core import TradingCore
        from mmfast.run.journal import JsonlJournal
        from mmfast.strategy import STRATEGIES, StrategyBase

        cfg, v = self.cfg, self.cfg.venue
        market = self.market
        assert market is not None  # resolved before the build
        assert v.account_index is not None and v.api_key_index is not None
        assert v.chain_id is not None
        if self._signer_in is not None:
            self.signer = self._signer_in
        elif v.signer == "native":
            # ExpiredAt from the run's clock: a simulator at a time scale runs ahead of the
            # host's, and its txs would expire there after 600 / (scale - 1) host seconds.
            self.signer = InlineSigner(
                key,
                account_index=v.account_index,
                api_key_index=v.api_key_index,
                chain_id=v.chain_id,
                name="mmfast-run-signer",
                wall_ms=self.time.wall_ms,
            )
        else:
            if self.time.scale != 1.0:
                _log.warning(
                    "the official signer stamps ExpiredAt from the host's clock: at "
                    "time scale %g its txs expire on the simulator after %.0f s",
                    self.time.scale,
                    600 / max(self.time.scale - 1, 1e-9),
                )
            self.signer = SignerWorker(
                key,
                account_index=v.account_index,
                api_key_index=v.api_key_index,
                chain_id=v.chain_id,
                name="mmfast-run-signer",
            )
        self.signer.start()
        name = cfg.strategy.name
        section = getattr(cfg.strategy, name)
        # [venue] tier (resolved per mode by the loader: sim premium, else standard).
        tier = self._tier_in if self._tier_in is not None else RATE_TIERS[v.tier or "standard"]
        lc = LighterConfig(
            rest_url=rest_url,
            ws_url=ws_url,
            account_index=v.account_index,
            api_key_index=v.api_key_index,
            markets=(market,),
            tier=tier,
            seed=self.opts.seed if v.mode == "sim" else None,
            volume_quota_low=v.volume_quota_low,
            volume_quota_span=v.volume_quota_span,
        )
        assert v.ws_order_frames is not None  # resolved per mode by the config loader
        oc = OrderEntryConfig(
            environment=self._environment(),
            state_dir=str(state_dir),
            quote_expiry_s=float(section.order_expiry_s),
            max_ws_frames=v.ws_order_frames,
            maker_only=v.maker_only,
            skip_nonce_recovery=v.skip_nonce_recovery,
        )
        self.connector = LighterConnector(
            lc, self.signer, time=self.time, signer=self.signer, orders=oc
        )
        self.journal = JsonlJournal(
            self._journal_path(), time=self.time, redact=self.redactor.redact
        )
        if self._journal_timer:
            self.journal.start()  # to the OS every 50 ms, fsynced every 100 ms
        # Every condition change (stream drops and returns, resyncs, reconciliations), also
        # while the connector is already not ready (connector_state has only the flips).
        self.connector.readiness.watch(self._condition)
        # Each move of the volume quota between ok / low / exhausted (docs/connector.md).
        self.connector.budget.subscribe_quota(self._quota_level)
        make: Callable[..., StrategyBase] = STRATEGIES[name]  # each takes its own section
        self.strategy = make(
            market,
            self.connector,
            section,
            risk=cfg.risk,
            journal=self.journal,
            time=self.time,
            on_stop_request=self.request_stop,
        )
        self.core = TradingCore(
            self.connector,
            [self.strategy],
            markets=(market,),
            tick_interval_ms=cfg.run.tick_interval_ms,
            cancel_timeout_s=5.0,
            clock_factory=self._clock_factory,
        )

    def _condition(self, name: str, holds: bool, reason: str) -> None:
        if self.journal is not None:
            self.journal.write("condition", name=name, holds=holds, reason=reason)

    def _quota_level(self, level: Any, remaining: int | None) -> None:
        if self.journal is not None:
            self.journal.write("volume_quota", level=level.name.lower(), remaining=remaining)

    def _guard_record(self, rec: dict[str, Any]) -> None:
        """A line of the guard's journal, copied into the run's (``guard`` + its kind)."""
        if self.journal is not None:
            fields = {k: v for k, v in rec.items() if k not in ("kind", "ts_ms", "mono_ns")}
            self.journal.write(
                "guard", event=str(rec.get("kind", "")), guard_ts_ms=rec.get("ts_ms"), **fields
            )

    # ------------------------------------------------------------------ status
    def snapshot(self) -> dict[str, Any]:
        c = self.connector
        lat: dict[str, Any] = {}
        orders = getattr(c, "orders", None)
        if orders is not None and hasattr(orders, "latency"):
            with contextlib.suppress(Exception):
                lat = orders.latency()
        return {
            "elapsed_s": _time.monotonic() - self._t0,
            "symbol": self.symbol,
            "market": self.market,
            "mode": self.cfg.venue.mode,
            "price_decimals": self.price_decimals,
            "size_decimals": self.size_decimals,
            "strategy": self.strategy.status(),
            "order_latency": lat,
            "ready": bool(getattr(c, "ready", True)),
            "not_ready_reason": getattr(c, "not_ready_reason", ""),
            "loop": c.stall.status() if hasattr(c, "stall") else {},
            "placement": self._placement_status(),
            "budget": self._budget_status(),
            "sim": self._sim_status(),
        }

    def _budget_status(self) -> dict[str, Any]:
        """The rate budget's level and the volume quota, for the status lines."""
        b = getattr(self.connector, "budget", None)
        if b is None:
            return {}
        st = b.state()
        return {
            "tier": b.tier.name,
            "level": st.level.name,
            "reason": st.reason,
            "volume_quota": st.volume_quota_remaining,
            "volume_quota_level": b.quota_level.name.lower(),
        }

    def summary(self) -> dict[str, Any]:
        s = self.snapshot()
        s.update(
            stop_reason=self.stop_reason or "-",
            orders_left=self.orders_left,
            exit_code=self.exit_code,
            journal=str(self.journal.path) if self.journal is not None else None,
        )
        sig = self.signer
        if sig is not None:
            info: dict[str, Any] = {
                "kind": "native" if hasattr(sig, "pool_stats") else "official",
                "signed": getattr(sig, "signed", 0),
                "failed": getattr(sig, "failed", 0),
            }
            if hasattr(sig, "pool_stats"):
                info.update(sig.pool_stats())
            entry = self.connector.orders if self.connector is not None else None
            if entry is not None and hasattr(entry, "direct_sends"):
                info["direct"] = entry.direct_sends  # signed and sent by the compiled step
                stream = self.connector.market_data.stream
                info["compiled_frames"] = stream.compiled_frames if stream is not None else 0
            s["signer"] = info
        if self.guard is not None:
            s["guard"] = self.guard.status()
        if self.connector is not None:
            s["confirmed_by"] = self.connector.cancel_confirmed_by
        return s

    async def _status_loop(self, display: Any) -> None:
        interval = self.cfg.run.status_interval_s
        failed = False
        while True:
            await asyncio.sleep(interval)
            if self.placement is not None:
                self.placement.sweep()
                self._keep_sim_off()
            if display is not None:
                try:
                    display.show(self.snapshot())  # redacted by the display
                except Exception as exc:  # the status must never end the run; said once
                    if not failed:
                        _log.error("status display failed: %s", self._safe_exc(exc), exc_info=True)
                    failed = True

    def _open_status(self) -> Any:
        """The live panel on a terminal, plain blocks otherwise; None with --quiet."""
        if self.opts.quiet:
            return None
        from mmfast.run.status import open_status

        handler = self._log_handler
        return open_status(
            self.out,
            log_handlers=() if handler is None else (handler,),
            redact=self.redactor.redact,
        )

    def _drain_logs(self) -> None:
        """Records of the loop still waiting on a terminal (``ConsoleLog``) printed now: the
        shutdown's records above what the run prints last, not after it."""
        from mmfast.run.status import ConsoleLog

        stream = getattr(self._log_handler, "stream", None)
        if isinstance(stream, ConsoleLog):
            stream.drain()

    def _print_summary(self, lines: list[str]) -> None:
        """The summary below the logs (the panel is gone by now); on a terminal, a line wider
        than it continues under the values' column instead of wrapping at the edge."""
        from mmfast.run.status import wrap_lines

        lines = [self.redactor.redact(x) for x in lines]
        try:
            width = os.get_terminal_size(self.out.fileno()).columns if _isatty(self.out) else 0
        except (AttributeError, OSError, ValueError):
            width = 0
        if width > 20:
            lines = list(wrap_lines(lines, width))
        self.out.write("\n".join(lines) + "\n")
        self.out.flush()

    # ------------------------------------------------------------------ run
    async def run(self) -> int:
        from mmfast.run.status import render_summary

        self._stop = asyncio.Event()
        self._t0 = _time.monotonic()
        loop = asyncio.get_running_loop()
        for sig in STOP_SIGNALS:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.request_stop, signal.Signals(sig).name)
        early = pending_stop()  # a stop signal before these handlers: stop at the first step
        if early is not None:
            self.request_stop(signal.Signals(early).name)
        started = False
        try:
            v = self.cfg.venue
            if v.mode == "sim" and v.rest_url is None:
                if self.sim is not None or self.cfg.run.sim == "thread":
                    rest_url, ws_url = self._start_sim()
                else:
                    rest_url, ws_url = await self._start_sim_process()
                    if self._stop.is_set():
                        raise _StoppedEarly
            else:
                assert v.rest_url is not None and v.ws_url is not None
                rest_url, ws_url = v.rest_url, v.ws_url
                if v.mode == "sim" and self._own_time and self.opts.time_scale != 1.0:
                    await self._anchor_to_sim(rest_url)
            key = self._make_key()
            self._add_secret(key)
            if v.mode == "sim":
                if v.rest_url is not None and self._tier_in is None:
                    # An external simulator: its tier must be the budget's (docs/config.md).
                    from mmfast.sim.keys import check_tier_http

                    await check_tier_http(rest_url, v.tier or "premium")
                await self._register_sim_key(key, rest_url)
            await self._resolve_market(rest_url)
            if self._stop.is_set():
                raise _StoppedEarly
            self._build(rest_url, ws_url, key, self._state_dir())
            if self.sim_proc is not None:
                self.journal.write(
                    "sim_started",
                    pid=self.sim_proc.pid,
                    rest_url=rest_url,
                    log=str(self.sim_proc.log_path),
                )
            await self._start_guard(rest_url)
            if self._stop.is_set():
                raise _StoppedEarly
            self.journal.write(
                "run_start",
                mode=v.mode,
                market=self.market,
                symbol=self.symbol,
                strategy=self.cfg.strategy.name,
                chain_id=v.chain_id,
                account_index=v.account_index,
                price_decimals=self.price_decimals,
                size_decimals=self.size_decimals,
                time_scale=self.time.scale,
            )
            await self.core.start()
            started = True
            self._place_loop()
            if self.guard is not None:
                from mmfast.run.heartbeat import BotState

                self.guard.set_state(BotState.RUNNING)
            if self.opts.control_port is not None:
                from mmfast.run.control import ControlServer

                self.control = ControlServer(
                    self, self.opts.control_host, self.opts.control_port, self._control_token
                )
                await self.control.start()
                self.out.write(f"control: {self.control.url}\n")
                self.out.flush()
            if self.opts.metrics_port is not None:
                from mmfast.run.metrics import MetricsServer

                self.metrics = MetricsServer(self, self.opts.metrics_port)
                await self.metrics.start()
                self.out.write(f"metrics: {self.metrics.url}\n")
                self.out.flush()
            display = self._open_status()
            status_task = loop.create_task(self._status_loop(display))
            try:
                if self.opts.duration_s is not None:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._stop.wait(), self.opts.duration_s)
                    if not self.stop_reason:
                        self.stop_reason = f"duration {self.opts.duration_s:g} s"
                else:
                    await self._stop.wait()
            finally:
                status_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await status_task
                if display is not None:
                    try:
                        display.close()  # the panel goes before the shutdown's logs, summary
                    except Exception as exc:
                        _log.error("status display close failed: %s", self._safe_exc(exc))
        except _StoppedEarly:
            # A stop signal during start-up: nothing was quoted; the shutdown confirms. Before
            # the strategy existed there is no summary: say so, exit 128 + the signal.
            if self.strategy is None and self.stop_reason in signal.Signals.__members__:
                signum = signal.Signals[self.stop_reason].value
                self._drain_logs()
                self.err.write(
                    f"mmfast run: stopped by {self.stop_reason} before it started; "
                    "nothing was sent\n"
                )
                self.exit_code = 128 + signum
        except Exception as exc:
            self.exit_code = EXIT_ORDERS_LEFT
            self.stop_reason = self.stop_reason or f"error: {type(exc).__name__}"
            # Expected failures (network, venue, our own checks): the message; anything else
            # is a bug: the traceback too (redacted by the handler's filter either way).
            expected = isinstance(
                exc, (OSError, TimeoutError, RuntimeError, ValueError, ExchangeError)
            ) or type(exc).__module__.startswith("aiohttp")
            _log.error("run failed: %s", self._safe_exc(exc), exc_info=not expected)
        finally:
            await self._shutdown(started)
            for sig in STOP_SIGNALS:
                with contextlib.suppress(Exception):
                    loop.remove_signal_handler(sig)
            self._drain_logs()
        if self.strategy is not None:
            summary = self.summary()
            if self.journal is not None:
                self.journal.write(
                    "summary",
                    **{
                        k: summary[k]
                        for k in ("elapsed_s", "stop_reason", "orders_left", "exit_code")
                    },
                    fills=summary["strategy"]["fills"],
                    counts=summary["strategy"]["counts"],
                    position_lots=summary["strategy"]["position_lots"],
                    pnl_usdc=summary["strategy"]["pnl_usdc"],
                    **self._summary_for_report(summary),
                )
                self.journal.close()
            self._print_summary(render_summary(summary))
        elif self.journal is not None:
            self.journal.close()
        return self.exit_code

    def _summary_for_report(self, summary: dict[str, Any]) -> dict[str, Any]:
        """The summary record's fields for the run report (docs/report.md): PnL in parts,
        risk denials by reason, venue refusals by code, and every latency sample of the run
        in the stages' histograms (the percentiles beside them cover recent samples only)."""
        from fractions import Fraction

        from mmfast.core.latency import HIST_BOUNDS_NS

        s, st = self.strategy, summary["strategy"]
        out: dict[str, Any] = {
            "fees_usdc": st["fees_usdc"],
            "denials": st["denials"],
            "latency": st["latency"],
            "order_latency": summary.get("order_latency") or {},
        }
        if s.rules is not None:
            scale = Fraction(1, 10 ** (s.rules.price_decimals + s.rules.size_decimals))
            mark = s.mark_price()
            out.update(
                realized_usdc=round(float(s.position.realized_pnl * scale), 6),
                funding_usdc=s.funding_micro / 1e6,
                mark=mark or None,
            )
            if mark > 0:
                out["unrealized_usdc"] = round(float(s.position.unrealized_pnl(mark) * scale), 6)

        def hist(h: Any) -> dict[str, Any]:
            return {k: {"counts": list(b), "sum_us": h.sums[k] / 1e3} for k, b in h.buckets.items()}

        entry = getattr(self.connector, "orders", None)
        out["latency_hist"] = {
            "bounds_us": [b / 1e3 for b in HIST_BOUNDS_NS],
            "strategy": hist(s.latency.hist),
            "order_entry": hist(entry.hist) if entry is not None and hasattr(entry, "hist") else {},
        }
        if entry is not None and hasattr(entry, "reject_codes"):
            out["reject_codes"] = {str(c): n for c, n in sorted(entry.reject_codes.items())}
        return out

    def _safe_exc(self, exc: BaseException) -> str:
        return self.redactor.redact(f"{type(exc).__name__}: {exc}")

    async def _start_guard(self, rest_url: str) -> None:
        """The guard process and the heartbeat (``[guard] enabled``): its key from the config,
        or in sim mode a throwaway one registered with the simulator."""
        g, v = self.cfg.guard, self.cfg.venue
        if not g.enabled:
            return
        from mmfast.run.guard_link import GuardLink

        assert g.api_key_index is not None and v.chain_id is not None
        assert v.account_index is not None and self.market is not None
        if v.mode == "sim":
            gkey = self._throwaway_key()
            await self._register_sim_key(gkey, rest_url, g.api_key_index, g.maker_only)
        else:
            if g.private_key is None:
                raise RuntimeError(
                    "the guard needs its key (MMFAST_GUARD_API_PRIVATE_KEY or guard.key_file)"
                )
            gkey = g.private_key
        self._add_secret(gkey)
        self.guard = GuardLink(
            g,
            gkey,
            rest_url=rest_url,
            chain_id=v.chain_id,
            account_index=v.account_index,
            market=self.market,
            run_dir=self._journal_path().parent,
            time_scale=self.opts.time_scale,
            ready=lambda: bool(getattr(self.connector, "ready", True)),
            signer_checked=bool(getattr(self.signer, "checked", False)),
            on_record=self._guard_record,
        )
        self.guard.start()
        self.journal.write(
            "guard_started",
            pid=self.guard.pid,
            api_key_index=g.api_key_index,
            journal=str(self.guard.journal_path),
        )

    def _place_loop(self) -> None:
        """``[run] cpu`` and ``busy_poll``, once every thread of the start-up exists (the
        ones started later are moved by the status loop's sweep)."""
        r = self.cfg.run
        if r.cpu is not None:
            from mmfast.run.placement import pin_loop

            self.placement = pin_loop(r.cpu)
            self._keep_sim_off()
            _log.info("placement: %s", self.placement.describe())
        if r.busy_poll:
            from mmfast.run.placement import BusyPoll

            self.busy_poll = BusyPoll(warm_ns=r.warm_us * 1000)
            warm = getattr(self.strategy, "warm", None)
            if warm is not None:
                self.busy_poll.add_warmer(warm)
            self.busy_poll.start()

    def _keep_sim_off(self) -> None:
        """The simulator child's threads off the loop's CPU (``[run] cpu``)."""
        if self.placement is not None and self.sim_proc is not None and self.sim_proc.pid:
            self.placement.keep_off(self.sim_proc.pid)

    def _placement_status(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.placement is not None:
            p = self.placement
            out.update(cpu=p.cpu, threads_moved=p.moved_total, other_cpus=sorted(p.others))
        if self.busy_poll is not None:
            out.update(
                busy_poll=self.busy_poll.running,
                polls_per_s=self.busy_poll.per_s(),
                warms_per_s=self.busy_poll.warms_per_s(),
            )
        return out

    async def _shutdown(self, started: bool) -> None:
        if self.busy_poll is not None:
            self.busy_poll.stop()  # the stop's waits may sleep again
        if self.guard is not None:
            from mmfast.run.heartbeat import BotState

            self.guard.set_state(BotState.STOPPING)
        for server in (self.control, self.metrics):
            if server is not None:
                with contextlib.suppress(Exception):
                    await server.stop()
        core = self.core
        if core is not None:
            if self.journal is not None:
                # The stop: the strategy stops, then the core's cancel-all; its order states
                # follow as `order` lines, its confirmation as `shutdown_confirmed`.
                self.journal.write("shutdown", market=self.market, reason=self.stop_reason)
            try:
                await core.stop()
                left = core.status().get("cancel_all", {}).get(self.market)
                self.orders_left = left if isinstance(left, int) else None
            except Exception as exc:
                _log.error("stop failed: %s", self._safe_exc(exc))
                self.orders_left = None
            if self.journal is not None:
                self.journal.write(
                    "shutdown_confirmed",
                    market=self.market,
                    orders_left=self.orders_left,
                    confirmed_by=getattr(self.connector, "cancel_confirmed_by", "") or None,
                )
            with contextlib.suppress(Exception):
                await core.shutdown()
        if self.placement is not None:
            self.placement.release()
        if self.sim_lost is not None:  # the venue went away under the bot: a failure
            self.exit_code = EXIT_ORDERS_LEFT
        if started and self.orders_left != 0:
            self.exit_code = EXIT_ORDERS_LEFT
            _log.error(
                "orders still open in market %d after shutdown: %s",
                self.market,
                "unknown" if self.orders_left is None else self.orders_left,
            )
        if (
            self.exit_code == EXIT_OK
            and self.strategy is not None
            and self.strategy.kill is not None
            and self.strategy.kill.state.value == "stopped"
        ):
            self.exit_code = EXIT_KILL_STOP
        if self.guard is not None:
            # Before the simulator stops: the guard aborts the venue's scheduled cancel-all.
            # A simulator child that exited took its orders with it: nothing is left for the
            # guard to cancel (it would try a venue that is gone for a minute).
            left = 0 if not started or self.sim_lost is not None else self.orders_left
            code = await self.guard.stop(left)
            if self.journal is not None:
                self.journal.write("guard_stopped", exit_code=code)
        if self.signer is not None:
            with contextlib.suppress(Exception):
                self.signer.stop()
        await self._stop_sim_process()
        if self.journal is not None:
            self.journal.write("run_stop", reason=self.stop_reason, orders_left=self.orders_left)
        if self.sim is not None and self._own_sim:
            with contextlib.suppress(Exception):
                self.sim.stop()
        if self._tmp_state is not None:
            shutil.rmtree(self._tmp_state, ignore_errors=True)

    async def _stop_sim_process(self) -> None:
        """The simulator child goes last: after the cancel-all and the guard (which must see
        the venue until it is done)."""
        if self._sim_watch is not None:
            self._sim_watch.cancel()
            self._sim_watch = None
        proc = self.sim_proc
        if proc is None:
            return
        from mmfast.sim.process import exit_text

        lost = self.sim_lost is not None
        code = await asyncio.to_thread(proc.stop)
        if proc.ready and not lost and code != 0:  # (a failed start was reported as such)
            _log.warning(
                "the simulator (pid %d) exited %s at its stop (its log: %s)",
                proc.pid,
                exit_text(code),
                proc.log_path,
            )
        if self.journal is not None:
            self.journal.write("sim_stopped", pid=proc.pid, exit_code=code, early=lost)
        proc.close()

    def _sim_status(self) -> dict[str, Any]:
        """Where the venue runs: this run's child process, a thread of it, or elsewhere."""
        v = self.cfg.venue
        if v.mode != "sim":
            return {}
        if self.sim_proc is not None:
            from mmfast.sim.process import exit_text

            p = self.sim_proc
            code = p.poll()
            return {
                "mode": "process",
                "pid": p.pid,
                "running": p.running,
                "exit_code": code,
                "exit": None if code is None else exit_text(code),
                "early_exit": self.sim_lost is not None,
                "log": str(p.log_path),
            }
        if self.sim is not None:
            return {"mode": "thread"}
        return {"mode": "external", "rest_url": v.rest_url}


def _options(args: Any) -> RunOptions:
    return RunOptions(
        config=args.config,
        strategy=args.strategy,
        duration_s=args.duration,
        quiet=args.quiet,
        log_json=args.log_json,
        live=args.live,
        journal=args.journal,
        seed=args.seed,
        time_scale=args.time_scale,
        control_port=args.control_port,
        control_host=args.control_host,
        metrics_port=args.metrics_port,
    )


def placement_problem(cfg: Config) -> str:
    """Why ``[run] cpu`` / ``busy_poll`` cannot be applied as configured ("" if they can)."""
    r = cfg.run
    if r.busy_poll and cfg.venue.mode == "sim" and cfg.venue.rest_url is None and r.sim == "thread":
        return (
            '[run] busy_poll needs the venue in another process ([run] sim = "process", '
            "the default, or `mmfast sim` with venue.rest_url and venue.ws_url): the "
            "in-process simulator's thread would wait for the GIL behind a loop that "
            "never sleeps"
        )
    if r.cpu is not None:
        from mmfast.run.placement import cpu_problem

        return cpu_problem(r.cpu)
    return ""


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or closed
        return False


class _StoppedEarly(MmfastError):
    """A stop signal arrived while the run was starting: on to the shutdown."""


def run_from_args(args: Any) -> int:
    """Entry point of ``mmfast run`` (argparse namespace from ``mmfast.cli``)."""
    opts = _options(args)
    if opts.duration_s is not None and not opts.duration_s > 0:
        print("mmfast run: --duration must be > 0", file=sys.stderr)
        return EXIT_CONFIG
    if not 0 < opts.time_scale <= 1000:
        print("mmfast run: --time-scale must be within (0, 1000]", file=sys.stderr)
        return EXIT_CONFIG
    try:
        cfg = load_run_config(opts)
    except ConfigError as exc:
        print(f"mmfast run: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if opts.time_scale != 1.0 and cfg.venue.mode != "sim":
        print("mmfast run: --time-scale is for sim mode only", file=sys.stderr)
        return EXIT_CONFIG
    why = placement_problem(cfg)
    if why:
        print(f"mmfast run: {why}", file=sys.stderr)
        return EXIT_CONFIG
    from mmfast.conf.load import ENV_GUARD_KEY, ENV_PRIVATE_KEY
    from mmfast.run.control import ENV_CONTROL_TOKEN, LOOPBACK, check_token, new_token

    raw_token = os.environ.get(ENV_CONTROL_TOKEN) or None
    # Secrets read: gone from the environment, so no process started from here inherits them
    # (the guard gets its own key in its environment, explicitly).
    for name in (ENV_PRIVATE_KEY, ENV_GUARD_KEY, ENV_CONTROL_TOKEN):
        os.environ.pop(name, None)
    token = Secret(raw_token) if raw_token else None
    if opts.metrics_port is not None and not 0 <= opts.metrics_port <= 65535:
        print("mmfast run: --metrics-port must be within 0..65535", file=sys.stderr)
        return EXIT_CONFIG
    if opts.control_port is not None:
        bad_token = check_token(token)
        if bad_token or not 0 <= opts.control_port <= 65535:
            print(
                f"mmfast run: {bad_token or '--control-port must be within 0..65535'}",
                file=sys.stderr,
            )
            return EXIT_CONFIG
        if token is None and opts.control_host not in LOOPBACK:
            token = new_token()
            print(
                f"mmfast run: control token for {opts.control_host}:{opts.control_port} "
                f"(shown once, redacted everywhere else): {token.reveal()}",
                file=sys.stderr,
            )
    if pending_stop() is not None:
        return stopped_early("mmfast run")
    runner = Runner(cfg, opts, control_token=token)
    runner.setup_logging()
    try:
        try:
            import uvloop
        except ImportError:  # pragma: no cover - uvloop is a dependency
            return asyncio.run(runner.run())
        return uvloop.run(runner.run())
    except KeyboardInterrupt:
        return EXIT_ORDERS_LEFT
    except BaseException as exc:  # print a redacted traceback, never the raw one
        text = "".join(traceback.format_exception(exc))
        print(runner.redactor.redact(text), file=sys.stderr)
        logging.shutdown()
        return EXIT_ORDERS_LEFT
