"""The official signer library is loaded only when its SHA-256 is the one recorded for the
installed lighter-sdk (mmfast.connector.lighter.signer_lib): the installed file is accepted, a
tampered copy is refused with the file, both hashes and what to do, by every path that loads
it (the official signer's worker, the native signer's self-check, sim mode's throwaway keys)."""

from __future__ import annotations

import asyncio
import hashlib
import shutil
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

import pytest

from mmfast.connector.lighter import signer_lib
from mmfast.connector.lighter.native_signer import self_check
from mmfast.connector.lighter.secret import ApiKey
from mmfast.connector.lighter.signer import SignerError, SignerWorker

PointAt = Callable[[Path], None]

INSTALLED = signer_lib.library_path()
VERSION = metadata.version("lighter-sdk")
KEY = "11" * 40  # any well-formed key: nothing gets as far as signing


@pytest.fixture
def tampered(tmp_path: Path) -> Path:
    """A copy of the installed library with bytes appended: it would still load (an ELF reader
    ignores trailing bytes), so only the hash check stands between it and the key."""
    copy = tmp_path / "signers" / INSTALLED.name
    copy.parent.mkdir()
    shutil.copyfile(INSTALLED, copy)
    with copy.open("ab") as f:
        f.write(b"\0tampered")
    return copy


@pytest.fixture
def point_at(monkeypatch: pytest.MonkeyPatch) -> PointAt:
    """Make signer_lib check ``path`` as the library lighter-sdk would load."""

    def point(path: Path) -> None:
        monkeypatch.setattr(signer_lib, "library_path", lambda: path)

    return point


def test_the_installed_library_is_the_recorded_one() -> None:
    expected = signer_lib.SIGNER_SHA256[VERSION][INSTALLED.name]
    assert signer_lib.verify() == expected
    assert hashlib.sha256(INSTALLED.read_bytes()).hexdigest() == expected


def test_the_pinned_range_is_covered() -> None:
    # pyproject allows lighter-sdk>=1.1.8,<1.2: every version recorded has every platform.
    assert VERSION in signer_lib.SIGNER_SHA256
    for files in signer_lib.SIGNER_SHA256.values():
        assert set(files) == {
            signer_lib.library_name(s, m)
            for s, m in (
                ("Linux", "x86_64"),
                ("Linux", "aarch64"),
                ("Darwin", "x86_64"),
                ("Darwin", "arm64"),
                ("Windows", "AMD64"),
            )
        }
        assert all(len(h) == 64 and int(h, 16) >= 0 for h in files.values())


@pytest.mark.parametrize(
    ("system", "machine", "name"),
    [
        ("Linux", "x86_64", "lighter-signer-linux-amd64.so"),
        ("Linux", "aarch64", "lighter-signer-linux-arm64.so"),
        ("Darwin", "arm64", "lighter-signer-darwin-arm64.dylib"),
        ("Darwin", "x86_64", "lighter-signer-darwin-amd64.dylib"),
        ("Windows", "AMD64", "lighter-signer-windows-amd64.dll"),
    ],
)
def test_library_name_is_the_one_the_sdk_loads(system: str, machine: str, name: str) -> None:
    assert signer_lib.library_name(system, machine) == name


@pytest.mark.parametrize(
    ("system", "machine"), [("Linux", "riscv64"), ("FreeBSD", "amd64"), ("Windows", "arm64")]
)
def test_a_platform_without_a_library_is_refused(system: str, machine: str) -> None:
    with pytest.raises(SignerError, match=f"no signer library for {system}/{machine}"):
        signer_lib.library_name(system, machine)


def test_a_tampered_copy_is_refused_with_both_hashes_and_the_fix(tampered: Path) -> None:
    expected = signer_lib.SIGNER_SHA256[VERSION][INSTALLED.name]
    found = hashlib.sha256(tampered.read_bytes()).hexdigest()
    with pytest.raises(SignerError) as ei:
        signer_lib.verify(tampered)
    msg = str(ei.value)
    assert str(tampered) in msg
    assert f"expected {expected}, found {found}" in msg
    assert "--require-hashes -r requirements/lock.txt" in msg
    assert f"lighter-sdk=={VERSION}" in msg


def test_an_intact_copy_is_accepted_and_rechecked_once_changed(tmp_path: Path) -> None:
    copy = tmp_path / INSTALLED.name
    shutil.copyfile(INSTALLED, copy)
    assert signer_lib.verify(copy) == signer_lib.SIGNER_SHA256[VERSION][INSTALLED.name]
    copy.write_bytes(copy.read_bytes()[:-1] + b"\x01")  # a later change is not cached away
    with pytest.raises(SignerError, match="is not the library lighter-sdk"):
        signer_lib.verify(copy)


def test_an_unrecorded_sdk_version_or_a_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SignerError, match=r"lighter-sdk 9\.9\.9 is not one mmfast has a recorded"):
        signer_lib.verify(INSTALLED, version="9.9.9")
    with pytest.raises(SignerError, match="cannot be read"):
        signer_lib.verify(tmp_path / INSTALLED.name)


def test_the_official_worker_refuses_a_tampered_library(tampered: Path, point_at: PointAt) -> None:
    point_at(tampered)

    async def start() -> None:
        worker = SignerWorker(ApiKey(KEY), account_index=1, api_key_index=3, chain_id=300)
        try:
            worker.start()
        finally:
            worker.stop()

    with pytest.raises(SignerError, match="signer setup failed: official signer refused") as ei:
        asyncio.run(start())
    assert str(tampered) in str(ei.value)
    assert KEY not in str(ei.value)


def test_the_native_self_check_refuses_a_tampered_library(
    tampered: Path, point_at: PointAt
) -> None:
    point_at(tampered)
    with pytest.raises(
        SignerError, match="native signer self-check: official signer refused"
    ) as ei:
        self_check(ApiKey(KEY), chain_id=300, account_index=1, api_key_index=3)
    assert str(tampered) in str(ei.value)


def test_sim_throwaway_keys_refuse_a_tampered_library(tampered: Path, point_at: PointAt) -> None:
    point_at(tampered)
    with pytest.raises(SignerError, match="official signer refused"):
        signer_lib.create_api_key()
    point_at(INSTALLED)
    priv, pub, err = signer_lib.create_api_key()
    assert err is None and pub
    ApiKey(priv)  # a well-formed key: the runner wraps it so
