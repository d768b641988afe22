"""Event-loop and socket metrics: echo round trips (picows vs websockets, uvloop vs asyncio),
scheduler_jitter, loop_lag, and the feed over a loopback WebSocket.

The far end of every socket runs in its own process (``bench.remote``); this process is the
bot's side. ``pin``: this process on CPU 1, the far end on CPU 0.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable
from typing import Any

from bench.harness import Stats
from bench.l2stream import L2Stream
from bench.micro import Metric, Profile, _check_equal
from bench.procs import Remote, bot_desc, child_cpu, describe_placement

__all__ = ["echo", "feed_loopback", "loop_lag", "scheduler_jitter"]

BOT_CPU, REMOTE_CPU = 1, 0


def _run(loop: str, coro: Any) -> Any:
    if loop == "uvloop":
        import uvloop

        return uvloop.run(coro)
    return asyncio.run(coro)


def _stats(name: str, values: list[float]) -> Stats:
    return Stats.from_samples(name, [float(v) for v in values], ops=1)


# --- echo ---------------------------------------------------------------------------------------

PAYLOAD = b"x" * 256


async def _echo_client(impl: str, address: str, n: int, warm: int) -> list[int]:
    clock = time.perf_counter_ns
    out: list[int] = []
    if impl == "picows":
        from picows import WSListener, WSMsgType, ws_connect

        class Client(WSListener):
            fut: asyncio.Future[int] | None = None

            def on_ws_frame(self, transport: Any, frame: Any) -> None:
                now = clock()
                if frame.msg_type == WSMsgType.TEXT and self.fut is not None:
                    self.fut.set_result(now)

        transport, client = await ws_connect(Client, f"ws://127.0.0.1:{address}/")
        loop = asyncio.get_running_loop()
        for i in range(n + warm):
            client.fut = loop.create_future()
            t0 = clock()
            transport.send(WSMsgType.TEXT, PAYLOAD)
            t1 = await client.fut
            if i >= warm:
                out.append(t1 - t0)
        transport.disconnect()
    elif impl == "websockets":
        from websockets.asyncio.client import connect

        async with connect(f"ws://127.0.0.1:{address}/", compression=None) as ws:
            text = PAYLOAD.decode()
            for i in range(n + warm):
                t0 = clock()
                await ws.send(text)
                await ws.recv()
                t1 = clock()
                if i >= warm:
                    out.append(t1 - t0)
    else:
        reader, writer = await asyncio.open_connection("127.0.0.1", int(address))
        for i in range(n + warm):
            t0 = clock()
            writer.write(PAYLOAD)
            await reader.readexactly(len(PAYLOAD))
            t1 = clock()
            if i >= warm:
                out.append(t1 - t0)
        writer.close()
    return out


def echo(stream: L2Stream, profile: Profile, pin: bool = False) -> Metric:
    """WebSocket echo round trip on loopback, client here, server in another process."""
    metric = Metric(
        name="ws_echo",
        unit="ns/round trip",
        definition="256-byte text frame to an echo server in another process and back "
        "(loopback); the floor under wire_to_wire",
        target_text="reference (no target); picows+uvloop p50/p99 ~69/126 us on this VM kind",
    )
    n = 1_000 if profile.quick else 5_000
    combos = [
        ("picows", "uvloop"),
        ("websockets", "uvloop"),
        ("picows", "asyncio"),
        ("websockets", "asyncio"),
        ("tcp", "uvloop"),
    ]
    names = {
        ("picows", "uvloop"): "picows + uvloop (ours)",
        ("websockets", "uvloop"): "websockets + uvloop",
        ("picows", "asyncio"): "picows + stdlib asyncio",
        ("websockets", "asyncio"): "websockets + stdlib asyncio",
        ("tcp", "uvloop"): "raw TCP + uvloop (floor, no WebSocket)",
    }
    results: list[Stats] = []
    cpus: dict[str, int] = {}
    for impl, loop in combos:
        try:
            with Remote(
                "echo", "--impl", impl, "--loop", loop, cpu=REMOTE_CPU if pin else None
            ) as far:
                rtts = _run(loop, _echo_client(impl, far.address, n, 200))
                cpus[names[(impl, loop)]] = child_cpu(far.pid)
        except Exception as exc:
            metric.notes.append(
                f"{names[(impl, loop)]}: not available: {type(exc).__name__}: {exc}"
            )
            continue
        st = _stats(names[(impl, loop)], rtts)
        results.append(st)
        metric.dists[st.name] = [float(v) for v in rtts]
    if not results or results[0].name != names[("picows", "uvloop")]:
        metric.unavailable = "picows echo failed; " + "; ".join(metric.notes)
        return metric
    metric.ours = results[:1]
    metric.baselines = results[1:]
    metric.placement = describe_placement(
        {
            "client (this process)": bot_desc(),
            "echo server": f"one child process per case, last on CPUs {cpus}",
        },
        pin,
    )
    metric.notes.append(
        f"{n} round trips per case, one at a time, after 200 warm-up trips; "
        "server and client on the same loop kind"
    )
    return metric


# --- scheduler_jitter ---------------------------------------------------------------------------


async def _clock_ticks(interval_ms: float, ticks: int) -> list[int]:
    from mmfast._core.clock import Clock

    clk = Clock(interval_ms)
    done = asyncio.get_running_loop().create_future()

    def on_tick(_now_ms: int) -> None:
        if clk.tick_count >= ticks and not done.done():
            done.set_result(None)

    clk.add_iterator(on_tick)
    clk.start()
    await done
    clk.stop()
    await clk.wait_stopped(5)
    return list(clk.tick_lateness_ns())[-(ticks - 1) :]


async def _naive_ticks(interval_ms: float, ticks: int) -> list[int]:
    """What one writes without a scheduler: loop.call_at on the same monotonic grid (no
    re-arm on an early fire); error = |fire time - deadline|."""
    loop = asyncio.get_running_loop()
    interval_ns = int(interval_ms * 1e6)
    start = time.monotonic_ns()
    errors: list[int] = []
    done = loop.create_future()
    # loop.time() is monotonic seconds on both loops; map the ns grid onto it.
    offset = loop.time() - start / 1e9

    def fire(k: int) -> None:
        now = time.monotonic_ns()
        errors.append(abs(now - (start + k * interval_ns)))
        if k >= ticks:
            done.set_result(None)
            return
        loop.call_at(offset + (start + (k + 1) * interval_ns) / 1e9, fire, k + 1)

    loop.call_at(offset + (start + interval_ns) / 1e9, fire, 1)
    await done
    return errors


def scheduler_jitter(stream: L2Stream, profile: Profile, pin: bool = False) -> Metric:
    """Tick firing error against the tick's monotonic deadline."""
    metric = Metric(
        name="scheduler_jitter",
        unit="ns/tick",
        definition="mmfast._core.clock.Clock (realtime, 10 ms ticks): fire time - deadline, "
        "from Clock.tick_lateness_ns()",
        target_p99_ns=1_100_000.0,
        target_text="p99 <= 1.1 ms",
    )
    ticks = 250 if profile.quick else 800
    interval = 10.0
    runs: list[tuple[str, Callable[[], Any], str]] = [
        ("Clock on uvloop (ours)", lambda: _clock_ticks(interval, ticks), "uvloop"),
        ("Clock on stdlib asyncio", lambda: _clock_ticks(interval, ticks), "asyncio"),
        ("loop.call_at grid on uvloop, |error|", lambda: _naive_ticks(interval, ticks), "uvloop"),
        (
            "loop.call_at grid on stdlib asyncio, |error|",
            lambda: _naive_ticks(interval, ticks),
            "asyncio",
        ),
    ]
    if pin:
        import os

        os.sched_setaffinity(0, {BOT_CPU})
    stats: list[Stats] = []
    for name, make, loop in runs:
        try:
            values = _run(loop, make())
        except Exception as exc:
            metric.notes.append(f"{name}: not available: {type(exc).__name__}: {exc}")
            continue
        st = _stats(name, values)
        stats.append(st)
        metric.dists[name] = [float(v) for v in values]
    if not stats or not stats[0].name.startswith("Clock on uvloop"):
        metric.unavailable = "; ".join(metric.notes) or "Clock not available"
        return metric
    metric.ours = stats[:1]
    metric.baselines = stats[1:]
    metric.placement = describe_placement({"loop (this process)": bot_desc()}, pin)
    metric.notes.append(
        f"{ticks} ticks of {interval:g} ms per case on an otherwise idle loop; Clock uses its "
        "default 1 ms lead (sleeps to 1 ms before the deadline, then yields loop iterations); "
        "the call_at baselines can fire early (uvloop rounds timers), so their error is "
        "absolute"
    )
    return metric


# --- loop_lag and the feed over loopback --------------------------------------------------------


class _FeedClient:
    """picows client applying every order-book frame, optionally quoting after each."""

    def __init__(self, stream: L2Stream, kind: str) -> None:
        cfg = stream.config
        self.kind = kind
        if kind == "python":
            import json

            from bench.pipeline import LADDER, MARKET_MINIMUMS
            from mmfast.reference.book import ReferenceBook
            from mmfast.reference.quote import ReferenceQuoteEngine, RefQuoteParams

            book = ReferenceBook(cfg.market_id, cfg.price_decimals, cfg.size_decimals)
            eng = ReferenceQuoteEngine(RefQuoteParams(**LADDER), **MARKET_MINIMUMS)
            am, loads = book.apply_message, json.loads

            def step(data: bytes) -> None:
                am(loads(data))
                eng.compute(book.best_bid(), book.best_ask(), 0)
        else:
            from bench.pipeline import LADDER, MARKET_MINIMUMS
            from mmfast._core.book import OrderBook
            from mmfast._core.quote import QuoteEngine, QuoteParams

            book = OrderBook(cfg.market_id, cfg.price_decimals, cfg.size_decimals)
            eng = QuoteEngine(QuoteParams(**LADDER), **MARKET_MINIMUMS)
            af, cfb = book.apply_frame, eng.compute_from_book
            if kind == "apply_only":
                step = af  # type: ignore[assignment]
            else:

                def step(data: bytes) -> None:
                    af(data)
                    cfb(book, 0)

        self.book = book
        self.step = step
        self.count = 0
        self.first = 0
        self.last = 0


async def _feed_run(address: str, client: _FeedClient, probe: bool) -> dict[str, Any]:
    from picows import WSListener, WSMsgType, ws_connect

    loop = asyncio.get_running_loop()
    done = loop.create_future()
    clock = time.monotonic_ns
    step = client.step

    class L(WSListener):
        def on_ws_frame(self, transport: Any, frame: Any) -> None:
            if frame.msg_type != WSMsgType.TEXT:
                return
            data = frame.get_payload_as_bytes()
            if data == b'{"type":"end"}':
                if not done.done():
                    done.set_result(None)
                return
            step(data)
            client.count += 1
            now = clock()
            if client.first == 0:
                client.first = now
            client.last = now

    timer_lag: list[int] = []
    soon_lag: list[int] = []
    period_ns = 1_000_000

    def on_timer(deadline: int) -> None:
        now = clock()
        timer_lag.append(max(0, now - deadline))
        loop.call_soon(on_soon, now)
        if not done.done():
            nxt = now + period_ns
            loop.call_later(period_ns / 1e9, on_timer, nxt)

    def on_soon(t: int) -> None:
        soon_lag.append(clock() - t)

    transport, _ = await ws_connect(L, address, max_frame_size=1 << 24)
    if probe:
        loop.call_later(period_ns / 1e9, on_timer, clock() + period_ns)
    await asyncio.wait_for(done, 600)
    transport.disconnect()
    return {"timer": timer_lag, "soon": soon_lag}


def loop_lag(stream: L2Stream, profile: Profile, pin: bool = False) -> Metric:
    """Event-loop lag while a 500 msg/s feed is applied and quoted."""
    metric = Metric(
        name="loop_lag",
        unit="ns",
        definition="a 1 ms loop timer's firing delay (fire time - due time, >= 0) while a "
        "500 msg/s picows feed from another process is applied to the book and quoted",
        target_p99_ns=1_000_000.0,
        target_text="p99 <= 1 ms",
    )
    n = 1_500 if profile.quick else 4_000
    cases = [
        ("uvloop, compiled book + quote (ours)", "uvloop", "compiled"),
        ("stdlib asyncio, compiled book + quote", "asyncio", "compiled"),
        ("uvloop, pure Python (json + ReferenceBook + Python quote)", "uvloop", "python"),
    ]
    stats: list[Stats] = []
    cpus: dict[str, int] = {}
    for name, loop, kind in cases:
        try:
            client = _FeedClient(stream, kind)
            with Remote(
                "feed",
                "--loop",
                "uvloop",
                "--rate",
                "500",
                "--n",
                str(n),
                "--seed",
                str(stream.config.seed),
                cpu=REMOTE_CPU if pin else None,
            ) as far:
                res = _run(loop, _feed_run(f"ws://127.0.0.1:{far.address}/", client, True))
                cpus[name] = child_cpu(far.pid)
        except Exception as exc:
            metric.notes.append(f"{name}: not available: {type(exc).__name__}: {exc}")
            continue
        if client.count != n + 1:
            raise AssertionError(f"loop_lag {name}: got {client.count} frames, want {n + 1}")
        st = _stats(name, res["timer"])
        stats.append(st)
        metric.dists[name] = [float(v) for v in res["timer"]]
        soon = _stats(name, res["soon"])
        metric.figures[f"call_soon_lag_{kind}_{loop}"] = soon.as_dict()
        metric.notes.append(
            f"{name}: call_soon queue delay p50/p99 "
            f"{soon.p50_ns / 1000:.1f}/{soon.p99_ns / 1000:.1f} us"
        )
    if not stats or "ours" not in stats[0].name:
        metric.unavailable = "; ".join(metric.notes) or "feed failed"
        return metric
    metric.ours = stats[:1]
    metric.baselines = stats[1:]
    metric.placement = describe_placement(
        {
            "bot loop (this process)": bot_desc(),
            "feed server": f"child per case, last on CPUs {cpus}",
        },
        pin,
    )
    metric.notes.insert(
        0,
        f"{n} deltas at 500 msg/s per case ({n / 500:.0f} s); the probe "
        "re-arms a 1 ms call_later from each firing; uvloop may fire a timer "
        "early, which counts as 0",
    )
    return metric


def feed_loopback(stream: L2Stream, profile: Profile, pin: bool = False) -> Metric:
    """The feed flat out over a loopback WebSocket: msgs/s the client applies, per loop."""
    metric = Metric(
        name="feed_loopback",
        unit="ns/msg",
        definition="deltas pushed flat out by a picows server in another process; the client "
        "applies each (OrderBook.apply_frame); time per message at the client",
        target_text="reference (no target): uvloop vs stdlib asyncio",
    )
    n = 30_000 if profile.quick else 100_000
    stats: list[Stats] = []
    rates: dict[str, float] = {}
    cpus: dict[str, int] = {}
    for loop in ("uvloop", "asyncio"):
        name = f"picows + {loop}" + (" (ours)" if loop == "uvloop" else "")
        client = _FeedClient(stream, "apply_only")
        try:
            # The server always runs uvloop: only the client's loop differs between cases.
            with Remote(
                "feed",
                "--loop",
                "uvloop",
                "--rate",
                "0",
                "--n",
                str(n),
                "--seed",
                str(stream.config.seed),
                cpu=REMOTE_CPU if pin else None,
                timeout=120,
            ) as far:
                gc.collect()
                _run(loop, _feed_run(f"ws://127.0.0.1:{far.address}/", client, False))
                cpus[name] = child_cpu(far.pid)
        except Exception as exc:
            metric.notes.append(f"{name}: not available: {type(exc).__name__}: {exc}")
            continue
        if client.count != n + 1:
            raise AssertionError(f"feed_loopback: got {client.count} frames, want {n + 1}")
        _check_equal("feed_loopback book", client.book.nonce > 0, True)
        span = client.last - client.first
        rate = (client.count - 1) / (span / 1e9) if span else 0.0
        rates[name] = rate
        per = span / max(1, client.count - 1)
        stats.append(Stats(name, per, per, per, per, 1, client.count))
    if not stats:
        metric.unavailable = "; ".join(metric.notes)
        return metric
    metric.ours = stats[:1]
    metric.baselines = stats[1:]
    metric.figures["msgs_per_s"] = rates
    metric.placement = describe_placement(
        {
            "client (this process)": bot_desc(),
            "feed server": f"child per case, last on CPUs {cpus}",
        },
        pin,
    )
    metric.notes.append(
        f"{n} deltas per case, server on uvloop in both; msgs/s: "
        + "; ".join(f"{k}: {v:,.0f}" for k, v in rates.items())
        + " (one number per run: p50 = p99 = span / messages)"
    )
    return metric
