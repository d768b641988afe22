"""``trend_ladder``: entries laddered in the trend direction, one take-profit per entry level.

Signal: a fast and a slow EMA of the mid (one sample per ``signal_interval_s``); a trend is
``|fast - slow| >= trend_threshold_ticks`` (up: buy entries, down: sell entries). Entries are
post-only, ``entry_offset_ticks`` behind the touch and ``step_ticks`` apart, computed by the
compiled quote engine (so sizes respect the position cap) and kept by the requote planner with
a tolerance of one step. New entries go only in the direction of the exposure already held (a
flip first waits for the take-profits to flatten it), so reduce-only TPs never exceed the
position.

Take-profits (``EntryLevel``): once an entry order has a fill it is frozen (no more modifies:
its fills all come at its one price) and gets one reduce-only post-only TP at entry +/-
``take_profit_ticks``, sized to the level's cumulative fill minus what its TP already closed,
modified up as fills arrive. Sizes are allocated oldest level first; a level whose open size is
below the market's minimum carries it to the next level (or, at the end, onto the last TP), so a
TP of size 0 is never sent (a size-0 reduce-only order means "the whole position" on Lighter)
and::

    sum(TP remaining sizes) == exposure - carried,   0 <= carried < min size

A TP cancelled for crossing (``canceled-post-only``) is re-placed at the better of its target
and the touch + 1 tick, at most ``tp_max_retries`` times per level.

Logs (``mmfast.strategy.tp``): ``tp submit intent:`` (entry/target, post-only, reduce-only, bid/
ask), ``tp placed:`` (client order index), and ``tp verify:`` from the clock's scheduler a few
seconds later (WS presence, REST presence, WS status histogram).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from mmfast._core.quote import MODE_FIXED, QuoteEngine, QuoteParams
from mmfast.core.log import get_logger
from mmfast.core.types import Fill, Order, OrderStatus, Side
from mmfast.strategy.base import StrategyBase
from mmfast.strategy.planner import PlannerParams, plan_requotes

if TYPE_CHECKING:
    from mmfast.conf.schema import TrendLadderConfig
    from mmfast.core.interfaces import OrderConnector

__all__ = ["EntryLevel", "TrendLadder", "allocate_tp_sizes"]

_tp_log = get_logger("strategy.tp")
_IN_MOTION: Final = frozenset(
    {OrderStatus.PENDING_NEW, OrderStatus.UNKNOWN, OrderStatus.PENDING_CANCEL}
)
TP_VERIFY_DELAY_MS: Final = 3000  # tp verify runs this long after a TP is placed (clock time)
_EARLY_FILLS_MAX: Final = 256  # orders whose fills may wait for their placing call to return
_ENTRY_COIS_KEEP: Final = 65_536  # entries whose late fills still open a level
TP_RETRY_S: Final = 0.05  # a TP tx not sent (denied or failed) is retried after this long
TP_LEVELS_SHOWN: Final = 50  # levels listed in the status (the count covers them all)


@dataclass(slots=True)
class EntryLevel:
    """One entry order and its take-profit."""

    entry: Order  # the entry order (frozen once it has a fill)
    side: Side  # entry side (the TP is the opposite)
    price: int  # entry price, ticks (maker fills come at the order's price)
    filled: int = 0  # cumulative entry fill, lots
    tp_filled: int = 0  # lots its TPs closed
    tp: Order | None = None  # current TP order (None: none placed or the last one ended)
    tp_price: int = 0  # price of the next TP (target, or touch+1 after a crossing)
    tp_pending: bool = False  # a TP create/modify/cancel tx is in flight
    retries: int = 0  # re-placements after a cancel for crossing
    gave_up: bool = False  # retries exhausted: no more TPs for this level

    @property
    def exposure(self) -> int:
        """Lots this level holds that its TPs have not closed."""
        return self.filled - self.tp_filled

    def tp_remaining(self) -> int:
        tp = self.tp
        if tp is None or tp.status.is_terminal:
            return 0
        return max(0, tp.remaining_lots)


def allocate_tp_sizes(
    exposures: list[int], current: list[int], min_size: int, lot_step: int = 1
) -> tuple[list[int], int]:
    """TP size per level (oldest first) and the carried remainder.

    ``exposures``: each level's open size; ``current``: its live TP's remaining size (0: none).
    A level keeps its TP when it covers the exposure; otherwise it wants exposure + carry when
    that reaches ``min_size`` (rounded down to ``lot_step``, the rest carried), else keeps what
    it has and carries the difference. A carry left at the end goes onto the last level with a
    TP. Returns ``(sizes, carried)`` with ``sum(sizes) == sum(exposures) - carried`` and
    ``0 <= carried < min_size`` whenever every current size is at most its exposure; no size is
    ever between 0 and the current size unless equal to the exposure.
    """
    sizes: list[int] = []
    carry = 0
    for e, cur in zip(exposures, current, strict=True):
        if cur > e:
            # TP bigger than the exposure (a race): shrink it if allowed, else close it.
            want = e + carry
            want -= want % lot_step
            if want >= min_size:
                sizes.append(want)
                carry = e + carry - want
            else:
                sizes.append(0)
                carry += e
            continue
        want = e + carry
        if want == cur and cur > 0:
            sizes.append(cur)
            carry = 0
            continue
        placed = want - want % lot_step
        if placed >= min_size:
            sizes.append(placed)
            carry = want - placed
        else:
            sizes.append(cur)
            carry = want - cur
    if carry:
        for i in range(len(sizes) - 1, -1, -1):
            if sizes[i] > 0 and sizes[i] + carry >= min_size and (sizes[i] + carry) % lot_step == 0:
                sizes[i] += carry
                carry = 0
                break
    return sizes, carry


class TrendLadder(StrategyBase):
    """Trend-following entry ladder with per-level take-profits (see the module doc)."""

    name = "trend_ladder"

    def __init__(
        self, market: int, connector: OrderConnector, config: TrendLadderConfig, **kw: Any
    ) -> None:
        kw.setdefault("order_expiry_s", config.order_expiry_s)
        super().__init__(market, connector, **kw)
        self.config = config  # [strategy.trend_ladder]
        self.engine: QuoteEngine | None = None  # compiled engine for the entry ladder
        self.planner = PlannerParams(
            price_tolerance_ticks=max(0, config.step_ticks - 1), size_tolerance_lots=0
        )
        self.ema_fast = 0.0  # fast EMA of the mid (ticks)
        self.ema_slow = 0.0  # slow EMA of the mid (ticks)
        self.samples = 0  # EMA samples taken
        self.trend = 0  # +1 up (buy entries), -1 down (sell entries), 0 none
        self.forced_trend: int | None = None  # tests/operator: override the signal
        self._next_sample_ns = 0  # next EMA sample time
        self.levels: list[EntryLevel] = []  # levels with a fill, oldest first
        self._entries: dict[int, Order] = {}  # coi -> entry order (any state, until done)
        # Every entry placed, oldest first (bounded): a fill that comes after its level was
        # settled and dropped (a cancel that lost the race) opens a new level and gets a TP.
        self._entry_cois: dict[int, None] = {}
        self._level_of_entry: dict[int, EntryLevel] = {}  # entry coi -> level
        self._level_of_tp: dict[int, EntryLevel] = {}  # TP coi -> level
        # Fills of an order whose placing call has not returned yet (the account stream can
        # beat the connector's reply): replayed once the order is known as an entry or a TP.
        self._early_fills: dict[int, list[Fill]] = {}
        self.carried = 0  # remainder below the minimum size not covered by a TP
        self.tp_placed = 0  # TPs placed
        self.tp_crossings = 0  # TPs cancelled for crossing
        self.tp_verifies: list[dict[str, Any]] = []  # results of tp verify (last 100)
        self._tp_task: asyncio.Task[None] | None = None
        self._tp_again = False
        # A TP tx that was not sent (denied, e.g. the venue position behind the fill) is
        # retried after TP_RETRY_S, not in a tight loop; the handle marks a retry pending.
        self._tp_retry: asyncio.TimerHandle | None = None

    def start(self, core: Any) -> None:
        super().start(core)
        assert self.rules is not None and self.gate is not None
        c = self.config
        cap = self.gate.limits.max_position_lots
        # Entry ladder: level 0 at (ref - step) where ref = touch -/+ offset + step.
        params = QuoteParams(
            mode=MODE_FIXED,
            spread_ticks=c.step_ticks,
            n_levels=c.levels,
            level_spacing_ticks=c.step_ticks,
            size_lots=c.size_lots,
            max_long_lots=cap,
            max_short_lots=cap,
            min_spread_ticks=1,
        )
        self.engine = QuoteEngine(
            params,
            min_size_lots=self.rules.min_size_lots,
            min_notional=self.rules.min_notional,
            price_step=self.rules.price_step,
            lot_step=self.rules.lot_step,
        )

    # ------------------------------------------------------------------ signal
    def sample(self, mid: float) -> None:
        """One EMA sample of the mid (ticks); updates ``trend``."""
        c = self.config
        if self.samples == 0:
            self.ema_fast = self.ema_slow = mid
        else:
            af = 2.0 / (c.ema_fast_periods + 1)
            a_s = 2.0 / (c.ema_slow_periods + 1)
            self.ema_fast += af * (mid - self.ema_fast)
            self.ema_slow += a_s * (mid - self.ema_slow)
        self.samples += 1
        diff = self.ema_fast - self.ema_slow
        if self.samples < c.ema_fast_periods:
            trend = 0
        elif diff >= c.trend_threshold_ticks and diff > 0:
            trend = 1
        elif -diff >= c.trend_threshold_ticks and diff < 0:
            trend = -1
        else:
            trend = 0
        if trend != self.trend:
            self.journal.write(
                "trend", trend=trend, fast=round(self.ema_fast, 2), slow=round(self.ema_slow, 2)
            )
        self.trend = trend

    def direction(self) -> int:
        """Entry direction now: the trend, unless exposure is held the other way."""
        trend = self.trend if self.forced_trend is None else self.forced_trend
        held = self.exposure_sign()
        if held and trend and held != trend:
            return 0
        return trend

    def exposure_sign(self) -> int:
        for lvl in self.levels:
            if lvl.exposure > 0:
                return 1 if lvl.side is Side.BUY else -1
        return 0

    # ------------------------------------------------------------------ entries
    def entry_target(self) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """Entry ladder (bids when up, asks when down) from the compiled engine."""
        d = self.direction()
        book, engine = self.book, self.engine
        if (
            not d
            or book is None
            or engine is None
            or not book.in_sync()
            or not self.may_add_exposure()
        ):
            return [], []
        c = self.config
        bb, ba = book.best_bid(), book.best_ask()
        # Exposure still resting on frozen (partly filled) entries counts against the cap.
        frozen = sum(
            o.remaining_lots * o.side.sign
            for o in self._entries.values()
            if o.client_order_index in self._level_of_entry and not o.is_terminal
        )
        pos = self.position_lots + frozen
        if d > 0 and bb > 0:
            ref = bb - c.entry_offset_ticks + c.step_ticks
            if ref <= 0:
                return [], []
            engine.compute(bb, ba, pos, ref)
            return engine.bids(), []
        if d < 0 and ba > 0:
            ref = ba + c.entry_offset_ticks - c.step_ticks
            if ref <= 0:
                return [], []
            engine.compute(bb, ba, pos, ref)
            return [], engine.asks()
        return [], []

    def order_placed(self, order: Order, tag: str) -> None:
        if tag.startswith("L"):
            self._entries[order.client_order_index] = order
            self._entry_cois[order.client_order_index] = None
            if len(self._entry_cois) > _ENTRY_COIS_KEEP:
                del self._entry_cois[next(iter(self._entry_cois))]
            self._replay_early_fills(order.client_order_index)
        if order.is_terminal:
            self.order_changed(order)

    def _stash_early_fill(self, coi: int, fill: Fill) -> None:
        if coi not in self._early_fills and len(self._early_fills) >= _EARLY_FILLS_MAX:
            # Bounded: fills of orders that never turn out to be ours (oldest first) go.
            self._early_fills.pop(next(iter(self._early_fills)))
        self._early_fills.setdefault(coi, []).append(fill)

    def _replay_early_fills(self, coi: int) -> None:
        for fill in self._early_fills.pop(coi, ()):
            self.filled(fill)

    def _open_entries(self) -> list[Order]:
        """Entries the planner may move: not terminal and without a fill."""
        return [
            o
            for coi, o in self._entries.items()
            if not o.is_terminal and coi not in self._level_of_entry
        ]

    def requote(self, trigger_ns: int) -> None:
        if self.why_not_quote():
            return
        t0 = self.time.monotonic_ns()
        bids, asks = self.entry_target()
        tq = self.time.monotonic_ns()
        if trigger_ns:
            self.latency.add("book>quote", tq - trigger_ns)
        plan = plan_requotes(
            bids,
            asks,
            self._open_entries(),
            now_ns=t0,
            params=self.planner,
            inflight=self.inflight_txs(),
            budget=self.budget(),
            position_lots=self.position_lots,
            busy=self.busy_cois(),
            intents=self.intents.pending,
        )
        self.execute(plan, trigger_ns, quote_ns=tq)
        # Frozen entries against the current direction: pull their remainder.
        d = self.direction()
        busy = self.busy_cois()
        for lvl in self.levels:
            o = lvl.entry
            sign = 1 if lvl.side is Side.BUY else -1
            if (
                not o.is_terminal
                and o.status not in _IN_MOTION
                and d != sign
                and o.client_order_index not in busy
            ):
                self.cancel(o)
        self.sync_tps_soon()

    async def tick(self, now_ns: int) -> None:
        if now_ns >= self._next_sample_ns and self.book is not None and self.book.in_sync():
            self._next_sample_ns = now_ns + int(self.config.signal_interval_s * 1e9)
            m2 = self.book.mid_x2()
            if m2 > 0:
                self.sample(m2 / 2.0)
        self.request_requote(now_ns)

    # ------------------------------------------------------------------ fills and orders
    def filled(self, fill: Fill) -> None:
        coi = fill.client_order_index
        if coi is None:
            return
        lvl = self._level_of_tp.get(coi)
        if lvl is not None:
            lvl.tp_filled += fill.size_lots
            self.journal.write(
                "tp_fill",
                coi=coi,
                entry_coi=lvl.entry.client_order_index,
                size=fill.size_lots,
                price=fill.price_ticks,
                exposure=lvl.exposure,
                px=self.px(fill.price_ticks),
                qty=self.qty(fill.size_lots),
            )
        else:
            if coi not in self._entry_cois:
                self._stash_early_fill(coi, fill)
                return
            entry = self._entries.get(coi) or self.placed.get(coi)
            if entry is None:
                return
            lvl = self._level_of_entry.get(coi)
            if lvl is None:
                lvl = EntryLevel(entry=entry, side=entry.side, price=fill.price_ticks)
                tp = self.config.take_profit_ticks
                lvl.tp_price = lvl.price + tp if lvl.side is Side.BUY else lvl.price - tp
                self._level_of_entry[coi] = lvl
                self.levels.append(lvl)
            lvl.filled += fill.size_lots
        self.sync_tps_soon()

    def order_changed(self, order: Order) -> None:
        coi = order.client_order_index
        lvl = self._level_of_tp.get(coi)
        if lvl is not None and order.is_terminal and lvl.tp is order:
            lvl.tp = None
            reason = order.cancel_reason or ""
            if order.status is OrderStatus.CANCELED and "post-only" in reason:
                self.tp_crossings += 1
                self._tp_crossed(lvl)
            elif order.status is not OrderStatus.FILLED and lvl.exposure > 0:
                # Expired, cancelled by the venue, rejected...: counts against the retries.
                lvl.retries += 1
                if lvl.retries > self.config.tp_max_retries:
                    self._give_up(lvl, reason or order.status.name)
        elif coi in self._entries and order.is_terminal and coi not in self._level_of_entry:
            self._entries.pop(coi, None)
        self._drop_done()
        self.sync_tps_soon()

    def _tp_crossed(self, lvl: EntryLevel) -> None:
        lvl.retries += 1
        if lvl.retries > self.config.tp_max_retries:
            self._give_up(lvl, "crossing")
            return
        target = (
            lvl.price + self.config.take_profit_ticks
            if lvl.side is Side.BUY
            else lvl.price - self.config.take_profit_ticks
        )
        book = self.book
        step = self.rules.price_step if self.rules is not None else 1
        if lvl.side is Side.BUY:  # TP sells: better = higher
            touch = book.best_bid() if book is not None else 0
            lvl.tp_price = max(target, touch + step) if touch > 0 else target
        else:  # TP buys: better = lower
            touch = book.best_ask() if book is not None else 0
            lvl.tp_price = min(target, touch - step) if touch > 0 else target
        self.journal.write(
            "tp_crossed",
            entry_coi=lvl.entry.client_order_index,
            retry=lvl.retries,
            price=lvl.tp_price,
            touch=touch,
            px=self.px(lvl.tp_price),
        )

    def _give_up(self, lvl: EntryLevel, why: str) -> None:
        lvl.gave_up = True
        self.journal.write(
            "tp_gave_up", entry_coi=lvl.entry.client_order_index, why=why, exposure=lvl.exposure
        )
        _tp_log.error(
            "tp gave up: entry coi=%d after %d retries (%s), %s uncovered",
            lvl.entry.client_order_index,
            lvl.retries - 1,
            why,
            self.qty(lvl.exposure),
        )

    def _drop_done(self) -> None:
        keep = []
        for lvl in self.levels:
            done = (
                lvl.exposure <= 0
                and lvl.entry.is_terminal
                and (lvl.tp is None or lvl.tp.is_terminal)
            )
            if done:
                coi = lvl.entry.client_order_index
                self._entries.pop(coi, None)
                self._level_of_entry.pop(coi, None)
            else:
                keep.append(lvl)
        self.levels = keep

    # ------------------------------------------------------------------ take-profits
    def tp_allocation(self) -> tuple[list[EntryLevel], list[int], int]:
        active = [lvl for lvl in self.levels if not lvl.gave_up]
        min_size = self.rules.min_size_lots if self.rules is not None else 1
        lot_step = self.rules.lot_step if self.rules is not None else 1
        sizes, carried = allocate_tp_sizes(
            [max(0, lvl.exposure) for lvl in active],
            [lvl.tp_remaining() for lvl in active],
            min_size,
            lot_step,
        )
        return active, sizes, carried

    def sync_tps_soon(self) -> None:
        if not self.running:
            return
        self._tp_again = True
        if self._tp_task is None or self._tp_task.done():
            self._tp_task = asyncio.get_running_loop().create_task(self._tp_loop())

    async def _tp_loop(self) -> None:
        while self._tp_again and self.running:
            self._tp_again = False
            try:
                self.sync_tps()
            except Exception:
                _tp_log.exception("tp sync failed")

    def sync_tps(self) -> None:
        """Bring every level's TP to its allocated size (see ``allocate_tp_sizes``)."""
        active, sizes, carried = self.tp_allocation()
        self.carried = carried
        busy = self.busy_cois()
        jobs: list[tuple[EntryLevel, Order | None, int]] = []
        for lvl, want in zip(active, sizes, strict=True):
            tp = lvl.tp
            if lvl.tp_pending:
                continue
            if tp is not None and (tp.status in _IN_MOTION or tp.client_order_index in busy):
                continue
            have = lvl.tp_remaining()
            if want == have:
                continue
            jobs.append((lvl, tp, want))
        for job in jobs:
            self._tp_job(*job)

    def _tp_job(self, lvl: EntryLevel, tp: Order | None, want: int) -> None:
        lvl.tp_pending = True
        sent = True
        try:
            if want == 0:
                if tp is not None and not tp.is_terminal:
                    self.cancel(tp)
                return
            if tp is not None and not tp.is_terminal:
                sent = self.modify(tp, tp.price_ticks, want)
                return
            sent = self._place_tp(lvl, want)
        finally:
            lvl.tp_pending = False
            if sent:
                self._tp_again = True
            elif self._tp_retry is None and self.running:
                self._tp_retry = self.time.call_later(TP_RETRY_S, self._tp_retry_due)

    def _tp_retry_due(self) -> None:
        self._tp_retry = None
        self.sync_tps_soon()

    def _place_tp(self, lvl: EntryLevel, size: int) -> bool:
        """Place the level's TP; False when nothing was sent (denied, failed, size 0)."""
        if size <= 0:  # never: a size-0 reduce-only order closes the whole position
            return False
        side = lvl.side.opposite
        book = self.book
        bid = book.best_bid() if book is not None else 0
        ask = book.best_ask() if book is not None else 0
        px = self.px
        _tp_log.info(
            "tp submit intent: side=%s size=%s entry=%s target=%s post_only=True "
            "reduce_only=True bid=%s ask=%s retry=%d",
            side.name,
            self.qty(size),
            px(lvl.price),
            px(lvl.tp_price),
            px(bid) if bid > 0 else "-",
            px(ask) if ask > 0 else "-",
            lvl.retries,
        )
        order = self.place(side, lvl.tp_price, size, reduce_only=True, tag="tp")
        if order is None:
            return False
        lvl.tp = order
        self._level_of_tp[order.client_order_index] = lvl
        self._replay_early_fills(order.client_order_index)
        self.tp_placed += 1
        _tp_log.info(
            "tp placed: coi=%d side=%s size=%s price=%s entry_coi=%d",
            order.client_order_index,
            side.name,
            self.qty(size),
            px(lvl.tp_price),
            lvl.entry.client_order_index,
        )
        if order.is_terminal:
            self.order_changed(order)
        self._schedule_verify(order)
        return True

    def _schedule_verify(self, order: Order) -> None:
        core = self.core
        if core is None:
            return
        with contextlib.suppress(Exception):
            core.clock.call_later(TP_VERIFY_DELAY_MS, self._verify_soon, order)

    def _verify_soon(self, order: Order) -> None:
        if not self.running:
            return
        t = asyncio.get_running_loop().create_task(self.verify_tp(order))
        self._bg.add(t)
        t.add_done_callback(self._bg.discard)

    async def verify_tp(self, order: Order) -> dict[str, Any]:
        """Where the venue shows a TP: WS (the order tracker, fed by the account orders
        stream) and REST."""
        view = self.view
        coi = order.client_order_index
        rec = view.order_record(coi) if view is not None else None
        ws_status = rec.venue_status if rec is not None and rec.venue_seen else None
        hist = view.venue_statuses() if view is not None else {}
        rest_present: bool | None = None
        if view is not None:
            try:
                active = await view.active_orders()
                if active is not None:
                    rest_present = any(o.get("client_order_index") == coi for o in active)
            except Exception as exc:
                _tp_log.warning("tp verify: coi=%d REST failed: %s", coi, type(exc).__name__)
        result = {
            "coi": coi,
            "status": order.status.name,
            "ws_present": ws_status is not None,
            "ws_status": ws_status,
            "rest_present": rest_present,
            "ws_histogram": dict(hist),
        }
        _tp_log.info(
            "tp verify: coi=%d status=%s ws_present=%s ws_status=%s rest_present=%s "
            "ws_histogram=%s",
            coi,
            order.status.name,
            result["ws_present"],
            result["ws_status"],
            rest_present,
            dict(hist),
        )
        self.tp_verifies = [*self.tp_verifies[-99:], result]
        self.journal.write("tp_verify", **result)
        return result

    # ------------------------------------------------------------------ status
    def tp_invariant(self) -> tuple[int, int, int]:
        """(sum of live TP remaining sizes, exposure, carried) for the invariant check."""
        active = [lvl for lvl in self.levels if not lvl.gave_up]
        return (
            sum(lvl.tp_remaining() for lvl in active),
            sum(max(0, lvl.exposure) for lvl in active),
            self.carried,
        )

    async def stop(self) -> None:
        if self._tp_retry is not None:
            self._tp_retry.cancel()
            self._tp_retry = None
        task = self._tp_task
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await super().stop()

    def status(self) -> dict[str, Any]:
        st = super().status()
        tps, exposure, carried = self.tp_invariant()
        st["trend"] = {
            "trend": self.trend,
            "fast": round(self.ema_fast, 2),
            "slow": round(self.ema_slow, 2),
            "samples": self.samples,
            "threshold_ticks": self.config.trend_threshold_ticks,
        }
        st["tp"] = {
            "levels": len(self.levels),
            "tp_lots": tps,
            "exposure": exposure,
            "carried": carried,
            "placed": self.tp_placed,
            "crossings": self.tp_crossings,
        }
        # Each level with a fill and its take-profit, oldest first (bounded: the status is
        # drawn every second and served by the control endpoint).
        st["tp_levels"] = [
            {
                "side": lvl.side.name,
                "price": lvl.price,
                "filled": lvl.filled,
                "exposure": lvl.exposure,
                "tp_price": lvl.tp_price,
                "tp_lots": lvl.tp_remaining(),
                "retries": lvl.retries,
                "gave_up": lvl.gave_up,
            }
            for lvl in self.levels[:TP_LEVELS_SHOWN]
        ]
        return st
