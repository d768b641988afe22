"""``VenueOrders``: our live orders' price and size as the venue shows them.

The connector queues order txs and returns at once, and its order tracker keeps an order's
placed price and size (it applies status and fills from the venue, not a modified price). So
after a modify the strategy sets the ``Order`` to the values the venue will hold and tells this
class (``expect``); ``sync`` then checks our orders against the venue's order stream (the
market view's ``raw_orders``: order_index -> raw dict with ``price`` and
``remaining_base_amount`` as decimal text):

- a modify the stream shows is confirmed (the wait ends, the order is free again);
- a modify not shown within ``MODIFY_WAIT_NS`` no longer blocks its order (``busy_cois``), and
  the next ``sync`` restores the venue's values (the planner decides again);
- an order without a modify in flight takes the venue's price and size.

Cheap on the requote path (``sync`` runs before every requote pass): with a view that
counts the order messages (``orders_version``) a sync with no message since the last
one and no expired wait returns at once, and a raw price/size text unchanged since the last
sync is not parsed again. No per-order objects: the strategy's ``orders`` dict is read in place
and the ``Order`` objects are updated in place.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from mmfast._core.book import parse_decimal

if TYPE_CHECKING:
    from mmfast.core.market_view import MarketView
    from mmfast.core.types import Order
    from mmfast.risk.limits import MarketRules

__all__ = ["MODIFY_WAIT_NS", "VenueOrders"]

MODIFY_WAIT_NS: Final = 3_000_000_000  # a modify unseen by then no longer blocks its order


class VenueOrders:
    """Venue-order bookkeeping of one strategy/market (see the module doc).

    ``view`` is the market's ``MarketView`` (``raw_orders``, ``orders_version``); ``orders``
    is the strategy's dict of live orders (coi -> ``Order``), shared, read here; ``view`` and
    ``rules`` (the market's decimals) are set by the strategy once it knows them (until then
    ``sync`` changes nothing)."""

    __slots__ = (
        "_dirty",
        "_now_ns",
        "_seen",
        "_version",
        "market",
        "modifying",
        "orders",
        "rules",
        "view",
    )

    def __init__(
        self,
        view: MarketView | None,
        market: int,
        orders: dict[int, Order],
        *,
        now_ns: Callable[[], int],
        rules: MarketRules | None = None,
    ) -> None:
        self.view = view  # the market's raw venue orders and their version
        self.market = market  # the market of the orders
        self.orders = orders  # the strategy's live orders (coi -> Order), shared
        self.rules = rules  # price/size decimals of the raw text
        self._now_ns = now_ns  # monotonic ns (the modify waits)
        # coi -> (price, remaining, deadline ns) of a modify the venue has not shown yet.
        self.modifying: dict[int, tuple[int, int, int]] = {}
        # coi -> (venue price text, remaining text, price ticks, remaining lots): unchanged text
        # needs no decimal parsing on the next sync.
        self._seen: dict[int, tuple[Any, Any, int, int]] = {}
        # The view's orders_version at the last sync, and whether something of
        # ours changed since (a modify's wait ran out): no change, nothing to sync.
        self._version: int | None = None
        self._dirty = True

    def expect(self, coi: int, price: int, remaining: int, now_ns: int) -> None:
        """A modify of ``coi`` to ``price`` with ``remaining`` lots left went to the connector:
        the order is busy until the venue shows it (or ``MODIFY_WAIT_NS`` passes)."""
        self.modifying[coi] = (price, remaining, now_ns + MODIFY_WAIT_NS)

    def order_update(self, order: Order) -> None:
        """The order stream changed ``order``: a modify it now shows (or an order that ended)
        is no longer waited for."""
        modifying = self.modifying
        if modifying:
            coi = order.client_order_index
            pend = modifying.get(coi)
            if pend is not None and (
                order.status.is_terminal
                or (order.price_ticks == pend[0] and order.remaining_lots == pend[1])
            ):
                del modifying[coi]

    def busy_cois(self, busy: set[int]) -> set[int]:
        """``busy`` (calls in progress) plus the orders with a modify the venue has not shown,
        the waits that ran out dropped first (a lost update does not freeze an order)."""
        modifying = self.modifying
        if not modifying:
            return busy
        now = self._now_ns()
        for coi in [c for c, p in modifying.items() if p[2] <= now]:
            del modifying[coi]
            self._dirty = True  # the venue's values come back at the next sync
        return busy | modifying.keys() if modifying else busy

    def sync(self) -> bool:
        """Price and size of our live orders from the venue's order stream; an order with a
        modify not yet shown keeps its optimistic values until the stream shows the modify or
        the wait runs out. Nothing to do when no order message came since the last sync and
        no wait ran out. True when it changed an order's price or size."""
        view = self.view
        if view is None:
            return False
        version = view.orders_version
        if version is not None:
            if version == self._version and not self._dirty:
                return False  # no order message since the last sync and no wait ran out
            self._version, self._dirty = version, False
        raw_orders = view.raw_orders
        rules = self.rules
        if not raw_orders or rules is None:
            return False
        pd, sd = rules.price_decimals, rules.size_decimals
        orders, seen, modifying = self.orders, self._seen, self.modifying
        changed = False
        if len(seen) > 2 * len(orders) + 64:  # drop ended orders now and then
            for c in [c for c in seen if c not in orders]:
                del seen[c]
        for coi, o in orders.items():
            oi = o.order_index
            raw = raw_orders.get(oi) if oi is not None else None
            if raw is None:
                continue
            p_txt, r_txt = raw.get("price"), raw.get("remaining_base_amount")
            last = seen.get(coi)
            if last is not None and last[0] == p_txt and last[1] == r_txt:
                price, remaining = last[2], last[3]
            else:
                try:
                    price = parse_decimal(str(p_txt), pd)
                    remaining = parse_decimal(str(r_txt), sd)
                except ValueError:
                    continue
                seen[coi] = (p_txt, r_txt, price, remaining)
            pend = modifying.get(coi)
            if pend is not None:
                if price == pend[0] and remaining == pend[1]:
                    del modifying[coi]
                continue
            if price != o.price_ticks or remaining != o.remaining_lots:
                o.price_ticks = price
                o.size_lots = o.filled_lots + remaining
                changed = True
        return changed
