"""Readiness: the connector may trade only while every named condition holds.

Conditions are registered by name (``book:0``, ``stream:account_orders:0:1001``, ``market:0``,
``skew``, ...) and start failing. The connector is ready when all hold; the moment one fails
it is not ready, with that condition's reason. Every change of the overall state (or of the
reason while not ready) is published as a ``ConnectorState`` event; every change of any one
condition goes to the ``watch``ers (the run's journal: stream drops and returns, resyncs,
reconciliations, each with its reason, also while the connector is already not ready).

``Signals`` is the connector's way onto the core's bus, shared by its parts (market data,
account streams, order entry): ``publish`` an event, ``pull`` quotes (a counted ``PullQuotes``).
"""

from __future__ import annotations

from collections.abc import Callable

from mmfast.core.events import ConnectorState, Publisher, PullQuotes
from mmfast.core.timesource import REAL_TIME, TimeSource

__all__ = ["Readiness", "Signals"]


class Readiness:
    """Named conditions; ready iff all hold. Publishes ConnectorState on every change."""

    __slots__ = (
        "_failing",
        "_order",
        "_publish",
        "_ready",
        "_reason",
        "_time",
        "_watchers",
        "history",
    )

    def __init__(
        self,
        publish: Callable[[ConnectorState], object] | None = None,
        time: TimeSource = REAL_TIME,
    ) -> None:
        self._publish = publish  # e.g. EventBus.publish
        self._time = time  # stamps the events
        self._order: list[str] = []  # condition names in registration order
        self._failing: dict[str, str] = {}  # name -> reason, for conditions not holding
        self._ready = False  # last published state
        self._reason = "starting"  # last published reason
        self.history: list[tuple[int, bool, str]] = []  # (mono ns, ready, reason) per change
        self._watchers: list[Callable[[str, bool, str], object]] = []

    def watch(self, fn: Callable[[str, bool, str], object]) -> Callable[[], None]:
        """Call ``fn(name, holds, reason)`` on every change of a condition; returns the
        unsubscribe."""
        self._watchers.append(fn)

        def unwatch() -> None:
            if fn in self._watchers:
                self._watchers.remove(fn)

        return unwatch

    def _changed(self, name: str, ok: bool, reason: str) -> None:
        for fn in tuple(self._watchers):
            fn(name, ok, reason)

    def add(self, name: str, reason: str) -> None:
        """Register a condition, failing with ``reason`` until ``set(name, True)``."""
        if name not in self._order:
            self._order.append(name)
        self._failing[name] = reason
        if self._watchers:
            self._changed(name, False, reason)
        self._emit()

    def remove(self, name: str) -> None:
        if name in self._order:
            self._order.remove(name)
        self._failing.pop(name, None)
        self._emit()

    def set(self, name: str, ok: bool, reason: str = "") -> None:
        """Mark ``name`` holding (``ok``) or failing with ``reason``."""
        if name not in self._order:
            raise KeyError(f"unknown readiness condition {name!r}")
        if ok:
            if name not in self._failing:
                return
            del self._failing[name]
        else:
            if self._failing.get(name) == reason:
                return
            self._failing[name] = reason or name
        if self._watchers:
            self._changed(name, ok, self._failing.get(name, ""))
        self._emit()

    def holds(self, name: str) -> bool:
        return name in self._order and name not in self._failing

    @property
    def ready(self) -> bool:
        return self._ready

    @property
    def reason(self) -> str:
        """Why not ready (the first failing condition in registration order), "" when ready."""
        return self._reason

    def failing(self) -> dict[str, str]:
        """Every failing condition and its reason, in registration order."""
        return {n: self._failing[n] for n in self._order if n in self._failing}

    def _emit(self) -> None:
        if not self._order:
            ready, reason = False, "no conditions"
        else:
            first = next((n for n in self._order if n in self._failing), None)
            ready = first is None
            reason = "" if first is None else f"{first}: {self._failing[first]}"
        if ready == self._ready and reason == self._reason:
            return
        self._ready, self._reason = ready, reason
        now = self._time.monotonic_ns()
        self.history.append((now, ready, reason))
        if len(self.history) > 1000:
            del self.history[:500]
        if self._publish is not None:
            self._publish(ConnectorState(ready, reason, now))


class _NullBus:
    """Stands in for the EventBus until the connector has one."""

    __slots__ = ()

    def publish(self, event: object) -> None:
        pass


NULL_BUS = _NullBus()


class Signals:
    """The connector's events to the core's bus (``bus`` set when the connector gets one),
    shared by the connector's parts; ``pulls`` counts the PullQuotes published."""

    __slots__ = ("_time", "bus", "pulls")

    def __init__(self, time: TimeSource = REAL_TIME, bus: Publisher | None = None) -> None:
        self._time = time  # stamps the PullQuotes
        self.bus: Publisher = bus if bus is not None else NULL_BUS
        self.pulls = 0  # PullQuotes published

    def publish(self, event: object) -> None:
        self.bus.publish(event)

    def pull(self, market: int | None, reason: str) -> None:
        """Quotes off: ``market`` (None: every market) for ``reason``."""
        self.pulls += 1
        self.bus.publish(PullQuotes(market, reason, self._time.monotonic_ns()))
