"""REST client of the Lighter API (aiohttp): one session for the connector's life.

Every call draws its weight from the one ``RateBudget`` before it goes out. Reads retry on
429 (after the Retry-After the budget enforces) and on 5xx / transport errors (jittered
backoff, capped), up to ``max_retries``. Sends (sendTx, sendTxBatch) are never retried here:
a 429 raises ``RateLimited`` (nothing was accepted), a 5xx, timeout or transport error raises
``OutcomeUnknown`` (the tx may still execute; resolve it by hash or nonce, never call it rejected).
An HTTP 400 is the venue's API-level refusal: ``LighterApiError(code, message)``.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import aiohttp
import orjson

from mmfast.connector.lighter.auth import TokenCache
from mmfast.connector.lighter.budget import Priority, RateBudget, RateTier
from mmfast.connector.lighter.markets import MarketInfo, parse_order_book_details
from mmfast.connector.lighter.skew import SkewMonitor
from mmfast.core.errors import ExchangeError
from mmfast.core.log import get_logger
from mmfast.core.timesource import REAL_TIME, TimeSource

__all__ = [
    "MAX_COI_LOOKUP",
    "LighterApiError",
    "LighterRest",
    "OutcomeUnknown",
    "RateLimited",
    "SendTxResult",
    "StartupError",
    "VenueUnavailable",
    "fetch_markets",
    "retry_until",
]

T = TypeVar("T")

_log = get_logger("connector.rest")

MAX_COI_LOOKUP = 20  # accountOrders takes at most 20 client_order_indexes
RATE_LIMIT_CODES = frozenset({23000, 23001, 23002, 23003, 23004})


def is_volume_quota_refusal(code: object, message: str) -> bool:
    """A send refused for a spent volume quota: 23000 with a message naming the quota (the
    venue's exact wording is unpublished; mmfast.sim says "volume quota exhausted")."""
    return code == 23000 and "volume quota" in message.lower()


class LighterApiError(ExchangeError):
    """The venue refused the request at the API level (HTTP 400 {code, message})."""

    def __init__(self, code: int, message: str, status: int = 400) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status


class RateLimited(LighterApiError):
    """HTTP 429 or a rate-limit code: nothing was accepted; the budget is blocked meanwhile."""

    def __init__(self, code: int, message: str, retry_after_s: float | None) -> None:
        super().__init__(code, message, 429)
        self.retry_after_s = retry_after_s


class VenueUnavailable(ExchangeError):
    """A read failed with 5xx / transport errors after its retries."""


class OutcomeUnknown(ExchangeError):
    """A send ended in a 5xx, timeout or transport error: it may or may not have been accepted."""


class StartupError(ExchangeError):
    """A start-up read the venue kept refusing until its deadline; says what it answered."""


async def retry_until(
    call: Callable[[], Awaitable[T]],
    what: str,
    deadline_s: float,
    *,
    time: TimeSource = REAL_TIME,
    rng: random.Random | None = None,
    first_s: float = 0.25,
    max_s: float = 4.0,
) -> T:
    """``await call()`` until it succeeds, retrying a rate limit (its Retry-After when given),
    a 5xx or a transport error with jittered exponential backoff (``first_s`` doubling up to
    ``max_s``, each x [0.5, 1.5)), for at most ``deadline_s`` (``time``'s seconds). Anything
    else (a venue error code, malformed data) is raised at once. Fails with ``StartupError``
    naming ``what`` and what the venue last answered."""
    rng = rng or random.Random()
    end = time.monotonic_ns() + int(deadline_s * 1e9)
    pause = first_s
    tries = 0
    last = ""
    while True:
        tries += 1
        left = max(0.001, (end - time.monotonic_ns()) / 1e9)
        try:
            # Bounded: the client's own budget waits (a 5xx backs it off) count too.
            return await asyncio.wait_for(call(), left / time.scale)
        except RateLimited as exc:
            last = f"rate-limited ({exc.code} {exc.message or 'Too Many Requests'})"
            wait = exc.retry_after_s if exc.retry_after_s else pause * rng.uniform(0.5, 1.5)
        except (VenueUnavailable, OutcomeUnknown) as exc:
            last = str(exc).removeprefix(f"{what}: ")
            wait = pause * rng.uniform(0.5, 1.5)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            if not (isinstance(exc, TimeoutError) and last and time.monotonic_ns() >= end):
                last = f"{type(exc).__name__} {exc}".strip()  # else: our deadline cut a wait
            wait = pause * rng.uniform(0.5, 1.5)
        left = (end - time.monotonic_ns()) / 1e9
        if left <= 0:
            raise StartupError(
                f"{what}: the venue answered {last} for {deadline_s:.0f} s "
                f"({tries} tries); giving up"
            ) from None
        _log.warning("%s: %s; again in %.2f s", what, last, min(wait, left))
        await time.sleep(min(wait, left))
        pause = min(2 * pause, max_s)


@dataclass(frozen=True, slots=True)
class SendTxResult:
    """A sendTx / sendTxBatch acceptance ("accepted for sequencing", not "executed")."""

    tx_hash: str | tuple[str, ...]
    predicted_execution_time_ms: int | None
    volume_quota_remaining: int | None  # may be null on the venue
    message: str


def _retry_after_s(headers: Mapping[str, str]) -> float | None:
    v = headers.get("Retry-After")
    if not v:
        return None
    try:
        return max(0.0, float(v))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(v).timestamp()
        date = headers.get("Date")
        now = parsedate_to_datetime(date).timestamp() if date else None
    except (TypeError, ValueError, IndexError):
        return None
    return None if now is None else max(0.0, when - now)


class LighterRest:
    """The venue's REST API. ``start()`` opens the one session, ``close()`` closes it."""

    def __init__(
        self,
        api_base: str,
        budget: RateBudget,
        time: TimeSource = REAL_TIME,
        *,
        tokens: TokenCache | None = None,
        skew: SkewMonitor | None = None,
        timeout_s: float = 10.0,
        max_retries: int = 3,
        http_date_skew: bool = False,
    ) -> None:
        self._base = api_base.rstrip("/")
        self._budget = budget
        self._time = time
        self._tokens = tokens
        self._skew = skew
        self._timeout_s = timeout_s
        self._max_retries = max_retries
        # HTTP Date headers as coarse skew samples: off by default (1 s resolution, and a
        # simulator on scaled time stamps them with the real clock).
        self._http_date_skew = http_date_skew
        self._session: aiohttp.ClientSession | None = None
        self.requests = 0  # requests sent (attempts, retries included)
        self.errors = 0  # attempts that failed (non-2xx or transport)
        self.sessions_opened = 0  # ClientSessions created (1 per connector life)

    @property
    def session(self) -> aiohttp.ClientSession | None:
        return self._session

    async def start(self) -> None:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(json_serialize=lambda o: orjson.dumps(o).decode())
            self.sessions_opened += 1

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def closed(self) -> bool:
        return self._session is None or self._session.closed

    # --- transport -----------------------------------------------------------------------------
    async def _request(
        self,
        method: str,
        endpoint: str,
        *,
        params: Mapping[str, Any] | None = None,
        form: Mapping[str, str] | None = None,
        auth: bool = False,
        txs: int = 0,
        priority: Priority = Priority.NORMAL,
        retry: bool = True,
    ) -> dict[str, Any]:
        if self._session is None or self._session.closed:
            raise RuntimeError("LighterRest is not started (or already closed)")
        cost = self._budget.rest_cost(endpoint, txs)
        limit = "sendtx" if txs else "rest"
        attempts = 1 + (self._max_retries if retry else 0)
        url = f"{self._base}/{endpoint}"
        timeout = aiohttp.ClientTimeout(total=self._timeout_s / self._time.scale)
        last_exc: BaseException | None = None
        for attempt in range(attempts):
            await self._budget.acquire(cost, priority)
            headers: dict[str, str] = {}
            if auth:
                if self._tokens is None:
                    raise RuntimeError(f"{endpoint} needs an auth token provider")
                headers["authorization"] = await self._tokens.get()
            q = {k: str(v) for k, v in (params or {}).items() if v is not None}
            self.requests += 1
            sent_ms = self._time.wall_ms()
            try:
                async with self._session.request(
                    method, url, params=q or None, data=form, headers=headers, timeout=timeout
                ) as resp:
                    status = resp.status
                    raw = await resp.read()
                    rheaders = resp.headers
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                self.errors += 1
                last_exc = exc
                delay = self._budget.on_server_error(limit)
                _log.debug(
                    "%s %s: %s (attempt %d, backoff %.2fs)",
                    method,
                    endpoint,
                    type(exc).__name__,
                    attempt + 1,
                    delay,
                )
                if not retry:
                    raise OutcomeUnknown(f"{endpoint}: {type(exc).__name__}") from None
                continue
            if self._skew is not None and self._http_date_skew and "Date" in rheaders:
                self._skew.sample_http_date(rheaders["Date"], sent_ms, self._time.wall_ms())
            body = self._decode(raw)
            if status == 200:
                self._budget.on_success(limit)
                return body
            self.errors += 1
            field = body.get("code")
            code: int = field if isinstance(field, int) else status
            message = str(body.get("message", ""))[:200]
            if txs and is_volume_quota_refusal(code, message):
                # Not a request rate: nothing to wait out, cancels must keep going.
                left = body.get("volume_quota_remaining")
                self._budget.on_volume_quota_refused(left if type(left) is int else None)
                raise RateLimited(int(code), message, None)
            if status == 429 or code in RATE_LIMIT_CODES:
                ra = _retry_after_s(rheaders)
                delay = self._budget.on_rate_limited(limit, ra)
                _log.debug("%s %s: 429, blocked %.2fs", method, endpoint, delay)
                last_exc = RateLimited(int(code), message, ra)
                if not retry:
                    raise last_exc
                continue
            if status >= 500:
                delay = self._budget.on_server_error(limit)
                _log.debug("%s %s: HTTP %d, backoff %.2fs", method, endpoint, status, delay)
                if not retry:
                    raise OutcomeUnknown(f"{endpoint}: HTTP {status}")
                last_exc = VenueUnavailable(f"{endpoint}: HTTP {status}")
                continue
            self._budget.on_success(limit)
            if auth and code == 21120 and self._tokens is not None:
                self._tokens.invalidate()  # refused token: make a new one next time
            raise LighterApiError(int(code), message, status)
        if isinstance(last_exc, LighterApiError):
            raise last_exc
        what = (
            str(last_exc).removeprefix(f"{endpoint}: ")
            if isinstance(last_exc, VenueUnavailable)
            else type(last_exc).__name__
        )
        raise VenueUnavailable(
            f"{endpoint}: {what} ({attempts} attempt{'s' if attempts > 1 else ''})"
        ) from None

    @staticmethod
    def _decode(raw: bytes) -> dict[str, Any]:
        try:
            body = orjson.loads(raw) if raw else {}
        except orjson.JSONDecodeError:
            return {}
        return body if isinstance(body, dict) else {}

    # --- endpoints -----------------------------------------------------------------------------
    async def order_book_details(self, market_id: int | None = None) -> dict[str, Any]:
        return await self._request("GET", "orderBookDetails", params={"market_id": market_id})

    async def next_nonce(
        self, account_index: int, api_key_index: int, priority: Priority = Priority.RESERVED
    ) -> int:
        body = await self._request(
            "GET",
            "nextNonce",
            params={"account_index": account_index, "api_key_index": api_key_index},
            priority=priority,
        )
        nonce = body.get("nonce")
        if type(nonce) is not int:
            raise LighterApiError(-1, "nextNonce: no integer nonce in the response", 200)
        return nonce

    async def account(
        self, value: int | str, by: str = "index", priority: Priority = Priority.NORMAL
    ) -> dict[str, Any]:
        """``account?by=index|l1_address&value=...`` -> the first DetailedAccount."""
        body = await self._request(
            "GET", "account", params={"by": by, "value": value}, priority=priority
        )
        accounts = body.get("accounts")
        if not isinstance(accounts, list) or not accounts or not isinstance(accounts[0], dict):
            raise LighterApiError(-1, "account: no account in the response", 200)
        return accounts[0]

    async def account_active_orders(
        self, account_index: int, market_id: int, priority: Priority = Priority.RESERVED
    ) -> list[dict[str, Any]]:
        body = await self._request(
            "GET",
            "accountActiveOrders",
            auth=True,
            priority=priority,
            params={"account_index": account_index, "market_id": market_id},
        )
        return list(body.get("orders") or [])

    async def account_inactive_orders(
        self,
        account_index: int,
        *,
        limit: int = 100,
        market_id: int | None = None,
        cursor: str | None = None,
        ask_filter: int | None = None,
        priority: Priority = Priority.RESERVED,
    ) -> dict[str, Any]:
        """One page: ``{"orders": [...], "next_cursor": str}``."""
        if not 1 <= limit <= 100:
            raise ValueError("limit must be within 1..100")
        return await self._request(
            "GET",
            "accountInactiveOrders",
            auth=True,
            priority=priority,
            params={
                "account_index": account_index,
                "limit": limit,
                "market_id": market_id,
                "cursor": cursor or None,
                "ask_filter": ask_filter,
            },
        )

    async def account_orders(
        self,
        account_index: int,
        client_order_indexes: Sequence[int],
        priority: Priority = Priority.RESERVED,
    ) -> list[dict[str, Any]]:
        """Orders by client_order_index (1..20 of them per call)."""
        cois = list(client_order_indexes)
        if not 1 <= len(cois) <= MAX_COI_LOOKUP:
            raise ValueError(f"accountOrders takes 1..{MAX_COI_LOOKUP} client_order_indexes")
        body = await self._request(
            "GET",
            "accountOrders",
            auth=True,
            priority=priority,
            params={
                "account_index": account_index,
                "client_order_indexes": ",".join(map(str, cois)),
            },
        )
        return list(body.get("orders") or [])

    async def tx(self, tx_hash: str, priority: Priority = Priority.RESERVED) -> dict[str, Any]:
        """``tx?by=hash`` -> the EnrichedTx (status 0 failed, 1 pending, 2 executed, 3 final)."""
        return await self._request(
            "GET", "tx", params={"by": "hash", "value": tx_hash}, priority=priority
        )

    async def send_tx(
        self,
        tx_type: int,
        tx_info: str,
        *,
        price_protection: bool | None = None,
        priority: Priority = Priority.NORMAL,
    ) -> SendTxResult:
        form = {"tx_type": str(int(tx_type)), "tx_info": tx_info}
        if price_protection is not None:
            form["price_protection"] = "true" if price_protection else "false"
        body = await self._request(
            "POST", "sendTx", form=form, txs=1, priority=priority, retry=False
        )
        return self._send_result(body)

    async def send_tx_batch(
        self,
        tx_types: Sequence[int],
        tx_infos: Sequence[str],
        *,
        priority: Priority = Priority.NORMAL,
    ) -> SendTxResult:
        if len(tx_types) != len(tx_infos) or not tx_types:
            raise ValueError("tx_types and tx_infos must be non-empty and of equal length")
        form = {
            "tx_types": orjson.dumps([int(t) for t in tx_types]).decode(),
            "tx_infos": orjson.dumps(list(tx_infos)).decode(),
        }
        body = await self._request(
            "POST", "sendTxBatch", form=form, txs=len(tx_types), priority=priority, retry=False
        )
        return self._send_result(body)

    def _send_result(self, body: dict[str, Any]) -> SendTxResult:
        quota = body.get("volume_quota_remaining")
        quota = quota if type(quota) is int else None
        self._budget.note_volume_quota(quota)
        h = body.get("tx_hash")
        tx_hash: str | tuple[str, ...] = tuple(h) if isinstance(h, list) else str(h or "")
        pet = body.get("predicted_execution_time_ms")
        return SendTxResult(
            tx_hash=tx_hash,
            predicted_execution_time_ms=pet if type(pet) is int else None,
            volume_quota_remaining=quota,
            message=str(body.get("message", "")),
        )


async def fetch_markets(
    rest_url: str, tier: RateTier, deadline_s: float, *, time: TimeSource = REAL_TIME
) -> dict[int, MarketInfo]:
    """The venue's perp markets from ``orderBookDetails`` at ``rest_url`` (the base URL, without
    /api/v1), on a short-lived client of its own, retried as ``retry_until`` does for at most
    ``deadline_s``: what a command needs to know before it connects."""
    rest = LighterRest(
        rest_url.rstrip("/") + "/api/v1",
        RateBudget(tier, time),
        time,
        timeout_s=10.0,
        max_retries=0,
    )
    await rest.start()
    try:
        body = await retry_until(rest.order_book_details, "orderBookDetails", deadline_s, time=time)
    finally:
        await rest.close()
    return parse_order_book_details(body)
