"""wire_to_wire and tick_to_trade: the venue in another process sends a delta; mmfast's real
bot stack here (``bench.botpath``: ``mmfast run``'s TradingCore, LighterConnector, the
market_making strategy with its planner and risk gate, order entry with the nonce manager, the
signer) applies it, requotes and sends the resulting order frame; the venue stamps delta sent ->
first order frame received in that delta's window, with its own clock. Between deltas the venue
sends an echo probe on the bot's market-data connection, which the bot returns at once: the
echo floor of that connection, measured in the same run.

Each real-stack case runs twice: with the low-latency settings (``[run] cpu`` and
``busy_poll``: the bot's loop pinned to one CPU and polling without sleeping, the venue pinned
to the other CPU, as a remote venue never shares the bot's CPU): the figure against the target;
and as ``mmfast run`` ships (neither): a baseline row. The venue stamps a frame it receives as
its socket read returns (``bench.remote._ReadClock``) and a delta or an echo probe it sends as
its frame is handed to the socket (``bench.remote._WriteClock``: the simulator builds a delta's
frame in a few us more than a probe's, which is the venue's work, not the bot's); its own
dispatch to the frame handler is reported beside, not counted.

- ``wire_to_wire``: signing taken out (``PreSignedSigner``: the SDK's tx_info with a pre-made
  signature, ready inside ``submit``; the compiled step's first tx made through its ``native``
  methods, the path a bot on the native signer takes).
- ``tick_to_trade``: every tx really signed: mmfast's InlineSigner (the native signer inline
  on the loop; ours) and, in the same run, mmfast's SignerWorker (lighter-sdk on its worker
  thread; the baseline). The simulator registers the throwaway key and verifies every
  signature (with PreSignedSigner, verification is off).

The venue is mmfast's simulator (``bench.remote venue --kind bot``). Beside the bot, a reference
case: the core pipeline only (``bench.pipeline.CompiledPipeline``: book, quote, minimal diff, the
tx handed straight to the socket; no strategy, planner, risk gate or order entry) against the
same simulator (``--kind sim``), the floor of what the stack adds.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bench.harness import Stats
from bench.l2stream import L2Stream
from bench.micro import Metric, Profile
from bench.pipeline import CompiledPipeline, Stamps
from bench.procs import Remote, bot_desc, child_cpu, describe_placement

__all__ = ["tick_to_trade", "wire_to_wire"]

BOT_CPU, REMOTE_CPU = 1, 0
POOL = 256
CORE = "core pipeline only (book+quote+diff)"
BOT = "mmfast bot (real stack)"
# The bot's settings in a case: [run] cpu + busy_poll with the venue on the other CPU (as a
# remote venue never shares the bot's CPU), or as `mmfast run` ships (neither).
LOW = "low-latency settings"
DEFAULT = "default settings"


class _PoolSink:
    """wire_to_wire's end: the next pre-signed tx for each changed level."""

    def __init__(self, pool: list[bytes]) -> None:
        self.pool = pool
        self.i = 0
        self.batch: list[bytes] = []

    def __call__(self, level: int, is_ask: bool, price: int, size: int) -> None:
        self.batch.append(self.pool[self.i % len(self.pool)])
        self.i += 1


class _SignSink:
    """tick_to_trade's end: SignerWorker.submit per changed level; the callback sends it."""

    def __init__(self, worker: Any, market: int) -> None:
        from bench.signing import modify

        self.worker = worker
        self.market = market
        self.modify = modify
        self.nonce = 10_000
        self.callback: Any = None

    def __call__(self, level: int, is_ask: bool, price: int, size: int) -> None:
        self.nonce += 1
        self.worker.submit(
            self.modify(self.market, 2 * level + is_ask, price, size, self.nonce), self.callback
        )


async def _bot(
    address: str, stream: L2Stream, subscribe: bool, sink: Any, signing: bool
) -> dict[str, Any]:
    from picows import WSListener, WSMsgType, ws_connect

    text = WSMsgType.TEXT
    clock = time.perf_counter_ns
    pipe = CompiledPipeline(stream, sink)
    on_frame = pipe.on_frame
    internal: list[int] = []  # bot's own time: frame callback entry -> order frame sent
    pipeline_ns: list[int] = []  # frame callback entry -> last tx taken from the pool
    state: dict[str, Any] = {"transport": None, "id": b""}

    def send_signed(ident: bytes, result: Any, error: BaseException | None) -> None:
        if error is not None or state["transport"] is None:
            return
        state["transport"].send(
            text,
            b'{"type":"jsonapi/sendtx","data":{"id":"'
            + ident
            + b'","tx_type":17,"tx_info":'
            + result.tx_info.encode()
            + b"}}",
        )

    class Bot(WSListener):
        def on_ws_connected(self, transport: Any) -> None:
            state["transport"] = transport
            if subscribe:
                transport.send(text, b'{"type":"subscribe","channel":"order_book/0"}')

        def on_ws_frame(self, transport: Any, frame: Any) -> None:
            t0 = clock()
            if frame.msg_type != text:
                if frame.msg_type == WSMsgType.PING:
                    transport.send_pong(frame.get_payload_as_bytes())
                return
            data = frame.get_payload_as_bytes()
            if data.startswith(b'{"echo":'):
                transport.send(text, data)
                return
            if not data.startswith(b'{"channel":"order_book:'):
                return  # acks, errors, "connected"
            st = Stamps(received=t0)
            if signing:
                # Callbacks run later on this loop, after the id below is known.
                box = [b""]
                sink.callback = lambda r, e, _b=box: send_signed(_b[0], r, e)
                on_frame(data, st)
                box[0] = str(pipe.book.nonce).encode()
                return
            sink.batch = []
            n = on_frame(data, st)
            if n:
                ident = str(pipe.book.nonce).encode()
                transport.send(
                    text,
                    b'{"type":"jsonapi/sendtxbatch","data":{"id":"'
                    + ident
                    + b'","tx_types":['
                    + b",".join([b"17"] * n)
                    + b'],"tx_infos":['
                    + b",".join(sink.batch)
                    + b"]}}",
                )
                internal.append(clock() - t0)
                pipeline_ns.append(st.all_txs - t0)

    transport, _ = await ws_connect(Bot, address, max_frame_size=1 << 24)
    await transport.wait_disconnected()
    return {"internal": internal, "pipeline": pipeline_ns, "txs": pipe.txs, "top": pipe.top()}


def _run_case(
    kind: str,
    stream: L2Stream,
    n: int,
    gap_us: int,
    pin: bool,
    sink: Any,
    signing: bool,
    loop_runner: Any,
    api_key: str | None = None,
) -> tuple[dict[str, Any], dict[str, Any], int]:
    extra = ["--api-key", api_key] if api_key else []
    with Remote(
        "venue",
        "--kind",
        kind,
        "--n",
        str(n),
        "--seed",
        str(stream.config.seed),
        "--gap-us",
        str(gap_us),
        *extra,
        cpu=REMOTE_CPU if pin else None,
        timeout=120,
    ) as far:
        address = far.address
        task_result: dict[str, Any] = {}

        async def main() -> None:
            bot = asyncio.ensure_future(_bot(address, stream, kind == "sim", sink, signing))
            loop = asyncio.get_running_loop()
            res = await loop.run_in_executor(None, far.result, 600.0)
            task_result["venue"] = res
            try:  # the venue has exited: the bot sees the disconnect and returns
                task_result["bot"] = await asyncio.wait_for(bot, 10)
            except (TimeoutError, asyncio.CancelledError):
                task_result["bot"] = {}

        loop_runner(main())
        cpu = child_cpu(far.pid)
    return task_result["venue"], task_result.get("bot", {}), cpu


def _stats(name: str, values: list[int] | list[float]) -> Stats:
    return Stats.from_samples(name, [float(v) for v in values], 1)


def _us(st: Stats) -> str:
    return f"{st.p50_ns / 1000:.1f}/{st.p99_ns / 1000:.1f} us"


def _bot_rows(
    metric: Metric,
    run: Any,
    stream: L2Stream,
    n: int,
    signing: str,
    BOT: str = BOT,
    into_baselines: bool = False,
    fig_key: str = "baseline_bot",
) -> list[str]:
    """The bot case's rows, figures and notes; returns what failed its checks."""
    from bench.botpath import join_wire, problems, stage_lists

    venue = run.venue
    bad = problems(run, stream, n)
    joined, missing = join_wire(run)
    w2w = _stats(
        f"{BOT} on mmfast.sim: delta sent -> order frame with its first tx received", joined
    )
    echo = _stats(f"{BOT}: echo probe round trip, same (market-data) connection", venue["echo"])
    (metric.baselines if into_baselines else metric.ours).append(w2w)
    metric.baselines.append(echo)
    metric.dists[w2w.name] = joined
    metric.dists[echo.name] = [float(v) for v in venue["echo"]]
    lists = stage_lists(run.rows)
    stages = {}
    for key, label in (
        ("submit", "frame callback -> first signer.submit"),
        ("sent", "frame callback -> order frame with that tx sent"),
    ):
        if lists[key]:
            st = _stats(f"{BOT}, in process: {label} (live)", lists[key])
            (metric.baselines if into_baselines else metric.ours).append(st)
            stages[key] = st
    window = _stats("w", venue["w2w"]) if venue["w2w"] else None
    with_submit = len(lists["submit"])
    inside = int(sum(lists["inside"]))
    behind = int(sum(lists["behind"]))
    # A second bot case of the same metric (its baseline) keeps its figures apart.
    f = metric.figures.setdefault(fig_key, {}) if into_baselines else metric.figures
    f["bot_deltas"] = n
    f["bot_deltas_with_tx"] = with_submit
    f["bot_deltas_joined"] = len(joined)
    f["bot_deltas_tx_not_seen"] = missing
    f["bot_deltas_behind_older_txs"] = behind
    f["bot_submits_inside_frame_callback"] = inside
    f["bot_order_frames"] = venue["order_frames"]
    f["bot_windows_with_order_frame"] = len(venue["w2w"])
    f["bot_window_w2w"] = window.as_dict() if window else None
    f["bot_p50_over_echo_ns"] = w2w.p50_ns - echo.p50_ns
    f["bot_stages"] = {k: v.as_dict() for k, v in stages.items()}
    if lists["submit_to_sent"]:
        f["bot_submit_to_sent"] = _stats("s", lists["submit_to_sent"]).as_dict()
    f["bot_own_latency_us"] = run.latency.get("live", {})
    f["bot_status"] = run.status
    f["bot_startup_s"] = round(run.startup_s, 2)
    f["bot_exit_code"] = run.exit_code
    f["bot_book_top"] = list(run.top)
    f["venue_book_subscribes"] = venue.get("book_subscribes")
    f["venue_read_stamps"] = venue.get("read_stamps")
    f["venue_read_fallbacks"] = venue.get("read_fallbacks")
    f["venue_sends_unwritten"] = venue.get("unwritten")
    if venue.get("dispatch"):
        f["venue_dispatch"] = _stats("d", venue["dispatch"]).as_dict()
    f["venue_open_orders_at_end"] = venue.get("open_orders")
    stage_txt = "; ".join(
        f"{label} p50/p99 {_us(stages[k])}"
        for k, label in (
            ("submit", "frame callback -> first signer.submit"),
            ("sent", "-> the order frame carrying that tx sent"),
        )
        if k in stages
    )
    if lists["submit_to_sent"]:
        stage_txt += f" (submit -> sent {_us(_stats('s', lists['submit_to_sent']))})"
    own = run.latency.get("live", {})
    own_s = own.get("strategy", {})
    own_txt = ", ".join(
        f"{k} {v['p50_us']}/{v['p99_us']} us"
        for k, v in own_s.items()
        if k in ("book>quote", "quote>send", "book>send")
    )
    oe = own.get("order_entry", {})
    oe_txt = ", ".join(
        f"{k} {v['p50_us']:.0f}/{v['p99_us']:.0f} us" for k, v in oe.items() if v.get("n")
    )
    orders = run.status.get("orders", {})
    stages = run.status.get("direct_stages") or []
    if stages:
        med = [sorted(x[i] for x in stages)[len(stages) // 2] / 1000 for i in range(3)]
        metric.notes.append(
            f"{BOT}: the compiled step's own first txs, medians: frame callback -> nonce taken "
            f"{med[0]:.1f} us, -> signed {med[1]:.1f} us, -> frame built {med[2]:.1f} us "
            f"({len(stages)} frames); the signer's nonce commitments: "
            f"{run.status.get('pool')}"
        )
    metric.notes.append(
        f"{BOT}: {n} deltas, {with_submit} led to a tx ({inside} submitted inside the frame "
        f"callback, {run.status.get('direct_first', 0)} of them signed and sent by the compiled "
        f"step itself; {behind} had an older delta's txs go out first); "
        f"{venue['order_frames']} "
        f"order frames, {orders.get('txs_sent', '?')} txs in all; wire_to_wire (delta sent -> "
        f"the order frame carrying the delta's first tx, joined by nonce on the venue's "
        f"clock) p50 {w2w.p50_ns / 1000:.1f} us = echo p50 {echo.p50_ns / 1000:.1f} us + "
        f"{(w2w.p50_ns - echo.p50_ns) / 1000:.1f} us"
        + (
            f"; by time window instead (first order frame after each delta, "
            f"{len(venue['w2w'])} windows) p50/p99 {_us(window)}"
            if window
            else ""
        )
    )
    metric.notes.append(f"{BOT}, in the bot ({signing}): {stage_txt}")
    if venue.get("dispatch"):
        d = _stats("d", venue["dispatch"])
        metric.notes.append(
            f"{BOT}: the venue stamps each delta and echo probe as its frame is handed to "
            f"the socket ({venue.get('unwritten', 0)} stamped before the send instead), each "
            f"frame it receives as its socket read returns "
            f"({venue.get('read_fallbacks', 0)} frames stamped at the handler instead); its "
            f"own dispatch after that (aiohttp's reader -> the frame handler), not counted: "
            f"p50/p99 {_us(d)}"
        )
    if own_txt or oe_txt:
        metric.notes.append(
            f"{BOT}, the bot's own stamps (monotonic clock of its TimeSource; p50/p99): "
            f"strategy, every requote / order call: {own_txt or '-'}; order entry per tx "
            f"(queue = intent -> signer queue, sign, send = signed -> sent, ack): "
            f"{oe_txt or '-'}"
        )
    metric.notes.append(
        f"{BOT}: ready in {run.startup_s:.1f} s (2 x 5 ladder resting); at the end: book "
        f"top {run.top} (stream {stream.tops[n]}), {orders.get('api_rejects', '?')} rejects, "
        f"{orders.get('frames_rest', '?')} frames over REST, {run.status.get('gaps', '?')} "
        f"book gaps, {venue.get('book_subscribes')} book subscriptions, exit code "
        f"{run.exit_code}"
        + (f"; {len(run.warnings)} warnings: {run.warnings[:3]}" if run.warnings else "")
    )
    return bad


def _core_rows(metric: Metric, venue: dict[str, Any], internal: list[int]) -> None:
    w = _stats(f"{CORE} on mmfast.sim: delta sent -> order frame received", venue["w2w"])
    e = _stats(f"{CORE}: echo probe round trip, same connection", venue["echo"])
    metric.ours.append(w)
    metric.baselines.append(e)
    metric.dists[w.name] = [float(v) for v in venue["w2w"]]
    metric.figures["core_deltas"] = venue["deltas"]
    metric.figures["core_orders_matched"] = len(venue["w2w"])
    metric.figures["core_p50_over_echo_ns"] = w.p50_ns - e.p50_ns
    extra = ""
    if internal:
        st = _stats("i", internal)
        metric.figures["core_internal"] = st.as_dict()
        extra = f"; its own time (frame callback -> order frame sent) p50/p99 {_us(st)}"
    metric.notes.append(
        f"reference, {CORE}: bench.pipeline.CompiledPipeline (no strategy, planner, risk gate, "
        f"order entry or nonce manager: the tx goes straight to the socket) against mmfast.sim "
        f"(--kind sim, the same stream and gaps): p50 {w.p50_ns / 1000:.1f} us = echo "
        f"{e.p50_ns / 1000:.1f} us + {(w.p50_ns - e.p50_ns) / 1000:.1f} us{extra}"
    )


def _placement(metric: Metric, pin: bool, run: Any, cpus: dict[str, int]) -> None:
    parts = {"bot (this process, uvloop)": bot_desc()}
    if run is not None and run.cpus:
        parts["bot threads last seen on"] = str(run.cpus)
    parts["venue"] = f"child process per case, last on CPUs {cpus}"
    metric.placement = describe_placement(parts, pin)


def _verdict(metric: Metric, bad: list[str], ok: bool, text: str) -> None:
    if bad:
        metric.verdict = False
        metric.target_text = f"{text} -- CHECK FAILED: {'; '.join(bad)}"
        metric.notes.insert(0, "checks failed: " + "; ".join(bad))
    else:
        metric.verdict = ok
        metric.target_text = text


def _bot_run(
    metric: Metric,
    stream: L2Stream,
    n: int,
    gap: int,
    pin: bool,
    worker_signer: bool,
    signer_text: str,
    signer_kind: str | None = None,
    label: str = BOT,
    into_baselines: bool = False,
    low_latency: bool = False,
    fig_key: str = "baseline_bot",
) -> tuple[Any, dict[str, int], list[str]] | None:
    """The real-stack case of a metric: its rows on ``metric`` and (run, CPUs, failed checks),
    or None with ``metric.unavailable`` set. ``low_latency``: the bot with ``[run] cpu`` and
    ``busy_poll``, the venue on the other CPU (``bench.botpath.bot_case``)."""
    try:
        from bench.botpath import bot_case
    except Exception as exc:
        metric.unavailable = f"bot stack: {type(exc).__name__}: {exc}"
        return None
    cpus: dict[str, int] = {}
    try:
        run, cpus[label] = bot_case(
            stream,
            n,
            gap,
            pin,
            worker_signer=worker_signer,
            venue_cpu=REMOTE_CPU,
            signer_kind=signer_kind,
            low_latency=low_latency,
        )
        bad = _bot_rows(metric, run, stream, n, signer_text, label, into_baselines, fig_key)
    except Exception as exc:
        metric.unavailable = f"{label}: {type(exc).__name__}: {exc}"
        return None
    return run, cpus, bad


def _baseline_case(
    metric: Metric,
    cpus: dict[str, int],
    bad: list[str],
    stream: L2Stream,
    n: int,
    gap: int,
    pin: bool,
    worker_signer: bool,
    signer_text: str,
    signer_kind: str | None,
    label: str,
    tag: str,
    **kw: Any,
) -> bool:
    """A further real-stack case of a metric, its rows among the baselines: its CPUs and
    failed checks (prefixed ``tag``) merged into ``cpus`` and ``bad``; if it could not run,
    a note says why and the metric stands on its other cases. True if it ran."""
    got = _bot_run(
        metric,
        stream,
        n,
        gap,
        pin,
        worker_signer,
        signer_text,
        signer_kind,
        label,
        into_baselines=True,
        **kw,
    )
    if got is None:
        metric.notes.append(f"{label}: not available: {metric.unavailable}")
        metric.unavailable = None
        return False
    cpus.update(got[1])
    bad += [f"{tag}: {b}" for b in got[2]]
    return True


def wire_to_wire(stream: L2Stream, profile: Profile, pin: bool = False) -> Metric:
    """Simulator (other process) sends a delta -> receives the bot's order frame; no signing."""
    metric = Metric(
        name="wire_to_wire",
        unit="ns",
        definition="venue process (mmfast.sim) sends a delta -> receives the first order "
        "frame of mmfast's real bot stack for it (loopback; signing taken out)",
        target_text="p50 within 25 us of the echo round trip of the same run",
    )
    n = 1_500 if profile.quick else 5_000
    gap = 2_000
    got = _bot_run(
        metric,
        stream,
        n,
        gap,
        pin,
        False,
        "PreSignedSigner, signature ready at once",
        label=f"{BOT}, {LOW}",
        low_latency=True,
    )
    if got is None:
        return metric
    run, cpus, bad = got
    _baseline_case(
        metric,
        cpus,
        bad,
        stream,
        n,
        gap,
        pin,
        False,
        "PreSignedSigner, signature ready at once",
        None,
        f"{BOT}, {DEFAULT}",
        DEFAULT,
        fig_key="default_settings_bot",
    )
    # Reference: the core pipeline alone against the same simulator.
    try:
        import uvloop

        from bench.signing import make_worker, presign_pool

        async def make_pool() -> list[bytes]:
            w = make_worker()
            w.start()
            try:
                return await presign_pool(w, POOL, 1, stream.tops[0][0])
            finally:
                w.stop()

        pool = uvloop.run(make_pool())
        venue, bot, cpus[CORE] = _run_case(
            "sim", stream, n, gap, pin, _PoolSink(pool), False, uvloop.run
        )
        if venue["w2w"]:
            _core_rows(metric, venue, bot.get("internal", []))
        else:
            metric.notes.append(f"{CORE}: no order frame matched a delta")
    except Exception as exc:
        metric.notes.append(f"{CORE}: not available: {type(exc).__name__}: {exc}")
    head, floor = metric.ours[0], metric.baselines[0]
    gap_ns = head.p50_ns - floor.p50_ns
    _verdict(
        metric,
        bad,
        gap_ns <= 25_000,
        f"p50 within 25 us of the echo round trip (+{gap_ns / 1000:.1f} us over the "
        "bot's market-data connection's echo)",
    )
    metric.notes.insert(
        0,
        (
            f"one delta every {gap / 1000:g} ms with an echo probe between (on the bot's "
            "market-data connection, half a gap after the delta: when the bot is still busy with "
            "the delta's txs the probe waits too, which the core-only case's echo shows less of); "
            "only deltas that move the quote produce an order frame "
            "(a one-tick move of the mid re-prices the whole 2 x 5 ladder: each modify goes out as "
            "soon as it is signed, up to 4 order frames awaiting their acks (the sim default of "
            "[venue] ws_order_frames), later ones batched); the venue stamps a frame it sends as "
            "it hands it to the socket and a frame it receives as its socket read returns "
            "(before aiohttp's reader and the frame handler); the bot's "
            "frames carry no delta id: the bot notes the nonce of the first tx each delta made "
            "it submit, the venue "
            "the nonces each order frame carried, joined after the run; signing taken "
            "out: PreSignedSigner builds the SDK's tx_info with a pre-made signature, for the "
            "compiled step's first tx through the native signer's two methods (the step signs "
            "and sends it itself, as with the native signer) and for the rest inside submit, "
            "as a pool of signed txs would have them ready"
        ),
    )
    _placement(metric, pin, run, cpus)
    return metric


def tick_to_trade(stream: L2Stream, profile: Profile, pin: bool = False) -> Metric:
    """As wire_to_wire, with real signing: mmfast's native signer inline (ours) and the
    official signer on its worker thread (baseline), same run."""
    metric = Metric(
        name="tick_to_trade",
        unit="ns",
        definition="venue process (mmfast.sim) sends a delta -> receives the first order "
        "frame of mmfast's real bot stack for it, every tx really signed: mmfast's native "
        "signer inline on the loop (InlineSigner) vs the official signer on mmfast's "
        "SignerWorker thread, same run",
        target_ns=150_000.0,
        target_text="p50 <= 0.15 ms",
    )
    n = 300 if profile.quick else 1_000
    gap = 10_000
    native = f"{BOT}, native signer, {LOW}"
    official = f"{BOT}, official signer, {LOW}"
    native_def = f"{BOT}, native signer, {DEFAULT}"
    got = _bot_run(
        metric,
        stream,
        n,
        gap,
        pin,
        True,
        "InlineSigner, native signer inline on the loop",
        "native",
        native,
        low_latency=True,
    )
    if got is None:
        return metric
    run, cpus, bad = got
    # If the official case fails, the native rows stand and a note says why.
    off_ran = _baseline_case(
        metric,
        cpus,
        bad,
        stream,
        n,
        gap,
        pin,
        True,
        "SignerWorker, lighter-sdk on its thread",
        "official",
        official,
        official,
        low_latency=True,
    )
    _baseline_case(
        metric,
        cpus,
        bad,
        stream,
        n,
        gap,
        pin,
        True,
        "InlineSigner, native signer inline on the loop",
        "native",
        native_def,
        DEFAULT,
        fig_key="default_settings_bot",
    )
    if off_ran:
        # The official bot row first among the baselines: the headline's same-run baseline.
        off_row = next(b for b in metric.baselines if b.name.startswith(official + " on"))
        metric.baselines.remove(off_row)
        metric.baselines.insert(0, off_row)
    try:
        import uvloop

        from bench.signing import make_key, make_worker
        from mmfast.sim.config import DEFAULT_ACCOUNT_INDEX

        key, pub = make_key()
        worker = make_worker(key=key)
        sink = _SignSink(worker, 1)

        async def run_core(coro: Any, _w: Any = worker) -> Any:
            _w.start()
            try:
                return await coro
            finally:
                _w.stop()

        from bench.signing import API_KEY_INDEX

        venue, _b, cpus[CORE] = _run_case(
            "sim",
            stream,
            n,
            gap,
            pin,
            sink,
            True,
            lambda c: uvloop.run(run_core(c)),
            api_key=f"{DEFAULT_ACCOUNT_INDEX}:{API_KEY_INDEX}:{pub}",
        )
        if venue["w2w"]:
            _core_rows(metric, venue, [])
            metric.notes[-1] += " (signing each modify on a SignerWorker)"
        else:
            metric.notes.append(f"{CORE}: no order frame matched a delta")
    except Exception as exc:
        metric.notes.append(f"{CORE}: not available: {type(exc).__name__}: {exc}")
    head = metric.ours[0]
    _verdict(metric, bad, head.p50_ns <= 150_000, "p50 <= 0.15 ms")
    if off_ran:
        base = metric.baselines[0]
        metric.figures["official_over_native_p50"] = base.p50_ns / head.p50_ns
        metric.notes.insert(
            0,
            (
                f"native p50 {head.p50_ns / 1000:.1f} us against the official signer's "
                f"{base.p50_ns / 1000:.1f} us in the same run ({base.p50_ns / head.p50_ns:.1f}x)"
            ),
        )
    metric.notes.insert(
        0,
        (
            f"one delta every {gap / 1000:g} ms with an echo probe between on the bot's "
            "market-data connection; three real-stack cases one after the other, each against its "
            "own venue process: mmfast's InlineSigner (native signer inline in submit, its pool "
            "of 256 nonce commitments, its start-up self-check against the official signer) and "
            "mmfast's SignerWorker (lighter-sdk on its thread, ~0.5 ms a tx: a one-tick move "
            "signs ten modifies), both with the low-latency settings ([run] cpu: the bot's loop "
            "pinned to one CPU, the venue pinned to the other; [run] busy_poll: the loop polls "
            "instead of sleeping), and the native signer again with the default settings (not "
            "pinned: on loopback the kernel may wake the venue on the bot's busy CPU; the loop "
            "sleeps between frames); each signed modify goes out as soon as its callback runs "
            "while "
            "fewer than 4 order frames await their acks, later ones batched; deltas joined to the "
            "order frame carrying their first tx by nonce, as in wire_to_wire; the simulator "
            "registers each case's throwaway public key and verifies every signature and auth "
            "token (on its own loop, a few hundred us per tx of the venue process's CPU)"
        ),
    )
    _placement(metric, pin, run, cpus)
    return metric
