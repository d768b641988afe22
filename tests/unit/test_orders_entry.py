"""OrderEntry offline: argument rules, batch-reject isolation, identical resend after a lost
send, cancel-all scope, and a stale orders snapshot after newer fills (item 19). A stand-in
venue (nonce rule, minimum size, atomic batches) and signer replace the network."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from mmfast.connector.lighter.budget import PREMIUM, RateBudget
from mmfast.connector.lighter.coi import CoiAllocator
from mmfast.connector.lighter.orders import OrderEntry, OrderEntryConfig, OrderEntryError
from mmfast.connector.lighter.rest import LighterApiError, OutcomeUnknown, SendTxResult
from mmfast.connector.lighter.signer import SignedTx
from mmfast.connector.lighter.tracker import OrderTracker
from mmfast.core.events import EventBus
from mmfast.core.types import OrderStatus, Side, TimeInForce

ACCOUNT, KEY = 1001, 3
MARKETS = {0: SimpleNamespace(market_id=0, symbol="ETH", price_decimals=2, size_decimals=4)}


class Clock:
    """A TimeSource stand-in: real loop waits, a fixed wall clock."""

    scale = 1.0

    def monotonic_ns(self) -> int:
        return int(asyncio.get_running_loop().time() * 1e9)

    def wall_ms(self) -> int:
        return 1_800_000_000_000

    async def sleep(self, s: float) -> None:
        await asyncio.sleep(s)

    def call_later(self, s: float, cb: Any, *a: Any) -> asyncio.TimerHandle:
        return asyncio.get_running_loop().call_later(s, cb, *a)


class Signer:
    """Signs instantly (on the loop, next iteration) into a tx_info with the request's fields."""

    def __init__(self) -> None:
        self.signed = 0
        self._sig = itertools.count(1)

    def submit(self, req: Any, cb: Any) -> None:
        info = {
            "AccountIndex": ACCOUNT,
            "ApiKeyIndex": KEY,
            "Nonce": req.nonce,
            "ExpiredAt": 1_800_000_000_000 + 600_000,
            "Sig": f"sig{next(self._sig)}",
        }
        for k, v in getattr(req, "expected_fields", dict)().items():
            info[k] = v
        text = orjson.dumps(info).decode()
        self.signed += 1
        s = SignedTx(req, req.TX_TYPE, text, info, f"{req.nonce:080x}", req.nonce, 0, 1, 1)
        asyncio.get_running_loop().call_soon(cb, s, None)


class Venue:
    """REST stand-in: nonce rule (21104), minimum size (21706), atomic batches."""

    def __init__(self) -> None:
        self.nonce = 10
        self.accepted: list[dict[str, Any]] = []
        self.texts: list[str] = []
        self.lose_next = 0  # sends that raise OutcomeUnknown without reaching the venue
        self.requests = 0
        self.batch_sizes: list[int] = []  # txs per request
        self.predicted_after_ms: int | None = None  # predicted_execution_time_ms - now

    async def next_nonce(self, a: int, k: int) -> int:
        return self.nonce

    def _check(self, infos: list[dict[str, Any]]) -> None:
        for i, f in enumerate(infos):
            if f["Nonce"] != self.nonce + i:
                raise LighterApiError(21104, "invalid nonce")
            if f.get("BaseAmount", 100) < 50:
                raise LighterApiError(21706, "invalid order amount")

    async def send_tx(self, t: int, text: str, priority: Any = None) -> SendTxResult:
        return await self.send_tx_batch([t], [text])

    async def send_tx_batch(
        self, types: list[int], texts: list[str], priority: Any = None
    ) -> SendTxResult:
        self.requests += 1
        self.batch_sizes.append(len(texts))
        await asyncio.sleep(0)
        if self.lose_next:
            self.lose_next -= 1
            raise OutcomeUnknown("sendTx: timeout")
        infos = [orjson.loads(x) for x in texts]
        self._check(infos)
        self.nonce += len(infos)
        self.accepted += infos
        self.texts += texts
        hashes = tuple(f"h{f['Nonce']}" for f in infos)
        pet = (
            None if self.predicted_after_ms is None else Clock().wall_ms() + self.predicted_after_ms
        )
        return SendTxResult(hashes if len(infos) > 1 else hashes[0], pet, None, "")

    async def tx(self, h: str, priority: Any = None) -> dict[str, Any]:
        raise LighterApiError(21500, "not found")

    async def account_orders(self, a: int, cois: list[int], priority: Any = None) -> list[Any]:
        return []


def make(tmp_path: Path, **cfg: Any) -> tuple[OrderEntry, Venue, Signer, OrderTracker]:
    venue, signer = Venue(), Signer()
    tracker = OrderTracker(EventBus(), MARKETS, account_index=ACCOUNT)
    coi = CoiAllocator("test", ACCOUNT, KEY, state_dir=tmp_path).open()
    args: dict[str, Any] = dict(use_ws=False, state_dir=str(tmp_path), check_interval_s=0.05)
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
    return e, venue, signer, tracker


async def settle(e: OrderEntry, n: int = 400) -> None:
    for _ in range(n):
        await asyncio.sleep(0)
        if e.pending_txs == 0 and e.nonces.unknown_count == 0 and e.nonce_ready:
            return
    raise AssertionError(e.status())


def test_config_rules() -> None:
    for bad in (
        dict(max_inflight_per_market=17),
        dict(max_batch=16),
        dict(ack_timeout_s=0),
        dict(quote_expiry_s=60),
        dict(unexpected_orders="ignore"),
        dict(leverage={0: (0, 0)}),
        dict(max_cancel_attempts=0),
    ):
        with pytest.raises(ValueError):
            OrderEntryConfig(**bad)
    assert OrderEntryConfig().max_inflight_per_market == 16


def test_place_limit_argument_rules(tmp_path: Path) -> None:
    async def body() -> None:
        e, *_ = make(tmp_path)
        now = Clock().wall_ms()
        with pytest.raises(OrderEntryError, match="IOC"):
            e.place_limit(0, Side.BUY, 100, 100, tif=TimeInForce.IOC, expiry_ms=now + 600_000)
        for ahead in (60_000, 4 * 60_000, 31 * 86_400_000):
            with pytest.raises(OrderEntryError, match=r"5 min\.\.30 days"):
                e.place_limit(0, Side.BUY, 100, 100, tif=TimeInForce.GTT, expiry_ms=now + ahead)
        with pytest.raises(OrderEntryError):
            e.place_limit(7, Side.BUY, 100, 100)
        with pytest.raises(OrderEntryError):
            e.place_limit(0, Side.BUY, 0, 100)
        ioc = e.place_limit(0, Side.BUY, 100, 100, tif=TimeInForce.IOC)
        assert ioc.expiry_ms == 0
        quote = e.place_limit(0, Side.SELL, 100, 100)
        assert quote.tif is TimeInForce.POST_ONLY and quote.expiry_ms == now + 600_000
        gtt = e.place_limit(0, Side.SELL, 100, 100, tif=TimeInForce.GTT, expiry_ms=now + 86_400_000)
        assert gtt.expiry_ms == now + 86_400_000
        # The shipped configs' 305 s (the minimum plus 5 s of slack), computed by a strategy a
        # moment before this check (a second of a 4x simulated clock): accepted. A 300 s run
        # at --time-scale 4 had 4 of its 201 places refused this way ("got 305 s ahead").
        late = e.place_limit(0, Side.BUY, 100, 100, expiry_ms=now + 305_000 - 1_000)
        assert late.expiry_ms == now + 304_000
        with pytest.raises(OrderEntryError, match=r"got 301\.999 s ahead"):
            e.place_limit(0, Side.BUY, 100, 100, expiry_ms=now + 301_999)
        e.coi.close()

    asyncio.run(body())


def test_no_batch_over_the_venues_cap_leaves(tmp_path: Path) -> None:
    """40 orders signed before the first ack go out in batches of at most 15 txs (the venue's
    sendTxBatch cap since early 2026; a 16-tx batch is refused whole, 21514)."""
    from mmfast.connector.lighter.orders import VENUE_MAX_BATCH

    async def body() -> None:
        e, venue, _, _ = make(tmp_path, max_inflight_per_market=16)
        e.start()
        await settle(e)
        for i in range(40):
            e.place_limit(0, Side.BUY, 1000 + i, 100)
        await settle(e, 4000)
        assert len(venue.accepted) == 40
        assert max(venue.batch_sizes) == VENUE_MAX_BATCH == 15, venue.batch_sizes
        e.coi.close()

    asyncio.run(body())


def test_the_venues_predicted_execution_is_kept_beside_the_ack(tmp_path: Path) -> None:
    """``predicted_execution_time_ms`` of each answer, as a delay after the send, beside the
    measured ack latency; absent from the answers, no row."""

    async def body() -> None:
        e, venue, _, _ = make(tmp_path)
        e.start()
        await settle(e)
        e.place_limit(0, Side.BUY, 1000, 100)
        await settle(e)
        assert "predicted" not in e.latency()
        venue.predicted_after_ms = 50
        for i in range(5):
            e.place_limit(0, Side.BUY, 1001 + i, 100)
            await settle(e)
        lat = e.latency()
        assert lat["predicted"]["n"] == 5 and lat["ack"]["n"] == 6
        # 50 ms after the answer, plus the send->ack time (the clock's wall stands still)
        assert 50_000 <= lat["predicted"]["p50_us"] <= 50_000 + lat["ack"]["p99_us"] + 1
        e.coi.close()

    asyncio.run(body())


def test_batch_reject_isolates_the_tx_at_fault(tmp_path: Path) -> None:
    """A batch refused whole (one tx below the minimum) is re-sent one tx per frame: only the
    one at fault is REJECTED, no nonce is used twice, no 21104."""

    async def body() -> None:
        e, venue, _, tracker = make(tmp_path)
        e.start()
        await settle(e)
        venue.lose_next = 0
        orders = [
            e.place_limit(0, Side.BUY, 1000 + i, 1 if i == 5 else 100) for i in range(12)
        ]  # signed before the first ack: batches
        await settle(e)
        bad = orders[5]
        assert bad.status is OrderStatus.REJECTED
        assert tracker.get(bad.client_order_index).reject_code == 21706
        assert all(o.status is OrderStatus.PENDING_NEW for o in orders if o is not bad)
        nonces = [f["Nonce"] for f in venue.accepted]
        assert nonces == list(range(10, 21))  # 11 accepted, consecutive, none twice
        cois = [f["ClientOrderIndex"] for f in venue.accepted]
        assert len(set(cois)) == 11 and bad.client_order_index not in cois
        assert e.reject_codes.get(21104, 0) == 0 and e.reject_codes[21706] >= 2
        assert e.frames_rest < 12 + 2  # batches went out
        await e.stop()
        e.coi.close()

    asyncio.run(body())


def test_lost_send_is_resent_with_identical_bytes(tmp_path: Path) -> None:
    async def body() -> None:
        e, venue, signer, tracker = make(tmp_path)
        e.start()
        await settle(e)
        venue.lose_next = 1  # the send never reaches the venue: nonce not consumed
        o = e.place_limit(0, Side.BUY, 1000, 100)
        await settle(e)
        first = e.signed_create(o.client_order_index)
        assert first is not None
        assert venue.texts == [first.tx_info]  # the identical signed bytes, sent again
        assert signer.signed == 1 and e.identical_resends == 1 and e.unknowns == 1
        assert tracker.get(o.client_order_index).status is OrderStatus.PENDING_NEW
        await e.stop()
        e.coi.close()

    asyncio.run(body())


def test_cancel_all_scope(tmp_path: Path) -> None:
    async def body() -> None:
        e, *_ = make(tmp_path)
        with pytest.raises(OrderEntryError, match="configured market"):
            e.cancel_all(None)
        with pytest.raises(OrderEntryError, match="allow_all_markets_cancel"):
            e.cancel_all(None, all_markets=True)
        e.coi.close()
        e2, *_ = make(tmp_path / "b", allow_all_markets_cancel=True)
        tx = e2.cancel_all(None, all_markets=True)
        assert tx.request(1).all_markets and tx.request(1).market is None
        assert e2.cancel_all(0).request(2).market == 0
        e2.coi.close()

    asyncio.run(body())


def test_stale_snapshot_after_newer_fills_rolls_nothing_back(tmp_path: Path) -> None:
    """Item 19: fills booked, then an orders snapshot older than them says "open", 0 filled:
    no fill is rolled back and the state stays as the fills made it."""

    async def body() -> None:
        e, _, _, tracker = make(tmp_path)
        o = e.place_limit(0, Side.BUY, 300_000, 1000)
        coi = o.client_order_index
        base = {
            "order_index": 2**48 + 5,
            "client_order_index": coi,
            "market_index": 0,
            "initial_base_amount": "0.1000",
            "price": "3000.00",
            "is_ask": False,
        }
        e.on_account_orders(
            0,
            [{**base, "status": "open", "filled_base_amount": "0.0000", "transaction_time": 100}],
            True,
        )
        trade = {
            "trade_id": 77,
            "market_id": 0,
            "price": "3000.00",
            "size": "0.0400",
            "usd_amount": "120.000000",
            "bid_account_id": ACCOUNT,
            "ask_account_id": 9,
            "bid_client_id": coi,
            "ask_client_id": 0,
            "bid_id": 2**48 + 5,
            "ask_id": 1,
            "is_maker_ask": False,
            "maker_fee": 28,
            "taker_fee": 196,
        }
        e.on_account_trades(0, [trade], False)
        e.on_account_orders(
            0,
            [{**base, "status": "open", "filled_base_amount": "0.0400", "transaction_time": 300}],
            False,
        )
        assert o.filled_lots == 400 and o.status is OrderStatus.PARTIALLY_FILLED
        # The stale snapshot (older transaction_time, nothing filled) arrives late.
        e.on_account_orders(
            0,
            [{**base, "status": "open", "filled_base_amount": "0.0000", "transaction_time": 200}],
            True,
        )
        e.on_account_trades(0, [trade], True)  # and the trade is replayed
        assert o.filled_lots == 400 and o.status is OrderStatus.PARTIALLY_FILLED
        assert tracker.get(coi).fill_lots == 400
        assert tracker.replayed_position(0).size_lots == 400
        assert e.out_of_band == 0 and tracker.duplicate_fills == 1
        e.coi.close()

    asyncio.run(body())
