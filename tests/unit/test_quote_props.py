"""Property tests: compiled QuoteEngine vs the pure-Python reference, and invariants checked
directly on the compiled output (derandomized hypothesis, bounded examples)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mmfast._core.quote import (
    MAX_LEVELS,
    MAX_LOTS,
    MAX_PRICE,
    MAX_TICKS,
    MODE_AS,
    MODE_FIXED,
    QuoteEngine,
    QuoteParams,
)
from mmfast.reference.quote import reference_quote

INT64_MAX = (1 << 63) - 1
PROFILE = settings(
    derandomize=True,
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
EXTREME_PROFILE = settings(PROFILE, max_examples=200)


@dataclass(frozen=True)
class Case:
    params: QuoteParams
    min_size_lots: int
    min_notional: int
    price_step: int
    lot_step: int
    best_bid: int
    best_ask: int
    position: int
    ref_price: int

    def engine_kw(self) -> dict[str, int]:
        return {
            "min_size_lots": self.min_size_lots,
            "min_notional": self.min_notional,
            "price_step": self.price_step,
            "lot_step": self.lot_step,
        }


def _wide(lo: int, hi: int, small: int) -> st.SearchStrategy[int]:
    """Mostly ordinary values, some anywhere in [lo, hi], some exactly at the bounds."""
    ordinary = st.integers(max(lo, -small), min(hi, small))
    return st.one_of(ordinary, ordinary, st.integers(lo, hi), st.sampled_from([lo, hi]))


def _ints(lo: int, hi: int, small: int, extreme: bool) -> st.SearchStrategy[int]:
    return _wide(lo, hi, small) if extreme else st.integers(max(lo, -small), min(hi, small))


@st.composite
def params_st(draw: st.DrawFn, mode: int, extreme: bool = False) -> QuoteParams:
    return QuoteParams(
        mode=mode,
        spread_ticks=draw(_ints(0, MAX_TICKS, 60, extreme)),
        n_levels=draw(st.integers(1, MAX_LEVELS)),
        level_spacing_ticks=draw(_ints(1, MAX_TICKS, 20, extreme)),
        size_lots=draw(_ints(1, MAX_LOTS, 1000, extreme)),
        size_step_lots=draw(_ints(-MAX_TICKS, MAX_TICKS, 60, extreme)),
        skew_ticks=draw(_ints(0, MAX_TICKS, 60, extreme)),
        target_position_lots=draw(_ints(-MAX_LOTS, MAX_LOTS, 500, extreme)),
        max_long_lots=draw(_ints(0, MAX_LOTS, 20_000, extreme)),
        max_short_lots=draw(_ints(0, MAX_LOTS, 20_000, extreme)),
        min_spread_ticks=draw(_ints(1, MAX_TICKS, 60, extreme)),
        gamma=draw(st.floats(1e-3, 10.0)),
        sigma=draw(st.floats(0.0, 1e6) if extreme else st.floats(0.0, 50.0)),
        tau=draw(st.floats(0.0, 1e3) if extreme else st.floats(0.0, 10.0)),
        kappa=draw(st.floats(1e-2, 50.0)),
    )


@st.composite
def case_st(draw: st.DrawFn, mode: int, extreme: bool = False) -> Case:
    p = draw(params_st(mode, extreme))
    top = MAX_PRICE if extreme else 1_000_000
    bid = draw(_wide(0, MAX_PRICE, 1_000_000) if extreme else st.integers(0, top))
    gap = draw(st.integers(-5, 60))  # negative: crossed book, 0: locked
    ask = draw(st.sampled_from([min(max(bid + gap, 1), top)] * 3 + [0, draw(st.integers(0, top))]))
    bid = draw(st.sampled_from([bid] * 4 + [0]))
    # Around the touch, and where level 0 lands exactly on the opposite touch (fixed mode).
    near = bid + draw(st.integers(-40, 40))
    on_touch = draw(
        st.sampled_from([bid - p.spread_ticks, ask + p.spread_ticks]) if bid and ask else st.just(1)
    ) + draw(st.integers(-1, 1))
    ref_price = draw(
        st.sampled_from([0, 0, 0, near, on_touch, draw(st.integers(1, top))]).map(
            lambda v: max(1, min(top, v))
        )
    )
    small_notional = st.one_of(st.just(0), st.integers(0, 100_000), st.integers(0, 20_000_000))
    return Case(
        params=p,
        min_size_lots=draw(st.one_of(st.just(1), _ints(1, MAX_LOTS, 60, extreme))),
        min_notional=draw(
            st.one_of(small_notional, st.integers(0, INT64_MAX), st.just(INT64_MAX))
            if extreme
            else small_notional
        ),
        price_step=draw(st.sampled_from([1, 1, 2, 5, 10, 100] + ([MAX_TICKS] if extreme else []))),
        lot_step=draw(st.sampled_from([1, 1, 2, 3, 10] + ([MAX_TICKS] if extreme else []))),
        best_bid=bid,
        best_ask=ask,
        position=draw(
            st.one_of(st.integers(-300, 300), _ints(-MAX_LOTS, MAX_LOTS, 25_000, extreme))
        ),
        ref_price=ref_price,
    )


def _run(c: Case) -> tuple[QuoteEngine, list[tuple[int, int]], list[tuple[int, int]]]:
    e = QuoteEngine(c.params, **c.engine_kw())
    n = e.compute(c.best_bid, c.best_ask, c.position, c.ref_price)
    bids, asks = e.bids(), e.asks()
    assert n == len(bids) + len(asks)
    assert e.bid_prices[: e.n_bids].tolist() == [px for px, _ in bids]
    assert e.ask_sizes[: e.n_asks].tolist() == [sz for _, sz in asks]
    return e, bids, asks


def _check_invariants(c: Case, bids: list[tuple[int, int]], asks: list[tuple[int, int]]) -> None:
    p = c.params
    has_ref = c.ref_price > 0 or (c.best_bid > 0 and c.best_ask > 0)
    if not has_ref:
        assert bids == [] and asks == []
    assert len(bids) <= p.n_levels and len(asks) <= p.n_levels
    for px, _ in bids:
        assert px > 0
        if c.best_ask > 0:
            assert px < c.best_ask  # post-only
    for px, _ in asks:
        assert px > 0
        if c.best_bid > 0:
            assert px > c.best_bid  # post-only
    if bids and asks:
        assert asks[0][0] - bids[0][0] >= p.min_spread_ticks
    for side in (bids, asks):
        for px, sz in side:
            assert px % c.price_step == 0
            assert sz % c.lot_step == 0
            assert sz >= c.min_size_lots and sz >= 1
            assert px * sz >= c.min_notional
    assert all(a[0] > b[0] for a, b in itertools.pairwise(bids))  # strictly down
    assert all(a[0] < b[0] for a, b in itertools.pairwise(asks))  # strictly up
    # Position limits: fully filled bids never exceed +max_long, asks never below -max_short.
    assert c.position + sum(s for _, s in bids) <= max(p.max_long_lots, c.position)
    assert c.position - sum(s for _, s in asks) >= min(-p.max_short_lots, c.position)
    if c.position >= p.max_long_lots:
        assert bids == []
    if c.position <= -p.max_short_lots:
        assert asks == []


@PROFILE
@given(case_st(MODE_FIXED))
def test_fixed_mode_equals_reference(c: Case) -> None:
    _, bids, asks = _run(c)
    expected = reference_quote(
        c.params, c.best_bid, c.best_ask, c.position, c.ref_price, **c.engine_kw()
    )
    assert (bids, asks) == expected
    _check_invariants(c, bids, asks)


@EXTREME_PROFILE
@given(case_st(MODE_FIXED, extreme=True))
def test_fixed_mode_equals_reference_at_extremes(c: Case) -> None:
    _, bids, asks = _run(c)
    expected = reference_quote(
        c.params, c.best_bid, c.best_ask, c.position, c.ref_price, **c.engine_kw()
    )
    assert (bids, asks) == expected
    _check_invariants(c, bids, asks)


def _assert_as_close(got: list[tuple[int, int]], want: list[tuple[int, int]]) -> None:
    assert len(got) == len(want)
    for (gp, gs), (wp, ws) in zip(got, want, strict=True):
        assert abs(gp - wp) <= 1  # rounding boundary of the double model
        assert gs == ws


@PROFILE
@given(case_st(MODE_AS))
def test_as_mode_matches_reference(c: Case) -> None:
    _, bids, asks = _run(c)
    want_b, want_a = reference_quote(
        c.params, c.best_bid, c.best_ask, c.position, c.ref_price, **c.engine_kw()
    )
    _assert_as_close(bids, want_b)
    _assert_as_close(asks, want_a)
    _check_invariants(c, bids, asks)


@EXTREME_PROFILE
@given(case_st(MODE_AS, extreme=True))
def test_as_mode_matches_reference_at_extremes(c: Case) -> None:
    _, bids, asks = _run(c)
    want_b, want_a = reference_quote(
        c.params, c.best_bid, c.best_ask, c.position, c.ref_price, **c.engine_kw()
    )
    _assert_as_close(bids, want_b)
    _assert_as_close(asks, want_a)
    _check_invariants(c, bids, asks)


@PROFILE
@given(st.sampled_from([MODE_FIXED, MODE_AS]).flatmap(case_st), st.integers(1, 500))
def test_more_inventory_never_raises_level0(c: Case, extra: int) -> None:
    # Skew / reservation direction: more long inventory never moves level 0 of either side up.
    # No minimum size or notional here, so level 0 is kept whenever its side has room.
    e = QuoteEngine(c.params, price_step=c.price_step)
    e.compute(c.best_bid, c.best_ask, c.position, c.ref_price)
    b1, a1 = e.bids(), e.asks()
    e.compute(c.best_bid, c.best_ask, c.position + extra, c.ref_price)
    b2, a2 = e.bids(), e.asks()
    if a1:
        assert a2 and a2[0][0] <= a1[0][0]  # more to sell: room grows
    if b1 and b2:
        assert b2[0][0] <= b1[0][0]


@PROFILE
@given(case_st(MODE_FIXED), case_st(MODE_AS))
def test_engine_reuse_matches_fresh_engines(c1: Case, c2: Case) -> None:
    # One engine, params swapped: each result equals a fresh engine's (no state leaks).
    e = QuoteEngine(c1.params, **c1.engine_kw())
    for c in (c1, c2, c1):
        e.set_params(c.params)
        e.compute(c.best_bid, c.best_ask, c.position, c.ref_price)
        fresh = QuoteEngine(c.params, **c1.engine_kw())
        fresh.compute(c.best_bid, c.best_ask, c.position, c.ref_price)
        assert (e.bids(), e.asks()) == (fresh.bids(), fresh.asks())


@PROFILE
@given(st.sampled_from([MODE_FIXED, MODE_AS]).flatmap(case_st), st.data())
def test_min_notional_boundary_is_inclusive(c: Case, data: st.DataObject) -> None:
    # Set the minimum notional exactly to one level's price*size: that level must be kept,
    # and compiled == reference on the boundary.
    kw = c.engine_kw() | {"min_notional": 0}
    bids, asks = reference_quote(c.params, c.best_bid, c.best_ask, c.position, c.ref_price, **kw)
    # The best level of a side: nothing before it can change its size when it is dropped.
    levels = bids[:1] + asks[:1]
    if not levels:
        return
    px, sz = data.draw(st.sampled_from(levels))
    kw["min_notional"] = px * sz
    e = QuoteEngine(c.params, **kw)
    e.compute(c.best_bid, c.best_ask, c.position, c.ref_price)
    want = reference_quote(c.params, c.best_bid, c.best_ask, c.position, c.ref_price, **kw)
    got = (e.bids(), e.asks())
    if c.params.mode == MODE_FIXED:
        assert got == want
    assert (px, sz) in want[0][:1] + want[1][:1]
    assert (px, sz) in got[0][:1] + got[1][:1]
    assert all(p * s >= px * sz for p, s in got[0] + got[1])
