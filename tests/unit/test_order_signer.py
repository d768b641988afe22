"""SignerWorker on the real lighter-sdk signer (offline), and the signed-tx check."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import logging
import threading
import time

import orjson
import pytest
import uvloop

from mmfast.connector.lighter.secret import ApiKey
from mmfast.connector.lighter.signer import (
    TX_TYPE_CANCEL_ALL,
    TX_TYPE_CANCEL_ORDER,
    TX_TYPE_CREATE_ORDER,
    TX_TYPE_MODIFY_ORDER,
    TX_TYPE_UPDATE_LEVERAGE,
    CancelAllRequest,
    CancelAllTif,
    CancelOrderRequest,
    CreateOrderRequest,
    MarginMode,
    ModifyOrderRequest,
    SignedTx,
    SignerError,
    SignerWorker,
    UpdateLeverageRequest,
    imf_for_leverage,
)
from mmfast.connector.lighter.txcheck import TxCheckError, check_signed
from mmfast.core.types import MAX_CLIENT_ORDER_INDEX, OrderType, TimeInForce
from mmfast.sim.config import SimConfig

CHAIN = SimConfig().chain_id
ACCOUNT = 1001
KEY_HEX = "5eed" + "3c" * 38  # deterministic test key (any 40 bytes sign)
RUNNERS = {"asyncio": asyncio.run, "uvloop": uvloop.run}


def expiry() -> int:
    return int(time.time() * 1000) + 3_600_000


def order(**kw) -> CreateOrderRequest:
    args = dict(
        market=0,
        client_order_index=42,
        base_amount=1000,
        price=300_000,
        is_ask=False,
        tif=TimeInForce.POST_ONLY,
        nonce=7,
        order_expiry_ms=expiry(),
    )
    args.update(kw)
    return CreateOrderRequest(**args)


async def with_worker(fn, api_key_index: int = 5, key: str = KEY_HEX):
    w = SignerWorker(
        ApiKey(key), account_index=ACCOUNT, api_key_index=api_key_index, chain_id=CHAIN
    )
    w.start()
    try:
        return await fn(w)
    finally:
        w.stop()


@pytest.mark.parametrize("runner", sorted(RUNNERS))
def test_sign_all_request_kinds_checked(runner: str) -> None:
    async def body(w: SignerWorker):
        reqs = [
            order(),
            order(tif=TimeInForce.IOC, order_expiry_ms=0, nonce=8, is_ask=True, reduce_only=True),
            order(tif=TimeInForce.GTT, nonce=9, client_order_index=MAX_CLIENT_ORDER_INDEX),
            CancelOrderRequest(market=0, index=42, nonce=10),
            ModifyOrderRequest(market=0, index=42, base_amount=900, price=300_010, nonce=11),
            CancelAllRequest(market=0, nonce=12),
            CancelAllRequest(market=None, all_markets=True, nonce=13),
            UpdateLeverageRequest(
                market=1,
                initial_margin_fraction=imf_for_leverage(10),
                margin_mode=MarginMode.ISOLATED,
                nonce=14,
            ),
        ]
        return [await w.sign(r) for r in reqs], reqs

    signed, reqs = RUNNERS[runner](with_worker(body))
    types = [s.tx_type for s in signed]
    assert types == [TX_TYPE_CREATE_ORDER] * 3 + [
        TX_TYPE_CANCEL_ORDER,
        TX_TYPE_MODIFY_ORDER,
        TX_TYPE_CANCEL_ALL,
        TX_TYPE_CANCEL_ALL,
        TX_TYPE_UPDATE_LEVERAGE,
    ]
    for s, r in zip(signed, reqs, strict=True):
        assert isinstance(s, SignedTx) and s.request is r
        info = orjson.loads(s.tx_info)
        assert info == s.info
        assert info["Nonce"] == r.nonce and info["AccountIndex"] == ACCOUNT
        assert info["ApiKeyIndex"] == 5
        assert len(s.tx_hash) == 80 and int(s.tx_hash, 16) >= 0
        assert s.queued_ns <= s.signed_ns and s.sign_ns > 0
        assert s.tx_info not in repr(s) and info["Sig"] not in repr(s)
    assert signed[0].info["ClientOrderIndex"] == 42 and signed[0].info["TimeInForce"] == 2
    assert signed[1].info["OrderExpiry"] == 0 and signed[1].info["ReduceOnly"] == 1
    assert signed[5].info["L2TxAttributes"] == {"5": 0}
    assert signed[6].info["L2TxAttributes"] is None
    assert signed[7].info["InitialMarginFraction"] == 1000
    assert len({s.tx_hash for s in signed}) == len(signed)


def test_large_market_ids_signed_exactly() -> None:
    async def body(w: SignerWorker):
        out = []
        for m in (255 + 45, 65_535 + 1, 2_048, (1 << 31) + 7):
            out.append(await w.sign(order(market=m, nonce=len(out))))
            out.append(await w.sign(CancelAllRequest(market=m, nonce=len(out))))
        return out

    for s in asyncio.run(with_worker(body)):
        m = s.request.market
        if s.tx_type == TX_TYPE_CREATE_ORDER:
            assert s.info["MarketIndex"] == m
        else:
            assert s.info["L2TxAttributes"] == {"5": m}


def test_callbacks_on_loop_thread_in_fifo_order_signing_off_loop() -> None:
    seen: list[tuple[int, int]] = []

    async def body(w: SignerWorker):
        loop_thread = threading.get_ident()
        done = asyncio.get_running_loop().create_future()
        n = 50

        def cb(result, error):
            assert error is None
            seen.append((result.nonce, threading.get_ident()))
            if len(seen) == n:
                done.set_result(None)

        for i in range(n):
            w.submit(order(nonce=100 + i, client_order_index=1 + i), cb)
        await asyncio.wait_for(done, 30)
        assert w.thread_ident not in (None, loop_thread)
        return loop_thread

    loop_thread = asyncio.run(with_worker(body))
    assert [n for n, _ in seen] == list(range(100, 150))
    assert {t for _, t in seen} == {loop_thread}


def test_signer_errors_come_back_as_signer_error() -> None:
    async def body(w: SignerWorker):
        errs = []
        bad = [
            order(tif=TimeInForce.GTT, order_expiry_ms=0),  # GTT needs an expiry
            order(tif=TimeInForce.IOC),  # IOC takes 0
            order(client_order_index=0),
            order(client_order_index=MAX_CLIENT_ORDER_INDEX + 1),
            order(price=1 << 32),
            order(base_amount=0),
            order(order_type=OrderType.MARKET),
            order(nonce=-1),
            CancelAllRequest(market=None, nonce=1),  # every market only when asked
            CancelAllRequest(market=255, nonce=1),
            CancelAllRequest(market=3, nonce=1, tif=CancelAllTif.SCHEDULED, time_ms=expiry()),
            CancelAllRequest(market=3, all_markets=True, nonce=1),
            UpdateLeverageRequest(market=0, initial_margin_fraction=0, nonce=1),
        ]
        for r in bad:
            with pytest.raises(SignerError) as ei:
                await w.sign(r)
            errs.append(str(ei.value))
        # Still works after errors.
        ok = await w.sign(order(nonce=99))
        return errs, ok, w.failed

    errs, ok, failed = asyncio.run(with_worker(body))
    assert ok.nonce == 99 and failed == 13
    assert "all_markets=True" in errs[8]
    for e in errs:
        assert KEY_HEX[:16] not in e


def test_scheduled_and_abort_cancel_all_markets() -> None:
    async def body(w: SignerWorker):
        t = expiry()
        s1 = await w.sign(
            CancelAllRequest(
                market=None, all_markets=True, nonce=1, tif=CancelAllTif.SCHEDULED, time_ms=t
            )
        )
        s2 = await w.sign(
            CancelAllRequest(market=None, all_markets=True, nonce=2, tif=CancelAllTif.ABORT)
        )
        return t, s1, s2

    t, s1, s2 = asyncio.run(with_worker(body))
    assert s1.info["TimeInForce"] == 1 and s1.info["Time"] == t
    assert s2.info["TimeInForce"] == 2 and s2.info["Time"] == 0


def test_auth_token() -> None:
    async def body(w: SignerWorker):
        deadline = int(time.time()) + 600
        tok = await w.token(deadline)
        with pytest.raises(SignerError, match="not a duration"):
            await w.token(600)
        with pytest.raises(SignerError, match="8 h"):
            await w.token(int(time.time()) + 9 * 3600)
        with pytest.raises(SignerError, match="8 h"):
            await w.token(int(time.time()) - 3600)
        # A deadline from a venue clock a little ahead of ours is accepted.
        assert await w.token(int(time.time()) + 8 * 3600 + 30)
        return deadline, tok

    deadline, tok = asyncio.run(with_worker(body))
    d, acct, key_idx, sig = tok.split(":")
    assert (int(d), int(acct), int(key_idx)) == (deadline, ACCOUNT, 5)
    assert len(sig) >= 64 and int(sig, 16) >= 0


def test_one_worker_per_key_and_account_and_lifecycle() -> None:
    async def body():
        w1 = SignerWorker(ApiKey(KEY_HEX), account_index=ACCOUNT, api_key_index=6, chain_id=CHAIN)
        w1.start()
        try:
            w2 = SignerWorker(
                ApiKey(KEY_HEX), account_index=ACCOUNT, api_key_index=6, chain_id=CHAIN
            )
            with pytest.raises(SignerError, match="already"):
                w2.start()
            with pytest.raises(SignerError, match="already started"):
                w1.start()
        finally:
            w1.stop()
        assert not w1.running
        with pytest.raises(SignerError, match="not running"):
            w1.submit(order(), lambda r, e: None)
        w3 = SignerWorker(ApiKey(KEY_HEX), account_index=ACCOUNT, api_key_index=6, chain_id=CHAIN)
        w3.start()
        s = await w3.sign(order())
        w3.stop()
        return s

    assert asyncio.run(body()).info["ApiKeyIndex"] == 6
    with pytest.raises(TypeError):
        SignerWorker(KEY_HEX, account_index=1, api_key_index=5, chain_id=CHAIN)  # type: ignore[arg-type]
    for bad in ({"account_index": 0}, {"api_key_index": 255}, {"chain_id": 0}):
        args = {"account_index": 1, "api_key_index": 5, "chain_id": CHAIN, **bad}
        with pytest.raises(SignerError):
            SignerWorker(ApiKey(KEY_HEX), **args)


def test_sdk_loggers_held_at_warning() -> None:
    logging.getLogger("lighter").setLevel(logging.DEBUG)

    async def body(w: SignerWorker):
        return logging.getLogger("lighter").level

    assert asyncio.run(with_worker(body)) == logging.WARNING


# ---------------------------------------------------------------------------- txcheck
def _signed_pair():
    async def body(w: SignerWorker):
        return (
            await w.sign(order(market=300, client_order_index=77, nonce=5)),
            await w.sign(CancelAllRequest(market=70_000, nonce=6)),
        )

    return asyncio.run(with_worker(body))


@pytest.fixture(scope="module")
def signed_pair():
    return _signed_pair()


def _tamper(s: SignedTx, **fields) -> str:
    info = dict(s.info)
    info.update(fields)
    return orjson.dumps(info).decode()


def test_check_passes_real_signatures(signed_pair) -> None:
    for s in signed_pair:
        info = check_signed(s.request, s.tx_type, s.tx_info, account_index=ACCOUNT, api_key_index=5)
        assert info["Nonce"] == s.nonce


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("MarketIndex", 300 & 0xFF, "MarketIndex is 44, asked 300"),  # narrowed to 8 bits
        ("MarketIndex", 300 - 256, "MarketIndex"),
        ("Price", 300_001, "Price"),
        ("BaseAmount", 999, "BaseAmount"),
        ("IsAsk", 1, "IsAsk"),
        ("IsAsk", False, "IsAsk"),  # a bool where the int 0 is expected
        ("TimeInForce", 1, "TimeInForce"),
        ("ReduceOnly", 1, "ReduceOnly"),
        ("OrderExpiry", 0, "OrderExpiry"),
        ("ClientOrderIndex", 78, "ClientOrderIndex"),
        ("Nonce", 6, "Nonce"),
        ("ApiKeyIndex", 255, "ApiKeyIndex"),
        ("AccountIndex", 1002, "AccountIndex"),
        ("Type", 1, "Type"),
        ("Sig", "", "no signature"),
        ("ExpiredAt", 0, "ExpiredAt"),
    ],
)
def test_check_catches_each_mismatch(signed_pair, field, value, match) -> None:
    s = signed_pair[0]
    with pytest.raises(TxCheckError, match=match) as ei:
        check_signed(
            s.request,
            s.tx_type,
            _tamper(s, **{field: value}),
            account_index=ACCOUNT,
            api_key_index=5,
        )
    assert s.info["Sig"] not in str(ei.value)


def test_check_cancel_all_scope_and_16_bit_narrowing(signed_pair) -> None:
    s = signed_pair[1]
    for attrs in ({"5": 70_000 & 0xFFFF}, None, {"5": 70_000, "4": 1}, {}):
        with pytest.raises(TxCheckError, match="L2TxAttributes"):
            check_signed(
                s.request,
                s.tx_type,
                _tamper(s, L2TxAttributes=attrs),
                account_index=ACCOUNT,
                api_key_index=5,
            )
    info = dict(s.info)
    del info["Time"]
    with pytest.raises(TxCheckError, match="Time missing"):
        check_signed(
            s.request, s.tx_type, orjson.dumps(info), account_index=ACCOUNT, api_key_index=5
        )


def test_check_type_and_garbage(signed_pair) -> None:
    s = signed_pair[0]
    with pytest.raises(TxCheckError, match="tx type 15, asked 14"):
        check_signed(s.request, 15, s.tx_info, account_index=ACCOUNT, api_key_index=5)
    for junk in ("", "[1]", "{bad"):
        with pytest.raises(TxCheckError):
            check_signed(s.request, s.tx_type, junk, account_index=ACCOUNT, api_key_index=5)


def test_worker_reports_a_narrowing_signer_as_error(monkeypatch) -> None:
    """A signer build that narrows market ids: the worker's check turns it into an error."""

    async def body(w: SignerWorker):
        real_call = CreateOrderRequest._call

        def narrowing(self, lib, api_key_index, account_index):
            return real_call(
                dataclasses.replace(self, market=self.market & 0xFF),
                lib,
                api_key_index,
                account_index,
            )

        monkeypatch.setattr(CreateOrderRequest, "_call", narrowing)
        with pytest.raises(SignerError, match="MarketIndex is 44, asked 300") as ei:
            await w.sign(order(market=300))
        assert isinstance(ei.value.__cause__, TxCheckError)
        ok = await w.sign(order(market=200))  # not narrowed: passes
        return ok

    assert asyncio.run(with_worker(body)).info["MarketIndex"] == 200


def test_canary_key_never_in_logs_reprs_errors(caplog) -> None:
    canary = "ca11ab1e" + "d0" * 36
    stream = io.StringIO()
    root = logging.getLogger()
    handler = logging.StreamHandler(stream)
    root.addHandler(handler)
    old = root.level
    root.setLevel(logging.DEBUG)
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    try:

        async def body(w: SignerWorker):
            texts.append(repr(w))
            s = await w.sign(order())
            texts.append(repr(s))
            for r in (order(price=0), CancelAllRequest(market=None, nonce=1)):
                try:
                    await w.sign(r)
                except SignerError as e:
                    texts.append(str(e) + repr(e))
            texts.append(str(await w.token(int(time.time()) + 60)))
            return s

        asyncio.run(with_worker(body, api_key_index=9, key=canary))
    finally:
        root.removeHandler(handler)
        root.setLevel(old)
    blob = "\n".join(texts) + stream.getvalue() + caplog.text
    import base64

    raw = bytes.fromhex(canary)
    forms = (canary, canary.upper(), base64.b64encode(raw).decode())
    for form in forms:
        for i in range(len(form) - 15):
            assert form[i : i + 16] not in blob


def test_canary_from_key_file_forced_errors_redacted(tmp_path, monkeypatch, capfd) -> None:
    """Key from a 0600 file; errors forced inside the signer call (one echoing the key, as a
    buggy library might): no trace of the key in errors, reprs, logs, stdout or stderr."""
    from mmfast.connector.lighter.secret import load_api_key

    canary = "ca11ab1e" + "e7" * 36
    path = tmp_path / "key"
    path.write_text("0x" + canary + "\n")
    path.chmod(0o600)
    key = load_api_key(key_file=path, argv=["mmfast", "run"])
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    root = logging.getLogger()
    root.addHandler(handler)
    texts = [repr(key), str(key)]

    async def body(w: SignerWorker):
        def echoing(self, lib, api_key_index, account_index):
            raise RuntimeError(f"signer blew up with key 0x{canary} ({canary[4:40].upper()})")

        monkeypatch.setattr(CancelOrderRequest, "_call", echoing)
        with pytest.raises(SignerError) as ei:
            await w.sign(CancelOrderRequest(market=0, index=1, nonce=1))
        texts.append(str(ei.value))
        texts.append(repr(ei.value))
        logging.getLogger("mmfast.test").exception("sign failed", exc_info=ei.value)
        texts.append(repr(await w.sign(order())))
        texts.append(repr(w))

    try:
        asyncio.run(with_worker(body, api_key_index=11, key=key.reveal()))
    finally:
        root.removeHandler(handler)
    out, err = capfd.readouterr()
    blob = "\n".join(texts) + stream.getvalue() + out + err
    assert "blew up" in blob and "[REDACTED]" in blob
    for i in range(len(canary) - 15):
        assert canary[i : i + 16] not in blob.lower()
