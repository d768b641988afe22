"""The suite's output: ``results.json`` (every figure), ``results.md`` (the table a person reads)
and ``latency.png`` (distributions), written to one results folder."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from bench.harness import Stats
from bench.micro import Metric

__all__ = ["fmt", "headline_table", "plot", "write_results"]


def fmt(value: float, unit: str = "ns") -> str:
    """Nanoseconds (or bytes) for people."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if unit == "bytes":
        return f"{value / 1024:.1f} KB"
    if value >= 1_000_000:
        return f"{value / 1e6:.2f} ms"
    if value >= 1000:
        return f"{value / 1000:.2f} us"
    if value >= 100:
        return f"{value:.0f} ns"
    return f"{value:.1f} ns"


def _target(m: Metric) -> str:
    if m.target_text:
        return m.target_text
    if m.target_ns is not None:
        return f"<= {fmt(m.target_ns)} p50"
    return "-"


def _verdict(m: Metric) -> str:
    met = m.met()
    if m.unavailable:
        return "not measured"
    if met is None:
        return "reference"
    return "**met**" if met else "**NOT met**"


def headline_table(metrics: list[Metric]) -> str:
    """One row per metric: target, ours p50/p99, the first baseline, ratio, verdict."""
    rows = [
        "| metric | target | ours | p50 | p99 | baseline (same run) | base p50 | base p99 "
        "| ratio | met |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for m in metrics:
        unit = "bytes" if m.unit == "bytes" else "ns"
        if m.unavailable or m.headline is None:
            rows.append(
                f"| {m.name} | {_target(m)} | not available: {m.unavailable} "
                "| | | | | | | not measured |"
            )
            continue
        h = m.headline
        b: Stats | None = m.baselines[0] if m.baselines else None
        base = (
            f"{b.name} | {fmt(b.p50_ns, unit)} | {fmt(b.p99_ns, unit)} | {m.ratio(b):.2f}x"
            if b is not None
            else "- | | | "
        )
        rows.append(
            f"| {m.name} | {_target(m)} | {h.name} | {fmt(h.p50_ns, unit)} | "
            f"{fmt(h.p99_ns, unit)} | {base} | {_verdict(m)} |"
        )
    return "\n".join(rows)


def detail(m: Metric) -> str:
    unit = "bytes" if m.unit == "bytes" else "ns"
    lines = [
        f"### {m.name}",
        "",
        f"{m.definition} ({m.unit}). Target: {_target(m)}. Verdict: {_verdict(m)}.",
        "",
        f"Placement: {m.placement}.",
        "",
    ]
    if m.unavailable:
        lines += [f"Not available: {m.unavailable}", ""]
    if m.ours or m.baselines:
        against = "its pair's" if m.paired else "ours'"
        lines += [
            "| role | case | p50 | p99 | mean | min | samples | ratio (base p50 / "
            f"{against} p50) |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for role, group in (("ours", m.ours), ("baseline", m.baselines)):
            for s in group:
                ratio = f"{m.ratio(s):.2f}x" if role == "baseline" else "-"
                lines.append(
                    f"| {role} | {s.name} | {fmt(s.p50_ns, unit)} | "
                    f"{fmt(s.p99_ns, unit)} | {fmt(s.mean_ns, unit)} | "
                    f"{fmt(s.min_ns, unit)} | {s.n} x {s.ops} | {ratio} |"
                )
        lines.append("")
    lines += [f"- {n}" for n in m.notes]
    return "\n".join(lines)


def _clean(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    return obj


def _subset(values: list[float], limit: int = 20_000) -> list[float]:
    if len(values) <= limit:
        return values
    step = len(values) / limit
    return [values[int(i * step)] for i in range(limit)]


def plot(metrics: list[Metric], path: Path) -> str | None:
    """Latency distributions (ECDFs, log x): step_internal, wire_to_wire against the echo floor,
    tick_to_trade, parse_apply against its baselines. Returns why not, if it could not."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except Exception as exc:  # matplotlib is in the bench extra
        return f"matplotlib not available ({type(exc).__name__}: {exc})"
    by = {m.name: m for m in metrics}
    panels = [
        (n, t)
        for n, t in (
            ("step_internal", "step_internal: frame received -> first tx on the signer queue"),
            ("wire_to_wire", "wire_to_wire vs the echo floor (same run, same connection)"),
            ("parse_apply", "parse_apply: frame bytes -> book updated (per msg, batch means)"),
            (
                "tick_to_trade",
                "tick_to_trade: native signer inline vs the official one on its thread (same run)",
            ),
        )
        if n in by and not by[n].unavailable
    ]
    if not panels:
        return "no latency metric ran"
    fig, axes = plt.subplots(len(panels), 1, figsize=(11, 3.6 * len(panels)))
    if len(panels) == 1:
        axes = [axes]
    for ax, (name, title) in zip(axes, panels, strict=True):
        m = by[name]
        dists = dict(m.dists)
        if not dists:  # micro metrics: the batch means kept by the harness are not here
            dists = {}
        for label, values in dists.items():
            vals = sorted(_subset([v for v in values if v > 0]))
            if not vals:
                continue
            n = len(vals)
            ax.plot(
                [v / 1000 for v in vals],
                [(i + 1) / n for i in range(n)],
                label=f"{label} (p50 {fmt(vals[n // 2])})",
                linewidth=1.6,
            )
        for tgt, style in ((m.target_ns, "--"), (m.target_p99_ns, ":")):
            if tgt:
                ax.axvline(
                    tgt / 1000,
                    color="black",
                    linestyle=style,
                    linewidth=1,
                    label=f"target {fmt(tgt)}" + (" p99" if style == ":" else " p50"),
                )
        if name == "wire_to_wire" and m.baselines:
            bar = (m.baselines[0].p50_ns + 25_000) / 1000
            ax.axvline(
                bar,
                color="black",
                linestyle="--",
                linewidth=1,
                label=f"target: {m.baselines[0].name.split(':')[0]} echo p50 + 25 us",
            )
        ax.set_xscale("log")
        ax.set_xlabel("microseconds (log scale)")
        ax.set_ylabel("fraction <= x")
        ax.axhline(0.5, color="grey", linewidth=0.5)
        ax.axhline(0.99, color="grey", linewidth=0.5)
        ax.set_title(title, fontsize=11)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None


def write_results(
    out_dir: Path, metrics: list[Metric], header: dict[str, Any], intro: str
) -> dict[str, Path]:
    """Write the three files; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": out_dir / "results.json",
        "md": out_dir / "results.md",
        "png": out_dir / "latency.png",
    }
    data = {**header, "metrics": [m.as_dict() for m in metrics]}
    paths["json"].write_text(
        json.dumps(_clean(data), indent=2, allow_nan=False) + "\n", encoding="utf-8"
    )
    why_no_png = plot(metrics, paths["png"])
    md = [intro, "", "## Summary", "", headline_table(metrics), ""]
    if why_no_png:
        md += [f"No PNG: {why_no_png}.", ""]
        paths.pop("png")
    else:
        md += ["Distributions: `latency.png` (ECDFs, log scale).", ""]
    md += ["## Details", ""]
    for m in metrics:
        md += [detail(m), ""]
    paths["md"].write_text("\n".join(md), encoding="utf-8")
    return paths
