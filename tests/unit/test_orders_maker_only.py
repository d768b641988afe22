"""OrderEntry with a maker-only key (``maker_only``): what the key may not send is refused
before signing, whatever path it comes by; what it may send is signed as usual. A recording
signer and a REST stand-in (nonce rule only) replace the network."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from test_orders_entry import Clock  # the same stand-in clock

from mmfast.connector.lighter.budget import PREMIUM, RateBudget
from mmfast.connector.lighter.coi import CoiAllocator
from mmfast.connector.lighter.orders import (
    OrderEntry,
    OrderEntryConfig,
    OrderEntryError,
    TxKind,
    _Tx,
)
from mmfast.connector.lighter.rest import LighterApiError, SendTxResult
from mmfast.connector.lighter.signer import CreateOrderRequest, SignedTx
from mmfast.connector.lighter.tracker import OrderTracker
from mmfast.core.events import EventBus
from mmfast.core.types import Order, Side, TimeInForce

ACCOUNT, KEY = 1001, 5
WALL_MS = 1_800_000_000_000
MARKETS = {0: SimpleNamespace(market_id=0, symbol="ETH", price_decimals=2, size_decimals=4)}


class Signer:
    """Records every request it is asked to sign."""

    def __init__(self) -> None:
        self.requests: list[Any] = []
        self._sig = itertools.count(1)

    def submit(self, req: Any, cb: Any) -> None:
        self.requests.append(req)
        info = {
            "AccountIndex": ACCOUNT,
            "ApiKeyIndex": KEY,
            "Nonce": req.nonce,
            "ExpiredAt": WALL_MS + 600_000,
            "Sig": f"sig{next(self._sig)}",
            **req.expected_fields(),
        }
        s = SignedTx(
            req,
            req.TX_TYPE,
            orjson.dumps(info).decode(),
            info,
            f"{req.nonce:080x}",
            req.nonce,
            0,
            1,
            1,
        )
        asyncio.get_running_loop().call_soon(cb, s, None)


class Venue:
    def __init__(self) -> None:
        self.nonce = 0
        self.sent: list[dict[str, Any]] = []

    async def next_nonce(self, a: int, k: int) -> int:
        return self.nonce

    async def send_tx(self, t: int, text: str, priority: Any = None) -> SendTxResult:
        return await self.send_tx_batch([t], [text])

    async def send_tx_batch(
        self, types: list[int], texts: list[str], priority: Any = None
    ) -> SendTxResult:
        infos = [orjson.loads(x) for x in texts]
        for i, f in enumerate(infos):
            if f["Nonce"] != self.nonce + i:
                raise LighterApiError(21104, "invalid nonce")
        self.nonce += len(infos)
        self.sent += infos
        hashes = tuple(f"h{f['Nonce']}" for f in infos)
        return SendTxResult(hashes if len(infos) > 1 else hashes[0], None, None, "")

    async def tx(self, h: str, priority: Any = None) -> dict[str, Any]:
        raise LighterApiError(21500, "not found")

    async def account_orders(self, a: int, cois: list[int], priority: Any = None) -> list[Any]:
        return []


def make(tmp_path: Path, **cfg: Any) -> tuple[OrderEntry, Venue, Signer]:
    venue, signer = Venue(), Signer()
    tracker = OrderTracker(EventBus(), MARKETS, account_index=ACCOUNT)
    coi = CoiAllocator("test", ACCOUNT, KEY, state_dir=tmp_path).open()
    args: dict[str, Any] = dict(
        use_ws=False, state_dir=str(tmp_path), check_interval_s=0.05, maker_only=True
    )
    args.update(cfg)
    e = OrderEntry(
        OrderEntryConfig(**args),
        account_index=ACCOUNT,
        api_key_index=KEY,
        ws_url="ws://127.0.0.1:1/stream",
        signer=signer,  # type: ignore[arg-type]
        coi=coi,
        tracker=tracker,
        rest=venue,  # type: ignore[arg-type]
        budget=RateBudget(PREMIUM, Clock()),
        markets=MARKETS,  # type: ignore[arg-type]
        time=Clock(),
    )
    return e, venue, signer


async def settle(e: OrderEntry, n: int = 400) -> None:
    for _ in range(n):
        await asyncio.sleep(0)
        if e.pending_txs == 0 and e.nonce_ready:
            return
    raise AssertionError(e.status())


def test_leverage_with_a_maker_only_key_is_a_config_error() -> None:
    with pytest.raises(ValueError, match="maker-only API key may not send UpdateLeverage"):
        OrderEntryConfig(maker_only=True, leverage={0: (5, 0)})
    assert OrderEntryConfig(maker_only=False, leverage={0: (5, 0)}).leverage


@pytest.mark.parametrize("tif", [TimeInForce.IOC, TimeInForce.GTT])
def test_taker_capable_create_refused_before_signing(tmp_path: Path, tif: TimeInForce) -> None:
    async def body() -> tuple[Venue, Signer, OrderEntry]:
        e, venue, signer = make(tmp_path)
        e.start()
        await settle(e)
        expiry = 0 if tif is TimeInForce.IOC else WALL_MS + 600_000
        why = f"maker-only API key: creates must be post-only, not {tif.name}"
        with pytest.raises(OrderEntryError, match=why):
            e.place_limit(0, Side.BUY, 100_000, 100, tif=tif, expiry_ms=expiry)
        await settle(e)
        e.coi.close()
        return venue, signer, e

    venue, signer, e = asyncio.run(body())
    assert signer.requests == [] and venue.sent == []
    assert list(e.tracker.orders()) == []  # refused before any order was booked


def test_post_only_modify_and_cancels_are_signed_and_sent(tmp_path: Path) -> None:
    async def body() -> tuple[Venue, Signer]:
        e, venue, signer = make(tmp_path)
        e.start()
        await settle(e)
        o = e.place_limit(0, Side.BUY, 100_000, 100)  # post-only by default
        await settle(e)
        e.modify(o.client_order_index, 100_100, 100)
        e.cancel(o.client_order_index)
        e.cancel_all(0)
        await settle(e)
        e.coi.close()
        return venue, signer

    venue, signer = asyncio.run(body())
    kinds = [type(r).__name__ for r in signer.requests]
    assert kinds == [
        "CreateOrderRequest",
        "ModifyOrderRequest",
        "CancelOrderRequest",
        "CancelAllRequest",
    ]
    assert signer.requests[0].tif is TimeInForce.POST_ONLY
    assert [f["Nonce"] for f in venue.sent] == [0, 1, 2, 3]


def test_modify_of_an_order_that_is_not_post_only_refused(tmp_path: Path) -> None:
    async def body() -> Signer:
        e, _venue, signer = make(tmp_path)
        e.start()
        await settle(e)
        # A GTT order of ours this key did not place (e.g. from a run without maker_only).
        gtt = Order(
            e.coi.next(),
            0,
            Side.BUY,
            100_000,
            100,
            tif=TimeInForce.GTT,
            expiry_ms=WALL_MS + 600_000,
        )
        e.tracker.new_order(gtt)
        with pytest.raises(OrderEntryError, match="only post-only orders may be modified"):
            e.modify(gtt.client_order_index, 100_100, 100)
        e.cancel(gtt.client_order_index)  # a cancel is always allowed
        await settle(e)
        e.coi.close()
        return signer

    signer = asyncio.run(body())
    assert [type(r).__name__ for r in signer.requests] == ["CancelOrderRequest"]


def test_last_line_refuses_a_taker_create_that_bypassed_the_public_calls(tmp_path: Path) -> None:
    async def body() -> tuple[_Tx, Venue, Signer, OrderEntry]:
        e, venue, signer = make(tmp_path)
        e.start()
        await settle(e)
        e.tracker.new_order(Order(77, 0, Side.BUY, 100_000, 100, tif=TimeInForce.IOC))
        tx = _Tx(TxKind.CREATE, 0, 0)
        tx.coi, tx.price, tx.size, tx.is_ask = 77, 100_000, 100, False
        tx.tif, tx.expiry_ms = TimeInForce.IOC, 0
        e.nonces.submit(tx)
        await settle(e)
        # The nonce it was given is used by the next tx (it never reached the venue).
        e.place_limit(0, Side.SELL, 200_000, 100)
        await settle(e)
        e.coi.close()
        return tx, venue, signer, e

    tx, venue, signer, e = asyncio.run(body())
    assert tx.error == (None, "maker-only API key: creates must be post-only, not IOC")
    assert e.tracker.get(77).order.status.is_terminal
    assert all(
        isinstance(r, CreateOrderRequest) and r.tif is TimeInForce.POST_ONLY
        for r in signer.requests
    )
    assert [f["TimeInForce"] for f in venue.sent] == [int(TimeInForce.POST_ONLY)]
    assert venue.sent[0]["Nonce"] == 0


def test_without_maker_only_nothing_changes(tmp_path: Path) -> None:
    async def body() -> Signer:
        e, _venue, signer = make(tmp_path, maker_only=False)
        e.start()
        await settle(e)
        e.place_limit(0, Side.BUY, 100_000, 100, tif=TimeInForce.IOC)
        await settle(e)
        e.coi.close()
        return signer

    signer = asyncio.run(body())
    assert [r.tif for r in signer.requests] == [TimeInForce.IOC]
