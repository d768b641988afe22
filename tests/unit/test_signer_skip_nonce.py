"""Skip-nonce (L2TxAttributes 4) on every request kind, through the official signer's worker
(``check_signed`` passing) and the native inline signer: the attribute is in tx_info, in the
hash the venue recomputes, and the two signers agree on it."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson

from mmfast._core.signer import tx_info_hash
from mmfast.connector.lighter.native_signer import InlineSigner
from mmfast.connector.lighter.secret import ApiKey
from mmfast.connector.lighter.signer import (
    CancelAllRequest,
    CancelOrderRequest,
    CreateOrderRequest,
    ModifyOrderRequest,
    SignerWorker,
    UpdateLeverageRequest,
)
from mmfast.core.types import TimeInForce
from mmfast.sim.config import SimConfig

CHAIN = SimConfig().chain_id
ACCOUNT = 1001
KEY_HEX = "5eed" + "4d" * 38  # deterministic test key


def requests(skip: bool) -> list[Any]:
    expiry = int(time.time() * 1000) + 3_600_000
    return [
        CreateOrderRequest(
            market=0,
            client_order_index=42,
            base_amount=1000,
            price=300_000,
            is_ask=False,
            tif=TimeInForce.POST_ONLY,
            nonce=7,
            order_expiry_ms=expiry,
            skip_nonce=skip,
        ),
        ModifyOrderRequest(
            market=0, index=42, base_amount=900, price=300_010, nonce=8, skip_nonce=skip
        ),
        CancelOrderRequest(market=0, index=42, nonce=9, skip_nonce=skip),
        CancelAllRequest(market=0, nonce=10, skip_nonce=skip),
        CancelAllRequest(market=None, all_markets=True, nonce=11, skip_nonce=skip),
        UpdateLeverageRequest(market=0, initial_margin_fraction=1000, nonce=12, skip_nonce=skip),
    ]


def attrs_wanted(req: Any) -> dict[str, int] | None:
    out: dict[str, int] = {}
    if isinstance(req, CancelAllRequest) and not req.all_markets:
        out["5"] = req.market
    if req.skip_nonce:
        out["4"] = 1
    return out or None


def test_official_worker_signs_skip_nonce_and_the_check_passes() -> None:
    async def body() -> list[Any]:
        w = SignerWorker(ApiKey(KEY_HEX), account_index=ACCOUNT, api_key_index=5, chain_id=CHAIN)
        w.start()
        try:
            return [await w.sign(r) for r in requests(True) + requests(False)]
        finally:
            w.stop()

    signed = asyncio.run(body())
    for s in signed:
        info = orjson.loads(s.tx_info)
        assert info.get("L2TxAttributes") == attrs_wanted(s.request)
        assert tx_info_hash(s.tx_type, info, CHAIN).hex() == s.tx_hash
    with_skip, without = signed[:6], signed[6:]
    assert all(a.tx_hash != b.tx_hash for a, b in zip(with_skip, without, strict=True))


def test_native_and_official_agree_on_skip_nonce() -> None:
    # Same key, nonce and ExpiredAt: the same tx_info less Sig and the same hash.
    from lighter import signer_client

    lib = signer_client.get_signer()
    decode = signer_client.decode_and_free
    assert not decode(lib.CreateClient(b"", KEY_HEX.encode(), CHAIN, 6, ACCOUNT))
    s = InlineSigner(
        ApiKey(KEY_HEX), account_index=ACCOUNT, api_key_index=6, chain_id=CHAIN, check=False
    )
    s.start()
    try:
        ns = s.native
        assert ns is not None
        for req in requests(True):
            res = req._call(lib, 6, ACCOUNT)
            o_err, o_info, o_hash = decode(res.err), decode(res.txInfo), decode(res.txHash)
            decode(res.messageToSign)
            assert not o_err, o_err
            o = orjson.loads(o_info)
            n_info, n_hash = req._native(ns, o["ExpiredAt"])
            n = orjson.loads(n_info)
            assert n_hash == o_hash
            assert {k: v for k, v in n.items() if k != "Sig"} == {
                k: v for k, v in o.items() if k != "Sig"
            }
            assert n["L2TxAttributes"] == attrs_wanted(req)
    finally:
        s.stop()
