"""Checks of the micro suite itself: the command line, the tables, and that a wrong path fails
instead of printing a good number. Run with ``pytest bench/``."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest

from bench.__main__ import main, summary_table
from bench.baselines import SortedDictBook
from bench.harness import Stats, run_group
from bench.l2stream import L2Stream, StreamConfig, generate
from bench.micro import Metric, _message_case


@pytest.fixture(scope="module")
def stream() -> L2Stream:
    return generate(StreamConfig(seed=5, n_deltas=600))


class _LazyBook(SortedDictBook):
    """Applies snapshots but silently skips every other delta: a fast, wrong book."""

    def __init__(self) -> None:
        super().__init__(2, 4)
        self._flip = False

    def apply_message(self, msg: dict) -> int:
        if msg["type"] == "update/order_book":
            self._flip = not self._flip
            if self._flip:
                self.nonce = msg["order_book"]["nonce"]
                return 0
        return super().apply_message(msg)


def _case(stream: L2Stream, make_book: type) -> object:
    snap = stream.messages[0]
    return _message_case(
        "x",
        stream,
        16,
        make_book,
        lambda b: lambda data: b.apply_message(orjson.loads(data)),
        lambda b: b.apply_message(snap),
    )


def test_a_correct_book_passes_the_checks(stream: L2Stream) -> None:
    (st,) = run_group([_case(stream, lambda: SortedDictBook(2, 4))], samples=8, warmup=1)
    assert st.n == 8 and st.ops == 16 and st.p50_ns > 0


def test_a_wrong_book_fails_the_run(stream: L2Stream) -> None:
    with pytest.raises(AssertionError, match="best bid/ask"):
        run_group([_case(stream, _LazyBook)], samples=8, warmup=1)


def test_summary_table_has_ratio_target_and_verdict() -> None:
    m = Metric(name="quote", unit="ns/call", definition="d", target_ns=150.0)
    m.ours = [Stats("ours", 100.0, 120.0, 101.0, 90.0, 10, 200)]
    m.baselines = [Stats("python", 700.0, 800.0, 710.0, 650.0, 10, 200)]
    table = summary_table([m])
    assert "| quote | ours | 100 ns | 120 ns | python | 700 ns | 800 ns | 7.0x |" in table
    assert "<= 150 ns | met |" in table
    m.ours = [Stats("ours", 200.0, 220.0, 201.0, 190.0, 10, 200)]
    assert "NOT met" in summary_table([m])
    assert m.as_dict()["baselines"][0]["ratios"] == {"ours": 3.5}


def test_main_quick_writes_the_results_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "results"
    copy = tmp_path / "copy.json"
    assert (
        main(
            [
                "--quick",
                "--only",
                "parse_only",
                "call_floor",
                "--out",
                str(out),
                "--json",
                str(copy),
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "| parse_only |" in printed and "| call_floor |" in printed
    assert "Bot process pid" in printed
    data = json.loads((out / "results.json").read_text())
    assert json.loads(copy.read_text()) == data
    assert [m["name"] for m in data["metrics"]] == ["parse_only", "call_floor"]
    assert data["stream"]["n_deltas"] == 5000
    assert data["placement"]["processes"] == 1
    parse = data["metrics"][0]
    assert parse["ours"][0]["n"] > 0
    assert parse["baselines"][0]["ratio_vs_ours_p50"] > 1.0  # stdlib json is slower than orjson
    assert parse["placement"].startswith("one process")
    md = (out / "results.md").read_text()
    assert "## Summary" in md and "### parse_only" in md
