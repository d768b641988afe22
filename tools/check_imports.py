"""Import every compiled module that cython_src defines, from the mmfast this Python runs.

The list comes from the sources (one ``cython_src/mmfast/_core/<name>.pyx`` per module), so a
module added there is checked without editing this file. Each one must import, be a compiled
extension (not a ``.py`` stand-in), and with ``--installed`` come from outside the source tree
(the installed wheel or sdist, not this checkout). A compiled module installed in
``mmfast._core`` that no source defines is reported too (a stale build). CI runs this with the
wheel's and the sdist's venvs, from a directory outside the tree.

    python tools/check_imports.py [--installed] [--src REPO]
"""

from __future__ import annotations

import argparse
import importlib
import importlib.machinery
import pkgutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def compiled_modules(repo: Path = REPO) -> tuple[str, ...]:
    """The compiled modules' names, one per ``.pyx`` under ``cython_src/mmfast/_core``."""
    return tuple(sorted(p.stem for p in (repo / "cython_src/mmfast/_core").glob("*.pyx")))


def check(repo: Path = REPO, *, installed: bool = False) -> tuple[list[str], list[str]]:
    """(problems, imported module paths)."""
    names = compiled_modules(repo)
    if not names:
        return [f"no .pyx under {repo / 'cython_src/mmfast/_core'}"], []
    problems: list[str] = []
    paths: list[str] = []
    for name in names:
        try:
            mod = importlib.import_module(f"mmfast._core.{name}")
        except ImportError as exc:
            problems.append(f"mmfast._core.{name} does not import: {exc}")
            continue
        path = getattr(mod, "__file__", None) or ""
        if not path.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES)):
            problems.append(f"mmfast._core.{name} is not a compiled extension: {path}")
        elif installed and Path(path).resolve().is_relative_to(repo.resolve()):
            problems.append(f"mmfast._core.{name} imported from the source tree: {path}")
        paths.append(path)
    import mmfast._core as core

    for info in pkgutil.iter_modules(core.__path__):
        spec = importlib.machinery.PathFinder.find_spec(info.name, core.__path__)
        origin = (spec.origin or "") if spec is not None else ""
        if (
            origin.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))
            and info.name not in names
        ):
            problems.append(f"compiled module with no source in cython_src: {origin}")
    return problems, paths


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--installed", action="store_true", help="refuse modules imported from the source tree"
    )
    ap.add_argument("--src", type=Path, default=REPO, help="the checkout holding cython_src")
    args = ap.parse_args(argv)
    problems, paths = check(args.src, installed=args.installed)
    for p in problems:
        print(f"check_imports: {p}", file=sys.stderr)
    if problems:
        return 1
    where = sorted({str(Path(p).parent) for p in paths})
    print(
        f"check_imports: {len(paths)} compiled modules import"
        f" ({', '.join(compiled_modules(args.src))}) from {', '.join(where)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
