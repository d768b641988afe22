"""Property tests: the compiled book against the pure-Python ReferenceBook, and the byte scanner
(apply_frame) against the orjson + apply_message path, over random message streams."""

from __future__ import annotations

import random
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mmfast._core.book import ASK, BID, BookError, OrderBook
from mmfast.reference.book import BookError as RefBookError
from mmfast.reference.book import ReferenceBook

PROPS = settings(
    max_examples=100,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

BAD_VALUES = ["", "-1", "1e3", "NaN", "inf", " 1", "1.", ".5", "0x1", "1" * 30, "١"]


def fmt(value: int, decimals: int, rng: random.Random) -> str:
    """Lots/ticks -> a venue decimal string; sometimes with trailing zeros dropped (still exact)."""
    if decimals == 0:
        return str(value)
    whole, frac = divmod(value, 10**decimals)
    text = f"{whole}.{frac:0{decimals}d}"
    if rng.random() < 0.3:
        text = text.rstrip("0").rstrip(".")
    return text


@st.composite
def streams(draw: st.DrawFn) -> tuple[int, int, list[Any]]:
    """(price_decimals, size_decimals, ops): ops are message dicts or "invalidate"."""
    pd = draw(st.sampled_from([0, 1, 2]))
    sd = draw(st.sampled_from([0, 2, 4]))
    rng = random.Random(draw(st.integers(0, 2**32)))
    n_ops = draw(st.integers(1, 40))
    center = rng.randint(500, 50_000)
    nonce = rng.randint(0, 1000)
    ops: list[Any] = []

    def levels(side: int, count: int, spread: int) -> list[dict[str, str]]:
        out = []
        for _ in range(count):
            off = rng.randint(0, spread)
            if rng.random() < 0.05:
                off = -rng.randint(1, 5)  # crosses the touch now and then
            price = center - off if side == BID else center + 1 + off
            price = max(price, 1)
            size = 0 if rng.random() < 0.3 else rng.randint(1, 10**6)
            out.append({"price": fmt(price, pd, rng), "size": fmt(size, sd, rng)})
        return out

    def message(kind: str, begin: int, new_nonce: int, count: int, spread: int) -> dict:
        ob: dict[str, Any] = {
            "code": 0,
            "asks": levels(ASK, rng.randint(0, count), spread),
            "bids": levels(BID, rng.randint(0, count), spread),
            "offset": rng.randint(0, 10**6),
            "nonce": new_nonce,
            "begin_nonce": begin,
        }
        return {
            "channel": "order_book:0",
            "offset": ob["offset"],
            "order_book": ob,
            "timestamp": 1774884082326,
            "type": f"{kind}/order_book",
        }

    for _ in range(rng.randint(0, 3)):  # deltas before the first snapshot
        ops.append(message("update", nonce, nonce + 1, 3, 100))
        nonce += 1
    if rng.random() < 0.7:
        nonce += 1
        ops.append(message("subscribed", 0, nonce, 40, 400))
    for _ in range(n_ops):
        r = rng.random()
        if r < 0.08:
            center = max(100, center + rng.choice([-1, 1]) * rng.randint(100, 20_000))
        if r < 0.15:
            nonce += rng.randint(1, 5)
            ops.append(message("subscribed", 0, nonce, 40, 400))
        elif r < 0.22:  # gap: begin_nonce off the chain
            ops.append(message("update", nonce + rng.randint(1, 3), nonce + 9, 3, 100))
            nonce += 9
        elif r < 0.28:  # malformed level somewhere in an otherwise good message
            m = message(rng.choice(["update", "subscribed"]), nonce, nonce + 1, 4, 100)
            side = rng.choice(["asks", "bids"])
            m["order_book"][side].append({"price": fmt(center, pd, rng), "size": fmt(1, sd, rng)})
            bad = rng.choice([*BAD_VALUES, fmt(center, pd, rng) + "1" * (1 + (pd == 0))])
            m["order_book"][side][-1][rng.choice(["price", "size"])] = bad
            ops.append(m)
            nonce += 1
        elif r < 0.31:
            ops.append("invalidate")
        else:
            center = max(100, center + rng.randint(-20, 20))
            ops.append(message("update", nonce, nonce + 1, 3, 150))
            nonce += 1
    return pd, sd, ops


def full_state(b: OrderBook | ReferenceBook) -> tuple:
    return (
        b.top(BID, 10**6),
        b.top(ASK, 10**6),
        (b.best_bid(), b.best_bid_size(), b.best_ask(), b.best_ask_size()),
        (b.nonce, b.in_sync(), b.has_snapshot, b.messages, b.snapshots),
        (b.dropped_pre_snapshot, b.gaps, b.ignored_out_of_sync, b.malformed, b.not_book),
        (b.mid_x2(), b.is_crossed(), b.is_locked()),
    )


def outcome(fn: Any, *args: Any) -> object:
    try:
        return fn(*args)
    except (BookError, RefBookError):
        return "BookError"


def compare_queries(b: OrderBook, ref: ReferenceBook, rng: random.Random) -> None:
    for side in (BID, ASK):
        prices = [p for p, _ in ref.top(side, 10**6)]
        probes = prices[:3] + [rng.randint(1, 100_000) for _ in range(3)]
        if prices:
            probes += [prices[-1], prices[len(prices) // 2], prices[0] + 1, max(prices[0] - 1, 1)]
        for p in probes:
            assert b.size_at(side, p) == ref.size_at(side, p)
            assert b.depth_to(side, p) == ref.depth_to(side, p)
        n = rng.randint(0, 12)
        assert b.top(side, n) == ref.top(side, n)
        assert b.level_count(side) == ref.level_count(side)
    mp, rp = b.microprice(), ref.microprice()
    assert (mp != mp and rp != rp) or abs(mp - rp) <= 1e-12 * abs(rp)


def run_stream(pd: int, sd: int, ops: list[Any], window: int) -> None:
    b, ref = OrderBook(0, pd, sd, window=window), ReferenceBook(0, pd, sd)
    rng = random.Random(len(ops))
    for op in ops:
        if op == "invalidate":
            b.invalidate()
            ref.invalidate()
        else:
            assert outcome(b.apply_message, op) == outcome(ref.apply_message, op)
        b._check_invariants()
        assert full_state(b) == full_state(ref)
        compare_queries(b, ref, rng)


@PROPS
@given(streams())
def test_compiled_matches_reference_small_window(stream: tuple) -> None:
    run_stream(*stream, window=64)


@PROPS
@given(streams())
def test_compiled_matches_reference_default_window(stream: tuple) -> None:
    run_stream(*stream, window=2048)


# --- serialisation with random key order / whitespace -----------------------------------------

WS = [" ", "\n", "\t", "\r\n", "  ", ""]


def dump(value: Any, rng: random.Random, indent: int) -> str:
    """JSON text with shuffled keys and random whitespace (valid JSON, same value)."""

    def ws() -> str:
        return rng.choice(WS) if rng.random() < 0.3 else ""

    def nl(level: int) -> str:
        return ("\n" + " " * (indent * level)) if indent else ws()

    def go(v: Any, level: int) -> str:
        if isinstance(v, dict):
            items = list(v.items())
            rng.shuffle(items)
            body = ("," + ws()).join(
                f"{nl(level + 1)}{orjson.dumps(k).decode()}{ws()}:{ws()}{go(x, level + 1)}"
                for k, x in items
            )
            return "{" + body + nl(level) + "}" if items else "{" + ws() + "}"
        if isinstance(v, list):
            body = ("," + ws()).join(nl(level + 1) + go(x, level + 1) for x in v)
            return "[" + body + nl(level) + "]" if v else "[" + ws() + "]"
        return orjson.dumps(v).decode()

    return ws() + go(value, 0) + ws()


def mutate(frame: bytes, rng: random.Random) -> bytes:
    data = bytearray(frame)
    kind = rng.randrange(5)
    if kind == 0 and data:
        return bytes(data[: rng.randrange(len(data))])  # truncated
    if kind == 1 and data:
        data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)  # bit flip
    elif kind == 2:
        data.insert(rng.randrange(len(data) + 1), rng.choice(b'0"{}[],:.-\\ \x00\xff9e'))
    elif kind == 3 and data:
        del data[rng.randrange(len(data))]
    elif data:
        data[rng.randrange(len(data))] = rng.randrange(256)
    return bytes(data)


@PROPS
@given(streams(), st.integers(0, 2**32), st.sampled_from([0, 0, 2]))
def test_frame_scanner_matches_orjson_path(stream: tuple, seed: int, indent: int) -> None:
    pd, sd, ops = stream
    rng = random.Random(seed)
    fast = OrderBook(0, pd, sd, window=64)
    slow = OrderBook(0, pd, sd, window=64)
    ref = ReferenceBook(0, pd, sd)
    for op in ops:
        if op == "invalidate":
            for b in (fast, slow, ref):
                b.invalidate()
            continue
        frame = dump(op, rng, indent).encode()
        if rng.random() < 0.25:
            frame = mutate(frame, rng)
        expected = outcome(ref.apply_frame, frame)
        assert outcome(fast.apply_frame, frame) == expected
        try:
            decoded = orjson.loads(frame)
        except orjson.JSONDecodeError:
            assert expected == "BookError"
            assert outcome(slow.apply_frame, frame) == "BookError"
        else:
            assert outcome(slow.apply_message, decoded) == expected
        fast._check_invariants()
        assert full_state(fast) == full_state(slow) == full_state(ref)


@PROPS
@given(st.binary(max_size=300), st.integers(0, 2))
def test_arbitrary_bytes_never_escape_book_error(data: bytes, pd: int) -> None:
    fast, ref = OrderBook(0, pd, 2), ReferenceBook(0, pd, 2)
    assert outcome(fast.apply_frame, data) == outcome(ref.apply_frame, data)
    assert full_state(fast) == full_state(ref)
