"""``MarketData``: the market-data part of the Lighter connector.

It holds the market metadata (``markets``, refreshed over REST), one compiled ``OrderBook`` per
market fed by the market-data WebSocket (``stream``: ``order_book``, ``trade`` and
``market_stats`` of every configured market), the latest ``MarketStats`` and recent trades of
each market, and keeps the readiness conditions ``market:<m>`` and ``book:<m>``:

- an applied frame with the book in sync and not crossed publishes ``BookUpdated`` (the
  requote path: one dict read and one readiness check per frame, nothing else);
- a nonce gap pulls the market's quotes and resubscribes its book;
- a crossed or locked book pulls quotes, and resubscribes when it lasts ``cross_resync_s``;
- the stream going down pulls every market;
- a market the venue marks inactive pulls its quotes.

The connector composes it (``LighterConnector.market_data``) with the account streams and
order entry; they share the ``Readiness``, the ``Signals`` (bus, pulls) and the skew monitor.
"""

from __future__ import annotations

import asyncio
import random
from collections import deque
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from mmfast._core.book import APPLIED, GAP, BookError, OrderBook
from mmfast.connector.lighter.listener import stream_listener
from mmfast.connector.lighter.markets import MarketInfo, parse_order_book_details
from mmfast.connector.lighter.ws import Subscription, WsStream
from mmfast.core.events import BookUpdated
from mmfast.core.log import get_logger
from mmfast.core.units import parse_units

if TYPE_CHECKING:
    from collections.abc import Callable

    from mmfast.connector.lighter.config import LighterConfig
    from mmfast.connector.lighter.readiness import Readiness, Signals
    from mmfast.connector.lighter.rest import LighterRest
    from mmfast.connector.lighter.skew import SkewMonitor
    from mmfast.connector.lighter.ws import StreamHalted
    from mmfast.core.timesource import TimeSource

__all__ = ["MarketData", "MarketStats"]

_log = get_logger("connector.lighter")


@dataclass(slots=True)
class MarketStats:
    """The latest ``market_stats`` of a market (prices in ticks; funding as the venue's
    decimal, converted at this edge since nothing on the hot path computes with it)."""

    mark_price_ticks: int
    index_price_ticks: int
    last_trade_price_ticks: int
    current_funding_rate: Decimal
    funding_timestamp_ms: int
    ts_ns: int


class MarketData:
    """Metadata, books, stats and trades of the configured markets (see the module doc)."""

    def __init__(
        self,
        config: LighterConfig,
        rest: LighterRest,
        readiness: Readiness,
        signals: Signals,
        skew: SkewMonitor,
        time: TimeSource,
        *,
        on_halt: Callable[[WsStream, StreamHalted], None],
    ) -> None:
        self.config = config
        self._rest = rest
        self._readiness = readiness
        self._signals = signals
        self._skew = skew
        self._time = time
        self.on_halt = on_halt  # the connector's: a halted stream stops everything
        self.markets: dict[int, MarketInfo] = {}  # every market the venue lists
        self.books: dict[int, OrderBook] = {}  # configured markets
        self.stats: dict[int, MarketStats] = {}
        self.trades: dict[int, deque[dict[str, Any]]] = {}  # the last 100 per market
        self.stream: WsStream | None = None
        self._crossed_timers: dict[int, asyncio.TimerHandle] = {}
        # counters
        self.gaps = 0  # nonce gaps seen (each: pull quotes + resubscribe)
        self.crossed = 0  # crossed/locked books seen
        self.cross_resyncs = 0  # resubscribes because a cross lasted > cross_resync_s
        self.bad_messages = 0  # trade / market_stats messages with malformed content

    # --- lifecycle ------------------------------------------------------------------------------
    def open(self, stream_args: dict[str, Any], rng: random.Random) -> None:
        """Books and trade buffers of the configured markets (metadata loaded) and the stream
        (not started)."""
        cfg = self.config
        subs = []
        for m in cfg.markets:
            info = self.markets[m]
            self.books[m] = OrderBook(m, info.price_decimals, info.size_decimals)
            self.trades[m] = deque(maxlen=100)
            subs += [
                Subscription(f"order_book/{m}"),
                Subscription(f"trade/{m}"),
                Subscription(f"market_stats/{m}"),
            ]
        self.stream = WsStream(
            "ws.market",
            cfg.ws_url,
            subs,
            stream_listener(self),
            books=self.books,
            rng=rng,
            **stream_args,
        )

    async def stop(self) -> None:
        for t in self._crossed_timers.values():
            t.cancel()
        self._crossed_timers.clear()
        if self.stream is not None:
            await self.stream.stop()

    async def refresh_markets(self) -> None:
        """Fetch orderBookDetails and update metadata and the market readiness conditions."""
        body = await self._rest.order_book_details()
        markets = parse_order_book_details(body)
        self.markets.update(markets)
        r = self._readiness
        for m in self.config.markets:
            info = markets.get(m)
            if info is None:
                r.set(f"market:{m}", False, f"market {m} not listed")
                continue
            was = r.holds(f"market:{m}")
            r.set(f"market:{m}", info.is_active, info.inactive_reason)
            if was and not info.is_active:
                self._signals.pull(m, info.inactive_reason)

    def attach_step(
        self,
        market: int,
        step: Callable[[bytes, int], int] | None,
        fast: tuple[Any, Callable[[int, int], object]] | None = None,
    ) -> bool:
        """Route ``market``'s book frames to ``step(data, now_ns) -> book code`` (a compiled
        step that applies them to this market's book itself), or back to the book (None).
        ``fast``: (its ``Pipeline``, ``after(code, now_ns)``), the same step for the compiled
        listener, which calls the pipeline on the frame's bytes and then ``after``. False when
        the market has no stream here."""
        if self.stream is None or market not in self.books:
            return False
        if step is None:
            self.stream.steps.pop(market, None)
            self.stream.fast.pop(market, None)
        else:
            self.stream.steps[market] = step
            if fast is None:
                self.stream.fast.pop(market, None)
            else:
                self.stream.fast[market] = fast
        return True

    def mid(self, market: int) -> float | None:
        """The book's mid (prices in ticks) while in sync, else None."""
        book = self.books.get(market)
        if book is None or not book.in_sync():
            return None
        return book.mid()

    # --- stream hooks ---------------------------------------------------------------------------
    def on_stream_up(self, stream: WsStream) -> None:
        _log.debug("%s connected", stream.name)

    def on_stream_down(self, stream: WsStream, reason: str) -> None:
        _log.info("%s down: %s", stream.name, reason)
        for m in self.config.markets:
            self._clear_cross(m)
            self._readiness.set(f"book:{m}", False, f"stream down: {reason}")
            self._signals.pull(m, f"market data down: {reason}")

    def on_subscribe_failed(self, stream: WsStream, key: str, code: int, message: str) -> None:
        _log.warning("%s: subscribe %s failed: %d %s", stream.name, key, code, message)

    def on_venue_time(self, venue_ms: int) -> None:
        self._skew.sample(venue_ms)

    def on_book(self, stream: WsStream, market: int, code: int, now_ns: int) -> None:
        book = self.books[market]
        if code == APPLIED:
            if book.is_crossed() or book.is_locked():
                self._on_crossed(stream, market, book)
                return
            if market in self._crossed_timers:
                self._clear_cross(market)
            if not self._readiness.holds(f"book:{market}"):
                self._readiness.set(f"book:{market}", True)
            self._signals.publish(BookUpdated(market, book, now_ns))
        elif code == GAP:
            self.gaps += 1
            self._readiness.set(f"book:{market}", False, "nonce gap: resyncing")
            self._signals.pull(market, "book nonce gap")
            stream.resubscribe(f"order_book:{market}")

    def _on_crossed(self, stream: WsStream, market: int, book: OrderBook) -> None:
        if market in self._crossed_timers:
            return
        self.crossed += 1
        self._readiness.set(f"book:{market}", False, "book crossed or locked")
        self._signals.pull(market, "crossed book")
        self._crossed_timers[market] = self._time.call_later(
            self.config.cross_resync_s, self._cross_timeout, stream, market
        )

    def _cross_timeout(self, stream: WsStream, market: int) -> None:
        self._crossed_timers.pop(market, None)
        book = self.books[market]
        if book.in_sync() and (book.is_crossed() or book.is_locked()):
            self.cross_resyncs += 1
            book.invalidate()
            self._readiness.set(f"book:{market}", False, "crossed book: resyncing")
            stream.resubscribe(f"order_book:{market}")

    def _clear_cross(self, market: int) -> None:
        t = self._crossed_timers.pop(market, None)
        if t is not None:
            t.cancel()

    def on_message(self, stream: WsStream, msg: dict[str, Any], now_ns: int) -> None:
        kind = msg.get("type", "").partition("/")[2]
        try:
            if kind == "trade":
                self._on_trades(msg)
            elif kind == "market_stats":
                self._on_market_stats(msg, now_ns)
        except (BookError, ValueError, TypeError, KeyError, AttributeError, InvalidOperation):
            self.bad_messages += 1

    def _on_trades(self, msg: dict[str, Any]) -> None:
        for t in msg.get("trades") or ():
            mid = t.get("market_id")
            if mid in self.trades:
                self.trades[mid].append(t)

    def _on_market_stats(self, msg: dict[str, Any], now_ns: int) -> None:
        ms = msg.get("market_stats")
        items = (
            [ms]
            if isinstance(ms, dict) and "market_id" in ms
            else (list(ms.values()) if isinstance(ms, dict) else [])
        )
        for s in items:
            info = market_of(self.markets, s.get("market_id"))
            if info is None:
                continue
            pd = info.price_decimals
            last = s.get("last_trade_price") or "0"
            self.stats[info.market_id] = MarketStats(
                mark_price_ticks=parse_units(s["mark_price"], pd),
                index_price_ticks=parse_units(s["index_price"], pd),
                last_trade_price_ticks=parse_units(last, pd),
                current_funding_rate=Decimal(str(s.get("current_funding_rate") or "0")),
                funding_timestamp_ms=int(s.get("funding_timestamp") or 0),
                ts_ns=now_ns,
            )

    # --- status ---------------------------------------------------------------------------------
    def status(self) -> dict[int, Any]:
        return {
            m: {
                "in_sync": bk.in_sync(),
                "nonce": bk.nonce,
                "snapshots": bk.snapshots,
                "gaps": bk.gaps,
                "dropped_pre_snapshot": bk.dropped_pre_snapshot,
                "malformed": bk.malformed,
            }
            for m, bk in self.books.items()
        }


def market_of(markets: dict[int, MarketInfo], m: Any) -> MarketInfo | None:
    """The metadata of market id ``m`` (an int or its text), None when unknown or malformed."""
    try:
        return markets.get(int(m))
    except (TypeError, ValueError):
        return None
