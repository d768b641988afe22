"""The trading core's public types as a strategy author uses them (``mmfast.core``): the order,
fill and position types, the events and the typed ``EventBus``, the ``Strategy`` and
``Connector`` protocols and the ``TradingCore`` that runs them.

Checked by mypy only (``make typecheck``), never run; see tests/typing in CONTRIBUTING.md.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from fractions import Fraction
from typing import Any, assert_type

from mmfast.core import (
    MAX_CLIENT_ORDER_INDEX,
    BookUpdated,
    Clock,
    Connector,
    EventBus,
    Fill,
    FillReceived,
    LifecycleChanged,
    LifecycleState,
    NullJournal,
    Order,
    OrderStatus,
    OrderType,
    OrderUpdated,
    Position,
    PullQuotes,
    Side,
    Strategy,
    TimeInForce,
    TradingCore,
)


def order_types(fill: Fill) -> None:
    assert_type(MAX_CLIENT_ORDER_INDEX, int)
    assert_type(Side.BUY.sign, int)
    assert_type(Side.SELL.opposite, Side)
    assert_type(OrderStatus.OPEN.is_live, bool)
    assert_type(OrderStatus.FILLED.is_terminal, bool)
    order = Order(1, 0, Side.BUY, 301245, 100, tif=TimeInForce.POST_ONLY, expiry_ms=1)
    assert_type(order.side, Side)
    assert_type(order.tif, TimeInForce)
    assert_type(order.order_type, OrderType)
    assert_type(order.status, OrderStatus)
    assert_type(order.order_index, int | None)
    assert_type(order.remaining_lots, int)
    assert_type(order.is_terminal, bool)
    assert_type(order.check(), None)
    order.status = OrderStatus.OPEN  # an Order is mutable: its state moves
    assert_type(fill.is_maker, bool)
    assert_type(fill.client_order_index, int | None)
    position = Position(market=0)
    assert_type(position.apply_fill(fill), Fraction)
    assert_type(position.avg_entry_price_ticks, Fraction)
    assert_type(position.realized_pnl, Fraction)
    assert_type(position.unrealized_pnl(301250), Fraction)
    assert_type(position.fees_paid, int)

    Order(1, 0, 0, 301245, 100)  # type: ignore[arg-type]
    Order(1, 0, Side.BUY, "3012.45", 100)  # type: ignore[arg-type]
    Order(1, 0, Side.BUY, 301245)  # type: ignore[call-arg]
    order.tif = 2  # type: ignore[assignment]
    fill.price_ticks = 1  # type: ignore[misc]
    Side.BUY.sign = -1  # type: ignore[misc]
    position.apply_fill(order)  # type: ignore[arg-type]
    order.order_index + 1  # type: ignore[operator]


def event_bus(bus: EventBus, book: Any) -> None:
    seen: list[Fill] = []

    def on_fill(ev: FillReceived) -> None:
        assert_type(ev.fill, Fill)
        seen.append(ev.fill)

    def on_pull(ev: PullQuotes) -> None:
        assert_type(ev.market, int | None)
        assert_type(ev.reason, str)

    def on_order(ev: OrderUpdated) -> None:
        assert_type(ev.order, Order)

    unsubscribe = bus.subscribe(FillReceived, on_fill)
    assert_type(unsubscribe, Callable[[], None])
    bus.subscribe(PullQuotes, on_pull)
    bus.subscribe(BookUpdated, lambda ev: assert_type(ev.ts_ns, int))
    bus.subscribe(LifecycleChanged, lambda ev: assert_type(ev.new, LifecycleState))
    assert_type(bus.publish(BookUpdated(market=0, book=book, ts_ns=1)), None)
    assert_type(bus.subscriber_count(FillReceived), int)
    assert_type(bus.errors, int)
    unsubscribe()

    bus.subscribe(FillReceived, on_order)  # type: ignore[arg-type]
    # Not a class: refused, and no event type fits ``type[E]`` (misc).
    bus.subscribe(on_fill, on_fill)  # type: ignore[arg-type, misc]
    bus.subscribe(PullQuotes, lambda ev: ev.fill)  # type: ignore[attr-defined]
    bus.errors = 0  # type: ignore[misc]
    PullQuotes(market=None, reason="stale book")  # type: ignore[call-arg]
    OrderUpdated(order=None, ts_ns=0)  # type: ignore[arg-type]


class Quoter:
    """A strategy of one's own: structural, no base class (``Strategy`` is a Protocol)."""

    def start(self, core: TradingCore) -> None:
        assert_type(core.bus, EventBus)
        assert_type(core.clock, Clock)
        assert_type(core.state, LifecycleState)
        assert_type(core.markets, tuple[int, ...])
        assert_type(core.strategies, tuple[Strategy, ...])
        assert_type(core.last_error, str | None)
        assert_type(core.status(), dict[str, Any])

        core.state = LifecycleState.RUNNING  # type: ignore[misc]
        core.bus = EventBus()  # type: ignore[misc]

    def stop(self) -> Awaitable[None] | None:
        return None

    async def on_tick(self, now_ms: int) -> None:
        return None


class NoTick:
    """Not a strategy: it lacks ``on_tick``."""

    def start(self, core: TradingCore) -> None: ...

    def stop(self) -> None: ...


async def run(connector: Connector) -> None:
    core = TradingCore(connector, [Quoter()], markets=[0], tick_interval_ms=100.0)
    assert_type(core, TradingCore)
    strategy: Strategy = Quoter()
    del strategy
    assert_type(await core.start(), None)
    assert_type(await core.stop(), None)
    assert_type(await connector.cancel_all(0, 5.0), int)
    NullJournal().write("note", text="anything")

    TradingCore(connector, [NoTick()])  # type: ignore[list-item]
    TradingCore(connector, Quoter())  # type: ignore[arg-type]
    TradingCore(connector, [Quoter()], [0])  # type: ignore[call-arg]
    TradingCore(None, [Quoter()])  # type: ignore[arg-type]
