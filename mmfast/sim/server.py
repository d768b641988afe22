"""REST (`/api/v1/...`) and WebSocket (`/stream`) on one loopback port, as on the venue.

The server is a thin transport over `Exchange`: it parses requests, calls the engine, drains the
engine's events and fans them out to subscribers. Faults and speed bumps can be layered here
later without touching the engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import WSMsgType, web

from mmfast.sim import errors as E
from mmfast.sim import wire
from mmfast.sim.clock import RealClock, SimClock
from mmfast.sim.config import LOOPBACK_HOSTS, SimConfig
from mmfast.sim.engine import MAX_COI, Exchange, TxRecord
from mmfast.sim.errors import VenueError
from mmfast.sim.truth import RequestLog, Truth

API = "/api/v1"
PUBLIC_KINDS = frozenset({"order_book", "trade", "market_stats"})
PRIVATE_KINDS = frozenset({"account_orders", "account_all_orders", "account_all_trades",
                           "account_all_positions", "user_stats"})
RATE_LIMIT_MESSAGE = '{"ratelimit": "didn\'t use volume quota"}'
VOLUME_QUOTA = 1_000_000  # reported by sendTx; quotas are not enforced in this part


def _dumps(obj: Any) -> str:
    return orjson.dumps(obj).decode()


class _Conn:
    """One WebSocket client."""

    __slots__ = ("closed", "last_pong_ns", "out", "subs", "ws")

    def __init__(self, ws: web.WebSocketResponse, now_ns: int) -> None:
        self.ws = ws  # the aiohttp socket
        self.subs: set[str] = set()  # subscribed channels, in the inbound "kind:args" form
        self.out: asyncio.Queue[str | None] = asyncio.Queue()  # frames to write, in order
        self.last_pong_ns = now_ns  # monotonic ns of the last pong
        self.closed = False  # no more frames once set

    def send(self, obj: Any) -> None:
        if not self.closed:
            self.out.put_nowait(obj if isinstance(obj, str) else _dumps(obj))


class Simulator:
    """The simulator as an async context manager::

        async with Simulator(SimConfig(seed=1)) as sim:
            sim.rest_url, sim.ws_url, sim.exchange, sim.truth
    """

    def __init__(self, config: SimConfig | None = None, clock: SimClock | None = None) -> None:
        self.config = config or SimConfig()
        if self.config.host not in LOOPBACK_HOSTS:
            raise ValueError(f"the simulator binds loopback only, not {self.config.host!r}")
        self.clock = clock or RealClock()
        self.exchange = Exchange(self.config, self.clock)
        self.requests = RequestLog(self.clock)
        self.truth = Truth(self.exchange, self.requests)
        self.port = 0
        self._conns: set[_Conn] = set()
        self._subs: dict[str, set[_Conn]] = {}  # channel -> connections
        self._runner: web.AppRunner | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._poll_task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ lifecycle
    @property
    def rest_url(self) -> str:
        return f"http://{self._url_host()}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self._url_host()}:{self.port}/stream"

    def _url_host(self) -> str:
        return f"[{self.config.host}]" if ":" in self.config.host else self.config.host

    async def start(self) -> None:
        app = web.Application(middlewares=[self._middleware])
        r = app.router
        for name, handler in (
            ("orderBooks", self._order_books), ("orderBookDetails", self._order_book_details),
            ("orderBookOrders", self._order_book_orders), ("recentTrades", self._recent_trades),
            ("nextNonce", self._next_nonce), ("apikeys", self._apikeys),
            ("account", self._account), ("accountActiveOrders", self._active_orders),
            ("accountInactiveOrders", self._inactive_orders),
            ("accountOrders", self._account_orders), ("tx", self._tx),
        ):
            r.add_get(f"{API}/{name}", handler)
        r.add_post(f"{API}/sendTx", self._send_tx)
        r.add_post(f"{API}/sendTxBatch", self._send_tx_batch)
        r.add_get("/stream", self._stream)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.host, self.config.port)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        self._poll_task = asyncio.create_task(self._poll_loop())

    async def stop(self) -> None:
        if self._poll_task is not None:
            self._poll_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poll_task
            self._poll_task = None
        for conn in list(self._conns):
            conn.closed = True
            conn.out.put_nowait(None)
            with contextlib.suppress(Exception):
                await conn.ws.close(code=1001, message=b"server shutdown")
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

    async def _poll_loop(self) -> None:
        interval = self.config.poll_interval_ms / 1000
        while True:
            await asyncio.sleep(interval)
            self.exchange.poll()
            self.pump()

    def run_engine(self, fn: Callable[[], Any]) -> Any:
        """Run `fn` against the exchange, then publish what it changed."""
        try:
            return fn()
        finally:
            self.pump()

    # ------------------------------------------------------------------ REST
    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path != "/stream":
            self.requests.record(f"{request.method} {request.path}")
        try:
            return await handler(request)
        except VenueError as exc:
            return web.json_response(exc.to_json(), status=400, dumps=_dumps)
        except (ValueError, KeyError) as exc:
            err = VenueError(E.INVALID_TX_INFO if request.method == "POST" else E.NOT_FOUND,
                             str(exc))
            return web.json_response(err.to_json(), status=400, dumps=_dumps)

    @staticmethod
    def _ok(body: dict[str, Any]) -> web.Response:
        return web.Response(body=orjson.dumps(body), content_type="application/json")

    @staticmethod
    def _int(q: Any, name: str, default: int | None = None) -> int:
        v = q.get(name)
        if v is None or v == "":
            if default is None:
                raise VenueError(E.INVALID_TX_INFO, f"{name} is required")
            return default
        try:
            return int(v)
        except ValueError as exc:
            raise VenueError(E.INVALID_TX_INFO, f"{name} must be an integer") from exc

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
        return self._ok({"code": 200, "order_book_details": details,
                         "spot_order_book_details": []})

    async def _order_book_orders(self, request: web.Request) -> web.Response:
        mid = self._int(request.query, "market_id")
        limit = self._int(request.query, "limit")
        if not 1 <= limit <= 250:
            raise VenueError(E.INVALID_TX_INFO, "limit must be within 1..250")
        self.exchange.poll()
        asks = self.exchange.book_orders(mid, True)
        bids = self.exchange.book_orders(mid, False)
        return self._ok({
            "code": 200,
            "total_asks": len(asks[:limit]),
            "asks": [wire.simple_order_json(self.exchange, o) for o in asks[:limit]],
            "total_bids": len(bids[:limit]),
            "bids": [wire.simple_order_json(self.exchange, o) for o in bids[:limit]],
        })

    async def _recent_trades(self, request: web.Request) -> web.Response:
        mid = self._int(request.query, "market_id")
        limit = self._int(request.query, "limit", 100)
        if not 1 <= limit <= 100:
            raise VenueError(E.INVALID_TX_INFO, "limit must be within 1..100")
        if mid not in self.exchange.markets:
            raise VenueError(E.INVALID_MARKET_INDEX, str(mid))
        trades = list(self.exchange.markets[mid].trades)[-limit:][::-1]
        return self._ok({"code": 200,
                         "trades": [wire.trade_json(self.exchange, t) for t in trades]})

    async def _next_nonce(self, request: web.Request) -> web.Response:
        self.exchange.poll()
        nonce = self.exchange.next_nonce(self._int(request.query, "account_index"),
                                         self._int(request.query, "api_key_index"))
        return self._ok({"code": 200, "nonce": nonce})

    async def _apikeys(self, request: web.Request) -> web.Response:
        acct = self.exchange.account(self._int(request.query, "account_index"))
        idx = self._int(request.query, "api_key_index", 255)
        if idx == 255:
            keys = sorted(acct.keys.values(), key=lambda k: k.index)
        else:
            keys = [self.exchange._key(acct, idx, create=False)]
        return self._ok({"code": 200, "api_keys": [
            {"account_index": acct.index, "api_key_index": k.index, "nonce": k.nonce,
             "public_key": k.public_key, "transaction_time": 0} for k in keys]})

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
        return self._ok({"code": 200, "total": len(accts), "next_cursor": "",
                         "accounts": [wire.account_json(self.exchange, a) for a in accts]})

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
        return self._ok({"code": 200, "next_cursor": "",
                         "orders": [wire.order_json(self.exchange, o) for o in orders]})

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
        return self._ok({"code": 200, "next_cursor": nxt,
                         "orders": [wire.order_json(self.exchange, o) for o in out]})

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
        return self._ok({"code": 200, "next_cursor": "",
                         "orders": [wire.order_json(self.exchange, o) for o in found]})

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
        return {"code": 200, "message": RATE_LIMIT_MESSAGE, "tx_hash": hashes,
                "predicted_execution_time_ms": predicted, "volume_quota_remaining": VOLUME_QUOTA}

    def submit(self, tx_type: int, tx_info: Any) -> dict[str, Any]:
        """sendTx: accept (RespSendTx body) or raise VenueError."""
        recs = self.run_engine(lambda: [self.exchange.submit(tx_type, tx_info)])
        return self._send_resp(recs, batch=False)

    def submit_batch(self, tx_types: list[int], tx_infos: list[Any]) -> dict[str, Any]:
        """sendTxBatch: accept all (RespSendTxBatch body) or raise VenueError."""
        recs = self.run_engine(lambda: self.exchange.submit_batch(tx_types, tx_infos))
        return self._send_resp(recs, batch=True)

    async def _send_tx(self, request: web.Request) -> web.Response:
        form = await request.post()
        tx_type = self._int(form, "tx_type")
        tx_info = form.get("tx_info")
        if not isinstance(tx_info, str):
            raise VenueError(E.INVALID_TX_INFO, "tx_info is required")
        return self._ok(self.submit(tx_type, tx_info))

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
        return self._ok(self.submit_batch(types, infos))

    # ------------------------------------------------------------------ WebSocket
    async def _stream(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True, max_msg_size=4 * 1024 * 1024)
        await ws.prepare(request)
        conn = _Conn(ws, self.clock.monotonic_ns())
        self._conns.add(conn)
        writer = asyncio.create_task(self._writer(conn))
        pinger = asyncio.create_task(self._pinger(conn))
        self._tasks.update((writer, pinger))
        conn.send({"session_id": uuid.UUID(int=self.exchange.rng.getrandbits(128)).hex,
                   "type": "connected"})
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    self._on_frame(conn, msg.data)
                elif msg.type == WSMsgType.BINARY:
                    self._on_frame(conn, msg.data.decode(errors="replace"))
                else:
                    break
        finally:
            self._drop(conn)
            pinger.cancel()
            conn.out.put_nowait(None)
            with contextlib.suppress(asyncio.CancelledError):
                await pinger
            with contextlib.suppress(asyncio.CancelledError):
                await writer
            self._tasks.discard(writer)
            self._tasks.discard(pinger)
        return ws

    def _drop(self, conn: _Conn) -> None:
        conn.closed = True
        self._conns.discard(conn)
        for ch in conn.subs:
            s = self._subs.get(ch)
            if s is not None:
                s.discard(conn)
        conn.subs.clear()

    async def _writer(self, conn: _Conn) -> None:
        while True:
            frame = await conn.out.get()
            if frame is None:
                return
            try:
                await conn.ws.send_str(frame)
            except (ConnectionError, RuntimeError):
                self._drop(conn)
                return

    async def _pinger(self, conn: _Conn) -> None:
        interval = self.config.ws_ping_interval_ms / 1000
        timeout_ns = self.config.ws_pong_timeout_ms * 1_000_000
        while not conn.closed:
            await asyncio.sleep(interval)
            if self.clock.monotonic_ns() - conn.last_pong_ns > timeout_ns:
                self._drop(conn)
                conn.out.put_nowait(None)
                await conn.ws.close(code=1008, message=b"no pong")
                return
            conn.send({"type": "ping"})

    def _error(self, conn: _Conn, code: int, detail: str = "", channel: str | None = None
               ) -> None:
        msg = E.MESSAGES.get(code, "error") + detail
        frame: dict[str, Any] = {"type": "error", "code": code, "message": msg}
        if channel is not None:
            frame["channel"] = channel
        conn.send(frame)

    def _on_frame(self, conn: _Conn, data: str) -> None:
        try:
            msg = orjson.loads(data)
        except orjson.JSONDecodeError:
            self._error(conn, E.WS_INVALID_JSON)
            return
        if not isinstance(msg, dict):
            self._error(conn, E.WS_INVALID_JSON)
            return
        kind = msg.get("type")
        self.requests.record(f"WS {kind}")
        if kind == "pong":
            conn.last_pong_ns = self.clock.monotonic_ns()
        elif kind == "ping":
            conn.send({"type": "pong"})
        elif kind == "subscribe":
            self._subscribe(conn, msg)
        elif kind == "unsubscribe":
            self._unsubscribe(conn, msg)
        elif kind in ("jsonapi/sendtx", "jsonapi/sendtxbatch"):
            self._ws_send_tx(conn, kind, msg.get("data"))
        else:
            self._error(conn, E.WS_INVALID_TYPE)

    def _ws_send_tx(self, conn: _Conn, kind: str, data: Any) -> None:
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
        conn.send({"type": kind, "data": reply})

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
        ex.poll()
        self.pump()
        conn.subs.add(key)
        self._subs.setdefault(key, set()).add(conn)
        conn.send(self._snapshot(kind, args, key))

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
        self._subs.get(key, set()).discard(conn)
        conn.send({"type": f"unsubscribed/{kind}", "channel": key})

    # ------------------------------------------------------------------ messages
    def _snapshot(self, kind: str, args: list[int], key: str) -> dict[str, Any]:
        ex = self.exchange
        now = self.clock.wall_ms()
        typ = f"subscribed/{kind}"
        if kind == "order_book":
            m = ex.markets[args[0]]
            asks, bids = ex.levels(args[0])
            return self._book_msg(typ, key, m, asks, bids, 0, m.book_nonce, m.offset, now)
        if kind == "trade":
            m = ex.markets[args[0]]
            trades = list(m.trades)[-50:]
            return {"channel": key, "liquidation_trades": [], "nonce": m.book_nonce,
                    "trades": [wire.trade_json(ex, t) for t in trades], "type": typ}
        if kind == "market_stats":
            return self._stats_msg(typ, key, args, now)
        account = args[-1]
        if kind == "account_orders":
            orders = ex.open_orders(account, args[0])
            return {"type": typ, "channel": key, "account": account,
                    "nonce": ex.markets[args[0]].book_nonce,
                    "orders": {str(args[0]): [wire.order_json(ex, o) for o in orders]}}
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
                    wire.trade_json(ex, t, account))
            for t in ex.fills(account):
                volume += t["usd_amount"]
            vol = volume / 1_000_000
            return {"type": typ, "channel": key, "trades": by_market, "total_volume": vol,
                    "monthly_volume": vol, "weekly_volume": vol, "daily_volume": vol}
        return self._account_msg(kind, typ, key, account, now)

    def _account_msg(self, kind: str, typ: str, key: str, account: int, now: int
                     ) -> dict[str, Any]:
        ex = self.exchange
        acct = ex.accounts[account]
        if kind == "account_all_positions":
            positions = {str(mid): wire.position_json(ex, acct, mid)
                         for mid, p in sorted(acct.positions.items()) if p.size}
            return {"type": typ, "channel": key, "positions": positions, "shares": [],
                    "last_funding_round": None, "last_funding_discount": None}
        return {"channel": key, "stats": wire.user_stats_json(ex, acct), "timestamp": now,
                "type": typ}

    def _stats_msg(self, typ: str, key: str, args: list[int], now: int) -> dict[str, Any]:
        ex = self.exchange
        if args:
            stats: Any = wire.market_stats(ex.markets[args[0]])
        else:
            stats = {str(mid): wire.market_stats(m) for mid, m in ex.markets.items()}
        return {"channel": key, "market_stats": stats, "timestamp": now, "type": typ}

    @staticmethod
    def _book_msg(typ: str, key: str, m: Any, asks: list[tuple[int, int]],
                  bids: list[tuple[int, int]], begin: int, nonce: int, offset: int, now: int
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
        frame = _dumps(obj)
        for c in conns:
            c.send(frame)

    def pump(self) -> None:
        """Drain the engine's events and send them to subscribers."""
        ex = self.exchange
        events = ex.drain_events()
        if not events:
            return
        now = self.clock.wall_ms()
        accounts: dict[int, None] = {}
        markets: dict[int, None] = {}
        for ev in events:
            if ev.kind == "book":
                asks, bids, begin, nonce, offset = ev.payload
                key = f"order_book:{ev.market}"
                if self._subs.get(key):
                    m = ex.markets[ev.market]
                    self._publish(key, self._book_msg("update/order_book", key, m, asks, bids,
                                                      begin, nonce, offset, now))
            elif ev.kind == "trade":
                t = ev.payload
                m = ex.markets[ev.market]
                key = f"trade:{ev.market}"
                if self._subs.get(key):
                    self._publish(key, {"channel": key, "liquidation_trades": [],
                                        "nonce": m.book_nonce,
                                        "trades": [wire.trade_json(ex, t)],
                                        "type": "update/trade"})
                for acct in {t["ask_account_id"], t["bid_account_id"]}:
                    key = f"account_all_trades:{acct}"
                    if self._subs.get(key):
                        self._publish(key, {"type": "update/account_all_trades", "channel": key,
                                            "trades": {str(ev.market):
                                                       [wire.trade_json(ex, t, acct)]}})
            elif ev.kind == "order":
                o = ev.payload
                body = wire.order_json(ex, o)
                key = f"account_orders:{o.market}:{o.account}"
                if self._subs.get(key):
                    self._publish(key, {"type": "update/account_orders", "channel": key,
                                        "account": o.account,
                                        "nonce": ex.markets[o.market].book_nonce,
                                        "orders": {str(o.market): [body]}})
                key = f"account_all_orders:{o.account}"
                if self._subs.get(key):
                    self._publish(key, {"type": "update/account_all_orders", "channel": key,
                                        "orders": {str(o.market): [body]}})
            elif ev.kind == "account":
                accounts[ev.account] = None
            elif ev.kind == "market":
                markets[ev.market] = None
        for acct in accounts:
            for kind in ("account_all_positions", "user_stats"):
                key = f"{kind}:{acct}"
                if self._subs.get(key):
                    self._publish(key, self._account_msg(kind, f"update/{kind}", key, acct, now))
        if markets:
            for mid in markets:
                key = f"market_stats:{mid}"
                if self._subs.get(key):
                    self._publish(key, self._stats_msg("update/market_stats", key, [mid], now))
            if self._subs.get("market_stats:all"):
                self._publish("market_stats:all", self._stats_msg(
                    "update/market_stats", "market_stats:all", [], now))
