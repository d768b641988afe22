"""pytest-benchmark versions of mmfast's micro benchmarks, grouped so ours and the baselines of one
metric sit in one table: ``pytest bench/ --benchmark-only`` (add ``--benchmark-group-by=group``
or ``--benchmark-columns=median,iqr,ops`` as you like).

Units per group (every case of a group does the same work per call, so rows compare directly):

- ``book_apply``: one call applies the same ~10k pre-parsed levels to a book reset to the
  snapshot (untimed); ``extra_info["ns_per_level"]`` has the per-level median.
- ``parse_apply``: one call = one frame of the stream (bytes -> book updated + best bid/ask read).
  The frames cycle, snapshot included, so the book resets itself once per pass.
- ``quote``: one call = one 2 x 5 ladder.
- ``plan``: one call = one plan of a 2 x 5 ladder against its 10 live orders, on target (no
  action) or after a 1-tick move (10 modifies); compiled and the Python twin per input.
- ``call_floor``: one call = nothing (the price of calling at all).
- ``sign``: one call = one ModifyOrder signed by the native signer (pooled commitment, the pool
  refilled untimed before each call; no pool) or by the official lighter-sdk signer called on
  this thread.
- ``sign_parts``: one call = one Poseidon2 permutation, one 16-element hash to Fp5, one k*G
  (a new k each call), one verification, each from Python.

Each benchmark also checks its path against the stream's truth, so it fails rather than time a
wrong result. ``python -m bench`` gives the same metrics with p99 and ratios in one table.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import time
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from bench.baselines import SortedDictBook, empty_function
from bench.l2stream import ASK, BID, L2Stream, StreamConfig, generate
from bench.micro import (
    LADDER,
    MARKET_MINIMUMS,
    _delta_prefix_levels,
    _model_after,
    _plan_functions,
    _raw_setter,
    check_plans,
    plan_inputs,
)

N_DELTAS = 5_000


@pytest.fixture(scope="module")
def stream() -> L2Stream:
    return generate(StreamConfig(seed=1, n_deltas=N_DELTAS))


def _book_mod() -> Any:
    return pytest.importorskip("mmfast._core.book", reason="compiled book not built")


def _ref_book_mod() -> Any:
    return pytest.importorskip("mmfast.reference.book", reason="reference book missing")


def _new(kind: str, stream: L2Stream) -> Any:
    cfg = stream.config
    if kind == "ours":
        return _book_mod().OrderBook(cfg.market_id, cfg.price_decimals, cfg.size_decimals)
    if kind == "reference":
        return _ref_book_mod().ReferenceBook(cfg.market_id, cfg.price_decimals, cfg.size_decimals)
    return SortedDictBook(cfg.price_decimals, cfg.size_decimals)


# --- book_apply ---------------------------------------------------------------------------------


@pytest.mark.benchmark(group="book_apply")
@pytest.mark.parametrize("kind", ["ours", "reference", "sorteddict"])
def test_book_apply(benchmark: Any, stream: L2Stream, kind: str) -> None:
    used, levels = _delta_prefix_levels(stream, 10_000)
    snap = stream.messages[0]
    book = _new(kind, stream)

    def reset() -> None:
        book.apply_message(snap)

    if kind == "ours":
        np = pytest.importorskip("numpy")
        mod = _book_mod()
        arrays = [
            (
                mod.BID if side == BID else mod.ASK,
                np.array([p for s, p, _ in levels if s == side], dtype=np.int64),
                np.array([z for s, _, z in levels if s == side], dtype=np.int64),
            )
            for side in (BID, ASK)
        ]
        apply_levels = book.apply_levels

        def body() -> None:
            for side, prices, sizes in arrays:
                apply_levels(side, prices, sizes)
            book.best_bid()
            book.best_ask()

        rounds = 300
    else:
        setter = _raw_setter(book)  # set_level (SortedDict) / _set (ReferenceBook)

        def body() -> None:
            best_bid, best_ask = book.best_bid, book.best_ask
            for side, price, size in levels:
                setter(side, price, size)
                best_bid()
                best_ask()

        rounds = 15

    benchmark.pedantic(body, setup=reset, rounds=rounds, iterations=1, warmup_rounds=1)
    benchmark.extra_info["levels_per_call"] = len(levels)
    benchmark.extra_info["ns_per_level"] = benchmark.stats.stats.median * 1e9 / len(levels)
    want = _model_after(snap["order_book"], levels, stream)
    assert want == stream.tops[used]
    assert (book.best_bid(), book.best_ask()) == want


# --- parse_apply --------------------------------------------------------------------------------


def _applier(kind: str, book: Any) -> Callable[[bytes], object]:
    if kind == "ours_frame":
        return book.apply_frame
    loads = json.loads if kind.startswith("json") else orjson.loads
    apply_message = book.apply_message
    return lambda data: apply_message(loads(data))


@pytest.mark.benchmark(group="parse_apply")
@pytest.mark.parametrize(
    ("kind", "book_kind"),
    [
        ("ours_frame", "ours"),
        ("ours_orjson", "ours"),
        ("json_reference", "reference"),
        ("orjson_reference", "reference"),
        ("orjson_sorteddict", "sorteddict"),
    ],
)
def test_parse_apply(benchmark: Any, stream: L2Stream, kind: str, book_kind: str) -> None:
    book = _new(book_kind, stream)
    apply = _applier(kind, book)
    best_bid, best_ask = book.best_bid, book.best_ask
    # The snapshot is part of the cycle: each pass starts by resetting the book.
    next_frame = itertools.cycle(stream.frames).__next__

    def step() -> None:
        apply(next_frame())
        best_bid()
        best_ask()

    # 64 frames per round: the per-frame figure is not dominated by the timer call.
    rounds = 2000 if book_kind == "ours" else 300
    benchmark.pedantic(step, rounds=rounds, iterations=64, warmup_rounds=5)
    # The benchmarked path, replayed from the snapshot: every frame applies, the end is right.
    codes = {apply(data) for data in stream.frames}
    assert codes == {0}
    assert (best_bid(), best_ask()) == stream.tops[-1]


# --- quote --------------------------------------------------------------------------------------


@pytest.mark.benchmark(group="quote")
@pytest.mark.parametrize("kind", ["ours", "reference"])
def test_quote(benchmark: Any, stream: L2Stream, kind: str) -> None:
    quote_mod = pytest.importorskip("mmfast._core.quote", reason="compiled quote not built")
    ref_mod = pytest.importorskip("mmfast.reference.quote", reason="reference quote missing")
    if kind == "ours":
        engine: Any = quote_mod.QuoteEngine(quote_mod.QuoteParams(**LADDER), **MARKET_MINIMUMS)
    else:
        engine = ref_mod.ReferenceQuoteEngine(ref_mod.RefQuoteParams(**LADDER), **MARKET_MINIMUMS)
    best_bid, best_ask = stream.tops[len(stream.tops) // 2]
    position = 12_000
    n = benchmark(engine.compute, best_bid, best_ask, position)
    assert n == 2 * LADDER["n_levels"]
    bids, asks = engine.bids(), engine.asks()
    assert bids[0][0] < best_ask and asks[0][0] > best_bid
    assert [p for p, _ in bids] == sorted((p for p, _ in bids), reverse=True)
    assert [p for p, _ in asks] == sorted(p for p, _ in asks)


# --- plan ---------------------------------------------------------------------------------------


@pytest.mark.benchmark(group="plan")
@pytest.mark.parametrize("kind", ["ours", "reference"])
@pytest.mark.parametrize("case", ["on_target", "move"])
def test_plan(benchmark: Any, stream: L2Stream, kind: str, case: str) -> None:
    pytest.importorskip("mmfast._core.plan", reason="compiled planner not built")
    ours, ref, kw = _plan_functions()
    on_target, moved = plan_inputs(stream, 20)
    inputs = on_target if case == "on_target" else moved
    x = inputs[len(inputs) // 2]
    fn = ours if kind == "ours" else ref
    now, params, budget, busy = kw["now_ns"], kw["params"], kw["budget"], kw["busy"]

    def call() -> Any:
        return fn(
            x.bids,
            x.asks,
            x.live,
            now_ns=now,
            params=params,
            inflight=0,
            budget=budget,
            position_lots=0,
            busy=busy,
            no_create=(),
        )

    result = benchmark(call)
    n_mod = 0 if case == "on_target" else 2 * LADDER["n_levels"]
    assert len(result.modifies) == len(result.actions) == n_mod
    check_plans(ours, ref, kw, inputs, n_mod)


# --- call floor ---------------------------------------------------------------------------------


@pytest.mark.benchmark(group="call_floor")
def test_call_floor_python_def(benchmark: Any) -> None:
    assert benchmark(empty_function) is None


@pytest.mark.benchmark(group="call_floor")
def test_call_floor_compiled_method(benchmark: Any, stream: L2Stream) -> None:
    book = _new("ours", stream)
    book.apply_frame(stream.snapshot_frame)
    assert benchmark(book.best_bid) == stream.tops[0][0]


# --- sign, sign_parts ---------------------------------------------------------------------------

_CHAIN, _ACCOUNT, _KEY_INDEX = 7_357_001, 1001, 3


def _signer_mod() -> Any:
    return pytest.importorskip("mmfast._core.signer", reason="native signer not built")


def _wait_full(ns: Any) -> None:
    end = time.monotonic() + 5
    while ns.pool_available < ns.pool_size and time.monotonic() < end:
        time.sleep(0.0005)


@pytest.mark.benchmark(group="sign")
@pytest.mark.parametrize("kind", ["native_pooled", "native_no_pool"])
def test_sign_native(benchmark: Any, kind: str) -> None:
    s = _signer_mod()
    pool = 256 if kind == "native_pooled" else 0
    ns = s.NativeSigner(
        os.urandom(40),
        chain_id=_CHAIN,
        account_index=_ACCOUNT,
        api_key_index=_KEY_INDEX,
        pool_size=pool,
    )
    try:
        nonce = itertools.count(1).__next__
        exp = time.time_ns() // 1_000_000 + 599_000

        def call() -> Any:
            return ns.sign_modify_order(0, 1_001, 1_000, 300_000, 0, nonce(), exp)

        # One call per round; pooled: the pool refilled (untimed) before each, so every timed
        # call takes a pooled commitment. A fresh nonce each call.
        fresh_before = ns.fresh
        tx_info, tx_hash = benchmark.pedantic(
            call,
            setup=(lambda: _wait_full(ns)) if pool else None,
            rounds=300,
            iterations=1,
            warmup_rounds=2,
        )
        if pool:
            assert ns.fresh == fresh_before, "a pooled call found the pool empty"
            assert ns.pooled >= 1  # every call (300 timed, or 1 with --benchmark-disable)
        sig = base64.b64decode(json.loads(tx_info)["Sig"])
        assert s.verify_hashed(ns.public_key, bytes.fromhex(tx_hash), sig)
    finally:
        ns.close()


@pytest.mark.benchmark(group="sign")
def test_sign_official_call(benchmark: Any) -> None:
    """The official lighter-sdk signer called on this thread (SignerWorker makes the same call
    on its thread; ``python -m bench`` times that end to end)."""
    signer_client = pytest.importorskip("lighter.signer_client", reason="lighter-sdk missing")
    from mmfast.connector.lighter.signer import ModifyOrderRequest

    priv, _pub, err = signer_client.create_api_key()
    assert not err
    lib, decode = signer_client.get_signer(), signer_client.decode_and_free
    assert not decode(
        lib.CreateClient(b"", priv.removeprefix("0x").encode(), _CHAIN, _KEY_INDEX + 2, _ACCOUNT)
    )
    nonce = itertools.count(1).__next__

    def call() -> Any:
        r = ModifyOrderRequest(0, 1_001, 1_000, 300_000, nonce())._call(
            lib, _KEY_INDEX + 2, _ACCOUNT
        )
        out = [decode(f) for f in (r.err, r.txInfo, r.txHash, r.messageToSign)]
        return out

    err_s, tx_info, _h, _m = benchmark.pedantic(call, rounds=40, iterations=1, warmup_rounds=2)
    assert not err_s and tx_info


@pytest.fixture(scope="module")
def sign_inputs() -> dict[str, Any]:
    s = _signer_mod()
    sk = os.urandom(40)
    msg16 = b"".join(
        ((i * 0x9E3779B97F4A7C15) % 0xFFFFFFFF00000001).to_bytes(8, "little") for i in range(1, 17)
    )
    h = s.hash_to_quintic(msg16)
    return {
        "s": s,
        "sk": sk,
        "pk": s.public_key(sk),
        "msg16": msg16,
        "h": h,
        "sig": s.sign_hashed(sk, h, os.urandom(40)),
        "state": b"".join(i.to_bytes(8, "little") for i in range(12)),
    }


@pytest.mark.benchmark(group="sign_parts")
def test_sign_parts_poseidon2_permute(benchmark: Any, sign_inputs: dict[str, Any]) -> None:
    s = sign_inputs["s"]
    out = benchmark(s.poseidon2_permute, sign_inputs["state"])
    assert len(out) == 96 and out != sign_inputs["state"]


@pytest.mark.benchmark(group="sign_parts")
def test_sign_parts_hash_to_quintic_16(benchmark: Any, sign_inputs: dict[str, Any]) -> None:
    s = sign_inputs["s"]
    assert benchmark(s.hash_to_quintic, sign_inputs["msg16"]) == sign_inputs["h"]


@pytest.mark.benchmark(group="sign_parts")
def test_sign_parts_generator_mul(benchmark: Any, sign_inputs: dict[str, Any]) -> None:
    s = sign_inputs["s"]
    scalars = itertools.cycle([os.urandom(40) for _ in range(64)]).__next__
    benchmark.pedantic(
        lambda: s.generator_mul(scalars()), rounds=300, iterations=1, warmup_rounds=5
    )
    assert s.generator_mul(sign_inputs["sk"]) == sign_inputs["pk"]


@pytest.mark.benchmark(group="sign_parts")
def test_sign_parts_verify_hashed(benchmark: Any, sign_inputs: dict[str, Any]) -> None:
    s, i = sign_inputs["s"], sign_inputs
    ok = benchmark.pedantic(
        s.verify_hashed, args=(i["pk"], i["h"], i["sig"]), rounds=60, iterations=1, warmup_rounds=2
    )
    assert ok
