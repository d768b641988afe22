"""deploy/'s checks (tools/check_deploy.py, run by CI) pass on the shipped files and fail on
broken ones: a root image, a missing stop signal, a secret copied in, a unit that kills the
guard with the bot or keeps the key in its environment."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _checker() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "check_deploy", ROOT / "tools" / "check_deploy.py"
    )
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _broken(tmp_path: Path, name: str, old: str, new: str) -> ModuleType:
    """The checker pointed at a copy of deploy/ whose ``name`` has ``old`` replaced."""
    mod = _checker()
    shutil.copytree(ROOT / "deploy", tmp_path / "deploy")
    f = tmp_path / "deploy" / name
    f.write_text(f.read_text().replace(old, new))
    mod.DEPLOY = tmp_path / "deploy"
    return mod


def test_the_shipped_dockerfile_passes() -> None:
    assert _checker().check_dockerfile() == []


@pytest.mark.parametrize(
    ("old", "new", "why"),
    [
        ("USER mmfast", "USER root", "non-root"),
        ("STOPSIGNAL SIGTERM", "", "STOPSIGNAL"),
        (
            "COPY deploy ./deploy",
            "COPY deploy ./deploy\nCOPY api.key /etc/mmfast/api.key",
            "secret",
        ),
        ('CMD ["run"]', 'CMD ["run", "--live"]', "simulator"),
    ],
)
def test_a_broken_dockerfile_is_caught(tmp_path: Path, old: str, new: str, why: str) -> None:
    mod = _broken(tmp_path, "Dockerfile", old, new)
    assert any(why in b for b in mod.check_dockerfile())


@pytest.mark.parametrize(
    ("old", "new", "why"),
    [
        ("KillMode=mixed", "KillMode=control-group", "KillMode=mixed"),
        (
            "Environment=MMFAST_API_KEY_FILE=/etc/mmfast/api.key",
            "Environment=MMFAST_API_PRIVATE_KEY=00",
            "key",
        ),
    ],
)
def test_a_broken_unit_is_caught(tmp_path: Path, old: str, new: str, why: str) -> None:
    mod = _broken(tmp_path, "mmfast.service", old, new)
    assert any(why in b for b in mod.check_unit("/bin/true"))
