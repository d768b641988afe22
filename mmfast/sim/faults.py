"""Fault injection: the failures a market maker must survive, on demand and scripted by seed.

`Simulator.faults` is a `Faults`. Every method takes effect on the simulator's loop thread (call
it there: from `SimThread.call`, from a coroutine on the simulator's loop, or through the
loopback control endpoint `POST /_sim/faults`). Each injection is recorded in the truth API
(`truth.faults()`) with the simulator's time, the fault's kind and details (phase
"injected"); faults that act later add a record when they act (phase "applied") and, for those
with a duration, when they end (phase "ended").

Connections are chosen with `conn`: None = every open WebSocket connection, an int = one
connection id (`truth.connections()`), a str = every connection subscribed to that channel
(inbound form, e.g. "order_book:0" or "account_all_orders:1001").

`FaultScript(seed, ...)` draws a random sequence of faults (kinds, arguments and times in
simulated seconds) from its seed; `Faults.run_script(script)` plays it, so a failing test
replays from its seed.
"""

from __future__ import annotations

import asyncio
import inspect
import math
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mmfast.sim.server import Simulator, _Conn

DROP_CODES = (1000, 1006, "rst")
HTTP_STORM_STATUSES = (429, 500, 502, 503, 504)


# Bounds of fault arguments, by name: durations at most a simulated day, counts at most a
# million (a fault of 1e308 s or 1e300 ms is a typo, not a scenario).
MAX_FAULT_S = 86_400.0
MAX_FAULT_MS = 86_400_000
MAX_FAULT_COUNT = 1_000_000
_BOOL_ARGS = frozenset({"on", "rest", "lost", "execute"})
_COUNT_ARGS = frozenset({"n", "count"})
_ID_ARGS = frozenset({"market", "account", "size", "price", "status", "nbytes"})


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return (_is_int(v) or isinstance(v, float)) and math.isfinite(v)


def check_fault_args(kind: str, fn: Callable[..., Any], args: dict[str, Any]) -> None:
    """Raise ValueError with a clear message when ``args`` do not fit fault ``kind``: unknown
    or missing names, wrong types, durations and counts out of bounds."""
    try:
        bound = inspect.signature(fn).bind(**args)
    except TypeError as exc:
        raise ValueError(f"{kind}: {exc}") from None
    for name, v in bound.arguments.items():
        if name in _BOOL_ARGS:
            ok = isinstance(v, bool)
            want = "true or false"
        elif name in ("seconds", "retry_after_s"):
            may_be_none = name == "retry_after_s" or kind == "refuse_connections"
            ok = (v is None and may_be_none) or (_is_num(v) and 0 < v <= MAX_FAULT_S)
            want = f"a number of seconds in (0, {MAX_FAULT_S:.0f}]"
        elif name == "ms":
            lo = -MAX_FAULT_MS if kind == "wall_offset_ms" else 0
            ok = _is_num(v) and lo <= v <= MAX_FAULT_MS
            want = f"a number of ms in [{lo}, {MAX_FAULT_MS}]"
        elif name in _COUNT_ARGS:
            ok = (v is None and kind == "delay_acks") or (_is_int(v) and 1 <= v <= MAX_FAULT_COUNT)
            want = f"an integer in [1, {MAX_FAULT_COUNT}]"
        elif name in _ID_ARGS:
            ok = _is_int(v) and v >= 0
            want = "a non-negative integer"
        else:
            continue  # checked by the fault itself (conn, side, mode, a drop's code)
        if not ok:
            raise ValueError(f"{kind}: {name} must be {want}, got {v!r}")


@dataclass(frozen=True, slots=True)
class FaultRecord:
    """One entry of the fault log."""

    time_ns: int  # simulator monotonic ns
    wall_ms: int  # simulator wall ms (skew included)
    kind: str  # fault method name, e.g. "drop", "book_gap"
    phase: str  # "injected", "applied" or "ended"
    details: dict[str, Any] = field(default_factory=dict)  # arguments and effect

    def to_json(self) -> dict[str, Any]:
        return {
            "time_ns": self.time_ns,
            "wall_ms": self.wall_ms,
            "kind": self.kind,
            "phase": self.phase,
            "details": self.details,
        }


@dataclass(slots=True)
class _AckFault:
    delay_s: float  # ack held this long (simulated seconds)
    lost: bool  # ack never sent
    execute: bool  # for a lost ack: the tx still reaches the venue


class Faults:
    """The fault-injection control surface of one `Simulator` (see the module docstring)."""

    # Methods the control endpoint may call (kind -> method name).
    KINDS = (
        "drop",
        "stall",
        "refuse_connections",
        "book_gap",
        "book_duplicate",
        "book_reorder",
        "book_delta_before_snapshot",
        "book_skip_snapshot",
        "book_crossed",
        "corrupt_frames",
        "truncated_frames",
        "oversized_frame",
        "delay_acks",
        "lose_acks",
        "late_reject",
        "http_status_storm",
        "http_timeouts",
        "out_of_band_fill",
        "liquidation",
        "wall_offset_ms",
        "clear",
    )

    def __init__(self, sim: Simulator) -> None:
        self._sim = sim
        # the last `SimConfig.fault_log_kept` records, oldest first
        self.log: deque[FaultRecord] = deque(maxlen=sim.config.fault_log_kept)
        self.refusing_ws = False  # new WebSocket connections are reset
        self.refusing_rest = False  # new REST requests are reset
        self._book: dict[int, deque[str]] = {}  # market -> pending feed faults, in order
        self._held_delta: dict[int, bytes] = {}  # market -> delta held back by a reorder
        self._skip_snapshot: dict[int, int] = {}  # market -> subscribes to leave unanswered
        self._early_delta: dict[int, int] = {}  # market -> subscribes to precede with a delta
        self._acks: deque[_AckFault] = deque()  # per-ack faults, next first
        self._ack_delay_s = 0.0  # standing ack delay (delay_acks with n=None)
        self._http: deque[tuple[int, float | None, bool]] = deque()  # (status, retry, execute)
        self._timeouts: deque[float] = deque()  # hold seconds of the next requests
        self._timers: set[asyncio.TimerHandle] = set()  # pending fault ends

    # ------------------------------------------------------------------ records
    def _record(self, kind: str, phase: str, **details: Any) -> FaultRecord:
        t = self._sim.clock
        rec = FaultRecord(t.monotonic_ns(), t.wall_ms(), kind, phase, details)
        self.log.append(rec)
        return rec

    def _later(self, seconds: float, fn: Callable[[], None]) -> None:
        timers = self._timers
        handle: asyncio.TimerHandle | None = None

        def fire() -> None:
            timers.discard(handle)
            fn()

        handle = self._sim.clock.call_later(seconds, fire)
        timers.add(handle)

    def _conns(self, conn: int | str | None) -> list[_Conn]:
        conns = sorted(self._sim.open_connections(), key=lambda c: c.id)
        if conn is None:
            return conns
        if isinstance(conn, int) and not isinstance(conn, bool):
            return [c for c in conns if c.id == conn]
        if isinstance(conn, str):
            return [c for c in conns if conn in c.subs]
        raise ValueError(f"conn must be None, an id or a channel, not {conn!r}")

    # ------------------------------------------------------------------ connections
    def drop(self, code: int | str = 1006, conn: int | str | None = None) -> list[int]:
        """Drop WebSocket connections: 1000 (close frame, normal), 1006 (TCP closed without a
        close frame) or "rst" (TCP reset). Returns the ids dropped."""
        if code not in DROP_CODES:
            raise ValueError(f"code must be one of {DROP_CODES}, not {code!r}")
        targets = self._conns(conn)
        ids = [c.id for c in targets]
        self._record("drop", "injected", code=code, conn=conn, conns=ids)
        for c in targets:
            self._sim.drop_connection(c, code)
        return ids

    def stall(self, seconds: float, conn: int | str | None = None) -> list[int]:
        """Silent stall: the socket stays open, but frames in both directions are held for
        `seconds` (simulated), then delivered in order. Returns the ids stalled."""
        if not seconds > 0:
            raise ValueError("seconds must be > 0")
        targets = self._conns(conn)
        ids = [c.id for c in targets]
        self._record("stall", "injected", seconds=seconds, conn=conn, conns=ids)
        for c in targets:
            c.stalled = True

        def end() -> None:
            held = 0
            for c in targets:
                held += self._sim.release_stall(c)
            self._record("stall", "ended", conns=ids, frames_released=held)

        self._later(seconds, end)
        return ids

    def refuse_connections(
        self, on: bool = True, seconds: float | None = None, rest: bool = False
    ) -> None:
        """Reset new WebSocket connections (and new REST requests if `rest`) while on;
        `seconds` turns it off again after that long."""
        self.refusing_ws = bool(on)
        self.refusing_rest = bool(on and rest)
        self._record("refuse_connections", "injected", on=bool(on), seconds=seconds, rest=rest)
        if on and seconds is not None:

            def end() -> None:
                self.refusing_ws = self.refusing_rest = False
                self._record("refuse_connections", "ended")

            self._later(seconds, end)

    # ------------------------------------------------------------------ book feed
    def _book_fault(self, kind: str, market: int, count: int) -> None:
        self._sim.exchange._market(market)
        if count < 1:
            raise ValueError("count must be >= 1")
        self._record(kind, "injected", market=market, count=count)
        q = self._book.setdefault(market, deque())
        q.extend([kind] * count)

    def book_gap(self, market: int, count: int = 1) -> None:
        """Lose the market's next order-book delta: the one after it does not chain."""
        self._book_fault("book_gap", market, count)

    def book_duplicate(self, market: int, count: int = 1) -> None:
        """Send the market's next order-book delta twice."""
        self._book_fault("book_duplicate", market, count)

    def book_reorder(self, market: int, count: int = 1) -> None:
        """Swap the market's next two order-book deltas."""
        self._book_fault("book_reorder", market, count)

    def book_delta_before_snapshot(self, market: int, count: int = 1) -> None:
        """The next `count` subscribes to the market's book get a delta before the snapshot."""
        self._sim.exchange._market(market)
        self._record("book_delta_before_snapshot", "injected", market=market, count=count)
        self._early_delta[market] = self._early_delta.get(market, 0) + count

    def book_skip_snapshot(self, market: int, count: int = 1) -> None:
        """The next `count` subscribes to the market's book get deltas but no snapshot."""
        self._sim.exchange._market(market)
        self._record("book_skip_snapshot", "injected", market=market, count=count)
        self._skip_snapshot[market] = self._skip_snapshot.get(market, 0) + count

    def book_crossed(self, market: int, seconds: float) -> None:
        """Show a crossed book for `seconds`: a phantom bid one tick above the best ask (or
        above the mark when there is no ask) is published in the chained feed, then removed."""
        if not seconds > 0:
            raise ValueError("seconds must be > 0")
        price = self._sim.set_phantom_bid(market)
        self._record("book_crossed", "injected", market=market, seconds=seconds, price=price)

        def end() -> None:
            self._sim.clear_phantom_bid(market)
            self._record("book_crossed", "ended", market=market)

        self._later(seconds, end)

    # hooks for the server ------------------------------------------------
    def on_book_delta(self, market: int, frame: bytes, nonces: tuple[int, int]) -> list[bytes]:
        """The frames to send for one order-book delta (0, 1 or 2, gap/dup/reorder)."""
        held = self._held_delta.pop(market, None)
        q = self._book.get(market)
        kind = q.popleft() if q else None
        out: list[bytes]
        if kind == "book_gap":
            out = []
        elif kind == "book_duplicate":
            out = [frame, frame]
        elif kind == "book_reorder":
            if held is not None:  # a second reorder while one is pending: send both now
                out = [frame, held]
                held = None
            else:
                self._held_delta[market] = frame
                out = []
        else:
            out = [frame]
        if kind is not None:
            self._record(kind, "applied", market=market, begin_nonce=nonces[0], nonce=nonces[1])
        if held is not None:
            out.append(held)  # the held delta goes after the one that overtook it
        return out

    def take_skip_snapshot(self, market: int) -> bool:
        n = self._skip_snapshot.get(market, 0)
        if n:
            self._skip_snapshot[market] = n - 1
            self._record("book_skip_snapshot", "applied", market=market)
        return bool(n)

    def take_delta_before_snapshot(self, market: int) -> bool:
        n = self._early_delta.get(market, 0)
        if n:
            self._early_delta[market] = n - 1
            self._record("book_delta_before_snapshot", "applied", market=market)
        return bool(n)

    # ------------------------------------------------------------------ frames
    def corrupt_frames(
        self, n: int = 1, conn: int | str | None = None, mode: str = "json"
    ) -> list[int]:
        """Corrupt the next `n` frames sent on each chosen connection: "json" breaks the JSON
        (valid UTF-8), "utf8" puts invalid UTF-8 bytes in the text frame."""
        if mode not in ("json", "utf8") or n < 1:
            raise ValueError("mode must be json or utf8, n >= 1")
        targets = self._conns(conn)
        for c in targets:
            c.frame_faults.extend([f"corrupt_{mode}"] * n)
        ids = [c.id for c in targets]
        self._record("corrupt_frames", "injected", n=n, mode=mode, conn=conn, conns=ids)
        return ids

    def truncated_frames(self, n: int = 1, conn: int | str | None = None) -> list[int]:
        """Cut the next `n` frames sent on each chosen connection to half their length."""
        if n < 1:
            raise ValueError("n must be >= 1")
        targets = self._conns(conn)
        for c in targets:
            c.frame_faults.extend(["truncate"] * n)
        ids = [c.id for c in targets]
        self._record("truncated_frames", "injected", n=n, conn=conn, conns=ids)
        return ids

    def oversized_frame(
        self, nbytes: int = 10 * 1024 * 1024, conn: int | str | None = None
    ) -> list[int]:
        """Send one well-formed JSON frame of `nbytes` bytes (type "update/order_book" with a
        padding field) on each chosen connection."""
        if nbytes < 64:
            raise ValueError("nbytes must be >= 64")
        targets = self._conns(conn)
        head = b'{"type":"update/order_book","channel":"order_book:0","pad":"'
        body = head + b"x" * (nbytes - len(head) - 2) + b'"}'
        for c in targets:
            self._sim.send_raw(c, body)
        ids = [c.id for c in targets]
        self._record("oversized_frame", "injected", nbytes=nbytes, conn=conn, conns=ids)
        return ids

    def _frame_applied(self, conn_id: int, fault: str, size: int) -> None:
        self._record(
            "corrupt_frames" if fault.startswith("corrupt") else "truncated_frames",
            "applied",
            conn=conn_id,
            fault=fault,
            size=size,
        )

    # ------------------------------------------------------------------ acks
    def delay_acks(self, ms: int, n: int | None = None) -> None:
        """Hold sendTx acks (REST responses and WS jsonapi acks) `ms` simulated ms: the next
        `n` of them, or every one until `delay_acks(0)` when n is None."""
        if ms < 0:
            raise ValueError("ms must be >= 0")
        self._record("delay_acks", "injected", ms=ms, n=n)
        if n is None:
            self._ack_delay_s = ms / 1000
        else:
            self._acks.extend(_AckFault(ms / 1000, False, True) for _ in range(n))

    def lose_acks(self, n: int = 1, execute: bool = True) -> None:
        """Lose the next `n` sendTx acks. With `execute` the tx still reaches the venue (and
        executes); without, the request is lost on the way in (nonce not consumed). A lost
        REST ack resets the HTTP connection; a lost WS ack is never sent."""
        if n < 1:
            raise ValueError("n must be >= 1")
        self._record("lose_acks", "injected", n=n, execute=execute)
        self._acks.extend(_AckFault(0.0, True, execute) for _ in range(n))

    def late_reject(self, n: int = 1, code: int = 21739) -> None:
        """The next `n` accepted txs get HTTP 200 / an ack, then fail in the sequencer with
        `code` (tx status 0; the nonce is consumed)."""
        if n < 1:
            raise ValueError("n must be >= 1")
        self._record("late_reject", "injected", n=n, code=code)
        self._sim.exchange.late_rejects.extend([code] * n)

    def take_ack_fault(self) -> _AckFault | None:
        """The fault for the next sendTx ack, if any (consumed)."""
        if self._acks:
            f = self._acks.popleft()
        elif self._ack_delay_s > 0:
            f = _AckFault(self._ack_delay_s, False, True)
        else:
            return None
        self._record(
            "lose_acks" if f.lost else "delay_acks",
            "applied",
            ms=round(f.delay_s * 1000),
            execute=f.execute,
        )
        return f

    # ------------------------------------------------------------------ REST
    def http_status_storm(
        self, status: int, n: int, retry_after_s: float | None = None, execute: bool = False
    ) -> None:
        """Answer the next `n` REST requests with `status` (429: code 23000 and Retry-After
        when given; 5xx: code 29500). With `execute`, a sendTx is still processed before its
        answer is replaced (an order call whose 5xx hides a success)."""
        if status not in HTTP_STORM_STATUSES and not 400 <= status <= 599:
            raise ValueError("status must be an HTTP error status")
        if n < 1:
            raise ValueError("n must be >= 1")
        self._record(
            "http_status_storm",
            "injected",
            status=status,
            n=n,
            retry_after_s=retry_after_s,
            execute=execute,
        )
        self._http.extend([(status, retry_after_s, execute)] * n)

    def http_timeouts(self, n: int, seconds: float) -> None:
        """Hold the next `n` REST requests `seconds` (simulated) before handling them."""
        if n < 1 or not seconds > 0:
            raise ValueError("n must be >= 1 and seconds > 0")
        self._record("http_timeouts", "injected", n=n, seconds=seconds)
        self._timeouts.extend([seconds] * n)

    def take_http_fault(self, path: str) -> tuple[int, float | None, bool] | None:
        if not self._http:
            return None
        f = self._http.popleft()
        self._record("http_status_storm", "applied", path=path, status=f[0])
        return f

    def take_http_timeout(self, path: str) -> float | None:
        if not self._timeouts:
            return None
        s = self._timeouts.popleft()
        self._record("http_timeouts", "applied", path=path, seconds=s)
        return s

    # ------------------------------------------------------------------ account
    def _counterparty(self, account: int) -> int:
        return self._sim.system_account(exclude=account)

    def out_of_band_fill(self, account: int, market: int, side: str, size: int, price: int) -> int:
        """A fill the client did not cause: `account` buys ("buy"/"bid") or sells
        ("sell"/"ask") `size` lots at `price` ticks (0: the mark price). Returns the trade
        id."""
        if side not in ("buy", "bid", "sell", "ask"):
            raise ValueError("side must be buy/bid or sell/ask")
        is_buy = side in ("buy", "bid")
        if price == 0:  # 0: at the mark price
            price = self._sim.exchange._market(market).mark_price
        trade = self._sim.run_engine(
            lambda: self._sim.exchange.external_trade(
                account, self._counterparty(account), market, is_buy, size, price
            )
        )
        self._record(
            "out_of_band_fill",
            "injected",
            account=account,
            market=market,
            side=side,
            size=size,
            price=price,
            trade_id=trade["trade_id"],
        )
        return int(trade["trade_id"])

    def liquidation(self, account: int, market: int) -> int | None:
        """Liquidate `account` in `market`: its orders there are canceled
        (canceled-liquidation) and its position closed at the mark price. Returns the trade
        id, or None if it had no position."""
        trade = self._sim.run_engine(
            lambda: self._sim.exchange.liquidate(account, market, self._counterparty(account))
        )
        tid = None if trade is None else int(trade["trade_id"])
        self._record("liquidation", "injected", account=account, market=market, trade_id=tid)
        return tid

    # ------------------------------------------------------------------ clock
    def wall_offset_ms(self, ms: int) -> None:
        """Offset the simulator's wall clock by `ms` from the shared time source (skew)."""
        self._sim.clock.offset_ms = int(ms)
        self._record("wall_offset_ms", "injected", ms=int(ms))

    # ------------------------------------------------------------------ control
    def clear(self) -> None:
        """Cancel every pending fault (stalled connections are released, skew reset)."""
        for t in self._timers:
            t.cancel()
        self._timers.clear()
        for c in self._sim.open_connections():
            if c.stalled:
                self._sim.release_stall(c)
            c.frame_faults.clear()
        self.refusing_ws = self.refusing_rest = False
        self._book.clear()
        self._skip_snapshot.clear()
        self._early_delta.clear()
        self._acks.clear()
        self._ack_delay_s = 0.0
        self._http.clear()
        self._timeouts.clear()
        self._sim.exchange.late_rejects.clear()
        for market in list(self._sim.phantom_markets()):
            self._sim.clear_phantom_bid(market)
        self._sim.clock.offset_ms = 0
        for market, frame in self._held_delta.items():
            self._sim.publish_frame(f"order_book:{market}", frame)
        self._held_delta.clear()
        self._record("clear", "injected")

    def apply(self, kind: str, args: dict[str, Any] | None = None) -> Any:
        """Call fault `kind` with keyword `args` (what the control endpoint does), each
        argument checked first (``check_fault_args``): a ValueError names what is wrong."""
        if kind not in self.KINDS:
            raise ValueError(f"unknown fault kind {kind!r} (one of {', '.join(self.KINDS)})")
        fn = getattr(self, kind)
        check_fault_args(kind, fn, args or {})
        return fn(**(args or {}))

    def run_script(self, script: FaultScript) -> asyncio.Task[None]:
        """Play `script` from now on, in simulated time (a task on the simulator's loop)."""
        self._record("script", "injected", seed=script.seed, events=len(script.events))

        async def play() -> None:
            start = self._sim.clock.monotonic_ns()
            for ev in script.events:
                wait = ev.at_s - (self._sim.clock.monotonic_ns() - start) / 1e9
                if wait > 0:
                    await self._sim.clock.sleep(wait)
                self.apply(ev.kind, ev.args)

        return self._sim.spawn(play())


@dataclass(frozen=True, slots=True)
class ScheduledFault:
    """One step of a `FaultScript`."""

    at_s: float  # simulated seconds after the script starts
    kind: str  # a `Faults.KINDS` name
    args: dict[str, Any]  # keyword arguments


DEFAULT_SCRIPT_KINDS = (
    "drop",
    "stall",
    "refuse_connections",
    "book_gap",
    "book_duplicate",
    "book_reorder",
    "book_crossed",
    "corrupt_frames",
    "truncated_frames",
    "delay_acks",
    "lose_acks",
    "late_reject",
    "http_status_storm",
    "http_timeouts",
)


class FaultScript:
    """A random sequence of faults drawn from `seed` (same seed, same script).

    `kinds` limits the draw; `gap_s` bounds the simulated time between faults; `markets` are
    the markets book faults pick from; `account` enables the account faults
    (out_of_band_fill, liquidation) when they are in `kinds`.
    """

    def __init__(
        self,
        seed: int,
        count: int = 10,
        kinds: tuple[str, ...] | None = None,
        gap_s: tuple[float, float] = (1.0, 60.0),
        markets: tuple[int, ...] = (0,),
        account: int | None = None,
        stall_s: tuple[float, float] = (1.0, 40.0),
    ) -> None:
        if count < 0 or not 0 <= gap_s[0] <= gap_s[1]:
            raise ValueError("count >= 0 and 0 <= gap_s[0] <= gap_s[1]")
        self.seed = seed
        kinds = tuple(kinds or DEFAULT_SCRIPT_KINDS)
        for k in kinds:
            if k not in Faults.KINDS or k in ("clear",):
                raise ValueError(f"unknown fault kind {k!r}")
        rng = random.Random(f"faultscript:{seed}")
        events = []
        t = 0.0
        for _ in range(count):
            t += round(rng.uniform(*gap_s), 3)
            kind = rng.choice(kinds)
            events.append(ScheduledFault(t, kind, self._args(rng, kind, markets, account, stall_s)))
        self.events: list[ScheduledFault] = events  # in time order

    @staticmethod
    def _args(
        rng: random.Random,
        kind: str,
        markets: tuple[int, ...],
        account: int | None,
        stall_s: tuple[float, float],
    ) -> dict[str, Any]:
        market = rng.choice(markets)
        if kind == "drop":
            return {"code": rng.choice(DROP_CODES)}
        if kind == "stall":
            return {"seconds": round(rng.uniform(*stall_s), 1)}
        if kind == "refuse_connections":
            return {"on": True, "seconds": round(rng.uniform(1.0, 10.0), 1)}
        if kind in (
            "book_gap",
            "book_duplicate",
            "book_reorder",
            "book_delta_before_snapshot",
            "book_skip_snapshot",
        ):
            return {"market": market}
        if kind == "book_crossed":
            return {"market": market, "seconds": round(rng.uniform(0.5, 3.0), 1)}
        if kind in ("corrupt_frames", "truncated_frames"):
            return {"n": rng.randint(1, 3)}
        if kind == "oversized_frame":
            return {"nbytes": rng.choice((1 << 20, 10 << 20))}
        if kind == "delay_acks":
            return {"ms": rng.randint(100, 3000), "n": rng.randint(1, 5)}
        if kind == "lose_acks":
            return {"n": rng.randint(1, 3), "execute": rng.random() < 0.5}
        if kind == "late_reject":
            return {"n": 1}
        if kind == "http_status_storm":
            status = rng.choice(HTTP_STORM_STATUSES)
            return {
                "status": status,
                "n": rng.randint(1, 10),
                "retry_after_s": rng.randint(1, 5) if status == 429 else None,
            }
        if kind == "http_timeouts":
            return {"n": rng.randint(1, 3), "seconds": round(rng.uniform(5.0, 15.0), 1)}
        if kind == "wall_offset_ms":
            return {"ms": rng.choice((-30_000, -2_000, 0, 2_000, 30_000))}
        if account is None:
            raise ValueError(f"{kind} needs FaultScript(account=...)")
        if kind == "out_of_band_fill":
            return {
                "account": account,
                "market": market,
                "side": rng.choice(("buy", "sell")),
                "size": rng.randint(1, 10) * 100,
                "price": 0,
            }  # 0: the server fills at the mark price
        return {"account": account, "market": market}  # liquidation

    def __repr__(self) -> str:
        return f"FaultScript(seed={self.seed}, events={len(self.events)})"
