"""One Lighter WebSocket connection on picows: subscriptions, liveness, reconnect, budget.

Hot path: picows calls ``on_ws_frame`` on the loop thread; an order-book frame goes straight
into the compiled book (``OrderBook.apply_frame`` on the raw bytes), anything else is decoded
once with orjson and dispatched. No task or future is created per frame.

* **Liveness** is idle-based: picows' automatic ping fires after ``ping_idle_s`` without any
  incoming data and sends Lighter's JSON ``{"type":"ping"}``; a ``{"type":"pong"}`` must come
  within ``pong_timeout_s`` or the connection is closed. A quiet market is not a dead socket.
  The server's JSON pings are answered with a pong.
* **Budget**: every client frame (subscribe, unsubscribe, ping, pong) draws from the shared
  ``RateBudget``; subscribes and unsubscribes stay "in flight" until answered.
* **Subscriptions** have a first-frame deadline (``snapshot_deadline_s``): no snapshot or first
  frame in time means unsubscribe + subscribe. ``resubscribe(key)`` does the same on demand
  (a nonce gap, a crossed book).
* **Roll-over** (make before break): the venue drops a connection after 24 h. At ``max_age_s``
  a successor connection is opened and subscribed while the current one goes on; each channel
  moves to the successor with its first frame there (a book with its snapshot: from then on the
  old connection's frames of that channel are dropped), and once every channel has moved the
  successor becomes the current connection and the old one is closed after ``drain_s`` (answers
  to what was sent on it still count). No "down" in between: the book stays in sync and the
  quotes stay up. ``rollover_ready`` (order entry: nothing awaiting an answer) gates the switch
  of a connection without subscriptions. A successor that does not get every channel within
  twice the snapshot deadline is closed and the roll-over retried later.
* **Keepalive out**: the venue also drops a connection whose client sent nothing for 2 minutes;
  a JSON ping goes out after ``send_idle_s`` without a frame sent.
* **Reconnect** with jittered exponential backoff (``backoff_min_s`` .. ``backoff_max_s``), then
  every subscription again. A connection that never became live (every subscription answered)
  counts as a failure; after ``max_connect_failures`` consecutive ones the stream halts with a
  ``StreamHalted`` error.

Every timer and wait uses the injected TimeSource (picows' ping timers are given real seconds,
``seconds / time.scale``), so tests run in simulated time.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING, Any, Protocol

import orjson
from picows import WSCloseCode, WSListener, WSMsgType, WSTransport, ws_connect

from mmfast._core.book import NOT_BOOK, BookError, OrderBook
from mmfast.connector.lighter.budget import BudgetExhausted, Priority, RateBudget
from mmfast.core.errors import ExchangeError
from mmfast.core.log import get_logger
from mmfast.core.timesource import REAL_TIME, RealTime, TimeSource

try:  # the compiled listener, built against the installed picows
    from mmfast._core.feed import BookFeed
except ImportError:  # another picows than the one it was built for: the Python listener
    BookFeed = None  # type: ignore[assignment, misc]

if TYPE_CHECKING:
    from mmfast.connector.lighter.stall import StallWatch

__all__ = ["StreamHalted", "StreamListener", "StreamState", "Subscription", "WsStream"]

_log = get_logger("connector.ws")

PING = b'{"type":"ping"}'
PONG = b'{"type":"pong"}'
_BOOK_TAG = b"order_book:"
_TS_TAG = b'"timestamp":'
# Frames up to this size are read (and counted if malformed) rather than closing the socket.
MAX_FRAME_BYTES = 16 * 1024 * 1024
_TEXT = WSMsgType.TEXT
_BINARY = WSMsgType.BINARY
_CLOSE = WSMsgType.CLOSE


class StreamState(IntEnum):
    IDLE = 0
    CONNECTING = 1
    SUBSCRIBING = 2  # connected, waiting for every subscription's first frame
    LIVE = 3
    BACKOFF = 4
    HALTED = 5
    STOPPED = 6


class StreamHalted(ExchangeError, RuntimeError):
    """Too many consecutive connection failures: the stream gave up."""


@dataclass(frozen=True, slots=True)
class Subscription:
    """A channel: ``channel`` as subscribed ("order_book/0"), ``key`` as frames name it
    ("order_book:0"); ``private`` ones carry an auth token."""

    channel: str
    private: bool = False

    @property
    def key(self) -> str:
        kind, _, rest = self.channel.partition("/")
        return f"{kind}:{rest.replace('/', ':')}" if rest else kind

    @property
    def kind(self) -> str:
        return self.channel.partition("/")[0]


class StreamListener(Protocol):
    """What the connector hears from a stream (all called on the loop thread)."""

    def on_stream_up(self, stream: WsStream) -> None: ...
    def on_stream_down(self, stream: WsStream, reason: str) -> None: ...
    def on_subscribed(self, stream: WsStream, key: str) -> None: ...
    def on_subscribe_failed(self, stream: WsStream, key: str, code: int, message: str) -> None: ...
    def on_book(self, stream: WsStream, market: int, code: int, now_ns: int) -> None: ...
    def on_message(self, stream: WsStream, msg: dict[str, Any], now_ns: int) -> None: ...
    def on_venue_time(self, venue_ms: int) -> None: ...
    def on_halt(self, stream: WsStream, error: StreamHalted) -> None: ...


class _Listener(WSListener):
    """picows listener of one connection; forwards to the stream."""

    def __init__(self, stream: WsStream, gen: int) -> None:
        super().__init__()
        self.stream = stream  # owner
        self.gen = gen  # connection generation (frames of an old connection are ignored)

    def on_ws_frame(self, transport: WSTransport, frame: Any) -> None:
        self.stream._on_frame(self, transport, frame)

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self.stream._on_disconnected(self)

    def send_user_specific_ping(self, transport: WSTransport) -> None:
        self.stream._send_ping(transport)

    def is_user_specific_pong(self, frame: Any) -> bool:
        return frame.payload_size < 64 and b'"pong"' in frame.get_payload_as_bytes()


class WsStream:
    """One reconnecting WebSocket connection carrying a set of subscriptions."""

    def __init__(
        self,
        name: str,
        url: str,
        subscriptions: Sequence[Subscription],
        listener: StreamListener,
        budget: RateBudget,
        *,
        books: dict[int, OrderBook] | None = None,
        token: Callable[[], Awaitable[str]] | None = None,
        time: TimeSource = REAL_TIME,
        rng: random.Random | None = None,
        snapshot_deadline_s: float = 3.0,
        ping_idle_s: float = 2.5,
        pong_timeout_s: float = 2.0,
        connect_timeout_s: float = 5.0,
        backoff_min_s: float = 0.25,
        backoff_max_s: float = 30.0,
        max_connect_failures: int = 10,
        skew_sample_interval_s: float = 0.5,
        max_age_s: float = 0.0,
        drain_s: float = 2.0,
        send_idle_s: float = 60.0,
        rollover_ready: Callable[[], bool] | None = None,
    ) -> None:
        if pong_timeout_s > ping_idle_s:
            raise ValueError("pong_timeout_s must be <= ping_idle_s (picows)")
        self.name = name
        self.url = url
        self.subscriptions = {s.key: s for s in subscriptions}
        self._listener = listener
        self._budget = budget
        self.books = books if books is not None else {}
        # market -> a compiled step that applies that market's book frames itself and plans
        # on them (a strategy's ``on_frame(data, now_ns) -> book code``); else apply_frame.
        self.steps: dict[int, Callable[[bytes, int], int]] = {}
        # market -> (Pipeline, after(code, now_ns)): the same step, taken by the compiled
        # listener (``mmfast._core.feed.BookFeed``) on the frame's bytes with no Python call
        # before it; the Python path (``steps``) serves whatever that listener hands back.
        self.fast: dict[int, tuple[Any, Callable[[int, int], object]]] = {}
        self._feed: Any = None  # the current connection's BookFeed (None: Python listener)
        self._standby_feed: Any = None  # a roll-over successor's BookFeed, until the switch
        self._compiled_before = 0  # frames the BookFeeds of earlier connections took
        # The loop's stall watch: a frame that finds the loop stalled reports it first.
        self.watch: StallWatch | None = None
        self._token = token
        self._time = time
        self._rng = rng or random.Random()
        self._snapshot_deadline_s = snapshot_deadline_s
        self._ping_idle_s = ping_idle_s
        self._pong_timeout_s = pong_timeout_s
        self._connect_timeout_s = connect_timeout_s
        self._backoff_min_s = backoff_min_s
        self._backoff_max_s = backoff_max_s
        self._max_failures = max_connect_failures
        self._skew_interval_ns = int(skew_sample_interval_s * 1e9)
        self._max_age_s = max_age_s  # roll over at this connection age (0: never)
        self._drain_s = drain_s  # the old connection stays open this long after a roll-over
        self._send_idle_ns = int(send_idle_s * 1e9)  # ping when nothing was sent this long
        self._last_sent_ns = 0
        self.rollover_ready = rollover_ready
        self.state = StreamState.IDLE
        self.halt_error: StreamHalted | None = None
        self._task: asyncio.Task[None] | None = None
        self._transport: WSTransport | None = None
        self._gen = 0
        self._last_gen = 0  # the newest generation handed out
        # A roll-over: the successor's generation (0: none), the channels that moved to it
        # (key -> its generation) and its answered keys; after the switch the predecessor's
        # generation while it drains (0: none).
        self._next_gen = 0
        self._owner: dict[str, int] = {}
        self._next_acked: set[str] = set()
        self._next_done: asyncio.Event | None = None
        self._next_failed = ""
        self._next_transport: WSTransport | None = None
        self._prev_gen = 0
        self._pending: dict[str, int] = {}  # key -> requests in flight (subscribe/unsubscribe)
        self._acked: set[str] = set()  # keys whose first frame arrived on this connection
        self._deadlines: dict[str, asyncio.TimerHandle] = {}
        self._resubscribing: set[str] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._last_skew_ns = -(1 << 62)  # last skew sample (none yet)
        self._stopping = False
        self._was_live = False  # the current/last connection reached LIVE
        # counters
        self.failures = 0  # consecutive failed connects
        self.connects = 0  # connections opened
        self.disconnects = 0  # connections lost
        self.frames = 0  # frames received
        self.malformed = 0  # frames that were not valid JSON objects or broke a book's rules
        self.handler_errors = 0  # exceptions caught in frame handling
        self.resubscribes = 0  # unsubscribe+subscribe cycles
        self.deadline_misses = 0  # subscriptions with no first frame by the deadline
        self.pings_sent = 0
        self.pongs_sent = 0
        self.rollovers = 0  # connections replaced before the venue's lifetime
        self.rollovers_abandoned = 0  # successors closed without taking over
        self.keepalive_skipped = 0  # pings/pongs not sent for lack of budget
        self.subscribes_sent = 0
        self.errors_received = 0  # venue error frames
        self.last_frame_ns = 0  # TimeSource monotonic ns of the last frame
        self.last_down_reason = ""
        self.down_log: list[tuple[int, int]] = []  # (disconnect ns, last frame ns) per drop

    # --- lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        if self._task is None:
            self._stopping = False
            self._task = asyncio.get_running_loop().create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        self._stopping = True
        self.state = StreamState.STOPPED
        for t in (self._transport, self._next_transport):
            if t is not None and not t.is_disconnected:
                t.send_close(WSCloseCode.OK)
                t.disconnect()
        for task in [self._task, *self._tasks]:
            if task is not None and not task.done():
                task.cancel()
        for task in [self._task, *self._tasks]:
            if task is not None:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._task = None
        self._clear_timers()

    @property
    def connected(self) -> bool:
        return self._transport is not None and not self._transport.is_disconnected

    @property
    def live(self) -> bool:
        return self.state is StreamState.LIVE

    @property
    def generation(self) -> int:
        """The current connection's number (frames of older connections are ignored)."""
        return self._gen

    def send_text(self, data: bytes) -> bool:
        """Write one text frame on the current connection; False if it is not connected."""
        t = self._transport
        if t is None or t.is_disconnected:
            return False
        t.send(_TEXT, data)
        self._last_sent_ns = self._time.monotonic_ns()
        return True

    def disconnect(self, reason: str = "requested") -> None:
        """Drop the current connection (the run loop reconnects)."""
        t = self._transport
        if t is not None and not t.is_disconnected:
            self.last_down_reason = reason
            t.disconnect(graceful=False)

    # --- the run loop -----------------------------------------------------------------------
    def backoff_s(self, failures: int) -> float:
        """Uniform in [base/2, base], base = min(max, min * 2**(failures-1))."""
        base = min(self._backoff_max_s, self._backoff_min_s * 2.0 ** max(0, failures - 1))
        return base / 2 + self._rng.random() * base / 2

    async def _run(self) -> None:
        try:
            while not self._stopping:
                if self.failures >= self._max_failures:
                    self._halt()
                    return
                if self.connects or self.failures:
                    self.state = StreamState.BACKOFF
                    await self._time.sleep(self.backoff_s(max(1, self.failures)))
                    if self._stopping:
                        return
                became_live = await self._session()
                if not became_live:
                    self.failures += 1
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # never expected: make it a halt, loudly
            _log.exception("%s: run loop failed", self.name)
            self.halt_error = StreamHalted(f"{self.name}: run loop failed: {exc!r}")
            self.state = StreamState.HALTED
            self._listener.on_halt(self, self.halt_error)

    def _halt(self) -> None:
        self.state = StreamState.HALTED
        self.halt_error = StreamHalted(
            f"{self.name}: {self.failures} consecutive connection failures to {self.url} "
            f"(last: {self.last_down_reason or 'n/a'}); giving up"
        )
        _log.error("%s", self.halt_error)
        self._listener.on_halt(self, self.halt_error)

    async def _session(self) -> bool:
        """One connection: connect, subscribe, run until it drops. True if it became live."""
        self.state = StreamState.CONNECTING
        self._was_live = False
        self._last_gen += 1
        self._gen = gen = self._last_gen
        try:
            transport = await self._connect(gen, standby=False)
        except (TimeoutError, OSError, Exception) as exc:
            self.last_down_reason = f"connect failed: {type(exc).__name__}"
            _log.debug("%s: %s", self.name, self.last_down_reason)
            return False
        if transport.is_disconnected:  # refused or reset during the handshake
            self.last_down_reason = "connection closed during the handshake"
            return False
        self._transport = transport
        self.connects += 1
        self._acked.clear()
        self._pending.clear()
        self.last_frame_ns = self._last_sent_ns = self._time.monotonic_ns()
        self.state = StreamState.SUBSCRIBING
        if not self.subscriptions:  # a connection with nothing to subscribe (order entry)
            self.state = StreamState.LIVE
            self._was_live = True
            self.failures = 0
        self._listener.on_stream_up(self)
        try:
            for key in list(self.subscriptions):
                if transport.is_disconnected:
                    break
                await self._subscribe(key, gen)
        except BudgetExhausted as exc:
            self.last_down_reason = str(exc)
            transport.disconnect(graceful=False)
        except Exception as exc:  # token failure and the like: drop and retry with backoff
            self.last_down_reason = f"subscribe failed: {type(exc).__name__}"
            _log.warning("%s: %s", self.name, self.last_down_reason)
            transport.disconnect(graceful=False)
        transport = await self._watch(transport)
        if self._transport is transport:  # picows did not report it: clean up here
            self._cleanup_disconnect()
        return self.state is StreamState.LIVE or self._was_live

    async def _connect(self, gen: int, standby: bool) -> WSTransport:
        scale = self._time.scale
        transport, _ = await asyncio.wait_for(
            ws_connect(
                lambda: self._new_listener(gen, standby),
                self.url,
                # picows times the idle ping on the host's clock: on a virtual clock (a backtest,
                # the venue in this process) its pings would go out at host-dependent moments.
                # The JSON ping after send_idle_s without a send stays (the TimeSource's).
                enable_auto_ping=not getattr(self._time, "virtual", False),
                auto_ping_idle_timeout=self._ping_idle_s / scale,
                auto_ping_reply_timeout=self._pong_timeout_s / scale,
                enable_auto_pong=True,
                disconnect_on_exception=False,
                websocket_handshake_timeout=self._connect_timeout_s / scale,
                max_frame_size=MAX_FRAME_BYTES,
                logger_name=f"mmfast.{self.name}",
            ),
            self._connect_timeout_s / scale,
        )
        return transport

    async def _watch(self, transport: WSTransport) -> WSTransport:
        """Until the current connection drops: pings when nothing was sent for a while, and
        a roll-over at ``max_age_s``. Returns the connection that dropped (the last one, after
        roll-overs)."""
        scale = self._time.scale
        born = self._time.monotonic_ns()
        gone = asyncio.ensure_future(transport.wait_disconnected())
        try:
            while True:
                now = self._time.monotonic_ns()
                wake = self._last_sent_ns + self._send_idle_ns if self._send_idle_ns else 0
                due = born + int(self._max_age_s * 1e9) if self._max_age_s > 0 else 0
                nxt = min(x for x in (wake, due, now + 3_600_000_000_000) if x)
                await asyncio.wait({gone}, timeout=max(0, nxt - now) / 1e9 / scale)
                if gone.done() or self._stopping:
                    return transport
                now = self._time.monotonic_ns()
                if self._send_idle_ns and now - self._last_sent_ns >= self._send_idle_ns:
                    self._send_ping(transport)
                if due and now >= due:
                    new = await self._roll_over(transport)
                    if new is transport:  # not this time: again a while later
                        born += int(max(self._snapshot_deadline_s * 4, 1.0) * 1e9)
                    else:
                        gone.cancel()
                        transport, born = new, self._time.monotonic_ns()
                        gone = asyncio.ensure_future(transport.wait_disconnected())
        finally:
            gone.cancel()

    # --- roll-over (make before break) --------------------------------------------------------
    async def _roll_over(self, old: WSTransport) -> WSTransport:
        """Open a successor, move every channel to it, make it current and close ``old``
        after the drain. Returns the current connection (``old`` if it did not happen)."""
        self._last_gen += 1
        nxt = self._next_gen = self._last_gen
        self._owner.clear()
        self._next_acked = set()
        self._next_failed = ""
        done = self._next_done = asyncio.Event()
        new: WSTransport | None = None
        try:
            new = await self._connect(nxt, standby=True)
            if new.is_disconnected:
                raise ConnectionError("closed during the handshake")
            self._next_transport = new
            for key in list(self.subscriptions):
                await self._subscribe(key, nxt, new, arm=False)
            if not self.subscriptions:
                done.set()
            limit = self._time.monotonic_ns() + int(self._snapshot_deadline_s * 2e9)
            scale = self._time.scale
            while not (done.is_set() and (self.rollover_ready is None or self.rollover_ready())):
                if self._next_failed or new.is_disconnected or old.is_disconnected:
                    raise ConnectionError(self._next_failed or "a connection dropped")
                left = limit - self._time.monotonic_ns()
                if left <= 0:
                    raise TimeoutError("the successor did not get every channel in time")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(done.wait(), min(left / 1e9, 0.01) / scale)
        except Exception as exc:
            self.rollovers_abandoned += 1
            _log.info("%s: roll-over abandoned: %s: %s", self.name, type(exc).__name__, exc)
            moved = [k for k, g in self._owner.items() if g == nxt]
            for key in self.subscriptions:
                if key not in self._next_acked:
                    self._answered(key)  # the successor's request, never answered
            self._end_roll_over()
            self._standby_feed = None
            feed = self._feed
            if feed is not None and feed.gen == self._gen:
                feed.fast = self.fast  # the compiled path again for the current connection
            if new is not None and not new.is_disconnected:
                new.disconnect(graceful=False)
            for key in moved:  # those follow the old connection again: a fresh snapshot
                self._acked.discard(key)
                self.resubscribe(key)
            return old
        # The switch: the successor is current, the old connection drains, then closes.
        prev = self._gen
        self._gen, self._transport = nxt, new
        self._acked = set(self._next_acked)
        self._end_roll_over()
        feed = self._feed
        if feed is not None and isinstance(feed, BookFeed) and feed.gen == prev:
            feed.fast = None
            self._compiled_before += feed.fast_frames
            if self.watch is not None and feed in self.watch.feeds:
                self.watch.feeds.remove(feed)
            self._feed = None
        succ = self._standby_feed
        self._standby_feed = None
        if succ is not None:
            succ.fast = self.fast
            if self.watch is not None:
                self.watch.feeds.append(succ)
                succ.alive_until = self.watch.last_ns + self.watch.stall_ns
            self._feed = succ
        self._prev_gen = prev
        self.rollovers += 1
        self._last_sent_ns = self._time.monotonic_ns()
        _log.info("%s: rolled over to a new connection", self.name)
        self._time.call_later(self._drain_s, self._close_prev, old, prev)
        return new

    def _end_roll_over(self) -> None:
        self._next_gen = 0
        self._owner.clear()
        self._next_acked = set()
        self._next_transport = None
        self._next_done = None

    def _close_prev(self, old: WSTransport, gen: int) -> None:
        if self._prev_gen == gen:
            self._prev_gen = 0
        if not old.is_disconnected:
            old.send_close(WSCloseCode.OK)
            old.disconnect()

    def _moved(self, key: str, gen: int) -> None:
        """Channel ``key``'s first frame on the successor ``gen``: it follows that one now."""
        if self._owner.get(key) == gen:
            return
        self._owner[key] = gen
        self._answered(key)
        self._next_acked.add(key)
        feed = self._feed
        if feed is not None and feed.gen == self._gen:
            feed.fast = None  # the current connection's book frames: checked in Python now
        if self._next_done is not None and len(self._next_acked) >= len(self.subscriptions):
            self._next_done.set()

    # --- subscriptions ------------------------------------------------------------------------
    async def _subscribe(
        self, key: str, gen: int, transport: WSTransport | None = None, arm: bool = True
    ) -> None:
        """Subscribe ``key`` on connection ``gen`` (the current one, or ``transport``: a
        roll-over's successor, whose deadline is the roll-over's own: ``arm`` False)."""
        sub = self.subscriptions[key]
        # A roll-over's subscribes keep the quotes up: they may use the reserve, within the
        # roll-over's own deadline.
        await self._budget.acquire(
            self._budget.WS_REQUEST,
            Priority.NORMAL if arm else Priority.RESERVED,
            timeout_s=self._backoff_max_s * 2 if arm else self._snapshot_deadline_s,
        )
        t = transport if transport is not None else self._transport
        if gen not in (self._gen, self._next_gen) or t is None or t.is_disconnected:
            self._budget.release_inflight()
            return
        msg: dict[str, Any] = {"type": "subscribe", "channel": sub.channel}
        if sub.private:
            if self._token is None:
                self._budget.release_inflight()
                raise RuntimeError(f"{sub.channel} needs an auth token")
            msg["auth"] = await self._token()
            if gen not in (self._gen, self._next_gen) or t.is_disconnected:
                self._budget.release_inflight()
                return
        self._pending[key] = self._pending.get(key, 0) + 1
        t.send(_TEXT, orjson.dumps(msg))
        del msg  # holds the token
        self._last_sent_ns = self._time.monotonic_ns()
        self.subscribes_sent += 1
        if arm:
            self._arm_deadline(key)

    def _arm_deadline(self, key: str) -> None:
        old = self._deadlines.pop(key, None)
        if old is not None:
            old.cancel()
        self._deadlines[key] = self._time.call_later(
            self._snapshot_deadline_s, self._deadline_fired, key, self._gen
        )

    def _deadline_fired(self, key: str, gen: int) -> None:
        self._deadlines.pop(key, None)
        if gen != self._gen or key in self._acked or not self.connected:
            return
        self.deadline_misses += 1
        # Whatever was in flight for this key is taken as lost.
        lost = self._pending.pop(key, 0)
        self._budget.release_inflight(lost)
        _log.debug(
            "%s: no first frame on %s within %.2fs: resubscribing",
            self.name,
            key,
            self._snapshot_deadline_s,
        )
        self.resubscribe(key)

    def resubscribe(self, key: str) -> None:
        """Unsubscribe + subscribe ``key`` (e.g. a book gap): a fresh snapshot follows."""
        if key in self._resubscribing or not self.connected or self._stopping:
            return
        self._acked.discard(key)
        self._resubscribing.add(key)
        task = asyncio.get_running_loop().create_task(self._resubscribe(key, self._gen))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _resubscribe(self, key: str, gen: int) -> None:
        try:
            sub = self.subscriptions[key]
            await self._budget.acquire(
                self._budget.WS_REQUEST, Priority.NORMAL, timeout_s=self._backoff_max_s * 2
            )
            if gen != self._gen or not self.connected:
                self._budget.release_inflight()
                return
            assert self._transport is not None
            self._pending[key] = self._pending.get(key, 0) + 1
            self._transport.send(
                _TEXT, orjson.dumps({"type": "unsubscribe", "channel": sub.channel})
            )
            self.resubscribes += 1
            await self._subscribe(key, gen)
        except BudgetExhausted:
            self.disconnect("no budget to resubscribe")
        except Exception as exc:
            _log.warning("%s: resubscribe %s failed: %s", self.name, key, type(exc).__name__)
            self.disconnect("resubscribe failed")
        finally:
            self._resubscribing.discard(key)

    def _answered(self, key: str) -> None:
        n = self._pending.get(key, 0)
        if n:
            self._budget.release_inflight()
            if n == 1:
                del self._pending[key]
            else:
                self._pending[key] = n - 1

    def _first_frame(self, key: str) -> None:
        self._acked.add(key)
        t = self._deadlines.pop(key, None)
        if t is not None:
            t.cancel()
        if self.state is StreamState.SUBSCRIBING and len(self._acked) >= len(self.subscriptions):
            self.state = StreamState.LIVE
            self._was_live = True
            self.failures = 0
        self._listener.on_subscribed(self, key)

    def is_subscribed(self, key: str) -> bool:
        """The first frame of ``key`` arrived on the current connection."""
        return key in self._acked

    # --- keepalive ------------------------------------------------------------------------------
    def _send_ping(self, transport: WSTransport) -> None:
        if self._budget.try_acquire(self._budget.WS_MESSAGE, Priority.RESERVED):
            transport.send(_TEXT, PING)
            self.pings_sent += 1
            if transport is self._transport:
                self._last_sent_ns = self._time.monotonic_ns()
        else:
            self.keepalive_skipped += 1

    def _send_pong(self, transport: WSTransport | None = None) -> None:
        """Answer a ping on the connection it came on (the current one by default)."""
        t = transport if transport is not None else self._transport
        if t is None or t.is_disconnected:
            return
        if self._budget.try_acquire(self._budget.WS_MESSAGE, Priority.RESERVED):
            t.send(_TEXT, PONG)
            self.pongs_sent += 1
            if t is self._transport:
                self._last_sent_ns = self._time.monotonic_ns()
        else:
            self.keepalive_skipped += 1
            wait = self._budget.wait_s(self._budget.WS_MESSAGE, Priority.RESERVED)
            if wait < self._backoff_max_s:
                self._time.call_later(wait, self._send_pong, t)

    # --- frames (hot path) ------------------------------------------------------------------------
    def _new_listener(self, gen: int, standby: bool = False) -> Any:
        """The listener of connection ``gen``: the compiled one for a book stream on the
        host's clock when it is built, else the Python one. ``standby``: a roll-over's
        successor, its frames through the Python path until it takes over."""
        if standby:
            if BookFeed is None or not self.books or not isinstance(self._time, RealTime):
                return _Listener(self, gen)
            self._standby_feed = BookFeed(self, gen, None, self._skew_interval_ns)
            return self._standby_feed
        old = self._feed
        if old is not None:
            old.fast = None  # the old connection's frames: the Python path, which drops them
            self._compiled_before += old.fast_frames
            if self.watch is not None and old in self.watch.feeds:
                self.watch.feeds.remove(old)
            self._feed = None
        if BookFeed is None or not self.books or not isinstance(self._time, RealTime):
            return _Listener(self, gen)
        feed = BookFeed(self, gen, self.fast, self._skew_interval_ns)
        if self.watch is not None:
            self.watch.feeds.append(feed)
            feed.alive_until = self.watch.last_ns + self.watch.stall_ns
        self._feed = feed
        return feed

    def _after_book(self, market: int, code: int, now: int, snapped: bool, ts: int) -> None:
        """The compiled listener applied a book frame of ``market`` (and ran its step; ``ts``:
        the frame's venue time when a skew sample was due, else -1): the rest of what
        ``_on_frame`` does for one."""
        self.frames += 1
        self.last_frame_ns = now
        try:
            if ts > 0:
                self._venue_time(ts, now)
            self._book_done(market, code, now, snapped)
        except Exception:
            self._handler_error()

    def _after_other(self, data: bytes, now: int) -> None:
        """A frame the compiled listener found to be no book message: dispatched as usual."""
        self.frames += 1
        self.last_frame_ns = now
        try:
            self._dispatch(data, now)
        except Exception:
            self._handler_error()

    def _book_done(self, market: int, code: int, now: int, snapped: bool) -> None:
        """A book frame of ``market`` applied (``snapped``: a snapshot): the subscription
        answered, the listener told."""
        if snapped:
            key = f"order_book:{market}"
            self._answered(key)
            if key not in self._acked:
                self._first_frame(key)
        self._listener.on_book(self, market, code, now)

    def _handler_error(self) -> None:
        self.handler_errors += 1
        _log.debug("%s: frame handler error", self.name, exc_info=True)

    def _on_frame(self, listener: _Listener, transport: WSTransport, frame: Any) -> None:
        if listener.gen != self._gen:
            if listener.gen == self._next_gen or listener.gen == self._prev_gen:
                self._other_frame(listener.gen, transport, frame)
            return
        mt = frame.msg_type
        if mt is not _TEXT and mt is not _BINARY:
            if mt is _CLOSE:
                self.last_down_reason = f"server close {frame.get_close_code()}"
                transport.send_close(frame.get_close_code())
                transport.disconnect()
            return
        now = self._time.monotonic_ns()
        watch = self.watch
        if watch is not None and now - watch.last_ns > watch.stall_ns:
            watch.check(now)  # the first frame after a stall: reported before it is used
        self.frames += 1
        self.last_frame_ns = now
        try:
            data = frame.get_payload_as_bytes()
            i = data.find(_BOOK_TAG)
            if i >= 0:
                market = _int_at(data, i + 11)
                book = self.books.get(market) if market >= 0 else None
                if self._owner and f"order_book:{market}" in self._owner:
                    return  # moved to the roll-over's successor
                if book is not None:
                    snaps = book.snapshots
                    code = self._apply(book, market, data, now)
                    if code is None:
                        return
                    if code != NOT_BOOK:
                        if now - self._last_skew_ns >= self._skew_interval_ns:
                            self._sample_time(data, now)
                        self._book_done(market, code, now, book.snapshots != snaps)
                        return
            self._dispatch(data, now)
        except Exception:
            self._handler_error()

    def _apply(self, book: OrderBook, market: int, data: bytes, now: int) -> int | None:
        """A book frame into ``market``'s book (through its compiled step when it has one):
        the book's code, or None for a frame that broke the book's rules (counted)."""
        step = self.steps.get(market) if self.steps else None
        try:
            return book.apply_frame(data) if step is None else step(data, now)
        except BookError:
            self.malformed += 1
            return None

    def _sample_time(self, data: bytes, now: int) -> None:
        i = data.find(_TS_TAG)
        if i >= 0:
            ts = _int_at(data, i + len(_TS_TAG))
            if ts > 1_000_000_000_000:  # epoch ms
                self._venue_time(ts, now)

    def _venue_time(self, ts: int, now: int) -> None:
        self._last_skew_ns = now
        self._listener.on_venue_time(ts)

    def _other_frame(self, gen: int, transport: WSTransport, frame: Any) -> None:
        """A frame of a roll-over's successor (``gen == _next_gen``: a channel moves to it
        with its first frame there, a book with its snapshot) or of the predecessor draining
        after the switch (answers to what was sent on it; its channels are gone)."""
        mt = frame.msg_type
        if mt is not _TEXT and mt is not _BINARY:
            if mt is _CLOSE:
                transport.send_close(frame.get_close_code())
                transport.disconnect()
                if gen == self._next_gen:
                    self._next_failed = f"server close {frame.get_close_code()}"
            return
        now = self._time.monotonic_ns()
        try:
            data = frame.get_payload_as_bytes()
            i = data.find(_BOOK_TAG)
            if i >= 0:
                market = _int_at(data, i + 11)
                key = f"order_book:{market}"
                book = self.books.get(market) if market >= 0 else None
                if gen != self._next_gen or book is None or key not in self.subscriptions:
                    return
                if self._owner.get(key) != gen:
                    if b'"subscribed/' not in data:
                        return  # a delta before the successor's snapshot: the old one has it
                    self._moved(key, gen)
                self.frames += 1
                code = self._apply(book, market, data, now)
                if code is not None and code != NOT_BOOK:
                    self._listener.on_book(self, market, code, now)
                return
            self._dispatch(data, now, transport, gen)
        except Exception:
            self._handler_error()

    def _dispatch(
        self, data: bytes, now: int, transport: WSTransport | None = None, gen: int = 0
    ) -> None:
        """One non-book frame; ``gen``: a roll-over's successor or draining predecessor
        (0: the current connection)."""
        try:
            msg = orjson.loads(data)
        except orjson.JSONDecodeError:
            self.malformed += 1
            return
        if not isinstance(msg, dict):
            self.malformed += 1
            return
        typ = msg.get("type")
        if not isinstance(typ, str):
            if isinstance(msg.get("error"), dict):  # {"error": {"code", "message"}}
                self._on_error(msg["error"])
            else:
                self.malformed += 1
            return
        if typ == "ping":
            self._send_pong(transport)
            return
        if typ in ("pong", "connected"):
            return
        channel = msg.get("channel")
        if (gen or self._owner) and self._roll_frame(msg, typ, channel, gen, now):
            return
        if typ == "error":
            self._on_error(msg)
            return
        if typ == "shutdown":
            self.disconnect("server shutdown")
            return
        ts = msg.get("timestamp")
        if (
            type(ts) is int
            and ts > 1_000_000_000_000
            and typ.endswith(("/market_stats", "/user_stats", "/order_book"))
            and now - self._last_skew_ns >= self._skew_interval_ns
        ):
            self._listener.on_venue_time(ts)
        if typ.startswith("unsubscribed/"):
            if isinstance(channel, str):
                self._answered(channel)
            return
        if isinstance(channel, str) and channel in self.subscriptions:
            if typ.startswith("subscribed/"):
                self._answered(channel)
                if channel not in self._acked:
                    self._first_frame(channel)
            elif channel not in self._acked:
                return  # an update before the subscription's first frame: not ours yet
            self._listener.on_message(self, msg, now)
            return
        if typ.startswith(("subscribed/", "update/")) and channel is None:
            self.malformed += 1
            return
        self._listener.on_message(self, msg, now)

    def _roll_frame(self, msg: dict[str, Any], typ: str, channel: Any, gen: int, now: int) -> bool:
        """During a roll-over: True if the frame was handled here (taken for the successor or
        dropped), False if it goes on as a frame of the current connection."""
        owned = isinstance(channel, str) and channel in self._owner
        if gen == 0:  # the current connection: its frames of moved channels are dropped
            return owned
        if gen != self._next_gen:  # the draining predecessor: answers only, no channel
            return isinstance(channel, str) and channel in self.subscriptions
        if typ == "error":
            if isinstance(channel, str) and channel in self.subscriptions:
                self._answered(channel)
                self._next_failed = f"venue error {msg.get('code')} on {channel}"
            return True
        if not (isinstance(channel, str) and channel in self.subscriptions):
            return True  # nothing else is expected on a successor
        if not owned:
            if not typ.startswith("subscribed/"):
                return True  # an update before its first frame: the old connection has it
            self._moved(channel, gen)
        self.frames += 1
        self._listener.on_message(self, msg, now)
        return True

    def _on_error(self, err: dict[str, Any]) -> None:
        self.errors_received += 1
        code = err.get("code")
        code = code if type(code) is int else -1
        message = str(err.get("message", ""))[:200]
        channel = err.get("channel")
        if code in (30009, 30010, 23000):  # too many messages / in flight / requests
            self._budget.on_rate_limited("ws_msgs")
        if isinstance(channel, str) and channel in self.subscriptions:
            self._answered(channel)
            if code == 30003:  # already subscribed: resync via unsubscribe + subscribe
                self._acked.discard(channel)
                self.resubscribe(channel)
                return
            if channel not in self._acked:
                self._listener.on_subscribe_failed(self, channel, code, message)
        else:
            _log.debug("%s: venue error %s %s", self.name, code, message)

    def _on_disconnected(self, listener: _Listener) -> None:
        if listener.gen == self._next_gen:
            self._next_failed = "the successor dropped"
            return
        if listener.gen != self._gen or self._transport is None:
            return
        self._cleanup_disconnect()

    def _cleanup_disconnect(self) -> None:
        now = self._time.monotonic_ns()
        self.disconnects += 1
        self.down_log.append((now, self.last_frame_ns))
        if len(self.down_log) > 10_000:
            del self.down_log[:5000]
        lost = sum(self._pending.values())
        self._pending.clear()
        self._budget.release_inflight(lost)
        self._acked.clear()
        self._clear_timers()
        for book in self.books.values():
            book.invalidate()
        if not self._stopping:
            self.state = StreamState.BACKOFF
        reason = self.last_down_reason or "disconnected"
        self.last_down_reason = ""
        self._transport = None
        self._listener.on_stream_down(self, reason)

    def _clear_timers(self) -> None:
        for t in self._deadlines.values():
            t.cancel()
        self._deadlines.clear()

    def stats(self) -> dict[str, Any]:
        return {
            "state": self.state.name,
            "connects": self.connects,
            "disconnects": self.disconnects,
            "failures": self.failures,
            "frames": self.frames,
            "malformed": self.malformed,
            "handler_errors": self.handler_errors,
            "resubscribes": self.resubscribes,
            "deadline_misses": self.deadline_misses,
            "pings_sent": self.pings_sent,
            "pongs_sent": self.pongs_sent,
            "keepalive_skipped": self.keepalive_skipped,
            "rollovers": self.rollovers,
            "rollovers_abandoned": self.rollovers_abandoned,
            "subscribes_sent": self.subscribes_sent,
            "errors_received": self.errors_received,
            "subscribed": sorted(self._acked),
            "compiled_frames": self.compiled_frames,
        }

    @property
    def compiled_frames(self) -> int:
        """Book frames the compiled listener took (every connection so far)."""
        f = self._feed
        return self._compiled_before + (f.fast_frames if f is not None else 0)


def _int_at(data: bytes, j: int) -> int:
    """The non-negative decimal integer starting at ``data[j]`` (-1 if none)."""
    n = len(data)
    v = -1
    while j < n:
        c = data[j]
        if 48 <= c <= 57:
            v = (0 if v < 0 else v * 10) + (c - 48)
            j += 1
        else:
            break
    return v
