"""Market metadata: orderBookDetails -> exact integers; edge conversions; config checks."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from mmfast.connector.lighter.config import LighterConfig
from mmfast.connector.lighter.markets import MetadataError, parse_order_book_details

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "lighter"


def details() -> dict[str, Any]:
    return json.loads((FIXTURES / "http_order_book_details.json").read_text())


def test_fixture_parsed_exactly() -> None:
    eth = parse_order_book_details(details())[0]
    assert (eth.symbol, eth.status, eth.size_decimals, eth.price_decimals) == (
        "ETH",
        "active",
        4,
        2,
    )
    assert eth.min_base_lots == 50  # "0.0050" with 4 decimals
    assert eth.min_quote_micro == 10_000_000  # "10.000000" USDC
    assert eth.order_quote_limit_micro == 281_474_976_710_655
    assert eth.taker_fee_1e6 == 0 and eth.maker_fee_1e6 == 0
    assert (eth.default_imf_1e4, eth.min_imf_1e4, eth.maintenance_mf_1e4, eth.closeout_mf_1e4) == (
        500,
        200,
        120,
        80,
    )
    assert eth.is_active and not eth.force_reduce_only and eth.inactive_reason == ""


def test_fees_status_and_force_reduce_only() -> None:
    body = details()
    d = body["order_book_details"][0]
    d["taker_fee"], d["maker_fee"] = "0.0196", "0.0028"
    d["market_config"]["force_reduce_only"] = True
    m = parse_order_book_details(body)[0]
    assert (m.taker_fee_1e6, m.maker_fee_1e6) == (196, 28)
    assert not m.is_active and m.inactive_reason == "market 0 force-reduce-only"
    d["status"] = "inactive"
    m = parse_order_book_details(body)[0]
    assert not m.is_active and "inactive" in m.inactive_reason


def test_edges_convert_exactly() -> None:
    eth = parse_order_book_details(details())[0]
    assert eth.ticks("4050") == 405_000 and eth.ticks(Decimal("4050.01")) == 405_001
    assert eth.lots("0.1") == 1000
    assert eth.price_of(405_001) == Decimal("4050.01")
    assert eth.size_of(1000) == Decimal("0.1000")
    assert eth.notional_micro(405_000, 1000) == 405_000_000  # $405 for 0.1 ETH at $4050
    with pytest.raises(ValueError):
        eth.ticks("4050.001")
    with pytest.raises(ValueError):
        eth.lots("NaN")
    big = eth.notional_micro(2**32 - 1, 2**48 - 1)  # venue maxima: beyond int64, still exact
    assert big == (2**32 - 1) * (2**48 - 1)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.pop("size_decimals"),
        lambda d: d.update(price_decimals="2"),
        lambda d: d.update(min_base_amount=0.005),
        lambda d: d.update(min_base_amount="-0.005"),
        lambda d: d.update(status=None),
        lambda d: d.update(market_config=[]),
        lambda d: d.update(default_initial_margin_fraction=True),
    ],
)
def test_malformed_metadata_refused(mutate: Any) -> None:
    body = copy.deepcopy(details())
    mutate(body["order_book_details"][0])
    with pytest.raises(MetadataError):
        parse_order_book_details(body)


def test_config_checks() -> None:
    ok = dict(
        rest_url="http://127.0.0.1:1",
        ws_url="ws://127.0.0.1:1/stream",
        account_index=5,
        api_key_index=4,
        markets=(0,),
    )
    cfg = LighterConfig(**ok)  # type: ignore[arg-type]
    assert cfg.api_base == "http://127.0.0.1:1/api/v1"
    bad: list[dict[str, Any]] = [
        {"rest_url": "ws://x"},
        {"ws_url": "http://x/stream"},
        {"account_index": 0},
        {"api_key_index": 255},
        {"markets": ()},
        {"markets": (1, 1)},
        {"pong_timeout_s": 5.0, "ping_idle_s": 2.0},
        {"token_lifetime_s": 9 * 3600},
        {"budget_max_fraction": 0.9},
        {"backoff_min_s": 40.0},
        {"max_connect_failures": 0},
    ]
    for b in bad:
        with pytest.raises(ValueError):
            LighterConfig(**{**ok, **b})  # type: ignore[arg-type]
