"""Requote planner: decisions as table tests, then invariants over random ladders.

Every test runs against both implementations: the compiled planner (``mmfast._core.plan``, what
``mmfast.strategy.plan_requotes`` is) and its pure-Python twin (``mmfast.reference.planner``).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

import mmfast._core.plan
import mmfast.reference.planner
from mmfast.conf import example_path, load_config
from mmfast.core.types import Order, OrderStatus, Side, TimeInForce
from mmfast.strategy import (
    UNLIMITED,
    ActionKind,
    BudgetView,
    Degrade,
    Plan,
    PlannerParams,
    RateBudget,
    plan_requotes,
)

PLANNERS: dict[str, Callable[..., Plan]] = {
    "compiled": mmfast._core.plan.plan_requotes,
    "reference": mmfast.reference.planner.plan_requotes,
}
NOW = 1_000 * 10**9
S = 10**9
B, A = Side.BUY, Side.SELL
OPEN, PART, PNEW, PCXL, UNK = (
    OrderStatus.OPEN,
    OrderStatus.PARTIALLY_FILLED,
    OrderStatus.PENDING_NEW,
    OrderStatus.PENDING_CANCEL,
    OrderStatus.UNKNOWN,
)


@pytest.fixture(params=sorted(PLANNERS))
def planner(request: pytest.FixtureRequest) -> Callable[..., Plan]:
    return PLANNERS[request.param]


def test_strategy_planner_is_the_compiled_one() -> None:
    assert plan_requotes is mmfast._core.plan.plan_requotes
    assert type(plan_requotes).__name__ != "function"  # a compiled (cython) function


def o(
    coi: int,
    side: Side,
    price: int,
    size: int = 10,
    *,
    status: OrderStatus = OPEN,
    filled: int = 0,
    age_s: float = 1.0,
) -> Order:
    return Order(
        client_order_index=coi,
        market=0,
        side=side,
        price_ticks=price,
        size_lots=size,
        tif=TimeInForce.POST_ONLY,
        expiry_ms=1,
        status=status,
        filled_lots=filled,
        created_ns=NOW - int(age_s * S),
    )


@dataclass
class Budget:
    """A test budget: fixed headroom, at most ``cap`` txs per plan."""

    h: float = 1.0
    cap: int = 10**9

    @property
    def headroom(self) -> float:
        return self.h

    def can_spend(self, n: int) -> bool:
        return n <= self.cap


def fmt(plan: Plan) -> list[str]:
    """Actions in send order: +B100x10 create, ~3:101x10 modify, -3 cancel, ! when urgent."""
    out = []
    for a in plan.actions:
        u = "!" if a.urgent else ""
        if a.kind is ActionKind.CREATE:
            out.append(f"+{'B' if a.side is B else 'A'}{a.price_ticks}x{a.size_lots}{u}")
        elif a.kind is ActionKind.MODIFY:
            assert a.order is not None
            out.append(f"~{a.order.client_order_index}:{a.price_ticks}x{a.size_lots}{u}")
        else:
            assert a.order is not None
            out.append(f"-{a.order.client_order_index}{u}")
    return out


L2B = [(100, 10), (98, 10)]
L2A = [(104, 10), (106, 10)]

# (id, bids, asks, live, kwargs, actions, kept cois, deferred, degrade)
TABLE: list[
    tuple[
        str,
        list[tuple[int, int]],
        list[tuple[int, int]],
        list[Order],
        dict[str, Any],
        list[str],
        set[int],
        int,
        Degrade,
    ]
] = [
    (
        "empty-book-creates-interleaved",
        L2B,
        L2A,
        [],
        {},
        ["+B100x10", "+A104x10", "+B98x10", "+A106x10"],
        set(),
        0,
        Degrade.NONE,
    ),
    (
        "all-on-target-kept",
        L2B,
        L2A,
        [o(1, B, 100), o(2, B, 98), o(3, A, 104), o(4, A, 106)],
        {},
        [],
        {1, 2, 3, 4},
        0,
        Degrade.NONE,
    ),
    (
        "within-price-tolerance",
        [(100, 10)],
        [(104, 10)],
        [o(1, B, 102), o(2, A, 102)],
        {"params": PlannerParams(price_tolerance_ticks=2)},
        [],
        {1, 2},
        0,
        Degrade.NONE,
    ),
    (
        "beyond-tolerance-modify",
        [(100, 10)],
        [(104, 10)],
        [o(1, B, 97), o(2, A, 107)],
        {"params": PlannerParams(price_tolerance_ticks=2)},
        ["~1:100x10", "~2:104x10"],
        set(),
        0,
        Degrade.NONE,
    ),
    (
        "size-within-tolerance",
        [(100, 10)],
        [],
        [o(1, B, 100, 12)],
        {"params": PlannerParams(size_tolerance_lots=2)},
        [],
        {1},
        0,
        Degrade.NONE,
    ),
    (
        "size-beyond-tolerance",
        [(100, 10)],
        [],
        [o(1, B, 100, 13)],
        {"params": PlannerParams(size_tolerance_lots=2)},
        ["~1:100x10"],
        set(),
        0,
        Degrade.NONE,
    ),
    (
        "partial-fill-refilled-by-modify",
        [(100, 10)],
        [],
        [o(1, B, 100, 10, status=PART, filled=6)],
        {"params": PlannerParams(size_tolerance_lots=2)},
        ["~1:100x10"],
        set(),
        0,
        Degrade.NONE,
    ),
    (
        "partial-fill-within-tolerance",
        [(100, 10)],
        [],
        [o(1, B, 100, 10, status=PART, filled=1)],
        {"params": PlannerParams(size_tolerance_lots=2)},
        [],
        {1},
        0,
        Degrade.NONE,
    ),
    (
        "ladder-shift-one-modify",
        [(102, 10), (100, 10)],
        [],
        [o(1, B, 100), o(2, B, 98)],
        {},
        ["~2:102x10"],
        {1},
        0,
        Degrade.NONE,
    ),
    (
        "price-move-all-modified-not-replaced",
        [(110, 10), (108, 10)],
        [],
        [o(1, B, 100), o(2, B, 98)],
        {},
        ["~1:110x10", "~2:108x10"],
        set(),
        0,
        Degrade.NONE,
    ),
    (
        "surplus-cancelled-last",
        L2B,
        [],
        [o(1, B, 100), o(2, B, 98), o(3, B, 96)],
        {},
        ["-3"],
        {1, 2},
        0,
        Degrade.NONE,
    ),
    (
        "fewer-live-than-target",
        [(100, 10), (98, 10), (96, 10)],
        [],
        [o(1, B, 90)],
        {},
        ["~1:100x10", "+B98x10", "+B96x10"],
        set(),
        0,
        Degrade.NONE,
    ),
    (
        "empty-target-side-urgent-cancels",
        [],
        L2A,
        [o(1, B, 100), o(2, B, 98), o(3, A, 104), o(4, A, 106)],
        {},
        ["-1!", "-2!"],
        {3, 4},
        0,
        Degrade.NONE,
    ),
    (
        "inside-order-urgent-modify-first",
        L2B,
        L2A,
        [o(1, B, 105), o(3, A, 104), o(4, A, 106)],
        {},
        ["~1:100x10!", "+B98x10"],
        {3, 4},
        0,
        Degrade.NONE,
    ),
    (
        "inside-ask-urgent",
        [],
        [(104, 10)],
        [o(3, A, 101)],
        {},
        ["~3:104x10!"],
        set(),
        0,
        Degrade.NONE,
    ),
    (
        "inside-within-tolerance-not-urgent",
        [(100, 10)],
        [],
        [o(1, B, 101), o(2, B, 90)],
        {"params": PlannerParams(price_tolerance_ticks=1)},
        ["-2"],
        {1},
        0,
        Degrade.NONE,
    ),
    (
        "stale-replaced-create-then-cancel",
        [(100, 10)],
        [],
        [o(1, B, 100, age_s=700)],
        {"params": PlannerParams(max_order_age_ns=600 * S)},
        ["+B100x10", "-1"],
        set(),
        0,
        Degrade.NONE,
    ),
    (
        "fresh-not-replaced",
        [(100, 10)],
        [],
        [o(1, B, 100, age_s=599)],
        {"params": PlannerParams(max_order_age_ns=600 * S)},
        [],
        {1},
        0,
        Degrade.NONE,
    ),
    ("no-age-limit", [(100, 10)], [], [o(1, B, 100, age_s=10**6)], {}, [], {1}, 0, Degrade.NONE),
    (
        "stale-surplus-cancelled",
        [(100, 10)],
        [],
        [o(1, B, 100), o(2, B, 98, age_s=700)],
        {"params": PlannerParams(max_order_age_ns=600 * S)},
        ["-2"],
        {1},
        0,
        Degrade.NONE,
    ),
    (
        "pending-new-on-target-waits",
        [(100, 10)],
        [],
        [o(1, B, 100, status=PNEW)],
        {},
        [],
        set(),
        0,
        Degrade.NONE,
    ),
    (
        "pending-new-off-target-waits-covers-level",
        [(100, 10)],
        [],
        [o(1, B, 95, status=PNEW)],
        {},
        [],
        set(),
        0,
        Degrade.NONE,
    ),
    ("unknown-waits", [(100, 10)], [], [o(1, B, 95, status=UNK)], {}, [], set(), 0, Degrade.NONE),
    (
        "busy-modify-in-flight-waits",
        [(100, 10)],
        [],
        [o(1, B, 95)],
        {"busy": {1}},
        [],
        set(),
        0,
        Degrade.NONE,
    ),
    (
        "pending-cancel-ignored",
        [(100, 10)],
        [],
        [o(1, B, 100, status=PCXL)],
        {},
        ["+B100x10"],
        set(),
        0,
        Degrade.NONE,
    ),
    (
        "terminal-ignored",
        [(100, 10)],
        [],
        [
            o(1, B, 100, status=OrderStatus.FILLED, filled=10),
            o(2, B, 100, status=OrderStatus.CANCELED),
        ],
        {},
        ["+B100x10"],
        set(),
        0,
        Degrade.NONE,
    ),
    (
        "inflight-cap",
        L2B,
        L2A,
        [],
        {"inflight": 14},
        ["+B100x10", "+A104x10"],
        set(),
        2,
        Degrade.NONE,
    ),
    ("inflight-full", L2B, L2A, [], {"inflight": 16}, [], set(), 4, Degrade.NONE),
    ("budget-cap", L2B, L2A, [], {"budget": Budget(cap=1)}, ["+B100x10"], set(), 3, Degrade.NONE),
    (
        "urgent-cancels-bypass-budget",
        [],
        [],
        [o(1, B, 100), o(2, A, 104)],
        {"budget": Budget(cap=0)},
        ["-1!", "-2!"],
        set(),
        0,
        Degrade.NONE,
    ),
    (
        "urgent-cancels-respect-inflight",
        [],
        [],
        [o(1, B, 100), o(2, A, 104)],
        {"inflight": 15},
        ["-1!"],
        set(),
        1,
        Degrade.NONE,
    ),
    (
        "replace-is-atomic",
        [(100, 10)],
        [],
        [o(1, B, 100, age_s=700)],
        {"params": PlannerParams(max_order_age_ns=600 * S), "inflight": 15},
        [],
        set(),
        2,
        Degrade.NONE,
    ),
    (
        "degrade-wide-tolerance",
        [(100, 10)],
        [(104, 10)],
        [o(1, B, 101), o(2, A, 106)],
        {"budget": Budget(h=0.4)},
        ["~2:104x10"],
        {1},
        0,
        Degrade.WIDE,
    ),
    (
        "degrade-few-levels-keeps-deep",
        L2B,
        L2A,
        [o(1, B, 95), o(2, B, 90), o(3, A, 104)],
        {"budget": Budget(h=0.2)},
        ["~1:100x10"],
        {3},
        0,
        Degrade.FEW_LEVELS,
    ),
    (
        "degrade-few-levels-tolerance-3",
        [(100, 10)],
        [],
        [o(1, B, 97)],
        {"budget": Budget(h=0.2)},
        [],
        {1},
        0,
        Degrade.FEW_LEVELS,
    ),
    (
        "degrade-one-side-long-quotes-asks",
        L2B,
        L2A,
        [o(1, B, 90), o(3, A, 110)],
        {"budget": Budget(h=0.05), "position_lots": 50},
        ["~3:104x10"],
        set(),
        0,
        Degrade.ONE_SIDE,
    ),
    (
        "degrade-one-side-short-quotes-bids",
        L2B,
        L2A,
        [],
        {"budget": Budget(h=0.05), "position_lots": -50},
        ["+B100x10"],
        set(),
        0,
        Degrade.ONE_SIDE,
    ),
    (
        "degrade-one-side-flat-only-urgent",
        [(100, 10)],
        [(104, 10)],
        [o(1, B, 90), o(3, A, 99)],
        {"budget": Budget(h=0.05)},
        ["~3:104x10!"],
        set(),
        0,
        Degrade.ONE_SIDE,
    ),
    (
        "no-create-side-still-modifies",
        L2B,
        L2A,
        [o(1, B, 90)],
        {"no_create": {B}},
        ["~1:100x10", "+A104x10", "+A106x10"],
        set(),
        0,
        Degrade.NONE,
    ),
    (
        "no-create-stale-modified-not-replaced",
        [(100, 10)],
        [],
        [o(1, B, 95, age_s=700)],
        {"params": PlannerParams(max_order_age_ns=600 * S), "no_create": {B}},
        ["~1:100x10"],
        set(),
        0,
        Degrade.NONE,
    ),
    (
        "stale-inside-order-one-side-modified-not-cancelled",
        [(100, 10)],
        [(113, 10)],
        [o(1, A, 98, age_s=900)],
        {
            "params": PlannerParams(max_order_age_ns=600 * S),
            "budget": Budget(h=0.05),
            "position_lots": -5,
        },
        ["~1:113x10!", "+B100x10"],
        set(),
        0,
        Degrade.ONE_SIDE,
    ),
    (
        "side-kept-whole-rank-by-rank",
        [(100, 10), (98, 10)],
        [],
        [o(1, B, 99), o(2, B, 101)],
        {"params": PlannerParams(price_tolerance_ticks=2)},
        [],
        {1, 2},
        0,
        Degrade.NONE,
    ),
    (
        "one-side-degraded-closest-tie-by-index",
        [(100, 10), (98, 10)],
        [(104, 10)],
        [o(1, B, 99), o(2, B, 101), o(3, A, 104)],
        {
            "params": PlannerParams(price_tolerance_ticks=0),
            "budget": Budget(h=0.05),
            "position_lots": 5,
        },
        [],
        {1, 3},
        0,
        Degrade.ONE_SIDE,
    ),
    (
        "tie-break-by-client-index",
        [(100, 10)],
        [],
        [o(7, B, 99), o(5, B, 101)],
        {"params": PlannerParams(price_tolerance_ticks=1)},
        ["-7"],
        {5},
        0,
        Degrade.NONE,
    ),
]


def test_table_ids_unique() -> None:
    assert len({r[0] for r in TABLE}) == len(TABLE) >= 40


@pytest.mark.parametrize(
    ("bids", "asks", "live", "kw", "want", "kept", "deferred", "degrade"),
    [r[1:] for r in TABLE],
    ids=[r[0] for r in TABLE],
)
def test_planner_table(
    planner: Callable[..., Plan],
    bids: list[tuple[int, int]],
    asks: list[tuple[int, int]],
    live: list[Order],
    kw: dict[str, Any],
    want: list[str],
    kept: set[int],
    deferred: int,
    degrade: Degrade,
) -> None:
    plan = planner(bids, asks, live, now_ns=NOW, **kw)
    assert fmt(plan) == want
    assert {x.client_order_index for x in plan.kept} == kept
    assert plan.deferred == deferred
    assert plan.degrade is degrade
    # Same inputs in another order: the same plan (deterministic).
    again = planner(bids, asks, list(reversed(live)), now_ns=NOW, **kw)
    assert fmt(again) == want


def test_plan_views_and_waiting(planner: Callable[..., Plan]) -> None:
    live = [o(1, B, 95, status=PNEW), o(2, A, 110), o(3, A, 120)]
    plan = planner([(100, 10)], [(104, 10)], live, now_ns=NOW)
    assert [x.client_order_index for x in plan.waiting] == [1]
    assert [a.order.client_order_index for a in plan.modifies if a.order] == [2]
    assert [a.order.client_order_index for a in plan.cancels if a.order] == [3]
    assert plan.creates == ()


def test_params_from_config_and_validation() -> None:
    cfg = load_config(example_path("sim"), env={"HOME": "/nonexistent"})
    p = PlannerParams.from_config(cfg.strategy.market_making, max_inflight=8)
    assert (p.price_tolerance_ticks, p.size_tolerance_lots, p.max_order_age_ns, p.max_inflight) == (
        8,
        10,
        240 * S,
        8,
    )
    for bad in (
        {"max_inflight": 17},
        {"max_inflight": 0},
        {"price_tolerance_ticks": -1},
        {"wide_below": 0.1, "few_levels_below": 0.2},
        {"wide_factor": 0},
    ):
        with pytest.raises(ValueError):
            PlannerParams(**bad)


class FakeConnectorBudget:
    """The shape of mmfast.connector.lighter.budget.RateBudget.state()."""

    def __init__(self, used: int, cap: int, level: str = "OK", ws_used: int = 0) -> None:
        self.used, self.cap, self.level, self.ws_used = used, cap, level, ws_used

    def state(self) -> Any:
        lvl = type("L", (), {"name": self.level})()
        return type(
            "St",
            (),
            {
                "level": lvl,
                "used": {"sendtx": self.used, "ws_msgs": self.ws_used},
                "normal_caps": {"sendtx": self.cap, "ws_msgs": 100},
            },
        )()


def test_budget_view(planner: Callable[..., Plan]) -> None:
    v = BudgetView(FakeConnectorBudget(used=30, cap=40))
    assert isinstance(v, RateBudget)
    assert v.headroom == pytest.approx(0.25)
    assert v.can_spend(10) and not v.can_spend(11)
    assert BudgetView(FakeConnectorBudget(0, 40, level="BLOCKED")).headroom == 0.0
    assert not BudgetView(FakeConnectorBudget(0, 40, level="RESERVE_ONLY")).can_spend(1)
    assert not BudgetView(FakeConnectorBudget(0, 40, ws_used=100)).can_spend(1)
    plan = planner(L2B, L2A, [], now_ns=NOW, budget=BudgetView(FakeConnectorBudget(0, 2)))
    assert fmt(plan) == ["+B100x10", "+A104x10"] and plan.deferred == 2


def test_budget_view_on_the_connector_budget() -> None:
    budget_mod = pytest.importorskip("mmfast.connector.lighter.budget")
    from mmfast.core.timesource import ScaledTime

    rb = budget_mod.RateBudget(budget_mod.STANDARD, ScaledTime(1.0))
    v = BudgetView(rb)
    assert v.headroom == 1.0
    cap = rb.state().normal_caps["sendtx"]
    assert v.can_spend(cap) and not v.can_spend(cap + 1)
    assert rb.try_acquire(rb.ws_sendtx_cost(cap // 2))
    assert 0.0 < v.headroom < 1.0


@pytest.mark.parametrize("blocked", [False, True])
def test_budget_order_room_agrees_with_the_state_view(blocked: bool) -> None:
    """The connector budget's fast ``order_room`` gives what the state-based view gives."""
    budget_mod = pytest.importorskip("mmfast.connector.lighter.budget")
    from mmfast.core.timesource import ScaledTime

    rb = budget_mod.RateBudget(budget_mod.STANDARD, ScaledTime(1.0))

    class StateOnly:  # the same budget, seen through state() only
        def state(self) -> object:
            return rb.state()

    fast, slow = BudgetView(rb), BudgetView(StateOnly())
    cap = rb.state().normal_caps["sendtx"]
    seen = set()
    for step in range(4):
        if step:
            rb.try_acquire(rb.ws_sendtx_cost(max(1, cap // 4)))
        if blocked and step == 2:
            rb.on_rate_limited("sendtx", 30.0)
        assert fast.headroom == slow.headroom
        seen.add(fast.headroom)
        for n in (0, 1, cap // 3, cap, cap + 1):
            assert fast.can_spend(n) == slow.can_spend(n), (step, n)
    assert len(seen) >= 3  # the budget really moved between the reads


def test_budget_view_answers_a_plan_from_one_snapshot() -> None:
    """can_spend answers from the snapshot the headroom read took (one read per plan);
    the next headroom read sees what was spent meanwhile."""
    budget_mod = pytest.importorskip("mmfast.connector.lighter.budget")
    from mmfast.core.timesource import ScaledTime

    rb = budget_mod.RateBudget(budget_mod.STANDARD, ScaledTime(1.0))
    v = BudgetView(rb)
    cap = rb.state().normal_caps["sendtx"]
    assert v.headroom == 1.0
    assert rb.try_acquire(rb.ws_sendtx_cost(cap))  # spent after the snapshot
    assert v.can_spend(cap)  # this plan's snapshot
    assert v.headroom == 0.0 and not v.can_spend(1)  # the next plan's


# --- invariants over random ladders -----------------------------------------------------------


def apply(live: list[Order], plan: Plan) -> list[Order]:
    """The orders after every planned tx succeeded (copies)."""
    out = {x.client_order_index: x for x in live if x.status in (OPEN, PART, PNEW, UNK)}
    next_id = 10_000
    for a in plan.actions:
        if a.kind is ActionKind.CREATE:
            next_id += 1
            out[next_id] = o(next_id, a.side, a.price_ticks, a.size_lots, age_s=0)
        elif a.kind is ActionKind.MODIFY:
            assert a.order is not None
            out[a.order.client_order_index] = o(
                a.order.client_order_index, a.side, a.price_ticks, a.size_lots, age_s=0
            )
        else:
            assert a.order is not None
            del out[a.order.client_order_index]
    return list(out.values())


def random_ladder(rng: random.Random, side: Side, n: int) -> list[tuple[int, int]]:
    top = rng.randint(90, 110)
    step = rng.randint(1, 3)
    sign = -1 if side is B else 1
    return [(top + sign * i * step, rng.choice((10, 10, 20))) for i in range(n)]


def random_live(rng: random.Random, coi0: int) -> list[Order]:
    out = []
    for k in range(rng.randint(0, 6)):
        side = rng.choice((B, A))
        status = rng.choices(
            (OPEN, PART, PNEW, PCXL, UNK, OrderStatus.FILLED), (60, 15, 8, 5, 2, 10)
        )[0]
        size = rng.choice((10, 20))
        filled = (
            rng.randint(1, size - 1)
            if status is PART
            else (size if status is OrderStatus.FILLED else 0)
        )
        out.append(
            o(
                coi0 + k,
                side,
                rng.randint(80, 120),
                size,
                status=status,
                filled=filled,
                age_s=rng.choice((1, 1, 1, 900)),
            )
        )
    return out


@pytest.mark.parametrize("seed", range(4))
def test_random_invariants(planner: Callable[..., Plan], seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(700):
        bids = random_ladder(rng, B, rng.randint(0, 4))
        asks = [(p + 8, q) for p, q in random_ladder(rng, A, rng.randint(0, 4))]
        live = random_live(rng, 1)
        params = PlannerParams(
            price_tolerance_ticks=rng.randint(0, 2),
            size_tolerance_lots=rng.choice((0, 5)),
            max_order_age_ns=rng.choice((0, 600 * S)),
        )
        inflight = rng.choice((0, 0, 10, 15))
        budget = rng.choice((UNLIMITED, Budget(h=rng.random(), cap=rng.randint(0, 8))))
        plan = planner(
            bids,
            asks,
            live,
            now_ns=NOW,
            params=params,
            inflight=inflight,
            budget=budget,
            position_lots=rng.randint(-50, 50),
        )
        ids = [a.order.client_order_index for a in plan.actions if a.order is not None]
        # Each order is touched at most once, and never both kept and acted on.
        assert len(ids) == len(set(ids))
        assert not set(ids) & {x.client_order_index for x in plan.kept}
        assert not set(ids) & {x.client_order_index for x in plan.waiting}
        # Never on an order in flight or already on its way out.
        by_id = {x.client_order_index: x for x in live}
        assert all(by_id[i].status in (OPEN, PART) for i in ids)
        # The in-flight cap holds.
        assert len(plan.actions) <= max(0, 16 - inflight)
        # No more txs than cancelling everything and creating the ladder anew.
        movable = sum(1 for x in live if x.status in (OPEN, PART))
        assert len(plan.actions) + plan.deferred <= movable + len(bids) + len(asks)
        after = apply(live, plan)
        for side, target in ((B, bids), (A, asks)):
            before_n = sum(
                1 for x in live if x.side is side and x.status in (OPEN, PART, PNEW, UNK)
            )
            after_n = sum(1 for x in after if x.side is side)
            if target and before_n:
                assert after_n >= 1, "a side went dark"
            # Creates and modifies land on target levels only.
            prices = {p for p, _ in target}
            for a in plan.actions:
                if a.side is side and a.kind is not ActionKind.CANCEL:
                    assert a.price_ticks in prices and 0 <= a.level < len(target)


@pytest.mark.parametrize("seed", range(3))
def test_converges_without_limits(planner: Callable[..., Plan], seed: int) -> None:
    """With no cap, no budget pressure and nothing in flight, one plan reaches the target:
    every level covered by one order within tolerance, nothing else left."""
    rng = random.Random(100 + seed)
    for _ in range(500):
        bids = random_ladder(rng, B, rng.randint(0, 4))
        asks = [(p + 8, q) for p, q in random_ladder(rng, A, rng.randint(0, 4))]
        live = [x for x in random_live(rng, 1) if x.status in (OPEN, PART)][:8]
        tol = rng.randint(0, 2)
        params = PlannerParams(price_tolerance_ticks=tol, max_order_age_ns=600 * S)
        plan = planner(bids, asks, live, now_ns=NOW, params=params)
        assert plan.deferred == 0
        after = apply(live, plan)
        for side, target in ((B, bids), (A, asks)):
            mine = [x for x in after if x.side is side]
            assert len(mine) == len(target)
            for p, q in target:
                assert any(abs(x.price_ticks - p) <= tol and x.remaining_lots == q for x in mine)
            assert all(NOW - x.created_ns < 600 * S for x in mine)
        # A second plan on the result does nothing.
        assert planner(bids, asks, after, now_ns=NOW, params=params).actions == ()
