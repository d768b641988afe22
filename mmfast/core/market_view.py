"""``MarketView``: one typed view of a market, what a strategy reads from its connector.

Built once per (connector, market) when the connector has started (``connector.market_view(m)``,
see ``LighterConnector.market_view``) and handed to the strategy (``StrategyBase`` asks for it
at start through ``view_of``; a test may pass one). Slotted; every read is an attribute read
(plus one dict lookup for what a refresh replaces), nothing is allocated per read:

- ``book``: the market's ``OrderBook`` itself (updated in place by the stream);
- ``info``: the market's current metadata (``MarketInfo``), looked up on each read since a
  metadata refresh replaces it; ``stats``: the latest ``MarketStats`` (replaced per message);
- ``trades``: the market's recent public trades (a deque kept by the market-data part);
- ``ready``: the connector's readiness;
- ``loop_ran(now_ns)``: False once when the event loop was found stalled (the connector's
  ``StallWatch`` reports it then: pull, nonce refresh, reconciliation), else True;
- ``user_stats``: the venue's account figures (margin), replaced per message;
- ``budget``: the connector's rate budget (None without one);
- ``in_flight()``: order txs in flight for the market (the larger of the market's count and
  every pending tx), 0 without order entry;
- ``order_record(coi)``: the tracker's record of one of our orders (``TrackedOrder``: the
  ``Order`` and what the venue last said of it), None without order entry or when unknown;
  ``venue_statuses()``: the venue's last status per order of the market the tracker knows
  (ours and others'); the tracker is the one owner of order truth;
- ``active_orders()``: the account's open orders in the market over REST (diagnostics);
- ``direct_sender()``: order entry's signer-and-socket for a compiled step's first tx;
- ``attach_step(step)``: route the market's book frames to a compiled step
  (``step(data, now_ns) -> book code``, which applies them to ``book`` itself); False when the
  connector has no such route (the strategy then plans on its book events).

The view reads from *sources* with fixed attribute names: market data (``markets``,
``stats``), readiness (``ready``), the account (``user_stats``) and order entry
(``in_flight_of(market)``, ``pending_txs``, ``tracker``). Venue-neutral: any connector whose
parts have these names builds one with the constructor. Connectors without ``market_view``
(test fakes) get one from ``view_of``, which reads their plain attributes (``books``,
``markets``, ``stats``, ``trades``, ``ready``, ``user_stats``, ``budget``, ``orders``,
``rest``, ``config.account_index``): the one place that falls back with ``getattr``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

__all__ = ["MarketView", "view_of"]


class _Always:
    """Sources of a connector without the part: always ready, no account figures."""

    __slots__ = ()
    ready: Final = True
    user_stats: Final[Mapping[str, Any]] = {}
    markets: Final[Mapping[int, Any]] = {}
    stats: Final[Mapping[int, Any]] = {}


_NONE: Final = _Always()


class MarketView:
    """What a strategy reads of one market (see the module doc)."""

    __slots__ = (
        "_account",
        "_account_index",
        "_entry",
        "_md",
        "_ready",
        "_rest",
        "_stall",
        "_steps",
        "book",
        "budget",
        "market",
        "trades",
    )

    def __init__(
        self,
        market: int,
        *,
        book: Any = None,
        market_data: Any = None,
        trades: Any = (),
        readiness: Any = None,
        account: Any = None,
        entry: Any = None,
        budget: Any = None,
        rest: Any = None,
        account_index: int | None = None,
        steps: Any = None,
        stall: Any = None,
    ) -> None:
        self.market = market  # the market id
        self.book = book  # the market's OrderBook (None: none yet)
        self.trades = trades  # recent public trades of the market (oldest first)
        self.budget = budget  # the connector's rate budget (None: unlimited)
        self._md = _NONE if market_data is None else market_data  # .markets, .stats
        self._ready = _NONE if readiness is None else readiness  # .ready
        self._account = _NONE if account is None else account  # .user_stats
        # .in_flight_of(market), .pending_txs, .tracker (None: no order entry)
        self._entry = entry
        self._rest = rest  # .account_active_orders(account, market) (None: no REST)
        self._account_index = account_index
        self._steps = steps  # .attach_step(market, step) (None: frames go to the book only)
        self._stall = stall  # the loop's StallWatch (None: stalls not watched)

    @property
    def info(self) -> Any:
        """The market's current metadata (None when the venue does not list it)."""
        return self._md.markets.get(self.market)

    @property
    def stats(self) -> Any:
        """The market's latest stats (mark, index, last trade), None before the first."""
        return self._md.stats.get(self.market)

    @property
    def ready(self) -> bool:
        return self._ready.ready

    def loop_ran(self, now_ns: int) -> bool:
        """Whether the event loop ran within the stall threshold of ``now_ns`` (always, when
        stalls are not watched). A timer-driven decision asks first: after a stall it would act
        on what the bot knew before it; the first caller reports the stall."""
        w = self._stall
        return w is None or now_ns - w.last_ns <= w.stall_ns or w.check(now_ns)

    @property
    def user_stats(self) -> Mapping[str, Any]:
        """The venue's account figures (empty before the first message)."""
        return self._account.user_stats

    def order_record(self, coi: int) -> Any:
        """The order tracker's record of our order ``coi`` (``TrackedOrder``), None when
        unknown or without order entry."""
        tracker = getattr(self._entry, "tracker", None)
        return None if tracker is None else tracker.get(coi)

    def venue_statuses(self) -> dict[str, int]:
        """How many orders of this market (ours and others') the tracker last saw in each
        venue status; empty without order entry."""
        tracker = getattr(self._entry, "tracker", None)
        out: dict[str, int] = {}
        if tracker is None:
            return out
        for group in (tracker.orders(), tracker.foreign_orders()):
            for t in group:
                if t.order.market == self.market and t.venue_status is not None:
                    out[t.venue_status] = out.get(t.venue_status, 0) + 1
        return out

    def in_flight(self) -> int:
        """Order txs of this market in flight at the connector (0 without order entry)."""
        e = self._entry
        if e is None:
            return 0
        n: int = e.in_flight_of(self.market)
        p: int = e.pending_txs
        return n if n >= p else p

    def attach_step(
        self,
        step: Callable[[bytes, int], int] | None,
        fast: tuple[Any, Callable[[int, int], object]] | None = None,
    ) -> bool:
        """Route this market's book frames to ``step`` (None: back to the book alone);
        ``fast``: (its Pipeline, ``after(code, now_ns)``) for a compiled listener."""
        if self._steps is None:
            return False
        return bool(self._steps.attach_step(self.market, step, fast))

    def direct_sender(self) -> Any:
        """Order entry's way for a compiled step to sign and send a tx itself
        (``OrderEntry.direct_sender``), None when the connector has none (another signer, no
        order WebSocket, no order entry)."""
        e = self._entry
        if e is None or not hasattr(type(e), "direct_sender"):
            return None
        return e.direct_sender(self.market)

    async def active_orders(self) -> list[dict[str, Any]] | None:
        """The account's open orders in this market over REST; None without REST."""
        if self._rest is None or self._account_index is None:
            return None
        return list(await self._rest.account_active_orders(self._account_index, self.market))


class _Attrs:
    """The sources of a connector that only has plain attributes (test fakes), read live."""

    __slots__ = ("_c",)

    def __init__(self, connector: Any) -> None:
        self._c = connector

    @property
    def markets(self) -> Mapping[int, Any]:
        return getattr(self._c, "markets", None) or {}

    @property
    def stats(self) -> Mapping[int, Any]:
        return getattr(self._c, "stats", None) or {}

    @property
    def ready(self) -> bool:
        return bool(getattr(self._c, "ready", True))

    @property
    def user_stats(self) -> Mapping[str, Any]:
        return getattr(self._c, "user_stats", None) or {}


def view_of(connector: Any, market: int) -> MarketView:
    """The connector's view of ``market``: ``connector.market_view(market)`` when it has one,
    else a view over its plain attributes (the readiness, stats, metadata and user stats read
    live; the book, trades and budget taken now)."""
    build = getattr(connector, "market_view", None)
    if build is not None:
        view: MarketView = build(market)
        return view
    c = connector
    books = getattr(c, "books", None) or {}
    trades = (getattr(c, "trades", None) or {}).get(market) or ()
    budget = getattr(c, "budget", None)
    orders = getattr(c, "orders", None)
    entry = orders if hasattr(orders, "in_flight_of") else None
    src = _Attrs(c)
    return MarketView(
        market,
        book=books.get(market),
        market_data=src,
        trades=trades,
        readiness=src,
        account=src,
        entry=entry,
        budget=budget if hasattr(budget, "state") else None,
        rest=getattr(c, "rest", None),
        account_index=getattr(getattr(c, "config", None), "account_index", None),
    )
