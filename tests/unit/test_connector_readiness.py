"""Readiness conditions, clock-skew estimation and the auth-token cache."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from mmfast.connector.lighter.auth import TokenCache, TokenError, redact
from mmfast.connector.lighter.readiness import Readiness
from mmfast.connector.lighter.skew import SkewMonitor
from mmfast.core.events import ConnectorState


class Clock:
    scale = 1.0

    def __init__(self) -> None:
        self.ns = 10**12
        self.wall = 1_790_000_000_000

    def monotonic_ns(self) -> int:
        return self.ns

    def wall_ms(self) -> int:
        return self.wall

    def advance(self, ms: int) -> None:
        self.ns += ms * 1_000_000
        self.wall += ms


def test_ready_only_when_all_hold_and_reason_on_loss() -> None:
    events: list[ConnectorState] = []
    r = Readiness(events.append, Clock())  # type: ignore[arg-type]
    r.add("book:0", "no snapshot")
    r.add("stream:user_stats:1", "no first frame")
    r.add("market:0", "no metadata")
    assert not r.ready and r.reason == "book:0: no snapshot"
    r.set("book:0", True)
    r.set("market:0", True)
    assert not r.ready and r.reason.startswith("stream:user_stats:1")
    r.set("stream:user_stats:1", True)
    assert r.ready and events[-1].ready and events[-1].reason == ""
    n = len(events)
    r.set("book:0", True)  # no change, no event
    assert len(events) == n
    r.set("book:0", False, "nonce gap")
    assert not r.ready and events[-1] == ConnectorState(
        False, "book:0: nonce gap", events[-1].ts_ns
    )
    assert r.failing() == {"book:0": "nonce gap"}
    with pytest.raises(KeyError):
        r.set("nope", True)


def test_watchers_see_every_condition_change_also_while_not_ready() -> None:
    """What the run journals: a second stream dropping while the first is down (the overall
    state does not change, ConnectorState stays silent) is still seen."""
    events: list[ConnectorState] = []
    seen: list[tuple[str, bool, str]] = []
    r = Readiness(events.append, Clock())  # type: ignore[arg-type]
    unwatch = r.watch(lambda *c: seen.append(c))
    r.add("book:0", "no snapshot")
    r.add("stream:account_orders:0:1", "no first frame")
    r.set("book:0", True)
    r.set("stream:account_orders:0:1", True)
    r.set("book:0", True)  # no change: nothing
    r.set("book:0", False, "stream down: disconnected")
    n_events = len(events)
    r.set("stream:account_orders:0:1", False, "stream down: disconnected")
    r.set("stream:account_orders:0:1", False, "stream down: disconnected")  # same: nothing
    assert len(events) == n_events  # the overall reason stays book:0's
    r.set("book:0", False, "nonce gap: resyncing")
    assert seen == [
        ("book:0", False, "no snapshot"),
        ("stream:account_orders:0:1", False, "no first frame"),
        ("book:0", True, ""),
        ("stream:account_orders:0:1", True, ""),
        ("book:0", False, "stream down: disconnected"),
        ("stream:account_orders:0:1", False, "stream down: disconnected"),
        ("book:0", False, "nonce gap: resyncing"),
    ]
    unwatch()
    r.set("book:0", True)
    assert len(seen) == 7


def test_skew_estimate_threshold_and_expiry_bounds() -> None:
    c = Clock()
    flips: list[tuple[bool, str]] = []
    s = SkewMonitor(1000, c, on_change=lambda a, b: flips.append((a, b)))  # type: ignore[arg-type]
    assert s.offset_ms is None and not s.skewed
    s.sample(c.wall - 5)  # 5 ms of transport delay
    assert s.offset_ms == -5 and flips == [(False, "")]
    # Venue 30 s ahead: delayed samples are lower; the estimate takes the highest.
    for delay in (40, 3, 900):
        s.sample(c.wall + 30_000 - delay)
    assert s.offset_ms == 30_000 - 3 and s.skewed and "skew" in flips[-1][1]
    assert s.venue_now_ms() == c.wall + 29_997
    exp = s.expiry_ms(60_000)  # below the venue's 5 min minimum: raised to it plus margin
    assert exp - s.venue_now_ms() == 5 * 60_000 + 10_000
    exp = s.expiry_ms(90 * 86_400_000)  # above 30 days: capped with margin
    assert exp - s.venue_now_ms() == 30 * 86_400_000 - 10_000
    c.advance(11_000)  # old samples leave the window
    s.sample(c.wall + 10)
    assert s.offset_ms == 10 and not s.skewed and flips[-1] == (False, "")


class FakeProvider:
    def __init__(self) -> None:
        self.deadlines: list[int] = []
        self.fail = False

    async def token(self, deadline_s: int) -> str:
        if self.fail:
            raise RuntimeError("boom 1790000000:5:4:deadbeef")
        self.deadlines.append(deadline_s)
        return f"{deadline_s}:5:4:{'ab' * 40}"


def test_token_cache_refreshes_before_expiry_in_venue_time() -> None:
    c = Clock()
    skew = SkewMonitor(1000, c)  # type: ignore[arg-type]
    skew.sample(c.wall - 30_000)  # venue 30 s behind
    p = FakeProvider()
    cache = TokenCache(p, lifetime_s=8 * 3600, refresh_margin_s=600, venue_now_s=skew.venue_now_s)

    async def go() -> list[str]:
        t1 = await cache.get()
        t2 = await cache.get()
        c.advance((8 * 3600 - 599) * 1000)
        skew.sample(c.wall - 30_000)
        t3 = await cache.get()
        return [t1, t2, t3]

    t1, t2, t3 = asyncio.run(go())
    assert t1 == t2 and t3 != t1 and cache.refreshes == 2
    venue_now_s = (1_790_000_000_000 - 30_000) // 1000
    assert p.deadlines[0] == venue_now_s + 8 * 3600  # never beyond the venue's 8 h
    assert "redacted" in repr(cache) and t1 not in repr(cache)
    assert redact(f"x {t1} y", t1) == "x <redacted> y"
    p.fail = True
    cache.invalidate()

    async def fail() -> Any:
        return await cache.get()

    with pytest.raises(TokenError) as ei:
        asyncio.run(fail())
    assert "deadbeef" not in str(ei.value) and ei.value.__cause__ is None
