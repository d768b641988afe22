"""mmfast.sim: a Lighter-compatible exchange simulator on 127.0.0.1.

`Exchange` is the venue's state machine (accounts, tx rules, matching, accounting);
`Simulator` serves it over REST and WebSocket with the venue's message shapes, on a shared
`TimeSource`, with market flow (`MarketFlow`), rate limits, speed bumps and fault injection
(`Simulator.faults`, `FaultScript`).
"""

from mmfast.sim.clock import ManualClock, RealClock, SimClock, SkewedTime
from mmfast.sim.config import (
    DEFAULT_TIER,
    TIERS,
    FlowConfig,
    MarketSpec,
    ReplayConfig,
    SimConfig,
    TierSpec,
    default_markets,
)
from mmfast.sim.engine import Exchange
from mmfast.sim.errors import VenueError
from mmfast.sim.faults import FaultRecord, Faults, FaultScript, ScheduledFault
from mmfast.sim.flow import MarketFlow
from mmfast.sim.limits import RateLimiter
from mmfast.sim.server import Simulator
from mmfast.sim.thread import SimThread
from mmfast.sim.truth import Truth

__all__ = [
    "DEFAULT_TIER",
    "TIERS",
    "Exchange",
    "FaultRecord",
    "FaultScript",
    "Faults",
    "FlowConfig",
    "ManualClock",
    "MarketFlow",
    "MarketSpec",
    "RateLimiter",
    "RealClock",
    "ReplayConfig",
    "ScheduledFault",
    "SimClock",
    "SimConfig",
    "SimThread",
    "Simulator",
    "SkewedTime",
    "TierSpec",
    "Truth",
    "VenueError",
    "default_markets",
]
