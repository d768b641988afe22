"""The debug flag (constructor vs env, both names, off by default) and gated core.dbg()."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from mmfast.core import TradingCore
from mmfast.core.log import debug_from_env


class Conn:
    async def start(self, core: TradingCore) -> None:
        pass

    async def stop(self, core: TradingCore) -> None:
        pass

    async def cancel_all(self, market: int, timeout: float) -> int:
        return 0


class Exploding:
    """Formatting this raises: proves dbg() formats nothing when off."""

    def __init__(self) -> None:
        self.formatted = 0

    def __str__(self) -> str:
        self.formatted += 1
        return "exploding-arg"

    __repr__ = __str__


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.delenv("MMFAST_DEBUG", raising=False)
    monkeypatch.delenv("XTB_DEBUG", raising=False)
    return monkeypatch


def core_with(debug: bool | None = None) -> TradingCore:
    return TradingCore(Conn(), [], debug=debug)


def dbg_lines(caplog: pytest.LogCaptureFixture, core: TradingCore, *args: Any) -> list[str]:
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="mmfast"):
        core.dbg("quote %s at %d", *args)
    return [r.getMessage() for r in caplog.records if r.name == "mmfast.core"]


def test_off_by_default(clean_env: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    core = core_with()
    assert core.debug is False
    arg = Exploding()
    assert dbg_lines(caplog, core, arg, 5) == []
    assert arg.formatted == 0
    assert core.status()["debug"] is False


def test_constructor_true_logs(
    clean_env: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    core = core_with(True)
    assert core.debug is True
    assert dbg_lines(caplog, core, "bid", 5) == ["quote bid at 5"]
    rec = caplog.records[-1]
    assert rec.levelno == logging.DEBUG
    assert core.status()["debug"] is True


@pytest.mark.parametrize("var", ["MMFAST_DEBUG", "XTB_DEBUG"])
@pytest.mark.parametrize("value", ["1", "true", "yes", "TRUE", " Yes "])
def test_env_switch_on(
    clean_env: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, var: str, value: str
) -> None:
    clean_env.setenv(var, value)
    core = core_with()
    assert core.debug is True
    assert dbg_lines(caplog, core, "ask", 7) == ["quote ask at 7"]


@pytest.mark.parametrize("var", ["MMFAST_DEBUG", "XTB_DEBUG"])
@pytest.mark.parametrize("value", ["0", "false", "no", "", "off", "2"])
def test_env_switch_off(
    clean_env: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, var: str, value: str
) -> None:
    clean_env.setenv(var, value)
    core = core_with()
    assert core.debug is False
    assert dbg_lines(caplog, core, "ask", 7) == []


def test_constructor_overrides_env(
    clean_env: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    clean_env.setenv("MMFAST_DEBUG", "1")
    assert core_with(False).debug is False
    assert dbg_lines(caplog, core_with(False), "x", 1) == []
    clean_env.setenv("MMFAST_DEBUG", "0")
    assert core_with(True).debug is True


def test_new_name_wins_over_old(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("XTB_DEBUG", "1")
    clean_env.setenv("MMFAST_DEBUG", "0")
    assert core_with().debug is False
    clean_env.setenv("XTB_DEBUG", "0")
    clean_env.setenv("MMFAST_DEBUG", "yes")
    assert core_with().debug is True


def test_debug_from_env_with_mapping() -> None:
    assert debug_from_env({}) is False
    assert debug_from_env({"XTB_DEBUG": "1"}) is True
    assert debug_from_env({"MMFAST_DEBUG": "no", "XTB_DEBUG": "1"}) is False


def test_dbg_respects_logger_level_when_on(
    clean_env: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Debug on, but logging configured at INFO: the line is filtered by logging, not forced out.
    core = core_with(True)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="mmfast"):
        core.dbg("hidden %d", 1)
    assert [r for r in caplog.records if r.name == "mmfast.core"] == []
