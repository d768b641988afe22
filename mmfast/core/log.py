"""mmfast's loggers and their configuration.

mmfast configures the ``mmfast`` logger tree only: never the root logger, never a third-party
logger, except that ``configure_logging(quiet=...)`` holds named SDK loggers (lighter-sdk logs
signed transactions at DEBUG) at WARNING when asked.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Iterable
from typing import IO

import orjson

__all__ = [
    "DEBUG_ENV_VARS",
    "ROOT_LOGGER",
    "SDK_LOGGERS",
    "JsonFormatter",
    "TerminalFormatter",
    "configure_logging",
    "debug_from_env",
    "get_logger",
]

ROOT_LOGGER = "mmfast"
# Third-party loggers mmfast may hold at WARNING (only when asked).
SDK_LOGGERS: tuple[str, ...] = ("lighter", "urllib3", "aiohttp", "websockets")
# The debug switch: MMFAST_DEBUG, or its old name XTB_DEBUG (MMFAST_DEBUG wins when both are set).
DEBUG_ENV_VARS: tuple[str, ...] = ("MMFAST_DEBUG", "XTB_DEBUG")
_TRUE = frozenset({"1", "true", "yes"})

# Marks the handler configure_logging installed, so a second call replaces it.
_HANDLER_ATTR = "_mmfast_handler"


def get_logger(name: str = "") -> logging.Logger:
    """The ``mmfast`` logger, or ``mmfast.<name>`` (a name already under ``mmfast`` is kept)."""
    if not name or name == ROOT_LOGGER:
        return logging.getLogger(ROOT_LOGGER)
    if name.startswith(ROOT_LOGGER + "."):
        return logging.getLogger(name)
    return logging.getLogger(f"{ROOT_LOGGER}.{name}")


def debug_from_env(environ: os._Environ[str] | dict[str, str] | None = None) -> bool:
    """True when MMFAST_DEBUG (or, if unset, XTB_DEBUG) is 1/true/yes (any case)."""
    env = os.environ if environ is None else environ
    for var in DEBUG_ENV_VARS:
        value = env.get(var)
        if value is not None:
            return value.strip().lower() in _TRUE
    return False


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts (epoch s), level, logger, msg, and exc when present."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, object] = {
            "ts": round(record.created, 6),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            doc["exc"] = record.exc_text
        return orjson.dumps(doc).decode()


class TerminalFormatter(logging.Formatter):
    """For a person at a terminal: ``HH:MM:SS.mmm LEVEL    logger: message``, the logger
    without the ``mmfast.`` all of ours share, no date (a file or a pipe gets the full
    timestamp; the journal and the JSON logs keep it too). The message starts at column
    ``PREFIX_WIDTH`` of its first line, so a display can wrap it under itself."""

    PREFIX_WIDTH = 22  # "00:15:15.360 WARNING  "

    def format(self, record: logging.LogRecord) -> str:
        msg = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            msg = f"{msg}\n{record.exc_text}"
        if record.stack_info:
            msg = f"{msg}\n{self.formatStack(record.stack_info)}"
        t = time.strftime("%H:%M:%S", time.localtime(record.created))
        name = record.name.removeprefix(ROOT_LOGGER + ".")
        return f"{t}.{int(record.msecs):03d} {record.levelname:<8} {name}: {msg}"


def configure_logging(
    level: int | str = logging.INFO,
    json: bool = False,
    *,
    stream: IO[str] | None = None,
    quiet: Iterable[str] = (),
    others: bool = False,
) -> logging.Handler:
    """Send the ``mmfast`` logger tree to ``stream`` (default stderr) at ``level``.

    Idempotent: a second call replaces the handler the first one installed. The ``mmfast``
    logger stops propagating to the root so records are not printed twice by a root handler.
    ``quiet``: third-party logger names (e.g. ``SDK_LOGGERS``) raised to WARNING if lower.
    ``others``: the root logger gets the same handler, so every other library's records
    (aiohttp's server errors, asyncio's) go through its filters too (a redacting one).
    Returns the installed handler.
    """
    logger = logging.getLogger(ROOT_LOGGER)
    root = logging.getLogger()
    for lg in (logger, root) if others else (logger,):
        for old in [h for h in lg.handlers if getattr(h, _HANDLER_ATTR, False)]:
            lg.removeHandler(old)
            old.close()
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    if json:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    setattr(handler, _HANDLER_ATTR, True)
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
    if others:
        root.addHandler(handler)
    for name in quiet:
        if name == ROOT_LOGGER or name.startswith(ROOT_LOGGER + ".") or not name:
            raise ValueError(f"quiet is for third-party loggers, got {name!r}")
        other = logging.getLogger(name)
        if other.level == logging.NOTSET or other.level < logging.WARNING:
            other.setLevel(logging.WARNING)
    return handler
