"""The run's outputs for strategies: JSONL journal (mode, redaction, buffering) and the status /
summary rendering (human units at the edge)."""

from __future__ import annotations

import io
from pathlib import Path

import orjson

from mmfast.connector.lighter.secret import ApiKey, Redactor
from mmfast.core.interfaces import Journal, NullJournal
from mmfast.core.latency import STAGES, LatencyStats
from mmfast.run.journal import JsonlJournal, MemoryJournal
from mmfast.run.status import StatusPrinter, render_status, render_summary

KEY = "9e" * 40


def test_journal_lines_mode_and_redaction(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "j.jsonl"
    j = JsonlJournal(path, redact=Redactor([ApiKey(KEY)]).redact)
    j.write("order", coi=7, side="BUY", price=299_995, size=100, status="OPEN")
    j.write("send_error", error=f"failed with {KEY}", short="ok")
    assert path.read_bytes() == b""  # buffered until flush
    j.flush()
    j.close()
    j.write("after_close", x=1)  # ignored, no error
    recs = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    assert [r["kind"] for r in recs] == ["order", "send_error"]
    assert recs[0]["price"] == 299_995 and recs[0]["ts_ms"] > 0 and recs[0]["mono_ns"] > 0
    assert KEY[:16] not in path.read_text() and recs[1]["short"] == "ok"
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert j.counts == {"order": 1, "send_error": 1}


def test_journals_implement_the_core_protocol(tmp_path: Path) -> None:
    j = JsonlJournal(tmp_path / "j.jsonl")
    for journal in (j, MemoryJournal(), NullJournal()):
        assert isinstance(journal, Journal)
    assert NullJournal().write("order", coi=1) is None
    j.close()


def test_latency_stats_rings_and_percentiles() -> None:
    lat = LatencyStats()
    assert tuple(lat.counts) == STAGES
    assert lat.percentiles("book>send") == (0, 0) and lat.summary() == {}
    for ns in range(1, 101):
        lat.add("book>send", ns * 1000)
    lat.add("book>send", -5)  # clamped to 0
    lat.add("extra", 7)  # a stage not in STAGES gets its own ring
    assert lat.percentiles("book>send") == (50_000, 99_000)
    assert lat.summary()["book>send"] == {"n": 101, "p50_us": 50.0, "p99_us": 99.0}
    assert lat.counts["extra"] == 1
    for _ in range(5000):
        lat.add("ack>open", 1)
    assert lat.counts["ack>open"] == 5000 and len(lat._rings["ack>open"]) == 4096


def _strategy_status() -> dict:
    return {
        "strategy": "market_making",
        "book": {"bid": 300_000, "bid_size": 450, "ask": 300_010, "ask_size": 200},
        "bids": [(299_990, 100), (299_980, 150)],
        "asks": [(300_020, 100)],
        "position_lots": -50,
        "pnl_usdc": 0.25,
        "fees_usdc": 0.01,
        "fills": 3,
        "filled_lots": 250,
        "orders_open": 3,
        "inflight": 0,
        "counts": {
            "placed": 5,
            "modified": 2,
            "cancelled": 1,
            "rejected": 0,
            "denied": 4,
            "send_errors": 0,
            "cancel_alls": 0,
        },
        "denials": {"ORDER_RATE": 4},
        "kill_switch": {"state": "armed", "trips": 0},
        "guard": "OK",
        "latency": {"book>quote": {"n": 10, "p50_us": 120.0, "p99_us": 800.0}},
    }


def test_status_lines_in_human_units() -> None:
    snap = {
        "elapsed_s": 12.3,
        "symbol": "ETH",
        "market": 0,
        "mode": "sim",
        "price_decimals": 2,
        "size_decimals": 4,
        "strategy": _strategy_status(),
        "order_latency": {},
        "ready": False,
        "not_ready_reason": "book:0: no snapshot",
    }
    lines = render_status(snap)
    text = "\n".join(lines)
    assert "book 0.0450@3000.00 | 3000.10x0.0200" in text
    assert "bids 0.0100@2999.90 0.0150@2999.80" in text and "asks 0.0100@3000.20" in text
    assert "position -0.0050" in text and "pnl +0.2500 USDC" in text and "fills 3" in text
    assert "denied 4" in text and "book>quote 120/800us" in text
    assert "connector not ready: book:0: no snapshot" in text
    # A pipe or a file: the same lines appended, one block per show, no escape codes.
    out = io.StringIO()
    p = StatusPrinter(out)
    p.show(snap)
    p.show(snap)
    assert out.getvalue() == ("\n".join(lines) + "\n") * 2 and p.printed == 2
    assert "\x1b[" not in out.getvalue()


def test_summary_lines() -> None:
    s = {
        "elapsed_s": 5.2,
        "symbol": "ETH",
        "market": 0,
        "mode": "sim",
        "price_decimals": 2,
        "size_decimals": 4,
        "strategy": _strategy_status(),
        "order_latency": {},
        "stop_reason": "SIGTERM",
        "orders_left": 0,
        "exit_code": 0,
        "journal": "/x/j.jsonl",
    }
    text = "\n".join(render_summary(s))
    for part in (
        "=== mmfast run summary ===",
        "fills        3  volume 0.0250",
        "(stop: SIGTERM)",
        "risk denials ORDER_RATE 4",
        "shutdown     orders left open: 0",
        "exit code    0",
        "journal      /x/j.jsonl",
    ):
        assert part in text
    s["orders_left"] = None
    assert "orders left open: unknown" in "\n".join(render_summary(s))


def test_summary_signer_line() -> None:
    s = {
        "elapsed_s": 5.2,
        "symbol": "ETH",
        "market": 0,
        "mode": "sim",
        "price_decimals": 2,
        "size_decimals": 4,
        "strategy": _strategy_status(),
        "order_latency": {},
        "stop_reason": "SIGTERM",
        "orders_left": 0,
        "exit_code": 0,
        "journal": None,
        "signer": {
            "kind": "native",
            "signed": 90,
            "failed": 0,
            "size": 256,
            "ready": 250,
            "pooled": 88,
            "fresh": 2,
        },
    }
    text = "\n".join(render_summary(s))
    assert (
        "signer       native  signed 90  failed 0  nonce pool 256 (ready 250): pooled 88  fresh 2"
    ) in text
    s["signer"] = {"kind": "official", "signed": 7, "failed": 1}
    text = "\n".join(render_summary(s))
    assert "signer       official  signed 7  failed 1" in text and "nonce pool" not in text


def test_summary_and_status_show_the_loop_placement_as_applied() -> None:
    s = {
        "elapsed_s": 5.2,
        "symbol": "ETH",
        "market": 0,
        "mode": "sim",
        "price_decimals": 2,
        "size_decimals": 4,
        "strategy": _strategy_status(),
        "order_latency": {},
        "stop_reason": "SIGTERM",
        "orders_left": 0,
        "exit_code": 0,
        "journal": None,
        "placement": {
            "cpu": 1,
            "threads_moved": 5,
            "other_cpus": [0],
            "busy_poll": False,
            "polls_per_s": 512_000.0,
        },
    }
    want = "loop pinned to CPU 1 (5 other threads on CPUs 0), busy poll stopped (512k polls/s)"
    assert f"placement    {want}" in render_summary(s)
    assert f"  {want}" in render_status(s)
    s["placement"] = {"busy_poll": True, "polls_per_s": 2_000.0}  # busy poll alone
    assert "placement    busy poll on (2k polls/s)" in render_summary(s)
    s["placement"] = {"busy_poll": True, "polls_per_s": 700_000.0, "warms_per_s": 15_200.0}
    assert "placement    busy poll on (700k polls/s, 15.2k warm-ups/s)" in render_summary(s)
    s["placement"] = {}  # neither set: no line
    assert not any(
        "placement" in x or "busy poll" in x for x in render_summary(s) + render_status(s)
    )


def test_latency_histograms_count_every_sample_beyond_the_rings() -> None:
    """``LatencyStats.hist`` counts every sample ever added, exactly, though the rings (the
    status's percentiles) keep only the last RING."""
    from mmfast.core.latency import HIST_BOUNDS_NS, RING

    lat = LatencyStats()
    n = 3 * RING + 17
    for i in range(n):
        lat.add("book>send", 1_500 if i % 2 else 30_000_000)  # 1.5 us and 30 ms
    h = lat.hist
    counts = h.buckets["book>send"]
    assert sum(counts) == n == lat.counts["book>send"]
    assert counts[1] == n // 2 and counts[HIST_BOUNDS_NS.index(50_000_000)] == n - n // 2
    assert h.sums["book>send"] == (n // 2) * 1_500 + (n - n // 2) * 30_000_000
    lat.add("book>send", 1_500)  # one more: counted once
    assert sum(lat.hist.buckets["book>send"]) == n + 1
