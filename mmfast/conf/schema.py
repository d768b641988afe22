"""Config schema: typed, frozen dataclasses, one per TOML table.

Each field's ``metadata`` carries its validation rule (``lo``/``hi`` bounds, ``choices``, ``unit``)
and a one-line ``doc``; ``mmfast.conf.load`` walks these declarations, so the schema is the one
place a key is defined. Prices and distances are int ticks, sizes int lots, durations seconds
(float) unless the key name says otherwise (``_ms``). Units: docs/config.md.

Fields whose default is ``None`` with a per-mode meaning (URLs, chain id, ...) are resolved by the
loader: a loaded ``Config`` has them filled in (``rest_url``/``ws_url`` stay ``None`` in sim mode,
meaning "start the built-in simulator").
"""

# _f() returns a dataclasses.field(); ruff cannot see through the wrapper.
# ruff: noqa: RUF009

from __future__ import annotations

from dataclasses import MISSING, dataclass, field
from pathlib import Path
from typing import Any, Final

from mmfast.connector.lighter.secret import ApiKey, Secret
from mmfast.core.errors import MmfastError

__all__ = [
    "MAX_LEVELS",
    "MAX_LOTS",
    "MAX_TICKS",
    "MODES",
    "SIGNERS",
    "SIM_PLACES",
    "TIER_NAMES",
    "ApiKey",
    "AvellanedaStoikovConfig",
    "Config",
    "ConfigError",
    "GuardConfig",
    "KillSwitchConfig",
    "MarketConfig",
    "MarketMakingConfig",
    "RiskConfig",
    "RunConfig",
    "Secret",
    "StrategyConfig",
    "TrendLadderConfig",
    "VenueConfig",
]

# Bounds shared with the compiled quote engine (mmfast._core.quote): kept equal so any config
# value that validates here is accepted by QuoteParams.
MAX_LEVELS: Final = 32
MAX_TICKS: Final = 1 << 50
MAX_LOTS: Final = 1 << 61
MODES: Final = ("sim", "testnet", "mainnet")
SIGNERS: Final = ("native", "official")
# Where `mmfast run` starts its built-in simulator: a child process, or a thread of its own.
SIM_PLACES: Final = ("process", "thread")
# The venue's account tiers (its account-types page): rate limits, speed bumps, volume quota.
TIER_NAMES: Final = ("standard", "premium", "plus", "builder")
_QUOTA_CAP: Final = 5_000_000  # the venue caps an account's volume quota here
_DAY_S: Final = 86_400
# Lighter's order expiry window for resting orders: 5 minutes to 30 days.
_MIN_EXPIRY_S: Final = 305  # the venue's 5 minutes + the 5 s order entry keeps clear of the edge
_MAX_EXPIRY_S: Final = 30 * _DAY_S


class ConfigError(MmfastError, ValueError):
    """Invalid configuration. ``errors`` lists ``(key_path, message)``; ``key`` is the first path.

    Messages name the key path (``strategy.market_making.levels``) and never contain a secret.
    """

    def __init__(
        self, errors: list[tuple[str, str]] | tuple[tuple[str, str], ...], source: str | None = None
    ) -> None:
        self.errors: tuple[tuple[str, str], ...] = tuple(errors)
        self.source = source
        self.key = self.errors[0][0] if self.errors else ""
        super().__init__(self._render())

    def _render(self) -> str:
        where = f" in {self.source}" if self.source else ""
        lines = [f"{key}: {msg}" if key else msg for key, msg in self.errors]
        if len(lines) == 1:
            return f"config error{where}: {lines[0]}"
        body = "\n".join(f"  {line}" for line in lines)
        return f"{len(lines)} config errors{where}:\n{body}"


def _f(
    default: Any = MISSING,
    *,
    doc: str,
    lo: float | None = None,
    hi: float | None = None,
    lo_open: bool = False,
    choices: tuple[str, ...] | None = None,
    unit: str = "",
    source: str = "toml",
) -> Any:
    """A schema field. ``lo_open``: the lower bound is exclusive. ``source``: ``toml`` (the file),
    ``env`` (secrets from the environment only) or ``cli`` (command-line flags only)."""
    meta = {
        "doc": doc,
        "lo": lo,
        "hi": hi,
        "lo_open": lo_open,
        "choices": choices,
        "unit": unit,
        "source": source,
    }
    if isinstance(default, type) and default is not MISSING:
        return field(default_factory=default, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True, slots=True, kw_only=True)
class VenueConfig:
    """[venue]: where to trade and as whom."""

    mode: str = _f("sim", choices=MODES, doc="sim (built-in simulator), testnet or mainnet")
    rest_url: str | None = _f(
        None, doc="REST base URL; default per mode (sim: start the built-in simulator)"
    )
    ws_url: str | None = _f(None, doc="WebSocket URL; default per mode")
    chain_id: int | None = _f(
        None,
        lo=1,
        hi=2**63 - 1,
        doc="chain id signed into every tx; default per mode "
        "(testnet 300, mainnet 304, sim: the simulator's own)",
    )
    account_index: int | None = _f(
        None, lo=3, hi=2**48 - 2, doc="Lighter account index (required outside sim)"
    )
    api_key_index: int | None = _f(
        None, lo=0, hi=254, doc="API key index 0..254 (4..254 recommended; required outside sim)"
    )
    state_dir: Path | None = _f(
        None,
        doc="directory for state files (client order ids); "
        "absolute or ~; default $XDG_STATE_HOME/mmfast",
    )
    key_file: Path | None = _f(
        None,
        doc="file holding the API private key (mode 0600, owned "
        "by you); overridden by MMFAST_API_KEY_FILE",
    )
    ws_order_frames: int | None = _f(
        None,
        lo=1,
        hi=16,
        doc="order frames outstanding on the order WebSocket, "
        "acks matched in send order; default per mode: sim 4, "
        "testnet and mainnet 1 (the venue's answer order is "
        "unconfirmed)",
    )
    signer: str = _f(
        "native",
        choices=SIGNERS,
        doc="who signs txs: native (mmfast's signer, inline on the event loop, "
        "checked against the official one at start) or official (lighter-sdk's "
        "signer on a worker thread)",
    )
    tier: str | None = _f(
        None,
        choices=TIER_NAMES,
        doc="the account's tier: the rate budget mmfast keeps to and, in sim "
        "mode, the built-in simulator's tier; default per mode: sim premium, "
        "testnet and mainnet standard",
    )
    volume_quota_low: int = _f(
        400,
        lo=0,
        hi=_QUOTA_CAP,
        doc="volume quota units under which the rate budget is LOW (tiers with a quota)",
    )
    volume_quota_span: int = _f(
        900,
        lo=1,
        hi=_QUOTA_CAP,
        doc="volume quota units from which the quota no longer limits "
        "quoting; below, the planner's headroom is 0.1 + 0.9 * "
        "quota / span (WIDE under 4/9 of it, FEW_LEVELS under 1/6)",
    )
    allow_mainnet: bool = _f(False, doc="mainnet opt-in; mainnet also needs --live")
    maker_only: bool = _f(
        False,
        doc="the API key is maker-only on the venue (premium): only "
        "post-only creates, modifies and cancels are sent (sim: the key is "
        "registered maker-only)",
    )
    skip_nonce_recovery: bool = _f(
        False,
        doc="end a nonce block with a skip-nonce tx instead "
        "of a nextNonce fetch when every skipped nonce is proven "
        "lost (docs/order-entry.md)",
    )
    private_key: ApiKey | None = _f(
        None, source="env", doc="API private key, from MMFAST_API_PRIVATE_KEY only"
    )
    live: bool = _f(False, source="cli", doc="the --live command-line flag")


@dataclass(frozen=True, slots=True, kw_only=True)
class MarketConfig:
    """[market]: the one market traded (symbol, market_id or both)."""

    symbol: str | None = _f(None, doc="market symbol, e.g. ETH")
    market_id: int | None = _f(
        None, lo=0, hi=2**31 - 1, doc="market index (255 is the venue's 'all markets' and refused)"
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class AvellanedaStoikovConfig:
    """[strategy.market_making.avellaneda_stoikov]: A-S model, sigma and kappa estimated online."""

    gamma: float = _f(0.1, lo=0.0, lo_open=True, hi=1e6, unit="1/ticks", doc="risk aversion")
    tau_s: float = _f(1.0, lo=0.0, hi=float(_DAY_S), unit="s", doc="horizon")
    sigma: float = _f(
        0.0,
        lo=0.0,
        hi=1e12,
        unit="ticks/sqrt(s)",
        doc="volatility until the estimator has min_samples",
    )
    kappa: float = _f(
        1.0,
        lo=1e-9,
        hi=1e9,
        unit="1/ticks",
        doc="order-arrival decay until the estimator has min_samples",
    )
    sigma_window_s: float = _f(
        300.0, lo=0.0, lo_open=True, hi=float(_DAY_S), unit="s", doc="volatility estimation window"
    )
    kappa_window_s: float = _f(
        300.0,
        lo=0.0,
        lo_open=True,
        hi=float(_DAY_S),
        unit="s",
        doc="order-arrival intensity estimation window",
    )
    min_samples: int = _f(
        30, lo=2, hi=1_000_000, doc="samples before estimates replace the initial sigma/kappa"
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class MarketMakingConfig:
    """[strategy.market_making]: a symmetric ladder around a reference price."""

    mode: str = _f("fixed", choices=("fixed", "avellaneda_stoikov"), doc="quoting model")
    bid_spread_ticks: int = _f(
        10, lo=0, hi=MAX_TICKS, unit="ticks", doc="reference to best bid (fixed mode)"
    )
    ask_spread_ticks: int = _f(
        10, lo=0, hi=MAX_TICKS, unit="ticks", doc="reference to best ask (fixed mode)"
    )
    levels: int = _f(1, lo=1, hi=MAX_LEVELS, doc="orders per side")
    level_spread_ticks: int = _f(
        1, lo=1, hi=MAX_TICKS, unit="ticks", doc="distance between levels of a side"
    )
    order_amount_lots: int = _f(100, lo=1, hi=MAX_LOTS, unit="lots", doc="level-0 size")
    amount_step_lots: int = _f(
        0, lo=-MAX_TICKS, hi=MAX_TICKS, unit="lots", doc="size added per level deeper"
    )
    refresh_tolerance_ticks: int = _f(
        1, lo=0, hi=MAX_TICKS, unit="ticks", doc="a live order this close to its target is kept"
    )
    size_tolerance_lots: int = _f(
        0, lo=0, hi=MAX_LOTS, unit="lots", doc="a live order this close in size is kept"
    )
    max_order_age_s: float = _f(
        240.0,
        lo=0.0,
        lo_open=True,
        hi=float(_MAX_EXPIRY_S),
        unit="s",
        doc="older orders are replaced (fresh expiry)",
    )
    filled_order_delay_s: float = _f(
        0.0, lo=0.0, hi=3600.0, unit="s", doc="no new orders for this long after a fill"
    )
    order_expiry_s: int = _f(
        _MIN_EXPIRY_S,
        lo=_MIN_EXPIRY_S,
        hi=_MAX_EXPIRY_S,
        unit="s",
        doc="venue expiry of each quote (its own dead-man's switch; the "
        "venue's minimum by default, renewed by max_order_age_s)",
    )
    inventory_target_lots: int = _f(
        0, lo=-MAX_LOTS, hi=MAX_LOTS, unit="lots", doc="position the quotes steer toward"
    )
    inventory_skew_ticks: int = _f(
        0, lo=0, hi=MAX_TICKS, unit="ticks", doc="price shift at full inventory (fixed mode)"
    )
    min_spread_ticks: int = _f(
        1, lo=1, hi=MAX_TICKS, unit="ticks", doc="floor of best ask - best bid of our quotes"
    )
    price_ceiling_ticks: int = _f(0, lo=0, hi=MAX_LOTS, unit="ticks", doc="no bids above (0: none)")
    price_floor_ticks: int = _f(0, lo=0, hi=MAX_LOTS, unit="ticks", doc="no asks below (0: none)")
    reference_price: str = _f(
        "mid", choices=("mid", "microprice", "last_trade"), doc="price the ladder is built around"
    )
    avellaneda_stoikov: AvellanedaStoikovConfig = _f(
        AvellanedaStoikovConfig, doc="A-S model parameters"
    )
    compiled_step: bool = _f(
        True,
        doc="plan on the compiled per-frame step "
        "(false: the Python twin, for benchmarks and diagnosis)",
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class TrendLadderConfig:
    """[strategy.trend_ladder]: entries laddered in the trend direction, one TP per level."""

    ema_fast_periods: int = _f(12, lo=1, hi=100_000, doc="fast EMA of mid, in signal periods")
    ema_slow_periods: int = _f(48, lo=2, hi=100_000, doc="slow EMA of mid, in signal periods")
    signal_interval_s: float = _f(
        1.0, lo=0.0, lo_open=True, hi=3600.0, unit="s", doc="one EMA sample per interval"
    )
    trend_threshold_ticks: int = _f(
        2, lo=0, hi=MAX_TICKS, unit="ticks", doc="|fast - slow| needed to call a trend"
    )
    entry_offset_ticks: int = _f(
        1, lo=0, hi=MAX_TICKS, unit="ticks", doc="first entry this far behind the touch"
    )
    step_ticks: int = _f(5, lo=1, hi=MAX_TICKS, unit="ticks", doc="between entry levels")
    levels: int = _f(3, lo=1, hi=MAX_LEVELS, doc="entry levels")
    size_lots: int = _f(100, lo=1, hi=MAX_LOTS, unit="lots", doc="size of each entry")
    take_profit_ticks: int = _f(
        10, lo=1, hi=MAX_TICKS, unit="ticks", doc="TP distance from its entry price"
    )
    tp_max_retries: int = _f(5, lo=0, hi=100, doc="re-placements of a TP cancelled for crossing")
    order_expiry_s: int = _f(
        900, lo=_MIN_EXPIRY_S, hi=_MAX_EXPIRY_S, unit="s", doc="venue expiry of each order"
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class StrategyConfig:
    """[strategy]: which strategy runs, and every strategy's table."""

    name: str = _f(
        "market_making", choices=("market_making", "trend_ladder"), doc="strategy to run"
    )
    market_making: MarketMakingConfig = _f(MarketMakingConfig, doc="market_making parameters")
    trend_ladder: TrendLadderConfig = _f(TrendLadderConfig, doc="trend_ladder parameters")


@dataclass(frozen=True, slots=True, kw_only=True)
class KillSwitchConfig:
    """[risk.kill_switch]: trips that pause or stop trading."""

    max_drawdown_usdc: float = _f(
        lo=0.0,
        lo_open=True,
        hi=1e12,
        unit="USDC",
        doc="loss from the PnL peak (fees and funding included)",
    )
    max_fills_per_min: int = _f(60, lo=1, hi=1_000_000, doc="fills in any rolling minute")
    max_reject_rate: float = _f(
        0.5, lo=0.0, lo_open=True, hi=1.0, doc="rejected / answered order txs in the reject window"
    )
    reject_window_s: float = _f(
        60.0, lo=0.0, lo_open=True, hi=3600.0, unit="s", doc="window of the reject rate"
    )
    reject_min_samples: int = _f(
        10, lo=1, hi=1_000_000, doc="answers needed before the reject rate can trip"
    )
    max_order_txs_per_min: int = _f(
        600, lo=1, hi=1_000_000, doc="order txs sent in any rolling minute"
    )
    action: str = _f(
        "pause", choices=("pause", "stop"), doc="pause: cancel all, resume when cleared; stop: exit"
    )
    pause_cooldown_s: float = _f(
        30.0, lo=0.0, hi=_DAY_S, unit="s", doc="least time paused before resuming"
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class RiskConfig:
    """[risk]: pre-trade limits and the kill switch."""

    max_position_lots: int = _f(
        lo=1, hi=MAX_LOTS, unit="lots", doc="|position| including every open order filling"
    )
    max_order_notional_usdc: int = _f(lo=1, hi=10**12, unit="USDC", doc="price x size per order")
    max_open_orders: int = _f(20, lo=1, hi=1000, doc="our resting + pending orders")
    price_band_bps: int = _f(200, lo=1, hi=5000, unit="bps", doc="band around the mark price")
    order_rate_cap: int = _f(120, lo=1, hi=1_000_000, doc="order txs per rate window")
    order_rate_window_s: float = _f(
        60.0, lo=0.0, lo_open=True, hi=3600.0, unit="s", doc="sliding window of the order-rate cap"
    )
    margin_headroom: float = _f(
        0.2,
        lo=0.0,
        hi=0.99,
        doc="fraction of portfolio value kept free after an order's initial margin",
    )
    require_margin_stats: bool = _f(True, doc="no exposure-adding order before user_stats")
    kill_switch: KillSwitchConfig = _f(doc="kill switch")


@dataclass(frozen=True, slots=True, kw_only=True)
class GuardConfig:
    """[guard]: the separate process that cancels the bot's orders when the bot cannot
    (docs/guard.md)."""

    enabled: bool = _f(True, doc="start a guard with the bot")
    api_key_index: int | None = _f(
        None,
        lo=0,
        hi=254,
        doc="the guard's own API key index, not the bot's "
        "(required outside sim; sim: the bot's + 1)",
    )
    key_file: Path | None = _f(
        None,
        doc="file holding the guard's API private key (0600); "
        "overridden by MMFAST_GUARD_API_PRIVATE_KEY",
    )
    max_silence_ms: int = _f(
        1500,
        lo=200,
        hi=60_000,
        unit="ms",
        doc="the guard acts when the bot's heartbeat is older than this",
    )
    heartbeat_interval_ms: int = _f(
        100, lo=10, hi=1000, unit="ms", doc="how often the bot's event loop stamps its heartbeat"
    )
    scheduled_cancel_all: bool = _f(
        True,
        doc="keep the venue's scheduled cancel-all armed "
        "(fires 5.5 min after the last renewal if both die)",
    )
    maker_only: bool = _f(
        False,
        doc="the guard's key is maker-only on the venue (it sends "
        "cancel-alls only, which a maker-only key may; sim: registered so)",
    )
    private_key: ApiKey | None = _f(
        None,
        source="env",
        doc="the guard's API private key, from MMFAST_GUARD_API_PRIVATE_KEY only",
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class RunConfig:
    """[run]: process settings."""

    tick_interval_ms: int = _f(100, lo=1, hi=60_000, unit="ms", doc="strategy tick period")
    journal_path: Path | None = _f(
        None, doc="JSONL journal; relative to state_dir; default <state_dir>/journal.jsonl"
    )
    log_level: str = _f(
        "info", choices=("debug", "info", "warning", "error"), doc="mmfast's log level"
    )
    log_json: bool = _f(False, doc="JSON log lines")
    status_interval_s: float = _f(1.0, lo=0.1, hi=60.0, unit="s", doc="terminal status refresh")
    cpu: int | None = _f(
        None,
        lo=0,
        hi=4095,
        doc="pin the event loop to this CPU (Linux); the process's other "
        "threads go to the remaining CPUs",
    )
    busy_poll: bool = _f(
        False,
        doc="the event loop polls its sockets instead of sleeping: "
        "~70 us less per frame, one CPU at 100% (with cpu, on a dedicated "
        'core; not with [run] sim = "thread")',
    )
    warm_us: int = _f(
        50,
        lo=0,
        hi=1_000_000,
        unit="us",
        doc="with busy_poll: between frames, the compiled step and the signer rerun on "
        "their last inputs at most this often, acting on nothing, so the next frame finds "
        "them in cache (0: off)",
    )
    sim: str = _f(
        "process",
        choices=SIM_PLACES,
        doc="where the built-in simulator runs (sim mode without URLs): process "
        "(a child `mmfast sim`: the bot's latencies are its own) or thread (in the "
        "bot's process, sharing its GIL and CPU)",
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    """A whole, validated config. ``repr`` never shows a secret (the key is an ``ApiKey``)."""

    venue: VenueConfig = _f(VenueConfig, doc="[venue]")
    market: MarketConfig = _f(MarketConfig, doc="[market]")
    strategy: StrategyConfig = _f(StrategyConfig, doc="[strategy]")
    risk: RiskConfig = _f(doc="[risk]")
    run: RunConfig = _f(RunConfig, doc="[run]")
    guard: GuardConfig = _f(GuardConfig, doc="[guard]")
