"""``mmfast --version``: the package's version (the same as the installed distribution's) and
what it runs on, exit 0, before any subcommand is needed."""

from __future__ import annotations

import re
import subprocess
import sys
from importlib import metadata

import mmfast


def test_version_prints_the_installed_version_and_its_runtime() -> None:
    p = subprocess.run(
        [sys.executable, "-m", "mmfast.cli", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 0, p.stderr
    m = re.fullmatch(
        r"mmfast (\S+) \(Python (\S+), picows (\S+), uvloop (\S+), "
        r"lighter-sdk (\S+)\)\n",
        p.stdout,
    )
    assert m, p.stdout
    # One version: the module's is the distribution's (pyproject.toml).
    assert m.group(1) == mmfast.__version__ == metadata.version("mmfast")
    assert m.group(3) == metadata.version("picows")
    assert m.group(5) == metadata.version("lighter-sdk")
