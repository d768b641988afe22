"""Signatures, the venue's tx hash and key registration, against the running simulator with the
official signer (lighter-sdk's SignerClient) and mmfast's native one, over real sockets."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import lighter
import pytest
from lighter.signer_client import create_api_key
from websockets.asyncio.client import connect

from mmfast._core import signer as S
from mmfast.sim.engine import TX_CHANGE_PUB_KEY, TX_CREATE_ORDER
from mmfast.sim.errors import INVALID_SIGNATURE, WS_FAILED_TO_SUBSCRIBE
from mmfast.sim.thread import SimThread

ACCOUNT = 1001  # the funded account of the default config
KEY = 3
ETH_PRIVATE_KEY = "0x" + "11" * 32  # the ChangePubKey's L1 signature (not checked by the sim)


def _http(
    method: str,
    url: str,
    *,
    form: dict[str, str] | None = None,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    data = None
    hdrs = dict(headers or {})
    if form is not None:
        data = urllib.parse.urlencode(form).encode()
    elif body is not None:
        data = json.dumps(body).encode()
        hdrs["Content-Type"] = "application/json"
    req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def send_tx(st: SimThread, tx_type: int, tx_info: str) -> tuple[int, Any]:
    return _http(
        "POST", f"{st.rest_url}/api/v1/sendTx", form={"tx_type": str(tx_type), "tx_info": tx_info}
    )


def register(st: SimThread, pub: str, account: int = ACCOUNT, key: int = KEY) -> tuple[int, Any]:
    """Through the loopback control endpoint, as a process that started `mmfast sim` would."""
    return _http(
        "POST",
        f"{st.rest_url}/_sim/api_keys",
        body={"account_index": account, "api_key_index": key, "public_key": pub},
    )


def next_nonce(st: SimThread, key: int = KEY) -> int:
    return st.call(lambda s: s.exchange.next_nonce(ACCOUNT, key))


def open_orders(st: SimThread) -> list[int]:
    return [o.client_order_index for o in st.call(lambda s: s.truth.open_orders(ACCOUNT))]


def sign_create(client: Any, coi: int, nonce: int, price: int = 295_000) -> tuple[int, str, str]:
    expiry = int(time.time() * 1000) + 3_600_000
    tx_type, tx_info, tx_hash, err = client.sign_create_order(
        0,
        coi,
        1000,
        price,
        0,
        client.ORDER_TYPE_LIMIT,
        client.ORDER_TIME_IN_FORCE_GOOD_TILL_TIME,
        False,
        0,
        expiry,
        nonce=nonce,
        api_key_index=KEY,
    )
    assert err is None
    return tx_type, tx_info, tx_hash


def native_create(st: SimThread, sk: str, coi: int, nonce: int) -> tuple[int, str, str]:
    """A create signed by mmfast's native signer (the SDK's Go library holds one key per
    (account, key index) per process: a second SignerClient for the slot replaces the first)."""
    now = int(time.time() * 1000)
    info, h = S.sign_tx(
        "create_order",
        {
            "market_index": 0,
            "client_order_index": coi,
            "base_amount": 1000,
            "price": 295_000,
            "is_ask": 0,
            "order_type": 0,
            "time_in_force": 1,
            "reduce_only": 0,
            "trigger_price": 0,
            "order_expiry": now + 3_600_000,
        },
        sk=sk.removeprefix("0x"),
        chain_id=st.config.chain_id,
        account_index=ACCOUNT,
        api_key_index=KEY,
        nonce=nonce,
        expired_at=now + 600_000,
    )
    return TX_CREATE_ORDER, info, h.hex()


async def sdk_client(st: SimThread, priv: str) -> Any:
    return lighter.SignerClient(
        url=st.rest_url,
        account_index=ACCOUNT,
        api_private_keys={KEY: priv},
        chain_id=st.config.chain_id,
    )


def new_key() -> tuple[str, str]:
    priv, pub, err = create_api_key()
    assert err is None
    return priv, pub


def test_registered_sdk_orders_accepted_with_the_official_tx_hash(sim: SimThread, run) -> None:
    priv, pub = new_key()
    status, body = register(sim, pub)
    assert status == 200 and body["ok"]
    assert body["result"]["public_key"] == pub.removeprefix("0x").lower()

    async def main() -> tuple[list[tuple[int, Any, str]], Any]:
        client = await sdk_client(sim, priv)
        try:
            out = []
            for coi in (1, 2):
                tx_type, tx_info, tx_hash = sign_create(client, coi, next_nonce(sim))
                status, body = await asyncio.to_thread(send_tx, sim, tx_type, tx_info)
                out.append((status, body, tx_hash))
            # The SDK's own check: the key on the venue is the client's.
            return out, client.check_client()
        finally:
            await client.close()

    sent, check = run(main())
    for status, body, official in sent:
        assert status == 200 and body["tx_hash"] == official  # the venue's (Poseidon2) hash
        st, tx = _http("GET", f"{sim.rest_url}/api/v1/tx?by=hash&value={official}")
        assert st == 200 and tx["hash"] == official and tx["status"] == 2
    assert check is None
    assert open_orders(sim) == [1, 2] and next_nonce(sim) == 2
    # The apikeys endpoint shows the registered key as the venue does (hex, no 0x).
    st, keys = _http(
        "GET", f"{sim.rest_url}/api/v1/apikeys?account_index={ACCOUNT}&api_key_index={KEY}"
    )
    assert keys["api_keys"][0]["public_key"] == pub.removeprefix("0x")


def test_refused_wrong_key_tampered_missing_sig_unregistered(sim: SimThread, run) -> None:
    priv, pub = new_key()
    other_priv, _other_pub = new_key()

    async def main() -> dict[str, tuple[int, Any]]:
        out: dict[str, tuple[int, Any]] = {}
        good = await sdk_client(sim, priv)
        try:
            t, info, _h = sign_create(good, 1, 0)
            out["unregistered"] = await asyncio.to_thread(send_tx, sim, t, info)
            register(sim, pub)
            wt, winfo, _h = native_create(sim, other_priv, 1, 0)
            out["wrong_key"] = await asyncio.to_thread(send_tx, sim, wt, winfo)
            tampered = json.loads(info)
            tampered["Price"] += 100  # changed after signing
            out["tampered"] = await asyncio.to_thread(send_tx, sim, t, json.dumps(tampered))
            missing = json.loads(info)
            del missing["Sig"]
            out["missing_sig"] = await asyncio.to_thread(send_tx, sim, t, json.dumps(missing))
            garbage = dict(json.loads(info), Sig="not base64!")
            out["garbage_sig"] = await asyncio.to_thread(send_tx, sim, t, json.dumps(garbage))
            # The same nonce is still free: the genuine tx goes through.
            out["genuine"] = await asyncio.to_thread(send_tx, sim, t, info)
        finally:
            await good.close()
        return out

    out = run(main())
    for case in ("unregistered", "wrong_key", "tampered", "missing_sig", "garbage_sig"):
        status, body = out[case]
        assert status == 400 and body["code"] == INVALID_SIGNATURE, (case, body)
    assert out["genuine"][0] == 200, out["genuine"]
    assert open_orders(sim) == [1] and next_nonce(sim) == 1


def test_ws_sendtx_and_batch_refuse_a_bad_signature(sim: SimThread, run) -> None:
    priv, pub = new_key()
    register(sim, pub)
    _other_priv, other_pub = new_key()

    async def main() -> list[Any]:
        client = await sdk_client(sim, priv)
        try:
            t, i0, _ = sign_create(client, 1, 0)
            _, i1, _ = sign_create(client, 2, 1)
            bad = dict(json.loads(i1), Price=1)
            async with connect(sim.ws_url) as ws:
                assert json.loads(await ws.recv())["type"] == "connected"
                await ws.send(
                    json.dumps(
                        {
                            "type": "jsonapi/sendtxbatch",
                            "data": {
                                "tx_types": json.dumps([t, t]),
                                "tx_infos": json.dumps([i0, json.dumps(bad)]),
                            },
                        }
                    )
                )
                batch = json.loads(await ws.recv())
                await ws.send(
                    json.dumps({"type": "jsonapi/sendtx", "data": {"tx_type": t, "tx_info": bad}})
                )
                single = json.loads(await ws.recv())
                # Registering another key for the slot: the client's txs are refused.
                register(sim, other_pub)
                await ws.send(
                    json.dumps(
                        {
                            "type": "jsonapi/sendtx",
                            "data": {"tx_type": t, "tx_info": json.loads(i0)},
                        }
                    )
                )
                replaced = json.loads(await ws.recv())
                register(sim, pub)
                await ws.send(
                    json.dumps(
                        {
                            "type": "jsonapi/sendtxbatch",
                            "data": {"tx_types": [t, t], "tx_infos": [i0, i1]},
                        }
                    )
                )
                ok = json.loads(await ws.recv())
                return [batch, single, replaced, ok]
        finally:
            await client.close()

    batch, single, replaced, ok = run(main())
    for frame in (batch, single, replaced):
        assert frame["data"]["code"] == INVALID_SIGNATURE, frame
    assert ok["data"]["code"] == 200 and len(ok["data"]["tx_hash"]) == 2
    assert open_orders(sim) == [1, 2] and next_nonce(sim) == 2


def test_change_pub_key_registers_the_new_key_and_retires_the_old(sim: SimThread, run) -> None:
    old_priv, old_pub = new_key()
    new_priv, new_pub = new_key()
    register(sim, old_pub)

    async def main() -> dict[str, Any]:
        out: dict[str, Any] = {}
        t, info, _ = native_create(sim, old_priv, 1, 0)
        out["old_before"] = await asyncio.to_thread(send_tx, sim, t, info)
        new = await sdk_client(sim, new_priv)
        try:
            # Signed by the NEW key (L2) and the account's Ethereum key (L1, not checked).
            t8, info8, hash8, err = new.sign_change_api_key(
                ETH_PRIVATE_KEY, new_pub, nonce=next_nonce(sim), api_key_index=KEY
            )
            assert err is None and t8 == TX_CHANGE_PUB_KEY
            out["change"] = (await asyncio.to_thread(send_tx, sim, t8, info8), hash8)
            n = next_nonce(sim)
            t, info, _ = native_create(sim, old_priv, 2, n)
            out["old_after"] = await asyncio.to_thread(send_tx, sim, t, info)
            t, info, _ = sign_create(new, 3, n)
            out["new_after"] = await asyncio.to_thread(send_tx, sim, t, info)
            # A ChangePubKey whose L2 signature is not by the key it carries is refused.
            forged = dict(json.loads(info8), Nonce=next_nonce(sim))
            out["forged_change"] = await asyncio.to_thread(send_tx, sim, t8, json.dumps(forged))
        finally:
            await new.close()
        return out

    out = run(main())
    assert out["old_before"][0] == 200
    (status, body), official = out["change"]
    assert status == 200 and body["tx_hash"] == official
    assert out["old_after"][0] == 400 and out["old_after"][1]["code"] == INVALID_SIGNATURE
    assert out["new_after"][0] == 200
    assert out["forged_change"][0] == 400
    assert out["forged_change"][1]["code"] == INVALID_SIGNATURE
    assert open_orders(sim) == [1, 3]
    assert next_nonce(sim) == 3  # create, ChangePubKey, create
    key = sim.call(lambda s: s.exchange.accounts[ACCOUNT].keys[KEY])
    assert key.public_key == new_pub.removeprefix("0x")


def test_auth_tokens_verified_rest_and_ws(sim: SimThread, run) -> None:
    priv, pub = new_key()
    other_priv, _ = new_key()
    register(sim, pub)

    async def main() -> tuple[Any, ...]:
        tokens = []
        for k in (other_priv, priv):  # one SDK client per slot at a time (see native_create)
            client = await sdk_client(sim, k)
            try:
                tok, err = client.create_auth_token_with_expiry(api_key_index=KEY)
                assert err is None
                tokens.append(tok)
            finally:
                await client.close()
        bad, good = tokens
        url = f"{sim.rest_url}/api/v1/accountActiveOrders?account_index={ACCOUNT}&market_id=0"
        rest_good = await asyncio.to_thread(_http, "GET", url, headers={"authorization": good})
        rest_bad = await asyncio.to_thread(_http, "GET", url, headers={"authorization": bad})
        # A well-formed token whose signature is garbage.
        deadline, acct, key, _sig = good.split(":")
        forged = f"{deadline}:{acct}:{key}:{'ab' * 80}"
        rest_forged = await asyncio.to_thread(_http, "GET", url, headers={"authorization": forged})
        frames = []
        async with connect(sim.ws_url) as ws:
            assert json.loads(await ws.recv())["type"] == "connected"
            for tok in (bad, good):
                await ws.send(
                    json.dumps(
                        {
                            "type": "subscribe",
                            "channel": f"account_all_orders/{ACCOUNT}",
                            "auth": tok,
                        }
                    )
                )
                frames.append(json.loads(await ws.recv()))
        return rest_good, rest_bad, rest_forged, frames

    rest_good, rest_bad, rest_forged, (ws_bad, ws_good) = run(main())
    assert rest_good[0] == 200
    for status, body in (rest_bad, rest_forged):
        assert status == 400 and body["code"] == INVALID_SIGNATURE
    assert ws_bad["type"] == "error" and ws_bad["code"] == WS_FAILED_TO_SUBSCRIBE
    assert ws_good["type"] == "subscribed/account_all_orders"


def test_native_signer_hash_matches_and_control_endpoint_validates(sim: SimThread) -> None:
    sk = "5a" * 40
    pk = S.public_key(sk)
    assert register(sim, "0x" + pk.hex().upper())[0] == 200  # 0x and case accepted
    now = int(time.time() * 1000)
    info, h = S.sign_tx(
        "create_order",
        {
            "market_index": 0,
            "client_order_index": 9,
            "base_amount": 1000,
            "price": 295_000,
            "is_ask": 0,
            "order_type": 0,
            "time_in_force": 1,
            "reduce_only": 0,
            "trigger_price": 0,
            "order_expiry": now + 3_600_000,
        },
        sk=sk,
        chain_id=sim.config.chain_id,
        account_index=ACCOUNT,
        api_key_index=KEY,
        nonce=0,
        expired_at=now + 600_000,
    )
    status, body = send_tx(sim, TX_CREATE_ORDER, info)
    assert status == 200 and body["tx_hash"] == h.hex()
    assert sim.call(lambda s: s.truth.tx_status(h.hex())) == 2
    for bad in (
        {"account_index": ACCOUNT, "api_key_index": KEY, "public_key": "zz"},
        {"account_index": ACCOUNT, "api_key_index": 255, "public_key": pk.hex()},
        {"account_index": 4242, "api_key_index": KEY, "public_key": pk.hex()},
        {"account_index": ACCOUNT, "api_key_index": KEY, "public_key": pk.hex()[:-2]},
        {"account_index": "1001", "api_key_index": KEY, "public_key": pk.hex()},
    ):
        status, body = _http("POST", f"{sim.rest_url}/_sim/api_keys", body=bad)
        assert status == 400 and body["ok"] is False, bad


@pytest.mark.parametrize("verify", [True, False])
def test_verify_signatures_setting(verify: bool) -> None:
    from mmfast.sim.config import SimConfig

    with SimThread(SimConfig(seed=1, speed_bumps=False, verify_signatures=verify)) as st:
        now = int(time.time() * 1000)
        info = {
            "AccountIndex": ACCOUNT,
            "ApiKeyIndex": KEY,
            "MarketIndex": 0,
            "ClientOrderIndex": 1,
            "BaseAmount": 1000,
            "Price": 295_000,
            "IsAsk": 0,
            "Type": 0,
            "TimeInForce": 1,
            "ReduceOnly": 0,
            "TriggerPrice": 0,
            "OrderExpiry": now + 3_600_000,
            "ExpiredAt": now + 600_000,
            "Nonce": 0,
            "Sig": "c2ln",
            "L2TxAttributes": None,
        }
        status, body = send_tx(st, TX_CREATE_ORDER, json.dumps(info))
        if verify:
            assert status == 400 and body["code"] == INVALID_SIGNATURE
        else:
            # Stand-in signatures pass; the hash is still the venue's.
            assert status == 200
            assert (
                body["tx_hash"] == S.tx_info_hash(TX_CREATE_ORDER, info, st.config.chain_id).hex()
            )
