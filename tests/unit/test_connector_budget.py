"""RateBudget: caps at 80%, reserve for RESERVED work, Retry-After, backoff, quota, state."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mmfast.connector.lighter.budget import (
    PREMIUM,
    STANDARD,
    BudgetExhausted,
    BudgetLevel,
    BudgetState,
    Cost,
    Priority,
    QuotaLevel,
    RateBudget,
    RateTier,
)
from mmfast.core.plan_types import BudgetView, Degrade, PlannerParams

SEC = 1_000_000_000


class ManualTime:
    """A TimeSource that moves only when told to (sleep advances it)."""

    scale = 1.0

    def __init__(self) -> None:
        self.ns = 1_000 * SEC

    def monotonic_ns(self) -> int:
        return self.ns

    def wall_ms(self) -> int:
        return 1_790_000_000_000 + self.ns // 1_000_000

    async def sleep(self, seconds: float) -> None:
        self.ns += int(seconds * SEC)
        await asyncio.sleep(0)

    def call_later(self, seconds: float, cb: Callable[..., Any], *args: Any) -> Any:
        raise NotImplementedError


def make(tier: RateTier = PREMIUM, **kw: Any) -> tuple[RateBudget, ManualTime]:
    t = ManualTime()
    return RateBudget(tier, t, rng=random.Random(0), **kw), t  # type: ignore[arg-type]


def test_caps_are_80_percent_with_reserve() -> None:
    b, _ = make()
    assert b.cap("rest") == 19_200 and b.cap("ws_msgs") == 160
    assert b.cap("rest", Priority.NORMAL) == 19_200 - 2_880
    assert b.cap("ws_inflight") == 40 and b.cap("ws_inflight", Priority.NORMAL) == 34
    with pytest.raises(ValueError):
        RateBudget(PREMIUM, ManualTime(), max_fraction=0.81)  # type: ignore[arg-type]


def test_standard_tier_counts_requests() -> None:
    b, _ = make(STANDARD)
    cost = b.rest_cost("account")  # weight 300 -> floor 400 -> 1/60 of the budget
    n = 0
    while b.try_acquire(cost, Priority.RESERVED):
        n += 1
    assert n == 48  # 80% of 60 requests
    assert b.rest_cost("recentTrades").rest == 600  # min(60, 24000/600) = 40 a minute


def test_normal_stops_at_reserve_reserved_goes_on() -> None:
    b, t = make()
    msg = b.WS_MESSAGE
    normal = sum(1 for _ in range(500) if b.try_acquire(msg))
    assert normal == b.cap("ws_msgs", Priority.NORMAL)
    assert b.level is BudgetLevel.RESERVE_ONLY
    reserved = sum(1 for _ in range(500) if b.try_acquire(msg, Priority.RESERVED))
    assert normal + reserved == 160
    t.ns += 60 * SEC + 1  # the window rolls
    assert b.try_acquire(msg)


def test_all_or_nothing() -> None:
    b, _ = make(RateTier("t", rest_units=1000, min_rest_weight=0, sendtx_per_min=2))
    assert b.try_acquire(b.rest_cost("sendTx", txs=1), Priority.RESERVED)
    before = b.used("rest")
    assert not b.try_acquire(b.rest_cost("sendTx", txs=1), Priority.RESERVED)  # sendtx full
    assert b.used("rest") == before  # nothing taken from the REST window


def test_inflight_released_by_answers() -> None:
    b, _ = make()
    n = sum(1 for _ in range(100) if b.try_acquire(b.WS_REQUEST))
    assert n == 34 and b.inflight == 34 and b.inflight_peak == 34
    b.release_inflight(4)
    assert b.inflight == 30 and b.try_acquire(b.WS_REQUEST)


def test_retry_after_blocks_then_backoff_grows_capped() -> None:
    b, t = make(backoff_min_s=0.25, backoff_max_s=30.0)
    d = b.on_rate_limited("rest", 5.0)
    assert 5.0 <= d <= 5.5
    assert not b.try_acquire(b.rest_cost("account"), Priority.RESERVED)
    assert b.level is BudgetLevel.BLOCKED
    t.ns += int(d * SEC) + 1
    assert b.try_acquire(b.rest_cost("account"))
    delays = [b.on_server_error("rest") for _ in range(12)]
    for i, dly in enumerate(delays[:7]):
        base = 0.25 * 2 ** (i + 1)  # strike counting continued after the 429
        assert min(base, 30) / 2 <= dly <= min(base, 30)
    assert max(delays) <= 30.0 and delays[-1] >= 15.0
    b.on_success("rest")
    assert 0.125 <= b.on_server_error("rest") <= 0.25


def test_acquire_waits_for_window_in_source_time() -> None:
    b, t = make(RateTier("t", rest_units=100, min_rest_weight=0, sendtx_per_min=10))
    cost = Cost(rest=10)
    for _ in range(6):
        assert b.try_acquire(cost)  # normal cap: 80 - 12 = 68 -> 6 requests
    t0 = t.ns

    async def go() -> None:
        await b.acquire(cost)

    asyncio.run(go())
    assert 59 * SEC <= t.ns - t0 <= 61 * SEC

    async def too_big() -> None:
        await b.acquire(Cost(rest=1000), timeout_s=5)

    with pytest.raises(BudgetExhausted):
        asyncio.run(too_big())


def test_volume_quota_and_listeners() -> None:
    b, _ = make(volume_quota_low=100)
    seen: list[BudgetState] = []
    unsub = b.subscribe(seen.append)
    b.note_volume_quota(None)  # null: ignored
    assert b.volume_quota_remaining is None and not seen
    b.note_volume_quota(50)
    assert seen[-1].level is BudgetLevel.LOW and seen[-1].reason == "volume quota low"
    b.note_volume_quota(0)  # empty, but the venue's free tx is available
    st = b.state()
    assert st.level is BudgetLevel.LOW and "free tx" in st.reason
    b.on_volume_quota_refused(0)  # and now it is not
    assert seen[-1].level is BudgetLevel.RESERVE_ONLY
    b.note_volume_quota(5000)
    assert seen[-1].level is BudgetLevel.OK and seen[-1].volume_quota_remaining == 5000
    unsub()
    b.note_volume_quota(0)
    assert seen[-1].level is BudgetLevel.OK  # no longer told


def test_low_before_reserve_only() -> None:
    b, _ = make()
    levels = []
    for _ in range(b.cap("ws_msgs", Priority.NORMAL)):
        b.try_acquire(b.WS_MESSAGE)
        levels.append(b.level)
    assert BudgetLevel.LOW in levels
    assert levels.index(BudgetLevel.LOW) < levels.index(BudgetLevel.RESERVE_ONLY)


@settings(derandomize=True, max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 3_000),
            st.sampled_from(["sendTx", "account", "accountInactiveOrders"]),
            st.booleans(),
        ),
        min_size=1,
        max_size=300,
    )
)
def test_never_above_cap_in_any_window(ops: list[tuple[int, str, bool]]) -> None:
    """Property: whatever the request pattern, granted weight in any rolling 60 s <= 80%."""
    tier = RateTier("t", rest_units=3_000, min_rest_weight=0, sendtx_per_min=50)
    b, t = make(tier)
    granted: list[tuple[int, int, int]] = []
    for dt_ms, ep, reserved in ops:
        t.ns += dt_ms * 1_000_000
        txs = 1 if ep == "sendTx" else 0
        cost = b.rest_cost(ep, txs)
        if b.try_acquire(cost, Priority.RESERVED if reserved else Priority.NORMAL):
            granted.append((t.ns, cost.rest, txs))
    for i, (ti, _, _) in enumerate(granted):
        win = [g for g in granted[: i + 1] if g[0] > ti - 60 * SEC]
        assert sum(g[1] for g in win) <= 2_400
        assert sum(g[2] for g in win) <= 40


def test_budget_publishes_its_room_for_compiled_steps() -> None:
    from mmfast._core.pipeline import SendRoom

    b, t = make()
    room = SendRoom()
    b.attach_room(room)
    assert room.order_room() == b.order_room() and room.ws_ok and room.usable
    assert b.try_acquire(b.ws_sendtx_cost(3))
    assert room.order_room() == b.order_room() and room.sendtx_used == 3
    b.on_rate_limited("ws_msgs", retry_after_s=5.0)  # blocked: nothing fits, not usable
    assert not room.ws_ok and not room.usable
    t.ns += 6 * SEC
    b.refresh()
    assert room.ws_ok and room.usable
    while b.try_acquire(b.WS_REQUEST):  # in flight at its cap: one more frame does not fit
        pass
    assert not room.ws_ok
    b.release_inflight(1)
    assert room.ws_ok


def test_a_rest_429_holds_rest_not_the_order_websocket() -> None:
    """Separate budgets, as on the venue: a rate limit on REST reads blocks REST for its
    Retry-After while order txs (sendtx, WebSocket messages) keep their room; a limit on
    sendtx blocks orders."""
    from mmfast._core.pipeline import SendRoom

    b, t = make()
    room = SendRoom()
    b.attach_room(room)
    b.on_rate_limited("rest", 2.0)
    assert b.level is BudgetLevel.BLOCKED and b.order_level is BudgetLevel.OK
    assert b.order_room()[0] and room.usable and room.ws_ok
    assert not b.try_acquire(b.rest_cost("account"), Priority.RESERVED)  # REST waits
    assert b.try_acquire(b.ws_sendtx_cost(1), Priority.NORMAL)  # an order frame goes
    b.on_rate_limited("sendtx", 1.0)
    assert b.order_level is BudgetLevel.BLOCKED and not b.order_room()[0]
    assert not room.usable
    t.ns += 3 * SEC
    b.refresh()
    assert b.level is BudgetLevel.OK and b.order_level is BudgetLevel.OK and room.usable


def _degrade(b: RateBudget) -> Degrade:
    """What the planner's default thresholds make of the budget's order room now."""
    h = BudgetView(b).headroom
    p = PlannerParams()
    if h >= p.wide_below:
        return Degrade.NONE
    if h >= p.few_levels_below:
        return Degrade.WIDE
    return Degrade.FEW_LEVELS if h >= p.one_side_below else Degrade.ONE_SIDE


def test_volume_quota_drives_the_order_room_thresholds() -> None:
    b, _ = make()  # premium: the quota applies; span 900, low 400
    assert _degrade(b) is Degrade.NONE  # never reported: the windows alone
    for q, want in (
        (5000, Degrade.NONE),
        (900, Degrade.NONE),
        (400, Degrade.NONE),
        (399, Degrade.WIDE),
        (150, Degrade.WIDE),
        (149, Degrade.FEW_LEVELS),
        (1, Degrade.FEW_LEVELS),
    ):
        b.note_volume_quota(q)
        assert _degrade(b) is want, q
    b.note_volume_quota(3)
    view = BudgetView(b)
    assert view.headroom > 0 and view.can_spend(3) and not view.can_spend(4)  # 3 units left
    assert b.quota_level is QuotaLevel.LOW
    # The standard tier has no quota: a reported value is shown but limits nothing.
    s, _ = make(STANDARD)
    s.note_volume_quota(0)
    assert s.quota_level is QuotaLevel.UNKNOWN and s.order_level is BudgetLevel.OK


def test_empty_volume_quota_leaves_one_free_tx_per_15_s_and_never_blocks_cancels() -> None:
    b, t = make()
    levels: list[tuple[QuotaLevel, int | None]] = []
    b.subscribe_quota(lambda lv, q: levels.append((lv, q)))
    b.note_volume_quota(0)
    view = BudgetView(b)
    assert view.can_spend(1) and not view.can_spend(2)  # the free tx
    assert b.try_acquire(b.ws_sendtx_cost(1))  # a modify takes it
    assert not BudgetView(b).can_spend(1) and b.order_level is BudgetLevel.RESERVE_ONLY
    # A cancel (RESERVED) still goes: the quota blocks nothing at the windows.
    assert b.try_acquire(b.ws_sendtx_cost(1), Priority.RESERVED)
    t.ns += 15 * SEC
    assert BudgetView(b).can_spend(1)  # the next free tx
    b.on_volume_quota_refused(0)  # the venue disagreed: wait a free interval again
    assert not BudgetView(b).can_spend(1) and b.quota_refusals == 1
    assert b.try_acquire(b.ws_sendtx_cost(1), Priority.RESERVED)  # cancels still go
    b.note_volume_quota(2000)  # fills earned it back
    assert BudgetView(b).can_spend(10) and b.order_level is BudgetLevel.OK
    assert [lv for lv, _ in levels] == [QuotaLevel.EXHAUSTED, QuotaLevel.OK]
