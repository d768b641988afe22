"""The simulated venue: accounts and keys, tx validation, sequencer, matching, accounting.

Independent of any transport. The server feeds it txs and drains its events; tests may drive
it directly. All quantities are integers: prices in ticks, sizes in lots, money in micro-USDC.

Nonce rule (as on the venue): a tx rejected at the API level (`VenueError` raised by
`submit`/`submit_batch`, HTTP 400) does not consume its nonce; an accepted tx consumes it even if
the sequencer then fails it or cancels its order.

Signatures (as on the venue): every tx's hash is Lighter's own (Poseidon2 over the signed fields,
`mmfast._core.signer.tx_info_hash`), and with `SimConfig.verify_signatures` (the default) its
`Sig` must verify under the public key registered for (account, api_key_index), else 21120. Keys
are registered by a ChangePubKey tx (type 8, signed by the new key; its L1 signature is not
checked), by `register_api_key`, or by `SimConfig.api_keys`.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import heapq
import json
import random
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from mmfast._core import signer as _signer
from mmfast.sim import errors as E
from mmfast.sim.clock import SimClock
from mmfast.sim.config import MarketSpec, SimConfig
from mmfast.sim.errors import QuotaExceeded, VenueError
from mmfast.sim.units import div_round

TX_CHANGE_PUB_KEY = 8
TX_CREATE_ORDER = 14
TX_CANCEL_ORDER = 15
TX_CANCEL_ALL = 16
TX_MODIFY_ORDER = 17
TX_UPDATE_LEVERAGE = 20
ORDER_TX_TYPES = frozenset({TX_CREATE_ORDER, TX_CANCEL_ORDER, TX_CANCEL_ALL, TX_MODIFY_ORDER})
# Txs that spend one unit of the volume quota each (the venue's volume-quota-program page):
# create, modify, grouped orders (28) and transfers (12); cancels and cancel-all are free.
# 12 and 28 are not simulated (21505) but listed so the rule reads whole.
QUOTA_TX_TYPES = frozenset({12, TX_CREATE_ORDER, TX_MODIFY_ORDER, 28})

ORDER_LIMIT = 0
ORDER_MARKET = 1
TIF_IOC = 0
TIF_GTT = 1
TIF_POST_ONLY = 2
CANCEL_ALL_IMMEDIATE = 0
CANCEL_ALL_SCHEDULED = 1
CANCEL_ALL_ABORT = 2
NIL_MARKET = 255

STP_EXPIRE_MAKER = 0
STP_EXPIRE_TAKER = 1
STP_EXPIRE_BOTH = 2
STP_REDUCE = 3

TX_FAILED = 0
TX_PENDING = 1
TX_EXECUTED = 2

MAX_COI = 2**48 - 1
ORDER_INDEX_BASE = 2**48  # exchange order ids start here, as on the venue
MAX_PRICE = 2**32 - 1
MAX_BASE = 2**48 - 1
MAX_API_KEY = 254

# Order status names, as the venue spells them.
ST_OPEN = "open"
ST_FILLED = "filled"
ST_CANCELED = "canceled"
ST_POST_ONLY = "canceled-post-only"
ST_REDUCE_ONLY = "canceled-reduce-only"
ST_MARGIN = "canceled-margin-not-allowed"
ST_SLIPPAGE = "canceled-too-much-slippage"
ST_NO_LIQUIDITY = "canceled-not-enough-liquidity"
ST_SELF_TRADE = "canceled-self-trade"
ST_EXPIRED = "canceled-expired"
ST_LIQUIDATION = "canceled-liquidation"

TIF_NAMES = {TIF_IOC: "immediate-or-cancel", TIF_GTT: "good-till-time", TIF_POST_ONLY: "post-only"}
TYPE_NAMES = {ORDER_LIMIT: "limit", ORDER_MARKET: "market"}

_CREATE_FIELDS = (
    "AccountIndex",
    "ApiKeyIndex",
    "MarketIndex",
    "ClientOrderIndex",
    "BaseAmount",
    "Price",
    "IsAsk",
    "Type",
    "TimeInForce",
    "ReduceOnly",
    "TriggerPrice",
    "OrderExpiry",
    "ExpiredAt",
    "Nonce",
)
_CANCEL_FIELDS = ("AccountIndex", "ApiKeyIndex", "MarketIndex", "Index", "ExpiredAt", "Nonce")
_MODIFY_FIELDS = (*_CANCEL_FIELDS, "BaseAmount", "Price", "TriggerPrice")
_CANCEL_ALL_FIELDS = ("AccountIndex", "ApiKeyIndex", "TimeInForce", "Time", "ExpiredAt", "Nonce")
_LEVERAGE_FIELDS = (
    "AccountIndex",
    "ApiKeyIndex",
    "MarketIndex",
    "InitialMarginFraction",
    "MarginMode",
    "ExpiredAt",
    "Nonce",
)
_CHANGE_PUB_KEY_FIELDS = ("AccountIndex", "ApiKeyIndex", "ExpiredAt", "Nonce")  # + PubKey
_FIELDS = {
    TX_CREATE_ORDER: _CREATE_FIELDS,
    TX_CANCEL_ORDER: _CANCEL_FIELDS,
    TX_MODIFY_ORDER: _MODIFY_FIELDS,
    TX_CANCEL_ALL: _CANCEL_ALL_FIELDS,
    TX_UPDATE_LEVERAGE: _LEVERAGE_FIELDS,
    TX_CHANGE_PUB_KEY: _CHANGE_PUB_KEY_FIELDS,
}
PUBLIC_KEY_BYTES = 40
SIGNATURE_BYTES = 80
MARGIN_CROSS = 0
MARGIN_ISOLATED = 1
# The expiry heap keeps entries of orders that left the book before they expired (a flow
# order lives seconds, its expiry is 30 days away); it is rebuilt from the live orders when it
# grows past twice what it held after the last rebuild (and at least this).
_MIN_EXPIRIES_COMPACT = 4096


@dataclass(slots=True, eq=False)
class Order:
    """A venue order (live or finished)."""

    order_index: int  # exchange id, >= 2^48
    client_order_index: int  # 1..2^48-1
    account: int  # owner account index
    market: int  # market id
    is_ask: bool  # sell side
    price: int  # ticks (worst price for market orders)
    initial: int  # lots asked for (grows/shrinks on modify)
    remaining: int  # lots still open
    type: int  # ORDER_LIMIT or ORDER_MARKET
    tif: int  # TIF_*
    reduce_only: bool  # may only reduce the position
    expiry_ms: int  # wall ms; 0 for IOC
    nonce: int  # nonce of the tx that created it
    api_key: int  # key that created it
    stp: int  # self-trade behaviour (STP_*)
    created_ms: int  # wall ms at creation
    transaction_time_us: int  # µs at creation
    seq: int = 0  # queue priority stamp (lower = earlier)
    updated_ms: int = 0  # wall ms of the last change
    filled_base: int = 0  # lots filled so far
    filled_quote: int = 0  # micro-USDC filled so far
    status: str = ST_OPEN  # venue status name
    block_height: int = 0  # block of the last change

    @property
    def live(self) -> bool:
        return self.status == ST_OPEN


@dataclass(slots=True)
class Position:
    """Signed position in one market, with cost basis and realized PnL."""

    size: int = 0  # lots, + long, - short
    entry_quote: int = 0  # micro-USDC cost basis of |size|
    realized_pnl: int = 0  # micro-USDC, fees excluded
    fees_paid: int = 0  # micro-USDC (negative if rebates)


@dataclass(slots=True)
class ApiKey:
    """One API key slot of an account."""

    index: int  # 0..254
    nonce: int = 0  # next expected nonce
    public_key: str = ""  # 80 lowercase hex digits (no 0x) as `apikeys` shows it; "" = none
    pk: bytes = b""  # the same 40 bytes
    verifier: Any = None  # signer.Verifier prepared for pk (what txs are verified with)
    # Maker-only (the venue's premium option): post-only creates, modifies of post-only
    # orders and cancels only; anything else is refused with 21511 (docs/sim.md).
    maker_only: bool = False


@dataclass(slots=True)
class Account:
    """A venue account."""

    index: int  # account index
    collateral: int  # micro-USDC, realized PnL and fees included
    accept_any_key: bool  # create API keys on first use
    l1_address: str = "0x" + "0" * 40  # placeholder L1 address
    keys: dict[int, ApiKey] = field(default_factory=dict)  # api_key_index -> key
    positions: dict[int, Position] = field(default_factory=dict)  # market -> position
    live: dict[int, Order] = field(default_factory=dict)  # order_index -> live order
    by_coi: dict[int, Order] = field(default_factory=dict)  # coi -> live order
    # coi -> latest order, while live or in `inactive`
    last_by_coi: dict[int, Order] = field(default_factory=dict)
    # the last `inactive_orders_kept` finished orders, newest last
    inactive: deque[Order] = field(default_factory=deque)
    live_count: dict[int, int] = field(default_factory=dict)  # market -> resting orders
    # (market, is_ask) -> resting lots of orders that can add exposure (not reduce-only)
    open_lots: dict[tuple[int, bool], int] = field(default_factory=dict)
    cancel_all_time: int = 0  # wall ms of a scheduled cancel-all, 0 if none
    total_order_count: int = 0  # orders ever created
    # market -> (initial margin fraction in 1e-4, margin mode) set by UpdateLeverage
    leverage: dict[int, tuple[int, int]] = field(default_factory=dict)
    # Volume quota (SimConfig.volume_quota_*): units left, traded micro-USDC not yet worth a
    # unit, when the next free tx is allowed (monotonic ns), and counters since start.
    quota: int = 0
    quota_volume: int = 0
    quota_free_at_ns: int = 0
    quota_spent: int = 0
    quota_earned: int = 0
    quota_free_used: int = 0
    quota_refused: int = 0


@dataclass(slots=True, eq=False)
class TxRecord:
    """An accepted tx and its outcome."""

    hash: str  # 80 hex chars
    type: int  # tx type
    info: str  # tx_info JSON as received
    fields: dict[str, Any]  # parsed tx_info
    account: int  # AccountIndex
    api_key: int  # ApiKeyIndex
    nonce: int  # Nonce
    expired_at: int  # ExpiredAt (wall ms)
    market: int | None  # market the tx acts on (None: every market)
    queued_at_ms: int  # wall ms at acceptance
    due_ns: int  # monotonic ns when the sequencer runs it
    seq: int  # acceptance order
    status: int = TX_PENDING  # TX_FAILED / TX_PENDING / TX_EXECUTED
    executed_at_ms: int = 0  # wall ms at execution
    block_height: int = 0  # block it executed in
    error: VenueError | None = None  # why the sequencer failed it
    order_index: int = 0  # order created/acted on, if any
    forced_error: VenueError | None = None  # late reject injected by a fault


@dataclass(slots=True)
class Event:
    """Something subscribers may need to hear about. `kind` selects the payload meaning."""

    kind: str  # "book", "trade", "order", "account", "market"
    market: int | None  # market concerned, if any
    account: int | None  # account concerned, if any
    payload: Any  # kind-specific data


class BookSide:
    """One side of a price-time-priority book: sorted price levels of FIFO queues."""

    __slots__ = ("is_ask", "levels", "prices", "sizes")

    def __init__(self, is_ask: bool) -> None:
        self.is_ask = is_ask  # asks are matched lowest first
        self.prices: list[int] = []  # ascending
        self.levels: dict[int, deque[Order]] = {}  # price -> orders in time priority
        self.sizes: dict[int, int] = {}  # price -> aggregate remaining lots

    def best(self) -> int | None:
        if not self.prices:
            return None
        return self.prices[0] if self.is_ask else self.prices[-1]

    def add(self, order: Order) -> None:
        q = self.levels.get(order.price)
        if q is None:
            q = self.levels[order.price] = deque()
            self.sizes[order.price] = 0
            bisect.insort(self.prices, order.price)
        q.append(order)
        self.sizes[order.price] += order.remaining

    def remove(self, order: Order) -> None:
        q = self.levels[order.price]
        q.remove(order)
        self.sizes[order.price] -= order.remaining
        if not q:
            self._drop_level(order.price)

    def reduce(self, order: Order, lots: int) -> None:
        self.sizes[order.price] -= lots

    def _drop_level(self, price: int) -> None:
        del self.levels[price]
        del self.sizes[price]
        i = bisect.bisect_left(self.prices, price)
        del self.prices[i]

    def iter_prices(self) -> Iterable[int]:
        return iter(self.prices) if self.is_ask else reversed(self.prices)

    def crosses(self, price: int) -> bool:
        """Would a taker on the other side at `price` trade against this side?"""
        best = self.best()
        if best is None:
            return False
        return best <= price if self.is_ask else best >= price


Levels = list[tuple[int, int]]  # (price ticks, size lots)


# One side of a recorded book: (prices ascending, sizes) as two tuples of ints.
SideRecord = tuple[tuple[int, ...], tuple[int, ...]]


class BookHistory:
    """The aggregated book of one market at each of its last `keep` book nonces (an oracle for
    tests that compare a client's book with the venue's at the same nonce).

    A side is stored as two tuples (prices, sizes), copied at C speed, and shared with the
    previous record when the update did not touch it.
    """

    __slots__ = ("books", "keep", "last", "nonces")

    def __init__(self, keep: int) -> None:
        self.keep = keep  # nonces kept
        self.nonces: deque[int] = deque()  # recorded nonces, oldest first
        self.books: dict[int, tuple[SideRecord, SideRecord]] = {}  # nonce -> (asks, bids)
        self.last: tuple[SideRecord, SideRecord] = (((), ()), ((), ()))  # newest record

    def record(self, nonce: int, asks: SideRecord | None, bids: SideRecord | None) -> None:
        """Record the book at `nonce`; a side given as None is the previous record's."""
        last = self.last
        book = self.last = (last[0] if asks is None else asks, last[1] if bids is None else bids)
        if nonce not in self.books:
            self.nonces.append(nonce)
        self.books[nonce] = book
        while len(self.nonces) > self.keep:
            del self.books[self.nonces.popleft()]

    def get(self, nonce: int) -> tuple[Levels, Levels] | None:
        """(asks ascending, bids descending) at `nonce`, None if not recorded."""
        book = self.books.get(nonce)
        if book is None:
            return None
        (ap, asz), (bp, bsz) = book
        return (
            list(zip(ap, asz, strict=True)),
            list(zip(reversed(bp), reversed(bsz), strict=True)),
        )

    def window(self) -> tuple[int, int] | None:
        """(oldest, newest) nonce kept, None before the first record."""
        return (self.nonces[0], self.nonces[-1]) if self.nonces else None


@dataclass(slots=True)
class MarketState:
    """A market's spec and live state."""

    spec: MarketSpec  # static parameters
    asks: BookSide  # sell orders
    bids: BookSide  # buy orders
    mark_price: int  # ticks
    book_nonce: int  # nonce of the last book change sent
    offset: int  # offset of the last book message
    last_trade_price: int = 0  # ticks, 0 before the first trade
    trades: deque[dict[str, Any]] = field(default_factory=deque)  # recent trades, newest last
    trade_count: int = 0  # trades since start
    base_volume: int = 0  # lots since start
    quote_volume: int = 0  # micro-USDC since start
    open_interest: int = 0  # lots (sum of long positions)
    dirty: set[tuple[bool, int]] = field(default_factory=set)  # (is_ask, price) changed
    history: BookHistory | None = None  # recent books by nonce (SimConfig.book_history)

    def side(self, is_ask: bool) -> BookSide:
        return self.asks if is_ask else self.bids


def _int_field(info: dict[str, Any], name: str) -> int:
    v = info.get(name)
    if type(v) is not int:  # bool is not an integer here
        raise VenueError(E.INVALID_TX_INFO, f"{name} must be an integer")
    return v


def parse_tx_info(tx_type: int, tx_info: str | bytes | dict[str, Any]) -> dict[str, Any]:
    """Decode and structurally check a tx_info (API level: raises VenueError 21501/21505)."""
    if tx_type not in _FIELDS:
        raise VenueError(E.UNSUPPORTED_TX_TYPE, f"tx type {tx_type}")
    if isinstance(tx_info, dict):
        info = tx_info
    else:
        try:
            info = json.loads(tx_info)
        except ValueError as exc:
            raise VenueError(E.INVALID_TX_INFO, "tx_info is not JSON") from exc
    if not isinstance(info, dict):
        raise VenueError(E.INVALID_TX_INFO, "tx_info is not an object")
    for name in _FIELDS[tx_type]:
        _int_field(info, name)
    if tx_type == TX_CHANGE_PUB_KEY:
        change_pub_key_bytes(info)
    attrs = info.get("L2TxAttributes")
    if attrs is not None and not (
        isinstance(attrs, dict) and all(type(v) is int for v in attrs.values())
    ):
        raise VenueError(E.INVALID_TX_INFO, "L2TxAttributes must be null or a map of integers")
    return info


def change_pub_key_bytes(info: dict[str, Any]) -> bytes:
    """The new public key a ChangePubKey tx carries (`PubKey`, base64 of 40 bytes)."""
    raw = info.get("PubKey")
    try:
        pk = base64.b64decode(raw, validate=True) if isinstance(raw, str) else b""
    except (binascii.Error, ValueError):
        pk = b""
    if len(pk) != PUBLIC_KEY_BYTES:
        raise VenueError(E.INVALID_TX_INFO, "PubKey must be the base64 of 40 bytes")
    return pk


def signature_bytes(info: dict[str, Any]) -> bytes:
    """The tx's `Sig` (base64 of 80 bytes); VenueError(21120) if missing or malformed."""
    sig = info.get("Sig")
    if not isinstance(sig, str) or not sig:
        raise VenueError(E.INVALID_SIGNATURE, "Sig missing")
    try:
        raw = base64.b64decode(sig, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise VenueError(E.INVALID_SIGNATURE, "Sig is not base64") from exc
    if len(raw) != SIGNATURE_BYTES:
        raise VenueError(E.INVALID_SIGNATURE, "Sig must be 80 bytes")
    return raw


def tx_hash_bytes(chain_id: int, tx_type: int, info: dict[str, Any]) -> bytes:
    """Lighter's 40-byte tx hash of a parsed tx_info (what the L2 signature signs).

    A tx whose hash cannot be computed is malformed: VenueError(21501).
    """
    try:
        return _signer.tx_info_hash(tx_type, info, chain_id)
    except (ValueError, TypeError, OverflowError) as exc:  # NativeSignerError is a ValueError
        raise VenueError(E.INVALID_TX_INFO, f"cannot hash the tx: {exc}") from exc


def tx_hash(chain_id: int, tx_type: int, info: dict[str, Any]) -> str:
    """Lighter's tx hash (80 hex chars): the one the venue and the official signer report."""
    return tx_hash_bytes(chain_id, tx_type, info).hex()


def public_key_bytes(public_key: str | bytes) -> bytes:
    """A public key as 40 bytes, from bytes or hex (with or without 0x); ValueError if not."""
    if isinstance(public_key, (bytes, bytearray)):
        pk = bytes(public_key)
    elif isinstance(public_key, str):
        text = public_key.strip()
        if text[:2] in ("0x", "0X"):
            text = text[2:]
        try:
            pk = bytes.fromhex(text)
        except ValueError as exc:
            raise ValueError("public key must be hex") from exc
    else:
        raise ValueError("public key must be hex or bytes")
    if len(pk) != PUBLIC_KEY_BYTES:
        raise ValueError(f"public key must be {PUBLIC_KEY_BYTES} bytes, got {len(pk)}")
    return pk


class Exchange:
    """The simulated venue's state machine."""

    def __init__(self, config: SimConfig, clock: SimClock) -> None:
        self.config = config
        self.clock = clock
        self.rng = random.Random(config.seed)
        self.markets: dict[int, MarketState] = {}
        for spec in config.markets:
            start = self.rng.randrange(1_000_000, 9_000_000)
            self.markets[spec.market_id] = MarketState(
                spec=spec,
                asks=BookSide(True),
                bids=BookSide(False),
                mark_price=spec.mark_price,
                book_nonce=start,
                offset=start // 1000,
            )
        self.accounts: dict[int, Account] = {}
        # order_index -> order: live ones, and finished ones while they are in their
        # account's `inactive` window (SimConfig.inactive_orders_kept)
        self.orders: dict[int, Order] = {}
        self.txs: dict[str, TxRecord] = {}  # hash -> record: pending + the last `txs_kept` done
        self._done_txs: deque[str] = deque()  # hashes of executed/failed txs, oldest first
        self.pending: list[tuple[int, int, TxRecord]] = []  # heap (due_ns, seq, tx)
        self.inflight: dict[int, int] = {}  # market -> order txs accepted, not executed
        self.pending_cois: dict[tuple[int, int], int] = {}  # (account, coi) -> pending creates
        self.expiries: list[tuple[int, int]] = []  # heap (expiry_ms, order_index)
        self._expiries_limit = _MIN_EXPIRIES_COMPACT  # compact the heap beyond this size
        # market -> phantom bid price shown in the feed (crossed-book fault; never matched)
        self.phantom_bids: dict[int, int] = {}
        self.events: list[Event] = []
        self.block_height = 1_000
        self._next_order_index = ORDER_INDEX_BASE + self.rng.randrange(1, 1_000_000)
        self._next_trade_id = self.rng.randrange(10**9, 2 * 10**9)
        self._seq = 0
        self._us_tick = 0
        self._current_tx: TxRecord | None = None  # tx being executed (trades carry its hash)
        # Speed-bump draws (premium taker 140-200 ms) from their own stream, so they do not
        # shift the ids drawn from `rng`.
        self._bump_rng = random.Random(f"{config.seed}:bumps")
        self._delays = config.delays_ms()
        self._quota_on = config.quota_on
        self._quota_unit = config.volume_quota_usd_per_unit * 1_000_000  # micro-USDC per unit
        self.late_rejects: list[int] = []  # codes the sequencer gives the next accepted txs
        # Called with each order that starts resting (placed, or modified losing priority):
        # the tape replay starts its queue position there (mmfast.sim.replay).
        self.on_rest: Callable[[Order], object] | None = None
        # Called with each trade as it is booked (a backtest keeps ours: the trade memory
        # window, `recent_trades_kept`, forgets them among the tape's).
        self.on_trade: Callable[[dict[str, Any]], object] | None = None
        if config.book_history > 0:
            for m in self.markets.values():
                m.history = BookHistory(config.book_history)
                m.history.record(m.book_nonce, ((), ()), ((), ()))
        self.add_account(
            config.account_index, config.initial_collateral, api_key_indexes=config.api_key_indexes
        )
        for entry in config.api_keys:
            # (account, key index, public key[, maker_only])
            self.register_api_key(
                entry[0], entry[1], entry[2], maker_only=bool(entry[3]) if len(entry) > 3 else None
            )

    # ------------------------------------------------------------------ accounts and keys
    def add_account(
        self, index: int, collateral: int, api_key_indexes: Iterable[int] | None = None
    ) -> Account:
        """Create a funded account. `api_key_indexes=None` accepts any key index on first use."""
        if index in self.accounts:
            raise ValueError(f"account {index} exists")
        if index <= 2:
            raise ValueError("account indexes 0..2 are system accounts")
        acct = Account(
            index=index,
            collateral=collateral,
            accept_any_key=api_key_indexes is None,
            quota=self.config.volume_quota_start,
        )
        self.accounts[index] = acct
        for k in api_key_indexes or ():
            self.register_api_key(index, k)
        return acct

    def register_api_key(
        self,
        account: int,
        api_key_index: int,
        public_key: str | bytes = "",
        nonce: int | None = None,
        maker_only: bool | None = None,
    ) -> ApiKey:
        """Register an API key slot of a funded account and, if given, its public key.

        `public_key`: the 40-byte key as bytes or hex (with or without 0x), as
        `lighter.signer_client.create_api_key()` returns it; it replaces any key registered for
        the slot (txs signed with the old key are refused from then on). `nonce` sets the slot's
        next nonce (None: 0 for a new slot, unchanged for an existing one). `maker_only` marks
        the slot maker-only or not (None: False for a new slot, unchanged for an existing
        one). Raises ValueError
        for an unknown account, an index outside 0..254 or a malformed key.
        """
        if not 0 <= api_key_index <= MAX_API_KEY:
            raise ValueError("api key index must be within 0..254")
        acct = self.accounts.get(account)
        if acct is None:
            raise ValueError(f"no account {account}")
        pk = public_key_bytes(public_key) if public_key else b""
        verifier = None
        if pk:
            try:
                verifier = _signer.Verifier(pk)
            except ValueError as exc:  # NativeSignerError: not a point of the curve
                raise ValueError(f"public key: {exc}") from exc
        key = acct.keys.get(api_key_index)
        if key is None:
            key = acct.keys[api_key_index] = ApiKey(api_key_index, nonce or 0)
        elif nonce is not None:
            key.nonce = nonce
        if maker_only is not None:
            key.maker_only = bool(maker_only)
        if pk:
            key.pk = pk
            key.public_key = pk.hex()
            key.verifier = verifier
        return key

    def _key(self, acct: Account, api_key_index: int, create: bool) -> ApiKey:
        if not 0 <= api_key_index <= MAX_API_KEY:
            raise VenueError(E.INVALID_API_KEY_INDEX, str(api_key_index))
        key = acct.keys.get(api_key_index)
        if key is None:
            if not acct.accept_any_key:
                raise VenueError(E.API_KEY_NOT_FOUND, str(api_key_index))
            key = ApiKey(api_key_index)
            if create:
                acct.keys[api_key_index] = key
        return key

    def account(self, index: int) -> Account:
        acct = self.accounts.get(index)
        if acct is None:
            raise VenueError(E.ACCOUNT_NOT_FOUND, str(index))
        return acct

    def next_nonce(self, account: int, api_key_index: int) -> int:
        """What `nextNonce` answers."""
        return self._key(self.account(account), api_key_index, create=False).nonce

    def check_auth(self, token: str, account: int | None = None) -> int:
        """Check an auth token's structure, deadline, account and key, and (with
        `verify_signatures`) its signature against the key's registered public key.

        Returns the token's account index; raises VenueError(21120) if it is not acceptable.
        """
        parts = token.split(":") if isinstance(token, str) else []
        if len(parts) != 4 or not all(p.isdigit() for p in parts[:3]) or not parts[3]:
            raise VenueError(E.INVALID_SIGNATURE, "malformed auth token")
        try:
            bytes.fromhex(parts[3])
        except ValueError as exc:
            raise VenueError(E.INVALID_SIGNATURE, "malformed auth token") from exc
        deadline, acct_idx, key_idx = int(parts[0]), int(parts[1]), int(parts[2])
        now_s = self.clock.wall_ms() // 1000
        if deadline <= now_s:
            raise VenueError(E.INVALID_SIGNATURE, "auth token expired")
        if deadline > now_s + self.config.max_auth_lifetime_s:
            raise VenueError(E.INVALID_SIGNATURE, "auth token deadline too far")
        if account is not None and acct_idx != account:
            raise VenueError(E.INVALID_SIGNATURE, "auth token is for another account")
        acct = self.accounts.get(acct_idx)
        if acct is None:
            raise VenueError(E.INVALID_SIGNATURE, "auth token account unknown")
        try:
            key = self._key(acct, key_idx, create=False)
        except VenueError as exc:
            raise VenueError(E.INVALID_SIGNATURE, "auth token key unknown") from exc
        if self.config.verify_signatures:
            if not key.pk:
                raise VenueError(
                    E.INVALID_SIGNATURE, f"no public key registered for api key {key_idx}"
                )
            if not _signer.verify_auth_token(key.pk, token):
                raise VenueError(E.INVALID_SIGNATURE, "auth token signature")
        return acct_idx

    # ------------------------------------------------------------------ clock helpers
    def _tick(self) -> int:
        self._seq += 1
        return self._seq

    def _now_us(self) -> int:
        # Microsecond stamps from the ms wall clock, kept strictly increasing.
        self._us_tick = max(self._us_tick + 1, self.clock.wall_ms() * 1000)
        return self._us_tick

    # ------------------------------------------------------------------ submission (API level)
    def submit(self, tx_type: int, tx_info: str | bytes | dict[str, Any]) -> TxRecord:
        """Accept one tx for sequencing, or raise VenueError (API-level reject, nonce kept)."""
        return self.submit_batch([tx_type], [tx_info])[0]

    def submit_batch(self, tx_types: list[int], tx_infos: list[Any]) -> list[TxRecord]:
        """Accept a batch atomically: every tx passes the API checks, or none is accepted."""
        if len(tx_types) != len(tx_infos):
            raise VenueError(E.TX_INFO_TYPE_LENGTH_MISMATCH)
        if not tx_types:
            raise VenueError(E.INVALID_TX_INFO, "empty batch")
        if len(tx_types) > self.config.max_batch:
            raise VenueError(E.MAX_BATCH_TX, f"{len(tx_types)} > {self.config.max_batch}")
        self.poll()
        parsed = []
        for t, info in zip(tx_types, tx_infos, strict=True):
            if type(t) is not int:
                raise VenueError(E.INVALID_TX_INFO, "tx_type must be an integer")
            parsed.append((t, parse_tx_info(t, info), info))
        first = parsed[0][1]
        owner = (first["AccountIndex"], first["ApiKeyIndex"])
        for i, (_, f, _) in enumerate(parsed):
            if (f["AccountIndex"], f["ApiKeyIndex"]) != owner:
                raise VenueError(E.BATCH_MULTIPLE_OWNER)
            if i and f["Nonce"] != parsed[i - 1][1]["Nonce"] + 1:
                raise VenueError(E.BATCH_NONCE_NOT_INCREASING)
        acct = self.account(owner[0])
        if any(t == TX_CHANGE_PUB_KEY for t, _, _ in parsed):
            # ChangePubKey may add a key slot, whatever the account's configured indexes.
            if not 0 <= owner[1] <= MAX_API_KEY:
                raise VenueError(E.INVALID_API_KEY_INDEX, str(owner[1]))
            key = acct.keys.get(owner[1]) or ApiKey(owner[1])
        else:
            key = self._key(acct, owner[1], create=False)
        chain_id = self.config.chain_id
        hashes = [tx_hash_bytes(chain_id, t, f) for t, f, _ in parsed]
        self._check_signatures(parsed, hashes, key)
        batch_cois: set[int] = set()
        inflight = dict(self.inflight)
        markets = []
        expected = key.nonce
        for t, f, _ in parsed:
            nonce = f["Nonce"]
            # Skip-nonce (attribute 4 = 1): the tx may jump over nonces, never back; the
            # batch rule above keeps the rest of a batch consecutive after it.
            if nonce != expected and not (
                nonce > expected and (f.get("L2TxAttributes") or {}).get("4") == 1
            ):
                raise VenueError(E.INVALID_NONCE, f"expected {expected}, got {nonce}")
            expected = nonce + 1
            if key.maker_only:
                self._check_maker_only(t, f, acct)
            markets.append(self._validate(t, f, acct, batch_cois, inflight))
        if self._quota_on:
            self._spend_quota(acct, sum(1 for t, _, _ in parsed if t in QUOTA_TX_TYPES))
        # Accepted: nonces are consumed from here on, whatever the sequencer does (a skip
        # consumes every nonce it jumped over).
        key = acct.keys.setdefault(owner[1], key)
        key.nonce = expected
        now_ns = self.clock.monotonic_ns()
        now_ms = self.clock.wall_ms()
        out = []
        for (t, f, raw), market, h in zip(parsed, markets, hashes, strict=True):
            info_str = (
                raw
                if isinstance(raw, str)
                else (
                    raw.decode()
                    if isinstance(raw, bytes)
                    else json.dumps(raw, separators=(",", ":"))
                )
            )
            delay = self._delay_ms(t, f, market, key.maker_only)
            rec = TxRecord(
                hash=h.hex(),
                type=t,
                info=info_str,
                fields=f,
                account=f["AccountIndex"],
                api_key=f["ApiKeyIndex"],
                nonce=f["Nonce"],
                expired_at=f["ExpiredAt"],
                market=market,
                queued_at_ms=now_ms,
                due_ns=now_ns + delay * 1_000_000,
                seq=self._tick(),
            )
            self.txs[rec.hash] = rec
            if market is not None:
                self.inflight[market] = self.inflight.get(market, 0) + 1
            if t == TX_CREATE_ORDER:
                k = (rec.account, f["ClientOrderIndex"])
                self.pending_cois[k] = self.pending_cois.get(k, 0) + 1
            if self.late_rejects:
                rec.forced_error = VenueError(self.late_rejects.pop(0), "rejected by the sequencer")
            heapq.heappush(self.pending, (rec.due_ns, rec.seq, rec))
            out.append(rec)
        self.poll()
        return out

    # ------------------------------------------------------------------ volume quota
    def _spend_quota(self, acct: Account, n: int) -> None:
        """Spend ``n`` units for an accepted tx or batch, or refuse it (QuotaExceeded) when the
        quota is short: one tx past an empty quota goes through on the free allowance (one per
        ``volume_quota_free_interval_ms``), a batch needs all but one unit in hand."""
        if n <= 0:
            return
        if acct.quota >= n:
            acct.quota -= n
            acct.quota_spent += n
            return
        now = self.clock.monotonic_ns()
        if n - acct.quota == 1 and now >= acct.quota_free_at_ns:
            acct.quota_spent += acct.quota
            acct.quota = 0
            acct.quota_free_used += 1
            acct.quota_free_at_ns = now + self.config.volume_quota_free_interval_ms * 1_000_000
            return
        acct.quota_refused += 1
        wait_ms = max(0, acct.quota_free_at_ns - now) // 1_000_000
        raise QuotaExceeded(acct.quota, wait_ms)

    def _earn_quota(self, acct: Account, quote: int) -> None:
        """Traded notional (micro-USDC) earns one unit per ``volume_quota_usd_per_unit``."""
        v = acct.quota_volume + quote
        units, acct.quota_volume = divmod(v, self._quota_unit)
        if units:
            cap = self.config.volume_quota_cap
            got = min(units, cap - acct.quota) if acct.quota < cap else 0
            acct.quota += got
            acct.quota_earned += got

    def set_volume_quota(self, account: int, remaining: int, *, free_now: bool = False) -> None:
        """Set an account's quota (tests, control endpoint); ``free_now`` makes the free
        allowance available at once."""
        if type(remaining) is not int or not 0 <= remaining <= self.config.volume_quota_cap:
            raise ValueError(
                f"remaining must be an integer within 0.."
                f"{self.config.volume_quota_cap}, got {remaining!r}"
            )
        acct = self.account(account)
        acct.quota = remaining
        if free_now:
            acct.quota_free_at_ns = 0

    def volume_quota(self, account: int) -> dict[str, Any]:
        """An account's quota as the truth endpoint shows it."""
        acct = self.account(account)
        now = self.clock.monotonic_ns()
        return {
            "account": account,
            "enabled": self._quota_on,
            "remaining": acct.quota,
            "cap": self.config.volume_quota_cap,
            "usd_per_unit": self.config.volume_quota_usd_per_unit,
            "free_interval_ms": self.config.volume_quota_free_interval_ms,
            "free_in_ms": max(0, acct.quota_free_at_ns - now) // 1_000_000,
            "spent": acct.quota_spent,
            "earned": acct.quota_earned,
            "free_used": acct.quota_free_used,
            "refused": acct.quota_refused,
        }

    def quota_remaining(self, account: int) -> int | None:
        """What sendTx answers report: the account's quota, null when the tier has none."""
        if not self._quota_on:
            return None
        acct = self.accounts.get(account)
        return None if acct is None else acct.quota

    def _check_signatures(
        self, parsed: list[tuple[int, dict[str, Any], Any]], hashes: list[bytes], key: ApiKey
    ) -> None:
        """Every tx's L2 signature over its hash, under the key registered for its (account,
        key index) — a ChangePubKey's under the key it carries. VenueError(21120) otherwise."""
        verify = self.config.verify_signatures
        for (t, f, _), h in zip(parsed, hashes, strict=True):
            if not verify:
                sig = f.get("Sig")
                if not isinstance(sig, str) or not sig:
                    raise VenueError(E.INVALID_SIGNATURE, "Sig missing")
                continue
            sig_bytes = signature_bytes(f)
            if t == TX_CHANGE_PUB_KEY:
                ok = _signer.verify_hashed(change_pub_key_bytes(f), h, sig_bytes)
            else:
                if key.verifier is None:
                    raise VenueError(
                        E.INVALID_SIGNATURE, f"no public key registered for api key {key.index}"
                    )
                ok = key.verifier.verify(h, sig_bytes)
            if not ok:
                raise VenueError(E.INVALID_SIGNATURE)

    def _delay_ms(
        self, t: int, f: dict[str, Any], market: int | None, maker_only: bool = False
    ) -> int:
        """Speed bump of one tx: maker and cancel waits, or a taker wait when a create would
        trade on arrival (judged against the book at acceptance). A maker-only key's txs take
        the 0 ms lane on premium (the venue's api-keys page), whatever the lanes are set to."""
        if maker_only and self.config.tier == "premium":
            return 0
        maker, cancel, (lo, hi) = self._delays
        if t != TX_CREATE_ORDER:
            return cancel
        m = self.markets[f["MarketIndex"]]
        crosses = m.side(not f["IsAsk"]).crosses(f["Price"])
        if crosses and f["TimeInForce"] != TIF_POST_ONLY:
            return lo if lo == hi else self._bump_rng.randint(lo, hi)
        return maker

    def _check_maker_only(self, t: int, f: dict[str, Any], acct: Account) -> None:
        """A maker-only key sends post-only creates, modifies of post-only orders and cancels
        (one order or all), nothing else: 21511 otherwise, at the API (nonce kept)."""
        if t in (TX_CANCEL_ORDER, TX_CANCEL_ALL):
            return
        if t == TX_CREATE_ORDER:
            if f["TimeInForce"] == TIF_POST_ONLY:
                return
            raise VenueError(
                E.INVALID_TX_TYPE_FOR_ACCOUNT, "maker-only API key: creates must be post-only"
            )
        if t == TX_MODIFY_ORDER:
            m = self.markets.get(f["MarketIndex"])
            o = self._resolve(acct, f["MarketIndex"], f["Index"]) if m is not None else None
            # An order still in the speed bump is not known yet: the create's own check
            # (post-only when it came from a maker-only key) stands for it.
            if o is None or o.tif == TIF_POST_ONLY:
                return
            raise VenueError(
                E.INVALID_TX_TYPE_FOR_ACCOUNT,
                "maker-only API key: only post-only orders may be modified",
            )
        raise VenueError(
            E.INVALID_TX_TYPE_FOR_ACCOUNT, f"maker-only API key: tx type {t} is not allowed"
        )

    def _market(self, market_id: int) -> MarketState:
        m = self.markets.get(market_id)
        if m is None:
            raise VenueError(E.INVALID_MARKET_INDEX, str(market_id))
        return m

    def _check_expired_at(self, f: dict[str, Any]) -> None:
        if f["ExpiredAt"] <= self.clock.wall_ms():
            raise VenueError(E.INVALID_TX_INFO, "ExpiredAt has passed")

    def _check_inflight(self, market: int, inflight: dict[int, int]) -> None:
        n = inflight.get(market, 0)
        if n >= self.config.max_inflight_per_market:
            raise VenueError(E.MAX_PENDING_ORDERS_PER_MARKET)
        inflight[market] = n + 1

    def _validate(
        self,
        t: int,
        f: dict[str, Any],
        acct: Account,
        batch_cois: set[int],
        inflight: dict[int, int],
    ) -> int | None:
        """API-level checks of one tx (after the nonce); returns the market it acts on."""
        self._check_expired_at(f)
        if t == TX_CREATE_ORDER:
            return self._validate_create(f, acct, batch_cois, inflight)
        if t == TX_CHANGE_PUB_KEY:
            return None  # its L2 signature was checked with the signatures
        if t == TX_UPDATE_LEVERAGE:
            m = self._market(f["MarketIndex"])
            imf = f["InitialMarginFraction"]
            if not m.spec.min_initial_margin_fraction <= imf <= 10_000:
                raise VenueError(
                    E.INVALID_TX_INFO,
                    f"InitialMarginFraction {imf} out of range "
                    f"[{m.spec.min_initial_margin_fraction}, 10000]",
                )
            if f["MarginMode"] not in (MARGIN_CROSS, MARGIN_ISOLATED):
                raise VenueError(E.INVALID_TX_INFO, f"MarginMode {f['MarginMode']}")
            return None  # not an order tx: no in-flight slot
        if t in (TX_CANCEL_ORDER, TX_MODIFY_ORDER):
            m = self._market(f["MarketIndex"])
            idx = f["Index"]
            if not 1 <= idx < 2**60:
                raise VenueError(E.INVALID_ORDER_INDEX, str(idx))
            if self._resolve(acct, m.spec.market_id, idx) is None and not (
                idx <= MAX_COI and self.pending_cois.get((acct.index, idx))
            ):
                raise VenueError(E.INACTIVE_ORDER, str(idx))
            if t == TX_MODIFY_ORDER:
                self._check_price_size(m.spec, f["Price"], f["BaseAmount"], reduce_only=False)
                if f["TriggerPrice"] != 0:
                    raise VenueError(E.INVALID_TRIGGER_PRICE)
            self._check_inflight(m.spec.market_id, inflight)
            return m.spec.market_id
        # cancel-all
        tif, when = f["TimeInForce"], f["Time"]
        attrs = f.get("L2TxAttributes") or {}
        market: int = attrs.get("5", NIL_MARKET)
        if market != NIL_MARKET:
            self._market(market)
        now = self.clock.wall_ms()
        if tif == CANCEL_ALL_IMMEDIATE:
            if when != 0:
                raise VenueError(E.INVALID_CANCEL_ALL_TIME)
        elif tif == CANCEL_ALL_SCHEDULED:
            if market != NIL_MARKET:
                raise VenueError(
                    E.INVALID_CANCEL_ALL_TIF, "a market-scoped cancel-all is immediate only"
                )
            if (
                not now + self.config.min_cancel_all_ms
                <= when
                <= now + self.config.max_cancel_all_ms
            ):
                raise VenueError(E.INVALID_CANCEL_ALL_TIME)
        elif tif == CANCEL_ALL_ABORT:
            if when != 0 or market != NIL_MARKET:
                raise VenueError(E.INVALID_CANCEL_ALL_TIME)
        else:
            raise VenueError(E.INVALID_CANCEL_ALL_TIF)
        if market != NIL_MARKET:
            self._check_inflight(market, inflight)
            return market
        return None

    def _check_price_size(self, spec: MarketSpec, price: int, base: int, reduce_only: bool) -> None:
        if not 1 <= price <= MAX_PRICE:
            raise VenueError(E.INVALID_PRICE, str(price))
        if not 1 <= base <= MAX_BASE:
            raise VenueError(E.INVALID_BASE_AMOUNT, str(base))
        if base < spec.min_base_amount:
            raise VenueError(E.INVALID_ORDER_AMOUNT, "below min_base_amount")
        quote = price * base * spec.quote_scale
        if quote < spec.min_quote_amount:
            raise VenueError(E.INVALID_ORDER_AMOUNT, "below min_quote_amount")
        if quote > spec.order_quote_limit:
            raise VenueError(E.INVALID_ORDER_AMOUNT, "above order_quote_limit")

    def _validate_create(
        self, f: dict[str, Any], acct: Account, batch_cois: set[int], inflight: dict[int, int]
    ) -> int:
        m = self._market(f["MarketIndex"])
        spec = m.spec
        if f["IsAsk"] not in (0, 1):
            raise VenueError(E.INVALID_IS_ASK)
        otype, tif = f["Type"], f["TimeInForce"]
        if otype not in (ORDER_LIMIT, ORDER_MARKET):
            if 2 <= otype <= 8:
                raise VenueError(E.UNSUPPORTED_ORDER_TYPE, f"type {otype} is not simulated")
            raise VenueError(E.INVALID_ORDER_TYPE)
        if tif not in (TIF_IOC, TIF_GTT, TIF_POST_ONLY):
            raise VenueError(E.INVALID_TIME_IN_FORCE)
        if f["ReduceOnly"] not in (0, 1):
            raise VenueError(E.INVALID_TX_INFO, "ReduceOnly must be 0 or 1")
        if f["TriggerPrice"] != 0:
            raise VenueError(E.INVALID_TRIGGER_PRICE)
        expiry = f["OrderExpiry"]
        if otype == ORDER_MARKET and tif != TIF_IOC:
            raise VenueError(E.INVALID_TIME_IN_FORCE, "market orders are IOC")
        if tif == TIF_IOC:
            if expiry != 0:
                raise VenueError(E.INVALID_ORDER_EXPIRY, "IOC takes expiry 0")
        else:
            now = self.clock.wall_ms()
            if (
                not now + self.config.min_order_expiry_ms
                <= expiry
                <= now + self.config.max_order_expiry_ms
            ):
                raise VenueError(E.INVALID_ORDER_EXPIRY, "outside 5 min..30 days")
        coi = f["ClientOrderIndex"]
        if not 1 <= coi <= MAX_COI:
            raise VenueError(E.INVALID_CLIENT_ORDER_INDEX, str(coi))
        if coi in acct.by_coi or coi in batch_cois or self.pending_cois.get((acct.index, coi)):
            raise VenueError(E.CLIENT_ORDER_INDEX_EXISTS, str(coi))
        self._check_price_size(spec, f["Price"], f["BaseAmount"], bool(f["ReduceOnly"]))
        stp = (f.get("L2TxAttributes") or {}).get("6", STP_EXPIRE_MAKER)
        if stp not in (STP_EXPIRE_MAKER, STP_EXPIRE_TAKER, STP_EXPIRE_BOTH, STP_REDUCE):
            raise VenueError(E.INVALID_TX_INFO, "self-trade behaviour")
        self._check_inflight(spec.market_id, inflight)
        is_ask = bool(f["IsAsk"])
        crosses = m.side(not is_ask).crosses(f["Price"])
        resting = tif != TIF_IOC and not crosses
        if resting:
            if acct.live_count.get(spec.market_id, 0) >= self.config.max_resting_per_market:
                raise VenueError(E.MAX_ORDERS_PER_MARKET)
            # A maker order short of margin is refused at the API (nonce kept); a taker order
            # passes here and is canceled by the sequencer (nonce consumed), as on the venue.
            if not f["ReduceOnly"] and not self._margin_ok(
                acct, spec.market_id, is_ask, f["BaseAmount"], f["Price"]
            ):
                raise VenueError(E.NOT_ENOUGH_ORDER_MARGIN)
        batch_cois.add(coi)
        return spec.market_id

    def _resolve(self, acct: Account, market: int, index: int) -> Order | None:
        """Cancel/modify Index: < 2^48 is a client_order_index, otherwise an order_index."""
        o = acct.by_coi.get(index) if index <= MAX_COI else acct.live.get(index)
        if o is None or o.market != market:
            return None
        return o

    # ------------------------------------------------------------------ margin
    def equity(self, acct: Account) -> int:
        """Collateral plus unrealized PnL at mark (micro-USDC)."""
        return acct.collateral + sum(
            self.unrealized_pnl(acct, mid) for mid, p in acct.positions.items() if p.size
        )

    def unrealized_pnl(self, acct: Account, market: int) -> int:
        p = acct.positions.get(market)
        if p is None or p.size == 0:
            return 0
        m = self.markets[market]
        value = abs(p.size) * m.mark_price * m.spec.quote_scale
        return value - p.entry_quote if p.size > 0 else p.entry_quote - value

    def initial_margin(self, acct: Account, extra: tuple[int, bool, int, int] | None = None) -> int:
        """Initial margin of positions and open orders, worst side per market (micro-USDC).

        `extra` = (market, is_ask, lots, price) adds a hypothetical order.
        """
        bids: dict[int, int] = {}
        asks: dict[int, int] = {}
        for (mk, is_ask), lots in acct.open_lots.items():
            if lots:
                (asks if is_ask else bids)[mk] = lots
        if extra is not None:
            mk, is_ask, lots, _ = extra
            book = asks if is_ask else bids
            book[mk] = book.get(mk, 0) + lots
        total = 0
        for mid in set(bids) | set(asks) | {k for k, p in acct.positions.items() if p.size}:
            m = self.markets[mid]
            pos = acct.positions[mid].size if mid in acct.positions else 0
            worst = max(abs(pos + bids.get(mid, 0)), abs(pos - asks.get(mid, 0)))
            notional = worst * m.mark_price * m.spec.quote_scale
            total += notional * self.margin_fraction(acct, mid) // 10_000
        return total

    def margin_fraction(self, acct: Account, market: int) -> int:
        """Initial margin fraction (1e-4) of the account in a market: its UpdateLeverage
        setting, else the market's default. Isolated mode is recorded, not simulated: margin is
        always computed cross."""
        lev = acct.leverage.get(market)
        if lev is not None:
            return lev[0]
        return self.markets[market].spec.default_initial_margin_fraction

    def available_balance(self, acct: Account) -> int:
        return self.equity(acct) - self.initial_margin(acct)

    def _margin_ok(self, acct: Account, market: int, is_ask: bool, lots: int, price: int) -> bool:
        before = self.initial_margin(acct)
        after = self.initial_margin(acct, (market, is_ask, lots, price))
        # An order that does not add exposure is always allowed.
        return after <= before or after <= self.equity(acct)

    # ------------------------------------------------------------------ sequencer
    def poll(self) -> None:
        """Run whatever is due: pending txs, order expiries, scheduled cancel-alls."""
        now_ns = self.clock.monotonic_ns()
        while self.pending and self.pending[0][0] <= now_ns:
            _, _, rec = heapq.heappop(self.pending)
            self._execute(rec)
        now_ms = self.clock.wall_ms()
        while self.expiries and self.expiries[0][0] <= now_ms:
            _, oid = heapq.heappop(self.expiries)
            o = self.orders.get(oid)
            if o is not None and o.live and o.expiry_ms <= now_ms:
                self._finish(o, ST_EXPIRED)
        for acct in self.accounts.values():
            if acct.cancel_all_time and acct.cancel_all_time <= now_ms:
                acct.cancel_all_time = 0
                for o in list(acct.live.values()):
                    self._finish(o, ST_CANCELED)
                self._account_changed(acct.index, None)
        self._flush_books()

    def next_due_ns(self) -> int | None:
        """Monotonic ns of the next pending tx, if any (for the server's timer)."""
        return self.pending[0][0] if self.pending else None

    def _execute(self, rec: TxRecord) -> None:
        f = rec.fields
        if rec.market is not None:
            self.inflight[rec.market] -= 1
        if rec.type == TX_CREATE_ORDER:
            k = (rec.account, f["ClientOrderIndex"])
            self.pending_cois[k] -= 1
            if not self.pending_cois[k]:
                del self.pending_cois[k]
        self.block_height += 1
        self._current_tx = rec
        rec.block_height = self.block_height
        rec.executed_at_ms = self.clock.wall_ms()
        try:
            if rec.expired_at <= rec.executed_at_ms:
                raise VenueError(E.INVALID_TX_INFO, "tx not executed before ExpiredAt")
            if rec.forced_error is not None:
                raise rec.forced_error
            acct = self.account(rec.account)
            if rec.type == TX_CREATE_ORDER:
                self._exec_create(rec, acct)
            elif rec.type == TX_CANCEL_ORDER:
                self._exec_cancel(rec, acct)
            elif rec.type == TX_MODIFY_ORDER:
                self._exec_modify(rec, acct)
            elif rec.type == TX_UPDATE_LEVERAGE:
                acct.leverage[f["MarketIndex"]] = (f["InitialMarginFraction"], f["MarginMode"])
            elif rec.type == TX_CHANGE_PUB_KEY:
                # The new key signs from here on (its nonce went on at acceptance).
                try:
                    self.register_api_key(acct.index, rec.api_key, change_pub_key_bytes(f))
                except ValueError as exc:  # not a point (reachable without verification)
                    raise VenueError(E.INVALID_TX_INFO, str(exc)) from exc
            else:
                self._exec_cancel_all(rec, acct)
            rec.status = TX_EXECUTED
        except VenueError as exc:
            rec.status = TX_FAILED
            rec.error = exc
        self._current_tx = None
        self._tx_done(rec)
        self.events.append(Event("tx", rec.market, rec.account, rec))
        self._flush_books()

    def _tx_done(self, rec: TxRecord) -> None:
        """Keep the last `txs_kept` executed/failed txs for lookups (pending ones stay)."""
        done = self._done_txs
        done.append(rec.hash)
        keep = self.config.txs_kept
        while len(done) > keep:
            h = done.popleft()
            old = self.txs.get(h)
            if old is not None and old.status != TX_PENDING:
                del self.txs[h]

    def _exec_create(self, rec: TxRecord, acct: Account) -> None:
        f = rec.fields
        m = self.markets[f["MarketIndex"]]
        spec = m.spec
        is_ask = bool(f["IsAsk"])
        price = f["Price"]
        coi = f["ClientOrderIndex"]
        if coi in acct.by_coi:
            raise VenueError(E.CLIENT_ORDER_INDEX_EXISTS, str(coi))
        otype, tif = f["Type"], f["TimeInForce"]
        if otype == ORDER_LIMIT:
            band_err = self._band_error(m, is_ask, price)
            if band_err:
                raise VenueError(band_err)
        now_ms = self.clock.wall_ms()
        o = Order(
            order_index=self._next_order_index,
            client_order_index=coi,
            account=acct.index,
            market=spec.market_id,
            is_ask=is_ask,
            price=price,
            initial=f["BaseAmount"],
            remaining=f["BaseAmount"],
            type=otype,
            tif=tif,
            reduce_only=bool(f["ReduceOnly"]),
            expiry_ms=f["OrderExpiry"],
            nonce=rec.nonce,
            api_key=rec.api_key,
            stp=(f.get("L2TxAttributes") or {}).get("6", STP_EXPIRE_MAKER),
            created_ms=now_ms,
            transaction_time_us=self._now_us(),
            seq=self._tick(),
            updated_ms=now_ms,
            block_height=rec.block_height,
        )
        self._next_order_index += 1
        rec.order_index = o.order_index
        self.orders[o.order_index] = o
        acct.total_order_count += 1
        acct.last_by_coi[coi] = o
        self._place(o, acct, m)

    def _band_error(self, m: MarketState, is_ask: bool, price: int) -> int:
        """21733 for aggressive prices beyond the fat-finger band, 21734 for passive ones
        beyond the price band, both measured from the mark price; 0 if inside."""
        mark = m.mark_price
        off_bps = (price - mark) * 10_000 / mark
        aggressive = -off_bps if is_ask else off_bps  # > 0 when priced through the mark
        if aggressive > m.spec.fat_finger_bps:
            return E.FAT_FINGER_PRICE
        if -aggressive > m.spec.price_band_bps:
            return E.PRICE_TOO_FAR_FROM_MARK
        return 0

    def _place(self, o: Order, acct: Account, m: MarketState) -> None:
        """Post-only/reduce-only/margin rules, then match, then rest or finish the remainder."""
        opp = m.side(not o.is_ask)
        crosses = opp.crosses(o.price)
        if o.tif == TIF_POST_ONLY and crosses:
            self._finish(o, ST_POST_ONLY, was_live=False)
            return
        if o.reduce_only and self._reducible(acct, o) == 0:
            self._finish(o, ST_REDUCE_ONLY, was_live=False)
            return
        if (
            crosses
            and not o.reduce_only
            and not self._margin_ok(acct, o.market, o.is_ask, o.remaining, o.price)
        ):
            self._finish(o, ST_MARGIN, was_live=False)
            return
        end_status = self._match(o, acct, m)
        if end_status is not None:
            self._finish(o, end_status, was_live=False)
            return
        if o.remaining == 0:
            self._finish(o, ST_FILLED, was_live=False)
            return
        if o.tif == TIF_IOC:
            if o.type == ORDER_MARKET:
                status = ST_NO_LIQUIDITY if opp.best() is None else ST_SLIPPAGE
            else:
                status = ST_CANCELED
            self._finish(o, status, was_live=False)
            return
        o.status = ST_OPEN
        acct.live[o.order_index] = o
        acct.by_coi[o.client_order_index] = o
        self._track(acct, o, o.remaining, 1)
        m.side(o.is_ask).add(o)
        m.dirty.add((o.is_ask, o.price))
        heapq.heappush(self.expiries, (o.expiry_ms, o.order_index))
        if len(self.expiries) > self._expiries_limit:
            self._compact_expiries()
        self._order_changed(o)
        if self.on_rest is not None:
            self.on_rest(o)

    def _compact_expiries(self) -> None:
        """Rebuild the expiry heap from the resting orders (drops the entries of orders that
        are gone; those would only be skipped when their expiry came)."""
        heap = [
            (o.expiry_ms, o.order_index) for a in self.accounts.values() for o in a.live.values()
        ]
        heapq.heapify(heap)
        self.expiries = heap
        self._expiries_limit = max(_MIN_EXPIRIES_COMPACT, 2 * len(heap))

    @staticmethod
    def _track(acct: Account, o: Order, lots: int, count: int) -> None:
        """Keep the account's resting-order counters in step (lots/count are signed deltas)."""
        if count:
            acct.live_count[o.market] = acct.live_count.get(o.market, 0) + count
        if lots and not o.reduce_only:
            k = (o.market, o.is_ask)
            acct.open_lots[k] = acct.open_lots.get(k, 0) + lots

    def _reducible(self, acct: Account, o: Order) -> int:
        """Lots a reduce-only order may still trade without increasing the position."""
        p = acct.positions.get(o.market)
        size = p.size if p else 0
        if o.is_ask:
            return max(size, 0)
        return max(-size, 0)

    def _match(self, taker: Order, tacct: Account, m: MarketState) -> str | None:
        """Match `taker` against the book. Returns a terminal status that ends the taker
        early (self-trade expire-taker, reduce-only exhausted), else None."""
        opp = m.side(not taker.is_ask)
        now_ms = self.clock.wall_ms()
        while taker.remaining > 0:
            best = opp.best()
            if best is None or (best > taker.price if not taker.is_ask else best < taker.price):
                return None
            maker = opp.levels[best][0]
            if maker.expiry_ms and maker.expiry_ms <= now_ms:
                self._finish(maker, ST_EXPIRED)
                continue
            macct = self.accounts[maker.account]
            if maker.account == taker.account:
                mode = taker.stp
                if mode == STP_EXPIRE_MAKER:
                    self._finish(maker, ST_SELF_TRADE)
                    continue
                if mode == STP_EXPIRE_TAKER:
                    return ST_SELF_TRADE
                if mode == STP_EXPIRE_BOTH:
                    self._finish(maker, ST_SELF_TRADE)
                    return ST_SELF_TRADE
                qty = min(maker.remaining, taker.remaining)  # STP_REDUCE: shrink both
                self._shrink(maker, qty, m)
                taker.remaining -= qty
                continue
            qty = min(maker.remaining, taker.remaining)
            if taker.reduce_only:
                cap = self._reducible(tacct, taker)
                if cap == 0:
                    return ST_REDUCE_ONLY if taker.filled_base == 0 else ST_CANCELED
                qty = min(qty, cap)
            if maker.reduce_only:
                cap = self._reducible(macct, maker)
                if cap == 0:
                    self._finish(maker, ST_REDUCE_ONLY)
                    continue
                qty = min(qty, cap)
            self._trade(m, maker, macct, taker, tacct, qty)
        return None

    def _shrink(self, o: Order, lots: int, m: MarketState) -> None:
        """Take `lots` off a resting order without a trade (self-trade 'reduce')."""
        if lots >= o.remaining:
            self._finish(o, ST_SELF_TRADE)
            return
        m.side(o.is_ask).reduce(o, lots)
        self._track(self.accounts[o.account], o, -lots, 0)
        o.remaining -= lots
        m.dirty.add((o.is_ask, o.price))
        o.updated_ms = self.clock.wall_ms()
        self._order_changed(o)

    def _trade(
        self,
        m: MarketState,
        maker: Order,
        macct: Account,
        taker: Order,
        tacct: Account,
        qty: int,
        on_book: bool = True,
        kind: str = "trade",
    ) -> None:
        """Book one trade. `on_book=False` settles a maker that does not rest on the book
        (out-of-band fills, liquidations)."""
        spec = m.spec
        price = maker.price
        quote = price * qty * spec.quote_scale
        maker_fee = div_round(quote * spec.maker_fee, 1_000_000)
        taker_fee = div_round(quote * spec.taker_fee, 1_000_000)
        tpos_before = tacct.positions.get(spec.market_id, Position())
        mpos_before = macct.positions.get(spec.market_id, Position())
        t_before = (tpos_before.size, tpos_before.entry_quote)
        m_before = (mpos_before.size, mpos_before.entry_quote)
        t_pnl = self._fill(tacct, spec.market_id, not taker.is_ask, qty, quote, taker_fee)
        m_pnl = self._fill(macct, spec.market_id, not maker.is_ask, qty, quote, maker_fee)
        if self._quota_on:
            self._earn_quota(tacct, quote)
            self._earn_quota(macct, quote)
        for o in (maker, taker):
            o.remaining -= qty
            o.filled_base += qty
            o.filled_quote += quote
        if on_book:
            side = m.side(maker.is_ask)
            side.reduce(maker, qty)
            self._track(macct, maker, -qty, 0)
            m.dirty.add((maker.is_ask, price))
        now_ms = self.clock.wall_ms()
        maker.updated_ms = taker.updated_ms = now_ms
        if maker.remaining == 0:
            self._finish(maker, ST_FILLED, was_live=on_book)
        else:
            self._order_changed(maker)
        m.last_trade_price = price
        m.trade_count += 1
        m.base_volume += qty
        m.quote_volume += quote
        m.open_interest = sum(
            a.positions[spec.market_id].size
            for a in self.accounts.values()
            if spec.market_id in a.positions and a.positions[spec.market_id].size > 0
        )
        ask, bid = (maker, taker) if maker.is_ask else (taker, maker)
        trade = {
            "trade_id": self._next_trade_id,
            "market_id": spec.market_id,
            "size": qty,
            "price": price,
            "usd_amount": quote,
            "ask": ask,
            "bid": bid,
            "ask_id": ask.order_index,
            "bid_id": bid.order_index,
            "ask_client_id": ask.client_order_index,
            "bid_client_id": bid.client_order_index,
            "ask_account_id": ask.account,
            "bid_account_id": bid.account,
            "is_maker_ask": maker.is_ask,
            "block_height": self.block_height,
            "timestamp": now_ms,
            "transaction_time": self._now_us(),
            "taker_fee": spec.taker_fee,
            "maker_fee": spec.maker_fee,
            "taker_fee_paid": taker_fee,
            "maker_fee_paid": maker_fee,
            "taker_before": t_before,
            "maker_before": m_before,
            "taker_pnl": t_pnl,
            "maker_pnl": m_pnl,
            "taker_account": tacct.index,
            "maker_account": macct.index,
            "tx_hash": self._current_tx.hash if self._current_tx else "",
            "kind": kind,
        }
        self._next_trade_id += 1
        if self.on_trade is not None:
            self.on_trade(trade)
        m.trades.append(trade)
        while len(m.trades) > self.config.recent_trades_kept:
            m.trades.popleft()
        self.events.append(Event("trade", spec.market_id, None, trade))
        self.events.append(Event("market", spec.market_id, None, None))
        self._account_changed(tacct.index, spec.market_id)
        self._account_changed(macct.index, spec.market_id)

    def _fill(
        self, acct: Account, market: int, is_buy: bool, qty: int, quote: int, fee: int
    ) -> int:
        """Apply one fill to a position; returns the realized PnL (micro-USDC, before fees)."""
        p = acct.positions.setdefault(market, Position())
        signed = qty if is_buy else -qty
        realized = 0
        if p.size == 0 or (p.size > 0) == is_buy:
            p.size += signed
            p.entry_quote += quote
        else:
            closing = min(qty, abs(p.size))
            basis = p.entry_quote * closing // abs(p.size)
            close_quote = quote * closing // qty
            realized = close_quote - basis if p.size > 0 else basis - close_quote
            p.entry_quote -= basis
            p.size += closing if is_buy else -closing
            opening = qty - closing
            if opening:
                p.size += opening if is_buy else -opening
                p.entry_quote = quote - close_quote
            if p.size == 0:
                p.entry_quote = 0
        p.realized_pnl += realized
        p.fees_paid += fee
        acct.collateral += realized - fee
        return realized

    def _finish(self, o: Order, status: str, was_live: bool = True) -> None:
        """Take an order off the book (if it rests) and give it a terminal status."""
        acct = self.accounts[o.account]
        if was_live and o.order_index in acct.live:
            m = self.markets[o.market]
            m.side(o.is_ask).remove(o)
            m.dirty.add((o.is_ask, o.price))
            del acct.live[o.order_index]
            self._track(acct, o, -o.remaining, -1)
            if acct.by_coi.get(o.client_order_index) is o:
                del acct.by_coi[o.client_order_index]
        o.status = status
        o.updated_ms = self.clock.wall_ms()
        acct.inactive.append(o)
        keep = self.config.inactive_orders_kept
        while len(acct.inactive) > keep:
            self._forget(acct, acct.inactive.popleft())
        self._order_changed(o)

    def _forget(self, acct: Account, o: Order) -> None:
        """A finished order left its account's inactive window: drop it from the lookups."""
        if o.live:
            return
        if self.orders.get(o.order_index) is o:
            del self.orders[o.order_index]
        if acct.last_by_coi.get(o.client_order_index) is o:
            del acct.last_by_coi[o.client_order_index]

    def _exec_cancel(self, rec: TxRecord, acct: Account) -> None:
        f = rec.fields
        o = self._resolve(acct, f["MarketIndex"], f["Index"])
        if o is None:
            raise VenueError(E.INACTIVE_ORDER, str(f["Index"]))
        rec.order_index = o.order_index
        self._finish(o, ST_CANCELED)

    def _exec_modify(self, rec: TxRecord, acct: Account) -> None:
        f = rec.fields
        o = self._resolve(acct, f["MarketIndex"], f["Index"])
        if o is None:
            raise VenueError(E.INACTIVE_ORDER, str(f["Index"]))
        rec.order_index = o.order_index
        m = self.markets[o.market]
        new_price, new_size = f["Price"], f["BaseAmount"]
        if o.type == ORDER_LIMIT:
            band_err = self._band_error(m, o.is_ask, new_price)
            if band_err:
                raise VenueError(band_err)
        keep = (
            self.config.modify_keeps_priority and new_price == o.price and new_size <= o.remaining
        )
        side = m.side(o.is_ask)
        if keep:
            side.reduce(o, o.remaining - new_size)
            self._track(acct, o, new_size - o.remaining, 0)
            o.initial += new_size - o.remaining
            o.remaining = new_size
            m.dirty.add((o.is_ask, o.price))
            o.updated_ms = self.clock.wall_ms()
            self._order_changed(o)
            return
        # Loses queue priority: off the book, then placed again like a new order.
        side.remove(o)
        m.dirty.add((o.is_ask, o.price))
        del acct.live[o.order_index]
        self._track(acct, o, -o.remaining, -1)
        del acct.by_coi[o.client_order_index]
        o.initial += new_size - o.remaining
        o.remaining = new_size
        o.price = new_price
        o.seq = self._tick()
        o.nonce = rec.nonce
        o.updated_ms = self.clock.wall_ms()
        o.block_height = rec.block_height
        self._place(o, acct, m)

    def _exec_cancel_all(self, rec: TxRecord, acct: Account) -> None:
        f = rec.fields
        tif = f["TimeInForce"]
        if tif == CANCEL_ALL_SCHEDULED:
            acct.cancel_all_time = f["Time"]
        elif tif == CANCEL_ALL_ABORT:
            acct.cancel_all_time = 0
        else:
            market = rec.market
            for o in list(acct.live.values()):
                if market is None or o.market == market:
                    self._finish(o, ST_CANCELED)
        self._account_changed(acct.index, rec.market)

    # ------------------------------------------------------------------ events
    def _order_changed(self, o: Order) -> None:
        self.events.append(Event("order", o.market, o.account, o))
        self._account_changed(o.account, o.market)

    def _account_changed(self, account: int, market: int | None) -> None:
        self.events.append(Event("account", market, account, None))

    def _flush_books(self) -> None:
        for m in self.markets.values():
            if not m.dirty:
                continue
            asks: list[tuple[int, int]] = []
            bids: list[tuple[int, int]] = []
            for is_ask, price in sorted(m.dirty):
                size = m.side(is_ask).sizes.get(price, 0)
                (asks if is_ask else bids).append((price, size))
            begin = m.book_nonce
            m.book_nonce += len(m.dirty)
            m.offset += 1
            m.dirty.clear()
            if m.history is not None:
                self.record_book(m, bool(asks), bool(bids))
            self.events.append(
                Event("book", m.spec.market_id, None, (asks, bids, begin, m.book_nonce, m.offset))
            )

    def record_book(self, m: MarketState, asks: bool = True, bids: bool = True) -> None:
        """Record the published book at the market's current nonce (book history on);
        `asks`/`bids`: whether that side changed since the previous record."""
        h = m.history
        if h is None:
            return
        ask_rec = bid_rec = None
        if asks:
            prices = tuple(m.asks.prices)
            ask_rec = (prices, tuple(map(m.asks.sizes.__getitem__, prices)))
        phantom = self.phantom_bids.get(m.spec.market_id)
        if bids or phantom is not None:
            sizes = m.bids.sizes
            if phantom is not None:  # shown on top of the real level at its price
                sizes = {**sizes, phantom: m.spec.min_base_amount}
                prices = tuple(sorted(sizes))
            else:
                prices = tuple(m.bids.prices)
            bid_rec = (prices, tuple(map(sizes.__getitem__, prices)))
        h.record(m.book_nonce, ask_rec, bid_rec)

    def book_at(self, market: int, nonce: int) -> tuple[Levels, Levels]:
        """The published book (asks ascending, bids descending) at a recorded book nonce;
        ValueError when history is off or the nonce is not in the window."""
        m = self._market(market)
        h = m.history
        if h is None:
            raise ValueError(
                "book history is off (SimConfig.book_history / mmfast sim --book-history N)"
            )
        book = h.get(nonce)
        if book is not None:
            return book
        lo, hi = h.window() or (m.book_nonce, m.book_nonce)
        if not lo <= nonce <= hi:
            raise ValueError(
                f"nonce {nonce} is outside the book history of market {market} "
                f"(kept: {lo}..{hi}, the last {h.keep} nonces)"
            )
        raise ValueError(
            f"nonce {nonce} is not a book nonce of market {market} (the nonce "
            f"advances by the number of levels a delta changes)"
        )

    def drain_events(self) -> list[Event]:
        """Hand over and forget the events produced so far."""
        ev, self.events = self.events, []
        return ev

    # ------------------------------------------------------------------ control
    def set_mark_price(self, market: int, price: int) -> None:
        """Move a market's mark (and index) price."""
        if price <= 0:
            raise ValueError("price must be > 0")
        self._market(market).mark_price = price
        self.events.append(Event("market", market, None, None))
        for acct in self.accounts.values():
            if market in acct.positions and acct.positions[market].size:
                self._account_changed(acct.index, market)

    # ------------------------------------------------------------------ direct orders
    def _new_order(
        self,
        account: int,
        market: int,
        is_ask: bool,
        price: int,
        size: int,
        otype: int,
        tif: int,
        expiry_ms: int,
    ) -> Order:
        acct = self.account(account)
        now_ms = self.clock.wall_ms()
        o = Order(
            order_index=self._next_order_index,
            client_order_index=0,
            account=acct.index,
            market=market,
            is_ask=is_ask,
            price=price,
            initial=size,
            remaining=size,
            type=otype,
            tif=tif,
            reduce_only=False,
            expiry_ms=expiry_ms,
            nonce=0,
            api_key=0,
            stp=STP_EXPIRE_MAKER,
            created_ms=now_ms,
            transaction_time_us=self._now_us(),
            seq=self._tick(),
            updated_ms=now_ms,
            block_height=self.block_height,
        )
        self._next_order_index += 1
        self.orders[o.order_index] = o
        acct.total_order_count += 1
        return o

    def place_direct(
        self,
        account: int,
        market: int,
        is_ask: bool,
        price: int,
        size: int,
        tif: int = TIF_GTT,
        otype: int = ORDER_LIMIT,
        flush: bool = True,
    ) -> Order:
        """Place an order without a tx (no nonce, no speed bump, no API checks): the market
        flow's participants. It matches with price-time priority like any order; orders of
        other participants ahead in the queue fill first. Returns the order (check `status`).
        ``flush=False`` leaves the book delta for a later ``flush_books`` (one for many)."""
        m = self._market(market)
        if otype == ORDER_MARKET:
            tif = TIF_IOC
        expiry = 0 if tif == TIF_IOC else self.clock.wall_ms() + self.config.max_order_expiry_ms
        o = self._new_order(account, market, is_ask, price, size, otype, tif, expiry)
        self._place(o, self.accounts[account], m)
        if flush:
            self._flush_books()
        return o

    def cancel_direct(self, order: Order, flush: bool = True) -> bool:
        """Cancel a live order without a tx; False if it is no longer live."""
        if not order.live or order.order_index not in self.accounts[order.account].live:
            return False
        self._finish(order, ST_CANCELED)
        if flush:
            self._flush_books()
        return True

    def resize_direct(self, order: Order, size: int) -> bool:
        """Set a resting order's remaining size in place, without a tx and keeping its queue
        priority (a tape's level changing size); False if it is no longer live. The book
        delta waits for ``flush_books``."""
        if size <= 0:
            raise ValueError("size must be > 0 (cancel_direct removes an order)")
        acct = self.accounts[order.account]
        if not order.live or order.order_index not in acct.live:
            return False
        d = size - order.remaining
        if d:
            m = self.markets[order.market]
            m.side(order.is_ask).sizes[order.price] += d
            self._track(acct, order, d, 0)
            order.initial += d
            order.remaining = size
            m.dirty.add((order.is_ask, order.price))
        return True

    def fill_resting(self, order: Order, size: int, counterparty: int) -> dict[str, Any] | None:
        """Fill up to ``size`` lots of a resting order at its price against ``counterparty``,
        whose order never touches the book (a tape's trade reaching it). A reduce-only order
        fills only what reduces its position (none: canceled as reduce-only). Returns the
        trade, or None when nothing traded. The book delta waits for ``flush_books``."""
        acct = self.accounts[order.account]
        if not order.live or order.order_index not in acct.live or size <= 0:
            return None
        qty = min(size, order.remaining)
        if order.reduce_only:
            qty = min(qty, self._reducible(acct, order))
            if qty == 0:
                self._finish(order, ST_REDUCE_ONLY)
                return None
        m = self.markets[order.market]
        cacct = self.account(counterparty)
        taker = self._new_order(
            counterparty, order.market, not order.is_ask, order.price, qty, ORDER_LIMIT, TIF_IOC, 0
        )
        self._trade(m, order, acct, taker, cacct, qty)
        self._finish(taker, ST_FILLED, was_live=False)
        return m.trades[-1]

    def flush_books(self) -> None:
        """Publish the book changes made with ``flush=False`` (one delta per market)."""
        self._flush_books()

    def external_trade(
        self,
        account: int,
        counterparty: int,
        market: int,
        is_buy: bool,
        size: int,
        price: int,
        kind: str = "trade",
        flush: bool = True,
    ) -> dict[str, Any]:
        """A fill `account` did not cause through its own orders (out-of-band: another key, the
        web app, a liquidation; a tape's trade between other participants): `account` takes
        `size` lots at `price` against `counterparty`, neither order touching the book.
        Returns the trade record."""
        m = self._market(market)
        if size <= 0 or price <= 0:
            raise ValueError("size and price must be > 0")
        if account == counterparty:
            raise ValueError("a trade needs two accounts")
        acct, cacct = self.account(account), self.account(counterparty)
        maker = self._new_order(counterparty, market, is_buy, price, size, ORDER_LIMIT, TIF_GTT, 0)
        taker = self._new_order(account, market, not is_buy, price, size, ORDER_LIMIT, TIF_IOC, 0)
        self._trade(m, maker, cacct, taker, acct, size, on_book=False, kind=kind)
        self._finish(taker, ST_FILLED, was_live=False)
        if flush:
            self._flush_books()
        return m.trades[-1]

    def liquidate(self, account: int, market: int, counterparty: int) -> dict[str, Any] | None:
        """Liquidate `account` in `market`: cancel its orders there (canceled-liquidation) and
        close its position at the mark price against `counterparty`. Returns the trade, or
        None when there was no position."""
        m = self._market(market)
        acct = self.account(account)
        for o in list(acct.live.values()):
            if o.market == market:
                self._finish(o, ST_LIQUIDATION)
        p = acct.positions.get(market)
        trade = None
        if p is not None and p.size:
            trade = self.external_trade(
                account,
                counterparty,
                market,
                p.size < 0,
                abs(p.size),
                m.mark_price,
                kind="liquidation",
            )
        self._account_changed(account, market)
        self._flush_books()
        return trade

    # ------------------------------------------------------------------ queries
    def levels(self, market: int) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """(asks best first, bids best first) as (price ticks, size lots)."""
        m = self._market(market)
        asks = [(p, m.asks.sizes[p]) for p in m.asks.iter_prices()]
        bids = [(p, m.bids.sizes[p]) for p in m.bids.iter_prices()]
        return asks, bids

    def published_levels(self, market: int) -> tuple[Levels, Levels]:
        """`levels`, as the order_book channel shows them: with the phantom bid of a
        crossed-book fault on top of the bids (replacing a real level at its price)."""
        asks, bids = self.levels(market)
        phantom = self.phantom_bids.get(market)
        if phantom is not None:
            bids = [b for b in bids if b[0] != phantom]
            i = 0
            while i < len(bids) and bids[i][0] > phantom:
                i += 1
            bids.insert(i, (phantom, self.markets[market].spec.min_base_amount))
        return asks, bids

    def book_orders(self, market: int, is_ask: bool) -> list[Order]:
        """Resting orders of one side in matching order."""
        side = self._market(market).side(is_ask)
        return [o for p in side.iter_prices() for o in side.levels[p]]

    def open_orders(self, account: int | None = None, market: int | None = None) -> list[Order]:
        """Live orders, oldest first."""
        accts = [self.account(account)] if account is not None else self.accounts.values()
        out = [o for a in accts for o in a.live.values() if market is None or o.market == market]
        out.sort(key=lambda o: o.order_index)
        return out

    def fills(self, account: int | None = None, market: int | None = None) -> list[dict[str, Any]]:
        """Trades (oldest first) kept in memory, optionally for one account/market."""
        out = []
        for mid, m in self.markets.items():
            if market is not None and mid != market:
                continue
            for t in m.trades:
                if account is None or account in (t["ask_account_id"], t["bid_account_id"]):
                    out.append(t)
        out.sort(key=lambda t: t["trade_id"])
        return out
