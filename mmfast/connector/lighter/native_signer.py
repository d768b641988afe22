"""Signing inline on the event loop with mmfast's native signer (``mmfast._core.signer``).

``InlineSigner`` has ``SignerWorker``'s interface, so order entry does not know which one it
holds, but ``submit(request, callback)`` signs on the calling thread and calls
``callback(result, error)`` before it returns: a requote signs in the frame callback and its
order frame goes to the socket in the same callback, with no thread hand-off and no
``call_soon_threadsafe``. A signature takes a pooled nonce commitment (filled by a C thread that
never holds the GIL) and costs a few microseconds; docs/signer.md has the details.

Before it signs anything, ``start()`` runs ``self_check``: a fixed corpus of requests signed by
both the native and the official signer (lighter-sdk) must give the same tx_info less ``Sig``
and the same tx hash, and each side's signature must verify under the other's public key. A
mismatch refuses to start with a message naming ``[venue] signer = "official"`` as the way out.

ExpiredAt (the tx deadline) is chosen as the official signer chooses it: now + 10 min - 1 s,
wall clock, milliseconds.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import orjson

from mmfast._core.signer import NativeSigner, NativeSignerError, verify_auth_token, verify_hashed
from mmfast.connector.lighter.secret import ApiKey, Redactor
from mmfast.connector.lighter.signer import (
    AuthTokenRequest,
    CancelAllRequest,
    CancelAllTif,
    CancelOrderRequest,
    CreateOrderRequest,
    MarginMode,
    ModifyOrderRequest,
    SignCallback,
    SignedTx,
    SignerError,
    TxRequest,
    UpdateLeverageRequest,
    check_token_deadline,
    hold_sdk_loggers,
)
from mmfast.core.types import TimeInForce

__all__ = ["DEFAULT_POOL_SIZE", "TX_EXPIRY_MS", "InlineSigner", "self_check"]

TX_EXPIRY_MS = 10 * 60_000 - 1_000  # the official signer's ExpiredAt: now + 10 min - 1 s
DEFAULT_POOL_SIZE = 256  # commitments kept ready: a burst of requotes never waits for k*G


class InlineSigner:
    """Native signing on the caller's thread for one (API key, account) of one chain."""

    def __init__(
        self,
        key: ApiKey,
        *,
        account_index: int,
        api_key_index: int,
        chain_id: int,
        name: str = "mmfast-native-signer",
        pool_size: int = DEFAULT_POOL_SIZE,
        check: bool = True,
        wall_ms: Callable[[], int] | None = None,
    ) -> None:
        if not isinstance(key, ApiKey):
            raise TypeError("key must be an ApiKey (mmfast.connector.lighter.secret)")
        self._key = key
        self._account_index = account_index
        self._api_key_index = api_key_index
        self._chain_id = chain_id
        self._name = name
        self._pool_size = pool_size
        self._check = check  # run the start-up self-check against the official signer
        self._wall_ms = wall_ms if wall_ms is not None else (lambda: time.time_ns() // 1_000_000)
        self._redactor = Redactor([key])
        self._ns: NativeSigner | None = None
        self._last_stats = {"size": pool_size, "ready": 0, "pooled": 0, "fresh": 0}
        self.signed = 0  # txs and tokens signed
        self.failed = 0  # requests that ended in an error
        self.dropped = 0  # kept for SignerWorker's interface: nothing is ever dropped here
        self.last_sign_ns = 0  # duration of the last signature
        self.checked = False  # the start-up self-check ran and passed

    # ------------------------------------------------------------------ lifecycle
    def start(self, loop: asyncio.AbstractEventLoop | None = None, timeout: float = 10.0) -> None:
        """Load the key into C memory (and start the pool); with ``check``, run the self-check
        first. Raises SignerError if the signer cannot be set up or disagrees with the
        official one. ``loop`` and ``timeout`` are accepted for SignerWorker's interface."""
        if self._ns is not None:
            raise SignerError("InlineSigner already started")
        try:
            if self._check:
                self_check(
                    self._key,
                    chain_id=self._chain_id,
                    account_index=self._account_index,
                    api_key_index=self._api_key_index,
                )
                self.checked = True
            self._ns = NativeSigner(
                self._key.reveal(),
                chain_id=self._chain_id,
                account_index=self._account_index,
                api_key_index=self._api_key_index,
                pool_size=self._pool_size,
            )
        except NativeSignerError as exc:
            raise SignerError(
                f"native signer setup failed: {self._redactor.redact(str(exc))}"
            ) from None

    def stop(self, timeout: float = 5.0) -> None:
        """Wipe the key and the pool (idempotent)."""
        ns, self._ns = self._ns, None
        if ns is not None:
            self._last_stats = self.pool_stats_of(ns)
            ns.close()

    @property
    def running(self) -> bool:
        return self._ns is not None and self._ns.closed_reason is None

    @property
    def thread_ident(self) -> int | None:
        """None: signing runs on whichever thread calls ``submit`` (the loop's)."""
        return None

    @property
    def account_index(self) -> int:
        return self._account_index

    @property
    def api_key_index(self) -> int:
        return self._api_key_index

    @property
    def chain_id(self) -> int:
        return self._chain_id

    @property
    def native(self) -> NativeSigner | None:
        """The running ``NativeSigner`` (None when stopped): a compiled step signs its first
        tx with it directly (``OrderEntry.direct_sender``)."""
        ns = self._ns
        return ns if ns is not None and ns.closed_reason is None else None

    def expired_at(self) -> int:
        """ExpiredAt for a tx signed now (wall ms), as ``submit`` sets it."""
        return self._wall_ms() + TX_EXPIRY_MS

    def count_signed(self, sign_ns: int) -> None:
        """A signature made with ``native`` outside ``submit``: counted here as well."""
        self.signed += 1
        self.last_sign_ns = sign_ns

    @property
    def public_key(self) -> bytes:
        if self._ns is None:
            raise SignerError("InlineSigner is not running")
        return self._ns.public_key

    def pool_stats(self) -> dict[str, int]:
        """Pool size, commitments ready, signatures that used one or made their own."""
        ns = self._ns
        if ns is None:  # stopped: the figures at stop (never started: zeros)
            return dict(self._last_stats)
        return self.pool_stats_of(ns)

    @staticmethod
    def pool_stats_of(ns: NativeSigner) -> dict[str, int]:
        return {
            "size": ns.pool_size,
            "ready": ns.pool_available,
            "pooled": ns.pooled,
            "fresh": ns.fresh,
        }

    def __repr__(self) -> str:
        return (
            f"InlineSigner(account_index={self._account_index},"
            f" api_key_index={self._api_key_index}, chain_id={self._chain_id},"
            f" running={self.running}, signed={self.signed}, failed={self.failed})"
        )

    # ------------------------------------------------------------------ signing
    def submit(self, request: TxRequest | AuthTokenRequest, callback: SignCallback) -> None:
        """Sign now and call ``callback(result, error)`` before returning (see the module doc).

        Raises SignerError (without calling back) only when the signer is not running, as
        SignerWorker does.
        """
        ns = self._ns
        if ns is None or ns.closed_reason is not None:
            raise SignerError("InlineSigner is not running")
        try:
            result: Any = self._sign(ns, request)
        except SignerError as exc:
            self.failed += 1
            callback(None, exc)
            return
        callback(result, None)

    def sign_now(self, request: TxRequest) -> SignedTx:
        """Sign and return (raises SignerError): the direct form of ``submit``."""
        ns = self._ns
        if ns is None or ns.closed_reason is not None:
            raise SignerError("InlineSigner is not running")
        try:
            return self._sign(ns, request)  # type: ignore[no-any-return]
        except SignerError:
            self.failed += 1
            raise

    async def sign(self, request: TxRequest) -> SignedTx:
        """Awaitable form, for callers written against SignerWorker."""
        return self.sign_now(request)

    async def token(self, deadline_s: int) -> str:
        """An auth token valid until ``deadline_s`` (epoch seconds, <= 8 h out)."""
        ns = self._ns
        if ns is None or ns.closed_reason is not None:
            raise SignerError("InlineSigner is not running")
        return self._sign(ns, AuthTokenRequest(deadline_s))  # type: ignore[no-any-return]

    def _sign(self, ns: NativeSigner, request: TxRequest | AuthTokenRequest) -> Any:
        t0 = time.monotonic_ns()
        if isinstance(request, AuthTokenRequest):
            check_token_deadline(request.deadline_s, self._wall_ms() // 1000)
            try:
                token = ns.auth_token(request.deadline_s)
            except NativeSignerError as exc:
                raise SignerError(f"auth token refused: {exc}") from None
            self.signed += 1
            return token
        try:
            request.validate()
        except (TypeError, ValueError) as exc:
            raise SignerError(f"bad {type(request).__name__}: {exc}") from None
        expired_at = self._wall_ms() + TX_EXPIRY_MS
        try:
            tx_info, tx_hash = request._native(ns, expired_at)
        except (NativeSignerError, OverflowError, TypeError) as exc:
            raise SignerError(
                f"native signer refused {type(request).__name__} (nonce {request.nonce}): {exc}"
            ) from None
        t1 = time.monotonic_ns()
        self.last_sign_ns = t1 - t0
        self.signed += 1
        # The native signer writes tx_info from the request's own ints (no narrowing to check);
        # order entry reads only the deadline back, so no JSON parse here.
        return SignedTx(
            request=request,
            tx_type=request.TX_TYPE,
            tx_info=tx_info,
            info={"ExpiredAt": expired_at, "Nonce": request.nonce},
            tx_hash=tx_hash,
            nonce=request.nonce,
            queued_ns=t0,
            signed_ns=t1,
            sign_ns=t1 - t0,
        )


# ---------------------------------------------------------------------- start-up self-check
def _corpus(market: int) -> list[TxRequest]:
    """One request of each kind and shape order entry sends (fixed values, nonces 1..)."""
    expiry = 1_900_000_000_000
    return [
        CreateOrderRequest(
            market=market,
            client_order_index=1,
            base_amount=1000,
            price=300_000,
            is_ask=False,
            tif=TimeInForce.POST_ONLY,
            nonce=1,
            order_expiry_ms=expiry,
        ),
        CreateOrderRequest(
            market=market,
            client_order_index=(1 << 48) - 1,
            base_amount=7,
            price=(1 << 32) - 1,
            is_ask=True,
            tif=TimeInForce.GTT,
            nonce=2,
            reduce_only=True,
            order_expiry_ms=expiry,
        ),
        CreateOrderRequest(
            market=market,
            client_order_index=3,
            base_amount=5,
            price=1,
            is_ask=True,
            tif=TimeInForce.IOC,
            nonce=3,
        ),
        ModifyOrderRequest(market=market, index=1, base_amount=1100, price=300_100, nonce=4),
        CancelOrderRequest(market=market, index=1, nonce=5),
        CancelOrderRequest(market=market, index=(1 << 48) + 12345, nonce=6),
        CancelAllRequest(market=market, nonce=7),
        CancelAllRequest(
            market=None, all_markets=True, tif=CancelAllTif.SCHEDULED, time_ms=expiry, nonce=8
        ),
        UpdateLeverageRequest(
            market=market, initial_margin_fraction=500, nonce=9, margin_mode=MarginMode.ISOLATED
        ),
        # Skip-nonce (L2TxAttributes 4) on each kind order entry may send with it.
        CreateOrderRequest(
            market=market,
            client_order_index=10,
            base_amount=1000,
            price=300_000,
            is_ask=True,
            tif=TimeInForce.POST_ONLY,
            nonce=10,
            order_expiry_ms=expiry,
            skip_nonce=True,
        ),
        ModifyOrderRequest(
            market=market, index=10, base_amount=900, price=300_200, nonce=11, skip_nonce=True
        ),
        CancelOrderRequest(market=market, index=10, nonce=12, skip_nonce=True),
        CancelAllRequest(market=market, nonce=13, skip_nonce=True),
        UpdateLeverageRequest(
            market=market, initial_margin_fraction=500, nonce=14, skip_nonce=True
        ),
    ]


def _without_sig(tx_info: str) -> tuple[str, bytes]:
    info = orjson.loads(tx_info)
    sig = info.get("Sig")
    if not isinstance(sig, str):
        raise SignerError("signed tx_info has no Sig")
    import base64

    return tx_info.replace(sig, "", 1), base64.b64decode(sig)


def self_check(
    key: ApiKey, *, chain_id: int, account_index: int, api_key_index: int, market: int = 0
) -> None:
    """Sign a fixed corpus with both signers and compare; raise SignerError on any mismatch.

    Runs on the calling thread (start-up only: the official signer costs a few ms a call
    there). Uses the official signer's client slot for (api_key_index, account_index), so it
    must not run while a SignerWorker for the same pair is live in this process.
    """
    from mmfast.connector.lighter import signer_lib

    hold_sdk_loggers()
    redactor = Redactor([key])
    way_out = (
        'refusing to start; set [venue] signer = "official" in the config to sign with'
        " the official signer instead"
    )
    try:
        lib, decode = signer_lib.load()  # its SHA-256 checked first
        err = decode(
            lib.CreateClient(b"", key.reveal().encode(), chain_id, api_key_index, account_index)
        )
    except SignerError as exc:  # the library refused: the message says what to do
        raise SignerError(f"native signer self-check: {exc}") from None
    except Exception as exc:
        raise SignerError(
            "native signer self-check: the official signer could not be loaded"
            f" ({type(exc).__name__}); {way_out}"
        ) from None
    if err:
        raise SignerError(
            f"native signer self-check: official signer setup failed: {redactor.redact(str(err))}"
        )
    try:
        ns = NativeSigner(
            key.reveal(),
            chain_id=chain_id,
            account_index=account_index,
            api_key_index=api_key_index,
        )
    except NativeSignerError as exc:
        raise SignerError(f"native signer self-check: {redactor.redact(str(exc))}") from None
    try:
        pk = ns.public_key
        for req in _corpus(market):
            name = f"{type(req).__name__} nonce {req.nonce}"
            res = req._call(lib, api_key_index, account_index)
            o_err, o_info, o_hash = decode(res.err), decode(res.txInfo), decode(res.txHash)
            decode(res.messageToSign)
            if o_err or not o_info or not o_hash:
                raise SignerError(
                    f"native signer self-check: the official signer refused"
                    f" {name}: {redactor.redact(str(o_err))}"
                )
            expired_at = orjson.loads(o_info)["ExpiredAt"]
            n_info, n_hash = req._native(ns, expired_at)
            o_body, o_sig = _without_sig(o_info)
            n_body, n_sig = _without_sig(n_info)
            if n_hash != o_hash:
                raise SignerError(
                    f"native signer self-check: tx hash differs from the official"
                    f" signer's for {name}; {way_out}"
                )
            if n_body != o_body:
                raise SignerError(
                    f"native signer self-check: tx_info differs from the official"
                    f" signer's for {name}; {way_out}"
                )
            msg = bytes.fromhex(o_hash)
            if not verify_hashed(pk, msg, o_sig) or not verify_hashed(pk, msg, n_sig):
                raise SignerError(
                    f"native signer self-check: a signature of {name} does not verify; {way_out}"
                )
        deadline = int(time.time()) + 600
        tok = lib.CreateAuthToken(deadline, api_key_index, account_index)
        o_tok, t_err = decode(tok.str), decode(tok.err)
        if t_err or not o_tok or not verify_auth_token(pk, o_tok):
            raise SignerError(
                f"native signer self-check: the official auth token does not"
                f" verify under the native public key; {way_out}"
            )
        n_tok = ns.auth_token(deadline)
        if n_tok.rsplit(":", 1)[0] != o_tok.rsplit(":", 1)[0] or not verify_auth_token(pk, n_tok):
            raise SignerError(f"native signer self-check: auth token differs; {way_out}")
    finally:
        ns.close()
