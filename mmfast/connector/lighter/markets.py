"""Market metadata from ``orderBookDetails``, held as exact integers.

Everything is converted once, here, from the venue's decimal strings into integers in the units
mmfast computes in: prices in ticks (10^-price_decimals), sizes in lots (10^-size_decimals),
money in micro-USDC, fees in 1e-6 of notional, margin fractions in 1e-4. Human units
(``Decimal``) exist only at the edges, through ``price_of``/``size_of`` and ``ticks``/``lots``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from mmfast.core.errors import ExchangeError
from mmfast.core.units import USDC_DECIMALS, from_human, parse_units, rescale, to_decimal

__all__ = ["USDC_DECIMALS", "MarketInfo", "MetadataError", "parse_order_book_details"]

FEE_PERCENT_DECIMALS = 4  # "0.0196" (percent, 4 decimals) -> 196 (1e-6 of notional)


class MetadataError(ExchangeError, ValueError):
    """orderBookDetails is missing a field or carries a malformed value."""


@dataclass(frozen=True, slots=True)
class MarketInfo:
    """One perp market as the venue describes it."""

    market_id: int
    symbol: str
    status: str  # "active", "inactive", ...
    size_decimals: int
    price_decimals: int
    min_base_lots: int  # minimum order size, lots
    min_quote_micro: int  # minimum order notional, micro-USDC
    order_quote_limit_micro: int  # maximum order notional, micro-USDC
    taker_fee_1e6: int  # fee rate, 1e-6 of notional (196 = 0.0196%)
    maker_fee_1e6: int
    default_imf_1e4: int  # default initial margin fraction, 1e-4 (500 = 5%)
    min_imf_1e4: int
    maintenance_mf_1e4: int
    closeout_mf_1e4: int
    force_reduce_only: bool  # market_config: only position-reducing orders accepted
    hidden: bool  # market_config.hidden
    trading_hours: str  # market_config.trading_hours ("" = always)
    quote_multiplier: int
    mark_price_ticks: int | None  # when the venue reported one

    @property
    def is_active(self) -> bool:
        """Open for normal trading: status active and not force-reduce-only."""
        return self.status == "active" and not self.force_reduce_only

    @property
    def inactive_reason(self) -> str:
        """Why ``is_active`` is False ("" when it is True)."""
        if self.status != "active":
            return f"market {self.market_id} status {self.status}"
        if self.force_reduce_only:
            return f"market {self.market_id} force-reduce-only"
        return ""

    # --- edges: exact conversions ---------------------------------------------------------------
    def ticks(self, price: Decimal | str) -> int:
        """Human price -> ticks; ValueError if it is not a whole number of ticks."""
        return from_human(price, self.price_decimals, "price")

    def lots(self, size: Decimal | str) -> int:
        """Human size -> lots; ValueError if it is not a whole number of lots."""
        return from_human(size, self.size_decimals, "size")

    def price_of(self, ticks: int) -> Decimal:
        return to_decimal(ticks, self.price_decimals)

    def size_of(self, lots: int) -> Decimal:
        return to_decimal(lots, self.size_decimals)

    def notional_micro(self, price_ticks: int, size_lots: int) -> int:
        """price x size in micro-USDC, exact when size+price decimals <= 6 (floored otherwise)."""
        # Python ints: no overflow
        return rescale(
            price_ticks * size_lots, self.price_decimals + self.size_decimals, USDC_DECIMALS
        )


def _dec(obj: Mapping[str, Any], key: str, decimals: int) -> int:
    v = obj.get(key)
    if not isinstance(v, str):
        raise MetadataError(f"{key} must be a decimal string, got {v!r}")
    try:
        return parse_units(v, decimals)
    except ValueError as exc:
        # The venue may print more digits than the unit (e.g. "10.0000000"); accept exact ones,
        # and the forms a Decimal would ("+1", ".5", "5."); never a negative or padded value.
        try:
            units = parse_units(v, decimals, sign="+-", extra="zeros", loose=True)
        except ValueError:
            raise MetadataError(f"{key}: {exc}") from None
        if units < 0:
            raise MetadataError(f"{key}: {exc}") from None
        return units


def _int(obj: Mapping[str, Any], key: str) -> int:
    v = obj.get(key)
    if type(v) is not int:
        raise MetadataError(f"{key} must be an integer, got {v!r}")
    return v


def parse_market(d: Mapping[str, Any]) -> MarketInfo:
    """One entry of ``order_book_details``."""
    if not isinstance(d, Mapping):
        raise MetadataError(f"market entry must be an object, got {type(d).__name__}")
    sd, pd = _int(d, "size_decimals"), _int(d, "price_decimals")
    if not (0 <= sd <= 18 and 0 <= pd <= 18):
        raise MetadataError(f"decimals out of range: size {sd}, price {pd}")
    cfg = d.get("market_config")
    cfg = {} if cfg is None else cfg
    if not isinstance(cfg, Mapping):
        raise MetadataError("market_config must be an object")
    status = d.get("status")
    if not isinstance(status, str):
        raise MetadataError(f"status must be a string, got {status!r}")
    symbol = d.get("symbol")
    mark = d.get("mark_price")
    return MarketInfo(
        market_id=_int(d, "market_id"),
        symbol=symbol if isinstance(symbol, str) else "",
        status=status,
        size_decimals=sd,
        price_decimals=pd,
        min_base_lots=_dec(d, "min_base_amount", sd),
        min_quote_micro=_dec(d, "min_quote_amount", USDC_DECIMALS),
        order_quote_limit_micro=(
            _dec(d, "order_quote_limit", USDC_DECIMALS) if "order_quote_limit" in d else 0
        ),
        taker_fee_1e6=_dec(d, "taker_fee", FEE_PERCENT_DECIMALS),
        maker_fee_1e6=_dec(d, "maker_fee", FEE_PERCENT_DECIMALS),
        default_imf_1e4=_int(d, "default_initial_margin_fraction"),
        min_imf_1e4=_int(d, "min_initial_margin_fraction"),
        maintenance_mf_1e4=_int(d, "maintenance_margin_fraction"),
        closeout_mf_1e4=_int(d, "closeout_margin_fraction"),
        force_reduce_only=bool(cfg.get("force_reduce_only", False)),
        hidden=bool(cfg.get("hidden", False)),
        trading_hours=str(cfg.get("trading_hours") or ""),
        quote_multiplier=int(d.get("quote_multiplier") or 1),
        mark_price_ticks=_dec(d, "mark_price", pd) if isinstance(mark, str) else None,
    )


def parse_order_book_details(body: Mapping[str, Any]) -> dict[int, MarketInfo]:
    """The ``orderBookDetails`` response -> {market_id: MarketInfo} (perps only)."""
    if not isinstance(body, Mapping):
        raise MetadataError("orderBookDetails: body must be an object")
    items = body.get("order_book_details")
    if not isinstance(items, list):
        raise MetadataError("orderBookDetails: order_book_details must be a list")
    out: dict[int, MarketInfo] = {}
    for d in items:
        m = parse_market(d)
        out[m.market_id] = m
    return out
