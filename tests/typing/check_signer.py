"""The compiled signer's public API (``mmfast._core.signer``, signer.pyi): keys, tx signing,
verification, auth tokens, ``NativeSigner`` and ``Verifier``, and the Literal-typed primitives
whose overloads pick the result type from the operation's name.

A tx kind (``sign_tx``, ``tx_hash``, ``NativeSigner.sign_tx``) is typed ``_Kind | str``: the
known kinds are spelled as Literals for completion, any str is accepted and an unknown kind is
refused at run time (NativeSignerError), so a wrong kind is not a type error here.

Checked by mypy only (``make typecheck``), never run; see tests/typing in CONTRIBUTING.md.
"""

from __future__ import annotations

from typing import assert_type

from mmfast._core.signer import (
    KINDS,
    TX_TYPES,
    NativeSigner,
    NativeSignerError,
    Verifier,
    auth_token,
    fp5_op,
    gl_op,
    public_key,
    scalar_op,
    sign_tx,
    tx_hash,
    verify_auth_token,
    verify_hashed,
)
from mmfast.core.errors import SigningError

_ACCOUNT: dict[str, int] = {"chain_id": 300, "account_index": 7, "api_key_index": 4}


def module_functions(sk: bytes, hex_key: str, kind: str, msg: bytes, sig: bytes) -> None:
    assert_type(KINDS, tuple[str, ...])
    assert_type(TX_TYPES, dict[str, int])
    assert_type(public_key(sk), bytes)
    assert_type(public_key(hex_key), bytes)
    assert_type(public_key(bytearray(sk)), bytes)
    assert_type(verify_hashed(public_key(sk), msg, sig), bool)
    fields = {"market_index": 0, "index": 12}
    info, h = sign_tx(
        "cancel_order",
        fields,
        sk=sk,
        chain_id=300,
        account_index=7,
        api_key_index=4,
        nonce=1,
        expired_at=1_700_000_000_000,
    )
    assert_type(info, str)
    assert_type(h, bytes)
    assert_type(tx_hash("cancel_order", fields, nonce=1, expired_at=0, **_ACCOUNT), bytes)
    # Any str is a kind to the type checker (see above): an unknown one fails at run time.
    assert_type(tx_hash(kind, fields, nonce=1, expired_at=0, **_ACCOUNT), bytes)
    token = auth_token(sk, account_index=7, api_key_index=4, deadline=1_700_000_000)
    assert_type(token, str)
    assert_type(verify_auth_token(public_key(sk), token), bool)

    public_key(12345)  # type: ignore[arg-type]
    public_key(None)  # type: ignore[arg-type]
    verify_hashed(hex_key, msg, sig)  # type: ignore[arg-type]
    auth_token(sk, 7, 4, 1_700_000_000)  # type: ignore[call-arg]
    auth_token(sk, account_index=7, api_key_index=4)  # type: ignore[call-arg]
    sign_tx("cancel_order", fields, sk)  # type: ignore[call-arg]
    tx_hash("cancel_order", {"index": "12"}, nonce=1, expired_at=0, **_ACCOUNT)  # type: ignore[dict-item]
    verify_auth_token(public_key(sk), token.encode())  # type: ignore[arg-type]


def primitives(a: bytes, b: bytes) -> None:
    assert_type(gl_op("add", 1, 2), int)
    assert_type(gl_op("inv", 3), int)
    # fp5_op and scalar_op: the operation's Literal selects the overload and the result type.
    assert_type(fp5_op("eq", a, b), bool)
    assert_type(fp5_op("mul", a, b), bytes)
    assert_type(fp5_op("inv", a), bytes)
    assert_type(fp5_op("pow", a, 5), bytes)
    assert_type(scalar_op("is_zero", a), bool)
    assert_type(scalar_op("neg", a), bytes)
    assert_type(scalar_op("add", a, b), bytes)

    gl_op("xor", 1, 2)  # type: ignore[arg-type]
    fp5_op("div", a, b)  # type: ignore[call-overload]
    fp5_op("pow", a, b)  # type: ignore[call-overload]
    fp5_op("add", a)  # type: ignore[call-overload]
    scalar_op("neg", a, b)  # type: ignore[call-overload]
    equal: bytes = fp5_op("eq", a, b)  # type: ignore[assignment]
    del equal


def native_signer(key: str, msg: bytes, sig: bytes) -> None:
    signer = NativeSigner(key, chain_id=300, account_index=7, api_key_index=4, pool_size=16)
    assert_type(signer.public_key, bytes)
    assert_type(signer.closed_reason, str | None)
    assert_type(signer.chain_id, int)
    assert_type(signer.pooled, int)
    assert_type(signer.pool_available, int)
    assert_type(
        signer.sign_create_order(0, 12, 1000, 301245, True, 0, 2, False, 0, -1, 1, 0),
        tuple[str, str],
    )
    assert_type(signer.sign_cancel_order(0, 12, 2, 0), tuple[str, str])
    assert_type(signer.sign_modify_order(0, 12, 1000, 301250, 0, 3, 0), tuple[str, str])
    assert_type(signer.sign_cancel_all(0, 0, 255, 4, 0), tuple[str, str])
    info, tx_hex = signer.sign_tx(
        "cancel_order", {"market_index": 0, "index": 12}, nonce=5, expired_at=0
    )
    assert_type(info, str)
    assert_type(tx_hex, str)  # NativeSigner returns the hash as hex (module sign_tx: bytes)
    assert_type(signer.auth_token(1_700_000_000), str)
    assert_type(signer.close(), None)
    try:
        signer.sign_cancel_order(0, 12, 6, 0)
    except NativeSignerError as exc:
        assert_type(exc, NativeSignerError)
        as_signing: SigningError = exc
        as_value: ValueError = exc
        del as_signing, as_value
    verifier = Verifier(signer.public_key)
    assert_type(verifier.verify(msg, sig), bool)
    assert_type(verifier.public_key, bytes)

    NativeSigner(key, 300, 7, 4)  # type: ignore[call-arg]
    NativeSigner(None, chain_id=300, account_index=7, api_key_index=4)  # type: ignore[arg-type]
    NativeSigner(key, chain_id=300, account_index=7)  # type: ignore[call-arg]
    signer.public_key = b""  # type: ignore[misc]
    signer.closed_reason = None  # type: ignore[misc]
    signer.sign_cancel_order(0, "12", 6, 0)  # type: ignore[arg-type]
    signer.sign_tx("cancel_order", {}, 5, 0)  # type: ignore[call-arg]
    signer.auth_token(None)  # type: ignore[arg-type]
    Verifier(key)  # type: ignore[arg-type]
