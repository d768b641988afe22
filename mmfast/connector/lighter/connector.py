"""``LighterConnector``: the reading half of the Lighter connector (part 1).

It loads market metadata over REST, keeps one compiled ``OrderBook`` per market fed by the
market-data WebSocket, reads trades and market stats, reads the account streams (orders,
trades, positions, user stats) with auth tokens, draws every request from one ``RateBudget``,
watches clock skew, and reports readiness.

Events on the core's bus: ``BookUpdated`` (only while the book is in sync and not crossed),
``PullQuotes`` (gap, crossed book, stream down, halt, market inactive, skew), ``ConnectorState``
(every readiness change, with the reason). Signing and order entry come in part 2; so does
reconciliation and the nonce refresh, which join the readiness list then.

Order entry (part 2): given a started ``SignerWorker`` and an ``OrderEntryConfig``, the
connector also runs ``OrderEntry`` (orders on their own WebSocket, REST fallback; see
``orders.py``) with an ``OrderTracker`` fed by the account streams and a ``Reconciler`` that
runs at start and after every reconnect of the account or order connection. Readiness then
also needs ``orders:nonce`` (a nextNonce refresh since the last reconnect),
``orders:leverage`` (when leverage is configured) and ``orders:reconcile`` (failing closed
with the trigger's message).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import deque
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, Protocol

from mmfast._core.book import APPLIED, GAP, BookError, OrderBook
from mmfast.connector.lighter.auth import AuthTokenProvider, TokenCache
from mmfast.connector.lighter.budget import RateBudget
from mmfast.connector.lighter.coi import CoiAllocator
from mmfast.connector.lighter.config import LighterConfig
from mmfast.connector.lighter.markets import USDC_DECIMALS, MarketInfo, parse_order_book_details
from mmfast.connector.lighter.orders import OrderEntry, OrderEntryConfig, OrderEntryError
from mmfast.connector.lighter.readiness import Readiness
from mmfast.connector.lighter.reconcile import ReconcileFailed, Reconciler
from mmfast.connector.lighter.rest import LighterRest
from mmfast.connector.lighter.signer import SignerWorker
from mmfast.connector.lighter.skew import SkewMonitor
from mmfast.connector.lighter.tracker import FillWatermark, OrderTracker
from mmfast.connector.lighter.ws import StreamHalted, Subscription, WsStream
from mmfast.core.events import BookUpdated, EventBus, PullQuotes
from mmfast.core.log import get_logger
from mmfast.core.timesource import REAL_TIME, TimeSource
from mmfast.core.types import Order, Side, TimeInForce
from mmfast.core.units import parse_units

if TYPE_CHECKING:
    from mmfast.core.trading_core import TradingCore

__all__ = ["AccountListener", "LighterConnector", "MarketStats", "VenuePosition"]

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


@dataclass(frozen=True, slots=True)
class VenuePosition:
    """A position as the venue reports it (account_all_positions); the venue is authoritative."""

    market: int
    size_lots: int  # signed: long > 0
    avg_entry_price_ticks: int
    unrealized_pnl_micro: int
    realized_pnl_micro: int


class AccountListener(Protocol):
    """Receives account-stream content (the order tracker of part 2 implements this)."""

    def on_account_orders(self, market: int, orders: list[dict[str, Any]], snapshot: bool
                          ) -> None: ...
    def on_account_trades(self, market: int, trades: list[dict[str, Any]], snapshot: bool
                          ) -> None: ...
    def on_positions(self, positions: dict[int, VenuePosition]) -> None: ...
    def on_user_stats(self, stats: dict[str, Any]) -> None: ...


class LighterConnector:
    """Market data, account streams, REST, one budget, readiness, skew (see module doc)."""

    def __init__(
        self,
        config: LighterConfig,
        token_provider: AuthTokenProvider | None = None,
        *,
        time: TimeSource = REAL_TIME,
        bus: EventBus | None = None,
        account_listener: AccountListener | None = None,
        signer: SignerWorker | None = None,
        orders: OrderEntryConfig | None = None,
        dbg: Any = None,
    ) -> None:
        if config.account_streams and token_provider is None:
            raise ValueError("account streams need an auth token provider")
        if (signer is None) != (orders is None):
            raise ValueError("order entry needs both a signer and an OrderEntryConfig")
        if orders is not None and not config.account_streams:
            raise ValueError("order entry needs the account streams (orders, fills, positions)")
        self.signer = signer  # started by the caller; signs on its own thread
        self.orders_config = orders
        self._dbg = dbg  # the core's gated debug logger (core.dbg), set at start(core) too
        self.orders: OrderEntry | None = None
        self.tracker: OrderTracker | None = None
        self.coi: CoiAllocator | None = None
        self.reconciler: Reconciler | None = None
        self.reconcile_error: str | None = None  # why reconciliation failed closed
        self._reconcile_wanted: asyncio.Event | None = None
        self._reconciler_task: asyncio.Task[None] | None = None
        self._position_task: asyncio.Task[None] | None = None
        self.out_of_band_events: list[tuple[int, int, str]] = []  # (mono ns, market, reason)
        self.config = config
        self._time = time
        self._bus = bus
        self._rng = random.Random(config.seed)
        self.account_listener = account_listener
        self.budget = RateBudget(config.tier, time, max_fraction=config.budget_max_fraction,
                                 reserve_fraction=config.budget_reserve_fraction,
                                 backoff_min_s=config.backoff_min_s,
                                 backoff_max_s=config.backoff_max_s,
                                 rng=random.Random(self._rng.getrandbits(64)))
        self.readiness = Readiness(self._publish, time)
        self.skew = SkewMonitor(config.max_clock_skew_ms, time, on_change=self._on_skew)
        self.tokens: TokenCache | None = None
        if token_provider is not None:
            self.tokens = TokenCache(token_provider, lifetime_s=config.token_lifetime_s,
                                     refresh_margin_s=config.token_refresh_margin_s,
                                     venue_now_s=self.skew.venue_now_s)
        self.rest = LighterRest(config.api_base, self.budget, time, tokens=self.tokens,
                                skew=self.skew, timeout_s=config.request_timeout_s,
                                max_retries=config.rest_max_retries)
        self.markets: dict[int, MarketInfo] = {}
        self.books: dict[int, OrderBook] = {}
        self.stats: dict[int, MarketStats] = {}
        self.trades: dict[int, deque[dict[str, Any]]] = {}
        self.positions: dict[int, VenuePosition] = {}
        self.user_stats: dict[str, Any] = {}
        self.account_orders: dict[int, dict[int, dict[str, Any]]] = {}  # market -> oi -> order
        self.account_orders_version = 0  # +1 per account orders message (strategies' sync)
        self.md_stream: WsStream | None = None
        self.account_stream: WsStream | None = None
        self.halted: StreamHalted | None = None
        self._crossed_timers: dict[int, asyncio.TimerHandle] = {}
        self._housekeeping: asyncio.Task[None] | None = None
        self._started = False
        # counters
        self.gaps = 0  # nonce gaps seen (each: pull quotes + resubscribe)
        self.crossed = 0  # crossed/locked books seen
        self.cross_resyncs = 0  # resubscribes because a cross lasted > cross_resync_s
        self.pulls = 0  # PullQuotes published
        self.bad_messages = 0  # non-book messages with malformed content

    # --- plumbing -------------------------------------------------------------------------------
    def _publish(self, event: object) -> None:
        if self._bus is not None:
            self._bus.publish(event)

    def _pull(self, market: int | None, reason: str) -> None:
        self.pulls += 1
        self._publish(PullQuotes(market, reason, self._time.monotonic_ns()))

    @property
    def ready(self) -> bool:
        return self.readiness.ready

    @property
    def not_ready_reason(self) -> str:
        return self.readiness.reason

    async def wait_ready(self, timeout_s: float) -> bool:
        """Wait (TimeSource seconds) until ready; False on timeout or halt."""
        deadline = self._time.monotonic_ns() + int(timeout_s * 1e9)
        while not self.readiness.ready:
            if self.halted is not None or self._time.monotonic_ns() >= deadline:
                return False
            await self._time.sleep(0.02)
        return True

    # --- lifecycle ------------------------------------------------------------------------------
    async def start(self, core: TradingCore | None = None) -> None:
        """Load metadata, then open the market-data and account streams (returns without
        waiting for readiness; see ``wait_ready``)."""
        if self._started:
            raise RuntimeError("LighterConnector already started")
        self._started = True
        if core is not None and self._bus is None:
            self._bus = core.bus
        cfg = self.config
        r = self.readiness
        r.add("connector", "starting")
        for m in cfg.markets:
            r.add(f"market:{m}", "no metadata yet")
        r.add("skew", "no venue time yet")
        for m in cfg.markets:
            r.add(f"book:{m}", "no snapshot yet")
        await self.rest.start()
        await self.refresh_markets()
        missing = [m for m in cfg.markets if m not in self.markets]
        if missing:
            await self.rest.close()
            raise ValueError(f"markets not listed by the venue: {missing}")
        for m in cfg.markets:
            info = self.markets[m]
            self.books[m] = OrderBook(m, info.price_decimals, info.size_decimals)
            self.trades[m] = deque(maxlen=100)
        stream_args = dict(
            budget=self.budget, time=self._time, snapshot_deadline_s=cfg.snapshot_deadline_s,
            ping_idle_s=cfg.ping_idle_s, pong_timeout_s=cfg.pong_timeout_s,
            connect_timeout_s=cfg.connect_timeout_s, backoff_min_s=cfg.backoff_min_s,
            backoff_max_s=cfg.backoff_max_s, max_connect_failures=cfg.max_connect_failures)
        md_subs = []
        for m in cfg.markets:
            md_subs += [Subscription(f"order_book/{m}"), Subscription(f"trade/{m}"),
                        Subscription(f"market_stats/{m}")]
        self.md_stream = WsStream("ws.market", cfg.ws_url, md_subs, self, books=self.books,
                                  rng=random.Random(self._rng.getrandbits(64)),
                                  **stream_args)  # type: ignore[arg-type]
        if cfg.account_streams:
            a = cfg.account_index
            acct_subs = [Subscription(f"account_orders/{m}/{a}", True) for m in cfg.markets]
            acct_subs += [Subscription(f"account_all_trades/{a}", True),
                          Subscription(f"account_all_positions/{a}", True),
                          Subscription(f"user_stats/{a}", True)]
            for s in acct_subs:
                r.add(f"stream:{s.key}", "no first frame yet")
            assert self.tokens is not None
            self.account_stream = WsStream("ws.account", cfg.ws_url, acct_subs, self,
                                           token=self.tokens.get,
                                           rng=random.Random(self._rng.getrandbits(64)),
                                           **stream_args)  # type: ignore[arg-type]
        if self.orders_config is not None:
            self._build_orders(core, stream_args)
        r.set("connector", True)
        self.md_stream.start()
        if self.account_stream is not None:
            self.account_stream.start()
        if self.orders is not None:
            self.orders.start()
            loop = asyncio.get_running_loop()
            self._reconciler_task = loop.create_task(self._reconcile_loop())
            self._position_task = loop.create_task(self._position_loop())
        self._housekeeping = asyncio.get_running_loop().create_task(self._housekeep())
        _log.info("lighter connector started: markets %s", list(cfg.markets))

    async def stop(self, core: TradingCore | None = None) -> None:
        """Close the streams and the REST session; not ready from here on."""
        if not self._started:
            return
        if self.readiness.holds("connector") or "connector" in self.readiness.failing():
            self.readiness.set("connector", False, "stopped")
        if self._housekeeping is not None:
            self._housekeeping.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._housekeeping
            self._housekeeping = None
        for t in self._crossed_timers.values():
            t.cancel()
        self._crossed_timers.clear()
        for task in (self._reconciler_task, self._position_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._reconciler_task = self._position_task = None
        if self.orders is not None:
            await self.orders.stop()
        if self.tracker is not None:
            self.tracker.flush_watermark()
        if self.coi is not None:
            self.coi.close()
        for s in (self.md_stream, self.account_stream):
            if s is not None:
                await s.stop()
        if self.tokens is not None:
            self.tokens.cancel()
        await self.rest.close()
        self._started = False
        _log.info("lighter connector stopped")

    async def cancel_all(self, market: int, timeout: float, *, all_markets: bool = False
                         ) -> int:
        """Cancel every order of the account in ``market`` (a market-scoped cancel-all; every
        market only with ``all_markets=True`` and the config's explicit option), then wait until
        REST active orders show none or ``timeout`` (TimeSource s) passes. Returns how many are
        still open (0 = all gone). Without order entry it only counts them."""
        if self.orders is not None:
            return await self._cancel_all(market, timeout, all_markets)
        try:
            orders = await asyncio.wait_for(
                self.rest.account_active_orders(self.config.account_index, market),
                timeout / self._time.scale)
        except Exception as exc:
            _log.error("cancel_all(%d): cannot read open orders: %s", market, type(exc).__name__)
            raise
        return len(orders)

    # --- order entry ----------------------------------------------------------------------------
    def _build_orders(self, core: TradingCore | None, stream_args: dict[str, Any]) -> None:
        cfg, ocfg = self.config, self.orders_config
        assert ocfg is not None and self.signer is not None
        markets = {m: self.markets[m] for m in cfg.markets}
        wm = FillWatermark.for_key(ocfg.environment, cfg.account_index, cfg.api_key_index,
                                   ocfg.state_dir)
        self.tracker = OrderTracker(self._bus or _NullBus(), markets,
                                    account_index=cfg.account_index, watermark=wm,
                                    monotonic_ns=self._time.monotonic_ns)
        self.coi = CoiAllocator(ocfg.environment, cfg.account_index, cfg.api_key_index,
                                state_dir=ocfg.state_dir).open()
        dbg = self._dbg if self._dbg is not None else (core.dbg if core is not None else None)
        self.orders = OrderEntry(
            ocfg, account_index=cfg.account_index, api_key_index=cfg.api_key_index,
            ws_url=cfg.ws_url, signer=self.signer, coi=self.coi, tracker=self.tracker,
            rest=self.rest, budget=self.budget, markets=markets, time=self._time, dbg=dbg,
            mid=self._mid, stream_args=stream_args,
            rng=random.Random(self._rng.getrandbits(64)),
            on_reconnect=self.request_reconcile, on_out_of_band=self._on_out_of_band)
        self.orders.on_nonce_ready = self._on_nonce_ready
        self.reconciler = Reconciler(self.orders, streams_ready=self._account_streams_ready)
        self._reconcile_wanted = asyncio.Event()
        r = self.readiness
        r.add("orders:nonce", "no nextNonce yet")
        if ocfg.leverage:
            r.add("orders:leverage", "leverage not applied yet")
        r.add("orders:reconcile", "not reconciled yet")
        self._reconcile_wanted.set()

    def _mid(self, market: int) -> float | None:
        book = self.books.get(market)
        if book is None or not book.in_sync():
            return None
        return book.mid()

    def _account_streams_ready(self) -> bool:
        s = self.account_stream
        return s is not None and all(s.is_subscribed(k) for k in s.subscriptions)

    def _on_nonce_ready(self, ok: bool, reason: str) -> None:
        if self.readiness.holds("orders:nonce") != ok or not ok:
            self.readiness.set("orders:nonce", ok, reason or "nonce refresh pending")

    def request_reconcile(self, reason: str = "requested") -> None:
        """Reconcile again (after a reconnect); not ready until it is done."""
        if self._reconcile_wanted is None or self.orders is None:
            return
        _log.info("reconciliation requested: %s", reason)
        self.readiness.set("orders:reconcile", False, f"reconciling ({reason})")
        self._reconcile_wanted.set()

    def _on_out_of_band(self, market: int, reason: str) -> None:
        now = self._time.monotonic_ns()
        self.out_of_band_events.append((now, market, reason))
        if len(self.out_of_band_events) > 1000:
            del self.out_of_band_events[:500]
        _log.warning("market %d: %s", market, reason)
        self._pull(market, f"position changed outside our orders: {reason}")
        self.request_reconcile(f"market {market}: {reason}")

    async def _reconcile_loop(self) -> None:
        assert self.orders is not None and self.reconciler is not None
        assert self._reconcile_wanted is not None
        ocfg = self.orders.config
        first = True
        leverage_done = not ocfg.leverage
        last_ns = 0
        while True:
            await self._reconcile_wanted.wait()
            if last_ns:
                wait_s = ocfg.reconcile_min_interval_s - (self._time.monotonic_ns() - last_ns) / 1e9
                if wait_s > 0:  # coalesce: every request meanwhile is served by one run
                    await self._time.sleep(wait_s)
            self._reconcile_wanted.clear()
            if self.reconcile_error is None:
                self.readiness.set("orders:reconcile", False, "reconciling")
            if not leverage_done:
                while not self.orders.nonce_ready:
                    await self._time.sleep(0.05)
                errors = await self.orders.apply_leverage(ocfg.reconcile_timeout_s)
                if errors:
                    msg = "; ".join(f"market {m}: {e}" for m, e in sorted(errors.items()))
                    _log.error("leverage not applied: %s", msg)
                    self.readiness.set("orders:leverage", False, f"FAILED: {msg}")
                    continue
                leverage_done = True
                self.readiness.set("orders:leverage", True)
            try:
                _log.debug("reconciliation starts (start=%s)", first)
                last_ns = self._time.monotonic_ns()
                await self.reconciler.run(start=first)
            except ReconcileFailed as exc:
                self.reconcile_error = str(exc)
                self.readiness.set("orders:reconcile", False, f"FAILED CLOSED: {exc}")
                self._pull(None, f"reconciliation failed: {exc.trigger}")
                if exc.trigger == "rest_unreachable":
                    self._time.call_later(1.0, self._reconcile_wanted.set)
                continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a bug or a malformed venue reply: fail closed, loudly
                _log.exception("reconciliation crashed")
                self.reconcile_error = f"error: {type(exc).__name__}: {exc}"
                self.readiness.set("orders:reconcile", False,
                                   f"FAILED CLOSED: {self.reconcile_error}")
                continue
            first = False
            self.reconcile_error = None
            if not self._reconcile_wanted.is_set():
                self.readiness.set("orders:reconcile", True)

    async def _position_loop(self) -> None:
        """Venue position (REST) vs fills replayed, every position_check_interval_s."""
        assert self.orders is not None and self.tracker is not None
        interval = self.orders.config.position_check_interval_s
        while True:
            await self._time.sleep(interval)
            if not self.readiness.holds("orders:reconcile"):
                continue
            try:
                acct = await self.rest.account(self.config.account_index)
            except asyncio.CancelledError:
                raise
            except Exception:
                continue
            positions = [p for p in acct.get("positions") or []
                         if isinstance(p, dict) and p.get("market_id") in self.markets]
            self.tracker.apply_positions({"positions": positions}, full=True)
            mism = self.tracker.position_mismatches()
            if mism and self.readiness.holds("orders:reconcile"):
                for m, (v, r) in sorted(mism.items()):
                    self._on_out_of_band(m, f"venue position {v} lots, fills replayed {r} lots")

    def _entry(self) -> OrderEntry:
        if self.orders is None:
            raise OrderEntryError("order entry is not configured (signer + OrderEntryConfig)")
        return self.orders

    def _check_ready(self, reduce_only: bool) -> None:
        # Fail closed: no new exposure while not ready (cancels always go).
        if not self.readiness.ready and not reduce_only:
            raise OrderEntryError(f"not ready: {self.readiness.reason}")

    def place_limit(self, market: int, side: Side, price_ticks: int, size_lots: int, *,
                          tif: TimeInForce = TimeInForce.POST_ONLY, reduce_only: bool = False,
                          expiry_ms: int | None = None) -> Order:
        """Place a limit order (see ``OrderEntry.place_limit``); refused while not ready unless
        reduce-only. Returns the Order in PENDING_NEW."""
        entry = self._entry()
        self._check_ready(reduce_only)
        return entry.place_limit(market, side, price_ticks, size_lots, tif=tif,
                                 reduce_only=reduce_only, expiry_ms=expiry_ms)

    def modify(self, order: Order | int, price_ticks: int, size_lots: int) -> None:
        """Modify our order (an Order or its client_order_index)."""
        coi = order if isinstance(order, int) else order.client_order_index
        self._check_ready(False)
        self._entry().modify(coi, price_ticks, size_lots)

    def cancel(self, order: Order | int) -> None:
        """Cancel our order (an Order or its client_order_index); allowed while not ready."""
        coi = order if isinstance(order, int) else order.client_order_index
        self._entry().cancel(coi)

    async def is_coi_open(self, coi: int, market: int | None = None) -> bool:
        """Whether REST active orders hold an order with this client_order_index."""
        return await self._entry().is_coi_open(coi, market)

    async def _cancel_all(self, market: int, timeout: float, all_markets: bool) -> int:
        entry = self._entry()
        markets = list(self.config.markets) if all_markets else [market]
        entry.cancel_all(None if all_markets else market, all_markets=all_markets)
        deadline = self._time.monotonic_ns() + int(timeout * 1e9)
        remaining = -1
        while True:
            await self._time.sleep(0.05)
            if entry.pending_txs and self._time.monotonic_ns() < deadline:
                continue
            try:
                remaining = 0
                for m in markets:
                    orders = await self.rest.account_active_orders(self.config.account_index, m)
                    remaining += len(orders)
                    if self.tracker is not None and orders:
                        self.tracker.apply_orders(orders)
            except Exception as exc:
                _log.warning("cancel_all(%s): cannot read open orders: %s", market,
                             type(exc).__name__)
                remaining = -1
            if remaining == 0 or self._time.monotonic_ns() >= deadline:
                break
            await self._time.sleep(0.2)
        if remaining < 0:
            raise TimeoutError(f"cancel_all({market}): open orders unknown (REST failing)")
        return remaining

    async def refresh_markets(self) -> None:
        """Fetch orderBookDetails and update metadata and the market readiness conditions."""
        body = await self.rest.order_book_details()
        markets = parse_order_book_details(body)
        self.markets.update(markets)
        for m in self.config.markets:
            info = markets.get(m)
            if info is None:
                self.readiness.set(f"market:{m}", False, f"market {m} not listed")
                continue
            was = self.readiness.holds(f"market:{m}")
            self.readiness.set(f"market:{m}", info.is_active, info.inactive_reason)
            if was and not info.is_active:
                self._pull(m, info.inactive_reason)

    async def _housekeep(self) -> None:
        cfg = self.config
        if self.tokens is not None:
            self.tokens.schedule_refresh(self._time)
        next_meta = self._time.monotonic_ns() + int(cfg.metadata_refresh_s * 1e9)
        while True:
            await self._time.sleep(1.0)
            self.budget.refresh()
            if self._time.monotonic_ns() >= next_meta:
                next_meta = self._time.monotonic_ns() + int(cfg.metadata_refresh_s * 1e9)
                try:
                    await self.refresh_markets()
                except Exception as exc:
                    _log.warning("metadata refresh failed: %s", type(exc).__name__)

    # --- stream listener ------------------------------------------------------------------------
    def on_stream_up(self, stream: WsStream) -> None:
        _log.debug("%s connected", stream.name)
        if stream is self.account_stream and stream.connects > 1:
            if self.orders is not None:
                self.orders.require_refresh()  # after every reconnect, before any send
            self.request_reconcile("account stream reconnected")

    def on_stream_down(self, stream: WsStream, reason: str) -> None:
        _log.info("%s down: %s", stream.name, reason)
        if stream is self.md_stream:
            for m in self.config.markets:
                self._clear_cross(m)
                self.readiness.set(f"book:{m}", False, f"stream down: {reason}")
                self._pull(m, f"market data down: {reason}")
        else:
            for key in stream.subscriptions:
                self.readiness.set(f"stream:{key}", False, f"stream down: {reason}")
            self._pull(None, f"account stream down: {reason}")

    def on_subscribed(self, stream: WsStream, key: str) -> None:
        if stream is self.account_stream:
            self.readiness.set(f"stream:{key}", True)

    def on_subscribe_failed(self, stream: WsStream, key: str, code: int, message: str) -> None:
        _log.warning("%s: subscribe %s failed: %d %s", stream.name, key, code, message)
        if stream.subscriptions[key].private and self.tokens is not None:
            self.tokens.invalidate()

    def on_halt(self, stream: WsStream, error: StreamHalted) -> None:
        self.halted = error
        self.readiness.set("connector", False, f"halted: {error}")
        self._pull(None, f"halted: {error}")

    def on_venue_time(self, venue_ms: int) -> None:
        self.skew.sample(venue_ms)

    def _on_skew(self, skewed: bool, reason: str) -> None:
        if skewed:
            _log.warning("%s", reason)
            self.readiness.set("skew", False, reason)
            self._pull(None, reason)
        else:
            self.readiness.set("skew", True)

    def on_book(self, stream: WsStream, market: int, code: int, now_ns: int) -> None:
        book = self.books[market]
        if code == APPLIED:
            if book.is_crossed() or book.is_locked():
                self._on_crossed(stream, market, book)
                return
            if market in self._crossed_timers:
                self._clear_cross(market)
            if not self.readiness.holds(f"book:{market}"):
                self.readiness.set(f"book:{market}", True)
            self._publish(BookUpdated(market, book, now_ns))
        elif code == GAP:
            self.gaps += 1
            self.readiness.set(f"book:{market}", False, "nonce gap: resyncing")
            self._pull(market, "book nonce gap")
            stream.resubscribe(f"order_book:{market}")

    def _on_crossed(self, stream: WsStream, market: int, book: OrderBook) -> None:
        if market in self._crossed_timers:
            return
        self.crossed += 1
        self.readiness.set(f"book:{market}", False, "book crossed or locked")
        self._pull(market, "crossed book")
        self._crossed_timers[market] = self._time.call_later(
            self.config.cross_resync_s, self._cross_timeout, stream, market)

    def _cross_timeout(self, stream: WsStream, market: int) -> None:
        self._crossed_timers.pop(market, None)
        book = self.books[market]
        if book.in_sync() and (book.is_crossed() or book.is_locked()):
            self.cross_resyncs += 1
            book.invalidate()
            self.readiness.set(f"book:{market}", False, "crossed book: resyncing")
            stream.resubscribe(f"order_book:{market}")

    def _clear_cross(self, market: int) -> None:
        t = self._crossed_timers.pop(market, None)
        if t is not None:
            t.cancel()

    def on_message(self, stream: WsStream, msg: dict[str, Any], now_ns: int) -> None:
        typ = msg.get("type", "")
        kind = typ.partition("/")[2]
        snapshot = typ.startswith("subscribed/")
        try:
            if kind == "trade":
                self._on_trades(msg)
            elif kind == "market_stats":
                self._on_market_stats(msg, now_ns)
            elif kind in ("account_orders", "account_all_orders"):
                self._on_account_orders(msg, snapshot)
            elif kind == "account_all_trades":
                self._on_account_trades(msg, snapshot)
            elif kind == "account_all_positions":
                self._on_positions(msg)
            elif kind == "user_stats":
                stats = msg.get("stats")
                if isinstance(stats, dict):
                    self.user_stats = stats
                    if self.account_listener is not None:
                        self.account_listener.on_user_stats(stats)
        except (BookError, ValueError, TypeError, KeyError, AttributeError, InvalidOperation):
            self.bad_messages += 1

    def _market_of(self, m: Any) -> MarketInfo | None:
        try:
            return self.markets.get(int(m))
        except (TypeError, ValueError):
            return None

    def _on_trades(self, msg: dict[str, Any]) -> None:
        for t in msg.get("trades") or ():
            mid = t.get("market_id")
            if mid in self.trades:
                self.trades[mid].append(t)

    def _on_market_stats(self, msg: dict[str, Any], now_ns: int) -> None:
        ms = msg.get("market_stats")
        items = [ms] if isinstance(ms, dict) and "market_id" in ms else (
            list(ms.values()) if isinstance(ms, dict) else [])
        for s in items:
            info = self._market_of(s.get("market_id"))
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
            self.account_orders_version += 1
            if self.orders is not None:
                self.orders.on_account_orders(market, lst, snapshot)
            if self.account_listener is not None:
                self.account_listener.on_account_orders(market, lst, snapshot)

    def _on_account_trades(self, msg: dict[str, Any], snapshot: bool) -> None:
        trades = msg.get("trades")
        if not isinstance(trades, dict):
            raise ValueError("trades must be an object")
        for mkey, lst in trades.items():
            if self.orders is not None:
                self.orders.on_account_trades(int(mkey), list(lst), snapshot)
            if self.account_listener is not None:
                self.account_listener.on_account_trades(int(mkey), list(lst), snapshot)

    def _on_positions(self, msg: dict[str, Any]) -> None:
        positions = msg.get("positions")
        if not isinstance(positions, dict):
            raise ValueError("positions must be an object")
        out: dict[int, VenuePosition] = {}
        for mkey, p in positions.items():
            info = self._market_of(mkey)
            if info is None:
                continue
            size = parse_units(p["position"], info.size_decimals)
            sign = p.get("sign", 1)
            out[info.market_id] = VenuePosition(
                market=info.market_id,
                size_lots=-size if sign == -1 else size,
                avg_entry_price_ticks=_lenient(p.get("avg_entry_price"), info.price_decimals),
                unrealized_pnl_micro=_signed(p.get("unrealized_pnl"), USDC_DECIMALS),
                realized_pnl_micro=_signed(p.get("realized_pnl"), USDC_DECIMALS),
            )
        self.positions = out  # a full snapshot each frame: absent market = flat
        if self.orders is not None:
            self.orders.on_positions_msg(msg)
        if self.account_listener is not None:
            self.account_listener.on_positions(out)

    # --- status ---------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        b = self.budget.state()
        return {
            "ready": self.readiness.ready,
            "reason": self.readiness.reason,
            "failing": self.readiness.failing(),
            "halted": str(self.halted) if self.halted else None,
            "books": {m: {"in_sync": bk.in_sync(), "nonce": bk.nonce, "snapshots": bk.snapshots,
                          "gaps": bk.gaps, "dropped_pre_snapshot": bk.dropped_pre_snapshot,
                          "malformed": bk.malformed}
                      for m, bk in self.books.items()},
            "streams": {s.name: s.stats() for s in (self.md_stream, self.account_stream)
                        if s is not None},
            "budget": {"level": b.level.name, "reason": b.reason, "used": dict(b.used),
                       "caps": dict(b.caps), "volume_quota_remaining": b.volume_quota_remaining,
                       "blocked_for_s": round(b.blocked_for_s, 3)},
            "skew_ms": self.skew.offset_ms,
            "gaps": self.gaps, "crossed": self.crossed, "cross_resyncs": self.cross_resyncs,
            "pulls": self.pulls, "bad_messages": self.bad_messages,
            "orders": self.orders.status() if self.orders is not None else None,
            "reconcile_error": self.reconcile_error,
        }


def _signed(v: Any, decimals: int) -> int:
    """A possibly negative venue decimal string -> int units (0 when absent)."""
    return _lenient(v, decimals)


def _lenient(v: Any, decimals: int) -> int:
    """A decimal string with possibly fewer or more digits than ``decimals`` -> int units,
    rounded toward zero (display values such as avg_entry_price); 0 when absent. Signed, padded,
    "5." / ".5" accepted (what a Decimal took, exponents aside); UnitsError otherwise."""
    if not isinstance(v, str) or not v:
        return 0
    return parse_units(v, decimals, sign="+-", extra="truncate", loose=True, strip=True)


class _NullBus:
    """Stands in for the EventBus when the connector was given none."""

    def publish(self, event: object) -> None:
        pass
