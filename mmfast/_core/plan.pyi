"""Compiled requote planner: target ladder vs live orders -> keep / modify / cancel / create.

Same signature, rules and output as the pure-Python twin ``mmfast.reference.planner`` (held equal
by tests/unit/test_planner_props.py); the rules: ``mmfast.strategy.planner``, docs/risk.md
("Requote planner"). Inputs the compiled path does not take (more than ``MAX_PER_SIDE`` levels or
orders on a side, ints beyond its int64 bounds, fields that are not exact ints, orders that are
not ``Order`` or parameters that are not ``PlannerParams`` instances, a ``busy``/``no_create``
that is not a list, tuple, set, frozenset or dict) are planned by the twin, before the budget is
read: same plan, Python speed.
"""

from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Final

from mmfast.core.plan_types import Plan, PlannerParams, RateBudget
from mmfast.core.types import Order, Side

MAX_PER_SIDE: Final[int]  # 64: most levels, and most orders, per side planned in C

def plan_requotes(
    bids: Sequence[tuple[int, int]],
    asks: Sequence[tuple[int, int]],
    live: Iterable[Order],
    *,
    now_ns: int,
    params: PlannerParams = ...,
    inflight: int = 0,
    budget: RateBudget = ...,
    position_lots: int = 0,
    busy: Collection[int] = (),
    no_create: Collection[Side] = (),
    intents: Mapping[int, tuple[int, int, int]] | None = None,
) -> Plan:
    """Plan the txs that move ``live`` toward the target ladder.

    ``bids``/``asks``: target levels ``(price_ticks, size_lots)``, best first (e.g.
    ``QuoteEngine.bids()``). ``live``: our orders of this market (any status; terminal and
    PENDING_CANCEL ones are ignored). ``inflight``: order txs of this market already in
    flight. ``busy``: client order indexes with a tx in flight (e.g. a modify not yet acked).
    ``position_lots`` picks the side kept in ONE_SIDE mode. ``no_create``: sides on which no
    new order may be created now (e.g. the filled-order delay); modifies and cancels still go.
    ``intents``: modifies the venue has not shown yet (coi -> (price, total size, deadline
    ns)): until its deadline such an order is planned at the price and remaining it will have.
    ``params`` defaults to ``PlannerParams()``, ``budget`` to ``UNLIMITED``.
    """
