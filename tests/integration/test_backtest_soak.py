"""Soak: ten minutes of the simulator's market recorded with ``mmfast record``, then backtested
twice: the whole tape replayed, the bot filled, the same fills and journal both times. The
speed (simulated seconds per wall and per CPU second) is printed, not asserted (a wall-clock
limit would measure the machine). ``pytest -m soak -s tests/integration/test_backtest_soak.py``.
"""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import orjson
import pytest
from test_backtest import _config

from mmfast.backtest.run import BacktestOptions, run_backtest
from mmfast.sim.config import FlowConfig, SimConfig
from mmfast.sim.thread import SimThread
from mmfast.tape import open_tape
from mmfast.tape.record import Recorder, RecordOptions

MINUTES = 10


@pytest.mark.soak
def test_ten_minutes_recorded_then_backtested_twice(tmp_path: Path) -> None:
    tape = tmp_path / "sim.tape"
    st = SimThread(SimConfig(seed=11, flow=FlowConfig(), tier="premium"))
    st.start()
    try:
        rec = Recorder(
            RecordOptions(
                rest_url=st.rest_url,
                ws_url=st.ws_url,
                markets=("ETH", "BTC"),
                out=tape,
                duration_s=MINUTES * 60,
                status_interval_s=0,
            )
        )
        res = asyncio.run(asyncio.wait_for(rec.run(), MINUTES * 60 + 60))
    finally:
        st.stop()
    assert res.error == "" and res.gaps == 0
    read = open_tape(tape)
    n = sum(1 for _ in read.events())
    assert read.stats.ended.startswith("duration") and n > 10_000
    cfg = _config(tmp_path, spread=3, levels=2, skew=2)
    runs = []
    for i in range(2):
        out, err = io.StringIO(), io.StringIO()
        r = run_backtest(
            BacktestOptions(
                tape=(str(tape),),
                config=cfg,
                seed=3,
                out_dir=str(tmp_path / f"out{i}"),
                progress=False,
            ),
            out=out,
            err=err,
        )
        assert r.exit_code == 0, out.getvalue() + err.getvalue()
        journal = [orjson.loads(x) for x in Path(r.journal).read_bytes().splitlines()]
        for j in journal:
            if j["kind"] == "summary":
                for k in ("elapsed_s", "latency", "latency_hist"):
                    j.pop(k, None)
        runs.append((r, journal))
        print(
            f"\nbacktest {i + 1}: {r.simulated_s:.1f} s of tape ({n} events of two markets, "
            f"{r.replay['events']} of ETH replayed) in {r.wall_s:.1f} s wall "
            f"({r.speed:.1f}x), {r.cpu_s:.1f} s CPU ({r.simulated_s / r.cpu_s:.1f}x); "
            f"{len(r.fills)} fills, sha256 {r.fills_digest[:16]}"
        )
    (a, ja), (b, jb) = runs
    assert abs(a.simulated_s - MINUTES * 60) < 1.0
    assert len(a.fills) > 0
    assert a.fills == b.fills and ja == jb
