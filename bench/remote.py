"""The far end of the socket benchmarks, run as its own process on 127.0.0.1.

    python -m bench.remote echo  --impl picows|websockets|tcp --loop uvloop|asyncio
    python -m bench.remote feed  --loop L --rate MSGS_PER_S (0: flat out) --n N --seed S
    python -m bench.remote venue --kind sim|picows|bot --n N --seed S --gap-us G

Each prints ``port <n>`` once it listens, then serves one client. ``echo`` runs until killed.
``feed`` pushes the shared stream's snapshot and ``n`` deltas to the first client, then an
``{"type":"end"}`` frame. ``venue`` is the wire_to_wire driver: it sends deltas ``gap-us`` apart
and, between them, an echo probe; it stamps (``perf_counter_ns``, this process) each delta
sent, each order frame received (matched by the ``id`` the bot puts in it: the delta's nonce)
and each echo's round trip, then prints one JSON line of results and exits. ``--kind sim`` runs
mmfast's simulator (``mmfast.sim.server.Simulator``): deltas go out through its book-feed
publish path, each delta and echo probe stamped as its frame is handed to the socket
(``_WriteClock``), and order frames are stamped as the socket read that brought them returns
(``_ReadClock``; the frame handler's own stamp if that fails), then handled by it as usual.
``--kind picows`` is a bare picows server doing the same, the transport floor.

``--kind bot`` is the venue of mmfast's real bot stack (``bench.botpath``): the simulator with
market 0 shaped like the stream (ETH-like decimals, mark price at the stream's first mid), its
funded account as ``mmfast run`` has it in sim mode, no flow, speed bumps or rate limits. Its
``port`` line also gives ``rest=<url> account=<index> chain=<id>``. Market 0's order_book
channel serves the stream, not the engine's book: the stream's snapshot on subscribe (the
current state on a resubscribe), then, once the bot sends ``{"bench":"go"}`` on its
market-data connection, one delta every ``gap-us`` with an echo probe between, on that
connection only (the engine's own book updates of market 0 are not published; its matching
engine still takes the bot's txs, whose post-only quotes rest in its otherwise empty book).
The bot's order frames carry no delta id: the first order frame received after a delta was
sent and before the next one is counted as that delta's (``w2w``), and every order frame is
reported with its receive stamp and the nonces it carried (``order_nonces``, beside each
delta's send stamp ``delta_sent``), so the bot can join a delta to the frame carrying the
first tx it made. After the result line it serves on until the bot has closed its
connections.
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


class _ReadClock:
    """When each client frame was read off the simulator's socket: the venue's receive stamp.

    aiohttp's reader parses a frame and wakes the connection's handler task, which runs the
    frame handler one loop iteration or more later (~45 us on the development VMs): that is the
    venue's own dispatch, not the wire. ``install`` wraps aiohttp's server protocol's
    ``data_received`` (this process only) to stamp each read as it returns and walk the
    WebSocket frame headers in it; every data frame completed by a read gets that read's stamp,
    in order, per connection. The frame handler takes them back with ``pop(transport)``, one
    per text frame (client frames are all text); None (then the handler's own stamp is used,
    and ``fallbacks`` counts it) if the walk found none."""

    def __init__(self) -> None:
        from collections import deque

        self._deque = deque
        self.stamps: dict[Any, Any] = {}  # transport -> deque of read stamps
        # transport -> [partial header, payload bytes left, a data frame's last fragment]
        self.state: dict[Any, list[Any]] = {}
        self.fallbacks = 0
        self.installed = False

    def install(self) -> None:
        try:
            from aiohttp import web_protocol
        except ImportError:
            return
        cls = web_protocol.RequestHandler
        orig = cls.data_received
        clock = time.perf_counter_ns
        feed = self.feed

        def data_received(proto: Any, data: bytes) -> None:
            now = clock()  # the read has just returned these bytes
            if getattr(proto, "_upgraded", False):
                feed(proto.transport, data, now)
            orig(proto, data)

        cls.data_received = data_received  # type: ignore[method-assign]
        self.installed = True

    def feed(self, key: Any, data: bytes, now: int) -> None:
        st = self.state.get(key)
        if st is None:
            st = self.state[key] = [b"", 0, False]
            self.stamps[key] = self._deque()
        out = self.stamps[key]
        head, left, data_fin = st
        i, n = 0, len(data)
        while i < n:
            if left:
                take = min(left, n - i)
                left -= take
                i += take
                if not left and data_fin:
                    out.append(now)
                continue
            buf = head + data[i : i + 14]
            if len(buf) < 2:
                head, i = buf, n
                break
            b0, b1 = buf[0], buf[1]
            size = b1 & 0x7F
            ext = 2 if size == 126 else 8 if size == 127 else 0
            hlen = 2 + ext + (4 if b1 & 0x80 else 0)
            if len(buf) < hlen:
                head, i = buf, n
                break
            if ext:
                size = int.from_bytes(buf[2 : 2 + ext], "big")
            i += hlen - len(head)
            head = b""
            data_fin = bool(b0 & 0x80) and (b0 & 0x0F) in (0, 1, 2)  # not ping/pong/close
            left = size
            if not left and data_fin:
                out.append(now)
        st[0], st[1], st[2] = head, left, data_fin

    def pop(self, key: Any) -> int | None:
        q = self.stamps.get(key)
        if q:
            return int(q.popleft())
        self.fallbacks += 1
        return None


class _WriteClock:
    """When the simulator handed a frame to a client's socket: the venue's send stamp.

    The simulator builds a delta's frame before writing it (its book-feed fault hooks, the
    WebSocket framing: ~7 us p50 on the development VMs) and an echo probe's in less (~3 us):
    a stamp taken before the call would count that difference in wire_to_wire and not in the
    echo round trip. ``install`` wraps the simulator connection's ``write`` (this process
    only) so ``stamp(send, *args)`` returns when ``send`` made its first write, the stamp the
    read side's ``_ReadClock`` pairs with."""

    def __init__(self) -> None:
        self.first = 0  # the first write's stamp since stamp() began (0: none yet)
        self.installed = False
        self.unwritten = 0  # sends that wrote nothing (stamped before the call instead)
        self._orig: Any = None

    def install(self) -> None:
        from mmfast.sim import server

        cls = server._Conn
        orig = cls.write
        clock = time.perf_counter_ns
        me = self

        def write(conn: Any, frame: bytes) -> None:
            if not me.first:
                me.first = clock()
            orig(conn, frame)

        cls.write = write  # type: ignore[method-assign]
        self._orig = orig
        self.installed = True

    def remove(self) -> None:
        """Put the connection's own ``write`` back."""
        if self.installed:
            from mmfast.sim import server

            server._Conn.write = self._orig  # type: ignore[method-assign]
            self.installed = False

    def stamp(self, send: Any, *args: Any) -> int:
        """Run ``send(*args)``; the stamp of its first write (before the call if none, or
        when not installed: a bare picows server, whose sends are all the same call)."""
        t0 = time.perf_counter_ns()
        self.first = 0
        send(*args)
        if self.first:
            return self.first
        if self.installed:
            self.unwritten += 1
        return t0


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


async def _drive(
    send_delta: Any,
    send_echo: Any,
    ready: asyncio.Future[Any],
    frames: list[bytes],
    nonces: list[int],
    stamps: _Stamps,
    gap_s: float,
    writes: _WriteClock,
) -> None:
    """Deltas ``gap_s`` apart, an echo probe between, each stamped by ``writes.stamp``. The
    stamp is stored after the send: no reply can be handled before the next await."""
    await asyncio.wait_for(ready, 30)
    sent_at = writes.stamp
    send_delta(frames[0], 0, (0, nonces[0]))
    await asyncio.sleep(0.05)
    for i in range(1, len(frames)):
        key = str(nonces[i]).encode()
        stamps.sent[key] = sent_at(send_delta, frames[i], i, (nonces[i - 1], nonces[i]))
        await asyncio.sleep(gap_s / 2)
        probe = ECHO_PREFIX + str(i).encode() + b"}"
        stamps.echo_sent[probe] = sent_at(send_echo, probe)
        await asyncio.sleep(gap_s / 2)
    await asyncio.sleep(0.2)


def _sim_keys(api_key: str | None) -> dict[str, Any]:
    """SimConfig's signature settings: with ``api_key`` ("account:index:public key hex") the
    key is registered and every signature verified; without one (stand-in signatures)
    verification is off. Empty where the simulator has no such settings."""
    import dataclasses

    from mmfast.sim.config import SimConfig

    names = {f.name for f in dataclasses.fields(SimConfig)}
    out: dict[str, Any] = {}
    if "verify_signatures" in names:
        out["verify_signatures"] = api_key is not None
    if api_key is not None and "api_keys" in names:
        acct, idx, pub = api_key.split(":", 2)
        out["api_keys"] = ((int(acct), int(idx), pub),)
    return out


async def _venue(kind: str, n: int, seed: int, gap_us: int, api_key: str | None = None) -> None:
    from bench.l2stream import StreamConfig, generate

    stream = generate(StreamConfig(seed=seed, n_deltas=n))
    frames = stream.frames
    nonces = [m["order_book"]["nonce"] for m in stream.messages]
    stamps = _Stamps()
    reads = _ReadClock()  # installed for the simulator only (picows stamps on its frame)
    writes = _WriteClock()  # likewise (uninstalled: stamped at the call)
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[Any] = loop.create_future()
    clock = time.perf_counter_ns
    if kind == "sim":
        from mmfast.sim.config import SimConfig
        from mmfast.sim.server import Simulator

        cfg = SimConfig(
            seed=seed,
            speed_bumps=False,
            rate_limits=False,
            ws_ping_interval_ms=3_600_000,
            ws_pong_timeout_ms=7_200_000,
            **_sim_keys(api_key),
        )
        reads.install()
        writes.install()
        async with Simulator(cfg) as sim:
            orig = sim._on_frame

            def hooked(conn: Any, data: str) -> None:
                now = reads.pop(conn.transport) or clock()
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

            await _drive(send_delta, send_echo, ready, frames, nonces, stamps, gap_us / 1e6, writes)
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

        await _drive(send_delta, send_echo, ready, frames, nonces, stamps, gap_us / 1e6, writes)
    print(
        json.dumps(
            {
                "w2w": stamps.w2w,
                "echo": stamps.echo,
                "deltas": len(frames) - 1,
                "order_frames": stamps.order_frames,
                "read_stamps": reads.installed,
                "read_fallbacks": reads.fallbacks,
                "unwritten": writes.unwritten,
                "cpu": last_cpu(),
                "pid": os.getpid(),
            }
        ),
        flush=True,
    )


# --- venue of the real bot stack (--kind bot) ---------------------------------------------------

GO_FRAME = '{"bench":"go"}'


class _Windows:
    """Order frames against deltas. By time: the first one received while a delta's window is
    open (from its send until the next delta's) is that delta's. And every order frame kept
    with its receive stamp, so that its nonces can be read after the run (the bot joins them
    with the nonce of the first tx each delta made it submit)."""

    def __init__(self) -> None:
        self.cur = -1  # index of the delta whose window is open (-1: none)
        self.t_sent = 0
        self.matched = True
        self.sent: list[int] = []  # send stamp of delta 1, 2, ...
        self.w2w: list[int] = []  # delta sent -> first order frame received in its window
        self.idx: list[int] = []  # the delta index of each w2w sample
        self.frames: list[tuple[int, str]] = []  # (received, text) of every order frame
        self.outside = 0  # order frames received with no window open (before go, after end)

    def open(self, i: int, t: int) -> None:
        self.cur, self.t_sent, self.matched = i, t, False
        self.sent.append(t)

    def close(self) -> None:
        self.cur, self.matched = -1, True

    def on_order(self, now: int, data: str) -> None:
        self.frames.append((now, data))  # parsed after the run, not on the timed path
        if self.cur < 0:
            self.outside += 1
        elif not self.matched:
            self.matched = True
            self.w2w.append(now - self.t_sent)
            self.idx.append(self.cur)

    def nonces(self) -> list[tuple[int, list[int]]]:
        """(received, nonces carried) per order frame."""
        out = []
        for now, data in self.frames:
            try:
                d = json.loads(data)["data"]
                infos = [d["tx_info"]] if "tx_info" in d else d["tx_infos"]
                if isinstance(infos, str):
                    infos = json.loads(infos)
                found = [int((json.loads(x) if isinstance(x, str) else x)["Nonce"]) for x in infos]
            except (ValueError, KeyError, TypeError):
                found = []
            out.append((now, found))
        return out


def _book_state(messages: list[dict[str, Any]], upto: int) -> dict[str, Any]:
    """The stream's book after message ``upto`` as a snapshot message (for a resubscribe)."""
    sides: dict[str, dict[str, str]] = {"asks": {}, "bids": {}}
    for m in messages[: upto + 1]:
        ob = m["order_book"]
        if ob["begin_nonce"] == 0:
            sides = {"asks": {}, "bids": {}}
        for key in ("asks", "bids"):
            for lv in ob[key]:
                if lv["size"] == "0":
                    sides[key].pop(lv["price"], None)
                else:
                    sides[key][lv["price"]] = lv["size"]
    snap = dict(messages[0])
    ob = dict(snap["order_book"])

    def ordered(key: str, reverse: bool) -> list[dict[str, str]]:
        # Prices sort as numbers, not strings (fixed decimals: float is exact enough here).
        items = sorted(sides[key].items(), key=lambda kv: float(kv[0]), reverse=reverse)
        return [{"price": p, "size": s} for p, s in items]

    ob["asks"], ob["bids"] = ordered("asks", False), ordered("bids", True)
    ob["nonce"] = messages[upto]["order_book"]["nonce"]
    ob["begin_nonce"] = 0
    snap["order_book"] = ob
    return snap


async def _venue_bot(n: int, seed: int, gap_us: int, api_key: str | None = None) -> None:
    import dataclasses

    from bench.botpath import retime
    from bench.l2stream import StreamConfig, generate
    from mmfast.sim.config import SimConfig, default_markets
    from mmfast.sim.server import Simulator

    stream = generate(StreamConfig(seed=seed, n_deltas=n))
    cfg_s = stream.config
    bid0, ask0 = stream.tops[0]
    eth, *others = default_markets()
    if (eth.market_id, eth.price_decimals, eth.size_decimals) != (
        cfg_s.market_id,
        cfg_s.price_decimals,
        cfg_s.size_decimals,
    ):
        raise RuntimeError("the simulator's market 0 does not match the stream's decimals")
    # Mark (and index) price at the stream's first mid: the bot's risk gate bands its quotes
    # around the mark.
    eth = dataclasses.replace(eth, mark_price=(bid0 + ask0) // 2)
    cfg = SimConfig(
        seed=seed,
        markets=(eth, *others),
        flow=None,
        speed_bumps=False,
        rate_limits=False,
        ws_ping_interval_ms=3_600_000,
        ws_pong_timeout_ms=7_200_000,
        **_sim_keys(api_key),
    )
    messages, frames = stream.messages, stream.frames
    nonces = [m["order_book"]["nonce"] for m in messages]
    win = _Windows()
    echo = _Stamps()
    clock = time.perf_counter_ns
    loop = asyncio.get_running_loop()
    go: asyncio.Future[Any] = loop.create_future()
    st = {"sent_upto": 0, "subscribes": 0, "dropped": 0}
    reads = _ReadClock()
    reads.install()
    writes = _WriteClock()
    writes.install()
    dispatch: list[int] = []  # order frames: read off the socket -> the frame handler
    async with Simulator(cfg) as sim:
        on_frame = sim._on_frame
        publish_book = sim._publish_book
        snapshot = sim._snapshot

        def hooked(conn: Any, data: str) -> None:
            handled = clock()
            read = reads.pop(conn.transport)
            now = read or handled
            head = data[:24]
            if head.startswith('{"echo":'):
                echo.on_echo(data.encode(), now)
                return
            if '"jsonapi/' in head:
                win.on_order(now, data)
                if read is not None:
                    dispatch.append(handled - read)
            elif head.startswith('{"bench":'):
                if data == GO_FRAME and not go.done():
                    go.set_result(conn)
                return
            on_frame(conn, data)

        def engine_book(market: int, payload: bytes, pair: tuple[int, int]) -> None:
            # Market 0's book is the stream's: the engine's own updates (the bot's resting
            # quotes) would break its nonce chain.
            if market == 0:
                st["dropped"] += 1
                return
            publish_book(market, payload, pair)

        def stream_snapshot(kind: str, args: list[int], key: str) -> dict[str, Any]:
            if kind == "order_book" and args == [0]:
                st["subscribes"] += 1
                upto = st["sent_upto"]
                snap = dict(messages[0]) if upto == 0 else _book_state(messages, upto)
                snap["timestamp"] = int(time.time() * 1000)
                return snap
            return snapshot(kind, args, key)  # type: ignore[no-any-return]

        sim._on_frame = hooked  # type: ignore[method-assign]
        sim._publish_book = engine_book  # type: ignore[method-assign,assignment]
        sim._snapshot = stream_snapshot  # type: ignore[method-assign]
        print(
            f"port {sim.ws_url} rest={sim.rest_url} account={cfg.account_index} "
            f"chain={cfg.chain_id} market=0",
            flush=True,
        )
        md_conn = await asyncio.wait_for(go, 120)
        gap_s = gap_us / 1e6
        wall = time.time
        for i in range(1, n + 1):
            # Venue time in the frame (the bot watches clock skew); set before the stamp.
            data = retime(frames[i], int(wall() * 1000))
            # Stamped as written (_WriteClock); set after the call: no order frame can be
            # handled before the next await.
            win.open(i, writes.stamp(publish_book, 0, data, (nonces[i - 1], nonces[i])))
            st["sent_upto"] = i
            await asyncio.sleep(gap_s / 2)
            probe = ECHO_PREFIX + str(i).encode() + b"}"
            echo.echo_sent[probe] = writes.stamp(md_conn.send_payload, probe, None)
            await asyncio.sleep(gap_s / 2)
        await asyncio.sleep(0.2)
        win.close()
        resting = sim.exchange.open_orders(cfg.account_index, 0)
        print(
            json.dumps(
                {
                    "w2w": win.w2w,
                    "w2w_idx": win.idx,
                    "echo": echo.echo,
                    "deltas": n,
                    "order_frames": len(win.frames),
                    "delta_sent": win.sent,
                    "order_nonces": win.nonces(),
                    "orders_outside": win.outside,
                    "book_subscribes": st["subscribes"],
                    "engine_book_updates_dropped": st["dropped"],
                    "open_orders": len(resting),
                    "read_stamps": reads.installed,
                    "read_fallbacks": reads.fallbacks,
                    "unwritten": writes.unwritten,
                    "dispatch": dispatch,
                    "cpu": last_cpu(),
                    "pid": os.getpid(),
                }
            ),
            flush=True,
        )
        # Serve on (acks, the bot's cancel-all at its stop) until the bot has gone.
        t_end = time.monotonic() + 120
        while sim.open_connections() and time.monotonic() < t_end:
            await asyncio.sleep(0.05)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m bench.remote",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("mode", choices=("echo", "feed", "venue"))
    ap.add_argument("--impl", default="picows", choices=("picows", "websockets", "tcp"))
    ap.add_argument("--loop", default="uvloop", choices=("uvloop", "asyncio"))
    ap.add_argument("--kind", default="picows", choices=("picows", "sim", "bot"))
    ap.add_argument("--rate", type=float, default=0.0)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--gap-us", type=int, default=2000)
    ap.add_argument("--cpu", type=int, default=None, help="pin this process to one CPU")
    ap.add_argument(
        "--api-key",
        default=None,
        metavar="ACCOUNT:INDEX:PUBKEY",
        help="venue kinds sim/bot: register this public key and verify every "
        "signature (without it: verification off, for stand-in signatures)",
    )
    args = ap.parse_args(argv)
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    run = _runner(args.loop)
    if args.mode == "echo":
        run(_echo(args.impl))
    elif args.mode == "feed":
        run(_feed(args.rate, args.n, args.seed))
    elif args.kind == "bot":
        run(_venue_bot(args.n, args.seed, args.gap_us, args.api_key))
    else:
        run(_venue(args.kind, args.n, args.seed, args.gap_us, args.api_key))
    return 0


if __name__ == "__main__":
    sys.exit(main())
