"""The compiled quote engine's public API (``mmfast._core.quote``, quote.pyi): the immutable,
keyword-only ``QuoteParams``, the ``QuoteEngine`` and the notional helpers.

Checked by mypy only (``make typecheck``), never run; see tests/typing in CONTRIBUTING.md.
"""

from __future__ import annotations

from typing import assert_type

import numpy as np
import numpy.typing as npt

from mmfast._core.book import OrderBook
from mmfast._core.quote import (
    MAX_LEVELS,
    MAX_LOTS,
    MODE_AS,
    MODE_FIXED,
    QuoteEngine,
    QuoteParams,
    min_notional_from_venue,
    min_size_from_venue,
    notional_at_least,
)


def constants() -> None:
    assert_type(MODE_FIXED, int)
    assert_type(MODE_AS, int)
    assert_type(MAX_LEVELS, int)
    assert_type(MAX_LOTS, int)


def helpers() -> None:
    assert_type(notional_at_least(301245, 15, 10_000), bool)
    assert_type(min_notional_from_venue("10", 2, 4), int)
    assert_type(min_size_from_venue("0.001", 4), int)

    min_notional_from_venue(10.0, 2, 4)  # type: ignore[arg-type]
    min_size_from_venue("0.001")  # type: ignore[call-arg]
    notional_at_least(301245, None, 10_000)  # type: ignore[arg-type]


def params() -> QuoteParams:
    p = QuoteParams(max_long_lots=1000, max_short_lots=1000, spread_ticks=3, n_levels=2)
    a_s = QuoteParams(max_long_lots=10, max_short_lots=10, mode=MODE_AS, gamma=0.2, kappa=1.5)
    assert_type(a_s, QuoteParams)
    assert_type(p.mode, int)
    assert_type(p.spread_ticks, int)
    assert_type(p.size_step_lots, int)
    assert_type(p.gamma, float)
    assert_type(p.as_spread_ticks, float)

    QuoteParams(1000, 1000)  # type: ignore[call-arg]
    QuoteParams(max_long_lots=1000)  # type: ignore[call-arg]
    QuoteParams(max_long_lots=10, max_short_lots=10, gamma="0.1")  # type: ignore[arg-type]
    QuoteParams(max_long_lots=10, max_short_lots=10, n_levels=None)  # type: ignore[arg-type]
    p.spread_ticks = 4  # type: ignore[misc]
    return p


def engine(p: QuoteParams, book: OrderBook) -> None:
    e = QuoteEngine(p, min_size_lots=10, min_notional=100_000, price_step=1, lot_step=1)
    assert_type(e.params, QuoteParams)
    assert_type(e.min_notional, int)
    assert_type(e.compute(301200, 301300, 0), int)
    assert_type(e.compute(301200, 301300, -50, ref_price=301250), int)
    assert_type(e.compute_from_book(book, 0), int)
    assert_type(e.n_bids, int)
    assert_type(e.bid_prices, npt.NDArray[np.int64])
    assert_type(e.ask_sizes[: e.n_asks], npt.NDArray[np.int64])
    assert_type(e.bids(), list[tuple[int, int]])
    assert_type(e.asks(), list[tuple[int, int]])
    assert_type(e.set_params(p), None)

    QuoteEngine(p, 10)  # type: ignore[call-arg]
    QuoteEngine(None)  # type: ignore[arg-type]
    e.compute(301200.5, 301300, 0)  # type: ignore[arg-type]
    e.compute_from_book(None, 0)  # type: ignore[arg-type]
    e.params = p  # type: ignore[misc]
    e.n_bids = 0  # type: ignore[misc]
