"""``open_tape``: any supported tape file(s) -> a ``Tape`` (its info and its events)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

from mmfast.tape.events import Event, ReadStats, TapeError, TapeInfo
from mmfast.tape.file import ZSTD_MAGIC, read_mmfast_tape
from mmfast.tape.tardis import read_tardis, sniff_tardis

__all__ = ["Tape", "open_tape"]


class Tape:
    """An opened tape: ``info`` (markets, start, source) and ``events()``, read once, lazily,
    sorted by time; ``stats`` counts what the reading met (skipped records, truncation)."""

    def __init__(self, info: TapeInfo, events: Iterator[Event], stats: ReadStats) -> None:
        self.info = info
        self.stats = stats
        self._events: Iterator[Event] | None = events

    def events(self) -> Iterator[Event]:
        """The events (one pass: a second call is an error)."""
        ev, self._events = self._events, None
        if ev is None:
            raise TapeError("a tape's events are read once (open it again)")
        return ev


def open_tape(
    paths: str | Path | Sequence[str | Path],
    *,
    market_id: int = 0,
    price_decimals: int | None = None,
    size_decimals: int | None = None,
    only: int | None = None,
) -> Tape:
    """Open a tape: one mmfast tape file, or Tardis CSV files (one ``incremental_book_L2``
    and optionally one ``trades``, plain or .gz). ``market_id`` and the decimals apply to
    Tardis files only (they carry no market metadata). ``only``: the events of that one
    market (an mmfast tape's other markets are skipped unparsed). TapeError when the files
    are missing, of an unknown kind, or not one tape."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    ps = [Path(p) for p in paths]
    if not ps:
        raise TapeError("no tape file given")
    for p in ps:
        if not p.is_file():
            raise TapeError(f"{p}: no such file")
    stats = ReadStats()
    with open(ps[0], "rb") as f:
        magic = f.read(4)
    if magic == ZSTD_MAGIC:
        if len(ps) != 1:
            raise TapeError("an mmfast tape is one file")
        if price_decimals is not None or size_decimals is not None:
            raise TapeError(
                "an mmfast tape carries its markets' decimals: "
                "--price-decimals/--size-decimals are for Tardis files"
            )
        info, events = read_mmfast_tape(ps[0], stats, only)
        return Tape(info, events, stats)
    if all(sniff_tardis(p) is not None for p in ps):
        info, events = read_tardis(
            ps,
            stats,
            market_id=market_id,
            price_decimals=price_decimals,
            size_decimals=size_decimals,
        )
        if only is not None:
            info.market(only)  # TapeError when the one market is not that one
        return Tape(info, events, stats)
    bad = next(p for p in ps if sniff_tardis(p) is None)
    raise TapeError(f"{bad}: neither an mmfast tape nor a Tardis incremental_book_L2/trades CSV")
