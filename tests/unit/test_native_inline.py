"""InlineSigner: the native signer behind SignerWorker's interface, and its start-up self-check."""

from __future__ import annotations

import asyncio
import base64
import time
from typing import Any

import orjson
import pytest
from lighter.signer_client import create_api_key

from mmfast._core import signer as native
from mmfast.connector.lighter import native_signer
from mmfast.connector.lighter.native_signer import TX_EXPIRY_MS, InlineSigner, self_check
from mmfast.connector.lighter.secret import ApiKey
from mmfast.connector.lighter.signer import (
    AuthTokenRequest,
    CancelAllRequest,
    CancelOrderRequest,
    CreateOrderRequest,
    ModifyOrderRequest,
    SignerError,
    UpdateLeverageRequest,
)
from mmfast.core.types import TimeInForce

ACCOUNT = 4_242_001
KEY_INDEX = 211  # no other unit test uses this (account, key) pair with the official signer
CHAIN = 7357001


@pytest.fixture(scope="module")
def key_hex() -> str:
    priv, _pub, err = create_api_key()
    assert err is None
    return str(priv).removeprefix("0x")


@pytest.fixture
def signer(key_hex: str) -> Any:
    s = InlineSigner(
        ApiKey(key_hex),
        account_index=ACCOUNT,
        api_key_index=KEY_INDEX,
        chain_id=CHAIN,
        pool_size=16,
        check=False,
    )
    s.start()
    yield s
    s.stop()


def _sig(tx_info: str) -> bytes:
    return base64.b64decode(orjson.loads(tx_info)["Sig"])


REQUESTS = [
    (
        "create_order",
        CreateOrderRequest(
            market=3,
            client_order_index=77,
            base_amount=1200,
            price=301_234,
            is_ask=True,
            tif=TimeInForce.POST_ONLY,
            nonce=11,
            order_expiry_ms=1_900_000_000_000,
        ),
        dict(
            market_index=3,
            client_order_index=77,
            base_amount=1200,
            price=301_234,
            is_ask=1,
            order_type=0,
            time_in_force=2,
            reduce_only=0,
            trigger_price=0,
            order_expiry=1_900_000_000_000,
        ),
    ),
    (
        "modify_order",
        ModifyOrderRequest(market=3, index=77, base_amount=900, price=301_000, nonce=12),
        dict(market_index=3, index=77, base_amount=900, price=301_000, trigger_price=0),
    ),
    (
        "cancel_order",
        CancelOrderRequest(market=3, index=77, nonce=13),
        dict(market_index=3, index=77),
    ),
    (
        "cancel_all_orders",
        CancelAllRequest(market=3, nonce=14),
        dict(time_in_force=0, scheduled_time_ms=0, cancel_all_market_index=3),
    ),
    (
        "update_leverage",
        UpdateLeverageRequest(market=3, initial_margin_fraction=1000, nonce=15),
        dict(market_index=3, initial_margin_fraction=1000, margin_mode=0),
    ),
]


@pytest.mark.parametrize(("kind", "request_", "fields"), REQUESTS, ids=[r[0] for r in REQUESTS])
def test_submit_signs_before_it_returns(
    signer: Any, key_hex: str, kind: str, request_: Any, fields: dict[str, int]
) -> None:
    got: list[tuple[Any, Any]] = []
    before = int(time.time() * 1000)
    signer.submit(request_, lambda res, err: got.append((res, err)))
    after = int(time.time() * 1000)
    assert len(got) == 1, "the callback runs inside submit"
    res, err = got[0]
    assert err is None
    exp = res.info["ExpiredAt"]
    assert before + TX_EXPIRY_MS <= exp <= after + TX_EXPIRY_MS
    assert res.nonce == request_.nonce and res.tx_type == native.TX_TYPES[kind]
    want = native.tx_hash(
        kind,
        fields,
        chain_id=CHAIN,
        account_index=ACCOUNT,
        api_key_index=KEY_INDEX,
        nonce=request_.nonce,
        expired_at=exp,
    )
    assert res.tx_hash == want.hex()
    info = orjson.loads(res.tx_info)
    assert (info["AccountIndex"], info["ApiKeyIndex"], info["Nonce"], info["ExpiredAt"]) == (
        ACCOUNT,
        KEY_INDEX,
        request_.nonce,
        exp,
    )
    assert native.verify_hashed(native.public_key(key_hex), want, _sig(res.tx_info))
    assert res.sign_ns > 0 and signer.signed == 1


def test_bad_request_calls_back_with_an_error(signer: Any, key_hex: str) -> None:
    got: list[tuple[Any, Any]] = []
    signer.submit(
        ModifyOrderRequest(market=0, index=5, base_amount=10, price=0, nonce=1),
        lambda res, err: got.append((res, err)),
    )
    assert got and got[0][0] is None and isinstance(got[0][1], SignerError)
    assert key_hex not in str(got[0][1]).lower() and signer.failed == 1


def test_token_verifies_and_deadline_is_checked(signer: Any, key_hex: str) -> None:
    deadline = int(time.time()) + 600
    tok = asyncio.run(signer.token(deadline))
    assert tok.startswith(f"{deadline}:{ACCOUNT}:{KEY_INDEX}:")
    assert native.verify_auth_token(native.public_key(key_hex), tok)
    with pytest.raises(SignerError, match="duration"):
        asyncio.run(signer.token(600))
    got: list[Any] = []
    signer.submit(AuthTokenRequest(deadline), lambda res, err: got.append(res))
    assert native.verify_auth_token(signer.public_key, got[0])


def test_stop_wipes_and_refuses(key_hex: str) -> None:
    s = InlineSigner(
        ApiKey(key_hex),
        account_index=ACCOUNT,
        api_key_index=KEY_INDEX,
        chain_id=CHAIN,
        pool_size=0,
        check=False,
    )
    s.start()
    assert s.running and s.thread_ident is None
    s.stop()
    s.stop()
    assert not s.running
    with pytest.raises(SignerError, match="not running"):
        s.submit(CancelOrderRequest(market=0, index=1, nonce=1), lambda r, e: None)
    assert key_hex not in repr(s).lower()


def test_pool_feeds_signatures(key_hex: str) -> None:
    s = InlineSigner(
        ApiKey(key_hex),
        account_index=ACCOUNT,
        api_key_index=KEY_INDEX,
        chain_id=CHAIN,
        pool_size=8,
        check=False,
    )
    s.start()
    try:
        deadline = time.monotonic() + 10
        while s.pool_stats()["ready"] < 8 and time.monotonic() < deadline:
            time.sleep(0.01)
        for n in range(4):
            s.sign_now(CancelOrderRequest(market=0, index=1, nonce=n))
        st = s.pool_stats()
        assert st["size"] == 8 and st["pooled"] == 4 and st["fresh"] == 0
    finally:
        s.stop()


def test_self_check_passes_with_a_random_key(key_hex: str) -> None:
    self_check(ApiKey(key_hex), chain_id=CHAIN, account_index=ACCOUNT + 1, api_key_index=KEY_INDEX)


def test_checked_says_whether_the_self_check_ran(key_hex: str) -> None:
    signers = [
        InlineSigner(
            ApiKey(key_hex),
            account_index=ACCOUNT + 3,
            api_key_index=KEY_INDEX,
            chain_id=CHAIN,
            check=check,
        )
        for check in (False, True)
    ]
    try:
        assert [s.checked for s in signers] == [False, False]
        for s in signers:
            s.start()
        assert [s.checked for s in signers] == [False, True]
    finally:
        for s in signers:
            s.stop()


class _Skewed(ModifyOrderRequest):
    """A request whose native signature is of a different price: a signer that disagrees."""

    def _native(self, ns: Any, expired_at: int) -> tuple[str, str]:
        return ns.sign_modify_order(
            self.market,
            self.index,
            self.base_amount,
            self.price + 1,  # type: ignore[no-any-return]
            self.trigger_price,
            self.nonce,
            expired_at,
        )


def test_self_check_refuses_a_mismatch(key_hex: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        native_signer,
        "_corpus",
        lambda market: [_Skewed(market=market, index=1, base_amount=5, price=100, nonce=1)],
    )
    s = InlineSigner(
        ApiKey(key_hex), account_index=ACCOUNT + 2, api_key_index=KEY_INDEX, chain_id=CHAIN
    )
    with pytest.raises(SignerError) as exc:
        s.start()
    text = str(exc.value)
    assert "tx hash differs" in text and 'signer = "official"' in text
    assert key_hex not in text.lower()
    assert not s.running
