"""A read-only venue session for the operator diagnostics: config, token, REST, account stream.

``resolve_target`` turns an mmfast config file plus command-line overrides into a
``DiagTarget`` (validated by the config loader's own rules: loopback only in sim mode, https/wss
and the right chain id elsewhere, the key from the environment or a key file, never argv).
``VenueSession`` then opens what a check needs and closes all of it on exit, on success or on
error: the signer thread that makes auth tokens, one aiohttp session (``LighterRest``) and, when
asked, one picows connection (``WsStream``) carrying the account's private channels.

Nothing is placed: the session has no send path. Every request draws from a ``RateBudget``
(the caller's, when it runs inside the bot, or one of its own with the venue's limits) at
``Priority.NORMAL``, so a diagnostic never eats the reserve kept for cancels.

Orders are compared and shown as ``OrderView`` (ints: ticks, lots) parsed from the venue's
payloads with the market's decimals from ``orderBookDetails``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmfast.conf import ConfigError, example_path, parse_config
from mmfast.connector.lighter.auth import TokenCache
from mmfast.connector.lighter.budget import PREMIUM, Priority, RateBudget
from mmfast.connector.lighter.markets import MarketInfo, parse_order_book_details
from mmfast.connector.lighter.rest import LighterRest
from mmfast.connector.lighter.secret import ApiKey, redact
from mmfast.connector.lighter.ws import StreamHalted, StreamState, Subscription, WsStream
from mmfast.core.errors import MmfastError
from mmfast.core.log import get_logger
from mmfast.core.timesource import REAL_TIME, TimeSource
from mmfast.core.units import parse_units

__all__ = [
    "ACTIVE_STATUSES",
    "DiagError",
    "DiagTarget",
    "OrderView",
    "VenueSession",
    "order_view",
    "position_lots",
    "resolve_target",
]

_log = get_logger("diagnostics")

# Statuses of an order that still rests (or is about to) on the venue.
ACTIVE_STATUSES = frozenset({"open", "pending", "in-progress"})
# Auth tokens for a one-shot check: short-lived (the venue takes up to 8 h).
TOKEN_LIFETIME_S = 3600
TOKEN_REFRESH_MARGIN_S = 300.0


class DiagError(MmfastError, RuntimeError):
    """A diagnostic could not run (bad config, venue unreachable, auth refused, ...).

    The message is for the operator; it never contains the key or an auth token.
    """


@dataclass(frozen=True, slots=True)
class DiagTarget:
    """Where and as whom a diagnostic looks. ``market_id``/``symbol``: at least one is set;
    both are matched against the venue's ``orderBookDetails``."""

    mode: str  # sim, testnet or mainnet
    rest_url: str  # REST base (the session adds /api/v1)
    ws_url: str  # WebSocket endpoint
    chain_id: int  # signed into auth tokens
    account_index: int
    api_key_index: int
    market_id: int | None
    symbol: str | None
    source: str = ""  # the config file it came from ("" for the shipped sim example)

    @property
    def market_label(self) -> str:
        if self.symbol and self.market_id is not None:
            return f"{self.symbol} ({self.market_id})"
        return self.symbol or str(self.market_id)


def resolve_target(
    config: str | os.PathLike[str] | None = None,
    *,
    market: str | None = None,
    rest_url: str | None = None,
    ws_url: str | None = None,
    account_index: int | None = None,
    api_key_index: int | None = None,
    live: bool = False,
    env: Mapping[str, str] | None = None,
) -> tuple[DiagTarget, ApiKey | None]:
    """The target and key of a diagnostic: ``config`` (None: the shipped sim config) with the
    overrides applied, validated by ``mmfast.conf`` (ConfigError otherwise).

    ``market`` is a symbol ("ETH") or a market id ("0"). ``ws_url`` defaults to ``rest_url``'s
    ``/stream`` (ws or wss) when only ``rest_url`` is given. The key (None in sim mode: the
    caller signs tokens with a throwaway key) comes from the environment or the key file, by the
    config rules; never from the command line.
    """
    path = example_path("sim") if config is None else Path(config)
    try:
        data = tomllib.loads(path.read_bytes().decode("utf-8"))
    except OSError as exc:
        raise ConfigError(
            [("", f"cannot read config file: {exc.strerror or exc}")], source=str(path)
        ) from None
    except UnicodeDecodeError:
        raise ConfigError([("", "config file is not UTF-8")], source=str(path)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([("", f"invalid TOML: {exc}")], source=str(path)) from None
    venue = dict(data.get("venue") or {}) if isinstance(data.get("venue", {}), dict) else None
    mkt = dict(data.get("market") or {}) if isinstance(data.get("market", {}), dict) else None
    if venue is not None and mkt is not None:
        if rest_url is not None:
            venue["rest_url"] = rest_url
            if ws_url is None:
                ws_url = _ws_url_of(rest_url)
        if ws_url is not None:
            venue["ws_url"] = ws_url
        if account_index is not None:
            venue["account_index"] = account_index
        if api_key_index is not None:
            venue["api_key_index"] = api_key_index
        if market is not None:
            text = market.strip()
            mkt = {"market_id": int(text)} if text.isdigit() else {"symbol": text}
        data = {**data, "venue": venue, "market": mkt}
    cfg = parse_config(data, live=live, env=env, source=str(path))
    v = cfg.venue
    if v.rest_url is None or v.ws_url is None:
        raise ConfigError(
            [
                (
                    "venue.rest_url",
                    "sim mode: point the diagnostic at a running "
                    "simulator (`mmfast sim` prints its URLs): pass "
                    "--rest-url (and --ws-url), or set both in the "
                    "config",
                )
            ],
            source=str(path),
        )
    assert v.chain_id is not None and v.account_index is not None
    assert v.api_key_index is not None
    target = DiagTarget(
        mode=v.mode,
        rest_url=v.rest_url,
        ws_url=v.ws_url,
        chain_id=v.chain_id,
        account_index=v.account_index,
        api_key_index=v.api_key_index,
        market_id=cfg.market.market_id,
        symbol=cfg.market.symbol,
        source="" if config is None else str(path),
    )
    return target, v.private_key


def _ws_url_of(rest_url: str) -> str:
    base = rest_url.rstrip("/")
    if base.startswith("https://"):
        return "wss://" + base[len("https://") :] + "/stream"
    if base.startswith("http://"):
        return "ws://" + base[len("http://") :] + "/stream"
    return base  # not a URL the config accepts: let it name the problem


@dataclass(frozen=True, slots=True)
class OrderView:
    """One open order as a diagnostic shows it: exact ints, plus the venue's status string."""

    order_index: int
    client_order_index: int
    is_ask: bool
    price_ticks: int
    remaining_lots: int
    initial_lots: int
    reduce_only: bool
    status: str
    time_in_force: str
    transaction_time: int  # venue µs of the last change (orders older than what we hold lose)

    @property
    def side(self) -> str:
        return "sell" if self.is_ask else "buy"

    def to_json(self, info: MarketInfo | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "order_index": self.order_index,
            "client_order_index": self.client_order_index,
            "side": self.side,
            "price_ticks": self.price_ticks,
            "remaining_lots": self.remaining_lots,
            "initial_lots": self.initial_lots,
            "reduce_only": self.reduce_only,
            "status": self.status,
            "time_in_force": self.time_in_force,
        }
        if info is not None:
            out["price"] = str(info.price_of(self.price_ticks))
            out["remaining"] = str(info.size_of(self.remaining_lots))
        return out


def _int(o: Mapping[str, Any], key: str) -> int:
    v = o.get(key)
    if isinstance(v, bool):
        raise ValueError(f"{key} is a boolean")
    if isinstance(v, int):
        return v
    if isinstance(v, str) and v.strip().lstrip("-").isdigit():
        return int(v)
    raise ValueError(f"{key} missing or not an integer")


def _decimal(o: Mapping[str, Any], key: str, decimals: int) -> int:
    v = o.get(key)
    if not isinstance(v, str):
        raise ValueError(f"{key} missing or not a decimal string")
    try:
        return parse_units(v, decimals)
    except ValueError as exc:
        raise ValueError(f"{key}: {exc}") from None


def order_view(o: Mapping[str, Any], info: MarketInfo) -> OrderView:
    """A venue order payload (accountActiveOrders / account_orders) as an ``OrderView``;
    ValueError naming the field when it is malformed."""
    ro = o.get("reduce_only", False)
    is_ask = o.get("is_ask")
    if not isinstance(is_ask, bool):
        side = o.get("side")
        if side not in ("buy", "sell"):
            raise ValueError("is_ask / side missing")
        is_ask = side == "sell"
    return OrderView(
        order_index=_int(o, "order_index"),
        client_order_index=_int(o, "client_order_index") if "client_order_index" in o else 0,
        is_ask=is_ask,
        price_ticks=_decimal(o, "price", info.price_decimals),
        remaining_lots=_decimal(o, "remaining_base_amount", info.size_decimals),
        initial_lots=_decimal(o, "initial_base_amount", info.size_decimals),
        reduce_only=bool(ro) if isinstance(ro, bool | int) else str(ro).lower() == "true",
        status=str(o.get("status", "")),
        time_in_force=str(o.get("time_in_force", "")),
        transaction_time=o["transaction_time"] if type(o.get("transaction_time")) is int else 0,
    )


def position_lots(p: Mapping[str, Any], info: MarketInfo) -> int:
    """A venue position payload (REST account or account_all_positions) -> signed lots."""
    size = _decimal(p, "position", info.size_decimals)
    sign = p.get("sign", 1)
    return -size if sign == -1 else size


class _AccountListener:
    """Collects the account channels of one stream (loop thread only)."""

    def __init__(self, session: VenueSession) -> None:
        self._s = session

    def on_stream_up(self, stream: WsStream) -> None:
        pass

    def on_stream_down(self, stream: WsStream, reason: str) -> None:
        self._s._on_down(reason)

    def on_subscribed(self, stream: WsStream, key: str) -> None:
        pass

    def on_subscribe_failed(self, stream: WsStream, key: str, code: int, message: str) -> None:
        self._s._fail(f"the venue refused the subscription to {key}: {code} {message}")

    def on_book(self, stream: WsStream, market: int, code: int, now_ns: int) -> None:
        pass

    def on_message(self, stream: WsStream, msg: dict[str, Any], now_ns: int) -> None:
        self._s._on_message(msg)

    def on_venue_time(self, venue_ms: int) -> None:
        pass

    def on_halt(self, stream: WsStream, error: StreamHalted) -> None:
        self._s._fail(str(error))


class VenueSession:
    """The read-only connections of one diagnostic run (see the module doc).

    ``async with VenueSession(target, key) as s:`` starts the signer and the REST session and
    loads the market; ``await s.open_stream(positions=...)`` subscribes the account channels and
    waits for their snapshots; ``s.ws_orders()`` / ``await s.rest_orders()`` /
    ``s.ws_position()`` / ``await s.rest_position()`` read the two views. Leaving the block
    closes the stream, the REST session, the token timer and the signer thread, whatever
    happened inside.
    """

    def __init__(
        self,
        target: DiagTarget,
        key: ApiKey | None = None,
        *,
        time: TimeSource = REAL_TIME,
        budget: RateBudget | None = None,
        timeout_s: float = 10.0,
        token_provider: Any = None,
        priority: Priority = Priority.NORMAL,
    ) -> None:
        self.target = target
        self._key = key  # None in sim mode: a throwaway key is made at start
        self._time = time
        self.budget = budget if budget is not None else RateBudget(PREMIUM, time)
        self._timeout_s = timeout_s
        self._provider = token_provider  # an AuthTokenProvider (tests); default: the signer
        self._priority = priority
        self._signer: Any = None  # SignerWorker, when this session started one
        self._sim_public_key: bytes | None = None  # registered with the simulator (sim mode)
        self.tokens: TokenCache | None = None
        self.rest: LighterRest | None = None
        self.stream: WsStream | None = None
        self.market: MarketInfo | None = None
        self._ws_orders: dict[int, OrderView] = {}
        self._ws_position: int | None = None  # lots; None until a positions frame arrived
        self._expected: set[str] = set()  # channels whose snapshot open_stream waits for
        self._snapshots: set[str] = set()  # channels whose snapshot arrived
        self._error: str | None = None  # a stream failure (fatal to the check)
        self._was_live = False
        self._changed = asyncio.Event()
        self.ws_updates = 0  # order updates applied after the snapshot
        self.ws_bad = 0  # account-order payloads that could not be parsed
        self.closed = False

    # --- lifecycle --------------------------------------------------------------------------
    async def __aenter__(self) -> VenueSession:
        try:
            await self.start()
        except BaseException:
            await self.aclose()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def start(self) -> None:
        t = self.target
        if self._provider is None:
            self._provider = self._start_signer()
            if t.mode == "sim" and self._sim_public_key is not None:
                # The simulator verifies auth tokens against the registered key, as the venue.
                from mmfast.sim.keys import register_api_key_http

                # Best effort: an account the simulator does not know refuses the key here and
                # the subscription later, which is the error the tools report.
                try:
                    await register_api_key_http(
                        t.rest_url,
                        t.account_index,
                        t.api_key_index,
                        self._sim_public_key,
                        timeout_s=self._timeout_s,
                    )
                except RuntimeError as exc:
                    _log.info("diagnostics: %s", exc)
        self.tokens = TokenCache(
            self._provider,
            lifetime_s=TOKEN_LIFETIME_S,
            refresh_margin_s=TOKEN_REFRESH_MARGIN_S,
            venue_now_s=lambda: self._time.wall_ms() / 1000,
        )
        self.rest = LighterRest(
            t.rest_url.rstrip("/") + "/api/v1",
            self.budget,
            self._time,
            tokens=self.tokens,
            timeout_s=self._timeout_s,
            max_retries=2,
        )
        await self.rest.start()
        body = await self.rest.order_book_details(t.market_id)
        markets = parse_order_book_details(body)
        self.market = self._pick_market(markets.values())

    def _start_signer(self) -> Any:
        from mmfast.connector.lighter.signer import SignerError, SignerWorker

        key = self._key
        if key is None:
            if self.target.mode != "sim":
                raise DiagError(
                    f"{self.target.mode} needs the API private key (set "
                    "MMFAST_API_PRIVATE_KEY or venue.key_file)"
                )
            from mmfast.connector.lighter.signer_lib import create_api_key

            priv, _pub, err = create_api_key()
            if err:
                raise DiagError("could not make a throwaway key for the simulator")
            key = ApiKey(priv)
        if self.target.mode == "sim":
            from mmfast._core.signer import public_key

            self._sim_public_key = public_key(key.reveal())
        worker = SignerWorker(
            key,
            account_index=self.target.account_index,
            api_key_index=self.target.api_key_index,
            chain_id=self.target.chain_id,
            name="mmfast-diag-signer",
        )
        try:
            worker.start()
        except SignerError as exc:
            raise DiagError(f"signer: {exc}") from None
        self._signer = worker
        return worker

    def _pick_market(self, markets: Iterable[MarketInfo]) -> MarketInfo:
        t = self.target
        for info in markets:
            if t.market_id is not None and info.market_id != t.market_id:
                continue
            if t.symbol is not None and info.symbol != t.symbol:
                continue
            return info
        raise DiagError(f"market {t.market_label} is not listed by the venue at {t.rest_url}")

    async def aclose(self) -> None:
        """Close everything this session opened (idempotent; never raises)."""
        if self.stream is not None:
            try:
                await self.stream.stop()
            except Exception:  # closing must go on whatever one part does
                _log.debug("diagnostics: stream stop failed", exc_info=True)
        if self.tokens is not None:
            self.tokens.cancel()
        if self.rest is not None:
            try:
                await self.rest.close()
            except Exception:
                _log.debug("diagnostics: REST close failed", exc_info=True)
        if self._signer is not None:
            signer = self._signer
            await asyncio.get_running_loop().run_in_executor(None, signer.stop)
        self.closed = True

    @property
    def resources_open(self) -> dict[str, bool]:
        """What is still open (all False after ``aclose``): for tests and status output."""
        s = self.stream
        return {
            "rest_session": self.rest is not None and not self.rest.closed,
            "ws_connection": s is not None and s.connected,
            "ws_task": s is not None
            and s.state not in (StreamState.STOPPED, StreamState.IDLE, StreamState.HALTED),
            "signer_thread": self._signer is not None and self._signer.running,
        }

    # --- the account stream -----------------------------------------------------------------
    async def open_stream(self, *, orders: bool = True, positions: bool = False) -> None:
        """Subscribe the account's private channels and wait (``timeout_s``) until each has
        sent its snapshot. DiagError if the venue refuses or nothing comes in time."""
        assert self.market is not None and self.tokens is not None
        t = self.target
        subs = []
        if orders:
            subs.append(
                Subscription(f"account_orders/{self.market.market_id}/{t.account_index}", True)
            )
        if positions:
            subs.append(Subscription(f"account_all_positions/{t.account_index}", True))
        self._expected = {s.key for s in subs}
        self.stream = WsStream(
            "diag.account",
            t.ws_url,
            subs,
            _AccountListener(self),
            self.budget,
            token=self.tokens.get,
            time=self._time,
            rng=random.Random(0),
            max_connect_failures=2,
            connect_timeout_s=min(self._timeout_s, 10.0),
            snapshot_deadline_s=self._timeout_s,
        )
        self.stream.start()
        deadline = self._time.monotonic_ns() + int(self._timeout_s * 1e9)
        while not self._expected <= self._snapshots:
            self._raise_if_failed()
            left = (deadline - self._time.monotonic_ns()) / 1e9
            if left <= 0:
                missing = ", ".join(sorted(self._expected - self._snapshots))
                why = self.stream.last_down_reason or f"stream {self.stream.state.name.lower()}"
                raise DiagError(
                    f"no snapshot of {missing} within {self._timeout_s:g} s from {t.ws_url} ({why})"
                )
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(left, 0.25) / self._time.scale)
        self._was_live = True

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise DiagError(self._error)

    def _fail(self, message: str) -> None:
        if self._error is None:
            self._error = redact(message)
        self._changed.set()

    def _on_down(self, reason: str) -> None:
        if self._was_live or self._snapshots:
            # The view would have to be rebuilt from a new snapshot: the check is void.
            self._fail(f"the account stream dropped during the check ({reason})")

    def _on_message(self, msg: dict[str, Any]) -> None:
        typ = str(msg.get("type", ""))
        channel = msg.get("channel")
        kind = typ.partition("/")[2]
        snapshot = typ.startswith("subscribed/")
        if kind == "account_orders":
            self._apply_orders(msg, snapshot)
        elif kind == "account_all_positions":
            self._apply_positions(msg)
        if snapshot and isinstance(channel, str):
            self._snapshots.add(channel)
        self._changed.set()

    def _apply_orders(self, msg: dict[str, Any], snapshot: bool) -> None:
        info = self.market
        assert info is not None
        orders = msg.get("orders")
        if not isinstance(orders, dict):
            self.ws_bad += 1
            return
        if snapshot:
            self._ws_orders.clear()
        for mkey, lst in orders.items():
            if str(mkey) != str(info.market_id) or not isinstance(lst, list):
                continue
            for o in lst:
                try:
                    v = order_view(o, info)
                except (ValueError, TypeError, AttributeError):
                    self.ws_bad += 1
                    continue
                old = self._ws_orders.get(v.order_index)
                if old is not None and v.transaction_time < old.transaction_time:
                    continue  # an older message than the one held: replayed or reordered
                if v.status in ACTIVE_STATUSES:
                    self._ws_orders[v.order_index] = v
                else:
                    self._ws_orders.pop(v.order_index, None)
                if not snapshot:
                    self.ws_updates += 1

    def _apply_positions(self, msg: dict[str, Any]) -> None:
        info = self.market
        assert info is not None
        positions = msg.get("positions")
        if not isinstance(positions, dict):
            self.ws_bad += 1
            return
        p = positions.get(str(info.market_id))
        try:
            # A full snapshot each frame: an absent market is flat.
            self._ws_position = 0 if p is None else position_lots(p, info)
        except (ValueError, TypeError, AttributeError):
            self.ws_bad += 1

    def ws_orders(self) -> dict[int, OrderView]:
        """The open orders of the market as the account stream shows them, by order_index."""
        self._raise_if_failed()
        return dict(self._ws_orders)

    def ws_position(self) -> int:
        """The position (signed lots) per account_all_positions."""
        self._raise_if_failed()
        if self._ws_position is None:
            raise DiagError("no positions frame from the account stream")
        return self._ws_position

    async def wait(self, seconds: float) -> None:
        """Let the stream deliver what is in flight (TimeSource seconds)."""
        if seconds > 0:
            await self._time.sleep(seconds)
        self._raise_if_failed()

    # --- REST ------------------------------------------------------------------------------------
    async def rest_orders(self) -> dict[int, OrderView]:
        """The open orders of the market per REST accountActiveOrders, by order_index."""
        assert self.rest is not None and self.market is not None
        raw = await self.rest.account_active_orders(
            self.target.account_index, self.market.market_id, priority=self._priority
        )
        out: dict[int, OrderView] = {}
        for o in raw:
            try:
                v = order_view(o, self.market)
            except (ValueError, TypeError, AttributeError) as exc:
                raise DiagError(f"accountActiveOrders: malformed order: {exc}") from None
            out[v.order_index] = v
        return out

    async def rest_position(self) -> int:
        """The position (signed lots) per REST ``account``."""
        assert self.rest is not None and self.market is not None
        acct = await self.rest.account(self.target.account_index, priority=self._priority)
        for p in acct.get("positions") or ():
            if isinstance(p, dict) and p.get("market_id") == self.market.market_id:
                try:
                    return position_lots(p, self.market)
                except (ValueError, TypeError) as exc:
                    raise DiagError(f"account: malformed position: {exc}") from None
        return 0

    def stream_stats(self) -> dict[str, int]:
        s = self.stream
        if s is None:
            return {}
        return {
            "frames": s.frames,
            "malformed": s.malformed,
            "updates": self.ws_updates,
            "bad_orders": self.ws_bad,
            "errors_received": s.errors_received,
        }
