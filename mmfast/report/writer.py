"""Writing a run's report: the journal read, the figures computed, ``report.json``, the PNG
plots (when matplotlib is installed) and ``report.html`` into one folder."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import orjson

from mmfast.report.figures import Figures, compute
from mmfast.report.html import render_html
from mmfast.report.plots import INSTALL_HINT, PLOTS, available, draw_all
from mmfast.report.reader import ReportError, read_journal

__all__ = ["ReportResult", "default_out_dir", "make_report", "write_report"]

_MODE: Final = 0o600  # a report holds what the journal holds: operator data


@dataclass(frozen=True, slots=True)
class ReportResult:
    """What ``make_report`` wrote: the page, the JSON, the plots, and why plots are missing
    ("" when matplotlib drew them)."""

    out_dir: Path
    html: Path
    json: Path
    plots: dict[str, Path]
    skipped: dict[str, str]
    plots_missing: str
    figures: Figures


def default_out_dir(journal_path: str | Path) -> Path:
    """``<journal stem>-report/`` beside the journal."""
    p = Path(journal_path)
    return p.with_name(f"{p.stem}-report")


def _write(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, _MODE)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def make_report(
    journal_path: str | Path,
    out_dir: str | Path | None = None,
    *,
    run: int = -1,
    plots: bool = True,
) -> ReportResult:
    """Report run ``run`` of the journal (1-based; negative from the end: -1 is the last)
    into ``out_dir`` (default: ``default_out_dir``). Without matplotlib (or ``plots=False``)
    the JSON and the page are written all the same and ``plots_missing`` says why the plots
    are not. ReportError when the journal cannot be read, holds no record or no such run."""
    jf = read_journal(journal_path)
    n = len(jf.runs)
    if run == 0 or not -n <= run <= n:
        raise ReportError(
            f"{jf.path} holds {n} run{'s' if n != 1 else ''}: --run must be "
            f"1..{n} (or -1..-{n} from the end), not {run}"
        )
    chosen = jf.runs[run - 1 if run > 0 else run]
    figures = compute(jf, chosen)
    out = Path(out_dir) if out_dir is not None else default_out_dir(jf.path)
    try:
        out.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise ReportError(f"cannot make the report folder {out}: {exc.strerror}") from None
    if not out.is_dir():
        raise ReportError(f"{out} is not a folder")
    why = available() if plots else "plots not asked for"
    drawn: dict[str, Path] = {}
    skipped: dict[str, str] = {}
    missing = ""
    if why:
        missing = (
            f"plots not drawn: {why}. Install it with: {INSTALL_HINT}"
            if plots
            else "plots not drawn (not asked for)"
        )
    else:
        try:
            drawn, skipped = draw_all(figures, out)
            for p in drawn.values():
                os.chmod(p, _MODE)
        except OSError as exc:
            raise ReportError(f"cannot write the plots into {out}: {exc.strerror}") from None
    # A PNG of an earlier report of this folder that this one did not draw would be read as
    # this run's: gone.
    for name, (file, *_rest) in PLOTS.items():
        if name not in drawn:
            with contextlib.suppress(FileNotFoundError):
                (out / file).unlink()
    data = dict(figures.data)
    data["plots"] = {k: v.name for k, v in drawn.items()}
    data["plots_skipped"] = skipped
    if missing:
        data["notes"] = [missing, *data["notes"]]
    json_path = out / "report.json"
    try:
        _write(json_path, orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS))
        html_path = out / "report.html"
        _write(html_path, render_html(figures, drawn, skipped, missing).encode())
    except OSError as exc:
        raise ReportError(f"cannot write the report into {out}: {exc.strerror}") from None
    return ReportResult(out, html_path, json_path, drawn, skipped, missing, figures)


def write_report(journal_path: str | Path, out_dir: str | Path | None = None) -> Path:
    """The last run of ``journal_path`` reported into ``out_dir`` (default beside the
    journal); returns the path of ``report.html``. Plots when matplotlib is installed (the
    page says how to install it otherwise). ReportError on a journal it cannot read."""
    return make_report(journal_path, out_dir).html
