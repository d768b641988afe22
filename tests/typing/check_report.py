"""The run report as a user or a tool makes it (``mmfast.report``): ``write_report`` returns
the page's path, ``make_report`` what it wrote, ``read_journal`` the journal cut into runs.

Checked by mypy only (``make typecheck``), never run; see tests/typing in CONTRIBUTING.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, assert_type

from mmfast.report import (
    ReportError,
    ReportResult,
    default_out_dir,
    make_report,
    read_journal,
    write_report,
)
from mmfast.report.figures import Figures
from mmfast.report.reader import JournalFile, JournalRun, Malformed


def writing() -> None:
    assert_type(write_report("run.jsonl"), Path)
    assert_type(write_report(Path("run.jsonl"), "out"), Path)
    assert_type(write_report("run.jsonl", None), Path)
    assert_type(default_out_dir("run.jsonl"), Path)
    result = make_report("run.jsonl", Path("out"), run=-1, plots=False)
    assert_type(result, ReportResult)
    assert_type(result.html, Path)
    assert_type(result.json, Path)
    assert_type(result.plots, dict[str, Path])
    assert_type(result.plots_missing, str)
    assert_type(result.figures, Figures)
    assert_type(result.figures.rows, list[tuple[str, str]])
    try:
        write_report("run.jsonl")
    except ReportError as exc:
        assert_type(exc, ReportError)
        err: ValueError = exc
        del err

    write_report(None)  # type: ignore[arg-type]
    write_report(b"run.jsonl")  # type: ignore[arg-type]
    write_report("run.jsonl", "out", -1)  # type: ignore[call-arg]
    make_report("run.jsonl", "out", -1)  # type: ignore[call-arg]
    make_report("run.jsonl", run="last")  # type: ignore[arg-type]
    page: str = write_report("run.jsonl")  # type: ignore[assignment]
    del page
    result.html = Path("x.html")  # type: ignore[misc]


def reading() -> None:
    journal = read_journal("run.jsonl")
    assert_type(journal, JournalFile)
    assert_type(journal.path, Path)
    assert_type(journal.runs, list[JournalRun])
    assert_type(journal.malformed, list[Malformed])
    assert_type(journal.malformed_note(), str)
    run = journal.runs[-1]
    assert_type(run.index, int)
    assert_type(run.records, list[dict[str, Any]])
    assert_type(run.counts, dict[str, int])
    assert_type(run.start, dict[str, Any] | None)

    read_journal(3)  # type: ignore[arg-type]
    run.start["kind"]  # type: ignore[index]
    journal.malformed[0].line = 2  # type: ignore[misc]
