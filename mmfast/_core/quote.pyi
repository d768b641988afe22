"""Compiled quote computation: target ladder of both sides in int64 ticks and lots.

Units: prices in ticks (price * 10**price_decimals), sizes in lots (size * 10**size_decimals),
positions in lots (signed, long > 0), notional in tick*lot units. Rules, formulas, rounding and
the order of constraints: docs/quote.md. Pure-Python twin: mmfast.reference.quote.
"""

from typing import Final, final

import numpy as np
import numpy.typing as npt

from mmfast._core.book import OrderBook

MODE_FIXED: Final[int]  # 0: fixed spread around the reference, inventory skew
MODE_AS: Final[int]  # 1: Avellaneda-Stoikov reservation price and optimal spread
MAX_LEVELS: Final[int]  # 32: most levels per side
MAX_PRICE: Final[int]  # 2**61: bound of best_bid, best_ask, ref_price (ticks)
MAX_LOTS: Final[int]  # 2**61: bound of position, size_lots, position limits, target (lots)
MAX_TICKS: Final[int]  # 2**50: bound of spreads, spacing, skew, size step, steps

def notional_at_least(price: int, size: int, min_notional: int) -> bool:
    """True when ``price * size >= min_notional``, exact (128-bit) for any int64 inputs."""

def min_notional_from_venue(min_quote_amount: str, price_decimals: int, size_decimals: int) -> int:
    """Re-export of ``mmfast._core.units.min_notional_from_venue`` (venue ``min_quote_amount``
    -> minimum notional in tick*lot units, ``ceil(amount * 10**(price_decimals + size_decimals))``).
    """

def min_size_from_venue(min_base_amount: str, size_decimals: int) -> int:
    """Re-export of ``mmfast._core.units.min_size_from_venue`` (``min_base_amount`` -> lots, ceil)."""

@final
class QuoteParams:
    """Validated, immutable quoting parameters (attributes are read-only).

    Every argument is keyword-only. A bad value raises ValueError (TypeError for a wrong type)
    whose message names the parameter.
    """

    mode: Final[int]
    """MODE_FIXED or MODE_AS."""
    spread_ticks: Final[int]
    """Fixed mode: ticks from the reference to level 0 of each side, [0, MAX_TICKS]."""
    n_levels: Final[int]
    """Levels per side, [1, MAX_LEVELS]."""
    level_spacing_ticks: Final[int]
    """Ticks between consecutive levels of a side, [1, MAX_TICKS]."""
    size_lots: Final[int]
    """Size of level 0, [1, MAX_LOTS]; also the unit of inventory q in A-S mode."""
    size_step_lots: Final[int]
    """Size added per level deeper (negative shrinks the ladder), [-MAX_TICKS, MAX_TICKS]."""
    skew_ticks: Final[int]
    """Fixed mode: price shift at full inventory, [0, MAX_TICKS]; ignored in A-S mode."""
    target_position_lots: Final[int]
    """Inventory the quotes steer toward, [-MAX_LOTS, MAX_LOTS]."""
    max_long_lots: Final[int]
    """Bids never take the position above this, [0, MAX_LOTS]."""
    max_short_lots: Final[int]
    """Asks never take the position below minus this, [0, MAX_LOTS]."""
    min_spread_ticks: Final[int]
    """Floor of ask0 - bid0, [1, MAX_TICKS] (1: bid and ask never meet)."""
    gamma: Final[float]
    """A-S risk aversion, 1/ticks, finite > 0."""
    sigma: Final[float]
    """A-S volatility, ticks/sqrt(second), finite >= 0."""
    tau: Final[float]
    """A-S horizon, seconds, finite >= 0."""
    kappa: Final[float]
    """A-S order-arrival decay, 1/ticks, finite > 0."""
    as_risk_ticks: Final[float]
    """Derived: gamma * sigma**2 * tau (ticks of reservation shift per unit of q)."""
    as_spread_ticks: Final[float]
    """Derived: A-S optimal total spread gamma*sigma**2*tau + (2/gamma)*ln(1 + gamma/kappa)."""

    def __init__(
        self,
        *,
        max_long_lots: int,
        max_short_lots: int,
        mode: int = 0,
        spread_ticks: int = 1,
        n_levels: int = 1,
        level_spacing_ticks: int = 1,
        size_lots: int = 1,
        size_step_lots: int = 0,
        skew_ticks: int = 0,
        target_position_lots: int = 0,
        min_spread_ticks: int = 1,
        gamma: float = 0.1,
        sigma: float = 0.0,
        tau: float = 1.0,
        kappa: float = 1.0,
    ) -> None: ...

@final
class QuoteEngine:
    """Computes the target ladder into preallocated int64 buffers.

    ``bid_prices``, ``bid_sizes``, ``ask_prices``, ``ask_sizes`` are read-only numpy views of
    the engine's buffers, created once (length MAX_LEVELS): only the first ``n_bids`` /
    ``n_asks`` entries are meaningful, best level first, and they are overwritten by the next
    ``compute``; copy what must outlive it (``bids()`` / ``asks()`` return copies).
    """

    params: Final[QuoteParams]
    """Current parameters (swap with set_params)."""
    min_size_lots: Final[int]
    """Market minimum size in lots, [1, MAX_LOTS]; smaller levels are dropped."""
    min_notional: Final[int]
    """Market minimum price*size in tick*lot units, [0, 2**63-1]; smaller levels are dropped."""
    price_step: Final[int]
    """Prices are multiples of this many ticks, [1, MAX_TICKS] (bids round down, asks up)."""
    lot_step: Final[int]
    """Sizes are multiples of this many lots, [1, MAX_TICKS] (rounded down)."""
    n_bids: Final[int]
    """Bid levels produced by the last compute."""
    n_asks: Final[int]
    """Ask levels produced by the last compute."""
    bid_prices: Final[npt.NDArray[np.int64]]
    """Bid prices (ticks), best (highest) first; valid entries [:n_bids], until the next compute."""
    bid_sizes: Final[npt.NDArray[np.int64]]
    """Bid sizes (lots); valid entries [:n_bids], until the next compute."""
    ask_prices: Final[npt.NDArray[np.int64]]
    """Ask prices (ticks), best (lowest) first; valid entries [:n_asks], until the next compute."""
    ask_sizes: Final[npt.NDArray[np.int64]]
    """Ask sizes (lots); valid entries [:n_asks], until the next compute."""

    def __init__(
        self,
        params: QuoteParams,
        *,
        min_size_lots: int = 1,
        min_notional: int = 0,
        price_step: int = 1,
        lot_step: int = 1,
    ) -> None: ...
    def set_params(self, params: QuoteParams) -> None:
        """Swap the parameters; takes effect at the next compute."""
    def compute(self, best_bid: int, best_ask: int, position: int, ref_price: int = 0) -> int:
        """Compute both sides; returns n_bids + n_asks.

        ``ref_price`` 0 uses the mid of best_bid/best_ask (kept exact as bid + ask). A book side
        of 0 means missing: with no ref_price and a missing side nothing is produced; a missing
        side also means no post-only clamp against it. ValueError when a price is outside
        [0, MAX_PRICE] or the position outside [-MAX_LOTS, MAX_LOTS]. Allocates nothing.
        """
    def compute_from_book(self, book: OrderBook, position: int, ref_price: int = 0) -> int:
        """``compute(book.best_bid(), book.best_ask(), position, ref_price)`` through C calls.

        Produces nothing (returns 0) while ``book.in_sync()`` is false.
        """
    def bids(self) -> list[tuple[int, int]]:
        """Copy of the bid ladder: [(price_ticks, size_lots)], best first."""
    def asks(self) -> list[tuple[int, int]]:
        """Copy of the ask ladder: [(price_ticks, size_lots)], best first."""
