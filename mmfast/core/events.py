"""Events and the typed, synchronous event bus.

Events are slotted dataclasses, read-only by convention (not frozen: a frozen dataclass costs
about twice as much to build, and BookUpdated is published per book message).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from mmfast.core.types import Fill, LifecycleState, Order, Position

__all__ = [
    "BookUpdated",
    "ConnectorState",
    "EventBus",
    "FillReceived",
    "LifecycleChanged",
    "OrderUpdated",
    "PositionUpdated",
    "Publisher",
    "PullQuotes",
]

_log = logging.getLogger("mmfast.bus")

E = TypeVar("E")


@dataclass(slots=True)
class BookUpdated:
    """A market's book changed. ``book`` is the compiled ``mmfast._core.book.OrderBook``."""

    market: int
    book: Any
    ts_ns: int


@dataclass(slots=True)
class OrderUpdated:
    """An order of ours changed state (venue stream, REST reconciliation or a local decision)."""

    order: Order
    ts_ns: int


@dataclass(slots=True)
class FillReceived:
    """A new (de-duplicated) fill of ours."""

    fill: Fill


@dataclass(slots=True)
class PositionUpdated:
    position: Position
    ts_ns: int


@dataclass(slots=True)
class PullQuotes:
    """Quotes must come off ``market`` (None: every market), e.g. stale book or stream stall."""

    market: int | None
    reason: str
    ts_ns: int


@dataclass(slots=True)
class ConnectorState:
    """Whether the connector can trade right now, and why not when it cannot."""

    ready: bool
    reason: str
    ts_ns: int


@dataclass(slots=True)
class LifecycleChanged:
    old: LifecycleState
    new: LifecycleState
    ts_ns: int


class Publisher(Protocol):
    """What publishes events: the ``EventBus``, or a stand-in until there is one."""

    def publish(self, event: Any) -> None: ...


class EventBus:
    """Typed publish/subscribe, dispatched synchronously on the loop thread.

    * Dispatch is on the event's exact type (a subscriber to a base class does not see
      subclasses); handlers run in subscription order. The handler tuple per type is cached, so
      ``publish`` allocates nothing beyond the event itself.
    * A handler that raises is logged (``mmfast.bus``) and counted in ``errors``; the remaining
      handlers still run.
    * Subscribing or unsubscribing during a publish takes effect from the next publish.
    * A handler may publish; that nested dispatch runs to completion first (depth-first).
    * Handlers are synchronous: coroutine functions are refused at ``subscribe`` (their
      coroutine would never be awaited).
    """

    __slots__ = ("_errors", "_handlers", "_subs")

    def __init__(self) -> None:
        # Per type: the subscriptions as (token, handler), and the cached handler tuple.
        self._subs: dict[type, list[tuple[object, Callable[[Any], object]]]] = {}
        self._handlers: dict[type, tuple[Callable[[Any], object], ...]] = {}
        self._errors = 0

    def subscribe(self, event_type: type[E], handler: Callable[[E], object]) -> Callable[[], None]:
        """Call ``handler(event)`` for every published event of exactly ``event_type``.

        Returns an idempotent callable that removes this one subscription (the same handler
        subscribed twice is called twice and needs both unsubscribed).
        """
        if not isinstance(event_type, type):
            raise TypeError(f"event_type must be a class, got {event_type!r}")
        if not callable(handler):
            raise TypeError(f"handler must be callable, got {handler!r}")
        if inspect.iscoroutinefunction(handler):
            raise TypeError(f"handlers are synchronous; got coroutine function {handler!r}")
        token = object()
        subs = self._subs.setdefault(event_type, [])
        subs.append((token, handler))
        self._handlers[event_type] = tuple(h for _, h in subs)

        def unsubscribe() -> None:
            current = self._subs.get(event_type)
            if not current:
                return
            for i, (tok, _) in enumerate(current):
                if tok is token:
                    del current[i]
                    break
            else:
                return
            if current:
                self._handlers[event_type] = tuple(h for _, h in current)
            else:
                del self._subs[event_type]
                del self._handlers[event_type]

        return unsubscribe

    def publish(self, event: object) -> None:
        """Deliver ``event`` to the handlers of its exact type, in subscription order."""
        handlers = self._handlers.get(type(event))
        if handlers is None:
            return
        for handler in handlers:
            try:
                handler(event)
            except Exception:
                self._errors += 1
                _log.exception("event handler %r failed on %s", handler, type(event).__name__)

    def subscriber_count(self, event_type: type) -> int:
        return len(self._handlers.get(event_type, ()))

    @property
    def errors(self) -> int:
        """Handler exceptions caught so far."""
        return self._errors

    def clear(self) -> None:
        """Drop every subscription (existing unsubscribe callables become no-ops)."""
        self._subs.clear()
        self._handlers.clear()
