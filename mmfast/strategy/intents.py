"""``ModifyIntents``: the modifies of a strategy's orders that the venue has not shown yet.

Order truth has one owner: the connector's order tracker. Its ``Order`` objects (shared with
the strategy through ``OrderUpdated``) carry the venue's status, fills, price and size, taken
from the venue's order stream with stale guards. A modify goes out asynchronously (the
connector queues the tx and returns), so between the call and the venue's message the order
has two values: the venue's (still in the ``Order``) and the one the strategy asked for. The
strategy keeps the second here, never in the shared ``Order`` (a message older than the modify
would overwrite an optimistic value there, and nothing else would know it was a guess):

- ``pending``: coi -> (price, size, deadline ns) of a modify not shown yet, ``size`` being the
  order's total size as the modify sets it (lots filled then + the new remaining, invariant
  under later fills, as the tracker's ``size_lots``);
- a modify is confirmed when the tracker's ``Order`` shows that price and size (or the order
  ends), and no longer waited for after ``MODIFY_WAIT_NS`` (a lost message or a refused modify
  does not freeze an order; the venue's values then stand);
- while pending, the order is busy (nothing else is sent for it) and what the planners and the
  risk gate read is the expected order: the intent's price and remaining (``expected``), with
  the open lots the larger of the two remainings (the venue may hold either until it shows
  the modify).

The planners (``mmfast._core.plan``, the compiled step, ``mmfast.reference.planner``) read
``pending`` directly (an ``intents`` argument), so this dict is the only copy.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from mmfast.core.types import Order

__all__ = ["MODIFY_WAIT_NS", "ModifyIntents"]

MODIFY_WAIT_NS: Final = 3_000_000_000  # a modify unseen by then no longer blocks its order


class ModifyIntents:
    """The pending modifies of one strategy/market (see the module doc)."""

    __slots__ = ("_now_ns", "pending")

    def __init__(self, *, now_ns: Callable[[], int]) -> None:
        self._now_ns = now_ns  # monotonic ns (the waits)
        # coi -> (price ticks, total size lots, deadline ns) of a modify not shown yet.
        self.pending: dict[int, tuple[int, int, int]] = {}

    def expect(self, order: Order, price: int, remaining: int, now_ns: int) -> None:
        """A modify of ``order`` to ``price`` with ``remaining`` lots left went to the
        connector: the order is busy until the venue shows it (or ``MODIFY_WAIT_NS`` passes)."""
        self.pending[order.client_order_index] = (
            price,
            order.filled_lots + remaining,
            now_ns + MODIFY_WAIT_NS,
        )

    def order_update(self, order: Order) -> bool:
        """The tracker changed ``order``: a modify it now shows, or an order that ended, is
        no longer waited for. True when an intent ended."""
        pending = self.pending
        if pending:
            pend = pending.get(order.client_order_index)
            if pend is not None and (
                order.status.is_terminal
                or (order.price_ticks == pend[0] and order.size_lots == pend[1])
            ):
                del pending[order.client_order_index]
                return True
        return False

    def expire(self, now_ns: int) -> bool:
        """Drop the waits that ran out by ``now_ns``; True when one did (the orders' venue
        values stand again: a compiled step must read them anew)."""
        pending = self.pending
        if not pending:
            return False
        gone = [c for c, p in pending.items() if p[2] <= now_ns]
        for coi in gone:
            del pending[coi]
        return bool(gone)

    def busy_cois(self, busy: set[int]) -> set[int]:
        """``busy`` (calls in progress) plus the orders with a modify the venue has not shown,
        the waits that ran out dropped first."""
        pending = self.pending
        if not pending:
            return busy
        self.expire(self._now_ns())
        return busy | pending.keys() if pending else busy

    def expected(self, order: Order) -> tuple[int, int]:
        """(price, remaining) of ``order`` as the strategy expects it: a pending modify's,
        else the venue's."""
        pend = self.pending.get(order.client_order_index)
        if pend is None:
            return order.price_ticks, order.remaining_lots
        return pend[0], max(0, pend[1] - order.filled_lots)
