"""The simulator's order-book feed: per-message cost and messages per second to one client.

    python -m bench.sim_feed                # 200k messages per mode
    python -m bench.sim_feed --n 50000 --pin

The simulator runs in this process (uvloop if installed); one picows client runs in a child
process on loopback, subscribes to ``order_book/0`` and counts frames. Two modes:

- ``engine``: each message is a real book change made through the matching engine (a resting
  order placed, then canceled, at alternating prices near the touch), drained and published
  by the server: engine + message building + JSON + frame + socket write;
- ``publish``: pre-built delta messages go through the server's publish path only (book-feed
  faults check, WebSocket frame, socket write): the transport's share.

Per-message cost is the simulator's own CPU time per message (median and p99 over every
message, ``perf_counter_ns`` around each); throughput is what the client received (frames over
the span from its first to its last frame). The producer yields to the loop whenever the socket
buffer holds more than 1 MiB, so the figure is what a client that keeps up gets, not what piles
up in a buffer. With ``--pin`` the simulator is pinned to CPU 0 and the client to CPU 1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from typing import Any

import orjson

from bench.harness import percentile
from mmfast.sim.config import SimConfig
from mmfast.sim.server import Simulator

CLIENT = r"""
import asyncio, json, os, sys, time
from picows import ws_connect, WSListener, WSMsgType

N = int(sys.argv[2])
if len(sys.argv) > 3:
    os.sched_setaffinity(0, {int(sys.argv[3])})

class L(WSListener):
    def __init__(self):
        self.n = 0; self.first = 0; self.last = 0; self.bytes = 0
        self.done = asyncio.get_running_loop().create_future()
    def on_ws_connected(self, t):
        t.send(WSMsgType.TEXT, b'{"type":"subscribe","channel":"order_book/0"}')
    def on_ws_frame(self, t, frame):
        if frame.msg_type == WSMsgType.PING:
            t.send_pong(frame.get_payload_as_bytes()); return
        if frame.msg_type != WSMsgType.TEXT:
            return
        data = frame.get_payload_as_bytes()
        if b'"subscribed/order_book"' in data:
            print("ready", flush=True); return
        if b'"update/order_book"' not in data:
            return
        now = time.perf_counter_ns()
        if self.n == 0:
            self.first = now
        self.n += 1; self.bytes += len(data); self.last = now
        if self.n == N and not self.done.done():
            self.done.set_result(None)

async def main():
    t, l = await ws_connect(L, sys.argv[1], max_frame_size=64 * 1024 * 1024)
    await l.done
    print(json.dumps({"n": l.n, "span_ns": l.last - l.first, "bytes": l.bytes}), flush=True)
    t.disconnect()

asyncio.run(main())
"""


async def _wait_ready(proc: asyncio.subprocess.Process) -> None:
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 20)
    if line.strip() != b"ready":
        raise RuntimeError(f"client failed: {line!r}")


async def _produce(sim: Simulator, mode: str, n: int) -> list[int]:
    """Make `n` order-book messages as fast as the client keeps up; per-message ns."""
    ex = sim.exchange
    acct = sim.system_account(exclude=sim.config.account_index)
    m = ex.markets[0]
    key = "order_book:0"
    conn = next(iter(sim._subs[key]))
    transport = conn.transport
    costs: list[int] = []
    append = costs.append
    clock = time.perf_counter_ns
    if mode == "publish":
        msgs = []
        for i in range(256):
            price = m.mark_price - 10 - (i % 50)
            msg = sim._book_msg(
                "update/order_book",
                key,
                m,
                [],
                [(price, 100 + i)],
                1000 + i,
                1001 + i,
                10 + i,
                1_790_000_000_000,
            )
            msgs.append((orjson.dumps(msg), (1000 + i, 1001 + i)))
    resting: list[Any] = []
    i = 0
    while i < n:
        if transport.get_write_buffer_size() > 1 << 20:
            await asyncio.sleep(0)
            continue
        t0 = clock()
        if mode == "publish":
            payload, nonces = msgs[i & 255]
            sim._publish_book(0, payload, nonces)
        else:
            if i % 2 == 0:
                resting.append(ex.place_direct(acct, 0, False, m.mark_price - 10 - (i % 40), 100))
            else:
                ex.cancel_direct(resting.pop())
            sim.pump()
        append(clock() - t0)
        i += 1
        if i % 512 == 0:
            await asyncio.sleep(0)
    return costs


async def run_mode(mode: str, n: int, pin: bool) -> dict[str, Any]:
    async with Simulator(
        SimConfig(seed=1, speed_bumps=False, rate_limits=False, ws_ping_interval_ms=600_000)
    ) as sim:
        args = [sys.executable, "-c", CLIENT, sim.ws_url, str(n)] + (["1"] if pin else [])
        proc = await asyncio.create_subprocess_exec(*args, stdout=subprocess.PIPE)
        try:
            await _wait_ready(proc)
            costs = await _produce(sim, mode, n)
            assert proc.stdout is not None
            line = await asyncio.wait_for(proc.stdout.readline(), 60)
            got = json.loads(line)
        finally:
            if proc.returncode is None:
                proc.kill()
            await proc.wait()
    costs.sort()
    rate = got["n"] / (got["span_ns"] / 1e9) if got["span_ns"] else float("inf")
    return {
        "mode": mode,
        "messages": got["n"],
        "p50_ns": percentile(costs, 50),
        "p99_ns": percentile(costs, 99),
        "mean_ns": sum(costs) / len(costs),
        "client_msgs_per_s": rate,
        "avg_bytes": got["bytes"] / got["n"],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m bench.sim_feed",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--n", type=int, default=200_000, help="messages per mode")
    ap.add_argument("--pin", action="store_true", help="simulator on CPU 0, client on CPU 1")
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args(argv)
    if args.pin:
        os.sched_setaffinity(0, {0})
    try:
        import uvloop

        loop_name = "uvloop"
        runner = uvloop.run
    except ImportError:  # pragma: no cover
        loop_name = "asyncio"
        runner = asyncio.run
    rows = [runner(run_mode(mode, args.n, args.pin)) for mode in ("engine", "publish")]
    print(
        f"simulator feed to one picows client on loopback ({loop_name}, "
        f"{'pinned: sim CPU 0, client CPU 1' if args.pin else 'unpinned'}, "
        f"{args.n} messages per mode)\n"
    )
    print("| mode | sim cost p50 | sim cost p99 | sim cost mean | client msgs/s | bytes/msg |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['mode']} | {r['p50_ns'] / 1000:.2f} us | {r['p99_ns'] / 1000:.2f} us | "
            f"{r['mean_ns'] / 1000:.2f} us | {r['client_msgs_per_s']:,.0f} | "
            f"{r['avg_bytes']:.0f} |"
        )
    print("\ntarget: >= 50,000 order-book messages/s to one client")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
