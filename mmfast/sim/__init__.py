"""mmfast.sim: a Lighter-compatible exchange simulator on 127.0.0.1.

`Exchange` is the venue's state machine (accounts, tx rules, matching, accounting);
`Simulator` serves it over REST and WebSocket with the venue's message shapes.
"""

from mmfast.sim.clock import ManualClock, RealClock, SimClock
from mmfast.sim.config import MarketSpec, SimConfig, default_markets
from mmfast.sim.engine import Exchange
from mmfast.sim.errors import VenueError
from mmfast.sim.server import Simulator
from mmfast.sim.thread import SimThread
from mmfast.sim.truth import Truth

__all__ = [
    "Exchange",
    "ManualClock",
    "MarketSpec",
    "RealClock",
    "SimClock",
    "SimConfig",
    "SimThread",
    "Simulator",
    "Truth",
    "VenueError",
    "default_markets",
]
