"""The normalized market events every tape reader yields, and what a tape says about itself.

A tape, whatever its file format, is read as one stream of events sorted by time (``t_ns``:
wall-clock epoch nanoseconds at which the recorder received the message). Prices are integer
ticks and sizes integer lots of the event's market (``TapeMarket`` gives the decimals), as
everywhere in mmfast (docs/units.md).

- ``BookEvent``: one message of the market's L2 book: a snapshot (the whole book, replacing
  what was there) or a delta (levels whose size is now the one given, 0 deleting the level).
- ``TradeEvent``: one trade of other participants, with the taker's side when known.
- ``StatsEvent``: the venue's mark and index prices.
- ``GapEvent``: the recorder lost the stream (a disconnect, a broken nonce chain): what
  happened meanwhile is unknown, and the book is known again at the market's next snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from mmfast.core.errors import MmfastError

__all__ = [
    "TAKER_BUY",
    "TAKER_SELL",
    "TAKER_UNKNOWN",
    "BookEvent",
    "Event",
    "GapEvent",
    "Levels",
    "ReadStats",
    "StatsEvent",
    "TapeError",
    "TapeInfo",
    "TapeMarket",
    "TradeEvent",
]

TAKER_BUY = 1
TAKER_SELL = -1
TAKER_UNKNOWN = 0

Levels = tuple[tuple[int, int], ...]  # (price ticks, size lots)


class TapeError(MmfastError, ValueError):
    """A tape that cannot be read: not a tape, an unknown version, a corrupt file, a market
    the tape does not describe. The message names the file and, where it helps, the record."""


@dataclass(frozen=True, slots=True)
class TapeMarket:
    """A market as the tape describes it (the venue's metadata at recording time, or what a
    reader inferred). Integers in mmfast's units, as ``connector.lighter.markets.MarketInfo``."""

    market_id: int
    symbol: str
    price_decimals: int
    size_decimals: int
    min_base_lots: int = 1
    min_quote_micro: int = 0
    taker_fee_1e6: int = 196
    maker_fee_1e6: int = 28
    default_imf_1e4: int = 500
    min_imf_1e4: int = 200
    maintenance_mf_1e4: int = 120
    closeout_mf_1e4: int = 80

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}

    @classmethod
    def from_json(cls, d: Any) -> TapeMarket:
        """From a tape header's market entry; TapeError naming the field when malformed."""
        if not isinstance(d, dict):
            raise TapeError(f"a market entry must be an object, got {type(d).__name__}")
        kwargs: dict[str, Any] = {}
        for name in cls.__slots__:
            if name not in d:
                if name in ("market_id", "symbol", "price_decimals", "size_decimals"):
                    raise TapeError(f"market entry without {name!r}")
                continue
            v = d[name]
            if name == "symbol":
                if not isinstance(v, str):
                    raise TapeError(f"market symbol must be a string, got {v!r}")
            elif type(v) is not int or v < 0:
                raise TapeError(f"market {name} must be an integer >= 0, got {v!r}")
            kwargs[name] = v
        m = cls(**kwargs)
        if m.price_decimals > 18 or m.size_decimals > 18:
            raise TapeError(f"market {m.market_id}: decimals out of range")
        return m


@dataclass(frozen=True, slots=True)
class BookEvent:
    """One book message of ``market`` (see the module doc)."""

    kind: ClassVar[str] = "book"
    t_ns: int
    market: int
    snapshot: bool
    bids: Levels
    asks: Levels


@dataclass(frozen=True, slots=True)
class TradeEvent:
    """One trade: ``taker`` is TAKER_BUY, TAKER_SELL or TAKER_UNKNOWN."""

    kind: ClassVar[str] = "trade"
    t_ns: int
    market: int
    price: int
    size: int
    taker: int
    trade_id: str = ""


@dataclass(frozen=True, slots=True)
class StatsEvent:
    """The venue's mark (and index) price of ``market``, in ticks."""

    kind: ClassVar[str] = "stats"
    t_ns: int
    market: int
    mark_price: int
    index_price: int


@dataclass(frozen=True, slots=True)
class GapEvent:
    """The stream of ``markets`` was lost here (``reason``)."""

    kind: ClassVar[str] = "gap"
    t_ns: int
    markets: tuple[int, ...]
    reason: str


Event = BookEvent | TradeEvent | StatsEvent | GapEvent


@dataclass(frozen=True, slots=True)
class TapeInfo:
    """What a tape says about itself (its header, or what a reader inferred)."""

    format: str  # "mmfast" or "tardis"
    version: int
    paths: tuple[str, ...]
    markets: tuple[TapeMarket, ...]
    start_ns: int  # wall epoch ns of the first event (0: the tape has none)
    source: dict[str, Any] = field(default_factory=dict)  # where it was recorded

    def market(self, market_id: int) -> TapeMarket:
        for m in self.markets:
            if m.market_id == market_id:
                return m
        raise TapeError(
            f"the tape has no market {market_id} (it has "
            f"{', '.join(f'{m.market_id}={m.symbol}' for m in self.markets)})"
        )


@dataclass(slots=True)
class ReadStats:
    """What reading a tape met (filled as the events are read)."""

    records: int = 0  # records or rows read
    events: int = 0  # events yielded
    books: int = 0
    trades: int = 0
    stats: int = 0
    gaps: int = 0
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> records not used
    truncated: bool = False  # the file ends inside a record, or without its end record
    ended: str = ""  # the end record's reason ("" when there is none)

    def skip(self, reason: str, n: int = 1) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + n

    def to_json(self) -> dict[str, Any]:
        return {
            "records": self.records,
            "events": self.events,
            "books": self.books,
            "trades": self.trades,
            "stats": self.stats,
            "gaps": self.gaps,
            "skipped": dict(sorted(self.skipped.items())),
            "truncated": self.truncated,
            "ended": self.ended,
        }
