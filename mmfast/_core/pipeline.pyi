"""Type stub of the compiled ``mmfast._core.pipeline`` (cython_src/mmfast/_core/pipeline.pyx)."""

from collections.abc import Callable
from typing import Any, Final, TypeAlias, final

from mmfast._core.book import OrderBook
from mmfast._core.gate import GateCore
from mmfast._core.quote import QuoteEngine
from mmfast.core.plan_types import ActionKind, PlannerParams
from mmfast.core.types import Order, Side
from mmfast.risk.limits import RiskReason

REFERENCES: Final[dict[str, int]]

# What action(i) returns (a stub-only name: the module has no such attribute).
_Action: TypeAlias = tuple[ActionKind, Side, int, int, int, Order | None, RiskReason, bool, bool]

@final
class SendRoom:
    """What order entry, its nonce manager and the rate budget publish for compiled steps."""

    next_nonce: int
    nonce_ready: bool
    entry_ok: bool
    ws_ok: bool
    usable: bool
    sendtx_used: int
    sendtx_cap: int
    ws_used: int
    ws_cap: int
    pending: int
    inflight_cap: int
    expiry_ms: int
    watched: bool
    def __init__(self, inflight_cap: int = 16, expiry_ms: int = 599_000) -> None: ...
    def set_inflight(self, market: int, n: int) -> None: ...
    def in_flight(self, market: int) -> int: ...
    def order_room(self) -> tuple[bool, int, int, int, int]: ...

@final
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
    @property
    def order_reads(self) -> int: ...
    @property
    def direct_i(self) -> int: ...
    @property
    def direct_nonce(self) -> int: ...
    @property
    def direct_expired_at(self) -> int: ...
    @property
    def direct_info(self) -> str | None: ...
    @property
    def direct_hash(self) -> str: ...
    @property
    def direct_sent(self) -> bool: ...
    @property
    def direct_sends(self) -> int: ...
    @property
    def warms(self) -> int: ...
    @property
    def warm_plans(self) -> int: ...
    @property
    def warm_directs(self) -> int: ...
    @property
    def warm_scans(self) -> int: ...
    @property
    def t_entry(self) -> int: ...
    @property
    def t_ready(self) -> int: ...
    @property
    def t_signed(self) -> int: ...
    @property
    def t_sent(self) -> int: ...
    def __init__(
        self,
        book: OrderBook,
        engine: QuoteEngine,
        gate: GateCore,
        params: PlannerParams,
        *,
        orders: dict[int, Order],
        intents: dict[int, tuple[int, int, int]],
        calls: set[int],
        room: Callable[[], tuple[bool, int, int, int, int]] | SendRoom | None = None,
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
    def attach_sender(self, sender: Any) -> None: ...
    def on_frame(self, data: bytes, now_ns: int) -> int: ...
    def requote(self, now_ns: int, trigger_ns: int = 0) -> int: ...
    def warm(self, now_ns: int) -> bool:
        """The step's reading half again on the last step's inputs, and the direct path's
        signer warmed, acting on nothing (``[run] warm_us``); False when nothing ran."""
    def action(self, i: int) -> _Action: ...
    def target(self) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]: ...
    def drain_stages(self) -> list[tuple[int, int, int, int]]: ...
