"""Order tracker: a modify seen on the venue's order stream sets price and size, exactly."""

from __future__ import annotations

import random
from fractions import Fraction

import pytest

from mmfast.connector.lighter.tracker import OrderTracker
from mmfast.core.events import EventBus, FillReceived, OrderUpdated
from mmfast.core.types import Order, OrderStatus, Side, TimeInForce

ACCOUNT = 1234
OI = (1 << 48) + 5
VTIME = 1_777_941_383_576_735  # the venue's transaction_time: creation, kept by a modify


class Dec:
    def __init__(self, price_decimals: int, size_decimals: int) -> None:
        self.price_decimals = price_decimals
        self.size_decimals = size_decimals


class Clock:
    def __init__(self) -> None:
        self.t = 0

    def __call__(self) -> int:
        self.t += 1000
        return self.t


def make() -> tuple[OrderTracker, list[OrderUpdated], list[FillReceived]]:
    bus = EventBus()
    updates: list[OrderUpdated] = []
    fills: list[FillReceived] = []
    bus.subscribe(OrderUpdated, updates.append)
    bus.subscribe(FillReceived, fills.append)
    tr = OrderTracker(bus, {0: Dec(2, 4)}, account_index=ACCOUNT, monotonic_ns=Clock())
    return tr, updates, fills


def _lots(n: int) -> str:  # 4 size decimals
    return f"{n // 10_000}.{n % 10_000:04d}"


def _px(t: int) -> str:  # 2 price decimals
    return f"{t // 100}.{t % 100:02d}"


def place(
    tr: OrderTracker, coi: int = 5, size: int = 50, price: int = 235_274, side: Side = Side.SELL
) -> None:
    tr.new_order(Order(coi, 0, side, price, size, tif=TimeInForce.GTT, expiry_ms=1_780_360_584_479))
    tr.on_ack(coi)


def omsg(
    price: int,
    filled: int,
    remaining: int,
    updated: int | None,
    *,
    coi: int = 5,
    status: str = "open",
    height: int | None = None,
    initial: int | None = None,
    vtime: int = VTIME,
    is_ask: bool = True,
) -> dict:
    od = {
        "order_index": OI,
        "client_order_index": coi,
        "market_index": 0,
        "initial_base_amount": _lots(filled + remaining if initial is None else initial),
        "remaining_base_amount": _lots(remaining),
        "filled_base_amount": _lots(filled),
        "price": _px(price),
        "is_ask": is_ask,
        "status": status,
        "time_in_force": "good-till-time",
        "type": "limit",
        "reduce_only": False,
        "order_expiry": 1_780_360_584_479,
        "transaction_time": vtime,
    }
    if updated is not None:
        od["updated_at"] = updated
    if height is not None:
        od["block_height"] = height
    return {"orders": {"0": [od]}}


def tmsg(trade_id: int, size: int, price: int, *, coi: int = 5, we_ask: bool = True) -> dict:
    usd = price * size  # tick x lot is exactly micro-USDC here (6 - 4 - 2 = 0)
    return {
        "trades": {
            "0": [
                {
                    "trade_id": trade_id,
                    "market_id": 0,
                    "size": _lots(size),
                    "price": _px(price),
                    "usd_amount": f"{usd // 10**6}.{usd % 10**6:06d}",
                    "ask_id": OI if we_ask else 999,
                    "bid_id": 999 if we_ask else OI,
                    "ask_client_id": coi if we_ask else 0,
                    "bid_client_id": 0 if we_ask else coi,
                    "ask_account_id": ACCOUNT if we_ask else 77,
                    "bid_account_id": 77 if we_ask else ACCOUNT,
                    "is_maker_ask": we_ask,
                    "taker_fee": 196,
                    "maker_fee": 28,
                }
            ]
        }
    }


def test_modify_on_stream_sets_price_and_size() -> None:
    tr, updates, _ = make()
    place(tr)
    tr.apply_orders(omsg(235_274, 0, 50, 1000, height=10))
    t = tr.get(5)
    assert t.status is OrderStatus.OPEN and (t.order.price_ticks, t.order.size_lots) == (
        235_274,
        50,
    )
    n = len(updates)
    # The modify executed: same transaction_time (creation), later updated_at and block.
    tr.apply_orders(omsg(235_300, 0, 30, 1005, height=12))
    o = t.order
    assert (o.price_ticks, o.size_lots, o.remaining_lots) == (235_300, 30, 30)
    assert (t.venue_price_ticks, t.venue_size_lots, t.venue_remaining_lots) == (235_300, 30, 30)
    assert len(updates) == n + 1 and updates[-1].order is o
    assert t.status is OrderStatus.OPEN and tr.stale_amounts == 0
    # A growing modify too.
    tr.apply_orders(omsg(235_250, 0, 120, 1009, height=13))
    assert (o.price_ticks, o.size_lots) == (235_250, 120)


def test_modify_seen_is_published_even_after_an_optimistic_write() -> None:
    """A strategy writes the modify's values onto the shared Order when it sends it, and waits
    for an OrderUpdated carrying them: the venue's values moving is published even though the
    Order already holds them; until then the Order holds what the venue last showed."""
    tr, updates, _ = make()
    place(tr)
    tr.apply_orders(omsg(235_274, 0, 50, 1000))
    o = tr.get(5).order
    o.price_ticks, o.size_lots = 235_300, 30  # the optimistic write
    tr.apply_orders(omsg(235_274, 0, 50, 1001))  # the venue still shows the old values
    assert (o.price_ticks, o.size_lots) == (235_274, 50)
    o.price_ticks, o.size_lots = 235_300, 30  # written again (e.g. a second modify)
    n = len(updates)
    tr.apply_orders(omsg(235_300, 0, 30, 1002))  # the modify executed
    assert len(updates) == n + 1 and (
        updates[-1].order.price_ticks,
        updates[-1].order.size_lots,
    ) == (235_300, 30)
    tr.apply_orders(omsg(235_300, 0, 30, 1002))  # a replay: nothing new
    assert len(updates) == n + 1


def test_stale_message_after_modify_does_not_revert() -> None:
    tr, updates, _ = make()
    place(tr)
    tr.apply_orders(omsg(235_274, 0, 50, 1000, height=10))
    tr.apply_orders(omsg(235_300, 0, 30, 1005, height=12))
    t = tr.get(5)
    n = len(updates)
    tr.apply_orders(omsg(235_274, 0, 50, 1000, height=10))  # the pre-modify state, replayed
    assert (t.order.price_ticks, t.order.size_lots) == (235_300, 30)
    assert tr.stale_amounts == 1 and len(updates) == n  # nothing published
    # Same updated_at: the block height orders them.
    tr.apply_orders(omsg(235_290, 0, 40, 1005, height=11))
    assert (t.order.price_ticks, t.order.size_lots) == (235_300, 30) and tr.stale_amounts == 2
    # A REST snapshot without updated_at/height cannot be ordered by them: its lagging
    # cumulative fill still marks it as older once a fill was seen on the stream.
    tr.apply_orders(omsg(235_300, 10, 20, 1007, height=13))
    tr.apply_orders(omsg(235_274, 0, 50, None))
    assert (t.order.price_ticks, t.order.size_lots, t.order.filled_lots) == (235_300, 30, 10)
    assert tr.stale_amounts == 3
    # The existing rule still holds: an older transaction_time is ignored altogether.
    tr.apply_orders(omsg(235_274, 0, 50, 2000, vtime=VTIME - 1))
    assert tr.stale_updates == 1 and t.order.price_ticks == 235_300
    # A terminal message keeps the last live amounts; a later "open" never revives it.
    tr.apply_orders(omsg(235_300, 10, 0, 1010, status="canceled"))
    tr.apply_orders(omsg(235_200, 10, 20, 1011))
    assert t.status is OrderStatus.CANCELED
    assert (t.order.price_ticks, t.order.size_lots) == (235_300, 30)


def test_partial_fill_after_modify_keeps_cumulative_exact() -> None:
    tr, _, fills = make()
    place(tr, size=50)
    tr.apply_orders(omsg(235_274, 0, 50, 1000))
    tr.apply_trades(tmsg(100, 10, 235_274))  # 10 filled at the placed price
    tr.apply_orders(omsg(235_274, 10, 40, 1001))
    # Modify: 25 left at a new price (size = 10 filled + 25).
    tr.apply_orders(omsg(235_310, 10, 25, 1003))
    t = tr.get(5)
    o = t.order
    assert (o.price_ticks, o.size_lots, o.filled_lots, o.remaining_lots) == (235_310, 35, 10, 25)
    tr.apply_trades(tmsg(101, 15, 235_310))
    assert (o.filled_lots, t.fill_lots, o.remaining_lots) == (25, 25, 10)
    assert t.status is OrderStatus.PARTIALLY_FILLED
    tr.apply_orders(omsg(235_310, 10, 25, 1003))  # lagging: duplicate of the modify message
    tr.apply_trades(tmsg(101, 15, 235_310))  # duplicate fill
    assert (o.size_lots, o.filled_lots, t.fill_lots) == (35, 25, 25) and tr.duplicate_fills == 1
    tr.apply_orders(omsg(235_310, 25, 10, 1004))
    tr.apply_trades(tmsg(102, 10, 235_310))  # the last 10 of the modified size: FILLED
    assert t.status is OrderStatus.FILLED
    assert (o.size_lots, o.filled_lots, t.fill_lots) == (35, 35, 35)
    assert t.fill_notional == 10 * 235_274 + 25 * 235_310
    assert t.avg_fill_price == Fraction(10 * 235_274 + 25 * 235_310, 35)
    assert [f.fill.size_lots for f in fills] == [10, 15, 10]
    assert tr.replayed_position(0).size_lots == -35


def test_fills_beyond_held_size_before_grow_modify_shows() -> None:
    """A modify grew the order; fills on it arrive before its order message: the fill count
    is never clamped and the order is not taken for FILLED on a size the venue has left."""
    tr, _, _ = make()
    place(tr, size=20)
    tr.apply_orders(omsg(235_274, 0, 20, 1000))
    tr.apply_trades(tmsg(200, 15, 235_274))
    tr.apply_trades(tmsg(201, 10, 235_274))  # 25 > 20: the venue holds a bigger order now
    t = tr.get(5)
    assert (t.order.filled_lots, t.fill_lots, t.order.size_lots) == (25, 25, 25)
    assert t.status is OrderStatus.PARTIALLY_FILLED and t.size_unconfirmed
    tr.apply_orders(omsg(235_274, 25, 35, 1004))  # the modify's message: 60 in all
    assert (t.order.size_lots, t.order.remaining_lots, t.status) == (
        60,
        35,
        OrderStatus.PARTIALLY_FILLED,
    )
    assert not t.size_unconfirmed
    tr.apply_trades(tmsg(202, 35, 235_274))
    assert t.status is OrderStatus.FILLED and t.order.filled_lots == t.fill_lots == 60


@pytest.mark.parametrize("seed", range(10))
def test_random_modifies_and_fills_reordered(seed: int) -> None:
    """Random modifies and fills, every order message replayed out of order: the tracker ends
    on the venue's last price and size and the exact cumulative fill."""
    rng = random.Random(seed)
    tr, _, fills = make()
    price, filled, remaining = 235_000, 0, rng.randrange(20, 200)
    place(tr, size=remaining, price=price)
    updated = 1000
    msgs: list[dict] = [omsg(price, 0, remaining, updated, height=updated)]
    trades: list[dict] = []
    tid = 500
    for _ in range(rng.randrange(2, 8)):
        updated += rng.randrange(1, 3)
        if rng.random() < 0.5 and remaining > 1:
            q = rng.randrange(1, remaining)
            filled, remaining = filled + q, remaining - q
            trades.append(tmsg(tid, q, price))
            tid += 1
        else:
            price += rng.randrange(-50, 51) or 1
            remaining = rng.randrange(1, 200)
        msgs.append(omsg(price, filled, remaining, updated, height=updated))
    shuffled = msgs + [m for m in msgs if rng.random() < 0.3]
    rng.shuffle(shuffled)  # the newest state may come anywhere, older ones after it
    for m in shuffled:
        tr.apply_orders(m)
    for m in trades:
        tr.apply_trades(m)
    t = tr.get(5)
    assert (t.order.price_ticks, t.order.size_lots) == (price, filled + remaining)
    assert t.order.filled_lots == t.fill_lots == filled
    assert t.order.remaining_lots == remaining
    assert sum(f.fill.size_lots for f in fills) == filled
    assert t.status is (OrderStatus.PARTIALLY_FILLED if filled else OrderStatus.OPEN)


def test_modify_through_simulator_engine_matches_truth() -> None:
    """Real signer -> simulator engine (modify with and without a price change) -> its wire
    payloads, replayed out of order -> the tracker holds the venue's price, size and fills."""
    import asyncio
    import time

    from mmfast.connector.lighter.secret import ApiKey
    from mmfast.connector.lighter.signer import (
        CreateOrderRequest,
        ModifyOrderRequest,
        SignerWorker,
    )
    from mmfast.sim import wire
    from mmfast.sim.clock import ManualClock
    from mmfast.sim.config import SimConfig
    from mmfast.sim.engine import Exchange

    main, other, key = 1001, 2002, 12
    clock = ManualClock(wall_ms=int(time.time() * 1000))
    from mmfast._core.signer import public_key

    cfg = SimConfig(
        speed_bumps=False,
        modify_keeps_priority=True,
        api_keys=((main, key, public_key("77" * 40).hex()),),
    )  # the signer's key
    ex = Exchange(cfg, clock)
    ex.add_account(other, 10**12)
    markets = {m.market_id: m for m in cfg.markets}
    bus = EventBus()
    booked: list[FillReceived] = []
    bus.subscribe(FillReceived, booked.append)
    tr = OrderTracker(bus, markets, account_index=main)
    mark = markets[0].mark_price
    expiry = clock.wall_ms() + 3_600_000
    snaps: list[dict] = []

    def snap() -> None:
        o = next(x for x in ex.orders.values() if x.account == main)
        snaps.append({"orders": {"0": [wire.order_json(ex, o)]}})

    async def body() -> None:
        w = SignerWorker(
            ApiKey("77" * 40), account_index=main, api_key_index=key, chain_id=cfg.chain_id
        )
        w.start()
        try:

            async def send(req_of_nonce) -> None:
                s = await w.sign(req_of_nonce(ex.next_nonce(main, key)))
                ex.submit(s.tx_type, s.tx_info)
                clock.advance_ms(5)
                ex.poll()

            tr.new_order(
                Order(1, 0, Side.SELL, mark + 20, 200, tif=TimeInForce.POST_ONLY, expiry_ms=expiry)
            )
            await send(
                lambda n: CreateOrderRequest(
                    0, 1, 200, mark + 20, True, TimeInForce.POST_ONLY, n, order_expiry_ms=expiry
                )
            )
            snap()  # 0: placed, 200 @ mark+20
            ex.place_direct(other, 0, False, mark + 1000, 60, tif=0)
            clock.advance_ms(5)
            snap()  # 1: 60 filled, 140 left
            await send(lambda n: ModifyOrderRequest(0, 1, 120, mark + 40, n))
            snap()  # 2: price changed (loses priority): 60 + 120 at mark+40
            await send(lambda n: ModifyOrderRequest(0, 1, 100, mark + 40, n))
            snap()  # 3: same price, smaller (keeps priority): only updated_at moves
            ex.place_direct(other, 0, False, mark + 1000, 40, tif=0)
            clock.advance_ms(5)
            snap()  # 4: 100 filled, 60 left
        finally:
            w.stop()

    asyncio.run(body())
    ods = [s["orders"]["0"][0] for s in snaps]
    assert len({od["transaction_time"] for od in ods}) == 1  # a modify keeps it
    assert ods[2]["block_height"] == ods[3]["block_height"]  # the in-place modify too
    truth = next(x for x in ex.orders.values() if x.account == main)
    assert (truth.price, truth.initial, truth.remaining, truth.filled_base) == (
        mark + 40,
        160,
        60,
        100,
    )
    trades = {"trades": {"0": [wire.trade_json(ex, t, main) for t in ex.fills(account=main)]}}
    t = tr.get(1)
    for i in (0, 2, 1, 3, 0, 4, 3, 2, 1):  # older snapshots after newer ones
        tr.apply_orders(snaps[i])
    tr.apply_trades(trades)
    tr.apply_orders(snaps[2])
    o = t.order
    assert (o.price_ticks, o.size_lots, o.remaining_lots) == (
        truth.price,
        truth.initial,
        truth.remaining,
    )
    assert o.filled_lots == t.fill_lots == truth.filled_base
    assert sum(e.fill.size_lots for e in booked) == truth.filled_base
    assert t.status is OrderStatus.PARTIALLY_FILLED and tr.stale_amounts == 6
