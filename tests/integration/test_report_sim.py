"""mmfast report on a real run: the bot on the simulator for 30 simulated seconds (the runner,
connector, signer and strategy of test_strategy_sim), then its journal reported, in this
process (``write_report``) and by the ``mmfast report`` command in a process of its own."""

from __future__ import annotations

import asyncio
import struct
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from test_strategy_sim import SCALE, Run, _cleanup, cfg_text  # noqa: F401 (fixture)

from mmfast.report import write_report
from mmfast.report.plots import PLOTS, available
from mmfast.run import EXIT_OK
from mmfast.sim.config import DEFAULT_ACCOUNT_INDEX as ACCOUNT

RUN_S = 6.0  # real seconds: 30 simulated at SCALE 5


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR", path
    return struct.unpack(">II", head[16:24])


@pytest.mark.skipif(
    bool(available()), reason="matplotlib not installed (pip install -e '.[report]')"
)
def test_report_of_a_run_on_the_simulator(tmp_path: Path) -> None:
    r = Run(tmp_path, cfg_text(max_pos=300))
    assert asyncio.run(r.go(RUN_S)) == EXIT_OK, r.err.getvalue()
    venue_fills = r.truth(lambda t: t.fills(ACCOUNT, 0))
    recs = r.records()
    fill_recs = [x for x in recs if x["kind"] == "fill"]
    assert len(fill_recs) == len(venue_fills) >= 1

    html = write_report(r.journal, tmp_path / "report")
    out = html.parent
    data = orjson.loads((out / "report.json").read_bytes())
    assert data["fills"]["count"] == len(fill_recs)
    assert set(data["plots"]) == set(PLOTS) and data["plots_skipped"] == {}
    page = html.read_text()
    for name, (file, *_rest) in PLOTS.items():
        w, h = _png_size(out / file)
        assert 800 <= w <= 2000 and 350 <= h <= 1200, (name, w, h)
        assert f'<img src="{file}"' in page
    # The figures agree with the run: its PnL (same fills, same last mark), its counts.
    summ = next(x for x in recs if x["kind"] == "summary")
    assert data["pnl"]["total_usdc"] == pytest.approx(summ["pnl_usdc"], abs=2e-6)
    assert data["orders"]["placed"] == summ["counts"]["placed"]
    assert data["orders"]["modified"] == summ["counts"]["modified"]
    assert data["orders"]["cancelled"] == summ["counts"]["cancelled"]
    # The inventory is the venue's: within the run's limit, and where the venue ended.
    assert data["inventory"]["max_abs_lots"] <= 300
    assert data["inventory"]["final_lots"] == r.truth(lambda t: t.position(ACCOUNT, 0)).size
    # The price path: a `market` record every 250 ms of run time, or each tick when ticks
    # are further apart: the strategy ticks every 100 ms of the host's clock, 500 ms of this
    # run's. A loaded machine runs some ticks late: at least half must be there.
    n_market = sum(1 for x in recs if x["kind"] == "market")
    window = data["run"]["quoting_window_s"]
    # Start-up comes out of the real seconds; the stop's timer may run a few ms late.
    assert 5 < window <= RUN_S * SCALE + 0.5
    assert n_market >= 0.5 * window / max(0.25, 0.1 * SCALE)
    assert data["missing"] == {} or set(data["missing"]) <= {"markouts"}
    # Every fill but those in the last second has its 1 s markout and a mid at the fill.
    mk = data["markouts"]["1s"]
    assert mk["bps"]["n"] + sum(mk["missing"].values()) == len(fill_recs)
    assert set(mk["missing"]) <= {"after the run's end"}
    assert data["spread_captured"]["mid_from_fill_record"] == len(fill_recs)
    assert 0 < data["uptime"]["bid"] <= 1 and 0 < data["uptime"]["ask"] <= 1
    lat = data["latency"]
    assert lat["strategy"]["book>quote"]["n"] > 0 and lat["order_entry"]["total"]["n"] > 0
    assert sum(lat["strategy"]["book>quote"]["counts"]) == lat["strategy"]["book>quote"]["n"]

    # The command, as an operator runs it.
    got = subprocess.run(
        [sys.executable, "-m", "mmfast.cli", "report", str(r.journal), "-o", str(tmp_path / "cli")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert got.returncode == 0, got.stderr
    assert f"Fills            {len(fill_recs)} (" in got.stdout
    assert f"report: {tmp_path / 'cli' / 'report.html'}" in got.stdout
    cli = orjson.loads((tmp_path / "cli" / "report.json").read_bytes())
    assert cli["fills"] == data["fills"] and cli["pnl"] == data["pnl"]
