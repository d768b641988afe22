"""``AccountStreams``: the account part of the Lighter connector.

One authenticated WebSocket (``stream``) with ``account_orders/<m>/<account>`` per configured
market, ``account_all_trades``, ``account_all_positions`` and ``user_stats``. Each subscription
is a readiness condition ``stream:<key>`` (holding from its first frame until the stream goes
down). What the frames carry goes

- to order entry (``entry``: the ``OrderEntry`` whose ``OrderTracker`` turns orders, fills and
  positions into ``Order`` states, ``Fill`` and ``Position`` events), when the connector has one;
- to an optional ``AccountListener``;
- into the raw state kept here: ``account_orders`` (market -> order_index -> the venue's last
  order dict, every order of the account, ours and others'; a snapshot clears a market's dict:
  ``open_orders``, a diagnostic count; the orders themselves are the tracker's),
  ``positions`` (``VenuePosition`` per market, a full snapshot each frame) and ``user_stats``
  (the venue's dict; the strategies' margin figures).

A reconnect (not the first connect) calls ``on_reconnect`` (the connector: nonce refresh before
any send, then reconciliation); a failed private subscription drops the cached auth token.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from decimal import InvalidOperation
from typing import TYPE_CHECKING, Any, Protocol

from mmfast._core.book import BookError
from mmfast.connector.lighter.listener import stream_listener
from mmfast.connector.lighter.market_data import market_of
from mmfast.connector.lighter.markets import USDC_DECIMALS, MarketInfo
from mmfast.connector.lighter.tracker import LIVE_VENUE_STATUSES
from mmfast.connector.lighter.ws import Subscription, WsStream
from mmfast.core.log import get_logger
from mmfast.core.units import parse_units

if TYPE_CHECKING:
    from collections.abc import Callable

    from mmfast.connector.lighter.auth import TokenCache
    from mmfast.connector.lighter.config import LighterConfig
    from mmfast.connector.lighter.orders import OrderEntry
    from mmfast.connector.lighter.readiness import Readiness, Signals
    from mmfast.connector.lighter.skew import SkewMonitor
    from mmfast.connector.lighter.ws import StreamHalted

__all__ = ["AccountListener", "AccountStreams", "VenuePosition"]

_log = get_logger("connector.lighter")


@dataclass(frozen=True, slots=True)
class VenuePosition:
    """A position as the venue reports it (account_all_positions); the venue is authoritative."""

    market: int
    size_lots: int  # signed: long > 0
    avg_entry_price_ticks: int
    unrealized_pnl_micro: int
    realized_pnl_micro: int


class AccountListener(Protocol):
    """Receives account-stream content (besides order entry's tracker)."""

    def on_account_orders(
        self, market: int, orders: list[dict[str, Any]], snapshot: bool
    ) -> None: ...
    def on_account_trades(
        self, market: int, trades: list[dict[str, Any]], snapshot: bool
    ) -> None: ...
    def on_positions(self, positions: dict[int, VenuePosition]) -> None: ...
    def on_user_stats(self, stats: dict[str, Any]) -> None: ...


class AccountStreams:
    """The account streams of one account (see the module doc)."""

    def __init__(
        self,
        config: LighterConfig,
        tokens: TokenCache,
        readiness: Readiness,
        signals: Signals,
        skew: SkewMonitor,
        markets: dict[int, MarketInfo],
        *,
        on_halt: Callable[[WsStream, StreamHalted], None],
        on_reconnect: Callable[[str], None],
        listener: AccountListener | None = None,
    ) -> None:
        self.config = config
        self._tokens = tokens
        self._readiness = readiness
        self._signals = signals
        self._skew = skew
        self._markets = markets  # the market data's metadata (shared dict)
        self.on_halt = on_halt  # the connector's: a halted stream stops everything
        self._on_reconnect = on_reconnect
        self.listener = listener
        self.entry: OrderEntry | None = None  # order entry, set by the connector when it has one
        self.stream: WsStream | None = None
        # market -> order_index -> order; a market's dict is never replaced (cleared in place)
        self.account_orders: dict[int, dict[int, dict[str, Any]]] = {}
        self.positions: dict[int, VenuePosition] = {}
        self.user_stats: dict[str, Any] = {}
        self.bad_messages = 0  # messages with malformed content

    def open(self, stream_args: dict[str, Any], rng: random.Random) -> None:
        """Register the stream conditions and build the stream (not started)."""
        cfg = self.config
        a = cfg.account_index
        subs = [Subscription(f"account_orders/{m}/{a}", True) for m in cfg.markets]
        subs += [
            Subscription(f"account_all_trades/{a}", True),
            Subscription(f"account_all_positions/{a}", True),
            Subscription(f"user_stats/{a}", True),
        ]
        for s in subs:
            self._readiness.add(f"stream:{s.key}", "no first frame yet")
        self.stream = WsStream(
            "ws.account",
            cfg.ws_url,
            subs,
            stream_listener(self),
            token=self._tokens.get,
            rng=rng,
            **stream_args,
        )

    async def stop(self) -> None:
        if self.stream is not None:
            await self.stream.stop()

    def open_orders(self, market: int) -> int | None:
        """The account's orders in ``market`` the order stream shows live; None while any
        subscription lacks its first frame since the last connect (the view may be stale)."""
        if not self.all_subscribed():
            return None
        return sum(
            1
            for o in self.account_orders.get(market, {}).values()
            if o.get("status") in LIVE_VENUE_STATUSES
        )

    def all_subscribed(self) -> bool:
        """Every subscription has had its first frame since the last connect."""
        s = self.stream
        return s is not None and all(s.is_subscribed(k) for k in s.subscriptions)

    # --- stream hooks ---------------------------------------------------------------------------
    def on_stream_up(self, stream: WsStream) -> None:
        _log.debug("%s connected", stream.name)
        if stream.connects > 1:
            self._on_reconnect("account stream reconnected")

    def on_stream_down(self, stream: WsStream, reason: str) -> None:
        _log.info("%s down: %s", stream.name, reason)
        for key in stream.subscriptions:
            self._readiness.set(f"stream:{key}", False, f"stream down: {reason}")
        self._signals.pull(None, f"account stream down: {reason}")

    def on_subscribed(self, stream: WsStream, key: str) -> None:
        self._readiness.set(f"stream:{key}", True)

    def on_subscribe_failed(self, stream: WsStream, key: str, code: int, message: str) -> None:
        _log.warning("%s: subscribe %s failed: %d %s", stream.name, key, code, message)
        if stream.subscriptions[key].private:
            self._tokens.invalidate()

    def on_venue_time(self, venue_ms: int) -> None:
        self._skew.sample(venue_ms)

    def on_message(self, stream: WsStream, msg: dict[str, Any], now_ns: int) -> None:
        typ = msg.get("type", "")
        kind = typ.partition("/")[2]
        snapshot = typ.startswith("subscribed/")
        try:
            if kind in ("account_orders", "account_all_orders"):
                self._on_account_orders(msg, snapshot)
            elif kind == "account_all_trades":
                self._on_account_trades(msg, snapshot)
            elif kind == "account_all_positions":
                self._on_positions(msg)
            elif kind == "user_stats":
                stats = msg.get("stats")
                if isinstance(stats, dict):
                    self.user_stats = stats
                    if self.listener is not None:
                        self.listener.on_user_stats(stats)
        except (BookError, ValueError, TypeError, KeyError, AttributeError, InvalidOperation):
            self.bad_messages += 1

    def _on_account_orders(self, msg: dict[str, Any], snapshot: bool) -> None:
        orders = msg.get("orders")
        if not isinstance(orders, dict):
            raise ValueError("orders must be an object")
        for mkey, lst in orders.items():
            market = int(mkey)
            if not isinstance(lst, list):
                raise ValueError("orders per market must be a list")
            book = self.account_orders.setdefault(market, {})
            if snapshot:
                book.clear()
            for o in lst:
                book[int(o["order_index"])] = o
            if self.entry is not None:
                self.entry.on_account_orders(market, lst, snapshot)
            if self.listener is not None:
                self.listener.on_account_orders(market, lst, snapshot)

    def _on_account_trades(self, msg: dict[str, Any], snapshot: bool) -> None:
        trades = msg.get("trades")
        if not isinstance(trades, dict):
            raise ValueError("trades must be an object")
        for mkey, lst in trades.items():
            if self.entry is not None:
                self.entry.on_account_trades(int(mkey), list(lst), snapshot)
            if self.listener is not None:
                self.listener.on_account_trades(int(mkey), list(lst), snapshot)

    def _on_positions(self, msg: dict[str, Any]) -> None:
        positions = msg.get("positions")
        if not isinstance(positions, dict):
            raise ValueError("positions must be an object")
        out: dict[int, VenuePosition] = {}
        for mkey, p in positions.items():
            info = market_of(self._markets, mkey)
            if info is None:
                continue
            size = parse_units(p["position"], info.size_decimals)
            sign = p.get("sign", 1)
            out[info.market_id] = VenuePosition(
                market=info.market_id,
                size_lots=-size if sign == -1 else size,
                avg_entry_price_ticks=_lenient(p.get("avg_entry_price"), info.price_decimals),
                unrealized_pnl_micro=_lenient(p.get("unrealized_pnl"), USDC_DECIMALS),
                realized_pnl_micro=_lenient(p.get("realized_pnl"), USDC_DECIMALS),
            )
        self.positions = out  # a full snapshot each frame: absent market = flat
        if self.entry is not None:
            self.entry.on_positions_msg(msg)
        if self.listener is not None:
            self.listener.on_positions(out)


def _lenient(v: Any, decimals: int) -> int:
    """A decimal string with possibly fewer or more digits than ``decimals`` -> int units,
    rounded toward zero (display values such as avg_entry_price); 0 when absent. Signed, padded,
    "5." / ".5" accepted (what a Decimal took, exponents aside); UnitsError otherwise."""
    if not isinstance(v, str) or not v:
        return 0
    return parse_units(v, decimals, sign="+-", extra="truncate", loose=True, strip=True)
