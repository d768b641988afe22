"""The venue's truth for tests: what the exchange holds, not what a client believes."""

from __future__ import annotations

import sys
from collections import Counter, deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mmfast.sim.engine import Exchange, Order, Position

if TYPE_CHECKING:
    from mmfast.sim.clock import SimClock
    from mmfast.sim.faults import FaultRecord
    from mmfast.sim.server import Simulator


@dataclass(frozen=True, slots=True)
class OrderTruth:
    """A snapshot of one venue order."""

    order_index: int  # exchange id
    client_order_index: int  # client id
    account: int  # owner
    market: int  # market id
    is_ask: bool  # sell side
    price: int  # ticks
    initial: int  # lots
    remaining: int  # lots
    filled: int  # lots
    status: str  # venue status name
    tif: int  # 0 IOC, 1 GTT, 2 post-only
    reduce_only: bool  # reduce-only flag
    expiry_ms: int  # order expiry (wall ms)


@dataclass(frozen=True, slots=True)
class FillTruth:
    """One trade as the venue recorded it."""

    trade_id: int  # venue trade id
    market: int  # market id
    price: int  # ticks
    size: int  # lots
    maker_account: int  # account of the resting order
    taker_account: int  # account of the incoming order
    maker_order_index: int  # resting order
    taker_order_index: int  # incoming order
    maker_is_ask: bool  # resting order was a sell
    maker_fee: int  # micro-USDC paid by the maker
    taker_fee: int  # micro-USDC paid by the taker
    timestamp_ms: int  # wall ms


@dataclass(frozen=True, slots=True)
class PositionTruth:
    """A position in one market."""

    size: int  # lots, + long / - short
    entry_quote: int  # micro-USDC cost basis
    realized_pnl: int  # micro-USDC, fees excluded
    unrealized_pnl: int  # micro-USDC at mark
    fees_paid: int  # micro-USDC


@dataclass(frozen=True, slots=True)
class BalanceTruth:
    """An account's money, micro-USDC."""

    collateral: int  # deposits + realized PnL - fees
    equity: int  # collateral + unrealized PnL
    initial_margin: int  # requirement of positions and open orders
    available: int  # equity - initial margin


class RequestLog:
    """Requests seen by the server, stamped with the simulator's monotonic clock: the last
    `keep` in a log (`SimConfig.request_log_kept`), and a count per name since start."""

    def __init__(self, clock: SimClock, keep: int = 100_000) -> None:
        self._clock = clock
        self._log: deque[tuple[int, str]] = deque(maxlen=keep)
        self._totals: dict[str, int] = {}  # name -> requests since start

    def record(self, name: str) -> None:
        name = sys.intern(name)  # one str object per name, not one per request
        totals = self._totals
        totals[name] = totals.get(name, 0) + 1
        self._log.append((self._clock.monotonic_ns(), name))

    def __len__(self) -> int:
        """Entries in the log."""
        return len(self._log)

    def entries(self, prefix: str = "") -> list[tuple[int, str]]:
        """Kept requests as (simulated monotonic ns, name), oldest first, filtered by prefix."""
        return [(t, n) for t, n in self._log if n.startswith(prefix)]

    def counts(self, window_ms: int | None = None) -> dict[str, int]:
        """Requests per name within the last `window_ms` (of the kept ones), or since start
        if None."""
        if window_ms is None:
            return dict(self._totals)
        since = self._clock.monotonic_ns() - window_ms * 1_000_000
        return dict(Counter(n for t, n in self._log if t >= since))


def _order(o: Order) -> OrderTruth:
    return OrderTruth(
        o.order_index,
        o.client_order_index,
        o.account,
        o.market,
        o.is_ask,
        o.price,
        o.initial,
        o.remaining,
        o.filled_base,
        o.status,
        o.tif,
        o.reduce_only,
        o.expiry_ms,
    )


class Truth:
    """Read-only view of the venue's state (call on the simulator's event-loop thread)."""

    def __init__(
        self, exchange: Exchange, requests: RequestLog, sim: Simulator | None = None
    ) -> None:
        self._ex = exchange
        self._requests = requests
        self._sim = sim

    def open_orders(
        self, account: int | None = None, market: int | None = None
    ) -> list[OrderTruth]:
        """Resting orders, oldest first."""
        return [_order(o) for o in self._ex.open_orders(account, market)]

    def order(self, order_index: int) -> OrderTruth | None:
        """A live order, or a finished one still in its account's inactive window
        (`SimConfig.inactive_orders_kept`); None otherwise."""
        o = self._ex.orders.get(order_index)
        return _order(o) if o is not None else None

    def order_by_coi(self, account: int, client_order_index: int) -> OrderTruth | None:
        """The latest order of `account` with this client_order_index (live, or finished and
        still in the account's inactive window)."""
        o = self._ex.account(account).last_by_coi.get(client_order_index)
        return _order(o) if o is not None else None

    def fills(self, account: int | None = None, market: int | None = None) -> list[FillTruth]:
        """Trades of the last `SimConfig.recent_trades_kept` per market, oldest first."""
        out = []
        for t in self._ex.fills(account, market):
            maker_is_ask = t["is_maker_ask"]
            maker, taker = (t["ask"], t["bid"]) if maker_is_ask else (t["bid"], t["ask"])
            out.append(
                FillTruth(
                    t["trade_id"],
                    t["market_id"],
                    t["price"],
                    t["size"],
                    maker.account,
                    taker.account,
                    maker.order_index,
                    taker.order_index,
                    maker_is_ask,
                    t["maker_fee_paid"],
                    t["taker_fee_paid"],
                    t["timestamp"],
                )
            )
        return out

    def position(self, account: int, market: int) -> PositionTruth:
        acct = self._ex.account(account)
        p = acct.positions.get(market) or Position()
        return PositionTruth(
            p.size,
            p.entry_quote,
            p.realized_pnl,
            self._ex.unrealized_pnl(acct, market),
            p.fees_paid,
        )

    def leverage(self, account: int, market: int) -> tuple[int, int]:
        """(initial margin fraction in 1e-4, margin mode) of the account in a market."""
        acct = self._ex.account(account)
        return acct.leverage.get(market, (self._ex.margin_fraction(acct, market), 0))

    def balance(self, account: int) -> BalanceTruth:
        acct = self._ex.account(account)
        equity = self._ex.equity(acct)
        im = self._ex.initial_margin(acct)
        return BalanceTruth(acct.collateral, equity, im, equity - im)

    def next_nonce(self, account: int, api_key_index: int) -> int:
        return self._ex.next_nonce(account, api_key_index)

    def tx_status(self, tx_hash: str) -> int | None:
        """0 failed, 1 pending, 2 executed; None if the venue never accepted it or it is older
        than the last `SimConfig.txs_kept` executed/failed txs."""
        rec = self._ex.txs.get(tx_hash)
        return rec.status if rec is not None else None

    def request_counts(self, window_ms: int | None = None) -> dict[str, int]:
        """Requests per endpoint ("GET /api/v1/nextNonce", "WS jsonapi/sendtx", ...)."""
        return self._requests.counts(window_ms)

    def request_log(self, prefix: str = "") -> list[tuple[int, str]]:
        """Every kept request as (simulated monotonic ns, name), oldest first, for rolling-window
        figures; ``prefix`` filters names ("GET /api/v1/", "WS ", ...)."""
        return self._requests.entries(prefix)

    def tx_error(self, tx_hash: str) -> int | None:
        """The venue error code of a failed tx (e.g. a late reject), None otherwise."""
        rec = self._ex.txs.get(tx_hash)
        return rec.error.code if rec is not None and rec.error is not None else None

    def faults(self, kind: str | None = None, phase: str | None = None) -> list[FaultRecord]:
        """The fault log (oldest first, the last `SimConfig.fault_log_kept` records): every
        injection, and when faults acted or ended."""
        if self._sim is None:
            return []
        return [
            r
            for r in self._sim.faults.log
            if (kind is None or r.kind == kind) and (phase is None or r.phase == phase)
        ]

    def connections(self) -> list[dict[str, Any]]:
        """Open WebSocket connections: id, client address, channels, stalled."""
        if self._sim is None:
            return []
        return [
            {"id": c.id, "remote": c.remote, "subs": sorted(c.subs), "stalled": c.stalled}
            for c in sorted(self._sim.open_connections(), key=lambda c: c.id)
        ]

    def book(self, market: int, nonce: int | None = None) -> dict[str, Any]:
        """The aggregated book of `market` as the order_book channel publishes it:
        ``{"market", "nonce", "asks": [[price, size], ...] (ascending), "bids": [...]
        (descending)}``, in ticks and lots. With `nonce`, the book at that book nonce from the
        history (`SimConfig.book_history` > 0; ValueError when off or outside the window);
        without, the current book and nonce."""
        ex = self._ex
        if nonce is None:
            m = ex._market(market)
            asks, bids = ex.published_levels(market)
            nonce = m.book_nonce
        else:
            asks, bids = ex.book_at(market, nonce)
        return {
            "market": market,
            "nonce": nonce,
            "asks": [[p, s] for p, s in asks],
            "bids": [[p, s] for p, s in bids],
        }

    def volume_quota(self, account: int) -> dict[str, Any]:
        """An account's volume quota: remaining, cap, the free allowance and counters."""
        return self._ex.volume_quota(account)

    def rate_limits(self) -> dict[str, int]:
        """Breaches answered (429 or blocked) and blocks imposed since start."""
        if self._sim is None:
            return {"breaches": 0, "blocks": 0}
        lim = self._sim.limiter
        return {"breaches": lim.breach_count, "blocks": lim.block_count}
