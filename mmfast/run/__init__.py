"""The runner behind ``mmfast run``: config -> simulator (sim mode) -> connector -> core ->
strategy -> risk -> live status and JSONL journal. Reference: docs/run.md."""

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
from mmfast.run.status import StatusPrinter, render_status, render_summary

__all__ = [
    "EXIT_CONFIG",
    "EXIT_KILL_STOP",
    "EXIT_OK",
    "EXIT_ORDERS_LEFT",
    "JsonlJournal",
    "MemoryJournal",
    "RunOptions",
    "Runner",
    "StatusPrinter",
    "load_run_config",
    "render_status",
    "render_summary",
    "run_from_args",
]
