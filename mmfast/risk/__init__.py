"""Risk controls: the pre-trade gate (``limits``) and the kill switch (``killswitch``).

Reference: docs/risk.md.
"""

from mmfast.risk.killswitch import (
    KillAction,
    KillState,
    KillSwitch,
    KillSwitchLimits,
    TripReason,
    total_pnl_micro,
)
from mmfast.risk.limits import (
    MarginState,
    MarketRules,
    MarketState,
    RiskLimits,
    RiskReason,
    RiskState,
    check_order,
    parse_micro,
)

__all__ = [
    "KillAction",
    "KillState",
    "KillSwitch",
    "KillSwitchLimits",
    "MarginState",
    "MarketRules",
    "MarketState",
    "RiskLimits",
    "RiskReason",
    "RiskState",
    "TripReason",
    "check_order",
    "parse_micro",
    "total_pnl_micro",
]
