"""Strategies against a recording fake connector: hooks, risk gate before the connector,
guards, kill switch pause/resume/stop, market making ladders, trend-ladder take-profits."""

from __future__ import annotations

import asyncio
import itertools
import logging
from fractions import Fraction
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mmfast._core.book import OrderBook
from mmfast._core.clock import Clock
from mmfast.conf import parse_config
from mmfast.core.events import (
    BookUpdated,
    EventBus,
    FillReceived,
    OrderUpdated,
    PositionUpdated,
    PullQuotes,
)
from mmfast.core.types import Fill, Order, OrderStatus, Position, Side, TimeInForce
from mmfast.risk import KillState, MarketRules, RiskReason
from mmfast.strategy import (
    ArrivalIntensity,
    MarketMaking,
    TrendLadder,
    VolatilityEstimator,
    allocate_tp_sizes,
)

RULES = MarketRules(market=0, price_decimals=2, size_decimals=4, min_size_lots=50, min_notional=0)


class FakeConnector:
    """Records every call; orders go PENDING_NEW and the test moves them."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.ready = True
        self.cois = itertools.count(1)
        self.orders: dict[int, Order] = {}
        self.cancel_all_left = 0
        self.modified: list[tuple[Order, int, int]] = []

    async def start(self, core: Any) -> None: ...

    async def stop(self, core: Any) -> None: ...

    def place_limit(
        self,
        market: int,
        side: Side,
        price_ticks: int,
        size_lots: int,
        *,
        tif: TimeInForce,
        reduce_only: bool = False,
        expiry_ms: int = 0,
    ) -> Order:
        coi = next(self.cois)
        o = Order(
            coi,
            market,
            side,
            price_ticks,
            size_lots,
            tif=tif,
            reduce_only=reduce_only,
            expiry_ms=expiry_ms,
        )
        self.orders[coi] = o
        self.calls.append(("place", side, price_ticks, size_lots, reduce_only, tif))
        return o

    def modify(self, order: Order, price_ticks: int, size_lots: int) -> None:
        self.calls.append(("modify", order.client_order_index, price_ticks, size_lots))
        self.modified.append((order, price_ticks, size_lots))

    def apply_modifies(self, bus: EventBus) -> None:
        """The venue executes the queued modifies and the account stream shows them."""
        for order, price, size in self.modified:
            order.price_ticks = price
            order.size_lots = order.filled_lots + size
            bus.publish(OrderUpdated(order, 0))
        self.modified.clear()

    def cancel(self, order: Order) -> None:
        self.calls.append(("cancel", order.client_order_index))

    async def cancel_all(self, market: int, timeout: float) -> int:
        self.calls.append(("cancel_all", market))
        return self.cancel_all_left


def make_book(bid: int = 300_000, ask: int = 300_010) -> OrderBook:
    b = OrderBook(0, 2, 4)
    b.apply_snapshot(
        [{"price": f"{ask / 100:.2f}", "size": "1.0000"}],
        [{"price": f"{bid / 100:.2f}", "size": "1.0000"}],
        1,
    )
    return b


def config(extra: str = "") -> Any:
    return parse_config(f"""
[market]
market_id = 0
[strategy.market_making]
bid_spread_ticks = 10
ask_spread_ticks = 20
levels = 2
level_spread_ticks = 5
order_amount_lots = 100
refresh_tolerance_ticks = 0
[strategy.trend_ladder]
ema_fast_periods = 2
ema_slow_periods = 4
levels = 2
step_ticks = 10
size_lots = 100
take_profit_ticks = 30
tp_max_retries = 2
[risk]
max_position_lots = 1000
max_order_notional_usdc = 100000
require_margin_stats = false
[risk.kill_switch]
max_drawdown_usdc = 100.0
max_fills_per_min = 5
pause_cooldown_s = 0.0
{extra}
""")


class Harness:
    def __init__(self, cls: type, extra: str = "") -> None:
        self.cfg = config(extra)
        self.conn = FakeConnector()
        self.bus = EventBus()
        self.clock = Clock(100, manual=True)
        self.core = SimpleNamespace(bus=self.bus, clock=self.clock)
        self.journal: list[tuple[str, dict[str, Any]]] = []
        self.stops: list[str] = []
        section = (
            self.cfg.strategy.market_making
            if cls is MarketMaking
            else self.cfg.strategy.trend_ladder
        )
        self.s = cls(
            0,
            self.conn,
            section,
            risk=self.cfg.risk,
            rules=RULES,
            journal=SimpleNamespace(write=lambda k, **f: self.journal.append((k, f))),
            on_stop_request=self.stops.append,
        )
        self.book = make_book()

    def start(self) -> None:
        self.s.start(self.core)

    async def book_event(self, book: OrderBook | None = None) -> None:
        if book is not None:
            self.book = book
        self.bus.publish(BookUpdated(0, self.book, 1))
        await self.settle()

    async def settle(self) -> None:
        for _ in range(20):
            await asyncio.sleep(0)
            self.conn.apply_modifies(self.bus)

    def open_all(self) -> None:
        for o in self.conn.orders.values():
            if o.status is OrderStatus.PENDING_NEW:
                o.status = OrderStatus.OPEN
                self.bus.publish(OrderUpdated(o, 0))

    def fill(self, coi: int, size: int, trade_id: int) -> None:
        o = self.conn.orders[coi]
        o.filled_lots += size
        self.bus.publish(
            FillReceived(Fill(trade_id, 0, o.side, o.price_ticks, size, 0, True, coi, None, 0))
        )
        o.status = (
            OrderStatus.FILLED if o.filled_lots >= o.size_lots else OrderStatus.PARTIALLY_FILLED
        )
        self.bus.publish(OrderUpdated(o, 0))

    def places(self) -> list[tuple[Any, ...]]:
        return [c for c in self.conn.calls if c[0] == "place"]


def run(coro: Any) -> Any:
    return asyncio.run(coro)


# ------------------------------------------------------------------ market making
def test_mm_quotes_ladder_on_book_event_through_engine() -> None:
    async def go() -> None:
        h = Harness(MarketMaking)
        h.start()
        await h.book_event()
        places = h.places()
        # mid 300005: bids 300005-10, then -5; asks +10 widened by 10 (ask spread 20), +5.
        bids = sorted(((p, s) for _, side, p, s, _, _ in places if side is Side.BUY), reverse=True)
        asks = sorted((p, s) for _, side, p, s, _, _ in places if side is Side.SELL)
        assert bids == [(299_995, 100), (299_990, 100)]
        assert asks == [(300_025, 100), (300_030, 100)]
        assert all(c[5] is TimeInForce.POST_ONLY and not c[4] for c in places)
        # Same book again, orders open: nothing new (planner keeps everything).
        h.open_all()
        n = len(h.conn.calls)
        await h.book_event()
        assert len(h.conn.calls) == n
        # Book moves up 20 ticks: modifies, not cancel + create.
        await h.book_event(make_book(300_020, 300_030))
        new = h.conn.calls[n:]
        assert new and all(c[0] == "modify" for c in new)

    run(go())


def test_book_event_reaches_the_connector_inside_the_callback() -> None:
    """Book -> quote -> plan -> gate -> order call happens in the publish itself: no task,
    no loop iteration between the frame and the order calls."""

    async def go() -> None:
        h = Harness(MarketMaking)
        h.start()
        h.bus.publish(BookUpdated(0, h.book, 1))  # no await after this
        assert len(h.places()) == 4
        h.open_all()
        h.conn.calls.clear()
        h.bus.publish(BookUpdated(0, make_book(300_020, 300_030), 1))
        assert [c[0] for c in h.conn.calls] == ["modify"] * 4
        assert h.s.latency.percentiles("book>send")[0] > 0

    run(go())


def test_order_events_during_a_pass_fold_into_one_more_pass() -> None:
    """The connector publishing an order event while the strategy is inside a pass (as the
    tracker does on new orders) must not re-enter requote: one more pass runs afterwards."""

    async def go() -> None:
        h = Harness(MarketMaking)
        h.start()
        depth = {"now": 0, "max": 0, "passes": 0}
        real = h.s.requote

        def counted(trigger_ns: int) -> None:
            depth["now"] += 1
            depth["passes"] += 1
            depth["max"] = max(depth["max"], depth["now"])
            try:
                real(trigger_ns)
                h.s.requote_now(0)  # an event inside the pass asks for another
            finally:
                depth["now"] -= 1

        h.s.requote = counted  # type: ignore[method-assign]
        h.bus.publish(BookUpdated(0, h.book, 1))
        assert depth["max"] == 1  # never nested
        # It keeps asking: 4 passes back to back, then the rest waits for the loop.
        assert depth["passes"] == 4
        await asyncio.sleep(0)
        assert depth["passes"] == 8
        await h.s.stop()  # a scheduled pass is dropped on stop
        n = depth["passes"]
        await asyncio.sleep(0)
        assert depth["passes"] == n

    run(go())


def test_mm_one_modify_per_order_until_the_venue_shows_it() -> None:
    async def go() -> None:
        h = Harness(MarketMaking)
        h.start()
        await h.book_event()
        h.open_all()
        h.settle = _no_venue  # type: ignore[method-assign]  # the venue is slow now
        n = len(h.conn.calls)
        for i in range(5):  # five book moves while the modifies are queued
            await h.book_event(make_book(300_020 + 10 * i, 300_030 + 10 * i))
        mods = [c for c in h.conn.calls[n:] if c[0] == "modify"]
        assert len(mods) == 4  # one per order, not one per book event
        assert h.s.busy_cois() == {c[1] for c in mods}
        h.conn.apply_modifies(h.bus)  # the venue shows them: free to move again
        assert h.s.busy_cois() == set()
        await h.book_event(make_book(300_100, 300_110))
        await _no_venue()
        assert len([c for c in h.conn.calls[n:] if c[0] == "modify"]) == 8

    run(go())


def test_a_modify_is_an_intent_until_the_tracker_shows_it() -> None:
    """The strategy never writes into the tracker's Order: a modify is kept as an intent,
    which the planner reads (no second modify or create for that level while it waits) and
    which ends when the order shows it, or runs out (the venue's values stand and the planner
    moves the order again)."""

    async def go() -> None:
        h = Harness(MarketMaking)
        h.start()
        await h.book_event()
        h.open_all()
        h.settle = _no_venue  # type: ignore[method-assign]  # the venue is slow now
        before = {c: (o.price_ticks, o.size_lots) for c, o in h.conn.orders.items()}
        n = len(h.conn.calls)
        await h.book_event(make_book(300_020, 300_030))
        mods = [c for c in h.conn.calls[n:] if c[0] == "modify"]
        assert mods and not [c for c in h.conn.calls[n:] if c[0] == "place"]
        for _, coi, price, size in mods:
            o = h.conn.orders[coi]
            assert (o.price_ticks, o.size_lots) == before[coi]  # untouched
            assert h.s.intents.expected(o) == (price, size)
        # The same book again: the intents stand in for the orders, nothing more is sent.
        n = len(h.conn.calls)
        await h.book_event(make_book(300_020, 300_030))
        assert h.conn.calls[n:] == []
        # The venue shows one; the others' waits run out unseen: those are moved again.
        shown = h.conn.modified.pop(0)
        h.conn.modified.clear()
        h.conn.modified.append(shown)
        h.conn.apply_modifies(h.bus)
        assert shown[0].client_order_index not in h.s.intents.pending
        for coi, (price, size, _) in list(h.s.intents.pending.items()):
            h.s.intents.pending[coi] = (price, size, 0)  # the wait is over
        n = len(h.conn.calls)
        await h.book_event(make_book(300_020, 300_030))
        again = {c[1] for c in h.conn.calls[n:] if c[0] == "modify"}
        assert again == {c[1] for c in mods} - {shown[0].client_order_index}

    run(go())


async def _no_venue() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


def test_mm_guards_no_quotes_when_not_ready_or_out_of_sync() -> None:
    async def go() -> None:
        h = Harness(MarketMaking)
        h.conn.ready = False
        h.start()
        await h.book_event()
        assert h.places() == []
        h.conn.ready = True
        book = make_book()
        book.invalidate()
        h.s.on_tick  # noqa: B018 - the tick refreshes the state below
        await h.s.on_tick(0)
        await h.book_event(book)
        assert h.places() == []
        assert h.s.why_not_quote() is RiskReason.BOOK_OUT_OF_SYNC
        await h.book_event(make_book())
        assert len(h.places()) == 4

    run(go())


def test_mm_risk_gate_denies_before_connector() -> None:
    async def go() -> None:
        h = Harness(MarketMaking, "")
        h.start()
        # Mark far away: every order is outside the price band -> denied, none sent.
        h.s.gate.mark_price = 100_000
        h.s.mark_price = lambda: 100_000  # type: ignore[method-assign]
        await h.book_event()
        assert h.places() == []
        assert h.s.gate.denials.get(RiskReason.PRICE_BAND, 0) >= 4
        assert any(k == "denied" for k, _ in h.journal)

    run(go())


def test_mm_modify_denied_at_the_position_limit_cancels_the_order() -> None:
    """Long 750 of 1000 with two bids of 100 resting: moving a bid would leave 750 + 200 + 100
    lots of worst-case exposure (the old remaining may fill before the modify lands), so the
    modify is refused. When the market falls the old bids are too aggressive: cancelled.
    When it rises they rest where they are (behind the target, no risk added)."""

    async def go() -> None:
        h = Harness(MarketMaking)
        h.start()
        await h.book_event()
        h.open_all()
        h.bus.publish(PositionUpdated(Position(0, 750), 0))
        assert h.s.gate.position_lots == 750
        buys = {o.client_order_index for o in h.conn.orders.values() if o.side is Side.BUY}

        def bid_calls() -> list[tuple[Any, ...]]:
            return [c for c in h.conn.calls if c[0] in ("modify", "cancel") and c[1] in buys]

        h.conn.calls.clear()
        await h.book_event(make_book(300_020, 300_030))  # up: bids would move up
        assert bid_calls() == [] and h.s.counts["modify_to_cancel"] == 0
        assert h.s.gate.denials.get(RiskReason.MAX_POSITION, 0) >= 1
        # The ask side reduces the position: its modifies go through.
        assert any(c[0] == "modify" and c[1] not in buys for c in h.conn.calls)
        h.conn.apply_modifies(h.bus)
        h.conn.calls.clear()
        await h.book_event(make_book(299_960, 299_970))  # down: the old bids are too high
        assert bid_calls() and all(c[0] == "cancel" for c in bid_calls())
        assert h.s.counts["modify_to_cancel"] == len(bid_calls())

    run(go())


def test_fill_counts_in_the_position_until_the_venue_position_shows_it() -> None:
    """A fill takes its lots off the open order at once; the position (and the gate's) must
    include it before the venue's position message does, or exposure looks smaller than it
    is in between."""

    async def go() -> None:
        h = Harness(MarketMaking)
        h.start()
        await h.book_event()
        h.open_all()
        h.bus.publish(PositionUpdated(Position(0, 200), 0))
        assert h.s.position_lots == 200
        h.bus.publish(FillReceived(Fill(7, 0, Side.BUY, 300_000, 100, 0, True, 1, None, 0)))
        assert h.s.position_lots == 300 and h.s.gate.position_lots == 300
        h.bus.publish(FillReceived(Fill(8, 0, Side.SELL, 300_010, 30, 0, True, 2, None, 0)))
        assert h.s.position_lots == 270
        h.bus.publish(PositionUpdated(Position(0, 270), 0))  # the venue shows both
        assert h.s.position_lots == 270 and h.s.venue_position_lots == 270
        assert (h.s.gate.unreported_bid_lots, h.s.gate.unreported_ask_lots) == (0, 0)

    run(go())


class _Time:
    """A TimeSource whose monotonic clock the test moves."""

    scale = 1.0

    def __init__(self) -> None:
        self.ns = 1_000_000_000

    def monotonic_ns(self) -> int:
        return self.ns

    def wall_ms(self) -> int:
        return 1_790_000_000_000 + self.ns // 1_000_000


def _room(h: Harness) -> tuple[int, int]:
    """(bid lots, ask lots) the gate would still let out at the cap of 1000 (0 where none):
    probed with the gate's own check."""
    g = h.s.gate
    out = []
    for side, price in ((Side.BUY, 300_000), (Side.SELL, 300_010)):
        room = 0
        for size in range(10, 2001, 10):
            if g.check(side, price, size) is RiskReason.MAX_POSITION:
                break
            room = size
        out.append(room)
    return out[0], out[1]


def test_a_fill_counts_through_the_trackers_republish_of_the_stale_venue_size() -> None:
    """The tracker re-sends the venue's last size with every fill (for the PnL): that stale
    size must not erase the fill from the position, or the gate sees less exposure than
    there is and lets the position past its cap (seen in runs: 310 lots on a 300 cap)."""

    async def go() -> None:
        h = Harness(MarketMaking)
        h.start()
        await h.book_event()
        h.open_all()
        h.bus.publish(PositionUpdated(Position(0, 200), 0))
        bid0, ask0 = _room(h)
        h.bus.publish(FillReceived(Fill(7, 0, Side.BUY, 300_000, 100, 0, True, 1, None, 0)))
        h.bus.publish(PositionUpdated(Position(0, 200), 0))  # the republish: still 200
        assert h.s.position_lots == 300 and h.s.gate.position_lots == 300
        # The bid side counts the fill; the ask side keeps to the venue's 200 until it agrees.
        assert _room(h) == (bid0 - 100, ask0)
        h.bus.publish(PositionUpdated(Position(0, 300), 0))  # the venue shows it
        assert h.s.position_lots == 300 and _room(h) == (bid0 - 100, ask0 + 100)
        assert not any(k == "position_rebase" for k, _ in h.journal)

    run(go())


def test_a_position_message_ahead_of_its_trade_counts_once_and_checks_both_views() -> None:
    """The venue's position may show a fill before its trade arrives: until then the bid side
    is checked against the venue's (larger) size, the ask side against ours; when the trade
    comes the two agree and the fill is not counted twice."""

    async def go() -> None:
        h = Harness(MarketMaking)
        h.start()
        await h.book_event()
        h.open_all()
        h.bus.publish(PositionUpdated(Position(0, 200), 0))
        bid0, ask0 = _room(h)
        h.bus.publish(PositionUpdated(Position(0, 300), 0))  # ahead of the fill's trade
        assert h.s.position_lots == 200
        assert _room(h) == (bid0 - 100, ask0)  # each side against the worse view
        h.bus.publish(FillReceived(Fill(7, 0, Side.BUY, 300_000, 100, 0, True, 1, None, 0)))
        assert h.s.position_lots == 300 and h.s.gate.position_lots == 300
        assert _room(h) == (bid0 - 100, ask0 + 100)

    run(go())


def test_a_lasting_disagreement_takes_the_venues_size_after_the_grace() -> None:
    """A venue size no fill explains (a trade lost for good, a trade not made by this bot)
    is taken after the grace, journaled; until then each side is checked against the worse
    of the two sizes."""

    async def go() -> None:
        h = Harness(MarketMaking)
        clock = _Time()
        h.s.time = clock  # type: ignore[assignment]
        h.start()
        await h.book_event()
        h.open_all()
        h.bus.publish(PositionUpdated(Position(0, 200), 0))
        h.bus.publish(PositionUpdated(Position(0, -50), 0))
        assert h.s.position_lots == 200
        clock.ns += 2_900_000_000
        await h.s.on_tick(0)
        assert h.s.position_lots == 200 and h.s.position_rebases == 0
        h.bus.publish(PositionUpdated(Position(0, -50), 0))  # the same size again: no news
        clock.ns += 200_000_000
        await h.s.on_tick(0)
        assert h.s.position_lots == -50 and h.s.gate.position_lots == -50
        assert h.s.position_rebases == 1
        recs = [f for k, f in h.journal if k == "position_rebase"]
        assert recs and recs[0]["venue"] == -50 and recs[0]["fills"] == 200
        assert (h.s.gate.unreported_bid_lots, h.s.gate.unreported_ask_lots) == (0, 0)

    run(go())


def test_mm_no_quotes_in_reduce_only_or_inactive_market() -> None:
    async def go() -> None:
        h = Harness(MarketMaking)
        info = SimpleNamespace(status="active", force_reduce_only=False)
        h.conn.markets = {0: info}  # type: ignore[attr-defined]
        h.start()
        await h.book_event()
        h.open_all()
        assert len(h.places()) == 4
        info.force_reduce_only = True
        await h.s.on_tick(0)
        await h.settle()
        cancels = [c for c in h.conn.calls if c[0] == "cancel"]
        assert len(cancels) == 4  # every quote pulled
        n = len(h.places())
        await h.book_event()
        assert len(h.places()) == n
        info.force_reduce_only, info.status = False, "inactive"
        await h.s.on_tick(0)
        assert h.s.why_not_quote() is RiskReason.MARKET_INACTIVE

    run(go())


def test_mm_pull_quotes_cancels_all() -> None:
    async def go() -> None:
        h = Harness(MarketMaking)
        h.start()
        await h.book_event()
        h.open_all()
        h.bus.publish(PullQuotes(0, "book nonce gap", 0))
        await h.settle()
        assert ("cancel_all", 0) in h.conn.calls

    run(go())


def test_kill_switch_pause_cancels_and_resumes_then_stop_requests_exit() -> None:
    async def go() -> None:
        h = Harness(MarketMaking)
        h.start()
        await h.book_event()
        h.open_all()
        cois = [c for c in h.conn.orders]
        # 6 fills within a minute > max_fills_per_min 5: pause.
        for i in range(6):
            h.fill(cois[i % len(cois)], 1, 100 + i)
        await h.settle()
        assert h.s.kill.state is KillState.PAUSED
        assert ("cancel_all", 0) in h.conn.calls
        n = len(h.places())
        await h.book_event()
        assert len(h.places()) == n  # paused: no new orders
        assert h.s.why_not_quote() is RiskReason.KILL_SWITCH
        # A minute later the fill window is clear (cooldown 0): resumes and quotes again.
        later = h.s.time.monotonic_ns() + 61_000_000_000
        h.s.kill.evaluate(later)
        assert h.s.kill.state is KillState.ARMED
        for o in h.conn.orders.values():
            if not o.is_terminal:
                o.status = OrderStatus.CANCELED
                h.bus.publish(OrderUpdated(o, 0))
        await h.book_event()
        assert len(h.places()) > n
        # Action stop: the runner is asked to exit.
        from mmfast.risk import KillAction, TripReason

        h.s.kill.trip(TripReason.MANUAL, KillAction.STOP)
        await h.settle()
        assert h.s.kill.state is KillState.STOPPED
        assert h.stops and "kill switch" in h.stops[0]

    run(go())


def test_kill_switch_drawdown_from_peak_with_fees_through_strategy_pnl() -> None:
    async def go() -> None:
        h = Harness(MarketMaking)  # max_drawdown_usdc = 100
        h.start()
        await h.book_event()
        h.open_all()
        marks = {"m": 300_000}
        h.s.mark_price = lambda: marks["m"]  # type: ignore[method-assign]
        # Long 10000 lots (1 ETH) at 2999.95 (1 tick x 1 lot = 1e-6 USDC), fee 5 USDC.
        h.bus.publish(
            FillReceived(Fill(1, 0, Side.BUY, 299_995, 10_000, 5_000_000, True, 1, None, 0))
        )
        await h.s.on_tick(0)
        assert h.s.kill.state is KillState.ARMED
        # Up 200 USDC: the peak moves up.
        marks["m"] = 320_000
        await h.s.on_tick(0)
        peak = h.s.kill.peak_pnl
        assert peak == (320_000 - 299_995) * 10_000 - 5_000_000  # +195 USDC, fees included
        # Down 150 USDC from the peak (still +45 USDC from the start): trips (drawdown from
        # the peak, not from the start).
        marks["m"] = 305_000
        await h.s.on_tick(0)
        await h.settle()
        assert h.s.kill.state is KillState.PAUSED
        assert h.s.kill.reason.value == "drawdown"
        assert ("cancel_all", 0) in h.conn.calls

    run(go())


def test_kill_switch_counts_funding_from_the_venue_position() -> None:
    async def go() -> None:
        h = Harness(MarketMaking)  # max_drawdown_usdc = 100
        h.start()
        await h.book_event()
        h.open_all()
        h.s.mark_price = lambda: 300_000  # type: ignore[method-assign]
        h.bus.publish(FillReceived(Fill(1, 0, Side.BUY, 300_000, 10_000, 0, True, 1, None, 0)))
        await h.s.on_tick(0)
        assert h.s.pnl_micro() == 0 and h.s.kill.state is KillState.ARMED
        # Funding received raises PnL (and the peak) with no fill and no price move.
        h.bus.publish(
            PositionUpdated(Position(0, 10_000, Fraction(300_000), funding_paid=-20_000_000), 0)
        )
        await h.s.on_tick(0)
        assert h.s.pnl_micro() == 20_000_000
        # Then 101 USDC paid out in total: 121 below the peak, over the 100 USDC limit.
        h.bus.publish(
            PositionUpdated(Position(0, 10_000, Fraction(300_000), funding_paid=101_000_000), 0)
        )
        await h.s.on_tick(0)
        await h.settle()
        assert h.s.pnl_micro() == -101_000_000
        assert h.s.kill.state is KillState.PAUSED and h.s.kill.reason.value == "drawdown"

    run(go())


def test_mm_avellaneda_stoikov_uses_estimates() -> None:
    async def go() -> None:
        h = Harness(MarketMaking, "")
        h.s.config = parse_config("""
[market]
market_id = 0
[strategy.market_making]
mode = "avellaneda_stoikov"
[strategy.market_making.avellaneda_stoikov]
gamma = 0.01
sigma = 2.0
kappa = 0.5
min_samples = 2
[risk]
max_position_lots = 1000
max_order_notional_usdc = 100000
[risk.kill_switch]
max_drawdown_usdc = 100.0
""").strategy.market_making
        h.start()
        assert h.s.engine.params.mode == 1
        for i, m in enumerate([300_000, 300_010, 299_990, 300_020]):
            h.s.vol.update(2 * m, i * 1_000_000_000)
        h.s._update_model()
        assert h.s.sigma == pytest.approx(h.s.vol.sigma)
        assert h.s.engine.params.sigma == pytest.approx(h.s.vol.sigma)

    run(go())


def test_estimators_recover_known_values() -> None:
    v = VolatilityEstimator(1e6)
    import random

    rng = random.Random(7)
    m = 2_000_000
    for i in range(5000):
        m += 2 * rng.choice((-3, 3))  # +-3 ticks per second
        v.update(m, i * 1_000_000_000)
    assert v.sigma == pytest.approx(3.0, rel=0.01)
    k = ArrivalIntensity(1e6)
    for i in range(20000):
        d = rng.expovariate(0.25)  # mean 4 ticks from the mid
        k.update(1000 + round(d), 2000, i * 10_000_000)
    assert k.kappa == pytest.approx(0.25, rel=0.1)
    assert k.rate(20000 * 10_000_000) == pytest.approx(100, rel=0.1)


# ------------------------------------------------------------------ trend ladder / TPs
@pytest.mark.parametrize(
    ("exposures", "current", "min_size", "sizes", "carried"),
    [
        ([100], [0], 50, [100], 0),
        ([30], [0], 50, [0], 30),  # below min: carried, never a size-0 TP
        ([30, 30], [0, 0], 50, [0, 60], 0),  # carried onto the next level
        ([100, 30], [100, 0], 50, [130, 0], 0),  # trailing carry onto the last TP
        ([150], [100], 50, [150], 0),  # modified up as fills arrive
        ([120, 20], [120, 0], 50, [140, 0], 0),
        ([10], [10], 50, [10], 0),  # a partly filled TP below min keeps its size
        ([40], [10], 50, [10], 30),  # cannot modify to 40 (< min): carry 30
        ([0, 100], [0, 0], 50, [0, 100], 0),
    ],
)
def test_tp_allocation_table(
    exposures: list[int], current: list[int], min_size: int, sizes: list[int], carried: int
) -> None:
    assert allocate_tp_sizes(exposures, current, min_size) == (sizes, carried)


@settings(derandomize=True, max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 500), st.integers(0, 500)), min_size=1, max_size=8),
    st.integers(1, 200),
)
def test_tp_allocation_invariant(pairs: list[tuple[int, int]], min_size: int) -> None:
    exposures = [e for e, _ in pairs]
    current = [min(c, e) for e, c in pairs]
    sizes, carried = allocate_tp_sizes(exposures, current, min_size)
    assert sum(sizes) == sum(exposures) - carried
    assert 0 <= carried < min_size
    assert all(s >= 0 for s in sizes)
    for s, c in zip(sizes, current, strict=True):
        assert s == c or s >= min_size or (s == 0 and c == 0)


def test_trend_ladder_entries_tps_partial_fills_and_crossing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # On the logger itself: an earlier test may have stopped mmfast's tree propagating.
    tp_log = logging.getLogger("mmfast.strategy.tp")
    tp_log.addHandler(caplog.handler)
    caplog.set_level(logging.INFO, logger="mmfast.strategy.tp")

    async def go() -> None:
        h = Harness(TrendLadder)
        h.start()
        h.s.forced_trend = 1
        await h.book_event()
        entries = h.places()
        assert [(c[1], c[2], c[3]) for c in entries] == [
            (Side.BUY, 299_999, 100),
            (Side.BUY, 299_989, 100),
        ]
        h.open_all()
        e1 = 1
        # Partial fill below the minimum size: no TP yet (a size-0 TP is never sent).
        h.fill(e1, 30, 1)
        await h.settle()
        assert [c for c in h.places() if c[4]] == []
        assert h.s.tp_invariant() == (0, 30, 30)
        # More fill: TP for the whole 60 at entry + 30, reduce-only post-only.
        h.fill(e1, 30, 2)
        await h.settle()
        tps = [c for c in h.places() if c[4]]
        assert tps == [("place", Side.SELL, 300_029, 60, True, TimeInForce.POST_ONLY)]
        h.open_all()
        tp1 = max(h.conn.orders)
        # The status lists the level with its TP; the logs give prices and sizes as the venue
        # prints them (2 price and 4 size decimals), not in ticks and lots.
        assert h.s.status()["tp_levels"] == [
            {
                "side": "BUY",
                "price": 299_999,
                "filled": 60,
                "exposure": 60,
                "tp_price": 300_029,
                "tp_lots": 60,
                "retries": 0,
                "gave_up": False,
            }
        ]
        logs = caplog.text
        assert (
            "tp submit intent: side=SELL size=0.0060 entry=2999.99 target=3000.29 "
            "post_only=True reduce_only=True bid=3000.00 ask=3000.10 retry=0"
        ) in logs
        assert f"tp placed: coi={tp1} side=SELL size=0.0060 price=3000.29 entry_coi=1" in logs
        # More fill: the TP is modified up, never a second TP for the same level.
        h.fill(e1, 40, 3)
        await h.settle()
        assert ("modify", tp1, 300_029, 100) in h.conn.calls
        assert h.s.tp_invariant() == (100, 100, 0)
        # TP partly fills: exposure and TP shrink together.
        h.fill(tp1, 50, 4)
        await h.settle()
        assert h.s.tp_invariant() == (50, 50, 0)
        # The TP is cancelled for crossing: re-placed at max(target, bid + 1).
        tp = h.conn.orders[tp1]
        await h.book_event(make_book(300_040, 300_050))
        tp.status, tp.cancel_reason = OrderStatus.CANCELED, "canceled-post-only"
        h.bus.publish(OrderUpdated(tp, 0))
        await h.settle()
        again = [c for c in h.places() if c[4]][-1]
        assert again[1:4] == (Side.SELL, 300_041, 50)
        assert h.s.tp_crossings == 1
        # Retries are capped (tp_max_retries = 2).
        for _ in range(3):
            h.open_all()
            last = max(h.conn.orders)
            o = h.conn.orders[last]
            o.status, o.cancel_reason = OrderStatus.CANCELED, "canceled-post-only"
            h.bus.publish(OrderUpdated(o, 0))
            await h.settle()
        assert len([c for c in h.places() if c[4]]) == 3  # first + 2 retries
        assert any(k == "tp_gave_up" for k, _ in h.journal)
        assert "after 2 retries (crossing), 0.0050 uncovered" in caplog.text
        assert h.s.status()["tp_levels"][0]["gave_up"] is True

    try:
        run(go())
    finally:
        tp_log.removeHandler(caplog.handler)


def test_trend_ladder_signal_from_emas() -> None:
    async def go() -> None:
        h = Harness(TrendLadder)
        h.start()
        for m in (1000, 1010, 1020, 1030, 1040):
            h.s.sample(float(m))
        assert h.s.trend == 1
        for m in (1000, 980, 960, 940, 920, 900):
            h.s.sample(float(m))
        assert h.s.trend == -1

    run(go())


def test_a_kill_switch_passed_in_gets_the_strategys_hooks() -> None:
    async def go() -> None:
        from mmfast.risk import KillAction, KillSwitch, KillSwitchLimits, TripReason

        h = Harness(MarketMaking)
        foreign: list[TripReason] = []
        ks = KillSwitch(KillSwitchLimits(max_drawdown=100), on_trip=lambda a, r: foreign.append(r))
        h.s.kill = ks
        h.start()
        await h.book_event()
        h.open_all()
        ks.trip(TripReason.MANUAL, KillAction.STOP)
        await h.settle()
        assert foreign == []  # replaced by the strategy's
        assert ("cancel_all", 0) in h.conn.calls and h.stops
        assert any(k == "kill_switch" for k, _ in h.journal)

    run(go())


def test_a_failed_order_call_says_why_in_the_journal() -> None:
    async def body() -> None:
        h = Harness(MarketMaking)
        from mmfast.connector.lighter.orders import OrderEntryError

        def refuse(*a: Any, **k: Any) -> Order:
            raise OrderEntryError("connector not ready: orders:nonce: nonce refresh pending")

        h.conn.place_limit = refuse  # type: ignore[method-assign]
        h.start()
        await h.book_event()
        errs = [f for k, f in h.journal if k == "send_error"]
        assert errs and errs[0]["error"] == (
            "OrderEntryError: connector not ready: orders:nonce: nonce refresh pending"
        )
        assert h.s.counts["send_errors"] == len(errs)

    asyncio.run(body())


def test_lots_an_order_shows_filled_stay_exposure_until_their_fill_arrives() -> None:
    """The order stream may say FILLED (or show a partial fill) before the trade stream's fill
    moves the position: the order's remaining no longer holds those lots and the position
    does not yet. The gate keeps counting them until the fill arrives (a trend-ladder run
    once reached 50 lots over its position limit, the likely way being that gap)."""

    async def go() -> None:
        h = Harness(MarketMaking)
        h.start()
        await h.book_event()
        h.open_all()
        g = h.s.gate

        def counted_beyond_orders() -> int:
            live = sum(
                o.remaining_lots
                for o in h.s.orders.values()
                if o.side is Side.BUY and not o.reduce_only
            )
            return int(g.open_bid_lots) - live

        buys = [o for o in h.conn.orders.values() if o.side is Side.BUY]
        a, b = buys[0], buys[1]
        assert counted_beyond_orders() == 0 and g.position_lots == 0
        a.filled_lots = a.size_lots  # the order stream first
        a.status = OrderStatus.FILLED
        h.bus.publish(OrderUpdated(a, 0))
        assert counted_beyond_orders() == a.size_lots and g.position_lots == 0
        b.filled_lots = 60  # a partial fill of another, also seen first on the order
        b.status = OrderStatus.PARTIALLY_FILLED
        h.bus.publish(OrderUpdated(b, 0))
        assert counted_beyond_orders() == a.size_lots + 60
        h.bus.publish(
            FillReceived(
                Fill(
                    1,
                    0,
                    Side.BUY,
                    a.price_ticks,
                    a.size_lots,
                    0,
                    True,
                    a.client_order_index,
                    None,
                    0,
                )
            )
        )
        assert g.position_lots == a.size_lots and counted_beyond_orders() == 60
        h.bus.publish(
            FillReceived(
                Fill(2, 0, Side.BUY, b.price_ticks, 60, 0, True, b.client_order_index, None, 0)
            )
        )
        assert g.position_lots == a.size_lots + 60 and counted_beyond_orders() == 0
        assert h.s._unreported == {} and a.client_order_index not in h.s._fill_lots

    run(go())


def test_every_order_the_strategies_place_is_post_only() -> None:
    """What a maker-only key may send (docs/strategies.md): both strategies place post-only
    orders only (entries, take-profits and their re-placements, quotes)."""

    async def go() -> list[tuple[Any, ...]]:
        calls: list[tuple[Any, ...]] = []
        for trend in (1, -1):
            h = Harness(TrendLadder)
            h.start()
            h.s.forced_trend = trend
            await h.book_event()
            h.open_all()
            h.fill(1, 100, 1)  # entry 1 fills: its TP
            await h.settle()
            h.open_all()
            tp = next(o for o in h.conn.orders.values() if o.reduce_only)
            # The book moves through the TP, which the venue cancels for crossing: re-placed.
            await h.book_event(
                make_book(300_040, 300_050) if trend > 0 else make_book(299_950, 299_960)
            )
            tp.status, tp.cancel_reason = OrderStatus.CANCELED, "canceled-post-only"
            h.bus.publish(OrderUpdated(tp, 0))
            await h.settle()
            calls += h.places()
            assert len([c for c in h.places() if c[4]]) == 2
        h = Harness(MarketMaking)
        h.start()
        await h.book_event()
        await h.book_event(make_book(299_000, 299_020))  # far away: new quotes
        calls += h.places()
        return calls

    calls = run(go())
    assert len(calls) >= 8
    assert {c[5] for c in calls} == {TimeInForce.POST_ONLY}


class _Ticks:
    """The strategy's time moved by the test (monotonic ns)."""

    scale = 1.0

    def __init__(self) -> None:
        self.ns = 1_000_000_000_000

    def monotonic_ns(self) -> int:
        return self.ns

    def wall_ms(self) -> int:
        return 1_790_000_000_000 + self.ns // 1_000_000


def test_market_records_from_the_tick_four_a_second() -> None:
    async def go() -> None:
        h = Harness(MarketMaking)
        t = _Ticks()
        h.s.time = t
        h.start()
        await h.book_event()  # bid 3000.00 x 1, ask 3000.10 x 1
        h.open_all()
        await h.settle()
        h.fill(1, 40, trade_id=1)  # part of our best bid: long 40 lots
        await h.settle()
        fill = next(f for k, f in h.journal if k == "fill")
        assert (fill["mid"], fill["mid_px"]) == (300_005, "3000.050")
        # 100 ms ticks for 3 s: one record per 250 ms on average (at 0, .2, .5, .7, 1.0 ...).
        written = []  # tick times (s) that wrote a record
        for i in range(30):
            n = sum(1 for k, _ in h.journal if k == "market")
            await h.s.on_tick(0)
            if sum(1 for k, _ in h.journal if k == "market") > n:
                written.append(i / 10)
            t.ns += 100_000_000
        assert written == pytest.approx([0, 0.2, 0.5, 0.7, 1, 1.2, 1.5, 1.7, 2, 2.2, 2.5, 2.7])
        r = [f for k, f in h.journal if k == "market"][-1]
        bids, asks = h.s.live_quotes()
        assert {
            k: r[k]
            for k in (
                "in_sync",
                "bid",
                "ask",
                "bid_size",
                "ask_size",
                "mid",
                "bid_px",
                "ask_px",
                "mid_px",
                "mark",
                "mark_px",
            )
        } == {
            "in_sync": True,
            "bid": 300_000,
            "ask": 300_010,
            "bid_size": 10_000,
            "ask_size": 10_000,
            "mid": 300_005,
            "bid_px": "3000.00",
            "ask_px": "3000.10",
            "mid_px": "3000.050",
            "mark": 300_005,
            "mark_px": "3000.05",
        }
        assert (r["our_bid"], r["our_bid_size"], r["our_bids"]) == (*bids[0], len(bids))
        assert r["our_bid_lots"] == sum(s for _, s in bids) and r["our_ask"] == asks[0][0]
        assert (r["position"], r["position_qty"]) == (40, "0.0040")
        # Long 40 lots bought at our best bid (no fee), marked at the mid.
        assert fill["price"] == 299_995
        assert r["pnl_usdc"] == pytest.approx((300_005 - 299_995) * 40 / 1e6)

    asyncio.run(go())


def test_market_records_one_per_tick_of_their_own_period_despite_lag() -> None:
    async def go() -> None:
        h = Harness(MarketMaking)
        t = _Ticks()
        h.s.time = t
        h.start()
        grid = t.ns
        lags_ms = [0, 40, 3, 55, 0, 12, 60, 1, 0, 30]  # ticks late by up to 60 ms
        for i, lag in enumerate(lags_ms):
            t.ns = grid + i * 250_000_000 + lag * 1_000_000
            await h.s.on_tick(0)
        assert sum(1 for k, _ in h.journal if k == "market") == len(lags_ms)
        # A 2 s stall: one record when it ends, then on schedule from there.
        t.ns += 2_000_000_000
        await h.s.on_tick(0)
        t.ns += 250_000_000
        await h.s.on_tick(0)
        assert sum(1 for k, _ in h.journal if k == "market") == len(lags_ms) + 2
        h.s.market_record_ns = 0  # off
        t.ns += 1_000_000_000
        await h.s.on_tick(0)
        assert sum(1 for k, _ in h.journal if k == "market") == len(lags_ms) + 2

    asyncio.run(go())
