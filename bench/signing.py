"""Signing with the official lighter-sdk signer: on mmfast's worker thread vs on the loop thread,
and the pool of pre-signed txs that stands in for signing in wire_to_wire.

A throwaway key from the SDK's ``create_api_key()``, the simulator's chain id, explicit nonce,
API key index and account; the signer client is created with no URL (no network).
"""

from __future__ import annotations

import threading
import time
from typing import Any

from bench.harness import Stats
from bench.l2stream import L2Stream
from bench.micro import Metric, Profile
from bench.procs import bot_desc, describe_placement, last_cpu

__all__ = ["ACCOUNT", "API_KEY_INDEX", "make_worker", "presign_pool", "sign"]

API_KEY_INDEX = 3
ACCOUNT = 1001  # the simulator's funded account


def make_worker(name: str = "mmfast-bench-signer") -> Any:
    """A SignerWorker on a fresh throwaway key (not started)."""
    from lighter.signer_client import create_api_key

    from mmfast.connector.lighter.secret import ApiKey
    from mmfast.connector.lighter.signer import SignerWorker
    from mmfast.sim.config import DEFAULT_CHAIN_ID

    priv, _pub, err = create_api_key()
    if err:
        raise RuntimeError(f"create_api_key failed: {err}")
    return SignerWorker(ApiKey(priv), account_index=ACCOUNT, api_key_index=API_KEY_INDEX,
                        chain_id=DEFAULT_CHAIN_ID, name=name)


def modify(market: int, level: int, price: int, size: int, nonce: int) -> Any:
    from mmfast.connector.lighter.signer import ModifyOrderRequest

    return ModifyOrderRequest(market, 1_000 + level, size, price, nonce)


async def presign_pool(worker: Any, n: int, market: int, price: int) -> list[bytes]:
    """``n`` signed modify txs (tx_info JSON bytes), nonces 1..n."""
    out = []
    for i in range(n):
        tx = await worker.sign(modify(market, i % 10, price + i % 7, 1_000 + i, i + 1))
        out.append(tx.tx_info.encode())
    return out


async def _sign_run(n_worker: int, n_loop: int, price: int) -> dict[str, Any]:
    from lighter import signer_client

    worker = make_worker()
    worker.start()
    loop_tid = threading.get_native_id()
    try:
        lib = signer_client.get_signer()
        decode = signer_client.decode_and_free
        for i in range(20):  # warm-up
            await worker.sign(modify(0, i % 10, price, 1_000, i + 1))
        e2e: list[int] = []
        call: list[int] = []
        on_loop: list[int] = []
        nonce = 100
        per_loop = max(1, n_worker // max(1, n_loop))
        for i in range(n_worker):
            nonce += 1
            t0 = time.monotonic_ns()
            tx = await worker.sign(modify(0, i % 10, price + i % 5, 1_000 + i, nonce))
            e2e.append(time.monotonic_ns() - t0)
            call.append(tx.sign_ns)
            if i % per_loop == 0 and len(on_loop) < n_loop:
                # The same signer call on the loop thread (what mmfast never does): the loop
                # is blocked for all of it.
                nonce += 1
                req = modify(0, i % 10, price, 1_000, nonce)
                t0 = time.monotonic_ns()
                res = req._call(lib, API_KEY_INDEX, ACCOUNT)
                t1 = time.monotonic_ns()
                for field in (res.err, res.txInfo, res.txHash, res.messageToSign):
                    decode(field)
                on_loop.append(t1 - t0)
        worker_tid = worker._thread.native_id if worker._thread is not None else None
        cpus = {"loop thread": last_cpu(loop_tid),
                "signer thread": last_cpu(worker_tid) if worker_tid else -1}
    finally:
        worker.stop()
    return {"e2e": e2e, "call": call, "loop": on_loop, "cpus": cpus}


def sign(stream: L2Stream, profile: Profile, pin: bool = False) -> Metric:
    """One Lighter tx signature: worker thread (ours) vs the loop thread."""
    metric = Metric(
        name="sign",
        unit="ns/tx",
        definition="one ModifyOrder signature by lighter-sdk's signer: mmfast's SignerWorker "
        "(submit -> callback on the loop) vs the same call on the loop thread",
        target_ns=700_000.0,
        target_text="<= 0.7 ms p50 off the loop thread; never on the loop thread",
    )
    n_worker, n_loop = (300, 60) if profile.quick else (1_500, 250)
    try:
        import uvloop

        res = uvloop.run(_sign_run(n_worker, n_loop, stream.tops[0][0]))
    except Exception as exc:
        metric.unavailable = f"{type(exc).__name__}: {exc}"
        return metric
    e2e = Stats.from_samples("SignerWorker: submit -> callback on the loop (ours)",
                             [float(v) for v in res["e2e"]], 1)
    call = Stats.from_samples("SignerWorker: signer call alone, on the worker thread",
                              [float(v) for v in res["call"]], 1)
    loop = Stats.from_samples("signer call on the loop thread (baseline; blocks the loop)",
                              [float(v) for v in res["loop"]], 1)
    metric.ours = [e2e, call]
    metric.baselines = [loop]
    metric.dists = {e2e.name: res["e2e"], loop.name: res["loop"]}
    metric.placement = describe_placement(
        {"loop thread (this process)": bot_desc(),
         "threads last seen on": str(res["cpus"])}, pin)
    metric.notes.append(
        f"{n_worker} worker signs one at a time (uvloop), {n_loop} loop-thread signs "
        "interleaved with them; throwaway key (create_api_key), chain id of the simulator, "
        "no network; the loop-thread figure is the time the loop would stall per tx"
    )
    return metric
