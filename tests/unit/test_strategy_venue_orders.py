"""``VenueOrders`` on its own: modify waits, the venue's order stream, the version shortcut."""

from __future__ import annotations

from types import SimpleNamespace

from mmfast.core.market_view import view_of
from mmfast.core.types import Order, OrderStatus, Side
from mmfast.risk import MarketRules
from mmfast.strategy.venue_orders import MODIFY_WAIT_NS, VenueOrders

RULES = MarketRules(market=0, price_decimals=2, size_decimals=4, min_size_lots=50, min_notional=0)


def _setup() -> tuple[VenueOrders, Order, dict[str, str], SimpleNamespace, list[int]]:
    now = [1_000]
    o = Order(1, 0, Side.BUY, 299_995, 100)
    o.order_index = 77
    o.status = OrderStatus.OPEN
    raw = {"price": "2999.95", "remaining_base_amount": "0.0100"}
    conn = SimpleNamespace(account_orders={0: {77: raw}})
    v = VenueOrders(view_of(conn, 0), 0, {1: o}, now_ns=lambda: now[0], rules=RULES)
    return v, o, raw, conn, now


def test_sync_takes_the_venues_price_and_size() -> None:
    v, o, raw, _, _ = _setup()
    raw.update(price="2999.00", remaining_base_amount="0.0080")
    v.sync()
    assert (o.price_ticks, o.remaining_lots) == (299_900, 80)
    raw["price"] = "bad"  # unparsable text: the order is left alone
    v.sync()
    assert o.price_ticks == 299_900


def test_sync_changes_nothing_without_rules() -> None:
    v, o, raw, _, _ = _setup()
    v.rules = None
    raw["price"] = "2999.00"
    v.sync()
    assert o.price_ticks == 299_995


def test_a_modify_waits_until_shown_or_expired() -> None:
    v, o, raw, _, now = _setup()
    o.price_ticks, o.size_lots = 299_900, 80  # what the strategy sets optimistically
    v.expect(1, 299_900, 80, now[0])
    assert v.busy_cois(set()) == {1}
    v.sync()  # the stream still has the old values: the optimistic ones stay
    assert (o.price_ticks, o.remaining_lots) == (299_900, 80)
    raw.update(price="2999.00", remaining_base_amount="0.0080")
    v.sync()
    assert v.modifying == {} and v.busy_cois({5}) == {5}
    # Never shown: after the wait the order is free and the venue's values come back.
    o.price_ticks, o.size_lots = 299_800, 60
    v.expect(1, 299_800, 60, now[0])
    now[0] += MODIFY_WAIT_NS - 1
    assert v.busy_cois(set()) == {1}
    now[0] += 1
    assert v.busy_cois(set()) == set()
    v.sync()
    assert (o.price_ticks, o.remaining_lots) == (299_900, 80)


def test_order_update_ends_the_wait() -> None:
    v, o, _, _, now = _setup()
    v.expect(1, 299_900, 80, now[0])
    v.order_update(o)  # not the modify's values yet
    assert 1 in v.modifying
    o.price_ticks, o.size_lots = 299_900, 80
    v.order_update(o)
    assert v.modifying == {}
    v.expect(1, 299_800, 80, now[0])
    o.status = OrderStatus.CANCELED  # an order that ended is not waited for
    v.order_update(o)
    assert v.modifying == {}


def test_version_shortcut_and_expired_wait() -> None:
    v, o, raw, conn, now = _setup()
    conn.account_orders_version = 1
    v.sync()
    raw["price"] = "2998.00"  # no new message: nothing to sync
    v.sync()
    assert o.price_ticks == 299_995
    conn.account_orders_version = 2
    v.sync()
    assert o.price_ticks == 299_800
    o.price_ticks = 299_700
    v.expect(1, 299_700, 100, now[0])
    v.sync()
    assert o.price_ticks == 299_700
    now[0] += MODIFY_WAIT_NS
    assert v.busy_cois(set()) == set()  # expired: the next sync runs with no new message
    v.sync()
    assert o.price_ticks == 299_800
