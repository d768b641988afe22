"""Checks of the benchmark inputs and tools: the L2 stream generator, the SortedDict baseline and
the harness. Run with ``pytest bench/`` (the normal test run only collects ``tests/``)."""

from __future__ import annotations

import json
import re

import orjson
import pytest

from bench.baselines import ASK, BID, SortedDictBook, parse_fixed
from bench.harness import Case, Stats, percentile, run_group
from bench.l2stream import L2Stream, StreamConfig, format_decimal, generate

# Key order of lighter-fixtures/ws_order_book_update.json (the venue's frame shape).
FRAME_KEYS = ["channel", "last_updated_at", "offset", "order_book", "timestamp", "type"]
BOOK_KEYS = ["code", "asks", "bids", "offset", "nonce", "last_updated_at", "begin_nonce"]
PRICE_RE = re.compile(rb'"price":"(\d+\.\d{2})"')
SIZE_RE = re.compile(rb'"size":"([^"]*)"')


@pytest.fixture(scope="module")
def stream() -> L2Stream:
    return generate(StreamConfig(seed=7, n_deltas=4000))


def _replay(messages: list[dict]) -> tuple[dict[int, int], dict[int, int], list[tuple[int, int]]]:
    bids: dict[int, int] = {}
    asks: dict[int, int] = {}
    tops = []
    for m in messages:
        ob = m["order_book"]
        if m["type"] == "subscribed/order_book":
            bids, asks = {}, {}
        for levels, key in ((bids, "bids"), (asks, "asks")):
            for lvl in ob[key]:
                price = parse_fixed(lvl["price"], 2)
                size = parse_fixed(lvl["size"], 4)
                if size:
                    levels[price] = size
                else:
                    assert price in levels, f"delete of a missing level {lvl}"
                    del levels[price]
        tops.append((max(bids, default=0), min(asks, default=0)))
    return bids, asks, tops


def test_same_seed_same_bytes() -> None:
    a = generate(StreamConfig(seed=3, n_deltas=500))
    b = generate(StreamConfig(seed=3, n_deltas=500))
    c = generate(StreamConfig(seed=4, n_deltas=500))
    assert a.frames == b.frames
    assert a.frames != c.frames


def test_frames_are_compact_json_of_the_messages(stream: L2Stream) -> None:
    assert len(stream.frames) == len(stream.messages) == 4001
    for data, msg in zip(stream.frames[:300], stream.messages[:300], strict=True):
        assert json.loads(data) == msg == orjson.loads(data)
        assert json.dumps(msg, separators=(",", ":")).encode() == data
        assert list(msg) == FRAME_KEYS
        assert list(msg["order_book"]) == BOOK_KEYS
        assert msg["channel"] == "order_book:0"
        assert msg["order_book"]["code"] == 0


def test_nonce_chain_like_lighter(stream: L2Stream) -> None:
    snap = stream.messages[0]
    assert snap["type"] == "subscribed/order_book"
    assert snap["order_book"]["begin_nonce"] == 0
    prev = snap["order_book"]["nonce"]
    for m in stream.messages[1:]:
        assert m["type"] == "update/order_book"
        assert m["order_book"]["begin_nonce"] == prev
        assert m["order_book"]["nonce"] > prev
        prev = m["order_book"]["nonce"]


def test_decimal_strings_have_market_decimals(stream: L2Stream) -> None:
    for data in stream.frames[:1000]:
        n_levels = data.count(b'"price"')
        assert len(PRICE_RE.findall(data)) == n_levels
        for size in SIZE_RE.findall(data):
            assert size == b"0" or re.fullmatch(rb"\d+\.\d{4}", size), size


def test_replayed_book_is_never_crossed_and_matches_tops(stream: L2Stream) -> None:
    bids, asks, tops = _replay(stream.messages)
    assert tops == stream.tops
    assert all(0 < b < a for b, a in tops)
    assert bids == stream.final_bids
    assert asks == stream.final_asks


def test_shape_is_realistic(stream: L2Stream) -> None:
    snap = stream.messages[0]["order_book"]
    assert 50 <= len(snap["asks"]) <= 100
    assert 50 <= len(snap["bids"]) <= 100
    counts = [len(m["order_book"]["asks"]) + len(m["order_book"]["bids"]) for m in stream.messages]
    deltas = counts[1:]
    assert min(deltas) >= 1
    assert sum(1 <= c <= 3 for c in deltas) / len(deltas) > 0.98
    st = stream.stats()
    assert 0.1 < st["deletes_fraction"] < 0.4
    assert 250 <= st["delta_bytes_mean"] <= 420
    # Level counts stay in a realistic band, and some new levels appear far from the touch.
    far = 0
    bids: dict[int, int] = {}
    asks: dict[int, int] = {}
    for i, m in enumerate(stream.messages):
        for levels, key in ((bids, "bids"), (asks, "asks")):
            for lvl in m["order_book"][key]:
                price, size = parse_fixed(lvl["price"], 2), parse_fixed(lvl["size"], 4)
                if size and price not in levels and i and abs(price - stream.tops[i][0]) >= 20:
                    far += key == "bids"
                if size:
                    levels[price] = size
                else:
                    levels.pop(price)
        assert 40 <= len(bids) <= 110 and 40 <= len(asks) <= 110
    assert far > 50


def test_levels_are_the_delta_levels_as_ints(stream: L2Stream) -> None:
    prices, sizes = stream.levels(BID)
    n = sum(len(m["order_book"]["bids"]) for m in stream.messages[1:])
    assert len(prices) == len(sizes) == n
    first = next(m["order_book"]["bids"] for m in stream.messages[1:] if m["order_book"]["bids"])
    assert prices[0] == parse_fixed(first[0]["price"], 2)
    assert sizes[0] == parse_fixed(first[0]["size"], 4)


@pytest.mark.parametrize(
    ("value", "decimals", "text"),
    [(206454, 2, "2064.54"), (3285, 4, "0.3285"), (1, 4, "0.0001"), (0, 4, "0"), (5, 0, "5")],
)
def test_format_decimal(value: int, decimals: int, text: str) -> None:
    assert format_decimal(value, decimals) == text
    assert parse_fixed(text, decimals) == value


@pytest.mark.parametrize("bad", ["", ".5", "1.", "-1", "1.234", "1e3", "nan", "١.٢", " 1"])
def test_parse_fixed_is_strict(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_fixed(bad, 2)


def test_sorted_dict_book_follows_the_stream(stream: L2Stream) -> None:
    book = SortedDictBook(2, 4)
    assert book.apply_message(stream.messages[1]) == 1  # before the snapshot: dropped
    codes = [book.apply_message(m) for m in stream.messages]
    assert codes == [0] * len(codes)
    assert (book.best_bid(), book.best_ask()) == stream.tops[-1]
    assert dict(book.bids) == stream.final_bids
    assert dict(book.asks) == stream.final_asks
    assert book.apply_message(stream.messages[5]) == 2  # stale begin_nonce: gap
    assert book.apply_message(stream.messages[6]) == 3
    book.set_level(ASK, 1, 5)
    assert book.best_ask() == 1
    book.set_level(ASK, 1, 0)
    assert book.best_ask() == stream.tops[-1][1]


def test_percentile_and_stats() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == pytest.approx(50.5)
    assert percentile(values, 99) == pytest.approx(99.01)
    assert percentile([3.0], 99) == 3.0
    s = Stats.from_samples("x", [5.0, 1.0, 3.0], ops=7)
    assert (s.p50_ns, s.min_ns, s.mean_ns, s.n, s.ops) == (3.0, 1.0, 3.0, 3, 7)
    assert s.as_dict()["name"] == "x"


def test_run_group_interleaves_prepares_and_checks() -> None:
    order: list[str] = []
    checked: list[str] = []

    def make(name: str) -> Case:
        return Case(
            name,
            body=lambda: order.append(name),
            ops=4,
            prepare=lambda: order.append(name + "-prep"),
            check=lambda: checked.append(name),
        )

    stats = run_group([make("a"), make("b")], samples=6, warmup=1, rounds=3)
    assert [s.n for s in stats] == [6, 6]
    assert [s.ops for s in stats] == [4, 4]
    timed = [x for x in order if not x.endswith("-prep")]
    # 1 warmup each, then rounds of 2 samples of a, then of b.
    assert timed == ["a", "b"] + ["a", "a", "b", "b"] * 3
    assert order[:2] == ["a-prep", "a"]
    assert checked == ["a", "b"]
