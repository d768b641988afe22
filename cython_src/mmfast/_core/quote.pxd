# cython: language_level=3
# Quote computation: best bid/ask (or a reference price) + inventory + parameters -> target
# ladder of both sides in int64 ticks and lots. Rules and their order: docs/quote.md.

from libc.stdint cimport int64_t

cimport cython

from mmfast._core.book cimport OrderBook


@cython.final
cdef class QuoteParams:
    cdef readonly int mode                       # MODE_FIXED or MODE_AS
    cdef readonly int64_t spread_ticks           # fixed mode: ticks from the reference to level 0
    cdef readonly int n_levels                   # levels per side, 1..MAX_LEVELS
    cdef readonly int64_t level_spacing_ticks    # ticks between consecutive levels of a side
    cdef readonly int64_t size_lots              # size of level 0 (also A-S unit of inventory)
    cdef readonly int64_t size_step_lots         # size added per level deeper (may be negative)
    cdef readonly int64_t skew_ticks             # fixed mode: price shift at full inventory
    cdef readonly int64_t target_position_lots   # inventory the skew steers toward
    cdef readonly int64_t max_long_lots          # bids never take the position above this
    cdef readonly int64_t max_short_lots         # asks never take the position below -this
    cdef readonly int64_t min_spread_ticks       # ask0 - bid0 floor, >= 1
    cdef readonly double gamma                   # A-S risk aversion, 1/ticks
    cdef readonly double sigma                   # A-S volatility, ticks/sqrt(s)
    cdef readonly double tau                     # A-S horizon, seconds
    cdef readonly double kappa                   # A-S order-arrival decay, 1/ticks
    cdef readonly double as_risk_ticks           # derived: gamma*sigma^2*tau
    cdef readonly double as_spread_ticks         # derived: A-S optimal total spread delta


@cython.final
cdef class QuoteEngine:
    cdef readonly QuoteParams params             # current parameters (swap with set_params)
    cdef readonly int64_t min_size_lots          # market minimum size; smaller levels dropped
    cdef readonly int64_t min_notional           # market minimum price*size in tick*lot units
    cdef readonly int64_t price_step             # prices are multiples of this (ticks)
    cdef readonly int64_t lot_step               # sizes are multiples of this (lots)
    cdef readonly int n_bids                     # bid levels produced by the last compute
    cdef readonly int n_asks                     # ask levels produced by the last compute
    cdef readonly object bid_prices              # read-only numpy view of _bid_px
    cdef readonly object bid_sizes               # read-only numpy view of _bid_sz
    cdef readonly object ask_prices              # read-only numpy view of _ask_px
    cdef readonly object ask_sizes               # read-only numpy view of _ask_sz
    cdef object _buffers                         # owning (MAX_LEVELS x 4) int64 array
    cdef int64_t* _bid_px                        # bid prices, best first (into _buffers)
    cdef int64_t* _bid_sz                        # bid sizes (into _buffers)
    cdef int64_t* _ask_px                        # ask prices, best first (into _buffers)
    cdef int64_t* _ask_sz                        # ask sizes (into _buffers)

    cpdef set_params(self, QuoteParams params)
    cpdef int compute(self, int64_t best_bid, int64_t best_ask, int64_t position,
                      int64_t ref_price=*) except -1
    cpdef int compute_from_book(self, OrderBook book, int64_t position,
                                int64_t ref_price=*) except -1
    cdef int _side(self, int64_t px0, bint is_bid, int64_t capacity,
                   int64_t* out_px, int64_t* out_sz) noexcept
