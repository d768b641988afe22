"""``mmfast report JOURNAL [-o DIR] [--run N]``: the report of a run, with the summary table
printed. Exit 0: written with its plots; 1: the journal could not be reported (the reason on
stderr, nothing written); 3: written without plots (matplotlib missing: how to install it on
stderr)."""

from __future__ import annotations

import argparse
import sys
from typing import IO

__all__ = ["EXIT_NO_PLOTS", "add_parser", "main"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_NO_PLOTS = 3


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "report",
        help="the report of a run from its journal: report.html, "
        "PNG plots and report.json (docs/report.md)",
    )
    p.add_argument("journal", metavar="JOURNAL", help="the run's JSONL journal")
    p.add_argument(
        "-o",
        "--out",
        metavar="DIR",
        default=None,
        help="output folder (default: <journal stem>-report/ beside the journal)",
    )
    p.add_argument(
        "--run",
        type=int,
        default=-1,
        metavar="N",
        help="which run of a journal holding several (1 = the first, -1 = the last; default -1)",
    )
    p.set_defaults(func=main)


def main(args: argparse.Namespace, out: IO[str] | None = None, err: IO[str] | None = None) -> int:
    from mmfast.report import ReportError, make_report

    out = out or sys.stdout
    err = err or sys.stderr
    try:
        res = make_report(args.journal, args.out, run=args.run)
    except ReportError as exc:
        print(f"mmfast report: {exc}", file=err)
        return EXIT_FAILED
    width = max(len(k) for k, _ in res.figures.rows)
    for k, v in res.figures.rows:
        print(f"{k:<{width}}  {v}", file=out)
    for n in res.figures.notes:
        print(f"note: {n}", file=out)
    print(f"report: {res.html}", file=out)
    print(f"json:   {res.json}", file=out)
    if res.plots_missing:
        print(f"mmfast report: {res.plots_missing}", file=err)
        return EXIT_NO_PLOTS
    print(
        f"plots:  {len(res.plots)} PNG in {res.out_dir}"
        + (
            f" ({', '.join(f'{k}: {v}' for k, v in res.skipped.items())} not drawn)"
            if res.skipped
            else ""
        ),
        file=out,
    )
    return EXIT_OK
