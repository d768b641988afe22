"""Cross-check: real signer -> simulator engine -> its wire payloads -> tracker == sim truth."""

from __future__ import annotations

import asyncio
import random
import time

from mmfast._core.signer import public_key
from mmfast.connector.lighter.nonces import NonceManager
from mmfast.connector.lighter.secret import ApiKey
from mmfast.connector.lighter.signer import CancelOrderRequest, CreateOrderRequest, SignerWorker
from mmfast.connector.lighter.tracker import OrderTracker
from mmfast.core.events import EventBus, FillReceived
from mmfast.core.types import Order, OrderStatus, Side, TimeInForce
from mmfast.sim import wire
from mmfast.sim.clock import ManualClock
from mmfast.sim.config import SimConfig
from mmfast.sim.engine import Exchange

MAIN, OTHER, KEY = 1001, 2002, 12
STATUS = {"open": (OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED), "filled": (OrderStatus.FILLED,)}


def payloads(ex: Exchange) -> tuple[dict, dict, dict]:
    acct = ex.account(MAIN)
    orders: dict[str, list] = {}
    for o in ex.orders.values():
        if o.account == MAIN:
            orders.setdefault(str(o.market), []).append(wire.order_json(ex, o))
    trades: dict[str, list] = {}
    for t in ex.fills(account=MAIN):
        trades.setdefault(str(t["market_id"]), []).append(wire.trade_json(ex, t, MAIN))
    positions = {str(m): wire.position_json(ex, acct, m) for m in wire.position_markets(acct)}
    return {"orders": orders}, {"trades": trades}, {"positions": positions}


def test_tracker_matches_simulator_truth() -> None:
    rng = random.Random(7)
    clock = ManualClock(wall_ms=int(time.time() * 1000))
    cfg = SimConfig(
        speed_bumps=False, api_keys=((MAIN, KEY, public_key("77" * 40).hex()),)
    )  # the signer's key
    ex = Exchange(cfg, clock)
    ex.add_account(OTHER, 10**12)
    markets = {m.market_id: m for m in cfg.markets}
    bus = EventBus()
    fills: list = []
    bus.subscribe(FillReceived, lambda e: fills.append(e.fill))
    tracker = OrderTracker(bus, markets, account_index=MAIN)
    expiry = clock.wall_ms() + 3_600_000

    async def body() -> None:
        w = SignerWorker(
            ApiKey("77" * 40), account_index=MAIN, api_key_index=KEY, chain_id=cfg.chain_id
        )
        w.start()
        try:

            async def fetch() -> int:
                return ex.next_nonce(MAIN, KEY)

            signed: list = []
            nonces: NonceManager = NonceManager(fetch, lambda req, n: signed.append((req, n)))
            nonces.require_refresh()
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            mark = markets[0].mark_price
            for coi in range(1, 9):
                side = Side.SELL if coi % 2 else Side.BUY
                price = mark + (5 + coi if side is Side.SELL else -(5 + coi))
                size = rng.randrange(50, 400)
                tracker.new_order(
                    Order(coi, 0, side, price, size, tif=TimeInForce.POST_ONLY, expiry_ms=expiry)
                )
                nonces.submit(coi)
                _, nonce = signed.pop()
                s = await w.sign(
                    CreateOrderRequest(
                        0,
                        coi,
                        size,
                        price,
                        side is Side.SELL,
                        TimeInForce.POST_ONLY,
                        nonce,
                        order_expiry_ms=expiry,
                    )
                )
                tracker.on_signed(coi, s.tx_hash, nonce)
                ex.submit(s.tx_type, s.tx_info)
                nonces.accepted(nonce)
                tracker.on_ack(coi)
                assert tracker.get(coi).status is OrderStatus.PENDING_NEW  # ack is not open
            ex.poll()
            # The other account takes liquidity through our quotes, in random pieces.
            for _ in range(6):
                is_buy = rng.random() < 0.5
                far = mark + 1000 if is_buy else mark - 1000
                ex.place_direct(OTHER, 0, not is_buy, far, rng.randrange(20, 300), tif=0)
            # And we cancel one of ours that may still rest.
            live = list(ex.open_orders(MAIN))
            if live:
                victim = live[0]
                tracker.cancel_requested(victim.client_order_index)
                nonces.submit(victim.client_order_index)
                _, nonce = signed.pop()
                s = await w.sign(CancelOrderRequest(0, victim.client_order_index, nonce))
                ex.submit(s.tx_type, s.tx_info)
                nonces.accepted(nonce)
            ex.poll()
        finally:
            w.stop()

    asyncio.run(body())
    o_msg, t_msg, p_msg = payloads(ex)
    tracker.apply_orders(o_msg)
    tracker.apply_trades(t_msg)
    tracker.apply_trades(t_msg)  # a replay books nothing
    tracker.apply_positions(p_msg)
    truth_orders = [o for o in ex.orders.values() if o.account == MAIN]
    assert len(truth_orders) == 8
    # The scenario covers filled, partially filled, cancelled-after-partial and untouched.
    assert any(o.status == "filled" for o in truth_orders)
    assert any(o.status == "open" and 0 < o.filled_base < o.initial for o in truth_orders)
    assert any(o.status == "canceled" for o in truth_orders)
    assert any(o.status == "open" and o.filled_base == 0 for o in truth_orders)
    for o in truth_orders:
        t = tracker.get(o.client_order_index)
        assert t.order_index == o.order_index
        assert t.order.filled_lots == o.filled_base == t.fill_lots
        if o.status.startswith("canceled"):
            assert t.status is OrderStatus.CANCELED and t.order.cancel_reason == o.status
        else:
            assert t.status in STATUS[o.status]
    truth_fills = ex.fills(account=MAIN)
    assert sorted(f.trade_id for f in fills) == sorted(t["trade_id"] for t in truth_fills)
    for f in fills:
        t = next(x for x in truth_fills if x["trade_id"] == f.trade_id)
        assert (f.price_ticks, f.size_lots) == (t["price"], t["size"])
        ours_is_maker = (t["ask_account_id"] == MAIN) == t["is_maker_ask"]
        assert f.is_maker == ours_is_maker
        assert f.fee == (t["maker_fee_paid"] if ours_is_maker else t["taker_fee_paid"])
    pos = ex.account(MAIN).positions[0].size
    assert tracker.venue_position(0).size_lots == pos
    assert tracker.replayed_position(0).size_lots == pos
    assert tracker.position_mismatches() == {}
