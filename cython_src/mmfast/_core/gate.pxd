# cython: language_level=3
# Pre-trade risk gate of one market, in C: the state the rules read, the limits, the order-rate
# window. Same rules, order and reasons as mmfast.risk.limits (the Python gate, its twin); a
# compiled pipeline cimports GateCore and calls gate_admit without Python objects.

from libc.stdint cimport int64_t

cimport cython


# Reasons: the values of mmfast.risk.limits.RiskReason (0 = OK).
cdef enum:
    G_OK = 0
    G_NOT_READY = 1
    G_BOOK_OUT_OF_SYNC = 2
    G_KILL_SWITCH = 3
    G_MARKET_INACTIVE = 4
    G_MARKET_REDUCE_ONLY = 5
    G_BAD_PRICE = 6
    G_BAD_SIZE = 7
    G_PRICE_PRECISION = 8
    G_SIZE_PRECISION = 9
    G_BELOW_MIN_SIZE = 10
    G_BELOW_MIN_NOTIONAL = 11
    G_NO_MARK = 12
    G_PRICE_BAND = 13
    G_MAX_ORDER_NOTIONAL = 14
    G_REDUCE_ONLY_NO_POSITION = 15
    G_MAX_POSITION = 16
    G_MAX_OPEN_ORDERS = 17
    G_ORDER_RATE = 18
    G_MARGIN_UNKNOWN = 19
    G_MARGIN = 20
    G_N_REASONS = 21
    # Internal: a product needs wider integers than C has (Python decides).
    G_WIDE = -2

# Market states: the values of mmfast.risk.limits.MarketState.
cdef enum:
    GM_ACTIVE = 0
    GM_REDUCE_ONLY = 1
    GM_INACTIVE = 2


@cython.final
cdef class GateCore:
    # limits
    cdef int64_t max_position_lots     # |position + open orders of a side| cap, lots
    cdef int64_t max_order_notional    # price x size per order, tick x lot units
    cdef int64_t max_open_orders       # our non-terminal orders in the market
    cdef int64_t price_band_bps        # |price - mark| <= mark * bps / 10000
    cdef int64_t order_rate_cap        # admitted sends per window
    cdef int64_t order_rate_window_ns  # the sliding window
    cdef int64_t margin_headroom_ppm   # portfolio value kept free, ppm
    cdef bint require_margin_stats     # deny exposure-adding orders until margin is known
    # market rules
    cdef int64_t price_step            # prices are multiples of this many ticks
    cdef int64_t lot_step              # sizes are multiples of this many lots
    cdef int64_t min_size_lots         # venue minimum size
    cdef int64_t min_notional          # venue minimum price x size
    cdef int64_t initial_margin_bps    # initial margin fraction, bps
    cdef int ticklot_exp               # price_decimals + size_decimals
    cdef object _limits                # the RiskLimits given (for the wide-integer path)
    cdef object _rules_obj             # the MarketRules given (for the wide-integer path)
    # state
    cdef public int64_t position_lots  # signed position (long > 0)
    cdef public int64_t open_orders    # our non-terminal orders of the market
    cdef public int64_t open_bid_lots  # remaining lots of open bids (reduce-only excluded)
    cdef public int64_t open_ask_lots  # remaining lots of open asks (reduce-only excluded)
    # Lots our orders show filled that no fill has reported yet (the streams are not ordered):
    # exposure the position lacks; set_orders adds them to the open lots.
    cdef public int64_t unreported_bid_lots
    cdef public int64_t unreported_ask_lots
    cdef public int64_t mark_price     # ticks, 0 = unknown
    cdef public int market_state       # GM_*
    cdef public bint book_in_sync      # nonce chain intact and fresh
    cdef public bint connector_ready   # connected, reconciled, nonce known
    cdef public bint kill_switch_tripped  # paused or stopped
    cdef public bint has_margin        # margin figures known
    cdef public int64_t available_micro   # free collateral, micro-USDC
    cdef public int64_t portfolio_micro   # collateral + unrealized PnL, micro-USDC
    # order-rate window: a ring of admitted send stamps, oldest at head
    cdef int64_t *ring                 # capacity slots
    cdef Py_ssize_t cap                # ring capacity (grows on record_send only)
    cdef Py_ssize_t head               # index of the oldest stamp
    cdef Py_ssize_t count              # stamps in the ring
    # counters
    cdef readonly int64_t admitted     # orders admitted
    cdef int64_t denied[21]            # denials by reason

    cdef int check_rules(self, int side, int64_t price, int64_t size, bint reduce_only,
                         bint is_modify) noexcept
    cdef int _rules(self, int side, int64_t price, int64_t size, bint reduce_only,
                    bint is_modify) except -1
    cdef int _push(self, int64_t now_ns) except -1
    cdef Py_ssize_t window_count(self, int64_t now_ns) noexcept
    cdef int admit_c(self, int side, int64_t price, int64_t size, bint reduce_only,
                     bint is_modify, int64_t now_ns) except -1
