"""Tardis.dev CSV exports as a tape: ``incremental_book_L2`` with (optionally) ``trades``.

The published schemas (docs.tardis.dev, "Downloadable CSV files", data types), plain or gzip:

- ``incremental_book_L2``: ``exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,
  amount``. Timestamps are microseconds since the epoch (``timestamp`` the exchange's,
  ``local_timestamp`` Tardis' receive time); ``side`` is ``bid``/``ask``; ``amount`` is the
  level's new size, not a delta (0 deletes the level). Rows with the same ``local_timestamp``
  came in one message. A run of ``is_snapshot=true`` rows after a non-snapshot row starts a new
  book (a reconnect, or the start of a day); rows before the first snapshot are skipped.
- ``trades``: ``exchange,symbol,timestamp,local_timestamp,id,side,price,amount``; ``side`` is
  the taker's (``buy``, ``sell`` or ``unknown``).

Events are timed by ``local_timestamp`` (when the data was received, as mmfast's own tapes
are) and merged into one stream; at equal times a trade comes before the book message, since
the book message that follows a trade already shows its size gone (a queue position must not
be advanced twice: once by the trade, once again by the level's decrease).

A Tardis file says nothing of the market but its symbol: the market id is the caller's, and
the price and size decimals are inferred from the first rows (the most fraction digits seen)
unless given. A later value with more digits than that is a TapeError naming the row and the
option to set; a row that cannot be parsed is counted and skipped.
"""

from __future__ import annotations

import csv
import gzip
import heapq
import io
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from mmfast.core.units import parse_units
from mmfast.tape.events import (
    TAKER_BUY,
    TAKER_SELL,
    TAKER_UNKNOWN,
    BookEvent,
    Event,
    ReadStats,
    TapeError,
    TapeInfo,
    TapeMarket,
    TradeEvent,
)

__all__ = ["BOOK_COLUMNS", "TRADE_COLUMNS", "read_tardis", "sniff_tardis"]

BOOK_COLUMNS = (
    "exchange",
    "symbol",
    "timestamp",
    "local_timestamp",
    "is_snapshot",
    "side",
    "price",
    "amount",
)
TRADE_COLUMNS = (
    "exchange",
    "symbol",
    "timestamp",
    "local_timestamp",
    "id",
    "side",
    "price",
    "amount",
)
_GZIP_MAGIC = b"\x1f\x8b"
_SAMPLE_ROWS = 20_000  # rows read to infer the decimals
_MAX_DECIMALS = 6  # price x size must be an exact number of micro-USDC


def _open_text(path: Path) -> IO[str]:
    with open(path, "rb") as f:
        magic = f.read(2)
    if magic == _GZIP_MAGIC:
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def sniff_tardis(path: str | Path) -> str | None:
    """ "book" or "trades" when the file starts with that Tardis header, else None."""
    p = Path(path)
    try:
        with _open_text(p) as f:
            first = f.readline()
    except (OSError, UnicodeDecodeError, EOFError):
        return None
    cols = tuple(c.strip() for c in first.strip().split(","))
    if cols == BOOK_COLUMNS:
        return "book"
    if cols == TRADE_COLUMNS:
        return "trades"
    return None


def _fraction_digits(text: str) -> int:
    i = text.find(".")
    return 0 if i < 0 else len(text) - i - 1


def _infer(
    path: Path, price_col: int, amount_col: int, symbols: set[str], exchanges: set[str]
) -> tuple[int, int, int | None]:
    """(price digits, amount digits, first local_timestamp in µs) over the first rows."""
    pd = sd = 0
    first: int | None = None
    with _open_text(path) as f:
        rows = csv.reader(f)
        next(rows, None)
        for i, row in enumerate(rows):
            if i >= _SAMPLE_ROWS:
                break
            if len(row) != 8:
                continue
            symbols.add(row[1])
            exchanges.add(row[0])
            pd = max(pd, _fraction_digits(row[price_col].rstrip("0")))
            sd = max(sd, _fraction_digits(row[amount_col].rstrip("0")))
            if first is None and row[3].isdigit():
                first = int(row[3])
    return pd, sd, first


def read_tardis(
    paths: list[Path],
    stats: ReadStats,
    *,
    market_id: int = 0,
    price_decimals: int | None = None,
    size_decimals: int | None = None,
) -> tuple[TapeInfo, Iterator[Event]]:
    """One ``incremental_book_L2`` file and at most one ``trades`` file of one symbol."""
    books = [p for p in paths if sniff_tardis(p) == "book"]
    trades = [p for p in paths if sniff_tardis(p) == "trades"]
    other = [p for p in paths if p not in books and p not in trades]
    if other:
        raise TapeError(
            f"{other[0]}: not a Tardis incremental_book_L2 or trades CSV (header "
            f"{','.join(BOOK_COLUMNS)} or {','.join(TRADE_COLUMNS)})"
        )
    if len(books) != 1 or len(trades) > 1:
        raise TapeError(
            "a Tardis tape is one incremental_book_L2 file and at most one trades "
            f"file (got {len(books)} book and {len(trades)} trades files)"
        )
    symbols: set[str] = set()
    exchanges: set[str] = set()
    bpd, bsd, first = _infer(books[0], 6, 7, symbols, exchanges)
    tpd = tsd = 0
    if trades:
        tpd, tsd, tfirst = _infer(trades[0], 6, 7, symbols, exchanges)
        if tfirst is not None and (first is None or tfirst < first):
            first = tfirst
    if len(symbols) > 1:
        raise TapeError(
            f"the Tardis files hold several symbols ({', '.join(sorted(symbols))}): "
            "a tape is one symbol"
        )
    pd = max(bpd, tpd) if price_decimals is None else price_decimals
    sd = max(bsd, tsd) if size_decimals is None else size_decimals
    if pd + sd > _MAX_DECIMALS:
        raise TapeError(
            f"price decimals {pd} + size decimals {sd} > {_MAX_DECIMALS}: a price "
            "times a size must be a whole number of micro-USDC (set the market's "
            "--price-decimals / --size-decimals)"
        )
    symbol = symbols.pop() if symbols else "?"
    market = TapeMarket(market_id, symbol, pd, sd)
    info = TapeInfo(
        "tardis",
        1,
        tuple(str(p) for p in paths),
        (market,),
        (first or 0) * 1000,
        {"exchange": ",".join(sorted(exchanges)), "files": [str(p) for p in paths]},
    )
    streams: list[Iterator[tuple[int, int, int, Event]]] = [_book_events(books[0], market, stats)]
    if trades:
        streams.append(_trade_events(trades[0], market, stats))
    return info, _merged(streams, stats)


def _merged(
    streams: list[Iterator[tuple[int, int, int, Event]]], stats: ReadStats
) -> Iterator[Event]:
    for _t, _prio, _seq, ev in heapq.merge(*streams):
        stats.events += 1
        if ev.kind == "book":
            stats.books += 1
        else:
            stats.trades += 1
        yield ev


def _decimals_error(path: Path, line: int, what: str, value: str, decimals: int) -> TapeError:
    flag = "--price-decimals" if what == "price" else "--size-decimals"
    return TapeError(
        f"{path}:{line}: {what} {value!r} has more than {decimals} decimals (the "
        f"most seen in the first rows); set {flag}"
    )


def _parse(path: Path, line: int, what: str, value: str, decimals: int) -> int:
    """A price or amount in units; TapeError for one with too many digits, ValueError for one
    that is not a decimal at all (the row is skipped)."""
    try:
        return parse_units(value, decimals, extra="zeros", what=what)
    except ValueError:
        # A decimal all the same (only its extra digits refused)? Else not one: skipped.
        parse_units(value, decimals, extra="truncate", what=what)
        raise _decimals_error(path, line, what, value, decimals) from None


def _time(text: str, last: int, stats: ReadStats) -> int:
    t = int(text)
    if t < last:
        stats.skip("row earlier than the one before (kept in order)")
        return last
    return t


def _book_events(
    path: Path, m: TapeMarket, stats: ReadStats
) -> Iterator[tuple[int, int, int, Event]]:
    """Book messages (rows grouped by local_timestamp; snapshot runs grouped whole)."""
    pd, sd, mid = m.price_decimals, m.size_decimals, m.market_id
    seq = 0
    started = False  # the first snapshot was seen
    cur_t = -1  # local_timestamp (µs) of the message being gathered
    cur_snap = False
    bids: dict[int, int] = {}
    asks: dict[int, int] = {}
    last_t = 0

    def emit() -> tuple[int, int, int, Event]:
        nonlocal seq
        seq += 1
        if cur_snap:  # zero-amount levels of a snapshot are absent levels
            b = tuple(sorted(((p, q) for p, q in bids.items() if q), reverse=True))
            a = tuple(sorted((p, q) for p, q in asks.items() if q))
        else:
            b = tuple(sorted(bids.items(), reverse=True))
            a = tuple(sorted(asks.items()))
        t = cur_t * 1000
        return t, 1, seq, BookEvent(t, mid, cur_snap, b, a)

    with _open_text(path) as f:
        rows = csv.reader(f)
        next(rows, None)
        for line, row in enumerate(rows, start=2):
            stats.records += 1
            if len(row) != 8:
                stats.skip("malformed book row")
                continue
            try:
                t = _time(row[3], last_t, stats)
                snap = row[4] == "true"
                if not snap and row[4] != "false":
                    raise ValueError("is_snapshot")
                side = row[5]
                if side in ("bid", "buy"):
                    is_bid = True
                elif side in ("ask", "sell"):
                    is_bid = False
                else:
                    raise ValueError("side")
                price = _parse(path, line, "price", row[6], pd)
                amount = _parse(path, line, "amount", row[7], sd)
                if price <= 0:
                    raise ValueError("price")
            except TapeError:
                raise
            except ValueError:
                stats.skip("malformed book row")
                continue
            last_t = t
            if not started:
                if not snap:
                    stats.skip("book row before the first snapshot")
                    continue
                started = True
            # A message ends when the time changes, and a snapshot run ends at the first
            # non-snapshot row; a snapshot row after deltas starts a new snapshot.
            if cur_t >= 0 and ((snap != cur_snap) or (t != cur_t and not (snap and cur_snap))):
                yield emit()
                bids, asks = {}, {}
                cur_t = -1
            if cur_t < 0:
                cur_t, cur_snap = t, snap
            (bids if is_bid else asks)[price] = amount
    if cur_t >= 0:
        yield emit()


def _trade_events(
    path: Path, m: TapeMarket, stats: ReadStats
) -> Iterator[tuple[int, int, int, Event]]:
    pd, sd, mid = m.price_decimals, m.size_decimals, m.market_id
    last_t = 0
    with _open_text(path) as f:
        rows = csv.reader(f)
        next(rows, None)
        for line, row in enumerate(rows, start=2):
            stats.records += 1
            if len(row) != 8:
                stats.skip("malformed trade row")
                continue
            try:
                t = _time(row[3], last_t, stats)
                side = row[5]
                taker = (
                    TAKER_BUY if side == "buy" else TAKER_SELL if side == "sell" else TAKER_UNKNOWN
                )
                if taker == TAKER_UNKNOWN and side != "unknown":
                    raise ValueError("side")
                price = _parse(path, line, "price", row[6], pd)
                size = _parse(path, line, "amount", row[7], sd)
                if price <= 0 or size <= 0:
                    raise ValueError("price or size")
            except TapeError:
                raise
            except ValueError:
                stats.skip("malformed trade row")
                continue
            last_t = t
            yield t * 1000, 0, line, TradeEvent(t * 1000, mid, price, size, taker, row[4])
