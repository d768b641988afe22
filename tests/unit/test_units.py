"""mmfast._core.units (compiled) against mmfast.reference.units (pure Python): parse, format,
venue minimums, every option and rejection rule (docs/units.md)."""

from __future__ import annotations

from decimal import Context, Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mmfast._core.units as cu
import mmfast.reference.units as ru
from mmfast.core import units as pu
from mmfast.core.errors import MmfastError, UnitsError

INT64_MAX = 2**63 - 1
SIGNS = ("", "-", "+", "+-")
EXTRAS = ("reject", "zeros", "truncate", "ceil")
_EXACT = Context(prec=400)  # Decimal arithmetic that never rounds here


def outcome(fn: Any, *args: Any, **kw: Any) -> tuple[str, object]:
    try:
        return ("ok", fn(*args, **kw))
    except UnitsError as exc:
        return ("units", str(exc))
    except (ValueError, TypeError) as exc:
        return (type(exc).__name__, str(exc))


def same(*args: Any, **kw: Any) -> tuple[str, object]:
    a = outcome(cu.parse_units, *args, **kw)
    b = outcome(ru.parse_units, *args, **kw)
    assert a == b, (args, kw, a, b)
    return a


# ---------------------------------------------------------------- strict rules (the wire format)


@pytest.mark.parametrize(
    ("text", "decimals", "value"),
    [
        ("0", 0, 0),
        ("4050.01", 2, 405_001),
        ("0.0050", 4, 50),
        ("7", 4, 70_000),
        (b"1.5", 1, 15),
        ("9223372036854775807", 0, INT64_MAX),
        ("9.223372036854775807", 18, INT64_MAX),
        ("000012.30", 2, 1230),
        ("0.000000000000000001", 18, 1),
    ],
)
def test_strict_accepts(text: str | bytes, decimals: int, value: int) -> None:
    assert same(text, decimals) == ("ok", value)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        (b"", "empty"),
        ("-1", "plain decimal"),
        ("+1", "plain decimal"),
        ("NaN", "plain decimal"),
        ("nan", "plain decimal"),
        ("inf", "plain decimal"),
        ("Infinity", "plain decimal"),
        ("1.234", "more than 2 fraction digits"),
        ("1.230", "more than 2 fraction digits"),
        ("92233720368547758.08", "int64"),
        ("99999999999999999999", "int64"),
        (" 1", "plain decimal"),
        ("1 ", "plain decimal"),
        ("1\n", "plain decimal"),
        ("1e3", "plain decimal"),
        ("1E-2", "plain decimal"),
        (".5", "plain decimal"),
        ("5.", "plain decimal"),
        (".", "plain decimal"),
        ("1.2.3", "plain decimal"),
        ("1_000", "plain decimal"),
        ("\u0661", "ASCII"),
        ("1,5", "plain decimal"),
        (b"\xff1", "plain decimal"),
        (None, "ASCII"),
        (1.5, "ASCII"),
        ("1.234x", "plain decimal"),  # a syntax error wins over too many digits
        ("99999999999999999999.999", "more than 2"),  # too many digits win over overflow
    ],
)
def test_strict_rejects(text: Any, reason: str) -> None:
    kind, msg = same(text, 2)
    assert kind == "units" and reason in str(msg), msg
    with pytest.raises(UnitsError) as info:
        cu.parse_units(text, 2, what="price")
    assert isinstance(info.value, ValueError) and isinstance(info.value, MmfastError)
    assert str(info.value).startswith("invalid price ")


def test_options_and_argument_errors() -> None:
    assert same("-1.5", 2, sign="-") == ("ok", -150)
    assert same("+1.5", 2, sign="-")[0] == "units"
    assert same("+1.5", 2, sign="+") == ("ok", 150)
    assert same("-1.5", 2, sign="+")[0] == "units"
    assert same("-", 2, sign="+-")[0] == "units"
    assert same("-.", 2, sign="+-", loose=True)[0] == "units"
    assert same("--1", 2, sign="+-")[0] == "units" and same("-+1", 2, sign="+-")[0] == "units"
    assert same("-9223372036854775807", 0, sign="-") == ("ok", -INT64_MAX)
    assert same("-9223372036854775808", 0, sign="-")[0] == "units"
    assert same(".5", 1, loose=True) == ("ok", 5) and same("5.", 1, loose=True) == ("ok", 50)
    assert same(".", 1, loose=True)[0] == "units"
    assert same(" \t1.5\n", 2, strip=True) == ("ok", 150)
    assert same("  ", 2, strip=True)[0] == "units"
    assert same("1.500", 2, extra="zeros") == ("ok", 150)
    assert same("1.501", 2, extra="zeros")[0] == "units"
    assert same("1.239", 2, extra="truncate") == ("ok", 123)
    assert same("-1.239", 2, sign="-", extra="truncate") == ("ok", -123)
    assert same("1.231", 2, extra="ceil") == ("ok", 124)
    assert same("1.230", 2, extra="ceil") == ("ok", 123)
    assert same("-1.239", 2, sign="-", extra="ceil") == ("ok", -123)  # ceiling: toward zero
    assert same("9223372036854775807.1", 0, extra="ceil")[0] == "units"
    assert same("0", 36) == ("ok", 0) and same("0.3", 36)[0] == "units"
    assert same("0." + "0" * 35 + "7", 36) == ("ok", 7)
    for bad in ({"sign": "x"}, {"extra": "round"}):
        assert same("1", 2, **bad)[0] == "ValueError"
    assert same("1", -1)[0] == "ValueError" and same("1", 37)[0] == "ValueError"


# ---------------------------------------------------------------- properties


@settings(derandomize=True, max_examples=400, deadline=None)
@given(st.integers(-INT64_MAX, INT64_MAX), st.integers(0, 18))
def test_format_parse_round_trip(value: int, decimals: int) -> None:
    text = cu.format_units(value, decimals)
    assert text == ru.format_units(value, decimals)
    assert Decimal(text) == Decimal(value).scaleb(-decimals)
    assert cu.parse_units(text, decimals, sign="-") == value
    assert ru.parse_units(text, decimals, sign="-") == value
    if value >= 0:
        assert cu.parse_units(text, decimals) == value


@settings(derandomize=True, max_examples=100, deadline=None)
@given(st.integers(-(2**80), 2**80), st.integers(0, 30))
def test_format_any_int(value: int, decimals: int) -> None:
    assert cu.format_units(value, decimals) == ru.format_units(value, decimals)
    assert Decimal(cu.format_units(value, decimals)) == Decimal(value).scaleb(-decimals)


_CHARS = st.sampled_from([*"0123456789.-+ eE_xn\t", "00", "9999999999"])


@settings(derandomize=True, max_examples=1500, deadline=None)
@given(
    st.lists(_CHARS, max_size=8).map("".join),
    st.integers(0, 20),
    st.sampled_from(SIGNS),
    st.sampled_from(EXTRAS),
    st.booleans(),
    st.booleans(),
)
def test_compiled_equals_reference_on_junk(
    text: str, decimals: int, sign: str, extra: str, loose: bool, strip: bool
) -> None:
    same(text, decimals, sign=sign, extra=extra, loose=loose, strip=strip)
    same(text.encode(), decimals, sign=sign, extra=extra, loose=loose, strip=strip)


@settings(derandomize=True, max_examples=1500, deadline=None)
@given(
    st.decimals(allow_nan=False, allow_infinity=False), st.integers(0, 18), st.sampled_from(EXTRAS)
)
def test_decimal_values_match_decimal_arithmetic(d: Decimal, decimals: int, extra: str) -> None:
    text = format(d, "f")
    kind, got = same(text, decimals, sign="+-", extra=extra, loose=True)
    scaled = d.scaleb(decimals, context=_EXACT)
    whole = scaled == scaled.to_integral_value(context=_EXACT)
    if extra == "truncate":
        want = int(scaled.to_integral_value(rounding="ROUND_DOWN", context=_EXACT))
    elif extra == "ceil":
        want = int(scaled.to_integral_value(rounding="ROUND_CEILING", context=_EXACT))
    else:
        want = int(scaled) if whole else None
    digits = -d.as_tuple().exponent if isinstance(d.as_tuple().exponent, int) else 0
    too_many = extra == "reject" and max(digits, 0) > decimals
    if too_many or want is None or abs(want) > INT64_MAX:
        assert kind == "units"
    else:
        assert (kind, got) == ("ok", want)


# ---------------------------------------------------------------- venue metadata minimums


def test_venue_minimums() -> None:
    for mod in (cu, ru):
        assert mod.min_notional_from_venue("10.000000", 2, 4) == 10_000_000
        assert mod.min_size_from_venue("0.0050", 4) == 50
        assert mod.min_size_from_venue("0.00005", 4) == 1  # rounded up
        assert mod.min_notional_from_venue(".5", 1, 0) == 5
        assert mod.min_notional_from_venue("5.", 1, 0) == 50
        assert mod.min_notional_from_venue("0", 18, 18) == 0
        for bad in ("", ".", "-1", "1e3", " 1", "+1", "nan"):
            with pytest.raises(UnitsError, match="min_quote_amount"):
                mod.min_notional_from_venue(bad, 2, 4)
            with pytest.raises(UnitsError, match="min_base_amount"):
                mod.min_size_from_venue(bad, 4)
        with pytest.raises(ValueError, match="price_decimals"):
            mod.min_notional_from_venue("1", 19, 0)
        with pytest.raises(UnitsError, match="int64"):
            mod.min_notional_from_venue("10", 18, 18)
    import mmfast._core.quote as q
    import mmfast.reference.quote as rq

    assert q.min_notional_from_venue is cu.min_notional_from_venue  # moved, re-exported
    assert rq.min_size_from_venue is ru.min_size_from_venue


@settings(derandomize=True, max_examples=300, deadline=None)
@given(
    st.decimals(min_value=0, max_value=10**6, allow_nan=False, places=8),
    st.integers(0, 9),
    st.integers(0, 9),
)
def test_venue_minimums_are_the_ceiling(d: Decimal, pd: int, sd: int) -> None:
    text = format(d, "f")
    want = int(
        d.scaleb(pd + sd, context=_EXACT).to_integral_value(
            rounding="ROUND_CEILING", context=_EXACT
        )
    )
    if want > INT64_MAX:
        for mod in (cu, ru):
            with pytest.raises(UnitsError, match="int64"):
                mod.min_notional_from_venue(text, pd, sd)
    else:
        assert cu.min_notional_from_venue(text, pd, sd) == want
        assert ru.min_notional_from_venue(text, pd, sd) == want


# ---------------------------------------------------------------- the Python layer


def test_python_layer_helpers() -> None:
    assert pu.to_decimal(405_001, 2) == Decimal("4050.01") and str(pu.to_decimal(0, 4)) == "0.0000"
    assert pu.to_float(405_001, 2) == 4050.01
    assert pu.rescale(405_000 * 1000, 6, 6) == 405_000_000 and pu.rescale(15, 1, 0) == 1
    assert pu.rescale(-15, 1, 0) == -2 and pu.rescale(3, 0, 2) == 300
    assert pu.from_human(Decimal("1E+3"), 2) == 100_000 and pu.from_human("-1.50", 1) == -15
    assert pu.from_human(7, 2) == 700
    for bad in (Decimal("NaN"), Decimal("-Infinity"), "NaN", "1.005", "1e3", 1.5):
        with pytest.raises(ValueError):
            pu.from_human(bad, 2)  # type: ignore[arg-type]


def test_stub_lists_the_compiled_names() -> None:
    import ast
    from pathlib import Path

    stub = Path(cu.__file__).with_name("units.pyi")
    if not stub.exists():
        pytest.skip("units.pyi not beside the extension")
    names = set()
    for node in ast.parse(stub.read_text()).body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.ImportFrom):
            names.update(a.asname or a.name for a in node.names)
    public = {n for n in dir(cu) if not n.startswith("_")}
    assert public <= names | {"Final"}, public - names
    for n in names - {"Final"}:
        assert hasattr(cu, n), n
