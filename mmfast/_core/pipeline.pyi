"""Type stub of the compiled ``mmfast._core.pipeline`` (cython_src/mmfast/_core/pipeline.pyx)."""

from collections.abc import Callable
from typing import Final

from mmfast._core.book import OrderBook
from mmfast._core.gate import GateCore
from mmfast._core.quote import QuoteEngine
from mmfast.core.plan_types import ActionKind, PlannerParams
from mmfast.core.types import Order, Side
from mmfast.risk.limits import RiskReason

REFERENCES: Final[dict[str, int]]

Action = tuple[ActionKind, Side, int, int, int, Order | None, RiskReason, bool, bool]

class Pipeline:
    """The compiled step of one market: frame -> book -> quote -> plan -> risk gate."""

    book: OrderBook
    engine: QuoteEngine
    gate: GateCore
    last_trade_ref: int
    running: bool
    last_fill_ns: int
    fill_delay_ns: float
    version: int
    @property
    def n_out(self) -> int: ...
    @property
    def degrade(self) -> int: ...
    @property
    def deferred(self) -> int: ...
    @property
    def frames(self) -> int: ...
    @property
    def steps(self) -> int: ...
    @property
    def skipped(self) -> int: ...
    @property
    def errors(self) -> int: ...
    @property
    def last_error(self) -> BaseException | None: ...
    @property
    def seen_messages(self) -> int: ...
    def __init__(
        self,
        book: OrderBook,
        engine: QuoteEngine,
        gate: GateCore,
        params: PlannerParams,
        *,
        orders: dict[int, Order],
        modifying: dict[int, tuple[int, int, int]],
        calls: set[int],
        room: Callable[[], tuple[bool, int, int, int, int]] | None = None,
        in_flight: Callable[[], int] | None = None,
        reference: str = "mid",
        widen_ticks: int = 0,
        widen_asks: bool = True,
        ceiling: int = 0,
        floor: int = 0,
        fill_delay_s: float = 0.0,
        min_notional: int = 0,
    ) -> None: ...
    def set_params(self, params: PlannerParams) -> None: ...
    def on_frame(self, data: bytes, now_ns: int) -> int: ...
    def requote(self, now_ns: int, trigger_ns: int = 0) -> int: ...
    def action(self, i: int) -> Action: ...
    def target(self) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]: ...
    def drain_stages(self) -> list[tuple[int, int, int, int]]: ...
