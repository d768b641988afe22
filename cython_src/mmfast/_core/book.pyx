# cython: language_level=3
"""L2 order book of one market, compiled (see docs/book.md).

Prices and sizes are int64 ticks and lots, parsed exactly from the venue's decimal strings in C.
Each side lives in "key space" (bids key = price, asks key = INT64_MAX - price + 1) so one code
path serves both sides with "best = max key". Storage per side: a dense window of ``window``
slots (int64 sizes + occupancy bitmap) placed around the touch, plus a sorted C array for levels
outside the window. ``apply_frame`` scans raw frame bytes; whatever it does not fully understand
goes through ``orjson.loads`` + ``apply_message``, so both give the same results.
"""

cimport cython
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_CheckExact, PyBytes_GET_SIZE
from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.object cimport PyObject
from libc.math cimport NAN
from libc.stdint cimport INT64_MAX, int64_t, uint64_t
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memcmp, memmove, memset

from mmfast._core.units cimport (
    DEC_NOT_STR,
    DEC_OK,
    DEC_ZERO,
    units_parse,
    units_reason,
)

import orjson

# One BookError for this book and its pure-Python twin (mmfast.reference.book).
from mmfast.core.errors import BookError


cdef extern from "Python.h":
    # Declared with PyObject* so borrowed references are read without refcount traffic.
    PyObject *PyDict_GetItemWithError(PyObject *d, PyObject *key)
    PyObject *PyErr_Occurred()
    bint PyDict_Check(PyObject *o)
    bint PyList_Check(PyObject *o)
    bint PyUnicode_Check(PyObject *o)
    bint PyLong_CheckExact(PyObject *o)
    Py_ssize_t PyList_GET_SIZE(PyObject *o)
    PyObject *PyList_GET_ITEM(PyObject *o, Py_ssize_t i)
    int PyUnicode_IS_ASCII(PyObject *o)
    void *PyUnicode_DATA(PyObject *o)
    Py_ssize_t PyUnicode_GET_LENGTH(PyObject *o)
    long long PyLong_AsLongLongAndOverflow(PyObject *o, int *overflow)

cdef extern from *:
    # gcc/clang builtins (the targets are Linux/macOS); arguments are never 0 where used.
    int __builtin_clzll(unsigned long long x) nogil
    int __builtin_ctzll(unsigned long long x) nogil
    ctypedef long long int128 "__int128"


# ---------------------------------------------------------------------------------------------
# Public constants
# ---------------------------------------------------------------------------------------------

BID = 0
ASK = 1
APPLIED = BOOK_APPLIED
DROPPED_PRE_SNAPSHOT = BOOK_DROPPED_PRE_SNAPSHOT
GAP = BOOK_GAP
IGNORED_OUT_OF_SYNC = BOOK_IGNORED_OUT_OF_SYNC
NOT_BOOK = BOOK_NOT_BOOK
DEFAULT_WINDOW = 2048


cdef enum:
    MAX_DECIMALS = 18            # 10**18 still fits int64
    SCR_BASE = 128               # scratch levels per side kept between messages
    MAX_WINDOW = 1 << 20         # upper bound on window slots per side

# Parse status codes of units_parse (mmfast._core.units; DEC_REASONS is indexed by them).
DEC_REASONS = tuple(units_reason(c, -1) for c in range(DEC_NOT_STR + 1))

# Interned keys: dict lookups hash them once (str caches its hash).
cdef str K_TYPE = "type"
cdef str K_ORDER_BOOK = "order_book"
cdef str K_ASKS = "asks"
cdef str K_BIDS = "bids"
cdef str K_NONCE = "nonce"
cdef str K_BEGIN_NONCE = "begin_nonce"
cdef str K_PRICE = "price"
cdef str K_SIZE = "size"


cdef str _short(object value):
    """repr of an offending value, truncated so a 10 MB frame never lands in a message."""
    r = repr(value)
    if len(r) > 60:
        r = r[:57] + "..."
    return r


# ---------------------------------------------------------------------------------------------
# Exact decimal parser: units_parse of mmfast._core.units (units.pxd), strict flags (0)
# ---------------------------------------------------------------------------------------------

cdef inline int _ascii_span(PyObject *o, const char **s, Py_ssize_t *n) noexcept:
    """Point at the bytes of an ASCII str (its own buffer: no allocation); 0 if not one."""
    if o == NULL or not PyUnicode_Check(o) or not PyUnicode_IS_ASCII(o):
        return 0
    s[0] = <const char *>PyUnicode_DATA(o)
    n[0] = PyUnicode_GET_LENGTH(o)
    return 1


cdef str _dec_message(str what, object value, int code, int decimals):
    return f"invalid {what} {_short(value)}: {units_reason(code, decimals)}"


def parse_decimal(s, int decimals):
    """Parse a venue decimal string (str or bytes) exactly into an int scaled by 10**decimals.

    Raises BookError (naming the value) when it is not ``[0-9]+(.[0-9]+)?`` with at most
    ``decimals`` fraction digits, or does not fit int64.
    """
    cdef const char *p
    cdef Py_ssize_t n
    cdef int64_t v = 0
    cdef int code
    if decimals < 0 or decimals > MAX_DECIMALS:
        raise ValueError(f"decimals must be in 0..{MAX_DECIMALS}, got {decimals}")
    if isinstance(s, bytes):
        p = PyBytes_AS_STRING(s)
        n = PyBytes_GET_SIZE(s)
    elif not _ascii_span(<PyObject *>s, &p, &n):
        raise BookError(_dec_message("value", s, DEC_NOT_STR, decimals))
    code = units_parse(p, n, decimals, 0, &v)
    if code != DEC_OK:
        raise BookError(_dec_message("value", s, code, decimals))
    return v


# ---------------------------------------------------------------------------------------------
# One side's storage (key space: best = max key; keys in [1, INT64_MAX]; 0 = none)
# ---------------------------------------------------------------------------------------------

cdef inline int64_t _ask_key(int64_t price) noexcept nogil:
    return INT64_MAX - price + 1


cdef inline int64_t _key_price(int side, int64_t key) noexcept nogil:
    # The map is an involution on [1, INT64_MAX].
    return key if side == 0 else INT64_MAX - key + 1


cdef inline Py_ssize_t _scan_down(const uint64_t *bits, Py_ssize_t slot) noexcept nogil:
    """Highest occupied slot <= slot, or -1."""
    cdef Py_ssize_t w
    cdef uint64_t m
    if slot < 0:
        return -1
    w = slot >> 6
    m = bits[w] & (<uint64_t>0xFFFFFFFFFFFFFFFF >> (63 - (slot & 63)))
    while True:
        if m:
            return (w << 6) + 63 - __builtin_clzll(m)
        w -= 1
        if w < 0:
            return -1
        m = bits[w]


cdef inline int64_t _target_lo(int64_t best, int64_t W) noexcept nogil:
    """Window origin that puts ``best`` at 3/4 of the window (room to improve, depth below)."""
    cdef int64_t lo = best - (W - (W >> 2))
    if lo < 0:
        lo = 0
    if lo > INT64_MAX - W + 1:
        lo = INT64_MAX - W + 1
    return lo


cdef inline Py_ssize_t _ov_lower(const BookSide *s, int64_t key) noexcept nogil:
    """First overflow index whose key >= key."""
    cdef Py_ssize_t a = 0, b = s.ov_n, m
    while a < b:
        m = (a + b) >> 1
        if s.ov_keys[m] < key:
            a = m + 1
        else:
            b = m
    return a


cdef int _ov_reserve(BookSide *s, Py_ssize_t need) except -1:
    cdef Py_ssize_t cap
    cdef int64_t *k
    cdef int64_t *v
    if need <= s.ov_cap:
        return 0
    cap = s.ov_cap * 2 if s.ov_cap >= 16 else 16
    if cap < need:
        cap = need
    k = <int64_t *>realloc(s.ov_keys, cap * sizeof(int64_t))
    if k == NULL:
        raise MemoryError()
    s.ov_keys = k
    v = <int64_t *>realloc(s.ov_sizes, cap * sizeof(int64_t))
    if v == NULL:
        raise MemoryError()
    s.ov_sizes = v
    s.ov_cap = cap
    return 0


cdef inline void _refresh_best(BookSide *s, int64_t W, int64_t gone) noexcept nogil:
    """Find the new best after the best level (key ``gone``) was removed."""
    cdef int64_t cand = 0, cand_size = 0
    cdef int64_t top
    cdef Py_ssize_t slot
    if s.ov_n:
        # ``gone`` was the maximum key, so every remaining overflow key is below it.
        cand = s.ov_keys[s.ov_n - 1]
        cand_size = s.ov_sizes[s.ov_n - 1]
    if s.win_count:
        top = gone - s.lo - 1
        if top >= W:
            top = W - 1
        slot = _scan_down(s.bits, <Py_ssize_t>top)
        if slot >= 0 and s.lo + slot > cand:
            cand = s.lo + slot
            cand_size = s.sizes[slot]
    s.best_key = cand
    s.best_size = cand_size


cdef int _ov_set(BookSide *s, int64_t W, int64_t key, int64_t size) except -1:
    cdef Py_ssize_t i = _ov_lower(s, key)
    if i < s.ov_n and s.ov_keys[i] == key:
        if size != 0:
            s.ov_sizes[i] = size
            if key == s.best_key:
                s.best_size = size
        else:
            memmove(&s.ov_keys[i], &s.ov_keys[i + 1], (s.ov_n - i - 1) * sizeof(int64_t))
            memmove(&s.ov_sizes[i], &s.ov_sizes[i + 1], (s.ov_n - i - 1) * sizeof(int64_t))
            s.ov_n -= 1
            s.count -= 1
            if key == s.best_key:
                _refresh_best(s, W, key)
    elif size != 0:
        _ov_reserve(s, s.ov_n + 1)
        memmove(&s.ov_keys[i + 1], &s.ov_keys[i], (s.ov_n - i) * sizeof(int64_t))
        memmove(&s.ov_sizes[i + 1], &s.ov_sizes[i], (s.ov_n - i) * sizeof(int64_t))
        s.ov_keys[i] = key
        s.ov_sizes[i] = size
        s.ov_n += 1
        s.count += 1
        if key > s.best_key:
            s.best_key = key
            s.best_size = size
    return 0


cdef inline int _side_set(BookSide *s, int64_t W, int64_t key, int64_t size) except -1:
    """Set the absolute size of level ``key`` (0 deletes)."""
    cdef int64_t slot = key - s.lo
    cdef int64_t old
    cdef uint64_t bit
    if <uint64_t>slot < <uint64_t>W:
        old = s.sizes[slot]
        s.sizes[slot] = size
        bit = (<uint64_t>1) << (slot & 63)
        if size != 0:
            if old == 0:
                s.bits[slot >> 6] |= bit
                s.count += 1
                s.win_count += 1
            if key >= s.best_key:
                s.best_key = key
                s.best_size = size
        elif old != 0:
            s.bits[slot >> 6] &= ~bit
            s.count -= 1
            s.win_count -= 1
            if key == s.best_key:
                _refresh_best(s, W, key)
        return 0
    return _ov_set(s, W, key, size)


cdef inline int64_t _side_get(const BookSide *s, int64_t W, int64_t key) noexcept nogil:
    cdef int64_t slot = key - s.lo
    cdef Py_ssize_t i
    if <uint64_t>slot < <uint64_t>W:
        return s.sizes[slot]
    i = _ov_lower(s, key)
    if i < s.ov_n and s.ov_keys[i] == key:
        return s.ov_sizes[i]
    return 0


cdef void _side_clear(BookSide *s, int64_t W) noexcept nogil:
    cdef Py_ssize_t w
    cdef uint64_t m
    if s.win_count:
        for w in range(W >> 6):
            m = s.bits[w]
            while m:
                s.sizes[(w << 6) + __builtin_ctzll(m)] = 0
                m &= m - 1
        memset(s.bits, 0, (W >> 6) * sizeof(uint64_t))
    s.win_count = 0
    s.ov_n = 0
    s.count = 0
    s.best_key = 0
    s.best_size = 0


cdef int _relocate(BookSide *s, int64_t W, int64_t nlo) except -1:
    """Move the window origin to ``nlo``; levels move between window and overflow."""
    cdef Py_ssize_t n = s.win_count + s.ov_n
    cdef Py_ssize_t j, i, t = 0, w
    cdef uint64_t m
    cdef int64_t slot, key
    cdef int64_t *tk
    cdef int64_t *tv
    if n == 0:
        s.lo = nlo
        return 0
    # Allocate everything first so a failure leaves the side untouched.
    _ov_reserve(s, n)
    tk = <int64_t *>malloc(2 * n * sizeof(int64_t))
    if tk == NULL:
        raise MemoryError()
    tv = tk + n
    # Ascending merge: overflow keys below the window, window levels, overflow keys above it.
    j = _ov_lower(s, s.lo)
    for i in range(j):
        tk[t] = s.ov_keys[i]
        tv[t] = s.ov_sizes[i]
        t += 1
    for w in range(W >> 6):
        m = s.bits[w]
        while m:
            slot = (w << 6) + __builtin_ctzll(m)
            tk[t] = s.lo + slot
            tv[t] = s.sizes[slot]
            s.sizes[slot] = 0
            t += 1
            m &= m - 1
    memset(s.bits, 0, (W >> 6) * sizeof(uint64_t))
    for i in range(j, s.ov_n):
        tk[t] = s.ov_keys[i]
        tv[t] = s.ov_sizes[i]
        t += 1
    s.lo = nlo
    s.ov_n = 0
    s.win_count = 0
    for i in range(n):
        key = tk[i]
        slot = key - nlo
        if <uint64_t>slot < <uint64_t>W:
            s.sizes[slot] = tv[i]
            s.bits[slot >> 6] |= (<uint64_t>1) << (slot & 63)
            s.win_count += 1
        else:
            s.ov_keys[s.ov_n] = key
            s.ov_sizes[s.ov_n] = tv[i]
            s.ov_n += 1
    free(tk)
    return 0


cdef inline int _recentre(BookSide *s, int64_t W) except -1:
    """Hysteresis: move the window only when the best left [lo + W/4, lo + W)."""
    cdef int64_t d, nlo
    if s.best_key == 0:
        return 0
    d = s.best_key - s.lo
    if d < W and d >= (W >> 2):
        return 0
    nlo = _target_lo(s.best_key, W)
    if nlo == s.lo:
        return 0
    return _relocate(s, W, nlo)


cdef inline int _scr_push(BookSide *s, int64_t key, int64_t size) noexcept nogil:
    """Append one parsed level to the scratch; 0 on allocation failure."""
    cdef Py_ssize_t cap
    cdef int64_t *k
    cdef int64_t *v
    if s.scr_n == s.scr_cap:
        cap = s.scr_cap * 2
        k = <int64_t *>realloc(s.scr_keys, cap * sizeof(int64_t))
        if k == NULL:
            return 0
        s.scr_keys = k
        v = <int64_t *>realloc(s.scr_sizes, cap * sizeof(int64_t))
        if v == NULL:
            return 0
        s.scr_sizes = v
        s.scr_cap = cap
    s.scr_keys[s.scr_n] = key
    s.scr_sizes[s.scr_n] = size
    s.scr_n += 1
    return 1


# Descending iteration over one side: merges the window (bitmap scan) and the overflow array.
ctypedef struct LevelIter:
    const BookSide *s       # side being walked
    Py_ssize_t slot         # next window slot to emit, -1 when the window is done
    Py_ssize_t oi           # next overflow index to emit, -1 when the overflow is done


cdef inline void _it_init(LevelIter *it, const BookSide *s, int64_t W) noexcept nogil:
    it.s = s
    it.slot = _scan_down(s.bits, <Py_ssize_t>(W - 1)) if s.win_count else -1
    it.oi = s.ov_n - 1


cdef inline bint _it_next(LevelIter *it, int64_t *key, int64_t *size) noexcept nogil:
    cdef const BookSide *s = it.s
    cdef int64_t wk = s.lo + it.slot if it.slot >= 0 else 0
    cdef int64_t ok = s.ov_keys[it.oi] if it.oi >= 0 else 0
    if wk == 0 and ok == 0:
        return False
    if wk > ok:
        key[0] = wk
        size[0] = s.sizes[it.slot]
        it.slot = _scan_down(s.bits, it.slot - 1) if it.slot > 0 else -1
    else:
        key[0] = ok
        size[0] = s.ov_sizes[it.oi]
        it.oi -= 1
    return True


# ---------------------------------------------------------------------------------------------
# Byte scanner for order-book frames (happy path only; anything else -> fallback)
# ---------------------------------------------------------------------------------------------

# Byte classes inside a JSON string: 0 plain ASCII, 1 closing quote, 2 leave to orjson
# (backslash escape, control byte, non-ASCII byte). One table load per byte.
cdef unsigned char STR_CLASS[256]
for _i in range(256):
    STR_CLASS[_i] = 2 if (_i < 32 or _i >= 128 or _i == 92) else (1 if _i == 34 else 0)


cdef inline const char *_ws(const char *p, const char *end) noexcept nogil:
    while p < end and (p[0] == b' ' or p[0] == b'\n' or p[0] == b'\r' or p[0] == b'\t'):
        p += 1
    return p


cdef inline const char *_str(const char *p, const char *end,
                             const char **s, Py_ssize_t *n) noexcept nogil:
    """p at '"': plain ASCII string without escapes or control bytes; NULL otherwise."""
    cdef const char *start
    cdef unsigned char k
    p += 1
    start = p
    while p < end:
        k = STR_CLASS[<unsigned char>p[0]]
        if k:
            if k == 1:  # closing quote
                s[0] = start
                n[0] = p - start
                return p + 1
            return NULL
        p += 1
    return NULL


cdef inline const char *_uint(const char *p, const char *end, int64_t *out) noexcept nogil:
    """A non-negative JSON integer that fits int64 (no sign, fraction or exponent)."""
    cdef uint64_t v = 0, d
    if p >= end:
        return NULL
    if p[0] == b'0':
        p += 1
    elif b'1' <= p[0] <= b'9':
        while p < end:
            d = <unsigned char>p[0] - 48
            if d > 9:
                break
            if v > (<uint64_t>INT64_MAX - d) // 10:
                return NULL
            v = v * 10 + d
            p += 1
    else:
        return NULL
    if p < end and ((b'0' <= p[0] <= b'9') or p[0] == b'.' or p[0] == b'e' or p[0] == b'E'):
        return NULL
    out[0] = <int64_t>v
    return p


cdef inline const char *_skip(const char *p, const char *end) noexcept nogil:
    """Skip a simple JSON value: plain string, integer of <= 18 digits, true/false/null."""
    cdef const char *s
    cdef Py_ssize_t n
    cdef int digits = 0
    if p >= end:
        return NULL
    if p[0] == b'"':
        return _str(p, end, &s, &n)
    if p[0] == b'-' or (b'0' <= p[0] <= b'9'):
        if p[0] == b'-':
            p += 1
        if p < end and p[0] == b'0':
            p += 1
            digits = 1
        else:
            while p < end and b'0' <= p[0] <= b'9':
                p += 1
                digits += 1
        if digits == 0 or digits > 18:
            return NULL
        if p < end and ((b'0' <= p[0] <= b'9') or p[0] == b'.' or p[0] == b'e' or p[0] == b'E'):
            return NULL
        return p
    if end - p >= 4 and (memcmp(p, b"true", 4) == 0 or memcmp(p, b"null", 4) == 0):
        return p + 4
    if end - p >= 5 and memcmp(p, b"false", 5) == 0:
        return p + 5
    return NULL


cdef inline bint _key_is(const char *s, Py_ssize_t n, const char *lit,
                         Py_ssize_t ln) noexcept nogil:
    return n == ln and memcmp(s, lit, ln) == 0


cdef const char *_levels(const char *p, const char *end, BookSide *s, bint ask,
                         int pd, int sd) noexcept nogil:
    """p at '[': parse [{"price": "..", "size": ".."}, ...] into the side's scratch."""
    cdef const char *ks
    cdef const char *vs
    cdef Py_ssize_t kn, vn
    cdef bint have_p, have_s
    cdef int64_t price = 0, size = 0
    s.scr_n = 0
    p = _ws(p + 1, end)
    if p < end and p[0] == b']':
        return p + 1
    while True:
        if p >= end or p[0] != b'{':
            return NULL
        p = _ws(p + 1, end)
        have_p = False
        have_s = False
        while True:
            if p >= end or p[0] != b'"':
                return NULL
            p = _str(p, end, &ks, &kn)
            if p == NULL:
                return NULL
            p = _ws(p, end)
            if p >= end or p[0] != b':':
                return NULL
            p = _ws(p + 1, end)
            if _key_is(ks, kn, b"price", 5):
                if have_p or p >= end or p[0] != b'"':
                    return NULL
                have_p = True
                p = _str(p, end, &vs, &vn)
                if p == NULL or units_parse(vs, vn, pd, 0, &price) != DEC_OK or price == 0:
                    return NULL
            elif _key_is(ks, kn, b"size", 4):
                if have_s or p >= end or p[0] != b'"':
                    return NULL
                have_s = True
                p = _str(p, end, &vs, &vn)
                if p == NULL or units_parse(vs, vn, sd, 0, &size) != DEC_OK:
                    return NULL
            else:
                p = _skip(p, end)
                if p == NULL:
                    return NULL
            p = _ws(p, end)
            if p >= end:
                return NULL
            if p[0] == b',':
                p = _ws(p + 1, end)
                continue
            if p[0] == b'}':
                p += 1
                break
            return NULL
        if not (have_p and have_s):
            return NULL
        if not _scr_push(s, _ask_key(price) if ask else price, size):
            return NULL
        p = _ws(p, end)
        if p >= end:
            return NULL
        if p[0] == b',':
            p = _ws(p + 1, end)
            continue
        if p[0] == b']':
            return p + 1
        return NULL


# ---------------------------------------------------------------------------------------------
# The book
# ---------------------------------------------------------------------------------------------

@cython.final
cdef class OrderBook:
    """L2 order book of one market (see book.pyi for the full contract)."""

    def __cinit__(self, int64_t market_id, int price_decimals, int size_decimals,
                  int64_t window=DEFAULT_WINDOW):
        cdef int i
        memset(self.sides, 0, sizeof(self.sides))
        if market_id < 0:
            raise ValueError(f"market_id must be >= 0, got {market_id}")
        if not 0 <= price_decimals <= MAX_DECIMALS:
            raise ValueError(f"price_decimals must be in 0..{MAX_DECIMALS}, got {price_decimals}")
        if not 0 <= size_decimals <= MAX_DECIMALS:
            raise ValueError(f"size_decimals must be in 0..{MAX_DECIMALS}, got {size_decimals}")
        if window < 64 or window > MAX_WINDOW or window % 64:
            raise ValueError(f"window must be a multiple of 64 in 64..{MAX_WINDOW}, got {window}")
        self.market_id = market_id
        self.price_decimals = price_decimals
        self.size_decimals = size_decimals
        self.window = window
        for i in range(2):
            self.sides[i].sizes = <int64_t *>malloc(window * sizeof(int64_t))
            self.sides[i].bits = <uint64_t *>malloc((window >> 6) * sizeof(uint64_t))
            self.sides[i].scr_keys = <int64_t *>malloc(SCR_BASE * sizeof(int64_t))
            self.sides[i].scr_sizes = <int64_t *>malloc(SCR_BASE * sizeof(int64_t))
            if (self.sides[i].sizes == NULL or self.sides[i].bits == NULL
                    or self.sides[i].scr_keys == NULL or self.sides[i].scr_sizes == NULL):
                raise MemoryError()
            memset(self.sides[i].sizes, 0, window * sizeof(int64_t))
            memset(self.sides[i].bits, 0, (window >> 6) * sizeof(uint64_t))
            self.sides[i].scr_cap = SCR_BASE

    def __dealloc__(self):
        cdef int i
        for i in range(2):
            free(self.sides[i].sizes)
            free(self.sides[i].bits)
            free(self.sides[i].ov_keys)
            free(self.sides[i].ov_sizes)
            free(self.sides[i].scr_keys)
            free(self.sides[i].scr_sizes)

    def __repr__(self):
        return (f"OrderBook(market_id={self.market_id}, bid={self.best_bid()}x"
                f"{self.best_bid_size()}, ask={self.best_ask()}x{self.best_ask_size()}, "
                f"levels={self.sides[0].count}/{self.sides[1].count}, nonce={self.nonce}, "
                f"in_sync={self.in_sync()})")

    # --- O(1) reads ---------------------------------------------------------------------------

    cpdef int64_t best_bid(self) noexcept:
        return self.sides[0].best_key

    cpdef int64_t best_ask(self) noexcept:
        cdef int64_t k = self.sides[1].best_key
        return INT64_MAX - k + 1 if k else 0

    cpdef int64_t best_bid_size(self) noexcept:
        return self.sides[0].best_size

    cpdef int64_t best_ask_size(self) noexcept:
        return self.sides[1].best_size

    cpdef bint in_sync(self) noexcept:
        return self.has_snapshot and self.synced

    cpdef uint64_t mid_x2(self) noexcept:
        if self.sides[0].best_key == 0 or self.sides[1].best_key == 0:
            return 0
        # Both prices are <= INT64_MAX, so the unsigned sum is exact.
        return <uint64_t>self.best_bid() + <uint64_t>self.best_ask()

    cpdef double mid(self) noexcept:
        cdef uint64_t x2 = self.mid_x2()
        if x2 == 0:
            return NAN
        return <double>x2 * 0.5

    cpdef double microprice(self) noexcept:
        cdef int128 num, den
        if self.sides[0].best_key == 0 or self.sides[1].best_key == 0:
            return NAN
        # 128-bit products: price x size can exceed int64.
        num = (<int128>self.best_bid() * <int128>self.sides[1].best_size
               + <int128>self.best_ask() * <int128>self.sides[0].best_size)
        den = <int128>self.sides[0].best_size + <int128>self.sides[1].best_size
        return <double>num / <double>den

    cpdef bint is_crossed(self) noexcept:
        return (self.sides[0].best_key != 0 and self.sides[1].best_key != 0
                and self.best_bid() > self.best_ask())

    cpdef bint is_locked(self) noexcept:
        return (self.sides[0].best_key != 0 and self.sides[1].best_key != 0
                and self.best_bid() == self.best_ask())

    cpdef void invalidate(self) noexcept:
        self.synced = False

    # --- other queries ------------------------------------------------------------------------

    def size_at(self, int side, int64_t price) -> int:
        """Size in lots at ``price`` on ``side`` (0 if no level)."""
        _check_side(side)
        if price <= 0:
            return 0
        return _side_get(&self.sides[side], self.window,
                         _ask_key(price) if side else price)

    def level_count(self, int side) -> int:
        """Number of price levels on ``side``."""
        _check_side(side)
        return self.sides[side].count

    def top(self, int side, Py_ssize_t n) -> list:
        """Up to ``n`` levels of ``side`` as (price, size), best first."""
        cdef LevelIter it
        cdef int64_t key, size
        _check_side(side)
        out = []
        if n <= 0:
            return out
        _it_init(&it, &self.sides[side], self.window)
        while n > 0 and _it_next(&it, &key, &size):
            out.append((_key_price(side, key), size))
            n -= 1
        return out

    def depth_to(self, int side, int64_t price) -> int:
        """Cumulative size from the best level through ``price`` inclusive (0 if price is better
        than the best)."""
        cdef LevelIter it
        cdef int64_t key, size, kp, total = 0
        cdef object big
        _check_side(side)
        if price <= 0:
            if side:
                return 0
            kp = 1
        else:
            kp = _ask_key(price) if side else price
        _it_init(&it, &self.sides[side], self.window)
        while _it_next(&it, &key, &size) and key >= kp:
            if total > INT64_MAX - size:
                # Rare: the sum leaves int64; finish with Python ints.
                big = total
                big += size
                while _it_next(&it, &key, &size) and key >= kp:
                    big += size
                return big
            total += size
        return total

    # --- parsing --------------------------------------------------------------------------------

    def parse_price(self, s) -> int:
        """Parse a price string into ticks with this market's price decimals (> 0)."""
        v = parse_decimal(s, self.price_decimals)
        if v == 0:
            raise BookError(_dec_message("price", s, DEC_ZERO, self.price_decimals))
        return v

    def parse_size(self, s) -> int:
        """Parse a size string into lots with this market's size decimals."""
        return parse_decimal(s, self.size_decimals)

    # --- apply ----------------------------------------------------------------------------------

    cdef void _trim_scratch(self) noexcept:
        # A huge message grows the scratch; give the memory back so the hot footprint stays fixed.
        cdef int i
        cdef int64_t *k
        cdef int64_t *v
        for i in range(2):
            self.sides[i].scr_n = 0
            if self.sides[i].scr_cap > SCR_BASE:
                k = <int64_t *>realloc(self.sides[i].scr_keys, SCR_BASE * sizeof(int64_t))
                v = <int64_t *>realloc(self.sides[i].scr_sizes, SCR_BASE * sizeof(int64_t))
                if k != NULL:
                    self.sides[i].scr_keys = k
                if v != NULL:
                    self.sides[i].scr_sizes = v
                if k != NULL and v != NULL:
                    self.sides[i].scr_cap = SCR_BASE

    cdef int _bad(self, str what) except -1:
        self.malformed += 1
        self._trim_scratch()
        raise BookError(what)

    cdef int _read_nonce(self, object value, str name, int64_t *out) except -1:
        cdef int overflow = 0
        cdef long long v
        if not PyLong_CheckExact(<PyObject *>value):
            return self._bad(f"{name} must be an int, got {_short(value)}")
        v = PyLong_AsLongLongAndOverflow(<PyObject *>value, &overflow)
        if overflow or v < 0:
            return self._bad(f"{name} out of range 0..2**63-1: {_short(value)}")
        out[0] = v
        return 0

    cdef int _fill_side(self, int side, object levels) except -1:
        """Validate one level list into the side's scratch (nothing is applied here)."""
        cdef BookSide *s = &self.sides[side]
        cdef Py_ssize_t i, n, cap
        cdef PyObject *lvl
        cdef PyObject *po
        cdef PyObject *so
        cdef const char *p
        cdef Py_ssize_t pn
        cdef int64_t price = 0, size = 0
        cdef int code
        cdef int64_t *k
        cdef int64_t *v
        name = "asks" if side else "bids"
        s.scr_n = 0
        if not PyList_Check(<PyObject *>levels):
            return self._bad(f"{name} must be a list, got {_short(levels)}")
        n = PyList_GET_SIZE(<PyObject *>levels)
        if n > s.scr_cap:
            cap = s.scr_cap
            while cap < n:
                cap *= 2
            k = <int64_t *>realloc(s.scr_keys, cap * sizeof(int64_t))
            if k == NULL:
                raise MemoryError()
            s.scr_keys = k
            v = <int64_t *>realloc(s.scr_sizes, cap * sizeof(int64_t))
            if v == NULL:
                raise MemoryError()
            s.scr_sizes = v
            s.scr_cap = cap
        for i in range(n):
            lvl = PyList_GET_ITEM(<PyObject *>levels, i)
            if not PyDict_Check(lvl):
                return self._bad(f"{name}[{i}] must be a dict, got {_short(<object>lvl)}")
            po = PyDict_GetItemWithError(lvl, <PyObject *>K_PRICE)
            if po == NULL:
                if PyErr_Occurred() != NULL:
                    return -1
                return self._bad(f"{name}[{i}] has no price: {_short(<object>lvl)}")
            so = PyDict_GetItemWithError(lvl, <PyObject *>K_SIZE)
            if so == NULL:
                if PyErr_Occurred() != NULL:
                    return -1
                return self._bad(f"{name}[{i}] has no size: {_short(<object>lvl)}")
            if not _ascii_span(po, &p, &pn):
                code = DEC_NOT_STR
            else:
                code = units_parse(p, pn, self.price_decimals, 0, &price)
                if code == DEC_OK and price == 0:
                    code = DEC_ZERO
            if code != DEC_OK:
                return self._bad(_dec_message(f"price in {name}[{i}]", <object>po, code,
                                              self.price_decimals))
            if not _ascii_span(so, &p, &pn):
                code = DEC_NOT_STR
            else:
                code = units_parse(p, pn, self.size_decimals, 0, &size)
            if code != DEC_OK:
                return self._bad(_dec_message(f"size in {name}[{i}]", <object>so, code,
                                              self.size_decimals))
            s.scr_keys[i] = _ask_key(price) if side else price
            s.scr_sizes[i] = size
        s.scr_n = n
        return 0

    cdef int _apply_scratch(self, bint snapshot, int64_t nonce, int64_t begin_nonce) except -1:
        """Apply the validated scratch of both sides under the nonce-chain rules."""
        cdef int64_t W = self.window
        cdef BookSide *s
        cdef Py_ssize_t i
        cdef int64_t mk
        cdef int side
        if snapshot:
            self.synced = False  # stays False if an allocation fails halfway
            for side in range(2):
                s = &self.sides[side]
                _side_clear(s, W)
                mk = 0
                for i in range(s.scr_n):
                    if s.scr_sizes[i] != 0 and s.scr_keys[i] > mk:
                        mk = s.scr_keys[i]
                if mk:
                    s.lo = _target_lo(mk, W)  # the window is empty: placing it is free
            for side in range(2):
                s = &self.sides[side]
                for i in range(s.scr_n):
                    _side_set(s, W, s.scr_keys[i], s.scr_sizes[i])
                _recentre(s, W)
            self.nonce = nonce
            self.synced = True
            self.has_snapshot = True
            self.snapshots += 1
            self.messages += 1
            self._trim_scratch()
            return BOOK_APPLIED
        if not self.has_snapshot:
            self.dropped_pre_snapshot += 1
            self._trim_scratch()
            return BOOK_DROPPED_PRE_SNAPSHOT
        if not self.synced:
            self.ignored_out_of_sync += 1
            self._trim_scratch()
            return BOOK_IGNORED_OUT_OF_SYNC
        if begin_nonce != self.nonce:
            self.synced = False
            self.gaps += 1
            self._trim_scratch()
            return BOOK_GAP
        self.synced = False  # stays False if an allocation fails halfway
        for side in range(2):
            s = &self.sides[side]
            for i in range(s.scr_n):
                _side_set(s, W, s.scr_keys[i], s.scr_sizes[i])
            _recentre(s, W)
        self.nonce = nonce
        self.synced = True
        self.messages += 1
        self._trim_scratch()
        return BOOK_APPLIED

    cpdef int apply_snapshot(self, object asks, object bids, object nonce) except -1:
        """Replace the whole book; sets the nonce and the in-sync state."""
        cdef int64_t n = 0
        self._read_nonce(nonce, "nonce", &n)
        self._fill_side(1, asks)
        self._fill_side(0, bids)
        return self._apply_scratch(True, n, 0)

    cpdef int apply_delta(self, object asks, object bids, object nonce,
                          object begin_nonce) except -1:
        """Apply absolute level sizes (0 deletes) if begin_nonce continues the chain."""
        cdef int64_t n = 0, b = 0
        self._read_nonce(nonce, "nonce", &n)
        self._read_nonce(begin_nonce, "begin_nonce", &b)
        self._fill_side(1, asks)
        self._fill_side(0, bids)
        return self._apply_scratch(False, n, b)

    cpdef int apply_message(self, object msg) except -1:
        """Apply one decoded WS message; NOT_BOOK if its type is not an order-book type."""
        cdef PyObject *t
        cdef PyObject *ob
        cdef PyObject *f
        cdef const char *p
        cdef Py_ssize_t n
        cdef bint snapshot
        cdef int64_t nonce = 0, begin = 0
        if not PyDict_Check(<PyObject *>msg):
            return self._bad(f"message must be a dict, got {_short(msg)}")
        t = PyDict_GetItemWithError(<PyObject *>msg, <PyObject *>K_TYPE)
        if t == NULL and PyErr_Occurred() != NULL:
            return -1
        if not _ascii_span(t, &p, &n):
            self.not_book += 1
            return BOOK_NOT_BOOK
        if _key_is(p, n, b"update/order_book", 17):
            snapshot = False
        elif _key_is(p, n, b"subscribed/order_book", 21):
            snapshot = True
        else:
            self.not_book += 1
            return BOOK_NOT_BOOK
        ob = PyDict_GetItemWithError(<PyObject *>msg, <PyObject *>K_ORDER_BOOK)
        if ob == NULL or not PyDict_Check(ob):
            if PyErr_Occurred() != NULL:
                return -1
            return self._bad("order_book missing or not an object")
        f = PyDict_GetItemWithError(ob, <PyObject *>K_ASKS)
        if f == NULL:
            if PyErr_Occurred() != NULL:
                return -1
            return self._bad("order_book.asks missing")
        self._fill_side(1, <object>f)
        f = PyDict_GetItemWithError(ob, <PyObject *>K_BIDS)
        if f == NULL:
            if PyErr_Occurred() != NULL:
                return -1
            return self._bad("order_book.bids missing")
        self._fill_side(0, <object>f)
        f = PyDict_GetItemWithError(ob, <PyObject *>K_NONCE)
        if f == NULL:
            if PyErr_Occurred() != NULL:
                return -1
            return self._bad("order_book.nonce missing")
        self._read_nonce(<object>f, "nonce", &nonce)
        if not snapshot:
            f = PyDict_GetItemWithError(ob, <PyObject *>K_BEGIN_NONCE)
            if f == NULL:
                if PyErr_Occurred() != NULL:
                    return -1
                return self._bad("order_book.begin_nonce missing")
            self._read_nonce(<object>f, "begin_nonce", &begin)
        return self._apply_scratch(snapshot, nonce, begin)

    cdef int _scan_frame(self, const char *p, Py_ssize_t size) except -2:
        """Fast path: a result code, or -1 when the frame needs the orjson path."""
        cdef const char *end = p + size
        cdef const char *ks
        cdef const char *ts = NULL
        cdef Py_ssize_t kn, tn = 0
        cdef bint have_type = False, have_ob = False
        cdef bint have_asks = False, have_bids = False, have_nonce = False, have_begin = False
        cdef int64_t nonce = 0, begin = 0
        cdef bint snapshot
        p = _ws(p, end)
        if p >= end or p[0] != b'{':
            return -1
        p = _ws(p + 1, end)
        if p < end and p[0] == b'}':
            p = _ws(p + 1, end)
            if p != end:
                return -1
            self.not_book += 1
            return BOOK_NOT_BOOK
        while True:
            if p >= end or p[0] != b'"':
                return -1
            p = _str(p, end, &ks, &kn)
            if p == NULL:
                return -1
            p = _ws(p, end)
            if p >= end or p[0] != b':':
                return -1
            p = _ws(p + 1, end)
            if _key_is(ks, kn, b"type", 4):
                if have_type or p >= end or p[0] != b'"':
                    return -1
                have_type = True
                p = _str(p, end, &ts, &tn)
            elif _key_is(ks, kn, b"order_book", 10):
                if have_ob or p >= end or p[0] != b'{':
                    return -1
                have_ob = True
                p = _ws(p + 1, end)
                if p < end and p[0] == b'}':
                    return -1
                while True:
                    if p >= end or p[0] != b'"':
                        return -1
                    p = _str(p, end, &ks, &kn)
                    if p == NULL:
                        return -1
                    p = _ws(p, end)
                    if p >= end or p[0] != b':':
                        return -1
                    p = _ws(p + 1, end)
                    if _key_is(ks, kn, b"asks", 4):
                        if have_asks or p >= end or p[0] != b'[':
                            return -1
                        have_asks = True
                        p = _levels(p, end, &self.sides[1], True,
                                    self.price_decimals, self.size_decimals)
                    elif _key_is(ks, kn, b"bids", 4):
                        if have_bids or p >= end or p[0] != b'[':
                            return -1
                        have_bids = True
                        p = _levels(p, end, &self.sides[0], False,
                                    self.price_decimals, self.size_decimals)
                    elif _key_is(ks, kn, b"nonce", 5):
                        if have_nonce:
                            return -1
                        have_nonce = True
                        p = _uint(p, end, &nonce)
                    elif _key_is(ks, kn, b"begin_nonce", 11):
                        if have_begin:
                            return -1
                        have_begin = True
                        p = _uint(p, end, &begin)
                    else:
                        p = _skip(p, end)
                    if p == NULL:
                        return -1
                    p = _ws(p, end)
                    if p >= end:
                        return -1
                    if p[0] == b',':
                        p = _ws(p + 1, end)
                        continue
                    if p[0] == b'}':
                        p += 1
                        break
                    return -1
            else:
                p = _skip(p, end)
            if p == NULL:
                return -1
            p = _ws(p, end)
            if p >= end:
                return -1
            if p[0] == b',':
                p = _ws(p + 1, end)
                continue
            if p[0] == b'}':
                p = _ws(p + 1, end)
                break
            return -1
        if p != end:
            return -1
        if not have_type:
            self.not_book += 1
            return BOOK_NOT_BOOK
        if _key_is(ts, tn, b"update/order_book", 17):
            snapshot = False
        elif _key_is(ts, tn, b"subscribed/order_book", 21):
            snapshot = True
        else:
            self.not_book += 1
            return BOOK_NOT_BOOK
        if not (have_ob and have_asks and have_bids and have_nonce):
            return -1
        if not snapshot and not have_begin:
            return -1
        return self._apply_scratch(snapshot, nonce, begin)

    cpdef int apply_frame(self, object data) except -1:
        """Apply one raw WS frame (bytes-like); same results as orjson.loads + apply_message."""
        cdef Py_buffer view
        cdef int rc
        if PyBytes_CheckExact(data):
            rc = self._scan_frame(PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data))
        else:
            PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
            try:
                rc = self._scan_frame(<const char *>view.buf, view.len)
            finally:
                PyBuffer_Release(&view)
        if rc >= 0:
            return rc
        # Anything the scanner does not fully understand takes the reference path.
        try:
            msg = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            return self._bad(f"invalid JSON frame {_short(bytes(data[:40]))}: {exc}")
        return self.apply_message(msg)

    def apply_levels(self, int side, prices, sizes) -> None:
        """Raw entry: apply pre-parsed int64 levels (absolute sizes, 0 deletes) to one side.

        No nonce check and no parsing. Everything is validated before anything is applied.
        """
        cdef const int64_t[:] pv
        cdef const int64_t[:] sv
        cdef Py_ssize_t i, n
        cdef BookSide *s
        cdef int64_t W = self.window
        if side != 0 and side != 1:
            raise BookError(f"side must be BID (0) or ASK (1), got {side}")
        try:
            pv = prices
            sv = sizes
        except (TypeError, ValueError, BufferError) as exc:
            raise BookError(f"prices and sizes must be 1-D int64 buffers: {exc}") from None
        n = pv.shape[0]
        if sv.shape[0] != n:
            raise BookError(f"prices and sizes differ in length: {n} != {sv.shape[0]}")
        for i in range(n):
            if pv[i] <= 0:
                raise BookError(f"invalid price {pv[i]} at index {i}: must be > 0")
            if sv[i] < 0:
                raise BookError(f"invalid size {sv[i]} at index {i}: must be >= 0")
        s = &self.sides[side]
        if side:
            for i in range(n):
                _side_set(s, W, _ask_key(pv[i]), sv[i])
        else:
            for i in range(n):
                _side_set(s, W, pv[i], sv[i])
        _recentre(s, W)

    @property
    def hot_bytes(self) -> int:
        """Bytes touched on the apply path: object, both windows and bitmaps, base scratch."""
        return (type(self).__basicsize__
                + 2 * (self.window * sizeof(int64_t) + (self.window >> 6) * sizeof(uint64_t))
                + 2 * 2 * SCR_BASE * sizeof(int64_t))

    def _check_invariants(self) -> None:
        """Verify the internal storage (testing aid): raises AssertionError on corruption."""
        cdef int side
        cdef BookSide *s
        cdef int64_t W = self.window, best, best_size
        cdef Py_ssize_t slot, cnt, i
        cdef bint occupied
        for side in range(2):
            s = &self.sides[side]
            assert 0 <= s.lo <= INT64_MAX - W + 1, "window origin out of range"
            cnt = 0
            best = 0
            best_size = 0
            for slot in range(W):
                occupied = (s.bits[slot >> 6] >> (slot & 63)) & 1
                assert occupied == (s.sizes[slot] != 0), f"bitmap/size mismatch at {slot}"
                if occupied:
                    assert s.sizes[slot] > 0, "negative size in window"
                    cnt += 1
                    best = s.lo + slot
                    best_size = s.sizes[slot]
            assert cnt == s.win_count, "window count mismatch"
            for i in range(s.ov_n):
                assert s.ov_sizes[i] > 0, "empty level in overflow"
                assert not (0 <= s.ov_keys[i] - s.lo < W), "overflow key inside the window"
                if i:
                    assert s.ov_keys[i - 1] < s.ov_keys[i], "overflow not strictly ascending"
            if s.ov_n and s.ov_keys[s.ov_n - 1] > best:
                best = s.ov_keys[s.ov_n - 1]
                best_size = s.ov_sizes[s.ov_n - 1]
            assert s.count == s.win_count + s.ov_n, "level count mismatch"
            assert s.best_key == best and s.best_size == best_size, "cached best is stale"
            if best:
                assert 0 <= best - s.lo < W, "best level outside the window"


cdef inline int _check_side(int side) except -1:
    if side != 0 and side != 1:
        raise ValueError(f"side must be BID (0) or ASK (1), got {side}")
    return 0
