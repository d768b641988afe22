"""Pure-Python reference of the requote planner (``mmfast._core.plan.plan_requotes``).

The planner as first written in Python, unchanged in behaviour: the oracle of the property test
(``tests/unit/test_planner_props.py``), the "same plan in Python" baseline of the ``plan``
benchmark, and the path the compiled planner hands inputs to that it does not take in C (more
than 64 levels or orders per side, values beyond its int64 bounds, non-int fields, duck-typed
orders or parameters). The rules are described in ``mmfast.strategy.planner`` and in
docs/risk.md ("Requote planner").
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from mmfast.core.plan_types import (
    MAX_INFLIGHT_PER_MARKET,
    UNLIMITED,
    Action,
    ActionKind,
    BudgetView,
    Degrade,
    Plan,
    PlannerParams,
    RateBudget,
    UnlimitedBudget,
)
from mmfast.core.types import Order, OrderStatus, Side

__all__ = [
    "MAX_INFLIGHT_PER_MARKET",
    "UNLIMITED",
    "Action",
    "ActionKind",
    "BudgetView",
    "Degrade",
    "Plan",
    "PlannerParams",
    "RateBudget",
    "UnlimitedBudget",
    "plan_requotes",
]

_SURPLUS_LEVEL: Final = 1_000  # rank offset of surplus cancels (after every real level)
_MODIFIABLE: Final = frozenset({OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED})
_IN_MOTION: Final = frozenset({OrderStatus.PENDING_NEW, OrderStatus.UNKNOWN})
_DEFAULT_PARAMS: Final = PlannerParams()  # frozen: a shared default is safe


@dataclass(slots=True)
class _Group:
    """Actions sent together or not at all (a replace: create, then cancel)."""

    key: tuple[int, int, int]  # (not urgent, level, side): lower goes first
    actions: list[Action]  # in send order
    side: Side  # side of the actions


def _widen(tol: int, factor: int, steps: int) -> int:
    for _ in range(steps):
        tol = (tol + 1) * factor - 1
    return tol


def _price(o: Order, exp: Mapping[int, tuple[int, int]]) -> int:
    """The order's price as planned: a pending modify's, else the venue's."""
    e = exp.get(o.client_order_index) if exp else None
    return o.price_ticks if e is None else e[0]


def _remaining(o: Order, exp: Mapping[int, tuple[int, int]]) -> int:
    """The order's remaining lots as planned: a pending modify's, else the venue's."""
    e = exp.get(o.client_order_index) if exp else None
    return o.size_lots - o.filled_lots if e is None else e[1]


def _better(side: Side, a: int, b: int) -> bool:
    """Price ``a`` is more aggressive than ``b`` on ``side``."""
    return a > b if side is Side.BUY else a < b


def plan_requotes(
    bids: Sequence[tuple[int, int]],
    asks: Sequence[tuple[int, int]],
    live: Iterable[Order],
    *,
    now_ns: int,
    params: PlannerParams = _DEFAULT_PARAMS,
    inflight: int = 0,
    budget: RateBudget = UNLIMITED,
    position_lots: int = 0,
    busy: Collection[int] = (),
    no_create: Collection[Side] = (),
    intents: Mapping[int, tuple[int, int, int]] | None = None,
) -> Plan:
    """Plan the txs that move ``live`` toward the target ladder.

    ``bids``/``asks``: target levels ``(price_ticks, size_lots)``, best first (e.g.
    ``QuoteEngine.bids()``). ``live``: our orders of this market (any status; terminal and
    PENDING_CANCEL ones are ignored). ``inflight``: order txs of this market already in
    flight. ``busy``: client order indexes with a tx in flight (e.g. a modify not yet acked).
    ``position_lots`` picks the side kept in ONE_SIDE mode. ``no_create``: sides on which no
    new order may be created now (e.g. the filled-order delay); modifies and cancels still go.
    ``intents``: modifies the venue has not shown yet (coi -> (price, total size, deadline ns),
    ``ModifyIntents.pending``): until its deadline such an order is planned at the price and
    remaining it will have (it is busy meanwhile).
    """
    headroom = budget.headroom
    if headroom >= params.wide_below:
        degrade = Degrade.NONE
    elif headroom >= params.few_levels_below:
        degrade = Degrade.WIDE
    elif headroom >= params.one_side_below:
        degrade = Degrade.FEW_LEVELS
    else:
        degrade = Degrade.ONE_SIDE
    steps = min(int(degrade), 2)
    ptol = _widen(params.price_tolerance_ticks, params.wide_factor, steps)
    stol = _widen(params.size_tolerance_lots, params.wide_factor, steps)
    if degrade >= Degrade.FEW_LEVELS:
        bids = bids[: params.degraded_levels]
        asks = asks[: params.degraded_levels]
    active_sides: frozenset[Side] = frozenset((Side.BUY, Side.SELL))
    if degrade is Degrade.ONE_SIDE:
        if position_lots > 0:
            active_sides = frozenset((Side.SELL,))
        elif position_lots < 0:
            active_sides = frozenset((Side.BUY,))
        else:
            active_sides = frozenset()

    by_side: dict[Side, list[Order]] = {Side.BUY: [], Side.SELL: []}
    for o in live:
        if o.status in _MODIFIABLE or o.status in _IN_MOTION:
            by_side[o.side].append(o)
    exp: dict[int, tuple[int, int]] = {}
    if intents:
        for side_orders in by_side.values():
            for o in side_orders:
                pend = intents.get(o.client_order_index)
                if pend is not None and pend[2] > now_ns:
                    exp[o.client_order_index] = (pend[0], max(0, pend[1] - o.filled_lots))
    max_age = params.max_order_age_ns
    # Fast path, the common case between price moves: both sides on target, nothing to send.
    on_bids = None
    if degrade is not Degrade.ONE_SIDE:
        on_bids = _on_target(
            bids,
            by_side[Side.BUY],
            -1,
            ptol,
            stol,
            now_ns,
            0 if Side.BUY in no_create else max_age,
            busy,
            exp,
        )
    if on_bids is not None:
        on_asks = _on_target(
            asks,
            by_side[Side.SELL],
            1,
            ptol,
            stol,
            now_ns,
            0 if Side.SELL in no_create else max_age,
            busy,
            exp,
        )
        if on_asks is not None:
            return Plan(
                actions=(), kept=tuple(on_bids + on_asks), waiting=(), deferred=0, degrade=degrade
            )

    groups: list[_Group] = []
    kept: list[Order] = []
    waiting: list[Order] = []
    targets = {Side.BUY: bids, Side.SELL: asks}
    for side in (Side.BUY, Side.SELL):
        _plan_side(
            side,
            targets[side],
            by_side[side],
            now_ns,
            params,
            ptol,
            stol,
            busy,
            side in no_create,
            side in active_sides,
            degrade,
            groups,
            kept,
            waiting,
            exp,
        )

    # Rank: urgent first, then level by level with both sides interleaved.
    groups.sort(key=lambda g: g.key)
    slots = max(0, params.max_inflight - inflight)
    chosen: list[_Group] = []
    spent = 0  # txs drawn from the normal budget
    used = 0  # in-flight slots taken
    deferred = 0
    for g in groups:
        n = len(g.actions)
        urgent_cancels = all(a.urgent and a.kind is ActionKind.CANCEL for a in g.actions)
        if used + n <= slots and (urgent_cancels or budget.can_spend(spent + n)):
            chosen.append(g)
            used += n
            if not urgent_cancels:
                spent += n
        else:
            deferred += n
    # Never leave a side dark with a non-empty target: hold back its non-urgent cancels.
    for side in (Side.BUY, Side.SELL):
        if not targets[side] or not by_side[side]:
            continue
        n_after = len(by_side[side])
        for g in chosen:
            if g.side is side:
                for a in g.actions:
                    n_after += (a.kind is ActionKind.CREATE) - (a.kind is ActionKind.CANCEL)
        if n_after <= 0:
            held = [
                g
                for g in chosen
                if g.side is side
                and any(a.kind is ActionKind.CANCEL and not a.urgent for a in g.actions)
            ]
            for g in held:
                chosen.remove(g)
                deferred += len(g.actions)
    actions = tuple(a for g in chosen for a in g.actions)
    return Plan(
        actions=actions,
        kept=tuple(kept),
        waiting=tuple(waiting),
        deferred=deferred,
        degrade=degrade,
    )


def _on_target(
    target: Sequence[tuple[int, int]],
    orders: list[Order],
    sign: int,
    ptol: int,
    stol: int,
    now: int,
    max_age: int,
    busy: Collection[int],
    exp: Mapping[int, tuple[int, int]],
) -> list[Order] | None:
    """The side's orders best first when they pair rank by rank with the levels, each within
    tolerance, none in flight and none stale: the side is kept whole. Else None."""
    if len(orders) != len(target):
        return None
    if not orders:
        return orders
    ordered = sorted(orders, key=lambda o: (sign * _price(o, exp), o.client_order_index))
    for o, (tp, tq) in zip(ordered, target, strict=True):
        if (
            abs(_price(o, exp) - tp) > ptol
            or abs(_remaining(o, exp) - tq) > stol
            or o.status not in _MODIFIABLE
            or o.client_order_index in busy
            or (max_age > 0 and now - o.created_ns >= max_age)
        ):
            return None
    return ordered


def _plan_side(
    side: Side,
    target: Sequence[tuple[int, int]],
    orders: list[Order],
    now: int,
    params: PlannerParams,
    ptol: int,
    stol: int,
    busy: Collection[int],
    no_create: bool,
    active: bool,
    degrade: Degrade,
    groups: list[_Group],
    kept: list[Order],
    waiting: list[Order],
    exp: Mapping[int, tuple[int, int]],
) -> None:
    sv = int(side)
    # Best first: bids by price descending, asks ascending; ties by client order index.
    sign = -1 if side is Side.BUY else 1
    orders = sorted(orders, key=lambda o: (sign * _price(o, exp), o.client_order_index))
    max_age = params.max_order_age_ns

    def is_busy(o: Order) -> bool:
        return o.status in _IN_MOTION or o.client_order_index in busy

    def is_stale(o: Order) -> bool:
        # Replacing needs a create: where none may go out, an old order is modified instead.
        return (
            max_age > 0
            and active
            and not no_create
            and not is_busy(o)
            and now - o.created_ns >= max_age
        )

    best = target[0][0] if target else None

    def urgent(o: Order) -> bool:
        # Past the best target (beyond tolerance), or a side that should be empty.
        return best is None or _better(side, _price(o, exp), best + (ptol if sign < 0 else -ptol))

    whole = _on_target(
        target,
        orders,
        sign,
        ptol,
        stol,
        now,
        max_age if active and not no_create else 0,
        busy,
        exp,
    )
    if whole is not None:
        kept.extend(whole)
        return
    n_levels = len(target)
    covered = [False] * n_levels
    used: set[int] = set()  # indexes into orders
    # 1. Keep what is within tolerance (closest price first).
    for lvl, (tp, tq) in enumerate(target):
        pick = -1
        pick_dist = 0
        for i, o in enumerate(orders):
            if i in used or is_stale(o):
                continue
            d = abs(_price(o, exp) - tp)
            if (
                d <= ptol
                and abs(_remaining(o, exp) - tq) <= stol
                and (
                    pick < 0
                    or (d, o.client_order_index) < (pick_dist, orders[pick].client_order_index)
                )
            ):
                pick, pick_dist = i, d
        if pick >= 0:
            used.add(pick)
            covered[lvl] = True
            (waiting if is_busy(orders[pick]) else kept).append(orders[pick])
    free_levels = [lvl for lvl in range(n_levels) if not covered[lvl]]
    rest = [i for i in range(len(orders)) if i not in used]
    movable = [i for i in rest if not is_stale(orders[i])]
    stale = [i for i in rest if is_stale(orders[i])]
    # 2. Pair the rest with the free levels, best first: in-flight orders wait on theirs.
    pairs = list(zip(movable, free_levels, strict=False))
    for i, lvl in pairs:
        o = orders[i]
        tp, tq = target[lvl]
        if is_busy(o):
            waiting.append(o)
        elif not active and not urgent(o):
            waiting.append(o)  # degraded to the other side: leave it
        else:
            groups.append(
                _Group(
                    (0 if urgent(o) else 1, lvl, sv),
                    [Action(ActionKind.MODIFY, side, lvl, tp, tq, o, urgent(o))],
                    side,
                )
            )
    free_levels = free_levels[len(pairs) :]
    surplus = movable[len(pairs) :]
    # 3. Replace stale orders on free levels (create first: the side stays lit), create the
    # rest, cancel what is left over.
    for lvl in free_levels:
        tp, tq = target[lvl]
        if no_create or not active:
            continue
        create = Action(ActionKind.CREATE, side, lvl, tp, tq)
        if stale:
            o = orders[stale.pop(0)]
            cancel = Action(
                ActionKind.CANCEL, side, lvl, _price(o, exp), _remaining(o, exp), o, urgent(o)
            )
            groups.append(_Group((1, lvl, sv), [create, cancel], side))
        else:
            groups.append(_Group((1, lvl, sv), [create], side))
    for rank, i in enumerate(stale + surplus):
        o = orders[i]
        if is_busy(o):
            waiting.append(o)
            continue
        u = urgent(o)
        # Degraded: a surplus order behind the target costs nothing where it is; keep it.
        if not u and (degrade >= Degrade.FEW_LEVELS or not active):
            waiting.append(o)
            continue
        groups.append(
            _Group(
                (0 if u else 1, _SURPLUS_LEVEL + rank, sv),
                [Action(ActionKind.CANCEL, side, -1, _price(o, exp), _remaining(o, exp), o, u)],
                side,
            )
        )
