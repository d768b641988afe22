"""Data types of the requote planner: parameters, budget views, actions and plans.

Shared by the compiled planner (``mmfast._core.plan``), its pure-Python twin
(``mmfast.reference.planner``) and re-exported by ``mmfast.strategy.planner``, where the rules
are described (and in docs/risk.md, "Requote planner"). They live outside ``mmfast.strategy`` so
the compiled module can import them without importing the strategies, which import the planner
(an import cycle through a half-initialized extension module).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING, Any, Final, Protocol, runtime_checkable

from mmfast.core.types import Order, Side

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
]

# Order txs accepted but not yet executed, per market (the venue's cap; 21506 beyond).
MAX_INFLIGHT_PER_MARKET: Final = 16


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
    and ``normal_caps`` per limit, as ``mmfast.connector.lighter.budget.RateBudget`` gives, or
    its cheaper ``order_room()``).

    Headroom is the smallest free share of the ``sendtx`` and ``ws_msgs`` limits; a blocked
    budget (Retry-After, backoff) or one down to its reserve has none. A batch of ``n`` txs is
    one WebSocket frame: ``n`` against sendtx, 1 against ws_msgs.

    Reading ``headroom`` takes a snapshot of the budget that the following ``can_spend`` calls
    answer from: the planner reads headroom once per plan, then asks ``can_spend`` per action
    group, so one plan sees one consistent budget and pays for one read (a few us each)."""

    __slots__ = ("_budget", "_order_room", "_snap")
    _BLOCKED_LEVELS: Final = frozenset({"RESERVE_ONLY", "BLOCKED"})

    def __init__(self, budget: Any) -> None:
        self._budget = budget  # the connector's RateBudget
        self._order_room = getattr(budget, "order_room", None)
        # (usable, sendtx used, sendtx cap, ws used, ws cap) at the last headroom read
        self._snap: tuple[bool, int, int, int, int] | None = None

    def snapshot(self) -> tuple[bool, int, int, int, int]:
        """A fresh snapshot (usable, sendtx used, sendtx cap, ws used, ws cap): what a
        compiled plan reads once per plan (``mmfast._core.pipeline``)."""
        return self._take()

    def _take(self) -> tuple[bool, int, int, int, int]:
        snap: tuple[bool, int, int, int, int]
        if self._order_room is not None:
            snap = self._order_room()
        else:
            st = self._budget.state()
            usable = getattr(st.level, "name", str(st.level)) not in self._BLOCKED_LEVELS
            snap = (
                usable,
                st.used.get("sendtx", 0),
                st.normal_caps.get("sendtx", 0),
                st.used.get("ws_msgs", 0),
                st.normal_caps.get("ws_msgs", 0),
            )
        self._snap = snap
        return snap

    def _room(self, n: int, snap: tuple[bool, int, int, int, int]) -> float:
        usable, s_used, s_cap, w_used, w_cap = snap
        if not usable or s_cap <= 0 or w_cap <= 0:
            return -1.0
        s_free = s_cap - s_used - n
        w_free = w_cap - w_used - (1 if n else 0)
        if s_free < 0 or w_free < 0:
            return -1.0
        return min(1.0, s_free / s_cap, w_free / w_cap)

    @property
    def headroom(self) -> float:
        return max(0.0, self._room(0, self._take()))

    def can_spend(self, n: int) -> bool:
        snap = self._snap
        return self._room(n, snap if snap is not None else self._take()) >= 0.0


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
