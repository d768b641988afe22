"""Queue position models: where our resting order stands in a level the tape only shows as a
total (docs/backtest.md, "Queue models").

A tape gives each price level's displayed size, not its orders. When our order starts resting
at a price, the size displayed there is ahead of it (``QueuePos.ahead``, lots). Then:

- a tape trade at our price takes the queue ahead first: ``trade(q, size)`` lowers ``ahead``;
  once it is below zero, what is left of the trade reached us (``filled``);
- the level's size going down by more than the trades there explain is cancellation
  (``depth(q, prev, new)``): the models differ on where those cancels were;
- the level growing puts the new orders behind us (``ahead`` never grows), ``ahead`` is
  never more than the level's size, and a change of the level's size alone never fills us
  (``ahead`` stays >= 0 there: only trades reach an order).

``RiskAverse``: cancels are never ahead of us (we only advance by trades, and by the level
shrinking below our position). ``PowerProb(n)``: a cancel is behind us with probability
``f(back) / (f(back) + f(front))``, ``f(x) = x ** n`` (front = the queue ahead, back = the
rest of the level), so the part of each decrease not explained by trades advances us by
``(1 - p)`` of it; n = 1 is the proportional split, larger n keeps the front of the queue
more stable. These are the estimators hftbacktest calls RiskAdverseQueueModel and
ProbQueueModel with PowerProbQueueFunc (after Rigtorp, "Estimating order queue position",
2013), written here for integer lots.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

__all__ = [
    "QUEUE_MODELS",
    "PowerProb",
    "QueueModel",
    "QueuePos",
    "RiskAverse",
    "filled",
    "make_model",
]


@dataclass(slots=True)
class QueuePos:
    """Our order's place in its level: lots ahead of it, and lots traded at the level since
    the level's size last changed (the part of the next decrease the trades explain)."""

    ahead: float
    traded: float = 0.0


class QueueModel(Protocol):
    """How a queue position moves (see the module doc)."""

    name: str

    def new(self, displayed: int) -> QueuePos:
        """The position of an order that starts resting where ``displayed`` lots show."""
        ...

    def trade(self, q: QueuePos, size: int) -> None:
        """A tape trade of ``size`` lots at the order's price."""
        ...

    def depth(self, q: QueuePos, prev: int, new: int) -> None:
        """The level's displayed size went from ``prev`` to ``new`` lots."""
        ...


def filled(q: QueuePos) -> int:
    """Lots that reached the order (0 while a queue is ahead of it); the caller fills them
    and puts the order at the front (``q.ahead = 0``)."""
    if q.ahead >= 0:
        return 0
    return math.floor(-q.ahead + 1e-9)


class RiskAverse:
    """Cancels never advance us: only trades at our price, and the level shrinking below the
    queue we thought was ahead."""

    name = "risk_averse"

    def new(self, displayed: int) -> QueuePos:
        return QueuePos(float(max(0, displayed)))

    def trade(self, q: QueuePos, size: int) -> None:
        q.ahead -= size

    def depth(self, q: QueuePos, prev: int, new: int) -> None:
        q.ahead = max(0.0, min(q.ahead, float(new)))


class PowerProb:
    """Cancels split between ahead of and behind us with ``f(x) = x ** n`` (module doc)."""

    def __init__(self, n: float = 2.0) -> None:
        if not (n > 0 and math.isfinite(n)):
            raise ValueError(f"the power of the queue model must be > 0, got {n!r}")
        self.n = float(n)
        self.name = f"power:{n:g}"

    def new(self, displayed: int) -> QueuePos:
        return QueuePos(float(max(0, displayed)))

    def trade(self, q: QueuePos, size: int) -> None:
        q.ahead -= size
        q.traded += size

    def prob_behind(self, front: float, back: float) -> float:
        """Probability that a cancel came from behind the order."""
        fb = math.pow(max(back, 0.0), self.n)
        ff = math.pow(max(front, 0.0), self.n)
        if fb + ff == 0.0:
            return 1.0  # nothing on either side: nothing to advance
        return fb / (fb + ff)

    def depth(self, q: QueuePos, prev: int, new: int) -> None:
        # The decrease the trades since the last change do not explain is cancellation.
        cancelled = (prev - new) - q.traded
        q.traded = 0.0
        if cancelled <= 0:  # grew (joined behind us), or the trades explain it all
            q.ahead = max(0.0, min(q.ahead, float(new)))
            return
        front = q.ahead
        back = prev - front
        p = self.prob_behind(front, back)
        # (1 - p) of it ahead of us; what the back cannot hold came from ahead too.
        est = front - (1.0 - p) * cancelled + min(back - p * cancelled, 0.0)
        q.ahead = max(0.0, min(est, float(new)))


QUEUE_MODELS = ("risk_averse", "power")


def make_model(name: str, power: float = 2.0) -> QueueModel:
    """``"risk_averse"`` or ``"power"`` (with ``power``); ValueError naming the choices."""
    if name == "risk_averse":
        return RiskAverse()
    if name == "power":
        return PowerProb(power)
    raise ValueError(f"queue model must be one of {', '.join(QUEUE_MODELS)}, not {name!r}")
