"""``mmfast backtest``: the bot (the market_making strategy, the connector, the compiled core)
against the simulator replaying a tape, on the virtual clock.

A small Tardis tape whose trades reach the bot's quotes gives known fills (a queue fill past
the queue ahead, a fill through the price); two runs of a synthetic tape give the same fills
and the same journal; bad input is refused before anything runs, a tape that breaks midway
ends the run with an error; the command works as a process."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from tardis_csv import T0, write_book, write_trades

from mmfast.backtest.run import BacktestOptions, BacktestResult, run_backtest
from mmfast.tape.synthetic import write_synthetic_tape

REPO = Path(__file__).resolve().parent.parent.parent

CONFIG = """
[venue]
mode = "sim"

[market]
symbol = "ETH"
market_id = 0

[strategy]
name = "market_making"

[strategy.market_making]
mode = "fixed"
bid_spread_ticks = {spread}
ask_spread_ticks = {spread}
levels = {levels}
level_spread_ticks = 2
order_amount_lots = 100
amount_step_lots = 0
refresh_tolerance_ticks = 1
size_tolerance_lots = 10
max_order_age_s = 240.0
filled_order_delay_s = 0.0
order_expiry_s = 305
inventory_target_lots = 0
inventory_skew_ticks = {skew}
min_spread_ticks = 1
reference_price = "mid"

[risk]
max_position_lots = 2000
max_order_notional_usdc = 2000
max_open_orders = 20
price_band_bps = 200
order_rate_cap = 6000
order_rate_window_s = 60.0
margin_headroom = 0.2

[risk.kill_switch]
max_drawdown_usdc = 200.0
max_fills_per_min = 120
max_reject_rate = 0.5
reject_min_samples = 10
action = "pause"
pause_cooldown_s = 30.0

[run]
tick_interval_ms = 100
"""


def _config(tmp: Path, spread: int = 5, levels: int = 1, skew: int = 0, market: str = "ETH") -> str:
    p = tmp / f"bot-{spread}-{levels}-{skew}-{market}.toml"
    p.write_text(
        CONFIG.format(spread=spread, levels=levels, skew=skew).replace(
            'symbol = "ETH"', f'symbol = "{market}"'
        )
    )
    return str(p)


def _run(tape: list[Path], config: str, out: Path, **kw: Any) -> tuple[BacktestResult, str, str]:
    o, e = io.StringIO(), io.StringIO()
    res = run_backtest(
        BacktestOptions(
            tape=tuple(str(p) for p in tape), config=config, out_dir=str(out), progress=False, **kw
        ),
        out=o,
        err=e,
    )
    return res, o.getvalue(), e.getvalue()


def _tardis(tmp: Path) -> list[Path]:
    """A quiet ETH book (mid 3000.00) whose trades reach the bot's quotes at 2999.95 and
    3000.05 (5 ticks from the mid): a seller eats the 0.5000 ahead of our bid, then 0.0100
    more (60 of our 100 lots: the queue fill); later a buyer trades at 3000.10, through our
    ask at 3000.05 (all of it)."""
    book = write_book(
        tmp / "lighter_incremental_book_L2_2026-01-01_ETH.csv.gz",
        [
            (0, True, "bid", "2999.95", "0.5000"),
            (0, True, "bid", "2999.90", "1.0000"),
            (0, True, "ask", "3000.05", "0.5000"),
            (0, True, "ask", "3000.10", "1.0000"),
            (2_000_000, False, "bid", "2999.95", "0.0040"),
            (3_000_000, False, "bid", "2999.95", "0"),
            (7_000_000, False, "bid", "2999.90", "1.5000"),
        ],
        gz=True,
    )
    trades = write_trades(
        tmp / "lighter_trades_2026-01-01_ETH.csv",
        [
            (2_000_000, "a1", "sell", "2999.95", "0.4960"),
            (3_000_000, "a2", "sell", "2999.95", "0.0100"),
            (5_000_000, "a3", "buy", "3000.10", "0.2000"),
        ],
    )
    return [book, trades]


def test_a_tardis_tape_fills_the_quotes_by_the_queue_model(tmp_path: Path) -> None:
    res, out, err = _run(
        _tardis(tmp_path), _config(tmp_path), tmp_path / "out", price_decimals=2, size_decimals=4
    )
    assert res.exit_code == 0, out + err
    ms = T0 // 1000
    assert res.fills == [
        {
            "trade_id": res.fills[0]["trade_id"],
            "timestamp_ms": ms + 3000,
            "market": 0,
            "side": "buy",
            "price": "2999.95",
            "size": "0.0060",
            "fee_usdc": "0.000504",
            "liquidity": "maker",
        },
        {
            "trade_id": res.fills[0]["trade_id"] + 2,
            "timestamp_ms": ms + 5000,
            "market": 0,
            "side": "sell",
            "price": "3000.05",
            "size": "0.0100",
            "fee_usdc": "0.000840",
            "liquidity": "maker",
        },
    ]
    r = res.replay
    assert (r["queue_fills"], r["through_fills"], r["crossing_fills"]) == (1, 1, 0)
    assert r["trades"] == 3 and r["books"] == 4 and r["snapshots"] == 1
    assert res.simulated_s == 7.0
    # The bot saw the same fills (its journal), and stopped clean at the tape's end.
    journal = [orjson.loads(x) for x in Path(res.journal).read_bytes().splitlines()]
    fills = [(j["side"], j["price"], j["size"], j["ts_ms"]) for j in journal if j["kind"] == "fill"]
    assert fills == [("BUY", 299_995, 60, ms + 3000), ("SELL", 300_005, 100, ms + 5000)]
    stop = [j for j in journal if j["kind"] == "run_stop"]
    assert stop[0]["reason"] == "tape ended" and stop[0]["orders_left"] == 0
    assert "tape fills   queue 1  through 1  crossing 0  (queue model risk_averse)" in out
    outdir = tmp_path / "out"
    assert (outdir / "fills.csv").read_text().splitlines()[1:] == [
        f"{f['trade_id']},{f['timestamp_ms']},0,{f['side']},{f['price']},{f['size']},"
        f"{f['fee_usdc']},maker"
        for f in res.fills
    ]
    summary = orjson.loads((outdir / "backtest.json").read_bytes())
    assert summary["fills"] == 2 and summary["fills_sha256"] == res.fills_digest


def test_two_runs_of_a_tape_give_the_same_fills_and_journal(tmp_path: Path) -> None:
    tape = tmp_path / "syn.tape"
    write_synthetic_tape(tape, seconds=45, seed=3)
    cfg = _config(tmp_path, spread=3, levels=2, skew=2)
    runs = []
    for i in range(2):
        res, out, err = _run([tape], cfg, tmp_path / f"out{i}", seed=5)
        assert res.exit_code == 0, out + err
        journal = [orjson.loads(x) for x in Path(res.journal).read_bytes().splitlines()]
        for j in journal:
            if j["kind"] == "summary":  # what the host measured: the run's real duration
                for k in ("elapsed_s", "latency", "latency_hist"):  # and its code's speed
                    assert k in j
                    del j[k]
        runs.append((res, journal))
    (a, ja), (b, jb) = runs
    assert len(a.fills) >= 10  # the tape trades through the quotes: there is something to compare
    assert a.fills == b.fills and a.fills_digest == b.fills_digest
    assert ja == jb
    assert a.replay == b.replay
    # Another seed is another run (the venue's ids and speed-bump draws come from it).
    c, _, _ = _run([tape], cfg, tmp_path / "out2", seed=6)
    assert [f["trade_id"] for f in c.fills] != [f["trade_id"] for f in a.fills]


def test_bad_input_is_refused_before_anything_runs(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    res, _, err = _run([tmp_path / "missing.tape"], cfg, tmp_path / "o1")
    assert res.exit_code == 2 and "no such file" in err
    tape = tmp_path / "syn.tape"
    write_synthetic_tape(tape, seconds=2, seed=1)
    res, _, err = _run([tape], _config(tmp_path, market="BTC"), tmp_path / "o2")
    assert res.exit_code == 2
    assert "the config trades BTC (0) but the tape has ETH (0)" in err
    bad = tmp_path / "bad.toml"
    bad.write_text("[strategy.market_making]\nlevels = -1\n")
    res, _, err = _run([tape], str(bad), tmp_path / "o3")
    assert res.exit_code == 2 and "levels" in err
    assert not (tmp_path / "o3" / "journal.jsonl").exists()
    with pytest.raises(ValueError, match="speed"):
        BacktestOptions(tape=(str(tape),), speed=0)
    # A second backtest into the same output directory is refused (nothing overwritten).
    ok, _, _ = _run([tape], cfg, tmp_path / "o4")
    assert ok.exit_code == 0
    before = (tmp_path / "o4" / "journal.jsonl").read_bytes()
    res, _, err = _run([tape], cfg, tmp_path / "o4")
    assert res.exit_code == 2 and "holds a backtest already" in err
    assert (tmp_path / "o4" / "journal.jsonl").read_bytes() == before


def test_a_tape_that_breaks_midway_ends_the_run_with_an_error(tmp_path: Path) -> None:
    tape = tmp_path / "syn.tape"
    write_synthetic_tape(tape, seconds=20, seed=2)
    data = bytearray(tape.read_bytes())
    data[len(data) * 3 // 4] ^= 0xFF  # a corrupt frame three quarters in
    broken = tmp_path / "broken.tape"
    broken.write_bytes(bytes(data))
    res, out, _ = _run([broken], _config(tmp_path), tmp_path / "out")
    assert res.exit_code == 1
    assert "the tape broke" in res.error and "corrupt tape" in res.error
    assert 0 < res.simulated_s < 20
    assert "error        the tape broke" in out
    stop = [
        orjson.loads(x) for x in Path(res.journal).read_bytes().splitlines() if b'"run_stop"' in x
    ]
    assert stop[0]["reason"] == "tape error" and stop[0]["orders_left"] == 0


def test_backtest_command(tmp_path: Path) -> None:
    tape = tmp_path / "syn.tape"
    write_synthetic_tape(tape, seconds=10, seed=4)
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = tmp_path / "out"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mmfast.cli",
            "backtest",
            str(tape),
            "--config",
            _config(tmp_path, spread=3),
            "-o",
            str(out),
            "--seed",
            "2",
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "=== mmfast run summary ===" in proc.stdout
    assert "=== mmfast backtest ===" in proc.stdout
    assert "simulated    10.0 s of tape" in proc.stdout
    assert {p.name for p in out.iterdir()} >= {
        "journal.jsonl",
        "fills.csv",
        "backtest.json",
        "report.html",
        "report.json",
    }
    assert f"report       {out / 'report.html'}" in proc.stdout
