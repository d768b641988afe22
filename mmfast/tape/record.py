"""``mmfast record``: the venue's public streams of chosen markets, into a tape.

The markets (symbols or ids) are resolved through ``orderBookDetails`` as the connector does
(``fetch_markets``), and their metadata goes into the tape's
header. One ``WsStream`` (the connector's reconnecting WebSocket: subscribe deadlines,
resubscribes, JSON pings, jittered reconnects) carries ``order_book``, ``trade`` and
``market_stats`` of each market; every message is written with its receive times as it
arrives (``mmfast.tape.file``). Book frames also go through a compiled ``OrderBook`` per
market, only to check the nonce chain: a gap is written to the tape and the book resubscribed
(a fresh snapshot follows), and so is every disconnect (the stream reconnects and resubscribes
by itself). No key: public channels only.

The tape is flushed (a whole compressed frame) about once a second, and closed with its end
record on stop (``--duration``, SIGINT, SIGTERM, SIGHUP): an interrupted recording is a
complete, readable tape up to the stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import random
import sys
import time as _time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit, urlunsplit

import orjson

from mmfast._core.book import GAP, OrderBook
from mmfast.connector.lighter.budget import STANDARD, RateBudget
from mmfast.connector.lighter.config import LighterConfig
from mmfast.connector.lighter.listener import stream_listener
from mmfast.connector.lighter.markets import MarketInfo
from mmfast.connector.lighter.rest import fetch_markets
from mmfast.connector.lighter.ws import StreamHalted, Subscription, WsStream
from mmfast.core.log import get_logger
from mmfast.core.timesource import REAL_TIME, RealTime, TimeSource
from mmfast.tape.events import TapeError, TapeMarket
from mmfast.tape.file import TapeWriter

__all__ = [
    "RecordOptions",
    "RecordResult",
    "Recorder",
    "resolve_markets",
    "sim_urls",
    "tape_market",
]

_log = get_logger("record")
_STREAM_DEFAULTS = {
    f.name: f.default
    for f in dataclasses.fields(LighterConfig)
    if f.default is not dataclasses.MISSING
}


@dataclass(frozen=True, slots=True)
class RecordOptions:
    """What to record, from where, into which file."""

    rest_url: str  # REST base (the connector adds /api/v1)
    ws_url: str  # WebSocket endpoint (.../stream)
    markets: tuple[str, ...]  # symbols or ids
    out: Path  # the tape (must not exist)
    duration_s: float | None = None  # stop by itself after this long
    flush_interval_s: float = 1.0  # a compressed frame on disk at least this often
    status_interval_s: float = 10.0  # a progress line on stderr this often (0: none)
    max_connect_failures: int = 60  # consecutive failed reconnects before giving up
    startup_deadline_s: float = 30.0  # orderBookDetails retried this long

    def __post_init__(self) -> None:
        for name, url, schemes in (
            ("rest url", self.rest_url, ("http", "https")),
            ("ws url", self.ws_url, ("ws", "wss")),
        ):
            parts = urlsplit(url)
            if parts.scheme not in schemes or not parts.hostname:
                raise ValueError(f"the {name} must be a {'/'.join(schemes)} URL, got {url!r}")
        if not self.markets:
            raise ValueError("no market to record")
        if self.duration_s is not None and not self.duration_s > 0:
            raise ValueError("the duration must be > 0")
        if not self.flush_interval_s > 0:
            raise ValueError("the flush interval must be > 0")


@dataclass(slots=True)
class RecordResult:
    """How a recording ended."""

    path: Path
    markets: tuple[TapeMarket, ...]
    messages: int
    gaps: int
    duration_s: float
    reason: str  # the end record's reason
    error: str = ""  # why it stopped early ("" when it did not)


def sim_urls(url: str) -> tuple[str, str]:
    """(REST base, WebSocket URL) of an ``mmfast sim`` from its base URL (``http://h:p``)."""
    parts = urlsplit(url.rstrip("/"))
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"--sim must be the simulator's http:// URL, got {url!r}")
    ws = urlunsplit(("ws" if parts.scheme == "http" else "wss", parts.netloc, "/stream", "", ""))
    return urlunsplit((parts.scheme, parts.netloc, "", "", "")), ws


def tape_market(info: MarketInfo) -> TapeMarket:
    """A market's metadata as a tape keeps it."""
    return TapeMarket(
        info.market_id,
        info.symbol,
        info.price_decimals,
        info.size_decimals,
        min_base_lots=info.min_base_lots,
        min_quote_micro=info.min_quote_micro,
        taker_fee_1e6=info.taker_fee_1e6,
        maker_fee_1e6=info.maker_fee_1e6,
        default_imf_1e4=info.default_imf_1e4,
        min_imf_1e4=info.min_imf_1e4,
        maintenance_mf_1e4=info.maintenance_mf_1e4,
        closeout_mf_1e4=info.closeout_mf_1e4,
    )


def resolve_markets(specs: Sequence[str], listed: dict[int, MarketInfo]) -> list[MarketInfo]:
    """Each spec (an id, or a symbol, any case) -> the listed market; ValueError naming the
    spec and what the venue lists when one is not there."""
    out: list[MarketInfo] = []
    for spec in specs:
        s = spec.strip()
        info = None
        if s.isdigit():
            info = listed.get(int(s))
        else:
            found = [i for i in listed.values() if i.symbol.upper() == s.upper()]
            info = found[0] if found else None
        if info is None:
            names = ", ".join(
                f"{i.market_id}={i.symbol}"
                for i in sorted(listed.values(), key=lambda i: i.market_id)[:30]
            )
            raise ValueError(
                f"market {spec!r} is not listed by the venue (it lists {names}"
                f"{', ...' if len(listed) > 30 else ''})"
            )
        if info.market_id in {m.market_id for m in out}:
            raise ValueError(f"market {spec!r} is given twice")
        out.append(info)
    return out


class Recorder:
    """One recording (see the module doc). ``run()`` returns when ``request_stop`` is called
    (a signal), the duration is over, or the stream gave up."""

    def __init__(
        self, opts: RecordOptions, *, time: TimeSource = REAL_TIME, err: IO[str] | None = None
    ) -> None:
        self.opts = opts
        self.time = time
        self.err = err or sys.stderr
        self.writer: TapeWriter | None = None
        self.markets: tuple[TapeMarket, ...] = ()
        self.books: dict[int, OrderBook] = {}
        self.stream: WsStream | None = None
        self._done: asyncio.Event | None = None
        self._stopping = False
        self._error = ""
        self._stop_reason = ""
        self.downs = 0  # disconnects recorded as gaps
        self.nonce_gaps = 0  # broken nonce chains recorded as gaps

    # ------------------------------------------------------------------ clocks
    def _stamp(self) -> tuple[int, int]:
        """(wall ns, monotonic ns) now."""
        if isinstance(self.time, RealTime):
            return _time.time_ns(), _time.monotonic_ns()
        return self.time.wall_ms() * 1_000_000, self.time.monotonic_ns()

    # ------------------------------------------------------------------ start-up
    async def _listed(self) -> dict[int, MarketInfo]:
        o = self.opts
        return await fetch_markets(o.rest_url, STANDARD, o.startup_deadline_s, time=self.time)

    async def open(self) -> None:
        """Resolve the markets and create the tape (nothing is created on a failure)."""
        infos = resolve_markets(self.opts.markets, await self._listed())
        self.markets = tuple(tape_market(i) for i in infos)
        wall, mono = self._stamp()
        source = {
            "rest_url": self.opts.rest_url,
            "ws_url": self.opts.ws_url,
            "recorder": "mmfast record",
        }
        self.writer = TapeWriter(
            self.opts.out, self.markets, source=source, start_wall_ns=wall, start_mono_ns=mono
        )

    # ------------------------------------------------------------------ stream hooks
    def _book_step(self, market: int) -> Any:
        book = self.books[market]
        writer = self.writer
        assert writer is not None

        def step(data: bytes, now: int) -> int:
            wall, mono = self._stamp()
            writer.message(wall, mono, data)
            return book.apply_frame(data)  # a BookError is counted by the stream

        return step

    def on_message(self, stream: WsStream, msg: dict[str, Any], now_ns: int) -> None:
        if self.writer is not None and not self.writer.closed:
            wall, mono = self._stamp()
            self.writer.message(wall, mono, orjson.dumps(msg))

    def on_book(self, stream: WsStream, market: int, code: int, now_ns: int) -> None:
        if code == GAP and self.writer is not None and not self.writer.closed:
            self.nonce_gaps += 1
            wall, mono = self._stamp()
            self.writer.gap(wall, mono, "book nonce gap: resubscribed", (market,))
            stream.resubscribe(f"order_book:{market}")

    def on_stream_down(self, stream: WsStream, reason: str) -> None:
        if self._stopping or self.writer is None or self.writer.closed:
            return
        self.downs += 1  # the stream invalidated the books: the next snapshots start again
        wall, mono = self._stamp()
        self.writer.gap(
            wall, mono, f"stream down: {reason}", tuple(m.market_id for m in self.markets)
        )
        self.writer.flush()
        _log.warning("stream down (%s): reconnecting", reason)

    def on_subscribe_failed(self, stream: WsStream, key: str, code: int, message: str) -> None:
        _log.warning("subscribe %s failed: %d %s", key, code, message)

    def on_halt(self, stream: WsStream, error: StreamHalted) -> None:
        self._error = f"the stream gave up: {error}"
        if self._done is not None:
            self._done.set()

    def request_stop(self, reason: str) -> None:
        """Stop recording (a signal's name, ...): the tape is closed with ``reason``."""
        if not self._stop_reason:
            self._stop_reason = reason
        if self._done is not None:
            self._done.set()

    # ------------------------------------------------------------------ run
    async def run(self) -> RecordResult:
        """Record until a stop request, the duration or a halt; the tape is closed either
        way."""
        o = self.opts
        if self.writer is None:
            await self.open()
        writer = self.writer
        assert writer is not None
        self._done = asyncio.Event()
        if self._stop_reason:  # asked to stop while it was starting
            self._done.set()
        t0 = self.time.monotonic_ns()
        subs: list[Subscription] = []
        for m in self.markets:
            self.books[m.market_id] = OrderBook(m.market_id, m.price_decimals, m.size_decimals)
            subs += [
                Subscription(f"order_book/{m.market_id}"),
                Subscription(f"trade/{m.market_id}"),
                Subscription(f"market_stats/{m.market_id}"),
            ]
        d = _STREAM_DEFAULTS
        stream = self.stream = WsStream(
            "ws.record",
            o.ws_url,
            subs,
            stream_listener(self),
            RateBudget(STANDARD, self.time),
            books=self.books,
            time=self.time,
            rng=random.Random(),
            snapshot_deadline_s=d["snapshot_deadline_s"],
            ping_idle_s=d["ping_idle_s"],
            pong_timeout_s=d["pong_timeout_s"],
            connect_timeout_s=d["connect_timeout_s"],
            backoff_min_s=d["backoff_min_s"],
            backoff_max_s=d["backoff_max_s"],
            max_connect_failures=o.max_connect_failures,
            max_age_s=d["ws_max_age_s"],
            send_idle_s=d["ws_send_idle_s"],
        )
        for m in self.markets:
            stream.steps[m.market_id] = self._book_step(m.market_id)
        tasks = [
            asyncio.ensure_future(self._flush_loop()),
            asyncio.ensure_future(self._status_loop()),
        ]
        stream.start()
        reason = ""
        try:
            timeout = None if o.duration_s is None else o.duration_s / self.time.scale
            with contextlib.suppress(TimeoutError):  # the duration is over
                await asyncio.wait_for(self._done.wait(), timeout)
            if self._error:
                reason = "error"
            elif self._stop_reason:
                reason = self._stop_reason
            else:
                reason = f"duration {o.duration_s:g} s"
        finally:
            self._stopping = True
            for t in tasks:
                t.cancel()
            await stream.stop()  # closes the socket, waits for the stream's tasks
            wall, mono = self._stamp()
            writer.close(wall, mono, reason or "interrupted")
        return RecordResult(
            writer.path,
            self.markets,
            writer.messages,
            writer.gaps,
            (self.time.monotonic_ns() - t0) / 1e9,
            reason,
            self._error,
        )

    async def _flush_loop(self) -> None:
        while True:
            await self.time.sleep(self.opts.flush_interval_s)
            if self.writer is not None:
                self.writer.flush()

    async def _status_loop(self) -> None:
        if not self.opts.status_interval_s:
            return
        while True:
            await self.time.sleep(self.opts.status_interval_s)
            w = self.writer
            if w is not None and not w.closed:
                self.err.write(
                    f"recording {w.path}: {w.messages} messages, {w.gaps} gaps, "
                    f"{w.bytes_in / 1e6:.1f} MB of JSON\n"
                )
                self.err.flush()


def check_out_path(out: Path) -> str:
    """Why the tape cannot be written at ``out`` ("" when it can)."""
    if out.exists():
        return f"{out} exists: a tape is never overwritten"
    if not out.parent.is_dir():
        return f"{out.parent} is not a directory"
    return ""


def open_error(exc: BaseException) -> str:
    """A start-up failure as one sentence."""
    if isinstance(exc, (TapeError, ValueError)):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"
