# cython: language_level=3
"""Pre-trade risk gate of one market, compiled (docs/risk.md).

``GateCore`` holds what ``mmfast.risk.limits.RiskGate`` holds -- the limits, the market's
rules, the state the rules read (position, open orders and their lots, mark, market status,
ready / in-sync / kill flags, margin) and the order-rate window -- in C fields, and applies the
same rules in the same order with the same reasons. A compiled pipeline calls ``admit_c`` with
no Python object on the way; Python sets the state through the public fields.

Integers: prices in ticks, sizes in lots, notional in tick x lot units (128-bit products), money
in micro-USDC. The margin rule multiplies by 10^(price_decimals + size_decimals); when a product
would not fit (price x size beyond 64 bits, the margin terms beyond 128) the order is checked
by the Python gate's ``check_order`` on a copy of the state, so no input overflows and the
rules stay written once in Python for those extremes.

The order-rate window is a ring of the stamps of admitted sends (oldest first); stamps are
monotonic. A send recorded outside ``admit`` (a re-sign of an admitted order) may go past the
cap: the ring grows then, so the count stays exact.
"""

cimport cython
from libc.stdint cimport INT64_MAX, int64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memset

from mmfast.core.types import Side
from mmfast.risk.limits import (
    MarginState,
    MarketRules,
    MarketState,
    RiskLimits,
    RiskReason,
    RiskState,
    check_order,
    count_open,
)


# check_order only asks whether a modify is given (the open-order count does not grow).
_MODIFY = object()


cdef extern from *:
    """
    typedef __int128 mmf_i128;
    /* available * 1e4 * 10^x * 1e6 - extra * price * imf * 1e12 >= headroom * max(pv, 0) * 1e4
     * * 10^x, in 128 bits: 1 yes, 0 no, -1 a product does not fit (the caller decides wider). */
    static int mmf_gate_margin_ok(long long avail, long long portfolio, long long extra,
                                  long long price, long long imf_bps, long long headroom_ppm,
                                  int exp10) {
        mmf_i128 e = 1, a, t, b;
        for (int i = 0; i < exp10; i++)
            if (__builtin_mul_overflow(e, (mmf_i128)10, &e)) return -1;
        if (__builtin_mul_overflow((mmf_i128)avail, (mmf_i128)10000, &a)) return -1;
        if (__builtin_mul_overflow(a, e, &a)) return -1;
        if (__builtin_mul_overflow(a, (mmf_i128)1000000, &a)) return -1;
        if (__builtin_mul_overflow((mmf_i128)extra, (mmf_i128)price, &t)) return -1;
        if (__builtin_mul_overflow(t, (mmf_i128)imf_bps, &t)) return -1;
        if (__builtin_mul_overflow(t, (mmf_i128)1000000000000LL, &t)) return -1;
        if (__builtin_sub_overflow(a, t, &a)) return -1;
        if (portfolio < 0) portfolio = 0;
        if (__builtin_mul_overflow((mmf_i128)headroom_ppm, (mmf_i128)portfolio, &b)) return -1;
        if (__builtin_mul_overflow(b, (mmf_i128)10000, &b)) return -1;
        if (__builtin_mul_overflow(b, e, &b)) return -1;
        return a >= b;
    }
    /* price * size (both > 0), saturated to INT64_MAX when it does not fit. */
    static long long mmf_gate_notional(long long price, long long size) {
        long long r;
        if (__builtin_mul_overflow(price, size, &r)) return 0x7FFFFFFFFFFFFFFFLL;
        return r;
    }
    """
    int mmf_gate_margin_ok(long long avail, long long portfolio, long long extra,
                           long long price, long long imf_bps, long long headroom_ppm,
                           int exp10) noexcept nogil
    long long mmf_gate_notional(long long price, long long size) noexcept nogil


cdef inline int64_t _abs(int64_t x) noexcept nogil:
    return -x if x < 0 else x


cdef inline int64_t _pos(int64_t x) noexcept nogil:
    return x if x > 0 else 0


@cython.final
cdef class GateCore:
    """The compiled risk gate of one market (see the module doc)."""

    def __cinit__(self, *args, **kwargs):
        self.cap = 64
        self.ring = <int64_t *>malloc(sizeof(int64_t) * self.cap)
        if self.ring == NULL:
            raise MemoryError()
        self.head = 0
        self.count = 0
        memset(self.denied, 0, sizeof(self.denied))

    def __init__(self, limits: RiskLimits, rules: MarketRules) -> None:
        self._rules_obj = rules
        self.set_limits(limits)
        self.price_step = rules.price_step
        self.lot_step = rules.lot_step
        self.min_size_lots = rules.min_size_lots
        self.min_notional = rules.min_notional
        self.initial_margin_bps = rules.initial_margin_bps
        self.ticklot_exp = rules.price_decimals + rules.size_decimals
        self.market_state = GM_ACTIVE

    def __dealloc__(self):
        free(self.ring)

    def set_limits(self, limits: RiskLimits) -> None:
        """Replace the limits (the window and counters stay)."""
        self._limits = limits
        self.max_position_lots = limits.max_position_lots
        self.max_order_notional = min(limits.max_order_notional, (1 << 63) - 1)
        self.max_open_orders = limits.max_open_orders
        self.price_band_bps = limits.price_band_bps
        self.order_rate_cap = limits.order_rate_cap
        self.order_rate_window_ns = limits.order_rate_window_ns
        self.margin_headroom_ppm = limits.margin_headroom_ppm
        self.require_margin_stats = limits.require_margin_stats

    @property
    def limits(self) -> RiskLimits:
        """The limits in force."""
        return self._limits

    @property
    def rules(self) -> MarketRules:
        """The market's order rules."""
        return self._rules_obj

    def set_orders(self, orders, intents=None, now_ns=0) -> None:
        """Recount ``open_*`` from our orders of this market (``count_open``'s rules, the
        modifies ``intents`` pending at ``now_ns`` included), plus the ``unreported_*`` lots."""
        self.open_orders, self.open_bid_lots, self.open_ask_lots = count_open(
            orders, intents, now_ns)
        self.open_bid_lots += self.unreported_bid_lots
        self.open_ask_lots += self.unreported_ask_lots

    def set_margin(self, available_micro: int | None, portfolio_micro: int = 0) -> None:
        """Margin figures from user_stats (micro-USDC); ``None``: not known."""
        if available_micro is None:
            self.has_margin = False
            self.available_micro = self.portfolio_micro = 0
        else:
            self.has_margin = True
            self.available_micro = available_micro
            self.portfolio_micro = portfolio_micro

    # ------------------------------------------------------------------ rules
    cdef int check_rules(self, int side, int64_t price, int64_t size, bint reduce_only,
                         bint is_modify) noexcept:
        """Every rule but the rate cap (RiskReason value); G_MARGIN_WIDE: ask Python."""
        cdef int64_t notional, mark, pos, before, after, extra
        cdef int r
        if not self.connector_ready:
            return G_NOT_READY
        if not self.book_in_sync:
            return G_BOOK_OUT_OF_SYNC
        if self.kill_switch_tripped:
            return G_KILL_SWITCH
        if self.market_state == GM_INACTIVE:
            return G_MARKET_INACTIVE
        if self.market_state == GM_REDUCE_ONLY and not reduce_only:
            return G_MARKET_REDUCE_ONLY
        if price <= 0:
            return G_BAD_PRICE
        if size <= 0:
            return G_BAD_SIZE
        if price % self.price_step:
            return G_PRICE_PRECISION
        if size % self.lot_step:
            return G_SIZE_PRECISION
        if size < self.min_size_lots:
            return G_BELOW_MIN_SIZE
        notional = mmf_gate_notional(price, size)
        if notional == INT64_MAX:
            return G_WIDE  # price x size beyond 64 bits: Python decides with exact ints
        if notional < self.min_notional:
            return G_BELOW_MIN_NOTIONAL
        mark = self.mark_price
        if mark <= 0:
            return G_NO_MARK
        if _band_out(price, mark, self.price_band_bps):
            return G_PRICE_BAND
        if notional > self.max_order_notional:
            return G_MAX_ORDER_NOTIONAL
        pos = self.position_lots
        if reduce_only:
            if (side == 0 and -pos < size) or (side != 0 and pos < size):
                return G_REDUCE_ONLY_NO_POSITION
            extra = 0
        elif side == 0:
            before = pos + self.open_bid_lots
            after = before + size
            if after > self.max_position_lots:
                return G_MAX_POSITION
            extra = _pos(after) - _pos(before)
        else:
            before = pos - self.open_ask_lots
            after = before - size
            if after < -self.max_position_lots:
                return G_MAX_POSITION
            extra = _pos(-after) - _pos(-before)
        if not is_modify and self.open_orders + 1 > self.max_open_orders:
            return G_MAX_OPEN_ORDERS
        if extra > 0:
            if not self.has_margin:
                if self.require_margin_stats:
                    return G_MARGIN_UNKNOWN
            else:
                r = mmf_gate_margin_ok(self.available_micro, self.portfolio_micro, extra, price,
                                       self.initial_margin_bps, self.margin_headroom_ppm,
                                       self.ticklot_exp)
                if r < 0:
                    return G_WIDE
                if r == 0:
                    return G_MARGIN
        return G_OK

    cdef int _rules(self, int side, int64_t price, int64_t size, bint reduce_only,
                    bint is_modify) except -1:
        cdef int r = self.check_rules(side, price, size, reduce_only, is_modify)
        if r != G_WIDE:
            return r
        # Products beyond 128 bits: the same rules with Python ints (the Python gate's rules).
        return int(check_order(Side(side), price, size, self.state_view(), self._limits,
                               self._rules_obj, reduce_only=reduce_only,
                               modify_of=_MODIFY if is_modify else None))

    def state_view(self) -> RiskState:
        """The state as the Python gate's ``RiskState`` (a copy)."""
        return RiskState(
            position_lots=self.position_lots, open_orders=self.open_orders,
            open_bid_lots=self.open_bid_lots, open_ask_lots=self.open_ask_lots,
            unreported_bid_lots=self.unreported_bid_lots,
            unreported_ask_lots=self.unreported_ask_lots, mark_price=self.mark_price,
            market_state=MarketState(self.market_state),
            book_in_sync=self.book_in_sync, connector_ready=self.connector_ready,
            kill_switch_tripped=self.kill_switch_tripped,
            margin=MarginState(self.available_micro, self.portfolio_micro)
            if self.has_margin else None)

    # ------------------------------------------------------------------ rate window
    cdef Py_ssize_t window_count(self, int64_t now_ns) noexcept:
        cdef int64_t edge = now_ns - self.order_rate_window_ns
        while self.count and self.ring[self.head] <= edge:
            self.head += 1
            if self.head == self.cap:
                self.head = 0
            self.count -= 1
        return self.count

    cdef int _push(self, int64_t now_ns) except -1:
        cdef Py_ssize_t i, n
        cdef int64_t *grown
        if self.count == self.cap:
            n = self.cap * 2
            grown = <int64_t *>malloc(sizeof(int64_t) * n)
            if grown == NULL:
                raise MemoryError()
            for i in range(self.count):
                grown[i] = self.ring[(self.head + i) % self.cap]
            free(self.ring)
            self.ring = grown
            self.cap = n
            self.head = 0
        self.ring[(self.head + self.count) % self.cap] = now_ns
        self.count += 1
        return 0

    cdef int admit_c(self, int side, int64_t price, int64_t size, bint reduce_only,
                     bint is_modify, int64_t now_ns) except -1:
        """Check every rule and the rate cap; record the send when OK. RiskReason value."""
        cdef int r = self._rules(side, price, size, reduce_only, is_modify)
        if r == G_OK and self.window_count(now_ns) + 1 > self.order_rate_cap:
            r = G_ORDER_RATE
        if r != G_OK:
            self.denied[r] += 1
            return r
        self._push(now_ns)
        self.admitted += 1
        return G_OK

    # ------------------------------------------------------------------ Python API
    def check(self, int side, int64_t price, int64_t size, *, bint reduce_only=False,
              bint is_modify=False, int64_t now_ns=0) -> RiskReason:
        """Every rule, rate cap included, recording nothing."""
        cdef int r = self._rules(side, price, size, reduce_only, is_modify)
        if r == G_OK and self.window_count(now_ns) + 1 > self.order_rate_cap:
            r = G_ORDER_RATE
        return RiskReason(r)

    def admit(self, int side, int64_t price, int64_t size, *, bint reduce_only=False,
              bint is_modify=False, int64_t now_ns=0) -> RiskReason:
        """``check``; when OK, record the send and count it; else count the denial."""
        return RiskReason(self.admit_c(side, price, size, reduce_only, is_modify, now_ns))

    def record_send(self, int64_t now_ns) -> None:
        """Count a send that bypassed ``admit`` in the rate window."""
        self._push(now_ns)

    def sends_in_window(self, int64_t now_ns) -> int:
        return self.window_count(now_ns)

    @property
    def denials(self) -> dict[RiskReason, int]:
        """Denials by reason (reasons never denied are left out)."""
        return {RiskReason(i): self.denied[i] for i in range(1, G_N_REASONS) if self.denied[i]}


cdef inline bint _band_out(int64_t price, int64_t mark, int64_t bps) noexcept nogil:
    # |price - mark| * 10000 > mark * bps, exact in 128 bits (price, mark < 2^63).
    cdef long long d = price - mark if price >= mark else mark - price
    return _mul128_gt(d, 10000, mark, bps)


cdef extern from *:
    """
    static int mmf_mul128_gt(long long a, long long b, long long c, long long d) {
        return (__int128)a * b > (__int128)c * d;
    }
    """
    int mmf_mul128_gt(long long a, long long b, long long c, long long d) noexcept nogil


cdef inline bint _mul128_gt(int64_t a, int64_t b, int64_t c, int64_t d) noexcept nogil:
    return mmf_mul128_gt(a, b, c, d)
