"""Pure-Python reference of ``mmfast._core.quote``: same semantics, plain Python ints.

It is the oracle of the property tests (``tests/unit/test_quote_props.py``) and the
"same quote in Python" baseline of the benchmarks. The rules are described in ``docs/quote.md``;
every step below names the rule it implements, in the order the compiled engine applies them.
Avellaneda-Stoikov prices are computed in float with the same operations and the same single
rounding as the compiled engine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

# Venue metadata -> minimums: the reference units module converts (re-exported for callers).
from mmfast.reference.units import min_notional_from_venue, min_size_from_venue  # noqa: F401

MODE_FIXED = 0
MODE_AS = 1
MAX_LEVELS = 32
# Input bounds (same as the compiled engine): every intermediate stays inside int64 there.
MAX_PRICE = 1 << 61
MAX_LOTS = 1 << 61
MAX_TICKS = 1 << 50
# Avellaneda-Stoikov level-0 prices are clamped to +-AS_PRICE_CLAMP (exact in double) before
# rounding, so an extreme model output stays an int64.
AS_PRICE_CLAMP = 1 << 61

Level = tuple[int, int]


class QuoteParamsLike(Protocol):
    """Anything with the fields of ``mmfast._core.quote.QuoteParams`` (that class included)."""

    mode: int
    spread_ticks: int
    n_levels: int
    level_spacing_ticks: int
    size_lots: int
    size_step_lots: int
    skew_ticks: int
    target_position_lots: int
    max_long_lots: int
    max_short_lots: int
    min_spread_ticks: int
    gamma: float
    sigma: float
    tau: float
    kappa: float


@dataclass(frozen=True, slots=True)
class RefQuoteParams:
    """Plain-Python parameter record with the fields and defaults of ``QuoteParams``.

    No validation here: the compiled ``QuoteParams`` validates; tests build both from the
    same values.
    """

    max_long_lots: int
    max_short_lots: int
    mode: int = MODE_FIXED
    spread_ticks: int = 1
    n_levels: int = 1
    level_spacing_ticks: int = 1
    size_lots: int = 1
    size_step_lots: int = 0
    skew_ticks: int = 0
    target_position_lots: int = 0
    min_spread_ticks: int = 1
    gamma: float = 0.1
    sigma: float = 0.0
    tau: float = 1.0
    kappa: float = 1.0


def as_terms(gamma: float, sigma: float, tau: float, kappa: float) -> tuple[float, float]:
    """Avellaneda-Stoikov terms in ticks: (gamma*sigma^2*tau, optimal total spread delta)."""
    risk = gamma * sigma * sigma * tau
    return risk, risk + (2.0 / gamma) * math.log1p(gamma / kappa)


def _floor_to(x: int, step: int) -> int:
    return x - x % step  # Python % is a floor modulo: rounds down, negatives included


def _ceil_to(x: int, step: int) -> int:
    return -_floor_to(-x, step)


def _level0(p: QuoteParamsLike, ref2: int, position: int) -> tuple[int, int]:
    """Level-0 bid and ask before constraints (rule 2 of docs/quote.md)."""
    q_lots = position - p.target_position_lots
    if p.mode == MODE_AS:
        risk, spread = as_terms(p.gamma, p.sigma, p.tau, p.kappa)
        s = float(ref2) / 2.0
        q = float(q_lots) / float(p.size_lots)
        r = s - q * risk
        b = r - spread / 2.0
        a = r + spread / 2.0
        b = min(max(b, -float(AS_PRICE_CLAMP)), float(AS_PRICE_CLAMP))
        a = min(max(a, -float(AS_PRICE_CLAMP)), float(AS_PRICE_CLAMP))
        return math.floor(b), math.ceil(a)
    # Fixed spread, inventory skew: shift = -sign(q) * floor(skew * min(|q|, D) / D) with
    # D = max_long_lots when long of target, max_short_lots when short (saturates at +-skew).
    shift = 0
    if q_lots != 0 and p.skew_ticks != 0:
        d = p.max_long_lots if q_lots > 0 else p.max_short_lots
        mag = p.skew_ticks if abs(q_lots) >= d else p.skew_ticks * abs(q_lots) // d
        shift = -mag if q_lots > 0 else mag
    return ref2 // 2 - p.spread_ticks + shift, (ref2 + 1) // 2 + p.spread_ticks + shift


def reference_quote(
    p: QuoteParamsLike,
    best_bid: int,
    best_ask: int,
    position: int,
    ref_price: int = 0,
    *,
    min_size_lots: int = 1,
    min_notional: int = 0,
    price_step: int = 1,
    lot_step: int = 1,
) -> tuple[list[Level], list[Level]]:
    """Target ladder ``(bids, asks)``, each a list of ``(price_ticks, size_lots)`` best first."""
    for name, v in (("best_bid", best_bid), ("best_ask", best_ask), ("ref_price", ref_price)):
        if not 0 <= v <= MAX_PRICE:
            raise ValueError(f"{name} must be in [0, {MAX_PRICE}], got {v}")
    if not -MAX_LOTS <= position <= MAX_LOTS:
        raise ValueError(f"position must be in [-{MAX_LOTS}, {MAX_LOTS}], got {position}")
    # 1. Reference, doubled so a half-tick mid stays exact.
    if ref_price > 0:
        ref2 = 2 * ref_price
    elif best_bid > 0 and best_ask > 0:
        ref2 = best_bid + best_ask
    else:
        return [], []
    # 2. Level 0 from the model.
    bid0, ask0 = _level0(p, ref2, position)
    # 3. Minimum spread: re-place both around their centre, bid down, ask up.
    if ask0 - bid0 < p.min_spread_ticks:
        c = bid0 + ask0
        bid0 = (c - p.min_spread_ticks) // 2
        ask0 = -((-(c + p.min_spread_ticks)) // 2)
    # 4. Post-only: never at or through the opposite touch.
    if best_ask > 0 and bid0 >= best_ask:
        bid0 = best_ask - 1
    if best_bid > 0 and ask0 <= best_bid:
        ask0 = best_bid + 1
    # Prices are positive: an ask never below 1 tick (bids at or below 0 are dropped later).
    if ask0 < 1:
        ask0 = 1
    # 5-7. Ladder, rounding, monotonicity, sizes, limits, minimums.
    bids = _side(
        p, bid0, -1, p.max_long_lots - position, min_size_lots, min_notional, price_step, lot_step
    )
    asks = _side(
        p, ask0, 1, p.max_short_lots + position, min_size_lots, min_notional, price_step, lot_step
    )
    return bids, asks


def _side(
    p: QuoteParamsLike,
    px0: int,
    direction: int,
    capacity: int,
    min_size: int,
    min_notional: int,
    price_step: int,
    lot_step: int,
) -> list[Level]:
    out: list[Level] = []
    remaining = capacity
    prev = 0
    for i in range(p.n_levels):
        raw = px0 + direction * i * p.level_spacing_ticks
        if direction < 0:
            px = _floor_to(raw, price_step)
            if i > 0:
                px = min(px, prev - price_step)
            if px <= 0:
                break  # deeper bids are lower still
        else:
            px = _ceil_to(raw, price_step)
            if i > 0:
                px = max(px, prev + price_step)
        prev = px
        if remaining < min_size:
            break  # every later level would be clipped below the minimum size
        size = min(p.size_lots + i * p.size_step_lots, remaining)
        size = _floor_to(size, lot_step)
        if size < min_size or px * size < min_notional:
            continue  # dropped; its capacity stays available to deeper levels
        out.append((px, size))
        remaining -= size
    return out


class ReferenceQuoteEngine:
    """Python twin of ``QuoteEngine`` (results as lists, not buffers): the benchmark baseline."""

    __slots__ = (
        "_asks",
        "_bids",
        "lot_step",
        "min_notional",
        "min_size_lots",
        "params",
        "price_step",
    )

    def __init__(
        self,
        params: QuoteParamsLike,
        *,
        min_size_lots: int = 1,
        min_notional: int = 0,
        price_step: int = 1,
        lot_step: int = 1,
    ) -> None:
        self.params = params
        self.min_size_lots = min_size_lots
        self.min_notional = min_notional
        self.price_step = price_step
        self.lot_step = lot_step
        self._bids: list[Level] = []
        self._asks: list[Level] = []

    def compute(self, best_bid: int, best_ask: int, position: int, ref_price: int = 0) -> int:
        """Compute the ladder; returns the number of levels (bids + asks)."""
        self._bids, self._asks = reference_quote(
            self.params,
            best_bid,
            best_ask,
            position,
            ref_price,
            min_size_lots=self.min_size_lots,
            min_notional=self.min_notional,
            price_step=self.price_step,
            lot_step=self.lot_step,
        )
        return len(self._bids) + len(self._asks)

    def bids(self) -> list[Level]:
        return list(self._bids)

    def asks(self) -> list[Level]:
        return list(self._asks)
