"""Reconciliation: align the tracker with the venue at start and after every reconnect.

Before the connector reports ready (reconciliation, docs/connector.md):

1. The account streams have delivered their first frames on the current connection: the
   orders snapshot, the recent trades (fills since the persisted watermark are booked, replays
   are dropped by trade id) and the positions.
2. Venue open orders per market (REST ``accountActiveOrders``) are applied to the tracker.
   Orders we do not expect (not placed by this process: an earlier run's, or another client's)
   are adopted (``unexpected_orders="adopt"``, when they carry a client_order_index) or
   cancelled (``"cancel"``, the default).
3. Our orders the tracker holds as live but the venue no longer lists are looked up by
   client_order_index (``accountOrders``) for their final state; UNKNOWN orders are resolved
   (the nonce refresh and lookups of order entry; reconciliation waits for them).
4. Cancels are confirmed against REST: an order still open is cancelled again, up to
   ``max_cancel_attempts`` (3) attempts in all.
5. The venue's position (REST ``account``) is compared with the tracker's baseline plus the
   fills replayed since; at start the venue's position becomes the baseline.

It fails closed (``ReconcileFailed``, the connector stays not ready with the message) on named
triggers: ``cancel_failed`` (an order still open after 3 cancel attempts), ``position_mismatch``
(a position that differs from the venue's after replaying fills), ``rest_unreachable`` (the REST
API failing for longer than ``rest_unreachable_s``), ``unknown_unresolved`` (an UNKNOWN order
still unresolved when the wait ends).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import aiohttp

from mmfast.connector.lighter.budget import Priority
from mmfast.connector.lighter.rest import MAX_COI_LOOKUP, OutcomeUnknown, VenueUnavailable
from mmfast.core.errors import OrderError
from mmfast.core.log import get_logger
from mmfast.core.types import OrderStatus
from mmfast.core.units import format_units

if TYPE_CHECKING:
    from mmfast.connector.lighter.markets import MarketInfo
    from mmfast.connector.lighter.orders import OrderEntry

__all__ = ["ReconcileFailed", "ReconcileReport", "Reconciler", "position_mismatch"]

_log = get_logger("connector.reconcile")
T = TypeVar("T")

TRIGGERS = ("cancel_failed", "position_mismatch", "rest_unreachable", "unknown_unresolved")


def position_mismatch(info: MarketInfo | None, venue_lots: int, replayed_lots: int) -> str:
    """A position that differs from the fills replayed, in the market's units (the lots beside
    them: the journal's fills and positions are in lots)."""
    if info is None:  # metadata gone (never for a configured market): lots only
        return f"venue position {venue_lots} lots, fills replayed {replayed_lots} lots"
    sd = info.size_decimals
    return (
        f"venue position {format_units(venue_lots, sd)}, fills replayed "
        f"{format_units(replayed_lots, sd)} ({venue_lots} vs {replayed_lots} lots)"
    )


class ReconcileFailed(OrderError, RuntimeError):
    """Reconciliation failed closed; ``trigger`` is one of ``TRIGGERS``."""

    def __init__(self, trigger: str, message: str) -> None:
        super().__init__(f"{trigger}: {message}")
        self.trigger = trigger


@dataclass(slots=True)
class ReconcileReport:
    """What one reconciliation did."""

    start: bool  # the first one (the venue's position became the baseline)
    venue_open: int = 0  # open orders the venue listed
    adopted: list[int] = field(default_factory=list)  # order_index of orders taken in
    cancelled: list[int] = field(default_factory=list)  # order_index of orders cancelled
    looked_up: int = 0  # our orders looked up by client_order_index
    unknown_resolved: int = 0  # UNKNOWN orders settled during the run
    positions: dict[int, int] = field(default_factory=dict)  # market -> venue size (lots)
    duration_s: float = 0.0  # TimeSource seconds


_REST_ERRORS = (VenueUnavailable, OutcomeUnknown, aiohttp.ClientError, OSError, TimeoutError)


class Reconciler:
    """Runs reconciliations for one ``OrderEntry`` (its tracker, REST client and config)."""

    def __init__(
        self, entry: OrderEntry, *, streams_ready: Callable[[], bool] | None = None
    ) -> None:
        self.entry = entry
        self._cfg = entry.config
        self._time = entry._time
        self._streams_ready = streams_ready  # the account streams' first frames arrived
        self.runs = 0  # reconciliations started
        self.failures = 0  # reconciliations that failed closed
        self.last_report: ReconcileReport | None = None
        self.last_error: ReconcileFailed | None = None
        self._rest_fail_since = 0  # monotonic ns of the first REST failure in a row (0: none)

    # ------------------------------------------------------------------ helpers
    def _now_s(self) -> float:
        return self._time.monotonic_ns() / 1e9

    async def _rest(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        """A REST read, retried until it works or REST has failed for rest_unreachable_s."""
        limit_s = self._cfg.rest_unreachable_s
        while True:
            started = self._time.monotonic_ns()
            since = self._rest_fail_since or started
            left_s = limit_s - (started - since) / 1e9
            try:
                # A call stuck in retries and backoff counts as unreachable too.
                result = await asyncio.wait_for(call(), max(0.05, left_s) / self._time.scale)
            except _REST_ERRORS as exc:
                now = self._time.monotonic_ns()
                if not self._rest_fail_since:
                    self._rest_fail_since = started
                down_s = (now - self._rest_fail_since) / 1e9
                if down_s >= self._cfg.rest_unreachable_s:
                    raise ReconcileFailed(
                        "rest_unreachable",
                        f"REST API unreachable for {down_s:.1f} s (limit "
                        f"{self._cfg.rest_unreachable_s} s; last: {what}: "
                        f"{type(exc).__name__})",
                    ) from None
                await self._time.sleep(min(1.0, self._cfg.rest_unreachable_s / 10))
                continue
            self._rest_fail_since = 0
            return result

    async def _wait(self, cond: Callable[[], bool], timeout_s: float, step_s: float = 0.05) -> bool:
        deadline = self._time.monotonic_ns() + int(timeout_s * 1e9)
        while not cond():
            if self._time.monotonic_ns() >= deadline:
                return False
            await self._time.sleep(step_s)
        return True

    async def _active(self) -> dict[int, dict[str, Any]]:
        """order_index -> venue order, every configured market."""
        e = self.entry
        out: dict[int, dict[str, Any]] = {}
        for m in sorted(e.markets):
            orders = await self._rest(
                f"accountActiveOrders({m})",
                lambda m=m: e.rest.account_active_orders(  # type: ignore[misc]
                    e.account_index, m
                ),
            )
            for od in orders:
                out[int(od["order_index"])] = od
        return out

    # ------------------------------------------------------------------ the run
    async def run(self, *, start: bool) -> ReconcileReport:
        """One reconciliation; raises ReconcileFailed on a trigger."""
        self.runs += 1
        t0 = self._now_s()
        try:
            report = await self._run(start)
        except ReconcileFailed as exc:
            self.failures += 1
            self.last_error = exc
            _log.error("reconciliation failed closed: %s", exc)
            raise
        report.duration_s = self._now_s() - t0
        self.last_report = report
        self.last_error = None
        _log.info(
            "reconciled: %d open on the venue, adopted %d, cancelled %d, looked up %d (%.2f s)",
            report.venue_open,
            len(report.adopted),
            len(report.cancelled),
            report.looked_up,
            report.duration_s,
        )
        return report

    async def _run(self, start: bool) -> ReconcileReport:
        e, cfg = self.entry, self._cfg
        tracker = e.tracker
        report = ReconcileReport(start=start)
        self._rest_fail_since = 0
        if self._streams_ready is not None:
            await self._wait(self._streams_ready, cfg.reconcile_timeout_s)
        await self._wait(lambda: e.nonce_ready, cfg.reconcile_timeout_s)
        # Let txs already on their way land first (a cancel in flight is not cancelled again).
        await self._wait(lambda: e.pending_txs == 0, cfg.reconcile_timeout_s)
        unknown_before = {t.order.client_order_index for t in tracker.unknown_orders()}

        # Venue open orders -> tracker.
        active = await self._active()
        report.venue_open = len(active)
        tracker.apply_orders(list(active.values()))

        # Orders we do not expect: adopt or cancel.
        to_cancel: dict[int, int] = {}  # order_index -> market
        for t in list(tracker.foreign_orders()):
            oi = t.order.order_index
            if oi is None or oi not in active:
                continue
            coi = t.order.client_order_index
            if cfg.unexpected_orders == "adopt" and coi > 0 and tracker.get(coi) is None:
                tracker.adopt(oi)
                report.adopted.append(oi)
                _log.info("adopted order %d (client_order_index %d)", oi, coi)
            else:
                to_cancel[oi] = t.order.market

        # Ours live per the tracker but not listed: their final state by client_order_index.
        missing = [
            t.order.client_order_index
            for t in tracker.live_orders()
            if t.order.order_index not in active
            and (t.acked or t.venue_seen or t.order.status is OrderStatus.UNKNOWN)
        ]
        for i in range(0, len(missing), MAX_COI_LOOKUP):
            chunk = missing[i : i + MAX_COI_LOOKUP]
            found = await self._rest(
                "accountOrders", functools.partial(e.rest.account_orders, e.account_index, chunk)
            )
            report.looked_up += len(chunk)
            if found:
                tracker.apply_orders(found)

        # UNKNOWN orders: the nonce refresh settles them, lookups confirm; wait for it.
        if not await self._wait(lambda: not tracker.unknown_orders(), cfg.reconcile_timeout_s, 0.1):
            left = [t.order.client_order_index for t in tracker.unknown_orders()]
            raise ReconcileFailed(
                "unknown_unresolved",
                f"orders {left[:10]} still UNKNOWN after {cfg.reconcile_timeout_s} s",
            )
        report.unknown_resolved = len(unknown_before)

        # Cancels, confirmed against REST, at most max_cancel_attempts per order.
        for t in tracker.live_orders():
            oi = t.order.order_index
            if t.order.status is OrderStatus.PENDING_CANCEL and oi in active:
                to_cancel[oi] = t.order.market
        attempts: dict[int, int] = {}
        while to_cancel:
            for oi, market in list(to_cancel.items()):
                held = tracker.by_order_index(oi)
                ours = held is not None and held.ours
                done = held.cancel_attempts if ours and held is not None else attempts.get(oi, 0)
                if done >= cfg.max_cancel_attempts:
                    coi = held.order.client_order_index if held is not None else 0
                    raise ReconcileFailed(
                        "cancel_failed",
                        f"order {oi} (client_order_index {coi}, market {market}) still open "
                        f"after {done} cancel attempts",
                    )
                if ours and held is not None:
                    e.cancel(held.order.client_order_index)
                else:
                    e.cancel_order_index(market, oi)
                    attempts[oi] = attempts.get(oi, 0) + 1
            # Let the cancels go out and execute, then ask the venue.
            await self._wait(lambda: e.pending_txs == 0, cfg.reconcile_timeout_s)
            await self._time.sleep(cfg.confirm_grace_s)
            active = await self._active()
            for oi in list(to_cancel):
                if oi not in active:
                    report.cancelled.append(oi)
                    del to_cancel[oi]
            tracker.apply_orders(list(active.values()))

        # Positions: the venue's is authoritative; ours is baseline + fills replayed.
        for attempt in range(cfg.position_retries):
            acct = await self._rest(
                "account", lambda: e.rest.account(e.account_index, priority=Priority.RESERVED)
            )
            positions = [
                p
                for p in acct.get("positions") or []
                if isinstance(p, dict) and p.get("market_id") in e.markets
            ]
            tracker.apply_positions({"positions": positions}, full=True)
            report.positions = {
                m: (p.size_lots if (p := tracker.venue_position(m)) else 0) for m in e.markets
            }
            if start:
                tracker.rebase_positions()
                break
            mism = tracker.position_mismatches()
            if not mism:
                break
            if attempt + 1 == cfg.position_retries:
                detail = ", ".join(
                    f"market {m}: {position_mismatch(e.markets.get(m), v, r)}"
                    for m, (v, r) in sorted(mism.items())
                )
                raise ReconcileFailed(
                    "position_mismatch",
                    f"position differs from the venue's after replaying fills ({detail})",
                )
            await self._time.sleep(cfg.confirm_grace_s)
        return report
