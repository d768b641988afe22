"""Exact conversions between integer ticks/lots and the venue's decimal strings."""

from __future__ import annotations

USDC_DECIMALS = 6  # collateral, fees and PnL are kept in micro-USDC


def fmt_fixed(value: int, decimals: int) -> str:
    """Integer in units of 10^-decimals -> decimal string with exactly `decimals` places."""
    if decimals == 0:
        return str(value)
    sign = "-" if value < 0 else ""
    v = -value if value < 0 else value
    whole, frac = divmod(v, 10**decimals)
    return f"{sign}{whole}.{frac:0{decimals}d}"


def parse_fixed(text: str, decimals: int) -> int:
    """Decimal string -> integer in units of 10^-decimals; raises ValueError if not exact."""
    s = text.strip()
    neg = s.startswith("-")
    if neg or s.startswith("+"):
        s = s[1:]
    whole, _, frac = s.partition(".")
    if not whole.isdigit() or (frac and not frac.isdigit()):
        raise ValueError(f"not a decimal: {text!r}")
    if len(frac) > decimals:
        if frac[decimals:].strip("0"):
            raise ValueError(f"{text!r} has more than {decimals} decimals")
        frac = frac[:decimals]
    value = int(whole) * 10**decimals + int(frac.ljust(decimals, "0") or "0")
    return -value if neg else value


def div_round(num: int, den: int) -> int:
    """Integer division rounded half away from zero."""
    if den < 0:
        num, den = -num, -den
    q, r = divmod(abs(num), den)
    if 2 * r >= den:
        q += 1
    return q if num >= 0 else -q


def ceil_div(num: int, den: int) -> int:
    """Ceiling division for a positive denominator."""
    return -((-num) // den)
