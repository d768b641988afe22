"""The runner behind ``mmfast run``: config -> simulator (sim mode) -> connector -> core ->
strategy -> risk -> live status and JSONL journal. Reference: docs/run.md.

Names are imported on first use: ``mmfast guard`` (a process of its own, started beside every
bot) needs only ``mmfast.run.guard`` and would otherwise load the runner, the config loader and
the simulator at each start-up."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mmfast.run.journal import JsonlJournal, MemoryJournal
    from mmfast.run.runner import (
        EXIT_CONFIG,
        EXIT_KILL_STOP,
        EXIT_OK,
        EXIT_ORDERS_LEFT,
        Runner,
        RunOptions,
        load_run_config,
        run_from_args,
    )
    from mmfast.run.status import (
        LiveStatus,
        StatusPrinter,
        open_status,
        render_panel,
        render_status,
        render_summary,
    )

_WHERE = {
    "JsonlJournal": "journal",
    "MemoryJournal": "journal",
    "EXIT_CONFIG": "runner",
    "EXIT_KILL_STOP": "runner",
    "EXIT_OK": "runner",
    "EXIT_ORDERS_LEFT": "runner",
    "Runner": "runner",
    "RunOptions": "runner",
    "load_run_config": "runner",
    "run_from_args": "runner",
    "StatusPrinter": "status",
    "render_status": "status",
    "render_summary": "status",
    "LiveStatus": "status",
    "open_status": "status",
    "render_panel": "status",
}

__all__ = [
    "EXIT_CONFIG",
    "EXIT_KILL_STOP",
    "EXIT_OK",
    "EXIT_ORDERS_LEFT",
    "JsonlJournal",
    "LiveStatus",
    "MemoryJournal",
    "RunOptions",
    "Runner",
    "StatusPrinter",
    "load_run_config",
    "open_status",
    "render_panel",
    "render_status",
    "render_summary",
    "run_from_args",
]


def __getattr__(name: str) -> Any:
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module 'mmfast.run' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"mmfast.run.{where}"), name)
    globals()[name] = value  # once
    return value
