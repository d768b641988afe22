"""A tape as the simulator's market: the other participants of a backtest (docs/backtest.md).

``TapeReplay`` is the replayed counterpart of the synthetic ``MarketFlow`` (mmfast.sim.flow):
it drives the ``Exchange`` from a tape's events (``mmfast.tape``), applied at their times.

- **The book is the tape's.** Each price level of the tape is one resting order of the tape's
  maker account, its size the tape's; a delta resizes, adds or removes those orders, a
  snapshot replaces them all. Our orders rest among them, so the published book is the
  tape's plus ours. A tape level that arrives through one of our resting orders trades with
  it (the engine's matching: we are the maker, at our price); one that arrives through the
  tape's own opposite side (a momentarily crossed feed) removes those stale levels first.
- **Our orders take the tape's liquidity.** An order of ours that crosses the book trades
  against those level orders as on the venue (taker fills at the tape's prices; a post-only
  one is canceled as the venue does), after the venue's speed bump.
- **Tape trades fill us by the queue model** (``mmfast.sim.queue``). Each trade is published
  (between the tape's two accounts); then, on its passive side, each of our resting orders at
  a price the trade went through is filled in full, and one at the trade's price has its queue
  position advanced, the part beyond the queue filling it. A level's size changes move our
  queue positions there as the model says.
- **No market impact.** Our fills do not change the tape: its later messages set the levels'
  sizes as recorded. What our taker fills took from a level stays taken until the tape next
  updates that level; our passive fills come on top of the recorded trade, whose volume the
  tape's participants got in full as well.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from mmfast.sim.engine import TIF_GTT, Exchange, Order
from mmfast.sim.queue import QueueModel, QueuePos, filled
from mmfast.tape.events import (
    TAKER_BUY,
    TAKER_SELL,
    BookEvent,
    Event,
    GapEvent,
    StatsEvent,
    TradeEvent,
)

__all__ = ["ReplayStats", "TapeReplay", "group_by_time"]


@dataclass(slots=True)
class ReplayStats:
    """What the replay did (the backtest's summary prints it)."""

    events: int = 0
    books: int = 0
    snapshots: int = 0
    trades: int = 0
    gaps: int = 0
    stats: int = 0
    crossed_levels_removed: int = 0  # tape levels through the tape's own opposite side
    unknown_side_trades: int = 0  # trades whose taker side could not be told (no fills)
    queue_fills: int = 0  # our fills by trades at our price, past the queue
    through_fills: int = 0  # our fills by trades through our price
    crossing_fills: int = 0  # our fills by tape levels arriving through our price
    filled_lots: int = 0  # lots of ours filled by the tape (all three kinds)
    by_market: dict[int, int] = field(default_factory=dict)  # events per market

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


class _Market:
    """Replay state of one market."""

    __slots__ = ("asks", "bids", "market", "ours", "stats_seen")

    def __init__(self, market: int) -> None:
        self.market = market
        # price -> the tape order showing that level (its remaining may trail the tape's size
        # after our taker fills) and the tape's size there
        self.bids: dict[int, list[Any]] = {}
        self.asks: dict[int, list[Any]] = {}
        self.ours: dict[int, tuple[Order, QueuePos]] = {}  # order_index -> our resting order
        self.stats_seen = False  # a venue mark price came (else the mark follows the mid)

    def side(self, is_ask: bool) -> dict[int, list[Any]]:
        return self.asks if is_ask else self.bids


class TapeReplay:
    """Drives ``exchange``'s markets from tape events (see the module doc). ``apply(events)``
    applies events due at one time; the simulator calls it on the tape's schedule."""

    def __init__(
        self,
        exchange: Exchange,
        model: QueueModel,
        *,
        maker_account: int = 900,
        taker_account: int = 901,
        collateral: int = 10**18,
    ) -> None:
        self.ex = exchange
        self.model = model
        self.maker = maker_account
        self.taker = taker_account
        for idx in (maker_account, taker_account):
            if idx not in exchange.accounts:
                exchange.add_account(idx, collateral, api_key_indexes=())
        self._tape_accounts = frozenset((maker_account, taker_account))
        self.markets: dict[int, _Market] = {m: _Market(m) for m in exchange.markets}
        self.stats = ReplayStats()
        exchange.on_rest = self._on_rest

    # ------------------------------------------------------------------ our orders
    def _on_rest(self, o: Order) -> None:
        """An order of ours starts resting: the size displayed at its price is ahead of it."""
        if o.account in self._tape_accounts:
            return
        rm = self.markets.get(o.market)
        if rm is None:
            return
        lv = rm.side(o.is_ask).get(o.price)
        shown = lv[0].remaining if lv is not None and lv[0].live else 0
        rm.ours[o.order_index] = (o, self.model.new(shown))

    def queue_position(self, order_index: int) -> float | None:
        """Lots ahead of one of our resting orders (None when it is not resting)."""
        for rm in self.markets.values():
            e = rm.ours.get(order_index)
            if e is not None and e[0].live:
                return e[1].ahead
        return None

    def _ours(self, rm: _Market, is_ask: bool) -> list[tuple[Order, QueuePos]]:
        """Our live orders of one side, in matching order (best price first, then time)."""
        live = []
        dead = []
        for oid, (o, q) in rm.ours.items():
            if not o.live:
                dead.append(oid)
            elif o.is_ask == is_ask:
                live.append((o, q))
        for oid in dead:
            del rm.ours[oid]
        live.sort(key=lambda e: (e[0].price if is_ask else -e[0].price, e[0].seq))
        return live

    # ------------------------------------------------------------------ events
    def apply(self, events: Iterable[Event]) -> None:
        """Apply events (of one time, in tape order), then publish the book changes."""
        for ev in events:
            self.stats.events += 1
            k = ev.kind
            if k == "book":
                self._book(ev)  # type: ignore[arg-type]
            elif k == "trade":
                self._trade(ev)  # type: ignore[arg-type]
            elif k == "stats":
                self._mark(ev)  # type: ignore[arg-type]
            else:
                self._gap(ev)  # type: ignore[arg-type]
        self.ex.flush_books()

    def _gap(self, ev: GapEvent) -> None:
        # The recorder lost the stream: nothing is known until the next snapshot, which
        # replaces the book; meanwhile the book stays as it was last seen.
        self.stats.gaps += 1

    def _mark(self, ev: StatsEvent) -> None:
        rm = self.markets.get(ev.market)
        if rm is None:
            return
        self.stats.stats += 1
        rm.stats_seen = True
        if self.ex.markets[ev.market].mark_price != ev.mark_price:
            self.ex.set_mark_price(ev.market, ev.mark_price)

    def _book(self, ev: BookEvent) -> None:
        rm = self.markets.get(ev.market)
        if rm is None:
            return
        st = self.stats
        st.books += 1
        st.by_market[ev.market] = st.by_market.get(ev.market, 0) + 1
        changes: list[tuple[bool, int, int]] = []  # (is_ask, price, size)
        if ev.snapshot:
            st.snapshots += 1
            new_b, new_a = dict(ev.bids), dict(ev.asks)
            changes += [(False, p, 0) for p in rm.bids if p not in new_b]
            changes += [(True, p, 0) for p in rm.asks if p not in new_a]
        changes += [(False, p, q) for p, q in ev.bids]
        changes += [(True, p, q) for p, q in ev.asks]
        # Decreases first, then what grows or appears, nearest the other side last: a
        # message that moves the book never crosses it halfway through.
        shrink: list[tuple[bool, int, int]] = []
        grow: list[tuple[bool, int, int]] = []
        for is_ask, p, q in changes:
            lv = rm.side(is_ask).get(p)
            (grow if q > (lv[1] if lv is not None else 0) else shrink).append((is_ask, p, q))
        grow.sort(key=lambda c: c[1] if not c[0] else -c[1])
        for is_ask, p, q in shrink:
            self._set_level(rm, is_ask, p, q)
        for is_ask, p, q in grow:
            self._set_level(rm, is_ask, p, q)
        if not rm.stats_seen:
            self._mark_from_mid(rm)

    def _set_level(self, rm: _Market, is_ask: bool, price: int, size: int) -> None:
        side = rm.side(is_ask)
        lv = side.get(price)
        prev = lv[1] if lv is not None else 0
        if size == prev and (lv is None or (lv[0].live and lv[0].remaining == size)):
            return  # as shown already (a level our taker fills took from is shown again)
        ex = self.ex
        if size <= 0:
            if lv is not None:
                ex.cancel_direct(lv[0], flush=False)
                del side[price]
        elif lv is not None and lv[0].live:
            ex.resize_direct(lv[0], size)
            lv[1] = size
        else:
            self._uncross(rm, is_ask, price)
            # Through one of our orders it trades with it first (we are the maker); taken
            # whole, it is kept dead until the tape updates the level again.
            o = ex.place_direct(
                self.maker, rm.market, is_ask, price, size, tif=TIF_GTT, flush=False
            )
            self._count_crossing(rm, o)
            side[price] = [o, size]
        # Our orders resting at this price: the level's size moved.
        if size != prev:
            for oid, (o, q) in list(rm.ours.items()):
                if o.live and o.is_ask == is_ask and o.price == price:
                    self.model.depth(q, prev, max(size, 0))
                elif not o.live:
                    del rm.ours[oid]

    def _uncross(self, rm: _Market, is_ask: bool, price: int) -> None:
        """A tape level arriving through the tape's own opposite levels: those are stale."""
        opp = rm.side(not is_ask)
        stale = [p for p in opp if (p >= price if is_ask else p <= price)]
        for p in stale:
            o = opp.pop(p)[0]
            self.ex.cancel_direct(o, flush=False)
            self.stats.crossed_levels_removed += 1

    def _count_crossing(self, rm: _Market, o: Order) -> None:
        # The level order traded with ours on arrival: filled_base is what it took.
        if o.filled_base:
            self.stats.crossing_fills += 1
            self.stats.filled_lots += o.filled_base

    def _mark_from_mid(self, rm: _Market) -> None:
        bb = max(rm.bids) if rm.bids else None
        ba = min(rm.asks) if rm.asks else None
        if bb is None or ba is None:
            return
        mid = (bb + ba) // 2
        if mid > 0 and self.ex.markets[rm.market].mark_price != mid:
            self.ex.set_mark_price(rm.market, mid)

    def _trade(self, ev: TradeEvent) -> None:
        rm = self.markets.get(ev.market)
        if rm is None:
            return
        st = self.stats
        st.trades += 1
        st.by_market[ev.market] = st.by_market.get(ev.market, 0) + 1
        taker = ev.taker
        if taker not in (TAKER_BUY, TAKER_SELL):
            taker = self._infer_side(rm, ev.price)
        buy = taker == TAKER_BUY if taker else ev.price >= self._mid(rm, ev.price)
        # The trade itself, between the tape's two accounts (trade feed, stats, last price).
        self.ex.external_trade(
            self.taker, self.maker, ev.market, buy, ev.size, ev.price, flush=False
        )
        if not taker:
            st.unknown_side_trades += 1
            return
        # Its passive side: asks for a buyer, bids for a seller.
        for o, q in self._ours(rm, is_ask=buy):
            through = o.price < ev.price if buy else o.price > ev.price
            if through:
                self._fill(o, o.remaining, "through")
            elif o.price == ev.price:
                self.model.trade(q, ev.size)
                n = filled(q)
                if n:
                    q.ahead = 0.0  # at the front now: the next trade here reaches us first
                    self._fill(o, n, "queue")
            else:
                break  # sorted best first: the rest are beyond the trade's price

    def _fill(self, o: Order, lots: int, how: str) -> None:
        t = self.ex.fill_resting(o, lots, self.taker)
        if t is None:
            return
        st = self.stats
        st.filled_lots += t["size"]
        if how == "through":
            st.through_fills += 1
        else:
            st.queue_fills += 1

    @staticmethod
    def _best(rm: _Market) -> tuple[int | None, int | None]:
        bb = max(rm.bids) if rm.bids else None
        ba = min(rm.asks) if rm.asks else None
        return bb, ba

    def _infer_side(self, rm: _Market, price: int) -> int:
        """A trade without a taker side: at or through the ask a buyer, at or through the bid
        a seller; inside the spread unknown."""
        bb, ba = self._best(rm)
        if ba is not None and price >= ba:
            return TAKER_BUY
        if bb is not None and price <= bb:
            return TAKER_SELL
        return 0

    def _mid(self, rm: _Market, default: int) -> int:
        bb, ba = self._best(rm)
        return default if bb is None or ba is None else (bb + ba) // 2


def group_by_time(events: Iterable[Event], step_ns: int = 1) -> Iterator[tuple[int, list[Event]]]:
    """(time, the events due then) in order: each event's time rounded up to a multiple of
    ``step_ns`` (1: as recorded), the events of one step together, in tape order."""
    batch: list[Event] = []
    t = None
    for ev in events:
        due = -(-ev.t_ns // step_ns) * step_ns
        if due != t and batch:
            yield t, batch  # type: ignore[misc]
            batch = []
        t = due
        batch.append(ev)
    if batch:
        yield t, batch  # type: ignore[misc]
