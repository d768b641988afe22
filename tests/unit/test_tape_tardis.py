"""Tardis.dev CSV exports (incremental_book_L2 + trades) read as a tape.

The files are written here in the published schema (docs.tardis.dev, "Downloadable CSV files":
column order, microsecond timestamps, amount = the level's new size, is_snapshot, taker side)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tardis_csv import T0, write_book, write_trades

from mmfast.tape import (
    TAKER_BUY,
    TAKER_SELL,
    TAKER_UNKNOWN,
    BookEvent,
    TapeError,
    TradeEvent,
    open_tape,
)
from mmfast.tape.tardis import sniff_tardis

BOOK = [
    (0, False, "bid", "2999.00", "1"),  # before the first snapshot: skipped
    (10, True, "bid", "2999.90", "1.5"),
    (10, True, "bid", "2999.80", "0"),  # a zero level in a snapshot: absent
    (10, True, "ask", "3000.10", "2"),
    (10, True, "ask", "3000.20", "0.005"),
    (20, False, "ask", "3000.10", "1.75"),  # the trade at 20 comes first
    (30, False, "bid", "2999.90", "0"),
    (30, False, "bid", "2999.85", "0.3"),
    (40, True, "bid", "2998.00", "1"),  # a new snapshot after deltas
    (40, True, "ask", "3001.00", "1"),
]
TRADES = [
    (20, "t1", "buy", "3000.10", "0.25"),
    (25, "t2", "sell", "2999.90", "0.01"),
    (35, "t3", "unknown", "2999.85", "0.1"),
]


@pytest.mark.parametrize("gz", [False, True])
def test_book_and_trades_merge_into_one_sorted_stream(tmp_path: Path, gz: bool) -> None:
    b = write_book(tmp_path / "lighter_incremental_book_L2_2026-01-01_ETH.csv", BOOK, gz=gz)
    t = write_trades(tmp_path / "lighter_trades_2026-01-01_ETH.csv", TRADES, gz=gz)
    assert sniff_tardis(b) == "book" and sniff_tardis(t) == "trades"
    tape = open_tape([t, b], market_id=3)
    m = tape.info.markets[0]
    assert (m.market_id, m.symbol, m.price_decimals, m.size_decimals) == (3, "ETH", 2, 3)
    assert tape.info.format == "tardis"
    assert tape.info.start_ns == T0 * 1000
    ns = lambda dt: (T0 + dt) * 1000  # noqa: E731
    assert list(tape.events()) == [
        BookEvent(ns(10), 3, True, ((299990, 1500),), ((300010, 2000), (300020, 5))),
        TradeEvent(ns(20), 3, 300010, 250, TAKER_BUY, "t1"),
        BookEvent(ns(20), 3, False, (), ((300010, 1750),)),
        TradeEvent(ns(25), 3, 299990, 10, TAKER_SELL, "t2"),
        BookEvent(ns(30), 3, False, ((299990, 0), (299985, 300)), ()),
        TradeEvent(ns(35), 3, 299985, 100, TAKER_UNKNOWN, "t3"),
        BookEvent(ns(40), 3, True, ((299800, 1000),), ((300100, 1000),)),
    ]
    assert tape.stats.skipped == {"book row before the first snapshot": 1}
    assert (tape.stats.books, tape.stats.trades) == (4, 3)


def test_book_only(tmp_path: Path) -> None:
    b = write_book(tmp_path / "b.csv", BOOK[1:5])
    evs = list(open_tape(b).events())
    assert len(evs) == 1 and evs[0].kind == "book"


def test_malformed_rows_are_counted_and_skipped(tmp_path: Path) -> None:
    b = tmp_path / "b.csv"
    write_book(b, BOOK[1:5])
    with open(b, "a") as f:
        f.write(f"lighter,ETH,{T0},{T0 + 50},false,bid,abc,1\n")  # not a number
        f.write(f"lighter,ETH,{T0},{T0 + 50},maybe,bid,2999.00,1\n")
        f.write("lighter,ETH,1,2\n")  # short row
        f.write(f"lighter,ETH,{T0},{T0 + 60},false,middle,2999.00,1\n")
        f.write(f"lighter,ETH,{T0},{T0 + 70},false,ask,3000.50,1\n")
    tape = open_tape(b, price_decimals=2)
    evs = list(tape.events())
    assert evs[-1] == BookEvent((T0 + 70) * 1000, 0, False, (), ((300050, 1000),))
    assert tape.stats.skipped == {"malformed book row": 4}


def test_more_decimals_than_inferred_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The decimals come from the first rows (4 here): a later row with more is refused.
    monkeypatch.setattr("mmfast.tape.tardis._SAMPLE_ROWS", 4)
    rows = [*BOOK[1:5], (50, False, "ask", "3000.125", "1")]
    b = write_book(tmp_path / "b.csv", rows)
    with pytest.raises(
        TapeError,
        match=r"b\.csv:6: price '3000.125' has more than 1 decimals"
        r".*--price-decimals",
    ):
        list(open_tape(b).events())
    # Told the market's decimals, the same file reads.
    tape = open_tape(b, price_decimals=3, size_decimals=3)
    assert list(tape.events())[-1] == BookEvent((T0 + 50) * 1000, 0, False, (), ((3000125, 1000),))


def test_one_symbol_and_exact_micro_usdc(tmp_path: Path) -> None:
    b = write_book(tmp_path / "b.csv", BOOK[1:5])
    t = write_trades(tmp_path / "t.csv", TRADES, symbol="BTC")
    with pytest.raises(TapeError, match="several symbols"):
        open_tape([b, t])
    with pytest.raises(TapeError, match="> 6"):
        open_tape(b, price_decimals=4, size_decimals=4)
    with pytest.raises(TapeError, match="at most one trades"):
        open_tape(
            [
                b,
                write_trades(tmp_path / "t1.csv", TRADES),
                write_trades(tmp_path / "t2.csv", TRADES),
            ]
        )
    other = tmp_path / "o.csv"
    other.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(TapeError, match="neither an mmfast tape"):
        open_tape([b, other])


def test_time_going_back_is_kept_in_order(tmp_path: Path) -> None:
    rows = [*BOOK[1:5], (30, False, "ask", "3000.10", "1"), (25, False, "ask", "3000.10", "2")]
    tape = open_tape(write_book(tmp_path / "b.csv", rows))
    evs = list(tape.events())
    assert [e.t_ns for e in evs] == sorted(e.t_ns for e in evs)
    assert tape.stats.skipped == {"row earlier than the one before (kept in order)": 1}
