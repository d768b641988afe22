"""The tx requests order entry signs, and the official signer on its FIFO worker thread.

mmfast signs with its native signer by default (``native_signer.InlineSigner``, on the loop
thread); ``SignerWorker`` below is the official lighter-sdk signer behind the same interface,
kept as the fallback (``[venue] signer = "official"``) and as the reference the native signer
is checked against. Each request type knows its tx type, its official-signer call (``_call``),
its native-signer call (``_native``) and the tx_info fields it must produce.

Nothing is signed on the event-loop thread: the Go signer pays a large per-call cost there
(about 2.4 ms p50 against 0.43 ms on a worker thread on a 2-core VM; docs/order-entry.md) and it
would stall the loop. The loop builds a request with an explicit nonce, calls
``SignerWorker.submit(request, callback)``; the worker signs in FIFO order (so results come back
in nonce order), checks the signed tx_info against the request (``txcheck``), and hands the
result back with ``loop.call_soon_threadsafe(callback, result, error)``. No asyncio task or
future per tx on the hot path; ``sign()`` and ``token()`` are awaitable conveniences built on
the same queue, for start-up and rare paths.

The SDK's own ctypes loader (``lighter.signer_client.get_signer``) and its ``decode_and_free``
are used, once ``signer_lib`` has checked the library file's SHA-256 against the one recorded
for the installed lighter-sdk; no cryptography is reimplemented. The API key index and account
index are passed explicitly on every call with an explicit nonce, and the signer client is
created with no URL, so the signer makes no network calls. The SDK's loggers are held at WARNING.

Secrets: the key is handed to the Go library once (``CreateClient``) from the worker thread; a
SignedTx's repr leaves out tx_info (it holds the signature); errors carry no key, signature or
token (texts pass through ``secret.redact``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, ClassVar

from mmfast.connector.lighter.secret import ApiKey, Redactor
from mmfast.connector.lighter.txcheck import TxCheckError, check_signed
from mmfast.core.errors import SigningError
from mmfast.core.types import MAX_CLIENT_ORDER_INDEX, OrderType, TimeInForce

__all__ = [
    "MAX_AUTH_TOKEN_LIFETIME_S",
    "NIL_MARKET_INDEX",
    "TX_TYPE_CANCEL_ALL",
    "TX_TYPE_CANCEL_ORDER",
    "TX_TYPE_CREATE_ORDER",
    "TX_TYPE_MODIFY_ORDER",
    "TX_TYPE_UPDATE_LEVERAGE",
    "AuthTokenRequest",
    "CancelAllRequest",
    "CancelAllTif",
    "CancelOrderRequest",
    "CreateOrderRequest",
    "MarginMode",
    "ModifyOrderRequest",
    "SignCallback",
    "SignedTx",
    "SignerError",
    "SignerWorker",
    "TxRequest",
    "UpdateLeverageRequest",
    "check_token_deadline",
    "hold_sdk_loggers",
    "imf_for_leverage",
]

TX_TYPE_CREATE_ORDER = 14
TX_TYPE_CANCEL_ORDER = 15
TX_TYPE_CANCEL_ALL = 16
TX_TYPE_MODIFY_ORDER = 17
TX_TYPE_UPDATE_LEVERAGE = 20

NIL_MARKET_INDEX = 255  # the signer's "no market": a cancel-all over every market
MAX_AUTH_TOKEN_LIFETIME_S = 8 * 3600  # the venue accepts tokens up to 8 h out
_TOKEN_SKEW_S = 600  # slack for the venue's clock against ours when checking token deadlines
_MAX_PRICE = (1 << 32) - 1
_MAX_BASE = MAX_CLIENT_ORDER_INDEX  # BaseAmount is 1..2^48-1 too
_MAX_ORDER_INDEX = (1 << 60) - 1
_I64 = (1 << 63) - 1
_SDK_LOGGERS = ("lighter", "urllib3", "aiohttp")


class SignerError(SigningError, RuntimeError):
    """Signing failed (signer error string, bad request, or a signed tx that fails its check)."""


class CancelAllTif(IntEnum):
    """CancelAllOrders time-in-force: now, at a scheduled time (dead-man's switch), or abort."""

    IMMEDIATE = 0
    SCHEDULED = 1
    ABORT = 2


class MarginMode(IntEnum):
    CROSS = 0
    ISOLATED = 1


def imf_for_leverage(leverage: int) -> int:
    """Initial margin fraction (1e-4 units) for an integer leverage: 10000 // leverage."""
    if isinstance(leverage, bool) or not isinstance(leverage, int) or not 1 <= leverage <= 10_000:
        raise ValueError(f"leverage must be an int in 1..10000: {leverage!r}")
    return 10_000 // leverage


def _int_in(name: str, value: object, lo: int, hi: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise SignerError(f"{name} must be an int in {lo}..{hi}, got {value!r}")


def _skip_attrs(skip_nonce: bool) -> dict[str, Any]:
    """Expected L2TxAttributes of a tx with or without skip-nonce (attribute 4 = 1)."""
    return {"L2TxAttributes": {"4": 1}} if skip_nonce else {}


def _common(nonce: int, market: int) -> None:
    _int_in("nonce", nonce, 0, _I64)
    _int_in("market", market, 0, _I64)


# Requests are plain slotted dataclasses (cheap to build on the loop thread); validate() runs
# on the worker. Each knows its tx type, its signer call and the tx_info fields it must produce.
@dataclass(slots=True)
class CreateOrderRequest:
    """A limit (or market) order. ``price``/``base_amount`` are int ticks/lots.

    ``order_expiry_ms`` is a wall-clock epoch ms: 0 for IOC, set for GTT/POST_ONLY (the venue
    wants 5 min..30 days out; the caller chooses, this layer only checks 0 vs non-0).
    """

    TX_TYPE: ClassVar[int] = TX_TYPE_CREATE_ORDER
    market: int
    client_order_index: int
    base_amount: int
    price: int
    is_ask: bool
    tif: TimeInForce
    nonce: int
    reduce_only: bool = False
    order_expiry_ms: int = 0
    order_type: OrderType = OrderType.LIMIT
    trigger_price: int = 0
    # L2TxAttributes skip-nonce: the venue accepts this tx at a nonce above its next one and
    # jumps there (docs/order-entry.md "Skip-nonce recovery"). Every request kind has it.
    skip_nonce: bool = False

    def validate(self) -> None:
        _common(self.nonce, self.market)
        _int_in("client_order_index", self.client_order_index, 1, MAX_CLIENT_ORDER_INDEX)
        _int_in("base_amount", self.base_amount, 0 if self.reduce_only else 1, _MAX_BASE)
        _int_in("price", self.price, 1, _MAX_PRICE)
        _int_in("trigger_price", self.trigger_price, 0, _MAX_PRICE)
        tif = TimeInForce(self.tif)
        if tif is TimeInForce.IOC:
            if self.order_expiry_ms != 0:
                raise SignerError("IOC orders take order_expiry_ms 0")
        else:
            _int_in("order_expiry_ms", self.order_expiry_ms, 1, _I64)
        if OrderType(self.order_type) is OrderType.MARKET and tif is not TimeInForce.IOC:
            raise SignerError("market orders are IOC")

    def expected_fields(self) -> dict[str, int]:
        return {
            "MarketIndex": self.market,
            "ClientOrderIndex": self.client_order_index,
            "BaseAmount": self.base_amount,
            "Price": self.price,
            "IsAsk": int(self.is_ask),
            "Type": int(self.order_type),
            "TimeInForce": int(self.tif),
            "ReduceOnly": int(self.reduce_only),
            "TriggerPrice": self.trigger_price,
            "OrderExpiry": self.order_expiry_ms,
            **_skip_attrs(self.skip_nonce),
        }

    def _native(self, ns: Any, expired_at: int) -> tuple[str, str]:
        if self.skip_nonce:  # the generic path carries attributes; the fast one has none
            return ns.sign_tx(  # type: ignore[no-any-return]
                "create_order",
                {
                    "market_index": self.market,
                    "client_order_index": self.client_order_index,
                    "base_amount": self.base_amount,
                    "price": self.price,
                    "is_ask": int(self.is_ask),
                    "order_type": int(self.order_type),
                    "time_in_force": int(self.tif),
                    "reduce_only": int(self.reduce_only),
                    "trigger_price": self.trigger_price,
                    "order_expiry": self.order_expiry_ms,
                    "skip_nonce": 1,
                },
                nonce=self.nonce,
                expired_at=expired_at,
            )
        return ns.sign_create_order(  # type: ignore[no-any-return]
            self.market,
            self.client_order_index,
            self.base_amount,
            self.price,
            self.is_ask,
            int(self.order_type),
            int(self.tif),
            self.reduce_only,
            self.trigger_price,
            self.order_expiry_ms,
            self.nonce,
            expired_at,
        )

    def _call(self, lib: Any, api_key_index: int, account_index: int) -> Any:
        return lib.SignCreateOrder(
            self.market,
            self.client_order_index,
            self.base_amount,
            self.price,
            int(self.is_ask),
            int(self.order_type),
            int(self.tif),
            int(self.reduce_only),
            self.trigger_price,
            self.order_expiry_ms,
            0,
            0,
            0,  # no integrator
            0,
            0,  # self-trade: expire maker, same account (venue defaults)
            int(self.skip_nonce),
            self.nonce,
            api_key_index,
            account_index,
        )


@dataclass(slots=True)
class CancelOrderRequest:
    """Cancel one order: ``index`` is our client_order_index (< 2^48) or the venue's order_index."""

    TX_TYPE: ClassVar[int] = TX_TYPE_CANCEL_ORDER
    market: int
    index: int
    nonce: int
    skip_nonce: bool = False

    def validate(self) -> None:
        _common(self.nonce, self.market)
        _int_in("index", self.index, 1, _MAX_ORDER_INDEX)

    def expected_fields(self) -> dict[str, Any]:
        return {"MarketIndex": self.market, "Index": self.index, **_skip_attrs(self.skip_nonce)}

    def _native(self, ns: Any, expired_at: int) -> tuple[str, str]:
        if self.skip_nonce:
            return ns.sign_tx(  # type: ignore[no-any-return]
                "cancel_order",
                {"market_index": self.market, "index": self.index, "skip_nonce": 1},
                nonce=self.nonce,
                expired_at=expired_at,
            )
        return ns.sign_cancel_order(  # type: ignore[no-any-return]
            self.market, self.index, self.nonce, expired_at
        )

    def _call(self, lib: Any, api_key_index: int, account_index: int) -> Any:
        return lib.SignCancelOrder(
            self.market,
            self.index,
            int(self.skip_nonce),
            self.nonce,
            api_key_index,
            account_index,
        )


@dataclass(slots=True)
class ModifyOrderRequest:
    """Modify one order's size and price (``index`` as in CancelOrderRequest)."""

    TX_TYPE: ClassVar[int] = TX_TYPE_MODIFY_ORDER
    market: int
    index: int
    base_amount: int
    price: int
    nonce: int
    trigger_price: int = 0
    skip_nonce: bool = False

    def validate(self) -> None:
        _common(self.nonce, self.market)
        _int_in("index", self.index, 1, _MAX_ORDER_INDEX)
        _int_in("base_amount", self.base_amount, 1, _MAX_BASE)
        _int_in("price", self.price, 1, _MAX_PRICE)
        _int_in("trigger_price", self.trigger_price, 0, _MAX_PRICE)

    def expected_fields(self) -> dict[str, Any]:
        return {
            "MarketIndex": self.market,
            "Index": self.index,
            "BaseAmount": self.base_amount,
            "Price": self.price,
            "TriggerPrice": self.trigger_price,
            **_skip_attrs(self.skip_nonce),
        }

    def _native(self, ns: Any, expired_at: int) -> tuple[str, str]:
        if self.skip_nonce:
            return ns.sign_tx(  # type: ignore[no-any-return]
                "modify_order",
                {
                    "market_index": self.market,
                    "index": self.index,
                    "base_amount": self.base_amount,
                    "price": self.price,
                    "trigger_price": self.trigger_price,
                    "skip_nonce": 1,
                },
                nonce=self.nonce,
                expired_at=expired_at,
            )
        return ns.sign_modify_order(  # type: ignore[no-any-return]
            self.market,
            self.index,
            self.base_amount,
            self.price,
            self.trigger_price,
            self.nonce,
            expired_at,
        )

    def _call(self, lib: Any, api_key_index: int, account_index: int) -> Any:
        return lib.SignModifyOrder(
            self.market,
            self.index,
            self.base_amount,
            self.price,
            self.trigger_price,
            0,
            0,
            0,
            0,
            0,  # no integrator, default self-trade mode
            int(self.skip_nonce),
            self.nonce,
            0,  # order_version: nil
            api_key_index,
            account_index,
        )


@dataclass(slots=True)
class CancelAllRequest:
    """Cancel every order of one market; every market only with ``all_markets=True``.

    A market-scoped cancel-all is immediate only (the venue's rule). With ``all_markets`` the
    time-in-force may be SCHEDULED (``time_ms`` = wall-clock epoch ms, a dead-man's switch) or
    ABORT (cancel a scheduled one).
    """

    TX_TYPE: ClassVar[int] = TX_TYPE_CANCEL_ALL
    market: int | None
    nonce: int
    all_markets: bool = False
    tif: CancelAllTif = CancelAllTif.IMMEDIATE
    time_ms: int = 0
    skip_nonce: bool = False

    def validate(self) -> None:
        _int_in("nonce", self.nonce, 0, _I64)
        tif = CancelAllTif(self.tif)
        if self.all_markets:
            if self.market is not None:
                raise SignerError("cancel-all: give a market or all_markets=True, not both")
        else:
            if self.market is None:
                raise SignerError(
                    "cancel-all needs a market; cancelling every market needs all_markets=True"
                )
            _int_in("market", self.market, 0, _I64)
            if self.market == NIL_MARKET_INDEX:
                raise SignerError(
                    f"market {NIL_MARKET_INDEX} means every market to the signer;"
                    " use all_markets=True for that"
                )
            if tif is not CancelAllTif.IMMEDIATE:
                raise SignerError("a market-scoped cancel-all can only be IMMEDIATE")
        if tif is CancelAllTif.SCHEDULED:
            _int_in("time_ms", self.time_ms, 1, _I64)
        elif self.time_ms != 0:
            raise SignerError(f"cancel-all {tif.name} takes time_ms 0")

    def _market_arg(self) -> int:
        return NIL_MARKET_INDEX if self.all_markets else int(self.market)  # type: ignore[arg-type]

    def expected_fields(self) -> dict[str, Any]:
        fields: dict[str, Any] = {"TimeInForce": int(self.tif), "Time": self.time_ms}
        # The market of a scoped cancel-all travels as L2TxAttributes["5"]; none for all markets.
        attrs: dict[str, Any] = {} if self.all_markets else {"5": self.market}
        if self.skip_nonce:
            attrs["4"] = 1
        fields["L2TxAttributes"] = attrs or None
        return fields

    def _native(self, ns: Any, expired_at: int) -> tuple[str, str]:
        if self.skip_nonce:
            return ns.sign_tx(  # type: ignore[no-any-return]
                "cancel_all_orders",
                {
                    "time_in_force": int(self.tif),
                    "scheduled_time_ms": self.time_ms,
                    "cancel_all_market_index": self._market_arg(),
                    "skip_nonce": 1,
                },
                nonce=self.nonce,
                expired_at=expired_at,
            )
        return ns.sign_cancel_all(  # type: ignore[no-any-return]
            int(self.tif), self.time_ms, self._market_arg(), self.nonce, expired_at
        )

    def _call(self, lib: Any, api_key_index: int, account_index: int) -> Any:
        return lib.SignCancelAllOrders(
            int(self.tif),
            self.time_ms,
            self._market_arg(),
            int(self.skip_nonce),
            self.nonce,
            api_key_index,
            account_index,
        )


@dataclass(slots=True)
class UpdateLeverageRequest:
    """Set a market's initial margin fraction (1e-4 units; see ``imf_for_leverage``) and mode."""

    TX_TYPE: ClassVar[int] = TX_TYPE_UPDATE_LEVERAGE
    market: int
    initial_margin_fraction: int
    nonce: int
    margin_mode: MarginMode = MarginMode.CROSS
    skip_nonce: bool = False

    def validate(self) -> None:
        _common(self.nonce, self.market)
        _int_in("initial_margin_fraction", self.initial_margin_fraction, 1, 10_000)
        MarginMode(self.margin_mode)

    def expected_fields(self) -> dict[str, Any]:
        return {
            "MarketIndex": self.market,
            "InitialMarginFraction": self.initial_margin_fraction,
            "MarginMode": int(self.margin_mode),
            **_skip_attrs(self.skip_nonce),
        }

    def _native(self, ns: Any, expired_at: int) -> tuple[str, str]:
        if self.skip_nonce:
            return ns.sign_tx(  # type: ignore[no-any-return]
                "update_leverage",
                {
                    "market_index": self.market,
                    "initial_margin_fraction": self.initial_margin_fraction,
                    "margin_mode": int(self.margin_mode),
                    "skip_nonce": 1,
                },
                nonce=self.nonce,
                expired_at=expired_at,
            )
        return ns.sign_update_leverage(  # type: ignore[no-any-return]
            self.market, self.initial_margin_fraction, int(self.margin_mode), self.nonce, expired_at
        )

    def _call(self, lib: Any, api_key_index: int, account_index: int) -> Any:
        return lib.SignUpdateLeverage(
            self.market,
            self.initial_margin_fraction,
            int(self.margin_mode),
            int(self.skip_nonce),
            self.nonce,
            api_key_index,
            account_index,
        )


@dataclass(slots=True)
class AuthTokenRequest:
    """An auth token valid until ``deadline_s`` (venue epoch seconds, at most 8 h out)."""

    deadline_s: int


TxRequest = (
    CreateOrderRequest
    | CancelOrderRequest
    | ModifyOrderRequest
    | CancelAllRequest
    | UpdateLeverageRequest
)


@dataclass(slots=True, repr=False)
class SignedTx:
    """A signed tx, ready to send; resend these exact bytes after a lost ack, never re-sign.

    ``tx_info`` is the signer's JSON text (holds the signature: never log it); ``info`` is the
    same parsed (for a WS sendtx, which takes an object). ``tx_hash`` is the hash the signer
    computed locally, the key for tx lookups. ``queued_ns``/``signed_ns`` are monotonic stamps
    (submit, result ready on the worker); ``sign_ns`` is the signer call alone.
    """

    request: TxRequest
    tx_type: int
    tx_info: str
    info: dict[str, Any]
    tx_hash: str
    nonce: int
    queued_ns: int
    signed_ns: int
    sign_ns: int

    def __repr__(self) -> str:
        return (
            f"SignedTx(type={self.tx_type}, nonce={self.nonce}, tx_hash={self.tx_hash!r},"
            f" request={self.request!r})"
        )


SignCallback = Callable[[Any, BaseException | None], object]


def check_token_deadline(deadline: object, now_s: int | None = None) -> None:
    """Refuse an auth token deadline that is not an epoch second within now..now+8 h.

    ``now_s``: the signer's clock (epoch seconds; default the host's), the one its txs'
    ExpiredAt is read from (a backtest's runs on the tape's time)."""
    now = int(time.time()) if now_s is None else now_s
    if isinstance(deadline, bool) or not isinstance(deadline, int):
        raise SignerError(f"deadline_s must be an int (epoch seconds), got {deadline!r}")
    if deadline < 1_000_000_000:
        raise SignerError(
            f"auth token deadline_s {deadline} is a wall-clock epoch second, not a duration"
        )
    # The caller computes deadlines from the venue's clock; allow for skew against ours.
    if not now - _TOKEN_SKEW_S < deadline <= now + MAX_AUTH_TOKEN_LIFETIME_S + _TOKEN_SKEW_S:
        raise SignerError(
            f"auth token deadline_s {deadline} is outside now..now+8 h (now {now},"
            f" {_TOKEN_SKEW_S} s of clock skew allowed)"
        )


_STOP = object()


def hold_sdk_loggers() -> None:
    """Raise lighter-sdk's (and its HTTP stack's) loggers to WARNING if they are lower."""
    for name in _SDK_LOGGERS:
        lg = logging.getLogger(name)
        if lg.level == logging.NOTSET or lg.level < logging.WARNING:
            lg.setLevel(logging.WARNING)


class SignerWorker:
    """One FIFO signing thread for one (API key, account) of one chain.

    ``start()`` loads the SDK signer, creates its client on the worker thread and waits until
    it is ready (a start-up call, may block the caller a few ms). ``submit(request, callback)``
    is the hot-path entry: callable from the loop thread only; ``callback(result, error)`` runs
    later on that loop. One worker per (api_key_index, account_index) per process: the Go
    library keeps one client per pair, so a second live worker would replace the first's key.
    """

    _live: ClassVar[set[tuple[int, int]]] = set()
    _live_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(
        self,
        key: ApiKey,
        *,
        account_index: int,
        api_key_index: int,
        chain_id: int,
        name: str = "mmfast-signer",
        check: bool = True,
    ) -> None:
        if not isinstance(key, ApiKey):
            raise TypeError("key must be an ApiKey (mmfast.connector.lighter.secret)")
        _int_in("account_index", account_index, 1, (1 << 48) - 1)
        _int_in("api_key_index", api_key_index, 0, 254)
        _int_in("chain_id", chain_id, 1, (1 << 31) - 1)
        self._key = key
        self._account_index = account_index
        self._api_key_index = api_key_index
        self._chain_id = chain_id
        self._name = name
        self._check = check  # check signed tx_info against the request (off only in benchmarks)
        self._redactor = Redactor([key])
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lib: Any = None
        self._decode: Callable[[Any], str | None] | None = None
        self._ready = threading.Event()
        self._start_error: str | None = None
        self._stopping = False
        # Counters (worker thread writes, others read; ints are atomic under the GIL).
        self.signed = 0  # txs signed and checked
        self.failed = 0  # requests that ended in an error
        self.dropped = 0  # results whose loop was closed before delivery
        self.last_sign_ns = 0  # duration of the last signer call

    # ------------------------------------------------------------------ lifecycle
    def start(self, loop: asyncio.AbstractEventLoop | None = None, timeout: float = 10.0) -> None:
        """Start the thread and create the signer client on it. ``loop``: where callbacks run
        (default: the running loop). Raises SignerError if the signer cannot be set up."""
        if self._thread is not None:
            raise SignerError("SignerWorker already started")
        self._loop = loop if loop is not None else asyncio.get_running_loop()
        pair = (self._api_key_index, self._account_index)
        with self._live_lock:
            if pair in self._live:
                raise SignerError(
                    f"a SignerWorker for api_key_index {pair[0]}, account {pair[1]} is already"
                    " running in this process"
                )
            self._live.add(pair)
        hold_sdk_loggers()
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            self._abandon(pair)
            raise SignerError(f"signer did not start within {timeout} s")
        if self._start_error is not None:
            self._thread.join(timeout)
            self._abandon(pair)
            raise SignerError(f"signer setup failed: {self._start_error}")

    def _abandon(self, pair: tuple[int, int]) -> None:
        self._queue.put(_STOP)
        with self._live_lock:
            self._live.discard(pair)
        self._thread = None

    def stop(self, timeout: float = 5.0) -> None:
        """Stop after the requests already queued (their callbacks still run if the loop runs)."""
        thread = self._thread
        if thread is None:
            return
        self._stopping = True
        self._queue.put(_STOP)
        thread.join(timeout)
        with self._live_lock:
            self._live.discard((self._api_key_index, self._account_index))
        self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and not self._stopping

    @property
    def thread_ident(self) -> int | None:
        """The worker thread's ident (tests check signing never runs elsewhere)."""
        t = self._thread
        return t.ident if t is not None else None

    @property
    def account_index(self) -> int:
        return self._account_index

    @property
    def api_key_index(self) -> int:
        return self._api_key_index

    @property
    def chain_id(self) -> int:
        return self._chain_id

    def __repr__(self) -> str:
        return (
            f"SignerWorker(account_index={self._account_index},"
            f" api_key_index={self._api_key_index}, chain_id={self._chain_id},"
            f" running={self.running}, signed={self.signed}, failed={self.failed})"
        )

    # ------------------------------------------------------------------ submit
    def submit(self, request: TxRequest | AuthTokenRequest, callback: SignCallback) -> None:
        """Queue ``request``; ``callback(result, error)`` runs on the loop when it is done.

        ``result`` is a SignedTx (an auth token str for AuthTokenRequest) and ``error`` None, or
        ``result`` None and ``error`` a SignerError. Requests are signed in submit order.
        """
        if self._thread is None or self._stopping:
            raise SignerError("SignerWorker is not running")
        self._queue.put((request, callback, time.monotonic_ns()))

    async def sign(self, request: TxRequest) -> SignedTx:
        """Awaitable form of ``submit`` (for start-up and rare paths, not the hot path)."""
        return await self._await(request)  # type: ignore[no-any-return]

    async def token(self, deadline_s: int) -> str:
        """An auth token valid until ``deadline_s`` (epoch seconds, <= 8 h out).

        Implements the connector's ``AuthTokenProvider`` protocol.
        """
        return await self._await(AuthTokenRequest(deadline_s))  # type: ignore[no-any-return]

    async def _await(self, request: TxRequest | AuthTokenRequest) -> Any:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            raise SignerError("SignerWorker used from a loop other than the one it was started on")
        fut: asyncio.Future[Any] = loop.create_future()

        def done(result: Any, error: BaseException | None) -> None:
            if fut.done():
                return
            if error is not None:
                fut.set_exception(error)
            else:
                fut.set_result(result)

        self.submit(request, done)
        return await fut

    # ------------------------------------------------------------------ worker thread
    def _run(self) -> None:
        try:
            from mmfast.connector.lighter import signer_lib

            lib, self._decode = signer_lib.load()  # its SHA-256 checked first
            err = self._decode(
                lib.CreateClient(
                    b"",  # no URL: this client can never reach the network
                    self._key.reveal().encode(),
                    self._chain_id,
                    self._api_key_index,
                    self._account_index,
                )
            )
            if err:
                self._start_error = self._redactor.redact(str(err))
            else:
                self._lib = lib
        except SignerError as exc:  # the library refused (signer_lib says why and what to do)
            self._start_error = str(exc)
        except Exception as exc:  # an SDK that fails to load: report, do not crash the thread
            self._start_error = self._redactor.redact(f"{type(exc).__name__}: {exc}")
        self._ready.set()
        if self._start_error is not None:
            return
        get = self._queue.get
        loop = self._loop
        assert loop is not None
        while True:
            job = get()
            if job is _STOP:
                return
            request, callback, queued_ns = job
            try:
                result: Any = self._sign(request, queued_ns)
                error: BaseException | None = None
            except SignerError as exc:
                result, error = None, exc
            except Exception as exc:
                result = None
                error = SignerError(self._redactor.redact(f"{type(exc).__name__}: {exc}"))
            if error is not None:
                self.failed += 1
            try:
                loop.call_soon_threadsafe(callback, result, error)
            except RuntimeError:  # loop closed: nobody is waiting any more
                self.dropped += 1

    def _sign(self, request: TxRequest | AuthTokenRequest, queued_ns: int) -> Any:
        lib, decode = self._lib, self._decode
        assert decode is not None
        if isinstance(request, AuthTokenRequest):
            return self._token(request)
        try:
            request.validate()
        except (TypeError, ValueError) as exc:
            raise SignerError(f"bad {type(request).__name__}: {exc}") from None
        t0 = time.monotonic_ns()
        res = request._call(lib, self._api_key_index, self._account_index)
        t1 = time.monotonic_ns()
        self.last_sign_ns = t1 - t0
        err = decode(res.err)
        tx_info = decode(res.txInfo)
        tx_hash = decode(res.txHash)
        decode(res.messageToSign)
        if err:
            raise SignerError(
                f"signer refused {type(request).__name__} (nonce {request.nonce}):"
                f" {self._redactor.redact(err)}"
            )
        if not tx_info or not tx_hash:
            raise SignerError(f"signer returned no tx_info/tx_hash for nonce {request.nonce}")
        try:
            info = (
                check_signed(
                    request,
                    res.txType,
                    tx_info,
                    account_index=self._account_index,
                    api_key_index=self._api_key_index,
                )
                if self._check
                else {}
            )
        except TxCheckError as exc:
            raise SignerError(str(exc)) from exc
        self.signed += 1
        return SignedTx(
            request=request,
            tx_type=res.txType,
            tx_info=tx_info,
            info=info,
            tx_hash=tx_hash,
            nonce=request.nonce,
            queued_ns=queued_ns,
            signed_ns=time.monotonic_ns(),
            sign_ns=t1 - t0,
        )

    def _token(self, request: AuthTokenRequest) -> str:
        deadline = request.deadline_s
        check_token_deadline(deadline)
        decode = self._decode
        assert decode is not None
        res = self._lib.CreateAuthToken(deadline, self._api_key_index, self._account_index)
        token = decode(res.str)
        err = decode(res.err)
        if err or not token:
            raise SignerError(f"auth token refused: {self._redactor.redact(str(err))}")
        self.signed += 1
        return token

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            if self._thread is not None:
                self._queue.put(_STOP)
                with self._live_lock:
                    self._live.discard((self._api_key_index, self._account_index))
