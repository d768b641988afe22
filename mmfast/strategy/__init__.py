"""Strategies and their building blocks.

``planner``: the requote planner (target ladder vs live orders -> keep / modify / cancel /
create, within the in-flight cap and the rate budget).
"""

from mmfast.strategy.planner import (
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
    plan_requotes,
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
