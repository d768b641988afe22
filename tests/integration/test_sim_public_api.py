"""The endpoints added for clients beyond the SDK: shapes (fixtures, lighter-sdk models), bad
input, the funded account's L1 address, and skip-nonce txs."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from lighter.models.account_limits import AccountLimits
from lighter.models.asset_details import AssetDetails
from lighter.models.candles import Candles
from lighter.models.exchange_stats import ExchangeStats
from lighter.models.funding_rates import FundingRates
from lighter.models.fundings import Fundings
from lighter.models.sub_accounts import SubAccounts
from test_sim_conformance import (
    KEY,
    MAIN,
    assert_decimals,
    assert_shape,
    fixture,
    order_info,
    populate,
    token,
    wall_ms,
)

from mmfast.sim.config import SimConfig
from mmfast.sim.public_api import throwaway_l1_key
from mmfast.sim.thread import SimThread


@pytest.fixture
def sim_config() -> SimConfig:
    return SimConfig(verify_signatures=False, seed=7, speed_bumps=False, tier="premium")


async def _get(s: aiohttp.ClientSession, url: str, **params: Any) -> tuple[int, Any]:
    headers = {"authorization": params.pop("auth")} if "auth" in params else None
    async with s.get(url, params=params, headers=headers) as r:
        return r.status, await r.json()


def test_public_endpoints_shapes_and_errors(sim: SimThread, run) -> None:
    populate(sim)  # one trade on market 0
    base = sim.rest_url + "/api/v1/"
    l1 = sim.call(lambda s: s.l1_address)
    window = {"start_timestamp": 0, "end_timestamp": wall_ms(sim) + 60_000, "count_back": 0}

    async def main() -> dict[str, Any]:
        async with aiohttp.ClientSession() as s:
            out = {}
            for name, ep, params in (
                ("candles", "candles", {"market_id": 0, "resolution": "1m", **window}),
                ("fundings", "fundings", {"market_id": 0, "resolution": "1h", **window}),
                ("rates", "funding-rates", {}),
                ("stats", "exchangeStats", {}),
                ("assets", "assetDetails", {}),
                ("subs", "accountsByL1Address", {"l1_address": l1.lower()}),
                ("limits", "accountLimits", {"account_index": MAIN, "auth": token(sim, MAIN)}),
                ("bad_res", "candles", {"market_id": 0, "resolution": "2m", **window}),
                ("bad_market", "candles", {"market_id": 77, "resolution": "1m", **window}),
                (
                    "bad_window",
                    "fundings",
                    {
                        "market_id": 0,
                        "resolution": "1h",
                        "start_timestamp": 5,
                        "end_timestamp": 1,
                        "count_back": 0,
                    },
                ),
                ("missing", "candles", {"market_id": 0, "resolution": "1m"}),
                ("unknown_l1", "accountsByL1Address", {"l1_address": "0x" + "12" * 20}),
                ("no_auth", "accountLimits", {"account_index": MAIN}),
            ):
                out[name] = await _get(s, base + ep, **params)
            return out

    r = run(main())
    for name in ("candles", "fundings", "rates", "stats", "assets", "subs", "limits"):
        assert r[name][0] == 200, (name, r[name])
    candles = r["candles"][1]
    assert_shape(fixture("http_candles.json"), candles)
    assert Candles.from_dict(candles).c[0].o == 3001.0  # the populated trade
    Fundings.from_dict(r["fundings"][1])
    assert FundingRates.from_dict(r["rates"][1]).funding_rates[0].rate == 0
    assert ExchangeStats.from_dict(r["stats"][1]).order_book_stats[0].daily_trades_count == 1
    assert AssetDetails.from_dict(r["assets"][1]).asset_details[0].symbol == "USDC"
    subs = SubAccounts.from_dict(r["subs"][1])
    assert [a.index for a in subs.sub_accounts] == [MAIN]
    assert_decimals(fixture("http_account.json")["accounts"][0], r["subs"][1]["sub_accounts"][0])
    assert AccountLimits.from_dict(r["limits"][1]).user_tier == "premium"
    assert r["bad_res"][0] == 400 and "resolution must be one of" in r["bad_res"][1]["message"]
    assert r["bad_market"] == (400, {"code": 21602, "message": "invalid market index: 77"})
    assert "is before start_timestamp" in r["bad_window"][1]["message"]
    assert "start_timestamp is required" in r["missing"][1]["message"]
    assert r["unknown_l1"][0] == 400 and r["unknown_l1"][1]["code"] == 21100
    assert r["no_auth"][0] == 400 and r["no_auth"][1]["code"] == 21120


def test_funded_account_l1_key_is_seeded(sim: SimThread) -> None:
    key, address = throwaway_l1_key(7)
    assert sim.call(lambda s: (s.l1_private_key, s.l1_address)) == (key, address)
    assert sim.call(lambda s: s.exchange.accounts[MAIN].l1_address) == address
    assert throwaway_l1_key(8)[1] != address and len(key) == 66


def test_skip_nonce_jumps_ahead_never_back(sim: SimThread) -> None:
    from mmfast.sim.errors import VenueError

    def send(nonce: int, coi: int, skip: bool) -> int:
        info = order_info(wall_ms(sim), MAIN, nonce, coi, 290_000, 100, False)
        if skip:
            info["L2TxAttributes"] = {"4": 1}
        sim.call(lambda s: s.submit(14, info))
        return sim.call(lambda s: s.exchange.next_nonce(MAIN, KEY))

    assert send(0, 1, skip=False) == 1
    assert send(1_765_000_000_000, 2, skip=True) == 1_765_000_000_001
    with pytest.raises(VenueError, match="invalid nonce"):
        send(5, 3, skip=True)  # behind the slot's next nonce
    with pytest.raises(VenueError, match="invalid nonce"):
        send(1_765_000_000_009, 4, skip=False)  # a jump needs the attribute
    assert send(1_765_000_000_001, 5, skip=False) == 1_765_000_000_002
