"""``MarketView``: live reads from its sources, the fallback builder for plain connectors."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from mmfast.core.market_view import MarketView, view_of


class _Entry:
    def __init__(self) -> None:
        self.counts = {0: 2}
        self.pending_txs = 1

    def in_flight_of(self, market: int) -> int:
        return self.counts.get(market, 0)


def test_view_reads_its_sources_live() -> None:
    md = SimpleNamespace(markets={0: "info-1"}, stats={})
    readiness = SimpleNamespace(ready=False)
    account = SimpleNamespace(user_stats={})
    entry = _Entry()
    v = MarketView(
        0,
        book="book",
        market_data=md,
        trades=[1],
        readiness=readiness,
        account=account,
        entry=entry,
        budget="budget",
    )
    assert (v.book, v.info, v.stats, v.trades, v.ready) == ("book", "info-1", None, [1], False)
    md.markets[0] = "info-2"  # a metadata refresh replaces the market's info
    md.stats[0] = "stats"
    readiness.ready = True
    account.user_stats = {"collateral": "1"}
    assert (v.info, v.stats, v.ready) == ("info-2", "stats", True)
    assert v.user_stats == {"collateral": "1"}
    assert v.budget == "budget"
    assert v.in_flight() == 2
    entry.pending_txs = 5
    assert v.in_flight() == 5


def test_view_without_parts() -> None:
    v = MarketView(7)
    assert (v.book, v.info, v.stats, v.ready, v.budget) == (None, None, None, True, None)
    assert v.user_stats == {} and v.in_flight() == 0
    assert v.order_record(1) is None and v.venue_statuses() == {}
    assert not v.trades
    assert asyncio.run(v.active_orders()) is None


def test_view_of_uses_the_connectors_view() -> None:
    mine = MarketView(0)
    conn = SimpleNamespace(market_view=lambda m: mine)
    assert view_of(conn, 0) is mine


def test_view_of_a_plain_connector() -> None:
    conn = SimpleNamespace(books={0: "book"}, ready=True)
    v = view_of(conn, 0)
    assert v.book == "book" and v.info is None
    conn.ready = False  # read live
    conn.markets = {0: "info"}
    conn.user_stats = {"a": 1}
    assert (v.ready, v.info, v.user_stats) == (False, "info", {"a": 1})
    assert v.budget is None and v.in_flight() == 0  # no rate budget, no order counters


def test_view_of_active_orders_over_rest() -> None:
    class Rest:
        async def account_active_orders(self, account: int, market: int) -> list[dict[str, Any]]:
            return [{"account": account, "market": market}]

    conn = SimpleNamespace(rest=Rest(), config=SimpleNamespace(account_index=9))
    assert asyncio.run(view_of(conn, 3).active_orders()) == [{"account": 9, "market": 3}]


def test_our_orders_come_from_the_tracker() -> None:
    """The view reads our orders from order entry's tracker (the one owner of order truth):
    a record per client order index and the venue's statuses of the market's orders."""
    from mmfast.connector.lighter.tracker import OrderTracker
    from mmfast.core.events import EventBus
    from mmfast.core.types import Order, Side

    dec = SimpleNamespace(price_decimals=2, size_decimals=4)
    tracker = OrderTracker(EventBus(), {3: dec, 4: dec}, account_index=1)
    tracker.new_order(Order(11, 3, Side.BUY, 299_900, 100, expiry_ms=1))
    tracker.new_order(Order(12, 4, Side.SELL, 300_100, 100, expiry_ms=1))
    tracker.apply_orders(
        [
            _venue_order(3, 501, 11, "open"),
            _venue_order(3, 502, 0, "open"),  # not ours: foreign
            _venue_order(4, 503, 12, "canceled"),
        ]
    )
    entry = _Entry()
    entry.tracker = tracker  # type: ignore[attr-defined]
    v = MarketView(3, entry=entry)
    rec = v.order_record(11)
    assert rec is not None and rec.venue_status == "open" and rec.order.order_index == 501
    assert v.order_record(12) is not None and v.order_record(99) is None
    assert v.venue_statuses() == {"open": 2}  # market 3 only, ours and foreign
    assert MarketView(4, entry=entry).venue_statuses() == {"canceled": 1}


def _venue_order(market: int, oi: int, coi: int, status: str) -> dict[str, Any]:
    return {
        "market_index": market,
        "order_index": oi,
        "client_order_index": coi,
        "status": status,
        "price": "2999.00",
        "initial_base_amount": "0.0100",
        "remaining_base_amount": "0.0100",
        "filled_base_amount": "0",
        "is_ask": False,
        "transaction_time": 1,
    }
