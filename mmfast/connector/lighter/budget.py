"""One rate budget per venue: every request draws from it (mmfast's throttler).

The venue enforces several limits at once (docs/connector.md): a weighted REST budget per
rolling minute, a sendTx bucket shared by REST and WebSocket sends, and per-IP WebSocket limits
(messages per minute, requests in flight). ``RateBudget`` keeps one allocator per limit; a
request's ``Cost`` names what it draws from each, and is granted all-or-nothing.

* Never above ``max_fraction`` (80%) of any limit, in any rolling window.
* A share of that (``reserve_fraction``) is kept for ``Priority.RESERVED`` work: cancels,
  reconciliation, keepalive. ``Priority.NORMAL`` traffic stops where the reserve begins.
* A 429 (or a venue "too many" error) blocks the limit for Retry-After, or for a jittered
  exponential backoff (capped at ``backoff_max_s``) when no Retry-After came; 5xx replies back
  off the same way. A success resets the backoff.
* sendTx answers (REST and WebSocket) report ``volume_quota_remaining`` (may be null); it is
  kept, shown, and on the tiers that have a quota it drives the order room: below
  ``volume_quota_span`` (900) units the planner's headroom is ``0.1 + 0.9 * quota / span``
  (with the planner's default thresholds: WIDE under 400 units, FEW_LEVELS under 150), no
  plan spends more units than are left, and an empty quota leaves one tx per free interval
  (the venue's free sendTx every 15 s). A refusal for a spent quota sets it to 0 without
  blocking the order path: cancels cost no quota and keep going (docs/connector.md, "Volume
  quota").
* ``state()`` / ``subscribe(listener)`` tell whoever plans orders how much is left, so it can
  degrade (``BudgetLevel.LOW``) before the budget runs out.

Time comes from the injected TimeSource (monotonic ns), so tests run it in simulated time.
"""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from types import MappingProxyType
from typing import TYPE_CHECKING

from mmfast.core.errors import ExchangeError
from mmfast.core.timesource import REAL_TIME, TimeSource

if TYPE_CHECKING:
    from mmfast._core.pipeline import SendRoom

__all__ = [
    "BUILDER",
    "DEFAULT_REST_WEIGHT",
    "PLUS",
    "PREMIUM",
    "RATE_TIERS",
    "REST_WEIGHTS",
    "STANDARD",
    "BudgetExhausted",
    "BudgetLevel",
    "BudgetState",
    "Cost",
    "Priority",
    "QuotaLevel",
    "RateBudget",
    "RateTier",
]

WINDOW_NS = 60_000_000_000  # the venue's limits are per rolling minute

# REST weights of the premium tiers (the venue's published weights); anything else weighs 300.
REST_WEIGHTS: Mapping[str, int] = MappingProxyType(
    {
        "sendTx": 6,
        "sendTxBatch": 6,
        "nextNonce": 6,
        "publicPools": 50,
        "txFromL1TxHash": 50,
        "accountInactiveOrders": 100,
        "deposit/latest": 100,
        "apikeys": 150,
        "transferFeeInfo": 500,
        "trades": 600,
        "recentTrades": 600,
    }
)
DEFAULT_REST_WEIGHT = 300


@dataclass(frozen=True, slots=True)
class RateTier:
    """A venue account tier's limits per rolling minute.

    ``rest_units`` is the weighted REST budget. ``min_rest_weight`` models the standard tier
    (60 requests a minute, but at most 24000/weight of a heavy endpoint): each request costs
    ``max(weight, min_rest_weight)`` units, so 24000 units with a floor of 400 is 60 requests.
    """

    name: str
    rest_units: int
    min_rest_weight: int
    sendtx_per_min: int
    volume_quota: bool = False  # order txs spend the account's volume quota (paid tiers)
    ws_msgs_per_min: int = 200
    ws_inflight: int = 50
    weights: Mapping[str, int] = field(default_factory=lambda: REST_WEIGHTS)

    def rest_weight(self, endpoint: str) -> int:
        return max(self.weights.get(endpoint, DEFAULT_REST_WEIGHT), self.min_rest_weight)


# The venue's account-types and rate-limits pages (checked 2026-12-06). Premium's sendTx bucket
# grows to 40,000 with staked LIT: 4,000 is the unstaked floor. Builder publishes a read budget
# only: its sendTx bucket is taken as Standard's (the least favourable; mmfast.sim does the same).
STANDARD = RateTier("standard", rest_units=24_000, min_rest_weight=400, sendtx_per_min=60)
PREMIUM = RateTier(
    "premium", rest_units=24_000, min_rest_weight=0, sendtx_per_min=4_000, volume_quota=True
)
PLUS = RateTier(
    "plus", rest_units=120_000, min_rest_weight=0, sendtx_per_min=8_000, volume_quota=True
)
BUILDER = RateTier(
    "builder", rest_units=240_000, min_rest_weight=0, sendtx_per_min=60, volume_quota=True
)
RATE_TIERS: Mapping[str, RateTier] = MappingProxyType(
    {t.name: t for t in (STANDARD, PREMIUM, PLUS, BUILDER)}
)

# The venue lets one tx through every 15 s when the quota is empty (volume-quota-program).
FREE_TX_INTERVAL_NS = 15_000_000_000


class Priority(IntEnum):
    NORMAL = 0  # orders, lookups, diagnostics, subscriptions
    RESERVED = 1  # cancels, reconciliation, keepalive: may use the reserve


class BudgetLevel(IntEnum):
    OK = 0
    LOW = 1  # under ``low_fraction`` of normal room left somewhere: degrade now
    RESERVE_ONLY = 2  # normal room exhausted somewhere: only RESERVED work goes out
    BLOCKED = 3  # a limit is blocked (Retry-After or backoff after 429/5xx)


class QuotaLevel(IntEnum):
    """Where the volume quota stands (journaled on each change)."""

    UNKNOWN = 0  # never reported, or the tier has none
    OK = 1  # at least ``volume_quota_low`` units
    LOW = 2  # under ``volume_quota_low``: the planner is already backing off
    EXHAUSTED = 3  # none left: one tx per free interval


class BudgetExhausted(ExchangeError):
    """``acquire`` could not get its cost within its timeout."""


@dataclass(frozen=True, slots=True)
class Cost:
    """What one request draws from each limit."""

    rest: int = 0  # weighted REST units
    sendtx: int = 0  # txs against the sendTx bucket (REST and WS)
    ws_msgs: int = 0  # client WebSocket frames
    ws_inflight: int = 0  # WebSocket requests awaiting an answer (release with release_inflight)


@dataclass(frozen=True, slots=True)
class BudgetState:
    """A snapshot of the budget for planners and status output."""

    level: BudgetLevel
    reason: str  # which limit set the level ("" when OK)
    used: Mapping[str, int]  # per limit: units used in the current window (in flight for ws)
    caps: Mapping[str, int]  # per limit: the usable cap (max_fraction of the venue's limit)
    normal_caps: Mapping[str, int]  # per limit: the cap for NORMAL priority (cap - reserve)
    volume_quota_remaining: int | None  # last value the venue reported (None: never reported)
    blocked_for_s: float  # longest remaining block over all limits


class _Window:
    """A rolling-window allocator for one limit."""

    __slots__ = ("blocked_until_ns", "cap", "limit", "log", "name", "normal_cap", "strikes", "used")

    def __init__(self, name: str, limit: int, max_fraction: float, reserve_fraction: float) -> None:
        self.name = name  # the limit's name in states and stats
        self.limit = limit  # the venue's limit
        self.cap = max(1, math.floor(limit * max_fraction))  # never above this
        self.normal_cap = self.cap - math.ceil(self.cap * reserve_fraction)  # NORMAL stops here
        self.log: deque[tuple[int, int]] = deque()  # (granted at ns, amount), oldest first
        self.used = 0  # sum of amounts in the window
        self.blocked_until_ns = 0  # Retry-After / backoff
        self.strikes = 0  # consecutive 429/5xx, drives the backoff

    def prune(self, now: int) -> None:
        edge = now - WINDOW_NS
        log = self.log
        while log and log[0][0] <= edge:
            self.used -= log.popleft()[1]

    def cap_for(self, priority: Priority) -> int:
        return self.cap if priority else self.normal_cap

    def fits(self, now: int, amount: int, priority: Priority) -> bool:
        return now >= self.blocked_until_ns and self.used + amount <= self.cap_for(priority)

    def take(self, now: int, amount: int) -> None:
        self.log.append((now, amount))
        self.used += amount

    def wait_ns(self, now: int, amount: int, priority: Priority) -> float:
        """Nanoseconds until ``amount`` fits (inf if it never can)."""
        cap = self.cap_for(priority)
        if amount > cap:
            return math.inf
        wait = max(0, self.blocked_until_ns - now)
        need = self.used + amount - cap
        if need > 0:
            acc = 0
            for t, a in self.log:
                acc += a
                if acc >= need:
                    wait = max(wait, t + WINDOW_NS - now + 1)
                    break
        return float(wait)


class _Inflight:
    """Requests awaiting an answer (a count, not a window)."""

    __slots__ = ("cap", "count", "limit", "name", "normal_cap", "peak")

    def __init__(self, name: str, limit: int, max_fraction: float, reserve_fraction: float) -> None:
        self.name = name  # the limit's name
        self.limit = limit  # the venue's limit
        self.cap = max(1, math.floor(limit * max_fraction))  # never above this
        self.normal_cap = self.cap - math.ceil(self.cap * reserve_fraction)  # NORMAL stops here
        self.count = 0  # requests in flight now
        self.peak = 0  # highest count seen

    def cap_for(self, priority: Priority) -> int:
        return self.cap if priority else self.normal_cap


class RateBudget:
    """The one rate budget of a venue connection set (REST, sendTx, WebSocket limits)."""

    def __init__(
        self,
        tier: RateTier,
        time: TimeSource = REAL_TIME,
        *,
        max_fraction: float = 0.8,
        reserve_fraction: float = 0.15,
        low_fraction: float = 0.25,
        volume_quota_low: int = 400,
        volume_quota_span: int = 900,
        backoff_min_s: float = 0.25,
        backoff_max_s: float = 30.0,
        rng: random.Random | None = None,
    ) -> None:
        if not 0 < max_fraction <= 0.8:
            raise ValueError("max_fraction must be within (0, 0.8]")
        if not 0 <= reserve_fraction < 1:
            raise ValueError("reserve_fraction must be within [0, 1)")
        self.tier = tier
        self._time = time
        self._low_fraction = low_fraction
        if volume_quota_low < 0 or volume_quota_span < 1:
            raise ValueError("volume_quota_low must be >= 0 and volume_quota_span >= 1")
        self._volume_quota_low = volume_quota_low
        self._volume_quota_span = volume_quota_span
        self._backoff_min_s = backoff_min_s
        self._backoff_max_s = backoff_max_s
        self._rng = rng or random.Random()
        f, r = max_fraction, reserve_fraction
        self._rest = _Window("rest", tier.rest_units, f, r)
        self._sendtx = _Window("sendtx", tier.sendtx_per_min, f, r)
        self._ws = _Window("ws_msgs", tier.ws_msgs_per_min, f, r)
        self._windows = {w.name: w for w in (self._rest, self._sendtx, self._ws)}
        self._inflight = _Inflight("ws_inflight", tier.ws_inflight, f, r)
        self._volume_quota: int | None = None
        self._free_at_ns = 0  # when the venue's next free tx is expected (quota empty)
        self._quota_level = QuotaLevel.UNKNOWN
        self._quota_listeners: list[Callable[[QuotaLevel, int | None], object]] = []
        self.quota_refusals = 0  # sends the venue refused for a spent volume quota
        self._listeners: list[Callable[[BudgetState], object]] = []
        self._level = BudgetLevel.OK
        self.granted = 0  # costs granted
        self.denied = 0  # try_acquire refusals
        self.rate_limited = 0  # 429s / venue "too many" errors reported
        self.server_errors = 0  # 5xx reported
        self._room: SendRoom | None = None  # what compiled steps read (attach_room)

    # --- costs --------------------------------------------------------------------------------
    def rest_cost(self, endpoint: str, txs: int = 0) -> Cost:
        """A REST call of ``endpoint`` (e.g. "sendTx"); ``txs``: transactions it carries."""
        return Cost(rest=self.tier.rest_weight(endpoint), sendtx=txs)

    WS_MESSAGE = Cost(ws_msgs=1)  # a client frame with no answer expected (ping, pong)
    WS_REQUEST = Cost(ws_msgs=1, ws_inflight=1)  # subscribe / unsubscribe: answered

    @staticmethod
    def ws_sendtx_cost(txs: int = 1) -> Cost:
        """A WS jsonapi/sendtx(batch): one frame, one answer, ``txs`` against the sendTx bucket."""
        return Cost(sendtx=txs, ws_msgs=1, ws_inflight=1)

    # --- granting -----------------------------------------------------------------------------
    def try_acquire(self, cost: Cost, priority: Priority = Priority.NORMAL) -> bool:
        """Grant ``cost`` now if every limit it touches has room (all or nothing)."""
        now = self._time.monotonic_ns()
        parts = ((self._rest, cost.rest), (self._sendtx, cost.sendtx), (self._ws, cost.ws_msgs))
        for w, amount in parts:
            if amount:
                w.prune(now)
                if not w.fits(now, amount, priority):
                    self.denied += 1
                    self._check_level(now)
                    return False
        inf = self._inflight
        if cost.ws_inflight and inf.count + cost.ws_inflight > inf.cap_for(priority):
            self.denied += 1
            return False
        for w, amount in parts:
            if amount:
                w.take(now, amount)
        if cost.sendtx and not priority and self._quota_empty():
            # A NORMAL send (create, modify) on an empty quota takes the free tx.
            self._free_at_ns = now + FREE_TX_INTERVAL_NS
        if cost.ws_inflight:
            inf.count += cost.ws_inflight
            inf.peak = max(inf.peak, inf.count)
        self.granted += 1
        self._check_level(now)
        return True

    def wait_s(self, cost: Cost, priority: Priority = Priority.NORMAL) -> float:
        """Seconds until ``cost`` fits, ignoring in-flight (inf if it never can)."""
        now = self._time.monotonic_ns()
        wait = 0.0
        for w, amount in (
            (self._rest, cost.rest),
            (self._sendtx, cost.sendtx),
            (self._ws, cost.ws_msgs),
        ):
            if amount:
                w.prune(now)
                wait = max(wait, w.wait_ns(now, amount, priority))
        return wait / 1e9

    async def acquire(
        self, cost: Cost, priority: Priority = Priority.NORMAL, timeout_s: float | None = None
    ) -> None:
        """Wait (in TimeSource time) until ``cost`` is granted; BudgetExhausted on timeout."""
        start = self._time.monotonic_ns()
        while not self.try_acquire(cost, priority):
            wait = self.wait_s(cost, priority)
            if cost.ws_inflight:
                wait = max(wait, 0.05)  # in flight frees on an answer: poll
            elapsed = (self._time.monotonic_ns() - start) / 1e9
            if math.isinf(wait) or (timeout_s is not None and elapsed + wait > timeout_s):
                raise BudgetExhausted(f"no budget for {cost} within {timeout_s} s")
            await self._time.sleep(max(wait, 0.001))

    def release_inflight(self, n: int = 1) -> None:
        """An answered WS request (ack, error, snapshot) frees its in-flight slot."""
        self._inflight.count = max(0, self._inflight.count - n)
        if self._room is not None:
            now = self._time.monotonic_ns()
            self._publish(now, self._compute(now, True)[0])

    def attach_room(self, room: SendRoom) -> None:
        """Publish ``order_room`` and whether one more sendtx frame fits into ``room`` (a
        ``mmfast._core.pipeline.SendRoom``) at every change from now on."""
        self._room = room
        now = self._time.monotonic_ns()
        self._publish(now, self._compute(now, True)[0])

    def _publish(self, now: int, level: BudgetLevel) -> None:
        r = self._room
        assert r is not None
        ws, inf = self._ws, self._inflight
        st = self._sendtx
        r.usable = level < BudgetLevel.RESERVE_ONLY
        r.sendtx_used, r.sendtx_cap = self._sendtx_room(now)
        r.ws_used, r.ws_cap = ws.used, ws.normal_cap
        # What try_acquire(ws_sendtx_cost(1), NORMAL) would grant now.
        r.ws_ok = (
            st.fits(now, 1, Priority.NORMAL)
            and ws.fits(now, 1, Priority.NORMAL)
            and inf.count + 1 <= inf.cap_for(Priority.NORMAL)
        )

    def _sendtx_room(self, now: int) -> tuple[int, int]:
        """(used, cap) of the sendtx room the planner reads: the sendTx window's, or the
        volume quota's when that is the scarcer. The quota's room has exactly ``avail`` units
        free (no plan spends more) and a free share of ``0.1 + 0.9 * avail / span``: the
        planner's headroom falls with the quota but never below 0.1, so the quota alone
        takes the plan to WIDE and FEW_LEVELS, never to ONE_SIDE (which sends nothing when
        flat, and a bot that sends nothing never hears that its quota came back)."""
        st = self._sendtx
        avail = self._quota_avail(now)
        span = self._volume_quota_span
        if avail is None or avail >= span:
            return st.used, st.normal_cap
        if avail <= 0:
            return 1, 1  # nothing free (the level is RESERVE_ONLY: not usable either)
        cap = avail * span * 10 // (span + 9 * avail)  # >= avail while avail <= span
        s_cap = st.normal_cap
        if s_cap > 0 and avail * s_cap >= (s_cap - st.used) * cap:
            return st.used, s_cap  # the sendTx window is the scarcer
        return cap - avail, cap

    def reset_inflight(self, n: int) -> None:
        """A dropped connection's unanswered requests (``n``) will never be answered."""
        self.release_inflight(n)

    # --- venue feedback -----------------------------------------------------------------------
    def backoff_s(self, strikes: int) -> float:
        """Jittered exponential backoff for the ``strikes``-th consecutive failure (>= 1):
        uniform in [base/2, base], base = min(max, min * 2**(strikes-1))."""
        base = min(self._backoff_max_s, self._backoff_min_s * 2.0 ** max(0, strikes - 1))
        return base / 2 + self._rng.random() * base / 2

    def on_rate_limited(self, limit: str = "rest", retry_after_s: float | None = None) -> float:
        """The venue refused for rate (429 / 23000 / WS 30009-30010): block ``limit`` for the
        Retry-After (plus up to 10% jitter), or for the backoff when none was given.
        Returns the block in seconds."""
        w = self._windows[limit]
        w.strikes += 1
        self.rate_limited += 1
        if retry_after_s is not None and retry_after_s >= 0:
            delay = retry_after_s + self._rng.random() * min(1.0, 0.1 * retry_after_s)
        else:
            delay = self.backoff_s(w.strikes)
        return self._block(w, delay)

    def on_server_error(self, limit: str = "rest") -> float:
        """A 5xx or transport failure: back off ``limit`` (jittered, capped). Returns seconds."""
        w = self._windows[limit]
        w.strikes += 1
        self.server_errors += 1
        return self._block(w, self.backoff_s(w.strikes))

    def on_success(self, limit: str = "rest") -> None:
        self._windows[limit].strikes = 0

    def _block(self, w: _Window, delay_s: float) -> float:
        now = self._time.monotonic_ns()
        w.blocked_until_ns = max(w.blocked_until_ns, now + int(delay_s * 1e9))
        self._check_level(now)
        return delay_s

    def note_volume_quota(self, remaining: int | None) -> None:
        """From a sendTx answer (REST or WebSocket); null (None) leaves the last known value."""
        if remaining is None or isinstance(remaining, bool) or not isinstance(remaining, int):
            return
        self._volume_quota = remaining
        self._check_level(self._time.monotonic_ns())

    def on_volume_quota_refused(self, remaining: int | None = None) -> None:
        """The venue refused a send for a spent volume quota: the quota is empty and the free
        tx was not available, so none is expected for a free interval. Unlike a request-rate
        429 this blocks nothing: cancels cost no quota and must keep going."""
        self.quota_refusals += 1
        self.rate_limited += 1
        now = self._time.monotonic_ns()
        self._volume_quota = remaining if type(remaining) is int else 0
        self._free_at_ns = now + FREE_TX_INTERVAL_NS
        self._check_level(now)

    def _quota_applies(self) -> bool:
        return self.tier.volume_quota and self._volume_quota is not None

    def _quota_empty(self) -> bool:
        return self._quota_applies() and self._volume_quota <= 0  # type: ignore[operator]

    def _quota_avail(self, now: int) -> int | None:
        """Quota units a plan may spend now (the free tx counts as one on an empty quota);
        None when the quota does not apply."""
        if not self._quota_applies():
            return None
        q = self._volume_quota
        assert q is not None
        if q > 0:
            return q
        return 1 if now >= self._free_at_ns else 0

    def subscribe_quota(
        self, listener: Callable[[QuotaLevel, int | None], object]
    ) -> Callable[[], None]:
        """Call ``listener(level, remaining)`` whenever the quota's level changes."""
        self._quota_listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._quota_listeners:
                self._quota_listeners.remove(listener)

        return unsubscribe

    @property
    def quota_level(self) -> QuotaLevel:
        if not self._quota_applies():
            return QuotaLevel.UNKNOWN
        q = self._volume_quota
        assert q is not None
        if q <= 0:
            return QuotaLevel.EXHAUSTED
        return QuotaLevel.LOW if q < self._volume_quota_low else QuotaLevel.OK

    # --- state --------------------------------------------------------------------------------
    @property
    def volume_quota_remaining(self) -> int | None:
        return self._volume_quota

    @property
    def inflight(self) -> int:
        return self._inflight.count

    @property
    def inflight_peak(self) -> int:
        return self._inflight.peak

    def used(self, limit: str) -> int:
        """Units used now in ``limit``'s window ("rest", "sendtx", "ws_msgs"; "ws_inflight")."""
        if limit == "ws_inflight":
            return self._inflight.count
        w = self._windows[limit]
        w.prune(self._time.monotonic_ns())
        return w.used

    def cap(self, limit: str, priority: Priority = Priority.RESERVED) -> int:
        if limit == "ws_inflight":
            return self._inflight.cap_for(priority)
        return self._windows[limit].cap_for(priority)

    def _compute(self, now: int, orders: bool = False) -> tuple[BudgetLevel, str, float]:
        """The level over every limit, or (``orders``) over those order txs draw on: sendtx
        and WebSocket messages, not REST reads (separate budgets on the venue: a 429 on a REST
        read holds REST, not the order WebSocket)."""
        blocked = 0.0
        level, reason = BudgetLevel.OK, ""
        windows = (self._sendtx, self._ws) if orders else tuple(self._windows.values())
        for w in windows:
            w.prune(now)
        for w in windows:
            if w.blocked_until_ns > now:
                blocked = max(blocked, (w.blocked_until_ns - now) / 1e9)
                level, reason = BudgetLevel.BLOCKED, f"{w.name} blocked"
        if level is BudgetLevel.BLOCKED:
            return level, reason, blocked
        for name, used, normal in [(w.name, w.used, w.normal_cap) for w in windows]:
            room = normal - used
            if room <= 0 and level < BudgetLevel.RESERVE_ONLY:
                level, reason = BudgetLevel.RESERVE_ONLY, f"{name} reserve only"
            elif room < self._low_fraction * normal and level < BudgetLevel.LOW:
                level, reason = BudgetLevel.LOW, f"{name} low"
        avail = self._quota_avail(now)
        if avail is not None:
            q = self._volume_quota
            assert q is not None
            if avail <= 0 and level < BudgetLevel.RESERVE_ONLY:
                # Creates and modifies wait for the free tx; cancels (RESERVED) go on.
                level, reason = BudgetLevel.RESERVE_ONLY, "volume quota exhausted"
            elif q <= 0 and level < BudgetLevel.LOW:
                level, reason = BudgetLevel.LOW, "volume quota empty: free tx only"
            elif q < self._volume_quota_low and level < BudgetLevel.LOW:
                level, reason = BudgetLevel.LOW, "volume quota low"
        return level, reason, blocked

    def order_room(self) -> tuple[bool, int, int, int, int]:
        """What the requote planner needs, without building a ``state()``: (usable, sendtx
        used, sendtx normal cap, ws_msgs used, ws_msgs normal cap). Not usable when a limit is
        blocked or one is down to its reserve (the levels ``state()`` reports as BLOCKED and
        RESERVE_ONLY)."""
        now = self._time.monotonic_ns()
        usable = self._compute(now, True)[0] < BudgetLevel.RESERVE_ONLY
        ws = self._ws
        s_used, s_cap = self._sendtx_room(now)
        return usable, s_used, s_cap, ws.used, ws.normal_cap

    def state(self) -> BudgetState:
        now = self._time.monotonic_ns()
        level, reason, blocked = self._compute(now)
        ws = list(self._windows.values())
        inf = self._inflight
        return BudgetState(
            level=level,
            reason=reason,
            used=MappingProxyType({**{w.name: w.used for w in ws}, inf.name: inf.count}),
            caps=MappingProxyType({**{w.name: w.cap for w in ws}, inf.name: inf.cap}),
            normal_caps=MappingProxyType(
                {**{w.name: w.normal_cap for w in ws}, inf.name: inf.normal_cap}
            ),
            volume_quota_remaining=self._volume_quota,
            blocked_for_s=blocked,
        )

    @property
    def level(self) -> BudgetLevel:
        return self._compute(self._time.monotonic_ns())[0]

    @property
    def order_level(self) -> BudgetLevel:
        """The level of what order txs draw on (sendtx, WebSocket messages, volume quota)."""
        return self._compute(self._time.monotonic_ns(), True)[0]

    def subscribe(self, listener: Callable[[BudgetState], object]) -> Callable[[], None]:
        """Call ``listener(state)`` whenever the level changes. Returns an unsubscribe."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    def refresh(self) -> None:
        """Re-evaluate the level (windows also drain with time); notify on a change."""
        self._check_level(self._time.monotonic_ns())

    def _check_level(self, now: int) -> None:
        ql = self.quota_level
        if ql is not self._quota_level:
            self._quota_level = ql
            for qcb in list(self._quota_listeners):
                qcb(ql, self._volume_quota)
        level = self._compute(now)[0]
        if self._room is not None:
            self._publish(now, self._compute(now, True)[0])
        if level is not self._level:
            self._level = level
            if self._listeners:
                st = self.state()
                for cb in list(self._listeners):
                    cb(st)
