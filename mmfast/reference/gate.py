"""The risk gate in pure Python: the twin of the compiled ``mmfast._core.gate.GateCore``.

``check_order`` (the rules, in ``mmfast.risk.limits``) plus the order-rate cap on an injected
monotonic clock and denial counters by reason. Tests and benchmarks only: the property test
holds the compiled gate to it (tests/unit/test_gate_props.py).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from mmfast.core.types import Order, Side
from mmfast.risk.limits import MarketRules, RiskLimits, RiskReason, RiskState, check_order

__all__ = ["RiskGate"]


class RiskGate:
    """The gate of one market: ``check_order`` plus the order-rate cap and denial counters.

    ``admit`` is the call made right before an order tx is queued for signing: it checks and,
    when allowed, records the send in the rate window. ``check`` has no side effect.
    """

    __slots__ = ("_now_ns", "_sends", "admitted", "denials", "limits", "rules", "state")

    def __init__(
        self,
        limits: RiskLimits,
        rules: MarketRules,
        state: RiskState | None = None,
        *,
        now_ns: Callable[[], int] = time.monotonic_ns,
    ) -> None:
        self.limits = limits  # current limits (replace to change)
        self.rules = rules  # the market's order rules
        self.state = RiskState() if state is None else state  # what the rules read
        self._now_ns = now_ns  # monotonic clock (injected: tests drive it)
        self._sends: deque[int] = deque()  # ns stamps of admitted sends within the window
        self.admitted = 0  # orders admitted
        self.denials: dict[RiskReason, int] = {}  # denials by reason

    def sends_in_window(self, now_ns: int | None = None) -> int:
        """Sends recorded within the rate window ending now."""
        self._prune(self._now_ns() if now_ns is None else now_ns)
        return len(self._sends)

    def _prune(self, now: int) -> None:
        edge = now - self.limits.order_rate_window_ns
        sends = self._sends
        while sends and sends[0] <= edge:
            sends.popleft()

    def check(
        self,
        side: Side,
        price: int,
        size: int,
        *,
        reduce_only: bool = False,
        modify_of: Order | None = None,
        now_ns: int | None = None,
    ) -> RiskReason:
        """Every rule, rate cap included, without recording anything."""
        reason = check_order(
            side,
            price,
            size,
            self.state,
            self.limits,
            self.rules,
            reduce_only=reduce_only,
            modify_of=modify_of,
        )
        if reason:
            return reason
        if self.sends_in_window(now_ns) + 1 > self.limits.order_rate_cap:
            return RiskReason.ORDER_RATE
        return RiskReason.OK

    def admit(
        self,
        side: Side,
        price: int,
        size: int,
        *,
        reduce_only: bool = False,
        modify_of: Order | None = None,
    ) -> RiskReason:
        """``check``; when OK, record the send (rate window, counters); else count the denial."""
        now = self._now_ns()  # one clock read for the window check and the record
        reason = self.check(
            side, price, size, reduce_only=reduce_only, modify_of=modify_of, now_ns=now
        )
        if reason:
            self.denials[reason] = self.denials.get(reason, 0) + 1
            return reason
        self._sends.append(now)
        self.admitted += 1
        return RiskReason.OK

    def admit_order(self, order: Order) -> RiskReason:
        """``admit`` for a new ``Order`` (PENDING_NEW, not yet counted in the state)."""
        return self.admit(
            order.side, order.price_ticks, order.size_lots, reduce_only=order.reduce_only
        )

    def record_send(self, now_ns: int | None = None) -> None:
        """Count a send that bypassed ``admit`` (e.g. a re-sign of an admitted order) in the
        rate window."""
        self._sends.append(self._now_ns() if now_ns is None else now_ns)
