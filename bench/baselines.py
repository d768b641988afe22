"""Pure-Python baselines that only the benchmarks need.

The main pure-Python baselines live in the package (``mmfast.reference.book.ReferenceBook``, the
dict + bisect book that is also the property-test oracle, and ``mmfast.reference.quote``). This
module adds what a Python developer would otherwise reach for: an L2 book on
``sortedcontainers.SortedDict``, and small helpers shared by the benchmark bodies.
"""

from __future__ import annotations

from typing import Any

from sortedcontainers import SortedDict

__all__ = [
    "ASK",
    "BID",
    "SortedDictBook",
    "empty_function",
    "parse_fixed",
]

BID = 0
ASK = 1


def empty_function() -> None:
    """An empty Python function: the floor of a Python-level call."""


def parse_fixed(s: str, decimals: int) -> int:
    """Exact fixed-decimals string -> int (``"2064.54", 2 -> 206454``), str ops only.

    Strict like the compiled parser: digits only, at most ``decimals`` fraction digits, >= 0."""
    whole, dot, frac = s.partition(".")
    if (
        not whole.isdigit()
        or not whole.isascii()
        or (dot and (not frac.isdigit() or not frac.isascii() or len(frac) > decimals))
    ):
        raise ValueError(f"bad decimal {s!r}")
    value = int(whole) * 10**decimals
    if frac:
        value += int(frac) * 10 ** (decimals - len(frac))
    return value


class SortedDictBook:
    """L2 book with one ``SortedDict`` per side (price ticks -> size lots).

    ``set_level`` is the raw per-level update (absolute size, 0 deletes); ``apply_message``
    takes a decoded Lighter order-book message with the nonce chain rule (snapshot replaces the
    book; a delta applies only if its ``begin_nonce`` equals the last nonce).
    """

    __slots__ = ("asks", "bids", "in_sync", "nonce", "price_decimals", "size_decimals")

    def __init__(self, price_decimals: int, size_decimals: int) -> None:
        self.price_decimals = price_decimals
        self.size_decimals = size_decimals
        self.bids: SortedDict = SortedDict()
        self.asks: SortedDict = SortedDict()
        self.nonce = 0
        self.in_sync = False

    def set_level(self, side: int, price: int, size: int) -> None:
        levels = self.bids if side == BID else self.asks
        if size:
            levels[price] = size
        else:
            levels.pop(price, None)

    def best_bid(self) -> int:
        return self.bids.peekitem(-1)[0] if self.bids else 0

    def best_ask(self) -> int:
        return self.asks.peekitem(0)[0] if self.asks else 0

    def _levels(self, levels: list[dict[str, str]]) -> list[tuple[int, int]]:
        pd, sd = self.price_decimals, self.size_decimals
        out = []
        for lvl in levels:
            price = parse_fixed(lvl["price"], pd)
            if price <= 0:
                raise ValueError(f"bad price {lvl['price']!r}")
            out.append((price, parse_fixed(lvl["size"], sd)))
        return out

    def apply_message(self, msg: dict[str, Any]) -> int:
        """0 applied, 1 dropped before the first snapshot, 2 gap, 3 out of sync, 4 not a book."""
        kind = msg["type"]
        ob = msg["order_book"]
        if kind == "subscribed/order_book":
            asks = self._levels(ob["asks"])  # validate everything before changing anything
            bids = self._levels(ob["bids"])
            self.asks = SortedDict((p, s) for p, s in asks if s)
            self.bids = SortedDict((p, s) for p, s in bids if s)
            self.nonce = ob["nonce"]
            self.in_sync = True
            return 0
        if kind != "update/order_book":
            return 4
        if not self.in_sync:
            return 1 if self.nonce == 0 else 3
        if ob["begin_nonce"] != self.nonce:
            self.in_sync = False
            return 2
        asks = self._levels(ob["asks"])
        bids = self._levels(ob["bids"])
        for price, size in asks:
            self.set_level(ASK, price, size)
        for price, size in bids:
            self.set_level(BID, price, size)
        self.nonce = ob["nonce"]
        return 0
