"""Seeded synthetic Lighter L2 order-book stream, shared by every mmfast benchmark.

One generator, one shape: a snapshot (``subscribed/order_book``, ``begin_nonce`` 0) followed by
deltas (``update/order_book``) whose ``begin_nonce`` is the previous message's ``nonce``, exactly as
Lighter chains them. Frames have the venue's key order and compact JSON, as in
``lighter-fixtures/ws_order_book_update.json``::

    {"channel":"order_book:0","last_updated_at":..,"offset":..,
     "order_book":{"code":0,"asks":[{"price":"2064.54","size":"0.3285"}],"bids":[],
                   "offset":..,"nonce":..,"last_updated_at":..,"begin_nonce":..},
     "timestamp":..,"type":"update/order_book"}

Prices and sizes are decimal strings with the market's fixed decimals (ETH-like: price 2, size 4);
a delete is size ``"0"``, as the venue sends it.

The market underneath: a fair price doing a tick random walk with occasional jumps. Bids stay at
or below ``fair - 1`` and asks at or above ``fair + 1`` (the book is never crossed), so when the
fair moves, the delta deletes the levels it crossed. Other changes, 1-3 levels per delta: size
updates near the touch (most), deletes, new levels at the touch and new levels far from it. Level
counts per side stay around 50-100.

Same config (seed included) -> byte-identical stream.
"""

from __future__ import annotations

import bisect
import math
import random
from dataclasses import dataclass, field
from typing import Any

import orjson

__all__ = [
    "ASK",
    "BID",
    "L2Stream",
    "StreamConfig",
    "format_decimal",
    "generate",
]

BID = 0
ASK = 1


@dataclass(frozen=True)
class StreamConfig:
    """Knobs of the synthetic market. Defaults mimic Lighter's ETH perp."""

    seed: int = 1
    n_deltas: int = 20_000
    market_id: int = 0
    price_decimals: int = 2
    size_decimals: int = 4
    start_price: int = 206_454  # fair price in ticks (2064.54)
    snapshot_levels: tuple[int, int] = (50, 100)  # levels per side in the snapshot (min, max)
    side_levels: tuple[int, int] = (50, 100)  # deltas steer each side back into this range
    delta_levels: tuple[int, int] = (1, 3)  # levels per ordinary delta (forced deletes may add)
    p_move: float = 0.25  # per delta: fair steps one tick
    p_jump: float = 0.002  # per delta: fair jumps jump_ticks
    jump_ticks: tuple[int, int] = (5, 40)
    p_delete: float = 0.20  # per level change: delete a level near the touch
    p_touch: float = 0.15  # per level change: new level at or next to the touch
    p_far: float = 0.10  # per level change: new level away from the touch
    far_ticks: tuple[int, int] = (20, 300)  # distance of far levels from the fair price
    size_lots: tuple[int, int] = (10, 500_000)  # sizes are log-uniform in this range
    start_nonce: int = 9_182_389_998
    nonce_step: tuple[int, int] = (1, 40)  # venue nonces grow by irregular steps
    start_time_us: int = 1_774_884_082_309_144

    def __post_init__(self) -> None:
        if self.n_deltas < 0:
            raise ValueError("n_deltas must be >= 0")
        if not 1 <= self.snapshot_levels[0] <= self.snapshot_levels[1]:
            raise ValueError("snapshot_levels must be 1 <= min <= max")
        if not 1 <= self.delta_levels[0] <= self.delta_levels[1]:
            raise ValueError("delta_levels must be 1 <= min <= max")
        if self.start_price <= 10 * (self.far_ticks[1] + self.jump_ticks[1]):
            raise ValueError("start_price too low for far_ticks/jump_ticks (prices must stay > 0)")


def format_decimal(value: int, decimals: int) -> str:
    """Integer ticks/lots -> the venue's fixed-decimals string (``206454, 2 -> "2064.54"``).

    Zero is ``"0"`` (a delete, as the venue sends it)."""
    if value == 0:
        return "0"
    if decimals == 0:
        return str(value)
    scale = 10**decimals
    return f"{value // scale}.{value % scale:0{decimals}d}"


@dataclass
class L2Stream:
    """A generated stream. Index 0 is the snapshot; 1.. are the deltas, in order."""

    config: StreamConfig
    messages: list[dict[str, Any]]  # decoded frames (what orjson.loads gives for frames[i])
    frames: list[bytes]  # compact JSON bytes, as the venue sends them
    tops: list[tuple[int, int]]  # (best bid, best ask) in ticks after each message (0 = empty)
    final_bids: dict[int, int] = field(repr=False)  # price -> size after the last message
    final_asks: dict[int, int] = field(repr=False)

    @property
    def snapshot_frame(self) -> bytes:
        return self.frames[0]

    @property
    def delta_frames(self) -> list[bytes]:
        return self.frames[1:]

    def levels(self, side: int, *, include_snapshot: bool = False) -> tuple[list[int], list[int]]:
        """All level changes of one side, in stream order, as int ticks and lots (0 = delete)."""
        key = "bids" if side == BID else "asks"
        pd, sd = self.config.price_decimals, self.config.size_decimals
        prices: list[int] = []
        sizes: list[int] = []
        start = 0 if include_snapshot else 1
        for msg in self.messages[start:]:
            for lvl in msg["order_book"][key]:
                prices.append(_parse(lvl["price"], pd))
                sizes.append(_parse(lvl["size"], sd))
        return prices, sizes

    def stats(self) -> dict[str, float]:
        """Shape of the stream: frame sizes and levels per delta."""
        deltas = self.frames[1:]
        counts = [
            len(m["order_book"]["asks"]) + len(m["order_book"]["bids"]) for m in self.messages[1:]
        ]
        sizes = sorted(len(f) for f in deltas)
        return {
            "n_deltas": len(deltas),
            "snapshot_bytes": len(self.frames[0]),
            "snapshot_levels": len(self.messages[0]["order_book"]["asks"])
            + len(self.messages[0]["order_book"]["bids"]),
            "delta_bytes_mean": sum(sizes) / len(sizes) if sizes else 0.0,
            "delta_bytes_p50": sizes[len(sizes) // 2] if sizes else 0,
            "delta_levels_mean": sum(counts) / len(counts) if counts else 0.0,
            "delta_levels_max": max(counts) if counts else 0,
            "deletes_fraction": _deletes_fraction(self.messages[1:]),
        }


def _parse(s: str, decimals: int) -> int:
    # Exact: the generator only ever writes its own format (digits, one optional dot).
    if "." not in s:
        return int(s) * 10**decimals
    whole, frac = s.split(".")
    return int(whole) * 10**decimals + int(frac.ljust(decimals, "0"))


def _deletes_fraction(messages: list[dict[str, Any]]) -> float:
    total = deletes = 0
    for m in messages:
        for key in ("asks", "bids"):
            for lvl in m["order_book"][key]:
                total += 1
                deletes += lvl["size"] == "0"
    return deletes / total if total else 0.0


class _Side:
    """One side of the generator's own book: dict plus ascending price list."""

    __slots__ = ("levels", "prices")

    def __init__(self) -> None:
        self.levels: dict[int, int] = {}
        self.prices: list[int] = []  # ascending

    def set(self, price: int, size: int) -> None:
        if size == 0:
            if price in self.levels:
                del self.levels[price]
                del self.prices[bisect.bisect_left(self.prices, price)]
        else:
            if price not in self.levels:
                bisect.insort(self.prices, price)
            self.levels[price] = size


class _Generator:
    def __init__(self, cfg: StreamConfig) -> None:
        self.cfg = cfg
        self.rng = random.Random(cfg.seed)
        self.fair = cfg.start_price
        self.bids = _Side()
        self.asks = _Side()
        self.nonce = cfg.start_nonce
        self.offset = 1_558_300
        self.time_us = cfg.start_time_us
        self._log_lo = math.log(cfg.size_lots[0])
        self._log_hi = math.log(cfg.size_lots[1])

    # --- primitives -------------------------------------------------------------------------

    def size(self) -> int:
        return max(1, int(math.exp(self.rng.uniform(self._log_lo, self._log_hi))))

    def best(self, side: int) -> int:
        if side == BID:
            return self.bids.prices[-1] if self.bids.prices else 0
        return self.asks.prices[0] if self.asks.prices else 0

    def near_touch(self, side: int) -> int | None:
        """An existing price near the touch (index from the best, geometric)."""
        prices = self.bids.prices if side == BID else self.asks.prices
        if not prices:
            return None
        i = min(int(self.rng.expovariate(0.35)), len(prices) - 1)
        return prices[-1 - i] if side == BID else prices[i]

    def free_price(self, side: int, lo_dist: int, hi_dist: int) -> int | None:
        """A price ``lo_dist..hi_dist`` ticks behind the allowed touch with no level yet."""
        book = self.bids if side == BID else self.asks
        for _ in range(8):
            d = self.rng.randint(lo_dist, hi_dist)
            price = self.fair - 1 - d if side == BID else self.fair + 1 + d
            if price not in book.levels:
                return price
        return None

    def _frame(self, asks: dict[int, int], bids: dict[int, int], snapshot: bool) -> dict:
        cfg = self.cfg
        pd, sd = cfg.price_decimals, cfg.size_decimals
        begin = 0 if snapshot else self.nonce
        if not snapshot:
            self.nonce += self.rng.randint(*cfg.nonce_step)
        self.offset += self.rng.randint(1, 30)
        self.time_us += self.rng.randint(2_000, 60_000)
        # The venue lists asks ascending and bids descending (best first).
        ask_list = [
            {"price": format_decimal(p, pd), "size": format_decimal(asks[p], sd)}
            for p in sorted(asks)
        ]
        bid_list = [
            {"price": format_decimal(p, pd), "size": format_decimal(bids[p], sd)}
            for p in sorted(bids, reverse=True)
        ]
        return {
            "channel": f"order_book:{cfg.market_id}",
            "last_updated_at": self.time_us,
            "offset": self.offset,
            "order_book": {
                "code": 0,
                "asks": ask_list,
                "bids": bid_list,
                "offset": self.offset,
                "nonce": self.nonce,
                "last_updated_at": self.time_us,
                "begin_nonce": begin,
            },
            "timestamp": self.time_us // 1000 + self.rng.randint(5, 30),
            "type": "subscribed/order_book" if snapshot else "update/order_book",
        }

    # --- messages ---------------------------------------------------------------------------

    def snapshot(self) -> dict:
        cfg = self.cfg
        out: list[dict[int, int]] = []
        for side in (ASK, BID):
            n = self.rng.randint(*cfg.snapshot_levels)
            levels: dict[int, int] = {}
            dist = self.rng.randint(0, 2)
            while len(levels) < n:
                price = self.fair - 1 - dist if side == BID else self.fair + 1 + dist
                levels[price] = self.size()
                dist += 1 + int(self.rng.expovariate(0.7))  # gaps of 1..several ticks
            book = self.bids if side == BID else self.asks
            for p, s in levels.items():
                book.set(p, s)
            out.append(levels)
        return self._frame(out[0], out[1], snapshot=True)

    def delta(self) -> dict:
        cfg = self.cfg
        rng = self.rng
        r = rng.random()
        if r < cfg.p_jump:
            self.fair += rng.choice((-1, 1)) * rng.randint(*cfg.jump_ticks)
        elif r < cfg.p_jump + cfg.p_move:
            self.fair += rng.choice((-1, 1))
        changes: list[dict[int, int]] = [{}, {}]  # by side: price -> new size
        # Levels the fair price crossed must go (the book never crosses).
        for p in self.bids.prices[bisect.bisect_left(self.bids.prices, self.fair) :]:
            changes[BID][p] = 0
        for p in self.asks.prices[: bisect.bisect_right(self.asks.prices, self.fair)]:
            changes[ASK][p] = 0
        forced = len(changes[BID]) + len(changes[ASK])
        wanted = rng.randint(*cfg.delta_levels) - forced
        if forced == 0:
            wanted = max(wanted, 1)
        attempts = 0
        while wanted > 0 and attempts < 20:
            attempts += 1
            side = rng.randrange(2)
            if self._one_change(side, changes[side]):
                wanted -= 1
        for side, book in ((BID, self.bids), (ASK, self.asks)):
            for p, s in changes[side].items():
                book.set(p, s)
        return self._frame(changes[ASK], changes[BID], snapshot=False)

    def _one_change(self, side: int, changes: dict[int, int]) -> bool:
        cfg = self.cfg
        book = self.bids if side == BID else self.asks
        count = len(book.levels)
        r = self.rng.random()
        if count <= cfg.side_levels[0]:
            r = 1.0 - r * (cfg.p_touch + cfg.p_far)  # only adds
        elif count >= cfg.side_levels[1]:
            r = r * cfg.p_delete  # only deletes
        best = self.best(side)
        gap = abs(self.fair - best) if best else 0
        if r < cfg.p_delete:
            price = self.near_touch(side)
            size = 0
        elif r < cfg.p_delete + cfg.p_far:
            price = self.free_price(side, cfg.far_ticks[0], cfg.far_ticks[1])
            size = self.size()
        elif r < cfg.p_delete + cfg.p_far + cfg.p_touch or gap > 6:
            # New level at or just behind the allowed touch; refills the touch after a jump.
            price = self.free_price(side, 0, 3)
            size = self.size()
        else:
            price = self.near_touch(side)
            size = self.size()
        if price is None or price in changes:
            return False
        if size == 0 and price not in book.levels:
            return False
        changes[price] = size
        return True


def generate(config: StreamConfig | None = None, **overrides: Any) -> L2Stream:
    """Generate the stream for ``config`` (defaults if omitted; keyword overrides on top)."""
    cfg = config if config is not None else StreamConfig()
    if overrides:
        cfg = StreamConfig(**{**cfg.__dict__, **overrides})
    gen = _Generator(cfg)
    messages = [gen.snapshot()]
    tops = [(gen.best(BID), gen.best(ASK))]
    for _ in range(cfg.n_deltas):
        messages.append(gen.delta())
        tops.append((gen.best(BID), gen.best(ASK)))
    frames = [orjson.dumps(m) for m in messages]
    return L2Stream(
        config=cfg,
        messages=messages,
        frames=frames,
        tops=tops,
        final_bids=dict(gen.bids.levels),
        final_asks=dict(gen.asks.levels),
    )
