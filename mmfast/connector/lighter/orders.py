"""Order entry: the nonce -> sign -> check -> send pipeline on its own WebSocket, REST fallback.

Rules: signing never blocks the loop, callbacks not tasks per tx; nonces, unknown outcomes,
whose truth, cancel-all per market (docs/order-entry.md, docs/connector.md).

Flow of one tx (all on the loop thread except the signer's worker):

```
place_limit/modify/cancel/cancel_all -> _Tx intent -> NonceManager.submit
  dispatch(tx, nonce): same nonce and still-valid signature -> reuse the identical bytes
                       otherwise SignerWorker.submit(request with nonce) -> _on_signed (loop)
  _pump: txs go out in nonce order, one frame at a time: sendtx (1 tx) or sendtxbatch
         (consecutive nonces), at most ``max_inflight_per_market`` order txs in flight per
         market, on the order WebSocket (``ws.orders``, no subscriptions) or, while it is down,
         over REST sendTx / sendTxBatch
  ack 200 -> nonces.accepted, tracker.on_ack (not open: the account stream says open)
  API reject -> nonces.rejected (blocks; one nextNonce refresh; re-sign what is still wanted)
  no ack within ``ack_timeout_s`` / transport error -> UNKNOWN (never rejected): the order
         connection is cut (a late ack can then never be matched to the wrong frame), the
         nonce refreshed; after the refresh an unknown tx whose nonce was consumed is looked up
         (tx by hash, then accountOrders by client_order_index), one whose nonce was not
         consumed is sent again: with the same nonce that is the identical signed bytes.
```

One frame is outstanding at a time. Acks carry no request id on the venue (and the simulator
defaults to that), so matching acks by order would break on the first lost ack; with one frame
outstanding every ack belongs to it, and everything queued meanwhile goes out as one batch of
consecutive nonces when it returns. An API-level reject therefore never finds later txs already
sent: 0 x 21104 after a reject. A rejected batch is rejected whole by the venue; its txs are
re-sent one per frame once, so the one at fault is found and only it is rejected.

Stages are stamped (monotonic ns of the TimeSource): intent, signer queued, signed, sent, acked;
``latency()`` gives medians and p99 of each step so latency is measured in production.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import random
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import TYPE_CHECKING, Any, Final, Literal

import orjson

from mmfast._core.clock import wall_ms as host_wall_ms
from mmfast._core.pipeline import SendRoom
from mmfast.connector.lighter.budget import BudgetLevel, Priority, RateBudget
from mmfast.connector.lighter.coi import CoiAllocator
from mmfast.connector.lighter.listener import stream_listener
from mmfast.connector.lighter.native_signer import TX_EXPIRY_MS
from mmfast.connector.lighter.nonces import NonceManager, NonceState
from mmfast.connector.lighter.rest import (
    RATE_LIMIT_CODES,
    LighterApiError,
    LighterRest,
    OutcomeUnknown,
    RateLimited,
    is_volume_quota_refusal,
)
from mmfast.connector.lighter.signer import (
    CancelAllRequest,
    CancelOrderRequest,
    CreateOrderRequest,
    MarginMode,
    ModifyOrderRequest,
    SignedTx,
    SignerError,
    SignerWorker,
    TxRequest,
    UpdateLeverageRequest,
    imf_for_leverage,
)
from mmfast.connector.lighter.tracker import OrderTracker, TrackedOrder
from mmfast.connector.lighter.ws import StreamHalted, WsStream
from mmfast.core.errors import OrderError
from mmfast.core.latency import StageHistograms
from mmfast.core.log import get_logger
from mmfast.core.timesource import REAL_TIME, TimeSource
from mmfast.core.types import MAX_CLIENT_ORDER_INDEX, Order, OrderStatus, Side, TimeInForce

if TYPE_CHECKING:
    from mmfast.connector.lighter.markets import MarketInfo

__all__ = [
    "MAX_EXPIRY_MS",
    "MIN_EXPIRY_MS",
    "VENUE_MAX_BATCH",
    "OrderEntry",
    "OrderEntryConfig",
    "OrderEntryError",
    "TxKind",
]

_log = get_logger("connector.orders")

# The venue's sendTxBatch cap: 15 txs since early 2026 (50 before; Lighter's API docs of
# 2026-03, checked 2026-12-06).
VENUE_MAX_BATCH = 15
MIN_EXPIRY_MS = 5 * 60_000  # the venue's order expiry window: 5 min ..
MAX_EXPIRY_MS = 30 * 86_400_000  # .. 30 days from now
_EXPIRY_SLACK_MS = 5_000  # keep clear of the window's edges (clock skew, transit)
# At submit, a caller's expiry (computed with the slack above a moment earlier: more than a
# moment on a scaled clock) still needs this much over the venue's minimum.
_EXPIRY_SUBMIT_MARGIN_MS = 2_000
_EXPIRED_AT_MARGIN_MS = 30_000  # a signed tx closer than this to its ExpiredAt is re-signed
CODE_INVALID_NONCE = 21104
CODE_TX_NOT_FOUND = 21500
CODE_DUPLICATE_COI = 21728
# Transient refusals: too many pending order txs in the market / on the account.
CODES_TOO_MANY_PENDING = frozenset({21720, 21506})
_TX_FAILED, _TX_PENDING, _TX_EXECUTED, _TX_FINAL = 0, 1, 2, 3
_ACK_TYPES = ("jsonapi/sendtx", "jsonapi/sendtxbatch")


class OrderEntryError(OrderError, RuntimeError):
    """An order request refused before anything was signed (bad arguments, not ready)."""


class TxKind(IntEnum):
    CREATE = 0
    CANCEL = 1
    MODIFY = 2
    CANCEL_ALL = 3
    LEVERAGE = 4


class _St(IntEnum):
    QUEUED = 0  # waiting for a nonce (held by the nonce manager)
    SIGNING = 1  # nonce assigned, at the signer
    SIGNED = 2  # signed and checked, waiting for its turn to be sent
    SENT = 3  # in the outstanding frame
    ACKED = 4  # accepted for sequencing (nonce consumed)
    UNKNOWN = 5  # no answer: settled after the next nonce refresh
    DONE = 6  # rejected, dropped or settled


@dataclass(frozen=True, slots=True)
class OrderEntryConfig:
    """Order-entry settings. Times are seconds of the injected TimeSource."""

    environment: str = "sim"  # names the coi and fill-watermark state files
    state_dir: str | None = None  # absolute; None: $XDG_STATE_HOME/mmfast
    use_ws: bool = True  # send on the order WebSocket (REST only when False)
    ack_timeout_s: float = 3.0  # no ack by then: UNKNOWN, the order connection is cut
    max_inflight_per_market: int = 16  # order txs sent and not yet executed, per market
    max_batch: int = VENUE_MAX_BATCH  # txs per sendtxbatch frame (at most the venue's cap)
    # Order frames sent on the WebSocket and not yet acked, at most. Acks carry no request id,
    # so with more than one they are matched in order (the connection is one ordered stream
    # and the venue answers it in order: true of mmfast.sim, unconfirmed on Lighter, hence 1
    # unless the environment's config says otherwise). REST sends are always one at a time.
    max_ws_frames: int = 1
    quote_expiry_s: float = 600.0  # default expiry of a GTT/post-only order (dead-man switch)
    confirm_grace_s: float = 0.5  # after its predicted execution an acked tx is checked
    # An accepted order tx counts in flight until its predicted execution plus this margin
    # (the sequencer's timer runs a little behind its own prediction).
    inflight_margin_s: float = 0.25
    check_interval_s: float = 1.0  # housekeeping: confirmations, unknown checks, positions
    unknown_checks: int = 3  # lookups of an unknown tx before the evidence is final
    position_check_interval_s: float = 5.0  # venue position vs fills replayed (REST)
    refresh_retry_s: float = 0.5  # after a failed nextNonce fetch
    # market -> (leverage, margin mode) applied at start with UpdateLeverage
    leverage: Mapping[int, tuple[int, MarginMode]] = field(default_factory=dict)
    allow_all_markets_cancel: bool = False  # cancel_all over every market needs this
    unexpected_orders: str = "cancel"  # "cancel" or "adopt" orders found but not expected
    max_cancel_attempts: int = 3  # reconciliation fails closed on an order still open after
    rest_unreachable_s: float = 30.0  # reconciliation fails closed past this
    reconcile_timeout_s: float = 20.0  # waits inside reconciliation (streams, cancels)
    # Reconciliations closer together than this are coalesced (a reconnect storm would
    # otherwise spend the REST budget on them).
    reconcile_min_interval_s: float = 5.0
    position_retries: int = 3  # position comparisons before a mismatch fails closed
    latency_samples: int = 4096  # stamps kept for latency()
    # The key is maker-only (the venue's premium option): only post-only creates, modifies
    # of post-only orders and cancels are signed; anything else is refused before signing.
    maker_only: bool = False
    # End a nonce block with skip-nonce instead of a nextNonce fetch when every nonce it
    # steps over is proven lost (NonceManager skip_lost; docs/order-entry.md).
    skip_nonce_recovery: bool = False

    def __post_init__(self) -> None:
        for name in (
            "ack_timeout_s",
            "quote_expiry_s",
            "confirm_grace_s",
            "check_interval_s",
            "position_check_interval_s",
            "refresh_retry_s",
            "rest_unreachable_s",
            "reconcile_timeout_s",
        ):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0")
        if not 1 <= self.max_inflight_per_market <= 16:
            raise ValueError("max_inflight_per_market must be within 1..16 (venue pending cap)")
        if not 1 <= self.max_batch <= VENUE_MAX_BATCH:
            raise ValueError(
                f"max_batch must be within 1..{VENUE_MAX_BATCH} (the venue's "
                "batch cap: a longer batch is refused whole, 21514)"
            )
        if not 1 <= self.max_ws_frames <= 16:
            raise ValueError("max_ws_frames must be within 1..16")
        if not MIN_EXPIRY_MS + _EXPIRY_SLACK_MS <= self.quote_expiry_s * 1000 <= MAX_EXPIRY_MS:
            raise ValueError("quote_expiry_s must be within 5 min (+5 s) .. 30 days")
        if self.unexpected_orders not in ("cancel", "adopt"):
            raise ValueError("unexpected_orders must be 'cancel' or 'adopt'")
        if self.reconcile_min_interval_s < 0:
            raise ValueError("reconcile_min_interval_s must be >= 0")
        if self.max_cancel_attempts < 1 or self.unknown_checks < 1 or self.position_retries < 1:
            raise ValueError("max_cancel_attempts, unknown_checks, position_retries must be >= 1")
        for m, (lev, mode) in self.leverage.items():
            imf_for_leverage(lev)
            MarginMode(mode)
            if m < 0:
                raise ValueError("leverage: market ids are >= 0")
        if self.maker_only and self.leverage:
            raise ValueError(
                "leverage: a maker-only API key may not send UpdateLeverage "
                "(post-only creates, modifies and cancels only); set the "
                "leverage with another key"
            )


class _Tx:
    """One tx intent through the pipeline (the nonce manager's item)."""

    __slots__ = (
        "all_markets",
        "checks",
        "coi",
        "confirm_after_ms",
        "error",
        "expiry_ms",
        "gen",
        "imf",
        "index",
        "is_ask",
        "isolate",
        "kind",
        "margin_mode",
        "market",
        "nonce",
        "price",
        "reduce_only",
        "sends",
        "signed",
        "size",
        "state",
        "t_acked",
        "t_intent",
        "t_sent",
        "t_signed",
        "t_signq",
        "tif",
        "venue_hash",
        "waiters",
        "wanted",
    )

    def __init__(self, kind: TxKind, market: int | None, now: int) -> None:
        self.kind = kind  # what the tx does
        self.market = market  # its market (None: every market / no market)
        self.coi = 0  # client_order_index of the order it creates or acts on (0: none)
        self.index = 0  # Index of a cancel/modify (coi or the venue's order_index)
        self.price = 0  # ticks (create, modify)
        self.size = 0  # lots (create, modify)
        self.is_ask = False  # create
        self.tif = TimeInForce.GTT  # create
        self.reduce_only = False  # create
        self.expiry_ms = 0  # create: wall-clock epoch ms (0 for IOC)
        self.all_markets = False  # cancel-all over every market
        self.imf = 0  # leverage: initial margin fraction (1e-4)
        self.margin_mode = MarginMode.CROSS  # leverage
        self.nonce = -1  # nonce of the current assignment
        self.gen = 0  # assignment generation (a late signature of an older one is ignored)
        self.signed: SignedTx | None = None  # last signature (resent verbatim on the same nonce)
        self.state = _St.QUEUED  # pipeline state
        self.wanted = True  # re-sign after a reject / resend after a loss
        self.isolate = False  # send alone (after a batch reject: find the tx at fault)
        self.sends = 0  # frames that carried this tx
        self.venue_hash = ""  # hash sendTx returned (the venue's; may differ from the local one)
        self.confirm_after_ms = 0  # wall ms after which an acked tx is checked against truth
        self.checks = 0  # lookups done while unconfirmed or unknown
        self.error: tuple[int | None, str] | None = None  # final reject (code, message)
        self.waiters: list[asyncio.Future[_Tx]] | None = None  # start-up/rare paths only
        self.t_intent = now  # stage stamps, TimeSource monotonic ns
        self.t_signq = 0
        self.t_signed = 0
        self.t_sent = 0
        self.t_acked = 0

    def request(self, nonce: int, skip_nonce: bool = False) -> TxRequest:
        k = self.kind
        if k is TxKind.CREATE:
            return CreateOrderRequest(
                self.market or 0,
                self.coi,
                self.size,
                self.price,
                self.is_ask,
                self.tif,
                nonce,
                self.reduce_only,
                self.expiry_ms,
                skip_nonce=skip_nonce,
            )
        if k is TxKind.CANCEL:
            return CancelOrderRequest(self.market or 0, self.index, nonce, skip_nonce)
        if k is TxKind.MODIFY:
            return ModifyOrderRequest(
                self.market or 0, self.index, self.size, self.price, nonce, skip_nonce=skip_nonce
            )
        if k is TxKind.CANCEL_ALL:
            return CancelAllRequest(
                None if self.all_markets else self.market,
                nonce,
                all_markets=self.all_markets,
                skip_nonce=skip_nonce,
            )
        return UpdateLeverageRequest(
            self.market or 0, self.imf, nonce, self.margin_mode, skip_nonce
        )

    @property
    def counted(self) -> bool:
        """Counts against the venue's pending-order-tx cap of its market."""
        return self.kind is not TxKind.LEVERAGE and self.market is not None and not self.all_markets

    def __repr__(self) -> str:
        return (
            f"_Tx({self.kind.name}, market={self.market}, coi={self.coi}, "
            f"nonce={self.nonce}, state={self.state.name})"
        )


class _Frame:
    """An outstanding send: its txs (consecutive nonces) and how it went."""

    __slots__ = ("gen", "held", "timer", "txs", "via")

    def __init__(self, txs: list[_Tx], via: str, gen: int) -> None:
        self.txs = txs  # in nonce order
        self.via = via  # "ws" or "rest"
        self.gen = gen  # the order connection it went on (ws)
        self.timer: asyncio.TimerHandle | None = None  # ack timeout (ws)
        self.held = False  # holds one unit of the WebSocket in-flight budget (ws)


def _pct(values: list[int], q: float) -> float:
    if not values:
        return 0.0
    s = sorted(values)
    return s[min(len(s) - 1, int(q * (len(s) - 1) + 0.5))] / 1e3  # us


class OrderEntry:
    """Places, modifies and cancels orders (see the module docstring). Loop thread only.

    Collaborators are given: the signer (started), the coi allocator (opened), the tracker, the
    REST client and the rate budget of the connector. ``dbg`` is the core's gated debug logger
    (``TradingCore.dbg``); ``mid`` gives a market's mid price for the submit log line.
    """

    def __init__(
        self,
        config: OrderEntryConfig,
        *,
        account_index: int,
        api_key_index: int,
        ws_url: str,
        signer: SignerWorker,
        coi: CoiAllocator,
        tracker: OrderTracker,
        rest: LighterRest,
        budget: RateBudget,
        markets: Mapping[int, MarketInfo],
        time: TimeSource = REAL_TIME,
        dbg: Callable[..., None] | None = None,
        mid: Callable[[int], float | None] | None = None,
        stream_args: Mapping[str, Any] | None = None,
        rng: random.Random | None = None,
        on_reconnect: Callable[[str], object] | None = None,
        on_out_of_band: Callable[[int, str], object] | None = None,
    ) -> None:
        self.config = config
        self.account_index = account_index
        self.api_key_index = api_key_index
        self.signer = signer
        self.coi = coi
        self.tracker = tracker
        self.rest = rest
        self.budget = budget
        self.markets = markets
        self._time = time
        self.dbg: Callable[..., None] = dbg or (lambda *a: None)
        self._mid = mid
        self._on_reconnect = on_reconnect  # reconcile (after a reconnect, a venue 21728)
        self._on_out_of_band = on_out_of_band  # (market, reason) position changed under us
        # What a compiled step reads of this order entry, its nonces and the budget (and the
        # nonce counter itself): published at each change (direct_sender).
        self.room = SendRoom(config.max_inflight_per_market, TX_EXPIRY_MS)
        self.nonces: NonceManager[_Tx] = NonceManager(
            self._fetch_nonce,
            self._dispatch,
            still_wanted=self._still_wanted,
            on_unknown_settled=self._unknown_settled,
            on_refresh_failed=self._refresh_failed,
            room=self.room,
            skip_lost=config.skip_nonce_recovery,
        )
        budget.attach_room(self.room)
        self.ws: WsStream | None = None
        if config.use_ws:
            args = {
                k: v
                for k, v in (stream_args or {}).items()
                if k not in ("budget", "time", "rng", "books", "token")
            }
            self.ws = WsStream(
                "ws.orders",
                ws_url,
                [],
                stream_listener(self),
                budget,
                time=time,
                rng=rng or random.Random(),
                **args,
            )
            # Answers are matched to frames in order: a roll-over switches sockets only
            # when no frame awaits its answer on the old one.
            self.ws.rollover_ready = self._ws_quiet
        self._assigned: dict[int, _Tx] = {}  # nonce -> tx assigned and not yet answered
        # Sends awaiting their answer, oldest first: WebSocket frames (up to max_ws_frames,
        # answered in order) or one REST send, never both.
        self._frames: deque[_Frame] = deque()
        self._pump_timer: asyncio.TimerHandle | None = None  # budget / cap wait
        self._inflight: dict[int, int] = {}  # market -> order txs sent, not yet executed
        self._releases: list[tuple[int, int]] = []  # heap (wall ms, market): cap release
        self._watch: dict[int, _Tx] = {}  # id(tx) -> acked/unknown tx awaiting confirmation
        self._creates: dict[int, _Tx] = {}  # coi -> its create tx, until the order is terminal
        self._tasks: set[asyncio.Task[Any]] = set()
        self._housekeeper: asyncio.Task[None] | None = None
        self._started = False
        self._stopping = False
        self.refreshed_gen = 0  # nonce refreshes completed (readiness waits on it)
        self._needs_refresh_mark = 0  # refreshed_gen must exceed this before "nonce" holds
        self.on_nonce_ready: Callable[[bool, str], object] | None = None
        # (intent, signer queue, signed, sent, acked ns; the venue's predicted execution after
        # the send, ns, or None when the answer had none)
        self._lat: deque[tuple[int, int, int, int, int, int | None]] = deque(
            maxlen=config.latency_samples
        )
        # counters
        self.frames_ws = 0  # frames sent on the order WebSocket
        self.ws_frames_peak = 0  # most WebSocket frames awaiting their ack at once
        self.frames_rest = 0  # frames sent over REST
        self.ws_budget_fallbacks = 0  # frames sent over REST for lack of WS message budget
        self.txs_sent = 0  # tx sends (a resend counts again)
        self.identical_resends = 0  # sends of bytes signed earlier (same nonce, after a loss)
        self.resigned = 0  # txs signed again with a new nonce
        self.acks = 0  # txs accepted
        self.api_rejects = 0  # txs rejected at the API level (incl. whole batches)
        self.reject_codes: dict[int, int] = {}  # code -> txs rejected with it
        self.hist = StageHistograms()  # every acked tx's stages (metrics)
        self.unknowns = 0  # txs whose outcome became unknown
        self.ack_timeouts = 0  # frames with no ack in time
        self.ack_mismatches = 0  # acks that could not be the oldest frame's (connection cut)
        self.late_rejects = 0  # accepted txs found failed by a lookup
        self.lookups = 0  # tx / accountOrders lookups
        self.sends_while_blocked = 0  # must stay 0: a send while the nonce state forbids it
        self.direct_sends = 0  # txs signed and sent by a compiled step (direct_sender)
        self.direct_over_budget = 0  # of those, sent when the budget had no room (stays 0)
        self.inflight_peak: dict[int, int] = {}  # market -> highest in-flight count
        self.out_of_band = 0  # fills or position changes not caused by our orders

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Open the order connection and ask for the first nonce refresh (no send before it)."""
        if self._started:
            raise RuntimeError("OrderEntry already started")
        self._started = True
        self._stopping = False
        self._needs_refresh_mark = self.refreshed_gen
        self.nonces.require_refresh()
        if self.ws is not None:
            self.ws.start()
        if self._off_host_clock:
            self._sync_room_clock()
        self._housekeeper = asyncio.get_running_loop().create_task(self._housekeep())
        self._publish_entry()

    async def stop(self) -> None:
        self._stopping = True
        self._publish_entry()
        if self._housekeeper is not None:
            self._housekeeper.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._housekeeper
            self._housekeeper = None
        if self._pump_timer is not None:
            self._pump_timer.cancel()
            self._pump_timer = None
        for f in self._frames:
            if f.timer is not None:
                f.timer.cancel()
        for t in list(self._tasks):
            t.cancel()
        for t in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self.nonces.close()
        if self.ws is not None:
            await self.ws.stop()
        self._started = False

    @property
    def nonce_ready(self) -> bool:
        """A nonce refresh has completed since the last (re)connect."""
        return self.refreshed_gen > self._needs_refresh_mark and self.nonces.state in (
            NonceState.READY,
            NonceState.BLOCKED,
        )

    # ------------------------------------------------------------------ public operations
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
        """Queue a limit order; returns it PENDING_NEW (open only when the venue says so).

        ``expiry_ms``: wall-clock epoch ms; IOC takes 0 (or None); GTT/POST_ONLY take 5 min ..
        30 days from now, default now + ``quote_expiry_s`` (a short one: each quote is its own
        dead-man's switch).
        """
        tif = TimeInForce(tif)
        side = Side(side)
        if self.config.maker_only and tif is not TimeInForce.POST_ONLY:
            raise OrderEntryError(f"maker-only API key: creates must be post-only, not {tif.name}")
        info = self.markets.get(market)
        if info is None:
            raise OrderEntryError(f"market {market} is not configured")
        for name, v in (("price_ticks", price_ticks), ("size_lots", size_lots)):
            if isinstance(v, bool) or not isinstance(v, int):
                raise OrderEntryError(f"{name} must be an int, got {v!r}")
        if not 1 <= price_ticks <= (1 << 32) - 1:
            raise OrderEntryError(f"price_ticks out of 1..2^32-1: {price_ticks}")
        if not (0 if reduce_only else 1) <= size_lots <= MAX_CLIENT_ORDER_INDEX:
            raise OrderEntryError(f"size_lots out of range: {size_lots}")
        now_ms = self._time.wall_ms()
        if tif is TimeInForce.IOC:
            if expiry_ms not in (None, 0):
                raise OrderEntryError("IOC orders take expiry 0")
            expiry = 0
        else:
            expiry = (
                now_ms + int(self.config.quote_expiry_s * 1000)
                if expiry_ms is None
                else int(expiry_ms)
            )
            ahead = expiry - now_ms
            if (
                not MIN_EXPIRY_MS + _EXPIRY_SUBMIT_MARGIN_MS
                <= ahead
                <= MAX_EXPIRY_MS - _EXPIRY_SLACK_MS
            ):
                raise OrderEntryError(
                    f"{tif.name} expiry must be 5 min..30 days from now (wall clock); got "
                    f"{ahead / 1000:.3f} s ahead"
                )
        coi = self.coi.next()
        order = Order(
            coi,
            market,
            side,
            price_ticks,
            size_lots,
            tif=tif,
            reduce_only=reduce_only,
            expiry_ms=expiry,
        )
        self.tracker.new_order(order)
        tx = _Tx(TxKind.CREATE, market, self._time.monotonic_ns())
        tx.coi = coi
        tx.price, tx.size, tx.is_ask = price_ticks, size_lots, side is Side.SELL
        tx.tif, tx.reduce_only, tx.expiry_ms = tif, reduce_only, expiry
        self._creates[coi] = tx
        mid = self._mid(market) if self._mid is not None else None
        self.dbg(
            "place_limit submit: symbol=%s mid=%s market_index=%d client_order_index=%d "
            "post_only=%s reduce_only=%s price_i=%d base_i=%d",
            info.symbol,
            mid,
            market,
            coi,
            tif is TimeInForce.POST_ONLY,
            reduce_only,
            price_ticks,
            size_lots,
        )
        self.nonces.submit(tx)
        return order

    def modify(self, coi: int, price_ticks: int, size_lots: int) -> None:
        """Modify our order ``coi`` (by client_order_index) to a new price and size."""
        t = self._ours(coi)
        if t.order.status.is_terminal:
            raise OrderEntryError(f"order {coi} is {t.order.status.name}: cannot modify")
        if self.config.maker_only and t.order.tif is not TimeInForce.POST_ONLY:
            raise OrderEntryError(
                f"maker-only API key: order {coi} is {t.order.tif.name}, "
                "only post-only orders may be modified"
            )
        if not 1 <= price_ticks <= (1 << 32) - 1 or not 1 <= size_lots <= MAX_CLIENT_ORDER_INDEX:
            raise OrderEntryError("modify: price_ticks/size_lots out of range")
        tx = _Tx(TxKind.MODIFY, t.order.market, self._time.monotonic_ns())
        tx.coi = tx.index = coi
        tx.price, tx.size = price_ticks, size_lots
        self.nonces.submit(tx)

    def cancel(self, coi: int) -> int:
        """Cancel our order ``coi`` (by client_order_index). Returns the cancel attempt count
        (0: already terminal, nothing sent)."""
        t = self._ours(coi)
        if t.order.status.is_terminal:
            return 0
        attempts = self.tracker.cancel_requested(coi)
        tx = _Tx(TxKind.CANCEL, t.order.market, self._time.monotonic_ns())
        tx.coi = tx.index = coi
        self.nonces.submit(tx)
        return attempts

    def cancel_order_index(self, market: int, order_index: int) -> None:
        """Cancel an order by the venue's order_index (orders we did not place)."""
        if order_index <= MAX_CLIENT_ORDER_INDEX:
            raise OrderEntryError("an order_index is >= 2^48")
        tx = _Tx(TxKind.CANCEL, market, self._time.monotonic_ns())
        tx.index = order_index
        t = self.tracker.by_order_index(order_index)
        if t is not None and t.ours:
            tx.coi = t.order.client_order_index
            self.tracker.cancel_requested(tx.coi)
        self.nonces.submit(tx)

    def cancel_all(self, market: int | None, *, all_markets: bool = False) -> _Tx:
        """Send a cancel-all scoped to ``market``. Every market only with ``all_markets=True``
        and ``allow_all_markets_cancel`` in the config (the venue's default is every market)."""
        if all_markets:
            if market is not None:
                raise OrderEntryError("cancel_all: a market or all_markets=True, not both")
            if not self.config.allow_all_markets_cancel:
                raise OrderEntryError(
                    "cancel_all over every market needs allow_all_markets_cancel=True"
                )
        elif market is None or market not in self.markets:
            raise OrderEntryError(f"cancel_all needs a configured market, got {market!r}")
        for t in self.tracker.live_orders(None if all_markets else market):
            self.tracker.cancel_requested(t.order.client_order_index)
        tx = _Tx(TxKind.CANCEL_ALL, market, self._time.monotonic_ns())
        tx.all_markets = all_markets
        self.nonces.submit(tx)
        return tx

    async def apply_leverage(self, timeout_s: float) -> dict[int, str]:
        """UpdateLeverage for every configured market; returns {market: error} for the ones the
        venue refused or that did not resolve (empty: all applied)."""
        txs = []
        for m, (lev, mode) in sorted(self.config.leverage.items()):
            tx = _Tx(TxKind.LEVERAGE, m, self._time.monotonic_ns())
            tx.imf, tx.margin_mode = imf_for_leverage(lev), MarginMode(mode)
            txs.append(tx)
        errors: dict[int, str] = {}
        for tx in txs:
            fut = self._waiter(tx)
            self.nonces.submit(tx)
            try:
                await asyncio.wait_for(asyncio.shield(fut), timeout_s / self._time.scale)
            except TimeoutError:
                errors[tx.market or 0] = f"no answer within {timeout_s} s"
                continue
            if tx.error is not None:
                code, msg = tx.error
                errors[tx.market or 0] = f"refused: {code} {msg}"
            elif tx.state is _St.UNKNOWN:
                errors[tx.market or 0] = "outcome unknown"
        return errors

    async def is_coi_open(self, coi: int, market: int | None = None) -> bool:
        """Whether the venue's REST active orders hold an order with this client_order_index
        (in ``market``, or the tracker's market for it, or every configured market)."""
        if market is None:
            t = self.tracker.get(coi)
            markets = [t.order.market] if t is not None else list(self.markets)
        else:
            markets = [market]
        for m in markets:
            for od in await self.rest.account_active_orders(self.account_index, m):
                if int(od.get("client_order_index") or 0) == coi:
                    return True
        return False

    def signed_create(self, coi: int) -> SignedTx | None:
        """The signed create tx of our order ``coi`` (while it is not terminal)."""
        tx = self._creates.get(coi)
        return tx.signed if tx is not None else None

    def _ours(self, coi: int) -> TrackedOrder:
        t = self.tracker.get(coi)
        if t is None:
            raise OrderEntryError(f"client_order_index {coi} is not an order of ours")
        return t

    def _waiter(self, tx: _Tx) -> asyncio.Future[_Tx]:
        fut: asyncio.Future[_Tx] = asyncio.get_running_loop().create_future()
        if tx.waiters is None:
            tx.waiters = []
        tx.waiters.append(fut)
        return fut

    def _wake(self, tx: _Tx) -> None:
        if tx.waiters:
            for f in tx.waiters:
                if not f.done():
                    f.set_result(tx)
            tx.waiters = None

    # ------------------------------------------------------------------ nonce manager hooks
    async def _fetch_nonce(self) -> int:
        n = await self.rest.next_nonce(self.account_index, self.api_key_index)
        # Runs after the manager's release (same task step): readiness sees the new state.
        asyncio.get_running_loop().call_soon(self._refreshed)
        return n

    def _refreshed(self) -> None:
        self.refreshed_gen += 1
        if self.on_nonce_ready is not None:
            self.on_nonce_ready(self.nonce_ready, "")
        self._pump()

    def _refresh_failed(self, exc: BaseException) -> None:
        if self._stopping or isinstance(exc, asyncio.CancelledError):
            return
        _log.warning("nextNonce refresh failed: %s", type(exc).__name__)
        if not self._stopping:
            self._time.call_later(self.config.refresh_retry_s, self.nonces.retry_refresh)

    @staticmethod
    def _still_wanted(tx: _Tx, code: int | None) -> bool:
        return tx.wanted

    def _maker_only_refusal(self, tx: _Tx) -> str | None:
        """Why a maker-only key may not send ``tx`` (None: it may). The public calls refuse
        first; this is the last check before signing, whatever path the tx came by."""
        k = tx.kind
        if k is TxKind.CANCEL or k is TxKind.CANCEL_ALL:
            return None
        if k is TxKind.CREATE:
            return (
                None
                if tx.tif is TimeInForce.POST_ONLY
                else f"creates must be post-only, not {TimeInForce(tx.tif).name}"
            )
        if k is TxKind.MODIFY:
            t = self.tracker.get(tx.coi)
            if t is not None and t.order.tif is TimeInForce.POST_ONLY:
                return None
            return f"order {tx.coi} is not known post-only: it may not be modified"
        return "UpdateLeverage is not allowed"

    def _dispatch(self, tx: _Tx, nonce: int) -> None:
        """The nonce manager gave ``tx`` a nonce: sign it (or reuse its identical bytes)."""
        tx.gen += 1
        tx.nonce = nonce
        self._assigned[nonce] = tx
        if self.config.maker_only:
            why = self._maker_only_refusal(tx)
            if why is not None:  # never signed: the nonce goes back (a local reject)
                _log.error("maker-only API key: refused before signing: %s", why)
                self._assigned.pop(nonce, None)
                tx.state = _St.DONE
                self.nonces.rejected(nonce, None, retry=False)
                self._final_reject(tx, None, f"maker-only API key: {why}")
                return
        skip = self.nonces.skip_due(nonce)
        s = tx.signed
        if s is not None and s.nonce == nonce and self._fresh(s) and s.request.skip_nonce == skip:
            tx.state = _St.SIGNED  # same nonce, still valid: the identical signed bytes
            self._pump()
            return
        if s is not None:
            self.resigned += 1
        tx.signed = None
        tx.state = _St.SIGNING
        tx.t_signq = self._time.monotonic_ns()
        gen = tx.gen
        try:
            self.signer.submit(
                tx.request(nonce, skip), lambda res, err: self._on_signed(tx, gen, res, err)
            )
        except SignerError as exc:
            self._on_signed(tx, gen, None, exc)

    def _fresh(self, s: SignedTx) -> bool:
        exp = s.info.get("ExpiredAt") if s.info else None
        return isinstance(exp, int) and exp - self._time.wall_ms() > _EXPIRED_AT_MARGIN_MS

    def _on_signed(
        self, tx: _Tx, gen: int, res: SignedTx | None, err: BaseException | None
    ) -> None:
        if gen != tx.gen or tx.state is not _St.SIGNING:
            return  # an assignment revoked meanwhile (a reject elsewhere blocked the nonces)
        nonce = tx.nonce
        if err is not None or res is None:
            self._assigned.pop(nonce, None)
            tx.state = _St.DONE
            self.nonces.rejected(nonce, None, retry=False)
            self._final_reject(tx, None, f"signing failed: {err}")
            return
        tx.signed = res
        tx.state = _St.SIGNED
        tx.t_signed = self._time.monotonic_ns()
        if tx.kind is TxKind.CREATE:
            self.tracker.on_signed(tx.coi, res.tx_hash, nonce)
        self._pump()

    # ------------------------------------------------------------------ sending
    def _release_due(self) -> None:
        now = self._time.wall_ms()
        rel = self._releases
        while rel and rel[0][0] <= now:
            _, m = heapq.heappop(rel)
            self._set_inflight(m, max(0, self._inflight.get(m, 0) - 1))

    def _set_inflight(self, market: int, n: int) -> None:
        self._inflight[market] = n
        self.room.set_inflight(market, n)

    def _publish_entry(self) -> None:
        """Whether a compiled step may send a frame now, first in nonce order (``SendRoom``'s
        entry_ok): what ``_pump`` would allow for a tx signed now with nothing waiting before
        it. Published after every change of what it reads (pump, answers, losses, the order
        connection, start and stop); the step clears it when it sends. Nothing to compute while
        no step sends through the room (the flag stays False)."""
        if not self.room.watched:
            return
        ws = self.ws
        frames = self._frames
        ok = self._started and not self._stopping and ws is not None and ws.live
        if ok and frames:
            ok = (
                frames[-1].via == "ws"
                and len(frames) < self.config.max_ws_frames
                and len(self._assigned) == sum(len(f.txs) for f in frames)
                and self.budget.order_level is BudgetLevel.OK
            )
        elif ok:
            ok = not self._assigned
        self.room.entry_ok = ok

    def _pump(self) -> None:
        """Send the next frame if there is room for one and the nonce state allows it."""
        self._pump_once()
        self._publish_entry()

    def _pump_once(self) -> None:
        frames = self._frames
        if frames:
            if frames[-1].via != "ws" or len(frames) >= self.config.max_ws_frames:
                return
            if self.budget.order_level is not BudgetLevel.OK:
                # Short of messages (200 a minute on the venue): one frame at a time, so what
                # is signed meanwhile goes out as one batch when its ack is back.
                return
        if not self._assigned or self._stopping:
            return
        if not self.nonces.can_send:
            return
        self._release_due()
        cfg = self.config
        batch: list[_Tx] = []
        counts: dict[int, int] = {}
        capped = False
        for n in sorted(self._assigned):
            tx = self._assigned[n]
            if tx.state is _St.SENT:
                continue  # in an outstanding frame (they come first: sends go in nonce order)
            if tx.state is not _St.SIGNED:
                break
            if tx.counted:
                m = tx.market or 0
                c = counts.get(m, 0)
                if self._inflight.get(m, 0) + c >= cfg.max_inflight_per_market:
                    capped = True
                    break
                counts[m] = c + 1
            if tx.isolate and batch:
                break
            batch.append(tx)
            if tx.isolate or len(batch) >= cfg.max_batch:
                break
        if not batch:
            if capped:
                self._arm_pump(self._cap_wait_s())
            return
        ws = self.ws
        via = "ws" if ws is not None and ws.live else "rest"
        if via == "ws":
            assert ws is not None
            # Never from the WebSocket's reserve: that keeps pings and pongs going (a starved
            # keepalive gets every connection closed). Cancels use REST's reserve instead.
            cost = self.budget.ws_sendtx_cost(len(batch))
            if not self.budget.try_acquire(cost, Priority.NORMAL):
                # The WebSocket's message budget (200/min on the venue) is spent: REST sendTx
                # has its own, larger budget.
                via = "rest"
                self.ws_budget_fallbacks += 1
        if via == "rest" and frames:
            return  # REST could overtake the frames on the WebSocket: wait for their acks
        self._send(batch, via)

    def _cap_wait_s(self) -> float:
        if not self._releases:
            return self.config.check_interval_s
        return max(0.001, (self._releases[0][0] - self._time.wall_ms()) / 1000 + 0.001)

    def _arm_pump(self, delay_s: float) -> None:
        if self._pump_timer is None:
            self._pump_timer = self._time.call_later(delay_s, self._pump_fire)

    def _pump_fire(self) -> None:
        self._pump_timer = None
        self._pump()

    def _send(self, batch: list[_Tx], via: str) -> None:
        if not self.nonces.can_send:  # never expected: counted, and nothing goes out
            self.sends_while_blocked += 1
            return
        self._mark_sent(batch)
        if via == "ws":
            ws = self.ws
            assert ws is not None
            frame = self._ws_frame(batch, ws.generation)
            if len(batch) == 1:
                s = batch[0].signed
                assert s is not None
                # The signer's tx_info text verbatim, as the JSON object the venue takes.
                data = b'{"type":"jsonapi/sendtx","data":{"tx_type":%d,"tx_info":%s}}' % (
                    s.tx_type,
                    s.tx_info.encode(),
                )
            else:
                data = orjson.dumps(
                    {
                        "type": "jsonapi/sendtxbatch",
                        "data": {
                            "tx_types": orjson.dumps([t.signed.tx_type for t in batch]).decode(),  # type: ignore[union-attr]
                            "tx_infos": orjson.dumps([t.signed.tx_info for t in batch]).decode(),  # type: ignore[union-attr]
                        },
                    }
                )
            if not ws.send_text(data):
                self._lost(frame, "order connection closed while sending")
            return
        frame = _Frame(batch, via, 0)
        self._frames.append(frame)
        self.frames_rest += 1
        task = asyncio.get_running_loop().create_task(self._rest_send(frame))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _mark_sent(self, batch: list[_Tx]) -> None:
        """Txs going out in one frame now: their state, stamps and in-flight counts."""
        now = self._time.monotonic_ns()
        for tx in batch:
            if tx.sends:
                self.identical_resends += 1
            tx.sends += 1
            tx.state = _St.SENT
            tx.t_sent = now
            if tx.counted:
                m = tx.market or 0
                c = self._inflight.get(m, 0) + 1
                self._set_inflight(m, c)
                if c > self.inflight_peak.get(m, 0):
                    self.inflight_peak[m] = c
        self.txs_sent += len(batch)

    def _ws_frame(self, batch: list[_Tx], gen: int) -> _Frame:
        """The outstanding WebSocket frame carrying ``batch`` (its ack timer armed)."""
        frame = _Frame(batch, "ws", gen)
        frame.held = True
        self._frames.append(frame)
        frame.timer = self._time.call_later(self.config.ack_timeout_s, self._ack_timeout, frame)
        self.frames_ws += 1
        if len(self._frames) > self.ws_frames_peak:
            self.ws_frames_peak = len(self._frames)
        return frame

    async def _rest_send(self, frame: _Frame) -> None:
        txs = frame.txs
        try:
            if len(txs) == 1:
                s = txs[0].signed
                assert s is not None
                prio = (
                    Priority.RESERVED
                    if txs[0].kind in (TxKind.CANCEL, TxKind.CANCEL_ALL)
                    else Priority.NORMAL
                )
                res = await self.rest.send_tx(s.tx_type, s.tx_info, priority=prio)
            else:
                signed = [t.signed for t in txs]
                assert all(x is not None for x in signed)  # a frame holds signed txs only
                res = await self.rest.send_tx_batch(
                    [x.tx_type for x in signed if x is not None],
                    [x.tx_info for x in signed if x is not None],
                )
        except RateLimited as exc:
            self._replied(frame, exc.code, exc.message, None, None)
        except LighterApiError as exc:
            self._replied(frame, exc.code, exc.message, None, None)
        except OutcomeUnknown as exc:
            self._lost(frame, f"rest: {exc}")
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._lost(frame, f"rest: {type(exc).__name__}")
        else:
            self._replied(frame, 200, res.message, res.tx_hash, res.predicted_execution_time_ms)

    # ------------------------------------------------------------------ the compiled step's tx
    def direct_sender(self, market: int) -> DirectSender | None:
        """What a compiled step needs to sign and send the first tx of a requote itself, before
        any Python bookkeeping (``mmfast._core.pipeline``): the native signer signing inline
        and the order WebSocket. None otherwise (the step's txs then all come here)."""
        native = getattr(self.signer, "native", None)
        if self.ws is None or native is None or self.markets.get(market) is None:
            return None
        return DirectSender(self, market)

    def _direct_sent(
        self,
        kind: TxKind,
        market: int,
        coi: int,
        price: int,
        size: int,
        nonce: int,
        expired_at: int,
        tx_info: str | None,
        tx_hash: str,
        sent: bool,
        sign_ns: int,
    ) -> None:
        """Book the tx a compiled step took ``nonce`` for from the room (which said this
        entry would send it now): signed and sent (``sent``: the socket took the frame; else
        it is lost and recovered as any lost frame), or not signed (``tx_info`` None: the
        nonce goes back)."""
        if tx_info is None:
            self.nonces.give_back(nonce)
            self._publish_entry()
            return
        # The frame's budget: the room said it fits, and windows only drain meanwhile.
        if not self.budget.try_acquire(self.budget.ws_sendtx_cost(1), Priority.NORMAL):
            self.direct_over_budget += 1
        now = self._time.monotonic_ns()
        tx = _Tx(kind, market, now)
        tx.coi = tx.index = coi
        tx.price, tx.size = price, size
        tx.gen = 1
        tx.nonce = nonce
        if kind is TxKind.CANCEL:
            self.tracker.cancel_requested(coi)
            request: TxRequest = CancelOrderRequest(market, coi, nonce)
        else:
            request = ModifyOrderRequest(market, coi, size, price, nonce)
        tx.signed = SignedTx(
            request=request,
            tx_type=request.TX_TYPE,
            tx_info=tx_info,
            info={"ExpiredAt": expired_at, "Nonce": nonce},
            tx_hash=tx_hash,
            nonce=nonce,
            queued_ns=now,
            signed_ns=now,
            sign_ns=sign_ns,
        )
        tx.t_signq = tx.t_signed = now
        self.signer.count_signed(sign_ns)  # type: ignore[attr-defined]
        self.nonces.adopt(nonce, tx)
        self._assigned[nonce] = tx
        self.direct_sends += 1
        self._mark_sent([tx])
        ws = self.ws
        assert ws is not None
        frame = self._ws_frame([tx], ws.generation)
        if not sent:
            self._lost(frame, "order connection closed while sending")
        self._publish_entry()

    # ------------------------------------------------------------------ answers
    def _ack_timeout(self, frame: _Frame) -> None:
        if frame not in self._frames:
            return
        self.ack_timeouts += 1
        frame.timer = None
        self._lost(frame, f"no ack within {self.config.ack_timeout_s} s")
        # Cut the connection: a late ack on it can never be taken for the next frame's.
        if self.ws is not None:
            self.ws.disconnect("ack timeout")

    def _on_ws_ack(self, msg: dict[str, Any]) -> None:
        frames = self._frames
        if not frames or frames[0].via != "ws":
            return  # nothing outstanding on this connection: stale
        frame = frames[0]  # answers come in send order
        data = msg.get("data")
        if not isinstance(data, dict):
            data = msg
        if len(frames) > 1 and not self._ack_fits(frame, data.get("tx_hash")):
            # An ack of a later frame (the oldest one's was lost): every match from here on
            # would be off by one. Give up all outstanding frames and cut the connection.
            self.ack_mismatches += 1
            self._lost(frame, "ack does not fit the oldest outstanding frame")
            if self.ws is not None:
                self.ws.disconnect("ack order mismatch")
            return
        self._unhold(frame)
        code = data.get("code")
        code = code if type(code) is int else -1
        quota = data.get("volume_quota_remaining")
        if is_volume_quota_refusal(code, str(data.get("message", ""))):
            self.budget.on_volume_quota_refused(quota if type(quota) is int else None)
        elif code in RATE_LIMIT_CODES:
            ra = data.get("retry_after")
            self.budget.on_rate_limited(
                "sendtx", float(ra) if isinstance(ra, (int, float)) else None
            )
        elif type(quota) is int:
            self.budget.note_volume_quota(quota)
        pet = data.get("predicted_execution_time_ms")
        self._replied(
            frame,
            code,
            str(data.get("message", ""))[:200],
            data.get("tx_hash"),
            pet if type(pet) is int else None,
        )

    def _ack_fits(self, frame: _Frame, hashes: Any) -> bool:
        """Whether an ack's tx hashes can belong to ``frame`` (checked while several frames
        are outstanding): a batch ack lists one hash per tx, and a hash known to be another
        outstanding frame's means the answers are off by one. An ack without hashes (a
        reject) cannot be checked."""
        if not hashes:
            return True
        hl = [str(h) for h in hashes] if isinstance(hashes, (list, tuple)) else [str(hashes)]
        if len(hl) != len(frame.txs):
            return False
        others = {
            t.signed.tx_hash
            for f in self._frames
            if f is not frame
            for t in f.txs
            if t.signed is not None
        }
        return not others.intersection(hl)

    def _unhold(self, frame: _Frame) -> None:
        """The frame is answered or given up: its ack timer and WS in-flight unit go."""
        if frame.timer is not None:
            frame.timer.cancel()
            frame.timer = None
        if frame.held:
            frame.held = False
            self.budget.release_inflight()

    def _replied(
        self, frame: _Frame, code: int, message: str, hashes: Any, predicted_ms: int | None
    ) -> None:
        frames = self._frames
        if not frames or frames[0] is not frame:
            return
        frames.popleft()
        now = self._time.monotonic_ns()
        now_ms = self._time.wall_ms()
        txs = frame.txs
        if code == 200:
            if isinstance(hashes, (list, tuple)):
                hl = [str(h) for h in hashes]
            else:
                hl = [str(hashes or "")]
            at = max(now_ms, predicted_ms or 0)
            # Executed at acceptance (no speed bump): the slot is free now. Held in the
            # sequencer: free after its predicted execution plus a margin.
            release_at = now_ms if at <= now_ms else at + int(self.config.inflight_margin_s * 1000)
            for i, tx in enumerate(txs):
                self._assigned.pop(tx.nonce, None)
                self.nonces.accepted(tx.nonce)
                tx.state = _St.ACKED
                tx.t_acked = now
                tx.venue_hash = hl[i] if i < len(hl) else ""
                tx.confirm_after_ms = at + int(self.config.confirm_grace_s * 1000)
                self.acks += 1
                if tx.counted:
                    heapq.heappush(self._releases, (release_at, tx.market or 0))
                if tx.kind is TxKind.CREATE:
                    self.tracker.on_ack(tx.coi)
                    self.dbg(
                        "place_limit result: client_order_index=%d tx_hash=%s local_hash=%s",
                        tx.coi,
                        tx.venue_hash,
                        tx.signed.tx_hash if tx.signed else "",
                    )
                if tx.kind in (TxKind.CREATE, TxKind.CANCEL):
                    self._watch[id(tx)] = tx
                # The venue's predicted execution, as a delay after the send (its wall time
                # less the send's on the same clock): beside the measured ack.
                pred = (
                    None
                    if predicted_ms is None
                    else (predicted_ms - now_ms) * 1_000_000 + (now - tx.t_sent)
                )
                row = (tx.t_intent, tx.t_signq, tx.t_signed, tx.t_sent, now, pred)
                self._lat.append(row)
                if row[1] and row[2] and row[3]:
                    for name, a, b in _ENTRY_STAGES:
                        self.hist.observe(name, row[b] - row[a])
                self._wake(tx)
            if self._releases:
                self._arm_pump(self._cap_wait_s())  # the releases drain the published count
            self._pump()
            return
        # Not accepted: no nonce of the frame was consumed.
        self.api_rejects += len(txs)
        self.reject_codes[code] = self.reject_codes.get(code, 0) + len(txs)
        self._release_counted(txs)
        # A spent volume quota is no request rate to wait out: a create or modify it refused
        # is final (the planner decides again from the budget), a cancel (free) goes again.
        quota = is_volume_quota_refusal(code, message)
        limited = (code in RATE_LIMIT_CODES and not quota) or code in CODES_TOO_MANY_PENDING
        if code in CODES_TOO_MANY_PENDING:
            # The venue holds more of our txs than we counted: fill the cap for a while.
            hold = self._time.wall_ms() + int(self.config.inflight_margin_s * 1000)
            for m in {t.market for t in txs if t.counted}:
                extra = self.config.max_inflight_per_market - self._inflight.get(m or 0, 0)
                for _ in range(max(0, extra)):
                    self._set_inflight(m or 0, self._inflight.get(m or 0, 0) + 1)
                    heapq.heappush(self._releases, (hold, m or 0))
                self._arm_pump(self._cap_wait_s())  # releases drain the published count
        single = len(txs) == 1
        for tx in txs:
            self._assigned.pop(tx.nonce, None)
            if (
                limited
                or code == CODE_INVALID_NONCE
                or not single
                or (quota and tx.kind in (TxKind.CANCEL, TxKind.CANCEL_ALL))
            ):
                # Re-sent after the refresh (a batch: one by one, to find the one at fault).
                tx.state = _St.QUEUED
                if not single and not limited and code != CODE_INVALID_NONCE:
                    tx.isolate = True
                if tx.kind is TxKind.CREATE:
                    self.tracker.on_api_reject(tx.coi, code, retry=True)
                self.nonces.rejected(tx.nonce, code, retry=True)
            else:
                tx.state = _St.DONE
                tx.wanted = False
                self.nonces.rejected(tx.nonce, code, retry=False)
                self._final_reject(tx, code, message)
        self._revoke_unsent()

    def _release_counted(self, txs: list[_Tx]) -> None:
        for tx in txs:
            if tx.counted:
                m = tx.market or 0
                self._set_inflight(m, max(0, self._inflight.get(m, 0) - 1))

    def _revoke_unsent(self) -> None:
        """Assigned but unsent txs give their nonces back (held for the refresh, re-signed or
        resent identically if they get the same nonce)."""
        for n in sorted(self._assigned):
            if self._assigned[n].state is _St.SENT:
                continue  # in an outstanding frame: its own answer (or loss) resolves it
            tx = self._assigned.pop(n)
            if tx.state is _St.SIGNING:
                tx.gen += 1  # its signature, when it comes, is ignored
                tx.signed = None
            tx.state = _St.QUEUED
            self.nonces.rejected(n, None, retry=True)

    def _final_reject(self, tx: _Tx, code: int | None, message: str) -> None:
        tx.error = (code, message)
        if tx.kind is TxKind.CREATE:
            self.tracker.on_api_reject(tx.coi, code, retry=False, message=message)
            self.dbg("place_limit result: client_order_index=%d error=%s %s", tx.coi, code, message)
            if code == CODE_DUPLICATE_COI and self._on_reconnect is not None:
                # The venue holds an order with this id: reconcile, never retry.
                self._on_reconnect(f"venue reports duplicate client_order_index {tx.coi}")
        elif tx.kind is TxKind.CANCEL and tx.coi:
            self.tracker.on_cancel_failed(tx.coi)
        elif tx.kind is TxKind.CANCEL_ALL:
            for t in self.tracker.live_orders(None if tx.all_markets else tx.market):
                self.tracker.on_cancel_failed(t.order.client_order_index)
        if tx.kind is not TxKind.CREATE:
            _log.debug("%s refused: %s %s", tx.kind.name, code, message)
        self._wake(tx)

    def _lost(self, frame: _Frame, reason: str) -> None:
        """No answer for ``frame``: its txs, and those of every frame sent after it (their
        answers can no longer be matched), are UNKNOWN (never rejected) until the refresh."""
        frames = self._frames
        if frame not in frames:
            return
        lost = list(frames)
        frames.clear()
        for f in lost:
            self._unhold(f)
            self._lost_txs(f, reason)
        self._revoke_unsent()
        self._mark_needs_refresh()
        self.nonces.require_refresh()

    def _lost_txs(self, frame: _Frame, reason: str) -> None:
        for tx in frame.txs:
            self._assigned.pop(tx.nonce, None)
            tx.state = _St.UNKNOWN
            tx.checks = 0
            self.unknowns += 1
            self.nonces.unknown(tx.nonce)
            if tx.kind is TxKind.CREATE:
                self.tracker.on_unknown(tx.coi)
                self.dbg(
                    "place_limit result: client_order_index=%d error=unknown (%s)", tx.coi, reason
                )
        self._release_counted(frame.txs)

    def _unknown_settled(self, tx: _Tx, nonce: int, consumed: bool) -> None:
        """After a refresh: ``consumed`` (the venue took a tx at that nonce: confirm it by
        lookup) or not (it never executed: send it again, identical bytes if same nonce)."""
        if tx.state is not _St.UNKNOWN:
            return
        if consumed:
            tx.state = _St.ACKED
            tx.confirm_after_ms = self._time.wall_ms()
            if tx.kind is TxKind.CREATE:
                self.tracker.on_nonce_settled(tx.coi, True, retry=False)
            if tx.kind in (TxKind.CREATE, TxKind.CANCEL):
                self._watch[id(tx)] = tx
            self._wake(tx)
            return
        if tx.kind is TxKind.CREATE:
            self.tracker.on_nonce_settled(tx.coi, False, retry=tx.wanted)
        if tx.wanted:
            tx.state = _St.QUEUED
            self.nonces.submit(tx)
        else:
            tx.state = _St.DONE
            self._wake(tx)

    # ------------------------------------------------------------------ order stream listener
    @property
    def connected(self) -> bool:
        return self.ws is not None and self.ws.live

    def _mark_needs_refresh(self) -> None:
        self._needs_refresh_mark = self.refreshed_gen
        if self.on_nonce_ready is not None:
            self.on_nonce_ready(False, "nonce refresh pending")

    def require_refresh(self) -> None:
        """No signed send until nextNonce has been fetched again (after any reconnect)."""
        self._mark_needs_refresh()
        self._revoke_unsent()
        self.nonces.require_refresh()

    def on_stream_up(self, stream: WsStream) -> None:
        # Every reconnect: no signed send until nextNonce has been fetched again.
        self._mark_needs_refresh()
        self._revoke_unsent()
        self.nonces.require_refresh()
        self._publish_entry()
        if self._on_reconnect is not None and stream.connects > 1:
            self._on_reconnect("order connection reconnected")

    def on_stream_down(self, stream: WsStream, reason: str) -> None:
        frames = self._frames
        if frames and frames[0].via == "ws":
            self._lost(frames[0], f"order connection down: {reason}")
        self._mark_needs_refresh()
        self._revoke_unsent()
        self.nonces.require_refresh()  # sends continue over REST after the refresh
        self._publish_entry()

    def on_message(self, stream: WsStream, msg: dict[str, Any], now_ns: int) -> None:
        if msg.get("type") in _ACK_TYPES:
            self._on_ws_ack(msg)

    def on_halt(self, stream: WsStream, error: StreamHalted) -> None:
        _log.error("order connection halted: %s (REST sendTx only from now on)", error)

    # ------------------------------------------------------------------ account stream input
    def on_account_orders(self, market: int, orders: list[dict[str, Any]], snapshot: bool) -> None:
        # (A modify shows up as a new price / size: the tracker follows the venue's messages.)
        self.tracker.apply_orders({"orders": {str(market): orders}})

    def on_account_trades(self, market: int, trades: list[dict[str, Any]], snapshot: bool) -> None:
        fills = self.tracker.apply_trades({"trades": {str(market): trades}})
        for f in fills:
            t = None
            if f.client_order_index is not None:
                t = self.tracker.get(f.client_order_index)
            if t is None and f.order_index is not None:
                t = self.tracker.by_order_index(f.order_index)
            if t is None or not t.ours:
                self.out_of_band += 1
                if self._on_out_of_band is not None:
                    self._on_out_of_band(f.market, f"fill {f.trade_id} not from an order of ours")

    def on_positions_msg(self, msg: dict[str, Any]) -> None:
        self.tracker.apply_positions(msg, full=True)

    # ------------------------------------------------------------------ housekeeping
    @property
    def _off_host_clock(self) -> bool:
        """The time source's wall clock is not the host's: scaled, or virtual (a backtest
        on the tape's time)."""
        return self._time.scale != 1.0 or bool(getattr(self._time, "virtual", False))

    def _sync_room_clock(self) -> None:
        """A compiled step stamps ExpiredAt from the host's wall clock plus the room's
        ``expiry_ms``: under a time source away from the host's (a simulator at a time
        scale, a backtest's virtual clock) the difference goes into ``expiry_ms``, re-read
        every housekeeping round (the drift in between is seconds against a 10-minute
        validity)."""
        self.room.expiry_ms = TX_EXPIRY_MS + (self._time.wall_ms() - host_wall_ms())

    async def _housekeep(self) -> None:
        cfg = self.config
        while True:
            await self._time.sleep(cfg.check_interval_s)
            try:
                if self._off_host_clock:
                    self._sync_room_clock()
                self._release_due()
                self._pump()
                await self._confirm()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # keep the loop alive; next round retries
                _log.warning("order housekeeping: %s", type(exc).__name__)

    async def _confirm(self) -> None:
        """Acked (or nonce-consumed) creates and cancels the venue has not shown an effect of:
        look them up (tx by hash, then the order by client_order_index)."""
        now_ms = self._time.wall_ms()
        for coi in [c for c, tx in self._creates.items() if tx.state in (_St.ACKED, _St.DONE)]:
            t = self.tracker.get(coi)
            if t is None or t.order.status.is_terminal:
                del self._creates[coi]
        due: list[_Tx] = []
        for key, tx in list(self._watch.items()):
            t = self.tracker.get(tx.coi) if tx.coi else None
            if tx.kind is TxKind.CREATE:
                settled = t is None or t.venue_seen or t.order.status.is_terminal
            else:
                settled = (
                    t is None
                    or t.order.status.is_terminal
                    or t.order.status is not OrderStatus.PENDING_CANCEL
                )
            if settled:
                del self._watch[key]
            elif now_ms >= tx.confirm_after_ms:
                due.append(tx)
        for tx in due[:40]:
            await self._lookup(tx)

    async def _lookup(self, tx: _Tx) -> None:
        tx.checks += 1
        self.lookups += 1
        status: int | None = None
        code: int | None = None
        for h in (tx.venue_hash, tx.signed.tx_hash if tx.signed else ""):
            if not h:
                continue
            try:
                body = await self.rest.tx(h)
            except LighterApiError as exc:
                if exc.code == CODE_TX_NOT_FOUND:
                    continue
                return
            except Exception:
                return
            st = body.get("status")
            status = st if type(st) is int else None
            code = _event_error(body.get("event_info"))
            break
        t = self.tracker.get(tx.coi) if tx.coi else None
        if status == _TX_FAILED:
            self.late_rejects += 1
            self._watch.pop(id(tx), None)
            tx.error = (code, "failed in the sequencer")
            if tx.kind is TxKind.CREATE and t is not None:
                t.reject_code = code
                self.tracker.on_tx_outcome(tx.coi, False)
                self.dbg(
                    "place_limit result: client_order_index=%d error=%s (sequencer)", tx.coi, code
                )
            elif tx.kind is TxKind.CANCEL and t is not None:
                self.tracker.on_cancel_failed(tx.coi)
            return
        if tx.kind is TxKind.CREATE and t is not None:
            try:
                found = await self.rest.account_orders(self.account_index, [tx.coi])
            except Exception:
                return
            if found:
                self.tracker.apply_orders(found)
                return
            if status in (_TX_EXECUTED, _TX_FINAL):
                self.tracker.on_tx_outcome(tx.coi, True)
            elif status is None and tx.checks >= self.config.unknown_checks:
                # Its nonce was consumed, the venue knows no order by this id after every
                # check: the tx failed in the sequencer.
                self._watch.pop(id(tx), None)
                self.late_rejects += 1
                self.tracker.on_tx_outcome(tx.coi, False)
        elif tx.kind is TxKind.CANCEL and t is not None:
            try:
                found = await self.rest.account_orders(self.account_index, [tx.coi])
            except Exception:
                return
            if found:
                self.tracker.apply_orders(found)
            if (
                t.order.status is OrderStatus.PENDING_CANCEL
                and tx.checks >= self.config.unknown_checks
            ):
                self._watch.pop(id(tx), None)
                self.tracker.on_cancel_failed(tx.coi)

    # ------------------------------------------------------------------ status
    @property
    def in_flight(self) -> dict[int, int]:
        self._release_due()
        return {m: n for m, n in self._inflight.items() if n}

    def in_flight_of(self, market: int) -> int:
        """Order txs of ``market`` sent and not yet executed (``in_flight`` without the dict)."""
        self._release_due()
        return self._inflight.get(market, 0)

    @property
    def frames_outstanding(self) -> int:
        """Sends awaiting their answer (WebSocket frames, or the one REST send)."""
        return len(self._frames)

    @property
    def pending_txs(self) -> int:
        """Txs assigned or held and not yet answered (signing, queued, outstanding)."""
        return self.nonces.held + self.nonces.in_flight

    def latency(self) -> dict[str, dict[str, float]]:
        """Per stage (microseconds, TimeSource time): median and p99 of intent->signer queue,
        signer queue->signed, signed->sent, sent->acked, intent->acked, and beside the ack
        the venue's ``predicted_execution_time_ms`` as a delay after the send (``predicted``;
        only when the venue gave one)."""
        rows = [r for r in self._lat if r[1] and r[2] and r[3]]
        out: dict[str, dict[str, float]] = {}
        for name, a, b in _ENTRY_STAGES:
            vals = [r[b] - r[a] for r in rows]
            out[name] = {
                "n": float(len(vals)),
                "p50_us": _pct(vals, 0.5),
                "p99_us": _pct(vals, 0.99),
            }
        pred = [r[5] for r in rows if r[5] is not None]
        if pred:
            out["predicted"] = {
                "n": float(len(pred)),
                "p50_us": _pct(pred, 0.5),
                "p99_us": _pct(pred, 0.99),
            }
        return out

    def _ws_quiet(self) -> bool:
        """No frame sent on the order WebSocket awaits its answer."""
        return not any(f.via == "ws" for f in self._frames)

    def status(self) -> dict[str, Any]:
        return {
            "nonce": repr(self.nonces),
            "connected": self.connected,
            "frames_ws": self.frames_ws,
            "frames_rest": self.frames_rest,
            "ws_frames_peak": self.ws_frames_peak,
            "ws_budget_fallbacks": self.ws_budget_fallbacks,
            "txs_sent": self.txs_sent,
            "acks": self.acks,
            "api_rejects": self.api_rejects,
            "reject_codes": dict(self.reject_codes),
            "unknowns": self.unknowns,
            "ack_timeouts": self.ack_timeouts,
            "ack_mismatches": self.ack_mismatches,
            "identical_resends": self.identical_resends,
            "resigned": self.resigned,
            "late_rejects": self.late_rejects,
            "lookups": self.lookups,
            "in_flight": self.in_flight,
            "inflight_peak": dict(self.inflight_peak),
            "out_of_band": self.out_of_band,
            "sends_while_blocked": self.sends_while_blocked,
            "direct_sends": self.direct_sends,
            "direct_over_budget": self.direct_over_budget,
        }


# Order entry's stages: (name, stamp from, stamp to) in a latency row (intent, signer queue,
# signed, sent, acked, predicted).
# The stages of a latency row (t_intent, t_signq, t_signed, t_sent, t_acked, predicted):
# (name, from index, to index), indexes typed so a row's int stamps are all they reach.
_Stamp = Literal[0, 1, 2, 3, 4]
_ENTRY_STAGES: Final[tuple[tuple[str, _Stamp, _Stamp], ...]] = (
    ("queue", 0, 1),
    ("sign", 1, 2),
    ("send", 2, 3),
    ("ack", 3, 4),
    ("total", 0, 4),
)


class DirectSender:
    """A compiled step's way to sign and send its first tx itself (``OrderEntry``'s
    ``direct_sender``): the ``room`` it takes the nonce from (and reads whether the tx may go
    now), the native signer (``native``), the order socket's ``send`` and ``sent(...)`` to
    book it. Loop thread."""

    __slots__ = ("_entry", "market")

    def __init__(self, entry: OrderEntry, market: int) -> None:
        self._entry = entry
        self.market = market

    @property
    def native(self) -> Any:
        return self._entry.signer.native  # type: ignore[attr-defined]

    @property
    def room(self) -> SendRoom:
        return self._entry.room

    def send(self, data: bytes) -> bool:
        ws = self._entry.ws
        return ws is not None and ws.send_text(data)

    def sent(
        self,
        kind: int,
        coi: int,
        price: int,
        size: int,
        nonce: int,
        expired_at: int,
        tx_info: str | None,
        tx_hash: str,
        sent: bool,
        sign_ns: int,
    ) -> None:
        """``kind``: 1 modify, 2 cancel (the plan's ActionKind values)."""
        self._entry._direct_sent(
            TxKind.MODIFY if kind == 1 else TxKind.CANCEL,
            self.market,
            coi,
            price,
            size,
            nonce,
            expired_at,
            tx_info,
            tx_hash,
            sent,
            sign_ns,
        )


def _event_error(event_info: Any) -> int | None:
    if isinstance(event_info, str) and event_info:
        try:
            ev = orjson.loads(event_info)
        except orjson.JSONDecodeError:
            return None
        err = ev.get("error") if isinstance(ev, dict) else None
        if isinstance(err, dict) and type(err.get("code")) is int:
            return int(err["code"])
    return None
