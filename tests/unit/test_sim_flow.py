"""mmfast.sim.flow: seeded market flow, queue position, fills at the touch (ManualClock)."""

from __future__ import annotations

from typing import Any

import pytest

from mmfast.sim.clock import ManualClock
from mmfast.sim.config import FlowConfig, SimConfig
from mmfast.sim.engine import ORDER_MARKET, TX_CANCEL_ORDER, TX_CREATE_ORDER, Exchange
from mmfast.sim.flow import MarketFlow

MAIN = 1001
ETH = 0
MIN = 60_000


def make(seed: int = 1, **flow: Any) -> tuple[Exchange, ManualClock, MarketFlow]:
    clock = ManualClock()
    cfg = SimConfig(
        seed=seed, speed_bumps=False, flow=FlowConfig(**flow), verify_signatures=False
    )  # stand-in signatures
    ex = Exchange(cfg, clock)
    assert cfg.flow is not None
    f = MarketFlow(ex, cfg.flow, seed)
    f.advance_to(clock.monotonic_ns())
    return ex, clock, f


def run_for(ex: Exchange, clock: ManualClock, f: MarketFlow, ms: int, until: Any = None) -> int:
    """Advance the flow in 10 ms steps; returns the ms elapsed when `until()` became true."""
    for t in range(10, ms + 10, 10):
        clock.advance_ms(10)
        f.advance_to(clock.monotonic_ns())
        ex.poll()
        ex.drain_events()
        if until is not None and until():
            return t
    return -1


def trades(ex: Exchange) -> list[tuple[int, int, int, int]]:
    return [(t["trade_id"], t["market_id"], t["price"], t["size"]) for t in ex.fills()]


def test_same_seed_same_flow_other_seed_other_flow() -> None:
    runs = []
    for seed in (3, 3, 4):
        ex, clock, f = make(seed)
        run_for(ex, clock, f, 20_000)
        runs.append((trades(ex), ex.levels(ETH), f.fair_price(ETH)))
    assert runs[0] == runs[1]
    assert runs[0][0] != runs[2][0]
    assert len(runs[0][0]) > 50  # the market trades


def test_book_stays_alive_two_sided_and_near_the_fair_price() -> None:
    ex, clock, f = make(5)
    for _ in range(12):
        run_for(ex, clock, f, 5_000)
        for mid in ex.markets:
            asks, bids = ex.levels(mid)
            assert len(asks) >= 5 and len(bids) >= 5
            assert bids[0][0] < asks[0][0]
            fair = f.fair_price(mid)
            assert abs((asks[0][0] + bids[0][0]) / 2 - fair) / fair < 0.002  # within 20 bps
            assert ex.markets[mid].mark_price == round(fair)


def test_settings_drive_the_flow() -> None:
    ex, clock, f = make(
        1,
        volatility_bps=0.0,
        jump_rate_per_min=0.0,
        limit_rate_per_s=0.0,
        cancel_rate_per_s=0.0,
        market_rate_per_s=0.0,
        initial_levels=3,
    )
    before = ex.levels(ETH)
    run_for(ex, clock, f, 10_000)
    assert ex.levels(ETH) == before and f.fair_price(ETH) == 300_000.0 and not ex.fills()
    assert len(before[0]) <= 3 and len(before[1]) <= 3
    calm, clock, fc = make(1, volatility_bps=0.1, jump_rate_per_min=0.0)
    wild, clock2, fw = make(1, volatility_bps=10.0, jump_rate_per_min=0.0)
    moves = []
    for e, c, fl in ((calm, clock, fc), (wild, clock2, fw)):
        prices = []
        for _ in range(20):
            run_for(e, c, fl, 1000)
            prices.append(fl.fair_price(ETH))
        moves.append(max(prices) - min(prices))
    assert moves[1] > 10 * moves[0]


def _create(
    ex: Exchange, clock: ManualClock, nonce: int, coi: int, price: int, size: int, is_ask: bool
) -> int:
    rec = ex.submit(
        TX_CREATE_ORDER,
        {
            "AccountIndex": MAIN,
            "ApiKeyIndex": 3,
            "MarketIndex": ETH,
            "ClientOrderIndex": coi,
            "BaseAmount": size,
            "Price": price,
            "IsAsk": int(is_ask),
            "Type": 0,
            "TimeInForce": 2,
            "ReduceOnly": 0,
            "TriggerPrice": 0,
            "OrderExpiry": clock.wall_ms() + 60 * MIN,
            "ExpiredAt": clock.wall_ms() + 10 * MIN,
            "Nonce": nonce,
            "Sig": "c2ln",
            "L2TxAttributes": None,
        },
    )
    ex.poll()
    return rec.order_index


def _cancel(ex: Exchange, clock: ManualClock, nonce: int, coi: int) -> None:
    ex.submit(
        TX_CANCEL_ORDER,
        {
            "AccountIndex": MAIN,
            "ApiKeyIndex": 3,
            "MarketIndex": ETH,
            "Index": coi,
            "ExpiredAt": clock.wall_ms() + 10 * MIN,
            "Nonce": nonce,
            "Sig": "c2ln",
            "L2TxAttributes": None,
        },
    )
    ex.poll()


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_orders_at_the_touch_fill_within_bounded_time_far_orders_never(seed: int) -> None:
    ex, clock, f = make(seed)
    run_for(ex, clock, f, 2_000)
    asks, bids = ex.levels(ETH)
    bid = _create(ex, clock, 0, 1, bids[0][0], 100, False)  # joins the best bid's queue
    ask = _create(ex, clock, 1, 2, asks[0][0], 100, True)  # joins the best ask's queue
    far_bid = _create(ex, clock, 2, 3, bids[0][0] - 6000, 100, False)  # 200 bps away
    far_ask = _create(ex, clock, 3, 4, asks[0][0] + 6000, 100, True)
    o = ex.orders
    # Whichever way the fair price goes, one side of the touch is reached.
    first = run_for(ex, clock, f, 60_000, until=lambda: o[bid].filled_base or o[ask].filled_base)
    assert 0 < first <= 10_000
    run_for(ex, clock, f, 120_000 - first)
    assert o[far_bid].filled_base == 0 and o[far_ask].filled_base == 0
    assert o[far_bid].live and o[far_ask].live


@pytest.mark.parametrize("is_ask", [False, True])
def test_order_kept_at_the_touch_fills_within_bounded_time(is_ask: bool) -> None:
    """A quote re-pegged to the best price (losing its queue place each time) is filled."""
    ex, clock, f = make(11)
    run_for(ex, clock, f, 2_000)
    nonce, coi = 0, 0
    order = None
    elapsed = 0
    while elapsed < 60_000 and not (order is not None and ex.orders[order].filled_base):
        asks, bids = ex.levels(ETH)
        best = (asks if is_ask else bids)[0][0]
        if order is None or not ex.orders[order].live or ex.orders[order].price != best:
            if order is not None and ex.orders[order].live:
                _cancel(ex, clock, nonce, coi)
                nonce += 1
            coi += 1
            order = _create(ex, clock, nonce, coi, best, 100, is_ask)
            nonce += 1
        run_for(ex, clock, f, 100)
        elapsed += 100
    assert order is not None and ex.orders[order].filled_base > 0
    assert elapsed <= 30_000


def test_resting_order_fills_only_after_the_queue_ahead_of_it() -> None:
    ex, clock, f = make(
        1,
        limit_rate_per_s=0.0,
        cancel_rate_per_s=0.0,
        market_rate_per_s=0.0,
        volatility_bps=0.0,
        jump_rate_per_min=0.0,
        initial_levels=0,
    )
    flow = f.config
    price = 299_000
    ahead = ex.place_direct(flow.maker_account, ETH, False, price, 500)  # first in the queue
    mine = _create(ex, clock, 0, 1, price, 100, False)
    sell = ex.place_direct(flow.taker_account, ETH, True, price, 300, otype=ORDER_MARKET)
    assert sell.filled_base == 300 and ahead.filled_base == 300
    assert ex.orders[mine].filled_base == 0  # 200 lots still ahead of it
    ex.place_direct(flow.taker_account, ETH, True, price, 250, otype=ORDER_MARKET)
    assert ahead.filled_base == 500 and ex.orders[mine].filled_base == 50
    fills = [t for t in ex.fills() if MAIN in (t["bid_account_id"], t["ask_account_id"])]
    assert [(t["size"], t["price"], t["is_maker_ask"]) for t in fills] == [(50, price, False)]


def test_market_order_sweeps_levels() -> None:
    ex, _clock, f = make(
        1,
        limit_rate_per_s=0.0,
        cancel_rate_per_s=0.0,
        market_rate_per_s=0.0,
        volatility_bps=0.0,
        jump_rate_per_min=0.0,
        initial_levels=0,
    )
    mk = f.config.maker_account
    for i, p in enumerate((300_010, 300_020, 300_030)):
        ex.place_direct(mk, ETH, True, p, 100 * (i + 1))
    ex.place_direct(f.config.taker_account, ETH, False, 300_025, 250, otype=ORDER_MARKET)
    assert [(t["price"], t["size"]) for t in ex.fills()] == [(300_010, 100), (300_020, 150)]
    assert ex.levels(ETH)[0] == [(300_020, 50), (300_030, 300)]
