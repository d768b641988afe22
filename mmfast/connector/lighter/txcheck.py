"""Check a signed tx_info against the request before it is sent.

Some signer builds narrow fields silently (a market id above 255 or 65535 comes back truncated,
a price above 2^32 wraps); a signed tx that is not what was asked must never reach the venue.
``check_signed`` parses the signer's JSON and compares every field the request determines (tx
type, market, price, size, side, type, time-in-force, reduce-only, expiry, client order index or
index, cancel-all scope) plus the nonce, API key index and account index, and that a signature
and a tx deadline are present. A mismatch raises ``TxCheckError`` naming the field, the signed
value and the asked value; the message never contains the signature.

A request is any object with ``TX_TYPE`` (int), ``nonce`` (int) and ``expected_fields()``
(tx_info field name -> expected value), as the request types in ``signer`` are.
"""

from __future__ import annotations

from typing import Any, Protocol

import orjson

from mmfast.core.errors import SigningError

__all__ = ["CheckableRequest", "TxCheckError", "check_signed"]


class TxCheckError(SigningError, ValueError):
    """The signed tx does not match the request. The message names the field, never the Sig."""


class CheckableRequest(Protocol):
    @property
    def TX_TYPE(self) -> int: ...  # the requests' class constant
    @property
    def nonce(self) -> int: ...

    def expected_fields(self) -> dict[str, Any]: ...


def _same(got: Any, want: Any) -> bool:
    # bool is an int in Python: a signer emitting true/false where 1/0 is expected (or the
    # reverse) would still compare equal, so compare exact types for ints.
    if type(want) is int:
        return type(got) is int and got == want
    if want is None:
        return got is None
    if isinstance(want, dict):
        return (
            isinstance(got, dict)
            and got.keys() == {str(k) for k in want}
            and all(_same(got[str(k)], v) for k, v in want.items())
        )
    return bool(got == want)


def check_signed(
    request: CheckableRequest,
    tx_type: int,
    tx_info: str | bytes,
    *,
    account_index: int,
    api_key_index: int,
) -> dict[str, Any]:
    """Parse ``tx_info`` and check it against ``request``; return the parsed dict.

    Raises TxCheckError on any difference (or on a tx_info that is not a JSON object).
    """
    name = type(request).__name__
    if tx_type != request.TX_TYPE:
        raise TxCheckError(f"signed {name}: tx type {tx_type}, asked {request.TX_TYPE}")
    try:
        info = orjson.loads(tx_info)
    except orjson.JSONDecodeError:
        raise TxCheckError(f"signed {name}: tx_info is not JSON") from None
    if not isinstance(info, dict):
        raise TxCheckError(f"signed {name}: tx_info is not a JSON object")
    expected: dict[str, Any] = {
        "AccountIndex": account_index,
        "ApiKeyIndex": api_key_index,
        "Nonce": request.nonce,
    }
    expected.update(request.expected_fields())
    for field, want in expected.items():
        got = info.get(field, _MISSING)
        if got is _MISSING:
            raise TxCheckError(f"signed {name}: field {field} missing (asked {want!r})")
        if not _same(got, want):
            raise TxCheckError(f"signed {name}: {field} is {got!r}, asked {want!r}")
    sig = info.get("Sig")
    if not isinstance(sig, str) or not sig:
        raise TxCheckError(f"signed {name}: no signature")
    expired_at = info.get("ExpiredAt")
    if type(expired_at) is not int or expired_at <= 0:
        raise TxCheckError(f"signed {name}: ExpiredAt missing or not a positive int")
    return info


_MISSING: Any = object()
