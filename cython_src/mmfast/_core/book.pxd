# cython: language_level=3
# L2 order book of one market: int64 price ticks and size lots, dense tick window around the
# touch plus sorted overflow for far levels. Public C-level interface used by other compiled
# modules (quote) through cimport; keep these signatures stable.

from libc.stdint cimport int64_t

cimport cython


@cython.final
cdef class OrderBook:
    # --- fields are declared by the implementation below this line (see book.pyx) ---
    cdef readonly int64_t market_id        # venue market index (not assumed to fit 16 bits)

    cpdef int64_t best_bid(self) noexcept          # best bid price in ticks, 0 when no bid
    cpdef int64_t best_ask(self) noexcept          # best ask price in ticks, 0 when no ask
    cpdef int64_t best_bid_size(self) noexcept     # size in lots at best bid, 0 when none
    cpdef int64_t best_ask_size(self) noexcept     # size in lots at best ask, 0 when none
    cpdef bint in_sync(self) noexcept              # snapshot received and nonce chain unbroken
