"""``stream_listener``: a ``WsStream`` listener from an object with only the hooks it needs.

``WsStream`` calls every ``StreamListener`` hook (stream up/down, subscribed, subscribe failed,
book, message, venue time, halt). A part of the connector (market data, account streams, order
entry) implements the ones its stream needs; ``stream_listener(part)`` gives the stream an
object whose hooks are the part's bound methods where it has them and a shared do-nothing
function elsewhere. The hooks are plain instance attributes: a frame reaches the part's method
with no extra call (what a method on the part's class would cost).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from mmfast.connector.lighter.ws import StreamListener

__all__ = ["HOOKS", "stream_listener"]

HOOKS: Final = (
    "on_stream_up",
    "on_stream_down",
    "on_subscribed",
    "on_subscribe_failed",
    "on_book",
    "on_message",
    "on_venue_time",
    "on_halt",
)


def _ignore(*args: Any) -> None:
    return None


def stream_listener(part: object) -> StreamListener:
    """The listener of a stream whose events go to ``part`` (hooks it lacks are ignored)."""
    hooks = {name: getattr(part, name, _ignore) for name in HOOKS}
    if all(h is _ignore for h in hooks.values()):
        raise TypeError(f"{type(part).__name__} has none of the stream hooks {HOOKS}")
    ns: Any = SimpleNamespace(**hooks)
    return ns  # type: ignore[no-any-return]
