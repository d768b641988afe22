"""mmfast.sim.engine: tx rules, nonces, matching, accounting (no sockets)."""

from __future__ import annotations

import base64
import itertools
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mmfast._core import signer as S
from mmfast.sim import errors as E
from mmfast.sim.clock import ManualClock
from mmfast.sim.config import MarketSpec, SimConfig
from mmfast.sim.engine import (
    TX_CANCEL_ALL,
    TX_CANCEL_ORDER,
    TX_CHANGE_PUB_KEY,
    TX_CREATE_ORDER,
    TX_EXECUTED,
    TX_FAILED,
    TX_MODIFY_ORDER,
    TX_UPDATE_LEVERAGE,
    Exchange,
)
from mmfast.sim.errors import VenueError

MAIN = 1001
OTHER = 2002
MIN = 60_000
ETH = 0


class Client:
    """Builds tx_info dicts the way the signer lays them out, with its own nonce counter."""

    def __init__(self, ex: Exchange, clock: ManualClock, account: int, key: int = 3) -> None:
        self.ex, self.clock, self.account, self.key = ex, clock, account, key
        self.nonce = 0
        self.coi = 0

    def _base(self, **kw: Any) -> dict[str, Any]:
        d = {"AccountIndex": self.account, "ApiKeyIndex": self.key}
        d.update(kw)
        d.setdefault("ExpiredAt", self.clock.wall_ms() + 10 * MIN - 1000)
        d.setdefault("Nonce", self.nonce)
        d["Sig"] = "c2ln"
        d.setdefault("L2TxAttributes", None)
        return d

    def create_info(
        self,
        price: int,
        size: int,
        is_ask: bool,
        tif: int = 1,
        otype: int = 0,
        reduce_only: bool = False,
        coi: int | None = None,
        expiry: int | None = None,
        market: int = ETH,
        **kw: Any,
    ) -> dict[str, Any]:
        if coi is None:
            self.coi += 1
            coi = self.coi
        if expiry is None:
            expiry = 0 if tif == 0 else self.clock.wall_ms() + 60 * MIN
        return self._base(
            MarketIndex=market,
            ClientOrderIndex=coi,
            BaseAmount=size,
            Price=price,
            IsAsk=int(is_ask),
            Type=otype,
            TimeInForce=tif,
            ReduceOnly=int(reduce_only),
            TriggerPrice=0,
            OrderExpiry=expiry,
            **kw,
        )

    def send(self, tx_type: int, info: dict[str, Any]):
        rec = self.ex.submit(tx_type, info)
        self.nonce += 1
        return rec

    def create(self, *a: Any, **kw: Any):
        return self.send(TX_CREATE_ORDER, self.create_info(*a, **kw))

    def cancel(self, index: int, market: int = ETH):
        return self.send(TX_CANCEL_ORDER, self._base(MarketIndex=market, Index=index))

    def modify(self, index: int, price: int, size: int, market: int = ETH):
        return self.send(
            TX_MODIFY_ORDER,
            self._base(
                MarketIndex=market, Index=index, BaseAmount=size, Price=price, TriggerPrice=0
            ),
        )

    def cancel_all(self, tif: int = 0, when: int = 0, market: int | None = None):
        attrs = None if market is None else {"5": market}
        return self.send(
            TX_CANCEL_ALL, self._base(TimeInForce=tif, Time=when, L2TxAttributes=attrs)
        )


def make(**cfg: Any) -> tuple[Exchange, ManualClock, Client, Client]:
    clock = ManualClock()
    cfg.setdefault("speed_bumps", False)
    cfg.setdefault("verify_signatures", False)  # stand-in signatures (see test_sim_signatures)
    ex = Exchange(SimConfig(**cfg), clock)
    ex.add_account(OTHER, 10**12)
    return ex, clock, Client(ex, clock, MAIN), Client(ex, clock, OTHER)


def status_of(ex: Exchange, order_index: int) -> str:
    return ex.orders[order_index].status


def reject_code(fn, *a: Any, **kw: Any) -> int:
    with pytest.raises(VenueError) as ei:
        fn(*a, **kw)
    return ei.value.code


# ---------------------------------------------------------------- nonces
def test_nonce_checked_and_consumed_only_when_accepted() -> None:
    ex, _clock, a, _ = make()
    assert ex.next_nonce(MAIN, 3) == 0
    a.nonce = 5
    assert reject_code(a.create, 300_000, 100, False) == E.INVALID_NONCE
    a.nonce = 0
    # API-level reject (price 0): HTTP 400, nonce not consumed
    assert reject_code(a.create, 0, 100, False) == E.INVALID_PRICE
    assert ex.next_nonce(MAIN, 3) == 0
    rec = a.create(299_000, 100, False)
    assert rec.status == TX_EXECUTED and ex.next_nonce(MAIN, 3) == 1
    # Accepted then canceled by the sequencer (post-only crossing): nonce consumed
    ex2, _clock2, a2, b2 = make()
    b2.create(299_000, 100, True)  # ask rests at 2990.00
    rec = a2.create(299_500, 100, False, tif=2)  # post-only bid through the ask
    assert status_of(ex2, rec.order_index) == "canceled-post-only"
    assert ex2.next_nonce(MAIN, 3) == 1
    # Each key has its own nonce stream
    assert ex2.next_nonce(MAIN, 4) == 0


def test_unknown_key_rejected_when_keys_are_configured() -> None:
    ex, _clock, a, _ = make(api_key_indexes=(5,))
    assert reject_code(a.create, 300_000, 100, False) == E.API_KEY_NOT_FOUND
    a.key = 5
    assert a.create(299_000, 100, False).status == TX_EXECUTED
    assert reject_code(ex.next_nonce, 99999, 5) == E.ACCOUNT_NOT_FOUND


def test_structure_checks() -> None:
    ex, clock, a, _ = make()
    info = a.create_info(300_000, 100, False)
    del info["Price"]
    assert reject_code(ex.submit, TX_CREATE_ORDER, info) == E.INVALID_TX_INFO
    assert reject_code(ex.submit, TX_CREATE_ORDER, "{not json") == E.INVALID_TX_INFO
    info = a.create_info(300_000, 100, False)
    info["Sig"] = ""
    assert reject_code(ex.submit, TX_CREATE_ORDER, info) == E.INVALID_SIGNATURE
    info = a.create_info(300_000, 100, False)
    info["IsAsk"] = True  # a JSON bool is not the venue's integer
    assert reject_code(ex.submit, TX_CREATE_ORDER, info) == E.INVALID_TX_INFO
    assert reject_code(ex.submit, 13, a.create_info(300_000, 100, False)) == E.UNSUPPORTED_TX_TYPE
    info = a.create_info(300_000, 100, False)
    info["ExpiredAt"] = clock.wall_ms()
    assert reject_code(ex.submit, TX_CREATE_ORDER, info) == E.INVALID_TX_INFO
    assert ex.next_nonce(MAIN, 3) == 0


@pytest.mark.parametrize(
    ("kw", "code"),
    [
        ({"market": 7}, E.INVALID_MARKET_INDEX),
        ({"coi": 0}, E.INVALID_CLIENT_ORDER_INDEX),
        ({"coi": 2**48}, E.INVALID_CLIENT_ORDER_INDEX),
        ({"tif": 1, "expiry": 0}, E.INVALID_ORDER_EXPIRY),
        ({"tif": 1, "expiry_offset": 4 * MIN}, E.INVALID_ORDER_EXPIRY),
        ({"tif": 2, "expiry_offset": 31 * 24 * 60 * MIN}, E.INVALID_ORDER_EXPIRY),
        ({"tif": 0, "expiry_offset": 10 * MIN}, E.INVALID_ORDER_EXPIRY),
        ({"tif": 3}, E.INVALID_TIME_IN_FORCE),
        ({"otype": 1, "tif": 1}, E.INVALID_TIME_IN_FORCE),
        ({"otype": 9}, E.INVALID_ORDER_TYPE),
        ({"size": 49}, E.INVALID_ORDER_AMOUNT),  # min_base_amount 0.0050 = 50 lots
        ({"price": 100, "size": 50}, E.INVALID_ORDER_AMOUNT),  # 1.00 x 0.005 < $10
        ({"price": 2**32}, E.INVALID_PRICE),
        ({"size": 0}, E.INVALID_BASE_AMOUNT),
    ],
)
def test_create_order_field_rules(kw: dict[str, Any], code: int) -> None:
    ex, clock, a, _ = make()
    price = kw.pop("price", 299_000)
    size = kw.pop("size", 100)
    off = kw.pop("expiry_offset", None)
    if off is not None:
        kw["expiry"] = clock.wall_ms() + off
    assert reject_code(a.create, price, size, False, **kw) == code
    assert ex.next_nonce(MAIN, 3) == 0


def test_expiry_window_edges_accepted() -> None:
    _ex, clock, a, _ = make()
    now = clock.wall_ms()
    assert a.create(299_000, 100, False, expiry=now + 5 * MIN).status == TX_EXECUTED
    assert (
        a.create(299_000, 100, False, tif=2, expiry=now + 30 * 24 * 60 * MIN).status == TX_EXECUTED
    )


def test_client_order_index_unique_among_live_orders() -> None:
    ex, _clock, a, _ = make()
    rec = a.create(299_000, 100, False, coi=77)
    assert reject_code(a.create, 298_000, 100, False, coi=77) == E.CLIENT_ORDER_INDEX_EXISTS
    a.cancel(77)
    assert status_of(ex, rec.order_index) == "canceled"
    # Once the order is gone its client_order_index may be used again.
    assert a.create(298_000, 100, False, coi=77).status == TX_EXECUTED


def test_large_market_id_is_supported() -> None:
    big = MarketSpec(
        70_000,
        "BIG",
        size_decimals=2,
        price_decimals=3,
        mark_price=50_000,
        min_base_amount=1,
        min_quote_amount=1_000_000,
    )
    ex, _clock, a, _b = make(markets=(big,))
    rec = a.create(50_000, 100, False, market=70_000)
    assert ex.orders[rec.order_index].market == 70_000
    assert reject_code(a.create, 300_000, 100, False, market=0) == E.INVALID_MARKET_INDEX


# ---------------------------------------------------------------- matching
def test_price_time_priority_and_partial_fills() -> None:
    ex, clock, a, b = make()
    first = a.create(299_000, 100, False)
    second = b.create(299_000, 100, False)
    better = b.create(299_100, 50, False)
    ex.add_account(3003, 10**12)
    taker = Client(ex, clock, 3003).create(298_000, 120, True, tif=0)  # IOC sell 0.0120
    assert status_of(ex, taker.order_index) == "filled"
    assert status_of(ex, better.order_index) == "filled"  # best price first
    o1 = ex.orders[first.order_index]
    assert o1.remaining == 30 and o1.status == "open"  # then the oldest at 2990.00
    assert ex.orders[second.order_index].remaining == 100
    fills = ex.fills(market=ETH)
    assert [(t["price"], t["size"]) for t in fills] == [(299_100, 50), (299_000, 70)]
    assert ex.levels(ETH) == ([], [(299_000, 130)])


def test_ioc_and_market_orders() -> None:
    ex, _clock, a, b = make()
    b.create(300_100, 100, True)
    b.create(300_300, 100, True)
    ioc = a.create(300_200, 150, False, tif=0)
    o = ex.orders[ioc.order_index]
    assert (o.filled_base, o.status) == (100, "canceled")
    # market buy with a worst price below the remaining ask: nothing beyond the cap trades
    mkt = a.create(300_250, 100, False, tif=0, otype=1)
    assert status_of(ex, mkt.order_index) == "canceled-too-much-slippage"
    mkt2 = a.create(300_500, 150, False, tif=0, otype=1)
    o = ex.orders[mkt2.order_index]
    assert o.filled_base == 100 and o.status == "canceled-not-enough-liquidity"


def test_post_only_rests_when_not_crossing() -> None:
    ex, _clock, a, b = make()
    b.create(300_100, 100, True)
    rec = a.create(300_000, 100, False, tif=2)
    assert status_of(ex, rec.order_index) == "open"


def test_reduce_only() -> None:
    ex, _clock, a, b = make()
    b.create(300_000, 100, True)
    rec = a.create(300_000, 100, True, tif=0, reduce_only=True)  # flat: cannot reduce
    assert status_of(ex, rec.order_index) == "canceled-reduce-only"
    a.create(300_000, 60, False, tif=0)  # long 0.0060
    assert ex.accounts[MAIN].positions[ETH].size == 60
    b.create(299_000, 200, False)
    rec = a.create(299_000, 100, True, tif=0, reduce_only=True)
    o = ex.orders[rec.order_index]
    assert o.filled_base == 60  # clipped to the position
    assert ex.accounts[MAIN].positions[ETH].size == 0


def test_self_trade_expire_maker_default() -> None:
    ex, _clock, a, b = make()
    own = a.create(300_000, 100, True)
    b.create(300_100, 100, True)
    taker = a.create(300_100, 100, False, tif=0)
    assert status_of(ex, own.order_index) == "canceled-self-trade"
    assert status_of(ex, taker.order_index) == "filled"
    assert ex.fills()[0]["ask_account_id"] == OTHER


def test_self_trade_expire_taker_attribute() -> None:
    ex, _clock, a, _b = make()
    own = a.create(300_000, 100, True)
    taker = a.create(300_000, 100, False, tif=0, L2TxAttributes={"6": 1})
    assert status_of(ex, taker.order_index) == "canceled-self-trade"
    assert status_of(ex, own.order_index) == "open"


def test_modify_loses_priority_by_default() -> None:
    ex, clock, a, b = make()
    first = a.create(299_000, 100, False, coi=1)
    b.create(299_000, 100, False)
    a.modify(1, 299_000, 90)  # same price, smaller: still goes to the back
    ex.add_account(3003, 10**12)
    Client(ex, clock, 3003).create(299_000, 100, True, tif=0)
    assert ex.orders[first.order_index].remaining == 90
    assert ex.orders[first.order_index].status == "open"


def test_modify_keeps_priority_when_configured() -> None:
    ex, clock, a, b = make(modify_keeps_priority=True)
    first = a.create(299_000, 100, False, coi=1)
    b.create(299_000, 100, False)
    a.modify(1, 299_000, 90)
    ex.add_account(3003, 10**12)
    Client(ex, clock, 3003).create(299_000, 90, True, tif=0)
    assert status_of(ex, first.order_index) == "filled"


def test_modify_by_order_index_moves_price() -> None:
    ex, _clock, a, _b = make()
    rec = a.create(299_000, 100, False)
    a.modify(rec.order_index, 299_500, 200)
    o = ex.orders[rec.order_index]
    assert (o.price, o.remaining, o.status) == (299_500, 200, "open")
    assert ex.levels(ETH)[1] == [(299_500, 200)]


def test_cancel_by_coi_and_by_order_index() -> None:
    ex, _clock, a, _ = make()
    r1 = a.create(299_000, 100, False, coi=11)
    r2 = a.create(298_000, 100, False, coi=12)
    a.cancel(11)
    a.cancel(r2.order_index)
    assert status_of(ex, r1.order_index) == status_of(ex, r2.order_index) == "canceled"
    assert reject_code(a.cancel, 11) == E.INACTIVE_ORDER  # API level: not consumed
    assert ex.next_nonce(MAIN, 3) == 4


def test_cancel_all_immediate_per_market_and_all() -> None:
    btc = MarketSpec(
        1,
        "BTC",
        size_decimals=5,
        price_decimals=1,
        mark_price=650_000,
        min_base_amount=20,
        min_quote_amount=10_000_000,
    )
    eth = SimConfig().markets[0]
    ex, _clock, a, _ = make(markets=(eth, btc))
    e = a.create(299_000, 100, False)
    b1 = a.create(649_000, 100, False, market=1)
    a.cancel_all(market=ETH)
    assert status_of(ex, e.order_index) == "canceled"
    assert status_of(ex, b1.order_index) == "open"
    a.create(299_000, 100, False)
    a.cancel_all()  # no market: every market
    assert ex.open_orders(MAIN) == []


def test_cancel_all_scheduled_and_aborted() -> None:
    ex, clock, a, _ = make()
    rec = a.create(299_000, 100, False)
    assert reject_code(a.cancel_all, 1, clock.wall_ms() + MIN) == E.INVALID_CANCEL_ALL_TIME
    assert (
        reject_code(a.cancel_all, 1, clock.wall_ms() + 10 * MIN, market=ETH)
        == E.INVALID_CANCEL_ALL_TIF
    )
    a.cancel_all(1, clock.wall_ms() + 10 * MIN)
    assert ex.accounts[MAIN].cancel_all_time > 0
    a.cancel_all(2, 0)  # abort
    clock.advance_ms(11 * MIN)
    ex.poll()
    assert status_of(ex, rec.order_index) == "open"
    a.cancel_all(1, clock.wall_ms() + 6 * MIN)
    clock.advance_ms(6 * MIN)
    ex.poll()
    assert status_of(ex, rec.order_index) == "canceled"


def test_order_expiry() -> None:
    ex, clock, a, _ = make()
    rec = a.create(299_000, 100, False, expiry=clock.wall_ms() + 5 * MIN)
    clock.advance_ms(5 * MIN)
    ex.poll()
    assert status_of(ex, rec.order_index) == "canceled-expired"


def test_race_pending_cancel_then_fill_then_cancel_rejected() -> None:
    ex, clock, a, b = make(cancel_delay_ms=200)
    rec = a.create(299_000, 100, False)
    cancel = a.cancel(rec.order_index)  # accepted (200), waits for the sequencer
    assert cancel.status == 1 and ex.next_nonce(MAIN, 3) == 2
    b.create(299_000, 100, True, tif=0)  # fills the order fully first
    assert status_of(ex, rec.order_index) == "filled"
    clock.advance_ms(200)
    ex.poll()
    assert cancel.status == TX_FAILED and cancel.error is not None
    assert cancel.error.code == E.INACTIVE_ORDER
    assert ex.next_nonce(MAIN, 3) == 2  # the failed cancel consumed its nonce


def test_tx_failing_after_expired_at_while_pending() -> None:
    ex, clock, a, _ = make(maker_delay_ms=1000)
    info = a.create_info(299_000, 100, False, ExpiredAt=clock.wall_ms() + 500)
    rec = a.send(TX_CREATE_ORDER, info)
    clock.advance_ms(1000)
    ex.poll()
    assert rec.status == TX_FAILED and ex.open_orders(MAIN) == []


# ---------------------------------------------------------------- caps, band, margin
def test_inflight_cap_per_market() -> None:
    ex, clock, a, _ = make(maker_delay_ms=100, max_inflight_per_market=3)
    for i in range(3):
        a.create(290_000 + i, 100, False)
    assert reject_code(a.create, 289_000, 100, False) == E.MAX_PENDING_ORDERS_PER_MARKET
    clock.advance_ms(100)
    ex.poll()
    assert len(ex.open_orders(MAIN)) == 3
    assert a.create(289_000, 100, False).status == 1


def test_resting_cap_per_market() -> None:
    _ex, _clock, a, _ = make(max_resting_per_market=2)
    a.create(290_000, 100, False)
    a.create(290_001, 100, False)
    assert reject_code(a.create, 290_002, 100, False) == E.MAX_ORDERS_PER_MARKET


def test_price_band_rejected_after_acceptance() -> None:
    ex, _clock, a, _ = make()  # mark 3000.00; fat finger 10%, band 50%
    far = a.create(100_000, 1000, False)  # bid 66% below mark: passive, too far
    assert far.status == TX_FAILED and far.error.code == E.PRICE_TOO_FAR_FROM_MARK
    fat = a.create(340_000, 100, False)  # bid 13% above mark: aggressive, fat finger
    assert fat.status == TX_FAILED and fat.error.code == E.FAT_FINGER_PRICE
    assert ex.next_nonce(MAIN, 3) == 2  # both consumed their nonce
    assert ex.open_orders(MAIN) == []


def test_margin_maker_rejected_at_api_taker_canceled_in_sequencer() -> None:
    ex, clock, _a, b = make()
    ex.add_account(3003, 1_000_000_000)  # $1000 collateral, 20x => $20k of exposure
    c = Client(ex, clock, 3003)
    assert reject_code(c.create, 300_000, 1_000_000, False) == E.NOT_ENOUGH_ORDER_MARGIN
    assert ex.next_nonce(3003, 3) == 0
    b.create(300_000, 1_000_000, True)
    rec = c.create(300_000, 1_000_000, False, tif=0)
    assert status_of(ex, rec.order_index) == "canceled-margin-not-allowed"
    assert ex.next_nonce(3003, 3) == 1
    ok = c.create(290_000, 10_000, False)  # $2900 notional, $145 margin: fine
    assert status_of(ex, ok.order_index) == "open"


def test_update_leverage_sets_margin_fraction_and_mode() -> None:
    ex, clock, _a, _b = make()
    ex.add_account(3003, 1_000_000_000)  # $1000 collateral
    c = Client(ex, clock, 3003)

    def lev(imf: int, mode: int = 0, market: int = ETH):
        return c.send(
            TX_UPDATE_LEVERAGE,
            c._base(MarketIndex=market, InitialMarginFraction=imf, MarginMode=mode),
        )

    default = ex.margin_fraction(ex.account(3003), ETH)
    # At the default 20x, $1900 of notional needs $95 of margin; at 1x ($1900) it does not fit
    # beside $1000 of collateral: the maker order is refused at the API (nonce kept).
    assert reject_code(lev, 10_001) == E.INVALID_TX_INFO
    assert reject_code(lev, 1, 2) == E.INVALID_TX_INFO
    assert reject_code(lev, default, market=99) == E.INVALID_MARKET_INDEX
    assert ex.next_nonce(3003, 3) == 0
    rec = lev(10_000, 1)
    assert rec.status == TX_EXECUTED and ex.next_nonce(3003, 3) == 1
    assert ex.account(3003).leverage[ETH] == (10_000, 1)
    assert ex.margin_fraction(ex.account(3003), ETH) == 10_000
    assert reject_code(c.create, 190_000, 10_000, False) == E.NOT_ENOUGH_ORDER_MARGIN
    lev(default)
    assert ex.account(3003).leverage[ETH] == (default, 0)
    ok = c.create(190_000, 10_000, False)
    assert status_of(ex, ok.order_index) == "open"


# ---------------------------------------------------------------- accounting
def test_fees_positions_and_pnl() -> None:
    ex, _clock, a, b = make()
    b.create(300_000, 10_000, True)  # 1 ETH @ 3000.00
    a.create(300_000, 10_000, False, tif=0)
    pa = ex.accounts[MAIN].positions[ETH]
    pb = ex.accounts[OTHER].positions[ETH]
    assert (pa.size, pa.entry_quote) == (10_000, 3_000_000_000)
    assert pb.size == -10_000
    taker_fee = 3_000_000_000 * 196 // 1_000_000
    maker_fee = 3_000_000_000 * 28 // 1_000_000
    assert ex.accounts[MAIN].collateral == 10**12 - taker_fee
    assert ex.accounts[OTHER].collateral == 10**12 - maker_fee
    ex.set_mark_price(ETH, 310_000)
    assert ex.unrealized_pnl(ex.accounts[MAIN], ETH) == 100_000_000  # +$100
    assert ex.unrealized_pnl(ex.accounts[OTHER], ETH) == -100_000_000
    # close half at 3100.00: realize +$50 on the long
    b.create(310_000, 5_000, False)
    a.create(310_000, 5_000, True, tif=0)
    assert pa.size == 5_000 and pa.realized_pnl == 50_000_000
    assert pa.entry_quote == 1_500_000_000
    assert pb.realized_pnl == -50_000_000
    # flip: sell 1 ETH more at 3100 -> short 0.5 with a fresh basis
    b.create(310_000, 10_000, False)
    a.create(310_000, 10_000, True, tif=0)
    assert pa.size == -5_000 and pa.entry_quote == 1_550_000_000
    assert pa.realized_pnl == 100_000_000


def test_book_deltas_chain_and_absolute_sizes() -> None:
    ex, _clock, a, b = make()
    ex.drain_events()
    a.create(299_000, 100, False)
    a.create(299_000, 50, False)
    b.create(299_000, 150, True, tif=0)
    books = [e.payload for e in ex.drain_events() if e.kind == "book"]
    assert len(books) == 3
    for prev, cur in itertools.pairwise(books):
        assert cur[2] == prev[3]  # begin_nonce == previous nonce
        assert cur[4] > prev[4]  # offset grows
    assert books[0][1] == [(299_000, 100)]
    assert books[1][1] == [(299_000, 150)]
    assert books[2][1] == [(299_000, 0)]  # size 0 deletes the level


# ---------------------------------------------------------------- batches and auth
def test_batch_rules() -> None:
    ex, _clock, a, b = make(max_inflight_per_market=50)
    i0 = a.create_info(299_000, 100, False, Nonce=0)
    i1 = a.create_info(298_000, 100, False, Nonce=2)
    assert reject_code(ex.submit_batch, [14, 14], [i0, i1]) == E.BATCH_NONCE_NOT_INCREASING
    i1 = b.create_info(298_000, 100, False, Nonce=1)
    assert reject_code(ex.submit_batch, [14, 14], [i0, i1]) == E.BATCH_MULTIPLE_OWNER
    infos = [a.create_info(290_000 + i, 100, False, Nonce=i) for i in range(16)]
    # The venue's cap: 15 since early 2026 (a 16-tx batch refused whole).
    assert reject_code(ex.submit_batch, [14] * 16, infos) == E.MAX_BATCH_TX
    # atomic: a bad tx in the batch leaves everything untouched
    bad = a.create_info(0, 100, False, Nonce=1)
    assert reject_code(ex.submit_batch, [14, 14], [infos[0], bad]) == E.INVALID_PRICE
    assert ex.next_nonce(MAIN, 3) == 0 and ex.open_orders() == []
    recs = ex.submit_batch([14] * 15, infos[:15])
    assert len({r.hash for r in recs}) == 15 and ex.next_nonce(MAIN, 3) == 15


def test_batch_duplicate_coi_rejected() -> None:
    ex, _clock, a, _ = make()
    i0 = a.create_info(299_000, 100, False, Nonce=0, coi=5)
    i1 = a.create_info(298_000, 100, False, Nonce=1, coi=5)
    assert reject_code(ex.submit_batch, [14, 14], [i0, i1]) == E.CLIENT_ORDER_INDEX_EXISTS


def test_auth_token_checks() -> None:
    ex, clock, _a, _ = make()
    now_s = clock.wall_ms() // 1000
    good = f"{now_s + 600}:{MAIN}:3:abcd"
    assert ex.check_auth(good, MAIN) == MAIN
    for bad in (
        f"{now_s - 1}:{MAIN}:3:abcd",
        f"{now_s + 9 * 3600}:{MAIN}:3:abcd",
        f"{now_s + 600}:{MAIN}:3:zz",
        "nonsense",
        f"{now_s + 600}:77:3:ab",
    ):
        assert reject_code(ex.check_auth, bad) == E.INVALID_SIGNATURE
    assert reject_code(ex.check_auth, good, OTHER) == E.INVALID_SIGNATURE


def test_config_refuses_non_loopback_and_lighter_chain_ids() -> None:
    with pytest.raises(ValueError):
        SimConfig(host="0.0.0.0")
    for cid in (300, 304, 466324):
        with pytest.raises(ValueError):
            SimConfig(chain_id=cid)
    with pytest.raises(ValueError):
        replace(SimConfig(), markets=())


# ---------------------------------------------------------------- invariants under random flow
def _check_invariants(ex: Exchange) -> None:
    for mid, m in ex.markets.items():
        for side in (m.asks, m.bids):
            assert side.prices == sorted(side.levels)
            for price, q in side.levels.items():
                assert q and side.sizes[price] == sum(o.remaining for o in q)
                assert all(o.live and o.price == price and o.remaining > 0 for o in q)
        if m.asks.best() is not None and m.bids.best() is not None:
            assert m.asks.best() > m.bids.best()  # never a crossed book at rest
        assert sum(a.positions[mid].size for a in ex.accounts.values() if mid in a.positions) == 0
    for acct in ex.accounts.values():
        counts: dict[int, int] = {}
        lots: dict[tuple[int, bool], int] = {}
        for o in acct.live.values():
            counts[o.market] = counts.get(o.market, 0) + 1
            if not o.reduce_only:
                lots[(o.market, o.is_ask)] = lots.get((o.market, o.is_ask), 0) + o.remaining
            assert acct.by_coi[o.client_order_index] is o
        assert {k: v for k, v in acct.live_count.items() if v} == counts
        assert {k: v for k, v in acct.open_lots.items() if v} == lots
    for o in ex.orders.values():
        assert o.initial == o.remaining + o.filled_base  # no self-trade 'reduce' here


# A narrow price grid so that orders cross often; GTT first (hypothesis favours early choices).
_op = st.tuples(
    st.sampled_from(["create", "create", "create", "cancel", "modify", "cancel_all"]),
    st.integers(0, 2),  # which client
    st.integers(0, 6).map(lambda k: 299_700 + 100 * k),  # price
    st.integers(50, 400),  # size
    st.booleans(),  # is_ask
    st.sampled_from([1, 0, 2, 1]),  # tif
    st.sampled_from([False, False, True]),  # reduce-only
)


@settings(derandomize=True, max_examples=60, deadline=None)
@given(st.lists(_op, min_size=15, max_size=40), st.booleans())
def test_random_flow_keeps_book_and_accounts_consistent(ops, keep_priority) -> None:
    clock = ManualClock()
    ex = Exchange(
        SimConfig(modify_keeps_priority=keep_priority, speed_bumps=False, verify_signatures=False),
        clock,
    )
    ex.add_account(OTHER, 10**12)
    ex.add_account(3003, 10**12)
    clients = [Client(ex, clock, a) for a in (MAIN, OTHER, 3003)]
    for kind, who, price, size, is_ask, tif, reduce_only in ops:
        c = clients[who]
        try:
            if kind == "create":
                c.create(price, size, is_ask, tif=tif, reduce_only=reduce_only)
            elif kind == "cancel" and c.coi:
                c.cancel(1 + price % c.coi)
            elif kind == "modify" and c.coi:
                c.modify(1 + price % c.coi, price, size)
            elif kind == "cancel_all":
                c.cancel_all()
        except VenueError:
            pass  # API-level rejects leave no trace (checked elsewhere)
        clock.advance_ms(1)
        ex.poll()
        _check_invariants(ex)
    _SEEN["trades"] += len(ex.fills())
    _SEEN["statuses"].update(o.status for o in ex.orders.values())


_SEEN: dict = {"trades": 0, "statuses": set()}


def test_random_flow_exercised_matching() -> None:
    """The random flow above really trades and reaches the interesting statuses."""
    if not _SEEN["trades"]:
        test_random_flow_keeps_book_and_accounts_consistent()
    assert _SEEN["trades"] > 20
    assert {
        "open",
        "filled",
        "canceled",
        "canceled-post-only",
        "canceled-self-trade",
        "canceled-reduce-only",
    } <= _SEEN["statuses"]


# ---------------------------------------------------------------- signatures and keys
SK, SK2 = "77" * 40, "5a" * 40


def signed(
    info: dict[str, Any], sk: str, chain_id: int, tx_type: int = TX_CREATE_ORDER, k: int = 12345
) -> dict[str, Any]:
    """`info` with a real Sig over Lighter's hash (a fixed nonce k: deterministic tests)."""
    h = S.tx_info_hash(tx_type, info, chain_id)
    sig = S.sign_hashed(sk, h, k.to_bytes(40, "little"))
    return dict(info, Sig=base64.b64encode(sig).decode())


def strict() -> tuple[Exchange, ManualClock, Client]:
    ex, clock, a, _ = make(verify_signatures=True, api_keys=((MAIN, 3, S.public_key(SK).hex()),))
    return ex, clock, a


def test_signed_tx_accepted_with_the_venue_hash() -> None:
    ex, _clock, a = strict()
    info = signed(a.create_info(299_000, 100, False), SK, ex.config.chain_id)
    rec = a.send(TX_CREATE_ORDER, info)
    assert rec.status == TX_EXECUTED
    assert rec.hash == S.tx_info_hash(TX_CREATE_ORDER, info, ex.config.chain_id).hex()
    assert ex.txs[rec.hash] is rec and len(rec.hash) == 80


@pytest.mark.parametrize("case", ["wrong_key", "tampered", "missing", "garbage", "unregistered"])
def test_bad_signature_refused_nonce_kept(case: str) -> None:
    ex, _clock, a = strict()
    cid = ex.config.chain_id
    info = signed(a.create_info(299_000, 100, False), SK, cid)
    if case == "wrong_key":
        info = signed(info, SK2, cid)
    elif case == "tampered":
        info["Price"] += 1
    elif case == "missing":
        del info["Sig"]
    elif case == "garbage":
        info["Sig"] = "c2ln"  # base64, but not 80 bytes
    else:
        a.key = info["ApiKeyIndex"] = 4  # accepted index, no public key
        info = signed(info, SK, cid)
    assert reject_code(ex.submit, TX_CREATE_ORDER, info) == E.INVALID_SIGNATURE
    assert ex.next_nonce(MAIN, a.key) == 0 and not ex.open_orders(MAIN) and not ex.txs


def test_batch_with_one_bad_signature_refused_whole() -> None:
    ex, _clock, a = strict()
    cid = ex.config.chain_id
    i0 = signed(a.create_info(299_000, 100, False, Nonce=0), SK, cid)
    i1 = signed(a.create_info(298_000, 100, False, Nonce=1), SK2, cid)
    assert reject_code(ex.submit_batch, [14, 14], [i0, i1]) == E.INVALID_SIGNATURE
    assert ex.next_nonce(MAIN, 3) == 0 and not ex.open_orders(MAIN)
    i1 = signed(i1, SK, cid)
    assert [r.status for r in ex.submit_batch([14, 14], [i0, i1])] == [TX_EXECUTED] * 2


def test_change_pub_key_in_the_engine() -> None:
    ex, clock, a, _ = make(verify_signatures=True, api_key_indexes=(3,))
    cid = ex.config.chain_id
    pk2 = S.public_key(SK2)

    def change(key: int, sk: str, pk: bytes, nonce: int) -> dict[str, Any]:
        info = {
            "AccountIndex": MAIN,
            "ApiKeyIndex": key,
            "PubKey": base64.b64encode(pk).decode(),
            "L1Sig": "0x" + "00" * 65,
            "ExpiredAt": clock.wall_ms() + 60_000,
            "Nonce": nonce,
            "L2TxAttributes": None,
        }
        return signed(info, sk, cid, tx_type=TX_CHANGE_PUB_KEY)

    # Signed by another key than the one it carries: refused.
    assert reject_code(ex.submit, TX_CHANGE_PUB_KEY, change(3, SK, pk2, 0)) == E.INVALID_SIGNATURE
    bad_pk = change(3, SK2, pk2, 0)
    bad_pk["PubKey"] = "AAAA"
    assert reject_code(ex.submit, TX_CHANGE_PUB_KEY, bad_pk) == E.INVALID_TX_INFO
    rec = ex.submit(TX_CHANGE_PUB_KEY, change(3, SK2, pk2, 0))
    assert rec.status == TX_EXECUTED and ex.next_nonce(MAIN, 3) == 1
    assert ex.accounts[MAIN].keys[3].public_key == pk2.hex()
    a.nonce = 1
    info = a.create_info(299_000, 100, False)
    assert reject_code(ex.submit, TX_CREATE_ORDER, signed(info, SK, cid)) == E.INVALID_SIGNATURE
    assert a.send(TX_CREATE_ORDER, signed(info, SK2, cid)).status == TX_EXECUTED
    # It may add a slot the account's configured indexes do not list.
    assert ex.submit(TX_CHANGE_PUB_KEY, change(9, SK, S.public_key(SK), 0)).status == TX_EXECUTED
    assert ex.accounts[MAIN].keys[9].public_key == S.public_key(SK).hex()


def test_auth_token_signature_checked() -> None:
    ex, clock, _a = strict()
    deadline = clock.wall_ms() // 1000 + 600
    good = S.auth_token(SK, account_index=MAIN, api_key_index=3, deadline=deadline)
    bad = S.auth_token(SK2, account_index=MAIN, api_key_index=3, deadline=deadline)
    assert ex.check_auth(good, MAIN) == MAIN
    assert reject_code(ex.check_auth, bad, MAIN) == E.INVALID_SIGNATURE
    unreg = S.auth_token(SK, account_index=MAIN, api_key_index=4, deadline=deadline)
    assert reject_code(ex.check_auth, unreg, MAIN) == E.INVALID_SIGNATURE


def test_register_api_key_and_config_validation() -> None:
    ex, _clock, _a, _ = make()
    pk = S.public_key(SK)
    for form in (pk, pk.hex(), "0x" + pk.hex().upper()):
        assert ex.register_api_key(MAIN, 5, form).public_key == pk.hex()
    ex.accounts[MAIN].keys[5].nonce = 7
    assert ex.register_api_key(MAIN, 5, S.public_key(SK2)).nonce == 7  # nonce kept
    for bad in ("zz", pk.hex()[:-2], b"\x00" * 39, b"\xff" * 40):  # the last: not a point
        with pytest.raises(ValueError):
            ex.register_api_key(MAIN, 5, bad)
    with pytest.raises(ValueError):
        ex.register_api_key(MAIN, 255, pk)
    with pytest.raises(ValueError):
        ex.register_api_key(4242, 5, pk)
    for keys in (((OTHER, 3, pk.hex()),), ((MAIN, 300, pk.hex()),), ((MAIN, 3, "00"),)):
        with pytest.raises(ValueError):
            SimConfig(api_keys=keys)
    assert SimConfig().verify_signatures is True


# ---------------------------------------------------------------- volume quota
def test_volume_quota_spent_by_creates_and_modifies_not_cancels() -> None:
    ex, _clock, a, _ = make(tier="premium", volume_quota_start=3)
    r = a.create(299_000, 100, False)
    a.modify(r.order_index, 298_900, 100)
    assert ex.accounts[MAIN].quota == 1
    a.cancel(r.order_index)
    a.cancel_all()
    assert ex.accounts[MAIN].quota == 1  # cancels and cancel-all are free
    q = ex.volume_quota(MAIN)
    assert (q["remaining"], q["spent"], q["enabled"]) == (1, 2, True)


def test_volume_quota_free_allowance_then_refused_without_consuming_the_nonce() -> None:
    ex, clock, a, _ = make(tier="premium", volume_quota_start=1)
    a.create(299_000, 100, False)  # the last unit
    a.create(298_000, 100, False)  # empty quota: the free tx
    assert ex.accounts[MAIN].quota == 0 and ex.accounts[MAIN].quota_free_used == 1
    nonce = ex.accounts[MAIN].keys[3].nonce
    with pytest.raises(E.QuotaExceeded) as ei:
        a.create(297_000, 100, False)
    assert ei.value.code == E.TOO_MANY_REQUESTS and ei.value.status == 429
    assert E.VOLUME_QUOTA_DETAIL in ei.value.message
    assert ei.value.to_json()["volume_quota_remaining"] == 0
    assert ex.accounts[MAIN].keys[3].nonce == nonce  # refused at the API: nonce kept
    r = a.cancel_all()  # a cancel still goes through
    assert r.type == TX_CANCEL_ALL
    clock.advance_ms(14_999)
    assert reject_code(a.create, 297_000, 100, False) == E.TOO_MANY_REQUESTS
    clock.advance_ms(1)
    a.create(297_000, 100, False)  # 15 s later: the next free tx
    assert ex.volume_quota(MAIN)["refused"] == 2


def test_volume_quota_earned_from_traded_notional_and_capped() -> None:
    # 1 ETH lot = 1e-4 ETH; 100 lots at 3000.00 = 30 USDC: 4 units at 7 USDC, 2 USDC carried.
    ex, _clock, a, b = make(tier="premium", volume_quota_start=10, volume_quota_cap=16)
    a.create(300_000, 100, False)
    b.create(300_000, 100, True, tif=0)  # fills a's bid
    assert ex.accounts[MAIN].quota == 9 + 4  # the create spent 1, the fill earned 4
    assert ex.accounts[OTHER].quota == 9 + 4  # both sides earn
    assert ex.accounts[MAIN].quota_volume == 2_000_000
    a.create(300_000, 100, False)
    b.create(300_000, 100, True, tif=0)  # 32 USDC: 4 more, capped at 16
    assert ex.accounts[MAIN].quota == 16
    ex.set_volume_quota(MAIN, 0)
    assert ex.volume_quota(MAIN)["remaining"] == 0
    with pytest.raises(ValueError, match="remaining"):
        ex.set_volume_quota(MAIN, 17)


def test_volume_quota_batches_and_standard_tier() -> None:
    ex, _clock, a, _ = make(tier="premium", volume_quota_start=2)
    infos = [a.create_info(299_000 - i, 100, False, Nonce=i) for i in range(4)]
    # 4 creates against 2 units: short by more than the one free tx, refused whole
    assert reject_code(ex.submit_batch, [TX_CREATE_ORDER] * 4, infos) == E.TOO_MANY_REQUESTS
    ex.submit_batch([TX_CREATE_ORDER] * 3, infos[:3])  # 2 units and the free tx
    assert ex.accounts[MAIN].quota == 0
    std, _, s, _ = make()  # the default tier (standard) has no quota
    for i in range(5):
        s.create(299_000 - i, 100, False)
    assert std.quota_remaining(MAIN) is None and std.accounts[MAIN].quota_spent == 0
