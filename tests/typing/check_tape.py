"""The tape reader (``mmfast.tape``): ``open_tape`` opens mmfast or Tardis tapes into a
``Tape`` whose events are one union of frozen event classes, narrowed by ``isinstance`` or
``match`` as a backtest or an analysis reads them.

Checked by mypy only (``make typecheck``), never run; see tests/typing in CONTRIBUTING.md.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, assert_type

from mmfast.tape import (
    TAKER_BUY,
    BookEvent,
    Event,
    GapEvent,
    ReadStats,
    StatsEvent,
    Tape,
    TapeError,
    TapeInfo,
    TapeMarket,
    TradeEvent,
    open_tape,
)


def opening() -> Tape:
    assert_type(open_tape("eth.tape.zst"), Tape)
    assert_type(open_tape(Path("eth.tape.zst"), only=0), Tape)
    assert_type(open_tape(["book.csv.gz", Path("trades.csv.gz")], market_id=3), Tape)
    tardis: list[str | Path] = ["book.csv.gz", "trades.csv.gz"]
    tape = open_tape(tardis, market_id=0, price_decimals=2, size_decimals=4)
    assert_type(tape.info, TapeInfo)
    assert_type(tape.stats, ReadStats)
    assert_type(tape.info.markets, tuple[TapeMarket, ...])
    assert_type(tape.info.market(0), TapeMarket)
    assert_type(tape.info.market(0).price_decimals, int)
    assert_type(tape.info.start_ns, int)
    assert_type(tape.stats.skipped, dict[str, int])
    assert_type(tape.stats.truncated, bool)
    assert_type(TapeMarket.from_json({}), TapeMarket)
    assert_type(tape.info.market(0).to_json(), dict[str, Any])
    try:
        open_tape("missing.tape.zst")
    except TapeError as exc:
        assert_type(exc, TapeError)
        err: ValueError = exc
        del err

    open_tape(None)  # type: ignore[arg-type]
    open_tape(3)  # type: ignore[arg-type]
    open_tape("eth.tape.zst", 0)  # type: ignore[call-arg]
    open_tape(tardis, price_decimals="2")  # type: ignore[arg-type]
    tape.info.start_ns = 0  # type: ignore[misc]
    return tape


def reading(tape: Tape) -> int:
    events = tape.events()
    assert_type(events, Iterator[Event])
    assert_type(events, Iterator[BookEvent | TradeEvent | StatsEvent | GapEvent])
    traded = 0
    for ev in events:
        assert_type(ev.t_ns, int)  # on every kind
        assert_type(ev.kind, str)
        if isinstance(ev, BookEvent):
            assert_type(ev.bids, tuple[tuple[int, int], ...])
            assert_type(ev.snapshot, bool)
        elif isinstance(ev, TradeEvent):
            assert_type(ev.taker, int)
            traded += ev.size if ev.taker == TAKER_BUY else 0
        match ev:
            case StatsEvent(mark_price=mark):
                assert_type(mark, int)
            case GapEvent(markets=markets, reason=reason):
                assert_type(markets, tuple[int, ...])
                assert_type(reason, str)
            case _:
                pass

        price: int = ev.price  # type: ignore[union-attr]
        ev.t_ns = price  # type: ignore[misc]
    return traded
