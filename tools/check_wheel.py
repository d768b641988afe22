"""Check a built wheel: compiled modules and their stubs present, no Cython or C sources."""

from __future__ import annotations

import sys
import zipfile

from check_imports import compiled_modules

# Every compiled module the source tree has (one .pyx each), so a new one cannot be forgotten.
MODULES = compiled_modules()
FORBIDDEN = (".pyx", ".pxd", ".c", ".cpp", ".h")


def check(path: str) -> list[str]:
    names = zipfile.ZipFile(path).namelist()
    problems = [f"source file in wheel: {n}" for n in names if n.endswith(FORBIDDEN)]
    if not MODULES:
        problems.append("no cython_src/mmfast/_core/*.pyx found beside tools/")
    for mod in MODULES:
        prefix = f"mmfast/_core/{mod}."
        if not any(n.startswith(prefix) and n.endswith((".so", ".pyd")) for n in names):
            problems.append(f"compiled module missing: mmfast._core.{mod}")
        if f"mmfast/_core/{mod}.pyi" not in names:
            problems.append(f"stub missing: mmfast/_core/{mod}.pyi")
    for marker in ("mmfast/py.typed", "mmfast/_core/py.typed"):
        if marker not in names:
            problems.append(f"missing {marker}")
    return problems


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: check_wheel.py WHEEL", file=sys.stderr)
        return 2
    problems = check(argv[1])
    for p in problems:
        print(f"check_wheel: {p}", file=sys.stderr)
    if not problems:
        print(f"check_wheel: {argv[1]} ok")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
