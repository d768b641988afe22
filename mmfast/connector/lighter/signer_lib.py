"""The official signer's shared library, checked against its recorded SHA-256 before it loads.

lighter-sdk ships the official signer as a prebuilt Go shared library per platform
(``lighter/signers/lighter-signer-<os>-<arch>.<ext>``) and loads it with ctypes. mmfast hands it
the API private key, so a library changed on disk (a tampered install, a corrupted download, an
unreviewed SDK release) must not run: ``load()`` hashes the file the SDK would load and compares
it with ``SIGNER_SHA256``, the hashes recorded here for the lighter-sdk versions mmfast allows
(pyproject: ``lighter-sdk>=1.1.8,<1.2``), before the SDK's own loader touches it. A mismatch, an
unknown version or a missing file raises ``SignerError`` naming the file, the expected and the
found hash, and what to do; nothing is loaded. Every path into the official library goes
through here: the official signer's worker, the native signer's start-up self-check and the
throwaway keys of sim mode.

Recording a new lighter-sdk version: install it from PyPI with pip's hash checking
(``make lock`` then ``pip install --require-hashes -r requirements/lock.txt``), run
``python -m mmfast.connector.lighter.signer_lib`` to print its libraries' hashes, add them below
and widen the pyproject range; docs/signer.md has the details.
"""

from __future__ import annotations

import hashlib
import importlib.util
import platform
import sys
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

from mmfast.connector.lighter.signer import SignerError

__all__ = ["SIGNER_SHA256", "create_api_key", "library_name", "library_path", "load", "verify"]

# lighter-sdk version -> signer library file -> SHA-256, from the wheel on PyPI (its RECORD and
# pip's hash check agree), one row per platform the SDK ships a library for.
SIGNER_SHA256: dict[str, dict[str, str]] = {
    "1.1.8": {
        "lighter-signer-linux-amd64.so": "7f107a0e2240aa40c9f0ae8aba396380fe62892fe199dd3691e3103fc9a6fd8e",
        "lighter-signer-linux-arm64.so": "9088ced1545e4cf81b6a4e18102c9459f3145215256c9d2f0a7ee4d160d7dfae",
        "lighter-signer-darwin-amd64.dylib": "cc7a6b7c4736d09e9bf236def745e132d962a30c91d72235d579c44d895cfaa1",
        "lighter-signer-darwin-arm64.dylib": "b58e94ae6149be8c4e2ca90a6058fcb86e3c16604d0f09c3be29034b8feb2630",
        "lighter-signer-windows-amd64.dll": "3cb44139e35dee7533d925427448fa6d9ea2744fe66203c2167f42da358d0e49",
    },
}

# (path, size, mtime_ns, inode) of files already found good: hashing 12 MB costs ~25 ms, and the
# native signer's self-check and a worker may both load in one start-up.
_verified: set[tuple[str, int, int, int]] = set()


def library_name(system: str | None = None, machine: str | None = None) -> str:
    """The file lighter-sdk loads on this platform (its ``signer_client`` chooses the same)."""
    system = platform.system() if system is None else system
    machine = (platform.machine() if machine is None else machine).lower()
    arch = {"amd64": "amd64", "x86_64": "amd64", "arm64": "arm64", "aarch64": "arm64"}.get(machine)
    ext = {"Linux": "so", "Darwin": "dylib", "Windows": "dll"}.get(system)
    if arch is None or ext is None or (system, arch) == ("Windows", "arm64"):
        raise SignerError(f"lighter-sdk ships no signer library for {system}/{machine}")
    return f"lighter-signer-{system.lower()}-{arch}.{ext}"


def library_path() -> Path:
    """Where the installed lighter-sdk keeps this platform's library (without importing it)."""
    spec = importlib.util.find_spec("lighter")
    if spec is None or not spec.submodule_search_locations:
        raise SignerError("lighter-sdk is not installed: the official signer is unavailable")
    return Path(next(iter(spec.submodule_search_locations))) / "signers" / library_name()


def _sdk_version() -> str:
    try:
        return metadata.version("lighter-sdk")
    except metadata.PackageNotFoundError:
        raise SignerError(
            "lighter-sdk is not installed: the official signer is unavailable"
        ) from None


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify(path: Path | None = None, version: str | None = None) -> str:
    """Check the official signer library at ``path`` (default: the one lighter-sdk loads)
    against the hash recorded for lighter-sdk ``version`` (default: the installed one).
    Returns the hash; raises SignerError with what to do when it is not the recorded one."""
    path = library_path() if path is None else path
    version = _sdk_version() if version is None else version
    fix = (
        "reinstall lighter-sdk from PyPI with its hash checked (pip install --force-reinstall"
        " --no-deps --require-hashes -r requirements/lock.txt in a checkout, or pip install"
        f" --force-reinstall --no-deps lighter-sdk=={max(SIGNER_SHA256)})"
    )
    known = SIGNER_SHA256.get(version)
    if known is None:
        raise SignerError(
            f"official signer refused: lighter-sdk {version} is not one mmfast has a recorded"
            f" signer hash for (known: {', '.join(sorted(SIGNER_SHA256))}); {fix}; or record the"
            " new version's hashes (mmfast/connector/lighter/signer_lib.py says how)"
        )
    expected = known.get(path.name)
    if expected is None:
        raise SignerError(
            f"official signer refused: no hash recorded for {path.name} of lighter-sdk {version}"
        )
    try:
        st = path.stat()
    except OSError as exc:
        raise SignerError(
            f"official signer refused: {path} cannot be read ({exc.strerror}); {fix}"
        ) from None
    key = (str(path), st.st_size, st.st_mtime_ns, st.st_ino)
    if key in _verified:
        return expected
    found = sha256_of(path)
    if found != expected:
        raise SignerError(
            f"official signer refused: {path} is not the library lighter-sdk {version} ships"
            f" (SHA-256 expected {expected}, found {found}); it was changed after install;"
            f" {fix}"
        )
    _verified.add(key)
    return found


def load() -> tuple[Any, Callable[[Any], str | None]]:
    """``(library, decode_and_free)`` from lighter-sdk's own loader, once the file is verified."""
    verify()
    from lighter import signer_client

    return signer_client.get_signer(), signer_client.decode_and_free


def create_api_key() -> tuple[str, str, str | None]:
    """lighter-sdk's ``create_api_key`` (a fresh key pair from the official library), verified
    first: sim mode's throwaway keys."""
    verify()
    from lighter.signer_client import create_api_key as make

    return make()  # type: ignore[no-any-return]


def main() -> int:
    """Print the hashes of the installed lighter-sdk's signer libraries (to record a version)."""
    signers = library_path().parent
    print(f"lighter-sdk {_sdk_version()}: {signers}")
    for f in sorted(signers.iterdir()):
        if f.suffix in (".so", ".dylib", ".dll"):
            print(f'        "{f.name}":\n            "{sha256_of(f)}",')
    return 0


if __name__ == "__main__":
    sys.exit(main())
