# cython: language_level=3
"""One units module: decimal strings <-> scaled ints, exactly (see docs/units.md).

Prices are ticks (price * 10**price_decimals), sizes lots (size * 10**size_decimals), money
micro-USDC (USDC * 10**6). Every conversion of mmfast between the venue's decimal strings and
those ints goes through here: the C parser ``units_parse`` (units.pxd, cimported by the book's hot
path) behind ``parse_units``, the formatter ``format_units``, and the venue-metadata minimums.
The pure-Python twin (test oracle) is mmfast.reference.units.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from libc.stdint cimport int64_t

# units.pxd (same name) is read first: units_parse, units_reason, the DEC_* and UNITS_* names.


cdef extern from "Python.h":
    int PyUnicode_IS_ASCII(object o)
    void *PyUnicode_DATA(object o)
    Py_ssize_t PyUnicode_GET_LENGTH(object o)


# One UnitsError for this module and its pure-Python twin (mmfast.reference.units).
from mmfast.core.errors import UnitsError


MAX_DECIMALS = 36   # scale bound of parse_units (results must fit int64: beyond 18, tiny values)
EXTRA_MODES = ("reject", "zeros", "truncate", "ceil")

cdef dict _EXTRA_FLAGS = {"reject": 0, "zeros": UNITS_EXTRA_ZEROS, "truncate": UNITS_EXTRA_TRUNC,
                          "ceil": UNITS_EXTRA_CEIL}
cdef dict _SIGN_FLAGS = {"": 0, "-": UNITS_MINUS, "+": UNITS_PLUS, "+-": UNITS_MINUS | UNITS_PLUS,
                         "-+": UNITS_MINUS | UNITS_PLUS}


cdef str _short(object value):
    """repr of an offending value, truncated so a huge input never lands in a message."""
    r = repr(value)
    if len(r) > 60:
        r = r[:57] + "..."
    return r


def parse_units(text, int decimals, *, str sign="", str extra="reject", bint loose=False,
                bint strip=False, str what="value"):
    """Decimal string (ASCII str or bytes) -> int scaled by 10**decimals, exactly.

    Default (strict, the venue's wire format): ``[0-9]+(.[0-9]+)?``, at most ``decimals``
    fraction digits, no sign, no whitespace, no exponent, result <= INT64_MAX. Options:
    ``sign`` the leading sign characters allowed ("", "-", "+", "+-"); ``extra`` what to do with
    fraction digits beyond ``decimals``: "reject", "zeros" (accept only zeros), "truncate"
    (toward zero) or "ceil" (round up); ``loose`` accepts "5." and ".5"; ``strip`` ignores
    surrounding ASCII whitespace. NaN, infinities and exponents are never accepted.
    Raises UnitsError ``invalid {what} {value!r}: {reason}``; ValueError for bad options.
    """
    cdef const char *p
    cdef Py_ssize_t n
    cdef int64_t v = 0
    cdef int code
    cdef int flags
    if decimals < 0 or decimals > MAX_DECIMALS:
        raise ValueError(f"decimals must be in 0..{MAX_DECIMALS}, got {decimals}")
    try:
        flags = _SIGN_FLAGS[sign] | _EXTRA_FLAGS[extra]
    except KeyError:
        raise ValueError(f"bad option: sign {sign!r} (one of '', '-', '+', '+-'), "
                         f"extra {extra!r} (one of {', '.join(EXTRA_MODES)})") from None
    if loose:
        flags |= UNITS_LOOSE
    if strip:
        flags |= UNITS_WS
    if isinstance(text, str) and PyUnicode_IS_ASCII(text):
        p = <const char *>PyUnicode_DATA(text)
        n = PyUnicode_GET_LENGTH(text)
    elif isinstance(text, bytes):
        p = PyBytes_AS_STRING(text)
        n = PyBytes_GET_SIZE(text)
    else:
        raise UnitsError(f"invalid {what} {_short(text)}: {units_reason(DEC_NOT_STR, decimals)}")
    code = units_parse(p, n, decimals, flags, &v)
    if code != DEC_OK:
        raise UnitsError(f"invalid {what} {_short(text)}: {units_reason(code, decimals)}")
    return v


def format_units(value, int decimals):
    """Int in units of 10**-decimals -> decimal string with exactly ``decimals`` fraction digits
    (``format_units(-5, 4) == "-0.0005"``; decimals 0: ``str(value)``). Any size of int."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"value must be an int, got {type(value).__name__}")
    if decimals < 0:
        raise ValueError(f"decimals must be >= 0, got {decimals}")
    cdef str digits = str(-value if value < 0 else value)
    cdef str sign = "-" if value < 0 else ""
    if decimals == 0:
        return sign + digits
    if len(digits) <= decimals:
        digits = "0" * (decimals + 1 - len(digits)) + digits
    return f"{sign}{digits[:-decimals]}.{digits[-decimals:]}"


# ---------------------------------------------------------------- venue metadata (cold path)

cdef int _check_decimals(str name, int value) except -1:
    if not 0 <= value <= 18:
        raise ValueError(f"{name} must be in [0, 18], got {value}")
    return 0


def min_notional_from_venue(str min_quote_amount not None, int price_decimals,
                            int size_decimals):
    """Venue ``min_quote_amount`` -> minimum notional in tick*lot units, rounded up (ceil).

    ``[0-9]*(.[0-9]*)?`` (not empty, not "."): no sign, whitespace or exponent. UnitsError on a
    malformed string or a result above int64; ValueError on decimals outside [0, 18].
    """
    _check_decimals("price_decimals", price_decimals)
    _check_decimals("size_decimals", size_decimals)
    return parse_units(min_quote_amount, price_decimals + size_decimals, extra="ceil",
                       loose=True, what="min_quote_amount")


def min_size_from_venue(str min_base_amount not None, int size_decimals):
    """Venue ``min_base_amount`` -> minimum size in lots, rounded up (same rules as above)."""
    _check_decimals("size_decimals", size_decimals)
    return parse_units(min_base_amount, size_decimals, extra="ceil", loose=True,
                       what="min_base_amount")
