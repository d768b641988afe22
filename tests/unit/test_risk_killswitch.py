"""Kill switch: drawdown from the peak (fees and funding included), fill rate, reject rate,
order rate; pause -> resume when cleared; stop is final; decisions within the reporting call."""

from __future__ import annotations

from fractions import Fraction

import pytest

from mmfast.conf import example_path, load_config
from mmfast.core.types import Fill, Position, Side
from mmfast.risk import (
    KillAction,
    KillState,
    KillSwitch,
    KillSwitchLimits,
    TripReason,
    total_pnl_micro,
)

S = 1_000_000_000  # ns per second


class Harness:
    """A kill switch on a hand-driven clock, recording its callbacks."""

    def __init__(self, **kw: object) -> None:
        kw.setdefault("max_drawdown", 100)
        kw.setdefault("pause_cooldown_ns", 10 * S)
        self.now = 0
        self.trips: list[tuple[KillAction, TripReason]] = []
        self.resumes: list[TripReason] = []
        self.ks = KillSwitch(
            KillSwitchLimits(**kw),  # type: ignore[arg-type]
            on_trip=lambda a, r: self.trips.append((a, r)),
            on_resume=self.resumes.append,
            now_ns=lambda: self.now,
        )


def test_drawdown_is_from_the_peak_not_the_start() -> None:
    h = Harness(max_drawdown=100)
    ks = h.ks
    ks.update_pnl(0)
    ks.update_pnl(500)  # peak 500
    assert ks.update_pnl(401) is KillState.ARMED  # 99 below the peak; 401 above the start
    assert h.trips == []
    assert ks.update_pnl(400) is KillState.PAUSED  # 100 below the peak: trips in this call
    assert h.trips == [(KillAction.PAUSE, TripReason.DRAWDOWN)]
    assert ks.drawdown == 100 and ks.peak_pnl == 500 and ks.tripped


def test_drawdown_counts_fees_and_funding() -> None:
    pos = Position(market=0)
    # Buy 100 lots at 300_000 ticks, fee 50 micro; ETH-like decimals (2, 4): 1 tick x lot =
    # 0.000001 USDC = 1 micro-USDC.
    pos.apply_fill(Fill(1, 0, Side.BUY, 300_000, 100, 50, True, 1, None, 0))
    assert total_pnl_micro(pos, 300_000, 2, 4) == -50
    assert total_pnl_micro(pos, 300_010, 2, 4) == 1000 - 50
    assert total_pnl_micro(pos, 300_010, 2, 4, funding_micro=-2000) == 1000 - 50 - 2000
    assert total_pnl_micro(pos, 300_000, 1, 4) == -50  # 10 micro per tick x lot: still 0 PnL
    assert total_pnl_micro(pos, 300_001, 1, 4) == 100 * 10 - 50
    h = Harness(max_drawdown=1000)
    h.ks.update_pnl(total_pnl_micro(pos, 300_010, 2, 4))  # peak 950
    # Price flat, but funding paid pushes it 1000 below the peak.
    assert (
        h.ks.update_pnl(total_pnl_micro(pos, 300_010, 2, 4, funding_micro=-1000))
        is KillState.PAUSED
    )
    assert isinstance(h.ks.drawdown, Fraction | int)


def test_pause_then_resume_when_cleared_after_cooldown() -> None:
    h = Harness(max_fills_per_min=3, pause_cooldown_ns=10 * S)
    ks = h.ks
    for t in range(3):
        h.now = t * S
        assert ks.on_fill() is KillState.ARMED
    h.now = 3 * S
    assert ks.on_fill() is KillState.PAUSED  # 4 fills in a minute
    assert h.trips == [(KillAction.PAUSE, TripReason.FILL_RATE)]
    h.now = 30 * S
    assert ks.evaluate() is KillState.PAUSED  # still 4 fills within the minute
    h.now = 60 * S + 1  # the fill at 0 leaves the window: 3 left, cleared at 60 s
    # The cooldown runs from the last time the breach was seen (30 s): cleared now.
    assert ks.evaluate() is KillState.ARMED
    assert h.resumes == [TripReason.FILL_RATE]
    assert ks.reason is None and ks.trips == 1


def test_cooldown_holds_a_pause() -> None:
    h = Harness(max_order_txs_per_min=2, pause_cooldown_ns=10 * S)
    ks = h.ks
    ks.on_order_sent(3)
    assert ks.state is KillState.PAUSED and ks.reason is TripReason.ORDER_RATE
    h.now = 60 * S + 1  # window clear, but the last breach was seen at 0...
    assert ks.evaluate() is KillState.ARMED  # ...and 60 s > 10 s cooldown
    h2 = Harness(max_order_txs_per_min=2, pause_cooldown_ns=120 * S)
    h2.ks.on_order_sent(3)
    h2.now = 61 * S
    assert h2.ks.evaluate() is KillState.PAUSED  # cleared, but within the cooldown
    h2.now = 120 * S
    assert h2.ks.evaluate() is KillState.ARMED


def test_reject_rate_needs_min_samples() -> None:
    h = Harness(max_reject_rate=0.5, reject_min_samples=4, reject_window_ns=10 * S)
    ks = h.ks
    for _ in range(3):
        ks.on_order_result(rejected=True)
    assert ks.state is KillState.ARMED  # 3 answers: too few to judge
    ks.on_order_result(rejected=False)  # 3/4 = 0.75 > 0.5
    assert ks.state is KillState.PAUSED and h.trips[-1][1] is TripReason.REJECT_RATE


def test_reject_rate_at_threshold_does_not_trip() -> None:
    h = Harness(max_reject_rate=0.5, reject_min_samples=4)
    for r in (True, False, True, False):
        h.ks.on_order_result(rejected=r)
    assert h.ks.state is KillState.ARMED  # 2/4 = 0.5 is not above 0.5


def test_stop_is_final() -> None:
    h = Harness(max_drawdown=10, action=KillAction.STOP, pause_cooldown_ns=0)
    ks = h.ks
    ks.update_pnl(0)
    assert ks.update_pnl(-10) is KillState.STOPPED
    assert h.trips == [(KillAction.STOP, TripReason.DRAWDOWN)]
    ks.update_pnl(1000)
    h.now = 10**6 * S
    assert ks.evaluate() is KillState.STOPPED
    assert not ks.resume()
    ks.trip()
    assert h.trips == [(KillAction.STOP, TripReason.DRAWDOWN)]  # no second callback


def test_pause_escalates_to_stop() -> None:
    h = Harness()
    h.ks.trip(TripReason.MANUAL)
    assert h.ks.state is KillState.PAUSED
    h.ks.trip(TripReason.MANUAL, KillAction.STOP)
    assert h.ks.state is KillState.STOPPED
    assert [a for a, _ in h.trips] == [KillAction.PAUSE, KillAction.STOP]


def test_manual_pause_waits_for_resume() -> None:
    h = Harness(pause_cooldown_ns=0)
    ks = h.ks
    ks.trip()
    h.now = 3600 * S
    assert ks.evaluate() is KillState.PAUSED  # no auto-resume of an operator's pause
    assert ks.resume() and ks.state is KillState.ARMED
    assert h.resumes == [TripReason.MANUAL]


def test_drawdown_pause_needs_recovery_or_rebase() -> None:
    h = Harness(max_drawdown=100, pause_cooldown_ns=0)
    ks = h.ks
    ks.update_pnl(200)
    ks.update_pnl(50)
    assert ks.state is KillState.PAUSED
    h.now = 3600 * S
    assert ks.evaluate() is KillState.PAUSED  # still 150 below the peak
    assert not ks.resume()
    ks.update_pnl(120)  # 80 below the peak: clear
    assert ks.evaluate() is KillState.ARMED
    ks.update_pnl(0)
    assert ks.state is KillState.PAUSED
    ks.reset_peak()  # operator accepts the loss: peak = 0
    assert ks.evaluate() is KillState.ARMED
    assert h.resumes == [TripReason.DRAWDOWN, TripReason.DRAWDOWN]


def test_new_breach_while_paused_restarts_cooldown_without_callback() -> None:
    h = Harness(max_fills_per_min=1, pause_cooldown_ns=20 * S)
    ks = h.ks
    ks.on_fill()
    ks.on_fill()
    assert ks.state is KillState.PAUSED
    h.now = 50 * S
    ks.on_fill()  # a breach again (3 fills in the window), seen at 50 s
    assert len(h.trips) == 1
    h.now = 60 * S + 1  # the fills at 0 left: clear, but only 10 s since the last breach
    assert ks.evaluate() is KillState.PAUSED
    h.now = 70 * S
    assert ks.evaluate() is KillState.ARMED
    assert ks.last_breach_ns == 50 * S


def test_limits_from_config_and_validation() -> None:
    cfg = load_config(example_path("sim"), env={"HOME": "/nonexistent"})
    lim = KillSwitchLimits.from_config(cfg.risk.kill_switch)
    assert lim.max_drawdown == 200 * 10**6 and lim.action is KillAction.PAUSE
    assert lim.max_fills_per_min == 120 and lim.pause_cooldown_ns == 30 * S
    with pytest.raises(ValueError):
        KillSwitchLimits(max_drawdown=0)
    with pytest.raises(ValueError):
        KillSwitchLimits(max_drawdown=1, max_reject_rate=0.0)


def test_status() -> None:
    h = Harness(max_drawdown=100)
    h.ks.update_pnl(10)
    h.ks.on_fill()
    h.ks.on_order_result(True)
    st = h.ks.status()
    assert st["state"] == "armed" and st["fills_last_min"] == 1 and st["rejects"] == 1
    assert st["peak_pnl_micro"] == 10.0


def test_set_hooks_replaces_both_hooks() -> None:
    h = Harness(max_drawdown=100, pause_cooldown_ns=0)
    trips: list[tuple[KillAction, TripReason]] = []
    resumes: list[TripReason] = []
    h.ks.set_hooks(lambda a, r: trips.append((a, r)), resumes.append)
    h.ks.update_pnl(0)
    h.ks.update_pnl(-100)
    assert trips == [(KillAction.PAUSE, TripReason.DRAWDOWN)] and h.trips == []
    h.ks.update_pnl(0)
    h.ks.reset_peak()
    h.ks.evaluate()
    assert resumes == [TripReason.DRAWDOWN] and h.resumes == []
    h.ks.set_hooks(None, None)  # no hooks: trips still change the state
    assert h.ks.trip(TripReason.MANUAL, KillAction.STOP) is KillState.STOPPED
    assert len(trips) == 1
