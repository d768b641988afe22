# cython: language_level=3
# L2 order book of one market: int64 price ticks and size lots, dense tick window around the
# touch plus sorted overflow for far levels. Public C-level interface used by other compiled
# modules (quote) through cimport; keep these signatures stable.

from libc.stdint cimport int64_t, uint64_t

cimport cython


# Return codes of the apply methods (same values as the Python constants APPLIED, ...).
cdef enum:
    BOOK_APPLIED = 0
    BOOK_DROPPED_PRE_SNAPSHOT = 1
    BOOK_GAP = 2
    BOOK_IGNORED_OUT_OF_SYNC = 3
    BOOK_NOT_BOOK = 4


# One side of the book in "key space": bids key = price, asks key = INT64_MAX - price + 1, so
# both sides keep keys in [1, INT64_MAX] and the best level is always the maximum key.
ctypedef struct BookSide:
    int64_t *sizes          # window: size in lots per slot (slot = key - lo), 0 = empty
    uint64_t *bits          # window: occupancy bitmap, bit (slot & 63) of word (slot >> 6)
    int64_t lo              # key of window slot 0 (0 <= lo <= INT64_MAX - window + 1)
    int64_t best_key        # max occupied key, 0 when the side is empty
    int64_t best_size       # size at best_key, 0 when the side is empty
    Py_ssize_t count        # levels on this side (window + overflow)
    Py_ssize_t win_count    # levels inside the window
    int64_t *ov_keys        # overflow: keys outside the window, ascending
    int64_t *ov_sizes       # overflow: sizes matching ov_keys
    Py_ssize_t ov_n         # overflow: levels in use
    Py_ssize_t ov_cap       # overflow: allocated capacity (levels)
    int64_t *scr_keys       # validation scratch: keys of the message being applied
    int64_t *scr_sizes      # validation scratch: sizes of the message being applied
    Py_ssize_t scr_n        # validation scratch: levels parsed
    Py_ssize_t scr_cap      # validation scratch: allocated capacity (levels)


@cython.final
cdef class OrderBook:
    cdef readonly int64_t market_id        # venue market index (not assumed to fit 16 bits)
    cdef readonly int price_decimals       # price string decimals: price ticks = price * 10**this
    cdef readonly int size_decimals        # size string decimals: size lots = size * 10**this
    cdef readonly int64_t nonce            # nonce of the last applied message
    cdef readonly bint has_snapshot        # a snapshot has been applied at least once
    cdef readonly int64_t messages         # messages applied (snapshots + deltas)
    cdef readonly int64_t snapshots        # snapshots applied
    cdef readonly int64_t dropped_pre_snapshot  # deltas dropped because no snapshot came yet
    cdef readonly int64_t gaps             # deltas that broke the nonce chain
    cdef readonly int64_t ignored_out_of_sync   # deltas ignored while waiting for a snapshot
    cdef readonly int64_t malformed        # calls that raised BookError (bad frame or level)
    cdef readonly int64_t not_book         # frames/messages whose type is not an order book
    cdef readonly int64_t window           # window slots per side (multiple of 64)
    cdef bint synced                       # nonce chain unbroken since the last snapshot
    cdef BookSide sides[2]                 # [BID, ASK] storage

    cpdef int64_t best_bid(self) noexcept          # best bid price in ticks, 0 when no bid
    cpdef int64_t best_ask(self) noexcept          # best ask price in ticks, 0 when no ask
    cpdef int64_t best_bid_size(self) noexcept     # size in lots at best bid, 0 when none
    cpdef int64_t best_ask_size(self) noexcept     # size in lots at best ask, 0 when none
    cpdef bint in_sync(self) noexcept              # snapshot received and nonce chain unbroken

    cpdef int apply_snapshot(self, object asks, object bids, object nonce) except -1
    cpdef int apply_delta(self, object asks, object bids, object nonce,
                          object begin_nonce) except -1
    cpdef int apply_message(self, object msg) except -1
    cpdef int apply_frame(self, object data) except -1
    cpdef void invalidate(self) noexcept
    cpdef uint64_t mid_x2(self) noexcept           # bid + ask in ticks (exact), 0 if one is empty
    cpdef double mid(self) noexcept                # (bid + ask) / 2, nan if a side is empty
    cpdef double microprice(self) noexcept         # size-weighted mid, nan if a side is empty
    cpdef bint is_crossed(self) noexcept           # both sides present and bid > ask
    cpdef bint is_locked(self) noexcept            # both sides present and bid == ask

    # internals (C only)
    cdef int _bad(self, str what) except -1
    cdef int _fill_side(self, int side, object levels) except -1
    cdef int _read_nonce(self, object value, str name, int64_t *out) except -1
    cdef int _apply_scratch(self, bint snapshot, int64_t nonce, int64_t begin_nonce) except -1
    cdef int _scan_frame(self, const char *p, Py_ssize_t n) except -2
    cdef void _trim_scratch(self) noexcept
