"""mmfast.core.log: only mmfast's loggers are configured; root and third parties untouched."""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterator

import orjson
import pytest

from mmfast.core.log import SDK_LOGGERS, TerminalFormatter, configure_logging, get_logger

THIRD_PARTY = ("lighter", "urllib3", "aiohttp", "websockets", "asyncio")


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    names = ("mmfast", *THIRD_PARTY)
    saved = {
        n: (logging.getLogger(n).level, list(logging.getLogger(n).handlers),
            logging.getLogger(n).propagate)
        for n in names
    }  # fmt: skip
    root = logging.getLogger()
    root_saved = (root.level, list(root.handlers))
    yield
    for n, (level, handlers, propagate) in saved.items():
        lg = logging.getLogger(n)
        for h in list(lg.handlers):
            if h not in handlers:
                lg.removeHandler(h)
        lg.setLevel(level)
        lg.propagate = propagate
    root.setLevel(root_saved[0])


def snapshot(names: tuple[str, ...]) -> dict[str, tuple[int, int, bool]]:
    return {
        n: (lg.level, len(lg.handlers), lg.propagate)
        for n in names
        for lg in [logging.getLogger(n)]
    }


def test_configure_touches_only_mmfast() -> None:
    root = logging.getLogger()
    root_before = (root.level, list(root.handlers))
    others_before = snapshot(THIRD_PARTY)
    stream = io.StringIO()
    handler = configure_logging(logging.INFO, stream=stream)
    assert (root.level, list(root.handlers)) == root_before
    assert snapshot(THIRD_PARTY) == others_before
    mm = logging.getLogger("mmfast")
    assert handler in mm.handlers and mm.level == logging.INFO and mm.propagate is False
    get_logger("core").info("hello %d", 1)
    get_logger("core").debug("not shown")
    logging.getLogger("lighter").warning("third party line")
    out = stream.getvalue()
    assert "mmfast.core: hello 1" in out
    assert "not shown" not in out and "third party" not in out


def test_configure_is_idempotent() -> None:
    configure_logging(logging.INFO, stream=io.StringIO())
    stream = io.StringIO()
    configure_logging(logging.DEBUG, stream=stream)
    mm = logging.getLogger("mmfast")
    ours = [h for h in mm.handlers if getattr(h, "_mmfast_handler", False)]
    assert len(ours) == 1
    get_logger("x").debug("once")
    assert stream.getvalue().count("once") == 1


def test_quiet_holds_sdk_loggers_at_warning_only_when_asked() -> None:
    logging.getLogger("lighter").setLevel(logging.DEBUG)
    logging.getLogger("urllib3").setLevel(logging.ERROR)
    configure_logging(logging.INFO, stream=io.StringIO())
    assert logging.getLogger("lighter").level == logging.DEBUG  # not asked: untouched
    configure_logging(logging.INFO, stream=io.StringIO(), quiet=SDK_LOGGERS)
    assert logging.getLogger("lighter").level == logging.WARNING
    assert logging.getLogger("urllib3").level == logging.ERROR  # already quieter: kept
    assert logging.getLogger("aiohttp").level == logging.WARNING
    assert logging.getLogger().handlers == logging.getLogger().handlers  # root untouched
    with pytest.raises(ValueError):
        configure_logging(stream=io.StringIO(), quiet=["mmfast.core"])


def test_json_lines() -> None:
    stream = io.StringIO()
    configure_logging(logging.INFO, json=True, stream=stream)
    log = get_logger("core")
    log.info("state %s", "RUNNING")
    try:
        raise ValueError("bad thing")
    except ValueError:
        log.exception("failed")
    lines = [orjson.loads(x) for x in stream.getvalue().splitlines()]
    assert [(d["level"], d["logger"], d["msg"]) for d in lines] == [
        ("INFO", "mmfast.core", "state RUNNING"),
        ("ERROR", "mmfast.core", "failed"),
    ]
    assert "ValueError: bad thing" in lines[1]["exc"]
    assert isinstance(lines[0]["ts"], float)


def test_terminal_lines() -> None:
    stream = io.StringIO()
    handler = configure_logging(logging.INFO, stream=stream)
    handler.setFormatter(TerminalFormatter())
    log = get_logger("strategy.tp")
    log.warning("tp placed: size=%s", "0.0100")
    try:
        raise ValueError("bad thing")
    except ValueError:
        log.exception("failed")
    lines = stream.getvalue().splitlines()
    # Time of day to the ms, the level, the logger without "mmfast.", the message at a fixed
    # column; an exception's lines after it.
    assert re.fullmatch(
        r"\d\d:\d\d:\d\d\.\d{3} WARNING  strategy\.tp: tp placed: size=0\.0100", lines[0]
    ), lines
    assert lines[0].index("strategy.tp") == TerminalFormatter.PREFIX_WIDTH
    assert lines[1][TerminalFormatter.PREFIX_WIDTH :] == "strategy.tp: failed"
    assert lines[1][13:21] == "ERROR   " and lines[-1] == "ValueError: bad thing"


def test_get_logger_names() -> None:
    assert get_logger().name == "mmfast"
    assert get_logger("core").name == "mmfast.core"
    assert get_logger("mmfast.clock").name == "mmfast.clock"
    assert get_logger("mmfast").name == "mmfast"
