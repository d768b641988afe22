"""The compiled risk gate (``mmfast._core.gate.GateCore``) decides as the Python gate does.

Both gates get the same limits, rules, state changes, orders and clock; every ``admit`` must
give the same reason, and the rate windows and counters must agree, over random sequences that
reach every reason (checked) and the integer extremes (products beyond 64 and 128 bits).
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mmfast._core.gate import GateCore
from mmfast.core.types import Order, OrderStatus, Side, TimeInForce
from mmfast.reference.gate import RiskGate
from mmfast.risk.limits import (
    MarginState,
    MarketRules,
    MarketState,
    RiskLimits,
    RiskReason,
)

SEEN: set[RiskReason] = set()

limits_st = st.builds(
    RiskLimits,
    max_position_lots=st.integers(1, 5_000),
    max_order_notional=st.one_of(st.integers(1, 10**9), st.integers(1, 2**70)),
    max_open_orders=st.integers(1, 8),
    price_band_bps=st.integers(1, 10_000),
    order_rate_cap=st.integers(1, 6),
    order_rate_window_ns=st.integers(1, 5_000),
    margin_headroom_ppm=st.integers(0, 999_999),
    require_margin_stats=st.booleans(),
)
rules_st = st.builds(
    MarketRules,
    market=st.just(0),
    price_decimals=st.one_of(st.integers(0, 4), st.integers(0, 18)),
    size_decimals=st.one_of(st.integers(0, 4), st.integers(0, 18)),
    min_size_lots=st.integers(1, 50),
    min_notional=st.integers(0, 10**6),
    price_step=st.integers(1, 5),
    lot_step=st.integers(1, 5),
    initial_margin_bps=st.integers(1, 10_000),
)
# An order is mostly near the mark and on the steps (so it gets past the shape rules), else raw.
raw_st = st.one_of(
    st.none(),
    st.tuples(
        st.one_of(st.integers(-5, 20_000), st.integers(1, 2**62)),
        st.one_of(st.integers(-5, 3_000), st.integers(1, 2**62)),
    ),
)

# One step: a state change, an order, or the clock moving on.
step_st = st.one_of(
    st.tuples(
        st.just("order"),
        st.sampled_from([0, 1]),
        st.integers(-300, 300),
        st.one_of(st.integers(0, 20), st.integers(0, 400)),
        st.booleans(),
        st.booleans(),
        raw_st,
    ),
    st.tuples(st.just("position"), st.one_of(st.integers(-50, 50), st.integers(-6_000, 6_000))),
    st.tuples(
        st.just("open"),
        st.integers(0, 10),
        st.one_of(st.integers(0, 50), st.integers(0, 4_000)),
        st.one_of(st.integers(0, 50), st.integers(0, 4_000)),
    ),
    st.tuples(st.just("mark"), st.one_of(st.integers(0, 20_000), st.integers(1, 2**62))),
    st.tuples(
        st.just("flags"), st.booleans(), st.booleans(), st.booleans(), st.sampled_from([0, 1, 2])
    ),
    st.tuples(
        st.just("margin"),
        st.one_of(
            st.none(),
            st.tuples(st.integers(-(10**6), 10**9), st.integers(-(10**6), 10**10)),
            st.tuples(st.integers(-(10**12), 10**15), st.integers(-(10**12), 10**15)),
            st.tuples(st.integers(-(2**62), 2**62), st.integers(-(2**62), 2**62)),
        ),
    ),
    st.tuples(st.just("time"), st.one_of(st.integers(0, 50), st.integers(0, 3_000))),
    st.tuples(st.just("record")),
)


def _modify_order(side: int, price: int) -> Order:
    return Order(
        market=0,
        client_order_index=1,
        side=Side(side),
        price_ticks=max(price, 1),
        size_lots=1,
        tif=TimeInForce.POST_ONLY,
        status=OrderStatus.OPEN,
    )


def _apply(py: RiskGate, c: GateCore, step: tuple[Any, ...], now: list[int]) -> None:
    kind = step[0]
    s = py.state
    if kind == "order":
        _, side, dp, k, reduce_only, is_modify, raw = step
        if raw is None:
            ps, ls = py.rules.price_step, py.rules.lot_step
            price = (s.mark_price + dp) // ps * ps
            size = k * ls
        else:
            price, size = raw
        want = py.admit(
            Side(side),
            price,
            size,
            reduce_only=reduce_only,
            modify_of=_modify_order(side, price) if is_modify else None,
        )
        got = c.admit(
            side, price, size, reduce_only=reduce_only, is_modify=is_modify, now_ns=now[0]
        )
        assert got == want, (step, got, want)
        SEEN.add(want)
    elif kind == "position":
        s.position_lots = c.position_lots = step[1]
    elif kind == "open":
        _, n, bids, asks = step
        s.open_orders, s.open_bid_lots, s.open_ask_lots = n, bids, asks
        c.open_orders, c.open_bid_lots, c.open_ask_lots = n, bids, asks
    elif kind == "mark":
        s.mark_price = c.mark_price = step[1]
    elif kind == "flags":
        _, ready, in_sync, kill, mstate = step
        s.connector_ready, s.book_in_sync, s.kill_switch_tripped = ready, in_sync, kill
        s.market_state = MarketState(mstate)
        c.connector_ready, c.book_in_sync, c.kill_switch_tripped = ready, in_sync, kill
        c.market_state = mstate
    elif kind == "margin":
        m = step[1]
        s.margin = None if m is None else MarginState(m[0], m[1])
        c.set_margin(None if m is None else m[0], 0 if m is None else m[1])
    elif kind == "time":
        now[0] += step[1]
    else:
        py.record_send()
        c.record_send(now[0])
    assert c.sends_in_window(now[0]) == py.sends_in_window(now[0])


@settings(
    max_examples=2500, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(
    limits=limits_st,
    rules=rules_st,
    start=st.tuples(st.booleans(), st.booleans(), st.integers(1, 20_000)),
    steps=st.lists(step_st, min_size=1, max_size=60),
)
def test_compiled_gate_equals_python_gate(
    limits: RiskLimits,
    rules: MarketRules,
    start: tuple[bool, bool, int],
    steps: list[tuple[Any, ...]],
) -> None:
    now = [10_000]
    py = RiskGate(limits, rules, now_ns=lambda: now[0])
    c = GateCore(limits, rules)
    # Mostly a usable state, so the sequences get past the guards.
    ready, in_sync, mark = start
    py.state.connector_ready = c.connector_ready = ready or in_sync
    py.state.book_in_sync = c.book_in_sync = in_sync or ready
    py.state.mark_price = c.mark_price = mark
    if start[0] and start[1]:
        py.state.margin = MarginState(10**9, 10**9)
        c.set_margin(10**9, 10**9)
    for step in steps:
        _apply(py, c, step, now)
    assert c.admitted == py.admitted
    assert c.denials == py.denials
    assert c.state_view() == py.state


# One hand-made sequence per reason (on a ready, in-sync market with mark 1000 and margin),
# through the same comparison as the property test.
def _o(side: int, price: int, size: int, ro: bool = False, mod: bool = False) -> tuple[Any, ...]:
    return ("order", side, 0, 0, ro, mod, (price, size))


SCENARIOS: dict[RiskReason, list[tuple[Any, ...]]] = {
    RiskReason.OK: [_o(0, 1000, 10)],
    RiskReason.NOT_READY: [("flags", False, True, False, 0), _o(0, 1000, 10)],
    RiskReason.BOOK_OUT_OF_SYNC: [("flags", True, False, False, 0), _o(0, 1000, 10)],
    RiskReason.KILL_SWITCH: [("flags", True, True, True, 0), _o(0, 1000, 10)],
    RiskReason.MARKET_INACTIVE: [("flags", True, True, False, 2), _o(0, 1000, 10)],
    RiskReason.MARKET_REDUCE_ONLY: [("flags", True, True, False, 1), _o(0, 1000, 10)],
    RiskReason.BAD_PRICE: [_o(0, 0, 10)],
    RiskReason.BAD_SIZE: [_o(0, 1000, 0)],
    RiskReason.PRICE_PRECISION: [_o(0, 1001, 10)],
    RiskReason.SIZE_PRECISION: [_o(0, 1000, 11)],
    RiskReason.BELOW_MIN_SIZE: [_o(0, 1000, 2)],
    RiskReason.BELOW_MIN_NOTIONAL: [_o(0, 2, 4)],
    RiskReason.NO_MARK: [("mark", 0), _o(0, 1000, 10)],
    RiskReason.PRICE_BAND: [_o(0, 1100, 10)],
    RiskReason.MAX_ORDER_NOTIONAL: [_o(0, 1000, 10**7 + 4)],
    RiskReason.REDUCE_ONLY_NO_POSITION: [_o(1, 1000, 10, ro=True)],
    RiskReason.MAX_POSITION: [("position", 95), _o(0, 1000, 10)],
    RiskReason.MAX_OPEN_ORDERS: [("open", 2, 0, 0), _o(0, 1000, 10)],
    RiskReason.ORDER_RATE: [_o(0, 1000, 10), _o(1, 1000, 10), _o(0, 1000, 10)],
    RiskReason.MARGIN_UNKNOWN: [("margin", None), _o(0, 1000, 10)],
    RiskReason.MARGIN: [("margin", (0, 10**6)), _o(0, 1000, 10)],
}


@pytest.mark.parametrize("reason", list(SCENARIOS), ids=[r.name for r in SCENARIOS])
def test_each_reason_on_both_gates(reason: RiskReason) -> None:
    rules = MarketRules(
        market=0,
        price_decimals=2,
        size_decimals=4,
        min_size_lots=4,
        min_notional=100,
        price_step=2,
        lot_step=2,
    )
    limits = RiskLimits(
        max_position_lots=100,
        max_order_notional=10**10,
        max_open_orders=2,
        price_band_bps=500,
        order_rate_cap=2,
        order_rate_window_ns=1000,
    )
    now = [10_000]
    py = RiskGate(limits, rules, now_ns=lambda: now[0])
    c = GateCore(limits, rules)
    start = [("flags", True, True, False, 0), ("mark", 1000), ("margin", (10**12, 10**12))]
    for step in start + SCENARIOS[reason]:
        _apply(py, c, step, now)
    last = SCENARIOS[reason][-1]
    assert last[0] == "order"
    assert py.denials.get(reason, 0) == 1 or (reason is RiskReason.OK and py.admitted == 1)


def test_every_reason_is_reached() -> None:
    """The tests above reached every reason on both gates (they run first in this module)."""
    missing = set(RiskReason) - SEEN
    assert not missing, sorted(m.name for m in missing)


def test_limits_and_rules_are_taken() -> None:
    rules = MarketRules(
        market=0,
        price_decimals=2,
        size_decimals=4,
        min_size_lots=5,
        min_notional=1000,
        price_step=2,
        lot_step=5,
    )
    limits = RiskLimits(
        max_position_lots=100,
        max_order_notional=10**6,
        max_open_orders=2,
        price_band_bps=100,
        order_rate_cap=2,
        order_rate_window_ns=1000,
        require_margin_stats=False,
    )
    c = GateCore(limits, rules)
    c.connector_ready = c.book_in_sync = True
    c.mark_price = 1000
    assert c.admit(0, 1000, 10, now_ns=1) is RiskReason.OK
    assert c.admit(0, 1001, 10, now_ns=2) is RiskReason.PRICE_PRECISION
    assert c.admit(0, 1000, 7, now_ns=2) is RiskReason.SIZE_PRECISION
    assert c.admit(0, 1012, 10, now_ns=2) is RiskReason.PRICE_BAND
    assert c.admit(1, 1000, 10, now_ns=3) is RiskReason.OK
    assert c.admit(1, 1000, 10, now_ns=4) is RiskReason.ORDER_RATE
    assert c.sends_in_window(1001) == 1 and c.admit(1, 1000, 10, now_ns=1001) is RiskReason.OK
    c.set_limits(
        RiskLimits(
            max_position_lots=5,
            max_order_notional=10**6,
            max_open_orders=2,
            price_band_bps=100,
            order_rate_cap=9,
            order_rate_window_ns=1000,
            require_margin_stats=False,
        )
    )
    assert c.admit(0, 1000, 10, now_ns=1002) is RiskReason.MAX_POSITION
    assert c.denials == {
        RiskReason.PRICE_PRECISION: 1,
        RiskReason.SIZE_PRECISION: 1,
        RiskReason.PRICE_BAND: 1,
        RiskReason.ORDER_RATE: 1,
        RiskReason.MAX_POSITION: 1,
    }
    assert c.admitted == 3


@pytest.mark.parametrize("n", [1, 64, 200])
def test_recorded_sends_past_the_cap_are_all_counted(n: int) -> None:
    rules = MarketRules(market=0, price_decimals=2, size_decimals=4)
    limits = RiskLimits(
        max_position_lots=10,
        max_order_notional=10**6,
        max_open_orders=2,
        price_band_bps=100,
        order_rate_cap=3,
        order_rate_window_ns=1000,
    )
    c = GateCore(limits, rules)
    for i in range(n):
        c.record_send(i)
    assert c.sends_in_window(n - 1) == n
    assert c.sends_in_window(n + 999) == 0
