"""The live status panel (``mmfast.run.status``): its layout at 80 and 200 columns (every row
within the width, the key figures in the compact one, every level and stage in the wide one,
human units), the logs printed above it while it is up, the plain blocks for a pipe, the
summary wrapped for a narrow terminal."""

from __future__ import annotations

import asyncio
import io
import logging
import os
import re
from typing import Any

import pytest
from rich.cells import cell_len
from rich.console import Console

from mmfast.connector.lighter.secret import ApiKey, Redactor
from mmfast.core.log import TerminalFormatter
from mmfast.run.status import (
    LOG_ROWS,
    WIDE_COLUMNS,
    ConsoleLog,
    LiveStatus,
    StatusPrinter,
    open_status,
    render_panel,
    render_summary,
    wrap_lines,
)

STAGES = [
    ("book>quote", 1234, 119.0, 1630.0),
    ("quote>send", 800, 137.0, 384.0),
    ("send>ack", 700, 17.0, 1077.0),
    ("ack>open", 650, 5258.0, 5278.0),
    ("book>send", 640, 1683.0, 1929.0),
    ("fill>requote", 12, 1316.0, 1316.0),
    ("quote>plan", 1234, 4.0, 11.0),
]  # a stage of the compiled step, beyond STAGES
ENTRY = [
    ("queue", 300, 8.0, 40.0),
    ("sign", 300, 24.0, 92.0),
    ("send", 300, 29.0, 1988.0),
    ("ack", 300, 1622.0, 2623.0),
    ("total", 300, 1973.0, 6581.0),
    ("predicted", 300, 4086.0, 8141.0),
]


def _lat(rows: list[tuple[str, int, float, float]]) -> dict[str, dict[str, float]]:
    return {k: {"n": float(n), "p50_us": a, "p99_us": b} for k, n, a, b in rows}


def mm_snap(**over: Any) -> dict[str, Any]:
    """A market_making snapshot as Runner.snapshot makes it (ETH: 2 price, 4 size decimals)."""
    st = {
        "strategy": "market_making",
        "market": 0,
        "book": {"bid": 300_061, "bid_size": 650, "ask": 300_091, "ask_size": 400},
        "bids": [(300_027 - 25 * i, 100 + 50 * i) for i in range(6)],
        "asks": [(300_128 + 25 * i, 100 + 50 * i) for i in range(6)],
        "position_lots": -50,
        "pnl_usdc": 0.0018,
        "fees_usdc": 0.0004,
        "fills": 3,
        "filled_lots": 150,
        "orders_open": 12,
        "inflight": 1,
        "counts": {
            "placed": 12,
            "modified": 189,
            "cancelled": 4,
            "rejected": 2,
            "denied": 7,
            "send_errors": 0,
            "cancel_alls": 0,
        },
        "denials": {"ORDER_RATE": 7},
        "kill_switch": {"state": "armed", "trips": 0},
        "guard": "OK",
        "latency": _lat(STAGES),
        "step": {"frames": 5012, "planned": 801, "skipped": 3, "errors": 0, "on_stream": True},
    }
    snap = {
        "elapsed_s": 63.9,
        "symbol": "ETH",
        "market": 0,
        "mode": "sim",
        "price_decimals": 2,
        "size_decimals": 4,
        "strategy": st,
        "order_latency": _lat(ENTRY),
        "ready": True,
        "not_ready_reason": "",
        "loop": {
            "stalls": 0,
            "lag_p50_ms": 0.2,
            "lag_p99_ms": 1.4,
            "lag_max_ms": 3.0,
            "lag_samples": 639,
        },
        "placement": {},
        "budget": {
            "tier": "premium",
            "level": "OK",
            "reason": "",
            "volume_quota": 999,
            "volume_quota_level": "ok",
        },
    }
    snap.update(over)
    return snap


def tl_snap(n_levels: int = 2) -> dict[str, Any]:
    snap = mm_snap()
    st = snap["strategy"]
    st["strategy"] = "trend_ladder"
    del st["step"]
    st["bids"] = [(299_952, 100)]  # the TP
    st["asks"] = [(300_012, 100), (300_032, 100), (300_052, 100)]  # the entries
    st["trend"] = {
        "trend": -1,
        "fast": 300_013.91,
        "slow": 300_078.88,
        "samples": 40,
        "threshold_ticks": 5,
    }
    levels = [
        {
            "side": "SELL",
            "price": 300_012 + 20 * i,
            "filled": 100,
            "exposure": 100,
            "tp_price": 299_952 + 20 * i,
            "tp_lots": 100,
            "retries": i % 3,
            "gave_up": False,
        }
        for i in range(n_levels)
    ]
    st["tp"] = {
        "levels": n_levels,
        "tp_lots": 100 * n_levels,
        "exposure": 100 * n_levels,
        "carried": 0,
        "placed": 3,
        "crossings": 1,
    }
    st["tp_levels"] = levels
    return snap


def _fits(lines: list[str], width: int) -> None:
    assert lines, "nothing rendered"
    for line in lines:
        assert cell_len(line) <= width, f"{cell_len(line)} > {width}: {line!r}"


def _body(lines: list[str]) -> str:
    """The panel's text without its border, one row a line."""
    return "\n".join(x[2:-2].rstrip() for x in lines[1:-1])


# ---------------------------------------------------------------------------- layout
@pytest.mark.parametrize("make", [mm_snap, tl_snap], ids=["market_making", "trend_ladder"])
def test_every_row_fits_every_width_and_height(make: Any) -> None:
    for width in (30, 50, 64, 72, 80, 100, 119, 120, 160, 200, 250):
        for height in (10, 24, 40, 50):
            lines = render_panel(make(), width, height)
            _fits(lines, width)
            # A box drawn whole: top, bottom and both sides of every row (nothing wrapped).
            assert lines[0].startswith("╭─ mmfast ETH") and lines[-1].startswith("╰")
            assert all(x.startswith("│") and x.endswith("│") for x in lines[1:-1])


def test_compact_layout_at_80_columns_carries_the_key_figures() -> None:
    lines = render_panel(mm_snap(), 80, 24)
    _fits(lines, 80)
    assert len(lines) <= 24 - LOG_ROWS  # the logs keep their rows above it
    body = _body(lines)
    assert "╭─ mmfast ETH market_making sim  63.9s" in lines[0]
    for part in (
        "guard OK  kill armed  connector ready  budget premium OK  quota 999 (ok)",
        "book  0.0650@3000.61 | 3000.91x0.0400  spread 0.30",
        "position -0.0050  pnl +0.0018 USDC  fees 0.0004  fills 3 (0.0150)",
        "orders open 12  inflight 1  placed 12  mod 189  cxl 4  rej 2  denied 7",
    ):
        assert part in body, part
    # As many quote levels as fit, best first, then how many more.
    assert re.search(r"^bids  0\.0100@3000\.27  0\.0150@3000\.02 .* \+\d$", body, re.M), body
    assert re.search(r"^asks  0\.0100@3001\.28  0\.0150@3001\.53 .* \+\d$", body, re.M), body
    # Latency as a table: stage, p50, p99, n; strategy and order entry side by side, with
    # the most telling stages kept (book>send, total) and compact durations.
    assert re.search(r"^latency +p50 +p99 +n +order entry +p50 +p99 +n$", body, re.M), body
    assert re.search(r"^book>send +1\.68ms +1\.93ms +640 │ .*$", body, re.M), body
    assert re.search(r"│ total +1\.97ms +6\.58ms +300$", body, re.M), body
    assert re.search(r"^book>quote +119us +1\.63ms +1234 ", body, re.M), body
    # No ticks or lots: every price and size in the market's decimals.
    assert not re.search(r"(?<![.\d])(300061|650@)", body), body


def test_wide_layout_at_200_columns_shows_every_level_and_stage() -> None:
    lines = render_panel(mm_snap(), 200, 50)
    _fits(lines, 200)
    body = _body(lines)
    assert "mid 3000.760  spread 0.30 (1.0 bps)" in body
    assert (
        "orders open 12  inflight 1  placed 12  modified 189  cancelled 4  rejected 2  "
        "denied 7 (ORDER_RATE 7)  send errors 0"
    ) in body
    assert "loop lag p99 1.4 ms" in body
    assert "compiled step  frames 5012  planned 801  skipped 3  errors 0" in body
    # The quote ladder: all six levels each side, size and price, best first.
    for i in range(6):
        bid = f"{(300_027 - 25 * i) / 100:.2f}"
        ask = f"{(300_128 + 25 * i) / 100:.2f}"
        size = f"{(100 + 50 * i) / 10_000:.4f}"
        assert re.search(rf"{size} {bid} │ {ask} +{size}", body), (i, body)
    # Every latency stage with samples, the compiled step's own included, and every
    # order-entry stage.
    for name, *_ in STAGES + ENTRY:
        assert re.search(rf"(^| ){re.escape(name)} +\S+ +\S+ +\S+", body, re.M), name
    assert "more" not in body  # nothing left out at this size


def test_trend_ladder_shows_its_trend_and_each_levels_take_profit() -> None:
    compact = _body(render_panel(tl_snap(), 80, 24))
    assert "trend down  fast 3000.14  slow 3000.79  threshold 0.05" in compact
    assert "tp 0.0200 of 0.0200 held  2 levels  carried 0.0000  placed 3  crossed 1" in compact
    assert "level SELL 0.0100@3000.12 holds 0.0100 tp BUY 0.0100@2999.52" in compact
    assert "level SELL 0.0100@3000.32 holds 0.0100 tp BUY 0.0100@2999.72" in compact
    wide = _body(render_panel(tl_snap(), 200, 50))
    assert "take-profits 0.0200 of 0.0200 held  2 levels" in wide
    assert re.search(r"entry +price +filled +holds +take-profit +tp size +retries", wide)
    assert re.search(r"SELL +3000\.12 +0\.0100 +0\.0100 +BUY 2999\.52 +0\.0100 +0", wide), wide
    assert re.search(r"SELL +3000\.32 +0\.0100 +0\.0100 +BUY 2999\.72 +0\.0100 +1", wide), wide


def test_a_short_terminal_drops_detail_rows_and_says_how_many() -> None:
    # 20 levels at 80x24: the panel keeps its share of the screen, lists what fits, counts
    # the rest; at 200x50 the table lists them (up to its room) the same way.
    lines = render_panel(tl_snap(20), 80, 24)
    _fits(lines, 80)
    assert len(lines) <= 24 - LOG_ROWS + 2  # the rows that cannot go (state to TP line)
    body = _body(lines)
    shown = body.count("level SELL")
    assert shown >= 1 and f"+{20 - shown} more levels" in body
    wide = _body(render_panel(tl_snap(60), 200, 40))
    listed = len(re.findall(r"SELL +\d+\.\d\d +0\.0100", wide))
    assert 1 <= listed < 60 and f"+{60 - listed} more" in wide
    assert len(render_panel(tl_snap(60), 200, 40)) <= 40 - LOG_ROWS + 2


def test_problems_get_a_row_of_their_own_cut_at_the_width() -> None:
    reason = "book:0: resyncing after a nonce gap " + "x" * 300
    snap = mm_snap(ready=False, not_ready_reason=reason)
    snap["strategy"]["book"] = None
    snap["strategy"]["guard"] = "BOOK_OUT_OF_SYNC"
    lines = render_panel(snap, 80, 24)
    _fits(lines, 80)
    body = _body(lines)
    assert "guard BOOK_OUT_OF_SYNC  kill armed  connector NOT READY" in body
    assert re.search(r"^not ready: book:0: resyncing after a nonce gap x+…$", body, re.M), body
    assert "book not in sync" in body


def test_no_samples_yet_and_no_quotes_are_said_plainly() -> None:
    snap = mm_snap(order_latency={})
    st = snap["strategy"]
    st.update(latency={}, bids=[], asks=[], pnl_usdc=None)
    body = _body(render_panel(snap, 80, 24))
    assert "bids  none" in body and "asks  none" in body and "pnl - USDC" in body
    assert re.search(r"^no samples yet +│ no samples yet$", body, re.M), body
    wide = _body(render_panel(snap, 200, 50))
    assert wide.count("no samples yet") == 2 and "none" in wide


def test_plain_lines_for_a_pipe_carry_the_trend_ladders_levels_in_human_units() -> None:
    out = io.StringIO()
    StatusPrinter(out).show(tl_snap())
    text = out.getvalue()
    assert "\x1b" not in text
    assert (
        "  trend down (fast 3000.14, slow 3000.79)  tp levels 2 tp 0.0200 exposure 0.0200 "
        "carried 0.0000"
    ) in text
    assert (
        "  levels  SELL 0.0100@3000.12 holds 0.0100 tp BUY 0.0100@2999.52; "
        "SELL 0.0100@3000.32 holds 0.0100 tp BUY 0.0100@2999.72"
    ) in text
    assert "300013" not in text  # the EMAs were printed in ticks before


# ---------------------------------------------------------------------------- displays
def _tty_console(width: int = 80, height: int = 24) -> tuple[Console, io.StringIO]:
    buf = io.StringIO()
    return Console(
        file=buf,
        width=width,
        height=height,
        force_terminal=True,
        force_interactive=True,
        color_system=None,
        _environ={},
    ), buf


def test_logs_print_above_the_panel_never_inside_it() -> None:
    console, buf = _tty_console()
    handler = logging.StreamHandler(io.StringIO())
    handler.setFormatter(TerminalFormatter())
    log = logging.getLogger("mmfast.test.status")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    before = handler.stream
    live = LiveStatus(io.StringIO(), log_handlers=[handler], console=console, route_logs=True)
    try:
        live.show(mm_snap())
        log.info("tp placed: coi=6 side=BUY size=0.0100 price=2999.41 entry_coi=5 " + "y" * 90)
        live.show(mm_snap(elapsed_s=64.9))
        log.warning("second record")
    finally:
        live.close()
        log.removeHandler(handler)
    assert handler.stream is before  # given back
    out = buf.getvalue()
    # Each drawing of the panel runs from its top border to its bottom one; the records are
    # printed between drawings (the panel erased first, then drawn again below them).
    drawings = re.findall(r"╭─ mmfast.*?╰─+╯", out, re.S)
    assert len(drawings) >= 3  # first show, redrawn under each record and at the 2nd show
    assert not any("tp placed" in d or "second record" in d for d in drawings)
    first, second = out.index("tp placed: coi=6"), out.index("second record")
    assert out.index("63.9s") < first < out.index("64.9s") < second
    # The record's message wraps under its own column (the 22-character prefix).
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out)
    rec = re.search(r"(\d\d:\d\d:\d\d\.\d{3} INFO     test\.status: tp placed:.*?\n)(.*?\n)", text)
    assert rec, text
    indent = " " * TerminalFormatter.PREFIX_WIDTH
    assert rec.group(2).startswith(indent) and not rec.group(2)[len(indent)].isspace()
    assert all(cell_len(x) <= 80 for x in text.splitlines())
    # Closed: the panel erased (transient), nothing drawn after.
    assert not out.rstrip().endswith("╯")
    assert handler.stream.getvalue() == ""  # nothing went to the old stream meanwhile


def test_records_of_the_loop_print_together_after_the_call_not_inside_it() -> None:
    # Printing above the panel redraws it; a log call on the event loop (the trend ladder
    # logs each TP before placing it) only queues its record, printed with the others of
    # the next DELAY_S in one go (one redraw).
    console, buf = _tty_console()
    handler = logging.StreamHandler(io.StringIO())
    handler.setFormatter(TerminalFormatter())
    log = logging.getLogger("mmfast.test.batch")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    live = LiveStatus(io.StringIO(), log_handlers=[handler], console=console, route_logs=True)

    async def go() -> tuple[str, str]:
        live.show(mm_snap())
        drawn = buf.getvalue()
        for i in range(5):
            log.info("record %d", i)
        queued = buf.getvalue()
        await asyncio.sleep(ConsoleLog.DELAY_S * 3)
        return drawn, queued

    try:
        drawn, queued = asyncio.run(go())
        after = buf.getvalue()
        log.info("from no loop")  # printed at once
        at_once = buf.getvalue()
    finally:
        live.close()
        log.removeHandler(handler)
    assert queued == drawn  # nothing printed inside the calls
    batch = after[len(drawn) :]
    assert all(f"record {i}" in batch for i in range(5))
    # One redraw for the five: the panel drawn once after the last of them.
    assert batch.count("╭─ mmfast") == 1 and batch.index("record 4") < batch.index("╭─ mmfast")
    assert "from no loop" in at_once[len(after) :]


def test_records_waiting_when_the_panel_starts_print_before_it() -> None:
    # On a terminal the handler prints through a console from the start; records of the
    # loop still waiting when the panel comes up print first, not later inside the panel.
    console, buf = _tty_console()
    handler = logging.StreamHandler(io.StringIO())
    handler.setFormatter(TerminalFormatter())
    handler.setStream(ConsoleLog.for_handler(console, handler))  # type: ignore[arg-type]
    log = logging.getLogger("mmfast.test.start")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    live = LiveStatus(io.StringIO(), log_handlers=[handler], console=console, route_logs=True)

    async def go() -> None:
        log.info("before the panel")
        live.show(mm_snap())
        await asyncio.sleep(ConsoleLog.DELAY_S * 3)  # the old stream's timer has run
        log.info("under the panel")
        await asyncio.sleep(ConsoleLog.DELAY_S * 3)

    try:
        asyncio.run(go())
    finally:
        live.close()
        log.removeHandler(handler)
    out = buf.getvalue()
    assert out.count("before the panel") == 1 and out.count("under the panel") == 1
    assert out.index("before the panel") < out.index("╭─ mmfast")
    drawings = re.findall(r"╭─ mmfast.*?╰─+╯", out, re.S)
    assert not any("the panel" in d for d in drawings)


def test_the_panel_is_redacted(tmp_path: Any) -> None:
    key = ApiKey("9e" * 40)
    console, buf = _tty_console(200, 50)
    live = LiveStatus(io.StringIO(), console=console, redact=Redactor([key]).redact)
    live.show(mm_snap(ready=False, not_ready_reason=f"sendTx failed: {'9e' * 40}"))
    live.close()
    out = buf.getvalue()
    assert "not ready: sendTx failed:" in out and "9e" * 8 not in out
    printed = io.StringIO()
    StatusPrinter(printed, redact=Redactor([key]).redact).show(
        mm_snap(ready=False, not_ready_reason=f"sendTx failed: {'9e' * 40}")
    )
    assert "sendTx failed:" in printed.getvalue() and "9e" * 8 not in printed.getvalue()


class _TtyIO(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_open_status_picks_the_panel_only_for_an_interactive_terminal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TERM", "xterm-256color")
    for var in ("FORCE_COLOR", "TTY_INTERACTIVE", "NO_COLOR", "TTY_COMPATIBLE"):
        monkeypatch.delenv(var, raising=False)
    assert isinstance(open_status(_TtyIO()), LiveStatus)
    assert isinstance(open_status(io.StringIO()), StatusPrinter)  # a pipe, a file
    monkeypatch.setenv("TERM", "dumb")  # no cursor movement: plain blocks
    assert isinstance(open_status(_TtyIO()), StatusPrinter)


def test_logs_are_routed_only_when_they_share_the_status_terminal(tmp_path: Any) -> None:
    master, slave = os.openpty()
    try:
        out = os.fdopen(os.dup(slave), "w")
        err = os.fdopen(os.dup(slave), "w")
        to_file = logging.StreamHandler(open(tmp_path / "log", "w"))  # noqa: SIM115
        to_tty = logging.StreamHandler(err)
        live = LiveStatus(out, log_handlers=[to_file, to_tty])
        assert live._handlers == [to_tty]  # the file keeps its stream
        for s in (out, err, to_file.stream):
            s.close()
    finally:
        os.close(master)
        os.close(slave)


def test_console_log_prints_other_lines_as_they_are() -> None:
    console, buf = _tty_console(60)
    stream = ConsoleLog(console, 0)  # a JSON formatter's records: not reformatted
    line = '{"ts":1.5,"level":"INFO","logger":"mmfast.core","msg":"' + "z" * 80 + '"}'
    stream.write(line + "\n")
    assert buf.getvalue().replace("\n", "") == line  # soft-wrapped: the terminal wraps it


# ---------------------------------------------------------------------------- summary
def test_summary_wrapped_for_a_narrow_terminal_under_its_values_column() -> None:
    s = {
        "elapsed_s": 5.2,
        "symbol": "ETH",
        "market": 0,
        "mode": "sim",
        "price_decimals": 2,
        "size_decimals": 4,
        "strategy": mm_snap()["strategy"],
        "order_latency": {},
        "stop_reason": "SIGTERM",
        "orders_left": 0,
        "exit_code": 0,
        "journal": "/home/someone/.local/state/mmfast/journal.jsonl",
        "signer": {
            "kind": "native",
            "signed": 90,
            "failed": 0,
            "size": 256,
            "ready": 250,
            "pooled": 88,
            "fresh": 2,
            "direct": 31,
            "compiled_frames": 0,
        },
    }
    lines = render_summary(s)
    assert any(len(x) > 80 for x in lines)
    wrapped = list(wrap_lines(lines, 80))
    assert all(len(x) <= 80 for x in wrapped)
    # Each continuation sits under the values (column 13), the words unchanged.
    conts = [x for x in wrapped if x.startswith(" " * 13)]
    assert conts and all(not x[13].isspace() for x in conts)
    assert " ".join(" ".join(wrapped).split()) == " ".join(" ".join(lines).split())
    assert list(wrap_lines(lines, 200)) == lines


def test_wide_threshold_is_where_the_layout_changes() -> None:
    narrow = _body(render_panel(mm_snap(), WIDE_COLUMNS - 1, 50))
    wide = _body(render_panel(mm_snap(), WIDE_COLUMNS, 50))
    assert "bids  " in narrow and "mid " not in narrow
    assert "bid size" in wide and "mid 3000.760" in wide
