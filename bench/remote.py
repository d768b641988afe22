"""The far end of the socket benchmarks, run as its own process on 127.0.0.1.

    python -m bench.remote echo  --impl picows|websockets|tcp --loop uvloop|asyncio
    python -m bench.remote feed  --loop L --rate MSGS_PER_S (0: flat out) --n N --seed S
    python -m bench.remote venue --kind sim|picows --n N --seed S --gap-us G

Each prints ``port <n>`` once it listens, then serves one client. ``echo`` runs until killed.
``feed`` pushes the shared stream's snapshot and ``n`` deltas to the first client, then an
``{"type":"end"}`` frame. ``venue`` is the wire_to_wire driver: it sends deltas ``gap-us`` apart
and, between them, an echo probe; it stamps (``perf_counter_ns``, this process) each delta
sent, each order frame received (matched by the ``id`` the bot puts in it: the delta's nonce)
and each echo's round trip, then prints one JSON line of results and exits. ``--kind sim`` runs
mmfast's simulator (``mmfast.sim.server.Simulator``): deltas go out through its book-feed
publish path and order frames are stamped on entry to its WebSocket frame handler, then handled
by it as usual. ``--kind picows`` is a bare picows server doing the same, the transport floor.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from typing import Any

ECHO_PREFIX = b'{"echo":'
END_FRAME = b'{"type":"end"}'


def last_cpu(tid: int | None = None) -> int:
    """The CPU this process (or thread ``tid``) last ran on (/proc stat field 39)."""
    path = f"/proc/self/task/{tid}/stat" if tid else "/proc/self/stat"
    try:
        with open(path, encoding="ascii") as fh:
            return int(fh.read().rsplit(")", 1)[1].split()[36])
    except (OSError, ValueError, IndexError):
        return -1


def _runner(loop: str) -> Any:
    if loop == "uvloop":
        import uvloop

        return uvloop.run
    return asyncio.run


# --- echo ---------------------------------------------------------------------------------------


async def _echo(impl: str) -> None:
    if impl == "picows":
        from picows import WSListener, WSMsgType, ws_create_server

        class Echo(WSListener):
            def on_ws_frame(self, transport: Any, frame: Any) -> None:
                if frame.msg_type == WSMsgType.PING:
                    transport.send_pong(frame.get_payload_as_bytes())
                elif frame.msg_type == WSMsgType.CLOSE:
                    transport.disconnect()
                else:
                    transport.send(frame.msg_type, frame.get_payload_as_bytes())

        server = await ws_create_server(lambda _r: Echo(), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
    elif impl == "websockets":
        from websockets.asyncio.server import serve

        async def handler(ws: Any) -> None:
            async for msg in ws:
                await ws.send(msg)

        server = await serve(handler, "127.0.0.1", 0, compression=None)
        port = next(iter(server.sockets)).getsockname()[1]
    else:

        class Tcp(asyncio.Protocol):
            def connection_made(self, transport: Any) -> None:
                self.t = transport

            def data_received(self, data: bytes) -> None:
                self.t.write(data)

        server = await asyncio.get_running_loop().create_server(Tcp, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
    print(f"port {port}", flush=True)
    await asyncio.Event().wait()


# --- feed ---------------------------------------------------------------------------------------


async def _feed(rate: float, n: int, seed: int) -> None:
    from picows import WSListener, WSMsgType, ws_create_server

    from bench.l2stream import StreamConfig, generate

    stream = generate(StreamConfig(seed=seed, n_deltas=n))
    frames = stream.frames
    done = asyncio.get_running_loop().create_future()

    class Feed(WSListener):
        def on_ws_connected(self, transport: Any) -> None:
            asyncio.get_running_loop().create_task(self.push(transport))

        def on_ws_frame(self, transport: Any, frame: Any) -> None:
            if frame.msg_type == WSMsgType.CLOSE:
                transport.disconnect()

        async def push(self, transport: Any) -> None:
            send = transport.send
            text = WSMsgType.TEXT
            underlying = transport.underlying_transport
            t0 = time.monotonic()
            send(text, frames[0])
            for i, data in enumerate(frames[1:], 1):
                if rate > 0:
                    due = t0 + i / rate
                    delay = due - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                elif underlying.get_write_buffer_size() > 1 << 20:
                    while underlying.get_write_buffer_size() > 1 << 18:
                        await asyncio.sleep(0)
                send(text, data)
            send(text, END_FRAME)
            if not done.done():
                done.set_result(None)

    server = await ws_create_server(lambda _r: Feed(), "127.0.0.1", 0)
    print(f"port {server.sockets[0].getsockname()[1]}", flush=True)
    await done
    await asyncio.sleep(0.5)
    print(json.dumps({"cpu": last_cpu()}), flush=True)


# --- venue (wire_to_wire driver) ----------------------------------------------------------------


class _Stamps:
    """Send/receive stamps of the driver, all from this process's perf_counter_ns."""

    def __init__(self) -> None:
        self.sent: dict[bytes, int] = {}  # delta id (its nonce, as bytes) -> sent ns
        self.w2w: list[int] = []  # delta sent -> first order frame for it received
        self.seen: set[bytes] = set()
        self.echo_sent: dict[bytes, int] = {}
        self.echo: list[int] = []  # echo probe round trips
        self.order_frames = 0

    def on_order(self, data: bytes, now: int) -> None:
        self.order_frames += 1
        i = data.find(b'"id":"')
        if i < 0:
            return
        j = data.find(b'"', i + 6)
        key = data[i + 6 : j]
        t = self.sent.get(key)
        if t is not None and key not in self.seen:
            self.seen.add(key)
            self.w2w.append(now - t)

    def on_echo(self, data: bytes, now: int) -> None:
        t = self.echo_sent.pop(data, None)
        if t is not None:
            self.echo.append(now - t)


async def _drive(send_delta: Any, send_echo: Any, ready: asyncio.Future[Any], frames: list[bytes],
                 nonces: list[int], stamps: _Stamps, gap_s: float) -> None:
    await asyncio.wait_for(ready, 30)
    clock = time.perf_counter_ns
    send_delta(frames[0], 0, (0, nonces[0]))
    await asyncio.sleep(0.05)
    for i in range(1, len(frames)):
        key = str(nonces[i]).encode()
        stamps.sent[key] = clock()
        send_delta(frames[i], i, (nonces[i - 1], nonces[i]))
        await asyncio.sleep(gap_s / 2)
        probe = ECHO_PREFIX + str(i).encode() + b"}"
        stamps.echo_sent[probe] = clock()
        send_echo(probe)
        await asyncio.sleep(gap_s / 2)
    await asyncio.sleep(0.2)


async def _venue(kind: str, n: int, seed: int, gap_us: int) -> None:
    from bench.l2stream import StreamConfig, generate

    stream = generate(StreamConfig(seed=seed, n_deltas=n))
    frames = stream.frames
    nonces = [m["order_book"]["nonce"] for m in stream.messages]
    stamps = _Stamps()
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[Any] = loop.create_future()
    clock = time.perf_counter_ns
    if kind == "sim":
        from mmfast.sim.config import SimConfig
        from mmfast.sim.server import Simulator

        cfg = SimConfig(seed=seed, speed_bumps=False, rate_limits=False,
                        ws_ping_interval_ms=3_600_000, ws_pong_timeout_ms=7_200_000)
        async with Simulator(cfg) as sim:
            orig = sim._on_frame

            def hooked(conn: Any, data: str) -> None:
                now = clock()  # first thing: the frame has just been read off the socket
                head = data[:24]
                if head.startswith('{"echo":'):
                    stamps.on_echo(data.encode(), now)
                    return
                if '"jsonapi/' in head:
                    stamps.on_order(data.encode(), now)
                orig(conn, data)
                if not ready.done() and sim._subs.get("order_book:0"):
                    ready.set_result(None)

            sim._on_frame = hooked  # type: ignore[method-assign]
            print(f"port {sim.ws_url}", flush=True)

            def send_delta(frame: bytes, _i: int, pair: tuple[int, int]) -> None:
                sim._publish_book(0, frame, pair)

            def send_echo(probe: bytes) -> None:
                for c in list(sim._conns):
                    c.send_payload(probe, None)

            await _drive(send_delta, send_echo, ready, frames, nonces, stamps, gap_us / 1e6)
    else:
        from picows import WSListener, WSMsgType, ws_create_server

        holder: list[Any] = []

        class Venue(WSListener):
            def on_ws_connected(self, transport: Any) -> None:
                holder.append(transport)
                if not ready.done():
                    ready.set_result(None)

            def on_ws_frame(self, transport: Any, frame: Any) -> None:
                now = clock()
                if frame.msg_type != WSMsgType.TEXT:
                    if frame.msg_type == WSMsgType.CLOSE:
                        transport.disconnect()
                    return
                data = frame.get_payload_as_bytes()
                if data.startswith(ECHO_PREFIX):
                    stamps.on_echo(data, now)
                elif b'"jsonapi/' in data[:24]:
                    stamps.on_order(data, now)

        server = await ws_create_server(lambda _r: Venue(), "127.0.0.1", 0)
        print(f"port ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/", flush=True)

        def send_delta(frame: bytes, _i: int, _pair: tuple[int, int]) -> None:
            holder[0].send(WSMsgType.TEXT, frame)

        def send_echo(probe: bytes) -> None:
            holder[0].send(WSMsgType.TEXT, probe)

        await _drive(send_delta, send_echo, ready, frames, nonces, stamps, gap_us / 1e6)
    print(json.dumps({"w2w": stamps.w2w, "echo": stamps.echo, "deltas": len(frames) - 1,
                      "order_frames": stamps.order_frames, "cpu": last_cpu(),
                      "pid": os.getpid()}), flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.remote", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=("echo", "feed", "venue"))
    ap.add_argument("--impl", default="picows", choices=("picows", "websockets", "tcp"))
    ap.add_argument("--loop", default="uvloop", choices=("uvloop", "asyncio"))
    ap.add_argument("--kind", default="picows", choices=("picows", "sim"))
    ap.add_argument("--rate", type=float, default=0.0)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--gap-us", type=int, default=2000)
    ap.add_argument("--cpu", type=int, default=None, help="pin this process to one CPU")
    args = ap.parse_args(argv)
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    run = _runner(args.loop)
    if args.mode == "echo":
        run(_echo(args.impl))
    elif args.mode == "feed":
        run(_feed(args.rate, args.n, args.seed))
    else:
        run(_venue(args.kind, args.n, args.seed, args.gap_us))
    return 0


if __name__ == "__main__":
    sys.exit(main())
