"""Fuzz the compiled book with malformed frames (reliability target 5).

Frames: valid chained deltas and snapshots, truncated JSON, wrong types, NaN / negative / zero
values, bad UTF-8, unknown types, random byte flips, and a few ~10 MB frames. Each goes to
``apply_frame`` and, when it decodes, to ``apply_message`` of a second book. Checks after every
frame: only BookError escapes, every BookError is counted in ``malformed``, the storage
invariants hold, and the state equals the ReferenceBook fed the same frames.
~20k frames in the normal run; 10**6 under ``-m soak``.
"""

from __future__ import annotations

import random
from typing import Any

import orjson
import pytest

from mmfast._core.book import ASK, BID, BookError, OrderBook
from mmfast.reference.book import BookError as RefBookError
from mmfast.reference.book import ReferenceBook

JUNK_VALUES: list[Any] = [
    "NaN", "nan", "inf", "-inf", "-1", "-0.01", "0", "0.0", "", " ", "1e9", "1.2.3", "٣",
    None, True, 1, 1.5, -3, [], {}, "9" * 40, "0.00000000001",
]  # fmt: skip


def fmt(v: int, d: int) -> str:
    w, f = divmod(v, 10**d)
    return f"{w}.{f:0{d}d}" if d else str(w)


class Stream:
    """Seeded Lighter-like delta stream (price_decimals 2, size_decimals 4)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.center = 200_000
        self.nonce = 1000

    def level(self, side: int) -> dict[str, str]:
        off = self.rng.randint(0, 300)
        price = self.center - off if side == BID else self.center + 1 + off
        size = 0 if self.rng.random() < 0.25 else self.rng.randint(1, 10**7)
        return {"price": fmt(price, 2), "size": fmt(size, 4)}

    def message(self, snapshot: bool = False) -> dict:
        rng = self.rng
        self.center += rng.randint(-5, 5) + (
            rng.choice([-3000, 3000]) if rng.random() < 0.01 else 0
        )
        n = 40 if snapshot else 3
        begin = 0 if snapshot else self.nonce
        self.nonce += rng.randint(1, 3) if snapshot else 1
        ob = {
            "code": 0,
            "asks": [self.level(ASK) for _ in range(rng.randint(0, n))],
            "bids": [self.level(BID) for _ in range(rng.randint(0, n))],
            "offset": self.nonce,
            "nonce": self.nonce,
            "last_updated_at": 1774884082309144,
            "begin_nonce": begin,
        }
        return {
            "channel": "order_book:0",
            "last_updated_at": 1774884082309144,
            "offset": self.nonce,
            "order_book": ob,
            "timestamp": 1774884082326,
            "type": "subscribed/order_book" if snapshot else "update/order_book",
        }


def wrong_types(m: dict, rng: random.Random) -> dict:
    ob = m["order_book"]
    target = rng.randrange(7)
    if target == 0:
        ob[rng.choice(["asks", "bids"])] = rng.choice([None, {}, "[]", 5])
    elif target == 1:
        ob[rng.choice(["nonce", "begin_nonce"])] = rng.choice(JUNK_VALUES)
    elif target == 2:
        m["order_book"] = rng.choice([None, [], "x", 1])
    elif target == 3:
        lst = ob["asks"] or ob["bids"] or ob["asks"]
        lst.append(rng.choice([None, [], "1.00", {"price": "1.00"}, {"size": "1"}]))
    else:
        lst = ob[rng.choice(["asks", "bids"])]
        lst.append({"price": "2000.00", "size": "1.0000"})
        lst[-1][rng.choice(["price", "size"])] = rng.choice(JUNK_VALUES)
    return m


def frames(n: int, seed: int, huge: int, out_of_sync: Any = lambda: False):
    """Frames of all kinds; like a connector, asks for a snapshot soon after the book desyncs."""
    rng = random.Random(seed)
    stream = Stream(rng)
    yield orjson.dumps(stream.message(snapshot=True))
    huge_at = set(rng.sample(range(n), huge)) if huge else set()
    for i in range(n):
        if i in huge_at:
            yield huge_frame(stream, rng)
            continue
        r = rng.random()
        saved = stream.nonce
        m = stream.message(snapshot=rng.random() < (0.3 if out_of_sync() else 0.02))
        if r < 0.45:
            yield orjson.dumps(m)  # valid: continues the chain
            continue
        if rng.random() < 0.97:
            stream.nonce = saved  # most bad frames do not break the chain for the next one
        data = orjson.dumps(m)
        if r < 0.55:
            yield data[: rng.randrange(len(data))]  # truncated
        elif r < 0.68:
            yield orjson.dumps(wrong_types(m, rng))
        elif r < 0.74:  # bad UTF-8 inside or outside a string
            pos = rng.randrange(len(data))
            yield data[:pos] + rng.choice([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x80"]) + data[pos:]
        elif r < 0.80:
            m["type"] = rng.choice(["update/trade", "ping", "update/order_book ", "", 7, None])
            yield orjson.dumps(m)
        elif r < 0.86:  # escaped strings: valid JSON the scanner leaves to orjson
            yield data.replace(b'"price"', b'"pr\\u0069ce"', 1)
        else:  # random byte flips
            b = bytearray(data)
            for _ in range(rng.randint(1, 4)):
                b[rng.randrange(len(b))] = rng.randrange(256)
            yield bytes(b)


def huge_frame(stream: Stream, rng: random.Random) -> bytes:
    """~10 MB: a valid delta with a huge field, a huge level list, or a truncated huge frame."""
    kind = rng.randrange(3)
    m = stream.message()
    if kind == 0:
        m["channel"] = "x" * 10_000_000
        return orjson.dumps(m)
    m["order_book"]["bids"] = [
        {"price": fmt(1000 + i, 2), "size": fmt(i % 7 if i % 50 == 0 else 0, 4)}
        for i in range(250_000)
    ]
    data = orjson.dumps(m)
    return data if kind == 1 else data[: len(data) - 3]


def outcome(fn: Any, arg: Any) -> object:
    try:
        return fn(arg)
    except (BookError, RefBookError):
        return "BookError"


def quick_state(b: OrderBook | ReferenceBook) -> tuple:
    return (
        b.best_bid(), b.best_bid_size(), b.best_ask(), b.best_ask_size(),
        b.level_count(BID), b.level_count(ASK), b.nonce, b.in_sync(), b.messages,
        b.gaps, b.dropped_pre_snapshot, b.ignored_out_of_sync, b.malformed, b.not_book,
    )  # fmt: skip


def fuzz(n: int, seed: int, huge: int) -> None:
    fast, via_dict = OrderBook(0, 2, 4, window=256), OrderBook(0, 2, 4, window=256)
    ref, ref_dict = ReferenceBook(0, 2, 4), ReferenceBook(0, 2, 4)
    raised = decoded_raised = 0
    for i, data in enumerate(frames(n, seed, huge, lambda: not fast.in_sync())):
        expected = outcome(ref.apply_frame, data)
        got = outcome(fast.apply_frame, data)  # anything but BookError propagates and fails
        assert got == expected, (i, data[:200])
        raised += got == "BookError"
        try:
            msg = orjson.loads(data)
        except orjson.JSONDecodeError:
            pass
        else:
            got_dict = outcome(via_dict.apply_message, msg)
            assert got_dict == outcome(ref_dict.apply_message, msg), i
            decoded_raised += got_dict == "BookError"
        fast._check_invariants()
        assert fast.malformed == raised and via_dict.malformed == decoded_raised
        assert quick_state(fast) == quick_state(ref), i
        assert quick_state(via_dict) == quick_state(ref_dict), i
        if i % 64 == 0 or len(data) > 1_000_000:
            for side in (BID, ASK):
                assert fast.top(side, 10**7) == ref.top(side, 10**7)
                assert via_dict.top(side, 10**7) == ref_dict.top(side, 10**7)
    # The run exercised what it claims to.
    assert raised > n // 5 and fast.messages > n // 5 and fast.not_book > 0
    assert fast.gaps + fast.ignored_out_of_sync > 0 and fast.snapshots > 1


def test_fuzz_frames() -> None:
    fuzz(20_000, seed=20240501, huge=2)


@pytest.mark.soak
def test_fuzz_frames_soak() -> None:
    fuzz(1_000_000, seed=7, huge=20)
