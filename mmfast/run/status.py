"""Live terminal status and the exit summary of ``mmfast run``.

``render_status(snapshot)`` turns the runner's snapshot (strategy status + connector latency)
into a few lines: book top, our quotes, position, PnL, fills, order counts, latency p50/p99 per
stage. ``StatusPrinter`` redraws them in place on a terminal (ANSI cursor-up) and prints plain
lines otherwise (a pipe, a log file). ``render_summary`` is the block printed at exit.

Human units only here, at the edge: ticks and lots formatted exactly by mmfast.core.units.
"""

from __future__ import annotations

import sys
from typing import IO, Any

from mmfast.core.units import format_units

__all__ = ["StatusPrinter", "render_status", "render_summary"]


def _px(ticks: int | None, pd: int) -> str:
    if ticks is None or ticks <= 0:
        return "-"
    return format_units(ticks, pd)


def _sz(lots: int, sd: int) -> str:
    return format_units(lots, sd)


def _quotes(levels: list[tuple[int, int]], pd: int, sd: int, n: int = 3) -> str:
    if not levels:
        return "none"
    shown = " ".join(f"{_sz(s, sd)}@{_px(p, pd)}" for p, s in levels[:n])
    more = f" +{len(levels) - n}" if len(levels) > n else ""
    return shown + more


def _latency(lat: dict[str, dict[str, float]]) -> str:
    if not lat:
        return "no samples yet"
    return "  ".join(f"{k} {v['p50_us']:.0f}/{v['p99_us']:.0f}us" for k, v in lat.items()
                     if v.get("n"))


def _placement(p: dict[str, Any] | None) -> str:
    """``[run] cpu`` / ``busy_poll`` as applied ("" when neither is set)."""
    if not p:
        return ""
    parts = []
    if "cpu" in p:
        rest = ",".join(map(str, p["other_cpus"])) or "none"
        parts.append(f"loop pinned to CPU {p['cpu']} ({p['threads_moved']} other threads on "
                     f"CPUs {rest})")
    if "polls_per_s" in p:
        parts.append(f"busy poll {'on' if p['busy_poll'] else 'stopped'} "
                     f"({p['polls_per_s'] / 1000:.0f}k polls/s)")
    return ", ".join(parts)


def _sim(sim: dict[str, Any]) -> str:
    """Where the simulator of a sim-mode run ran, and how its child process ended."""
    if sim["mode"] == "thread":
        return "a thread of this process (its load is in the latencies above)"
    if sim["mode"] == "external":
        return f"external {sim.get('rest_url')}"
    code = sim.get("exit")
    how = "running" if sim.get("running") else "not running" if code is None else \
        f"exited {code}"
    if sim.get("early_exit"):
        how += " (while the bot ran)"
    return f"child process pid {sim.get('pid')}  {how}  log {sim.get('log')}"


def render_status(snap: dict[str, Any]) -> list[str]:
    """Status lines of one snapshot (see ``Runner.snapshot``)."""
    st = snap["strategy"]
    pd, sd = snap["price_decimals"], snap["size_decimals"]
    book = st.get("book")
    if book:
        top = (f"book {_sz(book['bid_size'], sd)}@{_px(book['bid'], pd)} | "
               f"{_px(book['ask'], pd)}x{_sz(book['ask_size'], sd)}")
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
        lines.append(f"  trend {tr.get('trend', 0):+d} (fast {tr.get('fast')}, slow "
                     f"{tr.get('slow')})  tp levels {tp['levels']} tp {_sz(tp['tp_lots'], sd)} "
                     f"exposure {_sz(tp['exposure'], sd)} carried {_sz(tp['carried'], sd)}")
    bud = snap.get("budget") or {}
    if bud:
        q = bud.get("volume_quota")
        lines.append(f"  budget {bud['tier']} {bud['level']}"
                     f"{' (' + bud['reason'] + ')' if bud.get('reason') else ''}  volume quota "
                     f"{'-' if q is None else q} ({bud.get('volume_quota_level', '-')})")
    place = _placement(snap.get("placement"))
    if place:
        lines.append(f"  {place}")
    if not snap.get("ready", True):
        lines.append(f"  connector not ready: {snap.get('not_ready_reason', '')}")
    return lines


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
        f"pnl          {'-' if pnl is None else f'{pnl:+.6f}'} USDC  "
        f"(fees {st['fees_usdc']:.6f})",
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
        lines.append(f"latency      {k:<13} p50 {v['p50_us']:>9.1f} us  p99 "
                     f"{v['p99_us']:>9.1f} us  (n {v['n']:.0f})")
    for k, v in (s.get("order_latency") or {}).items():
        if v.get("n"):
            lines.append(f"order entry  {k:<13} p50 {v['p50_us']:>9.1f} us  p99 "
                         f"{v['p99_us']:>9.1f} us  (n {v['n']:.0f})")
    sig = s.get("signer")
    if sig:
        line = f"signer       {sig['kind']}  signed {sig['signed']}  failed {sig['failed']}"
        if "pooled" in sig:
            line += (f"  nonce pool {sig['size']} (ready {sig['ready']}): pooled "
                     f"{sig['pooled']}  fresh {sig['fresh']}")
        lines.append(line)
        if "direct" in sig:
            lines.append(f"direct tx    {sig['direct']} signed and sent by the compiled step "
                         f"({sig.get('compiled_frames', 0)} frames by the compiled listener)")
    g = s.get("guard")
    if g:
        how = ("running" if g["alive"] else "not running" if g["exit_code"] is None
               else f"exited {g['exit_code']}")
        if g.get("lost"):
            how += " (died while the bot ran)"
        lines.append(f"guard        pid {g['pid']}  {how}  journal {g['journal']}")
    sim = s.get("sim")
    if sim:
        lines.append(f"simulator    {_sim(sim)}")
    loop = s.get("loop")
    if loop and loop.get("lag_samples"):
        lines.append(f"loop lag     p50 {loop['lag_p50_ms']:.1f} ms, p99 {loop['lag_p99_ms']:.1f}"
                     f" ms, max {loop['lag_max_ms']:.1f} ms (a timer every 100 ms, "
                     f"{loop['lag_samples']} samples)")
    place = _placement(s.get("placement"))
    if place:
        lines.append(f"placement    {place}")
    if loop and loop["stalls"]:
        lines.append(f"loop stalls  {loop['stalls']} (longest {loop['max_stall_ms']:.0f} ms): "
                     "each pulled the quotes and reconciled before quoting again")
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


class StatusPrinter:
    """Prints status blocks: in place on a terminal, appended otherwise."""

    def __init__(self, stream: IO[str] | None = None, *, tty: bool | None = None) -> None:
        self.stream = stream or sys.stdout
        self.tty = self.stream.isatty() if tty is None else tty
        self._last = 0  # lines of the block drawn last (tty mode)
        self.printed = 0  # blocks printed

    def show(self, lines: list[str]) -> None:
        out = self.stream
        if self.tty and self._last:
            out.write(f"\x1b[{self._last}F\x1b[J")  # up to the block's start, clear below
        out.write("\n".join(lines) + "\n")
        out.flush()
        self._last = len(lines)
        self.printed += 1

    def done(self) -> None:
        self._last = 0
