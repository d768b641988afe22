"""Peers fed the same synthetic L2 stream as mmfast's book:

- NautilusTrader's ``OrderBook`` (L2_MBP) through its Python API (``nautilus_trader``);
- hftbacktest's market depth (``HashMapMarketDepthBacktest``, driven from a numba loop, the way
  hftbacktest is used);
- the book design Hummingbot uses, prices as C doubles in a sorted C++ container: a small
  reference implementation (``std::map<double, double>`` per side), compiled on demand by this
  module with Cython and the machine's C++ compiler into a cache directory (not part of
  mmfast's build).

A peer that is not installed (``pip install -e .[bench]``) or cannot be built is skipped with
a note. Every peer is checked against the stream's truth (best bid/ask) after it is timed.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from bench.harness import Case, Stats, run_group
from bench.l2stream import ASK, BID, L2Stream
from bench.micro import Metric, Profile, _check_equal, _delta_prefix_levels, _message_case

__all__ = ["build_hb_book", "peers_book_apply", "peers_parse_apply"]

HB_SOURCE = r'''
# distutils: language = c++
# cython: language_level=3, boundscheck=False, wraparound=False
"""Hummingbot-style L2 book: one sorted C++ map per side keyed by double price."""
from libcpp.map cimport map as cmap
from cython.operator cimport dereference as deref


cdef class HbBook:
    cdef cmap[double, double] bids  # price -> size, ascending (best bid = last)
    cdef cmap[double, double] asks  # price -> size, ascending (best ask = first)
    cdef public double scale  # 10**price_decimals, to report ticks

    def __init__(self, int price_decimals):
        self.scale = 10.0 ** price_decimals

    cpdef void set_level(self, int side, double price, double size):
        cdef cmap[double, double]* m = &self.bids if side == 0 else &self.asks
        if size == 0.0:
            m.erase(price)
        else:
            m[0][price] = size

    def apply_levels(self, int side, double[::1] prices, double[::1] sizes):
        cdef Py_ssize_t i
        for i in range(prices.shape[0]):
            self.set_level(side, prices[i], sizes[i])

    cpdef long long best_bid(self):
        if self.bids.empty():
            return 0
        return <long long>(deref(self.bids.rbegin()).first * self.scale + 0.5)

    cpdef long long best_ask(self):
        if self.asks.empty():
            return 0
        return <long long>(deref(self.asks.begin()).first * self.scale + 0.5)

    def apply_message(self, dict msg):
        """A decoded Lighter message: prices and sizes through float(), as Hummingbot does."""
        ob = msg["order_book"]
        if msg["type"] == "subscribed/order_book":
            self.bids.clear()
            self.asks.clear()
        for lvl in ob["bids"]:
            self.set_level(0, float(lvl["price"]), float(lvl["size"]))
        for lvl in ob["asks"]:
            self.set_level(1, float(lvl["price"]), float(lvl["size"]))
        return 0
'''


def build_hb_book() -> tuple[Any, str | None]:
    """Compile (once, cached by source hash) and import the Hummingbot-style book.

    Returns (module, None) or (None, why)."""
    digest = hashlib.sha256(HB_SOURCE.encode()).hexdigest()[:12]
    cache = Path(tempfile.gettempdir()) / f"mmfast-bench-hbbook-{digest}"
    cache.mkdir(parents=True, exist_ok=True)
    built = sorted(cache.glob("hbbook*.so"))
    if not built:
        (cache / "hbbook.pyx").write_text(HB_SOURCE, encoding="utf-8")
        script = (
            "from setuptools import setup, Extension\n"
            "from Cython.Build import cythonize\n"
            "setup(ext_modules=cythonize([Extension('hbbook', ['hbbook.pyx'], language='c++',"
            " extra_compile_args=['-O2'])], quiet=True),"
            " script_args=['build_ext', '--inplace', '-q'])\n"
        )
        try:
            res = subprocess.run(
                [sys.executable, "-c", script],
                cwd=cache,
                capture_output=True,
                text=True,
                timeout=300,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return None, f"build failed: {exc}"
        built = sorted(cache.glob("hbbook*.so"))
        if res.returncode != 0 or not built:
            return None, f"build failed (needs Cython and a C++ compiler): {res.stderr[-500:]}"
    spec = importlib.util.spec_from_file_location("hbbook", built[0])
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod, None


class _NautilusBook:
    """NautilusTrader OrderBook (L2_MBP) behind the benchmark's book interface."""

    def __init__(self, stream: L2Stream) -> None:
        from nautilus_trader.model.book import OrderBook
        from nautilus_trader.model.data import BookOrder
        from nautilus_trader.model.enums import BookType, OrderSide
        from nautilus_trader.model.identifiers import InstrumentId
        from nautilus_trader.model.objects import Price, Quantity

        self.book = OrderBook(InstrumentId.from_str("ETH-PERP.LIGHTER"), BookType.L2_MBP)
        self.BookOrder, self.Price, self.Quantity = BookOrder, Price, Quantity
        self.sides = (OrderSide.BUY, OrderSide.SELL)
        self.scale = 10**stream.config.price_decimals
        self.seq = 0

    def set_level(self, side: int, price: Any, size: Any, zero: bool) -> None:
        self.seq += 1
        order = self.BookOrder(self.sides[side], price, size, 0)
        if zero:
            self.book.delete(order, 0, 0, self.seq)
        else:
            self.book.update(order, 0, 0, self.seq)

    def apply_message(self, msg: dict[str, Any]) -> int:
        ob = msg["order_book"]
        if msg["type"] == "subscribed/order_book":
            self.seq += 1
            self.book.clear(0, self.seq)
        from_p, from_q = self.Price.from_str, self.Quantity.from_str
        for side, key in ((BID, "bids"), (ASK, "asks")):
            for lvl in ob[key]:
                s = lvl["size"]
                self.set_level(side, from_p(lvl["price"]), from_q(s), s == "0")
        return 0

    def _ticks(self, p: Any) -> int:
        return 0 if p is None else round(p.as_double() * self.scale)

    def best_bid(self) -> int:
        return self._ticks(self.book.best_bid_price())

    def best_ask(self) -> int:
        return self._ticks(self.book.best_ask_price())


def peers_parse_apply(stream: L2Stream, profile: Profile, chunk: int = 64) -> Metric:
    """Frame bytes -> book updated + best bid/ask, mmfast against the peers."""
    metric = Metric(
        name="peers_parse_apply",
        unit="ns/msg",
        definition="one delta frame (bytes) -> peer book updated + best bid/ask read; peers "
        "decode with orjson and convert strings their own way",
        target_text="reference (peers)",
    )
    cfg = stream.config
    snap_frame, snap_msg = stream.frames[0], stream.messages[0]
    loads = orjson.loads
    cases: list[Case] = []
    from mmfast._core.book import OrderBook

    cases.append(
        _message_case(
            "mmfast OrderBook.apply_frame",
            stream,
            chunk,
            lambda: OrderBook(cfg.market_id, cfg.price_decimals, cfg.size_decimals),
            lambda b: b.apply_frame,
            lambda b: b.apply_frame(snap_frame),
        )
    )

    def via(book: Any) -> Any:
        am = book.apply_message
        return lambda data: am(loads(data))

    hb, why = build_hb_book()
    if hb is not None:
        cases.append(
            _message_case(
                "Hummingbot design: orjson + float() + C++ std::map<double,double>",
                stream,
                chunk,
                lambda: hb.HbBook(cfg.price_decimals),
                via,
                lambda b: b.apply_message(snap_msg),
            )
        )
    else:
        metric.notes.append(f"Hummingbot-style book skipped: {why}")
    try:
        _NautilusBook(stream)
        slow = _message_case(
            "NautilusTrader OrderBook (L2_MBP): orjson + Price/Quantity.from_str",
            stream,
            chunk,
            lambda: _NautilusBook(stream),
            via,
            lambda b: b.apply_message(snap_msg),
        )
        slow.n_samples = profile.slow_samples
        cases.append(slow)
    except Exception as exc:
        metric.notes.append(f"NautilusTrader skipped: {type(exc).__name__}: {exc}")
    stats = run_group(
        cases, samples=profile.samples // 2, warmup=profile.warmup, rounds=profile.rounds
    )
    metric.ours, metric.baselines = stats[:1], stats[1:]
    metric.dists = {c.name: list(c.samples) for c in cases}
    metric.notes.append(
        "hftbacktest takes pre-built event arrays, not JSON: it is in peers_book_apply only"
    )
    return metric


def _hft_events(stream: L2Stream, levels: list[tuple[int, int, int]], used: int) -> Any:
    import numpy as np
    from hftbacktest.types import (
        BUY_EVENT,
        DEPTH_EVENT,
        EXCH_EVENT,
        LOCAL_EVENT,
        SELL_EVENT,
        event_dtype,
    )

    pd, sd = 10**stream.config.price_decimals, 10**stream.config.size_decimals
    flag = DEPTH_EVENT | EXCH_EVENT | LOCAL_EVENT
    rows = []
    snap = stream.messages[0]["order_book"]
    for side, key in ((BID, "bids"), (ASK, "asks")):
        for lvl in snap[key]:
            p = round(float(lvl["price"]) * pd)
            rows.append(
                (
                    flag | (BUY_EVENT if side == BID else SELL_EVENT),
                    1,
                    1,
                    p / pd,
                    float(lvl["size"]),
                    0,
                    0,
                    0.0,
                )
            )
    # One message per microsecond: each elapse(1 us) in the loop processes one delta.
    t = 1000
    for msg in stream.messages[1 : used + 1]:
        t += 1000
        ob = msg["order_book"]
        for side, key in ((ASK, "asks"), (BID, "bids")):
            for lvl in ob[key]:
                p = round(float(lvl["price"]) * pd)
                rows.append(
                    (
                        flag | (BUY_EVENT if side == BID else SELL_EVENT),
                        t,
                        t,
                        p / pd,
                        round(float(lvl["size"]) * sd) / sd,
                        0,
                        0,
                        0.0,
                    )
                )
    rows.append((0, t + 10_000_000, t + 10_000_000, 0.0, 0.0, 0, 0, 0.0))  # end marker
    return np.array(rows, dtype=event_dtype), t


def _hft_run(stream: L2Stream, events: Any, n_msgs: int) -> tuple[float, tuple[int, int]]:
    import numpy as np
    from hftbacktest import BacktestAsset, HashMapMarketDepthBacktest
    from numba import njit

    pd = stream.config.price_decimals
    asset = (
        BacktestAsset()
        .data([events])
        .linear_asset(1.0)
        .constant_order_latency(10, 10)
        .risk_adverse_queue_model()
        .no_partial_fill_exchange()
        .trading_value_fee_model(0.0, 0.0)
        .tick_size(10.0**-pd)
        .lot_size(10.0**-stream.config.size_decimals)
    )
    hbt = HashMapMarketDepthBacktest([asset])

    @njit(cache=False)
    def run(hbt: Any, n: int, out: Any) -> int:
        hbt.elapse(1500)  # the snapshot
        i = 0
        while i < n:
            r = hbt.elapse(1000)  # nonzero: the data ends (the step itself still ran)
            d = hbt.depth(0)
            out[0] = d.best_bid_tick
            out[1] = d.best_ask_tick
            i += 1
            if r != 0:
                break
        return i

    out = np.zeros(2, np.int64)
    t0 = time.perf_counter_ns()
    done = run(hbt, n_msgs, out)
    t1 = time.perf_counter_ns()
    hbt.close()
    if done != n_msgs:
        raise AssertionError(f"hftbacktest processed {done} of {n_msgs} messages")
    return (t1 - t0) / n_msgs, (int(out[0]), int(out[1]))


def peers_book_apply(stream: L2Stream, profile: Profile, n_levels: int = 10_000) -> Metric:
    """Pre-parsed level updates, mmfast's book against the peers' (per level)."""
    metric = Metric(
        name="peers_book_apply",
        unit="ns/level",
        definition="the first ~10k pre-parsed level updates of the stream, applied with a "
        "best bid/ask read (per level)",
        target_text="reference (peers)",
    )
    import numpy as np

    from mmfast._core.book import OrderBook

    cfg = stream.config
    used, levels = _delta_prefix_levels(stream, n_levels)
    truth = stream.tops[used]
    snap = stream.messages[0]
    pd, sd = 10**cfg.price_decimals, 10**cfg.size_decimals
    cases: list[Case] = []
    ours = OrderBook(cfg.market_id, cfg.price_decimals, cfg.size_decimals)
    arr = {
        s: (
            np.array([p for x, p, _ in levels if x == s], dtype=np.int64),
            np.array([z for x, _, z in levels if x == s], dtype=np.int64),
        )
        for s in (BID, ASK)
    }

    def body_ours() -> None:
        ours.apply_levels(0, *arr[BID])
        ours.apply_levels(1, *arr[ASK])
        ours.best_bid()
        ours.best_ask()

    cases.append(
        Case(
            "mmfast OrderBook.apply_levels (int64 batch)",
            body_ours,
            ops=len(levels),
            prepare=lambda: ours.apply_message(snap),
            check=lambda: _check_equal("ours", (ours.best_bid(), ours.best_ask()), truth),
        )
    )
    hb, why = build_hb_book()
    if hb is not None:
        hbb = hb.HbBook(cfg.price_decimals)
        darr = {s: (arr[s][0] / pd, arr[s][1] / sd) for s in (BID, ASK)}
        dlev = [(s, p / pd, z / sd) for s, p, z in levels]

        def body_hb_batch() -> None:
            hbb.apply_levels(0, *darr[BID])
            hbb.apply_levels(1, *darr[ASK])
            hbb.best_bid()
            hbb.best_ask()

        def body_hb_py() -> None:
            setl, bb, ba = hbb.set_level, hbb.best_bid, hbb.best_ask
            for s, p, z in dlev:
                setl(s, p, z)
                bb()
                ba()

        chk = lambda: _check_equal("hb", (hbb.best_bid(), hbb.best_ask()), truth)  # noqa: E731
        cases.append(
            Case(
                "Hummingbot design: C++ std::map<double,double>, batch loop in C",
                body_hb_batch,
                ops=len(levels),
                prepare=lambda: hbb.apply_message(snap),
                check=chk,
            )
        )
        slow = Case(
            "Hummingbot design: same map, one call per level from Python",
            body_hb_py,
            ops=len(levels),
            prepare=lambda: hbb.apply_message(snap),
            check=chk,
        )
        slow.n_samples = max(10, profile.slow_samples // 10)
        cases.append(slow)
    else:
        metric.notes.append(f"Hummingbot-style book skipped: {why}")
    try:
        nb = _NautilusBook(stream)
        from nautilus_trader.model.objects import Price, Quantity

        nlev = [
            (
                s,
                Price.from_str(f"{p / pd:.{cfg.price_decimals}f}"),
                Quantity.from_str(f"{z / sd:.{cfg.size_decimals}f}"),
                z == 0,
            )
            for s, p, z in levels
        ]

        def body_nt() -> None:
            setl, bb, ba = nb.set_level, nb.book.best_bid_price, nb.book.best_ask_price
            for s, p, z, zero in nlev:
                setl(s, p, z, zero)
                bb()
                ba()

        nt_case = Case(
            "NautilusTrader OrderBook (L2_MBP), update/delete + best prices",
            body_nt,
            ops=len(levels),
            prepare=lambda: nb.apply_message(snap),
            check=lambda: _check_equal("nautilus", (nb.best_bid(), nb.best_ask()), truth),
        )
        nt_case.n_samples = max(10, profile.slow_samples // 10)
        cases.append(nt_case)
    except Exception as exc:
        metric.notes.append(f"NautilusTrader skipped: {type(exc).__name__}: {exc}")
    stats = run_group(
        cases, samples=max(20, profile.samples // 20), warmup=2, rounds=min(5, profile.rounds)
    )
    metric.ours, metric.baselines = stats[:1], stats[1:]
    try:
        events, _ = _hft_events(stream, levels, used)
        _hft_run(stream, events, used)  # compile + warm
        per_msg = []
        top: tuple[int, int] = (0, 0)
        for _ in range(3 if profile.quick else 7):
            ns, top = _hft_run(stream, events, used)
            per_msg.append(ns * used / len(levels))
        _check_equal("hftbacktest best bid/ask", top, truth)
        metric.baselines.append(
            Stats.from_samples(
                "hftbacktest HashMapMarketDepthBacktest, numba loop (elapse per delta)",
                per_msg,
                len(levels),
            )
        )
    except Exception as exc:
        metric.notes.append(f"hftbacktest skipped: {type(exc).__name__}: {exc}")
    metric.notes.append(
        f"{len(levels)} levels from the first {used} deltas; Python-called peers pay a call "
        "per level (their APIs take one level at a time); hftbacktest's figure is its whole "
        "backtest step per delta (event processing in Rust, depth read in numba) divided by "
        "the levels; the C++ map book is built by this module into "
        f"{tempfile.gettempdir()}/mmfast-bench-hbbook-* with the machine's compiler"
    )
    metric.notes.append(f"peer versions: {_versions()}")
    return metric


def _versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    out = []
    for dist in ("nautilus_trader", "hftbacktest", "numba", "numpy", "Cython"):
        try:
            out.append(f"{dist} {version(dist)}")
        except PackageNotFoundError:
            out.append(f"{dist} not installed")
    return ", ".join(out) + f"; g++ {'found' if _has_cxx() else 'missing'}"


def _has_cxx() -> bool:
    return any(
        os.access(os.path.join(d, "g++"), os.X_OK)
        for d in os.environ.get("PATH", "").split(os.pathsep)
    )
