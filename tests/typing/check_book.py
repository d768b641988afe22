"""The compiled order book's public API as a user calls it (``mmfast._core.book``, book.pyi).

Checked by mypy only (``make typecheck``), never run: each ``assert_type`` pins what a call
returns, each ``# type: ignore[code]`` marks a misuse the stub must keep refusing (an ignore
that is no longer needed fails the check). See tests/typing in CONTRIBUTING.md.
"""

from __future__ import annotations

from typing import Any, assert_type

from mmfast._core import book
from mmfast._core.book import (
    APPLIED,
    ASK,
    BID,
    DEC_REASONS,
    GAP,
    BookError,
    OrderBook,
    parse_decimal,
)
from mmfast.core.errors import MmfastError


def constants() -> None:
    assert_type(BID, int)
    assert_type(ASK, int)
    assert_type(APPLIED, int)
    assert_type(GAP, int)
    assert_type(book.DEFAULT_WINDOW, int)
    assert_type(DEC_REASONS, tuple[str, ...])


def parsing() -> None:
    assert_type(parse_decimal("3012.45", 2), int)
    assert_type(parse_decimal(b"0.001", 3), int)
    try:
        parse_decimal("-1", 2)
    except BookError as exc:
        assert_type(exc, BookError)
        err: ValueError = exc  # one BookError, a ValueError and an MmfastError
        base: MmfastError = exc
        del err, base

    parse_decimal(3012.45, 2)  # type: ignore[arg-type]
    parse_decimal("1.5", None)  # type: ignore[arg-type]
    parse_decimal("1.5")  # type: ignore[call-arg]


def build() -> OrderBook:
    ob = OrderBook(1, 2, 4)
    assert_type(OrderBook(1, 2, 4, window=4096), OrderBook)
    assert_type(ob.market_id, int)
    assert_type(ob.price_decimals, int)
    assert_type(ob.size_decimals, int)
    assert_type(ob.window, int)

    OrderBook(1, 2)  # type: ignore[call-arg]
    OrderBook("ETH", 2, 4)  # type: ignore[arg-type]
    OrderBook(1, 2, 4, window=None)  # type: ignore[arg-type]
    return ob


def apply(ob: OrderBook, frame: bytes, msg: dict[str, Any]) -> None:
    levels = [{"price": "3012.45", "size": "1.5"}]
    assert_type(ob.apply_snapshot(levels, levels, 7), int)
    assert_type(ob.apply_delta(levels, [], 8, 7), int)
    assert_type(ob.apply_message(msg), int)
    assert_type(ob.apply_frame(frame), int)
    assert_type(ob.apply_frame(bytearray(frame)), int)
    assert_type(ob.apply_frame(memoryview(frame)), int)
    assert_type(ob.invalidate(), None)

    ob.apply_frame(frame.decode())  # type: ignore[arg-type]
    ob.apply_delta(levels, levels, 8)  # type: ignore[call-arg]
    ob.apply_snapshot(levels, levels, None)  # type: ignore[arg-type]


def queries(ob: OrderBook) -> None:
    assert_type(ob.in_sync(), bool)
    assert_type(ob.best_bid(), int)
    assert_type(ob.best_ask_size(), int)
    assert_type(ob.size_at(BID, 301245), int)
    assert_type(ob.top(ASK, 5), list[tuple[int, int]])
    assert_type(ob.depth_to(BID, 301000), int)
    assert_type(ob.level_count(ASK), int)
    assert_type(ob.mid(), float)
    assert_type(ob.mid_x2(), int)
    assert_type(ob.microprice(), float)
    assert_type(ob.is_crossed(), bool)
    assert_type(ob.parse_price("3012.45"), int)
    assert_type(ob.parse_size(b"1.5"), int)
    # The counters are read-only properties.
    assert_type(ob.nonce, int)
    assert_type(ob.has_snapshot, bool)
    assert_type(ob.gaps, int)
    assert_type(ob.malformed, int)
    assert_type(ob.hot_bytes, int)

    ob.top(ASK)  # type: ignore[call-arg]
    ob.size_at(BID, "3012.45")  # type: ignore[arg-type]
    ob.nonce = 0  # type: ignore[misc]
    ob.market_id = 2  # type: ignore[misc]
    text: str = ob.best_bid()  # type: ignore[assignment]
    del text


def subclass() -> None:
    class MyBook(OrderBook):  # type: ignore[misc]
        """OrderBook is final: no subclass (a TypeError at run time too)."""
