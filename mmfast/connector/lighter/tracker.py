"""The order tracker: our orders, foreign orders, fills and positions, from the venue's truth.

Keys. Our orders are keyed by ``client_order_index`` (coi) with a map to the venue's
``order_index`` once known; orders we did not place (coi 0, or a coi we never registered, e.g.
left over from an earlier run) are kept apart, keyed by ``order_index``, until ``adopt`` takes
them in or the caller cancels them.

States (``mmfast.core.types.OrderStatus``):

* PENDING_NEW from ``new_order`` until the account stream (or REST) shows the order. An ack
  (``on_ack``) is *not* OPEN: it only means "accepted for sequencing".
* OPEN / PARTIALLY_FILLED / FILLED / CANCELED (``cancel_reason`` = the venue's status string,
  e.g. ``canceled-post-only``) come from the venue's order stream and from fills.
* PENDING_CANCEL from ``cancel_requested`` (attempts are counted); a failed cancel goes back to
  the live state. A fill still books while PENDING_CANCEL (the cancel-too-late race).
* REJECTED only from a definite answer: an API-level reject not retried, or a tx lookup saying
  failed. Never from a timeout.
* UNKNOWN from ``on_unknown`` (timeout, transport error). It settles only through
  ``on_tx_outcome`` (tx lookup by hash: executed / failed), ``on_nonce_settled`` (nextNonce
  passed the nonce, or it was re-assigned), or the venue's stream showing the order.

Monotonic rules make replays and stale snapshots harmless: terminal states never revert; an
order message older (``transaction_time``) than the last applied one for that order is ignored;
filled amounts only grow.

Price and size follow the venue: a live order message sets ``price_ticks`` and ``size_lots``
(= ``filled_base_amount`` + ``remaining_base_amount``, invariant under fills, so a modify that
executed is taken exactly whatever the fill timing; ``initial_base_amount`` when remaining is
absent). ``transaction_time`` is the order's creation time on the venue (a modify keeps it), so
these amounts are also ordered by ``updated_at`` then ``block_height`` (each compared only when
both messages carry it): a message older than the one whose amounts were applied, one whose
cumulative fill is below the largest seen, or one whose size is below the lots already filled
does not set them (``stale_amounts``). Only live messages (open, pending) set them: terminal
orders keep their last live amounts. Fills beyond the size held (a modify that grew the order,
its message still to come) raise the size to the lots filled and never clamp the fill; such an
order becomes FILLED only from the venue's status (``size_unconfirmed``).

Fills are de-duplicated by (trade id, side); ids at or below the persisted watermark
(``FillWatermark``, in the state directory) were booked before a restart and are skipped.
Quantities are exact ints: lots, ticks, tick x lot notional, micro-USDC fees.

Positions: the venue's position is authoritative (``venue_position``, published as
``PositionUpdated`` with the fill-driven realized PnL and fees). The tracker also replays our
fills onto a baseline (``rebase_positions`` copies the venue's sizes, at reconciliation) and
``position_mismatches()`` reports every market where the two differ.

Inputs are the venue's payload dicts: ``account_orders`` / ``account_all_orders`` updates and
REST ``accountActiveOrders`` (``apply_orders``), ``account_all_trades`` (``apply_trades``),
``account_all_positions`` (``apply_positions``); decimal strings become ints with the compiled
``parse_units`` (mmfast.core.units, strict rules). Events go out on the core's EventBus:
OrderUpdated, FillReceived, PositionUpdated. Loop thread only.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import orjson

from mmfast.connector.lighter.coi import (
    CoiStateError,
    default_state_dir,
    durable_write,
    state_file_stem,
)
from mmfast.core.errors import OrderError
from mmfast.core.events import FillReceived, OrderUpdated, PositionUpdated, Publisher
from mmfast.core.types import (
    Fill,
    Order,
    OrderStatus,
    OrderType,
    Position,
    Side,
    TimeInForce,
)
from mmfast.core.units import USDC_DECIMALS, parse_units

__all__ = [
    "CODE_DUPLICATE_COI",
    "LIVE_VENUE_STATUSES",
    "DuplicateClientOrderIndex",
    "FillWatermark",
    "OrderTracker",
    "TrackedOrder",
    "TrackerError",
]

CODE_DUPLICATE_COI = 21728  # the venue already has an order with this client_order_index
_TIF_BY_NAME = {
    "immediate-or-cancel": TimeInForce.IOC,
    "good-till-time": TimeInForce.GTT,
    "post-only": TimeInForce.POST_ONLY,
}
_TYPE_BY_NAME = {"limit": OrderType.LIMIT, "market": OrderType.MARKET}
_PENDING_VENUE = frozenset({"pending", "in-progress"})
LIVE_VENUE_STATUSES = frozenset({"open"}) | _PENDING_VENUE  # the venue's not-ended orders


class TrackerError(OrderError, RuntimeError):
    """A tracker input that cannot be applied (malformed payload, unknown market)."""


class DuplicateClientOrderIndex(TrackerError):
    """A client_order_index already tracked: refused before signing."""


@dataclass(slots=True)
class TrackedOrder:
    """One order and what the tracker knows beyond ``mmfast.core.types.Order``.

    ``order`` is the shared, mutable core Order (published in OrderUpdated). ``ours`` is False
    for a foreign order (not placed by this tracker, not adopted).
    """

    order: Order
    ours: bool = True
    nonce: int | None = None  # nonce of the create tx last signed
    tx_hash: str | None = None  # its locally computed hash (for tx lookups)
    acked: bool = False  # the venue accepted the create tx for sequencing
    venue_seen: bool = False  # the order stream or REST has shown this order
    venue_status: str | None = None  # the venue's last status string
    venue_filled_lots: int = 0  # cumulative fill per the order stream (max seen)
    fill_lots: int = 0  # sum of de-duplicated fills booked to this order
    fill_notional: int = 0  # sum of price x size of those fills (tick x lot units)
    cancel_attempts: int = 0  # cancel txs requested so far
    last_venue_time: int = 0  # transaction_time of the last order message applied (us)
    reject_code: int | None = None  # the venue's code, for REJECTED
    unknown_since_ns: int = 0  # monotonic ns when it became UNKNOWN (0: not unknown)
    pre_cancel_status: OrderStatus | None = None  # state to return to if a cancel fails
    venue_price_ticks: int = 0  # price per the last order message whose amounts were applied
    venue_size_lots: int = 0  # filled + remaining per that message (0: none applied yet)
    venue_remaining_lots: int = 0  # remaining per that message
    amounts_key: tuple[int, int, int] = (0, 0, 0)  # its (transaction_time, updated_at, height)
    size_unconfirmed: bool = False  # fills passed the size held: FILLED only from the venue

    @property
    def client_order_index(self) -> int:
        return self.order.client_order_index

    @property
    def order_index(self) -> int | None:
        return self.order.order_index

    @property
    def status(self) -> OrderStatus:
        return self.order.status

    @property
    def avg_fill_price(self) -> Fraction | None:
        """Average price of the booked fills, exact (ticks); None before any fill."""
        return Fraction(self.fill_notional, self.fill_lots) if self.fill_lots else None


class FillWatermark:
    """The highest trade id booked, persisted per (environment, account, API key).

    ``flush()`` writes it durably (temp file, fsync, rename, dir fsync) when it moved. A corrupt
    file is an error, never a reset (a reset would book old fills twice).
    """

    __slots__ = ("_dirty", "_path", "_value")

    def __init__(self, path: Path) -> None:
        self._path = path
        self._value = 0  # highest trade id booked and flushed or pending flush
        self._dirty = False  # value moved since the last flush
        self._load()

    @classmethod
    def for_key(
        cls,
        environment: str,
        account_index: int,
        api_key_index: int,
        state_dir: str | Path | None = None,
    ) -> FillWatermark:
        directory = Path(state_dir) if state_dir is not None else default_state_dir()
        if not directory.is_absolute():
            raise ValueError(f"state_dir must be an absolute path: {str(directory)!r}")
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        stem = state_file_stem(environment, account_index, api_key_index)
        return cls(directory / f"fills-{stem}.json")

    def _load(self) -> None:
        try:
            data = self._path.read_bytes()
        except FileNotFoundError:
            return
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise CoiStateError(f"fill watermark {str(self._path)!r} is not valid JSON") from None
        value = doc.get("trade_id") if isinstance(doc, dict) else None
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise CoiStateError(f"fill watermark {str(self._path)!r} has no valid trade_id")
        self._value = value

    @property
    def value(self) -> int:
        return self._value

    @property
    def path(self) -> Path:
        return self._path

    def advance(self, trade_id: int) -> None:
        if trade_id > self._value:
            self._value = trade_id
            self._dirty = True

    def flush(self) -> bool:
        """Write the watermark if it moved; True if written."""
        if not self._dirty:
            return False
        durable_write(self._path, orjson.dumps({"version": 1, "trade_id": self._value}))
        self._dirty = False
        return True


def _int_field(d: Mapping[str, Any], key: str) -> int:
    v = d.get(key)
    if isinstance(v, bool):
        raise TrackerError(f"{key} is a bool")
    if isinstance(v, int):
        return v
    if isinstance(v, str) and v.lstrip("-").isdigit():
        return int(v)
    raise TrackerError(f"{key} missing or not an int: {v!r}")


class OrderTracker:
    """Tracks our orders, foreign orders, fills and positions (see the module docstring).

    ``markets`` maps market id -> an object with ``price_decimals`` and ``size_decimals``
    (e.g. ``MarketInfo``). ``watermark`` is the persisted fill watermark (None: in memory only,
    for tests and the throwaway simulator mode). ``flush_each_batch``: write the watermark after
    every trades message (off: the caller calls ``flush_watermark`` on its own schedule; a
    watermark behind the truth after a crash books replayed fills twice, never loses one).
    """

    def __init__(
        self,
        bus: Publisher,
        markets: Mapping[int, Any],
        *,
        account_index: int,
        watermark: FillWatermark | None = None,
        flush_each_batch: bool = True,
        monotonic_ns: Callable[[], int] = time.monotonic_ns,
    ) -> None:
        self._bus = bus
        self._markets = dict(markets)  # market id -> decimals holder
        self._account = account_index  # our account (which side of a trade is ours)
        self._watermark = watermark
        self._wm_start = watermark.value if watermark is not None else 0  # booked before start
        self._flush_each_batch = flush_each_batch
        self._now = monotonic_ns
        self._ours: dict[int, TrackedOrder] = {}  # coi -> our order
        self._by_order_index: dict[int, TrackedOrder] = {}  # order_index -> our order
        self._foreign: dict[int, TrackedOrder] = {}  # order_index -> foreign order
        self._seen_fills: set[tuple[int, bool]] = set()  # (trade_id, is_ask) booked this run
        self._venue_pos: dict[int, Position] = {}  # market -> the venue's position
        self._replayed: dict[int, Position] = {}  # market -> baseline + our fills
        self._pnl: dict[int, Position] = {}  # market -> fill-driven realized PnL and fees
        self.duplicate_fills = 0  # fill messages dropped as already booked
        self.stale_updates = 0  # order messages ignored as older than what was applied
        self.stale_amounts = 0  # order messages whose price/size were older than those applied
        self.unknown_statuses = 0  # venue status strings not understood
        self.reconcile_reasons: list[str] = []  # why the caller should reconcile now

    # ------------------------------------------------------------------ queries
    def get(self, client_order_index: int) -> TrackedOrder | None:
        return self._ours.get(client_order_index)

    def by_order_index(self, order_index: int) -> TrackedOrder | None:
        return self._by_order_index.get(order_index) or self._foreign.get(order_index)

    def orders(self) -> Iterator[TrackedOrder]:
        """Our orders (any state)."""
        return iter(self._ours.values())

    def foreign_orders(self) -> Iterator[TrackedOrder]:
        return iter(self._foreign.values())

    def live_orders(self, market: int | None = None) -> list[TrackedOrder]:
        """Our orders that may still trade: live per the venue, PENDING_NEW or UNKNOWN."""
        out = []
        for t in self._ours.values():
            o = t.order
            if o.status.is_terminal or (market is not None and o.market != market):
                continue
            out.append(t)
        return out

    def unknown_orders(self) -> list[TrackedOrder]:
        return [t for t in self._ours.values() if t.order.status is OrderStatus.UNKNOWN]

    def venue_position(self, market: int) -> Position | None:
        return self._venue_pos.get(market)

    def replayed_position(self, market: int) -> Position:
        return self._replayed.setdefault(market, Position(market))

    def position_mismatches(self) -> dict[int, tuple[int, int]]:
        """Markets where the venue's size differs from baseline + fills: {market: (venue, ours)}."""
        out: dict[int, tuple[int, int]] = {}
        for m in set(self._venue_pos) | set(self._replayed):
            venue = self._venue_pos.get(m)
            v = venue.size_lots if venue is not None else 0
            r = self._replayed[m].size_lots if m in self._replayed else 0
            if v != r:
                out[m] = (v, r)
        return out

    def rebase_positions(self) -> None:
        """Take the venue's sizes as the replay baseline (after reconciliation replayed fills)."""
        for m, venue in self._venue_pos.items():
            self._replayed[m] = Position(m, venue.size_lots, Fraction(venue.avg_entry_price_ticks))

    @property
    def watermark(self) -> int:
        """Highest trade id booked (persisted or pending flush)."""
        return self._watermark.value if self._watermark is not None else 0

    def flush_watermark(self) -> bool:
        return self._watermark.flush() if self._watermark is not None else False

    # ------------------------------------------------------------------ local transitions
    def new_order(self, order: Order) -> TrackedOrder:
        """Register an order we are about to sign. Refuses a client_order_index seen before."""
        coi = order.client_order_index
        if coi in self._ours:
            raise DuplicateClientOrderIndex(
                f"client_order_index {coi} is already tracked"
                f" ({self._ours[coi].order.status.name}); refusing to sign it again"
            )
        order.check()
        now = self._now()
        order.status = OrderStatus.PENDING_NEW
        order.created_ns = order.updated_ns = now
        t = TrackedOrder(order)
        self._ours[coi] = t
        return t

    def on_signed(self, coi: int, tx_hash: str, nonce: int) -> None:
        """The create tx was signed: keep its hash and nonce (a re-sign replaces them)."""
        t = self._require(coi)
        t.tx_hash, t.nonce = tx_hash, nonce

    def on_ack(self, coi: int) -> None:
        """Accepted for sequencing (HTTP 200 / WS ack). Not open: only the stream says that."""
        t = self._require(coi)
        t.acked = True
        if t.order.status is OrderStatus.UNKNOWN and not t.venue_seen:
            self._set(t, OrderStatus.PENDING_NEW)

    def on_api_reject(self, coi: int, code: int | None, *, retry: bool, message: str = "") -> None:
        """An API-level reject of the create tx. ``retry``: it will be re-signed with a new
        nonce (stays PENDING_NEW); otherwise REJECTED, the venue's code and message in the
        order's ``cancel_reason``. A 21728 (duplicate coi) means the venue may hold an order
        of ours: UNKNOWN, and a reconciliation is asked for."""
        t = self._require(coi)
        if t.venue_seen or t.order.status.is_terminal:
            return  # the venue already showed the order: its truth wins
        t.acked = False
        if code == CODE_DUPLICATE_COI:
            self.reconcile_reasons.append(f"venue reports duplicate client_order_index {coi}")
            self._to_unknown(t)
            return
        if retry:
            t.tx_hash = None
            self._set(t, OrderStatus.PENDING_NEW)
        else:
            t.reject_code = code
            t.order.cancel_reason = (
                f"rejected {code}: {message}"
                if code is not None
                else f"rejected: {message or 'its nonce passed unused'}"
            )
            self._set(t, OrderStatus.REJECTED)

    def on_unknown(self, coi: int) -> None:
        """Timeout or transport error on the create tx: UNKNOWN (never rejected)."""
        t = self._require(coi)
        if t.venue_seen or t.order.status.is_terminal:
            return
        self._to_unknown(t)

    def on_tx_outcome(self, coi: int, executed: bool) -> None:
        """The tx lookup by hash answered: executed (the order exists on the venue; its state
        comes from the stream or REST) or failed (REJECTED)."""
        t = self._require(coi)
        if t.venue_seen or t.order.status.is_terminal:
            return
        if executed:
            t.acked = True
            self._set(t, OrderStatus.PENDING_NEW)
        else:
            t.order.cancel_reason = "rejected: the venue's tx lookup says it failed"
            self._set(t, OrderStatus.REJECTED)

    def on_nonce_settled(self, coi: int, consumed: bool, *, retry: bool) -> None:
        """nextNonce moved: ``consumed`` (its nonce was passed: the venue took the tx; wait for
        the stream or a tx lookup) or not (the tx never executes at that nonce: re-signed if
        ``retry``, else REJECTED)."""
        t = self._require(coi)
        if t.venue_seen or t.order.status.is_terminal:
            return
        if consumed:
            t.acked = True
            self._set(t, OrderStatus.PENDING_NEW)
        else:
            self.on_api_reject(coi, None, retry=retry)

    def cancel_requested(self, coi: int) -> int:
        """A cancel tx is being sent: PENDING_CANCEL (if not terminal). Returns the attempt
        count (reconciliation fails closed after 3)."""
        t = self._require(coi)
        t.cancel_attempts += 1
        status = t.order.status
        if not status.is_terminal and status is not OrderStatus.PENDING_CANCEL:
            t.pre_cancel_status = status
            self._set(t, OrderStatus.PENDING_CANCEL)
        return t.cancel_attempts

    def on_cancel_failed(self, coi: int) -> None:
        """The cancel was refused (e.g. not an active order): back to the state before it,
        unless the venue settled the order meanwhile (then nothing changes)."""
        t = self._require(coi)
        if t.order.status is OrderStatus.PENDING_CANCEL:
            self._set(t, t.pre_cancel_status or OrderStatus.OPEN)

    def adopt(self, order_index: int) -> TrackedOrder:
        """Take a foreign order with a non-zero coi in as ours (reconciliation's choice)."""
        t = self._foreign.get(order_index)
        if t is None:
            raise TrackerError(f"no foreign order with order_index {order_index}")
        coi = t.order.client_order_index
        if coi <= 0:
            raise TrackerError(f"order {order_index} has no client_order_index to adopt by")
        if coi in self._ours:
            raise DuplicateClientOrderIndex(f"client_order_index {coi} is already tracked")
        del self._foreign[order_index]
        t.ours = True
        self._ours[coi] = t
        self._by_order_index[order_index] = t
        return t

    def forget(self, coi: int) -> None:
        """Drop a terminal order (memory bound); its coi stays refused by the allocator."""
        t = self._ours.get(coi)
        if t is not None and t.order.status.is_terminal:
            del self._ours[coi]
            if t.order.order_index is not None:
                self._by_order_index.pop(t.order.order_index, None)

    # ------------------------------------------------------------------ venue: orders
    def apply_orders(self, payload: Mapping[str, Any] | list[Any]) -> int:
        """Apply an account_orders / account_all_orders message or a REST active-orders reply.
        Returns the number of order entries applied (stale ones excluded)."""
        applied = 0
        for od in _iter_orders(payload):
            if self._apply_order(od):
                applied += 1
        return applied

    def _apply_order(self, od: Mapping[str, Any]) -> bool:
        try:
            market = _int_field(od, "market_index")
            order_index = _int_field(od, "order_index")
            coi = _int_field(od, "client_order_index") if "client_order_index" in od else 0
            status = od.get("status")
            if not isinstance(status, str):
                raise TrackerError("status missing")
            dec = self._decimals(market)
            filled = parse_units(str(od.get("filled_base_amount", "0")), dec.size_decimals)
            initial = parse_units(str(od["initial_base_amount"]), dec.size_decimals)
            price = parse_units(str(od["price"]), dec.price_decimals)
            rem = od.get("remaining_base_amount")
            remaining = parse_units(str(rem), dec.size_decimals) if rem is not None else None
            vtime = _opt_int(od.get("transaction_time"))
            key = (vtime, _opt_int(od.get("updated_at")), _opt_int(od.get("block_height")))
        except (KeyError, ValueError) as exc:
            raise TrackerError(f"malformed order entry: {exc}") from None
        t = self._ours.get(coi) if coi else None
        if t is None:
            t = self._by_order_index.get(order_index)
        if t is None:
            t = self._foreign.get(order_index)
            if t is None:
                t = self._new_foreign(od, market, order_index, coi, initial, price)
        if vtime and vtime < t.last_venue_time:
            self.stale_updates += 1
            return False
        t.last_venue_time = max(t.last_venue_time, vtime)
        o = t.order
        changed = False
        if o.order_index != order_index:
            o.order_index = order_index
            if t.ours:
                self._by_order_index[order_index] = t
            changed = True
        if not t.venue_seen:
            t.venue_seen = True
            t.unknown_since_ns = 0
            changed = True
        t.venue_status = status
        if not o.status.is_terminal and status in LIVE_VENUE_STATUSES:
            size = filled + remaining if remaining is not None else initial
            changed |= self._apply_amounts(t, key, filled, price, size, size - filled)
        if filled > t.venue_filled_lots:
            t.venue_filled_lots = filled
        changed |= self._refresh_filled(t)
        new = self._status_from_venue(t, status)
        if new is not None and new is not o.status:
            if status.startswith("canceled"):
                o.cancel_reason = status
            self._set(t, new)
        elif changed:
            self._publish(t)
        return True

    def _apply_amounts(
        self,
        t: TrackedOrder,
        key: tuple[int, int, int],
        filled: int,
        price: int,
        size: int,
        remaining: int,
    ) -> bool:
        """Price and size of a live order from an order message (a modify executed shows here).
        Returns True if there is something to publish."""
        if (
            _key_older(key, t.amounts_key)
            or filled < t.venue_filled_lots
            or size < max(t.venue_filled_lots, t.fill_lots)
            or price <= 0
            or remaining < 0
        ):
            self.stale_amounts += 1  # older than what was applied, or inconsistent with fills
            return False
        t.amounts_key = key
        t.size_unconfirmed = False
        # The venue's values moving is news even if the Order already holds them (a strategy's
        # optimistic write): subscribers learn the modify was seen.
        news = (t.venue_price_ticks, t.venue_size_lots) != (price, size)
        t.venue_price_ticks, t.venue_size_lots, t.venue_remaining_lots = price, size, remaining
        o = t.order
        if o.price_ticks != price or o.size_lots != size:
            o.price_ticks, o.size_lots = price, size
            news = True
        return news

    def _new_foreign(
        self,
        od: Mapping[str, Any],
        market: int,
        order_index: int,
        coi: int,
        initial: int,
        price: int,
    ) -> TrackedOrder:
        is_ask = od.get("is_ask")
        tif = _TIF_BY_NAME.get(str(od.get("time_in_force")), TimeInForce.GTT)
        expiry = od.get("order_expiry", 0)
        order = Order(
            client_order_index=coi,
            market=market,
            side=Side.SELL if is_ask is True or is_ask == 1 else Side.BUY,
            price_ticks=price,
            size_lots=initial,
            tif=tif,
            order_type=_TYPE_BY_NAME.get(str(od.get("type")), OrderType.LIMIT),
            reduce_only=bool(od.get("reduce_only", False)),
            expiry_ms=expiry if isinstance(expiry, int) else 0,
            status=OrderStatus.PENDING_NEW,
            order_index=order_index,
        )
        order.created_ns = order.updated_ns = self._now()
        t = TrackedOrder(order, ours=False)
        self._foreign[order_index] = t
        return t

    def _status_from_venue(self, t: TrackedOrder, status: str) -> OrderStatus | None:
        current = t.order.status
        if current.is_terminal:
            return None  # terminal is sticky (a stale "open" never revives an order)
        if status == "open":
            if current is OrderStatus.PENDING_CANCEL:
                return None  # our cancel is in flight; the stream has not caught up yet
            return OrderStatus.PARTIALLY_FILLED if t.order.filled_lots else OrderStatus.OPEN
        if status == "filled":
            return OrderStatus.FILLED
        if status.startswith("canceled"):
            return OrderStatus.CANCELED
        if status in _PENDING_VENUE:
            return OrderStatus.PENDING_NEW if current is OrderStatus.UNKNOWN else None
        self.unknown_statuses += 1
        return None

    def _refresh_filled(self, t: TrackedOrder) -> bool:
        o = t.order
        filled = max(t.venue_filled_lots, t.fill_lots)
        if o.size_lots > 0 and filled > o.size_lots:
            # More filled than the size held: a modify grew the order and its order message is
            # not here yet. Fills are the truth: the size is at least that, the rest unknown.
            o.size_lots = filled
            t.size_unconfirmed = True
        if filled > o.filled_lots:
            o.filled_lots = filled
            return True
        return False

    # ------------------------------------------------------------------ venue: trades
    def apply_trades(self, payload: Mapping[str, Any]) -> list[Fill]:
        """Apply an account_all_trades message (or ``{"trades": [...]}`` from REST). Returns the
        new fills (de-duplicated); publishes FillReceived, OrderUpdated, PositionUpdated."""
        trades = payload.get("trades")
        if isinstance(trades, Mapping):
            entries: Iterable[Any] = (t for lst in trades.values() for t in (lst or ()))
        elif isinstance(trades, list):
            entries = trades
        else:
            raise TrackerError("trades payload has no 'trades'")
        new: list[Fill] = []
        for td in sorted(entries, key=lambda d: _int_field(d, "trade_id")):
            for fill in self._fills_of(td):
                new.append(fill)
        if new and self._flush_each_batch:
            self.flush_watermark()
        return new

    def _fills_of(self, td: Mapping[str, Any]) -> list[Fill]:
        trade_id = _int_field(td, "trade_id")
        out = []
        for is_ask in (False, True):
            acct = td.get("ask_account_id" if is_ask else "bid_account_id")
            if acct != self._account:
                continue
            key = (trade_id, is_ask)
            if trade_id <= self._wm_start or key in self._seen_fills:
                self.duplicate_fills += 1
                continue
            fill = self._parse_fill(td, trade_id, is_ask)
            self._seen_fills.add(key)
            if self._watermark is not None:
                self._watermark.advance(trade_id)
            self._book(fill)
            out.append(fill)
        return out

    def _parse_fill(self, td: Mapping[str, Any], trade_id: int, is_ask: bool) -> Fill:
        try:
            market = _int_field(td, "market_id")
            dec = self._decimals(market)
            price = parse_units(str(td["price"]), dec.price_decimals)
            size = parse_units(str(td["size"]), dec.size_decimals)
            usd = parse_units(str(td["usd_amount"]), USDC_DECIMALS)
            is_maker = bool(td.get("is_maker_ask")) == is_ask
            rate = _int_field(td, "maker_fee" if is_maker else "taker_fee")
            coi = _int_field(td, "ask_client_id" if is_ask else "bid_client_id")
            order_index = _int_field(td, "ask_id" if is_ask else "bid_id")
        except (KeyError, ValueError) as exc:
            raise TrackerError(f"malformed trade {trade_id}: {exc}") from None
        return Fill(
            trade_id=trade_id,
            market=market,
            side=Side.SELL if is_ask else Side.BUY,
            price_ticks=price,
            size_lots=size,
            fee=_div_round(usd * rate, 1_000_000),  # micro-USDC, the venue's rounding (half up)
            is_maker=is_maker,
            client_order_index=coi or None,
            order_index=order_index or None,
            ts_ns=self._now(),
        )

    def _book(self, fill: Fill) -> None:
        self._bus.publish(FillReceived(fill))
        self.replayed_position(fill.market).apply_fill(fill)
        pnl = self._pnl.setdefault(fill.market, Position(fill.market))
        pnl.apply_fill(fill)
        t = None
        if fill.client_order_index is not None:
            t = self._ours.get(fill.client_order_index)
        if t is None and fill.order_index is not None:
            t = self._by_order_index.get(fill.order_index) or self._foreign.get(fill.order_index)
        if t is not None:
            o = t.order
            t.fill_lots += fill.size_lots
            t.fill_notional += fill.price_ticks * fill.size_lots
            if fill.order_index is not None and o.order_index is None:
                o.order_index = fill.order_index
                if t.ours:
                    self._by_order_index[fill.order_index] = t
            self._refresh_filled(t)
            status = o.status
            if o.size_lots > 0 and o.filled_lots >= o.size_lots and not t.size_unconfirmed:
                new = OrderStatus.FILLED
            elif status.is_terminal or status is OrderStatus.PENDING_CANCEL:
                new = status  # a partial fill keeps a pending cancel / a final cancel
            else:
                new = OrderStatus.PARTIALLY_FILLED
            if status is OrderStatus.UNKNOWN:
                t.unknown_since_ns = 0
            if new is not status and not (status.is_terminal and new is not OrderStatus.FILLED):
                self._set(t, new)
            else:
                self._publish(t)
        venue = self._venue_pos.get(fill.market)
        if venue is not None:
            self._publish_position(fill.market)

    # ------------------------------------------------------------------ venue: positions
    def apply_positions(self, payload: Mapping[str, Any], *, full: bool = True) -> None:
        """Apply an account_all_positions message (``full``: a market absent is flat)."""
        positions = payload.get("positions")
        if isinstance(positions, list):
            entries = {_int_field(p, "market_id"): p for p in positions}
        elif isinstance(positions, Mapping):
            entries = {int(k): v for k, v in positions.items()}
        else:
            raise TrackerError("positions payload has no 'positions'")
        seen = set()
        for market, pd in entries.items():
            if market not in self._markets:
                continue
            dec = self._markets[market]
            try:
                size = parse_units(str(pd["position"]), dec.size_decimals)
                sign = _int_field(pd, "sign")
                avg = parse_units(str(pd.get("avg_entry_price", "0")), dec.price_decimals)
                funding = _signed_usdc(pd.get("total_funding_paid_out"))
            except (KeyError, ValueError) as exc:
                raise TrackerError(f"malformed position for market {market}: {exc}") from None
            signed = -size if sign < 0 else size
            seen.add(market)
            self._set_venue_position(market, signed, avg if signed else 0, funding)
        if full:
            for market in list(self._venue_pos):
                if market not in seen:
                    self._set_venue_position(market, 0, 0, self._venue_pos[market].funding_paid)

    def _set_venue_position(self, market: int, size: int, avg: int, funding: int = 0) -> None:
        cur = self._venue_pos.get(market)
        if (
            cur is not None
            and cur.size_lots == size
            and cur.avg_entry_price_ticks == avg
            and cur.funding_paid == funding
        ):
            return
        self._venue_pos[market] = Position(market, size, Fraction(avg), funding_paid=funding)
        self._publish_position(market)

    def _publish_position(self, market: int) -> None:
        venue = self._venue_pos[market]
        pnl = self._pnl.get(market)
        pos = Position(
            market,
            venue.size_lots,
            venue.avg_entry_price_ticks,
            pnl.realized_pnl if pnl is not None else Fraction(0),
            pnl.fees_paid if pnl is not None else 0,
            venue.funding_paid,
        )
        self._bus.publish(PositionUpdated(pos, self._now()))

    # ------------------------------------------------------------------ helpers
    def _require(self, coi: int) -> TrackedOrder:
        t = self._ours.get(coi)
        if t is None:
            raise TrackerError(f"client_order_index {coi} is not tracked")
        return t

    def _decimals(self, market: int) -> Any:
        dec = self._markets.get(market)
        if dec is None:
            raise TrackerError(f"market {market} is not known to the tracker")
        return dec

    def _to_unknown(self, t: TrackedOrder) -> None:
        if t.order.status is not OrderStatus.UNKNOWN:
            t.unknown_since_ns = self._now()
            self._set(t, OrderStatus.UNKNOWN)

    def _set(self, t: TrackedOrder, status: OrderStatus) -> None:
        t.order.status = status
        self._publish(t)

    def _publish(self, t: TrackedOrder) -> None:
        now = self._now()
        t.order.updated_ns = now
        if t.ours:
            self._bus.publish(OrderUpdated(t.order, now))


def _opt_int(v: Any) -> int:
    """An optional int field of an order message (0 when absent or not an int)."""
    return v if isinstance(v, int) and not isinstance(v, bool) else 0


def _key_older(new: tuple[int, int, int], last: tuple[int, int, int]) -> bool:
    """True if ``new`` is older than ``last``, field by field, each compared only when both
    carry it (non-zero): a source without ``updated_at`` never hides a newer one."""
    for n, la in zip(new, last, strict=True):
        if n and la and n != la:
            return n < la
    return False


def _iter_orders(payload: Mapping[str, Any] | list[Any]) -> Iterator[Mapping[str, Any]]:
    orders: Any = payload if isinstance(payload, list) else payload.get("orders")
    if isinstance(orders, Mapping):
        for lst in orders.values():
            yield from lst or ()
    elif isinstance(orders, list):
        yield from orders
    else:
        raise TrackerError("orders payload has no 'orders'")


def _div_round(num: int, den: int) -> int:
    """Integer division rounded half away from zero (den > 0)."""
    q, r = divmod(abs(num), den)
    if 2 * r >= den:
        q += 1
    return q if num >= 0 else -q


def _signed_usdc(value: Any) -> int:
    """The venue's signed USDC decimal string (e.g. ``total_funding_paid_out``) -> micro-USDC;
    absent or null is 0."""
    if value is None or value == "":
        return 0
    return parse_units(str(value), USDC_DECIMALS, sign="-")
