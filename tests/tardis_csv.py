"""Tardis.dev CSV files written in the published schema (docs.tardis.dev, "Downloadable CSV
files": column order, microsecond timestamps, ``amount`` the level's new size, ``is_snapshot``,
the taker's ``side``), for the tape tests."""

from __future__ import annotations

import gzip
from pathlib import Path

from mmfast.tape.tardis import BOOK_COLUMNS, TRADE_COLUMNS

T0 = 1_767_225_600_000_000  # µs: 2026-01-01 00:00:00 UTC


def write_book(
    path: Path, rows: list[tuple[int, bool, str, str, str]], symbol: str = "ETH", gz: bool = False
) -> Path:
    """rows: (local µs after T0, is_snapshot, side, price, amount)."""
    lines = [",".join(BOOK_COLUMNS)]
    for dt, snap, side, price, amount in rows:
        lines.append(
            f"lighter,{symbol},{T0 + dt - 3},{T0 + dt},{str(snap).lower()},{side},{price},{amount}"
        )
    data = ("\n".join(lines) + "\n").encode()
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def write_trades(
    path: Path, rows: list[tuple[int, str, str, str, str]], symbol: str = "ETH", gz: bool = False
) -> Path:
    """rows: (local µs after T0, id, taker side, price, amount)."""
    lines = [",".join(TRADE_COLUMNS)]
    for dt, tid, side, price, amount in rows:
        lines.append(f"lighter,{symbol},{T0 + dt - 3},{T0 + dt},{tid},{side},{price},{amount}")
    data = ("\n".join(lines) + "\n").encode()
    path.write_bytes(gzip.compress(data) if gz else data)
    return path
