# cython: language_level=3
"""Compiled quote computation: target ladder of both sides in int64 ticks and lots.

Rules, units and the order in which constraints apply are in docs/quote.md; the pure-Python
twin is mmfast.reference.quote (the property tests hold the two equal).
"""

from libc.math cimport ceil, floor, isfinite, log1p
from libc.stdint cimport int64_t, uint64_t

cimport cython

import numpy as np

from mmfast._core.book cimport OrderBook

# Venue metadata -> minimums: converted in the one units module, re-exported here for callers.
from mmfast._core.units import min_notional_from_venue  # no-cython-lint (re-export)
from mmfast._core.units import min_size_from_venue  # no-cython-lint (re-export)

# 128-bit helpers: price*size and skew*inventory overflow int64 at the extremes.
cdef extern from *:
    """
    #include <stdint.h>
    #if !defined(__SIZEOF_INT128__)
    #error "mmfast._core.quote needs a C compiler with __int128 (GCC or Clang)"
    #endif
    /* a*b >= c, exact for every int64 a, b, c. */
    static inline int mmq_mul_ge(int64_t a, int64_t b, int64_t c) {
        return (__int128)a * (__int128)b >= (__int128)c;
    }
    /* floor(a*b/c) for a, b >= 0 and c > 0 with b <= c (so the result fits in int64). */
    static inline int64_t mmq_muldiv(int64_t a, int64_t b, int64_t c) {
        return (int64_t)(((__int128)a * (__int128)b) / (__int128)c);
    }
    """
    bint mmq_mul_ge(int64_t a, int64_t b, int64_t c) noexcept nogil
    int64_t mmq_muldiv(int64_t a, int64_t b, int64_t c) noexcept nogil


cdef enum:
    _MAX_LEVELS = 32

MODE_FIXED = 0
MODE_AS = 1
MAX_LEVELS = _MAX_LEVELS
# Bounds that keep every intermediate of the ladder inside int64 (see docs/quote.md).
MAX_PRICE = 1 << 61
MAX_LOTS = 1 << 61
MAX_TICKS = 1 << 50

cdef int64_t _MAX_PRICE = 1 << 61
cdef int64_t _MAX_LOTS = 1 << 61
cdef int64_t _MAX_TICKS = 1 << 50
cdef double _AS_CLAMP = <double>(1 << 61)   # A-S level 0 clamped here before rounding
cdef int64_t _INT64_MAX = 0x7FFFFFFFFFFFFFFF


cdef inline int64_t _floor_to(int64_t x, int64_t step) noexcept nogil:
    # Round down to a multiple of step (> 0); C % truncates, so fix negative remainders.
    cdef int64_t r = x % step
    if r < 0:
        r += step
    return x - r


cdef inline int64_t _ceil_to(int64_t x, int64_t step) noexcept nogil:
    return -_floor_to(-x, step)


cdef inline int64_t _floor_div2(int64_t x) noexcept nogil:
    return _floor_to(x, 2) // 2


cpdef bint notional_at_least(int64_t price, int64_t size, int64_t min_notional) noexcept:
    """True when price * size >= min_notional, exact (128-bit) for any int64 inputs."""
    return mmq_mul_ge(price, size, min_notional)


# ---------------------------------------------------------------- validation (cold path)

cdef int64_t _int_arg(str name, object value, int64_t lo, int64_t hi) except? -1:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be in [{lo}, {hi}], got {value}")
    return value


cdef double _float_arg(str name, object value, double lo, bint lo_open) except? -1.0:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    cdef double v = value
    if not isfinite(v):
        raise ValueError(f"{name} must be finite, got {v!r}")
    if v < lo or (lo_open and v == lo):
        raise ValueError(f"{name} must be {'>' if lo_open else '>='} {lo}, got {v!r}")
    return v


cdef int _bad_input(str name, int64_t value, int64_t lo, int64_t hi) except -1:
    raise ValueError(f"{name} must be in [{lo}, {hi}], got {value}")


# ---------------------------------------------------------------- parameters

@cython.final
cdef class QuoteParams:
    """Validated, immutable quoting parameters (see docs/quote.md for units and rules)."""

    def __init__(
        self,
        *,
        max_long_lots,
        max_short_lots,
        mode=MODE_FIXED,
        spread_ticks=1,
        n_levels=1,
        level_spacing_ticks=1,
        size_lots=1,
        size_step_lots=0,
        skew_ticks=0,
        target_position_lots=0,
        min_spread_ticks=1,
        gamma=0.1,
        sigma=0.0,
        tau=1.0,
        kappa=1.0,
    ):
        if isinstance(mode, bool) or mode not in (MODE_FIXED, MODE_AS):
            raise ValueError(f"mode must be MODE_FIXED (0) or MODE_AS (1), got {mode!r}")
        self.mode = mode
        self.spread_ticks = _int_arg("spread_ticks", spread_ticks, 0, _MAX_TICKS)
        self.n_levels = <int>_int_arg("n_levels", n_levels, 1, _MAX_LEVELS)
        self.level_spacing_ticks = _int_arg(
            "level_spacing_ticks", level_spacing_ticks, 1, _MAX_TICKS)
        self.size_lots = _int_arg("size_lots", size_lots, 1, _MAX_LOTS)
        self.size_step_lots = _int_arg("size_step_lots", size_step_lots, -_MAX_TICKS, _MAX_TICKS)
        self.skew_ticks = _int_arg("skew_ticks", skew_ticks, 0, _MAX_TICKS)
        self.target_position_lots = _int_arg(
            "target_position_lots", target_position_lots, -_MAX_LOTS, _MAX_LOTS)
        self.max_long_lots = _int_arg("max_long_lots", max_long_lots, 0, _MAX_LOTS)
        self.max_short_lots = _int_arg("max_short_lots", max_short_lots, 0, _MAX_LOTS)
        self.min_spread_ticks = _int_arg("min_spread_ticks", min_spread_ticks, 1, _MAX_TICKS)
        self.gamma = _float_arg("gamma", gamma, 0.0, True)
        self.sigma = _float_arg("sigma", sigma, 0.0, False)
        self.tau = _float_arg("tau", tau, 0.0, False)
        self.kappa = _float_arg("kappa", kappa, 0.0, True)
        # Same operations, same order as the reference (exact parity in double).
        self.as_risk_ticks = self.gamma * self.sigma * self.sigma * self.tau
        self.as_spread_ticks = (
            self.as_risk_ticks + (2.0 / self.gamma) * log1p(self.gamma / self.kappa))
        if not isfinite(self.as_spread_ticks):
            raise ValueError(
                "gamma, sigma, tau, kappa: the A-S spread gamma*sigma^2*tau + "
                "(2/gamma)*ln(1 + gamma/kappa) must be finite")

    def __repr__(self):
        return (
            f"QuoteParams(mode={self.mode}, spread_ticks={self.spread_ticks}, "
            f"n_levels={self.n_levels}, level_spacing_ticks={self.level_spacing_ticks}, "
            f"size_lots={self.size_lots}, size_step_lots={self.size_step_lots}, "
            f"skew_ticks={self.skew_ticks}, target_position_lots={self.target_position_lots}, "
            f"max_long_lots={self.max_long_lots}, max_short_lots={self.max_short_lots}, "
            f"min_spread_ticks={self.min_spread_ticks}, gamma={self.gamma!r}, "
            f"sigma={self.sigma!r}, tau={self.tau!r}, kappa={self.kappa!r})"
        )


# ---------------------------------------------------------------- engine

@cython.final
cdef class QuoteEngine:
    """Computes the target ladder into preallocated int64 buffers (no allocation per call)."""

    def __cinit__(self, *args, **kwargs):
        # Buffers exist even if __init__ is skipped, so the pointers are never dangling.
        self._buffers = np.zeros((4, _MAX_LEVELS), dtype=np.int64)
        cdef int64_t[:, ::1] mv = self._buffers
        self._bid_px = &mv[0, 0]
        self._bid_sz = &mv[1, 0]
        self._ask_px = &mv[2, 0]
        self._ask_sz = &mv[3, 0]
        views = []
        for row in range(4):
            v = self._buffers[row].view()
            v.flags.writeable = False  # the engine writes through its own pointers
            views.append(v)
        self.bid_prices, self.bid_sizes, self.ask_prices, self.ask_sizes = views
        self.n_bids = 0
        self.n_asks = 0

    def __init__(
        self,
        QuoteParams params not None,
        *,
        min_size_lots=1,
        min_notional=0,
        price_step=1,
        lot_step=1,
    ):
        # Validate everything before assigning anything (no half-configured engine).
        cdef int64_t mn_size = _int_arg("min_size_lots", min_size_lots, 1, _MAX_LOTS)
        cdef int64_t mn_notional = _int_arg("min_notional", min_notional, 0, _INT64_MAX)
        cdef int64_t p_step = _int_arg("price_step", price_step, 1, _MAX_TICKS)
        cdef int64_t l_step = _int_arg("lot_step", lot_step, 1, _MAX_TICKS)
        self.min_size_lots = mn_size
        self.min_notional = mn_notional
        self.price_step = p_step
        self.lot_step = l_step
        self.params = params

    cpdef set_params(self, QuoteParams params):
        """Swap the parameters; takes effect at the next compute."""
        if params is None:
            raise TypeError("params must be a QuoteParams, not None")
        self.params = params

    cpdef int compute(self, int64_t best_bid, int64_t best_ask, int64_t position,
                      int64_t ref_price=0) except -1:
        """Compute both sides; returns n_bids + n_asks. ref_price 0: use the book mid."""
        cdef QuoteParams p = self.params
        cdef int64_t ref2, bid0, ask0, c, q, d, mag
        cdef double s, qd, r, b, a
        if p is None:
            raise TypeError("QuoteEngine.__init__ was not called")
        # Negative values wrap to huge unsigned ones: one compare per bound.
        if <uint64_t>best_bid > <uint64_t>_MAX_PRICE:
            return _bad_input("best_bid", best_bid, 0, _MAX_PRICE)
        if <uint64_t>best_ask > <uint64_t>_MAX_PRICE:
            return _bad_input("best_ask", best_ask, 0, _MAX_PRICE)
        if <uint64_t>ref_price > <uint64_t>_MAX_PRICE:
            return _bad_input("ref_price", ref_price, 0, _MAX_PRICE)
        if position > _MAX_LOTS or position < -_MAX_LOTS:
            return _bad_input("position", position, -_MAX_LOTS, _MAX_LOTS)
        self.n_bids = 0
        self.n_asks = 0
        # 1. Reference price, doubled so a half-tick mid stays exact.
        if ref_price > 0:
            ref2 = 2 * ref_price
        elif best_bid > 0 and best_ask > 0:
            ref2 = best_bid + best_ask
        else:
            return 0
        # 2. Level 0 from the model.
        q = position - p.target_position_lots
        if p.mode == 1:
            s = <double>ref2 / 2.0
            qd = <double>q / <double>p.size_lots
            r = s - qd * p.as_risk_ticks
            b = r - p.as_spread_ticks / 2.0
            a = r + p.as_spread_ticks / 2.0
            # Clamp before the single rounding so an extreme output stays an int64.
            if b < -_AS_CLAMP:
                b = -_AS_CLAMP
            elif b > _AS_CLAMP:
                b = _AS_CLAMP
            if a < -_AS_CLAMP:
                a = -_AS_CLAMP
            elif a > _AS_CLAMP:
                a = _AS_CLAMP
            bid0 = <int64_t>floor(b)
            ask0 = <int64_t>ceil(a)
        else:
            bid0 = ref2 // 2 - p.spread_ticks   # ref2 > 0 here: C division is floor
            ask0 = (ref2 + 1) // 2 + p.spread_ticks
            if q != 0 and p.skew_ticks != 0:
                d = p.max_long_lots if q > 0 else p.max_short_lots
                if q > 0:
                    mag = p.skew_ticks if q >= d else mmq_muldiv(p.skew_ticks, q, d)
                    bid0 -= mag
                    ask0 -= mag
                else:
                    mag = p.skew_ticks if -q >= d else mmq_muldiv(p.skew_ticks, -q, d)
                    bid0 += mag
                    ask0 += mag
        # 3. Minimum spread: re-place both around their centre, bid down, ask up.
        if ask0 - bid0 < p.min_spread_ticks:
            c = bid0 + ask0
            bid0 = _floor_div2(c - p.min_spread_ticks)
            ask0 = -_floor_div2(-(c + p.min_spread_ticks))
        # 4. Post-only: never at or through the opposite touch.
        if best_ask > 0 and bid0 >= best_ask:
            bid0 = best_ask - 1
        if best_bid > 0 and ask0 <= best_bid:
            ask0 = best_bid + 1
        # Prices are positive: an ask never below 1 tick (bids at or below 0 are dropped later).
        if ask0 < 1:
            ask0 = 1
        # 5-7. Ladder, rounding, monotonicity, sizes, limits, market minimums.
        self.n_bids = self._side(bid0, True, p.max_long_lots - position,
                                 self._bid_px, self._bid_sz)
        self.n_asks = self._side(ask0, False, p.max_short_lots + position,
                                 self._ask_px, self._ask_sz)
        return self.n_bids + self.n_asks

    cpdef int compute_from_book(self, OrderBook book, int64_t position,
                                int64_t ref_price=0) except -1:
        """compute() on the book's best bid/ask (C calls); nothing while the book is out of sync."""
        if book is None:
            raise TypeError("book must be an OrderBook, not None")
        if not book.in_sync():
            self.n_bids = 0
            self.n_asks = 0
            return 0
        return self.compute(book.best_bid(), book.best_ask(), position, ref_price)

    cdef int _side(self, int64_t px0, bint is_bid, int64_t capacity,
                   int64_t* out_px, int64_t* out_sz) noexcept:
        cdef QuoteParams p = self.params
        cdef int64_t step = self.price_step
        cdef int64_t min_size = self.min_size_lots
        cdef int64_t remaining = capacity
        cdef int64_t px = 0, prev = 0, size
        cdef int i, n = 0
        for i in range(p.n_levels):
            if is_bid:
                px = _floor_to(px0 - i * p.level_spacing_ticks, step)
                if i > 0 and px > prev - step:
                    px = prev - step   # strictly below the previous level
                if px <= 0:
                    break              # deeper bids are lower still
            else:
                px = _ceil_to(px0 + i * p.level_spacing_ticks, step)
                if i > 0 and px < prev + step:
                    px = prev + step   # strictly above the previous level
            prev = px
            if remaining < min_size:
                break                  # every later level would be clipped below the minimum
            size = p.size_lots + i * p.size_step_lots
            if size > remaining:
                size = remaining
            size = _floor_to(size, self.lot_step)
            if size < min_size or not mmq_mul_ge(px, size, self.min_notional):
                continue               # dropped; its capacity stays for deeper levels
            out_px[n] = px
            out_sz[n] = size
            n += 1
            remaining -= size
        return n

    def bids(self):
        """Copy of the bid ladder as [(price_ticks, size_lots)], best first."""
        return [(self._bid_px[i], self._bid_sz[i]) for i in range(self.n_bids)]

    def asks(self):
        """Copy of the ask ladder as [(price_ticks, size_lots)], best first."""
        return [(self._ask_px[i], self._ask_sz[i]) for i in range(self.n_asks)]
