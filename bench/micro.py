"""mmfast micro benchmarks: book_apply, parse_apply, quote, plan, and the call floors.

Each metric times mmfast's compiled path beside pure-Python baselines in the same run
(interleaved, see ``bench.harness``) and reports ns per operation: p50, p99, mean, and the ratio
``baseline p50 / ours p50`` (how many times faster ours is).

All inputs come from one seeded synthetic Lighter stream (``bench.l2stream``). Every case is
checked after sampling against the stream's own truth (best bid/ask), so a fast wrong path fails
loudly instead of printing a good number.

A compiled module that is not built (or not written yet) makes its metric "not available" with
the reason; the rest still runs.
"""

from __future__ import annotations

import importlib
import itertools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import orjson

from bench.baselines import SortedDictBook, empty_function
from bench.harness import Case, Stats, run_group
from bench.l2stream import ASK, BID, L2Stream, StreamConfig, generate

__all__ = [
    "Metric",
    "Profile",
    "book_apply",
    "call_floor",
    "parse_apply",
    "parse_only",
    "plan",
    "quote",
    "run_all",
]


@dataclass(frozen=True)
class Profile:
    """How much to sample. ``quick`` keeps the whole suite well under a minute."""

    samples: int  # samples per case (the fast compiled cases)
    slow_samples: int  # samples per case for slow pure-Python cases (each sample is bigger)
    warmup: int  # warmup samples per case
    rounds: int  # interleaving rounds
    n_deltas: int  # length of the shared stream
    seed: int = 1
    quick: bool = False  # the system metrics (sockets, timers, signing) run shorter too


FULL = Profile(samples=5000, slow_samples=1500, warmup=50, rounds=25, n_deltas=20_000)
QUICK = Profile(samples=300, slow_samples=120, warmup=10, rounds=6, n_deltas=5_000, quick=True)


@dataclass
class Metric:
    """Results of one metric: our cases (the first is the headline) and the baselines."""

    name: str
    unit: str
    definition: str
    target_ns: float | None = None
    stretch_ns: float | None = None
    ours: list[Stats] = field(default_factory=list)
    baselines: list[Stats] = field(default_factory=list)
    unavailable: str | None = None  # why the metric could not run
    notes: list[str] = field(default_factory=list)
    target_p99_ns: float | None = None  # a p99 target beside (or instead of) the p50 one
    target_text: str | None = None  # how the target reads when it is not "<= X p50"
    verdict: bool | None = None  # set by metrics whose target is not a latency (msg/s, bytes)
    placement: str = "one process, no threads"  # how processes/threads sat on the cores
    figures: dict[str, Any] = field(default_factory=dict)  # other measured numbers (JSON)
    dists: dict[str, list[float]] = field(default_factory=dict, repr=False)  # for the PNG
    # Baseline i is the same input as ours i (its ratio is against that row, not the headline).
    paired: bool = False

    @property
    def headline(self) -> Stats | None:
        return self.ours[0] if self.ours else None

    def met(self) -> bool | None:
        if self.verdict is not None:
            return self.verdict
        head = self.headline
        if head is None or (self.target_ns is None and self.target_p99_ns is None):
            return None
        ok = True
        if self.target_ns is not None:
            ok = ok and head.p50_ns <= self.target_ns
        if self.target_p99_ns is not None:
            ok = ok and head.p99_ns <= self.target_p99_ns
        return ok

    def counterpart(self, baseline: Stats) -> Stats | None:
        """The row of ours a baseline is compared with: its pair, or the headline."""
        if self.paired:
            for i, b in enumerate(self.baselines):
                if b is baseline and i < len(self.ours):
                    return self.ours[i]
        return self.headline

    def ratio(self, baseline: Stats, ours: Stats | None = None) -> float:
        ours = ours or self.counterpart(baseline)
        if ours is None or ours.p50_ns <= 0:
            return float("nan")
        return baseline.p50_ns / ours.p50_ns

    def as_dict(self) -> dict[str, Any]:
        head = self.headline
        return {
            "name": self.name,
            "unit": self.unit,
            "definition": self.definition,
            "target_ns": self.target_ns,
            "stretch_ns": self.stretch_ns,
            "met": self.met(),
            "stretch_met": (
                None if self.stretch_ns is None or head is None else head.p50_ns <= self.stretch_ns
            ),
            "unavailable": self.unavailable,
            "ours": [s.as_dict() for s in self.ours],
            "baselines": [
                {
                    **s.as_dict(),
                    "ratio_vs_ours_p50": self.ratio(s),
                    "ratios": {o.name: self.ratio(s, o) for o in self.ours},
                }
                for s in self.baselines
            ],
            "notes": list(self.notes),
            "target_p99_ns": self.target_p99_ns,
            "target_text": self.target_text,
            "placement": self.placement,
            "figures": dict(self.figures),
        }


# --- plumbing -----------------------------------------------------------------------------------


def _try_import(name: str) -> tuple[ModuleType | None, str | None]:
    try:
        return importlib.import_module(name), None
    except Exception as exc:  # any failure means "not available", with the reason printed
        return None, f"{name}: {type(exc).__name__}: {exc}"


class _Cursor:
    """Walks a sequence in chunks, one chunk per sample; calls ``reset`` (untimed) on wrap.

    ``prepare`` is the harness's untimed pre-sample hook; the timed body reads ``self.chunk``."""

    __slots__ = ("chunk", "chunks", "end", "index", "reset", "size")

    def __init__(self, items: Sequence[Any], size: int, reset: Callable[[], object] | None):
        if size <= 0 or len(items) < size:
            raise ValueError(f"need at least {size} items, got {len(items)}")
        self.size = size
        self.chunks = [items[i : i + size] for i in range(0, len(items) - size + 1, size)]
        self.reset = reset
        self.index = -1
        self.chunk: Sequence[Any] = self.chunks[0]
        self.end = 0  # number of items consumed after the current chunk (for checks)

    def prepare(self) -> None:
        self.index += 1
        if self.index == len(self.chunks):
            self.index = 0
        if self.index == 0 and self.reset is not None:
            self.reset()
        self.chunk = self.chunks[self.index]
        self.end = (self.index + 1) * self.size


def _check_equal(what: str, got: object, want: object) -> None:
    if got != want:
        raise AssertionError(f"{what}: got {got!r}, want {want!r}")


# --- book_apply ---------------------------------------------------------------------------------


def _delta_prefix_levels(stream: L2Stream, n_levels: int) -> tuple[int, list[tuple[int, int, int]]]:
    """Levels of the first deltas of the stream, in order, as (side, price, size), about
    ``n_levels`` of them (whole deltas only). Returns (deltas used, levels)."""
    pd, sd = stream.config.price_decimals, stream.config.size_decimals
    out: list[tuple[int, int, int]] = []
    used = 0
    for msg in stream.messages[1:]:
        if len(out) >= n_levels:
            break
        used += 1
        ob = msg["order_book"]
        for side, key in ((ASK, "asks"), (BID, "bids")):
            for lvl in ob[key]:
                out.append((side, _int(lvl["price"], pd), _int(lvl["size"], sd)))
    return used, out


def _int(s: str, decimals: int) -> int:
    whole, _, frac = s.partition(".")
    return int(whole) * 10**decimals + (int(frac.ljust(decimals, "0")) if frac else 0)


def book_apply(stream: L2Stream, profile: Profile, n_levels: int = 10_000) -> Metric:
    """One level update inside the book, per level (update + best bid/ask read)."""
    metric = Metric(
        name="book_apply",
        unit="ns/level",
        definition="one pre-parsed level update (absolute size, 0 deletes) + best bid/ask read",
        target_ns=10.0,
    )
    book_mod, why = _try_import("mmfast._core.book")
    ref_mod, why_ref = _try_import("mmfast.reference.book")
    np, why_np = _try_import("numpy")
    cfg = stream.config
    snap = stream.messages[0]["order_book"]
    used, levels = _delta_prefix_levels(stream, n_levels)
    truth = stream.tops[used]
    metric.notes.append(
        f"{len(levels)} levels from the first {used} deltas (near the touch, "
        f"{sum(1 for _, _, s in levels if s == 0)} deletes); the book is reset to the "
        "snapshot (untimed) before each pass"
    )
    cases: list[Case] = []
    slow_chunk = 250

    if book_mod is not None and np is not None:
        book = book_mod.OrderBook(cfg.market_id, cfg.price_decimals, cfg.size_decimals)
        bid_p = np.array([p for s, p, _ in levels if s == BID], dtype=np.int64)
        bid_s = np.array([z for s, _, z in levels if s == BID], dtype=np.int64)
        ask_p = np.array([p for s, p, _ in levels if s == ASK], dtype=np.int64)
        ask_s = np.array([z for s, _, z in levels if s == ASK], dtype=np.int64)

        def reset_ours() -> None:
            book.apply_snapshot(snap["asks"], snap["bids"], snap["nonce"])

        apply_levels = book.apply_levels
        best_bid, best_ask = book.best_bid, book.best_ask
        b_side, a_side = book_mod.BID, book_mod.ASK

        def body_ours() -> None:
            apply_levels(b_side, bid_p, bid_s)
            apply_levels(a_side, ask_p, ask_s)
            best_bid()
            best_ask()

        def check_ours() -> None:
            _check_equal("OrderBook.apply_levels best bid/ask", (best_bid(), best_ask()), truth)

        cases.append(
            Case(
                "mmfast OrderBook.apply_levels (compiled, batch of 10k)",
                body_ours,
                ops=len(levels),
                prepare=reset_ours,
                check=check_ours,
            )
        )
        metric.notes.append(
            "ours applies each side's levels in one apply_levels call (bids then asks) and reads "
            "best bid/ask once per pass: the compiled book keeps the best in O(1) state"
        )
    else:
        metric.unavailable = why or why_np

    slow: list[Case] = []
    if ref_mod is not None:
        ref_factory = lambda: ref_mod.ReferenceBook(  # noqa: E731
            cfg.market_id, cfg.price_decimals, cfg.size_decimals
        )
        slow.append(
            _per_level_case(
                "ReferenceBook (dict + bisect), per-level _set",
                ref_factory,
                snap,
                levels,
                slow_chunk,
                stream,
            )
        )
        slow.append(
            _batch_case(
                "ReferenceBook.apply_levels (validated batch of 250, lists)",
                ref_factory,
                snap,
                levels,
                slow_chunk,
                stream,
            )
        )
    else:
        metric.notes.append(f"ReferenceBook baseline not available ({why_ref})")
    slow.append(
        _per_level_case(
            "SortedDict book (sortedcontainers)",
            lambda: SortedDictBook(cfg.price_decimals, cfg.size_decimals),
            snap,
            levels,
            slow_chunk,
            stream,
        )
    )
    for c in cases:
        c.n_samples = profile.samples // 2
    for c in slow:
        c.n_samples = profile.slow_samples
    stats = run_group(
        cases + slow, samples=profile.samples, warmup=profile.warmup, rounds=profile.rounds
    )
    metric.ours, metric.baselines = stats[: len(cases)], stats[len(cases) :]
    metric.notes.append(
        f"per-level baselines: chunks of {slow_chunk} levels in stream order, each level "
        "followed by a best bid + best ask read; the apply_levels baseline is the same API as "
        "ours (validate, then apply; one best read per batch)"
    )
    return metric


def _raw_setter(book: Any) -> Callable[[int, int, int], object]:
    """The book's raw per-level update, without validation or parsing: ``set_level`` on the
    SortedDict book, ``_set`` on ``ReferenceBook`` (its internal per-level primitive, which its
    ``apply_levels`` calls after validating the whole batch)."""
    for attr in ("set_level", "_set"):
        setter = getattr(book, attr, None)
        if setter is not None:
            return setter
    raise TypeError(f"{type(book).__name__} has no raw per-level update")


def _batch_case(
    name: str,
    factory: Callable[[], Any],
    snap: dict[str, Any],
    levels: list[tuple[int, int, int]],
    chunk: int,
    stream: L2Stream,
) -> Case:
    """Public batch API of a Python book: ``apply_levels(side, prices, sizes)`` on lists, one
    call per side per chunk, then one best bid/ask read (the same shape as ours)."""
    holder: list[Any] = [None]
    batches = []
    for i in range(0, len(levels) - chunk + 1, chunk):
        part = levels[i : i + chunk]
        batches.append(
            [
                (side, [p for s, p, _ in part if s == side], [z for s, _, z in part if s == side])
                for side in (BID, ASK)
            ]
        )

    def reset() -> None:
        book = factory()
        book.apply_message({"type": "subscribed/order_book", "order_book": snap})
        holder[0] = book

    cursor = _Cursor(batches, 1, reset)

    def body() -> None:
        book = holder[0]
        apply_levels = book.apply_levels
        for side, prices, sizes in cursor.chunk[0]:
            apply_levels(side, prices, sizes)
        book.best_bid()
        book.best_ask()

    def check() -> None:
        book = holder[0]
        want = _model_after(snap, levels[: cursor.end * chunk], stream)
        _check_equal(f"{name} best bid/ask", (book.best_bid(), book.best_ask()), want)

    return Case(name, body, ops=chunk, prepare=cursor.prepare, check=check)


def _per_level_case(
    name: str,
    factory: Callable[[], Any],
    snap: dict[str, Any],
    levels: list[tuple[int, int, int]],
    chunk: int,
    stream: L2Stream,
) -> Case:
    holder: list[Any] = [None]
    cursor: _Cursor

    def reset() -> None:
        book = factory()
        snapshot = {"type": "subscribed/order_book", "order_book": snap}
        book.apply_message(snapshot)
        holder[0] = book

    def prepare() -> None:
        cursor.prepare()

    cursor = _Cursor(levels, chunk, reset)
    state: dict[str, Any] = {}

    def body() -> None:
        book = holder[0]
        setter = state.get(id(book))
        if setter is None:
            setter = state[id(book)] = _raw_setter(book)
        best_bid, best_ask = book.best_bid, book.best_ask
        for side, price, size in cursor.chunk:
            setter(side, price, size)
            best_bid()
            best_ask()

    def check() -> None:
        # Replay the consumed prefix on a fresh book and compare to a dict model of the stream.
        book = holder[0]
        want = _model_after(snap, levels[: cursor.end], stream)
        _check_equal(f"{name} best bid/ask", (book.best_bid(), book.best_ask()), want)

    return Case(name, body, ops=chunk, prepare=prepare, check=check)


def _model_after(
    snap: dict[str, Any], levels: list[tuple[int, int, int]], stream: L2Stream
) -> tuple[int, int]:
    """Best bid/ask of a plain dict book: snapshot then ``levels``."""
    pd, sd = stream.config.price_decimals, stream.config.size_decimals
    sides: list[dict[int, int]] = [{}, {}]
    for side, key in ((BID, "bids"), (ASK, "asks")):
        for lvl in snap[key]:
            sides[side][_int(lvl["price"], pd)] = _int(lvl["size"], sd)
    for side, price, size in levels:
        if size:
            sides[side][price] = size
        else:
            sides[side].pop(price, None)
    return (max(sides[BID], default=0), min(sides[ASK], default=0))


# --- parse_apply --------------------------------------------------------------------------------


def _message_case(
    name: str,
    stream: L2Stream,
    chunk: int,
    make_book: Callable[[], Any],
    apply_one: Callable[[Any], Callable[[bytes], object]],
    reset_with: Callable[[Any], object],
) -> Case:
    """Per message: apply_one(book)(frame_bytes), then read best bid and best ask."""
    book = make_book()
    deltas = stream.delta_frames

    def reset() -> None:
        reset_with(book)

    cursor = _Cursor(deltas, chunk, reset)
    apply = apply_one(book)
    best_bid, best_ask = book.best_bid, book.best_ask

    def setup() -> None:
        # Correctness pass over the whole stream (untimed): every delta must apply (code 0).
        reset_with(book)
        for i, data in enumerate(deltas):
            code = apply(data)
            if code != 0:
                raise AssertionError(f"{name}: delta {i + 1} returned {code}, want 0")
        _check_equal(f"{name} best bid/ask at end", (best_bid(), best_ask()), stream.tops[-1])

    def body() -> None:
        for data in cursor.chunk:
            apply(data)
            best_bid()
            best_ask()

    def check() -> None:
        _check_equal(f"{name} best bid/ask", (best_bid(), best_ask()), stream.tops[cursor.end])

    return Case(name, body, ops=chunk, prepare=cursor.prepare, setup=setup, check=check)


def parse_apply(stream: L2Stream, profile: Profile, chunk: int = 64) -> Metric:
    """Bytes of one order-book WS delta -> book updated + best bid/ask read, per message."""
    metric = Metric(
        name="parse_apply",
        unit="ns/msg",
        definition="bytes of one order-book WS delta -> book updated + best bid/ask read",
        target_ns=400.0,
    )
    cfg = stream.config
    book_mod, why = _try_import("mmfast._core.book")
    ref_mod, why_ref = _try_import("mmfast.reference.book")
    snap_frame = stream.snapshot_frame
    snap_msg = stream.messages[0]
    ours: list[Case] = []
    if book_mod is not None:

        def new_book() -> Any:
            return book_mod.OrderBook(cfg.market_id, cfg.price_decimals, cfg.size_decimals)

        ours.append(
            _message_case(
                "mmfast OrderBook.apply_frame (byte scanner)",
                stream,
                chunk,
                new_book,
                lambda b: b.apply_frame,
                lambda b: b.apply_frame(snap_frame),
            )
        )
        loads = orjson.loads

        def via_orjson(b: Any) -> Callable[[bytes], object]:
            apply_message = b.apply_message
            return lambda data: apply_message(loads(data))

        ours.append(
            _message_case(
                "mmfast orjson.loads + OrderBook.apply_message",
                stream,
                chunk,
                new_book,
                via_orjson,
                lambda b: b.apply_message(snap_msg),
            )
        )
    else:
        metric.unavailable = why
    slow: list[Case] = []
    if ref_mod is not None:

        def new_ref() -> Any:
            return ref_mod.ReferenceBook(cfg.market_id, cfg.price_decimals, cfg.size_decimals)

        for label, loads_fn in (("json.loads", json.loads), ("orjson.loads", orjson.loads)):
            slow.append(
                _message_case(
                    f"{label} + ReferenceBook.apply_message",
                    stream,
                    chunk,
                    new_ref,
                    _loads_then_apply(loads_fn),
                    lambda b: b.apply_message(snap_msg),
                )
            )
    else:
        metric.notes.append(f"ReferenceBook baselines not available ({why_ref})")
    slow.append(
        _message_case(
            "orjson.loads + SortedDict book",
            stream,
            chunk,
            lambda: SortedDictBook(cfg.price_decimals, cfg.size_decimals),
            _loads_then_apply(orjson.loads),
            lambda b: b.apply_message(snap_msg),
        )
    )
    for c in slow:
        c.n_samples = profile.slow_samples
    stats = run_group(
        ours + slow, samples=profile.samples, warmup=profile.warmup, rounds=profile.rounds
    )
    metric.ours, metric.baselines = stats[: len(ours)], stats[len(ours) :]
    metric.dists = {c.name: list(c.samples) for c in ours + slow}
    st = stream.stats()
    metric.notes.append(
        f"{st['n_deltas']} deltas, mean {st['delta_bytes_mean']:.0f} B and "
        f"{st['delta_levels_mean']:.2f} levels each; a sample is {chunk} consecutive deltas "
        "(Python for-loop included); the book is reset to the snapshot (untimed) on wrap"
    )
    return metric


def _loads_then_apply(
    loads_fn: Callable[[bytes], Any],
) -> Callable[[Any], Callable[[bytes], object]]:
    def bind(book: Any) -> Callable[[bytes], object]:
        apply_message = book.apply_message
        return lambda data: apply_message(loads_fn(data))

    return bind


def parse_only(stream: L2Stream, profile: Profile, chunk: int = 64) -> Metric:
    """Parsing alone (no book): the share of parse_apply that is JSON decoding."""
    metric = Metric(
        name="parse_only",
        unit="ns/msg",
        definition="decode one delta frame to Python objects (reference figure, no target)",
    )
    deltas = stream.delta_frames

    def case(name: str, loads_fn: Callable[[bytes], Any]) -> Case:
        cursor = _Cursor(deltas, chunk, None)

        def body() -> None:
            for data in cursor.chunk:
                loads_fn(data)

        def check() -> None:
            _check_equal(name, loads_fn(deltas[0]), stream.messages[1])

        return Case(name, body, ops=chunk, prepare=cursor.prepare, check=check)

    ours, base = run_group(
        [case("orjson.loads", orjson.loads), case("json.loads (stdlib)", json.loads)],
        samples=profile.samples,
        warmup=profile.warmup,
        rounds=profile.rounds,
    )
    metric.ours = [ours]
    metric.baselines = [base]
    return metric


# --- quote --------------------------------------------------------------------------------------

# One 2 x 5 ladder (fixed-spread mode with inventory skew), the same for ours and the Python twin.
LADDER: dict[str, int] = {
    "spread_ticks": 3,
    "n_levels": 5,
    "level_spacing_ticks": 2,
    "size_lots": 1_000,
    "size_step_lots": 500,
    "skew_ticks": 4,
    "target_position_lots": 0,
    "max_long_lots": 50_000,
    "max_short_lots": 50_000,
    "min_spread_ticks": 2,
}
# ETH-like market minimums: 0.0050 ETH and 10 USDC (in tick*lot units, 10 * 10^(2+4)).
MARKET_MINIMUMS: dict[str, int] = {"min_size_lots": 50, "min_notional": 10_000_000}


def _quote_inputs(stream: L2Stream, seed: int) -> list[tuple[int, int, int]]:
    """(best bid, best ask, position) per delta: the stream's touch and a seeded inventory walk."""
    import random

    rng = random.Random(seed)
    pos = 0
    out = []
    for bb, ba in stream.tops[1:]:
        pos = max(-40_000, min(40_000, pos + rng.choice((-1_000, 0, 0, 1_000))))
        out.append((bb, ba, pos))
    return out


def _quote_functions(
    ladder: dict[str, int],
) -> tuple[
    Callable[[int, int, int], object],
    Callable[[int, int, int], object],
    Callable[[int, int, int], None],
]:
    """(ours, Python twin, compare) for one ladder; compare raises if the two disagree."""
    quote_mod = importlib.import_module("mmfast._core.quote")
    ref_mod = importlib.import_module("mmfast.reference.quote")
    ours = quote_mod.QuoteEngine(quote_mod.QuoteParams(**ladder), **MARKET_MINIMUMS)
    ref = ref_mod.ReferenceQuoteEngine(ref_mod.RefQuoteParams(**ladder), **MARKET_MINIMUMS)
    levels = 2 * ladder["n_levels"]

    def compare(best_bid: int, best_ask: int, position: int) -> None:
        n = ours.compute(best_bid, best_ask, position)
        _check_equal("QuoteEngine levels", n, levels)
        _check_equal("Python twin levels", ref.compute(best_bid, best_ask, position), levels)
        _check_equal("QuoteEngine bids", ours.bids(), ref.bids())
        _check_equal("QuoteEngine asks", ours.asks(), ref.asks())

    return ours.compute, ref.compute, compare


def quote(stream: L2Stream, profile: Profile, chunk: int = 200) -> Metric:
    """QuoteEngine.compute for a 2 x 5 ladder called from Python, per call."""
    metric = Metric(
        name="quote",
        unit="ns/call",
        definition="best bid/ask + position -> 2 x 5 target ladder, called from Python",
        target_ns=150.0,
    )
    inputs = _quote_inputs(stream, profile.seed)
    try:
        ours_fn, ref_fn, compare = _quote_functions(LADDER)
    except Exception as exc:  # not built / not written yet: report why, run the rest
        metric.unavailable = f"{type(exc).__name__}: {exc}"
        return metric

    def case(name: str, fn: Callable[[int, int, int], object]) -> Case:
        cursor = _Cursor(inputs, chunk, None)

        def body() -> None:
            for bb, ba, pos in cursor.chunk:
                fn(bb, ba, pos)

        def check() -> None:
            for bb, ba, pos in inputs[:: max(1, len(inputs) // 500)]:
                compare(bb, ba, pos)

        return Case(name, body, ops=chunk, prepare=cursor.prepare, check=check)

    def loop_floor() -> Case:
        cursor = _Cursor(inputs, chunk, None)

        def body() -> None:
            for _bb, _ba, _pos in cursor.chunk:
                pass

        return Case(
            "same loop, empty body (subtract to get the bare call)",
            body,
            ops=chunk,
            prepare=cursor.prepare,
        )

    slow = case("mmfast.reference.quote (pure Python)", ref_fn)
    slow.n_samples = profile.slow_samples
    ours, floor, base = run_group(
        [case("mmfast QuoteEngine.compute (compiled)", ours_fn), loop_floor(), slow],
        samples=profile.samples,
        warmup=profile.warmup,
        rounds=profile.rounds,
    )
    metric.ours = [ours]
    metric.baselines = [base]
    metric.notes.append(
        f"inputs: the stream's touch after each delta and a seeded position walk; a sample is "
        f"{chunk} calls in a Python for-loop with tuple unpacking, which alone costs "
        f"{floor.p50_ns:.1f} ns per iteration (p50)"
    )
    metric.notes.append("ladder: " + ", ".join(f"{k}={v}" for k, v in LADDER.items()))
    return metric


# --- plan ---------------------------------------------------------------------------------------

# Tolerance 0: a 1-tick move of the ladder modifies every level. The bot's config tolerates more
# (refresh_tolerance_ticks), which only makes more calls take the on-target path.
PLAN_PARAMS: dict[str, int] = {
    "price_tolerance_ticks": 0,
    "size_tolerance_lots": 0,
    "max_order_age_ns": 600 * 10**9,
}
PLAN_NOW_NS = 10**15  # monotonic now of every plan; the orders are 1 s old


@dataclass(frozen=True)
class PlanInput:
    """One planner call: the target ladder and our live orders (10, all OPEN)."""

    bids: list[tuple[int, int]]
    asks: list[tuple[int, int]]
    live: list[Any]


def plan_inputs(stream: L2Stream, n: int = 200) -> tuple[list[PlanInput], list[PlanInput]]:
    """(on target, 1-tick move) inputs at ``n`` touches of the stream, a 2 x 5 ladder each.

    On target: the live orders are exactly the ladder of the touch (no action). Move: the same
    orders, the ladder of the touch moved up one tick (every level modified)."""
    quote_mod = importlib.import_module("mmfast._core.quote")
    types = importlib.import_module("mmfast.core.types")
    engine = quote_mod.QuoteEngine(quote_mod.QuoteParams(**LADDER), **MARKET_MINIMUMS)
    levels = 2 * LADDER["n_levels"]
    tops = stream.tops[1:]
    step = max(1, len(tops) // n)
    on_target: list[PlanInput] = []
    moved: list[PlanInput] = []
    coi = 0
    for bb, ba in tops[::step][:n]:
        if engine.compute(bb, ba, 0) != levels:
            continue
        bids, asks = engine.bids(), engine.asks()
        live = []
        for side, ladder in ((types.Side.BUY, bids), (types.Side.SELL, asks)):
            for price, size in ladder:
                coi += 1
                live.append(
                    types.Order(
                        client_order_index=coi,
                        market=0,
                        side=side,
                        price_ticks=price,
                        size_lots=size,
                        tif=types.TimeInForce.POST_ONLY,
                        expiry_ms=1,
                        status=types.OrderStatus.OPEN,
                        created_ns=PLAN_NOW_NS - 10**9,
                    )
                )
        if engine.compute(bb + 1, ba + 1, 0) != levels:
            continue
        on_target.append(PlanInput(bids, asks, live))
        moved.append(PlanInput(engine.bids(), engine.asks(), live))
    return on_target, moved


def _plan_functions() -> tuple[Callable[..., Any], Callable[..., Any], dict[str, Any]]:
    """(compiled planner, Python twin, keyword arguments of a call as the bot makes it)."""
    compiled = importlib.import_module("mmfast._core.plan")
    ref = importlib.import_module("mmfast.reference.planner")
    plan_types = importlib.import_module("mmfast.core.plan_types")
    kwargs = {
        "now_ns": PLAN_NOW_NS,
        "params": plan_types.PlannerParams(**PLAN_PARAMS),
        "inflight": 0,
        "budget": plan_types.UNLIMITED,
        "position_lots": 0,
        "busy": set(),
        "no_create": (),
    }
    return compiled.plan_requotes, ref.plan_requotes, kwargs


def check_plans(
    ours: Callable[..., Any],
    ref: Callable[..., Any],
    kwargs: dict[str, Any],
    inputs: Sequence[PlanInput],
    modifies: int,
) -> None:
    """Raise unless ours gives the twin's plan (orders by identity) with ``modifies`` modifies
    and nothing else (0: every order kept)."""
    for x in inputs:
        got = ours(x.bids, x.asks, x.live, **kwargs)
        want = ref(x.bids, x.asks, x.live, **kwargs)
        _check_equal("plan", got, want)
        _check_equal(
            "plan orders", [id(a.order) for a in got.actions], [id(a.order) for a in want.actions]
        )
        _check_equal("plan modifies", (len(got.modifies), len(got.actions)), (modifies, modifies))
        if not modifies:
            _check_equal("plan kept", [id(o) for o in got.kept], [id(o) for o in want.kept])
            _check_equal("plan kept all", len(got.kept), len(x.live))


def plan(stream: L2Stream, profile: Profile, chunk: int = 100, slow_chunk: int = 20) -> Metric:
    """The requote planner on a 2 x 5 ladder and its 10 orders, per call: on target (nothing to
    send, the common case between price moves) and after a 1-tick move (10 modifies)."""
    metric = Metric(
        name="plan",
        unit="ns/call",
        definition="2 x 5 target ladder + 10 live orders -> Plan, called from Python: on target "
        "(no action) and a 1-tick move (10 modifies)",
    )
    try:
        on_target, moved = plan_inputs(stream)
        ours_fn, ref_fn, kwargs = _plan_functions()
    except Exception as exc:  # not built / not written yet: report why, run the rest
        metric.unavailable = f"{type(exc).__name__}: {exc}"
        return metric
    if not on_target:
        metric.unavailable = "no touch of the stream gives a full 2 x 5 ladder"
        return metric

    def case(
        name: str, fn: Callable[..., Any], inputs: list[PlanInput], size: int, modifies: int
    ) -> Case:
        cursor = _Cursor(inputs, size, None)
        now, params, budget, busy = (
            kwargs["now_ns"],
            kwargs["params"],
            kwargs["budget"],
            kwargs["busy"],
        )

        def body() -> None:
            # Keywords spelled out, as the strategies call it (no **dict on the hot path).
            for x in cursor.chunk:
                fn(
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

        def check() -> None:
            check_plans(ours_fn, ref_fn, kwargs, inputs, modifies)

        return Case(name, body, ops=size, prepare=cursor.prepare, check=check)

    n_mod = 2 * LADDER["n_levels"]
    cases = [
        case("compiled, on target", ours_fn, on_target, chunk, 0),
        case("compiled, 1-tick move", ours_fn, moved, chunk, n_mod),
    ]
    slow = [
        case("mmfast.reference.planner (pure Python), on target", ref_fn, on_target, slow_chunk, 0),
        case(
            "mmfast.reference.planner (pure Python), 1-tick move", ref_fn, moved, slow_chunk, n_mod
        ),
    ]
    for c in slow:
        c.n_samples = profile.slow_samples
    stats = run_group(
        cases + slow, samples=profile.samples, warmup=profile.warmup, rounds=profile.rounds
    )
    metric.ours, metric.baselines = stats[:2], stats[2:]
    metric.paired = True  # on target vs on target, move vs move
    for label, ours, base in (("on_target", stats[0], stats[2]), ("move", stats[1], stats[3])):
        metric.figures[f"{label}_ns"] = round(ours.p50_ns, 1)
        metric.figures[f"{label}_reference_ns"] = round(base.p50_ns, 1)
        metric.figures[f"{label}_ratio"] = round(metric.ratio(base, ours), 2)
    metric.notes.append(
        "compare like with like: on target {:.0f} ns vs {:.0f} ns in Python ({:.1f}x), 1-tick "
        "move {:.0f} ns vs {:.0f} ns ({:.1f}x); the cross rows (one input against the other) "
        "mean nothing".format(
            stats[0].p50_ns,
            stats[2].p50_ns,
            metric.figures["on_target_ratio"],
            stats[1].p50_ns,
            stats[3].p50_ns,
            metric.figures["move_ratio"],
        )
    )
    metric.notes.append(
        f"inputs: {len(on_target)} touches of the stream, the quote benchmark's 2 x 5 ladder at "
        "each (position 0) with its 10 orders OPEN; the move is the ladder of the touch + 1 "
        "tick. The call is the bot's: every keyword given, budget UNLIMITED (a real budget's "
        "own Python calls are not the planner's), busy an empty set; tolerances 0, max order "
        "age 600 s"
    )
    metric.notes.append(
        f"a sample is {chunk} calls (compiled) or {slow_chunk} calls (Python) in a for-loop; "
        "after timing, every input's plan is checked against the Python twin's (orders by "
        "identity)"
    )
    return metric


# --- call floor ---------------------------------------------------------------------------------


def call_floor(stream: L2Stream, profile: Profile, batch: int = 1000) -> Metric:
    """What a call from Python costs before any work: the floor under every figure above."""
    metric = Metric(
        name="call_floor",
        unit="ns/call",
        definition="an empty loop iteration, an empty def call, a trivial compiled method call",
    )
    rep = itertools.repeat
    cases: list[Case] = []

    def loop_body() -> None:
        for _ in rep(None, batch):
            pass

    cases.append(Case("empty loop iteration (itertools.repeat)", loop_body, ops=batch))
    f = empty_function

    def def_body() -> None:
        for _ in rep(None, batch):
            f()

    cases.append(Case("empty Python def call", def_body, ops=batch))
    book_mod, why = _try_import("mmfast._core.book")
    if book_mod is not None:
        cfg = stream.config
        book = book_mod.OrderBook(cfg.market_id, cfg.price_decimals, cfg.size_decimals)
        book.apply_frame(stream.snapshot_frame)
        bb = book.best_bid

        def cpdef_body() -> None:
            for _ in rep(None, batch):
                bb()

        cases.append(Case("OrderBook.best_bid() (cpdef, from Python)", cpdef_body, ops=batch))
    else:
        metric.notes.append(f"compiled call not available ({why})")
    stats = run_group(cases, samples=profile.samples, warmup=profile.warmup, rounds=profile.rounds)
    metric.ours = stats
    metric.notes.append(f"a sample is {batch} calls in a for-loop over itertools.repeat")
    return metric


# --- everything ---------------------------------------------------------------------------------


def run_all(
    profile: Profile,
    only: Sequence[str] | None = None,
    progress: Callable[[str], object] | None = None,
) -> tuple[L2Stream, list[Metric]]:
    """Generate the shared stream once, then run every metric (or those named in ``only``)."""
    stream = generate(StreamConfig(seed=profile.seed, n_deltas=profile.n_deltas))
    runners: list[tuple[str, Callable[[L2Stream, Profile], Metric]]] = [
        ("book_apply", book_apply),
        ("parse_apply", parse_apply),
        ("parse_only", parse_only),
        ("quote", quote),
        ("plan", plan),
        ("call_floor", call_floor),
    ]
    out = []
    for name, fn in runners:
        if only and name not in only:
            continue
        if progress is not None:
            progress(name)
        try:
            out.append(fn(stream, profile))
        except ImportError as exc:
            out.append(Metric(name=name, unit="", definition="", unavailable=str(exc)))
    return stream, out
