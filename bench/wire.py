"""wire_to_wire and tick_to_trade: the venue in another process sends a delta; the bot here
(picows client on uvloop) applies it, quotes, diffs and sends the resulting order frame; the
venue stamps delta sent -> order frame received with its own clock. Between deltas the venue
sends an echo probe that the bot returns at once: the echo floor, measured in the same run,
over the same connection.

- ``wire_to_wire``: the txs come from a pool signed before the run (signing taken out).
- ``tick_to_trade``: every changed level is signed on mmfast's SignerWorker thread and sent
  when its callback runs; the venue stamps the first order frame of each delta.

The venue is mmfast's simulator (``--kind sim``, its publish path and WebSocket handler) and,
beside it, a bare picows server (``--kind picows``: the same driver without the simulator's
aiohttp stack). The bot's pipeline is ``bench.pipeline.CompiledPipeline`` (book, quote, diff);
the strategy, planner and risk gate are not in it (see the README).
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
        self.worker.submit(self.modify(self.market, 2 * level + is_ask, price, size, self.nonce),
                           self.callback)


async def _bot(address: str, stream: L2Stream, subscribe: bool, sink: Any, signing: bool
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
        state["transport"].send(text, b'{"type":"jsonapi/sendtx","data":{"id":"' + ident
                                + b'","tx_type":17,"tx_info":' + result.tx_info.encode()
                                + b"}}")

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
                transport.send(text, b'{"type":"jsonapi/sendtxbatch","data":{"id":"' + ident
                               + b'","tx_types":[' + b",".join([b"17"] * n)
                               + b'],"tx_infos":[' + b",".join(sink.batch) + b"]}}")
                internal.append(clock() - t0)
                pipeline_ns.append(st.all_txs - t0)

    transport, _ = await ws_connect(Bot, address, max_frame_size=1 << 24)
    await transport.wait_disconnected()
    return {"internal": internal, "pipeline": pipeline_ns, "txs": pipe.txs, "top": pipe.top()}


def _run_case(kind: str, stream: L2Stream, n: int, gap_us: int, pin: bool, sink: Any,
              signing: bool, loop_runner: Any) -> tuple[dict[str, Any], dict[str, Any], int]:
    with Remote("venue", "--kind", kind, "--n", str(n), "--seed", str(stream.config.seed),
                "--gap-us", str(gap_us), cpu=REMOTE_CPU if pin else None, timeout=120) as far:
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


def _metric_from(metric: Metric, cases: list[tuple[str, dict[str, Any]]], pin: bool,
                 cpus: dict[str, int]) -> None:
    for label, venue in cases:
        w = Stats.from_samples(f"{label}: delta sent -> order frame received",
                               [float(v) for v in venue["w2w"]], 1)
        e = Stats.from_samples(f"{label}: echo probe round trip, same connection",
                               [float(v) for v in venue["echo"]], 1)
        metric.ours.append(w)
        metric.baselines.append(e)
        metric.dists[w.name] = [float(v) for v in venue["w2w"]]
        metric.dists[e.name] = [float(v) for v in venue["echo"]]
        metric.figures[f"{label}_deltas"] = venue["deltas"]
        metric.figures[f"{label}_orders_matched"] = len(venue["w2w"])
    metric.placement = describe_placement(
        {"bot (this process, uvloop, picows client)": bot_desc(),
         "venue": f"child process per case, last on CPUs {cpus}"}, pin)


def wire_to_wire(stream: L2Stream, profile: Profile, pin: bool = False) -> Metric:
    """Simulator (other process) sends a delta -> receives the order frame; pre-signed txs."""
    metric = Metric(
        name="wire_to_wire",
        unit="ns",
        definition="venue process sends a delta -> receives the bot's order frame (loopback; "
        "signing replaced by a pool of pre-signed txs)",
        target_text="p50 within 15 us of the echo round trip of the same run",
    )
    n = 1_500 if profile.quick else 5_000
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
    except Exception as exc:
        metric.unavailable = f"pre-signed pool: {type(exc).__name__}: {exc}"
        return metric
    cases = []
    cpus: dict[str, int] = {}
    internal: dict[str, list[int]] = {}
    for kind, label in (("sim", "mmfast.sim"), ("picows", "bare picows venue")):
        try:
            venue, bot, cpu = _run_case(kind, stream, n, 2_000, pin, _PoolSink(pool), False,
                                        uvloop.run)
        except Exception as exc:
            metric.notes.append(f"{label}: not available: {type(exc).__name__}: {exc}")
            continue
        if not venue["w2w"]:
            metric.notes.append(f"{label}: no order frame matched a delta")
            continue
        cases.append((label, venue))
        cpus[label] = cpu
        internal[label] = bot.get("internal", [])
    if not cases:
        metric.unavailable = "; ".join(metric.notes)
        return metric
    _metric_from(metric, cases, pin, cpus)
    head, floor = metric.ours[0], metric.baselines[0]
    gap = head.p50_ns - floor.p50_ns
    metric.verdict = gap <= 15_000
    metric.target_text = (f"p50 within 15 us of the echo round trip (+{gap / 1000:.1f} us "
                          f"over {cases[0][0]}'s echo)")
    metric.figures["p50_over_echo_ns"] = {
        label: (Stats.from_samples("w", [float(v) for v in v_["w2w"]], 1).p50_ns
                - Stats.from_samples("e", [float(v) for v in v_["echo"]], 1).p50_ns)
        for label, v_ in cases}
    for label, vals in internal.items():
        if vals:
            st = Stats.from_samples("i", [float(v) for v in vals], 1)
            metric.figures[f"bot_internal_{label}"] = st.as_dict()
            metric.notes.append(f"{label}: bot's own time (frame callback -> order frame "
                                f"sent) p50/p99 {st.p50_ns / 1000:.1f}/{st.p99_ns / 1000:.1f} us")
    metric.notes.insert(0, (
        f"{n} deltas, one every 2 ms with an echo probe between; only deltas that move the "
        "quote produce an order frame (one jsonapi/sendtxbatch of pre-signed modifies); the "
        "simulator stamps on entry to its WebSocket frame handler (after aiohttp's reader), "
        "then handles the batch as usual; the bare picows venue stamps in its frame callback"))
    metric.notes.append("the bot runs book -> quote -> minimal diff; the strategy, planner "
                        "and risk gate are not part of this pipeline yet")
    return metric


def tick_to_trade(stream: L2Stream, profile: Profile, pin: bool = False) -> Metric:
    """As wire_to_wire, with real signing on the worker thread."""
    metric = Metric(
        name="tick_to_trade",
        unit="ns",
        definition="venue process sends a delta -> receives the first order frame, each "
        "modify signed on mmfast's SignerWorker thread",
        target_ns=800_000.0,
        target_text="p50 <= 0.8 ms",
    )
    n = 300 if profile.quick else 1_000
    try:
        import uvloop

        from bench.signing import make_worker
    except Exception as exc:
        metric.unavailable = f"{type(exc).__name__}: {exc}"
        return metric
    cases = []
    cpus: dict[str, int] = {}
    for kind, label in (("sim", "mmfast.sim"),):
        worker = make_worker()
        sink = _SignSink(worker, 1)

        async def run(coro: Any, _w: Any = worker) -> Any:
            _w.start()
            try:
                return await coro
            finally:
                _w.stop()

        try:
            venue, _bot, cpu = _run_case(kind, stream, n, 10_000, pin, sink, True,
                                         lambda c: uvloop.run(run(c)))
        except Exception as exc:
            metric.notes.append(f"{label}: not available: {type(exc).__name__}: {exc}")
            continue
        if not venue["w2w"]:
            metric.notes.append(f"{label}: no order frame matched a delta")
            continue
        cases.append((label, venue))
        cpus[label] = cpu
    if not cases:
        metric.unavailable = "; ".join(metric.notes)
        return metric
    _metric_from(metric, cases, pin, cpus)
    metric.notes.insert(0, (
        f"{n} deltas, one every 10 ms (so a delta's signs, ~8 per 1-tick move at ~0.5 ms "
        "each, finish before the next) with an echo probe between; the first signed modify "
        "of a delta goes out as its own jsonapi/sendtx frame as soon as its callback runs"))
    return metric
