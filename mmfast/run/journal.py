"""JSONL journal: one JSON object per line for every order, fill and state change of a run.

Each line: ``{"ts_ms": <wall epoch ms>, "mono_ns": <monotonic ns>, "kind": "...", ...}``.
Kinds written by mmfast: ``run_start``, ``run_stop``, ``strategy_started``/``_stopped``,
``order_sent``, ``order`` (every state change), ``order_modify``, ``order_cancel``, ``denied``
(risk gate, with the reason), ``send_error``, ``fill``, ``cancel_all``/``_done``,
``pull_quotes``, ``connector_state``, ``kill_switch``, ``trend``, ``tp_*`` (trend ladder),
``summary``. Values are what the strategy passes (ints in ticks/lots, names, reasons): no
secret is ever handed to the journal, and every string value long enough to hold key material
(16+ characters) also goes through the run's redactor. Whole lines are not redacted: that costs
~47 us a line on the event path against ~2 us for the write itself.

Writes are buffered (the loop thread never waits on the disk for one line) and flushed by
``flush()`` (the runner calls it with every status refresh) and at ``close()``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import orjson

from mmfast.core.timesource import REAL_TIME, TimeSource

__all__ = ["JsonlJournal", "MemoryJournal"]

_MIN_SECRET_RUN = 16  # the redactor removes runs of this many characters of a secret


def _default(obj: Any) -> Any:
    # Enums, Fractions, Paths...: their plain form.
    if hasattr(obj, "name") and hasattr(obj, "value"):
        return obj.name
    return str(obj)


class JsonlJournal:
    """Append-only JSONL file (created 0600: a journal is operator data)."""

    def __init__(self, path: str | Path, *, time: TimeSource = REAL_TIME,
                 redact: Callable[[str], str] | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._f: IO[bytes] | None = os.fdopen(fd, "ab", buffering=64 * 1024)
        self._time = time
        self._redact = redact
        self.lines = 0  # lines written
        self.counts: dict[str, int] = {}  # lines per kind

    def write(self, kind: str, **fields: Any) -> None:
        f = self._f
        if f is None:
            return
        red = self._redact
        if red is not None:
            for k, v in fields.items():
                if isinstance(v, str) and len(v) >= _MIN_SECRET_RUN:
                    fields[k] = red(v)
        rec = {"ts_ms": self._time.wall_ms(), "mono_ns": self._time.monotonic_ns(),
               "kind": kind, **fields}
        f.write(orjson.dumps(rec, default=_default, option=orjson.OPT_NON_STR_KEYS) + b"\n")
        self.lines += 1
        self.counts[kind] = self.counts.get(kind, 0) + 1

    def flush(self) -> None:
        if self._f is not None:
            self._f.flush()

    def close(self) -> None:
        if self._f is not None:
            self._f.flush()
            self._f.close()
            self._f = None


class MemoryJournal:
    """The same interface in memory (tests)."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def write(self, kind: str, **fields: Any) -> None:
        self.records.append({"kind": kind, **fields})

    def kinds(self) -> list[str]:
        return [r["kind"] for r in self.records]

    def flush(self) -> None:
        return None

    def close(self) -> None:
        return None
