"""LighterConnector under the simulator's faults (reliability targets 1-4, 6, 20, 21, 23).

Counts are scaled down here; the same scenarios run with the full counts under ``-m soak``.
Every time figure is measured in the simulated time shared by simulator and connector.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import Any

import pytest
from test_connector_lighter import (  # the shared harness (same directory)
    ACCOUNT,
    Recorder,
    make_sim_config,
    run,
    run_connector,
    sim_levels,
)

from mmfast._core.book import ASK, BID
from mmfast.connector.lighter.budget import RateTier
from mmfast.connector.lighter.connector import LighterConnector
from mmfast.connector.lighter.rest import OutcomeUnknown, RateLimited, VenueUnavailable
from mmfast.connector.lighter.ws import StreamState
from mmfast.core.timesource import ScaledTime
from mmfast.sim.config import SimConfig
from mmfast.sim.thread import SimThread

SCALE = 10.0  # 2 s pong timeout = 200 ms real: robust on a busy machine


@pytest.fixture
def stime(request: pytest.FixtureRequest) -> ScaledTime:
    return ScaledTime(getattr(request, "param", SCALE))


@pytest.fixture
def sim_config() -> SimConfig:
    return make_sim_config()


async def until(
    stime: ScaledTime, cond: Callable[[], bool], timeout_s: float, step_s: float = 0.02
) -> float:
    """Wait until ``cond()``; return the simulated seconds it took (inf on timeout)."""
    t0 = stime.monotonic_ns()
    while not cond():
        if stime.monotonic_ns() - t0 > timeout_s * 1e9:
            return math.inf
        await stime.sleep(step_s)
    return (stime.monotonic_ns() - t0) / 1e9


def faults(sim: SimThread, fn: Callable[[Any], Any]) -> Any:
    return sim.call(lambda s: fn(s.faults))


def assert_book_matches(sim: SimThread, conn: LighterConnector, m: int) -> bool:
    """True if the nonces align now (and then the books are equal)."""
    (asks, bids), nonce = sim_levels(sim, m)
    book = conn.market_data.books[m]
    if book.nonce != nonce or not book.in_sync():
        return False
    assert book.top(ASK, 10_000) == sorted(asks)
    assert book.top(BID, 10_000) == sorted(bids, reverse=True)
    return True


async def aligned_check(
    sim: SimThread, stime: ScaledTime, conn: LighterConnector, m: int, tries: int = 200
) -> None:
    for _ in range(tries):
        if assert_book_matches(sim, conn, m):
            return
        await stime.sleep(0.01)
    raise AssertionError("book never aligned with the simulator's")


def p99(xs: list[float]) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, math.ceil(0.99 * len(s)) - 1)]


# ------------------------------------------------------------------------- 1. drops
def drops_scenario(
    sim: SimThread, stime: ScaledTime, n: int, spacing_s: tuple[float, float]
) -> None:
    rng = random.Random(1)
    resync: list[float] = []

    async def body(conn: LighterConnector, rec: Recorder) -> None:
        assert await conn.wait_ready(10.0)
        md = conn.market_data.stream
        assert md is not None
        for i in range(n):
            code = rng.choice([1000, 1006, "rst"])
            snaps = conn.market_data.books[0].snapshots
            pulls = len(rec.pulls)
            faults(sim, lambda f, c=code: f.drop(c, "order_book:0"))
            t = await until(
                stime,
                lambda s=snaps: (
                    conn.market_data.books[0].snapshots > s and conn.market_data.books[0].in_sync()
                ),
                10.0,
            )
            assert t < math.inf, f"drop {i} ({code}) never resynced: {conn.status()}"
            resync.append(t)
            assert len(rec.pulls) > pulls  # quotes were pulled
            await aligned_check(sim, stime, conn, 0)
            await stime.sleep(rng.uniform(*spacing_s))
        assert md.disconnects >= n
        assert await conn.wait_ready(10.0)

    run(run_connector(sim, stime, body), timeout_s=30 + n * 1.5)
    print(
        f"drops: n={n} resync p50={sorted(resync)[n // 2]:.3f}s p99={p99(resync):.3f}s "
        f"max={max(resync):.3f}s (simulated)"
    )
    assert p99(resync) <= 2.0, resync


# At 5x: a 100 ms scheduling hiccup of the shared CI machine is 0.5 s of simulated resync
# time, not 1 s (the target is 2 s; two CI runs saw 2.02 and 3.3 s at 10x under load).
@pytest.mark.parametrize("stime", [5.0], indirect=True)
def test_ws_drops_resync_from_fresh_snapshot(sim: SimThread, stime: ScaledTime) -> None:
    drops_scenario(sim, stime, 8, (1.0, 3.0))


@pytest.mark.soak
def test_ws_drops_resync_soak(sim: SimThread, stime: ScaledTime) -> None:
    # 1-60 s apart on the venue; 3-9 s here keeps the soak short while the resubscribes
    # (6 per drop) stay within the 200 messages a minute.
    drops_scenario(sim, stime, 100, (3.0, 9.0))


# ------------------------------------------------------------------------- 2. stalls
def stall_scenario(sim: SimThread, stime: ScaledTime, n: int) -> None:
    detect: list[float] = []
    pull_lag: list[float] = []

    async def body(conn: LighterConnector, rec: Recorder) -> None:
        assert await conn.wait_ready(10.0)
        md = conn.market_data.stream
        assert md is not None
        for i in range(n):
            downs = md.disconnects
            pulls = len(rec.pulls)
            t0 = stime.monotonic_ns()
            faults(sim, lambda f: f.stall(40.0, "order_book:0"))
            t = await until(stime, lambda d=downs: md.disconnects > d, 10.0, 0.005)
            assert t < math.inf, f"stall {i} not detected"
            down_ns = md.down_log[-1][0]
            detect.append((down_ns - t0) / 1e9)
            pulled = [p for p in rec.pulls[pulls:] if p.market in (0, None)]
            assert pulled, "quotes not pulled"
            pull_lag.append((pulled[0].ts_ns - down_ns) / 1e9)
            assert await conn.wait_ready(10.0), f"stall {i}: not recovered: {conn.status()}"
            await aligned_check(sim, stime, conn, 0)

    run(run_connector(sim, stime, body), timeout_s=30 + n * 2.0)
    print(
        f"stalls: n={n} detection max={max(detect):.3f}s min={min(detect):.3f}s "
        f"pull lag max={max(pull_lag):.3f}s (simulated)"
    )
    assert len(detect) == n  # n/n recovered
    assert max(detect) <= 5.0, detect  # idle (2.5 s) + pong timeout (2 s)
    assert max(pull_lag) <= 1.0, pull_lag


# At 2x: picows' idle and pong timers run in real time (the simulated 2.5 s + 2 s scaled
# down), so the 0.5 s of simulated slack is 250 ms of real time here; at 10x it was 50 ms and
# one CI run under full load detected a stall in 6.5 s (a 200 ms hiccup).
@pytest.mark.parametrize("stime", [2.0], indirect=True)
def test_silent_stall_detected_and_recovered(sim: SimThread, stime: ScaledTime) -> None:
    stall_scenario(sim, stime, 3)


@pytest.mark.soak
def test_silent_stall_soak(sim: SimThread, stime: ScaledTime) -> None:
    stall_scenario(sim, stime, 20)


def test_quiet_market_is_not_a_dead_socket(stime: ScaledTime) -> None:
    """No flow, no server pings for a long time: idle pings keep the socket, no reconnect."""
    cfg = make_sim_config(flow=None, ws_ping_interval_ms=60_000, ws_pong_timeout_ms=120_000)
    with SimThread(cfg, stime) as st:

        async def body(conn: LighterConnector, rec: Recorder) -> None:
            assert await conn.wait_ready(10.0), conn.status()
            md = conn.market_data.stream
            assert md is not None
            await stime.sleep(20.0)
            assert md.disconnects == 0 and md.connects == 1
            assert md.pings_sent >= 5  # ~every 2.5 s of silence
            assert conn.ready, conn.status()

        run(run_connector(st, stime, body))


# ------------------------------------------------------------------ 3. gaps, dups, reorders
def sequence_scenario(sim: SimThread, stime: ScaledTime, n: int, spacing_s: float = 0.0) -> None:
    """``n`` gap/duplicate/reorder faults, ``spacing_s`` simulated seconds apart. Each resync
    costs WebSocket messages (unsubscribe, subscribe) from a budget of 136 a minute: a long run
    must space its faults or the connector rightly holds resubscribes for the next window."""
    rng = random.Random(2)

    async def body(conn: LighterConnector, rec: Recorder) -> None:
        assert await conn.wait_ready(10.0)
        book = conn.market_data.books[0]
        for i in range(n):
            kind = rng.choice(["book_gap", "book_duplicate", "book_reorder"])
            gaps, snaps, pulls = conn.market_data.gaps, book.snapshots, len(rec.pulls)
            faults(sim, lambda f, k=kind: getattr(f, k)(0))
            t = await until(stime, lambda g=gaps: conn.market_data.gaps > g, 5.0)
            assert t < math.inf, f"{kind} #{i} not detected"
            assert any(p.market == 0 and "gap" in p.reason for p in rec.pulls[pulls:])
            assert not conn.readiness.holds("book:0") or book.snapshots > snaps
            t = await until(stime, lambda s=snaps: book.snapshots > s and book.in_sync(), 5.0)
            assert t < math.inf, f"{kind} #{i}: no resync"
            await aligned_check(sim, stime, conn, 0)
            if spacing_s:
                await stime.sleep(spacing_s)
        assert conn.market_data.gaps == n  # 100% detected, one detection per fault
        assert conn.market_data.stream is not None and conn.market_data.stream.handler_errors == 0

    run(
        run_connector(sim, stime, body, markets=(0,)),
        timeout_s=30 + n * (0.6 + spacing_s / stime.scale),
    )


def test_gaps_duplicates_reorders_detected(sim: SimThread, stime: ScaledTime) -> None:
    sequence_scenario(sim, stime, 30)


@pytest.mark.soak
def test_gaps_duplicates_reorders_soak(sim: SimThread, stime: ScaledTime) -> None:
    sequence_scenario(sim, stime, 1000, spacing_s=1.2)


# ------------------------------------------------------ 4. pre-snapshot deltas, no snapshot
def test_delta_before_snapshot_and_missing_snapshot(sim: SimThread, stime: ScaledTime) -> None:
    faults(sim, lambda f: f.book_delta_before_snapshot(0))

    async def body(conn: LighterConnector, rec: Recorder) -> None:
        assert await conn.wait_ready(10.0)
        assert conn.market_data.books[0].dropped_pre_snapshot >= 1
        md = conn.market_data.stream
        assert md is not None
        # The next two subscribes get deltas but no snapshot.
        faults(sim, lambda f: f.book_skip_snapshot(0, 2))
        faults(sim, lambda f: f.drop(1006, "order_book:0"))
        await until(stime, lambda: not conn.ready, 2.0, 0.005)
        events_before = rec.book_events  # from the moment the drop was seen
        t0 = stime.monotonic_ns()
        seen_events: list[int] = []
        ready_seen: list[bool] = []

        def watch() -> bool:
            seen_events.append(rec.book_events)
            ready_seen.append(conn.ready)
            return conn.market_data.books[0].in_sync()

        t = await until(stime, watch, 20.0, 0.01)
        assert t < math.inf
        elapsed = (stime.monotonic_ns() - t0) / 1e9
        assert md.deadline_misses >= 2  # the deadline triggered a resubscribe, twice
        assert elapsed >= 2 * conn.config.snapshot_deadline_s * 0.9
        # No book emitted and never ready while there was no snapshot.
        assert not any(ready_seen[:-1])
        assert all(e == events_before for e in seen_events[:-1])
        assert await conn.wait_ready(5.0)
        await aligned_check(sim, stime, conn, 0)

    run(run_connector(sim, stime, body, markets=(0,)))


# ------------------------------------------------------------------------- 6. crossed book
def test_crossed_book_pulls_and_resyncs(sim: SimThread, stime: ScaledTime) -> None:
    async def body(conn: LighterConnector, rec: Recorder) -> None:
        assert await conn.wait_ready(10.0)
        # A short cross (< 1 s): pulled, not ready, no book events, then back without resync.
        pulls, events = len(rec.pulls), rec.book_events
        faults(sim, lambda f: f.book_crossed(0, 0.5))
        assert await until(stime, lambda: conn.market_data.crossed >= 1, 3.0, 0.005) < math.inf
        assert not conn.ready
        assert any(p.reason == "crossed book" for p in rec.pulls[pulls:])
        assert await until(stime, lambda: conn.ready, 5.0) < math.inf
        assert conn.market_data.cross_resyncs == 0
        assert rec.book_events >= events
        # A long cross (3 s): resynced after 1 s.
        t0 = stime.monotonic_ns()
        faults(sim, lambda f: f.book_crossed(0, 3.0))
        md = conn.market_data
        assert await until(stime, lambda: md.cross_resyncs >= 1, 5.0, 0.005) < math.inf
        first_resync = (stime.monotonic_ns() - t0) / 1e9
        assert 1.0 <= first_resync <= 1.6, first_resync
        assert await until(stime, lambda: conn.ready, 10.0) < math.inf
        book = conn.market_data.books[0]
        assert not book.is_crossed() and not book.is_locked()
        await aligned_check(sim, stime, conn, 0)

    run(run_connector(sim, stime, body, markets=(0,)))


def test_no_book_event_while_crossed(sim: SimThread, stime: ScaledTime) -> None:
    async def body(conn: LighterConnector, rec: Recorder) -> None:
        assert await conn.wait_ready(10.0)
        crossed_events: list[bool] = []
        from mmfast.core.events import BookUpdated, EventBus

        bus = conn.signals.bus
        assert isinstance(bus, EventBus)
        bus.subscribe(
            BookUpdated,
            lambda ev: crossed_events.append(ev.book.is_crossed() or ev.book.is_locked()),
        )
        faults(sim, lambda f: f.book_crossed(0, 2.0))
        await stime.sleep(4.0)
        assert crossed_events and not any(crossed_events)
        assert conn.market_data.crossed >= 1

    run(run_connector(sim, stime, body, markets=(0,)))


# ------------------------------------------------------------------- 5. malformed frames
def test_malformed_frames_counted_never_crash(sim: SimThread, stime: ScaledTime) -> None:
    async def body(conn: LighterConnector, rec: Recorder) -> None:
        assert await conn.wait_ready(10.0)
        md = conn.market_data.stream
        assert md is not None
        before = md.malformed + conn.market_data.books[0].malformed
        faults(sim, lambda f: f.corrupt_frames(20, "order_book:0"))
        faults(sim, lambda f: f.truncated_frames(20, "order_book:0"))
        faults(sim, lambda f: f.oversized_frame(10 * 1024 * 1024, "order_book:0"))
        await stime.sleep(3.0)
        counted = md.malformed + conn.market_data.books[0].malformed - before
        assert counted >= 21, counted
        assert md.disconnects == 0  # a 10 MB frame is read and counted, not fatal
        assert md.handler_errors == 0
        assert conn.market_data.stream is not None
        # The loop survived: the book is live again (a corrupt delta may cost a resync).
        assert await conn.wait_ready(10.0)
        await aligned_check(sim, stime, conn, 0)

    run(run_connector(sim, stime, body, markets=(0,)))


# ------------------------------------------------------------------- 20. 429 / 5xx storms
def _times(sim: SimThread, name: str) -> list[int]:
    # The simulator's request log: (simulated monotonic ns, "METHOD path" / "WS type").
    return sim.call(lambda s: [t for t, n in s.truth.request_log(name) if n == name])


def _max_in_window(times: list[int], window_ns: int = 60_000_000_000) -> int:
    best, j = 0, 0
    for i, t in enumerate(times):
        while times[j] <= t - window_ns:
            j += 1
        best = max(best, i - j + 1)
    return best


def test_429_and_5xx_storms_respect_cap_and_retry_after() -> None:
    stime = ScaledTime(20.0)
    limit = 1200  # REST weight per minute: nextNonce (6) -> 200 a minute; our cap 80% = 160
    cfg = make_sim_config(rest_budget=limit, flow=None)
    tier = RateTier("test", rest_units=limit, min_rest_weight=0, sendtx_per_min=200)
    outcomes: dict[str, int] = {"ok": 0, "unavailable": 0, "rate_limited": 0, "unknown": 0}
    with SimThread(cfg, stime) as st:

        async def body(conn: LighterConnector, rec: Recorder) -> None:
            assert await conn.wait_ready(10.0)
            t_end = stime.monotonic_ns() + int(100e9)
            faults(st, lambda f: f.http_status_storm(429, 5, retry_after_s=2))
            phase = 0
            while stime.monotonic_ns() < t_end:
                if phase == 0 and stime.monotonic_ns() > t_end - int(70e9):
                    faults(st, lambda f: f.http_status_storm(503, 9))
                    phase = 1
                try:
                    await conn.rest.next_nonce(ACCOUNT, 5, priority=0)
                    outcomes["ok"] += 1
                except VenueUnavailable:
                    outcomes["unavailable"] += 1
                except RateLimited:
                    outcomes["rate_limited"] += 1
            # A 5xx on an order call is UNKNOWN, never rejected.
            faults(st, lambda f: f.http_status_storm(502, 1, execute=False))
            with pytest.raises(OutcomeUnknown):
                await conn.rest.send_tx(14, "{}")
            outcomes["unknown"] += 1

        run(run_connector(st, stime, body, tier=tier, account_streams=True), timeout_s=60)
        times = _times(st, "GET /api/v1/nextNonce")
        rest_log = st.call(lambda s: [(t, n) for t, n in s.truth.request_log() if "/api/v1/" in n])
        limits = st.call(lambda s: s.truth.rate_limits())
        applied = st.call(
            lambda s: [
                (r.time_ns, r.details.get("status"))
                for r in s.truth.faults("http_status_storm", "applied")
            ]
        )
    weight_max = _weighted_max(rest_log)
    after_fail = []
    for t_fail, status in applied[:-1]:  # the last one is the sendTx 502 (UNKNOWN) check
        nxt = [t for t in times if t > t_fail]
        if nxt:
            after_fail.append(((nxt[0] - t_fail) / 1e9, status))
    print(
        f"storm: {len(times)} nextNonce, max weight in any 60 s = {weight_max} "
        f"(cap {int(limit * 0.8)}, venue {limit}); waits after failures "
        f"{[round(w, 2) for w, _ in after_fail]}; {outcomes}"
    )
    assert weight_max <= limit * 0.8
    assert limits["breaches"] == 0  # the venue's own limiter never refused us (no 429/418)
    assert outcomes["ok"] > 50 and outcomes["unknown"] == 1
    # Retry-After honoured: after each 429 our next nextNonce waited >= 2 s. (A request of
    # another endpoint already in flight when a 429 lands is not a retry, so only the
    # retried endpoint is timed.)
    assert all(w >= 2.0 * 0.98 for w, st_ in after_fail if st_ == 429)
    # Jittered backoff after 5xx, growing, capped at 30 s.
    waits_5xx = [w for w, st_ in after_fail if st_ != 429]
    assert len(waits_5xx) >= 5 and max(waits_5xx) <= 30.5 and max(waits_5xx) >= 7.5


def _weighted_max(log: list[tuple[int, str]], window_ns: int = 60_000_000_000) -> int:
    """Highest REST weight (venue weights) in any rolling window of the request log."""
    weights = {"nextNonce": 6, "sendTx": 6, "sendTxBatch": 6, "accountInactiveOrders": 100}
    best = used = j = 0
    w = [weights.get(n.rsplit("/", 1)[-1], 300) for _, n in log]
    for i, (t, _) in enumerate(log):
        used += w[i]
        while log[j][0] <= t - window_ns:
            used -= w[j]
            j += 1
        best = max(best, used)
    return best


# ------------------------------------------------------------------ 21. reconnect storm
def test_reconnect_storm_within_ws_budget(sim: SimThread, stime: ScaledTime) -> None:
    """Every connection is dropped as soon as it appears, for 90 s: the client's WS messages
    stay within the budget and at most 35 requests are ever unanswered."""

    async def body(conn: LighterConnector, rec: Recorder) -> None:
        assert await conn.wait_ready(10.0)
        t_end = stime.monotonic_ns() + int(90e9)
        while stime.monotonic_ns() < t_end and conn.halted is None:
            faults(sim, lambda f: f.drop("rst"))
            await stime.sleep(0.05)
        assert conn.budget.inflight_peak <= 35
        assert conn.budget.used("ws_msgs") <= 160

    run(run_connector(sim, stime, body), timeout_s=60)
    names = sim.call(lambda s: s.truth.request_log("WS "))
    ws_max = _max_in_window([t for t, _ in names])
    print(f"reconnect storm: {len(names)} WS messages, max in any 60 s = {ws_max}")
    assert ws_max <= 160  # our 80% cap; the venue's limit is 200
    assert sim.call(lambda s: s.truth.rate_limits())["breaches"] == 0


def test_halt_after_ten_failed_connects() -> None:
    stime = ScaledTime(40.0)
    with SimThread(make_sim_config(flow=None), stime) as st:

        async def body(conn: LighterConnector, rec: Recorder) -> None:
            assert await conn.wait_ready(10.0)
            faults(st, lambda f: f.refuse_connections(True))
            faults(st, lambda f: f.drop("rst"))
            t = await until(stime, lambda: conn.halted is not None, 400.0, 0.1)
            assert t < math.inf
            md = conn.market_data.stream
            assert md is not None and md.state is StreamState.HALTED
            assert md.failures == 10
            assert "10 consecutive connection failures" in str(conn.halted)
            assert not conn.ready and "halted" in conn.not_ready_reason
            assert any(p.market is None and "halted" in p.reason for p in rec.pulls)
            print(f"halt: after {t:.1f}s of refused connects (simulated)")
            assert 30.0 <= t <= 250.0  # backoff 0.25 s doubling, capped at 30 s, jittered

        run(run_connector(st, stime, body), timeout_s=40)


# ------------------------------------------------------------------------ 23. clock skew
@pytest.mark.parametrize("offset_ms", [2000, -2000, 30000, -30000])
def test_clock_skew_detected_and_expiries_within_bounds(
    sim: SimThread, stime: ScaledTime, offset_ms: int
) -> None:
    async def body(conn: LighterConnector, rec: Recorder) -> None:
        assert await conn.wait_ready(10.0)
        faults(sim, lambda f: f.wall_offset_ms(offset_ms))
        t = await until(stime, lambda: conn.skew.skewed, 15.0)
        assert t < math.inf, "skew not detected"
        assert not conn.ready and conn.not_ready_reason.startswith("skew")
        assert any("skew" in p.reason for p in rec.pulls)
        est = conn.skew.offset_ms
        assert est is not None and abs(est - offset_ms) <= 300, est
        # A fresh token made now, at the longest lifetime, is accepted: its deadline is in
        # venue time, so it stays within (now, now + 8 h] on the venue's clock.
        assert conn.tokens is not None and conn.account.stream is not None
        conn.tokens.invalidate()
        faults(sim, lambda f: f.drop("rst", f"user_stats:{ACCOUNT}"))
        await stime.sleep(0.2)
        ok = await until(
            stime,
            lambda: all(
                conn.readiness.holds(f"stream:{k}") for k in conn.account.stream.subscriptions
            ),
            10.0,
        )
        assert ok < math.inf, conn.readiness.failing()
        # Order expiry: 5 min from now in venue time is inside the venue's window; the same
        # from the local clock is not when the venue runs ahead.
        expiry = conn.skew.expiry_ms(5 * 60_000)
        venue_now = sim.call(lambda s: s.clock.wall_ms())
        assert 5 * 60_000 < expiry - venue_now <= 30 * 86_400_000
        # Back to no skew: ready again.
        faults(sim, lambda f: f.wall_offset_ms(0))
        assert await until(stime, lambda: conn.ready, 20.0) < math.inf

    run(run_connector(sim, stime, body, token_lifetime_s=8 * 3600 - 5), timeout_s=40)
