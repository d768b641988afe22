"""Strategies and their building blocks.

``planner``: the requote planner (target ladder vs live orders -> keep / modify / cancel /
create, within the in-flight cap and the rate budget). ``base``: ``StrategyBase`` (hooks, risk
gate before signing, guards, kill switch). ``intents``: ``ModifyIntents`` (the modifies the
venue has not shown yet; the orders themselves are the connector's tracker's).
``market_making`` and ``trend_ladder``:
the two strategies (``STRATEGIES`` maps config names to classes). ``estimators``: online
sigma/kappa.
"""

from mmfast.strategy.base import StrategyBase
from mmfast.strategy.estimators import ArrivalIntensity, VolatilityEstimator
from mmfast.strategy.market_making import MarketMaking
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
from mmfast.strategy.trend_ladder import EntryLevel, TrendLadder, allocate_tp_sizes

STRATEGIES: dict[str, type[StrategyBase]] = {
    MarketMaking.name: MarketMaking,
    TrendLadder.name: TrendLadder,
}

__all__ = [
    "MAX_INFLIGHT_PER_MARKET",
    "STRATEGIES",
    "UNLIMITED",
    "Action",
    "ActionKind",
    "ArrivalIntensity",
    "BudgetView",
    "Degrade",
    "EntryLevel",
    "MarketMaking",
    "Plan",
    "PlannerParams",
    "RateBudget",
    "StrategyBase",
    "TrendLadder",
    "UnlimitedBudget",
    "VolatilityEstimator",
    "allocate_tp_sizes",
    "plan_requotes",
]
