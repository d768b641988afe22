"""Pure-Python twin of :class:`mmfast._core.book.OrderBook` (test oracle and benchmark baseline).

Same method names, return codes, counters and error rules as the compiled book, written plainly:
one dict price -> size per side plus a bisect-sorted price list. Decimal strings are parsed by
``mmfast.reference.units`` (exact, no float). ``apply_frame`` is ``orjson.loads`` +
``apply_message``, which is the definition the compiled byte scanner is tested against.
"""

from __future__ import annotations

import math
from bisect import bisect_left, insort
from collections.abc import Sequence
from typing import Any

import orjson

# The compiled book raises the same classes.
from mmfast.core.errors import BookError, UnitsError
from mmfast.reference.units import parse_units

BID = 0
ASK = 1
APPLIED = 0
DROPPED_PRE_SNAPSHOT = 1
GAP = 2
IGNORED_OUT_OF_SYNC = 3
NOT_BOOK = 4

INT64_MAX = 2**63 - 1
MAX_DECIMALS = 18
SNAPSHOT_TYPE = "subscribed/order_book"
DELTA_TYPE = "update/order_book"


def _short(value: object) -> str:
    r = repr(value)
    return r if len(r) <= 60 else r[:57] + "..."


def parse_decimal(s: str | bytes, decimals: int) -> int:
    """Exact ``[0-9]+(.[0-9]+)?`` -> int scaled by 10**decimals (at most ``decimals`` digits)."""
    if not 0 <= decimals <= MAX_DECIMALS:
        raise ValueError(f"decimals must be in 0..{MAX_DECIMALS}, got {decimals}")
    try:
        return parse_units(s, decimals)  # strict: the venue's wire format
    except UnitsError as exc:
        raise BookError(str(exc)) from None


class ReferenceBook:
    """Dict + bisect L2 book with the compiled book's semantics (see docs/book.md)."""

    def __init__(
        self, market_id: int, price_decimals: int, size_decimals: int, window: int = 2048
    ) -> None:
        if market_id < 0:
            raise ValueError(f"market_id must be >= 0, got {market_id}")
        for name, d in (("price_decimals", price_decimals), ("size_decimals", size_decimals)):
            if not 0 <= d <= MAX_DECIMALS:
                raise ValueError(f"{name} must be in 0..{MAX_DECIMALS}, got {d}")
        self.market_id = market_id
        self.price_decimals = price_decimals
        self.size_decimals = size_decimals
        self.window = window  # accepted for signature parity; storage here is unwindowed
        self._sizes: tuple[dict[int, int], dict[int, int]] = ({}, {})
        self._prices: tuple[list[int], list[int]] = ([], [])  # ascending on both sides
        self.nonce = 0
        self.has_snapshot = False
        self._synced = False
        self.messages = 0
        self.snapshots = 0
        self.dropped_pre_snapshot = 0
        self.gaps = 0
        self.ignored_out_of_sync = 0
        self.malformed = 0
        self.not_book = 0

    # --- parsing ------------------------------------------------------------------------------

    def parse_price(self, s: str | bytes) -> int:
        v = parse_decimal(s, self.price_decimals)
        if v == 0:
            raise BookError(f"invalid price {_short(s)}: zero price")
        return v

    def parse_size(self, s: str | bytes) -> int:
        return parse_decimal(s, self.size_decimals)

    def _bad(self, what: str) -> BookError:
        self.malformed += 1
        return BookError(what)

    def _nonce(self, value: Any, name: str) -> int:
        if type(value) is not int:
            raise self._bad(f"{name} must be an int, got {_short(value)}")
        if not 0 <= value <= INT64_MAX:
            raise self._bad(f"{name} out of range 0..2**63-1: {_short(value)}")
        return value

    def _levels(self, levels: Any, name: str) -> list[tuple[int, int]]:
        if not isinstance(levels, list):
            raise self._bad(f"{name} must be a list, got {_short(levels)}")
        out = []
        for i, lvl in enumerate(levels):
            if not isinstance(lvl, dict) or "price" not in lvl or "size" not in lvl:
                raise self._bad(f"{name}[{i}] must be a dict with price and size")
            p, s = lvl["price"], lvl["size"]
            if not isinstance(p, str) or not isinstance(s, str):
                raise self._bad(f"{name}[{i}] price and size must be strings")
            try:
                out.append((self.parse_price(p), self.parse_size(s)))
            except BookError as exc:
                raise self._bad(f"{name}[{i}]: {exc}") from None
        return out

    # --- apply --------------------------------------------------------------------------------

    def _set(self, side: int, price: int, size: int) -> None:
        sizes, prices = self._sizes[side], self._prices[side]
        if size:
            if price not in sizes:
                insort(prices, price)
            sizes[price] = size
        elif price in sizes:
            del sizes[price]
            del prices[bisect_left(prices, price)]

    def _apply(
        self, snapshot: bool, asks: list[Any], bids: list[Any], nonce: int, begin_nonce: int
    ) -> int:
        if snapshot:
            for side in (BID, ASK):
                self._sizes[side].clear()
                self._prices[side].clear()
        elif not self.has_snapshot:
            self.dropped_pre_snapshot += 1
            return DROPPED_PRE_SNAPSHOT
        elif not self._synced:
            self.ignored_out_of_sync += 1
            return IGNORED_OUT_OF_SYNC
        elif begin_nonce != self.nonce:
            self._synced = False
            self.gaps += 1
            return GAP
        for price, size in asks:
            self._set(ASK, price, size)
        for price, size in bids:
            self._set(BID, price, size)
        self.nonce = nonce
        self._synced = True
        self.messages += 1
        if snapshot:
            self.has_snapshot = True
            self.snapshots += 1
        return APPLIED

    def apply_snapshot(self, asks: Any, bids: Any, nonce: Any) -> int:
        n = self._nonce(nonce, "nonce")
        a, b = self._levels(asks, "asks"), self._levels(bids, "bids")
        return self._apply(True, a, b, n, 0)

    def apply_delta(self, asks: Any, bids: Any, nonce: Any, begin_nonce: Any) -> int:
        n = self._nonce(nonce, "nonce")
        bn = self._nonce(begin_nonce, "begin_nonce")
        a, b = self._levels(asks, "asks"), self._levels(bids, "bids")
        return self._apply(False, a, b, n, bn)

    def apply_message(self, msg: Any) -> int:
        if not isinstance(msg, dict):
            raise self._bad(f"message must be a dict, got {_short(msg)}")
        kind = msg.get("type")
        if not isinstance(kind, str) or kind not in (SNAPSHOT_TYPE, DELTA_TYPE):
            self.not_book += 1
            return NOT_BOOK
        snapshot = kind == SNAPSHOT_TYPE
        ob = msg.get("order_book")
        if not isinstance(ob, dict):
            raise self._bad("order_book missing or not an object")
        if "asks" not in ob:
            raise self._bad("order_book.asks missing")
        asks = self._levels(ob["asks"], "asks")
        if "bids" not in ob:
            raise self._bad("order_book.bids missing")
        bids = self._levels(ob["bids"], "bids")
        if "nonce" not in ob:
            raise self._bad("order_book.nonce missing")
        nonce = self._nonce(ob["nonce"], "nonce")
        begin = 0
        if not snapshot:
            if "begin_nonce" not in ob:
                raise self._bad("order_book.begin_nonce missing")
            begin = self._nonce(ob["begin_nonce"], "begin_nonce")
        return self._apply(snapshot, asks, bids, nonce, begin)

    def apply_frame(self, data: bytes) -> int:
        try:
            msg = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise self._bad(f"invalid JSON frame: {exc}") from None
        return self.apply_message(msg)

    def apply_levels(self, side: int, prices: Sequence[int], sizes: Sequence[int]) -> None:
        """Raw pre-parsed levels (absolute sizes, 0 deletes); no nonce check, no parsing."""
        if side not in (BID, ASK):
            raise BookError(f"side must be BID (0) or ASK (1), got {side}")
        if len(prices) != len(sizes):
            raise BookError(f"prices and sizes differ in length: {len(prices)} != {len(sizes)}")
        for i, (p, s) in enumerate(zip(prices, sizes, strict=True)):
            if p <= 0:
                raise BookError(f"invalid price {p} at index {i}: must be > 0")
            if s < 0:
                raise BookError(f"invalid size {s} at index {i}: must be >= 0")
        for p, s in zip(prices, sizes, strict=True):
            self._set(side, int(p), int(s))

    def invalidate(self) -> None:
        self._synced = False

    def in_sync(self) -> bool:
        return self.has_snapshot and self._synced

    # --- queries ------------------------------------------------------------------------------

    def best_bid(self) -> int:
        p = self._prices[BID]
        return p[-1] if p else 0

    def best_ask(self) -> int:
        p = self._prices[ASK]
        return p[0] if p else 0

    def best_bid_size(self) -> int:
        p = self._prices[BID]
        return self._sizes[BID][p[-1]] if p else 0

    def best_ask_size(self) -> int:
        p = self._prices[ASK]
        return self._sizes[ASK][p[0]] if p else 0

    def size_at(self, side: int, price: int) -> int:
        _check_side(side)
        return self._sizes[side].get(price, 0)

    def level_count(self, side: int) -> int:
        _check_side(side)
        return len(self._prices[side])

    def top(self, side: int, n: int) -> list[tuple[int, int]]:
        _check_side(side)
        if n <= 0:
            return []
        prices, sizes = self._prices[side], self._sizes[side]
        chosen = prices[::-1][:n] if side == BID else prices[:n]
        return [(p, sizes[p]) for p in chosen]

    def depth_to(self, side: int, price: int) -> int:
        _check_side(side)
        prices, sizes = self._prices[side], self._sizes[side]
        if side == BID:
            chosen = prices[bisect_left(prices, price) :]
        else:
            chosen = prices[: bisect_left(prices, price + 1)]
        return sum(sizes[p] for p in chosen)

    def mid_x2(self) -> int:
        b, a = self.best_bid(), self.best_ask()
        return b + a if b and a else 0

    def mid(self) -> float:
        x2 = self.mid_x2()
        return x2 / 2 if x2 else math.nan

    def microprice(self) -> float:
        b, a = self.best_bid(), self.best_ask()
        if not (b and a):
            return math.nan
        bs, as_ = self.best_bid_size(), self.best_ask_size()
        return (b * as_ + a * bs) / (bs + as_)

    def is_crossed(self) -> bool:
        b, a = self.best_bid(), self.best_ask()
        return bool(b and a and b > a)

    def is_locked(self) -> bool:
        b, a = self.best_bid(), self.best_ask()
        return bool(b and a and b == a)

    def levels(self, side: int) -> list[tuple[int, int]]:
        """Every level of ``side``, best first."""
        return self.top(side, len(self._prices[side]))


def _check_side(side: int) -> None:
    if side not in (BID, ASK):
        raise ValueError(f"side must be BID (0) or ASK (1), got {side}")
