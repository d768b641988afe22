"""Fault injection: each family happens as described, over real sockets, and the truth API
records it."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from mmfast.core.timesource import ScaledTime
from mmfast.sim.config import SimConfig
from mmfast.sim.faults import DEFAULT_SCRIPT_KINDS, FaultScript
from mmfast.sim.server import Simulator
from mmfast.sim.thread import SimThread

ETH = 0
MAIN = 1001


def stand_in(**kw: Any) -> SimConfig:
    """A config for txs and tokens with stand-in signatures: verification off (the checks
    themselves are in test_sim_signatures)."""
    kw.setdefault("tier", "premium")  # written for the premium tier (the old default)
    return SimConfig(verify_signatures=False, **kw)


@pytest.fixture
def sim_config() -> SimConfig:
    # One delta per book change (no 50 ms batches): the faults act on single deltas.
    return stand_in(
        seed=5,
        ws_ping_interval_ms=200,
        ws_pong_timeout_ms=60_000,
        speed_bumps=False,
        book_batch_ms=0,
    )


def place(st: SimThread, is_ask: bool, price: int, size: int = 100) -> int:
    """A resting order of a system account (changes the book: one delta)."""

    def fn(sim: Simulator) -> int:
        acct = sim.system_account(exclude=MAIN)
        return sim.exchange.place_direct(acct, ETH, is_ask, price, size).order_index

    return st.call(fn)


async def recv(ws: Any, timeout: float = 5.0) -> dict[str, Any]:
    """Next frame that is not a keepalive ping (answered on the way), within `timeout`."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        msg = json.loads(await asyncio.wait_for(ws.recv(), max(0.0, end - loop.time())))
        if msg.get("type") == "ping":
            await ws.send('{"type":"pong"}')
            continue
        return msg


async def book_client(url: str) -> Any:
    ws = await connect(url, max_size=None)
    assert (await recv(ws))["type"] == "connected"
    await ws.send(json.dumps({"type": "subscribe", "channel": f"order_book/{ETH}"}))
    return ws


def nonces(msg: dict[str, Any]) -> tuple[int, int]:
    return msg["order_book"]["begin_nonce"], msg["order_book"]["nonce"]


# ---------------------------------------------------------------- connections
@pytest.mark.parametrize("code", [1000, 1006, "rst"])
def test_drop_closes_as_asked_and_is_recorded(sim: SimThread, run, code) -> None:
    async def client() -> tuple[int | None, str]:
        ws = await book_client(sim.ws_url)
        assert (await recv(ws))["type"] == "subscribed/order_book"
        ids = sim.call(lambda s: s.faults.drop(code=code))
        assert len(ids) == 1
        try:
            while True:
                await recv(ws)
        except ConnectionClosed as exc:
            return (exc.rcvd.code if exc.rcvd else None), type(exc).__name__

    rcvd_code, _ = run(client())
    if code == 1000:
        assert rcvd_code == 1000
    else:
        assert rcvd_code is None  # no close frame: the client sees 1006 (abnormal)
    recs = sim.call(lambda s: s.truth.faults("drop"))
    assert [(r.phase, r.details["code"]) for r in recs] == [("injected", code)]
    assert sim.call(lambda s: s.truth.connections()) == []


def test_rst_is_a_tcp_reset(sim: SimThread, run) -> None:
    async def client() -> str:
        reader, writer = await asyncio.open_connection("127.0.0.1", sim.sim.port)  # type: ignore[union-attr]
        writer.write(
            b"GET /stream HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            b"Sec-WebSocket-Version: 13\r\n\r\n"
        )
        await reader.readuntil(b"\r\n\r\n")
        await asyncio.sleep(0.05)
        sim.call(lambda s: s.faults.drop("rst"))
        try:
            while await asyncio.wait_for(reader.read(65536), 5):
                pass
        except ConnectionResetError:
            return "reset"
        return "eof"

    assert run(client()) == "reset"


def test_stall_holds_frames_both_ways_then_delivers_them_in_order(sim: SimThread, run) -> None:
    async def client() -> tuple[float, list[tuple[int, int]], int]:
        ws = await book_client(sim.ws_url)
        snap = await recv(ws)
        loop = asyncio.get_running_loop()
        sim.call(lambda s: s.faults.stall(0.6))
        t0 = loop.time()
        for i in range(3):
            place(sim, False, 290_000 - i)
        await ws.send('{"type":"ping"}')  # held inbound too: its pong comes after the stall
        first = await recv(ws, 3)
        waited = loop.time() - t0
        got = [first] + [await recv(ws) for _ in range(3)]
        await ws.close()
        books = [nonces(m) for m in got if m["type"] == "update/order_book"]
        return waited, [nonces(snap), *books], sum(m["type"] == "pong" for m in got)

    waited, chain, pongs = run(client())
    assert waited >= 0.55  # nothing came through during the stall (not even pings)
    assert len(chain) == 4 and pongs == 1
    assert all(chain[i + 1][0] == chain[i][1] for i in range(3))  # in order, chained
    phases = [r.phase for r in sim.call(lambda s: s.truth.faults("stall"))]
    assert phases == ["injected", "ended"]


def test_refuse_connections_resets_new_ws_until_turned_off(sim: SimThread, run) -> None:
    sim.call(lambda s: s.faults.refuse_connections(True))

    async def attempt() -> str:
        try:
            async with connect(sim.ws_url, open_timeout=3) as ws:
                await recv(ws)
                return "connected"
        except (OSError, ConnectionClosed, Exception) as exc:  # handshake fails
            return type(exc).__name__

    assert run(attempt()) != "connected"

    async def rest_still_works() -> int:
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"{sim.rest_url}/api/v1/orderBooks") as r,
        ):
            return r.status

    assert run(rest_still_works()) == 200
    sim.call(lambda s: s.faults.refuse_connections(False))
    assert run(attempt()) == "connected"
    assert [r.details["on"] for r in sim.call(lambda s: s.truth.faults("refuse_connections"))] == [
        True,
        False,
    ]


# ---------------------------------------------------------------- book feed
def _collect_deltas(
    sim: SimThread, run, fault: str, changes: int
) -> tuple[tuple[int, int], list[tuple[int, int]]]:
    async def client() -> tuple[tuple[int, int], list[tuple[int, int]]]:
        ws = await book_client(sim.ws_url)
        snap = await recv(ws)
        sim.call(lambda s: getattr(s.faults, fault)(ETH))
        for i in range(changes):
            place(sim, False, 280_000 - i)
        out = []
        try:
            while True:
                m = await recv(ws, 0.5)
                if m["type"] == "update/order_book":
                    out.append(nonces(m))
        except TimeoutError:
            pass
        await ws.close()
        return nonces(snap), out

    return run(client())


def test_book_gap_loses_one_delta(sim: SimThread, run) -> None:
    snap, deltas = _collect_deltas(sim, run, "book_gap", 3)
    assert len(deltas) == 2
    assert deltas[0][0] != snap[1]  # the chain breaks where the delta went missing
    assert deltas[1][0] == deltas[0][1]
    applied = sim.call(lambda s: s.truth.faults("book_gap", "applied"))
    assert len(applied) == 1 and applied[0].details["begin_nonce"] == snap[1]


def test_book_duplicate_sends_a_delta_twice(sim: SimThread, run) -> None:
    snap, deltas = _collect_deltas(sim, run, "book_duplicate", 2)
    assert deltas[0] == deltas[1] and deltas[0][0] == snap[1] and len(deltas) == 3
    assert len(sim.call(lambda s: s.truth.faults("book_duplicate", "applied"))) == 1


def test_book_reorder_swaps_two_deltas(sim: SimThread, run) -> None:
    snap, deltas = _collect_deltas(sim, run, "book_reorder", 3)
    assert len(deltas) == 3
    assert deltas[1][0] == snap[1] and deltas[0][0] == deltas[1][1]  # second arrived first
    assert deltas[2][0] == deltas[0][1]
    assert len(sim.call(lambda s: s.truth.faults("book_reorder", "applied"))) == 1


def test_delta_before_snapshot_and_missing_snapshot(sim: SimThread, run) -> None:
    place(sim, False, 299_000)
    sim.call(lambda s: s.faults.book_delta_before_snapshot(ETH))

    async def early() -> list[str]:
        ws = await book_client(sim.ws_url)
        types = [(await recv(ws))["type"], (await recv(ws))["type"]]
        await ws.close()
        return types

    assert run(early()) == ["update/order_book", "subscribed/order_book"]
    sim.call(lambda s: s.faults.book_skip_snapshot(ETH))

    async def skipped() -> list[str]:
        ws = await book_client(sim.ws_url)
        while not any(c["subs"] for c in sim.call(lambda s: s.truth.connections())):
            await asyncio.sleep(0.01)  # subscribed (no snapshot tells us so)
        place(sim, True, 301_000)
        types = [(await recv(ws))["type"]]
        await ws.close()
        return types

    assert run(skipped()) == ["update/order_book"]  # deltas, but never a snapshot
    for kind in ("book_delta_before_snapshot", "book_skip_snapshot"):
        assert [r.phase for r in sim.call(lambda s, k=kind: s.truth.faults(k))] == [
            "injected",
            "applied",
        ]


def test_book_crossed_for_a_while_then_uncrossed(sim: SimThread, run) -> None:
    place(sim, True, 300_100)
    place(sim, False, 299_900)

    async def client() -> tuple[int, int, list[tuple[str, str]], bool]:
        ws = await book_client(sim.ws_url)
        snap = await recv(ws)
        sim.call(lambda s: s.faults.book_crossed(ETH, 0.3))
        crossed = await recv(ws)
        restored = await recv(ws, 3)
        chained = (
            nonces(crossed)[0] == nonces(snap)[1] and nonces(restored)[0] == nonces(crossed)[1]
        )
        await ws.close()
        bid = crossed["order_book"]["bids"][0]
        return (
            int(float(bid["price"]) * 100),
            int(float(snap["order_book"]["asks"][0]["price"]) * 100),
            [(b["price"], b["size"]) for b in restored["order_book"]["bids"]],
            chained,
        )

    bid, best_ask, restored, chained = run(client())
    assert bid > best_ask and chained
    assert restored == [(f"{bid / 100:.2f}", "0.0000")]
    assert [r.phase for r in sim.call(lambda s: s.truth.faults("book_crossed"))] == [
        "injected",
        "ended",
    ]


# ---------------------------------------------------------------- scripts
def test_fault_script_is_a_function_of_its_seed() -> None:
    a, b, c = FaultScript(42, count=30), FaultScript(42, count=30), FaultScript(43, count=30)
    assert a.events == b.events and a.events != c.events
    assert all(x.at_s < y.at_s for x, y in zip(a.events, a.events[1:], strict=False))
    assert {e.kind for e in a.events} <= set(DEFAULT_SCRIPT_KINDS)
    assert len({e.kind for e in a.events}) > 5  # a mix, not one kind


def test_fault_script_plays_in_simulated_time() -> None:
    script = FaultScript(
        7, count=6, kinds=("book_gap", "http_timeouts", "late_reject"), gap_s=(5.0, 10.0)
    )

    async def main() -> list[tuple[str, str]]:
        ts = ScaledTime(100.0)
        async with Simulator(stand_in(seed=1, speed_bumps=False), ts) as sim:
            task = sim.faults.run_script(script)
            await asyncio.wait_for(task, 5)  # up to 60 simulated seconds in < 1 s
            return [
                (r.kind, json.dumps(r.details, sort_keys=True))
                for r in sim.truth.faults(phase="injected")
                if r.kind != "script"
            ]

    played = asyncio.run(main())
    expected = [(e.kind, e.args) for e in script.events]
    assert [k for k, _ in played] == [k for k, _ in expected]


# ---------------------------------------------------------------- frames
def test_corrupt_truncated_and_oversized_frames(sim: SimThread, run) -> None:
    async def client() -> list[bytes]:
        ws = await connect(sim.ws_url, max_size=None)
        await recv(ws)
        sim.call(lambda s: s.faults.oversized_frame(2_000_000))
        sim.call(lambda s: s.faults.corrupt_frames(1))
        sim.call(lambda s: s.faults.truncated_frames(1))
        out = []
        for _ in range(3):
            await ws.send('{"type":"ping"}')
        while len(out) < 3:
            out.append(await asyncio.wait_for(ws.recv(decode=False), 5))
        await ws.close()
        return out

    frames = run(client())
    big = [f for f in frames if len(f) == 2_000_000]
    small = [f for f in frames if len(f) != 2_000_000]
    assert len(big) == 1 and json.loads(big[0])["type"] == "update/order_book"
    for f in small:  # both mangled frames fail to parse; the corrupt one is still UTF-8
        with pytest.raises(ValueError):
            json.loads(f)
    applied = sim.call(lambda s: [r.details["fault"] for r in s.truth.faults(phase="applied")])
    assert sorted(applied) == ["corrupt_json", "truncate"]


# ---------------------------------------------------------------- acks
MIN = 60_000


def tx(now: int, nonce: int, coi: int, price: int = 290_000) -> dict[str, Any]:
    return {
        "AccountIndex": MAIN,
        "ApiKeyIndex": 3,
        "MarketIndex": ETH,
        "ClientOrderIndex": coi,
        "BaseAmount": 100,
        "Price": price,
        "IsAsk": 0,
        "Type": 0,
        "TimeInForce": 1,
        "ReduceOnly": 0,
        "TriggerPrice": 0,
        "OrderExpiry": now + 60 * MIN,
        "ExpiredAt": now + 10 * MIN,
        "Nonce": nonce,
        "Sig": "c2ln",
        "L2TxAttributes": None,
    }


def test_ws_acks_delayed_lost_and_late_rejected(sim: SimThread, run) -> None:
    now = sim.call(lambda s: s.clock.wall_ms())

    async def client() -> tuple[float, list[dict[str, Any]]]:
        ws = await connect(sim.ws_url)
        await recv(ws)
        loop = asyncio.get_running_loop()
        sim.call(lambda s: s.faults.delay_acks(400, n=1))
        t0 = loop.time()
        await ws.send(
            json.dumps(
                {"type": "jsonapi/sendtx", "data": {"tx_type": 14, "tx_info": tx(now, 0, 1)}}
            )
        )
        first = await recv(ws)
        waited = loop.time() - t0
        sim.call(lambda s: s.faults.lose_acks(1, execute=True))
        await ws.send(
            json.dumps(
                {"type": "jsonapi/sendtx", "data": {"tx_type": 14, "tx_info": tx(now, 1, 2)}}
            )
        )
        # The late reject must catch the third tx, not this one: wait until this one is in.
        for _ in range(500):
            if sim.call(lambda s: s.truth.next_nonce(MAIN, 3)) >= 2:
                break
            await asyncio.sleep(0.01)
        sim.call(lambda s: s.faults.late_reject(1, code=21739))
        await ws.send(
            json.dumps(
                {"type": "jsonapi/sendtx", "data": {"tx_type": 14, "tx_info": tx(now, 2, 3)}}
            )
        )
        third = await recv(ws)  # the lost ack never arrives: the next frame is the third ack
        await ws.close()
        return waited, [first, third]

    waited, acks = run(client())
    assert waited >= 0.38
    assert [a["data"]["code"] for a in acks] == [200, 200]
    orders = {o.client_order_index: o.status for o in sim.call(lambda s: s.truth.open_orders(MAIN))}
    assert orders == {1: "open", 2: "open"}  # the lost ack's tx executed; 3 was rejected late
    late = acks[1]["data"]["tx_hash"]
    assert sim.call(lambda s: (s.truth.tx_status(late), s.truth.tx_error(late))) == (0, 21739)
    assert sim.call(lambda s: s.truth.next_nonce(MAIN, 3)) == 3  # every nonce consumed
    kinds = sim.call(lambda s: [(r.kind, r.phase) for r in s.truth.faults()])
    assert ("lose_acks", "applied") in kinds and ("delay_acks", "applied") in kinds


def test_rest_lost_ack_without_execution_keeps_the_nonce(sim: SimThread, run) -> None:
    now = sim.call(lambda s: s.clock.wall_ms())
    sim.call(lambda s: s.faults.lose_acks(1, execute=False))

    async def client() -> tuple[str, int]:
        async with aiohttp.ClientSession() as http:
            try:
                async with http.post(
                    f"{sim.rest_url}/api/v1/sendTx",
                    data={"tx_type": "14", "tx_info": json.dumps(tx(now, 0, 1))},
                ) as r:
                    first = f"status {r.status}"
            except aiohttp.ClientError as exc:
                first = type(exc).__name__
            async with http.post(
                f"{sim.rest_url}/api/v1/sendTx",
                data={"tx_type": "14", "tx_info": json.dumps(tx(now, 0, 1))},
            ) as r:
                return first, r.status

    first, second = run(client())
    assert first.startswith(("ServerDisconnected", "ClientOS", "ClientConnection")), first
    assert second == 200  # the same nonce was still free: the first never reached the venue
    assert sim.call(lambda s: s.truth.next_nonce(MAIN, 3)) == 1


# ---------------------------------------------------------------- REST
def test_http_status_storm_and_timeouts(sim: SimThread, run) -> None:
    sim.call(lambda s: s.faults.http_status_storm(429, 2, retry_after_s=3))
    sim.call(lambda s: s.faults.http_status_storm(503, 1))

    async def client() -> list[tuple[int, str | None, int]]:
        out = []
        async with aiohttp.ClientSession() as http:
            for _ in range(4):
                async with http.get(f"{sim.rest_url}/api/v1/orderBooks") as r:
                    out.append((r.status, r.headers.get("Retry-After"), (await r.json())["code"]))
        return out

    assert run(client()) == [
        (429, "3", 23000),
        (429, "3", 23000),
        (503, None, 29500),
        (200, None, 200),
    ]
    sim.call(lambda s: s.faults.http_timeouts(1, 0.5))

    async def slow() -> tuple[str, float]:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        async with aiohttp.ClientSession() as http:
            try:
                async with http.get(
                    f"{sim.rest_url}/api/v1/orderBooks", timeout=aiohttp.ClientTimeout(total=0.2)
                ) as r:
                    return f"status {r.status}", loop.time() - t0
            except TimeoutError:
                return "timeout", loop.time() - t0

    outcome, _ = run(slow())
    assert outcome == "timeout"
    assert len(sim.call(lambda s: s.truth.faults("http_status_storm", "applied"))) == 3
    assert len(sim.call(lambda s: s.truth.faults("http_timeouts", "applied"))) == 1


# ---------------------------------------------------------------- account, clock
def test_out_of_band_fill_and_liquidation(sim: SimThread) -> None:
    tid = sim.call(lambda s: s.faults.out_of_band_fill(MAIN, ETH, "buy", 500, 300_000))
    pos = sim.call(lambda s: s.truth.position(MAIN, ETH))
    assert pos.size == 500
    fills = sim.call(lambda s: s.truth.fills(MAIN))
    assert [f.trade_id for f in fills] == [tid]
    assert sim.call(lambda s: s.truth.order(fills[0].taker_order_index).client_order_index) == 0
    now = sim.call(lambda s: s.clock.wall_ms())
    sim.call(lambda s: s.submit(14, tx(now, 0, 9, price=280_000)))
    liq = sim.call(lambda s: s.faults.liquidation(MAIN, ETH))
    assert liq is not None
    assert sim.call(lambda s: s.truth.position(MAIN, ETH)).size == 0
    assert sim.call(lambda s: s.truth.order_by_coi(MAIN, 9).status) == "canceled-liquidation"
    recs = sim.call(lambda s: [(r.kind, r.details.get("trade_id")) for r in s.truth.faults()])
    assert recs == [("out_of_band_fill", tid), ("liquidation", liq)]


def test_wall_offset_moves_the_venue_clock() -> None:
    async def main() -> int:
        ts = ScaledTime(1.0, start_wall_ms=1_800_000_000_000)
        async with Simulator(stand_in(seed=2, speed_bumps=False), ts) as sim:
            sim.faults.wall_offset_ms(-30_000)
            skew = sim.clock.wall_ms() - ts.wall_ms()
            assert sim.truth.faults("wall_offset_ms")[0].details == {"ms": -30_000}
            return skew

    assert -30_010 <= asyncio.run(main()) <= -29_990


# ---------------------------------------------------------------- control endpoint
def test_control_endpoint_injects_and_reads_truth(sim: SimThread, run) -> None:
    async def client() -> tuple[Any, ...]:
        async with aiohttp.ClientSession() as http:
            base = sim.sim.control_url  # type: ignore[union-attr]
            async with http.post(
                f"{base}/faults",
                json={
                    "kind": "out_of_band_fill",
                    "args": {
                        "account": MAIN,
                        "market": ETH,
                        "side": "sell",
                        "size": 200,
                        "price": 300_000,
                    },
                },
            ) as r:
                ok = await r.json()
            async with http.post(f"{base}/faults", json={"kind": "rm -rf", "args": {}}) as r:
                bad = (r.status, await r.json())
            async with http.get(
                f"{base}/truth/position", params={"account": MAIN, "market": ETH}
            ) as r:
                pos = await r.json()
            async with http.get(f"{base}/truth/faults") as r:
                faults = await r.json()
            return ok, bad, pos, faults

    ok, bad, pos, faults = run(client())
    assert ok["ok"] is True and isinstance(ok["result"], int)
    assert bad[0] == 400 and bad[1]["ok"] is False
    assert pos["result"]["size"] == -200
    assert [f["kind"] for f in faults["result"]] == ["out_of_band_fill"]
    assert "POST /_sim/faults" not in sim.call(lambda s: s.truth.request_counts())


def test_control_refuses_bad_fault_arguments_with_clear_messages(sim: SimThread, run) -> None:
    """Durations and counts are bounded, types checked, names known; every refusal is a JSON
    error that says what is wrong, and nothing is injected."""
    cases = [
        ({"kind": "stall", "args": {"seconds": 1e308}}, "stall: seconds must be a number"),
        ({"kind": "delay_acks", "args": {"ms": 1e300}}, "delay_acks: ms must be a number"),
        ({"kind": "delay_acks", "args": {"ms": "5"}}, "delay_acks: ms must be"),
        ({"kind": "http_status_storm", "args": {"status": 429, "n": 10**9}}, "n must be an"),
        ({"kind": "book_gap", "args": {"market": ETH, "count": True}}, "count must be"),
        ({"kind": "refuse_connections", "args": {"on": "yes"}}, "on must be true or false"),
        ({"kind": "out_of_band_fill", "args": {"market": ETH}}, "missing a required argument"),
        ({"kind": "stall", "args": {"seconds": 1, "colour": 3}}, "unexpected keyword"),
        ({"kind": "wall_offset_ms", "args": {"ms": -(10**10)}}, "wall_offset_ms: ms must be"),
        ({"kind": "nope", "args": {}}, "unknown fault kind 'nope' (one of drop, stall"),
    ]

    async def client() -> list[tuple[int, dict[str, Any]]]:
        out = []
        async with aiohttp.ClientSession() as http:
            base = sim.sim.control_url  # type: ignore[union-attr]
            for body, _ in cases:
                async with http.post(f"{base}/faults", json=body) as r:
                    out.append((r.status, await r.json()))
            async with http.post(f"{base}/faults", data=b"{not json") as r:
                out.append((r.status, await r.json()))
            async with http.get(f"{base}/truth/position", params={"market": ETH}) as r:
                out.append((r.status, await r.json()))
        return out

    got = run(client())
    for (status, body), (_, want) in zip(got, cases, strict=False):
        assert status == 400 and body["ok"] is False and want in body["error"], body
    assert got[-2][0] == 400 and got[-2][1]["error"].startswith("the body is not JSON")
    assert got[-1][0] == 400 and got[-1][1]["error"] == "missing 'account'"
    assert sim.call(lambda s: s.truth.faults()) == []
    # Within bounds it still injects (and a drop's code may be a string).
    sim.call(lambda s: s.faults.apply("stall", {"seconds": 0.01}))
    sim.call(lambda s: s.faults.apply("drop", {"code": "rst", "conn": "nobody"}))
    assert [f.kind for f in sim.call(lambda s: s.truth.faults())] == ["stall", "drop"]


def _book_fault_storm(count: int) -> tuple[int, int, int]:
    """`count` random gap/duplicate/reorder faults on a busy feed; returns (injected, chain
    breaks seen by a checking client, deltas received)."""
    kinds = ("book_gap", "book_duplicate", "book_reorder")

    async def main() -> tuple[int, int, int]:
        async with Simulator(
            stand_in(
                seed=3,
                speed_bumps=False,
                rate_limits=False,
                ws_ping_interval_ms=600_000,
                book_batch_ms=0,
            )
        ) as sim:
            ws = await book_client(sim.ws_url)
            last = nonces(await recv(ws))[1]
            acct = sim.system_account(exclude=MAIN)
            rng = __import__("random").Random(count)
            breaks = deltas = 0
            for i in range(count):
                getattr(sim.faults, rng.choice(kinds))(ETH)
                for j in range(3):  # enough changes to flush a held (reordered) delta
                    sim.run_engine(
                        lambda p=280_000 - (i * 3 + j) % 500: sim.exchange.place_direct(
                            acct, ETH, False, p, 100
                        )
                    )
                while True:
                    try:
                        m = await recv(ws, 0.05)
                    except TimeoutError:
                        break
                    begin, nonce = nonces(m)
                    deltas += 1
                    if begin != last:
                        breaks += 1
                    last = nonce
            await ws.close()
            return len(sim.truth.faults(phase="applied")), breaks, deltas

    return asyncio.run(main())


def test_book_fault_storm_every_fault_breaks_the_chain() -> None:
    applied, breaks, deltas = _book_fault_storm(40)
    assert applied == 40 and deltas > 0
    assert breaks >= applied  # each gap, duplicate and reorder is visible to a chain check


@pytest.mark.soak
def test_book_fault_storm_soak() -> None:
    applied, breaks, _ = _book_fault_storm(1000)
    assert applied == 1000 and breaks >= applied
