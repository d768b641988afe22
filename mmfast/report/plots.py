"""The report's PNG plots, drawn with matplotlib's object API on its Agg canvas (headless; no
pyplot, so no global backend or figure state is touched in the caller's process).

``available()`` says whether matplotlib can be imported; ``draw_all`` writes every plot it
has data for and says why it skipped the others.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

from mmfast.report.figures import HORIZONS_S, Figures

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["INSTALL_HINT", "PLOTS", "available", "draw_all"]

INSTALL_HINT: Final = "pip install 'mmfast[report]'  (or: pip install 'matplotlib>=3.7,<4')"
_BUY, _SELL = "#1a9850", "#d73027"
_DPI: Final = 100


def available() -> str:
    """ "" when matplotlib can be imported, else why not."""
    try:
        import matplotlib  # noqa: F401
        from matplotlib.figure import Figure  # noqa: F401
    except ImportError as exc:
        return f"matplotlib is not installed ({exc})"
    return ""


def _figure(w: float, h: float) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(w, h), dpi=_DPI, layout="constrained")


def _time_unit(f: Figures) -> tuple[float, str]:
    """Seconds per unit of the time axes, and the unit: s up to 10 min, then min, then h."""
    d = f.data["run"]["duration_s"]
    return (1.0, "s") if d <= 600 else (60.0, "min") if d <= 3 * 3600 else (3600.0, "h")


def _ts(f: Figures, ts: list[float]) -> list[float]:
    """Times (s since the start) in the time axes' unit."""
    div = _time_unit(f)[0]
    return ts if div == 1.0 else [t / div for t in ts]


def _time_label(f: Figures) -> str:
    scale = f.data["run"]["time_scale"]
    sim = f" (run clock, {scale:g}x real time)" if scale not in (None, 1, 1.0) else ""
    return f"time since start, {_time_unit(f)[1]}{sim}"


def _marker(n: int) -> dict[str, Any]:
    """Fill markers that stay apart: smaller and without edges as fills get many."""
    if n <= 100:
        return {"s": 46, "edgecolor": "k", "lw": 0.5}
    return {"s": max(6.0, 46 * (100 / n) ** 0.5), "lw": 0, "alpha": 0.7}


def _plain(ax: Axes, axis: Literal["x", "y"] = "y") -> None:
    """Prices as they are (3001.25), not as an offset from 3000."""
    ax.ticklabel_format(axis=axis, useOffset=False, style="plain")


def _counts_axis(ax: Axes, axis: str = "x") -> None:
    """Whole numbers on an axis of counts."""
    from matplotlib.ticker import MaxNLocator

    (ax.xaxis if axis == "x" else ax.yaxis).set_major_locator(MaxNLocator(integer=True))


def _empty(ax: Axes, text: str) -> None:
    ax.text(
        0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=11, color="0.4"
    )
    ax.set_xticks([])
    ax.set_yticks([])


def _pnl_inventory(f: Figures, fig: Figure) -> str:
    s = f.series
    if not s.pnl_t and not s.inv_t:
        return "no fills and no mark prices"
    top, bottom = fig.subplots(2, 1, sharex=True)
    if any(v is not None for v in s.pnl_total):
        top.plot(
            _ts(f, s.pnl_t),
            [float("nan") if v is None else v for v in s.pnl_total],
            color="#2c7fb8",
            lw=1.4,
            label="total at the mark (realized + unrealized - fees)",
        )
    top.step(
        _ts(f, s.pnl_t),
        s.pnl_realized,
        where="post",
        color="#7b3294",
        lw=1.0,
        ls="--",
        label="realized - fees",
    )
    top.axhline(0, color="0.6", lw=0.6)
    top.set_ylabel("PnL, USDC")
    top.set_title(f"{f.units.symbol}: PnL and inventory")
    top.legend(loc="best", fontsize=8)
    top.grid(alpha=0.3)
    if s.inv_t:
        bottom.step(
            _ts(f, s.inv_t), s.inventory, where="post", color="#e66101", lw=1.2, label="position"
        )
    bottom.axhline(0, color="0.6", lw=0.6)
    bottom.set_ylabel(f"inventory, {f.units.symbol}")
    bottom.set_xlabel(_time_label(f))
    bottom.legend(loc="best", fontsize=8)
    bottom.grid(alpha=0.3)
    return ""


def _nan(vals: list[float | None]) -> list[float]:
    return [float("nan") if v is None else v for v in vals]


def _price_fills(f: Figures, fig: Figure) -> str:
    s = f.series
    if not s.book_t and not s.fills:
        return "no price path and no fills"
    ax = fig.subplots()
    bt = _ts(f, s.book_t)
    if s.book_t:
        ax.step(bt, _nan(s.bid), where="post", color="#4575b4", lw=0.8, alpha=0.8, label="best bid")
        ax.step(bt, _nan(s.ask), where="post", color="#f46d43", lw=0.8, alpha=0.8, label="best ask")
        ax.step(bt, _nan(s.mid), where="post", color="0.2", lw=1.1, label="mid")
        if any(v is not None for v in s.our_bid):
            ax.step(
                bt,
                _nan(s.our_bid),
                where="post",
                color="#4575b4",
                lw=0.8,
                ls=":",
                label="our best bid",
            )
        if any(v is not None for v in s.our_ask):
            ax.step(
                bt,
                _nan(s.our_ask),
                where="post",
                color="#f46d43",
                lw=0.8,
                ls=":",
                label="our best ask",
            )
    u = f.units
    buys = [r for r in s.fills if r.side > 0]
    sells = [r for r in s.fills if r.side < 0]
    if buys:
        ax.scatter(
            _ts(f, [r.t for r in buys]),
            [u.price(r.price) for r in buys],
            marker="^",
            color=_BUY,
            zorder=5,
            label=f"our buys ({len(buys)})",
            **_marker(len(s.fills)),
        )
    if sells:
        ax.scatter(
            _ts(f, [r.t for r in sells]),
            [u.price(r.price) for r in sells],
            marker="v",
            color=_SELL,
            zorder=5,
            label=f"our sells ({len(sells)})",
            **_marker(len(s.fills)),
        )
    title = f"{u.symbol}: price path and our fills"
    if not s.book_t:
        title += " (no price path in this journal)"
    ax.set_title(title)
    ax.set_ylabel("price, USDC")
    ax.set_xlabel(_time_label(f))
    _plain(ax)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8, ncol=2)
    return ""


def _markouts(f: Figures, fig: Figure) -> str:
    fills = f.series.fills
    data = {
        h: [r.edge_bps(r.markouts_x2[h] or 0) for r in fills if r.markouts_x2.get(h) is not None]
        for h in HORIZONS_S
    }
    if not any(data.values()):
        return f.missing.get("markouts", "no markout")
    left, right = fig.subplots(1, 2, width_ratios=(3, 2))
    mk = f.data["markouts"]
    hs = [h for h in HORIZONS_S if data[h]]
    left.boxplot(
        [data[h] for h in hs],
        tick_labels=[f"{h} s" for h in hs],
        showmeans=True,
        meanprops={"marker": "D", "markerfacecolor": "#2c7fb8", "markeredgecolor": "k"},
    )
    for i, h in enumerate(hs, start=1):  # every fill as a dot beside its box
        n = len(data[h])
        left.scatter(
            [i + 0.25 + 0.1 * ((k % 7) / 7 - 0.5) for k in range(n)],
            data[h],
            s=8,
            color="0.3",
            alpha=0.5,
        )
    left.axhline(0, color="0.6", lw=0.6)
    left.set_title("markout per fill: side x (mid at t+h - fill price)")
    left.set_ylabel("bps of the fill price")
    none = [
        f"{h} s: none ({', '.join(f'{n} {k}' for k, n in mk[f'{h}s']['missing'].items())})"
        for h in HORIZONS_S
        if not data[h]
    ]
    left.set_xlabel(
        "horizon h (box: quartiles; diamond: mean)" + (f"\n{'; '.join(none)}" if none else "")
    )
    left.grid(alpha=0.3, axis="y")
    means = [mk[f"{h}s"]["bps"]["mean"] or 0.0 for h in hs]
    vw = [mk[f"{h}s"]["volume_weighted_bps"] or 0.0 for h in hs]
    x = list(range(len(hs)))
    right.bar([i - 0.2 for i in x], means, width=0.4, color="#2c7fb8", label="mean per fill")
    right.bar([i + 0.2 for i in x], vw, width=0.4, color="#fdae61", label="volume-weighted")
    for i, h in enumerate(hs):
        right.annotate(
            f"n={len(data[h])}\n{mk[f'{h}s']['usdc_total']:+.4f} USDC",
            (i, max(means[i], vw[i], 0)),
            ha="center",
            va="bottom",
            fontsize=8,
        )
    right.set_xticks(x, [f"{h} s" for h in hs])
    right.axhline(0, color="0.6", lw=0.6)
    right.set_ylabel("bps")
    right.set_title("mean markout (total in USDC above)")
    right.legend(fontsize=8, loc="best")
    right.grid(alpha=0.3, axis="y")
    right.margins(y=0.25)
    return ""


def _spread(f: Figures, fig: Figure) -> str:
    rows = [r for r in f.series.fills if r.mid_x2 is not None]
    if not rows:
        return f.missing.get("spread_captured", "no mid at any fill")
    left, right = fig.subplots(1, 2, width_ratios=(3, 2))
    buys = [r for r in rows if r.side > 0]
    sells = [r for r in rows if r.side < 0]

    def cap(r: Any) -> float:
        return float(r.edge_bps(r.side * (r.mid_x2 - 2 * r.price)))

    if buys:
        left.scatter(
            _ts(f, [r.t for r in buys]),
            [cap(r) for r in buys],
            marker="^",
            color=_BUY,
            label="buys: mid - price",
            **_marker(len(rows)),
        )
    if sells:
        left.scatter(
            _ts(f, [r.t for r in sells]),
            [cap(r) for r in sells],
            marker="v",
            color=_SELL,
            label="sells: price - mid",
            **_marker(len(rows)),
        )
    left.axhline(0, color="0.6", lw=0.6)
    left.set_title("spread captured at each fill (vs the mid at the fill)")
    left.set_xlabel(_time_label(f))
    left.set_ylabel("bps of the fill price")
    left.legend(fontsize=8, loc="best")
    left.grid(alpha=0.3)
    vals = [[cap(r) for r in buys], [cap(r) for r in sells]]
    every = vals[0] + vals[1]
    lo, hi = min(every), max(every)
    if hi - lo < 0.2:  # (nearly) one value: a readable 1 bps around it, not 20 slivers
        lo, hi = (lo + hi) / 2 - 0.5, (lo + hi) / 2 + 0.5
    right.hist(
        [v for v in vals if v],
        bins=20,
        range=(lo, hi),
        stacked=True,
        color=[c for c, v in zip((_BUY, _SELL), vals, strict=True) if v],
        label=[n for n, v in zip(("buys", "sells"), vals, strict=True) if v],
    )
    sc = f.data["spread_captured"]
    right.axvline(
        sc["bps"]["mean"], color="k", ls="--", lw=1, label=f"mean {sc['bps']['mean']:+.2f} bps"
    )
    right.set_title(f"distribution ({len(rows)} fills)")
    right.set_xlabel("bps")
    right.set_ylabel("fills")
    _counts_axis(right, "y")
    right.legend(fontsize=8, loc="best")
    right.grid(alpha=0.3)
    return ""


def _uptime(f: Figures, fig: Figure) -> str:
    s = f.series
    if not s.uptime_edges:
        return f.missing.get("uptime", "no quoting window")
    ax = fig.subplots()
    up = f.data["uptime"]
    # Each bucket's share drawn over the bucket (the last value repeated to close the step).
    # The bid drawn wide underneath: where both sides rest all the time, both stay visible.
    for vals, color, name, lw in (
        (s.uptime_bid, "#4575b4", "bid", 3.5),
        (s.uptime_ask, "#f46d43", "ask", 1.3),
    ):
        ax.stairs(
            [v * 100 for v in vals],
            _ts(f, s.uptime_edges),
            color=color,
            lw=lw,
            label=f"{name}: {up[name] * 100:.1f}% of the run",
        )
    ax.set_ylim(-2, 105)
    ax.set_ylabel(f"% of each {up['bucket_s']:.3g} s with an order of ours resting")
    ax.set_xlabel(_time_label(f))
    ax.set_title(f"quote uptime per side (both sides at once: {up['both'] * 100:.1f}%)")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    return ""


def _us(v: float) -> str:
    if v >= 1e6:
        return f"{v / 1e6:g}s"
    if v >= 1e3:
        return f"{v / 1e3:g}ms"
    return f"{v:g}us"


def _latency(f: Figures, fig: Figure) -> str:
    s = f.series
    stages = [
        (g, name, c)
        for g in ("strategy", "order_entry")
        for name, c in s.latency.get(g, {}).items()
        if sum(c)
    ]
    if not stages:
        return f.missing.get("latency", "no latency samples")
    cols = 4 if len(stages) > 6 else min(3, len(stages))
    nrows = -(-len(stages) // cols)
    fig.set_size_inches(4.2 * cols, 2.9 * nrows + 0.6)
    axes = fig.subplots(nrows, cols, squeeze=False)
    labels = [f"≤{_us(b)}" for b in s.bounds_us] + [f">{_us(s.bounds_us[-1])}"]
    lat = f.data["latency"]
    for ax, (g, name, counts) in zip(axes.flat, stages, strict=False):
        first = next(i for i, c in enumerate(counts) if c)
        last = max(i for i, c in enumerate(counts) if c)
        lo, hi = max(0, first - 1), min(len(counts), last + 2)
        ax.bar(range(lo, hi), counts[lo:hi], color="#2c7fb8" if g == "strategy" else "#7b3294")
        ax.set_xticks(range(lo, hi), labels[lo:hi], rotation=45, fontsize=7)
        st = lat[g][name]
        ax.set_title(
            f"{'strategy' if g == 'strategy' else 'order entry'}: {name}\n"
            f"n {st['n']}, p50 ≤{_us(st['p50_us_le'])}, p99 ≤{_us(st['p99_us_le'])}",
            fontsize=9,
        )
        ax.set_ylabel("samples", fontsize=8)
        _counts_axis(ax, "y")
        ax.grid(alpha=0.3, axis="y")
    for ax in list(axes.flat)[len(stages) :]:
        ax.set_visible(False)
    fig.suptitle("latency per stage (every sample of the run; x: bucket upper bound)")
    return ""


def _rejects(f: Figures, fig: Figure) -> str:
    s = f.series
    left, right = fig.subplots(1, 2)
    codes = sorted(set(s.rejects_orders) | set(s.rejects_txs))
    if codes:
        y = list(range(len(codes)))
        left.barh(
            [i + 0.2 for i in y],
            [s.rejects_orders.get(c, 0) for c in codes],
            height=0.4,
            color="#d73027",
            label="orders rejected (order records)",
        )
        if s.rejects_txs:
            left.barh(
                [i - 0.2 for i in y],
                [s.rejects_txs.get(c, 0) for c in codes],
                height=0.4,
                color="#fdae61",
                label="txs refused (summary)",
            )
        left.set_yticks(y, codes)
        left.set_xlabel("count")
        _counts_axis(left)
        left.legend(fontsize=8, loc="best")
        left.grid(alpha=0.3, axis="x")
    else:
        _empty(left, "no rejects")
    left.set_title("venue rejects by code")
    if s.denials:
        reasons = sorted(s.denials, key=lambda k: -s.denials[k])
        left_y = list(range(len(reasons)))
        right.barh(left_y, [s.denials[r] for r in reasons], color="#7b3294")
        right.set_yticks(left_y, reasons, fontsize=8)
        right.set_xlabel("orders denied")
        _counts_axis(right)
        right.grid(alpha=0.3, axis="x")
    else:
        _empty(right, "no risk denials")
    right.set_title("risk gate denials by reason")
    return ""


# name -> (file, section title, drawing function, figure size in inches)
PLOTS: Final[dict[str, tuple[str, str, Callable[[Figures, Any], str], tuple[float, float]]]] = {
    "pnl_inventory": (
        "pnl_inventory.png",
        "PnL and inventory over time",
        _pnl_inventory,
        (10, 6.5),
    ),
    "price_fills": ("price_fills.png", "Fills on the price path", _price_fills, (11, 6)),
    "markouts": ("markouts.png", "Markouts", _markouts, (11, 5)),
    "spread_captured": ("spread_captured.png", "Spread captured", _spread, (11, 4.5)),
    "uptime": ("uptime.png", "Quote uptime", _uptime, (10, 4)),
    "latency": ("latency.png", "Latency per stage", _latency, (12, 8)),
    "rejects_denials": ("rejects_denials.png", "Rejects and risk denials", _rejects, (11, 4)),
}


def draw_all(f: Figures, out: Path) -> tuple[dict[str, Path], dict[str, str]]:
    """Every plot into ``out``: (name -> PNG path drawn, name -> why not drawn)."""
    done: dict[str, Path] = {}
    skipped: dict[str, str] = {}
    for name, (file, _title, draw, size) in PLOTS.items():
        fig = _figure(*size)
        try:
            why = draw(f, fig)
        except Exception as exc:  # one plot that cannot be drawn: said, the others drawn
            why = f"drawing failed ({type(exc).__name__}: {exc})"
        if why:
            skipped[name] = why
            continue
        path = out / file
        fig.savefig(path, dpi=_DPI)  # OSError: the caller's (the folder is not writable)
        done[name] = path
    return done, skipped
