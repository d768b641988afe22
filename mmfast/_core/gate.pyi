"""Pre-trade risk gate of one market, compiled: the twin of ``mmfast.risk.limits.RiskGate``.

Same rules, order and reasons; the state lives in public C fields that Python sets. Products
beyond 64/128 bits are checked by the Python gate's ``check_order`` on a copy of the state.
"""

from collections.abc import Iterable, Mapping
from typing import final

from mmfast.core.types import Order
from mmfast.risk.limits import MarketRules, RiskLimits, RiskReason, RiskState

@final
class GateCore:
    position_lots: int
    open_orders: int
    open_bid_lots: int
    open_ask_lots: int
    unreported_bid_lots: int
    unreported_ask_lots: int
    mark_price: int
    market_state: int  # a MarketState value
    book_in_sync: bool
    connector_ready: bool
    kill_switch_tripped: bool
    has_margin: bool
    available_micro: int
    portfolio_micro: int
    @property
    def admitted(self) -> int: ...
    def __init__(self, limits: RiskLimits, rules: MarketRules) -> None: ...
    @property
    def limits(self) -> RiskLimits: ...
    @property
    def rules(self) -> MarketRules: ...
    def set_limits(self, limits: RiskLimits) -> None: ...
    def set_orders(
        self,
        orders: Iterable[Order],
        intents: Mapping[int, tuple[int, int, int]] | None = None,
        now_ns: int = 0,
    ) -> None: ...
    def set_margin(self, available_micro: int | None, portfolio_micro: int = 0) -> None: ...
    def state_view(self) -> RiskState: ...
    def check(
        self,
        side: int,
        price: int,
        size: int,
        *,
        reduce_only: bool = False,
        is_modify: bool = False,
        now_ns: int = 0,
    ) -> RiskReason: ...
    def admit(
        self,
        side: int,
        price: int,
        size: int,
        *,
        reduce_only: bool = False,
        is_modify: bool = False,
        now_ns: int = 0,
    ) -> RiskReason: ...
    def record_send(self, now_ns: int) -> None: ...
    def sends_in_window(self, now_ns: int) -> int: ...
    @property
    def denials(self) -> dict[RiskReason, int]: ...
