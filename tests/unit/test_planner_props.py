"""Property tests: the compiled requote planner (``mmfast._core.plan``) against its pure-Python
twin (``mmfast.reference.planner``), field by field, over random ladders, orders, parameters,
budgets and flags (derandomized hypothesis, bounded examples).

Actions compare as tuples with the order compared by identity, kept/waiting as identities in
order; the budget records every ``headroom`` read and ``can_spend`` call, and both planners must
make the same ones.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mmfast._core.plan
from mmfast._core.plan import MAX_PER_SIDE
from mmfast._core.plan import plan_requotes as compiled_plan
from mmfast.core.plan_types import (
    UNLIMITED,
    Action,
    ActionKind,
    Degrade,
    Plan,
    PlannerParams,
    UnlimitedBudget,
)
from mmfast.core.types import Order, OrderStatus, Side, TimeInForce
from mmfast.reference.planner import plan_requotes as reference_plan

PROFILE = settings(
    derandomize=True,
    max_examples=600,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
EDGE_PROFILE = settings(PROFILE, max_examples=250)

NOW = 10**12
S = 10**9
AGE = 600 * S
B, A = Side.BUY, Side.SELL


@dataclass
class RecordingBudget:
    """Fixed headroom, at most ``cap`` txs per plan; records what the planner asked."""

    h: Any = 1.0
    cap: int = 10**9
    calls: list[Any] = field(default_factory=list)

    @property
    def headroom(self) -> Any:
        self.calls.append("headroom")
        return self.h

    def can_spend(self, n: int) -> bool:
        self.calls.append(n)
        return n <= self.cap


def action_key(a: Action) -> tuple[Any, ...]:
    assert type(a) is Action
    return (
        a.kind,
        a.side,
        a.level,
        a.price_ticks,
        a.size_lots,
        None if a.order is None else id(a.order),
        a.urgent,
    )


def assert_same(got: Plan, want: Plan) -> None:
    assert type(got) is Plan
    assert [action_key(a) for a in got.actions] == [action_key(a) for a in want.actions]
    for a in got.actions:  # the very enum members, not equal ints
        assert type(a.kind) is ActionKind and type(a.side) is Side and type(a.urgent) is bool
    assert [id(o) for o in got.kept] == [id(o) for o in want.kept]
    assert [id(o) for o in got.waiting] == [id(o) for o in want.waiting]
    assert type(got.actions) is tuple and type(got.kept) is tuple
    assert type(got.waiting) is tuple
    assert got.deferred == want.deferred and type(got.deferred) is int
    assert got.degrade is want.degrade
    assert got == want  # dataclass equality on top (orders compare by value there)


# --- generators ---------------------------------------------------------------------------------

STATUSES = list(OrderStatus)


@st.composite
def ladder(draw: st.DrawFn, side: Side, max_n: int = 6) -> list[tuple[int, int]]:
    n = draw(st.integers(0, max_n))
    if draw(st.integers(0, 4)) == 0:  # any prices: unsorted, repeated, crossed
        return [(draw(st.integers(85, 125)), draw(st.integers(-2, 25))) for _ in range(n)]
    top = draw(st.integers(90, 115))
    step = draw(st.integers(1, 3))
    sign = -1 if side is B else 1
    return [(top + sign * i * step, draw(st.sampled_from((5, 10, 10, 20)))) for i in range(n)]


@st.composite
def orders(draw: st.DrawFn, max_n: int = 10) -> list[Order]:
    out = []
    n = draw(st.integers(0, max_n))
    cois = draw(st.lists(st.integers(1, 40), min_size=n, max_size=n))
    for coi in cois:  # repeated client order indexes on purpose (sort stability)
        status = draw(
            st.sampled_from(STATUSES + [OrderStatus.OPEN] * 6 + [OrderStatus.PARTIALLY_FILLED] * 2)
        )
        size = draw(st.integers(1, 30))
        filled = draw(st.integers(0, size))
        age = draw(st.sampled_from((0, 1, S, AGE - 1, AGE, AGE + 1, 10 * AGE)))
        out.append(
            Order(
                client_order_index=coi,
                market=0,
                side=draw(st.sampled_from((B, A))),
                price_ticks=draw(st.integers(80, 130)),
                size_lots=size,
                tif=TimeInForce.POST_ONLY,
                expiry_ms=1,
                status=status,
                filled_lots=filled,
                created_ns=NOW - age,
            )
        )
    return out


@st.composite
def params(draw: st.DrawFn) -> PlannerParams:
    lo, mid, hi = sorted(
        draw(
            st.lists(
                st.sampled_from((0.0, 0.05, 0.1, 0.25, 0.3, 0.5, 0.9, 1.0)), min_size=3, max_size=3
            )
        )
    )
    return PlannerParams(
        price_tolerance_ticks=draw(st.integers(0, 4)),
        size_tolerance_lots=draw(st.integers(0, 6)),
        max_order_age_ns=draw(st.sampled_from((0, AGE, AGE, S))),
        max_inflight=draw(st.integers(1, 16)),
        wide_below=hi,
        few_levels_below=mid,
        one_side_below=lo,
        wide_factor=draw(st.integers(1, 3)),
        degraded_levels=draw(st.integers(1, 3)),
    )


@st.composite
def budgets(draw: st.DrawFn) -> Any:
    if draw(st.integers(0, 3)) == 0:
        return UNLIMITED
    h = draw(st.one_of(st.sampled_from((0.0, 0.05, 0.1, 0.25, 0.5, 1.0)), st.floats(0.0, 1.0)))
    return RecordingBudget(h=h, cap=draw(st.integers(0, 12)))


@st.composite
def cases(draw: st.DrawFn) -> dict[str, Any]:
    live = draw(orders())
    known = [o.client_order_index for o in live]
    busy_ids = draw(st.lists(st.sampled_from([*known, 99]), max_size=4)) if known else []
    busy_kind = draw(st.sampled_from((set, frozenset, list, tuple)))
    no_create = draw(st.sampled_from(((), (B,), (A,), (B, A), {A}, frozenset({B}), [A])))
    # Modifies the venue has not shown (ModifyIntents.pending): price, total size, deadline on
    # either side of now; in the strategy their orders are busy too, here not always.
    intents: dict[int, tuple[int, int, int]] | None = None
    if known and draw(st.booleans()):
        intents = {}
        for coi in draw(st.lists(st.sampled_from([*known, 98]), max_size=4)):
            intents[coi] = (
                draw(st.integers(80, 130)),
                draw(st.integers(0, 12)),
                NOW + draw(st.sampled_from((-1, 0, 1, S))),
            )
            if draw(st.booleans()):
                busy_ids.append(coi)
    return {
        "bids": draw(ladder(B)),
        "asks": draw(ladder(A)),
        "live": live,
        "now_ns": NOW,
        "params": draw(params()),
        "inflight": draw(st.integers(0, 18)),
        "budget": draw(budgets()),
        "position_lots": draw(st.integers(-3, 3)),
        "busy": busy_kind(busy_ids),
        "no_create": no_create,
        "intents": intents,
    }


@pytest.fixture
def handovers(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the calls the compiled planner hands to the reference (inputs its C path does not
    take), so a test can tell which path it compared."""
    count = [0]
    ref = mmfast._core.plan._reference_plan

    def counting(*args: Any, **kw: Any) -> Plan:
        count[0] += 1
        return ref(*args, **kw)

    monkeypatch.setattr(mmfast._core.plan, "_reference_plan", counting)
    return count


def fresh(kw: dict[str, Any]) -> dict[str, Any]:
    """The inputs with a fresh copy of a recording budget (each planner gets its own log)."""
    b = kw["budget"]
    return {**kw, "budget": RecordingBudget(b.h, b.cap)} if isinstance(b, RecordingBudget) else kw


def call(fn: Callable[..., Plan], kw: dict[str, Any]) -> Plan:
    k = dict(kw)
    return fn(k.pop("bids"), k.pop("asks"), k.pop("live"), **k)


def run_both(kw: dict[str, Any]) -> tuple[Plan, Plan]:
    """Both plans for the same inputs; both planners must ask the budget the same things."""
    plans, logs = [], []
    for fn in (compiled_plan, reference_plan):
        k = fresh(kw)
        plans.append(call(fn, k))
        logs.append(getattr(k["budget"], "calls", None))
    assert logs[0] == logs[1]
    return plans[0], plans[1]


def features(kw: dict[str, Any], plan: Plan) -> set[str]:
    """What a plan exercised (the generator must reach every branch, see below)."""
    out = {f"degrade:{plan.degrade.name}"}
    kinds = [a.kind for a in plan.actions]
    out.update(f"action:{k.name}" for k in kinds)
    if any(a.urgent for a in plan.actions):
        out.add("urgent")
    if any(a.kind is ActionKind.CANCEL and a.level >= 0 for a in plan.actions):
        out.add("replace")
    if plan.deferred:
        out.add("deferred")
    if plan.waiting:
        out.add("waiting")
    if plan.kept and not plan.actions:
        out.add("all-kept")
    budget = kw["budget"]
    if (
        isinstance(budget, RecordingBudget)
        and budget.cap < 10**9
        and any(isinstance(c, int) and c > budget.cap for c in budget.calls)
    ):
        out.add("budget-refused")
    if kw["no_create"] and plan.actions:
        out.add("no-create")
    live = {o.client_order_index: o for o in kw["live"]}
    for coi, (price, _, deadline) in (kw.get("intents") or {}).items():
        o = live.get(coi)
        if o is not None and deadline > kw["now_ns"] and price != o.price_ticks:
            out.add("intent")  # an order planned at a pending modify's price
    return out


# --- properties ---------------------------------------------------------------------------------


def test_compiled_plan_equals_reference(handovers: list[int]) -> None:
    seen: set[str] = set()

    @PROFILE
    @given(cases())
    def check(kw: dict[str, Any]) -> None:
        got, want = run_both(kw)
        assert_same(got, want)
        k = fresh(kw)
        seen.update(features(k, call(reference_plan, k)))

    check()
    # Not a vacuous comparison: every plan came from the C path, and the random inputs reached
    # every kind of decision.
    assert handovers[0] == 0
    wanted = (
        {f"degrade:{d.name}" for d in Degrade}
        | {f"action:{k.name}" for k in ActionKind}
        | {"urgent", "replace", "deferred", "waiting", "all-kept", "budget-refused", "no-create"}
        | {"intent"}
    )
    assert wanted <= seen, wanted - seen


@PROFILE
@given(cases(), st.randoms(use_true_random=False))
def test_shapes_of_live(kw: dict[str, Any], rnd: Any) -> None:
    """Shuffled ``live`` given as a list, a tuple or a one-shot iterator: the reference's plan
    for the same sequence."""
    live = list(kw["live"])
    rnd.shuffle(live)
    want = call(reference_plan, fresh({**kw, "live": live}))
    for shaped in (live, tuple(live), iter(live)):
        assert_same(call(compiled_plan, fresh({**kw, "live": shaped})), want)


def test_bounds_and_fallbacks(handovers: list[int]) -> None:
    """Values at and past the C path's int64 bounds (prices 2**61, sizes 2**60, times 2**62),
    huge tolerances and ages, and more orders or levels than MAX_PER_SIDE: the plan is the
    reference's wherever it is computed (both paths are reached)."""
    runs = [0]

    @EDGE_PROFILE
    @given(st.data())
    def check(data: st.DataObject) -> None:
        runs[0] += 1
        bounds_case(data)

    check()
    assert 0 < handovers[0] < runs[0]


EXTREME_FIELDS = (
    "none",
    "target_price",
    "target_size",
    "price",
    "size",
    "filled",
    "coi",
    "created",
    "now",
    "ptol",
    "stol",
    "age",
    "factor",
    "inflight",
    "position",
    "n_levels",
    "n_orders",
)


def bounds_case(data: st.DataObject) -> None:
    # One field at a time goes to the edge: values just under and over the C path's bounds.
    which = data.draw(st.sampled_from(EXTREME_FIELDS))
    big = data.draw(st.sampled_from((2**60, 2**61, 2**62, 2**63, 2**64)))
    edge = data.draw(st.sampled_from((1, -1))) * (big + data.draw(st.integers(-2, 1)))

    def val(name: str, v: int) -> int:
        return edge if which == name and data.draw(st.booleans()) else v

    n_lv = MAX_PER_SIDE + data.draw(st.integers(-1, 1)) if which == "n_levels" else 3
    n_or = 2 * MAX_PER_SIDE + data.draw(st.integers(-2, 3)) if which == "n_orders" else 6
    bids = [(val("target_price", 100 - i), val("target_size", 10)) for i in range(n_lv)]
    asks = [(val("target_price", 104 + i), 10) for i in range(data.draw(st.integers(0, 3)))]
    live = [
        Order(
            client_order_index=val("coi", i + 1),
            market=0,
            side=B if i % 2 else A,
            price_ticks=val("price", data.draw(st.integers(95, 109))),
            size_lots=val("size", 10),
            filled_lots=val("filled", i % 3),
            tif=TimeInForce.POST_ONLY,
            expiry_ms=1,
            status=data.draw(
                st.sampled_from((OrderStatus.OPEN, OrderStatus.OPEN, OrderStatus.UNKNOWN))
            ),
            created_ns=val("created", NOW - data.draw(st.sampled_from((0, AGE)))),
        )
        for i in range(n_or)
    ]
    p = PlannerParams(
        price_tolerance_ticks=abs(val("ptol", 1)),
        size_tolerance_lots=abs(val("stol", 0)),
        max_order_age_ns=abs(val("age", AGE)),
        wide_factor=abs(val("factor", 2)),
    )
    kw = {
        "bids": bids,
        "asks": asks,
        "live": live,
        "now_ns": val("now", NOW),
        "params": p,
        "inflight": val("inflight", data.draw(st.integers(0, 4))),
        "budget": RecordingBudget(h=data.draw(st.sampled_from((1.0, 0.3, 0.2, 0.0)))),
        "position_lots": val("position", data.draw(st.integers(-1, 1))),
    }
    got, want = run_both(kw)
    assert_same(got, want)


class DuckOrder:
    """Not an ``Order``: planned by the reference (same plan, attribute access)."""

    def __init__(self, o: Order) -> None:
        self.__dict__.update({k: getattr(o, k) for k in Order.__dataclass_fields__})

    @property
    def remaining_lots(self) -> int:
        return self.size_lots - self.filled_lots  # type: ignore[attr-defined]


class FloatBudget(UnlimitedBudget):
    """A subclass: its headroom and can_spend are asked like any budget's."""

    @property
    def headroom(self) -> float:
        return 0.3


@EDGE_PROFILE
@given(
    cases(),
    st.sampled_from(
        (
            "duck",
            "int_status",
            "float_tol",
            "busy_dict",
            "int_headroom",
            "subclass_budget",
            "int_thresholds",
            "iterator",
        )
    ),
)
def test_other_input_shapes(kw: dict[str, Any], shape: str) -> None:
    """Inputs of other shapes than the bot's: some still take the C path (IntEnum as plain
    ints, a dict ``busy``, int thresholds), the rest go to the reference; equal either way."""
    kw = dict(kw)
    if shape == "duck":
        kw["live"] = [DuckOrder(o) for o in kw["live"]]
    elif shape == "int_status":
        for o in kw["live"]:
            o.status = int(o.status)  # type: ignore[assignment]
            o.side = int(o.side)  # type: ignore[assignment]
    elif shape == "float_tol":
        kw["params"] = PlannerParams(price_tolerance_ticks=1.5)  # type: ignore[arg-type]
    elif shape == "busy_dict":
        kw["busy"] = dict.fromkeys(kw["busy"])
    elif shape == "int_headroom":
        kw["budget"] = RecordingBudget(h=0)
    elif shape == "subclass_budget":
        kw["budget"] = FloatBudget()
    elif shape == "int_thresholds":
        kw["params"] = PlannerParams(wide_below=1, few_levels_below=0, one_side_below=0)
    if shape == "iterator":
        live = list(kw["live"])
        got = call(compiled_plan, fresh({**kw, "live": iter(live)}))
        want = call(reference_plan, fresh({**kw, "live": iter(live)}))
    else:
        got, want = run_both(kw)
    assert_same(got, want)


def test_same_errors_as_the_reference() -> None:
    """Malformed inputs fail the same way (the reference takes them over)."""
    good = Order(
        client_order_index=1,
        market=0,
        side=B,
        price_ticks=100,
        size_lots=10,
        tif=TimeInForce.POST_ONLY,
        expiry_ms=1,
        status=OrderStatus.OPEN,
    )
    bad_side = Order(
        client_order_index=2,
        market=0,
        side=5,
        price_ticks=100,  # type: ignore
        size_lots=10,
        tif=TimeInForce.POST_ONLY,
        expiry_ms=1,
        status=OrderStatus.OPEN,
    )
    for args, err in (
        (([(100, 10, 1)], [], [good]), ValueError),  # a level of three
        (([(100, 10)], [], [bad_side]), KeyError),  # by_side[5]
        (([(100, 10)], [], [good, object()]), AttributeError),  # no .status
    ):
        for fn in (compiled_plan, reference_plan):
            with pytest.raises(err):
                fn(*args, now_ns=NOW)


def test_budget_errors_propagate_and_release() -> None:
    """An exception from the budget reaches the caller; the orders are not leaked (the
    compiled planner holds references while it plans)."""
    import sys

    class Boom(RecordingBudget):
        def can_spend(self, n: int) -> bool:
            raise RuntimeError("budget down")

    o = Order(
        client_order_index=1,
        market=0,
        side=B,
        price_ticks=90,
        size_lots=10,
        tif=TimeInForce.POST_ONLY,
        expiry_ms=1,
        status=OrderStatus.OPEN,
    )
    before = sys.getrefcount(o)
    for _ in range(50):
        with pytest.raises(RuntimeError, match="budget down"):
            compiled_plan([(100, 10)], [], [o], now_ns=NOW, budget=Boom())
    assert sys.getrefcount(o) == before
    plan = compiled_plan([(100, 10)], [], [o], now_ns=NOW)
    assert plan.actions[0].order is o and plan.degrade is Degrade.NONE
    del plan
    assert sys.getrefcount(o) == before
