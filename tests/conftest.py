"""Session-wide guards: tests only ever run against the compiled build."""

from __future__ import annotations

import importlib
import importlib.machinery
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# Every module with a source in cython_src must be importable as a compiled extension.
COMPILED = tuple(sorted(p.stem for p in (REPO / "cython_src/mmfast/_core").glob("*.pyx")))


def _compiled_modules() -> dict[str, str]:
    found: dict[str, str] = {}
    for name in COMPILED:
        try:
            mod = importlib.import_module(f"mmfast._core.{name}")
        except ImportError as exc:
            raise pytest.UsageError(
                f"mmfast._core.{name} is not built ({exc}). "
                "Install first: pip install -e '.[test]' (see README)."
            ) from exc
        path = getattr(mod, "__file__", "") or ""
        if not path.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES)):
            raise pytest.UsageError(f"mmfast._core.{name} is not a compiled extension: {path}")
        found[name] = path
    return found


def pytest_configure(config: pytest.Config) -> None:
    mods = _compiled_modules()
    if os.environ.get("MMFAST_TEST_INSTALLED") == "1":
        # Wheel check: the package must come from site-packages, not from this source tree.
        for name, path in mods.items():
            if Path(path).resolve().is_relative_to(REPO):
                raise pytest.UsageError(
                    f"mmfast._core.{name} imported from the source tree: {path}"
                )


def pytest_report_header(config: pytest.Config) -> str:
    import mmfast

    return f"mmfast from {Path(mmfast.__file__).parent} (compiled: {', '.join(COMPILED)})"
