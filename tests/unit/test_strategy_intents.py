"""``ModifyIntents`` on its own: a modify waits until the tracker's order shows it, ends with
the order, or runs out; the expected values the planners and the gate read meanwhile."""

from __future__ import annotations

from mmfast.core.types import Order, OrderStatus, Side
from mmfast.risk.limits import count_open
from mmfast.strategy.intents import MODIFY_WAIT_NS, ModifyIntents


def _setup() -> tuple[ModifyIntents, Order, list[int]]:
    now = [1_000]
    o = Order(1, 0, Side.BUY, 299_995, 100)
    o.order_index = 77
    o.status = OrderStatus.OPEN
    return ModifyIntents(now_ns=lambda: now[0]), o, now


def test_a_modify_is_busy_until_shown_and_the_order_is_never_written() -> None:
    v, o, now = _setup()
    v.expect(o, 299_900, 80, now[0])
    assert (o.price_ticks, o.size_lots) == (299_995, 100)  # the venue's, untouched
    assert v.pending == {1: (299_900, 80, now[0] + MODIFY_WAIT_NS)}
    assert v.busy_cois({5}) == {1, 5}
    assert v.expected(o) == (299_900, 80)
    assert not v.order_update(o)  # the venue's values still: waiting
    o.price_ticks, o.size_lots = 299_900, 80  # the tracker applies the venue's message
    assert v.order_update(o) and v.pending == {}
    assert v.busy_cois({5}) == {5} and v.expected(o) == (299_900, 80)


def test_the_size_is_matched_whatever_fills_came_since() -> None:
    """The intent keeps the total size (filled then + new remaining): a fill between the
    modify and the venue's message changes the remaining, not the size."""
    v, o, now = _setup()
    o.filled_lots = 20
    v.expect(o, 299_900, 50, now[0])  # 20 filled + 50 left = 70
    assert v.pending[1][1] == 70
    o.filled_lots = 30  # a fill on the way
    assert v.expected(o) == (299_900, 40)
    o.price_ticks, o.size_lots = 299_900, 70
    assert v.order_update(o) and not v.pending


def test_an_order_that_ends_is_not_waited_for() -> None:
    v, o, now = _setup()
    v.expect(o, 299_800, 80, now[0])
    o.status = OrderStatus.CANCELED
    assert v.order_update(o) and v.pending == {}


def test_a_modify_never_shown_stops_blocking_after_the_wait() -> None:
    v, o, now = _setup()
    v.expect(o, 299_800, 60, now[0])
    now[0] += MODIFY_WAIT_NS - 1
    assert v.busy_cois(set()) == {1} and not v.expire(now[0])
    now[0] += 1
    assert v.busy_cois(set()) == set()
    assert v.expected(o) == (299_995, 100)  # the venue's values stand
    v.expect(o, 299_800, 60, now[0])
    assert v.expire(now[0] + MODIFY_WAIT_NS) and not v.pending
    assert not v.expire(now[0] + 2 * MODIFY_WAIT_NS)  # nothing left


def test_open_lots_count_the_larger_of_the_two_remainings() -> None:
    """Until the venue shows a modify it may hold either size: the gate counts the larger."""
    v, o, now = _setup()
    ask = Order(2, 0, Side.SELL, 300_100, 100)
    ask.status = OrderStatus.OPEN
    orders = [o, ask]
    v.expect(o, 299_900, 150, now[0])  # a bigger bid
    v.expect(ask, 300_200, 40, now[0])  # a smaller ask
    assert count_open(orders) == (2, 100, 100)
    assert count_open(orders, v.pending) == (2, 150, 100)
