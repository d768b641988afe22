# cython: language_level=3
# The exact decimal parser of mmfast (see docs/units.md), as inline C for every compiled module
# (book's hot path, mmfast._core.units, a compiled pipeline): cimport it, never copy it.
#
#     from mmfast._core.units cimport units_parse, DEC_OK
#     code = units_parse(s, n, decimals, 0, &value)      # 0 = strict venue rules
#
# No allocation, no Python objects, no exception: nogil, noexcept, a status code. With the flags
# a compile-time constant the C compiler drops the branches of the options not asked for, so the
# strict parse of the book's hot path costs what its private copy did.

from libc.stdint cimport INT64_MAX, int64_t, uint64_t


cdef extern from *:
    """
    #include <stdint.h>
    static const int64_t mmu_pow10[19] = {
        1LL, 10LL, 100LL, 1000LL, 10000LL, 100000LL, 1000000LL, 10000000LL, 100000000LL,
        1000000000LL, 10000000000LL, 100000000000LL, 1000000000000LL, 10000000000000LL,
        100000000000000LL, 1000000000000000LL, 10000000000000000LL, 100000000000000000LL,
        1000000000000000000LL};
    """
    const int64_t mmu_pow10[19]     # 10**0 .. 10**18 (10**18 is the largest int64 power)


cdef enum:
    UNITS_MAX_POW = 18              # largest power of ten in int64
    UNITS_MAX_DECIMALS = 36         # decimals units_parse takes (beyond 18 only tiny values fit)

# Status codes of units_parse (DEC_ZERO and DEC_NOT_STR are set by callers, never by the parser).
cdef enum:
    DEC_OK = 0
    DEC_EMPTY = 1                   # nothing (after whitespace, when UNITS_WS)
    DEC_SYNTAX = 2                  # not [sign]digits[.digits] as the flags allow
    DEC_DECIMALS = 3                # more fraction digits than decimals (and not allowed)
    DEC_OVERFLOW = 4                # |value| * 10**decimals above INT64_MAX
    DEC_ZERO = 5                    # a zero price (book)
    DEC_NOT_STR = 6                 # not an ASCII str / bytes (Python wrappers)

# Options of units_parse (bit flags). 0 = strict: [0-9]+(.[0-9]+)?, at most `dec` fraction digits.
cdef enum:
    UNITS_MINUS = 1                 # a leading '-' is allowed (negative result)
    UNITS_PLUS = 2                  # a leading '+' is allowed
    UNITS_LOOSE = 4                 # "5." and ".5" accepted (not "." alone)
    UNITS_WS = 8                    # leading/trailing ASCII whitespace ignored
    UNITS_EXTRA_ZEROS = 16          # extra fraction digits accepted when all are '0'
    UNITS_EXTRA_TRUNC = 32          # extra fraction digits dropped (rounds toward zero)
    UNITS_EXTRA_CEIL = 64           # extra fraction digits round up (ceiling; toward zero if < 0)
    _UNITS_EXTRA_ANY = 16 | 32 | 64


cdef inline bint units_is_ws(char c) noexcept nogil:
    return c == b' ' or c == b'\t' or c == b'\n' or c == b'\r' or c == b'\x0b' or c == b'\x0c'


cdef inline int units_parse(const char *s, Py_ssize_t n, int dec, int flags,
                            int64_t *out) noexcept nogil:
    """Parse a decimal string into value * 10**dec (0 <= dec <= UNITS_MAX_DECIMALS), exactly.

    Returns DEC_OK and sets *out, or a DEC_* code (syntax beats too-many-digits beats overflow).
    The magnitude must fit int64 (so the result is in [-INT64_MAX, INT64_MAX]).
    """
    cdef Py_ssize_t i = 0
    cdef Py_ssize_t start
    cdef int nf = 0                 # fraction digits kept (at most dec)
    cdef bint dropped = False       # a fraction digit beyond dec is not '0'
    cdef bint neg = False
    cdef bint overflow = False
    cdef uint64_t v = 0
    cdef uint64_t d
    if flags & UNITS_WS:
        while n > 0 and units_is_ws(s[n - 1]):
            n -= 1
        while i < n and units_is_ws(s[i]):
            i += 1
    if i >= n:
        return DEC_EMPTY
    if (flags & UNITS_MINUS) and s[i] == b'-':
        neg = True
        i += 1
    elif (flags & UNITS_PLUS) and s[i] == b'+':
        i += 1
    start = i
    while i < n:
        d = <unsigned char>s[i] - 48
        if d > 9:
            break
        # Keep accumulating after an overflow so syntax errors still win over range errors.
        if v > (<uint64_t>INT64_MAX - d) // 10:
            overflow = True
        else:
            v = v * 10 + d
        i += 1
    if i == start and not (flags & UNITS_LOOSE):
        return DEC_SYNTAX
    if i < n:
        if s[i] != b'.':
            return DEC_SYNTAX
        i += 1
        if i == n and (i - 1 == start or not (flags & UNITS_LOOSE)):
            return DEC_SYNTAX       # "." alone, or "5." in strict mode
        while i < n:
            d = <unsigned char>s[i] - 48
            if d > 9:
                return DEC_SYNTAX
            # Strict (no UNITS_EXTRA_*): every digit is kept and counted, as the check is after.
            if nf < dec or not (flags & _UNITS_EXTRA_ANY):
                if v > (<uint64_t>INT64_MAX - d) // 10:
                    overflow = True
                else:
                    v = v * 10 + d
                nf += 1
            elif d != 0:
                dropped = True
            i += 1
    elif i == start:
        return DEC_SYNTAX           # a sign alone
    if nf > dec:
        return DEC_DECIMALS         # strict mode only
    if dropped and not (flags & (UNITS_EXTRA_TRUNC | UNITS_EXTRA_CEIL)):
        return DEC_DECIMALS         # UNITS_EXTRA_ZEROS: only zeros may be dropped
    if overflow:
        return DEC_OVERFLOW
    if dec - nf > UNITS_MAX_POW:
        if v != 0:
            return DEC_OVERFLOW
    else:
        d = <uint64_t>mmu_pow10[dec - nf]
        if d != 1:
            if v > <uint64_t>INT64_MAX // d:
                return DEC_OVERFLOW
            v *= d
    if dropped and (flags & UNITS_EXTRA_CEIL) and not neg:
        if v == <uint64_t>INT64_MAX:
            return DEC_OVERFLOW
        v += 1
    out[0] = -<int64_t>v if neg else <int64_t>v
    return DEC_OK


cdef inline str units_reason(int code, int dec):
    """Why units_parse refused (the text of the error messages); dec < 0: no digit count."""
    if code == DEC_EMPTY:
        return "empty"
    if code == DEC_SYNTAX:
        return "not a plain decimal (digits with an optional '.' and fraction)"
    if code == DEC_DECIMALS:
        if dec < 0:
            return "more fraction digits than the market's decimals"
        return f"more than {dec} fraction digits"
    if code == DEC_OVERFLOW:
        return "out of int64 range"
    if code == DEC_ZERO:
        return "zero price"
    if code == DEC_NOT_STR:
        return "not an ASCII string"
    return ""
