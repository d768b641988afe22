"""The native signer's refusals, each on the path that reaches it, with its exact reason.

``_validate`` holds the official signer's rules; ``_body_from_fields`` (both ``sign_tx``) and
``_check_envelope`` (module ``sign_tx`` / ``tx_hash``) check each field's range before it, so a
value out of a field's range is refused there (``"<field> must be an int in lo..hi"``) and
reaches ``_validate`` only through the typed ``NativeSigner`` methods, which take C ints. Each
rule below: the bad request refused on every path with its reason (no key in the text), the
signer still signing afterwards, and the boundary request signing alike on every path (the same
hash, the same tx_info less Sig, a signature that verifies). Then ``tx_info_hash``'s refusals
and its hash of txs with attributes, and the primitives' refusals.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from test_signer_native import _assert_no_key as _assert_no_key_of  # same directory
from test_signer_native import _less_sig

from mmfast._core import signer as S

CHAIN = 304
ACC = 7_777_003
AK = 203
NONCE = 5
EXPIRED_AT = 1_783_955_882_585
EXPIRY = 1_900_000_000_000  # an order expiry, epoch ms

MAX48 = (1 << 48) - 1
U32 = (1 << 32) - 1
MAX60 = (1 << 60) - 1
I64 = (1 << 63) - 1

# A fixed key, already below the group order (so its text is the one to look for).
SK = S.scalar_op("add", hashlib.sha512(b"mmfast test_signer_refusals").digest()[:40], bytes(40))
PK = S.public_key(SK)

BASE: dict[str, dict[str, int]] = {
    "create_order": dict(
        market_index=3,
        client_order_index=77,
        base_amount=1_000,
        price=405_000,
        is_ask=1,
        order_type=0,
        time_in_force=1,
        reduce_only=0,
        trigger_price=0,
        order_expiry=EXPIRY,
    ),
    "cancel_order": dict(market_index=3, index=77),
    "cancel_all_orders": dict(time_in_force=0, scheduled_time_ms=0),
    "modify_order": dict(
        market_index=3, index=77, base_amount=2_000, price=410_000, trigger_price=0
    ),
    "update_leverage": dict(market_index=3, initial_margin_fraction=500, margin_mode=1),
}

# Kind -> (NativeSigner method, its fields in argument order before nonce and expiry).
METHODS: dict[str, tuple[str, tuple[str, ...]]] = {
    "create_order": (
        "sign_create_order",
        (
            "market_index",
            "client_order_index",
            "base_amount",
            "price",
            "is_ask",
            "order_type",
            "time_in_force",
            "reduce_only",
            "trigger_price",
            "order_expiry",
        ),
    ),
    "cancel_order": ("sign_cancel_order", ("market_index", "index")),
    "cancel_all_orders": (
        "sign_cancel_all",
        ("time_in_force", "scheduled_time_ms", "cancel_all_market_index"),
    ),
    "modify_order": (
        "sign_modify_order",
        ("market_index", "index", "base_amount", "price", "trigger_price"),
    ),
    "update_leverage": (
        "sign_update_leverage",
        ("market_index", "initial_margin_fraction", "margin_mode"),
    ),
}

JSON_NAMES = {
    "market_index": "MarketIndex",
    "client_order_index": "ClientOrderIndex",
    "base_amount": "BaseAmount",
    "price": "Price",
    "is_ask": "IsAsk",
    "order_type": "Type",
    "time_in_force": "TimeInForce",
    "reduce_only": "ReduceOnly",
    "trigger_price": "TriggerPrice",
    "order_expiry": "OrderExpiry",
    "index": "Index",
    "scheduled_time_ms": "Time",
    "initial_margin_fraction": "InitialMarginFraction",
    "margin_mode": "MarginMode",
}
# Attribute field -> (L2TxAttributes key, its nil value: left out of tx_info).
ATTRS = {
    "integrator_account_index": ("1", 0),
    "integrator_taker_fee": ("2", 0),
    "integrator_maker_fee": ("3", 0),
    "skip_nonce": ("4", 0),
    "cancel_all_market_index": ("5", 255),
    "self_trade_behavior": ("6", 0),
    "self_trade_equality": ("7", 0),
    "order_version": ("8", 0),
}


@pytest.fixture
def signer() -> Iterator[S.NativeSigner]:
    s = S.NativeSigner(SK, chain_id=CHAIN, account_index=ACC, api_key_index=AK, pool_size=0)
    yield s
    s.close()


# ------------------------------------------------------------------------------ helpers
def _assert_no_key(text: str) -> None:
    _assert_no_key_of(text, SK)


def _has_method(kind: str, fields: dict[str, int]) -> bool:
    return set(fields) <= set(METHODS[kind][1])


def _by_method(
    s: S.NativeSigner, kind: str, fields: dict[str, int], nonce: int, expired_at: int
) -> tuple[str, str]:
    name, order = METHODS[kind]
    args = [fields.get(f, ATTRS[f][1] if f in ATTRS else None) for f in order]
    return getattr(s, name)(*args, nonce, expired_at)


def _module(kind: str, fields: dict[str, int], nonce: int, expired_at: int) -> tuple[str, bytes]:
    return S.sign_tx(
        kind,
        fields,
        sk=SK,
        chain_id=CHAIN,
        account_index=ACC,
        api_key_index=AK,
        nonce=nonce,
        expired_at=expired_at,
    )


def _module_hash(kind: str, fields: dict[str, int], nonce: int, expired_at: int) -> bytes:
    return S.tx_hash(
        kind,
        fields,
        chain_id=CHAIN,
        account_index=ACC,
        api_key_index=AK,
        nonce=nonce,
        expired_at=expired_at,
    )


def _paths(
    s: S.NativeSigner, kind: str, fields: dict[str, int], nonce: int, expired_at: int
) -> dict[str, Callable[[], Any]]:
    """Every public way to sign (or hash) this request: name -> call."""
    paths: dict[str, Callable[[], Any]] = {
        "module sign_tx": lambda: _module(kind, fields, nonce, expired_at),
        "module tx_hash": lambda: _module_hash(kind, fields, nonce, expired_at),
        "NativeSigner.sign_tx": lambda: s.sign_tx(kind, fields, nonce=nonce, expired_at=expired_at),
    }
    if _has_method(kind, fields):
        paths["method"] = lambda: _by_method(s, kind, fields, nonce, expired_at)
    return paths


def _refused(call: Callable[[], Any]) -> str:
    with pytest.raises(S.NativeSignerError) as ei:
        call()
    text = str(ei.value)
    _assert_no_key(text)
    _assert_no_key(repr(ei.value))
    return text


def _signs_alike(
    s: S.NativeSigner,
    kind: str,
    fields: dict[str, int],
    nonce: int = NONCE,
    expired_at: int = EXPIRED_AT,
) -> dict[str, Any]:
    """``fields`` signed by the module, the signer's ``sign_tx`` and (when it has one) its
    typed method: one hash, one tx_info less Sig, carrying exactly these values, verifying."""
    info, hx = s.sign_tx(kind, fields, nonce=nonce, expired_at=expired_at)
    ref_info, ref_h = _module(kind, fields, nonce, expired_at)
    assert hx == ref_h.hex() == _module_hash(kind, fields, nonce, expired_at).hex()
    assert _less_sig(info) == _less_sig(ref_info)
    if _has_method(kind, fields):
        m_info, m_hx = _by_method(s, kind, fields, nonce, expired_at)
        assert m_hx == hx and _less_sig(m_info) == _less_sig(info)
        assert S.verify_hashed(PK, bytes.fromhex(m_hx), base64.b64decode(json.loads(m_info)["Sig"]))
    parsed = json.loads(info)
    assert (parsed["AccountIndex"], parsed["ApiKeyIndex"]) == (ACC, AK)
    assert (parsed["Nonce"], parsed["ExpiredAt"]) == (nonce, expired_at)
    attrs = parsed["L2TxAttributes"] or {}
    for field, value in fields.items():
        if field in ATTRS:
            key, nil = ATTRS[field]
            assert attrs.get(key, nil) == value, field
        else:
            assert parsed[JSON_NAMES[field]] == value, field
    assert S.tx_info_hash(S.TX_TYPES[kind], parsed, CHAIN).hex() == hx
    assert S.verify_hashed(PK, bytes.fromhex(hx), base64.b64decode(parsed["Sig"]))
    return parsed


def _still_signs(s: S.NativeSigner) -> None:
    # A refused request leaves nothing behind: the next valid one signs as ever.
    _signs_alike(s, "cancel_order", BASE["cancel_order"])


def _case_id(case: tuple[Any, ...]) -> str:
    kind, change = case[0], case[1]
    return kind + ":" + ",".join(f"{k}={v}" for k, v in change.items())


# ------------------------------------------------------------------------------ tx rules
# (kind, change to BASE[kind], reason, the boundary change that signs): rules every path
# reaches, each field within its own range.
RULES: list[tuple[str, dict[str, int], str, dict[str, int]]] = [
    (
        "create_order",
        dict(market_index=255),
        "market_index must be within 0..2^48-1 and not 255 (no market)",
        dict(market_index=256),
    ),
    (
        "modify_order",
        dict(market_index=255),
        "market_index must be within 0..2^48-1 and not 255 (no market)",
        dict(market_index=254),
    ),
    (
        "cancel_order",
        dict(market_index=255),
        "market_index must be within 0..2^48-1 and not 255 (no market)",
        dict(market_index=MAX48),
    ),
    (
        "update_leverage",
        dict(market_index=255),
        "market_index must be within 0..2^48-1 and not 255 (no market)",
        dict(market_index=0),
    ),
    (
        "create_order",
        dict(base_amount=0),
        "base_amount 0 needs reduce_only",
        dict(base_amount=0, reduce_only=1),
    ),
    ("create_order", dict(order_type=7), "order_type must be 0..6", dict(order_type=6)),
    ("create_order", dict(order_type=8), "order_type must be 0..6", dict(order_type=6)),
    (
        "create_order",
        dict(order_type=1, time_in_force=1, order_expiry=0),
        "a market order is IOC with no expiry and no trigger",
        dict(order_type=1, time_in_force=0, order_expiry=0),
    ),
    (
        "create_order",
        dict(order_type=1, time_in_force=0, order_expiry=1),
        "a market order is IOC with no expiry and no trigger",
        dict(order_type=1, time_in_force=0, order_expiry=0),
    ),
    (
        "create_order",
        dict(order_type=1, time_in_force=0, order_expiry=0, trigger_price=1),
        "a market order is IOC with no expiry and no trigger",
        dict(order_type=1, time_in_force=0, order_expiry=0, trigger_price=0),
    ),
    (
        "create_order",
        dict(trigger_price=1),
        "a limit order takes no trigger price",
        dict(trigger_price=0),
    ),
    (
        "create_order",
        dict(time_in_force=0),
        "a limit order has an expiry unless it is IOC",
        dict(time_in_force=0, order_expiry=0),
    ),
    (
        "create_order",
        dict(time_in_force=2, order_expiry=0),
        "a limit order has an expiry unless it is IOC",
        dict(time_in_force=2, order_expiry=1),
    ),
    (
        "create_order",
        dict(order_type=2, time_in_force=0, trigger_price=0),
        "stop-loss / take-profit: IOC, a trigger and an expiry",
        dict(order_type=2, time_in_force=0, trigger_price=1),
    ),
    (
        "create_order",
        dict(order_type=4, time_in_force=1, trigger_price=400_000),
        "stop-loss / take-profit: IOC, a trigger and an expiry",
        dict(order_type=4, time_in_force=0, trigger_price=400_000),
    ),
    (
        "create_order",
        dict(order_type=2, time_in_force=0, trigger_price=400_000, order_expiry=0),
        "stop-loss / take-profit: IOC, a trigger and an expiry",
        dict(order_type=2, time_in_force=0, trigger_price=400_000, order_expiry=1),
    ),
    (
        "create_order",
        dict(order_type=3, trigger_price=0),
        "stop-loss / take-profit limit: a trigger and an expiry",
        dict(order_type=3, trigger_price=U32),
    ),
    (
        "create_order",
        dict(order_type=5, trigger_price=400_000, order_expiry=0),
        "stop-loss / take-profit limit: a trigger and an expiry",
        dict(order_type=5, trigger_price=400_000, order_expiry=1),
    ),
    (
        "create_order",
        dict(order_type=6, time_in_force=0),
        "a TWAP order is GTT with an expiry and no trigger",
        dict(order_type=6, time_in_force=1),
    ),
    (
        "create_order",
        dict(order_type=6, trigger_price=1),
        "a TWAP order is GTT with an expiry and no trigger",
        dict(order_type=6, trigger_price=0),
    ),
    (
        "create_order",
        dict(order_type=6, order_expiry=0),
        "a TWAP order is GTT with an expiry and no trigger",
        dict(order_type=6, order_expiry=1),
    ),
    (
        "create_order",
        dict(integrator_taker_fee=5),
        "integrator fees need an integrator_account_index",
        dict(integrator_taker_fee=5, integrator_account_index=9),
    ),
    (
        "modify_order",
        dict(integrator_maker_fee=1_000_000),
        "integrator fees need an integrator_account_index",
        dict(integrator_maker_fee=1_000_000, integrator_account_index=MAX48 - 1),
    ),
    (
        "create_order",
        dict(integrator_account_index=9, integrator_maker_fee=5, self_trade_behavior=1),
        "a self-trade mode cannot go with integrator fees",
        dict(integrator_account_index=9, self_trade_behavior=1),
    ),
    (
        "modify_order",
        dict(integrator_account_index=9, integrator_taker_fee=5, self_trade_equality=1),
        "a self-trade mode cannot go with integrator fees",
        dict(integrator_account_index=9, integrator_taker_fee=5),
    ),
    (
        "create_order",
        dict(self_trade_behavior=3, self_trade_equality=1),
        "self-trade reduce mode cannot go with master-account equality",
        dict(self_trade_behavior=2, self_trade_equality=1),
    ),
    (
        "modify_order",
        dict(self_trade_behavior=3, self_trade_equality=1),
        "self-trade reduce mode cannot go with master-account equality",
        dict(self_trade_behavior=3, self_trade_equality=0),
    ),
    (
        # Five attributes; _body_from_fields refuses them with the same words as _validate.
        "modify_order",
        dict(
            integrator_account_index=9,
            skip_nonce=1,
            self_trade_behavior=1,
            self_trade_equality=1,
            order_version=4,
        ),
        "at most 4 tx attributes",
        dict(integrator_account_index=9, skip_nonce=1, self_trade_behavior=1, order_version=4),
    ),
    (
        "create_order",
        dict(
            integrator_account_index=9,
            integrator_taker_fee=1,
            integrator_maker_fee=1,
            skip_nonce=1,
            self_trade_behavior=1,
        ),
        "at most 4 tx attributes",
        dict(
            integrator_account_index=9,
            integrator_taker_fee=1,
            integrator_maker_fee=1,
            skip_nonce=1,
        ),
    ),
    (
        "cancel_all_orders",
        dict(time_in_force=1, scheduled_time_ms=EXPIRY, cancel_all_market_index=3),
        "a market-scoped cancel-all can only be immediate",
        dict(time_in_force=0, scheduled_time_ms=0, cancel_all_market_index=3),
    ),
    (
        "cancel_all_orders",
        dict(time_in_force=2, scheduled_time_ms=0, cancel_all_market_index=0),
        "a market-scoped cancel-all can only be immediate",
        dict(time_in_force=2, scheduled_time_ms=0, cancel_all_market_index=255),
    ),
    (
        "cancel_all_orders",
        dict(time_in_force=0, scheduled_time_ms=1),
        "an immediate or abort cancel-all takes time 0",
        dict(time_in_force=0, scheduled_time_ms=0),
    ),
    (
        "cancel_all_orders",
        dict(time_in_force=2, scheduled_time_ms=EXPIRY),
        "an immediate or abort cancel-all takes time 0",
        dict(time_in_force=2, scheduled_time_ms=0),
    ),
    (
        "cancel_all_orders",
        dict(time_in_force=1, scheduled_time_ms=0),
        "a scheduled cancel-all needs a time",
        dict(time_in_force=1, scheduled_time_ms=1),
    ),
]


@pytest.mark.parametrize(("kind", "bad", "reason", "good"), RULES, ids=[_case_id(c) for c in RULES])
def test_rule_refused_on_every_path_and_the_boundary_signs(
    signer: S.NativeSigner,
    kind: str,
    bad: dict[str, int],
    reason: str,
    good: dict[str, int],
) -> None:
    fields = BASE[kind] | bad
    paths = _paths(signer, kind, fields, NONCE, EXPIRED_AT)
    assert len(paths) == 3 + _has_method(kind, fields)
    for name, call in paths.items():
        assert _refused(call) == f"{kind}: {reason}", name
    _still_signs(signer)
    _signs_alike(signer, kind, BASE[kind] | good)


# (kind, change, _validate's reason, the field-range refusal both sign_tx give first, the
# boundary change that signs): values out of a field's range, which only the typed methods
# (C ints, no range check of their own) carry to _validate.
METHOD_RULES: list[tuple[str, dict[str, int], str, str, dict[str, int]]] = [
    (
        "create_order",
        dict(market_index=-1),
        "market_index must be within 0..2^48-1 and not 255 (no market)",
        f"market_index must be an int in 0..{MAX48}, got -1",
        dict(market_index=0),
    ),
    (
        "create_order",
        dict(market_index=MAX48 + 1),
        "market_index must be within 0..2^48-1 and not 255 (no market)",
        f"market_index must be an int in 0..{MAX48}, got {MAX48 + 1}",
        dict(market_index=MAX48),
    ),
    (
        "create_order",
        dict(client_order_index=MAX48 + 1),
        "client_order_index out of range",
        f"client_order_index must be an int in 0..{MAX48}, got {MAX48 + 1}",
        dict(client_order_index=MAX48),
    ),
    (
        "create_order",
        dict(client_order_index=-1),
        "client_order_index out of range",
        f"client_order_index must be an int in 0..{MAX48}, got -1",
        dict(client_order_index=0),
    ),
    (
        "create_order",
        dict(base_amount=MAX48 + 1),
        "base_amount out of range",
        f"base_amount must be an int in 0..{MAX48}, got {MAX48 + 1}",
        dict(base_amount=MAX48),
    ),
    (
        "create_order",
        dict(base_amount=-1),
        "base_amount out of range",
        f"base_amount must be an int in 0..{MAX48}, got -1",
        dict(base_amount=1),
    ),
    (
        "create_order",
        dict(price=0),
        "price out of range (1..2^32-1)",
        f"price must be an int in 1..{U32}, got 0",
        dict(price=1),
    ),
    (
        "create_order",
        dict(price=U32 + 1),
        "price out of range (1..2^32-1)",
        f"price must be an int in 1..{U32}, got {U32 + 1}",
        dict(price=U32),
    ),
    (
        "create_order",
        dict(time_in_force=3),
        "time_in_force must be 0, 1 or 2",
        "time_in_force must be an int in 0..2, got 3",
        dict(time_in_force=2),
    ),
    (
        "create_order",
        dict(time_in_force=-1),
        "time_in_force must be 0, 1 or 2",
        "time_in_force must be an int in 0..2, got -1",
        dict(time_in_force=0, order_expiry=0),
    ),
    (
        "create_order",
        dict(order_expiry=-1),
        "order_expiry must be 0 (none) or an epoch millisecond",
        f"order_expiry must be an int in 0..{I64}, got -1",
        dict(time_in_force=0, order_expiry=0),
    ),
    (
        "create_order",
        dict(order_type=3, trigger_price=U32 + 1),
        "trigger_price out of range",
        f"trigger_price must be an int in 0..{U32}, got {U32 + 1}",
        dict(order_type=3, trigger_price=U32),
    ),
    (
        "create_order",
        dict(trigger_price=-1),
        "trigger_price out of range",
        f"trigger_price must be an int in 0..{U32}, got -1",
        dict(trigger_price=0),
    ),
    (
        "create_order",
        dict(order_type=-1),
        "order_type must be 0..6",
        "order_type must be an int in 0..8, got -1",
        dict(order_type=0),
    ),
    (
        "cancel_order",
        dict(index=0),
        "index out of range (1..2^60-1)",
        f"index must be an int in 1..{MAX60}, got 0",
        dict(index=1),
    ),
    (
        "cancel_order",
        dict(index=MAX60 + 1),
        "index out of range (1..2^60-1)",
        f"index must be an int in 1..{MAX60}, got {MAX60 + 1}",
        dict(index=MAX60),
    ),
    (
        "cancel_order",
        dict(market_index=-1),
        "market_index must be within 0..2^48-1 and not 255 (no market)",
        f"market_index must be an int in 0..{MAX48}, got -1",
        dict(market_index=0),
    ),
    (
        "modify_order",
        dict(index=0),
        "index out of range (1..2^60-1)",
        f"index must be an int in 1..{MAX60}, got 0",
        dict(index=1),
    ),
    (
        "modify_order",
        dict(index=MAX60 + 1),
        "index out of range (1..2^60-1)",
        f"index must be an int in 1..{MAX60}, got {MAX60 + 1}",
        dict(index=MAX60),
    ),
    (
        "modify_order",
        dict(base_amount=MAX48 + 1),
        "base_amount out of range",
        f"base_amount must be an int in 0..{MAX48}, got {MAX48 + 1}",
        dict(base_amount=MAX48),
    ),
    (
        "modify_order",
        dict(base_amount=-1),
        "base_amount out of range",
        f"base_amount must be an int in 0..{MAX48}, got -1",
        dict(base_amount=0),
    ),
    (
        "modify_order",
        dict(price=0),
        "price out of range (1..2^32-1)",
        f"price must be an int in 1..{U32}, got 0",
        dict(price=1),
    ),
    (
        "modify_order",
        dict(price=U32 + 1),
        "price out of range (1..2^32-1)",
        f"price must be an int in 1..{U32}, got {U32 + 1}",
        dict(price=U32),
    ),
    (
        "modify_order",
        dict(trigger_price=U32 + 1),
        "trigger_price out of range",
        f"trigger_price must be an int in 0..{U32}, got {U32 + 1}",
        dict(trigger_price=U32),
    ),
    (
        "modify_order",
        dict(trigger_price=-1),
        "trigger_price out of range",
        f"trigger_price must be an int in 0..{U32}, got -1",
        dict(trigger_price=0),
    ),
    (
        "cancel_all_orders",
        dict(time_in_force=3),
        "cancel-all time_in_force must be 0, 1 or 2",
        "time_in_force must be an int in 0..2, got 3",
        dict(time_in_force=2),
    ),
    (
        "cancel_all_orders",
        dict(time_in_force=-1),
        "cancel-all time_in_force must be 0, 1 or 2",
        "time_in_force must be an int in 0..2, got -1",
        dict(time_in_force=0),
    ),
    (
        "cancel_all_orders",
        dict(cancel_all_market_index=256),
        "cancel_all_market_index out of range",
        "cancel_all_market_index must be an int in 0..255, got 256",
        dict(cancel_all_market_index=254),
    ),
    (
        "cancel_all_orders",
        dict(cancel_all_market_index=-1),
        "cancel_all_market_index out of range",
        "cancel_all_market_index must be an int in 0..255, got -1",
        dict(cancel_all_market_index=0),
    ),
    (
        "update_leverage",
        dict(margin_mode=2),
        "margin_mode must be 0 or 1",
        "margin_mode must be an int in 0..1, got 2",
        dict(margin_mode=0),
    ),
    (
        "update_leverage",
        dict(margin_mode=-1),
        "margin_mode must be 0 or 1",
        "margin_mode must be an int in 0..1, got -1",
        dict(margin_mode=1),
    ),
    (
        "update_leverage",
        dict(initial_margin_fraction=0),
        "initial_margin_fraction out of range (1..10000)",
        "initial_margin_fraction must be an int in 1..10000, got 0",
        dict(initial_margin_fraction=1),
    ),
    (
        "update_leverage",
        dict(initial_margin_fraction=10_001),
        "initial_margin_fraction out of range (1..10000)",
        "initial_margin_fraction must be an int in 1..10000, got 10001",
        dict(initial_margin_fraction=10_000),
    ),
    (
        "update_leverage",
        dict(market_index=-1),
        "market_index must be within 0..2^48-1 and not 255 (no market)",
        f"market_index must be an int in 0..{MAX48}, got -1",
        dict(market_index=MAX48),
    ),
]


@pytest.mark.parametrize(
    ("kind", "bad", "reason", "range_refusal", "good"),
    METHOD_RULES,
    ids=[_case_id(c) for c in METHOD_RULES],
)
def test_out_of_range_field_refused_by_method_rule_and_by_sign_tx_range(
    signer: S.NativeSigner,
    kind: str,
    bad: dict[str, int],
    reason: str,
    range_refusal: str,
    good: dict[str, int],
) -> None:
    fields = BASE[kind] | bad
    paths = _paths(signer, kind, fields, NONCE, EXPIRED_AT)
    assert _refused(paths.pop("method")) == f"{kind}: {reason}"
    for name, call in paths.items():
        assert _refused(call) == range_refusal, name
    _still_signs(signer)
    _signs_alike(signer, kind, BASE[kind] | good)


# (kind, change, refusal): values both sign_tx refuse at the field's range check, for which no
# public path reaches _validate's rule (the methods take no attributes but the cancel-all
# market, and is_ask / reduce_only arrive as C bints).
RANGE_ONLY: list[tuple[str, dict[str, int], str]] = [
    ("create_order", dict(is_ask=2), "is_ask must be an int in 0..1, got 2"),
    ("create_order", dict(reduce_only=-1), "reduce_only must be an int in 0..1, got -1"),
    (
        "create_order",
        dict(integrator_account_index=MAX48),
        f"integrator_account_index must be an int in 0..{MAX48 - 1}, got {MAX48}",
    ),
    (
        "create_order",
        dict(integrator_account_index=9, integrator_taker_fee=1_000_001),
        "integrator_taker_fee must be an int in 0..1000000, got 1000001",
    ),
    (
        "modify_order",
        dict(integrator_account_index=9, integrator_maker_fee=-1),
        "integrator_maker_fee must be an int in 0..1000000, got -1",
    ),
    ("cancel_order", dict(skip_nonce=2), "skip_nonce must be an int in 0..1, got 2"),
    (
        "create_order",
        dict(self_trade_behavior=4),
        "self_trade_behavior must be an int in 0..3, got 4",
    ),
    (
        "modify_order",
        dict(self_trade_equality=2),
        "self_trade_equality must be an int in 0..1, got 2",
    ),
    (
        "modify_order",
        dict(order_version=MAX48 + 1),
        f"order_version must be an int in 0..{MAX48}, got {MAX48 + 1}",
    ),
]


@pytest.mark.parametrize(
    ("kind", "bad", "refusal"), RANGE_ONLY, ids=[_case_id(c) for c in RANGE_ONLY]
)
def test_attribute_and_flag_ranges_refused_before_the_rules(
    signer: S.NativeSigner, kind: str, bad: dict[str, int], refusal: str
) -> None:
    fields = BASE[kind] | bad
    paths = _paths(signer, kind, fields, NONCE, EXPIRED_AT)
    paths.pop("method", None)
    for name, call in paths.items():
        assert _refused(call) == refusal, name
    _still_signs(signer)


# ------------------------------------------------------------------------------ envelope
@pytest.mark.parametrize("kind", sorted(BASE))
def test_expired_at_past_2_48_refused_on_every_path(signer: S.NativeSigner, kind: str) -> None:
    paths = _paths(signer, kind, BASE[kind], NONCE, MAX48 + 1)
    assert "method" in paths
    for name, call in paths.items():
        assert _refused(call) == f"{kind}: expired_at must be within 0..2^48-1", name
    _still_signs(signer)
    _signs_alike(signer, kind, BASE[kind], expired_at=MAX48)
    _signs_alike(signer, kind, BASE[kind], expired_at=0)


@pytest.mark.parametrize("kind", sorted(BASE))
@pytest.mark.parametrize(
    ("nonce", "expired_at", "reason", "range_refusal"),
    [
        (-1, EXPIRED_AT, "nonce must be >= 0", f"nonce must be an int in 0..{I64}, got -1"),
        (
            NONCE,
            -1,
            "expired_at must be within 0..2^48-1",
            f"expired_at must be an int in 0..{I64}, got -1",
        ),
    ],
    ids=["nonce=-1", "expired_at=-1"],
)
def test_negative_nonce_or_expiry_refused_by_the_signer_and_by_the_module_envelope(
    signer: S.NativeSigner,
    kind: str,
    nonce: int,
    expired_at: int,
    reason: str,
    range_refusal: str,
) -> None:
    # The NativeSigner takes nonce and expiry as C ints straight to _validate; the module
    # functions check the envelope's ranges first.
    paths = _paths(signer, kind, BASE[kind], nonce, expired_at)
    for name in ("NativeSigner.sign_tx", "method"):
        assert _refused(paths.pop(name)) == f"{kind}: {reason}", name
    for name, call in paths.items():
        assert _refused(call) == range_refusal, name
    _still_signs(signer)
    _signs_alike(signer, kind, BASE[kind], nonce=0)


def test_a_key_put_in_a_field_is_not_echoed(signer: S.NativeSigner) -> None:
    as_int = int.from_bytes(SK, "little")
    fields = BASE["create_order"] | dict(client_order_index=as_int)
    paths = _paths(signer, "create_order", fields, NONCE, EXPIRED_AT)
    method = paths.pop("method")
    for name, call in paths.items():
        assert _refused(call) == f"client_order_index must be an int in 0..{MAX48}, got a int", name
    # The typed method cannot take it as a C int at all.
    with pytest.raises(OverflowError) as ei:
        method()
    _assert_no_key(str(ei.value))
    _still_signs(signer)


# ------------------------------------------------------------------------------ tx_info text
def test_sig_is_standard_base64_of_80_bytes_with_one_pad(signer: S.NativeSigner) -> None:
    # 80 bytes = 26 groups of 3 and 2 left over: one "=" (the writer's "==" branch needs a
    # length of 1 mod 3, which no signature has).
    for kind, fields in BASE.items():
        info, _ = signer.sign_tx(kind, fields, nonce=NONCE, expired_at=EXPIRED_AT)
        text = json.loads(info)["Sig"]
        sig = base64.b64decode(text, validate=True)
        assert len(sig) == 80 and len(text) == 108
        assert text == base64.b64encode(sig).decode()
        assert text.endswith("=") and not text.endswith("==")


# ------------------------------------------------------------------------------ tx_info_hash
def _signed_info(
    signer: S.NativeSigner, kind: str = "create_order", extra: dict[str, int] | None = None
) -> tuple[dict[str, Any], bytes]:
    info, hx = signer.sign_tx(kind, BASE[kind] | (extra or {}), nonce=NONCE, expired_at=EXPIRED_AT)
    return json.loads(info), bytes.fromhex(hx)


ENVELOPE_MISSING = "tx_info: AccountIndex, ApiKeyIndex, Nonce or ExpiredAt missing"
ENVELOPE_NOT_INT = "tx_info: AccountIndex, ApiKeyIndex, Nonce and ExpiredAt must be ints >= 0"


@pytest.mark.parametrize("key", ["AccountIndex", "ApiKeyIndex", "Nonce", "ExpiredAt"])
def test_tx_info_hash_refuses_a_missing_envelope_field(signer: S.NativeSigner, key: str) -> None:
    info, h = _signed_info(signer)
    assert S.tx_info_hash(14, info, CHAIN) == h
    del info[key]
    assert _refused(lambda: S.tx_info_hash(14, info, CHAIN)) == ENVELOPE_MISSING


class _NoGet:
    """Indexable, but no ``get`` (not a mapping)."""

    def __init__(self, d: dict[str, Any]) -> None:
        self.d = d

    def __getitem__(self, k: str) -> Any:
        return self.d[k]


@pytest.mark.parametrize("make", ["none", "list", "text", "no-get"])
def test_tx_info_hash_refuses_what_is_not_a_mapping(signer: S.NativeSigner, make: str) -> None:
    info, _ = _signed_info(signer)
    bad = {"none": None, "list": [info], "text": json.dumps(info), "no-get": _NoGet(info)}[make]
    assert _refused(lambda: S.tx_info_hash(14, bad, CHAIN)) == ENVELOPE_MISSING


@pytest.mark.parametrize("key", ["AccountIndex", "ApiKeyIndex", "Nonce", "ExpiredAt"])
@pytest.mark.parametrize("value", ["5", True, -1, I64 + 1, 5.0, None], ids=repr)
def test_tx_info_hash_refuses_an_envelope_field_not_an_int(
    signer: S.NativeSigner, key: str, value: Any
) -> None:
    info, _ = _signed_info(signer)
    info[key] = value
    assert _refused(lambda: S.tx_info_hash(14, info, CHAIN)) == ENVELOPE_NOT_INT


@pytest.mark.parametrize(
    ("attrs", "refusal"),
    [
        ([4, 1], "tx_info: bad L2TxAttributes"),
        ("x", "tx_info: bad L2TxAttributes"),
        ({"9": 1}, "tx_info: bad L2TxAttributes"),
        ({"0": 1}, "tx_info: bad L2TxAttributes"),
        ({4: 1}, "tx_info: bad L2TxAttributes"),
        ({"1": 9, "2": 1, "3": 1, "4": 1, "6": 1}, "tx_info: at most 4 L2TxAttributes"),
        ({"4": True}, "tx_info: bad L2TxAttributes value"),
        ({"4": "1"}, "tx_info: bad L2TxAttributes value"),
        ({"4": 1.0}, "tx_info: bad L2TxAttributes value"),
        ({"4": None}, "tx_info: bad L2TxAttributes value"),
        ({"1": I64 + 1}, "tx_info: bad L2TxAttributes value"),
        ({"1": -I64 - 1}, "tx_info: bad L2TxAttributes value"),
    ],
    ids=repr,
)
def test_tx_info_hash_refuses_bad_attributes(
    signer: S.NativeSigner, attrs: Any, refusal: str
) -> None:
    info, _ = _signed_info(signer)
    info["L2TxAttributes"] = attrs
    assert _refused(lambda: S.tx_info_hash(14, info, CHAIN)) == refusal


@pytest.mark.parametrize(
    "attrs", [None, {}, [], {"4": 0}, {"5": 255}, {"4": 0, "5": 255, "8": 0}], ids=repr
)
def test_tx_info_hash_reads_empty_or_nil_attributes_as_none(
    signer: S.NativeSigner, attrs: Any
) -> None:
    # Nil values are what the signer leaves out: the same tx, the same hash.
    info, h = _signed_info(signer)
    assert info["L2TxAttributes"] is None
    info["L2TxAttributes"] = attrs
    assert S.tx_info_hash(14, info, CHAIN) == h


@pytest.mark.parametrize("tx_type", [-1, 0, 9, 13, 18, 19, 21, 44, 46, 255])
def test_tx_info_hash_refuses_a_tx_type_with_no_hash_rule(
    signer: S.NativeSigner, tx_type: int
) -> None:
    info, _ = _signed_info(signer)
    refusal = f"tx_info: no hash rule for tx type {tx_type}"
    assert _refused(lambda: S.tx_info_hash(tx_type, info, CHAIN)) == refusal


BODY_FIELDS = [
    (kind, JSON_NAMES[f]) for kind in sorted(BASE) for f in BASE[kind] if f in JSON_NAMES
]


@pytest.mark.parametrize(("kind", "name"), BODY_FIELDS, ids=[f"{k}:{n}" for k, n in BODY_FIELDS])
@pytest.mark.parametrize("value", ["missing", "1", True, 1.0, None, I64 + 1, -I64 - 1], ids=repr)
def test_tx_info_hash_refuses_a_body_field_missing_or_not_an_int(
    signer: S.NativeSigner, kind: str, name: str, value: Any
) -> None:
    info, h = _signed_info(signer, kind)
    tx_type = S.TX_TYPES[kind]
    assert S.tx_info_hash(tx_type, info, CHAIN) == h
    if value == "missing":
        del info[name]
    else:
        info[name] = value
    refusal = f"tx_info: {name} missing or not an int"
    assert _refused(lambda: S.tx_info_hash(tx_type, info, CHAIN)) == refusal


ATTRIBUTED: list[tuple[str, dict[str, int]]] = [
    (
        "create_order",
        dict(
            integrator_account_index=9,
            integrator_taker_fee=300,
            integrator_maker_fee=1_000_000,
            skip_nonce=1,
        ),
    ),
    ("create_order", dict(integrator_account_index=MAX48 - 1, self_trade_behavior=3)),
    (
        "modify_order",
        dict(integrator_account_index=9, skip_nonce=1, self_trade_behavior=2, order_version=MAX48),
    ),
    ("cancel_order", dict(skip_nonce=1)),
    ("cancel_all_orders", dict(skip_nonce=1, cancel_all_market_index=0)),
    ("update_leverage", dict(skip_nonce=1)),
]


@pytest.mark.parametrize(("kind", "attrs"), ATTRIBUTED, ids=[_case_id(c) for c in ATTRIBUTED])
def test_tx_info_hash_of_a_tx_with_attributes_is_the_signed_hash(
    signer: S.NativeSigner, kind: str, attrs: dict[str, int]
) -> None:
    fields = BASE[kind] | attrs
    parsed = _signs_alike(signer, kind, fields)  # hash of tx_info == sign_tx's, both paths
    assert parsed["L2TxAttributes"] == {ATTRS[f][0]: v for f, v in attrs.items()}
    ref_info, ref_h = _module(kind, fields, NONCE, EXPIRED_AT)
    assert S.tx_info_hash(S.TX_TYPES[kind], json.loads(ref_info), CHAIN) == ref_h
    # The attributes are in the hash: without them, another tx.
    assert _module_hash(kind, BASE[kind], NONCE, EXPIRED_AT) != ref_h
    plain = dict(parsed, L2TxAttributes=None)
    assert S.tx_info_hash(S.TX_TYPES[kind], plain, CHAIN) != ref_h


# Lighter's tx hash from the primitives: Poseidon2 of the elements into Fp5, then, with
# attributes, Poseidon2(hash || Poseidon2 of the (type, value) pairs padded to 4).
def _elems(values: list[int]) -> bytes:
    return b"".join((v % (1 << 64)).to_bytes(8, "little") for v in values)


def _with_attrs(h: bytes, attrs: dict[int, int]) -> bytes:
    pairs: list[int] = []
    for t in sorted(attrs):
        pairs += [t, attrs[t]]
    pairs += [0] * (8 - len(pairs))
    return S.hash_to_quintic(h + S.hash_to_quintic(_elems(pairs)))


def test_the_hash_recipe_matches_sign_tx_on_attributes(signer: S.NativeSigner) -> None:
    # The recipe the ChangePubKey test below relies on, checked on a signed CreateOrder.
    fields = BASE["create_order"] | dict(integrator_account_index=9, skip_nonce=1)
    _, h = _module("create_order", fields, NONCE, EXPIRED_AT)
    body = [BASE["create_order"][f] for f in METHODS["create_order"][1]]
    plain = S.hash_to_quintic(_elems([CHAIN, 14, NONCE, EXPIRED_AT, ACC, AK, *body]))
    assert _with_attrs(plain, {1: 9, 4: 1}) == h


def _change_pub_key(pk: bytes, attrs: Any) -> dict[str, Any]:
    return {
        "AccountIndex": ACC,
        "ApiKeyIndex": AK,
        "PubKey": base64.b64encode(pk).decode(),
        "L1Sig": "",
        "ExpiredAt": EXPIRED_AT,
        "Nonce": NONCE,
        "L2TxAttributes": attrs,
    }


@pytest.mark.parametrize("attrs", [{"4": 1}, {"1": 9, "4": 1}, {"4": 1, "5": 3, "8": 7}], ids=repr)
def test_change_pub_key_hash_with_attributes(attrs: dict[str, int]) -> None:
    plain = S.hash_to_quintic(_elems([CHAIN, 8, NONCE, EXPIRED_AT, ACC, AK]) + PK)
    assert S.tx_info_hash(8, _change_pub_key(PK, None), CHAIN) == plain
    want = _with_attrs(plain, {int(k): v for k, v in attrs.items()})
    assert S.tx_info_hash(8, _change_pub_key(PK, attrs), CHAIN) == want != plain


@pytest.mark.parametrize(
    ("pub_key", "refusal"),
    [
        ("missing", "tx_info: bad PubKey"),
        ("not base64!", "tx_info: bad PubKey"),
        (12345, "tx_info: bad PubKey"),
        (base64.b64encode(bytes(39)).decode(), "PubKey must be 40 bytes"),
        (base64.b64encode(bytes(41)).decode(), "PubKey must be 40 bytes"),
    ],
    ids=["missing", "not-base64", "int", "39-bytes", "41-bytes"],
)
def test_change_pub_key_refuses_a_bad_pub_key(pub_key: Any, refusal: str) -> None:
    info = _change_pub_key(PK, None)
    if pub_key == "missing":
        del info["PubKey"]
    else:
        info["PubKey"] = pub_key
    assert _refused(lambda: S.tx_info_hash(8, info, CHAIN)) == refusal


# ------------------------------------------------------------------------------ primitives
def test_hash_n_to_one_needs_a_hash() -> None:
    with pytest.raises(S.NativeSignerError, match=r"^hash_n_to_one needs at least one hash$"):
        S.hash_n_to_one([])
    h = bytes(range(32))
    assert S.hash_n_to_one([h]) == h
    assert S.hash_n_to_one([h, h]) == S.poseidon2_hash(h + h, 4)


@pytest.mark.parametrize("num_outputs", [-1, 65_537, 1 << 20])
def test_poseidon2_hash_refuses_num_outputs_out_of_range(num_outputs: int) -> None:
    with pytest.raises(S.NativeSignerError, match=r"^num_outputs must be within 0\.\.65536$"):
        S.poseidon2_hash(bytes(8), num_outputs)
    assert S.poseidon2_hash(bytes(8), 0) == b""
    assert S.poseidon2_hash(bytes(8), 5) == S.hash_to_quintic(bytes(8))


@pytest.mark.parametrize("n", [1, 7, 9, 15, 41])
def test_field_elements_must_be_8_bytes(n: int) -> None:
    for call in (
        lambda: S.poseidon2_hash(bytes(n), 4),
        lambda: S.hash_to_quintic(bytes(n)),
        lambda: S.hash_n_to_one([bytes(32), bytes(n)]),
    ):
        with pytest.raises(S.NativeSignerError, match=r"^field elements are 8 bytes each$"):
            call()


A40 = bytes(range(1, 41))


@pytest.mark.parametrize(
    "call",
    [
        lambda: S.gl_op("div", 6, 3),
        lambda: S.gl_op("", 6, 3),
        lambda: S.fp5_op("div", A40, A40),
        lambda: S.fp5_op("ADD", A40, A40),
        lambda: S.scalar_op("div", A40, A40),
        lambda: S.scalar_op("inv", A40, A40),
    ],
    ids=["gl-div", "gl-empty", "fp5-div", "fp5-ADD", "scalar-div", "scalar-inv"],
)
def test_unknown_op_raises_value_error(call: Callable[[], Any]) -> None:
    with pytest.raises(ValueError, match=r"^unknown op '(div|ADD|inv|)'$") as ei:
        call()
    assert not isinstance(ei.value, S.NativeSignerError)


def test_unknown_binary_op_without_b_is_refused_for_b_first() -> None:
    # An unknown op falls in the two-operand branch, which wants b before it looks at op.
    with pytest.raises(S.NativeSignerError, match=r"^b must be 40 bytes$"):
        S.fp5_op("div", A40)
    with pytest.raises(S.NativeSignerError, match=r"^b must be 40 bytes$"):
        S.scalar_op("div", A40)


@pytest.mark.parametrize(("field", "value"), [("is_ask", 2), ("is_ask", -1), ("reduce_only", 2)])
def test_create_order_method_refuses_a_flag_that_is_not_0_or_1(
    signer: S.NativeSigner, field: str, value: int
) -> None:
    """The typed method took is_ask and reduce_only as C booleans, so 2 was signed as 1; now
    they are refused as by sign_tx and the official signer."""
    args = {"is_ask": 0, "reduce_only": 0, field: value}
    text = _refused(
        lambda: signer.sign_create_order(
            1, 7, 100, 2000, args["is_ask"], 0, 0, args["reduce_only"], 0, 0, 3, 1_700_000_000_000
        )
    )
    assert text == f"create_order: {field} must be 0 or 1"
    for flag in (0, 1, True, False):
        info, _h = signer.sign_create_order(1, 7, 100, 2000, flag, 0, 0, 0, 0, 0, 3, 10**12)
        assert f'"IsAsk":{int(flag)}' in info
    with pytest.raises(TypeError):
        signer.sign_create_order(1, 7, 100, 2000, "0", 0, 0, 0, 0, 0, 3, 10**12)  # type: ignore[arg-type]
