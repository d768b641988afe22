"""The core of the bot's hot path with nothing around it, a stamp at every stage (the
reference rows beside the real stack of ``bench.botpath``).

    frame bytes -> book -> quote engine -> minimal diff against the resting quotes -> txs

``CompiledPipeline``: ``OrderBook.apply_frame`` (the byte scanner) and
``QuoteEngine.compute_from_book``. ``PythonPipeline`` is the pure-Python baseline of the same
job: stdlib ``json.loads``, ``ReferenceBook`` (dict + bisect) and the Python quote twin.
``PlannerPipeline`` is the compiled path followed by the requote planner
(``mmfast.strategy.planner.plan_requotes``, compiled) and the pre-trade risk gate
(``mmfast.reference.gate.RiskGate.check``), without the strategy, connector and order entry the real
stack has around them.

The diff: the resting ladder is what the last plan asked for (fills and acks are not part of
these benchmarks, so every tx is taken as done). A level whose (price, size) changed gets one
modify tx; the first one is handed over as soon as it is known, the others follow in level order.
Where the tx goes is a ``Sink``:

- ``step_internal``: a ``ModifyOrderRequest`` put on a ``queue.SimpleQueue``, the queue type
  ``SignerWorker`` reads (no thread drains it while timing);
- ``wire_to_wire``: a pre-signed tx from a pool, sent on the order socket;
- ``tick_to_trade``: ``SignerWorker.submit`` (real signing on the worker thread).

Stage stamps (``time.perf_counter_ns``) go into ``Stamps``: received, book applied, quote
computed, diff done, first tx handed over, all txs handed over.
"""

from __future__ import annotations

import json
import queue
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.l2stream import L2Stream

__all__ = [
    "LADDER",
    "MARKET_MINIMUMS",
    "STAGES",
    "CompiledPipeline",
    "PlannerPipeline",
    "PythonPipeline",
    "QueueSink",
    "Stamps",
]

# One 2 x 5 ladder, the same as the quote micro benchmark.
from bench.micro import LADDER, MARKET_MINIMUMS

STAGES = ("applied", "quoted", "diffed", "first_tx", "all_txs")  # after "received"
FIRST_INDEX = 1_000  # client order indexes of the resting ladder start here


@dataclass(slots=True)
class Stamps:
    """perf_counter_ns at each stage of one frame (0 = stage not reached)."""

    received: int = 0
    applied: int = 0
    quoted: int = 0
    diffed: int = 0
    first_tx: int = 0
    all_txs: int = 0
    n_txs: int = 0


class QueueSink:
    """step_internal's end: a modify request per changed level, put on a SimpleQueue."""

    __slots__ = ("market", "nonce", "put", "queue", "request_type")

    def __init__(self, market: int) -> None:
        from mmfast.connector.lighter.signer import ModifyOrderRequest

        self.request_type = ModifyOrderRequest
        self.market = market
        self.queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.put = self.queue.put
        self.nonce = 0

    def __call__(self, level: int, is_ask: bool, price: int, size: int) -> None:
        self.nonce += 1
        req = self.request_type(
            self.market, FIRST_INDEX + 2 * level + is_ask, size, price, self.nonce
        )
        # The same tuple SignerWorker.submit puts: (request, callback, queued_ns).
        self.put((req, None, time.monotonic_ns()))

    def drain(self) -> int:
        n = 0
        get = self.queue.get_nowait
        try:
            while True:
                get()
                n += 1
        except queue.Empty:
            return n


Sink = Callable[[int, bool, int, int], object]


class _Base:
    """Shared diff logic. Subclasses set ``_apply`` (bytes -> code) and ``_quote`` (-> ladders)."""

    def __init__(self, stream: L2Stream, sink: Sink, position: int = 0) -> None:
        self.stream = stream
        self.sink = sink
        self.position = position
        self.rest_bids: list[tuple[int, int]] = []
        self.rest_asks: list[tuple[int, int]] = []
        self.frames = 0
        self.txs = 0

    def reset(self) -> None:
        """Back to an empty book and no resting quotes (apply the snapshot next)."""
        self.rest_bids = []
        self.rest_asks = []

    def _ladders(self) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        raise NotImplementedError

    def _apply(self, data: bytes) -> int:
        raise NotImplementedError

    def on_frame(self, data: bytes, st: Stamps) -> int:
        """One frame through the whole path; returns the txs handed to the sink."""
        clock = time.perf_counter_ns
        self._apply(data)
        st.applied = clock()
        bids, asks = self._ladders()
        st.quoted = clock()
        rb, ra = self.rest_bids, self.rest_asks
        if bids == rb and asks == ra:
            st.diffed = clock()
            return 0
        sink = self.sink
        n = 0
        # Walk the levels best first; the first changed one goes out before the rest is diffed.
        for is_ask, want, have in ((False, bids, rb), (True, asks, ra)):
            nh = len(have)
            for i, lvl in enumerate(want):
                if i < nh and have[i] == lvl:
                    continue
                if n == 0:
                    st.diffed = clock()
                    sink(i, is_ask, lvl[0], lvl[1])
                    st.first_tx = clock()
                else:
                    sink(i, is_ask, lvl[0], lvl[1])
                n += 1
        st.all_txs = clock()
        st.n_txs = n
        self.rest_bids, self.rest_asks = bids, asks
        self.txs += n
        return n


class CompiledPipeline(_Base):
    """mmfast: OrderBook.apply_frame (byte scanner) -> QuoteEngine.compute_from_book."""

    name = "mmfast (apply_frame + QuoteEngine, compiled)"

    def __init__(self, stream: L2Stream, sink: Sink, position: int = 0) -> None:
        super().__init__(stream, sink, position)
        from mmfast._core.book import OrderBook
        from mmfast._core.quote import QuoteEngine, QuoteParams

        cfg = stream.config
        self._new_book = lambda: OrderBook(cfg.market_id, cfg.price_decimals, cfg.size_decimals)
        self.book = self._new_book()
        self.engine = QuoteEngine(QuoteParams(**LADDER), **MARKET_MINIMUMS)
        self._apply = self.book.apply_frame  # type: ignore[method-assign]
        self._compute = self.engine.compute_from_book
        self._bids = self.engine.bids
        self._asks = self.engine.asks

    def _ladders(self) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        self._compute(self.book, self.position)
        return self._bids(), self._asks()

    def top(self) -> tuple[int, int]:
        return self.book.best_bid(), self.book.best_ask()


class PythonPipeline(_Base):
    """Pure-Python baseline: json.loads -> ReferenceBook -> ReferenceQuoteEngine."""

    name = "pure Python (json + ReferenceBook + Python quote)"

    def __init__(self, stream: L2Stream, sink: Sink, position: int = 0) -> None:
        super().__init__(stream, sink, position)
        from mmfast.reference.book import ReferenceBook
        from mmfast.reference.quote import ReferenceQuoteEngine, RefQuoteParams

        cfg = stream.config
        self.book = ReferenceBook(cfg.market_id, cfg.price_decimals, cfg.size_decimals)
        self.engine = ReferenceQuoteEngine(RefQuoteParams(**LADDER), **MARKET_MINIMUMS)
        apply_message = self.book.apply_message
        loads = json.loads
        self._apply = lambda data: apply_message(loads(data))  # type: ignore[method-assign]

    def _ladders(self) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        book = self.book
        self.engine.compute(book.best_bid(), book.best_ask(), self.position)
        return self.engine.bids(), self.engine.asks()

    def top(self) -> tuple[int, int]:
        return self.book.best_bid(), self.book.best_ask()


class PlannerPipeline(CompiledPipeline):
    """The compiled path, then the requote planner (compiled) and the risk gate (Python).

    Live orders are ``mmfast.core.types.Order`` objects; after each plan (untimed part) the
    actions are applied to them as if acknowledged at once, so the next frame plans against
    the ladder the venue would hold."""

    name = "mmfast compiled book, quote and planner + risk gate (Python)"

    def __init__(self, stream: L2Stream, sink: Sink, position: int = 0) -> None:
        super().__init__(stream, sink, position)
        from mmfast.core.types import Order, OrderStatus, Side
        from mmfast.reference.gate import RiskGate
        from mmfast.risk.limits import (
            MarketRules,
            RiskLimits,
            RiskReason,
            RiskState,
        )
        from mmfast.strategy.planner import ActionKind, PlannerParams, plan_requotes

        cfg = stream.config
        self._Order, self._Status, self._Side = Order, OrderStatus, Side
        self._Kind = ActionKind
        self._plan = plan_requotes
        self._params = PlannerParams()
        rules = MarketRules(
            market=cfg.market_id,
            price_decimals=cfg.price_decimals,
            size_decimals=cfg.size_decimals,
            min_size_lots=MARKET_MINIMUMS["min_size_lots"],
            min_notional=MARKET_MINIMUMS["min_notional"],
        )
        limits = RiskLimits(
            max_position_lots=10**9,
            max_order_notional=10**15,
            max_open_orders=100,
            price_band_bps=5_000,
            order_rate_cap=10**9,
            order_rate_window_ns=1_000_000_000,
            require_margin_stats=False,
        )
        self.state = RiskState(
            mark_price=stream.tops[0][0], book_in_sync=True, connector_ready=True
        )
        self.gate = RiskGate(limits, rules, self.state)
        self._ok = RiskReason.OK
        self.live: list[Any] = []
        self._next_index = FIRST_INDEX
        self.denied = 0

    def reset(self) -> None:
        super().reset()
        self.live = []

    def on_frame(self, data: bytes, st: Stamps) -> int:
        clock = time.perf_counter_ns
        self._apply(data)
        st.applied = clock()
        book = self.book
        self._compute(book, self.position)
        bids, asks = self._bids(), self._asks()
        st.quoted = clock()
        plan = self._plan(bids, asks, self.live, now_ns=st.received)
        st.diffed = clock()
        actions = plan.actions
        if not actions:
            return 0
        state = self.state
        state.mark_price = book.best_bid()
        check = self.gate.check
        sink = self.sink
        first = True
        sent = 0
        for a in actions:
            if check(a.side, a.price_ticks, a.size_lots, modify_of=a.order) != self._ok:
                self.denied += 1
                continue
            sink(a.level, a.side is self._Side.SELL, a.price_ticks, a.size_lots)
            sent += 1
            if first:
                st.first_tx = clock()
                first = False
        st.all_txs = clock()
        st.n_txs = sent
        self._settle(actions)
        self.txs += sent
        return sent

    def _settle(self, actions: Any) -> None:
        """Untimed bookkeeping: the plan's txs as if acknowledged."""
        kind = self._Kind
        for a in actions:
            if a.kind is kind.CREATE:
                self._next_index += 1
                self.live.append(
                    self._Order(
                        client_order_index=self._next_index,
                        market=self.stream.config.market_id,
                        side=a.side,
                        price_ticks=a.price_ticks,
                        size_lots=a.size_lots,
                        status=self._Status.OPEN,
                    )
                )
            elif a.kind is kind.MODIFY:
                a.order.price_ticks = a.price_ticks
                a.order.size_lots = a.size_lots
            else:
                self.live = [o for o in self.live if o is not a.order]
        self.state.set_orders(self.live)
