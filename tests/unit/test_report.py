"""mmfast report on hand-written journals whose figures are worked out here by hand: markouts,
spread captured, quote uptime, the PnL path, rejects, denials, latency; malformed lines, old
journals (no market records, no histograms), journals without run_start, journals holding
several runs, a crashed run; the command and its exit codes; report.json without matplotlib.

The journal (ETH, price 2 decimals, size 4; times in s since run_start at T0):

- market records every 0.25 s from 0 to 80 s: mid 3000.00 (bid 2999.90, ask 3000.10) before
  5 s, 3001.00 (3000.90 / 3001.10) from 5 s on; mark = mid;
- fills: BUY 0.0100 @ 2999.95 at 1 s (fee 10 micro-USDC, no mid in the record: the market
  record's), SELL 0.0050 @ 3001.20 at 12 s (mid 3001.00 in the record), SELL 0.0050 @ 3001.00
  at 75 s (mid in the record); position 100, 50, 0 lots;
- our orders: bids rest [0.5, 20.5] u [10, 30] u [60, 80 (never ended)], asks [0.5, 12] u
  [12.5, 70.5]; shutdown at 80 s, run_stop 80.5 s.
"""

from __future__ import annotations

import argparse
import io
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from mmfast.cli import main as cli_main
from mmfast.core.latency import HIST_BOUNDS_NS
from mmfast.report import ReportError, make_report, read_journal, write_report
from mmfast.report.command import main as report_main
from mmfast.report.figures import compute
from mmfast.report.plots import PLOTS, available

T0 = 7_000_000_000  # mono_ns of run_start
WALL0 = 1_796_600_000_000
NS = 1_000_000_000
HAVE_MPL = not available()


def rec(kind: str, t: float, **f: Any) -> dict[str, Any]:
    return {"ts_ms": WALL0 + round(t * 1000), "mono_ns": T0 + round(t * NS), "kind": kind, **f}


def market_records(until: float = 80.0) -> list[dict[str, Any]]:
    out = []
    for i in range(int(until * 4) + 1):
        t = i / 4
        bid, ask = (299990, 300010) if t < 5 else (300090, 300110)
        out.append(
            rec(
                "market",
                t,
                in_sync=True,
                bid=bid,
                ask=ask,
                bid_size=500,
                ask_size=500,
                mid=(bid + ask) // 2,
                mark=(bid + ask) // 2,
                our_bid=None,
                our_ask=None,
                position=0,
                pnl_usdc=0.0,
            )
        )
    return out


def order(t: float, coi: int, side: str, status: str, reason: str | None = None) -> dict[str, Any]:
    return rec(
        "order",
        t,
        coi=coi,
        side=side,
        price=300000,
        size=100,
        filled=0,
        status=status,
        reduce_only=False,
        reason=reason,
        px="3000.00",
        qty="0.0100",
        filled_qty="0.0000",
    )


def hist(counts: dict[int, int], sum_us: float) -> dict[str, Any]:
    c = [0] * (len(HIST_BOUNDS_NS) + 1)
    for i, n in counts.items():
        c[i] = n
    return {"counts": c, "sum_us": sum_us}


def journal_records(
    *, with_market: bool = True, with_summary: bool = True, with_start: bool = True
) -> list[dict[str, Any]]:
    r: list[dict[str, Any]] = [rec("guard_started", -0.01, pid=1, api_key_index=5)]
    if with_start:
        r.append(
            rec(
                "run_start",
                0,
                mode="sim",
                market=0,
                symbol="ETH",
                strategy="market_making",
                price_decimals=2,
                size_decimals=4,
                time_scale=1.0,
            )
        )
    r += [
        rec("order_sent", 0.2, coi=c, side=s, price=300000, size=100, px="3000.00", qty="0.0100")
        for c, s in ((1, "BUY"), (2, "SELL"))
    ]
    r += [order(0.5, 1, "BUY", "OPEN"), order(0.5, 2, "SELL", "OPEN")]
    r.append(
        rec(
            "fill",
            1.0,
            trade_id=11,
            coi=1,
            side="BUY",
            price=299995,
            size=100,
            fee=10,
            maker=True,
            position=100,
            px="2999.95",
            qty="0.0100",
        )
    )
    r += [order(10, 3, "BUY", "OPEN"), order(12, 2, "SELL", "FILLED")]
    r.append(
        rec(
            "fill",
            12.0,
            trade_id=12,
            coi=2,
            side="SELL",
            price=300120,
            size=50,
            fee=5,
            maker=True,
            position=50,
            mid=300100,
            px="3001.20",
            qty="0.0050",
        )
    )
    r += [
        order(12.1, 4, "SELL", "PENDING_NEW"),
        order(12.5, 4, "SELL", "OPEN"),
        order(15, 3, "BUY", "PARTIALLY_FILLED"),
        order(20.5, 1, "BUY", "CANCELED"),
        order(30, 3, "BUY", "CANCELED"),
        order(60, 5, "BUY", "OPEN"),
        order(70.5, 4, "SELL", "CANCELED"),
        order(71, 6, "SELL", "REJECTED", "rejected 21706: invalid order base amount"),
        order(72, 7, "SELL", "REJECTED", "rejected: its nonce passed unused"),
    ]
    r += [
        rec("order_modify", 13, coi=3, price=300010, size=100),
        rec("order_modify", 14, coi=3, price=300020, size=100),
        rec("order_cancel", 20.4, coi=1),
    ]
    r += [
        rec("denied", 40, side="BUY", price=300000, size=100, reason="MAX_POSITION"),
        rec("denied", 41, side="BUY", price=300000, size=100, reason="MAX_POSITION"),
        rec("denied", 42, op="modify", coi=3, price=300000, size=100, reason="MAX_OPEN_ORDERS"),
        rec("send_error", 43, op="place", side="BUY", price=1, size=1, error="X"),
        rec("kill_switch", 50, state="paused", action="pause", reason="max_fills"),
        rec("kill_switch", 55, state="armed", action="resume", reason="max_fills"),
        rec("pull_quotes", 56, reason="book stale"),
    ]
    r.append(
        rec(
            "fill",
            75.0,
            trade_id=13,
            coi=4,
            side="SELL",
            price=300100,
            size=50,
            fee=5,
            maker=False,
            position=0,
            mid=300100,
            px="3001.00",
            qty="0.0050",
        )
    )
    if with_market:
        r += market_records()
    r.append(rec("shutdown", 80.0, market=0, reason="duration"))
    r.append(rec("run_stop", 80.5, reason="duration", orders_left=0))
    if with_summary:
        bounds = [b / 1e3 for b in HIST_BOUNDS_NS]
        r.append(
            rec(
                "summary",
                80.6,
                elapsed_s=80.6,
                stop_reason="duration",
                orders_left=0,
                exit_code=0,
                fills=3,
                pnl_usdc=0.01148,
                mark=300100,
                funding_usdc=0.0,
                latency={"book>quote": {"n": 10, "p50_us": 9.0, "p99_us": 40.0}},
                reject_codes={"21706": 1, "21711": 2},
                latency_hist={
                    "bounds_us": bounds,
                    "strategy": {"book>quote": hist({3: 5, 4: 3, 5: 2}, 200.0)},
                    "order_entry": {"ack": hist({12: 4}, 20_000.0)},
                },
            )
        )
    r.sort(key=lambda x: x["mono_ns"])
    return r


def old_records() -> list[dict[str, Any]]:
    """The journal as runs wrote it before `market` records, fill mids and the summary's
    report fields."""
    recs = journal_records(with_market=False)
    for r in recs:
        r.pop("mid", None)
        if r["kind"] == "summary":
            for k in ("latency_hist", "mark", "reject_codes", "funding_usdc"):
                r.pop(k)
    return recs


def write(path: Path, records: list[dict[str, Any]], tail: bytes = b"") -> Path:
    path.write_bytes(b"".join(orjson.dumps(x) + b"\n" for x in records) + tail)
    return path


def figures(path: Path, run: int = -1) -> Any:
    jf = read_journal(path)
    return compute(jf, jf.runs[run])


@pytest.fixture
def journal(tmp_path: Path) -> Path:
    return write(tmp_path / "run.jsonl", journal_records())


# ------------------------------------------------------------------ the figures
def test_markouts_by_hand(journal: Path) -> None:
    d = figures(journal).data
    per = d["per_fill"]
    # BUY 2999.95: mid 3000.00 at 2 s (+5 ticks), 3001.00 at 11 s and 61 s (+105 ticks).
    assert per[0]["markout_1s_bps"] == pytest.approx(5 / 299995 * 1e4)
    assert per[0]["markout_10s_bps"] == pytest.approx(105 / 299995 * 1e4)
    assert per[0]["markout_60s_bps"] == pytest.approx(105 / 299995 * 1e4)
    assert per[0]["markout_1s_usdc"] == pytest.approx(5 * 100 / 1e6)
    assert per[0]["markout_60s_usdc"] == pytest.approx(105 * 100 / 1e6)
    # SELL 3001.20: mid 3001.00 after it at every horizon: +20 ticks.
    for h in (1, 10, 60):
        assert per[1][f"markout_{h}s_bps"] == pytest.approx(20 / 300120 * 1e4)
        assert per[1][f"markout_{h}s_usdc"] == pytest.approx(20 * 50 / 1e6)
    # SELL 3001.00 at 75 s: 0 at 1 s; 10 s and 60 s are after the last mid (80 s).
    assert per[2]["markout_1s_bps"] == 0
    assert per[2]["markout_10s_bps"] is None and per[2]["markout_60s_bps"] is None
    m = d["markouts"]
    assert m["1s"]["bps"]["n"] == 3
    assert m["1s"]["bps"]["mean"] == pytest.approx((5 / 299995 * 1e4 + 20 / 300120 * 1e4 + 0) / 3)
    assert m["1s"]["usdc_total"] == pytest.approx((500 + 1000 + 0) / 1e6)
    assert m["60s"]["bps"]["n"] == 2
    assert m["60s"]["usdc_total"] == pytest.approx((10500 + 1000) / 1e6)
    notional_60 = (299995 * 100 + 300120 * 50) / 1e6
    assert m["60s"]["volume_weighted_bps"] == pytest.approx(11500 / 1e6 / notional_60 * 1e4)
    assert m["60s"]["missing"] == {"after the run's end": 1}


def test_spread_captured_by_hand(journal: Path) -> None:
    d = figures(journal).data
    sc = d["spread_captured"]
    # BUY 2999.95 vs mid 3000.00 (market record): +5; SELL 3001.20 vs 3001.00: +20;
    # SELL 3001.00 vs 3001.00: 0.
    want = [5 / 299995 * 1e4, 20 / 300120 * 1e4, 0.0]
    assert [f["spread_captured_bps"] for f in d["per_fill"]] == pytest.approx(want)
    assert sc["bps"]["mean"] == pytest.approx(sum(want) / 3)
    assert sc["usdc_total"] == pytest.approx((5 * 100 + 20 * 50) / 1e6)
    assert sc["buy_bps"]["n"] == 1 and sc["sell_bps"]["n"] == 2
    assert sc["mid_from_fill_record"] == 2 and sc["mid_from_market_record"] == 1
    assert sc["bps"]["positive_share"] == pytest.approx(2 / 3)


def test_uptime_by_hand(journal: Path) -> None:
    f = figures(journal)
    up = f.data["uptime"]
    # Window: run_start (0) to shutdown (80 s).
    assert up["window_s"] == pytest.approx(80.0)
    assert up["bid"] == pytest.approx((30 - 0.5 + 80 - 60) / 80)  # 0.61875
    assert up["ask"] == pytest.approx((12 - 0.5 + 70.5 - 12.5) / 80)  # 0.86875
    # Both: [0.5, 12] + [12.5, 30] + [60, 70.5]
    assert up["both"] == pytest.approx((11.5 + 17.5 + 10.5) / 80)
    s = f.series
    assert s.uptime_edges[0] == 0 and s.uptime_edges[-1] == pytest.approx(80.0)
    assert up["bucket_s"] == pytest.approx(1.0)  # 80 s / 100 buckets < 1 s: 1 s buckets
    assert len(s.uptime_bid) == 80
    assert s.uptime_bid[0] == pytest.approx(0.5) and s.uptime_bid[40] == 0
    assert s.uptime_ask[12] == pytest.approx(0.5)  # [12, 13): gone 12 -> 12.5


def test_pnl_path_and_parts_by_hand(journal: Path) -> None:
    f = figures(journal)
    p = f.data["pnl"]
    # Long 100 @ 2999.95; sell 50 @ 3001.20 (+125 x 50) and 50 @ 3001.00 (+105 x 50).
    assert p["realized_usdc"] == pytest.approx((125 * 50 + 105 * 50) / 1e6)
    assert p["fees_usdc"] == pytest.approx(20 / 1e6)
    assert p["unrealized_usdc"] == 0
    assert p["total_usdc"] == pytest.approx(0.0115 - 0.00002)
    assert p["bot_reported_usdc"] == pytest.approx(p["total_usdc"])
    s = f.series
    # At 5 s (mid 3001.00, long 100 @ 2999.95): 105 x 100 ticks x lots - 10 micro of fees.
    i = max(k for k, t in enumerate(s.pnl_t) if t == pytest.approx(5.0))
    assert s.pnl_total[i] == pytest.approx(0.0105 - 0.00001)
    assert s.pnl_realized[i] == pytest.approx(-0.00001)
    # Just before the first fill: flat.
    j = max(k for k, t in enumerate(s.pnl_t) if t < 1.0)
    assert s.pnl_total[j] == 0 and s.pnl_realized[j] == 0
    inv = f.data["inventory"]
    assert inv["max_abs_lots"] == 100 and inv["max_abs_base"] == pytest.approx(0.01)
    assert inv["final_lots"] == 0


def test_counts_rejects_denials_latency(journal: Path) -> None:
    d = figures(journal).data
    assert d["fills"] | {"notional_usdc": 0} == {
        "count": 3,
        "buys": 1,
        "sells": 2,
        "maker": 2,
        "taker": 1,
        "volume_base": 0.02,
        "volume_lots": 200,
        "notional_usdc": 0,
    }
    assert d["fills"]["notional_usdc"] == pytest.approx(
        (299995 * 100 + 300120 * 50 + 300100 * 50) / 1e6
    )
    assert d["orders"] == {
        "placed": 2,
        "modified": 2,
        "cancelled": 3,
        "cancel_requests": 1,
        "filled": 1,
        "rejected": 2,
        "denied": 3,
        "send_errors": 1,
    }
    assert d["rejects"] == {
        "orders_by_code": {"21706": 1, "no code": 1},
        "txs_by_code": {"21706": 1, "21711": 2},
        "orders": 2,
        "txs": 3,
    }
    assert d["denials"] == {
        "by_reason": {"MAX_OPEN_ORDERS": 1, "MAX_POSITION": 2},
        "by_op": {"place": 2, "modify": 1},
        "total": 3,
    }
    assert d["kill_switch"] == {"trips": 1, "reasons": ["max_fills"]}
    assert d["quote_pulls"] == 1
    bq = d["latency"]["strategy"]["book>quote"]
    # 5 samples <= 10 us, 3 <= 20 us, 2 <= 50 us: p50 in the 10 us bucket, p99 in 50 us.
    assert (bq["n"], bq["p50_us_le"], bq["p99_us_le"], bq["mean_us"]) == (10, 10.0, 50.0, 20.0)
    assert bq["recent_p50_us"] == 9.0
    assert d["latency"]["order_entry"]["ack"]["p99_us_le"] == 10_000.0  # bucket 12: 10 ms
    assert d["run"]["duration_s"] == pytest.approx(80.5)
    assert d["run"]["quoting_window_s"] == pytest.approx(80.0)
    assert d["run"]["started_utc"] == "2026-12-06T23:33:20Z"
    assert d["missing"] == {} and d["notes"] == []


def test_summary_table_in_human_units(journal: Path) -> None:
    rows = dict(figures(journal).rows)
    assert rows["Volume"] == "0.0200 ETH (60.01 USDC)"  # 29.9995 + 15.006 + 15.005
    assert rows["Max |inventory|"] == "0.0100 ETH (final 0.0000)"
    assert rows["Realized PnL"] == "+0.011500 USDC"
    assert rows["Fees"] == "0.000020 USDC paid"
    assert rows["Quote uptime"] == "bid 61.9%, ask 86.9%, both 49.4%"
    # (105 / 2999.95 + 20 / 3001.20) / 2 x 1e4 / 100 = 2.08 bps; 10500 + 1000 micro-USDC
    assert rows["Markout 10 s"] == (
        "mean +2.08 bps, median +2.08 bps over 2 fills; total +0.011500 USDC"
    )
    assert rows["Orders"] == (
        "placed 2, modified 2, cancelled 3 (cancel requests 1), send errors 1"
    )
    assert rows["Rejects"] == (
        "orders rejected by the venue 2 (21706: 1, no code: 1); txs refused 3 (21706: 1, 21711: 2)"
    )
    assert rows["Risk denials"] == "3 (MAX_OPEN_ORDERS: 1, MAX_POSITION: 2)"
    assert rows["Kill switch"] == "trips 1 (max_fills); quote pulls 1"
    assert rows["Fills"] == "3 (buys 1, sells 2; maker 2, taker 1)"


# ------------------------------------------------------------------ bad and old journals
def test_truncated_last_line_and_bad_lines_are_skipped_and_counted(tmp_path: Path) -> None:
    good = journal_records()
    lines = [orjson.dumps(x) for x in good]
    lines.insert(5, b"{not json")
    lines.insert(9, b"[1, 2, 3]")
    lines.insert(12, b'{"ts_ms": 1, "mono_ns": 2}')  # no kind
    lines.insert(15, b"\xff\xfe garbage")
    lines.insert(20, b"")  # blank: not a line of the journal
    lines.insert(21, b'{"kind": "fill"}')  # no time
    data = b"\n".join(lines) + b'\n{"ts_ms": 1796600080700, "mono_ns": 87'  # cut short
    p = tmp_path / "bad.jsonl"
    p.write_bytes(data)
    jf = read_journal(p)
    assert jf.malformed_count == 6
    whys = [m.why for m in jf.malformed]
    assert whys[-1].startswith("truncated last line")
    assert any(w.startswith("not JSON") for w in whys)
    assert "a JSON list, not a record" in whys and "no 'kind'" in whys
    assert "fill record without a time (mono_ns, ts_ms)" in whys
    f = compute(jf, jf.runs[-1])
    # Every figure as from the clean journal; the note says what was skipped and where.
    clean = figures(write(tmp_path / "clean.jsonl", good)).data
    for key in ("fills", "pnl", "markouts", "uptime", "orders", "rejects", "denials"):
        assert f.data[key] == clean[key], key
    assert f.data["journal"]["malformed_lines"] == 6
    assert f.notes[0].startswith("6 malformed lines skipped of ")
    assert f"line {len(lines) + 1}: truncated last line" in f.notes[0]


def test_old_journal_without_market_records_or_histograms(tmp_path: Path) -> None:
    recs = old_records()
    p = write(tmp_path / "old.jsonl", recs)
    f = figures(p)
    d = f.data
    assert set(d["missing"]) == {"price_path", "markouts", "spread_captured", "latency"}
    assert d["markouts"]["1s"]["bps"]["n"] == 0
    assert d["markouts"]["1s"]["missing"] == {"no mid path": 3}
    assert d["pnl"]["realized_usdc"] == pytest.approx(0.0115)
    assert d["pnl"]["unrealized_usdc"] == 0  # flat at the end: no mark needed
    assert d["uptime"]["bid"] == pytest.approx(0.61875)  # from the order records alone
    assert any("no `market` records" in n for n in f.notes)
    assert any(n.startswith("latency histograms: the summary record has no") for n in f.notes)
    rows = dict(f.rows)
    assert rows["Markout 1 s"] == "not computed (3 no mid path)"
    assert rows["Spread captured"] == "not computed"
    # Open at the end with no mark anywhere: unrealized not computed, and said so.
    for r in recs:
        if r["kind"] == "fill" and r["trade_id"] == 13:
            recs.remove(r)
            break
    f2 = figures(write(tmp_path / "old2.jsonl", recs))
    assert f2.data["pnl"]["unrealized_usdc"] is None and f2.data["pnl"]["total_usdc"] is None
    assert any(n.startswith("unrealized PnL: no mark price") for n in f2.notes)


def test_no_run_start_takes_decimals_from_human_units(tmp_path: Path) -> None:
    p = write(tmp_path / "headless.jsonl", journal_records(with_start=False))
    f = figures(p)
    assert (f.units.price_decimals, f.units.size_decimals) == (2, 4)
    assert any("taken from the human units" in n for n in f.notes)
    assert f.data["fills"]["count"] == 3
    bare = [{"ts_ms": 1, "mono_ns": 1, "kind": "market", "bid": 1, "ask": 2}]
    with pytest.raises(ReportError, match="no run_start with the market's decimals"):
        figures(write(tmp_path / "bare.jsonl", bare))


def test_crashed_run_without_stop_or_summary(tmp_path: Path) -> None:
    recs = [r for r in journal_records() if r["kind"] not in ("shutdown", "run_stop", "summary")]
    f = figures(write(tmp_path / "crash.jsonl", recs))
    d = f.data
    assert d["run"]["clean_stop"] is False
    assert any(n.startswith("no run_stop record") for n in f.notes)
    assert d["missing"]["latency"] == "no summary record (the run did not end cleanly)"
    assert d["run"]["duration_s"] == pytest.approx(80.0)  # up to the last record
    assert d["fills"]["count"] == 3


def test_several_runs_in_one_journal(tmp_path: Path) -> None:
    first = journal_records()
    second = [dict(r) for r in journal_records()]
    for r in second:  # a later process: its own clock
        r["mono_ns"] += 500 * NS
        r["ts_ms"] += 600_000
    second = [r for r in second if r["kind"] != "fill" or r["trade_id"] != 13]
    p = write(tmp_path / "shared.jsonl", first + second)
    jf = read_journal(p)
    assert len(jf.runs) == 2
    # The second run's guard_started (written before its run_start) went with it.
    assert jf.runs[1].counts["guard_started"] == 1 and jf.runs[0].counts["guard_started"] == 1
    assert jf.runs[1].first_line == len(first) + 1
    last = compute(jf, jf.runs[-1])
    assert last.data["fills"]["count"] == 2 and last.data["run"]["index"] == 2
    assert (
        last.notes[0] == "the journal holds 2 runs; this report is of run 2 (--run N for another)"
    )
    assert compute(jf, jf.runs[0]).data["fills"]["count"] == 3
    assert make_report(p, tmp_path / "r1", run=1, plots=False).figures.data["run"]["index"] == 1
    for bad in (0, 3, -3):
        with pytest.raises(ReportError, match=r"holds 2 runs: --run must be 1\.\.2 "):
            make_report(p, tmp_path / "rx", run=bad, plots=False)


@pytest.mark.parametrize("content", [None, b"", b"\n\n", b"{oops\n"])
def test_journal_that_cannot_be_reported(tmp_path: Path, content: bytes | None) -> None:
    p = tmp_path / "j.jsonl"
    if content is not None:
        p.write_bytes(content)
    with pytest.raises(ReportError, match=r"no journal at|holds no journal record"):
        write_report(p, tmp_path / "out")
    assert not (tmp_path / "out").exists()  # nothing written
    with pytest.raises(ReportError, match="is a directory"):
        read_journal(tmp_path)


# ------------------------------------------------------------------ files and the command
def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR", path
    w, h = struct.unpack(">II", head[16:24])
    return w, h


@pytest.mark.skipif(not HAVE_MPL, reason="matplotlib not installed (pip install -e '.[report]')")
def test_report_files(journal: Path, tmp_path: Path) -> None:
    out = tmp_path / "rep"
    html = write_report(journal, out)
    assert html == out / "report.html"
    data = orjson.loads((out / "report.json").read_bytes())
    assert data["fills"]["count"] == 3 and set(data["plots"]) == set(PLOTS)
    for name, (file, *_r) in PLOTS.items():
        w, h = _png_size(out / file)
        assert 800 <= w <= 2000 and 350 <= h <= 1200, (name, w, h)
        assert f'src="{file}"' in html.read_text()
        assert (out / file).stat().st_mode & 0o777 == 0o600
    page = html.read_text()
    assert page.index('<table class="summary">') < page.index("<h2>")  # the table first
    assert "Realized PnL</td><td>+0.011500 USDC" in page
    assert "21706" in page and "MAX_POSITION" in page


@pytest.mark.skipif(not HAVE_MPL, reason="matplotlib not installed (pip install -e '.[report]')")
def test_old_report_plots_removed_when_not_drawn_again(journal: Path, tmp_path: Path) -> None:
    out = tmp_path / "rep"
    write_report(journal, out)
    assert (out / "markouts.png").exists()
    res = make_report(write(tmp_path / "old.jsonl", old_records()), out)
    assert not (out / "markouts.png").exists() and not (out / "latency.png").exists()
    assert set(res.skipped) == {"markouts", "spread_captured", "latency"}
    page = res.html.read_text()
    assert "Not drawn: no `market` records (the mid after each fill is unknown)." in page


def test_default_folder_beside_the_journal_and_the_command(
    journal: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli_main(["report", str(journal)])
    out, err = capsys.readouterr()
    folder = journal.parent / "run-report"
    assert (folder / "report.json").exists() and (folder / "report.html").exists()
    assert "Realized PnL     +0.011500 USDC" in out
    assert f"report: {folder / 'report.html'}" in out
    if HAVE_MPL:
        assert code == 0 and err == ""
    else:
        assert code == 3 and "pip install 'mmfast[report]'" in err
    code = cli_main(["report", str(journal.parent / "nope.jsonl")])
    assert code == 1
    assert (
        capsys.readouterr().err == f"mmfast report: no journal at {journal.parent / 'nope.jsonl'}\n"
    )


def test_without_matplotlib_json_and_page_all_the_same(
    journal: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # matplotlib cannot be imported: the figures, report.json and the page are written, the
    # command says how to install it and exits 3.
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    out, err = io.StringIO(), io.StringIO()
    args = argparse.Namespace(journal=str(journal), out=str(tmp_path / "nompl"), run=-1)
    code = report_main(args, out=out, err=err)
    assert code == 3
    assert "plots not drawn: matplotlib is not installed" in err.getvalue()
    assert "pip install 'mmfast[report]'" in err.getvalue()
    data = orjson.loads((tmp_path / "nompl" / "report.json").read_bytes())
    assert data["fills"]["count"] == 3 and data["plots"] == {}
    assert data["notes"][0].startswith("plots not drawn: matplotlib is not installed")
    assert (
        "pip install &#x27;mmfast[report]&#x27;" in (tmp_path / "nompl" / "report.html").read_text()
    )
    assert not list((tmp_path / "nompl").glob("*.png"))


def test_report_json_never_imports_matplotlib(journal: Path, tmp_path: Path) -> None:
    # A process of its own: nothing imported before decides what the report pulls in.
    code = (
        "import sys; from mmfast.report import make_report; "
        f"r = make_report({str(journal)!r}, {str(tmp_path / 'np')!r}, plots=False); "
        "assert r.figures.data['fills']['count'] == 3; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'matplotlib'))"
    )
    got = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert got.returncode == 0, got.stderr
    assert got.stdout.strip() == "[]"


def test_an_output_folder_that_is_a_file_is_refused_clearly(
    journal: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    taken = tmp_path / "taken"
    taken.write_text("keep me")
    assert cli_main(["report", str(journal), "-o", str(taken)]) == 1
    assert capsys.readouterr().err.startswith(
        f"mmfast report: cannot make the report folder {taken}: "
    )
    assert taken.read_text() == "keep me"


def test_journal_text_is_escaped_in_the_page(tmp_path: Path) -> None:
    recs = journal_records()
    for r in recs:
        if r["kind"] == "denied":
            r["reason"] = "<script>alert(1)</script>"
        if r["kind"] == "run_start":
            r["strategy"] = "<b>mm</b>"
    res = make_report(write(tmp_path / "j.jsonl", recs), tmp_path / "out", plots=False)
    page = res.html.read_text()
    assert "<script>" not in page and "<b>mm</b>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "&lt;b&gt;mm&lt;/b&gt;" in page
    assert res.figures.data["denials"]["by_reason"]["<script>alert(1)</script>"] == 3


def test_inventory_from_the_start_position_and_the_fills(tmp_path: Path) -> None:
    # The account held 0.0030 ETH before the run; the bot's live view of the second fill
    # counted it twice for a moment (the venue's position message came before the trade).
    recs = journal_records()
    for r in recs:
        if r["kind"] == "market":
            r["position"] = 30 if r["mono_ns"] < T0 + NS else 0
        if r["kind"] == "fill":
            r["position"] = {11: 130, 12: 130, 13: 30}[r["trade_id"]]
    f = figures(write(tmp_path / "j.jsonl", recs))
    inv = f.data["inventory"]
    assert (inv["start_lots"], inv["max_abs_lots"], inv["final_lots"]) == (30, 130, 30)
    assert f.series.inventory == pytest.approx([0.003, 0.013, 0.008, 0.003, 0.003])
    assert f.series.inv_t == pytest.approx([0, 1, 12, 75, 80.5])
    # PnL counts the run's fills only, as the bot's does.
    assert f.data["pnl"]["realized_usdc"] == pytest.approx(0.0115)
    # No market record before the first fill: the fill's record less the fill.
    late = [r for r in recs if r["kind"] != "market" or r["mono_ns"] >= T0 + 2 * NS]
    assert figures(write(tmp_path / "k.jsonl", late)).data["inventory"]["start_lots"] == 30


@pytest.mark.skipif(not HAVE_MPL, reason="matplotlib not installed (pip install -e '.[report]')")
def test_a_plot_that_fails_is_named_and_the_others_drawn(
    journal: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mmfast.report import plots

    def boom(f: Any, fig: Any) -> str:
        raise RuntimeError("boom")

    file, title, _draw, size = plots.PLOTS["uptime"]
    monkeypatch.setitem(plots.PLOTS, "uptime", (file, title, boom, size))
    res = make_report(journal, tmp_path / "out")
    assert res.skipped == {"uptime": "drawing failed (RuntimeError: boom)"}
    assert set(res.plots) == set(PLOTS) - {"uptime"} and not (tmp_path / "out" / file).exists()
    assert "Not drawn: drawing failed (RuntimeError: boom)." in res.html.read_text()


def test_inventory_follows_the_bots_position_rebase(tmp_path: Path) -> None:
    # At 50 s the bot took the venue's size: 80 lots where its fills said 50 (a fill it never
    # got). The inventory jumps with it; the PnL keeps the fills it got.
    recs = journal_records()
    recs.append(
        rec("position_rebase", 50, venue=80, fills=50, venue_qty="0.0080", fills_qty="0.0050")
    )
    recs.sort(key=lambda x: x["mono_ns"])
    f = figures(write(tmp_path / "j.jsonl", recs))
    assert f.series.inventory == pytest.approx([0, 0.01, 0.005, 0.008, 0.003, 0.003])
    assert f.series.inv_t == pytest.approx([0, 1, 12, 50, 75, 80.5])
    inv = f.data["inventory"]
    assert (inv["final_lots"], inv["rebases"]) == (30, 1)
    assert f.data["pnl"]["realized_usdc"] == pytest.approx(0.0115)
    assert any(n.startswith("the bot took the venue's position 1 time(s)") for n in f.notes)
