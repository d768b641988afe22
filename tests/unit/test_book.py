"""Unit tests of the compiled L2 book mmfast._core.book (see docs/book.md)."""

from __future__ import annotations

import gc
import math
import random
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import orjson
import pytest

from mmfast._core import book as cbook
from mmfast._core.book import (
    APPLIED,
    ASK,
    BID,
    DROPPED_PRE_SNAPSHOT,
    GAP,
    IGNORED_OUT_OF_SYNC,
    NOT_BOOK,
    BookError,
    OrderBook,
    parse_decimal,
)
from mmfast.reference.book import BookError as RefBookError
from mmfast.reference.book import ReferenceBook
from mmfast.reference.book import parse_decimal as ref_parse

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "lighter"
INT64_MAX = 2**63 - 1


def lv(price: str, size: str) -> dict[str, str]:
    return {"price": price, "size": size}


def msg(kind: str, asks: list, bids: list, nonce: int, begin: int = 0) -> dict:
    return {
        "type": f"{kind}/order_book",
        "channel": "order_book:0",
        "order_book": {"code": 0, "asks": asks, "bids": bids, "nonce": nonce, "begin_nonce": begin},
    }


def state(b: OrderBook | ReferenceBook) -> tuple:
    return (
        b.top(BID, 10**6),
        b.top(ASK, 10**6),
        b.best_bid(),
        b.best_ask(),
        b.best_bid_size(),
        b.best_ask_size(),
        b.nonce,
        b.in_sync(),
        b.has_snapshot,
        b.messages,
        b.snapshots,
        b.dropped_pre_snapshot,
        b.gaps,
        b.ignored_out_of_sync,
        b.malformed,
        b.not_book,
    )


@pytest.fixture
def book() -> OrderBook:
    b = OrderBook(0, 2, 4)
    rc = b.apply_snapshot(
        asks=[lv("100.05", "1.5"), lv("100.10", "2"), lv("101.00", "0.0001")],
        bids=[lv("100.00", "3.25"), lv("99.95", "1"), lv("90.00", "10")],
        nonce=10,
    )
    assert rc == APPLIED
    return b


# --- parsing ---------------------------------------------------------------------------------

VALID = [
    ("2064.54", 2, 206454),
    ("0.3285", 4, 3285),
    ("0", 4, 0),
    ("0.0", 1, 0),
    ("7", 0, 7),
    ("7", 3, 7000),
    ("1.5", 4, 15000),
    ("0012.30", 2, 1230),
    ("9223372036854775807", 0, INT64_MAX),
    ("922337203685477580.7", 1, INT64_MAX),
    ("9.223372036854775807", 18, INT64_MAX),
    ("0.000000000000000001", 18, 1),
]


@pytest.mark.parametrize(("text", "decimals", "expected"), VALID)
def test_parse_valid(text: str, decimals: int, expected: int) -> None:
    assert parse_decimal(text, decimals) == expected
    assert parse_decimal(text.encode(), decimals) == expected
    assert ref_parse(text, decimals) == expected


MALFORMED = [
    ("", 2, "empty"),
    ("abc", 2, "not a plain decimal"),
    ("-1.00", 2, "not a plain decimal"),
    ("+1.00", 2, "not a plain decimal"),
    ("NaN", 2, "not a plain decimal"),
    ("nan", 2, "not a plain decimal"),
    ("inf", 2, "not a plain decimal"),
    ("Infinity", 2, "not a plain decimal"),
    ("1e5", 2, "not a plain decimal"),
    (" 1.00", 2, "not a plain decimal"),
    ("1.00 ", 2, "not a plain decimal"),
    ("1,00", 2, "not a plain decimal"),
    (".5", 2, "not a plain decimal"),
    ("5.", 2, "not a plain decimal"),
    ("1.2.3", 2, "not a plain decimal"),
    ("0x10", 2, "not a plain decimal"),
    ("1.000", 2, "more than 2 fraction digits"),  # strict even when the extra digits are zeros
    ("2064.545", 2, "more than 2 fraction digits"),
    ("1.5", 0, "more than 0 fraction digits"),
    ("9223372036854775808", 0, "out of int64 range"),
    ("922337203685477580.8", 1, "out of int64 range"),
    ("10", 18, "out of int64 range"),
    ("99999999999999999999999999999", 0, "out of int64 range"),
    ("١٢٣", 0, "not an ASCII string"),  # Arabic-Indic digits
    ("1.5\u00e9", 2, "not an ASCII string"),
]


@pytest.mark.parametrize(("text", "decimals", "reason"), MALFORMED)
def test_parse_malformed_names_the_value(text: str, decimals: int, reason: str) -> None:
    with pytest.raises(BookError) as info:
        parse_decimal(text, decimals)
    assert repr(text) in str(info.value)
    assert reason in str(info.value)
    assert isinstance(info.value, ValueError)
    with pytest.raises(RefBookError):  # the reference model agrees
        ref_parse(text, decimals)


def test_parse_error_truncates_long_values() -> None:
    text = "1" * 5000 + "x"
    with pytest.raises(BookError) as info:
        parse_decimal(text, 2)
    assert len(str(info.value)) < 200
    assert repr(text)[:40] in str(info.value)


def test_parse_bad_decimals_and_types() -> None:
    with pytest.raises(ValueError, match="decimals"):
        parse_decimal("1", 19)
    with pytest.raises(ValueError, match="decimals"):
        parse_decimal("1", -1)
    with pytest.raises(BookError):
        parse_decimal(1.5, 2)  # type: ignore[arg-type]
    with pytest.raises(BookError):
        parse_decimal(b"\xff1", 2)


def test_book_parse_price_and_size() -> None:
    b = OrderBook(3, 2, 4)
    assert b.parse_price("2064.54") == 206454
    assert b.parse_size("0.3285") == 3285
    assert b.parse_size("0") == 0
    with pytest.raises(BookError, match="zero price"):
        b.parse_price("0.00")
    with pytest.raises(BookError, match="fraction digits"):
        b.parse_size("0.32850")


# --- apply basics ------------------------------------------------------------------------------


def test_snapshot_sets_levels_and_state(book: OrderBook) -> None:
    assert book.best_bid() == 10000 and book.best_bid_size() == 32500
    assert book.best_ask() == 10005 and book.best_ask_size() == 15000
    assert book.top(ASK, 10) == [(10005, 15000), (10010, 20000), (10100, 1)]
    assert book.top(BID, 2) == [(10000, 32500), (9995, 10000)]
    assert book.level_count(BID) == 3 and book.level_count(ASK) == 3
    assert book.nonce == 10 and book.in_sync() and book.has_snapshot
    assert (book.messages, book.snapshots) == (1, 1)
    book._check_invariants()


def test_delta_updates_inserts_and_deletes(book: OrderBook) -> None:
    rc = book.apply_delta(
        asks=[lv("100.05", "0"), lv("100.07", "4")],
        bids=[lv("100.00", "1"), lv("99.95", "0"), lv("99.99", "0")],  # last: delete of nothing
        nonce=11,
        begin_nonce=10,
    )
    assert rc == APPLIED
    assert book.top(ASK, 10) == [(10007, 40000), (10010, 20000), (10100, 1)]
    assert book.top(BID, 10) == [(10000, 10000), (9000, 100000)]
    assert book.nonce == 11 and book.messages == 2
    book._check_invariants()


def test_deleting_the_best_finds_the_next(book: OrderBook) -> None:
    assert book.apply_delta([lv("100.05", "0")], [lv("100.00", "0")], 11, 10) == APPLIED
    assert book.best_ask() == 10010 and book.best_ask_size() == 20000
    assert book.best_bid() == 9995 and book.best_bid_size() == 10000
    assert book.apply_delta([], [lv("99.95", "0"), lv("90.00", "0")], 12, 11) == APPLIED
    assert book.best_bid() == 0 and book.best_bid_size() == 0 and book.level_count(BID) == 0
    book._check_invariants()


def test_snapshot_replaces_everything(book: OrderBook) -> None:
    assert book.apply_snapshot([lv("200.00", "1")], [], 50) == APPLIED
    assert book.top(ASK, 10) == [(20000, 10000)]
    assert book.top(BID, 10) == []
    assert book.nonce == 50 and book.snapshots == 2


def test_duplicate_levels_in_one_message_apply_in_order(book: OrderBook) -> None:
    rc = book.apply_delta(
        [lv("100.50", "1"), lv("100.50", "0"), lv("100.60", "1"), lv("100.60", "2")], [], 11, 10
    )
    assert rc == APPLIED
    assert book.size_at(ASK, 10050) == 0 and book.size_at(ASK, 10060) == 20000


# --- nonce chain -------------------------------------------------------------------------------


def test_pre_snapshot_deltas_are_dropped_without_going_out_of_sync() -> None:
    b = OrderBook(0, 2, 4)
    assert b.apply_delta([lv("1.00", "1")], [], 5, 4) == DROPPED_PRE_SNAPSHOT
    assert b.apply_delta([lv("1.00", "1")], [], 6, 5) == DROPPED_PRE_SNAPSHOT
    assert b.dropped_pre_snapshot == 2 and b.gaps == 0 and b.ignored_out_of_sync == 0
    assert b.level_count(ASK) == 0 and not b.in_sync()
    assert b.apply_snapshot([lv("1.00", "1")], [], 6) == APPLIED
    assert b.in_sync()
    assert b.apply_delta([lv("1.00", "2")], [], 7, 6) == APPLIED
    assert b.best_ask_size() == 20000


def test_gap_marks_out_of_sync_until_snapshot(book: OrderBook) -> None:
    before = state(book)[:6]
    assert book.apply_delta([lv("100.05", "9")], [], 12, 11) == GAP  # expected begin 10
    assert not book.in_sync() and book.gaps == 1
    assert state(book)[:6] == before and book.nonce == 10  # nothing applied
    # Even a delta that would have continued the old chain is ignored now.
    assert book.apply_delta([lv("100.05", "9")], [], 11, 10) == IGNORED_OUT_OF_SYNC
    assert book.ignored_out_of_sync == 1 and book.gaps == 1
    assert state(book)[:6] == before
    assert book.apply_snapshot([lv("100.05", "9")], [], 100) == APPLIED
    assert book.in_sync() and book.best_ask_size() == 90000
    assert book.apply_delta([], [], 101, 100) == APPLIED


def test_duplicate_and_reordered_deltas_are_gaps(book: OrderBook) -> None:
    assert book.apply_delta([], [], 11, 10) == APPLIED
    assert book.apply_delta([], [], 11, 10) == GAP  # duplicate
    book.apply_snapshot([], [], 20)
    assert book.apply_delta([], [], 22, 21) == GAP  # reordered: 21->22 before 20->21


def test_invalidate(book: OrderBook) -> None:
    book.invalidate()
    assert not book.in_sync()
    assert book.apply_delta([], [], 11, 10) == IGNORED_OUT_OF_SYNC
    assert book.apply_snapshot([], [lv("1.00", "1")], 30) == APPLIED and book.in_sync()


def test_invalidate_before_snapshot_still_drops() -> None:
    b = OrderBook(0, 2, 4)
    b.invalidate()
    assert b.apply_delta([], [], 1, 0) == DROPPED_PRE_SNAPSHOT


def test_gap_check_applies_to_begin_nonce_zero(book: OrderBook) -> None:
    assert book.apply_delta([], [], 11, 0) == GAP


# --- malformed messages change nothing ----------------------------------------------------------

BAD_DELTAS = [
    ([lv("100.05", "1"), lv("100.07", "-1")], [], 11, 10),
    ([lv("100.05", "1")], [lv("0.00", "1")], 11, 10),
    ([lv("100.05", "1")], [lv("99.999", "1")], 11, 10),
    ([lv("100.05", "1")], [{"price": "99.00"}], 11, 10),
    ([lv("100.05", "1")], [{"size": "1"}], 11, 10),
    ([lv("100.05", "1")], [{"price": 99.0, "size": "1"}], 11, 10),
    ([lv("100.05", "1")], [["99.00", "1"]], 11, 10),
    ([lv("100.05", "NaN")], [], 11, 10),
    ([lv("100.05", "1")], (), 11, 10),
    (None, [], 11, 10),
    ([lv("100.05", "1")], [], "11", 10),
    ([lv("100.05", "1")], [], 11, 10.0),
    ([lv("100.05", "1")], [], True, 10),
    ([lv("100.05", "1")], [], -1, 10),
    ([lv("100.05", "1")], [], 2**63, 10),
]


@pytest.mark.parametrize("bad", BAD_DELTAS)
def test_malformed_delta_changes_nothing(book: OrderBook, bad: tuple) -> None:
    before = state(book)
    with pytest.raises(BookError):
        book.apply_delta(*bad)
    after = state(book)
    assert after[:-2] == before[:-2]
    assert after[-2] == before[-2] + 1  # malformed counted once
    ref = ReferenceBook(0, 2, 4)
    with pytest.raises(RefBookError):
        ref.apply_delta(*bad)
    assert ref.malformed == 1
    book._check_invariants()


def test_malformed_snapshot_keeps_old_book(book: OrderBook) -> None:
    before = state(book)
    with pytest.raises(BookError, match=r"'1\.0x'"):
        book.apply_snapshot([lv("1.00", "1")], [lv("1.0x", "1")], 99)
    assert state(book)[:-2] == before[:-2] and book.malformed == 1


MESSAGE_ERRORS = [
    [1, 2],
    "update/order_book",
    {"type": "update/order_book"},
    {"type": "update/order_book", "order_book": []},
    {"type": "update/order_book", "order_book": {"bids": [], "nonce": 1, "begin_nonce": 0}},
    {"type": "update/order_book", "order_book": {"asks": [], "nonce": 1, "begin_nonce": 0}},
    {"type": "update/order_book", "order_book": {"asks": [], "bids": [], "begin_nonce": 0}},
    {"type": "update/order_book", "order_book": {"asks": [], "bids": [], "nonce": 1}},
    {"type": "subscribed/order_book", "order_book": {"asks": [], "bids": [], "nonce": None}},
]


@pytest.mark.parametrize("m", MESSAGE_ERRORS)
def test_apply_message_errors(m: object) -> None:
    b, ref = OrderBook(0, 2, 4), ReferenceBook(0, 2, 4)
    with pytest.raises(BookError):
        b.apply_message(m)  # type: ignore[arg-type]
    with pytest.raises(RefBookError):
        ref.apply_message(m)
    assert b.malformed == ref.malformed == 1


def test_snapshot_message_ignores_begin_nonce() -> None:
    b = OrderBook(0, 2, 4)
    m = {"type": "subscribed/order_book", "order_book": {"asks": [], "bids": [], "nonce": 3}}
    assert b.apply_message(m) == APPLIED and b.nonce == 3
    m["order_book"]["begin_nonce"] = "junk"
    assert b.apply_message(m) == APPLIED


@pytest.mark.parametrize(
    "m",
    [
        {},
        {"type": "ping"},
        {"type": None},
        {"type": 5},
        {"type": "update/trade", "order_book": 1},
        {"type": "update/order_book2"},
        {"channel": "order_book:0", "order_book": {}},
    ],
)
def test_not_book_messages(m: dict) -> None:
    b = OrderBook(0, 2, 4)
    assert b.apply_message(m) == NOT_BOOK
    assert b.apply_frame(orjson.dumps(m)) == NOT_BOOK
    assert b.not_book == 2 and b.malformed == 0


# --- frames and fixtures -----------------------------------------------------------------------


def test_fixture_snapshot_and_update_frames() -> None:
    snap = (FIXTURES / "ws_order_book_subscribed.json").read_bytes()
    upd = (FIXTURES / "ws_order_book_update.json").read_bytes()
    b = OrderBook(0, 2, 4)
    assert b.apply_frame(upd) == DROPPED_PRE_SNAPSHOT
    assert b.apply_frame(snap) == APPLIED
    assert b.top(ASK, 5) == [(232500, 990000), (234125, 3401028)]
    assert b.top(BID, 5) == [(200000, 200)]
    assert b.nonce == 904845 and b.in_sync()
    # The update fixture continues another chain (begin_nonce 9182389998): a gap here.
    assert b.apply_frame(upd) == GAP and not b.in_sync()
    # Re-based so the chain continues, the same delta applies: ask 2064.54 x 0.3285.
    d = orjson.loads(snap)
    d["order_book"]["nonce"] = 9182389998
    b.apply_message(d)
    assert b.apply_frame(upd) == APPLIED
    assert b.best_ask() == 206454 and b.best_ask_size() == 3285 and b.nonce == 9182390020


def test_fixture_frames_match_orjson_path() -> None:
    for name in sorted(p.name for p in FIXTURES.glob("*.json")):
        data = (FIXTURES / name).read_bytes()
        fast, slow = OrderBook(0, 2, 4), OrderBook(0, 2, 4)
        assert fast.apply_frame(data) == slow.apply_message(orjson.loads(data)), name
        assert state(fast) == state(slow), name


def test_fixture_empty_and_error_frames() -> None:
    b = OrderBook(39, 2, 4)
    assert b.apply_frame((FIXTURES / "ws_order_book_subscribed_empty.json").read_bytes()) == APPLIED
    assert b.level_count(BID) == b.level_count(ASK) == 0 and b.in_sync() and b.nonce == 0
    assert (
        b.apply_frame((FIXTURES / "ws_order_book_subscribe_failed.json").read_bytes()) == NOT_BOOK
    )


FALLBACK_FRAMES = [
    # escapes, floats, nested skipped values, odd whitespace: all handled by the orjson path
    b'{"type":"subscribed/order_book","order_book":{"asks":[{"price":"1\\u002e00","size":"1"}],'
    b'"bids":[],"nonce":5}}',
    b'{"type":"subscribed/order_book","x":{"a":[1,2.5]},"order_book":{"asks":[],"bids":[],'
    b'"nonce":5,"code":0.0}}',
    b'{"type":"subscribed/order_book","order_book":{"asks":[],"bids":[],"nonce":5.0}}',
    b'{"type":"subscribed/order_book","order_book":{"asks":[],"bids":[],"nonce":1e3}}',
    b'{"type":"subscribed/order_book","order_book":{"asks":[],"bids":[],"nonce":-5}}',
    b'{"type":"subscribed/order_book","order_book":{"asks":[],"bids":[],"nonce":5},"type":"x"}',
    b'{"type":"subscribed/order_book","order_book":{"asks":[],"asks":[],"bids":[],"nonce":5}}',
    b'{"type":"subscribed/order_book","order_book":{"asks":[{"price":"1.00","size":"1",'
    b'"size":"2"}],"bids":[],"nonce":5}}',
    b'{"type":"subscribed/order_book","order_book":{"asks":[{"price":"1.00","size":2}],'
    b'"bids":[],"nonce":5}}',
    b'{"type":"subscribed/order_book","order_book":{"asks":[],"bids":[],"nonce":5}} x',
    b'{"type":"subscribed/order_book","order_book":{"asks":[],"bids":[],"nonce":5},}',
    b'{"type":"subscribed/order_book","order_book":{"asks":[],"bids":[],"nonce":05}}',
    b'{"type":"subscribed/order_book","order_book":{"asks":[],"bids":[],"nonce":'
    b"99999999999999999999}}",
    b'{"type":"subscribed/order_book","order_book":{"asks":[],"bids":null,"nonce":5}}',
    b'{"type":"subscribed/order_book","chan\xc3\xa9":"\xc3\xa9","order_book":{"asks":[],'
    b'"bids":[],"nonce":5}}',
    b'{"type":"subscribed/order_book","c":"\xff","order_book":{"asks":[],"bids":[],"nonce":5}}',
    b"\xef\xbb\xbf{}",
    b"[]",
    b"",
    b"   ",
    b"null",
    b'{"type":"update/order_book"',
]


@pytest.mark.parametrize("frame", FALLBACK_FRAMES)
def test_frames_outside_the_fast_path_match_orjson_path(frame: bytes) -> None:
    base = msg("subscribed", [lv("1.00", "1")], [lv("0.50", "2")], 4)
    fast, ref = OrderBook(0, 2, 4), ReferenceBook(0, 2, 4)
    fast.apply_message(base)
    ref.apply_message(base)
    try:
        expected: object = ref.apply_frame(frame)
    except RefBookError:
        expected = BookError
    if expected is BookError:
        with pytest.raises(BookError):
            fast.apply_frame(frame)
    else:
        assert fast.apply_frame(frame) == expected
    assert state(fast) == state(ref)


def test_frame_accepts_bytes_like() -> None:
    data = orjson.dumps(msg("subscribed", [lv("1.00", "1")], [], 1))
    for wrapped in (bytearray(data), memoryview(data)):
        b = OrderBook(0, 2, 4)
        assert b.apply_frame(wrapped) == APPLIED and b.best_ask() == 100
    with pytest.raises(TypeError):
        OrderBook(0, 2, 4).apply_frame("text")  # type: ignore[arg-type]


def test_frame_with_whitespace_and_key_order() -> None:
    frame = (
        b' \n{ "order_book" : {\t"nonce" : 7 , "bids" : [ { "size" : "2.5" , "x" : null ,'
        b' "price" : "99.00" } ] , "asks" : [ ] , "code" : 0 } ,\r\n "type" : '
        b'"subscribed/order_book" , "timestamp" : 1774884082326 , "ok" : true }\n '
    )
    b = OrderBook(0, 2, 4)
    assert b.apply_frame(frame) == APPLIED
    assert b.top(BID, 5) == [(9900, 25000)] and b.nonce == 7


def test_invalid_json_counts_as_malformed() -> None:
    b = OrderBook(0, 2, 4)
    with pytest.raises(BookError, match="invalid JSON"):
        b.apply_frame(b'{"type": "update/order_book", "order_book": {')
    assert b.malformed == 1


# --- queries -----------------------------------------------------------------------------------


def test_queries(book: OrderBook) -> None:
    assert book.size_at(BID, 9995) == 10000
    assert book.size_at(ASK, 10010) == 20000
    assert (
        book.size_at(ASK, 10000) == 0 and book.size_at(BID, 0) == 0 and book.size_at(BID, -5) == 0
    )
    assert book.depth_to(BID, 9995) == 42500
    assert book.depth_to(BID, 1) == 142500
    assert book.depth_to(BID, 10001) == 0  # better than the best
    assert book.depth_to(ASK, 10010) == 35000
    assert book.depth_to(ASK, 10004) == 0
    assert book.depth_to(ASK, INT64_MAX) == 35001
    assert book.top(BID, 0) == [] and book.top(BID, -1) == []
    assert book.mid_x2() == 20005 and book.mid() == 10002.5
    assert book.microprice() == pytest.approx((10000 * 15000 + 10005 * 32500) / 47500, rel=1e-15)
    assert not book.is_crossed() and not book.is_locked()
    with pytest.raises(ValueError):
        book.top(2, 1)
    with pytest.raises(ValueError):
        book.size_at(-1, 1)
    with pytest.raises(ValueError):
        book.depth_to(5, 1)
    with pytest.raises(ValueError):
        book.level_count(2)


def test_empty_book_queries() -> None:
    b = OrderBook(0, 2, 4)
    assert (b.best_bid(), b.best_ask(), b.best_bid_size(), b.best_ask_size()) == (0, 0, 0, 0)
    assert math.isnan(b.mid()) and math.isnan(b.microprice()) and b.mid_x2() == 0
    assert not b.is_crossed() and not b.is_locked() and not b.in_sync()
    b.apply_snapshot([], [lv("1.00", "1")], 1)
    assert math.isnan(b.mid()) and b.mid_x2() == 0 and math.isnan(b.microprice())


def test_crossed_and_locked(book: OrderBook) -> None:
    assert book.apply_delta([], [lv("100.05", "1")], 11, 10) == APPLIED
    assert book.is_locked() and not book.is_crossed()
    assert book.apply_delta([], [lv("100.06", "1")], 12, 11) == APPLIED
    assert book.is_crossed() and not book.is_locked()


def test_extreme_prices_and_sizes() -> None:
    b = OrderBook(0, 0, 0, window=64)
    top = str(INT64_MAX)
    b.apply_snapshot([lv(top, top), lv("1", "1")], [lv(top, top), lv("1", top)], 1)
    b._check_invariants()
    assert b.best_ask() == 1 and b.best_bid() == INT64_MAX
    assert b.top(ASK, 3) == [(1, 1), (INT64_MAX, INT64_MAX)]
    assert b.top(BID, 3) == [(INT64_MAX, INT64_MAX), (1, INT64_MAX)]
    assert b.mid_x2() == INT64_MAX + 1  # exact, no overflow
    assert b.depth_to(BID, 1) == 2 * INT64_MAX  # exact beyond int64
    assert b.microprice() == pytest.approx(
        (INT64_MAX * 1 + 1 * INT64_MAX) / (INT64_MAX + 1), rel=1e-15
    )
    assert b.is_crossed()
    b.apply_delta([lv(top, "0")], [lv(top, "0")], 2, 1)
    b._check_invariants()
    assert b.top(ASK, 3) == [(1, 1)] and b.top(BID, 3) == [(1, INT64_MAX)]


# --- storage: window re-centring, overflow, memory ------------------------------------------------


def test_window_recentres_and_overflow_stays_correct() -> None:
    rng = random.Random(7)
    b, ref = OrderBook(0, 0, 0, window=64), ReferenceBook(0, 0, 0)
    center = 10_000
    b.apply_snapshot([], [], 1)
    ref.apply_snapshot([], [], 1)
    nonce = 1
    for step in range(3000):
        if step % 200 == 0:
            center += rng.choice([-5000, -300, 300, 5000])  # jumps far outside the window
        center = max(1000, center + rng.randint(-3, 3))
        bids = [
            lv(str(center - rng.randint(0, 400)), str(rng.choice([0, 0, 1, 7, 30])))
            for _ in range(rng.randint(0, 4))
        ]
        asks = [
            lv(str(center + rng.randint(1, 400)), str(rng.choice([0, 0, 1, 7, 30])))
            for _ in range(rng.randint(0, 4))
        ]
        assert b.apply_delta(asks, bids, nonce + 1, nonce) == ref.apply_delta(
            asks, bids, nonce + 1, nonce
        )
        nonce += 1
        if step % 50 == 0:
            b._check_invariants()
            assert state(b) == state(ref)
    b._check_invariants()
    assert state(b) == state(ref)
    assert b.level_count(BID) > 64  # far more levels than the window holds


def test_hot_bytes_bound_and_window_validation() -> None:
    b = OrderBook(0, 2, 4)
    assert b.window == cbook.DEFAULT_WINDOW
    assert b.hot_bytes <= 65536
    # A huge snapshot grows the scratch only while it is applied.
    levels = [lv(f"{1000 + i * 0.01:.2f}", "1") for i in range(20_000)]
    b.apply_snapshot(levels, [], 1)
    assert b.level_count(ASK) == 20_000 and b.hot_bytes <= 65536
    b._check_invariants()
    for w in (0, 32, 65, 100, 2**21):
        with pytest.raises(ValueError, match="window"):
            OrderBook(0, 2, 4, window=w)
    for args in ((-1, 2, 4), (0, 19, 4), (0, 2, -1)):
        with pytest.raises(ValueError):
            OrderBook(*args)
    assert OrderBook(5, 2, 4, window=64).hot_bytes < b.hot_bytes


def _delta_frames(n: int) -> tuple[bytes, list[bytes], list[dict]]:
    rng = random.Random(3)
    snap = orjson.dumps(
        msg(
            "subscribed",
            [lv(f"{2000 + i / 100:.2f}", "1") for i in range(1, 60)],
            [lv(f"{2000 - i / 100:.2f}", "1") for i in range(60)],
            100,
        )
    )
    frames, dicts = [], []
    for i in range(n):
        p = f"{2000 + rng.randint(-50, 50) / 100:.2f}"
        size = f"{rng.randint(0, 3)}.{rng.randint(0, 9999):04d}"
        side = [lv(p, size)]
        d = msg(
            "update",
            side if p > "2000.00" else [],
            side if p <= "2000.00" else [],
            101 + i,
            100 + i,
        )
        frames.append(orjson.dumps(d))
        dicts.append(d)
    return snap, frames, dicts


# A line tracer (coverage over the traced build, a debugger) allocates per traced line.
@pytest.mark.skipif(sys.gettrace() is not None, reason="allocations counted under a tracer")
def test_apply_path_allocates_no_python_objects() -> None:
    snap, frames, dicts = _delta_frames(2000)
    b = OrderBook(0, 2, 4)
    for _ in range(2):  # warm up: every code path and cache touched once
        b.apply_frame(snap)
        for f in frames:
            b.apply_frame(f)
        b.apply_frame(snap)
        for d in dicts:
            b.apply_message(d)
    assert b.in_sync()

    def traced_peak(run) -> int:
        gc.collect()
        tracemalloc.start()
        try:
            tracemalloc.reset_peak()
            base = tracemalloc.get_traced_memory()[0]
            blocks = sys.getallocatedblocks()
            run()
            growth = sys.getallocatedblocks() - blocks
            return tracemalloc.get_traced_memory()[1] - base, growth
        finally:
            tracemalloc.stop()

    def frames_run() -> None:
        b.apply_frame(snap)
        for f in frames:
            b.apply_frame(f)

    def dicts_run() -> None:
        b.apply_frame(snap)
        for d in dicts:
            b.apply_message(d)

    for run in (frames_run, dicts_run):
        peak, growth = traced_peak(run)
        # 2001 messages; one allocated object per message would show as >= 32 B of peak each.
        assert peak < 512, peak
        assert abs(growth) < 16, growth
    assert b.in_sync() and b.messages > 8000
    # The check can fail: the decoding path allocates per message.
    peak, _ = traced_peak(lambda: [b.apply_message(orjson.loads(f)) for f in frames[:100]])
    assert peak >= 512, peak


# --- apply_levels --------------------------------------------------------------------------------


def test_apply_levels_matches_reference_and_validates() -> None:
    rng = np.random.default_rng(5)
    b, ref = OrderBook(0, 2, 4, window=128), ReferenceBook(0, 2, 4)
    for side in (BID, ASK):
        prices = rng.integers(9000, 11000, size=5000, dtype=np.int64)
        sizes = rng.integers(0, 4, size=5000, dtype=np.int64)
        b.apply_levels(side, prices, sizes)
        ref.apply_levels(side, prices.tolist(), sizes.tolist())
        b._check_invariants()
    assert state(b) == state(ref)
    assert b.messages == 0 and b.nonce == 0  # raw entry: no counters, no nonce
    before = state(b)
    bad = [
        (2, np.array([1], np.int64), np.array([1], np.int64)),
        (BID, np.array([1, 2], np.int64), np.array([1], np.int64)),
        (BID, np.array([1, 0], np.int64), np.array([1, 1], np.int64)),
        (ASK, np.array([1, 5], np.int64), np.array([1, -1], np.int64)),
        (BID, np.array([1], np.int32), np.array([1], np.int32)),
        (BID, [1], [1]),
        (BID, np.zeros((2, 2), np.int64), np.zeros((2, 2), np.int64)),
    ]
    for args in bad:
        with pytest.raises(BookError):
            b.apply_levels(*args)
    assert state(b) == before
    # Strided views are accepted.
    p = np.array([9500, 0, 9501, 0], np.int64)[::2]
    b.apply_levels(BID, p, np.array([7, 7], np.int64))
    assert b.size_at(BID, 9501) == 7
