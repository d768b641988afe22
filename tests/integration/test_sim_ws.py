"""WebSocket behaviour: keepalive, subscriptions, auth, tx over WS, book chaining."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from typing import Any

import lighter
import pytest
from lighter.models.resp_send_tx import RespSendTx
from lighter.models.resp_send_tx_batch import RespSendTxBatch
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from mmfast.sim.config import SimConfig
from mmfast.sim.thread import SimThread

MAIN, KEY = 1001, 3
MIN = 60_000


def stand_in(**kw: Any) -> SimConfig:
    """A config for txs and tokens with stand-in signatures: verification off (the checks
    themselves are in test_sim_signatures)."""
    kw.setdefault("tier", "premium")  # written for the premium tier (the old default)
    return SimConfig(verify_signatures=False, **kw)


@pytest.fixture
def sim_config() -> SimConfig:
    return stand_in(seed=11, ws_ping_interval_ms=50, ws_pong_timeout_ms=300, speed_bumps=False)


def info(
    now: int, nonce: int, coi: int, price: int, size: int = 100, is_ask: bool = False, tif: int = 1
) -> dict[str, Any]:
    return {
        "AccountIndex": MAIN,
        "ApiKeyIndex": KEY,
        "MarketIndex": 0,
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


def wall_ms(st: SimThread) -> int:
    return st.call(lambda s: s.clock.wall_ms())


async def recv(ws: Any, timeout: float = 5.0) -> dict[str, Any]:
    """Next frame that is not a keepalive ping (answered on the way)."""
    while True:
        msg = json.loads(await asyncio.wait_for(ws.recv(), timeout))
        if msg.get("type") == "ping":
            await ws.send(json.dumps({"type": "pong"}))
            continue
        return msg


def test_no_pong_closes_1008_and_pongs_keep_it_open(sim: SimThread, run) -> None:
    async def silent() -> tuple[int, str, int]:
        pings = 0
        async with connect(sim.ws_url) as ws:
            try:
                while True:
                    msg = json.loads(await asyncio.wait_for(ws.recv(), 3))
                    pings += msg.get("type") == "ping"
            except ConnectionClosed as exc:
                assert exc.rcvd is not None
                return exc.rcvd.code, exc.rcvd.reason, pings

    async def answering() -> int:
        async with connect(sim.ws_url) as ws:
            pongs = 0
            loop = asyncio.get_running_loop()
            end = loop.time() + 0.8  # well past the 300 ms pong timeout
            while loop.time() < end:
                msg = json.loads(await asyncio.wait_for(ws.recv(), 1))
                if msg.get("type") == "ping":
                    await ws.send(json.dumps({"type": "pong"}))
                    pongs += 1
            await ws.send(json.dumps({"type": "ping"}))
            assert await recv(ws) == {"type": "pong"}
            return pongs

    code, reason, pings = run(silent())
    assert (code, reason) == (1008, "no pong") and pings >= 1
    assert run(answering()) >= 3
    assert sim.call(lambda s: s.truth.request_counts()).get("WS pong", 0) >= 3


def test_sdk_ws_client_answers_pings(sim: SimThread, run) -> None:
    async def main() -> None:
        client = lighter.WsClient(
            order_book_ids=[0],
            account_ids=[],
            ws_url=sim.ws_url,
            on_order_book_update=lambda *_: None,
            on_account_update=lambda *_: None,
        )
        task = asyncio.create_task(client.run_async())
        await asyncio.sleep(0.8)
        assert not task.done()  # still connected past the pong timeout
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        if client.ws is not None:
            await client.ws.close()

    run(main())
    assert sim.call(lambda s: s.truth.request_counts()).get("WS pong", 0) >= 3


def test_subscribe_rules(sim: SimThread, run) -> None:
    now_s = wall_ms(sim) // 1000
    good = f"{now_s + 600}:{MAIN}:{KEY}:abcd"

    async def main() -> list[dict[str, Any]]:
        out = []
        async with connect(sim.ws_url) as ws:
            assert (await recv(ws))["type"] == "connected"
            for frame in (
                {"type": "subscribe", "channel": "order_book/0"},
                {"type": "subscribe", "channel": "order_book/0"},  # again: 30003
                {"type": "subscribe", "channel": "order_book/65536"},  # unknown market
                {"type": "subscribe", "channel": "nonsense/1"},
                {"type": "subscribe", "channel": f"account_all_orders/{MAIN}"},  # no auth
                {
                    "type": "subscribe",
                    "channel": f"account_all_orders/{MAIN}",
                    "auth": f"{now_s - 5}:{MAIN}:{KEY}:abcd",
                },  # expired
                {"type": "subscribe", "channel": "account_all_orders/2002", "auth": good},
                {"type": "subscribe", "channel": f"account_all_orders/{MAIN}", "auth": good},
                {"type": "unsubscribe", "channel": "order_book/0"},
                {"type": "unsubscribe", "channel": "order_book/0"},
                {"type": "bogus"},
            ):
                await ws.send(json.dumps(frame))
                out.append(await recv(ws))
            await ws.send("{not json")
            out.append(await recv(ws))
        return out

    r = run(main())
    assert r[0]["type"] == "subscribed/order_book"
    assert (r[1]["type"], r[1]["code"]) == ("error", 30003)
    assert (r[2]["code"], r[2]["channel"]) == (30012, "order_book:65536")
    assert r[3]["code"] == 30005
    assert [x["code"] for x in r[4:7]] == [30012, 30012, 30012]
    assert r[7] == {
        "type": "subscribed/account_all_orders",
        "channel": f"account_all_orders:{MAIN}",
        "orders": {},
    }
    assert r[8] == {"type": "unsubscribed/order_book", "channel": "order_book:0"}
    assert r[9]["code"] == 30002
    assert r[10]["code"] == 30001
    assert r[11]["code"] == 30000


def test_jsonapi_sendtx_and_batch_acks(sim: SimThread, run) -> None:
    now = wall_ms(sim)

    async def main() -> list[dict[str, Any]]:
        out = []
        async with connect(sim.ws_url) as ws:
            await recv(ws)
            # tx_info as an object, then as a string; then a stale nonce; then a batch
            await ws.send(
                json.dumps(
                    {
                        "type": "jsonapi/sendtx",
                        "data": {"id": "a1", "tx_type": 14, "tx_info": info(now, 0, 1, 299_000)},
                    }
                )
            )
            out.append(await recv(ws))
            await ws.send(
                json.dumps(
                    {
                        "type": "jsonapi/sendtx",
                        "data": {"tx_type": 14, "tx_info": json.dumps(info(now, 1, 2, 298_000))},
                    }
                )
            )
            out.append(await recv(ws))
            await ws.send(
                json.dumps(
                    {
                        "type": "jsonapi/sendtx",
                        "data": {"tx_type": 14, "tx_info": info(now, 1, 3, 297_000)},
                    }
                )
            )
            out.append(await recv(ws))
            batch = [json.dumps(info(now, n, 10 + n, 290_000)) for n in (2, 3, 4)]
            await ws.send(
                json.dumps(
                    {
                        "type": "jsonapi/sendtxbatch",
                        "data": {
                            "tx_types": json.dumps([14, 14, 14]),
                            "tx_infos": json.dumps(batch),
                        },
                    }
                )
            )
            out.append(await recv(ws))
            bad = [json.dumps(info(now, n, 20 + n, 290_000)) for n in (5, 7)]
            await ws.send(
                json.dumps(
                    {
                        "type": "jsonapi/sendtxbatch",
                        "data": {"tx_types": json.dumps([14, 14]), "tx_infos": json.dumps(bad)},
                    }
                )
            )
            out.append(await recv(ws))
        return out

    r = run(main())
    assert r[0]["type"] == "jsonapi/sendtx" and r[0]["data"]["code"] == 200
    assert "id" not in r[0]["data"]  # acks do not echo ids by default
    assert len(r[0]["data"]["tx_hash"]) == 80
    assert r[1]["data"]["code"] == 200
    assert r[2]["data"]["code"] == 21104
    assert r[3]["type"] == "jsonapi/sendtxbatch"
    assert len(RespSendTxBatch.from_dict(r[3]["data"]).tx_hash) == 3
    assert RespSendTx.from_dict(r[1]["data"]).code == 200
    assert r[4]["data"]["code"] == 21105
    assert sim.call(lambda s: s.truth.next_nonce(MAIN, KEY)) == 5
    cois = [o.client_order_index for o in sim.call(lambda s: s.truth.open_orders(MAIN))]
    assert cois == [1, 2, 12, 13, 14]
    counts = sim.call(lambda s: s.truth.request_counts())
    assert counts["WS jsonapi/sendtx"] == 3 and counts["WS jsonapi/sendtxbatch"] == 2


@pytest.mark.parametrize("batch_ms", [0, 50])
def test_book_deltas_chain_on_the_wire(sim_config: SimConfig, run, batch_ms: int) -> None:
    """Five book changes in a burst: one delta each without batching; with the venue's 50 ms
    batches fewer deltas, 50 ms or more apart on the venue's clock; chained either way, to the
    same final book."""
    import dataclasses

    st = SimThread(dataclasses.replace(sim_config, book_batch_ms=batch_ms))
    st.start()
    try:
        now = wall_ms(st)

        async def main() -> list[dict[str, Any]]:
            frames = []
            async with connect(st.ws_url) as ws:
                await recv(ws)
                await ws.send(json.dumps({"type": "subscribe", "channel": "order_book/0"}))
                frames.append(await recv(ws))
                for n in range(5):
                    await ws.send(
                        json.dumps(
                            {
                                "type": "jsonapi/sendtx",
                                "data": {
                                    "tx_type": 14,
                                    "tx_info": info(now, n, n + 1, 299_000 - 100 * (n % 2)),
                                },
                            }
                        )
                    )
                last = frames[0]["order_book"]["nonce"] + 5  # five changes
                while frames[-1]["order_book"]["nonce"] < last:
                    f = await recv(ws)
                    if f["type"] == "update/order_book":
                        frames.append(f)
            return frames

        frames = run(main())
    finally:
        st.stop()
    prev = frames[0]["order_book"]["nonce"]
    for f in frames[1:]:
        assert f["order_book"]["begin_nonce"] == prev
        prev = f["order_book"]["nonce"]
    deltas = frames[1:]
    if batch_ms == 0:
        assert len(deltas) == 5  # one per change
        assert [len(f["order_book"]["bids"]) for f in deltas] == [1] * 5
    else:
        assert 1 <= len(deltas) < 5  # merged: each level's latest size once
        stamps = [f["timestamp"] for f in deltas]
        assert all(b - a >= batch_ms - 2 for a, b in itertools.pairwise(stamps))  # ms rounding
        for f in deltas:
            prices = [x["price"] for x in f["order_book"]["bids"]]
            assert len(prices) == len(set(prices))
    book: dict[str, str] = {}
    for f in deltas:
        book.update((x["price"], x["size"]) for x in f["order_book"]["bids"])
    assert book == {"2990.00": "0.0300", "2989.00": "0.0200"}


# 120 simulated seconds in 4.8 real ones: the rules' timers and the clients' frames keep
# seconds of real slack on a loaded machine (at 100x a 0.6 s scheduling hiccup read as a
# silent client, or a late close, and the tests failed under CI load).
_RULES_SCALE = 25.0


def _rules_sim(**kw: Any) -> tuple[SimThread, Any]:
    from mmfast.core.timesource import ScaledTime

    t = ScaledTime(_RULES_SCALE)
    st = SimThread(
        stand_in(
            seed=12,
            speed_bumps=False,
            ws_ping_interval_ms=3_600_000,
            ws_pong_timeout_ms=7_200_000,
            **kw,
        ),
        t,
    )
    st.start()
    return st, t


def test_a_client_silent_for_two_minutes_is_dropped_one_that_talks_is_not() -> None:
    st, t = _rules_sim()  # the venue's defaults: 120 s idle, 24 h lifetime

    async def client(talk: bool) -> tuple[int, str, float]:
        # From before the handshake: the venue's clocks start when it accepts, and a stamp
        # taken once connect returns would be late by the handshake (read below 120 s).
        t0 = t.monotonic_ns()
        async with connect(st.ws_url) as ws:
            await ws.recv()  # connected
            try:
                while True:
                    if talk:  # a frame every 30 simulated seconds
                        await ws.send(json.dumps({"type": "ping"}))
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(ws.recv(), 30 / _RULES_SCALE)
                    if (t.monotonic_ns() - t0) / 1e9 > 300:
                        return 0, "open", (t.monotonic_ns() - t0) / 1e9
            except ConnectionClosed as exc:
                assert exc.rcvd is not None
                return exc.rcvd.code, exc.rcvd.reason, (t.monotonic_ns() - t0) / 1e9

    async def both() -> tuple[Any, Any]:
        return await asyncio.gather(client(False), client(True))

    try:
        silent, talking = asyncio.run(asyncio.wait_for(both(), 60))
        drops = st.call(lambda s: dict(s.rule_drops))
    finally:
        st.stop()
    code, reason, after_s = silent
    assert (code, reason) == (1008, "no frame from the client")
    assert 120 <= after_s < 200  # simulated seconds: the rule, plus a timer's slack
    assert talking[:2] == (0, "open")  # 300 simulated seconds, still open
    assert drops == {"lifetime": 0, "idle": 1}


def test_a_connection_is_closed_at_its_lifetime_even_when_busy() -> None:
    st, t = _rules_sim(ws_max_lifetime_s=300)  # 5 simulated minutes (the venue: 24 h)

    async def client() -> tuple[int, str, float]:
        t0 = t.monotonic_ns()  # before the handshake, as above
        async with connect(st.ws_url) as ws:
            await ws.recv()
            try:
                while True:
                    await ws.send(json.dumps({"type": "ping"}))  # never idle
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(ws.recv(), 10 / _RULES_SCALE)
            except ConnectionClosed as exc:
                assert exc.rcvd is not None
                return exc.rcvd.code, exc.rcvd.reason, (t.monotonic_ns() - t0) / 1e9

    try:
        code, reason, after_s = asyncio.run(asyncio.wait_for(client(), 60))
        drops = st.call(lambda s: dict(s.rule_drops))
    finally:
        st.stop()
    assert (code, reason) == (1000, "connection lifetime reached")
    assert 300 <= after_s < 360
    assert drops == {"lifetime": 1, "idle": 0}
