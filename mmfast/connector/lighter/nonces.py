"""The nonce protocol (docs/order-entry.md) as a state machine owned by the loop thread.

Lighter checks nonces per (account, API key), strictly +1. A tx rejected at the API level
(HTTP 400, a non-200 WS ack, 21104 "invalid nonce") does *not* consume its nonce, so every later
tx already in flight fails too. The protocol:

* The loop assigns nonces in order as txs are queued (``submit`` -> ``dispatch(item, nonce)``),
  and sends them in that order.
* Each tx resolves as ``accepted`` (nonce consumed, whatever the sequencer does later),
  ``rejected`` (nonce not consumed: an API-level reject, a 21104, a signing failure, or a tx held
  back and never sent) or ``unknown`` (timeout or transport error: no answer).
* The first ``rejected`` blocks: nothing new gets a nonce (new submits are held, in order), every
  in-flight tx is left to resolve, then ONE refresh is requested from ``nextNonce`` (the injected
  async fetcher). The refresh releases, in order: the rejected txs still wanted (``still_wanted``
  decides; same item, so the same client_order_index, with a new nonce), then the held ones.
* ``require_refresh()`` after every reconnect: no signed send (``can_send`` is False) until the
  refresh is done. The caller resolves what was in flight on the old connection (usually
  ``unknown``) and holds back signed-but-unsent txs (``rejected(..., code=None)``).
* ``unknown`` txs do not block by themselves (if one never arrived, the next tx gets a 21104 and
  blocks). After a refresh each is settled through ``on_unknown_settled(item, nonce, consumed)``:
  consumed when ``nextNonce`` has passed its nonce. ``settle_unknown`` drops one early (the tx
  lookup by hash answered).

Skip-nonce recovery (``skip_lost=True``, off by default; docs/order-entry.md): when a block
ends with nothing in flight and nothing unknown, every nonce below ``next_nonce`` has the
venue's answer (accepted, refused) or never left this process, so none of those txs can still
land. Instead of fetching ``nextNonce``, the manager then releases at its own ``next_nonce``
and the first tx sent carries the skip-nonce attribute (``skip_due``): the venue jumps over the
lost nonces to it. A 21104 on that tx means the local view was wrong (another sender on the
key): the next refresh is a fetch, as are all refreshes after a reconnect or an unknown.

No timers here: a failed refresh calls ``on_refresh_failed(exc)`` and waits for
``retry_refresh()`` (the caller owns backoff and the rate budget). The fetcher runs as one task
per refresh (not per tx) on the loop.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from enum import IntEnum
from typing import Any, Generic, TypeVar

from mmfast._core.pipeline import SendRoom
from mmfast.core.errors import OrderError

__all__ = ["NonceError", "NonceManager", "NonceState"]

T = TypeVar("T")

_INVALID_NONCE = 21104  # the venue's "invalid nonce"


class NonceState(IntEnum):
    NEEDS_REFRESH = 0  # no trusted next nonce (start, reconnect, failed refresh)
    REFRESHING = 1  # the nextNonce fetch is running
    READY = 2  # nonces are assigned and txs may be sent
    BLOCKED = 3  # a reject happened: waiting for in-flight txs to resolve, then refresh


class NonceError(OrderError, RuntimeError):
    """A call that breaks the protocol (e.g. a bad nonce from the fetcher)."""


def _always(item: Any, code: int | None) -> bool:
    return True


class NonceManager(Generic[T]):
    """Assigns nonces to queued items and runs the reject / refresh / re-sign protocol.

    ``dispatch(item, nonce)`` is called (synchronously, in nonce order) whenever an item gets a
    nonce: from ``submit`` when READY, or on release after a refresh. It must not raise. Items
    are opaque to the manager (the caller's tx intents); the same item object is dispatched
    again on a re-sign.
    """

    __slots__ = (
        "_dispatch",
        "_fetch",
        "_held",
        "_in_flight",
        "_loop",
        "_on_refresh_failed",
        "_on_unknown_settled",
        "_retry",
        "_skip_at",
        "_skip_failed",
        "_skip_lost",
        "_skip_task",
        "_state",
        "_still_wanted",
        "_task",
        "_unknown",
        "blocks",
        "refresh_failures",
        "refreshes",
        "rejects",
        "room",
        "skips",
        "stray",
    )

    def __init__(
        self,
        fetch_next_nonce: Callable[[], Awaitable[int]],
        dispatch: Callable[[T, int], object],
        *,
        still_wanted: Callable[[T, int | None], bool] = _always,
        on_unknown_settled: Callable[[T, int, bool], object] | None = None,
        on_refresh_failed: Callable[[BaseException], object] | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
        room: SendRoom | None = None,
        skip_lost: bool = False,
    ) -> None:
        self._fetch = fetch_next_nonce  # async () -> the venue's nextNonce
        self._dispatch = dispatch  # (item, nonce): hand the item to the signer
        self._still_wanted = still_wanted  # (item, reject code): re-sign after the refresh?
        self._on_unknown_settled = on_unknown_settled  # (item, nonce, consumed)
        self._on_refresh_failed = on_refresh_failed  # (exception) after a failed fetch
        self._loop = loop  # where the fetch task runs (default: the running loop)
        self._state = NonceState.NEEDS_REFRESH  # protocol state
        # The next nonce to assign (-1: unknown) lives in the SendRoom, where a compiled step
        # takes one for the tx it sends itself (``adopt`` then books it here).
        self.room = room if room is not None else SendRoom()
        self.room.next_nonce = -1
        self._in_flight: dict[int, T] = {}  # nonce -> item, assigned and not yet resolved
        self._held: deque[T] = deque()  # submitted while not READY, FIFO
        self._retry: list[tuple[int, T, int | None]] = []  # (old nonce, item, code) rejected
        self._unknown: dict[int, T] = {}  # nonce -> item whose outcome is unknown
        self._task: asyncio.Task[None] | None = None  # the running refresh
        self.refreshes = 0  # successful refreshes
        self.refresh_failures = 0  # failed fetches
        self.rejects = 0  # txs resolved as rejected
        self.blocks = 0  # times READY turned BLOCKED
        self.stray = 0  # resolutions for nonces not in flight (ignored)
        self._skip_lost = skip_lost  # end a block with skip-nonce instead of a fetch, if safe
        self._skip_at = -1  # the nonce to send with skip-nonce (-1: none)
        self._skip_failed = False  # a skip tx got 21104: fetch at the next refresh
        self._skip_task = False  # the running "refresh" is a skip release, not a fetch
        self.skips = 0  # blocks ended with skip-nonce instead of a fetch

    def _publish(self) -> None:
        """Readiness and pending count into the SendRoom (after every change of either)."""
        r = self.room
        # While a skip-nonce is due, the nonce goes through ``submit`` (whose dispatch signs
        # the attribute), never to a compiled step that signs without it.
        r.nonce_ready = (
            self._state is NonceState.READY and not self._held and self._skip_at != r.next_nonce
        )
        r.pending = len(self._held) + len(self._in_flight)

    # ------------------------------------------------------------------ queries
    @property
    def state(self) -> NonceState:
        return self._state

    @property
    def can_send(self) -> bool:
        """True only while READY: signed txs may be written to the venue."""
        return self._state is NonceState.READY

    @property
    def next_nonce(self) -> int | None:
        """The next nonce to assign (None before the first refresh)."""
        return self.room.next_nonce if self.room.next_nonce >= 0 else None

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    @property
    def held(self) -> int:
        return len(self._held)

    @property
    def unknown_count(self) -> int:
        return len(self._unknown)

    def skip_due(self, nonce: int) -> bool:
        """Whether the tx dispatched at ``nonce`` must carry the skip-nonce attribute."""
        return nonce == self._skip_at

    def in_flight_items(self) -> list[tuple[int, T]]:
        """(nonce, item) of every unresolved tx, in nonce order."""
        return sorted(self._in_flight.items(), key=lambda kv: kv[0])

    def __repr__(self) -> str:
        return (
            f"NonceManager(state={self._state.name}, next={self.next_nonce},"
            f" in_flight={len(self._in_flight)}, held={len(self._held)},"
            f" unknown={len(self._unknown)}, refreshes={self.refreshes}, skips={self.skips})"
        )

    # ------------------------------------------------------------------ submit
    def submit(self, item: T) -> int | None:
        """Give ``item`` the next nonce and dispatch it (READY), or hold it. Returns the nonce."""
        if self._state is not NonceState.READY:
            self._held.append(item)
            self._maybe_refresh()
            return None
        nonce = self.room.next_nonce
        self.room.next_nonce = nonce + 1
        self._in_flight[nonce] = item
        self._publish()
        self._dispatch(item, nonce)
        return nonce

    def adopt(self, nonce: int, item: T) -> None:
        """``item`` holds a nonce a compiled step took from the room itself (while the room
        said READY): it is in flight from now on. Called before anything else runs."""
        if (
            nonce in self._in_flight
            or nonce >= self.room.next_nonce
            or self._state is not NonceState.READY
        ):
            raise NonceError(f"adopt: nonce {nonce} was not taken while READY")
        self._in_flight[nonce] = item
        self._publish()

    def give_back(self, nonce: int) -> None:
        """A nonce taken from the room went unused (signing failed): the next tx gets it."""
        if nonce != self.room.next_nonce - 1 or nonce in self._in_flight:
            raise NonceError(f"give_back: nonce {nonce} is not the last one taken")
        self.room.next_nonce = nonce

    # ------------------------------------------------------------------ resolutions
    def accepted(self, nonce: int) -> T | None:
        """The venue accepted the tx (HTTP 200 / WS ack 200): its nonce is consumed."""
        item = self._in_flight.pop(nonce, None)
        if item is None:
            self.stray += 1
            return None
        self._maybe_refresh()
        return item

    def rejected(self, nonce: int, code: int | None = None, *, retry: bool = True) -> T | None:
        """The nonce was not consumed: API-level reject (``code``), 21104, signing failure, or
        never sent (``code`` None). Blocks assignment until in-flight txs resolve and a refresh
        is done; the item is re-dispatched after it if ``retry`` and ``still_wanted``."""
        item = self._in_flight.pop(nonce, None)
        if item is None:
            self.stray += 1
            return None
        self.rejects += 1
        if code == _INVALID_NONCE and nonce == self._skip_at:
            self._skip_failed = True  # the venue's nonce is not what we inferred: fetch
        if retry:
            self._retry.append((nonce, item, code))
        if self._state is NonceState.READY:
            self._state = NonceState.BLOCKED
            self.blocks += 1
        self._maybe_refresh()
        return item

    def unknown(self, nonce: int) -> T | None:
        """No answer (timeout, transport error): settled after the next refresh, or earlier by
        ``settle_unknown``. Does not block by itself."""
        item = self._in_flight.pop(nonce, None)
        if item is None:
            self.stray += 1
            return None
        self._unknown[nonce] = item
        self._maybe_refresh()
        return item

    def settle_unknown(self, nonce: int) -> T | None:
        """Forget an unknown tx whose outcome is known another way (tx lookup by hash)."""
        return self._unknown.pop(nonce, None)

    # ------------------------------------------------------------------ refresh
    def require_refresh(self) -> None:
        """After a reconnect: no send and no new nonce until nextNonce has been fetched again."""
        if self._state is NonceState.REFRESHING:
            if not self._skip_task:
                return  # nothing is in flight during a refresh, so its answer stays valid
            # A skip release not run yet: after a reconnect the venue is asked instead.
            task, self._task, self._skip_task = self._task, None, False
            if task is not None:
                task.cancel()
        self._state = NonceState.NEEDS_REFRESH
        self._maybe_refresh()

    def retry_refresh(self) -> bool:
        """Start a refresh now if one is due and possible (after a failure). True if started."""
        return self._maybe_refresh()

    def _maybe_refresh(self) -> bool:
        started = self._start_refresh()
        self._publish()
        return started

    def _start_refresh(self) -> bool:
        state = self._state
        if state is NonceState.READY or state is NonceState.REFRESHING:
            return False
        if self._in_flight or self._task is not None:
            return False
        loop = self._loop if self._loop is not None else asyncio.get_running_loop()
        # Skip only out of a block (never after a reconnect or at start), with every assigned
        # nonce answered (no unknown tx: it may still land) and no failed skip since the last
        # fetch. The release runs as a task, like a fetch, not inside the reject that blocked.
        skip = (
            self._skip_lost
            and state is NonceState.BLOCKED
            and not self._unknown
            and not self._skip_failed
            and self.room.next_nonce >= 0
        )
        self._state = NonceState.REFRESHING
        self._skip_task = skip
        self._task = loop.create_task(self._refresh(skip))
        return True

    async def _refresh(self, skip: bool = False) -> None:
        if skip:
            self._task = None
            self._skip_task = False
            self.skips += 1
            self._skip_at = self.room.next_nonce
            self._release(self._skip_at)
            return
        try:
            value = await self._fetch()
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise NonceError(f"nextNonce fetcher returned {value!r}, not an int >= 0")
        except BaseException as exc:
            self._task = None
            self._state = NonceState.NEEDS_REFRESH
            self._publish()
            self.refresh_failures += 1
            if self._on_refresh_failed is not None:
                self._on_refresh_failed(exc)
            if not isinstance(exc, Exception):
                raise
            return
        self._task = None
        self.refreshes += 1
        self._skip_failed = False
        self._skip_at = -1
        self._release(value)

    def _release(self, next_nonce: int) -> None:
        self.room.next_nonce = next_nonce
        self._state = NonceState.READY
        self._publish()
        unknown, self._unknown = self._unknown, {}
        if unknown and self._on_unknown_settled is not None:
            for nonce in sorted(unknown):
                self._on_unknown_settled(unknown[nonce], nonce, nonce < next_nonce)
        retry, self._retry = self._retry, []
        retry.sort(key=lambda r: r[0])
        again = [item for _, item, code in retry if self._still_wanted(item, code)]
        held, self._held = self._held, deque()
        # submit() re-checks the state per item: a dispatch that rejects synchronously blocks
        # again and the rest are held for the next refresh, in order.
        for item in again:
            self.submit(item)
        for item in held:
            self.submit(item)

    def close(self) -> None:
        """Cancel a running refresh (shutdown)."""
        task, self._task = self._task, None
        self._skip_task = False
        if task is not None:
            task.cancel()
        if self._state is NonceState.REFRESHING:
            self._state = NonceState.NEEDS_REFRESH
        self._publish()
