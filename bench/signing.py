"""Signing: mmfast's native signer (``mmfast._core.signer``) inline on the calling thread,
with and without its pool of precomputed nonce commitments, against the official lighter-sdk
signer on mmfast's ``SignerWorker`` thread, all in the same run; the pieces of a signature
(Poseidon2, k*G, verification) as reference rows; and the pool of pre-signed txs that stands
in for signing in wire_to_wire.

A throwaway key from the SDK's ``create_api_key()``, the simulator's chain id, explicit nonce,
API key index and account; the official signer client is created with no URL (no network).
"""

from __future__ import annotations

import asyncio
import base64
import os
import threading
import time
from typing import Any

from bench.harness import Case, Stats, run_group
from bench.l2stream import L2Stream
from bench.micro import Metric, Profile
from bench.procs import bot_desc, describe_placement, last_cpu
from mmfast.connector.lighter.native_signer import TX_EXPIRY_MS

__all__ = [
    "ACCOUNT",
    "API_KEY_INDEX",
    "inline_signer",
    "make_key",
    "make_worker",
    "modify",
    "presign_pool",
    "sign",
    "sign_parts",
]

API_KEY_INDEX = 3
ACCOUNT = 1001  # the simulator's funded account
EXPIRY_MS = TX_EXPIRY_MS  # ExpiredAt as the official signer sets it: now + 10 min - 1 s
NATIVE_POOLED = "native, pooled commitment: NativeSigner.sign_modify_order inline"
NATIVE_FRESH = "native, no pool (pool_size=0): k*G inline"
NATIVE_SUBMIT = "native InlineSigner.submit -> callback (inline, pooled)"
OFFICIAL = "official: SignerWorker submit -> callback on the loop"
TARGET_POOLED_NS = 15_000.0
TARGET_FRESH_NS = 80_000.0
TARGET_RATIO = 30.0


def make_key() -> tuple[Any, str]:
    """A throwaway API key (``ApiKey``) and its public key (hex, as the SDK prints it)."""
    from lighter.signer_client import create_api_key

    from mmfast.connector.lighter.secret import ApiKey

    priv, pub, err = create_api_key()
    if err:
        raise RuntimeError(f"create_api_key failed: {err}")
    return ApiKey(priv), pub


def make_worker(name: str = "mmfast-bench-signer", key: Any = None, account: int = ACCOUNT) -> Any:
    """A SignerWorker (official signer) on ``key`` or a fresh throwaway key (not started)."""
    from mmfast.connector.lighter.signer import SignerWorker
    from mmfast.sim.config import DEFAULT_CHAIN_ID

    if key is None:
        key, _pub = make_key()
    return SignerWorker(
        key,
        account_index=account,
        api_key_index=API_KEY_INDEX,
        chain_id=DEFAULT_CHAIN_ID,
        name=name,
    )


def inline_signer(
    key: Any, *, account_index: int, api_key_index: int, chain_id: int, pool_size: int = 256
) -> tuple[Any, str]:
    """mmfast's ``InlineSigner`` (its start-up self-check included); returns (signer, name)."""
    from mmfast.connector.lighter.native_signer import InlineSigner

    return (
        InlineSigner(
            key,
            account_index=account_index,
            api_key_index=api_key_index,
            chain_id=chain_id,
            pool_size=pool_size,
            name="mmfast-bench-native",
        ),
        "mmfast InlineSigner",
    )


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


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


async def _wait_full(ns: Any, limit_s: float = 5.0) -> None:
    end = time.monotonic() + limit_s
    while ns.pool_available < ns.pool_size and time.monotonic() < end:
        await asyncio.sleep(0.002)


def _check_native(ns: Any, txs: list[tuple[str, str]]) -> int:
    """Every signature verifies under the signer's public key over its tx hash."""
    import orjson

    from mmfast._core.signer import verify_hashed

    pk = ns.public_key
    for tx_info, tx_hash in txs:
        sig = base64.b64decode(orjson.loads(tx_info)["Sig"])
        if not verify_hashed(pk, bytes.fromhex(tx_hash), sig):
            raise AssertionError("a native signature does not verify")
    return len(txs)


def _same_as_official(ns: Any, official: list[Any]) -> int:
    """Re-sign the official signer's txs natively with their ExpiredAt: same tx hash, same
    tx_info less the signature."""
    import orjson

    for tx in official:
        info = orjson.loads(tx.tx_info)
        r = tx.request
        n_info, n_hash = ns.sign_modify_order(
            r.market, r.index, r.base_amount, r.price, r.trigger_price, r.nonce, info["ExpiredAt"]
        )
        if n_hash != tx.tx_hash:
            raise AssertionError(f"native tx hash differs from the official one (nonce {r.nonce})")
        if n_info.replace(orjson.loads(n_info)["Sig"], "") != tx.tx_info.replace(info["Sig"], ""):
            raise AssertionError(f"native tx_info differs from the official one (nonce {r.nonce})")
    return len(official)


def _time_modifies(
    ns: Any, out: list[int], signed: list[tuple[str, str]], n: int, price: int, nonce: int
) -> int:
    """``n`` modifies signed by ``ns``, each timed alone (fresh nonce, ExpiredAt as the
    official signer sets it); every 16th tx kept for the verification check. Returns the last
    nonce used."""
    clock = time.perf_counter_ns
    sm = ns.sign_modify_order
    for i in range(n):
        nonce += 1
        exp = _wall_ms() + EXPIRY_MS
        t0 = clock()
        tx = sm(0, 1_000 + i % 10, 1_000 + i, price + i % 5, 0, nonce, exp)
        out.append(clock() - t0)
        if i % 16 == 0:
            signed.append(tx)
    return nonce


async def _sign_run(rounds: int, per_round: int, n_loop: int, price: int) -> dict[str, Any]:
    from lighter import signer_client

    from mmfast._core.signer import NativeSigner
    from mmfast.sim.config import DEFAULT_CHAIN_ID

    key, _pub = make_key()
    worker = make_worker(key=key)
    worker.start()
    loop_tid = threading.get_native_id()
    kw = dict(chain_id=DEFAULT_CHAIN_ID, account_index=ACCOUNT, api_key_index=API_KEY_INDEX)
    pooled_ns = NativeSigner(key.reveal(), pool_size=max(256, per_round), **kw)
    fresh_ns = NativeSigner(key.reveal(), pool_size=0, **kw)
    # InlineSigner's start-up self-check uses the official signer's client slot of its
    # (API key index, account): the next key index keeps it off the worker's.
    inline, inline_kind = inline_signer(
        key,
        chain_id=DEFAULT_CHAIN_ID,
        account_index=ACCOUNT,
        api_key_index=API_KEY_INDEX + 1,
        pool_size=max(256, per_round),
    )
    inline_ok = True
    try:
        inline.start(asyncio.get_running_loop())
    except Exception as exc:
        inline_ok = False
        inline_kind += f" (did not start: {type(exc).__name__}: {exc})"
    res: dict[str, list[int]] = {
        k: [] for k in ("pooled", "fresh", "submit", "e2e", "call", "loop")
    }
    signed: list[tuple[str, str]] = []
    official: list[Any] = []
    fresh_before_pool = 0
    try:
        lib = signer_client.get_signer()
        decode = signer_client.decode_and_free
        for i in range(20):  # warm-up
            await worker.sign(modify(0, i % 10, price, 1_000, i + 1))
            pooled_ns.sign_modify_order(
                0, 1_000 + i % 10, 1_000, price, 0, i + 1, _wall_ms() + EXPIRY_MS
            )
            fresh_ns.sign_modify_order(
                0, 1_000 + i % 10, 1_000, price, 0, i + 1, _wall_ms() + EXPIRY_MS
            )
        clock = time.perf_counter_ns
        nonce = 100
        n_off = max(2, per_round // 8)
        loop_every = max(1, (rounds * n_off) // max(1, n_loop))
        k = 0
        for _r in range(rounds):
            # Native with a pooled commitment: the pool full first, then a batch smaller than
            # it (each sign takes one; the C thread refills meanwhile).
            await _wait_full(pooled_ns)
            fresh_before_pool = pooled_ns.fresh
            nonce = _time_modifies(pooled_ns, res["pooled"], signed, per_round, price, nonce)
            if pooled_ns.fresh != fresh_before_pool:
                raise AssertionError("the pooled case ran out of commitments mid-batch")
            # Native without a pool: k*G computed in the call.
            nonce = _time_modifies(fresh_ns, res["fresh"], signed, per_round, price, nonce)
            # InlineSigner: submit -> callback, the request path.
            if inline_ok:
                ns_in = getattr(inline, "_ns", None)
                if ns_in is not None:
                    await _wait_full(ns_in)
                box: list[int] = [0]

                def cb(result: Any, error: BaseException | None, _b: list[int] = box) -> None:
                    _b[0] = clock()
                    if error is not None:
                        raise error

                out = res["submit"]
                submit = inline.submit
                for i in range(per_round):
                    nonce += 1
                    req = modify(0, i % 10, price + i % 5, 1_000 + i, nonce)
                    t0 = clock()
                    submit(req, cb)
                    out.append(box[0] - t0)
            # Official on its worker thread, one at a time (a few per round: 0.5 ms each).
            for i in range(n_off):
                nonce += 1
                req = modify(0, i % 10, price + i % 5, 1_000 + i, nonce)
                t0 = time.monotonic_ns()
                tx = await worker.sign(req)
                res["e2e"].append(time.monotonic_ns() - t0)
                res["call"].append(tx.sign_ns)
                if len(official) < 50:
                    official.append(tx)
                k += 1
                if k % loop_every == 0 and len(res["loop"]) < n_loop:
                    # The same official call on the loop thread (what mmfast never does).
                    nonce += 1
                    req = modify(0, i % 10, price, 1_000, nonce)
                    t0 = time.monotonic_ns()
                    r = req._call(lib, API_KEY_INDEX, ACCOUNT)
                    t1 = time.monotonic_ns()
                    for field in (r.err, r.txInfo, r.txHash, r.messageToSign):
                        decode(field)
                    res["loop"].append(t1 - t0)
        checked = _check_native(pooled_ns, signed)
        same = _same_as_official(fresh_ns, official)
        worker_tid = worker._thread.native_id if worker._thread is not None else None
        cpus = {
            "loop thread": last_cpu(loop_tid),
            "official signer thread": last_cpu(worker_tid) if worker_tid else -1,
        }
        counts = {
            "pooled": pooled_ns.pooled,
            "pooled_fresh": pooled_ns.fresh,
            "pool_size": pooled_ns.pool_size,
            "fresh": fresh_ns.fresh,
            "verified": checked,
            "same_as_official": same,
        }
    finally:
        worker.stop()
        pooled_ns.close()
        fresh_ns.close()
        if inline_ok:
            inline.stop()
    return {**res, "cpus": cpus, "counts": counts, "inline_kind": inline_kind}


def sign(stream: L2Stream, profile: Profile, pin: bool = False) -> Metric:
    """One Lighter tx signature: native inline (pooled, no pool) vs the official signer."""
    metric = Metric(
        name="sign",
        unit="ns/tx",
        definition="one ModifyOrder signature: mmfast's native signer inline on the loop "
        "thread (pooled commitment; no pool) vs the official lighter-sdk signer on mmfast's "
        "SignerWorker (submit -> callback on the loop), same run",
        target_ns=TARGET_POOLED_NS,
        target_text=f"native pooled <= {TARGET_POOLED_NS / 1000:g} us p50, no pool <= "
        f"{TARGET_FRESH_NS / 1000:g} us p50, pooled >= {TARGET_RATIO:g}x faster than "
        "SignerWorker",
    )
    rounds, per_round, n_loop = (6, 100, 40) if profile.quick else (20, 200, 150)
    try:
        import uvloop

        res = uvloop.run(_sign_run(rounds, per_round, n_loop, stream.tops[0][0]))
    except Exception as exc:
        metric.unavailable = f"{type(exc).__name__}: {exc}"
        return metric

    def st(name: str, key: str) -> Stats:
        return Stats.from_samples(name, [float(v) for v in res[key]], 1)

    pooled, fresh = st(NATIVE_POOLED, "pooled"), st(NATIVE_FRESH, "fresh")
    e2e = st(OFFICIAL + " (baseline)", "e2e")
    call = st("official: signer call alone, on the worker thread", "call")
    loop = st("official: signer call on the loop thread (blocks the loop)", "loop")
    metric.ours = [pooled, fresh]
    if res["submit"]:
        metric.ours.append(st(f"{NATIVE_SUBMIT} [{res['inline_kind']}]", "submit"))
    metric.baselines = [e2e, call, loop]
    metric.dists = {pooled.name: res["pooled"], fresh.name: res["fresh"], e2e.name: res["e2e"]}
    ratio = e2e.p50_ns / pooled.p50_ns if pooled.p50_ns > 0 else 0.0
    ok = (
        pooled.p50_ns <= TARGET_POOLED_NS
        and fresh.p50_ns <= TARGET_FRESH_NS
        and ratio >= TARGET_RATIO
    )
    metric.verdict = ok
    metric.target_text = (
        f"{metric.target_text} (this run: pooled {pooled.p50_ns / 1000:.1f} us, no pool "
        f"{fresh.p50_ns / 1000:.1f} us, {ratio:.0f}x)"
    )
    metric.figures.update(
        {
            "ratio_official_e2e_over_pooled": ratio,
            "ratio_official_e2e_over_fresh": e2e.p50_ns / fresh.p50_ns,
            "counts": res["counts"],
            "inline_signer": res["inline_kind"],
        }
    )
    metric.placement = describe_placement(
        {
            "loop thread (this process)": bot_desc(),
            "threads last seen on": str(res["cpus"]),
            "native pool filler": "one C thread per pooled signer, no GIL, any CPU",
        },
        pin,
    )
    c = res["counts"]
    metric.notes.append(
        f"{rounds} interleaved rounds: native pooled x {per_round} (the pool of "
        f"{c['pool_size']} full before each batch; {c['pooled']} pooled signatures in all, "
        f"{c['pooled_fresh']} fell back to a fresh commitment), native without a pool x "
        f"{per_round}, InlineSigner submit -> callback x {per_round}, official on the "
        f"SignerWorker x {max(2, per_round // 8)} (and {n_loop} in all on the loop thread); "
        "each native call timed alone with perf_counter_ns, fresh nonce each, ExpiredAt now + "
        "10 min - 1 s as the official signer sets it; throwaway key, the simulator's chain id, "
        "no network"
    )
    metric.notes.append(
        f"checked: {c['verified']} native signatures verify (verify_hashed over the tx hash); "
        f"{c['same_as_official']} official txs re-signed natively with their ExpiredAt give "
        "the same tx hash and the same tx_info less Sig"
    )
    metric.notes.append(
        "the native figures include the Python call (~0.1 us), argument checks, the tx hash "
        "(2 Poseidon2 permutations), the challenge hash (2 permutations), scalar mul/sub, the "
        "tx_info JSON and hash hex; the no-pool row adds k*G (fixed-base table) and its "
        "encoding (one Fp5 inversion); the InlineSigner row adds request validation and the "
        "SignedTx; the official rows are lighter-sdk's Go signer through ctypes"
    )
    return metric


# --- the pieces of a signature ------------------------------------------------------------------


def sign_parts(stream: L2Stream, profile: Profile, pin: bool = False) -> Metric:
    """Reference: the native signer's primitives, called from Python."""
    metric = Metric(
        name="sign_parts",
        unit="ns/call",
        definition="the native signer's primitives called from Python (mmfast._core.signer): "
        "Poseidon2, hash to Fp5, k*G, verification",
    )
    try:
        from mmfast._core import signer as s
    except Exception as exc:
        metric.unavailable = f"mmfast._core.signer: {type(exc).__name__}: {exc}"
        return metric
    rnd = os.urandom
    state = rnd(96)
    state = b"".join(
        (int.from_bytes(state[i : i + 8], "little") % 0xFFFFFFFF00000001).to_bytes(8, "little")
        for i in range(0, 96, 8)
    )
    msg16 = b"".join(
        ((i * 0x9E3779B97F4A7C15) % 0xFFFFFFFF00000001).to_bytes(8, "little") for i in range(1, 17)
    )
    sk = rnd(40)
    pk = s.public_key(sk)
    h = s.hash_to_quintic(msg16)
    sig = s.sign_hashed(sk, h, rnd(40))
    scalars = [rnd(40) for _ in range(64)]
    per = 50

    def conv() -> None:
        for _ in range(per):
            vals = [int.from_bytes(state[i : i + 8], "little") for i in range(0, 96, 8)]
            b"".join(v.to_bytes(8, "little") for v in vals)

    def perm() -> None:
        p = s.poseidon2_permute
        for _ in range(per):
            p(state)

    def h16() -> None:
        f = s.hash_to_quintic
        for _ in range(per):
            f(msg16)

    def gmul() -> None:
        g = s.generator_mul
        for k in scalars[:20]:
            g(k)

    def gmul_same() -> None:
        g = s.generator_mul
        for _ in range(20):
            g(sk)

    def ver() -> None:
        v = s.verify_hashed
        for _ in range(5):
            v(pk, h, sig)

    def check() -> None:
        if not s.verify_hashed(pk, h, sig):
            raise AssertionError("verify_hashed rejects a good signature")
        if s.generator_mul(sk) != pk:
            raise AssertionError("generator_mul(sk) != public_key(sk)")
        if s.poseidon2_permute(state) == state:
            raise AssertionError("poseidon2_permute returned its input")

    cases = [
        Case("poseidon2_permute (96 bytes in/out, from Python)", perm, ops=per),
        Case("hash_to_quintic, 16 elements (2 permutations, from Python)", h16, ops=per),
        Case("generator_mul: k*G (fixed-base table) + encode, a new k each call", gmul, ops=20),
        Case("generator_mul, the same k every call", gmul_same, ops=20),
        Case("verify_hashed (k*G + variable-base e*pk + decode + encode)", ver, ops=5, check=check),
        Case("Python bytes <-> 12 ints alone (the wrappers' conversion)", conv, ops=per),
    ]
    n = 300 if profile.quick else 1_500
    for c in cases:
        c.n_samples = max(30, n // (5 if c.ops <= 5 else 1))
    metric.ours = run_group(cases, samples=n, warmup=5, rounds=min(10, profile.rounds))
    metric.notes.append(
        "batches of 50 calls (20 for k*G, 5 for verify); the same primitives measured in C "
        "without Python: Poseidon2 permutation ~2.0 us, k*G ~28 us. poseidon2_permute and "
        "hash_to_quintic convert between bytes and Python ints on the way in and out (the last "
        "row times that conversion alone), so most of their figure is the wrapper; the signer "
        "itself hashes in C with no such conversion"
    )
    metric.notes.append(
        "k*G with the same k every call against a new k each call: the fixed-base path reads "
        "every table entry whatever k is, so a gap between the two rows is the branch "
        "predictor learning a repeated k (data-dependent branches in the compiled arithmetic)"
    )
    return metric
