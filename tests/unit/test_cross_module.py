"""A cdef class used across two compiled modules: QuoteEngine.compute_from_book reads the
mmfast._core.book.OrderBook it cimports through C calls, and must agree with compute()."""

from __future__ import annotations

import random

import pytest

from mmfast._core.book import OrderBook
from mmfast._core.quote import QuoteEngine, QuoteParams
from mmfast.reference.quote import reference_quote


def _lvl(price: str, size: str) -> dict[str, str]:
    return {"price": price, "size": size}


def _book() -> OrderBook:
    # ETH-like market: price_decimals 2, size_decimals 4. Best bid 99.99, best ask 100.01.
    book = OrderBook(0, 2, 4)
    book.apply_snapshot(
        asks=[_lvl("100.01", "1.5"), _lvl("100.05", "2.0")],
        bids=[_lvl("99.99", "0.5"), _lvl("99.90", "3.0")],
        nonce=1,
    )
    return book


def _params() -> QuoteParams:
    return QuoteParams(
        spread_ticks=2,
        n_levels=5,
        size_lots=10,
        size_step_lots=5,
        skew_ticks=4,
        max_long_lots=200,
        max_short_lots=200,
    )


def test_compute_from_book_equals_compute_and_expected_ladder() -> None:
    book = _book()
    assert book.in_sync() and (book.best_bid(), book.best_ask()) == (9999, 10001)
    engine = QuoteEngine(_params())
    n = engine.compute_from_book(book, 100)
    from_book = (engine.bids(), engine.asks())
    # Mid 10000, long 100 of 200 with skew 4: shift -2 -> bid0 9996, ask0 10000.
    assert from_book == (
        [(9996, 10), (9995, 15), (9994, 20), (9993, 25), (9992, 30)],
        [(10000, 10), (10001, 15), (10002, 20), (10003, 25), (10004, 30)],
    )
    assert n == 10
    assert engine.compute(book.best_bid(), book.best_ask(), 100) == n
    assert (engine.bids(), engine.asks()) == from_book


def test_compute_from_book_passes_ref_price_and_clamps_to_the_book() -> None:
    book = _book()
    engine = QuoteEngine(_params())
    engine.compute_from_book(book, 0, 10100)  # reference far above: bids clamp below 10001
    got = (engine.bids(), engine.asks())
    assert got[0][0] == (10000, 10)
    engine.compute(9999, 10001, 0, 10100)
    assert (engine.bids(), engine.asks()) == got


def test_compute_from_book_follows_book_updates() -> None:
    book = _book()
    engine = QuoteEngine(_params())
    rng = random.Random(7)
    nonce = 1
    for _ in range(200):
        bid = rng.randrange(9000, 10000)
        ask = bid + rng.randrange(1, 40)
        nonce += 1
        book.apply_snapshot(
            asks=[_lvl(f"{ask / 100:.2f}", "1")],
            bids=[_lvl(f"{bid / 100:.2f}", "1")],
            nonce=nonce,
        )
        position = rng.randrange(-250, 250)
        n = engine.compute_from_book(book, position)
        got = (engine.bids(), engine.asks())
        assert (book.best_bid(), book.best_ask()) == (bid, ask)
        assert got == reference_quote(engine.params, bid, ask, position)
        assert engine.compute(bid, ask, position) == n
        assert (engine.bids(), engine.asks()) == got


def test_out_of_sync_book_produces_nothing() -> None:
    book = _book()
    engine = QuoteEngine(_params())
    assert engine.compute_from_book(book, 0) == 10
    book.invalidate()  # levels still there, but the book is no longer trusted
    assert not book.in_sync() and book.best_bid() == 9999
    assert engine.compute_from_book(book, 0) == 0
    assert (engine.n_bids, engine.n_asks, engine.bids(), engine.asks()) == (0, 0, [], [])
    # A fresh book (no snapshot yet) is out of sync too.
    assert engine.compute_from_book(OrderBook(1, 2, 4), 0) == 0


def test_compute_from_book_rejects_other_types() -> None:
    engine = QuoteEngine(_params())
    with pytest.raises(TypeError):
        engine.compute_from_book(object(), 0)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        engine.compute_from_book(None, 0)  # type: ignore[arg-type]
