"""Checks of the system benchmarks' pieces: the pipeline (ours against the pure-Python twin),
the report, the socket helpers and the peers. Run with ``pytest bench/``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bench.harness import Stats
from bench.l2stream import L2Stream, StreamConfig, generate
from bench.micro import Metric
from bench.pipeline import CompiledPipeline, PlannerPipeline, PythonPipeline, Stamps
from bench.report import headline_table, write_results


@pytest.fixture(scope="module")
def stream() -> L2Stream:
    return generate(StreamConfig(seed=3, n_deltas=1500))


class _Rec:
    def __init__(self) -> None:
        self.calls: list[tuple[int, bool, int, int]] = []

    def __call__(self, level: int, is_ask: bool, price: int, size: int) -> None:
        self.calls.append((level, is_ask, price, size))


def _drive(pipe: CompiledPipeline | PythonPipeline, stream: L2Stream) -> list[Stamps]:
    out = []
    for data in stream.frames:
        st = Stamps(received=1)
        pipe.on_frame(data, st)
        out.append(st)
    return out


def test_compiled_pipeline_sends_what_the_python_twin_sends(stream: L2Stream) -> None:
    a, b = _Rec(), _Rec()
    ours, twin = CompiledPipeline(stream, a), PythonPipeline(stream, b)
    st_ours = _drive(ours, stream)
    _drive(twin, stream)
    assert a.calls == b.calls and len(a.calls) > 500
    assert ours.top() == twin.top() == stream.tops[-1]
    # Stages are stamped in order on every frame that produced a tx.
    with_tx = [s for s in st_ours if s.n_txs]
    assert with_tx
    for s in with_tx:
        assert s.received <= s.applied <= s.quoted <= s.diffed <= s.first_tx <= s.all_txs
    # The resting ladder is the last quote: replaying the last frame sends nothing more.
    n = len(a.calls)
    ours.on_frame(stream.frames[-1], Stamps())
    assert len(a.calls) == n


def test_planner_pipeline_keeps_a_full_ladder(stream: L2Stream) -> None:
    rec = _Rec()
    pipe = PlannerPipeline(stream, rec)
    _drive(pipe, stream)
    assert pipe.denied == 0 and rec.calls
    bids = sorted((o.price_ticks, o.size_lots) for o in pipe.live if int(o.side) == 0)
    asks = sorted((o.price_ticks, o.size_lots) for o in pipe.live if int(o.side) != 0)
    assert bids == sorted(pipe.engine.bids()) and asks == sorted(pipe.engine.asks())


def test_metric_verdicts_and_headline_table() -> None:
    m = Metric(name="step_internal", unit="ns", definition="d", target_ns=3000.0,
               target_p99_ns=10_000.0)
    m.ours = [Stats("ours", 2000.0, 12_000.0, 2500.0, 1000.0, 100, 1)]
    m.baselines = [Stats("py", 20_000.0, 40_000.0, 21_000.0, 15_000.0, 100, 1)]
    assert m.met() is False  # p50 fine, p99 over
    m.ours = [Stats("ours", 2000.0, 9_000.0, 2500.0, 1000.0, 100, 1)]
    assert m.met() is True
    m2 = Metric(name="feed_throughput", unit="ns/msg", definition="d", verdict=False)
    m2.ours = [Stats("ours", 1.0, 1.0, 1.0, 1.0, 1, 1)]
    m3 = Metric(name="x", unit="ns", definition="d", unavailable="not built")
    table = headline_table([m, m2, m3])
    assert "| step_internal |" in table and "10.00x | **met** |" in table
    assert "**NOT met**" in table
    assert "not available: not built" in table and "not measured" in table


def test_write_results_json_md_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    m = Metric(name="step_internal", unit="ns", definition="d", target_ns=3000.0)
    m.ours = [Stats("ours", 2000.0, 2500.0, 2100.0, 1000.0, 3, 1)]
    m.dists = {"ours": [1000.0, 2000.0, 2500.0], "empty": []}
    paths = write_results(tmp_path, [m], {"profile": {}}, "# t")
    data = json.loads(paths["json"].read_text())
    assert data["metrics"][0]["met"] is True
    assert "dists" not in data["metrics"][0]
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "latency.png" in paths["md"].read_text()


def test_echo_round_trip_through_a_child_process() -> None:
    import uvloop

    from bench.loops import _echo_client
    from bench.procs import Remote

    with Remote("echo", "--impl", "picows", "--loop", "uvloop") as far:
        rtts = uvloop.run(_echo_client("picows", far.address, 50, 5))
    assert len(rtts) == 50 and all(r > 0 for r in rtts)


def test_bare_venue_matches_orders_to_deltas(stream: L2Stream) -> None:
    import uvloop

    from bench.wire import _PoolSink, _run_case

    pool = [b'{"fake":1}']
    venue, bot, _cpu = _run_case("picows", stream, 200, 1000, False, _PoolSink(pool), False,
                                 uvloop.run)
    assert venue["deltas"] == 200
    assert len(venue["echo"]) == 200
    # Every delta that moved the quote produced one order frame the venue matched by id; the
    # snapshot's own order frame (not a timed delta) is the one more.
    assert 0 < len(venue["w2w"]) == venue["order_frames"] - 1 == len(bot["internal"]) - 1
    assert sorted(venue["w2w"])[len(venue["w2w"]) // 2] < 50_000_000  # sane: under 50 ms
    assert bot["top"] == stream.tops[200]


@pytest.mark.skipif(shutil.which("g++") is None, reason="no C++ compiler")
def test_hummingbot_style_book_follows_the_stream(stream: L2Stream) -> None:
    from bench.peers import build_hb_book

    mod, why = build_hb_book()
    assert mod is not None, why
    book = mod.HbBook(2)
    for m in stream.messages:
        book.apply_message(m)
    assert (book.best_bid(), book.best_ask()) == stream.tops[-1]


def test_cli_forwards_bench_arguments() -> None:
    from mmfast.cli import build_parser

    args = build_parser().parse_args(["bench", "--quick", "--only", "quote"])
    assert args.bench_args == ["--quick", "--only", "quote"]
