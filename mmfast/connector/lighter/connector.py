"""``LighterConnector``: composes the parts of the Lighter connector.

- ``market_data`` (``MarketData``, market_data.py): metadata, one compiled ``OrderBook`` per
  market fed by the market-data WebSocket, trades and market stats, book readiness, gaps and
  crossed books;
- ``account`` (``AccountStreams``, account_streams.py): the authenticated account streams
  (orders, trades, positions, user stats) with auth tokens; None without account streams;
- ``orders`` (``OrderEntry``, orders.py) with its ``tracker`` (``OrderTracker``), ``coi``
  allocator and the ``reconciler``, given a started ``SignerWorker`` and an
  ``OrderEntryConfig``;
- shared: ``rest`` (``LighterRest``), one ``budget`` (``RateBudget``) every request draws
  from, ``readiness`` (``Readiness``), ``signals`` (``Signals``: the core's bus and the pull
  counter), ``skew`` (``SkewMonitor``) and ``tokens``.

The connector itself runs the lifecycle (start, stop, housekeeping), the halt of a stream,
reconciliation (at start and after every reconnect of the account or order connection) and the
venue-position check, and keeps the ``OrderConnector`` calls strategies and the core use
(``place_limit``, ``modify``, ``cancel``, ``cancel_all``: readiness checked here, then order
entry) and builds at start one ``MarketView`` per configured market (``market_view(m)``: what a
strategy reads of its market). Everything else is read from the parts.

Events on the core's bus: ``BookUpdated`` (only while the book is in sync and not crossed),
``PullQuotes`` (gap, crossed book, stream down, halt, market inactive, skew, reconciliation
failed, out-of-band position change), ``ConnectorState`` (every readiness change, with the
reason). With order entry, readiness also needs ``orders:nonce`` (a nextNonce refresh since the
last reconnect), ``orders:leverage`` (when leverage is configured) and ``orders:reconcile``
(failing closed with the trigger's message).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from typing import TYPE_CHECKING, Any

from mmfast.connector.lighter.account_streams import AccountListener, AccountStreams
from mmfast.connector.lighter.auth import AuthTokenProvider, TokenCache
from mmfast.connector.lighter.budget import Priority, RateBudget
from mmfast.connector.lighter.coi import CoiAllocator
from mmfast.connector.lighter.config import LighterConfig
from mmfast.connector.lighter.market_data import MarketData
from mmfast.connector.lighter.orders import OrderEntry, OrderEntryConfig, OrderEntryError
from mmfast.connector.lighter.readiness import NULL_BUS, Readiness, Signals
from mmfast.connector.lighter.reconcile import ReconcileFailed, Reconciler, position_mismatch
from mmfast.connector.lighter.rest import LighterRest, retry_until
from mmfast.connector.lighter.signer import SignerWorker
from mmfast.connector.lighter.skew import SkewMonitor
from mmfast.connector.lighter.stall import StallWatch
from mmfast.connector.lighter.tracker import FillWatermark, OrderTracker
from mmfast.connector.lighter.ws import StreamHalted, WsStream
from mmfast.core.events import EventBus
from mmfast.core.log import get_logger
from mmfast.core.market_view import MarketView
from mmfast.core.timesource import REAL_TIME, TimeSource
from mmfast.core.types import Order, Side, TimeInForce

if TYPE_CHECKING:
    from mmfast.core.trading_core import TradingCore

__all__ = ["LighterConnector"]

_log = get_logger("connector.lighter")

_CONFIRM_READ_S = 2.0  # one REST read of open orders while confirming a cancel-all


class LighterConnector:
    """Composes market data, account streams and order entry (see the module doc)."""

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
        self.config = config
        self._time = time
        self._rng = random.Random(config.seed)
        self.signer = signer  # started by the caller; signs on its own thread
        self.orders_config = orders
        self._dbg = dbg  # the core's gated debug logger (core.dbg), set at start(core) too
        # shared by the parts
        self.signals = Signals(time, bus)  # the core's bus (set at start(core)) and pulls
        self.budget = RateBudget(
            config.tier,
            time,
            max_fraction=config.budget_max_fraction,
            reserve_fraction=config.budget_reserve_fraction,
            volume_quota_low=config.volume_quota_low,
            volume_quota_span=config.volume_quota_span,
            backoff_min_s=config.backoff_min_s,
            backoff_max_s=config.backoff_max_s,
            rng=random.Random(self._rng.getrandbits(64)),
        )
        self.readiness = Readiness(self.signals.publish, time)
        self.skew = SkewMonitor(config.max_clock_skew_ms, time, on_change=self._on_skew)
        self.stall = StallWatch(
            config.max_loop_stall_ms,
            self._on_stall,
            time=time,
            interval_ms=min(100, config.max_loop_stall_ms // 4),
        )
        self.skew.watch = self.stall
        self.tokens: TokenCache | None = None
        if token_provider is not None:
            self.tokens = TokenCache(
                token_provider,
                lifetime_s=config.token_lifetime_s,
                refresh_margin_s=config.token_refresh_margin_s,
                venue_now_s=self.skew.venue_now_s,
            )
        self.rest = LighterRest(
            config.api_base,
            self.budget,
            time,
            tokens=self.tokens,
            skew=self.skew,
            timeout_s=config.request_timeout_s,
            max_retries=config.rest_max_retries,
        )
        # the parts
        self.market_data = MarketData(
            config, self.rest, self.readiness, self.signals, self.skew, time, on_halt=self._on_halt
        )
        self.account: AccountStreams | None = None
        if config.account_streams:
            assert self.tokens is not None
            self.account = AccountStreams(
                config,
                self.tokens,
                self.readiness,
                self.signals,
                self.skew,
                self.market_data.markets,
                on_halt=self._on_halt,
                on_reconnect=self._on_account_reconnect,
                listener=account_listener,
            )
        self.orders: OrderEntry | None = None
        self.tracker: OrderTracker | None = None
        self.coi: CoiAllocator | None = None
        self.reconciler: Reconciler | None = None
        self.reconcile_error: str | None = None  # why reconciliation failed closed
        self._reconcile_wanted: asyncio.Event | None = None
        self._reconciler_task: asyncio.Task[None] | None = None
        self._position_task: asyncio.Task[None] | None = None
        self.out_of_band_events: list[tuple[int, int, str]] = []  # (mono ns, market, reason)
        self.halted: StreamHalted | None = None
        self.cancel_confirmed_by = ""  # the last cancel_all's confirmation: rest, account stream
        self._housekeeping: asyncio.Task[None] | None = None
        self._started = False
        self._views: dict[int, MarketView] = {}  # market -> its MarketView (built at start)

    # --- what strategies read ----------------------------------------------------------------
    def market_view(self, market: int) -> MarketView:
        """The ``MarketView`` of ``market`` (a configured market), built once at ``start``."""
        view = self._views.get(market)
        if view is None:
            raise KeyError(f"no market view for market {market} (configured and started?)")
        return view

    def _build_views(self) -> None:
        md, acct = self.market_data, self.account
        for m in self.config.markets:
            self._views[m] = MarketView(
                m,
                book=md.books[m],
                market_data=md,
                trades=md.trades[m],
                readiness=self.readiness,
                account=acct,
                entry=self.orders,
                budget=self.budget,
                rest=self.rest,
                account_index=self.config.account_index,
                steps=md,
                stall=self.stall,
            )

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
        if core is not None and self.signals.bus is NULL_BUS:
            self.signals.bus = core.bus
        cfg = self.config
        md = self.market_data
        r = self.readiness
        r.add("connector", "starting")
        for m in cfg.markets:
            r.add(f"market:{m}", "no metadata yet")
        r.add("skew", "no venue time yet")
        for m in cfg.markets:
            r.add(f"book:{m}", "no snapshot yet")
        await self.rest.start()
        try:
            # A rate limit or a venue error at start-up is waited out (jittered, bounded).
            await retry_until(
                md.refresh_markets,
                "orderBookDetails",
                cfg.startup_deadline_s,
                time=self._time,
                rng=random.Random(self._rng.getrandbits(64)),
            )
        except Exception:
            await self.rest.close()
            raise
        missing = [m for m in cfg.markets if m not in md.markets]
        if missing:
            await self.rest.close()
            raise ValueError(f"markets not listed by the venue: {missing}")
        stream_args = dict(
            budget=self.budget,
            time=self._time,
            snapshot_deadline_s=cfg.snapshot_deadline_s,
            ping_idle_s=cfg.ping_idle_s,
            pong_timeout_s=cfg.pong_timeout_s,
            connect_timeout_s=cfg.connect_timeout_s,
            backoff_min_s=cfg.backoff_min_s,
            backoff_max_s=cfg.backoff_max_s,
            max_connect_failures=cfg.max_connect_failures,
            max_age_s=cfg.ws_max_age_s,
            send_idle_s=cfg.ws_send_idle_s,
        )
        md.open(stream_args, random.Random(self._rng.getrandbits(64)))
        if self.account is not None:
            self.account.open(stream_args, random.Random(self._rng.getrandbits(64)))
        if self.orders_config is not None:
            self._build_orders(core, stream_args)
        self._build_views()
        r.set("connector", True)
        assert md.stream is not None
        for s in (
            md.stream,
            self.account.stream if self.account is not None else None,
            self.orders.ws if self.orders is not None else None,
        ):
            if s is not None:
                s.watch = self.stall
        self.stall.start()
        md.stream.start()
        if self.account is not None and self.account.stream is not None:
            self.account.stream.start()
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
        self.stall.stop()
        if self._housekeeping is not None:
            self._housekeeping.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._housekeeping
            self._housekeeping = None
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
        await self.market_data.stop()
        if self.account is not None:
            await self.account.stop()
        if self.tokens is not None:
            self.tokens.cancel()
        await self.rest.close()
        self._started = False
        _log.info("lighter connector stopped")

    def _on_halt(self, stream: WsStream, error: StreamHalted) -> None:
        """A stream gave up reconnecting (market data or account): not ready until restart."""
        self.halted = error
        self.readiness.set("connector", False, f"halted: {error}")
        self.signals.pull(None, f"halted: {error}")

    def _on_skew(self, skewed: bool, reason: str) -> None:
        if skewed:
            _log.warning("%s", reason)
            self.readiness.set("skew", False, reason)
            self.signals.pull(None, reason)
        else:
            self.readiness.set("skew", True)

    def _on_stall(self, stalled_ms: float) -> None:
        """The loop did not run for ``stalled_ms``: whatever it knew is that old (its guard may
        have cancelled, its orders may have filled). Not ready until reconciled again; quotes
        pulled; nonces read again before the next tx."""
        reason = f"event loop stalled {stalled_ms:.0f} ms"
        _log.warning(
            "%s: quotes pulled; nonces and orders re-read from the venue before quoting again",
            reason,
        )
        if self.orders is not None:
            self.orders.require_refresh()  # txs queued before the stall are not sent
        self.request_reconcile(reason)
        self.signals.pull(None, reason)

    def _on_account_reconnect(self, reason: str) -> None:
        if self.orders is not None:
            self.orders.require_refresh()  # after every reconnect, before any send
        self.request_reconcile(reason)

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
                    await self.market_data.refresh_markets()
                except Exception as exc:
                    _log.warning("metadata refresh failed: %s", type(exc).__name__)

    async def cancel_all(self, market: int, timeout: float, *, all_markets: bool = False) -> int:
        """Cancel every order of the account in ``market`` (a market-scoped cancel-all; every
        market only with ``all_markets=True`` and the config's explicit option), then wait until
        REST active orders show none or ``timeout`` (TimeSource s) passes. Returns how many are
        still open (0 = all gone). Without order entry it only counts them."""
        if self.orders is not None:
            return await self._cancel_all(market, timeout, all_markets)
        try:
            orders = await asyncio.wait_for(
                self.rest.account_active_orders(self.config.account_index, market),
                timeout / self._time.scale,
            )
        except Exception as exc:
            _log.error("cancel_all(%d): cannot read open orders: %s", market, type(exc).__name__)
            raise
        return len(orders)

    # --- order entry ----------------------------------------------------------------------------
    def _build_orders(self, core: TradingCore | None, stream_args: dict[str, Any]) -> None:
        cfg, ocfg = self.config, self.orders_config
        assert ocfg is not None and self.signer is not None
        markets = {m: self.market_data.markets[m] for m in cfg.markets}
        wm = FillWatermark.for_key(
            ocfg.environment, cfg.account_index, cfg.api_key_index, ocfg.state_dir
        )
        self.tracker = OrderTracker(
            self.signals.bus,
            markets,
            account_index=cfg.account_index,
            watermark=wm,
            monotonic_ns=self._time.monotonic_ns,
        )
        self.coi = CoiAllocator(
            ocfg.environment, cfg.account_index, cfg.api_key_index, state_dir=ocfg.state_dir
        ).open()
        dbg = self._dbg if self._dbg is not None else (core.dbg if core is not None else None)
        self.orders = OrderEntry(
            ocfg,
            account_index=cfg.account_index,
            api_key_index=cfg.api_key_index,
            ws_url=cfg.ws_url,
            signer=self.signer,
            coi=self.coi,
            tracker=self.tracker,
            rest=self.rest,
            budget=self.budget,
            markets=markets,
            time=self._time,
            dbg=dbg,
            mid=self.market_data.mid,
            stream_args=stream_args,
            rng=random.Random(self._rng.getrandbits(64)),
            on_reconnect=self.request_reconcile,
            on_out_of_band=self._on_out_of_band,
        )
        self.orders.on_nonce_ready = self._on_nonce_ready
        assert self.account is not None
        self.account.entry = self.orders
        self.reconciler = Reconciler(self.orders, streams_ready=self.account.all_subscribed)
        self._reconcile_wanted = asyncio.Event()
        r = self.readiness
        r.add("orders:nonce", "no nextNonce yet")
        if ocfg.leverage:
            r.add("orders:leverage", "leverage not applied yet")
        r.add("orders:reconcile", "not reconciled yet")
        self._reconcile_wanted.set()

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
        self.signals.pull(market, f"position changed outside our orders: {reason}")
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
                self.signals.pull(None, f"reconciliation failed: {exc.trigger}")
                if exc.trigger == "rest_unreachable":
                    self._time.call_later(1.0, self._reconcile_wanted.set)
                continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a bug or a malformed venue reply: fail closed, loudly
                _log.exception("reconciliation crashed")
                self.reconcile_error = f"error: {type(exc).__name__}: {exc}"
                self.readiness.set(
                    "orders:reconcile", False, f"FAILED CLOSED: {self.reconcile_error}"
                )
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
            positions = [
                p
                for p in acct.get("positions") or []
                if isinstance(p, dict) and p.get("market_id") in self.market_data.markets
            ]
            self.tracker.apply_positions({"positions": positions}, full=True)
            mism = self.tracker.position_mismatches()
            if mism and self.readiness.holds("orders:reconcile"):
                for m, (v, r) in sorted(mism.items()):
                    self._on_out_of_band(
                        m, position_mismatch(self.market_data.markets.get(m), v, r)
                    )

    def _entry(self) -> OrderEntry:
        if self.orders is None:
            raise OrderEntryError("order entry is not configured (signer + OrderEntryConfig)")
        return self.orders

    def _check_ready(self, reduce_only: bool) -> None:
        # Fail closed: no new exposure while not ready (cancels always go).
        if not self.readiness.ready and not reduce_only:
            raise OrderEntryError(f"not ready: {self.readiness.reason}")

    def place_limit(
        self,
        market: int,
        side: Side,
        price_ticks: int,
        size_lots: int,
        *,
        tif: TimeInForce = TimeInForce.POST_ONLY,
        reduce_only: bool = False,
        expiry_ms: int | None = None,
    ) -> Order:
        """Place a limit order (see ``OrderEntry.place_limit``); refused while not ready unless
        reduce-only. Returns the Order in PENDING_NEW."""
        entry = self._entry()
        self._check_ready(reduce_only)
        return entry.place_limit(
            market,
            side,
            price_ticks,
            size_lots,
            tif=tif,
            reduce_only=reduce_only,
            expiry_ms=expiry_ms,
        )

    def modify(self, order: Order | int, price_ticks: int, size_lots: int) -> None:
        """Modify our order (an Order or its client_order_index)."""
        coi = order if isinstance(order, int) else order.client_order_index
        self._check_ready(False)
        self._entry().modify(coi, price_ticks, size_lots)

    def cancel(self, order: Order | int) -> None:
        """Cancel our order (an Order or its client_order_index); allowed while not ready."""
        coi = order if isinstance(order, int) else order.client_order_index
        self._entry().cancel(coi)

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
            left_s = max(0.1, (deadline - self._time.monotonic_ns()) / 1e9)
            # Each read bounded (a rate-limited REST must not hold the shutdown), and given up
            # early once REST is held by a 429 while the stream already shows none.
            why = "REST held by a rate limit"
            try:
                remaining = await self._read_or_stream(markets, min(_CONFIRM_READ_S, left_s))
            except Exception as exc:
                why, remaining = type(exc).__name__, -1
            if remaining >= 0:
                self.cancel_confirmed_by = "rest"
            elif self._stream_open(markets) == 0:
                # REST cannot say (rate-limited, down): the account's order stream, fully
                # subscribed, shows none live after the cancel-all's answer.
                remaining = 0
                self.cancel_confirmed_by = "account stream"
                _log.warning(
                    "cancel_all(%s): REST could not confirm (%s); the account's "
                    "order stream shows no order open",
                    market,
                    why,
                )
                break
            else:
                _log.warning("cancel_all(%s): cannot read open orders: %s", market, why)
            if remaining == 0 or self._time.monotonic_ns() >= deadline:
                break
            await self._time.sleep(0.2)
        if remaining < 0:
            raise TimeoutError(
                f"cancel_all({market}): open orders unknown (REST failing, "
                "the account stream unsubscribed or showing orders)"
            )
        return remaining

    async def _rest_open(self, markets: list[int]) -> int:
        """Orders REST shows active in ``markets`` (the tracker learns of any it lists)."""
        n = 0
        for m in markets:
            orders = await self.rest.account_active_orders(self.config.account_index, m)
            n += len(orders)
            if self.tracker is not None and orders:
                self.tracker.apply_orders(orders)
        return n

    async def _read_or_stream(self, markets: list[int], timeout_s: float) -> int:
        """``_rest_open``'s count within ``timeout_s`` (TimeSource s); -1 (the read
        cancelled) as soon as REST is held by the budget (a 429's Retry-After, a 5xx backoff)
        while the account stream shows no order live: waiting out the hold would prove
        nothing more."""
        read = asyncio.ensure_future(self._rest_open(markets))
        cost = self.budget.rest_cost("accountActiveOrders")
        end = self._time.monotonic_ns() + int(timeout_s * 1e9)
        try:
            while True:
                done, _ = await asyncio.wait({read}, timeout=0.05 / self._time.scale)
                if done:
                    return read.result()
                if self._time.monotonic_ns() >= end:
                    raise TimeoutError("REST read of open orders")
                if (
                    self.budget.wait_s(cost, Priority.RESERVED) > 0
                    and self._stream_open(markets) == 0
                ):
                    return -1
        finally:
            if not read.done():
                read.cancel()
                with contextlib.suppress(BaseException):
                    await read

    def _stream_open(self, markets: list[int]) -> int:
        """Orders the account stream shows live in ``markets``; -1 when it cannot say."""
        acct = self.account
        if acct is None:
            return -1
        n = 0
        for m in markets:
            k = acct.open_orders(m)
            if k is None:
                return -1
            n += k
        return n

    # --- status ---------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        md, acct = self.market_data, self.account
        b = self.budget.state()
        return {
            "ready": self.readiness.ready,
            "reason": self.readiness.reason,
            "failing": self.readiness.failing(),
            "halted": str(self.halted) if self.halted else None,
            "books": md.status(),
            "streams": {
                s.name: s.stats()
                for s in (md.stream, acct.stream if acct else None)
                if s is not None
            },
            "budget": {
                "level": b.level.name,
                "reason": b.reason,
                "used": dict(b.used),
                "caps": dict(b.caps),
                "volume_quota_remaining": b.volume_quota_remaining,
                "volume_quota_level": self.budget.quota_level.name.lower(),
                "volume_quota_refusals": self.budget.quota_refusals,
                "tier": self.budget.tier.name,
                "blocked_for_s": round(b.blocked_for_s, 3),
            },
            "skew_ms": self.skew.offset_ms,
            "loop": self.stall.status(),
            "gaps": md.gaps,
            "crossed": md.crossed,
            "cross_resyncs": md.cross_resyncs,
            "pulls": self.signals.pulls,
            "bad_messages": md.bad_messages + (acct.bad_messages if acct else 0),
            "orders": self.orders.status() if self.orders is not None else None,
            "reconcile_error": self.reconcile_error,
            "cancel_confirmed_by": self.cancel_confirmed_by,
        }
