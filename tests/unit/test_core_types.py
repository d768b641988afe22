"""mmfast.core.types: enum values (wire and compiled constants), Order rules, exact Position."""

from __future__ import annotations

from dataclasses import FrozenInstanceError
from fractions import Fraction

import lighter
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mmfast.core.types import (
    MAX_CLIENT_ORDER_INDEX,
    Fill,
    LifecycleState,
    Order,
    OrderStatus,
    OrderType,
    Position,
    Side,
    TimeInForce,
)


def test_enum_values_match_the_venue() -> None:
    sc = lighter.SignerClient
    assert TimeInForce.IOC == sc.ORDER_TIME_IN_FORCE_IMMEDIATE_OR_CANCEL == 0
    assert TimeInForce.GTT == sc.ORDER_TIME_IN_FORCE_GOOD_TILL_TIME == 1
    assert TimeInForce.POST_ONLY == sc.ORDER_TIME_IN_FORCE_POST_ONLY == 2
    assert OrderType.LIMIT == sc.ORDER_TYPE_LIMIT == 0
    assert OrderType.MARKET == sc.ORDER_TYPE_MARKET == 1
    # is_ask: buy = 0, sell = 1
    assert (Side.BUY, Side.SELL) == (0, 1)


def test_side_helpers() -> None:
    assert Side.BUY.sign == 1 and Side.SELL.sign == -1
    assert Side.BUY.opposite is Side.SELL and Side.SELL.opposite is Side.BUY


def test_order_status_terminal_and_live() -> None:
    terminal = {s for s in OrderStatus if s.is_terminal}
    assert terminal == {OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.REJECTED}
    live = {s for s in OrderStatus if s.is_live}
    assert live == {OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED, OrderStatus.PENDING_CANCEL}
    # An unknown outcome is neither settled nor known to rest on the book.
    assert not OrderStatus.UNKNOWN.is_terminal and not OrderStatus.UNKNOWN.is_live


def test_lifecycle_order() -> None:
    assert [s.name for s in sorted(LifecycleState)] == [
        "CREATED", "STARTING", "RUNNING", "STOPPING", "STOPPED", "SHUT_DOWN",
    ]  # fmt: skip


def _order(**kw: object) -> Order:
    base: dict[str, object] = dict(
        client_order_index=7,
        market=1,
        side=Side.BUY,
        price_ticks=300_000,
        size_lots=5,
        tif=TimeInForce.POST_ONLY,
        expiry_ms=1_800_000_000_000,
    )
    base.update(kw)
    return Order(**base)  # type: ignore[arg-type]


def test_order_defaults_and_remaining() -> None:
    o = _order()
    assert o.status is OrderStatus.PENDING_NEW
    assert o.order_index is None and o.filled_lots == 0 and not o.reduce_only
    o.filled_lots = 2
    assert o.remaining_lots == 3
    o.status = OrderStatus.FILLED
    assert o.is_terminal
    o.check()
    with pytest.raises(AttributeError):
        o.nonexistent = 1  # type: ignore[attr-defined]  # slots


@pytest.mark.parametrize(
    "kw",
    [
        {"client_order_index": 0},
        {"client_order_index": MAX_CLIENT_ORDER_INDEX + 1},
        {"price_ticks": 0},
        {"size_lots": 0},
        {"filled_lots": 6},
        {"tif": TimeInForce.IOC},  # IOC with a non-zero expiry
        {"expiry_ms": 0},  # post-only without expiry
        {"order_type": OrderType.MARKET},  # market must be IOC
    ],
)
def test_order_check_rejects(kw: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        _order(**kw).check()


def test_order_check_accepts_ioc_and_max_index() -> None:
    _order(tif=TimeInForce.IOC, expiry_ms=0, order_type=OrderType.MARKET).check()
    _order(client_order_index=MAX_CLIENT_ORDER_INDEX).check()


def _fill(side: Side, price: int, size: int, fee: int = 0, market: int = 1) -> Fill:
    return Fill(
        trade_id=1,
        market=market,
        side=side,
        price_ticks=price,
        size_lots=size,
        fee=fee,
        is_maker=True,
        client_order_index=7,
        order_index=None,
        ts_ns=0,
    )


def test_fill_is_frozen() -> None:
    f = _fill(Side.BUY, 100, 1)
    with pytest.raises(FrozenInstanceError):
        f.price_ticks = 5  # type: ignore[misc]


def test_position_worked_example() -> None:
    p = Position(market=1)
    assert p.apply_fill(_fill(Side.BUY, 100, 3, fee=2)) == 0
    assert p.apply_fill(_fill(Side.BUY, 101, 1, fee=1)) == 0
    assert p.size_lots == 4
    assert p.avg_entry_price_ticks == Fraction(401, 4)  # 100.25: not a whole tick
    # Sell 3 at 103: realizes (103 - 100.25) * 3 = 8.25, average unchanged.
    assert p.apply_fill(_fill(Side.SELL, 103, 3)) == Fraction(33, 4)
    assert p.size_lots == 1 and p.avg_entry_price_ticks == Fraction(401, 4)
    # Sell 3 at 99: closes 1 (realizes -1.25) and opens a 2-lot short at 99.
    assert p.apply_fill(_fill(Side.SELL, 99, 3)) == Fraction(-5, 4)
    assert p.size_lots == -2 and p.avg_entry_price_ticks == 99
    assert p.realized_pnl == 7
    assert p.unrealized_pnl(97) == 4
    assert p.fees_paid == 3
    # Buy back 2 at 98: flat, realizes 2.
    assert p.apply_fill(_fill(Side.BUY, 98, 2, fee=-1)) == 2
    assert p.size_lots == 0 and p.avg_entry_price_ticks == 0
    assert p.realized_pnl == 9 and p.fees_paid == 2


def test_position_rejects_wrong_market_and_bad_fill() -> None:
    p = Position(market=1)
    with pytest.raises(ValueError):
        p.apply_fill(_fill(Side.BUY, 100, 1, market=2))
    with pytest.raises(ValueError):
        p.apply_fill(_fill(Side.BUY, 100, 0))


@settings(derandomize=True, max_examples=200, deadline=None)
@given(
    fills=st.lists(
        st.tuples(
            st.sampled_from([Side.BUY, Side.SELL]),
            st.integers(1, 10**12),  # price ticks, up to venue extremes
            st.integers(1, 10**9),  # size lots
            st.integers(-(10**6), 10**6),  # fee
        ),
        max_size=40,
    ),
    mark=st.integers(1, 10**12),
)
def test_position_accounting_identity(fills: list[tuple[Side, int, int, int]], mark: int) -> None:
    # Exact for any fill sequence: realized + unrealized(mark) equals the cash flow of all fills
    # plus the open size valued at mark, and the size is the signed sum of the fills.
    p = Position(market=1)
    cash = 0
    size = 0
    fees = 0
    for side, price, qty, fee in fills:
        p.apply_fill(_fill(side, price, qty, fee))
        cash -= side.sign * qty * price
        size += side.sign * qty
        fees += fee
    assert p.size_lots == size
    assert p.fees_paid == fees
    assert p.realized_pnl + p.unrealized_pnl(mark) == cash + size * mark
    if size == 0:
        assert p.avg_entry_price_ticks == 0
    else:
        assert p.avg_entry_price_ticks > 0
