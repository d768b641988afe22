"""Check a built sdist against the tracked tree: it must build and test on its own.

Every file git tracks ships, except the CI-only ones in NOT_SHIPPED: the Cython sources with
every .pxd and the signer's C headers, the .pyi stubs and py.typed markers, the shipped configs,
the docs, the tests with their fixtures, the tools they load. Nothing else ships but the
metadata setuptools writes: no build output (compiled modules, generated C, annotation HTML,
bytecode) and no untracked file from the working tree.

    python tools/check_sdist.py dist/mmfast-X.tar.gz
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
NOT_SHIPPED = (".ci/", ".gitignore")  # CI's script and git's own file: nothing builds on them
# What setuptools adds to every sdist (metadata, not sources).
GENERATED = ("PKG-INFO", "setup.cfg", "mmfast.egg-info/")
BUILD_OUTPUT = (".so", ".pyd", ".c", ".cpp", ".html", ".pyc", ".pyo")


def tracked(repo: Path = REPO) -> set[str]:
    out = subprocess.run(
        ["git", "-C", str(repo), "ls-files", "-z"], check=True, capture_output=True
    ).stdout.decode()
    return {n for n in out.split("\0") if n}


def members(path: str | Path) -> set[str]:
    """The sdist's files, without its top directory (``mmfast-0.1.0/``)."""
    with tarfile.open(path) as tar:
        names = [m.name for m in tar.getmembers() if m.isfile()]
    return {n.split("/", 1)[1] for n in names if "/" in n}


def check(path: str | Path, files: set[str]) -> list[str]:
    """Problems with the sdist at ``path`` given the tracked ``files``."""
    names = members(path)
    expected = {f for f in files if not f.startswith(NOT_SHIPPED)}
    problems = [
        f"tracked file missing: {n}{_WHY.get(Path(n).suffix, '')}" for n in sorted(expected - names)
    ]
    for n in sorted(names - expected):
        if n.endswith(BUILD_OUTPUT) or "__pycache__/" in n:
            problems.append(f"build output in sdist: {n}")
        elif not n.startswith(GENERATED):
            problems.append(f"untracked file in sdist: {n}")
    return problems


_WHY = {
    ".pyx": " (a compiled module's source)",
    ".pxd": " (cimports fail without it)",
    ".h": " (the signer's C)",
    ".pyi": " (the stubs ship in the wheel)",
}


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: check_sdist.py SDIST", file=sys.stderr)
        return 2
    problems = check(argv[1], tracked())
    for p in problems:
        print(f"check_sdist: {p}", file=sys.stderr)
    if not problems:
        print(f"check_sdist: {argv[1]} ok ({len(members(argv[1]))} files)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
