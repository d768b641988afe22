"""mmfast.sim.units, clock and truth request windows."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mmfast.sim.clock import ManualClock
from mmfast.sim.config import SimConfig
from mmfast.sim.engine import Exchange
from mmfast.sim.truth import RequestLog, Truth
from mmfast.sim.units import ceil_div, div_round, fmt_fixed, parse_fixed


@pytest.mark.parametrize(
    ("value", "decimals", "text"),
    [
        (0, 2, "0.00"),
        (5, 4, "0.0005"),
        (235274, 2, "2352.74"),
        (-76_0264, 4, "-76.0264"),
        (10_000_000, 6, "10.000000"),
        (42, 0, "42"),
    ],
)
def test_fmt_fixed_matches_the_venue(value: int, decimals: int, text: str) -> None:
    assert fmt_fixed(value, decimals) == text
    assert parse_fixed(text, decimals) == value


def test_parse_fixed_refuses_inexact_and_junk() -> None:
    with pytest.raises(ValueError):
        parse_fixed("1.005", 2)
    with pytest.raises(ValueError):
        parse_fixed("1e3", 2)
    assert parse_fixed("1.500", 2) == 150


@settings(derandomize=True, max_examples=200, deadline=None)
@given(st.integers(-(2**70), 2**70), st.integers(0, 12))
def test_fmt_parse_round_trip(value: int, decimals: int) -> None:
    text = fmt_fixed(value, decimals)  # any int formats; parsing is int64-bounded (units)
    if abs(value) <= 2**63 - 1:
        assert parse_fixed(text, decimals) == value
    else:
        with pytest.raises(ValueError, match="int64"):
            parse_fixed(text, decimals)


def test_rounding_helpers() -> None:
    assert [div_round(n, 4) for n in (1, 2, 3, -2, -3)] == [0, 1, 1, -1, -1]
    assert ceil_div(7, 2) == 4 and ceil_div(8, 2) == 4 and ceil_div(-7, 2) == -3


def test_manual_clock_moves_both_clocks() -> None:
    c = ManualClock(wall_ms=1_000, monotonic_ns=5)
    c.advance_ms(3)
    assert (c.wall_ms(), c.monotonic_ns()) == (1_003, 3_000_005)
    c.advance_ns(1_500_000)
    assert c.wall_ms() == 1_004
    with pytest.raises(ValueError):
        c.advance_ms(-1)


def test_request_counts_per_window() -> None:
    clock = ManualClock()
    log = RequestLog(clock)
    truth = Truth(Exchange(SimConfig(), clock), log)
    log.record("GET /api/v1/nextNonce")
    clock.advance_ms(30_000)
    log.record("GET /api/v1/nextNonce")
    log.record("POST /api/v1/sendTx")
    assert truth.request_counts() == {"GET /api/v1/nextNonce": 2, "POST /api/v1/sendTx": 1}
    clock.advance_ms(40_000)
    assert truth.request_counts(window_ms=60_000) == {
        "GET /api/v1/nextNonce": 1,
        "POST /api/v1/sendTx": 1,
    }
    assert truth.request_counts(window_ms=10_000) == {}
