"""``mmfast report``: what an operator reads after a run, made from its JSONL journal
(docs/report.md).

- ``reader``: the journal read line by line (a bad line skipped and counted), cut into runs;
- ``figures``: every figure computed in pure Python (PnL and inventory, markouts, spread
  captured, quote uptime, rejects, denials, latency): ``report.json`` needs no matplotlib;
- ``plots``: the PNGs (matplotlib, Agg, the ``report`` extra);
- ``html``: ``report.html``, the summary table first;
- ``writer``: ``make_report`` / ``write_report`` put them into one folder;
- ``command``: the ``mmfast report`` subcommand.
"""

from __future__ import annotations

from mmfast.report.reader import ReportError, read_journal
from mmfast.report.writer import ReportResult, default_out_dir, make_report, write_report

__all__ = [
    "ReportError",
    "ReportResult",
    "default_out_dir",
    "make_report",
    "read_journal",
    "write_report",
]
