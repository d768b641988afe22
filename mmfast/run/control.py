"""Control and metrics endpoint of ``mmfast run`` (off unless ``--control-port`` is given).

- Binds 127.0.0.1 by default. Any other (non-loopback) address is refused unless a token is
  set (``MMFAST_CONTROL_TOKEN``, a secret: redacted like the API key, never on argv).
- ``GET /status`` (JSON snapshot), ``GET /metrics`` (Prometheus text, mmfast.run.metrics) and
  ``GET /book``
  (the bot's order book of its market: nonce, in sync, snapshots taken, every level; what a
  book oracle compares with the venue's at the same nonce) are read-only; off loopback they
  need the token too.
- Mutations need the token (``Authorization: Bearer <token>``) always: ``POST /pause`` (kill
  switch manual pause: cancel all, keep running), ``POST /resume``, ``POST /stop`` (shutdown as
  on SIGTERM). Without a valid token they answer 401 and change nothing.
- The token is compared in constant time (``hmac.compare_digest``).
"""

from __future__ import annotations

import asyncio
import hmac
import secrets
from typing import TYPE_CHECKING, Any, Final, cast

import orjson
from aiohttp import web

from mmfast.connector.lighter.secret import Secret
from mmfast.risk.killswitch import KillAction, TripReason

if TYPE_CHECKING:
    from mmfast.run.runner import Runner

__all__ = [
    "ENV_CONTROL_TOKEN",
    "LOOPBACK",
    "MIN_TOKEN_CHARS",
    "ControlServer",
    "check_bind",
    "check_token",
    "new_token",
]

ENV_CONTROL_TOKEN: Final = "MMFAST_CONTROL_TOKEN"
LOOPBACK: Final = frozenset({"127.0.0.1", "::1", "localhost"})


MIN_TOKEN_CHARS: Final = 32


def check_token(token: Secret | None) -> str | None:
    """Why ``token`` is refused (None: acceptable or absent)."""
    if token is not None and len(token.reveal()) < MIN_TOKEN_CHARS:
        return (
            f"{ENV_CONTROL_TOKEN} must be at least {MIN_TOKEN_CHARS} characters (got "
            f"{len(token.reveal())}): a short token can be guessed"
        )
    return None


def new_token() -> Secret:
    """A fresh control token (43 URL-safe characters, 256 bits from the OS)."""
    return Secret(secrets.token_urlsafe(32))


def check_bind(host: str, token: Secret | None) -> str | None:
    """Why binding ``host`` is refused (None: allowed)."""
    if host not in LOOPBACK and token is None:
        return (
            f"--control-host {host!r} is not loopback: set {ENV_CONTROL_TOKEN} to expose "
            "the control endpoint beyond 127.0.0.1"
        )
    return None


class ControlServer:
    """aiohttp server on the runner's loop (see the module doc)."""

    def __init__(
        self, runner: Runner, host: str = "127.0.0.1", port: int = 0, token: Secret | None = None
    ) -> None:
        why = check_token(token) or check_bind(host, token)
        if why:
            raise ValueError(why)
        self.runner = runner
        self.host = host
        self.port = port
        self._token = token
        self._loopback = host in LOOPBACK
        self._app_runner: web.AppRunner | None = None
        self.url = ""  # http://host:port once started
        self.unauthorized = 0  # requests refused with 401

    def _authorized(self, request: web.Request) -> bool:
        token = self._token
        if token is None:
            return False
        got = request.headers.get("Authorization", "")
        prefix = "Bearer "
        value = got[len(prefix) :] if got.startswith(prefix) else ""
        return hmac.compare_digest(value.encode(), token.reveal().encode())

    def _deny(self) -> web.Response:
        self.unauthorized += 1
        return web.json_response({"ok": False, "error": "unauthorized"}, status=401)

    async def _status(self, request: web.Request) -> web.Response:
        if not self._loopback and not self._authorized(request):
            return self._deny()
        body = orjson.dumps(self.runner.snapshot(), default=str, option=orjson.OPT_NON_STR_KEYS)
        return web.Response(
            body=self.runner.redactor.redact(body.decode()).encode(),
            content_type="application/json",
        )

    async def _book(self, request: web.Request) -> web.Response:
        if not self._loopback and not self._authorized(request):
            return self._deny()
        from mmfast._core.book import ASK, BID

        c, m = self.runner.connector, self.runner.market
        books = getattr(getattr(c, "market_data", None), "books", None) or {}
        book = books.get(m)
        if book is None:
            return web.json_response({"ok": False, "error": "no book yet"}, status=409)
        # One read on the loop: levels and nonce of the same state.
        return web.Response(
            body=orjson.dumps(
                {
                    "market": m,
                    "nonce": book.nonce,
                    "in_sync": bool(book.in_sync()),
                    "snapshots": book.snapshots,
                    "asks": book.top(ASK, 1_000_000),
                    "bids": book.top(BID, 1_000_000),
                }
            ),
            content_type="application/json",
        )

    async def _metrics(self, request: web.Request) -> web.Response:
        if not self._loopback and not self._authorized(request):
            return self._deny()
        from mmfast.run.metrics import metrics_response

        return metrics_response(self.runner)

    async def _mutate(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._deny()
        action = request.match_info["action"]
        s = self.runner.strategy
        kill = None if s is None else s.kill
        if action == "stop":
            self.runner.request_stop("control: stop")
            return web.json_response({"ok": True})
        if kill is None:
            return web.json_response({"ok": False, "error": "not running"}, status=409)
        if action == "pause":
            kill.trip(TripReason.MANUAL, KillAction.PAUSE)
            return web.json_response({"ok": True, "state": kill.state.value})
        ok = kill.resume()
        return web.json_response({"ok": ok, "state": kill.state.value}, status=200 if ok else 409)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/status", self._status)
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/book", self._book)
        app.router.add_post("/{action:pause|resume|stop}", self._mutate)
        self._app_runner = web.AppRunner(app, access_log=None)
        await self._app_runner.setup()
        site = web.TCPSite(self._app_runner, self.host, self.port)
        await site.start()
        # aiohttp keeps its listening asyncio.Server private: the port an ephemeral bind got.
        server = cast("asyncio.Server | None", site._server)
        sockets = server.sockets if server is not None else ()
        port = sockets[0].getsockname()[1] if sockets else self.port
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.url = f"http://{host}:{port}"

    async def stop(self) -> None:
        if self._app_runner is not None:
            await self._app_runner.cleanup()
            self._app_runner = None

    def status(self) -> dict[str, Any]:
        return {"url": self.url, "unauthorized": self.unauthorized}
