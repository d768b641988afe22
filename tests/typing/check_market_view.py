"""``MarketView``, what a strategy reads of one market (``mmfast.core.market_view``): its
readiness, account figures, in-flight count and order records, and ``view_of`` for a connector
of any shape. The sources behind it are duck-typed (``Any``); what a strategy gets back is not.

Checked by mypy only (``make typecheck``), never run; see tests/typing in CONTRIBUTING.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, assert_type

from mmfast._core.book import OrderBook
from mmfast.core.market_view import MarketView, view_of


def step(data: bytes, now_ns: int) -> int:
    """A compiled step's shape: a book frame in, a book code out."""
    return 0


def wrong_step(data: str) -> int:
    return 0


def reading(connector: Any, book: OrderBook) -> MarketView:
    view = view_of(connector, 0)
    assert_type(view, MarketView)
    assert_type(MarketView(1, book=book, account_index=7), MarketView)
    assert_type(view.market, int)
    assert_type(view.ready, bool)
    assert_type(view.user_stats, Mapping[str, Any])
    assert_type(view.loop_ran(1_000_000), bool)
    assert_type(view.in_flight(), int)
    assert_type(view.venue_statuses(), dict[str, int])
    assert_type(view.attach_step(step), bool)
    assert_type(view.attach_step(None), bool)

    view_of(connector, "ETH")  # type: ignore[arg-type]
    MarketView("ETH")  # type: ignore[arg-type]
    MarketView(1, book)  # type: ignore[call-arg]
    MarketView(1, account_index="7")  # type: ignore[arg-type]
    view.loop_ran(None)  # type: ignore[arg-type]
    view.attach_step(wrong_step)  # type: ignore[arg-type]
    view.ready = False  # type: ignore[misc]
    view.user_stats = {}  # type: ignore[misc]
    return view


async def orders(view: MarketView) -> None:
    active = await view.active_orders()
    assert_type(active, list[dict[str, Any]] | None)
    if active is not None:
        assert_type(active[0], dict[str, Any])

    len(await view.active_orders())  # type: ignore[arg-type]
    view.active_orders().append({})  # type: ignore[attr-defined]
