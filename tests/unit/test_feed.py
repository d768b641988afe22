"""The compiled market-data listener (``mmfast._core.feed.BookFeed``): a book frame of an
attached market runs the step on the frame's bytes and then Python's after-callbacks; everything
else goes to the stream's Python handler, unchanged."""

from __future__ import annotations

import time
from typing import Any

import orjson
import picows
from picows.picows import WSMsgType, _make_test_ws_frame
from test_pipeline_twin import SNAP, _level, _pipe

from mmfast._core.book import APPLIED
from mmfast._core.feed import PICOWS_VERSION, BookFeed


class Stream:
    """What the feed calls on its WsStream."""

    def __init__(self) -> None:
        self.py: list[bytes] = []
        self.books: list[tuple[int, int, bool, int]] = []
        self.other: list[bytes] = []
        self.malformed = 0
        self.gone = 0

    def _on_frame(self, listener: Any, transport: Any, frame: Any) -> None:
        self.py.append(frame.get_payload_as_bytes())

    def _after_book(self, market: int, code: int, now: int, snapped: bool, ts: int) -> None:
        self.books.append((market, code, snapped, ts))

    def _after_other(self, data: bytes, now: int) -> None:
        self.other.append(data)

    def _on_disconnected(self, listener: Any) -> None:
        self.gone += 1


def _text(data: bytes) -> Any:
    return _make_test_ws_frame(WSMsgType.TEXT, data, True, False)


def _delta(nonce: int, bid: int, ts: int = 0) -> bytes:
    msg: dict[str, Any] = {
        "type": "update/order_book",
        "channel": "order_book:0",
        "order_book": {
            "asks": [],
            "bids": [_level(bid, 20_000)],
            "nonce": nonce + 1,
            "begin_nonce": nonce,
        },
    }
    if ts:
        msg["timestamp"] = ts
    return orjson.dumps(msg)


def _feed() -> tuple[BookFeed, Stream, Any, list[tuple[int, int]]]:
    p, _ = _pipe()
    after: list[tuple[int, int]] = []
    s = Stream()
    f = BookFeed(s, 1, {0: (p, lambda code, now: after.append((code, now)))}, 500_000_000)
    return f, s, p, after


def test_built_for_the_installed_and_pinned_picows() -> None:
    """The listener is compiled against picows's object layouts: one release, pinned exactly
    for the build and the run."""
    import tomllib
    from pathlib import Path

    assert picows.__version__ == PICOWS_VERSION
    meta = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    pin = f"picows=={PICOWS_VERSION}"
    assert pin in meta["build-system"]["requires"]
    assert pin in meta["project"]["dependencies"]


def test_book_frames_of_an_attached_market_take_the_compiled_path() -> None:
    f, s, p, after = _feed()
    t0 = time.monotonic_ns()
    f.on_ws_frame(None, _text(SNAP))
    assert p.frames == 1 and p.steps == 1 and p.n_out == 4  # the step ran on the bytes
    assert len(after) == 1 and after[0][0] == APPLIED and after[0][1] >= t0
    assert s.books == [(0, APPLIED, True, -1)] and s.py == [] and f.fast_frames == 1
    ts = 1_790_000_000_123
    f.on_ws_frame(None, _text(_delta(1, 300_005, ts)))
    assert p.frames == 2 and p.book.best_bid() == 300_005
    assert s.books[-1] == (0, APPLIED, False, ts)  # venue time read for the skew monitor
    f.on_ws_frame(None, _text(_delta(2, 300_006, ts + 1)))
    assert s.books[-1][3] == -1  # not again within skew_every_ns


def test_everything_else_takes_the_python_path() -> None:
    f, s, p, after = _feed()
    other_market = SNAP.replace(b"order_book:0", b"order_book:7")
    for data in (
        other_market,
        b'{"type":"update/market_stats","channel":"market_stats:0"}',
        b'{"type":"pong"}',
    ):
        f.on_ws_frame(None, _text(data))
    f.on_ws_frame(None, _make_test_ws_frame(WSMsgType.BINARY, SNAP, True, False))
    assert len(s.py) == 4 and p.frames == 0 and after == [] and s.books == []
    f.alive_until = time.monotonic_ns() - 1  # the loop's stamp is stale: a stall first
    f.on_ws_frame(None, _text(SNAP))
    assert len(s.py) == 5 and p.frames == 0
    f.alive_until = time.monotonic_ns() + 10**10
    f.fast = None  # an old connection's listener
    f.on_ws_frame(None, _text(SNAP))
    assert len(s.py) == 6 and p.frames == 0
    f.fast = {0: (p, lambda c, n: None)}
    f.on_ws_frame(None, _text(SNAP))
    assert len(s.py) == 6 and p.frames == 1


def test_frames_the_scanner_does_not_take_are_left_untouched_for_python() -> None:
    """A frame the book's scanner does not fully understand (an extra nested field; a bad
    price) applies nothing here: the stream's Python handler gets it whole (the reference
    parser there applies it or counts it malformed)."""
    f, s, p, after = _feed()
    odd = (
        b'{"channel":"order_book:0","type":"subscribed/order_book","order_book":'
        b'{"asks":[],"bids":[],"nonce":1},"extra":[1,{"a":[2]}]}'
    )
    f.on_ws_frame(None, _text(odd))
    assert p.book.messages == 0 and s.py == [odd] and after == [] and p.frames == 0
    f.on_ws_frame(None, _text(SNAP))
    bad = (
        b'{"type":"update/order_book","channel":"order_book:0","order_book":'
        b'{"asks":[{"price":"x","size":"1"}],"bids":[],"nonce":3,"begin_nonce":2}}'
    )
    f.on_ws_frame(None, _text(bad))
    assert s.py == [odd, bad] and p.frames == 1 and len(after) == 1 and s.malformed == 0


def test_not_a_book_message_is_dispatched() -> None:
    f, s, _p, after = _feed()
    msg = b'{"type":"subscribed/order_book_stats","channel":"order_book:0","x":1}'
    f.on_ws_frame(None, _text(msg))
    assert s.other == [msg] and s.py == [] and s.books == [] and after == []


def test_same_actions_as_the_python_entry() -> None:
    """The same frames through the feed and through Pipeline.on_frame give the same actions."""
    f, _s, p, _ = _feed()
    q, _ = _pipe()
    frames = [SNAP] + [_delta(n, 299_990 + (n * 7) % 15) for n in range(1, 40)]
    for data in frames:
        f.on_ws_frame(None, _text(data))
        q.on_frame(data, time.monotonic_ns())
        assert p.n_out == q.n_out
        assert [p.action(i)[:5] for i in range(p.n_out)] == [
            q.action(i)[:5] for i in range(q.n_out)
        ]
    assert p.book.best_bid() == q.book.best_bid() and p.steps == q.steps


def test_pong_and_disconnect() -> None:
    f, s, _, _ = _feed()
    assert f.is_user_specific_pong(_text(b'{"type":"pong"}'))
    assert not f.is_user_specific_pong(_text(b'{"type":"ping"}'))
    f.on_ws_disconnected(None)  # type: ignore[arg-type]
    assert s.gone == 1
