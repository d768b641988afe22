"""One units module, compiled (``cython_src/mmfast/_core/units.pyx``; see docs/units.md).

Decimal strings <-> ints scaled by 10**decimals (ticks, lots, micro-USDC), exactly: no float, no
``Decimal``. The C parser behind ``parse_units`` is ``units_parse`` of ``units.pxd``, which the
book's hot path cimports. Pure-Python twin (test oracle): ``mmfast.reference.units``.
"""

from typing import Final

from mmfast.core.errors import UnitsError as UnitsError  # (MmfastError, ValueError)

MAX_DECIMALS: Final[int]  # 36: largest ``decimals`` of parse_units (beyond 18 only tiny values fit)
EXTRA_MODES: Final[tuple[str, ...]]  # ("reject", "zeros", "truncate", "ceil")

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
    """Decimal string -> int scaled by 10**decimals (0 <= decimals <= 36), exactly.

    Default (strict, the venue's wire format): ``[0-9]+(.[0-9]+)?``, at most ``decimals`` fraction
    digits, no sign, no whitespace, no exponent, result <= 2**63-1. ``sign``: leading sign
    characters allowed ("", "-", "+", "+-"; a negative result down to -(2**63-1)). ``extra``: fraction
    digits beyond ``decimals`` are refused ("reject"), accepted when all zeros ("zeros"), dropped
    ("truncate", toward zero) or round up ("ceil"). ``loose``: "5." and ".5" accepted. ``strip``:
    surrounding ASCII whitespace ignored. NaN, infinities and exponents are always refused.
    UnitsError (``invalid {what} {value!r}: {reason}``) otherwise; ValueError on bad options.
    """

def format_units(value: int, decimals: int) -> str:
    """Int in units of 10**-decimals -> decimal string with exactly ``decimals`` fraction digits
    (``format_units(-5, 4) == "-0.0005"``, ``format_units(42, 0) == "42"``); any size of int."""

def min_notional_from_venue(min_quote_amount: str, price_decimals: int, size_decimals: int) -> int:
    """Venue ``min_quote_amount`` string -> minimum notional in tick*lot units.

    Exact: ``ceil(amount * 10**(price_decimals + size_decimals))``; ``[0-9]*(.[0-9]*)?`` (not empty,
    not "."), no sign, whitespace or exponent. UnitsError (a ValueError) on a malformed string or a
    result above int64; ValueError on decimals outside [0, 18].
    """

def min_size_from_venue(min_base_amount: str, size_decimals: int) -> int:
    """Venue ``min_base_amount`` string -> minimum size in lots: ``ceil(amount * 10**size_decimals)``."""
