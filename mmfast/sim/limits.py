"""The venue's rate limits, in simulated time: a weighted REST budget per rolling minute (the
tier's), WebSocket messages per minute and requests in flight, and a temporary block for
clients that keep breaching. Keyed by client IP, as on the venue."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from mmfast.sim.clock import SimClock
from mmfast.sim.config import DEFAULT_WEIGHT, REQUEST_WEIGHTS, SimConfig

WINDOW_NS = 60 * 1_000_000_000
MAX_BLOCK_DOUBLINGS = 4
SENDTX_ENDPOINTS = frozenset({"sendTx", "sendTxBatch"})  # the block grows to at most 16x block_s


@dataclass(frozen=True, slots=True)
class Breach:
    """Why a request was refused."""

    status: int  # HTTP status (429, or block_status while blocked)
    code: int  # venue error code (23000)
    retry_after_s: int  # whole seconds until a retry can succeed
    reason: str  # "rest", "sendtx", "ws_messages", "ws_inflight" or "blocked"


class RollingWindow:
    """Weights taken in the last 60 s; `take` refuses what would exceed `budget`."""

    __slots__ = ("budget", "entries", "used")

    def __init__(self, budget: int) -> None:
        self.budget = budget  # weight allowed per window
        self.entries: deque[tuple[int, int]] = deque()  # (time ns, weight), oldest first
        self.used = 0  # sum of weights in the window

    def _expire(self, now_ns: int) -> None:
        cutoff = now_ns - WINDOW_NS
        e = self.entries
        while e and e[0][0] <= cutoff:
            self.used -= e.popleft()[1]

    def take(self, now_ns: int, weight: int) -> int:
        """Take `weight` now; 0 if allowed, else ns until it would fit."""
        self._expire(now_ns)
        if self.used + weight <= self.budget:
            self.entries.append((now_ns, weight))
            self.used += weight
            return 0
        free = self.budget - self.used
        for t, w in self.entries:  # the oldest entries leave the window first
            free += w
            if free >= weight:
                return t + WINDOW_NS - now_ns
        return WINDOW_NS


class _Client:
    __slots__ = ("block_count", "blocked_until_ns", "breaches", "inflight", "rest", "sendtx", "ws")

    def __init__(self, rest_budget: int, ws_budget: int, sendtx_budget: int) -> None:
        self.rest = RollingWindow(rest_budget)  # REST weights (WS sendTx included)
        self.sendtx = RollingWindow(sendtx_budget)  # sendTx / sendTxBatch requests (REST + WS)
        self.ws = RollingWindow(ws_budget)  # WS client messages
        self.inflight = 0  # WS requests awaiting their answer
        self.breaches: deque[int] = deque()  # breach times in the last minute
        self.blocked_until_ns = 0  # monotonic ns; 0 = not blocked
        self.block_count = 0  # blocks earned so far (each doubles the next)


def _ceil_s(ns: int) -> int:
    return max(1, -(-ns // 1_000_000_000))


class RateLimiter:
    """Charges requests against their client's budgets; returns a `Breach` to refuse one."""

    def __init__(self, config: SimConfig, clock: SimClock) -> None:
        self.config = config
        self.clock = clock
        tier = config.tier_spec
        self.rest_budget = config.rest_budget if config.rest_budget is not None else tier.budget
        self.min_cost = tier.min_cost
        self.sendtx_budget = (
            config.sendtx_per_min if config.sendtx_per_min is not None else tier.sendtx_per_min
        )
        self.enabled = config.rate_limits
        self._clients: dict[str, _Client] = {}
        self.breach_count = 0  # breaches since start (blocked requests included)
        self.block_count = 0  # blocks imposed since start

    def _client(self, ip: str) -> _Client:
        c = self._clients.get(ip)
        if c is None:
            c = self._clients[ip] = _Client(
                self.rest_budget, self.config.ws_msgs_per_min, self.sendtx_budget
            )
        return c

    def weight(self, endpoint: str) -> int:
        """The cost of one request to `endpoint` (e.g. "sendTx") on this tier."""
        return max(REQUEST_WEIGHTS.get(endpoint, DEFAULT_WEIGHT), self.min_cost)

    def blocked(self, ip: str) -> Breach | None:
        if not self.enabled:
            return None
        c = self._client(ip)
        now = self.clock.monotonic_ns()
        if c.blocked_until_ns > now:
            self.breach_count += 1
            return Breach(
                self.config.block_status, 23000, _ceil_s(c.blocked_until_ns - now), "blocked"
            )
        return None

    def _breach(self, c: _Client, now: int, wait_ns: int, reason: str) -> Breach:
        self.breach_count += 1
        c.breaches.append(now)
        while c.breaches and c.breaches[0] <= now - WINDOW_NS:
            c.breaches.popleft()
        if len(c.breaches) >= self.config.block_after_breaches:
            block_ns = self.config.block_s * 1_000_000_000 << min(
                c.block_count, MAX_BLOCK_DOUBLINGS
            )
            c.block_count += 1
            self.block_count += 1
            c.blocked_until_ns = now + block_ns
            c.breaches.clear()
            return Breach(self.config.block_status, 23000, _ceil_s(block_ns), "blocked")
        return Breach(429, 23000, _ceil_s(wait_ns), reason)

    def rest(self, ip: str, endpoint: str) -> Breach | None:
        """Charge one REST request (or a WS sendTx, which shares the REST bucket)."""
        if not self.enabled:
            return None
        b = self.blocked(ip)
        if b is not None:
            return b
        c = self._client(ip)
        now = self.clock.monotonic_ns()
        if endpoint in SENDTX_ENDPOINTS:
            # The tier's sendTx bucket first (one per request, a batch too: the venue's
            # counting of batches is unconfirmed), then the weighted REST budget.
            wait = c.sendtx.take(now, 1)
            if wait:
                return self._breach(c, now, wait, "sendtx")
        wait = c.rest.take(now, self.weight(endpoint))
        return self._breach(c, now, wait, "rest") if wait else None

    def ws_message(self, ip: str) -> Breach | None:
        """Charge one client WebSocket message."""
        if not self.enabled:
            return None
        b = self.blocked(ip)
        if b is not None:
            return b
        c = self._client(ip)
        now = self.clock.monotonic_ns()
        wait = c.ws.take(now, 1)
        return self._breach(c, now, wait, "ws_messages") if wait else None

    def ws_request_start(self, ip: str) -> Breach | None:
        """A WS request that awaits an answer (sendTx) begins; refused over the in-flight cap."""
        c = self._client(ip)
        if self.enabled and c.inflight >= self.config.ws_max_inflight:
            return self._breach(c, self.clock.monotonic_ns(), 1_000_000_000, "ws_inflight")
        c.inflight += 1
        return None

    def ws_request_done(self, ip: str) -> None:
        c = self._client(ip)
        c.inflight = max(0, c.inflight - 1)

    def inflight(self, ip: str) -> int:
        return self._client(ip).inflight
