"""``StrategyBase``: what every mmfast strategy shares.

- **Lifecycle** (the ``Strategy`` protocol): ``start(core)``, ``stop()``, ``async on_tick(now_ms)``.
- **Event hooks**: ``on_book(book, now_ns)``, ``on_order_update(order)``, ``on_fill(fill)``,
  ``on_position(position)``, ``on_pull(reason)``. ``start`` subscribes them to the core's bus
  (``BookUpdated`` of this market, ``OrderUpdated``, ``FillReceived``, ``PositionUpdated``,
  ``PullQuotes``, ``ConnectorState``): this is the one place book events reach a strategy (the
  core does not forward them), so nothing is delivered twice.
- **Order entry through the risk gate**: ``place``/``modify`` call the compiled gate's ``admit``
  (``mmfast._core.gate.GateCore``; its Python twin is ``mmfast.reference.gate``) before the
  connector signs anything; ``cancel`` is never gated (it only reduces risk).
- **Guards**: no new order while the connector is not ready, the book is out of sync, the market
  is inactive or reduce-only (the gate's reasons), or the kill switch is tripped.
- **Kill switch**: pause = cancel all of the market's orders, keep running, resume (requote)
  when it clears; stop = cancel all and ask the runner to exit (``on_stop_request``).
- **Requotes run in the event's callback**: a book update of this market requotes at once,
  inside the WebSocket frame callback that applied it (book -> quote -> plan -> gate -> order
  call -> signer queue, no task switch on the way). Order calls are synchronous (they queue a
  tx and return), so a pass never suspends. Other triggers (orders, fills, ticks, readiness)
  ``request_requote``, which runs one pass on the next loop iteration; requests arriving
  meanwhile, or during a pass (an order event the pass itself caused), fold into one more pass.
- **Order truth**: the connector's order tracker owns our orders (the shared ``Order`` objects:
  status, fills, price and size as the venue shows them); the strategy never writes into them.
  What it asked for and the venue has not shown yet is its own: ``intents``
  (``mmfast.strategy.intents.ModifyIntents``), which the planners and the gate read beside the
  orders (a pending modify's values, until the venue shows it or its wait runs out).
- **Market view**: what the strategy reads of its market (book, metadata, stats, trades,
  readiness, user stats, rate budget, in-flight txs) comes from one
  ``MarketView`` (``mmfast.core.market_view``), taken from the connector at ``start``
  (``view_of``) or passed in (``view=``); no ``getattr`` on the connector.
- **Latency**: each stage is stamped (book received -> quote computed -> sent -> acked -> open,
  fill -> requote) into a ``LatencyStats`` (``mmfast.core.latency``).

Structured events go to a ``Journal`` (``mmfast.core.interfaces``; ``NullJournal`` without one).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from collections.abc import Callable
from fractions import Fraction
from typing import TYPE_CHECKING, Any, Final

from mmfast._core.gate import GateCore
from mmfast.core.events import (
    BookUpdated,
    ConnectorState,
    FillReceived,
    OrderUpdated,
    PositionUpdated,
    PullQuotes,
)
from mmfast.core.interfaces import Journal, NullJournal, OrderConnector
from mmfast.core.latency import LatencyStats
from mmfast.core.log import get_logger
from mmfast.core.market_view import MarketView, view_of
from mmfast.core.timesource import REAL_TIME, TimeSource
from mmfast.core.types import Fill, Order, OrderStatus, Position, Side, TimeInForce
from mmfast.core.units import format_units
from mmfast.risk.killswitch import (
    KillAction,
    KillState,
    KillSwitch,
    KillSwitchLimits,
    TripReason,
    total_pnl_micro,
)
from mmfast.risk.limits import (
    MarginState,
    MarketRules,
    MarketState,
    RiskLimits,
    RiskReason,
)
from mmfast.strategy.intents import ModifyIntents
from mmfast.strategy.planner import UNLIMITED, ActionKind, BudgetView, Plan, RateBudget

if TYPE_CHECKING:
    from mmfast.conf.schema import RiskConfig
    from mmfast.core.trading_core import TradingCore

__all__ = ["StrategyBase", "rules_from_market_info"]

_log = get_logger("strategy")

_CANCEL_TIMEOUT_S: Final = 5.0
_MAX_PASSES: Final = 4  # requote passes run back to back before yielding to the loop
_PLACED_KEEP: Final = 100_000  # orders remembered after they end (late fills still match)
# A finished order's filled lots count as exposure until their fill arrives, at most this long
# (TimeSource ns): a fill message lost for good must not shrink the room forever.
_UNREPORTED_NS: Final = 5_000_000_000
# A `market` journal record (prices, our quotes, position, PnL) per this much TimeSource time,
# written from the tick: the price path the run report needs, never per book frame.
MARKET_RECORD_NS: Final = 250_000_000
# The venue's position and our fills disagreeing this long (TimeSource ns) with no news: the
# venue is right (a fill lost for good, a trade of the account's not made by this bot).
_POSITION_GRACE_NS: Final = 3_000_000_000


def _already_sent(*args: Any) -> None:
    """The connector call of a tx a compiled step signed and sent itself (nothing left)."""


def rules_from_market_info(info: Any) -> MarketRules:
    """``MarketRules`` from the connector's ``MarketInfo`` (venue minimums in engine units)."""
    pd, sd = info.price_decimals, info.size_decimals
    # micro-USDC -> tick x lot units, rounded up so an order passing here passes at the venue.
    scale = 10 ** (pd + sd)
    min_notional = -((-info.min_quote_micro * scale) // 1_000_000)
    return MarketRules(
        market=info.market_id,
        price_decimals=pd,
        size_decimals=sd,
        min_size_lots=max(1, info.min_base_lots),
        min_notional=min_notional,
        initial_margin_bps=max(1, min(10_000, info.default_imf_1e4 or 10_000)),
    )


class StrategyBase:
    """Base of mmfast strategies (see the module doc). One market per strategy instance.

    Collaborators are constructor arguments: the ``connector`` (``OrderConnector``: order calls),
    the market's ``view`` (``MarketView``; default: ``view_of(connector, market)`` at start),
    the market ``rules`` (default: from the view's metadata), the risk
    config or a ready ``gate``/``kill`` pair, a ``journal``, a ``TimeSource`` and
    ``on_stop_request(reason)`` (the runner exits when the kill switch says stop).
    """

    name = "base"

    def __init__(
        self,
        market: int,
        connector: OrderConnector,
        *,
        risk: RiskConfig | None = None,
        rules: MarketRules | None = None,
        gate: GateCore | None = None,
        kill: KillSwitch | None = None,
        journal: Journal | None = None,
        time: TimeSource = REAL_TIME,
        order_expiry_s: int = 900,
        on_stop_request: Callable[[str], Any] | None = None,
        latency: LatencyStats | None = None,
        view: MarketView | None = None,
    ) -> None:
        if gate is None and risk is None:
            raise ValueError("a strategy needs a risk config or a GateCore")
        self.market = market  # the one market this instance trades
        self.connector = connector  # order entry
        self.view = view  # what this market looks like at the connector (set at start)
        self.risk_config = risk  # [risk] (gate and kill switch built at start when not given)
        self.rules = rules  # market order rules (from the view's metadata at start when None)
        self.gate = gate  # pre-trade gate, called before anything is signed
        self.kill = kill  # kill switch
        self.journal: Journal = journal or NullJournal()  # structured events
        self.time = time  # monotonic ns and wall ms (order expiry)
        self.order_expiry_s = order_expiry_s  # venue expiry of each order
        self.on_stop_request = on_stop_request  # called when the kill switch says stop
        self.latency = latency or LatencyStats()  # per-stage latency samples
        self.core: TradingCore | None = None
        self.book: Any = None  # the market's OrderBook (from BookUpdated or the connector)
        self.orders: dict[int, Order] = {}  # coi -> our non-terminal orders of this market
        # Lots an order shows filled before the trade stream's fill moved the position (the
        # streams are not ordered): still exposure. coi -> lots of fills received, and the
        # finished orders whose fills are still on their way (with when they finished).
        self._fill_lots: dict[int, int] = {}
        self._unreported: dict[int, tuple[Order, int]] = {}
        self.busy: set[int] = set()  # cois with a modify/cancel call in progress
        # The modifies the venue has not shown yet (the connector queues txs: an Order
        # changes when the venue's order stream says so, through the tracker).
        self.intents = ModifyIntents(now_ns=time.monotonic_ns)
        self.inflight = 0  # order txs of this market handed to the connector, not returned
        self.position = Position(market)  # fill-driven position, PnL and fees (micro-USDC)
        # Two views of the position, because the venue's trade and position streams are not
        # ordered: the venue's last size (its position message may come before or after a
        # fill's trade, and the tracker re-sends the last one with each fill for the PnL), and
        # ours, from the de-duplicated fills on top of the venue's size when they last agreed
        # (None until the venue's first message). ``position_lots`` is ours; the gate checks
        # each side against the worse of the two (``_recount``); a disagreement that outlives
        # ``_POSITION_GRACE_NS`` takes the venue's size.
        self.venue_position_lots: int | None = None
        self.fill_position_lots: int | None = None
        self._disagree: tuple[int, int] | None = None  # (venue size, since ns) while they differ
        self.position_rebases = 0
        self.funding_micro = 0  # funding received (> 0) or paid, micro-USDC
        self.fills = 0  # fills of ours
        self.filled_lots = 0  # lots filled
        self.counts: dict[str, int] = {
            "placed": 0,
            "modified": 0,
            "cancelled": 0,
            "rejected": 0,
            "denied": 0,
            "send_errors": 0,
            "cancel_alls": 0,
            "modify_to_cancel": 0,
        }
        self.running = False
        self.last_fill_ns = 0  # monotonic ns of the last fill
        self.last_trade_ticks = 0  # last trade price seen (market, not only ours)
        self._unsub: list[Callable[[], None]] = []
        self._bookkeeping_unsub: list[Callable[[], None]] = []  # order/fill/position bookkeeping
        self._requote_handle: asyncio.Handle | None = None  # a pass scheduled by request_requote
        self._requote_wanted = False
        self._requoting = False  # a pass is running (re-entry folds into one more pass)
        self._trigger_ns = 0  # receive stamp of the event behind the pending requote
        self._fill_trigger_ns = 0  # stamp of a fill awaiting its requote (fill>requote)
        self.placed: OrderedDict[int, Order] = OrderedDict()  # recent orders we placed
        self._ack_ns: dict[int, int] = {}  # coi -> when the connector returned it
        self._bg: set[asyncio.Task[Any]] = set()  # cancel-alls and other fire-and-forget work
        self._pulled = False  # quotes are off because of a pull / guard
        self._unclaimed: dict[int, list[Fill]] = {}  # fills for cois not yet returned by place
        self._budget: RateBudget = UNLIMITED  # the planner's view of the rate budget
        # The compiled step of a strategy that has one (``mmfast._core.pipeline.Pipeline``):
        # it reads ``orders`` in place, and ``_touch`` tells it they changed.
        self.pipe: Any = None
        # `market` records: one per this many ns (0: none), from the tick.
        self.market_record_ns = MARKET_RECORD_NS
        self._market_due = 0  # when the next one is due (monotonic ns)

    # ------------------------------------------------------------------ lifecycle
    def start(self, core: TradingCore) -> None:
        """Subscribe the hooks to the core's bus and build the gate/kill switch."""
        self.core = core
        view = self.view
        if view is None:
            view = self.view = view_of(self.connector, self.market)
        b = view.budget
        self._budget = UNLIMITED if b is None else BudgetView(b)
        if self.rules is None:
            info = view.info
            if info is None:
                raise ValueError(f"no metadata for market {self.market}")
            self.rules = rules_from_market_info(info)
        if self.gate is None:
            assert self.risk_config is not None
            self.gate = GateCore(RiskLimits.from_config(self.risk_config, self.rules), self.rules)
        if self.kill is None and self.risk_config is not None:
            self.kill = KillSwitch(
                KillSwitchLimits.from_config(self.risk_config.kill_switch),
                on_trip=self._on_kill_trip,
                on_resume=self._on_kill_resume,
                now_ns=self.time.monotonic_ns,
            )
        elif self.kill is not None:
            self.kill.set_hooks(self._on_kill_trip, self._on_kill_resume)
        if view.book is not None:
            self.book = view.book
        bus = core.bus
        for u in self._bookkeeping_unsub:  # a restart: the previous run's bookkeeping
            u()
        self._unsub = [
            bus.subscribe(BookUpdated, self._on_book_event),
            bus.subscribe(PullQuotes, self._on_pull_event),
            bus.subscribe(ConnectorState, self._on_connector_event),
        ]
        # Bookkeeping outlives stop(): the shutdown cancel-all's order states and any last
        # fill are journaled and counted (they come after the strategy stopped reacting).
        self._bookkeeping_unsub = [
            bus.subscribe(OrderUpdated, self._on_order_event),
            bus.subscribe(FillReceived, self._on_fill_event),
            bus.subscribe(PositionUpdated, self._on_position_event),
        ]
        self.running = True
        self._refresh_state()
        self.journal.write("strategy_started", strategy=self.name, market=self.market)

    async def stop(self) -> None:
        """Stop reacting; the core (or the runner) cancels the market's orders after this."""
        self.running = False
        for u in self._unsub:
            u()
        self._unsub.clear()
        if self._requote_handle is not None:
            self._requote_handle.cancel()
            self._requote_handle = None
        for t in list(self._bg):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(t, _CANCEL_TIMEOUT_S / self.time.scale)
        self.journal.write("strategy_stopped", strategy=self.name, market=self.market)

    async def on_tick(self, now_ms: int) -> None:
        """Periodic work: risk state, PnL and kill switch, then the strategy's ``tick``."""
        if not self.running:
            return
        now = self.time.monotonic_ns()
        view = self.view
        if view is not None and not view.loop_ran(now):
            return  # a stall: reported (not ready, quotes pulled); nothing from before it acts
        self._refresh_state()
        kill = self.kill
        mark = self.mark_price()
        pnl = self.pnl_micro(mark) if mark > 0 and self.rules is not None else None
        if kill is not None:
            if pnl is not None:
                kill.update_pnl(pnl, now)
            kill.evaluate(now)
        every = self.market_record_ns
        due = self._market_due
        # Due on a fixed schedule, a quarter period early at most: ticks of the record's own
        # period that run late by a varying lag still write one each, and faster ticks write
        # one per period on average; after a stall the schedule starts again from now.
        if every > 0 and now >= due - every // 4:
            self._market_due = due + every if now - due < every else now + every
            self.journal_market(mark, pnl)
        await self.tick(now)

    # ------------------------------------------------------------------ bus adapters
    def _on_book_event(self, ev: BookUpdated) -> None:
        if ev.market == self.market:
            self.on_book(ev.book, ev.ts_ns)

    def _on_order_event(self, ev: OrderUpdated) -> None:
        if ev.order.market == self.market:
            self.on_order_update(ev.order)

    def _on_fill_event(self, ev: FillReceived) -> None:
        if ev.fill.market == self.market:
            self.on_fill(ev.fill)

    def _on_position_event(self, ev: PositionUpdated) -> None:
        if ev.position.market == self.market:
            self.on_position(ev.position)

    def _on_pull_event(self, ev: PullQuotes) -> None:
        if ev.market is None or ev.market == self.market:
            self.on_pull(ev.reason)

    def _on_connector_event(self, ev: ConnectorState) -> None:
        self._refresh_state()
        self.journal.write("connector_state", ready=ev.ready, reason=ev.reason)
        if ev.ready:
            self.request_requote(ev.ts_ns)

    # ------------------------------------------------------------------ hooks
    def on_book(self, book: Any, now_ns: int) -> None:
        """A book update of this market (only while in sync and not crossed)."""
        self.book = book
        gate = self.gate
        if gate is not None:
            gate.book_in_sync = bool(book.in_sync())
            if not gate.mark_price:
                gate.mark_price = self._mid(book)
        self.book_changed(book, now_ns)

    def on_order_update(self, order: Order) -> None:
        """An order of this market changed state (the tracker's shared Order)."""
        coi = order.client_order_index
        known = coi in self.orders
        if not known and order.status.is_terminal:
            return
        self._touch()
        now = self.time.monotonic_ns()
        self.intents.order_update(order)
        if order.status is OrderStatus.OPEN and coi in self._ack_ns:
            self.latency.add("ack>open", now - self._ack_ns.pop(coi))
        if order.status.is_terminal:
            self.orders.pop(coi, None)
            self._ack_ns.pop(coi, None)
            if order.filled_lots > self._fill_lots.get(coi, 0):
                self._unreported[coi] = (order, now)
            else:
                self._fill_lots.pop(coi, None)
            if order.status is OrderStatus.REJECTED:
                self.counts["rejected"] += 1
                if self.kill is not None:
                    self.kill.on_order_result(True, now)
            elif order.status is OrderStatus.CANCELED:
                self.counts["cancelled"] += 1
        else:
            if not known:
                self.orders[coi] = order
                if self.kill is not None and order.status is not OrderStatus.PENDING_NEW:
                    self.kill.on_order_result(False, now)
        self._recount()
        self.journal.write(
            "order",
            coi=coi,
            side=order.side.name,
            price=order.price_ticks,
            size=order.size_lots,
            filled=order.filled_lots,
            status=order.status.name,
            reduce_only=order.reduce_only,
            reason=order.cancel_reason,
            px=self.px(order.price_ticks),
            qty=self.qty(order.size_lots),
            filled_qty=self.qty(order.filled_lots),
        )
        self.order_changed(order)

    def on_fill(self, fill: Fill) -> None:
        """A fill of ours in this market."""
        now = self.time.monotonic_ns()
        self.position.apply_fill(fill)
        self.fills += 1
        self.filled_lots += fill.size_lots
        self.last_fill_ns = now
        self._fill_trigger_ns = now
        if self.fill_position_lots is not None:
            self.fill_position_lots += fill.side.sign * fill.size_lots
            self._check_position(now)
        coi = fill.client_order_index
        if coi is not None and (coi in self.orders or coi in self._unreported):
            seen = self._fill_lots[coi] = self._fill_lots.get(coi, 0) + fill.size_lots
            got = self._unreported.get(coi)
            if got is not None and seen >= got[0].filled_lots:
                del self._unreported[coi]
                del self._fill_lots[coi]
        self._recount()
        if self.kill is not None:
            self.kill.on_fill(now)
        m2 = self._mid_x2()  # the mid as the bot saw it: the report's spread captured
        self.journal.write(
            "fill",
            trade_id=fill.trade_id,
            coi=fill.client_order_index,
            side=fill.side.name,
            price=fill.price_ticks,
            size=fill.size_lots,
            fee=fill.fee,
            maker=fill.is_maker,
            position=self.position_lots,
            px=self.px(fill.price_ticks),
            qty=self.qty(fill.size_lots),
            position_qty=self.qty(self.position_lots),
            mid=_half(m2),
            mid_px=self.px_x2(m2),
        )
        if coi is not None and coi not in self.placed:
            # Not ours yet (place_limit has not returned): replayed when it does.
            self._unclaimed.setdefault(coi, []).append(fill)
            return
        self.filled(fill)
        self.request_requote(now)

    def on_position(self, position: Position) -> None:
        """The venue's position (its size wins over our fills' when they stay apart)."""
        v = position.size_lots
        self.venue_position_lots = v
        if self.fill_position_lots is None:
            self.fill_position_lots = v
        # Funding is on the venue's books only (not a fill): received counts as PnL.
        self.funding_micro = -position.funding_paid
        self._check_position(self.time.monotonic_ns())
        self._recount()

    def _check_position(self, now: int) -> None:
        """Track how long the venue's size and ours have differed; past the grace, rebase
        ours on the venue's (journaled)."""
        v = self.venue_position_lots
        f = self.fill_position_lots
        if v is None or f is None or v == f:
            self._disagree = None
            return
        d = self._disagree
        if d is None or d[0] != v:
            self._disagree = (v, now)  # news from the venue: the grace starts again
            return
        if now - d[1] >= _POSITION_GRACE_NS:
            _log.warning(
                "position: the venue's %s and our fills' %s have differed for %.1f s;"
                " taking the venue's",
                self.qty(v),
                self.qty(f),
                (now - d[1]) / 1e9,
            )
            self.journal.write(
                "position_rebase", venue=v, fills=f, venue_qty=self.qty(v), fills_qty=self.qty(f)
            )
            self.fill_position_lots = v
            self.position_rebases += 1
            self._disagree = None

    def on_pull(self, reason: str) -> None:
        """Quotes must come off (stale/crossed book, stream down, halt, skew...)."""
        self.journal.write("pull_quotes", reason=reason)
        self._refresh_state()
        if self.orders:
            self.cancel_all_soon(f"pull: {reason}")

    # --- for subclasses -----------------------------------------------------------------
    def book_changed(self, book: Any, now_ns: int) -> None:
        """React to a book update; default: requote now, in the frame's callback."""
        self.requote_now(now_ns)

    def order_changed(self, order: Order) -> None:
        """After an order's state changed (bookkeeping done)."""

    def filled(self, fill: Fill) -> None:
        """After a fill was booked (position, counters, kill switch)."""

    def order_placed(self, order: Order, tag: str) -> None:
        """After ``place`` got the order back from the connector (before replayed fills)."""

    async def tick(self, now_ns: int) -> None:
        """Periodic work; default: requote (max order age, cleared guards)."""
        self.request_requote(now_ns)

    def requote(self, trigger_ns: int) -> None:
        """Bring the orders to the target (synchronous: order calls only queue txs); called
        by ``requote_now``, never re-entered."""

    # ------------------------------------------------------------------ state
    @property
    def position_lots(self) -> int:
        """Inventory: our fills on the venue's size (see ``fill_position_lots``), before the
        venue's first position message the fill-driven one."""
        f = self.fill_position_lots
        return self.position.size_lots if f is None else f

    def _mid_x2(self) -> int:
        """bid + ask of the book in ticks while it is in sync, else 0."""
        book = self.book
        if book is None or not book.in_sync():
            return 0
        try:
            return int(book.mid_x2())
        except Exception:
            return 0

    def journal_market(self, mark: int, pnl_micro: Fraction | None = None) -> None:
        """One `market` record: the book's top and mid, the mark, our best quote and quoted
        lots per side, position and PnL (docs/run.md). From the tick, a few times a second,
        with the PnL at ``mark`` the tick computed already (computed here when not given)."""
        book = self.book
        top: dict[str, Any] = {"in_sync": False}
        if book is not None and book.in_sync():
            bid, ask = book.best_bid(), book.best_ask()
            m2 = self._mid_x2()
            top = {
                "in_sync": True,
                "bid": bid or None,
                "ask": ask or None,
                "bid_size": book.best_bid_size(),
                "ask_size": book.best_ask_size(),
                "mid": _half(m2),
                "bid_px": self.px(bid) if bid else None,
                "ask_px": self.px(ask) if ask else None,
                "mid_px": self.px_x2(m2),
            }
        bids, asks = self.live_quotes()
        pnl = None
        if pnl_micro is None and self.rules is not None and mark > 0:
            pnl_micro = self.pnl_micro(mark)
        if pnl_micro is not None:
            pnl = round(float(pnl_micro) / 1e6, 6)
        self.journal.write(
            "market",
            **top,
            mark=mark or None,
            mark_px=self.px(mark) if mark else None,
            our_bid=bids[0][0] if bids else None,
            our_bid_size=bids[0][1] if bids else 0,
            our_bid_lots=sum(s for _, s in bids),
            our_bids=len(bids),
            our_ask=asks[0][0] if asks else None,
            our_ask_size=asks[0][1] if asks else 0,
            our_ask_lots=sum(s for _, s in asks),
            our_asks=len(asks),
            position=self.position_lots,
            position_qty=self.qty(self.position_lots),
            pnl_usdc=pnl,
            fees_usdc=self.position.fees_paid / 1e6,
        )

    def _mid(self, book: Any) -> int:
        try:
            m2 = book.mid_x2()
        except Exception:
            return 0
        return m2 // 2 if m2 > 0 else 0

    def mark_price(self) -> int:
        """Mark price (ticks): the venue's market_stats when present, else the book mid."""
        view = self.view
        if view is not None:
            s = view.stats
            if s is not None and s.mark_price_ticks > 0:
                return int(s.mark_price_ticks)
        return self._mid(self.book) if self.book is not None else 0

    def pnl_micro(self, mark: int | None = None) -> Fraction:
        """Total PnL at the mark (realized + unrealized - fees + funding), micro-USDC."""
        assert self.rules is not None
        m = self.mark_price() if mark is None else mark
        return total_pnl_micro(
            self.position,
            m,
            self.rules.price_decimals,
            self.rules.size_decimals,
            self.funding_micro,
        )

    def _refresh_state(self) -> None:
        """Copy the connector's readiness, market status, mark and margin into the gate."""
        gate = self.gate
        view = self.view
        if gate is None or view is None:
            return
        gate.connector_ready = bool(view.ready)
        if self.book is not None:
            gate.book_in_sync = bool(self.book.in_sync())
        info = view.info
        if info is not None:
            if info.status != "active":
                gate.market_state = MarketState.INACTIVE
            elif info.force_reduce_only:
                gate.market_state = MarketState.REDUCE_ONLY
            else:
                gate.market_state = MarketState.ACTIVE
        mark = self.mark_price()
        if mark > 0:
            gate.mark_price = mark
        us = view.user_stats
        if us:
            with contextlib.suppress(KeyError, ValueError, TypeError):
                m = MarginState.from_user_stats(us)
                gate.set_margin(m.available_balance, m.portfolio_value)
        gate.kill_switch_tripped = self.kill is not None and self.kill.tripped
        self._check_position(self.time.monotonic_ns())
        self._recount()

    def _touch(self) -> None:
        """Our orders (or what the plan reads of them) changed: a compiled step must plan
        again rather than skip."""
        p = self.pipe
        if p is not None:
            p.version += 1

    def _recount(self) -> None:
        gate = self.gate
        if gate is None:
            return
        seen = self._fill_lots
        # Filled per the order stream, not yet per a fill: the position lacks them and the
        # order's remaining no longer holds them.
        if self._unreported:
            old = self.time.monotonic_ns() - _UNREPORTED_NS
            for coi in [c for c, (_, t) in self._unreported.items() if t < old]:
                del self._unreported[coi]  # the venue's position has them by now
                seen.pop(coi, None)
        lots = [0, 0]  # bids, asks
        for orders in (self.orders.values(), (o for o, _ in self._unreported.values())):
            for o in orders:
                gap = o.filled_lots - seen.get(o.client_order_index, 0)
                if gap > 0 and not o.reduce_only:
                    lots[o.side is not Side.BUY] += gap
        # Where the venue's size and ours differ, each side is checked against the worse of
        # the two: the gap is room taken on that side.
        pos = self.position_lots
        gate.position_lots = pos
        v = self.venue_position_lots
        if v is not None and v != pos:
            lots[v < pos] += abs(v - pos)
        gate.unreported_bid_lots, gate.unreported_ask_lots = lots
        gate.set_orders(self.orders.values(), self.intents.pending, self.time.monotonic_ns())

    def why_not_quote(self) -> RiskReason:
        """Why no new order may go out now, ``RiskReason.OK`` (falsy) when they may: guards
        only (running and connector ready, book in sync, kill switch armed, market not
        inactive). ``if self.why_not_quote(): return`` skips a pass while blocked."""
        if not self.running:
            return RiskReason.NOT_READY
        gate = self.gate
        assert gate is not None
        if not gate.connector_ready:
            return RiskReason.NOT_READY
        if not gate.book_in_sync:
            return RiskReason.BOOK_OUT_OF_SYNC
        if self.kill is not None and self.kill.tripped:
            return RiskReason.KILL_SWITCH
        if gate.market_state == MarketState.INACTIVE:
            return RiskReason.MARKET_INACTIVE
        return RiskReason.OK

    def busy_cois(self) -> set[int]:
        """Orders not to act on now: a call in progress or a modify the venue has not shown
        (expired after a few seconds, so a lost update does not freeze an order)."""
        return self.intents.busy_cois(self.busy)

    def inflight_txs(self) -> int:
        """Order txs of this market in flight: the connector's count when it has one."""
        n = self.inflight
        view = self.view
        if view is not None:
            c = view.in_flight()
            if c > n:
                return c
        return n

    def may_add_exposure(self) -> bool:
        """False while the market takes reduce-only orders only (or none): no new quotes or
        entries then; take-profits (reduce-only) still go."""
        return self.gate is None or self.gate.market_state == MarketState.ACTIVE

    def budget(self) -> RateBudget:
        """The planner's view of the connector's rate budget (unlimited without one; built at
        start from the market view)."""
        return self._budget

    # ------------------------------------------------------------------ requote scheduling
    def request_requote(self, trigger_ns: int) -> None:
        """Ask for a requote pass on the next loop iteration (coalesced: one pass however many
        requests come before it). For triggers raised inside the connector's own bookkeeping
        (order and fill events), where acting at once would re-enter it."""
        if not self.running:
            return
        self._requote_wanted = True
        if not self._trigger_ns:
            self._trigger_ns = trigger_ns
        if self._requote_handle is None and not self._requoting:
            self._requote_handle = asyncio.get_running_loop().call_soon(self._scheduled_pass)

    def _scheduled_pass(self) -> None:
        self._requote_handle = None
        if self._requote_wanted:
            self.requote_now(0)

    def requote_now(self, trigger_ns: int) -> None:
        """Run requote passes now until no more are wanted (at most ``_MAX_PASSES``; the rest
        goes to the next loop iteration). A call during a pass folds into one more pass."""
        if not self.running:
            return
        self._requote_wanted = True
        if trigger_ns and not self._trigger_ns:
            self._trigger_ns = trigger_ns
        if self._requoting:
            return
        self._requoting = True
        try:
            passes = 0
            while self._requote_wanted and self.running and passes < _MAX_PASSES:
                passes += 1
                self._requote_wanted = False
                trigger = self._trigger_ns or self.time.monotonic_ns()
                self._trigger_ns = 0
                if self._fill_trigger_ns:
                    self.latency.add(
                        "fill>requote", self.time.monotonic_ns() - self._fill_trigger_ns
                    )
                    self._fill_trigger_ns = 0
                try:
                    if self.intents.expire(self.time.monotonic_ns()):
                        self._touch()  # waits that ran out: the venue's values stand again
                    self.requote(trigger)
                except Exception:
                    _log.exception("%s: requote failed", self.name)
        finally:
            self._requoting = False
        if self._requote_wanted and self.running:
            self._requote_wanted = False
            self.request_requote(0)

    # ------------------------------------------------------------------ order entry
    def expiry_ms(self) -> int:
        """Venue expiry of an order placed now (wall-clock epoch ms)."""
        return self.time.wall_ms() + self.order_expiry_s * 1000

    def place(
        self,
        side: Side,
        price: int,
        size: int,
        *,
        reduce_only: bool = False,
        tif: TimeInForce = TimeInForce.POST_ONLY,
        trigger_ns: int = 0,
        tag: str = "",
    ) -> Order | None:
        """Gate, then place a limit order; the Order (PENDING_NEW) or None when denied/failed."""
        if self.why_not_quote():
            return None
        gate = self.gate
        assert gate is not None
        reason = gate.admit(
            side, price, size, reduce_only=reduce_only, now_ns=self.time.monotonic_ns()
        )
        if reason:
            self._denied_place(side, price, size, reduce_only, reason, tag)
            return None
        return self._place_admitted(
            side, price, size, reduce_only=reduce_only, tif=tif, trigger_ns=trigger_ns, tag=tag
        )

    def _denied_place(
        self, side: Side, price: int, size: int, reduce_only: bool, reason: RiskReason, tag: str
    ) -> None:
        self.counts["denied"] += 1
        self.journal.write(
            "denied",
            side=side.name,
            price=price,
            size=size,
            reduce_only=reduce_only,
            reason=reason.name,
            tag=tag,
            px=self.px(price),
            qty=self.qty(size),
        )

    def _place_admitted(
        self,
        side: Side,
        price: int,
        size: int,
        *,
        reduce_only: bool = False,
        tif: TimeInForce = TimeInForce.POST_ONLY,
        trigger_ns: int = 0,
        tag: str = "",
    ) -> Order | None:
        """``place`` after the gate admitted it: the connector call and the bookkeeping."""
        now = self.time.monotonic_ns()
        if trigger_ns:
            self.latency.add("book>send", now - trigger_ns)
        if self.kill is not None:
            self.kill.on_order_sent(1, now)
        self.inflight += 1
        try:
            order = self.connector.place_limit(
                self.market,
                side,
                price,
                size,
                tif=tif,
                reduce_only=reduce_only,
                expiry_ms=0 if tif is TimeInForce.IOC else self.expiry_ms(),
            )
        except Exception as exc:
            self.counts["send_errors"] += 1
            self.journal.write(
                "send_error",
                op="place",
                side=side.name,
                price=price,
                size=size,
                error=_why(exc),
                px=self.px(price),
                qty=self.qty(size),
            )
            _log.warning("%s: place failed: %s", self.name, _why(exc))
            return None
        finally:
            self.inflight -= 1
            self._touch()
        done = self.time.monotonic_ns()
        self.latency.add("send>ack", done - now)
        self.counts["placed"] += 1
        coi = order.client_order_index
        if not order.created_ns:
            order.created_ns = now  # the planner ages orders from here
        self.placed[coi] = order
        if len(self.placed) > _PLACED_KEEP:
            self.placed.popitem(last=False)
        if not order.status.is_terminal:
            self.orders.setdefault(coi, order)
            if order.status is OrderStatus.PENDING_NEW:
                self._ack_ns[coi] = done
        self._recount()
        self.journal.write(
            "order_sent",
            coi=coi,
            side=side.name,
            price=price,
            size=size,
            reduce_only=reduce_only,
            tif=tif.name,
            tag=tag,
            px=self.px(price),
            qty=self.qty(size),
        )
        self.order_placed(order, tag)
        for f in self._unclaimed.pop(coi, ()):
            self.filled(f)
        return order

    def modify(self, order: Order, price: int, size: int, trigger_ns: int = 0) -> bool:
        """Gate, then modify ``order`` to ``price`` with ``size`` lots left on the book."""
        if self.why_not_quote():
            return False
        gate = self.gate
        assert gate is not None
        reason = gate.admit(
            order.side,
            price,
            size,
            reduce_only=order.reduce_only,
            is_modify=True,
            now_ns=self.time.monotonic_ns(),
        )
        if reason:
            self._denied_modify(order, price, size, reason)
            away = (
                price < order.price_ticks if order.side is Side.BUY else price > order.price_ticks
            )
            if (
                reason is RiskReason.MAX_POSITION
                and away
                and order.client_order_index not in self.busy
            ):
                # Near the limit a modify is refused (the old remaining may fill before it
                # lands). Left where it is the order would now be more aggressive than the
                # target: take it off; the planner places the level again once the cancel is
                # done and it fits. (An order the target moved away from rests where it is.)
                # The compiled step applies the same rule (mmfast._core.pipeline).
                self.counts["modify_to_cancel"] += 1
                self.cancel(order)
            return False
        return self._modify_admitted(order, price, size, trigger_ns)

    def _denied_modify(self, order: Order, price: int, size: int, reason: RiskReason) -> None:
        self.counts["denied"] += 1
        self.journal.write(
            "denied",
            op="modify",
            coi=order.client_order_index,
            price=price,
            size=size,
            reason=reason.name,
            px=self.px(price),
            qty=self.qty(size),
        )

    def _modify_admitted(
        self, order: Order, price: int, size: int, trigger_ns: int = 0, *, sent: bool = False
    ) -> bool:
        """``modify`` after the gate admitted it: the connector call and the bookkeeping
        (``sent``: a compiled step signed and sent it already, order entry has booked it)."""
        coi = order.client_order_index
        now = self.time.monotonic_ns()
        if trigger_ns:
            self.latency.add("book>send", now - trigger_ns)
        call = _already_sent if sent else self.connector.modify
        if not self._send_on(order, "modify", call, order, price, size):
            return False
        self.counts["modified"] += 1
        # The order is the venue's until it shows the modify; what was asked is the intent.
        self.intents.expect(order, price, size, now)
        self.journal.write(
            "order_modify", coi=coi, price=price, size=size, px=self.px(price), qty=self.qty(size)
        )
        return True

    def px_x2(self, ticks_x2: int) -> str | None:
        """Twice a price in ticks (a mid) as a human price, exact (one more decimal); None
        for 0 (no price)."""
        r = self.rules
        if r is None or ticks_x2 <= 0:
            return None
        return format_units(ticks_x2 * 5, r.price_decimals + 1)

    def px(self, ticks: int) -> str:
        """A price in ticks as the venue prints it (the journal's human units beside ticks)."""
        r = self.rules
        return format_units(ticks, r.price_decimals) if r is not None else ""

    def qty(self, lots: int) -> str:
        """A size in lots as the venue prints it."""
        r = self.rules
        return format_units(lots, r.size_decimals) if r is not None else ""

    def _send_on(self, order: Order, op: str, call: Callable[..., Any], *args: Any) -> bool:
        """Run one connector call on a live order: counted against the kill switch's order
        rate, the order marked busy and in flight meanwhile; False on a send error."""
        coi = order.client_order_index
        if self.kill is not None:
            self.kill.on_order_sent(1)
        self.busy.add(coi)
        self.inflight += 1
        try:
            call(*args)
        except Exception as exc:
            self.counts["send_errors"] += 1
            self.journal.write("send_error", op=op, coi=coi, error=_why(exc))
            return False
        finally:
            self.inflight -= 1
            self.busy.discard(coi)
            self._touch()
        return True

    def cancel(self, order: Order, *, sent: bool = False) -> bool:
        """Cancel ``order`` (never gated; ``sent``: a compiled step sent it already)."""
        coi = order.client_order_index
        call = _already_sent if sent else self.connector.cancel
        if not self._send_on(order, "cancel", call, order):
            return False
        self.journal.write("order_cancel", coi=coi)
        return True

    async def cancel_all(self, reason: str) -> int:
        """Cancel every order of ours in this market; orders still open (0 = all gone)."""
        self.counts["cancel_alls"] += 1
        self.journal.write("cancel_all", market=self.market, reason=reason)
        try:
            left = await self.connector.cancel_all(self.market, _CANCEL_TIMEOUT_S)
        except Exception as exc:
            self.journal.write("send_error", op="cancel_all", error=_why(exc))
            _log.error("%s: cancel_all failed: %s", self.name, _why(exc))
            return -1
        self.journal.write("cancel_all_done", market=self.market, left=left)
        return left

    def cancel_all_soon(self, reason: str) -> None:
        """``cancel_all`` in the background (from a synchronous hook)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        t = loop.create_task(self.cancel_all(reason))
        self._bg.add(t)
        t.add_done_callback(self._bg.discard)

    def execute(self, plan: Plan, trigger_ns: int = 0, *, quote_ns: int = 0) -> None:
        """Send a plan's actions in order (each a synchronous order call: the first is on the
        signer queue before the second is gated)."""
        if not plan.actions:
            return
        if quote_ns:
            self.latency.add("quote>send", self.time.monotonic_ns() - quote_ns)
        create, modify = ActionKind.CREATE, ActionKind.MODIFY
        for a in plan.actions:
            if a.kind is modify:
                assert a.order is not None
                self.modify(a.order, a.price_ticks, a.size_lots, trigger_ns)
            elif a.kind is create:
                self.place(
                    a.side, a.price_ticks, a.size_lots, trigger_ns=trigger_ns, tag=f"L{a.level}"
                )
            else:
                assert a.order is not None
                self.cancel(a.order)

    # ------------------------------------------------------------------ kill switch
    def _on_kill_trip(self, action: KillAction, reason: TripReason) -> None:
        assert self.kill is not None
        self._refresh_state()
        self.journal.write(
            "kill_switch",
            state=self.kill.state.value,
            action=action.value,
            reason=reason.value,
            drawdown_micro=float(self.kill.drawdown),
        )
        _log.warning("%s: kill switch %s (%s)", self.name, action.value, reason.value)
        self.cancel_all_soon(f"kill switch: {reason.value}")
        if action is KillAction.STOP and self.on_stop_request is not None:
            self.on_stop_request(f"kill switch: {reason.value}")

    def _on_kill_resume(self, reason: TripReason) -> None:
        self._refresh_state()
        self.journal.write(
            "kill_switch", state=KillState.ARMED.value, action="resume", reason=reason.value
        )
        _log.warning("%s: kill switch cleared (%s): resuming", self.name, reason.value)
        self.request_requote(self.time.monotonic_ns())

    # ------------------------------------------------------------------ status
    def live_quotes(self) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """Our non-terminal orders as (price, remaining) per side, best first."""
        bids = sorted(
            ((o.price_ticks, o.remaining_lots) for o in self.orders.values() if o.side is Side.BUY),
            reverse=True,
        )
        asks = sorted(
            (o.price_ticks, o.remaining_lots) for o in self.orders.values() if o.side is Side.SELL
        )
        return bids, asks

    def status(self) -> dict[str, Any]:
        bids, asks = self.live_quotes()
        book = self.book
        top = None
        if book is not None and book.in_sync():
            top = {
                "bid": book.best_bid(),
                "bid_size": book.best_bid_size(),
                "ask": book.best_ask(),
                "ask_size": book.best_ask_size(),
            }
        pnl = None
        if self.rules is not None and self.mark_price() > 0:
            pnl = float(self.pnl_micro()) / 1e6
        gate = self.gate
        return {
            "strategy": self.name,
            "market": self.market,
            "book": top,
            "bids": bids,
            "asks": asks,
            "position_lots": self.position_lots,
            "pnl_usdc": pnl,
            "fees_usdc": self.position.fees_paid / 1e6,
            "fills": self.fills,
            "filled_lots": self.filled_lots,
            "orders_open": len(self.orders),
            "inflight": self.inflight,
            "counts": dict(self.counts),
            "denials": {} if gate is None else {r.name: n for r, n in gate.denials.items()},
            "kill_switch": None if self.kill is None else self.kill.status(),
            "guard": self.why_not_quote().name,
            "latency": self.latency.summary(),
        }


def _half(ticks_x2: int) -> int | float | None:
    """A mid from twice its value: an int when whole, else the half tick; None for 0."""
    if ticks_x2 <= 0:
        return None
    return ticks_x2 // 2 if ticks_x2 % 2 == 0 else ticks_x2 / 2


def _why(exc: BaseException) -> str:
    """An order call's failure for the journal and the log: its type and message (order entry
    and the connector say why: not ready and its reason, a venue code...)."""
    msg = str(exc)
    return f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__
