"""The development tooling agrees with itself: pre-commit's hooks install the versions the
hashed lock pins (so a commit hook and CI lint with the same tool), and the lock pins every
tool the Makefile and CI call."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _lock() -> dict[str, str]:
    text = (ROOT / "requirements/lock.txt").read_text()
    return {m[1].lower(): m[2] for m in re.finditer(r"^([A-Za-z0-9_.-]+)==(\S+)", text, re.M)}


def test_pre_commit_hooks_pin_the_locked_versions() -> None:
    config = (ROOT / ".pre-commit-config.yaml").read_text()
    pins = re.findall(r'"([A-Za-z0-9_.-]+)==([^"]+)"', config)
    assert {name for name, _ in pins} == {"ruff", "cython-lint", "codespell"}
    lock = _lock()
    for name, version in pins:
        assert lock.get(name) == version, f"{name}: pre-commit {version}, lock {lock.get(name)}"


def test_the_lock_holds_the_tools_ci_and_make_run() -> None:
    lock = _lock()
    for tool in (
        "pytest",
        "pytest-cov",
        "coverage",
        "ruff",
        "cython-lint",
        "pycodestyle",
        "codespell",
        "mypy",
        "build",
        "uv",
        "cython",
        "setuptools",
        "wheel",
        "lighter-sdk",
        "picows",
    ):
        assert tool in lock, tool
    assert "ccxt" not in lock  # installed without its pins from requirements/ccxt.txt
    assert re.search(
        r"^ccxt==\S+ \\\n\s+--hash=sha256:[0-9a-f]{64}",
        (ROOT / "requirements/ccxt.txt").read_text(),
        re.M,
    )
