"""Pre-trade risk gate: one table row per denial reason, the rate window, and a property test
against an independent (Fraction-based) oracle over random orders (20k; 10^5 under soak)."""

from __future__ import annotations

import dataclasses
import random
from fractions import Fraction

import pytest

from mmfast.conf import example_path, load_config
from mmfast.core.types import Order, OrderStatus, Side, TimeInForce
from mmfast.reference.gate import RiskGate
from mmfast.risk import (
    MarginState,
    MarketRules,
    MarketState,
    RiskLimits,
    RiskReason,
    RiskState,
    check_order,
    parse_micro,
)

R = RiskReason
# ETH-like market: price 3000.00 USDC = 300_000 ticks, 1 lot = 0.0001 ETH.
RULES = MarketRules(
    market=0,
    price_decimals=2,
    size_decimals=4,
    min_size_lots=50,
    min_notional=10_000_000,
    price_step=5,
    lot_step=10,
    initial_margin_bps=500,
)
LIMITS = RiskLimits(
    max_position_lots=1000,
    max_order_notional=300_000 * 500,
    max_open_orders=4,
    price_band_bps=100,
    order_rate_cap=3,
    order_rate_window_ns=1_000_000_000,
    margin_headroom_ppm=200_000,
)
MARK = 300_000


def good_state(**kw: object) -> RiskState:
    base = dict(
        position_lots=0,
        open_orders=0,
        open_bid_lots=0,
        open_ask_lots=0,
        mark_price=MARK,
        market_state=MarketState.ACTIVE,
        book_in_sync=True,
        connector_ready=True,
        kill_switch_tripped=False,
        margin=MarginState(available_balance=10_000 * 10**6, portfolio_value=10_000 * 10**6),
    )
    base.update(kw)
    return RiskState(**base)  # type: ignore[arg-type]


def order(
    side: Side,
    price: int,
    size: int,
    *,
    reduce_only: bool = False,
    status: OrderStatus = OrderStatus.OPEN,
    filled: int = 0,
) -> Order:
    return Order(
        client_order_index=1,
        market=0,
        side=side,
        price_ticks=price,
        size_lots=size,
        tif=TimeInForce.POST_ONLY,
        reduce_only=reduce_only,
        expiry_ms=1,
        status=status,
        filled_lots=filled,
    )


B, S = Side.BUY, Side.SELL
# (id, state overrides, side, price, size, reduce_only, modify_of, expected)
TABLE: list[tuple[str, dict[str, object], Side, int, int, bool, Order | None, RiskReason]] = [
    ("ok-bid", {}, B, 299_000, 100, False, None, R.OK),
    ("ok-ask", {}, S, 301_000, 100, False, None, R.OK),
    ("not-ready", {"connector_ready": False}, B, 299_000, 100, False, None, R.NOT_READY),
    ("book-out-of-sync", {"book_in_sync": False}, B, 299_000, 100, False, None, R.BOOK_OUT_OF_SYNC),
    ("kill-switch", {"kill_switch_tripped": True}, B, 299_000, 100, False, None, R.KILL_SWITCH),
    (
        "kill-switch-reduce-only",
        {"kill_switch_tripped": True, "position_lots": 100},
        S,
        301_000,
        100,
        True,
        None,
        R.KILL_SWITCH,
    ),
    (
        "market-inactive",
        {"market_state": MarketState.INACTIVE},
        B,
        299_000,
        100,
        False,
        None,
        R.MARKET_INACTIVE,
    ),
    (
        "market-inactive-reduce-only",
        {"market_state": MarketState.INACTIVE, "position_lots": 100},
        S,
        301_000,
        100,
        True,
        None,
        R.MARKET_INACTIVE,
    ),
    (
        "market-reduce-only",
        {"market_state": MarketState.REDUCE_ONLY},
        B,
        299_000,
        100,
        False,
        None,
        R.MARKET_REDUCE_ONLY,
    ),
    (
        "market-reduce-only-ok",
        {"market_state": MarketState.REDUCE_ONLY, "position_lots": 100},
        S,
        301_000,
        100,
        True,
        None,
        R.OK,
    ),
    ("price-0", {}, B, 0, 100, False, None, R.BAD_PRICE),
    ("price-neg", {}, B, -5, 100, False, None, R.BAD_PRICE),
    ("size-0", {}, B, 299_000, 0, False, None, R.BAD_SIZE),
    ("size-0-reduce-only", {"position_lots": 100}, S, 301_000, 0, True, None, R.BAD_SIZE),
    ("price-precision", {}, B, 299_001, 100, False, None, R.PRICE_PRECISION),
    ("size-precision", {}, B, 299_000, 105, False, None, R.SIZE_PRECISION),
    ("below-min-size", {}, B, 299_000, 40, False, None, R.BELOW_MIN_SIZE),
    (
        "below-min-notional",
        {"mark_price": 150_000},
        B,
        150_000,
        60,
        False,
        None,
        R.BELOW_MIN_NOTIONAL,
    ),
    ("min-notional-exact", {"mark_price": 200_000}, B, 200_000, 50, False, None, R.OK),
    ("no-mark", {"mark_price": 0}, B, 299_000, 100, False, None, R.NO_MARK),
    ("band-low", {}, B, 296_995, 100, False, None, R.PRICE_BAND),
    ("band-edge-low", {}, B, 297_000, 100, False, None, R.OK),
    ("band-edge-high", {}, S, 303_000, 100, False, None, R.OK),
    ("band-high", {}, S, 303_005, 100, False, None, R.PRICE_BAND),
    (
        "band-applies-to-reduce-only",
        {"position_lots": 100},
        S,
        310_000,
        100,
        True,
        None,
        R.PRICE_BAND,
    ),
    ("order-notional", {}, B, 300_000, 510, False, None, R.MAX_ORDER_NOTIONAL),
    ("order-notional-edge", {}, B, 300_000, 500, False, None, R.OK),
    ("reduce-only-flat", {}, S, 301_000, 100, True, None, R.REDUCE_ONLY_NO_POSITION),
    (
        "reduce-only-wrong-side",
        {"position_lots": 100},
        B,
        299_000,
        100,
        True,
        None,
        R.REDUCE_ONLY_NO_POSITION,
    ),
    (
        "reduce-only-too-big",
        {"position_lots": 100},
        S,
        301_000,
        110,
        True,
        None,
        R.REDUCE_ONLY_NO_POSITION,
    ),
    ("reduce-only-short", {"position_lots": -100}, B, 299_000, 100, True, None, R.OK),
    (
        "position-long",
        {"position_lots": 900, "open_bid_lots": 50},
        B,
        299_000,
        60,
        False,
        None,
        R.MAX_POSITION,
    ),
    (
        "position-long-edge",
        {"position_lots": 900, "open_bid_lots": 50},
        B,
        299_000,
        50,
        False,
        None,
        R.OK,
    ),
    (
        "position-short",
        {"position_lots": -900, "open_ask_lots": 50},
        S,
        301_000,
        60,
        False,
        None,
        R.MAX_POSITION,
    ),
    ("position-short-reducing-ok", {"position_lots": -1000}, B, 299_000, 100, False, None, R.OK),
    # A modify keeps the old remaining counted: it may fill before the modify lands.
    (
        "position-modify-worst-case",
        {"position_lots": 900, "open_bid_lots": 100},
        B,
        299_000,
        100,
        False,
        order(B, 298_000, 100),
        R.MAX_POSITION,
    ),
    (
        "position-modify-fits",
        {"position_lots": 800, "open_bid_lots": 100},
        B,
        299_000,
        100,
        False,
        order(B, 298_000, 100),
        R.OK,
    ),
    (
        "position-modify-partial",
        {"position_lots": 840, "open_bid_lots": 60},
        B,
        299_000,
        100,
        False,
        order(B, 298_000, 100, status=OrderStatus.PARTIALLY_FILLED, filled=40),
        R.OK,
    ),
    (
        "position-modify-partial-over",
        {"position_lots": 841, "open_bid_lots": 60},
        B,
        299_000,
        100,
        False,
        order(B, 298_000, 100, status=OrderStatus.PARTIALLY_FILLED, filled=40),
        R.MAX_POSITION,
    ),
    ("open-orders", {"open_orders": 4}, B, 299_000, 100, False, None, R.MAX_OPEN_ORDERS),
    (
        "open-orders-modify-ok",
        {"open_orders": 4},
        B,
        299_000,
        100,
        False,
        order(B, 298_000, 100),
        R.OK,
    ),
    ("margin-unknown", {"margin": None}, B, 299_000, 100, False, None, R.MARGIN_UNKNOWN),
    (
        "margin-unknown-reducing-ok",
        {"margin": None, "position_lots": -500},
        B,
        299_000,
        100,
        False,
        None,
        R.OK,
    ),
    # 100 lots at 2990.00 = 29.90 USDC notional, 5% IMF = 1.495 USDC; portfolio 10 USDC with
    # 20% headroom keeps 2 USDC: 3.49 available passes, 3.48 does not.
    (
        "margin-edge-ok",
        {"margin": MarginState(3_495_000, 10_000_000)},
        B,
        299_000,
        100,
        False,
        None,
        R.OK,
    ),
    (
        "margin-short",
        {"margin": MarginState(3_494_999, 10_000_000)},
        B,
        299_000,
        100,
        False,
        None,
        R.MARGIN,
    ),
    (
        "margin-only-extra-exposure",
        {"margin": MarginState(0, 10_000_000), "position_lots": -100},
        B,
        299_000,
        100,
        False,
        None,
        R.OK,
    ),
    (
        "margin-partly-extra",
        {"margin": MarginState(0, 10_000_000), "position_lots": -50},
        B,
        299_000,
        100,
        False,
        None,
        R.MARGIN,
    ),
]


@pytest.mark.parametrize(
    ("over", "side", "price", "size", "ro", "mod", "want"),
    [r[1:] for r in TABLE],
    ids=[r[0] for r in TABLE],
)
def test_gate_table(
    over: dict[str, object],
    side: Side,
    price: int,
    size: int,
    ro: bool,
    mod: Order | None,
    want: RiskReason,
) -> None:
    state = good_state(**over)
    got = check_order(side, price, size, state, LIMITS, RULES, reduce_only=ro, modify_of=mod)
    assert got is want
    gate = RiskGate(LIMITS, RULES, state, now_ns=lambda: 0)
    assert gate.admit(side, price, size, reduce_only=ro, modify_of=mod) is want
    assert gate.admitted == (1 if want is R.OK else 0)
    assert gate.denials == ({} if want is R.OK else {want: 1})


def test_every_reason_has_a_row() -> None:
    covered = {r[-1] for r in TABLE} | {R.ORDER_RATE}
    assert covered == set(RiskReason)


def test_rate_cap_sliding_window() -> None:
    now = [0]
    gate = RiskGate(LIMITS, RULES, good_state(), now_ns=lambda: now[0])
    for t in (0, 100, 200):
        now[0] = t
        assert gate.admit(B, 299_000, 100) is R.OK
    now[0] = 999_999_999
    assert gate.check(B, 299_000, 100) is R.ORDER_RATE  # check records nothing
    assert gate.admit(B, 299_000, 100) is R.ORDER_RATE
    assert gate.denials == {R.ORDER_RATE: 1}
    now[0] = 1_000_000_000  # the send at 0 leaves the window
    assert gate.sends_in_window() == 2
    assert gate.admit(B, 299_000, 100) is R.OK
    assert gate.admit(B, 299_000, 100) is R.ORDER_RATE
    gate.record_send(now_ns=1_000_000_050)
    now[0] = 1_000_000_101  # the send at 100 has left; 200, 1e9 and 1e9 + 50 remain
    assert gate.sends_in_window() == 3


def test_set_orders_counts_open_exposure() -> None:
    st = RiskState()
    orders = [
        order(B, 1, 100),
        order(B, 1, 100, status=OrderStatus.PARTIALLY_FILLED, filled=30),
        order(S, 1, 50, status=OrderStatus.PENDING_NEW),
        order(S, 1, 70, reduce_only=True),
        order(S, 1, 80, status=OrderStatus.UNKNOWN),
        order(B, 1, 999, status=OrderStatus.CANCELED),
        order(B, 1, 999, status=OrderStatus.FILLED, filled=999),
    ]
    st.set_orders(orders)
    assert (st.open_orders, st.open_bid_lots, st.open_ask_lots) == (5, 170, 130)


def test_parse_micro_and_user_stats() -> None:
    assert parse_micro("39.168314") == 39_168_314
    assert parse_micro("-0.5") == -500_000
    assert parse_micro("1.1234569") == 1_123_456
    for bad in ("", ".", "1e5", "abc", "1.2.3", "--1"):
        with pytest.raises(ValueError):
            parse_micro(bad)
    stats = {
        "available_balance": "1.0",
        "portfolio_value": "2.0",
        "cross_stats": {"available_balance": "39.168314", "portfolio_value": "39.995169"},
    }
    assert MarginState.from_user_stats(stats) == MarginState(39_168_314, 39_995_169)


def test_limits_from_config() -> None:
    cfg = load_config(example_path("sim"), env={"HOME": "/nonexistent"})
    lim = RiskLimits.from_config(cfg.risk, RULES)
    assert lim.max_order_notional == 2000 * 10**6  # 2000 USDC at 10^(2+4) tick*lot per USDC
    assert lim.max_position_lots == 2000 and lim.order_rate_window_ns == 60 * 10**9
    assert lim.margin_headroom_ppm == 200_000


def test_validation_of_limits_and_rules() -> None:
    with pytest.raises(ValueError):
        dataclasses.replace(LIMITS, max_position_lots=0)
    with pytest.raises(ValueError):
        dataclasses.replace(LIMITS, price_band_bps=0)
    with pytest.raises(ValueError):
        dataclasses.replace(RULES, price_step=0)
    with pytest.raises(ValueError):
        dataclasses.replace(RULES, initial_margin_bps=0)


def test_extreme_values_are_exact() -> None:
    """Products beyond int64 (price x size near 2^61 each) compare exactly."""
    big = 1 << 61
    lim = dataclasses.replace(
        LIMITS, max_order_notional=big * big, max_position_lots=big, price_band_bps=10_000
    )
    st = good_state(mark_price=big, margin=None)
    rules = dataclasses.replace(RULES, price_step=1, lot_step=1, min_notional=0)
    lim = dataclasses.replace(lim, require_margin_stats=False)
    assert check_order(B, big, big, st, lim, rules) is R.OK
    lim2 = dataclasses.replace(lim, max_order_notional=big * big - 1)
    assert check_order(B, big, big, st, lim2, rules) is R.MAX_ORDER_NOTIONAL


# --- property test -------------------------------------------------------------------------


def oracle(
    side: Side,
    price: int,
    size: int,
    st: RiskState,
    lim: RiskLimits,
    rules: MarketRules,
    ro: bool,
    mod: Order | None,
    sends: int,
) -> set[RiskReason]:
    """Every rule the order breaks, computed independently (Fractions, no shortcuts)."""
    v: set[RiskReason] = set()
    if not st.connector_ready:
        v.add(R.NOT_READY)
    if not st.book_in_sync:
        v.add(R.BOOK_OUT_OF_SYNC)
    if st.kill_switch_tripped:
        v.add(R.KILL_SWITCH)
    if st.market_state is MarketState.INACTIVE:
        v.add(R.MARKET_INACTIVE)
    if st.market_state is MarketState.REDUCE_ONLY and not ro:
        v.add(R.MARKET_REDUCE_ONLY)
    if price <= 0:
        v.add(R.BAD_PRICE)
    if size <= 0:
        v.add(R.BAD_SIZE)
    if Fraction(price, rules.price_step).denominator != 1:
        v.add(R.PRICE_PRECISION)
    if Fraction(size, rules.lot_step).denominator != 1:
        v.add(R.SIZE_PRECISION)
    if size < rules.min_size_lots:
        v.add(R.BELOW_MIN_SIZE)
    if price * size < rules.min_notional:
        v.add(R.BELOW_MIN_NOTIONAL)
    if st.mark_price <= 0:
        v.add(R.NO_MARK)
    elif Fraction(abs(price - st.mark_price), st.mark_price) > Fraction(lim.price_band_bps, 10_000):
        v.add(R.PRICE_BAND)
    if price * size > lim.max_order_notional:
        v.add(R.MAX_ORDER_NOTIONAL)
    pos = st.position_lots
    extra = 0
    if ro:
        held = pos if side is Side.SELL else -pos
        if held < size:
            v.add(R.REDUCE_ONLY_NO_POSITION)
    else:
        sign = side.sign
        open_side = st.open_bid_lots if side is Side.BUY else st.open_ask_lots
        # A modified order's remaining stays in: it may fill before the modify lands.
        worst_before = sign * pos + open_side  # exposure in the order's direction
        worst_after = worst_before + size
        if worst_after > lim.max_position_lots:
            v.add(R.MAX_POSITION)
        extra = max(worst_after, 0) - max(worst_before, 0)
    if mod is None and st.open_orders >= lim.max_open_orders:
        v.add(R.MAX_OPEN_ORDERS)
    if extra > 0:
        if st.margin is None:
            if lim.require_margin_stats:
                v.add(R.MARGIN_UNKNOWN)
        else:
            usdc = Fraction(extra * price, rules.ticklots_per_unit)
            im_micro = usdc * Fraction(rules.initial_margin_bps, 10_000) * 10**6
            keep = Fraction(lim.margin_headroom_ppm, 10**6) * max(st.margin.portfolio_value, 0)
            if st.margin.available_balance - im_micro < keep:
                v.add(R.MARGIN)
    if sends >= lim.order_rate_cap:
        v.add(R.ORDER_RATE)
    return v


def random_case(rng: random.Random) -> tuple[object, ...]:
    rules = MarketRules(
        market=0,
        price_decimals=2,
        size_decimals=rng.choice((3, 4)),
        min_size_lots=rng.choice((1, 20, 50)),
        min_notional=rng.choice((0, 10**6, 10**7)),
        price_step=rng.choice((1, 1, 5, 10)),
        lot_step=rng.choice((1, 1, 10)),
        initial_margin_bps=rng.choice((200, 500, 10_000)),
    )
    maxpos = rng.randint(50, 5000)
    lim = RiskLimits(
        max_position_lots=maxpos,
        max_order_notional=rng.randint(10**6, 10**9),
        max_open_orders=rng.randint(1, 20),
        price_band_bps=rng.randint(10, 500),
        order_rate_cap=rng.randint(1, 8),
        order_rate_window_ns=10**9,
        margin_headroom_ppm=rng.choice((0, 100_000, 500_000)),
        require_margin_stats=rng.random() < 0.8,
    )
    mark = 0 if rng.random() < 0.02 else rng.randint(1_000, 500_000)
    p = rng.random()
    margin = (
        None
        if p < 0.05
        else MarginState(rng.randint(-(10**6), 10**10), rng.randint(-(10**6), 2 * 10**10))
    )
    pos = rng.randint(-maxpos * 6 // 5, maxpos * 6 // 5)
    st = RiskState(
        position_lots=pos,
        open_orders=rng.randint(0, 22),
        open_bid_lots=rng.randint(0, maxpos),
        open_ask_lots=rng.randint(0, maxpos),
        mark_price=mark,
        market_state=rng.choices(list(MarketState), (94, 3, 3))[0],
        book_in_sync=rng.random() < 0.97,
        connector_ready=rng.random() < 0.97,
        kill_switch_tripped=rng.random() < 0.03,
        margin=margin,
    )
    side = rng.choice((Side.BUY, Side.SELL))
    ref = mark or 100_000
    off = rng.randint(-lim.price_band_bps * 3 // 2, lim.price_band_bps * 3 // 2)
    price = ref + ref * off // 10_000
    if rng.random() < 0.7:
        price -= price % rules.price_step
    if rng.random() < 0.01:
        price = rng.randint(-10, 0)
    size = rng.choice((rng.randint(1, 200), rng.randint(1, maxpos), rng.randint(0, 2 * maxpos)))
    if rng.random() < 0.7:
        size -= size % rules.lot_step
    ro = rng.random() < 0.15
    mod = None
    if rng.random() < 0.2:
        mod = order(side, price, rng.randint(1, 300), reduce_only=rng.random() < 0.1)
    sends = rng.randint(0, lim.order_rate_cap)
    return side, price, size, st, lim, rules, ro, mod, sends


def run_property(n: int, seed: int) -> dict[RiskReason, int]:
    rng = random.Random(seed)
    seen: dict[RiskReason, int] = {}
    for _ in range(n):
        side, price, size, st, lim, rules, ro, mod, sends = random_case(rng)
        gate = RiskGate(lim, rules, st, now_ns=lambda: 5 * 10**9)  # type: ignore[arg-type]
        gate.record_send(now_ns=3 * 10**9)  # left the window by now: never counts
        for k in range(sends):  # type: ignore[call-overload]
            gate.record_send(now_ns=4 * 10**9 + 1 + k)
        want = oracle(side, price, size, st, lim, rules, ro, mod, sends)  # type: ignore[arg-type]
        got = gate.admit(side, price, size, reduce_only=ro, modify_of=mod)  # type: ignore[arg-type]
        if want:
            assert got in want, (got, want)
        else:
            assert got is R.OK, (got, side, price, size, st, lim, rules, ro, mod)
        seen[got] = seen.get(got, 0) + 1
    return seen


def test_property_random_orders() -> None:
    seen = run_property(20_000, seed=22)
    # The generator reaches every reason (and plenty of allowed orders).
    assert set(seen) == set(RiskReason), set(RiskReason) - set(seen)
    assert seen[R.OK] > 1000


@pytest.mark.soak
def test_property_random_orders_soak() -> None:
    seen = run_property(100_000, seed=2222)
    assert set(seen) == set(RiskReason)
