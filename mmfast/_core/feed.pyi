from collections.abc import Callable
from typing import Any, final

from picows import WSFrame, WSListener, WSTransport

from mmfast._core.pipeline import Pipeline

__all__ = ["PICOWS_VERSION", "BookFeed"]

PICOWS_VERSION: str

@final
class BookFeed(WSListener):
    stream: Any
    gen: int
    fast: dict[int, tuple[Pipeline, Callable[[int, int], object]]] | None
    alive_until: int
    skew_every_ns: int
    last_ts_ns: int
    @property
    def fast_frames(self) -> int: ...
    @property
    def t_frame(self) -> int: ...
    def __init__(
        self,
        stream: Any,
        gen: int,
        fast: dict[int, tuple[Pipeline, Callable[[int, int], object]]] | None,
        skew_every_ns: int,
    ) -> None: ...
    def on_ws_frame(self, transport: WSTransport | None, frame: WSFrame) -> None: ...
    def on_ws_disconnected(self, transport: WSTransport) -> None: ...
    def send_user_specific_ping(self, transport: WSTransport) -> None: ...
    def is_user_specific_pong(self, frame: WSFrame) -> bool: ...
