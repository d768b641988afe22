"""L2 order book of one market, compiled (``cython_src/mmfast/_core/book.pyx``; see docs/book.md).

Prices are int64 ticks (price * 10**price_decimals) and sizes int64 lots (size * 10**size_decimals).
Venue decimal strings are parsed exactly in C: ``[0-9]+(.[0-9]+)?`` with at most the market's
decimals, no sign, no exponent, no whitespace; prices must be > 0. Anything else raises BookError
naming the value, and a message with any malformed part changes nothing.
"""

from typing import Any, Final, final

# The one BookError (MmfastError, ValueError), shared with mmfast.reference.book.
from mmfast.core.errors import BookError as BookError

BID: Final[int]  # 0
ASK: Final[int]  # 1
APPLIED: Final[int]  # 0: the message was applied
DROPPED_PRE_SNAPSHOT: Final[int]  # 1: delta before the first snapshot (counted)
GAP: Final[int]  # 2: begin_nonce != last nonce; book now out of sync, nothing applied
IGNORED_OUT_OF_SYNC: Final[int]  # 3: already out of sync; waiting for a snapshot
NOT_BOOK: Final[int]  # 4: a well-formed message whose type is not subscribed/ or update/order_book
DEFAULT_WINDOW: Final[int]  # 2048 tick slots per side
# Why a decimal was refused, indexed by mmfast._core.units' parse status codes.
DEC_REASONS: Final[tuple[str, ...]]

def parse_decimal(s: str | bytes, decimals: int) -> int:
    """Parse a venue decimal string exactly into an int scaled by 10**decimals (0 <= decimals <= 18).

    Raises BookError (message names the value) when malformed or out of int64 range.
    """

@final
class OrderBook:
    """L2 book: O(1) best bid/ask; dense tick window per side plus a sorted overflow array.

    All apply methods return one of the codes above, or raise BookError (counted in ``malformed``)
    after changing nothing. A MemoryError during an apply leaves the book out of sync.
    """

    market_id: Final[int]
    price_decimals: Final[int]
    size_decimals: Final[int]
    window: Final[int]
    @property
    def nonce(self) -> int:
        """Nonce of the last applied message (0 before the first snapshot)."""
    @property
    def has_snapshot(self) -> bool:
        """A snapshot has been applied at least once."""
    @property
    def messages(self) -> int:
        """Messages applied (snapshots and deltas)."""
    @property
    def snapshots(self) -> int:
        """Snapshots applied."""
    @property
    def dropped_pre_snapshot(self) -> int:
        """Deltas dropped because no snapshot had arrived yet."""
    @property
    def gaps(self) -> int:
        """Deltas that broke the nonce chain (each returned GAP)."""
    @property
    def ignored_out_of_sync(self) -> int:
        """Deltas ignored while out of sync (each returned IGNORED_OUT_OF_SYNC)."""
    @property
    def malformed(self) -> int:
        """Apply calls that raised BookError (invalid JSON, wrong shapes or types, bad values)."""
    @property
    def not_book(self) -> int:
        """Messages or frames that returned NOT_BOOK."""
    @property
    def hot_bytes(self) -> int:
        """Memory touched on the apply path: object, both windows + bitmaps, base scratch."""
    def __init__(
        self, market_id: int, price_decimals: int, size_decimals: int, window: int = 2048
    ) -> None:
        """``window``: tick slots per side, a multiple of 64 in 64..2**20 (ValueError otherwise)."""
    # --- apply -------------------------------------------------------------------------------
    def apply_snapshot(
        self, asks: list[dict[str, str]], bids: list[dict[str, str]], nonce: int
    ) -> int:
        """Replace the whole book with these levels; sets the nonce; the book becomes in sync."""
    def apply_delta(
        self, asks: list[dict[str, str]], bids: list[dict[str, str]], nonce: int, begin_nonce: int
    ) -> int:
        """Apply absolute sizes (size 0 deletes). Only if begin_nonce == nonce (else GAP);
        DROPPED_PRE_SNAPSHOT before the first snapshot, IGNORED_OUT_OF_SYNC while out of sync.
        Levels are validated first, so a malformed delta raises in any state."""
    def apply_message(self, msg: dict[str, Any]) -> int:
        """One decoded WS message: snapshot iff type is "subscribed/order_book", delta iff
        "update/order_book", NOT_BOOK for any other (or missing) type. Reads
        msg["order_book"]["asks"/"bids"/"nonce"/"begin_nonce"] (begin_nonce only for deltas);
        missing or wrong-typed fields raise BookError. Nonces are non-negative ints."""
    def apply_frame(self, data: bytes | bytearray | memoryview) -> int:
        """One raw WS frame (bytes-like). Same results and state as
        ``apply_message(orjson.loads(data))``; invalid JSON raises BookError (counted).
        A byte scanner handles well-formed order-book frames; anything else takes that path."""
    def apply_levels(self, side: int, prices: Any, sizes: Any) -> None:
        """Raw entry for bulk loads and benchmarks: 1-D int64 buffers of equal length, applied
        straight into ``side`` (absolute sizes, 0 deletes). No nonce check, no counters.
        Validated first (side, lengths, dtype, price > 0, size >= 0): BookError otherwise."""
    def invalidate(self) -> None:
        """Mark the book out of sync; deltas return IGNORED_OUT_OF_SYNC until a snapshot."""
    # --- queries (all O(1) except top, depth_to and size_at of far levels) --------------------
    def in_sync(self) -> bool:
        """A snapshot was applied and the nonce chain is unbroken since (and no invalidate)."""
    def best_bid(self) -> int:
        """Best bid price in ticks, 0 when there is no bid."""
    def best_ask(self) -> int:
        """Best ask price in ticks, 0 when there is no ask."""
    def best_bid_size(self) -> int:
        """Size in lots at the best bid, 0 when there is no bid."""
    def best_ask_size(self) -> int:
        """Size in lots at the best ask, 0 when there is no ask."""
    def size_at(self, side: int, price: int) -> int:
        """Size in lots at ``price`` on ``side`` (0 if there is no level)."""
    def top(self, side: int, n: int) -> list[tuple[int, int]]:
        """Up to ``n`` (price, size) levels of ``side``, best first."""
    def depth_to(self, side: int, price: int) -> int:
        """Cumulative size from the best through ``price`` inclusive (0 if price is better than the
        best). Exact even beyond int64."""
    def level_count(self, side: int) -> int:
        """Number of levels on ``side``."""
    def mid(self) -> float:
        """(best_bid + best_ask) / 2, nan if a side is empty."""
    def mid_x2(self) -> int:
        """best_bid + best_ask in ticks (exact, never overflows), 0 if a side is empty."""
    def microprice(self) -> float:
        """(bid * ask_size + ask * bid_size) / (bid_size + ask_size), nan if a side is empty."""
    def is_crossed(self) -> bool:
        """Both sides present and best_bid > best_ask."""
    def is_locked(self) -> bool:
        """Both sides present and best_bid == best_ask."""
    def parse_price(self, s: str | bytes) -> int:
        """Price string -> ticks with this market's decimals; 0 is rejected (BookError)."""
    def parse_size(self, s: str | bytes) -> int:
        """Size string -> lots with this market's decimals."""
    def _check_invariants(self) -> None:
        """Testing aid: verify the internal storage; AssertionError if it is inconsistent."""
