"""Pre-trade risk gate: every new order and modify passes here before it is signed.

Integers only: prices in ticks, sizes in lots, notional in tick x lot units, money in micro-USDC
(Python ints, so products never overflow). Each denial has a ``RiskReason``. ``check_order`` is a
pure function of the order, the ``RiskState`` and the limits. The gate strategies call, with the
order-rate cap (a sliding window) and denial counters, is compiled: ``mmfast._core.gate.GateCore``;
its Python twin is ``mmfast.reference.gate.RiskGate``.

Cancels are never gated: pulling an order only ever reduces risk.
Reference: docs/risk.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING, Any, Final

from mmfast.core.types import Order, Side
from mmfast.core.units import USDC_DECIMALS, parse_units

if TYPE_CHECKING:
    from mmfast.conf.schema import RiskConfig

__all__ = [
    "MarginState",
    "MarketRules",
    "MarketState",
    "RiskLimits",
    "RiskReason",
    "RiskState",
    "check_order",
    "count_open",
    "parse_micro",
]

_PPM: Final = 1_000_000
_BPS: Final = 10_000


class RiskReason(IntEnum):
    """Why an order was denied. ``OK`` (0, falsy) means allowed. Checked in this order."""

    OK = 0
    NOT_READY = 1  # the connector is not ready (connecting, reconciling, nonce refresh)
    BOOK_OUT_OF_SYNC = 2  # the book's nonce chain is broken or it is stale
    KILL_SWITCH = 3  # the kill switch is tripped (paused or stopped)
    MARKET_INACTIVE = 4  # the market takes no orders
    MARKET_REDUCE_ONLY = 5  # the market takes reduce-only orders only
    BAD_PRICE = 6  # price <= 0
    BAD_SIZE = 7  # size <= 0 (a size-0 reduce-only order means "the whole position")
    PRICE_PRECISION = 8  # price not a multiple of the market's price step
    SIZE_PRECISION = 9  # size not a multiple of the market's lot step
    BELOW_MIN_SIZE = 10  # size below the market minimum
    BELOW_MIN_NOTIONAL = 11  # price x size below the market minimum
    NO_MARK = 12  # no mark price yet: the band cannot be checked
    PRICE_BAND = 13  # price outside the band around the mark
    MAX_ORDER_NOTIONAL = 14  # price x size above the per-order cap
    REDUCE_ONLY_NO_POSITION = 15  # reduce-only order that cannot reduce (flat, wrong side, too big)
    MAX_POSITION = 16  # position with every open order of that side filled would exceed the cap
    MAX_OPEN_ORDERS = 17  # one more order would exceed the open-orders cap
    ORDER_RATE = 18  # the order-rate cap of the sliding window is used up
    MARGIN_UNKNOWN = 19  # no user_stats yet and margin stats are required
    MARGIN = 20  # the order's initial margin would eat into the headroom


class MarketState(IntEnum):
    """The venue's status of the market."""

    ACTIVE = 0
    REDUCE_ONLY = 1
    INACTIVE = 2


def parse_micro(text: str) -> int:
    """A venue decimal string (``"39.168314"``, ``"-1.5"``) -> micro units, exact; digits beyond
    the sixth decimal are truncated toward zero. ValueError on anything else."""
    if not isinstance(text, str):
        raise ValueError(f"not a decimal string: {text!r}")
    return parse_units(
        text,
        USDC_DECIMALS,
        sign="+-",
        extra="truncate",
        loose=True,
        strip=True,
        what="decimal string",
    )


@dataclass(frozen=True, slots=True)
class MarginState:
    """Account margin numbers from the venue's ``user_stats``, in micro-USDC."""

    available_balance: int  # free collateral
    portfolio_value: int  # collateral plus unrealized PnL

    @classmethod
    def from_user_stats(cls, stats: Mapping[str, Any]) -> MarginState:
        """From a ``user_stats`` ``stats`` object (its cross-margin figures when present)."""
        src = stats.get("cross_stats") or stats
        return cls(
            available_balance=parse_micro(src["available_balance"]),
            portfolio_value=parse_micro(src["portfolio_value"]),
        )


@dataclass(frozen=True, slots=True)
class MarketRules:
    """A market's order rules in engine units (from the venue's orderBookDetails)."""

    market: int  # market index
    price_decimals: int  # price = ticks / 10**price_decimals
    size_decimals: int  # size = lots / 10**size_decimals
    min_size_lots: int = 1  # venue min_base_amount in lots
    min_notional: int = 0  # venue min_quote_amount in tick x lot units
    price_step: int = 1  # prices are multiples of this many ticks
    lot_step: int = 1  # sizes are multiples of this many lots
    initial_margin_bps: int = _BPS  # initial margin fraction (500 = 5%); default: no leverage

    def __post_init__(self) -> None:
        if not (0 <= self.price_decimals <= 18 and 0 <= self.size_decimals <= 18):
            raise ValueError("decimals must be within 0..18")
        if self.min_size_lots < 1 or self.min_notional < 0:
            raise ValueError("min_size_lots must be >= 1 and min_notional >= 0")
        if self.price_step < 1 or self.lot_step < 1:
            raise ValueError("price_step and lot_step must be >= 1")
        if not 0 < self.initial_margin_bps <= _BPS:
            raise ValueError("initial_margin_bps must be within 1..10000")

    @property
    def ticklots_per_unit(self) -> int:
        """tick x lot units in one unit of quote currency (USDC)."""
        return int(10 ** (self.price_decimals + self.size_decimals))


@dataclass(frozen=True, slots=True)
class RiskLimits:
    """Pre-trade limits in engine units."""

    max_position_lots: int  # |position| with every open order of a side filled stays <= this
    max_order_notional: int  # price x size per order, tick x lot units
    max_open_orders: int  # our resting + pending orders in the market
    price_band_bps: int  # |price - mark| <= mark * bps / 10000
    order_rate_cap: int  # new orders + modifies per window
    order_rate_window_ns: int  # sliding window of the cap
    margin_headroom_ppm: int = 0  # fraction of portfolio value kept free, parts per million
    require_margin_stats: bool = True  # deny exposure-adding orders until user_stats arrive

    def __post_init__(self) -> None:
        if self.max_position_lots < 1 or self.max_order_notional < 1:
            raise ValueError("max_position_lots and max_order_notional must be >= 1")
        if self.max_open_orders < 1 or self.order_rate_cap < 1 or self.order_rate_window_ns < 1:
            raise ValueError("max_open_orders, order_rate_cap, order_rate_window_ns must be >= 1")
        if not 1 <= self.price_band_bps <= _BPS:
            raise ValueError("price_band_bps must be within 1..10000")
        if not 0 <= self.margin_headroom_ppm < _PPM:
            raise ValueError("margin_headroom_ppm must be within [0, 1e6)")

    @classmethod
    def from_config(cls, risk: RiskConfig, rules: MarketRules) -> RiskLimits:
        """From the ``[risk]`` config and the market's decimals (USDC -> tick x lot, exact)."""
        return cls(
            max_position_lots=risk.max_position_lots,
            max_order_notional=risk.max_order_notional_usdc * rules.ticklots_per_unit,
            max_open_orders=risk.max_open_orders,
            price_band_bps=risk.price_band_bps,
            order_rate_cap=risk.order_rate_cap,
            order_rate_window_ns=round(risk.order_rate_window_s * 1e9),
            margin_headroom_ppm=round(risk.margin_headroom * _PPM),
            require_margin_stats=risk.require_margin_stats,
        )


@dataclass(slots=True)
class RiskState:
    """What the gate reads: kept current by whoever owns the market's state (one loop thread)."""

    position_lots: int = 0  # signed, long > 0 (the venue's position)
    open_orders: int = 0  # our orders in the market not yet terminal (pending ones included)
    open_bid_lots: int = 0  # remaining lots of those bids (reduce-only ones excluded)
    open_ask_lots: int = 0  # remaining lots of those asks (reduce-only ones excluded)
    # Lots our orders show filled that no fill has reported yet (the order and trade streams
    # are not ordered): exposure the position lacks; set_orders adds them to the open lots.
    unreported_bid_lots: int = 0
    unreported_ask_lots: int = 0
    mark_price: int = 0  # ticks; 0 = not known yet
    market_state: MarketState = MarketState.ACTIVE  # the venue's market status
    book_in_sync: bool = False  # the book's nonce chain is intact and fresh
    connector_ready: bool = False  # connected, reconciled, nonce known
    kill_switch_tripped: bool = False  # the kill switch is paused or stopped
    margin: MarginState | None = None  # last user_stats (None: none yet)

    def set_orders(
        self,
        orders: Iterable[Order],
        intents: Mapping[int, tuple[int, int, int]] | None = None,
        now_ns: int = 0,
    ) -> None:
        """Recount ``open_*`` from our orders of this market (``count_open``), plus the
        ``unreported_*`` lots."""
        self.open_orders, self.open_bid_lots, self.open_ask_lots = count_open(
            orders, intents, now_ns
        )
        self.open_bid_lots += self.unreported_bid_lots
        self.open_ask_lots += self.unreported_ask_lots


def count_open(
    orders: Iterable[Order],
    intents: Mapping[int, tuple[int, int, int]] | None = None,
    now_ns: int = 0,
) -> tuple[int, int, int]:
    """(open orders, open bid lots, open ask lots) of our orders of one market, as the gate
    reads them: terminal orders are skipped; UNKNOWN ones count (they may still rest);
    reduce-only ones count as orders but not as lots (they cannot add exposure). An order
    with a modify the venue has not shown (``intents``: coi -> (price, total size, deadline),
    ``ModifyIntents.pending``) counts the larger of its two remainings while its deadline is
    after ``now_ns``: until the venue shows the modify it may hold either."""
    n = bids = asks = 0
    for o in orders:
        if o.status.is_terminal:
            continue
        n += 1
        if o.reduce_only:
            continue
        rem = o.remaining_lots
        if intents:
            pend = intents.get(o.client_order_index)
            if pend is not None and pend[2] > now_ns and pend[1] - o.filled_lots > rem:
                rem = pend[1] - o.filled_lots
        if o.side is Side.BUY:
            bids += rem
        else:
            asks += rem
    return n, bids, asks


def check_order(
    side: Side,
    price: int,
    size: int,
    state: RiskState,
    limits: RiskLimits,
    rules: MarketRules,
    *,
    reduce_only: bool = False,
    modify_of: Order | None = None,
) -> RiskReason:
    """Every rule but the rate cap; the first that fails, or ``RiskReason.OK``.

    ``modify_of``: the order being modified (same side): the open-order count does not grow.
    Its remaining lots stay counted: a fill of the old order still on its way when the modify
    lands is exposure on top of the new size (the venue sets the new remaining), so the
    worst case is both.
    """
    # Guards: nothing goes out from an untrusted state.
    if not state.connector_ready:
        return RiskReason.NOT_READY
    if not state.book_in_sync:
        return RiskReason.BOOK_OUT_OF_SYNC
    if state.kill_switch_tripped:
        return RiskReason.KILL_SWITCH
    if state.market_state is MarketState.INACTIVE:
        return RiskReason.MARKET_INACTIVE
    if state.market_state is MarketState.REDUCE_ONLY and not reduce_only:
        return RiskReason.MARKET_REDUCE_ONLY
    # Shape, precision, venue minimums.
    if price <= 0:
        return RiskReason.BAD_PRICE
    if size <= 0:
        return RiskReason.BAD_SIZE
    if price % rules.price_step:
        return RiskReason.PRICE_PRECISION
    if size % rules.lot_step:
        return RiskReason.SIZE_PRECISION
    if size < rules.min_size_lots:
        return RiskReason.BELOW_MIN_SIZE
    notional = price * size
    if notional < rules.min_notional:
        return RiskReason.BELOW_MIN_NOTIONAL
    # Price band around the mark: |price - mark| * 10000 <= mark * bps.
    mark = state.mark_price
    if mark <= 0:
        return RiskReason.NO_MARK
    if abs(price - mark) * _BPS > mark * limits.price_band_bps:
        return RiskReason.PRICE_BAND
    if notional > limits.max_order_notional:
        return RiskReason.MAX_ORDER_NOTIONAL
    pos = state.position_lots
    if reduce_only:
        # Reduces only: a buy needs a short at least this big, a sell a long.
        if (side is Side.BUY and -pos < size) or (side is Side.SELL and pos < size):
            return RiskReason.REDUCE_ONLY_NO_POSITION
        extra = 0
    else:
        if side is Side.BUY:
            before = pos + state.open_bid_lots
            after = before + size
            if after > limits.max_position_lots:
                return RiskReason.MAX_POSITION
            extra = max(after, 0) - max(before, 0)  # lots that add long exposure
        else:
            before = pos - state.open_ask_lots
            after = before - size
            if after < -limits.max_position_lots:
                return RiskReason.MAX_POSITION
            extra = max(-after, 0) - max(-before, 0)
    if modify_of is None and state.open_orders + 1 > limits.max_open_orders:
        return RiskReason.MAX_OPEN_ORDERS
    if extra > 0:
        margin = state.margin
        if margin is None:
            if limits.require_margin_stats:
                return RiskReason.MARGIN_UNKNOWN
        elif not _margin_ok(extra * price, margin, limits, rules):
            return RiskReason.MARGIN
    return RiskReason.OK


def _margin_ok(
    extra_notional: int, margin: MarginState, limits: RiskLimits, rules: MarketRules
) -> bool:
    """available - initial margin of the extra exposure >= headroom x portfolio value.

    In micro-USDC the initial margin is notional * imf_bps / 10000 / ticklots_per_unit * 1e6;
    both sides are multiplied by 10000 * ticklots_per_unit * 1e6 to stay in integers."""
    e = rules.ticklots_per_unit
    lhs = (
        margin.available_balance * _BPS * e * _PPM
        - extra_notional * rules.initial_margin_bps * _PPM * _PPM
    )
    rhs = limits.margin_headroom_ppm * max(margin.portfolio_value, 0) * _BPS * e
    return lhs >= rhs
