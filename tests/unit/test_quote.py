"""Worked examples of mmfast._core.quote, one constraint at a time, plus validation and extremes.

Expected ladders are derived by hand in the comments from the rules in docs/quote.md.
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import numpy as np
import pytest

from mmfast._core import quote as q
from mmfast._core.quote import (
    MAX_LEVELS,
    MAX_LOTS,
    MAX_PRICE,
    MAX_TICKS,
    MODE_AS,
    MODE_FIXED,
    QuoteEngine,
    QuoteParams,
    min_notional_from_venue,
    min_size_from_venue,
    notional_at_least,
)
from mmfast.reference import quote as ref

INT64_MAX = (1 << 63) - 1
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "lighter"


def params(**kw: object) -> QuoteParams:
    kw.setdefault("max_long_lots", 1000)
    kw.setdefault("max_short_lots", 1000)
    return QuoteParams(**kw)  # type: ignore[arg-type]


def run(p: QuoteParams, bb: int, ba: int, pos: int, ref_price: int = 0, **engine: int):
    e = QuoteEngine(p, **engine)
    n = e.compute(bb, ba, pos, ref_price)
    bids, asks = e.bids(), e.asks()
    assert n == len(bids) + len(asks) == e.n_bids + e.n_asks
    # The compiled engine and the Python reference agree on every worked example.
    assert (bids, asks) == ref.reference_quote(p, bb, ba, pos, ref_price, **engine)
    return bids, asks


def test_module_constants() -> None:
    assert (MODE_FIXED, MODE_AS, MAX_LEVELS) == (0, 1, 32)
    assert (MAX_PRICE, MAX_LOTS, MAX_TICKS) == (ref.MAX_PRICE, ref.MAX_LOTS, ref.MAX_TICKS)


# ---------------------------------------------------------------- worked ladders


def test_2x5_ladder_around_100_with_skew() -> None:
    # Market with price_decimals 2: 100.00 = 10000 ticks. Book 99.99 / 100.01, mid 10000.
    # Long 100 lots of a 200-lot limit, skew 4: shift = -floor(4 * 100 / 200) = -2 ticks.
    # bid0 = 10000 - 2 - 2 = 9996, ask0 = 10000 + 2 - 2 = 10000 (still above the best bid 9999).
    # Sizes 10 + 5 * i; bid capacity 200 - 100 = 100 = 10 + 15 + 20 + 25 + 30 exactly.
    p = params(
        spread_ticks=2,
        n_levels=5,
        level_spacing_ticks=1,
        size_lots=10,
        size_step_lots=5,
        skew_ticks=4,
        max_long_lots=200,
        max_short_lots=200,
    )
    bids, asks = run(p, 9999, 10001, 100)
    assert bids == [(9996, 10), (9995, 15), (9994, 20), (9993, 25), (9992, 30)]
    assert asks == [(10000, 10), (10001, 15), (10002, 20), (10003, 25), (10004, 30)]


def test_flat_position_is_symmetric_and_half_tick_mid_rounds_away() -> None:
    # Book 99.99 / 100.00: mid 9999.5 (bid + ask = 19999, kept exact). Spread 1:
    # bid0 = floor(9999.5 - 1) = 9998, ask0 = ceil(9999.5 + 1) = 10001.
    p = params(spread_ticks=1, n_levels=2, level_spacing_ticks=3, size_lots=7)
    bids, asks = run(p, 9999, 10000, 0)
    assert bids == [(9998, 7), (9995, 7)]
    assert asks == [(10001, 7), (10004, 7)]


@pytest.mark.parametrize(
    ("position", "shift"),
    [
        (0, 0),
        (1, 0),  # 4 * 1 / 200 = 0.02 -> 0 (toward zero)
        (49, 0),  # 0.98 -> 0
        (50, -1),  # exactly 1
        (99, -1),  # 1.98 -> 1
        (-99, 1),  # symmetric: toward zero on the short side too
        (-150, 3),
        (200, -4),  # at the limit: full skew
    ],
)
def test_skew_rounds_toward_zero(position: int, shift: int) -> None:
    p = params(spread_ticks=5, skew_ticks=4, max_long_lots=200, max_short_lots=200)
    bids, asks = run(p, 9990, 10010, position)
    if position < 200:
        assert bids == [(10000 - 5 + shift, 1)]
    else:
        assert bids == []  # no capacity left to buy
    assert asks == [(10000 + 5 + shift, 1)]


def test_skew_saturates_beyond_the_limit_and_uses_the_side_limit() -> None:
    # Short 30 with max_short 20: |q| >= D, shift = +skew = +6; bids still have capacity.
    p = params(spread_ticks=10, skew_ticks=6, max_long_lots=1000, max_short_lots=20)
    bids, asks = run(p, 9900, 10100, -30)
    assert bids == [(10000 - 10 + 6, 1)]
    assert asks == []  # already beyond -max_short: no asks
    # The long side normalises by max_long: 100 of 1000 -> floor(6 * 0.1) = 0.
    bids, asks = run(p, 9900, 10100, 100)
    assert bids == [(9990, 1)]
    assert asks == [(10010, 1)]


def test_skew_toward_nonzero_target() -> None:
    # Target +100: at position 100 there is no skew; at 0 we are 100 short of it.
    p = params(spread_ticks=3, skew_ticks=8, target_position_lots=100, max_short_lots=400)
    assert run(p, 9000, 11000, 100) == ([(9997, 1)], [(10003, 1)])
    # q = -100, D = max_short 400: shift = +floor(8 * 100 / 400) = +2.
    assert run(p, 9000, 11000, 0) == ([(9999, 1)], [(10005, 1)])


def test_avellaneda_stoikov_worked_example() -> None:
    # s = 10000, gamma 0.1, sigma 2 ticks/sqrt(s), tau 1 s, kappa 1.5; 30 lots long, size 10:
    # q = 3, gamma*sigma^2*tau = 0.4, r = 10000 - 3 * 0.4 = 9998.8,
    # delta = 0.4 + 20 * ln(1 + 0.1/1.5) = 1.69077..., bid = floor(9998.8 - 0.845) = 9997,
    # ask = ceil(9998.8 + 0.845) = 10000.
    p = params(mode=MODE_AS, n_levels=2, size_lots=10, gamma=0.1, sigma=2.0, tau=1.0, kappa=1.5)
    assert p.as_risk_ticks == pytest.approx(0.4)
    assert p.as_spread_ticks == pytest.approx(0.4 + 20 * math.log(1 + 0.1 / 1.5))
    bids, asks = run(p, 9999, 10001, 30)
    assert bids == [(9997, 10), (9996, 10)]
    assert asks == [(10000, 10), (10001, 10)]
    # Flat: r = s = 10000, bid = floor(9999.15) = 9999, ask = ceil(10000.85) = 10001.
    assert run(p, 9998, 10002, 0) == ([(9999, 10), (9998, 10)], [(10001, 10), (10002, 10)])


def test_avellaneda_stoikov_ignores_spread_and_skew_params() -> None:
    base = {"mode": MODE_AS, "gamma": 0.5, "sigma": 3.0, "kappa": 2.0}
    a = run(params(**base), 9990, 10010, 40)
    b = run(params(spread_ticks=50, skew_ticks=9, **base), 9990, 10010, 40)
    assert a == b


def test_avellaneda_stoikov_extreme_output_is_clamped_not_overflowed() -> None:
    # A huge risk term pushes r far below zero: no positive bid; the ask still exists.
    p = params(mode=MODE_AS, gamma=1.0, sigma=1e9, tau=1e6, max_long_lots=MAX_LOTS)
    bids, asks = run(p, 9999, 10001, 1000)
    assert bids == []
    assert asks == [(10000, 1)]  # ceil(clamped) is far below the book: post-only lifts it


def test_asks_never_below_one_tick() -> None:
    # The same extreme model with no book to clamp against: the ask floors at 1 tick (or the
    # first price step), the bid side has no positive price.
    p = params(mode=MODE_AS, gamma=1.0, sigma=1e9, tau=1e6, n_levels=2, max_long_lots=MAX_LOTS)
    assert run(p, 0, 0, 1000, ref_price=10000) == ([], [(1, 1), (2, 1)])
    assert run(p, 0, 0, 1000, ref_price=10000, price_step=5) == ([], [(5, 1), (10, 1)])


# ---------------------------------------------------------------- constraints one by one


def test_min_spread_widens_around_the_centre() -> None:
    # Spread 0 around 10000: bid0 = ask0 = 10000; min spread 5 re-places them around the
    # centre 10000: bid = floor(10000 - 2.5) = 9997, ask = ceil(10000 + 2.5) = 10003.
    p = params(spread_ticks=0, min_spread_ticks=5)
    assert run(p, 0, 0, 0, ref_price=10000) == ([(9997, 1)], [(10003, 1)])
    # Half-tick centre 9999.5 with 5: floor(9997) = 9997, ceil(10002) = 10002: exactly 5.
    assert run(p, 9999, 10000, 0) == ([(9997, 1)], [(10002, 1)])
    # Already wide enough: untouched.
    assert run(params(spread_ticks=4, min_spread_ticks=5), 0, 0, 0, 10000) == (
        [(9996, 1)],
        [(10004, 1)],
    )


def test_min_spread_keeps_the_skewed_centre() -> None:
    # Skew -2 moves the centre to 9998; spread 0 then min spread 4: 9996 / 10000.
    p = params(spread_ticks=0, min_spread_ticks=4, skew_ticks=2, max_long_lots=10)
    assert run(p, 0, 0, 10, ref_price=10000) == ([], [(10000, 1)])  # at max long: no bids
    assert run(p, 0, 0, 5, ref_price=10000) == ([(9997, 1)], [(10001, 1)])  # shift -1


def test_default_min_spread_keeps_bid_below_ask() -> None:
    # Spread 0: bid0 = ask0 = 500. min_spread_ticks defaults to 1: around the centre 500,
    # floor(499.5) = 499 and ceil(500.5) = 501 (a whole centre and an odd minimum give +1).
    p = params(spread_ticks=0)
    assert run(p, 0, 0, 0, ref_price=500) == ([(499, 1)], [(501, 1)])
    # A half-tick centre fits an odd minimum exactly: 999.5 -> 999 / 1000.
    assert run(p, 999, 1000, 0) == ([(999, 1)], [(1000, 1)])


def test_post_only_clamps_to_the_book() -> None:
    # ref 101.00 far above the book 99.99/100.01: the bid would cross; clamp to ask - 1.
    p = params(spread_ticks=1, n_levels=3)
    bids, asks = run(p, 9999, 10001, 0, ref_price=10100)
    assert bids == [(10000, 1), (9999, 1), (9998, 1)]
    assert asks == [(10101, 1), (10102, 1), (10103, 1)]
    # ref below the book: the ask is lifted to best bid + 1.
    bids, asks = run(p, 9999, 10001, 0, ref_price=9900)
    assert bids == [(9899, 1), (9898, 1), (9897, 1)]
    assert asks == [(10000, 1), (10001, 1), (10002, 1)]


def test_post_only_at_the_touch_exactly() -> None:
    # ref 99.98, spread 1: ask0 = 9999 equals the best bid -> lifted to 10000 (never at the
    # touch); bid0 = 9997. Mirror: ref 100.02 puts bid0 at the best ask 10001 -> 10000.
    p = params(spread_ticks=1)
    assert run(p, 9999, 10001, 0, ref_price=9998) == ([(9997, 1)], [(10000, 1)])
    assert run(p, 9999, 10001, 0, ref_price=10002) == ([(10000, 1)], [(10003, 1)])


def test_missing_book_side() -> None:
    p = params(spread_ticks=1)
    e = QuoteEngine(p)
    assert e.compute(0, 10001, 0) == 0
    assert e.compute(9999, 0, 0) == 0
    assert e.compute(0, 0, 0) == 0
    assert (e.n_bids, e.n_asks, e.bids(), e.asks()) == (0, 0, [], [])
    # With a reference price: quotes, and no post-only clamp against the missing side.
    assert run(p, 0, 0, 0, ref_price=10000) == ([(9999, 1)], [(10001, 1)])
    assert run(p, 0, 9995, 0, ref_price=10000) == ([(9994, 1)], [(10001, 1)])


def test_price_step_rounds_bids_down_asks_up_and_keeps_levels_distinct() -> None:
    # bid0 9998 -> 9995, ask0 10002 -> 10005; spacing 1 < step 5 would repeat a price, so
    # each level is pushed one step beyond the previous one.
    p = params(spread_ticks=2, n_levels=3, level_spacing_ticks=1)
    bids, asks = run(p, 9999, 10001, 0, price_step=5)
    assert bids == [(9995, 1), (9990, 1), (9985, 1)]
    assert asks == [(10005, 1), (10010, 1), (10015, 1)]
    # Spacing 7: raw bids 9998, 9991, 9984 -> 9995, 9990, 9980; asks 10002, 10009, 10016 ->
    # 10005, 10010, 10020.
    p = params(spread_ticks=2, n_levels=3, level_spacing_ticks=7)
    bids, asks = run(p, 9999, 10001, 0, price_step=5)
    assert bids == [(9995, 1), (9990, 1), (9980, 1)]
    assert asks == [(10005, 1), (10010, 1), (10020, 1)]


def test_lot_step_rounds_sizes_down() -> None:
    # Sizes 10, 13, 16 with lot step 4: 8, 12, 16.
    p = params(n_levels=3, size_lots=10, size_step_lots=3)
    bids, _ = run(p, 9999, 10001, 0, lot_step=4)
    assert [s for _, s in bids] == [8, 12, 16]


def test_position_limit_clips_then_drops() -> None:
    p = params(n_levels=4, size_lots=10, max_long_lots=25, max_short_lots=12)
    bids, asks = run(p, 9999, 10001, 0)
    assert [s for _, s in bids] == [10, 10, 5]  # 25 lots of room
    assert [s for _, s in asks] == [10, 2]  # 12 lots of room
    # A 6-lot minimum drops the 5-lot and 2-lot remainders.
    bids, asks = run(p, 9999, 10001, 0, min_size_lots=6)
    assert [s for _, s in bids] == [10, 10]
    assert [s for _, s in asks] == [10]
    # Lot step 4: 8 + 8 + 8 = 24 of 25; asks 8, then 4 (room 4) -> 4.
    bids, asks = run(p, 9999, 10001, 0, lot_step=4)
    assert [s for _, s in bids] == [8, 8, 8]
    assert [s for _, s in asks] == [8, 4]
    # Position counts: long 20 of 25 leaves 5 to buy and 32 to sell.
    bids, asks = run(p, 9999, 10001, 20)
    assert [s for _, s in bids] == [5]
    assert [s for _, s in asks] == [10, 10, 10, 2]


def test_min_size_drops_small_levels_but_keeps_deeper_bigger_ones() -> None:
    # Sizes 3, 5, 7 with a 5-lot minimum: the first level goes, the rest stay.
    p = params(n_levels=3, size_lots=3, size_step_lots=2)
    bids, _ = run(p, 9999, 10001, 0, min_size_lots=5)
    assert bids == [(9998, 5), (9997, 7)]


def test_negative_size_step_shrinks_to_nothing() -> None:
    p = params(n_levels=5, size_lots=10, size_step_lots=-4)
    bids, _ = run(p, 9999, 10001, 0)
    assert [s for _, s in bids] == [10, 6, 2]  # then -2, -6: dropped


def test_min_notional_drops_a_level_and_keeps_its_capacity() -> None:
    # bids from 9999 (ref 10000, spread 1), sizes 10, 11, 12; min notional 100000:
    # 9999*10 = 99990 < 100000 dropped; 9998*11 = 109978 and 9997*12 = 119964 kept, and the
    # dropped level's 10 lots stay available: capacity 23 = 11 + 12.
    p = params(n_levels=3, size_lots=10, size_step_lots=1, max_long_lots=23)
    bids, asks = run(p, 0, 0, 0, ref_price=10000, min_notional=100_000)
    assert bids == [(9998, 11), (9997, 12)]
    # Asks start at 10001: 10001*10 = 100010 >= 100000, all kept (ask room is 1000).
    assert asks == [(10001, 10), (10002, 11), (10003, 12)]


def test_min_notional_boundary_is_inclusive() -> None:
    p = params(n_levels=1, size_lots=10)
    # bid 9999 * 10 = 99990 exactly.
    assert run(p, 0, 0, 0, ref_price=10000, min_notional=99_990)[0] == [(9999, 10)]
    assert run(p, 0, 0, 0, ref_price=10000, min_notional=99_991)[0] == []


# ---------------------------------------------------------------- notional extremes


def test_notional_at_least_exact_at_int64_extremes() -> None:
    assert notional_at_least(INT64_MAX, INT64_MAX, INT64_MAX)
    assert notional_at_least(INT64_MAX, 1, INT64_MAX)
    assert not notional_at_least(INT64_MAX - 1, 1, INT64_MAX)
    assert not notional_at_least(1, 1, INT64_MAX)
    # 2^32 * 2^31 = 2^63 wraps to INT64_MIN in int64; the exact product is >= INT64_MAX.
    assert notional_at_least(1 << 32, 1 << 31, INT64_MAX)
    assert not notional_at_least((1 << 32) - 1, 1 << 31, INT64_MAX)
    assert notional_at_least(-(1 << 63), -(1 << 63), INT64_MAX)  # 2^126
    assert not notional_at_least(-1, INT64_MAX, 0)
    rng = random.Random(1234)
    edges = [0, 1, 2, (1 << 31), (1 << 32) - 1, (1 << 32), (1 << 62), INT64_MAX - 1, INT64_MAX]
    for _ in range(2000):
        a, b, c = (
            rng.choice(edges) if rng.random() < 0.5 else rng.randrange(INT64_MAX) for _ in range(3)
        )
        assert notional_at_least(a, b, c) == (a * b >= c), (a, b, c)


def test_notional_filter_does_not_wrap_in_compute() -> None:
    # bid0 = 2^32 exactly with size 2^31: notional 2^63 >= INT64_MAX -> kept; level 1 at
    # 2^32 - 1: 2^63 - 2^31 < INT64_MAX -> dropped. A wrapped int64 product would drop both.
    p = params(
        spread_ticks=1, n_levels=2, size_lots=1 << 31, max_long_lots=1 << 40, max_short_lots=1 << 40
    )
    bids, asks = run(p, 0, 0, 0, ref_price=(1 << 32) + 1, min_notional=INT64_MAX)
    assert bids == [(1 << 32, 1 << 31)]
    assert asks == [((1 << 32) + 2, 1 << 31), ((1 << 32) + 3, 1 << 31)]


def test_compute_at_the_input_bounds() -> None:
    p = params(
        spread_ticks=MAX_TICKS,
        n_levels=MAX_LEVELS,
        level_spacing_ticks=MAX_TICKS,
        size_lots=MAX_LOTS,
        size_step_lots=MAX_TICKS,
        skew_ticks=MAX_TICKS,
        max_long_lots=MAX_LOTS,
        max_short_lots=MAX_LOTS,
        min_spread_ticks=MAX_TICKS,
    )
    for bb, ba, pos in [
        (MAX_PRICE - 1, MAX_PRICE, -MAX_LOTS),
        (MAX_PRICE, MAX_PRICE, MAX_LOTS),
        (1, MAX_PRICE, 0),
        (1, 2, -MAX_LOTS),
    ]:
        for mn in (0, INT64_MAX):
            bids, asks = run(p, bb, ba, pos, min_notional=mn, price_step=MAX_TICKS, lot_step=3)
            for px, sz in bids + asks:
                assert 0 < px < (1 << 63) and 0 < sz < (1 << 63)
                assert px * sz >= mn
    # Huge notional, small market: everything is dropped.
    assert run(params(n_levels=5), 9999, 10001, 0, min_notional=INT64_MAX) == ([], [])


# ---------------------------------------------------------------- engine surface


def test_result_buffers_are_stable_read_only_views() -> None:
    p = params(spread_ticks=1, n_levels=3, size_lots=2, size_step_lots=1)
    e = QuoteEngine(p)
    arrays = (e.bid_prices, e.bid_sizes, e.ask_prices, e.ask_sizes)
    for a in arrays:
        assert a.dtype == np.int64 and a.shape == (MAX_LEVELS,) and not a.flags.writeable
        with pytest.raises(ValueError):
            a[0] = 1
    assert e.compute(9999, 10001, 0) == 6
    assert e.bid_prices[: e.n_bids].tolist() == [9999, 9998, 9997]
    assert e.bid_sizes[: e.n_bids].tolist() == [2, 3, 4]
    assert e.ask_prices[: e.n_asks].tolist() == [10001, 10002, 10003]
    assert e.ask_sizes[: e.n_asks].tolist() == [2, 3, 4]
    kept = e.bids()
    # Same array objects after the next compute, holding the new ladder; copies are unchanged.
    assert e.compute(19999, 20001, 0) == 6
    assert tuple((e.bid_prices, e.bid_sizes, e.ask_prices, e.ask_sizes)) == arrays
    assert all(
        x is y
        for x, y in zip(arrays, (e.bid_prices, e.bid_sizes, e.ask_prices, e.ask_sizes), strict=True)
    )
    assert e.bid_prices[: e.n_bids].tolist() == [19999, 19998, 19997]
    assert kept == [(9999, 2), (9998, 3), (9997, 4)]


def test_set_params_swaps_at_next_compute() -> None:
    e = QuoteEngine(params(spread_ticks=1))
    e.compute(9999, 10001, 0)
    assert e.bids() == [(9999, 1)]
    p2 = params(spread_ticks=3, size_lots=4)
    e.set_params(p2)
    assert e.params is p2
    e.compute(9999, 10001, 0)
    assert e.bids() == [(9997, 4)] and e.asks() == [(10003, 4)]
    with pytest.raises(TypeError):
        e.set_params(None)  # type: ignore[arg-type]


def test_params_are_read_only_and_readable() -> None:
    p = params(spread_ticks=3, n_levels=4, gamma=0.2)
    assert (p.spread_ticks, p.n_levels, p.gamma, p.mode) == (3, 4, 0.2, MODE_FIXED)
    with pytest.raises(AttributeError):
        p.spread_ticks = 4  # type: ignore[misc]
    assert "spread_ticks=3" in repr(p)


def test_compute_ref_price_keyword_and_default() -> None:
    e = QuoteEngine(params())
    assert e.compute(0, 0, 0, ref_price=20000) == 2
    assert e.bids() == [(19999, 1)]
    assert e.compute(0, 0, 0, 20000) == 2
    assert e.asks() == [(20001, 1)]
    assert e.compute(9999, 10001, 0) == 2
    assert e.bids() == [(9999, 1)]


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("mode", 2),
        ("mode", -1),
        ("spread_ticks", -1),
        ("spread_ticks", MAX_TICKS + 1),
        ("n_levels", 0),
        ("n_levels", MAX_LEVELS + 1),
        ("level_spacing_ticks", 0),
        ("size_lots", 0),
        ("size_lots", MAX_LOTS + 1),
        ("size_step_lots", MAX_TICKS + 1),
        ("size_step_lots", -MAX_TICKS - 1),
        ("skew_ticks", -1),
        ("target_position_lots", MAX_LOTS + 1),
        ("max_long_lots", -1),
        ("max_short_lots", -1),
        ("max_short_lots", 1 << 70),
        ("min_spread_ticks", 0),
        ("min_spread_ticks", -3),
        ("gamma", 0.0),
        ("gamma", -0.1),
        ("gamma", math.nan),
        ("gamma", math.inf),
        ("sigma", -1.0),
        ("sigma", math.nan),
        ("tau", -0.5),
        ("tau", math.inf),
        ("kappa", 0.0),
        ("kappa", math.nan),
    ],
)
def test_params_validation_names_the_parameter(name: str, value: object) -> None:
    with pytest.raises(ValueError, match=name):
        params(**{name: value})


@pytest.mark.parametrize(
    ("name", "value"),
    [("n_levels", 2.0), ("spread_ticks", "1"), ("size_lots", True), ("gamma", "0.1")],
)
def test_params_type_errors_name_the_parameter(name: str, value: object) -> None:
    with pytest.raises(TypeError, match=name):
        params(**{name: value})


def test_params_require_position_limits_and_check_the_as_spread() -> None:
    with pytest.raises(TypeError):
        QuoteParams(max_long_lots=1)  # type: ignore[call-arg]
    # Each finite, but gamma*sigma^2*tau overflows to inf.
    with pytest.raises(ValueError, match="gamma"):
        params(gamma=1e300, sigma=1e10, tau=1.0)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("min_size_lots", 0),
        ("min_notional", -1),
        ("price_step", 0),
        ("price_step", MAX_TICKS + 1),
        ("lot_step", 0),
    ],
)
def test_engine_validation_names_the_argument(name: str, value: int) -> None:
    with pytest.raises(ValueError, match=name):
        QuoteEngine(params(), **{name: value})


def test_engine_requires_params() -> None:
    with pytest.raises(TypeError):
        QuoteEngine(None)  # type: ignore[arg-type]
    # An engine whose __init__ never ran refuses to compute instead of crashing.
    bare = QuoteEngine.__new__(QuoteEngine)
    with pytest.raises(TypeError, match="__init__"):
        bare.compute(9999, 10001, 0)
    assert bare.bids() == [] and bare.bid_prices.shape == (MAX_LEVELS,)


@pytest.mark.parametrize(
    ("args", "name"),
    [
        ((-1, 10001, 0, 0), "best_bid"),
        ((9999, -5, 0, 0), "best_ask"),
        ((9999, 10001, 0, -1), "ref_price"),
        ((MAX_PRICE + 1, 10001, 0, 0), "best_bid"),
        ((9999, 10001, 0, MAX_PRICE + 1), "ref_price"),
        ((9999, 10001, MAX_LOTS + 1, 0), "position"),
        ((9999, 10001, -MAX_LOTS - 1, 0), "position"),
    ],
)
def test_compute_rejects_out_of_range_inputs(args: tuple[int, int, int, int], name: str) -> None:
    e = QuoteEngine(params())
    with pytest.raises(ValueError, match=name):
        e.compute(*args)
    with pytest.raises(ValueError, match=name):
        ref.reference_quote(params(), *args)


# ---------------------------------------------------------------- venue metadata helpers


def test_min_notional_and_size_from_venue_strings() -> None:
    # ETH perp: price_decimals 2, size_decimals 4; $10 min quote -> 10 * 10^6 tick*lots.
    assert min_notional_from_venue("10.000000", 2, 4) == 10_000_000
    assert min_size_from_venue("0.0050", 4) == 50
    # Rounded up when the string has more digits than the scale.
    assert min_size_from_venue("0.00005", 4) == 1
    assert min_notional_from_venue("1.23456", 2, 2) == 12346
    assert min_notional_from_venue("1.23450", 2, 2) == 12345
    assert min_notional_from_venue("7", 0, 0) == 7
    assert min_notional_from_venue(".5", 1, 0) == 5
    assert min_notional_from_venue("5.", 1, 0) == 50
    assert min_notional_from_venue("0", 6, 6) == 0
    # Exact where a float would not be: 0.1 + 0.2 style strings.
    assert min_notional_from_venue("0.3", 9, 9) == 3 * 10**17


@pytest.mark.parametrize("bad", ["", ".", "1.2.3", "-1", "1e3", " 1", "1 ", "+1", "\u0661", "abc"])
def test_venue_helpers_reject_malformed_strings(bad: str) -> None:
    with pytest.raises(ValueError, match="min_quote_amount"):
        min_notional_from_venue(bad, 2, 4)
    with pytest.raises(ValueError, match="min_base_amount"):
        min_size_from_venue(bad, 4)


def test_venue_helpers_reject_bad_decimals_and_overflow() -> None:
    with pytest.raises(ValueError, match="price_decimals"):
        min_notional_from_venue("1", -1, 4)
    with pytest.raises(ValueError, match="size_decimals"):
        min_size_from_venue("1", 19)
    with pytest.raises(ValueError, match="int64"):
        min_notional_from_venue("10", 18, 18)
    assert min_notional_from_venue("9.223372036854775807", 9, 9) == INT64_MAX


def test_venue_helpers_match_reference_on_fixture_markets() -> None:
    path = FIXTURES / "http_order_book_details.json"
    markets = json.loads(path.read_text())["order_book_details"]
    assert markets
    for m in markets:
        pd, sd = m["price_decimals"], m["size_decimals"]
        assert min_notional_from_venue(m["min_quote_amount"], pd, sd) == (
            ref.min_notional_from_venue(m["min_quote_amount"], pd, sd)
        )
        assert min_size_from_venue(m["min_base_amount"], sd) == ref.min_size_from_venue(
            m["min_base_amount"], sd
        )


def test_venue_helpers_match_reference_on_random_strings() -> None:
    rng = random.Random(99)
    for _ in range(500):
        int_part = str(rng.randrange(0, 10 ** rng.randrange(0, 7)))
        frac = "".join(rng.choice("0123456789") for _ in range(rng.randrange(0, 9)))
        text = f"{int_part}.{frac}" if frac or rng.random() < 0.5 else int_part
        pd, sd = rng.randrange(0, 7), rng.randrange(0, 7)
        assert min_notional_from_venue(text, pd, sd) == ref.min_notional_from_venue(text, pd, sd)
        assert min_size_from_venue(text, sd) == ref.min_size_from_venue(text, sd)


def test_module_exports() -> None:
    for name in (
        "QuoteParams",
        "QuoteEngine",
        "notional_at_least",
        "min_notional_from_venue",
        "min_size_from_venue",
        "MODE_FIXED",
        "MODE_AS",
        "MAX_LEVELS",
    ):
        assert hasattr(q, name)


def test_stub_matches_the_compiled_module() -> None:
    import ast

    stub = Path(q.__file__).with_name("quote.pyi")
    if not stub.exists():  # installed wheel: stub beside the extension
        pytest.skip("quote.pyi not beside the extension")
    tree = ast.parse(stub.read_text())
    instances = {
        "QuoteParams": params(),
        "QuoteEngine": QuoteEngine(params()),
    }
    seen = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            assert callable(getattr(q, node.name)), node.name
            seen.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            assert hasattr(q, node.target.id), node.target.id
            seen.add(node.target.id)
        elif isinstance(node, ast.ClassDef):
            seen.add(node.name)
            obj = instances[node.name]
            for item in node.body:
                if isinstance(item, ast.FunctionDef):
                    assert hasattr(obj, item.name), f"{node.name}.{item.name}"
                elif isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                    assert hasattr(obj, item.target.id), f"{node.name}.{item.target.id}"
    public = {n for n in dir(q) if not n.startswith("_") and n not in ("np",)}
    assert public <= seen, public - seen
