"""The repository stands alone: no file refers to a file outside it.

Docs, code comments and tests once cited working notes kept beside the repository (a design
page, the protocol notes, the numbered reliability and performance targets); what a reader needs
from them now lives in docs/ (docs/reliability.md, bench/README.md's targets). This scans every
text file of the checkout for: a relative path that climbs out of the repository (or lands on
nothing in it), an absolute path into the machine's work folders, those notes by name, and in
the Markdown pages a page path (``docs/<name>.md``) that names no page here.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TEXT = (
    ".md",
    ".py",
    ".pyx",
    ".pxd",
    ".pyi",
    ".h",
    ".toml",
    ".txt",
    ".in",
    ".cfg",
    ".yaml",
    ".yml",
    ".sh",
    ".service",
    ".json",
)
TEXT_NAMES = ("Makefile", "Dockerfile", "run", "MANIFEST.in", ".gitignore")
# The notes by name (spelled in pieces so this file does not name them itself).
NOTES = re.compile(
    r"(?<![\w-])(?:"
    + "|".join(("design", "lighter" + "-protocol", "reliability" + "-targets", "perf" + "-targets"))
    + r")\.md\b"
)
# A relative path that climbs one folder or more; checked against where it lands.
CLIMB = re.compile(r"(?<![\w.])((?:\.\./)+)([\w.-][\w./-]*)")
ABSOLUTE = re.compile(r"(?<![\w.~])/wo" + r"rk/[\w./-]*")
# A page named in a page: it must be one of the repository's.
PAGE = re.compile(r"(?<![\w./-])((?:[\w-]+/)*[\w-]+\.md)\b")


def repo_files(root: Path = ROOT) -> list[Path]:
    """The tracked files (git), or every file when the tree is not a git checkout (an sdist)."""
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "ls-files", "-z"], check=True, capture_output=True
        ).stdout.decode()
        names = [n for n in out.split("\0") if n]
    except (OSError, subprocess.CalledProcessError):
        skip = {
            "build",
            "dist",
            ".venv",
            ".git",
            "__pycache__",
            ".pytest_cache",
            ".ruff_cache",
            ".hypothesis",
            ".benchmarks",
            "results",
        }
        names = [
            str(p.relative_to(root))
            for p in root.rglob("*")
            if p.is_file()
            and not skip & set(p.relative_to(root).parts)
            and not p.name.endswith(".egg-info")
        ]
    if not names:
        return []
    return [root / n for n in names if n.endswith(TEXT) or Path(n).name in TEXT_NAMES]


def outside_refs(root: Path, files: list[Path]) -> list[str]:
    found: list[str] = []
    for f in files:
        try:
            text = f.read_text(encoding="utf-8")
        except (UnicodeDecodeError, FileNotFoundError):
            continue
        rel = f.relative_to(root)
        for n, line in enumerate(text.splitlines(), 1):
            where = f"{rel}:{n}"
            for m in NOTES.finditer(line):
                found.append(f"{where}: names notes outside the repository: {m.group(0)}")
            for m in ABSOLUTE.finditer(line):
                found.append(f"{where}: absolute path outside the repository: {m.group(0)}")
            for m in CLIMB.finditer(line):
                target = (f.parent / m.group(0)).resolve()
                if not target.is_relative_to(root.resolve()):
                    found.append(f"{where}: climbs out of the repository: {m.group(0)}")
                elif not target.exists():
                    found.append(f"{where}: points at a file not in the repository: {m.group(0)}")
            if f.suffix == ".md":
                for m in PAGE.finditer(line):
                    if (
                        "/" in m.group(1)
                        and not (root / m.group(1)).exists()
                        and not (f.parent / m.group(1)).exists()
                    ):
                        found.append(
                            f"{where}: points at a file not in the repository: {m.group(1)}"
                        )
    return found


def test_no_file_refers_to_a_file_outside_the_repository() -> None:
    files = repo_files()
    assert len(files) > 100  # the scan saw the tree (git's list or the walk)
    assert outside_refs(ROOT, files) == []


UP = "." + "./"  # the synthetic references below, built so this file holds none itself


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("see " + UP + "shared/" + "reliability" + "-targets.md item 5", "names notes"),
        ("see " + UP + UP + "shared/x.md", "climbs out"),
        ("[targets](" + UP + UP + "elsewhere/notes.md)", "climbs out"),
        ("the protocol notes (" + "lighter" + "-protocol.md)", "names notes"),
        ("read /wo" + "rk/shared/notes.txt", "absolute path"),
        ("details in docs/" + "nosuch-page.md", "not in the repository"),
        ("see " + UP + "nosuch/x.md", "not in the repository"),
    ],
)
def test_each_kind_of_outside_reference_is_found(tmp_path: Path, line: str, why: str) -> None:
    (tmp_path / "docs").mkdir()
    page = tmp_path / "docs" / "page.md"
    page.write_text(f"# A page\n\n{line}\n")
    found = outside_refs(tmp_path, [page])
    assert any(why in f for f in found), found
    assert found[0].startswith("docs/page.md:3: ")


def test_references_inside_the_repository_pass(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "tests" / "unit").mkdir(parents=True)
    (tmp_path / "tests" / "unit" / "test_a.py").write_text("")
    page = tmp_path / "docs" / "page.md"
    page.write_text(
        f"docs/page.md, [up]({UP}README.md), {UP}tests/unit/test_a.py, ~/.config/mmfast, /tmp/x\n"
    )
    (tmp_path / "README.md").write_text("")
    assert outside_refs(tmp_path, [page]) == []
