"""Native signer vs the official one (the Go signer library shipped in lighter-sdk).

Same key, same request, same nonce and expiry -> the same tx_info text less "Sig" and the same
tx_hash, for every tx kind mmfast sends (create 14, cancel 15, cancel-all 16, modify 17, update
leverage 20), with random valid fields and attributes; every official signature verifies under
``verify_hashed``. Plus auth tokens both ways, tampered signatures, and requests both refuse.

The official library keeps one client per (api key, account) per process: this file uses
account 7_777_001 / API key 201, which no other test uses. The soak variants (10^5 examples in
all) run with ``-m soak``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mmfast._core import signer as S

sc = pytest.importorskip("lighter.signer_client")

LIB = sc.get_signer()
DEC = sc.decode_and_free
CHAIN = 304
ACC = 7_777_001
AK = 201
_priv, _pub, _err = sc.create_api_key()
assert _err is None, _err
SK_HEX: str = _priv[2:] if _priv.startswith("0x") else _priv
SK = bytes.fromhex(SK_HEX)
PK = S.public_key(SK)
assert DEC(LIB.CreateClient(b"", SK_HEX.encode(), CHAIN, AK, ACC)) is None

U32 = (1 << 32) - 1
I64 = (1 << 63) - 1
MAX_INDEX = (1 << 48) - 1  # client order index, base amount, order version
MAX_ORDER_INDEX = (1 << 60) - 1
MAX_ACCOUNT = (1 << 48) - 2
N = int.from_bytes(S.scalar_op("neg", (1).to_bytes(40, "little")), "little") + 1  # group order

# Examples per kind: normal run, soak run (10^5 in all).
COUNTS = {
    "create_order": (1200, 40_000),
    "modify_order": (800, 25_000),
    "cancel_order": (400, 10_000),
    "cancel_all_orders": (400, 10_000),
    "update_leverage": (400, 15_000),
}
assert sum(s for _, s in COUNTS.values()) == 100_000


def _counts(kind: str) -> list[Any]:
    normal, soak = COUNTS[kind]
    return [
        pytest.param(normal, id="normal"),
        pytest.param(soak, id="soak", marks=pytest.mark.soak),
    ]


def _settings(n: int) -> settings:
    return settings(
        max_examples=n,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


def _less_sig(info: str) -> str:
    sig = json.loads(info)["Sig"]
    assert info.count(f'"Sig":"{sig}"') == 1
    return info.replace(f'"Sig":"{sig}"', '"Sig":""')


def _official(r: Any) -> tuple[str | None, str | None, str | None, int]:
    return DEC(r.txInfo), DEC(r.txHash), DEC(r.err), r.txType


def _agree(kind: str, fields: dict[str, int], r: Any) -> None:
    """The official result r and ours for the same request are the same tx."""
    info, hx, err, tx_type = _official(r)
    assert err is None, (kind, fields, err)
    assert info is not None and hx is not None
    assert tx_type == S.TX_TYPES[kind]
    j = json.loads(info)
    ours, h = S.sign_tx(
        kind,
        fields,
        sk=SK,
        chain_id=CHAIN,
        account_index=ACC,
        api_key_index=AK,
        nonce=j["Nonce"],
        expired_at=j["ExpiredAt"],
    )
    assert _less_sig(ours) == _less_sig(info), (kind, fields)
    assert h.hex() == hx, (kind, fields)
    sig = base64.b64decode(j["Sig"], validate=True)
    assert S.verify_hashed(PK, h, sig), "official signature does not verify"
    assert S.verify_hashed(PK, h, base64.b64decode(json.loads(ours)["Sig"]))


# ------------------------------------------------------------------------------ strategies
nonces = st.one_of(st.integers(0, 1 << 20), st.integers(0, (1 << 48) - 1), st.integers(0, I64))
# 255 is the official signer's "no market" value: it refuses it as a market index.
markets = st.one_of(st.integers(0, 254), st.integers(256, 32767))
skip_nonce = st.integers(0, 1)
# Integrator (account, taker fee, maker fee): fees only with an account, as the official signer
# requires.
integrators = st.one_of(
    st.just((0, 0, 0)),
    st.tuples(st.integers(1, MAX_ACCOUNT), st.integers(0, 1_000_000), st.integers(0, 1_000_000)),
)
# (self-trade behavior, equality): the official signer refuses "reduce" (3) with "master account"
# equality (1).
self_trade = st.sampled_from([(b, e) for b in range(4) for e in range(2) if (b, e) != (3, 1)])
ORDER_TYPES_TIF = {  # order type -> allowed time in force (the official signer's rules)
    0: (0, 1, 2),
    1: (0,),
    2: (0,),
    3: (0, 1, 2),
    4: (0,),
    5: (0, 1, 2),
    6: (1,),
}


def _n_attrs(fields: dict[str, int]) -> int:
    attrs = (
        "integrator_account_index",
        "integrator_taker_fee",
        "integrator_maker_fee",
        "skip_nonce",
        "self_trade_behavior",
        "self_trade_equality",
        "order_version",
    )
    return sum(1 for a in attrs if fields.get(a, 0) != 0)


@st.composite
def create_requests(draw: st.DrawFn) -> tuple[dict[str, int], int]:
    ty = draw(st.sampled_from(sorted(ORDER_TYPES_TIF)))
    tif = draw(st.sampled_from(ORDER_TYPES_TIF[ty]))
    trigger = draw(st.integers(1, U32)) if ty in (2, 3, 4, 5) else 0
    if ty == 1 or (ty == 0 and tif == 0):
        expiry = 0  # market and IOC limit orders carry no expiry
    else:
        expiry = draw(st.one_of(st.integers(1, 1 << 44), st.integers(1, I64 >> 1)))
    reduce_only = draw(st.integers(0, 1))
    ia, it, im = draw(integrators)
    # No self-trade mode together with integrator fees (the official signer refuses that).
    stb, ste = draw(self_trade) if it == im == 0 else (0, 0)
    fields = dict(
        market_index=draw(markets),
        client_order_index=draw(st.integers(0, MAX_INDEX)),
        base_amount=draw(st.integers(0 if reduce_only else 1, MAX_INDEX)),
        price=draw(st.integers(1, U32)),
        is_ask=draw(st.integers(0, 1)),
        order_type=ty,
        time_in_force=tif,
        reduce_only=reduce_only,
        trigger_price=trigger,
        order_expiry=expiry,
        integrator_account_index=ia,
        integrator_taker_fee=it,
        integrator_maker_fee=im,
        skip_nonce=draw(skip_nonce),
        self_trade_behavior=stb,
        self_trade_equality=ste,
    )
    return fields, draw(nonces)


@st.composite
def modify_requests(draw: st.DrawFn) -> tuple[dict[str, int], int]:
    ia, it, im = draw(integrators)
    # No self-trade mode together with integrator fees (the official signer refuses that).
    stb, ste = draw(self_trade) if it == im == 0 else (0, 0)
    fields = dict(
        market_index=draw(markets),
        index=draw(st.one_of(st.integers(1, MAX_INDEX), st.integers(1, MAX_ORDER_INDEX))),
        base_amount=draw(st.integers(0, MAX_INDEX)),
        price=draw(st.integers(1, U32)),
        trigger_price=draw(st.one_of(st.just(0), st.integers(0, U32))),
        integrator_account_index=ia,
        integrator_taker_fee=it,
        integrator_maker_fee=im,
        skip_nonce=draw(skip_nonce),
        self_trade_behavior=stb,
        self_trade_equality=ste,
        order_version=draw(st.one_of(st.just(0), st.integers(0, MAX_INDEX))),
    )
    return fields, draw(nonces)


@st.composite
def cancel_requests(draw: st.DrawFn) -> tuple[dict[str, int], int]:
    fields = dict(
        market_index=draw(markets),
        index=draw(st.one_of(st.integers(1, MAX_INDEX), st.integers(1, MAX_ORDER_INDEX))),
        skip_nonce=draw(skip_nonce),
    )
    return fields, draw(nonces)


@st.composite
def cancel_all_requests(draw: st.DrawFn) -> tuple[dict[str, int], int]:
    tif = draw(st.integers(0, 2))
    if tif == 0:  # immediate: no time; one market (0..254) or all (255)
        t, market = 0, draw(st.one_of(st.integers(0, 255), st.just(255)))
    elif tif == 1:  # scheduled: a time, all markets only
        t, market = draw(st.integers(1, I64)), 255
    else:  # abort the scheduled cancel-all
        t, market = 0, 255
    fields = dict(
        time_in_force=tif,
        scheduled_time_ms=t,
        cancel_all_market_index=market,
        skip_nonce=draw(skip_nonce),
    )
    return fields, draw(nonces)


@st.composite
def leverage_requests(draw: st.DrawFn) -> tuple[dict[str, int], int]:
    fields = dict(
        market_index=draw(markets),
        initial_margin_fraction=draw(st.integers(1, 10_000)),
        margin_mode=draw(st.integers(0, 1)),
        skip_nonce=draw(skip_nonce),
    )
    return fields, draw(nonces)


# ------------------------------------------------------------------------------ official calls
def call_create(f: dict[str, int], nonce: int) -> Any:
    return LIB.SignCreateOrder(
        f["market_index"],
        f["client_order_index"],
        f["base_amount"],
        f["price"],
        f["is_ask"],
        f["order_type"],
        f["time_in_force"],
        f["reduce_only"],
        f["trigger_price"],
        f["order_expiry"],
        f["integrator_account_index"],
        f["integrator_taker_fee"],
        f["integrator_maker_fee"],
        f["self_trade_behavior"],
        f["self_trade_equality"],
        f["skip_nonce"],
        nonce,
        AK,
        ACC,
    )


def call_modify(f: dict[str, int], nonce: int) -> Any:
    return LIB.SignModifyOrder(
        f["market_index"],
        f["index"],
        f["base_amount"],
        f["price"],
        f["trigger_price"],
        f["integrator_account_index"],
        f["integrator_taker_fee"],
        f["integrator_maker_fee"],
        f["self_trade_behavior"],
        f["self_trade_equality"],
        f["skip_nonce"],
        nonce,
        f["order_version"],
        AK,
        ACC,
    )


def call_cancel(f: dict[str, int], nonce: int) -> Any:
    return LIB.SignCancelOrder(f["market_index"], f["index"], f["skip_nonce"], nonce, AK, ACC)


def call_cancel_all(f: dict[str, int], nonce: int) -> Any:
    return LIB.SignCancelAllOrders(
        f["time_in_force"],
        f["scheduled_time_ms"],
        f["cancel_all_market_index"],
        f["skip_nonce"],
        nonce,
        AK,
        ACC,
    )


def call_leverage(f: dict[str, int], nonce: int) -> Any:
    return LIB.SignUpdateLeverage(
        f["market_index"],
        f["initial_margin_fraction"],
        f["margin_mode"],
        f["skip_nonce"],
        nonce,
        AK,
        ACC,
    )


CASES: dict[str, tuple[st.SearchStrategy[tuple[dict[str, int], int]], Callable[..., Any]]] = {
    "create_order": (create_requests(), call_create),
    "modify_order": (modify_requests(), call_modify),
    "cancel_order": (cancel_requests(), call_cancel),
    "cancel_all_orders": (cancel_all_requests(), call_cancel_all),
    "update_leverage": (leverage_requests(), call_leverage),
}


def _run(kind: str, n: int) -> None:
    strategy, call = CASES[kind]

    @_settings(n)
    @given(req=strategy)
    def check(req: tuple[dict[str, int], int]) -> None:
        fields, nonce = req
        r = call(fields, nonce)
        if _n_attrs(fields) > 4:
            # Both refuse a tx with more than 4 attributes.
            assert "attributes" in (_official(r)[2] or ""), (kind, fields)
            with pytest.raises(S.NativeSignerError, match="attributes"):
                S.tx_hash(
                    kind,
                    fields,
                    chain_id=CHAIN,
                    account_index=ACC,
                    api_key_index=AK,
                    nonce=nonce,
                    expired_at=1,
                )
            return
        _agree(kind, fields, r)

    check()


@pytest.mark.parametrize("n", _counts("create_order"))
def test_create_order_matches_official(n: int) -> None:
    _run("create_order", n)


@pytest.mark.parametrize("n", _counts("modify_order"))
def test_modify_order_matches_official(n: int) -> None:
    _run("modify_order", n)


@pytest.mark.parametrize("n", _counts("cancel_order"))
def test_cancel_order_matches_official(n: int) -> None:
    _run("cancel_order", n)


@pytest.mark.parametrize("n", _counts("cancel_all_orders"))
def test_cancel_all_orders_matches_official(n: int) -> None:
    _run("cancel_all_orders", n)


@pytest.mark.parametrize("n", _counts("update_leverage"))
def test_update_leverage_matches_official(n: int) -> None:
    _run("update_leverage", n)


def test_edge_requests_match_official() -> None:
    # Boundaries the random draws reach rarely, one by one.
    base = dict(
        market_index=0,
        client_order_index=0,
        base_amount=1,
        price=1,
        is_ask=0,
        order_type=0,
        time_in_force=1,
        reduce_only=0,
        trigger_price=0,
        order_expiry=1,
        integrator_account_index=0,
        integrator_taker_fee=0,
        integrator_maker_fee=0,
        skip_nonce=0,
        self_trade_behavior=0,
        self_trade_equality=0,
    )
    edges = [
        {},
        dict(price=U32),
        dict(client_order_index=MAX_INDEX, base_amount=MAX_INDEX),
        dict(market_index=32767),
        dict(order_expiry=I64 >> 1),
        dict(reduce_only=1, base_amount=0),
        dict(
            integrator_account_index=MAX_ACCOUNT,
            integrator_taker_fee=1_000_000,
            integrator_maker_fee=1_000_000,
            skip_nonce=1,
        ),
        dict(self_trade_behavior=3, self_trade_equality=0, skip_nonce=1),
        dict(self_trade_behavior=2, self_trade_equality=1, skip_nonce=1),
    ]
    for nonce in (0, 1, I64):
        for e in edges:
            f = base | e
            _agree("create_order", f, call_create(f, nonce))
    m = dict(
        market_index=0,
        index=MAX_ORDER_INDEX,
        base_amount=0,
        price=U32,
        trigger_price=U32,
        integrator_account_index=0,
        integrator_taker_fee=0,
        integrator_maker_fee=0,
        skip_nonce=0,
        self_trade_behavior=0,
        self_trade_equality=0,
        order_version=MAX_INDEX,
    )
    _agree("modify_order", m, call_modify(m, 0))
    for market in (0, 1, 254, 255):
        f = dict(time_in_force=0, scheduled_time_ms=0, cancel_all_market_index=market, skip_nonce=0)
        _agree("cancel_all_orders", f, call_cancel_all(f, 7))
    f = dict(time_in_force=1, scheduled_time_ms=I64, cancel_all_market_index=255, skip_nonce=1)
    _agree("cancel_all_orders", f, call_cancel_all(f, 7))
    for imf in (1, 10_000):
        f = dict(market_index=32767, initial_margin_fraction=imf, margin_mode=1, skip_nonce=0)
        _agree("update_leverage", f, call_leverage(f, 9))


# ------------------------------------------------------------------------------ auth tokens
DEADLINES = [1, 1_700_000_000, 1_783_955_882, 1 << 40]


def _official_token(deadline: int) -> str:
    r = LIB.CreateAuthToken(deadline, AK, ACC)
    tok, err = DEC(r.str), DEC(r.err)
    assert err is None and tok is not None
    return tok


def _tampered(token: str) -> list[str]:
    d, acc, key, sig = token.split(":")
    flipped = bytes([sig_b ^ 1 if i == 5 else sig_b for i, sig_b in enumerate(bytes.fromhex(sig))])
    last = bytearray(bytes.fromhex(sig))
    last[-1] ^= 0x80
    return [
        f"{int(d) + 1}:{acc}:{key}:{sig}",
        f"{d}:{int(acc) + 1}:{key}:{sig}",
        f"{d}:{acc}:{int(key) + 1}:{sig}",
        f"{d}:{acc}:{key}:{flipped.hex()}",
        f"{d}:{acc}:{key}:{last.hex()}",
        f"{d}:{acc}:{key}:{sig[:-2]}",
        f"{d}:{acc}:{key}:{sig}00",
        f"0{d}:{acc}:{key}:{sig}",  # same number, different text
        f"{d}:{acc}:{key}",
        f"{d}:{acc}:{key}:{sig}:x",
        "",
    ]


@pytest.mark.parametrize("deadline", DEADLINES)
def test_official_auth_token_verifies(deadline: int) -> None:
    tok = _official_token(deadline)
    assert tok.startswith(f"{deadline}:{ACC}:{AK}:")
    assert S.verify_auth_token(PK, tok)
    for bad in _tampered(tok):
        assert not S.verify_auth_token(PK, bad), bad
    other = S.public_key(bytes(reversed(SK)))
    assert not S.verify_auth_token(other, tok)


@pytest.mark.parametrize("deadline", DEADLINES)
def test_our_auth_token_verifies(deadline: int) -> None:
    tok = S.auth_token(SK, account_index=ACC, api_key_index=AK, deadline=deadline)
    official = _official_token(deadline)
    # Same text up to the signature (random nonce on both sides).
    assert tok.rsplit(":", 1)[0] == official.rsplit(":", 1)[0]
    assert len(tok.rsplit(":", 1)[1]) == 160
    assert S.verify_auth_token(PK, tok)
    for bad in _tampered(tok):
        assert not S.verify_auth_token(PK, bad), bad
    signer = S.NativeSigner(SK, chain_id=CHAIN, account_index=ACC, api_key_index=AK)
    try:
        mine = signer.auth_token(deadline)
    finally:
        signer.close()
    assert mine.rsplit(":", 1)[0] == tok.rsplit(":", 1)[0]
    assert S.verify_auth_token(PK, mine)


# ------------------------------------------------------------------------------ tampering
def _official_tx() -> tuple[bytes, bytes]:
    f = dict(market_index=1, index=42, skip_nonce=0)
    info, hx, err, _ = _official(call_cancel(f, 3))
    assert err is None and info is not None and hx is not None
    return bytes.fromhex(hx), base64.b64decode(json.loads(info)["Sig"])


def test_official_signature_verifies_untampered() -> None:
    h, sig = _official_tx()
    assert S.verify_hashed(PK, h, sig)


@pytest.mark.parametrize("byte", range(0, 80, 3))
def test_flipped_signature_bit_fails(byte: int) -> None:
    h, sig = _official_tx()
    for bit in (0, 3, 7):
        bad = bytearray(sig)
        bad[byte] ^= 1 << bit
        assert not S.verify_hashed(PK, h, bytes(bad)), (byte, bit)


@pytest.mark.parametrize("byte", range(0, 40, 3))
def test_flipped_message_bit_fails(byte: int) -> None:
    h, sig = _official_tx()
    for bit in (0, 5):
        bad = bytearray(h)
        bad[byte] ^= 1 << bit
        assert not S.verify_hashed(PK, bytes(bad), sig), (byte, bit)


def test_other_public_key_fails() -> None:
    h, sig = _official_tx()
    for other_sk in (bytes(reversed(SK)), (1).to_bytes(40, "little"), bytes([7]) * 40):
        assert not S.verify_hashed(S.public_key(other_sk), h, sig)
    assert not S.verify_hashed(bytes(40), h, sig)  # the neutral point
    assert not S.verify_hashed(b"\xff" * 40, h, sig)  # not a canonical field element


def test_non_canonical_s_or_e_fails() -> None:
    h, sig = _official_tx()
    s = int.from_bytes(sig[:40], "little")
    e = int.from_bytes(sig[40:], "little")
    assert s < N and e < N
    s_plus_n = (s + N).to_bytes(40, "little") + sig[40:]
    e_plus_n = sig[:40] + (e + N).to_bytes(40, "little")
    assert not S.verify_hashed(PK, h, s_plus_n)
    assert not S.verify_hashed(PK, h, e_plus_n)
    assert not S.verify_hashed(PK, h, b"\xff" * 80)


def test_wrong_lengths_and_types_fail() -> None:
    h, sig = _official_tx()
    assert not S.verify_hashed(PK, h, sig[:79])
    assert not S.verify_hashed(PK, h, sig + b"\0")
    assert not S.verify_hashed(PK, h[:39], sig)
    assert not S.verify_hashed(PK, h + b"\0", sig)
    assert not S.verify_hashed(PK[:39], h, sig)
    assert not S.verify_hashed(PK + b"\0", h, sig)
    assert not S.verify_hashed(PK, h, b"")
    assert not S.verify_hashed(PK.hex(), h, sig)
    assert not S.verify_hashed(PK, h.hex(), sig)
    assert not S.verify_hashed(PK, h, bytearray(sig))


# ------------------------------------------------------------------------------ refusals
CREATE_OK = dict(
    market_index=0,
    client_order_index=1,
    base_amount=1,
    price=1,
    is_ask=0,
    order_type=0,
    time_in_force=1,
    reduce_only=0,
    trigger_price=0,
    order_expiry=1_900_000_000_000,
    integrator_account_index=0,
    integrator_taker_fee=0,
    integrator_maker_fee=0,
    skip_nonce=0,
    self_trade_behavior=0,
    self_trade_equality=0,
)
MODIFY_OK = dict(
    market_index=0,
    index=1,
    base_amount=1,
    price=1,
    trigger_price=0,
    integrator_account_index=0,
    integrator_taker_fee=0,
    integrator_maker_fee=0,
    skip_nonce=0,
    self_trade_behavior=0,
    self_trade_equality=0,
    order_version=0,
)
CANCEL_OK = dict(market_index=0, index=1, skip_nonce=0)
LEV_OK = dict(market_index=0, initial_margin_fraction=100, margin_mode=0, skip_nonce=0)
CALLS = {
    "create_order": (CREATE_OK, call_create),
    "modify_order": (MODIFY_OK, call_modify),
    "cancel_order": (CANCEL_OK, call_cancel),
    "update_leverage": (LEV_OK, call_leverage),
}
# (kind, change): requests both the official signer and ours refuse.
REFUSED = [
    ("create_order", dict(price=0)),
    ("create_order", dict(price=1 << 32)),
    ("create_order", dict(market_index=-1)),
    ("create_order", dict(base_amount=1 << 48)),
    ("create_order", dict(client_order_index=1 << 48)),
    ("create_order", dict(is_ask=2)),
    ("create_order", dict(time_in_force=3)),
    ("create_order", dict(reduce_only=2)),
    ("create_order", dict(order_expiry=-2)),
    ("create_order", dict(integrator_account_index=(1 << 48) - 1)),
    ("create_order", dict(integrator_account_index=5, integrator_taker_fee=1_000_001)),
    ("create_order", dict(self_trade_behavior=4)),
    ("create_order", dict(self_trade_equality=2)),
    (
        "create_order",
        dict(
            integrator_account_index=5,
            integrator_taker_fee=1,
            integrator_maker_fee=1,
            skip_nonce=1,
            self_trade_behavior=1,
        ),
    ),
    ("modify_order", dict(index=0)),
    ("modify_order", dict(index=1 << 60)),
    ("modify_order", dict(price=0)),
    ("modify_order", dict(base_amount=1 << 48)),
    ("modify_order", dict(market_index=-1)),
    ("modify_order", dict(order_version=-1)),
    (
        "modify_order",
        dict(
            integrator_account_index=5,
            integrator_taker_fee=1,
            skip_nonce=1,
            self_trade_behavior=2,
            order_version=3,
        ),
    ),
    ("cancel_order", dict(index=0)),
    ("cancel_order", dict(index=1 << 60)),
    ("cancel_order", dict(market_index=-1)),
    ("update_leverage", dict(initial_margin_fraction=0)),
    ("update_leverage", dict(initial_margin_fraction=10_001)),
    ("update_leverage", dict(margin_mode=2)),
    ("update_leverage", dict(market_index=-1)),
]


def _refused_id(case: tuple[str, dict[str, int]]) -> str:
    kind, change = case
    return kind + ":" + ",".join(f"{k}={v}" for k, v in change.items())


@pytest.mark.parametrize("case", REFUSED, ids=[_refused_id(c) for c in REFUSED])
def test_both_refuse(case: tuple[str, dict[str, int]]) -> None:
    kind, change = case
    ok, call = CALLS[kind]
    fields = ok | change
    err = _official(call(fields, 5))[2]
    assert err, f"official signer accepted {fields}"
    with pytest.raises(S.NativeSignerError):
        S.sign_tx(
            kind,
            fields,
            sk=SK,
            chain_id=CHAIN,
            account_index=ACC,
            api_key_index=AK,
            nonce=5,
            expired_at=1,
        )
    with pytest.raises(S.NativeSignerError):
        S.tx_hash(
            kind, fields, chain_id=CHAIN, account_index=ACC, api_key_index=AK, nonce=5, expired_at=1
        )


def test_both_refuse_cancel_all() -> None:
    for tif, t, market in ((3, 0, 255), (0, 0, -1)):
        err = DEC(LIB.SignCancelAllOrders(tif, t, market, 0, 5, AK, ACC).err)
        assert err
        with pytest.raises(S.NativeSignerError):
            S.tx_hash(
                "cancel_all_orders",
                dict(time_in_force=tif, scheduled_time_ms=t, cancel_all_market_index=market),
                chain_id=CHAIN,
                account_index=ACC,
                api_key_index=AK,
                nonce=5,
                expired_at=1,
            )


@pytest.mark.parametrize(
    ("kind", "fields"),
    [
        ("create_order", CREATE_OK | dict(bogus=1)),
        ("cancel_order", CANCEL_OK | dict(order_version=1)),  # not an attribute of a cancel
        ("cancel_order", dict(market_index=0)),  # missing index
        ("update_leverage", LEV_OK | dict(cancel_all_market_index=3)),
        ("create_order", CREATE_OK | dict(price="1")),
        ("create_order", CREATE_OK | dict(price=1.0)),
        ("create_order", CREATE_OK | dict(price=None)),
        ("transfer", CANCEL_OK),
        ("", CANCEL_OK),
    ],
    ids=[
        "unknown-field",
        "attr-of-other-kind",
        "missing-field",
        "cancel-all-attr-on-leverage",
        "str-value",
        "float-value",
        "none-value",
        "unknown-kind",
        "empty-kind",
    ],
)
def test_we_refuse_malformed(kind: str, fields: dict[str, Any]) -> None:
    with pytest.raises(S.NativeSignerError):
        S.sign_tx(
            kind,
            fields,
            sk=SK,
            chain_id=CHAIN,
            account_index=ACC,
            api_key_index=AK,
            nonce=5,
            expired_at=1,
        )


@pytest.mark.parametrize(
    "envelope",
    [
        dict(nonce=-1),
        dict(expired_at=-1),
        dict(account_index=0),
        dict(api_key_index=255),
        dict(chain_id=-1),
        dict(chain_id=1 << 32),
        dict(nonce=1 << 63),
    ],
    ids=lambda e: ",".join(f"{k}={v}" for k, v in e.items()),
)
def test_we_refuse_bad_envelope(envelope: dict[str, int]) -> None:
    kw: dict[str, Any] = (
        dict(chain_id=CHAIN, account_index=ACC, api_key_index=AK, nonce=5, expired_at=1) | envelope
    )
    with pytest.raises((S.NativeSignerError, OverflowError)):
        S.tx_hash("cancel_order", CANCEL_OK, **kw)


# Requests the official signer refuses: the native signer refuses each of them too.
LENIENT = [
    ("create_order", dict(base_amount=0)),  # only a reduce-only order may have base 0
    ("create_order", dict(order_type=7)),
    ("create_order", dict(order_type=1, time_in_force=1)),  # market order must be IOC
    ("create_order", dict(time_in_force=0)),  # IOC limit with an expiry
    ("create_order", dict(trigger_price=5)),  # a limit order has no trigger
    ("create_order", dict(integrator_taker_fee=5)),  # fee without an integrator account
    ("create_order", dict(order_expiry=0)),  # GTT without expiry
    ("modify_order", dict(order_version=1 << 48)),
    ("create_order", dict(self_trade_behavior=3, self_trade_equality=1)),
    ("modify_order", dict(self_trade_behavior=3, self_trade_equality=1)),
    (
        "create_order",
        dict(integrator_account_index=5, integrator_taker_fee=1, self_trade_behavior=1),
    ),
    (
        "modify_order",
        dict(integrator_account_index=5, integrator_maker_fee=1, self_trade_equality=1),
    ),
    ("create_order", dict(market_index=255)),  # 255 means "no market" to the official signer
    ("modify_order", dict(market_index=255)),
    ("cancel_order", dict(market_index=255)),
    ("update_leverage", dict(market_index=255)),
]


@pytest.mark.parametrize("case", LENIENT, ids=[_refused_id(c) for c in LENIENT])
def test_official_refuses_native_refuses_too(case: tuple[str, dict[str, int]]) -> None:
    kind, change = case
    ok, call = CALLS[kind]
    fields = ok | change
    assert _official(call(fields, 5))[2], f"official signer accepted {fields}"
    with pytest.raises(S.NativeSignerError):
        S.sign_tx(
            kind,
            fields,
            sk=SK,
            chain_id=CHAIN,
            account_index=ACC,
            api_key_index=AK,
            nonce=5,
            expired_at=1,
        )


def test_default_order_expiry_is_refused() -> None:
    # order_expiry -1 asks the official signer for its default (now + 28 days, written into
    # tx_info): a clock-dependent value no differential test can pin. The native signer refuses
    # it and asks for an explicit expiry (mmfast always passes one).
    info, _, err, _ = _official(call_create(CREATE_OK | dict(order_expiry=-1), 5))
    assert err is None and info is not None
    assert json.loads(info)["OrderExpiry"] > 0
    with pytest.raises(S.NativeSignerError, match="order_expiry"):
        S.sign_tx(
            "create_order",
            CREATE_OK | dict(order_expiry=-1),
            sk=SK,
            chain_id=CHAIN,
            account_index=ACC,
            api_key_index=AK,
            nonce=5,
            expired_at=1,
        )
