"""``market_making``: a ladder on both sides of a reference price, requoted on book events.

Parameters (``[strategy.market_making]``, docs/strategies.md) in the spirit of pure market
making and Avellaneda-Stoikov: bid/ask spread, levels, level spread, order amount and step,
refresh tolerance, max order age, filled-order delay, inventory target and skew, minimum spread,
price ceiling/floor, reference price (mid, microprice, last trade), and an A-S mode whose sigma
and kappa are estimated online (``estimators``).

Every price is an int tick computed by the compiled ``QuoteEngine``; the planner turns the
target ladder and the live orders into the fewest txs; each one is gated before it is sent.

Two paths, the same actions (the twin property test holds them equal):

- the compiled step (``compiled_step = true``, the default): a ``Pipeline``
  (``mmfast._core.pipeline``) takes this market's book frames from the connector's stream
  (``MarketView.attach_step``) and runs book -> quote -> plan -> risk gate in C; ``on_frame``
  then sends the gated actions (``_send_step``). Ticks, order and fill events run the same
  step through ``requote``;
- the Python path (``requote_python``): quote, ``plan_requotes`` and the gate per order call,
  on book events from the bus. Kept as the reference the compiled step is tested against and
  as the benchmarks' baseline.
"""

from __future__ import annotations

import contextlib
import math
from typing import TYPE_CHECKING, Any

from mmfast._core.pipeline import Pipeline
from mmfast._core.quote import MODE_AS, MODE_FIXED, QuoteEngine, QuoteParams, notional_at_least
from mmfast.core.log import get_logger
from mmfast.core.plan_types import ActionKind, BudgetView, UnlimitedBudget
from mmfast.core.types import Fill, Order, Side
from mmfast.strategy.base import StrategyBase
from mmfast.strategy.estimators import ArrivalIntensity, VolatilityEstimator
from mmfast.strategy.planner import PlannerParams, plan_requotes

if TYPE_CHECKING:
    from mmfast.conf.schema import MarketMakingConfig
    from mmfast.core.interfaces import OrderConnector

__all__ = ["MarketMaking"]

_log = get_logger("strategy")


class MarketMaking(StrategyBase):
    """Pure market making / Avellaneda-Stoikov on one market (see the module doc)."""

    name = "market_making"

    def __init__(
        self, market: int, connector: OrderConnector, config: MarketMakingConfig, **kw: Any
    ) -> None:
        kw.setdefault("order_expiry_s", config.order_expiry_s)
        super().__init__(market, connector, **kw)
        self.config = config  # [strategy.market_making]
        self.engine: QuoteEngine | None = None  # compiled quote engine (built at start)
        self.planner = PlannerParams.from_config(config)  # tolerances and max order age
        a = config.avellaneda_stoikov
        self.vol = VolatilityEstimator(a.sigma_window_s)  # online sigma (ticks/sqrt s)
        self.arrivals = ArrivalIntensity(a.kappa_window_s)  # online kappa (1/ticks)
        self.sigma = a.sigma  # sigma in use
        self.kappa = a.kappa  # kappa in use
        self._seen_trades = 0  # trades of the connector's deque already fed to the estimator
        self._last_trade_id: Any = None  # last trade fed (the deque is bounded)
        self.last_target: tuple[list[tuple[int, int]], list[tuple[int, int]]] = ([], [])
        self.requotes = 0  # requote passes that computed a target (Python path)
        self._attached = False  # the compiled step takes this market's frames from the stream
        self._step_errors = 0  # the compiled step's errors already logged
        self._sender: Any = None  # order entry's DirectSender (the step's first tx)

    # ------------------------------------------------------------------ setup
    def start(self, core: Any) -> None:
        super().start(core)
        assert self.rules is not None and self.gate is not None
        self.engine = QuoteEngine(
            self._params(),
            min_size_lots=self.rules.min_size_lots,
            min_notional=self.rules.min_notional,
            price_step=self.rules.price_step,
            lot_step=self.rules.lot_step,
        )
        if self.book is not None:
            self._build_pipe(self.book)

    async def stop(self) -> None:
        pipe = self.pipe
        if pipe is not None:
            pipe.running = False
            if self._attached and self.view is not None:
                self.view.attach_step(None)
                self._attached = False
        await super().stop()

    # ------------------------------------------------------------------ the compiled step
    def _build_pipe(self, book: Any) -> None:
        """The compiled step over ``book`` (compiled_step on, a budget it can read), routed
        the market's frames when the connector can."""
        c = self.config
        budget = self.budget()
        if not c.compiled_step or not (isinstance(budget, (BudgetView, UnlimitedBudget))):
            return
        assert self.engine is not None and self.gate is not None and self.rules is not None
        d, up = 0, True
        if c.mode == "fixed" and c.bid_spread_ticks != c.ask_spread_ticks:
            step = self.rules.price_step
            d = abs(c.ask_spread_ticks - c.bid_spread_ticks)
            d = -(-d // step) * step
            up = c.ask_spread_ticks > c.bid_spread_ticks
        view = self.view
        pipe = Pipeline(
            book,
            self.engine,
            self.gate,
            self.planner,
            orders=self.orders,
            intents=self.intents.pending,
            calls=self.busy,
            room=budget.snapshot if isinstance(budget, BudgetView) else None,
            in_flight=view.in_flight if view is not None else None,
            reference=c.reference_price,
            widen_ticks=d,
            widen_asks=up,
            ceiling=c.price_ceiling_ticks,
            floor=c.price_floor_ticks,
            fill_delay_s=c.filled_order_delay_s,
            min_notional=self.rules.min_notional,
        )
        pipe.running = self.running
        pipe.last_fill_ns = self.last_fill_ns
        pipe.last_trade_ref = self.reference_price() if c.reference_price == "last_trade" else 0
        self.pipe = pipe
        # Nothing to do before the step (order messages reach our orders through the
        # tracker as they come): a compiled listener may run it on the frame's bytes and call
        # after_frame.
        fast = (pipe, self.after_frame)
        self._attached = view is not None and view.attach_step(self.on_frame, fast)
        self._sender = view.direct_sender() if view is not None else None
        pipe.attach_sender(self._sender)

    def on_frame(self, data: bytes, now_ns: int) -> int:
        """A book frame of this market from the stream: the compiled step, then its actions
        sent. Returns the book's code (the stream's readiness and pulls follow it)."""
        code: int = self.pipe.on_frame(data, now_ns)
        self.after_frame(code, now_ns)
        return code

    def warm(self) -> bool:
        """Between frames (``[run] busy_poll``'s idle time): the compiled step reruns its
        reading half on its last inputs and its signer warms, acting on nothing
        (``Pipeline.warm``), so the next frame finds them in cache. False: nothing to warm (the
        Python path, or inputs moved since the last step)."""
        pipe = self.pipe
        return pipe is not None and bool(pipe.warm(self.time.monotonic_ns()))

    def after_frame(self, code: int, now_ns: int) -> None:
        """After the compiled step ran on a frame (here or in a compiled listener): its
        actions sent (the first one may have gone already), errors logged, modify waits."""
        pipe = self.pipe
        if pipe.n_out:
            try:
                self._send_step(now_ns)
            except Exception:
                _log.exception("%s: sending the step's actions failed", self.name)
        elif pipe.errors != self._step_errors:
            self._step_errors = pipe.errors
            _log.error("%s: compiled step failed: %r", self.name, pipe.last_error)
        if self.intents.expire(now_ns):
            self._touch()  # waits that ran out: the venue's values stand again

    def _send_step(self, trigger_ns: int) -> None:
        """Send the step's actions in order: admitted creates and modifies through order
        entry, denials journaled, cancels (never gated) sent; nothing more once a guard holds
        (a kill switch tripped by one of them)."""
        pipe = self.pipe
        cancel, modify = ActionKind.CANCEL, ActionKind.MODIFY
        d = pipe.direct_i
        if d >= 0:
            # The step signed and sent this one itself: order entry books it first (its nonce
            # was taken for it), or takes the nonce back when signing failed.
            self._book_direct(d)
            if pipe.direct_info is None:
                d = -1  # sent the normal way below
        for i in range(pipe.n_out):
            kind, side, level, price, size, order, reason, _urgent, instead = pipe.action(i)
            if kind is cancel:
                if instead:
                    if i != d and self.why_not_quote():
                        continue
                    self.counts["modify_to_cancel"] += 1
                self.cancel(order, sent=i == d)
            elif i != d and self.why_not_quote():
                continue
            elif kind is modify:
                if reason:
                    self._denied_modify(order, price, size, reason)
                else:
                    self._modify_admitted(order, price, size, trigger_ns, sent=i == d)
            elif reason:
                self._denied_place(side, price, size, False, reason, f"L{level}")
            else:
                self._place_admitted(side, price, size, trigger_ns=trigger_ns, tag=f"L{level}")

    def _book_direct(self, i: int) -> None:
        pipe = self.pipe
        kind, _side, _level, price, size, order, _r, _u, _i = pipe.action(i)
        self._sender.sent(
            int(kind),
            order.client_order_index,
            price,
            size,
            pipe.direct_nonce,
            pipe.direct_expired_at,
            pipe.direct_info,
            pipe.direct_hash,
            pipe.direct_sent,
            pipe.t_signed - pipe.t_ready,
        )

    def on_fill(self, fill: Fill) -> None:
        super().on_fill(fill)
        if self.pipe is not None:
            self.pipe.last_fill_ns = self.last_fill_ns

    def _params(self) -> QuoteParams:
        c = self.config
        assert self.gate is not None
        cap = self.gate.limits.max_position_lots
        a = c.avellaneda_stoikov
        common = dict(
            n_levels=c.levels,
            level_spacing_ticks=c.level_spread_ticks,
            size_lots=c.order_amount_lots,
            size_step_lots=c.amount_step_lots,
            target_position_lots=c.inventory_target_lots,
            max_long_lots=cap,
            max_short_lots=cap,
            min_spread_ticks=c.min_spread_ticks,
        )
        if c.mode == "avellaneda_stoikov":
            return QuoteParams(
                mode=MODE_AS,
                gamma=a.gamma,
                sigma=self.sigma,
                tau=a.tau_s,
                kappa=self.kappa,
                **common,
            )
        # Fixed: the engine takes one spread; the wider side is widened after compute.
        return QuoteParams(
            mode=MODE_FIXED,
            spread_ticks=min(c.bid_spread_ticks, c.ask_spread_ticks),
            skew_ticks=c.inventory_skew_ticks,
            **common,
        )

    # ------------------------------------------------------------------ estimators
    def _feed_estimators(self, now_ns: int) -> None:
        book = self.book
        if book is None or not book.in_sync():
            return
        m2 = book.mid_x2()
        self.vol.update(m2, now_ns)
        view = self.view
        trades = view.trades if view is not None else None
        if trades:
            new = []
            for t in reversed(trades):
                tid = t.get("trade_id")
                if tid == self._last_trade_id:
                    break
                new.append(t)
            if new:
                self._last_trade_id = new[0].get("trade_id")
                for t in reversed(new):
                    try:
                        price = book.parse_price(str(t["price"]))
                    except (KeyError, ValueError):
                        continue
                    self.last_trade_ticks = price
                    self.arrivals.update(price, m2, now_ns)

    def _update_model(self) -> None:
        """A-S: swap in the estimates once each has ``min_samples``."""
        c = self.config
        if c.mode != "avellaneda_stoikov" or self.engine is None:
            return
        a = c.avellaneda_stoikov
        sigma = self.vol.sigma if self.vol.samples >= a.min_samples else a.sigma
        kappa = self.arrivals.kappa if self.arrivals.samples >= a.min_samples else a.kappa
        kappa = min(max(kappa, 1e-9), 1e9)
        if not (math.isfinite(sigma) and math.isfinite(kappa)):
            return
        if (
            abs(sigma - self.sigma) > 0.01 * max(self.sigma, 1e-9)
            or abs(kappa - self.kappa) > 0.01 * self.kappa
        ):
            self.sigma, self.kappa = sigma, kappa
            # An estimate the engine refuses (non-finite spread): keep the last parameters.
            with contextlib.suppress(ValueError):
                self.engine.set_params(self._params())
                self._touch()  # a new ladder: the compiled step must not skip

    # ------------------------------------------------------------------ target
    def reference_price(self) -> int:
        """The ladder's center in ticks; 0 = the engine's exact mid."""
        ref = self.config.reference_price
        book = self.book
        if ref == "microprice" and book is not None:
            mp = book.microprice()
            return round(mp) if math.isfinite(mp) and mp > 0 else 0
        if ref == "last_trade":
            stats = self.view.stats if self.view is not None else None
            last = self.last_trade_ticks or (stats.last_trade_price_ticks if stats else 0)
            return max(0, int(last))
        return 0

    def target(self) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """The target ladder (bids, asks) from the compiled engine plus the config's
        asymmetric spread and price band."""
        engine = self.engine
        book = self.book
        if engine is None or book is None or not self.may_add_exposure():
            return [], []  # no quotes in a reduce-only market: the planner cancels ours
        n = engine.compute_from_book(book, self.position_lots, self.reference_price())
        if n == 0:
            return [], []
        bids, asks = engine.bids(), engine.asks()
        c = self.config
        if c.mode == "fixed" and c.bid_spread_ticks != c.ask_spread_ticks:
            bids, asks = self._widen(bids, asks)
        if c.price_ceiling_ticks:
            bids = [lv for lv in bids if lv[0] <= c.price_ceiling_ticks]
        if c.price_floor_ticks:
            asks = [lv for lv in asks if lv[0] >= c.price_floor_ticks]
        return bids, asks

    def _widen(
        self, bids: list[tuple[int, int]], asks: list[tuple[int, int]]
    ) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """Move the wider side out by the spread difference (only ever away from the book, so
        post-only and the minimum spread still hold); drop levels under the venue minimum."""
        c = self.config
        assert self.rules is not None
        step = self.rules.price_step
        d = abs(c.ask_spread_ticks - c.bid_spread_ticks)
        d = -(-d // step) * step
        mn = self.rules.min_notional
        if c.ask_spread_ticks > c.bid_spread_ticks:
            asks = [(p + d, s) for p, s in asks]
        else:
            bids = [(p - d, s) for p, s in bids if p - d > 0 and notional_at_least(p - d, s, mn)]
        return bids, asks

    # ------------------------------------------------------------------ reactions
    def book_changed(self, book: Any, now_ns: int) -> None:
        pipe = self.pipe
        if (
            (pipe is None or pipe.book is not book)
            and self.config.compiled_step
            and self.engine is not None
        ):
            if pipe is not None and self._attached and self.view is not None:
                self.view.attach_step(None)  # another book object: a step over that one
                self._attached = False
            self.pipe = None
            self._build_pipe(book)
            pipe = self.pipe
        if pipe is not None and self._attached and pipe.seen_messages == book.messages:
            return  # the compiled step planned on this frame already
        self.requote_now(now_ns)

    async def tick(self, now_ns: int) -> None:
        self._feed_estimators(now_ns)
        self._update_model()
        pipe = self.pipe
        if pipe is not None:
            pipe.running = self.running
            self._drain_stages()
        self.request_requote(now_ns)

    def _drain_stages(self) -> None:
        """The compiled step's stage stamps into the latency statistics: step entry -> target
        quoted ("book>quote"), -> planned ("quote>plan"), -> gated ("plan>gate")."""
        pipe = self.pipe
        add = self.latency.add
        for entry, quoted, planned, gated in pipe.drain_stages():
            add("book>quote", quoted - entry)
            add("quote>plan", planned - quoted)
            add("plan>gate", gated - planned)
        self.requotes = pipe.steps

    def requote(self, trigger_ns: int) -> None:
        pipe = self.pipe
        if pipe is None:
            self.requote_python(trigger_ns)
            return
        pipe.running = self.running
        if self.config.reference_price == "last_trade":
            pipe.last_trade_ref = self.reference_price()
        if pipe.requote(self.time.monotonic_ns(), trigger_ns):
            self._send_step(trigger_ns)

    def requote_python(self, trigger_ns: int) -> None:
        """The Python path of a requote pass: quote, plan, gate per order call."""
        if self.why_not_quote():
            return
        t0 = self.time.monotonic_ns()
        bids, asks = self.target()
        tq = self.time.monotonic_ns()
        if trigger_ns:
            self.latency.add("book>quote", tq - trigger_ns)
        self.last_target = (bids, asks)
        self.requotes += 1
        no_create: tuple[Side, ...] = ()
        delay = self.config.filled_order_delay_s
        if delay > 0 and self.last_fill_ns and t0 - self.last_fill_ns < delay * 1e9:
            no_create = (Side.BUY, Side.SELL)
        live: list[Order] = list(self.orders.values())
        plan = plan_requotes(
            bids,
            asks,
            live,
            now_ns=t0,
            params=self.planner,
            inflight=self.inflight_txs(),
            budget=self.budget(),
            position_lots=self.position_lots,
            busy=self.busy_cois(),
            no_create=no_create,
            intents=self.intents.pending,
        )
        self.execute(plan, trigger_ns, quote_ns=tq)

    def status(self) -> dict[str, Any]:
        pipe = self.pipe
        if pipe is not None:
            self._drain_stages()
        st = super().status()
        bids, asks = self.last_target if pipe is None else pipe.target()
        st["target"] = {"bids": bids, "asks": asks}
        if pipe is not None:
            st["step"] = {
                "frames": pipe.frames,
                "planned": pipe.steps,
                "skipped": pipe.skipped,
                "errors": pipe.errors,
                "on_stream": self._attached,
            }
        if self.config.mode == "avellaneda_stoikov":
            st["model"] = {
                "sigma": round(self.sigma, 4),
                "kappa": round(self.kappa, 4),
                "sigma_samples": self.vol.samples,
                "kappa_samples": self.arrivals.samples,
            }
        return st
