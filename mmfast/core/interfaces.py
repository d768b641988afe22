"""Protocols the TradingCore works with: strategies, the connector and the journal.

Structural (``typing.Protocol``): any object with these methods fits, no base class needed.
``NullJournal`` is the journal that drops everything (a strategy without one).
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from mmfast.core.types import Fill, Order, Side, TimeInForce

if TYPE_CHECKING:
    from mmfast.core.trading_core import TradingCore

__all__ = [
    "BookListener",
    "Connector",
    "FillListener",
    "Journal",
    "NullJournal",
    "OrderConnector",
    "OrderListener",
    "Strategy",
]


@runtime_checkable
class Strategy(Protocol):
    """A strategy run by the TradingCore.

    ``start``/``stop`` may be plain methods or coroutines (the core awaits an awaitable result).
    ``on_tick(now_ms)`` is registered on the clock in strategy order; ``now_ms`` is the tick's
    deadline in monotonic milliseconds. Optional event hooks (``BookListener`` etc.) are wired by
    whoever owns the event sources.
    """

    def start(self, core: TradingCore) -> Awaitable[None] | None: ...

    def stop(self) -> Awaitable[None] | None: ...

    async def on_tick(self, now_ms: int) -> None: ...


@runtime_checkable
class BookListener(Protocol):
    def on_book(self, book: Any, now_ns: int) -> None: ...


@runtime_checkable
class OrderListener(Protocol):
    def on_order_update(self, order: Order) -> None: ...


@runtime_checkable
class FillListener(Protocol):
    def on_fill(self, fill: Fill) -> None: ...


@runtime_checkable
class Connector(Protocol):
    """What the TradingCore needs from a venue connector: lifecycle and per-market cancel-all.

    ``cancel_all(market, timeout)`` cancels every order of ours in that one market (never every
    market) and returns how many are still open when it gives up (0 = all gone). A connector may
    also provide ``status() -> dict``, which the core includes in its own status.
    """

    async def start(self, core: TradingCore) -> None: ...

    async def stop(self, core: TradingCore) -> None: ...

    async def cancel_all(self, market: int, timeout: float) -> int: ...


@runtime_checkable
class OrderConnector(Connector, Protocol):
    """A connector strategies place orders through. Post-only is a time-in-force on Lighter.

    ``expiry_ms`` is a wall-clock epoch ms (0 for IOC); placing returns the Order in
    PENDING_NEW (accepted is not live: it becomes OPEN when the account stream says so).

    Order calls are synchronous and never block: they validate, queue the tx (signing and
    sending happen off the caller's path) and return; outcomes arrive as events. That lets a
    strategy go from a book frame to the signer queue inside the frame's callback.
    """

    def place_limit(
        self,
        market: int,
        side: Side,
        price_ticks: int,
        size_lots: int,
        *,
        tif: TimeInForce,
        reduce_only: bool = False,
        expiry_ms: int = 0,
    ) -> Order: ...

    def modify(self, order: Order, price_ticks: int, size_lots: int) -> None: ...

    def cancel(self, order: Order) -> None: ...


@runtime_checkable
class Journal(Protocol):
    """Where structured events go: ``write(kind, **fields)``, one record per call.

    Implemented by ``mmfast.run.journal.JsonlJournal`` (a JSONL file per run) and
    ``MemoryJournal`` (tests); ``NullJournal`` drops everything. Called on the event path:
    ``write`` must not block (buffer, flush elsewhere)."""

    def write(self, kind: str, **fields: Any) -> None: ...


class NullJournal:
    """A ``Journal`` that drops every record."""

    __slots__ = ()

    def write(self, kind: str, **fields: Any) -> None:
        return None
