"""CI's packaging checks (tools/check_imports.py, tools/check_sdist.py) find what they are for:
a compiled module that does not import or has no source, one imported from the source tree
when the installed one is meant, a missing .pxd, build output or a stray file in the sdist."""

from __future__ import annotations

import importlib.util
import io
import shutil
import tarfile
from pathlib import Path
from types import ModuleType

import pytest

import mmfast

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / "tools"


def _tool(name: str, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(TOOLS))  # the tools import each other, as scripts do
    spec = importlib.util.spec_from_file_location(name, TOOLS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _fake_repo(tmp_path: Path, add: tuple[str, ...] = (), drop: tuple[str, ...] = ()) -> Path:
    """A checkout whose cython_src has the real module sources plus ``add``, less ``drop``."""
    core = tmp_path / "repo" / "cython_src" / "mmfast" / "_core"
    core.mkdir(parents=True)
    for pyx in (ROOT / "cython_src/mmfast/_core").glob("*.pyx"):
        if pyx.stem not in drop:
            shutil.copy(pyx, core / pyx.name)
    for name in add:
        (core / f"{name}.pyx").write_text("# a module nobody built\n")
    return tmp_path / "repo"


# ---------------------------------------------------------------------------- check_imports
def test_every_compiled_module_listed_from_the_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    ci = _tool("check_imports", monkeypatch)
    names = ci.compiled_modules()
    assert names == tuple(sorted(p.stem for p in (ROOT / "cython_src/mmfast/_core").glob("*.pyx")))
    assert {"book", "signer", "pipeline"} <= set(names)
    problems, paths = ci.check()
    assert problems == []
    assert len(paths) == len(names)


def test_installed_refuses_the_source_tree_exactly_when_imported_from_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ci = _tool("check_imports", monkeypatch)
    in_tree = Path(mmfast.__file__).resolve().is_relative_to(ROOT)
    problems, _ = ci.check(installed=True)
    if in_tree:
        assert len(problems) == len(ci.compiled_modules())
        assert all("imported from the source tree" in p for p in problems)
    else:  # the wheel or sdist check (MMFAST_TEST_INSTALLED=1)
        assert problems == []


def test_a_source_without_a_module_is_reported(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    ci = _tool("check_imports", monkeypatch)
    problems, _ = ci.check(_fake_repo(tmp_path, add=("nosuchmod",)))
    assert len(problems) == 1
    assert problems[0].startswith("mmfast._core.nosuchmod does not import")
    assert ci.main(["--src", str(tmp_path / "repo")]) == 1


def test_a_module_without_a_source_is_reported(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    ci = _tool("check_imports", monkeypatch)
    problems, _ = ci.check(_fake_repo(tmp_path, drop=("quote",)))
    assert len(problems) == 1
    assert "compiled module with no source in cython_src" in problems[0]
    assert "quote." in problems[0]


# ----------------------------------------------------------------------------- check_sdist
TRACKED = {
    ".ci/run",
    ".gitignore",
    "pyproject.toml",
    "setup.py",
    "mmfast/__init__.py",
    "mmfast/_core/book.pyi",
    "cython_src/mmfast/_core/book.pyx",
    "cython_src/mmfast/_core/book.pxd",
    "tests/unit/test_book.py",
}


def _sdist(tmp_path: Path, files: set[str]) -> Path:
    path = tmp_path / "mmfast-0.1.0.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for name in sorted(files):
            data = f"# {name}\n".encode()
            info = tarfile.TarInfo(f"mmfast-0.1.0/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_sdist_with_every_tracked_file_passes(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cs = _tool("check_sdist", monkeypatch)
    shipped = (TRACKED - {".ci/run", ".gitignore"}) | {
        "PKG-INFO",
        "setup.cfg",
        "mmfast.egg-info/SOURCES.txt",
    }
    assert cs.check(_sdist(tmp_path, shipped), TRACKED) == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda s: s - {"cython_src/mmfast/_core/book.pxd"},
            "tracked file missing: cython_src/mmfast/_core/book.pxd (cimports fail without it)",
        ),
        (
            lambda s: s - {"mmfast/_core/book.pyi"},
            "tracked file missing: mmfast/_core/book.pyi (the stubs ship in the wheel)",
        ),
        (
            lambda s: s - {"tests/unit/test_book.py"},
            "tracked file missing: tests/unit/test_book.py",
        ),
        (
            lambda s: s | {"mmfast/_core/book.cpython-311-x86_64-linux-gnu.so"},
            "build output in sdist: mmfast/_core/book.cpython-311-x86_64-linux-gnu.so",
        ),
        (
            lambda s: s | {"cython_src/mmfast/_core/book.c"},
            "build output in sdist: cython_src/mmfast/_core/book.c",
        ),
        (lambda s: s | {"docs/my-notes.md"}, "untracked file in sdist: docs/my-notes.md"),
    ],
)
def test_sdist_problems_are_named(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, change: object, expected: str
) -> None:
    cs = _tool("check_sdist", monkeypatch)
    shipped = change(TRACKED - {".ci/run", ".gitignore"})  # type: ignore[operator]
    assert cs.check(_sdist(tmp_path, shipped), TRACKED) == [expected]


# ------------------------------------------------------------------------------ check_lock
def test_lock_versions_checked_against_the_ranges(monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib import metadata

    from packaging.requirements import Requirement

    cl = _tool("check_lock", monkeypatch)
    have = {"orjson": "3.13.0", "picows": "2.3.2", "pytest": "9.2.0"}

    def version_of(name: str) -> str:
        if name not in have:
            raise metadata.PackageNotFoundError(name)
        return have[name]

    reqs = [
        Requirement(t)
        for t in (
            "orjson>=3.10,<4",
            "picows==2.3.1",
            "pytest>=8,<10",
            "sortedcontainers>=2.4,<3",
            "pywin32>=300; sys_platform == 'win32'",
        )
    ]
    assert cl.problems(reqs, version_of) == [
        "picows 2.3.2 is outside picows==2.3.1 (make lock)",
        "sortedcontainers<3,>=2.4 is not installed (not in the lock? make lock)",
    ]


def test_lock_reads_the_base_and_the_extras_named(monkeypatch: pytest.MonkeyPatch) -> None:
    cl = _tool("check_lock", monkeypatch)
    base = {r.name for r in cl.requirements(())}
    with_test = {r.name for r in cl.requirements(("test",))}
    assert "lighter-sdk" in base and "pytest" not in base
    assert {"pytest", "pytest-cov", "hypothesis"} <= with_test
    with pytest.raises(SystemExit, match="no extra nosuch"):
        cl.requirements(("nosuch",))
