"""The figures of one run, computed from its journal records (pure Python: ``report.json`` needs
no matplotlib). What each figure means and how it is computed: docs/report.md.

Times are the run's clock (``mono_ns``: simulated time in a run at a time scale), in seconds
since its ``run_start``. Prices and sizes stay ints (ticks, lots; a mid is kept doubled, so a
half tick is exact) until they are shown, converted once by ``mmfast.core.units`` with the
market decimals of ``run_start``.
"""

from __future__ import annotations

import bisect
import datetime as _dt
import itertools
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Final

from mmfast.core.latency import HIST_BOUNDS_NS
from mmfast.core.types import Fill, OrderStatus, Position, Side
from mmfast.core.units import USDC_DECIMALS, format_units, to_float
from mmfast.report.reader import JournalFile, JournalRun, ReportError

__all__ = ["HORIZONS_S", "MAX_MID_AGE_S", "Figures", "FillRow", "MarketUnits", "Series", "compute"]

HORIZONS_S: Final = (1, 10, 60)  # markout horizons
# A mid older than this at the moment asked for is no mid (a gap in the `market` records:
# the book out of sync, a stall): the markout is left out rather than read from stale prices.
MAX_MID_AGE_S: Final = 1.0
_NS: Final = 1_000_000_000
_UPTIME_BUCKETS: Final = 100  # uptime over time: about this many buckets, each >= 1 s
_CODE = re.compile(r"rejected (\d+)")
# Latency stages in the order a quote goes through them (others after, by name).
_STAGE_ORDER: Final = (
    "book>quote",
    "quote>plan",
    "plan>gate",
    "quote>send",
    "book>send",
    "send>ack",
    "ack>open",
    "fill>requote",
    "queue",
    "sign",
    "send",
    "ack",
    "total",
)


@dataclass(frozen=True, slots=True)
class MarketUnits:
    """The market's decimals and the conversions of the report (one place, via units)."""

    symbol: str
    market: int | None
    price_decimals: int
    size_decimals: int

    def price(self, ticks: int) -> float:
        return to_float(ticks, self.price_decimals)

    def price_x2(self, ticks_x2: int) -> float:
        """A doubled price (a mid) in USDC."""
        return to_float(ticks_x2 * 5, self.price_decimals + 1)

    def qty(self, lots: int) -> float:
        return to_float(lots, self.size_decimals)

    def usdc_x2(self, ticklots_x2: int) -> float:
        """Twice an amount in tick x lot units -> USDC."""
        return to_float(ticklots_x2 * 5, self.price_decimals + self.size_decimals + 1)

    def qty_text(self, lots: int) -> str:
        return format_units(lots, self.size_decimals)


@dataclass(slots=True)
class FillRow:
    """One fill of ours with what the report derives from it."""

    t: float  # s since the run's start
    t_ns: int  # the run's clock
    trade_id: Any
    side: int  # +1 buy, -1 sell
    price: int  # ticks
    size: int  # lots
    fee: int  # micro-USDC, > 0 paid
    maker: bool | None
    position: int | None  # lots after it, as the bot saw the venue's
    mid_x2: int | None  # the mid at the fill, doubled (None: unknown)
    mid_from: str  # "fill" (the bot's book at the fill), "market" (the last sample) or ""
    markouts_x2: dict[int, int | None] = field(default_factory=dict)  # h -> side*(mid-px)*2
    missing: dict[int, str] = field(default_factory=dict)  # h -> why no markout

    def edge_bps(self, diff_x2: int) -> float:
        """A price difference (doubled ticks) in bps of the fill price."""
        return diff_x2 / 2 / self.price * 1e4


@dataclass(slots=True)
class Series:
    """What the plots draw (the figures' raw series)."""

    book_t: list[float] = field(default_factory=list)
    bid: list[float | None] = field(default_factory=list)
    ask: list[float | None] = field(default_factory=list)
    mid: list[float | None] = field(default_factory=list)
    our_bid: list[float | None] = field(default_factory=list)
    our_ask: list[float | None] = field(default_factory=list)
    pnl_t: list[float] = field(default_factory=list)
    pnl_total: list[float | None] = field(default_factory=list)  # at the mark, fees out
    pnl_realized: list[float] = field(default_factory=list)  # realized - fees
    inv_t: list[float] = field(default_factory=list)
    inventory: list[float] = field(default_factory=list)
    fills: list[FillRow] = field(default_factory=list)
    uptime_edges: list[float] = field(default_factory=list)
    uptime_bid: list[float] = field(default_factory=list)
    uptime_ask: list[float] = field(default_factory=list)
    latency: dict[str, dict[str, list[int]]] = field(default_factory=dict)  # group->stage
    bounds_us: list[float] = field(default_factory=list)
    rejects_orders: dict[str, int] = field(default_factory=dict)
    rejects_txs: dict[str, int] = field(default_factory=dict)
    denials: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class Figures:
    """A run's figures: ``data`` is report.json, ``rows`` the summary table (label, text),
    ``notes`` what could not be computed and why, ``series`` what the plots draw."""

    units: MarketUnits
    data: dict[str, Any]
    rows: list[tuple[str, str]]
    notes: list[str]
    series: Series
    missing: dict[str, str]  # figure -> why it was not computed


# ---------------------------------------------------------------------------- helpers
def _int(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def _x2(v: Any) -> int | None:
    """A price field (int ticks, or a half tick as a float) doubled; None when absent."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    if isinstance(v, float) and not math.isfinite(v):
        return None
    d = round(v * 2)
    return d if d > 0 else None


def _quantile(sorted_vals: list[float], q: float) -> float:
    """Linear-interpolated quantile of sorted values."""
    n = len(sorted_vals)
    if n == 1:
        return sorted_vals[0]
    pos = q * (n - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, n - 1)
    return sorted_vals[lo] + (sorted_vals[hi] - sorted_vals[lo]) * (pos - lo)


def _stats(vals: list[float]) -> dict[str, float | int | None]:
    """n, mean, median, p05, p95, min, max and the share above 0 (None when empty)."""
    if not vals:
        return {
            "n": 0,
            "mean": None,
            "median": None,
            "p05": None,
            "p95": None,
            "min": None,
            "max": None,
            "positive_share": None,
        }
    s = sorted(vals)
    return {
        "n": len(s),
        "mean": sum(s) / len(s),
        "median": _quantile(s, 0.5),
        "p05": _quantile(s, 0.05),
        "p95": _quantile(s, 0.95),
        "min": s[0],
        "max": s[-1],
        "positive_share": sum(1 for v in s if v > 0) / len(s),
    }


def _decimals_from(records: Iterable[dict[str, Any]]) -> tuple[int, int] | None:
    """The market decimals from a record that carries a price or size beside its human
    form (a journal that lost its run_start): digits after the point of ``px`` / ``qty``."""
    pd = sd = None
    for r in records:
        if pd is None and isinstance(r.get("px"), str) and _int(r.get("price")):
            txt = r["px"].lstrip("-")
            pd = len(txt.split(".")[1]) if "." in txt else 0
        if sd is None and isinstance(r.get("qty"), str) and _int(r.get("size")):
            txt = r["qty"].lstrip("-")
            sd = len(txt.split(".")[1]) if "." in txt else 0
        if pd is not None and sd is not None:
            return pd, sd
    return None


class _Clock:
    """Record -> ns of the run's clock: ``mono_ns``, or from ``ts_ms`` relative to the
    start when a record lacks it."""

    def __init__(self, start: dict[str, Any] | None, records: list[dict[str, Any]]) -> None:
        ref = start if start is not None else (records[0] if records else {})
        self.mono0 = _int(ref.get("mono_ns"))
        self.wall0 = _int(ref.get("ts_ms"))
        if self.mono0 is None:  # the first record without mono_ns: wall time throughout
            self.mono0 = (self.wall0 or 0) * 1_000_000

    def ns(self, r: dict[str, Any]) -> int:
        m = _int(r.get("mono_ns"))
        if m is not None:
            return m
        ts = _int(r.get("ts_ms")) or 0
        assert self.mono0 is not None
        return self.mono0 + (ts - (self.wall0 or ts)) * 1_000_000


class _Mids:
    """The mid path (doubled ticks) from `market` records, read as of a time."""

    def __init__(self) -> None:
        self.t: list[int] = []  # ns
        self.m2: list[int] = []

    def add(self, t: int, m2: int) -> None:
        self.t.append(t)
        self.m2.append(m2)

    def at(self, t: int) -> int | None:
        """The last mid at or before ``t``, if it is at most MAX_MID_AGE_S old."""
        i = bisect.bisect_right(self.t, t) - 1
        if i < 0 or t - self.t[i] > MAX_MID_AGE_S * _NS:
            return None
        return self.m2[i]


# ---------------------------------------------------------------------------- compute
@dataclass(slots=True)
class _Ctx:
    """What the steps of ``compute`` share."""

    units: MarketUnits
    clock: _Clock
    t0: int  # ns of the start
    by_kind: dict[str, list[dict[str, Any]]]  # kept records (reader.KEPT)
    counts: dict[str, int]  # records per kind, kept or not
    notes: list[str]
    missing: dict[str, str]
    series: Series = field(default_factory=Series)
    mids: _Mids = field(default_factory=_Mids)
    marks: list[tuple[int, int]] = field(default_factory=list)  # (ns, mark ticks)
    inv: list[tuple[int, int]] = field(default_factory=list)  # (ns, position lots)
    venue_pos: list[tuple[int, int]] = field(default_factory=list)  # market records' (ns, lots)
    end_ns: int = 0  # the last moment of the run (run_stop, else the last record)

    def last(self, kind: str) -> dict[str, Any] | None:
        got = self.by_kind.get(kind)
        return got[-1] if got else None

    def secs(self, ns: int) -> float:
        return (ns - self.t0) / _NS


def _units(journal: JournalFile, run: JournalRun, notes: list[str]) -> MarketUnits:
    """The market and its decimals: from run_start, else from the records' human units."""
    st = run.start or {}
    pd, sd = _int(st.get("price_decimals")), _int(st.get("size_decimals"))
    if pd is None or sd is None:
        got = _decimals_from(run.records)
        if got is None:
            raise ReportError(
                f"run {run.index} of {journal.path}: no run_start with the "
                "market's decimals, and no record with prices in human units "
                "to take them from"
            )
        pd, sd = got
        notes.append(
            "no run_start record with the market's decimals: taken from the human "
            f"units of the records (price {pd}, size {sd} decimals)"
        )
    return MarketUnits(
        symbol=str(st.get("symbol") or "?"),
        market=_int(st.get("market")),
        price_decimals=pd,
        size_decimals=sd,
    )


def _price_path(c: _Ctx) -> None:
    """The book's top and mid, our best quotes, marks and positions from `market` records."""
    u, series = c.units, c.series
    for r in c.by_kind.get("market", ()):
        t = c.clock.ns(r)
        bid, ask = _int(r.get("bid")), _int(r.get("ask"))
        m2 = _x2(r.get("mid"))
        if m2 is None and bid and ask:
            m2 = bid + ask
        series.book_t.append(c.secs(t))
        series.bid.append(u.price(bid) if bid else None)
        series.ask.append(u.price(ask) if ask else None)
        series.mid.append(u.price_x2(m2) if m2 else None)
        ob, oa = _int(r.get("our_bid")), _int(r.get("our_ask"))
        series.our_bid.append(u.price(ob) if ob else None)
        series.our_ask.append(u.price(oa) if oa else None)
        if m2:
            c.mids.add(t, m2)
        mark = _int(r.get("mark"))
        if mark and mark > 0:
            c.marks.append((t, mark))
        elif m2:
            c.marks.append((t, m2 // 2))  # no mark: the mid, floored to a tick
        pos = _int(r.get("position"))
        if pos is not None:
            c.venue_pos.append((t, pos))
    if not c.by_kind.get("market"):
        why = (
            "no `market` records (a journal from before they were written, or a run "
            "stopped before its first tick)"
        )
        c.missing["price_path"] = why
        c.notes.append(f"price path, markouts and PnL at the mark: {why}")
    elif not c.mids.t:
        c.missing["price_path"] = "the book was never in sync in the `market` records"
        c.notes.append("price path: " + c.missing["price_path"])


def _fills(c: _Ctx) -> None:
    """Fill rows with the mid at each fill and after each horizon."""
    mids = c.mids
    last_mid = mids.t[-1] if mids.t else None
    bad = 0
    for r in c.by_kind.get("fill", ()):
        side_name = r.get("side")
        price, size = _int(r.get("price")), _int(r.get("size"))
        if side_name not in ("BUY", "SELL") or not price or not size or price <= 0 or size <= 0:
            bad += 1
            continue
        sign = Side[side_name].sign
        t = c.clock.ns(r)
        m2 = _x2(r.get("mid"))
        src = "fill" if m2 is not None else ""
        if m2 is None:
            m2 = mids.at(t)
            src = "market" if m2 is not None else ""
        row = FillRow(
            t=c.secs(t),
            t_ns=t,
            trade_id=r.get("trade_id"),
            side=sign,
            price=price,
            size=size,
            fee=_int(r.get("fee")) or 0,
            maker=r.get("maker") if isinstance(r.get("maker"), bool) else None,
            position=_int(r.get("position")),
            mid_x2=m2,
            mid_from=src,
        )
        for h in HORIZONS_S:
            at = t + h * _NS
            mh = mids.at(at) if last_mid is not None and at <= last_mid else None
            row.markouts_x2[h] = None if mh is None else sign * (mh - 2 * price)
            if mh is None:
                row.missing[h] = (
                    "no mid path"
                    if last_mid is None
                    else "after the run's end"
                    if at > last_mid
                    else "no fresh mid"
                )
        c.series.fills.append(row)
    if bad:
        c.notes.append(f"{bad} fill record(s) without a side, price or size: left out")


def _start_position(c: _Ctx) -> int:
    """The position before the run's first fill: a `market` record's from before it (the
    venue's, no fill of ours pending), else the first fill's own record less that fill, else
    flat. The inventory is this start plus the fills, rebased where the bot took the venue's
    size (`position_rebase`)."""
    fills = c.series.fills
    first = fills[0].t_ns if fills else None
    # The bot's records after its first fill are its live view (older builds counted a fill
    # twice for a moment when the venue's position message came before the trade): not read.
    for t, p in c.venue_pos:
        if first is None or t < first:
            return p
        break
    if fills and fills[0].position is not None:
        return fills[0].position - fills[0].side * fills[0].size
    return 0


def _pnl_path(c: _Ctx) -> Position:
    """Fills replayed in time order through ``Position`` (the bot's own accounting), the
    PnL taken at every fill and every mark; the inventory from the start position and the
    fills. Returns the position of the run's fills after the last one."""
    u, series = c.units, c.series
    start = _start_position(c)
    c.inv = [(c.t0, start)]
    scale = Fraction(1, 10 ** (u.price_decimals + u.size_decimals))
    pos = Position(u.market if u.market is not None else 0)
    events: list[tuple[int, int, Any]] = [(row.t_ns, 1, row) for row in series.fills]
    events += [(t, 0, m) for t, m in c.marks]
    for r in c.by_kind.get("position_rebase", ()):
        venue, ours = _int(r.get("venue")), _int(r.get("fills"))
        if venue is not None and ours is not None:
            events.append((c.clock.ns(r), 2, venue - ours))
    events.sort(key=lambda e: (e[0], e[1]))
    mark: int | None = None
    for t, what, obj in events:
        if what == 2:
            # The bot took the venue's size (a fill it never got, a trade of the account's
            # not made by it): the inventory follows; the PnL has only the fills it got.
            start += obj
            c.inv.append((t, start + pos.size_lots))
            continue
        if what == 1:
            row = obj
            pos.apply_fill(
                Fill(
                    trade_id=0,
                    market=pos.market,
                    side=Side.BUY if row.side > 0 else Side.SELL,
                    price_ticks=row.price,
                    size_lots=row.size,
                    fee=row.fee,
                    is_maker=bool(row.maker),
                    client_order_index=None,
                    order_index=None,
                    ts_ns=t,
                )
            )
            c.inv.append((t, start + pos.size_lots))
        else:
            mark = obj
        realized = float(pos.realized_pnl * scale) - pos.fees_paid / 1e6
        series.pnl_t.append(c.secs(t))
        series.pnl_realized.append(realized)
        series.pnl_total.append(
            None if mark is None else realized + float(pos.unrealized_pnl(mark) * scale)
        )
    c.inv.append((max(c.end_ns, c.inv[-1][0]), c.inv[-1][1]))  # held to the end
    series.inv_t = [c.secs(t) for t, _ in c.inv]
    series.inventory = [u.qty(p) for _, p in c.inv]
    return pos


def _pnl(c: _Ctx, pos: Position, summary: dict[str, Any] | None) -> dict[str, Any]:
    """The final PnL parts (USDC)."""
    u = c.units
    scale = Fraction(1, 10 ** (u.price_decimals + u.size_decimals))
    # The summary's mark is the last one the bot read (after the stop): the PnL it printed.
    end_mark = (_int(summary.get("mark")) if summary else None) or (
        c.marks[-1][1] if c.marks else None
    )
    unrealized = (
        float(pos.unrealized_pnl(end_mark) * scale)
        if end_mark
        else (0.0 if pos.size_lots == 0 else None)
    )
    funding = summary.get("funding_usdc") if summary else None
    funding_usdc = float(funding) if isinstance(funding, (int, float)) else None
    realized, fees = float(pos.realized_pnl * scale), pos.fees_paid / 1e6
    total = None
    if unrealized is not None:
        total = realized + unrealized - fees + (funding_usdc or 0.0)
    elif c.series.fills:
        c.notes.append(
            "unrealized PnL: no mark price in the journal (no `market` records, no summary mark)"
        )
    bot = summary.get("pnl_usdc") if summary else None
    return {
        "realized_usdc": realized,
        "unrealized_usdc": unrealized,
        "fees_usdc": fees,
        "funding_usdc": funding_usdc,
        "total_usdc": total,
        "mark": u.price(end_mark) if end_mark else None,
        "bot_reported_usdc": bot if isinstance(bot, (int, float)) else None,
    }


def _edges(c: _Ctx, rows: list[FillRow], diffs_x2: list[int]) -> dict[str, Any]:
    """Per-fill edges (doubled ticks, signed by side) -> bps stats and USDC totals."""
    u = c.units
    bps = [f.edge_bps(d) for f, d in zip(rows, diffs_x2, strict=True)]
    usdc = [u.usdc_x2(d * f.size) for f, d in zip(rows, diffs_x2, strict=True)]
    notional = sum(u.usdc_x2(2 * f.price * f.size) for f in rows)
    return {
        "bps": _stats(bps),
        "usdc_total": sum(usdc),
        "usdc_mean": sum(usdc) / len(usdc) if usdc else None,
        "volume_weighted_bps": sum(usdc) / notional * 1e4 if notional else None,
    }


def _markouts(c: _Ctx) -> dict[str, Any]:
    fills = c.series.fills
    out: dict[str, Any] = {}
    for h in HORIZONS_S:
        have = [f for f in fills if f.markouts_x2.get(h) is not None]
        why: dict[str, int] = {}
        for f in fills:
            if h in f.missing:
                why[f.missing[h]] = why.get(f.missing[h], 0) + 1
        out[f"{h}s"] = {**_edges(c, have, [f.markouts_x2[h] or 0 for f in have]), "missing": why}
    if not fills:
        c.missing["markouts"] = "no fills"
    elif not any(out[f"{h}s"]["bps"]["n"] for h in HORIZONS_S):
        c.missing["markouts"] = (
            "no mid after any fill"
            if c.by_kind.get("market")
            else "no `market` records (the mid after each fill is unknown)"
        )
    return out


def _spread(c: _Ctx) -> dict[str, Any]:
    fills = c.series.fills
    cap = [f for f in fills if f.mid_x2 is not None]

    def diffs(rows: list[FillRow]) -> list[int]:
        return [f.side * ((f.mid_x2 or 0) - 2 * f.price) for f in rows]

    buys = [f for f in cap if f.side > 0]
    sells = [f for f in cap if f.side < 0]
    out = {
        **_edges(c, cap, diffs(cap)),
        "buy_bps": _edges(c, buys, diffs(buys))["bps"],
        "sell_bps": _edges(c, sells, diffs(sells))["bps"],
        "mid_from_fill_record": sum(1 for f in cap if f.mid_from == "fill"),
        "mid_from_market_record": sum(1 for f in cap if f.mid_from == "market"),
        "missing": len(fills) - len(cap),
    }
    if not fills:
        c.missing["spread_captured"] = "no fills"
    elif not cap:
        c.missing["spread_captured"] = (
            "no mid at any fill (fill records without `mid` and "
            "no `market` record within 1 s before them)"
        )
        c.notes.append("spread captured: " + c.missing["spread_captured"])
    return out


def _orders(c: _Ctx, summary: dict[str, Any] | None) -> dict[str, Any]:
    """Order counts (as the run's summary counts them), venue rejects by code, risk denials
    by reason, send errors by operation, kill-switch trips, quote pulls."""
    bk = c.by_kind
    counts = c.counts
    status = [r.get("status") for r in bk.get("order", ())]
    by_code: dict[str, int] = {}
    for r in bk.get("order", ()):
        if r.get("status") == "REJECTED":
            m = _CODE.match(str(r.get("reason") or ""))
            code = m.group(1) if m else "no code"
            by_code[code] = by_code.get(code, 0) + 1
    rc = summary.get("reject_codes") if summary else None
    txs = {str(k): int(v) for k, v in rc.items()} if isinstance(rc, dict) else {}
    denials: dict[str, int] = {}
    by_op: dict[str, int] = {}
    for r in bk.get("denied", ()):
        reason = str(r.get("reason") or "?")
        denials[reason] = denials.get(reason, 0) + 1
        op = str(r.get("op") or "place")
        by_op[op] = by_op.get(op, 0) + 1
    errors: dict[str, int] = {}
    for r in bk.get("send_error", ()):
        op = str(r.get("op") or "?")
        errors[op] = errors.get(op, 0) + 1
    c.series.rejects_orders, c.series.rejects_txs, c.series.denials = by_code, txs, denials
    kills = [r for r in bk.get("kill_switch", ()) if r.get("action") != "resume"]
    return {
        "orders": {
            "placed": counts.get("order_sent", 0),
            "modified": counts.get("order_modify", 0),
            "cancelled": sum(1 for s in status if s == "CANCELED"),
            "cancel_requests": counts.get("order_cancel", 0),
            "filled": sum(1 for s in status if s == "FILLED"),
            "rejected": sum(1 for s in status if s == "REJECTED"),
            "denied": len(bk.get("denied", ())),
            "send_errors": sum(errors.values()),
        },
        "rejects": {
            "orders_by_code": by_code,
            "txs_by_code": txs,
            "orders": sum(by_code.values()),
            "txs": sum(txs.values()),
        },
        "denials": {
            "by_reason": dict(sorted(denials.items())),
            "by_op": by_op,
            "total": sum(denials.values()),
        },
        "send_errors": errors,
        "kill_switch": {
            "trips": len(kills),
            "reasons": sorted({str(r.get("reason")) for r in kills}),
        },
        "quote_pulls": counts.get("pull_quotes", 0),
    }


def compute(journal: JournalFile, run: JournalRun) -> Figures:
    """Every figure of ``run`` (a run of ``journal``); ReportError when its records do not
    tell the market's decimals (no run_start and no record with human units)."""
    notes: list[str] = []
    units = _units(journal, run, notes)
    clock = _Clock(run.start, run.records)
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for r in run.records:
        by_kind.setdefault(r["kind"], []).append(r)
    c = _Ctx(units, clock, clock.mono0 or 0, by_kind, run.counts, notes, {})
    summary, stop, shut = c.last("summary"), c.last("run_stop"), c.last("shutdown")
    end_ns = (
        clock.ns(stop)
        if stop is not None
        else max((clock.ns(r) for r in run.records), default=c.t0)
    )
    if stop is None:
        notes.append(
            "no run_stop record: the run did not end cleanly (killed, crashed or "
            "still running); figures go up to its last record"
        )
    quote_end_ns = clock.ns(shut) if shut is not None else end_ns
    c.end_ns = end_ns

    _price_path(c)
    _fills(c)
    pos = _pnl_path(c)
    fills = c.series.fills
    # Uptime from the order records: an order rests while OPEN, PARTIALLY_FILLED or
    # PENDING_CANCEL as the venue's order stream showed it.
    uptime = _uptime(by_kind.get("order", ()), clock, c.t0, quote_end_ns, c.series)
    if not by_kind.get("order"):
        c.missing["uptime"] = "no order records"
    latency = _latency(summary, c.series)
    if not latency:
        why = (
            "no summary record (the run did not end cleanly)"
            if summary is None
            else "the summary record has no latency histograms (a journal from before they "
            "were written)"
        )
        c.missing["latency"] = why
        notes.append(f"latency histograms: {why}")

    if by_kind.get("position_rebase"):
        notes.append(
            f"the bot took the venue's position {len(by_kind['position_rebase'])} "
            "time(s) (position_rebase: a fill it never got, or a trade of the "
            "account's not made by it): the inventory follows the venue, the PnL "
            "counts the journal's fills only"
        )
    inv_lots = [p for _, p in c.inv]
    max_inv = max((abs(p) for p in inv_lots), default=0)
    final_pos = inv_lots[-1] if inv_lots else 0
    vol_lots = sum(f.size for f in fills)
    st = run.start or {}
    wall0 = _int(st.get("ts_ms"))
    started = (
        _dt.datetime.fromtimestamp(wall0 / 1000, tz=_dt.UTC)
        .isoformat(timespec="seconds")
        .replace("+00:00", "Z")
        if wall0
        else None
    )
    scale_t = st.get("time_scale")
    data: dict[str, Any] = {
        "journal": {
            "path": str(journal.path),
            "lines": journal.lines,
            "malformed_lines": journal.malformed_count,
            "malformed": [{"line": m.line, "why": m.why} for m in journal.malformed],
            "records_by_kind": dict(sorted(run.counts.items())),
        },
        "run": {
            "index": run.index,
            "runs_in_journal": len(journal.runs),
            "symbol": units.symbol,
            "market": units.market,
            "strategy": st.get("strategy"),
            "mode": st.get("mode"),
            "started_utc": started,
            "time_scale": scale_t if isinstance(scale_t, (int, float)) else None,
            "price_decimals": units.price_decimals,
            "size_decimals": units.size_decimals,
            "duration_s": c.secs(end_ns),
            "quoting_window_s": max(0.0, c.secs(quote_end_ns)),
            "stop_reason": (stop or {}).get("reason") or (summary or {}).get("stop_reason"),
            "orders_left": (stop or {}).get("orders_left"),
            "exit_code": (summary or {}).get("exit_code"),
            "clean_stop": stop is not None,
        },
        "fills": {
            "count": len(fills),
            "buys": sum(1 for f in fills if f.side > 0),
            "sells": sum(1 for f in fills if f.side < 0),
            "maker": sum(1 for f in fills if f.maker is True),
            "taker": sum(1 for f in fills if f.maker is False),
            "volume_base": units.qty(vol_lots),
            "volume_lots": vol_lots,
            "notional_usdc": sum(units.usdc_x2(2 * f.price * f.size) for f in fills),
        },
        "pnl": _pnl(c, pos, summary),
        "inventory": {
            "max_abs_base": units.qty(max_inv),
            "max_abs_lots": max_inv,
            "final_base": units.qty(final_pos),
            "final_lots": final_pos,
            "start_lots": c.inv[0][1],
            "rebases": len(by_kind.get("position_rebase", ())),
        },
        "markouts": _markouts(c),
        "spread_captured": _spread(c),
        "uptime": uptime,
        **_orders(c, summary),
        "latency": latency,
        "per_fill": [_fill_json(f, units) for f in fills],
        "missing": c.missing,
    }
    mal = journal.malformed_note()
    if mal:
        notes.insert(0, mal)
    if len(journal.runs) > 1:
        notes.insert(
            0,
            f"the journal holds {len(journal.runs)} runs; this report is of run "
            f"{run.index} (--run N for another)",
        )
    data["notes"] = notes
    return Figures(
        units=units,
        data=data,
        rows=_rows(data, units),
        notes=notes,
        series=c.series,
        missing=c.missing,
    )


def _fill_json(f: FillRow, u: MarketUnits) -> dict[str, Any]:
    out: dict[str, Any] = {
        "t_s": f.t,
        "trade_id": f.trade_id,
        "side": "BUY" if f.side > 0 else "SELL",
        "price": u.price(f.price),
        "size": u.qty(f.size),
        "fee_usdc": f.fee / 1e6,
        "maker": f.maker,
        "mid": u.price_x2(f.mid_x2) if f.mid_x2 else None,
        "spread_captured_bps": (
            f.edge_bps(f.side * (f.mid_x2 - 2 * f.price)) if f.mid_x2 else None
        ),
    }
    for h in HORIZONS_S:
        d = f.markouts_x2.get(h)
        out[f"markout_{h}s_bps"] = None if d is None else f.edge_bps(d)
        out[f"markout_{h}s_usdc"] = None if d is None else u.usdc_x2(d * f.size)
    return out


def _uptime(
    orders: Iterable[dict[str, Any]], clock: _Clock, t0: int, end: int, series: Series
) -> dict[str, Any]:
    """Time with at least one order of ours resting per side, over [start, shutdown)."""
    state: dict[Any, tuple[int, bool]] = {}  # coi -> (side 0 bid / 1 ask, resting)
    resting = [0, 0]
    since: list[int | None] = [None, None]  # when the side's count went above 0
    spans: list[list[tuple[int, int]]] = [[], []]
    for r in orders:
        coi, side = r.get("coi"), r.get("side")
        if side not in ("BUY", "SELL"):
            continue
        s = 0 if side == "BUY" else 1
        try:
            live = OrderStatus[str(r.get("status"))].is_live
        except KeyError:
            live = False  # a status this version does not know: not counted as resting
        t = min(max(clock.ns(r), t0), end)
        was = state.get(coi, (s, False))[1]
        state[coi] = (s, live)
        if live == was:
            continue
        if live:
            resting[s] += 1
            if resting[s] == 1:
                since[s] = t
        else:
            resting[s] -= 1
            began = since[s]
            if resting[s] == 0 and began is not None:
                spans[s].append((began, t))
                since[s] = None
    for s in (0, 1):
        began = since[s]
        if began is not None:
            spans[s].append((began, end))  # still resting at the end of the window
    total = max(end - t0, 1)
    frac = [sum(b - a for a, b in spans[s]) / total for s in (0, 1)]
    both = _overlap(spans[0], spans[1]) / total
    # Over time: the share of each bucket with a resting order per side.
    width = max(_NS, total // _UPTIME_BUCKETS)
    edges = [*range(t0, end, width), end]
    if len(edges) > 2 and end - edges[-2] < width // 2:
        del edges[-2]  # a sliver at the end joins the bucket before it
    if len(edges) >= 2:
        series.uptime_edges = [(e - t0) / _NS for e in edges]
        for s, out in ((0, series.uptime_bid), (1, series.uptime_ask)):
            for a, b in itertools.pairwise(edges):
                out.append(_overlap(spans[s], [(a, b)]) / max(b - a, 1))
    return {
        "bid": frac[0],
        "ask": frac[1],
        "both": both,
        "window_s": total / _NS if end > t0 else 0.0,
        "bucket_s": width / _NS,
    }


def _overlap(a: list[tuple[int, int]], b: list[tuple[int, int]]) -> int:
    """Total length of the intersection of two sorted lists of disjoint spans."""
    i = j = 0
    out = 0
    while i < len(a) and j < len(b):
        lo, hi = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if hi > lo:
            out += hi - lo
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


def _hist_quantile(counts: list[int], bounds_us: list[float], q: float) -> float | None:
    """The upper bound (us) of the bucket holding the q-quantile; the last (open) bucket is
    reported as its lower bound; None when empty."""
    n = sum(counts)
    if not n:
        return None
    rank = max(1, math.ceil(q * n))
    seen = 0
    for i, c in enumerate(counts):
        seen += c
        if seen >= rank:
            return bounds_us[i] if i < len(bounds_us) else bounds_us[-1]
    return bounds_us[-1]


def _latency(summary: dict[str, Any] | None, series: Series) -> dict[str, Any]:
    lh = (summary or {}).get("latency_hist")
    if not isinstance(lh, dict):
        return {}
    bounds = lh.get("bounds_us")
    if not isinstance(bounds, list) or not bounds:
        bounds = [b / 1e3 for b in HIST_BOUNDS_NS]
    series.bounds_us = [float(b) for b in bounds]
    out: dict[str, Any] = {"bounds_us": series.bounds_us}
    rings = {
        "strategy": (summary or {}).get("latency") or {},
        "order_entry": (summary or {}).get("order_latency") or {},
    }
    for group in ("strategy", "order_entry"):
        stages = lh.get(group)
        if not isinstance(stages, dict):
            continue
        g: dict[str, Any] = {}
        series.latency[group] = {}
        for stage, h in sorted(
            stages.items(),
            key=lambda kv: (
                _STAGE_ORDER.index(kv[0]) if kv[0] in _STAGE_ORDER else len(_STAGE_ORDER),
                kv[0],
            ),
        ):
            counts = h.get("counts") if isinstance(h, dict) else None
            if not isinstance(counts, list) or not all(_int(c) is not None for c in counts):
                continue
            n = sum(counts)
            series.latency[group][stage] = counts
            ring = rings[group].get(stage) or {}
            g[stage] = {
                "n": n,
                "counts": counts,
                "mean_us": (float(h.get("sum_us", 0)) / n) if n else None,
                "p50_us_le": _hist_quantile(counts, series.bounds_us, 0.5),
                "p99_us_le": _hist_quantile(counts, series.bounds_us, 0.99),
                "recent_p50_us": ring.get("p50_us"),
                "recent_p99_us": ring.get("p99_us"),
            }
        out[group] = g
    return out


# ---------------------------------------------------------------------------- the table
def _usdc(v: float | None, signed: bool = True) -> str:
    if v is None:
        return "not computed"
    return f"{v:+.{USDC_DECIMALS}f} USDC" if signed else f"{v:.{USDC_DECIMALS}f} USDC"


def _pct(v: float | None) -> str:
    return "not computed" if v is None else f"{v * 100:.1f}%"


def _bps(v: float | None) -> str:
    return "-" if v is None else f"{v:+.2f} bps"


def _rows(d: dict[str, Any], u: MarketUnits) -> list[tuple[str, str]]:
    """The summary table: label -> human text (the numbers are in report.json)."""
    r, f, p, inv = d["run"], d["fills"], d["pnl"], d["inventory"]
    o, up = d["orders"], d["uptime"]
    rows = [
        (
            "Run",
            f"{u.symbol} (market {u.market}), {r['strategy'] or '?'}, "
            f"{r['mode'] or '?'} mode, started {r['started_utc'] or '?'}"
            + (
                f", time scale {r['time_scale']:g}" if r["time_scale"] not in (None, 1, 1.0) else ""
            ),
        ),
        (
            "Duration",
            f"{r['duration_s']:.1f} s (quoting {r['quoting_window_s']:.1f} s); "
            f"stop: {r['stop_reason'] or 'unknown'}",
        ),
        (
            "Fills",
            f"{f['count']} (buys {f['buys']}, sells {f['sells']}; maker "
            f"{f['maker']}, taker {f['taker']})",
        ),
        ("Volume", f"{u.qty_text(f['volume_lots'])} {u.symbol} ({f['notional_usdc']:.2f} USDC)"),
        ("Realized PnL", _usdc(p["realized_usdc"])),
        (
            "Unrealized PnL",
            _usdc(p["unrealized_usdc"])
            + (f" at mark {p['mark']:.{u.price_decimals}f}" if p["mark"] else ""),
        ),
        ("Fees", _usdc(p["fees_usdc"], signed=False) + " paid"),
        (
            "Total PnL",
            _usdc(p["total_usdc"])
            + (f" (funding {p['funding_usdc']:+.6f})" if p["funding_usdc"] else "")
            + (
                f"; the bot said {p['bot_reported_usdc']:+.6f} at exit"
                if p["bot_reported_usdc"] is not None
                else ""
            ),
        ),
        (
            "Max |inventory|",
            f"{u.qty_text(inv['max_abs_lots'])} {u.symbol} (final {u.qty_text(inv['final_lots'])})",
        ),
    ]
    for h in HORIZONS_S:
        m = d["markouts"][f"{h}s"]
        b = m["bps"]
        why = ", ".join(f"{n} {k}" for k, n in m["missing"].items())
        rows.append(
            (
                f"Markout {h} s",
                f"not computed ({why or 'no fills'})"
                if not b["n"]
                else f"mean {_bps(b['mean'])}, median {_bps(b['median'])} over {b['n']} fills; "
                f"total {m['usdc_total']:+.6f} USDC",
            )
        )
    sc = d["spread_captured"]
    rows.append(
        (
            "Spread captured",
            "not computed"
            if not sc["bps"]["n"]
            else f"mean {_bps(sc['bps']['mean'])} over {sc['bps']['n']} fills; total "
            f"{sc['usdc_total']:+.6f} USDC",
        )
    )
    rows.append(
        ("Quote uptime", f"bid {_pct(up['bid'])}, ask {_pct(up['ask'])}, both {_pct(up['both'])}")
    )
    rej = d["rejects"]

    def by(counts: dict[str, int]) -> str:
        return (
            " (" + ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())) + ")" if counts else ""
        )

    rows.append(
        (
            "Rejects",
            f"orders rejected by the venue {rej['orders']}"
            f"{by(rej['orders_by_code'])}"
            + (f"; txs refused {rej['txs']}{by(rej['txs_by_code'])}" if rej["txs_by_code"] else ""),
        )
    )
    den = d["denials"]
    rows.append(("Risk denials", f"{den['total']}{by(den['by_reason'])}"))
    rows.append(
        (
            "Orders",
            f"placed {o['placed']}, modified {o['modified']}, cancelled "
            f"{o['cancelled']} (cancel requests {o['cancel_requests']}), send "
            f"errors {o['send_errors']}",
        )
    )
    ks = d["kill_switch"]
    rows.append(
        (
            "Kill switch",
            f"trips {ks['trips']}"
            + (f" ({', '.join(ks['reasons'])})" if ks["reasons"] else "")
            + f"; quote pulls {d['quote_pulls']}",
        )
    )
    j = d["journal"]
    rows.append(
        (
            "Journal",
            f"{j['path']}: {j['lines']} lines, run {r['index']} of "
            f"{r['runs_in_journal']}, {j['malformed_lines']} malformed skipped",
        )
    )
    return rows
