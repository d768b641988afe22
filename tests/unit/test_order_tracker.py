"""Order tracker: states, venue payloads (fixtures), fills, positions, watermark, races."""

from __future__ import annotations

import json
import random
from fractions import Fraction
from pathlib import Path

import pytest

from mmfast.connector.lighter.coi import CoiStateError
from mmfast.connector.lighter.tracker import (
    DuplicateClientOrderIndex,
    FillWatermark,
    OrderTracker,
    TrackerError,
)
from mmfast.core.events import EventBus, FillReceived, OrderUpdated, PositionUpdated
from mmfast.core.types import Order, OrderStatus, Side, TimeInForce

FIX = Path(__file__).resolve().parent.parent / "fixtures" / "lighter"
ACCOUNT = 1234


class Dec:
    def __init__(self, price_decimals: int, size_decimals: int) -> None:
        self.price_decimals = price_decimals
        self.size_decimals = size_decimals


MARKETS = {0: Dec(2, 4), 1: Dec(1, 5)}


class Clock:
    def __init__(self) -> None:
        self.t = 0

    def __call__(self) -> int:
        self.t += 1000
        return self.t


def make(watermark: FillWatermark | None = None):
    bus = EventBus()
    events: dict[type, list] = {OrderUpdated: [], FillReceived: [], PositionUpdated: []}
    for kind, lst in events.items():
        bus.subscribe(kind, lst.append)
    tr = OrderTracker(
        bus, MARKETS, account_index=ACCOUNT, watermark=watermark, monotonic_ns=Clock()
    )
    return tr, events


def our_order(coi: int, size: int = 50, price: int = 235_274, side: Side = Side.SELL) -> Order:
    return Order(coi, 0, side, price, size, tif=TimeInForce.GTT, expiry_ms=1_780_360_584_479)


def fx(name: str) -> dict:
    return json.loads((FIX / name).read_text())


def _lots(n: int) -> str:  # market 0 sizes have 4 decimals
    return f"{n // 10_000}.{n % 10_000:04d}"


def _px(t: int) -> str:  # market 0 prices have 2 decimals
    return f"{t // 100}.{t % 100:02d}"


def order_msg(
    coi: int,
    oi: int,
    status: str,
    filled: int,
    size: int = 50,
    price: int = 235_274,
    vtime: int = 1,
    is_ask: bool = True,
) -> dict:
    return {
        "orders": {
            "0": [
                {
                    "order_index": oi,
                    "client_order_index": coi,
                    "market_index": 0,
                    "initial_base_amount": _lots(size),
                    "remaining_base_amount": _lots(size - filled),
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
            ]
        }
    }


def trade_msg(
    trade_id: int,
    coi: int,
    oi: int,
    size: int,
    price: int = 235_274,
    we_ask: bool = True,
    maker_ask: bool = True,
) -> dict:
    usd = price * size  # 6 - 4 - 2 = 0: tick x lot is exactly micro-USDC on market 0
    return {
        "trades": {
            "0": [
                {
                    "trade_id": trade_id,
                    "market_id": 0,
                    "size": _lots(size),
                    "price": _px(price),
                    "usd_amount": f"{usd // 10**6}.{usd % 10**6:06d}",
                    "ask_id": oi if we_ask else 999,
                    "bid_id": 999 if we_ask else oi,
                    "ask_client_id": coi if we_ask else 0,
                    "bid_client_id": 0 if we_ask else coi,
                    "ask_account_id": ACCOUNT if we_ask else 77,
                    "bid_account_id": 77 if we_ask else ACCOUNT,
                    "is_maker_ask": maker_ask,
                    "taker_fee": 196,
                    "maker_fee": 28,
                }
            ]
        }
    }


# ------------------------------------------------------------------------------ fixtures
def test_fixture_account_orders_partial_fill() -> None:
    tr, ev = make()
    t = tr.new_order(our_order(42))
    assert t.status is OrderStatus.PENDING_NEW
    tr.on_signed(42, "ab" * 40, 7)
    tr.on_ack(42)
    assert t.status is OrderStatus.PENDING_NEW  # an ack is not "open"
    assert tr.apply_orders(fx("ws_account_orders_update.json")) == 1
    assert t.status is OrderStatus.PARTIALLY_FILLED
    assert t.order_index == 281476929510110 and tr.by_order_index(281476929510110) is t
    assert t.order.filled_lots == 20 and t.order.remaining_lots == 30
    assert t.venue_status == "open" and t.tx_hash == "ab" * 40 and t.nonce == 7
    assert ev[OrderUpdated][-1].order is t.order


def test_fixture_trade_is_ours_as_taker_bid() -> None:
    tr, ev = make()
    tr.new_order(our_order(7001011966, size=1336, price=235_273, side=Side.BUY))
    fills = tr.apply_trades(fx("ws_account_all_trades_update.json"))
    assert len(fills) == 1
    f = fills[0]
    assert (f.trade_id, f.side, f.price_ticks, f.size_lots) == (
        19209006902,
        Side.BUY,
        235_273,
        1336,
    )
    assert not f.is_maker and f.client_order_index == 7001011966
    assert f.order_index == 562947905631053
    assert f.fee == 61_608  # 314.324728 USDC x 196e-6 = 61607.6 micro-USDC, rounded half up
    t = tr.get(7001011966)
    assert t.status is OrderStatus.FILLED and t.avg_fill_price == 235_273
    assert ev[FillReceived] == [FillReceived(f)]
    assert tr.apply_trades(fx("ws_account_all_trades_update.json")) == []  # replayed: dropped
    assert tr.duplicate_fills == 1


def test_fixture_positions_authoritative_and_mismatch() -> None:
    tr, ev = make()
    tr.apply_positions(fx("ws_account_all_positions_update.json"))
    p = tr.venue_position(0)
    assert p.size_lots == 15_000 and p.avg_entry_price_ticks == 235_010
    assert ev[PositionUpdated][-1].position.size_lots == 15_000
    assert tr.position_mismatches() == {0: (15_000, 0)}  # no fills replayed yet
    tr.rebase_positions()
    assert tr.position_mismatches() == {}
    tr.apply_trades(trade_msg(10, 5, 900, 100, we_ask=False))  # a buy fill of ours
    assert tr.position_mismatches() == {0: (15_000, 15_100)}
    tr.apply_positions(
        {
            "positions": {
                "0": {"market_id": 0, "sign": 1, "position": "1.5100", "avg_entry_price": "2350.10"}
            }
        }
    )
    assert tr.position_mismatches() == {}
    tr.apply_positions({"positions": {}})  # a full snapshot without market 0: flat
    assert tr.venue_position(0).size_lots == 0
    short = {
        "positions": {
            "0": {"market_id": 0, "sign": -1, "position": "0.0100", "avg_entry_price": "2000.00"}
        }
    }
    tr.apply_positions(short)
    assert tr.venue_position(0).size_lots == -100


def test_position_carries_the_venues_funding_exactly() -> None:
    tr, ev = make()
    tr.apply_positions(fx("ws_account_all_positions_update.json"))  # "0.05" paid out
    assert tr.venue_position(0).funding_paid == 50_000
    assert ev[PositionUpdated][-1].position.funding_paid == 50_000
    n = len(ev[PositionUpdated])
    # Funding moves without any fill: a new position event, size unchanged.
    pos = {
        "market_id": 0,
        "sign": 1,
        "position": "1.5000",
        "avg_entry_price": "2350.10",
        "total_funding_paid_out": "-1.250001",
    }
    tr.apply_positions({"positions": {"0": pos}})
    assert len(ev[PositionUpdated]) == n + 1
    assert ev[PositionUpdated][-1].position.funding_paid == -1_250_001
    assert ev[PositionUpdated][-1].position.size_lots == 15_000
    # Flat keeps what was paid on the position; null reads as nothing paid.
    tr.apply_positions({"positions": {}})
    assert tr.venue_position(0).funding_paid == -1_250_001
    tr.apply_positions({"positions": {"0": dict(pos, total_funding_paid_out=None)}})
    assert tr.venue_position(0).funding_paid == 0
    with pytest.raises(TrackerError, match="market 0"):
        tr.apply_positions({"positions": {"0": dict(pos, total_funding_paid_out="0.1234567")}})


def test_foreign_orders_kept_apart_and_adopted() -> None:
    tr, ev = make()
    tr.apply_orders(order_msg(coi=0, oi=1 << 48, status="open", filled=0))
    tr.apply_orders(order_msg(coi=555, oi=(1 << 48) + 1, status="open", filled=0))
    assert [t.order_index for t in tr.foreign_orders()] == [1 << 48, (1 << 48) + 1]
    assert list(tr.orders()) == [] and ev[OrderUpdated] == []
    with pytest.raises(TrackerError, match="no client_order_index"):
        tr.adopt(1 << 48)
    t = tr.adopt((1 << 48) + 1)
    assert tr.get(555) is t and t.ours and t.status is OrderStatus.OPEN
    assert t.order.size_lots == 50 and t.order.side is Side.SELL
    tr.apply_orders(
        order_msg(coi=555, oi=(1 << 48) + 1, status="canceled-expired", filled=0, vtime=2)
    )
    assert t.status is OrderStatus.CANCELED and t.order.cancel_reason == "canceled-expired"


# ------------------------------------------------------------------------------ local states
def test_duplicate_coi_refused_and_21728_asks_reconciliation() -> None:
    tr, _ = make()
    tr.new_order(our_order(9))
    with pytest.raises(DuplicateClientOrderIndex):
        tr.new_order(our_order(9))
    tr.on_api_reject(9, 21728, retry=False)
    assert tr.get(9).status is OrderStatus.UNKNOWN  # not rejected: the venue may hold it
    assert tr.reconcile_reasons and "9" in tr.reconcile_reasons[0]
    with pytest.raises(ValueError):
        tr.new_order(our_order(0))  # Order.check: coi out of range


def test_unknown_settles_only_by_lookup_nonce_or_stream() -> None:
    tr, _ = make()
    for coi in (1, 2, 3, 4, 5, 6):
        tr.new_order(our_order(coi))
        tr.on_unknown(coi)
        assert tr.get(coi).status is OrderStatus.UNKNOWN
    assert {t.client_order_index for t in tr.unknown_orders()} == {1, 2, 3, 4, 5, 6}
    tr.on_tx_outcome(1, executed=True)
    tr.on_tx_outcome(2, executed=False)
    tr.on_nonce_settled(3, consumed=True, retry=True)
    tr.on_nonce_settled(4, consumed=False, retry=True)
    tr.on_nonce_settled(5, consumed=False, retry=False)
    tr.apply_orders(order_msg(6, 600, "open", 0))
    got = {c: tr.get(c).status for c in (1, 2, 3, 4, 5, 6)}
    assert got == {
        1: OrderStatus.PENDING_NEW,
        2: OrderStatus.REJECTED,
        3: OrderStatus.PENDING_NEW,
        4: OrderStatus.PENDING_NEW,
        5: OrderStatus.REJECTED,
        6: OrderStatus.OPEN,
    }
    # Once the venue showed the order, transport news cannot override it.
    tr.on_unknown(6)
    tr.on_api_reject(6, 21104, retry=False)
    assert tr.get(6).status is OrderStatus.OPEN


def test_api_reject_retry_stays_pending_and_final_reject() -> None:
    tr, _ = make()
    tr.new_order(our_order(1))
    tr.on_signed(1, "aa", 3)
    tr.on_api_reject(1, 21104, retry=True)
    t = tr.get(1)
    assert t.status is OrderStatus.PENDING_NEW and t.tx_hash is None
    tr.on_signed(1, "bb", 9)  # re-signed: same coi, new nonce
    assert t.order.cancel_reason is None
    tr.on_api_reject(1, 21739, retry=False, message="invalid expiry")
    assert t.status is OrderStatus.REJECTED and t.reject_code == 21739
    # The reason the journal carries: the venue's code and message.
    assert t.order.cancel_reason == "rejected 21739: invalid expiry"
    tr.new_order(our_order(2))
    tr.on_signed(2, "cc", 10)
    tr.on_tx_outcome(2, False)
    assert tr.get(2).order.cancel_reason == "rejected: the venue's tx lookup says it failed"


def test_cancel_states_and_reason() -> None:
    tr, _ = make()
    tr.new_order(our_order(1))
    tr.apply_orders(order_msg(1, 100, "open", 0, vtime=1))
    assert tr.cancel_requested(1) == 1
    assert tr.get(1).status is OrderStatus.PENDING_CANCEL
    tr.apply_orders(order_msg(1, 100, "open", 0, vtime=2))  # stream lags the cancel
    assert tr.get(1).status is OrderStatus.PENDING_CANCEL
    tr.on_cancel_failed(1)
    assert tr.get(1).status is OrderStatus.OPEN
    assert tr.cancel_requested(1) == 2
    tr.apply_orders(order_msg(1, 100, "canceled-post-only", 0, vtime=3))
    t = tr.get(1)
    assert t.status is OrderStatus.CANCELED and t.order.cancel_reason == "canceled-post-only"
    tr.apply_orders(order_msg(1, 100, "open", 0, vtime=4))  # terminal is sticky
    assert t.status is OrderStatus.CANCELED
    tr.forget(1)
    assert tr.get(1) is None


# ------------------------------------------------------------------------------ reliability
def test_item11_cancel_too_late_fill_booked_once_final_filled() -> None:
    tr, ev = make()
    tr.new_order(our_order(11, size=50))
    tr.apply_orders(order_msg(11, 1100, "open", 0, vtime=1))
    assert tr.cancel_requested(11) == 1
    fills = tr.apply_trades(trade_msg(500, 11, 1100, 50))  # the fill beats the cancel
    tr.apply_trades(trade_msg(500, 11, 1100, 50))  # replayed on resubscribe
    tr.on_cancel_failed(11)  # venue: not an active order
    tr.apply_orders(order_msg(11, 1100, "filled", 50, vtime=2))
    t = tr.get(11)
    assert t.status is OrderStatus.FILLED and t.cancel_attempts <= 3
    assert len(fills) == 1 and len(ev[FillReceived]) == 1
    assert t.fill_lots == 50 and t.order.filled_lots == 50
    assert tr.replayed_position(0).size_lots == -50


def test_item19_stale_snapshot_never_rolls_back_fills() -> None:
    tr, _ = make()
    tr.new_order(our_order(19, size=50))
    tr.apply_orders(order_msg(19, 1900, "open", 10, vtime=5))
    tr.apply_trades(trade_msg(600, 19, 1900, 10))
    tr.apply_trades(trade_msg(601, 19, 1900, 20))
    t = tr.get(19)
    assert t.order.filled_lots == 30 and t.status is OrderStatus.PARTIALLY_FILLED
    tr.apply_orders(order_msg(19, 1900, "open", 10, vtime=4))  # older snapshot
    assert tr.stale_updates == 1
    tr.apply_orders(order_msg(19, 1900, "open", 10, vtime=6))  # newer time, lagging fill
    assert t.order.filled_lots == 30 and t.fill_lots == 30
    assert tr.replayed_position(0).size_lots == -30


@pytest.mark.parametrize("seed", range(25))
def test_item12_random_partial_fills_exact_ints(seed: int) -> None:
    """Random splits, fill before ack, duplicate and reordered fill messages, stale order
    snapshots: cumulative quantity, average price and position exact; 0 double counts."""
    rng = random.Random(seed)
    tr, ev = make()
    expected_pos = 0
    expected_fees = 0
    tid = 1000
    for coi in range(1, 6):
        size = rng.randrange(1, 500)
        side = rng.choice((Side.BUY, Side.SELL))
        oi = (1 << 48) + coi
        tr.new_order(our_order(coi, size=size, side=side))
        parts = []
        left = rng.randrange(1, size + 1)  # may end partially filled
        filled_total = left
        while left:
            q = rng.randrange(1, left + 1)
            price = 235_000 + rng.randrange(-500, 500)
            parts.append((tid, q, price))
            tid += rng.randrange(1, 4)
            left -= q
        msgs = []
        cum = 0
        for i, (trade_id, q, price) in enumerate(parts):
            msgs.append(
                (
                    "trade",
                    trade_msg(
                        trade_id,
                        coi,
                        oi,
                        q,
                        price,
                        we_ask=side is Side.SELL,
                        maker_ask=rng.random() < 0.5,
                    ),
                )
            )
            cum += q
            msgs.append(
                (
                    "order",
                    order_msg(
                        coi,
                        oi,
                        "open" if cum < size else "filled",
                        cum,
                        size,
                        vtime=i + 1,
                        is_ask=side is Side.SELL,
                    ),
                )
            )
        # duplicates, and a shuffle within a small window (reordering)
        msgs += [m for m in msgs if rng.random() < 0.3]
        for i in range(len(msgs) - 1):
            if rng.random() < 0.3:
                msgs[i], msgs[i + 1] = msgs[i + 1], msgs[i]
        if rng.random() < 0.5:
            tr.on_ack(coi)  # sometimes the ack comes first, sometimes after the fills
        for kind, m in msgs:
            if kind == "trade":
                tr.apply_trades(m)
            else:
                tr.apply_orders(m)
        tr.on_ack(coi)
        t = tr.get(coi)
        assert t.fill_lots == filled_total and t.order.filled_lots == filled_total
        notional = sum(q * p for _, q, p in parts)
        assert t.fill_notional == notional
        assert t.avg_fill_price == Fraction(notional, filled_total)
        want = OrderStatus.FILLED if filled_total == size else OrderStatus.PARTIALLY_FILLED
        assert t.status is want
        expected_pos += side.sign * filled_total
        for trade_id, q, p in parts:
            f = next(e.fill for e in ev[FillReceived] if e.fill.trade_id == trade_id)
            assert f.size_lots == q and f.price_ticks == p
            rate = 28 if f.is_maker else 196
            expected_fees += (q * p * rate * 2 + 1_000_000) // 2_000_000
    trade_ids = [e.fill.trade_id for e in ev[FillReceived]]
    assert len(trade_ids) == len(set(trade_ids))  # 0 double counts
    assert tr.replayed_position(0).size_lots == expected_pos
    assert sum(e.fill.fee for e in ev[FillReceived]) == expected_fees


# ------------------------------------------------------------------------------ watermark
def test_watermark_persisted_and_replay_after_restart(tmp_path) -> None:
    wm = FillWatermark.for_key("sim", ACCOUNT, 5, state_dir=tmp_path)
    tr, _ = make(wm)
    tr.new_order(our_order(1, size=100))
    tr.apply_trades(trade_msg(700, 1, 100, 10))
    tr.apply_trades(trade_msg(705, 1, 100, 10))
    assert json.loads(wm.path.read_text())["trade_id"] == 705
    # Restart: the stream replays recent trades, plus one new.
    wm2 = FillWatermark.for_key("sim", ACCOUNT, 5, state_dir=tmp_path)
    tr2, ev2 = make(wm2)
    tr2.new_order(our_order(1, size=100))
    for t in (700, 705, 706):
        tr2.apply_trades(trade_msg(t, 1, 100, 10))
    assert [e.fill.trade_id for e in ev2[FillReceived]] == [706]
    assert tr2.watermark == 706 and tr2.duplicate_fills == 2


def test_watermark_corrupt_is_error_and_manual_flush(tmp_path) -> None:
    wm = FillWatermark.for_key("sim", ACCOUNT, 5, state_dir=tmp_path)
    wm.path.write_text("{oops")
    with pytest.raises(CoiStateError):
        FillWatermark.for_key("sim", ACCOUNT, 5, state_dir=tmp_path)
    wm.path.write_text('{"trade_id": -4}')
    with pytest.raises(CoiStateError):
        FillWatermark.for_key("sim", ACCOUNT, 5, state_dir=tmp_path)
    wm.path.unlink()
    wm = FillWatermark.for_key("sim", ACCOUNT, 5, state_dir=tmp_path)
    bus = EventBus()
    tr = OrderTracker(bus, MARKETS, account_index=ACCOUNT, watermark=wm, flush_each_batch=False)
    tr.apply_trades(trade_msg(800, 0, 5, 10))
    assert not wm.path.exists() and tr.watermark == 800
    assert tr.flush_watermark() and not tr.flush_watermark()
    assert json.loads(wm.path.read_text())["trade_id"] == 800


def test_malformed_payloads_raise_tracker_error() -> None:
    tr, _ = make()
    with pytest.raises(TrackerError):
        tr.apply_orders({"nope": 1})
    with pytest.raises(TrackerError):
        tr.apply_orders(order_msg(1, 2, "open", 0) | {"orders": {"9": [{"market_index": 9}]}})
    bad_price = order_msg(1, 2, "open", 0)
    bad_price["orders"]["0"][0]["price"] = "12.345"  # 3 decimals on a 2-decimal market
    with pytest.raises(TrackerError):
        tr.apply_orders(bad_price)
    with pytest.raises(TrackerError):
        tr.apply_trades({"x": []})
    with pytest.raises(TrackerError):
        tr.apply_positions({"positions": 3})
    with pytest.raises(TrackerError, match="not tracked"):
        tr.on_ack(12345)
