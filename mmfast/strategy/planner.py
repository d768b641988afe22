"""Requote planner: target ladder vs live orders -> keep / modify / cancel / create.

Pure and deterministic: the same inputs give the same plan, nothing is read from a clock or a
global. Integers only (ticks, lots, ns). For each side:

1. **Keep** a side whole when its orders pair rank by rank (best first) with the levels, each
   within the price and size tolerances; otherwise keep, level by level, a live order within
   tolerance of it (closest price first). Orders with a tx in flight (PENDING_NEW, UNKNOWN, or
   listed in ``busy``) are never acted on: they cover a level they match, or wait.
2. **Modify** the remaining orders onto the remaining levels, paired best-first (a modify is one
   tx and keeps the side lit; a cancel plus a create is two and may leave a gap).
3. **Create** for levels still uncovered; **replace** (create, then cancel) orders older than
   ``max_order_age_ns`` (a modify cannot renew the venue expiry); **cancel** the surplus.

Then the actions are ranked (risk-reducing first, then by level, both sides interleaved) and
sent while they fit the in-flight cap (order txs per market) and the rate budget. Near the
budget the plan degrades instead of running into 429s: wider tolerances, then fewer levels,
then only the side that reduces the position. A side that has orders and a non-empty target is
never left without one by the plan.

Reference: docs/risk.md ("Requote planner").
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING, Any, Final, Protocol, runtime_checkable

from mmfast.core.types import Order, OrderStatus, Side

if TYPE_CHECKING:
    from mmfast.conf.schema import MarketMakingConfig

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

# Order txs accepted but not yet executed, per market (lighter-protocol.md §9; 21506 beyond).
MAX_INFLIGHT_PER_MARKET: Final = 16
_SURPLUS_LEVEL: Final = 1_000  # rank offset of surplus cancels (after every real level)
_MODIFIABLE: Final = frozenset({OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED})
_IN_MOTION: Final = frozenset({OrderStatus.PENDING_NEW, OrderStatus.UNKNOWN})


@runtime_checkable
class RateBudget(Protocol):
    """What the planner needs to know of the connector's rate budget."""

    @property
    def headroom(self) -> float:
        """Share of the normal (non-reserved) order budget still free, 0..1."""
        ...

    def can_spend(self, n: int) -> bool:
        """True when ``n`` order txs can go out now without touching the reserve."""
        ...


class UnlimitedBudget:
    """A budget that is never short (simulator premium tier, tests)."""

    __slots__ = ()

    @property
    def headroom(self) -> float:
        return 1.0

    def can_spend(self, n: int) -> bool:
        return True


UNLIMITED: Final = UnlimitedBudget()


class BudgetView:
    """``RateBudget`` over the connector's budget object (``state()`` with ``level``, ``used``
    and ``normal_caps`` per limit, as ``mmfast.connector.lighter.budget.RateBudget`` gives).

    Headroom is the smallest free share of the ``sendtx`` and ``ws_msgs`` limits; a blocked
    budget (Retry-After, backoff) or one down to its reserve has none. A batch of ``n`` txs is
    one WebSocket frame: ``n`` against sendtx, 1 against ws_msgs."""

    __slots__ = ("_budget",)
    _BLOCKED_LEVELS: Final = frozenset({"RESERVE_ONLY", "BLOCKED"})

    def __init__(self, budget: Any) -> None:
        self._budget = budget  # the connector's RateBudget

    def _room(self, n: int) -> float:
        st = self._budget.state()
        if getattr(st.level, "name", str(st.level)) in self._BLOCKED_LEVELS:
            return -1.0
        share = 1.0
        for limit, cost in (("sendtx", n), ("ws_msgs", 1 if n else 0)):
            cap = st.normal_caps.get(limit, 0)
            if cap <= 0:
                return -1.0
            free = cap - st.used.get(limit, 0) - cost
            if free < 0:
                return -1.0
            share = min(share, free / cap)
        return share

    @property
    def headroom(self) -> float:
        return max(0.0, self._room(0))

    def can_spend(self, n: int) -> bool:
        return self._room(n) >= 0.0


class ActionKind(IntEnum):
    CREATE = 0
    MODIFY = 1
    CANCEL = 2


class Degrade(IntEnum):
    """How far the plan backed off to save rate budget."""

    NONE = 0
    WIDE = 1  # tolerances widened
    FEW_LEVELS = 2  # and only the first ``degraded_levels`` levels per side; surplus kept
    ONE_SIDE = 3  # and only the side that reduces the position (none when flat)


@dataclass(frozen=True, slots=True)
class Action:
    """One order tx to send. CREATE/MODIFY carry the new price and size (the size the order
    should have left on the book); CANCEL carries the order's current price and remaining."""

    kind: ActionKind  # what to send
    side: Side  # side of the order
    level: int  # target level (0 = best); surplus cancels: -1
    price_ticks: int  # new price (create/modify) or current price (cancel)
    size_lots: int  # new size (create/modify) or remaining size (cancel)
    order: Order | None = None  # the live order (modify/cancel)
    urgent: bool = False  # reduces risk (an order past the target, or a side with no target)


@dataclass(frozen=True, slots=True)
class Plan:
    """The planner's decision. ``actions`` are in send order."""

    actions: tuple[Action, ...]  # txs to send now
    kept: tuple[Order, ...]  # live orders left as they are, on target
    waiting: tuple[Order, ...]  # orders with a tx in flight, or left alone while degraded
    deferred: int  # txs wanted but held back (in-flight cap or budget); the next plan retries
    degrade: Degrade  # budget back-off applied

    @property
    def creates(self) -> tuple[Action, ...]:
        return tuple(a for a in self.actions if a.kind is ActionKind.CREATE)

    @property
    def modifies(self) -> tuple[Action, ...]:
        return tuple(a for a in self.actions if a.kind is ActionKind.MODIFY)

    @property
    def cancels(self) -> tuple[Action, ...]:
        return tuple(a for a in self.actions if a.kind is ActionKind.CANCEL)


@dataclass(frozen=True, slots=True)
class PlannerParams:
    """Tolerances, age, in-flight cap and the budget back-off thresholds."""

    price_tolerance_ticks: int = 0  # |live - target| price kept without a modify
    size_tolerance_lots: int = 0  # |live remaining - target| size kept without a modify
    max_order_age_ns: int = 0  # older orders are replaced (0: no limit)
    max_inflight: int = MAX_INFLIGHT_PER_MARKET  # order txs in flight per market, at most
    wide_below: float = 0.5  # headroom under this: WIDE
    few_levels_below: float = 0.25  # under this: FEW_LEVELS
    one_side_below: float = 0.1  # under this: ONE_SIDE
    wide_factor: int = 2  # tolerance t becomes (t + 1) * factor - 1 per degrade step
    degraded_levels: int = 1  # levels per side from FEW_LEVELS on

    def __post_init__(self) -> None:
        if self.price_tolerance_ticks < 0 or self.size_tolerance_lots < 0:
            raise ValueError("tolerances must be >= 0")
        if self.max_order_age_ns < 0:
            raise ValueError("max_order_age_ns must be >= 0")
        if not 1 <= self.max_inflight <= MAX_INFLIGHT_PER_MARKET:
            raise ValueError(f"max_inflight must be within 1..{MAX_INFLIGHT_PER_MARKET}")
        if not 0 <= self.one_side_below <= self.few_levels_below <= self.wide_below <= 1:
            raise ValueError("need 0 <= one_side_below <= few_levels_below <= wide_below <= 1")
        if self.wide_factor < 1 or self.degraded_levels < 1:
            raise ValueError("wide_factor and degraded_levels must be >= 1")

    @classmethod
    def from_config(cls, mm: MarketMakingConfig, **overrides: Any) -> PlannerParams:
        """From ``[strategy.market_making]``: refresh/size tolerance and max order age."""
        kw: dict[str, Any] = {
            "price_tolerance_ticks": mm.refresh_tolerance_ticks,
            "size_tolerance_lots": mm.size_tolerance_lots,
            "max_order_age_ns": round(mm.max_order_age_s * 1e9),
        }
        kw.update(overrides)
        return cls(**kw)


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


def _better(side: Side, a: int, b: int) -> bool:
    """Price ``a`` is more aggressive than ``b`` on ``side``."""
    return a > b if side is Side.BUY else a < b


def plan_requotes(
    bids: Sequence[tuple[int, int]],
    asks: Sequence[tuple[int, int]],
    live: Iterable[Order],
    *,
    now_ns: int,
    params: PlannerParams = PlannerParams(),  # frozen: a shared default is safe
    inflight: int = 0,
    budget: RateBudget = UNLIMITED,
    position_lots: int = 0,
    busy: Collection[int] = (),
    no_create: Collection[Side] = (),
) -> Plan:
    """Plan the txs that move ``live`` toward the target ladder.

    ``bids``/``asks``: target levels ``(price_ticks, size_lots)``, best first (e.g.
    ``QuoteEngine.bids()``). ``live``: our orders of this market (any status; terminal and
    PENDING_CANCEL ones are ignored). ``inflight``: order txs of this market already in
    flight. ``busy``: client order indexes with a tx in flight (e.g. a modify not yet acked).
    ``position_lots`` picks the side kept in ONE_SIDE mode. ``no_create``: sides on which no
    new order may be created now (e.g. the filled-order delay); modifies and cancels still go.
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
    max_age = params.max_order_age_ns
    # Fast path, the common case between price moves: both sides on target, nothing to send.
    on_bids = None
    if degrade is not Degrade.ONE_SIDE:
        on_bids = _on_target(bids, by_side[Side.BUY], -1, ptol, stol, now_ns,
                             0 if Side.BUY in no_create else max_age, busy)
    if on_bids is not None:
        on_asks = _on_target(asks, by_side[Side.SELL], 1, ptol, stol, now_ns,
                             0 if Side.SELL in no_create else max_age, busy)
        if on_asks is not None:
            return Plan(actions=(), kept=tuple(on_bids + on_asks), waiting=(), deferred=0,
                        degrade=degrade)

    groups: list[_Group] = []
    kept: list[Order] = []
    waiting: list[Order] = []
    targets = {Side.BUY: bids, Side.SELL: asks}
    for side in (Side.BUY, Side.SELL):
        _plan_side(side, targets[side], by_side[side], now_ns, params, ptol, stol, busy,
                   side in no_create, side in active_sides, degrade, groups, kept, waiting)

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
            held = [g for g in chosen if g.side is side
                    and any(a.kind is ActionKind.CANCEL and not a.urgent for a in g.actions)]
            for g in held:
                chosen.remove(g)
                deferred += len(g.actions)
    actions = tuple(a for g in chosen for a in g.actions)
    return Plan(actions=actions, kept=tuple(kept), waiting=tuple(waiting), deferred=deferred,
                degrade=degrade)


def _on_target(target: Sequence[tuple[int, int]], orders: list[Order], sign: int, ptol: int,
               stol: int, now: int, max_age: int, busy: Collection[int]) -> list[Order] | None:
    """The side's orders best first when they pair rank by rank with the levels, each within
    tolerance, none in flight and none stale: the side is kept whole. Else None."""
    if len(orders) != len(target):
        return None
    if not orders:
        return orders
    ordered = sorted(orders, key=lambda o: (sign * o.price_ticks, o.client_order_index))
    for o, (tp, tq) in zip(ordered, target, strict=True):
        if (abs(o.price_ticks - tp) > ptol or abs(o.size_lots - o.filled_lots - tq) > stol
                or o.status not in _MODIFIABLE or o.client_order_index in busy
                or (max_age > 0 and now - o.created_ns >= max_age)):
            return None
    return ordered


def _plan_side(side: Side, target: Sequence[tuple[int, int]], orders: list[Order], now: int,
               params: PlannerParams, ptol: int, stol: int, busy: Collection[int],
               no_create: bool, active: bool, degrade: Degrade, groups: list[_Group],
               kept: list[Order], waiting: list[Order]) -> None:
    sv = int(side)
    # Best first: bids by price descending, asks ascending; ties by client order index.
    sign = -1 if side is Side.BUY else 1
    orders = sorted(orders, key=lambda o: (sign * o.price_ticks, o.client_order_index))
    max_age = params.max_order_age_ns

    def is_busy(o: Order) -> bool:
        return o.status in _IN_MOTION or o.client_order_index in busy

    def is_stale(o: Order) -> bool:
        # Replacing needs a create: where none may go out, an old order is modified instead.
        return (max_age > 0 and active and not no_create and not is_busy(o)
                and now - o.created_ns >= max_age)

    best = target[0][0] if target else None

    def urgent(o: Order) -> bool:
        # Past the best target (beyond tolerance), or a side that should be empty.
        return best is None or _better(side, o.price_ticks, best + (ptol if sign < 0 else -ptol))

    whole = _on_target(target, orders, sign, ptol, stol, now,
                       max_age if active and not no_create else 0, busy)
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
            d = abs(o.price_ticks - tp)
            if d <= ptol and abs(o.remaining_lots - tq) <= stol and (
                    pick < 0 or (d, o.client_order_index)
                    < (pick_dist, orders[pick].client_order_index)):
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
            groups.append(_Group((0 if urgent(o) else 1, lvl, sv),
                                 [Action(ActionKind.MODIFY, side, lvl, tp, tq, o, urgent(o))],
                                 side))
    free_levels = free_levels[len(pairs):]
    surplus = movable[len(pairs):]
    # 3. Replace stale orders on free levels (create first: the side stays lit), create the
    # rest, cancel what is left over.
    for lvl in free_levels:
        tp, tq = target[lvl]
        if no_create or not active:
            continue
        create = Action(ActionKind.CREATE, side, lvl, tp, tq)
        if stale:
            o = orders[stale.pop(0)]
            cancel = Action(ActionKind.CANCEL, side, lvl, o.price_ticks, o.remaining_lots, o,
                            urgent(o))
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
        groups.append(_Group((0 if u else 1, _SURPLUS_LEVEL + rank, sv),
                             [Action(ActionKind.CANCEL, side, -1, o.price_ticks,
                                     o.remaining_lots, o, u)], side))
