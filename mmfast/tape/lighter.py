"""Lighter's public WebSocket messages -> normalized tape events (``mmfast.tape.events``).

The messages are the venue's, as the connector receives them (docs/connector.md):
``subscribed/order_book`` (a snapshot) and ``update/order_book`` (a delta whose
``begin_nonce`` is the previous message's ``nonce``; sizes absolute, "0" deletes), ``update/trade``
(``trades`` and ``liquidation_trades``; ``is_maker_ask`` tells the taker's side) and
``subscribed|update/market_stats`` (one market, or every market by id). Decimal strings are
parsed exactly by the one units parser (``mmfast.core.units.parse_units``).

The nonce chain is checked per market: a delta that does not chain, or a book message that
cannot be parsed, is a gap (``GapEvent``) and the market's deltas are dropped until its next
snapshot, so a replayed book is never built from a broken chain.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from mmfast.core.units import parse_units
from mmfast.tape.events import (
    TAKER_BUY,
    TAKER_SELL,
    BookEvent,
    Event,
    GapEvent,
    Levels,
    ReadStats,
    StatsEvent,
    TapeMarket,
    TradeEvent,
)

__all__ = ["LighterNormalizer"]


class LighterNormalizer:
    """Turns the venue's messages of the tape's markets into events (see the module doc)."""

    def __init__(self, markets: tuple[TapeMarket, ...], stats: ReadStats) -> None:
        self._markets = {m.market_id: m for m in markets}
        self._stats = stats
        self._nonce: dict[int, int] = {}  # market -> nonce of the last applied book message
        self._in_sync: dict[int, bool] = {m: False for m in self._markets}

    def events(self, msg: Any, t_ns: int) -> Iterator[Event]:
        """The events of one message received at ``t_ns``."""
        if not isinstance(msg, dict):
            self._stats.skip("not a JSON object")
            return
        typ = msg.get("type")
        if not isinstance(typ, str):
            self._stats.skip("message without a type")
            return
        verb, _, kind = typ.partition("/")
        if kind == "order_book" and verb in ("subscribed", "update"):
            ev = self._book(msg, t_ns, verb == "subscribed")
            if ev is not None:
                yield ev
        elif kind == "trade" and verb == "update":
            yield from self._trades(msg, t_ns)
        elif kind == "trade" and verb == "subscribed":
            self._stats.skip("trade history of a subscribe")  # trades from before the tape
        elif kind == "market_stats" and verb in ("subscribed", "update"):
            yield from self._market_stats(msg, t_ns)
        else:
            self._stats.skip(f"{typ} message")

    def gap(self, markets: tuple[int, ...]) -> None:
        """The recorder lost these markets' stream: deltas wait for the next snapshot."""
        for m in markets:
            if m in self._in_sync:
                self._in_sync[m] = False

    # ------------------------------------------------------------------ book
    def _market_of_channel(self, msg: dict[str, Any]) -> TapeMarket | None:
        channel = msg.get("channel")
        if not isinstance(channel, str) or ":" not in channel:
            return None
        try:
            mid = int(channel.rpartition(":")[2])
        except ValueError:
            return None
        return self._markets.get(mid)

    def _book(self, msg: dict[str, Any], t_ns: int, snapshot: bool) -> Event | None:
        m = self._market_of_channel(msg)
        if m is None:
            self._stats.skip("book message of a market not on the tape")
            return None
        mid = m.market_id
        book = msg.get("order_book")
        try:
            if not isinstance(book, dict):
                raise ValueError("no order_book object")
            nonce = book.get("nonce")
            if type(nonce) is not int:
                raise ValueError("nonce is not an integer")
            if not snapshot:
                begin = book.get("begin_nonce")
                if not self._in_sync[mid]:
                    self._stats.skip("book delta while out of sync")
                    return None
                if begin != self._nonce[mid]:
                    self._in_sync[mid] = False
                    self._stats.skip("book delta breaking the nonce chain")
                    return GapEvent(
                        t_ns, (mid,), f"nonce chain broken at {begin} (expected {self._nonce[mid]})"
                    )
            bids = self._levels(book.get("bids"), m)
            asks = self._levels(book.get("asks"), m)
        except (ValueError, TypeError) as exc:
            was = self._in_sync[mid]
            self._in_sync[mid] = False
            self._stats.skip("malformed book message")
            return GapEvent(t_ns, (mid,), f"malformed book message: {exc}") if was else None
        self._nonce[mid] = nonce
        self._in_sync[mid] = True
        return BookEvent(t_ns, mid, snapshot, bids, asks)

    @staticmethod
    def _levels(raw: Any, m: TapeMarket) -> Levels:
        if not isinstance(raw, list):
            raise ValueError("levels must be a list")
        pd, sd = m.price_decimals, m.size_decimals
        out = []
        for lv in raw:
            if not isinstance(lv, dict):
                raise ValueError("a level must be an object")
            price, size = lv.get("price"), lv.get("size")
            if not isinstance(price, str) or not isinstance(size, str):
                raise ValueError("level price and size must be decimal strings")
            p = parse_units(price, pd, what="price")
            if p <= 0:
                raise ValueError(f"price {price!r} must be > 0")
            out.append((p, parse_units(size, sd, what="size")))
        return tuple(out)

    # ------------------------------------------------------------------ trades and stats
    def _trades(self, msg: dict[str, Any], t_ns: int) -> Iterator[Event]:
        for key in ("trades", "liquidation_trades"):
            items = msg.get(key)
            if items is None:
                continue
            if not isinstance(items, list):
                self._stats.skip("malformed trade message")
                continue
            for t in items:
                ev = self._trade(t, t_ns)
                if ev is not None:
                    yield ev

    def _trade(self, t: Any, t_ns: int) -> Event | None:
        try:
            m = self._markets.get(t["market_id"])
            if m is None:
                self._stats.skip("trade of a market not on the tape")
                return None
            price = parse_units(t["price"], m.price_decimals, what="price")
            size = parse_units(t["size"], m.size_decimals, what="size")
            maker_ask = t["is_maker_ask"]
            if not isinstance(maker_ask, bool) or price <= 0 or size <= 0:
                raise ValueError("bad trade fields")
        except (KeyError, TypeError, ValueError):
            self._stats.skip("malformed trade")
            return None
        # The maker sold: the taker bought.
        return TradeEvent(
            t_ns,
            m.market_id,
            price,
            size,
            TAKER_BUY if maker_ask else TAKER_SELL,
            str(t.get("trade_id", "")),
        )

    def _market_stats(self, msg: dict[str, Any], t_ns: int) -> Iterator[Event]:
        ms = msg.get("market_stats")
        if isinstance(ms, dict) and "market_id" in ms:
            items: list[Any] = [ms]
        elif isinstance(ms, dict):
            items = list(ms.values())
        else:
            self._stats.skip("malformed market_stats message")
            return
        for s in items:
            try:
                m = self._markets.get(s["market_id"])
                if m is None:
                    continue  # market_stats/all carries every market
                pd = m.price_decimals
                mark = parse_units(s["mark_price"], pd, what="mark_price")
                index = parse_units(s.get("index_price") or s["mark_price"], pd, what="index_price")
            except (KeyError, TypeError, ValueError):
                self._stats.skip("malformed market_stats")
                continue
            if mark > 0:
                yield StatsEvent(t_ns, m.market_id, mark, index)
