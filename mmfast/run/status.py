"""Live status and the exit summary of ``mmfast run``.

Two faces of one snapshot (``Runner.snapshot``: strategy status, connector latency, budget):

- on a terminal, ``LiveStatus``: a ``rich`` panel (``StatusPanel``) kept at the bottom of the
  screen and redrawn every ``run.status_interval_s``, with the logs scrolling above it (the log
  handler prints through the panel's console while it is up, so a log line never lands inside
  the panel). The layout follows the terminal: below ``WIDE_COLUMNS`` a compact one (key
  figures, the main latency stages, every line cut to the width rather than wrapped), from
  there on every quote level and every latency stage in tables side by side. It also keeps
  ``LOG_ROWS`` rows of the terminal for the logs, dropping detail rows to do so.
- elsewhere (a pipe, a file), ``StatusPrinter``: ``render_status``'s plain lines appended, one
  block per interval, no escape codes.

``render_summary`` is the block printed at exit, after the panel is gone. Human units only
here, at the edge: ticks and lots formatted exactly by mmfast.core.units.
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import sys
import textwrap
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any, Final, Protocol

from rich import box
from rich.console import Console, ConsoleOptions, RenderResult
from rich.live import Live
from rich.panel import Panel
from rich.segment import Segment
from rich.text import Text

from mmfast.core.log import TerminalFormatter
from mmfast.core.units import format_units

__all__ = [
    "LOG_ROWS",
    "WIDE_COLUMNS",
    "ConsoleLog",
    "LiveStatus",
    "StatusDisplay",
    "StatusPanel",
    "StatusPrinter",
    "open_status",
    "render_panel",
    "render_status",
    "render_summary",
    "wrap_lines",
]

WIDE_COLUMNS: Final = 120  # from this terminal width on, the wide layout
NARROW_COLUMNS: Final = 66  # below this panel width, the latency tables one under the other
LOG_ROWS: Final = 8  # terminal rows the panel leaves to the logs scrolling above it
# The latency stages a short panel keeps, most telling first (shown in the path's order).
_KEY_STAGES: Final = (
    "book>send",
    "book>quote",
    "fill>requote",
    "send>ack",
    "ack>open",
    "quote>send",
)
_KEY_ENTRY: Final = ("total", "ack", "sign", "queue", "send", "predicted")
_TREND: Final = {1: "up", -1: "down", 0: "flat"}
_OK, _WARN, _BAD = "green", "yellow", "bold red"
_KILL_STYLE: Final = {"armed": _OK, "paused": _WARN, "stopped": _BAD}


# ---------------------------------------------------------------------------------- units
def _px(ticks: int | None, pd: int) -> str:
    if ticks is None or ticks <= 0:
        return "-"
    return format_units(ticks, pd)


def _sz(lots: int, sd: int) -> str:
    return format_units(lots, sd)


def _ema_px(ema_ticks: float | None, pd: int) -> str:
    """An EMA of the mid (float ticks) as a price, to the tick."""
    if not ema_ticks:
        return "-"
    return _px(round(ema_ticks), pd)


def _dur(us: float) -> str:
    """A latency in at most 6 characters: 119us, 1.63ms, 12.4ms, 245ms, 1.20s."""
    if us < 999.5:
        return f"{us:.0f}us"
    ms = us / 1000
    if ms < 9.995:
        return f"{ms:.2f}ms"
    if ms < 99.95:
        return f"{ms:.1f}ms"
    if ms < 999.5:
        return f"{ms:.0f}ms"
    return f"{ms / 1000:.2f}s"


def _count(n: float) -> str:
    """A count in at most 5 characters: 999, 12.3k, 123k, 1.23M."""
    n = int(n)
    if abs(n) < 10_000:
        return str(n)
    for div, unit in ((1_000_000_000, "G"), (1_000_000, "M"), (1_000, "k")):
        if abs(n) >= div:
            v = n / div
            return (
                f"{v:.2f}{unit}"
                if abs(v) < 10
                else f"{v:.1f}{unit}"
                if abs(v) < 100
                else f"{v:.0f}{unit}"
            )
    return str(n)  # pragma: no cover - every n >= 10_000 has a unit


# ---------------------------------------------------------------------------------- plain lines
def _quotes(levels: list[tuple[int, int]], pd: int, sd: int, n: int = 3) -> str:
    if not levels:
        return "none"
    shown = " ".join(f"{_sz(s, sd)}@{_px(p, pd)}" for p, s in levels[:n])
    more = f" +{len(levels) - n}" if len(levels) > n else ""
    return shown + more


def _latency(lat: dict[str, dict[str, float]]) -> str:
    if not lat:
        return "no samples yet"
    return "  ".join(
        f"{k} {v['p50_us']:.0f}/{v['p99_us']:.0f}us" for k, v in lat.items() if v.get("n")
    )


def _placement(p: dict[str, Any] | None) -> str:
    """``[run] cpu`` / ``busy_poll`` as applied ("" when neither is set)."""
    if not p:
        return ""
    parts = []
    if "cpu" in p:
        rest = ",".join(map(str, p["other_cpus"])) or "none"
        parts.append(
            f"loop pinned to CPU {p['cpu']} ({p['threads_moved']} other threads on CPUs {rest})"
        )
    if "polls_per_s" in p:
        warms = p.get("warms_per_s") or 0
        parts.append(
            f"busy poll {'on' if p['busy_poll'] else 'stopped'} "
            f"({p['polls_per_s'] / 1000:.0f}k polls/s"
            + (f", {warms / 1000:.1f}k warm-ups/s)" if warms else ")")
        )
    return ", ".join(parts)


def _sim(sim: dict[str, Any]) -> str:
    """Where the simulator of a sim-mode run ran, and how its child process ended."""
    if sim["mode"] == "thread":
        return "a thread of this process (its load is in the latencies above)"
    if sim["mode"] == "external":
        return f"external {sim.get('rest_url')}"
    code = sim.get("exit")
    how = "running" if sim.get("running") else "not running" if code is None else f"exited {code}"
    if sim.get("early_exit"):
        how += " (while the bot ran)"
    return f"child process pid {sim.get('pid')}  {how}  log {sim.get('log')}"


def _tp_level(lvl: dict[str, Any], pd: int, sd: int) -> str:
    """One trend-ladder level: its entry, what it holds, its take-profit."""
    tp_side = "SELL" if lvl["side"] == "BUY" else "BUY"
    tp = (
        f"{tp_side} {_sz(lvl['tp_lots'], sd)}@{_px(lvl['tp_price'], pd)}"
        if lvl["tp_lots"]
        else "none"
    )
    if lvl.get("gave_up"):
        tp = "GAVE UP"
    return (
        f"{lvl['side']} {_sz(lvl['filled'], sd)}@{_px(lvl['price'], pd)} holds "
        f"{_sz(lvl['exposure'], sd)} tp {tp}"
    )


def render_status(snap: dict[str, Any]) -> list[str]:
    """Plain status lines of one snapshot (see ``Runner.snapshot``): what a pipe or a file gets
    every interval."""
    st = snap["strategy"]
    pd, sd = snap["price_decimals"], snap["size_decimals"]
    book = st.get("book")
    if book:
        top = (
            f"book {_sz(book['bid_size'], sd)}@{_px(book['bid'], pd)} | "
            f"{_px(book['ask'], pd)}x{_sz(book['ask_size'], sd)}"
        )
    else:
        top = "book not in sync"
    pnl = st.get("pnl_usdc")
    ks = st.get("kill_switch") or {}
    c = st["counts"]
    lines = [
        f"[{snap['elapsed_s']:7.1f}s] {snap['symbol']} {st['strategy']}  {top}  "
        f"guard {st['guard']}  kill {ks.get('state', '-')}",
        f"  quotes  bids {_quotes(st['bids'], pd, sd)}   asks {_quotes(st['asks'], pd, sd)}",
        f"  position {_sz(st['position_lots'], sd)}  pnl "
        f"{'-' if pnl is None else f'{pnl:+.4f}'} USDC (fees {st['fees_usdc']:.4f})  "
        f"fills {st['fills']} ({_sz(st['filled_lots'], sd)})",
        f"  orders open {st['orders_open']} inflight {st['inflight']}  placed {c['placed']} "
        f"modified {c['modified']} cancelled {c['cancelled']} rejected {c['rejected']} "
        f"denied {c['denied']}",
        f"  latency p50/p99  {_latency(st.get('latency') or {})}",
    ]
    venue_lat = snap.get("order_latency") or {}
    if venue_lat:
        lines.append(f"  order entry p50/p99  {_latency(venue_lat)}")
    tp = st.get("tp")
    if tp:
        tr = st.get("trend") or {}
        lines.append(
            f"  trend {_TREND.get(tr.get('trend', 0), '?')} (fast "
            f"{_ema_px(tr.get('fast'), pd)}, slow {_ema_px(tr.get('slow'), pd)})  "
            f"tp levels {tp['levels']} tp {_sz(tp['tp_lots'], sd)} exposure "
            f"{_sz(tp['exposure'], sd)} carried {_sz(tp['carried'], sd)}"
        )
        levels = st.get("tp_levels") or []
        if levels:
            lines.append("  levels  " + "; ".join(_tp_level(x, pd, sd) for x in levels))
    bud = snap.get("budget") or {}
    if bud:
        q = bud.get("volume_quota")
        lines.append(
            f"  budget {bud['tier']} {bud['level']}"
            f"{' (' + bud['reason'] + ')' if bud.get('reason') else ''}  volume quota "
            f"{'-' if q is None else q} ({bud.get('volume_quota_level', '-')})"
        )
    place = _placement(snap.get("placement"))
    if place:
        lines.append(f"  {place}")
    if not snap.get("ready", True):
        lines.append(f"  connector not ready: {snap.get('not_ready_reason', '')}")
    return lines


# ---------------------------------------------------------------------------------- the panel
def _line(*parts: str | tuple[str, str] | Text) -> Text:
    """One panel row: never wrapped, cut with an ellipsis at the width."""
    return Text.assemble(*parts, no_wrap=True, overflow="ellipsis")


def _lat_rows(
    lat: dict[str, dict[str, float]], key: tuple[str, ...], n: int
) -> list[tuple[str, dict[str, float]]]:
    """The ``n`` most telling stages with samples (``key`` order), in the path's order."""
    have = [k for k, v in lat.items() if v.get("n")]
    keep = set(sorted(have, key=lambda k: key.index(k) if k in key else len(key))[:n])
    return [(k, lat[k]) for k in have if k in keep]


Cell = str | tuple[str, str]  # a table cell: its text, or (text, style)


def _grid(header: list[str], rows: list[list[Cell]], justify: str) -> list[Text]:
    """A table as text rows (a bold header, then the rows), each column as wide as its widest
    cell, one space between; ``justify``: "l" or "r" per column. Plain text, not a rich
    Table: it redraws every second on the event loop, and a Table's measuring costs ~10x."""

    def text(c: Cell) -> str:
        return c if isinstance(c, str) else c[0]

    table: list[list[Cell]] = [list(header), *rows]
    widths = [max(len(text(r[i])) for r in table) for i in range(len(header))]
    out = []
    for n, row in enumerate(table):
        t = Text(style="bold" if n == 0 else "", no_wrap=True, overflow="ellipsis")
        for i, c in enumerate(row):
            s, style = (c, "") if isinstance(c, str) else c
            pad = " " * (widths[i] - len(s))
            if i:
                t.append(" ")
            if justify[i] == "r":
                t.append(pad)
            t.append(s, style)
            if justify[i] != "r" and i < len(row) - 1:
                t.append(pad)
        out.append(t)
    return out


def _stack(blocks: list[list[Text]], width: int, gap: int = 4) -> list[Text]:
    """Blocks side by side, as many as fit in ``width`` per band, bands one under another
    (a blank row between)."""
    out: list[Text] = []
    band: list[tuple[list[Text], int]] = []

    def flush() -> None:
        if not band:
            return
        if out:
            out.append(Text(""))
        for i in range(max(len(b) for b, _ in band)):
            t = Text(no_wrap=True, overflow="ellipsis")
            for j, (b, w) in enumerate(band):
                cell = b[i] if i < len(b) else Text("")
                t.append_text(cell)
                if j < len(band) - 1:
                    t.append(" " * (w - cell.cell_len + gap))
            out.append(t)
        band.clear()

    used = 0
    for b in blocks:
        w = max((x.cell_len for x in b), default=0)
        if band and used + gap + w > width:
            flush()
            used = 0
        used += (gap if band else 0) + w
        band.append((b, w))
    flush()
    return out


def _dim(s: str) -> tuple[str, str]:
    return (s, "dim")


def _lat_block(
    title: str, rows: list[tuple[str, dict[str, float]]], *, hidden: int = 0
) -> list[Text]:
    cells: list[list[Cell]] = [
        [k, _dur(v["p50_us"]), _dur(v["p99_us"]), _count(v["n"])] for k, v in rows
    ]
    if not rows:
        cells.append([_dim("no samples yet"), "", "", ""])
    if hidden:
        cells.append([_dim(f"+{hidden} more"), "", "", ""])
    return _grid([title, "p50", "p99", "n"], cells, "lrrr")


def _compact_lat(
    strat: list[tuple[str, dict[str, float]]], entry: list[tuple[str, dict[str, float]]]
) -> list[Text]:
    """Strategy and order-entry stages side by side under one header row."""

    def cells(rows: list[tuple[str, dict[str, float]]], i: int) -> list[Cell]:
        if i < len(rows):
            k, v = rows[i]
            return [k, _dur(v["p50_us"]), _dur(v["p99_us"]), _count(v["n"])]
        return [_dim("no samples yet") if i == 0 else "", "", "", ""]

    rows = [
        [*cells(strat, i), _dim("│"), *cells(entry, i)]
        for i in range(max(len(strat), len(entry), 1))
    ]
    return _grid(
        ["latency", "p50", "p99", "n", " ", "order entry", "p50", "p99", "n"], rows, "lrrrllrrr"
    )


def _ladder(
    bids: list[tuple[int, int]], asks: list[tuple[int, int]], pd: int, sd: int, rows: int
) -> list[Text]:
    """Our quotes as a ladder: bid size, bid | ask, ask size; best first."""
    depth = max(len(bids), len(asks))
    shown = depth if depth <= rows else max(1, rows - 1)
    cells: list[list[Cell]] = []
    for i in range(shown):
        b = bids[i] if i < len(bids) else None
        a = asks[i] if i < len(asks) else None
        cells.append(
            [
                _sz(b[1], sd) if b else "",
                (_px(b[0], pd), "green") if b else "",
                _dim("│"),
                (_px(a[0], pd), "red") if a else "",
                _sz(a[1], sd) if a else "",
            ]
        )
    if not depth:
        cells.append(["", _dim("none"), _dim("│"), _dim("none"), ""])
    elif shown < depth:
        cells.append(
            [
                "",
                _dim(f"+{max(0, len(bids) - shown)}"),
                _dim("│"),
                _dim(f"+{max(0, len(asks) - shown)}"),
                "",
            ]
        )
    return _grid(["bid size", "bid", " ", "ask", "ask size"], cells, "rrllr")


def _tp_block(levels: list[dict[str, Any]], pd: int, sd: int, rows: int, total: int) -> list[Text]:
    """The trend ladder's levels: entry side and price, filled, held, its take-profit."""
    shown = levels if len(levels) <= rows else levels[: max(1, rows - 1)]
    cells: list[list[Cell]] = []
    for lvl in shown:
        tp_side = "SELL" if lvl["side"] == "BUY" else "BUY"
        tp: Cell = (
            ("gave up", _BAD) if lvl.get("gave_up") else f"{tp_side} {_px(lvl['tp_price'], pd)}"
        )
        cells.append(
            [
                lvl["side"],
                _px(lvl["price"], pd),
                _sz(lvl["filled"], sd),
                _sz(lvl["exposure"], sd),
                tp,
                _sz(lvl["tp_lots"], sd) if lvl["tp_lots"] else "-",
                str(lvl["retries"]),
            ]
        )
    if not total:
        cells.append([_dim("no level"), "", "", "", "", "", ""])
    elif total > len(shown):
        cells.append([_dim(f"+{total - len(shown)} more"), "", "", "", "", "", ""])
    return _grid(
        ["entry", "price", "filled", "holds", "take-profit", "tp size", "retries"], cells, "lrrrrrr"
    )


def _fit(items: list[str], room: int) -> str:
    """As many items as fit in ``room`` characters, then ``+N``."""
    out = ""
    for i, it in enumerate(items):
        rest = len(items) - i - 1
        cand = f"{out}  {it}" if out else it
        tail = f"  +{rest}" if rest else ""
        if len(cand) + len(tail) > room:
            return f"{out}  +{len(items) - i}" if out else f"+{len(items)}"
        out = cand
    return out


class _Layout:
    """The panel's rows for one snapshot at one size (see the module doc)."""

    def __init__(self, snap: dict[str, Any], width: int, height: int) -> None:
        self.snap = snap
        self.st: dict[str, Any] = snap["strategy"]
        self.pd: int = snap["price_decimals"]
        self.sd: int = snap["size_decimals"]
        self.width = width
        self.wide = width >= WIDE_COLUMNS
        self.inner = max(1, width - 4)  # the border and one column of padding each side
        self.height = height

    # -- rows -------------------------------------------------------------------------------
    def title(self) -> Text:
        s = self.snap
        return Text.assemble(
            "mmfast ",
            (f"{s['symbol']} ", "bold"),
            f"{self.st['strategy']} ",
            (s.get("mode", ""), "dim"),
            f"  {s['elapsed_s']:.1f}s",
            no_wrap=True,
            overflow="ellipsis",
        )

    def state(self) -> Text:
        st, s = self.st, self.snap
        guard = st["guard"]
        ks = (st.get("kill_switch") or {}).get("state", "-")
        parts: list[str | tuple[str, str] | Text] = [
            "guard ",
            (guard, _OK if guard == "OK" else _BAD),
            "  kill ",
            (ks, _KILL_STYLE.get(ks, _WARN)),
            "  connector ",
            ("ready", _OK) if s.get("ready", True) else ("NOT READY", _BAD),
        ]
        bud = s.get("budget") or {}
        if bud:
            level = bud.get("level", "-")
            parts += [
                "  budget ",
                f"{bud.get('tier', '-')} ",
                (level, _OK if level == "OK" else _WARN),
            ]
            q, ql = bud.get("volume_quota"), bud.get("volume_quota_level", "-")
            parts += [
                "  quota " if not self.wide else "  volume quota ",
                f"{'-' if q is None else _count(q)} ",
                (f"({ql})", _OK if ql == "ok" else _WARN),
            ]
        if self.wide:
            loop = s.get("loop") or {}
            if loop.get("lag_samples"):
                parts.append(f"  loop lag p99 {loop['lag_p99_ms']:.1f} ms")
            if loop.get("stalls"):
                parts.append((f"  stalls {loop['stalls']}", _WARN))
        return _line(*parts)

    def problems(self) -> list[Text]:
        s, out = self.snap, []
        if not s.get("ready", True):
            out.append(_line(("not ready: ", _BAD), s.get("not_ready_reason", "") or "-"))
        bud = s.get("budget") or {}
        if bud.get("reason"):
            out.append(_line(("budget: ", _WARN), bud["reason"]))
        return out

    def book(self) -> Text:
        b, pd, sd = self.st.get("book"), self.pd, self.sd
        if not b:
            return _line("book ", ("not in sync", _BAD))
        parts: list[str | tuple[str, str] | Text] = [
            "book  ",
            (f"{_sz(b['bid_size'], sd)}@{_px(b['bid'], pd)}", "green"),
            " | ",
            (f"{_px(b['ask'], pd)}x{_sz(b['ask_size'], sd)}", "red"),
        ]
        bid, ask = b["bid"], b["ask"]
        if bid > 0 and ask > 0:
            spread = f"  spread {format_units(ask - bid, pd)}"
            if self.wide:
                # The mid in half ticks, exactly; the spread in bps of it.
                spread = (
                    f"  mid {format_units((bid + ask) * 5, pd + 1)}{spread} "
                    f"({(ask - bid) * 20_000 / (bid + ask):.1f} bps)"
                )
            parts.append(spread)
        return _line(*parts)

    def quotes(self) -> list[Text]:
        pd, sd = self.pd, self.sd
        out = []
        for name, levels in (("bids", self.st["bids"]), ("asks", self.st["asks"])):
            items = [f"{_sz(s, sd)}@{_px(p, pd)}" for p, s in levels]
            out.append(
                _line(
                    f"{name}  ", _fit(items, self.inner - 6) if items else Text("none", style="dim")
                )
            )
        return out

    def position(self) -> Text:
        st, sd = self.st, self.sd
        pnl = st.get("pnl_usdc")
        pnl_t: str | tuple[str, str] = (
            "-"
            if pnl is None
            else (f"{pnl:+.4f}", "green" if pnl > 0 else "red" if pnl < 0 else "")
        )
        return _line(
            "position ",
            _sz(st["position_lots"], sd),
            "  pnl ",
            pnl_t,
            " USDC  fees ",
            f"{st['fees_usdc']:.4f}",
            "  fills ",
            _count(st["fills"]),
            f" ({_sz(st['filled_lots'], sd)})",
        )

    def orders(self) -> Text:
        st, c = self.st, self.st["counts"]
        if self.wide:
            den = st.get("denials") or {}
            why = " (" + ", ".join(f"{k} {v}" for k, v in sorted(den.items())) + ")" if den else ""
            return _line(
                f"orders open {st['orders_open']}  inflight {st['inflight']}  placed "
                f"{c['placed']}  modified {c['modified']}  cancelled {c['cancelled']}"
                f"  rejected ",
                (str(c["rejected"]), _BAD if c["rejected"] else ""),
                f"  denied {c['denied']}{why}  send errors ",
                (str(c.get("send_errors", 0)), _BAD if c.get("send_errors") else ""),
            )
        k = _count
        return _line(
            f"orders open {st['orders_open']}  inflight {st['inflight']}  placed "
            f"{k(c['placed'])}  mod {k(c['modified'])}  cxl {k(c['cancelled'])}  rej ",
            (k(c["rejected"]), _BAD if c["rejected"] else ""),
            f"  denied {k(c['denied'])}",
        )

    def strategy_rows(self) -> list[Text]:
        st, pd, sd = self.st, self.pd, self.sd
        out = []
        tp = st.get("tp")
        if tp:
            tr = st.get("trend") or {}
            d = tr.get("trend", 0)
            thr = tr.get("threshold_ticks")
            out.append(
                _line(
                    "trend ",
                    (_TREND.get(d, "?"), "bold"),
                    "  fast ",
                    _ema_px(tr.get("fast"), pd),
                    "  slow ",
                    _ema_px(tr.get("slow"), pd),
                    "" if thr is None else f"  threshold {format_units(thr, pd)}",
                )
            )
            n = tp["levels"]
            out.append(
                _line(
                    f"{'take-profits' if self.wide else 'tp'} "
                    f"{_sz(tp['tp_lots'], sd)} of {_sz(tp['exposure'], sd)} held  "
                    f"{n} level{'' if n == 1 else 's'}  carried "
                    f"{_sz(tp['carried'], sd)}  placed {_count(tp.get('placed', 0))}  "
                    f"crossed {_count(tp.get('crossings', 0))}"
                )
            )
        model = st.get("model")
        if model and self.wide:
            out.append(
                _line(
                    f"model avellaneda-stoikov  sigma {model['sigma']}  kappa "
                    f"{model['kappa']}  samples {model['sigma_samples']}/"
                    f"{model['kappa_samples']}"
                )
            )
        step = st.get("step")
        if step and self.wide:
            out.append(
                _line(
                    f"compiled step  frames {step['frames']}  planned {step['planned']}"
                    f"  skipped {step['skipped']}  errors ",
                    (str(step["errors"]), _BAD if step["errors"] else ""),
                    "  on the stream" if step.get("on_stream") else "",
                )
            )
        place = _placement(self.snap.get("placement"))
        if place:
            out.append(_line(place))
        return out

    # -- the whole panel --------------------------------------------------------------------
    def render(self) -> Panel:
        rows: list[Text] = [self.state(), *self.problems(), self.book()]
        if not self.wide:
            rows += self.quotes()
        rows += [self.position(), self.orders(), *self.strategy_rows()]
        # Rows left for the tables: the terminal minus the logs' share, the border and the rows
        # above (and a header row).
        room = max(2, self.height - LOG_ROWS - 2 - len(rows) - 1)
        st = self.st
        lat = st.get("latency") or {}
        entry = self.snap.get("order_latency") or {}
        n_lat = sum(1 for v in lat.values() if v.get("n"))
        n_entry = sum(1 for v in entry.values() if v.get("n"))
        levels = st.get("tp_levels") or []
        if not self.wide:
            # Latency first (at least the three key stages), then the TP levels with the rest.
            lat_rows = min(max(n_lat, n_entry, 1), max(3, room - min(len(levels), 3)))
            if self.inner >= NARROW_COLUMNS:
                rows += _compact_lat(
                    _lat_rows(lat, _KEY_STAGES, lat_rows), _lat_rows(entry, _KEY_ENTRY, lat_rows)
                )
            else:  # too narrow for the two side by side: one under the other, fewer rows
                half = max(1, (lat_rows - 1) // 2)
                for title, stages, key, n in (
                    ("latency", lat, _KEY_STAGES, n_lat),
                    ("order entry", entry, _KEY_ENTRY, n_entry),
                ):
                    shown = _lat_rows(stages, key, half)
                    rows += _lat_block(title, shown, hidden=n - len(shown))
            left = room - lat_rows
            if levels and left > 0:
                some = levels[:left] if len(levels) <= left else levels[: max(1, left - 1)]
                rows += [_line(_dim("level "), _tp_level(x, self.pd, self.sd)) for x in some]
                if len(some) < len(levels):
                    rows.append(_line(_dim(f"+{len(levels) - len(some)} more levels")))
            return self._panel(rows)
        blocks = [_ladder(st["bids"], st["asks"], self.pd, self.sd, room)]
        for title, stages, key, n in (
            ("strategy", lat, _KEY_STAGES, n_lat),
            ("order entry", entry, _KEY_ENTRY, n_entry),
        ):
            shown = _lat_rows(stages, key, room)
            blocks.append(_lat_block(title, shown, hidden=n - len(shown)))
        if st.get("tp") is not None:
            blocks.append(_tp_block(levels, self.pd, self.sd, room, st["tp"]["levels"]))
        rows.append(Text(""))
        rows += _stack(blocks, self.inner)
        return self._panel(rows)

    def _panel(self, rows: list[Text]) -> Panel:
        body = Text("\n", no_wrap=True, overflow="ellipsis").join(rows)
        return Panel(
            body,
            title=self.title(),
            title_align="left",
            box=box.ROUNDED,
            padding=(0, 1),
            expand=True,
        )


class StatusPanel:
    """The live panel of one snapshot, laid out for the width and height it is drawn at
    (the terminal's; a resize takes effect at the next redraw). The segments of the last
    size are kept: a log line printed above the panel redraws it without a new layout."""

    def __init__(self, snap: dict[str, Any]) -> None:
        self.snap = snap
        self._cache: tuple[int, int, list[Segment]] | None = None

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = options.max_width
        height = options.height or console.size.height
        c = self._cache
        if c is None or c[0] != width or c[1] != height:
            panel = _Layout(self.snap, width, height).render()
            c = self._cache = (width, height, list(console.render(panel, options)))
        yield from c[2]


def render_panel(snap: dict[str, Any], width: int, height: int = 50) -> list[str]:
    """The panel as plain text lines at ``width`` x ``height`` (no escape codes): what the
    terminal shows, for tests and the docs."""
    buf = io.StringIO()
    con = Console(
        file=buf,
        width=width,
        height=height,
        color_system=None,
        force_terminal=False,
        force_interactive=False,
        legacy_windows=False,
        _environ={},
    )
    con.print(StatusPanel(snap))
    return buf.getvalue().splitlines()


# ---------------------------------------------------------------------------------- displays
class StatusDisplay(Protocol):
    """Where the status goes every interval (``open_status`` picks one)."""

    def show(self, snap: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


def _redacted(obj: Any, redact: Callable[[str], str]) -> Any:
    """Every string in a snapshot passed through the run's redactor."""
    if isinstance(obj, str):
        return redact(obj)
    if isinstance(obj, dict):
        return {k: _redacted(v, redact) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_redacted(v, redact) for v in obj)
    return obj


class StatusPrinter:
    """Plain status blocks appended to a stream (a pipe, a file): ``render_status``'s lines,
    one block per interval, no escape codes."""

    def __init__(
        self, stream: IO[str] | None = None, *, redact: Callable[[str], str] | None = None
    ) -> None:
        self.stream = stream or sys.stdout
        self._redact = redact
        self.printed = 0  # blocks printed

    def show(self, snap: dict[str, Any]) -> None:
        lines = render_status(snap)
        if self._redact is not None:
            lines = [self._redact(x) for x in lines]
        self.stream.write("\n".join(lines) + "\n")
        self.stream.flush()
        self.printed += 1

    def close(self) -> None:
        pass


_LEVEL_STYLE: Final = {"DEBUG": "dim", "WARNING": _WARN, "ERROR": _BAD, "CRITICAL": _BAD}


class ConsoleLog:
    """A log handler's stream on a terminal: each record printed through a ``rich`` console
    as text (no markup, no highlighting): the panel's while it is up, so the record lands
    above it. A record of the ``TerminalFormatter`` has its message wrapped under itself (its
    first line's prefix styled by level); any other (a JSON log line) is printed as it is.

    Written from the event loop's thread, records are printed together ``DELAY_S`` later,
    not inside the logging call: printing above the panel redraws it (~2.5 ms), and a log
    call sits on the order path (the trend ladder logs each TP before placing it). From any
    other thread, or with no loop running, a record prints at once. ``drain`` prints what
    waits (the panel's ``close``, the runner before the summary, logging.shutdown at exit
    through ``flush``)."""

    DELAY_S: Final = 0.1  # records of the loop's thread wait at most this long, batched

    def __init__(self, console: Console, prefix_width: int = 0) -> None:
        self._console = console
        self._prefix = prefix_width
        self._lock = threading.Lock()
        self._pending: list[str] = []
        self._armed = False

    @classmethod
    def for_handler(cls, console: Console, handler: logging.Handler) -> ConsoleLog:
        terminal = isinstance(handler.formatter, TerminalFormatter)
        return cls(console, TerminalFormatter.PREFIX_WIDTH if terminal else 0)

    def _text(self, s: str) -> Text:
        text = s[:-1] if s.endswith("\n") else s
        p = self._prefix
        if not p or len(text) <= p or text[p - 1] != " ":
            return Text(text)
        width = max(p + 20, self._console.width)
        lines: list[str] = []
        for n, part in enumerate(text[p:].split("\n")):  # a traceback keeps its lines
            lines += textwrap.wrap(
                part,
                width,
                initial_indent=" " * p if n else text[:p],
                subsequent_indent=" " * p,
                break_on_hyphens=False,
                drop_whitespace=True,
            ) or [" " * p]
        out = Text("\n".join(lines))
        out.stylize(_LEVEL_STYLE.get(text[:p].split()[-1], ""), 0, p)
        return out

    def write(self, s: str) -> int:
        # StreamHandler.emit writes one record (with its terminator) per call, under its lock.
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        with self._lock:
            self._pending.append(s)  # laid out when printed: the log call stays cheap
            if self._armed:
                return len(s)
            if loop is not None:
                self._armed = True
                loop.call_later(self.DELAY_S, self.drain)
                return len(s)
        self.drain()
        return len(s)

    def flush(self) -> None:
        """The handler's flush after each record: a no-op on the loop's thread (the timer
        prints the batch), else ``drain`` (logging.shutdown at exit, another thread)."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            self.drain()

    def drain(self) -> None:
        """Print every record waiting, now."""
        with self._lock:
            batch, self._pending = self._pending, []
            self._armed = False
        if batch:
            self._console.print(
                Text("\n").join(self._text(x) for x in batch),
                soft_wrap=True,
                highlight=False,
                markup=False,
            )

    def isatty(self) -> bool:
        return self._console.is_terminal

    def fileno(self) -> int:
        return self._console.file.fileno()


def _same_terminal(a: IO[str], b: Any) -> bool:
    """True when both streams are the same terminal device (stdout and stderr of a shell)."""
    try:
        if not (a.isatty() and b.isatty()):
            return False
        sa, sb = os.fstat(a.fileno()), os.fstat(b.fileno())
    except (AttributeError, OSError, ValueError):
        return False
    return (sa.st_rdev, sa.st_dev) == (sb.st_rdev, sb.st_dev)


class LiveStatus:
    """The status panel at the bottom of a terminal (``rich.live.Live``), drawn on ``show`` and
    between shows only when a log line scrolls above it (no refresh thread: nothing competes
    with the event loop between intervals). Log handlers writing to the same terminal print
    through the panel's console while it is up (``log_handlers``; a handler writing elsewhere,
    a file or a pipe, is left alone). ``close`` removes the panel and gives the handlers their
    streams back, so what follows (the shutdown's logs, the summary) prints below the logs."""

    def __init__(
        self,
        out: IO[str],
        *,
        log_handlers: Iterable[logging.Handler] = (),
        redact: Callable[[str], str] | None = None,
        console: Console | None = None,
        route_logs: bool | None = None,
    ) -> None:
        self.console = console or Console(file=out, highlight=False)
        self._redact = redact
        # route_logs None: the handlers writing to the same terminal as ``out``.
        self._handlers = [
            h
            for h in log_handlers
            if isinstance(h, logging.StreamHandler)
            and (route_logs if route_logs is not None else _same_terminal(out, h.stream))
        ]
        self._saved: list[tuple[logging.StreamHandler[Any], Any]] = []
        self._live: Live | None = None
        self.printed = 0  # panels drawn

    def show(self, snap: dict[str, Any]) -> None:
        if self._redact is not None:
            snap = _redacted(snap, self._redact)
        panel = StatusPanel(snap)
        if self._live is None:
            for h in self._handlers:
                old = h.setStream(ConsoleLog.for_handler(self.console, h))
                self._saved.append((h, old))
                if isinstance(old, ConsoleLog):
                    # Its records still waiting print now, before the panel: printed later
                    # on the old console they would land inside it.
                    old.drain()
            self._live = Live(
                panel,
                console=self.console,
                auto_refresh=False,
                transient=True,
                redirect_stdout=True,
                redirect_stderr=bool(self._handlers),
            )
            self._live.start(refresh=True)
        else:
            self._live.update(panel, refresh=True)
        self.printed += 1

    def close(self) -> None:
        live, self._live = self._live, None
        mine = [h.stream for h, _ in self._saved if isinstance(h.stream, ConsoleLog)]
        for stream in mine:
            stream.drain()  # what waits goes above the panel's last frame
        if live is not None:
            live.stop()  # erased: the console prints where the panel was from here on
        for h, stream in self._saved:
            h.setStream(stream)
        self._saved.clear()
        for stream in mine:
            stream.drain()  # logged while it went: below the logs, in order


def open_status(
    out: IO[str],
    *,
    log_handlers: Iterable[logging.Handler] = (),
    redact: Callable[[str], str] | None = None,
) -> StatusDisplay:
    """The live panel when ``out`` is an interactive terminal, plain blocks otherwise (a pipe,
    a file, ``TERM=dumb``)."""
    console = Console(file=out, highlight=False)
    if console.is_interactive:
        return LiveStatus(out, log_handlers=log_handlers, redact=redact, console=console)
    return StatusPrinter(out, redact=redact)


def wrap_lines(lines: Iterable[str], width: int, indent: int = 13) -> Iterator[str]:
    """Lines cut at ``width`` on spaces, continued under a hanging indent (the summary's
    values start at column 13): a summary on a narrow terminal without broken-up rows."""
    for line in lines:
        if len(line) <= width:
            yield line
        else:
            yield from textwrap.wrap(
                line, width, subsequent_indent=" " * indent, break_on_hyphens=False
            ) or [""]


# ---------------------------------------------------------------------------------- summary
def render_summary(s: dict[str, Any]) -> list[str]:
    """The exit summary block (see ``Runner.summary``)."""
    sd = s["size_decimals"]
    st = s["strategy"]
    c = st["counts"]
    pnl = st.get("pnl_usdc")
    ks = st.get("kill_switch") or {}
    lines = [
        "=== mmfast run summary ===",
        f"venue        {s['mode']}  market {s['symbol']} ({s['market']})  strategy "
        f"{st['strategy']}",
        f"duration     {s['elapsed_s']:.1f} s  (stop: {s['stop_reason']})",
        f"fills        {st['fills']}  volume {_sz(st['filled_lots'], sd)}",
        f"position     {_sz(st['position_lots'], sd)}",
        f"pnl          {'-' if pnl is None else f'{pnl:+.6f}'} USDC  (fees {st['fees_usdc']:.6f})",
        f"orders       placed {c['placed']}  modified {c['modified']}  cancelled "
        f"{c['cancelled']}  rejected {c['rejected']}  denied by risk {c['denied']}  "
        f"send errors {c['send_errors']}",
        f"kill switch  {ks.get('state', '-')}  trips {ks.get('trips', 0)}",
    ]
    den = st.get("denials") or {}
    if den:
        lines.append("risk denials " + ", ".join(f"{k} {v}" for k, v in sorted(den.items())))
    lat = st.get("latency") or {}
    for k, v in lat.items():
        lines.append(
            f"latency      {k:<13} p50 {v['p50_us']:>9.1f} us  p99 "
            f"{v['p99_us']:>9.1f} us  (n {v['n']:.0f})"
        )
    for k, v in (s.get("order_latency") or {}).items():
        if v.get("n"):
            lines.append(
                f"order entry  {k:<13} p50 {v['p50_us']:>9.1f} us  p99 "
                f"{v['p99_us']:>9.1f} us  (n {v['n']:.0f})"
            )
    sig = s.get("signer")
    if sig:
        line = f"signer       {sig['kind']}  signed {sig['signed']}  failed {sig['failed']}"
        if "pooled" in sig:
            line += (
                f"  nonce pool {sig['size']} (ready {sig['ready']}): pooled "
                f"{sig['pooled']}  fresh {sig['fresh']}"
            )
        lines.append(line)
        if "direct" in sig:
            lines.append(
                f"direct tx    {sig['direct']} signed and sent by the compiled step "
                f"({sig.get('compiled_frames', 0)} frames by the compiled listener)"
            )
    g = s.get("guard")
    if g:
        how = (
            "running"
            if g["alive"]
            else "not running"
            if g["exit_code"] is None
            else f"exited {g['exit_code']}"
        )
        if g.get("lost"):
            how += " (died while the bot ran)"
        lines.append(f"guard        pid {g['pid']}  {how}  journal {g['journal']}")
    sim = s.get("sim")
    if sim:
        lines.append(f"simulator    {_sim(sim)}")
    loop = s.get("loop")
    if loop and loop.get("lag_samples"):
        lines.append(
            f"loop lag     p50 {loop['lag_p50_ms']:.1f} ms, p99 {loop['lag_p99_ms']:.1f}"
            f" ms, max {loop['lag_max_ms']:.1f} ms (a timer every 100 ms, "
            f"{loop['lag_samples']} samples)"
        )
    place = _placement(s.get("placement"))
    if place:
        lines.append(f"placement    {place}")
    if loop and loop["stalls"]:
        lines.append(
            f"loop stalls  {loop['stalls']} (longest {loop['max_stall_ms']:.0f} ms): "
            "each pulled the quotes and reconciled before quoting again"
        )
    left = s.get("orders_left")
    how = ""
    if left == 0 and s.get("confirmed_by") == "account stream":
        how = " (confirmed by the account's order stream: REST could not answer)"
    elif (s.get("sim") or {}).get("early_exit"):
        how = " (the simulator exited while the bot ran: its orders ended with it)"
    lines.append(f"shutdown     orders left open: {'unknown' if left is None else left}{how}")
    if s.get("journal"):
        lines.append(f"journal      {s['journal']}")
    lines.append(f"exit code    {s['exit_code']}")
    return lines
