"""Online estimators for the Avellaneda-Stoikov mode: volatility and order-arrival intensity.

Both are exponentially weighted over a window (the weight of a sample halves every
``window_s * ln 2`` seconds, i.e. decays by e per window), fed from the loop thread, O(1) per
sample, no allocation. Units follow the quote engine: ticks, seconds.

- ``VolatilityEstimator``: sigma in ticks/sqrt(second) from mid-price changes, the variance of
  increments divided by the time between samples (a Brownian-motion estimate).
- ``ArrivalIntensity``: A-S models the fill intensity at distance delta from the mid as
  ``A * exp(-kappa * delta)``. Trade distances from the mid are then exponential with rate kappa,
  whose maximum-likelihood estimate is ``1 / mean(delta)``; ``A`` is the trade rate per second.
"""

from __future__ import annotations

import math

__all__ = ["ArrivalIntensity", "VolatilityEstimator"]


class VolatilityEstimator:
    """Exponentially weighted variance of mid increments per second -> sigma (ticks/sqrt(s))."""

    __slots__ = ("_last_mid2", "_last_ns", "_var", "_weight", "samples", "window_ns")

    def __init__(self, window_s: float) -> None:
        if not window_s > 0:
            raise ValueError("window_s must be > 0")
        self.window_ns = int(window_s * 1e9)  # e-folding time of a sample's weight
        self._last_mid2 = 0  # previous mid, doubled (exact half ticks); 0: none yet
        self._last_ns = 0  # time of the previous sample
        self._var = 0.0  # weighted mean of dx^2 / dt (ticks^2 per second)
        self._weight = 0.0  # total weight (normalises the mean while warming up)
        self.samples = 0  # increments seen

    def update(self, mid_x2: int, now_ns: int) -> None:
        """A mid price (doubled, as ``OrderBook.mid_x2``) at ``now_ns``."""
        if mid_x2 <= 0:
            return
        if self._last_mid2 and now_ns > self._last_ns:
            dt = (now_ns - self._last_ns) / 1e9
            dx = (mid_x2 - self._last_mid2) / 2.0
            decay = math.exp(-(now_ns - self._last_ns) / self.window_ns)
            w = 1.0 - decay  # a sample's weight grows with the time it covers
            self._var = self._var * decay + w * (dx * dx / dt)
            self._weight = self._weight * decay + w
            self.samples += 1
        self._last_mid2 = mid_x2
        self._last_ns = now_ns

    @property
    def sigma(self) -> float:
        """Volatility, ticks/sqrt(second) (0.0 before the first increment)."""
        if self._weight <= 0.0:
            return 0.0
        return math.sqrt(self._var / self._weight)


class ArrivalIntensity:
    """Trades' distance from the mid -> kappa (1/ticks) and arrival rate A (trades/second)."""

    __slots__ = (
        "_first_ns",
        "_last_ns",
        "_mean_delta",
        "_rate_w",
        "_weight",
        "samples",
        "window_ns",
    )

    def __init__(self, window_s: float) -> None:
        if not window_s > 0:
            raise ValueError("window_s must be > 0")
        self.window_ns = int(window_s * 1e9)  # e-folding time of a sample's weight
        self._mean_delta = 0.0  # weighted mean distance of trades from the mid (ticks)
        self._weight = 0.0  # total weight of the distance samples
        self._rate_w = 0.0  # exponentially decayed trade count
        self._first_ns = 0  # first trade seen (rate warm-up)
        self._last_ns = 0  # last trade seen
        self.samples = 0  # trades seen

    def update(self, trade_price: int, mid_x2: int, now_ns: int) -> None:
        """One trade at ``trade_price`` (ticks) while the mid was ``mid_x2 / 2``."""
        if trade_price <= 0 or mid_x2 <= 0:
            return
        delta = abs(2 * trade_price - mid_x2) / 2.0
        delta = max(delta, 0.5)  # a trade at the mid still sits half a tick away on a book
        if self._last_ns:
            decay = math.exp(-max(0, now_ns - self._last_ns) / self.window_ns)
        else:
            decay = 1.0
            self._first_ns = now_ns
        self._mean_delta = self._mean_delta * decay
        self._weight = self._weight * decay
        self._rate_w = self._rate_w * decay + 1.0
        self._mean_delta += delta
        self._weight += 1.0
        self._last_ns = now_ns
        self.samples += 1

    @property
    def kappa(self) -> float:
        """Order-arrival decay, 1/ticks (0.0 before the first trade)."""
        if self._weight <= 0.0:
            return 0.0
        return self._weight / self._mean_delta

    def rate(self, now_ns: int) -> float:
        """Trades per second (the A of A*exp(-kappa*delta)), decayed to ``now_ns``."""
        if not self._last_ns:
            return 0.0
        span = min(self.window_ns, max(1, now_ns - self._first_ns))
        decay = math.exp(-max(0, now_ns - self._last_ns) / self.window_ns)
        return self._rate_w * decay / (span / 1e9)
