"""Simulator configuration: markets, the funded account, caps, tiers, market flow and
behaviour switches."""

from __future__ import annotations

from dataclasses import dataclass, field

# Lighter's own chain ids (mainnet 304, testnet 300, robinhood 466324): the simulator never
# uses one, so nothing signed for it is valid on a real venue.
LIGHTER_CHAIN_IDS = frozenset({300, 304, 466324})
DEFAULT_CHAIN_ID = 7_357_001
DEFAULT_ACCOUNT_INDEX = 1001
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})

MINUTE_MS = 60_000
DAY_MS = 24 * 60 * MINUTE_MS


@dataclass(frozen=True, slots=True)
class MarketSpec:
    """One perp market. Prices in ticks (10^-price_decimals), sizes in lots (10^-size_decimals)."""

    market_id: int
    symbol: str
    size_decimals: int
    price_decimals: int
    mark_price: int  # ticks; also the index price and the centre of the price band
    min_base_amount: int  # lots
    min_quote_amount: int  # micro-USDC
    taker_fee: int = 196  # 1e-6 of notional (196 = 0.0196%)
    maker_fee: int = 28  # 1e-6 of notional
    default_initial_margin_fraction: int = 500  # 1e-4 (500 = 5%, 20x)
    min_initial_margin_fraction: int = 200  # 1e-4
    maintenance_margin_fraction: int = 120  # 1e-4
    closeout_margin_fraction: int = 80  # 1e-4
    order_quote_limit: int = 281_474_976_710_655  # micro-USDC, the venue's uint48 cap
    # Aggressive limit orders priced beyond this band around the mark fail with 21733.
    fat_finger_bps: int = 1000
    # Passive limit orders priced beyond this band around the mark fail with 21734.
    price_band_bps: int = 5000

    def __post_init__(self) -> None:
        if self.market_id < 0:
            raise ValueError("market_id must be >= 0")
        if self.size_decimals < 0 or self.price_decimals < 0:
            raise ValueError("decimals must be >= 0")
        if self.size_decimals + self.price_decimals > 6:
            # price x size must be an exact number of micro-USDC
            raise ValueError("size_decimals + price_decimals must be <= 6")
        if self.mark_price <= 0 or self.min_base_amount <= 0 or self.min_quote_amount < 0:
            raise ValueError("mark_price and min_base_amount must be > 0")

    @property
    def quote_scale(self) -> int:
        """Micro-USDC per (tick x lot)."""
        return int(10 ** (6 - self.size_decimals - self.price_decimals))


def default_markets() -> tuple[MarketSpec, ...]:
    """ETH and BTC perps shaped like the venue's (decimals and minimums from orderBookDetails)."""
    return (
        MarketSpec(
            0,
            "ETH",
            size_decimals=4,
            price_decimals=2,
            mark_price=300_000,
            min_base_amount=50,
            min_quote_amount=10_000_000,
        ),
        MarketSpec(
            1,
            "BTC",
            size_decimals=5,
            price_decimals=1,
            mark_price=650_000,
            min_base_amount=20,
            min_quote_amount=10_000_000,
        ),
    )


@dataclass(frozen=True, slots=True)
class TierSpec:
    """An account tier's speed bumps, REST budget, sendTx bucket and whether the volume quota
    applies (the venue's account-types, rate-limits and volume-quota-program pages, checked
    2026-12-06): every request costs max(weight, min_cost) from `budget` per rolling minute."""

    name: str  # "standard", "premium", "plus" or "builder"
    maker_delay_ms: int  # sequencer wait of a maker (resting) order tx
    cancel_delay_ms: int  # sequencer wait of a cancel, modify or cancel-all tx
    taker_delay_ms: tuple[int, int]  # sequencer wait of a taker tx, uniform in [lo, hi]
    budget: int  # REST weight per rolling 60 s
    min_cost: int  # floor on a request's weight (standard: 24000/400 = 60 requests a minute)
    sendtx_per_min: int  # sendTx / sendTxBatch requests per rolling 60 s (REST and WS)
    volume_quota: bool  # order txs spend the account's volume quota


TIERS: dict[str, TierSpec] = {
    "standard": TierSpec("standard", 200, 200, (300, 300), 24_000, 400, 60, False),
    "premium": TierSpec("premium", 0, 0, (140, 200), 24_000, 0, 4_000, True),
    "plus": TierSpec("plus", 200, 200, (300, 300), 120_000, 0, 8_000, True),
    # Builder: the venue publishes its read budget only; its speed bumps and sendTx bucket are
    # taken from Standard (the least favourable, unconfirmed), its quota like the paid tiers.
    "builder": TierSpec("builder", 200, 200, (300, 300), 240_000, 0, 60, True),
}
DEFAULT_TIER = "standard"  # the least favourable tier, as every unconfirmed default here

# REST request weights (the venue's rate-limit page); anything not listed weighs 300.
REQUEST_WEIGHTS: dict[str, int] = {
    "sendTx": 6,
    "sendTxBatch": 6,
    "nextNonce": 6,
    "accountInactiveOrders": 100,
    "apikeys": 150,
    "recentTrades": 600,
    "trades": 600,
}
DEFAULT_WEIGHT = 300


@dataclass(frozen=True, slots=True)
class FlowConfig:
    """Synthetic participants that keep a market's book alive (`mmfast.sim.flow`).

    Flow is generated on a fixed grid of simulated time (`step_ms`) from one random stream per
    market, seeded by the simulator's seed and the market id, so the same seed gives the same
    flow. Distances are in bps of the fair price (so one setting suits every market whatever
    its tick), sizes in multiples of the market's minimum order size.
    """

    step_ms: int = 10  # grid of simulated time the flow is generated on
    volatility_bps: float = 1.0  # fair price: std dev of the log move per sqrt(second), bps
    jump_rate_per_min: float = 0.5  # Poisson rate of fair-price jumps
    jump_bps: float = 10.0  # std dev of one jump, bps
    limit_rate_per_s: float = 50.0  # Poisson limit-order arrivals per second (both sides)
    cancel_rate_per_s: float = 20.0  # Poisson cancels of resting flow orders per second
    market_rate_per_s: float = 1.0  # Poisson market orders per second
    spread_bps: float = 1.0  # limit orders rest at least spread/2 from the fair price
    depth_bps: float = 2.0  # mean extra distance beyond the half-spread (exponential)
    max_depth_bps: float = 50.0  # flow orders further than this from the fair price go
    initial_levels: int = 20  # orders per side seeded at start
    order_size: tuple[int, int] = (1, 10)  # limit-order size, uniform, in minimum sizes
    market_size: tuple[int, int] = (1, 20)  # market-order size, uniform, in minimum sizes
    max_orders_per_side: int = 300  # the oldest flow orders are canceled beyond this
    maker_account: int = 900  # account of passive flow orders
    taker_account: int = 901  # account of market orders and marketable limits
    collateral: int = 10**18  # micro-USDC of each flow account (never margin-bound)

    def __post_init__(self) -> None:
        if self.step_ms <= 0:
            raise ValueError("flow step_ms must be > 0")
        rates = (
            self.volatility_bps,
            self.jump_rate_per_min,
            self.jump_bps,
            self.limit_rate_per_s,
            self.cancel_rate_per_s,
            self.market_rate_per_s,
        )
        if any(not (r >= 0.0) for r in rates):
            raise ValueError("flow rates and volatility must be >= 0")
        if not (self.spread_bps >= 0 and self.depth_bps >= 0 and self.max_depth_bps > 0):
            raise ValueError("flow spread/depth must be >= 0 (max_depth_bps > 0)")
        for lo, hi in (self.order_size, self.market_size):
            if not 1 <= lo <= hi:
                raise ValueError("flow sizes must be 1 <= lo <= hi")
        if (
            self.maker_account == self.taker_account
            or min(self.maker_account, self.taker_account) <= 2
        ):
            raise ValueError("flow accounts must be distinct and > 2")


@dataclass(frozen=True, slots=True)
class ReplayConfig:
    """A tape as the market instead of synthetic flow (`mmfast.sim.replay`, docs/backtest.md):
    the queue model that fills our resting orders from the tape's trades, and the two system
    accounts that hold the tape's levels and take its trades."""

    queue_model: str = "risk_averse"  # "risk_averse" or "power" (mmfast.sim.queue)
    queue_power: float = 2.0  # n of the power model's f(x) = x ** n
    # Tape times are rounded up to a multiple of this, and the events of one step applied
    # together (the venue stamps ms; its messages of one batch arrive microseconds apart).
    step_ns: int = 1_000_000
    maker_account: int = 900  # holds the tape's book levels
    taker_account: int = 901  # the other side of the tape's trades (and of our fills)
    collateral: int = 10**18  # micro-USDC of each tape account (never margin-bound)

    def __post_init__(self) -> None:
        from mmfast.sim.queue import make_model

        make_model(self.queue_model, self.queue_power)  # ValueError naming the choices
        if not 1 <= self.step_ns <= 1_000_000_000:
            raise ValueError("replay step_ns must be within 1..1e9")
        if (
            self.maker_account == self.taker_account
            or min(self.maker_account, self.taker_account) <= 2
        ):
            raise ValueError("replay accounts must be distinct and > 2")


def _is_hex(text: str) -> bool:
    try:
        bytes.fromhex(text)
    except ValueError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class SimConfig:
    """Everything the simulator can be told at start."""

    host: str = "127.0.0.1"
    port: int = 0  # 0 = ephemeral
    seed: int = 0
    chain_id: int = DEFAULT_CHAIN_ID
    markets: tuple[MarketSpec, ...] = field(default_factory=default_markets)
    account_index: int = DEFAULT_ACCOUNT_INDEX
    initial_collateral: int = 1_000_000 * 1_000_000  # micro-USDC (1M USDC)
    # None: the funded account accepts any API key index 0..254 on first use (with
    # verify_signatures a tx still needs a public key registered for its index).
    api_key_indexes: tuple[int, ...] | None = None
    # Public keys registered at start: (account_index, api_key_index, public key as 80 hex
    # digits, 0x optional), optionally a 4th item: maker_only (bool, the venue's premium
    # maker-only keys: post-only creates, modifies and cancels only). The account must be the
    # funded one (others do not exist yet).
    api_keys: tuple[tuple[int, int, str] | tuple[int, int, str, bool], ...] = ()
    # True (the venue's rule): every tx's L2 signature and every auth token must verify under
    # the public key registered for its (account, api_key_index), else 21120. False: any
    # non-empty Sig and any well-formed token pass (tests and benches with stand-in signatures).
    verify_signatures: bool = True
    modify_keeps_priority: bool = False  # venue unconfirmed: default loses priority
    max_inflight_per_market: int = 16  # order txs accepted but not yet executed, per market
    max_resting_per_market: int = 1000  # resting orders per account and market
    max_batch: int = 15  # txs per sendTxBatch: the venue's cap since early 2026 (was 50)
    # Account tier: speed bumps, REST budget, sendTx bucket and volume quota (see TIERS).
    tier: str = DEFAULT_TIER
    speed_bumps: bool = True  # False: txs execute right after acceptance (unless set below)
    # Sequencer delays; None = the tier's (when speed_bumps), an int overrides the tier.
    maker_delay_ms: int | None = None
    taker_delay_ms: int | None = None
    cancel_delay_ms: int | None = None
    # Rate limits (per client IP, rolling 60 s of simulated time).
    rate_limits: bool = True
    rest_budget: int | None = None  # REST weight per minute; None = the tier's
    sendtx_per_min: int | None = None  # sendTx requests per minute; None = the tier's
    # Volume quota (the venue's volume-quota-program page): None = the tier's rule (on for the
    # paid tiers), True/False forces it. Kept per account here (the venue shares it across the
    # sub-accounts of an L1 address).
    volume_quota: bool | None = None
    volume_quota_start: int = 1_000  # an account's quota when it is created
    volume_quota_cap: int = 5_000_000  # the quota never grows beyond this
    volume_quota_usd_per_unit: int = 7  # traded notional (USDC) that earns one unit
    volume_quota_free_interval_ms: int = 15_000  # one tx per this goes through on an empty quota
    ws_msgs_per_min: int = 200  # client WebSocket messages per minute
    ws_max_inflight: int = 50  # WebSocket requests awaiting their answer
    block_after_breaches: int = 5  # breaches within 60 s that earn a temporary block
    block_s: int = 60  # first block; each further block doubles, up to 16x
    block_status: int = 418  # HTTP status of requests made while blocked
    # Market flow; None = a quiet market (only what clients send).
    flow: FlowConfig | None = None
    # A tape as the market (Simulator(..., tape=...)); None: the tape's defaults when one is
    # given. Not with flow.
    replay: ReplayConfig | None = None
    min_order_expiry_ms: int = 5 * MINUTE_MS
    max_order_expiry_ms: int = 30 * DAY_MS
    min_cancel_all_ms: int = 5 * MINUTE_MS
    max_cancel_all_ms: int = 15 * DAY_MS
    max_auth_lifetime_s: int = 8 * 3600
    ws_ping_interval_ms: int = 30_000
    ws_pong_timeout_ms: int = 120_000
    # The venue's connection rules (simulated seconds; 0 = off): a connection is closed after
    # ws_max_lifetime_s (24 h), and when its client sent no frame for ws_client_idle_s (2 min).
    ws_max_lifetime_s: int = 86_400
    ws_client_idle_s: int = 120
    # Order-book deltas of the engine go out in batches of this many ms of simulated time,
    # on the clock's multiples (the venue publishes every 50 ms); 0 = each change at once.
    book_batch_ms: int = 50
    echo_ack_ids: bool = False  # venue unconfirmed: default acks do not echo the request id
    # Memory windows: what the simulator keeps of its history (the rest is forgotten, so a
    # long run stays within a fixed footprint; docs/sim.md "Memory windows").
    recent_trades_kept: int = 1000  # trades per market (recentTrades, trade snapshots, fills)
    # Finished orders per account (accountInactiveOrders); they also bound which finished
    # orders `truth.order`, `accountOrders` and `truth.order_by_coi` still find.
    inactive_orders_kept: int = 10_000
    txs_kept: int = 10_000  # executed or failed txs kept for `tx` lookups (pending: all)
    request_log_kept: int = 100_000  # requests in the log (counts since start stay exact)
    fault_log_kept: int = 10_000  # fault-log records
    # Opt-in oracle: the aggregated book at each of the last `book_history` book nonces of
    # every market (`truth.book`, GET /_sim/truth/book); 0 = off.
    book_history: int = 0
    poll_interval_ms: int = 20  # timers (pending txs, expiries, scheduled cancel-all)

    def __post_init__(self) -> None:
        if self.host not in LOOPBACK_HOSTS:
            raise ValueError(f"the simulator binds loopback only, not {self.host!r}")
        if self.chain_id in LIGHTER_CHAIN_IDS:
            raise ValueError(f"chain id {self.chain_id} belongs to Lighter")
        ids = [m.market_id for m in self.markets]
        if not ids or len(set(ids)) != len(ids):
            raise ValueError("markets must be non-empty with distinct ids")
        if self.account_index <= 2:
            raise ValueError("account indexes 0..2 are system accounts")
        if not 1 <= self.max_batch <= 50:
            raise ValueError("max_batch must be within 1..50 (the venue: 15)")
        if self.tier not in TIERS:
            raise ValueError(f"tier must be one of {sorted(TIERS)}, not {self.tier!r}")
        for name in (
            "maker_delay_ms",
            "taker_delay_ms",
            "cancel_delay_ms",
            "rest_budget",
            "sendtx_per_min",
        ):
            v = getattr(self, name)
            if v is not None and v < 0:
                raise ValueError(f"{name} must be >= 0")
        if not 0 <= self.volume_quota_start <= self.volume_quota_cap:
            raise ValueError("volume_quota_start must be within 0..volume_quota_cap")
        if self.volume_quota_usd_per_unit <= 0:
            raise ValueError("volume_quota_usd_per_unit must be > 0")
        if self.volume_quota_free_interval_ms <= 0:
            raise ValueError("volume_quota_free_interval_ms must be > 0")
        if self.ws_msgs_per_min <= 0 or self.ws_max_inflight <= 0:
            raise ValueError("WebSocket limits must be > 0")
        if self.block_after_breaches <= 0 or self.block_s <= 0:
            raise ValueError("block_after_breaches and block_s must be > 0")
        for name in (
            "recent_trades_kept",
            "inactive_orders_kept",
            "txs_kept",
            "request_log_kept",
            "fault_log_kept",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        if self.book_history < 0:
            raise ValueError("book_history must be >= 0 (0 = off)")
        for name in ("ws_max_lifetime_s", "ws_client_idle_s", "book_batch_ms"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0 (0 = off)")
        for entry in self.api_keys:
            if len(entry) not in (3, 4):
                raise ValueError(
                    "api_keys entries are (account_index, api_key_index, "
                    "public_key_hex[, maker_only])"
                )
            acct, idx, pk = entry[:3]
            if len(entry) == 4 and not isinstance(entry[3], bool):
                raise ValueError("api_keys: maker_only must be a bool")
            if acct != self.account_index:
                raise ValueError(
                    f"api_keys: account {acct} is not the funded account {self.account_index}"
                )
            if not 0 <= idx <= 254:
                raise ValueError("api_keys: api key index must be within 0..254")
            text = pk[2:] if isinstance(pk, str) and pk[:2] in ("0x", "0X") else pk
            if not isinstance(text, str) or len(text) != 80 or not _is_hex(text):
                raise ValueError("api_keys: public key must be 80 hex digits (0x optional)")
        if self.flow is not None:
            flow_accts = {self.flow.maker_account, self.flow.taker_account}
            if self.account_index in flow_accts:
                raise ValueError("the funded account must not be a flow account")
        if self.replay is not None:
            if self.flow is not None:
                raise ValueError("a simulator replays a tape or runs flow, not both")
            if self.account_index in (self.replay.maker_account, self.replay.taker_account):
                raise ValueError("the funded account must not be a replay account")

    @property
    def tier_spec(self) -> TierSpec:
        return TIERS[self.tier]

    @property
    def quota_on(self) -> bool:
        """Whether order txs spend the volume quota (the tier's rule unless forced)."""
        return self.tier_spec.volume_quota if self.volume_quota is None else self.volume_quota

    def delays_ms(self) -> tuple[int, int, tuple[int, int]]:
        """(maker, cancel, (taker lo, taker hi)) sequencer waits in effect."""
        t = self.tier_spec
        on = self.speed_bumps
        maker = (
            self.maker_delay_ms
            if self.maker_delay_ms is not None
            else (t.maker_delay_ms if on else 0)
        )
        cancel = (
            self.cancel_delay_ms
            if self.cancel_delay_ms is not None
            else (t.cancel_delay_ms if on else 0)
        )
        if self.taker_delay_ms is not None:
            taker = (self.taker_delay_ms, self.taker_delay_ms)
        else:
            taker = t.taker_delay_ms if on else (0, 0)
        return maker, cancel, taker
