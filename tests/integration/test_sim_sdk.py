"""The official lighter-sdk clients work against the simulator unchanged."""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp
import lighter
import pytest
import websockets
from lighter.signer_client import create_api_key

from mmfast._core import signer as S
from mmfast.sim.engine import TX_CREATE_ORDER
from mmfast.sim.thread import SimThread

ACCOUNT = 1001  # the funded account of the default config
OTHER = 2002
KEY = 3


OTHER_SK = "5a" * 40  # the second trader's throwaway key (mmfast's native signer)


def _rest_order(
    st: SimThread, account: int, coi: int, price: int, size: int, is_ask: bool, nonce: int
) -> None:
    """Place a GTT order directly in the engine (a second trader, natively signed)."""

    def place(sim):  # runs on the simulator thread
        if account not in sim.exchange.accounts:
            sim.exchange.add_account(account, 10**12)
            sim.exchange.register_api_key(account, 0, S.public_key(OTHER_SK))
        now = sim.clock.wall_ms()
        info, _hash = S.sign_tx(
            "create_order",
            {
                "market_index": 0,
                "client_order_index": coi,
                "base_amount": size,
                "price": price,
                "is_ask": int(is_ask),
                "order_type": 0,
                "time_in_force": 1,
                "reduce_only": 0,
                "trigger_price": 0,
                "order_expiry": now + 3_600_000,
            },
            sk=OTHER_SK,
            chain_id=sim.config.chain_id,
            account_index=account,
            api_key_index=0,
            nonce=nonce,
            expired_at=now + 600_000,
        )
        return sim.exchange.submit(TX_CREATE_ORDER, info)

    st.call(place)


def test_ws_client_receives_order_book(sim: SimThread, run) -> None:
    _rest_order(sim, OTHER, 1, 300_100, 150, True, 0)
    _rest_order(sim, OTHER, 2, 299_900, 250, False, 1)
    states: list[dict] = []

    async def main() -> None:
        got_snapshot = asyncio.Event()
        got_delta = asyncio.Event()

        def on_book(market_id, book):
            states.append(json.loads(json.dumps(book)))
            (got_delta if got_snapshot.is_set() else got_snapshot).set()

        client = lighter.WsClient(
            order_book_ids=[0],
            account_ids=[],
            ws_url=sim.ws_url,
            on_order_book_update=on_book,
            on_account_update=lambda *_: None,
        )
        task = asyncio.create_task(client.run_async())
        try:
            await asyncio.wait_for(got_snapshot.wait(), 5)
            # a new level after the snapshot arrives as a delta the SDK merges
            await asyncio.to_thread(_rest_order, sim, OTHER, 3, 300_200, 70, True, 2)
            await asyncio.wait_for(got_delta.wait(), 5)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            if client.ws is not None:
                await client.ws.close()

    run(main())
    first = states[0]
    assert first["asks"] == [{"price": "3001.00", "size": "0.0150"}]
    assert first["bids"] == [{"price": "2999.00", "size": "0.0250"}]
    last = states[-1]
    assert sorted(a["price"] for a in last["asks"]) == ["3001.00", "3002.00"]


def test_rest_client_reads_details_and_next_nonce(sim: SimThread, run) -> None:
    async def main():
        api = lighter.ApiClient(configuration=lighter.Configuration(host=sim.rest_url))
        try:
            details = await lighter.OrderApi(api).order_book_details(market_id=0)
            nonce = await lighter.TransactionApi(api).next_nonce(
                account_index=ACCOUNT, api_key_index=KEY
            )
            books = await lighter.OrderApi(api).order_books()
            return details, nonce, books
        finally:
            await api.close()

    details, nonce, books = run(main())
    d = details.order_book_details[0]
    assert (d.market_id, d.symbol, d.size_decimals, d.price_decimals) == (0, "ETH", 4, 2)
    assert (d.min_base_amount, d.min_quote_amount) == ("0.0050", "10.000000")
    assert nonce.nonce == 0
    assert [b.market_id for b in books.order_books] == [0, 1]


def test_rest_client_error_is_bad_request(sim: SimThread, run) -> None:
    async def main():
        api = lighter.ApiClient(configuration=lighter.Configuration(host=sim.rest_url))
        try:
            await lighter.OrderApi(api).order_book_details(market_id=77)
        finally:
            await api.close()

    with pytest.raises(lighter.exceptions.BadRequestException) as ei:
        run(main())
    assert json.loads(ei.value.body) == {"code": 21602, "message": "invalid market index: 77"}


def test_signed_order_via_send_tx_is_open_and_streamed(sim: SimThread, run) -> None:
    chain_id = sim.config.chain_id
    assert chain_id not in (300, 304, 466324)

    async def main():
        priv, pub, err = create_api_key()
        assert err is None
        # The simulator verifies signatures: register the key through the control endpoint.
        async with (
            aiohttp.ClientSession() as s,
            s.post(
                f"{sim.rest_url}/_sim/api_keys",
                json={"account_index": ACCOUNT, "api_key_index": KEY, "public_key": pub},
            ) as r,
        ):
            assert r.status == 200, await r.text()
        client = lighter.SignerClient(
            url=sim.rest_url, account_index=ACCOUNT, api_private_keys={KEY: priv}, chain_id=chain_id
        )
        api = lighter.ApiClient(configuration=lighter.Configuration(host=sim.rest_url))
        try:
            token, err = client.create_auth_token_with_expiry(api_key_index=KEY)
            assert err is None
            async with websockets.connect(sim.ws_url) as ws:
                assert json.loads(await ws.recv())["type"] == "connected"
                await ws.send(
                    json.dumps(
                        {
                            "type": "subscribe",
                            "channel": f"account_all_orders/{ACCOUNT}",
                            "auth": token,
                        }
                    )
                )
                snap = json.loads(await ws.recv())
                assert snap["type"] == "subscribed/account_all_orders"
                assert snap["orders"] == {}
                expiry = int(time.time() * 1000) + 3_600_000
                tx_type, tx_info, _tx_hash, err = client.sign_create_order(
                    0,
                    4242,
                    1000,
                    295_000,
                    0,
                    client.ORDER_TYPE_LIMIT,
                    client.ORDER_TIME_IN_FORCE_GOOD_TILL_TIME,
                    False,
                    0,
                    expiry,
                    nonce=0,
                    api_key_index=KEY,
                )
                assert err is None
                resp = await client.send_tx(tx_type=tx_type, tx_info=tx_info)
                assert resp.code == 200 and resp.tx_hash == _tx_hash  # the signer's hash
                while True:
                    msg = json.loads(await asyncio.wait_for(ws.recv(), 5))
                    if msg["type"] == "update/account_all_orders":
                        break
            active = await lighter.OrderApi(api).account_active_orders(
                authorization=token, account_index=ACCOUNT, market_id=0
            )
            nonce = await lighter.TransactionApi(api).next_nonce(
                account_index=ACCOUNT, api_key_index=KEY
            )
            return msg, active, nonce
        finally:
            await api.close()
            await client.close()

    msg, active, nonce = run(main())
    streamed = msg["orders"]["0"][0]
    assert (streamed["client_order_index"], streamed["status"]) == (4242, "open")
    assert (streamed["price"], streamed["remaining_base_amount"]) == ("2950.00", "0.1000")
    [order] = active.orders
    assert (order.client_order_index, order.status, order.price) == (4242, "open", "2950.00")
    assert order.order_index >= 2**48
    assert nonce.nonce == 1
    truth = sim.call(lambda s: s.truth.open_orders(ACCOUNT))
    assert [(o.client_order_index, o.price, o.remaining) for o in truth] == [(4242, 295_000, 1000)]
