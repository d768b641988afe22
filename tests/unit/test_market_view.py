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
    account = SimpleNamespace(user_stats={}, account_orders_version=3)
    raw: dict[int, dict[str, Any]] = {}
    entry = _Entry()
    v = MarketView(
        0,
        book="book",
        market_data=md,
        trades=[1],
        readiness=readiness,
        account=account,
        raw_orders=raw,
        entry=entry,
        budget="budget",
    )
    assert (v.book, v.info, v.stats, v.trades, v.ready) == ("book", "info-1", None, [1], False)
    md.markets[0] = "info-2"  # a metadata refresh replaces the market's info
    md.stats[0] = "stats"
    readiness.ready = True
    account.user_stats = {"collateral": "1"}
    account.account_orders_version = 4
    assert (v.info, v.stats, v.ready, v.orders_version) == ("info-2", "stats", True, 4)
    assert v.user_stats == {"collateral": "1"}
    assert v.raw_orders is raw and v.budget == "budget"
    assert v.in_flight() == 2
    entry.pending_txs = 5
    assert v.in_flight() == 5


def test_view_without_parts() -> None:
    v = MarketView(7)
    assert (v.book, v.info, v.stats, v.ready, v.orders_version, v.budget) == (
        None,
        None,
        None,
        True,
        None,
        None,
    )
    assert v.user_stats == {} and v.raw_orders == {} and v.in_flight() == 0
    assert not v.trades
    assert asyncio.run(v.active_orders()) is None


def test_view_of_uses_the_connectors_view() -> None:
    mine = MarketView(0)
    conn = SimpleNamespace(market_view=lambda m: mine)
    assert view_of(conn, 0) is mine


def test_view_of_a_plain_connector() -> None:
    conn = SimpleNamespace(books={0: "book"}, ready=True, account_orders={})
    v = view_of(conn, 0)
    assert v.book == "book" and v.info is None and v.orders_version is None
    assert v.raw_orders is conn.account_orders[0]  # the fake's dict, kept
    conn.ready = False  # read live
    conn.markets = {0: "info"}
    conn.account_orders_version = 2
    conn.user_stats = {"a": 1}
    assert (v.ready, v.info, v.orders_version, v.user_stats) == (False, "info", 2, {"a": 1})
    assert v.budget is None and v.in_flight() == 0  # no rate budget, no order counters


def test_view_of_active_orders_over_rest() -> None:
    class Rest:
        async def account_active_orders(self, account: int, market: int) -> list[dict[str, Any]]:
            return [{"account": account, "market": market}]

    conn = SimpleNamespace(rest=Rest(), config=SimpleNamespace(account_index=9))
    assert asyncio.run(view_of(conn, 3).active_orders()) == [{"account": 9, "market": 3}]


def test_order_messages_call_back_through_the_view() -> None:
    """A view over an account part with ``order_hooks`` registers a callable per market (once,
    removable); AccountStreams runs them after each orders message of that market."""
    from mmfast.connector.lighter.account_streams import AccountStreams

    acct = SimpleNamespace(order_hooks={}, account_orders_version=0, user_stats={})
    v = MarketView(3, account=acct)
    calls: list[int] = []

    def hook() -> None:
        calls.append(1)

    assert v.on_orders_message(hook) and v.on_orders_message(hook)
    assert acct.order_hooks == {3: [hook]}  # registered once
    # What AccountStreams does with an orders message of market 3 (and of market 4).
    streams = AccountStreams.__new__(AccountStreams)
    streams.account_orders, streams.account_orders_version = {}, 0
    streams.entry = streams.listener = None
    streams.order_hooks = acct.order_hooks
    streams._on_account_orders(
        {"orders": {"3": [{"order_index": 9, "status": "open"}], "4": []}}, False
    )
    assert calls == [1] and streams.account_orders_version == 2
    assert v.on_orders_message(hook, remove=True) and acct.order_hooks == {3: []}
    assert not MarketView(3).on_orders_message(hook)  # no account part: the caller polls
