"""Book history (SimConfig.book_history / GET /_sim/truth/book): the simulator's recorded book
at each nonce equals the book a client rebuilds from the order_book channel at that nonce."""

from __future__ import annotations

import asyncio
import json
import time
from decimal import Decimal
from typing import Any

import aiohttp
import pytest
from websockets.asyncio.client import connect

from mmfast.sim.config import FlowConfig, SimConfig
from mmfast.sim.thread import SimThread

MARKETS = (0, 1)
Book = tuple[list[list[int]], list[list[int]]]  # (asks ascending, bids descending)


@pytest.fixture
def sim_config() -> SimConfig:
    # One delta per book change (no 50 ms batches): every recorded nonce is published.
    return SimConfig(
        seed=21,
        flow=FlowConfig(),
        book_history=5000,
        speed_bumps=False,
        tier="premium",
        verify_signatures=False,
        ws_ping_interval_ms=1000,
        ws_pong_timeout_ms=5000,
        book_batch_ms=0,
    )


class ClientBook:
    """A market's book rebuilt from the order_book channel: snapshot, then chained deltas with
    absolute level sizes ("0" deletes a level)."""

    def __init__(self, price_decimals: int, size_decimals: int) -> None:
        self.px = 10**price_decimals
        self.sz = 10**size_decimals
        self.asks: dict[int, int] = {}
        self.bids: dict[int, int] = {}
        self.nonce: int | None = None

    def _apply(self, side: dict[int, int], levels: list[dict[str, str]]) -> None:
        for lv in levels:
            price = int(Decimal(lv["price"]) * self.px)
            size = int(Decimal(lv["size"]) * self.sz)
            if size:
                side[price] = size
            else:
                side.pop(price, None)

    def on_message(self, msg: dict[str, Any]) -> int:
        ob = msg["order_book"]
        if msg["type"] == "subscribed/order_book":
            self.asks.clear()
            self.bids.clear()
        else:
            assert ob["begin_nonce"] == self.nonce  # chained: nothing lost in between
        self._apply(self.asks, ob["asks"])
        self._apply(self.bids, ob["bids"])
        self.nonce = ob["nonce"]
        return self.nonce

    def levels(self) -> Book:
        return (
            [[p, self.asks[p]] for p in sorted(self.asks)],
            [[p, self.bids[p]] for p in sorted(self.bids, reverse=True)],
        )


async def _get(http: aiohttp.ClientSession, url: str) -> tuple[int, dict[str, Any]]:
    async with http.get(url) as r:
        return r.status, await r.json()


def test_recorded_books_equal_the_books_rebuilt_from_the_feed(sim: SimThread, run) -> None:
    specs = {m.market_id: m for m in sim.config.markets}
    truth = f"{sim.rest_url}/_sim/truth/book"

    async def main() -> tuple[dict[int, dict[int, Book]], list[tuple[int, dict[str, Any]]]]:
        books = {m: ClientBook(specs[m].price_decimals, specs[m].size_decimals) for m in MARKETS}
        seen: dict[int, dict[int, Book]] = {m: {} for m in MARKETS}
        async with connect(sim.ws_url, max_size=None) as ws:
            for m in MARKETS:
                await ws.send(json.dumps({"type": "subscribe", "channel": f"order_book/{m}"}))
            crossed = False
            end = time.monotonic() + 3.0
            while time.monotonic() < end:
                msg = json.loads(await asyncio.wait_for(ws.recv(), 5))
                if msg.get("type") == "ping":
                    await ws.send('{"type":"pong"}')
                    continue
                if not msg.get("type", "").endswith("/order_book"):
                    continue
                m = int(msg["channel"].split(":")[1])
                nonce = books[m].on_message(msg)
                seen[m][nonce] = books[m].levels()
                if not crossed and len(seen[1]) > 20:
                    # a phantom bid above the best ask: the history shows the book as published
                    crossed = True
                    sim.call(lambda s: s.faults.book_crossed(1, 0.5))
        async with aiohttp.ClientSession() as http:
            answers = []
            for m in MARKETS:
                for nonce in seen[m]:
                    answers.append(await _get(http, f"{truth}?market={m}&nonce={nonce}"))
            current = await _get(http, f"{truth}?market=0")
            oldest = min(seen[0])
            past = await _get(http, f"{truth}?market=0&nonce=1")
            gaps = [n for n in range(oldest, max(seen[0])) if n not in seen[0]]
            between = await _get(http, f"{truth}?market=0&nonce={gaps[0]}")
            unknown = await _get(http, f"{truth}?market=7&nonce={oldest}")
            missing = await _get(http, f"{truth}?nonce={oldest}")
        answers += [current, past, between, unknown, missing]
        return seen, answers

    seen, answers = run(main())
    # The closed connection left no per-channel state behind.
    deadline = time.monotonic() + 5
    while sim.call(lambda s: dict(s._subs)) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sim.call(lambda s: (dict(s._subs), s.open_connections())) == ({}, [])
    *per_nonce, current, past, between, unknown, missing = answers
    # Dozens of nonces per market, the phantom bid among them.
    assert all(len(seen[m]) >= 40 for m in MARKETS), {m: len(seen[m]) for m in MARKETS}
    i = 0
    for m in MARKETS:
        for nonce, (asks, bids) in seen[m].items():
            status, body = per_nonce[i]
            i += 1
            assert status == 200 and body["ok"] is True
            assert body["result"] == {"market": m, "nonce": nonce, "asks": asks, "bids": bids}
    crossed = [b for b in seen[1].values() if b[0] and b[1] and b[1][0][0] >= b[0][0][0]]
    assert crossed  # books with the phantom bid were compared too
    status, body = current
    assert status == 200 and body["result"]["market"] == 0
    assert body["result"]["nonce"] >= max(seen[0])
    assert body["result"]["bids"][0][0] < body["result"]["asks"][0][0]
    status, body = past
    assert status == 400 and body["ok"] is False and "outside the book history" in body["error"]
    status, body = between
    assert status == 400 and "not a book nonce" in body["error"]
    status, body = unknown
    assert status == 400 and body["ok"] is False and body["error"]
    status, body = missing
    assert status == 400 and body == {"ok": False, "error": "missing 'market'"}


def test_book_history_off_by_default() -> None:
    with SimThread(SimConfig(seed=2, verify_signatures=False)) as st:
        nonce = st.call(lambda s: s.exchange.markets[0].book_nonce)

        async def main() -> list[tuple[int, dict[str, Any]]]:
            async with aiohttp.ClientSession() as http:
                url = f"{st.rest_url}/_sim/truth/book?market=0"
                return [await _get(http, f"{url}&nonce={nonce}"), await _get(http, url)]

        (s1, off), (s2, cur) = asyncio.run(main())
    assert s1 == 400 and off["ok"] is False and "book history is off" in off["error"]
    assert s2 == 200 and cur["result"] == {"market": 0, "nonce": nonce, "asks": [], "bids": []}


def test_loop_lag_is_served() -> None:
    """The simulator measures its own event-loop lag (what a soak reads beside the bot's)."""
    import asyncio
    import urllib.request

    import orjson

    from mmfast.sim.config import SimConfig
    from mmfast.sim.server import Simulator

    async def go() -> dict[str, object]:
        async with Simulator(SimConfig(seed=1)) as sim:
            await asyncio.sleep(0.45)
            url = f"{sim.control_url}/truth/loop"
            body = await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=5).read())
            return dict(orjson.loads(body)["result"])

    st = asyncio.run(go())
    assert int(st["lag_samples"]) >= 3  # type: ignore[call-overload]
    assert 0.0 <= float(st["lag_p99_ms"]) <= float(st["lag_max_ms"]) + 0.1  # type: ignore[arg-type]


def test_read_clock_http_gives_the_simulators_clock() -> None:
    """What a bot or guard at a time scale anchors its clock to (docs/run.md)."""
    import asyncio

    from mmfast.core.timesource import ScaledTime
    from mmfast.sim.config import SimConfig
    from mmfast.sim.keys import read_clock_http
    from mmfast.sim.server import Simulator

    ahead_ms = 3_600_000

    async def go() -> tuple[int, float, int]:
        import time

        clock = ScaledTime(8.0, start_wall_ms=int(time.time() * 1000) + ahead_ms)
        async with Simulator(SimConfig(seed=1, flow=None), clock) as sim:
            wall, scale = await read_clock_http(sim.rest_url)
            return wall, scale, clock.wall_ms()

    wall, scale, after = asyncio.run(go())
    assert scale == 8.0
    assert after - 2_000 <= wall <= after  # the simulator's clock, an hour ahead of the host's
    try:
        asyncio.run(read_clock_http("http://127.0.0.1:9", timeout_s=1.0))
    except RuntimeError as exc:
        assert "could not read the clock" in str(exc)
    else:
        raise AssertionError("an unreachable simulator must raise")
