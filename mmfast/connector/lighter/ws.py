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
    BookFeed = None

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


class _Listener(WSListener):  # type: ignore[misc]
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
        self.state = StreamState.IDLE
        self.halt_error: StreamHalted | None = None
        self._task: asyncio.Task[None] | None = None
        self._transport: WSTransport | None = None
        self._gen = 0
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
        t = self._transport
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
            f"(last: {self.last_down_reason or 'n/a'}); giving up")
        _log.error("%s", self.halt_error)
        self._listener.on_halt(self, self.halt_error)

    async def _session(self) -> bool:
        """One connection: connect, subscribe, run until it drops. True if it became live."""
        self.state = StreamState.CONNECTING
        self._was_live = False
        self._gen += 1
        gen = self._gen
        scale = self._time.scale
        try:
            transport, _ = await asyncio.wait_for(ws_connect(
                lambda: self._new_listener(gen), self.url,
                enable_auto_ping=True,
                auto_ping_idle_timeout=self._ping_idle_s / scale,
                auto_ping_reply_timeout=self._pong_timeout_s / scale,
                enable_auto_pong=True,
                disconnect_on_exception=False,
                websocket_handshake_timeout=self._connect_timeout_s / scale,
                max_frame_size=MAX_FRAME_BYTES,
                logger_name=f"mmfast.{self.name}",
            ), self._connect_timeout_s / scale)
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
        self.last_frame_ns = self._time.monotonic_ns()
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
        await transport.wait_disconnected()
        if self._transport is transport:  # picows did not report it: clean up here
            self._cleanup_disconnect()
        return self.state is StreamState.LIVE or self._was_live

    # --- subscriptions ------------------------------------------------------------------------
    async def _subscribe(self, key: str, gen: int) -> None:
        sub = self.subscriptions[key]
        await self._budget.acquire(self._budget.WS_REQUEST, Priority.NORMAL,
                                   timeout_s=self._backoff_max_s * 2)
        if gen != self._gen or self._transport is None or self._transport.is_disconnected:
            self._budget.release_inflight()
            return
        msg: dict[str, Any] = {"type": "subscribe", "channel": sub.channel}
        if sub.private:
            if self._token is None:
                self._budget.release_inflight()
                raise RuntimeError(f"{sub.channel} needs an auth token")
            msg["auth"] = await self._token()
            if gen != self._gen or self._transport.is_disconnected:
                self._budget.release_inflight()
                return
        self._pending[key] = self._pending.get(key, 0) + 1
        self._transport.send(_TEXT, orjson.dumps(msg))
        del msg  # holds the token
        self.subscribes_sent += 1
        self._arm_deadline(key)

    def _arm_deadline(self, key: str) -> None:
        old = self._deadlines.pop(key, None)
        if old is not None:
            old.cancel()
        self._deadlines[key] = self._time.call_later(self._snapshot_deadline_s,
                                                     self._deadline_fired, key, self._gen)

    def _deadline_fired(self, key: str, gen: int) -> None:
        self._deadlines.pop(key, None)
        if gen != self._gen or key in self._acked or not self.connected:
            return
        self.deadline_misses += 1
        # Whatever was in flight for this key is taken as lost.
        lost = self._pending.pop(key, 0)
        self._budget.release_inflight(lost)
        _log.debug("%s: no first frame on %s within %.2fs: resubscribing", self.name, key,
                   self._snapshot_deadline_s)
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
            await self._budget.acquire(self._budget.WS_REQUEST, Priority.NORMAL,
                                       timeout_s=self._backoff_max_s * 2)
            if gen != self._gen or not self.connected:
                self._budget.release_inflight()
                return
            assert self._transport is not None
            self._pending[key] = self._pending.get(key, 0) + 1
            self._transport.send(_TEXT, orjson.dumps({"type": "unsubscribe",
                                                      "channel": sub.channel}))
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
        else:
            self.keepalive_skipped += 1

    def _send_pong(self) -> None:
        t = self._transport
        if t is None or t.is_disconnected:
            return
        if self._budget.try_acquire(self._budget.WS_MESSAGE, Priority.RESERVED):
            t.send(_TEXT, PONG)
            self.pongs_sent += 1
        else:
            self.keepalive_skipped += 1
            wait = self._budget.wait_s(self._budget.WS_MESSAGE, Priority.RESERVED)
            if wait < self._backoff_max_s:
                self._time.call_later(wait, self._send_pong)

    # --- frames (hot path) ------------------------------------------------------------------------
    def _new_listener(self, gen: int) -> Any:
        """The listener of connection ``gen``: the compiled one for a book stream on the
        host's clock when it is built, else the Python one."""
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
                if book is not None:
                    snaps = book.snapshots
                    step = self.steps.get(market) if self.steps else None
                    try:
                        code = book.apply_frame(data) if step is None else step(data, now)
                    except BookError:
                        self.malformed += 1
                        return
                    if code != NOT_BOOK:
                        if now - self._last_skew_ns >= self._skew_interval_ns:
                            self._sample_time(data, now)
                        self._book_done(market, code, now, book.snapshots != snaps)
                        return
            self._dispatch(data, now)
        except Exception:
            self._handler_error()

    def _sample_time(self, data: bytes, now: int) -> None:
        i = data.find(_TS_TAG)
        if i >= 0:
            ts = _int_at(data, i + len(_TS_TAG))
            if ts > 1_000_000_000_000:  # epoch ms
                self._venue_time(ts, now)

    def _venue_time(self, ts: int, now: int) -> None:
        self._last_skew_ns = now
        self._listener.on_venue_time(ts)

    def _dispatch(self, data: bytes, now: int) -> None:
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
            self._send_pong()
            return
        if typ in ("pong", "connected"):
            return
        if typ == "error":
            self._on_error(msg)
            return
        if typ == "shutdown":
            self.disconnect("server shutdown")
            return
        channel = msg.get("channel")
        ts = msg.get("timestamp")
        if (type(ts) is int and ts > 1_000_000_000_000
                and typ.endswith(("/market_stats", "/user_stats", "/order_book"))
                and now - self._last_skew_ns >= self._skew_interval_ns):
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
            "state": self.state.name, "connects": self.connects, "disconnects": self.disconnects,
            "failures": self.failures, "frames": self.frames, "malformed": self.malformed,
            "handler_errors": self.handler_errors, "resubscribes": self.resubscribes,
            "deadline_misses": self.deadline_misses, "pings_sent": self.pings_sent,
            "pongs_sent": self.pongs_sent, "keepalive_skipped": self.keepalive_skipped,
            "subscribes_sent": self.subscribes_sent, "errors_received": self.errors_received,
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
