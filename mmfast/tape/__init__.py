"""Market tapes: record a venue's public streams, read them back as one event stream.

``open_tape(paths)`` reads mmfast's own tapes (``mmfast record``, ``mmfast.tape.file``) and
Tardis.dev CSV exports (``mmfast.tape.tardis``) into the same normalized events
(``mmfast.tape.events``), sorted by time; the simulator replays them (``mmfast.sim.replay``,
docs/backtest.md).
"""

from mmfast.tape.events import (
    TAKER_BUY,
    TAKER_SELL,
    TAKER_UNKNOWN,
    BookEvent,
    Event,
    GapEvent,
    ReadStats,
    StatsEvent,
    TapeError,
    TapeInfo,
    TapeMarket,
    TradeEvent,
)
from mmfast.tape.reader import Tape, open_tape

__all__ = [
    "TAKER_BUY",
    "TAKER_SELL",
    "TAKER_UNKNOWN",
    "BookEvent",
    "Event",
    "GapEvent",
    "ReadStats",
    "StatsEvent",
    "Tape",
    "TapeError",
    "TapeInfo",
    "TapeMarket",
    "TradeEvent",
    "open_tape",
]
