"""Pure-Python twin of ``mmfast._core.units`` (the test oracle; see docs/units.md).

Same rules, options, error messages and results as the compiled module, written plainly with a
regular expression and Python ints, so the property tests can hold the two equal. The other
reference modules (book, quote) convert through here; they carry no parser of their own.
"""

from __future__ import annotations

import re

from mmfast.core.errors import UnitsError  # the compiled module raises the same class

INT64_MAX = 2**63 - 1
MAX_DECIMALS = 36
EXTRA_MODES = ("reject", "zeros", "truncate", "ceil")
_SIGNS = {"": "", "-": "-", "+": "+", "+-": "+-", "-+": "+-"}
_WS = " \t\n\r\x0b\x0c"
_SYNTAX = "not a plain decimal (digits with an optional '.' and fraction)"
_NUMBER = re.compile(r"([+-]?)([0-9]*)(?:(\.)([0-9]*))?")


def _short(value: object) -> str:
    r = repr(value)
    return r if len(r) <= 60 else r[:57] + "..."


def parse_units(
    text: str | bytes,
    decimals: int,
    *,
    sign: str = "",
    extra: str = "reject",
    loose: bool = False,
    strip: bool = False,
    what: str = "value",
) -> int:
    """Decimal string -> int scaled by 10**decimals; see ``mmfast._core.units.parse_units``."""
    if not 0 <= decimals <= MAX_DECIMALS:
        raise ValueError(f"decimals must be in 0..{MAX_DECIMALS}, got {decimals}")
    if sign not in _SIGNS or extra not in EXTRA_MODES:
        raise ValueError(
            f"bad option: sign {sign!r} (one of '', '-', '+', '+-'), "
            f"extra {extra!r} (one of {', '.join(EXTRA_MODES)})"
        )

    def bad(reason: str) -> UnitsError:
        return UnitsError(f"invalid {what} {_short(text)}: {reason}")

    if isinstance(text, bytes):
        s = text.decode("latin-1")  # one char per byte; non-ASCII bytes fail the syntax below
    elif isinstance(text, str) and text.isascii():
        s = text
    else:
        raise bad("not an ASCII string")
    if strip:
        s = s.strip(_WS)
    if not s:
        raise bad("empty")
    m = _NUMBER.fullmatch(s)
    if m is None or (m[1] and m[1] not in _SIGNS[sign]):
        raise bad(_SYNTAX)
    whole, dot, frac = m[2], m[3], m[4] or ""
    if not (whole or frac) or (not loose and (not whole or (dot and not frac))):
        raise bad(_SYNTAX)  # "." / a sign alone; "5." and ".5" only when loose
    kept, dropped = frac[:decimals], frac[decimals:]
    if dropped and (extra == "reject" or (extra == "zeros" and dropped.strip("0"))):
        raise bad(f"more than {decimals} fraction digits")
    value = int(whole + kept or "0") * int(10 ** (decimals - len(kept)))
    neg = m[1] == "-"
    if extra == "ceil" and not neg and dropped.strip("0"):
        value += 1
    if value > INT64_MAX:
        raise bad("out of int64 range")
    return -value if neg else value


def format_units(value: int, decimals: int) -> str:
    """Int in units of 10**-decimals -> decimal string with exactly ``decimals`` fraction digits."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"value must be an int, got {type(value).__name__}")
    if decimals < 0:
        raise ValueError(f"decimals must be >= 0, got {decimals}")
    if decimals == 0:
        return str(value)
    whole, frac = divmod(abs(value), 10**decimals)
    return f"{'-' if value < 0 else ''}{whole}.{frac:0{decimals}d}"


def _check_decimals(v: int, name: str) -> None:
    if not 0 <= v <= 18:
        raise ValueError(f"{name} must be in [0, 18], got {v}")


def min_notional_from_venue(min_quote_amount: str, price_decimals: int, size_decimals: int) -> int:
    """Venue ``min_quote_amount`` -> minimum notional in tick*lot units, rounded up."""
    _check_decimals(price_decimals, "price_decimals")
    _check_decimals(size_decimals, "size_decimals")
    return parse_units(
        min_quote_amount,
        price_decimals + size_decimals,
        extra="ceil",
        loose=True,
        what="min_quote_amount",
    )


def min_size_from_venue(min_base_amount: str, size_decimals: int) -> int:
    """Venue ``min_base_amount`` -> minimum size in lots, rounded up."""
    _check_decimals(size_decimals, "size_decimals")
    return parse_units(
        min_base_amount, size_decimals, extra="ceil", loose=True, what="min_base_amount"
    )
