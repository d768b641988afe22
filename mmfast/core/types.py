"""Trading data types: sides, order attributes and states, orders, fills, positions.

Prices are int ticks and sizes int lots throughout; fees are int quote units (the venue's
smallest quote-currency unit). Enum values match the venue's wire values and the compiled
modules' constants, so they cross both boundaries without translation.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from fractions import Fraction

__all__ = [
    "MAX_CLIENT_ORDER_INDEX",
    "Fill",
    "LifecycleState",
    "Order",
    "OrderStatus",
    "OrderType",
    "Position",
    "Side",
    "TimeInForce",
]

# Client order indexes are 1..2^48-1; the venue reads values >= 2^48 as exchange order indexes.
MAX_CLIENT_ORDER_INDEX = (1 << 48) - 1


class Side(IntEnum):
    """Order side. Values equal the venue's ``is_ask`` and the compiled BID=0 / ASK=1."""

    BUY = 0
    SELL = 1

    @property
    def sign(self) -> int:
        """+1 for BUY, -1 for SELL (the sign of the position change a fill causes)."""
        return 1 - 2 * self.value

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY


class TimeInForce(IntEnum):
    """Lighter's TimeInForce values; post-only is a time-in-force on Lighter, not a flag."""

    IOC = 0
    GTT = 1
    POST_ONLY = 2


class OrderType(IntEnum):
    """Lighter's order Type values (the ones mmfast places)."""

    LIMIT = 0
    MARKET = 1


class OrderStatus(IntEnum):
    """mmfast's view of an order. UNKNOWN: outcome not known (timeout), never read as rejected."""

    PENDING_NEW = 0
    OPEN = 1
    PARTIALLY_FILLED = 2
    FILLED = 3
    PENDING_CANCEL = 4
    CANCELED = 5
    REJECTED = 6
    UNKNOWN = 7

    @property
    def is_terminal(self) -> bool:
        """FILLED, CANCELED or REJECTED: the order can never trade again."""
        return self in _TERMINAL

    @property
    def is_live(self) -> bool:
        """OPEN or PARTIALLY_FILLED (or PENDING_CANCEL): resting on the book per the venue."""
        return self in _LIVE


_TERMINAL = frozenset({OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.REJECTED})
_LIVE = frozenset({OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED, OrderStatus.PENDING_CANCEL})


class LifecycleState(IntEnum):
    """TradingCore lifecycle: CREATED -> STARTING -> RUNNING -> STOPPING -> STOPPED -> SHUT_DOWN."""

    CREATED = 0
    STARTING = 1
    RUNNING = 2
    STOPPING = 3
    STOPPED = 4
    SHUT_DOWN = 5


@dataclass(slots=True)
class Order:
    """One order of ours, keyed by ``client_order_index``; mutable as its state moves.

    ``order_index`` is the venue's index once known (None before). ``expiry_ms`` is a wall-clock
    epoch ms (0 for IOC). ``created_ns``/``updated_ns`` are monotonic ns.
    """

    client_order_index: int
    market: int
    side: Side
    price_ticks: int
    size_lots: int
    tif: TimeInForce = TimeInForce.GTT
    order_type: OrderType = OrderType.LIMIT
    reduce_only: bool = False
    expiry_ms: int = 0
    status: OrderStatus = OrderStatus.PENDING_NEW
    order_index: int | None = None
    filled_lots: int = 0
    cancel_reason: str | None = None
    created_ns: int = 0
    updated_ns: int = 0

    @property
    def remaining_lots(self) -> int:
        return self.size_lots - self.filled_lots

    @property
    def is_terminal(self) -> bool:
        return self.status.is_terminal

    def check(self) -> None:
        """Raise ValueError if the order breaks a venue rule that holds for every order."""
        if not 1 <= self.client_order_index <= MAX_CLIENT_ORDER_INDEX:
            raise ValueError(f"client_order_index out of 1..2^48-1: {self.client_order_index}")
        if self.price_ticks <= 0:
            raise ValueError(f"price_ticks must be > 0: {self.price_ticks}")
        if self.size_lots <= 0 and not self.reduce_only:
            raise ValueError(f"size_lots must be > 0: {self.size_lots}")
        if not 0 <= self.filled_lots <= max(self.size_lots, 0):
            raise ValueError(f"filled_lots out of 0..size_lots: {self.filled_lots}")
        if self.tif is TimeInForce.IOC:
            if self.expiry_ms != 0:
                raise ValueError("IOC orders take expiry_ms 0")
        elif self.expiry_ms <= 0:
            raise ValueError(f"{self.tif.name} orders need a wall-clock expiry_ms")
        if self.order_type is OrderType.MARKET and self.tif is not TimeInForce.IOC:
            raise ValueError("market orders are IOC")


@dataclass(slots=True, frozen=True)
class Fill:
    """One trade of ours. ``fee`` in int quote units: > 0 paid, < 0 rebate. ``ts_ns`` monotonic."""

    trade_id: int
    market: int
    side: Side
    price_ticks: int
    size_lots: int
    fee: int
    is_maker: bool
    client_order_index: int | None
    order_index: int | None
    ts_ns: int


@dataclass(slots=True)
class Position:
    """Position in one market, average-cost accounting, exact.

    ``size_lots`` is signed (long > 0). ``avg_entry_price_ticks`` is an exact rational (a
    ``Fraction`` of ticks; 0 when flat): partial reductions keep the average, which is rarely a
    whole tick. ``realized_pnl`` is exact too, in tick x lot units (convert to quote currency at
    the edge with the market's tick and lot sizes); fees are kept apart in ``fees_paid`` (quote
    units) because they come in a different unit. ``funding_paid`` is the venue's cumulative
    funding paid out on this position (quote units; negative when received): funding is not a
    fill, so only the venue's position messages know it.
    """

    market: int
    size_lots: int = 0
    avg_entry_price_ticks: Fraction = Fraction(0)
    realized_pnl: Fraction = Fraction(0)
    fees_paid: int = 0
    funding_paid: int = 0

    def apply_fill(self, fill: Fill) -> Fraction:
        """Apply one fill; return the PnL it realized (tick x lot units, fees excluded)."""
        if fill.market != self.market:
            raise ValueError(f"fill for market {fill.market} applied to position {self.market}")
        if fill.size_lots <= 0 or fill.price_ticks <= 0:
            raise ValueError(f"fill needs positive price and size: {fill!r}")
        self.fees_paid += fill.fee
        delta = fill.side.sign * fill.size_lots
        size = self.size_lots
        realized = Fraction(0)
        if size == 0 or (size > 0) == (delta > 0):
            # Opening or adding: new average is the size-weighted mean.
            new_size = size + delta
            self.avg_entry_price_ticks = (
                self.avg_entry_price_ticks * abs(size) + fill.price_ticks * abs(delta)
            ) / abs(new_size)
            self.size_lots = new_size
            return realized
        closed = min(abs(size), abs(delta))
        direction = 1 if size > 0 else -1
        realized = (fill.price_ticks - self.avg_entry_price_ticks) * closed * direction
        self.realized_pnl += realized
        new_size = size + delta
        if new_size == 0:
            self.avg_entry_price_ticks = Fraction(0)
        elif (new_size > 0) != (size > 0):
            self.avg_entry_price_ticks = Fraction(fill.price_ticks)  # flipped: rest opens here
        self.size_lots = new_size
        return realized

    def unrealized_pnl(self, mark_price_ticks: int) -> Fraction:
        """PnL of the open size at ``mark_price_ticks`` (tick x lot units)."""
        return (mark_price_ticks - self.avg_entry_price_ticks) * self.size_lots
