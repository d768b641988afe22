"""Synthetic market flow: seeded participants that keep each market's book alive.

Per market, on a fixed grid of simulated time (`FlowConfig.step_ms`):

- a fair price follows a jump diffusion (a log random walk of `volatility_bps` per sqrt(second)
  plus Poisson jumps); the market's mark price follows it;
- limit orders arrive (Poisson, `limit_rate_per_s`) at `spread_bps / 2` plus an exponential
  distance (mean `depth_bps`) from the fair price, on either side; one that the fair price has
  pushed through the opposite touch is marketable and trades on arrival (that is how the book
  follows the fair price, and how resting quotes get picked off);
- resting flow orders are canceled (Poisson, `cancel_rate_per_s`), and those that drifted
  beyond `max_depth_bps` from the fair price go too;
- market orders (Poisson, `market_rate_per_s`) sweep levels from the touch, leaning towards
  the side the fair price points to.

Every order goes through the engine's price-time matching, so a client's resting order fills
only when flow reaches it through the queue ahead of it. The flow draws from one stream per
market seeded by (seed, market id) and is generated step by step on the grid, so the same seed
gives the same flow whatever the timer jitter (the interleaving with a client's own orders of
course depends on when they arrive).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from mmfast.sim.config import FlowConfig
from mmfast.sim.engine import ORDER_MARKET, TIF_GTT, Exchange, MarketState, Order
from mmfast.sim.units import ceil_div


@dataclass(slots=True)
class _MarketFlow:
    """Flow state of one market."""

    market: int  # market id
    rng: random.Random  # this market's random stream
    fair: float  # fair price, ticks
    unit: int  # one minimum order size, lots (min base and min quote both met)
    bids: list[Order] = field(default_factory=list)  # resting flow bids (may hold dead ones)
    asks: list[Order] = field(default_factory=list)  # resting flow asks (may hold dead ones)


def _poisson(rng: random.Random, lam: float) -> int:
    """Poisson draw (Knuth; the per-step rates are small)."""
    if lam <= 0.0:
        return 0
    if lam > 30.0:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit = math.exp(-lam)
    k, p = 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


class MarketFlow:
    """The flow of every market of an `Exchange` (drive it with `advance_to`)."""

    def __init__(
        self,
        exchange: Exchange,
        config: FlowConfig,
        seed: int,
        markets: tuple[int, ...] | None = None,
    ) -> None:
        self.ex = exchange
        self.config = config
        self.step_ns = config.step_ms * 1_000_000
        self.t0_ns: int | None = None  # grid origin: the first advance_to
        self.steps = 0  # grid steps generated so far
        for idx in (config.maker_account, config.taker_account):
            if idx not in exchange.accounts:
                exchange.add_account(idx, config.collateral, api_key_indexes=())
        self.markets: dict[int, _MarketFlow] = {}
        for mid in markets if markets is not None else tuple(exchange.markets):
            m = exchange.markets[mid]
            spec = m.spec
            unit = max(
                spec.min_base_amount,
                ceil_div(spec.min_quote_amount, m.mark_price * spec.quote_scale),
            )
            self.markets[mid] = _MarketFlow(
                mid, random.Random(f"flow:{seed}:{mid}"), float(m.mark_price), unit
            )

    # ------------------------------------------------------------------ driving
    def advance_to(self, now_ns: int) -> int:
        """Generate the flow of every grid step up to `now_ns`; returns the steps run."""
        if self.t0_ns is None:
            self.t0_ns = now_ns
            for f in self.markets.values():
                self._seed_book(f)
            return 0
        due = (now_ns - self.t0_ns) // self.step_ns
        n = 0
        while self.steps < due:
            self.steps += 1
            n += 1
            for f in self.markets.values():
                self._step(f)
        return n

    def fair_price(self, market: int) -> float:
        """The market's current fair price (ticks)."""
        return self.markets[market].fair

    # ------------------------------------------------------------------ one market
    def _seed_book(self, f: _MarketFlow) -> None:
        cfg = self.config
        for _ in range(cfg.initial_levels):
            for is_ask in (False, True):
                self._limit(f, is_ask)

    def _step(self, f: _MarketFlow) -> None:
        cfg = self.config
        rng = f.rng
        dt = cfg.step_ms / 1000
        # Fair price: a jump diffusion in log space.
        r = cfg.volatility_bps * 1e-4 * math.sqrt(dt) * rng.gauss(0.0, 1.0)
        if cfg.jump_rate_per_min > 0 and rng.random() < cfg.jump_rate_per_min / 60 * dt:
            r += cfg.jump_bps * 1e-4 * rng.gauss(0.0, 1.0)
        f.fair = max(1.0, f.fair * math.exp(r))
        m = self.ex.markets[f.market]
        mark = max(1, round(f.fair))
        if mark != m.mark_price:
            self.ex.set_mark_price(f.market, mark)
        for _ in range(_poisson(rng, cfg.market_rate_per_s * dt)):
            self._market_order(f, m)
        for _ in range(_poisson(rng, cfg.limit_rate_per_s * dt)):
            self._limit(f, rng.random() < 0.5)
        for _ in range(_poisson(rng, cfg.cancel_rate_per_s * dt)):
            self._cancel_random(f)
        if self.steps % 10 == 0:
            self._prune(f)

    def _limit(self, f: _MarketFlow, is_ask: bool) -> None:
        cfg = self.config
        rng = f.rng
        bps = cfg.spread_bps / 2 + (rng.expovariate(1.0 / cfg.depth_bps) if cfg.depth_bps else 0.0)
        dist = max(1.0, f.fair * bps * 1e-4)  # ticks, at least one
        price = math.ceil(f.fair + dist) if is_ask else math.floor(f.fair - dist)
        if price < 1:
            return
        size = rng.randint(*cfg.order_size) * f.unit
        m = self.ex.markets[f.market]
        marketable = m.side(not is_ask).crosses(price)
        acct = cfg.taker_account if marketable else cfg.maker_account
        o = self.ex.place_direct(acct, f.market, is_ask, price, size, tif=TIF_GTT)
        if o.live:
            (f.asks if is_ask else f.bids).append(o)

    def _market_order(self, f: _MarketFlow, m: MarketState) -> None:
        cfg = self.config
        rng = f.rng
        bid, ask = m.bids.best(), m.asks.best()
        lean = 0.0
        if bid is not None and ask is not None:
            half = max(1.0, f.fair * cfg.spread_bps * 0.5e-4)
            lean = math.tanh((f.fair - (bid + ask) / 2) / half)
        buy = rng.random() < 0.5 + 0.3 * lean
        size = rng.randint(*cfg.market_size) * f.unit
        reach = max(1, round(f.fair * cfg.max_depth_bps * 1e-4))
        worst = round(f.fair) + reach if buy else max(1, round(f.fair) - reach)
        self.ex.place_direct(cfg.taker_account, f.market, not buy, worst, size, otype=ORDER_MARKET)

    def _cancel_random(self, f: _MarketFlow) -> None:
        rng = f.rng
        side = f.asks if rng.random() < 0.5 else f.bids
        while side:
            o = side.pop(rng.randrange(len(side)))
            if self.ex.cancel_direct(o):
                return

    def _prune(self, f: _MarketFlow) -> None:
        cfg = self.config
        reach = f.fair * cfg.max_depth_bps * 1e-4
        for side in (f.bids, f.asks):
            live = [o for o in side if o.live]
            far = [o for o in live if abs(o.price - f.fair) > reach]
            for o in far:
                self.ex.cancel_direct(o)
            live = [o for o in live if o.live]
            if len(live) > cfg.max_orders_per_side:
                live.sort(key=lambda o: abs(o.price - f.fair))
                for o in live[cfg.max_orders_per_side :]:
                    self.ex.cancel_direct(o)
                live = live[: cfg.max_orders_per_side]
            side[:] = live
