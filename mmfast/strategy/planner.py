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

``plan_requotes`` is compiled (``mmfast._core.plan``); ``mmfast.reference.planner`` is its
pure-Python twin, held equal to it by a property test and taking the inputs the compiled path
does not (see ``mmfast._core.plan``). The types live in ``mmfast.core.plan_types``.

Reference: docs/risk.md ("Requote planner").
"""

from __future__ import annotations

from mmfast._core.plan import plan_requotes
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
