"""JSONL journal: one JSON object per line for every order, fill and state change of a run.

Each line: ``{"ts_ms": <wall epoch ms>, "mono_ns": <monotonic ns>, "kind": "...", ...}``.
Kinds written by mmfast: ``run_start``, ``run_stop``, ``strategy_started``/``_stopped``,
``order_sent``, ``order`` (every state change), ``order_modify``, ``order_cancel``, ``denied``
(risk gate, with the reason), ``send_error``, ``fill``, ``market`` (the price path, our quotes
and PnL, four a second from the strategy's tick), ``cancel_all``/``_done``, ``pull_quotes``,
``connector_state``, ``kill_switch``, ``trend``, ``tp_*`` (trend ladder), ``summary`` (with
the latency histograms); the list and the fields: docs/run.md. ``mmfast report`` reads them
(docs/report.md). Values are what the strategy passes (ints in ticks/lots, names, reasons): no
secret is ever handed to the journal, and every string value long enough to hold key material
(16+ characters) also goes through the run's redactor. Whole lines are not redacted: that costs
~47 us a line on the event path against ~2 us for the write itself.

Crash-safe: lines are kept whole in memory and handed to the OS (one ``write`` of whole lines,
so a line is never torn) by ``start()``'s timer every 50 ms (not started: at the first write
50 ms after the last hand-over; the event path never makes the syscall once started), and at
``close()``; the file is fsynced every 100 ms from a worker thread
(the loop never waits on the disk) and at ``close()``. A ``kill -9`` loses at most the lines of
the last 50-100 ms (what the OS has is kept); a host crash at most the last 100-200 ms.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from mmfast.core.timesource import REAL_TIME, TimeSource

__all__ = ["JsonlJournal", "MemoryJournal"]

_MIN_SECRET_RUN = 16  # the redactor removes runs of this many characters of a secret


def _fsync_close(fd: int) -> None:
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _default(obj: Any) -> Any:
    # Enums, Fractions, Paths...: their plain form.
    if hasattr(obj, "name") and hasattr(obj, "value"):
        return obj.name
    return str(obj)


class JsonlJournal:
    """Append-only JSONL file (created 0600: a journal is operator data)."""

    FLUSH_NS = 50_000_000  # lines reach the OS at least this often (while events come)
    FSYNC_S = 0.1  # and the disk this often (start())

    def __init__(
        self,
        path: str | Path,
        *,
        time: TimeSource = REAL_TIME,
        redact: Callable[[str], str] | None = None,
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd: int | None = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._buf: list[bytes] = []  # whole lines not yet handed to the OS
        self._time = time
        self._redact = redact
        self._last_flush_ns = time.monotonic_ns()
        self._timer: asyncio.TimerHandle | None = None
        self._fsync: asyncio.Future[None] | None = None
        self._dirty = False  # written to the OS since the last fsync
        self.lines = 0  # lines written
        self.fsyncs = 0  # fsyncs done
        self.counts: dict[str, int] = {}  # lines per kind

    def write(self, kind: str, **fields: Any) -> None:
        if self._fd is None:
            return
        red = self._redact
        if red is not None:
            for k, v in fields.items():
                if isinstance(v, str) and len(v) >= _MIN_SECRET_RUN:
                    fields[k] = red(v)
        now = self._time.monotonic_ns()
        rec = {"ts_ms": self._time.wall_ms(), "mono_ns": now, "kind": kind, **fields}
        self._buf.append(
            orjson.dumps(rec, default=_default, option=orjson.OPT_NON_STR_KEYS) + b"\n"
        )
        self.lines += 1
        self.counts[kind] = self.counts.get(kind, 0) + 1
        if self._timer is None and now - self._last_flush_ns >= self.FLUSH_NS:
            self.flush()  # not started (no timer): the writes themselves hand lines over

    def flush(self) -> None:
        """Hand every whole line kept to the OS (one write)."""
        self._last_flush_ns = self._time.monotonic_ns()
        if self._fd is None or not self._buf:
            return
        data = b"".join(self._buf)
        self._buf.clear()
        view = memoryview(data)
        while view:  # a short write (a signal): the rest follows, nothing is dropped
            n = os.write(self._fd, view)
            view = view[n:]
        self._dirty = True

    def start(self) -> None:
        """Flush every 50 ms and fsync every 100 ms on the running loop until ``close()``."""
        if self._timer is None and self._fd is not None:
            self._tick(0)

    def _tick(self, n: int) -> None:
        self.flush()
        if n % 2 == 1 and self._dirty and self._fsync is None and self._fd is not None:
            self._dirty = False
            loop = asyncio.get_running_loop()
            # Its own descriptor: close() may close ours while the worker still syncs.
            self._fsync = loop.run_in_executor(None, _fsync_close, os.dup(self._fd))
            self._fsync.add_done_callback(self._synced)
        self._timer = asyncio.get_running_loop().call_later(self.FLUSH_NS / 1e9, self._tick, n + 1)

    def _synced(self, fut: asyncio.Future[None]) -> None:
        self._fsync = None
        if not fut.cancelled() and fut.exception() is None:
            self.fsyncs += 1

    def close(self) -> None:
        """Everything to the OS and the disk; no more lines."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._fd is not None:
            self.flush()
            with contextlib.suppress(OSError):
                os.fsync(self._fd)
                self.fsyncs += 1
            os.close(self._fd)
            self._fd = None


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
