"""Queue position models: known answers for trades, cancels and fills."""

from __future__ import annotations

import pytest

from mmfast.sim.queue import PowerProb, QueuePos, RiskAverse, filled, make_model


def test_risk_averse_trades_advance_cancels_do_not() -> None:
    m = RiskAverse()
    q = m.new(10)
    assert q.ahead == 10
    m.trade(q, 4)  # 4 of the 10 ahead traded
    assert q.ahead == 6 and filled(q) == 0
    m.depth(q, 10, 6)  # the level shows the trade: nothing more
    assert q.ahead == 6
    m.depth(q, 6, 5)  # a cancel in a level of 6 with 6 ahead: the level bounds the queue
    assert q.ahead == 5
    m.depth(q, 5, 9)  # orders joining go behind us
    assert q.ahead == 5
    m.trade(q, 7)  # 5 ahead, then 2 reach us
    assert q.ahead == -2 and filled(q) == 2


def test_risk_averse_cancel_inside_a_larger_level_keeps_the_position() -> None:
    m = RiskAverse()
    q = m.new(5)
    m.depth(q, 12, 8)  # 4 lots cancelled from a level of 12 with 5 ahead of us
    assert q.ahead == 5
    m.depth(q, 8, 0)  # the level is gone: we are at the front
    assert q.ahead == 0


@pytest.mark.parametrize(
    ("n", "expected"),
    [
        # front 6, back 4, 5 cancelled: p(behind) = 4^n / (4^n + 6^n)
        (1.0, 6 - (1 - 0.4) * 5 + min(4 - 0.4 * 5, 0)),  # 3.0
        (2.0, 6 - (1 - 16 / 52) * 5 + min(4 - 16 / 52 * 5, 0)),  # 2.538...
        (3.0, 6 - (1 - 64 / 280) * 5 + min(4 - 64 / 280 * 5, 0)),  # 2.142...
    ],
)
def test_power_model_splits_cancels_by_position(n: float, expected: float) -> None:
    m = PowerProb(n)
    q = m.new(6)
    m.depth(q, 10, 5)
    assert q.ahead == pytest.approx(expected)
    assert 0 < q.ahead < 6  # advanced, but not by all of it


def test_power_model_does_not_count_a_trade_twice() -> None:
    m = PowerProb(2.0)
    q = m.new(10)
    m.trade(q, 4)
    assert q.ahead == 6 and q.traded == 4
    m.depth(q, 10, 6)  # the decrease is the trade's: no cancel
    assert q.ahead == 6 and q.traded == 0
    # A trade of 4 and a decrease of 6: 2 cancelled, front 6 and back 4 of the level of 10.
    m.trade(q, 4)
    m.depth(q, 6, 0)
    assert q.ahead == 0  # the level is gone


def test_power_model_cancels_beyond_what_is_behind_come_from_ahead() -> None:
    m = PowerProb(1.0)
    q = m.new(8)
    m.depth(q, 10, 1)  # 9 cancelled; p(behind) = 2/10: 7.2 of them ahead of us
    assert q.ahead == pytest.approx(0.8)
    q = m.new(2)
    m.depth(q, 10, 1)  # 9 cancelled, p(behind) = 0.8: 7.2 behind, but only 8 are there...
    assert q.ahead == pytest.approx(min(2 - 0.2 * 9 + min(8 - 0.8 * 9, 0), 1))  # 0.2
    q = m.new(5)
    m.depth(q, 6, 0)  # 6 cancelled, 1 behind: the level is gone, so is the queue
    assert q.ahead == 0


def test_growth_and_a_level_change_never_fill() -> None:
    for m in (RiskAverse(), PowerProb(2.0)):
        q = m.new(3)
        m.depth(q, 3, 10)
        assert q.ahead == 3
        m.depth(q, 10, 0)
        assert q.ahead == 0 and filled(q) == 0


def test_filled_rounds_to_whole_lots() -> None:
    assert filled(QueuePos(-2.5)) == 2
    assert filled(QueuePos(-0.3)) == 0
    assert filled(QueuePos(0.0)) == 0
    assert filled(QueuePos(4.0)) == 0
    assert filled(QueuePos(-3.0)) == 3


def test_make_model_and_bad_names() -> None:
    assert make_model("risk_averse").name == "risk_averse"
    assert make_model("power", 3).name == "power:3"
    with pytest.raises(ValueError, match="risk_averse, power"):
        make_model("fifo")
    with pytest.raises(ValueError, match="power"):
        make_model("power", 0)
    with pytest.raises(ValueError, match="power"):
        PowerProb(float("nan"))
