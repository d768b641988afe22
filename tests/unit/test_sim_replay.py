"""TapeReplay on the engine: the tape's book, our orders in it, fills by the queue model, our
takers against the tape's levels, no market impact."""

from __future__ import annotations

import pytest

from mmfast.sim.clock import ManualClock
from mmfast.sim.config import MarketSpec, SimConfig
from mmfast.sim.engine import ST_POST_ONLY, TIF_IOC, TIF_POST_ONLY, Exchange
from mmfast.sim.queue import PowerProb, RiskAverse
from mmfast.sim.replay import TapeReplay
from mmfast.tape import TAKER_BUY, TAKER_SELL, TAKER_UNKNOWN, BookEvent, TradeEvent

US = 1001  # our account (the simulator's funded one)
SPEC = MarketSpec(
    0,
    "ETH",
    size_decimals=4,
    price_decimals=2,
    mark_price=300_000,
    min_base_amount=1,
    min_quote_amount=0,
)


def _replay(model: object = None) -> tuple[Exchange, TapeReplay]:
    ex = Exchange(SimConfig(markets=(SPEC,), verify_signatures=False), ManualClock())
    return ex, TapeReplay(ex, model or RiskAverse())  # type: ignore[arg-type]


def _snap(
    rp: TapeReplay, bids: tuple[tuple[int, int], ...], asks: tuple[tuple[int, int], ...], t: int = 0
) -> None:
    rp.apply([BookEvent(t, 0, True, bids, asks)])


def _delta(
    rp: TapeReplay,
    bids: tuple[tuple[int, int], ...] = (),
    asks: tuple[tuple[int, int], ...] = (),
    t: int = 1,
) -> None:
    rp.apply([BookEvent(t, 0, False, bids, asks)])


def _trade(rp: TapeReplay, price: int, size: int, taker: int, t: int = 1) -> None:
    rp.apply([TradeEvent(t, 0, price, size, taker, "x")])


def _ours(ex: Exchange) -> list[tuple[int, int, bool, int]]:
    """Our fills: (price, size, we sold, maker account is us)."""
    return [
        (t["price"], t["size"], t["ask_account_id"] == US, t["maker_account"] == US)
        for t in ex.fills(US)
    ]


BOOK = (((299_995, 5000), (299_990, 10_000)), ((300_005, 5000), (300_010, 10_000)))


def test_the_published_book_is_the_tape_plus_ours() -> None:
    ex, rp = _replay()
    _snap(rp, *BOOK)
    assert ex.levels(0) == (
        [(300_005, 5000), (300_010, 10_000)],
        [(299_995, 5000), (299_990, 10_000)],
    )
    ex.place_direct(US, 0, False, 299_995, 100)  # ours joins the best bid
    assert ex.levels(0)[1][0] == (299_995, 5100)
    _delta(rp, bids=((299_995, 4000), (299_980, 7)), asks=((300_010, 0),))
    assert ex.levels(0) == ([(300_005, 5000)], [(299_995, 4100), (299_990, 10_000), (299_980, 7)])
    # A snapshot replaces the tape's levels; ours stays.
    _snap(rp, ((299_990, 1),), ((300_020, 2),), t=2)
    assert ex.levels(0) == ([(300_020, 2)], [(299_995, 100), (299_990, 1)])
    assert rp.stats.snapshots == 2 and rp.stats.books == 3


def test_queue_fill_after_the_queue_ahead_traded() -> None:
    ex, rp = _replay()
    _snap(rp, *BOOK)
    o = ex.place_direct(US, 0, False, 299_995, 100)
    assert rp.queue_position(o.order_index) == 5000  # what was displayed there
    _trade(rp, 299_995, 4960, TAKER_SELL)  # a seller takes 4960 of the 5000 ahead
    assert rp.queue_position(o.order_index) == 40 and _ours(ex) == []
    _delta(rp, bids=((299_995, 40),))  # the level shows it: no cancel
    assert rp.queue_position(o.order_index) == 40
    _trade(rp, 299_995, 100, TAKER_SELL)  # 40 ahead, then 60 reach us
    assert _ours(ex) == [(299_995, 60, False, True)]
    assert o.remaining == 40 and o.live
    assert rp.queue_position(o.order_index) == 0  # at the front now
    _trade(rp, 299_995, 25, TAKER_SELL)
    assert _ours(ex)[-1] == (299_995, 25, False, True) and o.remaining == 15
    # A buyer's trade at our bid price is not ours (wrong side).
    _trade(rp, 299_995, 500, TAKER_BUY)
    assert o.remaining == 15
    assert (rp.stats.queue_fills, rp.stats.filled_lots) == (2, 85)


def test_a_trade_through_our_price_fills_us_fully() -> None:
    ex, rp = _replay()
    _snap(rp, *BOOK)
    bid = ex.place_direct(US, 0, False, 299_995, 300)
    ask = ex.place_direct(US, 0, True, 300_010, 200)  # behind 10000 displayed at 300010
    _trade(rp, 299_990, 1, TAKER_SELL)  # a sell at 2999.90: through our bid at 2999.95
    assert not bid.live and bid.filled_base == 300
    _trade(rp, 300_015, 1, TAKER_BUY)  # through our ask
    assert not ask.live
    assert _ours(ex) == [(299_995, 300, False, True), (300_010, 200, True, True)]
    assert rp.stats.through_fills == 2


def test_cancels_advance_us_only_with_the_power_model() -> None:
    for model, expect in ((RiskAverse(), 5000), (PowerProb(1.0), 5000 - 0.5 * 4000)):
        ex, rp = _replay(model)
        _snap(rp, ((299_995, 5000),), ((300_005, 5000),))
        o = ex.place_direct(US, 0, False, 299_995, 100)
        _delta(rp, bids=((299_995, 10_000),))  # 5000 more join behind us
        _delta(rp, bids=((299_995, 6000),))  # 4000 cancelled, no trade: front 5000, back 5000
        assert rp.queue_position(o.order_index) == pytest.approx(expect)


def test_a_modify_that_loses_priority_goes_to_the_back() -> None:
    ex, rp = _replay()
    _snap(rp, *BOOK)
    o = ex.place_direct(US, 0, False, 299_990, 100)
    _trade(rp, 299_990, 9000, TAKER_SELL)
    assert rp.queue_position(o.order_index) == 1000
    # Re-placed (as a modify that loses priority does): behind what is displayed now.
    ex.cancel_direct(o)
    o2 = ex.place_direct(US, 0, False, 299_990, 100)
    assert rp.queue_position(o2.order_index) == 10_000
    assert rp.queue_position(o.order_index) is None


def test_our_taker_takes_the_tape_levels_and_post_only_is_refused() -> None:
    ex, rp = _replay()
    _snap(rp, *BOOK)
    po = ex.place_direct(US, 0, False, 300_005, 100, tif=TIF_POST_ONLY)
    assert po.status == ST_POST_ONLY  # it would have crossed: refused as the venue does
    t = ex.place_direct(US, 0, False, 300_010, 7000, tif=TIF_IOC)  # sweeps two levels
    assert t.filled_base == 7000
    assert _ours(ex) == [(300_005, 5000, False, False), (300_010, 2000, False, False)]
    assert ex.levels(0)[0] == [(300_010, 8000)]
    # No market impact: the tape's next message sets its levels as recorded.
    _delta(rp, asks=((300_010, 9000),))
    assert ex.levels(0)[0] == [(300_010, 9000)]
    _delta(rp, asks=((300_005, 5000),))  # the level we took whole is back with the tape
    assert ex.levels(0)[0] == [(300_005, 5000), (300_010, 9000)]


def test_a_tape_level_arriving_through_our_order_trades_with_it() -> None:
    ex, rp = _replay()
    _snap(rp, *BOOK)
    o = ex.place_direct(US, 0, False, 300_000, 300)  # inside the spread: best bid
    _delta(rp, asks=((299_998, 120),))  # a seller at 2999.98 meets our bid at 3000.00
    assert _ours(ex) == [(300_000, 120, False, True)]  # we are the maker, at our price
    assert o.remaining == 180
    assert rp.stats.crossing_fills == 1
    # The book is not left crossed: the level was taken whole by ours.
    asks, bids = ex.levels(0)
    assert asks[0][0] > bids[0][0]


def test_a_crossed_tape_feed_drops_its_stale_levels() -> None:
    ex, rp = _replay()
    _snap(rp, *BOOK)
    _delta(rp, bids=((300_007, 50),))  # a bid through the tape's own asks at 300005
    assert ex.levels(0) == (
        [(300_010, 10_000)],
        [(300_007, 50), (299_995, 5000), (299_990, 10_000)],
    )
    assert rp.stats.crossed_levels_removed == 1
    assert ex.fills() == []  # the tape never trades with itself


def test_trades_are_published_and_an_unknown_side_is_inferred_or_skipped() -> None:
    ex, rp = _replay()
    _snap(rp, *BOOK)
    bid = ex.place_direct(US, 0, False, 299_995, 100)
    _trade(rp, 300_005, 30, TAKER_UNKNOWN)  # at the ask: a buyer
    _trade(rp, 300_000, 30, TAKER_UNKNOWN)  # inside the spread: nobody filled (published
    # as a buy: at or above the mid)
    _trade(rp, 299_990, 30, TAKER_UNKNOWN)  # below our bid: a seller, through us
    assert not bid.live
    tape = [t for t in ex.fills() if US not in (t["ask_account_id"], t["bid_account_id"])]
    assert [(t["price"], t["is_maker_ask"]) for t in tape] == [
        (300_005, True),
        (300_000, True),
        (299_990, False),
    ]
    assert rp.stats.unknown_side_trades == 1
    assert ex.markets[0].last_trade_price == 299_995  # our fill came last


def test_the_mark_follows_the_mid_without_venue_stats() -> None:
    ex, rp = _replay()
    _snap(rp, ((299_000, 1),), ((301_000, 1),))
    assert ex.markets[0].mark_price == 300_000
    _delta(rp, asks=((301_000, 0), (300_200, 1)))
    assert ex.markets[0].mark_price == 299_600
