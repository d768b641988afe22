"""mmfast's trading core: lifecycle (TradingCore), event bus, data types, errors, logging, clock,
the journal protocol and per-stage latency stats.

The tick clock itself is compiled (``mmfast._core.clock``); its public names are re-exported
here so callers need one import.
"""

from mmfast._core.clock import Clock, Timer, monotonic_ns, wall_ms
from mmfast.core.errors import (
    BookError,
    ExchangeError,
    MmfastError,
    OrderError,
    SigningError,
    UnitsError,
)
from mmfast.core.events import (
    BookUpdated,
    ConnectorState,
    EventBus,
    FillReceived,
    LifecycleChanged,
    OrderUpdated,
    PositionUpdated,
    PullQuotes,
)
from mmfast.core.interfaces import (
    BookListener,
    Connector,
    FillListener,
    Journal,
    NullJournal,
    OrderConnector,
    OrderListener,
    Strategy,
)
from mmfast.core.latency import STAGES, LatencyStats
from mmfast.core.log import configure_logging, debug_from_env, get_logger
from mmfast.core.trading_core import ClockFactory, TradingCore, default_clock_factory
from mmfast.core.types import (
    MAX_CLIENT_ORDER_INDEX,
    Fill,
    LifecycleState,
    Order,
    OrderStatus,
    OrderType,
    Position,
    Side,
    TimeInForce,
)

__all__ = [
    "MAX_CLIENT_ORDER_INDEX",
    "STAGES",
    "BookError",
    "BookListener",
    "BookUpdated",
    "Clock",
    "ClockFactory",
    "Connector",
    "ConnectorState",
    "EventBus",
    "ExchangeError",
    "Fill",
    "FillListener",
    "FillReceived",
    "Journal",
    "LatencyStats",
    "LifecycleChanged",
    "LifecycleState",
    "MmfastError",
    "NullJournal",
    "Order",
    "OrderConnector",
    "OrderError",
    "OrderListener",
    "OrderStatus",
    "OrderType",
    "OrderUpdated",
    "Position",
    "PositionUpdated",
    "PullQuotes",
    "Side",
    "SigningError",
    "Strategy",
    "TimeInForce",
    "Timer",
    "TradingCore",
    "UnitsError",
    "configure_logging",
    "debug_from_env",
    "default_clock_factory",
    "get_logger",
    "monotonic_ns",
    "wall_ms",
]
