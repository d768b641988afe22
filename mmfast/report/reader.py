"""Reading a run journal (``mmfast.run.journal``'s JSONL) for the report: every line parsed,
a bad one skipped and counted (never fatal), the file cut into its runs.

A journal is appended to by every run that names it (the default path is shared), so one file
may hold several runs: a run's records go from its ``run_start`` (with the ``guard_started``
and any ``guard``/``condition`` lines the runner wrote just before it) to the next run's. A
file without any ``run_start`` (its head lost, or written by something else) is one run.

Only the kinds the figures read are kept (``KEPT``); the others are counted per run. A
journal of hours holds millions of lines, mostly order updates and guard copies.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import orjson

from mmfast.core.errors import MmfastError

__all__ = [
    "KEPT",
    "JournalFile",
    "JournalRun",
    "Malformed",
    "ReportError",
    "read_journal",
    "split_runs",
]


class ReportError(MmfastError, ValueError):
    """A journal the report cannot be made from (unreadable, no record, no such run)."""


# Kinds the figures read; every other kind is only counted.
KEPT: Final = frozenset(
    {
        "run_start",
        "market",
        "fill",
        "order",
        "denied",
        "send_error",
        "kill_switch",
        "shutdown",
        "run_stop",
        "summary",
        "position_rebase",
    }
)
# The fields kept of the kinds a long run writes most (4 market records a second, an order
# record per state change): what the figures read of them, nothing more.
_SLIM: Final = {
    "market": (
        "ts_ms",
        "mono_ns",
        "kind",
        "bid",
        "ask",
        "mid",
        "mark",
        "our_bid",
        "our_ask",
        "position",
    ),
    "order": ("ts_ms", "mono_ns", "kind", "coi", "side", "status", "reason"),
}
# Written by the runner between a run's journal opening and its run_start.
_BEFORE_START: Final = frozenset({"guard_started", "guard", "condition"})
_ENDS: Final = frozenset({"summary", "run_stop"})
_MAX_SHOWN: Final = 20  # malformed lines listed one by one (all are counted)


@dataclass(frozen=True, slots=True)
class Malformed:
    """A line that is not a journal record: its number (1-based) and why."""

    line: int
    why: str


@dataclass(slots=True)
class JournalRun:
    """One run of a journal: its kept records in file order and its lines per kind."""

    index: int  # 1-based, in file order
    records: list[dict[str, Any]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)  # every record, kept or not
    first_line: int = 0  # 1-based line number of its first record

    @property
    def start(self) -> dict[str, Any] | None:
        """Its ``run_start`` record (None: the journal lost it, or never had one)."""
        for r in self.records:
            if r["kind"] == "run_start":
                return r
        return None


@dataclass(slots=True)
class JournalFile:
    """A journal as read: its runs, the lines skipped and how many lines it has."""

    path: Path
    lines: int  # non-empty lines
    runs: list[JournalRun]
    malformed: list[Malformed]  # the first _MAX_SHOWN
    malformed_count: int

    def malformed_note(self) -> str:
        """One sentence about the skipped lines ("" when none)."""
        n = self.malformed_count
        if not n:
            return ""
        shown = "; ".join(f"line {m.line}: {m.why}" for m in self.malformed)
        more = f" (and {n - len(self.malformed)} more)" if n > len(self.malformed) else ""
        return f"{n} malformed line{'s' if n != 1 else ''} skipped of {self.lines}: {shown}{more}"


def _parse(line: bytes, number: int, last: bool) -> dict[str, Any] | Malformed:
    try:
        rec = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        if last:
            return Malformed(number, "truncated last line (the run stopped while writing it?)")
        return Malformed(number, f"not JSON ({str(exc).split(':')[0]})")
    if not isinstance(rec, dict):
        return Malformed(number, f"a JSON {type(rec).__name__}, not a record")
    kind = rec.get("kind")
    if not isinstance(kind, str) or not kind:
        return Malformed(number, "no 'kind'")
    t = rec.get("mono_ns")
    if not isinstance(t, int) or isinstance(t, bool):
        ts = rec.get("ts_ms")
        if not isinstance(ts, int) or isinstance(ts, bool):
            return Malformed(number, f"{kind} record without a time (mono_ns, ts_ms)")
    return rec


def split_runs(records: list[tuple[int, dict[str, Any]]]) -> list[JournalRun]:
    """Records (line number, record) in file order -> runs (see the module doc)."""
    runs: list[JournalRun] = []
    cur: list[tuple[int, dict[str, Any]]] = []
    started = False
    for item in records:
        if item[1]["kind"] == "run_start" and started:
            # The new run's start-up lines came after the previous run ended: move them over.
            cut = len(cur)
            while cut > 0 and cur[cut - 1][1]["kind"] in _BEFORE_START:
                cut -= 1
            ends = [i for i, (_, r) in enumerate(cur) if r["kind"] in _ENDS]
            if ends:
                cut = max(cut, ends[-1] + 1)
            runs.append(_run(len(runs) + 1, cur[:cut]))
            cur = cur[cut:]
        if item[1]["kind"] == "run_start":
            started = True
        cur.append(item)
    if cur or not runs:
        runs.append(_run(len(runs) + 1, cur))
    return runs


def _run(index: int, items: list[tuple[int, dict[str, Any]]]) -> JournalRun:
    run = JournalRun(index, first_line=items[0][0] if items else 0)
    counts = run.counts
    for _, r in items:
        k = r["kind"]
        counts[k] = counts.get(k, 0) + 1
        if k in KEPT:
            run.records.append(r)
    return run


def read_journal(path: str | Path) -> JournalFile:
    """Read ``path``: ReportError when it cannot be read or holds no record at all."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise ReportError(f"no journal at {p}") from None
    except IsADirectoryError:
        raise ReportError(f"{p} is a directory, not a journal") from None
    except OSError as exc:
        raise ReportError(f"cannot read {p}: {exc.strerror}") from None
    raw = data.split(b"\n")
    last_whole = not data.endswith(b"\n")  # the last piece lacks its newline
    records: list[tuple[int, dict[str, Any]]] = []
    bad: list[Malformed] = []
    nbad = lines = 0
    for i, line in enumerate(raw):
        if not line.strip():
            continue
        lines += 1
        got = _parse(line, i + 1, last_whole and i == len(raw) - 1)
        if isinstance(got, Malformed):
            nbad += 1
            if len(bad) < _MAX_SHOWN:
                bad.append(got)
            continue
        k = got["kind"]
        slim = _SLIM.get(k)
        if slim is not None:
            got = {f: got[f] for f in slim if f in got}
        elif k not in KEPT:
            got = {"kind": k}  # only counted (runs are cut by kind)
        records.append((i + 1, got))
    if not records:
        why = f" ({nbad} malformed line{'s' if nbad != 1 else ''})" if nbad else ""
        raise ReportError(f"{p} holds no journal record{why}")
    return JournalFile(p, lines, split_runs(records), bad, nbad)
