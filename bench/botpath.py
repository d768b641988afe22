"""mmfast's real bot stack as the latency benchmarks drive it, with stage stamps.

The stack is what ``mmfast run`` builds (``mmfast.run.Runner``): the shipped sim config with the
bench's changes (below), ``LighterConnector`` (market-data, account and order WebSockets, REST,
rate budget, readiness, nonce manager, order entry, tracker, reconciler), the
``market_making`` strategy (compiled quote engine, requote planner, risk gate, kill switch),
``TradingCore``, the journal; and a signer: mmfast's ``SignerWorker`` (lighter-sdk on its worker
thread) or, with signing taken out, ``PreSignedSigner``. It runs on this process's loop
(uvloop) against the venue process ``python -m bench.remote venue --kind bot`` (mmfast's
simulator serving the shared seeded stream on market 0's order_book channel).

Changes to the shipped ``sim.toml``, all for the benchmark: the venue's URLs, account and chain
id; no guard process (``[guard] enabled = false``: it would share the CPUs); a 2 x 5 ladder
with refresh tolerance 0 (a one-tick move of the mid re-prices all ten orders); the order-rate
caps of the risk gate and the kill switch raised (the bench sends
hundreds of txs a second); the connector's rate tier ``BENCH_TIER`` (every venue limit raised:
the budget bookkeeping still runs on every tx, it just never throttles or degrades the plan).

Stage stamps (``time.perf_counter_ns``, this process), per order-book frame, by ``Taps``:

- ``t0``: entry of the market-data stream's frame callback: the compiled listener's own stamp
  (``BookFeed.t_frame``, CLOCK_MONOTONIC) for the book frames it runs the step on (its
  ``after`` callback is wrapped in the stream's ``fast`` route), else ``WsStream._on_frame``
  (wrapped on the instance; the Python listener and the compiled one's other frames call it);
- ``submit``: the first tx ready to sign after ``t0``: on market_making's compiled step, when
  it signs and sends the tx itself, the step's own stamp as it took the tx's nonce
  (``Pipeline.t_ready``, CLOCK_MONOTONIC as perf_counter_ns); otherwise the first
  ``signer.submit`` call (the tx handed to the signer);
- ``sent``: the order frame carrying that tx handed to the order WebSocket (the step's own
  stamp before its write, ``Pipeline.t_sent``; otherwise the order stream's ``send_text``,
  wrapped, stamped on entry, the tx found by its nonce after the send);
- ``end``: the frame callback's return (``submit < end``: the tx was queued inside the callback).

A frame counts as an order-book frame when the book's nonce moved. The wrapper also answers the
venue's echo probes (``{"echo":i}``, on the same connection) before the bot sees them. The
wrappers cost a few hundred ns per frame and per tx (included in the figures).

``bot_case`` runs one case (venue process + stack), ``problems`` checks it (the bot's book top
against the stream's truth, order frames at the venue, exit code), ``join_wire`` joins each delta
to the order frame that carried its first tx (by nonce, on the venue's clock).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import logging
import re
import shutil
import tempfile
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from mmfast.connector.lighter.budget import RateTier
from mmfast.connector.lighter.signer import (
    AuthTokenRequest,
    SignedTx,
    SignerError,
)

__all__ = [
    "BENCH_TIER",
    "GO",
    "BotRun",
    "PreSignedSigner",
    "Row",
    "Taps",
    "VenueInfo",
    "bot_case",
    "bot_config",
    "join_wire",
    "low_latency_cpu",
    "make_signer",
    "problems",
    "retime",
    "run_bot",
    "stage_lists",
]

GO = b'{"bench":"go"}'  # tells the venue to start its deltas (see bench.remote)
ECHO = b'{"echo":'
LEVELS = 5  # per side: a 2 x 5 ladder
MARKET = 0
_TS_TAG = b'"timestamp":'
# A signature's size as lighter-sdk makes it (80 bytes, base64): fixed bytes, never checked by
# the simulator.
PRESIGNED_SIG = base64.b64encode(bytes(range(7, 87))).decode()
_EXPIRED_AT_MS = 599_000  # ExpiredAt as the SDK sets it: about 10 minutes ahead


def retime(frame: bytes, wall_ms: int) -> bytes:
    """``frame`` with its top-level ``"timestamp"`` (epoch ms, 13 digits) set to ``wall_ms``.

    The stream's timestamps are a fixed synthetic clock; the bot reads venue time from book
    frames (clock-skew check, order expiries), so the venue sends its own time, as Lighter
    does."""
    i = frame.rfind(_TS_TAG)
    if i < 0:
        return frame
    j = i + len(_TS_TAG)
    k = j
    while frame[k] in b"0123456789":
        k += 1
    return frame[:j] + str(wall_ms).encode() + frame[k:]


# --- the rate tier ------------------------------------------------------------------------------

_BIG = 1_000_000_000
BENCH_TIER = RateTier(
    "bench",
    rest_units=_BIG,
    min_rest_weight=0,
    sendtx_per_min=_BIG,
    ws_msgs_per_min=_BIG,
    ws_inflight=1_000_000,
)  # see the module doc


# --- the stand-in signer ------------------------------------------------------------------------


class PreSignedSigner:
    """``SignerWorker``'s interface with signing taken out.

    ``submit(request, callback)`` builds the tx_info the SDK would (the account, the API key,
    the request's ``expected_fields()``, ``ExpiredAt``, ``Nonce``) with a pre-made signature
    (``PRESIGNED_SIG``; the simulator checks no signature) and calls ``callback(SignedTx,
    None)`` at once, inside ``submit`` (``immediate``, the default: a pool of signed txs has
    the signature ready, so order entry sends the tx before the strategy's next order call)
    or with ``loop.call_soon`` (``immediate=False``: when SignerWorker's callbacks come, on a
    later loop iteration, minus the ~0.5 ms of signing). Auth tokens always come through
    ``call_soon``. The JSON is built on the loop thread at submit (3-4 us per tx;
    SignerWorker does that work on its thread, its submit is a queue put).

    ``native`` (``direct=True``, the default) offers the two ``NativeSigner`` methods a
    compiled step calls to sign its first tx itself (``OrderEntry.direct_sender``), with the
    same pre-made signature: the path a bot on the native signer takes, signing taken out.
    ``direct=False`` leaves the first tx to order entry's Python path, as with the official
    signer.
    """

    def __init__(
        self,
        *,
        account_index: int,
        api_key_index: int,
        chain_id: int,
        immediate: bool = True,
        direct: bool = True,
    ) -> None:
        self.immediate = immediate
        self._direct = _PreSignedNative(account_index, api_key_index) if direct else None
        self._account_index = account_index
        self._api_key_index = api_key_index
        self._chain_id = chain_id
        self._loop: asyncio.AbstractEventLoop | None = None
        self._running = False
        self.signed = 0  # txs "signed"
        self.tokens = 0  # auth tokens made

    def start(self, loop: asyncio.AbstractEventLoop | None = None, timeout: float = 10.0) -> None:
        self._loop = loop if loop is not None else asyncio.get_running_loop()
        self._running = True

    def stop(self, timeout: float = 5.0) -> None:
        self._running = False

    @property
    def running(self) -> bool:
        return self._running

    @property
    def thread_ident(self) -> int | None:
        return None  # no thread: nothing is signed

    @property
    def native(self) -> _PreSignedNative | None:
        """What the compiled step signs its first tx with (None: stopped or ``direct=False``)."""
        return self._direct if self._running else None

    def count_signed(self, sign_ns: int) -> None:
        """A tx made through ``native``: counted as InlineSigner counts its own."""
        self.signed += 1

    @property
    def account_index(self) -> int:
        return self._account_index

    @property
    def api_key_index(self) -> int:
        return self._api_key_index

    @property
    def chain_id(self) -> int:
        return self._chain_id

    def submit(self, request: Any, callback: Callable[[Any, BaseException | None], object]) -> None:
        if not self._running or self._loop is None:
            raise SignerError("PreSignedSigner is not running")
        if isinstance(request, AuthTokenRequest):
            self.tokens += 1
            token = (
                f"{request.deadline_s}:{self._account_index}:{self._api_key_index}:"
                f"{base64.b64decode(PRESIGNED_SIG).hex()}"
            )
            self._loop.call_soon(callback, token, None)
            return
        now = time.monotonic_ns()
        info: dict[str, Any] = {
            "AccountIndex": self._account_index,
            "ApiKeyIndex": self._api_key_index,
        }
        info.update(request.expected_fields())
        info["ExpiredAt"] = int(time.time() * 1000) + _EXPIRED_AT_MS
        info["Nonce"] = request.nonce
        info["Sig"] = PRESIGNED_SIG
        info.setdefault("L2TxAttributes", None)
        self.signed += 1
        tx = SignedTx(
            request=request,
            tx_type=request.TX_TYPE,
            tx_info=orjson.dumps(info).decode(),
            info=info,
            tx_hash=f"{request.nonce:080x}",
            nonce=request.nonce,
            queued_ns=now,
            signed_ns=now,
            sign_ns=0,
        )
        if self.immediate:
            callback(tx, None)
        else:
            self._loop.call_soon(callback, tx, None)

    async def _await(self, request: Any) -> Any:
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

        def done(result: Any, error: BaseException | None) -> None:
            if not fut.done():
                if error is not None:
                    fut.set_exception(error)
                else:
                    fut.set_result(result)

        self.submit(request, done)
        return await fut

    async def sign(self, request: Any) -> Any:
        return await self._await(request)

    async def token(self, deadline_s: int) -> str:
        return await self._await(AuthTokenRequest(deadline_s))  # type: ignore[no-any-return]


class _PreSignedNative:
    """``NativeSigner.sign_modify_order`` and ``sign_cancel_order`` with the pre-made
    signature: the tx_info the SDK writes for the request (as ``PreSignedSigner.submit``, a
    test holds them equal), written from a template as the native signer writes it in C (a
    Python dict and orjson cost 3-5 us a tx on the loop, more than the native signer's own
    JSON), the nonce as the tx hash."""

    __slots__ = ("_cancel", "_modify")

    def __init__(self, account_index: int, api_key_index: int) -> None:
        head = f'{{"AccountIndex":{account_index},"ApiKeyIndex":{api_key_index},'
        tail = f',"Sig":"{PRESIGNED_SIG}","L2TxAttributes":null}}'
        self._modify = (
            head + '"MarketIndex":%d,"Index":%d,"BaseAmount":%d,"Price":%d,'
            '"TriggerPrice":%d,"ExpiredAt":%d,"Nonce":%d' + tail
        )
        self._cancel = head + '"MarketIndex":%d,"Index":%d,"ExpiredAt":%d,"Nonce":%d' + tail

    def sign_modify_order(
        self,
        market_index: int,
        index: int,
        base_amount: int,
        price: int,
        trigger_price: int,
        nonce: int,
        expired_at: int,
    ) -> tuple[str, str]:
        info = self._modify % (
            market_index,
            index,
            base_amount,
            price,
            trigger_price,
            expired_at,
            nonce,
        )
        return info, f"{nonce:080x}"

    def sign_cancel_order(
        self, market_index: int, index: int, nonce: int, expired_at: int
    ) -> tuple[str, str]:
        return self._cancel % (market_index, index, expired_at, nonce), f"{nonce:080x}"

    def warm(self) -> bool:
        """As ``NativeSigner.warm``: the signing path once on constants, the result dropped."""
        self.sign_modify_order(0, 1, 1, 1, 0, 1, 1)
        return True


# --- the venue and the config -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VenueInfo:
    """What the venue process printed: where it listens and whom the bot trades as."""

    ws_url: str
    rest_url: str
    account_index: int
    chain_id: int
    market: int = MARKET

    @classmethod
    def parse(cls, address: str) -> VenueInfo:
        """From the venue's ``port`` line (after "port "): ``ws rest=.. account=.. chain=..``."""
        ws, *rest = address.split()
        kv = dict(part.split("=", 1) for part in rest)
        return cls(
            ws_url=ws,
            rest_url=kv["rest"],
            account_index=int(kv["account"]),
            chain_id=int(kv["chain"]),
            market=int(kv.get("market", MARKET)),
        )


def bot_config(
    venue: VenueInfo, signer: str | None = None, compiled: bool = True, loop_cpu: int | None = None
) -> Any:
    """The shipped sim config with the bench's changes (module doc), validated as ``mmfast
    run`` validates it. ``compiled``: market_making on its compiled step (False: its Python
    path, the baseline). ``loop_cpu``: the low-latency settings, ``[run] cpu`` that CPU and
    ``busy_poll`` on."""
    from mmfast.conf import example_path, parse_config

    path = example_path("sim")
    data = tomllib.loads(path.read_text())
    data["venue"].update(
        rest_url=venue.rest_url,
        ws_url=venue.ws_url,
        account_index=venue.account_index,
        chain_id=venue.chain_id,
    )
    if signer in ("native", "official"):
        data["venue"]["signer"] = signer  # the one injected (PreSignedSigner: left alone)
    data["market"] = {"market_id": venue.market}
    data["strategy"]["name"] = "market_making"
    mm = data["strategy"]["market_making"]
    mm.update(
        mode="fixed",
        levels=LEVELS,
        refresh_tolerance_ticks=0,
        size_tolerance_lots=0,
        compiled_step=compiled,
    )
    risk = data["risk"]
    risk.update(
        order_rate_cap=1_000_000, max_open_orders=max(risk.get("max_open_orders", 20), 4 * LEVELS)
    )
    risk["kill_switch"].update(max_order_txs_per_min=1_000_000)
    data["run"].update(log_level="warning")
    if loop_cpu is not None:
        data["run"].update(cpu=loop_cpu, busy_poll=True)
    # No guard process: it would share the two CPUs with the stack being measured.
    data["guard"] = {"enabled": False}
    return parse_config(data, env={}, source=f"{path} (bench)")


def make_signer(kind: str, v: Any, key: Any = None) -> tuple[Any, Any]:
    """The signer a case injects into the Runner and its key: ``PreSignedSigner`` (no key),
    mmfast's ``SignerWorker`` (official) or ``InlineSigner`` (native) on ``key`` or a
    throwaway one."""
    if kind == "presigned":
        return PreSignedSigner(
            account_index=v.account_index, api_key_index=v.api_key_index, chain_id=v.chain_id
        ), key
    from bench.signing import inline_signer, make_key

    if key is None:
        key, _pub = make_key()
    if kind == "native":
        signer, _which = inline_signer(
            key, account_index=v.account_index, api_key_index=v.api_key_index, chain_id=v.chain_id
        )
        return signer, key
    if kind != "official":
        raise ValueError(f"unknown signer kind {kind!r}")
    from mmfast.connector.lighter.signer import SignerWorker

    return SignerWorker(
        key,
        account_index=v.account_index,
        api_key_index=v.api_key_index,
        chain_id=v.chain_id,
        name="mmfast-run-signer",
    ), key


# --- stamps -------------------------------------------------------------------------------------


class _Arm:
    __slots__ = ("nonce", "send", "sub")

    def __init__(self) -> None:
        self.sub = False  # the next signer.submit is stamped
        self.send = False  # the next order frame sent is stamped
        self.nonce = 0  # the book's nonce after the last order-book frame


class _Frame:
    """A text frame as picows hands it over (for feeding frames straight in)."""

    __slots__ = ("data", "msg_type", "payload_size")

    def __init__(self, data: bytes, msg_type: Any) -> None:
        self.data = data
        self.msg_type = msg_type
        self.payload_size = len(data)

    def get_payload_as_bytes(self) -> bytes:
        return self.data


# "Nonce":12 in a sendtx frame; \"Nonce\":12 (escaped) in a sendtxbatch frame's tx_infos.
_NONCE_RE = re.compile(rb'Nonce[\\"]*:(\d+)')
_PENDING_MAX = 256


@dataclass(frozen=True, slots=True)
class Row:
    """One order-book frame: its stamps (perf_counter_ns, 0 = did not happen)."""

    delta: int  # index in the stream (by the book's nonce after it)
    t0: int  # frame callback entered
    submit: int  # first signer.submit after t0
    sent: int  # the order frame carrying that submit's tx handed to the socket
    end: int  # frame callback returned
    sent_any: int  # first order frame of any tx handed to the socket after t0
    tx_nonce: int  # nonce of the first tx submitted after t0 (-1: none)


class Taps:
    """The stage stamps (module doc) on a running stack, by wrapping three instance methods:
    the market-data stream's ``_on_frame``, the signer's ``submit`` and the order stream's
    ``send_text``. ``remove()`` puts them back.

    ``sent`` is the frame that carries the first tx submitted for the order-book frame (its
    nonce found in the frame's bytes, read only while one is awaited, after the stamp);
    ``sent_any`` the first order frame after the book frame, which may still carry txs of an
    earlier one (order entry sends in nonce order)."""

    def __init__(self, connector: Any, signer: Any, market: int = MARKET, pipe: Any = None) -> None:
        from picows import WSMsgType

        md = connector.market_data.stream
        ows = connector.orders.ws if connector.orders is not None else None
        if md is None or ows is None:
            raise RuntimeError("the connector has no market-data or order WebSocket")
        self.md, self.ows, self.signer = md, ows, signer
        self.book = connector.market_data.books[market]
        self.t0: list[int] = []
        self.submit: list[int] = []
        self.sent: list[int] = []
        self.sent_any: list[int] = []
        self.end: list[int] = []
        self.nonce: list[int] = []
        self.tx_nonce: list[int] = []
        self.echoes = 0
        self.direct_first = 0  # frames whose first tx the compiled step signed and sent itself
        # ... and their stages (ns): frame callback -> nonce taken, -> signed, -> frame built
        self.direct_stages: list[tuple[int, int, int]] = []
        arm = self.arm = _Arm()
        arm.nonce = self.book.nonce
        t0s, subs, sents, anys = self.t0, self.submit, self.sent, self.sent_any
        ends, nonces, txns = self.end, self.nonce, self.tx_nonce
        pending: dict[int, int] = {}  # tx nonce -> row awaiting the frame that carries it
        self.pending = pending
        book = self.book
        clock = time.perf_counter_ns
        text = WSMsgType.TEXT
        self._text = text
        orig_frame, orig_submit, orig_send = md._on_frame, signer.submit, ows.send_text
        findall = _NONCE_RE.findall
        taps = self

        def stamped(t0: int, direct0: int, run: Any, *args: Any) -> None:
            """One frame's row around ``run(*args)``, the stack's handling of it."""
            prev = (arm.sub, arm.send)
            n = len(t0s)
            t0s.append(t0)
            subs.append(0)
            sents.append(0)
            anys.append(0)
            txns.append(-1)
            arm.sub = arm.send = True
            run(*args)
            if pipe is not None and pipe.direct_sends != direct0:
                # The compiled step signed and sent this frame's first tx itself: its own
                # stamps (CLOCK_MONOTONIC, perf_counter_ns's clock) are the tx ready to sign
                # (nonce taken) and its frame handed to the socket.
                taps.direct_first += 1
                taps.direct_stages.append(
                    (pipe.t_ready - t0, pipe.t_signed - pipe.t_ready, pipe.t_sent - pipe.t_signed)
                )
                if subs[n] and txns[n] >= 0:
                    pending.pop(txns[n], None)  # a later tx of the same frame
                subs[n] = pipe.t_ready
                txns[n] = pipe.direct_nonce
                sents[n] = pipe.t_sent if pipe.direct_sent else 0
                if pipe.direct_sent and (not anys[n] or pipe.t_sent < anys[n]):
                    # On the compiled listener's route the step sent it before this row
                    # was armed: it is the first order frame after the book frame (and the
                    # next frame's own direct send must not be taken for this row's).
                    anys[n] = pipe.t_sent
                    arm.send = False
                pending.pop(pipe.direct_nonce, None)
            nb = book.nonce
            if nb == arm.nonce and not subs[n] and not anys[n]:
                # Not an order-book delta (stats, pong, ack): forget it, re-arm as before.
                del t0s[n], subs[n], sents[n], anys[n], txns[n]
                arm.sub, arm.send = prev
                return
            ends.append(clock())
            nonces.append(nb)
            arm.nonce = nb

        def on_frame(listener: Any, transport: Any, frame: Any) -> None:
            t0 = clock()
            if frame.payload_size < 48:  # echo probes are ~15 bytes, book frames ~300
                data = frame.get_payload_as_bytes()
                if data.startswith(ECHO):
                    transport.send(text, data)
                    taps.echoes += 1
                    return
            stamped(
                t0,
                pipe.direct_sends if pipe is not None else 0,
                orig_frame,
                listener,
                transport,
                frame,
            )

        def fast_after(orig_after: Any) -> Any:
            # The compiled listener ran the step before calling this: the row starts at its
            # own entry stamp, and a direct tx belongs to this frame when stamped after it.
            def after(code: int, now: int) -> None:
                f = md._feed
                t0 = f.t_frame if f is not None else clock()
                d = pipe.direct_sends if pipe is not None else 0
                if pipe is not None and pipe.t_ready >= t0:
                    d -= 1
                stamped(t0, d, orig_after, code, now)

            return after

        def submit(request: Any, callback: Any) -> None:
            if arm.sub:
                arm.sub = False
                subs[-1] = clock()
                tn = getattr(request, "nonce", -1)
                txns[-1] = tn
                if len(pending) >= _PENDING_MAX:  # txs never sent (revoked): forget them
                    pending.clear()
                pending[tn] = len(subs) - 1
            orig_submit(request, callback)

        def send_text(data: bytes) -> bool:
            # Stamped as the frame is handed over: after the send returns, the loop thread
            # may first wait for the GIL (the signer thread holds it between its calls).
            now = clock()
            ok: bool = orig_send(data)
            if arm.send:
                arm.send = False
                anys[-1] = now
            if pending:
                for m in findall(data):
                    row = pending.pop(int(m), None)
                    if row is not None:
                        sents[row] = now
            return ok

        md._on_frame = on_frame
        signer.submit = submit
        ows.send_text = send_text
        self.on_frame = on_frame
        # The compiled listener's route (book frames it takes never reach _on_frame).
        self._fast_orig = dict(md.fast)
        for m, (p, a) in self._fast_orig.items():
            md.fast[m] = (p, fast_after(a))

    def remove(self) -> None:
        for obj, name in ((self.md, "_on_frame"), (self.signer, "submit"), (self.ows, "send_text")):
            with contextlib.suppress(AttributeError):
                delattr(obj, name)
        for m, entry in self._fast_orig.items():
            if m in self.md.fast:
                self.md.fast[m] = entry

    def clear(self) -> None:
        for lst in (
            self.t0,
            self.submit,
            self.sent,
            self.sent_any,
            self.end,
            self.nonce,
            self.tx_nonce,
        ):
            del lst[:]
        self.pending.clear()

    def feed(self, data: bytes) -> None:
        """Hand ``data`` to the stream's listener as if picows had read it: the compiled
        listener's ``on_ws_frame`` with a picows frame when the stream has one, else the
        wrapped Python frame callback."""
        md = self.md
        transport = md._transport
        if transport is None:
            raise RuntimeError("the market-data stream is not connected")
        f = md._feed
        if f is not None:
            from picows.picows import _make_test_ws_frame

            f.on_ws_frame(transport, _make_test_ws_frame(self._text, data, True, False))
            return
        self.on_frame(_Listener(md.generation), transport, _Frame(data, self._text))

    def rows(self, nonce_index: dict[int, int]) -> list[Row]:
        """One Row per order-book frame of the stream (by the book's nonce after it)."""
        out = []
        for k, nonce in enumerate(self.nonce):
            i = nonce_index.get(nonce)
            if i is not None:
                out.append(
                    Row(
                        i,
                        self.t0[k],
                        self.submit[k],
                        self.sent[k],
                        self.end[k],
                        self.sent_any[k],
                        self.tx_nonce[k],
                    )
                )
        return out


class _Listener:
    __slots__ = ("gen",)

    def __init__(self, gen: int) -> None:
        self.gen = gen


# --- one run ------------------------------------------------------------------------------------


@dataclass
class BotRun:
    """What one run of the stack against the venue gave."""

    venue: dict[str, Any] = field(default_factory=dict)  # the venue's result line
    rows: list[Row] = field(default_factory=list)  # live deltas
    direct: list[Row] = field(default_factory=list)  # frames fed in
    top: tuple[int, int] = (0, 0)  # the bot's best bid/ask at the end
    direct_top: tuple[int, int] = (0, 0)  # ... after the frames fed in (before the live ones)
    status: dict[str, Any] = field(default_factory=dict)  # connector/strategy counters
    latency: dict[str, Any] = field(default_factory=dict)  # the bot's own stage stats, per phase
    exit_code: int | None = None  # mmfast run's exit code after the stop
    warnings: list[str] = field(default_factory=list)  # mmfast log lines at WARNING and up
    cpus: dict[str, int] = field(default_factory=dict)  # where the bot's threads last ran
    startup_s: float = 0.0  # start -> ready with a full ladder resting


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if len(self.lines) < 200:
            self.lines.append(f"{record.levelname} {record.name}: {record.getMessage()}")


async def _ready(runner: Any, task: asyncio.Task[Any], timeout_s: float) -> None:
    """Until the stack is ready and its whole ladder rests on the venue, nothing in flight."""
    from mmfast.core.types import LifecycleState, OrderStatus

    deadline = time.monotonic() + timeout_s
    why = "not started"
    while time.monotonic() < deadline:
        if task.done():
            exc = task.exception()
            raise RuntimeError(
                f"mmfast run ended during start-up: exit "
                f"{None if exc else task.result()}, {runner.stop_reason}, "
                f"{exc!r}"
            )
        c, s, core = runner.connector, runner.strategy, runner.core
        if c is None or s is None or core is None or core.state is not LifecycleState.RUNNING:
            why = "stack not running"
        elif not c.ready:
            why = f"connector not ready: {c.not_ready_reason}"
        else:
            open_ = sum(1 for o in s.orders.values() if o.status is OrderStatus.OPEN)
            if open_ == 2 * LEVELS and not c.orders.pending_txs and not s.intents.pending:
                return
            why = f"{open_} of {2 * LEVELS} quotes open"
        await asyncio.sleep(0.02)
    raise TimeoutError(f"bot stack not ready within {timeout_s} s: {why}")


async def _settle(c: Any, s: Any, limit_ns: int) -> None:
    """Let the loop run (at least one iteration) until the bot has nothing in flight."""
    clock = time.perf_counter_ns
    end = clock() + limit_ns
    await asyncio.sleep(0)
    while (c.orders.pending_txs or s.intents.pending or s.busy) and clock() < end:
        await asyncio.sleep(0)


async def run_bot(
    address: str,
    stream: Any,
    *,
    result: Callable[[float], dict[str, Any]],
    worker_signer: bool,
    direct: int = 0,
    seed: int = 1,
    timeout_s: float = 120.0,
    signer_kind: str | None = None,
    key: Any = None,
    compiled: bool = True,
    loop_cpu: int | None = None,
    idle_us: int = 0,
) -> BotRun:
    """Build and start the real stack against the venue at ``address`` (its port line), wait
    until its ladder rests, stamp it (``Taps``). Then ``direct`` frames of the stream (1..) are
    handed straight to the frame callback, one at a time, each once the previous one's txs
    have settled and then ``idle_us`` more of the loop turning with nothing to do (as between
    the venue's deltas; 0: at once) (the venue then sends no deltas: ``--n 0``, the stream
    would not chain);
    then the venue is told to go and ``result`` (the venue's result line,
    blocking, run in a thread) awaited; the bot's book is checked, the stack stopped.

    ``signer_kind``: ``"official"`` (mmfast's SignerWorker, lighter-sdk on its thread),
    ``"native"`` (mmfast's InlineSigner, its start-up self-check included) or ``"presigned"``
    (``PreSignedSigner``); None: official with ``worker_signer``, else presigned. The real
    signers sign with ``key`` (an ``ApiKey``; None: a throwaway one), injected into the
    Runner with the config's ``[venue] signer`` set to match."""
    from mmfast.run import Runner, RunOptions

    kind = signer_kind or ("official" if worker_signer else "presigned")
    info = VenueInfo.parse(address)
    cfg = bot_config(info, signer=kind, compiled=compiled, loop_cpu=loop_cpu)
    v = cfg.venue
    signer, key = make_signer(kind, v, key)
    tmp = tempfile.mkdtemp(prefix="mmfast-bench-bot-")
    capture = _Capture()
    mlog = logging.getLogger("mmfast")
    mlog.addHandler(capture)
    saved = (mlog.propagate, mlog.level)
    mlog.propagate = False  # captured and reported, not printed over the suite's output
    mlog.setLevel(logging.WARNING)
    out = BotRun()
    runner = Runner(
        cfg,
        RunOptions(quiet=True, journal=f"{tmp}/journal.jsonl", seed=seed),
        out=io.StringIO(),
        err=io.StringIO(),
        key=key,
        signer=signer,
        tier=BENCH_TIER,
    )
    loop = asyncio.get_running_loop()
    t_start = time.monotonic()
    task = loop.create_task(runner.run())
    taps: Taps | None = None
    try:
        await _ready(runner, task, 30.0)
        out.startup_s = time.monotonic() - t_start
        c, s = runner.connector, runner.strategy
        taps = Taps(c, runner.signer, info.market, getattr(s, "pipe", None))
        s.latency = type(s.latency)()  # the strategy's own stage stamps, from here on
        nonce_index = {m["order_book"]["nonce"]: i for i, m in enumerate(stream.messages)}
        if direct:
            frames = stream.frames
            wall = time.time
            feed = taps.feed
            idle_s = idle_us / 1e6
            for i in range(1, direct + 1):
                if idle_s:
                    await asyncio.sleep(idle_s)
                feed(retime(frames[i], int(wall() * 1000)))
                await _settle(c, s, 20_000_000)
            out.direct = taps.rows(nonce_index)
            direct_book = c.market_data.books[info.market]
            out.direct_top = (direct_book.best_bid(), direct_book.best_ask())
            out.latency["direct"] = {
                "strategy": s.latency.summary(),
                "order_entry": c.orders.latency(),
            }
            s.latency = type(s.latency)()
            taps.clear()
        taps.direct_first = 0  # the live phase's own
        taps.direct_stages.clear()
        if not c.market_data.stream.send_text(GO):
            raise RuntimeError("market-data connection down before go")
        out.venue = await loop.run_in_executor(None, result, timeout_s)
        await asyncio.sleep(0.05)  # the last frames' txs and acks
        book = c.market_data.books[info.market]
        out.top = (book.best_bid(), book.best_ask())
        direct_live = taps.direct_first
        out.rows = taps.rows(nonce_index)
        out.latency["live"] = {"strategy": s.latency.summary(), "order_entry": c.orders.latency()}
        md = c.market_data
        out.status = {
            "orders": c.orders.status(),
            "gaps": md.gaps,
            "crossed": md.crossed,
            "pulls": c.signals.pulls,
            "md_stream": md.stream.stats(),
            "strategy_counts": dict(s.counts),
            "orders_open": len(s.orders),
            "signer_signed": getattr(runner.signer, "signed", None),
            "direct_first": direct_live,
            "pool": runner.signer.pool_stats() if hasattr(runner.signer, "pool_stats") else None,
            "direct_stages": list(taps.direct_stages),
            "denials": {r.name: n for r, n in s.gate.denials.items()},
            "placement": runner._placement_status(),
        }
        out.cpus = _cpus(runner.signer)
    finally:
        if taps is not None:
            taps.remove()
        runner.request_stop("bench done")
        try:
            out.exit_code = await asyncio.wait_for(task, 30)
        except Exception as exc:  # a stop that hangs or fails: reported, never hidden
            out.warnings.append(f"stop: {type(exc).__name__}: {exc}")
        mlog.removeHandler(capture)
        mlog.propagate = saved[0]
        mlog.setLevel(saved[1])
        out.warnings = capture.lines + out.warnings
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _cpus(signer: Any) -> dict[str, int]:
    import threading

    from bench.remote import last_cpu

    cpus = {"loop thread": last_cpu(threading.get_native_id())}
    thread = getattr(signer, "_thread", None)
    if thread is not None and thread.native_id is not None:
        cpus["signer thread"] = last_cpu(thread.native_id)
    return cpus


# --- cases as the metrics run them --------------------------------------------------------------


def bot_case(
    stream: Any,
    n: int,
    gap_us: int,
    pin: bool,
    *,
    worker_signer: bool,
    direct: int = 0,
    venue_cpu: int = 0,
    signer_kind: str | None = None,
    compiled: bool = True,
    low_latency: bool = False,
    idle_us: int = 0,
) -> tuple[BotRun, int]:
    """The venue process (``--kind bot``, ``n`` deltas ``gap_us`` apart; pinned to
    ``venue_cpu`` with ``pin``) and ``run_bot`` against it on uvloop. Returns the run and the
    CPU the venue was last seen on. With a real signer (``signer_kind`` official or native,
    or ``worker_signer``) the venue registers the throwaway key's public key and verifies
    every signature and auth token; with ``PreSignedSigner`` verification is off.

    ``low_latency``: the bot with ``[run] cpu`` and ``busy_poll`` (its loop pinned to the CPU
    that is not ``venue_cpu``, polling without sleeping) and the venue pinned to ``venue_cpu``,
    as a remote venue would never share the bot's CPU. Needs two CPUs (else ignored).
    ``idle_us``: with ``direct``, the idle time before each fed frame (``run_bot``)."""
    import uvloop

    from bench.procs import Remote, child_cpu

    kind = signer_kind or ("official" if worker_signer else "presigned")
    key = None
    extra: list[str] = []
    if kind != "presigned":
        from bench.signing import make_key
        from mmfast.sim.config import DEFAULT_ACCOUNT_INDEX, DEFAULT_CHAIN_ID

        key, pub = make_key()
        probe = bot_config(
            VenueInfo(
                "ws://127.0.0.1:1/", "http://127.0.0.1:1", DEFAULT_ACCOUNT_INDEX, DEFAULT_CHAIN_ID
            )
        )
        extra = ["--api-key", f"{DEFAULT_ACCOUNT_INDEX}:{probe.venue.api_key_index}:{pub}"]
    loop_cpu = low_latency_cpu(venue_cpu) if low_latency else None
    with Remote(
        "venue",
        "--kind",
        "bot",
        "--n",
        str(n),
        "--seed",
        str(stream.config.seed),
        "--gap-us",
        str(gap_us),
        *extra,
        cpu=venue_cpu if pin or loop_cpu is not None else None,
        timeout=120,
    ) as far:
        run = uvloop.run(
            run_bot(
                far.address,
                stream,
                result=far.result,
                worker_signer=worker_signer,
                direct=direct,
                seed=stream.config.seed,
                signer_kind=kind,
                key=key,
                compiled=compiled,
                loop_cpu=loop_cpu,
                idle_us=idle_us,
            )
        )
        cpu = child_cpu(far.pid)
    return run, cpu


def low_latency_cpu(venue_cpu: int) -> int | None:
    """The CPU for the bot's loop in a low-latency case: one this process may use that is not
    the venue's (None with fewer than two)."""
    import os

    free = sorted(set(os.sched_getaffinity(0)) - {venue_cpu})
    return free[0] if free else None


def problems(run: BotRun, stream: Any, n: int, direct: int = 0) -> list[str]:
    """What is wrong with a run (empty: its figures stand): the bot's book against the
    stream's truth, order frames seen by the venue, frames that produced a signer submit."""
    out = []
    if direct:
        if run.direct_top != stream.tops[direct]:
            out.append(
                f"bot's book top after the fed frames {run.direct_top} != the "
                f"stream's {stream.tops[direct]}"
            )
        if not any(r.submit for r in run.direct):
            out.append("no fed frame produced a signer submit")
    last = direct or n  # the venue's deltas (n) and the fed frames (direct) are not mixed
    if run.top != stream.tops[last]:
        out.append(f"bot's book top at the end {run.top} != the stream's {stream.tops[last]}")
    if run.venue.get("order_frames", 0) <= 0:
        out.append("the venue saw no order frame")
    if n:
        joined, missing = join_wire(run)
        if not joined:
            out.append("no delta's first tx found in the order frames the venue received")
        if missing:
            out.append(f"{missing} deltas' first txs never reached the venue")
    if run.exit_code not in (0, None):
        out.append(f"mmfast run exited {run.exit_code} at the stop")
    return out


def stage_lists(rows: list[Row]) -> dict[str, list[float]]:
    """Per order-book frame that led to a tx: frame -> first submit, frame -> the order frame
    carrying that tx sent, first submit -> that frame sent; whether the submit was inside
    the frame callback and whether an older frame's txs went out first (lists of 0/1)."""
    led = [r for r in rows if r.submit]
    return {
        "submit": [float(r.submit - r.t0) for r in led],
        "sent": [float(r.sent - r.t0) for r in led if r.sent],
        "submit_to_sent": [float(r.sent - r.submit) for r in led if r.sent],
        "inside": [1.0 if r.submit < r.end else 0.0 for r in led],
        "behind": [1.0 if r.sent and r.sent_any and r.sent_any < r.sent else 0.0 for r in led],
    }


def join_wire(run: BotRun) -> tuple[list[float], int]:
    """Wire to wire per delta that led to a tx, on the venue's clock: delta sent -> the order
    frame carrying the first tx the bot submitted for it received. Returns the samples and how
    many such deltas had no frame carrying their tx (none expected)."""
    sent = run.venue.get("delta_sent", [])
    recv: dict[int, int] = {}
    for t, nonces in run.venue.get("order_nonces", []):
        for n in nonces:
            recv.setdefault(n, t)
    out: list[float] = []
    missing = 0
    for r in run.rows:
        if not r.submit or not 1 <= r.delta <= len(sent):
            continue
        t = recv.get(r.tx_nonce)
        if t is None:
            missing += 1
        else:
            out.append(float(t - sent[r.delta - 1]))
    return out, missing
