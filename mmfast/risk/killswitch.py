"""Kill switch: a state machine that pauses or stops trading when a run goes wrong.

Trips on drawdown from the PnL *peak* (fees and funding included), on fills per rolling minute,
on the reject rate of answered order txs, and on order txs per rolling minute. It decides in the
call that reports the breach (``update_pnl``, ``on_fill``, ...): the owner's ``on_trip(action,
reason)`` runs before that call returns, so the decision lands within the loop tick that saw the
event. ``evaluate(now)``, called every tick, ages the windows and resumes a pause once every
condition is clear and the cooldown has passed.

States: ARMED -> PAUSED (action pause: cancel all, keep running) -> ARMED (resumed) ...; any
-> STOPPED (action stop: exit; final). Money is micro-USDC (ints or exact Fractions).
Reference: docs/risk.md.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from fractions import Fraction
from typing import TYPE_CHECKING, Any, Final

from mmfast.core.types import Position

if TYPE_CHECKING:
    from mmfast.conf.schema import KillSwitchConfig

__all__ = [
    "KillAction",
    "KillState",
    "KillSwitch",
    "KillSwitchLimits",
    "TripReason",
    "total_pnl_micro",
]

MINUTE_NS: Final = 60_000_000_000
_MICRO: Final = 1_000_000


class KillAction(StrEnum):
    PAUSE = "pause"  # cancel all, keep running, resume when cleared
    STOP = "stop"  # cancel all and exit


class KillState(StrEnum):
    ARMED = "armed"  # trading allowed
    PAUSED = "paused"  # tripped with action pause; resumes when cleared
    STOPPED = "stopped"  # tripped with action stop (or stop()); final


class TripReason(StrEnum):
    DRAWDOWN = "drawdown"  # PnL fell max_drawdown below its peak
    FILL_RATE = "fill_rate"  # more than max_fills_per_min fills in a rolling minute
    REJECT_RATE = "reject_rate"  # rejected / answered above max_reject_rate in the window
    ORDER_RATE = "order_rate"  # more than max_order_txs_per_min order txs in a rolling minute
    MANUAL = "manual"  # trip() from an operator or another component


def total_pnl_micro(
    position: Position,
    mark_price: int,
    price_decimals: int,
    size_decimals: int,
    funding_micro: int = 0,
) -> Fraction:
    """Realized + unrealized PnL at ``mark_price`` minus fees plus funding, in micro-USDC.

    ``Position`` keeps PnL in tick x lot units and fees in micro-USDC; funding is received
    (> 0) or paid (< 0) in micro-USDC. Exact (a Fraction)."""
    ticklots = position.realized_pnl + position.unrealized_pnl(mark_price)
    scale = Fraction(_MICRO, 10 ** (price_decimals + size_decimals))
    return ticklots * scale - position.fees_paid + funding_micro


@dataclass(frozen=True, slots=True)
class KillSwitchLimits:
    """Kill switch thresholds. Money in micro-USDC, times in monotonic ns."""

    max_drawdown: int  # trips when peak PnL - PnL >= this (micro-USDC)
    max_fills_per_min: int = 60  # trips when a rolling minute holds more fills
    max_reject_rate: float = 0.5  # trips when rejected / answered exceeds this...
    reject_window_ns: int = MINUTE_NS  # ...over this window...
    reject_min_samples: int = 10  # ...with at least this many answers
    max_order_txs_per_min: int = 600  # trips when a rolling minute holds more order txs
    action: KillAction = KillAction.PAUSE  # what a trip does
    pause_cooldown_ns: int = 30_000_000_000  # least time paused before resuming

    def __post_init__(self) -> None:
        if self.max_drawdown <= 0:
            raise ValueError("max_drawdown must be > 0")
        if self.max_fills_per_min < 1 or self.max_order_txs_per_min < 1:
            raise ValueError("max_fills_per_min and max_order_txs_per_min must be >= 1")
        if not 0 < self.max_reject_rate <= 1:
            raise ValueError("max_reject_rate must be within (0, 1]")
        if self.reject_window_ns < 1 or self.reject_min_samples < 1:
            raise ValueError("reject_window_ns and reject_min_samples must be >= 1")
        if self.pause_cooldown_ns < 0:
            raise ValueError("pause_cooldown_ns must be >= 0")

    @classmethod
    def from_config(cls, ks: KillSwitchConfig) -> KillSwitchLimits:
        """From ``[risk.kill_switch]`` (USDC -> micro-USDC, seconds -> ns)."""
        return cls(
            max_drawdown=max(1, round(ks.max_drawdown_usdc * _MICRO)),
            max_fills_per_min=ks.max_fills_per_min,
            max_reject_rate=ks.max_reject_rate,
            reject_window_ns=round(ks.reject_window_s * 1e9),
            reject_min_samples=ks.reject_min_samples,
            max_order_txs_per_min=ks.max_order_txs_per_min,
            action=KillAction(ks.action),
            pause_cooldown_ns=round(ks.pause_cooldown_s * 1e9),
        )


OnTrip = Callable[[KillAction, TripReason], Any]
OnResume = Callable[[TripReason], Any]


class KillSwitch:
    """The kill switch of one strategy/market. All calls come from the loop thread."""

    __slots__ = (
        "_answers",
        "_fills",
        "_now_ns",
        "_on_resume",
        "_on_trip",
        "_sent",
        "last_breach_ns",
        "limits",
        "peak_pnl",
        "pnl",
        "reason",
        "state",
        "tripped_ns",
        "trips",
    )

    def __init__(
        self,
        limits: KillSwitchLimits,
        *,
        on_trip: OnTrip | None = None,
        on_resume: OnResume | None = None,
        now_ns: Callable[[], int] = time.monotonic_ns,
    ) -> None:
        self.limits = limits  # thresholds
        self._on_trip = on_trip  # called on ARMED -> PAUSED/STOPPED (and PAUSED -> STOPPED)
        self._on_resume = on_resume  # called on PAUSED -> ARMED
        self._now_ns = now_ns  # monotonic clock (injected)
        self._fills: deque[int] = deque()  # fill stamps within the last minute
        self._sent: deque[int] = deque()  # order tx stamps within the last minute
        self._answers: deque[tuple[int, bool]] = deque()  # (stamp, rejected) in the window
        self.state = KillState.ARMED  # current state
        self.reason: TripReason | None = None  # what tripped it (None while armed)
        self.tripped_ns = 0  # when it last tripped
        self.last_breach_ns = 0  # last time a condition was seen in breach (cooldown start)
        self.trips = 0  # trips so far
        self.pnl: Fraction | int | None = None  # last PnL reported
        self.peak_pnl: Fraction | int | None = None  # highest PnL reported

    def set_hooks(self, on_trip: OnTrip | None, on_resume: OnResume | None) -> None:
        """Replace both hooks (``None`` removes one): ``on_trip(action, reason)`` on ARMED ->
        PAUSED/STOPPED (and PAUSED -> STOPPED), ``on_resume(reason)`` on PAUSED -> ARMED. For
        an owner that gets a ready switch and reacts to it (a strategy)."""
        self._on_trip = on_trip
        self._on_resume = on_resume

    # --- inputs -----------------------------------------------------------------------------
    def update_pnl(self, pnl: int | Fraction, now_ns: int | None = None) -> KillState:
        """Total PnL now (micro-USDC, fees and funding included: see ``total_pnl_micro``)."""
        self.pnl = pnl
        if self.peak_pnl is None or pnl > self.peak_pnl:
            self.peak_pnl = pnl
        if self.drawdown >= self.limits.max_drawdown:
            self._breach(TripReason.DRAWDOWN, now_ns)
        return self.state

    def on_fill(self, now_ns: int | None = None) -> KillState:
        """One fill of ours."""
        now = self._now(now_ns)
        self._fills.append(now)
        if self._count(self._fills, now, MINUTE_NS) > self.limits.max_fills_per_min:
            self._breach(TripReason.FILL_RATE, now)
        return self.state

    def on_order_sent(self, n: int = 1, now_ns: int | None = None) -> KillState:
        """``n`` order txs (create, modify, cancel) handed to the venue."""
        now = self._now(now_ns)
        self._sent.extend([now] * n)
        if self._count(self._sent, now, MINUTE_NS) > self.limits.max_order_txs_per_min:
            self._breach(TripReason.ORDER_RATE, now)
        return self.state

    def on_order_result(self, rejected: bool, now_ns: int | None = None) -> KillState:
        """An order tx's answer: accepted/executed (False) or rejected by the venue (True).
        Unknown outcomes (timeouts) are not answers and are not reported here."""
        now = self._now(now_ns)
        self._answers.append((now, rejected))
        if self._reject_breached(now):
            self._breach(TripReason.REJECT_RATE, now)
        return self.state

    def trip(
        self,
        reason: TripReason = TripReason.MANUAL,
        action: KillAction | None = None,
        now_ns: int | None = None,
    ) -> KillState:
        """Trip now (``action`` defaults to the configured one). A MANUAL pause resumes only
        through ``resume()``."""
        self._trip(reason, action or self.limits.action, self._now(now_ns))
        return self.state

    # --- time ---------------------------------------------------------------------------------
    def evaluate(self, now_ns: int | None = None) -> KillState:
        """Age the windows; resume a pause when every condition is clear and the cooldown since
        the last breach has passed. Call once per tick."""
        now = self._now(now_ns)
        breach = self._current_breach(now)
        if breach is not None:
            self._breach(breach, now)
        elif (
            self.state is KillState.PAUSED
            and self.reason is not TripReason.MANUAL
            and now - self.last_breach_ns >= self.limits.pause_cooldown_ns
        ):
            self._resume()
        return self.state

    def resume(self) -> bool:
        """Operator resume of a pause (MANUAL included), when no condition is in breach."""
        if self.state is not KillState.PAUSED:
            return False
        if self._current_breach(self._now(None)) is not None:
            return False
        self._resume()
        return True

    def reset_peak(self) -> None:
        """Rebase the peak to the current PnL (an operator accepting the loss so far)."""
        self.peak_pnl = self.pnl

    # --- state --------------------------------------------------------------------------------
    @property
    def tripped(self) -> bool:
        """True while PAUSED or STOPPED: no new orders."""
        return self.state is not KillState.ARMED

    @property
    def drawdown(self) -> Fraction | int:
        """Peak PnL minus PnL now (0 before the first report)."""
        if self.pnl is None or self.peak_pnl is None:
            return 0
        return self.peak_pnl - self.pnl

    def status(self) -> dict[str, Any]:
        now = self._now(None)
        answers = [r for t, r in self._answers if t > now - self.limits.reject_window_ns]
        return {
            "state": self.state.value,
            "reason": None if self.reason is None else self.reason.value,
            "trips": self.trips,
            "pnl_micro": None if self.pnl is None else float(self.pnl),
            "peak_pnl_micro": None if self.peak_pnl is None else float(self.peak_pnl),
            "drawdown_micro": float(self.drawdown),
            "fills_last_min": self._count(self._fills, now, MINUTE_NS),
            "order_txs_last_min": self._count(self._sent, now, MINUTE_NS),
            "rejects": sum(answers),
            "answers": len(answers),
        }

    # --- internals ----------------------------------------------------------------------------
    def _now(self, now_ns: int | None) -> int:
        return self._now_ns() if now_ns is None else now_ns

    @staticmethod
    def _count(q: deque[int], now: int, window: int) -> int:
        edge = now - window
        while q and q[0] <= edge:
            q.popleft()
        return len(q)

    def _reject_breached(self, now: int) -> bool:
        q = self._answers
        edge = now - self.limits.reject_window_ns
        while q and q[0][0] <= edge:
            q.popleft()
        n = len(q)
        if n < self.limits.reject_min_samples:
            return False
        rejects = sum(1 for _, r in q if r)
        return rejects > self.limits.max_reject_rate * n

    def _current_breach(self, now: int) -> TripReason | None:
        lim = self.limits
        if self.pnl is not None and self.drawdown >= lim.max_drawdown:
            return TripReason.DRAWDOWN
        if self._count(self._fills, now, MINUTE_NS) > lim.max_fills_per_min:
            return TripReason.FILL_RATE
        if self._count(self._sent, now, MINUTE_NS) > lim.max_order_txs_per_min:
            return TripReason.ORDER_RATE
        if self._reject_breached(now):
            return TripReason.REJECT_RATE
        return None

    def _breach(self, reason: TripReason, now_ns: int | None) -> None:
        now = self._now(now_ns)
        self.last_breach_ns = now
        if self.state is KillState.ARMED:
            self._trip(reason, self.limits.action, now)

    def _trip(self, reason: TripReason, action: KillAction, now: int) -> None:
        if self.state is KillState.STOPPED:
            return
        if self.state is KillState.PAUSED and action is KillAction.PAUSE:
            self.last_breach_ns = now
            if reason is TripReason.MANUAL:
                self.reason = reason  # an operator's pause waits for resume()
            return
        self.state = KillState.STOPPED if action is KillAction.STOP else KillState.PAUSED
        self.reason = reason
        self.tripped_ns = self.last_breach_ns = now
        self.trips += 1
        if self._on_trip is not None:
            self._on_trip(action, reason)

    def _resume(self) -> None:
        reason = self.reason
        self.state = KillState.ARMED
        self.reason = None
        if self._on_resume is not None and reason is not None:
            self._on_resume(reason)
