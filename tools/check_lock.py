"""Check that what the hashed lock installed meets mmfast's own ranges (pyproject.toml).

CI installs requirements/lock.txt with --require-hashes, then mmfast with --no-deps, so pip never
compares the two: a range changed in pyproject.toml without ``make lock`` would go unnoticed.
This reads the dependencies and the extras named from pyproject.toml and checks each against
the version installed in this interpreter's environment (markers evaluated for it).

    python tools/check_lock.py [EXTRA ...]     (default: test dev)
"""

from __future__ import annotations

import sys
import tomllib
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def requirements(extras: tuple[str, ...], pyproject: Path = PYPROJECT) -> list[Requirement]:
    project = tomllib.loads(pyproject.read_text())["project"]
    optional = project.get("optional-dependencies", {})
    unknown = [e for e in extras if e not in optional]
    if unknown:
        raise SystemExit(f"check_lock: no extra {', '.join(unknown)} in {pyproject}")
    texts = list(project.get("dependencies", []))
    for e in extras:
        texts += optional[e]
    return [Requirement(t) for t in texts]


def problems(
    reqs: list[Requirement], version_of: Callable[[str], str] = metadata.version
) -> list[str]:
    found: list[str] = []
    for req in reqs:
        if req.marker is not None and not req.marker.evaluate():
            continue  # not for this platform or Python
        try:
            have = version_of(req.name)
        except metadata.PackageNotFoundError:
            found.append(f"{req} is not installed (not in the lock? make lock)")
            continue
        if not req.specifier.contains(have, prereleases=True):
            found.append(f"{req.name} {have} is outside {req} (make lock)")
    return found


def main(argv: list[str]) -> int:
    extras = tuple(argv[1:]) or ("test", "dev")
    reqs = requirements(extras)
    found = problems(reqs)
    for p in found:
        print(f"check_lock: {p}", file=sys.stderr)
    if not found:
        print(
            f"check_lock: {len(reqs)} requirements of mmfast (base, {', '.join(extras)})"
            " met by the installed versions"
        )
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
