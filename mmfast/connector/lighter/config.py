"""Configuration of the Lighter connector (URLs, account, streams, timeouts, budget)."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from mmfast.connector.lighter.budget import PREMIUM, RateTier

__all__ = ["MAX_AUTH_LIFETIME_S", "LighterConfig"]

# The venue accepts auth tokens whose deadline is at most 8 h ahead (the venue's rule).
MAX_AUTH_LIFETIME_S = 8 * 3600


@dataclass(frozen=True, slots=True)
class LighterConfig:
    """Everything the connector is told at start. Times are seconds of the injected TimeSource.

    ``rest_url`` is the REST base (``https://host``, the connector adds ``/api/v1``);
    ``ws_url`` the WebSocket endpoint (``wss://host/stream``).
    """

    rest_url: str
    ws_url: str
    account_index: int
    api_key_index: int
    markets: tuple[int, ...]
    tier: RateTier = PREMIUM
    # Market data: deadline for a snapshot after a subscribe before resubscribing.
    snapshot_deadline_s: float = 3.0
    # A crossed (or locked) book is resynced when it stays so for longer than this.
    cross_resync_s: float = 1.0
    # Liveness: JSON ping after this much silence, then the pong must come within the timeout
    # (picows requires pong_timeout_s <= ping_idle_s).
    ping_idle_s: float = 2.5
    pong_timeout_s: float = 2.0
    connect_timeout_s: float = 5.0
    # The venue drops a WebSocket after 24 h and one whose client sent nothing for 2 minutes:
    # each connection is replaced (make before break) at this age, and pings when it sent
    # nothing for this long.
    ws_max_age_s: float = 23.5 * 3600
    ws_send_idle_s: float = 60.0
    # Reconnect: jittered exponential backoff, halt after this many consecutive failures.
    backoff_min_s: float = 0.25
    backoff_max_s: float = 30.0
    max_connect_failures: int = 10
    # Account streams (private channels, need an auth token).
    account_streams: bool = True
    token_lifetime_s: int = 7 * 3600
    token_refresh_margin_s: float = 600.0
    # REST.
    request_timeout_s: float = 10.0
    rest_max_retries: int = 3
    metadata_refresh_s: float = 60.0
    startup_deadline_s: float = 30.0  # start-up reads retried on rate limits / 5xx this long
    # Clock skew: not ready above this |venue - local| offset.
    max_clock_skew_ms: int = 1000
    # Loop stall: the event loop not run this long (host ms) pulls, refreshes and reconciles.
    max_loop_stall_ms: int = 1000
    # Rate budget: never above this fraction of a venue limit; this share of it kept for
    # cancels and reconciliation.
    budget_max_fraction: float = 0.8
    budget_reserve_fraction: float = 0.15
    # Volume quota (tiers that have one): under ``volume_quota_low`` units the budget is LOW;
    # under ``volume_quota_span`` the quota sets the planner's headroom (RateBudget).
    volume_quota_low: int = 400
    volume_quota_span: int = 900
    # Seed of the jitter (backoffs); None draws from the OS.
    seed: int | None = None
    extra: dict[str, str] = field(default_factory=dict)  # free-form labels for status output

    def __post_init__(self) -> None:
        for name, url, schemes in (
            ("rest_url", self.rest_url, ("http", "https")),
            ("ws_url", self.ws_url, ("ws", "wss")),
        ):
            parts = urlsplit(url)
            if parts.scheme not in schemes or not parts.hostname:
                raise ValueError(f"{name} must be a {'/'.join(schemes)} URL, got {url!r}")
        if self.account_index <= 0:
            raise ValueError(f"account_index must be > 0, got {self.account_index}")
        if not 0 <= self.api_key_index <= 254:
            raise ValueError(f"api_key_index must be within 0..254, got {self.api_key_index}")
        if not self.markets or len(set(self.markets)) != len(self.markets):
            raise ValueError("markets must be non-empty and distinct")
        if any(m < 0 for m in self.markets):
            raise ValueError("market ids are >= 0")
        positive = (
            "snapshot_deadline_s",
            "cross_resync_s",
            "ping_idle_s",
            "pong_timeout_s",
            "connect_timeout_s",
            "backoff_min_s",
            "backoff_max_s",
            "request_timeout_s",
            "metadata_refresh_s",
            "startup_deadline_s",
            "ws_max_age_s",
            "ws_send_idle_s",
        )
        for name in positive:
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0")
        if self.pong_timeout_s > self.ping_idle_s:
            raise ValueError("pong_timeout_s must be <= ping_idle_s")
        if self.backoff_min_s > self.backoff_max_s:
            raise ValueError("backoff_min_s must be <= backoff_max_s")
        if self.max_connect_failures < 1:
            raise ValueError("max_connect_failures must be >= 1")
        if not 60 <= self.token_lifetime_s <= MAX_AUTH_LIFETIME_S:
            raise ValueError(f"token_lifetime_s must be within 60..{MAX_AUTH_LIFETIME_S}")
        if not 0 < self.token_refresh_margin_s < self.token_lifetime_s:
            raise ValueError("token_refresh_margin_s must be within (0, token_lifetime_s)")
        if self.rest_max_retries < 0:
            raise ValueError("rest_max_retries must be >= 0")
        if self.volume_quota_low < 0 or self.volume_quota_span < 1:
            raise ValueError("volume_quota_low must be >= 0 and volume_quota_span >= 1")
        if self.max_clock_skew_ms <= 0:
            raise ValueError("max_clock_skew_ms must be > 0")
        if self.max_loop_stall_ms < 40:
            raise ValueError("max_loop_stall_ms must be >= 40")
        if not 0 < self.budget_max_fraction <= 0.8:
            raise ValueError("budget_max_fraction must be within (0, 0.8]")
        if not 0 <= self.budget_reserve_fraction < 1:
            raise ValueError("budget_reserve_fraction must be within [0, 1)")

    @property
    def api_base(self) -> str:
        return self.rest_url.rstrip("/") + "/api/v1"
