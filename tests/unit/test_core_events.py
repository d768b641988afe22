"""mmfast.core.events.EventBus: typed dispatch, order, unsubscribe, failing-handler isolation."""

from __future__ import annotations

import logging

import pytest

from mmfast.core.events import (
    BookUpdated,
    ConnectorState,
    EventBus,
    FillReceived,
    LifecycleChanged,
    OrderUpdated,
    PositionUpdated,
    PullQuotes,
)
from mmfast.core.types import LifecycleState


def test_dispatch_on_exact_type_in_subscription_order() -> None:
    bus = EventBus()
    got: list[tuple[str, object]] = []
    bus.subscribe(PullQuotes, lambda e: got.append(("a", e)))
    bus.subscribe(ConnectorState, lambda e: got.append(("conn", e)))
    bus.subscribe(PullQuotes, lambda e: got.append(("b", e)))
    pull = PullQuotes(market=3, reason="stale book", ts_ns=1)
    state = ConnectorState(ready=False, reason="ws down", ts_ns=2)
    bus.publish(pull)
    bus.publish(state)
    bus.publish(BookUpdated(market=3, book=None, ts_ns=3))  # no subscriber: nothing happens
    assert got == [("a", pull), ("b", pull), ("conn", state)]


def test_subclass_not_delivered_to_base_subscribers() -> None:
    class Base:
        pass

    class Child(Base):
        pass

    bus = EventBus()
    got: list[object] = []
    bus.subscribe(Base, got.append)
    bus.publish(Child())
    assert got == []
    b = Base()
    bus.publish(b)
    assert got == [b]


def test_unsubscribe_removes_one_subscription_and_is_idempotent() -> None:
    bus = EventBus()
    got: list[str] = []

    def h(e: PullQuotes) -> None:
        got.append(e.reason)

    unsub1 = bus.subscribe(PullQuotes, h)
    unsub2 = bus.subscribe(PullQuotes, h)  # the same handler twice: called twice
    bus.publish(PullQuotes(None, "x", 0))
    assert got == ["x", "x"]
    unsub1()
    unsub1()
    assert bus.subscriber_count(PullQuotes) == 1
    bus.publish(PullQuotes(None, "y", 0))
    assert got == ["x", "x", "y"]
    unsub2()
    assert bus.subscriber_count(PullQuotes) == 0
    bus.publish(PullQuotes(None, "z", 0))
    assert got == ["x", "x", "y"]


def test_failing_handler_logged_counted_others_run(caplog: pytest.LogCaptureFixture) -> None:
    bus = EventBus()
    got: list[str] = []

    def bad(e: ConnectorState) -> None:
        raise RuntimeError("handler broke")

    bus.subscribe(ConnectorState, lambda e: got.append("first"))
    bus.subscribe(ConnectorState, bad)
    bus.subscribe(ConnectorState, lambda e: got.append("last"))
    with caplog.at_level(logging.ERROR, logger="mmfast.bus"):
        bus.publish(ConnectorState(True, "", 0))
        bus.publish(ConnectorState(True, "", 1))
    assert got == ["first", "last", "first", "last"]
    assert bus.errors == 2
    recs = [r for r in caplog.records if r.name == "mmfast.bus"]
    assert len(recs) == 2 and "handler broke" in (recs[0].exc_text or "")


def test_changes_during_publish_apply_from_next_publish() -> None:
    bus = EventBus()
    got: list[str] = []
    unsub_b: list[object] = []

    def a(e: PullQuotes) -> None:
        got.append(f"a:{e.reason}")
        if e.reason == "1":
            bus.subscribe(PullQuotes, lambda ev: got.append(f"c:{ev.reason}"))
            unsub_b[0]()  # type: ignore[operator]

    bus.subscribe(PullQuotes, a)
    unsub_b.append(bus.subscribe(PullQuotes, lambda e: got.append(f"b:{e.reason}")))
    bus.publish(PullQuotes(None, "1", 0))
    bus.publish(PullQuotes(None, "2", 0))
    assert got == ["a:1", "b:1", "a:2", "c:2"]


def test_nested_publish_is_depth_first() -> None:
    bus = EventBus()
    got: list[str] = []

    def on_pull(e: PullQuotes) -> None:
        got.append("pull")
        bus.publish(ConnectorState(False, e.reason, e.ts_ns))
        got.append("pull-done")

    bus.subscribe(PullQuotes, on_pull)
    bus.subscribe(ConnectorState, lambda e: got.append("state"))
    bus.publish(PullQuotes(1, "stall", 0))
    assert got == ["pull", "state", "pull-done"]


def test_subscribe_validation() -> None:
    bus = EventBus()

    async def coro_handler(e: object) -> None:
        pass

    with pytest.raises(TypeError):
        bus.subscribe(PullQuotes, coro_handler)
    with pytest.raises(TypeError):
        bus.subscribe("PullQuotes", print)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        bus.subscribe(PullQuotes, 3)  # type: ignore[arg-type]


def test_clear_drops_everything() -> None:
    bus = EventBus()
    got: list[object] = []
    unsub = bus.subscribe(FillReceived, got.append)
    bus.clear()
    unsub()  # harmless after clear
    bus.publish(FillReceived(fill=None))  # type: ignore[arg-type]
    assert got == []


def test_event_types_are_slotted() -> None:
    for ev in (
        BookUpdated(1, None, 0),
        OrderUpdated(None, 0),  # type: ignore[arg-type]
        FillReceived(None),  # type: ignore[arg-type]
        PositionUpdated(None, 0),  # type: ignore[arg-type]
        PullQuotes(None, "r", 0),
        ConnectorState(True, "", 0),
        LifecycleChanged(LifecycleState.CREATED, LifecycleState.STARTING, 0),
    ):
        assert not hasattr(ev, "__dict__")
