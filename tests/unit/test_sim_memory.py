"""mmfast.sim memory windows: a long seeded run stays within every history bound, and the
windows still hold the recent items (ManualClock, no sockets)."""

from __future__ import annotations

import asyncio
import itertools
import random
from typing import Any

import pytest

from mmfast.sim.clock import ManualClock
from mmfast.sim.config import FlowConfig, SimConfig
from mmfast.sim.engine import (
    ORDER_MARKET,
    TX_CANCEL_ORDER,
    TX_CREATE_ORDER,
    TX_EXECUTED,
    TX_MODIFY_ORDER,
    TX_PENDING,
    Exchange,
)
from mmfast.sim.errors import VenueError
from mmfast.sim.flow import MarketFlow
from mmfast.sim.server import Simulator
from mmfast.sim.truth import RequestLog, Truth

MAIN, KEY = 1001, 3
MIN = 60_000
HOUR_MS = 3_600_000

INACTIVE_KEPT = 300
TXS_KEPT = 200
TRADES_KEPT = 100
BOOK_KEPT = 50


class Bot:
    """A quoting client: creates, modifies and cancels a few orders per market through txs."""

    def __init__(self, ex: Exchange, clock: ManualClock, seed: int) -> None:
        self.ex, self.clock = ex, clock
        self.rng = random.Random(seed)
        self.nonce = 0
        self.coi = 0
        self.hashes: list[str] = []

    def _send(self, tx_type: int, **fields: Any) -> None:
        info = {
            "AccountIndex": MAIN,
            "ApiKeyIndex": KEY,
            "Nonce": self.nonce,
            "ExpiredAt": self.clock.wall_ms() + 10 * MIN,
            "Sig": "c2ln",
            "L2TxAttributes": None,
            **fields,
        }
        try:
            rec = self.ex.submit(tx_type, info)
        except VenueError:
            return
        self.nonce += 1
        self.hashes.append(rec.hash)
        del self.hashes[:-TXS_KEPT]

    def step(self) -> None:
        ex, rng = self.ex, self.rng
        for mid, m in ex.markets.items():
            bid, ask = m.bids.best(), m.asks.best()
            if bid is None or ask is None:
                continue
            mine = ex.open_orders(MAIN, mid)
            size = m.spec.min_base_amount * 2
            if len(mine) < 4:
                self.coi += 1
                is_ask = rng.random() < 0.5
                price = ask + rng.randint(0, 3) if is_ask else bid - rng.randint(0, 3)
                self._send(
                    TX_CREATE_ORDER,
                    MarketIndex=mid,
                    ClientOrderIndex=self.coi,
                    BaseAmount=size,
                    Price=price,
                    IsAsk=int(is_ask),
                    Type=0,
                    TimeInForce=1,
                    ReduceOnly=0,
                    TriggerPrice=0,
                    OrderExpiry=self.clock.wall_ms() + 60 * MIN,
                )
            elif rng.random() < 0.5:
                self._send(
                    TX_CANCEL_ORDER, MarketIndex=mid, Index=rng.choice(mine).client_order_index
                )
            else:
                o = rng.choice(mine)
                price = ask + rng.randint(0, 3) if o.is_ask else bid - rng.randint(0, 3)
                self._send(
                    TX_MODIFY_ORDER,
                    MarketIndex=mid,
                    Index=o.client_order_index,
                    BaseAmount=o.remaining,
                    Price=price,
                    TriggerPrice=0,
                )


def check_bounds(ex: Exchange) -> None:
    """Every history structure within its window, and the windows consistent."""
    live = {o.order_index for a in ex.accounts.values() for o in a.live.values()}
    window = {o.order_index for a in ex.accounts.values() for o in a.inactive}
    for acct in ex.accounts.values():
        assert len(acct.inactive) <= INACTIVE_KEPT
        # latest order per client_order_index: live ones and those still in the window
        assert len(acct.last_by_coi) <= len(acct.live) + len(acct.inactive)
        assert all(o.live or o.order_index in window for o in acct.last_by_coi.values())
    # `orders` holds exactly the live orders and the finished ones of the windows
    assert set(ex.orders) == live | window
    done = [r for r in ex.txs.values() if r.status != TX_PENDING]
    assert len(done) <= TXS_KEPT and len(ex.txs) <= TXS_KEPT + len(ex.pending)
    assert all(len(m.trades) <= TRADES_KEPT for m in ex.markets.values())
    # the expiry heap is rebuilt from the resting orders when it doubles (floor 4096)
    assert len(ex.expiries) <= max(4096, 2 * len(live)) + 1
    for m in ex.markets.values():
        assert m.history is not None and len(m.history.nonces) <= BOOK_KEPT
        assert len(m.history.books) == len(m.history.nonces)


def test_long_run_stays_within_every_window() -> None:
    """90 simulated minutes of flow and a quoting client (~7 s): each bounded structure is
    within its bound at every checkpoint, and the windows hold the most recent items."""
    clock = ManualClock()
    cfg = SimConfig(
        seed=5,
        speed_bumps=False,
        verify_signatures=False,
        inactive_orders_kept=INACTIVE_KEPT,
        txs_kept=TXS_KEPT,
        recent_trades_kept=TRADES_KEPT,
        book_history=BOOK_KEPT,
        flow=FlowConfig(
            step_ms=50,
            limit_rate_per_s=8.0,
            cancel_rate_per_s=3.0,
            market_rate_per_s=0.5,
            max_orders_per_side=100,
        ),
    )
    ex = Exchange(cfg, clock)
    assert cfg.flow is not None
    flow = MarketFlow(ex, cfg.flow, cfg.seed)
    flow.advance_to(clock.monotonic_ns())
    bot = Bot(ex, clock, 1)
    truth = Truth(ex, RequestLog(clock))
    first_hash = first_order = None
    for minute in range(1, 91):
        for _ in range(60):
            clock.advance_ms(1000)
            flow.advance_to(clock.monotonic_ns())
            bot.step()
            ex.poll()
            ex.drain_events()
        if first_hash is None:
            first_hash = bot.hashes[0]
            first_order = min(o.order_index for o in ex.orders.values() if o.account == MAIN)
            assert truth.tx_status(first_hash) is not None and truth.order(first_order)
        if minute % 15 == 0:
            check_bounds(ex)
            n_live = sum(len(a.live) for a in ex.accounts.values())
            assert len(ex.orders) <= n_live + INACTIVE_KEPT * len(ex.accounts)
            assert len(ex.txs) <= TXS_KEPT + len(ex.pending)
    # The run went well past every window.
    assert ex.accounts[MAIN].total_order_count > 10 * INACTIVE_KEPT
    assert bot.nonce > 10 * TXS_KEPT
    flow_acct = ex.accounts[cfg.flow.maker_account]
    assert flow_acct.total_order_count > 100 * INACTIVE_KEPT
    # The windows hold the most recent items. The newest finished orders are found by
    # order_index and (client orders) by client_order_index...
    acct = ex.accounts[MAIN]
    assert len(acct.inactive) == INACTIVE_KEPT
    for o in list(acct.inactive)[-20:]:
        assert truth.order(o.order_index) is not None
        latest = truth.order_by_coi(MAIN, o.client_order_index)
        assert latest is not None and latest.order_index >= o.order_index
    assert first_order is not None and truth.order(first_order) is None  # left the window
    assert truth.order_by_coi(MAIN, 1) is None
    # ...the last txs are looked up by hash (status and error), the first ones are gone...
    assert all(truth.tx_status(h) in (0, 2) for h in bot.hashes)
    assert first_hash is not None and truth.tx_status(first_hash) is None
    assert truth.tx_status(bot.hashes[-1]) == TX_EXECUTED or truth.tx_error(bot.hashes[-1])
    # ...the newest trades are kept in order...
    for m in ex.markets.values():
        ids = [t["trade_id"] for t in m.trades]
        assert len(ids) == TRADES_KEPT and ids == sorted(ids)
        assert ids[-1] == max(t["trade_id"] for t in ex.fills(market=m.spec.market_id))
    # ...and the book history ends at the current book.
    for mid, m in ex.markets.items():
        assert m.history is not None and m.history.nonces[-1] == m.book_nonce
        asks, bids = ex.book_at(mid, m.book_nonce)
        assert (asks, bids) == ex.levels(mid)
        book = truth.book(mid, m.history.nonces[0])
        assert book["nonce"] == m.history.nonces[0]
        with pytest.raises(ValueError, match="outside the book history"):
            ex.book_at(mid, m.history.nonces[0] - 1)


def test_book_history_off_costs_nothing_and_says_so() -> None:
    clock = ManualClock()
    ex = Exchange(SimConfig(verify_signatures=False), clock)
    assert all(m.history is None for m in ex.markets.values())
    with pytest.raises(ValueError, match="book history is off"):
        ex.book_at(0, ex.markets[0].book_nonce)
    book = Truth(ex, RequestLog(clock)).book(0)
    assert book == {"market": 0, "nonce": ex.markets[0].book_nonce, "asks": [], "bids": []}


def test_book_history_keeps_the_last_n_nonces_exactly() -> None:
    clock = ManualClock()
    ex = Exchange(SimConfig(verify_signatures=False, book_history=3), clock)
    ex.add_account(900, 10**15)
    ex.add_account(901, 10**15)
    m = ex.markets[0]
    start = m.book_nonce
    seen = [(start, [], [])]
    for i in range(6):
        ex.place_direct(900, 0, bool(i % 2), 300_000 + (1 if i % 2 else -1) * (10 + i), 50)
        asks, bids = ex.levels(0)
        seen.append((m.book_nonce, asks, bids))
    assert list(m.history.nonces) == [n for n, _, _ in seen[-3:]]
    for n, asks, bids in seen[-3:]:
        assert ex.book_at(0, n) == (asks, bids)
        assert all(a[0] < b[0] for a, b in itertools.pairwise(asks))
        assert all(a[0] > b[0] for a, b in itertools.pairwise(bids))
    with pytest.raises(ValueError, match="outside"):
        ex.book_at(0, seen[-4][0])
    with pytest.raises(ValueError, match="outside"):
        ex.book_at(0, m.book_nonce + 1)
    # a taker sweeping two ask levels changes both in one delta: the nonce moves by 2, and
    # the nonce in between is no book nonce
    asks_before = ex.levels(0)[0]
    n = m.book_nonce
    ex.place_direct(901, 0, False, asks_before[1][0], 100, otype=ORDER_MARKET)
    assert m.book_nonce == n + 2
    assert ex.book_at(0, n + 2) == ex.levels(0)
    with pytest.raises(ValueError, match="not a book nonce"):
        ex.book_at(0, n + 1)


def test_request_log_keeps_a_window_and_counts_since_start() -> None:
    clock = ManualClock()
    log = RequestLog(clock, keep=100)
    for i in range(1000):
        clock.advance_ms(1)
        log.record("GET /api/v1/nextNonce" if i % 2 else "WS pong")
    assert len(log) == 100
    assert log.counts() == {"GET /api/v1/nextNonce": 500, "WS pong": 500}
    entries = log.entries()
    assert len(entries) == 100 and entries[-1][0] == clock.monotonic_ns()
    assert log.counts(window_ms=9) == {"GET /api/v1/nextNonce": 5, "WS pong": 5}
    # one name object per name, not one per request
    assert len({id(n) for _, n in entries}) == 2


def test_fault_log_and_timers_are_bounded() -> None:
    async def body() -> None:
        sim = Simulator(SimConfig(fault_log_kept=20, verify_signatures=False), ManualClock())
        for i in range(100):
            sim.faults.wall_offset_ms(i)
        log = sim.truth.faults()
        assert len(log) == 20 and [r.details["ms"] for r in log] == list(range(80, 100))
        for _ in range(50):
            sim.faults.refuse_connections(True, seconds=0.001)
        assert len(sim.faults._timers) == 50
        await asyncio.sleep(0.05)
        assert not sim.faults._timers  # fired timers are forgotten
        log = sim.truth.faults()
        assert len(log) == 20 and all(r.phase == "ended" for r in log)

    asyncio.run(body())
