"""Simulator configuration: markets, the funded account, caps and behaviour switches."""

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
        return 10 ** (6 - self.size_decimals - self.price_decimals)


def default_markets() -> tuple[MarketSpec, ...]:
    """ETH and BTC perps shaped like the venue's (decimals and minimums from orderBookDetails)."""
    return (
        MarketSpec(0, "ETH", size_decimals=4, price_decimals=2, mark_price=300_000,
                   min_base_amount=50, min_quote_amount=10_000_000),
        MarketSpec(1, "BTC", size_decimals=5, price_decimals=1, mark_price=650_000,
                   min_base_amount=20, min_quote_amount=10_000_000),
    )


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
    # None: the funded account accepts any API key index 0..254 on first use.
    api_key_indexes: tuple[int, ...] | None = None
    modify_keeps_priority: bool = False  # venue unconfirmed: default loses priority
    max_inflight_per_market: int = 16  # order txs accepted but not yet executed, per market
    max_resting_per_market: int = 1000  # resting orders per account and market
    max_batch: int = 50
    # Sequencer delays (speed bumps). Zero = executed right after acceptance.
    maker_delay_ms: int = 0
    taker_delay_ms: int = 0
    cancel_delay_ms: int = 0
    min_order_expiry_ms: int = 5 * MINUTE_MS
    max_order_expiry_ms: int = 30 * DAY_MS
    min_cancel_all_ms: int = 5 * MINUTE_MS
    max_cancel_all_ms: int = 15 * DAY_MS
    max_auth_lifetime_s: int = 8 * 3600
    ws_ping_interval_ms: int = 30_000
    ws_pong_timeout_ms: int = 120_000
    echo_ack_ids: bool = False  # venue unconfirmed: default acks do not echo the request id
    recent_trades_kept: int = 1000
    inactive_orders_kept: int = 10_000
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
            raise ValueError("max_batch must be within 1..50")
