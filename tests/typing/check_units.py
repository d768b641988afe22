"""Units, compiled and at the edges: ``mmfast._core.units`` (units.pyi) and the Python layer
``mmfast.core.units`` that re-exports it (``Decimal``, float and rescaling helpers).

Checked by mypy only (``make typecheck``), never run; see tests/typing in CONTRIBUTING.md.
"""

from __future__ import annotations

from decimal import Decimal
from typing import assert_type

from mmfast._core import units as cunits
from mmfast.core.units import (
    MAX_DECIMALS,
    USDC_DECIMALS,
    UnitsError,
    format_units,
    from_human,
    min_notional_from_venue,
    parse_units,
    rescale,
    to_decimal,
    to_float,
)


def compiled() -> None:
    assert_type(MAX_DECIMALS, int)
    assert_type(cunits.EXTRA_MODES, tuple[str, ...])
    assert_type(parse_units("1.25", 4), int)
    assert_type(parse_units(b"-1.25", 4, sign="-", extra="truncate", what="price"), int)
    assert_type(parse_units(" 5. ", 2, loose=True, strip=True), int)
    assert_type(format_units(-5, 4), str)
    assert_type(min_notional_from_venue("10", 2, 4), int)
    assert_type(cunits.min_size_from_venue("0.001", 4), int)

    parse_units(1.25, 4)  # type: ignore[arg-type]
    parse_units(None, 4)  # type: ignore[arg-type]
    parse_units("1.25", 4, "-")  # type: ignore[call-arg]
    parse_units("1.25", 4, strip="yes")  # type: ignore[arg-type]
    format_units("5", 4)  # type: ignore[arg-type]
    formatted: int = format_units(5, 4)  # type: ignore[assignment]
    del formatted


def edges() -> None:
    assert_type(USDC_DECIMALS, int)
    assert_type(to_decimal(1_250_000, 6), Decimal)
    assert_type(to_float(1_250_000, 6), float)
    assert_type(rescale(125, 2, 6), int)
    assert_type(from_human(Decimal("1.25"), 6), int)
    assert_type(from_human("1.25", 6, what="amount"), int)
    assert_type(from_human(125, 2), int)
    try:
        from_human("nan", 6)
    except UnitsError as exc:
        assert_type(exc, UnitsError)
        err: ValueError = exc  # a ValueError too
        del err

    from_human(1.25, 6)  # type: ignore[arg-type]
    to_decimal(Decimal("1.25"), 6)  # type: ignore[arg-type]
    rescale(125, 2)  # type: ignore[call-arg]
