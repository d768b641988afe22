"""REST over real sockets: nonce consumption, the cancel/fill race, wide market ids, truth."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest
from websockets.asyncio.client import connect

from mmfast.sim.config import MarketSpec, SimConfig, default_markets
from mmfast.sim.thread import SimThread

MAIN, OTHER, KEY = 1001, 2002, 3
MIN = 60_000
WIDE = 70_000  # a market id beyond 16 bits


def stand_in(**kw: Any) -> SimConfig:
    """A config for txs and tokens with stand-in signatures: verification off (the checks
    themselves are in test_sim_signatures)."""
    kw.setdefault("tier", "premium")  # written for the premium tier (the old default)
    return SimConfig(verify_signatures=False, **kw)


@pytest.fixture
def sim_config() -> SimConfig:
    wide = MarketSpec(
        WIDE,
        "WIDE",
        size_decimals=2,
        price_decimals=3,
        mark_price=50_000,
        min_base_amount=1,
        min_quote_amount=1_000_000,
    )
    return stand_in(
        seed=3,
        markets=(*default_markets(), wide),
        cancel_delay_ms=300,
        ws_ping_interval_ms=1000,
        ws_pong_timeout_ms=5000,
        speed_bumps=False,
    )


def info(
    now: int,
    account: int,
    nonce: int,
    coi: int,
    price: int,
    size: int = 100,
    is_ask: bool = False,
    tif: int = 1,
    market: int = 0,
) -> dict[str, Any]:
    return {
        "AccountIndex": account,
        "ApiKeyIndex": KEY,
        "MarketIndex": market,
        "ClientOrderIndex": coi,
        "BaseAmount": size,
        "Price": price,
        "IsAsk": int(is_ask),
        "Type": 0,
        "TimeInForce": tif,
        "ReduceOnly": 0,
        "TriggerPrice": 0,
        "OrderExpiry": 0 if tif == 0 else now + 60 * MIN,
        "ExpiredAt": now + 10 * MIN,
        "Nonce": nonce,
        "Sig": "c2ln",
        "L2TxAttributes": None,
    }


def cancel(now: int, account: int, nonce: int, index: int) -> dict[str, Any]:
    return {
        "AccountIndex": account,
        "ApiKeyIndex": KEY,
        "MarketIndex": 0,
        "Index": index,
        "ExpiredAt": now + 10 * MIN,
        "Nonce": nonce,
        "Sig": "c2ln",
        "L2TxAttributes": None,
    }


class Rest:
    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.s, self.base = session, base + "/api/v1/"

    async def send(self, tx_type: int, tx_info: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        async with self.s.post(
            self.base + "sendTx", data={"tx_type": str(tx_type), "tx_info": json.dumps(tx_info)}
        ) as r:
            return r.status, await r.json()

    async def get(self, ep: str, **params: Any) -> dict[str, Any]:
        async with self.s.get(self.base + ep, params=params) as r:
            return await r.json()

    async def nonce(self, account: int = MAIN) -> int:
        return (await self.get("nextNonce", account_index=account, api_key_index=KEY))["nonce"]


def test_nonce_consumption_rule_over_rest(sim: SimThread, run) -> None:
    now = sim.call(lambda s: s.clock.wall_ms())
    sim.call(lambda s: s.exchange.add_account(OTHER, 10**12))

    async def main() -> list[Any]:
        async with aiohttp.ClientSession() as s:
            api = Rest(s, sim.rest_url)
            out = [await api.nonce()]
            # API-level rejects: HTTP 400, nonce kept
            out.append(await api.send(14, info(now, MAIN, 0, 1, 0)))
            out.append(
                await api.send(
                    14, info(now, MAIN, 0, 1, 299_000, tif=1) | {"OrderExpiry": now + MIN}
                )
            )
            out.append(await api.nonce())
            # accepted, then canceled by the sequencer (post-only through the book)
            out.append(await api.send(14, info(now, OTHER, 0, 1, 299_000, is_ask=True)))
            status, body = await api.send(14, info(now, MAIN, 0, 2, 299_500, tif=2))
            out.append(status)
            out.append(await api.nonce())
            out.append(await api.get("tx", by="hash", value=body["tx_hash"]))
            return out

    r = run(main())
    assert r[0] == 0
    assert r[1] == (400, {"code": 21702, "message": "invalid price: 0"})
    assert r[2][0] == 400 and r[2][1]["code"] == 21711
    assert r[3] == 0
    assert r[4][0] == 200 and r[5] == 200
    assert r[6] == 1
    assert r[7]["status"] == 2  # the tx executed; its order was canceled
    truth = sim.call(lambda s: s.truth.order_by_coi(MAIN, 2))
    assert truth is not None and truth.status == "canceled-post-only"


def test_cancel_pending_then_full_fill_then_cancel_rejected(sim: SimThread, run) -> None:
    now = sim.call(lambda s: s.clock.wall_ms())
    sim.call(lambda s: s.exchange.add_account(OTHER, 10**12))

    async def main() -> list[Any]:
        async with aiohttp.ClientSession() as s:
            api = Rest(s, sim.rest_url)
            await api.send(14, info(now, MAIN, 0, 7, 299_000))
            _, cxl = await api.send(15, cancel(now, MAIN, 1, 7))  # waits 300 ms to execute
            pending = await api.get("tx", by="hash", value=cxl["tx_hash"])
            await api.send(14, info(now, OTHER, 0, 1, 299_000, is_ask=True, tif=0))
            await asyncio.sleep(0.6)
            done = await api.get("tx", by="hash", value=cxl["tx_hash"])
            return [cxl, pending, done, await api.nonce()]

    cxl, pending, done, nonce = run(main())
    assert cxl["code"] == 200
    assert pending["status"] == 1
    assert done["status"] == 0
    assert json.loads(done["event_info"])["error"]["code"] == 21715
    assert nonce == 2  # the rejected cancel consumed its nonce
    order = sim.call(lambda s: s.truth.order_by_coi(MAIN, 7))
    assert order is not None and order.status == "filled"
    fills = sim.call(lambda s: s.truth.fills(MAIN))
    assert [(f.maker_account, f.taker_account, f.size) for f in fills] == [(MAIN, OTHER, 100)]


def test_market_id_beyond_16_bits(sim: SimThread, run) -> None:
    now = sim.call(lambda s: s.clock.wall_ms())

    async def main() -> list[Any]:
        async with aiohttp.ClientSession() as s:
            api = Rest(s, sim.rest_url)
            details = await api.get("orderBookDetails", market_id=WIDE)
            async with connect(sim.ws_url) as ws:
                await ws.recv()
                await ws.send(json.dumps({"type": "subscribe", "channel": f"order_book/{WIDE}"}))
                snap = json.loads(await ws.recv())
                status, _ = await api.send(14, info(now, MAIN, 0, 1, 50_000, market=WIDE))
                delta = json.loads(await asyncio.wait_for(ws.recv(), 5))
            unknown = await api.get("orderBookDetails", market_id=WIDE + 1)
            return [details, snap, status, delta, unknown]

    details, snap, status, delta, unknown = run(main())
    assert details["order_book_details"][0]["market_id"] == WIDE
    assert snap["channel"] == f"order_book:{WIDE}"
    assert status == 200
    assert delta["type"] == "update/order_book"
    assert delta["order_book"]["bids"] == [{"price": "50.000", "size": "1.00"}]
    assert unknown["code"] == 21602


def test_request_counts_by_endpoint(sim: SimThread, run) -> None:
    async def main() -> None:
        async with aiohttp.ClientSession() as s:
            api = Rest(s, sim.rest_url)
            for _ in range(3):
                await api.nonce()
            await api.get("orderBooks")

    run(main())
    counts = sim.call(lambda s: s.truth.request_counts(window_ms=60_000))
    assert counts["GET /api/v1/nextNonce"] == 3
    assert counts["GET /api/v1/orderBooks"] == 1
