"""Speed bumps and rate limits, measured in simulated time over real sockets: the client and
the simulator share one `ScaledTime`, so minutes of venue time take about a second."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from websockets.asyncio.client import connect

from mmfast.core.timesource import ScaledTime
from mmfast.sim.config import SimConfig
from mmfast.sim.server import Simulator

MAIN, KEY, ETH = 1001, 3, 0
MIN = 60_000


def stand_in(**kw: Any) -> SimConfig:
    """A config for txs and tokens with stand-in signatures: verification off (the checks
    themselves are in test_sim_signatures)."""
    kw.setdefault("tier", "premium")  # written for the premium tier (the old default)
    return SimConfig(verify_signatures=False, **kw)


def tx(
    now: int, nonce: int, coi: int, price: int, is_ask: bool = False, tif: int = 1
) -> dict[str, Any]:
    return {
        "AccountIndex": MAIN,
        "ApiKeyIndex": KEY,
        "MarketIndex": ETH,
        "ClientOrderIndex": coi,
        "BaseAmount": 100,
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


def cancel(now: int, nonce: int, coi: int) -> dict[str, Any]:
    return {
        "AccountIndex": MAIN,
        "ApiKeyIndex": KEY,
        "MarketIndex": ETH,
        "Index": coi,
        "ExpiredAt": now + 10 * MIN,
        "Nonce": nonce,
        "Sig": "c2ln",
        "L2TxAttributes": None,
    }


def with_sim(
    config: SimConfig, scale: float, body: Callable[[Simulator, ScaledTime], Awaitable[Any]]
) -> Any:
    async def main() -> Any:
        ts = ScaledTime(scale)
        async with Simulator(config, ts) as sim:
            return await asyncio.wait_for(body(sim, ts), 30)

    return asyncio.run(main())


async def order_latency_ms(
    sim: Simulator, ts: ScaledTime, ws: Any, tx_type: int, info: dict[str, Any], coi: int
) -> float:
    """Simulated ms from sending a tx over WS to seeing its order change on the account
    stream."""
    t0 = ts.monotonic_ns()
    await ws.send(
        json.dumps({"type": "jsonapi/sendtx", "data": {"tx_type": tx_type, "tx_info": info}})
    )
    while True:
        msg = json.loads(await ws.recv())
        if msg.get("type") == "update/account_all_orders":
            for orders in msg["orders"].values():
                if any(o["client_order_index"] == coi for o in orders):
                    return (ts.monotonic_ns() - t0) / 1e6
        elif msg.get("type") == "jsonapi/sendtx":
            assert msg["data"]["code"] == 200, msg


async def account_ws(sim: Simulator, ts: ScaledTime) -> Any:
    ws = await connect(sim.ws_url)
    json.loads(await ws.recv())  # connected
    token = f"{ts.wall_ms() // 1000 + 3600}:{MAIN}:{KEY}:00ab"
    await ws.send(
        json.dumps({"type": "subscribe", "channel": f"account_all_orders/{MAIN}", "auth": token})
    )
    assert json.loads(await ws.recv())["type"] == "subscribed/account_all_orders"
    return ws


def _resting_ask(sim: Simulator, price: int) -> None:
    acct = sim.system_account(exclude=MAIN)
    sim.run_engine(lambda: sim.exchange.place_direct(acct, ETH, True, price, 1000))


@pytest.mark.parametrize("tier", ["standard", "premium"])
def test_speed_bumps_in_simulated_time(tier: str) -> None:
    async def body(sim: Simulator, ts: ScaledTime) -> dict[str, list[float]]:
        _resting_ask(sim, 300_100)
        ws = await account_ws(sim, ts)
        now = ts.wall_ms()
        out: dict[str, list[float]] = {"maker": [], "cancel": [], "taker": []}
        nonce = 0
        for i in range(3):
            coi = 10 + i
            out["maker"].append(
                await order_latency_ms(sim, ts, ws, 14, tx(now, nonce, coi, 299_000 - i), coi)
            )
            out["cancel"].append(
                await order_latency_ms(sim, ts, ws, 15, cancel(now, nonce + 1, coi), coi)
            )
            coi = 20 + i  # IOC buy through the resting ask: a taker
            out["taker"].append(
                await order_latency_ms(
                    sim, ts, ws, 14, tx(now, nonce + 2, coi, 300_100, tif=0), coi
                )
            )
            nonce += 3
        await ws.close()
        return out

    got = with_sim(stand_in(seed=4, tier=tier), 10.0, body)
    # Margins: the client is on the same loop; timers have ~1 ms real = 10 ms simulated grain.
    slack = 80.0
    if tier == "standard":
        expect = {"maker": (200, 200), "cancel": (200, 200), "taker": (300, 300)}
    else:
        expect = {"maker": (0, 0), "cancel": (0, 0), "taker": (140, 200)}
    for kind, (lo, hi) in expect.items():
        # Never faster than the bump; the median within it (a hiccup of the shared machine
        # lengthens one sample tenfold at this time scale, never shortens one).
        assert all(ms >= lo for ms in got[kind]), (kind, got[kind])
        assert lo <= sorted(got[kind])[1] <= hi + slack, (kind, got[kind])


def test_standard_tier_allows_60_requests_a_minute_then_429_with_retry_after() -> None:
    async def body(sim: Simulator, ts: ScaledTime) -> tuple[Any, ...]:
        url = f"{sim.rest_url}/api/v1/nextNonce?account_index={MAIN}&api_key_index={KEY}"
        statuses = []
        async with aiohttp.ClientSession() as http:
            t0 = ts.monotonic_ns()
            for _ in range(61):
                async with http.get(url) as r:
                    statuses.append(r.status)
                    retry = r.headers.get("Retry-After")
                    body = await r.json()
            first_window_s = (ts.monotonic_ns() - t0) / 1e9
            await ts.sleep(float(retry or 0))
            async with http.get(url) as r:
                after = r.status
        return statuses, retry, body, first_window_s, after

    statuses, retry, body, window_s, after = with_sim(
        stand_in(seed=1, tier="standard"), 100.0, body
    )
    assert statuses[:60] == [200] * 60 and statuses[60] == 429
    assert body["code"] == 23000
    assert 60 - window_s - 2 <= int(retry) <= 60  # until the oldest request leaves the window
    assert after == 200  # Retry-After honoured: the retry succeeds


def test_premium_weights_and_ws_limits() -> None:
    async def body(sim: Simulator, ts: ScaledTime) -> tuple[Any, ...]:
        url = f"{sim.rest_url}/api/v1/recentTrades?market_id=0"
        statuses = []
        async with aiohttp.ClientSession() as http:
            for _ in range(41):  # weight 600 of 24000: 40 a minute
                async with http.get(url) as r:
                    statuses.append(r.status)
        ws = await connect(sim.ws_url)
        json.loads(await ws.recv())
        for _ in range(201):
            await ws.send('{"type":"ping"}')
        replies = [json.loads(await ws.recv()) for _ in range(201)]
        await ws.close()
        return statuses, replies

    statuses, replies = with_sim(
        stand_in(seed=1, tier="premium", ws_ping_interval_ms=600_000, block_after_breaches=100),
        100.0,
        body,
    )
    assert statuses.count(200) == 40 and statuses[-1] == 429
    assert [r["type"] for r in replies[:200]] == ["pong"] * 200
    assert replies[200]["type"] == "error" and replies[200]["code"] == 23000
    assert replies[200]["retry_after"] >= 1


def test_ws_inflight_cap() -> None:
    async def body(sim: Simulator, ts: ScaledTime) -> list[dict[str, Any]]:
        sim.faults.delay_acks(5_000)  # acks held: requests stay in flight
        ws = await connect(sim.ws_url)
        json.loads(await ws.recv())
        for _ in range(51):
            await ws.send(
                json.dumps({"type": "jsonapi/sendtx", "data": {"tx_type": 14, "tx_info": "{}"}})
            )
        first = json.loads(await ws.recv())  # the refusal comes at once, the acks later
        rest = [json.loads(await ws.recv()) for _ in range(50)]
        await ws.close()
        return [first, *rest]

    frames = with_sim(stand_in(seed=1, ws_ping_interval_ms=600_000), 100.0, body)
    assert frames[0]["data"]["code"] == 23000
    assert [f["data"]["code"] for f in frames[1:]] == [21501] * 50  # the held acks


def test_repeated_breaches_escalate_to_a_temporary_block() -> None:
    async def body(sim: Simulator, ts: ScaledTime) -> tuple[Any, ...]:
        url = f"{sim.rest_url}/api/v1/orderBooks"
        out = []
        async with aiohttp.ClientSession() as http:
            for _ in range(66):  # 60 allowed, then 5 breaches, then blocked
                async with http.get(url) as r:
                    out.append((r.status, r.headers.get("Retry-After")))
            await ts.sleep(30)  # still blocked: 418, not a plain 429
            async with http.get(url) as r:
                still = r.status
            await ts.sleep(40)  # the block and the window have both run out
            async with http.get(url) as r:
                free = r.status
        return out, still, free, sim.truth.rate_limits()

    out, still, free, counts = with_sim(stand_in(seed=1, tier="standard"), 200.0, body)
    assert [s for s, _ in out[:60]] == [200] * 60
    assert [s for s, _ in out[60:64]] == [429] * 4
    assert out[64] == (418, "60")  # the fifth breach in a minute earns a 60 s block
    assert out[65][0] == 418
    assert still == 418 and free == 200
    assert counts["blocks"] == 1


def test_flow_fills_a_quote_at_the_touch_in_shared_scaled_time() -> None:
    """Minutes of flow in about a second: the client quotes both sides at the touch over WS
    and sees a fill on its account stream within a bounded simulated time."""
    from mmfast.sim.config import FlowConfig

    async def body(sim: Simulator, ts: ScaledTime) -> tuple[float, int]:
        ws = await account_ws(sim, ts)
        await ts.sleep(2.0)  # let the flow build the book
        asks, bids = sim.exchange.levels(ETH)
        now = ts.wall_ms()
        t0 = ts.monotonic_ns()
        for nonce, (coi, price, is_ask) in enumerate(
            ((1, bids[0][0], False), (2, asks[0][0], True))
        ):
            await ws.send(
                json.dumps(
                    {
                        "type": "jsonapi/sendtx",
                        "data": {
                            "tx_type": 14,
                            "tx_info": tx(now, nonce, coi, price, is_ask, tif=2),
                        },
                    }
                )
            )
        while True:
            msg = json.loads(await ws.recv())
            if msg.get("type") != "update/account_all_orders":
                continue
            for orders in msg["orders"].values():
                for o in orders:
                    if o["filled_base_amount"] not in ("0", "0.0000"):
                        await ws.close()
                        return (ts.monotonic_ns() - t0) / 1e9, len(sim.truth.fills(MAIN))

    waited_s, fills = with_sim(
        stand_in(seed=9, flow=FlowConfig(), speed_bumps=False, ws_ping_interval_ms=600_000),
        20.0,
        body,
    )
    assert fills >= 1
    assert waited_s <= 60.0  # simulated seconds


def test_tier_table_and_least_favourable_default() -> None:
    from mmfast.sim.config import TIERS

    assert SimConfig().tier == "standard" and not SimConfig().quota_on
    got = {
        n: (
            t.maker_delay_ms,
            t.cancel_delay_ms,
            t.taker_delay_ms,
            t.budget,
            t.min_cost,
            t.sendtx_per_min,
            t.volume_quota,
        )
        for n, t in TIERS.items()
    }
    assert got == {
        "standard": (200, 200, (300, 300), 24_000, 400, 60, False),
        "premium": (0, 0, (140, 200), 24_000, 0, 4_000, True),
        "plus": (200, 200, (300, 300), 120_000, 0, 8_000, True),
        "builder": (200, 200, (300, 300), 240_000, 0, 60, True),
    }
    with pytest.raises(ValueError, match="tier must be one of"):
        SimConfig(tier="gold")
    with pytest.raises(ValueError, match="volume_quota_start"):
        SimConfig(volume_quota_start=6_000_000)


def test_sendtx_bucket_per_tier_counts_rest_and_ws_sends() -> None:
    """Plus: 120000 REST weight but 8000 sendTx a minute (overridden to 3 here to count)."""

    async def body(sim: Simulator, ts: ScaledTime) -> tuple[Any, ...]:
        now = ts.wall_ms()
        statuses = []
        async with aiohttp.ClientSession() as http:
            for i in range(3):
                form = {"tx_type": "15", "tx_info": json.dumps(cancel(now, i, 99))}
                async with http.post(f"{sim.rest_url}/api/v1/sendTx", data=form) as r:
                    statuses.append(r.status)  # 400 (no such order): counted all the same
            url = f"{sim.rest_url}/api/v1/nextNonce?account_index={MAIN}&api_key_index={KEY}"
            async with http.get(url) as r:
                read = r.status  # reads are not sendTx
        ws = await connect(sim.ws_url)
        json.loads(await ws.recv())
        await ws.send(
            json.dumps(
                {"type": "jsonapi/sendtx", "data": {"tx_type": 15, "tx_info": cancel(now, 3, 99)}}
            )
        )
        ack = json.loads(await ws.recv())
        await ws.close()
        return statuses, read, ack

    statuses, read, ack = with_sim(
        stand_in(seed=1, tier="plus", sendtx_per_min=3, speed_bumps=False), 50.0, body
    )
    assert statuses == [400, 400, 400] and read == 200
    assert ack["data"]["code"] == 23000 and ack["data"]["retry_after"] > 0


def test_volume_quota_over_rest_ws_and_the_control_endpoint() -> None:
    """Premium: every sendTx answer carries the account's quota; a spent quota is HTTP 429 /
    23000 naming the volume quota (REST) or the same body in the WS ack; cancels go on; the
    control endpoint shows and sets it."""

    async def body(sim: Simulator, ts: ScaledTime) -> dict[str, Any]:
        now = ts.wall_ms()
        got: dict[str, Any] = {}
        async with aiohttp.ClientSession() as http:

            async def send(info: dict[str, Any], tx_type: int = 14) -> tuple[int, Any]:
                form = {"tx_type": str(tx_type), "tx_info": json.dumps(info)}
                async with http.post(f"{sim.rest_url}/api/v1/sendTx", data=form) as r:
                    return r.status, await r.json()

            got["first"] = await send(tx(now, 0, 1, 290_000))  # 2 -> 1
            got["free"] = await send(tx(now, 1, 2, 290_100))  # 1 -> 0
            got["free2"] = await send(tx(now, 2, 3, 290_200))  # 0: the free tx
            got["refused"] = await send(tx(now, 3, 4, 290_300))
            got["cancel"] = await send(cancel(now, 3, 1), 15)  # the refusal kept nonce 3
            ws = await connect(sim.ws_url)
            json.loads(await ws.recv())
            await ws.send(
                json.dumps(
                    {
                        "type": "jsonapi/sendtx",
                        "data": {"tx_type": 14, "tx_info": tx(now, 4, 5, 290_400)},
                    }
                )
            )
            got["ws_refused"] = json.loads(await ws.recv())
            ctl = f"{sim.control_url}/volume_quota"
            async with http.post(ctl, json={"account": MAIN, "remaining": 50}) as r:
                got["set"] = r.status, await r.json()
            async with http.post(ctl, json={"account": MAIN, "remaining": -1}) as r:
                got["bad"] = r.status, await r.json()
            async with http.post(ctl, json={"account": MAIN, "remainder": 5}) as r:
                got["unknown"] = r.status, await r.json()
            await ws.send(
                json.dumps(
                    {
                        "type": "jsonapi/sendtx",
                        "data": {"tx_type": 14, "tx_info": tx(now, 4, 5, 290_400)},
                    }
                )
            )
            got["ws_ok"] = json.loads(await ws.recv())
            await ws.close()
            async with http.get(f"{sim.control_url}/truth/volume_quota?account={MAIN}") as r:
                got["truth"] = (await r.json())["result"]
        return got

    got = with_sim(
        stand_in(seed=1, tier="premium", volume_quota_start=2, speed_bumps=False), 20.0, body
    )
    assert got["first"][0] == 200 and got["first"][1]["volume_quota_remaining"] == 1
    assert got["free"][1]["volume_quota_remaining"] == 0
    assert got["free2"][0] == 200 and got["free2"][1]["volume_quota_remaining"] == 0
    status, refused = got["refused"]
    assert status == 429 and refused["code"] == 23000
    assert (
        refused["message"].startswith("Too Many Requests!")
        and "volume quota" in refused["message"]
        and refused["volume_quota_remaining"] == 0
    )
    assert got["cancel"][0] == 200  # free
    ws_refused = got["ws_refused"]["data"]
    assert ws_refused["code"] == 23000 and "volume quota" in ws_refused["message"]
    assert got["set"][0] == 200 and got["set"][1]["result"]["remaining"] == 50
    assert got["bad"][0] == 400 and "remaining" in got["bad"][1]["error"]
    assert got["unknown"][0] == 400 and "remainder" in got["unknown"][1]["error"]
    assert got["ws_ok"]["data"]["code"] == 200
    assert got["ws_ok"]["data"]["volume_quota_remaining"] == 49
    t = got["truth"]
    assert (t["remaining"], t["refused"], t["free_used"], t["spent"]) == (49, 2, 1, 3)
