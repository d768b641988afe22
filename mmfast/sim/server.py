"""REST (`/api/v1/...`) and WebSocket (`/stream`) on one loopback port, as on the venue, plus
the loopback control endpoint (`/_sim/...`) for tests that run the bot as a process.

The server is a thin transport over `Exchange`: it parses requests, calls the engine, drains the
engine's events and fans them out to subscribers. Speed bumps live in the engine's sequencer;
rate limits (`limits.RateLimiter`), fault injection (`faults.Faults`) and the market flow
(`flow.MarketFlow`) sit here. Every wait and timer runs on the simulator's `TimeSource`, so a
`ScaledTime` shared with the bot compresses a whole scenario.

WebSocket frames go out through the connection's transport directly (one `write` per frame,
server frames are unmasked), which is what lets one client receive well over 50k order-book
messages a second; aiohttp still handles the handshake, reading, control frames and closing.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import json
import socket
import struct
import uuid
from collections.abc import Callable, Coroutine, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

import orjson
from aiohttp import WSMsgType, web

from mmfast.core.latency import LoopLagProbe
from mmfast.sim import errors as E
from mmfast.sim import public_api, wire
from mmfast.sim.clock import SimClock, SkewedTime, TimeSource, as_time_source
from mmfast.sim.config import LOOPBACK_HOSTS, FlowConfig, ReplayConfig, SimConfig
from mmfast.sim.engine import MAX_COI, Exchange, TxRecord
from mmfast.sim.errors import VenueError
from mmfast.sim.faults import Faults
from mmfast.sim.flow import MarketFlow
from mmfast.sim.limits import Breach, RateLimiter
from mmfast.sim.public_api import query_int
from mmfast.sim.queue import make_model
from mmfast.sim.replay import TapeReplay, group_by_time
from mmfast.sim.truth import RequestLog, Truth

if TYPE_CHECKING:
    from mmfast.tape import Event, Tape

T = TypeVar("T")

API = "/api/v1"
CONTROL = "/_sim"
PUBLIC_KINDS = frozenset({"order_book", "trade", "market_stats"})
PRIVATE_KINDS = frozenset(
    {
        "account_orders",
        "account_all_orders",
        "account_all_trades",
        "account_all_positions",
        "user_stats",
    }
)
RATE_LIMIT_MESSAGE = '{"ratelimit": "didn\'t use volume quota"}'
LOOPBACK_REMOTES = frozenset({"127.0.0.1", "::1", "::ffff:127.0.0.1"})
MAX_WRITE_BUFFER = 64 * 1024 * 1024  # a client this far behind is dropped (slow consumer)
_LINGER_RST = struct.pack("ii", 1, 0)


def _dumps(obj: Any) -> str:
    return orjson.dumps(obj).decode()


def ws_text_frame(payload: bytes) -> bytes:
    """One unmasked, final WebSocket text frame (server to client)."""
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    if n < 65536:
        return b"\x81\x7e" + n.to_bytes(2, "big") + payload
    return b"\x81\x7f" + n.to_bytes(8, "big") + payload


def _reset(transport: Any) -> None:
    """Close a TCP connection with a reset (SO_LINGER 0), not a FIN."""
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError, AttributeError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RST)
    transport.abort()


class _Conn:
    """One WebSocket client."""

    __slots__ = (
        "closed",
        "frame_faults",
        "held_in",
        "held_out",
        "id",
        "last_pong_ns",
        "last_rx_ns",
        "opened_ns",
        "remote",
        "sim",
        "stalled",
        "subs",
        "transport",
        "ws",
    )

    def __init__(
        self,
        sim: Simulator,
        conn_id: int,
        ws: web.WebSocketResponse,
        transport: asyncio.Transport,
        remote: str,
        now_ns: int,
    ) -> None:
        self.sim = sim  # owner (fault log, drops)
        self.id = conn_id  # 1, 2, ... in connection order
        self.ws = ws  # the aiohttp socket (reading, control frames, close)
        self.transport = transport  # frames are written here directly
        self.remote = remote  # client IP (rate limits are per IP)
        self.subs: set[str] = set()  # subscribed channels, in the inbound "kind:args" form
        self.last_pong_ns = now_ns  # monotonic ns of the last pong
        self.opened_ns = now_ns  # the lifetime rule counts from here
        self.last_rx_ns = now_ns  # the last frame the client sent (the idle rule)
        self.closed = False  # no more frames once set
        self.stalled = False  # frames held both ways (silent-stall fault)
        self.held_out: list[bytes] = []  # outbound frames held by a stall
        self.held_in: list[str] = []  # inbound messages held by a stall
        self.frame_faults: list[str] = []  # faults for the next outbound frames, in order

    def send(self, obj: Any) -> None:
        """Send a JSON message (dict or pre-encoded str/bytes)."""
        if self.closed:
            return
        if isinstance(obj, bytes):
            payload = obj
        elif isinstance(obj, str):
            payload = obj.encode()
        else:
            payload = orjson.dumps(obj)
        self.send_payload(payload, None)

    def send_payload(self, payload: bytes, frame: bytes | None) -> None:
        """Send one message; `frame` is its encoded frame when the caller has it already."""
        if self.closed:
            return
        if self.frame_faults:
            payload = self._mangle(payload)
            frame = None
        if frame is None:
            frame = ws_text_frame(payload)
        if self.stalled:
            self.held_out.append(frame)
        else:
            self.write(frame)

    def _mangle(self, payload: bytes) -> bytes:
        fault = self.frame_faults.pop(0)
        if fault == "truncate":
            out = payload[: len(payload) // 2]
        elif fault == "corrupt_utf8":
            mid = len(payload) // 2
            out = payload[:mid] + b"\xff\xfe\xc3" + payload[mid + 3 :]
        else:  # corrupt_json: valid UTF-8, unparsable
            mid = len(payload) // 2
            out = payload[:mid] + b'"}{:' + payload[mid + 4 :]
        self.sim.faults._frame_applied(self.id, fault, len(out))
        return out

    def write(self, frame: bytes) -> None:
        t = self.transport
        if t.is_closing():
            self.sim._drop(self)
            return
        t.write(frame)
        if t.get_write_buffer_size() > MAX_WRITE_BUFFER:
            self.sim._drop(self)
            t.abort()


class Simulator:
    """The simulator as an async context manager::

        async with Simulator(SimConfig(seed=1), time_source) as sim:
            sim.rest_url, sim.ws_url, sim.exchange, sim.truth, sim.faults

    `clock` is a `TimeSource` (`REAL_TIME` by default, or a `ScaledTime` shared with the bot) or
    a bare `SimClock` such as `ManualClock` (waits then run in real time).
    """

    def __init__(
        self,
        config: SimConfig | None = None,
        clock: TimeSource | SimClock | None = None,
        *,
        tape: Tape | None = None,
    ) -> None:
        self.config = config or SimConfig()
        if self.config.host not in LOOPBACK_HOSTS:
            raise ValueError(f"the simulator binds loopback only, not {self.config.host!r}")
        # The venue's clock: the shared time source, plus the skew a fault may set.
        self.clock = SkewedTime(as_time_source(clock))
        self.exchange = Exchange(self.config, self.clock)
        self.requests = RequestLog(self.clock, self.config.request_log_kept)
        self.limiter = RateLimiter(self.config, self.clock)
        self.faults = Faults(self)
        self.flow: MarketFlow | None = None
        if self.config.flow is not None:
            self.flow = MarketFlow(self.exchange, self.config.flow, self.config.seed)
        # A tape as the market (mmfast.sim.replay): its events on the tape's schedule.
        self.replay: TapeReplay | None = None
        self._tape = tape
        self.replay_done = asyncio.Event()  # the tape's last event is applied (or failed)
        self.replay_error: BaseException | None = None  # why the tape stopped early
        self.tape_now_ns = 0  # the tape time (wall epoch ns) of the last events applied
        if tape is not None:
            if self.config.flow is not None:
                raise ValueError("a simulator replays a tape or runs flow, not both")
            rc = self.config.replay or ReplayConfig()
            self.replay = TapeReplay(
                self.exchange,
                make_model(rc.queue_model, rc.queue_power),
                maker_account=rc.maker_account,
                taker_account=rc.taker_account,
                collateral=rc.collateral,
            )
        self.truth = Truth(self.exchange, self.requests, self)
        self.port = 0
        # The funded account's throwaway L1 key and address (public_api.install sets them).
        self.l1_private_key = ""
        self.l1_address = ""
        self._conns: set[_Conn] = set()
        self._next_conn_id = 1
        self._subs: dict[str, set[_Conn]] = {}  # channel -> connections
        # market -> phantom bid price (crossed-book fault), held by the engine so that the
        # book history records the book as published
        self._phantoms: dict[int, int] = self.exchange.phantom_bids
        self._runner: web.AppRunner | None = None
        self.loop_lag: LoopLagProbe | None = None  # set by start()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._due_timer: asyncio.TimerHandle | None = None
        self._due_ns: int | None = None  # when the armed sequencer timer fires
        # Connections closed by the venue's rules (book_batch_ms and ws_* in SimConfig).
        self.rule_drops = {"lifetime": 0, "idle": 0}
        # market -> the engine's book changes not yet published: [asks {price: size},
        # bids {price: size}, begin nonce, nonce, offset] (book_batch_ms)
        self._book_batch: dict[int, list[Any]] = {}
        self._book_timer: asyncio.TimerHandle | None = None

    @property
    def time(self) -> TimeSource:
        """The shared time source the simulator runs on (without the skew fault)."""
        return self.clock.base

    # ------------------------------------------------------------------ lifecycle
    @property
    def rest_url(self) -> str:
        return f"http://{self._url_host()}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self._url_host()}:{self.port}/stream"

    @property
    def control_url(self) -> str:
        """Base URL of the loopback control endpoint."""
        return f"{self.rest_url}{CONTROL}"

    def _url_host(self) -> str:
        return f"[{self.config.host}]" if ":" in self.config.host else self.config.host

    async def start(self) -> None:
        app = web.Application(middlewares=[self._middleware])
        r = app.router
        for name, handler in (
            ("orderBooks", self._order_books),
            ("orderBookDetails", self._order_book_details),
            ("orderBookOrders", self._order_book_orders),
            ("recentTrades", self._recent_trades),
            ("nextNonce", self._next_nonce),
            ("apikeys", self._apikeys),
            ("account", self._account),
            ("accountActiveOrders", self._active_orders),
            ("accountInactiveOrders", self._inactive_orders),
            ("accountOrders", self._account_orders),
            ("tx", self._tx),
        ):
            r.add_get(f"{API}/{name}", handler)
        public_api.install(self, r)  # assetDetails, candles, fundings, ... (other clients)
        r.add_post(f"{API}/sendTx", self._send_tx)
        r.add_post(f"{API}/sendTxBatch", self._send_tx_batch)
        r.add_get("/stream", self._stream)
        r.add_post(f"{CONTROL}/faults", self._control_fault)
        r.add_post(f"{CONTROL}/api_keys", self._control_api_key)
        r.add_post(f"{CONTROL}/volume_quota", self._control_volume_quota)
        r.add_get(f"{CONTROL}/truth/{{name}}", self._control_truth)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.host, self.config.port)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        # The loop's lag over the run (a soak reads it: /_sim/truth/loop).
        self.loop_lag = LoopLagProbe(0.1)
        self.loop_lag.start()
        self.spawn(self._poll_loop())
        flow = self.flow
        if flow is not None:
            self.run_engine(lambda: flow.advance_to(self.clock.monotonic_ns()))
            self.spawn(self._flow_loop())
        if self.replay is not None:
            self._start_replay()

    async def stop(self) -> None:
        if self.loop_lag is not None:
            self.loop_lag.stop()
        for h in self.faults._timers:
            h.cancel()
        if self._due_timer is not None:
            self._due_timer.cancel()
            self._due_timer = None
        if self._book_timer is not None:
            self._book_timer.cancel()
            self._book_timer = None
        for conn in list(self._conns):
            self._drop(conn)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.ws.close(code=1001, message=b"server shutdown"), 1)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        for t in list(self._tasks):
            t.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run `coro` as a task owned by the simulator (cancelled on stop)."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _poll_loop(self) -> None:
        """Order expiries and scheduled cancel-alls (txs have their own exact timer)."""
        interval = self.config.poll_interval_ms / 1000
        while True:
            await self.clock.sleep(interval)
            self.run_engine(self.exchange.poll)

    async def _flow_loop(self) -> None:
        flow = self.flow
        assert flow is not None
        step = flow.config.step_ms / 1000
        while True:
            await self.clock.sleep(step)
            self.run_engine(lambda: flow.advance_to(self.clock.monotonic_ns()))

    def _start_replay(self) -> None:
        """The tape's first events now (its book is there before any client connects), the
        rest on its schedule: tape time t is simulated time start + (t - first event's t)."""
        replay, tape = self.replay, self._tape
        assert replay is not None and tape is not None
        rc = self.config.replay or ReplayConfig()
        batches = group_by_time(tape.events(), rc.step_ns)
        try:
            first = next(batches, None)
        except Exception as exc:  # a tape that fails at once (corrupt): reported, not raised
            self.replay_error = exc
            self.replay_done.set()
            return
        if first is None:
            self.replay_done.set()
            return
        t0, events = first
        mono0 = self.clock.monotonic_ns()
        self.tape_now_ns = t0
        self.run_engine(lambda: replay.apply(events))
        self.spawn(self._replay_loop(batches, t0, mono0))

    async def _replay_loop(
        self, batches: Iterator[tuple[int, list[Event]]], t0: int, mono0: int
    ) -> None:
        replay = self.replay
        assert replay is not None
        try:
            for t, events in batches:
                wait = mono0 + (t - t0) - self.clock.monotonic_ns()
                if wait > 0:
                    await self.clock.sleep(wait / 1e9)
                self.tape_now_ns = t
                self.run_engine(functools.partial(replay.apply, events))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a tape that breaks midway: the backtest reports it
            self.replay_error = exc
        finally:
            self.replay_done.set()

    def run_engine(self, fn: Callable[[], T]) -> T:
        """Run `fn` against the exchange, then publish what it changed."""
        try:
            return fn()
        finally:
            self.pump()
            self._arm()

    def _arm(self) -> None:
        """Keep one timer on the sequencer's next due tx (speed bumps, in simulated time)."""
        due = self.exchange.next_due_ns()
        if due is None or (self._due_ns is not None and self._due_ns <= due):
            return
        if self._due_timer is not None:
            self._due_timer.cancel()
        self._due_ns = due
        delay = max(0, due - self.clock.monotonic_ns()) / 1e9
        try:
            self._due_timer = self.clock.call_later(delay, self._on_due)
        except RuntimeError:  # no running loop (engine driven directly): poll covers it
            self._due_timer = None
            self._due_ns = None

    def _on_due(self) -> None:
        self._due_timer = None
        self._due_ns = None
        due = self.exchange.next_due_ns()
        if due is not None and due > self.clock.monotonic_ns():
            self._arm()  # woke early (timer resolution): wait for the rest
            return
        self.run_engine(self.exchange.poll)

    # ------------------------------------------------------------------ helpers for faults
    def open_connections(self) -> list[_Conn]:
        return [c for c in self._conns if not c.closed]

    def drop_connection(self, conn: _Conn, code: int | str) -> None:
        """Drop one WebSocket connection: 1000 (close frame), 1006 (no close frame), "rst"."""
        if conn.closed:
            return
        transport = conn.transport
        self._drop(conn)
        if code == 1000:
            self.spawn(conn.ws.close(code=1000, message=b"going away"))
        elif code == 1006:
            transport.close()
        else:
            _reset(transport)

    def release_stall(self, conn: _Conn) -> int:
        """End a stall: deliver the held frames in order. Returns how many were held."""
        conn.stalled = False
        out, inn = conn.held_out, conn.held_in
        conn.held_out, conn.held_in = [], []
        for f in out:
            if conn.closed:
                break
            conn.write(f)
        for data in inn:
            if conn.closed:
                break
            self._on_frame(conn, data)
        return len(out) + len(inn)

    def send_raw(self, conn: _Conn, payload: bytes) -> None:
        conn.send_payload(payload, None)

    def publish_frame(self, key: str, payload: bytes) -> None:
        conns = self._subs.get(key)
        if conns:
            frame = ws_text_frame(payload)
            for c in list(conns):
                c.send_payload(payload, frame)

    def phantom_markets(self) -> list[int]:
        return list(self._phantoms)

    def _bump_book(self, market: int, bids: list[tuple[int, int]]) -> None:
        """Publish a delta outside the engine, keeping the nonce chain."""
        self.pump()
        self.flush_books(market)
        ex = self.exchange
        m = ex.markets[market]
        begin = m.book_nonce
        m.book_nonce += 1
        m.offset += 1
        if m.history is not None:
            ex.record_book(m)
        key = f"order_book:{market}"
        msg = self._book_msg(
            "update/order_book",
            key,
            m,
            [],
            bids,
            begin,
            m.book_nonce,
            m.offset,
            self.clock.wall_ms(),
        )
        self._publish_book(market, orjson.dumps(msg), (begin, m.book_nonce))

    def set_phantom_bid(self, market: int) -> int:
        """Show a bid one tick above the best ask (crossed book); returns its price."""
        m = self.exchange._market(market)
        best_ask = m.asks.best()
        price = (best_ask if best_ask is not None else m.mark_price) + 1
        self._phantoms[market] = price
        self._bump_book(market, [(price, m.spec.min_base_amount)])
        return price

    def clear_phantom_bid(self, market: int) -> None:
        price = self._phantoms.pop(market, None)
        if price is not None:
            m = self.exchange.markets[market]
            self._bump_book(market, [(price, m.bids.sizes.get(price, 0))])

    def system_account(self, exclude: int) -> int:
        """A counterparty for out-of-band fills and liquidations (a flow account, or a funded
        system account created on first use)."""
        flow = self.config.flow or FlowConfig()
        for idx in (flow.maker_account, flow.taker_account):
            if idx != exclude:
                if idx not in self.exchange.accounts:
                    self.exchange.add_account(idx, flow.collateral, api_key_indexes=())
                return idx
        raise ValueError("no counterparty account")

    # ------------------------------------------------------------------ REST
    @staticmethod
    def _breach_response(b: Breach) -> web.Response:
        return web.Response(
            body=orjson.dumps({"code": b.code, "message": E.MESSAGES[E.TOO_MANY_REQUESTS]}),
            status=b.status,
            content_type="application/json",
            headers={"Retry-After": str(b.retry_after_s)},
        )

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        path = request.path
        if path.startswith(CONTROL):
            if request.remote not in LOOPBACK_REMOTES:
                return web.json_response({"ok": False, "error": "loopback only"}, status=403)
            resp: web.StreamResponse = await handler(request)
            return resp
        if path == "/stream":
            resp = await handler(request)
            return resp
        faults = self.faults
        if faults.refusing_rest:
            _reset(request.transport)
            return web.Response(status=503)
        self.requests.record(f"{request.method} {path}")
        breach = self.limiter.rest(request.remote or "", path.rsplit("/", 1)[-1])
        if breach is not None:
            return self._breach_response(breach)
        hold = faults.take_http_timeout(path)
        if hold is not None:
            await self.clock.sleep(hold)
        storm = faults.take_http_fault(path)
        if storm is not None:
            status, retry_after, execute = storm
            if execute and path.startswith(f"{API}/sendTx"):
                with contextlib.suppress(Exception):
                    await self._handle(request, handler)
            headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
            code = E.TOO_MANY_REQUESTS if status == 429 else E.INTERNAL
            return web.Response(
                body=orjson.dumps({"code": code, "message": E.MESSAGES[code]}),
                status=status,
                content_type="application/json",
                headers=headers,
            )
        return await self._handle(request, handler)

    @staticmethod
    async def _handle(request: web.Request, handler: Any) -> web.StreamResponse:
        try:
            resp: web.StreamResponse = await handler(request)
            return resp
        except VenueError as exc:
            return web.json_response(
                exc.to_json(), status=getattr(exc, "status", 400), dumps=_dumps
            )
        except (ValueError, KeyError) as exc:
            err = VenueError(
                E.INVALID_TX_INFO if request.method == "POST" else E.NOT_FOUND, str(exc)
            )
            return web.json_response(err.to_json(), status=400, dumps=_dumps)

    @staticmethod
    def _ok(body: dict[str, Any]) -> web.Response:
        return web.Response(body=orjson.dumps(body), content_type="application/json")

    _int = staticmethod(query_int)

    def _markets_for(self, request: web.Request) -> list[Any]:
        mid = self._int(request.query, "market_id", 255)
        if mid == 255 and 255 not in self.exchange.markets:
            return list(self.exchange.markets.values())
        m = self.exchange.markets.get(mid)
        if m is None:
            raise VenueError(E.INVALID_MARKET_INDEX, str(mid))
        return [m]

    def _auth(self, request: web.Request, account: int) -> None:
        token = request.headers.get("authorization") or request.query.get("auth")
        if not token:
            raise VenueError(E.INVALID_SIGNATURE, "auth token required")
        self.exchange.check_auth(token, account)

    async def _order_books(self, request: web.Request) -> web.Response:
        books = [wire.order_book_summary(m) for m in self._markets_for(request)]
        return self._ok({"code": 200, "order_books": books})

    async def _order_book_details(self, request: web.Request) -> web.Response:
        details = [wire.order_book_detail(m) for m in self._markets_for(request)]
        return self._ok({"code": 200, "order_book_details": details, "spot_order_book_details": []})

    async def _order_book_orders(self, request: web.Request) -> web.Response:
        mid = self._int(request.query, "market_id")
        limit = self._int(request.query, "limit")
        if not 1 <= limit <= 250:
            raise VenueError(E.INVALID_TX_INFO, "limit must be within 1..250")
        self.exchange.poll()
        asks = self.exchange.book_orders(mid, True)
        bids = self.exchange.book_orders(mid, False)
        return self._ok(
            {
                "code": 200,
                "total_asks": len(asks[:limit]),
                "asks": [wire.simple_order_json(self.exchange, o) for o in asks[:limit]],
                "total_bids": len(bids[:limit]),
                "bids": [wire.simple_order_json(self.exchange, o) for o in bids[:limit]],
            }
        )

    async def _recent_trades(self, request: web.Request) -> web.Response:
        mid = self._int(request.query, "market_id")
        limit = self._int(request.query, "limit", 100)
        if not 1 <= limit <= 100:
            raise VenueError(E.INVALID_TX_INFO, "limit must be within 1..100")
        if mid not in self.exchange.markets:
            raise VenueError(E.INVALID_MARKET_INDEX, str(mid))
        trades = list(self.exchange.markets[mid].trades)[-limit:][::-1]
        return self._ok(
            {"code": 200, "trades": [wire.trade_json(self.exchange, t) for t in trades]}
        )

    async def _next_nonce(self, request: web.Request) -> web.Response:
        self.exchange.poll()
        nonce = self.exchange.next_nonce(
            self._int(request.query, "account_index"), self._int(request.query, "api_key_index")
        )
        return self._ok({"code": 200, "nonce": nonce})

    async def _apikeys(self, request: web.Request) -> web.Response:
        acct = self.exchange.account(self._int(request.query, "account_index"))
        idx = self._int(request.query, "api_key_index", 255)
        if idx == 255:
            keys = sorted(acct.keys.values(), key=lambda k: k.index)
        else:
            keys = [self.exchange._key(acct, idx, create=False)]
        return self._ok(
            {
                "code": 200,
                "api_keys": [
                    {
                        "account_index": acct.index,
                        "api_key_index": k.index,
                        "nonce": k.nonce,
                        "public_key": k.public_key,
                        "transaction_time": 0,
                    }
                    for k in keys
                ],
            }
        )

    async def _account(self, request: web.Request) -> web.Response:
        by = request.query.get("by", "index")
        value = request.query.get("value", "")
        if by == "index":
            accts = [self.exchange.account(self._int(request.query, "value"))]
        elif by == "l1_address":
            accts = [a for a in self.exchange.accounts.values() if a.l1_address == value]
            if not accts:
                raise VenueError(E.ACCOUNT_NOT_FOUND, value)
        else:
            raise VenueError(E.INVALID_TX_INFO, "by must be index or l1_address")
        self.exchange.poll()
        return self._ok(
            {
                "code": 200,
                "total": len(accts),
                "next_cursor": "",
                "accounts": [wire.account_json(self.exchange, a) for a in accts],
            }
        )

    async def _active_orders(self, request: web.Request) -> web.Response:
        account = self._int(request.query, "account_index")
        self._auth(request, account)
        mid: int | None = self._int(request.query, "market_id", 255)
        if mid == 255 and 255 not in self.exchange.markets:
            mid = None  # every market
        elif mid not in self.exchange.markets:
            raise VenueError(E.INVALID_MARKET_INDEX, str(mid))
        self.exchange.poll()
        orders = self.exchange.open_orders(account, mid)
        return self._ok(
            {
                "code": 200,
                "next_cursor": "",
                "orders": [wire.order_json(self.exchange, o) for o in orders],
            }
        )

    async def _inactive_orders(self, request: web.Request) -> web.Response:
        account = self._int(request.query, "account_index")
        self._auth(request, account)
        limit = self._int(request.query, "limit")
        if not 1 <= limit <= 100:
            raise VenueError(E.INVALID_TX_INFO, "limit must be within 1..100")
        mid = self._int(request.query, "market_id", 255)
        ask_filter = self._int(request.query, "ask_filter", -1)
        cursor = self._int(request.query, "cursor", 0)
        self.exchange.poll()
        out = []
        items = list(self.exchange.account(account).inactive)[::-1]  # newest first
        for i, o in enumerate(items):
            if i < cursor:
                continue
            if mid != 255 and o.market != mid:
                continue
            if ask_filter in (0, 1) and int(o.is_ask) != ask_filter:
                continue
            out.append(o)
            if len(out) == limit:
                nxt = str(i + 1) if i + 1 < len(items) else ""
                break
        else:
            nxt = ""
        return self._ok(
            {
                "code": 200,
                "next_cursor": nxt,
                "orders": [wire.order_json(self.exchange, o) for o in out],
            }
        )

    async def _account_orders(self, request: web.Request) -> web.Response:
        account = self._int(request.query, "account_index")
        self._auth(request, account)
        raw = request.query.get("client_order_indexes", "")
        try:
            cois = [int(x) for x in raw.split(",") if x.strip()]
        except ValueError as exc:
            raise VenueError(E.INVALID_CLIENT_ORDER_INDEX, raw) from exc
        if not 1 <= len(cois) <= 20 or any(not 1 <= c <= MAX_COI for c in cois):
            raise VenueError(E.INVALID_CLIENT_ORDER_INDEX, raw)
        self.exchange.poll()
        acct = self.exchange.account(account)
        found = [acct.last_by_coi[c] for c in cois if c in acct.last_by_coi]
        return self._ok(
            {
                "code": 200,
                "next_cursor": "",
                "orders": [wire.order_json(self.exchange, o) for o in found],
            }
        )

    async def _tx(self, request: web.Request) -> web.Response:
        if request.query.get("by", "hash") != "hash":
            raise VenueError(E.INVALID_TX_INFO, "only by=hash is simulated")
        self.exchange.poll()
        rec = self.exchange.txs.get(request.query.get("value", ""))
        if rec is None:
            raise VenueError(E.TX_NOT_FOUND)
        return self._ok(wire.tx_json(self.exchange, rec))

    def _send_resp(self, recs: list[TxRecord], batch: bool) -> dict[str, Any]:
        due = max(r.due_ns for r in recs)
        predicted = self.clock.wall_ms() + max(0, due - self.clock.monotonic_ns()) // 1_000_000
        hashes: Any = [r.hash for r in recs] if batch else recs[0].hash
        return {
            "code": 200,
            "message": RATE_LIMIT_MESSAGE,
            "tx_hash": hashes,
            "predicted_execution_time_ms": predicted,
            "volume_quota_remaining": self.exchange.quota_remaining(recs[0].account),
        }

    def submit(self, tx_type: int, tx_info: Any) -> dict[str, Any]:
        """sendTx: accept (RespSendTx body) or raise VenueError."""
        recs = self.run_engine(lambda: [self.exchange.submit(tx_type, tx_info)])
        return self._send_resp(recs, batch=False)

    def submit_batch(self, tx_types: list[int], tx_infos: list[Any]) -> dict[str, Any]:
        """sendTxBatch: accept all (RespSendTxBatch body) or raise VenueError."""
        recs = self.run_engine(lambda: self.exchange.submit_batch(tx_types, tx_infos))
        return self._send_resp(recs, batch=True)

    async def _rest_send(
        self, request: web.Request, fn: Callable[[], dict[str, Any]]
    ) -> web.Response:
        """Run a sendTx/sendTxBatch under the ack faults (delayed, lost with or without
        execution); a lost REST ack resets the connection."""
        fault = self.faults.take_ack_fault()
        if fault is not None and fault.lost and not fault.execute:
            _reset(request.transport)
            return web.Response(status=503)
        try:
            resp = self._ok(fn())
        except VenueError as exc:
            resp = web.json_response(
                exc.to_json(), status=getattr(exc, "status", 400), dumps=_dumps
            )
        if fault is not None:
            if fault.lost:
                _reset(request.transport)
                return web.Response(status=503)
            await self.clock.sleep(fault.delay_s)
        return resp

    async def _send_tx(self, request: web.Request) -> web.Response:
        form = await request.post()
        tx_type = self._int(form, "tx_type")
        tx_info = form.get("tx_info")
        if not isinstance(tx_info, str):
            raise VenueError(E.INVALID_TX_INFO, "tx_info is required")
        return await self._rest_send(request, lambda: self.submit(tx_type, tx_info))

    @staticmethod
    def _json_list(v: Any, name: str) -> list[Any]:
        if isinstance(v, str):
            try:
                v = json.loads(v)
            except ValueError as exc:
                raise VenueError(E.INVALID_TX_INFO, f"{name} is not JSON") from exc
        if not isinstance(v, list):
            raise VenueError(E.INVALID_TX_INFO, f"{name} must be a JSON array")
        return v

    async def _send_tx_batch(self, request: web.Request) -> web.Response:
        form = await request.post()
        types = self._json_list(form.get("tx_types"), "tx_types")
        infos = self._json_list(form.get("tx_infos"), "tx_infos")
        return await self._rest_send(request, lambda: self.submit_batch(types, infos))

    # ------------------------------------------------------------------ control endpoint
    async def _control_fault(self, request: web.Request) -> web.Response:
        try:
            try:
                body = await request.json()
            except ValueError as exc:
                raise ValueError(f"the body is not JSON ({exc})") from None
            if not isinstance(body, dict) or not isinstance(body.get("kind"), str):
                raise ValueError('body must be {"kind": str, "args": {...}}')
            args = body.get("args") or {}
            if not isinstance(args, dict):
                raise ValueError("args must be an object")
            result = self.run_engine(lambda: self.faults.apply(body["kind"], args))
        except (ValueError, TypeError, KeyError, VenueError) as exc:
            return web.json_response({"ok": False, "error": _control_error(exc)}, status=400)
        return web.json_response({"ok": True, "result": result}, dumps=_dumps)

    def register_api_key(
        self,
        account: int,
        api_key_index: int,
        public_key: str | bytes,
        nonce: int | None = None,
        maker_only: bool | None = None,
    ) -> dict[str, Any]:
        """Register (or replace) the public key of (account, api_key_index), as a ChangePubKey
        would, maker-only or not (None: unchanged, False for a new slot); on the simulator's
        loop thread. Returns the slot as `apikeys` shows it, with its maker_only flag."""
        key = self.run_engine(
            lambda: self.exchange.register_api_key(
                account, api_key_index, public_key, nonce, maker_only
            )
        )
        return {
            "account_index": account,
            "api_key_index": key.index,
            "nonce": key.nonce,
            "public_key": key.public_key,
            "maker_only": key.maker_only,
        }

    async def _control_api_key(self, request: web.Request) -> web.Response:
        """`POST /_sim/api_keys` {"account_index", "api_key_index", "public_key"[, "nonce"]
        [, "maker_only"]}."""
        try:
            body = await request.json()
            if not isinstance(body, dict):
                raise ValueError("body must be a JSON object")
            ints: dict[str, int | None] = {}
            for name in ("account_index", "api_key_index", "nonce"):
                v = body.get(name)
                if v is None and name == "nonce":
                    ints[name] = None
                    continue
                if type(v) is not int:
                    raise ValueError(f"{name} must be an integer")
                ints[name] = v
            pk = body.get("public_key")
            if not isinstance(pk, str) or not pk:
                raise ValueError("public_key must be a hex string")
            maker_only = body.get("maker_only")
            if maker_only is not None and not isinstance(maker_only, bool):
                raise ValueError("maker_only must be true or false")
            account, key_index = ints["account_index"], ints["api_key_index"]
            assert account is not None and key_index is not None  # checked ints above
            result = self.register_api_key(account, key_index, pk, ints["nonce"], maker_only)
        except (ValueError, TypeError, VenueError) as exc:
            return web.json_response({"ok": False, "error": str(exc)}, status=400)
        return web.json_response({"ok": True, "result": result}, dumps=_dumps)

    def set_volume_quota(
        self, account: int, remaining: int, free_now: bool = False
    ) -> dict[str, Any]:
        """Set an account's volume quota (tests); on the loop thread. Returns its truth."""
        self.run_engine(
            lambda: self.exchange.set_volume_quota(account, remaining, free_now=free_now)
        )
        return self.exchange.volume_quota(account)

    async def _control_volume_quota(self, request: web.Request) -> web.Response:
        """`POST /_sim/volume_quota` {"account", "remaining"[, "free_now"]}."""
        try:
            try:
                body = await request.json()
            except ValueError as exc:
                raise ValueError(f"the body is not JSON ({exc})") from None
            if not isinstance(body, dict):
                raise ValueError("body must be a JSON object")
            unknown = sorted(set(body) - {"account", "remaining", "free_now"})
            if unknown:
                raise ValueError(f"unknown key {unknown[0]!r}")
            for name in ("account", "remaining"):
                if type(body.get(name)) is not int:
                    raise ValueError(f"{name} must be an integer")
            free_now = body.get("free_now", False)
            if not isinstance(free_now, bool):
                raise ValueError("free_now must be true or false")
            result = self.set_volume_quota(body["account"], body["remaining"], free_now)
        except (ValueError, TypeError, VenueError) as exc:
            return web.json_response({"ok": False, "error": _control_error(exc)}, status=400)
        return web.json_response({"ok": True, "result": result}, dumps=_dumps)

    async def _control_truth(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        q = request.query

        def opt(key: str) -> int | None:
            v = q.get(key)
            return None if v is None or v == "" else int(v)

        t = self.truth
        try:
            if name == "open_orders":
                out: Any = t.open_orders(opt("account"), opt("market"))
            elif name == "fills":
                out = t.fills(opt("account"), opt("market"))
            elif name == "position":
                out = t.position(int(q["account"]), int(q["market"]))
            elif name == "balance":
                out = t.balance(int(q["account"]))
            elif name == "next_nonce":
                out = t.next_nonce(int(q["account"]), int(q["api_key_index"]))
            elif name == "tx_status":
                out = t.tx_status(q["hash"])
            elif name == "request_counts":
                out = t.request_counts(opt("window_ms"))
            elif name == "faults":
                out = [r.to_json() for r in t.faults(q.get("kind"), q.get("phase"))]
            elif name == "connections":
                out = t.connections()
            elif name == "rate_limits":
                out = t.rate_limits()
            elif name == "volume_quota":
                out = t.volume_quota(int(q["account"]))
            elif name == "tier":
                out = {"tier": self.config.tier, "volume_quota": self.config.quota_on}
            elif name == "book":
                out = t.book(int(q["market"]), opt("nonce"))
            elif name == "loop":
                if self.loop_lag is None:
                    raise ValueError("the simulator is not serving")
                out = self.loop_lag.lag.status()
            elif name == "time":
                out = {
                    "monotonic_ns": self.clock.monotonic_ns(),
                    "wall_ms": self.clock.wall_ms(),
                    "scale": self.clock.scale,
                }
            else:
                return web.json_response(
                    {"ok": False, "error": f"unknown truth {name!r}"}, status=404
                )
        except (ValueError, TypeError, KeyError, VenueError) as exc:
            return web.json_response({"ok": False, "error": _control_error(exc)}, status=400)
        if isinstance(out, list):
            out = [
                dataclasses.asdict(x)
                if dataclasses.is_dataclass(x) and not isinstance(x, type)
                else x
                for x in out
            ]
        elif dataclasses.is_dataclass(out) and not isinstance(out, type):
            out = dataclasses.asdict(out)
        return web.json_response({"ok": True, "result": out}, dumps=_dumps)

    # ------------------------------------------------------------------ WebSocket
    async def _stream(self, request: web.Request) -> web.StreamResponse:
        if self.faults.refusing_ws:
            _reset(request.transport)
            return web.Response(status=503)
        remote = request.remote or ""
        blocked = self.limiter.blocked(remote)
        if blocked is not None:
            return self._breach_response(blocked)
        ws = web.WebSocketResponse(autoping=True, max_msg_size=4 * 1024 * 1024)
        await ws.prepare(request)
        transport = request.transport
        assert transport is not None
        conn = _Conn(self, self._next_conn_id, ws, transport, remote, self.clock.monotonic_ns())
        self._next_conn_id += 1
        self._conns.add(conn)
        pinger = self.spawn(self._pinger(conn))
        conn.send(
            {
                "session_id": uuid.UUID(int=self.exchange.rng.getrandbits(128)).hex,
                "type": "connected",
            }
        )
        try:
            async for msg in ws:
                conn.last_rx_ns = self.clock.monotonic_ns()
                if msg.type == WSMsgType.TEXT:
                    data = msg.data
                elif msg.type == WSMsgType.BINARY:
                    data = msg.data.decode(errors="replace")
                else:
                    break
                if conn.stalled:
                    conn.held_in.append(data)
                elif not conn.closed:
                    self._on_frame(conn, data)
        finally:
            self._drop(conn)
            pinger.cancel()
        return ws

    def _drop(self, conn: _Conn) -> None:
        conn.closed = True
        conn.held_out.clear()
        self._conns.discard(conn)
        for ch in conn.subs:
            self._unsub(ch, conn)
        conn.subs.clear()

    def _unsub(self, channel: str, conn: _Conn) -> None:
        s = self._subs.get(channel)
        if s is not None:
            s.discard(conn)
            if not s:
                del self._subs[channel]

    async def _pinger(self, conn: _Conn) -> None:
        """The server's pings and the connection rules: no pong in time, the lifetime, a
        client that sent nothing for too long (each closes the connection)."""
        cfg = self.config
        interval_ns = cfg.ws_ping_interval_ms * 1_000_000
        timeout_ns = cfg.ws_pong_timeout_ms * 1_000_000
        life_ns = cfg.ws_max_lifetime_s * 1_000_000_000
        idle_ns = cfg.ws_client_idle_s * 1_000_000_000
        mono = self.clock.monotonic_ns
        next_ping = mono() + interval_ns
        while not conn.closed:
            wake = next_ping
            if life_ns:
                wake = min(wake, conn.opened_ns + life_ns)
            if idle_ns:
                wake = min(wake, conn.last_rx_ns + idle_ns)
            await self.clock.sleep(max(0, wake - mono()) / 1e9)
            if conn.closed:
                return
            now = mono()
            why = b""
            if life_ns and now >= conn.opened_ns + life_ns:
                why, code = b"connection lifetime reached", 1000
                self.rule_drops["lifetime"] += 1
            elif idle_ns and now >= conn.last_rx_ns + idle_ns:
                why, code = b"no frame from the client", 1008
                self.rule_drops["idle"] += 1
            elif now >= next_ping:
                if now - conn.last_pong_ns > timeout_ns:
                    why, code = b"no pong", 1008
                else:
                    conn.send(b'{"type":"ping"}')
                    next_ping = now + interval_ns
            if why:
                self._drop(conn)
                await conn.ws.close(code=code, message=why)
                return

    def _error(self, conn: _Conn, code: int, detail: str = "", channel: str | None = None) -> None:
        msg = E.MESSAGES.get(code, "error") + detail
        frame: dict[str, Any] = {"type": "error", "code": code, "message": msg}
        if channel is not None:
            frame["channel"] = channel
        conn.send(frame)

    def _breach_frame(self, conn: _Conn, kind: Any, b: Breach) -> None:
        body = {
            "code": b.code,
            "message": E.MESSAGES[E.TOO_MANY_REQUESTS],
            "retry_after": b.retry_after_s,
        }
        if kind in ("jsonapi/sendtx", "jsonapi/sendtxbatch"):
            conn.send({"type": kind, "data": body})
        else:
            conn.send({"type": "error", **body})

    def _on_frame(self, conn: _Conn, data: str) -> None:
        try:
            msg = orjson.loads(data)
        except orjson.JSONDecodeError:
            msg = None
        kind = msg.get("type") if isinstance(msg, dict) else None
        breach = self.limiter.ws_message(conn.remote)
        if breach is not None:
            self._breach_frame(conn, kind, breach)
            return
        if not isinstance(msg, dict):
            self._error(conn, E.WS_INVALID_JSON)
            return
        self.requests.record(f"WS {kind}")
        if kind == "pong":
            conn.last_pong_ns = self.clock.monotonic_ns()
        elif kind == "ping":
            conn.send(b'{"type":"pong"}')
        elif kind == "subscribe":
            self._subscribe(conn, msg)
        elif kind == "unsubscribe":
            self._unsubscribe(conn, msg)
        elif kind in ("jsonapi/sendtx", "jsonapi/sendtxbatch"):
            self._ws_send_tx(conn, kind, msg.get("data"))
        else:
            self._error(conn, E.WS_INVALID_TYPE)

    def _ws_send_tx(self, conn: _Conn, kind: str, data: Any) -> None:
        lim = self.limiter
        breach = lim.ws_request_start(conn.remote)
        if breach is None:
            breach = lim.rest(conn.remote, "sendTxBatch" if kind.endswith("batch") else "sendTx")
            if breach is not None:
                lim.ws_request_done(conn.remote)
        if breach is not None:
            self._breach_frame(conn, kind, breach)
            return
        fault = self.faults.take_ack_fault()
        if fault is not None and fault.lost and not fault.execute:
            lim.ws_request_done(conn.remote)
            return
        reply: dict[str, Any]
        try:
            if not isinstance(data, dict):
                raise VenueError(E.INVALID_TX_INFO, "data must be an object")
            if kind == "jsonapi/sendtx":
                tx_type = data.get("tx_type")
                if type(tx_type) is not int:
                    raise VenueError(E.INVALID_TX_INFO, "tx_type must be an integer")
                reply = self.submit(tx_type, data.get("tx_info"))
            else:
                types = self._json_list(data.get("tx_types"), "tx_types")
                infos = self._json_list(data.get("tx_infos"), "tx_infos")
                reply = self.submit_batch(types, infos)
        except VenueError as exc:
            reply = exc.to_json()
        if self.config.echo_ack_ids and isinstance(data, dict) and "id" in data:
            reply["id"] = data["id"]
        frame = {"type": kind, "data": reply}
        if fault is None:
            lim.ws_request_done(conn.remote)
            conn.send(frame)
        elif fault.lost:
            lim.ws_request_done(conn.remote)
        else:

            def later() -> None:
                lim.ws_request_done(conn.remote)
                conn.send(frame)

            self.clock.call_later(fault.delay_s, later)

    @staticmethod
    def _parse_channel(channel: Any) -> tuple[str, list[int]] | None:
        if not isinstance(channel, str) or "/" not in channel:
            return None
        kind, *rest = channel.split("/")
        try:
            args = [int(x) for x in rest]
        except ValueError:
            if kind == "market_stats" and rest == ["all"]:
                return kind, []
            return None
        return kind, args

    def _subscribe(self, conn: _Conn, msg: dict[str, Any]) -> None:
        channel = msg.get("channel")
        parsed = self._parse_channel(channel)
        if parsed is None:
            self._error(conn, E.WS_INVALID_CHANNEL)
            return
        kind, args = parsed
        key = ":".join([kind, *(str(a) for a in args)]) if args else f"{kind}:all"
        ex = self.exchange
        try:
            if kind in PUBLIC_KINDS:
                if kind == "market_stats" and not args:
                    pass
                elif len(args) != 1 or args[0] not in ex.markets:
                    raise VenueError(E.WS_FAILED_TO_SUBSCRIBE)
            elif kind in PRIVATE_KINDS:
                want = 2 if kind == "account_orders" else 1
                if len(args) != want or (want == 2 and args[0] not in ex.markets):
                    raise VenueError(E.WS_FAILED_TO_SUBSCRIBE)
                if args[-1] not in ex.accounts:
                    raise VenueError(E.WS_FAILED_TO_SUBSCRIBE)
                token = msg.get("auth")
                if not isinstance(token, str):
                    raise VenueError(E.WS_FAILED_TO_SUBSCRIBE, "auth required")
                try:
                    ex.check_auth(token, args[-1])
                except VenueError as exc:
                    raise VenueError(E.WS_FAILED_TO_SUBSCRIBE, exc.message) from exc
            else:
                raise VenueError(E.WS_INVALID_CHANNEL)
        except VenueError as exc:
            self._error(conn, exc.code, "", channel=key)
            return
        if key in conn.subs:
            self._error(conn, E.WS_ALREADY_SUBSCRIBED, key, channel=key)
            return
        # Publish anything pending first, so the snapshot and the deltas that follow chain.
        self.run_engine(ex.poll)
        if kind == "order_book":
            self.flush_books(args[0])
        conn.subs.add(key)
        self._subs.setdefault(key, set()).add(conn)
        if kind == "order_book":
            faults = self.faults
            if faults.take_delta_before_snapshot(args[0]):
                conn.send(self._early_delta(args[0], key))
            if faults.take_skip_snapshot(args[0]):
                return
        conn.send(self._snapshot(kind, args, key))

    def _early_delta(self, market: int, key: str) -> dict[str, Any]:
        """A delta that ends at the current nonce (already in the snapshot that follows)."""
        m = self.exchange.markets[market]
        asks, bids = self.exchange.levels(market)
        return self._book_msg(
            "update/order_book",
            key,
            m,
            asks[:1],
            bids[:1],
            m.book_nonce - 1,
            m.book_nonce,
            m.offset,
            self.clock.wall_ms(),
        )

    def _unsubscribe(self, conn: _Conn, msg: dict[str, Any]) -> None:
        parsed = self._parse_channel(msg.get("channel"))
        if parsed is None:
            self._error(conn, E.WS_INVALID_CHANNEL)
            return
        kind, args = parsed
        key = ":".join([kind, *(str(a) for a in args)]) if args else f"{kind}:all"
        if key not in conn.subs:
            self._error(conn, E.WS_NOT_SUBSCRIBED, key, channel=key)
            return
        conn.subs.discard(key)
        self._unsub(key, conn)
        conn.send({"type": f"unsubscribed/{kind}", "channel": key})

    # ------------------------------------------------------------------ messages
    def _snapshot(self, kind: str, args: list[int], key: str) -> dict[str, Any]:
        ex = self.exchange
        now = self.clock.wall_ms()
        typ = f"subscribed/{kind}"
        if kind == "order_book":
            m = ex.markets[args[0]]
            asks, bids = ex.published_levels(args[0])
            return self._book_msg(typ, key, m, asks, bids, 0, m.book_nonce, m.offset, now)
        if kind == "trade":
            m = ex.markets[args[0]]
            trades = list(m.trades)[-50:]
            return {
                "channel": key,
                "liquidation_trades": [],
                "nonce": m.book_nonce,
                "trades": [wire.trade_json(ex, t) for t in trades],
                "type": typ,
            }
        if kind == "market_stats":
            return self._stats_msg(typ, key, args, now)
        account = args[-1]
        if kind == "account_orders":
            orders = ex.open_orders(account, args[0])
            return {
                "type": typ,
                "channel": key,
                "account": account,
                "nonce": ex.markets[args[0]].book_nonce,
                "orders": {str(args[0]): [wire.order_json(ex, o) for o in orders]},
            }
        if kind == "account_all_orders":
            grouped: dict[str, list[Any]] = {}
            for o in ex.open_orders(account):
                grouped.setdefault(str(o.market), []).append(wire.order_json(ex, o))
            return {"type": typ, "channel": key, "orders": grouped}
        if kind == "account_all_trades":
            by_market: dict[str, list[Any]] = {}
            volume = 0
            for t in ex.fills(account)[-50:]:
                by_market.setdefault(str(t["market_id"]), []).append(
                    wire.trade_json(ex, t, account)
                )
            for t in ex.fills(account):
                volume += t["usd_amount"]
            vol = volume / 1_000_000
            return {
                "type": typ,
                "channel": key,
                "trades": by_market,
                "total_volume": vol,
                "monthly_volume": vol,
                "weekly_volume": vol,
                "daily_volume": vol,
            }
        return self._account_msg(kind, typ, key, account, now)

    def _account_msg(self, kind: str, typ: str, key: str, account: int, now: int) -> dict[str, Any]:
        ex = self.exchange
        acct = ex.accounts[account]
        if kind == "account_all_positions":
            positions = {
                str(mid): wire.position_json(ex, acct, mid)
                for mid, p in sorted(acct.positions.items())
                if p.size
            }
            return {
                "type": typ,
                "channel": key,
                "positions": positions,
                "shares": [],
                "last_funding_round": None,
                "last_funding_discount": None,
            }
        return {
            "channel": key,
            "stats": wire.user_stats_json(ex, acct),
            "timestamp": now,
            "type": typ,
        }

    def _stats_msg(self, typ: str, key: str, args: list[int], now: int) -> dict[str, Any]:
        ex = self.exchange
        if args:
            stats: Any = wire.market_stats(ex.markets[args[0]])
        else:
            stats = {str(mid): wire.market_stats(m) for mid, m in ex.markets.items()}
        return {"channel": key, "market_stats": stats, "timestamp": now, "type": typ}

    @staticmethod
    def _book_msg(
        typ: str,
        key: str,
        m: Any,
        asks: list[tuple[int, int]],
        bids: list[tuple[int, int]],
        begin: int,
        nonce: int,
        offset: int,
        now: int,
    ) -> dict[str, Any]:
        updated_us = now * 1000
        return {
            "channel": key,
            "last_updated_at": updated_us,
            "offset": offset,
            "order_book": {
                "code": 0,
                "asks": wire.levels_json(m, asks),
                "bids": wire.levels_json(m, bids),
                "offset": offset,
                "nonce": nonce,
                "last_updated_at": updated_us,
                "begin_nonce": begin,
            },
            "timestamp": now,
            "type": typ,
        }

    def _publish(self, key: str, obj: dict[str, Any]) -> None:
        conns = self._subs.get(key)
        if not conns:
            return
        payload = orjson.dumps(obj)
        frame = ws_text_frame(payload)
        for c in list(conns):
            c.send_payload(payload, frame)

    def _publish_book(self, market: int, payload: bytes, nonces: tuple[int, int]) -> None:
        """An order-book delta, through the book-feed faults."""
        key = f"order_book:{market}"
        conns = self._subs.get(key)
        if not conns:
            return
        for out in self.faults.on_book_delta(market, payload, nonces):
            frame = ws_text_frame(out)
            for c in list(conns):
                c.send_payload(out, frame)

    def _batch_book(self, market: int, payload: Any) -> None:
        """One engine book change into the market's pending batch (the latest size of a
        level wins), published at the next multiple of book_batch_ms."""
        asks, bids, begin, nonce, offset = payload
        b = self._book_batch.get(market)
        if b is None:
            b = self._book_batch[market] = [{}, {}, begin, nonce, offset]
        b[0].update(asks)
        b[1].update(bids)
        b[3], b[4] = nonce, offset
        if self._book_timer is None:
            step = self.config.book_batch_ms * 1_000_000
            now = self.clock.monotonic_ns()
            try:
                self._book_timer = self.clock.call_later(
                    (step - now % step) / 1e9, self.flush_books
                )
            except RuntimeError:  # no running loop (engine driven directly): publish now
                self.flush_books()

    def flush_books(self, market: int | None = None) -> None:
        """Publish the pending book batches (of ``market`` only, or all): one delta each,
        from the nonce the last one ended at to the latest."""
        if market is None:
            if self._book_timer is not None:
                self._book_timer.cancel()
                self._book_timer = None
            pending, self._book_batch = self._book_batch, {}
        else:
            one = self._book_batch.pop(market, None)
            pending = {market: one} if one is not None else {}
        now = self.clock.wall_ms()
        for mid, (asks, bids, begin, nonce, offset) in pending.items():
            key = f"order_book:{mid}"
            if not self._subs.get(key):
                continue
            msg = self._book_msg(
                "update/order_book",
                key,
                self.exchange.markets[mid],
                sorted(asks.items()),
                sorted(bids.items(), reverse=True),
                begin,
                nonce,
                offset,
                now,
            )
            self._publish_book(mid, orjson.dumps(msg), (begin, nonce))

    def pump(self) -> None:
        """Drain the engine's events and send them to subscribers."""
        ex = self.exchange
        events = ex.drain_events()
        if not events:
            return
        now = self.clock.wall_ms()
        subs = self._subs
        accounts: dict[int, None] = {}
        markets: dict[int, None] = {}
        for ev in events:
            kind = ev.kind
            if kind == "book":
                assert ev.market is not None  # a book event is of one market
                key = f"order_book:{ev.market}"
                if subs.get(key):
                    if self.config.book_batch_ms:
                        self._batch_book(ev.market, ev.payload)
                        continue
                    asks, bids, begin, nonce, offset = ev.payload
                    m = ex.markets[ev.market]
                    msg = self._book_msg(
                        "update/order_book", key, m, asks, bids, begin, nonce, offset, now
                    )
                    self._publish_book(ev.market, orjson.dumps(msg), (begin, nonce))
            elif kind == "trade":
                assert ev.market is not None  # a trade is of one market
                t = ev.payload
                m = ex.markets[ev.market]
                key = f"trade:{ev.market}"
                if subs.get(key):
                    tj = [wire.trade_json(ex, t)]
                    liq = t.get("kind") == "liquidation"
                    self._publish(
                        key,
                        {
                            "channel": key,
                            "liquidation_trades": tj if liq else [],
                            "nonce": m.book_nonce,
                            "trades": [] if liq else tj,
                            "type": "update/trade",
                        },
                    )
                for acct in {t["ask_account_id"], t["bid_account_id"]}:
                    key = f"account_all_trades:{acct}"
                    if subs.get(key):
                        self._publish(
                            key,
                            {
                                "type": "update/account_all_trades",
                                "channel": key,
                                "trades": {str(ev.market): [wire.trade_json(ex, t, acct)]},
                            },
                        )
            elif kind == "order":
                o = ev.payload
                key = f"account_orders:{o.market}:{o.account}"
                key2 = f"account_all_orders:{o.account}"
                if not (subs.get(key) or subs.get(key2)):
                    continue
                body = wire.order_json(ex, o)
                if subs.get(key):
                    self._publish(
                        key,
                        {
                            "type": "update/account_orders",
                            "channel": key,
                            "account": o.account,
                            "nonce": ex.markets[o.market].book_nonce,
                            "orders": {str(o.market): [body]},
                        },
                    )
                if subs.get(key2):
                    self._publish(
                        key2,
                        {
                            "type": "update/account_all_orders",
                            "channel": key2,
                            "orders": {str(o.market): [body]},
                        },
                    )
            elif kind == "account":
                accounts[ev.account] = None  # type: ignore[index]
            elif kind == "market":
                markets[ev.market] = None  # type: ignore[index]
        for acct in accounts:
            for k in ("account_all_positions", "user_stats"):
                key = f"{k}:{acct}"
                if subs.get(key):
                    self._publish(key, self._account_msg(k, f"update/{k}", key, acct, now))
        if markets:
            for mid in markets:
                key = f"market_stats:{mid}"
                if subs.get(key):
                    self._publish(key, self._stats_msg("update/market_stats", key, [mid], now))
            if subs.get("market_stats:all"):
                self._publish(
                    "market_stats:all",
                    self._stats_msg("update/market_stats", "market_stats:all", [], now),
                )


def _control_error(exc: BaseException) -> str:
    """A control request's error as a sentence (a bare KeyError prints only the key)."""
    if isinstance(exc, KeyError):
        return f"missing {exc.args[0]!r}" if exc.args else "missing argument"
    if isinstance(exc, TypeError):
        return f"bad argument type: {exc}"
    return str(exc)
