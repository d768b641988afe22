"""``report.html``: one self-contained page (its style inline, the plots as PNG files beside
it), the summary table first, then each figure with its numbers."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any, Final

from mmfast.report.figures import HORIZONS_S, Figures
from mmfast.report.plots import PLOTS

__all__ = ["render_html"]

_FILLS_SHOWN: Final = 500  # per-fill rows in the page (all of them are in report.json)

_CSS: Final = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px auto;
       max-width: 1180px; padding: 0 16px; color: #222; }
h1 { font-size: 22px; margin-bottom: 4px; } h2 { font-size: 18px; margin-top: 32px;
  border-bottom: 1px solid #ddd; padding-bottom: 4px; }
table { border-collapse: collapse; margin: 8px 0; }
td, th { border: 1px solid #ddd; padding: 4px 10px; text-align: right; }
th { background: #f4f4f4; } td.l, th.l { text-align: left; }
table.summary td:first-child { font-weight: 600; text-align: left; background: #fafafa; }
table.summary td { text-align: left; }
.notes { background: #fff8e1; border: 1px solid #f0c36d; padding: 8px 14px; }
.skip { color: #8a6d3b; font-style: italic; }
img { max-width: 100%; border: 1px solid #eee; }
.meta { color: #666; }
"""


def _e(x: Any) -> str:
    return html.escape(str(x))


def _num(v: Any, fmt: str = "{:+.2f}") -> str:
    return "-" if v is None else fmt.format(v)


def _table(head: list[str], rows: list[list[Any]], left: int = 1) -> str:
    def cls(i: int) -> str:
        return ' class="l"' if i < left else ""

    th = "".join(f"<th{cls(i)}>{_e(h)}</th>" for i, h in enumerate(head))
    body = "".join(
        "<tr>" + "".join(f"<td{cls(i)}>{_e(c)}</td>" for i, c in enumerate(r)) + "</tr>"
        for r in rows
    )
    return f"<table><tr>{th}</tr>{body}</table>"


def _markouts(d: dict[str, Any]) -> str:
    rows = []
    for h in HORIZONS_S:
        m = d["markouts"][f"{h}s"]
        b = m["bps"]
        miss = ", ".join(f"{k}: {v}" for k, v in m["missing"].items()) or "-"
        rows.append(
            [
                f"{h} s",
                b["n"],
                _num(b["mean"]),
                _num(b["median"]),
                _num(b["p05"]),
                _num(b["p95"]),
                _num(b["positive_share"], "{:.0%}"),
                _num(m["volume_weighted_bps"]),
                _num(m["usdc_mean"], "{:+.6f}"),
                _num(m["usdc_total"], "{:+.6f}"),
                miss,
            ]
        )
    return _table(
        [
            "horizon",
            "fills",
            "mean bps",
            "median bps",
            "p05 bps",
            "p95 bps",
            "> 0",
            "vol-weighted bps",
            "mean USDC",
            "total USDC",
            "left out",
        ],
        rows,
    )


def _spread(d: dict[str, Any]) -> str:
    sc = d["spread_captured"]
    rows = []
    for name, key in (("all", "bps"), ("buys", "buy_bps"), ("sells", "sell_bps")):
        b = sc[key]
        rows.append(
            [name, b["n"], _num(b["mean"]), _num(b["median"]), _num(b["p05"]), _num(b["p95"])]
        )
    src = (
        f"mid from the fill record for {sc['mid_from_fill_record']} fills, from the last "
        f"market record for {sc['mid_from_market_record']}, unknown for {sc['missing']}; "
        f"total {sc['usdc_total']:+.6f} USDC, volume-weighted "
        f"{_num(sc['volume_weighted_bps'])} bps"
    )
    return (
        _table(["fills", "n", "mean bps", "median bps", "p05 bps", "p95 bps"], rows)
        + f'<p class="meta">{_e(src)}</p>'
    )


def _latency(d: dict[str, Any]) -> str:
    lat = d["latency"]
    rows = []
    for g in ("strategy", "order_entry"):
        for stage, s in (lat.get(g) or {}).items():
            rows.append(
                [
                    g.replace("_", " "),
                    stage,
                    s["n"],
                    _num(s["mean_us"], "{:.1f}"),
                    _num(s["p50_us_le"], "≤{:g}"),
                    _num(s["p99_us_le"], "≤{:g}"),
                    _num(s["recent_p50_us"], "{:.1f}"),
                    _num(s["recent_p99_us"], "{:.1f}"),
                ]
            )
    if not rows:
        return ""
    return _table(
        [
            "group",
            "stage",
            "samples",
            "mean us",
            "p50 us (bucket)",
            "p99 us (bucket)",
            "recent p50 us",
            "recent p99 us",
        ],
        rows,
        left=2,
    )


def _counts(title: str, counts: dict[str, int]) -> str:
    if not counts:
        return f"<p>{_e(title)}: none.</p>"
    return f"<p>{_e(title)}:</p>" + _table(
        ["", "count"], [[k, v] for k, v in sorted(counts.items())]
    )


def _fills(f: Figures) -> str:
    d = f.data["per_fill"]
    u = f.units
    rows = []
    for r in d[:_FILLS_SHOWN]:
        rows.append(
            [
                f"{r['t_s']:.3f}",
                r["side"],
                f"{r['price']:.{u.price_decimals}f}",
                f"{r['size']:.{u.size_decimals}f}",
                f"{r['fee_usdc']:.6f}",
                {True: "maker", False: "taker"}.get(r["maker"], "?"),
                _num(r["mid"], f"{{:.{u.price_decimals + 1}f}}"),
                _num(r["spread_captured_bps"]),
            ]
            + [_num(r[f"markout_{h}s_bps"]) for h in HORIZONS_S]
        )
    more = (
        f'<p class="meta">{len(d) - _FILLS_SHOWN} more fills in report.json.</p>'
        if len(d) > _FILLS_SHOWN
        else ""
    )
    return (
        _table(
            ["t (s)", "side", "price", "size", "fee USDC", "role", "mid", "captured bps"]
            + [f"markout {h} s bps" for h in HORIZONS_S],
            rows,
            left=0,
        )
        + more
    )


def render_html(
    f: Figures, drawn: dict[str, Path], skipped: dict[str, str], plots_missing: str
) -> str:
    """The page for ``f``; ``drawn``: plots written (name -> path), ``skipped``: why the
    others were not; ``plots_missing``: why no plot at all ("" when matplotlib ran)."""
    d = f.data
    r = d["run"]
    title = (
        f"mmfast run report: {f.units.symbol} {r['strategy'] or ''}, "
        f"{r['started_utc'] or 'start unknown'}"
    )
    parts = [
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        f'<p class="meta">From {_e(d["journal"]["path"])}. Times in seconds since the '
        f"run's start on its own clock; prices in USDC; sizes in {_e(f.units.symbol)}; "
        "every number of this page is in report.json beside it.</p>",
        '<table class="summary">'
        + "".join(f"<tr><td>{_e(k)}</td><td>{_e(v)}</td></tr>" for k, v in f.rows)
        + "</table>",
    ]
    notes = list(f.notes)
    if plots_missing:
        notes.insert(0, plots_missing)
    if notes:
        parts.append(
            '<div class="notes"><b>Not computed or worth knowing</b><ul>'
            + "".join(f"<li>{_e(n)}</li>" for n in notes)
            + "</ul></div>"
        )
    extra = {
        "markouts": _markouts(d),
        "spread_captured": _spread(d),
        "latency": _latency(d),
        "rejects_denials": _counts(
            "Orders rejected by the venue, by code", d["rejects"]["orders_by_code"]
        )
        + _counts(
            "Txs refused by the venue, by code (the connector's count)", d["rejects"]["txs_by_code"]
        )
        + _counts("Risk gate denials, by reason", d["denials"]["by_reason"])
        + _counts("Send errors, by operation", d["send_errors"]),
        "uptime": f'<p class="meta">Bid {d["uptime"]["bid"]:.1%}, ask '
        f"{d['uptime']['ask']:.1%}, both {d['uptime']['both']:.1%} of "
        f"{d['uptime']['window_s']:.1f} s (start to shutdown).</p>",
    }
    for name, (file, sec, _draw, _size) in PLOTS.items():
        parts.append(f"<h2>{_e(sec)}</h2>")
        if name in drawn:
            parts.append(f'<img src="{_e(file)}" alt="{_e(sec)}">')
        elif not plots_missing:
            parts.append(f'<p class="skip">Not drawn: {_e(skipped.get(name, "no data"))}.</p>')
        parts.append(extra.get(name, ""))
    parts.append("<h2>Fills</h2>")
    parts.append(_fills(f) if d["per_fill"] else "<p>No fills.</p>")
    parts.append("</body></html>\n")
    return "\n".join(parts)
